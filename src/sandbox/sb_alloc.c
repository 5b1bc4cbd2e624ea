#include "sandbox/sb_alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void
sb_oom(void)
{
    fputs("wagate-sandbox: out of memory\n", stderr);
    abort();
}

void *
sb_check(void *p)
{
    if (p == NULL)
        sb_oom();
    return p;
}

void *
sb_xmalloc(size_t n)
{
    /* malloc(0) may return NULL legitimately; never ask for 0 bytes. */
    return sb_check(malloc(n ? n : 1));
}

void *
sb_xcalloc(size_t n, size_t size)
{
    return sb_check(calloc(n ? n : 1, size ? size : 1));
}

void *
sb_xrealloc(void *p, size_t n)
{
    return sb_check(realloc(p, n ? n : 1));
}

char *
sb_xstrdup(const char *s)
{
    return sb_xmemdup(s, strlen(s));
}

char *
sb_xmemdup(const void *p, size_t n)
{
    if (n == (size_t)-1)
        sb_oom();
    char *d = sb_xmalloc(n + 1);
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}
