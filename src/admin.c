/* admin.c - see admin.h. The table of admin routes sits above
 * admin_handle(); the handlers above it check only their query and body. */
#include "admin.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "auth.h"
#include "clock.h"
#include "config.h"
#include "decision.h"
#include "exchange.h"
#include "gateway.h"
#include "isotime.h"
#include "json_strict.h"
#include "learn.h"
#include "precheck.h"
#include "query.h"
#include "refusals.h"
#include "session_cache.h"
#include "shaper.h"
#include "state.h"
#include "stats.h"

/* What every handler gets. */
struct admin_req {
    const char *query; /* may be NULL */
    const char *body;
    size_t len;
    int64_t now;
};

static const char *const source_names[] = {"send_freeform", "session_status",
                                           "template", "inbound"};

static void
fail(struct admin_result *r, enum gw_error e, const char *field)
{
    const struct gw_error_row *row = reply_row(e);
    r->error = e;
    r->status = row->status;
    r->code = row->code;
    r->sentence = row->sentence;
    r->field = field;
}

static char *
to_text(json_object *o)
{
    char *s = xstrdup(json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

static json_object *
time_or_null(int64_t ms)
{
    char buf[40];
    if (ms == CACHE_TIME_UNKNOWN)
        return NULL;
    return json_object_new_string(isotime_format(ms, buf, sizeof(buf)));
}

/* The query of an admin path, judged by the same rules as the gateway's
 * routes (query.h). 0 when acceptable. */
static int
admin_query(enum query_spec spec, const char *query, struct query_result *q,
            struct admin_result *r)
{
    if (query_parse(spec, query, query ? strlen(query) : 0, q) == 0)
        return 0;
    memcpy(r->field_buf, q->field, sizeof(r->field_buf));
    fail(r, q->error, r->field_buf[0] ? r->field_buf : NULL);
    return -1;
}

/* The request passed: what remains is the state's to answer. */
static void
ask(struct admin_result *r, enum admin_ask what, long long sender,
    const char *phone)
{
    r->status = 0;
    r->ask = what;
    r->sender = sender;
    snprintf(r->phone, sizeof(r->phone), "%s", phone);
}

static void
session_get(const struct admin_ctx *ctx, const struct admin_req *q,
            struct admin_result *r)
{
    struct query_result qr;
    if (admin_query(QUERY_SESSION, q->query, &qr, r) != 0)
        return;
    ask(r, ADMIN_ASK_GET, qr.v.sender_id, qr.v.recipient);
    r->recheck_ms = ctx->recheck_ms;
}

static void
session_forget(const struct admin_ctx *ctx, const struct admin_req *q,
               struct admin_result *r)
{
    (void)ctx;
    struct query_result qr;
    if (admin_query(QUERY_SESSION, q->query, &qr, r) != 0)
        return;
    ask(r, ADMIN_ASK_FORGET, qr.v.sender_id, qr.v.recipient);
}

static void
inbound(const struct admin_ctx *ctx, const struct admin_req *q,
        struct admin_result *r)
{
    (void)ctx;
    struct query_result qr;
    if (admin_query(QUERY_NONE, q->query, &qr, r) != 0)
        return;
    int64_t now = q->now;
    json_object *v;
    json_object *o =
        json_strict_parse_object(q->body, q->len, JSON_STRICT_BODY);
    if (o == NULL) {
        fail(r, GW_ERR_ADMIN_INVALID_JSON, NULL);
        return;
    }
    long long sender = 0;
    const char *phone = NULL;
    int64_t at = now;
    if (json_object_object_get_ex(o, "sender_id", &v) &&
        json_object_is_type(v, json_type_int))
        sender = json_object_get_int64(v);
    if (json_object_object_get_ex(o, "recipient_phone", &v) &&
        json_object_is_type(v, json_type_string))
        phone = json_object_get_string(v);
    int has_at = json_object_object_get_ex(o, "received_at", &v) &&
                 !json_object_is_type(v, json_type_null);
    if (sender < 1)
        fail(r, GW_ERR_SENDER_ID, "sender_id");
    else if (phone == NULL)
        fail(r, GW_ERR_RECIPIENT_MISSING, "recipient_phone");
    else if (!precheck_is_e164(phone))
        fail(r, GW_ERR_INVALID_PHONE, NULL);
    else if (has_at &&
             (!json_object_is_type(v, json_type_string) ||
              isotime_parse(json_object_get_string(v),
                            (size_t)json_object_get_string_len(v), &at) != 0))
        fail(r, GW_ERR_RECEIVED_AT, "received_at");
    else {
        ask(r, ADMIN_ASK_OPEN, sender, phone);
        /* without received_at the store's clock says when "now" is: with
         * Redis, the shared one, whatever this gateway's clock says */
        r->expires_at = has_at ? at + LEARN_WINDOW_MS : 0;
        r->for_ms = has_at ? 0 : LEARN_WINDOW_MS;
    }
    json_object_put(o);
}

/* GET /admin/refusals: no query key; the state lists them. */
static void
refusals_get(const struct admin_ctx *ctx, const struct admin_req *q,
             struct admin_result *r)
{
    (void)ctx;
    struct query_result qr;
    if (admin_query(QUERY_NONE, q->query, &qr, r) != 0)
        return;
    ask(r, ADMIN_ASK_RLIST, 0, "");
}

/* DELETE /admin/refusals?sender_id=N or ?kind=balance: exactly one. */
static void
refusals_forget(const struct admin_ctx *ctx, const struct admin_req *q,
                struct admin_result *r)
{
    (void)ctx;
    struct query_result qr;
    if (admin_query(QUERY_REFUSALS, q->query, &qr, r) != 0)
        return;
    int by_sender = qr.v.sender_id >= 1, by_kind = qr.v.status != NULL;
    if (by_sender == by_kind) {
        fail(r, GW_ERR_REFUSAL_TARGET, by_kind ? "kind" : "sender_id");
        return;
    }
    ask(r, ADMIN_ASK_RFORGET, by_sender ? qr.v.sender_id : 0, "");
}

/* ---- the state's answers ---- */

struct state_op *
admin_ask(const struct admin_ctx *ctx, const struct admin_result *r,
          state_view_cb on_view, state_done_cb on_done, void *arg)
{
    struct state *st = ctx->gw->state;
    uint64_t phone = precheck_phone_key(r->phone);
    switch (r->ask) {
    case ADMIN_ASK_GET:
        return state_cache_get(st, r->sender, phone, r->recheck_ms, on_view,
                               arg);
    case ADMIN_ASK_FORGET:
        return state_cache_forget(st, r->sender, phone, on_done, arg);
    case ADMIN_ASK_OPEN:
        return state_cache_open(st, r->sender, phone, r->expires_at,
                                r->for_ms, on_done, arg);
    case ADMIN_ASK_NONE:
    case ADMIN_ASK_RLIST: /* admin_answer() asks these itself */
    case ADMIN_ASK_RFORGET:
        break;
    }
    return NULL;
}

struct json_object *
admin_refusal_json(const struct refusal_view *v)
{
    json_object *o = json_object_new_object();
    if (o == NULL)
        alloc_oom("json_object_new_object");
    json_object_object_add(o, "kind",
                           json_object_new_string(refusal_kind_name(v->kind)));
    json_object_object_add(o, "sender_id",
                           v->sender >= 1 ? json_object_new_int64(v->sender)
                                          : NULL);
    json_object_object_add(o, "learned_at", time_or_null(v->learned_at));
    json_object_object_add(o, "checked_at", time_or_null(v->checked_at));
    json_object_object_add(o, "trusted_until", time_or_null(v->trusted_until));
    json_object_object_add(o, "trusted", json_object_new_boolean(v->trusted));
    return o;
}

static json_object *
entry_json(long long sender, const char *phone, const struct cache_view *v)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "sender_id", json_object_new_int64(sender));
    json_object_object_add(o, "recipient_phone", json_object_new_string(phone));
    json_object_object_add(o, "state",
                           json_object_new_string(v->open ? "open" : "closed"));
    json_object_object_add(o, "expires_at", time_or_null(v->expires_at));
    json_object_object_add(o, "learned_at", time_or_null(v->learned_at));
    json_object_object_add(o, "trusted_until",
                           v->open ? NULL : time_or_null(v->trusted_until));
    json_object_object_add(o, "source",
                           json_object_new_string(source_names[v->source]));
    return o;
}

void
admin_complete_view(struct admin_result *r, const struct state_window_view *w)
{
    r->ask = ADMIN_ASK_NONE;
    if (w->status != STATE_OK) {
        fail(r, GW_ERR_STATE_UNAVAILABLE, NULL);
    } else if (!w->found) {
        fail(r, GW_ERR_SESSION_NOT_FOUND, NULL);
    } else {
        r->status = 200;
        r->body = to_text(entry_json(r->sender, r->phone, &w->v));
    }
}

void
admin_complete_done(struct admin_result *r, enum state_status status)
{
    r->ask = ADMIN_ASK_NONE;
    if (status != STATE_OK)
        fail(r, GW_ERR_STATE_UNAVAILABLE, NULL);
    else
        r->status = 204;
}

static void
stats(const struct admin_ctx *ctx, const struct admin_req *q,
      struct admin_result *r)
{
    struct query_result qr;
    if (admin_query(QUERY_NONE, q->query, &qr, r) != 0)
        return;
    r->status = 200;
    r->body = to_text(stats_admin_json(ctx->gw));
}

/* DELETE /admin/pause: sends go again at the normal rate (204 whether
 * or not a pause was in force: the state asked for holds either way). */
static void
end_pause(const struct admin_ctx *ctx, const struct admin_req *q,
          struct admin_result *r)
{
    (void)q;
    if (ctx->gw->send_shaper)
        shaper_resume(ctx->gw->send_shaper);
    if (ctx->gw->read_shaper)
        shaper_resume(ctx->gw->read_shaper);
    r->status = 204;
}

/* ---- routing: the one table of admin sub-routes and their methods ---- */

static const struct admin_route {
    const char *path;
    const char *method;
    void (*run)(const struct admin_ctx *, const struct admin_req *,
                struct admin_result *);
} admin_routes[] = {
    {"/admin/sessions", "GET", session_get},
    {"/admin/sessions", "DELETE", session_forget},
    {"/admin/sessions/inbound", "POST", inbound},
    {"/admin/stats", "GET", stats},
    {"/admin/pause", "DELETE", end_pause},
    {"/admin/refusals", "GET", refusals_get},
    {"/admin/refusals", "DELETE", refusals_forget},
};
#define NROUTES (sizeof(admin_routes) / sizeof(admin_routes[0]))

/* 405 with the methods of path's rows as the Allow list. */
static void
not_allowed(const char *path, struct admin_result *r)
{
    size_t n = 0;
    for (size_t i = 0; i < NROUTES; i++) {
        if (strcmp(admin_routes[i].path, path) != 0)
            continue;
        int w = snprintf(r->allow_buf + n, sizeof(r->allow_buf) - n, "%s%s",
                         n ? ", " : "", admin_routes[i].method);
        if (w < 0 || (size_t)w >= sizeof(r->allow_buf) - n) {
            r->allow_buf[n] = '\0'; /* ADMIN_ALLOW_MAX too small: whole
                                     * methods only */
            break;
        }
        n += (size_t)w;
    }
    fail(r, GW_ERR_METHOD_NOT_ALLOWED, NULL);
    r->allow = r->allow_buf;
}

void
admin_handle(const struct admin_ctx *ctx, const char *method, const char *path,
             const char *query, const char *body, size_t len, int64_t now,
             struct admin_result *r)
{
    const struct admin_req q = {query, body, len, now};
    int known = 0;
    memset(r, 0, sizeof(*r));
    for (size_t i = 0; i < NROUTES; i++) {
        if (strcmp(admin_routes[i].path, path) != 0)
            continue;
        known = 1;
        if (strcmp(admin_routes[i].method, method) == 0) {
            admin_routes[i].run(ctx, &q, r);
            return;
        }
    }
    if (known)
        not_allowed(path, r);
    else
        fail(r, GW_ERR_ADMIN_ROUTE_NOT_FOUND, NULL);
}

/* ---- the glue: an exchange in, its one answer out ---- */

/* STATE_UNAVAILABLE's own sentence is a send's: an admin call says what
 * it could not do. */
static const char state_unavailable_sentence[] =
    "The shared state store is unreachable, so the session cache cannot "
    "be read or changed; retry after the time in Retry-After.";

static void
send_result(struct exchange *ex, struct admin_result *r)
{
    struct evhttp_request *req = ex->req; /* NULL once the caller is gone */
    if (r->status >= 400) {
        struct reply_extra field = {.kind = REPLY_EXTRA_FIELD,
                                    .field = r->field};
        const char *sentence = NULL;
        if (r->allow && req)
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                              r->allow);
        if (r->error == GW_ERR_STATE_UNAVAILABLE) {
            sentence = state_unavailable_sentence;
            if (req) /* the link retries within a second (redis_link.h) */
                evhttp_add_header(evhttp_request_get_output_headers(req),
                                  "Retry-After", "1");
        }
        ex_error(ex, r->error, sentence, r->field ? &field : NULL);
    } else if (r->body) {
        ex_local(ex, r->status, "application/json", r->body, strlen(r->body));
    } else {
        ex_reply(ex, r->status, NULL, "gateway", DECISION_LOCAL, NULL);
    }
    free(r->body);
}

/* A result for ex's pair (kept in ex while the state is asked). */
static void
result_of(const struct exchange *ex, enum admin_ask what,
          struct admin_result *r)
{
    memset(r, 0, sizeof(*r));
    r->ask = what;
    r->sender = ex->sender_id;
    snprintf(r->phone, sizeof(r->phone), "%s", ex->recipient);
}

static void
on_view(void *arg, const struct state_window_view *w)
{
    struct exchange *ex = arg;
    struct admin_result r;
    ex->op = NULL;
    result_of(ex, ADMIN_ASK_GET, &r);
    admin_complete_view(&r, w);
    send_result(ex, &r);
}

static void
on_done(void *arg, enum state_status status)
{
    struct exchange *ex = arg;
    struct admin_result r;
    ex->op = NULL;
    result_of(ex, ADMIN_ASK_FORGET, &r);
    admin_complete_done(&r, status);
    send_result(ex, &r);
}

/* GET /admin/refusals: the entries come one by one, into ex's list,
 * then the end (v NULL). */
static void
on_refusal_view(void *arg, enum state_status status,
                const struct refusal_view *v)
{
    struct exchange *ex = arg;
    struct admin_result r;
    if (v != NULL) {
        if (ex->admin_list == NULL &&
            (ex->admin_list = json_object_new_array()) == NULL)
            alloc_oom("json_object_new_array");
        json_object_array_add(ex->admin_list, admin_refusal_json(v));
        return;
    }
    ex->op = NULL;
    memset(&r, 0, sizeof(r));
    if (status != STATE_OK) {
        fail(&r, GW_ERR_STATE_UNAVAILABLE, NULL);
    } else {
        json_object *o = json_object_new_object();
        if (o == NULL)
            alloc_oom("json_object_new_object");
        json_object *list = ex->admin_list ? ex->admin_list
                                           : json_object_new_array();
        ex->admin_list = NULL; /* the object owns it now */
        json_object_object_add(o, "refusals", list);
        r.status = 200;
        r.body = to_text(o);
    }
    send_result(ex, &r);
}

static void
on_refusal_forgot(void *arg, enum state_status status, int found)
{
    struct exchange *ex = arg;
    struct admin_result r;
    (void)found; /* forgetting what is not held is done too */
    ex->op = NULL;
    memset(&r, 0, sizeof(r));
    admin_complete_done(&r, status);
    send_result(ex, &r);
}

static struct state_op *
ask_refusals(struct exchange *ex, const struct admin_result *r)
{
    struct refusal_trust t;
    config_refusal_trust(ex->gw->cfg, &t);
    if (r->ask == ADMIN_ASK_RLIST)
        return state_refusal_list(ex->gw->state, &t, on_refusal_view, ex);
    return state_refusal_forget(ex->gw->state, r->sender, on_refusal_forgot,
                                ex);
}

/* The drain's deadline: the state's answer will not be awaited. An admin
 * call never reaches the upstream. */
static int
admin_halt(struct exchange *ex)
{
    if (ex->op != NULL)
        state_cancel(ex->gw->state, ex->op);
    ex->op = NULL;
    return 0;
}

void
admin_answer(struct exchange *ex, const char *path, const char *query)
{
    const struct config *cfg = ex->gw->cfg;
    struct evhttp_request *req = ex->req;
    if (!cfg->admin_token_set) {
        ex_error(ex, GW_ERR_ADMIN_OFF, NULL, NULL);
        return;
    }
    if (!auth_admin_ok(cfg,
                       evhttp_find_header(evhttp_request_get_input_headers(req),
                                          "Authorization"))) {
        ex_error(ex, GW_ERR_ADMIN_TOKEN, NULL, NULL);
        return;
    }
    struct evbuffer *ib = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(ib);
    if (len > (size_t)cfg->max_body_bytes) {
        ex_error(ex, GW_ERR_BODY_TOO_LARGE, NULL, NULL);
        return;
    }
    const char *body = len ? (const char *)evbuffer_pullup(ib, -1) : "";
    struct admin_ctx ctx = {ex->gw, cfg->cache_recheck_after_s * 1000};
    struct admin_result r;
    admin_handle(&ctx, ex->method, path, query, body, len, clock_wall_ms(), &r);
    if (r.ask == ADMIN_ASK_NONE) {
        send_result(ex, &r);
        return;
    }
    /* the pair goes in the exchange (and its log line) for the answer */
    ex->sender_id = r.sender;
    snprintf(ex->recipient, sizeof(ex->recipient), "%s", r.phone);
    struct state_op *op = r.ask == ADMIN_ASK_RLIST || r.ask == ADMIN_ASK_RFORGET
                              ? ask_refusals(ex, &r)
                              : admin_ask(&ctx, &r, on_view, on_done, ex);
    if (op == NULL)
        return; /* answered: ex may be gone */
    ex->op = op;
    ex_defer(ex, admin_halt);
}
