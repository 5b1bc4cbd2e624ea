/* admin.h - the admin API of SPEC section 7, behind the admin token:
 *   GET    /admin/sessions?sender_id=&recipient_phone=  -> the entry
 *   DELETE /admin/sessions?sender_id=&recipient_phone=  -> 204
 *   POST   /admin/sessions/inbound {"sender_id","recipient_phone",
 *          "received_at"?}                              -> 204
 *   GET    /admin/stats                                 -> counters
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
#include "reply.h"

struct session_cache;
struct shaper;
struct json_object;

struct admin_ctx {
    struct session_cache *cache;
    int64_t recheck_ms;
    /* adds the server's counters to the stats object (borrowed) */
    void (*add_stats)(void *arg, struct json_object *stats);
    void *arg;
    /* the limiters DELETE /admin/pause resumes; NULL ones are skipped */
    struct shaper *send_shaper, *read_shaper;
};

struct admin_result {
    enum gw_error error;  /* status >= 400: the row of reply.h's table */
    int status;           /* 200, 204, or an error status */
    const char *code;     /* error_code when status >= 400; static */
    const char *sentence; /* static */
    const char *field;    /* VALIDATION_ERROR's field, or NULL; static or
                             field_buf, valid as long as the result */
    const char *allow;    /* for 405 */
    char *body;           /* 200: JSON text, caller frees; else NULL */
    char field_buf[QUERY_FIELD_MAX + 1]; /* a query key named in field */
};

/* Adds name: v to a stats object (o borrowed). */
void admin_stat(struct json_object *o, const char *name, int64_t v);

/* method: "GET", "POST", "DELETE", ...; query without '?', may be NULL. */
void admin_handle(const struct admin_ctx *ctx, const char *method,
                  const char *path, const char *query, const char *body,
                  size_t len, int64_t now, struct admin_result *r);

#endif
