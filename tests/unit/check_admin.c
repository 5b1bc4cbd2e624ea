/* check_admin.c - unit tests for admin.c: the admin API's session routes
 * and its refusals, driven without a network on a session cache of its own. */
#include "unit.h"
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "gateway.h"
#include "precheck.h"
#include "session_cache.h"

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

Suite *
unit_suite(void)
{
    Suite *s = suite_create("admin");
    TCase *ta = tcase_create("admin");
    tcase_add_checked_fixture(ta, setup, teardown);
    tcase_add_test(ta, admin_get_delete_inbound);
    tcase_add_test(ta, admin_refusals);
    tcase_add_test(ta, admin_stats);
    tcase_add_test(ta, admin_methods_and_allow);
    suite_add_tcase(s, ta);
    return s;
}
