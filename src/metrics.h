/* metrics.h - the gateway's own event counters and their labelled
 * Prometheus series (text format 0.0.4): requests by route, decision and
 * status, the upstream latency histogram, upstream errors by kind and
 * outcome. Plain data: the modules that see an event count it here. The
 * plain counts (answered, upstream 429s, dropped series) are read through
 * their getters by the stats registry (stats.h), which writes the rest of
 * /metrics and /admin/stats. Names follow the Prometheus conventions:
 * wagate_ prefix, _total for counters, _seconds for durations. */
#ifndef WAGATE_METRICS_H
#define WAGATE_METRICS_H

#include <stdint.h>

#include "decision.h"
#include "route.h"
#include "upstream.h"

struct evbuffer;

/* One answered request. */
void metrics_count_request(enum route_id route, enum decision decision,
                           int status);

/* A request answered through exchange.c's single exit (ex_reply): what
 * /admin/stats calls requests_answered. Refusals of the head lexer and the
 * drain's cut-off answers are counted by metrics_count_request() only. */
void metrics_count_answered(void);
uint64_t metrics_answered(void);

/* The upstream answered 429 (the limiter pauses). */
void metrics_count_upstream_429(void);
uint64_t metrics_upstream_429s(void);

/* An upstream call that got an HTTP answer, and the time it took. */
void metrics_count_upstream(double seconds);

/* An upstream call that got none: its kind, and whether a byte of the
 * request left (outcome "unknown") or none did ("not_sent"). */
void metrics_count_upstream_error(enum upstream_failure kind, int sent);

/* A send answered from a learned refusal (probe 0) or forwarded as its
 * probe (probe 1); kind is refusals.h's enum refusal_kind. */
void metrics_count_refusal(int kind, int probe);
uint64_t metrics_refusals(int kind, int probe);

/* Request label sets not counted because the series table was full. */
uint64_t metrics_series_dropped(void);

/* Appends the labelled series (requests, upstream histogram, upstream
 * errors) to out; the stats registry appends the rest of the page. */
void metrics_render(struct evbuffer *out);

/* Appends a family's "# HELP name help" and "# TYPE name type" lines: the
 * one place the exposition's family header is written. */
void metrics_head(struct evbuffer *out, const char *name, const char *type,
                  const char *help);

#endif
