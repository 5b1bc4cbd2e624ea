/* check_learn.c - unit tests for what the gateway learns from answers
 * (learn.c) into the session cache. */
#include "unit.h"
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isotime.h"
#include "learn.h"
#include "precheck.h"
#include "route.h"
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

/* The lesson alone (learn_extract), as the Redis backend takes it: no
 * clock, a template's window open for a day from when it is learned. */
START_TEST(the_lesson_needs_no_clock)
{
    struct learn_lesson l;
    ck_assert_int_eq(learn_extract(ROUTE_SEND, 12, ph, 201, "", 0, &l), 1);
    ck_assert_int_eq(l.open, 1);
    ck_assert(l.for_ms == LEARN_WINDOW_MS);
    ck_assert_int_eq(l.source, CACHE_SRC_TEMPLATE);
    const char *b = "{\"success\": false, \"error_code\": \"SESSION_EXPIRED\","
                    " \"session_status\": {\"is_open\": false, \"expired_at\":"
                    " \"2026-01-01T00:00:00Z\"}}";
    ck_assert_int_eq(
        learn_extract(ROUTE_SEND_FREEFORM, 12, ph, 403, b, strlen(b), &l), 1);
    ck_assert_int_eq(l.open, 0);
    ck_assert(l.when == NOW);
    ck_assert(l.for_ms == 0);
    ck_assert_int_eq(l.source, CACHE_SRC_SEND_FREEFORM);
    ck_assert_int_eq(
        learn_extract(ROUTE_SEND_FREEFORM, 12, ph, 500, b, strlen(b), &l), 0);
    ck_assert_int_eq(learn_extract(ROUTE_SEND, 12, 0, 200, "", 0, &l), 0);
}
END_TEST

/* The lesson of a freeform 200 answer: 1 open, 0 closed, -1 none. */
static int
freeform_200(const char *b, size_t n)
{
    struct learn_lesson l;
    if (!learn_extract(ROUTE_SEND_FREEFORM, 12, ph, 200, b, n, &l))
        return -1;
    return l.open;
}

/* An answer nested this deep, session_status first (closed). */
static char *
nested(int depth)
{
    static char b[512];
    int n = snprintf(b, sizeof(b),
                     "{\"session_status\":{\"is_open\":false},\"x\":");
    for (int i = 0; i < depth - 1; i++)
        b[n++] = '[';
    for (int i = 0; i < depth - 1; i++)
        b[n++] = ']';
    b[n++] = '}';
    b[n] = '\0';
    return b;
}

/* Answers the gateway reads without json-c (learn.c's fast path) teach
 * exactly what json-c strict reads from them; where the two could part,
 * json-c reads them, as it always has. */
START_TEST(the_fast_reading_agrees_with_json_c)
{
    const char open[] = "{\"session_status\":{\"is_open\":true,"
                        "\"expires_at\":\"2026-01-01T00:00:00Z\"}}";
    ck_assert_int_eq(freeform_200(open, sizeof(open) - 1), 1);
    /* json-c cuts a key at \u0000: these keys are session_status and
     * is_open to it */
    const char nul_key[] = "{\"session_status\\u0000x\":{\"is_open\":false}}";
    ck_assert_int_eq(freeform_200(nul_key, sizeof(nul_key) - 1), 0);
    const char nul_inner[] = "{\"session_status\":{\"is_open\\u0000\":false}}";
    ck_assert_int_eq(freeform_200(nul_inner, sizeof(nul_inner) - 1), 0);
    /* a key twice: json-c keeps the last */
    const char twice[] = "{\"session_status\":{\"is_open\":false},"
                         "\"session_status\":{\"is_open\":true,"
                         "\"expires_at\":\"2026-01-01T00:00:00Z\"}}";
    ck_assert_int_eq(freeform_200(twice, sizeof(twice) - 1), 1);
    /* UTF-8 json-c does not validate, a NUL byte json-c stops at */
    const char bad_utf8[] = "{\"m\":\"\xff\",\"session_status\":{\"is_open\":false}}";
    ck_assert_int_eq(freeform_200(bad_utf8, sizeof(bad_utf8) - 1), 0);
    const char after_nul[] = "{\"session_status\":{\"is_open\":false}}\0junk";
    ck_assert_int_eq(freeform_200(after_nul, sizeof(after_nul) - 1), 0);
    /* json-c refuses nesting past 32 (the scan allows 64) */
    ck_assert_int_eq(freeform_200(nested(32), strlen(nested(32))), 0);
    ck_assert_int_eq(freeform_200(nested(33), strlen(nested(33))), -1);
    ck_assert_int_eq(freeform_200(nested(40), strlen(nested(40))), -1);
    /* past the stack scratch: json-c reads it */
    char big[4096];
    int n = snprintf(big, sizeof(big), "{\"pad\":\"%03000d\",%s", 0,
                     open + 1);
    ck_assert_int_eq(freeform_200(big, (size_t)n), 1);
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("learn");
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
    tcase_add_test(tl, the_lesson_needs_no_clock);
    tcase_add_test(tl, the_fast_reading_agrees_with_json_c);
    suite_add_tcase(s, tl);
    return s;
}
