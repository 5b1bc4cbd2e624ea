/* check_reqid.c - unit tests for reqid.c: which caller ids are kept, and
 * the ids made instead. No sockets, no sleeping. */
#include "unit.h"
#include <string.h>

#include "reqid.h"

/* ---- reqid ---- */

static void
fill(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
}

static int
is_hex32(const char *s)
{
    if (strlen(s) != 32)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

START_TEST(test_reqid_valid)
{
    char buf[256];
    fill(buf, 'a', 1);
    ck_assert_int_eq(reqid_valid(buf), 1);
    fill(buf, 'x', 128);
    ck_assert_int_eq(reqid_valid(buf), 1);
    fill(buf, 'x', 129);
    ck_assert_int_eq(reqid_valid(buf), 0);
    fill(buf, 'x', 200);
    ck_assert_int_eq(reqid_valid(buf), 0);
    ck_assert_int_eq(reqid_valid(""), 0);
    ck_assert_int_eq(reqid_valid(NULL), 0);
    ck_assert_int_eq(reqid_valid("a b"), 0);
    ck_assert_int_eq(reqid_valid(" "), 0);
    ck_assert_int_eq(reqid_valid("abc\t"), 0);
    ck_assert_int_eq(reqid_valid("abc\x7f"), 0);
    ck_assert_int_eq(reqid_valid("\x01"), 0);
    ck_assert_int_eq(reqid_valid("caf\xc3\xa9"), 0);
    ck_assert_int_eq(reqid_valid("\xff"), 0);
    /* every visible ASCII character */
    size_t n = 0;
    for (int c = 0x21; c <= 0x7e; c++)
        buf[n++] = (char)c;
    buf[n] = '\0';
    ck_assert_int_eq(reqid_valid(buf), 1);
    ck_assert_int_eq(reqid_valid("req-123_ABC.x:y/z"), 1);
}
END_TEST

START_TEST(test_reqid_generate)
{
    char a[33], b[33];
    memset(a, 'Z', sizeof(a));
    reqid_generate(a);
    reqid_generate(b);
    ck_assert_msg(is_hex32(a), "%s", a);
    ck_assert_msg(is_hex32(b), "%s", b);
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(reqid_valid(a), 1);
    /* no repeats over a run */
    static char seen[64][33];
    for (int i = 0; i < 64; i++) {
        reqid_generate(seen[i]);
        ck_assert(is_hex32(seen[i]));
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(seen[i], seen[j]);
    }
}
END_TEST

START_TEST(test_reqid_choose)
{
    char out[REQID_MAX + 1], in[256];
    reqid_choose("caller-id-42", out);
    ck_assert_str_eq(out, "caller-id-42");
    fill(in, 'q', 128);
    reqid_choose(in, out);
    ck_assert_str_eq(out, in);
    /* invalid: a fresh id instead */
    fill(in, 'q', 129);
    reqid_choose(in, out);
    ck_assert_msg(is_hex32(out), "%s", out);
    reqid_choose("has space", out);
    ck_assert_msg(is_hex32(out), "%s", out);
    reqid_choose("", out);
    ck_assert_msg(is_hex32(out), "%s", out);
    reqid_choose(NULL, out);
    ck_assert_msg(is_hex32(out), "%s", out);
    reqid_choose("bad\r\nX-Injected: 1", out);
    ck_assert_msg(is_hex32(out), "%s", out);
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("reqid");
    TCase *tc;

    tc = tcase_create("reqid");
    tcase_add_test(tc, test_reqid_valid);
    tcase_add_test(tc, test_reqid_generate);
    tcase_add_test(tc, test_reqid_choose);
    suite_add_tcase(s, tc);

    return s;
}
