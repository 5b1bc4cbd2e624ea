/* check_isotime.c - unit tests for isotime.c: the ISO 8601 stamps it reads
 * and refuses, and the ones it writes. Every time is an argument. */
#include "unit.h"
#include <stdint.h>
#include <string.h>

#include "isotime.h"

#define T0 INT64_C(1772015400000) /* 2026-02-25T10:30:00Z */
#define HOUR INT64_C(3600000)
#define DAY (24 * HOUR)

/* ---- isotime ---- */

struct iso_case {
    const char *s;
    int64_t ms;
};

static const struct iso_case iso_valid[] = {
    {"2026-02-25T10:30:00+00:00", T0},
    {"2026-02-25T10:30:00Z", T0},
    {"2026-02-25t10:30:00z", T0},
    {"2026-02-25 10:30:00Z", T0},
    {"2026-02-25T10:30:00-00:00", T0},
    {"2026-02-25T10:30:00+05:30", T0 - 5 * HOUR - 30 * 60000},
    {"2026-02-25T10:30:00+0530", T0 - 5 * HOUR - 30 * 60000},
    {"2026-02-25T10:30:00+05", T0 - 5 * HOUR},
    {"2026-02-25T10:30:00-08:00", T0 + 8 * HOUR},
    {"2026-02-25T10:30:00-0800", T0 + 8 * HOUR},
    {"2026-02-25T10:30:00-08", T0 + 8 * HOUR},
    {"2026-02-25T10:30:00+23:59", T0 - 23 * HOUR - 59 * 60000},
    {"2026-02-25T10:30:00.5Z", T0 + 500},
    {"2026-02-25T10:30:00.05Z", T0 + 50},
    {"2026-02-25T10:30:00.123456789+00:00", T0 + 123},
    {"2026-02-25T10:30:00.9999999999999999999999Z", T0 + 999},
    {"2026-02-25T10:30:00.000Z", T0},
    {"2024-02-29T00:00:00Z", INT64_C(1709164800000)},
    {"2000-03-01T12:00:00Z", INT64_C(951912000000)},
    {"2100-02-28T23:59:59Z", INT64_C(4107542399000)},
    {"2016-12-31T23:59:60Z", INT64_C(1483228799999)},
    {"2016-12-31T23:59:60.5Z", INT64_C(1483228799999)},
    {"1970-01-01T00:00:00Z", 0},
    {"1970-01-01T00:00:00+01:00", -HOUR},
    {"9999-12-31T23:59:59Z", INT64_C(253402300799000)},
};
#define NVALID ((int)(sizeof(iso_valid) / sizeof(iso_valid[0])))

static const char *const iso_invalid[] = {
    "",
    "2026",
    "2026-02-25",
    "2026-02-25T10:30Z",
    "2026-02-25T10:30:00",        /* missing offset */
    "2026-02-25T10:30:00.5",      /* missing offset */
    "2026-02-25T10:30:00+00:00x", /* trailing junk */
    "2026-02-25T10:30:00Z ",
    "2026-02-25T10:30:00ZZ",
    " 2026-02-25T10:30:00Z",
    "2023-02-29T00:00:00Z",
    "1900-02-29T00:00:00Z",
    "2026-04-31T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-00-01T00:00:00Z",
    "2026-01-00T00:00:00Z",
    "2026-01-32T00:00:00Z",
    "2026-02-25T24:00:00Z",
    "2026-02-25T10:60:00Z",
    "2026-02-25T10:30:61Z",
    "2026-02-25T10:30:00.Z",
    "2026-02-25T10:30:00,5Z",
    "2026-02-25T10:30:00+24:00",
    "2026-02-25T10:30:00+05:60",
    "2026-02-25T10:30:00+5",
    "2026-02-25T10:30:00+053",
    "2026-02-25T10:30:00+05:3",
    "2026-02-25T10:30:00+05:",
    "2026-02-25T10:30:00+05:300",
    "2026-02-25T10:30:00+",
    "2026-02-25T10:30:00 +00:00",
    "2026-02-25X10:30:00Z",
    "2026-2-25T10:30:00Z",
    "2026-02-25T1:30:00Z",
    "+2026-02-25T10:30:00Z",
    "20260225T103000Z",
    "1969-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "2026-02-25T10:30:0aZ",
    "2026/02/25T10:30:00Z",
};
#define NINVALID ((int)(sizeof(iso_invalid) / sizeof(iso_invalid[0])))

START_TEST(test_iso_valid)
{
    const struct iso_case *k = &iso_valid[_i];
    int64_t ms = 1;
    ck_assert_msg(isotime_parse(k->s, strlen(k->s), &ms) == 0, "%s", k->s);
    ck_assert_msg(ms == k->ms, "%s: %lld != %lld", k->s, (long long)ms,
                  (long long)k->ms);
}
END_TEST

START_TEST(test_iso_invalid)
{
    const char *s = iso_invalid[_i];
    int64_t ms = 12345;
    ck_assert_msg(isotime_parse(s, strlen(s), &ms) == -1, "%s", s);
    ck_assert_int_eq(ms, 12345);
}
END_TEST

START_TEST(test_iso_not_terminated)
{
    const char buf[] = "2026-02-25T10:30:00Z2026";
    int64_t ms = 0;
    ck_assert_int_eq(isotime_parse(buf, 20, &ms), 0);
    ck_assert_int_eq(ms, T0);
    /* every prefix of a valid stamp that is not itself valid is refused */
    const char *full = "2026-02-25T10:30:00.123+05:30";
    for (size_t n = 0; n < strlen(full); n++) {
        char tmp[64];
        memcpy(tmp, full, n);
        int r = isotime_parse(tmp, n, &ms);
        /* only "...+05" (26 chars) is a complete stamp among the prefixes */
        ck_assert_msg(r == (n == 26 ? 0 : -1), "prefix %zu", n);
    }
    ck_assert_int_eq(isotime_parse(NULL, 0, &ms), -1);
}
END_TEST

START_TEST(test_iso_format)
{
    char out[32];
    ck_assert_str_eq(isotime_format(0, out, sizeof(out)),
                     "1970-01-01T00:00:00+00:00");
    ck_assert_str_eq(isotime_format(T0 + 999, out, sizeof(out)),
                     "2026-02-25T10:30:00+00:00");
    ck_assert_str_eq(isotime_format(INT64_C(1709164800000), out, 26),
                     "2024-02-29T00:00:00+00:00");
    ck_assert_str_eq(isotime_format(-1, out, sizeof(out)),
                     "1969-12-31T23:59:59+00:00");
    ck_assert_str_eq(isotime_format(INT64_C(253402300799999), out, 26),
                     "9999-12-31T23:59:59+00:00");
    ck_assert_str_eq(isotime_format(INT64_MAX, out, 26),
                     "9999-12-31T23:59:59+00:00");
    ck_assert_str_eq(isotime_format(INT64_MIN, out, 26),
                     "0000-01-01T00:00:00+00:00");
    /* a short buffer truncates, NUL-terminated */
    memset(out, 'Z', sizeof(out));
    ck_assert_str_eq(isotime_format(T0, out, 11), "2026-02-25");
    ck_assert_int_eq(out[11], 'Z');
    memset(out, 'Z', sizeof(out));
    isotime_format(T0, out, 0);
    ck_assert_int_eq(out[0], 'Z');
}
END_TEST

START_TEST(test_iso_round_trip)
{
    char out[32];
    int64_t ms;
    /* every day from 1970 to 2400 at a varying time of day, plus ms */
    for (int64_t d = 0; d < 157000; d++) {
        int64_t t = d * DAY + (d * 7919 % 86400) * 1000 + d % 1000;
        isotime_format(t, out, sizeof(out));
        ck_assert_int_eq(strlen(out), 25);
        ck_assert_msg(isotime_parse(out, 25, &ms) == 0, "%s", out);
        ck_assert_msg(ms == t - t % 1000, "%s", out);
    }
    for (size_t i = 0; i < (size_t)NVALID; i++) {
        int64_t t = iso_valid[i].ms;
        if (t < 0)
            continue;
        isotime_format(t, out, sizeof(out));
        ck_assert_int_eq(isotime_parse(out, strlen(out), &ms), 0);
        ck_assert_int_eq(ms, t - t % 1000);
    }
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("isotime");
    TCase *tc;

    tc = tcase_create("isotime");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_iso_valid, 0, NVALID);
    tcase_add_loop_test(tc, test_iso_invalid, 0, NINVALID);
    tcase_add_test(tc, test_iso_not_terminated);
    tcase_add_test(tc, test_iso_format);
    tcase_add_test(tc, test_iso_round_trip);
    suite_add_tcase(s, tc);

    return s;
}
