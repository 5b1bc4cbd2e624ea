/* check_log.c - unit tests for log.c: log_mask_phone, at every length and
 * into every buffer size. No sockets, no sleeping. */
#include "unit.h"
#include <string.h>

#include "log.h"

/* ---- log_mask_phone ---- */

static const struct {
    const char *in;
    const char *out;
} masks[] = {
    {"+14155550123", "+1415*****23"},
    {"+447911123456", "+4479******56"},
    {"+123456789012345", "+1234*********45"},
    {"+12345678", "+1234**78"},
    {"+1234567", "+1234*67"}, /* 8 characters: first five and last two */
    {"1234567", "*****67"},   /* 7 or fewer: only the last two */
    {"+123456", "*****56"},
    {"+12345", "****45"},
    {"123", "*23"},
    {"12", "12"},
    {"1", "1"},
    {"", ""},
};
#define NMASKS ((int)(sizeof(masks) / sizeof(masks[0])))

START_TEST(test_mask_phone)
{
    char out[64];
    memset(out, 'Z', sizeof(out));
    log_mask_phone(masks[_i].in, out, sizeof(out));
    ck_assert_str_eq(out, masks[_i].out);
    /* same length as the input: the mask hides digits, not the length */
    ck_assert_uint_eq(strlen(out), strlen(masks[_i].in));
}
END_TEST

START_TEST(test_mask_phone_truncates)
{
    char out[16];
    memset(out, 'Z', sizeof(out));
    log_mask_phone("+14155550123", out, 6);
    ck_assert_str_eq(out, "+1415");
    for (size_t i = 6; i < sizeof(out); i++)
        ck_assert_int_eq(out[i], 'Z'); /* nothing past outlen */

    memset(out, 'Z', sizeof(out));
    log_mask_phone("+14155550123", out, 8);
    ck_assert_str_eq(out, "+1415**");

    memset(out, 'Z', sizeof(out));
    log_mask_phone("+14155550123", out, 12);
    ck_assert_str_eq(out, "+1415*****2");

    memset(out, 'Z', sizeof(out));
    log_mask_phone("+14155550123", out, 13); /* exactly enough */
    ck_assert_str_eq(out, "+1415*****23");

    memset(out, 'Z', sizeof(out));
    log_mask_phone("+14155550123", out, 1);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(out[1], 'Z');

    memset(out, 'Z', sizeof(out));
    log_mask_phone("1234567", out, 3);
    ck_assert_str_eq(out, "**");

    memset(out, 'Z', sizeof(out));
    log_mask_phone("+14155550123", out, 0); /* nothing written at all */
    ck_assert_int_eq(out[0], 'Z');
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc;

    tc = tcase_create("mask_phone");
    tcase_add_loop_test(tc, test_mask_phone, 0, NMASKS);
    tcase_add_test(tc, test_mask_phone_truncates);
    suite_add_tcase(s, tc);

    return s;
}
