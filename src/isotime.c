/* isotime.c - see isotime.h. Calendar arithmetic on the proleptic
 * Gregorian calendar (Howard Hinnant's days_from_civil / civil_from_days);
 * no timegm, mktime, locale or environment. */
#include "isotime.h"

#include "civil.h"

#include <stdio.h>

#define MS_PER_DAY INT64_C(86400000)
/* isotime_format's range: 0000-01-01T00:00:00 .. 9999-12-31T23:59:59.999 */
#define FORMAT_MIN_MS INT64_C(-62167219200000)
#define FORMAT_MAX_MS INT64_C(253402300799999)


static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads exactly n ASCII digits at s[*p]; advances *p. 0 or -1. */
static int
take_digits(const char *s, size_t len, size_t *p, int n, int *out)
{
    int v = 0;
    if (len - *p < (size_t)n)
        return -1;
    for (int i = 0; i < n; i++) {
        char c = s[*p + (size_t)i];
        if (!is_digit(c))
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += (size_t)n;
    *out = v;
    return 0;
}

/* 0 if s[*p] is c (advancing *p), else -1. */
static int
take_char(const char *s, size_t len, size_t *p, char c)
{
    if (*p >= len || s[*p] != c)
        return -1;
    (*p)++;
    return 0;
}

int
isotime_parse(const char *s, size_t len, int64_t *ms)
{
    size_t p = 0;
    int year, mon, day, hour, min, sec, frac = 0;
    int sign = 0, off_h = 0, off_m = 0;

    if (s == NULL)
        return -1;
    if (take_digits(s, len, &p, 4, &year) < 0 ||
        take_char(s, len, &p, '-') < 0 ||
        take_digits(s, len, &p, 2, &mon) < 0 ||
        take_char(s, len, &p, '-') < 0 || take_digits(s, len, &p, 2, &day) < 0)
        return -1;
    if (p >= len || (s[p] != 'T' && s[p] != 't' && s[p] != ' '))
        return -1;
    p++;
    if (take_digits(s, len, &p, 2, &hour) < 0 ||
        take_char(s, len, &p, ':') < 0 ||
        take_digits(s, len, &p, 2, &min) < 0 ||
        take_char(s, len, &p, ':') < 0 || take_digits(s, len, &p, 2, &sec) < 0)
        return -1;

    if (p < len && s[p] == '.') {
        size_t start = ++p;
        while (p < len && is_digit(s[p])) {
            if (p - start < 3)
                frac = frac * 10 + (s[p] - '0');
            p++;
        }
        if (p == start)
            return -1;
        for (size_t n = p - start; n < 3; n++)
            frac *= 10;
    }

    if (p >= len)
        return -1; /* the offset is required */
    if (s[p] == 'Z' || s[p] == 'z') {
        p++;
    } else if (s[p] == '+' || s[p] == '-') {
        sign = s[p] == '-' ? -1 : 1;
        p++;
        if (take_digits(s, len, &p, 2, &off_h) < 0)
            return -1;
        if (p < len) {
            if (s[p] == ':')
                p++;
            if (take_digits(s, len, &p, 2, &off_m) < 0)
                return -1;
        }
        if (off_h > 23 || off_m > 59)
            return -1;
    } else {
        return -1;
    }
    if (p != len)
        return -1;

    if (year < 1970 || year > 9999 || mon < 1 || mon > 12 || day < 1 ||
        day > civil_days_in_month(year, mon) || hour > 23 || min > 59 || sec > 60)
        return -1;
    if (sec == 60) {
        sec = 59;
        frac = 999;
    }

    int64_t t = civil_to_days(year, mon, day) * MS_PER_DAY +
                (int64_t)hour * 3600000 + (int64_t)min * 60000 +
                (int64_t)sec * 1000 + frac;
    t -= (int64_t)sign * ((int64_t)off_h * 3600000 + (int64_t)off_m * 60000);
    *ms = t;
    return 0;
}

char *
isotime_format(int64_t ms, char *out, size_t outlen)
{
    if (ms < FORMAT_MIN_MS)
        ms = FORMAT_MIN_MS;
    if (ms > FORMAT_MAX_MS)
        ms = FORMAT_MAX_MS;
    int64_t secs = civil_floor_div(ms, 1000);
    int64_t days = civil_floor_div(secs, 86400);
    int64_t sod = secs - days * 86400;
    int64_t year;
    int mon, day;
    civil_from_days(days, &year, &mon, &day);
    if (outlen > 0)
        snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d+00:00", (int)year,
                 mon, day, (int)(sod / 3600), (int)(sod / 60 % 60),
                 (int)(sod % 60));
    return out;
}
