/* check_session_cache.c - unit tests for the session cache (SPEC section
 * 4). Every time is an argument: no clock, no sleeping. */
#include "unit.h"
#include <stdlib.h>
#include <string.h>

#include "session_cache.h"

#define T0 INT64_C(1772015400000) /* 2026-02-25T10:30:00Z */
#define R INT64_C(300000)         /* recheck_after_s 300 */
#define HOUR INT64_C(3600000)
#define DAY (24 * HOUR)
#define UNK CACHE_TIME_UNKNOWN

#define SND 42
#define PH UINT64_C(14155550100)

static struct session_cache *
new_cache(size_t max)
{
    struct session_cache *c = cache_new(max);
    ck_assert_ptr_nonnull(c);
    return c;
}

static enum cache_decision
decide(struct session_cache *c, int64_t now, int64_t *exp)
{
    return cache_decide(c, SND, PH, now, R, exp);
}

static struct cache_stats
stats(const struct session_cache *c)
{
    struct cache_stats s;
    cache_get_stats(c, &s);
    return s;
}

/* key i of a family of distinct keys */
static int64_t
ksender(uint32_t i)
{
    return (int64_t)(i % 97) + 1;
}

static uint64_t
kphone(uint32_t i)
{
    return UINT64_C(447700900000) + i;
}

static void
put(struct session_cache *c, uint32_t i, int64_t now)
{
    cache_learn_closed(c, ksender(i), kphone(i), UNK, CACHE_SRC_TEMPLATE, now);
}

static int
has(const struct session_cache *c, uint32_t i)
{
    struct cache_view v;
    return cache_get(c, ksender(i), kphone(i), T0, R, &v) == 0;
}

/* ---- decisions across time ---- */

START_TEST(test_new_and_free)
{
    ck_assert_ptr_null(cache_new(0));
    cache_free(NULL);
    ck_assert_uint_le(cache_entry_size(), 48);
    struct session_cache *c = new_cache(10);
    struct cache_stats s = stats(c);
    ck_assert_uint_eq(s.entries, 0);
    ck_assert_uint_eq(s.max_entries, 10);
    ck_assert_uint_eq(s.lookups + s.hits + s.short_circuits + s.evictions, 0);
    cache_free(c);
}
END_TEST

START_TEST(test_unknown_forwards)
{
    struct session_cache *c = new_cache(10);
    int64_t exp = 7;
    ck_assert_int_eq(decide(c, T0, &exp), CACHE_FORWARD);
    ck_assert_int_eq(exp, UNK);
    ck_assert_int_eq(decide(c, T0, NULL), CACHE_FORWARD);
    struct cache_stats s = stats(c);
    ck_assert_uint_eq(s.lookups, 2);
    ck_assert_uint_eq(s.hits, 0);
    ck_assert_uint_eq(s.entries, 0); /* deciding never creates an entry */
    cache_free(c);
}
END_TEST

/* learned closed -> trusted -> untrusted (probe) -> trusted again */
START_TEST(test_closed_probe_cycle)
{
    struct session_cache *c = new_cache(10);
    struct cache_view v;
    int64_t exp = 0;

    cache_learn_closed(c, SND, PH, UNK, CACHE_SRC_SEND_FREEFORM, T0);
    ck_assert_int_eq(decide(c, T0, &exp), CACHE_SHORT_CIRCUIT);
    ck_assert_int_eq(exp, UNK);
    ck_assert_int_eq(decide(c, T0 + R - 1, NULL), CACHE_SHORT_CIRCUIT);

    ck_assert_int_eq(cache_get(c, SND, PH, T0 + R, R, &v), 0);
    ck_assert_int_eq(v.trusted_until, T0 + R);
    ck_assert_int_eq(v.learned_at, T0);

    /* trust ran out: this one is the probe */
    ck_assert_int_eq(decide(c, T0 + R, &exp), CACHE_FORWARD);
    ck_assert_int_eq(exp, UNK);
    ck_assert_int_eq(cache_get(c, SND, PH, T0 + R, R, &v), 0);
    ck_assert_int_eq(v.open, 0);
    ck_assert_int_eq(v.expires_at, UNK);
    ck_assert_int_eq(v.learned_at, T0 + R);
    ck_assert_int_eq(v.trusted_until, T0 + 2 * R);
    ck_assert_int_eq(v.source, CACHE_SRC_SEND_FREEFORM);

    /* the sends after the probe are answered locally again */
    ck_assert_int_eq(decide(c, T0 + R, NULL), CACHE_SHORT_CIRCUIT);
    ck_assert_int_eq(decide(c, T0 + 2 * R - 1, NULL), CACHE_SHORT_CIRCUIT);
    ck_assert_int_eq(decide(c, T0 + 2 * R, NULL), CACHE_FORWARD);
    /* the probe's answer: still closed */
    cache_learn_closed(c, SND, PH, T0 - HOUR, CACHE_SRC_SEND_FREEFORM,
                       T0 + 2 * R + 50);
    ck_assert_int_eq(decide(c, T0 + 3 * R + 49, &exp), CACHE_SHORT_CIRCUIT);
    ck_assert_int_eq(exp, T0 - HOUR);
    ck_assert_int_eq(decide(c, T0 + 3 * R + 50, NULL), CACHE_FORWARD);

    struct cache_stats s = stats(c);
    ck_assert_uint_eq(s.lookups, 8);
    ck_assert_uint_eq(s.hits, 8);
    ck_assert_uint_eq(s.short_circuits, 5);
    ck_assert_uint_eq(s.entries, 1);
    cache_free(c);
}
END_TEST

/* open -> expired -> trusted -> untrusted */
START_TEST(test_open_expires)
{
    struct session_cache *c = new_cache(10);
    struct cache_view v;
    int64_t exp = 0;
    int64_t e = T0 + HOUR;

    cache_learn_open(c, SND, PH, e, CACHE_SRC_SESSION_STATUS, T0);
    ck_assert_int_eq(decide(c, T0, &exp), CACHE_FORWARD);
    ck_assert_int_eq(exp, UNK);
    ck_assert_int_eq(decide(c, e - 1, NULL), CACHE_FORWARD);
    ck_assert_int_eq(decide(c, e, &exp), CACHE_SHORT_CIRCUIT);
    ck_assert_int_eq(exp, e);
    ck_assert_int_eq(decide(c, e + R - 1, &exp), CACHE_SHORT_CIRCUIT);
    ck_assert_int_eq(exp, e);
    /* nothing changed the entry so far */
    ck_assert_int_eq(cache_get(c, SND, PH, e + R - 1, R, &v), 0);
    ck_assert_int_eq(v.learned_at, T0);
    ck_assert_int_eq(v.trusted_until, e + R);

    ck_assert_int_eq(decide(c, e + R, &exp), CACHE_FORWARD); /* probe */
    ck_assert_int_eq(cache_get(c, SND, PH, e + R, R, &v), 0);
    ck_assert_int_eq(v.open, 0);
    ck_assert_int_eq(v.expires_at, e); /* expired_at kept */
    ck_assert_int_eq(v.learned_at, e + R);
    ck_assert_int_eq(v.trusted_until, e + 2 * R);
    ck_assert_int_eq(decide(c, e + R + 1, &exp), CACHE_SHORT_CIRCUIT);
    ck_assert_int_eq(exp, e);
    ck_assert_int_eq(decide(c, e + 2 * R, NULL), CACHE_FORWARD);
    cache_free(c);
}
END_TEST

/* An open entry that expired long before anyone asked is not trusted: its
 * trust counts from the expiry, not from the first question. */
START_TEST(test_open_expired_long_ago)
{
    struct session_cache *c = new_cache(10);
    cache_learn_open(c, SND, PH, T0, CACHE_SRC_TEMPLATE, T0 - DAY);
    ck_assert_int_eq(decide(c, T0 + DAY, NULL), CACHE_FORWARD); /* probe */
    ck_assert_int_eq(decide(c, T0 + DAY + 1, NULL), CACHE_SHORT_CIRCUIT);
    cache_free(c);
}
END_TEST

START_TEST(test_expired_at_known)
{
    struct session_cache *c = new_cache(10);
    struct cache_view v;
    int64_t exp = 0;

    /* expired long before it was learned: trust counts from learning */
    cache_learn_closed(c, SND, PH, T0 - 10 * HOUR, CACHE_SRC_SEND_FREEFORM, T0);
    ck_assert_int_eq(decide(c, T0 + R - 1, &exp), CACHE_SHORT_CIRCUIT);
    ck_assert_int_eq(exp, T0 - 10 * HOUR);
    ck_assert_int_eq(cache_get(c, SND, PH, T0, R, &v), 0);
    ck_assert_int_eq(v.trusted_until, T0 + R);
    ck_assert_int_eq(decide(c, T0 + R, NULL), CACHE_FORWARD);

    /* expired_at later than learned_at: trust counts from expired_at */
    cache_learn_closed(c, SND, PH, T0 + 60000, CACHE_SRC_SEND_FREEFORM, T0);
    ck_assert_int_eq(cache_get(c, SND, PH, T0, R, &v), 0);
    ck_assert_int_eq(v.trusted_until, T0 + 60000 + R);
    ck_assert_int_eq(decide(c, T0 + R, NULL), CACHE_SHORT_CIRCUIT);
    ck_assert_int_eq(decide(c, T0 + 60000 + R - 1, &exp), CACHE_SHORT_CIRCUIT);
    ck_assert_int_eq(exp, T0 + 60000);
    ck_assert_int_eq(decide(c, T0 + 60000 + R, NULL), CACHE_FORWARD);
    /* the probe keeps expired_at; trust is now + R */
    ck_assert_int_eq(cache_get(c, SND, PH, T0 + 60000 + R, R, &v), 0);
    ck_assert_int_eq(v.expires_at, T0 + 60000);
    ck_assert_int_eq(v.trusted_until, T0 + 60000 + 2 * R);
    cache_free(c);
}
END_TEST

START_TEST(test_recheck_zero)
{
    struct session_cache *c = new_cache(10);
    struct cache_view v;
    int64_t exp = 5;
    cache_learn_closed(c, SND, PH, T0 - HOUR, CACHE_SRC_SEND_FREEFORM, T0);
    cache_learn_open(c, SND, PH + 1, T0 - 1, CACHE_SRC_INBOUND, T0 - DAY);
    for (int64_t t = T0; t < T0 + 3 * R; t += R / 2) {
        ck_assert_int_eq(cache_decide(c, SND, PH, t, 0, &exp), CACHE_FORWARD);
        ck_assert_int_eq(exp, UNK);
        ck_assert_int_eq(cache_decide(c, SND, PH + 1, t, 0, NULL),
                         CACHE_FORWARD);
        ck_assert_int_eq(cache_decide(c, SND, PH, t, -1, NULL), CACHE_FORWARD);
    }
    /* no probe happened: the entries are as learned */
    ck_assert_int_eq(cache_get(c, SND, PH, T0 + 3 * R, 0, &v), 0);
    ck_assert_int_eq(v.learned_at, T0);
    ck_assert_int_eq(v.trusted_until, UNK);
    ck_assert_int_eq(cache_get(c, SND, PH + 1, T0, 0, &v), 0);
    ck_assert_int_eq(v.learned_at, T0 - DAY);
    ck_assert_uint_eq(stats(c).short_circuits, 0);
    ck_assert_uint_eq(stats(c).hits, 18);
    cache_free(c);
}
END_TEST

START_TEST(test_learning_replaces)
{
    struct session_cache *c = new_cache(10);
    struct cache_view v;
    cache_learn_closed(c, SND, PH, T0 - HOUR, CACHE_SRC_SEND_FREEFORM, T0);
    ck_assert_int_eq(decide(c, T0 + 1, NULL), CACHE_SHORT_CIRCUIT);
    /* the customer replied (admin inbound event) */
    cache_learn_open(c, SND, PH, T0 + 2 + DAY, CACHE_SRC_INBOUND, T0 + 2);
    ck_assert_int_eq(decide(c, T0 + 3, NULL), CACHE_FORWARD);
    ck_assert_int_eq(cache_get(c, SND, PH, T0 + 3, R, &v), 0);
    ck_assert_int_eq(v.open, 1);
    ck_assert_int_eq(v.expires_at, T0 + 2 + DAY);
    ck_assert_int_eq(v.learned_at, T0 + 2);
    ck_assert_int_eq(v.trusted_until, UNK);
    ck_assert_int_eq(v.source, CACHE_SRC_INBOUND);
    /* and closed again */
    cache_learn_closed(c, SND, PH, UNK, CACHE_SRC_SESSION_STATUS, T0 + 4);
    ck_assert_int_eq(decide(c, T0 + 5, NULL), CACHE_SHORT_CIRCUIT);
    ck_assert_int_eq(cache_get(c, SND, PH, T0 + 5, R, &v), 0);
    ck_assert_int_eq(v.open, 0);
    ck_assert_int_eq(v.expires_at, UNK);
    ck_assert_int_eq(v.source, CACHE_SRC_SESSION_STATUS);
    ck_assert_uint_eq(stats(c).entries, 1);
    cache_free(c);
}
END_TEST

START_TEST(test_keys_distinct)
{
    struct session_cache *c = new_cache(10);
    cache_learn_closed(c, SND, PH, UNK, CACHE_SRC_TEMPLATE, T0);
    ck_assert_int_eq(cache_decide(c, SND + 1, PH, T0, R, NULL), CACHE_FORWARD);
    ck_assert_int_eq(cache_decide(c, SND, PH + 1, T0, R, NULL), CACHE_FORWARD);
    ck_assert_int_eq(cache_decide(c, PH, SND, T0, R, NULL), CACHE_FORWARD);
    ck_assert_int_eq(cache_decide(c, SND, PH, T0, R, NULL),
                     CACHE_SHORT_CIRCUIT);
    ck_assert_uint_eq(stats(c).hits, 1);
    cache_free(c);
}
END_TEST

START_TEST(test_forget)
{
    struct session_cache *c = new_cache(10);
    cache_learn_closed(c, SND, PH, UNK, CACHE_SRC_TEMPLATE, T0);
    cache_learn_closed(c, SND, PH + 1, UNK, CACHE_SRC_TEMPLATE, T0);
    ck_assert_int_eq(cache_forget(c, SND, PH + 2), -1);
    ck_assert_int_eq(cache_forget(c, SND, PH), 0);
    ck_assert_int_eq(cache_forget(c, SND, PH), -1);
    ck_assert_uint_eq(stats(c).entries, 1);
    ck_assert_int_eq(decide(c, T0, NULL), CACHE_FORWARD);
    ck_assert_int_eq(cache_decide(c, SND, PH + 1, T0, R, NULL),
                     CACHE_SHORT_CIRCUIT);
    /* the freed slot is reused */
    cache_learn_open(c, SND, PH + 3, T0 + DAY, CACHE_SRC_TEMPLATE, T0);
    ck_assert_uint_eq(stats(c).entries, 2);
    ck_assert_int_eq(cache_forget(c, SND, PH + 1), 0);
    ck_assert_int_eq(cache_forget(c, SND, PH + 3), 0);
    ck_assert_uint_eq(stats(c).entries, 0);
    cache_learn_closed(c, SND, PH, UNK, CACHE_SRC_TEMPLATE, T0);
    ck_assert_int_eq(decide(c, T0, NULL), CACHE_SHORT_CIRCUIT);
    cache_free(c);
}
END_TEST

START_TEST(test_get)
{
    struct session_cache *c = new_cache(10);
    struct cache_view v;
    memset(&v, 0x5a, sizeof(v));
    ck_assert_int_eq(cache_get(c, SND, PH, T0, R, &v), -1);

    cache_learn_closed(c, SND, PH, UNK, CACHE_SRC_SEND_FREEFORM, T0);
    ck_assert_int_eq(cache_get(c, SND, PH, T0 + 10 * R, R, &v), 0);
    ck_assert_int_eq(v.open, 0);
    ck_assert_int_eq(v.expires_at, UNK);
    ck_assert_int_eq(v.learned_at, T0);
    ck_assert_int_eq(v.trusted_until, T0 + R); /* in the past: fine */
    ck_assert_int_eq(v.source, CACHE_SRC_SEND_FREEFORM);
    ck_assert_int_eq(cache_get(c, SND, PH, T0, 2 * R, &v), 0);
    ck_assert_int_eq(v.trusted_until, T0 + 2 * R);

    cache_learn_open(c, SND, PH, T0 + HOUR, CACHE_SRC_TEMPLATE, T0);
    ck_assert_int_eq(cache_get(c, SND, PH, T0 + HOUR - 1, R, &v), 0);
    ck_assert_int_eq(v.open, 1);
    ck_assert_int_eq(v.expires_at, T0 + HOUR);
    ck_assert_int_eq(v.trusted_until, UNK);
    ck_assert_int_eq(v.source, CACHE_SRC_TEMPLATE);
    /* read at and after its expiry: closed, expires_at kept */
    ck_assert_int_eq(cache_get(c, SND, PH, T0 + HOUR, R, &v), 0);
    ck_assert_int_eq(v.open, 0);
    ck_assert_int_eq(v.expires_at, T0 + HOUR);
    ck_assert_int_eq(v.learned_at, T0);
    ck_assert_int_eq(v.trusted_until, T0 + HOUR + R);
    ck_assert_int_eq(cache_get(c, SND, PH, T0 + DAY, R, &v), 0);
    ck_assert_int_eq(v.open, 0);
    ck_assert_int_eq(v.trusted_until, T0 + HOUR + R);
    /* get is not a probe and counts nothing */
    ck_assert_int_eq(v.learned_at, T0);
    struct cache_stats s = stats(c);
    ck_assert_uint_eq(s.lookups + s.hits + s.short_circuits, 0);
    cache_free(c);
}
END_TEST

/* ---- bounds ---- */

START_TEST(test_lru_bound)
{
    const uint32_t max = 100, k = 17;
    struct session_cache *c = new_cache(max);
    for (uint32_t i = 0; i < max + k; i++)
        put(c, i, T0 + i);
    struct cache_stats s = stats(c);
    ck_assert_uint_eq(s.entries, max);
    ck_assert_uint_eq(s.evictions, k);
    for (uint32_t i = 0; i < max + k; i++)
        ck_assert_msg(has(c, i) == (i >= k), "key %u", i);
    cache_free(c);
}
END_TEST

START_TEST(test_lru_touch_survives)
{
    const uint32_t max = 100;
    struct session_cache *c = new_cache(max);
    for (uint32_t i = 0; i < max; i++)
        put(c, i, T0);
    /* touch the oldest by a decision, the next by learning, and read the
     * third (which does not count) */
    ck_assert_int_eq(cache_decide(c, ksender(0), kphone(0), T0, R, NULL),
                     CACHE_SHORT_CIRCUIT);
    put(c, 1, T0);
    ck_assert(has(c, 2));
    for (uint32_t i = max; i < max + 5; i++)
        put(c, i, T0);
    ck_assert(has(c, 0));
    ck_assert(has(c, 1));
    for (uint32_t i = 2; i < 7; i++)
        ck_assert_msg(!has(c, i), "key %u", i);
    ck_assert(has(c, 7));
    ck_assert_uint_eq(stats(c).evictions, 5);
    ck_assert_uint_eq(stats(c).entries, max);
    cache_free(c);
}
END_TEST

START_TEST(test_max_one)
{
    struct session_cache *c = new_cache(1);
    put(c, 0, T0);
    put(c, 1, T0);
    ck_assert(!has(c, 0));
    ck_assert(has(c, 1));
    ck_assert_uint_eq(stats(c).entries, 1);
    ck_assert_uint_eq(stats(c).evictions, 1);
    cache_free(c);
}
END_TEST

START_TEST(test_shrink_and_raise)
{
    const uint32_t n = 5000;
    struct session_cache *c = new_cache(n);
    for (uint32_t i = 0; i < n; i++)
        put(c, i, T0);
    ck_assert_int_eq(cache_forget(c, ksender(10), kphone(10)), 0);
    ck_assert_int_eq(cache_decide(c, ksender(0), kphone(0), T0, R, NULL),
                     CACHE_SHORT_CIRCUIT);
    /* most recent first: 0, 4999, 4998, ... */
    cache_set_max_entries(c, 10);
    struct cache_stats s = stats(c);
    ck_assert_uint_eq(s.entries, 10);
    ck_assert_uint_eq(s.max_entries, 10);
    ck_assert_uint_eq(s.evictions, n - 1 - 10);
    for (uint32_t i = 0; i < n; i++)
        ck_assert_msg(has(c, i) == (i == 0 || i >= n - 9), "key %u", i);

    /* the order survived the shrink */
    put(c, n, T0);
    ck_assert(!has(c, n - 9));
    ck_assert(has(c, 0));

    /* shrink within the allocation, then 0 reads as 1 */
    cache_set_max_entries(c, 5);
    ck_assert_uint_eq(stats(c).entries, 5);
    ck_assert(has(c, n));
    ck_assert(has(c, 0));
    cache_set_max_entries(c, 0);
    ck_assert_uint_eq(stats(c).max_entries, 1);
    ck_assert_uint_eq(stats(c).entries, 1);
    ck_assert(has(c, n));

    /* raise: grows again, and the bound holds */
    cache_set_max_entries(c, 3000);
    for (uint32_t i = 0; i < 4000; i++)
        put(c, i, T0);
    s = stats(c);
    ck_assert_uint_eq(s.entries, 3000);
    ck_assert_uint_eq(s.max_entries, 3000);
    for (uint32_t i = 0; i < 4000; i++)
        ck_assert_msg(has(c, i) == (i >= 1000), "key %u", i);
    ck_assert(!has(c, n));
    cache_free(c);
}
END_TEST

START_TEST(test_growth)
{
    const uint32_t n = 200000;
    struct session_cache *c = new_cache(n);
    for (uint32_t i = 0; i < n; i++) {
        if (i % 3 == 0)
            cache_learn_open(c, ksender(i), kphone(i), T0 + DAY + i,
                             CACHE_SRC_SEND_FREEFORM, T0 + i);
        else
            cache_learn_closed(c, ksender(i), kphone(i),
                               i % 3 == 1 ? UNK : T0 - i,
                               CACHE_SRC_SESSION_STATUS, T0 + i);
    }
    struct cache_stats s = stats(c);
    ck_assert_uint_eq(s.entries, n);
    ck_assert_uint_eq(s.evictions, 0);
    for (uint32_t i = 0; i < n; i++) {
        struct cache_view v;
        ck_assert_msg(cache_get(c, ksender(i), kphone(i), T0, R, &v) == 0,
                      "key %u", i);
        ck_assert_int_eq(v.open, i % 3 == 0);
        ck_assert_int_eq(v.learned_at, T0 + i);
        if (i % 3 == 0)
            ck_assert_int_eq(v.expires_at, T0 + DAY + i);
        else
            ck_assert_int_eq(v.expires_at, i % 3 == 1 ? UNK : T0 - (int64_t)i);
    }
    /* absent neighbours stay absent */
    for (uint32_t i = n; i < n + 1000; i++)
        ck_assert(!has(c, i));
    /* every one is also found by a decision */
    for (uint32_t i = 0; i < n; i++)
        ck_assert_int_eq(
            cache_decide(c, ksender(i), kphone(i), T0 + i, R, NULL),
            i % 3 == 0 ? CACHE_FORWARD : CACHE_SHORT_CIRCUIT);
    s = stats(c);
    ck_assert_uint_eq(s.hits, n);
    ck_assert_uint_eq(s.short_circuits, n - (n + 2) / 3);
    /* forget every other, then fill again through the free list */
    for (uint32_t i = 0; i < n; i += 2)
        ck_assert_int_eq(cache_forget(c, ksender(i), kphone(i)), 0);
    ck_assert_uint_eq(stats(c).entries, n / 2);
    for (uint32_t i = n; i < n + n / 2; i++)
        put(c, i, T0);
    s = stats(c);
    ck_assert_uint_eq(s.entries, n);
    ck_assert_uint_eq(s.evictions, 0);
    for (uint32_t i = 0; i < n + n / 2; i++)
        ck_assert_msg(has(c, i) == (i >= n || i % 2 == 1), "key %u", i);
    cache_free(c);
}
END_TEST

/* cache_judge() alone: what the Redis backend decides with. */
START_TEST(test_judge)
{
    const int64_t now = 1000000000;
    struct cache_view v;
    struct cache_record open_ = {.open = 1, .when = now + 1, .learned_at = 5};
    ck_assert_int_eq(cache_judge(&open_, now, R, &v), CACHE_JUDGED_FORWARD);
    ck_assert_int_eq(v.open, 1);
    ck_assert(v.trusted_until == CACHE_TIME_UNKNOWN);
    /* expired at now: reads closed, trusted from its expiry */
    struct cache_record exp = {
        .open = 1, .when = now, .learned_at = 5, .source = CACHE_SRC_INBOUND};
    ck_assert_int_eq(cache_judge(&exp, now, R, &v), CACHE_JUDGED_TRUSTED);
    ck_assert_int_eq(v.open, 0);
    ck_assert(v.trusted_until == now + R);
    ck_assert_int_eq(v.source, CACHE_SRC_INBOUND);
    ck_assert_int_eq(cache_judge(&exp, now + R - 1, R, NULL),
                     CACHE_JUDGED_TRUSTED);
    ck_assert_int_eq(cache_judge(&exp, now + R, R, NULL), CACHE_JUDGED_PROBE);
    /* closed, expired_at unknown: trusted from the learning */
    struct cache_record cl = {
        .open = 0, .when = CACHE_TIME_UNKNOWN, .learned_at = now};
    ck_assert_int_eq(cache_judge(&cl, now + R - 1, R, &v),
                     CACHE_JUDGED_TRUSTED);
    ck_assert(v.expires_at == CACHE_TIME_UNKNOWN);
    ck_assert_int_eq(cache_judge(&cl, now + R, R, NULL), CACHE_JUDGED_PROBE);
    /* recheck off: never short-circuits, never probes */
    ck_assert_int_eq(cache_judge(&cl, now, 0, &v), CACHE_JUDGED_FORWARD);
    ck_assert(v.trusted_until == CACHE_TIME_UNKNOWN);
}
END_TEST

static int
judge_visit(void *arg, const struct cache_record *r)
{
    *(struct cache_record *)arg = *r;
    return 0;
}

/* The memory cache decides by the same judgement, step for step. */
START_TEST(test_judge_agrees_with_decide)
{
    const int64_t R1 = 1000;
    struct session_cache *c = cache_new(4);
    for (int64_t t = 0; t < 5000; t += 37) {
        cache_learn_open(c, 1, 2, 2000, CACHE_SRC_SEND_FREEFORM, 0);
        for (int64_t now = t; now < t + 3000; now += 101) {
            struct cache_record r;
            cache_export(c, judge_visit, &r);
            enum cache_judgement j = cache_judge(&r, now, R1, NULL);
            int64_t e;
            enum cache_decision d = cache_decide(c, 1, 2, now, R1, &e);
            ck_assert_int_eq(d == CACHE_SHORT_CIRCUIT,
                             j == CACHE_JUDGED_TRUSTED);
            struct cache_view v;
            ck_assert_int_eq(cache_get(c, 1, 2, now, R1, &v), 0);
            if (j == CACHE_JUDGED_PROBE) /* marked: learned closed at now */
                ck_assert(v.learned_at == now && v.open == 0);
            else
                ck_assert(v.learned_at == r.learned_at);
        }
    }
    cache_free(c);
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("cache");
    TCase *tc;

    tc = tcase_create("decide");
    tcase_add_test(tc, test_new_and_free);
    tcase_add_test(tc, test_unknown_forwards);
    tcase_add_test(tc, test_closed_probe_cycle);
    tcase_add_test(tc, test_open_expires);
    tcase_add_test(tc, test_open_expired_long_ago);
    tcase_add_test(tc, test_expired_at_known);
    tcase_add_test(tc, test_recheck_zero);
    tcase_add_test(tc, test_learning_replaces);
    tcase_add_test(tc, test_keys_distinct);
    tcase_add_test(tc, test_forget);
    tcase_add_test(tc, test_get);
    tcase_add_test(tc, test_judge);
    tcase_add_test(tc, test_judge_agrees_with_decide);
    suite_add_tcase(s, tc);

    tc = tcase_create("bounds");
    tcase_set_timeout(tc, 120); /* valgrind */
    tcase_add_test(tc, test_lru_bound);
    tcase_add_test(tc, test_lru_touch_survives);
    tcase_add_test(tc, test_max_one);
    tcase_add_test(tc, test_shrink_and_raise);
    tcase_add_test(tc, test_growth);
    suite_add_tcase(s, tc);

    return s;
}
