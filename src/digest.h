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

/* SHA-256 of data given in pieces (the state file's checksum). Every call
 * aborts (alloc_oom) if libcrypto fails: it can only be out of memory.
 * digest_stream_end() writes the digest and frees d; digest_stream_free()
 * frees without a digest (NULL is fine). */
struct digest_stream;
struct digest_stream *digest_stream_new(void);
void digest_stream_add(struct digest_stream *d, const void *data, size_t len);
void digest_stream_end(struct digest_stream *d, unsigned char out[DIGEST_LEN]);
void digest_stream_free(struct digest_stream *d);

#endif
