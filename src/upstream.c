/* upstream.c - see upstream.h. The libcurl/libevent glue follows curl's
 * multi-event.c: one timer, one event per socket, info drained after every
 * socket action. */
#include "upstream.h"

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "alloc.h"
#include "version.h"

#define UPSTREAM_MAX_BODY (8u << 20)     /* larger answers are not JSON API */
#define UPSTREAM_MAX_HEADERS (64u << 10) /* bytes of response headers */
#define UPSTREAM_MAXAGE_S 30L            /* below common keep-alive idles */
#define UPSTREAM_POOL_MAX 256            /* idle easy handles kept for reuse */

struct upstream_xfer {
    TAILQ_ENTRY(upstream_xfer) link;
    struct upstream *u;
    CURL *easy;
    struct curl_slist *hdrs;
    char *url;
    char *body;
    size_t body_len, body_pos;
    int post;
    int tries;
    double started_ms, deadline_ms;
    char errbuf[CURL_ERROR_SIZE];
    /* the answer being received */
    int status;
    struct upstream_header *rh;
    size_t nrh, caprh, rh_bytes;
    struct evbuffer *rbody;
    int too_big;
    upstream_cb cb;
    void *arg;
    struct event *fail_ev; /* reports a setup failure from the loop */
};

struct upstream {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    char *base_url;
    char *auth;   /* "Authorization: Bearer <key>" */
    char *ca_file;
    long connect_timeout_ms, timeout_ms;
    size_t in_flight;
    TAILQ_HEAD(, upstream_xfer) xfers;
    /* finished easy handles: reusing one keeps its buffers and saves a
     * malloc/free of tens of kilobytes per request */
    CURL *pool[UPSTREAM_POOL_MAX];
    size_t npool;
};

struct upstream_sock {
    struct event ev;
    short kind;
};

static CURL *
easy_get(struct upstream *u)
{
    return u->npool > 0 ? u->pool[--u->npool] : curl_easy_init();
}

/* Takes e back (already removed from the multi). */
static void
easy_put(struct upstream *u, CURL *e)
{
    if (u->npool < UPSTREAM_POOL_MAX) {
        curl_easy_reset(e);
        u->pool[u->npool++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

static double
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- completion ---- */

static void
response_reset(struct upstream_xfer *x)
{
    for (size_t i = 0; i < x->nrh; i++) {
        free(x->rh[i].name);
        free(x->rh[i].value);
    }
    x->nrh = 0;
    x->rh_bytes = 0;
    x->status = 0;
}

static void
wipe_free_slist(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p; p = p->next)
        explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

static void
xfer_free(struct upstream_xfer *x)
{
    if (x->easy) {
        curl_multi_remove_handle(x->u->multi, x->easy);
        easy_put(x->u, x->easy);
    }
    if (x->fail_ev)
        event_free(x->fail_ev);
    wipe_free_slist(x->hdrs);
    response_reset(x);
    free(x->rh);
    if (x->rbody)
        evbuffer_free(x->rbody);
    free(x->url);
    free(x->body);
    TAILQ_REMOVE(&x->u->xfers, x, link);
    x->u->in_flight--;
    free(x);
}

static void
xfer_finish(struct upstream_xfer *x, enum upstream_result r, const char *why)
{
    struct upstream_response resp = {
        .status = x->status,
        .headers = x->rh,
        .nheaders = x->nrh,
        .body = x->rbody,
        .total_ms = now_ms() - x->started_ms,
    };
    upstream_cb cb = x->cb;
    void *arg = x->arg;
    /* leave the multi before calling back: the callback may start new
     * transfers, and this one must not be touched by libcurl again */
    if (x->easy) {
        curl_multi_remove_handle(x->u->multi, x->easy);
        easy_put(x->u, x->easy);
        x->easy = NULL;
    }
    cb(arg, r, r == UPSTREAM_OK ? &resp : NULL, why);
    xfer_free(x);
}

/* ---- libcurl callbacks of one transfer ---- */

static size_t
on_header(char *buf, size_t size, size_t n, void *p)
{
    struct upstream_xfer *x = p;
    size_t len = size * n, end = len;
    x->rh_bytes += len;
    if (x->rh_bytes > UPSTREAM_MAX_HEADERS) {
        x->too_big = 1;
        return 0;
    }
    while (end > 0 && (buf[end - 1] == '\r' || buf[end - 1] == '\n'))
        end--;
    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        /* a new status line (after 1xx): forget earlier headers */
        size_t keep = x->rh_bytes;
        response_reset(x);
        x->rh_bytes = keep;
        return len;
    }
    if (end == 0)
        return len;
    if ((buf[0] == ' ' || buf[0] == '\t') && x->nrh > 0) {
        /* obsolete line folding: continue the previous value */
        struct upstream_header *h = &x->rh[x->nrh - 1];
        size_t old = strlen(h->value);
        h->value = xrealloc(h->value, old + end + 1);
        memcpy(h->value + old, buf, end);
        h->value[old + end] = '\0';
        return len;
    }
    char *colon = memchr(buf, ':', end);
    if (colon == NULL || colon == buf)
        return len; /* not a header; libcurl validated the framing */
    if (x->nrh == x->caprh) {
        x->caprh = x->caprh ? 2 * x->caprh : 16;
        x->rh = xrealloc(x->rh, x->caprh * sizeof(*x->rh));
    }
    const char *v = colon + 1;
    while (v < buf + end && (*v == ' ' || *v == '\t'))
        v++;
    size_t vlen = (size_t)(buf + end - v);
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    x->rh[x->nrh].name = xstrndup(buf, (size_t)(colon - buf));
    x->rh[x->nrh].value = xstrndup(v, vlen);
    x->nrh++;
    return len;
}

static size_t
on_body(char *buf, size_t size, size_t n, void *p)
{
    struct upstream_xfer *x = p;
    size_t len = size * n;
    if (evbuffer_get_length(x->rbody) + len > UPSTREAM_MAX_BODY) {
        x->too_big = 1;
        return 0;
    }
    if (evbuffer_add(x->rbody, buf, len) != 0)
        alloc_oom("evbuffer_add");
    return len;
}

static size_t
on_read(char *buf, size_t size, size_t n, void *p)
{
    struct upstream_xfer *x = p;
    size_t room = size * n, left = x->body_len - x->body_pos;
    size_t take = left < room ? left : room;
    memcpy(buf, x->body + x->body_pos, take);
    x->body_pos += take;
    return take;
}

/* Rewinding is allowed only while no byte of the body has left: libcurl's
 * automatic retry of a request on a dead kept-alive connection then fails
 * with CURLE_SEND_FAIL_REWIND instead of sending a message twice. */
static int
on_seek(void *p, curl_off_t offset, int origin)
{
    struct upstream_xfer *x = p;
    if (origin == SEEK_SET && offset == 0 && x->body_pos == 0)
        return CURL_SEEKFUNC_OK;
    return CURL_SEEKFUNC_CANTSEEK;
}

/* ---- setting a transfer up ---- */

static struct curl_slist *
slist_add(struct curl_slist *l, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = xmalloc(n);
    snprintf(line, n, "%s: %s", name, value);
    struct curl_slist *r = curl_slist_append(l, line);
    explicit_bzero(line, n);
    free(line);
    if (r == NULL)
        alloc_oom("curl_slist_append");
    return r;
}

static struct curl_slist *
build_headers(const struct upstream *u, const struct upstream_call *c)
{
    struct curl_slist *l = curl_slist_append(NULL, u->auth);
    if (l == NULL)
        alloc_oom("curl_slist_append");
    if (c->content_type)
        l = slist_add(l, "Content-Type", c->content_type);
    l = slist_add(l, "Accept", c->accept ? c->accept : "application/json");
    if (c->request_id)
        l = slist_add(l, "X-Request-Id", c->request_id);
    if (c->idempotency_key)
        l = slist_add(l, "Idempotency-Key", c->idempotency_key);
    /* no "Expect: 100-continue" round trip for small JSON bodies */
    l = curl_slist_append(l, "Expect:");
    if (l == NULL)
        alloc_oom("curl_slist_append");
    return l;
}

static int
easy_setup(struct upstream_xfer *x)
{
    struct upstream *u = x->u;
    CURL *e = easy_get(u);
    if (e == NULL)
        return -1;
    x->easy = e;
    double left = x->deadline_ms - now_ms();
    long total = left < 1 ? 1 : (long)left;
    long conn = u->connect_timeout_ms < total ? u->connect_timeout_ms : total;
    x->body_pos = 0;
    x->errbuf[0] = '\0';
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, x->url);
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, WAGATE_USER_AGENT);
    bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total);
    bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, conn);
    bad |= curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, UPSTREAM_MAXAGE_S);
    bad |= curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                            (long)CURL_HTTP_VERSION_2TLS);
    bad |= curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    bad |= curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    bad |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    /* the provider is reached directly: no per-request proxy lookup in the
     * environment */
    bad |= curl_easy_setopt(e, CURLOPT_PROXY, "");
    bad |= curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
    if (u->ca_file)
        bad |= curl_easy_setopt(e, CURLOPT_CAINFO, u->ca_file);
    if (x->post) {
        bad |= curl_easy_setopt(e, CURLOPT_POST, 1L);
        bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                                (curl_off_t)x->body_len);
        bad |= curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        bad |= curl_easy_setopt(e, CURLOPT_READDATA, x);
        bad |= curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
        bad |= curl_easy_setopt(e, CURLOPT_SEEKDATA, x);
    }
    if (bad)
        return -1;
    if (curl_multi_add_handle(u->multi, e) != CURLM_OK)
        return -1;
    return 0;
}

static void
on_fail_ev(evutil_socket_t fd, short what, void *p)
{
    (void)fd;
    (void)what;
    xfer_finish(p, UPSTREAM_UNAVAILABLE, "transfer setup failed");
}

static void
report_later(struct upstream_xfer *x)
{
    if (x->easy) {
        easy_put(x->u, x->easy); /* never added, or add failed */
        x->easy = NULL;
    }
    x->fail_ev = evtimer_new(x->u->base, on_fail_ev, x);
    if (x->fail_ev == NULL)
        alloc_oom("evtimer_new");
    struct timeval zero = {0, 0};
    evtimer_add(x->fail_ev, &zero);
}

struct upstream_xfer *
upstream_start(struct upstream *u, const struct upstream_call *c,
               upstream_cb cb, void *arg)
{
    struct upstream_xfer *x = xcalloc(1, sizeof(*x));
    x->u = u;
    x->cb = cb;
    x->arg = arg;
    x->post = c->post;
    size_t ulen = strlen(u->base_url) + strlen(c->path_query) + 1;
    x->url = xmalloc(ulen);
    snprintf(x->url, ulen, "%s%s", u->base_url, c->path_query);
    if (c->post) {
        x->body = xmalloc(c->body_len);
        memcpy(x->body, c->body, c->body_len);
        x->body_len = c->body_len;
    }
    x->hdrs = build_headers(u, c);
    x->rbody = evbuffer_new();
    if (x->rbody == NULL)
        alloc_oom("evbuffer_new");
    x->started_ms = now_ms();
    x->deadline_ms = x->started_ms + (double)u->timeout_ms;
    TAILQ_INSERT_TAIL(&u->xfers, x, link);
    u->in_flight++;
    if (easy_setup(x) != 0)
        report_later(x);
    return x;
}

/* ---- outcome of a finished transfer ---- */

static const char *
error_sentence(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
        return "cannot resolve the upstream host";
    case CURLE_COULDNT_CONNECT:
        return "connection refused";
    case CURLE_GOT_NOTHING:
        return "connection closed without an answer";
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        return "connection reset";
    case CURLE_SEND_FAIL_REWIND:
        return "connection lost after the request left; not re-sent";
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_PARTIAL_FILE:
        return "invalid HTTP answer";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
        return "TLS failure";
    case CURLE_WRITE_ERROR:
        return "answer too large";
    default:
        return "upstream transfer failed";
    }
}

/* A connect failure (refused, unresolvable, connect timeout) is retried
 * once while the deadline allows: nothing reached the upstream. */
static int
should_retry(struct upstream_xfer *x, CURLcode rc, int connected)
{
    if (x->tries >= 1 || now_ms() + 1 >= x->deadline_ms)
        return 0;
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
           (rc == CURLE_OPERATION_TIMEDOUT && !connected);
}

static void
xfer_done(struct upstream_xfer *x, CURLcode rc)
{
    curl_off_t connect_us = 0;
    curl_easy_getinfo(x->easy, CURLINFO_CONNECT_TIME_T, &connect_us);
    int connected = connect_us > 0;
    if (rc == CURLE_OK) {
        long code = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
        x->status = (int)code;
        xfer_finish(x, UPSTREAM_OK, NULL);
        return;
    }
    if (should_retry(x, rc, connected)) {
        x->tries++;
        curl_multi_remove_handle(x->u->multi, x->easy);
        easy_put(x->u, x->easy);
        x->easy = NULL;
        response_reset(x);
        evbuffer_drain(x->rbody, evbuffer_get_length(x->rbody));
        if (easy_setup(x) != 0)
            report_later(x);
        return;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT)
        xfer_finish(x, connected ? UPSTREAM_TIMEOUT : UPSTREAM_UNAVAILABLE,
                    connected ? "no complete answer in time"
                              : "connect timeout");
    else
        xfer_finish(x, UPSTREAM_UNAVAILABLE,
                    x->too_big ? "answer too large" : error_sentence(rc));
}

static void
check_info(struct upstream *u)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(u->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct upstream_xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        xfer_done(x, m->data.result);
    }
}

/* ---- libevent <-> libcurl ---- */

static void
on_socket_event(evutil_socket_t fd, short what, void *p)
{
    struct upstream *u = p;
    int mask = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
               ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(u->multi, fd, mask, &running);
    check_info(u);
}

static void
on_timer(evutil_socket_t fd, short what, void *p)
{
    (void)fd;
    (void)what;
    struct upstream *u = p;
    int running;
    curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_info(u);
}

static int
curl_timer_cb(CURLM *multi, long timeout_ms, void *p)
{
    (void)multi;
    struct upstream *u = p;
    if (timeout_ms < 0) {
        evtimer_del(u->timer);
        return 0;
    }
    /* 0 means "soon": scheduled, never called from inside libcurl */
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(u->timer, &tv);
    return 0;
}

static int
curl_socket_cb(CURL *e, curl_socket_t s, int what, void *p, void *sockp)
{
    (void)e;
    struct upstream *u = p;
    struct upstream_sock *sk = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (sk) {
            event_del(&sk->ev);
            free(sk);
            curl_multi_assign(u->multi, s, NULL);
        }
        return 0;
    }
    short kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
                 ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    if (sk == NULL) {
        sk = xcalloc(1, sizeof(*sk));
        curl_multi_assign(u->multi, s, sk);
    } else if (sk->kind == kind) {
        return 0;
    } else {
        event_del(&sk->ev); /* never re-assign a pending event */
    }
    sk->kind = kind;
    event_assign(&sk->ev, u->base, s, kind, on_socket_event, u);
    event_add(&sk->ev, NULL);
    return 0;
}

/* ---- lifetime ---- */

struct upstream *
upstream_new(struct event_base *base, const struct upstream_opts *o,
             char *err, size_t errlen)
{
    curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    if (!(vi->features & CURL_VERSION_ASYNCHDNS)) {
        snprintf(err, errlen, "libcurl %s resolves names synchronously; "
                 "wagate needs CURL_VERSION_ASYNCHDNS", vi->version);
        return NULL;
    }
    struct upstream *u = xcalloc(1, sizeof(*u));
    TAILQ_INIT(&u->xfers);
    u->base = base;
    u->base_url = xstrdup(o->base_url);
    u->ca_file = o->ca_file ? xstrdup(o->ca_file) : NULL;
    u->connect_timeout_ms = o->connect_timeout_ms;
    u->timeout_ms = o->timeout_ms;
    u->auth = xstrdup("Authorization: Bearer ");
    u->multi = curl_multi_init();
    u->timer = evtimer_new(base, on_timer, u);
    if (u->multi == NULL || u->timer == NULL) {
        snprintf(err, errlen, "cannot set up libcurl multi");
        upstream_free(u);
        return NULL;
    }
    long maxc = o->max_connections;
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_MAX_HOST_CONNECTIONS, maxc);
    curl_multi_setopt(u->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, maxc);
    curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, maxc);
    return u;
}

void
upstream_set_key(struct upstream *u, const char *key)
{
    size_t n = strlen("Authorization: Bearer ") + strlen(key) + 1;
    char *a = xmalloc(n);
    snprintf(a, n, "Authorization: Bearer %s", key);
    explicit_bzero(u->auth, strlen(u->auth));
    free(u->auth);
    u->auth = a;
}

size_t
upstream_in_flight(const struct upstream *u)
{
    return u->in_flight;
}

void
upstream_free(struct upstream *u)
{
    if (u == NULL)
        return;
    while (!TAILQ_EMPTY(&u->xfers))
        xfer_free(TAILQ_FIRST(&u->xfers));
    /* before the event base goes: its socket callback runs in here */
    if (u->multi)
        curl_multi_cleanup(u->multi);
    while (u->npool > 0)
        curl_easy_cleanup(u->pool[--u->npool]);
    if (u->timer)
        event_free(u->timer);
    explicit_bzero(u->auth, strlen(u->auth));
    free(u->auth);
    free(u->base_url);
    free(u->ca_file);
    free(u);
}
