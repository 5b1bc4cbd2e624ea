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
#include "session_cache.h"
#include "shaper.h"
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

static void
get_session(const struct admin_ctx *ctx, long long sender, const char *phone,
            int64_t now, struct admin_result *r)
{
    struct cache_view v;
    if (cache_get(ctx->gw->cache, sender, precheck_phone_key(phone), now,
                  ctx->recheck_ms, &v) != 0) {
        fail(r, GW_ERR_SESSION_NOT_FOUND, NULL);
        return;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "sender_id", json_object_new_int64(sender));
    json_object_object_add(o, "recipient_phone", json_object_new_string(phone));
    json_object_object_add(o, "state",
                           json_object_new_string(v.open ? "open" : "closed"));
    json_object_object_add(o, "expires_at", time_or_null(v.expires_at));
    json_object_object_add(o, "learned_at", time_or_null(v.learned_at));
    json_object_object_add(o, "trusted_until",
                           v.open ? NULL : time_or_null(v.trusted_until));
    json_object_object_add(o, "source",
                           json_object_new_string(source_names[v.source]));
    r->status = 200;
    r->body = to_text(o);
}

static void
session_get(const struct admin_ctx *ctx, const struct admin_req *q,
            struct admin_result *r)
{
    struct query_result qr;
    if (admin_query(QUERY_SESSION, q->query, &qr, r) != 0)
        return;
    get_session(ctx, qr.v.sender_id, qr.v.recipient, q->now, r);
}

static void
session_forget(const struct admin_ctx *ctx, const struct admin_req *q,
               struct admin_result *r)
{
    struct query_result qr;
    if (admin_query(QUERY_SESSION, q->query, &qr, r) != 0)
        return;
    cache_forget(ctx->gw->cache, qr.v.sender_id,
                 precheck_phone_key(qr.v.recipient));
    r->status = 204;
}

static void
inbound(const struct admin_ctx *ctx, const struct admin_req *q,
        struct admin_result *r)
{
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
        cache_learn_open(ctx->gw->cache, sender, precheck_phone_key(phone),
                         at + LEARN_WINDOW_MS, CACHE_SRC_INBOUND, now);
        r->status = 204;
    }
    json_object_put(o);
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
    if (r.status >= 400) {
        json_object *extra = NULL;
        if (r.field) {
            extra = json_object_new_object();
            json_object_object_add(extra, "field",
                                   json_object_new_string(r.field));
        }
        if (r.allow)
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                              r.allow);
        ex_error(ex, r.error, NULL, extra);
        json_object_put(extra);
    } else if (r.body) {
        ex_local(ex, r.status, "application/json", r.body, strlen(r.body));
    } else {
        ex_reply(ex, r.status, NULL, "gateway", DECISION_LOCAL, NULL);
    }
    free(r.body);
}
