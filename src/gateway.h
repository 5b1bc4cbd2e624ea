/* gateway.h - the running gateway's shared state: what the server, the
 * request pipeline and the admin API all see. Owned by main.c; every
 * pointer in it is borrowed by the modules that read it. */
#ifndef WAGATE_GATEWAY_H
#define WAGATE_GATEWAY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

struct event_base;
struct config;
struct upstream;
struct session_cache;
struct shaper;
struct idem_store;
struct exchange;

struct gateway {
    struct event_base *base;
    const struct config *cfg;
    struct upstream *up;
    struct session_cache *cache;
    struct shaper *send_shaper; /* both send routes share one limiter */
    struct shaper *read_shaper; /* the GET routes */
    struct idem_store *idem;
    /* requests handed to the upstream and not yet answered */
    TAILQ_HEAD(exchange_list, exchange) waiting;
    size_t nwaiting;
    unsigned long long answered;
    unsigned long long upstream_429s; /* upstream said 429: limiter paused */
    int draining;
    /* called (from the loop) each time a waiting request completes */
    void (*on_complete)(void *arg);
    void *on_complete_arg;
};

/* Wall clock in ms since the epoch: what session windows are measured in. */
int64_t gateway_wall_ms(void);

/* Monotonic ms: what latencies and timeouts are measured in. */
double gateway_mono_ms(void);

#endif
