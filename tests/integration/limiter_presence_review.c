/* limiter_presence_review.c - a hostile review of the shared limiter's
 * presence (SPEC section 11; README "Running several gateways": stamped
 * heartbeats every 100 ms, a missing instance's share kept free, going
 * local when Redis cannot be reached, the rejoin, a lost departure log).
 * Two (or three) real gateways at 5/s, burst 1, max_queue_ms 10000, on
 * one real Redis, in front of the sandbox with its strict 5/s limit (a
 * sliding 1000 ms window stamped at arrival). The environment misbehaves
 * mid-backlog:
 *   - Redis answers errors: OOM (maxmemory 1, noeviction), or BUSY (a
 *     script of the test's own runs past busy-reply-threshold: every
 *     command, the health check's PING included, gets an error at once);
 *   - a new gateway joins while another sends a backlog (plainly, and cut
 *     off from Redis at its start, rejoining later);
 *   - Redis frozen (SIGSTOP) for about the alive boundary (350-450 ms),
 *     then SIGCONT, several times;
 *   - one gateway's clock 30 s ahead, then stepped back (a wall clock
 *     step: NTP, a VM resumed), with a short freeze of Redis meanwhile;
 *   - the departure log's keys deleted (DEL) mid-backlog: the guard's
 *     sorted set and the schedule only (what an eviction of the keys with
 *     the shortest TTL does), and every key of the limiter.
 * Each case asserts from the sandbox's own request log that no 1-second
 * window held more than 5 and that the sandbox answered none with its own
 * 429, and that every caller was answered exactly once, with a status the
 * contract allows (200, the gateway's own 429, 503).
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
#define NGW 3
#define ACCOUNT "presence"
#define KEYBASE "wagate:{" ACCOUNT "}:"
/* Debian's faketime (scripts/deps.sh) */
#define LIBFAKETIME "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

static struct proc sb, gw[NGW];
static char conf[NGW][64];
static char extra_of[NGW][1024];
static char ftfile[64]; /* the skewed gateway's faketime offset */
static struct hx_redis redis;
static int ngw; /* gateways of the case (started or to start) */

/* gateway 0's own path to Redis, to freeze alone */
static struct hx_redis_path path;

/* a Redis busy with a script of the test's own (hx_redis_busy_begin) */
static struct hx_redis_busy busy;

/* ---- the fixture ---- */

static void
gw_extra(int i, const char *url, int instances)
{
    snprintf(extra_of[i], sizeof(extra_of[i]),
             ", \"upstream\": {\"base_url\": \"http://127.0.0.1:%d\","
             " \"timeout_ms\": 5000, \"rate_limit_rps\": 5,"
             " \"rate_limit_burst\": 1, \"max_queue_ms\": 10000},"
             " \"state\": {\"backend\": \"redis\", \"instances\": %d,"
             " \"account\": \"" ACCOUNT "\","
             " \"redis\": {\"url\": \"%s\", \"timeout_ms\": 250}}",
             sb.port, instances, url);
}

/* Gateway i; skewed: libfaketime preloaded into the gateway itself, its
 * wall clock offset read from ftfile at every call (FAKETIME_NO_CACHE),
 * the monotonic clock left alone (it never steps). */
static void
gw_start(int i, int skewed)
{
    if (!skewed) {
        ck_assert_int_eq(harness_start_gateway(&gw[i], sb.port, extra_of[i],
                                               conf[i], sizeof(conf[i])),
                         0);
        return;
    }
    char text[4096];
    snprintf(text, sizeof(text),
             "{\"listen\": [\"127.0.0.1:0\"],\n"
             " \"limits\": {\"client_timeout_ms\": 1000,"
             " \"max_body_bytes\": 4096}%s}\n",
             extra_of[i]);
    write_temp(text, conf[i], sizeof(conf[i]));
    static char keyenv[] = "AUTOCALLS_API_KEY=" HARNESS_UPSTREAM_KEY;
    static char preload[] = "LD_PRELOAD=" LIBFAKETIME;
    static char nocache[] = "FAKETIME_NO_CACHE=1";
    static char mono[] = "FAKETIME_DONT_FAKE_MONOTONIC=1";
    static char file[128], asan[512];
    snprintf(file, sizeof(file), "FAKETIME_TIMESTAMP_FILE=%s", ftfile);
    const char *was = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof(asan), "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
             was ? was : "", was && *was ? ":" : "");
    char *env[] = {keyenv, preload, nocache, mono, file, asan, NULL};
    const char *bin = getenv("WAGATE_BIN");
    char *argv[] = {(char *)(bin ? bin : "./wagate"), "-c", conf[i], NULL};
    ck_assert_int_eq(proc_start(&gw[i], argv, env), 0);
}

/* The offset the skewed gateway's wall clock has from now on. */
static void
set_skew(const char *offset)
{
    char tmp[80];
    snprintf(tmp, sizeof(tmp), "%s.new", ftfile);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s\n", offset);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(rename(tmp, ftfile), 0);
}

/* How far ahead of ours gateway i's wall clock is, from the time of its
 * newest log line (s). */
static double
gw_ahead(int i)
{
    char *log = proc_log(&gw[i]);
    ck_assert_ptr_nonnull(log);
    const char *t = NULL;
    for (const char *p = log; (p = strstr(p, "\"time\":\"")) != NULL; p++)
        t = p;
    ck_assert_ptr_nonnull(t);
    struct tm tm = {0};
    ck_assert_ptr_nonnull(strptime(t + 8, "%Y-%m-%dT%H:%M:%S", &tm));
    double ahead = difftime(timegm(&tm), time(NULL));
    free(log);
    return ahead;
}

/* Starts the sandbox, Redis and `running` of n gateways (instances of
 * state.instances), gateway `proxied` (-1: none) through the proxy,
 * gateway `skewed` (-1: none) under faketime. */
static void
start_env(int n, int running, int instances, int proxied, int skewed,
          int nsends)
{
    ngw = n;
    ck_assert_int_eq(harness_start_sandbox(&sb, "5", NULL), 0);
    ck_assert_int_eq(hx_redis_start(&redis, 0, NULL), 0);
    char purl[64];
    if (proxied >= 0) {
        ck_assert_int_eq(hx_redis_path_start(&path, &redis), 0);
        snprintf(purl, sizeof(purl), "%s", path.url);
    }
    if (skewed >= 0) {
        if (access(LIBFAKETIME, R_OK) != 0) {
            fprintf(stderr, "SKIP: faketime is not installed\n");
            return;
        }
        write_temp("+30s\n", ftfile, sizeof(ftfile));
    }
    for (int i = 0; i < n; i++)
        gw_extra(i, i == proxied ? purl : redis.url, instances);
    for (int i = 0; i < running; i++) {
        gw_start(i, i == skewed);
        ck_assert(proc_wait_log(&gw[i], "state: redis up", 10000));
    }
    hx_sandbox_open_windows(sb.port, nsends);
}

static void
stop_all(void)
{
    int bad = 0;
    ck_assert_int_eq(hx_redis_busy_end(&redis, &busy), 0);
    hx_redis_path_stop(&path);
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
    if (ftfile[0] != '\0')
        unlink(ftfile);
    ftfile[0] = '\0';
    ck_assert_int_eq(bad, 0);
}

static void
leave_nothing(void)
{
    hx_redis_busy_drop(&busy);
    hx_redis_path_stop(&path);
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
    if (ftfile[0] != '\0')
        unlink(ftfile);
    ftfile[0] = '\0';
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

/* How many of the gateways' log lines hold needle (all of them). */
static int
logged(const char *needle)
{
    int c = 0;
    for (int i = 0; i < ngw; i++) {
        if (gw[i].pid <= 0)
            continue;
        char *log = proc_log(&gw[i]);
        for (const char *p = log; p != NULL && (p = strstr(p, needle)) != NULL;
             p++)
            c++;
        free(log);
    }
    return c;
}

static void
log_summary(void)
{
    fprintf(stderr,
            "  logged: %d redis down, %d local, %d rejoining, %d shared, %d "
            "lost log, %d unexpected replies\n",
            logged("state: redis down"), logged("limiter: local"),
            logged("limiter: rejoining"), logged("limiter: shared"),
            logged("lost its departure log"), logged("unexpected reply"));
}

/* The case's run: fire, tick, look. */
static void
run_case(const char *what, struct hx_burst *b, int now, double deadline_ms,
         void (*tick)(void *, double), void *arg)
{
    hx_burst_fire(b, now);
    ck_assert(hx_burst_run(b, deadline_ms, tick, arg));
    struct hx_seen s;
    hx_sandbox_seen(sb.port, &s);
    report(what, b, &s);
    log_summary();
    assert_promise(b, &s);
}

/* ---- 1. Redis answering errors mid-backlog ---- */

/* From 1.5 s to 3.5 s into a 6 s backlog of 30 sends over two gateways
 * (state.instances 2), Redis is out of memory (maxmemory 1, noeviction):
 * every script's first write that may grow memory is refused with OOM. */
struct oom {
    int step;
};

static void
oom_tick(void *arg, double ms)
{
    struct oom *o = arg;
    if (o->step == 0 && ms >= 1500) {
        o->step = 1;
        ck_assert_int_eq(
            hx_redis_cmd(&redis, "CONFIG SET maxmemory-policy noeviction"),
            REDIS_REPLY_STATUS);
        ck_assert_int_eq(hx_redis_cmd(&redis, "CONFIG SET maxmemory 1"),
                         REDIS_REPLY_STATUS);
        /* the next write is refused */
        ck_assert_int_eq(hx_redis_cmd(&redis, "SET " KEYBASE "probe x"),
                         REDIS_REPLY_ERROR);
    } else if (o->step == 1 && ms >= 3500) {
        o->step = 2;
        ck_assert_int_eq(hx_redis_cmd(&redis, "CONFIG SET maxmemory 0"),
                         REDIS_REPLY_STATUS);
    }
}

START_TEST(redis_out_of_memory_mid_backlog_keeps_the_window)
{
    const int n = 30;
    start_env(2, 2, 2, -1, -1, n);
    struct hx_burst b;
    struct oom o = {0};
    hx_burst_init(&b, n, 2, gw, "presence");
    run_case("Redis out of memory mid-backlog", &b, n, 40000, oom_tick, &o);
    ck_assert_int_eq(o.step, 2);
    hx_burst_free(&b);
    stop_all();
}
END_TEST

/* BUSY: a script of the test's runs for 500 ms, twice, 1.5 s and 3 s into
 * a backlog of 30 over two gateways: meanwhile Redis answers every other
 * command at once with an error (BUSY), the gateways' scripts and their
 * health check's PING alike. */
struct busy {
    int step;
};

static void
busy_tick(void *arg, double ms)
{
    struct busy *x = arg;
    static const double at[] = {1500, 2000, 3000, 3500};
    if (x->step < 4 && ms >= at[x->step]) {
        if (x->step % 2 == 0)
            ck_assert_int_eq(hx_redis_busy_begin(&redis, &busy), 0);
        else
            ck_assert_int_eq(hx_redis_busy_end(&redis, &busy), 0);
        x->step++;
    }
}

START_TEST(redis_answering_busy_mid_backlog_keeps_the_window)
{
    const int n = 30;
    start_env(2, 2, 2, -1, -1, n);
    struct hx_burst b;
    struct busy x = {0};
    hx_burst_init(&b, n, 2, gw, "presence");
    run_case("Redis answering BUSY mid-backlog", &b, n, 40000, busy_tick, &x);
    ck_assert_int_eq(x.step, 4);
    hx_burst_free(&b);
    stop_all();
}
END_TEST

/* Found by this review (busy_idle, readonly_idle): 2 runs of 2 each, 6
 * arrivals within a second at the sandbox and one 429 of its own (worst
 * window 6 from about +1204 ms: gateway 0's last five departures of the
 * shared guard, then gateway 1's first send the moment its reservation
 * was answered with an error). An error reply (BUSY, READONLY) left the
 * link up, so gateway 1 stayed "sharing" with its own share of the
 * guard and no quiet, and sent alone at once although the others
 * counted it alive. Now an error reply to a reservation or an ask cuts
 * the instance off as a drop does (src/shaper.c cut_off()): nothing
 * alone before its entry is gone + a window + cap, and the rejoin once
 * Redis answers again. Worst window 5, no 429 of the sandbox's: BUSY,
 * gateway 1's first send at +2603 ms (rejoined after the 500 ms);
 * READONLY, at +3345 ms (alone after the quiet, 2 of 5 per window each).
 *
 * Errors that find one gateway idle: gateway 0 alone has a backlog of
 * 25 (the other gateway idle, both sharing, state.instances 2), its
 * last second full (5); 2 s in, Redis starts answering errors, and at
 * once 3 sends come to gateway 1. kind 0: BUSY for 500 ms (the health
 * check's PING fails too, but only at its next run, up to 1 s later);
 * kind 1: READONLY for 2 s (Redis turned into a replica of a primary
 * that is not there, as after a failover the gateways did not follow:
 * every script's first write is refused, PING still answers). */
struct idle_err {
    struct hx_burst *b;
    int kind;
    int step;
    double end_at;
};

static void
idle_err_tick(void *arg, double ms)
{
    struct idle_err *x = arg;
    if (x->step == 0 && ms >= 2000) {
        x->step = 1;
        if (x->kind == 0) {
            ck_assert_int_eq(hx_redis_busy_begin(&redis, &busy), 0);
            x->end_at = ms + 500;
        } else {
            ck_assert_int_eq(
                hx_redis_cmd(&redis, "REPLICAOF 127.0.0.1 %d", free_port()),
                REDIS_REPLY_STATUS);
            ck_assert_int_eq(hx_redis_cmd(&redis, "SET " KEYBASE "probe x"),
                             REDIS_REPLY_ERROR);
            x->end_at = ms + 2000;
        }
        hx_burst_add(x->b, x->b->n);
    } else if (x->step == 1 && ms >= x->end_at) {
        x->step = 2;
        if (x->kind == 0)
            ck_assert_int_eq(hx_redis_busy_end(&redis, &busy), 0);
        else
            ck_assert_int_eq(hx_redis_cmd(&redis, "REPLICAOF NO ONE"),
                             REDIS_REPLY_STATUS);
    }
}

static void
idle_err_case(int kind)
{
    const int first = 25, n = 28;
    start_env(2, 2, 2, -1, -1, n);
    struct hx_burst b;
    struct idle_err x = {.b = &b, .kind = kind};
    hx_burst_init(&b, n, 1, gw, "presence");
    for (int i = first; i < n; i++)
        b.gw_of[i] = 1;
    run_case(kind == 0 ? "Redis BUSY, sends to the idle gateway"
                       : "Redis READONLY, sends to the idle gateway",
             &b, first, 40000, idle_err_tick, &x);
    ck_assert_int_eq(x.step, 2);
    hx_burst_free(&b);
    stop_all();
}

START_TEST(redis_busy_with_an_idle_gateway_keeps_the_window)
{
    idle_err_case(0);
}
END_TEST

START_TEST(redis_readonly_with_an_idle_gateway_keeps_the_window)
{
    idle_err_case(1);
}
END_TEST

/* ---- 2. a gateway joining mid-backlog ---- */

/* Gateway 0 alone (of state.instances 2) has 20 sends queued; 1.5 s in,
 * gateway 1 starts (cut off from Redis at its start when cut_off, its
 * path thawed 1.5 s later: it sends alone at its share, then rejoins),
 * and 12 more sends go to it. */
struct join {
    struct hx_burst *b;
    int cut_off;
    int step;
    double thaw_at;
};

static void
join_tick(void *arg, double ms)
{
    struct join *j = arg;
    if (j->step == 0 && ms >= 1500) {
        j->step = 1;
        if (j->cut_off) {
            hx_redis_path_freeze(&path);
            gw_start(1, 0);
            ck_assert(proc_wait_log(&gw[1], "state: redis down", 5000));
            j->thaw_at = ms + 1500;
        } else {
            gw_start(1, 0);
            ck_assert(proc_wait_log(&gw[1], "state: redis up", 10000));
        }
        hx_burst_add(j->b, j->b->n);
    } else if (j->step == 1 && j->cut_off && ms >= j->thaw_at) {
        j->step = 2;
        hx_redis_path_thaw(&path);
    }
}

static void
join_case(int cut_off)
{
    const int first = 20, n = 32;
    start_env(2, 1, 2, cut_off ? 1 : -1, -1, n);
    struct hx_burst b;
    struct join j = {.b = &b, .cut_off = cut_off};
    hx_burst_init(&b, n, 1, gw, "presence");
    for (int i = first; i < n; i++)
        b.gw_of[i] = 1;
    run_case(cut_off ? "a gateway joining cut off, rejoining"
                     : "a gateway joining mid-backlog",
             &b, first, 40000, join_tick, &j);
    ck_assert_int_eq(j.step, cut_off ? 2 : 1);
    if (cut_off)
        ck_assert(proc_wait_log(&gw[1], "limiter: shared", 5000));
    hx_burst_free(&b);
    stop_all();
}

START_TEST(a_gateway_joining_mid_backlog_keeps_the_window)
{
    join_case(0);
}
END_TEST

START_TEST(a_gateway_joining_cut_off_then_rejoining_keeps_the_window)
{
    join_case(1);
}
END_TEST

/* ---- 3. Redis frozen about the alive boundary, repeatedly ---- */

/* Four freezes of 350, 400, 450 and 400 ms, 700 ms apart, from 1.5 s into
 * a backlog of 36 over three gateways (state.instances 3): each freeze
 * outlasts state.redis.timeout_ms (250: the links drop) and comes about
 * to the alive entry's 400 ms, and a heartbeat held in it runs at the
 * thaw. */
struct freezes {
    int step; /* even: thawed, odd: frozen */
    double next_ms;
};

static void
freeze_tick(void *arg, double ms)
{
    static const double len[] = {350, 400, 450, 400};
    struct freezes *f = arg;
    if (f->step >= 8 || ms < f->next_ms)
        return;
    if (f->step % 2 == 0) {
        hx_redis_freeze(&redis);
        f->next_ms = ms + len[f->step / 2];
    } else {
        hx_redis_thaw(&redis);
        f->next_ms = ms + 700;
    }
    f->step++;
}

START_TEST(redis_frozen_about_the_alive_boundary_repeatedly_keeps_the_window)
{
    const int n = 36;
    start_env(3, 3, 3, -1, -1, n);
    struct hx_burst b;
    struct freezes f = {.next_ms = 1500};
    hx_burst_init(&b, n, 3, gw, "presence");
    run_case("Redis frozen 350-450 ms, four times", &b, n, 40000, freeze_tick,
             &f);
    ck_assert_int_eq(f.step, 8);
    hx_burst_free(&b);
    stop_all();
}
END_TEST

/* ---- 4. one gateway's clock 30 s off ---- */

/* Gateway 1's wall clock 30 s ahead from its start; 1.5 s into a backlog
 * of 30 over two gateways it steps to 30 s behind, then (3.5 s) ahead
 * again; Redis frozen for 400 ms at 2.5 s, so that the skewed one goes
 * local and rejoins meanwhile. */
struct skew {
    int step;
};

static void
skew_tick(void *arg, double ms)
{
    struct skew *k = arg;
    if (k->step == 0 && ms >= 1500) {
        set_skew("-30s");
        k->step = 1;
    } else if (k->step == 1 && ms >= 2500) {
        hx_redis_freeze(&redis);
        k->step = 2;
    } else if (k->step == 2 && ms >= 2900) {
        hx_redis_thaw(&redis);
        k->step = 3;
    } else if (k->step == 3 && ms >= 3500) {
        set_skew("+30s");
        k->step = 4;
    }
}

START_TEST(a_gateway_30_s_off_stepping_mid_backlog_keeps_the_window)
{
    if (access(LIBFAKETIME, R_OK) != 0) {
        fprintf(stderr, "SKIP clock: faketime is not installed\n");
        return;
    }
    const int n = 30;
    start_env(2, 2, 2, -1, 1, n);
    double ahead = gw_ahead(1);
    ck_assert_msg(ahead > 25 && ahead < 35, "the skewed gateway is %.0f s off",
                  ahead);
    struct hx_burst b;
    struct skew k = {0};
    hx_burst_init(&b, n, 2, gw, "presence");
    run_case("a gateway 30 s off, its clock stepping", &b, n, 40000, skew_tick,
             &k);
    ck_assert_int_eq(k.step, 4);
    hx_burst_free(&b);
    stop_all();
}
END_TEST

/* ---- 5. the departure log deleted mid-backlog ---- */

/* 2 s into a backlog of 30 over two gateways: DEL of the guard's sorted
 * set alone (dep:send: after alive:, the key with the shortest TTL, what
 * a volatile-ttl eviction under memory pressure takes first, and the
 * README names volatile-ttl a safe policy; the log's start, kept an
 * hour, stays), or of every key of the limiter (rl:, dep:, log:, alive:,
 * hold:; the gateways then find the log gone and hold a window).
 *
 * Found by this review (del_guard): with dep:send gone and log:send still
 * there nothing told the gateways that the guard forgot the departures of
 * the last second: "ask" took the missing key as an empty guard and
 * granted at once, and the timers' jitter put 6 arrivals within 993-998
 * ms at the sandbox, which answered the 6th with its own 429 (5 runs of
 * 5). rl_depart.lua now keeps in the log when the guard's entries stop
 * mattering; a guard gone before then holds every ask until then. The
 * whole key set deleted (del_all): "alive" finds the log fresh and sets
 * the hold. */
struct del {
    int all;
    int done;
};

static void
del_tick(void *arg, double ms)
{
    struct del *d = arg;
    if (d->done || ms < 2000)
        return;
    d->done = 1;
    if (d->all)
        ck_assert_int_ge(hx_redis_int(&redis, "DEL %s %s %s %s %s",
                                      KEYBASE "dep:send", KEYBASE "rl:send",
                                      KEYBASE "log:send", KEYBASE "alive:send",
                                      KEYBASE "hold:send"),
                         3);
    else
        ck_assert_int_eq(hx_redis_int(&redis, "DEL %s", KEYBASE "dep:send"), 1);
}

static void
del_case(int all)
{
    const int n = 30;
    start_env(2, 2, 2, -1, -1, n);
    struct hx_burst b;
    struct del d = {.all = all};
    hx_burst_init(&b, n, 2, gw, "presence");
    /* the log is there, under the name deleted */
    ck_assert_int_eq(hx_redis_int(&redis, "EXISTS %s", KEYBASE "log:send"), 1);
    run_case(all ? "every key of the limiter deleted mid-backlog"
                 : "the guard's departures (dep:send) deleted mid-backlog",
             &b, n, 40000, del_tick, &d);
    ck_assert(d.done);
    hx_burst_free(&b);
    stop_all();
}

START_TEST(the_guard_departures_deleted_mid_backlog_keep_the_window)
{
    del_case(0);
}
END_TEST

START_TEST(every_limiter_key_deleted_mid_backlog_keeps_the_window)
{
    del_case(1);
}
END_TEST

static Suite *
limiter_presence_review_suite(void)
{
    Suite *s = suite_create("limiter_presence_review");
    /* known: the cases that show defects not fixed yet (REVIEW-DEFECT
     * above them), run with WAGATE_KNOWN_DEFECTS=1 */
    const struct hx_case cases[] = {
        {"oom", redis_out_of_memory_mid_backlog_keeps_the_window, 0},
        {"busy", redis_answering_busy_mid_backlog_keeps_the_window, 0},
        {"busy_idle", redis_busy_with_an_idle_gateway_keeps_the_window, 0},
        {"readonly_idle", redis_readonly_with_an_idle_gateway_keeps_the_window,
         0},
        {"join", a_gateway_joining_mid_backlog_keeps_the_window, 0},
        {"join_cut_off",
         a_gateway_joining_cut_off_then_rejoining_keeps_the_window, 0},
        {"freezes",
         redis_frozen_about_the_alive_boundary_repeatedly_keeps_the_window, 0},
        {"clock", a_gateway_30_s_off_stepping_mid_backlog_keeps_the_window, 0},
        {"del_guard", the_guard_departures_deleted_mid_backlog_keep_the_window,
         0},
        {"del_all", every_limiter_key_deleted_mid_backlog_keeps_the_window, 0},
    };
    hx_add_cases(s, cases, sizeof(cases) / sizeof(cases[0]), 120,
                 leave_nothing);
    return s;
}

int
main(void)
{
    return harness_run_suite(limiter_presence_review_suite());
}
