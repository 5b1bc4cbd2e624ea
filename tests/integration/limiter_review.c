/* limiter_review.c - an adversarial review of the shared limiter's mode
 * switches (SPEC sections 6 and 11): three gateways at 5/s, burst 1,
 * max_queue_ms 10000 on one Redis in front of the sandbox with its strict
 * 5/s limit (a sliding 1000 ms window stamped at arrival). Each case
 * asserts from the sandbox's own request log that no 1-second window
 * held more than 5 and that the sandbox answered none with its own 429,
 * and that every caller got exactly one sane answer.
 *
 * The cases: one instance alone cut off from Redis (its own path to Redis
 * frozen, the others still sharing), the links flapping several times
 * within a second mid-backlog, one gateway restarted (SIGTERM, start
 * again) mid-backlog, a reload changing rate_limit_rps while a backlog is
 * queued and shared. */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <json-c/json.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"
#include "hx_burst.h"
#include "hx_redis.h"

#define FREEFORM "/api/user/whatsapp/send-freeform"
#define NGW 3
#define ACCOUNT "review"

static struct proc sb, gw[NGW];
static char conf[NGW][64];
static char extra_of[NGW][1024];
static struct hx_redis redis;

/* gateway 0's own path to Redis, to freeze alone */
static struct hx_redis_path path;

/* ---- the fixture ---- */

static void
gw_extra(int i, const char *url, int rps)
{
    snprintf(extra_of[i], sizeof(extra_of[i]),
             ", \"upstream\": {\"base_url\": \"http://127.0.0.1:%d\","
             " \"timeout_ms\": 5000, \"rate_limit_rps\": %d,"
             " \"rate_limit_burst\": 1, \"max_queue_ms\": 10000},"
             " \"state\": {\"backend\": \"redis\", \"instances\": 3,"
             " \"account\": \"" ACCOUNT "\","
             " \"redis\": {\"url\": \"%s\", \"timeout_ms\": 250}}",
             sb.port, rps, url);
}

static void
gw_start(int i)
{
    ck_assert_int_eq(harness_start_gateway(&gw[i], sb.port, extra_of[i],
                                           conf[i], sizeof(conf[i])),
                     0);
}

/* gateway 0 through the proxy when via_proxy, the others direct */
static void
start_all(int nsends, int via_proxy, int rps)
{
    ck_assert_int_eq(harness_start_sandbox(&sb, "5", NULL), 0);
    ck_assert_int_eq(hx_redis_start(&redis, 0, NULL), 0);
    char purl[64];
    if (via_proxy) {
        ck_assert_int_eq(hx_redis_path_start(&path, &redis), 0);
        snprintf(purl, sizeof(purl), "%s", path.url);
    }
    for (int i = 0; i < NGW; i++) {
        gw_extra(i, via_proxy && i == 0 ? purl : redis.url, rps);
        gw_start(i);
    }
    /* every link up and sharing before the first send */
    for (int i = 0; i < NGW; i++)
        ck_assert(proc_wait_log(&gw[i], "state: redis up", 10000));
    hx_sandbox_open_windows(sb.port, nsends);
}

static void
stop_all(void)
{
    int bad = 0;
    hx_redis_path_stop(&path);
    for (int i = 0; i < NGW; i++) {
        bad |= proc_stop(&gw[i], 15000) != 0;
        gw[i].pid = 0;
        unlink(conf[i]);
    }
    bad |= proc_stop(&sb, 5000) != 0;
    sb.pid = 0;
    hx_redis_stop(&redis);
    ck_assert_int_eq(bad, 0);
}

static void
leave_nothing(void)
{
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
}

/* ---- sends, round-robin over the gateways, some added later ---- */

/* Each caller answered once, with a status the contract allows here: 200,
 * 429 (the gateway's own refusal), 503 (draining / state unavailable). */
static void
assert_sane(const struct hx_burst *b)
{
    for (int i = 0; i < b->n; i++) {
        ck_assert_msg(b->answers[i] == 1, "send %d answered %d times", i,
                      b->answers[i]);
        ck_assert_msg(b->status[i] == 200 || b->status[i] == 429 ||
                          b->status[i] == 503,
                      "send %d: status %ld", i, b->status[i]);
    }
}

/* ---- what the sandbox saw ---- */

static void
report(const char *what, const struct hx_burst *b, const struct hx_seen *s)
{
    fprintf(stderr,
            "%s: %d x 200, %d x 429, %d x 503, %d other; sandbox saw %d (%d "
            "of its own 429, %d faults), worst window %d\n",
            what, hx_burst_count(b, 200), hx_burst_count(b, 429),
            hx_burst_count(b, 503),
            b->n - hx_burst_count(b, 200) - hx_burst_count(b, 429) -
                hx_burst_count(b, 503),
            s->n, s->limited, s->faults, hx_worst_window(s, NULL));
    if (getenv("REVIEW_TRACE"))
        for (int i = 0; i < b->n; i++)
            fprintf(stderr, "  send %d (gateway %d): %ld after %.0f ms\n", i,
                    b->gw_of[i], b->status[i], b->done_ms[i] - b->fired_ms);
}

static void
assert_promise(const struct hx_burst *b, const struct hx_seen *s)
{
    assert_sane(b);
    ck_assert_int_eq(s->limited, 0);
    ck_assert_int_le(hx_worst_window(s, NULL), 5);
}

/* ---- the tests ---- */

/* One instance alone loses Redis (its own path frozen: a network fault on
 * its host, or its link slower than state.redis.timeout_ms), the two
 * others still reach it. The one cut off runs on its own limiter at
 * rate / 3 and its share of the window, as SPEC section 11 says; the two
 * others keep Redis's schedule, and the shared guard, which does not know
 * of the first one's departures, leaves its share free once its alive
 * entry is gone (shaper.h). 30 sends fired once the instance is cut off:
 * the provider must still see at most 5 in any second. */
START_TEST(one_instance_cut_off_alone_keeps_the_account_under_its_limit)
{
    const int n = 30;
    start_all(n, 1, 5);
    hx_redis_path_freeze(&path);
    /* the instance notices by itself (its link's health check times
     * out): no send of the test's, which would count in the sandbox's
     * window */
    ck_assert(
        proc_wait_log(&gw[0], "limiter: local (Redis unreachable)", 10000));
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "DELETE", "/_sandbox/requests", NULL), 204);
    struct hx_burst b;
    hx_burst_init(&b, n, NGW, gw, "review");
    hx_burst_fire(&b, n);
    ck_assert(hx_burst_run(&b, 40000, NULL, NULL));
    struct hx_seen s;
    hx_sandbox_seen(sb.port, &s);
    report("one instance cut off", &b, &s);
    hx_redis_path_thaw(&path);
    assert_promise(&b, &s);
    hx_burst_free(&b);
    stop_all();
}
END_TEST

/* Every link dropped four times within a second mid-backlog (CLIENT KILL:
 * the connections die, each link is back within milliseconds, Redis
 * itself stays up and keeps its keys). The 45 sends all got their slots
 * from Redis at once, within 9 s: each caller is answered 200. */
struct flap {
    int kills;
    double next_ms;
};

static void
flap_tick(void *arg, double ms)
{
    struct flap *f = arg;
    if (f->kills >= 4 || ms < f->next_ms)
        return;
    redisContext *c = hx_redis_connect(&redis);
    ck_assert_ptr_nonnull(c);
    redisReply *rp = redisCommand(c, "CLIENT KILL TYPE normal SKIPME yes");
    ck_assert_ptr_nonnull(rp);
    freeReplyObject(rp);
    redisFree(c);
    f->kills++;
    f->next_ms = ms + 250;
}

START_TEST(links_flapping_mid_backlog_keep_the_window)
{
    const int n = 45;
    start_all(n, 0, 5);
    struct hx_burst b;
    struct flap f = {.next_ms = 2000};
    hx_burst_init(&b, n, NGW, gw, "review");
    hx_burst_fire(&b, n);
    ck_assert(hx_burst_run(&b, 40000, flap_tick, &f));
    struct hx_seen s;
    hx_sandbox_seen(sb.port, &s);
    report("links flapping", &b, &s);
    ck_assert_int_eq(f.kills, 4);
    assert_promise(&b, &s);
    /* every slot Redis gave was within max_queue_ms: nobody refused */
    ck_assert_int_eq(hx_burst_count(&b, 200), n);
    hx_burst_free(&b);
    stop_all();
}
END_TEST

/* Redis frozen for 600 ms (longer than state.redis.timeout_ms, 250: every
 * link drops) or restarted empty, 2 s into a 9 s backlog whose 45 slots
 * Redis gave at once: the window holds, and (every slot within
 * max_queue_ms) each caller is answered 200. */
struct redis_fault {
    int what; /* 0: freeze for 600 ms, 1: restart empty */
    int step;
};

static void
redis_fault_tick(void *arg, double ms)
{
    struct redis_fault *f = arg;
    if (f->step == 0 && ms >= 2000) {
        f->step = 1;
        if (f->what == 0)
            hx_redis_freeze(&redis);
        else {
            ck_assert_int_eq(hx_redis_restart(&redis), 0);
            f->step = 2;
        }
    } else if (f->step == 1 && ms >= 2600) {
        hx_redis_thaw(&redis);
        f->step = 2;
    }
}

static void
redis_fault_case(int what)
{
    const int n = 45;
    start_all(n, 0, 5);
    struct hx_burst b;
    struct redis_fault f = {.what = what};
    hx_burst_init(&b, n, NGW, gw, "review");
    hx_burst_fire(&b, n);
    ck_assert(hx_burst_run(&b, 40000, redis_fault_tick, &f));
    ck_assert_int_eq(f.step, 2);
    struct hx_seen s;
    hx_sandbox_seen(sb.port, &s);
    report(what == 0 ? "Redis frozen 600 ms" : "Redis restarted empty", &b, &s);
    assert_promise(&b, &s);
    ck_assert_int_eq(hx_burst_count(&b, 200), n);
    hx_burst_free(&b);
    stop_all();
}

START_TEST(redis_frozen_briefly_mid_backlog_answers_every_caller)
{
    redis_fault_case(0);
}
END_TEST

START_TEST(redis_restarted_empty_mid_backlog_answers_every_caller)
{
    redis_fault_case(1);
}
END_TEST

/* Gateway 1 stopped (SIGTERM: a drain) 2 s into a 9 s backlog and started
 * again; then 15 more sends over the three, the new one included. */
struct restart {
    struct hx_burst *b;
    int done;
};

static void
restart_tick(void *arg, double ms)
{
    struct restart *r = arg;
    if (r->done || ms < 2000)
        return;
    r->done = 1;
    ck_assert_int_eq(proc_stop(&gw[1], 15000), 0);
    gw_start(1);
    ck_assert(proc_wait_log(&gw[1], "state: redis up", 10000));
    hx_burst_add(r->b, r->b->n);
}

START_TEST(a_gateway_restarted_mid_backlog_keeps_the_window)
{
    const int first = 45, n = 60;
    start_all(n, 0, 5);
    struct hx_burst b;
    struct restart r = {.b = &b};
    hx_burst_init(&b, n, NGW, gw, "review");
    hx_burst_fire(&b, first);
    ck_assert(hx_burst_run(&b, 60000, restart_tick, &r));
    ck_assert(r.done);
    struct hx_seen s;
    hx_sandbox_seen(sb.port, &s);
    report("a gateway restarted", &b, &s);
    assert_promise(&b, &s);
    hx_burst_free(&b);
    stop_all();
}
END_TEST

/* A reload (SIGHUP) on every gateway lowering rate_limit_rps from 5 to 4
 * 1.5 s into a shared backlog of 40: the provider never sees more than
 * 5 (the old slots, 200 ms apart, may be kept). */
struct reload {
    int done;
    int rps;
};

static void
reload_tick(void *arg, double ms)
{
    struct reload *r = arg;
    if (r->done || ms < 1500)
        return;
    r->done = 1;
    for (int i = 0; i < NGW; i++) {
        /* rewrite the rate in the gateway's own config */
        FILE *fp = fopen(conf[i], "r");
        ck_assert_ptr_nonnull(fp);
        char buf[8192];
        size_t len = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
        buf[len] = '\0';
        char *p = strstr(buf, "\"rate_limit_rps\": 5,");
        ck_assert_ptr_nonnull(p);
        p[strlen("\"rate_limit_rps\": ")] = (char)('0' + r->rps);
        fp = fopen(conf[i], "w");
        ck_assert_ptr_nonnull(fp);
        fwrite(buf, 1, len, fp);
        fclose(fp);
        kill(gw[i].pid, SIGHUP);
    }
    for (int i = 0; i < NGW; i++)
        ck_assert(proc_wait_log(&gw[i], "configuration reloaded", 5000));
}

static void
reload_case(int rps, int n)
{
    start_all(n, 0, 5);
    struct hx_burst b;
    struct reload r = {.rps = rps};
    hx_burst_init(&b, n, NGW, gw, "review");
    hx_burst_fire(&b, n);
    ck_assert(hx_burst_run(&b, 40000, reload_tick, &r));
    ck_assert(r.done);
    struct hx_seen s;
    hx_sandbox_seen(sb.port, &s);
    char what[64];
    snprintf(what, sizeof(what), "reload to %d/s mid-backlog", rps);
    report(what, &b, &s);
    assert_promise(&b, &s);
    hx_burst_free(&b);
    stop_all();
}

START_TEST(a_reload_lowering_the_rate_mid_backlog_keeps_the_window)
{
    reload_case(4, 40);
}
END_TEST

/* The provider resets the connection on 11 of 30 queued sends (those
 * whose message starts "review 1": 1 and 10-19) after reading them: each
 * such send left (an unknown outcome, 502 to its caller), counted in the
 * window until its bound (departure + cap), never sent twice. */
START_TEST(resets_mid_backlog_keep_the_window_and_answer_once)
{
    const int n = 30;
    start_all(n, 0, 5);
    ck_assert_int_eq(hx_sandbox_control(sb.port, "POST", "/_sandbox/faults",
                                        "{\"mode\":\"reset\",\"match\":"
                                        "\"review 1\",\"times\":11}"),
                     200);
    struct hx_burst b;
    hx_burst_init(&b, n, NGW, gw, "review");
    hx_burst_fire(&b, n);
    ck_assert(hx_burst_run(&b, 40000, NULL, NULL));
    struct hx_seen s;
    hx_sandbox_seen(sb.port, &s);
    report("resets mid-backlog", &b, &s);
    for (int i = 0; i < n; i++) {
        int reset = i == 1 || (i >= 10 && i <= 19);
        ck_assert_int_eq(b.answers[i], 1);
        ck_assert_msg(b.status[i] == (reset ? 502 : 200), "send %d: %ld", i,
                      b.status[i]);
    }
    ck_assert_int_eq(s.n, n); /* nothing sent twice */
    ck_assert_int_eq(s.faults, 11);
    ck_assert_int_eq(s.limited, 0);
    ck_assert_int_le(hx_worst_window(&s, NULL), 5);
    hx_burst_free(&b);
    stop_all();
}
END_TEST

static Suite *
limiter_review_suite(void)
{
    Suite *s = suite_create("limiter_review");
    /* one case per scenario: CK_RUN_CASE=<name> runs one */
    /* known: the cases that show defects not fixed yet (README, Status),
     * run with WAGATE_KNOWN_DEFECTS=1 */
    const struct hx_case cases[] = {
        {"partition",
         one_instance_cut_off_alone_keeps_the_account_under_its_limit, 0},
        {"flap", links_flapping_mid_backlog_keep_the_window, 0},
        {"restart", a_gateway_restarted_mid_backlog_keeps_the_window, 0},
        {"reload", a_reload_lowering_the_rate_mid_backlog_keeps_the_window, 0},
        {"reset", resets_mid_backlog_keep_the_window_and_answer_once, 0},
        {"freeze", redis_frozen_briefly_mid_backlog_answers_every_caller, 0},
        {"redis_restart",
         redis_restarted_empty_mid_backlog_answers_every_caller, 0},
    };
    hx_add_cases(s, cases, sizeof(cases) / sizeof(cases[0]), 150,
                 leave_nothing);
    return s;
}

int
main(void)
{
    return harness_run_suite(limiter_review_suite());
}
