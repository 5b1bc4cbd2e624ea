/* redis_hostile.c - the shared state on Redis (SPEC sections 5, 7, 8 and
 * 11) attacked: idempotency keys of odd bytes and callers that must stay
 * apart, a Redis frozen or restarted empty at each step of a keyed send,
 * values of the wrong type or shape in the keys the scripts read, a Redis
 * slower and faster than state.redis.timeout_ms, the drain while Redis is
 * frozen, the admin API while it is frozen, the password never shown, the
 * shared-state config keys, and one gateway's clock 30 s off. The real
 * wagate and wagate-sandbox, a real redis-server (hx_redis.h). */
#include <check.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <limits.h>
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
#define ADMIN_HASH                                                             \
    "39eccedf59001412f7e0557d616c46642ef9eecfd34a79bd27c25f73e328b872"
/* sha256("alpha-tok"), sha256("beta-tok") */
#define CLIENTS                                                                \
    "\"clients\": [{\"name\": \"alpha\", \"token_sha256\": "                   \
    "\"9c7cf78b4d3d4f63bb7a7e4cac167959686953b9b643221c0ac3289237de79cb\", "   \
    "\"senders\": \"*\"}, {\"name\": \"beta\", \"token_sha256\": "             \
    "\"11330ef0e84344b709546d9a0272e70f642eae01ff4cbbe178122b4e357ad5c6\", "   \
    "\"senders\": \"*\"}], "
#define FAKETIME_SO "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
#define REDIS_PASSWORD "pw-Zq81-never-shown"

static struct hx_redis rs;
static struct proc sb, gw[2];
static char conf[2][64], pwfile[64];
static int ngw;

static void
nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the processes ---- */

struct gwopt {
    const char *upstream; /* members added to "upstream", or NULL */
    const char *top;      /* top-level members, each followed by ", " */
    const char *redis;    /* members added to "state.redis", or NULL */
    int skew;             /* 1: this gateway's clock is 30 s ahead */
};

static void
gw_start(int i, const struct gwopt *o)
{
    static char keyenv[] = "AUTOCALLS_API_KEY=" HARNESS_UPSTREAM_KEY;
    static char preload[] = "LD_PRELOAD=" FAKETIME_SO;
    static char fake[] = "FAKETIME=+30s";
    static char nocache[] = "FAKETIME_NO_CACHE=1";
    /* a sanitizer build: its runtime is not first with LD_PRELOAD */
    static char asan[512];
    const char *ao = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof(asan), "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
             ao ? ao : "", ao && *ao ? ":" : "");
    char *env[] = {keyenv, o->skew ? preload : NULL, fake, nocache, asan, NULL};
    char text[4096];
    snprintf(text, sizeof(text),
             "{\"listen\": [\"127.0.0.1:0\"], %s"
             " \"upstream\": {\"base_url\": \"http://127.0.0.1:%d\","
             " \"timeout_ms\": 1500, \"connect_timeout_ms\": 500,"
             " \"rate_limit_rps\": 10000, \"rate_limit_burst\": 10000%s%s},"
             " \"limits\": {\"client_timeout_ms\": 5000},"
             " \"admin\": {\"token_sha256\": \"" ADMIN_HASH "\"},"
             " \"state\": {\"backend\": \"redis\", \"account\": \"hostile\","
             " \"redis\": {\"url\": \"%s\"%s%s}}}\n",
             o->top ? o->top : "", sb.port, o->upstream ? ", " : "",
             o->upstream ? o->upstream : "", rs.url, o->redis ? ", " : "",
             o->redis ? o->redis : "");
    write_temp(text, conf[i], sizeof(conf[i]));
    const char *b = getenv("WAGATE_BIN");
    char *argv[] = {(char *)(b && *b ? b : "./wagate"), "-c", conf[i], NULL};
    ck_assert_int_eq(proc_start(&gw[i], argv, env), 0);
    if (i + 1 > ngw)
        ngw = i + 1;
    ck_assert_msg(proc_wait_log(&gw[i], "redis up", 5000),
                  "gateway %d never reached Redis", i);
}

static void
setup(void)
{
    ck_assert_int_eq(hx_redis_start(&rs, 0, NULL), 0);
    ck_assert_int_eq(harness_start_sandbox(&sb, "0", NULL), 0);
    ngw = 0;
    pwfile[0] = '\0';
}

static void
teardown(void)
{
    int bad = 0; /* a gateway not killed drains and exits 0 */
    hx_redis_thaw(&rs);
    for (int i = 0; i < ngw; i++) {
        if (gw[i].pid > 0 && proc_stop(&gw[i], 10000) != 0)
            bad = i + 1;
        unlink(conf[i]);
    }
    proc_stop(&sb, 5000);
    hx_redis_stop(&rs);
    if (pwfile[0])
        unlink(pwfile);
    ck_assert_msg(bad == 0, "gateway %d did not exit cleanly", bad - 1);
}

/* Waits up to ms for needle's n-th occurrence in p's output. */
static int
wait_log_n(const struct proc *p, const char *needle, int n, int ms)
{
    double end = clock_mono_ms() + ms;
    do {
        char *log = proc_log(p);
        int seen = 0;
        for (const char *q = log; q && (q = strstr(q, needle)) != NULL; q++)
            seen++;
        free(log);
        if (seen >= n)
            return 1;
        nap_ms(10);
    } while (clock_mono_ms() < end);
    return 0;
}

/* Waits until the link of gateway i came up again after a loss. */
static int
wait_up_again(int i)
{
    return wait_log_n(&gw[i], "state: redis up", 2, 8000);
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

/* A send-freeform to PHONE; key and token may be NULL. */
static void
post(int port, const char *msg, const char *key, const char *token,
     struct http_resp *r)
{
    char body[256], kh[320], th[128];
    const char *h[3] = {NULL, NULL, NULL};
    int n = 0;
    body_of(body, sizeof(body), PHONE, msg);
    if (key != NULL) {
        snprintf(kh, sizeof(kh), "Idempotency-Key: %s", key);
        h[n++] = kh;
    }
    if (token != NULL) {
        snprintf(th, sizeof(th), "Authorization: Bearer %s", token);
        h[n++] = th;
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
open_window(void)
{
    ck_assert_int_eq(hx_sandbox_control(sb.port, "POST", "/_sandbox/inbound",
                                        "{\"sender_id\":12,\"recipient_phone\":"
                                        "\"" PHONE "\"}"),
                     204);
}

static void
latency(int ms)
{
    char json[64];
    snprintf(json, sizeof(json), "{\"latency_ms\": %d}", ms);
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/config", json), 200);
}

static int
admin(int port, const char *method, const char *path, const char *body,
      struct http_resp *out)
{
    struct http_resp r;
    const char *h[] = {"Authorization: Bearer " ADMIN_TOKEN,
                       "Content-Type: application/json", NULL};
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    ck_assert_int_eq(http_do(method, url, h, body, body ? strlen(body) : 0, &r),
                     0);
    int st = (int)r.status;
    if (out)
        *out = r;
    else
        http_free(&r);
    return st;
}

/* /admin/stats' state.<name>, or -1. */
static long long
state_stat(int port, const char *name)
{
    struct http_resp r;
    admin(port, "GET", "/admin/stats", NULL, &r);
    json_object *o = json_tokener_parse(r.body), *s, *v;
    long long n = -1;
    if (o && json_object_object_get_ex(o, "state", &s) &&
        json_object_object_get_ex(s, name, &v))
        n = json_object_get_int64(v);
    json_object_put(o);
    http_free(&r);
    return n;
}

/* Waits until gateway port's link is up (a slow reply may drop it). */
static void
wait_state_up(int port)
{
    double end = clock_mono_ms() + 8000;
    while (state_stat(port, "up") != 1 && clock_mono_ms() < end)
        nap_ms(20);
    ck_assert_int_eq(state_stat(port, "up"), 1);
}

/* ---- many at once, through curl multi ---- */

struct batch {
    CURLM *m;
    CURL *e[8];
    struct curl_slist *h[8];
    char hdrs[8][2048];
    long status[8];
    int n, running;
};

static size_t
batch_header(char *d, size_t s, size_t n, void *arg)
{
    char *buf = arg;
    size_t have = strlen(buf), add = s * n;
    if (have + add < 2047) {
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

static void
batch_add(struct batch *b, int port, const char *msg, const char *key)
{
    char url[128], body[256], kh[320];
    int i = b->n++;
    ck_assert_int_lt(i, 8);
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

/* Drives b until transfer i has its answer's status line (or ms). */
static int
batch_wait_answer(struct batch *b, int i, int ms)
{
    double end = clock_mono_ms() + ms;
    long code = 0;
    while (code == 0 && clock_mono_ms() < end) {
        batch_poll(b, 10);
        curl_easy_getinfo(b->e[i], CURLINFO_RESPONSE_CODE, &code);
    }
    return code != 0;
}

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

/* ---- Redis, seen by the test ---- */

static redisReply *
rcmd(const char *fmt, ...)
{
    redisContext *c = hx_redis_connect(&rs);
    ck_assert_ptr_nonnull(c);
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return r;
}

/* The name of the one key matching pattern, in out ("" when none). */
static int
one_key(const char *pattern, char *out, size_t outlen)
{
    redisReply *k = rcmd("KEYS %s", pattern);
    int n = k ? (int)k->elements : 0;
    out[0] = '\0';
    if (n >= 1)
        snprintf(out, outlen, "%s", k->element[0]->str);
    freeReplyObject(k);
    return n;
}

static int
count_keys(const char *pattern)
{
    char k[256];
    return one_key(pattern, k, sizeof(k));
}

/* The st of the (only) idempotency record, "" when none. */
static const char *
record_st(void)
{
    static char st[32];
    char k[256];
    st[0] = '\0';
    if (one_key("*idem:*", k, sizeof(k)) < 1)
        return st;
    redisReply *s = rcmd("HGET %s st", k);
    if (s && s->type == REDIS_REPLY_STRING)
        snprintf(st, sizeof(st), "%s", s->str);
    freeReplyObject(s);
    return st;
}

/* Drives b until the record is in state want (or ms). */
static int
poll_until_record(struct batch *b, const char *want, int ms)
{
    double end = clock_mono_ms() + ms;
    while (clock_mono_ms() < end) {
        batch_poll(b, 10);
        if (strcmp(record_st(), want) == 0)
            return 1;
    }
    return 0;
}

/* Retries a keyed send every 250 ms (pacing, not a sync) while it is 409,
 * for up to ms; the last answer in *r. */
static void
retry_while_busy(int port, const char *msg, const char *key, int ms,
                 struct http_resp *r)
{
    double end = clock_mono_ms() + ms;
    for (;;) {
        post(port, msg, key, NULL, r);
        if (r->status != 409 || clock_mono_ms() > end)
            return;
        http_free(r);
        nap_ms(250);
    }
}

/* ---- idempotency keys and callers ---- */

START_TEST(odd_keys_and_two_callers_stay_apart)
{
    struct gwopt o = {.top = CLIENTS};
    gw_start(0, &o);
    open_window();
    struct http_resp r;
    /* 255 bytes, every visible ASCII character */
    char k255[256];
    for (int i = 0; i < 255; i++)
        k255[i] = (char)(0x21 + i % 94);
    k255[255] = '\0';
    char body[256], kh[320];
    body_of(body, sizeof(body), PHONE, "k255");
    snprintf(kh, sizeof(kh), "Idempotency-Key: %s", k255);
    const char *h[] = {kh, "Authorization: Bearer alpha-tok", NULL};
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(harness_post(gw[0].port, FREEFORM, body, h, &r), 0);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(xwagate(&r), i ? "replay" : "upstream");
        http_free(&r);
    }
    ck_assert_int_eq(sb_count_body("k255"), 1);
    /* 256 bytes: refused, nothing asked, nothing sent */
    char k256[300];
    snprintf(k256, sizeof(k256), "%sX", k255);
    snprintf(kh, sizeof(kh), "Idempotency-Key: %s", k256);
    body_of(body, sizeof(body), PHONE, "k256");
    ck_assert_int_eq(harness_post(gw[0].port, FREEFORM, body, h, &r), 0);
    ck_assert_int_eq(r.status, 422);
    ck_assert_ptr_nonnull(strstr(r.body, "Idempotency-Key"));
    http_free(&r);
    ck_assert_int_eq(sb_count_body("k256"), 0);

    /* keys that differ in case only are two keys */
    post(gw[0].port, "case-1", "CaseKey", "alpha-tok", &r);
    ck_assert_str_eq(xwagate(&r), "upstream");
    http_free(&r);
    post(gw[0].port, "case-2", "casekey", "alpha-tok", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(xwagate(&r), "upstream"); /* not 422 */
    http_free(&r);
    /* the same key and body from two callers: two keys, two sends */
    post(gw[0].port, "two-callers", "shared-k", "alpha-tok", &r);
    ck_assert_str_eq(xwagate(&r), "upstream");
    http_free(&r);
    post(gw[0].port, "two-callers", "shared-k", "beta-tok", &r);
    ck_assert_str_eq(xwagate(&r), "upstream");
    http_free(&r);
    post(gw[0].port, "two-callers", "shared-k", "beta-tok", &r);
    ck_assert_str_eq(xwagate(&r), "replay");
    http_free(&r);
    ck_assert_int_eq(sb_count_body("two-callers"), 2);
    /* keys and caller names appear only as digests */
    ck_assert_int_eq(count_keys("*CaseKey*"), 0);
    ck_assert_int_eq(count_keys("*alpha*"), 0);
    ck_assert_int_eq(count_keys("*shared-k*"), 0);
    ck_assert_int_eq(count_keys("*idem:*"), 5);
}
END_TEST

/* ---- a Redis frozen or emptied at each step of a keyed send ---- */

START_TEST(frozen_during_begin_the_key_frees_after_the_lease)
{
    struct gwopt o = {.upstream = "\"max_queue_ms\": 1000"};
    gw_start(0, &o);
    open_window();
    hx_redis_freeze(&rs);
    struct http_resp r;
    post(gw[0].port, "frozen-begin", "key-fb", NULL, &r);
    ck_assert_int_eq(r.status, 503);
    ck_assert_ptr_nonnull(strstr(r.body, "STATE_UNAVAILABLE"));
    char ra[16];
    ck_assert_ptr_nonnull(http_header(&r, "Retry-After", ra, sizeof(ra)));
    http_free(&r);
    hx_redis_thaw(&rs);
    ck_assert(wait_up_again(0));
    /* the begin may have run at the thaw: 409 until its lease, then free */
    retry_while_busy(gw[0].port, "frozen-begin", "key-fb", 8000, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(xwagate(&r), "upstream");
    http_free(&r);
    ck_assert_int_eq(sb_count_body("frozen-begin"), 1);
}
END_TEST

/* The keyed send waits for its slot (claimed) when Redis freezes: its
 * "sent" times out or meets the open breaker, nothing leaves, the caller
 * is told 503 and to retry. The key must end up free (nothing was sent),
 * not an unknown outcome.
 *
 * max_queue_ms leaves room for the limiter's quiet after the link drops
 * (a window + 40 ms from when the freeze is noticed, which may be at the
 * shared guard's ask just before the slot): with less, the send is
 * refused 429 by the limiter before it reaches the "sent" step, a right
 * answer too but not the step under test. */
START_TEST(frozen_at_sent_nothing_leaves_and_the_key_ends_free)
{
    struct gwopt o = {.upstream = "\"rate_limit_rps\": 1, "
                                  "\"rate_limit_burst\": 1, "
                                  "\"max_queue_ms\": 6000"};
    gw_start(0, &o);
    open_window();
    struct batch b;
    batch_init(&b);
    batch_add(&b, gw[0].port, "filler-1", NULL);
    batch_add(&b, gw[0].port, "filler-2", NULL);
    batch_add(&b, gw[0].port, "frozen-sent", "key-fs");
    ck_assert(poll_until_record(&b, "claimed", 5000));
    /* filler-2 answered (its lesson learned): the link is idle and up
     * until the keyed send's slot, a second later; freeze now, so that
     * its "sent" reaches a frozen Redis and times out */
    ck_assert(batch_wait_answer(&b, 1, 5000));
    ck_assert_str_eq(record_st(), "claimed");
    hx_redis_freeze(&rs);
    batch_finish(&b);
    ck_assert_msg(b.status[2] == 503, "%ld %s", b.status[2], b.hdrs[2]);
    ck_assert_ptr_nonnull(strstr(b.hdrs[2], "Retry-After"));
    ck_assert_int_eq(sb_count_body("frozen-sent"), 0);
    hx_redis_thaw(&rs);
    ck_assert(wait_up_again(0));
    /* 409 while a lease runs (sent: 4 s, claimed: 8 s here), then the
     * send goes */
    struct http_resp r;
    retry_while_busy(gw[0].port, "frozen-sent", "key-fs", 12000, &r);
    ck_assert_msg(r.status == 200 && strcmp(xwagate(&r), "upstream") == 0,
                  "nothing was sent, yet: %ld %s %s", r.status, xwagate(&r),
                  r.body);
    http_free(&r);
    ck_assert_int_eq(sb_count_body("frozen-sent"), 1);
}
END_TEST

/* Redis goes down while a keyed send is at the upstream: its finish is
 * refused at once by the breaker. Once Redis is back the answer the
 * caller got is the one a retry replays, not an unknown outcome. */
START_TEST(a_finish_refused_while_redis_is_down_is_kept_once_it_is_back)
{
    gw_start(0, &(struct gwopt){0});
    open_window();
    latency(1200);
    struct batch b;
    batch_init(&b);
    batch_add(&b, gw[0].port, "finish-down", "key-fd");
    ck_assert(poll_until_record(&b, "sent", 5000));
    hx_redis_freeze(&rs);
    /* an unkeyed send asks the window: it times out, the link goes down */
    struct http_resp r;
    post(gw[0].port, "unkeyed-meanwhile", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    http_free(&r);
    ck_assert(proc_wait_log(&gw[0], "state: redis down", 3000));
    batch_finish(&b);
    ck_assert_int_eq(b.status[0], 200); /* the caller has its answer */
    hx_redis_thaw(&rs);
    ck_assert(wait_up_again(0));
    /* past the sent lease (1500 + 500 + 2000 ms) */
    retry_while_busy(gw[0].port, "finish-down", "key-fd", 8000, &r);
    ck_assert_msg(r.status == 200 && strcmp(xwagate(&r), "replay") == 0,
                  "the kept answer was lost: %ld %s %s", r.status, xwagate(&r),
                  r.body);
    http_free(&r);
    ck_assert_int_eq(sb_count_body("finish-down"), 1);
}
END_TEST

START_TEST(restarted_empty_between_begin_and_finish_writes_nothing)
{
    gw_start(0, &(struct gwopt){0});
    open_window();
    latency(800);
    struct batch b;
    batch_init(&b);
    batch_add(&b, gw[0].port, "restart-mid", "key-rm");
    ck_assert(poll_until_record(&b, "sent", 5000));
    ck_assert_int_eq(hx_redis_restart(&rs), 0);
    batch_finish(&b);
    ck_assert_int_eq(b.status[0], 200); /* the upstream's answer */
    ck_assert_ptr_nonnull(strstr(b.hdrs[0], "X-Wagate: upstream"));
    ck_assert(wait_up_again(0));
    /* the finish's token did not hold: nothing was written */
    nap_ms(300); /* let a late finish land, if one were sent */
    ck_assert_int_eq(count_keys("*idem:*"), 0);
    ck_assert_int_eq(sb_count_body("restart-mid"), 1);
}
END_TEST

/* ---- values the scripts did not write ---- */

START_TEST(garbage_in_redis_is_a_clear_answer)
{
    gw_start(0, &(struct gwopt){0});
    open_window();
    struct http_resp r;
    char k[256];
    /* a kept answer, then its blob corrupted */
    post(gw[0].port, "garbage-1", "key-g1", NULL, &r);
    ck_assert_str_eq(xwagate(&r), "upstream");
    http_free(&r);
    ck_assert_int_eq(one_key("*idem:*", k, sizeof(k)), 1);
    freeReplyObject(rcmd("HSET %s ans WGA1junk", k));
    post(gw[0].port, "garbage-1", "key-g1", NULL, &r);
    ck_assert_int_eq(r.status, 503);
    ck_assert_ptr_nonnull(strstr(r.body, "STATE_UNAVAILABLE"));
    http_free(&r);
    /* a huge blob (8 MiB): refused, or too slow (the link drops) */
    size_t big = 8u << 20;
    char *huge = malloc(big);
    memset(huge, 'x', big);
    memcpy(huge, "WGA1", 4);
    freeReplyObject(rcmd("HSET %s ans %b", k, huge, big));
    free(huge);
    post(gw[0].port, "garbage-1", "key-g1", NULL, &r);
    ck_assert_int_eq(r.status, 503);
    http_free(&r);
    wait_state_up(gw[0].port);
    long long failed = state_stat(gw[0].port, "failures");
    /* a string where the hash is, a list, a bad state, a bad lease */
    freeReplyObject(rcmd("SET %s notahash", k));
    post(gw[0].port, "garbage-1", "key-g1", NULL, &r);
    ck_assert_int_eq(r.status, 503);
    http_free(&r);
    freeReplyObject(rcmd("DEL %s", k));
    freeReplyObject(rcmd("RPUSH %s a b", k));
    post(gw[0].port, "garbage-1", "key-g1", NULL, &r);
    ck_assert_int_eq(r.status, 503);
    http_free(&r);
    freeReplyObject(rcmd("DEL %s", k));
    freeReplyObject(rcmd("HSET %s fp x st weird", k));
    post(gw[0].port, "garbage-1", "key-g1", NULL, &r);
    ck_assert_int_eq(r.status, 503);
    http_free(&r);
    ck_assert_int_eq(sb_count_body("garbage-1"), 1);
    /* the fencing counter not a number: a new key cannot be claimed */
    char fence[256];
    snprintf(fence, sizeof(fence), "%.*sfence", (int)(strstr(k, "idem:") - k),
             k);
    freeReplyObject(rcmd("SET %s notanumber", fence));
    post(gw[0].port, "garbage-2", "key-g2", NULL, &r);
    ck_assert_int_eq(r.status, 503);
    http_free(&r);
    freeReplyObject(rcmd("DEL %s", fence));
    ck_assert_int_eq(sb_count_body("garbage-2"), 0);
    /* each of these was Redis's answer, judged: the link never failed */
    ck_assert_int_eq(state_stat(gw[0].port, "failures"), failed);

    ck_assert_int_ge(state_stat(gw[0].port, "idempotency_unavailable"), 6);
    /* still alive and well */
    post(gw[0].port, "garbage-3", "key-g3", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    http_free(&r);
}
END_TEST

START_TEST(a_wrong_type_window_heals_when_learned_again)
{
    gw_start(0, &(struct gwopt){0});
    struct http_resp r;
    char k[256];
    post(gw[0].port, "heal-1", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 403); /* the sandbox: no window: closed */
    http_free(&r);
    ck_assert_int_eq(one_key("*win:*", k, sizeof(k)), 1);
    freeReplyObject(rcmd("DEL %s", k));
    freeReplyObject(rcmd("HSET %s a b", k));
    /* forwarded (no entry), and its 403 is learned over the hash */
    post(gw[0].port, "heal-2", NULL, NULL, &r);
    ck_assert_str_eq(xwagate(&r), "upstream");
    http_free(&r);
    post(gw[0].port, "heal-3", NULL, NULL, &r);
    ck_assert_msg(strcmp(xwagate(&r), "gateway; reason=session_expired") == 0,
                  "never learned again: %s", xwagate(&r));
    http_free(&r);
    ck_assert_int_eq(sb_count_body("heal-3"), 0);
    /* a string of the wrong shape: no entry too, and learned over */
    freeReplyObject(rcmd("SET %s 1:2:3:4:5", k));
    post(gw[0].port, "heal-4", NULL, NULL, &r);
    ck_assert_str_eq(xwagate(&r), "upstream");
    http_free(&r);
    post(gw[0].port, "heal-5", NULL, NULL, &r);
    ck_assert_str_eq(xwagate(&r), "gateway; reason=session_expired");
    http_free(&r);
    ck_assert_int_eq(sb_count_body("heal-5"), 0);
}
END_TEST

/* ---- slowness ---- */

/* A child that keeps Redis busy for ms (a Lua loop), started now; waits
 * until Redis is seen busy. */
static pid_t
busy_redis(int ms)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        redisContext *c = hx_redis_connect(&rs);
        if (c == NULL)
            _exit(1);
        struct timeval tv = {10, 0};
        redisSetTimeout(c, tv);
        redisReply *r = redisCommand(
            c, "EVAL %s 0 %d",
            "local s=redis.call('TIME') repeat local t=redis.call('TIME') "
            "until (t[1]-s[1])*1000000+(t[2]-s[2]) > tonumber(ARGV[1])*1000 "
            "return 1",
            ms);
        _exit(r && r->type == REDIS_REPLY_INTEGER ? 0 : 2);
    }
    /* busy: a PING on a new connection gets no answer within 20 ms */
    double end = clock_mono_ms() + 2000;
    while (clock_mono_ms() < end) {
        struct timeval tv = {0, 20000};
        redisContext *c = redisConnectUnixWithTimeout(rs.sock, tv);
        ck_assert_ptr_nonnull(c);
        redisSetTimeout(c, tv);
        redisReply *p = redisCommand(c, "PING");
        int busy = p == NULL;
        freeReplyObject(p);
        redisFree(c);
        if (busy)
            return pid;
    }
    ck_abort_msg("Redis never looked busy");
    return pid;
}

static void
busy_wait(pid_t pid)
{
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

START_TEST(slower_than_the_timeout_is_down_faster_is_up)
{
    struct gwopt o = {.redis = "\"timeout_ms\": 400",
                      .upstream = "\"max_queue_ms\": 1000"};
    gw_start(0, &o);
    open_window();
    struct http_resp r;
    /* just under: 250 ms of a 400 ms budget (the PING probe took some) */
    pid_t p = busy_redis(250);
    post(gw[0].port, "slow-under", "key-su", NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(xwagate(&r), "upstream");
    http_free(&r);
    busy_wait(p);
    ck_assert_int_eq(state_stat(gw[0].port, "timeouts"), 0);
    char *log = proc_log(&gw[0]);
    ck_assert_ptr_null(strstr(log, "redis down"));
    free(log);
    /* just over: 700 ms */
    p = busy_redis(700);
    double t0 = clock_mono_ms();
    post(gw[0].port, "slow-over", "key-so", NULL, &r);
    double took = clock_mono_ms() - t0;
    ck_assert_int_eq(r.status, 503);
    ck_assert_ptr_nonnull(strstr(r.body, "STATE_UNAVAILABLE"));
    ck_assert_msg(took < 650, "waited %.0f ms for a 400 ms timeout", took);
    http_free(&r);
    busy_wait(p);
    ck_assert_int_ge(state_stat(gw[0].port, "timeouts"), 1);
    ck_assert(wait_up_again(0));
    /* the timed-out begin ran once Redis was free: 409 until its lease
     * (1000 + 2000 ms), then one send */
    retry_while_busy(gw[0].port, "slow-over", "key-so", 6000, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(xwagate(&r), "upstream");
    http_free(&r);
    ck_assert_int_eq(sb_count_body("slow-over"), 1);
}
END_TEST

/* ---- the drain and the admin API while Redis is frozen ---- */

START_TEST(the_drain_ends_within_drain_timeout_while_redis_is_frozen)
{
    /* a Redis timeout longer than the drain: the drain's bound wins */
    struct gwopt o = {.top = "\"drain_timeout_ms\": 600, ",
                      .redis = "\"timeout_ms\": 4000"};
    gw_start(0, &o);
    open_window();
    hx_redis_freeze(&rs);
    struct batch b;
    batch_init(&b);
    batch_add(&b, gw[0].port, "drain-frozen", "key-df");
    /* its begin is pending on the frozen Redis */
    double end = clock_mono_ms() + 3000;
    while (state_stat(gw[0].port, "pending") < 1 && clock_mono_ms() < end)
        batch_poll(&b, 10);
    ck_assert_int_ge(state_stat(gw[0].port, "pending"), 1);
    double t0 = clock_mono_ms();
    kill(gw[0].pid, SIGTERM);
    batch_finish(&b);
    ck_assert_msg(b.status[0] == 503, "%ld", b.status[0]); /* one answer */
    int st = proc_stop(&gw[0], 10000);
    double took = clock_mono_ms() - t0;
    gw[0].pid = 0;
    ck_assert_int_eq(st, 0);
    ck_assert_msg(took < 1500, "the drain took %.0f ms (drain_timeout_ms 600)",
                  took);
    ck_assert_int_eq(sb_count_body("drain-frozen"), 0);
}
END_TEST

START_TEST(admin_calls_while_frozen_are_503_with_retry_after)
{
    gw_start(0, &(struct gwopt){0});
    hx_redis_freeze(&rs);
    const char *calls[][3] = {
        {"GET", "/admin/sessions?sender_id=12&recipient_phone=%2B14155550123",
         NULL},
        {"DELETE",
         "/admin/sessions?sender_id=12&recipient_phone=%2B14155550123", NULL},
        {"POST", "/admin/sessions/inbound",
         "{\"sender_id\": 12, \"recipient_phone\": \"" PHONE "\"}"},
    };
    for (int round = 0; round < 2; round++) /* pending, then the breaker */
        for (size_t i = 0; i < 3; i++) {
            struct http_resp r;
            double t0 = clock_mono_ms();
            ck_assert_int_eq(
                admin(gw[0].port, calls[i][0], calls[i][1], calls[i][2], &r),
                503);
            ck_assert_msg(clock_mono_ms() - t0 < 1000, "%s hung", calls[i][0]);
            char ra[16];
            ck_assert_ptr_nonnull(
                http_header(&r, "Retry-After", ra, sizeof(ra)));
            ck_assert_ptr_nonnull(strstr(r.body, "STATE_UNAVAILABLE"));
            http_free(&r);
        }
    hx_redis_thaw(&rs);
    ck_assert(wait_up_again(0));
    ck_assert_int_eq(admin(gw[0].port, "DELETE", calls[1][1], NULL, NULL), 204);
}
END_TEST

/* ---- the password ---- */

static void
assert_no_password(const char *where, const char *text)
{
    ck_assert_msg(text == NULL || strstr(text, REDIS_PASSWORD) == NULL,
                  "the Redis password is in %s", where);
}

START_TEST(the_password_is_never_shown)
{
    hx_redis_stop(&rs);
    ck_assert_int_eq(hx_redis_start(&rs, 0, REDIS_PASSWORD), 0);
    write_temp(REDIS_PASSWORD "\n", pwfile, sizeof(pwfile));
    char redis[160];
    snprintf(redis, sizeof(redis), "\"password_file\": \"%s\"", pwfile);
    struct gwopt o = {.redis = redis,
                      .top = "\"log\": {\"level\": \"debug\"}, "};
    gw_start(0, &o);
    open_window();
    struct http_resp r;
    post(gw[0].port, "pw-1", "key-pw", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    http_free(&r);
    /* down and up, restarted: the handshake's AUTH again */
    hx_redis_freeze(&rs);
    post(gw[0].port, "pw-2", "key-pw2", NULL, &r);
    http_free(&r);
    hx_redis_thaw(&rs);
    ck_assert(wait_up_again(0));
    ck_assert_int_eq(hx_redis_restart(&rs), 0);
    double end = clock_mono_ms() + 5000;
    do {
        post(gw[0].port, "pw-3", "key-pw3", NULL, &r);
        long st = r.status;
        http_free(&r);
        if (st == 200)
            break;
        nap_ms(100);
    } while (clock_mono_ms() < end);
    ck_assert_int_eq(harness_get(gw[0].port, "GET", "/metrics", NULL, &r), 0);
    assert_no_password("/metrics", r.body);
    http_free(&r);
    admin(gw[0].port, "GET", "/admin/stats", NULL, &r);
    assert_no_password("/admin/stats", r.body);
    http_free(&r);
    ck_assert_int_eq(harness_get(gw[0].port, "GET", "/readyz", NULL, &r), 0);
    assert_no_password("/readyz", r.body);
    http_free(&r);
    /* --check-config */
    static char keyenv[] = "AUTOCALLS_API_KEY=" HARNESS_UPSTREAM_KEY;
    char *env[] = {keyenv, NULL};
    const char *b = getenv("WAGATE_BIN");
    char *argv[] = {(char *)(b && *b ? b : "./wagate"), "--check-config", "-c",
                    conf[0], NULL};
    char out[16384];
    ck_assert_int_eq(proc_run(argv, env, out, sizeof(out)), 0);
    ck_assert_ptr_nonnull(strstr(out, "not shown"));
    assert_no_password("--check-config", out);
    /* a wrong password: degraded, and the log names neither */
    char wrongpw[64], text[2048];
    write_temp("wrong-" REDIS_PASSWORD, wrongpw, sizeof(wrongpw));
    snprintf(text, sizeof(text),
             "{\"listen\": [\"127.0.0.1:0\"], \"upstream\": {\"base_url\": "
             "\"http://127.0.0.1:%d\"}, \"state\": {\"backend\": \"redis\", "
             "\"redis\": {\"url\": \"%s\", \"password_file\": \"%s\"}}}",
             sb.port, rs.url, wrongpw);
    write_temp(text, conf[1], sizeof(conf[1]));
    char *argv2[] = {argv[0], "-c", conf[1], NULL};
    ck_assert_int_eq(proc_start(&gw[1], argv2, env), 0);
    ngw = 2;
    ck_assert(proc_wait_log(&gw[1], "state: redis down", 5000));
    post(gw[1].port, "pw-4", "key-pw4", NULL, &r);
    ck_assert_int_eq(r.status, 503);
    assert_no_password("an error body", r.body);
    http_free(&r);
    unlink(wrongpw);
    ck_assert_int_eq(proc_stop(&gw[1], 5000), 0);
    gw[1].pid = 0;
    char *log = proc_log(&gw[1]);
    assert_no_password("the log of a wrong password", log);
    free(log);
    ck_assert_int_eq(proc_stop(&gw[0], 5000), 0);
    gw[0].pid = 0;
    log = proc_log(&gw[0]);
    ck_assert_ptr_nonnull(strstr(log, "redis up"));
    assert_no_password("the log", log);
    free(log);
}
END_TEST

/* ---- the config keys ---- */

/* --check-config of a config with state members; its exit status, its
 * output in out. */
static int
check_config(const char *state, char *out, size_t outlen)
{
    static char keyenv[] = "AUTOCALLS_API_KEY=" HARNESS_UPSTREAM_KEY;
    char *env[] = {keyenv, NULL};
    char text[1024], path[64];
    snprintf(text, sizeof(text), "{\"state\": {\"backend\": \"redis\", %s}}",
             state);
    write_temp(text, path, sizeof(path));
    const char *b = getenv("WAGATE_BIN");
    char *argv[] = {(char *)(b && *b ? b : "./wagate"), "--check-config", "-c",
                    path, NULL};
    int rc = proc_run(argv, env, out, outlen);
    unlink(path);
    return rc;
}

START_TEST(the_shared_state_config_is_judged)
{
    char out[16384];
    static const struct {
        const char *state;
        int ok;
        const char *secret; /* must not be echoed */
    } cases[] = {
        {"\"redis\": {\"url\": \"redis://user:s3cr3t-in-url@127.0.0.1:6379\"}",
         0, "s3cr3t-in-url"},
        {"\"redis\": {\"url\": \"redis://:s3cr3t-in-url@127.0.0.1\"}", 0,
         "s3cr3t-in-url"},
        {"\"redis\": {\"url\": \"redis://redis.example.com:6379/0\"}", 0, NULL},
        {"\"redis\": {\"url\": \"redis://127.0.0.1:0\"}", 0, NULL},
        {"\"redis\": {\"url\": \"redis://127.0.0.1:6379/x\"}", 0, NULL},
        {"\"redis\": {\"url\": \"redis://127.0.0.1:6379?db=1\"}", 0, NULL},
        {"\"redis\": {\"url\": \"unix:\"}", 0, NULL},
        {"\"redis\": {\"url\": \"redis://[::1]:6380/2\"}", 1, NULL},
        {"\"redis\": {\"url\": \"unix:/tmp/../tmp/x.sock\"}", 1, NULL},
        {"\"account\": \"a{b}\"", 0, NULL},
        {"\"account\": \"a b\"", 0, NULL},
        {"\"account\": \"\"", 0, NULL},
        {"\"redis\": {\"prefix\": \"p{\"}", 0, NULL},
        {"\"instances\": 0", 0, NULL},
        {"\"instances\": 3", 1, NULL},
        {"\"redis\": {\"timeout_ms\": 0}", 0, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = check_config(cases[i].state, out, sizeof(out));
        ck_assert_msg((rc == 0) == cases[i].ok, "%s: exit %d: %s",
                      cases[i].state, rc, out);
        if (cases[i].secret)
            ck_assert_msg(strstr(out, cases[i].secret) == NULL, "%s echoed: %s",
                          cases[i].state, out);
    }
}
END_TEST

/* ---- one gateway's clock 30 s off ---- */

static long long
iso_ms(const char *s)
{
    struct tm tm = {0};
    if (s == NULL || strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) == NULL)
        return -1;
    return (long long)timegm(&tm) * 1000;
}

static long long
expires_of(int port, const char *phone_q)
{
    struct http_resp r;
    char path[160];
    snprintf(path, sizeof(path),
             "/admin/sessions?sender_id=12&recipient_phone=%s", phone_q);
    ck_assert_int_eq(admin(port, "GET", path, NULL, &r), 200);
    json_object *o = json_tokener_parse(r.body), *v;
    long long ms = -1;
    if (o && json_object_object_get_ex(o, "expires_at", &v))
        ms = iso_ms(json_object_get_string(v));
    json_object_put(o);
    http_free(&r);
    return ms;
}

START_TEST(a_clock_30_s_off_changes_nothing)
{
    if (access(FAKETIME_SO, R_OK) != 0)
        return; /* no libfaketime: nothing to skew */
    gw_start(0, &(struct gwopt){.skew = 0});
    gw_start(1, &(struct gwopt){.skew = 1});
    /* the skewed one really is off */
    struct http_resp r;
    /* an inbound event without received_at on each: "now" is Redis's */
    ck_assert_int_eq(admin(gw[0].port, "POST", "/admin/sessions/inbound",
                           "{\"sender_id\": 12, \"recipient_phone\": "
                           "\"+14155550001\"}",
                           NULL),
                     204);
    ck_assert_int_eq(admin(gw[1].port, "POST", "/admin/sessions/inbound",
                           "{\"sender_id\": 12, \"recipient_phone\": "
                           "\"+14155550002\"}",
                           NULL),
                     204);
    long long a = expires_of(gw[0].port, "%2B14155550001");
    long long b = expires_of(gw[0].port, "%2B14155550002");
    ck_assert(a > 0 && b > 0);
    ck_assert_msg(llabs(a - b) <= 2000,
                  "inbound on the skewed gateway opens the window %lld ms "
                  "longer",
                  b - a);
    /* idempotency: the skewed gateway's lease is Redis's */
    open_window();
    latency(600);
    struct batch bt;
    batch_init(&bt);
    batch_add(&bt, gw[1].port, "skew-lease", "key-skew");
    ck_assert(poll_until_record(&bt, "sent", 5000));
    char k[256];
    ck_assert_int_eq(one_key("*idem:*", k, sizeof(k)), 1);
    redisReply *l = rcmd("HGET %s lease", k);
    redisReply *t = rcmd("TIME");
    ck_assert(l && l->type == REDIS_REPLY_STRING && t &&
              t->type == REDIS_REPLY_ARRAY);
    long long lease = strtoll(l->str, NULL, 10);
    long long now = strtoll(t->element[0]->str, NULL, 10) * 1000000 +
                    strtoll(t->element[1]->str, NULL, 10);
    freeReplyObject(l);
    freeReplyObject(t);
    /* the sent lease: 1500 + 500 + 2000 ms from Redis's now */
    ck_assert_msg(llabs((lease - now) / 1000 - 4000) < 1000, "lease in %lld ms",
                  (lease - now) / 1000);
    batch_finish(&bt);
    ck_assert_int_eq(bt.status[0], 200);
    post(gw[0].port, "skew-lease", "key-skew", NULL, &r);
    ck_assert_str_eq(xwagate(&r), "replay");
    http_free(&r);
}
END_TEST

static Suite *
hostile_suite(void)
{
    Suite *s = suite_create("redis_hostile");
    TCase *tc = tcase_create("hostile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, odd_keys_and_two_callers_stay_apart);
    tcase_add_test(tc, frozen_during_begin_the_key_frees_after_the_lease);
    tcase_add_test(tc, frozen_at_sent_nothing_leaves_and_the_key_ends_free);
    tcase_add_test(
        tc, a_finish_refused_while_redis_is_down_is_kept_once_it_is_back);
    tcase_add_test(tc, restarted_empty_between_begin_and_finish_writes_nothing);
    tcase_add_test(tc, garbage_in_redis_is_a_clear_answer);
    tcase_add_test(tc, a_wrong_type_window_heals_when_learned_again);
    tcase_add_test(tc, slower_than_the_timeout_is_down_faster_is_up);
    tcase_add_test(tc, admin_calls_while_frozen_are_503_with_retry_after);
    tcase_add_test(tc, the_password_is_never_shown);
    tcase_add_test(tc, the_shared_state_config_is_judged);
    tcase_add_test(tc,
                   the_drain_ends_within_drain_timeout_while_redis_is_frozen);
    tcase_add_test(tc, a_clock_30_s_off_changes_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return harness_run_suite(hostile_suite());
}
