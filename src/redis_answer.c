/* redis_answer.c - see redis_answer.h. */
#include "redis_answer.h"

#include <stdint.h>
#include <string.h>

#include "alloc.h"

#define MAGIC "WGA1"
#define MAGIC_LEN 4

static void
put32(unsigned char *p, size_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t
get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

static int
name_ok(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

static int
value_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0' || s[i] == '\r' || s[i] == '\n')
            return 0;
    return 1;
}

char *
redis_answer_encode(const struct idem_answer *a, size_t *len)
{
    if (a->status < 100 || a->status > 599 ||
        a->nheaders > REDIS_ANSWER_MAX_HEADERS || a->body_len > UINT32_MAX)
        return NULL;
    size_t n = MAGIC_LEN + 12 + a->body_len;
    for (size_t i = 0; i < a->nheaders; i++) {
        size_t nl = strlen(a->headers[i].name);
        size_t vl = strlen(a->headers[i].value);
        if (!name_ok(a->headers[i].name, nl) ||
            !value_ok(a->headers[i].value, vl))
            return NULL;
        n += 8 + nl + vl;
    }
    unsigned char *b = xmalloc(n), *p = b;
    memcpy(p, MAGIC, MAGIC_LEN);
    p += MAGIC_LEN;
    put32(p, (size_t)a->status);
    put32(p + 4, a->nheaders);
    p += 8;
    for (size_t i = 0; i < a->nheaders; i++) {
        size_t nl = strlen(a->headers[i].name);
        size_t vl = strlen(a->headers[i].value);
        put32(p, nl);
        memcpy(p + 4, a->headers[i].name, nl);
        p += 4 + nl;
        put32(p, vl);
        memcpy(p + 4, a->headers[i].value, vl);
        p += 4 + vl;
    }
    put32(p, a->body_len);
    if (a->body_len)
        memcpy(p + 4, a->body, a->body_len);
    *len = n;
    return (char *)b;
}

/* A reader over buf that fails once and stays failed. */
struct rd {
    const unsigned char *p;
    size_t left;
    int bad;
};

static uint32_t
rd32(struct rd *r)
{
    if (r->bad || r->left < 4) {
        r->bad = 1;
        return 0;
    }
    uint32_t v = get32(r->p);
    r->p += 4;
    r->left -= 4;
    return v;
}

/* The next length-prefixed string; NULL when it does not fit. */
static const char *
rdstr(struct rd *r, size_t *n)
{
    *n = rd32(r);
    if (r->bad || *n > r->left) {
        r->bad = 1;
        return NULL;
    }
    const char *s = (const char *)r->p;
    r->p += *n;
    r->left -= *n;
    return s;
}

/* First pass: checks the whole value and counts the bytes the strings
 * need. 0 and *nh, *strbytes; -1 when it is not one encoding. */
static int
check(const char *buf, size_t len, size_t *nh, size_t *strbytes)
{
    struct rd r = {(const unsigned char *)buf, len, 0};
    if (len < MAGIC_LEN || memcmp(buf, MAGIC, MAGIC_LEN) != 0)
        return -1;
    r.p += MAGIC_LEN;
    r.left -= MAGIC_LEN;
    uint32_t status = rd32(&r);
    uint32_t n = rd32(&r);
    if (r.bad || status < 100 || status > 599 || n > REDIS_ANSWER_MAX_HEADERS)
        return -1;
    size_t bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t nl, vl;
        const char *name = rdstr(&r, &nl);
        if (name == NULL || !name_ok(name, nl))
            return -1;
        const char *value = rdstr(&r, &vl);
        if (value == NULL || !value_ok(value, vl))
            return -1;
        bytes += nl + vl + 2;
    }
    size_t bl;
    if (rdstr(&r, &bl) == NULL || r.left != 0)
        return -1;
    *nh = n;
    *strbytes = bytes + bl + 1;
    return 0;
}

struct idem_answer *
redis_answer_decode(const char *buf, size_t len)
{
    size_t nh, bytes;
    if (buf == NULL || check(buf, len, &nh, &bytes) != 0)
        return NULL;
    struct idem_answer *a =
        xmalloc(sizeof(*a) + nh * sizeof(struct idem_header) + bytes);
    struct idem_header *h = (struct idem_header *)(a + 1);
    char *at = (char *)(h + nh);
    struct rd r = {(const unsigned char *)buf + MAGIC_LEN, len - MAGIC_LEN, 0};
    a->status = (int)rd32(&r);
    rd32(&r);
    for (size_t i = 0; i < nh; i++) {
        size_t nl, vl;
        const char *name = rdstr(&r, &nl);
        h[i].name = at;
        memcpy(at, name, nl);
        at[nl] = '\0';
        at += nl + 1;
        const char *value = rdstr(&r, &vl);
        h[i].value = at;
        memcpy(at, value, vl);
        at[vl] = '\0';
        at += vl + 1;
    }
    size_t bl;
    const char *body = rdstr(&r, &bl);
    if (bl)
        memcpy(at, body, bl);
    at[bl] = '\0';
    a->headers = h;
    a->nheaders = nh;
    a->body = at;
    a->body_len = bl;
    return a;
}
