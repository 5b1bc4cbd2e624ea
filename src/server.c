/* server.c - see server.h. A request's path: on_request() checks framing,
 * route and method, then hands it to local_answer(), admin_answer() or
 * pipeline_run(); exchange.c gives every one of them its single answer. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "admin.h"
#include "alloc.h"
#include "clock.h"
#include "config.h"
#include "conn.h"
#include "exchange.h"
#include "gateway.h"
#include "headers.h"
#include "local.h"
#include "log.h"
#include "pipeline.h"
#include "reply.h"
#include "route.h"

#define SERVER_BACKLOG 1024
#define SERVER_EMFILE_PAUSE_MS 100
/* descriptors kept beyond callers and upstream sockets: the event loop,
 * the Redis connection, log and state files, DNS, listeners */
#define SERVER_FD_SPARE 64
#define SERVER_LOG_EVERY_MS 10000 /* "limit reached" at most this often */

struct server {
    struct gateway *gw;
    struct event_base *base;
    struct evhttp *http;
    struct conn_table *conns;
    struct evconnlistener **lev;
    size_t nlev;
    int full;                /* limits.max_connections callers connected */
    int out_of_fds;          /* accept failed for lack of descriptors */
    double full_logged;      /* when "limit reached" was last logged */
    double fds_logged;       /* when "out of descriptors" was last logged */
    struct server *next;     /* in the list of live servers */
    struct event *resume_ev; /* re-enables accepting after EMFILE */
    struct event *drain_ev;  /* deadline, then "drained" notification */
    struct event *flush_ev;  /* bounds the wait for cut-off answers */
    size_t unsent;           /* cut-off answers not yet written out */
    void (*drained)(void *);
    void *drained_arg;
};

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
    struct conn *c = conn_of(s->conns, req);
    struct exchange *ex = ex_new(s->gw, req);
    if (c == NULL) { /* cannot watch for a hang-up: never defer it */
        ex_error(ex, GW_ERR_INTERNAL, NULL, NULL);
        return;
    }
    ex->conn = c;
    const struct gw_error_row *r = conn_request_arrived(c);
    if (r != NULL) { /* the lexer's refusal, if evhttp read it first */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection",
                          "close");
        ex_error(ex, reply_error_id(r), NULL, NULL);
        return;
    }
    /* what evhttp parsed must agree with the lexer; checked again here */
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const struct gw_error_row *bad = headers_check_names(in);
    if (bad == NULL)
        bad = headers_check_framing(in);
    if (bad != NULL) {
        ex_error(ex, reply_error_id(bad), NULL, NULL);
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    path = path ? path : "";
    ex->route = route_match(path);
    if (ex->route->id == ROUTE_NONE) {
        ex_error(ex, GW_ERR_ROUTE_NOT_FOUND, NULL, NULL);
        return;
    }
    if (!method_allowed(ex->route, evhttp_request_get_command(req))) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          ex->route->allow);
        ex_error(ex, GW_ERR_METHOD_NOT_ALLOWED, NULL, NULL);
        return;
    }
    if (ex->route->kind == ROUTE_KIND_LOCAL) {
        local_answer(ex);
        return;
    }
    if (s->gw->draining) {
        ex_error(ex, GW_ERR_SHUTTING_DOWN, NULL, NULL);
        return;
    }
    if (ex->route->kind == ROUTE_KIND_ADMIN)
        admin_answer(ex, path, query);
    else
        pipeline_run(ex, path, query);
}

/* ---- listening ---- */

/* Live servers, for the accept error callback: evhttp_bind_listener()
 * gives the listener's user data to evhttp, so that callback receives the
 * struct evhttp, not ours. */
static struct server *servers;

static struct server *
server_of_http(const void *http)
{
    for (struct server *s = servers; s != NULL; s = s->next)
        if (s->http == http)
            return s;
    return NULL;
}

/* Accepting is on unless draining, full, or briefly out of descriptors. */
static void
set_accepting(struct server *s)
{
    int on = !s->gw->draining && !s->full && !s->out_of_fds;
    for (size_t i = 0; i < s->nlev; i++)
        if (on)
            evconnlistener_enable(s->lev[i]);
        else
            evconnlistener_disable(s->lev[i]);
}

static int
log_due(double *last)
{
    double now = clock_mono_ms();
    if (*last != 0 && now - *last < SERVER_LOG_EVERY_MS)
        return 0;
    *last = now;
    return 1;
}

/* From the connection table: callers beyond the limit wait in the listen
 * backlog, unaccepted, until one of the connected leaves. */
static void
on_full(void *arg, int is_full)
{
    struct server *s = arg;
    s->full = is_full;
    set_accepting(s);
    if (is_full && log_due(&s->full_logged))
        log_msg(LOG_WARN,
                "limits.max_connections reached (%zu callers connected): "
                "new callers wait until one leaves",
                conn_table_count(s->conns));
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *s = arg;
    s->out_of_fds = 0;
    set_accepting(s);
}

/* accept() failed. Out of descriptors (which the reserve should prevent):
 * pause for a moment instead of spinning on a listener that stays
 * readable. */
static void
on_accept_error(struct evconnlistener *lev, void *arg)
{
    (void)lev;
    struct server *s = server_of_http(arg);
    int e = EVUTIL_SOCKET_ERROR();
    if (s == NULL)
        return;
    if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
        if (log_due(&s->fds_logged))
            log_msg(LOG_WARN, "accept: %s", strerror(e));
        return;
    }
    s->out_of_fds = 1;
    set_accepting(s);
    struct timeval tv = {0, SERVER_EMFILE_PAUSE_MS * 1000};
    evtimer_add(s->resume_ev, &tv);
    if (log_due(&s->fds_logged))
        log_msg(LOG_WARN,
                "accept: %s; accepting again in %d ms (repeats are not "
                "logged for %d s)",
                strerror(e), SERVER_EMFILE_PAUSE_MS,
                SERVER_LOG_EVERY_MS / 1000);
}

/* Callers and libcurl share the descriptor limit (RLIMIT_NOFILE). wagate
 * asks for max_connections + upstream.max_connections + a spare, and lets
 * in only as many callers as leave the upstream sockets and the spare
 * free: the caller cap it returns. */
static size_t
apply_fd_limit(const struct config *cfg)
{
    long long reserve = cfg->upstream_max_connections + SERVER_FD_SPARE +
                        (long long)cfg->nlisten;
    long long cap = cfg->max_connections;
    struct rlimit rl;
    rlim_t want = (rlim_t)(cap + reserve);
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return (size_t)cap;
    if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
        want = rl.rlim_max;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        log_msg(LOG_WARN, "setrlimit(NOFILE): %s", strerror(errno));
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (long long)rl.rlim_cur - reserve < cap) {
        long long fit = (long long)rl.rlim_cur - reserve;
        log_msg(LOG_WARN,
                "limits.max_connections %lld needs %lld descriptors; the "
                "limit is %llu: at most %lld callers at once",
                cap, cap + reserve, (unsigned long long)rl.rlim_cur,
                fit > 1 ? fit : 1);
        cap = fit > 1 ? fit : 1;
    }
    return (size_t)cap;
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
    s->next = servers;
    servers = s;
    s->conns = conn_table_new(s->base, s->http, on_full, s);
    /* above the lexer's bound, so that the gateway's own 431 comes first */
    evhttp_set_max_headers_size(s->http, 2 * HEADERS_HEAD_MAX);
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
     * usual oversized body gets the gateway's JSON 413 instead (a
     * Content-Length over the cap gets it from the lexer; only a chunked
     * body can still meet evhttp's page) */
    long long body_cap = 2 * cfg->max_body_bytes + 65536;
    evhttp_set_max_body_size(s->http, body_cap);
    struct conn_limits lim = {
        .max_conns = apply_fd_limit(cfg),
        .timeout_ms = cfg->client_timeout_ms,
        .max_content_length = (uint64_t)body_cap,
    };
    conn_table_configure(s->conns, &lim);
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
    if (ex_waiting(s->gw) == 0 || s->unsent > 0) {
        finish_drain(s);
        return;
    }
    /* the deadline passed: whoever still waits gets a clear 503 now, and
     * the loop runs on until those answers are written (bounded) */
    s->unsent = ex_cut_off_all(s->gw, on_cut_off_sent, s);
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
on_idle(void *arg)
{
    struct server *s = arg;
    if (s->gw->draining && s->drained) {
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
    ex_when_idle(s->gw, on_idle, s);
    set_accepting(s);
    s->drain_ev = evtimer_new(s->base, on_drain_event, s);
    if (s->drain_ev == NULL)
        alloc_oom("evtimer_new");
    struct timeval tv = {deadline_ms / 1000, (deadline_ms % 1000) * 1000};
    if (ex_waiting(s->gw) == 0)
        tv = (struct timeval){0, 0};
    evtimer_add(s->drain_ev, &tv);
}

void
server_free(struct server *s)
{
    if (s == NULL)
        return;
    ex_when_idle(s->gw, NULL, NULL);
    for (struct server **p = &servers; *p != NULL; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    conn_table_closing(s->conns);
    if (s->http)
        evhttp_free(s->http); /* frees the listeners and connections too */
    conn_table_free(s->conns);
    free(s->lev);
    if (s->resume_ev)
        event_free(s->resume_ev);
    if (s->drain_ev)
        event_free(s->drain_ev);
    if (s->flush_ev)
        event_free(s->flush_ev);
    free(s);
}
