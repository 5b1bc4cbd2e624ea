/* text.c - see text.h. */
#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

/* Drops a UTF-8 sequence that truncation cut short at the end of s. */
static void
trim_partial_utf8(char *s)
{
    size_t n = strlen(s), cont = 0;
    while (cont < n && cont < 3 &&
           ((unsigned char)s[n - 1 - cont] & 0xc0) == 0x80)
        cont++;
    if (cont == n)
        return;
    unsigned char lead = (unsigned char)s[n - 1 - cont];
    size_t want = lead >= 0xf0 ? 3 : lead >= 0xe0 ? 2 : lead >= 0xc0 ? 1 : 0;
    if (cont < want)
        s[n - 1 - cont] = '\0';
}

int
text_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (errlen > 0 && n >= 0 && (size_t)n >= errlen)
        trim_partial_utf8(err);
    return -1;
}

/* The length of the valid UTF-8 sequence at s (n bytes there) with its
 * code point in *cp; 0 when invalid (overlong, surrogate, past U+10FFFF,
 * cut short). */
static size_t
utf8_decode(const unsigned char *s, size_t n, unsigned long *cp)
{
    size_t len;
    unsigned long v, min;
    if (n == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2, v = s[0] & 0x1fu, min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3, v = s[0] & 0x0fu, min = 0x800;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4, v = s[0] & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3fu);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

/* A code point that shows as text on one line: not a C0 or C1 control or
 * DEL, not a line or paragraph separator, not a bidirectional control or
 * BOM (those make a log line display as something it is not). */
static int
cp_printable(unsigned long cp)
{
    static const unsigned long hidden[][2] = {
        {0x00, 0x1f},     {0x7f, 0x9f},     {0x061c, 0x061c}, {0x200e, 0x200f},
        {0x2028, 0x202e}, {0x2066, 0x2069}, {0xfeff, 0xfeff},
    };
    for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++)
        if (cp >= hidden[i][0] && cp <= hidden[i][1])
            return 0;
    return 1;
}

int
text_printable(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    while (n > 0) {
        unsigned long cp;
        size_t len = utf8_decode(p, n, &cp);
        if (len == 0 || !cp_printable(cp))
            return 0;
        p += len;
        n -= len;
    }
    return 1;
}

char *
text_escape(const char *s)
{
    size_t n = strlen(s), o = 0;
    char *out = xmalloc(4 * n + 1);
    const unsigned char *p = (const unsigned char *)s;
    while (n > 0) {
        unsigned long cp;
        size_t len = utf8_decode(p, n, &cp);
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*p;
            len = 1;
        } else if (len > 0 && cp_printable(cp)) {
            memcpy(out + o, p, len);
            o += len;
        } else {
            snprintf(out + o, 5, "\\x%02x", *p);
            o += 4;
            len = 1;
        }
        p += len;
        n -= len;
    }
    out[o] = '\0';
    return out;
}

int
text_visible_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}
