/* check_state_file.c - unit tests for the state file (state_file.h) and
 * the export/import of the idempotency store and the session cache. Every
 * time is an argument: nothing sleeps, and the TTL passing is a later
 * `now` given to the loader. */
#include "unit.h"
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "idempotency.h"
#include "session_cache.h"
#include "state_file.h"

#define T0 INT64_C(1772015400000) /* 2026-02-25T10:30:00Z */
#define SEC INT64_C(1000)
#define DAY (86400 * SEC)
#define TTL DAY
#define RECHECK (300 * SEC)

static char dir[64], path[96];

static void
setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/wagate-sf-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/state", dir);
}

static void
teardown(void)
{
    unlink(path);
    rmdir(dir);
}

/* ---- helpers ---- */

static void
hash_of(unsigned char c, unsigned char h[IDEM_HASH_LEN])
{
    memset(h, c, IDEM_HASH_LEN);
}

/* A key kept with a small answer whose status and body tell it apart. */
static void
keep(struct idem_store *s, const char *caller, const char *key,
     unsigned char body, int status, int64_t at)
{
    static const struct idem_header hd[] = {
        {"Content-Type", "application/json"},
        {"X-Upstream", "one"},
    };
    unsigned char h[IDEM_HASH_LEN];
    char text[64];
    hash_of(body, h);
    ck_assert_int_eq(idem_begin(s, caller, key, h, at, NULL), IDEM_NEW);
    int n = snprintf(text, sizeof(text), "{\"key\":\"%s\"}", key);
    struct idem_answer a = {.status = status,
                            .headers = hd,
                            .nheaders = 2,
                            .body = text,
                            .body_len = (size_t)n};
    idem_complete(s, caller, key, &a, at);
}

static const struct idem_answer *
replayed(struct idem_store *s, const char *caller, const char *key,
         unsigned char body, int64_t now)
{
    unsigned char h[IDEM_HASH_LEN];
    const struct idem_answer *a = NULL;
    hash_of(body, h);
    ck_assert_int_eq(idem_begin(s, caller, key, h, now, &a), IDEM_REPLAY);
    ck_assert_ptr_nonnull(a);
    return a;
}

static enum idem_verdict
verdict(struct idem_store *s, const char *caller, const char *key,
        unsigned char body, int64_t now)
{
    unsigned char h[IDEM_HASH_LEN];
    hash_of(body, h);
    return idem_begin(s, caller, key, h, now, NULL);
}

static void
save(const struct idem_store *s, const struct session_cache *c, int64_t now,
     struct state_counts *n)
{
    char err[256] = "";
    ck_assert_msg(state_file_save(path, s, c, now, n, err, sizeof(err)) == 0,
                  "%s", err);
}

/* Loads path into new stores (max entries as given). */
static enum state_load_result
load(struct idem_store **s, struct session_cache **c, size_t max, int64_t now,
     struct state_counts *n, char *err, size_t errlen)
{
    *s = idem_new(max, TTL);
    *c = cache_new(max);
    return state_file_load(path, *s, *c, now, RECHECK, n, err, errlen);
}

static void
load_ok(struct idem_store **s, struct session_cache **c, size_t max,
        int64_t now, struct state_counts *n)
{
    char err[256] = "";
    ck_assert_msg(load(s, c, max, now, n, err, sizeof(err)) == STATE_LOADED,
                  "%s", err);
}

static char *
slurp(size_t *n)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    *n = (size_t)st.st_size;
    char *p = malloc(*n + 1);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(p, 1, *n, f), *n);
    fclose(f);
    return p;
}

static void
spill(const char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* Loading path must be refused with why in the message. */
static void
assert_refused(const char *why)
{
    struct idem_store *s;
    struct session_cache *c;
    char err[256] = "";
    ck_assert_int_eq(load(&s, &c, 100, T0, NULL, err, sizeof(err)),
                     STATE_REFUSED);
    ck_assert_msg(strstr(err, why) != NULL, "'%s' not in '%s'", why, err);
    ck_assert_ptr_null(strchr(err, '\n'));
    idem_free(s);
    cache_free(c);
}

/* A store and a cache with a bit of everything, at T0. */
static void
fill(struct idem_store **s, struct session_cache **c)
{
    *s = idem_new(100, TTL);
    *c = cache_new(100);
    keep(*s, "", "k-anon", 1, 200, T0);
    keep(*s, "billing", "k-bill", 2, 422, T0 + SEC);
    /* a body with NUL bytes and no headers */
    unsigned char h[IDEM_HASH_LEN];
    hash_of(3, h);
    ck_assert_int_eq(idem_begin(*s, "billing", "k-bin", h, T0, NULL), IDEM_NEW);
    struct idem_answer bin = {.status = 201, .body = "a\0b\0c", .body_len = 5};
    idem_complete(*s, "billing", "k-bin", &bin, T0 + 2 * SEC);
    /* still in flight when saved */
    hash_of(4, h);
    ck_assert_int_eq(idem_begin(*s, "billing", "k-flying", h, T0, NULL),
                     IDEM_NEW);

    cache_learn_open(*c, 12, 14155550001u, T0 + DAY, CACHE_SRC_SEND_FREEFORM,
                     T0);
    cache_learn_closed(*c, 12, 14155550002u, T0 - DAY, CACHE_SRC_SESSION_STATUS,
                       T0);
    cache_learn_closed(*c, 13, 14155550003u, CACHE_TIME_UNKNOWN,
                       CACHE_SRC_SEND_FREEFORM, T0);
    cache_learn_open(*c, 14, 14155550004u, T0 + DAY, CACHE_SRC_INBOUND, T0);
}

static void
assert_same_entry(const struct session_cache *a, const struct session_cache *b,
                  int64_t sender, uint64_t phone, int64_t now)
{
    struct cache_view va, vb;
    ck_assert_int_eq(cache_get(a, sender, phone, now, RECHECK, &va), 0);
    ck_assert_int_eq(cache_get(b, sender, phone, now, RECHECK, &vb), 0);
    ck_assert_int_eq(va.open, vb.open);
    ck_assert_int_eq(va.expires_at, vb.expires_at);
    ck_assert_int_eq(va.learned_at, vb.learned_at);
    ck_assert_int_eq(va.trusted_until, vb.trusted_until);
    ck_assert_int_eq(va.source, vb.source);
}

/* ---- round trip ---- */

START_TEST(round_trip_keeps_answers_and_entries)
{
    struct idem_store *s, *s2;
    struct session_cache *c, *c2;
    struct state_counts n;
    fill(&s, &c);
    save(s, c, T0 + 10 * SEC, &n);
    ck_assert_uint_eq(n.answers, 4);
    ck_assert_uint_eq(n.unknown, 1);
    ck_assert_uint_eq(n.entries, 4);
    ck_assert_uint_eq(n.answers_dropped, 0);

    load_ok(&s2, &c2, 100, T0 + 20 * SEC, &n);
    ck_assert_uint_eq(n.answers, 4);
    ck_assert_uint_eq(n.entries, 4);
    ck_assert_uint_eq(n.answers_dropped + n.entries_dropped, 0);
    ck_assert_int_eq(n.written_at, T0 + 10 * SEC);

    const struct idem_answer *a = replayed(s2, "", "k-anon", 1, T0 + 30 * SEC);
    ck_assert_int_eq(a->status, 200);
    ck_assert_uint_eq(a->nheaders, 2);
    ck_assert_str_eq(a->headers[0].name, "Content-Type");
    ck_assert_str_eq(a->headers[0].value, "application/json");
    ck_assert_str_eq(a->headers[1].name, "X-Upstream");
    ck_assert_str_eq(a->headers[1].value, "one");
    ck_assert_str_eq(a->body, "{\"key\":\"k-anon\"}");
    a = replayed(s2, "billing", "k-bill", 2, T0 + 30 * SEC);
    ck_assert_int_eq(a->status, 422);
    a = replayed(s2, "billing", "k-bin", 3, T0 + 30 * SEC);
    ck_assert_int_eq(a->status, 201);
    ck_assert_uint_eq(a->nheaders, 0);
    ck_assert_uint_eq(a->body_len, 5);
    ck_assert(memcmp(a->body, "a\0b\0c", 5) == 0);
    /* callers are separate key spaces, bodies still count */
    ck_assert_int_eq(verdict(s2, "", "k-bill", 2, T0 + 30 * SEC), IDEM_NEW);
    ck_assert_int_eq(verdict(s2, "billing", "k-anon", 1, T0 + 30 * SEC),
                     IDEM_NEW);
    ck_assert_int_eq(verdict(s2, "billing", "k-bill", 9, T0 + 30 * SEC),
                     IDEM_REUSED);

    /* the key in flight came back as an unknown outcome */
    a = replayed(s2, "billing", "k-flying", 4, T0 + 30 * SEC);
    ck_assert_int_eq(a->status, 502);
    ck_assert_uint_eq(a->nheaders, 1);
    ck_assert_str_eq(a->headers[0].name, "Content-Type");
    ck_assert_str_eq(a->headers[0].value, "application/json");
    ck_assert_ptr_nonnull(strstr(a->body, "\"outcome\":\"unknown\""));
    ck_assert_ptr_nonnull(
        strstr(a->body, "\"error_code\":\"UPSTREAM_UNAVAILABLE\""));
    ck_assert_ptr_nonnull(strstr(a->body, "\"success\":false"));
    ck_assert_ptr_nonnull(strstr(a->body, "may have been sent"));
    ck_assert_int_eq(verdict(s2, "billing", "k-flying", 5, T0 + 30 * SEC),
                     IDEM_REUSED);
    /* the unknown answer was stored when the state was saved */
    ck_assert_int_eq(verdict(s2, "billing", "k-flying", 4, T0 + 10 * SEC + TTL),
                     IDEM_NEW);

    int64_t now = T0 + 30 * SEC;
    assert_same_entry(c, c2, 12, 14155550001u, now);
    assert_same_entry(c, c2, 12, 14155550002u, now);
    assert_same_entry(c, c2, 13, 14155550003u, now);
    assert_same_entry(c, c2, 14, 14155550004u, now);
    ck_assert_int_eq(cache_decide(c2, 12, 14155550002u, now, RECHECK, NULL),
                     CACHE_SHORT_CIRCUIT);
    struct cache_stats cs;
    cache_get_stats(c2, &cs);
    ck_assert_uint_eq(cs.lookups, 1); /* the import counted nothing */
    ck_assert_uint_eq(cs.evictions, 0);

    idem_free(s);
    idem_free(s2);
    cache_free(c);
    cache_free(c2);
}
END_TEST

START_TEST(empty_stores_round_trip)
{
    struct idem_store *s = idem_new(10, TTL), *s2;
    struct session_cache *c = cache_new(10), *c2;
    struct state_counts n;
    save(s, c, T0, &n);
    ck_assert_uint_eq(n.answers + n.entries, 0);
    load_ok(&s2, &c2, 10, T0, &n);
    ck_assert_uint_eq(n.answers + n.entries, 0);
    idem_free(s);
    idem_free(s2);
    cache_free(c);
    cache_free(c2);
}
END_TEST

START_TEST(recency_survives_and_max_entries_bound_the_load)
{
    struct idem_store *s = idem_new(100, TTL), *s2;
    struct session_cache *c = cache_new(100), *c2;
    char key[16];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        keep(s, "", key, (unsigned char)i, 200, T0 + i * SEC);
        cache_learn_open(c, 12, 14155550000u + (uint64_t)i, T0 + DAY,
                         CACHE_SRC_SEND_FREEFORM, T0 + i * SEC);
    }
    /* touch entry 0: it is now the most recently used */
    cache_decide(c, 12, 14155550000u, T0 + 20 * SEC, RECHECK, NULL);
    struct state_counts n;
    save(s, c, T0 + 30 * SEC, &n);

    load_ok(&s2, &c2, 3, T0 + 40 * SEC, &n);
    ck_assert_uint_eq(n.answers, 3);
    ck_assert_uint_eq(n.entries, 3);
    struct idem_stats is;
    idem_get_stats(s2, &is);
    ck_assert_uint_eq(is.entries, 3);
    for (int i = 0; i < 10; i++) { /* the newest answers stayed */
        snprintf(key, sizeof(key), "key-%d", i);
        ck_assert_int_eq(verdict(s2, "", key, (unsigned char)i, T0 + 40 * SEC),
                         i >= 7 ? IDEM_REPLAY : IDEM_NEW);
    }
    struct cache_view v; /* the three most recently used: 0, 9, 8 */
    ck_assert_int_eq(cache_get(c2, 12, 14155550000u, T0, RECHECK, &v), 0);
    ck_assert_int_eq(cache_get(c2, 12, 14155550009u, T0, RECHECK, &v), 0);
    ck_assert_int_eq(cache_get(c2, 12, 14155550008u, T0, RECHECK, &v), 0);
    ck_assert_int_eq(cache_get(c2, 12, 14155550007u, T0, RECHECK, &v), -1);
    ck_assert_int_eq(cache_get(c2, 12, 14155550001u, T0, RECHECK, &v), -1);
    idem_free(s);
    idem_free(s2);
    cache_free(c);
    cache_free(c2);
}
END_TEST

/* ---- time: expiry, and a clock that moved back ---- */

START_TEST(expired_answers_and_stale_entries_are_dropped)
{
    struct idem_store *s, *s2;
    struct session_cache *c, *c2;
    struct state_counts n;
    fill(&s, &c);
    save(s, c, T0 + 10 * SEC, &n);

    /* one second before k-anon's TTL ends (stored at T0): all kept, but
     * the trust of the closed windows (T0 + 300 s) has run out */
    load_ok(&s2, &c2, 100, T0 + TTL - SEC, &n);
    ck_assert_uint_eq(n.answers, 4);
    ck_assert_uint_eq(n.answers_dropped, 0);
    ck_assert_uint_eq(n.entries, 2); /* the two open windows */
    ck_assert_uint_eq(n.entries_dropped, 2);
    struct cache_view v;
    ck_assert_int_eq(cache_get(c2, 12, 14155550001u, T0, RECHECK, &v), 0);
    ck_assert_int_eq(cache_get(c2, 12, 14155550002u, T0, RECHECK, &v), -1);
    ck_assert_int_eq(verdict(s2, "", "k-anon", 1, T0 + TTL - SEC), IDEM_REPLAY);
    ck_assert_int_eq(verdict(s2, "", "k-anon", 1, T0 + TTL), IDEM_NEW);
    idem_free(s2);
    cache_free(c2);

    /* at k-anon's TTL: it is gone, the later ones are not */
    load_ok(&s2, &c2, 100, T0 + TTL, &n);
    ck_assert_uint_eq(n.answers, 3);
    ck_assert_uint_eq(n.answers_dropped, 1);
    ck_assert_int_eq(verdict(s2, "", "k-anon", 1, T0 + TTL), IDEM_NEW);
    ck_assert_int_eq(verdict(s2, "billing", "k-bill", 2, T0 + TTL),
                     IDEM_REPLAY);
    idem_free(s2);
    cache_free(c2);

    /* long after: nothing left; the open windows expired at T0 + 1 day and
     * their trust ran out 300 s later */
    load_ok(&s2, &c2, 100, T0 + 2 * TTL, &n);
    ck_assert_uint_eq(n.answers, 0);
    ck_assert_uint_eq(n.answers_dropped, 4);
    ck_assert_uint_eq(n.entries, 0);
    ck_assert_uint_eq(n.entries_dropped, 4);
    idem_free(s2);
    cache_free(c2);
    idem_free(s);
    cache_free(c);
}
END_TEST

START_TEST(a_clock_that_moved_back_extends_nothing)
{
    struct idem_store *s, *s2;
    struct session_cache *c, *c2;
    struct state_counts n;
    fill(&s, &c);
    save(s, c, T0 + 10 * SEC, &n);
    int64_t now = T0 - 10 * DAY; /* the wall clock went back 10 days */
    load_ok(&s2, &c2, 100, now, &n);
    ck_assert_int_eq(n.written_at, T0 + 10 * SEC);
    ck_assert_uint_eq(n.answers, 4);
    /* kept for TTL from the load, not from T0 */
    ck_assert_int_eq(verdict(s2, "", "k-anon", 1, now + TTL - 1), IDEM_REPLAY);
    ck_assert_int_eq(verdict(s2, "", "k-anon", 1, now + TTL), IDEM_NEW);
    ck_assert_int_eq(verdict(s2, "billing", "k-flying", 4, now + TTL),
                     IDEM_NEW);
    /* a closed window is trusted for recheck from the load at most */
    struct cache_view v;
    ck_assert_int_eq(cache_get(c2, 12, 14155550002u, now, RECHECK, &v), 0);
    ck_assert_int_eq(v.open, 0);
    ck_assert_int_le(v.trusted_until, now + RECHECK);
    ck_assert_int_le(v.learned_at, now);
    ck_assert_int_eq(
        cache_decide(c2, 12, 14155550002u, now + RECHECK - 1, RECHECK, NULL),
        CACHE_SHORT_CIRCUIT);
    ck_assert_int_eq(cache_get(c2, 13, 14155550003u, now, RECHECK, &v), 0);
    ck_assert_int_le(v.trusted_until, now + RECHECK);
    ck_assert_int_eq(
        cache_decide(c2, 13, 14155550003u, now + RECHECK, RECHECK, NULL),
        CACHE_FORWARD);
    idem_free(s);
    idem_free(s2);
    cache_free(c);
    cache_free(c2);
}
END_TEST

/* ---- files that must be refused ---- */

START_TEST(absent_file_leaves_the_stores_alone)
{
    struct idem_store *s;
    struct session_cache *c;
    char err[256] = "";
    ck_assert_int_eq(load(&s, &c, 10, T0, NULL, err, sizeof(err)),
                     STATE_ABSENT);
    idem_free(s);
    cache_free(c);
}
END_TEST

START_TEST(a_directory_is_refused)
{
    ck_assert_int_eq(mkdir(path, 0700), 0);
    assert_refused("not a regular file");
    rmdir(path);
}
END_TEST

/* Opening a FIFO for reading waits for a writer: the start would hang
 * there for ever (the test's timeout says so), SIGTERM included. */
/* The load runs in a child, so that a load that blocks is seen as one
 * (the suites run with CK_FORK=no: no Check timeout would stop it). */
START_TEST(a_fifo_is_refused_without_waiting_for_a_writer)
{
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct idem_store *s = idem_new(10, TTL);
        struct session_cache *c = cache_new(10);
        char err[256] = "";
        enum state_load_result rc =
            state_file_load(path, s, c, T0, RECHECK, NULL, err, sizeof(err));
        idem_free(s);
        cache_free(c);
        _exit(rc == STATE_REFUSED && strstr(err, "not a regular file") ? 0 : 1);
    }
    int status = 0, done = 0;
    for (int i = 0; i < 500 && !done; i++) { /* 5 s at most */
        done = waitpid(pid, &status, WNOHANG) == pid;
        if (!done)
            usleep(10000);
    }
    if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    ck_assert_msg(done, "state_file_load() blocked on a FIFO");
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

START_TEST(foreign_files_are_refused)
{
    spill("{\"listen\": [\"127.0.0.1:8080\"]}\n", 31);
    assert_refused("not a wagate state file");
    spill("WGS", 3); /* a prefix of the magic: ours, cut short */
    assert_refused("truncated at byte 3");
    spill("", 0);
    assert_refused("truncated at byte 0");
}
END_TEST

START_TEST(another_version_is_refused)
{
    struct idem_store *s;
    struct session_cache *c;
    fill(&s, &c);
    save(s, c, T0, NULL);
    size_t n;
    char *p = slurp(&n);
    p[8] = 2;
    spill(p, n);
    assert_refused("version 2; this wagate reads version 1");
    free(p);
    idem_free(s);
    cache_free(c);
}
END_TEST

START_TEST(every_truncation_is_refused)
{
    struct idem_store *s;
    struct session_cache *c;
    fill(&s, &c);
    save(s, c, T0, NULL);
    size_t n;
    char *p = slurp(&n);
    for (size_t len = 0; len < n; len++) {
        spill(p, len);
        assert_refused(len >= 8 ? "truncated at byte" : "truncated");
    }
    spill(p, n);
    char *q = malloc(n + 1);
    memcpy(q, p, n);
    q[n] = 'x';
    spill(q, n + 1);
    assert_refused("bytes after the end");
    free(q);
    free(p);
    idem_free(s);
    cache_free(c);
}
END_TEST

START_TEST(every_flipped_bit_is_refused)
{
    struct idem_store *s;
    struct session_cache *c;
    fill(&s, &c);
    save(s, c, T0, NULL);
    size_t n;
    char *p = slurp(&n);
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            p[i] ^= (char)(1 << bit);
            spill(p, n);
            assert_refused(""); /* refused, whatever the reason */
            p[i] ^= (char)(1 << bit);
        }
    }
    free(p);
    idem_free(s);
    cache_free(c);
}
END_TEST

/* Hand-made records: a valid header, then what a hostile file says. */
struct craft {
    unsigned char b[1024];
    size_t n;
};

static void
put(struct craft *k, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        k->b[k->n++] = (unsigned char)(v >> (8 * i));
}

static void
put_str(struct craft *k, const char *s)
{
    put(k, strlen(s), 4);
    memcpy(k->b + k->n, s, strlen(s));
    k->n += strlen(s);
}

static void
craft_header(struct craft *k)
{
    k->n = 0;
    memcpy(k->b, STATE_FILE_MAGIC, 8);
    k->n = 8;
    put(k, STATE_FILE_VERSION, 4);
    put(k, 0, 4);
    put(k, (uint64_t)T0, 8);
}

/* An answer record up to its header count. */
static void
craft_answer_start(struct craft *k, const char *key, int status, uint32_t nh)
{
    put(k, 1, 1);
    put_str(k, "");
    put_str(k, key);
    for (int i = 0; i < IDEM_HASH_LEN; i++)
        put(k, 7, 1);
    put(k, (uint64_t)T0, 8);
    put(k, (uint64_t)status, 2);
    put(k, nh, 4);
}

START_TEST(hostile_lengths_are_refused_before_allocating)
{
    struct craft k;
    craft_header(&k);
    put(&k, 1, 1);
    put(&k, 0xffffffffu, 4); /* a caller name of 4 GiB */
    spill((char *)k.b, k.n);
    assert_refused("a caller name of 4294967295 bytes at byte 25");

    craft_header(&k);
    craft_answer_start(&k, "key", 200, 0);
    put(&k, 0xfffffff0u, 4); /* a body of 4 GiB */
    spill((char *)k.b, k.n);
    assert_refused("a body of 4294967280 bytes");

    craft_header(&k);
    craft_answer_start(&k, "key", 200, 1000000); /* a million headers */
    spill((char *)k.b, k.n);
    assert_refused("corrupt: answer at byte 24 (status 200, 1000000 headers)");

    craft_header(&k);
    craft_answer_start(&k, "key", 200, 2);
    put_str(&k, "X-A");
    put(&k, STATE_MAX_HEADER_BYTES, 4); /* with the name, over the sum */
    spill((char *)k.b, k.n);
    assert_refused("a header value of 262144 bytes");

    craft_header(&k);
    put(&k, 1, 1);
    put_str(&k, "");
    put(&k, 256, 4); /* a key longer than 255 */
    spill((char *)k.b, k.n);
    assert_refused("an Idempotency-Key of 256 bytes");
}
END_TEST

START_TEST(records_wagate_never_writes_are_refused)
{
    struct craft k;
    craft_header(&k);
    craft_answer_start(&k, "two words", 200, 0); /* not a valid key */
    put_str(&k, "{}");
    spill((char *)k.b, k.n);
    assert_refused("the answer at byte 24 is not one wagate keeps");

    craft_header(&k);
    craft_answer_start(&k, "key", 42, 0);
    spill((char *)k.b, k.n);
    assert_refused("status 42");

    craft_header(&k);
    put(&k, 1, 1);
    put_str(&k, "");
    put(&k, 3, 4);
    memcpy(k.b + k.n, "k\0y", 3); /* a NUL inside a key */
    k.n += 3;
    spill((char *)k.b, k.n);
    assert_refused("an Idempotency-Key with a NUL byte");

    craft_header(&k);
    put(&k, 2, 1); /* a session entry with source 9 */
    put(&k, 12, 8);
    put(&k, 14155550001u, 8);
    put(&k, (uint64_t)(T0 + DAY), 8);
    put(&k, (uint64_t)T0, 8);
    put(&k, 1, 1);
    put(&k, 9, 1);
    spill((char *)k.b, k.n);
    assert_refused("the session entry at byte 24 is not one wagate keeps");

    craft_header(&k);
    put(&k, 5, 1);
    spill((char *)k.b, k.n);
    assert_refused("unknown record 5 at byte 24");

    craft_header(&k);
    k.b[12] = 1; /* flags */
    spill((char *)k.b, k.n);
    assert_refused("unknown flags");
}
END_TEST

/* ---- saving ---- */

static int
files_in_dir(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

START_TEST(a_save_replaces_the_file_and_leaves_no_temporary)
{
    struct idem_store *s, *s2;
    struct session_cache *c, *c2;
    struct state_counts n;
    fill(&s, &c);
    save(s, c, T0, &n);
    keep(s, "", "k-later", 9, 200, T0 + 5 * SEC);
    save(s, c, T0 + 6 * SEC, &n);
    ck_assert_uint_eq(n.answers, 5);
    ck_assert_int_eq(files_in_dir(), 1);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    load_ok(&s2, &c2, 100, T0 + 7 * SEC, &n);
    ck_assert_int_eq(verdict(s2, "", "k-later", 9, T0 + 7 * SEC), IDEM_REPLAY);
    idem_free(s);
    idem_free(s2);
    cache_free(c);
    cache_free(c2);
}
END_TEST

START_TEST(a_failed_save_says_why_and_touches_nothing)
{
    struct idem_store *s;
    struct session_cache *c;
    fill(&s, &c);
    char err[256] = "", bad[128];
    snprintf(bad, sizeof(bad), "%s/missing/state", dir);
    ck_assert_int_eq(state_file_save(bad, s, c, T0, NULL, err, sizeof(err)),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "cannot create a temporary file"));
    /* the target is a directory: the rename fails, the temporary goes */
    ck_assert_int_eq(mkdir(path, 0700), 0);
    ck_assert_int_eq(state_file_save(path, s, c, T0, NULL, err, sizeof(err)),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "rename"));
    ck_assert_int_eq(files_in_dir(), 1);
    rmdir(path);
    idem_free(s);
    cache_free(c);
}
END_TEST

START_TEST(an_answer_over_the_limits_is_left_out_not_written)
{
    struct idem_store *s = idem_new(10, TTL), *s2;
    struct session_cache *c = cache_new(10), *c2;
    keep(s, "", "k-small", 1, 200, T0);
    size_t nh = STATE_MAX_HEADERS + 1;
    struct idem_header *hd = calloc(nh, sizeof(*hd));
    for (size_t i = 0; i < nh; i++)
        hd[i] = (struct idem_header){"X-Many", "v"};
    unsigned char h[IDEM_HASH_LEN];
    hash_of(2, h);
    ck_assert_int_eq(idem_begin(s, "", "k-huge", h, T0, NULL), IDEM_NEW);
    struct idem_answer a = {.status = 200, .headers = hd, .nheaders = nh};
    idem_complete(s, "", "k-huge", &a, T0);
    free(hd);
    struct state_counts n;
    save(s, c, T0, &n);
    ck_assert_uint_eq(n.answers, 1);
    ck_assert_uint_eq(n.answers_dropped, 1);
    load_ok(&s2, &c2, 10, T0, &n); /* what was written loads */
    ck_assert_uint_eq(n.answers, 1);
    idem_free(s);
    idem_free(s2);
    cache_free(c);
    cache_free(c2);
}
END_TEST

/* ---- the store functions on their own ---- */

START_TEST(idem_import_refuses_and_drops)
{
    struct idem_store *s = idem_new(10, TTL);
    unsigned char h[IDEM_HASH_LEN];
    hash_of(1, h);
    struct idem_answer a = {.status = 200, .body = "{}", .body_len = 2};
    struct idem_record r = {"", "k", h, T0, &a};
    ck_assert_int_eq(idem_import(s, &r, T0), 1);
    ck_assert_int_eq(idem_import(s, &r, T0), 0); /* already there */
    r.key = "k 2";
    ck_assert_int_eq(idem_import(s, &r, T0), -1);
    r.key = "k2";
    r.answer = NULL;
    ck_assert_int_eq(idem_import(s, &r, T0), -1);
    r.answer = &a;
    r.stored_at = T0 - TTL;
    ck_assert_int_eq(idem_import(s, &r, T0), 0); /* expired */
    /* an expired one in the store is replaced */
    r.key = "k";
    r.stored_at = T0 + TTL;
    ck_assert_int_eq(idem_import(s, &r, T0 + TTL), 1);
    ck_assert_int_eq(verdict(s, "", "k", 1, T0 + TTL), IDEM_REPLAY);
    idem_free(s);
}
END_TEST

START_TEST(cache_import_refuses_bad_records)
{
    struct session_cache *c = cache_new(10);
    struct cache_record r = {12, 1, 2, T0, T0, CACHE_SRC_SEND_FREEFORM};
    ck_assert_int_eq(cache_import(c, &r, T0, RECHECK), -1); /* open 2 */
    r.open = 1;
    r.source = (enum cache_source)7;
    ck_assert_int_eq(cache_import(c, &r, T0, RECHECK), -1);
    r.source = CACHE_SRC_INBOUND;
    r.when = CACHE_TIME_UNKNOWN;
    ck_assert_int_eq(cache_import(c, &r, T0, RECHECK), -1);
    r.open = 0;
    ck_assert_int_eq(cache_import(c, &r, T0, RECHECK), 1);
    ck_assert_int_eq(cache_import(c, &r, T0, 0), 0); /* recheck 0: useless */
    cache_free(c);
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("state_file");
    TCase *tc = tcase_create("state_file");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120); /* the bit flips under valgrind */
    tcase_add_test(tc, round_trip_keeps_answers_and_entries);
    tcase_add_test(tc, empty_stores_round_trip);
    tcase_add_test(tc, recency_survives_and_max_entries_bound_the_load);
    tcase_add_test(tc, expired_answers_and_stale_entries_are_dropped);
    tcase_add_test(tc, a_clock_that_moved_back_extends_nothing);
    tcase_add_test(tc, absent_file_leaves_the_stores_alone);
    tcase_add_test(tc, a_directory_is_refused);
    tcase_add_test(tc, a_fifo_is_refused_without_waiting_for_a_writer);
    tcase_add_test(tc, foreign_files_are_refused);
    tcase_add_test(tc, another_version_is_refused);
    tcase_add_test(tc, every_truncation_is_refused);
    tcase_add_test(tc, every_flipped_bit_is_refused);
    tcase_add_test(tc, hostile_lengths_are_refused_before_allocating);
    tcase_add_test(tc, records_wagate_never_writes_are_refused);
    tcase_add_test(tc, a_save_replaces_the_file_and_leaves_no_temporary);
    tcase_add_test(tc, a_failed_save_says_why_and_touches_nothing);
    tcase_add_test(tc, an_answer_over_the_limits_is_left_out_not_written);
    tcase_add_test(tc, idem_import_refuses_and_drops);
    tcase_add_test(tc, cache_import_refuses_bad_records);
    suite_add_tcase(s, tc);
    return s;
}
