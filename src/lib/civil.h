/* civil.h - proleptic Gregorian dates <-> days since 1970-01-01 (Howard
 * Hinnant's algorithms). Pure arithmetic: no time zone, no C library, so
 * the gateway and the sandbox agree to the day on every timestamp. */
#ifndef WAGATE_CIVIL_H
#define WAGATE_CIVIL_H

#include <stdint.h>

/* Days since 1970-01-01 of year y, month m (1-12), day d (1-31). */
int64_t civil_to_days(int64_t y, int m, int d);

/* The date of day z (days since 1970-01-01). */
void civil_from_days(int64_t z, int64_t *y, int *m, int *d);

/* Days in month m (1-12) of year y: 28 to 31, leap years by the Gregorian
 * rule. */
int civil_days_in_month(int64_t y, int m);

/* a / b rounded towards minus infinity, for b > 0: the day (or second) an
 * instant before 1970 falls in, where C's division would round up. */
int64_t civil_floor_div(int64_t a, int64_t b);

#endif
