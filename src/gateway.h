/* gateway.h - the running gateway's shared state: what the server, the
 * request pipeline and the admin API all see. Owned by main.c; every
 * pointer in it is borrowed by the modules that read it. */
#ifndef WAGATE_GATEWAY_H
#define WAGATE_GATEWAY_H

#include <stdint.h>

struct event_base;
struct config;
struct upstream;
struct session_cache;
struct refusals;
struct shaper;
struct idem_store;
struct state;
struct ex_waitlist;
struct rlink;

struct gateway {
    struct event_base *base;
    const struct config *cfg;
    struct upstream *up;
    struct session_cache *cache;
    struct shaper *send_shaper; /* both send routes share one limiter */
    struct shaper *read_shaper; /* the GET routes */
    struct idem_store *idem;
    struct refusals *refusals; /* the memory backend's (SPEC section 4a) */
    /* what the pipeline asks of idem and cache goes through here (state.h) */
    struct state *state;
    /* the Redis link under a shared state (redis_link.h); NULL with the
     * memory backend. /readyz and /metrics read its health */
    struct rlink *link;
    /* requests in flight (deferred): exchange.c's, read through
     * ex_waiting() and friends (exchange.h) */
    struct ex_waitlist *waiting;
    /* departures to the upstream, numbered as they leave (relay.c), and
     * the number of the latest to leave of the sends answered 2xx: a
     * refusal answering a send numbered below it is older news */
    uint64_t departures;
    uint64_t newest_ok_send;
    int draining; /* set by server_drain() only */
};

#endif
