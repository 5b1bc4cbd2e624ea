/* sb_reqlog: the log of API requests the sandbox received (pure).
 *
 * Entries are kept in arrival order. Everything passed in is copied; the log
 * owns its entries, and an entry pointer stays valid until sb_reqlog_clear()
 * or sb_reqlog_free(). Each entry has a display `seq` (1, 2, ... restarting
 * after a clear) and an internal `id` that is never reused, so that a reply
 * sent after a clear cannot update a newer entry.
 */
#ifndef SB_REQLOG_H
#define SB_REQLOG_H

#include <stddef.h>
#include <stdint.h>

struct sb_header {
    char *name;
    char *value;
};

struct sb_reqlog_entry {
    uint64_t id;
    uint64_t seq;
    int64_t mono_ms; /* CLOCK_MONOTONIC ms at arrival */
    char *method;
    char *uri; /* request target as received */
    struct sb_header *headers;
    size_t nheaders;
    char *body; /* exact bytes, NUL appended */
    size_t body_len;
    int status;        /* 0 until answered */
    int64_t answered_ms; /* CLOCK_MONOTONIC ms of the answer; 0 until then */
    const char *fault; /* static mode name of the fault applied, or NULL */
};

struct sb_reqlog;

struct sb_reqlog *sb_reqlog_new(void);
void sb_reqlog_free(struct sb_reqlog *log);
/* Appends an entry; the returned pointer is borrowed (see above). */
struct sb_reqlog_entry *sb_reqlog_add(struct sb_reqlog *log, int64_t mono_ms,
                                      const char *method, const char *uri,
                                      const void *body, size_t body_len);
void sb_reqlog_add_header(struct sb_reqlog_entry *e, const char *name,
                          const char *value);
/* Records the status answered to entry `id` at mono_ms (a fault that
 * answers nothing passes 0 as status); returns the entry (borrowed), or
 * NULL when it was cleared (nothing changes). */
const struct sb_reqlog_entry *sb_reqlog_set_status(struct sb_reqlog *log,
                                                   uint64_t id, int status,
                                                   int64_t mono_ms);
/* The entry of id, or NULL when it was cleared. */
const struct sb_reqlog_entry *sb_reqlog_find(const struct sb_reqlog *log,
                                             uint64_t id);
void sb_reqlog_clear(struct sb_reqlog *log);
size_t sb_reqlog_count(const struct sb_reqlog *log);
const struct sb_reqlog_entry *sb_reqlog_at(const struct sb_reqlog *log,
                                           size_t i);

#endif
