/* metrics.h - the counters behind /metrics, and their Prometheus text
 * exposition (format 0.0.4). Plain data: the modules that see an event
 * count it here; metrics_render() writes the page. Names follow the
 * Prometheus conventions: wagate_ prefix, _total for counters, _seconds
 * for durations. */
#ifndef WAGATE_METRICS_H
#define WAGATE_METRICS_H

#include <stddef.h>
#include <stdint.h>

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
    uint64_t upstream_429s;
    size_t in_flight;
    size_t idem_entries;
    uint64_t idem_replays;
    int draining;
};

/* One answered request. route and decision are static strings (the route
 * table's names; forwarded, short_circuit, rejected, replay, local,
 * caller_gone, cut_off). */
void metrics_count_request(const char *route, const char *decision,
                           int status);

/* An upstream call that got an HTTP answer, and the time it took. */
void metrics_count_upstream(double seconds);

/* An upstream call that got none: kind is upstream_failure_name()'s
 * static label, outcome "not_sent" or "unknown" (static). */
void metrics_count_upstream_error(const char *kind, const char *outcome);

/* Appends the whole exposition to out. */
void metrics_render(struct evbuffer *out, const struct metrics_gauges *g);

#endif
