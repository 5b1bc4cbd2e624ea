/* fuzz.h - what the libFuzzer harnesses of tests/fuzz/ share.
 *
 * A harness is tests/fuzz/fuzz_<name>.c defining LLVMFuzzerTestOneInput;
 * scripts/fuzz.sh builds and runs every one (see there). A broken
 * invariant is reported with FUZZ_CHECK: one line naming the harness, the
 * line and what failed, then abort(), which libFuzzer turns into a saved
 * crashing input. */
#ifndef WAGATE_FUZZ_H
#define WAGATE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz invariant broken at %s:%d: %s: ", __FILE__,  \
                    __LINE__, #cond);                                          \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* 1 if s[0..n) is printable ASCII (0x20-0x7e) only. */
static inline int
fuzz_printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* Decodes the UTF-8 sequence at u[0..n) into *c (RFC 3629: shortest
 * form, no surrogate, at most U+10FFFF, by value ranges after decoding):
 * its length, or 0 when it is not well formed. The oracle of every
 * harness, written apart from the code under test. */
static inline size_t
fuzz_utf8_next(const unsigned char *u, size_t n, unsigned long *c)
{
    static const unsigned long min[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t k = u[0] < 0x80   ? 1
               : u[0] < 0xC0 ? 0
               : u[0] < 0xE0 ? 2
               : u[0] < 0xF0 ? 3
               : u[0] < 0xF8 ? 4
                             : 0;
    if (k == 0 || n < k)
        return 0;
    unsigned long v = k == 1 ? u[0] : u[0] & (0x7Fu >> k);
    for (size_t j = 1; j < k; j++) {
        if ((u[j] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (u[j] & 0x3F);
    }
    if (v < min[k] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *c = v;
    return k;
}

/* 1 if s[0..n) is one line of printable text: well-formed UTF-8 (shortest
 * form, no surrogate, at most U+10FFFF) without a C0 or C1 control, DEL,
 * a line or paragraph separator, a bidirectional control (U+061C,
 * U+200E-U+200F, U+202A-U+202E, U+2066-U+2069) or a BOM. */
static inline int
fuzz_printable_text(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned long c;
        size_t k = fuzz_utf8_next(u + i, n - i, &c);
        if (k == 0)
            return 0;
        if (c < 0x20 || (c >= 0x7F && c <= 0x9F) || c == 0x061C ||
            c == 0x200E || c == 0x200F || (c >= 0x2028 && c <= 0x202E) ||
            (c >= 0x2066 && c <= 0x2069) || c == 0xFEFF)
            return 0;
        i += k;
    }
    return 1;
}

#endif
