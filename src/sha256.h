/* sha256.h - SHA-256 (FIPS 180-4), for hashing caller tokens, and a
 * constant-time comparison. Pure functions. */
#ifndef WAGATE_SHA256_H
#define WAGATE_SHA256_H

#include <stddef.h>

#define SHA256_LEN 32

void sha256(const void *data, size_t len, unsigned char out[SHA256_LEN]);

/* 1 if a and b (n bytes each) are equal; the time taken does not depend on
 * where they differ. */
int sha256_ct_equal(const unsigned char *a, const unsigned char *b, size_t n);

#endif
