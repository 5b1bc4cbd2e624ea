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
 * No item waits longer than max(its slot, max_queue_ms from its arrival):
 * one the guard still holds then is refused. */
#ifndef WAGATE_SHAPER_H
#define WAGATE_SHAPER_H

/* The on-the-wire guard's window: no more than the limit's worth of
 * departures (counted in the pre-request callback) within it. It is the
 * provider's 1-second window plus the way from that callback to the
 * upstream's clock: a 100-caller burst on 2 cores delayed some requests by
 * up to 21 ms (5 ms of margin let the sandbox see 6 in a second in 6 runs
 * of 10); 40 ms costs 4% of the rate (4.8/s sustained at 5/s). */
#define SHAPER_GUARD_WINDOW_MS 1040.0

#include <stddef.h>
#include <stdint.h>
#include <time.h>

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
    size_t depth;          /* items waiting now */
    uint64_t submitted;
    uint64_t refused;      /* slot too far: answered 429 */
    uint64_t waited;       /* items that had to wait for a later slot */
    double wait_ms_total;  /* sum of their waits */
    double wait_ms_max;
    uint64_t pauses;       /* upstream 429s that paused the limiter */
    size_t on_the_way;     /* handed over, not left yet */
};

/* rate 0 = unlimited. */
struct shaper *shaper_new(struct event_base *base, double rate, long burst,
                          long long max_queue_ms);

/* New settings (reload); items already waiting keep their slots. */
void shaper_configure(struct shaper *s, double rate, long burst,
                      long long max_queue_ms);

/* 0 when item will be (or already was) handed to go(), or to refuse() if
 * a later pause pushes it beyond the bound; -1 when refused now, with
 * *retry_after_s >= 1 (whole seconds for a Retry-After header). item is
 * borrowed until one of the callbacks runs, shaper_cancel() takes it
 * back, or the shaper is freed. */
int shaper_submit(struct shaper *s, void *item, shaper_go go,
                  shaper_refuse refuse, long *retry_after_s);

/* Exactly one of these per item handed to go(). They may be called from
 * inside a libcurl callback: they only re-arm the timer, never call go(). */
void shaper_left(struct shaper *s);    /* its first byte left, now */
void shaper_dropped(struct shaper *s); /* it ended without leaving */

/* Takes a waiting item back without a call (a drain giving up on it);
 * 1 if it was waiting, 0 if it is not in the queue. Its slot stays used. */
int shaper_cancel(struct shaper *s, void *item);

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

/* Frees the shaper; waiting items are dropped without a call. NULL ok. */
void shaper_free(struct shaper *s);

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
