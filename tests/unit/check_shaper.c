/* check_shaper.c - unit tests for shaper.c: reading Retry-After. No clock,
 * no sleeping. */
#include "unit.h"
#include <stddef.h>

#include "shaper.h"

/* ---- Retry-After ---- */

#define NOW 1767225600 /* 2026-01-01T00:00:00Z, a Thursday */

START_TEST(retry_after_values)
{
    static const struct {
        const char *v;
        double ms;
    } cases[] = {
        {NULL, 1000},
        {"", 1000},
        {"0", 0},
        {"5", 5000},
        {"  7\t", 7000},
        {"120", 60000},       /* capped */
        {"999999999", 60000}, /* capped, not an hour */
        {"99999999999999999999999999", 60000},
        {"-5", 1000},
        {"+5", 1000},
        {"5s", 1000},
        {"1.5", 1000},
        {"soon", 1000},
        {"Thu, 01 Jan 2026 00:00:10 GMT", 10000},
        {"Thursday, 01-Jan-26 00:00:20 GMT", 20000},
        {"Thu Jan  1 00:00:30 2026", 30000},
        {"Thu, 01 Jan 2099 00:00:00 GMT", 60000}, /* capped */
        {"Thu, 01 Jan 2026 00:00:00 GMT", 1000},  /* now: not future */
        {"Wed, 31 Dec 2025 23:59:00 GMT", 1000},  /* past */
        {"Mon, 99 Foo 2026 99:99:99 GMT", 1000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double ms = shaper_retry_after_ms(cases[i].v, NOW, 1000, 60000);
        ck_assert_msg(ms == cases[i].ms, "\"%s\": %g, want %g",
                      cases[i].v ? cases[i].v : "(null)", ms, cases[i].ms);
    }
    /* the cap bounds the default too: max_pause_ms 0 never pauses */
    ck_assert_double_eq(shaper_retry_after_ms("30", NOW, 1000, 0), 0);
    ck_assert_double_eq(shaper_retry_after_ms(NULL, NOW, 1000, 0), 0);
    ck_assert_double_eq(shaper_retry_after_ms(NULL, NOW, 1000, 500), 500);
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("shaper");
    TCase *tc = tcase_create("retry_after");
    tcase_add_test(tc, retry_after_values);
    suite_add_tcase(s, tc);
    return s;
}
