/* alloc.h - allocation that never returns NULL.
 *
 * Policy (GUIDE.md item 4): wagate does not try to limp on without memory.
 * Every allocation goes through these wrappers, which print one line and
 * abort() when the system refuses; callers therefore never test for NULL.
 * Libraries that allocate on their own (libevent, libcurl, json-c) report
 * failure through their return values, which callers do check. */
#ifndef WAGATE_ALLOC_H
#define WAGATE_ALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Aborts the process on out-of-memory; for library calls that returned NULL
 * where the only cause can be memory. */
void alloc_oom(const char *what) __attribute__((noreturn));

/* The n bytes at p (NULs allowed; p may be NULL when n is 0) and a NUL
 * after them, so text without NULs can be used as a C string. */
char *xmemdup(const void *p, size_t n);
/* p, or alloc_oom(what) when p is NULL: for the constructors of json-c and
 * libevent, which fail only for want of memory. */
void *alloc_check(void *p, const char *what);

#endif
