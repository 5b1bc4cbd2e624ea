/* admin.c - see admin.h. */
#include "admin.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "gateway.h"
#include "isotime.h"
#include "json_strict.h"
#include "learn.h"
#include "precheck.h"
#include "query.h"
#include "session_cache.h"
#include "shaper.h"
#include "stats.h"

static const char *const source_names[] = {"send_freeform", "session_status",
                                           "template", "inbound"};

static void
fail(struct admin_result *r, int status, const char *code, const char *sentence,
     const char *field)
{
    r->status = status;
    r->code = code;
    r->sentence = sentence;
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
    fail(r, q->status, q->code, q->sentence,
         r->field_buf[0] ? r->field_buf : NULL);
    return -1;
}

static void
get_session(const struct admin_ctx *ctx, long long sender, const char *phone,
            int64_t now, struct admin_result *r)
{
    struct cache_view v;
    if (cache_get(ctx->gw->cache, sender, precheck_phone_key(phone), now,
                  ctx->recheck_ms, &v) != 0) {
        fail(r, 404, "SESSION_NOT_FOUND",
             "The session cache holds nothing for this sender and "
             "recipient.",
             NULL);
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
sessions(const struct admin_ctx *ctx, const char *method, const char *query,
         int64_t now, struct admin_result *r)
{
    struct query_result q;
    int get = strcmp(method, "GET") == 0, del = strcmp(method, "DELETE") == 0;
    if (!get && !del) {
        fail(r, 405, "METHOD_NOT_ALLOWED",
             "This method is not allowed on this path.", NULL);
        r->allow = "GET, DELETE";
        return;
    }
    if (admin_query(QUERY_SESSION, query, &q, r) != 0)
        return;
    if (get) {
        get_session(ctx, q.v.sender_id, q.v.recipient, now, r);
        return;
    }
    cache_forget(ctx->gw->cache, q.v.sender_id,
                 precheck_phone_key(q.v.recipient));
    r->status = 204;
}

static void
inbound(const struct admin_ctx *ctx, const char *query, const char *body,
        size_t len, int64_t now, struct admin_result *r)
{
    struct query_result q;
    if (admin_query(QUERY_NONE, query, &q, r) != 0)
        return;
    json_object *o = json_strict_parse_object(body, len, JSON_STRICT_BODY), *v;
    if (o == NULL) {
        fail(r, 400, "INVALID_JSON", "The body must be one JSON object.", NULL);
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
        fail(r, 422, "VALIDATION_ERROR",
             "sender_id must be an integer of at least 1.", "sender_id");
    else if (phone == NULL)
        fail(r, 422, "VALIDATION_ERROR", "recipient_phone is required.",
             "recipient_phone");
    else if (!precheck_is_e164(phone))
        fail(r, 422, "INVALID_PHONE", precheck_invalid_phone_sentence, NULL);
    else if (has_at &&
             (!json_object_is_type(v, json_type_string) ||
              isotime_parse(json_object_get_string(v),
                            (size_t)json_object_get_string_len(v), &at) != 0))
        fail(r, 422, "VALIDATION_ERROR",
             "received_at must be an ISO 8601 time with an offset.",
             "received_at");
    else {
        cache_learn_open(ctx->gw->cache, sender, precheck_phone_key(phone),
                         at + LEARN_WINDOW_MS, CACHE_SRC_INBOUND, now);
        r->status = 204;
    }
    json_object_put(o);
}

static void
stats(const struct admin_ctx *ctx, const char *query, struct admin_result *r)
{
    struct query_result q;
    if (admin_query(QUERY_NONE, query, &q, r) != 0)
        return;
    r->status = 200;
    r->body = to_text(stats_admin_json(ctx->gw));
}

/* DELETE /admin/pause: sends go again at the normal rate (204 whether
 * or not a pause was in force: the state asked for holds either way). */
static void
end_pause(const struct admin_ctx *ctx, const char *method,
          struct admin_result *r)
{
    if (strcmp(method, "DELETE") != 0) {
        fail(r, 405, "METHOD_NOT_ALLOWED",
             "This method is not allowed on this path.", NULL);
        r->allow = "DELETE";
        return;
    }
    if (ctx->gw->send_shaper)
        shaper_resume(ctx->gw->send_shaper);
    if (ctx->gw->read_shaper)
        shaper_resume(ctx->gw->read_shaper);
    r->status = 204;
}

void
admin_handle(const struct admin_ctx *ctx, const char *method, const char *path,
             const char *query, const char *body, size_t len, int64_t now,
             struct admin_result *r)
{
    memset(r, 0, sizeof(*r));
    if (strcmp(path, "/admin/sessions") == 0) {
        sessions(ctx, method, query, now, r);
    } else if (strcmp(path, "/admin/sessions/inbound") == 0) {
        if (strcmp(method, "POST") == 0)
            inbound(ctx, query, body, len, now, r);
        else {
            fail(r, 405, "METHOD_NOT_ALLOWED",
                 "This method is not allowed on this path.", NULL);
            r->allow = "POST";
        }
    } else if (strcmp(path, "/admin/stats") == 0) {
        if (strcmp(method, "GET") == 0)
            stats(ctx, query, r);
        else {
            fail(r, 405, "METHOD_NOT_ALLOWED",
                 "This method is not allowed on this path.", NULL);
            r->allow = "GET";
        }
    } else if (strcmp(path, "/admin/pause") == 0) {
        end_pause(ctx, method, r);
    } else {
        fail(r, 404, "ROUTE_NOT_FOUND", "No such admin route.", NULL);
    }
}
