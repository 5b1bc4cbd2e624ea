/* metrics.c - see metrics.h. Counters live in small fixed tables: the
 * label sets are few (routes x decisions x statuses seen), so a linear
 * table beats a hash for size and simplicity. */
#include "metrics.h"

#include <event2/buffer.h>
#include <string.h>

#include "refusals.h"

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
    uint64_t refusal_answers[REFUSAL_KINDS], refusal_probes[REFUSAL_KINDS];
} m;

void
metrics_count_request(enum route_id route, enum decision decision, int status)
{
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

void
metrics_count_answered(void)
{
    m.answered++;
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

void
metrics_head(struct evbuffer *out, const char *name, const char *type,
             const char *help)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                        type);
}

void
metrics_count_refusal(int kind, int probe)
{
    if (kind < 0 || kind >= REFUSAL_KINDS)
        return;
    if (probe)
        m.refusal_probes[kind]++;
    else
        m.refusal_answers[kind]++;
}

uint64_t
metrics_refusals(int kind, int probe)
{
    if (kind < 0 || kind >= REFUSAL_KINDS)
        return 0;
    return probe ? m.refusal_probes[kind] : m.refusal_answers[kind];
}

uint64_t
metrics_series_dropped(void)
{
    return m.req_dropped;
}

static void
render_requests(struct evbuffer *out)
{
    metrics_head(out, "wagate_requests_total", "counter",
                 "Requests answered, by route, decision and status.");
    for (size_t i = 0; i < m.nreq; i++)
        evbuffer_add_printf(
            out,
            "wagate_requests_total{route=\"%s\",decision=\"%s\","
            "status=\"%d\"} %llu\n",
            route_get(m.req[i].route)->name, decision_name(m.req[i].decision),
            m.req[i].status, (unsigned long long)m.req[i].count);
}

static void
render_upstream(struct evbuffer *out)
{
    metrics_head(out, "wagate_upstream_duration_seconds", "histogram",
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
    metrics_head(
        out, "wagate_upstream_errors_total", "counter",
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

/* Every kind, 0 included: a dashboard can graph a kind before it
 * happens. */
static void
render_refusals(struct evbuffer *out)
{
    static const char *const fam[2][2] = {
        {"wagate_refusal_answers_total",
         "Sends answered from a learned refusal (SPEC 4a), by kind."},
        {"wagate_refusal_probes_total",
         "Sends forwarded as the probe of a refusal whose trust ran out, by "
         "kind."}};
    for (int p = 0; p < 2; p++) {
        metrics_head(out, fam[p][0], "counter", fam[p][1]);
        for (int k = 0; k < REFUSAL_KINDS; k++)
            evbuffer_add_printf(out, "%s{kind=\"%s\"} %llu\n", fam[p][0],
                                refusal_reason((enum refusal_kind)k),
                                (unsigned long long)metrics_refusals(k, p));
    }
}

void
metrics_render(struct evbuffer *out)
{
    render_requests(out);
    render_upstream(out);
    render_refusals(out);
}
