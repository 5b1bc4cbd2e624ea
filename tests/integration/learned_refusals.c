/* learned_refusals.c - SPEC section 4a through the real gateway and the
 * real sandbox: a sender made offline or the balance emptied through the
 * sandbox's own controls, and what the caller gets, what the sandbox saw
 * (sends, their times) and what /metrics counts. The sandbox keeps its
 * strict 5/s limit; the gateway shapes at 5/s (burst 1). */
#include <check.h>
#include <curl/curl.h>
#include <signal.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"

#define FREEFORM "/api/user/whatsapp/send-freeform"
#define TEMPLATE "/api/user/whatsapp/send"
#define MAXSENDS 64
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

/* 5/s as the account allows, queues long enough for the whole burst (a
 * later "upstream" replaces the harness's whole: the base URL again) */
#define SHAPED                                                                 \
    ", \"upstream\": {\"base_url\": \"http://127.0.0.1:%d\","                 \
    " \"rate_limit_rps\": 5, \"rate_limit_burst\": 1,"                        \
    " \"max_queue_ms\": 20000, \"timeout_ms\": 3000}"

static void
start(const char *refusals)
{
    char extra[512];
    ck_assert_int_eq(harness_start_sandbox(&sb, "5", NULL), 0);
    snprintf(extra, sizeof(extra), SHAPED ADMIN "%s%s", sb.port,
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
    ck_assert_int_eq(gst, 0); /* under sanitizers: no leak, no error */
    ck_assert_int_eq(sst, 0);
}

static void
freeform_body(char *out, size_t n, int sender, int i)
{
    snprintf(out, n,
             "{\"sender_id\":%d,\"recipient_phone\":\"+1415556%04d\","
             "\"message\":\"refusal test %d\"}",
             sender, i % 10000, i);
}

/* The customer wrote: the window of (sender, the i-th recipient) opens,
 * so that a send there gets past the sandbox's own window check. */
static void
open_window(int sender, int i)
{
    char body[128];
    snprintf(body, sizeof(body),
             "{\"sender_id\":%d,\"recipient_phone\":\"+1415556%04d\"}",
             sender, i % 10000);
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/inbound", body), 204);
}

static long
send_one(const char *path, const char *body, const char *const *h,
         struct http_resp *r)
{
    ck_assert_int_eq(harness_post(gw.port, path, body, h, r), 0);
    return r->status;
}

static long
send_ff(int sender, int i, struct http_resp *r)
{
    char body[192];
    freeform_body(body, sizeof(body), sender, i);
    return send_one(FREEFORM, body, NULL, r);
}

/* The gateway answered it from a learned refusal of this reason. */
static void
assert_learned(const struct http_resp *r, const char *reason)
{
    char xw[96], want[96];
    snprintf(want, sizeof(want), "gateway; reason=%s", reason);
    ck_assert_ptr_nonnull(http_header(r, "X-Wagate", xw, sizeof(xw)));
    ck_assert_str_eq(xw, want);
}

static void
assert_upstream(const struct http_resp *r)
{
    char xw[96];
    ck_assert_ptr_nonnull(http_header(r, "X-Wagate", xw, sizeof(xw)));
    ck_assert_str_eq(xw, "upstream");
}

/* Sends from sender seen by the sandbox, and the body of the last. */
static int
sandbox_sends_from(int sender, const char *path, char **last_body)
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
        if (!json_object_object_get_ex(q, "body", &v) ||
            strstr(json_object_get_string(v), needle) == NULL)
            continue;
        n++;
        if (last_body != NULL) {
            free(*last_body);
            *last_body = strdup(json_object_get_string(v));
        }
    }
    json_object_put(reqs);
    return n;
}

/* The sandbox's arrival times (ms on its clock, in order) of the sends
 * from sender; returns how many. */
static int
sandbox_times_from(int sender, double *t, int max)
{
    json_object *reqs = hx_sandbox_requests(sb.port);
    ck_assert_ptr_nonnull(reqs);
    char needle[32];
    snprintf(needle, sizeof(needle), "\"sender_id\":%d,", sender);
    int n = 0;
    for (size_t i = 0; i < json_object_array_length(reqs) && n < max; i++) {
        json_object *q = json_object_array_get_idx(reqs, i), *v;
        if (!json_object_object_get_ex(q, "body", &v) ||
            strstr(json_object_get_string(v), needle) == NULL)
            continue;
        ck_assert(json_object_object_get_ex(q, "mono_ms", &v));
        t[n++] = json_object_get_double(v);
    }
    json_object_put(reqs);
    return n;
}

/* ---- many sends at once ---- */

struct capture {
    char body[1024];
    size_t len;
    char xw[96];
    long status;
    double done_ms;
};

struct burst {
    int n;
    CURLM *m;
    CURL *e[MAXSENDS];
    struct curl_slist *h;
    char body[MAXSENDS][192];
    int sender[MAXSENDS];
    struct capture c[MAXSENDS];
    double fired_ms;
};

static size_t
on_body(char *d, size_t s, size_t n, void *arg)
{
    struct capture *c = arg;
    size_t k = s * n;
    if (c->len + k < sizeof(c->body)) {
        memcpy(c->body + c->len, d, k);
        c->len += k;
        c->body[c->len] = '\0';
    }
    return k;
}

static size_t
on_header(char *d, size_t s, size_t n, void *arg)
{
    struct capture *c = arg;
    size_t k = s * n;
    if (k > 10 && strncasecmp(d, "X-Wagate: ", 10) == 0) {
        size_t v = k - 10;
        while (v > 0 && (d[10 + v - 1] == '\r' || d[10 + v - 1] == '\n'))
            v--;
        if (v < sizeof(c->xw)) {
            memcpy(c->xw, d + 10, v);
            c->xw[v] = '\0';
        }
    }
    return k;
}

/* Fires n freeform sends at once, from senders[i]. */
static void
burst_fire(struct burst *b, int n, const int *senders)
{
    memset(b, 0, sizeof(*b));
    b->n = n;
    b->m = curl_multi_init();
    b->h = curl_slist_append(NULL, "Content-Type: application/json");
    for (int i = 0; i < n; i++) {
        char url[128];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d" FREEFORM, gw.port);
        b->sender[i] = senders[i];
        freeform_body(b->body[i], sizeof(b->body[i]), senders[i], 100 + i);
        b->e[i] = curl_easy_init();
        curl_easy_setopt(b->e[i], CURLOPT_URL, url);
        curl_easy_setopt(b->e[i], CURLOPT_HTTPHEADER, b->h);
        curl_easy_setopt(b->e[i], CURLOPT_POSTFIELDS, b->body[i]);
        curl_easy_setopt(b->e[i], CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(b->e[i], CURLOPT_WRITEDATA, &b->c[i]);
        curl_easy_setopt(b->e[i], CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(b->e[i], CURLOPT_HEADERDATA, &b->c[i]);
        curl_easy_setopt(b->e[i], CURLOPT_TIMEOUT_MS, 30000L);
        curl_easy_setopt(b->e[i], CURLOPT_PRIVATE, (void *)&b->c[i]);
    }
    b->fired_ms = clock_mono_ms();
    for (int i = 0; i < n; i++)
        curl_multi_add_handle(b->m, b->e[i]);
}

/* Drives them all to their answers (at most deadline_ms); 1 when all
 * answered. */
static int
burst_run(struct burst *b, double deadline_ms)
{
    int running = 1, left = b->n;
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
            struct capture *c = (struct capture *)(void *)p;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
                              &c->status);
            c->done_ms = clock_mono_ms() - b->fired_ms;
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
    for (int i = 0; i < b->n; i++) {
        curl_multi_remove_handle(b->m, b->e[i]);
        curl_easy_cleanup(b->e[i]);
    }
    curl_slist_free_all(b->h);
    curl_multi_cleanup(b->m);
}

/* ---- the tests ---- */

/* After one 503 SENDER_OFFLINE, the sends queued from that sender are
 * answered at once by the gateway, and the online sender's ten drain at
 * the full rate as if they were alone. */
START_TEST(an_offline_sender_stops_costing_slots)
{
    start(NULL);
    int senders[61];
    senders[0] = OFFLINE;
    for (int i = 1; i < 61; i++)
        senders[i] = i % 6 == 0 ? ONLINE : OFFLINE; /* 10 online, 50 off */
    for (int i = 0; i < 61; i++)
        if (senders[i] == ONLINE)
            open_window(ONLINE, 100 + i); /* burst_fire's recipients */
    struct burst b;
    burst_fire(&b, 61, senders);
    ck_assert(burst_run(&b, 25000));
    char *forwarded = NULL;
    /* exactly one send from the offline sender reached the sandbox */
    ck_assert_int_eq(sandbox_sends_from(OFFLINE, FREEFORM, &forwarded), 1);
    ck_assert_int_eq(sandbox_sends_from(ONLINE, FREEFORM, NULL), 10);
    int learned = 0, relayed = 0;
    double last_online = 0, last_offline = 0;
    const char *upstream_body = NULL;
    for (int i = 0; i < 61; i++) {
        struct capture *c = &b.c[i];
        if (b.sender[i] == ONLINE) {
            ck_assert_int_eq(c->status, 200);
            ck_assert_str_eq(c->xw, "upstream");
            if (c->done_ms > last_online)
                last_online = c->done_ms;
            continue;
        }
        ck_assert_int_eq(c->status, 503);
        if (c->done_ms > last_offline)
            last_offline = c->done_ms;
        if (strcmp(c->xw, "upstream") == 0) {
            relayed++;
            upstream_body = c->body;
            continue;
        }
        ck_assert_str_eq(c->xw, "gateway; reason=sender_offline");
        learned++;
    }
    ck_assert_int_eq(relayed, 1);
    ck_assert_int_eq(learned, 50);
    ck_assert_ptr_nonnull(upstream_body);
    ck_assert_ptr_nonnull(strstr(upstream_body, "SENDER_OFFLINE"));
    /* the kept body, byte for byte */
    for (int i = 0; i < 61; i++)
        if (b.sender[i] == OFFLINE)
            ck_assert_str_eq(b.c[i].body, upstream_body);
    /* eleven slots at most: the online ten and the one offline send.
     * Without the refusals they would share 61 slots (12 s). */
    fprintf(stderr, "online sender's ten done at %.0f ms, offline's 51 at "
            "%.0f ms\n", last_online, last_offline);
    ck_assert_msg(last_online < 2000 + 800, "online done at %.0f ms",
                  last_online);
    ck_assert_msg(last_offline < 2000 + 800, "offline done at %.0f ms",
                  last_offline);
    /* at the full rate: the sandbox's strict 5/s never refused one, and
     * its arrivals are a slot apart */
    double t[16];
    int nt = sandbox_times_from(ONLINE, t, 16);
    ck_assert_int_eq(nt, 10);
    for (int i = 1; i < nt; i++)
        ck_assert_msg(t[i] - t[i - 1] > 150, "arrivals %d, %d: %.0f ms apart",
                      i - 1, i, t[i] - t[i - 1]);
    free(forwarded);
    burst_free(&b);
    /* counted, and logged with their decision */
    struct http_resp r;
    ck_assert_int_eq(harness_get(gw.port, "GET", "/metrics", NULL, &r), 0);
    ck_assert_ptr_nonnull(strstr(
        r.body, "wagate_refusal_answers_total{kind=\"sender_offline\"} 50\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "wagate_refusal_entries 1\n"));
    http_free(&r);
    char *log = proc_log(&gw);
    ck_assert_ptr_nonnull(strstr(log, "\"decision\":\"learned_refusal\""));
    free(log);
}
END_TEST

/* Reads GET /admin/refusals until the entry of sender (0: the balance)
 * is no longer trusted (bounded: 5 s). 1 when it came. */
static int
wait_untrusted(int sender)
{
    double end = clock_mono_ms() + 5000;
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

/* When the trust runs out one probe goes; while it is out the others are
 * still answered; the sender back online clears it. */
START_TEST(trust_runs_out_then_one_probe_then_cleared)
{
    start("{\"sender_offline_s\": 1}");
    struct http_resp r;
    ck_assert_int_eq(send_ff(OFFLINE, 1, &r), 503);
    assert_upstream(&r);
    http_free(&r);
    ck_assert_int_eq(send_ff(OFFLINE, 2, &r), 503);
    assert_learned(&r, "sender_offline");
    http_free(&r);
    ck_assert_int_eq(sandbox_sends_from(OFFLINE, FREEFORM, NULL), 1);
    ck_assert(wait_untrusted(OFFLINE));
    /* three at once: one probe, two answered while it is out */
    int senders[3] = {OFFLINE, OFFLINE, OFFLINE};
    struct burst b;
    burst_fire(&b, 3, senders);
    ck_assert(burst_run(&b, 10000));
    int up = 0;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(b.c[i].status, 503);
        up += strcmp(b.c[i].xw, "upstream") == 0;
    }
    burst_free(&b);
    ck_assert_int_eq(up, 1);
    ck_assert_int_eq(sandbox_sends_from(OFFLINE, FREEFORM, NULL), 2);
    /* back online: the next probe goes through and clears the entry */
    ck_assert_int_eq(hx_sandbox_control(sb.port, "POST", "/_sandbox/config",
                                        "{\"sender_status\":{\"13\":"
                                        "\"online\"}}"),
                     200);
    ck_assert(wait_untrusted(OFFLINE));
    open_window(OFFLINE, 3);
    open_window(OFFLINE, 4);
    ck_assert_int_eq(send_ff(OFFLINE, 3, &r), 200);
    assert_upstream(&r);
    http_free(&r);
    ck_assert_int_eq(send_ff(OFFLINE, 4, &r), 200);
    assert_upstream(&r);
    http_free(&r);
    ck_assert_int_eq(sandbox_sends_from(OFFLINE, FREEFORM, NULL), 4);
    ck_assert_int_eq(harness_get(gw.port, "GET", "/metrics", NULL, &r), 0);
    ck_assert_ptr_nonnull(strstr(
        r.body, "wagate_refusal_probes_total{kind=\"sender_offline\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "wagate_refusal_entries 0\n"));
    http_free(&r);
}
END_TEST

/* A senders list (?status=all) through the gateway teaches both ways. */
START_TEST(a_senders_list_clears_and_teaches)
{
    start(NULL);
    struct http_resp r;
    ck_assert_int_eq(send_ff(OFFLINE, 1, &r), 503);
    http_free(&r);
    ck_assert_int_eq(hx_sandbox_control(sb.port, "POST", "/_sandbox/config",
                                        "{\"sender_status\":{\"13\":"
                                        "\"online\",\"14\":\"offline\"}}"),
                     200);
    ck_assert_int_eq(send_ff(OFFLINE, 2, &r), 503); /* still trusted */
    assert_learned(&r, "sender_offline");
    http_free(&r);
    /* an online-only list says nothing of 14 */
    ck_assert_int_eq(harness_get(gw.port, "GET", "/api/user/whatsapp/senders",
                                 NULL, &r),
                     0);
    ck_assert_int_eq(r.status, 200);
    http_free(&r);
    ck_assert_int_eq(harness_get(gw.port, "GET",
                                 "/api/user/whatsapp/senders?status=all",
                                 NULL, &r),
                     0);
    ck_assert_int_eq(r.status, 200);
    http_free(&r);
    open_window(OFFLINE, 3);
    ck_assert_int_eq(send_ff(OFFLINE, 3, &r), 200); /* cleared by the list */
    assert_upstream(&r);
    http_free(&r);
    ck_assert_int_eq(send_ff(14, 4, &r), 503); /* learned from the list */
    assert_learned(&r, "sender_offline");
    ck_assert_ptr_nonnull(strstr(r.body, "SENDER_OFFLINE"));
    http_free(&r);
    ck_assert_int_eq(sandbox_sends_from(14, FREEFORM, NULL), 0);
}
END_TEST

/* A 402 stops every send, from every sender and on both routes, until a
 * 2xx; the template route gets its own status for an offline sender. */
START_TEST(an_empty_balance_stops_every_send_until_a_2xx)
{
    start("{\"balance_s\": 1}");
    struct http_resp r;
    open_window(ONLINE, 1); /* past the window check: the balance's */
    open_window(14, 2);
    open_window(14, 3);
    open_window(ONLINE, 4);
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/config",
                           "{\"balance\":0}"),
        200);
    ck_assert_int_eq(send_ff(ONLINE, 1, &r), 402);
    assert_upstream(&r);
    char *kept = strdup(r.body);
    http_free(&r);
    ck_assert_int_eq(send_ff(14, 2, &r), 402);
    assert_learned(&r, "insufficient_balance");
    ck_assert_str_eq(r.body, kept);
    http_free(&r);
    ck_assert_int_eq(
        send_one(TEMPLATE,
                 "{\"sender_id\":12,\"template_id\":1201,"
                 "\"recipient_phone\":\"+14155550123\"}",
                 NULL, &r),
        402);
    assert_learned(&r, "insufficient_balance");
    http_free(&r);
    int seen = hx_sandbox_count(sb.port);
    /* topped up: the probe after balance_s goes, its 200 clears */
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/config",
                           "{\"balance\":100}"),
        200);
    ck_assert(wait_untrusted(0));
    ck_assert_int_eq(send_ff(14, 3, &r), 200);
    assert_upstream(&r);
    http_free(&r);
    ck_assert_int_eq(send_ff(ONLINE, 4, &r), 200);
    assert_upstream(&r);
    http_free(&r);
    ck_assert_int_eq(hx_sandbox_count(sb.port), seen + 2);
    free(kept);
}
END_TEST

/* The template route says 422 for an offline sender; a refusal learned
 * there answers send-freeform with that route's 503, same body. */
START_TEST(a_template_send_gets_the_template_routes_status)
{
    start(NULL);
    static const char tpl[] = "{\"sender_id\":13,\"template_id\":1301,"
                              "\"recipient_phone\":\"+14155550123\"}";
    struct http_resp r;
    ck_assert_int_eq(send_one(TEMPLATE, tpl, NULL, &r), 422);
    assert_upstream(&r);
    char *kept = strdup(r.body);
    http_free(&r);
    ck_assert_int_eq(send_one(TEMPLATE, tpl, NULL, &r), 422);
    assert_learned(&r, "sender_offline");
    ck_assert_str_eq(r.body, kept);
    http_free(&r);
    ck_assert_int_eq(send_ff(OFFLINE, 1, &r), 503);
    assert_learned(&r, "sender_offline");
    ck_assert_str_eq(r.body, kept);
    http_free(&r);
    ck_assert_int_eq(sandbox_sends_from(OFFLINE, TEMPLATE, NULL), 1);
    ck_assert_int_eq(sandbox_sends_from(OFFLINE, FREEFORM, NULL), 0);
    free(kept);
}
END_TEST

/* A learned refusal frees the caller's Idempotency-Key (nothing was
 * sent): the same key and body go upstream once the refusal is gone. */
START_TEST(a_learned_refusal_frees_the_key)
{
    start(NULL);
    static const char *const key[] = {"Idempotency-Key: refused-1", NULL};
    char body[192];
    freeform_body(body, sizeof(body), OFFLINE, 7);
    open_window(OFFLINE, 7);
    struct http_resp r;
    ck_assert_int_eq(send_ff(OFFLINE, 1, &r), 503);
    http_free(&r);
    ck_assert_int_eq(send_one(FREEFORM, body, key, &r), 503);
    assert_learned(&r, "sender_offline");
    http_free(&r);
    ck_assert_int_eq(hx_sandbox_control(sb.port, "POST", "/_sandbox/config",
                                        "{\"sender_status\":{\"13\":"
                                        "\"online\"}}"),
                     200);
    ck_assert_int_eq(harness_get(gw.port, "DELETE",
                                 "/admin/refusals?sender_id=13", admin_auth,
                                 &r),
                     0);
    ck_assert_int_eq(r.status, 204);
    http_free(&r);
    ck_assert_int_eq(send_one(FREEFORM, body, key, &r), 200);
    assert_upstream(&r);
    http_free(&r);
    ck_assert_int_eq(send_one(FREEFORM, body, key, &r), 200); /* replay */
    http_free(&r);
    ck_assert_int_eq(sandbox_sends_from(OFFLINE, FREEFORM, NULL), 2);
}
END_TEST

/* 0 turns a kind off: every send from the offline sender is forwarded. */
START_TEST(zero_turns_a_refusal_off)
{
    start("{\"sender_offline_s\": 0}");
    struct http_resp r;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(send_ff(OFFLINE, i, &r), 503);
        assert_upstream(&r);
        http_free(&r);
    }
    ck_assert_int_eq(sandbox_sends_from(OFFLINE, FREEFORM, NULL), 3);
}
END_TEST

/* A reload applies changed trust periods to the entries already held. */
START_TEST(a_reload_applies_new_trust_periods)
{
    start("{\"sender_offline_s\": 300}");
    struct http_resp r;
    ck_assert_int_eq(send_ff(OFFLINE, 1, &r), 503);
    http_free(&r);
    ck_assert_int_eq(send_ff(OFFLINE, 2, &r), 503);
    assert_learned(&r, "sender_offline");
    http_free(&r);
    /* the same file, the kind turned off */
    FILE *f = fopen(gw_conf, "r");
    ck_assert_ptr_nonnull(f);
    char text[4096];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    char *p = strstr(text, "\"sender_offline_s\": 300");
    ck_assert_ptr_nonnull(p);
    memcpy(p + strlen("\"sender_offline_s\": "), "0  ", 3);
    f = fopen(gw_conf, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, n, f), n);
    fclose(f);
    kill(gw.pid, SIGHUP);
    ck_assert(proc_wait_log(&gw, "configuration reloaded", 3000));
    ck_assert_int_eq(send_ff(OFFLINE, 3, &r), 503);
    assert_upstream(&r);
    http_free(&r);
    ck_assert_int_eq(sandbox_sends_from(OFFLINE, FREEFORM, NULL), 2);
}
END_TEST

static Suite *
integration_suite(void)
{
    Suite *s = suite_create("learned_refusals");
    TCase *tc = tcase_create("refusals");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, an_offline_sender_stops_costing_slots);
    tcase_add_test(tc, trust_runs_out_then_one_probe_then_cleared);
    tcase_add_test(tc, a_senders_list_clears_and_teaches);
    tcase_add_test(tc, an_empty_balance_stops_every_send_until_a_2xx);
    tcase_add_test(tc, a_template_send_gets_the_template_routes_status);
    tcase_add_test(tc, a_learned_refusal_frees_the_key);
    tcase_add_test(tc, zero_turns_a_refusal_off);
    tcase_add_test(tc, a_reload_applies_new_trust_periods);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return harness_run_suite(integration_suite());
}
