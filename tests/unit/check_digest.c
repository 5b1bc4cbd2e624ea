/* check_digest.c - unit tests for digest.c (libcrypto): the wrapper hands
 * back the right bytes, and the comparison is exact. */
#include "unit.h"
#include <stdio.h>

#include "digest.h"

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

Suite *
unit_suite(void)
{
    Suite *s = suite_create("digest");
    TCase *tc = tcase_create("digest");
    tcase_add_test(tc, sha256_known_vectors);
    tcase_add_test(tc, ct_equal);
    suite_add_tcase(s, tc);
    return s;
}
