/* check_idempotency.c - unit tests for the idempotency store (SPEC
 * section 5). Every time is an argument: no clock, no sleeping. */
#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idempotency.h"

#define T0 INT64_C(1772015400000) /* 2026-02-25T10:30:00Z */
#define SEC INT64_C(1000)
#define TTL (86400 * SEC)

/* ---- helpers ---- */

/* A body hash: 32 copies of one byte is enough to tell bodies apart. */
struct bh {
    unsigned char h[IDEM_HASH_LEN];
};

static struct bh
bhash(unsigned char c)
{
    struct bh b;
    memset(b.h, c, sizeof(b.h));
    return b;
}

static struct idem_store *
new_store(size_t max, int64_t ttl)
{
    struct idem_store *s = idem_new(max, ttl);
    ck_assert_ptr_nonnull(s);
    return s;
}

static enum idem_verdict
begin(struct idem_store *s, const char *caller, const char *key,
      unsigned char body, int64_t now)
{
    struct bh b = bhash(body);
    const struct idem_answer *a = (const void *)1; /* must be reset */
    enum idem_verdict v = idem_begin(s, caller, key, b.h, now, &a);
    if (v == IDEM_REPLAY)
        ck_assert_ptr_nonnull(a);
    else
        ck_assert_ptr_null(a);
    return v;
}

static const struct idem_answer *
replay(struct idem_store *s, const char *caller, const char *key,
       unsigned char body, int64_t now)
{
    struct bh b = bhash(body);
    const struct idem_answer *a = NULL;
    ck_assert_int_eq(idem_begin(s, caller, key, b.h, now, &a), IDEM_REPLAY);
    ck_assert_ptr_nonnull(a);
    return a;
}

/* Stores a small answer whose status tells which one it was. */
static void
complete_status(struct idem_store *s, const char *caller, const char *key,
                int status, int64_t now)
{
    static const struct idem_header hd[] = {
        {"Content-Type", "application/json"},
    };
    struct idem_answer a = {status, hd, 1, "{\"ok\":true}", 11};
    idem_complete(s, caller, key, &a, now);
}

static struct idem_stats
stats(const struct idem_store *s)
{
    struct idem_stats st;
    idem_get_stats(s, &st);
    return st;
}

static void
keyname(char *buf, size_t len, unsigned i)
{
    snprintf(buf, len, "key-%u", i);
}

/* ---- verdicts ---- */

START_TEST(test_new_and_free)
{
    ck_assert_ptr_null(idem_new(0, TTL));
    idem_free(NULL);
    struct idem_store *s = new_store(1, TTL);
    struct idem_stats st = stats(s);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.in_flight, 0);
    ck_assert_uint_eq(st.replays, 0);
    ck_assert_uint_eq(st.conflicts, 0);
    ck_assert_uint_eq(st.evictions, 0);
    idem_free(s);
}
END_TEST

START_TEST(test_verdict_cycle)
{
    struct idem_store *s = new_store(100, TTL);

    ck_assert_int_eq(begin(s, "alice", "k1", 'A', T0), IDEM_NEW);
    ck_assert_uint_eq(stats(s).entries, 1);
    ck_assert_uint_eq(stats(s).in_flight, 1);
    ck_assert_int_eq(begin(s, "alice", "k1", 'A', T0 + 1), IDEM_IN_PROGRESS);
    ck_assert_int_eq(begin(s, "alice", "k1", 'B', T0 + 2), IDEM_REUSED);

    /* The answer is copied: the caller's buffers may go right after. */
    char name0[] = "Content-Type", value0[] = "application/json";
    char name1[] = "X-Request-Id", value1[] = "r-123";
    char name2[] = "X-Empty", value2[] = "";
    char body[] = "{\"id\":7}";
    struct idem_header hd[3] = {
        {name0, value0}, {name1, value1}, {name2, value2}};
    struct idem_answer in = {201, hd, 3, body, strlen(body)};
    idem_complete(s, "alice", "k1", &in, T0 + 10);
    memset(name0, 'x', sizeof(name0) - 1);
    memset(value1, 'y', sizeof(value1) - 1);
    memset(body, 'z', sizeof(body) - 1);
    hd[0].name = hd[1].value = NULL;

    ck_assert_uint_eq(stats(s).entries, 1);
    ck_assert_uint_eq(stats(s).in_flight, 0);

    const struct idem_answer *a = replay(s, "alice", "k1", 'A', T0 + 20);
    ck_assert_int_eq(a->status, 201);
    ck_assert_uint_eq(a->nheaders, 3);
    ck_assert_str_eq(a->headers[0].name, "Content-Type");
    ck_assert_str_eq(a->headers[0].value, "application/json");
    ck_assert_str_eq(a->headers[1].name, "X-Request-Id");
    ck_assert_str_eq(a->headers[1].value, "r-123");
    ck_assert_str_eq(a->headers[2].name, "X-Empty");
    ck_assert_str_eq(a->headers[2].value, "");
    ck_assert_uint_eq(a->body_len, 8);
    ck_assert_mem_eq(a->body, "{\"id\":7}", 8);

    /* Again: the same kept answer. */
    const struct idem_answer *b = replay(s, "alice", "k1", 'A', T0 + 30);
    ck_assert_ptr_eq(a, b);

    ck_assert_int_eq(begin(s, "alice", "k1", 'B', T0 + 40), IDEM_REUSED);

    struct idem_stats st = stats(s);
    ck_assert_uint_eq(st.replays, 2);
    ck_assert_uint_eq(st.conflicts, 3); /* IN_PROGRESS + 2 REUSED */
    ck_assert_uint_eq(st.entries, 1);
    ck_assert_uint_eq(st.evictions, 0);
    idem_free(s);
}
END_TEST

START_TEST(test_answer_out_optional)
{
    struct idem_store *s = new_store(10, TTL);
    struct bh b = bhash('A');
    ck_assert_int_eq(idem_begin(s, "", "k", b.h, T0, NULL), IDEM_NEW);
    complete_status(s, "", "k", 200, T0);
    ck_assert_int_eq(idem_begin(s, "", "k", b.h, T0, NULL), IDEM_REPLAY);
    ck_assert_uint_eq(stats(s).replays, 1);
    idem_free(s);
}
END_TEST

START_TEST(test_abandon)
{
    struct idem_store *s = new_store(10, TTL);

    ck_assert_int_eq(begin(s, "c", "k", 'A', T0), IDEM_NEW);
    idem_abandon(s, "c", "k");
    ck_assert_uint_eq(stats(s).entries, 0);
    ck_assert_uint_eq(stats(s).in_flight, 0);
    /* The key is free again, for any body. */
    ck_assert_int_eq(begin(s, "c", "k", 'B', T0 + 1), IDEM_NEW);

    /* Unknown keys and other callers: nothing happens. */
    idem_abandon(s, "c", "other");
    idem_abandon(s, "d", "k");
    ck_assert_uint_eq(stats(s).in_flight, 1);

    /* A kept answer is not abandoned. */
    complete_status(s, "c", "k", 200, T0 + 2);
    idem_abandon(s, "c", "k");
    ck_assert_int_eq(replay(s, "c", "k", 'B', T0 + 3)->status, 200);
    ck_assert_uint_eq(stats(s).entries, 1);
    idem_free(s);
}
END_TEST

START_TEST(test_complete_ignored)
{
    struct idem_store *s = new_store(10, TTL);

    /* Unknown key. */
    complete_status(s, "c", "never", 200, T0);
    ck_assert_uint_eq(stats(s).entries, 0);
    ck_assert_int_eq(begin(s, "c", "never", 'A', T0), IDEM_NEW);

    /* Abandoned key. */
    ck_assert_int_eq(begin(s, "c", "gone", 'A', T0), IDEM_NEW);
    idem_abandon(s, "c", "gone");
    complete_status(s, "c", "gone", 200, T0 + 1);
    ck_assert_uint_eq(stats(s).entries, 1); /* "never", in flight */
    ck_assert_int_eq(begin(s, "c", "gone", 'A', T0 + 2), IDEM_NEW);

    /* Completed twice: the first answer stays. */
    complete_status(s, "c", "gone", 201, T0 + 3);
    complete_status(s, "c", "gone", 404, T0 + 4);
    ck_assert_int_eq(replay(s, "c", "gone", 'A', T0 + 5)->status, 201);
    idem_free(s);
}
END_TEST

/* ---- time ---- */

START_TEST(test_ttl)
{
    struct idem_store *s = new_store(10, TTL);
    ck_assert_int_eq(begin(s, "c", "k", 'A', T0), IDEM_NEW);
    /* The TTL runs from the answer, not from the request. */
    complete_status(s, "c", "k", 200, T0 + 5 * SEC);
    ck_assert_int_eq(replay(s, "c", "k", 'A', T0 + 5 * SEC + TTL - 1)->status,
                     200);
    ck_assert_int_eq(begin(s, "c", "k", 'B', T0 + 5 * SEC + TTL - 1),
                     IDEM_REUSED);
    /* Expired: a new key, even for another body. */
    ck_assert_int_eq(begin(s, "c", "k", 'B', T0 + 5 * SEC + TTL), IDEM_NEW);
    struct idem_stats st = stats(s);
    ck_assert_uint_eq(st.entries, 1);
    ck_assert_uint_eq(st.in_flight, 1);
    ck_assert_uint_eq(st.evictions, 0);
    idem_free(s);
}
END_TEST

START_TEST(test_expire_in_order)
{
    struct idem_store *s = new_store(100, TTL);
    char k[32];
    for (unsigned i = 0; i < 5; i++) {
        keyname(k, sizeof(k), i);
        ck_assert_int_eq(begin(s, "c", k, 'A', T0), IDEM_NEW);
        complete_status(s, "c", k, 200 + (int)i, T0 + i * SEC);
    }
    ck_assert_int_eq(begin(s, "c", "inflight", 'A', T0), IDEM_NEW);

    idem_expire(s, T0 + TTL - 1); /* nothing yet */
    ck_assert_uint_eq(stats(s).entries, 6);

    idem_expire(s, T0 + TTL + 2 * SEC); /* key-0 .. key-2 */
    struct idem_stats st = stats(s);
    ck_assert_uint_eq(st.entries, 3);
    ck_assert_uint_eq(st.in_flight, 1);
    ck_assert_uint_eq(st.evictions, 0);

    /* Look the survivors up at a time they are still kept. */
    ck_assert_int_eq(replay(s, "c", "key-3", 'A', T0)->status, 203);
    ck_assert_int_eq(replay(s, "c", "key-4", 'A', T0)->status, 204);
    ck_assert_int_eq(begin(s, "c", "key-2", 'A', T0), IDEM_NEW);

    /* In-flight keys never expire. */
    idem_expire(s, T0 + 100 * TTL);
    ck_assert_uint_eq(stats(s).entries, 2);
    ck_assert_int_eq(begin(s, "c", "inflight", 'A', T0 + 100 * TTL),
                     IDEM_IN_PROGRESS);
    ck_assert_int_eq(begin(s, "c", "key-2", 'A', T0 + 100 * TTL),
                     IDEM_IN_PROGRESS);
    idem_free(s);
}
END_TEST

/* Storing an answer drops expired ones first: they are not evictions and
 * do not push out live answers. */
START_TEST(test_complete_expires_before_evicting)
{
    struct idem_store *s = new_store(2, TTL);
    ck_assert_int_eq(begin(s, "c", "a", 'A', T0), IDEM_NEW);
    complete_status(s, "c", "a", 200, T0);
    ck_assert_int_eq(begin(s, "c", "b", 'A', T0), IDEM_NEW);
    complete_status(s, "c", "b", 201, T0 + SEC);
    ck_assert_int_eq(begin(s, "c", "x", 'A', T0), IDEM_NEW);
    complete_status(s, "c", "x", 202, T0 + TTL);
    struct idem_stats st = stats(s);
    ck_assert_uint_eq(st.entries, 2);
    ck_assert_uint_eq(st.evictions, 0);
    ck_assert_int_eq(replay(s, "c", "b", 'A', T0 + TTL)->status, 201);
    ck_assert_int_eq(replay(s, "c", "x", 'A', T0 + TTL)->status, 202);
    idem_free(s);
}
END_TEST

/* ---- namespaces ---- */

START_TEST(test_callers_separate)
{
    struct idem_store *s = new_store(10, TTL);
    ck_assert_int_eq(begin(s, "alice", "k", 'A', T0), IDEM_NEW);
    ck_assert_int_eq(begin(s, "bob", "k", 'A', T0), IDEM_NEW);
    ck_assert_int_eq(begin(s, "", "k", 'B', T0), IDEM_NEW);
    complete_status(s, "alice", "k", 201, T0);
    ck_assert_int_eq(begin(s, "bob", "k", 'A', T0), IDEM_IN_PROGRESS);
    complete_status(s, "bob", "k", 202, T0);
    ck_assert_int_eq(replay(s, "alice", "k", 'A', T0)->status, 201);
    ck_assert_int_eq(replay(s, "bob", "k", 'A', T0)->status, 202);
    ck_assert_int_eq(begin(s, "", "k", 'B', T0), IDEM_IN_PROGRESS);
    idem_abandon(s, "", "k");
    ck_assert_int_eq(replay(s, "alice", "k", 'A', T0)->status, 201);
    ck_assert_uint_eq(stats(s).entries, 2);
    idem_free(s);
}
END_TEST

START_TEST(test_caller_key_split)
{
    struct idem_store *s = new_store(10, TTL);
    ck_assert_int_eq(begin(s, "a", "bc", 'A', T0), IDEM_NEW);
    ck_assert_int_eq(begin(s, "ab", "c", 'A', T0), IDEM_NEW);
    ck_assert_int_eq(begin(s, "", "abc", 'A', T0), IDEM_NEW);
    ck_assert_int_eq(begin(s, "abc", "d", 'A', T0), IDEM_NEW);
    ck_assert_int_eq(begin(s, "abcd", "c", 'A', T0), IDEM_NEW);
    complete_status(s, "a", "bc", 201, T0);
    complete_status(s, "ab", "c", 202, T0);
    complete_status(s, "", "abc", 203, T0);
    ck_assert_int_eq(replay(s, "a", "bc", 'A', T0)->status, 201);
    ck_assert_int_eq(replay(s, "ab", "c", 'A', T0)->status, 202);
    ck_assert_int_eq(replay(s, "", "abc", 'A', T0)->status, 203);
    ck_assert_uint_eq(stats(s).entries, 5);
    ck_assert_uint_eq(stats(s).in_flight, 2);
    idem_free(s);
}
END_TEST

START_TEST(test_null_caller_is_empty)
{
    struct idem_store *s = new_store(10, TTL);
    ck_assert_int_eq(begin(s, NULL, "k", 'A', T0), IDEM_NEW);
    ck_assert_int_eq(begin(s, "", "k", 'A', T0), IDEM_IN_PROGRESS);
    complete_status(s, NULL, "k", 200, T0);
    ck_assert_int_eq(replay(s, "", "k", 'A', T0)->status, 200);
    idem_free(s);
}
END_TEST

/* ---- bounds ---- */

START_TEST(test_max_bound)
{
    enum { MAX = 10, EXTRA = 3 };
    struct idem_store *s = new_store(MAX, TTL);
    char k[32];
    for (unsigned i = 0; i < MAX + EXTRA; i++) {
        keyname(k, sizeof(k), i);
        ck_assert_int_eq(begin(s, "c", k, 'A', T0), IDEM_NEW);
        complete_status(s, "c", k, 200 + (int)i, T0 + i);
    }
    struct idem_stats st = stats(s);
    ck_assert_uint_eq(st.entries, MAX);
    ck_assert_uint_eq(st.evictions, EXTRA);
    for (unsigned i = EXTRA; i < MAX + EXTRA; i++) {
        keyname(k, sizeof(k), i);
        ck_assert_int_eq(replay(s, "c", k, 'A', T0 + 100)->status,
                         200 + (int)i);
    }
    for (unsigned i = 0; i < EXTRA; i++) {
        keyname(k, sizeof(k), i);
        ck_assert_int_eq(begin(s, "c", k, 'A', T0 + 100), IDEM_NEW);
    }
    idem_free(s);
}
END_TEST

START_TEST(test_in_flight_beyond_bound)
{
    enum { MAX = 3, N = 8, DONE = 5 };
    struct idem_store *s = new_store(MAX, TTL);
    char k[32];
    for (unsigned i = 0; i < N; i++) {
        keyname(k, sizeof(k), i);
        ck_assert_int_eq(begin(s, "c", k, 'A', T0), IDEM_NEW);
    }
    ck_assert_uint_eq(stats(s).entries, N); /* in flight, beyond MAX */
    ck_assert_uint_eq(stats(s).evictions, 0);
    for (unsigned i = 0; i < DONE; i++) {
        keyname(k, sizeof(k), i);
        complete_status(s, "c", k, 200, T0 + i);
    }
    struct idem_stats st = stats(s);
    ck_assert_uint_eq(st.in_flight, N - DONE);
    ck_assert_uint_eq(st.entries, MAX + N - DONE);
    ck_assert_uint_eq(st.evictions, DONE - MAX);
    for (unsigned i = DONE; i < N; i++) {
        keyname(k, sizeof(k), i);
        ck_assert_int_eq(begin(s, "c", k, 'A', T0), IDEM_IN_PROGRESS);
    }
    for (unsigned i = DONE - MAX; i < DONE; i++) {
        keyname(k, sizeof(k), i);
        ck_assert_int_eq(replay(s, "c", k, 'A', T0)->status, 200);
    }
    idem_free(s);
}
END_TEST

START_TEST(test_max_one)
{
    struct idem_store *s = new_store(1, TTL);
    ck_assert_int_eq(begin(s, "c", "a", 'A', T0), IDEM_NEW);
    ck_assert_int_eq(begin(s, "c", "b", 'A', T0), IDEM_NEW);
    complete_status(s, "c", "a", 201, T0);
    complete_status(s, "c", "b", 202, T0);
    ck_assert_uint_eq(stats(s).entries, 1);
    ck_assert_uint_eq(stats(s).evictions, 1);
    ck_assert_int_eq(replay(s, "c", "b", 'A', T0)->status, 202);
    ck_assert_int_eq(begin(s, "c", "a", 'A', T0), IDEM_NEW);
    idem_free(s);
}
END_TEST

START_TEST(test_configure_shrink)
{
    enum { MAX = 10, NEWMAX = 4 };
    struct idem_store *s = new_store(MAX, TTL);
    char k[32];
    for (unsigned i = 0; i < MAX; i++) {
        keyname(k, sizeof(k), i);
        ck_assert_int_eq(begin(s, "c", k, 'A', T0), IDEM_NEW);
        complete_status(s, "c", k, 200 + (int)i, T0 + i);
    }
    ck_assert_int_eq(begin(s, "c", "inflight", 'A', T0), IDEM_NEW);
    idem_configure(s, NEWMAX, TTL);
    struct idem_stats st = stats(s);
    ck_assert_uint_eq(st.entries, NEWMAX + 1);
    ck_assert_uint_eq(st.in_flight, 1);
    ck_assert_uint_eq(st.evictions, MAX - NEWMAX);
    for (unsigned i = MAX - NEWMAX; i < MAX; i++) {
        keyname(k, sizeof(k), i);
        ck_assert_int_eq(replay(s, "c", k, 'A', T0 + 100)->status,
                         200 + (int)i);
    }
    for (unsigned i = 0; i < MAX - NEWMAX; i++) {
        keyname(k, sizeof(k), i);
        ck_assert_int_eq(begin(s, "c", k, 'A', T0 + 100), IDEM_NEW);
    }
    ck_assert_int_eq(begin(s, "c", "inflight", 'A', T0), IDEM_IN_PROGRESS);

    /* The new bound holds for later answers too; raising it drops none. */
    idem_configure(s, NEWMAX + 100, TTL);
    ck_assert_uint_eq(stats(s).evictions, MAX - NEWMAX);
    idem_free(s);
}
END_TEST

START_TEST(test_configure_ttl)
{
    struct idem_store *s = new_store(10, TTL);
    ck_assert_int_eq(begin(s, "c", "short", 'A', T0), IDEM_NEW);
    complete_status(s, "c", "short", 200, T0);
    ck_assert_int_eq(begin(s, "c", "long", 'A', T0), IDEM_NEW);
    complete_status(s, "c", "long", 200, T0);

    /* Longer TTL: an answer already kept lives longer. */
    idem_configure(s, 10, 2 * TTL);
    ck_assert_int_eq(replay(s, "c", "long", 'A', T0 + TTL + SEC)->status, 200);
    ck_assert_int_eq(begin(s, "c", "long", 'A', T0 + 2 * TTL), IDEM_NEW);

    /* Shorter TTL: an answer already kept goes sooner, on lookup and by
     * idem_expire(). */
    idem_configure(s, 10, 60 * SEC);
    ck_assert_int_eq(replay(s, "c", "short", 'A', T0 + 59 * SEC)->status, 200);
    idem_expire(s, T0 + 60 * SEC);
    struct idem_stats st = stats(s);
    ck_assert_uint_eq(st.entries, 1); /* "long", in flight */
    ck_assert_uint_eq(st.evictions, 0);
    ck_assert_int_eq(begin(s, "c", "short", 'A', T0 + 60 * SEC), IDEM_NEW);
    idem_free(s);
}
END_TEST

/* ---- keys ---- */

static const struct {
    const char *key;
    int valid;
} key_table[] = {
    {"", 0},
    {"a", 1},
    {"0b1c2d3e-uuid-like-4f5a", 1},
    {"!~", 1},          /* both ends of the range */
    {"has space", 0},   /* 0x20 */
    {"del\x7f", 0},     /* 0x7f */
    {"tab\there", 0},   /* 0x09 */
    {"nl\n", 0},        /* 0x0a */
    {"caf\xc3\xa9", 0}, /* UTF-8 */
    {"\x80", 0},        /* a lone high byte */
    {"\xff", 0},
};
#define NKEYS (int)(sizeof(key_table) / sizeof(key_table[0]))

START_TEST(test_key_valid_table)
{
    ck_assert_msg(idem_key_valid(key_table[_i].key) == key_table[_i].valid,
                  "key #%d", _i);
}
END_TEST

START_TEST(test_key_valid_length)
{
    char k[IDEM_KEY_MAX + 2];
    memset(k, 'x', sizeof(k));
    k[IDEM_KEY_MAX] = '\0'; /* 255 */
    ck_assert_int_eq(idem_key_valid(k), 1);
    k[IDEM_KEY_MAX] = 'x';
    k[IDEM_KEY_MAX + 1] = '\0'; /* 256 */
    ck_assert_int_eq(idem_key_valid(k), 0);
    ck_assert_int_eq(idem_key_valid(NULL), 0);

    /* Every byte value, alone. */
    for (int c = 1; c < 256; c++) {
        char one[2] = {(char)c, '\0'};
        ck_assert_int_eq(idem_key_valid(one), c >= 0x21 && c <= 0x7e);
    }
}
END_TEST

/* ---- answers ---- */

START_TEST(test_binary_body)
{
    struct idem_store *s = new_store(10, TTL);
    static const char bin[] = {'a', '\0', 'b', '\0', '\0', (char)0xff, 'c'};
    ck_assert_int_eq(begin(s, "c", "bin", 'A', T0), IDEM_NEW);
    struct idem_answer in = {200, NULL, 0, bin, sizeof(bin)};
    idem_complete(s, "c", "bin", &in, T0);
    const struct idem_answer *a = replay(s, "c", "bin", 'A', T0);
    ck_assert_int_eq(a->status, 200);
    ck_assert_uint_eq(a->nheaders, 0);
    ck_assert_uint_eq(a->body_len, sizeof(bin));
    ck_assert_mem_eq(a->body, bin, sizeof(bin));

    /* An empty body, given as NULL. */
    ck_assert_int_eq(begin(s, "c", "empty", 'A', T0), IDEM_NEW);
    struct idem_answer none = {204, NULL, 0, NULL, 0};
    idem_complete(s, "c", "empty", &none, T0);
    a = replay(s, "c", "empty", 'A', T0);
    ck_assert_int_eq(a->status, 204);
    ck_assert_uint_eq(a->body_len, 0);
    idem_free(s);
}
END_TEST

START_TEST(test_large_answer)
{
    enum { NH = 40, BODY = 70000 };
    struct idem_store *s = new_store(10, TTL);
    char names[NH][16], values[NH][300];
    struct idem_header hd[NH];
    for (int i = 0; i < NH; i++) {
        snprintf(names[i], sizeof(names[i]), "X-H%d", i);
        memset(values[i], 'a' + i % 26, sizeof(values[i]) - 1);
        values[i][sizeof(values[i]) - 1] = '\0';
        hd[i].name = names[i];
        hd[i].value = values[i];
    }
    char *body = malloc(BODY);
    ck_assert_ptr_nonnull(body);
    for (int i = 0; i < BODY; i++)
        body[i] = (char)(i * 31);
    /* A long caller and the longest key, so the answer starts at an odd
     * offset before alignment. */
    char caller[200], key[IDEM_KEY_MAX + 1];
    memset(caller, 'C', sizeof(caller) - 1);
    caller[sizeof(caller) - 1] = '\0';
    memset(key, 'K', IDEM_KEY_MAX);
    key[IDEM_KEY_MAX] = '\0';

    ck_assert_int_eq(begin(s, caller, key, 'A', T0), IDEM_NEW);
    struct idem_answer in = {200, hd, NH, body, BODY};
    idem_complete(s, caller, key, &in, T0);
    const struct idem_answer *a = replay(s, caller, key, 'A', T0);
    ck_assert_uint_eq(a->nheaders, NH);
    for (int i = 0; i < NH; i++) {
        ck_assert_str_eq(a->headers[i].name, names[i]);
        ck_assert_str_eq(a->headers[i].value, values[i]);
    }
    ck_assert_uint_eq(a->body_len, BODY);
    ck_assert_mem_eq(a->body, body, BODY);
    free(body);
    idem_free(s);
}
END_TEST

/* The kept answer stays put while other keys come and go (the table grows
 * under it). */
START_TEST(test_answer_stable)
{
    struct idem_store *s = new_store(1000, TTL);
    ck_assert_int_eq(begin(s, "c", "first", 'A', T0), IDEM_NEW);
    complete_status(s, "c", "first", 201, T0);
    const struct idem_answer *a = replay(s, "c", "first", 'A', T0);
    char k[32];
    for (unsigned i = 0; i < 500; i++) {
        keyname(k, sizeof(k), i);
        ck_assert_int_eq(begin(s, "c", k, 'A', T0), IDEM_NEW);
        if (i % 2)
            complete_status(s, "c", k, 200, T0);
        else
            idem_abandon(s, "c", k);
    }
    ck_assert_ptr_eq(replay(s, "c", "first", 'A', T0), a);
    ck_assert_int_eq(a->status, 201);
    ck_assert_mem_eq(a->body, "{\"ok\":true}", 11);
    idem_free(s);
}
END_TEST

/* ---- scale ---- */

START_TEST(test_growth)
{
    enum { N = 100000, NCALLERS = 7 };
    static const char *const callers[NCALLERS] = {"",    "a",  "b", "alice",
                                                  "bob", "ab", "ba"};
    struct idem_store *s = new_store(N, TTL);
    char k[32];
    for (unsigned i = 0; i < N; i++) {
        keyname(k, sizeof(k), i / NCALLERS);
        ck_assert_int_eq(begin(s, callers[i % NCALLERS], k, 'A', T0), IDEM_NEW);
        if (i % 3 != 0)
            complete_status(s, callers[i % NCALLERS], k, 200 + (int)(i % 300),
                            T0);
    }
    struct idem_stats st = stats(s);
    ck_assert_uint_eq(st.entries, N);
    ck_assert_uint_eq(st.in_flight, (N + 2) / 3);
    ck_assert_uint_eq(st.evictions, 0);
    for (unsigned i = 0; i < N; i++) {
        keyname(k, sizeof(k), i / NCALLERS);
        const char *c = callers[i % NCALLERS];
        if (i % 3 == 0)
            ck_assert_int_eq(begin(s, c, k, 'A', T0), IDEM_IN_PROGRESS);
        else
            ck_assert_int_eq(replay(s, c, k, 'A', T0)->status,
                             200 + (int)(i % 300));
    }
    st = stats(s);
    ck_assert_uint_eq(st.entries, N);
    ck_assert_uint_eq(st.replays, N - (N + 2) / 3);
    ck_assert_uint_eq(st.conflicts, (N + 2) / 3);

    /* Everything expires; in-flight keys stay. */
    idem_expire(s, T0 + TTL);
    ck_assert_uint_eq(stats(s).entries, (N + 2) / 3);
    idem_free(s);
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("idempotency");
    TCase *tc = tcase_create("verdicts");
    tcase_add_test(tc, test_new_and_free);
    tcase_add_test(tc, test_verdict_cycle);
    tcase_add_test(tc, test_answer_out_optional);
    tcase_add_test(tc, test_abandon);
    tcase_add_test(tc, test_complete_ignored);
    tcase_add_test(tc, test_ttl);
    tcase_add_test(tc, test_expire_in_order);
    tcase_add_test(tc, test_complete_expires_before_evicting);
    tcase_add_test(tc, test_callers_separate);
    tcase_add_test(tc, test_caller_key_split);
    tcase_add_test(tc, test_null_caller_is_empty);
    suite_add_tcase(s, tc);

    tc = tcase_create("bounds");
    tcase_add_test(tc, test_max_bound);
    tcase_add_test(tc, test_in_flight_beyond_bound);
    tcase_add_test(tc, test_max_one);
    tcase_add_test(tc, test_configure_shrink);
    tcase_add_test(tc, test_configure_ttl);
    suite_add_tcase(s, tc);

    tc = tcase_create("keys");
    tcase_add_loop_test(tc, test_key_valid_table, 0, NKEYS);
    tcase_add_test(tc, test_key_valid_length);
    suite_add_tcase(s, tc);

    tc = tcase_create("answers");
    tcase_add_test(tc, test_binary_body);
    tcase_add_test(tc, test_large_answer);
    tcase_add_test(tc, test_answer_stable);
    suite_add_tcase(s, tc);

    tc = tcase_create("scale");
    tcase_set_timeout(tc, 300); /* valgrind */
    tcase_add_test(tc, test_growth);
    suite_add_tcase(s, tc);
    return s;
}
