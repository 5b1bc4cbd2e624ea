#include "sb_rate.h"
#include "alloc.h"

#include <stdlib.h>

struct sb_rate {
    unsigned limit;
    unsigned count; /* allowed requests remembered, <= limit */
    unsigned head;  /* index of the oldest remembered request */
    int64_t *times; /* ring of `limit` arrival times */
};

struct sb_rate *
sb_rate_new(unsigned limit)
{
    struct sb_rate *r = xcalloc(1, sizeof(*r));
    sb_rate_set_limit(r, limit);
    return r;
}

void
sb_rate_free(struct sb_rate *r)
{
    if (r == NULL)
        return;
    free(r->times);
    free(r);
}

void
sb_rate_set_limit(struct sb_rate *r, unsigned limit)
{
    if (limit > SB_RATE_MAX)
        limit = SB_RATE_MAX;
    free(r->times);
    r->times = limit ? xcalloc(limit, sizeof(*r->times)) : NULL;
    r->limit = limit;
    r->count = 0;
    r->head = 0;
}

unsigned
sb_rate_limit(const struct sb_rate *r)
{
    return r->limit;
}

bool
sb_rate_allow(struct sb_rate *r, int64_t now_ms)
{
    if (r->limit == 0)
        return true;
    if (r->count < r->limit) {
        r->times[(r->head + r->count) % r->limit] = now_ms;
        r->count++;
        return true;
    }
    if (now_ms - r->times[r->head] < SB_RATE_WINDOW_MS)
        return false;
    /* The oldest left the window: its slot becomes the newest. */
    r->times[r->head] = now_ms;
    r->head = (r->head + 1) % r->limit;
    return true;
}

int64_t
sb_rate_wait_ms(const struct sb_rate *r, int64_t now_ms)
{
    if (r->limit == 0 || r->count < r->limit)
        return 0;
    int64_t wait = r->times[r->head] + SB_RATE_WINDOW_MS - now_ms;
    return wait > 0 ? wait : 0;
}
