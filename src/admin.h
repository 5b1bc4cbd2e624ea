/* admin.h - the admin API of SPEC section 7, behind the admin token:
 *   GET    /admin/sessions?sender_id=&recipient_phone=  -> the entry
 *   DELETE /admin/sessions?sender_id=&recipient_phone=  -> 204
 *   POST   /admin/sessions/inbound {"sender_id","recipient_phone",
 *          "received_at"?}                              -> 204
 *   GET    /admin/stats                                 -> counters (the
 *          stats registry's JSON, stats.h)
 *   DELETE /admin/pause                                 -> 204: ends a
 *          pause an upstream 429 imposed (both limiters)
 * Every path takes only its documented query keys, judged by query.h's
 * rules (/admin/sessions: sender_id and recipient_phone, both required;
 * the others: none): a refusal is 400 BAD_REQUEST or 422 with its field.
 * Transport-free: the server checks the token and sends what this
 * module decides. */
#ifndef WAGATE_ADMIN_H
#define WAGATE_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "query.h"

struct gateway;

struct admin_ctx {
    /* borrowed: its session cache (the /admin/sessions paths), its
     * limiters (DELETE /admin/pause; NULL ones are skipped) and everything
     * /admin/stats reports */
    struct gateway *gw;
    int64_t recheck_ms; /* session_cache.recheck_after_s, in ms */
};

struct admin_result {
    int status;           /* 200, 204, or an error status */
    const char *code;     /* error_code when status >= 400; static */
    const char *sentence; /* static */
    const char *field;    /* VALIDATION_ERROR's field, or NULL; static or
                             field_buf, valid as long as the result */
    const char *allow;    /* for 405 */
    char *body;           /* 200: JSON text, caller frees; else NULL */
    char field_buf[QUERY_FIELD_MAX + 1]; /* a query key named in field */
};

/* method: "GET", "POST", "DELETE", ...; query without '?', may be NULL. */
void admin_handle(const struct admin_ctx *ctx, const char *method,
                  const char *path, const char *query, const char *body,
                  size_t len, int64_t now, struct admin_result *r);

#endif
