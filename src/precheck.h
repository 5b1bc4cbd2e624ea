/* precheck.h - validation of the send bodies, SPEC section 3 steps 5-6.
 * Pure: bytes in, verdict out; no I/O, no allocation that outlives a call.
 *
 * The body is read by json_strict_scan() (RFC 8259: one object, UTF-8, no
 * duplicate key in any object, nothing but JSON whitespace after it; see
 * json_strict.h) and never re-serialised: the caller forwards its own
 * bytes. Checks, in order:
 *   parse -> INVALID_JSON (400)
 *   a lone surrogate escape in any string -> INVALID_ENCODING (422)
 *   sender_id: JSON integer >= 1 -> VALIDATION_ERROR field "sender_id"
 *   recipient_phone: a string, else VALIDATION_ERROR; E.164
 *     ^\+[1-9][0-9]{1,14}$, else INVALID_PHONE (the upstream's sentence)
 *   freeform: message: a string with a non-White_Space character, at most
 *     max_chars code points, else VALIDATION_ERROR / MESSAGE_TOO_LONG
 *   template: template_id integer >= 1; recipient_name optional string of
 *     at most 255 code points; variables optional object of strings or
 *     numbers -> VALIDATION_ERROR with the field
 * "Optional" means absent or null. Unknown members are left alone. */
#ifndef WAGATE_PRECHECK_H
#define WAGATE_PRECHECK_H

#include <stddef.h>
#include <stdint.h>

#include "reply.h"

enum precheck_kind { PRECHECK_FREEFORM, PRECHECK_TEMPLATE };

#define PRECHECK_PHONE_MAX 16 /* "+" and at most 15 digits */

struct precheck_result {
    /* verdict: status 0 = acceptable; else error is the row of reply.h's
     * table to answer, and status, code and sentence are that row's */
    enum gw_error error;
    int status;
    const char *code;     /* "VALIDATION_ERROR", ...; static */
    const char *sentence; /* human sentence; static */
    const char *field;    /* for VALIDATION_ERROR, else NULL; static */
    long long length;     /* MESSAGE_TOO_LONG: code points found */
    long long max_length; /* MESSAGE_TOO_LONG: the limit */
    /* what was learned (for logs, auth and the session cache), filled as
     * soon as the body parses, even when a later check fails: sender_id
     * when it is a valid one (else -1), recipient when it is E.164 (else
     * ""). length and max_length are 0 unless MESSAGE_TOO_LONG. */
    long long sender_id;
    char recipient[PRECHECK_PHONE_MAX + 1];
};

/* Validates a send body. Returns 0 when acceptable, -1 with r->status etc.
 * set when not. r is always fully written. */
int precheck_body(enum precheck_kind kind, const char *body, size_t len,
                  long long max_chars, struct precheck_result *r);

/* 1 if s (NUL-terminated) is E.164: ^\+[1-9][0-9]{1,14}$. */
int precheck_is_e164(const char *s);

/* The number a valid E.164 string stands for (digits after '+'), used as
 * the session cache key; 0 if s is not E.164. Distinct E.164 strings map to
 * distinct numbers (no leading zero is possible). */
uint64_t precheck_phone_key(const char *s);

/* Counts the code points of UTF-8 text s[0..len); -1 if it is not valid
 * UTF-8 (overlong forms, surrogates, values above U+10FFFF, truncation). */
long long precheck_utf8_count(const char *s, size_t len);

/* 1 if the UTF-8 text holds a character outside Unicode White_Space (an
 * invalid byte counts as such a character). */
int precheck_has_non_space(const char *s, size_t len);

/* The exact sentence the upstream uses for INVALID_PHONE (reply.h's). */
#define precheck_invalid_phone_sentence reply_invalid_phone_sentence

#endif
