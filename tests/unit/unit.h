/* unit.h - what every unit suite, tests/unit/check_<module>.c, includes
 * instead of <check.h>. A suite defines unit_suite(); the one runner,
 * unit_main.c, runs it (so CK_RUN_SUITE, CK_RUN_CASE, CK_FORK,
 * CK_VERBOSITY... work as with any Check runner). */
#ifndef WAGATE_TESTS_UNIT_H
#define WAGATE_TESTS_UNIT_H

#include <check.h>

/* This program's suite, new; the runner owns and frees it. */
Suite *unit_suite(void);

#endif
