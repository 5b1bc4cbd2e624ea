/* limiter_hostile.c - the shared limiter (SPEC sections 6 and 11)
 * attacked as a misbehaving upstream and a tampered Redis would: three
 * gateways at 5/s, burst 1, max_queue_ms 15000 (a 6 s pause and the
 * backlog behind it end near 9.6 s: 10000 left too little slack under the
 * sanitizers, and the last send was refused at once) on one Redis in front of
 * the sandbox with its strict 5/s limit (a sliding 1000 ms window stamped
 * at arrival). Asserted from what the callers got and from the sandbox's
 * own request log: no 1-second window at the sandbox above 5, no 429 of
 * the sandbox's own limit, every caller answered. */
#include <check.h>
#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"
#include "hx_burst.h"
#include "hx_redis.h"

#define FREEFORM "/api/user/whatsapp/send-freeform"
#define NGW 3
#define ACCOUNT "hostile"
#define KEY(k) "wagate:{" ACCOUNT "}:" k
#define ADMIN_TOKEN "adm-upstream-7"
#define ADMIN_SHA                                                              \
    "e853326709437fbc88103017f4dffa60b092dd254531afe7b318459de0aaf82f"

static struct proc sb, gw[NGW];
static char conf[NGW][64];
static struct hx_redis redis;

/* ---- the fixture ---- */

static void
start_all(int nsends)
{
    ck_assert_int_eq(harness_start_sandbox(&sb, "5", NULL), 0);
    ck_assert_int_eq(hx_redis_start(&redis, 0, NULL), 0);
    for (int i = 0; i < NGW; i++) {
        char extra[1024];
        snprintf(extra, sizeof(extra),
                 ", \"upstream\": {\"base_url\": \"http://127.0.0.1:%d\","
                 " \"timeout_ms\": 5000, \"rate_limit_rps\": 5,"
                 " \"rate_limit_burst\": 1, \"max_queue_ms\": 15000},"
                 " \"state\": {\"backend\": \"redis\", \"instances\": 3,"
                 " \"account\": \"" ACCOUNT "\","
                 " \"redis\": {\"url\": \"%s\"}},"
                 " \"admin\": {\"token_sha256\": \"" ADMIN_SHA "\"}",
                 sb.port, redis.url);
        ck_assert_int_eq(harness_start_gateway(&gw[i], sb.port, extra, conf[i],
                                               sizeof(conf[i])),
                         0);
    }
    hx_sandbox_open_windows(sb.port, nsends);
}

static void
stop_all(void)
{
    int bad = 0;
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

/* After a failed test: whatever it started is stopped all the same. */
static void
leave_nothing(void)
{
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

/* ---- sends at once, round-robin over the gateways ---- */

/* ---- what the sandbox saw ---- */

static void
report(const char *what, const struct hx_burst *b, const struct hx_seen *s)
{
    fprintf(stderr,
            "%s: %d x 200, %d x 429, %d other; sandbox saw %d (%d of its "
            "own 429, %d faults), worst window %d\n",
            what, hx_burst_count(b, 200), hx_burst_count(b, 429),
            b->n - hx_burst_count(b, 200) - hx_burst_count(b, 429), s->n,
            s->limited, s->faults, hx_worst_window(s, NULL));
}

static int
admin_call(int gw_port, const char *method, const char *path)
{
    const char *h[] = {"Authorization: Bearer " ADMIN_TOKEN, NULL};
    struct http_resp r;
    ck_assert_int_eq(harness_get(gw_port, method, path, h, &r), 0);
    int st = (int)r.status;
    http_free(&r);
    return st;
}

static void
arm_429(const char *match, int retry_after_s)
{
    char fault[320];
    snprintf(fault, sizeof(fault),
             "{\"mode\":\"status\",\"status\":429,\"match\":\"%s\","
             "\"headers\":{\"Retry-After\":\"%d\"},\"body\":{\"success\":"
             "false,\"error\":\"Too Many Attempts.\",\"error_code\":"
             "\"RATE_LIMITED\"}}",
             match, retry_after_s);
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/faults", fault), 200);
}

/* ---- the tests ---- */

/* 30 sends queued across the three (6 s of backlog); the provider
 * answers the sixth with 429 and Retry-After: 2. Every instance pauses
 * (SPEC section 11) and the queued ones move back keeping their spacing
 * (section 6): all but the refused one are answered 200 (the last slot,
 * ~8 s away, is within max_queue_ms), none by the sandbox's own limit,
 * no window above 5. */
START_TEST(a_429_on_one_pauses_all_and_the_backlog_keeps_its_spacing)
{
    const int n = 30;
    start_all(n);
    char fault[256];
    snprintf(fault, sizeof(fault),
             "{\"mode\":\"status\",\"status\":429,\"match\":\"hostile 5.\","
             "\"headers\":{\"Retry-After\":\"2\"},\"body\":{\"success\":false,"
             "\"error\":\"Too Many Attempts.\",\"error_code\":"
             "\"RATE_LIMITED\"}}");
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/faults", fault), 200);
    struct hx_burst b;
    hx_burst_init(&b, n, NGW, gw, "hostile");
    hx_burst_fire(&b, n);
    ck_assert(hx_burst_run(&b, 30000, NULL, NULL));
    struct hx_seen s;
    hx_sandbox_seen(sb.port, &s);
    report("429 mid-backlog", &b, &s);
    for (int i = 0; i < n; i++)
        if (b.status[i] != 200)
            fprintf(stderr, "  send %d (gateway %d): %ld after %.0f ms\n", i,
                    i % NGW, b.status[i], b.done_ms[i] - b.fired_ms);
    ck_assert_int_eq(s.faults, 1);
    ck_assert_int_eq(s.limited, 0);
    ck_assert_int_le(hx_worst_window(&s, NULL), 5);
    ck_assert_int_eq(hx_burst_count(&b, 429), 1);
    ck_assert_int_eq(hx_burst_count(&b, 200), n - 1);
    hx_burst_free(&b);
    stop_all();
}
END_TEST

/* The pause ends early on another instance than the one that saw the
 * 429 (DELETE /admin/pause on gateway 0 once the provider's 429 to send 5
 * on gateway 2 is answered): every instance resumes (each learns it
 * within SHAPER_PAUSE_POLL_MS), the backlog drains at the full rate
 * again, still never above 5. The pause (6 s) keeps every queued send
 * within max_queue_ms: none is refused but the one the provider refused.
 * The resume waits for the 429, not for a time: the slots go to the
 * instances in the order their reservations reach Redis, so send 5 may
 * leave late, and a resume before it would end no pause. */
struct resume_at {
    const struct hx_burst *b;
    int done;
    double at_ms; /* when the DELETE was answered, since fired */
    int left;     /* sends not answered then */
};

static void
resume_tick(void *arg, double ms)
{
    struct resume_at *r = arg;
    if (r->done || r->b->status[5] != 429)
        return;
    r->done = 1;
    ck_assert_int_eq(admin_call(gw[0].port, "DELETE", "/admin/pause"), 204);
    r->at_ms = clock_mono_ms() - r->b->fired_ms;
    (void)ms;
    for (int i = 0; i < r->b->n; i++)
        r->left += r->b->status[i] == 0;
}

START_TEST(a_pause_ended_on_another_instance_ends_for_all)
{
    const int n = 24;
    start_all(n);
    arm_429("hostile 5.", 6);
    struct hx_burst b;
    struct resume_at r = {.b = &b};
    hx_burst_init(&b, n, NGW, gw, "hostile");
    hx_burst_fire(&b, n);
    ck_assert(hx_burst_run(&b, 30000, resume_tick, &r));
    ck_assert(r.done);
    struct hx_seen s;
    hx_sandbox_seen(sb.port, &s);
    report("429 mid-backlog, resumed elsewhere", &b, &s);
    double last = 0;
    for (int i = 0; i < n; i++) {
        if (b.status[i] != 200 || getenv("HOSTILE_TRACE"))
            fprintf(stderr, "  send %d (gateway %d): %ld after %.0f ms\n", i,
                    i % NGW, b.status[i], b.done_ms[i] - b.fired_ms);
        last = fmax(last, b.done_ms[i] - b.fired_ms);
    }
    fprintf(stderr,
            "  resumed after %.0f ms with %d left; the last answered after "
            "%.0f ms\n",
            r.at_ms, r.left, last);
    ck_assert_int_eq(s.faults, 1);
    ck_assert_int_eq(s.limited, 0);
    ck_assert_int_le(hx_worst_window(&s, NULL), 5);
    ck_assert_int_eq(hx_burst_count(&b, 429), 1);
    ck_assert_int_eq(hx_burst_count(&b, 200), n - 1);
    /* the ones left at 5/s from the resume, + the time to learn of it
     * (SHAPER_PAUSE_POLL_MS, 500) and 600 ms of slack; the pause's own
     * end is 6 s after the 429. The instance that saw the 429 must resume
     * too, not wait for the pause's own end. */
    double bound = r.at_ms + 500 + r.left * 200 + 600;
    ck_assert_msg(last < bound, "the last answered after %.0f ms (bound %.0f)",
                  last, bound);
    hx_burst_free(&b);
    stop_all();
}
END_TEST

/* A slow upstream (each answer one byte every 2 ms: about a second long): the
 * guard counts arrivals from departures (+ 40 ms) when the answers come
 * late, so the window still holds at most 5 and nobody is refused. */
START_TEST(a_slow_upstream_keeps_the_window)
{
    const int n = 20;
    start_all(n);
    ck_assert_int_eq(hx_sandbox_control(sb.port, "POST", "/_sandbox/faults",
                                        "{\"mode\":\"slow\",\"delay_ms\":2,"
                                        "\"times\":20}"),
                     200);
    struct hx_burst b;
    hx_burst_init(&b, n, NGW, gw, "hostile");
    hx_burst_fire(&b, n);
    ck_assert(hx_burst_run(&b, 30000, NULL, NULL));
    struct hx_seen s;
    hx_sandbox_seen(sb.port, &s);
    report("slow upstream", &b, &s);
    ck_assert_int_eq(s.faults, n);
    ck_assert_int_eq(s.limited, 0);
    ck_assert_int_le(hx_worst_window(&s, NULL), 5);
    ck_assert_int_eq(hx_burst_count(&b, 200), n);
    hx_burst_free(&b);
    stop_all();
}
END_TEST

/* The departure log and the schedule made keys of another type, without
 * a TTL (another program, an operator's mistake): every script of the
 * limiter then answers an error. */
static redisContext *
tamper(void)
{
    redisContext *c = hx_redis_connect(&redis);
    ck_assert_ptr_nonnull(c);
    redisReply *r = redisCommand(c, "SET %s %s", KEY("dep:send"), "junk");
    ck_assert_ptr_nonnull(r);
    freeReplyObject(r);
    r = redisCommand(c, "RPUSH %s %s", KEY("rl:send"), "junk");
    ck_assert_ptr_nonnull(r);
    freeReplyObject(r);
    return c;
}

static void
six_sends(struct hx_seen *s, const char *what)
{
    const int n = 6;
    struct hx_burst b;
    hx_burst_init(&b, n, NGW, gw, "hostile");
    hx_burst_fire(&b, n);
    ck_assert(hx_burst_run(&b, 20000, NULL, NULL));
    hx_sandbox_seen(sb.port, s);
    report(what, &b, s);
    ck_assert_int_eq(s->limited, 0);
    ck_assert_int_le(hx_worst_window(s, NULL), 5);
    ck_assert_int_eq(hx_burst_count(&b, 200), n);
    hx_burst_free(&b);
}

/* Error replies (here from tampered keys; OOM, MISCONF or READONLY after
 * a failover do the same) while the link is up: each instance falls back
 * to its own limiter at rate / 3, and must then keep to its own share of
 * the window too, as when the link is down. With the whole window (5)
 * locally, each of the three sent its first two within 600 ms: 6 in a
 * second, and the sandbox refused one. */
START_TEST(error_replies_keep_each_instance_to_its_share)
{
    start_all(6);
    redisContext *c = tamper();
    struct hx_seen s;
    six_sends(&s, "error replies");
    redisFree(c);
    stop_all();
}
END_TEST

static Suite *
limiter_hostile_suite(void)
{
    Suite *s = suite_create("limiter_hostile");
    TCase *tc = tcase_create("upstream");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, leave_nothing);
    tcase_add_test(tc,
                   a_429_on_one_pauses_all_and_the_backlog_keeps_its_spacing);
    tcase_add_test(tc, a_pause_ended_on_another_instance_ends_for_all);
    tcase_add_test(tc, a_slow_upstream_keeps_the_window);
    suite_add_tcase(s, tc);
    tc = tcase_create("redis");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, leave_nothing);
    tcase_add_test(tc, error_replies_keep_each_instance_to_its_share);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return harness_run_suite(limiter_hostile_suite());
}
