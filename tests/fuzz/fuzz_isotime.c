/* fuzz_isotime.c - ISO 8601 parsing and formatting (src/isotime.h).
 *
 * The input is a timestamp for isotime_parse(); its first 8 bytes are also
 * read as an int64 for isotime_format(). Checked against an oracle of a
 * different make (glibc's timegm() and a second reading of the grammar):
 *   - a parse fails (leaving *ms untouched) exactly when the oracle finds
 *     no timestamp, and otherwise gives the instant the oracle reads;
 *   - a parsed timestamp with one more byte never parses; the 'T' may be
 *     't' or ' ', and 'Z' 'z' or "+00:00", for the same instant;
 *   - format(parse(s)) parses back to the same whole second (when it is in
 *     1970..9999); format(v) is always 25 bytes of the documented shape,
 *     names floor(v / 1000) seconds (clamped to 0000..9999), and a smaller
 *     buffer gets a NUL-terminated prefix of it. */
#include <string.h>
#include <time.h>

#include "fuzz.h"
#include "isotime.h"

#define FORMAT_MIN_MS INT64_C(-62167219200000) /* 0000-01-01T00:00:00 */
#define FORMAT_MAX_MS INT64_C(253402300799999) /* 9999-12-31T23:59:59.999 */
#define SENTINEL INT64_C(0x5a5a5a5a5a5a5a5a)

static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int
digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Seconds since the epoch of a civil UTC date-time, by glibc; -1 (and
 * *ok 0) when timegm had to normalise it, i.e. the date does not exist. */
static int64_t
oracle_secs(int y, int mo, int d, int h, int mi, int s, int *ok)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    time_t t = timegm(&tm);
    *ok = tm.tm_year == y - 1900 && tm.tm_mon == mo - 1 && tm.tm_mday == d &&
          tm.tm_hour == h && tm.tm_min == mi && tm.tm_sec == s;
    return (int64_t)t;
}

/* The oracle's reading of s: 0 and *ms, or -1 if it is not a timestamp
 * of isotime.h's grammar and ranges. */
static int
oracle_parse(const char *s, size_t len, int64_t *ms)
{
    int y, mo, d, h, mi, sec, ok, frac = 0, oh = 0, om = 0, sign = 0;
    if (len < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
        s[7] != '-' || digits(s + 8, 2, &d) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) ||
        s[16] != ':' || digits(s + 17, 2, &sec))
        return -1;
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || h > 23 || mi > 59 ||
        sec > 60)
        return -1;
    int64_t secs = oracle_secs(y, mo, d, h, mi, sec == 60 ? 59 : sec, &ok);
    if (!ok)
        return -1; /* no such day */
    size_t p = 19;
    if (s[p] == '.') {
        size_t n = 0;
        for (p++; p < len && s[p] >= '0' && s[p] <= '9'; p++, n++)
            if (n < 3)
                frac = frac * 10 + (s[p] - '0');
        if (n == 0)
            return -1;
        for (; n < 3; n++)
            frac *= 10;
    }
    if (sec == 60)
        frac = 999;
    if (p >= len)
        return -1;
    if (s[p] == 'Z' || s[p] == 'z') {
        if (p + 1 != len)
            return -1;
    } else if (s[p] == '+' || s[p] == '-') {
        sign = s[p++] == '-' ? -1 : 1;
        size_t rest = len - p; /* HH, HHMM or HH:MM */
        if (rest == 2)
            ok = digits(s + p, 2, &oh) == 0;
        else if (rest == 4)
            ok = digits(s + p, 2, &oh) == 0 && digits(s + p + 2, 2, &om) == 0;
        else if (rest == 5)
            ok = digits(s + p, 2, &oh) == 0 && s[p + 2] == ':' &&
                 digits(s + p + 3, 2, &om) == 0;
        else
            ok = 0;
        if (!ok || oh > 23 || om > 59)
            return -1;
    } else {
        return -1;
    }
    *ms = secs * 1000 + frac - sign * ((int64_t)oh * 3600000 + om * 60000);
    return 0;
}

static int64_t
parse_or_sentinel(const char *s, size_t len)
{
    int64_t ms = SENTINEL;
    int rc = isotime_parse(s, len, &ms);
    FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
    FUZZ_CHECK(rc == 0 || ms == SENTINEL, "failed parse wrote *ms");
    return rc == 0 ? ms : SENTINEL;
}

/* format(v) and what it must say. */
static void
check_format(int64_t v, size_t small)
{
    char out[26], cut[32];
    int y, mo, d, h, mi, s, ok, n = -1;

    FUZZ_CHECK(isotime_format(v, out, sizeof(out)) == out, "return value");
    FUZZ_CHECK(strlen(out) == 25, "format(%lld) is %zu bytes", (long long)v,
               strlen(out));
    FUZZ_CHECK(sscanf(out, "%4d-%2d-%2dT%2d:%2d:%2d+00:00%n", &y, &mo, &d, &h,
                      &mi, &s, &n) == 6 &&
                   n == 25 && out[4] == '-' && out[13] == ':',
               "format(%lld) = \"%s\"", (long long)v, out);
    int64_t c = v < FORMAT_MIN_MS   ? FORMAT_MIN_MS
                : v > FORMAT_MAX_MS ? FORMAT_MAX_MS
                                    : v;
    int64_t secs = oracle_secs(y, mo, d, h, mi, s, &ok);
    FUZZ_CHECK(ok && secs == floor_div(c, 1000),
               "format(%lld) = \"%s\", timegm says %lld", (long long)v, out,
               (long long)secs);
    if (c >= 0) {
        int64_t back = parse_or_sentinel(out, 25);
        FUZZ_CHECK(back == floor_div(c, 1000) * 1000,
                   "parse(format(%lld)) = %lld", (long long)v, (long long)back);
    }
    /* a smaller buffer: a NUL-terminated prefix; 0 bytes: untouched */
    memset(cut, 'x', sizeof(cut));
    small %= sizeof(cut);
    isotime_format(v, cut, small);
    if (small == 0) {
        FUZZ_CHECK(cut[0] == 'x', "outlen 0 wrote");
    } else {
        size_t k = small - 1 < 25 ? small - 1 : 25;
        FUZZ_CHECK(cut[k] == '\0' && memcmp(cut, out, k) == 0,
                   "outlen %zu: \"%.*s\"", small, (int)k, cut);
    }
}

static void
check_parse(const char *s, size_t len)
{
    int64_t ms = parse_or_sentinel(s, len), want = SENTINEL;
    int shown = len > 80 ? 80 : (int)len;
    (void)oracle_parse(s, len, &want);
    FUZZ_CHECK(ms == want, "parse(\"%.*s\") = %lld, oracle %lld", shown, s,
               (long long)ms, (long long)want);
    if (ms == SENTINEL)
        return;

    char *b = malloc(len + 8);
    FUZZ_CHECK(b != NULL, "malloc");
    memcpy(b, s, len);
    /* one byte more never parses, whatever it is */
    static const char tails[] = {'0', '9', ':', 'Z', '+', '.', ' ', '\0'};
    for (size_t i = 0; i < sizeof(tails); i++) {
        b[len] = tails[i];
        FUZZ_CHECK(parse_or_sentinel(b, len + 1) == SENTINEL,
                   "accepted \"%.*s\" + 0x%02x", (int)len, s,
                   (unsigned char)tails[i]);
    }
    /* the date-time separator and the UTC designator have spellings */
    static const char seps[] = {'T', 't', ' '};
    for (size_t i = 0; i < sizeof(seps); i++) {
        b[10] = seps[i];
        FUZZ_CHECK(parse_or_sentinel(b, len) == ms, "separator '%c'", seps[i]);
    }
    if (s[len - 1] == 'Z' || s[len - 1] == 'z') {
        memcpy(b + len - 1, "+00:00", 6);
        FUZZ_CHECK(parse_or_sentinel(b, len + 5) == ms, "Z vs +00:00");
        memcpy(b + len - 1, "-0000", 5);
        FUZZ_CHECK(parse_or_sentinel(b, len + 4) == ms, "Z vs -0000");
    }
    free(b);

    if (ms >= 0 && ms <= FORMAT_MAX_MS)
        check_format(ms, len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    int64_t ms = SENTINEL;

    FUZZ_CHECK(isotime_parse(NULL, size, &ms) == -1 && ms == SENTINEL,
               "NULL input");
    check_parse(s, size);
    if (size >= 8) {
        uint64_t u;
        memcpy(&u, data, sizeof(u));
        check_format((int64_t)u, data[size - 1]);
        /* the interesting range, densely: years 1970-9999 */
        check_format((int64_t)(u % (uint64_t)(FORMAT_MAX_MS + 1)),
                     data[size - 1]);
    }
    return 0;
}
