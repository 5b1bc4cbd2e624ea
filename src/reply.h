/* reply.h - the gateway's own answers: every error it gives is one row of
 * one table (status, code, reason, sentence, flags), in the shape of SPEC
 * section 2:
 *
 * {"success": false, "error": "<sentence>", "error_code": "<CODE>", ...}
 *
 * Behaviour hangs on the row (its id or its flags), never on the text of a
 * code or a sentence. Pure: data and builders; the exchange sends what
 * they make. */
#ifndef WAGATE_REPLY_H
#define WAGATE_REPLY_H

#include <stddef.h>

struct evbuffer;

/* Every error the gateway answers, by who gives it. Several rows may share
 * a code: a row is a (status, code, sentence), and a sentence says what
 * went wrong. */
enum gw_error {
    /* the request head and its framing (headers.c, conn.c, server.c) */
    GW_ERR_BAD_LINE = 0,
    GW_ERR_BAD_VERSION,
    GW_ERR_BAD_HEADER_NAME,
    GW_ERR_FOLDED_HEADER,
    GW_ERR_BAD_HEADER_VALUE,
    GW_ERR_CL_AND_TE,
    GW_ERR_TWO_CL,
    GW_ERR_TWO_TE,
    GW_ERR_TE_NOT_CHUNKED,
    GW_ERR_CL_NOT_DECIMAL,
    GW_ERR_HEAD_WITH_BODY,
    GW_ERR_HEAD_MISMATCH,
    GW_ERR_HTTP_VERSION,
    GW_ERR_HEADERS_TOO_LARGE,
    GW_ERR_EXPECTATION,
    GW_ERR_REQUEST_TIMEOUT,
    GW_ERR_BODY_TOO_LARGE, /* Content-Length, or an admin body */
    /* routing (route.c, server.c, admin.c) */
    GW_ERR_ROUTE_NOT_FOUND,
    GW_ERR_ADMIN_OFF, /* no admin token configured: no admin API */
    GW_ERR_ADMIN_ROUTE_NOT_FOUND,
    GW_ERR_METHOD_NOT_ALLOWED,
    GW_ERR_INTERNAL,
    GW_ERR_SHUTTING_DOWN,
    /* callers (pipeline.c, server.c) */
    GW_ERR_TOKEN_MISSING,
    GW_ERR_TOKEN_UNKNOWN,
    GW_ERR_ADMIN_TOKEN,
    GW_ERR_SENDER_NOT_ALLOWED,
    /* the body (pipeline.c, precheck.c) */
    GW_ERR_PAYLOAD_TOO_LARGE, /* the sentence carries the limit */
    GW_ERR_UNSUPPORTED_MEDIA_TYPE,
    GW_ERR_INVALID_JSON,
    GW_ERR_INVALID_ENCODING,
    GW_ERR_SENDER_ID,
    GW_ERR_RECIPIENT_TYPE,
    GW_ERR_INVALID_PHONE,
    GW_ERR_MESSAGE,
    GW_ERR_MESSAGE_TOO_LONG,
    GW_ERR_TEMPLATE_ID,
    GW_ERR_RECIPIENT_NAME,
    GW_ERR_VARIABLES,
    GW_ERR_IDEMPOTENCY_KEY,
    /* the query (query.c) */
    GW_ERR_QUERY_EMPTY_PARAM,
    GW_ERR_QUERY_EMPTY_NAME,
    GW_ERR_QUERY_BYTE,
    GW_ERR_QUERY_ESCAPE,
    GW_ERR_QUERY_NUL,
    GW_ERR_QUERY_NAME_BYTE,
    GW_ERR_QUERY_NO_EQUALS,
    GW_ERR_QUERY_UNKNOWN_KEY,
    GW_ERR_QUERY_REPEATED_KEY,
    GW_ERR_QUERY_SENDER_ID,
    GW_ERR_SENDER_ID_MISSING,
    GW_ERR_RECIPIENT_MISSING,
    GW_ERR_QUERY_SENDERS_STATUS,
    GW_ERR_QUERY_TEMPLATES_STATUS,
    GW_ERR_QUERY_REFUSAL_KIND,
    GW_ERR_REFUSAL_TARGET,
    /* idempotency, the session cache, the state (pipeline.c) */
    GW_ERR_IDEMPOTENCY_IN_PROGRESS,
    GW_ERR_IDEMPOTENCY_KEY_REUSED,
    GW_ERR_SESSION_EXPIRED,
    GW_ERR_STATE_UNAVAILABLE,
    /* the rate slot, the upstream, the drain (pipeline.c, relay.c,
     * exchange.c, state_file.c): 502/504 sentences carry what failed */
    GW_ERR_RATE_LIMITED,
    GW_ERR_UPSTREAM_NOT_SENT,
    GW_ERR_UPSTREAM_UNKNOWN,
    GW_ERR_UPSTREAM_TIMEOUT_NOT_SENT,
    GW_ERR_UPSTREAM_TIMEOUT_UNKNOWN,
    GW_ERR_CUT_OFF_NOT_SENT,
    GW_ERR_CUT_OFF_UNKNOWN,
    GW_ERR_STOPPED_UNKNOWN, /* a key a stop left in flight (state_file.h) */
    /* the admin API (admin.c) */
    GW_ERR_SESSION_NOT_FOUND,
    GW_ERR_ADMIN_INVALID_JSON,
    GW_ERR_RECEIVED_AT,
    GW_ERR_COUNT
};

/* Row flags: what the answer carries besides the body's three members. */
#define REPLY_CLOSE 0x1u    /* Connection: close (SPEC section 6, Framing) */
#define REPLY_LENGTHS 0x2u  /* "length" and "max_length" (the caller's) */
#define REPLY_NOT_SENT 0x4u /* "outcome": "not_sent" */
#define REPLY_UNKNOWN 0x8u  /* "outcome": "unknown" */

struct gw_error_row {
    int status;           /* 4xx or 5xx */
    const char *code;     /* the body's error_code, UPPER_SNAKE */
    const char *reason;   /* code in lower case: X-Wagate's and the log's */
    const char *sentence; /* the body's error, unless the caller gives one */
    unsigned flags;       /* REPLY_* */
};

/* The table, indexed by enum gw_error. */
extern const struct gw_error_row reply_errors[GW_ERR_COUNT];

/* The row of e (GW_ERR_INTERNAL's for an id out of range), and the id of
 * a row of reply_errors. */
const struct gw_error_row *reply_row(enum gw_error e);
enum gw_error reply_error_id(const struct gw_error_row *row);

/* What an error body carries after its row's members: nothing, the
 * field at fault, MESSAGE_TOO_LONG's lengths, or a closed window's
 * session_status (SESSION_EXPIRED, in the upstream's shape, SPEC section
 * 4). */
enum reply_extra_kind {
    REPLY_EXTRA_NONE,
    REPLY_EXTRA_FIELD,   /* "field": field */
    REPLY_EXTRA_LENGTHS, /* "length": length, "max_length": max_length */
    REPLY_EXTRA_SESSION, /* "session_status": {...}, with "expired_at"
                            unless expired_at is INT64_MIN (unknown) */
};
struct reply_extra {
    enum reply_extra_kind kind;
    const char *field;
    long long length, max_length;
    long long expired_at; /* ms since the epoch */
};

/* Appends the body of error e to out: sentence, or the row's when NULL;
 * the members its flags call for ("outcome"); then x's, if x is not NULL.
 * Written straight into out (jsonw.h), no tree built. 0, or -1 when out
 * could not grow. */
int reply_error_to(struct evbuffer *out, enum gw_error e, const char *sentence,
                   const struct reply_extra *x);

/* The same in a new buffer (caller frees); out of memory ends the
 * process (alloc.h). */
struct evbuffer *reply_error(enum gw_error e, const char *sentence,
                             const struct reply_extra *x);

/* The same shape for any code and sentence, without "outcome" (the
 * builder under reply_error()). */
struct evbuffer *reply_error_body(const char *code, const char *sentence,
                                  const struct reply_extra *x);

/* Writes X-Wagate's value for error e: "gateway; reason=<reason>",
 * truncated to outlen (always NUL-terminated when outlen > 0). */
void reply_xwagate(enum gw_error e, char *out, size_t outlen);

/* The upstream's exact sentence for INVALID_PHONE (also
 * precheck_invalid_phone_sentence). */
extern const char reply_invalid_phone_sentence[];

#endif
