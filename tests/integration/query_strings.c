/* query_strings.c - the query strings of the gateway's routes, end to end:
 * the real wagate in front of the real sandbox. What a refused query must
 * never do is reach the sandbox; what an accepted one must reach it as is
 * the query rebuilt from the validated values. */
#include <check.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define API "/api/user/whatsapp"
#define STATUS API "/session-status"
#define FREEFORM API "/send-freeform"
#define PHONE "+14155550123"
#define PHONE_Q "%2B14155550123"
#define TOKEN_A "tok-alpha-1" /* senders [12] */
#define TOKEN_B "tok-bravo-2" /* senders "*" */
#define TOKEN_ADMIN "admin-tok-3"
#define CLIENTS                                                                \
    ", \"clients\": [{\"name\": \"alpha\", \"token_sha256\": "                 \
    "\"2c9cd19e083cc328828bc58cd2b7b0fd90e13cd97fe502ca8ab1b43d85d21d33\", "   \
    "\"senders\": [12]}, {\"name\": \"bravo\", \"token_sha256\": "             \
    "\"8627dd18a50da4646da84f7b702aa345581219a87c26a1527f8388a8ba04e621\", "   \
    "\"senders\": \"*\"}]"
#define ADMIN                                                                  \
    ", \"admin\": {\"token_sha256\": "                                         \
    "\"39eccedf59001412f7e0557d616c46642ef9eecfd34a79bd27c25f73e328b872\"}"

static const char *const auth_a[] = {"Authorization: Bearer " TOKEN_A, NULL};
static const char *const auth_b[] = {"Authorization: Bearer " TOKEN_B, NULL};
static const char *const auth_admin[] = {"Authorization: Bearer " TOKEN_ADMIN,
                                         NULL};

static struct proc sb, gw;
static char conf[64];

static void
setup(void)
{
    ck_assert_int_eq(harness_start_sandbox(&sb, "0", NULL), 0);
    ck_assert_int_eq(
        harness_start_gateway(&gw, sb.port, CLIENTS ADMIN, conf, sizeof(conf)),
        0);
}

static void
teardown(void)
{
    int g = proc_stop(&gw, 5000), s = proc_stop(&sb, 5000);
    unlink(conf);
    ck_assert_int_eq(g, 0);
    ck_assert_int_eq(s, 0);
}

/* A member of a JSON text as a string ("" when absent). */
static const char *
json_str(const char *text, const char *key)
{
    static char out[256];
    json_object *o = json_tokener_parse(text), *v = NULL;
    out[0] = '\0';
    if (o && json_object_object_get_ex(o, key, &v) && v != NULL)
        snprintf(out, sizeof(out), "%s", json_object_get_string(v));
    json_object_put(o);
    return out;
}

/* The path (with query) of the sandbox's i-th recorded request. */
static const char *
sb_path(int i)
{
    static char out[512];
    json_object *reqs = hx_sandbox_requests(sb.port), *p = NULL;
    out[0] = '\0';
    if (reqs && (size_t)i < json_object_array_length(reqs) &&
        json_object_object_get_ex(json_object_array_get_idx(reqs, (size_t)i),
                                  "path", &p))
        snprintf(out, sizeof(out), "%s", json_object_get_string(p));
    json_object_put(reqs);
    return out;
}

/* Asserts a gateway refusal: status, error_code, field ("" for none), the
 * X-Wagate reason, and that nothing reached the sandbox since `before`. */
static void
assert_refused(const struct http_resp *r, const char *what, long status,
               const char *code, const char *field, int before)
{
    char xw[128], want[128];
    ck_assert_msg(r->status == status, "%s: status %ld, want %ld (%s)", what,
                  r->status, status, r->body ? r->body : "");
    ck_assert_msg(strcmp(json_str(r->body, "error_code"), code) == 0, "%s: %s",
                  what, r->body);
    ck_assert_msg(strcmp(json_str(r->body, "success"), "false") == 0, "%s",
                  what);
    ck_assert_msg(strcmp(json_str(r->body, "field"), field) == 0,
                  "%s: field in %s, want \"%s\"", what, r->body, field);
    snprintf(want, sizeof(want), "gateway; reason=%s", code);
    for (char *p = want; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    ck_assert_ptr_nonnull(http_header(r, "X-Wagate", xw, sizeof(xw)));
    ck_assert_str_eq(xw, want);
    ck_assert_msg(hx_sandbox_count(sb.port) == before, "%s reached the sandbox",
                  what);
}

static long
get(const char *path_query, const char *const *headers, struct http_resp *r)
{
    ck_assert_int_eq(harness_get(gw.port, "GET", path_query, headers, r), 0);
    return r->status;
}

/* ---- A2: the allow-list bypass ---- */

START_TEST(encoded_key_bypass_is_refused)
{
    /* alpha may use sender 12 only; the sandbox, like a PHP upstream,
     * decodes keys and reads the other sender_id */
    struct http_resp r;
    get(STATUS "?sender%5Fid=14&sender_id=12&recipient_phone=" PHONE_Q, auth_a,
        &r);
    assert_refused(&r, "bypass", 422, "VALIDATION_ERROR", "sender_id", 0);
    http_free(&r);
    get(STATUS "?sender_id=12&recipient_phone=" PHONE_Q "&sender%5fid=14",
        auth_a, &r);
    assert_refused(&r, "bypass, last", 422, "VALIDATION_ERROR", "sender_id", 0);
    http_free(&r);
    get(STATUS "?%73%65%6E%64%65%72%5F%69%64=14&recipient_phone=" PHONE_Q,
        auth_a, &r);
    ck_assert_int_eq(r.status, 403); /* decoded, it is sender 14 */
    ck_assert_str_eq(json_str(r.body, "error_code"), "SENDER_NOT_ALLOWED");
    http_free(&r);
    ck_assert_int_eq(hx_sandbox_count(sb.port), 0);
}
END_TEST

struct refusal {
    const char *path_query;
    long status;
    const char *code, *field;
};

static const struct refusal refusals[] = {
    /* duplicates, literal or encoded */
    {STATUS "?sender_id=12&sender_id=12&recipient_phone=" PHONE_Q, 422,
     "VALIDATION_ERROR", "sender_id"},
    {STATUS "?sender_id=12&recipient_phone=" PHONE_Q
            "&%72ecipient_phone=" PHONE_Q,
     422, "VALIDATION_ERROR", "recipient_phone"},
    /* unknown keys, also ones that differ only in case */
    {STATUS "?sender_id=12&recipient_phone=" PHONE_Q "&foo=1", 422,
     "VALIDATION_ERROR", "foo"},
    {STATUS "?Sender_id=12&recipient_phone=" PHONE_Q, 422, "VALIDATION_ERROR",
     "Sender_id"},
    {STATUS "?sender_id%20=12&recipient_phone=" PHONE_Q, 400, "BAD_REQUEST",
     ""},
    {STATUS "?sender_id+=12&recipient_phone=" PHONE_Q, 400, "BAD_REQUEST", ""},
    /* malformed syntax */
    {STATUS "?sender_id=12&&recipient_phone=" PHONE_Q, 400, "BAD_REQUEST", ""},
    {STATUS "?=12&sender_id=12&recipient_phone=" PHONE_Q, 400, "BAD_REQUEST",
     ""},
    {STATUS "?sender_id=12&recipient_phone", 400, "BAD_REQUEST", ""},
    {STATUS "?sender_id=12&recipient_phone=" PHONE_Q "&", 400, "BAD_REQUEST",
     ""},
    {STATUS "?sender_id=1%2&recipient_phone=" PHONE_Q, 400, "BAD_REQUEST", ""},
    {STATUS "?sender_id=12%zz&recipient_phone=" PHONE_Q, 400, "BAD_REQUEST",
     ""},
    {STATUS "?sender_id=12%00&recipient_phone=" PHONE_Q, 400, "BAD_REQUEST",
     ""},
    {STATUS "?sender_id%00=12&recipient_phone=" PHONE_Q, 400, "BAD_REQUEST",
     ""},
    /* values */
    {STATUS "?sender_id=012&recipient_phone=" PHONE_Q, 422, "VALIDATION_ERROR",
     "sender_id"},
    {STATUS "?sender_id=%2B12&recipient_phone=" PHONE_Q, 422,
     "VALIDATION_ERROR", "sender_id"},
    {STATUS "?sender_id=0&recipient_phone=" PHONE_Q, 422, "VALIDATION_ERROR",
     "sender_id"},
    {STATUS "?sender_id=99999999999999999999&recipient_phone=" PHONE_Q, 422,
     "VALIDATION_ERROR", "sender_id"},
    {STATUS "?sender_id=&recipient_phone=" PHONE_Q, 422, "VALIDATION_ERROR",
     "sender_id"},
    {STATUS "?sender_id=12&recipient_phone=+14155550123", 422, "INVALID_PHONE",
     ""},
    {STATUS "?sender_id=12&recipient_phone=" PHONE_Q "%0D%0A", 422,
     "INVALID_PHONE", ""},
    {STATUS "?sender_id=12&recipient_phone=14155550123", 422, "INVALID_PHONE",
     ""},
    /* both keys are required */
    {STATUS "?sender_id=12", 422, "VALIDATION_ERROR", "recipient_phone"},
    {STATUS "?recipient_phone=" PHONE_Q, 422, "VALIDATION_ERROR", "sender_id"},
    {STATUS, 422, "VALIDATION_ERROR", "sender_id"},
    /* senders and templates: status only, with its documented values */
    {API "/senders?status=online&status=all", 422, "VALIDATION_ERROR",
     "status"},
    {API "/senders?status=ALL", 422, "VALIDATION_ERROR", "status"},
    {API "/senders?status=approved", 422, "VALIDATION_ERROR", "status"},
    {API "/senders?sender_id=12", 422, "VALIDATION_ERROR", "sender_id"},
    {API "/senders/12/templates?status=online", 422, "VALIDATION_ERROR",
     "status"},
    {API "/senders/12/templates?status=all&x=1", 422, "VALIDATION_ERROR", "x"},
};

START_TEST(refused_queries_never_reach_upstream)
{
    struct http_resp r;
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        const struct refusal *c = &refusals[i];
        get(c->path_query, auth_b, &r);
        assert_refused(&r, c->path_query, c->status, c->code, c->field, 0);
        http_free(&r);
    }
    /* a send takes no query: what it could carry is not what was checked */
    const char *body = "{\"sender_id\":12,\"recipient_phone\":\"" PHONE
                       "\",\"message\":\"hi\"}";
    ck_assert_int_eq(
        harness_post(gw.port, FREEFORM "?sender_id=14", body, auth_b, &r), 0);
    assert_refused(&r, "send with a query", 422, "VALIDATION_ERROR",
                   "sender_id", 0);
    http_free(&r);
    /* refusals are not upstream errors */
    ck_assert_int_eq(harness_get(gw.port, "GET", "/metrics", NULL, &r), 0);
    ck_assert_ptr_null(strstr(r.body, "wagate_upstream_errors_total{"));
    ck_assert_ptr_nonnull(
        strstr(r.body, "wagate_upstream_duration_seconds_count 0\n"));
    ck_assert_ptr_nonnull(strstr(r.body,
                                 "route=\"session_status\","
                                 "decision=\"rejected\",status=\"422\""));
    http_free(&r);
}
END_TEST

/* Bytes curl would not send: through a raw socket. */
START_TEST(raw_bytes_in_the_query_are_400)
{
    static const char *const targets[] = {
        STATUS "?sender_id=12\r&recipient_phone=" PHONE_Q,
        STATUS "?sender_id=12&recipient_phone=" PHONE_Q "&x=\xc3\xa9",
        STATUS "?sender_id=12&recipient_phone=\x01" PHONE_Q,
        STATUS "?sender_id=12&recipient_phone=" PHONE_Q "\t",
        STATUS "?sender_id=12&recipient_phone=" PHONE_Q "\x7f",
    };
    char req[512], out[4096];
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        int n = snprintf(req, sizeof(req),
                         "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: "
                         "Bearer " TOKEN_B "\r\n\r\n",
                         targets[i]);
        raw_exchange(gw.port, req, (size_t)n, out, sizeof(out), 3000);
        ck_assert_msg(strncmp(out, "HTTP/1.1 400", 12) == 0, "%zu: %s", i, out);
        ck_assert_msg(strstr(out, "\"error_code\":\"BAD_REQUEST\"") != NULL,
                      "%zu: %s", i, out);
        ck_assert_msg(strstr(out, "X-Wagate: gateway; reason=bad_request") !=
                          NULL,
                      "%zu: %s", i, out);
    }
    ck_assert_int_eq(hx_sandbox_count(sb.port), 0);
}
END_TEST

/* ---- what goes upstream is rebuilt ---- */

START_TEST(accepted_queries_are_rebuilt_canonically)
{
    struct http_resp r;
    ck_assert_int_eq(
        get(STATUS "?recipient_phone=%2b14155550123&sender_id=12", auth_a, &r),
        200);
    http_free(&r);
    ck_assert_str_eq(sb_path(0),
                     STATUS "?sender_id=12&recipient_phone=" PHONE_Q);
    ck_assert_int_eq(get(STATUS "?%73ender_id=12&recipient%5Fphone=%2B%31"
                                "4155550123",
                         auth_a, &r),
                     200);
    http_free(&r);
    ck_assert_str_eq(sb_path(1),
                     STATUS "?sender_id=12&recipient_phone=" PHONE_Q);
    ck_assert_int_eq(get(API "/senders?status=%61ll", auth_a, &r), 200);
    http_free(&r);
    ck_assert_str_eq(sb_path(2), API "/senders?status=all");
    ck_assert_int_eq(get(API "/senders?", auth_a, &r), 200);
    http_free(&r);
    ck_assert_str_eq(sb_path(3), API "/senders");
    ck_assert_int_eq(get(API "/senders/12/templates?status=all", auth_a, &r),
                     200);
    http_free(&r);
    ck_assert_str_eq(sb_path(4), API "/senders/12/templates?status=all");
    ck_assert_int_eq(get(API "/senders/12/templates", auth_a, &r), 200);
    http_free(&r);
    ck_assert_str_eq(sb_path(5), API "/senders/12/templates");
    ck_assert_int_eq(hx_sandbox_count(sb.port), 6);
}
END_TEST

/* The templates path is matched undecoded: an encoded sender id is no
 * route at all, so the allow-list check and the forwarded path agree. */
START_TEST(templates_path_is_not_a_bypass)
{
    struct http_resp r;
    static const char *const paths[] = {
        API "/senders/1%34/templates", API "/senders/%31%34/templates",
        API "/senders/014/templates",  API "/senders/+14/templates",
        API "/senders/14%2Ftemplates", API "/senders/14/templates%00",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        get(paths[i], auth_a, &r);
        assert_refused(&r, paths[i], 404, "ROUTE_NOT_FOUND", "", 0);
        http_free(&r);
    }
    get(API "/senders/14/templates?status=all", auth_a, &r);
    assert_refused(&r, "sender 14", 403, "SENDER_NOT_ALLOWED", "", 0);
    http_free(&r);
    ck_assert_int_eq(get(API "/senders/12/templates", auth_a, &r), 200);
    http_free(&r);
    ck_assert_int_eq(hx_sandbox_count(sb.port), 1);
}
END_TEST

/* ---- A3: the cache learns only the pair that was forwarded ---- */

START_TEST(refused_query_teaches_the_cache_nothing)
{
    struct http_resp poison, r;
    char b[128];
    /* (12, X) is open at the sandbox; (14, X) has no conversation */
    ck_assert_int_eq(
        hx_sandbox_control(sb.port, "POST", "/_sandbox/inbound",
                           "{\"sender_id\":12,\"recipient_phone\":\"" PHONE
                           "\"}"),
        204);
    get(STATUS "?sender%5Fid=14&sender_id=12&recipient_phone=" PHONE_Q, auth_b,
        &poison);
    /* what the cache holds for (12, X) first: an answer about (14, X) must
     * not have been learned as (12, X) */
    get("/admin/sessions?sender_id=12&recipient_phone=" PHONE_Q, auth_admin,
        &r);
    ck_assert_msg(r.status == 404, "learned: %s", r.body);
    ck_assert_str_eq(json_str(r.body, "error_code"), "SESSION_NOT_FOUND");
    http_free(&r);
    /* and (12, X)'s open window is not refused locally */
    const char *body = "{\"sender_id\":12,\"recipient_phone\":\"" PHONE
                       "\",\"message\":\"hi\"}";
    ck_assert_int_eq(harness_post(gw.port, FREEFORM, body, auth_b, &r), 0);
    ck_assert_msg(r.status == 200, "send: %ld %s", r.status, r.body);
    ck_assert_str_eq(http_header(&r, "X-Wagate", b, sizeof(b)), "upstream");
    http_free(&r);
    ck_assert_int_eq(hx_sandbox_count(sb.port), 1); /* the send, nothing else */
    assert_refused(&poison, "poison", 422, "VALIDATION_ERROR", "sender_id", 1);
    http_free(&poison);
}
END_TEST

START_TEST(forwarded_pair_is_the_learned_pair)
{
    struct http_resp r;
    /* a valid query for (14, X), its keys encoded: learned as (14, X) */
    ck_assert_int_eq(get(STATUS
                         "?%73ender_id=14&recipient_phone=%2B14155550123",
                         auth_b, &r),
                     200);
    http_free(&r);
    ck_assert_str_eq(sb_path(0),
                     STATUS "?sender_id=14&recipient_phone=" PHONE_Q);
    get("/admin/sessions?sender_id=14&recipient_phone=" PHONE_Q, auth_admin,
        &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(json_str(r.body, "state"), "closed");
    ck_assert_str_eq(json_str(r.body, "source"), "session_status");
    http_free(&r);
    get("/admin/sessions?sender_id=12&recipient_phone=" PHONE_Q, auth_admin,
        &r);
    ck_assert_int_eq(r.status, 404);
    http_free(&r);
}
END_TEST

/* ---- the admin API's queries follow the same rules ---- */

START_TEST(admin_sessions_query_rules)
{
    struct http_resp r;
    static const struct refusal cases[] = {
        {"/admin/sessions?sender%5Fid=14&sender_id=12&recipient_phone=" PHONE_Q,
         422, "VALIDATION_ERROR", "sender_id"},
        {"/admin/sessions?sender_id=12&recipient_phone=" PHONE_Q "&x=1", 422,
         "VALIDATION_ERROR", "x"},
        {"/admin/sessions?sender_id=12&recipient_phone=+14155550123", 422,
         "INVALID_PHONE", ""},
        {"/admin/sessions?sender_id=12&recipient_phone=%2B1%", 400,
         "BAD_REQUEST", ""},
        {"/admin/sessions?sender_id=12", 422, "VALIDATION_ERROR",
         "recipient_phone"},
        {"/admin/stats?x=1", 422, "VALIDATION_ERROR", "x"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        get(cases[i].path_query, auth_admin, &r);
        assert_refused(&r, cases[i].path_query, cases[i].status, cases[i].code,
                       cases[i].field, 0);
        http_free(&r);
    }
    get("/admin/sessions?%73ender_id=12&recipient_phone=" PHONE_Q, auth_admin,
        &r);
    ck_assert_int_eq(r.status, 404); /* valid, and nothing known */
    http_free(&r);
}
END_TEST

static Suite *
queries_suite(void)
{
    Suite *s = suite_create("query_strings");
    TCase *tc = tcase_create("queries");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, encoded_key_bypass_is_refused);
    tcase_add_test(tc, refused_queries_never_reach_upstream);
    tcase_add_test(tc, raw_bytes_in_the_query_are_400);
    tcase_add_test(tc, accepted_queries_are_rebuilt_canonically);
    tcase_add_test(tc, templates_path_is_not_a_bypass);
    tcase_add_test(tc, refused_query_teaches_the_cache_nothing);
    tcase_add_test(tc, forwarded_pair_is_the_learned_pair);
    tcase_add_test(tc, admin_sessions_query_rules);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return harness_run_suite(queries_suite());
}
