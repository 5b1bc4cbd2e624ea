/* upstream.h - asynchronous HTTP calls to the provider: libcurl's multi
 * interface driven by the gateway's libevent loop.
 *
 * One struct upstream per loop holds the connection pool (keep-alive,
 * HTTP/2 when offered, at most max_connections sockets) and the API key.
 * upstream_start() copies everything it is given and never calls back
 * before returning; the callback runs exactly once, from the loop, and the
 * response it sees is valid only during the call.
 *
 * Retries: a failure to connect is retried once, within the deadline,
 * unless the POST was already sent on an earlier connection. A POST is
 * never sent twice: it goes out with its headers in one send
 * (CURLOPT_POSTFIELDS), and a pre-request callback (CURLOPT_PREREQFUNCTION,
 * run each time libcurl is about to send) allows one send per POST, so
 * libcurl's own "connection died, retrying a fresh connect" fails (502)
 * instead of sending the message again. The same callback is how the
 * module knows whether a byte of the request may have left (the outcome
 * "not_sent" or "unknown" of SPEC section 5): it reports that with every
 * failure, as a typed value (enum upstream_failure plus sent).
 *
 * Over cleartext HTTP/1.1 a kept-alive connection that holds bytes before
 * a request leaves on it (the tail of an earlier answer longer than its
 * Content-Length) is shut down and the request goes on a fresh one,
 * counted as a connect retry and still not sent: those bytes would
 * otherwise be taken as its answer, and its answer as the next one's.
 *
 * Waiting for a multiplexed connection (CURLOPT_PIPEWAIT) is asked for only
 * with an https:// base URL, where ALPN may offer HTTP/2: over cleartext
 * HTTP/1.1 it would park every queued transfer until the first answer and
 * then release them together, a burst on the wire.
 *
 * An answer that is not valid HTTP is a failure, never relayed: a final
 * status outside 200..599, a 101 (no upgrade is ever asked for), a header
 * name that is not an RFC 9110 token, a control byte other than HTAB in a
 * value, Content-Length fields that disagree. Obsolete line folding is
 * replaced by one space (RFC 9112 section 5.2). A chunked answer's
 * trailers are not headers: they are dropped. */
#ifndef WAGATE_UPSTREAM_H
#define WAGATE_UPSTREAM_H

#include <stddef.h>

struct event_base;
struct evbuffer;
struct upstream;
struct upstream_xfer;

struct upstream_opts {
    const char *base_url;  /* "https://host[:port][/prefix]", copied */
    const char *ca_file;   /* NULL = system bundle */
    long connect_timeout_ms;
    long timeout_ms;       /* from upstream_start() to the full answer */
    long max_connections;
};

/* Why a transfer got no valid HTTP answer. The names (upstream_failure_
 * name()) are the labels of metrics and log lines. */
enum upstream_failure {
    /* a valid HTTP answer, whatever its status */
    UPSTREAM_FAIL_NONE = 0,
    /* the host name did not resolve */
    UPSTREAM_FAIL_DNS,
    /* nothing listens (or a firewall said no) */
    UPSTREAM_FAIL_CONNECT_REFUSED,
    /* no connection within connect_timeout_ms */
    UPSTREAM_FAIL_CONNECT_TIMEOUT,
    /* handshake or certificate failure */
    UPSTREAM_FAIL_TLS,
    /* connection reset while sending or reading */
    UPSTREAM_FAIL_RESET,
    /* connection closed without an answer */
    UPSTREAM_FAIL_CLOSED,
    /* a kept-alive connection died after the POST left; not sent again */
    UPSTREAM_FAIL_LOST_AFTER_SEND,
    /* not valid HTTP: a final status outside 200..599 or a 101, a header
     * name that is not a token, a control byte in a value, Content-Length
     * fields that disagree, bad chunked framing, a truncated body, bytes
     * that are not HTTP at all */
    UPSTREAM_FAIL_INVALID_RESPONSE,
    /* headers or body beyond the module's caps */
    UPSTREAM_FAIL_TOO_LARGE,
    /* no complete answer within timeout_ms */
    UPSTREAM_FAIL_TIMEOUT,
    /* libcurl could not set the transfer up */
    UPSTREAM_FAIL_SETUP,
    /* any other libcurl failure */
    UPSTREAM_FAIL_OTHER,
};
#define UPSTREAM_FAIL_COUNT (UPSTREAM_FAIL_OTHER + 1)

struct upstream_header {
    char *name;
    char *value;
};

struct upstream_response {
    int status;                            /* 200..599 */
    const struct upstream_header *headers; /* the final header block, in
                                              order; no trailers */
    size_t nheaders;
    struct evbuffer *body; /* the exact bytes; callee may drain it */
    double total_ms;       /* from upstream_start() to completion */
};

/* How a transfer ended. sent says whether the request may have reached the
 * upstream: 1 as soon as libcurl was about to put its first byte on a
 * connection (the pre-request callback ran), 0 when it provably never
 * left (no connection, or the transfer ended before its turn). */
struct upstream_result {
    enum upstream_failure failure;
    int sent;
    const struct upstream_response *resp; /* NULL unless failure is NONE */
};

/* Static snake_case label ("connect_refused", "lost_after_send", ...);
 * "none" for UPSTREAM_FAIL_NONE, "other" for anything out of range. */
const char *upstream_failure_name(enum upstream_failure f);

/* Static lower-case phrase for an error sentence ("connection refused"). */
const char *upstream_failure_phrase(enum upstream_failure f);

/* res and what it points to are valid only during the call. */
typedef void (*upstream_cb)(void *arg, const struct upstream_result *res);

/* Called at most once per transfer, from inside libcurl (so it must not
 * start, cancel or finish transfers), when the request is about to leave
 * on a connection for the first time: the moment a rate limit counts. */
typedef void (*upstream_sent_cb)(void *arg);

struct upstream_call {
    int post;                    /* POST with body, else GET */
    const char *path_query;      /* "/api/...?q" appended to base_url */
    const char *content_type;    /* NULL = not sent */
    const char *accept;          /* NULL = "application/json" */
    const char *request_id;      /* sent as X-Request-Id */
    const char *idempotency_key; /* NULL = not sent */
    const void *body;
    size_t body_len;
    upstream_sent_cb on_sent; /* NULL = not told; gets the cb's arg */
};

/* NULL and a message in err when libcurl lacks asynchronous DNS or cannot
 * be set up. */
struct upstream *upstream_new(struct event_base *base,
                              const struct upstream_opts *opts, char *err,
                              size_t errlen);

/* Replaces the key sent as "Authorization: Bearer <key>" on transfers
 * started from now on (the copy held is wiped when replaced or freed). */
void upstream_set_key(struct upstream *u, const char *key);

/* Starts a transfer. Never fails synchronously: an error is reported
 * through cb from the loop. Returns a handle, valid until cb runs or
 * upstream_cancel() is called, for upstream_xfer_sent() and
 * upstream_cancel(). */
struct upstream_xfer *upstream_start(struct upstream *u,
                                     const struct upstream_call *call,
                                     upstream_cb cb, void *arg);

/* 1 if the request of a running transfer may already have left. */
int upstream_xfer_sent(const struct upstream_xfer *x);

/* Ends a running transfer without calling back (a drain that gives up on
 * it). Not from inside a libcurl callback. */
void upstream_cancel(struct upstream_xfer *x);

/* Transfers currently running or waiting for a connection. */
size_t upstream_in_flight(const struct upstream *u);

/* Aborts every transfer without calling back, then frees. NULL is fine. */
void upstream_free(struct upstream *u);

/* ---- one line of an answer's header block (pure) ----
 * What libcurl's header callback gets, one line with its CRLF, classified
 * and checked line by line as above: a status line (three digits; a 101
 * is invalid), the blank line, a field (its name an RFC 9110 token, no
 * control byte but HTAB in its value, OWS around the value not part of
 * it) or an obsolete folding continuation. What spans lines (which block
 * a line is in, the field a continuation folds onto, Content-Length
 * fields that disagree, the size cap, trailers) is the callback's. */
enum upstream_header_kind {
    UPSTREAM_HDR_STATUS,  /* "HTTP/<version> <3 digits>[ <reason>]" */
    UPSTREAM_HDR_END,     /* the blank line ending a header block */
    UPSTREAM_HDR_FIELD,   /* "name: value" */
    UPSTREAM_HDR_FOLD,    /* " value": continues the previous field */
    UPSTREAM_HDR_INVALID, /* not valid HTTP: the answer is refused */
};

/* Points into the line it was parsed from (no copies, no NUL). */
struct upstream_header_line {
    int status;       /* STATUS: the code (any 3 digits but 101) */
    const char *name; /* FIELD */
    size_t name_len;
    const char *value; /* FIELD, FOLD: without the surrounding OWS */
    size_t value_len;
};

/* Reads exactly len bytes of line (no NUL needed); fills *out. */
enum upstream_header_kind
upstream_parse_header(const char *line, size_t len,
                      struct upstream_header_line *out);

#endif
