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
 * instead of sending the message again. */
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

enum upstream_result {
    UPSTREAM_OK = 0,      /* a valid HTTP answer, whatever its status */
    UPSTREAM_UNAVAILABLE, /* no valid answer: refused, reset, TLS, garbage */
    UPSTREAM_TIMEOUT,     /* no complete answer within timeout_ms */
};

struct upstream_header {
    char *name;
    char *value;
};

struct upstream_response {
    int status;
    const struct upstream_header *headers; /* as received, in order */
    size_t nheaders;
    struct evbuffer *body; /* the exact bytes; callee may drain it */
    double total_ms;       /* from upstream_start() to completion */
};

/* errstr: a static sentence for the log when result != UPSTREAM_OK. */
typedef void (*upstream_cb)(void *arg, enum upstream_result result,
                            const struct upstream_response *resp,
                            const char *errstr);

struct upstream_call {
    int post;                    /* POST with body, else GET */
    const char *path_query;      /* "/api/...?q" appended to base_url */
    const char *content_type;    /* NULL = not sent */
    const char *accept;          /* NULL = "application/json" */
    const char *request_id;      /* sent as X-Request-Id */
    const char *idempotency_key; /* NULL = not sent */
    const void *body;
    size_t body_len;
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
 * through cb from the loop. Returns a handle for upstream_detach(). */
struct upstream_xfer *upstream_start(struct upstream *u,
                                     const struct upstream_call *call,
                                     upstream_cb cb, void *arg);

/* Transfers currently running or waiting for a connection. */
size_t upstream_in_flight(const struct upstream *u);

/* Aborts every transfer without calling back, then frees. NULL is fine. */
void upstream_free(struct upstream *u);

#endif
