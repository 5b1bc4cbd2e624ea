/* rate_shaping_and_idempotency.c - rate shaping and idempotent sends, end
 * to end: the real wagate in front of the real sandbox. */
#include <check.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "clock.h"

#define FREEFORM "/api/user/whatsapp/send-freeform"
#define ADMIN_TOKEN "admin-tok-3"
#define ADMIN                                                                  \
    "\"admin\": {\"token_sha256\": "                                           \
    "\"39eccedf59001412f7e0557d616c46642ef9eecfd34a79bd27c25f73e328b872\"}"

static struct proc sb, gw;
static char conf[64];

static void
start(const char *sb_rate, const char *upstream_extra)
{
    char extra[1024];
    ck_assert_int_eq(harness_start_sandbox(&sb, sb_rate, NULL), 0);
    /* a later "upstream" replaces the harness's */
    snprintf(extra, sizeof(extra),
             ", \"upstream\": {\"base_url\": \"http://127.0.0.1:%d\", "
             "\"timeout_ms\": 5000, %s}, " ADMIN,
             sb.port, upstream_extra);
    ck_assert_int_eq(
        harness_start_gateway(&gw, sb.port, extra, conf, sizeof(conf)), 0);
}

static void
stop(void)
{
    int g = proc_stop(&gw, 15000), s = proc_stop(&sb, 5000);
    unlink(conf);
    ck_assert_int_eq(g, 0);
    ck_assert_int_eq(s, 0);
}

static void
setup_10rps_burst2(void)
{
    start("0", "\"rate_limit_rps\": 10, \"rate_limit_burst\": 2, "
               "\"max_queue_ms\": 20000");
}
static void
setup_short_queue(void)
{
    start("0", "\"rate_limit_rps\": 5, \"max_queue_ms\": 300");
}
static void
setup_sandbox_limited(void)
{
    /* the gateway believes in 50/s; the sandbox allows 5/s */
    start("5", "\"rate_limit_rps\": 50, \"rate_limit_burst\": 10");
}
static void
setup_plain(void)
{
    start("0", "\"rate_limit_rps\": 100, \"rate_limit_burst\": 100");
}

static void
open_window(int i)
{
    char body[128];
    snprintf(body, sizeof(body),
             "{\"sender_id\":12,\"recipient_phone\":\"+1415556%04d\"}", i);
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/inbound", body), 204);
}

static void
send_body(char *out, size_t n, int i, const char *msg)
{
    snprintf(out, n,
             "{\"sender_id\":12,\"recipient_phone\":\"+1415556%04d\","
             "\"message\":\"%s\"}", i, msg);
}

/* ---- many at once through curl multi ---- */

#define NMAX 64

struct batch {
    CURLM *m;
    CURL *e[NMAX];
    struct curl_slist *h[NMAX];
    char body[NMAX][200];
    char hdrs[NMAX][512];
    size_t hlen[NMAX];
    long status[NMAX];
    int n;
};

static size_t
batch_header(char *d, size_t s, size_t n, void *arg)
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
batch_start(struct batch *b, int n, const char *msg, const char *idem)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d" FREEFORM, gw.port);
    memset(b, 0, sizeof(*b));
    b->m = curl_multi_init();
    b->n = n;
    for (int i = 0; i < n; i++) {
        send_body(b->body[i], sizeof(b->body[i]), i, msg);
        b->e[i] = curl_easy_init();
        b->h[i] = curl_slist_append(NULL, "Content-Type: application/json");
        if (idem)
            b->h[i] = curl_slist_append(b->h[i], idem);
        curl_easy_setopt(b->e[i], CURLOPT_URL, url);
        curl_easy_setopt(b->e[i], CURLOPT_HTTPHEADER, b->h[i]);
        curl_easy_setopt(b->e[i], CURLOPT_POSTFIELDS, b->body[i]);
        curl_easy_setopt(b->e[i], CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(b->e[i], CURLOPT_HEADERFUNCTION, batch_header);
        curl_easy_setopt(b->e[i], CURLOPT_HEADERDATA, b->hdrs[i]);
        curl_easy_setopt(b->e[i], CURLOPT_TIMEOUT_MS, 30000L);
        curl_multi_add_handle(b->m, b->e[i]);
    }
}

/* Drives the batch until done or deadline_ms passes; 1 when done. */
static int
batch_run(struct batch *b, double deadline_ms)
{
    int running = 1;
    double end = clock_mono_ms() + deadline_ms;
    while (running && clock_mono_ms() < end) {
        curl_multi_perform(b->m, &running);
        if (running)
            curl_multi_poll(b->m, NULL, 0, 50, NULL);
    }
    for (int i = 0; i < b->n && !running; i++)
        curl_easy_getinfo(b->e[i], CURLINFO_RESPONSE_CODE, &b->status[i]);
    return !running;
}

static void
batch_free(struct batch *b)
{
    for (int i = 0; i < b->n; i++) {
        curl_multi_remove_handle(b->m, b->e[i]);
        curl_easy_cleanup(b->e[i]);
        curl_slist_free_all(b->h[i]);
    }
    curl_multi_cleanup(b->m);
}

/* The arrival times the sandbox recorded, in order. */
static int
arrivals(double *out, int max)
{
    json_object *reqs = hx_sandbox_requests(sb.port);
    int n = 0;
    for (size_t i = 0; reqs && i < json_object_array_length(reqs) && n < max;
         i++) {
        json_object *t;
        if (json_object_object_get_ex(json_object_array_get_idx(reqs, i),
                                      "mono_ms", &t))
            out[n++] = json_object_get_double(t);
    }
    json_object_put(reqs);
    return n;
}

static int
worst_window(const double *t, int n)
{
    int worst = 0;
    for (int i = 0; i < n; i++) {
        int c = 0;
        for (int j = i; j < n && t[j] - t[i] < 1000.0; j++)
            c++;
        worst = c > worst ? c : worst;
    }
    return worst;
}

START_TEST(shaping_keeps_the_rate_and_queues)
{
    struct batch b;
    double t[NMAX];
    for (int i = 0; i < 40; i++)
        open_window(i);
    batch_start(&b, 40, "shaped", NULL);
    ck_assert(batch_run(&b, 20000));
    for (int i = 0; i < 40; i++)
        ck_assert_msg(b.status[i] == 200, "send %d: %ld", i, b.status[i]);
    batch_free(&b);
    int n = arrivals(t, NMAX);
    ck_assert_int_eq(n, 40);
    int worst = worst_window(t, n);
    ck_assert_msg(worst <= 12, "a 1-second window held %d sends", worst);
    ck_assert_msg(t[n - 1] - t[0] >= 3500, "40 sends took only %.0f ms",
                  t[n - 1] - t[0]);
}
END_TEST

START_TEST(a_full_queue_answers_429_and_sends_nothing)
{
    struct batch b;
    char ra[64];
    for (int i = 0; i < 10; i++)
        open_window(i);
    batch_start(&b, 10, "crowded", NULL);
    ck_assert(batch_run(&b, 10000));
    int ok = 0, limited = 0;
    for (int i = 0; i < 10; i++) {
        if (b.status[i] == 200)
            ok++;
        if (b.status[i] == 429) {
            limited++;
            const char *h = strstr(b.hdrs[i], "Retry-After: ");
            ck_assert_ptr_nonnull(h);
            snprintf(ra, sizeof(ra), "%s", h + 13);
            ck_assert_int_ge(atoi(ra), 1);
            ck_assert_ptr_nonnull(
                strstr(b.hdrs[i], "X-Wagate: gateway; reason=rate_limited"));
        }
    }
    batch_free(&b);
    /* 5/s with 300 ms of queue: two go, the rest are refused */
    ck_assert_int_ge(limited, 1);
    ck_assert_int_eq(ok + limited, 10);
    ck_assert_int_eq(hx_sandbox_count(sb.port), ok);
}
END_TEST

static int
admin_queue_depth(void)
{
    struct http_resp r;
    const char *h[] = {"Authorization: Bearer " ADMIN_TOKEN, NULL};
    harness_get(gw.port, "GET", "/admin/stats", h, &r);
    json_object *o = json_tokener_parse(r.body), *u, *l, *d;
    int depth = -1;
    if (o && json_object_object_get_ex(o, "upstream", &u) &&
        json_object_object_get_ex(u, "send_limiter", &l) &&
        json_object_object_get_ex(l, "queue_depth", &d))
        depth = json_object_get_int(d);
    json_object_put(o);
    http_free(&r);
    return depth;
}

START_TEST(precheck_answers_at_once_during_a_backlog)
{
    struct batch b;
    for (int i = 0; i < 20; i++)
        open_window(i);
    batch_start(&b, 20, "backlog", NULL);
    /* drive until the gateway holds a queue (an event, not a sleep) */
    double end = clock_mono_ms() + 5000;
    int running = 1, depth = 0;
    while (clock_mono_ms() < end && depth < 5) {
        curl_multi_perform(b.m, &running);
        curl_multi_poll(b.m, NULL, 0, 20, NULL);
        depth = admin_queue_depth();
    }
    ck_assert_int_ge(depth, 5);
    char *long_body = malloc(5000);
    char *p = long_body + sprintf(long_body, "{\"sender_id\":12,\"recipient_"
                                             "phone\":\"+14155560001\","
                                             "\"message\":\"");
    memset(p, 'x', 4097);
    strcpy(p + 4097, "\"}");
    struct http_resp r;
    ck_assert_int_eq(harness_post(gw.port, FREEFORM, long_body, NULL, &r), 0);
    free(long_body);
    ck_assert_int_eq(r.status, 413); /* 4 KiB body limit in this fixture */
    ck_assert_msg(r.total_ms < 500, "waited %.0f ms behind the queue",
                  r.total_ms);
    http_free(&r);
    ck_assert_int_ge(admin_queue_depth(), 1); /* the backlog still waits */
    ck_assert(batch_run(&b, 20000));
    batch_free(&b);
}
END_TEST

START_TEST(upstream_429_is_relayed_and_pauses)
{
    struct batch b;
    for (int i = 0; i < 8; i++)
        open_window(i);
    batch_start(&b, 8, "too fast", NULL);
    ck_assert(batch_run(&b, 10000));
    int relayed = 0;
    for (int i = 0; i < 8; i++)
        if (b.status[i] == 429) {
            relayed++;
            ck_assert_ptr_nonnull(strstr(b.hdrs[i], "X-Wagate: upstream"));
        }
    batch_free(&b);
    ck_assert_int_ge(relayed, 1);
    /* paused for the sandbox's Retry-After (1 s): the next send waits for
     * it instead of being refused again */
    struct http_resp r;
    char body[200];
    send_body(body, sizeof(body), 1, "after the pause");
    ck_assert_int_eq(harness_post(gw.port, FREEFORM, body, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    http_free(&r);
    struct http_resp st;
    const char *h[] = {"Authorization: Bearer " ADMIN_TOKEN, NULL};
    harness_get(gw.port, "GET", "/admin/stats", h, &st);
    ck_assert_ptr_nonnull(strstr(st.body, "\"upstream_429s\":"));
    ck_assert_ptr_null(strstr(st.body, "\"upstream_429s\":0"));
    http_free(&st);
}
END_TEST

/* ---- idempotency ---- */

static long
post_idem(int i, const char *msg, const char *key, struct http_resp *r)
{
    char body[200], hdr[300];
    send_body(body, sizeof(body), i, msg);
    snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s", key);
    const char *h[] = {hdr, NULL};
    ck_assert_int_eq(harness_post(gw.port, FREEFORM, body, h, r), 0);
    return r->status;
}

START_TEST(idempotent_replay_and_reuse)
{
    struct http_resp a, b;
    char v[128];
    open_window(1);
    ck_assert_int_eq(post_idem(1, "once", "key-1", &a), 200);
    ck_assert_int_eq(post_idem(1, "once", "key-1", &b), 200);
    ck_assert_str_eq(http_header(&b, "X-Wagate", v, sizeof(v)), "replay");
    ck_assert_uint_eq(a.body_len, b.body_len);
    ck_assert(memcmp(a.body, b.body, a.body_len) == 0);
    http_free(&a);
    http_free(&b);
    ck_assert_int_eq(hx_sandbox_count(sb.port), 1);
    ck_assert_int_eq(post_idem(1, "another text", "key-1", &a), 422);
    ck_assert_ptr_nonnull(strstr(a.body, "IDEMPOTENCY_KEY_REUSED"));
    http_free(&a);
    ck_assert_int_eq(post_idem(1, "once", "bad key", &a), 422);
    ck_assert_ptr_nonnull(strstr(a.body, "\"field\":\"Idempotency-Key\""));
    http_free(&a);
    ck_assert_int_eq(hx_sandbox_count(sb.port), 1);
}
END_TEST

START_TEST(idempotency_frees_the_key_after_5xx)
{
    struct http_resp a;
    char body[200];
    /* the sandbox answers 503 twice (a fault: an offline sender's 503
     * would be learned, and the retry answered by the gateway), which is
     * not kept */
    snprintf(body, sizeof(body), "{\"sender_id\":12,\"recipient_phone\":"
                                 "\"+14155560001\",\"message\":\"m-5xx\"}");
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/faults",
                           "{\"mode\":\"status\",\"status\":503,"
                           "\"match\":\"m-5xx\",\"times\":2,"
                           "\"body\":{\"success\":false}}"),
        200);
    const char *h[] = {"Idempotency-Key: key-5xx", NULL};
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(harness_post(gw.port, FREEFORM, body, h, &a), 0);
        ck_assert_int_eq(a.status, 503);
        http_free(&a);
    }
    ck_assert_int_eq(hx_sandbox_count(sb.port), 2);
}
END_TEST

START_TEST(idempotency_in_progress_conflict)
{
    struct batch b;
    struct http_resp r;
    open_window(0);
    hx_sandbox_control(sb.port, "POST", "/_sandbox/config",
                       "{\"latency_ms\":1500}");
    batch_start(&b, 1, "slow", "Idempotency-Key: key-slow");
    /* until the sandbox has the first one (an event) */
    double end = clock_mono_ms() + 5000;
    int running = 1;
    while (clock_mono_ms() < end && hx_sandbox_count(sb.port) < 1) {
        curl_multi_perform(b.m, &running);
        curl_multi_poll(b.m, NULL, 0, 20, NULL);
    }
    ck_assert_int_eq(hx_sandbox_count(sb.port), 1);
    ck_assert_int_eq(post_idem(0, "slow", "key-slow", &r), 409);
    ck_assert_ptr_nonnull(strstr(r.body, "IDEMPOTENCY_IN_PROGRESS"));
    http_free(&r);
    ck_assert(batch_run(&b, 10000));
    ck_assert_int_eq(b.status[0], 200);
    batch_free(&b);
    ck_assert_int_eq(post_idem(0, "slow", "key-slow", &r), 200);
    http_free(&r);
    ck_assert_int_eq(hx_sandbox_count(sb.port), 1);
}
END_TEST

START_TEST(a_caller_that_hangs_up_still_gets_the_outcome)
{
    char url[128], body[200];
    open_window(3);
    hx_sandbox_control(sb.port, "POST", "/_sandbox/config",
                       "{\"latency_ms\":1000}");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d" FREEFORM, gw.port);
    send_body(body, sizeof(body), 3, "hang up");
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Idempotency-Key: key-gone");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 300L); /* gives up mid-send */
    ck_assert_int_eq(curl_easy_perform(e), CURLE_OPERATION_TIMEDOUT);
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    /* retry until the first send's outcome is kept (bounded: 5 s) */
    struct http_resp r;
    char v[64];
    long st = 409;
    for (int i = 0; i < 50 && st == 409; i++) {
        st = post_idem(3, "hang up", "key-gone", &r);
        if (st == 409) {
            http_free(&r);
            usleep(100 * 1000); /* pacing retries, as a caller would */
        }
    }
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(http_header(&r, "X-Wagate", v, sizeof(v)), "replay");
    http_free(&r);
    ck_assert_int_eq(hx_sandbox_count(sb.port), 1);
}
END_TEST

static Suite *
policy_suite(void)
{
    Suite *s = suite_create("rate_shaping_and_idempotency");
    TCase *t1 = tcase_create("shaping");
    tcase_add_checked_fixture(t1, setup_10rps_burst2, stop);
    tcase_set_timeout(t1, 60);
    tcase_add_test(t1, shaping_keeps_the_rate_and_queues);
    tcase_add_test(t1, precheck_answers_at_once_during_a_backlog);
    suite_add_tcase(s, t1);
    TCase *t2 = tcase_create("short_queue");
    tcase_add_checked_fixture(t2, setup_short_queue, stop);
    tcase_set_timeout(t2, 60);
    tcase_add_test(t2, a_full_queue_answers_429_and_sends_nothing);
    suite_add_tcase(s, t2);
    TCase *t3 = tcase_create("sandbox_429");
    tcase_add_checked_fixture(t3, setup_sandbox_limited, stop);
    tcase_set_timeout(t3, 60);
    tcase_add_test(t3, upstream_429_is_relayed_and_pauses);
    suite_add_tcase(s, t3);
    TCase *t4 = tcase_create("idempotency");
    tcase_add_checked_fixture(t4, setup_plain, stop);
    tcase_set_timeout(t4, 60);
    tcase_add_test(t4, idempotent_replay_and_reuse);
    tcase_add_test(t4, idempotency_frees_the_key_after_5xx);
    tcase_add_test(t4, idempotency_in_progress_conflict);
    tcase_add_test(t4, a_caller_that_hangs_up_still_gets_the_outcome);
    suite_add_tcase(s, t4);
    return s;
}

int
main(void)
{
    return harness_run_suite(policy_suite());
}
