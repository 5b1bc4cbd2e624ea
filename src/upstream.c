/* upstream.c - see upstream.h. The libcurl/libevent glue follows curl's
 * multi-event.c: one timer, one event per socket, info drained after every
 * socket action.
 *
 * Cost per request matters here (SPEC section 10), so the steady state
 * allocates nothing of its own: a finished transfer keeps its easy handle
 * (configured once), its request buffer, its header arrays and its body
 * evbuffer, and goes back to an idle list for the next call. */
#include "upstream.h"

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "secret.h"
#include "version.h"
#include "clock.h"

#define UPSTREAM_MAX_BODY (8u << 20)     /* larger answers are not JSON API */
#define UPSTREAM_MAX_HEADERS (64u << 10) /* bytes of response headers */
#define UPSTREAM_MAXAGE_S 30L            /* below common keep-alive idles */
#define UPSTREAM_POOL_MAX 256            /* idle transfers kept for reuse */
#define UPSTREAM_KEEP_BUF (16u << 10)    /* larger buffers are not pooled */
#define UPSTREAM_NHDRS 7                 /* request header lines, at most */

struct upstream_hoff {
    uint32_t name, value; /* offsets into rtext */
};

struct upstream_xfer {
    TAILQ_ENTRY(upstream_xfer) link; /* u->xfers while running, else u->idle */
    struct upstream *u;
    CURL *easy; /* owned for the xfer's whole life; configured once */
    int in_multi;
    /* the request: URL, header lines and body in one buffer (wiped after
     * use: it holds the key and the message) */
    char *req;
    size_t req_len, req_cap;
    struct curl_slist hdrs[UPSTREAM_NHDRS]; /* point into req */
    const char *body;
    size_t body_len;
    int post;
    int tries;    /* connect retries made by this module */
    int requests; /* times libcurl started sending this request */
    double started_ms, deadline_ms;
    char errbuf[CURL_ERROR_SIZE];
    /* the answer being received: "name\0value\0" pairs in rtext */
    int status;
    char *rtext;
    size_t rtext_len, rtext_cap, rh_bytes;
    struct upstream_hoff *hoff;
    struct upstream_header *rh; /* filled from hoff when reporting */
    size_t nrh, caprh;
    struct evbuffer *rbody;
    int too_big;
    int invalid;  /* the answer is not valid HTTP (on_header's checks) */
    int hstatus;  /* status of the header block being received */
    int hdr_done; /* the final header block ended: what follows is body
                     and trailers */
    int stale;    /* on_prereq found bytes waiting on a kept-alive
                     connection before the request left (not sent) */
    upstream_cb cb;
    upstream_sent_cb on_sent;
    void *arg;
    struct event *fail_ev; /* reports a setup failure from the loop */
};

/* A socket libcurl opened, with its local port once known (0 before):
 * how on_prereq() finds the connection a request is about to go on.
 * libcurl closes a connect attempt that never became a connection (a
 * refused connect, a lost happy-eyeballs race) without the close
 * callback, so an entry may outlive its socket and its number be reused:
 * the socket's inode, taken at open, tells them apart. */
struct upstream_fd {
    curl_socket_t fd;
    int port;
    ino_t ino;
    int est; /* a request went on it: libcurl published it as a
                connection's socket, and such a socket is only ever closed
                through on_close_socket (lib/cf-socket.c, socket_close with
                the callback), so its entry is live without a check */
};

struct upstream {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    char *base_url;
    char *auth; /* "Authorization: Bearer <key>" */
    char *ca_file;
    int pipewait; /* https: a new transfer may wait for HTTP/2 */
    long connect_timeout_ms, timeout_ms;
    size_t in_flight;
    TAILQ_HEAD(, upstream_xfer) xfers; /* running or reporting */
    TAILQ_HEAD(, upstream_xfer) idle;  /* finished, ready for reuse */
    size_t nidle;
    struct upstream_fd *fds; /* the sockets libcurl opened */
    size_t nfds, capfds;
    size_t fds_sweep_at; /* nfds at which stale entries are swept */
    struct upstream_sock **parked; /* by descriptor: events kept while
                                      the connection waits in the pool */
    size_t nparked;
};

/* The event of one socket libcurl watches. When libcurl puts a kept-alive
 * connection back in its pool it says CURL_POLL_REMOVE, and asks for the
 * socket again with the next request on it: deleting and adding the event
 * each time costs two epoll_ctl calls per request. So the event of an
 * established connection stays added while it waits ("parked"), and is
 * taken back as it was; should the idle connection become readable (a
 * FIN, stray bytes), the event is deleted then, once (libcurl finds out
 * at its check before reuse). A parked event goes before its socket is
 * closed (on_close_socket). */
struct upstream_sock {
    struct event ev;
    struct upstream *u;
    curl_socket_t fd;
    short kind;  /* the events of ev while added, else 0 */
    int parked;
};

/* ---- libcurl callbacks of one transfer ---- */

static void
rtext_reserve(struct upstream_xfer *x, size_t more)
{
    if (x->rtext_len + more <= x->rtext_cap)
        return;
    size_t cap = x->rtext_cap ? x->rtext_cap : 1024;
    while (cap < x->rtext_len + more)
        cap *= 2;
    x->rtext = xrealloc(x->rtext, cap);
    x->rtext_cap = cap;
}

static void
response_reset(struct upstream_xfer *x)
{
    x->nrh = 0;
    x->rtext_len = 0;
    x->rh_bytes = 0;
    x->status = 0;
    x->hstatus = 0;
    x->hdr_done = 0;
}

/* RFC 9110 section 5.6.2: tchar. */
static int
is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
        (c >= 'A' && c <= 'Z'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A field value may hold HTAB, SP, visible ASCII and obs-text (0x80..);
 * any other control byte (a bare CR, NUL, DEL...) makes it invalid. */
static int
value_ok(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

/* "HTTP/1.1 200 OK" or libcurl's "HTTP/2 200 ": the three-digit code,
 * or -1. */
static int
status_of(const char *line, size_t n)
{
    const char *sp = memchr(line, ' ', n);
    if (sp == NULL || (size_t)(line + n - sp) < 4)
        return -1;
    int code = 0;
    for (int i = 1; i <= 3; i++) {
        if (sp[i] < '0' || sp[i] > '9')
            return -1;
        code = code * 10 + (sp[i] - '0');
    }
    if ((size_t)(line + n - sp) > 4 && sp[4] != ' ')
        return -1;
    return code;
}

static size_t
header_invalid(struct upstream_xfer *x)
{
    x->invalid = 1;
    return 0; /* stops the transfer: CURLE_WRITE_ERROR */
}

/* Appends "name\0value\0" as the next header. */
static void
header_add(struct upstream_xfer *x, const char *name, size_t nlen,
           const char *v, size_t vlen)
{
    if (x->nrh == x->caprh) {
        x->caprh = x->caprh ? 2 * x->caprh : 16;
        x->hoff = xrealloc(x->hoff, x->caprh * sizeof(*x->hoff));
        x->rh = xrealloc(x->rh, x->caprh * sizeof(*x->rh));
    }
    rtext_reserve(x, nlen + vlen + 2);
    struct upstream_hoff *h = &x->hoff[x->nrh++];
    h->name = (uint32_t)x->rtext_len;
    memcpy(x->rtext + x->rtext_len, name, nlen);
    x->rtext_len += nlen;
    x->rtext[x->rtext_len++] = '\0';
    h->value = (uint32_t)x->rtext_len;
    memcpy(x->rtext + x->rtext_len, v, vlen);
    x->rtext_len += vlen;
    x->rtext[x->rtext_len++] = '\0';
}

/* Obsolete line folding: the continuation joins the previous value (the
 * last string in rtext) after one space. */
static void
header_fold(struct upstream_xfer *x, const char *v, size_t vlen)
{
    rtext_reserve(x, vlen + 1);
    char *at = x->rtext + x->rtext_len - 1; /* the previous NUL */
    *at++ = ' ';
    memcpy(at, v, vlen);
    x->rtext_len += vlen + 1;
    x->rtext[x->rtext_len - 1] = '\0';
}

/* OWS around a value (and a continuation line) is not part of it. */
static const char *
trim_ows(const char *v, const char *end, size_t *len)
{
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    size_t n = (size_t)(end - v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    *len = n;
    return v;
}

/* RFC 9112 section 6.3: Content-Length fields that disagree make the
 * framing unknowable (libcurl would take the last one). */
static int
length_conflict(const struct upstream_xfer *x, const char *name, size_t nlen,
                const char *v, size_t vlen)
{
    if (nlen != 14 || strncasecmp(name, "Content-Length", 14) != 0)
        return 0;
    for (size_t i = 0; i < x->nrh; i++) {
        const char *n = x->rtext + x->hoff[i].name;
        const char *pv = x->rtext + x->hoff[i].value;
        if (strcasecmp(n, "Content-Length") == 0 &&
            (strlen(pv) != vlen || memcmp(pv, v, vlen) != 0))
            return 1;
    }
    return 0;
}

enum upstream_header_kind
upstream_parse_header(const char *line, size_t len,
                      struct upstream_header_line *out)
{
    size_t end = len;
    memset(out, 0, sizeof(*out));
    while (end > 0 && (line[end - 1] == '\r' || line[end - 1] == '\n'))
        end--;
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        out->status = status_of(line, end);
        /* 101: no upgrade was asked for (libcurl would wait for the
         * switched protocol until the deadline) */
        return out->status < 0 || out->status == 101 ? UPSTREAM_HDR_INVALID
                                                     : UPSTREAM_HDR_STATUS;
    }
    if (end == 0)
        return UPSTREAM_HDR_END;
    if (line[0] == ' ' || line[0] == '\t') {
        out->value = trim_ows(line, line + end, &out->value_len);
        return value_ok(out->value, out->value_len) ? UPSTREAM_HDR_FOLD
                                                    : UPSTREAM_HDR_INVALID;
    }
    const char *colon = memchr(line, ':', end);
    if (colon == NULL || colon == line)
        return UPSTREAM_HDR_INVALID;
    for (const char *c = line; c < colon; c++)
        if (!is_tchar((unsigned char)*c))
            return UPSTREAM_HDR_INVALID;
    out->name = line;
    out->name_len = (size_t)(colon - line);
    out->value = trim_ows(colon + 1, line + end, &out->value_len);
    return value_ok(out->value, out->value_len) ? UPSTREAM_HDR_FIELD
                                                : UPSTREAM_HDR_INVALID;
}

/* libcurl hands over each line of every header block (1xx ones too) and,
 * after the body, a chunked answer's trailers: those are dropped, since
 * trailers are not headers (a second Content-Type, a late Set-Cookie).
 * What a line is, upstream_parse_header() says; what it means across
 * lines (which block, folding, Content-Length fields) is decided here. */
static size_t
on_header(char *buf, size_t size, size_t n, void *p)
{
    struct upstream_xfer *x = p;
    size_t len = size * n;
    x->rh_bytes += len;
    if (x->rh_bytes > UPSTREAM_MAX_HEADERS) {
        x->too_big = 1;
        return 0;
    }
    if (x->hdr_done)
        return len; /* a trailer */
    struct upstream_header_line h;
    switch (upstream_parse_header(buf, len, &h)) {
    case UPSTREAM_HDR_STATUS: {
        /* a new status line (after 1xx): forget earlier headers */
        size_t keep = x->rh_bytes;
        response_reset(x);
        x->rh_bytes = keep;
        x->hstatus = h.status;
        return len;
    }
    case UPSTREAM_HDR_END:
        /* the blank line: a final block ends here, a 1xx one is followed
         * by the next status line */
        if (x->hstatus >= 200)
            x->hdr_done = 1;
        return len;
    case UPSTREAM_HDR_FOLD:
        if (x->nrh == 0)
            return header_invalid(x);
        header_fold(x, h.value, h.value_len);
        return len;
    case UPSTREAM_HDR_FIELD:
        if (length_conflict(x, h.name, h.name_len, h.value, h.value_len))
            return header_invalid(x);
        header_add(x, h.name, h.name_len, h.value, h.value_len);
        return len;
    case UPSTREAM_HDR_INVALID:
        break;
    }
    return header_invalid(x);
}

static size_t
on_body(char *buf, size_t size, size_t n, void *p)
{
    struct upstream_xfer *x = p;
    size_t len = size * n;
    x->hdr_done = 1; /* whatever header line comes now is a trailer */
    if (evbuffer_get_length(x->rbody) + len > UPSTREAM_MAX_BODY) {
        x->too_big = 1;
        return 0;
    }
    if (evbuffer_add(x->rbody, buf, len) != 0)
        alloc_oom("evbuffer_add");
    return len;
}

/* ---- the sockets, for the check before a request leaves ---- */

/* 1 while f still names the socket it was made for. */
static int
fd_live(const struct upstream_fd *f)
{
    struct stat st;
    return fstat(f->fd, &st) == 0 && st.st_ino == f->ino;
}

/* Drops the entries whose socket is gone; then sweeps again only once
 * the table has doubled, so the cost stays amortised. */
static void
fds_sweep(struct upstream *u)
{
    for (size_t i = 0; i < u->nfds;) {
        if (fd_live(&u->fds[i]))
            i++;
        else
            u->fds[i] = u->fds[--u->nfds];
    }
    u->fds_sweep_at = 2 * u->nfds + 16;
}

static curl_socket_t
on_open_socket(void *p, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct upstream *u = p;
    (void)purpose;
    curl_socket_t fd =
        socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    struct stat st;
    if (fd == CURL_SOCKET_BAD || fstat(fd, &st) != 0)
        return fd; /* not tracked: never checked, never wrong */
    if (u->nfds >= u->fds_sweep_at)
        fds_sweep(u);
    if (u->nfds == u->capfds) {
        u->capfds = u->capfds ? 2 * u->capfds : 16;
        u->fds = xrealloc(u->fds, u->capfds * sizeof(*u->fds));
    }
    u->fds[u->nfds++] = (struct upstream_fd){fd, 0, st.st_ino, 0};
    return fd;
}

static void park_drop(struct upstream *u, curl_socket_t fd);

static int
on_close_socket(void *p, curl_socket_t fd)
{
    struct upstream *u = p;
    park_drop(u, fd); /* before the descriptor can be reused */
    for (size_t i = 0; i < u->nfds;) {
        if (u->fds[i].fd == fd)
            u->fds[i] = u->fds[--u->nfds]; /* it, or a stale one */
        else
            i++;
    }
    return close(fd);
}

static int
local_port_of(curl_socket_t fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

/* 1 if the cleartext connection on local_port holds bytes nobody asked
 * for yet: the tail of an earlier answer longer than its framing said
 * (a wrong Content-Length, arriving after libcurl read the answer). Sent
 * on, the request would get those bytes as its answer, and the next one
 * this request's answer: answers handed to the wrong callers. libcurl
 * 7.88 takes such a connection as alive (it only looks for a FIN), so the
 * check is here; the connection is shut down so that libcurl drops it.
 * Only over cleartext HTTP/1.1: on HTTP/2 bytes may wait for other
 * streams, and over TLS they are records. */
/* The socket of the connection on local_port: an established one at
 * once; else found among the others (their port learnt once, the socket
 * checked for being the one its entry was made for) and established. */
static struct upstream_fd *
fd_of_port(struct upstream *u, int local_port)
{
    for (size_t i = 0; i < u->nfds; i++)
        if (u->fds[i].est && u->fds[i].port == local_port)
            return &u->fds[i];
    for (size_t i = 0; i < u->nfds; i++) {
        struct upstream_fd *f = &u->fds[i];
        if (f->port == 0)
            f->port = local_port_of(f->fd);
        if (f->port != local_port || !fd_live(f))
            continue; /* a stale one goes at the next sweep */
        f->est = 1;
        return f;
    }
    return NULL;
}

static int
fd_established(const struct upstream *u, curl_socket_t fd)
{
    for (size_t i = 0; i < u->nfds; i++)
        if (u->fds[i].fd == fd && u->fds[i].est)
            return 1;
    return 0;
}

static int
conn_has_input(struct upstream *u, int local_port)
{
    if (local_port <= 0)
        return 0;
    struct upstream_fd *f = fd_of_port(u, local_port); /* established */
    if (f != NULL && !u->pipewait) {
        char c;
        ssize_t n = recv(f->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 &&
            (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return 0;
        shutdown(f->fd, SHUT_RDWR); /* bytes, a FIN or an error */
        return 1;
    }
    return 0;
}

/* Called by libcurl each time it is about to send the request on a
 * connection. The body is handed over whole (CURLOPT_POSTFIELDS, so that
 * the request line, headers and body leave in one send), and libcurl would
 * re-send it by itself when a reused keep-alive connection dies without an
 * answer ("Connection died, retrying a fresh connect"). A POST may have
 * reached the upstream as soon as it was first sent, so a second send is
 * refused here: the transfer fails with CURLE_ABORTED_BY_CALLBACK, the
 * caller gets 502 and the message left at most once.
 *
 * It is also the one place that knows when the request leaves: from the
 * first call on, a failure is an unknown outcome (sent), and the caller's
 * on_sent hears of it, so that a rate limit is counted on the wire. */
static int
on_prereq(void *p, char *primary_ip, char *local_ip, int primary_port,
          int local_port)
{
    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    struct upstream_xfer *x = p;
    if (!(x->post && x->requests > 0) && conn_has_input(x->u, local_port)) {
        x->stale = 1; /* nothing left: retried on a fresh connection */
        return CURL_PREREQFUNC_ABORT;
    }
    x->requests++;
    if (x->post && x->requests > 1)
        return CURL_PREREQFUNC_ABORT;
    if (x->requests == 1 && x->on_sent)
        x->on_sent(x->arg);
    return CURL_PREREQFUNC_OK;
}

/* ---- the pool of finished transfers ---- */

/* A new transfer with its easy handle; the options that never change are
 * set here, once. NULL when libcurl cannot make or set up a handle. */
static struct upstream_xfer *
xfer_new(struct upstream *u)
{
    struct upstream_xfer *x = xcalloc(1, sizeof(*x));
    x->u = u;
    x->rbody = evbuffer_new();
    if (x->rbody == NULL)
        alloc_oom("evbuffer_new");
    CURL *e = x->easy = curl_easy_init();
    if (e == NULL)
        return x; /* reported from the loop by the caller */
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, &x->hdrs[0]);
    bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    bad |= curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
    bad |= curl_easy_setopt(e, CURLOPT_PREREQDATA, x);
    bad |= curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    bad |= curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, u);
    bad |= curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    bad |= curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, u);
    bad |= curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, UPSTREAM_MAXAGE_S);
    bad |= curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                            (long)CURL_HTTP_VERSION_2TLS);
    bad |= curl_easy_setopt(e, CURLOPT_PIPEWAIT, u->pipewait ? 1L : 0L);
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    bad |= curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    bad |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    /* the provider is reached directly: no per-request proxy lookup in the
     * environment */
    bad |= curl_easy_setopt(e, CURLOPT_PROXY, "");
    if (u->ca_file)
        bad |= curl_easy_setopt(e, CURLOPT_CAINFO, u->ca_file);
    if (bad) {
        curl_easy_cleanup(e);
        x->easy = NULL;
    }
    return x;
}

static void
xfer_destroy(struct upstream_xfer *x)
{
    if (x->easy)
        curl_easy_cleanup(x->easy);
    if (x->fail_ev)
        event_free(x->fail_ev);
    if (x->req) {
        explicit_bzero(x->req, x->req_len);
        free(x->req);
    }
    free(x->rtext);
    free(x->hoff);
    free(x->rh);
    evbuffer_free(x->rbody);
    free(x);
}

/* Ends a transfer that is no longer in the multi: back to the idle list
 * when its handle is known clean, else freed. */
static void
xfer_release(struct upstream_xfer *x, int clean)
{
    struct upstream *u = x->u;
    TAILQ_REMOVE(&u->xfers, x, link);
    u->in_flight--;
    /* a handle that saw a retry keeps libcurl-internal retry state that
     * only curl_easy_reset() clears: not worth keeping */
    if (!clean || x->easy == NULL || x->fail_ev || x->tries > 0 ||
        x->requests != 1 || u->nidle >= UPSTREAM_POOL_MAX) {
        xfer_destroy(x);
        return;
    }
    explicit_bzero(x->req, x->req_len);
    x->req_len = 0;
    if (x->req_cap > UPSTREAM_KEEP_BUF) {
        free(x->req);
        x->req = NULL;
        x->req_cap = 0;
    }
    if (x->rtext_cap > UPSTREAM_KEEP_BUF) {
        free(x->rtext);
        x->rtext = NULL;
        x->rtext_cap = 0;
    }
    response_reset(x);
    evbuffer_drain(x->rbody, evbuffer_get_length(x->rbody));
    x->cb = NULL;
    x->on_sent = NULL;
    x->arg = NULL;
    TAILQ_INSERT_HEAD(&u->idle, x, link);
    u->nidle++;
}

static void
leave_multi(struct upstream_xfer *x)
{
    if (x->in_multi) {
        curl_multi_remove_handle(x->u->multi, x->easy);
        x->in_multi = 0;
    }
}

/* ---- completion ---- */

static void
xfer_finish(struct upstream_xfer *x, enum upstream_failure f)
{
    for (size_t i = 0; i < x->nrh; i++) {
        x->rh[i].name = x->rtext + x->hoff[i].name;
        x->rh[i].value = x->rtext + x->hoff[i].value;
    }
    struct upstream_response resp = {
        .status = x->status,
        .headers = x->rh,
        .nheaders = x->nrh,
        .body = x->rbody,
        .total_ms = clock_mono_ms() - x->started_ms,
    };
    struct upstream_result res = {
        .failure = f,
        .sent = x->requests > 0,
        .resp = f == UPSTREAM_FAIL_NONE ? &resp : NULL,
    };
    /* leave the multi before calling back: the callback may start new
     * transfers, and this one must not be touched by libcurl again */
    leave_multi(x);
    x->cb(x->arg, &res);
    xfer_release(x, f == UPSTREAM_FAIL_NONE);
}

/* ---- setting a transfer up ---- */

/* Appends a then b to x->req, NUL-terminated when nul; returns where the
 * pair starts. */
static size_t
req_add(struct upstream_xfer *x, const char *a, size_t alen, const char *b,
        size_t blen, int nul)
{
    size_t need = x->req_len + alen + blen + (nul ? 1 : 0);
    if (need > x->req_cap) {
        size_t cap = x->req_cap ? x->req_cap : 1024;
        while (cap < need)
            cap *= 2;
        char *n = xmalloc(cap);
        if (x->req) {
            memcpy(n, x->req, x->req_len);
            explicit_bzero(x->req, x->req_len);
            free(x->req);
        }
        x->req = n;
        x->req_cap = cap;
    }
    size_t at = x->req_len;
    memcpy(x->req + at, a, alen);
    if (blen)
        memcpy(x->req + at + alen, b, blen);
    x->req_len = need;
    if (nul)
        x->req[need - 1] = '\0';
    return at;
}

static size_t
req_header(struct upstream_xfer *x, const char *name_colon, const char *v)
{
    return req_add(x, name_colon, strlen(name_colon), v, strlen(v), 1);
}

/* Copies what the call needs into x->req and links the header lines.
 * Offsets first: x->req may move while it grows. */
static void
request_build(struct upstream_xfer *x, const struct upstream *u,
              const struct upstream_call *c, size_t *url_at)
{
    size_t at[UPSTREAM_NHDRS], n = 0;
    x->req_len = 0;
    *url_at = req_add(x, u->base_url, strlen(u->base_url), c->path_query,
                      strlen(c->path_query), 1);
    at[n++] = req_add(x, u->auth, strlen(u->auth), NULL, 0, 1);
    if (c->content_type)
        at[n++] = req_header(x, "Content-Type: ", c->content_type);
    at[n++] = req_header(x, "Accept: ",
                         c->accept ? c->accept : "application/json");
    if (c->request_id)
        at[n++] = req_header(x, "X-Request-Id: ", c->request_id);
    if (c->idempotency_key)
        at[n++] = req_header(x, "Idempotency-Key: ", c->idempotency_key);
    /* a header line rather than CURLOPT_USERAGENT, which libcurl formats
     * again for every request */
    at[n++] = req_header(x, "User-Agent: ", WAGATE_USER_AGENT);
    /* no "Expect: 100-continue" round trip, whatever the body size */
    at[n++] = req_add(x, "Expect:", 7, NULL, 0, 1);
    size_t body_at = 0;
    x->body_len = c->post ? c->body_len : 0;
    if (c->post && c->body_len)
        body_at = req_add(x, c->body, c->body_len, NULL, 0, 0);
    for (size_t i = 0; i < n; i++) {
        x->hdrs[i].data = x->req + at[i];
        x->hdrs[i].next = i + 1 < n ? &x->hdrs[i + 1] : NULL;
    }
    x->body = c->post ? x->req + body_at : NULL;
}

/* Per-call options, then into the multi. -1 when libcurl refuses. */
static int
easy_start(struct upstream_xfer *x, const char *url)
{
    struct upstream *u = x->u;
    CURL *e = x->easy;
    if (e == NULL)
        return -1;
    double left = x->deadline_ms - clock_mono_ms();
    long total = left < 1 ? 1 : (long)left;
    long conn = u->connect_timeout_ms < total ? u->connect_timeout_ms : total;
    x->errbuf[0] = '\0';
    int bad = 0;
    if (url)
        bad |= curl_easy_setopt(e, CURLOPT_URL, url);
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total);
    bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, conn);
    if (x->post) {
        bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                                (curl_off_t)x->body_len);
        bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
    } else {
        bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                                (curl_off_t)-1);
        bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, (char *)NULL);
        bad |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    if (bad)
        return -1;
    if (curl_multi_add_handle(u->multi, e) != CURLM_OK)
        return -1;
    x->in_multi = 1;
    return 0;
}

static void
on_fail_ev(evutil_socket_t fd, short what, void *p)
{
    (void)fd;
    (void)what;
    xfer_finish(p, UPSTREAM_FAIL_SETUP);
}

static void
report_later(struct upstream_xfer *x)
{
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
    struct upstream_xfer *x = TAILQ_FIRST(&u->idle);
    if (x) {
        TAILQ_REMOVE(&u->idle, x, link);
        u->nidle--;
    } else {
        x = xfer_new(u);
    }
    x->cb = cb;
    x->on_sent = c->on_sent;
    x->arg = arg;
    x->post = c->post;
    x->tries = 0;
    x->requests = 0;
    x->too_big = 0;
    x->invalid = 0;
    x->stale = 0;
    response_reset(x);
    size_t url_at;
    request_build(x, u, c, &url_at);
    x->started_ms = clock_mono_ms();
    x->deadline_ms = x->started_ms + (double)u->timeout_ms;
    TAILQ_INSERT_TAIL(&u->xfers, x, link);
    u->in_flight++;
    if (easy_start(x, x->req + url_at) != 0)
        report_later(x);
    return x;
}

int
upstream_xfer_sent(const struct upstream_xfer *x)
{
    return x->requests > 0;
}

void
upstream_cancel(struct upstream_xfer *x)
{
    leave_multi(x);
    xfer_release(x, 0);
}

/* ---- outcome of a finished transfer ---- */

static const struct {
    const char *name, *phrase;
} failures[UPSTREAM_FAIL_COUNT] = {
    [UPSTREAM_FAIL_NONE] = {"none", "no failure"},
    [UPSTREAM_FAIL_DNS] = {"dns", "cannot resolve the upstream host"},
    [UPSTREAM_FAIL_CONNECT_REFUSED] = {"connect_refused", "connection refused"},
    [UPSTREAM_FAIL_CONNECT_TIMEOUT] = {"connect_timeout", "connect timeout"},
    [UPSTREAM_FAIL_TLS] = {"tls", "TLS failure"},
    [UPSTREAM_FAIL_RESET] = {"reset", "connection reset"},
    [UPSTREAM_FAIL_CLOSED] = {"closed", "connection closed without an answer"},
    [UPSTREAM_FAIL_LOST_AFTER_SEND] = {"lost_after_send",
                                       "connection lost after the request "
                                       "left"},
    [UPSTREAM_FAIL_INVALID_RESPONSE] = {"invalid_response",
                                        "the answer is not valid HTTP"},
    [UPSTREAM_FAIL_TOO_LARGE] = {"too_large", "answer too large"},
    [UPSTREAM_FAIL_TIMEOUT] = {"timeout", "no complete answer in time"},
    [UPSTREAM_FAIL_SETUP] = {"setup", "transfer setup failed"},
    [UPSTREAM_FAIL_OTHER] = {"other", "upstream transfer failed"},
};

const char *
upstream_failure_name(enum upstream_failure f)
{
    return (unsigned)f < UPSTREAM_FAIL_COUNT ? failures[f].name : "other";
}

const char *
upstream_failure_phrase(enum upstream_failure f)
{
    return (unsigned)f < UPSTREAM_FAIL_COUNT
               ? failures[f].phrase
               : failures[UPSTREAM_FAIL_OTHER].phrase;
}

/* What a libcurl error means. A receive error is a reset unless libcurl
 * says the chunked framing was bad: both are CURLE_RECV_ERROR, only its
 * message ("... in chunked-encoding") tells them apart. That strstr reads
 * libcurl's error buffer, not a sentence of ours: libcurl (7.88) has no
 * typed value for it, and all it decides is the failure's kind (the
 * metrics label and the 502's phrase); whether the request may have left
 * comes from on_prereq, never from text. */
static enum upstream_failure
classify(const struct upstream_xfer *x, CURLcode rc)
{
    if (x->invalid || (x->stale && rc == CURLE_ABORTED_BY_CALLBACK))
        return UPSTREAM_FAIL_INVALID_RESPONSE;
    if (x->too_big)
        return UPSTREAM_FAIL_TOO_LARGE;
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
        return UPSTREAM_FAIL_DNS;
    case CURLE_COULDNT_CONNECT:
        return UPSTREAM_FAIL_CONNECT_REFUSED;
    case CURLE_GOT_NOTHING:
        return UPSTREAM_FAIL_CLOSED;
    case CURLE_SEND_ERROR:
        return UPSTREAM_FAIL_RESET;
    case CURLE_RECV_ERROR:
        return strstr(x->errbuf, "chunk") ? UPSTREAM_FAIL_INVALID_RESPONSE
                                          : UPSTREAM_FAIL_RESET;
    case CURLE_ABORTED_BY_CALLBACK: /* on_prereq refused a second send */
        return UPSTREAM_FAIL_LOST_AFTER_SEND;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_PARTIAL_FILE:
    case CURLE_BAD_CONTENT_ENCODING:
        return UPSTREAM_FAIL_INVALID_RESPONSE;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return UPSTREAM_FAIL_TLS;
    default:
        return UPSTREAM_FAIL_OTHER;
    }
}

/* A connect failure (refused, unresolvable, connect timeout) is retried
 * once while the deadline allows, unless a POST was already sent on some
 * connection: after libcurl's own "connection died" retry the connect that
 * fails is the second one, and the message may have arrived with the
 * first. */
static int
should_retry(struct upstream_xfer *x, CURLcode rc, int sent)
{
    if (x->tries >= 1 || clock_mono_ms() + 1 >= x->deadline_ms)
        return 0;
    if (x->post && x->requests > 0)
        return 0;
    if (rc == CURLE_ABORTED_BY_CALLBACK)
        return x->stale; /* nothing left; the connection is shut down */
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
           (rc == CURLE_OPERATION_TIMEDOUT && !sent);
}

static void
xfer_done(struct upstream_xfer *x, CURLcode rc)
{
    if (rc == CURLE_OK) {
        long code = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
        x->status = (int)code;
        /* libcurl takes any three digits (999) and a 1xx as final */
        xfer_finish(x, x->invalid || code < 200 || code > 599
                           ? UPSTREAM_FAIL_INVALID_RESPONSE
                           : UPSTREAM_FAIL_NONE);
        return;
    }
    /* "sent", not "connected": a reused keep-alive connection reports no
     * connect time, yet a timeout after the request left it is the
     * upstream's silence (504), not a failure to connect (502) */
    int sent = x->requests > 0;
    int expired = clock_mono_ms() + 5 >= x->deadline_ms;
    if (should_retry(x, rc, sent || expired)) {
        x->tries++;
        leave_multi(x);
        response_reset(x);
        x->too_big = 0;
        x->invalid = 0;
        x->stale = 0;
        evbuffer_drain(x->rbody, evbuffer_get_length(x->rbody));
        if (easy_start(x, NULL) != 0)
            report_later(x);
        return;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT)
        xfer_finish(x, sent || expired ? UPSTREAM_FAIL_TIMEOUT
                                       : UPSTREAM_FAIL_CONNECT_TIMEOUT);
    else
        xfer_finish(x, classify(x, rc));
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
    struct upstream_sock *sk = p;
    struct upstream *u = sk->u;
    if (sk->parked) { /* an idle connection stirred: stop watching it */
        event_del(&sk->ev);
        sk->kind = 0;
        return;
    }
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

static void
sock_free(struct upstream_sock *sk)
{
    if (sk->kind)
        event_del(&sk->ev);
    free(sk);
}

/* Keeps sk's event while its connection waits in the pool; only its read
 * interest (a pending write interest would fire at once). */
static void
park(struct upstream *u, struct upstream_sock *sk)
{
    if ((size_t)sk->fd >= u->nparked) {
        size_t n = u->nparked ? u->nparked : 64;
        while (n <= (size_t)sk->fd)
            n *= 2;
        u->parked = xrealloc(u->parked, n * sizeof(*u->parked));
        memset(u->parked + u->nparked, 0,
               (n - u->nparked) * sizeof(*u->parked));
        u->nparked = n;
    }
    if (u->parked[sk->fd] != NULL) /* cannot be: a socket has one event */
        sock_free(u->parked[sk->fd]);
    if (sk->kind & EV_WRITE) {
        event_del(&sk->ev);
        sk->kind = 0;
    }
    sk->parked = 1;
    u->parked[sk->fd] = sk;
}

static struct upstream_sock *
park_take(struct upstream *u, curl_socket_t fd)
{
    if (fd < 0 || (size_t)fd >= u->nparked || u->parked[fd] == NULL)
        return NULL;
    struct upstream_sock *sk = u->parked[fd];
    u->parked[fd] = NULL;
    sk->parked = 0;
    return sk;
}

static void
park_drop(struct upstream *u, curl_socket_t fd)
{
    struct upstream_sock *sk = park_take(u, fd);
    if (sk)
        sock_free(sk);
}

static int
curl_socket_cb(CURL *e, curl_socket_t s, int what, void *p, void *sockp)
{
    (void)e;
    struct upstream *u = p;
    struct upstream_sock *sk = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (sk) {
            curl_multi_assign(u->multi, s, NULL);
            if (fd_established(u, s))
                park(u, sk);
            else
                sock_free(sk);
        }
        return 0;
    }
    short kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
                 ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    if (sk == NULL) {
        sk = park_take(u, s);
        if (sk == NULL) {
            sk = xcalloc(1, sizeof(*sk));
            sk->u = u;
            sk->fd = s;
        }
        curl_multi_assign(u->multi, s, sk);
    }
    if (sk->kind == kind)
        return 0;
    if (sk->kind)
        event_del(&sk->ev); /* never re-assign a pending event */
    sk->kind = kind;
    event_assign(&sk->ev, u->base, s, kind, on_socket_event, sk);
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
    TAILQ_INIT(&u->idle);
    u->base = base;
    u->base_url = xstrdup(o->base_url);
    u->ca_file = o->ca_file ? xstrdup(o->ca_file) : NULL;
    u->pipewait = strncasecmp(o->base_url, "https://", 8) == 0;
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
    secret_free(u->auth);
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
    struct upstream_xfer *x;
    while ((x = TAILQ_FIRST(&u->xfers)) != NULL) {
        leave_multi(x);
        TAILQ_REMOVE(&u->xfers, x, link);
        u->in_flight--;
        xfer_destroy(x);
    }
    /* before the event base goes: its socket callback runs in here */
    if (u->multi)
        curl_multi_cleanup(u->multi);
    for (size_t i = 0; i < u->nparked; i++)
        park_drop(u, (curl_socket_t)i);
    free(u->parked);
    while ((x = TAILQ_FIRST(&u->idle)) != NULL) {
        TAILQ_REMOVE(&u->idle, x, link);
        xfer_destroy(x);
    }
    if (u->timer)
        event_free(u->timer);
    secret_free(u->auth);
    free(u->base_url);
    free(u->ca_file);
    free(u->fds);
    free(u);
}
