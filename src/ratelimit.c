/* ratelimit.c - see ratelimit.h.
 *
 * tat is kept as an anchor plus a count of intervals (run_start_ms +
 * run_len * T) rather than advanced by adding T each time: T = 1000/rate is
 * rarely exact in binary, and tat + T rounds the same way at every step
 * while tat stays in one binade, so summing drifts linearly (about 1 ms per
 * 10,000 requests at rate 3 on a clock near 1.7e12 ms). The anchor moves
 * only when the run breaks (an idle gap, a pause, a new rate), each move
 * costing one rounding and not one per request. */
#include "ratelimit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

static double
rl_max(double a, double b)
{
    return a > b ? a : b;
}

static void
rl_sync_tat(struct rl *rl)
{
    rl->tat_ms = rl->run_start_ms + (double)rl->run_len * rl->interval_ms;
}

static void
rl_set_rate(struct rl *rl, double rate, long burst)
{
    if (burst < 1)
        burst = 1;
    rl->interval_ms = 1000.0 / rate;
    rl->tau_ms = (double)(burst - 1) * rl->interval_ms;
}

/* The slot a request arriving now would get. tat - tau is when the bucket
 * has room again; -inf minus anything stays -inf. */
static double
rl_next_slot(const struct rl *rl, double now)
{
    return rl_max(rl_max(now, rl->tat_ms - rl->tau_ms), rl->paused_until);
}

void
rl_init(struct rl *rl, double rate, long burst)
{
    rl_set_rate(rl, rate, burst);
    /* -inf: the first reservation goes at once whatever the clock's
     * origin (0 would hold back a clock that starts below T). */
    rl->run_start_ms = -INFINITY;
    rl->run_len = 0;
    rl->paused_until = -INFINITY;
    rl_sync_tat(rl);
}

void
rl_configure(struct rl *rl, double rate, long burst)
{
    double old_interval = rl->interval_ms;

    rl_set_rate(rl, rate, burst);
    if (rl->run_len == 0)
        return; /* nothing reserved yet: tat is -inf either way */
    /* tat - old T is the base of the latest reservation; start a new run
     * there, one new T on, so the gap after it follows the new rate (a
     * slower rate must not let the next request in at the old spacing). */
    rl->run_start_ms += (double)(rl->run_len - 1) * old_interval;
    rl->run_len = 1;
    rl_sync_tat(rl);
}

int
rl_reserve(struct rl *rl, double now, double max_wait_ms, double *slot_ms)
{
    double slot = rl_next_slot(rl, now);

    if (slot - now > max_wait_ms)
        return -1;
    if (slot > rl->tat_ms) {
        /* tat was in the past (or at a pause's end): a new run */
        rl->run_start_ms = slot;
        rl->run_len = 1;
    } else {
        rl->run_len++;
    }
    rl_sync_tat(rl);
    *slot_ms = slot;
    return 0;
}

double
rl_retry_after_ms(const struct rl *rl, double now, double max_wait_ms)
{
    double wait = (rl_next_slot(rl, now) - now) - max_wait_ms;

    /* at least 1 ms: a refusal must never say "retry now" */
    return rl_max(wait, 1.0);
}

double
rl_pause(struct rl *rl, double now, double pause_ms, double first_pending_slot)
{
    double delay;

    rl->paused_until = rl_max(rl->paused_until, now + pause_ms);
    /* No pending slot: paused_until alone holds the next one back, and
     * tat is left alone so that with burst 1 the ones after it still come
     * T apart (tat - tau <= tat). */
    if (first_pending_slot < 0)
        return 0;
    delay = rl->paused_until - first_pending_slot;
    if (!(delay > 0))
        return 0; /* the queue already reaches past the pause */
    /* Pending slots all move by delay; moving the anchor keeps the run
     * whole, so the spacing after them is unchanged. */
    rl->run_start_ms += delay;
    rl_sync_tat(rl);
    return delay;
}

void
rl_release(struct rl *rl, int64_t n)
{
    if (n <= 0 || rl->run_len <= 0)
        return;
    rl->run_len -= n < rl->run_len ? n : rl->run_len;
    rl_sync_tat(rl);
}

void
rl_restart(struct rl *rl, double last_slot_ms)
{
    rl->paused_until = -INFINITY;
    if (last_slot_ms == -INFINITY) {
        rl->run_start_ms = -INFINITY;
        rl->run_len = 0;
    } else {
        rl->run_start_ms = last_slot_ms;
        rl->run_len = 1;
    }
    rl_sync_tat(rl);
}

/* ---- the on-the-wire guard ----
 *
 * The bounds are kept sorted, so that the earliest hand-over is one look
 * up. A new departure's bound (now + cap) is the largest (every other is
 * an earlier departure + cap, or an answer time <= now): it goes at the
 * end. When all n places are taken the smallest goes: while the guard is
 * obeyed at most n bounds lie above now - window at any time (at the
 * latest hand-over among them, the others were pending or counted), and
 * the new one is one of them, so the smallest is below and can no longer
 * matter. An answer moves its bound down (a memmove over at most n). */

void
rl_guard_init(struct rl_guard *g, size_t n, double window_ms)
{
    memset(g, 0, sizeof(*g));
    g->window_ms = window_ms;
    g->n = n;
    g->next_id = 1;
    g->b = n ? xcalloc(n, sizeof(*g->b)) : NULL;
    g->id = n ? xcalloc(n, sizeof(*g->id)) : NULL;
}

void
rl_guard_set_cap(struct rl_guard *g, double cap_ms)
{
    g->cap_ms = cap_ms > 0 ? cap_ms : 0;
}

void
rl_guard_resize(struct rl_guard *g, size_t n)
{
    if (n == g->n)
        return;
    double *b = n ? xcalloc(n, sizeof(*b)) : NULL;
    uint64_t *id = n ? xcalloc(n, sizeof(*id)) : NULL;
    size_t keep = g->count < n ? g->count : n;
    /* the largest kept, still ascending */
    for (size_t i = 0; i < keep; i++) {
        b[i] = g->b[g->count - keep + i];
        id[i] = g->id[g->count - keep + i];
    }
    free(g->b);
    free(g->id);
    g->b = b;
    g->id = id;
    g->n = n;
    g->count = keep;
}

void
rl_guard_free(struct rl_guard *g)
{
    free(g->b);
    free(g->id);
    g->b = NULL;
    g->id = NULL;
    g->n = g->count = 0;
}

double
rl_guard_until(const struct rl_guard *g)
{
    if (g->n == 0)
        return -INFINITY;
    if (g->pending >= g->n)
        return INFINITY;
    /* room for one more once the (n - pending)-th largest bound is a
     * window old */
    size_t k = g->n - g->pending;
    if (g->count < k)
        return -INFINITY;
    return g->b[g->count - k] + g->window_ms;
}

void
rl_guard_handed(struct rl_guard *g)
{
    g->pending++;
}

/* Puts (bound, id) in its place among b[0..count), count < n. */
static void
guard_insert(struct rl_guard *g, double bound, uint64_t id)
{
    size_t i = g->count;
    while (i > 0 && g->b[i - 1] > bound) {
        g->b[i] = g->b[i - 1];
        g->id[i] = g->id[i - 1];
        i--;
    }
    g->b[i] = bound;
    g->id[i] = id;
    g->count++;
}

static void
guard_remove(struct rl_guard *g, size_t i)
{
    memmove(g->b + i, g->b + i + 1, (g->count - i - 1) * sizeof(*g->b));
    memmove(g->id + i, g->id + i + 1, (g->count - i - 1) * sizeof(*g->id));
    g->count--;
}

uint64_t
rl_guard_left(struct rl_guard *g, double now)
{
    if (g->pending > 0)
        g->pending--;
    if (g->n == 0)
        return 0;
    if (g->count == g->n)
        guard_remove(g, 0);
    uint64_t id = g->next_id++;
    guard_insert(g, now + g->cap_ms, id);
    return id;
}

void
rl_guard_answered(struct rl_guard *g, uint64_t ticket, double now)
{
    if (ticket == 0)
        return;
    for (size_t i = g->count; i-- > 0;) {
        if (g->id[i] != ticket)
            continue;
        if (now < g->b[i]) {
            guard_remove(g, i);
            guard_insert(g, now, ticket);
        }
        return;
    }
}

void
rl_guard_dropped(struct rl_guard *g)
{
    if (g->pending > 0)
        g->pending--;
}
