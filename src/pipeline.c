/* pipeline.c - see pipeline.h. */
#include "pipeline.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "alloc.h"
#include "auth.h"
#include "config.h"
#include "exchange.h"
#include "forward.h"
#include "gateway.h"
#include "headers.h"
#include "learn.h"
#include "precheck.h"
#include "reply.h"
#include "route.h"
#include "session_cache.h"
#include "upstream.h"

/* ---- the answer ---- */

static void
on_upstream(void *arg, enum upstream_result r,
            const struct upstream_response *resp, const char *errstr)
{
    struct exchange *ex = arg;
    const struct config *cfg = ex->gw->cfg;
    char sentence[160];
    if (r == UPSTREAM_OK) {
        ex->upstream_status = resp->status;
        size_t len = evbuffer_get_length(resp->body);
        const char *body = len ? (const char *)evbuffer_pullup(resp->body, -1)
                               : "";
        learn_from_answer(ex->gw->cache, ex->route->id, ex->sender_id,
                          precheck_phone_key(ex->recipient), resp->status,
                          body, len, gateway_wall_ms());
        if (ex->req != NULL)
            forward_copy_headers(resp,
                                 evhttp_request_get_output_headers(ex->req));
        ex_reply(ex, resp->status, resp->body, "upstream", "forwarded", NULL);
        return;
    }
    if (r == UPSTREAM_TIMEOUT) {
        snprintf(sentence, sizeof(sentence),
                 "The upstream API did not answer within %lld ms.",
                 cfg->timeout_ms);
        ex_error_as(ex, "forwarded", 504, "UPSTREAM_TIMEOUT", sentence, NULL);
        return;
    }
    snprintf(sentence, sizeof(sentence),
             "The upstream API is unavailable (%s).", errstr);
    ex_error_as(ex, "forwarded", 502, "UPSTREAM_UNAVAILABLE", sentence, NULL);
}

static void
forward(struct exchange *ex, const char *path, const char *query,
        const char *body, size_t len)
{
    int post = ex->route->kind == ROUTE_KIND_SEND;
    size_t n = strlen(path) + (query ? strlen(query) + 1 : 0) + 1;
    ex->path_query = xmalloc(n);
    snprintf(ex->path_query, n, "%s%s%s", path, query ? "?" : "",
             query ? query : "");
    struct upstream_call call;
    forward_build_call(ex->req, post, ex->path_query, ex->reqid, body, len,
                       &call);
    ex_defer(ex);
    upstream_start(ex->gw->up, &call, on_upstream, ex);
}

/* ---- pre-check steps; each answers and returns -1 on refusal ---- */

static int
check_caller(struct exchange *ex)
{
    const struct config *cfg = ex->gw->cfg;
    if (cfg->nclients == 0)
        return 0; /* auth off: loopback-only, checked at startup */
    const char *h = evhttp_find_header(
        evhttp_request_get_input_headers(ex->req), "Authorization");
    ex->client = auth_find_client(cfg, h);
    if (ex->client != NULL)
        return 0;
    ex_error(ex, 401, "UNAUTHORIZED",
             h ? "The bearer token is not a known client's."
               : "A bearer token is required (Authorization: Bearer ...).",
             NULL);
    return -1;
}

static int
check_body_framing(struct exchange *ex, size_t len)
{
    const struct config *cfg = ex->gw->cfg;
    if (len > (size_t)cfg->max_body_bytes) {
        char sentence[96];
        snprintf(sentence, sizeof(sentence),
                 "The request body is larger than %lld bytes.",
                 cfg->max_body_bytes);
        ex_error(ex, 413, "PAYLOAD_TOO_LARGE", sentence, NULL);
        return -1;
    }
    if (!headers_is_json_type(evhttp_find_header(
            evhttp_request_get_input_headers(ex->req), "Content-Type"))) {
        ex_error(ex, 415, "UNSUPPORTED_MEDIA_TYPE",
                 "The request body must be sent as application/json.", NULL);
        return -1;
    }
    return 0;
}

static int
check_fields(struct exchange *ex, const char *body, size_t len)
{
    struct precheck_result pr;
    enum precheck_kind kind = ex->route->id == ROUTE_SEND_FREEFORM
                                  ? PRECHECK_FREEFORM
                                  : PRECHECK_TEMPLATE;
    int rc = precheck_body(kind, body, len, ex->gw->cfg->max_message_chars,
                           &pr);
    ex->sender_id = pr.sender_id;
    memcpy(ex->recipient, pr.recipient, sizeof(ex->recipient));
    if (rc == 0)
        return 0;
    json_object *extra = json_object_new_object();
    if (extra == NULL)
        alloc_oom("json_object_new_object");
    if (pr.field)
        json_object_object_add(extra, "field",
                               json_object_new_string(pr.field));
    if (strcmp(pr.code, "MESSAGE_TOO_LONG") == 0) {
        json_object_object_add(extra, "length",
                               json_object_new_int64(pr.length));
        json_object_object_add(extra, "max_length",
                               json_object_new_int64(pr.max_length));
    }
    ex_error(ex, pr.status, pr.code, pr.sentence, extra);
    json_object_put(extra);
    return -1;
}

static int
check_sender(struct exchange *ex)
{
    if (ex->client == NULL || auth_sender_allowed(ex->client, ex->sender_id))
        return 0;
    ex_error(ex, 403, "SENDER_NOT_ALLOWED",
             "This client may not use this sender.", NULL);
    return -1;
}

static int
check_session(struct exchange *ex)
{
    struct gateway *gw = ex->gw;
    int64_t expired_at;
    if (ex->route->id != ROUTE_SEND_FREEFORM)
        return 0;
    enum cache_decision d = cache_decide(
        gw->cache, ex->sender_id, precheck_phone_key(ex->recipient),
        gateway_wall_ms(), gw->cfg->cache_recheck_after_s * 1000,
        &expired_at);
    if (d == CACHE_FORWARD)
        return 0;
    struct evbuffer *b = reply_session_expired_body(expired_at);
    char xw[96];
    reply_reason_header("SESSION_EXPIRED", xw, sizeof(xw));
    if (ex->req != NULL)
        evhttp_add_header(evhttp_request_get_output_headers(ex->req),
                          "Content-Type", "application/json");
    ex_reply(ex, 403, b, xw, "short_circuit", "session_expired");
    evbuffer_free(b);
    return -1;
}

/* ---- the read routes: what the query and path say ---- */

static void
note_read_target(struct exchange *ex, const char *path, const char *query)
{
    if (ex->route->id == ROUTE_TEMPLATES) {
        ex->sender_id = route_templates_sender(path);
        return;
    }
    if (ex->route->id != ROUTE_SESSION_STATUS || query == NULL)
        return;
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    if (evhttp_parse_query_str(query, &q) != 0)
        return;
    const char *sid = evhttp_find_header(&q, "sender_id");
    const char *ph = evhttp_find_header(&q, "recipient_phone");
    char *end;
    long long n = sid ? strtoll(sid, &end, 10) : -1;
    if (sid && *sid && *end == '\0' && n >= 1)
        ex->sender_id = n;
    /* decoded as the upstream decodes it: a raw '+' is a space and then
     * not E.164, so nothing is learned from what the upstream refuses */
    if (ph && precheck_is_e164(ph))
        snprintf(ex->recipient, sizeof(ex->recipient), "%s", ph);
    evhttp_clear_headers(&q);
}

void
pipeline_run(struct exchange *ex, const char *path, const char *query)
{
    if (check_caller(ex) != 0)
        return;
    if (ex->route->kind == ROUTE_KIND_READ) {
        note_read_target(ex, path, query);
        if (ex->route->id != ROUTE_SENDERS && check_sender(ex) != 0)
            return;
        forward(ex, path, query, NULL, 0);
        return;
    }
    struct evbuffer *ib = evhttp_request_get_input_buffer(ex->req);
    size_t len = evbuffer_get_length(ib);
    const char *body = len ? (const char *)evbuffer_pullup(ib, -1) : "";
    if (check_body_framing(ex, len) != 0 || check_fields(ex, body, len) != 0 ||
        check_sender(ex) != 0 || check_session(ex) != 0)
        return;
    forward(ex, path, query, body, len);
}
