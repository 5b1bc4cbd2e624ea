/* conn.c - see conn.h.
 *
 * A connection's phases:
 *   IDLE     connected, no byte of a request yet (evhttp's per-read timeout
 *            cuts a caller idle for client_timeout_ms; during a request it
 *            is pushed past the deadline);
 *   HEAD     the first byte came: the deadline runs, the lexer reads;
 *   BODY     the head passed the lexer; evhttp reads the body;
 *   BUSY     evhttp handed the request over (conn_request_arrived) until
 *            its answer has left; then IDLE again, or HEAD at once when the
 *            caller already sent more;
 *   CLOSING  the module answers itself: evhttp's callbacks are unhooked,
 *            the answer is written, the write side shut, what the caller
 *            still sends is read and dropped (so that the kernel does not
 *            reset the connection before the answer is read), then the
 *            evhttp connection is freed. */
#include "conn.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "alloc.h"
#include "clock.h"
#include "headers.h"
#include "log.h"
#include "metrics.h"
#include "reply.h"
#include "reqid.h"
#include "route.h"

#define CONN_LINGER_MS 1000 /* reading what a refused caller still sends */

enum conn_phase { PH_IDLE, PH_HEAD, PH_BODY, PH_BUSY, PH_CLOSING };

struct conn {
    struct conn_table *t;
    struct bufferevent *bev;         /* ours until adopted; then evhttp's */
    struct evhttp_connection *evcon; /* NULL until adopted */
    evutil_socket_t fd;
    int adopted;
    int in_pending;
    TAILQ_ENTRY(conn) pending;
    struct evbuffer_cb_entry *in_cb, *out_cb;
    struct event *timer; /* the request's deadline; then the linger */
    struct event *act;   /* answers a refusal from the loop */
    struct event *keep;  /* holds the read interest (see keep_read) */
    int keeping;         /* keep is added */
    int fed;             /* bytes came in since keep last fired */
    enum conn_phase phase;
    size_t scanned; /* input bytes the lexer has seen */
    double t_first; /* the request's first byte, monotonic ms */
    const struct gw_error_row *refusal;
    int flushed;
    void (*gone)(void *);
    void *gone_arg;
    struct headers_lexer lx;
};

struct conn_table {
    struct event_base *base;
    struct evhttp *http;
    struct conn_limits lim;
    size_t n;
    int is_full;
    int closing;
    void (*full)(void *, int);
    void *full_arg;
    struct conn **byfd; /* adopted connections by descriptor */
    size_t nbyfd;
    TAILQ_HEAD(conn_pending, conn) pending;
    struct event *adopt_ev;
};


static struct timeval
ms_tv(long long ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

static void
check_full(struct conn_table *t)
{
    if (t->closing)
        return;
    int full = t->n >= t->lim.max_conns;
    if (full != t->is_full) {
        t->is_full = full;
        t->full(t->full_arg, full);
    }
}

/* ---- lifetime ---- */

static void
conn_free(struct conn *c)
{
    struct conn_table *t = c->t;
    evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cb);
    evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->out_cb);
    event_free(c->timer);
    event_free(c->act);
    if (c->keep)
        event_free(c->keep); /* before evhttp closes the descriptor */
    if (c->fd >= 0 && (size_t)c->fd < t->nbyfd && t->byfd[c->fd] == c)
        t->byfd[c->fd] = NULL;
    if (c->in_pending)
        TAILQ_REMOVE(&t->pending, c, pending);
    if (!c->adopted)
        bufferevent_decref(c->bev); /* the reference taken at accept */
    free(c);
    t->n--;
    check_full(t);
}

/* evhttp is freeing the connection (it closed, timed out, answered with
 * Connection: close, or the server goes). */
static void
on_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    struct conn *c = arg;
    if (c->gone) {
        void (*gone)(void *) = c->gone;
        c->gone = NULL;
        gone(c->gone_arg);
    }
    conn_free(c);
}

/* ---- the read interest ----
 *
 * evhttp disables reading as a request arrives and enables it again with
 * the answer (http.c: evhttp_read_body, evhttp_handle_request,
 * evhttp_write_buffer): with libevent's epoll backend an EPOLL_CTL_DEL
 * and an EPOLL_CTL_ADD per request, where nginx registers a socket once.
 * A second event of the module's own on the same descriptor keeps
 * EV_READ in libevent's interest for it (evmap.c adds the events of one
 * descriptor up), so evhttp's toggling changes nothing the kernel sees.
 * It is level-triggered like evhttp's: while evhttp is not reading, bytes
 * or a hang-up would wake the loop again and again, so when it fires, the
 * bufferevent is not reading and read nothing on this wakeup (both events
 * fire for one readiness, evhttp's usually first: it reads the request and
 * stops reading), it takes itself off (that once, the interest goes) and
 * comes back when the answer has left. The table's
 * connections are freed (conn_free, from evhttp's close callback) before
 * evhttp closes their descriptors, and it goes with them. */

static void
keep_read(struct conn *c)
{
    if (c->keeping || c->keep == NULL)
        return;
    if (event_add(c->keep, NULL) == 0)
        c->keeping = 1;
}

static void
on_keep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    int fed = c->fed;
    c->fed = 0;
    /* the bufferevent reads, or read, what woke both */
    if (fed || event_pending(&c->bev->ev_read, EV_READ, NULL))
        return;
    event_del(c->keep);
    c->keeping = 0;
}

static void
table_put(struct conn_table *t, struct conn *c)
{
    if (c->fd < 0)
        return;
    if ((size_t)c->fd >= t->nbyfd) {
        size_t n = t->nbyfd ? t->nbyfd : 64;
        while (n <= (size_t)c->fd)
            n *= 2;
        t->byfd = xrealloc(t->byfd, n * sizeof(*t->byfd));
        memset(t->byfd + t->nbyfd, 0, (n - t->nbyfd) * sizeof(*t->byfd));
        t->nbyfd = n;
    }
    t->byfd[c->fd] = c;
}

/* Learns the evhttp connection built around c's bufferevent (evhttp made
 * it just after asking for the bufferevent) and hooks its close. Returns 0
 * if evhttp had already given the connection up (c is then freed). */
static int
adopt(struct conn *c)
{
    struct conn_table *t = c->t;
    bufferevent_data_cb rd;
    void *arg;
    TAILQ_REMOVE(&t->pending, c, pending);
    c->in_pending = 0;
    bufferevent_getcb(c->bev, &rd, NULL, NULL, &arg);
    if (rd == NULL || arg == NULL) { /* evhttp freed it (out of memory) */
        conn_free(c);
        return 0;
    }
    c->evcon = arg;
    c->fd = bufferevent_getfd(c->bev);
    table_put(t, c);
    evhttp_connection_set_closecb(c->evcon, on_closed, c);
    c->adopted = 1;
    bufferevent_decref(c->bev);
    if (c->fd >= 0) {
        c->keep = event_new(t->base, c->fd, EV_READ | EV_PERSIST, on_keep, c);
        if (c->keep == NULL)
            alloc_oom("event_new");
        keep_read(c);
    }
    return 1;
}

static void
on_adopt(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn_table *t = arg;
    while (!TAILQ_EMPTY(&t->pending))
        adopt(TAILQ_FIRST(&t->pending));
}

/* ---- the module's own answer ---- */

static void
close_now(struct conn *c)
{
    if (c->evcon != NULL)
        evhttp_connection_free(c->evcon); /* on_closed frees c */
}

static const char *
status_phrase(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

/* arg is unused: evhttp's pending deferred read, if any, calls the read
 * callback with its own argument */
static void
linger_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    evbuffer_drain(in, evbuffer_get_length(in));
}

static void
on_flushed(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (c->flushed)
        return;
    c->flushed = 1;
    shutdown(c->fd, SHUT_WR); /* the answer is complete: the caller sees EOF */
    struct timeval tv = ms_tv(CONN_LINGER_MS);
    evtimer_add(c->timer, &tv);
}

static void
on_linger_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what; /* EOF, error or timeout: done either way */
    close_now(arg);
}

static void
log_refusal(const struct conn *c, const struct gw_error_row *r,
            const char *reqid, const struct route_info *route)
{
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(c->evcon, &addr, &port);
    struct log_request lr = {
        .request_id = reqid,
        .remote = addr ? addr : "-",
        .method = c->lx.method[0] ? c->lx.method : NULL,
        .route = route->name,
        .decision = decision_name(DECISION_REJECTED),
        .reason = r->reason,
        .status = r->status,
        .upstream_status = -1,
        .latency_ms = clock_mono_ms() - c->t_first,
        .sender_id = -1,
    };
    log_request(&lr);
    metrics_count_request(route->id, DECISION_REJECTED, r->status);
}

/* Takes the connection from evhttp and answers r with Connection: close.
 * Never while evhttp holds the request for the gateway (BUSY). */
static void
take_over(struct conn *c, const struct gw_error_row *r)
{
    struct conn_table *t = c->t;
    const struct route_info *route = route_get(ROUTE_NONE);
    const char *allow = NULL;
    if (c->lx.path_fits && c->lx.path[0] == '/')
        route = route_match(c->lx.path);
    if (reply_error_id(r) == GW_ERR_METHOD_NOT_ALLOWED) {
        if (route->id == ROUTE_NONE || route->allow == NULL)
            r = reply_row(GW_ERR_ROUTE_NOT_FOUND);
        else
            allow = route->allow;
    }
    c->phase = PH_CLOSING;
    evtimer_del(c->timer);
    event_del(c->act);
    bufferevent_setcb(c->bev, linger_read, on_flushed, on_linger_event, c);
    struct timeval rt = ms_tv(CONN_LINGER_MS), wt = ms_tv(t->lim.timeout_ms);
    bufferevent_set_timeouts(c->bev, &rt, &wt);
    /* a hard bound on the whole goodbye, whatever the caller does */
    struct timeval all = ms_tv(t->lim.timeout_ms + CONN_LINGER_MS);
    evtimer_add(c->timer, &all);

    char reqid[REQID_MAX + 1], xw[96], date[64] = "";
    reqid_choose(c->lx.request_id[0] ? c->lx.request_id : NULL, reqid);
    reply_xwagate(reply_error_id(r), xw, sizeof(xw));
    evutil_date_rfc1123(date, sizeof(date), NULL);
    struct evbuffer *body = reply_error(reply_error_id(r), NULL, NULL);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n"
                        "X-Wagate: %s\r\nX-Request-Id: %s\r\nDate: %s\r\n",
                        r->status, status_phrase(r->status),
                        evbuffer_get_length(body), xw, reqid, date);
    if (allow)
        evbuffer_add_printf(out, "Allow: %s\r\n", allow);
    evbuffer_add(out, "\r\n", 2);
    evbuffer_add_buffer(out, body);
    evbuffer_free(body);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    log_refusal(c, r, reqid, route);
}

static void
on_act(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    /* evhttp may have delivered the request first: the server answered */
    if ((c->phase == PH_HEAD || c->phase == PH_BODY) && c->refusal)
        take_over(c, c->refusal);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (c->phase == PH_CLOSING) {
        close_now(c);
        return;
    }
    if (c->phase != PH_HEAD && c->phase != PH_BODY)
        return;
    /* evhttp is writing (its own error page, a 100 Continue): only close */
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
        close_now(c);
        return;
    }
    take_over(c, reply_row(GW_ERR_REQUEST_TIMEOUT));
}

/* ---- reading a request ---- */

/* evhttp's per-read timeout (client_timeout_ms) cuts idle callers; within
 * a request it is pushed past the deadline, so that a caller stalled in
 * the middle gets the 408 rather than a silent close. */
static void
set_read_timeout(struct conn *c, long long read_ms)
{
    struct timeval rt = ms_tv(read_ms), wt = ms_tv(c->t->lim.timeout_ms);
    bufferevent_set_timeouts(c->bev, &rt, &wt);
}

static void
request_start(struct conn *c)
{
    c->phase = PH_HEAD;
    c->t_first = clock_mono_ms();
    struct timeval tv = ms_tv(c->t->lim.timeout_ms);
    evtimer_add(c->timer, &tv);
    set_read_timeout(c, 2 * c->t->lim.timeout_ms);
}

/* Lexes what the input holds beyond c->scanned. now: answer a refusal at
 * once (evhttp has not seen these bytes yet); else from the loop. */
static void
lex_input(struct conn *c, int now)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t len = evbuffer_get_length(in);
    while (c->phase == PH_HEAD && c->scanned < len) {
        struct evbuffer_ptr pos;
        struct evbuffer_iovec v[8];
        if (evbuffer_ptr_set(in, &pos, c->scanned, EVBUFFER_PTR_SET) != 0)
            return;
        int n = evbuffer_peek(in, (ev_ssize_t)(len - c->scanned), &pos, v, 8);
        if (n > 8)
            n = 8;
        for (int i = 0; i < n && c->phase == PH_HEAD; i++) {
            size_t used;
            enum headers_lex_result r =
                headers_lex(&c->lx, v[i].iov_base, v[i].iov_len, &used);
            c->scanned += used;
            if (r == HEADERS_LEX_DONE) {
                c->phase = PH_BODY;
            } else if (r == HEADERS_LEX_REFUSED) {
                c->refusal = c->lx.refusal;
                if (now)
                    take_over(c, c->refusal);
                else
                    event_active(c->act, EV_TIMEOUT, 1);
                return;
            }
        }
    }
}

static void
on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    struct conn *c = arg;
    if (c->in_pending && !adopt(c))
        return;
    c->scanned =
        c->scanned > info->n_deleted ? c->scanned - info->n_deleted : 0;
    if (info->n_added == 0)
        return;
    c->fed = 1;
    if (c->phase == PH_IDLE)
        request_start(c);
    if (c->phase == PH_HEAD)
        lex_input(c, 1);
}

/* The answer left (the output drained while BUSY): the next request starts
 * with whatever the caller already sent. */
static void
on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct conn *c = arg;
    if (c->phase != PH_BUSY || info->n_deleted == 0 ||
        evbuffer_get_length(buf) > 0)
        return;
    c->phase = PH_IDLE;
    c->scanned = 0;
    c->refusal = NULL;
    keep_read(c); /* evhttp reads again from here on */
    headers_lex_init(&c->lx, c->t->lim.max_content_length);
    set_read_timeout(c, c->t->lim.timeout_ms);
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
        request_start(c);
        /* evhttp reads these bytes when this callback returns, after the
         * lexer: a refusal is answered from the loop, before evhttp's own
         * deferred read, or by the server if evhttp gets there first */
        lex_input(c, 0);
    }
}

static struct bufferevent *
on_accept(struct event_base *base, void *arg)
{
    struct conn_table *t = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);
    if (bev == NULL)
        alloc_oom("bufferevent_socket_new");
    struct conn *c = xcalloc(1, sizeof(*c));
    c->t = t;
    c->bev = bev;
    c->fd = -1;
    c->timer = evtimer_new(base, on_timer, c);
    c->act = event_new(base, -1, 0, on_act, c);
    c->in_cb = evbuffer_add_cb(bufferevent_get_input(bev), on_input, c);
    c->out_cb = evbuffer_add_cb(bufferevent_get_output(bev), on_output, c);
    if (!c->timer || !c->act || !c->in_cb || !c->out_cb)
        alloc_oom("conn");
    headers_lex_init(&c->lx, t->lim.max_content_length);
    /* held until adopted, so that a connection evhttp drops at once never
     * leaves c with a freed bufferevent */
    bufferevent_incref(bev);
    TAILQ_INSERT_TAIL(&t->pending, c, pending);
    c->in_pending = 1;
    event_active(t->adopt_ev, EV_TIMEOUT, 1);
    t->n++;
    check_full(t);
    return bev;
}

/* ---- the table ---- */

struct conn_table *
conn_table_new(struct event_base *base, struct evhttp *http,
               void (*full)(void *, int), void *arg)
{
    struct conn_table *t = xcalloc(1, sizeof(*t));
    t->base = base;
    t->http = http;
    t->full = full;
    t->full_arg = arg;
    t->lim.max_conns = (size_t)-1;
    t->lim.timeout_ms = 15000;
    t->lim.max_content_length = UINT64_MAX;
    TAILQ_INIT(&t->pending);
    t->adopt_ev = event_new(base, -1, 0, on_adopt, t);
    if (t->adopt_ev == NULL)
        alloc_oom("event_new");
    evhttp_set_bevcb(http, on_accept, t);
    return t;
}

void
conn_table_configure(struct conn_table *t, const struct conn_limits *l)
{
    t->lim = *l;
    if (t->lim.max_conns == 0)
        t->lim.max_conns = 1;
    check_full(t);
}

size_t
conn_table_count(const struct conn_table *t)
{
    return t->n;
}

void
conn_table_closing(struct conn_table *t)
{
    if (t)
        t->closing = 1;
}

void
conn_table_free(struct conn_table *t)
{
    if (t == NULL)
        return;
    t->closing = 1;
    while (!TAILQ_EMPTY(&t->pending))
        conn_free(TAILQ_FIRST(&t->pending));
    event_free(t->adopt_ev);
    free(t->byfd);
    free(t);
}

struct conn *
conn_of(struct conn_table *t, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon == NULL)
        return NULL;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    struct conn *c;
    TAILQ_FOREACH(c, &t->pending, pending)
    {
        if (c->bev == bev) {
            if (!adopt(c))
                return NULL;
            break;
        }
    }
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd < 0 || (size_t)fd >= t->nbyfd)
        return NULL;
    c = t->byfd[fd];
    return c != NULL && c->evcon == evcon ? c : NULL;
}

const struct gw_error_row *
conn_request_arrived(struct conn *c)
{
    const struct gw_error_row *r = c->refusal;
    /* the lexer saw this head end too, unless the two parsers disagree */
    if (r == NULL && c->phase != PH_BODY)
        r = reply_row(GW_ERR_HEAD_MISMATCH);
    evtimer_del(c->timer);
    event_del(c->act);
    c->phase = PH_BUSY;
    return r;
}

/* evhttp_send_reply() put the answer in the output and enabled writing,
 * which libevent 2.1 only does once epoll_wait says the socket is
 * writable (bufferevent_sock.c: the output callback adds ev_write; the
 * write happens in bufferevent_writecb): one more wakeup, and two
 * epoll_ctl calls per answer (add EPOLLOUT, then take it off once the
 * answer left, evhttp_start_read_). A caller waiting for its answer has
 * an empty send buffer, so the socket is all but always writable:
 * activating ev_write runs bufferevent_writecb in this pass of the loop,
 * the very code that runs after the wakeup (a partial write or EAGAIN
 * leaves it pending as before), and with the event base's changelist the
 * write interest, added and taken off within the pass, costs no system
 * call. */
void
conn_write_now(struct conn *c)
{
    struct bufferevent *bev = c->bev;
    if (c->phase != PH_BUSY ||
        evbuffer_get_length(bufferevent_get_output(bev)) == 0 ||
        !event_pending(&bev->ev_write, EV_WRITE, NULL))
        return;
    event_active(&bev->ev_write, EV_WRITE, 1);
}

void
conn_watch(struct conn *c, void (*gone)(void *), void *arg)
{
    c->gone = gone;
    c->gone_arg = arg;
}
