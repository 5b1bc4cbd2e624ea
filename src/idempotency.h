/* idempotency.h - the idempotency store of SPEC section 5. Pure: every
 * call takes the current time in ms; no I/O, no clock.
 *
 * Per (caller, key): the SHA-256 of the request body and, once the
 * upstream answered, that answer (status, headers, body), kept for ttl_ms
 * from the moment it was stored.
 *   idem_begin():  new key -> IDEM_NEW (now in flight);
 *                  same body, answer kept -> IDEM_REPLAY;
 *                  same body, still in flight -> IDEM_IN_PROGRESS;
 *                  different body (kept or in flight) -> IDEM_REUSED.
 *   idem_complete(): stores the answer of an in-flight key.
 *   idem_abandon():  forgets an in-flight key (an answer that is not kept:
 *                    5xx, a 429, a gateway answer given before any byte
 *                    left, a local refusal): the key is free again.
 * At most max_entries kept answers: beyond that the oldest kept answer is
 * dropped; in-flight keys are never dropped (they are bounded by the
 * requests in flight). Expired answers are dropped as they are met and by
 * idem_expire(). */
#ifndef WAGATE_IDEMPOTENCY_H
#define WAGATE_IDEMPOTENCY_H

#include <stddef.h>
#include <stdint.h>

#include "digest.h"

#define IDEM_KEY_MAX 255
#define IDEM_HASH_LEN DIGEST_LEN

enum idem_verdict {
    IDEM_NEW = 0,
    IDEM_REPLAY,
    IDEM_IN_PROGRESS,
    IDEM_REUSED,
};

struct idem_header {
    const char *name;
    const char *value;
};

/* An answer as kept. In idem_complete() everything is borrowed and copied;
 * from idem_begin() it is borrowed from the store, valid until the next
 * call that modifies the store. */
struct idem_answer {
    int status;
    const struct idem_header *headers;
    size_t nheaders;
    const char *body;
    size_t body_len;
};

struct idem_stats {
    size_t entries;   /* kept answers + in flight */
    size_t in_flight;
    uint64_t replays;
    uint64_t conflicts; /* IN_PROGRESS + REUSED */
    uint64_t evictions; /* kept answers dropped for room */
};

struct idem_store;

/* NULL only if max_entries is 0. */
struct idem_store *idem_new(size_t max_entries, int64_t ttl_ms);
void idem_free(struct idem_store *s); /* NULL is fine */

/* Changes the bounds (config reload); shrinking drops the oldest answers
 * (counted as evictions). The new TTL applies to answers already kept. */
void idem_configure(struct idem_store *s, size_t max_entries, int64_t ttl_ms);

/* 1 if key is 1..IDEM_KEY_MAX visible ASCII characters (0x21..0x7e). */
int idem_key_valid(const char *key);

/* caller: the client's name, "" when auth is off (NULL is taken as "").
 * An answer is kept for [stored, stored + ttl_ms): at stored + ttl_ms the
 * key is new again, whatever the body. *answer (answer may be NULL) is set
 * to the kept answer on IDEM_REPLAY and to NULL otherwise. */
enum idem_verdict idem_begin(struct idem_store *s, const char *caller,
                             const char *key,
                             const unsigned char hash[IDEM_HASH_LEN],
                             int64_t now, const struct idem_answer **answer);

/* Stores the answer of an in-flight key, copying it (body_len bytes of
 * body, which may hold NULs; body may be NULL when body_len is 0);
 * ignored if the key is not in flight (unknown, abandoned, or already
 * completed). now starts the TTL. Then drops expired answers, and the
 * oldest ones beyond max_entries (counted as evictions). */
void idem_complete(struct idem_store *s, const char *caller, const char *key,
                   const struct idem_answer *answer, int64_t now);

/* Ignored unless the key is in flight: a kept answer stays. */
void idem_abandon(struct idem_store *s, const char *caller, const char *key);

/* Drops kept answers older than the TTL, oldest first; stops at the first
 * one still kept, so it assumes now does not step back. */
void idem_expire(struct idem_store *s, int64_t now);

void idem_get_stats(const struct idem_store *s, struct idem_stats *st);

/* ---- export and import: the state file (state_file.h) ---- */

/* One entry as the store holds it. From idem_export() every pointer is
 * borrowed from the store and valid during the visit only; for
 * idem_import() they are the caller's, and copied. */
struct idem_record {
    const char *caller; /* "" when auth is off */
    const char *key;
    const unsigned char *body_hash;   /* IDEM_HASH_LEN bytes */
    int64_t stored_at;                /* kept: when stored; in flight: 0 */
    const struct idem_answer *answer; /* NULL: still in flight */
};

/* Returns 0 to go on, anything else to stop the walk. */
typedef int (*idem_visit_fn)(void *arg, const struct idem_record *r);

/* Calls fn for every entry: the kept answers, oldest first, then the keys
 * in flight (answer NULL; what their outcome is, the store cannot know).
 * The store must not change during the walk; stats are not touched.
 * Returns the first nonzero value fn returned, else 0. */
int idem_export(const struct idem_store *s, idem_visit_fn fn, void *arg);

/* Keeps r->answer (required) for (r->caller, r->key), as if stored at
 * min(r->stored_at, now): nothing imported outlives now + ttl, whatever
 * the wall clock did while the gateway was down. 1 kept; 0 dropped
 * (expired at now, or the key is already there: the first one wins);
 * -1 if r is not an entry the store could hold (no answer, a key that is
 * not idem_key_valid()). Import oldest first: like idem_complete(), each
 * kept answer is the newest, and the oldest beyond max_entries go
 * (counted as evictions). */
int idem_import(struct idem_store *s, const struct idem_record *r, int64_t now);

#endif
