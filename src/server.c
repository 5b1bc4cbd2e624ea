/* server.c - see server.h. A request's path through this file:
 * on_request() -> checks in SPEC order -> answer_local() or
 * forward_start() -> on_upstream() -> gw_send(). */
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
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "alloc.h"
#include "config.h"
#include "forward.h"
#include "headers.h"
#include "log.h"
#include "reply.h"
#include "reqid.h"
#include "route.h"
#include "upstream.h"

#define SERVER_BACKLOG 1024
#define SERVER_MAX_HEADERS (32 * 1024)
#define SERVER_EMFILE_PAUSE_MS 100
#define SERVER_RECIPIENT_MAX 24

/* One caller request, from arrival to its single answer. */
struct gw_req {
    TAILQ_ENTRY(gw_req) link; /* in server.waiting while deferred */
    struct server *srv;
    struct evhttp_request *req; /* NULL once the caller's connection died */
    struct evhttp_connection *evcon;
    const struct route_info *route;
    char reqid[REQID_MAX + 1];
    char remote[64];
    const char *method;
    double t0_ms;
    char *path_query;
    long long sender_id;
    char recipient[SERVER_RECIPIENT_MAX];
    int upstream_status;
    int deferred;
};

struct server {
    struct event_base *base;
    const struct config *cfg;
    struct upstream *up;
    struct evhttp *http;
    struct evconnlistener **lev;
    size_t nlev;
    struct event *resume_ev; /* re-enables accepting after EMFILE */
    struct event *drain_ev;  /* deadline, then "drained" notification */
    TAILQ_HEAD(, gw_req) waiting;
    size_t nwaiting;
    unsigned long long served;
    int draining;
    void (*drained)(void *);
    void *drained_arg;
};

static double
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- the single exit of every request ---- */

static void
gw_free(struct gw_req *g)
{
    if (g->deferred) {
        TAILQ_REMOVE(&g->srv->waiting, g, link);
        g->srv->nwaiting--;
    }
    free(g->path_query);
    free(g);
}

static void maybe_drained(struct server *s);

/* Sends the answer (when the caller is still there), logs, frees g. The
 * X-Wagate header must already be set by the caller of this function. */
static void
gw_send(struct gw_req *g, int status, struct evbuffer *body,
        const char *decision, const char *reason)
{
    struct server *s = g->srv;
    if (g->req != NULL) {
        struct evkeyvalq *out = evhttp_request_get_output_headers(g->req);
        evhttp_add_header(out, "X-Request-Id", g->reqid);
        if (g->evcon)
            evhttp_connection_set_closecb(g->evcon, NULL, NULL);
        evhttp_send_reply(g->req, status, NULL, body);
    }
    struct log_request lr = {
        .request_id = g->reqid,
        .remote = g->remote,
        .method = g->method,
        .route = g->route ? g->route->name : "unknown",
        .decision = g->req ? decision : "caller_gone",
        .reason = reason,
        .status = status,
        .upstream_status = g->upstream_status,
        .latency_ms = mono_ms() - g->t0_ms,
        .sender_id = g->sender_id,
        .recipient = g->recipient[0] ? g->recipient : NULL,
    };
    log_request(&lr);
    s->served++;
    gw_free(g);
    maybe_drained(s);
}

/* An error answered by the gateway. decision: "rejected" when the request
 * never left, "forwarded" when the upstream call failed. */
static void
gw_error_as(struct gw_req *g, const char *decision, int status,
            const char *code, const char *sentence, json_object *extra)
{
    char xw[96], reason[64];
    struct evbuffer *body = reply_error_body(code, sentence, extra);
    reply_reason_header(code, xw, sizeof(xw));
    reply_reason_token(code, reason, sizeof(reason));
    if (g->req != NULL) {
        struct evkeyvalq *out = evhttp_request_get_output_headers(g->req);
        evhttp_add_header(out, "Content-Type", "application/json");
        evhttp_add_header(out, "X-Wagate", xw);
        if (status == 400 && strcmp(code, "BAD_REQUEST") == 0)
            evhttp_add_header(out, "Connection", "close");
    }
    gw_send(g, status, body, decision, reason);
    evbuffer_free(body);
}

static void
gw_error(struct gw_req *g, int status, const char *code,
         const char *sentence, json_object *extra)
{
    gw_error_as(g, "rejected", status, code, sentence, extra);
}

static void
gw_local(struct gw_req *g, int status, const char *content_type,
         const char *text)
{
    struct evbuffer *body = evbuffer_new();
    if (body == NULL || evbuffer_add(body, text, strlen(text)) != 0)
        alloc_oom("evbuffer");
    struct evkeyvalq *out = evhttp_request_get_output_headers(g->req);
    evhttp_add_header(out, "Content-Type", content_type);
    evhttp_add_header(out, "X-Wagate", "gateway");
    gw_send(g, status, body, "local", NULL);
    evbuffer_free(body);
}

/* ---- fields for the log line (never the message text) ---- */

static void
note_recipient(struct gw_req *g, const char *phone, size_t len)
{
    if (len >= sizeof(g->recipient))
        len = sizeof(g->recipient) - 1;
    memcpy(g->recipient, phone, len);
    g->recipient[len] = '\0';
    /* keep the log line one line whatever the caller sent */
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)g->recipient[i] < 0x20)
            g->recipient[i] = '?';
}

static void
note_body_fields(struct gw_req *g, const char *body, size_t len)
{
    json_tokener *tok = json_tokener_new();
    if (tok == NULL)
        return;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, body, (int)len);
    json_object *v;
    if (o && json_object_is_type(o, json_type_object)) {
        if (json_object_object_get_ex(o, "sender_id", &v) &&
            json_object_is_type(v, json_type_int))
            g->sender_id = json_object_get_int64(v);
        if (json_object_object_get_ex(o, "recipient_phone", &v) &&
            json_object_is_type(v, json_type_string))
            note_recipient(g, json_object_get_string(v),
                           (size_t)json_object_get_string_len(v));
    }
    json_object_put(o);
    json_tokener_free(tok);
}

static void
note_query_fields(struct gw_req *g, const char *query)
{
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    if (query == NULL || evhttp_parse_query_str(query, &q) != 0)
        return;
    const char *sid = evhttp_find_header(&q, "sender_id");
    const char *ph = evhttp_find_header(&q, "recipient_phone");
    if (sid != NULL) {
        char *end;
        long long n = strtoll(sid, &end, 10);
        if (*sid && *end == '\0' && n >= 0)
            g->sender_id = n;
    }
    if (ph != NULL)
        note_recipient(g, ph, strlen(ph));
    evhttp_clear_headers(&q);
}

/* ---- forwarding ---- */

static void
on_caller_gone(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    struct gw_req *g = arg;
    /* evhttp frees the request right after this: forget it, and let the
     * upstream call finish so that its outcome is still logged */
    g->req = NULL;
    g->evcon = NULL;
}

static void
on_upstream(void *arg, enum upstream_result r,
            const struct upstream_response *resp, const char *errstr)
{
    struct gw_req *g = arg;
    char sentence[160];
    if (r == UPSTREAM_OK) {
        g->upstream_status = resp->status;
        if (g->req != NULL) {
            struct evkeyvalq *out = evhttp_request_get_output_headers(g->req);
            forward_copy_headers(resp, out);
            evhttp_add_header(out, "X-Wagate", "upstream");
        }
        gw_send(g, resp->status, resp->body, "forwarded", NULL);
        return;
    }
    if (r == UPSTREAM_TIMEOUT) {
        snprintf(sentence, sizeof(sentence),
                 "The upstream API did not answer within %lld ms.",
                 g->srv->cfg->timeout_ms);
        gw_error_as(g, "forwarded", 504, "UPSTREAM_TIMEOUT", sentence, NULL);
        return;
    }
    snprintf(sentence, sizeof(sentence),
             "The upstream API is unavailable (%s).", errstr);
    gw_error_as(g, "forwarded", 502, "UPSTREAM_UNAVAILABLE", sentence,
                NULL);
}

static void
forward_start(struct gw_req *g, const char *path, const char *query)
{
    struct server *s = g->srv;
    struct evhttp_request *req = g->req;
    int post = g->route->kind == ROUTE_KIND_SEND;
    struct evbuffer *ib = evhttp_request_get_input_buffer(req);
    size_t len = post ? evbuffer_get_length(ib) : 0;
    const char *body = len ? (const char *)evbuffer_pullup(ib, -1) : "";
    if (post && len > (size_t)s->cfg->max_body_bytes) {
        char sentence[96];
        snprintf(sentence, sizeof(sentence),
                 "The request body is larger than %lld bytes.",
                 s->cfg->max_body_bytes);
        gw_error(g, 413, "PAYLOAD_TOO_LARGE", sentence, NULL);
        return;
    }
    if (post && !headers_is_json_type(evhttp_find_header(
                    evhttp_request_get_input_headers(req), "Content-Type"))) {
        gw_error(g, 415, "UNSUPPORTED_MEDIA_TYPE",
                 "The request body must be sent as application/json.", NULL);
        return;
    }
    if (post)
        note_body_fields(g, body, len);
    else if (g->route->id == ROUTE_SESSION_STATUS)
        note_query_fields(g, query);
    else if (g->route->id == ROUTE_TEMPLATES)
        g->sender_id = route_templates_sender(path);

    size_t n = strlen(path) + (query ? strlen(query) + 1 : 0) + 1;
    g->path_query = xmalloc(n);
    snprintf(g->path_query, n, "%s%s%s", path, query ? "?" : "",
             query ? query : "");
    struct upstream_call call;
    forward_build_call(req, post, g->path_query, g->reqid, body, len, &call);
    g->deferred = 1;
    TAILQ_INSERT_TAIL(&s->waiting, g, link);
    s->nwaiting++;
    g->evcon = evhttp_request_get_connection(req);
    evhttp_connection_set_closecb(g->evcon, on_caller_gone, g);
    upstream_start(s->up, &call, on_upstream, g);
}

/* ---- routes the gateway answers itself ---- */

static void
answer_local(struct gw_req *g)
{
    struct server *s = g->srv;
    char text[512];
    switch (g->route->id) {
    case ROUTE_HEALTHZ:
        gw_local(g, 200, "application/json", "{\"status\":\"ok\"}");
        return;
    case ROUTE_READYZ:
        if (s->draining)
            gw_local(g, 503, "application/json", "{\"status\":\"draining\"}");
        else
            gw_local(g, 200, "application/json", "{\"status\":\"ready\"}");
        return;
    default:
        snprintf(text, sizeof(text),
                 "# HELP wagate_requests_total Requests answered.\n"
                 "# TYPE wagate_requests_total counter\n"
                 "wagate_requests_total %llu\n"
                 "# HELP wagate_requests_in_flight Requests waiting on the "
                 "upstream.\n"
                 "# TYPE wagate_requests_in_flight gauge\n"
                 "wagate_requests_in_flight %zu\n",
                 s->served, s->nwaiting);
        gw_local(g, 200, "text/plain; version=0.0.4", text);
        return;
    }
}

/* ---- arrival ---- */

static const char *
method_name(enum evhttp_cmd_type m)
{
    switch (m) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    }
    return "?";
}

static struct gw_req *
gw_new(struct server *s, struct evhttp_request *req)
{
    struct gw_req *g = xcalloc(1, sizeof(*g));
    g->srv = s;
    g->req = req;
    g->t0_ms = mono_ms();
    g->sender_id = -1;
    g->upstream_status = -1;
    g->method = method_name(evhttp_request_get_command(req));
    reqid_choose(
        evhttp_find_header(evhttp_request_get_input_headers(req),
                           "X-Request-Id"),
        g->reqid);
    char *addr = NULL;
    ev_uint16_t port = 0;
    struct evhttp_connection *c = evhttp_request_get_connection(req);
    if (c != NULL)
        evhttp_connection_get_peer(c, &addr, &port);
    snprintf(g->remote, sizeof(g->remote), "%s", addr ? addr : "-");
    return g;
}

static int
method_allowed(const struct route_info *r, enum evhttp_cmd_type m)
{
    return r->methods == 0 || (r->methods & (int)m) != 0;
}

static void
on_request(struct evhttp_request *req, void *arg)
{
    struct server *s = arg;
    struct gw_req *g = gw_new(s, req);
    const char *bad = headers_check_framing(evhttp_request_get_input_headers(req));
    if (bad != NULL) {
        gw_error(g, 400, "BAD_REQUEST", bad, NULL);
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    g->route = route_match(path ? path : "");
    if (g->route->id == ROUTE_NONE) {
        gw_error(g, 404, "ROUTE_NOT_FOUND",
                 "No such route: the gateway serves the provider's WhatsApp "
                 "API paths only.", NULL);
        return;
    }
    if (!method_allowed(g->route, evhttp_request_get_command(req))) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          g->route->allow);
        gw_error(g, 405, "METHOD_NOT_ALLOWED",
                 "This method is not allowed on this path.", NULL);
        return;
    }
    switch (g->route->kind) {
    case ROUTE_KIND_LOCAL:
        answer_local(g);
        return;
    case ROUTE_KIND_ADMIN:
        /* no admin token can be configured yet: /admin does not exist */
        gw_error(g, 404, "ROUTE_NOT_FOUND", "No such route.", NULL);
        return;
    default:
        break;
    }
    if (s->draining) {
        gw_error(g, 503, "SHUTTING_DOWN",
                 "The gateway is shutting down; retry on another instance.",
                 NULL);
        return;
    }
    forward_start(g, path, query);
}

/* ---- listening ---- */

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *s = arg;
    if (s->draining)
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
    rlim_t want = (rlim_t)(cfg->max_connections +
                           cfg->upstream_max_connections + 64 +
                           (long long)cfg->nlisten);
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max) {
        log_msg(LOG_WARN, "limits.max_connections %lld needs %llu "
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
    if (getsockname(evconnlistener_get_fd(lev), (struct sockaddr *)&ss,
                    &sl) == 0) {
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
    log_msg(LOG_INFO, ss.ss_family == AF_INET6 ? "listening on [%s]:%d"
                                                : "listening on %s:%d",
            host, real_port);
    return 0;
}

int
server_listen(struct server *s, char *err, size_t errlen)
{
    apply_fd_limit(s->cfg);
    s->lev = xcalloc(s->cfg->nlisten, sizeof(*s->lev));
    for (size_t i = 0; i < s->cfg->nlisten; i++)
        if (bind_one(s, &s->cfg->listen[i], err, errlen) != 0)
            return -1;
    return 0;
}

/* ---- lifetime ---- */

struct server *
server_new(struct event_base *base, const struct config *cfg,
           struct upstream *up, char *err, size_t errlen)
{
    struct server *s = xcalloc(1, sizeof(*s));
    s->base = base;
    s->cfg = cfg;
    s->up = up;
    TAILQ_INIT(&s->waiting);
    s->http = evhttp_new(base);
    s->resume_ev = evtimer_new(base, on_resume, s);
    if (s->http == NULL || s->resume_ev == NULL) {
        snprintf(err, errlen, "cannot create the HTTP server");
        server_free(s);
        return NULL;
    }
    struct timeval tv = {cfg->client_timeout_ms / 1000,
                         (cfg->client_timeout_ms % 1000) * 1000};
    evhttp_set_timeout_tv(s->http, &tv);
    evhttp_set_max_headers_size(s->http, SERVER_MAX_HEADERS);
    /* evhttp answers bodies over its own cap with a non-JSON 413 and no
     * way to change it; the cap sits well above max_body_bytes so that the
     * usual oversized body gets the gateway's JSON 413 instead */
    evhttp_set_max_body_size(s->http, 2 * cfg->max_body_bytes + 65536);
    evhttp_set_default_content_type(s->http, NULL);
    evhttp_set_allowed_methods(s->http, 0x1ff); /* all: 405 is ours */
    evhttp_set_gencb(s->http, on_request, s);
    (void)err;
    (void)errlen;
    return s;
}

static void
on_drain_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *s = arg;
    struct gw_req *g;
    /* the deadline passed: whoever still waits gets a clear 503 now */
    TAILQ_FOREACH(g, &s->waiting, link)
    {
        if (g->req == NULL)
            continue;
        char xw[96];
        struct evbuffer *b = reply_error_body(
            "SHUTTING_DOWN",
            "The gateway shut down before the upstream answered; the "
            "outcome of this request is unknown.", NULL);
        struct evkeyvalq *out = evhttp_request_get_output_headers(g->req);
        reply_reason_header("SHUTTING_DOWN", xw, sizeof(xw));
        evhttp_add_header(out, "Content-Type", "application/json");
        evhttp_add_header(out, "X-Wagate", xw);
        evhttp_add_header(out, "X-Request-Id", g->reqid);
        if (g->evcon)
            evhttp_connection_set_closecb(g->evcon, NULL, NULL);
        evhttp_send_reply(g->req, 503, NULL, b);
        evbuffer_free(b);
        g->req = NULL;
        g->evcon = NULL;
    }
    if (s->drained) {
        void (*done)(void *) = s->drained;
        s->drained = NULL;
        done(s->drained_arg);
    }
}

static void
maybe_drained(struct server *s)
{
    if (s->draining && s->nwaiting == 0 && s->drained) {
        struct timeval zero = {0, 0};
        evtimer_add(s->drain_ev, &zero);
    }
}

void
server_drain(struct server *s, long long deadline_ms,
             void (*done)(void *), void *arg)
{
    if (s->draining)
        return;
    s->draining = 1;
    s->drained = done;
    s->drained_arg = arg;
    for (size_t i = 0; i < s->nlev; i++)
        evconnlistener_disable(s->lev[i]);
    s->drain_ev = evtimer_new(s->base, on_drain_event, s);
    if (s->drain_ev == NULL)
        alloc_oom("evtimer_new");
    struct timeval tv = {deadline_ms / 1000, (deadline_ms % 1000) * 1000};
    if (s->nwaiting == 0)
        tv = (struct timeval){0, 0};
    evtimer_add(s->drain_ev, &tv);
}

size_t
server_in_flight(const struct server *s)
{
    return s->nwaiting;
}

void
server_free(struct server *s)
{
    if (s == NULL)
        return;
    while (!TAILQ_EMPTY(&s->waiting))
        gw_free(TAILQ_FIRST(&s->waiting));
    if (s->http)
        evhttp_free(s->http); /* frees the bound listeners too */
    free(s->lev);
    if (s->resume_ev)
        event_free(s->resume_ev);
    if (s->drain_ev)
        event_free(s->drain_ev);
    free(s);
}
