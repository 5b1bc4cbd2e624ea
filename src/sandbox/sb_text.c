#include "sb_text.h"

#include "alloc.h"
#include "civil.h"
#include "hex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
sb_phone_valid(const char *s, size_t len)
{
    /* '+', a non-zero digit, then 1 to 14 more digits. */
    if (len < 3 || len > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return false;
    for (size_t i = 2; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Decodes one code point at s[*i]. Returns false (and consumes one byte)
 * for any ill-formed sequence. */
static bool
utf8_next(const unsigned char *s, size_t len, size_t *i, uint32_t *cp)
{
    unsigned char c = s[*i];
    size_t need;
    uint32_t v, min;

    if (c < 0x80) {
        *cp = c;
        (*i)++;
        return true;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3, v = c & 0x07, min = 0x10000;
    } else {
        (*i)++;
        return false;
    }
    if (len - *i <= need) {
        (*i)++;
        return false;
    }
    for (size_t k = 1; k <= need; k++) {
        unsigned char cc = s[*i + k];
        if ((cc & 0xC0) != 0x80) {
            (*i)++;
            return false;
        }
        v = (v << 6) | (cc & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        (*i)++;
        return false;
    }
    *i += need + 1;
    *cp = v;
    return true;
}

bool
sb_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    uint32_t cp;

    while (i < len)
        if (!utf8_next(u, len, &i, &cp))
            return false;
    return true;
}

size_t
sb_utf8_count(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, n = 0;
    uint32_t cp;

    while (i < len) {
        (void)utf8_next(u, len, &i, &cp);
        n++;
    }
    return n;
}

/* Unicode's White_Space property (PropList.txt). */
static bool
is_white_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool
sb_utf8_blank(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    uint32_t cp;

    while (i < len)
        if (!utf8_next(u, len, &i, &cp) || !is_white_space(cp))
            return false;
    return true;
}

char *
sb_utf8_sanitize(const char *s, size_t len, size_t *outlen)
{
    static const char fffd[] = "\xEF\xBF\xBD";
    const unsigned char *u = (const unsigned char *)s;
    /* Worst case: every byte becomes a 3-byte U+FFFD. */
    char *out = xmalloc(len * 3 + 1);
    size_t i = 0, o = 0;
    uint32_t cp;

    while (i < len) {
        size_t start = i;
        if (utf8_next(u, len, &i, &cp)) {
            memcpy(out + o, s + start, i - start);
            o += i - start;
        } else {
            memcpy(out + o, fffd, 3);
            o += 3;
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

size_t
sb_utf8_cut(const char *s, size_t len, size_t max)
{
    size_t n = len < max ? len : max;

    /* Back off over continuation bytes (10xxxxxx) and the lead byte of the
     * sequence they belong to, unless that sequence ends exactly at n. */
    if (n == len)
        return n;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

char *
sb_base64(const void *data, size_t len)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = data;
    char *out = xmalloc((len + 2) / 3 * 4 + 1);
    size_t o = 0, i = 0;

    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

int
sb_iso_format(int64_t t, char *buf, size_t n)
{
    if (t < SB_TIME_MIN || t > SB_TIME_MAX || n < SB_ISO_LEN)
        return -1;
    int64_t days = civil_floor_div(t, 86400);
    int64_t secs = t - days * 86400;
    int64_t y;
    int m, d;

    civil_from_days(days, &y, &m, &d);
    snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d+00:00", (int)y, m, d,
             (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
    return 0;
}

/* Reads exactly n digits at *p into *v. */
static bool
digits(const char **p, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return false;
        *v = *v * 10 + (**p - '0');
    }
    return true;
}

/* Parses the zone suffix into an offset in seconds east of UTC. */
static bool
parse_zone(const char *p, int *offset)
{
    int hh, mm;

    *offset = 0;
    if (*p == '\0')
        return true;
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
        return true;
    if (*p != '+' && *p != '-')
        return false;
    int sign = *p++ == '-' ? -1 : 1;
    if (!digits(&p, 2, &hh))
        return false;
    if (*p == ':')
        p++;
    if (!digits(&p, 2, &mm) || *p != '\0' || hh > 23 || mm > 59)
        return false;
    *offset = sign * (hh * 3600 + mm * 60);
    return true;
}

int
sb_iso_parse(const char *s, int64_t *out)
{
    const char *p = s;
    int y, mo, d, h, mi, se, off;

    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) ||
        *p++ != '-' || !digits(&p, 2, &d))
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -1;
    p++;
    if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) ||
        *p++ != ':' || !digits(&p, 2, &se))
        return -1;
    if (*p == '.' || *p == ',') {
        if (p[1] < '0' || p[1] > '9')
            return -1;
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    }
    if (!parse_zone(p, &off) || y < 1 || mo < 1 || mo > 12 || d < 1 ||
        d > civil_days_in_month(y, mo) || h > 23 || mi > 59 || se > 59)
        return -1;
    int64_t t =
        civil_to_days(y, (int)mo, (int)d) * 86400 + h * 3600 + mi * 60 + se;
    t -= off;
    if (t < SB_TIME_MIN || t > SB_TIME_MAX)
        return -1;
    *out = t;
    return 0;
}

int
sb_parse_int64(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    uint64_t v = 0;

    if (len > 0 && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == len || len - i > 19)
        return -1;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    /* 19 digits fit in uint64_t; the sign decides the int64_t bound. */
    if (v > (uint64_t)INT64_MAX + (neg ? 1 : 0))
        return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

char *
sb_url_decode(const char *s, size_t len, size_t *outlen)
{
    char *out = xmalloc(len + 1);
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < len &&
                   (hi = hex_value(s[i + 1])) >= 0 &&
                   (lo = hex_value(s[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

char *
sb_query_get(const char *query, const char *key, size_t *outlen)
{
    size_t klen = strlen(key);

    for (const char *p = query; p != NULL && *p != '\0';) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', plen);
        size_t nlen = eq ? (size_t)(eq - p) : plen;
        size_t dlen;
        char *name = sb_url_decode(p, nlen, &dlen);
        bool match = dlen == klen && memcmp(name, key, klen) == 0;

        free(name);
        if (match) {
            if (eq == NULL)
                return sb_url_decode("", 0, outlen);
            return sb_url_decode(eq + 1, plen - nlen - 1, outlen);
        }
        p = amp ? amp + 1 : p + plen;
    }
    return NULL;
}

static char
fold(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

bool
sb_contains_ci(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; n > 0 && i + n <= len; i++) {
        size_t k = 0;
        while (k < n && fold(hay[i + k]) == fold(needle[k]))
            k++;
        if (k == n)
            return true;
    }
    return false;
}
