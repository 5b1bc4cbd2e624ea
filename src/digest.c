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

/* The stream is libcrypto's context itself, under our name. */
struct digest_stream *
digest_stream_new(void)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
        alloc_oom("EVP_DigestInit_ex");
    return (struct digest_stream *)c;
}

void
digest_stream_add(struct digest_stream *d, const void *data, size_t len)
{
    if (len > 0 && EVP_DigestUpdate((EVP_MD_CTX *)d, data, len) != 1)
        alloc_oom("EVP_DigestUpdate");
}

void
digest_stream_end(struct digest_stream *d, unsigned char out[DIGEST_LEN])
{
    unsigned int n = 0;
    if (EVP_DigestFinal_ex((EVP_MD_CTX *)d, out, &n) != 1 || n != DIGEST_LEN)
        alloc_oom("EVP_DigestFinal_ex");
    EVP_MD_CTX_free((EVP_MD_CTX *)d);
}

void
digest_stream_free(struct digest_stream *d)
{
    EVP_MD_CTX_free((EVP_MD_CTX *)d); /* NULL is fine */
}
