/* server.c - see server.h. A request's path: on_request() checks framing,
 * route and method, then hands it to answer_local(), answer_admin() or
 * pipeline_run(); exchange.c gives every one of them its single answer. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <json-c/json.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "admin.h"
#include "alloc.h"
#include "auth.h"
#include "config.h"
#include "exchange.h"
#include "gateway.h"
#include "headers.h"
#include "idempotency.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "route.h"
#include "session_cache.h"
#include "shaper.h"
#include "upstream.h"

#define SERVER_BACKLOG 1024
#define SERVER_MAX_HEADERS (32 * 1024)
#define SERVER_EMFILE_PAUSE_MS 100

struct server {
    struct gateway *gw;
    struct event_base *base;
    struct evhttp *http;
    struct evconnlistener **lev;
    size_t nlev;
    struct event *resume_ev; /* re-enables accepting after EMFILE */
    struct event *drain_ev;  /* deadline, then "drained" notification */
    struct event *flush_ev;  /* bounds the wait for cut-off answers */
    size_t unsent;           /* cut-off answers not yet written out */
    void (*drained)(void *);
    void *drained_arg;
};

/* ---- routes the gateway answers itself ---- */

static void
answer_metrics(struct server *s, struct exchange *ex)
{
    struct gateway *gw = s->gw;
    struct cache_stats cs;
    struct shaper_stats ss, rs;
    struct idem_stats is;
    cache_get_stats(gw->cache, &cs);
    shaper_get_stats(gw->send_shaper, &ss);
    shaper_get_stats(gw->read_shaper, &rs);
    idem_get_stats(gw->idem, &is);
    struct metrics_gauges g = {
        .cache_entries = cs.entries,
        .cache_lookups = cs.lookups,
        .cache_hits = cs.hits,
        .cache_short_circuits = cs.short_circuits,
        .send_queue_depth = ss.depth,
        .read_queue_depth = rs.depth,
        .rate_limited = ss.refused + rs.refused,
        .upstream_429s = gw->upstream_429s,
        .in_flight = gw->nwaiting,
        .idem_entries = is.entries,
        .idem_replays = is.replays,
        .draining = gw->draining,
    };
    struct evbuffer *b = evbuffer_new();
    if (b == NULL)
        alloc_oom("evbuffer_new");
    metrics_render(b, &g);
    if (ex->req != NULL)
        evhttp_add_header(evhttp_request_get_output_headers(ex->req),
                          "Content-Type", "text/plain; version=0.0.4");
    ex_reply(ex, 200, b, "gateway", "local", NULL);
    evbuffer_free(b);
}

static void
answer_local(struct server *s, struct exchange *ex)
{
    struct gateway *gw = s->gw;
    char text[1024];
    int n;
    switch (ex->route->id) {
    case ROUTE_HEALTHZ:
        n = snprintf(text, sizeof(text), "{\"status\":\"ok\"}");
        ex_local(ex, 200, "application/json", text, (size_t)n);
        return;
    case ROUTE_READYZ:
        n = snprintf(text, sizeof(text), "{\"status\":\"%s\"}",
                     gw->draining ? "draining" : "ready");
        ex_local(ex, gw->draining ? 503 : 200, "application/json", text,
                 (size_t)n);
        return;
    default:
        answer_metrics(s, ex);
        return;
    }
}

/* ---- the admin API ---- */

static json_object *
shaper_json(const struct shaper *sh)
{
    struct shaper_stats st;
    shaper_get_stats(sh, &st);
    json_object *o = json_object_new_object();
    admin_stat(o, "queue_depth", (int64_t)st.depth);
    admin_stat(o, "submitted", (int64_t)st.submitted);
    admin_stat(o, "rate_limited", (int64_t)st.refused);
    admin_stat(o, "waited", (int64_t)st.waited);
    json_object_object_add(o, "wait_ms_total",
                           json_object_new_double(st.wait_ms_total));
    json_object_object_add(o, "wait_ms_max",
                           json_object_new_double(st.wait_ms_max));
    admin_stat(o, "pauses", (int64_t)st.pauses);
    return o;
}

static void
add_admin_stats(void *arg, json_object *o)
{
    struct server *s = arg;
    struct gateway *gw = s->gw;
    struct idem_stats is;
    json_object *u = json_object_new_object();
    admin_stat(u, "in_flight", (int64_t)gw->nwaiting);
    admin_stat(u, "upstream_429s", (int64_t)gw->upstream_429s);
    json_object_object_add(u, "send_limiter", shaper_json(gw->send_shaper));
    json_object_object_add(u, "read_limiter", shaper_json(gw->read_shaper));
    json_object_object_add(o, "upstream", u);
    idem_get_stats(gw->idem, &is);
    json_object *i = json_object_new_object();
    admin_stat(i, "entries", (int64_t)is.entries);
    admin_stat(i, "in_flight", (int64_t)is.in_flight);
    admin_stat(i, "replays", (int64_t)is.replays);
    admin_stat(i, "conflicts", (int64_t)is.conflicts);
    admin_stat(i, "evictions", (int64_t)is.evictions);
    json_object_object_add(o, "idempotency", i);
    admin_stat(o, "requests_answered", (int64_t)gw->answered);
}

static void
answer_admin(struct server *s, struct exchange *ex, const char *path,
             const char *query)
{
    const struct config *cfg = s->gw->cfg;
    struct evhttp_request *req = ex->req;
    if (!cfg->admin_token_set) {
        ex_error(ex, 404, "ROUTE_NOT_FOUND", "No such route.", NULL);
        return;
    }
    if (!auth_admin_ok(cfg,
                       evhttp_find_header(evhttp_request_get_input_headers(req),
                                          "Authorization"))) {
        ex_error(ex, 401, "UNAUTHORIZED", "The admin token is required.", NULL);
        return;
    }
    struct evbuffer *ib = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(ib);
    if (len > (size_t)cfg->max_body_bytes) {
        ex_error(ex, 413, "PAYLOAD_TOO_LARGE", "The body is too large.", NULL);
        return;
    }
    const char *body = len ? (const char *)evbuffer_pullup(ib, -1) : "";
    struct admin_ctx ctx = {
        s->gw->cache,       cfg->cache_recheck_after_s * 1000,
        add_admin_stats,    s,
        s->gw->send_shaper, s->gw->read_shaper};
    struct admin_result r;
    admin_handle(&ctx, ex->method, path, query, body, len, gateway_wall_ms(),
                 &r);
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
        ex_error(ex, r.status, r.code, r.sentence, extra);
        json_object_put(extra);
    } else if (r.body) {
        ex_local(ex, r.status, "application/json", r.body, strlen(r.body));
    } else {
        ex_reply(ex, r.status, NULL, "gateway", "local", NULL);
    }
    free(r.body);
}

/* ---- arrival ---- */

static int
method_allowed(const struct route_info *r, enum evhttp_cmd_type m)
{
    return r->methods == 0 || (r->methods & (int)m) != 0;
}

static void
on_request(struct evhttp_request *req, void *arg)
{
    struct server *s = arg;
    struct exchange *ex = ex_new(s->gw, req);
    const char *bad =
        headers_check_framing(evhttp_request_get_input_headers(req));
    if (bad != NULL) {
        ex_error(ex, 400, "BAD_REQUEST", bad, NULL);
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    path = path ? path : "";
    ex->route = route_match(path);
    if (ex->route->id == ROUTE_NONE) {
        ex_error(ex, 404, "ROUTE_NOT_FOUND",
                 "No such route: the gateway serves the provider's WhatsApp "
                 "API paths only.",
                 NULL);
        return;
    }
    if (!method_allowed(ex->route, evhttp_request_get_command(req))) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          ex->route->allow);
        ex_error(ex, 405, "METHOD_NOT_ALLOWED",
                 "This method is not allowed on this path.", NULL);
        return;
    }
    if (ex->route->kind == ROUTE_KIND_LOCAL) {
        answer_local(s, ex);
        return;
    }
    if (s->gw->draining) {
        ex_error(ex, 503, "SHUTTING_DOWN",
                 "The gateway is shutting down; retry on another instance.",
                 NULL);
        return;
    }
    if (ex->route->kind == ROUTE_KIND_ADMIN)
        answer_admin(s, ex, path, query);
    else
        pipeline_run(ex, path, query);
}

/* ---- listening ---- */

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *s = arg;
    if (s->gw->draining)
        return;
    for (size_t i = 0; i < s->nlev; i++)
        evconnlistener_enable(s->lev[i]);
}

/* Out of descriptors (limits.max_connections reached): stop accepting for
 * a moment instead of spinning on a listener that stays readable. */
static void
on_accept_error(struct evconnlistener *lev, void *arg)
{
    (void)lev;
    struct server *s = arg;
    int e = EVUTIL_SOCKET_ERROR();
    if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
        log_msg(LOG_WARN, "accept: %s", strerror(e));
        return;
    }
    for (size_t i = 0; i < s->nlev; i++)
        evconnlistener_disable(s->lev[i]);
    struct timeval tv = {0, SERVER_EMFILE_PAUSE_MS * 1000};
    evtimer_add(s->resume_ev, &tv);
    log_msg(LOG_WARN, "connection limit reached; accepting again in %d ms",
            SERVER_EMFILE_PAUSE_MS);
}

/* limits.max_connections is enforced by the descriptor limit: callers
 * beyond it wait in the listen backlog until a connection closes. */
static void
apply_fd_limit(const struct config *cfg)
{
    struct rlimit rl;
    rlim_t want =
        (rlim_t)(cfg->max_connections + cfg->upstream_max_connections + 64 +
                 (long long)cfg->nlisten);
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max) {
        log_msg(LOG_WARN,
                "limits.max_connections %lld needs %llu "
                "descriptors; the hard limit is %llu",
                cfg->max_connections, (unsigned long long)want,
                (unsigned long long)rl.rlim_max);
        want = rl.rlim_max;
    }
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        log_msg(LOG_WARN, "setrlimit(NOFILE): %s", strerror(errno));
}

static int
bind_one(struct server *s, const struct config_listen *l, char *err,
         size_t errlen)
{
    struct evutil_addrinfo hints = {0}, *ai = NULL;
    char port[8];
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_ADDRCONFIG;
    snprintf(port, sizeof(port), "%d", l->port);
    int rc = evutil_getaddrinfo(l->host, port, &hints, &ai);
    if (rc != 0 || ai == NULL) {
        snprintf(err, errlen, "listen %s:%d: %s", l->host, l->port,
                 evutil_gai_strerror(rc));
        return -1;
    }
    struct evconnlistener *lev = evconnlistener_new_bind(
        s->base, NULL, NULL,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        SERVER_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
    evutil_freeaddrinfo(ai);
    if (lev == NULL) {
        snprintf(err, errlen, "listen %s:%d: %s", l->host, l->port,
                 strerror(errno));
        return -1;
    }
    if (evhttp_bind_listener(s->http, lev) == NULL) {
        evconnlistener_free(lev);
        snprintf(err, errlen, "listen %s:%d: evhttp refused the listener",
                 l->host, l->port);
        return -1;
    }
    evconnlistener_set_error_cb(lev, on_accept_error);
    s->lev[s->nlev++] = lev;

    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    int real_port = l->port;
    if (getsockname(evconnlistener_get_fd(lev), (struct sockaddr *)&ss, &sl) ==
        0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
            real_port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            real_port = ntohs(a->sin6_port);
        }
    }
    log_msg(LOG_INFO,
            ss.ss_family == AF_INET6 ? "listening on [%s]:%d"
                                     : "listening on %s:%d",
            host, real_port);
    return 0;
}

int
server_listen(struct server *s, char *err, size_t errlen)
{
    apply_fd_limit(s->gw->cfg);
    s->lev = xcalloc(s->gw->cfg->nlisten, sizeof(*s->lev));
    for (size_t i = 0; i < s->gw->cfg->nlisten; i++)
        if (bind_one(s, &s->gw->cfg->listen[i], err, errlen) != 0)
            return -1;
    return 0;
}

/* ---- lifetime ---- */

struct server *
server_new(struct gateway *gw, char *err, size_t errlen)
{
    struct server *s = xcalloc(1, sizeof(*s));
    s->gw = gw;
    s->base = gw->base;
    s->http = evhttp_new(s->base);
    s->resume_ev = evtimer_new(s->base, on_resume, s);
    if (s->http == NULL || s->resume_ev == NULL) {
        snprintf(err, errlen, "cannot create the HTTP server");
        server_free(s);
        return NULL;
    }
    evhttp_set_max_headers_size(s->http, SERVER_MAX_HEADERS);
    evhttp_set_default_content_type(s->http, NULL);
    evhttp_set_allowed_methods(s->http, 0x1ff); /* all: 405 is ours */
    evhttp_set_gencb(s->http, on_request, s);
    server_configure(s);
    return s;
}

void
server_configure(struct server *s)
{
    const struct config *cfg = s->gw->cfg;
    struct timeval tv = {cfg->client_timeout_ms / 1000,
                         (cfg->client_timeout_ms % 1000) * 1000};
    evhttp_set_timeout_tv(s->http, &tv);
    /* evhttp answers bodies over its own cap with a non-JSON 413 and no
     * way to change it; the cap sits well above max_body_bytes so that the
     * usual oversized body gets the gateway's JSON 413 instead */
    evhttp_set_max_body_size(s->http, 2 * cfg->max_body_bytes + 65536);
    if (s->nlev > 0) /* at startup, server_listen() applies it */
        apply_fd_limit(cfg);
}

static void
finish_drain(struct server *s)
{
    if (s->drained) {
        void (*done)(void *) = s->drained;
        s->drained = NULL;
        done(s->drained_arg);
    }
}

#define SERVER_FLUSH_MS 1000

static void
on_flush_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    finish_drain(arg); /* callers that do not read get no more time */
}

static void
on_cut_off_sent(struct evhttp_request *req, void *arg)
{
    (void)req;
    struct server *s = arg;
    if (s->unsent > 0 && --s->unsent == 0)
        finish_drain(s);
}

static void
on_drain_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *s = arg;
    struct exchange *ex;
    if (s->gw->nwaiting == 0 || s->unsent > 0) {
        finish_drain(s);
        return;
    }
    /* the deadline passed: whoever still waits gets a clear 503 now, and
     * the loop runs on until those answers are written (bounded) */
    TAILQ_FOREACH(ex, &s->gw->waiting, link)
    {
        s->unsent += (size_t)ex_cut_off(ex, on_cut_off_sent, s);
    }
    if (s->unsent == 0) {
        finish_drain(s);
        return;
    }
    s->flush_ev = evtimer_new(s->base, on_flush_timeout, s);
    if (s->flush_ev == NULL)
        alloc_oom("evtimer_new");
    struct timeval tv = {SERVER_FLUSH_MS / 1000, 0};
    evtimer_add(s->flush_ev, &tv);
}

static void
on_complete(void *arg)
{
    struct server *s = arg;
    if (s->gw->draining && s->gw->nwaiting == 0 && s->drained) {
        struct timeval zero = {0, 0};
        evtimer_add(s->drain_ev, &zero);
    }
}

void
server_drain(struct server *s, long long deadline_ms, void (*done)(void *),
             void *arg)
{
    if (s->gw->draining)
        return;
    s->gw->draining = 1;
    s->drained = done;
    s->drained_arg = arg;
    s->gw->on_complete = on_complete;
    s->gw->on_complete_arg = s;
    for (size_t i = 0; i < s->nlev; i++)
        evconnlistener_disable(s->lev[i]);
    s->drain_ev = evtimer_new(s->base, on_drain_event, s);
    if (s->drain_ev == NULL)
        alloc_oom("evtimer_new");
    struct timeval tv = {deadline_ms / 1000, (deadline_ms % 1000) * 1000};
    if (s->gw->nwaiting == 0)
        tv = (struct timeval){0, 0};
    evtimer_add(s->drain_ev, &tv);
}

void
server_free(struct server *s)
{
    if (s == NULL)
        return;
    while (!TAILQ_EMPTY(&s->gw->waiting))
        ex_discard(TAILQ_FIRST(&s->gw->waiting));
    if (s->http)
        evhttp_free(s->http); /* frees the bound listeners too */
    free(s->lev);
    if (s->resume_ev)
        event_free(s->resume_ev);
    if (s->drain_ev)
        event_free(s->drain_ev);
    if (s->flush_ev)
        event_free(s->flush_ev);
    free(s);
}
