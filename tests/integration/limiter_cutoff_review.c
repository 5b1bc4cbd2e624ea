/* limiter_cutoff_review.c - a hostile review of cut_off() (src/shaper.c:
 * an error reply to a reservation or to an ask of the shared guard cuts
 * the instance off as a drop does: the quiet, then the rejoin; SPEC
 * section 11, shaper.h "Down ... or cut off"). Two real gateways at 5/s,
 * burst 1, max_queue_ms 10000, state.instances 2, on one real Redis, in
 * front of the sandbox with its strict 5/s limit (a sliding 1000 ms
 * window stamped at arrival).
 *
 * Gateway 1 reaches Redis through a proxy of the test's (a forked child
 * forwarding loopback TCP to Redis's unix socket) that can turn chosen
 * operations of that gateway alone into error replies, leaving the
 * others alone: it rewrites the command on its way to Redis, one byte,
 * the length kept (rl_depart "ask" -> "asq", "back" -> "bacq", "alive"
 * -> "aliqe": "rl_depart: unknown operation"; rl_reserve's EVALSHA with
 * numkeys 9: "Number of keys can't be greater than number of args").
 * That is what an ACL denying one command of one script, a key of the
 * wrong shape, or a Redis that answers one script and not another (OOM
 * under noeviction refuses rl_reserve's SET but not rl_depart's first
 * writes, PEXPIRE and ZREMRANGEBYSCORE, which are not deny-oom) do. And
 * Redis itself misbehaves for both: BUSY (a script of the test's runs
 * past busy-reply-threshold) for 50 ms or 3 s, READONLY for 2 s, OOM
 * for 2.5 s with streams of sends on both.
 *
 * Each case asserts from the sandbox's own request log that no 1-second
 * window held more than 5 and that the sandbox answered none with its own
 * 429, and that every caller was answered exactly once, with a status the
 * contract allows (200, the gateway's own 429, 503), within max_queue_ms
 * + grace (+ 1.5 s of slack for two loaded cores).
 *
 * CK_RUN_CASE=<name> runs one case; REVIEW_TRACE=1 prints every send. */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"
#include "hx_burst.h"
#include "hx_redis.h"

#define FREEFORM "/api/user/whatsapp/send-freeform"
#define MAXSENDS 64
#define NGW 2
#define ACCOUNT "cutoff"
#define KEYBASE "wagate:{" ACCOUNT "}:"
/* the longest a caller may wait: max_queue_ms + the guard's grace
 * (20 + 10000 / 50), + slack */
#define ANSWER_BOUND_MS (10000.0 + 220.0 + 1500.0)

static struct proc sb, gw[NGW];
static char conf[NGW][64];
static char extra_of[NGW][1024];
static struct hx_redis redis;

/* ---- gateway 1's path to Redis, which can turn operations into errors ----
 * What to spoil lives in memory shared with the proxy (set before the
 * fork, so MAP_SHARED|MAP_ANONYMOUS), as do its counts. */
enum { INJ_ASK, INJ_RESERVE, INJ_BACK, INJ_ALIVE, INJ_N };
#define SPOIL(k) (1 << (k))
struct inject {
    volatile int mask;
    volatile long hits[INJ_N];
};
static struct inject *inj;
static char reserve_sha[41]; /* rl_reserve's SHA1, as SCRIPT LOAD says */
static pid_t proxy_pid;
static int proxy_port;

static int
proxy_unix(void)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", redis.sock);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Each needle in buf[0..n) gets byte `at` (an offset into the needle)
 * set to c. A command split across two reads is missed (rare on
 * loopback: hiredis writes one command in one write). */
static void
spoil(char *buf, size_t n, const char *needle, size_t at, char c, int k)
{
    size_t len = strlen(needle);
    for (char *p = buf; n >= len && (p = memmem(p, n - (size_t)(p - buf),
                                                needle, len)) != NULL;
         p += len) {
        p[at] = c;
        inj->hits[k]++;
        if ((size_t)(p - buf) + len > n)
            break;
    }
}

static void
rewrite(char *buf, size_t n)
{
    int m = inj->mask;
    if (m & SPOIL(INJ_ASK))
        spoil(buf, n, "$3\r\nask\r\n", 6, 'q', INJ_ASK);
    if (m & SPOIL(INJ_BACK))
        spoil(buf, n, "$4\r\nback\r\n", 7, 'q', INJ_BACK);
    if (m & SPOIL(INJ_ALIVE))
        spoil(buf, n, "$5\r\nalive\r\n", 7, 'q', INJ_ALIVE);
    if ((m & SPOIL(INJ_RESERVE)) && reserve_sha[0] != '\0') {
        char needle[80];
        snprintf(needle, sizeof(needle), "$40\r\n%s\r\n$1\r\n2\r\n",
                 reserve_sha);
        spoil(buf, n, needle, strlen(needle) - 3, '9', INJ_RESERVE);
    }
}

#define PROXY_MAX 16
static void
proxy_loop(int lfd)
{
    int fds[PROXY_MAX][2];
    int n = 0;
    alarm(180); /* bounded: never outlives the suite */
    for (;;) {
        struct pollfd p[1 + 2 * PROXY_MAX];
        p[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (int i = 0; i < n; i++) {
            p[1 + 2 * i] = (struct pollfd){.fd = fds[i][0], .events = POLLIN};
            p[2 + 2 * i] = (struct pollfd){.fd = fds[i][1], .events = POLLIN};
        }
        if (poll(p, (nfds_t)(1 + 2 * n), 1000) < 0 && errno != EINTR)
            _exit(1);
        /* p[] holds the pairs polled: one accepted now is read next time
         * (its entries are not set, and a stale POLLIN would block the
         * proxy in read() for good: a proxy that accepts no more) */
        int polled = n;
        if ((p[0].revents & POLLIN) && n < PROXY_MAX) {
            int c = accept(lfd, NULL, NULL), u = c >= 0 ? proxy_unix() : -1;
            if (c >= 0 && u >= 0) {
                fds[n][0] = c;
                fds[n][1] = u;
                n++;
            } else {
                if (c >= 0)
                    close(c);
                if (u >= 0)
                    close(u);
            }
        }
        for (int i = 0; i < polled; i++) {
            for (int k = 0; k < 2; k++) {
                if (!(p[1 + 2 * i + k].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                char buf[16384];
                ssize_t r = read(fds[i][k], buf, sizeof(buf));
                int bad = r <= 0;
                if (!bad && k == 0) /* the gateway's commands */
                    rewrite(buf, (size_t)r);
                for (ssize_t off = 0; !bad && off < r;) {
                    ssize_t w =
                        write(fds[i][1 - k], buf + off, (size_t)(r - off));
                    bad = w <= 0;
                    off += w > 0 ? w : 0;
                }
                if (bad) {
                    close(fds[i][0]);
                    close(fds[i][1]);
                    fds[i][0] = fds[n - 1][0];
                    fds[i][1] = fds[n - 1][1];
                    n--;
                    goto next; /* p[] is stale now: poll again */
                }
            }
        }
    next:;
    }
}

static void
proxy_start(void)
{
    if (inj == NULL) {
        void *m = mmap(NULL, sizeof(*inj), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        ck_assert(m != MAP_FAILED);
        inj = m;
    }
    memset((void *)inj, 0, sizeof(*inj));
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(lfd, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(lfd, 16), 0);
    socklen_t len = sizeof(a);
    getsockname(lfd, (struct sockaddr *)&a, &len);
    proxy_port = ntohs(a.sin_port);
    proxy_pid = fork();
    ck_assert_int_ge(proxy_pid, 0);
    if (proxy_pid == 0) {
        signal(SIGPIPE, SIG_IGN);
        proxy_loop(lfd);
        _exit(0);
    }
    close(lfd);
}

static void
proxy_stop(void)
{
    if (proxy_pid <= 0)
        return;
    kill(proxy_pid, SIGCONT);
    kill(proxy_pid, SIGKILL);
    waitpid(proxy_pid, NULL, 0);
    proxy_pid = 0;
}

/* a Redis busy with a script of the test's own (hx_redis_busy_begin) */
static struct hx_redis_busy busy;

/* ---- the fixture ---- */

/* rl_reserve's SHA1, the one the gateways' EVALSHA carries. */
static void
learn_reserve_sha(void)
{
    char *src = hx_redis_script_source("rl_reserve");
    ck_assert_ptr_nonnull(src);
    redisContext *c = hx_redis_connect(&redis);
    ck_assert_ptr_nonnull(c);
    redisReply *r = redisCommand(c, "SCRIPT LOAD %s", src);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    ck_assert_int_eq((int)r->len, 40);
    memcpy(reserve_sha, r->str, 40);
    reserve_sha[40] = '\0';
    freeReplyObject(r);
    redisFree(c);
    free(src);
}

static void
gw_extra(int i, const char *url)
{
    snprintf(extra_of[i], sizeof(extra_of[i]),
             ", \"upstream\": {\"base_url\": \"http://127.0.0.1:%d\","
             " \"timeout_ms\": 5000, \"rate_limit_rps\": 5,"
             " \"rate_limit_burst\": 1, \"max_queue_ms\": 10000},"
             " \"state\": {\"backend\": \"redis\", \"instances\": 2,"
             " \"account\": \"" ACCOUNT "\","
             " \"redis\": {\"url\": \"%s\", \"timeout_ms\": 250}}",
             sb.port, url);
}

/* The sandbox, Redis, gateway 0 on its unix socket, gateway 1 through
 * the proxy; nsends windows open. */
static void
start_env(int nsends)
{
    ck_assert_int_eq(harness_start_sandbox(&sb, "5", NULL), 0);
    ck_assert_int_eq(hx_redis_start(&redis, 0, NULL), 0);
    learn_reserve_sha();
    proxy_start();
    char purl[64];
    snprintf(purl, sizeof(purl), "redis://127.0.0.1:%d/0", proxy_port);
    gw_extra(0, redis.url);
    gw_extra(1, purl);
    for (int i = 0; i < NGW; i++) {
        ck_assert_int_eq(harness_start_gateway(&gw[i], sb.port, extra_of[i],
                                               conf[i], sizeof(conf[i])),
                         0);
        ck_assert(proc_wait_log(&gw[i], "state: redis up", 10000));
    }
    hx_sandbox_open_windows(sb.port, nsends);
}

static void
stop_all(void)
{
    int bad = 0;
    ck_assert_int_eq(hx_redis_busy_end(&redis, &busy), 0);
    proxy_stop();
    for (int i = 0; i < NGW; i++) {
        if (gw[i].pid > 0)
            bad |= proc_stop(&gw[i], 15000) != 0;
        gw[i].pid = 0;
        if (conf[i][0] != '\0')
            unlink(conf[i]);
        conf[i][0] = '\0';
    }
    bad |= proc_stop(&sb, 5000) != 0;
    sb.pid = 0;
    hx_redis_stop(&redis);
    ck_assert_int_eq(bad, 0);
}

static void
leave_nothing(void)
{
    hx_redis_busy_drop(&busy);
    proxy_stop();
    for (int i = 0; i < NGW; i++)
        if (gw[i].pid > 0) {
            proc_stop(&gw[i], 5000);
            gw[i].pid = 0;
        }
    if (sb.pid > 0) {
        proc_stop(&sb, 5000);
        sb.pid = 0;
    }
    if (redis.pid > 0)
        hx_redis_stop(&redis);
}

/* ---- sends, each to a gateway of its own (gw_of), some added later ---- */

/* ---- what the sandbox saw ---- */

static void
report(const char *what, const struct hx_burst *b, const struct hx_seen *s)
{
    double at = 0;
    int w = hx_worst_window(s, &at);
    fprintf(stderr,
            "%s: %d x 200, %d x 429, %d x 503, %d other; sandbox saw %d (%d "
            "of its own 429), worst window %d (from +%.0f ms)\n",
            what, hx_burst_count(b, 200), hx_burst_count(b, 429),
            hx_burst_count(b, 503),
            b->n - hx_burst_count(b, 200) - hx_burst_count(b, 429) -
                hx_burst_count(b, 503),
            s->n, s->limited, w, at);
    for (int i = 0; i < s->n; i++) {
        int c = 0;
        for (int j = i; j < s->n && s->t[j] - s->t[i] < 1000.0; j++)
            c++;
        if (c > 5)
            fprintf(stderr, "  %d arrivals within %.0f ms from +%.0f ms\n", c,
                    s->t[i + c - 1] - s->t[i], s->t[i] - s->t[0]);
    }
    if (getenv("REVIEW_TRACE")) {
        for (int i = 0; i < b->n; i++)
            fprintf(stderr, "  send %d (gateway %d): %ld after %.0f ms\n", i,
                    b->gw_of[i], b->status[i], b->done_ms[i] - b->fired_ms);
        for (int i = 0; i < s->n; i++)
            fprintf(stderr, "  arrival %d at +%.0f ms\n", i, s->t[i] - s->t[0]);
    }
}

/* Each caller answered once, with a status the contract allows (200, the
 * gateway's own 429, 503); the sandbox never over its limit, no send
 * forwarded twice. */
static void
assert_promise(const struct hx_burst *b, const struct hx_seen *s)
{
    for (int i = 0; i < b->n; i++) {
        ck_assert_msg(b->answers[i] == 1, "send %d answered %d times", i,
                      b->answers[i]);
        ck_assert_msg(b->status[i] == 200 || b->status[i] == 429 ||
                          b->status[i] == 503,
                      "send %d: status %ld", i, b->status[i]);
    }
    ck_assert_int_le(s->n, b->n);
    ck_assert_int_ge(s->n, hx_burst_count(b, 200));
    ck_assert_int_eq(s->limited, 0);
    ck_assert_int_le(hx_worst_window(s, NULL), 5);
}

/* How many of gateway i's log lines hold needle. */
static int
logged(int i, const char *needle)
{
    int c = 0;
    if (gw[i].pid <= 0)
        return 0;
    char *log = proc_log(&gw[i]);
    for (const char *p = log; p != NULL && (p = strstr(p, needle)) != NULL; p++)
        c++;
    free(log);
    return c;
}

/* A counter of gateway i's /metrics, -1 when not there. */
static double
metric(int i, const char *name)
{
    struct http_resp r;
    double v = -1;
    if (harness_get(gw[i].port, "GET", "/metrics", NULL, &r) != 0)
        return -1;
    size_t len = strlen(name);
    for (const char *p = r.body; p != NULL && *p != '\0';) {
        if (strncmp(p, name, len) == 0 && (p[len] == ' ' || p[len] == '{')) {
            const char *sp = strchr(p, ' ');
            if (sp != NULL)
                v = strtod(sp + 1, NULL);
            break;
        }
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    http_free(&r);
    return v;
}

static void
log_summary(void)
{
    for (int i = 0; i < NGW; i++)
        fprintf(stderr,
                "  gateway %d logged: %d redis down, %d local (unreachable), "
                "%d local (errors), %d rejoining, %d shared, %d unexpected "
                "replies; /metrics: %.0f state failures, %.0f local slots\n",
                i, logged(i, "state: redis down"),
                logged(i, "limiter: local (Redis unreachable)"),
                logged(i, "limiter: local (Redis answers errors)"),
                logged(i, "limiter: rejoining"), logged(i, "limiter: shared"),
                logged(i, "unexpected reply"),
                metric(i, "wagate_state_failures_total"),
                metric(i, "wagate_state_local_slots_total"));
    if (inj != NULL)
        fprintf(stderr,
                "  spoiled on gateway 1's path: %ld asks, %ld reservations, "
                "%ld backs, %ld heartbeats\n",
                inj->hits[INJ_ASK], inj->hits[INJ_RESERVE], inj->hits[INJ_BACK],
                inj->hits[INJ_ALIVE]);
}

/* ---- a case: sends at given times, events at given times ---- */

enum ev_kind {
    EV_SPOIL,
    EV_BUSY_BEGIN,
    EV_BUSY_END,
    EV_RO_BEGIN,
    EV_RO_END,
    EV_OOM_BEGIN,
    EV_OOM_END
};
struct ev {
    double at; /* ms after the fire */
    enum ev_kind kind;
    int mask; /* EV_SPOIL: what gateway 1's path spoils from then on */
};

struct plan {
    struct hx_burst *b;
    double send_at[MAXSENDS]; /* ascending */
    const struct ev *ev;
    int nev, next_ev;
};

static void
plan_tick(void *arg, double ms)
{
    struct plan *p = arg;
    int upto = p->b->added;
    while (upto < p->b->n && p->send_at[upto] <= ms)
        upto++;
    if (upto > p->b->added)
        hx_burst_add(p->b, upto);
    while (p->next_ev < p->nev && p->ev[p->next_ev].at <= ms) {
        const struct ev *e = &p->ev[p->next_ev++];
        switch (e->kind) {
        case EV_SPOIL:
            inj->mask = e->mask;
            break;
        case EV_BUSY_BEGIN:
            ck_assert_int_eq(hx_redis_busy_begin(&redis, &busy), 0);
            break;
        case EV_BUSY_END:
            ck_assert_int_eq(hx_redis_busy_end(&redis, &busy), 0);
            break;
        case EV_RO_BEGIN:
            ck_assert_int_eq(
                hx_redis_cmd(&redis, "REPLICAOF 127.0.0.1 %d", free_port()),
                REDIS_REPLY_STATUS);
            break;
        case EV_RO_END:
            ck_assert_int_eq(hx_redis_cmd(&redis, "REPLICAOF NO ONE"),
                             REDIS_REPLY_STATUS);
            break;
        case EV_OOM_BEGIN:
            ck_assert_int_eq(
                hx_redis_cmd(&redis, "CONFIG SET maxmemory-policy noeviction"),
                REDIS_REPLY_STATUS);
            ck_assert_int_eq(hx_redis_cmd(&redis, "CONFIG SET maxmemory 1"),
                             REDIS_REPLY_STATUS);
            break;
        case EV_OOM_END:
            ck_assert_int_eq(hx_redis_cmd(&redis, "CONFIG SET maxmemory 0"),
                             REDIS_REPLY_STATUS);
            break;
        }
    }
}

/* n0 sends to gateway 0 at once (a backlog), then n1 to gateway 1, the
 * first at t1 ms, every dt1 ms. */
static void
plan_sends(struct plan *p, struct hx_burst *b, int n0, int n1, double t1,
           double dt1)
{
    hx_burst_init(b, n0 + n1, 1, gw, "cutoff");
    memset(p, 0, sizeof(*p));
    p->b = b;
    for (int i = 0; i < n0; i++)
        p->send_at[i] = 0;
    for (int i = 0; i < n1; i++) {
        b->gw_of[n0 + i] = 1;
        p->send_at[n0 + i] = t1 + dt1 * i;
    }
}

/* Runs the plan and checks the promise; the sandbox's view in *s. */
static void
run_plan(const char *what, struct plan *p, const struct ev *ev, int nev,
         struct hx_seen *s)
{
    p->ev = ev;
    p->nev = nev;
    int now = 0;
    while (now < p->b->n && p->send_at[now] <= 0)
        now++;
    hx_burst_fire(p->b, now);
    ck_assert(hx_burst_run(p->b, 40000, plan_tick, p));
    ck_assert_int_eq(p->next_ev, nev);
    hx_sandbox_seen(sb.port, s);
    report(what, p->b, s);
    log_summary();
    double slowest = 0;
    for (int i = 0; i < p->b->n; i++) {
        double w = p->b->done_ms[i] - p->b->added_ms[i];
        slowest = w > slowest ? w : slowest;
    }
    fprintf(stderr, "  slowest answer %.0f ms\n", slowest);
    assert_promise(p->b, s);
    for (int i = 0; i < p->b->n; i++)
        ck_assert_msg(p->b->done_ms[i] - p->b->added_ms[i] <= ANSWER_BOUND_MS,
                      "send %d answered after %.0f ms", i,
                      p->b->done_ms[i] - p->b->added_ms[i]);
}

/* ---- 1. one gateway's asks answered with errors, the rest answered ---- */

/* Found by the review (ask_errors_spin), fixed: from 1.0 s to 3.5 s every ask
 * of gateway 1 is answered with an error, its heartbeats, reservations and
 * "back" are not (an ACL denying ZCOUNT, which only "ask" runs, does
 * this to every gateway). Backlogs of 10 on each gateway. The promise
 * holds (nothing alone while it may count alive), but cut_off() ->
 * rejoin -> start_sharing() (ask_at = -INFINITY) -> ask -> error runs
 * with no pause between: gateway 1 logged 4 lines a cycle, thousands of
 * cycles in 2.5 s, and sent nothing while its asks failed. Expected: no
 * more than one cut-off per SHAPER_BEAT_MS (about 25 in 2.5 s; 60
 * allowed here), i.e. a log line per transition that is not a flood. */
START_TEST(asks_failing_on_one_gateway_do_not_flood)
{
    start_env(20);
    struct hx_burst b;
    struct plan p;
    plan_sends(&p, &b, 10, 10, 0, 0);
    static const struct ev ev[] = {{1000, EV_SPOIL, SPOIL(INJ_ASK)},
                                   {3500, EV_SPOIL, 0}};
    struct hx_seen s;
    run_plan("gateway 1's asks answered with errors for 2.5 s", &p, ev, 2, &s);
    ck_assert_int_gt(inj->hits[INJ_ASK], 0);
    int cuts = logged(1, "limiter: local (Redis answers errors)");
    /* every cut-off is counted on /metrics, as many as the log says */
    ck_assert_int_gt(cuts, 0);
    ck_assert_int_eq((int)metric(1, "wagate_state_limiter_cutoffs_total"),
                     cuts);
    ck_assert_int_ge((int)metric(1, "wagate_state_limiter_mode_changes_total"),
                     cuts);
    hx_burst_free(&b);
    stop_all();
    ck_assert_msg(cuts <= 60,
                  "gateway 1 was cut off %d times in 2.5 s (asks spoiled: "
                  "%ld)",
                  cuts, inj->hits[INJ_ASK]);
}
END_TEST

/* ---- 2. one gateway's reservations answered with errors ---- */

/* From 1.0 s to 3.5 s gateway 1's reservations are answered with errors
 * (OOM under noeviction does exactly this: rl_reserve's first write is
 * a SET), while a stream comes to it (a send every 250 ms from 0.3 s)
 * and gateway 0 drains a backlog of 12: each reservation cuts it off,
 * its slot comes from its own limiter, it rejoins at once. */
START_TEST(reservations_failing_on_one_gateway_keep_the_window)
{
    start_env(28);
    struct hx_burst b;
    struct plan p;
    plan_sends(&p, &b, 12, 16, 300, 250);
    static const struct ev ev[] = {{1000, EV_SPOIL, SPOIL(INJ_RESERVE)},
                                   {3500, EV_SPOIL, 0}};
    struct hx_seen s;
    run_plan("gateway 1's reservations answered with errors for 2.5 s", &p, ev,
             2, &s);
    ck_assert_int_gt(inj->hits[INJ_RESERVE], 0);
    hx_burst_free(&b);
    stop_all();
}
END_TEST

/* ---- 3. errors on the rejoin itself ---- */

/* Gateway 1 is cut off at 1.0 s (its reservations fail for 300 ms) and
 * its "back" is answered with an error from then to 3.0 s (the rejoin's
 * heartbeat passes): it may have run, so each failure counts it alive
 * from its new stamp and the quiet moves on; gateway 0 drains 12 and
 * gateway 1 gets a send every 300 ms from 0.5 s. */
START_TEST(back_failing_during_the_rejoin_keeps_the_window)
{
    start_env(22);
    struct hx_burst b;
    struct plan p;
    plan_sends(&p, &b, 12, 10, 500, 300);
    static const struct ev ev[] = {
        {1000, EV_SPOIL, SPOIL(INJ_RESERVE) | SPOIL(INJ_BACK)},
        {1300, EV_SPOIL, SPOIL(INJ_BACK)},
        {3000, EV_SPOIL, 0}};
    struct hx_seen s;
    run_plan("gateway 1's back answered with errors for 2 s", &p, ev, 3, &s);
    ck_assert_int_gt(inj->hits[INJ_BACK], 0);
    hx_burst_free(&b);
    stop_all();
}
END_TEST

/* ---- 4. just before the alive entry runs out ---- */

/* Gateway 1's heartbeats fail from 1.0 s (its entry runs out at about
 * 1.4 s); at 1.35 s its asks and reservations fail too, until 3.0 s;
 * backlogs of 10 on each. The cut-off's quiet counts from the last
 * stamp that came (about 1.0 s), not from 1.35 s: alone from about 2.4 s
 * at its share, while gateway 0 counts it missing from 1.4 s. */
START_TEST(errors_just_before_the_alive_entry_runs_out_keep_the_window)
{
    start_env(20);
    struct hx_burst b;
    struct plan p;
    plan_sends(&p, &b, 10, 10, 0, 0);
    static const struct ev ev[] = {
        {1000, EV_SPOIL, SPOIL(INJ_ALIVE)},
        {1350, EV_SPOIL,
         SPOIL(INJ_ALIVE) | SPOIL(INJ_ASK) | SPOIL(INJ_RESERVE)},
        {3000, EV_SPOIL, 0}};
    struct hx_seen s;
    run_plan("gateway 1's heartbeats fail, then its asks too", &p, ev, 3, &s);
    ck_assert_int_gt(inj->hits[INJ_ALIVE], 0);
    hx_burst_free(&b);
    stop_all();
}
END_TEST

/* ---- 5. Redis BUSY or READONLY for both ---- */

/* BUSY for 50 ms at 1.5 s: gateway 0 drains 15, gateway 1 gets 3 sends
 * 20 ms before (their reservations and asks on their way at the start,
 * mid-ask) and 3 at the end. */
START_TEST(redis_busy_50_ms_mid_ask_keeps_the_window)
{
    start_env(21);
    struct hx_burst b;
    struct plan p;
    plan_sends(&p, &b, 15, 6, 1480, 0);
    for (int i = 18; i < 21; i++)
        p.send_at[i] = 1550;
    static const struct ev ev[] = {{1500, EV_BUSY_BEGIN, 0},
                                   {1550, EV_BUSY_END, 0}};
    struct hx_seen s;
    run_plan("Redis BUSY for 50 ms", &p, ev, 2, &s);
    hx_burst_free(&b);
    stop_all();
}
END_TEST

/* BUSY for 3 s at 1.5 s (the health check's PING fails too: the links
 * may go down, then up): backlogs of 10 on each gateway, 3 more sends to
 * gateway 1 at 3.0 s. */
START_TEST(redis_busy_3_s_keeps_the_window)
{
    start_env(23);
    struct hx_burst b;
    struct plan p;
    plan_sends(&p, &b, 10, 13, 0, 0);
    for (int i = 20; i < 23; i++)
        p.send_at[i] = 3000;
    static const struct ev ev[] = {{1500, EV_BUSY_BEGIN, 0},
                                   {4500, EV_BUSY_END, 0}};
    struct hx_seen s;
    run_plan("Redis BUSY for 3 s", &p, ev, 2, &s);
    hx_burst_free(&b);
    stop_all();
}
END_TEST

/* READONLY for 2 s from 1.0 s (a replica of a primary that is not there;
 * PING still answers): gateway 0 drains 12, gateway 1 gets 3 sends 20 ms
 * before it and 3 just as it ends. */
START_TEST(redis_readonly_2_s_keeps_the_window)
{
    start_env(18);
    struct hx_burst b;
    struct plan p;
    plan_sends(&p, &b, 12, 6, 980, 0);
    for (int i = 15; i < 18; i++)
        p.send_at[i] = 3000;
    static const struct ev ev[] = {{1000, EV_RO_BEGIN, 0},
                                   {3000, EV_RO_END, 0}};
    struct hx_seen s;
    run_plan("Redis READONLY for 2 s", &p, ev, 2, &s);
    hx_burst_free(&b);
    stop_all();
}
END_TEST

/* OOM (maxmemory 1, noeviction) from 1.0 s to 3.5 s while both gateways
 * get a stream (a send every 300 ms each from 0.3 s): rl_reserve's first
 * write (SET) is refused, rl_depart's operations pass (their first
 * writes, PEXPIRE and ZREMRANGEBYSCORE, are not deny-oom): every
 * reservation of either gateway cuts it off, it rejoins at once. */
START_TEST(redis_oom_with_streams_on_both_keeps_the_window)
{
    start_env(30);
    struct hx_burst b;
    struct plan p;
    plan_sends(&p, &b, 0, 30, 300, 150);
    for (int i = 0; i < 30; i++)
        b.gw_of[i] = i % 2;
    static const struct ev ev[] = {{1000, EV_OOM_BEGIN, 0},
                                   {3500, EV_OOM_END, 0}};
    struct hx_seen s;
    run_plan("Redis OOM for 2.5 s, streams on both", &p, ev, 2, &s);
    int cuts = logged(0, "limiter: local (Redis answers errors)") +
               logged(1, "limiter: local (Redis answers errors)");
    hx_burst_free(&b);
    stop_all();
    ck_assert_int_gt(cuts, 0); /* the reservations did fail */
}
END_TEST

static Suite *
limiter_cutoff_review_suite(void)
{
    Suite *s = suite_create("limiter_cutoff_review");
    /* known: the cases that show defects not fixed yet (REVIEW-DEFECT
     * above them), run with WAGATE_KNOWN_DEFECTS=1 */
    const struct {
        const char *name;
        const TTest *test;
        int known;
    } cases[] = {
        {"ask_errors_spin", asks_failing_on_one_gateway_do_not_flood, 0},
        {"reserve_errors", reservations_failing_on_one_gateway_keep_the_window,
         0},
        {"back_errors", back_failing_during_the_rejoin_keeps_the_window, 0},
        {"alive_boundary",
         errors_just_before_the_alive_entry_runs_out_keep_the_window, 0},
        {"busy_50ms", redis_busy_50_ms_mid_ask_keeps_the_window, 0},
        {"busy_3s", redis_busy_3_s_keeps_the_window, 0},
        {"readonly_2s", redis_readonly_2_s_keeps_the_window, 0},
        {"oom_streams", redis_oom_with_streams_on_both_keeps_the_window, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].known && getenv("WAGATE_KNOWN_DEFECTS") == NULL) {
            fprintf(stderr, "SKIP %s (known defect; WAGATE_KNOWN_DEFECTS=1)\n",
                    cases[i].name);
            continue;
        }
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, 120);
        tcase_add_checked_fixture(tc, NULL, leave_nothing);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    return s;
}

int
main(void)
{
    return harness_run_suite(limiter_cutoff_review_suite());
}
