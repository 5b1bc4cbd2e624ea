/* refusals_review.c - a hostile review of the learned refusals (SPEC
 * section 4a) through the real gateway and the real sandbox. Each test
 * names the promise it holds the gateway to (SPEC.md or the README's
 * "Learned refusals"); a test marked REVIEW-DEFECT failed on the branch
 * it was written against (h-rev11 at ff20f93); the others held there. */
#include <check.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"
#include "hx_redis.h"

#define FREEFORM "/api/user/whatsapp/send-freeform"
#define TEMPLATE "/api/user/whatsapp/send"
#define ONLINE 12
#define OFFLINE 13 /* offline in the sandbox's default senders */
#define TOKEN_ADMIN "admin-tok-3"
#define ADMIN                                                                  \
    ", \"admin\": {\"token_sha256\": "                                         \
    "\"39eccedf59001412f7e0557d616c46642ef9eecfd34a79bd27c25f73e328b872\"}"
static const char *const admin_auth[] = {"Authorization: Bearer " TOKEN_ADMIN,
                                         NULL};

static struct proc sb, gw;
static char gw_conf[64];

/* 5/s as the account allows; max_queue_ms given */
#define SHAPED                                                                 \
    ", \"upstream\": {\"base_url\": \"http://127.0.0.1:%d\","                 \
    " \"rate_limit_rps\": 5, \"rate_limit_burst\": 1,"                        \
    " \"max_queue_ms\": %d, \"timeout_ms\": 3000}"

static void
start(int max_queue_ms, const char *refusals)
{
    char extra[512];
    ck_assert_int_eq(harness_start_sandbox(&sb, "5", NULL), 0);
    snprintf(extra, sizeof(extra), SHAPED ADMIN "%s%s", sb.port, max_queue_ms,
             refusals ? ", \"refusals\": " : "", refusals ? refusals : "");
    ck_assert_int_eq(
        harness_start_gateway(&gw, sb.port, extra, gw_conf, sizeof(gw_conf)),
        0);
}

static void
teardown(void)
{
    int gst = proc_stop(&gw, 5000);
    int sst = proc_stop(&sb, 5000);
    unlink(gw_conf);
    ck_assert_int_eq(gst, 0);
    ck_assert_int_eq(sst, 0);
}

static void
phone_of(int i, char *out, size_t n)
{
    snprintf(out, n, "+1415557%04d", i % 10000);
}

static long
send_ff(int sender, int i, const char *const *h, struct http_resp *r)
{
    char body[192], phone[24];
    phone_of(i, phone, sizeof(phone));
    snprintf(body, sizeof(body),
             "{\"sender_id\":%d,\"recipient_phone\":\"%s\","
             "\"message\":\"review %d\"}",
             sender, phone, i);
    ck_assert_int_eq(harness_post(gw.port, FREEFORM, body, h, r), 0);
    return r->status;
}

static void
open_window(int sender, int i)
{
    char body[128], phone[24];
    phone_of(i, phone, sizeof(phone));
    snprintf(body, sizeof(body),
             "{\"sender_id\":%d,\"recipient_phone\":\"%s\"}", sender, phone);
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/inbound", body), 204);
}

static void
sender_status(int sender, const char *status)
{
    char body[96];
    snprintf(body, sizeof(body), "{\"sender_status\":{\"%d\":\"%s\"}}", sender,
             status);
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/config", body), 200);
}

static void
xwagate_is(const struct http_resp *r, const char *want)
{
    char xw[96];
    ck_assert_ptr_nonnull(http_header(r, "X-Wagate", xw, sizeof(xw)));
    ck_assert_str_eq(xw, want);
}

/* Reads GET /admin/refusals until sender's entry (0: the balance) is no
 * longer trusted (bounded: 6 s). 1 when it came. */
static int
wait_untrusted(int sender)
{
    double end = clock_mono_ms() + 6000;
    while (clock_mono_ms() < end) {
        struct http_resp r;
        ck_assert_int_eq(
            harness_get(gw.port, "GET", "/admin/refusals", admin_auth, &r),
            0);
        ck_assert_int_eq(r.status, 200);
        json_object *o = json_tokener_parse(r.body), *list;
        http_free(&r);
        ck_assert_ptr_nonnull(o);
        ck_assert(json_object_object_get_ex(o, "refusals", &list));
        int trusted = 0;
        for (size_t i = 0; i < json_object_array_length(list); i++) {
            json_object *e = json_object_array_get_idx(list, i), *v;
            json_object_object_get_ex(e, "sender_id", &v);
            int s = v ? json_object_get_int(v) : 0;
            json_object_object_get_ex(e, "trusted", &v);
            if (s == sender && json_object_get_boolean(v))
                trusted = 1;
        }
        json_object_put(o);
        if (!trusted)
            return 1;
        usleep(20000);
    }
    return 0;
}

/* Sends from sender to path that reached the sandbox. */
static int
sandbox_sends_from(int sender, const char *path)
{
    json_object *reqs = hx_sandbox_requests(sb.port);
    ck_assert_ptr_nonnull(reqs);
    char needle[32];
    snprintf(needle, sizeof(needle), "\"sender_id\":%d,", sender);
    int n = 0;
    for (size_t i = 0; i < json_object_array_length(reqs); i++) {
        json_object *q = json_object_array_get_idx(reqs, i), *v;
        if (!json_object_object_get_ex(q, "path", &v) ||
            strcmp(json_object_get_string(v), path) != 0)
            continue;
        if (json_object_object_get_ex(q, "body", &v) &&
            strstr(json_object_get_string(v), needle) != NULL)
            n++;
    }
    json_object_put(reqs);
    return n;
}

/* A sender learned offline, then back online at the sandbox, with the
 * trust of its entry run out: the next send is the probe. */
static void
offline_then_back_online_untrusted(void)
{
    struct http_resp r;
    ck_assert_int_eq(send_ff(OFFLINE, 1, NULL, &r), 503);
    xwagate_is(&r, "upstream");
    http_free(&r);
    ck_assert_int_eq(send_ff(OFFLINE, 1, NULL, &r), 503);
    xwagate_is(&r, "gateway; reason=sender_offline");
    http_free(&r);
    sender_status(OFFLINE, "online");
    ck_assert(wait_untrusted(OFFLINE));
}

/* REVIEW-DEFECT, fixed (state_refusal_unprobe: an unspent probe gives
 * its trust back). README: "When the trust runs out, the next matching send
 * goes to the provider as a probe ... A sender that comes back online has
 * its sends refused by the gateway for at most sender_offline_s plus one
 * round trip". SPEC 3 puts the refusals (9) before the session cache
 * (10): the probe is decided at step 9 (the entry is trusted again from
 * then) and a window known closed then answers it at step 10, so the
 * probe never reaches the provider, and the sender, online again, stays
 * refused for a whole new period. */
START_TEST(a_probe_answered_by_the_session_cache_is_not_spent)
{
    start(20000, "{\"sender_offline_s\": 2}");
    struct http_resp r;
    /* the gateway learns (13, recipient 50) closed: the sandbox checks
     * the window once the sender is online */
    sender_status(OFFLINE, "online");
    ck_assert_int_eq(send_ff(OFFLINE, 50, NULL, &r), 403);
    xwagate_is(&r, "upstream");
    http_free(&r);
    sender_status(OFFLINE, "offline");
    offline_then_back_online_untrusted();
    /* the trust ran out; this send's window is known closed */
    ck_assert_int_eq(send_ff(OFFLINE, 50, NULL, &r), 403);
    /* today the cache answers it (X-Wagate: gateway; reason=
     * session_expired); a fix may also let the probe through */
    http_free(&r);
    int seen = sandbox_sends_from(OFFLINE, FREEFORM);
    /* nothing went upstream since the entry's trust ran out: this one
     * must be the probe, and the sender is online */
    open_window(OFFLINE, 2);
    ck_assert_int_eq(send_ff(OFFLINE, 2, NULL, &r), 200);
    xwagate_is(&r, "upstream");
    http_free(&r);
    ck_assert_int_eq(sandbox_sends_from(OFFLINE, FREEFORM), seen + 1);
}
END_TEST

/* REVIEW-DEFECT, fixed (unprobe). Same promise: a probe refused 429 RATE_LIMITED by the
 * gateway's own limiter (its slot beyond max_queue_ms, here behind an
 * upstream 429's pause) never left either, yet the entry is trusted
 * again for a whole period. */
START_TEST(a_probe_refused_by_the_limiter_is_not_spent)
{
    start(1000, "{\"sender_offline_s\": 2}");
    struct http_resp r;
    offline_then_back_online_untrusted();
    /* an upstream 429 with Retry-After: 5 pauses the limiter */
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/faults",
                           "{\"mode\":\"status\",\"status\":429,"
                           "\"headers\":{\"Retry-After\":\"5\"},"
                           "\"body\":{\"success\":false},"
                           "\"match\":\"+14155579999\",\"times\":1}"),
        200);
    open_window(ONLINE, 9999);
    ck_assert_int_eq(send_ff(ONLINE, 9999, NULL, &r), 429);
    xwagate_is(&r, "upstream");
    http_free(&r);
    /* the probe: its slot is 5 s away, beyond max_queue_ms */
    ck_assert_int_eq(send_ff(OFFLINE, 3, NULL, &r), 429);
    http_free(&r);
    ck_assert_int_eq(
        harness_get(gw.port, "DELETE", "/admin/pause", admin_auth, &r), 0);
    ck_assert_int_eq(r.status, 204);
    http_free(&r);
    int seen = sandbox_sends_from(OFFLINE, FREEFORM);
    open_window(OFFLINE, 3);
    ck_assert_int_eq(send_ff(OFFLINE, 3, NULL, &r), 200);
    xwagate_is(&r, "upstream");
    http_free(&r);
    ck_assert_int_eq(sandbox_sends_from(OFFLINE, FREEFORM), seen + 1);
}
END_TEST

/* REVIEW-DEFECT, fixed (a probe is spent only by that refusal again or
 * a 2xx). README: "A topped-up balance is seen within balance_s
 * (10 s)", and the entry is trusted again from the probe "until the
 * probe's answer replaces it (a refusal again) or clears it (a 2xx)".
 * A probe whose answer is neither (here the provider's 403
 * SESSION_EXPIRED: the sandbox, like the provider's page, checks the
 * window before the balance) leaves the balance trusted for a whole new
 * period: a topped-up account stays refused, by the gateway alone. */
START_TEST(a_probe_answer_that_says_nothing_does_not_renew_the_trust)
{
    start(20000, "{\"balance_s\": 2}");
    struct http_resp r;
    open_window(ONLINE, 1);
    open_window(ONLINE, 2);
    ck_assert_int_eq(hx_sandbox_control(sb.port, "POST", "/_sandbox/config",
                                        "{\"balance\":0}"),
                     200);
    ck_assert_int_eq(send_ff(ONLINE, 1, NULL, &r), 402);
    xwagate_is(&r, "upstream");
    http_free(&r);
    ck_assert_int_eq(send_ff(ONLINE, 1, NULL, &r), 402);
    xwagate_is(&r, "gateway; reason=insufficient_balance");
    http_free(&r);
    ck_assert_int_eq(hx_sandbox_control(sb.port, "POST", "/_sandbox/config",
                                        "{\"balance\":100}"),
                     200);
    ck_assert(wait_untrusted(0));
    /* the probe: a window the sandbox has never seen open */
    ck_assert_int_eq(send_ff(ONLINE, 77, NULL, &r), 403);
    xwagate_is(&r, "upstream");
    http_free(&r);
    /* the account can pay again, and nothing the provider said since the
     * trust ran out says otherwise */
    ck_assert_int_eq(send_ff(ONLINE, 2, NULL, &r), 200);
    xwagate_is(&r, "upstream");
    http_free(&r);
}
END_TEST

/* ---- one send in the background (curl multi, driven by the test) ---- */

struct bg {
    CURLM *m;
    CURL *e;
    struct curl_slist *h;
    char body[192];
    long status;
    int done;
};

static void
bg_start(struct bg *b, int sender, int i)
{
    char url[128], phone[24];
    memset(b, 0, sizeof(*b));
    phone_of(i, phone, sizeof(phone));
    snprintf(b->body, sizeof(b->body),
             "{\"sender_id\":%d,\"recipient_phone\":\"%s\","
             "\"message\":\"review %d\"}",
             sender, phone, i);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d" FREEFORM, gw.port);
    b->m = curl_multi_init();
    b->e = curl_easy_init();
    b->h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(b->e, CURLOPT_URL, url);
    curl_easy_setopt(b->e, CURLOPT_HTTPHEADER, b->h);
    curl_easy_setopt(b->e, CURLOPT_POSTFIELDS, b->body);
    curl_easy_setopt(b->e, CURLOPT_TIMEOUT_MS, 15000L);
    curl_multi_add_handle(b->m, b->e);
}

/* Drives it for up to ms; 1 once it is answered. */
static int
bg_run(struct bg *b, double ms)
{
    double end = clock_mono_ms() + ms;
    while (!b->done && clock_mono_ms() < end) {
        int running, q;
        curl_multi_perform(b->m, &running);
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(b->m, &q)) != NULL)
            if (msg->msg == CURLMSG_DONE) {
                curl_easy_getinfo(b->e, CURLINFO_RESPONSE_CODE, &b->status);
                b->done = 1;
            }
        if (!b->done)
            curl_multi_poll(b->m, NULL, 0, 10, NULL);
    }
    return b->done;
}

static void
bg_free(struct bg *b)
{
    curl_multi_remove_handle(b->m, b->e);
    curl_easy_cleanup(b->e);
    curl_slist_free_all(b->h);
    curl_multi_cleanup(b->m);
}

/* REVIEW-DEFECT, fixed (relay.c mark_older: a refusal older than a 2xx
 * teaches nothing). SPEC 4a: sender offline is "cleared by any 2xx send from
 * that sender", and SPEC 11 "the newest learned wins". A send that left
 * while the sender was offline but whose answer comes late (a slow
 * upstream) is learned after a 2xx from a send that left later: the
 * older news wins, and the sender, online, is refused for a whole period
 * (and its queued sends withdrawn). */
START_TEST(a_late_refusal_does_not_undo_a_later_2xx)
{
    start(20000, NULL); /* sender_offline_s 30 */
    struct http_resp r;
    /* the first send's 503 comes one byte every 5 ms (about 1.2 s) */
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/faults",
                           "{\"mode\":\"slow\",\"delay_ms\":5,"
                           "\"match\":\"+14155570001\",\"times\":1}"),
        200);
    int before = hx_sandbox_count(sb.port);
    struct bg a;
    bg_start(&a, OFFLINE, 1);
    /* until the sandbox has it (it is judged there: offline) */
    double end = clock_mono_ms() + 3000;
    while (hx_sandbox_count(sb.port) == before && clock_mono_ms() < end)
        bg_run(&a, 10);
    ck_assert_int_eq(hx_sandbox_count(sb.port), before + 1);
    ck_assert(!a.done);
    /* the sender is back; a send that leaves after it says so */
    sender_status(OFFLINE, "online");
    open_window(OFFLINE, 2);
    ck_assert_int_eq(send_ff(OFFLINE, 2, NULL, &r), 200);
    xwagate_is(&r, "upstream");
    http_free(&r);
    ck_assert(!a.done); /* the test's premise: the 503 is still coming */
    ck_assert(bg_run(&a, 8000));
    ck_assert_int_eq(a.status, 503);
    bg_free(&a);
    /* the newest news of sender 13 is the 200 */
    ck_assert_int_eq(send_ff(OFFLINE, 2, NULL, &r), 200);
    xwagate_is(&r, "upstream");
    http_free(&r);
}
END_TEST

#define LIBFAKETIME "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

/* REVIEW-DEFECT, fixed by ee8f4da (state_memory: the refusals' clock
 * is monotonic). SPEC 4a: an entry is "trusted for" its period (1 s
 * here). The trust is measured on the wall clock (clock_wall_ms in
 * state_memory.c), so a wall clock stepped back (NTP, a VM resumed, an
 * operator's date -s) by two minutes keeps a sender that is back online
 * refused for two minutes more. The monotonic clock does not step. */
START_TEST(a_wall_clock_step_back_does_not_extend_the_trust)
{
    if (access(LIBFAKETIME, R_OK) != 0) {
        fprintf(stderr, "SKIP a_wall_clock_step_back_does_not_extend_the_"
                        "trust: faketime is not installed\n");
        return;
    }
    ck_assert_int_eq(harness_start_sandbox(&sb, "5", NULL), 0);
    char ft[64], conf[1024], extra[512];
    write_temp("+0s\n", ft, sizeof(ft));
    snprintf(extra, sizeof(extra),
             SHAPED ADMIN ", \"refusals\": {\"sender_offline_s\": 1}",
             sb.port, 20000);
    snprintf(conf, sizeof(conf),
             "{\"listen\": [\"127.0.0.1:0\"],\n"
             " \"limits\": {\"client_timeout_ms\": 1000,"
             " \"max_body_bytes\": 4096}%s}\n",
             extra);
    write_temp(conf, gw_conf, sizeof(gw_conf));
    static char keyenv[] = "AUTOCALLS_API_KEY=" HARNESS_UPSTREAM_KEY;
    static char preload[] = "LD_PRELOAD=" LIBFAKETIME;
    static char nocache[] = "FAKETIME_NO_CACHE=1";
    static char mono[] = "FAKETIME_DONT_FAKE_MONOTONIC=1";
    static char file[128], asan[512];
    snprintf(file, sizeof(file), "FAKETIME_TIMESTAMP_FILE=%s", ft);
    const char *was = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof(asan), "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
             was ? was : "", was && *was ? ":" : "");
    char *env[] = {keyenv, preload, nocache, mono, file, asan, NULL};
    const char *bin = getenv("WAGATE_BIN");
    char *argv[] = {(char *)(bin ? bin : "./wagate"), "-c", gw_conf, NULL};
    ck_assert_int_eq(proc_start(&gw, argv, env), 0);
    struct http_resp r;
    ck_assert_int_eq(send_ff(OFFLINE, 1, NULL, &r), 503);
    xwagate_is(&r, "upstream");
    http_free(&r);
    /* the gateway's wall clock steps back two minutes */
    FILE *f = fopen(ft, "w");
    ck_assert_ptr_nonnull(f);
    fputs("-120s\n", f);
    fclose(f);
    sender_status(OFFLINE, "online");
    open_window(OFFLINE, 1);
    /* within a few seconds of real time the probe goes and clears it */
    double end = clock_mono_ms() + 4000;
    long last = 0;
    while (clock_mono_ms() < end) {
        last = send_ff(OFFLINE, 1, NULL, &r);
        http_free(&r);
        if (last == 200)
            break;
        usleep(100000);
    }
    unlink(ft);
    ck_assert_int_eq(last, 200);
}
END_TEST

/* ---- shared mode (state.backend redis) ---- */

#define SHARED_N 40 /* per burst: 30 from the offline sender, 10 online */

static struct proc gw_b;
static char gw_b_conf[64];
static struct hx_redis redis;

static void
start_shared_gateway(struct proc *p, char *conf, size_t n)
{
    char extra[1024];
    snprintf(extra, sizeof(extra),
             SHAPED ADMIN ", \"state\": {\"backend\": \"redis\","
                          " \"instances\": 2, \"account\": \"rev11\","
                          " \"redis\": {\"url\": \"%s\"}}",
             sb.port, 20000, redis.url);
    ck_assert_int_eq(harness_start_gateway(p, sb.port, extra, conf, n), 0);
}

struct mburst {
    CURLM *m;
    CURL *e[SHARED_N];
    struct curl_slist *h;
    char body[SHARED_N][192];
    int sender[SHARED_N];
    long status[SHARED_N];
    char xw[SHARED_N][96];
};

static size_t
mb_header(char *d, size_t s, size_t n, void *arg)
{
    char *xw = arg;
    size_t k = s * n;
    if (k > 10 && strncasecmp(d, "X-Wagate: ", 10) == 0) {
        size_t v = k - 10;
        while (v > 0 && (d[10 + v - 1] == '\r' || d[10 + v - 1] == '\n'))
            v--;
        if (v < 96) {
            memcpy(xw, d + 10, v);
            xw[v] = '\0';
        }
    }
    return k;
}

static size_t
mb_body(char *d, size_t s, size_t n, void *arg)
{
    (void)d;
    (void)arg;
    return s * n;
}

/* i-th of the burst to port: every fourth from the online sender. */
static void
mb_fire(struct mburst *b, const int *ports)
{
    memset(b, 0, sizeof(*b));
    b->m = curl_multi_init();
    b->h = curl_slist_append(NULL, "Content-Type: application/json");
    for (int i = 0; i < SHARED_N; i++) {
        char url[128], phone[24];
        b->sender[i] = i % 4 == 3 ? ONLINE : OFFLINE;
        phone_of(200 + i, phone, sizeof(phone));
        snprintf(b->body[i], sizeof(b->body[i]),
                 "{\"sender_id\":%d,\"recipient_phone\":\"%s\","
                 "\"message\":\"shared %d\"}",
                 b->sender[i], phone, i);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d" FREEFORM,
                 ports[i % 2]);
        b->e[i] = curl_easy_init();
        curl_easy_setopt(b->e[i], CURLOPT_URL, url);
        curl_easy_setopt(b->e[i], CURLOPT_HTTPHEADER, b->h);
        curl_easy_setopt(b->e[i], CURLOPT_POSTFIELDS, b->body[i]);
        curl_easy_setopt(b->e[i], CURLOPT_HEADERFUNCTION, mb_header);
        curl_easy_setopt(b->e[i], CURLOPT_HEADERDATA, (void *)b->xw[i]);
        curl_easy_setopt(b->e[i], CURLOPT_WRITEFUNCTION, mb_body);
        curl_easy_setopt(b->e[i], CURLOPT_TIMEOUT_MS, 30000L);
        curl_easy_setopt(b->e[i], CURLOPT_PRIVATE, (void *)&b->status[i]);
        curl_multi_add_handle(b->m, b->e[i]);
    }
}

static int
mb_run(struct mburst *b, double ms)
{
    int left = SHARED_N, running;
    double end = clock_mono_ms() + ms;
    while (left > 0 && clock_mono_ms() < end) {
        curl_multi_perform(b->m, &running);
        CURLMsg *msg;
        int q;
        while ((msg = curl_multi_info_read(b->m, &q)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            char *p;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &p);
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
                              (long *)(void *)p);
            left--;
        }
        if (left > 0)
            curl_multi_poll(b->m, NULL, 0, 20, NULL);
    }
    return left == 0;
}

static void
mb_free(struct mburst *b)
{
    for (int i = 0; i < SHARED_N; i++) {
        curl_multi_remove_handle(b->m, b->e[i]);
        curl_easy_cleanup(b->e[i]);
    }
    curl_slist_free_all(b->h);
    curl_multi_cleanup(b->m);
}

/* The most sends the sandbox saw in any 1000 ms of its clock, and how
 * many it refused 429. */
static int
worst_window(int *refused)
{
    json_object *reqs = hx_sandbox_requests(sb.port);
    ck_assert_ptr_nonnull(reqs);
    double t[SHARED_N + 16];
    int n = 0, worst = 0;
    *refused = 0;
    for (size_t i = 0; i < json_object_array_length(reqs); i++) {
        json_object *e = json_object_array_get_idx(reqs, i), *v;
        if (!json_object_object_get_ex(e, "path", &v) ||
            strcmp(json_object_get_string(v), FREEFORM) != 0)
            continue;
        if (json_object_object_get_ex(e, "status", &v) &&
            json_object_get_int(v) == 429)
            (*refused)++;
        if (n < SHARED_N + 16 && json_object_object_get_ex(e, "mono_ms", &v))
            t[n++] = json_object_get_double(v);
    }
    json_object_put(reqs);
    for (int i = 0; i < n; i++) {
        int c = 0;
        for (int j = i; j < n && t[j] - t[i] < 1000.0; j++)
            c++;
        worst = c > worst ? c : worst;
    }
    return worst;
}

/* SPEC 11 with SPEC 4a on two instances sharing Redis: the sends queued
 * behind a refusal are answered by the gateway, the upstream sees no more
 * than 5 in any second, every online send is answered 200, and the
 * refusal learned is the instances' (listed, answered). */
START_TEST(shared_withdraw_keeps_the_account_limit)
{
    ck_assert_int_eq(hx_redis_start(&redis, 0, NULL), 0);
    ck_assert_int_eq(harness_start_sandbox(&sb, "5", NULL), 0);
    start_shared_gateway(&gw, gw_conf, sizeof(gw_conf));
    start_shared_gateway(&gw_b, gw_b_conf, sizeof(gw_b_conf));
    for (int i = 0; i < SHARED_N; i++)
        if (i % 4 == 3)
            open_window(ONLINE, 200 + i);
    int ports[2] = {gw.port, gw_b.port};
    struct mburst b;
    mb_fire(&b, ports);
    ck_assert(mb_run(&b, 25000));
    int ok = 0, off = 0, learned = 0;
    for (int i = 0; i < SHARED_N; i++) {
        if (b.sender[i] == ONLINE) {
            ck_assert_int_eq(b.status[i], 200);
            ok++;
            continue;
        }
        ck_assert_int_eq(b.status[i], 503);
        off++;
        learned += strcmp(b.xw[i], "gateway; reason=sender_offline") == 0;
    }
    mb_free(&b);
    int refused;
    int worst = worst_window(&refused);
    fprintf(stderr, "shared: %d online ok, %d offline (%d withdrawn), worst "
            "window %d, sandbox refused %d\n", ok, off, learned, worst,
            refused);
    ck_assert_int_eq(refused, 0);
    ck_assert_int_le(worst, 5);
    ck_assert_int_gt(learned, 0); /* the withdraw did run */
    /* the refusal is shared: both list it, and either answers it */
    struct http_resp r;
    ck_assert_int_eq(
        harness_get(gw.port, "GET", "/admin/refusals", admin_auth, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"sender_id\":13"));
    http_free(&r);
    ck_assert_int_eq(send_ff(OFFLINE, 1, NULL, &r), 503);
    xwagate_is(&r, "gateway; reason=sender_offline");
    http_free(&r);
    int gb = proc_stop(&gw_b, 5000);
    unlink(gw_b_conf);
    ck_assert_int_eq(gb, 0);
}
END_TEST

static void
teardown_shared(void)
{
    /* B too, when the test stopped before it did: a gateway left running
     * would outlive the suite (and hold what it inherited) */
    if (gw_b.pid > 0) {
        proc_stop(&gw_b, 5000);
        unlink(gw_b_conf);
    }
    teardown();
    hx_redis_stop(&redis);
}

static Suite *
integration_suite(void)
{
    Suite *s = suite_create("refusals_review");
    TCase *tc = tcase_create("review");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, a_probe_answered_by_the_session_cache_is_not_spent);
    tcase_add_test(tc, a_probe_refused_by_the_limiter_is_not_spent);
    tcase_add_test(tc, a_probe_answer_that_says_nothing_does_not_renew_the_trust);
    tcase_add_test(tc, a_late_refusal_does_not_undo_a_later_2xx);
    tcase_add_test(tc, a_wall_clock_step_back_does_not_extend_the_trust);
    suite_add_tcase(s, tc);
    TCase *sh = tcase_create("shared");
    tcase_set_timeout(sh, 60);
    tcase_add_checked_fixture(sh, NULL, teardown_shared);
    tcase_add_test(sh, shared_withdraw_keeps_the_account_limit);
    suite_add_tcase(s, sh);
    return s;
}

int
main(void)
{
    return harness_run_suite(integration_suite());
}
