#include "clock.h"
#include "sandbox/sb_http.h"
#include "sandbox/sb_alloc.h"
#include "sandbox/sb_api.h"
#include "sandbox/sb_control.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A request the sandbox holds: an answer waiting for its latency timer, or
 * a `hang` fault watching for the client to go away. */
struct pending {
    struct sb_http *h;
    struct evhttp_request *req;
    struct evhttp_connection *evcon; /* hang only */
    struct event *ev;
    struct sb_response resp;
    uint64_t log_id;
    struct pending *prev, *next;
};

struct sb_http {
    struct event_base *base;
    struct evhttp *http;
    struct sb_sandbox *sb;
    struct pending *pending;
    char address[INET6_ADDRSTRLEN + 16];
};

int64_t
sb_mono_ms(void)
{
    return (int64_t)clock_mono_ms();
}

int64_t
sb_real_ms(void)
{
    return clock_wall_ms();
}

/* ---- held requests ---- */

static struct pending *
pending_new(struct sb_http *h, struct evhttp_request *req)
{
    struct pending *p = sb_xcalloc(1, sizeof(*p));

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
    sb_response_clear(&p->resp);
    free(p);
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
    case 503:
        return "Service Unavailable";
    default:
        return NULL; /* evhttp's phrase */
    }
}

static void
send_response(struct evhttp_request *req, const struct sb_response *r)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    struct evbuffer *body = sb_check(evbuffer_new());
    char num[16];

    evhttp_add_header(oh, "Content-Type", "application/json");
    if (r->allow != NULL)
        evhttp_add_header(oh, "Allow", r->allow);
    if (r->retry_after > 0) {
        snprintf(num, sizeof(num), "%d", r->retry_after);
        evhttp_add_header(oh, "Retry-After", num);
    }
    if (r->body != NULL && evbuffer_add(body, r->body, strlen(r->body)) != 0)
        sb_oom();
    evhttp_send_reply(req, r->status, reason(r->status), body);
    evbuffer_free(body);
}

static void
on_latency(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;

    (void)fd;
    (void)what;
    send_response(p->req, &p->resp);
    sb_reqlog_set_status(p->h->sb->log, p->log_id, p->resp.status);
    pending_free(p);
}

/* Answers after `ms` on a timer; takes over *resp. */
static void
defer_response(struct sb_http *h, struct evhttp_request *req,
               struct sb_response *resp, uint64_t log_id, unsigned ms)
{
    struct pending *p = pending_new(h, req);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

    p->resp = *resp;
    memset(resp, 0, sizeof(*resp));
    p->log_id = log_id;
    p->ev = sb_check(evtimer_new(h->base, on_latency, p));
    if (evtimer_add(p->ev, &tv) != 0)
        sb_oom();
}

/* ---- faults ---- */

static evutil_socket_t
request_fd(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);

    return bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
}

/* After shutdown(2) no byte can reach the client; replying makes evhttp
 * hit EPIPE on its write and free the connection and request itself. */
static void
drop_connection(struct evhttp_request *req, evutil_socket_t fd)
{
    shutdown(fd, SHUT_RDWR);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Connection",
                      "close");
    evhttp_send_reply(req, 500, NULL, NULL);
}

static void
on_hang_readable(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;
    struct evhttp_connection *evcon = p->evcon;
    char buf[4096];
    ssize_t n;

    (void)what;
    /* This connection will never answer again, so whatever the client
     * sends is discarded; only its end matters. */
    while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        ;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    /* EOF or error: the client left. Freeing the connection frees the
     * unanswered request with it. */
    pending_free(p);
    evhttp_connection_free(evcon);
}

static void
hang(struct sb_http *h, struct evhttp_request *req, evutil_socket_t fd)
{
    struct pending *p = pending_new(h, req);

    /* evhttp stops reading while a request is unanswered, so only a watcher
     * of our own notices the client going away. */
    p->evcon = evhttp_request_get_connection(req);
    p->ev = sb_check(
        event_new(h->base, fd, EV_READ | EV_PERSIST, on_hang_readable, p));
    if (event_add(p->ev, NULL) != 0)
        sb_oom();
}

static void
apply_fault(struct sb_http *h, struct evhttp_request *req, enum sb_fault f)
{
    static const char garbage[] = "NOT HTTP\r\n\r\n";
    evutil_socket_t fd = request_fd(req);

    if (f == SB_FAULT_HANG) {
        hang(h, req, fd);
        return;
    }
    if (f == SB_FAULT_GARBAGE) {
        /* 12 bytes into an empty socket buffer: a short write would need
         * a full buffer, so one write() suffices. */
        if (write(fd, garbage, sizeof(garbage) - 1) < 0)
            fprintf(stderr, "wagate-sandbox: garbage fault: %s\n",
                    strerror(errno));
    }
    drop_connection(req, fd);
}

/* ---- requests ---- */

static const char *
method_name(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    default:
        return "UNKNOWN";
    }
}

/* Borrows everything from req; valid until req is answered. */
static void
request_view(struct evhttp_request *req, struct sb_request *rq)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);

    memset(rq, 0, sizeof(*rq));
    rq->method = method_name(evhttp_request_get_command(req));
    rq->path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (rq->path == NULL)
        rq->path = "";
    rq->query = uri ? evhttp_uri_get_query(uri) : NULL;
    rq->authorization = evhttp_find_header(
        evhttp_request_get_input_headers(req), "Authorization");
    rq->body_len = evbuffer_get_length(in);
    rq->body = rq->body_len ? (const char *)evbuffer_pullup(in, -1) : "";
    if (rq->body == NULL)
        sb_oom();
}

static uint64_t
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
    return e->id;
}

static void
api_request(struct sb_http *h, struct evhttp_request *req,
            const struct sb_request *rq, int64_t mono_ms)
{
    struct sb_sandbox *sb = h->sb;
    uint64_t id = log_request(sb->log, req, rq, mono_ms);
    struct sb_response resp = {0};

    if (sb->fault_count > 0) {
        enum sb_fault f = sb->fault;
        if (--sb->fault_count == 0)
            sb->fault = SB_FAULT_NONE;
        apply_fault(h, req, f);
        return;
    }
    sb_api_handle(sb, rq, mono_ms, &resp);
    if (sb->latency_ms > 0) {
        defer_response(h, req, &resp, id, sb->latency_ms);
        return;
    }
    send_response(req, &resp);
    sb_reqlog_set_status(sb->log, id, resp.status);
    sb_response_clear(&resp);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
    struct sb_http *h = arg;
    int64_t mono_ms = sb_mono_ms();
    struct sb_request rq;

    request_view(req, &rq);
    if (sb_is_control_path(rq.path)) {
        struct sb_response resp = {0};
        sb_control_handle(h->sb, &rq, mono_ms, &resp);
        send_response(req, &resp);
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
            int port, char *err, size_t errlen)
{
    struct sb_http *h = sb_xcalloc(1, sizeof(*h));
    struct evhttp_bound_socket *bound;

    h->base = base;
    h->sb = sb;
    h->http = sb_check(evhttp_new(base));
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
    if (h->http != NULL)
        evhttp_free(h->http);
    free(h);
}
