/* redis_scripts_ref.c - the Lua scripts of the learned refusals
 * (src/redis/ref_*.lua; SPEC sections 4a and 11) run by a real
 * redis-server (hx_redis.h) with EVAL, `now` injected: a lesson answered
 * byte for byte, exactly one probe when trust runs out, a kind whose
 * trust is 0 never trusted and never learned, a 2xx clearing the sender
 * and the balance, the balance account-wide and the sender entries per
 * sender, the newest learned wins, a senders list's lessons, TTLs on
 * every key written and nothing written by a forward, a kind in the
 * wrong key or a hand-corrupted hash taken as absent, the list's order
 * and its clean-up of the index, forget, and the shipped source after a
 * SCRIPT FLUSH. The script sources are the shipped ones (the embedded
 * table). */
#include <check.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "hx_redis.h"
#include "redis_scripts.h"
#include "refusals.h"

static struct hx_redis rs;
static redisContext *rc;

#define T0 1800000000000000LL /* µs: some day in 2027 */
#define MS 1000LL             /* µs */
#define NOW_MS (T0 / MS)
#define TOFF 30000  /* ms: sender_offline's trust */
#define TNF 300000  /* ms: sender_not_found's */
#define TBAL 10000  /* ms: balance's */
#define MARGIN_MIN 60000
#define BASE "wagate:{acct}:"
#define BAL BASE "ref:balance"
#define IDX BASE "ref:s"
#define OFFLINE_503                                                           \
    "{\"success\":false,\"error\":\"Sender is not online.\",\r\n"             \
    "\"error_code\":\"SENDER_OFFLINE\"}\r\n"
#define NOT_FOUND "{\"success\":false,\"error_code\":\"SENDER_NOT_FOUND\"}"
#define BROKE "{\"success\":false,\"error_code\":\"INSUFFICIENT_BALANCE\"}"

/* ---- the scripts ---- */

static char *
script_source(const char *name)
{
    for (size_t i = 0; i < RS_COUNT; i++)
        if (redis_scripts[i].name && strcmp(redis_scripts[i].name, name) == 0)
            return strdup(redis_scripts[i].source);
    ck_abort_msg("no script %s", name);
    return NULL;
}

static const char *
us(long long v) /* a rotating buffer: several may be live in one call */
{
    static char b[16][32];
    static int i;
    i = (i + 1) % 16;
    snprintf(b[i], sizeof(b[i]), "%lld", v);
    return b[i];
}

static const char *
sk(long long sender) /* a sender's entry key (rotating, as us()) */
{
    static char b[8][64];
    static int i;
    i = (i + 1) % 8;
    snprintf(b[i], sizeof(b[i]), BASE "ref:s:%lld", sender);
    return b[i];
}

/* EVAL of script name with nkeys keys then the other arguments (C
 * strings, NULL-ended). The reply is the caller's to free. */
static redisReply *
ev(const char *name, int nkeys, ...)
{
    const char *argv[40];
    char nk[16];
    char *src = script_source(name);
    int argc = 0;
    argv[argc++] = "EVAL";
    argv[argc++] = src;
    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[argc++] = nk;
    va_list ap;
    va_start(ap, nkeys);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && argc < 40)
        argv[argc++] = a;
    va_end(ap);
    redisReply *r = redisCommandArgv(rc, argc, argv, NULL);
    free(src);
    ck_assert_ptr_nonnull(r);
    return r;
}

static void
ck_error(redisReply *r, const char *want)
{
    ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
    ck_assert_msg(strstr(r->str, want) != NULL, "error %s, want %s", r->str,
                  want);
    freeReplyObject(r);
}

/* {n, entries}: n, and entries in *entries (NULL: not wanted). */
static long long
pair(redisReply *r, long long *entries)
{
    ck_assert_msg(r->type == REDIS_REPLY_ARRAY, "reply type %d: %s", r->type,
                  r->type == REDIS_REPLY_ERROR ? r->str : "");
    ck_assert_int_eq(r->elements, 2);
    ck_assert_int_eq(r->element[0]->type, REDIS_REPLY_INTEGER);
    ck_assert_int_eq(r->element[1]->type, REDIS_REPLY_INTEGER);
    long long n = r->element[0]->integer;
    if (entries)
        *entries = r->element[1]->integer;
    freeReplyObject(r);
    return n;
}

static long long
put_at(long long sender, const char *kind, const char *body, long long trust,
       long long now)
{
    return pair(ev("ref_learn", 3, sk(sender), BAL, IDX, "put", us(sender),
                   kind, body, us(trust), us(now), NULL),
                NULL);
}

static long long
clear_at(long long sender, long long now)
{
    return pair(ev("ref_learn", 3, sk(sender), BAL, IDX, "clear", us(sender),
                   "", "", "0", us(now), NULL),
                NULL);
}

static long long
forget_at(long long sender, long long now, long long *entries)
{
    return pair(ev("ref_forget", 3, sk(sender), BAL, IDX, us(sender), us(now),
                   NULL),
                entries);
}

/* What ref_decide answered. */
struct decision {
    long long code, kind, entries;
    char body[2048];
    size_t len;
    long long mark, was; /* a probe's: its checked_at, the one replaced */
};

static struct decision
decide_with(long long sender, long long now, long long toff, long long tnf,
            long long tbal)
{
    redisReply *r = ev("ref_decide", 3, sk(sender), BAL, IDX, us(sender),
                       us(toff), us(tnf), us(tbal), us(now), NULL);
    ck_assert_msg(r->type == REDIS_REPLY_ARRAY, "reply type %d: %s", r->type,
                  r->type == REDIS_REPLY_ERROR ? r->str : "");
    ck_assert_int_eq(r->element[0]->type, REDIS_REPLY_INTEGER);
    /* a probe's reply has its mark and the checked_at it replaced */
    ck_assert_int_eq(r->elements, r->element[0]->integer == 2 ? 6 : 4);
    ck_assert_int_eq(r->element[1]->type, REDIS_REPLY_INTEGER);
    ck_assert_int_eq(r->element[2]->type, REDIS_REPLY_STRING);
    ck_assert_int_eq(r->element[3]->type, REDIS_REPLY_INTEGER);
    struct decision d = {r->element[0]->integer, r->element[1]->integer,
                         r->element[3]->integer, "", r->element[2]->len, 0,
                         0};
    if (r->elements == 6) {
        ck_assert_int_eq(r->element[4]->type, REDIS_REPLY_INTEGER);
        ck_assert_int_eq(r->element[5]->type, REDIS_REPLY_INTEGER);
        d.mark = r->element[4]->integer;
        d.was = r->element[5]->integer;
    }
    ck_assert_uint_lt(d.len, sizeof(d.body));
    memcpy(d.body, r->element[2]->str, d.len);
    freeReplyObject(r);
    if (d.code == 0)
        ck_assert_int_eq(d.kind, -1);
    if (d.code != 1)
        ck_assert_uint_eq(d.len, 0);
    return d;
}

static struct decision
decide_at(long long sender, long long now)
{
    return decide_with(sender, now, TOFF, TNF, TBAL);
}

static void
ck_answers(struct decision d, enum refusal_kind kind, const char *body)
{
    ck_assert_int_eq(d.code, 1);
    ck_assert_int_eq(d.kind, kind);
    ck_assert_uint_eq(d.len, strlen(body));
    ck_assert(memcmp(d.body, body, d.len) == 0);
}

/* ---- reading Redis ---- */

static redisReply *
cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    ck_assert_ptr_nonnull(r);
    return r;
}

static long long
cmd_int(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(r->type == REDIS_REPLY_INTEGER, "reply type %d", r->type);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* A field of an entry, "" when absent (static buffer). */
static const char *
field(const char *key, const char *name)
{
    static char b[2048];
    redisReply *r = cmd("HGET %s %s", key, name);
    b[0] = '\0';
    if (r->type == REDIS_REPLY_STRING)
        snprintf(b, sizeof(b), "%.*s", (int)r->len, r->str);
    freeReplyObject(r);
    return b;
}

/* Redis's count of writes: unchanged across a call that wrote nothing. */
static long long
dirty(void)
{
    redisReply *r = cmd("INFO persistence");
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    const char *p = strstr(r->str, "rdb_changes_since_last_save:");
    ck_assert_ptr_nonnull(p);
    long long v = strtoll(p + strlen("rdb_changes_since_last_save:"), NULL, 10);
    freeReplyObject(r);
    return v;
}

/* The key's TTL in ms lies in (want - 2000, want]. */
static void
ck_ttl(const char *key, long long want)
{
    long long t = cmd_int("PTTL %s", key);
    ck_assert_msg(t <= want && t > want - 2000, "PTTL %s = %lld, want %lld",
                  key, t, want);
}

/* Every key in Redis has a TTL (SPEC section 11: no manual cleanup). */
static void
ck_every_key_has_a_ttl(void)
{
    redisReply *r = cmd("KEYS *");
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < r->elements; i++) {
        long long t = cmd_int("PTTL %s", r->element[i]->str);
        ck_assert_msg(t > 0, "%s has no TTL (%lld)", r->element[i]->str, t);
    }
    freeReplyObject(r);
}

static void
setup(void)
{
    rc = hx_redis_connect(&rs);
    ck_assert_ptr_nonnull(rc);
    freeReplyObject(cmd("FLUSHALL"));
}

static void
teardown(void)
{
    redisFree(rc);
    rc = NULL;
}

/* ---- learning and deciding ---- */

START_TEST(a_lesson_is_answered_with_its_body_byte_for_byte)
{
    ck_assert_int_eq(put_at(12, "sender_offline", OFFLINE_503, TOFF, T0), 1);
    ck_answers(decide_at(12, T0 + MS), REFUSAL_SENDER_OFFLINE, OFFLINE_503);
    ck_assert_str_eq(field(sk(12), "kind"), "sender_offline");
    ck_assert_str_eq(field(sk(12), "learned_at"), us(NOW_MS));
    ck_assert_str_eq(field(sk(12), "checked_at"), us(NOW_MS));
    /* a UTF-8 body of exactly REFUSAL_BODY_MAX bytes: "é" is two */
    char big[REFUSAL_BODY_MAX + 2];
    static const char head[] = "{\"error_code\":\"SENDER_NOT_FOUND\",\"e\":\"";
    size_t n = strlen(head);
    memcpy(big, head, n);
    while (n < REFUSAL_BODY_MAX - 2) {
        memcpy(big + n, "\xc3\xa9", 2);
        n += 2;
    }
    memcpy(big + n, "\"}", 2);
    n += 2;
    big[n] = '\0';
    ck_assert_uint_eq(strlen(big), REFUSAL_BODY_MAX);
    ck_assert_int_eq(put_at(13, "sender_not_found", big, TNF, T0), 1);
    ck_answers(decide_at(13, T0 + MS), REFUSAL_SENDER_NOT_FOUND, big);
    /* one byte more is refused, and writes nothing */
    strcat(big, " ");
    long long w = dirty();
    ck_error(ev("ref_learn", 3, sk(14), BAL, IDX, "put", "14",
                "sender_not_found", big, us(TNF), us(T0), NULL),
             "ref_learn: bad arguments");
    ck_assert_int_eq(dirty(), w);
    ck_assert_int_eq(cmd_int("EXISTS %s", sk(14)), 0);
}
END_TEST

START_TEST(trust_running_out_gives_exactly_one_probe)
{
    ck_assert_int_eq(put_at(12, "sender_offline", OFFLINE_503, TOFF, T0), 1);
    /* trusted until checked_at + trust, not at it */
    ck_answers(decide_at(12, T0 + (TOFF - 1) * MS), REFUSAL_SENDER_OFFLINE,
               OFFLINE_503);
    long long later = T0 + TOFF * MS;
    struct decision d = decide_at(12, later);
    ck_assert_int_eq(d.code, 2);
    ck_assert_int_eq(d.kind, REFUSAL_SENDER_OFFLINE);
    ck_assert_str_eq(field(sk(12), "checked_at"), us(later / MS));
    ck_assert_str_eq(field(sk(12), "learned_at"), us(NOW_MS));
    ck_ttl(sk(12), TOFF + MARGIN_MIN); /* from the probe */
    /* another instance at the same instant: answered from the entry */
    ck_answers(decide_at(12, later), REFUSAL_SENDER_OFFLINE, OFFLINE_503);
    ck_answers(decide_at(12, later + (TOFF - 1) * MS), REFUSAL_SENDER_OFFLINE,
               OFFLINE_503);
    ck_assert_int_eq(decide_at(12, later + TOFF * MS).code, 2);
    /* the balance likewise */
    ck_assert_int_eq(put_at(0, "balance", BROKE, TBAL, T0), 1);
    ck_assert_int_eq(decide_at(99, T0 + TBAL * MS).code, 2);
    ck_answers(decide_at(98, T0 + TBAL * MS), REFUSAL_BALANCE, BROKE);
}
END_TEST

START_TEST(a_kind_whose_trust_is_0_is_never_trusted_nor_learned)
{
    long long w = dirty();
    long long entries = -1;
    ck_assert_int_eq(pair(ev("ref_learn", 3, sk(12), BAL, IDX, "put", "12",
                             "sender_offline", OFFLINE_503, "0", us(T0), NULL),
                          &entries),
                     0);
    ck_assert_int_eq(entries, 0);
    ck_assert_int_eq(dirty(), w);
    ck_assert_int_eq(cmd_int("DBSIZE"), 0);
    /* learned while on, then turned off: neither answers nor probes, and
     * the balance behind it answers */
    ck_assert_int_eq(put_at(12, "sender_offline", OFFLINE_503, TOFF, T0), 1);
    ck_assert_int_eq(put_at(0, "balance", BROKE, TBAL, T0), 1);
    w = dirty();
    ck_answers(decide_with(12, T0 + MS, 0, TNF, TBAL), REFUSAL_BALANCE, BROKE);
    struct decision d = decide_with(12, T0 + 2 * TOFF * MS, 0, TNF, 0);
    ck_assert_int_eq(d.code, 0);
    ck_assert_int_eq(d.entries, 2);
    ck_assert_int_eq(dirty(), w);
    ck_assert_str_eq(field(sk(12), "checked_at"), us(NOW_MS));
}
END_TEST

START_TEST(a_2xx_clears_the_senders_entry_and_the_balance)
{
    ck_assert_int_eq(put_at(12, "sender_offline", OFFLINE_503, TOFF, T0), 1);
    ck_assert_int_eq(put_at(13, "sender_not_found", NOT_FOUND, TNF, T0), 1);
    ck_assert_int_eq(put_at(0, "balance", BROKE, TBAL, T0), 1);
    ck_assert_int_eq(clear_at(12, T0 + MS), 2);
    ck_assert_int_eq(cmd_int("EXISTS %s", sk(12)), 0);
    ck_assert_int_eq(cmd_int("EXISTS %s", BAL), 0);
    redisReply *r = cmd("ZSCORE %s 12", IDX);
    ck_assert_int_eq(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    ck_assert_int_eq(decide_at(12, T0 + 2 * MS).code, 0);
    ck_answers(decide_at(13, T0 + 2 * MS), REFUSAL_SENDER_NOT_FOUND,
               NOT_FOUND);
    /* an unknown sender's 2xx clears the balance only */
    ck_assert_int_eq(put_at(0, "balance", BROKE, TBAL, T0 + 3 * MS), 1);
    ck_assert_int_eq(clear_at(0, T0 + 4 * MS), 1);
    ck_assert_int_eq(cmd_int("EXISTS %s", BAL), 0);
    ck_assert_int_eq(cmd_int("EXISTS %s", sk(13)), 1);
    /* nothing to clear writes nothing */
    long long w = dirty();
    ck_assert_int_eq(clear_at(14, T0 + 5 * MS), 0);
    ck_assert_int_eq(dirty(), w);
}
END_TEST

START_TEST(the_balance_is_the_accounts_and_entries_each_senders)
{
    ck_assert_int_eq(put_at(12, "sender_offline", OFFLINE_503, TOFF, T0), 1);
    ck_assert_int_eq(decide_at(13, T0 + MS).code, 0);
    ck_assert_int_eq(decide_at(0, T0 + MS).code, 0);
    ck_assert_int_eq(put_at(0, "balance", BROKE, TBAL, T0), 1);
    ck_answers(decide_at(13, T0 + MS), REFUSAL_BALANCE, BROKE);
    ck_answers(decide_at(0, T0 + MS), REFUSAL_BALANCE, BROKE);
    /* the sender's entry first */
    ck_answers(decide_at(12, T0 + MS), REFUSAL_SENDER_OFFLINE, OFFLINE_503);
    /* a trusted balance before a sender entry whose trust ran out */
    ck_assert_int_eq(put_at(0, "balance", BROKE, TBAL, T0 + TOFF * MS), 1);
    ck_answers(decide_at(12, T0 + TOFF * MS), REFUSAL_BALANCE, BROKE);
    /* a trusted sender entry before a balance whose trust ran out */
    ck_assert_int_eq(put_at(13, "sender_not_found", NOT_FOUND, TNF, T0), 1);
    long long late = T0 + (TOFF + TBAL) * MS;
    ck_answers(decide_at(13, late), REFUSAL_SENDER_NOT_FOUND, NOT_FOUND);
    /* neither trusted: the sender's is probed first, then the balance */
    struct decision d = decide_at(12, late);
    ck_assert_int_eq(d.code, 2);
    ck_assert_int_eq(d.kind, REFUSAL_SENDER_OFFLINE);
    d = decide_at(14, late);
    ck_assert_int_eq(d.code, 2);
    ck_assert_int_eq(d.kind, REFUSAL_BALANCE);
}
END_TEST

START_TEST(the_newest_learned_wins)
{
    ck_assert_int_eq(put_at(12, "sender_not_found", NOT_FOUND, TNF, T0), 1);
    ck_assert_int_eq(put_at(12, "sender_offline", OFFLINE_503, TOFF, T0 + MS),
                     1);
    ck_answers(decide_at(12, T0 + 2 * MS), REFUSAL_SENDER_OFFLINE,
               OFFLINE_503);
    /* a lesson older than the entry changes nothing */
    long long w = dirty();
    ck_assert_int_eq(put_at(12, "sender_not_found", NOT_FOUND, TNF, T0), 0);
    ck_assert_int_eq(clear_at(12, T0), 0);
    ck_assert_int_eq(dirty(), w);
    ck_assert_str_eq(field(sk(12), "kind"), "sender_offline");
    ck_assert_int_eq(put_at(0, "balance", "{\"v\":2}", TBAL, T0 + MS), 1);
    ck_assert_int_eq(put_at(0, "balance", "{\"v\":1}", TBAL, T0), 0);
    ck_assert_int_eq(clear_at(0, T0), 0);
    ck_assert_str_eq(field(BAL, "body"), "{\"v\":2}");
    /* the same instant replaces */
    ck_assert_int_eq(put_at(0, "balance", "{\"v\":3}", TBAL, T0 + MS), 1);
    ck_assert_str_eq(field(BAL, "body"), "{\"v\":3}");
}
END_TEST

START_TEST(a_senders_list_clears_learns_and_keeps_a_sends_body)
{
    ck_assert_int_eq(put_at(12, "sender_offline", OFFLINE_503, TOFF, T0), 1);
    ck_assert_int_eq(put_at(14, "sender_not_found", NOT_FOUND, TNF, T0), 1);
    ck_assert_int_eq(put_at(15, "sender_offline", OFFLINE_503, TOFF, T0), 1);
    ck_assert_int_eq(put_at(16, "sender_not_found", NOT_FOUND, TNF, T0), 1);
    ck_assert_int_eq(put_at(17, "sender_offline", OFFLINE_503, TOFF, T0), 1);
    ck_assert_int_eq(put_at(0, "balance", BROKE, TBAL, T0), 1);
    long long now = T0 + 5000 * MS, entries = -1;
    long long n = pair(ev("ref_senders", 8, BAL, IDX, sk(12), sk(13), sk(14),
                          sk(15), sk(16), sk(17), us(TOFF),
                          REFUSAL_OFFLINE_BODY, "o12", "o13", "n14", "n15",
                          "o16", "c17", us(now), NULL),
                       &entries);
    ck_assert_int_eq(n, 5); /* 12, 13, 14, 16 and 17 */
    /* a send's offline body is kept, the list's time taken */
    ck_assert_str_eq(field(sk(12), "body"), OFFLINE_503);
    ck_assert_str_eq(field(sk(12), "learned_at"), us(now / MS));
    ck_assert_str_eq(field(sk(13), "body"), REFUSAL_OFFLINE_BODY);
    ck_assert_str_eq(field(sk(13), "kind"), "sender_offline");
    ck_ttl(sk(13), TOFF + MARGIN_MIN);
    ck_assert_int_eq(cmd_int("EXISTS %s", sk(14)), 0); /* listed: exists */
    ck_assert_str_eq(field(sk(15), "learned_at"), us(NOW_MS)); /* as it was */
    ck_assert_str_eq(field(sk(16), "kind"), "sender_offline");
    ck_assert_str_eq(field(sk(16), "body"), REFUSAL_OFFLINE_BODY);
    ck_assert_int_eq(cmd_int("EXISTS %s", sk(17)), 0); /* online */
    ck_assert_int_eq(cmd_int("EXISTS %s", BAL), 1);   /* not the list's */
    ck_assert_int_eq(entries, 5); /* 12, 13, 15, 16 and the balance */
    ck_assert_int_eq(cmd_int("ZCARD %s", IDX), 4);
    ck_answers(decide_at(13, now), REFUSAL_SENDER_OFFLINE,
               REFUSAL_OFFLINE_BODY);
    /* offline off: "o" teaches as "n", a sender without an entry costs
     * no write, and an older list changes nothing */
    long long w = dirty();
    ck_assert_int_eq(pair(ev("ref_senders", 4, BAL, IDX, sk(20), sk(13), "0",
                             REFUSAL_OFFLINE_BODY, "o20", "c13", us(T0), NULL),
                          NULL),
                     0);
    ck_assert_int_eq(dirty(), w);
    ck_assert_int_eq(pair(ev("ref_senders", 3, BAL, IDX, sk(20), "0",
                             REFUSAL_OFFLINE_BODY, "o20", us(now), NULL),
                          NULL),
                     0);
    ck_assert_int_eq(cmd_int("EXISTS %s", sk(20)), 0);
    ck_error(ev("ref_senders", 3, BAL, IDX, sk(20), us(TOFF), "b", "x20",
                NULL),
             "ref_senders: bad arguments");
    ck_every_key_has_a_ttl();
}
END_TEST

/* ---- what is written ---- */

START_TEST(every_key_written_has_a_ttl_and_a_forward_writes_nothing)
{
    ck_assert_int_eq(put_at(12, "sender_offline", OFFLINE_503, TOFF, T0), 1);
    ck_assert_int_eq(put_at(13, "sender_not_found", NOT_FOUND, TNF, T0), 1);
    ck_assert_int_eq(put_at(0, "balance", BROKE, TBAL, T0), 1);
    /* trust, then as long again (a minute at least) */
    ck_ttl(sk(12), TOFF + MARGIN_MIN);
    ck_ttl(sk(13), 2 * TNF);
    ck_ttl(BAL, TBAL + MARGIN_MIN);
    ck_ttl(IDX, 2 * TNF); /* its longest-lived member's */
    ck_every_key_has_a_ttl();
    long long w = dirty();
    ck_assert_int_eq(decide_at(14, T0 + MS).code, 1); /* the balance */
    ck_assert_int_eq(decide_with(14, T0 + MS, TOFF, TNF, 0).code, 0);
    ck_assert_int_eq(decide_with(0, T0 + MS, TOFF, TNF, 0).code, 0);
    ck_assert_int_eq(dirty(), w);
    /* a reload made the trust longer: the answer keeps its entry (and
     * the index) alive as long as it is trusted */
    ck_answers(decide_with(12, T0 + MS, 600000, TNF, TBAL),
               REFUSAL_SENDER_OFFLINE, OFFLINE_503);
    ck_ttl(sk(12), 2 * 600000);
    ck_ttl(IDX, 2 * 600000);
    w = dirty();
    ck_answers(decide_with(12, T0 + MS, 600000, TNF, TBAL),
               REFUSAL_SENDER_OFFLINE, OFFLINE_503);
    ck_assert_int_eq(dirty(), w); /* long enough already */
    ck_every_key_has_a_ttl();
}
END_TEST

START_TEST(a_kind_in_the_wrong_key_or_a_corrupt_hash_is_no_entry)
{
    static const char *const bad[][8] = {
        /* kind the key cannot hold */
        {"kind", "balance", "learned_at", "1800000000000", "checked_at",
         "1800000000000", "body", "x"},
        /* not a number */
        {"kind", "sender_offline", "learned_at", "1800000000000",
         "checked_at", "abc", "body", "x"},
        {"kind", "sender_offline", "learned_at", "-5", "checked_at",
         "1800000000000", "body", "x"},
        /* no such kind */
        {"kind", "SENDER_OFFLINE", "learned_at", "1800000000000",
         "checked_at", "1800000000000", "body", "x"},
        /* a field missing */
        {"kind", "sender_offline", "learned_at", "1800000000000",
         "checked_at", "1800000000000", "bod", "x"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        freeReplyObject(cmd("DEL %s", sk(12)));
        freeReplyObject(cmd("HSET %s %s %s %s %s %s %s %s %s", sk(12),
                            bad[i][0], bad[i][1], bad[i][2], bad[i][3],
                            bad[i][4], bad[i][5], bad[i][6], bad[i][7]));
        freeReplyObject(cmd("PEXPIRE %s 100000", sk(12)));
        long long w = dirty();
        ck_assert_msg(decide_at(12, T0 + MS).code == 0, "case %zu", i);
        ck_assert_int_eq(dirty(), w);
    }
    /* a sender kind in the balance's key */
    freeReplyObject(cmd("HSET %s kind sender_offline learned_at 1800000000000 "
                        "checked_at 1800000000000 body x",
                        BAL));
    freeReplyObject(cmd("PEXPIRE %s 100000", BAL));
    ck_assert_int_eq(decide_at(13, T0 + MS).code, 0);
    /* well formed but without a TTL: not written by these scripts */
    freeReplyObject(cmd("HSET %s kind balance", BAL));
    freeReplyObject(cmd("PERSIST %s", BAL));
    ck_assert_int_eq(decide_at(13, T0 + MS).code, 0);
    freeReplyObject(cmd("PEXPIRE %s 100000", BAL));
    ck_answers(decide_at(13, T0 + MS), REFUSAL_BALANCE, "x"); /* the control */
    /* an extra field; another type */
    freeReplyObject(cmd("HSET %s extra 1", BAL));
    ck_assert_int_eq(decide_at(13, T0 + MS).code, 0);
    freeReplyObject(cmd("SET %s junk PX 100000", sk(12)));
    freeReplyObject(cmd("SET %s junk PX 100000", IDX));
    ck_assert_int_eq(decide_at(12, T0 + MS).code, 0);
    /* a lesson over them heals them */
    ck_assert_int_eq(put_at(12, "sender_offline", OFFLINE_503, TOFF, T0), 1);
    ck_answers(decide_at(12, T0 + MS), REFUSAL_SENDER_OFFLINE, OFFLINE_503);
    ck_assert_int_eq(cmd_int("ZCARD %s", IDX), 1);
    ck_assert_int_eq(put_at(0, "balance", BROKE, TBAL, T0), 1);
    ck_answers(decide_at(13, T0 + MS), REFUSAL_BALANCE, BROKE);
    ck_every_key_has_a_ttl();
}
END_TEST

/* ---- the admin API ---- */

START_TEST(the_list_is_the_balance_then_senders_ascending)
{
    /* 2^53 and 2^53 + 1: ids a Lua number would not tell apart */
    static const long long ids[] = {100, 9, 9007199254740993LL, 25,
                                    9007199254740992LL, 7};
    for (size_t i = 0; i < 6; i++)
        ck_assert_int_eq(put_at(ids[i], i % 2 ? "sender_not_found"
                                              : "sender_offline",
                                "{}", i % 2 ? TNF : TOFF, T0 + (long long)i),
                         1);
    ck_assert_int_eq(put_at(0, "balance", BROKE, TBAL, T0), 1);
    /* dangling members: an entry gone, one corrupt, junk */
    freeReplyObject(cmd("DEL %s", sk(25)));
    freeReplyObject(cmd("HSET %s kind balance", sk(7)));
    freeReplyObject(cmd("ZADD %s 1 007 1 x", IDX));
    redisReply *r = ev("ref_list", 2, BAL, IDX, us(T0 + 5 * MS), NULL);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_int_eq(r->elements, 6);
    ck_assert_int_eq(r->element[0]->integer, NOW_MS + 5);
    /* by number, not as text: 9 before 100 */
    static const char *const want[] = {"0", "9", "100", "9007199254740992",
                                       "9007199254740993"};
    static const long long kinds[] = {
        REFUSAL_BALANCE, REFUSAL_SENDER_NOT_FOUND, REFUSAL_SENDER_OFFLINE,
        REFUSAL_SENDER_OFFLINE, REFUSAL_SENDER_OFFLINE};
    static const long long learned[] = {NOW_MS, NOW_MS, NOW_MS, NOW_MS,
                                        NOW_MS};
    for (size_t i = 0; i + 1 < r->elements; i++) {
        redisReply *e = r->element[i + 1];
        ck_assert_int_eq(e->type, REDIS_REPLY_ARRAY);
        ck_assert_int_eq(e->elements, 4);
        ck_assert_int_eq(e->element[0]->integer, kinds[i]);
        ck_assert_int_eq(e->element[1]->type, REDIS_REPLY_STRING);
        ck_assert_str_eq(e->element[1]->str, want[i]);
        ck_assert_int_eq(e->element[2]->integer, learned[i]);
        ck_assert_int_eq(e->element[3]->integer, learned[i]);
    }
    freeReplyObject(r);
    ck_assert_int_eq(cmd_int("ZCARD %s", IDX), 4);
    r = cmd("ZSCORE %s 9", IDX);
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING); /* kept */
    freeReplyObject(r);
    long long entries = -1;
    ck_assert_int_eq(forget_at(9, T0, &entries), 1);
    ck_assert_int_eq(entries, 4);
    /* nothing at all: just the time */
    freeReplyObject(cmd("FLUSHALL"));
    r = ev("ref_list", 2, BAL, IDX, us(T0), NULL);
    ck_assert_int_eq(r->elements, 1);
    freeReplyObject(r);
}
END_TEST

START_TEST(forget_says_whether_there_was_an_entry)
{
    ck_assert_int_eq(put_at(12, "sender_offline", OFFLINE_503, TOFF, T0), 1);
    ck_assert_int_eq(put_at(13, "sender_offline", OFFLINE_503, TOFF, T0), 1);
    ck_assert_int_eq(put_at(0, "balance", BROKE, TBAL, T0), 1);
    long long entries = -1;
    ck_assert_int_eq(forget_at(12, T0, &entries), 1);
    ck_assert_int_eq(entries, 2);
    ck_assert_int_eq(forget_at(12, T0, &entries), 0);
    ck_assert_int_eq(cmd_int("EXISTS %s", sk(12)), 0);
    ck_assert_int_eq(cmd_int("ZCARD %s", IDX), 1);
    ck_assert_int_eq(forget_at(0, T0, &entries), 1);
    ck_assert_int_eq(entries, 1);
    ck_assert_int_eq(forget_at(0, T0, NULL), 0);
    ck_assert_int_eq(cmd_int("EXISTS %s", sk(13)), 1);
    /* a corrupt entry was none, and goes */
    freeReplyObject(cmd("SET %s junk PX 100000", sk(14)));
    ck_assert_int_eq(forget_at(14, T0, NULL), 0);
    ck_assert_int_eq(cmd_int("EXISTS %s", sk(14)), 0);
    /* the count is of live entries: 13's is over by T0 + its TTL */
    forget_at(0, T0 + (TOFF + MARGIN_MIN) * MS, &entries);
    ck_assert_int_eq(entries, 0);
    ck_error(ev("ref_forget", 3, sk(1), BAL, IDX, "-1", NULL),
             "ref_forget: bad arguments");
}
END_TEST

START_TEST(bad_arguments_and_a_bad_now_are_errors_that_write_nothing)
{
    long long w = dirty();
    ck_error(ev("ref_decide", 3, sk(1), BAL, IDX, "x", "1", "1", "1", NULL),
             "ref_decide: bad arguments");
    ck_error(ev("ref_decide", 3, sk(1), BAL, IDX, "1", "-1", "1", "1", NULL),
             "ref_decide: bad arguments");
    ck_error(ev("ref_decide", 3, sk(1), BAL, IDX, "1", "1", "1", "1", "soon",
                NULL),
             "ref_decide: bad now");
    ck_error(ev("ref_learn", 3, sk(1), BAL, IDX, "keep", "1", "", "", "0",
                NULL),
             "ref_learn: bad arguments");
    ck_error(ev("ref_learn", 3, sk(1), BAL, IDX, "put", "1", "nope", "b",
                "10", NULL),
             "ref_learn: bad arguments");
    ck_error(ev("ref_learn", 3, sk(0), BAL, IDX, "put", "0", "sender_offline",
                "b", "10", NULL),
             "ref_learn: bad arguments"); /* a sender kind of nobody */
    ck_error(ev("ref_learn", 3, sk(1), BAL, IDX, "clear", "1", "", "", "0",
                "soon", NULL),
             "ref_learn: bad now");
    ck_error(ev("ref_list", 2, BAL, IDX, "soon", NULL), "ref_list: bad now");
    ck_assert_int_eq(dirty(), w);
}
END_TEST

START_TEST(the_shipped_source_runs_again_after_a_script_flush)
{
    char *src = script_source("ref_decide");
    redisReply *r = cmd("SCRIPT LOAD %s", src);
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    char sha[64];
    snprintf(sha, sizeof(sha), "%s", r->str);
    freeReplyObject(r);
    ck_assert_int_eq(put_at(0, "balance", BROKE, TBAL, T0), 1);
    r = cmd("EVALSHA %s 3 %s %s %s 0 %d %d %d %lld", sha, sk(0), BAL, IDX,
            TOFF, TNF, TBAL, T0 + MS);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_int_eq(r->element[0]->integer, 1);
    freeReplyObject(r);
    freeReplyObject(cmd("SCRIPT FLUSH"));
    r = cmd("EVALSHA %s 3 %s %s %s 0 %d %d %d %lld", sha, sk(0), BAL, IDX,
            TOFF, TNF, TBAL, T0 + MS);
    ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
    ck_assert(strncmp(r->str, "NOSCRIPT", 8) == 0);
    freeReplyObject(r);
    /* what the link then sends: the same source, with EVAL */
    ck_answers(decide_at(0, T0 + MS), REFUSAL_BALANCE, BROKE);
    r = cmd("SCRIPT EXISTS %s", sha);
    ck_assert_int_eq(r->element[0]->integer, 1); /* EVAL cached it again */
    freeReplyObject(r);
    free(src);
}
END_TEST

/* ref_unprobe.lua: the probe's mark put back to the checked_at it
 * replaced, so the next decide probes again; not once the entry changed,
 * nor for another kind or mark. */
START_TEST(an_unspent_probe_gives_its_trust_back)
{
    ck_assert_int_eq(put_at(12, "sender_offline", OFFLINE_503, TOFF, T0), 1);
    long long later = T0 + TOFF * MS;
    struct decision d = decide_at(12, later);
    ck_assert_int_eq(d.code, 2);
    ck_assert_int_eq(d.mark, later / MS);
    ck_assert_int_eq(d.was, T0 / MS);
    char kind[8], mark[24], was[24], other[24];
    snprintf(kind, sizeof(kind), "%d", REFUSAL_SENDER_OFFLINE);
    snprintf(mark, sizeof(mark), "%lld", d.mark);
    snprintf(was, sizeof(was), "%lld", d.was);
    snprintf(other, sizeof(other), "%lld", d.mark - 1);
    redisReply *r = ev("ref_unprobe", 1, sk(12), kind, other, was, NULL);
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    ck_assert_int_eq(r->integer, 0); /* not its mark */
    freeReplyObject(r);
    r = ev("ref_unprobe", 1, sk(12), "1", mark, was, NULL);
    ck_assert_int_eq(r->integer, 0); /* not its kind */
    freeReplyObject(r);
    r = ev("ref_unprobe", 1, sk(12), kind, mark, was, NULL);
    ck_assert_int_eq(r->integer, 1);
    freeReplyObject(r);
    ck_assert_str_eq(field(sk(12), "checked_at"), us(T0 / MS));
    /* the next send, on any instance, is the probe */
    ck_assert_int_eq(decide_at(12, later + MS).code, 2);
    /* once learned again, an old probe's unprobe does nothing */
    ck_assert_int_eq(
        put_at(12, "sender_offline", OFFLINE_503, TOFF, later + 2 * MS), 1);
    r = ev("ref_unprobe", 1, sk(12), kind, mark, was, NULL);
    ck_assert_int_eq(r->integer, 0);
    freeReplyObject(r);
    ck_answers(decide_at(12, later + 3 * MS), REFUSAL_SENDER_OFFLINE,
               OFFLINE_503);
    /* bad arguments are an error, and write nothing */
    r = ev("ref_unprobe", 1, sk(12), "7", mark, was, NULL);
    ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}
END_TEST

static Suite *
scripts_suite(void)
{
    Suite *s = suite_create("redis_scripts_ref");
    TCase *tc = tcase_create("learn and decide");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, a_lesson_is_answered_with_its_body_byte_for_byte);
    tcase_add_test(tc, trust_running_out_gives_exactly_one_probe);
    tcase_add_test(tc, a_kind_whose_trust_is_0_is_never_trusted_nor_learned);
    tcase_add_test(tc, a_2xx_clears_the_senders_entry_and_the_balance);
    tcase_add_test(tc, the_balance_is_the_accounts_and_entries_each_senders);
    tcase_add_test(tc, the_newest_learned_wins);
    tcase_add_test(tc, a_senders_list_clears_learns_and_keeps_a_sends_body);
    suite_add_tcase(s, tc);
    tc = tcase_create("what is written");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, every_key_written_has_a_ttl_and_a_forward_writes_nothing);
    tcase_add_test(tc, a_kind_in_the_wrong_key_or_a_corrupt_hash_is_no_entry);
    tcase_add_test(tc, bad_arguments_and_a_bad_now_are_errors_that_write_nothing);
    suite_add_tcase(s, tc);
    tc = tcase_create("admin");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, the_list_is_the_balance_then_senders_ascending);
    tcase_add_test(tc, forget_says_whether_there_was_an_entry);
    tcase_add_test(tc, an_unspent_probe_gives_its_trust_back);
    tcase_add_test(tc, the_shipped_source_runs_again_after_a_script_flush);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    if (hx_redis_start(&rs, 0, NULL) != 0) {
        fprintf(stderr, "redis-server did not start\n");
        return 1;
    }
    int rc_ = harness_run_suite(scripts_suite());
    hx_redis_stop(&rs);
    return rc_;
}
