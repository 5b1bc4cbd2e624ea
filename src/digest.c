/* digest.c - see digest.h. */
#include "digest.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "alloc.h"

void
digest_sha256(const void *data, size_t len, unsigned char out[DIGEST_LEN])
{
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 ||
        n != DIGEST_LEN)
        alloc_oom("EVP_Digest");
}

int
digest_equal(const unsigned char *a, const unsigned char *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}
