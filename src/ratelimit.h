/* ratelimit.h - the upstream rate limiter: GCRA (a theoretical arrival
 * time advanced by 1/rate per request), SPEC section 6. Pure: every call
 * takes the current time in ms (any monotonic origin); no I/O, no clock.
 *
 * A request that passed the pre-check reserves the next free slot and waits
 * for it (queued, not refused): slot = max(now, tat - tau, paused_until),
 * then tat = max(tat, slot) + T, with T = 1000/rate and tau = (burst-1)*T.
 * With burst 1 slots are at least T apart; with burst b, b may go at once
 * and any 1-second window [t, t + 1000) holds at most rate + b - 1. Idle
 * time refills the burst, never beyond b. A slot further than max_wait_ms
 * away is refused and consumes nothing. An upstream 429 pauses the
 * limiter: no slot before now + pause, and slots already handed out but
 * not yet reached are shifted by the same delay so that they keep their
 * spacing.
 *
 * Slots are doubles in ms and not rounded: the caller's timer should fire
 * at or after a slot, never before it (round up). Slot k of an unbroken
 * queue is computed as start + k * T, not by adding T k times, so a long
 * queue at a rate like 3/s does not drift. */
#ifndef WAGATE_RATELIMIT_H
#define WAGATE_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

/* Owned by the caller (embed it or allocate it); no resources inside.
 * Read the fields if you like; change them only through rl_*(). */
struct rl {
    double interval_ms;  /* T */
    double tau_ms;       /* (burst - 1) * T */
    double tat_ms;       /* theoretical arrival time of the next request,
                            = run_start_ms + run_len * T; -inf at first */
    double paused_until; /* no slot before this; -inf at first */
    double run_start_ms; /* where the current unbroken run of tat began */
    int64_t run_len;     /* T steps since run_start_ms */
};

/* rate > 0 requests per second, burst >= 1 (a smaller burst counts as 1).
 * The first reservation, at any now, goes at once. */
void rl_init(struct rl *rl, double rate, long burst);

/* Changes rate and burst (config reload) keeping the schedule: slots
 * already handed out stand; the next ones follow the new rate, as if the
 * latest reservation had been made at the new rate (the next queued slot
 * comes the new T after it, not the old one). */
void rl_configure(struct rl *rl, double rate, long burst);

/* Reserves a slot. Returns 0 and *slot_ms (>= now) when the slot is at most
 * max_wait_ms away; -1 when not, consuming nothing and leaving *slot_ms
 * alone (rl_retry_after_ms() then says how long to wait). */
int rl_reserve(struct rl *rl, double now, double max_wait_ms, double *slot_ms);

/* How long (ms, >= 1) until a request would be accepted again if nobody
 * else came: the time until its slot is within max_wait_ms, i.e.
 * (slot - now) - max_wait_ms, but at least 1. Meant for right after
 * rl_reserve() returned -1 with the same now and max_wait_ms. */
double rl_retry_after_ms(const struct rl *rl, double now, double max_wait_ms);

/* Pauses for pause_ms from now: no slot before now + pause_ms (an earlier,
 * longer pause still holds: the later end wins). first_pending_slot is the
 * earliest slot handed out and not yet reached (negative when none).
 * Returns the delay (>= 0) by which every pending slot must be moved, so
 * that the first lands at the pause's end; tat moves with them, so new
 * reservations come after the moved ones. With no pending slot it returns
 * 0 and the next reservation goes at the pause's end (with burst b, up to
 * b may go there at once: the pause was idle time). */
double rl_pause(struct rl *rl, double now, double pause_ms,
                double first_pending_slot);

/* Ends a pause early (admin, reload): forgets paused_until and restarts
 * the schedule as if the latest slot reached had been last_slot_ms
 * (-INFINITY when none was): the next
 * reservation comes at max(now, last_slot_ms + T - tau). Slots handed out
 * and not reached are void: reserve them again, in order. */
void rl_restart(struct rl *rl, double last_slot_ms);

/* Gives back the last n slots handed out (none of them reached: their
 * requests were refused after a pause pushed them beyond the queue bound),
 * so that the next reservations are not pushed back for nothing. */
void rl_release(struct rl *rl, int64_t n);

/* ---- the on-the-wire guard ----
 *
 * Slots say when a request may be handed over; the 1-second promise is
 * about when it reaches the upstream, and the two differ: timers fire
 * late, a handed request may wait for a connection and then leave
 * together with others, and a request that left takes a while to arrive.
 * The guard keeps, for each request handed over, an upper bound of its
 * arrival upstream:
 *   handed, not left yet:  none (it may arrive at any moment from now);
 *   left at t:             t + cap_ms (the way to the upstream's clock);
 *   answered at t':        min(that, t'): an answer comes after its
 *                          request arrived.
 * With n the most a window may hold (rate + burst - 1), a request is
 * handed over at now only while
 *   pending + (bounds > now - window_ms)  <=  n - 1,
 * pending being the requests handed over that have not left yet. Its
 * arrival is >= now, so no window_ms-long interval of arrivals ever holds
 * more than n, however the departures bunch. With cap 0 the bounds are
 * the departure times themselves (the guard counts departures).
 * Every handed request must end as rl_guard_left() or rl_guard_dropped();
 * one that left may then be rl_guard_answered().
 * Pure: times in ms on the caller's monotonic clock. */
struct rl_guard {
    double *b;      /* the last bounds that can matter, ascending; owned */
    uint64_t *id;   /* the departure ticket of each b[i]; owned */
    size_t n;       /* 0 = off */
    size_t count;   /* bounds kept, <= n */
    size_t pending; /* handed over, not left yet */
    double window_ms;
    double cap_ms;    /* 0 unless rl_guard_set_cap() */
    uint64_t next_id; /* the next departure's ticket (>= 1) */
};

/* n = 0 turns the guard off (every time is fine). window_ms > 0. */
void rl_guard_init(struct rl_guard *g, size_t n, double window_ms);

/* The bound of a departure not answered yet is its time + cap_ms. */
void rl_guard_set_cap(struct rl_guard *g, double cap_ms);

/* A new n (reload): the largest bounds and the pending count are kept. */
void rl_guard_resize(struct rl_guard *g, size_t n);

void rl_guard_free(struct rl_guard *g);

/* The earliest time the next request may be handed over: -INFINITY when
 * at once, INFINITY while only a pending request's end can free room. */
double rl_guard_until(const struct rl_guard *g);

void rl_guard_handed(struct rl_guard *g);

/* A handed request left at now (its first byte went out). Returns its
 * ticket for rl_guard_answered() (>= 1; 0 when the guard is off). */
uint64_t rl_guard_left(struct rl_guard *g, double now);

/* The answer of the request that left with ticket came at now: its
 * arrival was no later. A ticket no longer kept (its bound can no longer
 * matter) or 0 is ignored. */
void rl_guard_answered(struct rl_guard *g, uint64_t ticket, double now);

/* A handed request ended without leaving. */
void rl_guard_dropped(struct rl_guard *g);

#endif
