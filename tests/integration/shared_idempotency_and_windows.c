/* shared_idempotency_and_windows.c - several real gateways sharing one
 * real Redis (state.backend "redis", SPEC section 11) in front of one
 * real sandbox: an Idempotency-Key is one key for all of them (one send,
 * 409 or a replay elsewhere, 422 for another body everywhere, an unknown
 * outcome replayed by another instance), an instance killed after its
 * send left leaves an unknown outcome (never a second send), one killed
 * while its keyed send waits for its slot frees the key after the lease
 * (then one send), and what one instance learns or is told of a window
 * applies to all (403 answered by another, an inbound event, a delete). */
#include <check.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"
#include "hx_redis.h"
#include <hiredis/hiredis.h>

#define FREEFORM "/api/user/whatsapp/send-freeform"
#define PHONE "+14155550123"
#define ADMIN_TOKEN "admin-tok-3"
#define ADMIN                                                                  \
    "\"admin\": {\"token_sha256\": "                                           \
    "\"39eccedf59001412f7e0557d616c46642ef9eecfd34a79bd27c25f73e328b872\"}"
#define NGW 3

static struct hx_redis rs;
static struct proc sb, gw[NGW];
static char conf[NGW][64];
static int ngw;

/* ---- the processes ---- */

/* Starts n gateways sharing rs in front of sb; upstream: members of
 * "upstream" after the base URL and timeouts (NULL for none). */
static void
start_gateways(int n, const char *upstream)
{
    char extra[2048];
    snprintf(extra, sizeof(extra),
             ", \"upstream\": {\"base_url\": \"http://127.0.0.1:%d\", "
             "\"timeout_ms\": 1500, \"connect_timeout_ms\": 500%s%s}, "
             "\"state\": {\"backend\": \"redis\", \"account\": \"shared\", "
             "\"redis\": {\"url\": \"%s\"}}, " ADMIN,
             sb.port, upstream ? ", " : "", upstream ? upstream : "", rs.url);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(harness_start_gateway(&gw[i], sb.port, extra, conf[i],
                                               sizeof(conf[i])),
                         0);
        ck_assert_msg(proc_wait_log(&gw[i], "redis up", 5000),
                      "gateway %d never reached Redis", i);
    }
    ngw = n;
}

static void
setup(void)
{
    ck_assert_int_eq(hx_redis_start(&rs, 0, NULL), 0);
    ck_assert_int_eq(harness_start_sandbox(&sb, "0", NULL), 0);
    ngw = 0;
}

static void
teardown(void)
{
    int bad = 0; /* a gateway not killed drains and exits 0 */
    for (int i = 0; i < ngw; i++) {
        if (gw[i].pid > 0 && proc_stop(&gw[i], 10000) != 0)
            bad = i + 1;
        unlink(conf[i]);
    }
    proc_stop(&sb, 5000);
    hx_redis_stop(&rs);
    ck_assert_msg(bad == 0, "gateway %d did not exit cleanly", bad - 1);
}

static void
kill9(struct proc *p)
{
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
}

/* ---- requests ---- */

static void
body_of(char *out, size_t n, const char *phone, const char *msg)
{
    snprintf(out, n,
             "{\"sender_id\":12,\"recipient_phone\":\"%s\","
             "\"message\":\"%s\"}",
             phone, msg);
}

static void
post(int port, const char *phone, const char *msg, const char *key,
     struct http_resp *r)
{
    char body[256], kh[300];
    const char *h[2] = {NULL, NULL};
    body_of(body, sizeof(body), phone, msg);
    if (key != NULL) {
        snprintf(kh, sizeof(kh), "Idempotency-Key: %s", key);
        h[0] = kh;
    }
    ck_assert_int_eq(harness_post(port, FREEFORM, body, h, r), 0);
}

static const char *
xwagate(const struct http_resp *r)
{
    static char v[128];
    if (http_header(r, "X-Wagate", v, sizeof(v)) == NULL)
        snprintf(v, sizeof(v), "(none)");
    return v;
}

static int
sb_count_body(const char *needle)
{
    json_object *reqs = hx_sandbox_requests(sb.port), *b;
    int n = 0;
    for (size_t i = 0; reqs && i < json_object_array_length(reqs); i++) {
        json_object *q = json_object_array_get_idx(reqs, i);
        const char *text = json_object_object_get_ex(q, "body", &b)
                               ? json_object_get_string(b)
                               : NULL;
        n += text != NULL && strstr(text, needle) != NULL;
    }
    json_object_put(reqs);
    return n;
}

static void
fault(const char *match, const char *mode)
{
    char json[256];
    snprintf(json, sizeof(json),
             "{\"path\": \"" FREEFORM "\", \"match\": \"%s\", "
             "\"mode\": \"%s\", \"times\": 1}",
             match, mode);
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/faults", json), 200);
}

static void
open_window(const char *phone)
{
    char body[160];
    snprintf(body, sizeof(body),
             "{\"sender_id\":12,\"recipient_phone\":\"%s\"}", phone);
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/inbound", body), 204);
}

/* Waits until the sandbox has seen n requests whose body holds needle. */
static int
wait_sb(const char *needle, int n, int ms)
{
    double end = clock_mono_ms() + ms;
    while (clock_mono_ms() < end) {
        if (sb_count_body(needle) >= n)
            return 1;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* ---- many at once, through curl multi ---- */

struct batch {
    CURLM *m;
    CURL *e[16];
    struct curl_slist *h[16];
    char hdrs[16][1024];
    long status[16];
    int n, running;
};

static size_t
batch_header(char *d, size_t s, size_t n, void *arg)
{
    char *buf = arg;
    size_t have = strlen(buf), add = s * n;
    if (have + add < 1023) {
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
batch_init(struct batch *b)
{
    memset(b, 0, sizeof(*b));
    b->m = curl_multi_init();
}

/* Adds a send of msg to port (key NULL: none); it starts at the next
 * batch_poll(). */
static void
batch_add(struct batch *b, int port, const char *msg, const char *key)
{
    char url[128], body[256], kh[300];
    int i = b->n++;
    ck_assert_int_lt(i, 16);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d" FREEFORM, port);
    body_of(body, sizeof(body), PHONE, msg);
    b->e[i] = curl_easy_init();
    b->h[i] = curl_slist_append(NULL, "Content-Type: application/json");
    if (key != NULL) {
        snprintf(kh, sizeof(kh), "Idempotency-Key: %s", key);
        b->h[i] = curl_slist_append(b->h[i], kh);
    }
    curl_easy_setopt(b->e[i], CURLOPT_URL, url);
    curl_easy_setopt(b->e[i], CURLOPT_HTTPHEADER, b->h[i]);
    curl_easy_setopt(b->e[i], CURLOPT_COPYPOSTFIELDS, body);
    curl_easy_setopt(b->e[i], CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(b->e[i], CURLOPT_HEADERFUNCTION, batch_header);
    curl_easy_setopt(b->e[i], CURLOPT_HEADERDATA, b->hdrs[i]);
    curl_easy_setopt(b->e[i], CURLOPT_TIMEOUT_MS, 20000L);
    curl_multi_add_handle(b->m, b->e[i]);
    b->running = 1;
}

/* Drives the transfers for up to ms; 1 while some still run. */
static int
batch_poll(struct batch *b, int ms)
{
    double end = clock_mono_ms() + ms;
    do {
        curl_multi_perform(b->m, &b->running);
        if (b->running)
            curl_multi_poll(b->m, NULL, 0, 10, NULL);
    } while (b->running && clock_mono_ms() < end);
    return b->running;
}

/* Drives them to their end (bounded), reads the statuses, frees. */
static void
batch_finish(struct batch *b)
{
    batch_poll(b, 25000);
    ck_assert_int_eq(b->running, 0);
    for (int i = 0; i < b->n; i++) {
        curl_easy_getinfo(b->e[i], CURLINFO_RESPONSE_CODE, &b->status[i]);
        curl_multi_remove_handle(b->m, b->e[i]);
        curl_easy_cleanup(b->e[i]);
        curl_slist_free_all(b->h[i]);
    }
    curl_multi_cleanup(b->m);
}

/* Drives b until the key's record in Redis is in state want (or ms). */
static int
poll_until_record(struct batch *b, const char *want, int ms)
{
    redisContext *c = hx_redis_connect(&rs);
    ck_assert_ptr_nonnull(c);
    int seen = 0;
    double end = clock_mono_ms() + ms;
    while (!seen && clock_mono_ms() < end) {
        batch_poll(b, 10);
        redisReply *k = redisCommand(c, "KEYS *idem:*");
        for (size_t i = 0; k && i < k->elements; i++) {
            redisReply *s = redisCommand(c, "HGET %s st", k->element[i]->str);
            seen |=
                s && s->type == REDIS_REPLY_STRING && strcmp(s->str, want) == 0;
            freeReplyObject(s);
        }
        freeReplyObject(k);
    }
    redisFree(c);
    return seen;
}

/* ---- idempotency across instances ---- */

START_TEST(one_key_ten_times_at_once_over_three_sends_once)
{
    start_gateways(3, NULL);
    open_window(PHONE);
    /* the first send stays in flight while the others arrive */
    ck_assert_int_eq(hx_sandbox_control(sb.port, "POST", "/_sandbox/config",
                                        "{\"latency_ms\": 400}"),
                     200);
    struct batch b;
    batch_init(&b);
    for (int i = 0; i < 10; i++)
        batch_add(&b, gw[i % 3].port, "once-across", "key-across-1");
    batch_finish(&b);
    int ok = 0, replays = 0, busy = 0;
    for (int i = 0; i < 10; i++) {
        if (b.status[i] == 409) {
            ck_assert_ptr_nonnull(strstr(b.hdrs[i], "idempotency_in_progress"));
            busy++;
        } else if (b.status[i] == 200 &&
                   strstr(b.hdrs[i], "X-Wagate: replay")) {
            replays++;
        } else {
            ck_assert_msg(b.status[i] == 200 &&
                              strstr(b.hdrs[i], "X-Wagate: upstream"),
                          "answer %d: %ld %s", i, b.status[i], b.hdrs[i]);
            ok++;
        }
    }
    ck_assert_int_eq(ok, 1);
    ck_assert_int_eq(ok + replays + busy, 10);
    ck_assert_int_eq(sb_count_body("once-across"), 1);

    /* afterwards: a replay on every instance, 422 for another body */
    for (int i = 0; i < 3; i++) {
        struct http_resp r;
        post(gw[i].port, PHONE, "once-across", "key-across-1", &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(xwagate(&r), "replay");
        http_free(&r);
        post(gw[i].port, PHONE, "another body", "key-across-1", &r);
        ck_assert_int_eq(r.status, 422);
        ck_assert_ptr_nonnull(strstr(r.body, "IDEMPOTENCY_KEY_REUSED"));
        http_free(&r);
    }
    ck_assert_int_eq(sb_count_body("once-across"), 1);
    ck_assert_int_eq(sb_count_body("another body"), 0);
}
END_TEST

START_TEST(an_unknown_outcome_on_a_replays_on_b)
{
    start_gateways(2, NULL);
    open_window(PHONE);
    fault("reset-once", "reset");
    struct http_resp r;
    post(gw[0].port, PHONE, "reset-once", "key-unknown", &r);
    ck_assert_int_eq(r.status, 502);
    ck_assert_ptr_nonnull(strstr(r.body, "\"outcome\":\"unknown\""));
    http_free(&r);
    post(gw[1].port, PHONE, "reset-once", "key-unknown", &r);
    ck_assert_int_eq(r.status, 502);
    ck_assert_str_eq(xwagate(&r), "replay");
    ck_assert_ptr_nonnull(strstr(r.body, "\"outcome\":\"unknown\""));
    http_free(&r);
    ck_assert_int_eq(sb_count_body("reset-once"), 1);
}
END_TEST

START_TEST(a_killed_after_the_send_left_b_replays_unknown_never_sends)
{
    start_gateways(2, NULL);
    open_window(PHONE);
    fault("hang-then-die", "hang");
    /* A's send leaves and hangs; A dies before any answer */
    struct batch b;
    batch_init(&b);
    batch_add(&b, gw[0].port, "hang-then-die", "key-dies");
    ck_assert(poll_until_record(&b, "sent", 5000));
    ck_assert(wait_sb("hang-then-die", 1, 5000));
    kill9(&gw[0]);
    batch_finish(&b); /* the caller's connection is gone */
    /* B: in progress while A's sent lease runs, then an unknown outcome */
    int busy = 0, unknown = 0;
    double end = clock_mono_ms() + 15000;
    while (!unknown && clock_mono_ms() < end) {
        struct http_resp r;
        post(gw[1].port, PHONE, "hang-then-die", "key-dies", &r);
        if (r.status == 409) {
            busy++;
        } else {
            ck_assert_int_eq(r.status, 502);
            ck_assert_str_eq(xwagate(&r), "replay");
            ck_assert_ptr_nonnull(strstr(r.body, "\"outcome\":\"unknown\""));
            unknown = 1;
        }
        http_free(&r);
        if (!unknown) {
            struct timespec ts = {0, 200000000};
            nanosleep(&ts, NULL); /* pacing the retries, not a sync */
        }
    }
    ck_assert_int_gt(busy, 0);
    ck_assert_int_eq(unknown, 1);
    ck_assert_int_eq(sb_count_body("hang-then-die"), 1); /* never twice */
}
END_TEST

START_TEST(a_killed_while_waiting_for_its_slot_frees_the_key_after_the_lease)
{
    /* one send a second, a short queue: the keyed send's slot is far */
    start_gateways(2, "\"rate_limit_rps\": 1, \"rate_limit_burst\": 1, "
                      "\"max_queue_ms\": 3000");
    open_window(PHONE);
    struct batch b;
    batch_init(&b);
    batch_add(&b, gw[0].port, "filler-1", NULL); /* slots now, in 1 s */
    batch_add(&b, gw[0].port, "filler-2", NULL);
    batch_add(&b, gw[0].port, "queued-then-die", "key-queued");
    /* the keyed send is claimed, waiting for its slot: kill A */
    ck_assert(poll_until_record(&b, "claimed", 5000));
    ck_assert_int_eq(sb_count_body("queued-then-die"), 0);
    kill9(&gw[0]);
    batch_finish(&b);
    /* B's retries: 409 until the lease ends, then one send */
    int busy = 0, sent = 0;
    double end = clock_mono_ms() + 20000;
    while (!sent && clock_mono_ms() < end) {
        struct http_resp r;
        post(gw[1].port, PHONE, "queued-then-die", "key-queued", &r);
        if (r.status == 409) {
            busy++;
        } else {
            ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
            ck_assert_str_eq(xwagate(&r), "upstream");
            sent = 1;
        }
        http_free(&r);
        if (!sent) {
            struct timespec ts = {0, 250000000};
            nanosleep(&ts, NULL); /* pacing the retries, not a sync */
        }
    }
    ck_assert_int_gt(busy, 0);
    ck_assert_int_eq(sent, 1);
    ck_assert_int_eq(sb_count_body("queued-then-die"), 1);
    struct http_resp r;
    post(gw[1].port, PHONE, "queued-then-die", "key-queued", &r);
    ck_assert_str_eq(xwagate(&r), "replay");
    http_free(&r);
    ck_assert_int_eq(sb_count_body("queued-then-die"), 1);
}
END_TEST

/* ---- shared windows ---- */

static int
admin(int port, const char *method, const char *path, const char *body)
{
    struct http_resp r;
    const char *h[] = {"Authorization: Bearer " ADMIN_TOKEN,
                       "Content-Type: application/json", NULL};
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    ck_assert_int_eq(http_do(method, url, h, body, body ? strlen(body) : 0, &r),
                     0);
    int st = (int)r.status;
    http_free(&r);
    return st;
}

START_TEST(what_one_learns_or_is_told_of_a_window_applies_to_all)
{
    start_gateways(2, NULL);
    /* no window at the sandbox: A learns closed from its 403 */
    struct http_resp r;
    post(gw[0].port, PHONE, "learn-closed", NULL, &r);
    ck_assert_int_eq(r.status, 403);
    ck_assert_str_eq(xwagate(&r), "upstream");
    http_free(&r);
    ck_assert_int_eq(sb_count_body("learn-closed"), 1);
    /* B answers it itself */
    post(gw[1].port, PHONE, "b-short", NULL, &r);
    ck_assert_int_eq(r.status, 403);
    ck_assert_str_eq(xwagate(&r), "gateway; reason=session_expired");
    ck_assert_ptr_nonnull(strstr(r.body, "SESSION_EXPIRED"));
    http_free(&r);
    ck_assert_int_eq(sb_count_body("b-short"), 0);

    /* an inbound event told to B: A forwards */
    open_window(PHONE);
    ck_assert_int_eq(admin(gw[1].port, "POST", "/admin/sessions/inbound",
                           "{\"sender_id\": 12, \"recipient_phone\": \"" PHONE
                           "\"}"),
                     204);
    post(gw[0].port, PHONE, "a-after-inbound", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(xwagate(&r), "upstream");
    http_free(&r);
    ck_assert_int_eq(sb_count_body("a-after-inbound"), 1);

    /* closed again (another recipient, learned by B); a delete on A: B
     * forwards */
    const char *other = "+14155550199";
    post(gw[1].port, other, "learn-closed-2", NULL, &r);
    ck_assert_int_eq(r.status, 403);
    http_free(&r);
    post(gw[0].port, other, "a-short", NULL, &r);
    ck_assert_str_eq(xwagate(&r), "gateway; reason=session_expired");
    http_free(&r);
    ck_assert_int_eq(admin(gw[0].port, "DELETE",
                           "/admin/sessions?sender_id=12&recipient_phone="
                           "%2B14155550199",
                           NULL),
                     204);
    post(gw[1].port, other, "b-after-delete", NULL, &r);
    ck_assert_str_eq(xwagate(&r), "upstream");
    http_free(&r);
    ck_assert_int_eq(sb_count_body("b-after-delete"), 1);
    ck_assert_int_eq(sb_count_body("a-short"), 0);
}
END_TEST

static Suite *
shared_suite(void)
{
    Suite *s = suite_create("shared_idempotency_and_windows");
    TCase *tc = tcase_create("shared");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, one_key_ten_times_at_once_over_three_sends_once);
    tcase_add_test(tc, an_unknown_outcome_on_a_replays_on_b);
    tcase_add_test(tc,
                   a_killed_after_the_send_left_b_replays_unknown_never_sends);
    tcase_add_test(
        tc, a_killed_while_waiting_for_its_slot_frees_the_key_after_the_lease);
    tcase_add_test(tc, what_one_learns_or_is_told_of_a_window_applies_to_all);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return harness_run_suite(shared_suite());
}
