/* state.h - the questions the pipeline asks of the gateway's state, and
 * the backends that answer them: idempotency keys (SPEC section 5), the
 * session cache (section 4) and the learned refusals (section 4a). The memory
 * backend (state_memory.c) answers from the pure cores idempotency.c and
 * session_cache.c in the same call; a shared one (Redis, section 11) answers
 * later, from the event loop.
 *
 * Every operation takes a completion callback cb and its argument arg;
 * cb runs exactly once, unless the operation is cancelled:
 *   - either before the call returns: the call returns NULL, and arg may
 *     already be gone (cb may have ended the exchange), so the caller
 *     must not touch it after the call;
 *   - or later, from the loop: the call returns a handle, the backend's,
 *     valid until cb runs or state_cancel() is called.
 * What an operation is given is borrowed for the call only (a backend that
 * answers later copies what it needs), and cb may free it: a backend that
 * answers within the call calls cb last. What cb is given is valid during
 * cb only. cb may be NULL where said (nobody waits: the operation still
 * takes effect, and the call returns NULL).
 *
 * Every answer carries a status. STATE_UNAVAILABLE means the store could
 * not be asked (a shared store down or slower than its timeout); the
 * pipeline then does what SPEC section 11 says of degraded mode. The
 * memory backend is always STATE_OK.
 *
 * The rate slot is the fourth kind of state question. Its interface is
 * shaper.h: shaper_submit() answers through its go and refuse callbacks,
 * at once or from the loop, shaper_left()/shaper_dropped() report the
 * request's fate, and shaper_pause() spreads an upstream 429; a shared
 * limiter fits behind those without changing the pipeline. */
#ifndef WAGATE_STATE_H
#define WAGATE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "idempotency.h"
#include "refusals.h"
#include "route.h"
#include "session_cache.h"

struct event_base;
struct state;
struct state_op;    /* a pending operation; the backend's */
struct state_claim; /* a key held in flight; its holder's (see below) */

enum state_status {
    STATE_OK = 0,
    STATE_UNAVAILABLE, /* the store could not be asked */
};

typedef void (*state_done_cb)(void *arg, enum state_status status);

/* ---- idempotency (SPEC section 5) ----
 *
 * begin: the key's verdict (idempotency.h: new, replay, in progress,
 * reused); a new key is claimed, in flight, and the claim is the
 * callback's to settle. sent: the claim's request is about to leave (a
 * shared store records it, so that a claim whose instance dies before is
 * freed by its lease, one whose instance dies after becomes an unknown
 * outcome); the request leaves only once this answered STATE_OK. finish:
 * keeps an answer for the key, or frees it; it consumes the claim. A
 * shared store holds a fencing token in the claim: a finish whose claim no
 * longer holds writes nothing. */

struct state_idem_verdict {
    enum state_status status;
    enum idem_verdict verdict;        /* when status is STATE_OK */
    const struct idem_answer *answer; /* IDEM_REPLAY: the kept answer */
    struct state_claim *claim;        /* IDEM_NEW: now the callback's */
};

typedef void (*state_begin_cb)(void *arg, const struct state_idem_verdict *v);

/* caller: the client's name, "" when auth is off; hash: the SHA-256 of the
 * request body. */
struct state_op *state_idem_begin(struct state *st, const char *caller,
                                  const char *key,
                                  const unsigned char hash[IDEM_HASH_LEN],
                                  state_begin_cb cb, void *arg);

/* claim stays the caller's. cb gets STATE_OK only when the store
 * recorded the send: a shared store whose claim no longer holds (its
 * lease ran out and another instance claimed the key) answers
 * STATE_UNAVAILABLE, and the request must not leave. */
struct state_op *state_idem_sent(struct state *st, struct state_claim *claim,
                                 state_done_cb cb, void *arg);

/* Keeps answer for the claim's key (NULL: frees the key) and frees the
 * claim, whatever the outcome. cb may be NULL. */
struct state_op *state_idem_finish(struct state *st, struct state_claim *claim,
                                   const struct idem_answer *answer,
                                   state_done_cb cb, void *arg);

/* Frees a claim without settling it (teardown: the store goes too). */
void state_claim_drop(struct state *st, struct state_claim *claim);

/* ---- the session cache (SPEC section 4) ---- */

struct state_window {
    enum state_status status;
    enum cache_decision decision; /* CACHE_FORWARD unless STATE_OK */
    int64_t expired_at;           /* on CACHE_SHORT_CIRCUIT, or UNKNOWN */
};

typedef void (*state_window_cb)(void *arg, const struct state_window *w);

/* Decides a send-freeform to (sender, phone) (session_cache.h's
 * cache_decide; recheck_ms is session_cache.recheck_after_s in ms). */
struct state_op *state_cache_decide(struct state *st, int64_t sender,
                                    uint64_t phone, int64_t recheck_ms,
                                    state_window_cb cb, void *arg);

/* An upstream answer, to learn from (learn.h). */
struct state_answer {
    enum route_id route;
    long long sender; /* -1 when unknown */
    uint64_t phone;   /* precheck_phone_key(), 0 when unknown */
    int status;
    const char *body;
    size_t len;
    int senders_all; /* ROUTE_SENDERS: the list was ?status=all */
};

/* Teaches the cache what the answer says, if anything. cb may be NULL. */
struct state_op *state_cache_learn(struct state *st,
                                   const struct state_answer *a,
                                   state_done_cb cb, void *arg);

/* ---- the admin API's window operations (SPEC section 7) ----
 * With a shared backend they act on the shared state: an inbound event
 * told to one instance opens the window for all. */

struct state_window_view {
    enum state_status status;
    int found;           /* 0: no entry (404 SESSION_NOT_FOUND) */
    struct cache_view v; /* when found */
};

typedef void (*state_view_cb)(void *arg, const struct state_window_view *w);

/* GET /admin/sessions (cache_get; recheck_ms as for decide). */
struct state_op *state_cache_get(struct state *st, int64_t sender,
                                 uint64_t phone, int64_t recheck_ms,
                                 state_view_cb cb, void *arg);

/* DELETE /admin/sessions (cache_forget). cb may be NULL. */
struct state_op *state_cache_forget(struct state *st, int64_t sender,
                                    uint64_t phone, state_done_cb cb,
                                    void *arg);

/* POST /admin/sessions/inbound: open until expires_at (ms since the
 * epoch: the event's own time + 24 h) or, with for_ms > 0, for for_ms from
 * the store's own now (no time given: a shared store's clock decides, not
 * this gateway's); source CACHE_SRC_INBOUND (cache_learn_open). cb may be
 * NULL. */
struct state_op *state_cache_open(struct state *st, int64_t sender,
                                  uint64_t phone, int64_t expires_at,
                                  int64_t for_ms, state_done_cb cb, void *arg);

/* ---- learned refusals (SPEC section 4a) ----
 * Shaped like the cache's decide and learn; refusals.h is the contract of
 * what is learned, trusted and probed (the memory backend is that store;
 * a shared one keeps the same entries for every instance). The trust
 * periods are given at each call (a reload applies); the pipeline asks
 * between idempotency and the session cache (pipeline.c, step_refusals)
 * and teaches every send's answer and every senders list. */

struct state_refusal {
    enum state_status status;
    enum refusal_decision decision; /* REFUSAL_FORWARD unless STATE_OK */
    struct refusal_answer answer;   /* on REFUSAL_ANSWER */
};

typedef void (*state_refusal_cb)(void *arg, const struct state_refusal *r);

/* Decides a send from sender on route (refusals_decide). */
struct state_op *state_refusal_decide(struct state *st, enum route_id route,
                                      int64_t sender,
                                      const struct refusal_trust *t,
                                      state_refusal_cb cb, void *arg);

/* Teaches what a send's answer, or a senders list's (a->route
 * ROUTE_SENDERS, a->senders_all), says of the refusals. cb may be NULL. */
struct state_op *state_refusal_learn(struct state *st,
                                     const struct state_answer *a,
                                     const struct refusal_trust *t,
                                     state_done_cb cb, void *arg);

/* A probe that was not spent (refusals_unprobe(): its send never
 * reached the upstream, or the answer said nothing of the refusal): the
 * entry gets back the checked_at the probe replaced, if it is still the
 * one the probe marked. p is the decide's answer (kind, probed_at,
 * was_checked_at; opaque stamps of the backend's clock). cb may be
 * NULL. */
struct state_op *state_refusal_unprobe(struct state *st, int64_t sender,
                                       const struct refusal_answer *p,
                                       state_done_cb cb, void *arg);

/* GET /admin/refusals: cb gets every entry (refusals_list's order), then
 * is called once more with v NULL to end (status says whether the list
 * is whole). */
typedef void (*state_refusal_view_cb)(void *arg, enum state_status status,
                                      const struct refusal_view *v);
struct state_op *state_refusal_list(struct state *st,
                                    const struct refusal_trust *t,
                                    state_refusal_view_cb cb, void *arg);

/* DELETE /admin/refusals: forgets sender's entry (sender >= 1) or the
 * balance (sender 0). cb gets STATE_OK and found 1/0, or STATE_UNAVAILABLE. */
typedef void (*state_found_cb)(void *arg, enum state_status status, int found);
struct state_op *state_refusal_forget(struct state *st, int64_t sender,
                                      state_found_cb cb, void *arg);

/* ---- the backend's own counts ----
 * Answers it gave as the store's fallback (SPEC section 11's degraded
 * mode): idempotency operations answered STATE_UNAVAILABLE, and window
 * operations answered "no entry" (or UNAVAILABLE) because the store could
 * not be asked. Always 0 for the memory backend. */
struct state_stats {
    uint64_t idem_unavailable, cache_unavailable;
    /* the Redis backend's (state_redis.c) besides: */
    uint64_t idem_fenced;  /* sent or finish whose claim no longer held:
                              nothing written, nothing sent */
    uint64_t idem_unknown; /* unknown outcomes replayed: a key whose
                              instance stopped after sending */
    uint64_t corrupt;      /* values or replies that did not decode
                              (counted as unavailable too) */
    uint64_t refusal_unavailable; /* refusal operations answered "no
                                     entry" (forward) for want of the store */
    int64_t refusal_entries;      /* entries held (the memory store's count;
                                     a shared store's as last read), -1 when
                                     not known */
};

void state_get_stats(const struct state *st, struct state_stats *s);

/* The answer replayed for a key whose instance stopped after sending it
 * (SPEC section 5, "outcome": "unknown"): GW_ERR_STOPPED_UNKNOWN's row,
 * one JSON header. The backends that keep keys past the process (the
 * state file, Redis) build it once; answer points into body, so the
 * struct must not move after state_unknown_init(). state_unknown_free()
 * frees body (on a zeroed struct it does nothing). */
struct state_unknown {
    struct evbuffer *body;
    struct idem_header header;
    struct idem_answer answer;
};
void state_unknown_init(struct state_unknown *u);
void state_unknown_free(struct state_unknown *u);

/* ---- every operation ---- */

/* cb of op will not run. What op does still takes effect (a shared store
 * may already have run it); a claim that a cancelled begin made is freed
 * by the backend. */
void state_cancel(struct state *st, struct state_op *op);

/* The drain's last step: done(arg) runs once every operation asked so far
 * has taken effect (at once, within the call, when none is pending), so
 * that what the gateway was told before it stops is recorded. A backend
 * bounds the wait (a remote one by its timeout). */
void state_flush(struct state *st, void (*done)(void *arg), void *arg);

/* Frees the backend (NULL is fine); pending operations are dropped
 * without their callbacks, so every claim and handle of it must be gone
 * first (the exchanges are freed before it). */
void state_free(struct state *st);

/* ---- backends ---- */

/* The memory backend over idem, cache and refusals (borrowed; they
 * outlive it; refusals may be NULL: none kept, every send forwarded).
 * delay_ms 0 answers every operation within the call, as the pure cores
 * do; above 0 (tests only: WAGATE_TEST_STATE_DELAY_MS) each operation
 * runs and answers delay_ms later from a timer on base, in the order
 * asked, as a remote store would. */
struct state *state_memory_new(struct event_base *base, struct idem_store *idem,
                               struct session_cache *cache,
                               struct refusals *refusals, long delay_ms);

/* The Redis backend (state_redis.c, SPEC section 11) over link
 * (redis_link.h; borrowed, outlives the backend). key_base is
 * "<prefix>{<account>}:" (copied): every key starts with it. *cfg is
 * read at each operation (idempotency.ttl_s, the leases derived from the
 * queue and upstream timeouts), so a reload applies; the pointer it
 * points to must outlive the backend. */
struct rlink;
struct config;
struct state *state_redis_new(struct event_base *base, struct rlink *link,
                              const char *key_base,
                              const struct config *const *cfg);

/* What a backend provides: one function per operation above, with the
 * same contract. A backend's own struct starts with struct state. */
struct state_backend {
    struct state_op *(*idem_begin)(struct state *st, const char *caller,
                                   const char *key, const unsigned char *hash,
                                   state_begin_cb cb, void *arg);
    struct state_op *(*idem_sent)(struct state *st, struct state_claim *claim,
                                  state_done_cb cb, void *arg);
    struct state_op *(*idem_finish)(struct state *st, struct state_claim *claim,
                                    const struct idem_answer *answer,
                                    state_done_cb cb, void *arg);
    void (*claim_drop)(struct state *st, struct state_claim *claim);
    struct state_op *(*cache_decide)(struct state *st, int64_t sender,
                                     uint64_t phone, int64_t recheck_ms,
                                     state_window_cb cb, void *arg);
    struct state_op *(*cache_learn)(struct state *st,
                                    const struct state_answer *a,
                                    state_done_cb cb, void *arg);
    struct state_op *(*cache_get)(struct state *st, int64_t sender,
                                  uint64_t phone, int64_t recheck_ms,
                                  state_view_cb cb, void *arg);
    struct state_op *(*cache_forget)(struct state *st, int64_t sender,
                                     uint64_t phone, state_done_cb cb,
                                     void *arg);
    struct state_op *(*cache_open)(struct state *st, int64_t sender,
                                   uint64_t phone, int64_t expires_at,
                                   int64_t for_ms, state_done_cb cb, void *arg);
    struct state_op *(*refusal_decide)(struct state *st, enum route_id route,
                                       int64_t sender,
                                       const struct refusal_trust *t,
                                       state_refusal_cb cb, void *arg);
    struct state_op *(*refusal_learn)(struct state *st,
                                      const struct state_answer *a,
                                      const struct refusal_trust *t,
                                      state_done_cb cb, void *arg);
    struct state_op *(*refusal_unprobe)(struct state *st, int64_t sender,
                                        const struct refusal_answer *p,
                                        state_done_cb cb, void *arg);
    struct state_op *(*refusal_list)(struct state *st,
                                     const struct refusal_trust *t,
                                     state_refusal_view_cb cb, void *arg);
    struct state_op *(*refusal_forget)(struct state *st, int64_t sender,
                                       state_found_cb cb, void *arg);
    void (*stats)(const struct state *st, struct state_stats *s);
    void (*cancel)(struct state *st, struct state_op *op);
    void (*flush)(struct state *st, void (*done)(void *arg), void *arg);
    void (*free)(struct state *st);
};

struct state {
    const struct state_backend *be;
};

#endif
