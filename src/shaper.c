/* shaper.c - see shaper.h. */
#include "shaper.h"

#include <event2/event.h>
#include <math.h>
#include <stdlib.h>
#include <sys/queue.h>

#include "alloc.h"
#include "gateway.h"
#include "ratelimit.h"

struct shaper_item {
    TAILQ_ENTRY(shaper_item) link;
    void *item;
    shaper_go go;
    shaper_refuse refuse;
    double slot_ms;
    double queued_ms;
};

/* Timers fire late, never early, and not all by the same amount: sends k
 * and k+N could leave less than a second apart although their slots are
 * exactly a second apart. So the shaper also remembers when the last N
 * sends (N = the most a 1-second window may hold) really left, and holds
 * the next one until a second (plus a margin for the way to the upstream)
 * has passed since the oldest of them. */
#define SHAPER_GUARD_MAX 4096
#define SHAPER_GUARD_MARGIN_MS 5.0

struct shaper {
    struct event_base *base;
    double *sent; /* ring of the last guard_n real departure times */
    size_t guard_n, nsent, sent_head;
    struct event *timer;
    struct rl rl;
    int on; /* rate > 0 */
    double max_queue_ms;
    TAILQ_HEAD(shaper_queue, shaper_item) queue;
    struct shaper_stats st;
};

/* The earliest time the next send may leave by the real-time guard. */
static double
guard_until(const struct shaper *s)
{
    if (s->guard_n == 0 || s->nsent < s->guard_n)
        return -INFINITY;
    return s->sent[s->sent_head] + 1000.0 + SHAPER_GUARD_MARGIN_MS;
}

static void
note_sent(struct shaper *s, double now)
{
    if (s->guard_n == 0)
        return;
    s->sent[s->sent_head] = now;
    s->sent_head = (s->sent_head + 1) % s->guard_n;
    if (s->nsent < s->guard_n)
        s->nsent++;
}

static void
guard_resize(struct shaper *s, double rate, long burst)
{
    double n = ceil(rate + (double)(burst < 1 ? 1 : burst) - 1);
    free(s->sent);
    s->guard_n = rate > 0 && n <= SHAPER_GUARD_MAX ? (size_t)n : 0;
    s->sent = s->guard_n ? xcalloc(s->guard_n, sizeof(*s->sent)) : NULL;
    s->nsent = s->sent_head = 0;
}

static void
arm(struct shaper *s)
{
    struct shaper_item *head = TAILQ_FIRST(&s->queue);
    if (head == NULL) {
        evtimer_del(s->timer);
        return;
    }
    double at = head->slot_ms > guard_until(s) ? head->slot_ms
                                               : guard_until(s);
    double wait = at - gateway_mono_ms();
    if (wait < 0)
        wait = 0;
    /* round up: a timer that fires early would only re-arm */
    long us = (long)ceil(wait * 1000.0);
    struct timeval tv = {us / 1000000, us % 1000000};
    evtimer_add(s->timer, &tv);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct shaper *s = arg;
    struct shaper_item *it;
    double now = gateway_mono_ms();
    while ((it = TAILQ_FIRST(&s->queue)) != NULL && it->slot_ms <= now &&
           now >= guard_until(s)) {
        TAILQ_REMOVE(&s->queue, it, link);
        note_sent(s, now);
        s->st.depth--;
        double waited = now - it->queued_ms;
        s->st.wait_ms_total += waited;
        if (waited > s->st.wait_ms_max)
            s->st.wait_ms_max = waited;
        shaper_go go = it->go;
        void *item = it->item;
        free(it);
        go(item); /* may submit more: the queue is consistent here */
    }
    arm(s);
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
    guard_resize(s, rate, burst);
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
    guard_resize(s, rate, burst);
}

int
shaper_submit(struct shaper *s, void *item, shaper_go go,
              shaper_refuse refuse, long *retry_after_s)
{
    double now = gateway_mono_ms(), slot;
    s->st.submitted++;
    if (!s->on) {
        go(item);
        return 0;
    }
    if (rl_reserve(&s->rl, now, s->max_queue_ms, &slot) != 0) {
        double ms = rl_retry_after_ms(&s->rl, now, s->max_queue_ms);
        long secs = (long)ceil(ms / 1000.0);
        *retry_after_s = secs < 1 ? 1 : secs;
        s->st.refused++;
        return -1;
    }
    if (slot <= now && TAILQ_EMPTY(&s->queue) && now >= guard_until(s)) {
        note_sent(s, now);
        go(item);
        return 0;
    }
    struct shaper_item *it = xcalloc(1, sizeof(*it));
    it->item = item;
    it->go = go;
    it->refuse = refuse;
    it->slot_ms = slot;
    it->queued_ms = now;
    TAILQ_INSERT_TAIL(&s->queue, it, link);
    s->st.depth++;
    s->st.waited++;
    if (TAILQ_FIRST(&s->queue) == it)
        arm(s);
    return 0;
}

/* After a pause: the waiting items now beyond the queue bound are a
 * suffix of the queue (slots grow along it). They are refused, newest
 * first, and their slots given back. */
static void
refuse_beyond_bound(struct shaper *s)
{
    double now = gateway_mono_ms();
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
    double delay = rl_pause(&s->rl, gateway_mono_ms(), pause_ms,
                            head ? head->slot_ms : -1);
    s->st.pauses++;
    if (delay <= 0)
        return;
    TAILQ_FOREACH(it, &s->queue, link)
    {
        it->slot_ms += delay;
    }
    refuse_beyond_bound(s);
    arm(s);
}

void
shaper_get_stats(const struct shaper *s, struct shaper_stats *st)
{
    *st = s->st;
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
    free(s->sent);
    free(s);
}
