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

#endif
