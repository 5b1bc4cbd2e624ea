/* metrics.h - the counters behind /metrics, and their Prometheus text
 * exposition (format 0.0.4). Plain data: the modules that see an event
 * count it here; metrics_render() writes the page. Names follow the
 * Prometheus conventions: wagate_ prefix, _total for counters, _seconds
 * for durations. */
#ifndef WAGATE_METRICS_H
#define WAGATE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "decision.h"
#include "route.h"
#include "upstream.h"

struct evbuffer;

/* A gauge read at render time; the caller fills these. */
struct metrics_gauges {
    size_t cache_entries;
    uint64_t cache_lookups;
    uint64_t cache_hits;
    uint64_t cache_short_circuits;
    size_t send_queue_depth;
    size_t read_queue_depth;
    uint64_t rate_limited; /* 429 RATE_LIMITED given by the gateway */
    size_t in_flight;
    size_t idem_entries;
    uint64_t idem_replays;
    int draining;
};

/* One answered request. */
void metrics_count_request(enum route_id route, enum decision decision,
                           int status);

/* Requests answered so far (every metrics_count_request()). */
uint64_t metrics_answered(void);

/* The upstream answered 429 (the limiter pauses). */
void metrics_count_upstream_429(void);
uint64_t metrics_upstream_429s(void);

/* An upstream call that got an HTTP answer, and the time it took. */
void metrics_count_upstream(double seconds);

/* An upstream call that got none: its kind, and whether a byte of the
 * request left (outcome "unknown") or none did ("not_sent"). */
void metrics_count_upstream_error(enum upstream_failure kind, int sent);

/* Appends the whole exposition to out. */
void metrics_render(struct evbuffer *out, const struct metrics_gauges *g);

#endif
