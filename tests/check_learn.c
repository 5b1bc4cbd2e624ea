/* check_learn.c - unit tests for what the gateway learns from answers
 * (learn.c), the admin API (admin.c), caller auth (auth.c) and SHA-256. */
#include <check.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "auth.h"
#include "config.h"
#include "gateway.h"
#include "isotime.h"
#include "learn.h"
#include "precheck.h"
#include "route.h"
#include "session_cache.h"
#include "digest.h"

#define HOUR 3600000LL
#define NOW 1767225600000LL /* 2026-01-01T00:00:00Z */
#define PHONE "+14155550123"

static struct session_cache *c;
static uint64_t ph;

static void
setup(void)
{
    c = cache_new(100);
    ph = precheck_phone_key(PHONE);
}

static void
teardown(void)
{
    cache_free(c);
}

static int64_t
t(const char *iso)
{
    int64_t ms;
    ck_assert_int_eq(isotime_parse(iso, strlen(iso), &ms), 0);
    return ms;
}

static int
learn(enum route_id r, int status, const char *body)
{
    return learn_from_answer(c, r, 12, ph, status, body, strlen(body), NOW);
}

/* ---- digest (libcrypto): the wrapper hands back the right bytes ---- */

static void
hex(const unsigned char *d, char *out)
{
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

START_TEST(sha256_known_vectors)
{
    unsigned char d[32];
    char h[65];
    digest_sha256("", 0, d);
    hex(d, h);
    ck_assert_str_eq(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca4"
                        "95991b7852b855");
    digest_sha256("abc", 3, d);
    hex(d, h);
    ck_assert_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb4"
                        "10ff61f20015ad");
}
END_TEST

START_TEST(ct_equal)
{
    unsigned char a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 4};
    ck_assert(digest_equal(a, b, 4));
    b[3] = 5;
    ck_assert(!digest_equal(a, b, 4));
    b[3] = 4;
    b[0] = 0;
    ck_assert(!digest_equal(a, b, 4));
}
END_TEST

/* ---- auth ---- */

START_TEST(bearer_parsing)
{
    size_t n;
    const char *t1 = auth_bearer_token("Bearer abc", &n);
    ck_assert_ptr_nonnull(t1);
    ck_assert(n == 3 && strncmp(t1, "abc", 3) == 0);
    ck_assert_ptr_nonnull(auth_bearer_token("bearer  abc ", &n));
    ck_assert_uint_eq(n, 3);
    ck_assert_ptr_null(auth_bearer_token("Basic abc", &n));
    ck_assert_ptr_null(auth_bearer_token("Bearer ", &n));
    ck_assert_ptr_null(auth_bearer_token("Bearerabc", &n));
    ck_assert_ptr_null(auth_bearer_token(NULL, &n));
}
END_TEST

START_TEST(clients_and_senders)
{
    struct config cfg;
    char err[256];
    const char *text =
        "{\"clients\": [{\"name\": \"alpha\", \"token_sha256\": "
        "\"2c9cd19e083cc328828bc58cd2b7b0fd90e13cd97fe502ca8ab1b43d85d21d33\","
        " \"senders\": [12, 13]}, {\"name\": \"bravo\", \"token_sha256\": "
        "\"8627dd18a50da4646da84f7b702aa345581219a87c26a1527f8388a8ba04e621\","
        " \"senders\": \"*\"}], \"admin\": {\"token_sha256\": "
        "\"39eccedf59001412f7e0557d616c46642ef9eecfd34a79bd27c25f73e328b872\"}}";
    ck_assert_int_eq(config_parse(&cfg, text, "t.json", err, sizeof(err)), 0);
    const struct config_client *a =
        auth_find_client(&cfg, "Bearer tok-alpha-1");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(a->name, "alpha");
    ck_assert(auth_sender_allowed(a, 12) && auth_sender_allowed(a, 13));
    ck_assert(!auth_sender_allowed(a, 14) && !auth_sender_allowed(a, -1));
    const struct config_client *b =
        auth_find_client(&cfg, "Bearer tok-bravo-2");
    ck_assert_ptr_nonnull(b);
    ck_assert(auth_sender_allowed(b, 999));
    ck_assert_ptr_null(auth_find_client(&cfg, "Bearer tok-alpha-"));
    ck_assert_ptr_null(auth_find_client(&cfg, "Bearer admin-tok-3"));
    ck_assert_ptr_null(auth_find_client(&cfg, NULL));
    ck_assert(auth_admin_ok(&cfg, "Bearer admin-tok-3"));
    ck_assert(!auth_admin_ok(&cfg, "Bearer tok-alpha-1"));
    ck_assert(!auth_admin_ok(&cfg, NULL));
    config_free(&cfg);
    config_defaults(&cfg);
    ck_assert(!auth_admin_ok(&cfg, "Bearer admin-tok-3")); /* none set */
    config_free(&cfg);
}
END_TEST

/* ---- learning ---- */

START_TEST(freeform_200_opens)
{
    ck_assert(learn(ROUTE_SEND_FREEFORM, 200,
                    "{\"success\":true,\"session_status\":{\"is_open\":true,"
                    "\"expires_at\":\"2026-01-01T10:00:00+00:00\"}}"));
    struct cache_view v;
    ck_assert_int_eq(cache_get(c, 12, ph, NOW, 300000, &v), 0);
    ck_assert(v.open);
    ck_assert_int_eq(v.expires_at, t("2026-01-01T10:00:00Z"));
    ck_assert_int_eq(v.source, CACHE_SRC_SEND_FREEFORM);
}
END_TEST

START_TEST(freeform_403_closes_with_expired_at)
{
    ck_assert(learn(ROUTE_SEND_FREEFORM, 403,
                    "{\"success\":false,\"error\":\"x\",\"error_code\":"
                    "\"SESSION_EXPIRED\",\"session_status\":{\"is_open\":false,"
                    "\"expired_at\":\"2025-12-31T20:00:00+00:00\"}}"));
    struct cache_view v;
    ck_assert_int_eq(cache_get(c, 12, ph, NOW, 300000, &v), 0);
    ck_assert(!v.open);
    ck_assert_int_eq(v.expires_at, t("2025-12-31T20:00:00Z"));
    ck_assert_int_eq(v.trusted_until, NOW + 300000);
}
END_TEST

START_TEST(freeform_403_without_status_closes_unknown)
{
    ck_assert(learn(ROUTE_SEND_FREEFORM, 403,
                    "{\"success\":false,\"error_code\":\"SESSION_EXPIRED\"}"));
    struct cache_view v;
    ck_assert_int_eq(cache_get(c, 12, ph, NOW, 300000, &v), 0);
    ck_assert(!v.open);
    ck_assert(v.expires_at == CACHE_TIME_UNKNOWN);
}
END_TEST

START_TEST(other_403_teaches_nothing)
{
    ck_assert(!learn(ROUTE_SEND_FREEFORM, 403,
                     "{\"success\":false,\"error_code\":\"FORBIDDEN\"}"));
    ck_assert(!learn(ROUTE_SEND_FREEFORM, 404,
                     "{\"error_code\":\"SESSION_EXPIRED\"}"));
    struct cache_view v;
    ck_assert_int_eq(cache_get(c, 12, ph, NOW, 300000, &v), -1);
}
END_TEST

/* Found by tests/fuzz/fuzz_learn.c: the code was compared as a C string, so
 * one that only starts with SESSION_EXPIRED and a NUL closed the window. */
START_TEST(session_expired_code_is_compared_whole)
{
    ck_assert(!learn(ROUTE_SEND_FREEFORM, 403,
                     "{\"error_code\":\"SESSION_EXPIRED\\u0000x\"}"));
    ck_assert(!learn(ROUTE_SEND_FREEFORM, 403,
                     "{\"error_code\":\"SESSION_EXPIRED\\u0000\"}"));
    struct cache_view v;
    ck_assert_int_eq(cache_get(c, 12, ph, NOW, 300000, &v), -1);
}
END_TEST

START_TEST(unparseable_teaches_nothing)
{
    ck_assert(!learn(ROUTE_SEND_FREEFORM, 200, "not json"));
    ck_assert(!learn(ROUTE_SEND_FREEFORM, 200, "{\"session_status\":5}"));
    ck_assert(!learn(ROUTE_SEND_FREEFORM, 200,
                     "{\"session_status\":{\"is_open\":true}}"));
    ck_assert(!learn(ROUTE_SEND_FREEFORM, 200,
                     "{\"session_status\":{\"is_open\":true,\"expires_at\":"
                     "\"tomorrow\"}}"));
    ck_assert(!learn(ROUTE_SEND_FREEFORM, 200, ""));
    struct cache_view v;
    ck_assert_int_eq(cache_get(c, 12, ph, NOW, 300000, &v), -1);
}
END_TEST

START_TEST(session_status_open_and_closed)
{
    ck_assert(learn(ROUTE_SESSION_STATUS, 200,
                    "{\"success\":true,\"has_conversation\":false,"
                    "\"session_status\":{\"is_open\":false,"
                    "\"can_send_freeform\":false}}"));
    struct cache_view v;
    ck_assert_int_eq(cache_get(c, 12, ph, NOW, 300000, &v), 0);
    ck_assert(!v.open);
    ck_assert_int_eq(v.source, CACHE_SRC_SESSION_STATUS);
    ck_assert(learn(ROUTE_SESSION_STATUS, 200,
                    "{\"session_status\":{\"is_open\":true,\"expires_at\":"
                    "\"2026-01-01T05:00:00Z\"}}"));
    ck_assert_int_eq(cache_get(c, 12, ph, NOW, 300000, &v), 0);
    ck_assert(v.open);
}
END_TEST

START_TEST(template_2xx_opens_for_a_day)
{
    ck_assert(learn(ROUTE_SEND, 200, "{\"success\":true}"));
    struct cache_view v;
    ck_assert_int_eq(cache_get(c, 12, ph, NOW, 300000, &v), 0);
    ck_assert(v.open);
    ck_assert_int_eq(v.expires_at, NOW + 24 * HOUR);
    ck_assert_int_eq(v.source, CACHE_SRC_TEMPLATE);
    ck_assert(!learn(ROUTE_SEND, 422, "{}"));
}
END_TEST

START_TEST(unknown_target_teaches_nothing)
{
    ck_assert(!learn_from_answer(c, ROUTE_SEND, -1, ph, 200, "{}", 2, NOW));
    ck_assert(!learn_from_answer(c, ROUTE_SEND, 12, 0, 200, "{}", 2, NOW));
    ck_assert(!learn(ROUTE_SENDERS, 200, "{\"data\":[]}"));
}
END_TEST

/* ---- admin ---- */

static void
admin(const char *method, const char *path, const char *query,
      const char *body, struct admin_result *r)
{
    struct gateway gw = {.cache = c};
    struct admin_ctx ctx = {&gw, 300000};
    admin_handle(&ctx, method, path, query, body, body ? strlen(body) : 0,
                 NOW, r);
}

START_TEST(admin_get_delete_inbound)
{
    struct admin_result r;
    const char *q = "sender_id=12&recipient_phone=%2B14155550123";
    admin("GET", "/admin/sessions", q, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(r.code, "SESSION_NOT_FOUND");
    admin("POST", "/admin/sessions/inbound", NULL,
          "{\"sender_id\":12,\"recipient_phone\":\"" PHONE "\"}", &r);
    ck_assert_int_eq(r.status, 204);
    admin("GET", "/admin/sessions", q, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"state\":\"open\""));
    ck_assert_ptr_nonnull(strstr(r.body, "\"source\":\"inbound\""));
    ck_assert_ptr_nonnull(strstr(r.body, "\"expires_at\":\"2026-01-02T00:00:00+00:00\""));
    ck_assert_ptr_nonnull(strstr(r.body, "\"trusted_until\":null"));
    free(r.body);
    /* a '+' sent unencoded is a space, as on every route (query.h) */
    admin("GET", "/admin/sessions", "sender_id=12&recipient_phone=+14155550123",
          NULL, &r);
    ck_assert_int_eq(r.status, 422);
    ck_assert_str_eq(r.code, "INVALID_PHONE");
    admin("DELETE", "/admin/sessions", q, NULL, &r);
    ck_assert_int_eq(r.status, 204);
    admin("GET", "/admin/sessions", q, NULL, &r);
    ck_assert_int_eq(r.status, 404);
}
END_TEST

START_TEST(admin_refusals)
{
    struct admin_result r;
    admin("GET", "/admin/sessions", "sender_id=x&recipient_phone=%2B1415", NULL,
          &r);
    ck_assert_int_eq(r.status, 422);
    ck_assert_str_eq(r.field, "sender_id");
    admin("GET", "/admin/sessions", "sender_id=12&recipient_phone=1415", NULL,
          &r);
    ck_assert_str_eq(r.code, "INVALID_PHONE");
    admin("GET", "/admin/sessions", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 422);
    admin("POST", "/admin/sessions", "", NULL, &r);
    ck_assert_int_eq(r.status, 405);
    ck_assert_str_eq(r.allow, "GET, DELETE");
    admin("POST", "/admin/sessions/inbound", NULL, "{nope", &r);
    ck_assert_str_eq(r.code, "INVALID_JSON");
    admin("POST", "/admin/sessions/inbound", NULL,
          "{\"sender_id\":12,\"recipient_phone\":\"" PHONE
          "\",\"received_at\":\"yesterday\"}", &r);
    ck_assert_str_eq(r.field, "received_at");
    admin("GET", "/admin/sessions/inbound", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 405);
    admin("GET", "/admin/other", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 404);
}
END_TEST

START_TEST(admin_stats)
{
    struct admin_result r;
    admin("GET", "/admin/stats", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    json_object *o = json_tokener_parse(r.body), *sc;
    ck_assert(json_object_object_get_ex(o, "session_cache", &sc));
    json_object_put(o);
    free(r.body);
}
END_TEST

/* One table decides the admin sub-routes and their methods: every other
 * method on a known path is 405 with that path's methods as Allow, and an
 * unknown path is 404 whatever the method (as before the table). */
START_TEST(admin_methods_and_allow)
{
    static const struct {
        const char *path, *ok, *allow;
    } routes[] = {
        {"/admin/sessions", "GET DELETE", "GET, DELETE"},
        {"/admin/sessions/inbound", "POST", "POST"},
        {"/admin/stats", "GET", "GET"},
        {"/admin/pause", "DELETE", "DELETE"},
        {"/admin", "", NULL},
        {"/admin/", "", NULL},
        {"/admin/stats/", "", NULL},
        {"/admin/Stats", "", NULL},
    };
    static const char *const methods[] = {"GET", "POST",  "DELETE", "HEAD",
                                          "PUT", "PATCH", "get"};
    const char *q = "sender_id=12&recipient_phone=%2B14155550123";
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
            struct admin_result r;
            const char *query =
                strcmp(routes[i].path, "/admin/sessions") == 0 ? q : NULL;
            admin(methods[m], routes[i].path, query, "{}", &r);
            free(r.body);
            int allowed = strcmp(methods[m], "get") != 0 &&
                          strstr(routes[i].ok, methods[m]) != NULL;
            if (routes[i].allow == NULL) {
                ck_assert_int_eq(r.status, 404);
                ck_assert_str_eq(r.code, "ROUTE_NOT_FOUND");
                ck_assert_ptr_null(r.allow);
            } else if (allowed) {
                ck_assert_msg(
                    r.status != 405 && (r.code == NULL ||
                                        strcmp(r.code, "ROUTE_NOT_FOUND") != 0),
                    "%s %s: %d", methods[m], routes[i].path, r.status);
            } else {
                ck_assert_msg(r.status == 405, "%s %s: %d", methods[m],
                              routes[i].path, r.status);
                ck_assert_str_eq(r.code, "METHOD_NOT_ALLOWED");
                ck_assert_str_eq(r.allow, routes[i].allow);
            }
        }
}
END_TEST

static Suite *
learn_suite(void)
{
    Suite *s = suite_create("learn");
    TCase *tc = tcase_create("sha256_auth");
    tcase_add_test(tc, sha256_known_vectors);
    tcase_add_test(tc, ct_equal);
    tcase_add_test(tc, bearer_parsing);
    tcase_add_test(tc, clients_and_senders);
    suite_add_tcase(s, tc);
    TCase *tl = tcase_create("learn");
    tcase_add_checked_fixture(tl, setup, teardown);
    tcase_add_test(tl, freeform_200_opens);
    tcase_add_test(tl, freeform_403_closes_with_expired_at);
    tcase_add_test(tl, freeform_403_without_status_closes_unknown);
    tcase_add_test(tl, other_403_teaches_nothing);
    tcase_add_test(tl, session_expired_code_is_compared_whole);
    tcase_add_test(tl, unparseable_teaches_nothing);
    tcase_add_test(tl, session_status_open_and_closed);
    tcase_add_test(tl, template_2xx_opens_for_a_day);
    tcase_add_test(tl, unknown_target_teaches_nothing);
    suite_add_tcase(s, tl);
    TCase *ta = tcase_create("admin");
    tcase_add_checked_fixture(ta, setup, teardown);
    tcase_add_test(ta, admin_get_delete_inbound);
    tcase_add_test(ta, admin_refusals);
    tcase_add_test(ta, admin_stats);
    tcase_add_test(ta, admin_methods_and_allow);
    suite_add_tcase(s, ta);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(learn_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
