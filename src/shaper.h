/* shaper.h - holds requests until their upstream rate slot (ratelimit.h),
 * on one libevent timer, in arrival order. The I/O half of rate shaping:
 * the slot arithmetic is ratelimit.c's.
 *
 * A submitted item is handed to its go() callback at its slot (at once,
 * from inside shaper_submit(), when the slot is now), or refused when the
 * slot is further than max_queue_ms away. With rate 0 the shaper is off:
 * every item goes at once. */
#ifndef WAGATE_SHAPER_H
#define WAGATE_SHAPER_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct shaper;

typedef void (*shaper_go)(void *item);
/* An item already waiting is refused after all: a pause moved its slot
 * beyond max_queue_ms. retry_after_s >= 1. */
typedef void (*shaper_refuse)(void *item, long retry_after_s);

struct shaper_stats {
    size_t depth;          /* items waiting now */
    uint64_t submitted;
    uint64_t refused;      /* slot too far: answered 429 */
    uint64_t waited;       /* items that had to wait for a later slot */
    double wait_ms_total;  /* sum of their waits */
    double wait_ms_max;
    uint64_t pauses;       /* upstream 429s that paused the limiter */
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
 * borrowed until one of the callbacks runs or the shaper is freed. */
int shaper_submit(struct shaper *s, void *item, shaper_go go,
                  shaper_refuse refuse, long *retry_after_s);

/* The upstream said 429: no slot before pause_ms from now; waiting items
 * move back by the same delay, keeping their spacing; those whose slot is
 * now further than max_queue_ms away are refused (their slots released). */
void shaper_pause(struct shaper *s, double pause_ms);

void shaper_get_stats(const struct shaper *s, struct shaper_stats *st);

/* Frees the shaper; waiting items are dropped without a call. NULL ok. */
void shaper_free(struct shaper *s);

#endif
