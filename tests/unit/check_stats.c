/* check_stats.c - the stats registry (stats.h): every row renders in the
 * outputs it names, with its owner's value; Prometheus names are valid and
 * unique; the whole /metrics page is well formed (# HELP, then # TYPE,
 * then the samples of that family); the /admin/stats JSON parses and holds
 * every row; and the families and members that existed before the
 * registry are all still there, word for word. */
#include "unit.h"
#include <event2/buffer.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exchange.h"
#include "gateway.h"
#include "idempotency.h"
#include "metrics.h"
#include "session_cache.h"
#include "shaper.h"
#include "redis_link.h"
#include "refusals.h"
#include "state.h"
#include "stats.h"

#define NOW 1767225600000LL /* 2026-01-01T00:00:00Z */
#define MAX_FAMILIES 64

static struct event_base *base;
static struct gateway gw;

/* ---- a gateway whose every count is known ---- */

static void
go(void *item)
{
    (void)item;
}

static void
refuse(void *item, long retry_after_s)
{
    (void)item;
    (void)retry_after_s;
}

/* cache (max 2): three learned, one evicted; three lookups, two hits, one
 * short-circuit */
static void
fill_cache(void)
{
    gw.cache = cache_new(2);
    cache_learn_open(gw.cache, 1, 101, NOW + 3600000, CACHE_SRC_INBOUND, NOW);
    cache_learn_closed(gw.cache, 1, 102, NOW - 1000, CACHE_SRC_SEND_FREEFORM,
                       NOW);
    cache_learn_open(gw.cache, 1, 103, NOW + 3600000, CACHE_SRC_INBOUND, NOW);
    ck_assert_int_eq(cache_decide(gw.cache, 1, 102, NOW, 300000, NULL),
                     CACHE_SHORT_CIRCUIT);
    ck_assert_int_eq(cache_decide(gw.cache, 1, 103, NOW, 300000, NULL),
                     CACHE_FORWARD);
    ck_assert_int_eq(cache_decide(gw.cache, 1, 101, NOW, 300000, NULL),
                     CACHE_FORWARD);
}

/* idempotency: one key in flight, one kept and replayed, two conflicts */
static void
fill_idem(void)
{
    unsigned char h1[IDEM_HASH_LEN] = {1}, h2[IDEM_HASH_LEN] = {2};
    struct idem_answer a = {200, NULL, 0, "{}", 2};
    gw.idem = idem_new(10, 86400000);
    ck_assert_int_eq(idem_begin(gw.idem, "", "k-a", h1, NOW, NULL), IDEM_NEW);
    ck_assert_int_eq(idem_begin(gw.idem, "", "k-b", h1, NOW, NULL), IDEM_NEW);
    idem_complete(gw.idem, "", "k-b", &a, NOW);
    ck_assert_int_eq(idem_begin(gw.idem, "", "k-b", h1, NOW, NULL),
                     IDEM_REPLAY);
    ck_assert_int_eq(idem_begin(gw.idem, "", "k-b", h2, NOW, NULL),
                     IDEM_REUSED);
    ck_assert_int_eq(idem_begin(gw.idem, "", "k-a", h1, NOW, NULL),
                     IDEM_IN_PROGRESS);
}

static void
setup(void)
{
    static int items[8];
    long retry;
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
    memset(&gw, 0, sizeof(gw));
    gw.base = base;
    fill_cache();
    fill_idem();
    /* 1 send a second, at most 1.5 s of queue: the third is refused */
    gw.send_shaper = shaper_new(base, 1, 1, 1500);
    gw.read_shaper = shaper_new(base, 0, 1, 1500);
    for (int i = 0; i < 3; i++)
        shaper_submit(gw.send_shaper, &items[i], go, refuse, &retry);
    shaper_submit(gw.read_shaper, &items[3], go, refuse, &retry);
    gw.waiting = ex_waitlist_new();
    gw.draining = 1;
    metrics_count_request(ROUTE_HEALTHZ, DECISION_LOCAL, 200);
    metrics_count_upstream_429();
}

static void
teardown(void)
{
    ex_waitlist_free(gw.waiting);
    shaper_free(gw.send_shaper);
    shaper_free(gw.read_shaper);
    idem_free(gw.idem);
    cache_free(gw.cache);
    event_base_free(base);
}

/* ---- the two outputs, as text ---- */

static char *
metrics_text(void)
{
    struct evbuffer *b = evbuffer_new();
    ck_assert_ptr_nonnull(b);
    stats_render_metrics(&gw, b);
    size_t n = evbuffer_get_length(b);
    char *t = malloc(n + 1);
    ck_assert_ptr_nonnull(t);
    evbuffer_remove(b, t, n);
    t[n] = '\0';
    evbuffer_free(b);
    return t;
}

/* The admin JSON as admin.c sends it, parsed back strictly. */
static json_object *
admin_parsed(void)
{
    json_object *o = stats_admin_json(&gw);
    const char *text = json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *back = json_tokener_parse_ex(tok, text, (int)strlen(text));
    ck_assert_msg(json_tokener_get_error(tok) == json_tokener_success, "%s",
                  text);
    ck_assert_uint_eq(json_tokener_get_parse_end(tok), strlen(text));
    json_tokener_free(tok);
    json_object_put(o);
    ck_assert(json_object_is_type(back, json_type_object));
    return back;
}

/* The member at a row's path, or NULL. */
static json_object *
at_path(json_object *o, const char *const path[STATS_PATH_MAX])
{
    for (size_t d = 0; d < STATS_PATH_MAX && path[d] != NULL; d++)
        if (!json_object_is_type(o, json_type_object) ||
            !json_object_object_get_ex(o, path[d], &o))
            return NULL;
    return o;
}

/* The value of the sample line "name VALUE", or -1 if absent. */
static int
sample(const char *text, const char *name, char *value, size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        ck_assert_ptr_nonnull(eol);
        if (strncmp(p, name, n) == 0 && p[n] == ' ') {
            size_t len = (size_t)(eol - (p + n + 1));
            ck_assert_uint_lt(len, cap);
            memcpy(value, p + n + 1, len);
            value[len] = '\0';
            return 0;
        }
        p = eol + 1;
    }
    return -1;
}

static int
valid_prom_name(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
          *s == ':'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_' || *s == ':'))
            return 0;
    return 1;
}

static int
ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* ---- the table itself ---- */

START_TEST(rows_are_well_formed)
{
    size_t n;
    const struct stats_row *r = stats_rows(&n);
    ck_assert_uint_gt(n, 0);
    for (size_t i = 0; i < n; i++) {
        const char *who = r[i].prom ? r[i].prom : r[i].admin[0];
        ck_assert_msg(r[i].prom != NULL || r[i].admin[0] != NULL,
                      "row %zu names no output", i);
        ck_assert_msg(r[i].help != NULL && r[i].help[0] != '\0' &&
                          strchr(r[i].help, '\n') == NULL &&
                          strchr(r[i].help, '\\') == NULL,
                      "%s: help must be one plain line", who);
        ck_assert(r[i].kind == STATS_COUNTER || r[i].kind == STATS_GAUGE);
        if (r[i].real)
            ck_assert_uint_eq(r[i].size, sizeof(double));
        else
            ck_assert_msg(r[i].size == 4 || r[i].size == 8, "%s", who);
        if (r[i].prom != NULL) {
            ck_assert_msg(valid_prom_name(r[i].prom), "%s", r[i].prom);
            ck_assert_msg(strncmp(r[i].prom, "wagate_", 7) == 0, "%s",
                          r[i].prom);
            ck_assert_msg(ends_with(r[i].prom, "_total") ==
                              (r[i].kind == STATS_COUNTER),
                          "%s: _total exactly on counters", r[i].prom);
        }
        for (size_t d = 0; d < STATS_PATH_MAX && r[i].admin[d]; d++)
            ck_assert_msg(r[i].admin[d][0] != '\0', "%s: empty member", who);
    }
}
END_TEST

/* Prometheus names unique; no admin path equal to, or inside, another
 * (a count cannot also be an object). */
START_TEST(names_are_unique)
{
    size_t n;
    const struct stats_row *r = stats_rows(&n);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            if (r[i].prom && r[j].prom)
                ck_assert_msg(strcmp(r[i].prom, r[j].prom) != 0, "%s twice",
                              r[i].prom);
            if (r[i].admin[0] == NULL || r[j].admin[0] == NULL)
                continue;
            size_t d = 0;
            while (d < STATS_PATH_MAX && r[i].admin[d] && r[j].admin[d] &&
                   strcmp(r[i].admin[d], r[j].admin[d]) == 0)
                d++;
            ck_assert_msg(d < STATS_PATH_MAX && r[i].admin[d] && r[j].admin[d],
                          "admin path of row %zu covers row %zu's", i, j);
        }
}
END_TEST

/* ---- /metrics ---- */

START_TEST(every_row_renders_on_metrics)
{
    size_t n;
    const struct stats_row *r = stats_rows(&n);
    char *text = metrics_text();
    for (size_t i = 0; i < n; i++) {
        if (r[i].prom == NULL)
            continue;
        struct stats_value v;
        char want[512], got[64];
        stats_value(&gw, i, &v);
        if (!v.real && r[i].kind == STATS_COUNTER)
            snprintf(got, sizeof(got), "%llu", (unsigned long long)v.n);
        else
            snprintf(got, sizeof(got), "%.17g", v.real ? v.x : (double)v.n);
        snprintf(want, sizeof(want), "# HELP %s %s\n# TYPE %s %s\n%s %s\n",
                 r[i].prom, r[i].help, r[i].prom, stats_kind_name(r[i].kind),
                 r[i].prom, got);
        ck_assert_msg(strstr(text, want) != NULL, "missing:\n%s", want);
    }
    free(text);
}
END_TEST

/* One family: the samples after its # TYPE line must carry its name (a
 * histogram: name_bucket, name_sum, name_count). */
static int
sample_of(const char *line, const char *family, const char *type)
{
    size_t n = strlen(family);
    if (strncmp(line, family, n) != 0)
        return 0;
    const char *rest = line + n;
    if (strcmp(type, "histogram") == 0) {
        if (strncmp(rest, "_bucket{", 8) == 0)
            rest += 7;
        else if (strncmp(rest, "_sum ", 5) == 0 ||
                 strncmp(rest, "_count ", 7) == 0)
            rest = strchr(rest, ' ');
    }
    return *rest == ' ' || *rest == '{';
}

/* "VALUE" or "{labels} VALUE", VALUE a number. */
static int
sample_value_ok(const char *rest)
{
    if (*rest == '{') {
        const char *end = strstr(rest, "} ");
        if (end == NULL)
            return 0;
        rest = end + 1;
    }
    if (*rest != ' ' || rest[1] == '\0')
        return 0;
    char *end;
    strtod(rest + 1, &end);
    return *end == '\0';
}

START_TEST(exposition_is_well_formed)
{
    char *text = metrics_text();
    char family[128] = "", type[16] = "";
    char seen[MAX_FAMILIES][128];
    size_t nseen = 0;
    ck_assert(ends_with(text, "\n"));
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char name[128], help_or_type[256];
        if (strncmp(line, "# HELP ", 7) == 0) {
            ck_assert_msg(
                sscanf(line, "# HELP %127s %255[^\n]", name, help_or_type) == 2,
                "%s", line);
            ck_assert_msg(valid_prom_name(name), "%s", line);
            for (size_t i = 0; i < nseen; i++)
                ck_assert_msg(strcmp(seen[i], name) != 0, "%s twice", name);
            ck_assert_uint_lt(nseen, MAX_FAMILIES);
            snprintf(seen[nseen++], sizeof(seen[0]), "%s", name);
            snprintf(family, sizeof(family), "%s", name);
            type[0] = '\0'; /* the next line must be its # TYPE */
            line = strtok(NULL, "\n");
            ck_assert_ptr_nonnull(line);
            ck_assert_msg(sscanf(line, "# TYPE %127s %15s", name, type) == 2,
                          "after HELP %s: %s", family, line);
            ck_assert_str_eq(name, family);
            ck_assert_msg(strcmp(type, "counter") == 0 ||
                              strcmp(type, "gauge") == 0 ||
                              strcmp(type, "histogram") == 0,
                          "%s: type %s", family, type);
            continue;
        }
        ck_assert_msg(line[0] != '#', "stray comment: %s", line);
        ck_assert_msg(family[0] != '\0', "sample before any family: %s", line);
        ck_assert_msg(sample_of(line, family, type), "%s under family %s", line,
                      family);
        const char *rest = line + strlen(family);
        if (strcmp(type, "histogram") == 0)
            rest += strcspn(rest, " {");
        ck_assert_msg(sample_value_ok(rest), "%s", line);
    }
    free(text);
}
END_TEST

/* ---- /admin/stats ---- */

START_TEST(admin_json_holds_every_row)
{
    size_t n;
    const struct stats_row *r = stats_rows(&n);
    json_object *o = admin_parsed();
    for (size_t i = 0; i < n; i++) {
        if (r[i].admin[0] == NULL)
            continue;
        struct stats_value v;
        json_object *m = at_path(o, r[i].admin);
        stats_value(&gw, i, &v);
        ck_assert_msg(m != NULL, "row %zu (%s...) missing", i, r[i].admin[0]);
        if (v.real) {
            ck_assert(json_object_is_type(m, json_type_double));
            ck_assert(json_object_get_double(m) == v.x);
        } else {
            ck_assert(json_object_is_type(m, json_type_int));
            ck_assert_int_eq(json_object_get_int64(m), (int64_t)v.n);
        }
    }
    json_object_put(o);
}
END_TEST

/* ---- what existed before the registry, word for word ---- */

struct prom_then {
    const char *name, *type, *help;
    uint64_t want;
};

START_TEST(metrics_families_of_before_are_kept)
{
    struct cache_stats cs;
    struct shaper_stats ss, rs;
    struct idem_stats is;
    cache_get_stats(gw.cache, &cs);
    shaper_get_stats(gw.send_shaper, &ss);
    shaper_get_stats(gw.read_shaper, &rs);
    idem_get_stats(gw.idem, &is);
    ck_assert_uint_eq(cs.evictions, 1);
    ck_assert_uint_ge(ss.refused, 1);
    const struct prom_then then[] = {
        {"wagate_upstream_rate_limited_total", "counter",
         "Upstream answers 429 (each pauses the limiter).",
         metrics_upstream_429s()},
        {"wagate_rate_limited_total", "counter",
         "Requests answered 429 RATE_LIMITED by the gateway.",
         ss.refused + rs.refused},
        {"wagate_queue_depth", "gauge", "Sends waiting for their rate slot.",
         ss.depth},
        {"wagate_read_queue_depth", "gauge",
         "Reads waiting for their rate slot.", rs.depth},
        {"wagate_in_flight", "gauge",
         "Requests accepted and not yet answered (queued included).", 0},
        {"wagate_cache_entries", "gauge", "Session cache entries.", 2},
        {"wagate_cache_lookups_total", "counter",
         "Session cache lookups for send-freeform.", 3},
        {"wagate_cache_hits_total", "counter",
         "Session cache lookups that found an entry.", 2},
        {"wagate_cache_short_circuits_total", "counter",
         "Sends answered 403 SESSION_EXPIRED from the cache.", 1},
        {"wagate_idempotency_entries", "gauge",
         "Idempotency keys kept or in flight.", 2},
        {"wagate_idempotency_replays_total", "counter",
         "Answers replayed for an Idempotency-Key.", 1},
        {"wagate_draining", "gauge", "1 while the gateway drains.", 1},
        {"wagate_metrics_series_dropped_total", "counter",
         "Request label sets not counted: the table was full.",
         metrics_series_dropped()},
    };
    char *text = metrics_text();
    for (size_t i = 0; i < sizeof(then) / sizeof(then[0]); i++) {
        char want[512], got[64];
        snprintf(want, sizeof(want), "# HELP %s %s\n# TYPE %s %s\n%s ",
                 then[i].name, then[i].help, then[i].name, then[i].type,
                 then[i].name);
        ck_assert_msg(strstr(text, want) != NULL, "missing:\n%s", want);
        ck_assert_int_eq(sample(text, then[i].name, got, sizeof(got)), 0);
        ck_assert_msg(strtoull(got, NULL, 10) == then[i].want,
                      "%s %s, want %llu", then[i].name, got,
                      (unsigned long long)then[i].want);
    }
    /* metrics.c's labelled families come first, as before */
    ck_assert_ptr_eq(strstr(text, "# HELP wagate_requests_total "), text);
    ck_assert_ptr_nonnull(
        strstr(text, "# TYPE wagate_upstream_duration_seconds histogram\n"));
    ck_assert_ptr_nonnull(
        strstr(text, "# TYPE wagate_upstream_errors_total counter\n"));
    free(text);
}
END_TEST

/* The exact text /admin/stats had before, with this gateway's values. */
START_TEST(admin_json_of_before_is_kept)
{
    struct shaper_stats ss, rs;
    shaper_get_stats(gw.send_shaper, &ss);
    shaper_get_stats(gw.read_shaper, &rs);
    char want[2048];
    json_object *sd = json_object_new_double(ss.wait_ms_total);
    json_object *sm = json_object_new_double(ss.wait_ms_max);
    json_object *rd = json_object_new_double(rs.wait_ms_total);
    json_object *rm = json_object_new_double(rs.wait_ms_max);
    snprintf(
        want, sizeof(want),
        "{\"session_cache\":{\"entries\":2,\"max_entries\":2,\"lookups\":3,"
        "\"hits\":2,\"short_circuits\":1,\"evictions\":1},"
        "\"upstream\":{\"in_flight\":0,\"upstream_429s\":%llu,"
        "\"send_limiter\":{\"queue_depth\":%zu,\"submitted\":%llu,"
        "\"rate_limited\":%llu,\"waited\":%llu,\"wait_ms_total\":%s,"
        "\"wait_ms_max\":%s,\"pauses\":%llu},"
        "\"read_limiter\":{\"queue_depth\":%zu,\"submitted\":%llu,"
        "\"rate_limited\":%llu,\"waited\":%llu,\"wait_ms_total\":%s,"
        "\"wait_ms_max\":%s,\"pauses\":%llu}},"
        "\"idempotency\":{\"entries\":2,\"in_flight\":1,\"replays\":1,"
        "\"conflicts\":2,\"evictions\":0},\"requests_answered\":%llu}",
        (unsigned long long)metrics_upstream_429s(), ss.depth,
        (unsigned long long)ss.submitted, (unsigned long long)ss.refused,
        (unsigned long long)ss.waited, json_object_to_json_string(sd),
        json_object_to_json_string(sm), (unsigned long long)ss.pauses, rs.depth,
        (unsigned long long)rs.submitted, (unsigned long long)rs.refused,
        (unsigned long long)rs.waited, json_object_to_json_string(rd),
        json_object_to_json_string(rm), (unsigned long long)rs.pauses,
        (unsigned long long)metrics_answered());
    json_object *o = stats_admin_json(&gw);
    json_object_object_del(o, "state");    /* issue 10's: state_rows */
    json_object_object_del(o, "refusals"); /* issue 11's: refusal_rows */
    ck_assert_str_eq(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                              JSON_C_TO_STRING_NOSLASHESCAPE),
        want);
    json_object_put(o);
    json_object_put(sd);
    json_object_put(sm);
    json_object_put(rd);
    json_object_put(rm);
}
END_TEST

/* The state store's rows (SPEC section 11): /metrics and /admin/stats
 * both show them; the memory backend is up and never falls back. */
START_TEST(state_rows)
{
    struct state *st = state_memory_new(base, gw.idem, gw.cache, NULL, 0);
    gw.state = st;
    char *text = metrics_text(), v[64];
    static const char *const zero[] = {
        "wagate_state_commands_total",
        "wagate_state_failures_total",
        "wagate_state_timeouts_total",
        "wagate_state_reconnects_total",
        "wagate_state_idempotency_unavailable_total",
        "wagate_state_cache_unavailable_total",
        "wagate_state_idempotency_fenced_total",
        "wagate_state_idempotency_unknown_total",
        "wagate_state_corrupt_total",
        "wagate_state_local_slots_total",
        "wagate_state_refusals_unavailable_total"};
    ck_assert_int_eq(sample(text, "wagate_state_up", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "1");
    ck_assert_ptr_nonnull(strstr(text, "# TYPE wagate_state_up gauge\n"));
    for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++) {
        ck_assert_msg(sample(text, zero[i], v, sizeof(v)) == 0, "%s", zero[i]);
        ck_assert_str_eq(v, "0");
    }
    free(text);
    json_object *o = admin_parsed(), *state, *up;
    ck_assert(json_object_object_get_ex(o, "state", &state));
    ck_assert(json_object_object_get_ex(state, "up", &up));
    ck_assert_int_eq(json_object_get_int64(up), 1);
    ck_assert(json_object_object_get_ex(state, "idempotency_unavailable", &up));
    ck_assert(json_object_object_get_ex(state, "cache_unavailable", &up));
    ck_assert(json_object_object_get_ex(state, "local_slots", &up));
    json_object_put(o);
    gw.state = NULL;
    state_free(st);
}
END_TEST

static void
on_reply(void *arg, enum rlink_status st, const struct redisReply *r)
{
    (void)r;
    *(int *)arg = st == RLINK_UNAVAILABLE ? 1 : 2;
}

/* With a Redis link the rows read the link: down (nothing listens on its
 * socket), wagate_state_up is 0 and a command refused by the breaker is
 * a command that failed. */
START_TEST(state_rows_read_the_link)
{
    static const struct rlink_script one[] = {{"t", "return 1"}};
    struct rlink_config lc = {"unix:/nonexistent/wagate-check.sock", NULL, 100};
    char err[256], v[64];
    int got = 0;
    struct rlink *l =
        rlink_new(base, &lc, one, 1, NULL, NULL, err, sizeof(err));
    ck_assert_msg(l != NULL, "%s", err);
    gw.link = l;
    ck_assert_ptr_null(rlink_eval(l, 0, 0, 0, NULL, NULL, on_reply, &got));
    ck_assert_int_eq(got, 1);
    char *text = metrics_text();
    ck_assert_int_eq(sample(text, "wagate_state_up", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "0");
    ck_assert_int_eq(sample(text, "wagate_state_commands_total", v, sizeof(v)),
                     0);
    ck_assert_str_eq(v, "1");
    ck_assert_int_eq(sample(text, "wagate_state_failures_total", v, sizeof(v)),
                     0);
    ck_assert_str_eq(v, "1");
    ck_assert_int_eq(
        sample(text, "wagate_state_reconnects_total", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "0");
    free(text);
    gw.link = NULL;
    rlink_free(l);
}
END_TEST

/* A gateway with no stores (as the admin unit tests build one) reads 0. */
START_TEST(missing_stores_read_zero)
{
    struct gateway empty = {0};
    size_t n;
    const struct stats_row *r = stats_rows(&n);
    json_object *o = stats_admin_json(&empty);
    json_object *m = at_path(o, r[0].admin);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(json_object_get_int64(m), 0);
    json_object_put(o);
}
END_TEST

/* The learned refusals (SPEC section 4a): answers and probes by kind on
 * /metrics (labelled, every kind shown) and in /admin/stats, the entries
 * the store holds. */
START_TEST(refusal_rows)
{
    struct refusals *r = refusals_new(4);
    ck_assert_ptr_nonnull(r);
    struct state *st = state_memory_new(base, gw.idem, gw.cache, r, 0);
    gw.state = st;
    ck_assert_int_eq(refusals_put(r, REFUSAL_BALANCE, 0, "{}", 2, 1), 0);
    ck_assert_int_eq(refusals_put(r, REFUSAL_SENDER_OFFLINE, 13, "{}", 2, 1),
                     0);
    uint64_t a0 = metrics_refusals(REFUSAL_SENDER_OFFLINE, 0);
    uint64_t p0 = metrics_refusals(REFUSAL_BALANCE, 1);
    metrics_count_refusal(REFUSAL_SENDER_OFFLINE, 0);
    metrics_count_refusal(REFUSAL_SENDER_OFFLINE, 0);
    metrics_count_refusal(REFUSAL_BALANCE, 1);
    metrics_count_refusal(REFUSAL_KINDS, 0); /* out of range: nothing */
    metrics_count_refusal(-1, 1);
    char *text = metrics_text(), v[64], want[128];
    ck_assert_ptr_nonnull(
        strstr(text, "# TYPE wagate_refusal_answers_total counter\n"));
    ck_assert_ptr_nonnull(
        strstr(text, "# TYPE wagate_refusal_probes_total counter\n"));
    snprintf(want, sizeof(want),
             "\nwagate_refusal_answers_total{kind=\"sender_offline\"} %llu\n",
             (unsigned long long)a0 + 2);
    ck_assert_msg(strstr(text, want) != NULL, "missing %s", want);
    snprintf(want, sizeof(want),
             "\nwagate_refusal_probes_total{kind=\"insufficient_balance\"} "
             "%llu\n",
             (unsigned long long)p0 + 1);
    ck_assert_msg(strstr(text, want) != NULL, "missing %s", want);
    ck_assert_ptr_nonnull(
        strstr(text, "\nwagate_refusal_answers_total{kind=\"sender_not_found\"} "));
    ck_assert_int_eq(sample(text, "wagate_refusal_entries", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "2");
    free(text);
    json_object *o = admin_parsed(), *refs, *k, *n;
    ck_assert(json_object_object_get_ex(o, "refusals", &refs));
    ck_assert(json_object_object_get_ex(refs, "entries", &n));
    ck_assert_int_eq(json_object_get_int64(n), 2);
    ck_assert(json_object_object_get_ex(refs, "sender_offline", &k));
    ck_assert(json_object_object_get_ex(k, "answers", &n));
    ck_assert_int_eq(json_object_get_int64(n), (int64_t)a0 + 2);
    ck_assert(json_object_object_get_ex(refs, "balance", &k));
    ck_assert(json_object_object_get_ex(k, "probes", &n));
    ck_assert_int_eq(json_object_get_int64(n), (int64_t)p0 + 1);
    json_object_put(o);
    gw.state = NULL;
    state_free(st);
    refusals_free(r);
}
END_TEST

/* Found by the hostile review of the refactor: /metrics lists the
 * registry's families in the order the page had before the registry. */
/* c62cc1f's metrics_render(), after the labelled families. */
static const char *const families_before[] = {
    "wagate_upstream_rate_limited_total",
    "wagate_rate_limited_total",
    "wagate_queue_depth",
    "wagate_read_queue_depth",
    "wagate_in_flight",
    "wagate_cache_entries",
    "wagate_cache_lookups_total",
    "wagate_cache_hits_total",
    "wagate_cache_short_circuits_total",
    "wagate_idempotency_entries",
    "wagate_idempotency_replays_total",
    "wagate_draining",
    "wagate_metrics_series_dropped_total",
};
#define NBEFORE (sizeof(families_before) / sizeof(families_before[0]))

START_TEST(metrics_families_keep_their_order)
{
    char *text = metrics_text();
    const char *at = strstr(text, "# HELP wagate_upstream_errors_total ");
    ck_assert_ptr_nonnull(at); /* the last labelled family comes first */
    for (size_t i = 0; i < NBEFORE; i++) {
        char head[128];
        snprintf(head, sizeof(head), "# HELP %s ", families_before[i]);
        const char *p = strstr(text, head);
        ck_assert_msg(p != NULL, "missing %s", families_before[i]);
        ck_assert_msg(p > at, "%s comes before %s", families_before[i],
                      i ? families_before[i - 1] : "the labelled families");
        at = p;
    }
    free(text);
}
END_TEST

/* Every row on /metrics has its own place; rows not on it have none. */
START_TEST(metrics_positions_are_a_permutation)
{
    size_t n, nprom = 0;
    const struct stats_row *rows = stats_rows(&n);
    for (size_t i = 0; i < n; i++) {
        if (rows[i].prom == NULL) {
            ck_assert_uint_eq(rows[i].prom_pos, 0);
            continue;
        }
        nprom++;
        ck_assert_msg(rows[i].prom_pos >= 1, "%s has no place", rows[i].prom);
        for (size_t j = 0; j < i; j++)
            ck_assert_msg(rows[j].prom == NULL ||
                              rows[j].prom_pos != rows[i].prom_pos,
                          "%s and %s share place %u", rows[j].prom,
                          rows[i].prom, rows[i].prom_pos);
    }
    for (size_t i = 0; i < n; i++)
        if (rows[i].prom != NULL)
            ck_assert_uint_le(rows[i].prom_pos, nprom);
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = tcase_create("registry");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, rows_are_well_formed);
    tcase_add_test(tc, names_are_unique);
    tcase_add_test(tc, every_row_renders_on_metrics);
    tcase_add_test(tc, exposition_is_well_formed);
    tcase_add_test(tc, admin_json_holds_every_row);
    tcase_add_test(tc, metrics_families_of_before_are_kept);
    tcase_add_test(tc, admin_json_of_before_is_kept);
    tcase_add_test(tc, missing_stores_read_zero);
    tcase_add_test(tc, metrics_families_keep_their_order);
    tcase_add_test(tc, metrics_positions_are_a_permutation);
    tcase_add_test(tc, state_rows);
    tcase_add_test(tc, refusal_rows);
    tcase_add_test(tc, state_rows_read_the_link);
    suite_add_tcase(s, tc);
    return s;
}
