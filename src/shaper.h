/* shaper.h - holds requests until their upstream rate slot (ratelimit.h),
 * on one libevent timer, in arrival order. The I/O half of rate shaping:
 * the slot arithmetic and the on-the-wire guard are ratelimit.c's.
 *
 * A submitted item is handed to its go() callback at its slot (at once,
 * from inside shaper_submit(), when the slot is now), or refused when the
 * slot is further than max_queue_ms away. With rate 0 the shaper is off:
 * every item goes at once.
 *
 * Handing over is not leaving: the upstream module may hold a request
 * (waiting for a connection) and then send several at once. So each item
 * handed to go() stays "on its way" until the caller reports how it
 * ended, shaper_left() when its first byte went on the wire or
 * shaper_dropped() when it ended without leaving, and the shaper hands
 * over no more than the 1-second window allows counting those on their
 * way as leaving now (struct rl_guard). The promise "at most rate +
 * burst - 1 in any second" therefore holds where the upstream sees it.
 * No item waits longer than max(its slot, max_queue_ms from its arrival)
 * plus the guard's grace: one the guard still holds then is refused.
 *
 * Shared mode (shaper_share(), state.backend "redis", SPEC section 11):
 * the slots come from one schedule per account and limiter in Redis
 * (src/redis/rl_reserve.lua), the guard is shared by every instance
 * (rl_depart.lua: each hand-over asks it, each departure and answer is
 * reported to it), and a pause is every instance's (rl_pause.lua,
 * rl_resume.lua). Redis's clock is the only one: each reply's wait is
 * relative, taken from the local clock when the reply arrives. A
 * reservation's refusal then comes later, through refuse(). While the
 * link is down (or a command of it fails) the instance uses its own
 * limiter at rate / instances and its own guard at (rate + burst - 1) /
 * instances per window (rounded down, at least 1), and counts those
 * slots (local_slots); back to shared mode by itself once the link is
 * up. A reservation whose answer was lost may have been made in Redis:
 * its slot is wasted, never counted on.
 *
 * The transitions keep the promise across instances (SPEC section 11).
 * Presence: while it shares, an instance says it is alive
 * (rl_depart.lua "alive") every SHAPER_BEAT_MS, carrying its stamp (the
 * last Redis time it received); Redis scores it stamp + SHAPER_ALIVE_MS
 * and refuses a stamp older than that, so a heartbeat held in a frozen
 * Redis and run at the thaw cannot keep it alive: the instance knows its
 * entry is gone by (when that stamp came) + SHAPER_ALIVE_MS. Each ask
 * of the shared guard leaves the share of every instance of
 * state.instances not alive at the grant's time free (room = n -
 * missing x share, share = max(1, floor(n / instances))), so what an
 * instance cut off sends alone at its share never adds to a full
 * window. Fewer instances running than state.instances cost their
 * shares: 3 configured, 1 running at 5/s: 3 a second.
 * - Down (the shaper sees the link down, on an UNAVAILABLE answer or at
 *   its next entry point), or cut off (a reservation or an ask answered
 *   with an error, BUSY, READONLY, OOM, or a reply it cannot read, the
 *   link staying up: the others count it alive all the same; the rejoin
 *   starts SHAPER_BEAT_MS later, doubled at each cut-off in a row until
 *   an ask is answered, up to SHAPER_CUTOFF_MAX_MS, so that asks failing
 *   while the rejoin succeeds neither spin nor starve it): no departure
 *   alone before max(then, its last stamp's arrival + SHAPER_ALIVE_MS)
 *   + SHAPER_GUARD_WINDOW_MS + SHAPER_GUARD_CAP_MS: until its entry is
 *   gone the others grant the
 *   whole window, and what they granted then (up to ~20 ms ahead) must
 *   have arrived a window before its own first one. Queued items keep
 *   waiting (deadlines and grace as usual).
 * - Up again: no wait when Redis's log holds all it did (its first
 *   connect, nothing sent alone). Otherwise the rejoin: a heartbeat
 *   without a stamp (Redis's time), then one "back" with that stamp,
 *   the stamp it had before the drop, and each departure it made alone
 *   whose bound is within the last window (and its hand-overs not left
 *   yet); Redis adds them to the log and the instance is alive again,
 *   atomically, and it shares from the reply on (a few ms: slots come
 *   from Redis's schedule meanwhile; nothing leaves while "back" is on
 *   its way). A link that flapped costs those few ms, not a window.
 *   After a cut-off the rejoin first waits (above; its own limiter gives
 *   the slots meanwhile); cut-offs count "in a row" while each came
 *   less than SHAPER_CUTOFF_MAX_MS of sharing after the last rejoin, and
 *   a real drop clears the wait. Without presence (the guard off) a
 *   cut-off changes nothing and a link back up shares at once.
 * - Redis lost its log (restarted empty, flushed, a failover): "back"
 *   (or a heartbeat with a stamp) finds no log, or one begun after the
 *   stamp the instance had before: every instance's departures of the
 *   window before the log began are unknown, so no grant to anyone
 *   before its start + SHAPER_GUARD_WINDOW_MS + SHAPER_GUARD_CAP_MS
 *   (rl_depart's hold; logged "limiter: Redis lost its departure log").
 * Each switch is logged (info "limiter: local (Redis unreachable)",
 * "limiter: rejoining (N departures of its own to tell)", "limiter:
 * shared") and counted (mode_changes). The shaper is told of the link's
 * flips (shaper_link_changed()) and also checks the link at each entry
 * point and failed answer; a drop noticed late cannot shorten the quiet
 * (it counts from the last stamp's arrival). The presence keys are
 * <base>alive:<limiter>, log:<limiter> and hold:<limiter>; heartbeats
 * run only for a limiter that is on. */
#ifndef WAGATE_SHAPER_H
#define WAGATE_SHAPER_H

/* The on-the-wire guard (ratelimit.h's rl_guard): no more than the
 * limit's worth of arrivals upstream within the provider's window. A
 * request's arrival is bounded by its departure (the pre-request
 * callback) + SHAPER_GUARD_CAP_MS until its answer comes, then by the
 * answer's time (an answer comes after its request arrived).
 *
 * The cap is the way from that callback to the upstream's clock: a
 * 100-caller burst on 2 cores delayed some requests by up to 21 ms (5 ms
 * of margin let the sandbox see 6 in a second in 6 runs of 10). Counted
 * from departures alone (a 1040 ms window before) the guard cost 4% of
 * the rate: 51 queued sends at 5/s drained in 10.4 s instead of 10, and
 * the last ones, held past their bound, were refused late. Bounded by
 * the answer it costs only what the answer really takes: the item five
 * places on waits for answer + window instead of its slot, measured
 * 1-4 ms later on 2 loaded cores; a slow upstream (an answer later than
 * the cap) costs the cap, as before.
 *
 * Those few ms add up along a queue (each fifth item waits for the one
 * five before it, already late): about (max_queue_ms / window) x 4 ms,
 * 40 ms for a 10 s queue. An item the guard holds is refused only
 * SHAPER_GUARD_GRACE_MS(max_queue_ms) after its bound: 20 ms + 2 % of
 * the queue, room for 20 ms per window. */
#define SHAPER_GUARD_WINDOW_MS 1000.0
#define SHAPER_GUARD_CAP_MS 40.0
#define SHAPER_GUARD_GRACE_MS(max_queue_ms)                                    \
    (20.0 + (double)(max_queue_ms) / 50.0)

/* Shared mode, presence: an instance's alive entry in Redis is scored
 * its stamp (a Redis time it received) + SHAPER_ALIVE_MS; it says so
 * every SHAPER_BEAT_MS while sharing. Beats of 100 ms keep an entry
 * alive through three lost ones; 400 ms is also what a drop costs
 * before the others leave its share free. */
#define SHAPER_ALIVE_MS 400.0
#define SHAPER_BEAT_MS 100.0
/* The longest wait before the rejoin after cut-offs in a row (each one
 * doubles it from SHAPER_BEAT_MS): longer than the quiet, so that an
 * instance whose asks keep failing still sends its share alone. */
#define SHAPER_CUTOFF_MAX_MS 5000.0

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "redis_link.h"

struct event_base;
struct shaper;

typedef void (*shaper_go)(void *item);
/* An item already waiting is refused after all: a pause moved its slot
 * beyond max_queue_ms, or the on-the-wire guard held it past its bound,
 * max(its slot, its arrival + max_queue_ms) (requests stuck on their way,
 * e.g. a hanging upstream behind few connections, would otherwise hold it
 * for as long as they hang). retry_after_s >= 1. */
typedef void (*shaper_refuse)(void *item, long retry_after_s);

struct shaper_stats {
    size_t depth; /* items waiting now */
    uint64_t submitted;
    uint64_t refused;     /* slot too far: answered 429 */
    uint64_t waited;      /* items that had to wait for a later slot */
    double wait_ms_total; /* sum of their waits */
    double wait_ms_max;
    uint64_t pauses;       /* upstream 429s that paused the limiter */
    size_t on_the_way;     /* handed over, not left yet */
    uint64_t local_slots;  /* shared mode: slots the instance's own limiter
                              gave while Redis was unreachable */
    size_t reserving;      /* shared mode: reservations awaiting Redis */
    uint64_t mode_changes; /* shared mode: switches shared <-> local */
    uint64_t cutoffs;      /* shared mode: went local on an error reply */
};

/* rate 0 = unlimited. */
struct shaper *shaper_new(struct event_base *base, double rate, long burst,
                          long long max_queue_ms);

/* New settings (reload); items already waiting keep their slots. */
void shaper_configure(struct shaper *s, double rate, long burst,
                      long long max_queue_ms);

/* 0 when item will be (or already was) handed to go(), or to refuse() if
 * a later pause pushes it beyond the bound; -1 when refused now, with
 * *retry_after_s >= 1 (whole seconds for a Retry-After header). In shared
 * mode the answer usually comes later (0 now, then go() or refuse() from
 * the loop); -1 only when the instance's own limiter refuses at once
 * (Redis unreachable). refuse() never runs inside shaper_submit(). item
 * is borrowed until one of the callbacks runs, shaper_cancel() takes it
 * back, or the shaper is freed. */
int shaper_submit(struct shaper *s, void *item, shaper_go go,
                  shaper_refuse refuse, long *retry_after_s);

/* Exactly one of these per item handed to go(). They may be called from
 * inside a libcurl callback: they only re-arm the timer, never call go().
 * shaper_left() returns the departure's ticket (0 when the guard is off)
 * for shaper_answered(). */
uint64_t shaper_left(struct shaper *s); /* its first byte left, now */
void shaper_dropped(struct shaper *s);  /* it ended without leaving */

/* The upstream's answer to the request that left with ticket came now
 * (a valid HTTP answer, not a failure): it arrived no later, which frees
 * the guard's window sooner than departure + cap. Optional; at most once
 * per ticket, any time after shaper_left(); 0 is ignored. */
void shaper_answered(struct shaper *s, uint64_t ticket);

/* Takes a waiting item back without a call (a drain giving up on it),
 * also while its reservation is still awaited from Redis (the
 * reservation may still be made there); 1 if it was waiting, 0 if it is
 * not in the queue. Its slot stays used. */
int shaper_cancel(struct shaper *s, void *item);

/* Takes back every waiting item for which match(item, arg) is 1 (a
 * refusal just learned: they are answered without a slot), calling
 * back(item, arg) for each once the queue is whole again (back may answer and
 * free it; it must not call the shaper). The items left move up, in
 * order, into the slots that were the queue's first (a backlog behind a
 * refused sender drains as if the refused sends had never come); the
 * slots freed at the end are given back to the limiter (memory mode; in
 * shared mode they are Redis's, and wasted). Also takes back items
 * whose shared reservation is still awaited (it may still be made in
 * Redis). Returns how many were taken. */
typedef int (*shaper_match)(void *item, void *arg);
typedef void (*shaper_back)(void *item, void *arg);
size_t shaper_withdraw(struct shaper *s, shaper_match match, shaper_back back,
                       void *arg);

/* The upstream said 429: no slot before pause_ms from now; waiting items
 * move back by the same delay, keeping their spacing; those whose slot is
 * now further than max_queue_ms away are refused (their slots released). */
void shaper_pause(struct shaper *s, double pause_ms);

/* Ends a pause now (DELETE /admin/pause, a reload); waiting items get new
 * slots from now on, in order, at the normal spacing after the last slot
 * reached. Returns 1 if a pause was in force, 0 otherwise (nothing
 * changes then). */
int shaper_resume(struct shaper *s);

void shaper_get_stats(const struct shaper *s, struct shaper_stats *st);

/* Frees the shaper; waiting items are dropped without a call, its
 * commands to Redis are cancelled (so: before the link). NULL ok. */
void shaper_free(struct shaper *s);

/* ---- shared mode ---- */

/* How the shaper reaches Redis: redis_link.h's calls on a link (main.c
 * passes rlink_eval, rlink_cancel, rlink_up), or a test's. link is
 * borrowed and must outlive the shaper. */
struct shaper_link {
    struct rlink *link;
    struct rlink_cmd *(*eval)(struct rlink *l, size_t script, int nkeys,
                              int argc, const char *const *argv,
                              const size_t *argvlen, rlink_reply_cb cb,
                              void *arg);
    void (*cancel)(struct rlink *l, struct rlink_cmd *c);
    int (*up)(const struct rlink *l);
};

struct shaper_share {
    struct shaper_link link;
    const char *key_base; /* "<prefix>{<account>}:" (copied) */
    const char *limiter;  /* "send" or "read" (copied): the keys are
                             rl:<limiter>, pause:<limiter>, dep:<limiter> */
    double instances;     /* state.instances (>= 1) */
    /* the longest a request handed over may wait before it leaves
     * (upstream.timeout_ms): the shared guard's bound for one whose
     * departure was never reported (its instance died) */
    double pending_ms;
};

/* Turns shared mode on, or (called again, on a reload) takes new
 * instances and pending_ms (the link and keys stay). Items already
 * waiting keep their slots. */
void shaper_share(struct shaper *s, const struct shaper_share *share);

/* The link just went up or down (main.c calls it from redis_link.h's
 * on_change): the transition (see the top) starts now rather than at
 * the shaper's next entry point, which may come after a quick drop and
 * reconnect (a restarted Redis is back within ~100 ms) and miss it. */
void shaper_link_changed(struct shaper *s);

/* ---- the clock, for tests ----
 * The shaper reads the monotonic clock, clock_mono_ms(), once in each
 * entry point (and once more to set its libevent timer, which is
 * relative). A test gives it another clock to drive the queue, the guard,
 * pauses and deadlines with time it sets, and plays the timer itself,
 * never running the event loop: shaper_next_ms() says when the timer
 * would fire, shaper_run() does what it does then. */
typedef double (*shaper_clock)(void *ctx); /* ms, never going back */

/* clock NULL: clock_mono_ms() again. ctx is borrowed. Set it before the
 * first submit: times already held are on the old clock. */
void shaper_set_clock(struct shaper *s, shaper_clock clock, void *ctx);

/* When the timer is set to fire, ms on the shaper's clock (possibly in the
 * past: at once); INFINITY when nothing waits. */
double shaper_next_ms(const struct shaper *s);

/* What the timer does when it fires: hands over what is due at the
 * clock's now (its slot reached and the guard open), refuses what reached
 * its bound, and sets the timer for the next. */
void shaper_run(struct shaper *s);

/* How long an upstream 429's Retry-After value pauses the limiter, in ms
 * (pure; now is the wall clock in seconds). delta-seconds ("120") or an
 * HTTP date in the future count from now; anything else (absent, empty,
 * negative, garbage, a date not in the future) means default_ms. The
 * result is at most max_ms (upstream.max_pause_ms), so that no answer can
 * stop every send for longer. */
double shaper_retry_after_ms(const char *value, time_t now, double default_ms,
                             double max_ms);

#endif
