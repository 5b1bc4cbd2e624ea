#include "sb_http.h"
#include "alloc.h"
#include "clock.h"
#include "http_method.h"
#include "sb_api.h"
#include "sb_control.h"
#include "sb_events.h"
#include "sb_json.h"
#include "sb_text.h"
#include "sb_ui.h"
#include "sb_view.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A request the sandbox holds: an answer waiting for its latency timer, or
 * a connection held by a fault (hang, slow) until it is done, the client
 * goes away or the server stops. */
struct pending {
    struct sb_http *h;
    struct evhttp_request *req;
    struct evhttp_connection *evcon; /* held connections only */
    struct event *ev;    /* latency timer, slow's byte timer, hang's cap */
    struct event *watch; /* held: notices the client leaving */
    struct sb_response resp;
    char *out; /* slow: the whole answer, sent one byte per tick */
    size_t out_len, out_sent;
    unsigned delay_ms;
    int64_t due_ms;  /* latency: answer not before, on the log's clock */
    uint64_t log_id; /* its entry in the request log; 0 once told */
    struct pending *prev, *next;
};

/* Per connection, indexed by its descriptor: whether it already carried
 * an answer, i.e. whether a client may be reusing it (drop_next). */
struct conn {
    struct evhttp_connection *evcon;
    bool answered;
};

struct sb_http {
    struct event_base *base;
    struct evhttp *http;
    struct sb_sandbox *sb;
    struct pending *pending;
    struct conn *conns;
    size_t nconns;
    struct sb_events *events; /* the page's live updates */
    char address[INET6_ADDRSTRLEN + 16];
};

static evutil_socket_t
conn_fd(struct evhttp_connection *evcon)
{
    return bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
}

/* ---- connections ---- */

static void
on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    struct sb_http *h = arg;
    evutil_socket_t fd = conn_fd(evcon);

    if (fd >= 0 && (size_t)fd < h->nconns && h->conns[fd].evcon == evcon)
        memset(&h->conns[fd], 0, sizeof(h->conns[fd]));
}

/* The entry of req's connection, made on its first request. Borrowed until
 * the next call (the table may move). */
static struct conn *
conn_of(struct sb_http *h, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    evutil_socket_t fd = conn_fd(evcon);
    size_t n = h->nconns;

    /* evhttp hands over only connected sockets */
    if (fd < 0)
        alloc_oom("bufferevent_getfd");
    if ((size_t)fd >= n) {
        h->nconns = (size_t)fd + 64;
        h->conns = xrealloc(h->conns, h->nconns * sizeof(*h->conns));
        memset(h->conns + n, 0, (h->nconns - n) * sizeof(*h->conns));
    }
    if (h->conns[fd].evcon != evcon) {
        h->conns[fd].evcon = evcon;
        h->conns[fd].answered = false;
        evhttp_connection_set_closecb(evcon, on_conn_close, h);
    }
    return &h->conns[fd];
}

/* ---- held requests ---- */

static struct pending *
pending_new(struct sb_http *h, struct evhttp_request *req)
{
    struct pending *p = xcalloc(1, sizeof(*p));

    p->h = h;
    p->req = req;
    p->next = h->pending;
    if (h->pending != NULL)
        h->pending->prev = p;
    h->pending = p;
    return p;
}

/* Unlinks and frees p; the evhttp request itself is not touched. */
static void
pending_free(struct pending *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        p->h->pending = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    if (p->ev != NULL)
        event_free(p->ev);
    if (p->watch != NULL)
        event_free(p->watch);
    sb_response_clear(&p->resp);
    free(p->out);
    free(p);
}

static void answered(struct sb_http *h, uint64_t log_id, int status);

/* Ends a held connection: freeing it frees the unanswered request too.
 * One ended unanswered (a hang's client gave up, or its cap came; a slow
 * answer's client left midway) is told then: status null, latency until
 * the end. */
static void
release_held(struct pending *p)
{
    struct evhttp_connection *evcon = p->evcon;

    if (p->log_id != 0)
        answered(p->h, p->log_id, 0);
    pending_free(p);
    evhttp_connection_free(evcon);
}

/* ---- replies ---- */

/* evhttp's own table lacks some (429 would read "Client Error"). */
static const char *
reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return NULL; /* evhttp's phrase */
    }
}

/* Records what request `log_id` was answered (0: nothing, a fault cut
 * it) and tells the page. */
static void
answered(struct sb_http *h, uint64_t log_id, int status)
{
    const struct sb_reqlog_entry *e = sb_reqlog_set_status(
        h->sb->log, log_id, status, (int64_t)clock_mono_ms());

    if (e != NULL)
        sb_sandbox_event(h->sb, "request", sb_view_log_entry(e));
}

static void
send_response(struct sb_http *h, struct evhttp_request *req,
              const struct sb_response *r)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    struct evbuffer *body = alloc_check(evbuffer_new(), "evbuffer_new");
    char num[16];

    evhttp_add_header(oh, "Content-Type", "application/json");
    if (r->allow != NULL)
        evhttp_add_header(oh, "Allow", r->allow);
    if (r->retry_after > 0) {
        snprintf(num, sizeof(num), "%d", r->retry_after);
        evhttp_add_header(oh, "Retry-After", num);
    }
    if (r->body != NULL && evbuffer_add(body, r->body, strlen(r->body)) != 0)
        alloc_oom("evbuffer_add");
    conn_of(h, req)->answered = true;
    evhttp_send_reply(req, r->status, reason(r->status), body);
    evbuffer_free(body);
}

static struct timeval
ms_tv(unsigned ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* Arms p's timer for what is left until p->due_ms (none: at once). */
static void
arm_until_due(struct pending *p)
{
    int64_t left = p->due_ms - (int64_t)clock_mono_ms();
    struct timeval tv = ms_tv(left > 0 ? (unsigned)left : 0);

    if (evtimer_add(p->ev, &tv) != 0)
        alloc_oom("evtimer_add");
}

static void
on_latency(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;

    (void)fd;
    (void)what;
    /* libevent counts the timeout from the time it cached when the loop
     * woke, a little before the request was logged: the answer could come
     * a millisecond early by the log's clock. */
    if ((int64_t)clock_mono_ms() < p->due_ms) {
        arm_until_due(p);
        return;
    }
    send_response(p->h, p->req, &p->resp);
    answered(p->h, p->log_id, p->resp.status);
    pending_free(p);
}

/* Answers `ms` after mono_ms, the request's time in the log, on a timer;
 * takes over *resp. */
static void
defer_response(struct sb_http *h, struct evhttp_request *req,
               struct sb_response *resp, uint64_t log_id, int64_t mono_ms,
               unsigned ms)
{
    struct pending *p = pending_new(h, req);

    p->resp = *resp;
    memset(resp, 0, sizeof(*resp));
    p->log_id = log_id;
    p->due_ms = mono_ms + (int64_t)ms;
    p->ev = alloc_check(evtimer_new(h->base, on_latency, p), "evtimer_new");
    arm_until_due(p);
}

/* ---- faults ---- */

static void
on_held_readable(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;
    char buf[4096];
    ssize_t n;

    (void)what;
    /* This connection will never carry another request, so whatever the
     * client sends is discarded; only its end matters. */
    while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        ;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    release_held(p); /* EOF or error: the client left */
}

/* Holds req's connection; `on_timer` runs after `ms`. evhttp stops reading
 * while a request is unanswered, so only a watcher of our own notices the
 * client going away. */
static struct pending *
hold(struct sb_http *h, struct evhttp_request *req, event_callback_fn on_timer,
     unsigned ms)
{
    struct pending *p = pending_new(h, req);
    struct timeval tv = ms_tv(ms);

    p->evcon = evhttp_request_get_connection(req);
    p->watch = alloc_check(event_new(h->base, conn_fd(p->evcon),
                                     EV_READ | EV_PERSIST, on_held_readable, p),
                           "event_new");
    p->ev = alloc_check(evtimer_new(h->base, on_timer, p), "evtimer_new");
    if (event_add(p->watch, NULL) != 0 || evtimer_add(p->ev, &tv) != 0)
        alloc_oom("evtimer_add");
    return p;
}

static void
on_hang_cap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    release_held(arg);
}

static void
on_slow_tick(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;
    struct timeval tv = ms_tv(p->delay_ms);
    ssize_t n;

    (void)fd;
    (void)what;
    n = send(conn_fd(p->evcon), p->out + p->out_sent, 1,
             MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n == 1)
        p->out_sent++;
    else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
             errno != EINTR) {
        release_held(p); /* the client left */
        return;
    }
    if (p->out_sent == p->out_len) {
        answered(p->h, p->log_id, p->resp.status);
        p->log_id = 0;
        release_held(p); /* the answer said Connection: close */
        return;
    }
    if (evtimer_add(p->ev, &tv) != 0)
        alloc_oom("evtimer_add");
}

/* The bytes evhttp would send for r, framed with Connection: close since
 * the sandbox writes them itself, one at a time. */
static char *
slow_bytes(const struct sb_response *r, bool head, size_t *len)
{
    struct evbuffer *b = alloc_check(evbuffer_new(), "evbuffer_new");
    size_t blen = r->body ? strlen(r->body) : 0;
    const char *phrase = reason(r->status);
    char date[64], *out;
    struct tm tm;
    time_t now = time(NULL);

    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    evbuffer_add_printf(b, "HTTP/1.1 %d %s\r\n", r->status,
                        phrase ? phrase : "Unknown");
    evbuffer_add_printf(b, "Content-Type: application/json\r\n");
    if (r->allow != NULL)
        evbuffer_add_printf(b, "Allow: %s\r\n", r->allow);
    if (r->retry_after > 0)
        evbuffer_add_printf(b, "Retry-After: %d\r\n", r->retry_after);
    evbuffer_add_printf(b,
                        "Date: %s\r\nContent-Length: %zu\r\n"
                        "Connection: close\r\n\r\n",
                        date, blen);
    if (!head && blen > 0 && evbuffer_add(b, r->body, blen) != 0)
        alloc_oom("evbuffer_add");
    *len = evbuffer_get_length(b);
    out = xmalloc(*len);
    if (evbuffer_remove(b, out, *len) != (int)*len)
        alloc_oom("evbuffer_remove");
    evbuffer_free(b);
    return out;
}

/* The normal answer (the request is processed: it may spend balance and a
 * rate slot), one byte per delay_ms. */
static void
slow(struct sb_http *h, struct evhttp_request *req, const struct sb_request *rq,
     int64_t mono_ms, uint64_t log_id, unsigned delay_ms)
{
    struct pending *p = hold(h, req, on_slow_tick, delay_ms);
    int one = 1;

    sb_api_handle(h->sb, rq, mono_ms, &p->resp);
    p->out = slow_bytes(&p->resp, strcmp(rq->method, "HEAD") == 0, &p->out_len);
    p->delay_ms = delay_ms;
    p->log_id = log_id;
    /* Without it the kernel may coalesce the bytes into fewer segments. */
    setsockopt(conn_fd(p->evcon), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void
send_status(struct sb_http *h, struct evhttp_request *req,
            const struct sb_fault *f)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    struct evbuffer *body = alloc_check(evbuffer_new(), "evbuffer_new");
    bool typed = false;

    for (size_t i = 0; i < f->nheaders; i++) {
        evhttp_add_header(oh, f->headers[i].name, f->headers[i].value);
        typed = typed || strcasecmp(f->headers[i].name, "Content-Type") == 0;
    }
    if (!typed)
        evhttp_add_header(oh, "Content-Type", "application/json");
    if (f->body_len > 0 && evbuffer_add(body, f->body, f->body_len) != 0)
        alloc_oom("evbuffer_add");
    conn_of(h, req)->answered = true;
    evhttp_send_reply(req, f->status, reason(f->status), body);
    evbuffer_free(body);
}

/* TCP RST. libevent shuts a socket down for writing before it closes it,
 * which would put a FIN ahead of the RST (the client would then read a
 * plain end of stream), so the association is dissolved first: on Linux
 * connect(2) with AF_UNSPEC sends the RST at once. SO_LINGER {1, 0} makes
 * the final close abortive as well. */
static void
reset_connection(struct evhttp_connection *evcon)
{
    evutil_socket_t fd = conn_fd(evcon);
    struct linger lg = {1, 0};
    struct sockaddr sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_family = AF_UNSPEC;
    if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) != 0 ||
        connect(fd, &sa, sizeof(sa)) != 0)
        fprintf(stderr, "wagate-sandbox: reset fault: %s\n", strerror(errno));
    evhttp_connection_free(evcon);
}

static void
apply_fault(struct sb_http *h, struct evhttp_request *req,
            const struct sb_request *rq, const struct sb_fault *f,
            uint64_t log_id, int64_t mono_ms)
{
    static const char garbage[] = "NOT HTTP\r\n\r\n";
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);

    switch (f->mode) {
    case SB_FAULT_RESET:
        reset_connection(evcon);
        return;
    case SB_FAULT_GARBAGE:
        /* 12 bytes into a socket whose earlier answers evhttp has already
         * handed to the kernel: one send suffices. */
        if (send(conn_fd(evcon), garbage, sizeof(garbage) - 1,
                 MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
            fprintf(stderr, "wagate-sandbox: garbage fault: %s\n",
                    strerror(errno));
        evhttp_connection_free(evcon);
        return;
    case SB_FAULT_CLOSE:
    case SB_FAULT_DROP_NEXT:
        /* Freeing the connection from the request callback is safe: evhttp
         * touches neither the request nor the connection afterwards. */
        evhttp_connection_free(evcon);
        return;
    case SB_FAULT_HANG:
        hold(h, req, on_hang_cap, SB_HANG_MAX_MS)->log_id = log_id;
        return;
    case SB_FAULT_SLOW:
        slow(h, req, rq, mono_ms, log_id, f->delay_ms);
        return;
    case SB_FAULT_STATUS:
        send_status(h, req, f);
        answered(h, log_id, f->status);
        return;
    }
}

/* ---- requests ---- */

/* Borrows everything from req; valid until req is answered. */
static void
request_view(struct evhttp_request *req, struct sb_request *rq)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);

    memset(rq, 0, sizeof(*rq));
    rq->method = http_method_name(evhttp_request_get_command(req));
    rq->path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (rq->path == NULL)
        rq->path = "";
    rq->query = uri ? evhttp_uri_get_query(uri) : NULL;
    rq->authorization = evhttp_find_header(
        evhttp_request_get_input_headers(req), "Authorization");
    rq->body_len = evbuffer_get_length(in);
    rq->body = rq->body_len ? (const char *)evbuffer_pullup(in, -1) : "";
    if (rq->body == NULL)
        alloc_oom("evbuffer_pullup");
}

static struct sb_reqlog_entry *
log_request(struct sb_reqlog *log, struct evhttp_request *req,
            const struct sb_request *rq, int64_t mono_ms)
{
    struct evkeyvalq *hs = evhttp_request_get_input_headers(req);
    struct sb_reqlog_entry *e =
        sb_reqlog_add(log, mono_ms, rq->method, evhttp_request_get_uri(req),
                      rq->body, rq->body_len);

    /* evhttp keeps the headers in arrival order, names as sent. */
    for (struct evkeyval *kv = hs->tqh_first; kv != NULL;
         kv = kv->next.tqe_next)
        sb_reqlog_add_header(e, kv->key, kv->value);
    return e;
}

static void
api_request(struct sb_http *h, struct evhttp_request *req,
            const struct sb_request *rq, int64_t mono_ms)
{
    struct sb_sandbox *sb = h->sb;
    struct sb_reqlog_entry *e = log_request(sb->log, req, rq, mono_ms);
    uint64_t id = e->id;
    bool reused = conn_of(h, req)->answered;
    struct sb_response resp = {0};
    struct sb_fault f;
    bool cut;

    /* Every request is logged first, also the ones a fault answers. */
    if (sb_faults_take(sb->faults, rq->path, rq->body, rq->body_len, reused,
                       &f)) {
        e->fault = sb_fault_mode_name(f.mode);
        cut = f.mode == SB_FAULT_RESET || f.mode == SB_FAULT_GARBAGE ||
              f.mode == SB_FAULT_CLOSE || f.mode == SB_FAULT_DROP_NEXT;
        apply_fault(h, req, rq, &f, id, mono_ms);
        sb_fault_clear(&f);
        if (cut)
            answered(h, id, 0);
        sb_sandbox_changed(sb, "state", "faults"); /* one use less */
        return;
    }
    sb_api_handle(sb, rq, mono_ms, &resp);
    if (sb->latency_ms > 0) {
        defer_response(h, req, &resp, id, mono_ms, sb->latency_ms);
        return;
    }
    send_response(h, req, &resp);
    answered(h, id, resp.status);
    sb_response_clear(&resp);
}

/* ---- the inbox page and its live updates ---- */

static bool
is_page_path(const char *path)
{
    return strcmp(path, "/") == 0 || strcmp(path, SB_CONTROL_PREFIX) == 0 ||
           strcmp(path, SB_CONTROL_PREFIX "/") == 0;
}

/* Nothing the page shows can load anything from elsewhere, not even a tag
 * injected past the escaping (docs/inbox-page.md). */
#define PAGE_CSP                                                               \
    "default-src 'none'; script-src 'unsafe-inline'; "                         \
    "style-src 'unsafe-inline'; connect-src 'self'; img-src data:; "           \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static void
send_page(struct sb_http *h, struct evhttp_request *req, bool head)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    struct evbuffer *body = alloc_check(evbuffer_new(), "evbuffer_new");

    evhttp_add_header(oh, "Content-Type", "text/html; charset=utf-8");
    evhttp_add_header(oh, "Cache-Control", "no-store");
    evhttp_add_header(oh, "Content-Security-Policy", PAGE_CSP);
    evhttp_add_header(oh, "X-Content-Type-Options", "nosniff");
    if (!head && evbuffer_add_reference(body, sb_ui_inbox, sb_ui_inbox_len,
                                        NULL, NULL) != 0)
        alloc_oom("evbuffer_add_reference");
    conn_of(h, req)->answered = true;
    evhttp_send_reply(req, 200, "OK", body);
    evbuffer_free(body);
}

static void
start_events(struct sb_http *h, struct evhttp_request *req, int64_t mono_ms)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    evutil_socket_t fd = conn_fd(evcon);
    json_object *o = sb_json_obj();
    char now[SB_ISO_LEN];
    const char *hello;

    /* Answered either way: a refused stream (503) leaves the connection
     * open for more, reused then (drop_next). */
    conn_of(h, req)->answered = true;
    if (sb_iso_format(sb_state_now(h->sb->state, mono_ms), now, sizeof(now)))
        sb_json_add(o, "now", NULL);
    else
        sb_json_add(o, "now", sb_json_str(now));
    /* A stream keeps the connection for good: it leaves our table (the
     * hub's close callback replaces ours). */
    hello = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    if (sb_events_attach(h->events, req, hello) == 0 && fd >= 0 &&
        (size_t)fd < h->nconns && h->conns[fd].evcon == evcon)
        memset(&h->conns[fd], 0, sizeof(h->conns[fd]));
    json_object_put(o);
}

static void
publish(void *arg, const char *event, const char *data)
{
    struct sb_http *h = arg;

    sb_events_publish(h->events, event, data);
}

/* The page's routes; false when rq is none of them. */
static bool
page_request(struct sb_http *h, struct evhttp_request *req,
             const struct sb_request *rq, int64_t mono_ms)
{
    bool get = strcmp(rq->method, "GET") == 0;
    bool head = strcmp(rq->method, "HEAD") == 0;
    struct sb_response resp = {0};

    if (is_page_path(rq->path) && (get || head)) {
        send_page(h, req, head);
        return true;
    }
    if (strcmp(rq->path, SB_CONTROL_PREFIX "/events") != 0)
        return false;
    if (get) {
        start_events(h, req, mono_ms);
        return true;
    }
    sb_response_error(&resp, 405, "Method not allowed.", "METHOD_NOT_ALLOWED");
    resp.allow = "GET";
    send_response(h, req, &resp);
    sb_response_clear(&resp);
    return true;
}

static void
on_request(struct evhttp_request *req, void *arg)
{
    struct sb_http *h = arg;
    int64_t mono_ms = (int64_t)clock_mono_ms();
    struct sb_request rq;

    request_view(req, &rq);
    if (page_request(h, req, &rq, mono_ms))
        return;
    if (sb_is_control_path(rq.path)) {
        struct sb_response resp = {0};
        sb_control_handle(h->sb, &rq, mono_ms, &resp);
        send_response(h, req, &resp);
        sb_response_clear(&resp);
        return;
    }
    api_request(h, req, &rq, mono_ms);
}

/* ---- setup ---- */

static void
format_address(struct sb_http *h, evutil_socket_t fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[INET6_ADDRSTRLEN], port[8];

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
        getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), port,
                    sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(h->address, sizeof(h->address), "?:?");
        return;
    }
    snprintf(h->address, sizeof(h->address),
             ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

static void
configure(struct evhttp *http)
{
    /* Every method reaches us so that a known path answers 405 itself. */
    evhttp_set_allowed_methods(
        http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                  EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                  EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    /* Otherwise evhttp labels bodies text/html; we always set our own. */
    evhttp_set_default_content_type(http, NULL);
    evhttp_set_timeout(http, SB_IDLE_TIMEOUT_S);
    evhttp_set_max_body_size(http, SB_MAX_BODY);
    evhttp_set_max_headers_size(http, SB_MAX_HEADERS);
}

struct sb_http *
sb_http_new(struct event_base *base, struct sb_sandbox *sb, const char *host,
            int port, unsigned heartbeat_ms, char *err, size_t errlen)
{
    struct sb_http *h = xcalloc(1, sizeof(*h));
    struct evhttp_bound_socket *bound;

    h->base = base;
    h->sb = sb;
    h->events = sb_events_new(base, heartbeat_ms);
    sb->on_event = publish;
    sb->event_arg = h;
    h->http = alloc_check(evhttp_new(base), "evhttp_new");
    configure(h->http);
    evhttp_set_gencb(h->http, on_request, h);
    bound = evhttp_bind_socket_with_handle(h->http, host, (ev_uint16_t)port);
    if (bound == NULL) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port,
                 strerror(errno));
        sb_http_free(h);
        return NULL;
    }
    format_address(h, evhttp_bound_socket_get_fd(bound));
    return h;
}

const char *
sb_http_address(const struct sb_http *h)
{
    return h->address;
}

void
sb_http_free(struct sb_http *h)
{
    if (h == NULL)
        return;
    /* Drop held requests first: evhttp_free frees the requests themselves
     * along with their connections. */
    while (h->pending != NULL)
        pending_free(h->pending);
    h->sb->on_event = NULL;
    sb_events_free(h->events);
    /* evhttp_free runs on_conn_close for each connection: conns last. */
    if (h->http != NULL)
        evhttp_free(h->http);
    free(h->conns);
    free(h);
}
