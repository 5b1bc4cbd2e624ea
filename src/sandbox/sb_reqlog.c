#include "sb_reqlog.h"
#include "alloc.h"

#include <stdlib.h>

struct sb_reqlog {
    struct sb_reqlog_entry **entries; /* ascending id */
    size_t count, cap;
    uint64_t next_id;
};

struct sb_reqlog *
sb_reqlog_new(void)
{
    struct sb_reqlog *log = xcalloc(1, sizeof(*log));
    log->next_id = 1;
    return log;
}

static void
entry_free(struct sb_reqlog_entry *e)
{
    for (size_t i = 0; i < e->nheaders; i++) {
        free(e->headers[i].name);
        free(e->headers[i].value);
    }
    free(e->headers);
    free(e->method);
    free(e->uri);
    free(e->body);
    free(e);
}

void
sb_reqlog_clear(struct sb_reqlog *log)
{
    for (size_t i = 0; i < log->count; i++)
        entry_free(log->entries[i]);
    log->count = 0;
}

void
sb_reqlog_free(struct sb_reqlog *log)
{
    if (log == NULL)
        return;
    sb_reqlog_clear(log);
    free(log->entries);
    free(log);
}

struct sb_reqlog_entry *
sb_reqlog_add(struct sb_reqlog *log, int64_t mono_ms, const char *method,
              const char *uri, const void *body, size_t body_len)
{
    struct sb_reqlog_entry *e = xcalloc(1, sizeof(*e));

    if (log->count == log->cap) {
        log->cap = log->cap ? log->cap * 2 : 64;
        log->entries = xrealloc(log->entries, log->cap * sizeof(*log->entries));
    }
    e->id = log->next_id++;
    e->seq = log->count + 1;
    e->mono_ms = mono_ms;
    e->method = xstrdup(method);
    e->uri = xstrdup(uri);
    e->body = xmemdup(body, body_len);
    e->body_len = body_len;
    log->entries[log->count++] = e;
    return e;
}

void
sb_reqlog_add_header(struct sb_reqlog_entry *e, const char *name,
                     const char *value)
{
    e->headers = xrealloc(e->headers, (e->nheaders + 1) * sizeof(*e->headers));
    e->headers[e->nheaders].name = xstrdup(name);
    e->headers[e->nheaders].value = xstrdup(value);
    e->nheaders++;
}

static struct sb_reqlog_entry *
find(const struct sb_reqlog *log, uint64_t id)
{
    size_t lo = 0, hi = log->count;

    /* Ids ascend with position, so a binary search finds the entry. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (log->entries[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < log->count && log->entries[lo]->id == id ? log->entries[lo]
                                                         : NULL;
}

const struct sb_reqlog_entry *
sb_reqlog_find(const struct sb_reqlog *log, uint64_t id)
{
    return find(log, id);
}

const struct sb_reqlog_entry *
sb_reqlog_set_status(struct sb_reqlog *log, uint64_t id, int status,
                     int64_t mono_ms)
{
    struct sb_reqlog_entry *e = find(log, id);

    if (e != NULL) {
        e->status = status;
        e->answered_ms = mono_ms;
    }
    return e;
}

size_t
sb_reqlog_count(const struct sb_reqlog *log)
{
    return log->count;
}

const struct sb_reqlog_entry *
sb_reqlog_at(const struct sb_reqlog *log, size_t i)
{
    return i < log->count ? log->entries[i] : NULL;
}
