/* session_cache.h - what the gateway knows of each 24-hour window, SPEC
 * section 4. A plain data structure: every call takes the current time
 * (milliseconds since the epoch); nothing here does I/O or reads a clock.
 *
 * One fixed-size entry per (sender_id, recipient) with no per-entry heap
 * string: the recipient is its E.164 number as an integer
 * (precheck_phone_key). At most max_entries entries; the least recently
 * used goes first.
 *
 * Deciding a send-freeform: no entry, or open with expires_at in the
 * future -> forward. Closed (learned closed, or open with expires_at
 * passed) -> trusted until max(learned_at, expired_at) + recheck;
 * while trusted -> short-circuit. When trust runs out the send is
 * forwarded as a probe and the entry is trusted again from that moment, so
 * that a closed window costs at most one upstream call per recipient per
 * recheck period; the probe's answer, when learned, replaces the entry.
 * recheck 0 never short-circuits.
 *
 * Precisely, with R = recheck_ms > 0, an entry that reads as closed is
 * trusted while now < trusted_until, where trusted_until is
 *   expired_at (or an open entry's passed expires_at) known:
 *                                       max(learned_at, expired_at) + R
 *   expired_at unknown:                 learned_at + R
 * so a window learned open that expires later is trusted from its expiry,
 * and one learned when it had already expired, from the learning.
 * A probe turns the entry into "learned closed at now", keeping its
 * expired_at (an open entry's expires_at), so it is trusted until now + R.
 * Recency: learning and cache_decide (found or not, whatever the answer)
 * make an entry the most recently used; cache_get and cache_get_stats
 * touch nothing. Not thread-safe: one cache per thread or a lock. */
#ifndef WAGATE_SESSION_CACHE_H
#define WAGATE_SESSION_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define CACHE_TIME_UNKNOWN INT64_MIN

enum cache_source {
    CACHE_SRC_SEND_FREEFORM = 0,
    CACHE_SRC_SESSION_STATUS,
    CACHE_SRC_TEMPLATE,
    CACHE_SRC_INBOUND,
};

enum cache_decision {
    CACHE_FORWARD = 0,   /* unknown, open, or a probe after trust ran out */
    CACHE_SHORT_CIRCUIT, /* known closed and trusted: answer 403 locally */
};

struct cache_view {
    int open;              /* 1 open, 0 closed */
    int64_t expires_at;    /* open: expiry; closed: expired_at, or UNKNOWN */
    int64_t learned_at;    /* when the gateway last learned it */
    int64_t trusted_until; /* closed: end of trust; open: UNKNOWN */
    enum cache_source source;
};

struct cache_stats {
    size_t entries;
    size_t max_entries;
    uint64_t lookups;        /* cache_decide calls */
    uint64_t hits;           /* ... that found an entry */
    uint64_t short_circuits; /* ... answered locally */
    uint64_t evictions;      /* entries dropped for room (LRU) */
};

struct session_cache;

/* NULL only if max_entries is 0; above 2^32 - 2 it is clamped. Memory
 * grows with use (doubling), up to 48 bytes per entry plus a hash index of
 * 4 bytes per slot rounded up to a power of two. Caller frees. */
struct session_cache *cache_new(size_t max_entries);
void cache_free(struct session_cache *c); /* NULL is fine */

/* Changes the bound (0 is read as 1); shrinking evicts the least recently
 * used entries (counted in evictions) and gives back the memory above the
 * new bound. */
void cache_set_max_entries(struct session_cache *c, size_t max_entries);

/* The window is open until expires_at (ms). Replaces whatever the entry
 * held (learned_at = now, source = src); a new entry may evict the least
 * recently used one. */
void cache_learn_open(struct session_cache *c, int64_t sender, uint64_t phone,
                      int64_t expires_at, enum cache_source src, int64_t now);

/* The window is closed; expired_at may be CACHE_TIME_UNKNOWN. Replaces
 * the entry as cache_learn_open does. */
void cache_learn_closed(struct session_cache *c, int64_t sender, uint64_t phone,
                        int64_t expired_at, enum cache_source src, int64_t now);

/* Decides a send-freeform (see above) and counts it in the stats.
 * recheck_ms is recheck_after_s in ms (<= 0: never short-circuit; the
 * entry is then left as it is). On CACHE_SHORT_CIRCUIT, *expired_at (if
 * not NULL) is set to when the window closed, or CACHE_TIME_UNKNOWN; on
 * CACHE_FORWARD to CACHE_TIME_UNKNOWN. */
enum cache_decision cache_decide(struct session_cache *c, int64_t sender,
                                 uint64_t phone, int64_t now,
                                 int64_t recheck_ms, int64_t *expired_at);

/* Reads an entry without touching its recency or the stats. 0 and *v, or
 * -1 if absent. An open entry whose expires_at is at or before now reads as
 * closed (open 0, expires_at kept). recheck_ms gives trusted_until (see
 * above; it may be in the past, and is CACHE_TIME_UNKNOWN when the entry
 * reads as open or recheck_ms <= 0). After a probe, learned_at is the
 * probe's time. */
int cache_get(const struct session_cache *c, int64_t sender, uint64_t phone,
              int64_t now, int64_t recheck_ms, struct cache_view *v);

/* Forgets an entry; 0 if it was there, -1 if not. */
int cache_forget(struct session_cache *c, int64_t sender, uint64_t phone);

void cache_get_stats(const struct session_cache *c, struct cache_stats *s);

/* For tests and benchmarks: sizeof one entry (at most 48). */
size_t cache_entry_size(void);

/* ---- export and import: the state file (state_file.h) ---- */

/* One entry as the cache holds it (not as it reads at some time: see
 * struct cache_view for that). */
struct cache_record {
    int64_t sender;
    uint64_t phone;     /* precheck_phone_key() */
    int open;           /* 1 learned open; 0 learned closed or probed */
    int64_t when;       /* open: expires_at; closed: expired_at or UNKNOWN */
    int64_t learned_at; /* for a probed entry, the probe */
    enum cache_source source;
};

/* Returns 0 to go on, anything else to stop the walk. */
typedef int (*cache_visit_fn)(void *arg, const struct cache_record *r);

/* Calls fn for every entry, least recently used first (the order in which
 * cache_import() rebuilds the same recency). The cache must not change
 * during the walk; stats are not touched. Returns the first nonzero value
 * fn returned, else 0. */
int cache_export(const struct session_cache *c, cache_visit_fn fn, void *arg);

/* Puts r in the cache as its most recently used entry, replacing any
 * entry for the pair; a new entry may evict the least recently used one
 * (counted in evictions); nothing else in the stats moves. What the
 * gateway was down for cannot extend trust: learned_at, and a closed
 * entry's expired_at, are taken as at most now, so a closed window is
 * trusted until now + recheck_ms at the latest. 1 kept; 0 dropped as no
 * longer useful at now (it reads closed and its trust ran out; with
 * recheck_ms <= 0 every entry that reads closed); -1 if r is not an entry
 * the cache could hold (open not 0 or 1, an unknown source, an open entry
 * without expiry). */
int cache_import(struct session_cache *c, const struct cache_record *r,
                 int64_t now, int64_t recheck_ms);

/* ---- the judgement alone: the Redis backend's too (state_redis.c) ----
 * What cache_decide() and cache_get() conclude from one entry at now,
 * as a pure function of the entry (struct cache_record, above), so that
 * every backend decides with this one piece of code. */
enum cache_judgement {
    CACHE_JUDGED_FORWARD = 0, /* reads open, or recheck_ms <= 0: forward,
                                 the entry stays as it is */
    CACHE_JUDGED_TRUSTED,     /* reads closed and trusted: short-circuit,
                                 expired_at = r->when */
    CACHE_JUDGED_PROBE,       /* reads closed, trust ran out: forward as the
                                 probe; the entry becomes "learned closed
                                 at now", keeping when and source */
};

/* Judges r at now (see the top of this file); v, if not NULL, gets the
 * entry as cache_get() reads it. r's sender and phone are not read. */
enum cache_judgement cache_judge(const struct cache_record *r, int64_t now,
                                 int64_t recheck_ms, struct cache_view *v);

#endif
