/* reqid.c - see reqid.h. */
#include "reqid.h"

#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int
reqid_valid(const char *s)
{
    size_t n = 0;
    if (s == NULL)
        return 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (c < 0x21 || c > 0x7e || n >= REQID_MAX)
            return 0;
    }
    return n > 0;
}

/* xoshiro-style state; ids need uniqueness, not secrecy */
static uint64_t reqid_state[2];

static uint64_t
reqid_next(void)
{
    if (reqid_state[0] == 0 && reqid_state[1] == 0) {
        if (getrandom(reqid_state, sizeof(reqid_state), GRND_NONBLOCK) !=
            (ssize_t)sizeof(reqid_state)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            reqid_state[0] = (uint64_t)ts.tv_nsec ^ 0x9e3779b97f4a7c15ULL;
            reqid_state[1] = (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&ts;
        }
        reqid_state[0] |= 1;
    }
    uint64_t s1 = reqid_state[0];
    const uint64_t s0 = reqid_state[1];
    const uint64_t result = s0 + s1;
    reqid_state[0] = s0;
    s1 ^= s1 << 23;
    reqid_state[1] = s1 ^ s0 ^ (s1 >> 18) ^ (s0 >> 5);
    return result;
}

void
reqid_generate(char out[33])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t a = reqid_next(), b = reqid_next();
    for (int i = 0; i < 16; i++) {
        out[i] = hex[(a >> (60 - 4 * i)) & 0xf];
        out[16 + i] = hex[(b >> (60 - 4 * i)) & 0xf];
    }
    out[32] = '\0';
}

void
reqid_choose(const char *from_caller, char out[REQID_MAX + 1])
{
    if (reqid_valid(from_caller)) {
        memcpy(out, from_caller, strlen(from_caller) + 1);
        return;
    }
    reqid_generate(out);
}
