/* state_answers_that_come_late.c - the pipeline when its state answers
 * come later (state.h): the real wagate, with WAGATE_TEST_STATE_DELAY_MS
 * making the memory backend answer from a timer as a remote store would,
 * in front of the real wagate-sandbox. Each request is still answered
 * exactly once, with the bytes it gets without the delay; a caller that
 * hangs up while its state answer is awaited never makes a key send
 * twice; a drain cuts off what waits for the state as "not_sent" and
 * exits cleanly. */
#include <check.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"

#define FREEFORM "/api/user/whatsapp/send-freeform"
#define SEND "/api/user/whatsapp/send"
#define DELAY_MS 250

static struct proc sb;

static const char *
bin(const char *var, const char *fallback)
{
    const char *v = getenv(var);
    return v && *v ? v : fallback;
}

/* A gateway in front of the sandbox whose state answers come delay_ms
 * late, sending at rate a second; extra: top-level config members
 * (starting with ',') or NULL. */
static void
gw_start_rate(struct proc *p, long delay_ms, const char *rate,
              const char *extra, char *conf, size_t conflen)
{
    static char keyenv[] = "AUTOCALLS_API_KEY=" HARNESS_UPSTREAM_KEY;
    char delayenv[64], text[2048];
    snprintf(delayenv, sizeof(delayenv), "WAGATE_TEST_STATE_DELAY_MS=%ld",
             delay_ms);
    char *env[] = {keyenv, delayenv, NULL};
    snprintf(text, sizeof(text),
             "{\"listen\": [\"127.0.0.1:0\"],\n"
             " \"upstream\": {\"base_url\": \"http://127.0.0.1:%d\",\n"
             "   \"timeout_ms\": 3000, \"connect_timeout_ms\": 500,\n"
             "   \"rate_limit_rps\": %s, \"rate_limit_burst\": 1},\n"
             " \"limits\": {\"client_timeout_ms\": 1000,"
             " \"max_body_bytes\": 4096}%s}\n",
             sb.port, rate, extra ? extra : "");
    write_temp(text, conf, conflen);
    char *argv[] = {(char *)bin("WAGATE_BIN", "./wagate"), "-c", conf, NULL};
    ck_assert_int_eq(proc_start(p, argv, env), 0);
    if (delay_ms > 0) /* the delay is in force, not ignored */
        ck_assert(proc_wait_log(p, "WAGATE_TEST_STATE_DELAY_MS", 1000));
}

static void
gw_start(struct proc *p, long delay_ms, const char *extra, char *conf,
         size_t conflen)
{
    gw_start_rate(p, delay_ms, "10000", extra, conf, conflen);
}

/* Waits for p's exit; its status, or -1 after timeout_ms. */
static int
wait_exit(struct proc *p, int timeout_ms)
{
    double end = clock_mono_ms() + timeout_ms;
    int st;
    while (clock_mono_ms() < end) {
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            p->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static void
setup(void)
{
    ck_assert_int_eq(harness_start_sandbox(&sb, "0", NULL), 0);
}

static void
teardown(void)
{
    ck_assert_int_eq(proc_stop(&sb, 5000), 0);
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

/* A send with an Idempotency-Key (NULL: none). */
static void
post(int port, const char *path, const char *body, const char *key,
     struct http_resp *r)
{
    char kh[300];
    const char *h[2] = {NULL, NULL};
    if (key != NULL) {
        snprintf(kh, sizeof(kh), "Idempotency-Key: %s", key);
        h[0] = kh;
    }
    ck_assert_int_eq(harness_post(port, path, body, h, r), 0);
}

static void
header(const struct http_resp *r, const char *name, char *out, size_t n)
{
    if (http_header(r, name, out, n) == NULL)
        snprintf(out, n, "(none)");
}

/* What a caller sees of an answer that does not change from one run to
 * the next: status, X-Wagate, Content-Type, Retry-After and the body. */
static void
assert_same_answer(const struct http_resp *a, const struct http_resp *b,
                   const char *what)
{
    static const char *names[] = {"X-Wagate", "Content-Type", "Retry-After"};
    ck_assert_msg(a->status == b->status, "%s: %ld vs %ld", what, a->status,
                  b->status);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char va[256], vb[256];
        header(a, names[i], va, sizeof(va));
        header(b, names[i], vb, sizeof(vb));
        ck_assert_msg(strcmp(va, vb) == 0, "%s: %s %s vs %s", what, names[i],
                      va, vb);
    }
    ck_assert_msg(a->body_len == b->body_len &&
                      memcmp(a->body, b->body, a->body_len) == 0,
                  "%s: bodies differ:\n%s\n%s", what, a->body, b->body);
}

static void
assert_xwagate(const struct http_resp *r, const char *want)
{
    char v[128];
    ck_assert_ptr_nonnull(http_header(r, "X-Wagate", v, sizeof(v)));
    ck_assert_str_eq(v, want);
}

/* The value of a gauge or counter line "name value" in /metrics. */
static double
metric(int port, const char *name)
{
    struct http_resp r;
    double v = -1;
    char pat[128];
    snprintf(pat, sizeof(pat), "\n%s ", name);
    if (harness_get(port, "GET", "/metrics", NULL, &r) == 0) {
        const char *p = strstr(r.body, pat);
        if (p != NULL)
            v = strtod(p + strlen(pat), NULL);
    }
    http_free(&r);
    return v;
}

/* Each wagate_requests_total series (route, decision, status) appears
 * once in /metrics, whichever module counted it. Returns how many. */
static int
assert_one_line_per_series(int port)
{
    struct http_resp r;
    ck_assert_int_eq(harness_get(port, "GET", "/metrics", NULL, &r), 0);
    int n = 0;
    static const char name[] = "wagate_requests_total{";
    for (const char *p = strstr(r.body, name); p != NULL;
         p = strstr(p + 1, name)) {
        const char *end = strchr(p, '}');
        ck_assert_ptr_nonnull(end);
        size_t len = (size_t)(end - p) + 1;
        int seen = 0;
        for (const char *q = strstr(r.body, name); q != NULL && q < p;
             q = strstr(q + 1, name))
            seen += strncmp(q, p, len) == 0;
        ck_assert_msg(seen == 0, "series twice: %.*s", (int)len, p);
        n++;
    }
    http_free(&r);
    return n;
}

/* ---- the same answers, late ---- */

#define NSTEPS 9

/* One run of requests whose answers do not depend on the run (no ids, no
 * clock): sandbox refusals, the gateway's own answers and replays. */
static void
run_steps(int port, struct http_resp *r)
{
    const char *closed = "{\"sender_id\":12,\"recipient_phone\":"
                         "\"+14155550170\",\"message\":\"closed\"}";
    const char *nobody = "{\"sender_id\":99,\"recipient_phone\":"
                         "\"+14155550171\",\"template_id\":101}";
    const char *offline = "{\"sender_id\":13,\"recipient_phone\":"
                          "\"+14155550172\",\"message\":\"offline\"}";
    const char *other = "{\"sender_id\":99,\"recipient_phone\":"
                        "\"+14155550171\",\"template_id\":102}";
    post(port, FREEFORM, closed, NULL, &r[0]);     /* the sandbox's 403 */
    post(port, FREEFORM, closed, NULL, &r[1]);     /* learned: the gateway's */
    post(port, SEND, nobody, "k-nobody", &r[2]);   /* 404, kept for the key */
    post(port, SEND, nobody, "k-nobody", &r[3]);   /* the replay */
    post(port, SEND, other, "k-nobody", &r[4]);    /* 422 reused */
    post(port, FREEFORM, offline, "k-off", &r[5]); /* 503: the key is freed */
    /* free again, and answered from the refusal learned (SPEC 4a) */
    post(port, FREEFORM, offline, "k-off", &r[6]);
    post(port, FREEFORM, "{\"sender_id\":12}", "k-bad", &r[7]); /* 422 */
    ck_assert_int_eq(harness_get(port, "GET",
                                 "/api/user/whatsapp/senders?status=all", NULL,
                                 &r[8]),
                     0);
}

START_TEST(late_state_answers_give_the_same_bytes_once)
{
    struct proc now, late;
    char conf_now[64], conf_late[64];
    struct http_resp a[NSTEPS], b[NSTEPS];
    gw_start(&now, 0, NULL, conf_now, sizeof(conf_now));
    run_steps(now.port, a);
    int sent_now = hx_sandbox_count(sb.port);
    ck_assert_int_eq(proc_stop(&now, 5000), 0);
    unlink(conf_now);
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "DELETE", "/_sandbox/requests", NULL), 204);
    gw_start(&late, DELAY_MS, NULL, conf_late, sizeof(conf_late));
    double t0 = clock_mono_ms();
    run_steps(late.port, b);
    /* the state was asked at least once per step, each DELAY_MS late */
    ck_assert(clock_mono_ms() - t0 >= 7.0 * DELAY_MS);
    ck_assert_int_eq(hx_sandbox_count(sb.port), sent_now);
    ck_assert_int_eq(sent_now, 4); /* 403, 404, 503, senders */
    for (int i = 0; i < NSTEPS; i++) {
        char what[32];
        snprintf(what, sizeof(what), "step %d", i);
        assert_same_answer(&a[i], &b[i], what);
        http_free(&a[i]);
    }
    ck_assert_int_eq(b[0].status, 403);
    assert_xwagate(&b[0], "upstream");
    assert_xwagate(&b[1], "gateway; reason=session_expired");
    assert_xwagate(&b[3], "replay");
    assert_xwagate(&b[4], "gateway; reason=idempotency_key_reused");
    ck_assert_int_eq(b[6].status, 503);
    assert_xwagate(&b[5], "upstream");
    assert_xwagate(&b[6], "gateway; reason=sender_offline");
    for (int i = 0; i < NSTEPS; i++)
        http_free(&b[i]);
    ck_assert_int_ge(assert_one_line_per_series(late.port), 6);

    /* one answer per request, on a connection the caller closes after */
    open_window("+14155550173");
    const char *msg = "{\"sender_id\":12,\"recipient_phone\":"
                      "\"+14155550173\",\"message\":\"exactly-once\"}";
    char req[512], out[8192];
    int n = snprintf(req, sizeof(req),
                     "POST " FREEFORM " HTTP/1.1\r\nHost: x\r\n"
                     "Content-Type: application/json\r\n"
                     "Idempotency-Key: k-once\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     strlen(msg), msg);
    size_t got =
        raw_exchange(late.port, req, (size_t)n, out, sizeof(out), 8000);
    ck_assert_uint_gt(got, 0);
    ck_assert(strncmp(out, "HTTP/1.1 200 ", 13) == 0);
    ck_assert_ptr_null(strstr(out + 1, "HTTP/1.1 "));
    ck_assert_int_eq(sb_count_body("exactly-once"), 1);
    ck_assert_int_eq(proc_stop(&late, 5000), 0);
    unlink(conf_late);
}
END_TEST

/* ---- idempotency, late ---- */

static size_t
sink(char *d, size_t s, size_t n, void *arg)
{
    (void)d;
    (void)arg;
    return s * n;
}

START_TEST(idempotency_verdicts_hold_when_the_store_answers_late)
{
    struct proc gw;
    char conf[64], url[128];
    gw_start(&gw, DELAY_MS, NULL, conf, sizeof(conf));
    open_window("+14155550180");
    const char *body = "{\"sender_id\":12,\"recipient_phone\":"
                       "\"+14155550180\",\"message\":\"twice-at-once\"}";
    /* the same key twice at once: one goes, the other is in flight */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d" FREEFORM, gw.port);
    struct curl_slist *h =
        curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Idempotency-Key: k-twice");
    CURLM *m = curl_multi_init();
    CURL *e[2];
    for (int i = 0; i < 2; i++) {
        e[i] = curl_easy_init();
        curl_easy_setopt(e[i], CURLOPT_URL, url);
        curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e[i], CURLOPT_TIMEOUT_MS, 10000L);
        curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, sink);
        curl_multi_add_handle(m, e[i]);
    }
    int running = 1;
    double end = clock_mono_ms() + 10000;
    while (running && clock_mono_ms() < end) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 20, NULL);
    }
    long st[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &st[i]);
        curl_multi_remove_handle(m, e[i]);
        curl_easy_cleanup(e[i]);
    }
    curl_multi_cleanup(m);
    curl_slist_free_all(h);
    ck_assert_msg((st[0] == 200 && st[1] == 409) ||
                      (st[0] == 409 && st[1] == 200),
                  "%ld %ld", st[0], st[1]);
    ck_assert_int_eq(sb_count_body("twice-at-once"), 1);
    /* then the kept answer, byte for byte; another body is refused */
    struct http_resp r1, r2, r3;
    post(gw.port, FREEFORM, body, "k-twice", &r1);
    ck_assert_int_eq(r1.status, 200);
    assert_xwagate(&r1, "replay");
    post(gw.port, FREEFORM, body, "k-twice", &r2);
    assert_same_answer(&r1, &r2, "replays");
    const char *other = "{\"sender_id\":12,\"recipient_phone\":"
                        "\"+14155550180\",\"message\":\"another\"}";
    post(gw.port, FREEFORM, other, "k-twice", &r3);
    ck_assert_int_eq(r3.status, 422);
    assert_xwagate(&r3, "gateway; reason=idempotency_key_reused");
    ck_assert_int_eq(sb_count_body("twice-at-once"), 1);
    ck_assert_int_eq(sb_count_body("another"), 0);
    http_free(&r1);
    http_free(&r2);
    http_free(&r3);
    ck_assert_int_eq(proc_stop(&gw, 5000), 0);
    unlink(conf);
}
END_TEST

/* ---- a caller that hangs up while the state is asked ---- */

START_TEST(a_caller_gone_while_its_key_is_asked_never_sends_twice)
{
    struct proc gw;
    char conf[64], url[128];
    gw_start(&gw, DELAY_MS, NULL, conf, sizeof(conf));
    open_window("+14155550190");
    const char *body = "{\"sender_id\":12,\"recipient_phone\":"
                       "\"+14155550190\",\"message\":\"hung-up\"}";
    snprintf(url, sizeof(url), "http://127.0.0.1:%d" FREEFORM, gw.port);
    struct curl_slist *h =
        curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Idempotency-Key: k-gone");
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    /* gone long before the first state answer comes */
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)DELAY_MS / 3);
    ck_assert_int_eq(curl_easy_perform(e), CURLE_OPERATION_TIMEDOUT);
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    /* a retry while the first is still on its way is never a second send */
    struct http_resp r;
    post(gw.port, FREEFORM, body, "k-gone", &r);
    ck_assert_msg(r.status == 409 || r.status == 200, "%ld", r.status);
    if (r.status == 200)
        assert_xwagate(&r, "replay");
    http_free(&r);
    /* the first one went on without its caller, and was kept (logged as
     * forwarded: libevent 2.1's evhttp reads no more of a connection
     * whose request it handed over, so the hang-up shows only when the
     * answer is written) */
    ck_assert(proc_wait_log(&gw, "\"upstream_status\":200", 8000));
    ck_assert_int_eq(sb_count_body("hung-up"), 1);
    post(gw.port, FREEFORM, body, "k-gone", &r);
    ck_assert_int_eq(r.status, 200);
    assert_xwagate(&r, "replay");
    http_free(&r);
    ck_assert_int_eq(sb_count_body("hung-up"), 1);
    ck_assert_int_eq(metric(gw.port, "wagate_in_flight"), 0);
    ck_assert_int_eq(proc_stop(&gw, 5000), 0);
    unlink(conf);
}
END_TEST

/* ---- the drain while the state is asked ---- */

START_TEST(a_drain_cuts_off_what_waits_for_the_state_as_not_sent)
{
    struct proc gw;
    char conf[64], url[128], dir[] = "/tmp/wagate-state-XXXXXX", state[128];
    char extra[256];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(state, sizeof(state), "%s/state", dir);
    snprintf(extra, sizeof(extra),
             ", \"drain_timeout_ms\": 300, \"state\": {\"file\": \"%s\"}",
             state);
    /* the state answers after the drain deadline */
    gw_start(&gw, 2000, extra, conf, sizeof(conf));
    open_window("+14155550200");
    const char *bodies[2] = {
        "{\"sender_id\":12,\"recipient_phone\":\"+14155550200\","
        "\"message\":\"cut-keyed\"}",
        "{\"sender_id\":12,\"recipient_phone\":\"+14155550200\","
        "\"message\":\"cut-unkeyed\"}"};
    snprintf(url, sizeof(url), "http://127.0.0.1:%d" FREEFORM, gw.port);
    struct curl_slist *h[2];
    h[0] = curl_slist_append(NULL, "Content-Type: application/json");
    h[0] = curl_slist_append(h[0], "Idempotency-Key: k-cut");
    h[1] = curl_slist_append(NULL, "Content-Type: application/json");
    CURLM *m = curl_multi_init();
    CURL *e[2];
    FILE *out[2];
    char *buf[2] = {NULL, NULL};
    size_t blen[2];
    for (int i = 0; i < 2; i++) {
        out[i] = open_memstream(&buf[i], &blen[i]);
        e[i] = curl_easy_init();
        curl_easy_setopt(e[i], CURLOPT_URL, url);
        curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, h[i]);
        curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, bodies[i]);
        curl_easy_setopt(e[i], CURLOPT_WRITEDATA, out[i]);
        curl_easy_setopt(e[i], CURLOPT_TIMEOUT_MS, 10000L);
        curl_multi_add_handle(m, e[i]);
    }
    /* until both wait for their state answer (an event, not a sleep) */
    int running = 1;
    double end = clock_mono_ms() + 1500;
    while (metric(gw.port, "wagate_in_flight") < 2 && clock_mono_ms() < end) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 10, NULL);
    }
    ck_assert_int_eq(metric(gw.port, "wagate_in_flight"), 2);
    kill(gw.pid, SIGTERM);
    end = clock_mono_ms() + 8000;
    while (running && clock_mono_ms() < end) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 20, NULL);
    }
    for (int i = 0; i < 2; i++) {
        long st = 0;
        curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &st);
        fclose(out[i]);
        ck_assert_int_eq(st, 503);
        json_object *j = json_tokener_parse(buf[i]), *f;
        ck_assert_ptr_nonnull(j);
        ck_assert(json_object_object_get_ex(j, "error_code", &f));
        ck_assert_str_eq(json_object_get_string(f), "SHUTTING_DOWN");
        ck_assert_msg(json_object_object_get_ex(j, "outcome", &f), "%s",
                      buf[i]);
        ck_assert_str_eq(json_object_get_string(f), "not_sent");
        json_object_put(j);
        free(buf[i]);
        curl_multi_remove_handle(m, e[i]);
        curl_easy_cleanup(e[i]);
        curl_slist_free_all(h[i]);
    }
    curl_multi_cleanup(m);
    /* the late answers came to nobody, and the exit is clean */
    ck_assert_int_eq(wait_exit(&gw, 10000), 0);
    ck_assert(proc_wait_log(&gw, "\"decision\":\"cut_off\"", 100));
    ck_assert_int_eq(sb_count_body("cut-"), 0);
    unlink(conf);

    /* the key is free: after a restart on the state file it goes */
    gw_start(&gw, 0, extra, conf, sizeof(conf));
    struct http_resp r;
    post(gw.port, FREEFORM, bodies[0], "k-cut", &r);
    ck_assert_int_eq(r.status, 200);
    assert_xwagate(&r, "upstream");
    http_free(&r);
    ck_assert_int_eq(sb_count_body("cut-keyed"), 1);
    ck_assert_int_eq(proc_stop(&gw, 5000), 0);
    unlink(conf);
    unlink(state);
    rmdir(dir);
}
END_TEST

/* A key the drain frees is freed in the store before the state file is
 * written, although the store answers late. */
START_TEST(a_key_the_drain_frees_is_free_after_a_restart)
{
    struct proc gw;
    char conf[64], url[128], dir[] = "/tmp/wagate-state-XXXXXX", state[128];
    char extra[256];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(state, sizeof(state), "%s/state", dir);
    snprintf(extra, sizeof(extra),
             ", \"drain_timeout_ms\": 300, \"state\": {\"file\": \"%s\"}",
             state);
    gw_start_rate(&gw, 50, "1", extra, conf, sizeof(conf));
    open_window("+14155550210");
    /* the first send takes this second's slot; the keyed one waits for
     * the next, holding its key */
    struct http_resp r;
    post(gw.port, FREEFORM,
         "{\"sender_id\":12,\"recipient_phone\":\"+14155550210\","
         "\"message\":\"slot-taker\"}",
         NULL, &r);
    ck_assert_int_eq(r.status, 200);
    http_free(&r);
    const char *body = "{\"sender_id\":12,\"recipient_phone\":"
                       "\"+14155550210\",\"message\":\"queued-keyed\"}";
    snprintf(url, sizeof(url), "http://127.0.0.1:%d" FREEFORM, gw.port);
    struct curl_slist *h =
        curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Idempotency-Key: k-queued");
    CURLM *m = curl_multi_init();
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_multi_add_handle(m, e);
    int running = 1;
    double end = clock_mono_ms() + 2000;
    while (metric(gw.port, "wagate_queue_depth") < 1 && clock_mono_ms() < end) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 10, NULL);
    }
    ck_assert_int_eq(metric(gw.port, "wagate_queue_depth"), 1);
    kill(gw.pid, SIGTERM);
    end = clock_mono_ms() + 8000;
    while (running && clock_mono_ms() < end) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 20, NULL);
    }
    long st = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
    ck_assert_int_eq(st, 503);
    curl_multi_remove_handle(m, e);
    curl_easy_cleanup(e);
    curl_multi_cleanup(m);
    curl_slist_free_all(h);
    ck_assert_int_eq(wait_exit(&gw, 10000), 0);
    unlink(conf);
    ck_assert_int_eq(sb_count_body("queued-keyed"), 0);
    gw_start(&gw, 0, extra, conf, sizeof(conf));
    post(gw.port, FREEFORM, body, "k-queued", &r);
    ck_assert_int_eq(r.status, 200);
    assert_xwagate(&r, "upstream");
    http_free(&r);
    ck_assert_int_eq(sb_count_body("queued-keyed"), 1);
    ck_assert_int_eq(proc_stop(&gw, 5000), 0);
    unlink(conf);
    unlink(state);
    rmdir(dir);
}
END_TEST

static Suite *
state_async_suite(void)
{
    Suite *s = suite_create("state_answers_that_come_late");
    TCase *tc = tcase_create("state_async");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, late_state_answers_give_the_same_bytes_once);
    tcase_add_test(tc, idempotency_verdicts_hold_when_the_store_answers_late);
    tcase_add_test(tc, a_caller_gone_while_its_key_is_asked_never_sends_twice);
    tcase_add_test(tc, a_drain_cuts_off_what_waits_for_the_state_as_not_sent);
    tcase_add_test(tc, a_key_the_drain_frees_is_free_after_a_restart);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return harness_run_suite(state_async_suite());
}
