/* check_auth.c - unit tests for auth.c: the bearer token, callers and their
 * senders, the admin token. */
#include "unit.h"
#include <string.h>

#include "auth.h"
#include "config.h"

/* ---- auth ---- */

START_TEST(bearer_parsing)
{
    size_t n;
    const char *t1 = auth_bearer_token("Bearer abc", &n);
    ck_assert_ptr_nonnull(t1);
    ck_assert(n == 3 && strncmp(t1, "abc", 3) == 0);
    ck_assert_ptr_nonnull(auth_bearer_token("bearer  abc ", &n));
    ck_assert_uint_eq(n, 3);
    ck_assert_ptr_null(auth_bearer_token("Basic abc", &n));
    ck_assert_ptr_null(auth_bearer_token("Bearer ", &n));
    ck_assert_ptr_null(auth_bearer_token("Bearerabc", &n));
    ck_assert_ptr_null(auth_bearer_token(NULL, &n));
}
END_TEST

START_TEST(clients_and_senders)
{
    struct config cfg;
    char err[256];
    const char *text =
        "{\"clients\": [{\"name\": \"alpha\", \"token_sha256\": "
        "\"2c9cd19e083cc328828bc58cd2b7b0fd90e13cd97fe502ca8ab1b43d85d21d33\","
        " \"senders\": [12, 13]}, {\"name\": \"bravo\", \"token_sha256\": "
        "\"8627dd18a50da4646da84f7b702aa345581219a87c26a1527f8388a8ba04e621\","
        " \"senders\": \"*\"}], \"admin\": {\"token_sha256\": "
        "\"39eccedf59001412f7e0557d616c46642ef9eecfd34a79bd27c25f73e328b872\"}}";
    ck_assert_int_eq(config_parse(&cfg, text, "t.json", err, sizeof(err)), 0);
    const struct config_client *a =
        auth_find_client(&cfg, "Bearer tok-alpha-1");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(a->name, "alpha");
    ck_assert(auth_sender_allowed(a, 12) && auth_sender_allowed(a, 13));
    ck_assert(!auth_sender_allowed(a, 14) && !auth_sender_allowed(a, -1));
    const struct config_client *b =
        auth_find_client(&cfg, "Bearer tok-bravo-2");
    ck_assert_ptr_nonnull(b);
    ck_assert(auth_sender_allowed(b, 999));
    ck_assert_ptr_null(auth_find_client(&cfg, "Bearer tok-alpha-"));
    ck_assert_ptr_null(auth_find_client(&cfg, "Bearer admin-tok-3"));
    ck_assert_ptr_null(auth_find_client(&cfg, NULL));
    ck_assert(auth_admin_ok(&cfg, "Bearer admin-tok-3"));
    ck_assert(!auth_admin_ok(&cfg, "Bearer tok-alpha-1"));
    ck_assert(!auth_admin_ok(&cfg, NULL));
    config_free(&cfg);
    config_defaults(&cfg);
    ck_assert(!auth_admin_ok(&cfg, "Bearer admin-tok-3")); /* none set */
    config_free(&cfg);
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("auth");
    tcase_add_test(tc, bearer_parsing);
    tcase_add_test(tc, clients_and_senders);
    suite_add_tcase(s, tc);
    return s;
}
