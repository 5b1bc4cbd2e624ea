/* redis_scripts_idem.c - the Lua scripts of idempotency and the session
 * windows (src/redis/idem_*.lua, win_*.lua; SPEC sections 4, 5 and 11)
 * run by a real redis-server (hx_redis.h) with EVAL, `now` injected:
 * every idempotency branch (new, replay, 409, 422 before 409, a claim's
 * lease running out before "sent" frees the key, after "sent" gives an
 * unknown outcome), fencing (an old token's sent or finish writes
 * nothing), refusals that write nothing, the newest learned window wins,
 * the probe's compare-and-set, and a TTL on every key written. The
 * script sources are the shipped ones (the embedded table). */
#include <check.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "harness.h"
#include "hx_redis.h"
#include "redis_scripts.h"

static struct hx_redis rs;
static redisContext *rc;

#define T0 1800000000000000LL /* µs: some day in 2027 */
#define MS 1000LL             /* µs */
#define LEASE 12000           /* ms */
#define SENT_LEASE 35000      /* ms */
#define TTL 86400000          /* ms */
#define RECHECK 300000        /* ms */
#define IK "wagate:{acct}:idem:ab12"
#define FENCE "wagate:{acct}:fence"
#define WK "wagate:{acct}:win:12:14155550123"
#define FP1 "aaaa"
#define FP2 "bbbb"

/* ---- the scripts ---- */

/* The source the gateway ships (redis_scripts.c, embedded from
 * src/redis/prelude.lua and NAME.lua at build time), copied (caller
 * frees). */
static char *
script_source(const char *name)
{
    for (size_t i = 0; i < RS_COUNT; i++)
        if (redis_scripts[i].name && strcmp(redis_scripts[i].name, name) == 0)
            return strdup(redis_scripts[i].source);
    ck_abort_msg("no script %s", name);
    return NULL;
}

/* EVAL of script name with nkeys keys then the other arguments (C
 * strings, NULL-ended). The reply is the caller's to free. */
static redisReply *
ev(const char *name, int nkeys, ...)
{
    const char *argv[32];
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
    while ((a = va_arg(ap, const char *)) != NULL && argc < 32)
        argv[argc++] = a;
    va_end(ap);
    redisReply *r = redisCommandArgv(rc, argc, argv, NULL);
    free(src);
    ck_assert_ptr_nonnull(r);
    return r;
}

static const char *
us(long long v) /* a rotating buffer: several may be live in one call */
{
    static char b[8][32];
    static int i;
    i = (i + 1) % 8;
    snprintf(b[i], sizeof(b[i]), "%lld", v);
    return b[i];
}

static long long
ev_int(redisReply *r)
{
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* idem_begin at now; its code, and the token or answer in out. */
static long long
begin_at(const char *fp, long long now, char *out, size_t outlen)
{
    redisReply *r =
        ev("idem_begin", 2, IK, FENCE, fp, us(LEASE), us(now), NULL);
    ck_assert_msg(r->type == REDIS_REPLY_ARRAY, "reply type %d: %s", r->type,
                  r->type == REDIS_REPLY_ERROR ? r->str : "");
    ck_assert_int_ge(r->elements, 1);
    long long code = r->element[0]->integer;
    if (out != NULL && outlen > 0) {
        out[0] = '\0';
        if (r->elements > 1) {
            size_t n = r->element[1]->len < outlen - 1 ? r->element[1]->len
                                                       : outlen - 1;
            memcpy(out, r->element[1]->str, n);
            out[n] = '\0';
        }
    }
    freeReplyObject(r);
    return code;
}

static long long
sent_at(const char *tok, long long now)
{
    return ev_int(
        ev("idem_sent", 1, IK, tok, us(SENT_LEASE), us(TTL), us(now), NULL));
}

static long long
finish(const char *tok, const char *how, const char *ans)
{
    return ev_int(ev("idem_finish", 1, IK, tok, how, ans, us(TTL), NULL));
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
cmd_int(const char *fmt, const char *key)
{
    return ev_int(cmd(fmt, key));
}

/* A field of the idempotency record, "" when absent (static buffer). */
static const char *
field(const char *name)
{
    static char b[256];
    redisReply *r = cmd("HGET %s %s", IK, name);
    b[0] = '\0';
    if (r->type == REDIS_REPLY_STRING)
        snprintf(b, sizeof(b), "%.*s", (int)r->len, r->str);
    freeReplyObject(r);
    return b;
}

/* The whole record as one string, to compare before and after. */
static char *
record(const char *key)
{
    redisReply *r = cmd("HGETALL %s", key);
    char *s = calloc(1, 4096);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        strncat(s, r->element[i]->str, 4095 - strlen(s));
        strncat(s, "|", 4095 - strlen(s));
    }
    freeReplyObject(r);
    return s;
}

static char *
get(const char *key)
{
    redisReply *r = cmd("GET %s", key);
    char *s = strdup(r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return s;
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

/* ---- idempotency ---- */

START_TEST(a_new_key_is_claimed_with_a_fencing_token_and_a_lease)
{
    char tok[64], tok2[64];
    ck_assert_int_eq(begin_at(FP1, T0, tok, sizeof(tok)), 0);
    ck_assert_str_ne(tok, "");
    ck_assert_str_eq(field("st"), "claimed");
    ck_assert_str_eq(field("fp"), FP1);
    ck_assert_str_eq(field("tok"), tok);
    ck_assert_str_eq(field("lease"), us(T0 + LEASE * MS));
    ck_ttl(IK, LEASE); /* it frees itself when the lease ends */
    ck_assert_int_gt(cmd_int("PTTL %s", FENCE), 0);
    /* another key gets another token */
    freeReplyObject(cmd("DEL %s", IK));
    ck_assert_int_eq(begin_at(FP1, T0, tok2, sizeof(tok2)), 0);
    ck_assert_str_ne(tok, tok2);
    ck_every_key_has_a_ttl();
}
END_TEST

START_TEST(the_same_body_in_flight_is_409_and_writes_nothing)
{
    char tok[64];
    ck_assert_int_eq(begin_at(FP1, T0, tok, sizeof(tok)), 0);
    char *before = record(IK), *fence = get(FENCE);
    ck_assert_int_eq(begin_at(FP1, T0 + 1000 * MS, NULL, 0), 2);
    ck_assert_int_eq(sent_at(tok, T0 + 2000 * MS), 1);
    char *sent = record(IK);
    ck_assert_int_eq(begin_at(FP1, T0 + 3000 * MS, NULL, 0), 2);
    char *after = record(IK), *fence2 = get(FENCE);
    ck_assert_str_eq(sent, after);
    ck_assert_str_eq(fence, fence2); /* no claim was made */
    ck_assert_str_ne(before, sent);
    free(before);
    free(sent);
    free(after);
    free(fence);
    free(fence2);
    ck_every_key_has_a_ttl();
}
END_TEST

START_TEST(another_body_is_422_before_409_in_every_state)
{
    char tok[64];
    ck_assert_int_eq(begin_at(FP1, T0, tok, sizeof(tok)), 0);
    ck_assert_int_eq(begin_at(FP2, T0 + 1 * MS, NULL, 0), 3); /* claimed */
    ck_assert_int_eq(sent_at(tok, T0 + 2 * MS), 1);
    ck_assert_int_eq(begin_at(FP2, T0 + 3 * MS, NULL, 0), 3); /* sent */
    ck_assert_int_eq(finish(tok, "keep", "answer"), 1);
    ck_assert_int_eq(begin_at(FP2, T0 + 4 * MS, NULL, 0), 3); /* done */
    /* an unknown outcome (sent, its lease over) is kept like an answer */
    freeReplyObject(cmd("DEL %s", IK));
    ck_assert_int_eq(begin_at(FP1, T0, tok, sizeof(tok)), 0);
    ck_assert_int_eq(sent_at(tok, T0), 1);
    ck_assert_int_eq(begin_at(FP2, T0 + (SENT_LEASE + 1) * MS, NULL, 0), 3);
    ck_assert_str_eq(field("fp"), FP1);
}
END_TEST

START_TEST(a_kept_answer_is_replayed_byte_for_byte)
{
    static const char blob[] = "\x01\x00status\r\n\xff\x00body";
    char tok[64];
    ck_assert_int_eq(begin_at(FP1, T0, tok, sizeof(tok)), 0);
    ck_assert_int_eq(sent_at(tok, T0 + MS), 1);
    const char *argv[] = {"EVAL", NULL, "1", IK, tok, "keep", blob, us(TTL)};
    size_t lens[] = {
        4, 0, 1, strlen(IK), strlen(tok), 4, sizeof(blob) - 1, strlen(argv[7])};
    char *src = script_source("idem_finish");
    argv[1] = src;
    lens[1] = strlen(src);
    redisReply *r = redisCommandArgv(rc, 8, argv, lens);
    free(src);
    ck_assert_int_eq(ev_int(r), 1);
    ck_assert_str_eq(field("st"), "done");
    ck_assert_str_eq(field("tok"), ""); /* no holder any more */
    ck_ttl(IK, TTL);

    r = ev("idem_begin", 2, IK, FENCE, FP1, us(LEASE), us(T0 + 5000 * MS),
           NULL);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_int_eq(r->element[0]->integer, 1);
    ck_assert_uint_eq(r->element[1]->len, sizeof(blob) - 1);
    ck_assert(memcmp(r->element[1]->str, blob, sizeof(blob) - 1) == 0);
    freeReplyObject(r);
    ck_every_key_has_a_ttl();
}
END_TEST

START_TEST(a_claim_whose_lease_ends_before_sent_frees_the_key)
{
    char old[64], tok[64];
    ck_assert_int_eq(begin_at(FP1, T0, old, sizeof(old)), 0);
    ck_assert_int_eq(begin_at(FP1, T0 + (LEASE - 1) * MS, NULL, 0), 2);
    /* the lease is over: a new claim, with a new token, whatever the body */
    ck_assert_int_eq(begin_at(FP2, T0 + LEASE * MS, tok, sizeof(tok)), 0);
    ck_assert_str_ne(old, tok);
    ck_assert_str_eq(field("fp"), FP2);
    ck_assert_str_eq(field("tok"), tok);
    ck_every_key_has_a_ttl();
}
END_TEST

START_TEST(a_claim_not_sent_vanishes_from_redis_after_its_lease)
{
    /* in real time: the record's TTL is the lease (50 ms here) */
    redisReply *r = ev("idem_begin", 2, IK, FENCE, FP1, "50", NULL);
    ck_assert_int_eq(r->element[0]->integer, 0);
    freeReplyObject(r);
    ck_assert_int_eq(cmd_int("EXISTS %s", IK), 1);
    double end = clock_mono_ms() + 3000;
    while (cmd_int("EXISTS %s", IK) == 1 && clock_mono_ms() < end)
        ;
    ck_assert_int_eq(cmd_int("EXISTS %s", IK), 0);
    r = ev("idem_begin", 2, IK, FENCE, FP1, "50", NULL);
    ck_assert_int_eq(r->element[0]->integer, 0);
    freeReplyObject(r);
}
END_TEST

START_TEST(a_sent_claim_whose_lease_ends_is_an_unknown_outcome)
{
    char tok[64];
    ck_assert_int_eq(begin_at(FP1, T0, tok, sizeof(tok)), 0);
    ck_assert_int_eq(sent_at(tok, T0 + 100 * MS), 1);
    ck_assert_str_eq(field("st"), "sent");
    ck_assert_str_eq(field("lease"), us(T0 + (100 + SENT_LEASE) * MS));
    /* kept for the TTL once its lease is over */
    ck_ttl(IK, SENT_LEASE + TTL);
    ck_assert_int_eq(begin_at(FP1, T0 + (99 + SENT_LEASE) * MS, NULL, 0), 2);
    char *before = record(IK), *fence = get(FENCE);
    ck_assert_int_eq(begin_at(FP1, T0 + (100 + SENT_LEASE) * MS, NULL, 0), 4);
    ck_assert_int_eq(begin_at(FP1, T0 + 3600000 * MS, NULL, 0), 4);
    char *after = record(IK), *fence2 = get(FENCE);
    ck_assert_str_eq(before, after); /* never a new claim, never a send */
    ck_assert_str_eq(fence, fence2);
    free(before);
    free(after);
    free(fence);
    free(fence2);
    /* the holder, late but alive, may still settle it */
    ck_assert_int_eq(finish(tok, "keep", "late answer"), 1);
    char ans[64];
    ck_assert_int_eq(begin_at(FP1, T0 + 3700000 * MS, ans, sizeof(ans)), 1);
    ck_assert_str_eq(ans, "late answer");
    ck_every_key_has_a_ttl();
}
END_TEST

START_TEST(an_old_token_sends_and_finishes_nothing)
{
    char old[64], tok[64];
    ck_assert_int_eq(begin_at(FP1, T0, old, sizeof(old)), 0);
    ck_assert_int_eq(begin_at(FP1, T0 + LEASE * MS, tok, sizeof(tok)), 0);
    char *before = record(IK);
    ck_assert_int_eq(sent_at(old, T0 + (LEASE + 1) * MS), 0);
    ck_assert_int_eq(finish(old, "keep", "stale"), 0);
    ck_assert_int_eq(finish(old, "free", ""), 0);
    char *after = record(IK);
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
    /* the holder's own calls work */
    ck_assert_int_eq(sent_at(tok, T0 + (LEASE + 2) * MS), 1);
    ck_assert_int_eq(sent_at(tok, T0 + (LEASE + 3) * MS), 0); /* once */
    ck_assert_int_eq(finish(old, "keep", "stale"), 0);
    ck_assert_int_eq(finish(tok, "keep", "fresh"), 1);
    ck_assert_int_eq(finish(tok, "keep", "again"), 0); /* settled */
    ck_assert_str_eq(field("ans"), "fresh");
    ck_every_key_has_a_ttl();
}
END_TEST

START_TEST(free_deletes_and_the_key_is_new_again)
{
    char tok[64], tok2[64];
    ck_assert_int_eq(begin_at(FP1, T0, tok, sizeof(tok)), 0);
    ck_assert_int_eq(sent_at(tok, T0 + MS), 1);
    ck_assert_int_eq(finish(tok, "free", ""), 1);
    ck_assert_int_eq(cmd_int("EXISTS %s", IK), 0);
    ck_assert_int_eq(begin_at(FP2, T0 + 2 * MS, tok2, sizeof(tok2)), 0);
    ck_assert_int_eq(finish(tok2, "free", ""), 1); /* before sent, too */
    ck_assert_int_eq(cmd_int("EXISTS %s", IK), 0);
}
END_TEST

START_TEST(bad_arguments_are_errors_that_write_nothing)
{
    redisReply *r = ev("idem_begin", 2, IK, FENCE, FP1, "0", NULL);
    ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    r = ev("idem_begin", 2, IK, FENCE, "", "100", NULL);
    ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    r = ev("idem_finish", 1, IK, "1-1", "maybe", "", "1000", NULL);
    ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    r = ev("win_learn", 1, WK, "1", "", "0", "1000", NULL); /* open, when? */
    ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    r = ev("win_learn", 1, WK, "0", "", "9", "1000", NULL); /* source */
    ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    ck_assert_int_eq(cmd_int("DBSIZE", NULL), 0);
    /* a corrupt record is an error too, never a claim over it */
    freeReplyObject(cmd("HSET %s fp %s st weird", IK, FP1));
    freeReplyObject(cmd("PEXPIRE %s 100000", IK));
    r = ev("idem_begin", 2, IK, FENCE, FP1, "100", NULL);
    ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    ck_assert_int_eq(cmd_int("EXISTS %s", FENCE), 0);
}
END_TEST

/* A now that is not a number is an error naming the script (the
 * prelude's now_us), written before the prelude and kept by it; "" is
 * no now (TIME). Nothing written either way but by the calls with "". */
START_TEST(a_bad_now_is_an_error_naming_the_script)
{
    struct {
        const char *name;
        redisReply *r;
    } bad[] = {
        {"idem_begin", ev("idem_begin", 2, IK, FENCE, FP1, "100", "x", NULL)},
        {"idem_sent", ev("idem_sent", 1, IK, "1-1", "100", "100", "x", NULL)},
        {"win_learn",
         ev("win_learn", 1, WK, "1", "+1000", "0", "1000", "x", NULL)},
        {"win_decide", ev("win_decide", 1, WK, "0:-:1:0", "1000", "x", NULL)},
        {"win_get", ev("win_get", 1, WK, "x", NULL)},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[64];
        snprintf(want, sizeof(want), "%s: bad now", bad[i].name);
        ck_assert_msg(bad[i].r->type == REDIS_REPLY_ERROR, "%s: type %d",
                      bad[i].name, bad[i].r->type);
        ck_assert_str_eq(bad[i].r->str, want);
        freeReplyObject(bad[i].r);
    }
    ck_assert_int_eq(cmd_int("DBSIZE", NULL), 0);
    redisReply *r = ev("win_get", 1, WK, "", NULL);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_int_le(llabs(r->element[0]->integer - clock_wall_ms()), 2000);
    freeReplyObject(r);
    r = ev("idem_begin", 2, IK, FENCE, FP1, "100", "", NULL);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_int_eq(r->element[0]->integer, 0); /* claimed */
    freeReplyObject(r);
}
END_TEST

/* ---- windows ---- */

#define NOW_MS (T0 / MS)

static long long
learn_at(const char *open, const char *when, const char *src, long long recheck,
         long long now)
{
    return ev_int(
        ev("win_learn", 1, WK, open, when, src, us(recheck), us(now), NULL));
}

START_TEST(a_window_learned_open_is_kept_until_expiry_plus_recheck)
{
    long long exp = NOW_MS + 3600000;
    ck_assert_int_eq(learn_at("1", us(exp), "0", RECHECK, T0), 1);
    char *v = get(WK);
    char want[128];
    snprintf(want, sizeof(want), "1:%lld:%lld:0", exp, NOW_MS);
    ck_assert_str_eq(v, want);
    free(v);
    ck_ttl(WK, 3600000 + RECHECK);
    /* a template send: open for 24 h from the moment learned */
    ck_assert_int_eq(learn_at("1", "+86400000", "2", RECHECK, T0 + MS), 1);
    v = get(WK);
    snprintf(want, sizeof(want), "1:%lld:%lld:2", NOW_MS + 1 + 86400000,
             NOW_MS + 1);
    ck_assert_str_eq(v, want);
    free(v);
    ck_ttl(WK, 86400000 + RECHECK);
    ck_every_key_has_a_ttl();
}
END_TEST

START_TEST(a_window_learned_closed_is_kept_while_trusted)
{
    /* expired_at before now: trusted from the learning */
    ck_assert_int_eq(learn_at("0", us(NOW_MS - 5000), "0", RECHECK, T0), 1);
    ck_ttl(WK, RECHECK);
    /* expired_at unknown */
    ck_assert_int_eq(learn_at("0", "", "1", RECHECK, T0 + MS), 1);
    char *v = get(WK);
    char want[128];
    snprintf(want, sizeof(want), "0:-:%lld:1", NOW_MS + 1);
    ck_assert_str_eq(v, want);
    free(v);
    ck_ttl(WK, RECHECK);
    /* recheck 0 never short-circuits: of no use, the older entry goes */
    ck_assert_int_eq(learn_at("0", "", "1", 0, T0 + 2 * MS), 2);
    ck_assert_int_eq(cmd_int("EXISTS %s", WK), 0);
    /* open but long expired: of no use either */
    ck_assert_int_eq(
        learn_at("1", us(NOW_MS - RECHECK - 1), "1", RECHECK, T0 + 3 * MS), 2);
    ck_assert_int_eq(cmd_int("EXISTS %s", WK), 0);
}
END_TEST

START_TEST(the_newest_learned_wins)
{
    long long exp = NOW_MS + 3600000;
    ck_assert_int_eq(learn_at("1", us(exp), "0", RECHECK, T0 + 10 * MS), 1);
    char *v = get(WK);
    /* learned earlier (an older Redis time): ignored */
    ck_assert_int_eq(learn_at("0", "", "0", RECHECK, T0 + 9 * MS), 0);
    char *v2 = get(WK);
    ck_assert_str_eq(v, v2);
    free(v2);
    /* the same moment or later: replaces */
    ck_assert_int_eq(learn_at("0", "", "3", RECHECK, T0 + 10 * MS), 1);
    v2 = get(WK);
    ck_assert_str_ne(v, v2);
    free(v);
    free(v2);
    ck_every_key_has_a_ttl();
}
END_TEST

START_TEST(win_get_gives_the_entry_and_redis_time)
{
    redisReply *r = ev("win_get", 1, WK, us(T0 + 1234), NULL);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_int_eq(r->element[0]->integer, NOW_MS + 1);
    ck_assert_str_eq(r->element[1]->str, "");
    freeReplyObject(r);
    ck_assert_int_eq(learn_at("0", "", "1", RECHECK, T0), 1);
    r = ev("win_get", 1, WK, NULL); /* TIME */
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    long long wall = clock_wall_ms();
    ck_assert_int_le(llabs(r->element[0]->integer - wall), 2000);
    char want[64];
    snprintf(want, sizeof(want), "0:-:%lld:1", NOW_MS);
    ck_assert_str_eq(r->element[1]->str, want);
    freeReplyObject(r);
    ck_assert_int_eq(cmd_int("DBSIZE", NULL), 1); /* wrote nothing */
}
END_TEST

START_TEST(one_probe_wins_the_compare_and_set)
{
    long long exp = NOW_MS - 10000;
    ck_assert_int_eq(learn_at("1", us(exp), "0", RECHECK, T0 - 20000 * MS), 1);
    char *seen = get(WK);
    long long later = T0 + RECHECK * MS;
    redisReply *r = ev("win_decide", 1, WK, seen, us(RECHECK), us(later), NULL);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_int_eq(r->elements, 3);
    ck_assert_int_eq(r->element[2]->integer, 1);
    char want[128];
    snprintf(want, sizeof(want), "0:%lld:%lld:0", exp, later / MS);
    ck_assert_str_eq(r->element[1]->str, want);
    freeReplyObject(r);
    char *v = get(WK);
    ck_assert_str_eq(v, want);
    ck_ttl(WK, RECHECK);
    /* a second instance that judged the same entry does not probe */
    r = ev("win_decide", 1, WK, seen, us(RECHECK), us(later + MS), NULL);
    ck_assert_int_eq(r->element[2]->integer, 0);
    ck_assert_str_eq(r->element[1]->str, want); /* judged again from this */
    freeReplyObject(r);
    char *v2 = get(WK);
    ck_assert_str_eq(v, v2);
    free(v2);
    /* forgotten meanwhile: "", nothing written */
    ck_assert_int_eq(ev_int(ev("win_forget", 1, WK, NULL)), 1);
    ck_assert_int_eq(ev_int(ev("win_forget", 1, WK, NULL)), 0);
    r = ev("win_decide", 1, WK, v, us(RECHECK), us(later + 2 * MS), NULL);
    ck_assert_int_eq(r->element[2]->integer, 0);
    ck_assert_str_eq(r->element[1]->str, "");
    freeReplyObject(r);
    ck_assert_int_eq(cmd_int("EXISTS %s", WK), 0);
    free(seen);
    free(v);
}
END_TEST

static Suite *
scripts_suite(void)
{
    Suite *s = suite_create("redis_scripts_idem");
    TCase *tc = tcase_create("idempotency");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, a_new_key_is_claimed_with_a_fencing_token_and_a_lease);
    tcase_add_test(tc, the_same_body_in_flight_is_409_and_writes_nothing);
    tcase_add_test(tc, another_body_is_422_before_409_in_every_state);
    tcase_add_test(tc, a_kept_answer_is_replayed_byte_for_byte);
    tcase_add_test(tc, a_claim_whose_lease_ends_before_sent_frees_the_key);
    tcase_add_test(tc, a_claim_not_sent_vanishes_from_redis_after_its_lease);
    tcase_add_test(tc, a_sent_claim_whose_lease_ends_is_an_unknown_outcome);
    tcase_add_test(tc, an_old_token_sends_and_finishes_nothing);
    tcase_add_test(tc, free_deletes_and_the_key_is_new_again);
    tcase_add_test(tc, bad_arguments_are_errors_that_write_nothing);
    tcase_add_test(tc, a_bad_now_is_an_error_naming_the_script);
    suite_add_tcase(s, tc);
    tc = tcase_create("windows");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, a_window_learned_open_is_kept_until_expiry_plus_recheck);
    tcase_add_test(tc, a_window_learned_closed_is_kept_while_trusted);
    tcase_add_test(tc, the_newest_learned_wins);
    tcase_add_test(tc, win_get_gives_the_entry_and_redis_time);
    tcase_add_test(tc, one_probe_wins_the_compare_and_set);
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
