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

struct shaper {
    struct event_base *base;
    struct event *timer;
    struct rl rl;
    int on; /* rate > 0 */
    double max_queue_ms;
    TAILQ_HEAD(shaper_queue, shaper_item) queue;
    struct shaper_stats st;
};

static void
arm(struct shaper *s)
{
    struct shaper_item *head = TAILQ_FIRST(&s->queue);
    if (head == NULL) {
        evtimer_del(s->timer);
        return;
    }
    double wait = head->slot_ms - gateway_mono_ms();
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
    while ((it = TAILQ_FIRST(&s->queue)) != NULL && it->slot_ms <= now) {
        TAILQ_REMOVE(&s->queue, it, link);
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
    if (slot <= now && TAILQ_EMPTY(&s->queue)) {
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
    free(s);
}
