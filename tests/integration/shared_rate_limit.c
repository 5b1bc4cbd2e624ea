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
#include <unistd.h>

#include "clock.h"
#include "harness.h"
#include "hx_redis.h"

#define FREEFORM "/api/user/whatsapp/send-freeform"
#define NSENDS 60
#define NGW 3

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

/* Starts gateway i, under `faketime -f +30s` when skewed. */
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
    /* the harness's config file, then the same binary behind faketime */
    char text[4096];
    snprintf(text, sizeof(text),
             "{\"listen\": [\"127.0.0.1:0\"],\n"
             " \"limits\": {\"client_timeout_ms\": 1000,"
             " \"max_body_bytes\": 4096}%s}\n",
             extra);
    write_temp(text, conf[i], sizeof(conf[i]));
    static char keyenv[] = "AUTOCALLS_API_KEY=" HARNESS_UPSTREAM_KEY;
    char *env[] = {keyenv, NULL};
    const char *bin = getenv("WAGATE_BIN");
    char *argv[] = {
        "faketime", "-f",    "+30s", (char *)(bin ? bin : "./wagate"),
        "-c",       conf[i], NULL};
    ck_assert_int_eq(proc_start(&gw[i], argv, env), 0);
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
        unlink(conf[i]);
    }
    bad |= proc_stop(&sb, 5000) != 0;
    if (have_redis)
        hx_redis_stop(&redis);
    ck_assert_int_eq(bad, 0);
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

struct seen {
    double t[NSENDS + 8]; /* arrival, ms at the sandbox, in order */
    int n;
    int refused; /* answered 429 */
};

static void
sandbox_seen(struct seen *s)
{
    json_object *reqs = hx_sandbox_requests(sb.port);
    ck_assert_ptr_nonnull(reqs);
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < json_object_array_length(reqs); i++) {
        json_object *e = json_object_array_get_idx(reqs, i), *v;
        if (!json_object_object_get_ex(e, "path", &v) ||
            strcmp(json_object_get_string(v), FREEFORM) != 0)
            continue;
        if (json_object_object_get_ex(e, "status", &v) &&
            json_object_get_int(v) == 429)
            s->refused++;
        if (s->n < NSENDS + 8 && json_object_object_get_ex(e, "mono_ms", &v))
            s->t[s->n++] = json_object_get_double(v);
    }
    json_object_put(reqs);
}

/* The most arrivals in any window [t, t + 1000) of the sandbox's ms. */
static int
worst_window(const struct seen *s)
{
    int worst = 0;
    for (int i = 0; i < s->n; i++) {
        int c = 0;
        for (int j = i; j < s->n && s->t[j] - s->t[i] < 1000.0; j++)
            c++;
        worst = c > worst ? c : worst;
    }
    return worst;
}

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
    struct seen s;
    sandbox_seen(&s);
    int worst = worst_window(&s);
    double span = s.n > 1 ? s.t[s.n - 1] - s.t[0] : 0;
    fprintf(stderr,
            "exactness: %d gateway(s): %d x 200, %d x 429 (%d late), "
            "sandbox saw %d (%d refused), worst window %d, span %.0f ms\n",
            ngw, ok, limited, late, s.n, s.refused, worst, span);
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
    ck_assert_int_eq(s.refused, 0);
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

#if 0 /* until the Redis backend's config keys land */
START_TEST(three_instances_on_one_redis_are_one)
{
    start_all(NGW, 1, 0);
    exactness();
    stop_all();
}
END_TEST

START_TEST(three_instances_one_30s_off_are_one)
{
    if (system("faketime -f +0s true >/dev/null 2>&1") != 0) {
        fprintf(stderr, "SKIP three_instances_one_30s_off_are_one: "
                        "faketime is not installed (scripts/deps.sh)\n");
        return;
    }
    start_all(NGW, 1, 1);
    exactness();
    stop_all();
}
END_TEST
#endif

static Suite *
exactness_suite(void)
{
    Suite *s = suite_create("shared_rate_limit");
    TCase *tc = tcase_create("one");
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
