/* unit_main.c - the main of every unit suite: runs unit_suite() with
 * Check's defaults and environment; exit status 0 when every test
 * passed. */
#include <stdlib.h>

#include "unit.h"

int
main(void)
{
    SRunner *sr = srunner_create(unit_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
