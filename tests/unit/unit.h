/* unit.h - what every unit suite, tests/unit/check_<module>.c, includes
 * instead of <check.h>. A suite defines unit_suite(); the one runner,
 * unit_main.c, runs it (so CK_RUN_SUITE, CK_RUN_CASE, CK_FORK,
 * CK_VERBOSITY... work as with any Check runner). */
#ifndef WAGATE_TESTS_UNIT_H
#define WAGATE_TESTS_UNIT_H

#include <check.h>

/* This program's suite, new; the runner owns and frees it. */
Suite *unit_suite(void);

/* Check records where every assertion that passes was (one write(2) to
 * its message file each), so that a forked test that crashes can say how
 * far it got. The unit suites assert in loops over 10^5 cases, where those
 * writes were nearly all of the time: seconds, and minutes under
 * valgrind. Here an assertion that passes costs nothing, one that fails
 * reports exactly as before (same expression, same message; every
 * ck_assert_* is built on ck_assert_msg). A test that wants its progress
 * recorded for a crash calls mark_point(). */
#undef ck_assert_msg
#define ck_assert_msg(expr, ...)                                               \
    ((expr) ? (void)0                                                          \
            : _ck_assert_failed(__FILE__, __LINE__,                            \
                                "Assertion '" #expr "' failed", ##__VA_ARGS__))

#endif
