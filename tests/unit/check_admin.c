/* check_admin.c - unit tests for admin.c: the admin API's session routes
 * and its refusals, driven without a network on a session cache of its own. */
#include "unit.h"
#include <event2/event.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "clock.h"
#include "isotime.h"
#include "gateway.h"
#include "precheck.h"
#include "session_cache.h"
#include "state.h"

#define HOUR 3600000LL
/* the memory store reads its entries on the wall clock: the admin's now
 * is the wall clock's, in whole seconds */
static int64_t now_ms;
#define NOW now_ms
#define PHONE "+14155550123"

static struct session_cache *c;
static struct state *st;
static uint64_t ph;

static void
setup(void)
{
    c = cache_new(100);
    st = state_memory_new(NULL, NULL, c, NULL, 0); /* answers within the call */
    ph = precheck_phone_key(PHONE);
    now_ms = clock_wall_ms() / 1000 * 1000;
}

static void
teardown(void)
{
    state_free(st);
    cache_free(c);
}

/* ---- admin ---- */

static void
on_view(void *arg, const struct state_window_view *w)
{
    admin_complete_view(arg, w);
}

static void
on_done(void *arg, enum state_status status)
{
    admin_complete_done(arg, status);
}

/* admin_handle(), then what it asks of the state, answered at once. */
static void
admin_at(const char *method, const char *path, const char *query,
         const char *body, int64_t now, struct admin_result *r)
{
    struct gateway gw = {.cache = c, .state = st};
    struct admin_ctx ctx = {&gw, 300000};
    admin_handle(&ctx, method, path, query, body, body ? strlen(body) : 0, now,
                 r);
    if (r->ask != ADMIN_ASK_NONE) {
        ck_assert_int_eq(r->status, 0);
        ck_assert_ptr_null(admin_ask(&ctx, r, on_view, on_done, r));
        ck_assert_int_eq(r->ask, ADMIN_ASK_NONE);
    }
}

static void
admin(const char *method, const char *path, const char *query, const char *body,
      struct admin_result *r)
{
    admin_at(method, path, query, body, NOW, r);
}

START_TEST(admin_get_delete_inbound)
{
    struct admin_result r;
    const char *q = "sender_id=12&recipient_phone=%2B14155550123";
    admin("GET", "/admin/sessions", q, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(r.code, "SESSION_NOT_FOUND");
    /* without received_at the store's own clock says when now is */
    int64_t t0 = clock_wall_ms() / 1000 * 1000;
    admin("POST", "/admin/sessions/inbound", NULL,
          "{\"sender_id\":12,\"recipient_phone\":\"" PHONE "\"}", &r);
    int64_t t1 = clock_wall_ms();
    ck_assert_int_eq(r.status, 204);
    admin("GET", "/admin/sessions", q, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"state\":\"open\""));
    ck_assert_ptr_nonnull(strstr(r.body, "\"source\":\"inbound\""));
    char want[80], iso[40];
    int seen = 0;
    for (int64_t t = t0; t <= t1 && !seen; t += 1000) {
        snprintf(want, sizeof(want), "\"expires_at\":\"%s\"",
                 isotime_format(t + 24 * HOUR, iso, sizeof(iso)));
        seen = strstr(r.body, want) != NULL;
    }
    ck_assert_msg(seen, "%s", r.body);
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

/* A store that could not be asked: 503 STATE_UNAVAILABLE (SPEC section
 * 11), for a read as for a change. */
START_TEST(admin_state_unavailable)
{
    struct admin_result r;
    struct state_window_view down = {STATE_UNAVAILABLE, 0, {0}};
    const char *q = "sender_id=12&recipient_phone=%2B14155550123";
    struct gateway gw = {.cache = c, .state = st};
    struct admin_ctx ctx = {&gw, 300000};
    admin_handle(&ctx, "GET", "/admin/sessions", q, "", 0, NOW, &r);
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(r.ask, ADMIN_ASK_GET);
    ck_assert_int_eq(r.sender, 12);
    ck_assert_str_eq(r.phone, PHONE);
    admin_complete_view(&r, &down);
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(r.code, "STATE_UNAVAILABLE");
    ck_assert_int_eq(r.error, GW_ERR_STATE_UNAVAILABLE);
    ck_assert_ptr_null(r.body);
    admin_handle(&ctx, "DELETE", "/admin/sessions", q, "", 0, NOW, &r);
    ck_assert_int_eq(r.ask, ADMIN_ASK_FORGET);
    admin_complete_done(&r, STATE_UNAVAILABLE);
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(r.code, "STATE_UNAVAILABLE");
    /* an inbound event asks to open until received_at + 24 h */
    const char *b = "{\"sender_id\":12,\"recipient_phone\":\"" PHONE
                    "\",\"received_at\":\"2026-03-01T10:00:00Z\"}";
    admin_handle(&ctx, "POST", "/admin/sessions/inbound", NULL, b, strlen(b),
                 NOW, &r);
    ck_assert_int_eq(r.ask, ADMIN_ASK_OPEN);
    ck_assert(r.expires_at == 1772359200000LL + 24 * HOUR);
    admin_complete_done(&r, STATE_UNAVAILABLE);
    ck_assert_int_eq(r.status, 503);
}
END_TEST

static void
count_view(void *arg, const struct state_window_view *w)
{
    struct admin_result *r = arg;
    admin_complete_view(r, w);
}

/* A store that answers later (the memory store's delay mode, as a remote
 * one does): the ask returns a handle, the result comes from the loop. */
START_TEST(admin_answer_comes_later)
{
    struct event_base *base = event_base_new();
    struct state *late = state_memory_new(base, NULL, c, NULL, 5);
    struct gateway gw = {.cache = c, .state = late};
    struct admin_ctx ctx = {&gw, 300000};
    struct admin_result r;
    const char *q = "sender_id=12&recipient_phone=%2B14155550123";
    cache_learn_open(c, 12, ph, clock_wall_ms() + HOUR, CACHE_SRC_INBOUND,
                     clock_wall_ms());
    admin_handle(&ctx, "GET", "/admin/sessions", q, "", 0, NOW, &r);
    ck_assert_ptr_nonnull(admin_ask(&ctx, &r, count_view, NULL, &r));
    ck_assert_int_eq(r.status, 0);
    for (int i = 0; i < 100 && r.status == 0; i++)
        event_base_loop(base, EVLOOP_ONCE);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"state\":\"open\""));
    free(r.body);
    state_free(late);
    event_base_free(base);
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
          "\",\"received_at\":\"yesterday\"}",
          &r);
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
    tcase_add_test(ta, admin_state_unavailable);
    tcase_add_test(ta, admin_answer_comes_later);
    suite_add_tcase(s, ta);
    return s;
}
