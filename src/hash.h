/* hash.h - the integer mixer the in-memory tables share. */
#ifndef WAGATE_HASH_H
#define WAGATE_HASH_H

#include <stdint.h>

/* splitmix64's finaliser: every input bit reaches every output bit, so the
 * low bits that pick a bucket depend on the whole key. */
static inline uint64_t
hash_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

#endif
