/* query.h - the query strings of the gateway's own routes. Pure: bytes in,
 * verdict and values out; no I/O, no allocation.
 *
 * Why: the gateway checks a query and the upstream reads it; if the two
 * could read different things (an encoded key, a key given twice) a caller
 * could be checked for one sender and served another's data. So each route
 * takes only its documented keys, each at most once, compared after
 * percent-decoding, and what goes upstream is never the caller's string but
 * the query rebuilt from the validated values (query_canonical).
 *
 * A query is form-encoded: `key=value` pairs joined by '&', "%XX" escapes,
 * '+' decoding to a space (so a recipient_phone must send its '+' as %2B;
 * a raw '+' makes it " 1415...", which is not E.164). An absent or empty
 * query has no pairs. The first refusal that applies wins: syntax over the
 * whole string first, then the pairs from left to right, then a required
 * key that is missing.
 *
 *   400 BAD_REQUEST, no field (malformed, whatever the route):
 *     a raw byte outside visible ASCII 0x21-0x7E (space, TAB, CR, LF, other
 *     control bytes, DEL, any byte >= 0x80); an empty pair (`&&`, a leading
 *     or a trailing '&'); a pair without '='; an empty key; a '%' not
 *     followed by two hex digits; %00 anywhere; a key that decodes to a
 *     byte outside visible ASCII (`sender_id+`, `sender_id%20`).
 *   422 VALIDATION_ERROR, field = the decoded key (cut at QUERY_FIELD_MAX
 *     bytes): a key the route does not take (keys are case-sensitive); a
 *     key given twice (`sender_id` and `sender%5Fid` are the same key); a
 *     sender_id that is not ^[1-9][0-9]{0,18}$ within a signed 64-bit
 *     integer; a status outside the route's values; a required key absent.
 *   422 INVALID_PHONE, no field (the upstream's sentence, as for a send
 *     body): a recipient_phone that decoded is not E.164
 *     ^\+[1-9][0-9]{1,14}$.
 *
 * Specs (the documented keys of each route):
 *   QUERY_NONE      no key (the send routes, admin paths without keys)
 *   QUERY_SESSION   sender_id and recipient_phone, both required
 *                   (session-status, /admin/sessions)
 *   QUERY_SENDERS   status: online | all, optional (GET /senders)
 *   QUERY_TEMPLATES status: approved | all, optional (/senders/{id}/templates)
 *   QUERY_REFUSALS  sender_id, optional; kind: balance, optional, read
 *                   into v.status (DELETE /admin/refusals, which wants
 *                   exactly one of them)
 */
#ifndef WAGATE_QUERY_H
#define WAGATE_QUERY_H

#include <stddef.h>

#include "precheck.h"
#include "reply.h"

enum query_spec {
    QUERY_NONE,
    QUERY_SESSION,
    QUERY_SENDERS,
    QUERY_TEMPLATES,
    QUERY_REFUSALS,
    QUERY_SPEC_COUNT
};

#define QUERY_FIELD_MAX 64 /* bytes of an unknown key echoed in "field" */
/* the longest canonical query of any spec, without its NUL:
 * "sender_id=" 19 digits "&recipient_phone=%2B" 15 digits */
#define QUERY_CANONICAL_MAX 64

/* The validated values. */
struct query_values {
    long long sender_id;                    /* -1 when absent */
    char recipient[PRECHECK_PHONE_MAX + 1]; /* E.164, "" when absent */
    const char *status;                     /* static; NULL when absent */
};

struct query_result {
    /* status 0 = acceptable; else error is the row of reply.h's table to
     * answer, and status, code and sentence are that row's */
    enum gw_error error;
    int status;           /* 0 = acceptable; else 400 or 422 */
    const char *code;     /* "BAD_REQUEST", ...; static; NULL when 0 */
    const char *sentence; /* static; NULL when 0 */
    char field[QUERY_FIELD_MAX + 1]; /* "" when none */
    /* when status is 0, what the query said; otherwise all absent, so that
     * nothing of a refused query is ever used */
    struct query_values v;
};

/* Parses q[0..len) (the raw query after '?', not NUL-terminated; q may be
 * NULL when len is 0) against spec. Returns 0 when acceptable, -1 when
 * refused; r is always fully written. */
int query_parse(enum query_spec spec, const char *q, size_t len,
                struct query_result *r);

/* Writes the canonical query of v for spec into out (NUL-terminated,
 * truncated to outlen; out may be NULL when outlen is 0): the present
 * values in the spec's key order, percent-encoded except for ALPHA, DIGIT
 * and "-._~" (so "sender_id=12&recipient_phone=%2B14155550123"), "" when
 * none. Returns its length, at most QUERY_CANONICAL_MAX for values
 * query_parse accepted. */
size_t query_canonical(enum query_spec spec, const struct query_values *v,
                       char *out, size_t outlen);

#endif
