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
 *
 * Routing: this module owns all of it. route.c gives "/admin" and every
 * "/admin/..." path to ROUTE_ADMIN with no method list (methods 0: the
 * server's method check lets every method through), and admin.c's one
 * table of {path, method, handler} decides the sub-route, its 405 and the
 * Allow header (the methods of that path's rows, in table order). Why not
 * route.c: the token comes first. Without an admin token every admin path
 * is 404 (the API is absent, whatever the method), and a caller without
 * the token gets 401 before learning which methods a path takes; a method
 * list in route.c would answer 405 ahead of both. Order on each request:
 * token set? (404), token right? (401), body size (413), path (404),
 * method (405), then the path's own query and body rules.
 *
 * admin_handle() is the transport-free core (unit-tested without
 * sockets); admin_answer() is the glue that turns a request into it and
 * its result into the answer. */
#ifndef WAGATE_ADMIN_H
#define WAGATE_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "query.h"
#include "reply.h"

struct exchange;
struct gateway;

struct admin_ctx {
    /* borrowed: its session cache (the /admin/sessions paths), its
     * limiters (DELETE /admin/pause; NULL ones are skipped) and everything
     * /admin/stats reports */
    struct gateway *gw;
    int64_t recheck_ms; /* session_cache.recheck_after_s, in ms */
};

#define ADMIN_ALLOW_MAX 31 /* the longest Allow list */

struct admin_result {
    enum gw_error error;  /* status >= 400: the row of reply.h's table */
    int status;           /* 200, 204, or an error status */
    const char *code;     /* error_code when status >= 400; static */
    const char *sentence; /* static */
    const char *field;    /* VALIDATION_ERROR's field, or NULL; static or
                             field_buf, valid as long as the result */
    const char *allow;    /* for 405: allow_buf */
    char *body;           /* 200: JSON text, caller frees; else NULL */
    char field_buf[QUERY_FIELD_MAX + 1]; /* a query key named in field */
    char allow_buf[ADMIN_ALLOW_MAX + 1];
};

/* method: "GET", "POST", "DELETE", ... (compared exactly); path without
 * the query; query without '?', may be NULL; body borrowed. */
void admin_handle(const struct admin_ctx *ctx, const char *method,
                  const char *path, const char *query, const char *body,
                  size_t len, int64_t now, struct admin_result *r);

/* Answers ex, an admin route (ROUTE_ADMIN), through exchange.h: checks
 * the token (auth.h) and the body size, runs admin_handle() at the wall
 * clock's now, and sends its result (an error in the SPEC section 2
 * shape, with its Allow or field). ex is freed. */
void admin_answer(struct exchange *ex, const char *path, const char *query);

#endif
