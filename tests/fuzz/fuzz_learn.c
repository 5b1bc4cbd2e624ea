/* fuzz_learn.c - learning from upstream answers (src/learn.h) into a
 * session cache (src/session_cache.h), checked against a model.
 *
 * Input: a header, then one answer body shared by every step.
 *   byte 0      max_entries (1 + b % 8) and recheck_ms for cache_get
 *               (b >> 3 & 3: 0, 1000, 300000 or negative)
 *   byte 1      number of steps (1 + b % 16) and the clock's start (b >> 4
 *               & 7: 2026-02-25T10:30:00Z, a day, a millisecond or five
 *               minutes either side...)
 *   3 bytes     per step: A = what (A & 7: 0-2 learn, 3 restart, 4-5
 *               decide, 6 forget, 7 resize) and which (sender, phone) pair
 *               (A >> 3, 11 pairs, two of them invalid); B = route (B & 3)
 *               and status (B >> 2 & 7) of the answer, recheck_ms of a
 *               decide or a restart (B & 3), or the new bound (B % 10);
 *               C = how far the clock moves first (steps[C & 15] + C >> 4
 *               ms; it may go back)
 *   the rest    the answer body
 *
 * The model is SPEC section 4 and the two headers, written down plainly:
 * what each route and status teaches (with json-c strict parsing and
 * isotime_parse, as learn.h says), one entry per pair, LRU order,
 * trust and probes. A restart is what the state file does: cache_export()
 * gives every entry as the model holds it, least recently used first, and
 * cache_import() into a new cache keeps exactly those still useful, with
 * no trust gained for the time it was down. After every step each pair
 * reads (cache_get) as the model says and the statistics agree; the cache
 * never holds more than its bound. */
#include <json-c/json.h>
#include <string.h>

#include "fuzz.h"
#include "isotime.h"
#include "learn.h"
#include "session_cache.h"

#define NPAIRS 11 /* 0-8 valid; 9: sender 0; 10: phone 0 */
#define NVALID 9
#define BASE_NOW INT64_C(1772015400000) /* 2026-02-25T10:30:00Z */
#define UNKNOWN CACHE_TIME_UNKNOWN

static const int64_t senders[3] = {1, 12, INT64_MAX};
static const uint64_t phones[3] = {14155551234u, 12u, 999999999999999u};
static const enum route_id routes[4] = {ROUTE_SEND_FREEFORM, ROUTE_SEND,
                                        ROUTE_SESSION_STATUS, ROUTE_SENDERS};
static const int statuses[8] = {200, 201, 204, 403, 404, 429, 500, 299};
static const int64_t steps[16] = {
    0,     1,      499,     500,      999,      1000,     1001,  59999,
    60000, 300000, 3600000, 86399999, 86400000, 86400001, -1000, -86400000};
static const int64_t starts[8] = {0, -86400000, 86400000, -1,
                                  1, -300000,   300000,   -3600000};
static const int64_t rechecks[4] = {0, 1000, 300000, -5};

struct mentry {
    int present;
    int open;
    int64_t when, learned_at;
    enum cache_source src;
    uint64_t stamp; /* recency: larger is more recent */
};

struct model {
    struct mentry e[NPAIRS];
    size_t count, max;
    uint64_t clock, lookups, hits, shorts, evictions;
};

static void
pair_of(int i, int64_t *sender, uint64_t *phone)
{
    *sender = i == 9 ? 0 : senders[i % 3];
    *phone = i == 10 ? 0 : phones[(i / 3) % 3];
}

/* ---- what an answer teaches (learn.h) ---- */

struct lesson {
    int open;
    int64_t when;
    enum cache_source src;
};

static json_object *
parse_strict(const char *body, size_t len)
{
    json_tokener *tok = json_tokener_new();
    FUZZ_CHECK(tok != NULL, "json_tokener_new");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, body, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

static json_object *
member(json_object *o, const char *name, enum json_type t)
{
    json_object *v;
    if (o == NULL || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, t))
        return NULL;
    return v;
}

static int
when_of(json_object *ss, const char *name, int64_t *t)
{
    json_object *v = member(ss, name, json_type_string);
    return v ? isotime_parse(json_object_get_string(v),
                             (size_t)json_object_get_string_len(v), t)
             : -1;
}

/* session_status: is_open and expires_at (open), or expired_at, else
 * expires_at, else unknown (closed). */
static int
from_status(json_object *root, enum cache_source src, struct lesson *l)
{
    json_object *ss = member(root, "session_status", json_type_object);
    json_object *open = member(ss, "is_open", json_type_boolean);
    if (open == NULL)
        return 0;
    l->src = src;
    l->open = json_object_get_boolean(open);
    if (l->open)
        return when_of(ss, "expires_at", &l->when) == 0;
    if (when_of(ss, "expired_at", &l->when) != 0 &&
        when_of(ss, "expires_at", &l->when) != 0)
        l->when = UNKNOWN;
    return 1;
}

static int
expected_lesson(enum route_id route, int64_t sender, uint64_t phone, int status,
                const char *body, size_t len, int64_t now, struct lesson *l)
{
    if (sender < 1 || phone == 0)
        return 0;
    if (route == ROUTE_SEND) {
        l->open = 1;
        l->when = now + LEARN_WINDOW_MS;
        l->src = CACHE_SRC_TEMPLATE;
        return status >= 200 && status <= 299;
    }
    if (len == 0 || len > (1u << 20))
        return 0;
    int got = 0;
    json_object *root = parse_strict(body, len);
    if (route == ROUTE_SEND_FREEFORM && status == 200) {
        got = from_status(root, CACHE_SRC_SEND_FREEFORM, l);
    } else if (route == ROUTE_SEND_FREEFORM && status == 403) {
        json_object *code = member(root, "error_code", json_type_string);
        if (code && json_object_get_string_len(code) == 15 &&
            memcmp(json_object_get_string(code), "SESSION_EXPIRED", 15) == 0) {
            json_object *ss = member(root, "session_status", json_type_object);
            l->open = 0;
            l->src = CACHE_SRC_SEND_FREEFORM;
            if (when_of(ss, "expired_at", &l->when) != 0)
                l->when = UNKNOWN;
            got = 1;
        }
    } else if (route == ROUTE_SESSION_STATUS && status == 200) {
        got = from_status(root, CACHE_SRC_SESSION_STATUS, l);
    }
    json_object_put(root);
    return got;
}

/* ---- the model of session_cache.h ---- */

static void
model_evict_lru(struct model *m)
{
    int lru = -1;
    for (int i = 0; i < NPAIRS; i++)
        if (m->e[i].present && (lru < 0 || m->e[i].stamp < m->e[lru].stamp))
            lru = i;
    FUZZ_CHECK(lru >= 0, "model: evict from an empty cache");
    m->e[lru].present = 0;
    m->count--;
    m->evictions++;
}

static void
model_learn(struct model *m, int i, const struct lesson *l, int64_t now)
{
    if (!m->e[i].present) {
        if (m->count >= m->max)
            model_evict_lru(m);
        m->e[i].present = 1;
        m->count++;
    }
    m->e[i].open = l->open;
    m->e[i].when = l->when;
    m->e[i].learned_at = now;
    m->e[i].src = l->src;
    m->e[i].stamp = ++m->clock;
}

static int64_t
add_sat(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int64_t
model_trusted_until(const struct mentry *x, int64_t recheck)
{
    int64_t base = x->learned_at;
    if (x->when != UNKNOWN && x->when > base)
        base = x->when;
    return add_sat(base, recheck);
}

static enum cache_decision
model_decide(struct model *m, int i, int64_t now, int64_t recheck,
             int64_t *expired_at)
{
    struct mentry *x = &m->e[i];
    *expired_at = UNKNOWN;
    m->lookups++;
    if (!x->present)
        return CACHE_FORWARD;
    m->hits++;
    x->stamp = ++m->clock;
    if (recheck <= 0 || (x->open && x->when > now))
        return CACHE_FORWARD;
    if (now < model_trusted_until(x, recheck)) {
        m->shorts++;
        *expired_at = x->when;
        return CACHE_SHORT_CIRCUIT;
    }
    x->open = 0; /* the probe */
    x->learned_at = now;
    return CACHE_FORWARD;
}

/* ---- a restart: export, import into a new cache (session_cache.h) ---- */

struct export_walk {
    const struct model *m;
    struct cache_record rec[NPAIRS];
    size_t n;
    uint64_t last_stamp;
};

static int
on_export(void *arg, const struct cache_record *r)
{
    struct export_walk *w = arg;
    int i;
    for (i = 0; i < NVALID; i++) {
        int64_t s;
        uint64_t p;
        pair_of(i, &s, &p);
        if (s == r->sender && p == r->phone)
            break;
    }
    FUZZ_CHECK(i < NVALID && w->n < NPAIRS, "export: a pair never learned");
    const struct mentry *x = &w->m->e[i];
    FUZZ_CHECK(x->present && r->open == x->open && r->when == x->when &&
                   r->learned_at == x->learned_at && r->source == x->src,
               "export: pair %d as open %d when %lld learned %lld source %d", i,
               r->open, (long long)r->when, (long long)r->learned_at,
               (int)r->source);
    FUZZ_CHECK(x->stamp > w->last_stamp, "export: not least recent first");
    w->last_stamp = x->stamp;
    w->rec[w->n++] = *r;
    return 0;
}

/* Restarts c as a new cache of the same bound; the model follows. */
static struct session_cache *
restart(struct session_cache *c, struct model *m, int64_t now, int64_t recheck)
{
    struct export_walk w = {.m = m};
    FUZZ_CHECK(cache_export(c, on_export, &w) == 0, "cache_export");
    FUZZ_CHECK(w.n == m->count, "export: %zu of %zu entries", w.n, m->count);
    cache_free(c);
    c = cache_new(m->max);
    FUZZ_CHECK(c != NULL, "cache_new");
    struct model fresh;
    memset(&fresh, 0, sizeof(fresh));
    fresh.max = m->max;
    fresh.clock = m->clock;
    for (size_t k = 0; k < w.n; k++) {
        const struct cache_record *r = &w.rec[k];
        int i;
        for (i = 0; i < NVALID; i++) {
            int64_t s;
            uint64_t p;
            pair_of(i, &s, &p);
            if (s == r->sender && p == r->phone)
                break;
        }
        /* no trust for the time it was down */
        struct mentry x = {1, r->open, r->when, r->learned_at, r->source, 0};
        if (x.learned_at > now)
            x.learned_at = now;
        if (!x.open && x.when != UNKNOWN && x.when > now)
            x.when = now;
        int reads_open = x.open && x.when > now;
        int keep = reads_open ||
                   (recheck > 0 && now < model_trusted_until(&x, recheck));
        int got = cache_import(c, r, now, recheck);
        FUZZ_CHECK(got == keep, "import of pair %d: %d, model %d", i, got,
                   keep);
        if (keep) {
            struct lesson l = {x.open, x.when, x.src};
            model_learn(&fresh, i, &l, x.learned_at);
        }
    }
    *m = fresh;
    return c;
}

/* Every pair and the statistics read as the model says. */
static void
compare(const struct session_cache *c, const struct model *m, int64_t now,
        int64_t recheck)
{
    struct cache_stats st;
    cache_get_stats(c, &st);
    FUZZ_CHECK(st.entries <= st.max_entries, "%zu entries over the bound %zu",
               st.entries, st.max_entries);
    FUZZ_CHECK(
        st.entries == m->count && st.max_entries == m->max &&
            st.lookups == m->lookups && st.hits == m->hits &&
            st.short_circuits == m->shorts && st.evictions == m->evictions,
        "stats: entries %zu/%zu max %zu/%zu lookups %llu/%llu hits "
        "%llu/%llu short %llu/%llu evictions %llu/%llu (cache/model)",
        st.entries, m->count, st.max_entries, m->max,
        (unsigned long long)st.lookups, (unsigned long long)m->lookups,
        (unsigned long long)st.hits, (unsigned long long)m->hits,
        (unsigned long long)st.short_circuits, (unsigned long long)m->shorts,
        (unsigned long long)st.evictions, (unsigned long long)m->evictions);
    for (int i = 0; i < NPAIRS; i++) {
        int64_t s;
        uint64_t p;
        struct cache_view v;
        pair_of(i, &s, &p);
        const struct mentry *x = &m->e[i];
        int rc = cache_get(c, s, p, now, recheck, &v);
        FUZZ_CHECK((rc == 0) == (x->present != 0), "pair %d: get %d, model %d",
                   i, rc, x->present);
        if (rc != 0)
            continue;
        int open = x->open && x->when > now;
        int64_t tu =
            open || recheck <= 0 ? UNKNOWN : model_trusted_until(x, recheck);
        FUZZ_CHECK(v.open == open && v.expires_at == x->when &&
                       v.learned_at == x->learned_at && v.trusted_until == tu &&
                       v.source == x->src,
                   "pair %d: open %d/%d when %lld/%lld learned %lld/%lld "
                   "trusted %lld/%lld source %d/%d (cache/model)",
                   i, v.open, open, (long long)v.expires_at, (long long)x->when,
                   (long long)v.learned_at, (long long)x->learned_at,
                   (long long)v.trusted_until, (long long)tu, (int)v.source,
                   (int)x->src);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct model m;
    memset(&m, 0, sizeof(m));
    m.max = 1 + data[0] % 8;
    int64_t recheck = rechecks[(data[0] >> 3) % 4];
    size_t nsteps = 1 + data[1] % 16;
    if ((size - 2) / 3 < nsteps)
        nsteps = (size - 2) / 3;
    int64_t now = BASE_NOW + starts[(data[1] >> 4) & 7];
    const uint8_t *op = data + 2;
    const char *body = (const char *)op + 3 * nsteps;
    size_t len = size - 2 - 3 * nsteps;

    struct session_cache *c = cache_new(m.max);
    FUZZ_CHECK(c != NULL, "cache_new");
    for (size_t k = 0; k < nsteps; k++) {
        uint8_t a = op[3 * k], b = op[3 * k + 1], t = op[3 * k + 2];
        int i = (a >> 3) % NPAIRS;
        int64_t s;
        uint64_t p;
        pair_of(i, &s, &p);
        now += steps[t & 15] + (t >> 4);
        switch (a & 7) {
        case 3:
            c = restart(c, &m, now, rechecks[b & 3]);
            break;
        case 0:
        case 1:
        case 2: {
            enum route_id route = routes[b & 3];
            int status = statuses[(b >> 2) & 7];
            struct lesson l;
            int want = expected_lesson(route, s, p, status, body, len, now, &l);
            int got = learn_from_answer(c, route, s, p, status, body, len, now);
            FUZZ_CHECK(got == want,
                       "learn (route %d, status %d, pair %d) = %d, model %d: "
                       "%.*s",
                       (int)route, status, i, got, want,
                       (int)(len > 300 ? 300 : len), body);
            if (want)
                model_learn(&m, i, &l, now);
            break;
        }
        case 4:
        case 5: {
            int64_t r = rechecks[b & 3], xc = 0, xm = 0;
            enum cache_decision dc = cache_decide(c, s, p, now, r, &xc);
            enum cache_decision dm = model_decide(&m, i, now, r, &xm);
            FUZZ_CHECK(dc == dm && xc == xm,
                       "decide pair %d recheck %lld: %d/%d expired %lld/%lld",
                       i, (long long)r, (int)dc, (int)dm, (long long)xc,
                       (long long)xm);
            break;
        }
        case 6: {
            int rc = cache_forget(c, s, p);
            FUZZ_CHECK(rc == (m.e[i].present ? 0 : -1), "forget %d", rc);
            if (m.e[i].present) {
                m.e[i].present = 0;
                m.count--;
            }
            break;
        }
        default: {
            size_t nmax = b % 10; /* 0 is read as 1 */
            cache_set_max_entries(c, nmax);
            m.max = nmax ? nmax : 1;
            while (m.count > m.max)
                model_evict_lru(&m);
        }
        }
        compare(c, &m, now, recheck);
    }
    cache_free(c);
    return 0;
}
