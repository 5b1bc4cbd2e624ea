/* shared_state_faults.c - SPEC section 11, "When Redis is unreachable",
 * end to end: one real Redis, one sandbox with its strict 5/s limit
 * (--rate-limit 5) and three real gateways sharing the state
 * (state.backend "redis", state.instances 3, 5/s, burst 1, max_queue_ms
 * 10000). Redis frozen (SIGSTOP) in the middle of a backlog, then thawed;
 * Redis restarted empty while sends are queued and keyed sends are in
 * flight. Every caller gets one answer within its deadline, keyed sends
 * get 503 STATE_UNAVAILABLE while the promise cannot be kept, unkeyed ones
 * are served at rate / instances (the sandbox never sees more than 5 in a
 * second and never answers 429), and everything comes back by itself.
 * Asserted from what the callers got, the gateways' /readyz, /metrics and
 * logs, and the sandbox's own request log. */
#include <check.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"
#include "hx_redis.h"

#define FREEFORM "/api/user/whatsapp/send-freeform"
#define NGW 3
#define MAX_QUEUE_MS 10000
#define UPSTREAM_TIMEOUT_MS 3000
#define REDIS_TIMEOUT_MS 250
/* no caller waits longer than its slot's bound, the transfer's, the Redis
 * round trips before it, and the loop's latency on 2 loaded cores */
#define CALL_DEADLINE_MS (MAX_QUEUE_MS + UPSTREAM_TIMEOUT_MS + 2500)
#define MAXCALLS 64

static struct hx_redis rs;
static struct proc sb, gw[NGW];
static char conf[NGW][64];
static int ngw;

/* ---- the processes ---- */

static void
start_all(void)
{
    char extra[1024];
    ck_assert_int_eq(hx_redis_start(&rs, 0, NULL), 0);
    ck_assert_int_eq(harness_start_sandbox(&sb, "5", NULL), 0);
    snprintf(extra, sizeof(extra),
             ", \"upstream\": {\"base_url\": \"http://127.0.0.1:%d\","
             " \"timeout_ms\": %d, \"connect_timeout_ms\": 500,"
             " \"rate_limit_rps\": 5, \"rate_limit_burst\": 1,"
             " \"max_queue_ms\": %d},"
             " \"state\": {\"backend\": \"redis\", \"instances\": 3,"
             " \"account\": \"faults\","
             " \"redis\": {\"url\": \"%s\", \"timeout_ms\": %d}}",
             sb.port, UPSTREAM_TIMEOUT_MS, MAX_QUEUE_MS, rs.url,
             REDIS_TIMEOUT_MS);
    for (int i = 0; i < NGW; i++) {
        ck_assert_int_eq(harness_start_gateway(&gw[i], sb.port, extra, conf[i],
                                               sizeof(conf[i])),
                         0);
        ngw = i + 1;
        ck_assert_msg(proc_wait_log(&gw[i], "state: redis up", 5000),
                      "gateway %d never reached Redis", i);
    }
}

/* Every gateway still answers /healthz and drains to exit 0 (a crash,
 * or a sanitizer's report, fails the test). */
static void
stop_all(void)
{
    int bad = 0;
    for (int i = 0; i < ngw; i++) {
        struct http_resp r;
        ck_assert_int_eq(harness_get(gw[i].port, "GET", "/healthz", NULL, &r),
                         0);
        ck_assert_int_eq(r.status, 200);
        http_free(&r);
    }
    for (int i = 0; i < ngw; i++) {
        int rc = proc_stop(&gw[i], 15000);
        if (rc != 0 && bad == 0)
            bad = i + 1;
        gw[i].pid = 0;
        unlink(conf[i]);
    }
    ngw = 0;
    proc_stop(&sb, 5000);
    sb.pid = 0;
    hx_redis_stop(&rs);
    ck_assert_msg(bad == 0, "gateway %d did not exit 0", bad - 1);
}

/* After a failed test: whatever it started is stopped all the same. */
static void
leave_nothing(void)
{
    for (int i = 0; i < NGW; i++) {
        if (gw[i].pid > 0)
            proc_stop(&gw[i], 5000);
        gw[i].pid = 0;
        if (conf[i][0])
            unlink(conf[i]);
    }
    ngw = 0;
    if (sb.pid > 0)
        proc_stop(&sb, 5000);
    sb.pid = 0;
    hx_redis_stop(&rs);
}

static void
pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* How many times needle is in p's output so far. */
static int
log_count(const struct proc *p, const char *needle)
{
    char *log = proc_log(p);
    int n = 0;
    for (const char *s = log; s && (s = strstr(s, needle)) != NULL; s++)
        n++;
    free(log);
    return n;
}

/* /readyz's "state" of gateway i into out; its HTTP status. */
static long
readyz(int i, char *out, size_t outlen)
{
    struct http_resp r;
    ck_assert_int_eq(harness_get(gw[i].port, "GET", "/readyz", NULL, &r), 0);
    json_object *o = json_tokener_parse(r.body), *v;
    out[0] = '\0';
    if (o && json_object_object_get_ex(o, "state", &v))
        snprintf(out, outlen, "%s", json_object_get_string(v));
    json_object_put(o);
    long st = r.status;
    http_free(&r);
    return st;
}

/* A sample of gateway i's /metrics, or -1. */
static double
metric(int i, const char *name)
{
    struct http_resp r;
    double v = -1;
    char head[128];
    ck_assert_int_eq(harness_get(gw[i].port, "GET", "/metrics", NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    snprintf(head, sizeof(head), "\n%s ", name);
    const char *p = strstr(r.body, head);
    if (p != NULL)
        v = atof(p + strlen(head));
    http_free(&r);
    return v;
}

static void
open_windows(const char *tag, int n)
{
    for (int i = 0; i < n; i++) {
        char body[128];
        snprintf(body, sizeof(body),
                 "{\"sender_id\":12,\"recipient_phone\":\"+1415%s%04d\"}", tag,
                 i);
        ck_assert_int_eq(
            hx_sandbox_control(sb.port, "POST", "/_sandbox/inbound", body),
            204);
    }
}

/* ---- many callers at once, through one curl multi ---- */

struct call {
    CURL *e;
    struct curl_slist *h;
    char body[200];
    char hdrs[1024];
    char resp[512];
    int keyed;
    int gw;
    int idx; /* its phone and message number */
    long status;
    int curl_rc;
    int done;
    double started_ms, total_ms;
};

struct calls {
    CURLM *m;
    struct call c[MAXCALLS];
    int n, left;
};

static size_t
keep_header(char *d, size_t s, size_t n, void *arg)
{
    struct call *c = arg;
    size_t have = strlen(c->hdrs), add = s * n;
    if (have + add < sizeof(c->hdrs)) {
        memcpy(c->hdrs + have, d, add);
        c->hdrs[have + add] = '\0';
    }
    return s * n;
}

static size_t
keep_body(char *d, size_t s, size_t n, void *arg)
{
    struct call *c = arg;
    size_t have = strlen(c->resp), add = s * n;
    if (have + add < sizeof(c->resp)) {
        memcpy(c->resp + have, d, add);
        c->resp[have + add] = '\0';
    }
    return s * n;
}

static void
calls_init(struct calls *cs)
{
    memset(cs, 0, sizeof(*cs));
    cs->m = curl_multi_init();
    ck_assert_ptr_nonnull(cs->m);
}

/* A send to gateway g for phone "+1415<tag><i>", with an
 * Idempotency-Key when key is not NULL; under way at once. */
static struct call *
calls_add(struct calls *cs, int g, const char *tag, int i, const char *key)
{
    ck_assert_int_lt(cs->n, MAXCALLS);
    struct call *c = &cs->c[cs->n++];
    char url[128], kh[160];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d" FREEFORM, gw[g].port);
    snprintf(c->body, sizeof(c->body),
             "{\"sender_id\":12,\"recipient_phone\":\"+1415%s%04d\","
             "\"message\":\"faults %s %d\"}",
             tag, i, tag, i);
    c->gw = g;
    c->idx = i;
    c->keyed = key != NULL;
    c->h = curl_slist_append(NULL, "Content-Type: application/json");
    if (key != NULL) {
        snprintf(kh, sizeof(kh), "Idempotency-Key: %s", key);
        c->h = curl_slist_append(c->h, kh);
    }
    c->e = curl_easy_init();
    curl_easy_setopt(c->e, CURLOPT_URL, url);
    curl_easy_setopt(c->e, CURLOPT_HTTPHEADER, c->h);
    curl_easy_setopt(c->e, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(c->e, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(c->e, CURLOPT_WRITEDATA, (void *)c);
    curl_easy_setopt(c->e, CURLOPT_HEADERFUNCTION, keep_header);
    curl_easy_setopt(c->e, CURLOPT_HEADERDATA, (void *)c);
    /* the caller's own bound: well past what the gateway may take */
    curl_easy_setopt(c->e, CURLOPT_TIMEOUT_MS, (long)CALL_DEADLINE_MS + 10000);
    curl_easy_setopt(c->e, CURLOPT_PRIVATE, (void *)c);
    c->started_ms = clock_mono_ms();
    curl_multi_add_handle(cs->m, c->e);
    cs->left++;
    return c;
}

/* Drives the calls for at most ms. */
static void
calls_pump(struct calls *cs, double ms)
{
    double end = clock_mono_ms() + ms;
    int running;
    do {
        curl_multi_perform(cs->m, &running);
        CURLMsg *msg;
        int q;
        while ((msg = curl_multi_info_read(cs->m, &q)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            char *p;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &p);
            struct call *c = (struct call *)(void *)p;
            c->curl_rc = (int)msg->data.result;
            curl_easy_getinfo(c->e, CURLINFO_RESPONSE_CODE, &c->status);
            c->total_ms = clock_mono_ms() - c->started_ms;
            c->done = 1;
            cs->left--;
        }
        if (cs->left > 0)
            curl_multi_poll(cs->m, NULL, 0, 10, NULL);
    } while (cs->left > 0 && clock_mono_ms() < end);
}

/* Drives them until every one is answered (at most ms); 1 if they were. */
static int
calls_finish(struct calls *cs, double ms)
{
    double end = clock_mono_ms() + ms;
    while (cs->left > 0 && clock_mono_ms() < end)
        calls_pump(cs, 50);
    return cs->left == 0;
}

static void
calls_free(struct calls *cs)
{
    for (int i = 0; i < cs->n; i++) {
        curl_multi_remove_handle(cs->m, cs->c[i].e);
        curl_easy_cleanup(cs->c[i].e);
        curl_slist_free_all(cs->c[i].h);
    }
    curl_multi_cleanup(cs->m);
    cs->n = 0;
}

/* ---- what the sandbox saw ---- */

#define SEEN_MAX 256

/* Sends the sandbox has recorded so far. */
static int
sandbox_sends(void)
{
    struct hx_seen s;
    hx_sandbox_seen(sb.port, &s);
    return s.n;
}

/* Recorded requests whose body holds needle. */
static int
sandbox_count_body(const char *needle)
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

/* Pumps cs until the sandbox has seen at least n sends (at most ms). */
static int
pump_until_sent(struct calls *cs, int n, double ms)
{
    double end = clock_mono_ms() + ms;
    while (clock_mono_ms() < end) {
        if (sandbox_sends() >= n)
            return 1;
        calls_pump(cs, 20);
    }
    return 0;
}

/* Pumps cs (may be NULL) until each gateway's log holds needle at least
 * n times (at most ms). */
static int
pump_until_logged(struct calls *cs, const char *needle, int n, double ms)
{
    double end = clock_mono_ms() + ms;
    while (clock_mono_ms() < end) {
        int all = 1;
        for (int i = 0; i < ngw; i++)
            all &= log_count(&gw[i], needle) >= n;
        if (all)
            return 1;
        if (cs != NULL)
            calls_pump(cs, 20);
        else
            pause_ms(10);
    }
    return 0;
}

/* ---- what the callers got ---- */

static int
has(const struct call *c, const char *needle)
{
    return strstr(c->hdrs, needle) != NULL || strstr(c->resp, needle) != NULL;
}

/* An unkeyed send: served (200 from the sandbox), or refused by the
 * gateway itself (429 RATE_LIMITED with Retry-After, its slot too far). */
static void
assert_served(const struct call *c, const char *what)
{
    ck_assert_msg(c->status == 200 || c->status == 429,
                  "%s (gateway %d): %ld %s", what, c->gw, c->status, c->resp);
    if (c->status == 429) {
        ck_assert_msg(has(c, "RATE_LIMITED"), "%s: 429 %s", what, c->resp);
        ck_assert(has(c, "Retry-After: "));
        ck_assert_msg(has(c, "X-Wagate: gateway; reason=rate_limited"),
                      "%s (gateway %d): 429 not the gateway's: %s%s", what,
                      c->gw, c->hdrs, c->resp);
    }
}

/* Exactly one answer, in time. */
static void
assert_answered(const struct call *c, const char *what)
{
    ck_assert_msg(c->done && c->curl_rc == 0,
                  "%s (gateway %d): no answer (curl %d)", what, c->gw,
                  c->curl_rc);
    ck_assert_msg(c->total_ms <= CALL_DEADLINE_MS,
                  "%s (gateway %d): answered after %.0f ms", what, c->gw,
                  c->total_ms);
}

static void
assert_state_unavailable(const struct call *c, const char *what)
{
    ck_assert_msg(c->status == 503 && has(c, "STATE_UNAVAILABLE"),
                  "%s (gateway %d): %ld %s", what, c->gw, c->status, c->resp);
    ck_assert_msg(has(c, "Retry-After: "), "%s: no Retry-After", what);
}

/* One keyed send, waited for (at most CALL_DEADLINE_MS). */
static void
keyed_send(int g, const char *tag, int i, const char *key, struct call *out)
{
    struct calls cs;
    calls_init(&cs);
    calls_add(&cs, g, tag, i, key);
    ck_assert(calls_finish(&cs, CALL_DEADLINE_MS));
    *out = cs.c[0];
    out->e = NULL;
    out->h = NULL;
    calls_free(&cs);
}

/* ---- the tests ---- */

#define BACKLOG 30

/* Frozen in the middle of a backlog: each instance goes on alone at
 * rate / 3, keyed sends are refused 503 with Retry-After, unkeyed ones
 * are served, nobody hangs, the sandbox never sees more than its limit;
 * thawed: shared again without a restart, and a keyed send is one send
 * for every instance again. */
static void
frozen_case(int freeze_after, int thaw_mid_backlog)
{
    char state[32];
    start_all();
    open_windows("555", BACKLOG + 16);
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "DELETE", "/_sandbox/requests", NULL), 204);
    for (int i = 0; i < NGW; i++) {
        ck_assert_int_eq(readyz(i, state, sizeof(state)), 200);
        ck_assert_str_eq(state, "shared");
    }

    struct calls cs;
    calls_init(&cs);
    for (int i = 0; i < BACKLOG; i++)
        calls_add(&cs, i % NGW, "555", i, NULL);
    /* the backlog drains at 5/s: freeze once some of it went */
    ck_assert(pump_until_sent(&cs, freeze_after, 5000));
    double frozen_at = clock_mono_ms();
    hx_redis_freeze(&rs);

    /* during the freeze: keyed sends, and more unkeyed ones */
    int first_keyed = cs.n;
    for (int i = 0; i < NGW; i++) {
        char key[64];
        snprintf(key, sizeof(key), "frozen-key-%d", i);
        calls_add(&cs, i, "555", BACKLOG + i, key);
    }
    int first_late = cs.n;
    for (int i = 0; i < 6; i++)
        calls_add(&cs, i % NGW, "555", BACKLOG + NGW + i, NULL);
    int total = cs.n;

    /* every instance notices (its commands time out) and says so */
    ck_assert_msg(pump_until_logged(&cs, "state: redis down", 1, 5000),
                  "a gateway never logged the freeze");
    double detected_ms = clock_mono_ms() - frozen_at;
    for (int i = 0; i < NGW; i++) {
        ck_assert_int_eq(readyz(i, state, sizeof(state)), 200);
        ck_assert_str_eq(state, "degraded");
        ck_assert(metric(i, "wagate_state_up") == 0);
    }
    double thawed_at = 0;
    int came_back = 0;
    if (thaw_mid_backlog) {
        /* degraded mode sends some, then Redis answers again while the
         * queues still hold most of the backlog */
        ck_assert(pump_until_sent(&cs, sandbox_sends() + 3, 5000));
        thawed_at = clock_mono_ms();
        hx_redis_thaw(&rs);
        came_back = pump_until_logged(&cs, "state: redis up", 2, 10000);
    }
    ck_assert(calls_finish(&cs, CALL_DEADLINE_MS + 5000));
    double drained_ms = clock_mono_ms() - frozen_at;
    if (getenv("FAULTS_TRACE")) {
        struct hx_seen t;
        hx_sandbox_seen(sb.port, &t);
        json_object *reqs = hx_sandbox_requests(sb.port);
        char *logs[NGW];
        for (int g = 0; g < NGW; g++)
            logs[g] = proc_log(&gw[g]);
        for (size_t i = 0; reqs && i < json_object_array_length(reqs); i++) {
            json_object *e = json_object_array_get_idx(reqs, i), *v;
            const char *rid = hx_sandbox_req_header(e, "X-Request-Id");
            int who = -1;
            for (int g = 0; g < NGW && rid; g++)
                if (logs[g] && strstr(logs[g], rid))
                    who = g;
            double at = json_object_object_get_ex(e, "mono_ms", &v)
                            ? json_object_get_double(v)
                            : 0;
            fprintf(stderr, "arrival %2zu: %+7.0f ms from the freeze, gw%d\n",
                    i, at - frozen_at, who);
        }
        for (int g = 0; g < NGW; g++)
            free(logs[g]);
        json_object_put(reqs);
        for (int i = 0; i < total; i++)
            fprintf(stderr, "call %2d gw%d: %ld at %+7.0f ms %s\n", i,
                    cs.c[i].gw, cs.c[i].status,
                    cs.c[i].started_ms + cs.c[i].total_ms - frozen_at,
                    cs.c[i].status == 200 ? "" : cs.c[i].resp);
    }

    int ok = 0, limited = 0;
    for (int i = 0; i < total; i++) {
        const struct call *c = &cs.c[i];
        const char *what = i < first_keyed  ? "backlog"
                           : i < first_late ? "keyed, frozen"
                                            : "unkeyed, frozen";
        assert_answered(c, what);
        if (i >= first_keyed && i < first_late) {
            assert_state_unavailable(c, what);
            continue;
        }
        assert_served(c, what);
        ok += c->status == 200;
        limited += c->status == 429;
    }
    double keyed_max = 0;
    for (int i = first_keyed; i < first_late; i++)
        if (cs.c[i].total_ms > keyed_max)
            keyed_max = cs.c[i].total_ms;
    struct hx_seen s;
    hx_sandbox_seen(sb.port, &s);
    int worst = hx_worst_window(&s, NULL);
    fprintf(stderr,
            "frozen: detected in %.0f ms, drained %.0f ms after the freeze;"
            " %d x 200, %d x 429 of %d unkeyed; keyed 503 within %.0f ms;"
            " sandbox saw %d (%d refused), worst window %d\n",
            detected_ms, drained_ms, ok, limited, total - NGW, keyed_max, s.n,
            s.limited, worst);
    ck_assert_int_eq(s.n, ok); /* one send per 200, none for the rest */
    ck_assert_int_eq(s.limited, 0);
    ck_assert_int_le(worst, 5);
    ck_assert_int_gt(ok, 4); /* served, not only refused */
    for (int i = first_keyed; i < first_late; i++) {
        char needle[64];
        snprintf(needle, sizeof(needle), "faults 555 %d\"", cs.c[i].idx);
        ck_assert_int_eq(sandbox_count_body(needle), 0);
    }
    calls_free(&cs);

    /* thawed: each link reconnects by itself, no restart, no traffic */
    if (!thaw_mid_backlog) {
        thawed_at = clock_mono_ms();
        hx_redis_thaw(&rs);
        came_back = pump_until_logged(NULL, "state: redis up", 2, 10000);
    }
    ck_assert_msg(came_back, "a gateway never came back");
    double back_ms = clock_mono_ms() - thawed_at;
    for (int i = 0; i < NGW; i++) {
        ck_assert_int_eq(readyz(i, state, sizeof(state)), 200);
        ck_assert_str_eq(state, "shared");
        ck_assert(metric(i, "wagate_state_up") == 1);
        ck_assert(metric(i, "wagate_state_reconnects_total") >= 1);
    }
    fprintf(stderr, "thawed: every gateway shared again after %.0f ms\n",
            back_ms);
    /* a keyed send is one send again, for every instance */
    struct call k;
    keyed_send(0, "555", BACKLOG + 12, "after-thaw", &k);
    ck_assert_msg(k.status == 200, "after the thaw: %ld %s", k.status, k.resp);
    keyed_send(1, "555", BACKLOG + 12, "after-thaw", &k);
    ck_assert_msg(k.status == 200, "replay: %ld %s", k.status, k.resp);
    keyed_send(2, "555", BACKLOG + 12, "after-thaw", &k);
    ck_assert_msg(k.status == 200, "replay: %ld %s", k.status, k.resp);
    char needle[64];
    snprintf(needle, sizeof(needle), "faults 555 %d\"", BACKLOG + 12);
    ck_assert_int_eq(sandbox_count_body(needle), 1);
    hx_sandbox_seen(sb.port, &s);
    ck_assert_int_eq(s.limited, 0);

    /* idle gateways notice a freeze by themselves (the link's health
     * check), and the thaw */
    hx_redis_freeze(&rs);
    double idle_frozen_at = clock_mono_ms();
    ck_assert_msg(pump_until_logged(NULL, "state: redis down", 2, 3000),
                  "an idle gateway never noticed the freeze");
    double idle_detect_ms = clock_mono_ms() - idle_frozen_at;
    for (int i = 0; i < NGW; i++) {
        ck_assert_int_eq(readyz(i, state, sizeof(state)), 200);
        ck_assert_str_eq(state, "degraded");
        ck_assert(metric(i, "wagate_state_up") == 0);
    }
    hx_redis_thaw(&rs);
    ck_assert(pump_until_logged(NULL, "state: redis up", 3, 10000));
    fprintf(stderr, "idle: every gateway degraded %.0f ms after a freeze\n",
            idle_detect_ms);
    stop_all();
}

/* Frozen once 2 went (at most 3 in the second before the freeze: see
 * frozen_after_a_full_second for more). */
START_TEST(frozen_mid_backlog_then_thawed)
{
    frozen_case(2, 0);
}
END_TEST

/* Frozen once the second before held 4 or 5 departures. Each instance's
 * own guard (one per window at rate / 3) counts only its own departures;
 * when the shared schedule gave the last second's slots to one instance,
 * the two others sent at once when their link went down (4 + 2 = 6
 * within a second, a 429 about 1 run in 3) until the shaper kept quiet
 * for a window + cap after going down (shaper.h). */
START_TEST(frozen_after_a_full_second)
{
    frozen_case(5, 0);
}
END_TEST

/* Thawed while the queues still hold the backlog. The departures each
 * instance made alone while Redis was frozen are not in Redis's
 * departure log, so an instance back on the shared guard at once let up
 * to 5 more go within the second after the thaw (a 429) until each
 * told Redis of them when it rejoined (one "back", shaper.h); a
 * heartbeat held in the frozen Redis and run at the thaw must not make
 * an instance alive that is sending alone (its stamp is too old then). */
START_TEST(frozen_then_thawed_mid_backlog)
{
    frozen_case(2, 1);
}
END_TEST

#define QUEUED 15
#define KEYED 6

/* The number of "cmdstat_<cmd>:calls=" in Redis's INFO commandstats. */
static long
redis_calls(const char *cmd)
{
    redisContext *c = hx_redis_connect(&rs);
    ck_assert_ptr_nonnull(c);
    redisReply *r = redisCommand(c, "INFO commandstats");
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    char head[64];
    snprintf(head, sizeof(head), "cmdstat_%s:calls=", cmd);
    const char *p = strstr(r->str, head);
    long n = p ? atol(p + strlen(head)) : 0;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

/* Restarted empty while sends are queued and keyed sends are in flight:
 * no crash, every caller answered within its deadline, no keyed send
 * sent twice, the sandbox never refuses; afterwards keyed and unkeyed
 * sends work on every instance, also once Redis's script cache is
 * emptied under a live link (NOSCRIPT, then EVAL). */
static void
restart_case(int more_after)
{
    start_all();
    open_windows("666", QUEUED + KEYED + 20);
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "DELETE", "/_sandbox/requests", NULL), 204);

    struct calls cs;
    calls_init(&cs);
    for (int i = 0; i < QUEUED + KEYED; i++) {
        char key[64];
        snprintf(key, sizeof(key), "restart-key-%d", i);
        /* keyed ones spread along the queue */
        calls_add(&cs, i % NGW, "666", i, i % 4 == 1 ? key : NULL);
    }
    ck_assert(pump_until_sent(&cs, 3, 5000));
    double restart_at = clock_mono_ms();
    ck_assert_int_eq(hx_redis_restart(&rs), 0);
    double restarted_ms = clock_mono_ms() - restart_at;
    /* new sends while the old ones still hold slots of the lost
     * schedule (see restarted_then_new_sends) */
    for (int i = 0; i < more_after; i++)
        calls_add(&cs, i % NGW, "666", QUEUED + KEYED + 10 + i, NULL);
    ck_assert(calls_finish(&cs, CALL_DEADLINE_MS + 5000));

    int ok = 0, limited = 0, unavailable = 0, keyed_ok = 0;
    for (int i = 0; getenv("FAULTS_TRACE") && i < cs.n; i++)
        fprintf(stderr, "call %2d gw%d %s: %ld after %.0f ms %s\n", i,
                cs.c[i].gw, cs.c[i].keyed ? "keyed" : "plain", cs.c[i].status,
                cs.c[i].total_ms, cs.c[i].status == 200 ? "" : cs.c[i].resp);
    for (int i = 0; i < cs.n; i++) {
        const struct call *c = &cs.c[i];
        const char *what = c->keyed ? "keyed" : "unkeyed";
        assert_answered(c, what);
        if (c->keyed && c->status == 503) {
            assert_state_unavailable(c, what);
            unavailable++;
            continue;
        }
        assert_served(c, what);
        ok += c->status == 200;
        keyed_ok += c->keyed && c->status == 200;
        limited += c->status == 429;
    }
    struct hx_seen s;
    hx_sandbox_seen(sb.port, &s);
    int worst = hx_worst_window(&s, NULL);
    double slowest = 0;
    for (int i = 0; i < cs.n; i++)
        slowest = cs.c[i].total_ms > slowest ? cs.c[i].total_ms : slowest;
    fprintf(stderr,
            "restart: Redis back in %.0f ms; %d reached the sandbox (%d "
            "keyed), %d x 429,"
            " %d keyed x 503; slowest answer %.0f ms; sandbox saw %d (%d "
            "refused), worst window %d\n",
            restarted_ms, ok, keyed_ok, limited, unavailable, slowest, s.n,
            s.limited, worst);
    if (getenv("FAULTS_TRACE"))
        for (int i = 0; i < s.n; i++)
            fprintf(stderr, "arrival %2d: %8.0f (+%4.0f)\n", i, s.t[i] - s.t[0],
                    i ? s.t[i] - s.t[i - 1] : 0);
    /* the rejoin (each instance tells Redis what it sent alone) and the
     * lost log's hold (no grant for a window after the log began again)
     * cover the departures lost with Redis (shaper.h) */
    ck_assert_int_eq(s.limited, 0);
    ck_assert_int_le(worst, 5);
    ck_assert_int_eq(s.n, ok);
    /* a keyed send is sent once or not at all */
    for (int i = 0; i < cs.n; i++) {
        char needle[64];
        snprintf(needle, sizeof(needle), "faults 666 %d\"", cs.c[i].idx);
        int n = sandbox_count_body(needle);
        int reached =
            cs.c[i].status == 200 ||
            (cs.c[i].status == 429 && !has(&cs.c[i], "X-Wagate: gateway"));
        ck_assert_int_eq(n, reached ? 1 : 0);
    }

    /* back: each link reconnected and reloaded its scripts by itself */
    ck_assert_msg(pump_until_logged(NULL, "state: redis up", 2, 10000),
                  "a gateway never came back");
    char state[32];
    for (int i = 0; i < NGW; i++) {
        ck_assert_int_eq(readyz(i, state, sizeof(state)), 200);
        ck_assert_str_eq(state, "shared");
    }
    /* a keyed send refused 503 is sent once when retried */
    for (int i = 0; i < cs.n; i++) {
        if (!(cs.c[i].keyed && cs.c[i].status == 503))
            continue;
        char key[64], needle[64];
        struct call k;
        snprintf(key, sizeof(key), "restart-key-%d", i);
        keyed_send((i + 1) % NGW, "666", i, key, &k);
        ck_assert_msg(k.status == 200, "retry of %d: %ld %s", i, k.status,
                      k.resp);
        snprintf(needle, sizeof(needle), "faults 666 %d\"", i);
        ck_assert_int_eq(sandbox_count_body(needle), 1);
    }
    calls_free(&cs);

    /* the script cache emptied under live links: NOSCRIPT, then EVAL */
    redisContext *rc = hx_redis_connect(&rs);
    ck_assert_ptr_nonnull(rc);
    redisReply *rr = redisCommand(rc, "SCRIPT FLUSH");
    ck_assert_ptr_nonnull(rr);
    freeReplyObject(rr);
    redisFree(rc);
    long evals = redis_calls("eval");
    for (int i = 0; i < NGW; i++) {
        char key[64];
        struct call k;
        snprintf(key, sizeof(key), "after-flush-%d", i);
        keyed_send(i, "666", QUEUED + KEYED + i, key, &k);
        ck_assert_msg(k.status == 200, "keyed after the flush on %d: %ld %s", i,
                      k.status, k.resp);
        keyed_send(i, "666", QUEUED + KEYED + 4 + i, NULL, &k);
        ck_assert_msg(k.status == 200, "unkeyed after the flush on %d: %ld %s",
                      i, k.status, k.resp);
    }
    ck_assert_int_gt(redis_calls("eval"), evals);
    for (int i = 0; i < NGW; i++) {
        ck_assert_int_eq(readyz(i, state, sizeof(state)), 200);
        ck_assert_str_eq(state, "shared");
    }
    int refused_around = s.limited;
    hx_sandbox_seen(sb.port, &s);
    ck_assert_int_eq(s.limited, refused_around); /* none since */
    stop_all();
}

START_TEST(restarted_empty_under_load)
{
    restart_case(0);
}
END_TEST

/* New sends right after the restart, while the queues still hold slots
 * of the schedule Redis lost. The empty Redis gives the new ones slots
 * from now and its departure log has forgotten the last second's
 * departures: the shared guard let up to 5 more go within that second (a
 * 429) until the link's drop became a transition like a freeze's and
 * the rejoin found the log lost (shaper.h: no grant for a window + cap
 * after the log began again). */
START_TEST(restarted_then_new_sends)
{
    restart_case(9);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("shared_state_faults");
    TCase *tc = tcase_create("frozen");
    tcase_add_checked_fixture(tc, NULL, leave_nothing);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, frozen_mid_backlog_then_thawed);
    tcase_add_test(tc, frozen_after_a_full_second);
    tcase_add_test(tc, frozen_then_thawed_mid_backlog);
    suite_add_tcase(s, tc);
    tc = tcase_create("restarted");
    tcase_add_checked_fixture(tc, NULL, leave_nothing);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, restarted_empty_under_load);
    tcase_add_test(tc, restarted_then_new_sends);
    suite_add_tcase(s, tc);
    return harness_run_suite(s);
}
