/* digest.h - SHA-256 and constant-time comparison, from libcrypto
 * (OpenSSL): caller tokens are stored as their SHA-256, idempotent bodies
 * are recognised by it. Pure functions; no state. */
#ifndef WAGATE_DIGEST_H
#define WAGATE_DIGEST_H

#include <stddef.h>

#define DIGEST_LEN 32 /* bytes of a SHA-256 */

/* out = SHA-256(data[0..len)). Aborts (alloc_oom) if libcrypto cannot
 * allocate its context: there is no meaningful way to go on. */
void digest_sha256(const void *data, size_t len, unsigned char out[DIGEST_LEN]);

/* 1 if a and b (n bytes each) are equal; the time taken does not depend on
 * where they differ (CRYPTO_memcmp). */
int digest_equal(const unsigned char *a, const unsigned char *b, size_t n);

#endif
