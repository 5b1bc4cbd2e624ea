#include "sb_inbox.h"
#include "alloc.h"
#include "sb_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Messages live in a ring, oldest at `head`; threads in an unordered
 * array (a sandbox holds a few hundred; a linear search costs less than
 * the JSON of one answer). */
struct sb_inbox {
    struct sb_inbox_msg *ring;
    size_t cap, head, n;
    struct sb_inbox_thread **threads;
    size_t nthreads, capthreads;
    uint64_t next_id;
};

struct sb_inbox *
sb_inbox_new(void)
{
    struct sb_inbox *ib = xcalloc(1, sizeof(*ib));

    ib->next_id = 1;
    return ib;
}

static struct sb_inbox_msg *
msg_at(const struct sb_inbox *ib, size_t i) /* 0: the oldest */
{
    return &ib->ring[(ib->head + i) % ib->cap];
}

static void
msg_clear(struct sb_inbox_msg *m)
{
    free(m->text);
    free(m->template_name);
    free(m->error_code);
    memset(m, 0, sizeof(*m));
}

static void
thread_remove(struct sb_inbox *ib, struct sb_inbox_thread *t)
{
    for (size_t i = 0; i < ib->nthreads; i++) {
        if (ib->threads[i] != t)
            continue;
        ib->threads[i] = ib->threads[--ib->nthreads];
        free(t);
        return;
    }
}

/* Drops the oldest message, and its thread when that was the last. */
static void
drop_oldest(struct sb_inbox *ib)
{
    struct sb_inbox_msg *m = msg_at(ib, 0);
    struct sb_inbox_thread *t = m->thread;

    msg_clear(m);
    ib->head = (ib->head + 1) % ib->cap;
    ib->n--;
    if (--t->count == 0)
        thread_remove(ib, t);
}

void
sb_inbox_clear(struct sb_inbox *ib)
{
    while (ib->n > 0)
        drop_oldest(ib);
    ib->head = 0;
}

void
sb_inbox_free(struct sb_inbox *ib)
{
    if (ib == NULL)
        return;
    sb_inbox_clear(ib);
    free(ib->ring);
    free(ib->threads);
    free(ib);
}

/* Room for one more message: the ring grows to SB_INBOX_MAX, then the
 * oldest goes. Growing unrolls the ring so that the oldest is at 0. */
static void
make_room(struct sb_inbox *ib)
{
    if (ib->n == SB_INBOX_MAX) {
        drop_oldest(ib);
        return;
    }
    if (ib->n < ib->cap)
        return;
    size_t cap = ib->cap ? ib->cap * 2 : 64;
    if (cap > SB_INBOX_MAX)
        cap = SB_INBOX_MAX;
    struct sb_inbox_msg *ring = xcalloc(cap, sizeof(*ring));
    for (size_t i = 0; i < ib->n; i++)
        ring[i] = *msg_at(ib, i);
    free(ib->ring);
    ib->ring = ring;
    ib->cap = cap;
    ib->head = 0;
}

static struct sb_inbox_thread *
thread_find(const struct sb_inbox *ib, int64_t sender_id, const char *phone)
{
    for (size_t i = 0; i < ib->nthreads; i++) {
        struct sb_inbox_thread *t = ib->threads[i];
        if (t->sender_id == sender_id && strcmp(t->phone, phone) == 0)
            return t;
    }
    return NULL;
}

static struct sb_inbox_thread *
thread_get(struct sb_inbox *ib, int64_t sender_id, const char *phone)
{
    struct sb_inbox_thread *t = thread_find(ib, sender_id, phone);

    if (t != NULL)
        return t;
    if (ib->nthreads == ib->capthreads) {
        ib->capthreads = ib->capthreads ? ib->capthreads * 2 : 16;
        ib->threads =
            xrealloc(ib->threads, ib->capthreads * sizeof(*ib->threads));
    }
    t = xcalloc(1, sizeof(*t));
    t->sender_id = sender_id;
    memcpy(t->phone, phone, strlen(phone) + 1);
    ib->threads[ib->nthreads++] = t;
    return t;
}

const struct sb_inbox_msg *
sb_inbox_add(struct sb_inbox *ib, int64_t sender_id, const char *phone,
             int64_t at, enum sb_inbox_kind kind, const char *text,
             size_t text_len, const char *template_name, int status,
             const char *error_code)
{
    struct sb_inbox_thread *t;
    struct sb_inbox_msg *m;

    if (phone == NULL || strlen(phone) > SB_INBOX_PHONE_MAX)
        return NULL;
    make_room(ib);
    /* the drop above may have freed this very thread: look it up after */
    t = thread_get(ib, sender_id, phone);
    m = msg_at(ib, ib->n);
    memset(m, 0, sizeof(*m));
    m->id = ib->next_id++;
    m->at = at;
    m->kind = kind;
    if (text != NULL) {
        if (text_len > SB_INBOX_TEXT_MAX)
            text_len = sb_utf8_cut(text, text_len, SB_INBOX_TEXT_MAX);
        m->text = xmemdup(text, text_len);
        m->text_len = text_len;
    }
    m->template_name = template_name ? xstrdup(template_name) : NULL;
    m->status = status;
    m->error_code = error_code ? xstrdup(error_code) : NULL;
    m->thread = t;
    ib->n++;
    t->count++;
    t->last_id = m->id;
    t->last_at = at;
    return m;
}

size_t
sb_inbox_count(const struct sb_inbox *ib)
{
    return ib->n;
}

size_t
sb_inbox_thread_count(const struct sb_inbox *ib)
{
    return ib->nthreads;
}

static int
newer_first(const void *a, const void *b)
{
    const struct sb_inbox_thread *x = *(const struct sb_inbox_thread *const *)a;
    const struct sb_inbox_thread *y = *(const struct sb_inbox_thread *const *)b;

    return x->last_id < y->last_id ? 1 : x->last_id > y->last_id ? -1 : 0;
}

size_t
sb_inbox_threads(const struct sb_inbox *ib, size_t offset, size_t limit,
                 const struct sb_inbox_thread **out)
{
    struct sb_inbox_thread **sorted;
    size_t k = 0;

    if (limit > SB_INBOX_PAGE_MAX)
        limit = SB_INBOX_PAGE_MAX;
    if (offset >= ib->nthreads || limit == 0)
        return 0;
    sorted = xmalloc(ib->nthreads * sizeof(*sorted));
    memcpy(sorted, ib->threads, ib->nthreads * sizeof(*sorted));
    qsort(sorted, ib->nthreads, sizeof(*sorted), newer_first);
    for (size_t i = offset; i < ib->nthreads && k < limit; i++)
        out[k++] = sorted[i];
    free(sorted);
    return k;
}

const struct sb_inbox_thread *
sb_inbox_thread(const struct sb_inbox *ib, int64_t sender_id, const char *phone)
{
    return phone ? thread_find(ib, sender_id, phone) : NULL;
}

size_t
sb_inbox_messages(const struct sb_inbox *ib, const struct sb_inbox_thread *t,
                  uint64_t before_id, size_t limit,
                  const struct sb_inbox_msg **out, bool *more)
{
    size_t k = 0;

    *more = false;
    if (limit > SB_INBOX_PAGE_MAX)
        limit = SB_INBOX_PAGE_MAX;
    for (size_t i = ib->n; i-- > 0;) {
        const struct sb_inbox_msg *m = msg_at(ib, i);
        if (m->thread != t || (before_id != 0 && m->id >= before_id))
            continue;
        if (k == limit) {
            *more = true;
            break;
        }
        out[k++] = m;
    }
    return k;
}

/* The number of a {{N}} at p (1..999), its length in *n; 0 when none. */
static size_t
placeholder(const char *p, size_t *n)
{
    size_t v = 0, i = 2;

    if (p[0] != '{' || p[1] != '{')
        return 0;
    while (p[i] >= '0' && p[i] <= '9' && i < 5)
        v = v * 10 + (size_t)(p[i++] - '0');
    if (i == 2 || p[i] != '}' || p[i + 1] != '}')
        return 0;
    *n = i + 2;
    return v;
}

char *
sb_inbox_fill(const char *body_text, const char *const *values, size_t nvalues,
              size_t *len)
{
    size_t cap = strlen(body_text) + 1, k = 0;
    char *o = xmalloc(cap);

    for (const char *p = body_text; *p;) {
        size_t n = 0, v = placeholder(p, &n);
        const char *s = p;
        size_t sl = 1;
        if (v >= 1 && v <= nvalues && values[v - 1] != NULL) {
            s = values[v - 1];
            sl = strlen(s);
        } else if (v != 0) {
            sl = n;
        }
        if (k + sl + 1 > cap) {
            cap = (k + sl + 1) * 2;
            o = xrealloc(o, cap);
        }
        memcpy(o + k, s, sl);
        k += sl;
        p += v != 0 ? n : 1;
    }
    o[k] = '\0';
    *len = k;
    return o;
}
