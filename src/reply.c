/* reply.c - see reply.h. */
#include "reply.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <stdio.h>

#include "alloc.h"
#include "isotime.h"
#include "jsonw.h"

/* The members of x, each after a comma. */
static void
write_extra(struct jw *w, const struct reply_extra *x)
{
    char when[40];
    switch (x ? x->kind : REPLY_EXTRA_NONE) {
    case REPLY_EXTRA_NONE:
        break;
    case REPLY_EXTRA_FIELD:
        jw_lit(w, ",\"field\":");
        jw_str(w, x->field);
        break;
    case REPLY_EXTRA_LENGTHS:
        jw_lit(w, ",\"length\":");
        jw_int(w, x->length);
        jw_lit(w, ",\"max_length\":");
        jw_int(w, x->max_length);
        break;
    case REPLY_EXTRA_SESSION:
        jw_lit(w, ",\"session_status\":{\"is_open\":false,"
                  "\"can_send_freeform\":false,\"requires_template\":true,"
                  "\"message\":\"Session expired. Send a template or wait "
                  "for customer to reply.\"");
        if (x->expired_at != INT64_MIN) {
            jw_lit(w, ",\"expired_at\":");
            jw_str(w, isotime_format(x->expired_at, when, sizeof(when)));
        }
        jw_lit(w, "}");
        break;
    }
}

/* {"success":false,"error":...,"error_code":...[,"outcome":...]<x>} */
static int
write_body(struct evbuffer *out, const char *code, const char *sentence,
           const char *outcome, const struct reply_extra *x)
{
    struct jw w;
    jw_init(&w, out);
    jw_lit(&w, "{\"success\":false,\"error\":");
    jw_str(&w, sentence);
    jw_lit(&w, ",\"error_code\":");
    jw_str(&w, code);
    if (outcome != NULL) {
        jw_lit(&w, ",\"outcome\":");
        jw_str(&w, outcome);
    }
    write_extra(&w, x);
    jw_lit(&w, "}");
    return jw_end(&w);
}

static struct evbuffer *
new_body(const char *code, const char *sentence, const char *outcome,
         const struct reply_extra *x)
{
    struct evbuffer *b = evbuffer_new();
    if (b == NULL || write_body(b, code, sentence, outcome, x) != 0)
        alloc_oom("reply_error_body");
    return b;
}

struct evbuffer *
reply_error_body(const char *code, const char *sentence,
                 const struct reply_extra *x)
{
    return new_body(code, sentence, NULL, x);
}

/* One row: ROW(id, status, CODE, reason, sentence, flags); every 400
 * BAD_REQUEST is answered with Connection: close. */
#define ROW(id, st, code, reason, sentence, flags)                             \
    [id] = {st, code, reason, sentence, flags}
#define BAD(id, sentence)                                                      \
    ROW(id, 400, "BAD_REQUEST", "bad_request", sentence, REPLY_CLOSE)
#define INVALID(id, sentence)                                                  \
    ROW(id, 422, "VALIDATION_ERROR", "validation_error", sentence, 0)

const char reply_invalid_phone_sentence[] =
    "Invalid phone number format. Use E.164 format (e.g., +14155551234).";

const struct gw_error_row reply_errors[GW_ERR_COUNT] = {
    BAD(GW_ERR_BAD_LINE, "The request line is malformed."),
    BAD(GW_ERR_BAD_VERSION, "The request line's HTTP version is malformed."),
    BAD(GW_ERR_BAD_HEADER_NAME,
        "A header line must start with a token (RFC 9110) and a colon: no "
        "space before the colon, no control byte or separator in the name."),
    BAD(GW_ERR_FOLDED_HEADER,
        "A header line starts with a space or a tab (line folding); "
        "folding is not accepted."),
    BAD(GW_ERR_BAD_HEADER_VALUE,
        "A header value holds a control byte or a bare CR."),
    BAD(GW_ERR_CL_AND_TE,
        "Both Content-Length and Transfer-Encoding are present."),
    BAD(GW_ERR_TWO_CL, "More than one Content-Length header."),
    BAD(GW_ERR_TWO_TE, "More than one Transfer-Encoding header."),
    BAD(GW_ERR_TE_NOT_CHUNKED, "Transfer-Encoding other than chunked."),
    BAD(GW_ERR_CL_NOT_DECIMAL, "Content-Length is not a decimal number."),
    BAD(GW_ERR_HEAD_WITH_BODY, "A HEAD or TRACE request cannot have a body."),
    BAD(GW_ERR_HEAD_MISMATCH, "The request head is malformed."),
    ROW(GW_ERR_HTTP_VERSION, 505, "HTTP_VERSION_NOT_SUPPORTED",
        "http_version_not_supported", "Only HTTP/1.0 and HTTP/1.1 are served.",
        0),
    ROW(GW_ERR_HEADERS_TOO_LARGE, 431, "HEADERS_TOO_LARGE", "headers_too_large",
        "The request head is larger than 32 KiB.", 0),
    ROW(GW_ERR_EXPECTATION, 417, "EXPECTATION_FAILED", "expectation_failed",
        "Only Expect: 100-continue is supported.", 0),
    ROW(GW_ERR_REQUEST_TIMEOUT, 408, "REQUEST_TIMEOUT", "request_timeout",
        "The request did not arrive within limits.client_timeout_ms of its "
        "first byte.",
        0),
    ROW(GW_ERR_BODY_TOO_LARGE, 413, "PAYLOAD_TOO_LARGE", "payload_too_large",
        "The body is too large.", 0),

    ROW(GW_ERR_ROUTE_NOT_FOUND, 404, "ROUTE_NOT_FOUND", "route_not_found",
        "No such route: the gateway serves the provider's WhatsApp API paths "
        "only.",
        0),
    ROW(GW_ERR_ADMIN_OFF, 404, "ROUTE_NOT_FOUND", "route_not_found",
        "No such route.", 0),
    ROW(GW_ERR_ADMIN_ROUTE_NOT_FOUND, 404, "ROUTE_NOT_FOUND", "route_not_found",
        "No such admin route.", 0),
    ROW(GW_ERR_METHOD_NOT_ALLOWED, 405, "METHOD_NOT_ALLOWED",
        "method_not_allowed", "This method is not allowed on this path.", 0),
    ROW(GW_ERR_INTERNAL, 500, "INTERNAL_ERROR", "internal_error",
        "The gateway lost track of this connection.", 0),
    ROW(GW_ERR_SHUTTING_DOWN, 503, "SHUTTING_DOWN", "shutting_down",
        "The gateway is shutting down; retry on another instance.", 0),

    ROW(GW_ERR_TOKEN_MISSING, 401, "UNAUTHORIZED", "unauthorized",
        "A bearer token is required (Authorization: Bearer ...).", 0),
    ROW(GW_ERR_TOKEN_UNKNOWN, 401, "UNAUTHORIZED", "unauthorized",
        "The bearer token is not a known client's.", 0),
    ROW(GW_ERR_ADMIN_TOKEN, 401, "UNAUTHORIZED", "unauthorized",
        "The admin token is required.", 0),
    ROW(GW_ERR_SENDER_NOT_ALLOWED, 403, "SENDER_NOT_ALLOWED",
        "sender_not_allowed", "This client may not use this sender.", 0),

    ROW(GW_ERR_PAYLOAD_TOO_LARGE, 413, "PAYLOAD_TOO_LARGE", "payload_too_large",
        "The request body is larger than limits.max_body_bytes.", 0),
    ROW(GW_ERR_UNSUPPORTED_MEDIA_TYPE, 415, "UNSUPPORTED_MEDIA_TYPE",
        "unsupported_media_type",
        "The request body must be sent as application/json.", 0),
    ROW(GW_ERR_INVALID_JSON, 400, "INVALID_JSON", "invalid_json",
        "The request body must be one JSON object in UTF-8, with no key "
        "twice and nothing but whitespace after it.",
        0),
    ROW(GW_ERR_INVALID_ENCODING, 422, "INVALID_ENCODING", "invalid_encoding",
        "A string in the request body contains an unpaired surrogate "
        "escape.",
        0),
    INVALID(GW_ERR_SENDER_ID, "sender_id must be an integer of at least 1."),
    INVALID(GW_ERR_RECIPIENT_TYPE, "recipient_phone must be a string."),
    ROW(GW_ERR_INVALID_PHONE, 422, "INVALID_PHONE", "invalid_phone",
        reply_invalid_phone_sentence, 0),
    INVALID(GW_ERR_MESSAGE, "message must be a string with at least one "
                            "non-whitespace character."),
    ROW(GW_ERR_MESSAGE_TOO_LONG, 422, "MESSAGE_TOO_LONG", "message_too_long",
        "The message is longer than the maximum allowed length.",
        REPLY_LENGTHS),
    INVALID(GW_ERR_TEMPLATE_ID,
            "template_id must be an integer of at least 1."),
    INVALID(GW_ERR_RECIPIENT_NAME,
            "recipient_name must be a string of at most 255 characters."),
    INVALID(GW_ERR_VARIABLES, "variables must be an object whose values are "
                              "strings or numbers."),
    INVALID(GW_ERR_IDEMPOTENCY_KEY,
            "Idempotency-Key must be 1 to 255 visible ASCII characters."),

    BAD(GW_ERR_QUERY_EMPTY_PARAM,
        "The query string holds an empty parameter (\"&&\", or a leading or "
        "trailing '&')."),
    BAD(GW_ERR_QUERY_EMPTY_NAME,
        "The query string holds a parameter with an empty name."),
    BAD(GW_ERR_QUERY_BYTE,
        "The query string holds a byte that is not visible ASCII (a space, a "
        "control byte or a non-ASCII byte); percent-encode it."),
    BAD(GW_ERR_QUERY_ESCAPE,
        "The query string holds a '%' that is not followed by two hex "
        "digits."),
    BAD(GW_ERR_QUERY_NUL, "The query string holds %00."),
    BAD(GW_ERR_QUERY_NAME_BYTE, "A query parameter name decodes to a space, "
                                "a control byte or a non-ASCII byte."),
    BAD(GW_ERR_QUERY_NO_EQUALS,
        "The query string holds a parameter without '='."),
    INVALID(GW_ERR_QUERY_UNKNOWN_KEY,
            "This route does not take the query parameter named in field."),
    INVALID(GW_ERR_QUERY_REPEATED_KEY,
            "A query parameter appears more than once."),
    INVALID(GW_ERR_QUERY_SENDER_ID,
            "sender_id must be an integer of at least 1, in decimal without "
            "a sign or leading zeros."),
    INVALID(GW_ERR_SENDER_ID_MISSING, "sender_id is required."),
    INVALID(GW_ERR_RECIPIENT_MISSING, "recipient_phone is required."),
    INVALID(GW_ERR_QUERY_SENDERS_STATUS, "status must be online or all."),
    INVALID(GW_ERR_QUERY_TEMPLATES_STATUS, "status must be approved or all."),
    INVALID(GW_ERR_QUERY_REFUSAL_KIND, "kind must be balance."),
    INVALID(GW_ERR_REFUSAL_TARGET,
            "Give exactly one of sender_id (a sender's refusal) and "
            "kind=balance (the account's)."),

    ROW(GW_ERR_IDEMPOTENCY_IN_PROGRESS, 409, "IDEMPOTENCY_IN_PROGRESS",
        "idempotency_in_progress",
        "A request with this Idempotency-Key is still in flight; retry later "
        "to get its answer.",
        0),
    ROW(GW_ERR_IDEMPOTENCY_KEY_REUSED, 422, "IDEMPOTENCY_KEY_REUSED",
        "idempotency_key_reused",
        "This Idempotency-Key was used with a different body.", 0),
    ROW(GW_ERR_SESSION_EXPIRED, 403, "SESSION_EXPIRED", "session_expired",
        "The 24-hour messaging window is closed. Customer must reply first, "
        "or use a template message.",
        0),
    ROW(GW_ERR_STATE_UNAVAILABLE, 503, "STATE_UNAVAILABLE", "state_unavailable",
        "The shared state store is unreachable, so a send with an "
        "Idempotency-Key cannot be made without risking a duplicate; retry "
        "after the time in Retry-After.",
        0),

    ROW(GW_ERR_RATE_LIMITED, 429, "RATE_LIMITED", "rate_limited",
        "The upstream rate limit is reached and the queue is full; retry "
        "after the time in Retry-After.",
        0),
    ROW(GW_ERR_UPSTREAM_NOT_SENT, 502, "UPSTREAM_UNAVAILABLE",
        "upstream_unavailable",
        "The upstream API is unavailable. Nothing was sent upstream; the "
        "request can be retried.",
        REPLY_NOT_SENT),
    ROW(GW_ERR_UPSTREAM_UNKNOWN, 502, "UPSTREAM_UNAVAILABLE",
        "upstream_unavailable",
        "The upstream API is unavailable. The request may have reached the "
        "upstream.",
        REPLY_UNKNOWN),
    ROW(GW_ERR_UPSTREAM_TIMEOUT_NOT_SENT, 504, "UPSTREAM_TIMEOUT",
        "upstream_timeout",
        "The upstream API did not answer within upstream.timeout_ms. Nothing "
        "was sent upstream; the request can be retried.",
        REPLY_NOT_SENT),
    ROW(GW_ERR_UPSTREAM_TIMEOUT_UNKNOWN, 504, "UPSTREAM_TIMEOUT",
        "upstream_timeout",
        "The upstream API did not answer within upstream.timeout_ms. The "
        "request may have reached the upstream.",
        REPLY_UNKNOWN),
    ROW(GW_ERR_CUT_OFF_NOT_SENT, 503, "SHUTTING_DOWN", "shutting_down",
        "The gateway shut down before the request was sent; nothing reached "
        "the upstream, retry on another instance.",
        REPLY_NOT_SENT),
    ROW(GW_ERR_CUT_OFF_UNKNOWN, 503, "SHUTTING_DOWN", "shutting_down",
        "The gateway shut down before the upstream answered; the request may "
        "have reached the upstream, so the outcome is unknown: send it again "
        "only with a new Idempotency-Key.",
        REPLY_UNKNOWN),
    ROW(GW_ERR_STOPPED_UNKNOWN, 502, "UPSTREAM_UNAVAILABLE",
        "upstream_unavailable",
        "The gateway stopped before the upstream answered; the message may "
        "have been sent. Send it again only with a new Idempotency-Key.",
        REPLY_UNKNOWN),

    ROW(GW_ERR_SESSION_NOT_FOUND, 404, "SESSION_NOT_FOUND", "session_not_found",
        "The session cache holds nothing for this sender and recipient.", 0),
    ROW(GW_ERR_ADMIN_INVALID_JSON, 400, "INVALID_JSON", "invalid_json",
        "The body must be one JSON object.", 0),
    INVALID(GW_ERR_RECEIVED_AT,
            "received_at must be an ISO 8601 time with an offset."),
};

const struct gw_error_row *
reply_row(enum gw_error e)
{
    return &reply_errors[(unsigned)e < GW_ERR_COUNT ? e : GW_ERR_INTERNAL];
}

enum gw_error
reply_error_id(const struct gw_error_row *row)
{
    return (enum gw_error)(row - reply_errors);
}

static const char *
outcome_of(const struct gw_error_row *r)
{
    if (r->flags & REPLY_UNKNOWN)
        return "unknown";
    return (r->flags & REPLY_NOT_SENT) ? "not_sent" : NULL;
}

int
reply_error_to(struct evbuffer *out, enum gw_error e, const char *sentence,
               const struct reply_extra *x)
{
    const struct gw_error_row *r = reply_row(e);
    return write_body(out, r->code, sentence ? sentence : r->sentence,
                      outcome_of(r), x);
}

struct evbuffer *
reply_error(enum gw_error e, const char *sentence, const struct reply_extra *x)
{
    const struct gw_error_row *r = reply_row(e);
    return new_body(r->code, sentence ? sentence : r->sentence, outcome_of(r),
                    x);
}

void
reply_xwagate(enum gw_error e, char *out, size_t outlen)
{
    if (outlen > 0)
        snprintf(out, outlen, "gateway; reason=%s", reply_row(e)->reason);
}

