/* alloc.c - see alloc.h. */
#include "alloc.h"

#include <errno.h> /* program_invocation_short_name (_GNU_SOURCE) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
alloc_oom(const char *what)
{
    /* wagate and wagate-sandbox both link this: name the one that died */
    fprintf(stderr, "%s: out of memory (%s)\n", program_invocation_short_name,
            what);
    abort();
}

void *
alloc_check(void *p, const char *what)
{
    if (p == NULL)
        alloc_oom(what);
    return p;
}

void *
xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        alloc_oom("malloc");
    return p;
}

void *
xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL)
        alloc_oom("calloc");
    return p;
}

void *
xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        alloc_oom("realloc");
    return q;
}

char *
xmemdup(const void *p, size_t n)
{
    if (n == (size_t)-1) /* n + 1 would wrap */
        alloc_oom("xmemdup");
    char *d = xmalloc(n + 1);
    if (n > 0)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

char *
xstrndup(const char *s, size_t n)
{
    return xmemdup(s, n);
}

char *
xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}
