/* check_route.c - unit tests for route.c: every path to its route, the
 * route table's facts, the templates route. No sockets, no sleeping. */
#include "unit.h"
#include <event2/http.h>
#include <string.h>

#include "route.h"

/* ---- route ---- */

#define API "/api/user/whatsapp"

static const struct {
    const char *path;
    enum route_id id;
} routes[] = {
    {API "/send-freeform", ROUTE_SEND_FREEFORM},
    {API "/send", ROUTE_SEND},
    {API "/session-status", ROUTE_SESSION_STATUS},
    {API "/senders", ROUTE_SENDERS},
    {API "/senders/12/templates", ROUTE_TEMPLATES},
    {API "/senders/1/templates", ROUTE_TEMPLATES},
    {API "/senders/123456789012345678/templates", ROUTE_TEMPLATES},
    {"/healthz", ROUTE_HEALTHZ},
    {"/readyz", ROUTE_READYZ},
    {"/metrics", ROUTE_METRICS},
    {"/admin", ROUTE_ADMIN},
    {"/admin/", ROUTE_ADMIN},
    {"/admin/sessions", ROUTE_ADMIN},
    {"/admin/sessions/12/+14155550123", ROUTE_ADMIN},
    /* not routes */
    {API "/senders/abc/templates", ROUTE_NONE},
    {API "/senders//templates", ROUTE_NONE},
    {API "/senders/12a/templates", ROUTE_NONE},
    {API "/senders/-1/templates", ROUTE_NONE},
    {API "/senders/+1/templates", ROUTE_NONE},
    {API "/senders/ 1/templates", ROUTE_NONE},
    {API "/senders/1234567890123456789/templates", ROUTE_NONE}, /* 19 */
    {API "/senders/12/templates/", ROUTE_NONE},
    {API "/senders/12/templatesx", ROUTE_NONE},
    {API "/senders/12/Templates", ROUTE_NONE},
    {API "/senders/12", ROUTE_NONE},
    {API "/senders/12/", ROUTE_NONE},
    {API "/senders/", ROUTE_NONE},
    {API "/send/", ROUTE_NONE},
    {API "/send-freeform/", ROUTE_NONE},
    {API "/sendx", ROUTE_NONE},
    {API "/send%2Dfreeform", ROUTE_NONE},
    {API "/./send", ROUTE_NONE},
    {API "//send", ROUTE_NONE},
    {"/API/user/whatsapp/send", ROUTE_NONE},
    {"//api/user/whatsapp/send", ROUTE_NONE},
    {API, ROUTE_NONE},
    {API "/", ROUTE_NONE},
    {"/api/user/whatsapp/session-status/", ROUTE_NONE},
    {"/adminx", ROUTE_NONE},
    {"/admi", ROUTE_NONE},
    {"/Admin", ROUTE_NONE},
    {"/healthz/", ROUTE_NONE},
    {"/metrics.txt", ROUTE_NONE},
    {"/", ROUTE_NONE},
    {"", ROUTE_NONE},
    {"*", ROUTE_NONE},
    {"http://evil.example/api/user/whatsapp/send", ROUTE_NONE},
};
#define NROUTES ((int)(sizeof(routes) / sizeof(routes[0])))

START_TEST(test_route_match)
{
    const struct route_info *r = route_match(routes[_i].path);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(r->id == routes[_i].id, "%s: got %d, want %d",
                  routes[_i].path, (int)r->id, (int)routes[_i].id);
    ck_assert_ptr_eq(r, route_get(routes[_i].id));
}
END_TEST

START_TEST(test_route_info)
{
    const struct route_info *r = route_match(API "/send-freeform");
    ck_assert_str_eq(r->name, "send_freeform");
    ck_assert_int_eq(r->kind, ROUTE_KIND_SEND);
    ck_assert_int_eq(r->methods, EVHTTP_REQ_POST);
    ck_assert_str_eq(r->allow, "POST");

    r = route_match(API "/send");
    ck_assert_int_eq(r->kind, ROUTE_KIND_SEND);
    ck_assert_str_eq(r->allow, "POST");

    static const char *const reads[] = {API "/session-status", API "/senders",
                                        API "/senders/12/templates"};
    for (size_t i = 0; i < 3; i++) {
        r = route_match(reads[i]);
        ck_assert_int_eq(r->kind, ROUTE_KIND_READ);
        ck_assert_int_eq(r->methods, EVHTTP_REQ_GET);
        ck_assert_str_eq(r->allow, "GET");
    }
    static const char *const locals[] = {"/healthz", "/readyz", "/metrics"};
    for (size_t i = 0; i < 3; i++) {
        r = route_match(locals[i]);
        ck_assert_int_eq(r->kind, ROUTE_KIND_LOCAL);
        ck_assert_int_eq(r->methods, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
        ck_assert_str_eq(r->allow, "GET, HEAD");
    }
    r = route_match("/admin/sessions");
    ck_assert_int_eq(r->kind, ROUTE_KIND_ADMIN);
    ck_assert_int_eq(r->methods, 0);

    r = route_match("/nope");
    ck_assert_int_eq(r->id, ROUTE_NONE);
    ck_assert_int_eq(r->kind, ROUTE_KIND_NONE);
    ck_assert_ptr_nonnull(r->name);

    /* every id has its own name; out-of-range ids fall back to NONE */
    for (int id = 0; id < ROUTE_COUNT; id++) {
        ck_assert_int_eq(route_get((enum route_id)id)->id, id);
        ck_assert_ptr_nonnull(route_get((enum route_id)id)->name);
        for (int j = 0; j < id; j++)
            ck_assert_str_ne(route_get((enum route_id)id)->name,
                             route_get((enum route_id)j)->name);
    }
    ck_assert_int_eq(route_get(ROUTE_COUNT)->id, ROUTE_NONE);
}
END_TEST

START_TEST(test_route_templates_sender)
{
    ck_assert_int_eq(route_templates_sender(API "/senders/12/templates"), 12);
    ck_assert_int_eq(route_templates_sender(API "/senders/1/templates"), 1);
    /* ids are positive and written without leading zeros */
    ck_assert_int_eq(route_templates_sender(API "/senders/0/templates"), -1);
    ck_assert_int_eq(route_templates_sender(API "/senders/007/templates"), -1);
    ck_assert_int_eq(
        route_templates_sender(API "/senders/123456789012345678/templates"),
        123456789012345678LL);
    ck_assert_int_eq(
        route_templates_sender(API "/senders/999999999999999999/templates"),
        999999999999999999LL);
    ck_assert_int_eq(
        route_templates_sender(API "/senders/1234567890123456789/templates"),
        -1);
    ck_assert_int_eq(route_templates_sender(API "/senders/abc/templates"), -1);
    ck_assert_int_eq(route_templates_sender(API "/senders//templates"), -1);
    ck_assert_int_eq(route_templates_sender(API "/senders/12/templates/"), -1);
    ck_assert_int_eq(route_templates_sender(API "/senders/12"), -1);
    ck_assert_int_eq(route_templates_sender(API "/senders"), -1);
    ck_assert_int_eq(route_templates_sender(API "/send"), -1);
    ck_assert_int_eq(route_templates_sender("/admin/12/templates"), -1);
    ck_assert_int_eq(route_templates_sender(""), -1);
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("route");
    TCase *tc;

    tc = tcase_create("route");
    tcase_add_loop_test(tc, test_route_match, 0, NROUTES);
    tcase_add_test(tc, test_route_info);
    tcase_add_test(tc, test_route_templates_sender);
    suite_add_tcase(s, tc);

    return s;
}
