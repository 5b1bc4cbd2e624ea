/* sb_alloc: the sandbox's one allocation policy.
 *
 * Out of memory is not recoverable in a test simulator, so every allocation
 * goes through these wrappers, which print one line to stderr and abort
 * instead of returning NULL. Objects made by json-c and libevent
 * constructors are passed through sb_check() for the same reason. No caller
 * anywhere in src/sandbox checks for NULL after these.
 *
 * Every pointer returned is owned by the caller, who frees it with free().
 */
#ifndef SB_ALLOC_H
#define SB_ALLOC_H

#include <stddef.h>

/* Print "wagate-sandbox: out of memory" and abort(). */
_Noreturn void sb_oom(void);

void *sb_xmalloc(size_t n);
void *sb_xcalloc(size_t n, size_t size);
void *sb_xrealloc(void *p, size_t n);
char *sb_xstrdup(const char *s);
/* Copy of n bytes with a NUL appended (so binary data can also be used as a
 * C string when it contains no NUL). */
char *sb_xmemdup(const void *p, size_t n);
/* Returns p, or aborts as sb_oom() when p is NULL. */
void *sb_check(void *p);

#endif
