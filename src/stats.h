/* stats.h - the stats registry: one table of the gateway's plain counts
 * (no labels), each row {Prometheus name, /admin/stats member path, kind,
 * help, getter}, rendered both as the gauges and counters of /metrics and
 * as the JSON of /admin/stats. A new count is one row.
 *
 * The getter is where the value sits in a snapshot that stats.c takes of
 * every owner's exposed stats at render time (cache_get_stats,
 * shaper_get_stats, idem_get_stats, ex_waiting, metrics_answered, ...);
 * this module counts nothing and writes nothing but its output.
 *
 * A row may name only one output (a count /metrics has never shown, such
 * as the cache's max_entries, or one /admin/stats has never shown, such
 * as wagate_draining); where both name the same count differently, the
 * row carries both names. /admin/stats members appear in table order,
 * nested objects where a path first names them; /metrics families in
 * prom_pos order. The labelled series (requests, upstream histogram and errors)
 * stay in metrics.c, which /metrics renders first. */
#ifndef WAGATE_STATS_H
#define WAGATE_STATS_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct gateway;
struct json_object;

enum stats_kind {
    STATS_COUNTER, /* only goes up: Prometheus "counter", name ends _total */
    STATS_GAUGE,   /* a level now: Prometheus "gauge" */
};

#define STATS_PATH_MAX 3 /* depth of an /admin/stats member path */

struct stats_row {
    const char *prom;  /* e.g. "wagate_cache_entries", or
                        * NULL: not on /metrics */
    unsigned prom_pos; /* its place among the rows on /metrics, 1 first
                        * (0 when prom is NULL): the page keeps the order
                        * it had before the registry, which the table's
                        * /admin/stats order cannot also give */
    const char *admin[STATS_PATH_MAX]; /* e.g. {"session_cache", "entries"},
                                        * NULL-padded; {NULL}: not in
                                        * /admin/stats */
    enum stats_kind kind;
    const char *help; /* one sentence; the HELP line on /metrics */
    /* the getter: the value's place in stats.c's snapshot */
    size_t off, size;
    int real; /* a double (a time sum, a maximum); else an unsigned count */
};

/* A row's value: n for counts, x when the row is real. */
struct stats_value {
    int real;
    uint64_t n;
    double x;
};

/* The table (static); *n gets its length. */
const struct stats_row *stats_rows(size_t *n);

/* The kind's Prometheus type name: "counter" or "gauge". */
const char *stats_kind_name(enum stats_kind k);

/* The current value of row i (i < the table's length). gw is borrowed;
 * a NULL store in it (cache, limiters, idempotency, waitlist) reads 0. */
void stats_value(const struct gateway *gw, size_t i, struct stats_value *v);

/* Appends the whole /metrics page to out: metrics.c's labelled series,
 * then every row with a Prometheus name ("# HELP", "# TYPE", sample), by
 * prom_pos. */
void stats_render_metrics(const struct gateway *gw, struct evbuffer *out);

/* The /admin/stats object (caller owns it: json_object_put): every row
 * with an admin path, counts as integers and real rows as doubles. */
struct json_object *stats_admin_json(const struct gateway *gw);

#endif
