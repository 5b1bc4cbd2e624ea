/* session_cache.c - see session_cache.h.
 *
 * Layout: one array of fixed-size entries, addressed by uint32 index (NIL
 * ends every list). Slots [0, used) have been handed out; a freed slot
 * goes on a free list linked through hnext. The array grows by doubling
 * up to max_entries, so indices are stable until a shrink compacts it.
 * A hash index of uint32 chain heads (a power of two of them, at least
 * one per slot) finds an entry; chains link through hnext. An intrusive
 * doubly linked list through prev/next orders the live entries from most
 * (head) to least (tail) recently used. Every operation is O(1) expected;
 * growing and shrinking are O(n) but amortised (or rare). */
#include "session_cache.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hash.h"

#define NIL UINT32_MAX
#define MAX_SLOTS (UINT32_MAX - 1)
#define INITIAL_SLOTS 1024

struct cache_entry {
    int64_t sender;
    uint64_t phone;
    int64_t when;        /* open: expires_at; closed: expired_at or UNKNOWN */
    int64_t learned_at;  /* last learned; for a probed entry, the probe */
    uint32_t prev, next; /* LRU neighbours (prev is more recent) */
    uint32_t hnext;      /* hash chain; on the free list: next free slot */
    uint8_t open;        /* 1 open, 0 closed */
    uint8_t source;      /* enum cache_source */
};

struct session_cache {
    struct cache_entry *e;
    uint32_t cap;  /* slots allocated; never above max */
    uint32_t used; /* slots [0, used) have been handed out */
    uint32_t count;
    uint32_t max;
    uint32_t free_head;
    uint32_t head, tail; /* most and least recently used */
    uint32_t *buckets;
    uint64_t mask; /* number of buckets - 1 */
    uint64_t lookups, hits, short_circuits, evictions;
};

size_t
cache_entry_size(void)
{
    return sizeof(struct cache_entry);
}

/* ---- hashing ---- */

static inline uint32_t
bucket_of(const struct session_cache *c, int64_t sender, uint64_t phone)
{
    uint64_t h = hash_mix64(hash_mix64((uint64_t)sender) ^ phone);
    return (uint32_t)(h & c->mask);
}

static uint32_t
find(const struct session_cache *c, int64_t sender, uint64_t phone)
{
    uint32_t i = c->buckets[bucket_of(c, sender, phone)];
    while (i != NIL) {
        const struct cache_entry *x = &c->e[i];
        if (x->sender == sender && x->phone == phone)
            return i;
        i = x->hnext;
    }
    return NIL;
}

static void
hash_insert(struct session_cache *c, uint32_t i)
{
    uint32_t b = bucket_of(c, c->e[i].sender, c->e[i].phone);
    c->e[i].hnext = c->buckets[b];
    c->buckets[b] = i;
}

static void
hash_remove(struct session_cache *c, uint32_t i)
{
    uint32_t *p = &c->buckets[bucket_of(c, c->e[i].sender, c->e[i].phone)];
    while (*p != i)
        p = &c->e[*p].hnext;
    *p = c->e[i].hnext;
}

/* Replaces the index with one of at least n buckets, then re-links every
 * live entry. */
static void
hash_rebuild(struct session_cache *c, uint64_t n)
{
    uint64_t nb = 1;
    while (nb < n)
        nb <<= 1;
    free(c->buckets);
    c->buckets = xmalloc((size_t)nb * sizeof(*c->buckets));
    memset(c->buckets, 0xff, (size_t)nb * sizeof(*c->buckets)); /* NIL */
    c->mask = nb - 1;
    for (uint32_t i = c->head; i != NIL; i = c->e[i].next)
        hash_insert(c, i);
}

/* ---- recency ---- */

static void
lru_unlink(struct session_cache *c, uint32_t i)
{
    struct cache_entry *x = &c->e[i];
    if (x->prev != NIL)
        c->e[x->prev].next = x->next;
    else
        c->head = x->next;
    if (x->next != NIL)
        c->e[x->next].prev = x->prev;
    else
        c->tail = x->prev;
}

static void
lru_push_front(struct session_cache *c, uint32_t i)
{
    struct cache_entry *x = &c->e[i];
    x->prev = NIL;
    x->next = c->head;
    if (c->head != NIL)
        c->e[c->head].prev = i;
    else
        c->tail = i;
    c->head = i;
}

static void
lru_touch(struct session_cache *c, uint32_t i)
{
    if (c->head != i) {
        lru_unlink(c, i);
        lru_push_front(c, i);
    }
}

/* ---- slots ---- */

/* Drops the least recently used entry; returns its slot, now unlinked and
 * not on the free list. */
static uint32_t
evict_tail(struct session_cache *c)
{
    uint32_t i = c->tail;
    hash_remove(c, i);
    lru_unlink(c, i);
    c->count--;
    c->evictions++;
    return i;
}

static void
grow(struct session_cache *c)
{
    uint64_t ncap = (uint64_t)c->cap * 2;
    if (ncap > c->max)
        ncap = c->max;
    c->e = xrealloc(c->e, (size_t)ncap * sizeof(*c->e));
    c->cap = (uint32_t)ncap;
    if (ncap > c->mask + 1)
        hash_rebuild(c, ncap);
}

/* A slot for a new entry, making room if the cache is full. */
static uint32_t
slot_alloc(struct session_cache *c)
{
    uint32_t i;
    if (c->count >= c->max)
        return evict_tail(c);
    if (c->free_head != NIL) {
        i = c->free_head;
        c->free_head = c->e[i].hnext;
        return i;
    }
    if (c->used == c->cap)
        grow(c);
    return c->used++;
}

/* Moves the live entries, most recent first, into a new array of ncap
 * slots (ncap >= count) and rebuilds the index for it. */
static void
compact(struct session_cache *c, uint32_t ncap)
{
    struct cache_entry *ne = xmalloc((size_t)ncap * sizeof(*ne));
    uint32_t j = 0;
    for (uint32_t i = c->head; i != NIL; i = c->e[i].next, j++) {
        ne[j] = c->e[i];
        ne[j].prev = j == 0 ? NIL : j - 1;
        ne[j].next = j + 1 < c->count ? j + 1 : NIL;
    }
    free(c->e);
    c->e = ne;
    c->cap = ncap;
    c->used = c->count;
    c->free_head = NIL;
    c->head = c->count ? 0 : NIL;
    c->tail = c->count ? c->count - 1 : NIL;
    hash_rebuild(c, ncap);
}

static uint32_t
clamp_max(size_t max_entries)
{
    size_t lim = SIZE_MAX / sizeof(struct cache_entry);
    if (lim > MAX_SLOTS)
        lim = MAX_SLOTS;
    if (max_entries > lim)
        max_entries = lim;
    return max_entries ? (uint32_t)max_entries : 1;
}

/* ---- the interface ---- */

struct session_cache *
cache_new(size_t max_entries)
{
    if (max_entries == 0)
        return NULL;
    struct session_cache *c = xcalloc(1, sizeof(*c));
    c->max = clamp_max(max_entries);
    c->cap = c->max < INITIAL_SLOTS ? c->max : INITIAL_SLOTS;
    c->e = xmalloc((size_t)c->cap * sizeof(*c->e));
    c->free_head = NIL;
    c->head = c->tail = NIL;
    hash_rebuild(c, c->cap);
    return c;
}

void
cache_free(struct session_cache *c)
{
    if (c == NULL)
        return;
    free(c->e);
    free(c->buckets);
    free(c);
}

void
cache_set_max_entries(struct session_cache *c, size_t max_entries)
{
    uint32_t m = clamp_max(max_entries);
    while (c->count > m) {
        uint32_t i = evict_tail(c);
        c->e[i].hnext = c->free_head;
        c->free_head = i;
    }
    c->max = m;
    if (c->cap > m) {
        uint32_t ncap = c->count > INITIAL_SLOTS ? c->count : INITIAL_SLOTS;
        compact(c, ncap < m ? ncap : m);
    }
}

static void
learn(struct session_cache *c, int64_t sender, uint64_t phone, int open,
      int64_t when, enum cache_source src, int64_t now)
{
    uint32_t i = find(c, sender, phone);
    if (i == NIL) {
        i = slot_alloc(c);
        c->e[i].sender = sender;
        c->e[i].phone = phone;
        hash_insert(c, i);
        lru_push_front(c, i);
        c->count++;
    } else {
        lru_touch(c, i);
    }
    c->e[i].open = (uint8_t)open;
    c->e[i].when = when;
    c->e[i].learned_at = now;
    c->e[i].source = (uint8_t)src;
}

void
cache_learn_open(struct session_cache *c, int64_t sender, uint64_t phone,
                 int64_t expires_at, enum cache_source src, int64_t now)
{
    learn(c, sender, phone, 1, expires_at, src, now);
}

void
cache_learn_closed(struct session_cache *c, int64_t sender, uint64_t phone,
                   int64_t expired_at, enum cache_source src, int64_t now)
{
    learn(c, sender, phone, 0, expired_at, src, now);
}

static int64_t
add_sat(int64_t a, int64_t b) /* b >= 0 */
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* End of trust of an entry that reads as closed; recheck_ms > 0. Trust
 * runs from the later of when the gateway learned the entry and when the
 * window closed: a window learned open that expires later is trusted from
 * its expiry, one learned already expired (or closed) from the learning. */
static int64_t
trusted_until(int64_t learned_at, int64_t when, int64_t recheck_ms)
{
    int64_t base = learned_at;
    if (when != CACHE_TIME_UNKNOWN && when > base)
        base = when;
    return add_sat(base, recheck_ms);
}

enum cache_judgement
cache_judge(const struct cache_record *r, int64_t now, int64_t recheck_ms,
            struct cache_view *v)
{
    int reads_open = r->open && r->when > now;
    if (v != NULL) {
        v->open = reads_open;
        v->expires_at = r->when;
        v->learned_at = r->learned_at;
        v->trusted_until =
            reads_open || recheck_ms <= 0
                ? CACHE_TIME_UNKNOWN
                : trusted_until(r->learned_at, r->when, recheck_ms);
        v->source = r->source;
    }
    if (recheck_ms <= 0 || reads_open)
        return CACHE_JUDGED_FORWARD;
    if (now < trusted_until(r->learned_at, r->when, recheck_ms))
        return CACHE_JUDGED_TRUSTED;
    return CACHE_JUDGED_PROBE;
}

static struct cache_record
record_of(const struct cache_entry *x)
{
    return (struct cache_record){
        .sender = x->sender,
        .phone = x->phone,
        .open = x->open,
        .when = x->when,
        .learned_at = x->learned_at,
        .source = (enum cache_source)x->source,
    };
}

enum cache_decision
cache_decide(struct session_cache *c, int64_t sender, uint64_t phone,
             int64_t now, int64_t recheck_ms, int64_t *expired_at)
{
    if (expired_at != NULL)
        *expired_at = CACHE_TIME_UNKNOWN;
    c->lookups++;
    uint32_t i = find(c, sender, phone);
    if (i == NIL)
        return CACHE_FORWARD;
    c->hits++;
    lru_touch(c, i);

    struct cache_entry *x = &c->e[i];
    struct cache_record r = record_of(x);
    switch (cache_judge(&r, now, recheck_ms, NULL)) {
    case CACHE_JUDGED_FORWARD:
        return CACHE_FORWARD;
    case CACHE_JUDGED_TRUSTED:
        c->short_circuits++;
        if (expired_at != NULL)
            *expired_at = x->when;
        return CACHE_SHORT_CIRCUIT;
    case CACHE_JUDGED_PROBE:
        break;
    }
    /* Trust ran out: this send is the probe; trust again from now. */
    x->open = 0;
    x->learned_at = now;
    return CACHE_FORWARD;
}

int
cache_get(const struct session_cache *c, int64_t sender, uint64_t phone,
          int64_t now, int64_t recheck_ms, struct cache_view *v)
{
    uint32_t i = find(c, sender, phone);
    if (i == NIL)
        return -1;
    struct cache_record r = record_of(&c->e[i]);
    cache_judge(&r, now, recheck_ms, v);
    return 0;
}

int
cache_forget(struct session_cache *c, int64_t sender, uint64_t phone)
{
    uint32_t i = find(c, sender, phone);
    if (i == NIL)
        return -1;
    hash_remove(c, i);
    lru_unlink(c, i);
    c->e[i].hnext = c->free_head;
    c->free_head = i;
    c->count--;
    return 0;
}

void
cache_get_stats(const struct session_cache *c, struct cache_stats *s)
{
    s->entries = c->count;
    s->max_entries = c->max;
    s->lookups = c->lookups;
    s->hits = c->hits;
    s->short_circuits = c->short_circuits;
    s->evictions = c->evictions;
}

/* ---- export and import ---- */

int
cache_export(const struct session_cache *c, cache_visit_fn fn, void *arg)
{
    for (uint32_t i = c->tail; i != NIL; i = c->e[i].prev) {
        struct cache_record r = record_of(&c->e[i]);
        int rc = fn(arg, &r);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int
cache_import(struct session_cache *c, const struct cache_record *r, int64_t now,
             int64_t recheck_ms)
{
    if ((r->open != 0 && r->open != 1) ||
        (unsigned)r->source > (unsigned)CACHE_SRC_INBOUND ||
        (r->open && r->when == CACHE_TIME_UNKNOWN))
        return -1;
    struct cache_entry x = {
        .open = (uint8_t)r->open,
        .when = r->when,
        .learned_at = r->learned_at < now ? r->learned_at : now,
    };
    if (!x.open && x.when != CACHE_TIME_UNKNOWN && x.when > now)
        x.when = now;
    int reads_open = x.open && x.when > now;
    if (!reads_open && (recheck_ms <= 0 ||
                        now >= trusted_until(x.learned_at, x.when, recheck_ms)))
        return 0;
    learn(c, r->sender, r->phone, x.open, x.when, r->source, x.learned_at);
    return 1;
}
