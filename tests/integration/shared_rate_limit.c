/* shared_rate_limit.c - the limiter's promise on the wire, end to end
 * (SPEC sections 6, 10 and 11): the sandbox with its strict 5/s limit
 * (a sliding 1000 ms window at integer ms, stamped at arrival) and
 * gateways at 5/s, burst 1, max_queue_ms 10000. 60 distinct sends fired
 * within 100 ms must have exactly the outcome of one ideal instance: 51
 * answered 200 and 9 answered 429 at once, the sandbox saw 51 and
 * answered none with 429, no 1-second window at the sandbox holds more
 * than 5, and the drain takes 10 s +- 2 %. With one gateway on the memory
 * backend, with three sharing one Redis, and with three of which one runs
 * 30 s off (faketime). Everything is asserted from what the callers got
 * and from the sandbox's own request log. */
#include <check.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "harness.h"
#include "hx_redis.h"
#include "redis_link.h"
#include "redis_scripts.h"
#include "shaper.h"

#define FREEFORM "/api/user/whatsapp/send-freeform"
#define NSENDS 60
#define NGW 3
/* Debian's faketime (scripts/deps.sh) */
#define LIBFAKETIME "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

static struct proc sb, gw[NGW];
static char conf[NGW][64];
static int ngw;
static struct hx_redis redis;
static int have_redis;

/* ---- the fixture ---- */

static void
open_windows(void)
{
    for (int i = 0; i < NSENDS; i++) {
        char body[128];
        snprintf(body, sizeof(body),
                 "{\"sender_id\":12,\"recipient_phone\":\"+1415556%04d\"}", i);
        ck_assert_int_eq(
            hx_sandbox_control(sb.port, "POST", "/_sandbox/inbound", body),
            204);
    }
    /* the inbound calls are in the request log too: start it afresh */
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "DELETE", "/_sandbox/requests", NULL), 204);
}

/* The gateway's config: the harness's, with the defaults of the
 * limiter (5/s, burst 1, 10 s of queue) and, with Redis, the shared
 * state. */
static void
gateway_extra(char *out, size_t n)
{
    int len = snprintf(out, n,
                       ", \"upstream\": {\"base_url\": \"http://127.0.0.1:%d\","
                       " \"timeout_ms\": 5000, \"rate_limit_rps\": 5,"
                       " \"rate_limit_burst\": 1, \"max_queue_ms\": 10000}",
                       sb.port);
    if (have_redis && len > 0 && (size_t)len < n)
        snprintf(out + len, n - (size_t)len,
                 ", \"state\": {\"backend\": \"redis\", \"instances\": 3,"
                 " \"account\": \"exactness\","
                 " \"redis\": {\"url\": \"%s\"}}",
                 redis.url);
}

/* Starts gateway i, its clocks 30 s ahead when skewed: Debian's
 * libfaketime preloaded into the gateway itself, as `faketime -f +30s`
 * does (the faketime command forks and waits, so a SIGTERM would stop
 * the wrapper and not the gateway). */
static void
start_gateway(int i, int skewed)
{
    char extra[1024];
    gateway_extra(extra, sizeof(extra));
    if (!skewed) {
        ck_assert_int_eq(harness_start_gateway(&gw[i], sb.port, extra, conf[i],
                                               sizeof(conf[i])),
                         0);
        return;
    }
    char text[4096];
    snprintf(text, sizeof(text),
             "{\"listen\": [\"127.0.0.1:0\"],\n"
             " \"limits\": {\"client_timeout_ms\": 1000,"
             " \"max_body_bytes\": 4096}%s}\n",
             extra);
    write_temp(text, conf[i], sizeof(conf[i]));
    static char keyenv[] = "AUTOCALLS_API_KEY=" HARNESS_UPSTREAM_KEY;
    static char preload[] = "LD_PRELOAD=" LIBFAKETIME;
    static char skew[] = "FAKETIME=+30s";
    /* under AddressSanitizer its runtime must come first, libfaketime is
     * preloaded before it: let it be (an ASan build then still runs) */
    static char asan[512];
    const char *was = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof(asan), "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
             was ? was : "", was && *was ? ":" : "");
    char *env[] = {keyenv, preload, skew, asan, NULL};
    const char *bin = getenv("WAGATE_BIN");
    char *argv[] = {(char *)(bin ? bin : "./wagate"), "-c", conf[i], NULL};
    ck_assert_int_eq(proc_start(&gw[i], argv, env), 0);
    /* its clock is 30 s ahead: the time its log lines carry */
    char *log = proc_log(&gw[i]);
    const char *t = log ? strstr(log, "\"time\":\"") : NULL;
    struct tm tm = {0};
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(strptime(t + 8, "%Y-%m-%dT%H:%M:%S", &tm));
    double ahead = difftime(timegm(&tm), time(NULL));
    free(log);
    ck_assert_msg(ahead > 25 && ahead < 35, "the skewed gateway is %.0f s off",
                  ahead);
}

static void
start_all(int gateways, int redis_backend, int skew_one)
{
    ck_assert_int_eq(harness_start_sandbox(&sb, "5", NULL), 0);
    have_redis = redis_backend;
    if (redis_backend)
        ck_assert_int_eq(hx_redis_start(&redis, 0, NULL), 0);
    ngw = gateways;
    for (int i = 0; i < gateways; i++)
        start_gateway(i, skew_one && i == 1);
    open_windows();
}

static void
stop_all(void)
{
    int bad = 0;
    for (int i = 0; i < ngw; i++) {
        bad |= proc_stop(&gw[i], 15000) != 0;
        gw[i].pid = 0;
        unlink(conf[i]);
    }
    ngw = 0;
    bad |= proc_stop(&sb, 5000) != 0;
    sb.pid = 0;
    if (have_redis)
        hx_redis_stop(&redis);
    have_redis = 0;
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
    if (have_redis || redis.pid > 0)
        hx_redis_stop(&redis);
    have_redis = 0;
    ngw = 0;
}

/* ---- 60 sends at once, round-robin over the gateways ---- */

struct burst {
    CURLM *m;
    CURL *e[NSENDS];
    struct curl_slist *h;
    char body[NSENDS][160];
    char hdrs[NSENDS][512];
    long status[NSENDS];
    double done_ms[NSENDS]; /* when its answer was complete */
    double fired_ms, fired_last_ms;
};

static size_t
on_header(char *d, size_t s, size_t n, void *arg)
{
    char *buf = arg;
    size_t have = strlen(buf), add = s * n;
    if (have + add < 511) {
        memcpy(buf + have, d, add);
        buf[have + add] = '\0';
    }
    return s * n;
}

static size_t
discard(char *d, size_t s, size_t n, void *arg)
{
    (void)d;
    (void)arg;
    return s * n;
}

static void
burst_fire(struct burst *b)
{
    memset(b, 0, sizeof(*b));
    b->m = curl_multi_init();
    b->h = curl_slist_append(NULL, "Content-Type: application/json");
    for (int i = 0; i < NSENDS; i++) {
        char url[128];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d" FREEFORM,
                 gw[i % ngw].port);
        snprintf(b->body[i], sizeof(b->body[i]),
                 "{\"sender_id\":12,\"recipient_phone\":\"+1415556%04d\","
                 "\"message\":\"exactness %d\"}",
                 i, i);
        b->e[i] = curl_easy_init();
        curl_easy_setopt(b->e[i], CURLOPT_URL, url);
        curl_easy_setopt(b->e[i], CURLOPT_HTTPHEADER, b->h);
        curl_easy_setopt(b->e[i], CURLOPT_POSTFIELDS, b->body[i]);
        curl_easy_setopt(b->e[i], CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(b->e[i], CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(b->e[i], CURLOPT_HEADERDATA, (void *)b->hdrs[i]);
        curl_easy_setopt(b->e[i], CURLOPT_TIMEOUT_MS, 30000L);
        curl_easy_setopt(b->e[i], CURLOPT_PRIVATE, (void *)&b->status[i]);
    }
    /* all connected and sent as fast as curl can: well within 100 ms */
    b->fired_ms = clock_mono_ms();
    for (int i = 0; i < NSENDS; i++)
        curl_multi_add_handle(b->m, b->e[i]);
}

/* Drives the sends to their answers (at most deadline_ms); 1 when all
 * answered. */
static int
burst_run(struct burst *b, double deadline_ms)
{
    int running = 1, left = NSENDS;
    double end = clock_mono_ms() + deadline_ms;
    while (left > 0 && clock_mono_ms() < end) {
        curl_multi_perform(b->m, &running);
        CURLMsg *msg;
        int q;
        while ((msg = curl_multi_info_read(b->m, &q)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            char *p;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &p);
            int i = (int)((long *)(void *)p - b->status);
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
                              &b->status[i]);
            b->done_ms[i] = clock_mono_ms();
            left--;
        }
        if (left > 0)
            curl_multi_poll(b->m, NULL, 0, 20, NULL);
    }
    return left == 0;
}

static void
burst_free(struct burst *b)
{
    for (int i = 0; i < NSENDS; i++) {
        curl_multi_remove_handle(b->m, b->e[i]);
        curl_easy_cleanup(b->e[i]);
    }
    curl_slist_free_all(b->h);
    curl_multi_cleanup(b->m);
}

/* ---- what the sandbox saw ---- */

/* The outcome of one ideal instance, asserted. */
static void
exactness(void)
{
    struct burst b;
    burst_fire(&b);
    ck_assert(burst_run(&b, 25000));
    int ok = 0, limited = 0, late = 0;
    for (int i = 0; i < NSENDS; i++) {
        if (b.status[i] == 200)
            ok++;
        if (b.status[i] == 429) {
            limited++;
            ck_assert_ptr_nonnull(strstr(b.hdrs[i], "Retry-After: "));
            ck_assert_ptr_nonnull(
                strstr(b.hdrs[i], "X-Wagate: gateway; reason=rate_limited"));
            /* at once: refused at its reservation, not after waiting */
            late += b.done_ms[i] - b.fired_ms > 1000;
        }
    }
    burst_free(&b);
    struct hx_seen s;
    hx_sandbox_seen(sb.port, &s);
    int worst = hx_worst_window(&s, NULL);
    double span = s.n > 1 ? s.t[s.n - 1] - s.t[0] : 0;
    fprintf(stderr,
            "exactness: %d gateway(s): %d x 200, %d x 429 (%d late), "
            "sandbox saw %d (%d refused), worst window %d, span %.0f ms\n",
            ngw, ok, limited, late, s.n, s.limited, worst, span);
    if (getenv("EXACTNESS_TRACE")) {
        for (int i = 0; i < s.n; i++)
            fprintf(stderr, "arrival %2d: %8.0f (+%4.0f) abs %.0f\n", i,
                    s.t[i] - s.t[0], i ? s.t[i] - s.t[i - 1] : 0, s.t[i]);
        for (int i = 0; i < ngw; i++) {
            char *log = proc_log(&gw[i]);
            for (char *l = log; l && (l = strstr(l, "TRACE")) != NULL; l++) {
                char *e = strchr(l, '\n');
                fprintf(stderr, "gw%d %.*s\n", i, e ? (int)(e - l) : 40, l);
            }
            free(log);
        }
        for (int i = 0; i < NSENDS; i++)
            fprintf(stderr, "send %2d: %ld after %.0f ms\n", i, b.status[i],
                    b.done_ms[i] - b.fired_ms);
    }
    ck_assert_int_eq(ok, 51);
    ck_assert_int_eq(limited, 9);
    ck_assert_int_eq(late, 0);
    ck_assert_int_eq(s.n, 51);
    ck_assert_int_eq(s.limited, 0);
    ck_assert_int_le(worst, 5);
    ck_assert_msg(fabs(span - 10000) <= 200, "the drain took %.0f ms", span);
}

/* ---- the tests ---- */

START_TEST(one_instance_is_the_ideal_one)
{
    start_all(1, 0, 0);
    exactness();
    stop_all();
}
END_TEST

START_TEST(three_instances_on_one_redis_are_one)
{
    start_all(NGW, 1, 0);
    exactness();
    stop_all();
}
END_TEST

START_TEST(three_instances_one_30s_off_are_one)
{
    if (access(LIBFAKETIME, R_OK) != 0) {
        fprintf(stderr, "SKIP three_instances_one_30s_off_are_one: "
                        "faketime is not installed (scripts/deps.sh)\n");
        return;
    }
    start_all(NGW, 1, 1);
    exactness();
    stop_all();
}
END_TEST

/* ---- three shapers in one process, on one Redis (the limiter alone) ----
 *
 * Three shapers (shaper.c in shared mode), each with its own link to one
 * real Redis, on one event loop and one clock: what they hand over is
 * timed here, and the "upstream" takes each at the next turn of the loop
 * and answers it at the one after. */

static struct event_base *base;

struct trip {
    struct shaper *s;
    uint64_t ticket;
};

struct rec {
    double handed[NSENDS + 8];
    int n;
    int refused;
    int refused_late; /* more than 200 ms after its submit */
    double t0;
    int shaper_of[NSENDS + 8];
};
static struct rec rec;

struct sitem {
    struct shaper *s;
    int who;
};
static struct sitem items[NSENDS];

static void
on_answer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct trip *t = arg;
    (void)fd;
    (void)what;
    shaper_answered(t->s, t->ticket);
    free(t);
}

static void
on_leave_cb(evutil_socket_t fd, short what, void *arg)
{
    struct trip *t = arg;
    (void)fd;
    (void)what;
    t->ticket = shaper_left(t->s);
    struct timeval next = {0, 0};
    event_base_once(base, -1, EV_TIMEOUT, on_answer_cb, t, &next);
}

static void
sgo(void *arg)
{
    struct sitem *it = arg;
    if (rec.n < NSENDS + 8) {
        rec.shaper_of[rec.n] = it->who;
        rec.handed[rec.n++] = clock_mono_ms();
    }
    struct trip *t = calloc(1, sizeof(*t));
    t->s = it->s;
    struct timeval next = {0, 0};
    event_base_once(base, -1, EV_TIMEOUT, on_leave_cb, t, &next);
}

static void
srefuse(void *arg, long secs)
{
    (void)arg;
    ck_assert_int_ge(secs, 1);
    rec.refused++;
    if (clock_mono_ms() - rec.t0 > 200)
        rec.refused_late++;
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void
run_until_count(int want, double ms)
{
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 10000};
    event_add(tick, &tv);
    double end = clock_mono_ms() + ms;
    while (rec.n + rec.refused < want && clock_mono_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
}

static void
run_for_ms(double ms)
{
    run_until_count(1 << 30, ms);
}

static struct rlink *links[NGW];
static struct shaper *shapers[NGW];

static void
shapers_start(void)
{
    memset(&rec, 0, sizeof(rec));
    base = event_base_new();
    ck_assert_int_eq(hx_redis_start(&redis, 0, NULL), 0);
    for (int i = 0; i < NGW; i++) {
        struct rlink_config cfg = {.url = redis.url, .timeout_ms = 250};
        char err[128];
        links[i] = rlink_new(base, &cfg, redis_scripts, RS_COUNT, NULL, NULL,
                             err, sizeof(err));
        ck_assert_msg(links[i] != NULL, "%s", err);
        shapers[i] = shaper_new(base, 5, 1, 10000);
        struct shaper_share sh = {
            .link = {links[i], rlink_eval, rlink_cancel, rlink_up},
            .key_base = "wagate:{shapers}:",
            .limiter = "send",
            .instances = NGW,
            .pending_ms = 5000,
        };
        shaper_share(shapers[i], &sh);
    }
    double end = clock_mono_ms() + 5000;
    int up = 0;
    while (up < NGW && clock_mono_ms() < end) {
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        up = 0;
        for (int i = 0; i < NGW; i++)
            up += rlink_up(links[i]);
    }
    ck_assert_int_eq(up, NGW);
}

static void
shapers_stop(void)
{
    for (int i = 0; i < NGW; i++) {
        shaper_free(shapers[i]);
        rlink_free(links[i]);
        shapers[i] = NULL;
        links[i] = NULL;
    }
    /* the upstream's last answers, scheduled on the loop, are dropped */
    if (base != NULL)
        event_base_free(base);
    base = NULL;
    hx_redis_stop(&redis);
}

static int
handed_worst_window(void)
{
    int worst = 0;
    for (int i = 0; i < rec.n; i++) {
        int c = 0;
        for (int j = i; j < rec.n && rec.handed[j] - rec.handed[i] < 1000; j++)
            c++;
        worst = c > worst ? c : worst;
    }
    return worst;
}

static void
submit_round_robin(int n)
{
    rec.t0 = clock_mono_ms();
    for (int i = 0; i < n; i++) {
        items[i].s = shapers[i % NGW];
        items[i].who = i % NGW;
        long retry = 0;
        if (shaper_submit(items[i].s, &items[i], sgo, srefuse, &retry) != 0)
            srefuse(&items[i], retry);
    }
}

START_TEST(three_shapers_on_one_redis_hand_over_as_one)
{
    shapers_start();
    submit_round_robin(NSENDS);
    run_until_count(NSENDS, 15000);
    int worst = handed_worst_window();
    double span = rec.n > 1 ? rec.handed[rec.n - 1] - rec.handed[0] : 0;
    int per[NGW] = {0};
    for (int i = 0; i < rec.n; i++)
        per[rec.shaper_of[i]]++;
    fprintf(stderr,
            "shapers: %d handed (%d/%d/%d), %d refused (%d late), worst "
            "window %d, span %.1f ms\n",
            rec.n, per[0], per[1], per[2], rec.refused, rec.refused_late, worst,
            span);
    ck_assert_int_eq(rec.n, 51);
    ck_assert_int_eq(rec.refused, 9);
    ck_assert_int_eq(rec.refused_late, 0);
    ck_assert_int_le(worst, 5);
    ck_assert_msg(fabs(span - 10000) <= 200, "span %.0f ms", span);
    for (int i = 0; i < NGW; i++) {
        struct shaper_stats st;
        shaper_get_stats(shapers[i], &st);
        ck_assert_uint_eq(st.local_slots, 0);
        ck_assert_uint_eq(st.reserving, 0);
        ck_assert_uint_eq(st.depth, 0);
    }
    shapers_stop();
}
END_TEST

/* An upstream 429 seen by one pauses every one: nothing is handed over,
 * on any of them, before the pause ends; then the queue goes on. */
START_TEST(a_pause_on_one_holds_all)
{
    shapers_start();
    submit_round_robin(12);
    run_until_count(2, 3000);
    ck_assert_int_eq(rec.n, 2);
    double paused_at = clock_mono_ms();
    shaper_pause(shapers[0], 1500);
    run_until_count(12, 10000);
    ck_assert_int_eq(rec.n + rec.refused, 12);
    ck_assert_int_eq(rec.refused, 0);
    for (int i = 2; i < rec.n; i++)
        ck_assert_msg(rec.handed[i] >= paused_at + 1500 - 1,
                      "#%d (shaper %d) handed %.0f ms into the pause", i,
                      rec.shaper_of[i], rec.handed[i] - paused_at);
    ck_assert_int_le(handed_worst_window(), 5);
    /* a resume on one ends a new pause for all (the others learned it
     * from their reservations and notice its end) */
    int before = rec.n;
    shaper_pause(shapers[1], 8000);
    run_for_ms(50); /* the pause reaches Redis before the reservations */
    submit_round_robin(3);
    run_for_ms(300);
    ck_assert_int_eq(rec.n, before);
    ck_assert_int_eq(shaper_resume(shapers[1]), 1);
    double resumed = clock_mono_ms();
    run_until_count(before + 3, 3000);
    ck_assert_int_eq(rec.n, before + 3);
    ck_assert_int_eq(rec.refused, 0);
    ck_assert_msg(rec.handed[rec.n - 1] - resumed < 1500,
                  "the last went %.0f ms after the resume",
                  rec.handed[rec.n - 1] - resumed);
    shapers_stop();
}
END_TEST

/* Redis unreachable (frozen: every command times out): each shaper goes
 * on alone at rate / 3, counting those slots, at most one hand-over per
 * window each; thawed, back to the shared schedule by itself. */
START_TEST(degraded_while_redis_is_unreachable)
{
    shapers_start();
    hx_redis_freeze(&redis);
    submit_round_robin(9); /* the first ones time out: local slots */
    run_until_count(9, 8000);
    ck_assert_int_eq(rec.n + rec.refused, 9);
    ck_assert_int_eq(rec.refused, 0);
    uint64_t local = 0;
    for (int i = 0; i < NGW; i++) {
        struct shaper_stats st;
        shaper_get_stats(shapers[i], &st);
        local += st.local_slots;
        ck_assert_int_eq(rlink_up(links[i]), 0);
    }
    ck_assert_uint_eq(local, 9);
    /* per shaper: at most one per window (5 / 3 rounded down) */
    for (int w = 0; w < NGW; w++) {
        double last = -1e9;
        for (int i = 0; i < rec.n; i++) {
            if (rec.shaper_of[i] != w)
                continue;
            ck_assert_msg(rec.handed[i] - last >= 1000,
                          "shaper %d: two within %.0f ms", w,
                          rec.handed[i] - last);
            last = rec.handed[i];
        }
    }
    hx_redis_thaw(&redis);
    double end = clock_mono_ms() + 5000;
    int up = 0;
    while (up < NGW && clock_mono_ms() < end) {
        run_for_ms(20);
        up = 0;
        for (int i = 0; i < NGW; i++)
            up += rlink_up(links[i]);
    }
    ck_assert_int_eq(up, NGW);
    /* back up, each rejoins (a stamp, then one "back" telling Redis of
     * what it sent alone: shaper.h), then takes Redis's slots */
    for (int i = 0; i < NGW; i++)
        shaper_link_changed(shapers[i]); /* as main.c's on_change does */
    run_for_ms(300);
    for (int i = 0; i < NGW; i++) {
        struct shaper_stats st;
        shaper_get_stats(shapers[i], &st);
        local = i == 0 ? st.local_slots : local + st.local_slots;
    }
    int before = rec.n;
    submit_round_robin(3);
    run_until_count(before + 3, 5000);
    ck_assert_int_eq(rec.n, before + 3);
    uint64_t local2 = 0;
    for (int i = 0; i < NGW; i++) {
        struct shaper_stats st;
        shaper_get_stats(shapers[i], &st);
        local2 += st.local_slots;
    }
    ck_assert_uint_eq(local2, local);
    shapers_stop();
}
END_TEST

static Suite *
exactness_suite(void)
{
    Suite *s = suite_create("shared_rate_limit");
    TCase *tc = tcase_create("shapers");
    tcase_add_checked_fixture(tc, NULL, shapers_stop); /* also on failure */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, three_shapers_on_one_redis_hand_over_as_one);
    tcase_add_test(tc, a_pause_on_one_holds_all);
    tcase_add_test(tc, degraded_while_redis_is_unreachable);
    suite_add_tcase(s, tc);
    tc = tcase_create("redis");
    tcase_add_checked_fixture(tc, NULL, leave_nothing);
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, three_instances_on_one_redis_are_one);
    tcase_add_test(tc, three_instances_one_30s_off_are_one);
    suite_add_tcase(s, tc);
    tc = tcase_create("one");
    tcase_add_checked_fixture(tc, NULL, leave_nothing);
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, one_instance_is_the_ideal_one);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return harness_run_suite(exactness_suite());
}
