/* isotime.h - ISO 8601 timestamps <-> milliseconds since the Unix epoch.
 * Pure functions: no clock, locale, time zone database or environment. */
#ifndef WAGATE_ISOTIME_H
#define WAGATE_ISOTIME_H

#include <stddef.h>
#include <stdint.h>

/* Parses "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM|+HHMM|+HH)" (also with
 * '-' in the shorter offsets). The offset is required. As RFC 3339 allows,
 * 't' and 'z' may be lower case, and a space may stand for the 'T'.
 * A fraction is '.' and one or more digits, any number of them; it is kept
 * to the millisecond, truncated. Fields are range-checked: year 1970-9999,
 * month 1-12, day within the month (leap years), hour 0-23 (24:00 is
 * refused), minute 0-59, second 0-60 with 60 read as 59.999; offset hour
 * 0-23 and minute 0-59 ("-00:00" is UTC). Nothing may follow the offset.
 * A time just after 1970-01-01 with a positive offset gives ms < 0.
 * 0 and *ms on success, -1 (and *ms untouched) otherwise. s need not be
 * NUL-terminated; len is its length. */
int isotime_parse(const char *s, size_t len, int64_t *ms);

/* Formats ms as "YYYY-MM-DDTHH:MM:SS+00:00" (UTC, whole seconds, rounded
 * down, also before the epoch) into out; 26 bytes hold it all, a smaller
 * outlen truncates (always NUL-terminated unless outlen is 0). Times
 * outside years 0000-9999 are clamped to that range. Returns out. */
char *isotime_format(int64_t ms, char *out, size_t outlen);

#endif
