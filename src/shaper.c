/* shaper.c - see shaper.h. */
#include "shaper.h"

#include <ctype.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <math.h>
#include <stdlib.h>
#include <sys/queue.h>

#include "alloc.h"
#include "clock.h"
#include "ratelimit.h"

struct shaper_item {
    TAILQ_ENTRY(shaper_item) link;
    void *item;
    shaper_go go;
    shaper_refuse refuse;
    double slot_ms;
    double queued_ms;
    /* refused if still waiting then: max(slot, queued + max_queue_ms),
     * never before the item ahead of it (so the head's is the earliest) */
    double deadline_ms;
};

/* The guard's ring is as long as a 1-second window may hold; beyond this
 * (a limit set out of the way, 10000/s) it is off. */
#define SHAPER_GUARD_MAX 4096

struct shaper {
    struct event_base *base;
    struct rl_guard guard;
    struct event *timer;
    struct rl rl;
    int on; /* rate > 0 */
    double max_queue_ms;
    double last_slot; /* slot of the latest item handed over */
    TAILQ_HEAD(shaper_queue, shaper_item) queue;
    struct shaper_stats st;
    shaper_clock clock; /* NULL: clock_mono_ms() */
    void *clock_ctx;
    double wake_ms; /* when the timer fires; INFINITY when not set */
};

/* Every entry point reads the clock once and passes that now down. */
static double
now_of(const struct shaper *s)
{
    return s->clock != NULL ? s->clock(s->clock_ctx) : clock_mono_ms();
}

static size_t
guard_size(double rate, long burst)
{
    double n = ceil(rate + (double)(burst < 1 ? 1 : burst) - 1);
    return rate > 0 && n <= SHAPER_GUARD_MAX ? (size_t)n : 0;
}

/* Sets the timer for the head. It reads the clock itself, after whatever
 * callbacks ran, since libevent's timeout is relative. */
static void
arm(struct shaper *s)
{
    struct shaper_item *head = TAILQ_FIRST(&s->queue);
    if (head == NULL) {
        s->wake_ms = INFINITY;
        evtimer_del(s->timer);
        return;
    }
    /* the slot, or later while the guard holds (INFINITY: until a request
     * on its way ends, which re-arms); the deadline in any case */
    double guard = rl_guard_until(&s->guard);
    double at = head->slot_ms > guard ? head->slot_ms : guard;
    if (at > head->deadline_ms)
        at = head->deadline_ms;
    s->wake_ms = at;
    double wait = at - now_of(s);
    if (wait < 0)
        wait = 0;
    /* round up: a timer that fires early would only re-arm */
    long us = (long)ceil(wait * 1000.0);
    struct timeval tv = {us / 1000000, us % 1000000};
    evtimer_add(s->timer, &tv);
}

/* A deadline no earlier than that of the item ahead (prev, may be NULL):
 * deadlines grow along the queue, even across a reload that shortens
 * max_queue_ms, so only the head's needs a timer. */
static double
deadline_after(const struct shaper_item *prev, double deadline)
{
    return prev != NULL && prev->deadline_ms > deadline ? prev->deadline_ms
                                                        : deadline;
}

/* Slots moved (a pause, its end): no item is refused before its slot. */
static void
deadlines_follow_slots(struct shaper *s)
{
    struct shaper_item *it, *prev = NULL;
    TAILQ_FOREACH(it, &s->queue, link)
    {
        it->deadline_ms =
            deadline_after(prev, fmax(it->deadline_ms, it->slot_ms));
        prev = it;
    }
}

static void
hand_over(struct shaper *s, double slot, shaper_go go, void *item)
{
    rl_guard_handed(&s->guard);
    s->last_slot = slot;
    go(item);
}

/* What is due at now: handed over at its slot once the guard allows, or
 * refused at its deadline. */
static void
run_due(struct shaper *s, double now)
{
    struct shaper_item *it;
    while ((it = TAILQ_FIRST(&s->queue)) != NULL) {
        int due = it->slot_ms <= now && now >= rl_guard_until(&s->guard);
        if (!due && it->deadline_ms > now)
            break;
        TAILQ_REMOVE(&s->queue, it, link);
        s->st.depth--;
        if (!due) {
            /* the guard held it past its bound (requests stuck on their
             * way): answered now, not for as long as the upstream hangs;
             * its slot is in the past, nothing to give back */
            s->st.refused++;
            shaper_refuse refuse = it->refuse;
            void *item = it->item;
            free(it);
            refuse(item, 1);
            continue;
        }
        double waited = now - it->queued_ms;
        s->st.wait_ms_total += waited;
        if (waited > s->st.wait_ms_max)
            s->st.wait_ms_max = waited;
        shaper_go go = it->go;
        void *item = it->item;
        double slot = it->slot_ms;
        free(it);
        hand_over(s, slot, go, item); /* may submit more: consistent here */
    }
}

void
shaper_run(struct shaper *s)
{
    run_due(s, now_of(s));
    arm(s);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    shaper_run(arg);
}

struct shaper *
shaper_new(struct event_base *base, double rate, long burst,
           long long max_queue_ms)
{
    struct shaper *s = xcalloc(1, sizeof(*s));
    s->base = base;
    TAILQ_INIT(&s->queue);
    s->timer = evtimer_new(base, on_timer, s);
    if (s->timer == NULL)
        alloc_oom("evtimer_new");
    s->on = rate > 0;
    rl_init(&s->rl, s->on ? rate : 1, burst);
    s->max_queue_ms = (double)max_queue_ms;
    s->last_slot = -INFINITY;
    s->wake_ms = INFINITY;
    rl_guard_init(&s->guard, guard_size(rate, burst), SHAPER_GUARD_WINDOW_MS);
    return s;
}

void
shaper_configure(struct shaper *s, double rate, long burst,
                 long long max_queue_ms)
{
    if (rate > 0 && !s->on)
        rl_init(&s->rl, rate, burst);
    else if (rate > 0)
        rl_configure(&s->rl, rate, burst);
    s->on = rate > 0;
    s->max_queue_ms = (double)max_queue_ms;
    rl_guard_resize(&s->guard, guard_size(rate, burst));
    arm(s);
}

int
shaper_submit(struct shaper *s, void *item, shaper_go go,
              shaper_refuse refuse, long *retry_after_s)
{
    double now = now_of(s), slot;
    s->st.submitted++;
    if (!s->on) {
        hand_over(s, now, go, item);
        return 0;
    }
    if (rl_reserve(&s->rl, now, s->max_queue_ms, &slot) != 0) {
        double ms = rl_retry_after_ms(&s->rl, now, s->max_queue_ms);
        long secs = (long)ceil(ms / 1000.0);
        *retry_after_s = secs < 1 ? 1 : secs;
        s->st.refused++;
        return -1;
    }
    if (slot <= now && TAILQ_EMPTY(&s->queue) &&
        now >= rl_guard_until(&s->guard)) {
        hand_over(s, slot, go, item);
        return 0;
    }
    struct shaper_item *it = xcalloc(1, sizeof(*it));
    it->item = item;
    it->go = go;
    it->refuse = refuse;
    it->slot_ms = slot;
    it->queued_ms = now;
    it->deadline_ms = deadline_after(TAILQ_LAST(&s->queue, shaper_queue),
                                     fmax(slot, now + s->max_queue_ms));
    TAILQ_INSERT_TAIL(&s->queue, it, link);
    s->st.depth++;
    s->st.waited++;
    if (TAILQ_FIRST(&s->queue) == it)
        arm(s);
    return 0;
}

void
shaper_left(struct shaper *s)
{
    rl_guard_left(&s->guard, now_of(s));
    arm(s);
}

void
shaper_dropped(struct shaper *s)
{
    rl_guard_dropped(&s->guard);
    arm(s);
}

int
shaper_cancel(struct shaper *s, void *item)
{
    struct shaper_item *it;
    TAILQ_FOREACH(it, &s->queue, link)
    {
        if (it->item != item)
            continue;
        int was_head = it == TAILQ_FIRST(&s->queue);
        TAILQ_REMOVE(&s->queue, it, link);
        s->st.depth--;
        free(it);
        if (was_head)
            arm(s);
        return 1;
    }
    return 0;
}

/* After a pause: the waiting items now beyond the queue bound are a
 * suffix of the queue (slots grow along it). They are refused, newest
 * first, and their slots given back. */
static void
refuse_beyond_bound(struct shaper *s, double now)
{
    int64_t released = 0;
    struct shaper_item *it;
    while ((it = TAILQ_LAST(&s->queue, shaper_queue)) != NULL &&
           it->slot_ms - now > s->max_queue_ms) {
        TAILQ_REMOVE(&s->queue, it, link);
        s->st.depth--;
        s->st.refused++;
        released++;
        long secs = (long)ceil((it->slot_ms - now - s->max_queue_ms) / 1000);
        shaper_refuse refuse = it->refuse;
        void *item = it->item;
        free(it);
        refuse(item, secs < 1 ? 1 : secs);
    }
    rl_release(&s->rl, released);
}

void
shaper_pause(struct shaper *s, double pause_ms)
{
    if (!s->on)
        return;
    struct shaper_item *head = TAILQ_FIRST(&s->queue), *it;
    double now = now_of(s);
    double delay = rl_pause(&s->rl, now, pause_ms, head ? head->slot_ms : -1);
    s->st.pauses++;
    if (delay <= 0)
        return;
    TAILQ_FOREACH(it, &s->queue, link)
    {
        it->slot_ms += delay;
    }
    refuse_beyond_bound(s, now);
    deadlines_follow_slots(s);
    arm(s);
}

int
shaper_resume(struct shaper *s)
{
    double now = now_of(s), slot;
    struct shaper_item *it;
    if (!s->on || !(s->rl.paused_until > now))
        return 0;
    rl_restart(&s->rl, s->last_slot);
    /* every waiting item was accepted once: none is refused now */
    TAILQ_FOREACH(it, &s->queue, link)
    {
        rl_reserve(&s->rl, now, INFINITY, &slot);
        it->slot_ms = slot;
    }
    deadlines_follow_slots(s);
    arm(s);
    return 1;
}

void
shaper_set_clock(struct shaper *s, shaper_clock clock, void *ctx)
{
    s->clock = clock;
    s->clock_ctx = ctx;
}

double
shaper_next_ms(const struct shaper *s)
{
    return s->wake_ms;
}

void
shaper_get_stats(const struct shaper *s, struct shaper_stats *st)
{
    *st = s->st;
    st->on_the_way = s->guard.pending;
}

void
shaper_free(struct shaper *s)
{
    if (s == NULL)
        return;
    struct shaper_item *it;
    while ((it = TAILQ_FIRST(&s->queue)) != NULL) {
        TAILQ_REMOVE(&s->queue, it, link);
        free(it);
    }
    event_free(s->timer);
    rl_guard_free(&s->guard);
    free(s);
}

/* ---- Retry-After ---- */

static double
cap(double ms, double max_ms)
{
    return ms < max_ms ? ms : max_ms;
}

double
shaper_retry_after_ms(const char *value, time_t now, double default_ms,
                      double max_ms)
{
    if (value == NULL)
        return cap(default_ms, max_ms);
    const char *v = value;
    while (*v == ' ' || *v == '\t')
        v++;
    if (isdigit((unsigned char)*v)) {
        /* delta-seconds: digits only; a huge number saturates at the cap
         * rather than overflowing */
        double secs = 0;
        const char *p = v;
        for (; isdigit((unsigned char)*p); p++)
            secs = secs < 1e12 ? secs * 10 + (*p - '0') : secs;
        while (*p == ' ' || *p == '\t')
            p++;
        return *p == '\0' ? cap(secs * 1000.0, max_ms)
                          : cap(default_ms, max_ms);
    }
    /* an HTTP-date starts with the day name (RFC 9110 section 5.6.7): a
     * sign or any other start is not one, whatever curl_getdate() makes
     * of it */
    if (!isalpha((unsigned char)*v))
        return cap(default_ms, max_ms);
    time_t when = curl_getdate(v, &now);
    if (when == (time_t)-1 || when <= now)
        return cap(default_ms, max_ms);
    return cap((double)(when - now) * 1000.0, max_ms);
}
