/* sandbox_command_line.c - the real wagate-sandbox's command line without a
 * network: what --version prints. The version is configure's
 * (AC_INIT in configure.ac), as for wagate itself, never a literal of the
 * sandbox's own. */
#include <check.h>
#include <stdlib.h>

#include "build-config.h" /* autoconf: PACKAGE_VERSION */
#include "harness.h"

static char *
sandbox_bin(void)
{
    const char *v = getenv("SANDBOX_BIN");
    return (char *)(v && *v ? v : "./wagate-sandbox");
}

START_TEST(version_comes_from_configure)
{
    char *argv[] = {sandbox_bin(), "--version", NULL};
    char out[256];

    ck_assert_int_eq(proc_run(argv, NULL, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "wagate-sandbox " PACKAGE_VERSION "\n");
}
END_TEST

static Suite *
cli_suite(void)
{
    Suite *s = suite_create("sandbox_command_line");
    TCase *tc = tcase_create("command line");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, version_comes_from_configure);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return harness_run_suite(cli_suite());
}
