/* admin.h - the admin API of SPEC section 7, behind the admin token:
 *   GET    /admin/sessions?sender_id=&recipient_phone=  -> the entry
 *   DELETE /admin/sessions?sender_id=&recipient_phone=  -> 204
 *   POST   /admin/sessions/inbound {"sender_id","recipient_phone",
 *          "received_at"?}                              -> 204
 *   GET    /admin/stats                                 -> counters (the
 *          stats registry's JSON, stats.h)
 *   DELETE /admin/pause                                 -> 204: ends a
 *          pause an upstream 429 imposed (both limiters)
 *   GET    /admin/refusals                              -> the learned
 *          refusals (SPEC section 4a): {"refusals": [{"kind",
 *          "sender_id" (null for the balance), "learned_at",
 *          "checked_at", "trusted_until", "trusted"}, ...]}, the balance
 *          first, then the senders in ascending id
 *   DELETE /admin/refusals?sender_id=N | ?kind=balance  -> 204: forgets
 *          that sender's entry, or the balance's (exactly one of them;
 *          204 also when there was none)
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
 * The session paths act on the state (state.h), which may answer later
 * (a shared store: SPEC section 11): admin_handle() judges the request
 * and, when it passes, says what to ask the state (r->ask) instead of an
 * answer; admin_ask() asks it, and admin_complete_view() /
 * admin_complete_done() turn the state's answer into the result. A store
 * that could not be asked is 503 STATE_UNAVAILABLE with Retry-After.
 *
 * admin_handle() is the transport-free core (unit-tested without
 * sockets); admin_answer() is the glue that turns a request into it, waits
 * for the state's answer (the exchange is deferred meanwhile, as the
 * pipeline's are) and turns the result into the answer. */
#ifndef WAGATE_ADMIN_H
#define WAGATE_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "precheck.h"
#include "query.h"
#include "reply.h"
#include "state.h"

struct exchange;
struct gateway;

struct admin_ctx {
    /* borrowed: its state (the /admin/sessions paths), its limiters
     * (DELETE /admin/pause; NULL ones are skipped) and everything
     * /admin/stats reports */
    struct gateway *gw;
    int64_t recheck_ms; /* session_cache.recheck_after_s, in ms */
};

#define ADMIN_ALLOW_MAX 31 /* the longest Allow list */

/* What a session path asks of the state once its request passed. */
enum admin_ask {
    ADMIN_ASK_NONE = 0, /* the result is complete */
    ADMIN_ASK_GET,      /* state_cache_get: 200 and the entry, or 404 */
    ADMIN_ASK_FORGET,   /* state_cache_forget: 204 */
    ADMIN_ASK_OPEN,     /* state_cache_open: 204 */
    ADMIN_ASK_RLIST,    /* state_refusal_list: 200 and every entry */
    ADMIN_ASK_RFORGET,  /* state_refusal_forget (sender, 0: the balance):
                           204 */
};

struct admin_result {
    enum gw_error error;  /* status >= 400: the row of reply.h's table */
    int status;           /* 200, 204, or an error status; 0 while the
                           * state is to be asked (ask) */
    const char *code;     /* error_code when status >= 400; static */
    const char *sentence; /* static */
    const char *field;    /* VALIDATION_ERROR's field, or NULL; static or
                             field_buf, valid as long as the result */
    const char *allow;    /* for 405: allow_buf */
    char *body;           /* 200: JSON text, caller frees; else NULL */
    char field_buf[QUERY_FIELD_MAX + 1]; /* a query key named in field */
    char allow_buf[ADMIN_ALLOW_MAX + 1];
    /* status 0: what to ask, of which pair */
    enum admin_ask ask;
    long long sender;
    char phone[PRECHECK_PHONE_MAX + 1]; /* valid E.164 */
    int64_t expires_at;                 /* ADMIN_ASK_OPEN: ms since the epoch */
    int64_t for_ms;                     /* ADMIN_ASK_OPEN: or, > 0, from now */
    int64_t recheck_ms;                 /* ADMIN_ASK_GET: the context's */
};

/* method: "GET", "POST", "DELETE", ... (compared exactly); path without
 * the query; query without '?', may be NULL; body borrowed. */
void admin_handle(const struct admin_ctx *ctx, const char *method,
                  const char *path, const char *query, const char *body,
                  size_t len, int64_t now, struct admin_result *r);

/* Asks ctx's state what r->ask says (r is read during the call only): the
 * answer goes to on_view (ADMIN_ASK_GET) or on_done, with arg, at once or
 * later, as state.h says; returns state.h's handle or NULL. */
struct state_op *admin_ask(const struct admin_ctx *ctx,
                           const struct admin_result *r, state_view_cb on_view,
                           state_done_cb on_done, void *arg);

/* The JSON of one learned refusal, as GET /admin/refusals lists it
 * (caller puts it). */
struct json_object *admin_refusal_json(const struct refusal_view *v);

/* Completes r (its ask, sender and phone set) from the state's answer:
 * for a GET, the entry as JSON (200) or 404 SESSION_NOT_FOUND; for a
 * forget or an inbound event, 204; 503 STATE_UNAVAILABLE when the store
 * could not be asked. */
void admin_complete_view(struct admin_result *r,
                         const struct state_window_view *w);
void admin_complete_done(struct admin_result *r, enum state_status status);

/* Answers ex, an admin route (ROUTE_ADMIN), through exchange.h: checks
 * the token (auth.h) and the body size, runs admin_handle() at the wall
 * clock's now, asks the state when the result says so, and sends the
 * result (an error in the SPEC section 2 shape, with its Allow or field,
 * and Retry-After for STATE_UNAVAILABLE). ex is freed once answered. */
void admin_answer(struct exchange *ex, const char *path, const char *query);

#endif
