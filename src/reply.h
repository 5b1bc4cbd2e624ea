/* reply.h - the gateway's own answers: the error shape of SPEC section 2.
 *
 * {"success": false, "error": "<sentence>", "error_code": "<CODE>", ...}
 * Pure builders; the server sends what they make. */
#ifndef WAGATE_REPLY_H
#define WAGATE_REPLY_H

#include <stddef.h>

struct evbuffer;
struct json_object;

/* A new buffer (caller frees) holding the error body. extra, if not NULL,
 * is a JSON object whose members are appended (borrowed; not modified). */
struct evbuffer *reply_error_body(const char *code, const char *sentence,
                                  struct json_object *extra);

/* Writes the X-Wagate value for a gateway error: "gateway; reason=<code in
 * lower case>". */
void reply_reason_header(const char *code, char *out, size_t outlen);

/* Writes the reason token alone ("route_not_found") for logs. */
void reply_reason_token(const char *code, char *out, size_t outlen);

/* The 403 SESSION_EXPIRED body the gateway gives itself, in the upstream's
 * shape (SPEC section 4); expired_at is ms since the epoch, or
 * CACHE_TIME_UNKNOWN (INT64_MIN) to leave it out. Caller frees. */
struct evbuffer *reply_session_expired_body(long long expired_at);

/* The sentence of 404 ROUTE_NOT_FOUND. */
#define REPLY_ROUTE_NOT_FOUND_SENTENCE                                         \
    "No such route: the gateway serves the provider's WhatsApp API paths "    \
    "only."

/* The sentence of 503 STATE_UNAVAILABLE (SPEC section 11). */
#define REPLY_STATE_UNAVAILABLE_SENTENCE                                       \
    "The shared state store is unreachable, so a send with an "             \
    "Idempotency-Key cannot be made without risking a duplicate; retry "   \
    "after the time in Retry-After."

#define REPLY_SESSION_EXPIRED_SENTENCE                                         \
    "The 24-hour messaging window is closed. Customer must reply first, or "  \
    "use a template message."

#endif
