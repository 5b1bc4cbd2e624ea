/* check_common.c - unit tests of libcommon (src/lib/), what wagate and
 * wagate-sandbox share: calendar arithmetic, hex digits, method names,
 * copies. Expected values are written out, never computed by the code
 * under test. */
#include "alloc.h"
#include "civil.h"
#include "hex.h"
#include "http_method.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(civil_known_days)
{
    static const struct {
        int64_t y;
        int m, d;
        int64_t days;
    } cases[] = {
        {1970, 1, 1, 0},      {1969, 12, 31, -1},    {2000, 3, 1, 11017},
        {2026, 2, 24, 20508}, {1, 1, 1, -719162},    {9999, 12, 31, 2932896},
        {1900, 3, 1, -25508}, {2400, 2, 29, 157113},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t y;
        int m, d;
        ck_assert_int_eq(civil_to_days(cases[i].y, cases[i].m, cases[i].d),
                         cases[i].days);
        civil_from_days(cases[i].days, &y, &m, &d);
        ck_assert_int_eq(y, cases[i].y);
        ck_assert_int_eq(m, cases[i].m);
        ck_assert_int_eq(d, cases[i].d);
    }
}
END_TEST

START_TEST(civil_round_trip_is_consecutive)
{
    /* Every day of 1899..2101 maps back to itself, and the next day is the
     * next date. */
    int64_t prev_y = 1898;
    int prev_m = 12, prev_d = 31;
    for (int64_t z = civil_to_days(1899, 1, 1);
         z <= civil_to_days(2101, 12, 31); z++) {
        int64_t y;
        int m, d;
        civil_from_days(z, &y, &m, &d);
        ck_assert_int_eq(civil_to_days(y, m, d), z);
        if (d == 1)
            ck_assert_int_eq(prev_d, civil_days_in_month(prev_y, prev_m));
        else
            ck_assert_int_eq(d, prev_d + 1);
        prev_y = y, prev_m = m, prev_d = d;
    }
}
END_TEST

START_TEST(civil_month_lengths)
{
    ck_assert_int_eq(civil_days_in_month(2026, 1), 31);
    ck_assert_int_eq(civil_days_in_month(2026, 2), 28);
    ck_assert_int_eq(civil_days_in_month(2024, 2), 29);
    ck_assert_int_eq(civil_days_in_month(1900, 2), 28);
    ck_assert_int_eq(civil_days_in_month(2000, 2), 29);
    ck_assert_int_eq(civil_days_in_month(2026, 4), 30);
    ck_assert_int_eq(civil_days_in_month(2026, 12), 31);
}
END_TEST

START_TEST(civil_floor_division)
{
    ck_assert_int_eq(civil_floor_div(0, 1000), 0);
    ck_assert_int_eq(civil_floor_div(999, 1000), 0);
    ck_assert_int_eq(civil_floor_div(1000, 1000), 1);
    ck_assert_int_eq(civil_floor_div(-1, 1000), -1);
    ck_assert_int_eq(civil_floor_div(-1000, 1000), -1);
    ck_assert_int_eq(civil_floor_div(-1001, 1000), -2);
    ck_assert_int_eq(civil_floor_div(-86400, 86400), -1);
    ck_assert_int_eq(civil_floor_div(INT64_C(-62135596800), 86400), -719162);
}
END_TEST

START_TEST(hex_digits)
{
    ck_assert_int_eq(hex_value('0'), 0);
    ck_assert_int_eq(hex_value('9'), 9);
    ck_assert_int_eq(hex_value('a'), 10);
    ck_assert_int_eq(hex_value('F'), 15);
    ck_assert_int_eq(hex_value('g'), -1);
    ck_assert_int_eq(hex_value('G'), -1);
    ck_assert_int_eq(hex_value('/'), -1);
    ck_assert_int_eq(hex_value(':'), -1);
    ck_assert_int_eq(hex_value('@'), -1);
    ck_assert_int_eq(hex_value('`'), -1);
    ck_assert_int_eq(hex_value(' '), -1);
    ck_assert_int_eq(hex_value('\0'), -1);
    ck_assert_int_eq(hex_value((char)0xC3), -1);
}
END_TEST

START_TEST(method_names)
{
    ck_assert_str_eq(http_method_name(EVHTTP_REQ_GET), "GET");
    ck_assert_str_eq(http_method_name(EVHTTP_REQ_POST), "POST");
    ck_assert_str_eq(http_method_name(EVHTTP_REQ_HEAD), "HEAD");
    ck_assert_str_eq(http_method_name(EVHTTP_REQ_PUT), "PUT");
    ck_assert_str_eq(http_method_name(EVHTTP_REQ_DELETE), "DELETE");
    ck_assert_str_eq(http_method_name(EVHTTP_REQ_OPTIONS), "OPTIONS");
    ck_assert_str_eq(http_method_name(EVHTTP_REQ_TRACE), "TRACE");
    ck_assert_str_eq(http_method_name(EVHTTP_REQ_CONNECT), "CONNECT");
    ck_assert_str_eq(http_method_name(EVHTTP_REQ_PATCH), "PATCH");
    ck_assert_str_eq(http_method_name((enum evhttp_cmd_type)0), "?");
}
END_TEST

START_TEST(memdup_copies_bytes_and_a_nul)
{
    char *e = xmemdup(NULL, 0); /* an empty body may have no pointer */
    ck_assert_str_eq(e, "");
    free(e);
    char *b = xmemdup("a\0b", 3);
    ck_assert_int_eq(memcmp(b, "a\0b", 4), 0); /* the NUL after them */
    free(b);
    char *s = xstrndup("abcdef", 3);
    ck_assert_str_eq(s, "abc");
    free(s);
    int x = 0;
    ck_assert_ptr_eq(alloc_check(&x, "test"), &x);
}
END_TEST

static Suite *
common_suite(void)
{
    Suite *s = suite_create("common");
    TCase *tc = tcase_create("libcommon");

    tcase_add_test(tc, civil_known_days);
    tcase_add_test(tc, civil_round_trip_is_consecutive);
    tcase_add_test(tc, civil_month_lengths);
    tcase_add_test(tc, civil_floor_division);
    tcase_add_test(tc, hex_digits);
    tcase_add_test(tc, method_names);
    tcase_add_test(tc, memdup_copies_bytes_and_a_nul);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(common_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
