/* shared_refusals.c - the learned refusals of SPEC section 4a on the Redis
 * backend (section 11): what one gateway learns, the others trust. Two
 * real gateways share one real Redis in front of one real sandbox: a
 * sender offline learned on A is answered by B without reaching the
 * sandbox, a balance emptied on A stops B's sends on both routes, a
 * forget on B frees A, the list is the same on both, and with Redis
 * frozen a send is forwarded (no entry) and counted. */
#include <check.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"
#include "hx_redis.h"

#define FREEFORM "/api/user/whatsapp/send-freeform"
#define TEMPLATE "/api/user/whatsapp/send"
#define ADMIN_TOKEN "admin-tok-3"
#define ADMIN                                                                  \
    "\"admin\": {\"token_sha256\": "                                           \
    "\"39eccedf59001412f7e0557d616c46642ef9eecfd34a79bd27c25f73e328b872\"}"
#define NGW 2
#define OFFLINE 13

static struct hx_redis rs;
static struct proc sb, gw[NGW];
static char conf[NGW][64];
static const char *const admin_auth[] = {"Authorization: Bearer " ADMIN_TOKEN,
                                         NULL};

static void
setup(void)
{
    char extra[2048];
    ck_assert_int_eq(hx_redis_start(&rs, 0, NULL), 0);
    ck_assert_int_eq(harness_start_sandbox(&sb, "0", NULL), 0);
    snprintf(extra, sizeof(extra),
             ", \"upstream\": {\"base_url\": \"http://127.0.0.1:%d\", "
             "\"timeout_ms\": 1500, \"connect_timeout_ms\": 500}, "
             "\"state\": {\"backend\": \"redis\", \"account\": \"refusals\", "
             "\"redis\": {\"url\": \"%s\", \"timeout_ms\": 200}}, " ADMIN,
             sb.port, rs.url);
    for (int i = 0; i < NGW; i++) {
        ck_assert_int_eq(harness_start_gateway(&gw[i], sb.port, extra, conf[i],
                                               sizeof(conf[i])),
                         0);
        ck_assert_msg(proc_wait_log(&gw[i], "redis up", 5000),
                      "gateway %d never reached Redis", i);
    }
}

static void
teardown(void)
{
    int bad = 0;
    for (int i = 0; i < NGW; i++) {
        if (proc_stop(&gw[i], 10000) != 0)
            bad = i + 1;
        unlink(conf[i]);
    }
    proc_stop(&sb, 5000);
    hx_redis_stop(&rs);
    ck_assert_msg(bad == 0, "gateway %d did not exit cleanly", bad - 1);
}

static long
send_ff(int port, int sender, int i, struct http_resp *r)
{
    char body[192];
    snprintf(body, sizeof(body),
             "{\"sender_id\":%d,\"recipient_phone\":\"+1415556%04d\","
             "\"message\":\"shared refusal %d\"}",
             sender, i, i);
    ck_assert_int_eq(harness_post(port, FREEFORM, body, NULL, r), 0);
    return r->status;
}

static const char *
xwagate(const struct http_resp *r)
{
    static char v[128];
    if (http_header(r, "X-Wagate", v, sizeof(v)) == NULL)
        return "";
    return v;
}

/* Sends from sender the sandbox saw (either send route). */
static int
sandbox_sends_from(int sender)
{
    json_object *reqs = hx_sandbox_requests(sb.port);
    ck_assert_ptr_nonnull(reqs);
    char needle[32];
    snprintf(needle, sizeof(needle), "\"sender_id\":%d,", sender);
    int n = 0;
    for (size_t i = 0; i < json_object_array_length(reqs); i++) {
        json_object *q = json_object_array_get_idx(reqs, i), *v;
        if (json_object_object_get_ex(q, "body", &v) &&
            strstr(json_object_get_string(v), needle) != NULL)
            n++;
    }
    json_object_put(reqs);
    return n;
}

static char *
admin_list(int port)
{
    struct http_resp r;
    ck_assert_int_eq(
        harness_get(port, "GET", "/admin/refusals", admin_auth, &r), 0);
    ck_assert_int_eq(r.status, 200);
    char *body = strdup(r.body);
    http_free(&r);
    return body;
}

START_TEST(learned_on_one_answered_by_the_other)
{
    struct http_resp r;
    ck_assert_int_eq(send_ff(gw[0].port, OFFLINE, 1, &r), 503);
    ck_assert_str_eq(xwagate(&r), "upstream");
    char *kept = strdup(r.body);
    http_free(&r);
    /* B never saw it, and answers it itself, byte for byte */
    ck_assert_int_eq(send_ff(gw[1].port, OFFLINE, 2, &r), 503);
    ck_assert_str_eq(xwagate(&r), "gateway; reason=sender_offline");
    ck_assert_str_eq(r.body, kept);
    http_free(&r);
    ck_assert_int_eq(sandbox_sends_from(OFFLINE), 1);
    /* both list the same entry */
    char *a = admin_list(gw[0].port), *b = admin_list(gw[1].port);
    ck_assert_ptr_nonnull(strstr(a, "\"kind\":\"sender_offline\""));
    ck_assert_ptr_nonnull(strstr(a, "\"sender_id\":13"));
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    /* the key has a TTL: Redis cleans up by itself */
    redisContext *c = hx_redis_connect(&rs);
    ck_assert_ptr_nonnull(c);
    redisReply *keys = redisCommand(c, "KEYS *ref*");
    ck_assert_ptr_nonnull(keys);
    ck_assert_uint_ge(keys->elements, 1);
    for (size_t i = 0; i < keys->elements; i++) {
        redisReply *t = redisCommand(c, "PTTL %s", keys->element[i]->str);
        ck_assert_ptr_nonnull(t);
        ck_assert_msg(t->integer > 0, "%s has no TTL (%lld)",
                      keys->element[i]->str, t->integer);
        freeReplyObject(t);
    }
    freeReplyObject(keys);
    redisFree(c);
    /* a forget on B frees A */
    ck_assert_int_eq(harness_get(gw[1].port, "DELETE",
                                 "/admin/refusals?sender_id=13", admin_auth,
                                 &r),
                     0);
    ck_assert_int_eq(r.status, 204);
    http_free(&r);
    ck_assert_int_eq(send_ff(gw[0].port, OFFLINE, 3, &r), 503);
    ck_assert_str_eq(xwagate(&r), "upstream");
    http_free(&r);
    ck_assert_int_eq(sandbox_sends_from(OFFLINE), 2);
    free(kept);
}
END_TEST

START_TEST(a_balance_emptied_on_one_stops_the_other)
{
    struct http_resp r;
    ck_assert_int_eq(hx_sandbox_control(sb.port, "POST", "/_sandbox/config",
                                        "{\"balance\":0}"),
                     200);
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/inbound",
                           "{\"sender_id\":12,\"recipient_phone\":"
                           "\"+14155560001\"}"),
        204);
    ck_assert_int_eq(send_ff(gw[0].port, 12, 1, &r), 402);
    ck_assert_str_eq(xwagate(&r), "upstream");
    http_free(&r);
    int seen = hx_sandbox_count(sb.port);
    ck_assert_int_eq(send_ff(gw[1].port, 14, 2, &r), 402);
    ck_assert_str_eq(xwagate(&r), "gateway; reason=insufficient_balance");
    http_free(&r);
    ck_assert_int_eq(harness_post(gw[1].port, TEMPLATE,
                                  "{\"sender_id\":12,\"template_id\":1201,"
                                  "\"recipient_phone\":\"+14155550123\"}",
                                  NULL, &r),
                     0);
    ck_assert_int_eq(r.status, 402);
    ck_assert_str_eq(xwagate(&r), "gateway; reason=insufficient_balance");
    http_free(&r);
    ck_assert_int_eq(hx_sandbox_count(sb.port), seen);
    /* topped up, the balance forgotten on A: B's next send goes */
    ck_assert_int_eq(hx_sandbox_control(sb.port, "POST", "/_sandbox/config",
                                        "{\"balance\":100}"),
                     200);
    ck_assert_int_eq(harness_get(gw[0].port, "DELETE",
                                 "/admin/refusals?kind=balance", admin_auth,
                                 &r),
                     0);
    ck_assert_int_eq(r.status, 204);
    http_free(&r);
    ck_assert_int_eq(harness_post(gw[1].port, TEMPLATE,
                                  "{\"sender_id\":12,\"template_id\":1201,"
                                  "\"recipient_phone\":\"+14155550123\"}",
                                  NULL, &r),
                     0);
    ck_assert_int_eq(r.status, 200);
    http_free(&r);
}
END_TEST

/* Redis frozen: no entry can be read, so the send is forwarded (SPEC 11's
 * degraded mode: "no entry"), and the fallback is counted. */
START_TEST(redis_frozen_means_no_entry)
{
    struct http_resp r;
    ck_assert_int_eq(send_ff(gw[0].port, OFFLINE, 1, &r), 503);
    http_free(&r);
    hx_redis_freeze(&rs);
    ck_assert_int_eq(send_ff(gw[1].port, OFFLINE, 2, &r), 503);
    ck_assert_str_eq(xwagate(&r), "upstream");
    http_free(&r);
    hx_redis_thaw(&rs);
    ck_assert_int_eq(sandbox_sends_from(OFFLINE), 2);
    ck_assert_int_eq(harness_get(gw[1].port, "GET", "/metrics", NULL, &r), 0);
    const char *p = strstr(r.body, "\nwagate_state_refusals_unavailable_total ");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_ge(atoi(p + strlen("\nwagate_state_refusals_unavailable_total ")),
                     1);
    http_free(&r);
}
END_TEST

static Suite *
integration_suite(void)
{
    Suite *s = suite_create("shared_refusals");
    TCase *tc = tcase_create("shared");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, learned_on_one_answered_by_the_other);
    tcase_add_test(tc, a_balance_emptied_on_one_stops_the_other);
    tcase_add_test(tc, redis_frozen_means_no_entry);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return harness_run_suite(integration_suite());
}
