/* idempotency.c - see idempotency.h.
 *
 * Layout: every (caller, key) is one heap block, a struct idem_entry
 * followed by its strings "caller\0key\0". When the answer is stored the
 * block is reallocated once to append the answer after them: a struct
 * idem_answer, its header array, the header strings and the body, so a
 * kept answer costs one allocation and its pointers never move again.
 *
 * A chained hash table of entry pointers (a power of two of buckets, at
 * most one entry per bucket on average) finds a (caller, key). Kept
 * answers are also on an intrusive doubly linked FIFO in the order they
 * were stored: its head is both the first to expire (one TTL for all) and
 * the one to drop for room. In-flight entries are only in the table.
 * Every operation is O(1) expected; growing the table is O(n), amortised. */
#include "idempotency.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hash.h"

#define INITIAL_BUCKETS 64

struct idem_entry {
    struct idem_entry *hnext;       /* hash chain */
    struct idem_entry *prev, *next; /* FIFO of kept answers (prev older) */
    int64_t stored_at;              /* kept: now of idem_complete() */
    uint32_t hash;
    uint32_t caller_len, key_len;
    unsigned char body_hash[IDEM_HASH_LEN];
    uint8_t kept; /* 0 in flight, 1 answer kept */
    char s[];     /* caller\0key\0, then (kept) the answer, aligned */
};

struct idem_store {
    struct idem_entry **buckets;
    size_t mask; /* number of buckets - 1 */
    uint64_t seed;
    struct idem_entry *head, *tail; /* oldest and newest kept answer */
    size_t kept, in_flight;
    size_t max;
    int64_t ttl;
    uint64_t replays, conflicts, evictions;
};

/* ---- hashing ---- */


/* FNV-1a 64 over caller, its terminating NUL, then key: the NUL marks
 * where the caller ends, so ("a", "bc") and ("ab", "c") hash apart. The
 * per-store seed (from the store's ASLR'd address) makes collisions
 * chosen in advance by a client unlikely to carry over to a running
 * gateway; it is not a cryptographic defence. */
static uint32_t
idem_hash(const struct idem_store *s, const char *caller, size_t clen,
          const char *key, size_t klen)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325) ^ s->seed;
    for (size_t i = 0; i <= clen; i++) { /* includes the NUL */
        h ^= (unsigned char)caller[i];
        h *= UINT64_C(0x100000001b3);
    }
    for (size_t i = 0; i < klen; i++) {
        h ^= (unsigned char)key[i];
        h *= UINT64_C(0x100000001b3);
    }
    h = hash_mix64(h ^ klen);
    return (uint32_t)(h ^ (h >> 32));
}

static inline const char *
idem_entry_key(const struct idem_entry *e)
{
    return e->s + e->caller_len + 1;
}

/* Offset, from the start of the block, of the answer of a kept entry. */
static inline size_t
idem_answer_off(const struct idem_entry *e)
{
    size_t a = alignof(struct idem_answer);
    size_t off = offsetof(struct idem_entry, s) + (size_t)e->caller_len + 1 +
                 (size_t)e->key_len + 1;
    return (off + a - 1) & ~(a - 1);
}

static inline struct idem_answer *
idem_entry_answer(struct idem_entry *e)
{
    return (struct idem_answer *)((char *)e + idem_answer_off(e));
}

/* The link that points at the entry for (caller, key), or the NULL link
 * at the end of its chain when there is none. A link, not the entry, so
 * that the caller can unlink or replace the entry in place. */
static struct idem_entry **
idem_find(struct idem_store *s, const char *caller, size_t clen,
          const char *key, size_t klen, uint32_t h)
{
    struct idem_entry **p = &s->buckets[h & s->mask];
    for (; *p != NULL; p = &(*p)->hnext) {
        const struct idem_entry *e = *p;
        if (e->hash == h && e->caller_len == clen && e->key_len == klen &&
            memcmp(e->s, caller, clen) == 0 &&
            memcmp(idem_entry_key(e), key, klen) == 0)
            return p;
    }
    return p;
}

/* The link that points at e, which must be in the table. */
static struct idem_entry **
idem_link_of(struct idem_store *s, const struct idem_entry *e)
{
    struct idem_entry **p = &s->buckets[e->hash & s->mask];
    while (*p != e)
        p = &(*p)->hnext;
    return p;
}

/* Doubles the buckets and re-links every entry. Walks the old chains, as
 * in-flight entries are on no other list. */
static void
idem_grow(struct idem_store *s)
{
    size_t oldn = s->mask + 1, n = oldn * 2;
    struct idem_entry **old = s->buckets;
    s->buckets = xcalloc(n, sizeof(*s->buckets));
    s->mask = n - 1;
    for (size_t b = 0; b < oldn; b++) {
        struct idem_entry *e = old[b];
        while (e != NULL) {
            struct idem_entry *next = e->hnext;
            struct idem_entry **p = &s->buckets[e->hash & s->mask];
            e->hnext = *p;
            *p = e;
            e = next;
        }
    }
    free(old);
}

/* ---- the FIFO of kept answers ---- */

static void
idem_fifo_unlink(struct idem_store *s, struct idem_entry *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        s->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        s->tail = e->prev;
}

static void
idem_fifo_push(struct idem_store *s, struct idem_entry *e)
{
    e->next = NULL;
    e->prev = s->tail;
    if (s->tail != NULL)
        s->tail->next = e;
    else
        s->head = e;
    s->tail = e;
}

/* Kept for [stored_at, stored_at + ttl). Written without subtraction
 * overflow; a now before stored_at (a clock that stepped back) is not
 * expired. */
static int
idem_expired(const struct idem_store *s, const struct idem_entry *e,
             int64_t now)
{
    if (now < e->stored_at)
        return 0;
    if (s->ttl <= 0)
        return 1;
    return (uint64_t)now - (uint64_t)e->stored_at >= (uint64_t)s->ttl;
}

/* Unlinks and frees a kept entry found through its link. */
static void
idem_drop_kept(struct idem_store *s, struct idem_entry **link)
{
    struct idem_entry *e = *link;
    *link = e->hnext;
    idem_fifo_unlink(s, e);
    s->kept--;
    free(e);
}

static void
idem_evict_for_room(struct idem_store *s)
{
    while (s->kept > s->max) {
        idem_drop_kept(s, idem_link_of(s, s->head));
        s->evictions++;
    }
}

/* ---- public ---- */

struct idem_store *
idem_new(size_t max_entries, int64_t ttl_ms)
{
    if (max_entries == 0)
        return NULL;
    struct idem_store *s = xcalloc(1, sizeof(*s));
    s->buckets = xcalloc(INITIAL_BUCKETS, sizeof(*s->buckets));
    s->mask = INITIAL_BUCKETS - 1;
    s->seed = hash_mix64((uint64_t)(uintptr_t)s ^ UINT64_C(0x9e3779b97f4a7c15));
    s->max = max_entries;
    s->ttl = ttl_ms;
    return s;
}

void
idem_free(struct idem_store *s)
{
    if (s == NULL)
        return;
    for (size_t b = 0; b <= s->mask; b++) {
        struct idem_entry *e = s->buckets[b];
        while (e != NULL) {
            struct idem_entry *next = e->hnext;
            free(e);
            e = next;
        }
    }
    free(s->buckets);
    free(s);
}

void
idem_configure(struct idem_store *s, size_t max_entries, int64_t ttl_ms)
{
    s->max = max_entries;
    s->ttl = ttl_ms; /* stored_at is kept, so this applies to kept ones */
    idem_evict_for_room(s);
}

int
idem_key_valid(const char *key)
{
    if (key == NULL)
        return 0;
    size_t n = 0;
    for (; key[n] != '\0'; n++) {
        unsigned char c = (unsigned char)key[n];
        if (c < 0x21 || c > 0x7e || n >= IDEM_KEY_MAX)
            return 0;
    }
    return n > 0;
}

enum idem_verdict
idem_begin(struct idem_store *s, const char *caller, const char *key,
           const unsigned char hash[IDEM_HASH_LEN], int64_t now,
           const struct idem_answer **answer)
{
    if (answer != NULL)
        *answer = NULL;
    if (caller == NULL)
        caller = "";
    size_t clen = strlen(caller), klen = strlen(key);
    uint32_t h = idem_hash(s, caller, clen, key, klen);
    struct idem_entry **link = idem_find(s, caller, clen, key, klen, h);
    struct idem_entry *e = *link;

    if (e != NULL && e->kept && idem_expired(s, e, now)) {
        idem_drop_kept(s, link); /* *link is now the next in the chain */
        e = NULL;
    }
    if (e != NULL) {
        if (memcmp(e->body_hash, hash, IDEM_HASH_LEN) != 0) {
            s->conflicts++;
            return IDEM_REUSED;
        }
        if (!e->kept) {
            s->conflicts++;
            return IDEM_IN_PROGRESS;
        }
        s->replays++;
        if (answer != NULL)
            *answer = idem_entry_answer(e);
        return IDEM_REPLAY;
    }

    /* In-flight entries count towards the load too: they are found the
     * same way. Grow first so the new entry is linked once. */
    if (s->kept + s->in_flight >= s->mask + 1)
        idem_grow(s);
    link = &s->buckets[h & s->mask]; /* insert at the chain head */
    e = xmalloc(offsetof(struct idem_entry, s) + clen + 1 + klen + 1);
    e->prev = e->next = NULL;
    e->stored_at = 0;
    e->hash = h;
    e->caller_len = (uint32_t)clen;
    e->key_len = (uint32_t)klen;
    memcpy(e->body_hash, hash, IDEM_HASH_LEN);
    e->kept = 0;
    memcpy(e->s, caller, clen + 1);
    memcpy(e->s + clen + 1, key, klen + 1);
    e->hnext = *link;
    *link = e;
    s->in_flight++;
    return IDEM_NEW;
}

/* a + b, aborting like an allocation would if it cannot be represented:
 * the only way there is an absurd answer, which no request can carry. */
static size_t
idem_add(size_t a, size_t b)
{
    if (a > SIZE_MAX - b)
        alloc_oom("idempotency answer size");
    return a + b;
}

void
idem_complete(struct idem_store *s, const char *caller, const char *key,
              const struct idem_answer *answer, int64_t now)
{
    if (caller == NULL)
        caller = "";
    size_t clen = strlen(caller), klen = strlen(key);
    uint32_t h = idem_hash(s, caller, clen, key, klen);
    struct idem_entry **link = idem_find(s, caller, clen, key, klen, h);
    struct idem_entry *e = *link;
    if (e == NULL || e->kept)
        return; /* abandoned, expired, or completed twice */

    /* One block: the entry as it is, then the answer, its header array,
     * "name\0value\0" per header, the body and a NUL (so a text body can
     * be read as a C string; body_len stays the truth). */
    size_t off = idem_answer_off(e);
    size_t hdr_off = off + sizeof(struct idem_answer);
    size_t str_off =
        idem_add(hdr_off, answer->nheaders * sizeof(struct idem_header));
    size_t total = str_off;
    for (size_t i = 0; i < answer->nheaders; i++) {
        total = idem_add(total, strlen(answer->headers[i].name) + 1);
        total = idem_add(total, strlen(answer->headers[i].value) + 1);
    }
    size_t body_off = total;
    total = idem_add(idem_add(total, answer->body_len), 1);

    e = xrealloc(e, total);
    *link = e; /* the block may have moved; the link is outside it */

    char *base = (char *)e;
    struct idem_answer *a = (struct idem_answer *)(base + off);
    struct idem_header *hd = (struct idem_header *)(base + hdr_off);
    char *p = base + str_off;
    for (size_t i = 0; i < answer->nheaders; i++) {
        size_t n = strlen(answer->headers[i].name) + 1;
        memcpy(p, answer->headers[i].name, n);
        hd[i].name = p;
        p += n;
        n = strlen(answer->headers[i].value) + 1;
        memcpy(p, answer->headers[i].value, n);
        hd[i].value = p;
        p += n;
    }
    char *body = base + body_off;
    if (answer->body_len > 0)
        memcpy(body, answer->body, answer->body_len);
    body[answer->body_len] = '\0';
    a->status = answer->status;
    a->headers = answer->nheaders > 0 ? hd : NULL;
    a->nheaders = answer->nheaders;
    a->body = body;
    a->body_len = answer->body_len;

    e->kept = 1;
    e->stored_at = now;
    idem_fifo_push(s, e);
    s->in_flight--;
    s->kept++;

    /* Expired answers go first so that they are not counted as evictions
     * and do not take the place of live ones. */
    idem_expire(s, now);
    idem_evict_for_room(s);
}

void
idem_abandon(struct idem_store *s, const char *caller, const char *key)
{
    if (caller == NULL)
        caller = "";
    size_t clen = strlen(caller), klen = strlen(key);
    uint32_t h = idem_hash(s, caller, clen, key, klen);
    struct idem_entry **link = idem_find(s, caller, clen, key, klen, h);
    struct idem_entry *e = *link;
    if (e == NULL || e->kept)
        return; /* a kept answer stays: only its own request abandons */
    *link = e->hnext;
    s->in_flight--;
    free(e);
}

void
idem_expire(struct idem_store *s, int64_t now)
{
    /* The FIFO is in storing order and the TTL is the same for all, so
     * with a clock that does not step back the expired ones are a prefix. */
    while (s->head != NULL && idem_expired(s, s->head, now))
        idem_drop_kept(s, idem_link_of(s, s->head));
}

void
idem_get_stats(const struct idem_store *s, struct idem_stats *st)
{
    st->entries = s->kept + s->in_flight;
    st->in_flight = s->in_flight;
    st->replays = s->replays;
    st->conflicts = s->conflicts;
    st->evictions = s->evictions;
}

/* ---- export and import ---- */

int
idem_export(const struct idem_store *s, idem_visit_fn fn, void *arg)
{
    struct idem_record r;
    int rc;
    for (const struct idem_entry *e = s->head; e != NULL; e = e->next) {
        r = (struct idem_record){
            .caller = e->s,
            .key = idem_entry_key(e),
            .body_hash = e->body_hash,
            .stored_at = e->stored_at,
            .answer = idem_entry_answer((struct idem_entry *)e),
        };
        if ((rc = fn(arg, &r)) != 0)
            return rc;
    }
    /* in flight: only in the table */
    for (size_t b = 0; b <= s->mask; b++) {
        for (const struct idem_entry *e = s->buckets[b]; e != NULL;
             e = e->hnext) {
            if (e->kept)
                continue;
            r = (struct idem_record){
                .caller = e->s,
                .key = idem_entry_key(e),
                .body_hash = e->body_hash,
                .stored_at = 0,
                .answer = NULL,
            };
            if ((rc = fn(arg, &r)) != 0)
                return rc;
        }
    }
    return 0;
}

int
idem_import(struct idem_store *s, const struct idem_record *r, int64_t now)
{
    if (r->answer == NULL || r->body_hash == NULL || !idem_key_valid(r->key))
        return -1;
    const char *caller = r->caller ? r->caller : "";
    int64_t stored = r->stored_at < now ? r->stored_at : now;
    struct idem_entry probe = {.stored_at = stored};
    if (idem_expired(s, &probe, now))
        return 0;
    size_t clen = strlen(caller), klen = strlen(r->key);
    uint32_t h = idem_hash(s, caller, clen, r->key, klen);
    const struct idem_entry *e = *idem_find(s, caller, clen, r->key, klen, h);
    if (e != NULL && !(e->kept && idem_expired(s, e, now)))
        return 0; /* an expired one is replaced, as idem_begin() does */
    /* the same two steps a forwarded send takes: the key goes in flight,
     * then its answer is stored, at the time it was stored */
    (void)idem_begin(s, caller, r->key, r->body_hash, now, NULL);
    idem_complete(s, caller, r->key, r->answer, stored);
    return 1;
}
