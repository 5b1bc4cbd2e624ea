/* redis_link.c - see redis_link.h.
 *
 * Ownership. Every hiredis callback gets a struct rlink_cmd as its privdata,
 * for the user's commands and for the handshake's steps alike. hiredis calls
 * each callback it was given exactly once: with the reply, or with NULL when
 * the context goes (redisAsyncFree, or an error). So a command's memory
 * lives while hiredis holds it (inflight) or the link still owes its caller
 * an answer (!done), and is freed when neither holds (cmd_release).
 *
 * Connections. l->ac is the current context; l->gen counts the contexts.
 * Dropping a connection forgets the context first (l->ac = NULL, ac->data =
 * NULL, gen + 1), so that the callbacks hiredis then runs with NULL replies
 * find their command stale or done and touch nothing. The link frees the
 * context itself (redisAsyncFree) only where hiredis allows it: from a timer
 * or from a reply callback (hiredis defers the free to after it); in the
 * connect and disconnect callbacks and on a NULL reply hiredis is freeing it
 * already, and the link only forgets it.
 *
 * Reentrancy. User code (reply callbacks, on_change, the idle waiter) may
 * call any function here, rlink_free() included. Every entry point counts
 * itself in l->depth; rlink_free() inside one only marks the link freed
 * (dropping everything) and the outermost entry frees the memory on its way
 * out; code after a user call checks l->freed. */
#include "redis_link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "alloc.h"
#include "log.h"

#define RLINK_BACKOFF_MIN_MS 50
#define RLINK_REASON_MAX 160
#define RLINK_HEALTH_MIN_MS 1000 /* see rlink_health_ms() */

enum cmd_kind { CMD_USER, CMD_AUTH, CMD_SELECT, CMD_LOAD, CMD_PING };

struct cmd_list {
    struct rlink_cmd *head, *tail;
};

struct rlink_cmd {
    struct rlink *link;
    struct rlink_cmd *prev, *next; /* in *on */
    struct cmd_list *on;           /* l->pending, l->dying or NULL */
    enum cmd_kind kind;
    size_t script; /* CMD_USER: the script; CMD_LOAD: the one loaded */
    unsigned gen;  /* the connection it was sent on */
    int inflight;  /* callbacks hiredis holds with this as privdata, plus
                    * one while on_reply() runs for it */
    int done;      /* answered or cancelled: nothing owed to a caller */
    int resent;    /* NOSCRIPT seen, sent again as EVAL */
    /* CMD_USER: "EVALSHA" sha nkeys args..., then "EVAL" source nkeys... */
    int argc;
    const char **argv;
    size_t *argvlen;
    char nkeys[16];
    char *blob; /* the copied arguments */
    rlink_reply_cb cb;
    void *arg;
    struct event *timer;
};

struct rlink {
    struct event_base *base;
    char *url; /* no password (rlink_parse_url refuses one) */
    char host[256];
    int port; /* 0: host is a unix socket path */
    int db;
    char *password;
    size_t passlen;
    long timeout_ms;
    const struct rlink_script *scripts;
    size_t nscripts;
    char (*sha)[41]; /* SHA1 of each script, lower-case hex */

    redisAsyncContext *ac;
    unsigned gen;
    int up;
    int logged;  /* 0 nothing yet, 1 "up" logged last, -1 "down" */
    int hs_left; /* handshake replies still expected */
    long backoff_ms;
    struct event *conn_timer;  /* the connect and handshake deadline */
    struct event *retry_timer; /* the next connect */
    struct event *idle_ev;     /* runs the idle waiter from the loop */
    /* the health check: the next PING of an idle link, or the deadline
     * of the one in flight (health: a CMD_PING on l->pending) */
    struct event *health_timer;
    struct rlink_cmd *health;

    struct cmd_list pending; /* sent on l->ac, by age */
    struct cmd_list dying;   /* their connection dropped, to be answered */
    size_t npending;         /* user commands not answered yet */

    rlink_change_cb on_change;
    void *change_arg;
    void (*idle_done)(void *);
    void *idle_arg;

    int depth; /* entry points on the stack */
    int freed; /* rlink_free() ran: free once depth is 0 */
    struct rlink_stats st;
};

/* ---- small helpers ---- */

static void
list_push(struct cmd_list *li, struct rlink_cmd *c)
{
    c->on = li;
    c->next = NULL;
    c->prev = li->tail;
    if (li->tail)
        li->tail->next = c;
    else
        li->head = c;
    li->tail = c;
}

static void
list_remove(struct rlink_cmd *c)
{
    struct cmd_list *li = c->on;
    if (li == NULL)
        return;
    c->on = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        li->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        li->tail = c->prev;
    c->prev = c->next = NULL;
}

static void
cmd_destroy(struct rlink_cmd *c)
{
    if (c->timer)
        event_free(c->timer);
    free(c->argv);
    free(c->argvlen);
    free(c->blob);
    free(c);
}

/* Frees c once neither hiredis nor a caller needs it. */
static void
cmd_release(struct rlink_cmd *c)
{
    if (c->done && !c->inflight)
        cmd_destroy(c);
}

static void
timer_arm(struct event *ev, long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

static void
sha1_hex(const char *s, char out[41])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    static const char hx[] = "0123456789abcdef";
    SHA1((const unsigned char *)s, strlen(s), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++) {
        out[2 * i] = hx[md[i] >> 4];
        out[2 * i + 1] = hx[md[i] & 15];
    }
    out[40] = '\0';
}

long
rlink_health_ms(long timeout_ms)
{
    long ms = timeout_ms > LONG_MAX / 4 ? LONG_MAX : timeout_ms * 4;
    return ms > RLINK_HEALTH_MIN_MS ? ms : RLINK_HEALTH_MIN_MS;
}

static void
enter(struct rlink *l)
{
    l->depth++;
}

static void link_destroy(struct rlink *l);

static void
leave(struct rlink *l)
{
    if (--l->depth == 0 && l->freed)
        link_destroy(l);
}

/* The idle waiter runs from the loop, never inside the call that emptied
 * the link (its caller may be in the middle of something). */
static void
idle_check(struct rlink *l)
{
    if (l->idle_done && l->npending == 0 && !l->freed)
        event_active(l->idle_ev, EV_TIMEOUT, 0);
}

/* ---- answering ---- */

/* c leaves its list and its caller gets st; c itself stays while hiredis
 * holds it. The caller checks l->freed afterwards. */
static void
cmd_answer(struct rlink *l, struct rlink_cmd *c, enum rlink_status st,
           const redisReply *r)
{
    rlink_reply_cb cb = c->cb;
    void *arg = c->arg;
    list_remove(c);
    if (c->timer)
        evtimer_del(c->timer);
    c->done = 1;
    c->cb = NULL;
    l->npending--;
    if (st != RLINK_OK)
        l->st.failed++;
    cmd_release(c);
    if (cb)
        cb(arg, st, r);
}

/* Answers every command of a dropped connection UNAVAILABLE. */
static void
answer_dying(struct rlink *l)
{
    struct rlink_cmd *c;
    while (!l->freed && (c = l->dying.head) != NULL)
        cmd_answer(l, c, RLINK_UNAVAILABLE, NULL);
    idle_check(l);
}

/* ---- state transitions ---- */

static void connect_cb_timer(evutil_socket_t fd, short what, void *arg);

static void
set_down(struct rlink *l, const char *reason)
{
    int was_up = l->up;
    l->up = 0;
    if (l->logged != -1) {
        /* the first failure of a link never up is logged too: an
         * operator must see why it does not come up */
        log_msg(LOG_WARN, "state: redis down: %s", reason);
        l->logged = -1;
    } else {
        log_msg(LOG_DEBUG, "state: redis still down: %s (retry in %ld ms)",
                reason, l->backoff_ms);
    }
    if (!l->freed) {
        timer_arm(l->retry_timer, l->backoff_ms);
        l->backoff_ms *= 2;
        if (l->backoff_ms > RLINK_BACKOFF_MAX_MS)
            l->backoff_ms = RLINK_BACKOFF_MAX_MS;
    }
    if (was_up) {
        l->st.downs++;
        if (l->on_change)
            l->on_change(l->change_arg, 0);
    }
}

static void
set_up(struct rlink *l)
{
    evtimer_del(l->conn_timer);
    l->up = 1;
    l->backoff_ms = RLINK_BACKOFF_MIN_MS;
    l->st.connects++;
    log_msg(LOG_INFO, "state: redis up (url %s)", l->url);
    l->logged = 1;
    timer_arm(l->health_timer, rlink_health_ms(l->timeout_ms));
    if (l->on_change)
        l->on_change(l->change_arg, 1);
}

/* Forgets the current connection: its commands move to l->dying (the
 * handshake's are dropped), and hiredis's later NULL replies for them find
 * them stale. free_ac: the link frees the context (a timer, a reply
 * callback, rlink_free); else hiredis is freeing it already. */
static void
conn_forget(struct rlink *l, int free_ac)
{
    redisAsyncContext *ac = l->ac;
    struct rlink_cmd *c;
    l->ac = NULL;
    l->gen++;
    evtimer_del(l->conn_timer);
    evtimer_del(l->health_timer);
    l->health = NULL; /* on l->pending: dropped below */
    while ((c = l->pending.head) != NULL) {
        list_remove(c);
        if (c->kind == CMD_USER) {
            if (c->timer)
                evtimer_del(c->timer);
            list_push(&l->dying, c);
        } else {
            c->done = 1;
            cmd_release(c);
        }
    }
    if (ac) {
        ac->data = NULL;
        if (free_ac)
            redisAsyncFree(ac);
    }
}

/* The connection failed (reason, never with the password): answer its
 * commands, go down, retry later. */
static void conn_fail(struct rlink *l, int free_ac, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
conn_fail(struct rlink *l, int free_ac, const char *fmt, ...)
{
    char reason[RLINK_REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    conn_forget(l, free_ac);
    set_down(l, reason);
    if (!l->freed)
        answer_dying(l);
}

static const char *
ac_reason(const redisAsyncContext *ac)
{
    if (ac->c.err && ac->c.errstr[0])
        return ac->c.errstr;
    return "connection lost";
}

/* ---- hiredis callbacks ---- */

static void
on_connect(const redisAsyncContext *ac, int status)
{
    struct rlink *l = ac->data;
    if (status == REDIS_OK || l == NULL || l->ac != ac)
        return;
    /* hiredis frees ac after this: forget it, never free it here */
    enter(l);
    conn_fail(l, 0, "connect: %s", ac_reason(ac));
    leave(l);
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rlink *l = ac->data;
    (void)status;
    if (l == NULL || l->ac != ac)
        return;
    enter(l);
    conn_fail(l, 0, "disconnected: %s", ac_reason(ac));
    leave(l);
}

static int
reply_is_error(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR;
}

/* A reply of a handshake step: on any surprise the connection goes. */
static void
handshake_reply(struct rlink *l, struct rlink_cmd *c, const redisReply *r)
{
    const char *what = c->kind == CMD_AUTH     ? "AUTH"
                       : c->kind == CMD_SELECT ? "SELECT"
                       : c->kind == CMD_PING   ? "PING"
                                               : "SCRIPT LOAD";
    const char *name = c->kind == CMD_LOAD ? l->scripts[c->script].name : "";
    list_remove(c);
    c->done = 1;
    if (reply_is_error(r)) {
        /* Redis's error text; it never echoes the password */
        conn_fail(l, 1, "%s%s%s: %.100s", what, *name ? " " : "", name, r->str);
        return;
    }
    if (c->kind == CMD_LOAD && (r->type != REDIS_REPLY_STRING || r->len != 40 ||
                                memcmp(r->str, l->sha[c->script], 40) != 0)) {
        conn_fail(l, 1, "SCRIPT LOAD %s: unexpected SHA1", name);
        return;
    }
    if (--l->hs_left == 0)
        set_up(l);
}

/* The health check's PONG: the link lives; the next one after a while. */
static void
health_reply(struct rlink *l, struct rlink_cmd *c, const redisReply *r)
{
    list_remove(c);
    c->done = 1;
    l->health = NULL;
    if (reply_is_error(r)) {
        conn_fail(l, 1, "health check: %.100s", r->str);
        return;
    }
    timer_arm(l->health_timer, rlink_health_ms(l->timeout_ms));
}

static int send_eval(struct rlink *l, struct rlink_cmd *c);

static void
user_reply(struct rlink *l, struct rlink_cmd *c, const redisReply *r)
{
    if (reply_is_error(r) && !c->resent && r->str &&
        strncmp(r->str, "NOSCRIPT", 8) == 0) {
        /* an empty script cache (restart, failover, SCRIPT FLUSH): the
         * same call once more with the source; one deadline for both */
        c->resent = 1;
        l->st.noscript++;
        c->argv[0] = "EVAL";
        c->argvlen[0] = 4;
        c->argv[1] = l->scripts[c->script].source;
        c->argvlen[1] = strlen(c->argv[1]);
        if (send_eval(l, c) == 0)
            return;
        cmd_answer(l, c, RLINK_UNAVAILABLE, NULL);
        idle_check(l);
        return;
    }
    cmd_answer(l, c, RLINK_OK, r);
    idle_check(l);
}

static void
on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct rlink_cmd *c = privdata;
    struct rlink *l = c->link;
    if (c->done) { /* answered or cancelled already, or the link is gone */
        c->inflight--;
        cmd_release(c);
        return;
    }
    if (c->gen != l->gen) { /* on l->dying: answered by the one dropping */
        c->inflight--;
        return;
    }
    /* c->inflight stays counted while c is dispatched: nothing frees it
     * under our feet (a resend for NOSCRIPT counts once more) */
    enter(l);
    if (reply == NULL) {
        /* hiredis is tearing the context down (EOF, error): every
         * pending command gets NULL; the first one answers for all */
        conn_fail(l, 0, "%s", ac_reason(ac));
    } else if (c->kind == CMD_USER) {
        user_reply(l, c, reply);
    } else if (c == l->health) { /* a PING, not of the handshake */
        health_reply(l, c, reply);
    } else {
        handshake_reply(l, c, reply);
    }
    /* a reply is freed by hiredis after this returns: c may go now */
    c->inflight--;
    cmd_release(c);
    leave(l);
}

/* ---- sending ---- */

static int
send_argv(struct rlink *l, struct rlink_cmd *c, int argc, const char **argv,
          const size_t *argvlen)
{
    if (l->ac == NULL || redisAsyncCommandArgv(l->ac, on_reply, c, argc, argv,
                                               argvlen) != REDIS_OK)
        return -1;
    c->inflight++;
    c->gen = l->gen;
    return 0;
}

static int
send_eval(struct rlink *l, struct rlink_cmd *c)
{
    return send_argv(l, c, c->argc, c->argv, c->argvlen);
}

static struct rlink_cmd *
cmd_new(struct rlink *l, enum cmd_kind kind)
{
    struct rlink_cmd *c = xcalloc(1, sizeof(*c));
    c->link = l;
    c->kind = kind;
    return c;
}

/* One handshake step, pipelined: hiredis writes it once connected. */
static int
handshake_send(struct rlink *l, enum cmd_kind kind, size_t script, int argc,
               const char **argv, const size_t *argvlen)
{
    struct rlink_cmd *c = cmd_new(l, kind);
    c->script = script;
    if (send_argv(l, c, argc, argv, argvlen) != 0) {
        cmd_destroy(c);
        return -1;
    }
    list_push(&l->pending, c);
    l->hs_left++;
    return 0;
}

/* AUTH, SELECT, every SCRIPT LOAD (at least a PING: "up" then always
 * happens in a reply callback, where hiredis allows anything). */
static int
handshake_start(struct rlink *l)
{
    l->hs_left = 0;
    if (l->password) {
        const char *a[] = {"AUTH", l->password};
        size_t al[] = {4, l->passlen};
        if (handshake_send(l, CMD_AUTH, 0, 2, a, al) != 0)
            return -1;
    }
    if (l->db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", l->db);
        const char *a[] = {"SELECT", db};
        size_t al[] = {6, strlen(db)};
        if (handshake_send(l, CMD_SELECT, 0, 2, a, al) != 0)
            return -1;
    }
    for (size_t i = 0; i < l->nscripts; i++) {
        const char *a[] = {"SCRIPT", "LOAD", l->scripts[i].source};
        size_t al[] = {6, 4, strlen(l->scripts[i].source)};
        if (handshake_send(l, CMD_LOAD, i, 3, a, al) != 0)
            return -1;
    }
    if (l->hs_left == 0) {
        const char *a[] = {"PING"};
        size_t al[] = {4};
        if (handshake_send(l, CMD_PING, 0, 1, a, al) != 0)
            return -1;
    }
    return 0;
}

static void
conn_start(struct rlink *l)
{
    redisAsyncContext *ac = l->port ? redisAsyncConnect(l->host, l->port)
                                    : redisAsyncConnectUnix(l->host);
    if (ac == NULL)
        alloc_oom("redisAsyncConnect");
    if (ac->err) {
        char reason[RLINK_REASON_MAX];
        snprintf(reason, sizeof(reason), "connect: %s", ac->errstr);
        redisAsyncFree(ac); /* nothing attached, no callback runs */
        conn_fail(l, 0, "%s", reason);
        return;
    }
    if (redisLibeventAttach(ac, l->base) != REDIS_OK) {
        redisAsyncFree(ac);
        conn_fail(l, 0, "connect: cannot attach to the event loop");
        return;
    }
    ac->data = l;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    l->ac = ac;
    timer_arm(l->conn_timer, l->timeout_ms);
    if (handshake_start(l) != 0)
        conn_fail(l, 1, "connect: cannot queue the handshake");
}

/* ---- timers ---- */

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rlink *l = arg;
    (void)fd;
    (void)what;
    enter(l);
    conn_start(l);
    leave(l);
}

static void
connect_cb_timer(evutil_socket_t fd, short what, void *arg)
{
    struct rlink *l = arg;
    (void)fd;
    (void)what;
    enter(l);
    l->st.timeouts++;
    conn_fail(l, 1, "connect timed out (%ld ms)", l->timeout_ms);
    leave(l);
}

static void
cmd_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rlink_cmd *c = arg;
    struct rlink *l = c->link;
    (void)fd;
    (void)what;
    enter(l);
    l->st.timeouts++;
    /* a Redis that does not answer one command answers none: the whole
     * connection goes, every command on it answered UNAVAILABLE */
    conn_fail(l, 1, "command timed out (%ld ms)", l->timeout_ms);
    leave(l);
}

/* An idle link is asked whether Redis still answers: without it a frozen
 * or vanished Redis (no RST: a host gone, a SIGSTOP) would be noticed
 * only by the next command, and /readyz and wagate_state_up would say
 * "up" meanwhile. A link with commands on the wire needs none: their
 * own deadlines tell. */
static void
health_send(struct rlink *l)
{
    const char *a[] = {"PING"};
    size_t al[] = {4};
    struct rlink_cmd *c = cmd_new(l, CMD_PING);
    if (send_argv(l, c, 1, a, al) != 0) {
        cmd_destroy(c);
        conn_fail(l, 1, "health check: cannot send");
        return;
    }
    list_push(&l->pending, c);
    l->health = c;
    timer_arm(l->health_timer, l->timeout_ms); /* its deadline */
}

static void
health_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rlink *l = arg;
    (void)fd;
    (void)what;
    if (!l->up || l->ac == NULL)
        return;
    enter(l);
    if (l->health != NULL) {
        /* a PING unanswered within timeout_ms: as for any command */
        l->st.timeouts++;
        conn_fail(l, 1, "health check timed out (%ld ms)", l->timeout_ms);
    } else if (l->npending > 0) {
        timer_arm(l->health_timer, rlink_health_ms(l->timeout_ms));
    } else {
        health_send(l);
    }
    leave(l);
}

static void
idle_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rlink *l = arg;
    (void)fd;
    (void)what;
    if (l->idle_done == NULL || l->npending != 0)
        return;
    void (*done)(void *) = l->idle_done;
    l->idle_done = NULL;
    enter(l);
    done(l->idle_arg);
    leave(l);
}

/* ---- URL ---- */

static int
url_err(char *err, size_t errlen, const char *msg)
{
    if (errlen)
        snprintf(err, errlen, "%s", msg);
    return -1;
}

static int
parse_num(const char *s, size_t n, long max, long *out)
{
    long v = 0;
    if (n == 0 || n > 9)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* hiredis 0.14 resolves a name with a blocking getaddrinfo() at every
 * connect, which would stall the loop while DNS is slow: only addresses
 * are taken, and "localhost", which needs no lookup, becomes 127.0.0.1. */
static int
numeric_host(char *host, size_t hostlen)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (strcmp(host, "localhost") == 0 && hostlen > sizeof("127.0.0.1")) {
        memcpy(host, "127.0.0.1", sizeof("127.0.0.1"));
        return 0;
    }
    return inet_pton(AF_INET, host, buf) == 1 ||
                   inet_pton(AF_INET6, host, buf) == 1
               ? 0
               : -1;
}

static int
parse_unix(const char *path, char *host, size_t hostlen, int *port, int *db,
           char *err, size_t errlen)
{
    size_t n = strlen(path);
    if (n == 0)
        return url_err(err, errlen, "unix: needs a socket path");
    if (n >= hostlen || n >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return url_err(err, errlen, "unix: socket path too long");
    memcpy(host, path, n + 1);
    *port = 0;
    *db = 0;
    return 0;
}

int
rlink_parse_url(const char *url, char *host, size_t hostlen, int *port, int *db,
                char *err, size_t errlen)
{
    static const char pre[] = "redis://";
    if (url == NULL)
        return url_err(err, errlen, "no URL");
    if (strncmp(url, "unix:", 5) == 0)
        return parse_unix(url + 5, host, hostlen, port, db, err, errlen);
    if (strncmp(url, "rediss://", 9) == 0)
        return url_err(err, errlen, "rediss:// (TLS) is not supported");
    if (strncmp(url, pre, sizeof(pre) - 1) != 0)
        return url_err(err, errlen,
                       "must be redis://host[:port][/db] or unix:PATH");
    const char *h = url + sizeof(pre) - 1;
    const char *end = h + strcspn(h, "/?#");
    if (memchr(h, '@', (size_t)(end - h)) || strchr(h, '@'))
        return url_err(err, errlen,
                       "no user or password in the URL (the password "
                       "comes from state.redis.password_file)");
    if (*end == '?' || *end == '#')
        return url_err(err, errlen, "no query or fragment in the URL");
    const char *hs = h, *he, *colon;
    if (*h == '[') { /* [IPv6] */
        he = memchr(h, ']', (size_t)(end - h));
        if (he == NULL)
            return url_err(err, errlen, "unterminated [IPv6 address]");
        hs = h + 1;
        colon = he + 1 < end ? he + 1 : NULL;
        if (colon && *colon != ':')
            return url_err(err, errlen, "junk after ]");
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        he = colon ? colon : end;
    }
    size_t hn = (size_t)(he - hs);
    if (hn == 0)
        return url_err(err, errlen, "no host in the URL");
    if (hn >= hostlen)
        return url_err(err, errlen, "host name too long");
    for (size_t i = 0; i < hn; i++)
        if ((unsigned char)hs[i] <= ' ' || hs[i] == '[' || hs[i] == ']' ||
            (*h != '[' && hs[i] == ':'))
            return url_err(err, errlen, "bad character in the host");
    long p = 6379, d = 0;
    if (colon && parse_num(colon + 1, (size_t)(end - colon - 1), 65535, &p))
        return url_err(err, errlen, "bad port (1-65535)");
    if (p == 0)
        return url_err(err, errlen, "bad port (1-65535)");
    if (*end == '/' && end[1] != '\0' &&
        parse_num(end + 1, strlen(end + 1), INT_MAX, &d))
        return url_err(err, errlen, "bad database number");
    memcpy(host, hs, hn);
    host[hn] = '\0';
    if (numeric_host(host, hostlen) != 0)
        return url_err(err, errlen,
                       "the host must be an IP address or localhost (a "
                       "name would be resolved by a blocking lookup)");
    *port = (int)p;
    *db = (int)d;
    return 0;
}

/* ---- the API ---- */

struct rlink *
rlink_new(struct event_base *base, const struct rlink_config *cfg,
          const struct rlink_script *scripts, size_t n,
          rlink_change_cb on_change, void *change_arg, char *err, size_t errlen)
{
    char host[256];
    int port, db;
    if (rlink_parse_url(cfg->url, host, sizeof(host), &port, &db, err,
                        errlen) != 0)
        return NULL;
    if (cfg->timeout_ms <= 0) {
        url_err(err, errlen, "timeout_ms must be > 0");
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (scripts[i].name == NULL || scripts[i].source == NULL) {
            url_err(err, errlen, "a script of the table is missing");
            return NULL;
        }
    struct rlink *l = xcalloc(1, sizeof(*l));
    l->base = base;
    l->url = xstrdup(cfg->url);
    memcpy(l->host, host, sizeof(host));
    l->port = port;
    l->db = db;
    if (cfg->password) {
        l->passlen = strlen(cfg->password);
        l->password = xstrndup(cfg->password, l->passlen);
    }
    l->timeout_ms = cfg->timeout_ms;
    l->scripts = scripts;
    l->nscripts = n;
    l->sha = xcalloc(n ? n : 1, sizeof(*l->sha));
    for (size_t i = 0; i < n; i++)
        sha1_hex(scripts[i].source, l->sha[i]);
    l->backoff_ms = RLINK_BACKOFF_MIN_MS;
    l->on_change = on_change;
    l->change_arg = change_arg;
    l->conn_timer =
        alloc_check(evtimer_new(base, connect_cb_timer, l), "evtimer_new");
    l->retry_timer = alloc_check(evtimer_new(base, retry_cb, l), "evtimer_new");
    l->idle_ev = alloc_check(event_new(base, -1, 0, idle_cb, l), "event_new");
    l->health_timer =
        alloc_check(evtimer_new(base, health_cb, l), "evtimer_new");
    timer_arm(l->retry_timer, 0); /* connect from the loop */
    return l;
}

void
rlink_set_timeout(struct rlink *l, long timeout_ms)
{
    if (timeout_ms > 0)
        l->timeout_ms = timeout_ms;
}

int
rlink_up(const struct rlink *l)
{
    return l->up;
}

/* The command, its arguments copied into one block after the three
 * leading slots (command, sha or source, nkeys). */
static struct rlink_cmd *
cmd_user_new(struct rlink *l, size_t script, int nkeys, int argc,
             const char *const *argv, const size_t *argvlen)
{
    struct rlink_cmd *c = cmd_new(l, CMD_USER);
    size_t total = 0;
    c->script = script;
    c->argc = argc + 3;
    c->argv = xcalloc((size_t)c->argc, sizeof(*c->argv));
    c->argvlen = xcalloc((size_t)c->argc, sizeof(*c->argvlen));
    for (int i = 0; i < argc; i++)
        total += argvlen[i];
    c->blob = xmalloc(total ? total : 1);
    snprintf(c->nkeys, sizeof(c->nkeys), "%d", nkeys);
    c->argv[0] = "EVALSHA";
    c->argvlen[0] = 7;
    c->argv[1] = l->sha[script];
    c->argvlen[1] = 40;
    c->argv[2] = c->nkeys;
    c->argvlen[2] = strlen(c->nkeys);
    char *p = c->blob;
    for (int i = 0; i < argc; i++) {
        if (argvlen[i])
            memcpy(p, argv[i], argvlen[i]);
        c->argv[i + 3] = p;
        c->argvlen[i + 3] = argvlen[i];
        p += argvlen[i];
    }
    return c;
}

struct rlink_cmd *
rlink_eval(struct rlink *l, size_t script, int nkeys, int argc,
           const char *const *argv, const size_t *argvlen, rlink_reply_cb cb,
           void *arg)
{
    l->st.commands++;
    int bad = script >= l->nscripts || nkeys < 0 || argc < 0 || nkeys > argc;
    if (bad)
        log_msg(LOG_ERROR,
                "redis: bad call of script %zu (%d keys, %d "
                "arguments)",
                script, nkeys, argc);
    if (bad || !l->up || l->ac == NULL) {
        /* the breaker: no waiting on a Redis known to be down */
        l->st.failed++;
        enter(l);
        cb(arg, RLINK_UNAVAILABLE, NULL);
        leave(l);
        return NULL;
    }
    struct rlink_cmd *c = cmd_user_new(l, script, nkeys, argc, argv, argvlen);
    c->cb = cb;
    c->arg = arg;
    if (send_eval(l, c) != 0) {
        cmd_destroy(c);
        l->st.failed++;
        enter(l);
        cb(arg, RLINK_UNAVAILABLE, NULL);
        leave(l);
        return NULL;
    }
    c->timer =
        alloc_check(evtimer_new(l->base, cmd_timeout_cb, c), "evtimer_new");
    timer_arm(c->timer, l->timeout_ms);
    list_push(&l->pending, c);
    l->npending++;
    return c;
}

void
rlink_cancel(struct rlink *l, struct rlink_cmd *c)
{
    if (c == NULL || c->done)
        return;
    list_remove(c);
    if (c->timer)
        evtimer_del(c->timer);
    c->cb = NULL;
    c->done = 1;
    l->npending--;
    cmd_release(c);
    idle_check(l);
}

void
rlink_get_stats(const struct rlink *l, struct rlink_stats *st)
{
    *st = l->st;
    st->pending = l->npending;
}

void
rlink_when_idle(struct rlink *l, void (*done)(void *arg), void *arg)
{
    if (done == NULL) {
        l->idle_done = NULL;
        return;
    }
    if (l->npending == 0) {
        l->idle_done = NULL;
        enter(l);
        done(arg);
        leave(l);
        return;
    }
    l->idle_done = done;
    l->idle_arg = arg;
}

static void
drop_list(struct cmd_list *li)
{
    struct rlink_cmd *c;
    while ((c = li->head) != NULL) {
        list_remove(c);
        c->cb = NULL;
        c->done = 1;
        cmd_release(c); /* inflight ones go with their context */
    }
}

static void
link_destroy(struct rlink *l)
{
    event_free(l->conn_timer);
    event_free(l->retry_timer);
    event_free(l->idle_ev);
    event_free(l->health_timer);
    free(l->sha);
    free(l->url);
    free(l);
}

void
rlink_free(struct rlink *l)
{
    if (l == NULL || l->freed)
        return;
    l->freed = 1;
    l->on_change = NULL;
    l->idle_done = NULL;
    enter(l);
    conn_forget(l, 1); /* hiredis's NULL replies find every command done */
    drop_list(&l->pending);
    drop_list(&l->dying);
    l->npending = 0;
    evtimer_del(l->retry_timer);
    evtimer_del(l->conn_timer);
    event_del(l->idle_ev);
    if (l->password) {
        volatile char *p = l->password;
        for (size_t i = 0; i < l->passlen; i++)
            p[i] = 0;
        free(l->password);
        l->password = NULL;
    }
    leave(l);
}
