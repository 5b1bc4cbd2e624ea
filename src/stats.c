/* stats.c - see stats.h. The table is in /admin/stats order: the admin
 * JSON is built by walking it, creating each nested object where a path
 * first names it. */
#include "stats.h"

#include <event2/buffer.h>
#include <json-c/json.h>
#include <stddef.h>
#include <string.h>

#include "alloc.h"
#include "exchange.h"
#include "gateway.h"
#include "idempotency.h"
#include "metrics.h"
#include "redis_link.h"
#include "refusals.h"
#include "session_cache.h"
#include "shaper.h"
#include "state.h"

/* Every owner's stats, read once per render. Counts that are not a field
 * of an owner's stats struct are copied into uint64_t members here. */
struct stats_snap {
    struct cache_stats cache;
    struct shaper_stats send, read;
    struct idem_stats idem;
    uint64_t in_flight;     /* ex_waiting() */
    uint64_t upstream_429s; /* metrics_upstream_429s() */
    uint64_t rate_limited;  /* both limiters' refusals */
    uint64_t answered;      /* metrics_answered() */
    uint64_t draining;      /* gw->draining */
    uint64_t series_dropped;
    /* the state store (SPEC section 11): the backend's fallbacks, and the
     * Redis link's counts (all 0 with the memory backend, which is up) */
    struct state_stats state;
    uint64_t state_up;
    uint64_t state_commands, state_failures, state_timeouts;
    uint64_t state_reconnects, state_noscript, state_pending;
    uint64_t local_slots;           /* both limiters' degraded-mode slots */
    uint64_t mode_changes, cutoffs; /* both limiters' */
    /* the learned refusals (SPEC section 4a): answers and probes by kind
     * (metrics_refusals()), the entries the backend holds (0 when it
     * cannot say) */
    uint64_t refusal_answers[REFUSAL_KINDS], refusal_probes[REFUSAL_KINDS];
    uint64_t refusal_entries;
};

/* A row's getter: the member f of the snapshot, an unsigned count or a
 * double. */
#define SNAP_FIELD(f) (((struct stats_snap *)0)->f)
#define AT(f)                                                                  \
    .off = offsetof(struct stats_snap, f), .size = sizeof(SNAP_FIELD(f)),      \
    .real = _Generic(SNAP_FIELD(f), double : 1, default : 0)
#define PATH(...) .admin = {__VA_ARGS__}

/* {Prometheus name, its place on /metrics, PATH(admin members), kind,
 * help, AT(snapshot field)}, in /admin/stats order. */
static const struct stats_row rows[] = {
    {"wagate_cache_entries", 6, PATH("session_cache", "entries"), STATS_GAUGE,
     "Session cache entries.", AT(cache.entries)},
    {NULL, 0, PATH("session_cache", "max_entries"), STATS_GAUGE,
     "Session cache capacity (session_cache.max_entries).",
     AT(cache.max_entries)},
    {"wagate_cache_lookups_total", 7, PATH("session_cache", "lookups"),
     STATS_COUNTER, "Session cache lookups for send-freeform.",
     AT(cache.lookups)},
    {"wagate_cache_hits_total", 8, PATH("session_cache", "hits"), STATS_COUNTER,
     "Session cache lookups that found an entry.", AT(cache.hits)},
    {"wagate_cache_short_circuits_total", 9,
     PATH("session_cache", "short_circuits"), STATS_COUNTER,
     "Sends answered 403 SESSION_EXPIRED from the cache.",
     AT(cache.short_circuits)},
    {NULL, 0, PATH("session_cache", "evictions"), STATS_COUNTER,
     "Session cache entries dropped for room (least recently used).",
     AT(cache.evictions)},

    {"wagate_refusal_entries", 25, PATH("refusals", "entries"), STATS_GAUGE,
     "Learned refusals held (senders offline or not found, the balance).",
     AT(refusal_entries)},
    {NULL, 0, PATH("refusals", "sender_offline", "answers"), STATS_COUNTER,
     "Sends answered from a learned \"sender offline\".",
     AT(refusal_answers[REFUSAL_SENDER_OFFLINE])},
    {NULL, 0, PATH("refusals", "sender_offline", "probes"), STATS_COUNTER,
     "Sends forwarded as a probe of a \"sender offline\".",
     AT(refusal_probes[REFUSAL_SENDER_OFFLINE])},
    {NULL, 0, PATH("refusals", "sender_not_found", "answers"), STATS_COUNTER,
     "Sends answered from a learned \"sender not found\".",
     AT(refusal_answers[REFUSAL_SENDER_NOT_FOUND])},
    {NULL, 0, PATH("refusals", "sender_not_found", "probes"), STATS_COUNTER,
     "Sends forwarded as a probe of a \"sender not found\".",
     AT(refusal_probes[REFUSAL_SENDER_NOT_FOUND])},
    {NULL, 0, PATH("refusals", "balance", "answers"), STATS_COUNTER,
     "Sends answered from a learned empty balance.",
     AT(refusal_answers[REFUSAL_BALANCE])},
    {NULL, 0, PATH("refusals", "balance", "probes"), STATS_COUNTER,
     "Sends forwarded as a probe of an empty balance.",
     AT(refusal_probes[REFUSAL_BALANCE])},

    {"wagate_in_flight", 5, PATH("upstream", "in_flight"), STATS_GAUGE,
     "Requests accepted and not yet answered (queued included).",
     AT(in_flight)},
    {"wagate_upstream_rate_limited_total", 1, PATH("upstream", "upstream_429s"),
     STATS_COUNTER, "Upstream answers 429 (each pauses the limiter).",
     AT(upstream_429s)},
    {"wagate_rate_limited_total", 2, PATH(NULL), STATS_COUNTER,
     "Requests answered 429 RATE_LIMITED by the gateway.", AT(rate_limited)},

    {"wagate_queue_depth", 3, PATH("upstream", "send_limiter", "queue_depth"),
     STATS_GAUGE, "Sends waiting for their rate slot.", AT(send.depth)},
    {NULL, 0, PATH("upstream", "send_limiter", "submitted"), STATS_COUNTER,
     "Sends handed to the send limiter.", AT(send.submitted)},
    {NULL, 0, PATH("upstream", "send_limiter", "rate_limited"), STATS_COUNTER,
     "Sends answered 429 RATE_LIMITED: their slot was too far.",
     AT(send.refused)},
    {NULL, 0, PATH("upstream", "send_limiter", "waited"), STATS_COUNTER,
     "Sends that waited for a later slot.", AT(send.waited)},
    {NULL, 0, PATH("upstream", "send_limiter", "wait_ms_total"), STATS_COUNTER,
     "Milliseconds those sends waited, summed.", AT(send.wait_ms_total)},
    {NULL, 0, PATH("upstream", "send_limiter", "wait_ms_max"), STATS_GAUGE,
     "The longest wait of a send, in milliseconds.", AT(send.wait_ms_max)},
    {NULL, 0, PATH("upstream", "send_limiter", "pauses"), STATS_COUNTER,
     "Upstream 429s that paused the send limiter.", AT(send.pauses)},

    {"wagate_read_queue_depth", 4,
     PATH("upstream", "read_limiter", "queue_depth"), STATS_GAUGE,
     "Reads waiting for their rate slot.", AT(read.depth)},
    {NULL, 0, PATH("upstream", "read_limiter", "submitted"), STATS_COUNTER,
     "Reads handed to the read limiter.", AT(read.submitted)},
    {NULL, 0, PATH("upstream", "read_limiter", "rate_limited"), STATS_COUNTER,
     "Reads answered 429 RATE_LIMITED: their slot was too far.",
     AT(read.refused)},
    {NULL, 0, PATH("upstream", "read_limiter", "waited"), STATS_COUNTER,
     "Reads that waited for a later slot.", AT(read.waited)},
    {NULL, 0, PATH("upstream", "read_limiter", "wait_ms_total"), STATS_COUNTER,
     "Milliseconds those reads waited, summed.", AT(read.wait_ms_total)},
    {NULL, 0, PATH("upstream", "read_limiter", "wait_ms_max"), STATS_GAUGE,
     "The longest wait of a read, in milliseconds.", AT(read.wait_ms_max)},
    {NULL, 0, PATH("upstream", "read_limiter", "pauses"), STATS_COUNTER,
     "Upstream 429s that paused the read limiter.", AT(read.pauses)},

    {"wagate_idempotency_entries", 10, PATH("idempotency", "entries"),
     STATS_GAUGE, "Idempotency keys kept or in flight.", AT(idem.entries)},
    {NULL, 0, PATH("idempotency", "in_flight"), STATS_GAUGE,
     "Idempotency keys whose request has no answer yet.", AT(idem.in_flight)},
    {"wagate_idempotency_replays_total", 11, PATH("idempotency", "replays"),
     STATS_COUNTER, "Answers replayed for an Idempotency-Key.",
     AT(idem.replays)},
    {NULL, 0, PATH("idempotency", "conflicts"), STATS_COUNTER,
     "Idempotency-Keys refused: in progress, or reused for another body.",
     AT(idem.conflicts)},
    {NULL, 0, PATH("idempotency", "evictions"), STATS_COUNTER,
     "Kept answers dropped for room.", AT(idem.evictions)},

    {NULL, 0, PATH("requests_answered"), STATS_COUNTER,
     "Requests answered, every route and decision.", AT(answered)},
    {"wagate_draining", 12, PATH(NULL), STATS_GAUGE,
     "1 while the gateway drains.", AT(draining)},
    {"wagate_metrics_series_dropped_total", 13, PATH(NULL), STATS_COUNTER,
     "Request label sets not counted: the table was full.", AT(series_dropped)},

    {"wagate_state_up", 14, PATH("state", "up"), STATS_GAUGE,
     "1 when the state store answers (always with the memory backend).",
     AT(state_up)},
    {"wagate_state_commands_total", 15, PATH("state", "commands"),
     STATS_COUNTER, "Commands sent to the shared state store.",
     AT(state_commands)},
    {"wagate_state_failures_total", 16, PATH("state", "failures"),
     STATS_COUNTER,
     "State store commands without an answer (down, timed out, dropped).",
     AT(state_failures)},
    {"wagate_state_timeouts_total", 17, PATH("state", "timeouts"),
     STATS_COUNTER,
     "State store commands or connects slower than state.redis.timeout_ms.",
     AT(state_timeouts)},
    {"wagate_state_reconnects_total", 18, PATH("state", "reconnects"),
     STATS_COUNTER, "Times the state store link came up again after a loss.",
     AT(state_reconnects)},
    {NULL, 0, PATH("state", "noscript"), STATS_COUNTER,
     "Scripts Redis had forgotten (NOSCRIPT), sent again in full.",
     AT(state_noscript)},
    {NULL, 0, PATH("state", "pending"), STATS_GAUGE,
     "State store commands waiting for their answer.", AT(state_pending)},
    {"wagate_state_idempotency_unavailable_total", 19,
     PATH("state", "idempotency_unavailable"), STATS_COUNTER,
     "Idempotency operations the state store could not answer (keyed sends "
     "answered 503 STATE_UNAVAILABLE).",
     AT(state.idem_unavailable)},
    {"wagate_state_cache_unavailable_total", 20,
     PATH("state", "cache_unavailable"), STATS_COUNTER,
     "Session cache operations the state store could not answer (read as "
     "no entry).",
     AT(state.cache_unavailable)},
    {"wagate_state_idempotency_fenced_total", 21,
     PATH("state", "idempotency_fenced"), STATS_COUNTER,
     "Sends or answers whose claim no longer held (its lease ran out): "
     "nothing written, nothing sent.",
     AT(state.idem_fenced)},
    {"wagate_state_idempotency_unknown_total", 22,
     PATH("state", "idempotency_unknown"), STATS_COUNTER,
     "Unknown outcomes replayed for a key whose instance stopped after "
     "sending.",
     AT(state.idem_unknown)},
    {"wagate_state_corrupt_total", 23, PATH("state", "corrupt"), STATS_COUNTER,
     "State store values or replies that did not decode (answered as "
     "unavailable).",
     AT(state.corrupt)},
    {"wagate_state_local_slots_total", 24, PATH("state", "local_slots"),
     STATS_COUNTER,
     "Rate slots the instance's own limiter gave (rate / state.instances) "
     "while the shared one could not be asked.",
     AT(local_slots)},
    {"wagate_state_refusals_unavailable_total", 26,
     PATH("state", "refusals_unavailable"), STATS_COUNTER,
     "Learned-refusal operations the state store could not answer (read as "
     "no entry: forwarded).",
     AT(state.refusal_unavailable)},
    {"wagate_state_limiter_mode_changes_total", 27,
     PATH("state", "limiter_mode_changes"), STATS_COUNTER,
     "Switches of the rate limiters between shared and local mode.",
     AT(mode_changes)},
    {"wagate_state_limiter_cutoffs_total", 28, PATH("state", "limiter_cutoffs"),
     STATS_COUNTER,
     "Times a rate limiter went local because Redis answered an error "
     "(BUSY, READONLY, OOM, a refused script) or a reply it could not read "
     "with the link up.",
     AT(cutoffs)},
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

const struct stats_row *
stats_rows(size_t *n)
{
    *n = NROWS;
    return rows;
}

const char *
stats_kind_name(enum stats_kind k)
{
    return k == STATS_COUNTER ? "counter" : "gauge";
}

static void
snap_link(const struct rlink *l, struct stats_snap *s)
{
    struct rlink_stats ls;
    rlink_get_stats(l, &ls);
    s->state_up = rlink_up(l) ? 1 : 0;
    s->state_commands = ls.commands;
    s->state_failures = ls.failed;
    s->state_timeouts = ls.timeouts;
    /* the first connect is not a reconnect */
    s->state_reconnects = ls.connects > 1 ? ls.connects - 1 : 0;
    s->state_noscript = ls.noscript;
    s->state_pending = ls.pending;
}

static void
snap_take(const struct gateway *gw, struct stats_snap *s)
{
    memset(s, 0, sizeof(*s));
    if (gw->cache)
        cache_get_stats(gw->cache, &s->cache);
    if (gw->send_shaper)
        shaper_get_stats(gw->send_shaper, &s->send);
    if (gw->read_shaper)
        shaper_get_stats(gw->read_shaper, &s->read);
    if (gw->idem)
        idem_get_stats(gw->idem, &s->idem);
    s->in_flight = gw->waiting ? ex_waiting(gw) : 0;
    s->upstream_429s = metrics_upstream_429s();
    s->rate_limited = s->send.refused + s->read.refused;
    s->local_slots = s->send.local_slots + s->read.local_slots;
    s->mode_changes = s->send.mode_changes + s->read.mode_changes;
    s->cutoffs = s->send.cutoffs + s->read.cutoffs;
    s->answered = metrics_answered();
    s->draining = gw->draining ? 1 : 0;
    s->series_dropped = metrics_series_dropped();
    if (gw->state)
        state_get_stats(gw->state, &s->state);
    s->state_up = 1; /* the memory backend always answers */
    if (gw->link)
        snap_link(gw->link, s);
    for (int k = 0; k < REFUSAL_KINDS; k++) {
        s->refusal_answers[k] = metrics_refusals(k, 0);
        s->refusal_probes[k] = metrics_refusals(k, 1);
    }
    s->refusal_entries =
        s->state.refusal_entries > 0 ? (uint64_t)s->state.refusal_entries : 0;
}

/* Reads through memcpy: the field's width is its own (size_t or
 * uint64_t, or a double). */
static void
snap_get(const struct stats_snap *s, const struct stats_row *r,
         struct stats_value *v)
{
    const unsigned char *p = (const unsigned char *)s + r->off;
    memset(v, 0, sizeof(*v));
    v->real = r->real;
    if (r->real) {
        memcpy(&v->x, p, sizeof(v->x));
    } else if (r->size == sizeof(uint32_t)) {
        uint32_t u;
        memcpy(&u, p, sizeof(u));
        v->n = u;
    } else {
        memcpy(&v->n, p, sizeof(v->n));
    }
}

void
stats_value(const struct gateway *gw, size_t i, struct stats_value *v)
{
    struct stats_snap s;
    snap_take(gw, &s);
    snap_get(&s, &rows[i < NROWS ? i : 0], v);
}

static void
prom_row(struct evbuffer *out, const struct stats_row *r,
         const struct stats_value *v)
{
    metrics_head(out, r->prom, stats_kind_name(r->kind), r->help);
    /* counts as integers on counters; gauges and real values as %.17g,
     * which is exact for any double */
    if (!v->real && r->kind == STATS_COUNTER)
        evbuffer_add_printf(out, "%s %llu\n", r->prom,
                            (unsigned long long)v->n);
    else
        evbuffer_add_printf(out, "%s %.17g\n", r->prom,
                            v->real ? v->x : (double)v->n);
}

void
stats_render_metrics(const struct gateway *gw, struct evbuffer *out)
{
    struct stats_snap s;
    struct stats_value v;
    snap_take(gw, &s);
    metrics_render(out);
    /* places are few: one pass per place keeps the table the only list */
    for (unsigned pos = 1; pos <= NROWS; pos++) {
        for (size_t i = 0; i < NROWS; i++) {
            if (rows[i].prom == NULL || rows[i].prom_pos != pos)
                continue;
            snap_get(&s, &rows[i], &v);
            prom_row(out, &rows[i], &v);
        }
    }
}

/* The object at the row's path without its last member, created where
 * missing (o borrowed). */
static json_object *
new_object(void)
{
    json_object *o = json_object_new_object();
    if (o == NULL)
        alloc_oom("json_object_new_object");
    return o;
}

static json_object *
admin_parent(json_object *o, const struct stats_row *r, size_t *last)
{
    size_t d = 0;
    while (d + 1 < STATS_PATH_MAX && r->admin[d + 1] != NULL) {
        json_object *child;
        if (!json_object_object_get_ex(o, r->admin[d], &child)) {
            child = new_object();
            json_object_object_add(o, r->admin[d], child);
        }
        o = child;
        d++;
    }
    *last = d;
    return o;
}

json_object *
stats_admin_json(const struct gateway *gw)
{
    struct stats_snap s;
    struct stats_value v;
    snap_take(gw, &s);
    json_object *o = new_object();
    for (size_t i = 0; i < NROWS; i++) {
        if (rows[i].admin[0] == NULL)
            continue;
        size_t last;
        json_object *parent = admin_parent(o, &rows[i], &last);
        snap_get(&s, &rows[i], &v);
        json_object_object_add(parent, rows[i].admin[last],
                               v.real ? json_object_new_double(v.x)
                                      : json_object_new_int64((int64_t)v.n));
    }
    return o;
}
