/* metrics.c - see metrics.h. Counters live in small fixed tables: the
 * label sets are few (routes x decisions x statuses seen), so a linear
 * table beats a hash for size and simplicity. */
#include "metrics.h"

#include <event2/buffer.h>
#include <string.h>

#define METRICS_MAX_SERIES 512

struct req_series {
    enum route_id route;
    enum decision decision;
    int status;
    uint64_t count;
};

static const double latency_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25,  0.5,  1,     2.5,  5,
                                         10,    30};
#define NBUCKETS (sizeof(latency_buckets) / sizeof(latency_buckets[0]))

static struct {
    struct req_series req[METRICS_MAX_SERIES];
    size_t nreq;
    uint64_t req_dropped; /* label sets beyond the table */
    uint64_t lat_bucket[NBUCKETS];
    uint64_t lat_count;
    double lat_sum;
    uint64_t err[UPSTREAM_FAIL_COUNT][2]; /* by kind, then sent */
    uint64_t answered;
    uint64_t upstream_429s;
} m;

void
metrics_count_request(enum route_id route, enum decision decision, int status)
{
    m.answered++;
    for (size_t i = 0; i < m.nreq; i++) {
        struct req_series *s = &m.req[i];
        if (s->status == status && s->route == route &&
            s->decision == decision) {
            s->count++;
            return;
        }
    }
    if (m.nreq == METRICS_MAX_SERIES) {
        m.req_dropped++;
        return;
    }
    m.req[m.nreq++] = (struct req_series){route, decision, status, 1};
}

void
metrics_count_upstream(double seconds)
{
    m.lat_count++;
    m.lat_sum += seconds;
    for (size_t i = 0; i < NBUCKETS; i++)
        if (seconds <= latency_buckets[i])
            m.lat_bucket[i]++;
}

uint64_t
metrics_answered(void)
{
    return m.answered;
}

void
metrics_count_upstream_429(void)
{
    m.upstream_429s++;
}

uint64_t
metrics_upstream_429s(void)
{
    return m.upstream_429s;
}

void
metrics_count_upstream_error(enum upstream_failure kind, int sent)
{
    if ((unsigned)kind >= UPSTREAM_FAIL_COUNT)
        kind = UPSTREAM_FAIL_OTHER;
    m.err[kind][sent ? 1 : 0]++;
}

static void
head(struct evbuffer *out, const char *name, const char *type,
     const char *help)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                        type);
}

static void
gauge(struct evbuffer *out, const char *name, const char *help, double v)
{
    head(out, name, "gauge", help);
    evbuffer_add_printf(out, "%s %.17g\n", name, v);
}

static void
counter(struct evbuffer *out, const char *name, const char *help,
        uint64_t v)
{
    head(out, name, "counter", help);
    evbuffer_add_printf(out, "%s %llu\n", name, (unsigned long long)v);
}

static void
render_requests(struct evbuffer *out)
{
    head(out, "wagate_requests_total", "counter",
         "Requests answered, by route, decision and status.");
    for (size_t i = 0; i < m.nreq; i++)
        evbuffer_add_printf(
            out,
            "wagate_requests_total{route=\"%s\",decision=\"%s\","
            "status=\"%d\"} %llu\n",
            route_get(m.req[i].route)->name,
            decision_name(m.req[i].decision), m.req[i].status,
            (unsigned long long)m.req[i].count);
}

static void
render_upstream(struct evbuffer *out)
{
    head(out, "wagate_upstream_duration_seconds", "histogram",
         "Time from hand-over to the upstream's complete answer.");
    for (size_t i = 0; i < NBUCKETS; i++)
        evbuffer_add_printf(
            out, "wagate_upstream_duration_seconds_bucket{le=\"%g\"} %llu\n",
            latency_buckets[i], (unsigned long long)m.lat_bucket[i]);
    evbuffer_add_printf(
        out,
        "wagate_upstream_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
        "wagate_upstream_duration_seconds_sum %.6f\n"
        "wagate_upstream_duration_seconds_count %llu\n",
        (unsigned long long)m.lat_count, m.lat_sum,
        (unsigned long long)m.lat_count);
    head(out, "wagate_upstream_errors_total", "counter",
         "Upstream calls that got no valid HTTP answer, by kind and "
         "outcome (not_sent: no byte left; unknown: it may have arrived).");
    for (int k = 0; k < UPSTREAM_FAIL_COUNT; k++)
        for (int sent = 0; sent < 2; sent++)
            if (m.err[k][sent] != 0)
                evbuffer_add_printf(
                    out,
                    "wagate_upstream_errors_total{kind=\"%s\","
                    "outcome=\"%s\"} %llu\n",
                    upstream_failure_name((enum upstream_failure)k),
                    sent ? "unknown" : "not_sent",
                    (unsigned long long)m.err[k][sent]);
}

void
metrics_render(struct evbuffer *out, const struct metrics_gauges *g)
{
    render_requests(out);
    render_upstream(out);
    counter(out, "wagate_upstream_rate_limited_total",
            "Upstream answers 429 (each pauses the limiter).",
            m.upstream_429s);
    counter(out, "wagate_rate_limited_total",
            "Requests answered 429 RATE_LIMITED by the gateway.",
            g->rate_limited);
    gauge(out, "wagate_queue_depth", "Sends waiting for their rate slot.",
          (double)g->send_queue_depth);
    gauge(out, "wagate_read_queue_depth",
          "Reads waiting for their rate slot.", (double)g->read_queue_depth);
    gauge(out, "wagate_in_flight",
          "Requests accepted and not yet answered (queued included).",
          (double)g->in_flight);
    gauge(out, "wagate_cache_entries", "Session cache entries.",
          (double)g->cache_entries);
    counter(out, "wagate_cache_lookups_total",
            "Session cache lookups for send-freeform.", g->cache_lookups);
    counter(out, "wagate_cache_hits_total",
            "Session cache lookups that found an entry.", g->cache_hits);
    counter(out, "wagate_cache_short_circuits_total",
            "Sends answered 403 SESSION_EXPIRED from the cache.",
            g->cache_short_circuits);
    gauge(out, "wagate_idempotency_entries",
          "Idempotency keys kept or in flight.", (double)g->idem_entries);
    counter(out, "wagate_idempotency_replays_total",
            "Answers replayed for an Idempotency-Key.", g->idem_replays);
    gauge(out, "wagate_draining", "1 while the gateway drains.",
          g->draining ? 1 : 0);
    counter(out, "wagate_metrics_series_dropped_total",
            "Request label sets not counted: the table was full.",
            m.req_dropped);
}
