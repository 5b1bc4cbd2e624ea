/* redis_scripts_rl.c - the limiter's Lua scripts (src/redis/rl_*.lua) on
 * a real redis-server (tests/integration/hx_redis.h), with the time
 * injected through their optional trailing `now`: slot spacing and burst
 * (the same slots as src/ratelimit.c's memory limiter), a refusal writes
 * nothing, Retry-After rounding, pauses (every slot after the pause, the
 * later end wins), resume, the shared on-the-wire guard (rl_depart.lua),
 * and the TTLs every key gets. */
#include <check.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "hx_redis.h"
#include "ratelimit.h"

#define RL "wagate:{acct}:rl:send"
#define PAUSE "wagate:{acct}:pause:send"
#define DEP "wagate:{acct}:dep:send"
#define ALIVE "wagate:{acct}:alive:send"
#define LOG "wagate:{acct}:log:send"
#define HOLD "wagate:{acct}:hold:send"
#define T0 1700000000000000LL /* an injected now, us */
#define MS 1000LL
#define S 1000000LL

static struct hx_redis redis;
static redisContext *rc;

/* The script's source, built from the source tree as the gateway embeds
 * it (the prelude, then the file); the caller frees it. */
static char *
script(const char *name)
{
    char *src = hx_redis_script_source(name);
    ck_assert_msg(src != NULL, "cannot read src/redis/%s.lua", name);
    return src;
}

static void
setup(void)
{
    ck_assert_int_eq(hx_redis_start(&redis, 0, NULL), 0);
    rc = hx_redis_connect(&redis);
    ck_assert_ptr_nonnull(rc);
}

static void
teardown(void)
{
    redisFree(rc);
    hx_redis_stop(&redis);
}

/* EVAL of a script with 2 keys (rl_* all take two) and the string
 * arguments args[0..n); the reply, an error too (caller frees). */
static redisReply *
eval_any(const char *name, const char *k1, const char *k2, int n,
         const char *const *args)
{
    const char *argv[16];
    int argc = 0;
    char *src = script(name);
    argv[argc++] = "EVAL";
    argv[argc++] = src;
    argv[argc++] = "2";
    argv[argc++] = k1;
    argv[argc++] = k2;
    for (int i = 0; i < n && argc < 16; i++)
        argv[argc++] = args[i];
    redisReply *r = redisCommandArgv(rc, argc, argv, NULL);
    free(src);
    ck_assert_ptr_nonnull(r);
    return r;
}

/* The same, the reply no error. */
static redisReply *
eval(const char *name, const char *k1, const char *k2, int n,
     const char *const *args)
{
    redisReply *r = eval_any(name, k1, k2, n, args);
    ck_assert_msg(r->type != REDIS_REPLY_ERROR, "%s: %s", name, r->str);
    return r;
}

static char *
num(long long v)
{
    static char bufs[8][32];
    static int i;
    char *b = bufs[i++ % 8];
    snprintf(b, 32, "%lld", v);
    return b;
}

struct grant {
    long long ok, value, why;
};

static struct grant
array3(redisReply *r)
{
    struct grant g = {-1, -1, -1};
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_ge(r->elements, 2);
    g.ok = r->element[0]->integer;
    g.value = r->element[1]->integer;
    if (r->elements > 2)
        g.why = r->element[2]->integer;
    freeReplyObject(r);
    return g;
}

/* rl_reserve: T us, burst, max queue us, now us. */
static struct grant
reserve(long long t_us, long burst, long long maxq_us, long long now)
{
    const char *a[] = {num(t_us), num(burst), num(maxq_us), num(now)};
    return array3(eval("rl_reserve", RL, PAUSE, 4, a));
}

static long long
pause_at(long long pause_us, long long now)
{
    const char *a[] = {num(pause_us), num(now)};
    redisReply *r = eval("rl_pause", RL, PAUSE, 2, a);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    long long v = r->element[0]->integer;
    freeReplyObject(r);
    return v;
}

static long long
resume_at(long long now)
{
    const char *a[] = {num(now)};
    redisReply *r = eval("rl_resume", RL, PAUSE, 1, a);
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static long long
cmd_int(const char *fmt, const char *key)
{
    redisReply *r = redisCommand(rc, fmt, key);
    ck_assert_ptr_nonnull(r);
    long long v = LLONG_MIN;
    if (r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r->type == REDIS_REPLY_STRING)
        v = strtoll(r->str, NULL, 10);
    freeReplyObject(r);
    return v;
}

/* Redis's count of writes (INFO persistence: every change counts, even
 * with saving off). */
static long long
writes(void)
{
    redisReply *r = redisCommand(rc, "INFO persistence");
    ck_assert_ptr_nonnull(r);
    const char *p = strstr(r->str, "rdb_changes_since_last_save:");
    ck_assert_ptr_nonnull(p);
    long long v = strtoll(p + strlen("rdb_changes_since_last_save:"), NULL, 10);
    freeReplyObject(r);
    return v;
}

/* ---- rl_reserve ---- */

START_TEST(slots_are_spaced_one_interval_apart)
{
    for (int i = 0; i < 5; i++) {
        struct grant g = reserve(200 * MS, 1, 10 * S, T0);
        ck_assert_int_eq(g.ok, 1);
        ck_assert_int_eq(g.value, i * 200 * MS);
    }
    /* later arrivals wait less, relative to their own now */
    struct grant g = reserve(200 * MS, 1, 10 * S, T0 + 300 * MS);
    ck_assert_int_eq(g.ok, 1);
    ck_assert_int_eq(g.value, 1000 * MS - 300 * MS);
    /* idle time: the next goes at once */
    g = reserve(200 * MS, 1, 10 * S, T0 + 60 * S);
    ck_assert_int_eq(g.ok, 1);
    ck_assert_int_eq(g.value, 0);
}
END_TEST

START_TEST(a_burst_goes_at_once_then_the_spacing_holds)
{
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(reserve(200 * MS, 3, 10 * S, T0).value, 0);
    ck_assert_int_eq(reserve(200 * MS, 3, 10 * S, T0).value, 200 * MS);
    ck_assert_int_eq(reserve(200 * MS, 3, 10 * S, T0).value, 400 * MS);
    /* idle time refills the burst, never beyond b */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(reserve(200 * MS, 3, 10 * S, T0 + 100 * S).value, 0);
    ck_assert_int_eq(reserve(200 * MS, 3, 10 * S, T0 + 100 * S).value,
                     200 * MS);
}
END_TEST

/* The same slots as the memory limiter (src/ratelimit.c) for the same
 * arrivals: a mixed sequence of times, rates, bursts and a queue bound
 * that refuses some. */
START_TEST(the_slots_are_those_of_the_memory_limiter)
{
    static const struct {
        double rate;
        long burst;
    } cfg[] = {{5, 1}, {4, 2}, {8, 3}, {2, 1}};
    for (size_t c = 0; c < sizeof(cfg) / sizeof(cfg[0]); c++) {
        redisReply *d = redisCommand(rc, "DEL %s %s", RL, PAUSE);
        freeReplyObject(d);
        struct rl mem;
        rl_init(&mem, cfg[c].rate, cfg[c].burst);
        long long t_us = (long long)ceil(1e6 / cfg[c].rate);
        double max_ms = 3000;
        long long now = T0;
        unsigned seed = 7;
        for (int i = 0; i < 200; i++) {
            seed = seed * 1103515245u + 12345u;
            now += (long long)((seed >> 8) % 400) * MS; /* 0..399 ms */
            double now_ms = (double)(now - T0) / 1000.0, slot;
            int mr = rl_reserve(&mem, now_ms, max_ms, &slot);
            struct grant g =
                reserve(t_us, cfg[c].burst, (long long)max_ms * MS, now);
            ck_assert_int_eq(g.ok, mr == 0);
            if (mr == 0) {
                double want_us = (slot - now_ms) * 1000.0;
                ck_assert_msg(fabs((double)g.value - want_us) < 1.0,
                              "rate %g #%d: %lld us, memory %.3f us",
                              cfg[c].rate, i, g.value, want_us);
            } else {
                double ra = rl_retry_after_ms(&mem, now_ms, max_ms);
                ck_assert_int_eq(g.value, (long long)ceil(ra - 1e-6));
            }
        }
    }
}
END_TEST

START_TEST(a_refusal_writes_nothing)
{
    /* 11 slots fill 2 s of queue at 5/s: 0 .. 2000 ms */
    for (int i = 0; i <= 10; i++)
        ck_assert_int_eq(reserve(200 * MS, 1, 2 * S, T0).ok, 1);
    long long value = cmd_int("GET %s", RL);
    long long ttl = cmd_int("PTTL %s", RL);
    long long w = writes();
    /* a later now would have set a shorter TTL, an earlier a longer one:
     * a write of any kind would show */
    struct grant g = reserve(200 * MS, 1, 2 * S, T0);
    ck_assert_int_eq(g.ok, 0);
    g = reserve(200 * MS, 1, 2 * S, T0 - 100 * MS);
    ck_assert_int_eq(g.ok, 0);
    ck_assert_int_eq(writes(), w);
    ck_assert_int_eq(cmd_int("GET %s", RL), value);
    long long ttl2 = cmd_int("PTTL %s", RL);
    ck_assert_int_le(ttl2, ttl);
    ck_assert_int_gt(ttl2, ttl - 1000);
}
END_TEST

/* A key these scripts did not write - another type, or a value without
 * the TTL they always set (a huge schedule would refuse every send for
 * ever) - counts as absent and heals at the next write. */
START_TEST(tampered_keys_heal)
{
    redisReply *r = redisCommand(rc, "RPUSH %s x", RL);
    freeReplyObject(r);
    r = redisCommand(rc, "SET %s 99999999999999999999", PAUSE);
    freeReplyObject(r);
    struct grant g = reserve(200 * MS, 1, 2 * S, T0);
    ck_assert_int_eq(g.ok, 1);
    ck_assert_int_eq(g.value, 0); /* at once: no schedule, no pause */
    ck_assert_int_eq(cmd_int("GET %s", RL), T0 + 200 * MS);
    ck_assert_int_gt(cmd_int("PTTL %s", RL), 0);
    ck_assert_int_eq(resume_at(T0), 0); /* no pause was in force */
    r = redisCommand(rc, "SET %s 99999999999999999999", RL);
    freeReplyObject(r);
    ck_assert_int_eq(pause_at(1 * S, T0), 1 * S);
    g = reserve(200 * MS, 1, 2 * S, T0);
    ck_assert_int_eq(g.ok, 1);
    ck_assert_int_eq(g.value, 1 * S); /* behind the pause, not the junk */
}
END_TEST

/* Retry-After in ms, rounded up, at least 1: the time until the slot is
 * within the queue bound (the gateway rounds it up to whole seconds). */
START_TEST(retry_after_is_rounded_up_in_ms)
{
    /* slots 0, 200 .. 1000 ms; a bound of 999.999 ms refuses the 6th */
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(reserve(200 * MS, 1, 1000 * MS - 1, T0).ok, 1);
    struct grant g = reserve(200 * MS, 1, 1000 * MS - 1, T0);
    ck_assert_int_eq(g.ok, 0);
    ck_assert_int_eq(g.value, 1); /* 1 us over: 1 ms */
    g = reserve(200 * MS, 1, 800 * MS - 500, T0);
    ck_assert_int_eq(g.ok, 0);
    ck_assert_int_eq(g.value, 201); /* 200.5 ms over: 201 */
    g = reserve(200 * MS, 1, 0, T0);
    ck_assert_int_eq(g.ok, 0);
    ck_assert_int_eq(g.value, 1000);
    /* right at the bound: granted */
    g = reserve(200 * MS, 1, 1000 * MS, T0);
    ck_assert_int_eq(g.ok, 1);
    ck_assert_int_eq(g.value, 1000 * MS);
}
END_TEST

/* ---- rl_pause, rl_resume ---- */

START_TEST(a_pause_holds_every_slot_and_the_later_end_wins)
{
    ck_assert_int_eq(pause_at(3 * S, T0), 3 * S);
    /* every reservation, whatever the burst, lands after the pause */
    struct grant g = reserve(200 * MS, 5, 10 * S, T0 + 1 * S);
    ck_assert_int_eq(g.ok, 1);
    ck_assert_int_eq(g.value, 2 * S);
    /* a shorter pause does not shorten it; a longer one extends it */
    ck_assert_int_eq(pause_at(1 * S, T0 + 1 * S), 2 * S);
    ck_assert_int_eq(pause_at(5 * S, T0 + 1 * S), 5 * S);
    g = reserve(200 * MS, 1, 10 * S, T0 + 1 * S);
    ck_assert_int_eq(g.ok, 1);
    ck_assert_int_ge(g.value, 5 * S);
    /* a pause beyond the queue bound refuses, writing nothing */
    long long w = writes();
    g = reserve(200 * MS, 1, 2 * S, T0 + 1 * S);
    ck_assert_int_eq(g.ok, 0);
    ck_assert_int_ge(g.value, 3000);
    ck_assert_int_eq(writes(), w);
}
END_TEST

/* Slots reserved before the pause move behind it: new reservations come
 * after them, at the normal spacing. */
START_TEST(a_pause_moves_the_pending_run_behind_it)
{
    for (int i = 0; i < 3; i++) /* 0, 200, 400 ms; tat 600 ms */
        ck_assert_int_eq(reserve(200 * MS, 1, 10 * S, T0).value, i * 200 * MS);
    ck_assert_int_eq(pause_at(1 * S, T0 + 100 * MS), 1 * S);
    /* the pending run (up to 600 ms) moves by the pause: 1700 ms */
    struct grant g = reserve(200 * MS, 1, 10 * S, T0 + 100 * MS);
    ck_assert_int_eq(g.ok, 1);
    ck_assert_int_eq(g.value, 1500 * MS); /* 1600 ms from T0 */
    /* with nothing pending, the next goes at the pause's end */
    redisReply *d = redisCommand(rc, "DEL %s %s", RL, PAUSE);
    freeReplyObject(d);
    ck_assert_int_eq(pause_at(1 * S, T0), 1 * S);
    ck_assert_int_eq(reserve(200 * MS, 1, 10 * S, T0).value, 1 * S);
    ck_assert_int_eq(reserve(200 * MS, 1, 10 * S, T0).value, 1200 * MS);
}
END_TEST

START_TEST(resume_ends_a_pause_for_everyone)
{
    ck_assert_int_eq(resume_at(T0), 0); /* none in force: nothing written */
    ck_assert_int_eq(pause_at(60 * S, T0), 60 * S);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(reserve(200 * MS, 1, 120 * S, T0).value,
                         60 * S + i * 200 * MS);
    ck_assert_int_eq(resume_at(T0 + 1 * S), 1);
    ck_assert_int_eq(cmd_int("EXISTS %s", PAUSE), 0);
    /* the schedule restarts now */
    ck_assert_int_eq(reserve(200 * MS, 1, 120 * S, T0 + 1 * S).value, 0);
    ck_assert_int_eq(reserve(200 * MS, 1, 120 * S, T0 + 1 * S).value, 200 * MS);
    ck_assert_int_eq(resume_at(T0 + 1 * S), 0);
    /* a pause that has run out is not in force */
    ck_assert_int_eq(pause_at(1 * S, T0 + 2 * S), 1 * S);
    ck_assert_int_eq(resume_at(T0 + 4 * S), 0);
}
END_TEST

START_TEST(every_key_has_a_ttl)
{
    long long now = 0;
    {
        /* real TIME here: TTLs are relative either way */
        const char *a[] = {num(200 * MS), "1", num(10 * S)};
        for (int i = 0; i < 4; i++)
            freeReplyObject(eval("rl_reserve", RL, PAUSE, 3, a));
    }
    long long ttl = cmd_int("PTTL %s", RL);
    /* tat is 800 ms ahead: it lives that long (+1 ms), no longer */
    ck_assert_int_gt(ttl, 700);
    ck_assert_int_le(ttl, 801);
    const char *p[] = {num(5 * S)};
    freeReplyObject(eval("rl_pause", RL, PAUSE, 1, p));
    ttl = cmd_int("PTTL %s", PAUSE);
    ck_assert_int_gt(ttl, 4900);
    ck_assert_int_le(ttl, 5001);
    ttl = cmd_int("PTTL %s", RL); /* tat moved behind the pause */
    ck_assert_int_gt(ttl, 5700);
    ck_assert_int_le(ttl, 5801);
    const char *r[] = {"ask", "t1", "5", num(1 * S), num(30 * S)};
    redisReply *d = eval("rl_depart", DEP, "wagate:{acct}:pause:none", 5, r);
    freeReplyObject(d);
    ttl = cmd_int("PTTL %s", DEP);
    ck_assert_int_gt(ttl, 30900);
    ck_assert_int_le(ttl, 31001);
    (void)now;
}
END_TEST

/* ---- rl_depart: the shared guard ---- */

static struct grant
ask(const char *ticket, long n, long long now)
{
    const char *a[] = {"ask",      ticket,      num(n),
                       num(1 * S), num(30 * S), num(now)};
    return array3(eval("rl_depart", DEP, PAUSE, 6, a));
}

static long long
report(const char *op, const char *ticket, long long now)
{
    redisReply *r;
    if (strcmp(op, "left") == 0) {
        const char *a[] = {op, ticket, num(40 * MS), num(now)};
        r = eval("rl_depart", DEP, PAUSE, 4, a);
    } else {
        const char *a[] = {op, ticket, num(now)};
        r = eval("rl_depart", DEP, PAUSE, 3, a);
    }
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static long long
score(const char *ticket)
{
    redisReply *r = redisCommand(rc, "ZSCORE %s %s", DEP, ticket);
    long long v =
        r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : LLONG_MIN;
    freeReplyObject(r);
    return v;
}

START_TEST(the_guard_counts_what_is_on_its_way_and_what_arrived)
{
    ck_assert_int_eq(ask("a", 2, T0).ok, 1);
    ck_assert_int_eq(ask("b", 2, T0 + 1 * MS).ok, 1);
    ck_assert_int_eq(score("a"), T0 + 30 * S);
    /* both on their way: only their end can free room, ask again soon */
    long long w = writes();
    struct grant g = ask("c", 2, T0 + 2 * MS);
    ck_assert_int_eq(g.ok, 0);
    ck_assert_int_eq(g.why, 1);
    ck_assert_int_eq(writes(), w); /* a refusal writes nothing */
    ck_assert_int_eq(score("c"), LLONG_MIN);
    /* a left at 10 ms: bounded by 10 + cap; answered at 12: by 12 */
    ck_assert_int_eq(report("left", "a", T0 + 10 * MS), 1);
    ck_assert_int_eq(score("a"), T0 + 50 * MS);
    ck_assert_int_eq(report("done", "a", T0 + 12 * MS), 1);
    ck_assert_int_eq(score("a"), T0 + 12 * MS);
    /* bounds only fall: a late "left" does not raise it */
    ck_assert_int_eq(report("left", "a", T0 + 13 * MS), 1);
    ck_assert_int_eq(score("a"), T0 + 12 * MS);
    ck_assert_int_eq(report("left", "b", T0 + 20 * MS), 1);
    ck_assert_int_eq(report("done", "b", T0 + 21 * MS), 1);
    /* known for good: granted to go at the 2nd largest bound (12 ms) plus
     * the window, its entry counted from then on */
    g = ask("c", 2, T0 + 30 * MS);
    ck_assert_int_eq(g.ok, 1);
    ck_assert_int_eq(g.why, 0);
    ck_assert_int_eq(g.value, 12 * MS + 1 * S - 30 * MS);
    ck_assert_int_eq(score("c"), T0 + 12 * MS + 1 * S + 30 * S);
    /* a and b are a window old by now: removed on the way */
    g = ask("d", 2, T0 + 1 * S + 21 * MS);
    ck_assert_int_eq(g.ok, 1);
    ck_assert_int_eq(g.value, 0);
    ck_assert_int_eq(score("a"), LLONG_MIN);
    ck_assert_int_eq(score("b"), LLONG_MIN);
    ck_assert_int_eq(report("done", "a", T0 + 1 * S + 22 * MS), 0);
    /* c and d on their way: e waits for one of them */
    g = ask("e", 2, T0 + 1 * S + 22 * MS);
    ck_assert_int_eq(g.ok, 0);
    ck_assert_int_eq(g.why, 1);
    /* one that ends without leaving gives its room back */
    ck_assert_int_eq(report("drop", "d", 0), 1);
    ck_assert_int_eq(report("drop", "d", 0), 0);
    ck_assert_int_eq(ask("e", 2, T0 + 1 * S + 23 * MS).ok, 1);
}
END_TEST

START_TEST(a_pause_holds_every_departure)
{
    ck_assert_int_eq(pause_at(2 * S, T0), 2 * S);
    struct grant g = ask("a", 5, T0 + 500 * MS);
    ck_assert_int_eq(g.ok, 0);
    ck_assert_int_eq(g.why, 2);
    ck_assert_int_eq(g.value, 1500 * MS);
    ck_assert_int_eq(ask("a", 5, T0 + 2 * S).ok, 1);
    /* what a waiting instance polls */
    const char *q[] = {"paused", num(T0 + 1 * S)};
    redisReply *r = eval("rl_depart", DEP, PAUSE, 2, q);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_int_eq(r->element[0]->integer, 1 * S);
    freeReplyObject(r);
    const char *q2[] = {"paused", num(T0 + 3 * S)};
    r = eval("rl_depart", DEP, PAUSE, 2, q2);
    ck_assert_int_eq(r->element[0]->integer, 0);
    freeReplyObject(r);
    /* a reservation says a pause is in force */
    struct grant g2 = reserve(200 * MS, 1, 10 * S, T0 + 1 * S);
    ck_assert_int_eq(g2.ok, 1);
    ck_assert_int_eq(g2.value, 1 * S);
    ck_assert_int_eq(g2.why, 1 * S);
    g2 = reserve(200 * MS, 1, 10 * S, T0 + 3 * S);
    ck_assert_int_eq(g2.why, 0);
}
END_TEST

/* rl_depart "paused": the pause in force, us. */
static long long
paused_at(long long now)
{
    const char *q[] = {"paused", num(now)};
    redisReply *r = eval("rl_depart", DEP, PAUSE, 2, q);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    long long v = r->element[0]->integer;
    freeReplyObject(r);
    return v;
}

static const char *
key_type(const char *key)
{
    static char t[16];
    redisReply *r = redisCommand(rc, "TYPE %s", key);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
    snprintf(t, sizeof(t), "%s", r->str);
    freeReplyObject(r);
    return t;
}

static void
cmd(const char *fmt, const char *key)
{
    redisReply *r = redisCommand(rc, fmt, key);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_ne(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

/* The reports on a dep key that is no guard these scripts wrote: no
 * entry there (0), nothing written, the key as it was. */
static void
reports_find_no_entry(const char *ticket, const char *type)
{
    long long w = writes();
    ck_assert_int_eq(report("left", ticket, T0), 0);
    ck_assert_int_eq(report("done", ticket, T0), 0);
    ck_assert_int_eq(report("drop", ticket, 0), 0);
    ck_assert_int_eq(writes(), w);
    ck_assert_str_eq(key_type(DEP), type);
}

/* A dep key of another type (someone's SET, HSET, RPUSH) failed every
 * ask with WRONGTYPE: each gateway fell back to its own share for ever.
 * It is an empty guard: the reports find nothing and write nothing, the
 * next ask replaces it with the guard (and its TTL). */
START_TEST(a_dep_key_of_another_type_heals_at_the_next_ask)
{
    static const struct {
        const char *make, *type;
    } junk[] = {{"SET %s junk PX 600000", "string"},
                {"HSET %s f v", "hash"},
                {"RPUSH %s x", "list"}};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        cmd("DEL %s", DEP);
        cmd(junk[i].make, DEP);
        reports_find_no_entry("x", junk[i].type);
        ck_assert_int_eq(paused_at(T0), 0);
        struct grant g = ask("a", 2, T0);
        ck_assert_int_eq(g.ok, 1);
        ck_assert_int_eq(g.value, 0);
        ck_assert_str_eq(key_type(DEP), "zset");
        ck_assert_int_eq(score("a"), T0 + 30 * S);
        long long ttl = cmd_int("PTTL %s", DEP);
        ck_assert_int_gt(ttl, 30900);
        ck_assert_int_le(ttl, 31001);
        /* the guard works again */
        ck_assert_int_eq(ask("b", 2, T0).ok, 1);
        ck_assert_int_eq(ask("c", 2, T0).ok, 0);
        ck_assert_int_eq(report("drop", "b", 0), 1);
    }
}
END_TEST

/* A guard without the TTL ask always sets is not one of ours: an entry
 * with a far bound would hold every ask for ever (a refusal writes
 * nothing, so no TTL would ever come). It is an empty guard too. */
START_TEST(a_dep_zset_without_ttl_is_replaced)
{
    cmd("ZADD %s 9000000000000000000 x", DEP);
    ck_assert_int_eq(cmd_int("PTTL %s", DEP), -1);
    reports_find_no_entry("x", "zset");
    ck_assert_int_eq(cmd_int("PTTL %s", DEP), -1);
    struct grant g = ask("a", 1, T0);
    ck_assert_int_eq(g.ok, 1);
    ck_assert_int_eq(g.value, 0);
    ck_assert_int_eq(score("x"), LLONG_MIN);
    ck_assert_int_eq(score("a"), T0 + 30 * S);
    ck_assert_int_gt(cmd_int("PTTL %s", DEP), 30900);
}
END_TEST

/* A pause key these scripts did not write - a number without the TTL
 * rl_pause sets, another type - is no pause: asks go, "paused" says 0,
 * and the next pause replaces it. */
START_TEST(a_tampered_pause_key_is_no_pause)
{
    static const char *const junk[] = {"SET %s 99999999999999999999",
                                       "HSET %s f v"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        cmd("DEL %s", PAUSE);
        cmd("DEL %s", DEP);
        cmd(junk[i], PAUSE);
        ck_assert_int_eq(paused_at(T0), 0);
        struct grant g = ask("a", 2, T0);
        ck_assert_int_eq(g.ok, 1);
        ck_assert_int_eq(g.value, 0);
        ck_assert_int_eq(g.why, 0);
        ck_assert_int_eq(pause_at(1 * S, T0), 1 * S);
        ck_assert_int_eq(paused_at(T0), 1 * S);
        g = ask("b", 2, T0);
        ck_assert_int_eq(g.ok, 0);
        ck_assert_int_eq(g.why, 2);
    }
}
END_TEST

/* A now that is not a number is the caller's error, the script named
 * (the prelude's now_us, as in the idempotency and window scripts): not
 * a silent fall back to TIME that would hide a test's mistake. Nothing
 * written. "" is no now: TIME. */
START_TEST(a_bad_now_is_an_error_naming_the_script)
{
    static const struct {
        const char *name, *k1;
        int n;
        const char *args[6];
    } calls[] = {
        {"rl_reserve", RL, 4, {"200000", "1", "10000000", "x"}},
        {"rl_pause", RL, 2, {"1000000", "x"}},
        {"rl_resume", RL, 1, {"x"}},
        {"rl_depart", DEP, 6, {"ask", "a", "2", "1000000", "30000000", "x"}},
        {"rl_depart", DEP, 4, {"left", "a", "40000", "x"}},
        {"rl_depart", DEP, 3, {"done", "a", "x"}},
        {"rl_depart", DEP, 2, {"paused", "x"}},
    };
    ck_assert_int_eq(ask("a", 2, T0).ok, 1); /* left and done find it */
    ck_assert_int_eq(pause_at(1 * S, T0), 1 * S);
    long long w = writes();
    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        redisReply *r = eval_any(calls[i].name, calls[i].k1, PAUSE, calls[i].n,
                                 calls[i].args);
        char want[64];
        snprintf(want, sizeof(want), "%s: bad now", calls[i].name);
        ck_assert_msg(r->type == REDIS_REPLY_ERROR, "%s %s: type %d",
                      calls[i].name, calls[i].args[0], r->type);
        ck_assert_str_eq(r->str, want);
        freeReplyObject(r);
    }
    ck_assert_int_eq(writes(), w);
    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        const char *args[6];
        memcpy(args, calls[i].args, sizeof(args));
        args[calls[i].n - 1] = "";
        freeReplyObject(
            eval(calls[i].name, calls[i].k1, PAUSE, calls[i].n, args));
    }
}
END_TEST

/* ---- rl_depart: presence, the rejoin, a lost log ----
 * With its five keys (dep, pause, alive, log, hold), as the shaper
 * calls it. L = 400 ms (an alive entry's life after its stamp), hold =
 * window + cap = 1040 ms. */

#define L_US (400 * MS)
#define HOLD_US (1040 * MS)

static redisReply *
eval5_any(int n, const char *const *args)
{
    const char *argv[40];
    int argc = 0;
    char *src = script("rl_depart");
    argv[argc++] = "EVAL";
    argv[argc++] = src;
    argv[argc++] = "5";
    argv[argc++] = DEP;
    argv[argc++] = PAUSE;
    argv[argc++] = ALIVE;
    argv[argc++] = LOG;
    argv[argc++] = HOLD;
    for (int i = 0; i < n && argc < 40; i++)
        argv[argc++] = args[i];
    redisReply *r = redisCommandArgv(rc, argc, argv, NULL);
    free(src);
    ck_assert_ptr_nonnull(r);
    return r;
}

static redisReply *
eval5(int n, const char *const *args)
{
    redisReply *r = eval5_any(n, args);
    ck_assert_msg(r->type != REDIS_REPLY_ERROR, "rl_depart: %s", r->str);
    return r;
}

/* "alive" id stamp ("" none) at now: {now, accepted} */
static struct grant
alive(const char *id, const char *stamp, long long now)
{
    const char *a[] = {"alive", id, stamp, num(L_US), num(HOLD_US), num(now)};
    return array3(eval5(6, a));
}

/* An ask of the instance id, n 5 (5/s, burst 1), 3 instances. */
static struct grant
ask_of(const char *id, const char *ticket, long n, long instances,
       long long now)
{
    const char *a[] = {"ask",       ticket,   num(n),         num(1 * S),
                       num(30 * S), num(now), num(instances), id};
    return array3(eval5(8, a));
}

static long long
zscore(const char *key, const char *member)
{
    redisReply *r = redisCommand(rc, "ZSCORE %s %s", key, member);
    long long v =
        r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : LLONG_MIN;
    freeReplyObject(r);
    return v;
}

/* 5 a window, 3 instances (share 1): an asker alone leaves 1 for each of
 * the two others not alive; once they say they are alive, the whole 5;
 * once their entries pass (stamp + L), 3 again. */
START_TEST(the_room_leaves_the_share_of_each_instance_not_alive)
{
    char t[8];
    /* first contacts: the log begins (no stamp before: no hold) */
    ck_assert_int_eq(alive("a", "", T0).value, 0);
    for (int i = 0; i < 3; i++) {
        snprintf(t, sizeof(t), "t%d", i);
        ck_assert_int_eq(ask_of("a", t, 5, 3, T0 + i * MS).ok, 1);
    }
    struct grant g = ask_of("a", "t3", 5, 3, T0 + 3 * MS);
    ck_assert_int_eq(g.ok, 0);
    ck_assert_int_eq(g.why, 1);
    /* its own entry does not count as another's (and it is not sending
     * alone: no share left for itself) */
    ck_assert_int_eq(alive("a", num(T0), T0 + 3 * MS).value, 1);
    ck_assert_int_eq(ask_of("a", "t3", 5, 3, T0 + 4 * MS).ok, 0);
    g = alive("b", num(T0), T0 + 4 * MS);
    ck_assert_int_eq(g.ok, T0 + 4 * MS); /* now: the next stamp */
    ck_assert_int_eq(g.value, 1);        /* accepted */
    ck_assert_int_eq(zscore(ALIVE, "b"), T0 + L_US);
    ck_assert_int_eq(ask_of("a", "t3", 5, 3, T0 + 5 * MS).ok, 1);
    ck_assert_int_eq(alive("c", num(T0 + 5 * MS), T0 + 5 * MS).value, 1);
    ck_assert_int_eq(ask_of("a", "t4", 5, 3, T0 + 6 * MS).ok, 1);
    ck_assert_int_eq(ask_of("a", "t5", 5, 3, T0 + 7 * MS).ok, 0);
    /* b gone at T0 + L: 4; c too at T0 + 5 ms + L */
    for (int i = 0; i < 5; i++) {
        snprintf(t, sizeof(t), "t%d", i);
        ck_assert_int_eq(report("done", t, T0 + 10 * MS), 1);
    }
    ck_assert_int_eq(ask_of("a", "u0", 5, 3, T0 + 1 * S + 11 * MS).ok, 1);
    ck_assert_int_eq(ask_of("a", "u1", 5, 3, T0 + 1 * S + 12 * MS).ok, 1);
    ck_assert_int_eq(ask_of("a", "u2", 5, 3, T0 + 1 * S + 13 * MS).ok, 1);
    g = ask_of("a", "u3", 5, 3, T0 + 1 * S + 14 * MS);
    ck_assert_int_eq(g.ok, 0); /* 3: room for the two not alive */
    /* one instance configured: no room kept (the 2-key calls of before
     * behave so too) */
    ck_assert_int_eq(ask_of("a", "u3", 5, 1, T0 + 1 * S + 15 * MS).ok, 1);
    /* every other instance missing with n 2 < 3 instances: no room (the
     * log goes with the guard: a guard gone alone was lost, and holds) */
    redisReply *r = redisCommand(rc, "DEL %s %s", DEP, LOG);
    freeReplyObject(r);
    g = ask_of("z", "v0", 2, 3, T0 + 3 * S);
    ck_assert_int_eq(g.ok, 0);
    ck_assert_int_eq(g.why, 1);
}
END_TEST

static char *
get_str(const char *key)
{
    redisReply *r = redisCommand(rc, "GET %s", key);
    ck_assert_ptr_nonnull(r);
    char *v = r->type == REDIS_REPLY_STRING ? strdup(r->str) : strdup("");
    freeReplyObject(r);
    ck_assert_ptr_nonnull(v);
    return v;
}

static void
log_is(const char *want)
{
    char *v = get_str(LOG);
    ck_assert_str_eq(v, want);
    free(v);
}

/* The guard gone while its log stays (deleted, or evicted first under a
 * volatile-ttl policy: it has the shortest TTL) lost the departures of
 * its last window: every ask waits until they are old (the log keeps
 * when: the largest bound + the window), and says so in the hold key
 * for the other instances. An emptied guard (its last entry dropped) is
 * no loss. */
START_TEST(a_guard_lost_while_its_log_stays_holds_until_its_entries_are_old)
{
    char want[64];
    ck_assert_int_eq(alive("a", "", T0).value, 0); /* the log begins */
    ck_assert_int_eq(ask_of("a", "p", 5, 1, T0).ok, 1);
    snprintf(want, sizeof(want), "%lld %lld", T0, T0 + 31 * S);
    log_is(want);
    ck_assert_int_eq(report("done", "p", T0 + 10 * MS), 1);
    freeReplyObject(redisCommand(rc, "DEL %s", DEP));
    struct grant g = ask_of("a", "q", 5, 1, T0 + 1 * S);
    ck_assert_int_eq(g.ok, 0);
    ck_assert_int_eq(g.why, 3);
    ck_assert_int_eq(g.value, 30 * S);
    ck_assert_int_eq(cmd_int("GET %s", HOLD), T0 + 31 * S);
    ck_assert_int_eq(cmd_int("EXISTS %s", DEP), 0); /* nothing added */
    g = ask_of("a", "q", 5, 1, T0 + 31 * S + 1);
    ck_assert_int_eq(g.ok, 1);
    /* emptied by a drop: the log forgets the until, no hold */
    freeReplyObject(redisCommand(rc, "FLUSHALL"));
    ck_assert_int_eq(alive("a", "", T0).value, 0);
    ck_assert_int_eq(ask_of("a", "p", 5, 1, T0).ok, 1);
    const char *d[] = {"drop", "p"};
    redisReply *r = eval5(2, d);
    ck_assert_int_eq(r->integer, 1);
    freeReplyObject(r);
    ck_assert_int_eq(cmd_int("EXISTS %s", DEP), 0);
    snprintf(want, sizeof(want), "%lld", T0);
    log_is(want);
    ck_assert_int_eq(ask_of("a", "q", 5, 1, T0 + 1 * MS).ok, 1);
    /* "back" finding the guard lost holds too */
    freeReplyObject(redisCommand(rc, "DEL %s", DEP));
    const char *b[] = {"back",           "a",       num(T0 + 2 * MS),
                       num(T0),          num(L_US), num(HOLD_US),
                       num(T0 + 3 * MS), "s1",      num(0)};
    r = eval5(9, b);
    ck_assert_int_eq(r->element[0]->integer, 1);
    ck_assert_int_eq(r->element[2]->integer, 31 * S + 1 * MS - 3 * MS);
    freeReplyObject(r);
}
END_TEST

/* A grant for later counts those alive then: b alive until T0 + 1000 ms;
 * an ask at 900 ms finds 2 bounds (100, 300 ms) in the window, room 2
 * would go at 1100, but b is gone by then: room 1, go at 1300. */
START_TEST(the_room_is_that_of_the_grant_s_time)
{
    ck_assert_int_eq(alive("b", "", T0).value, 0);
    ck_assert_int_eq(alive("b", num(T0), T0).value, 1);
    ck_assert_int_eq(ask_of("a", "p", 2, 2, T0).ok, 1);
    ck_assert_int_eq(ask_of("a", "q", 2, 2, T0 + 1 * MS).ok, 1);
    ck_assert_int_eq(report("done", "p", T0 + 100 * MS), 1);
    ck_assert_int_eq(report("done", "q", T0 + 300 * MS), 1);
    ck_assert_int_eq(alive("b", num(T0 + 600 * MS), T0 + 600 * MS).value, 1);
    struct grant g = ask_of("a", "r", 2, 2, T0 + 900 * MS);
    ck_assert_int_eq(g.ok, 1);
    ck_assert_int_eq(g.value, 400 * MS);
    ck_assert_int_eq(score("r"), T0 + 1300 * MS + 30 * S);
}
END_TEST

/* The score is the stamp + L, not the time the heartbeat runs: one run
 * late (a frozen Redis thawed) cannot make an instance alive past what
 * it knows; one older than L is refused and writes nothing. */
START_TEST(a_heartbeat_counts_from_its_stamp_and_a_stale_one_is_refused)
{
    ck_assert_int_eq(alive("a", "", T0).value, 0); /* no stamp: the time */
    ck_assert_int_eq(zscore(ALIVE, "a"), LLONG_MIN);
    ck_assert_int_eq(cmd_int("GET %s", LOG), T0); /* the log began */
    /* read back while its real TTL (score - now, from the injected now)
     * is long: one read 1 ms before it ends races Redis's own clock */
    ck_assert_int_eq(alive("a", num(T0), T0 + 1 * MS).value, 1);
    ck_assert_int_eq(zscore(ALIVE, "a"), T0 + L_US);
    long long w = writes();
    struct grant g = alive("a", num(T0 + 1 * MS), T0 + 402 * MS);
    ck_assert_int_eq(g.ok, T0 + 402 * MS);
    ck_assert_int_eq(g.value, 0);
    ck_assert_int_eq(zscore(ALIVE, "a"), T0 + L_US);
    /* a log refreshed is a write: only the entries count here */
    (void)w;
    /* never lowered by an older stamp */
    ck_assert_int_eq(alive("a", num(T0 + 300 * MS), T0 + 350 * MS).value, 1);
    ck_assert_int_eq(alive("a", num(T0 + 100 * MS), T0 + 360 * MS).value, 1);
    ck_assert_int_eq(zscore(ALIVE, "a"), T0 + 300 * MS + L_US);
    /* the TTLs: alive until its last entry, the log an hour */
    long long ttl = cmd_int("PTTL %s", ALIVE);
    ck_assert_int_gt(ttl, 0);
    ck_assert_int_le(ttl, 401);
    ttl = cmd_int("PTTL %s", LOG);
    ck_assert_int_gt(ttl, 3590000);
    ck_assert_int_eq(cmd_int("EXISTS %s", HOLD), 0);
    /* a stamp 399 ms old is still taken (not read back: its entry lives
     * 1 ms more) */
    ck_assert_int_eq(alive("a", num(T0 + 300 * MS), T0 + 699 * MS).value, 1);
}
END_TEST

/* "back": its departures made alone go in the log with their bounds
 * (now + offset), it is alive again; a stale stamp writes nothing. */
START_TEST(back_adds_what_it_sent_alone_and_makes_it_alive)
{
    ck_assert_int_eq(alive("a", "", T0).value, 0);
    const char *b[] = {
        "back",         "a",          num(T0 + 10 * MS), num(T0 + 5 * MS),
        num(L_US),      num(HOLD_US), num(T0 + 20 * MS), "a:1",
        num(-100 * MS), "a:2",        num(40 * MS)};
    redisReply *r = eval5(11, b);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_int_eq(r->elements, 3);
    ck_assert_int_eq(r->element[0]->integer, 1);
    ck_assert_int_eq(r->element[1]->integer, T0 + 20 * MS);
    ck_assert_int_eq(r->element[2]->integer, 0); /* the log was kept */
    freeReplyObject(r);
    ck_assert_int_eq(score("a:1"), T0 - 80 * MS);
    ck_assert_int_eq(score("a:2"), T0 + 60 * MS);
    ck_assert_int_eq(zscore(ALIVE, "a"), T0 + 10 * MS + L_US);
    ck_assert_int_gt(cmd_int("PTTL %s", DEP), 0);
    /* they count: 5 a window, alone (1 instance), 2 taken */
    ck_assert_int_eq(ask_of("a", "x1", 5, 1, T0 + 30 * MS).ok, 1);
    ck_assert_int_eq(ask_of("a", "x2", 5, 1, T0 + 31 * MS).ok, 1);
    ck_assert_int_eq(ask_of("a", "x3", 5, 1, T0 + 32 * MS).ok, 1);
    /* the 5th largest bound is a:1's: the room opens a window after */
    struct grant g = ask_of("a", "x4", 5, 1, T0 + 33 * MS);
    ck_assert_int_eq(g.ok, 1);
    ck_assert_int_eq(g.value, (-80 + 1000 - 33) * MS);
    /* a bound only falls: told again higher, it stays */
    const char *b2[] = {"back",    "a",          num(T0 + 40 * MS), "",
                        num(L_US), num(HOLD_US), num(T0 + 50 * MS), "a:2",
                        num(1 * S)};
    freeReplyObject(eval5(9, b2));
    ck_assert_int_eq(score("a:2"), T0 + 60 * MS);
    /* a stamp older than L when it runs: {0, now}, nothing written */
    long long w = writes();
    const char *b3[] = {
        "back", "b",   num(T0), "", num(L_US), num(HOLD_US), num(T0 + 401 * MS),
        "b:1",  num(0)};
    r = eval5(9, b3);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_int_eq(r->element[0]->integer, 0);
    ck_assert_int_eq(r->element[1]->integer, T0 + 401 * MS);
    freeReplyObject(r);
    ck_assert_int_eq(writes(), w);
    ck_assert_int_eq(score("b:1"), LLONG_MIN);
    /* members without their bound, a bad offset: errors */
    const char *bad1[] = {"back",    "a",          num(T0 + 40 * MS), "",
                          num(L_US), num(HOLD_US), num(T0 + 50 * MS), "a:9"};
    r = eval5_any(8, bad1);
    ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    const char *bad2[] = {"back",    "a",          num(T0 + 40 * MS), "",
                          num(L_US), num(HOLD_US), num(T0 + 50 * MS), "a:9",
                          "soon"};
    r = eval5_any(9, bad2);
    ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    /* alive and back need the five keys */
    const char *two[] = {"alive", "a", "", num(L_US), num(HOLD_US), num(T0)};
    r = eval_any("rl_depart", DEP, PAUSE, 6, two);
    ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}
END_TEST

/* Redis lost the log (restarted empty, flushed): an instance back with a
 * stamp from before finds no log, or one begun after that stamp: every
 * instance's departures of the window before the log began are unknown,
 * so no grant before its start + window + cap, for anyone. A first
 * contact (no stamp before) holds nothing. */
START_TEST(a_lost_log_holds_every_grant_for_a_window)
{
    /* first contacts: the log begins, no hold */
    ck_assert_int_eq(alive("a", "", T0).value, 0);
    ck_assert_int_eq(ask_of("a", "g0", 5, 1, T0 + 1 * MS).ok, 1);
    ck_assert_int_eq(cmd_int("EXISTS %s", HOLD), 0);
    /* everything lost */
    freeReplyObject(redisCommand(rc, "FLUSHALL"));
    /* a back whose prev stamp is of the lost log */
    ck_assert_int_eq(alive("a", "", T0 + 2 * S).value, 0);
    const char *b[] = {
        "back",    "a",          num(T0 + 2 * S),         num(T0 + 1 * MS),
        num(L_US), num(HOLD_US), num(T0 + 2 * S + 1 * MS)};
    redisReply *r = eval5(7, b);
    ck_assert_int_eq(r->element[0]->integer, 1);
    /* the log began at T0 + 2 s (the first "alive" after the loss) */
    ck_assert_int_eq(r->element[2]->integer, HOLD_US - 1 * MS);
    freeReplyObject(r);
    struct grant g = ask_of("a", "g1", 5, 1, T0 + 2 * S + 2 * MS);
    ck_assert_int_eq(g.ok, 0);
    ck_assert_int_eq(g.why, 3);
    ck_assert_int_eq(g.value, HOLD_US - 2 * MS);
    /* another instance: the same hold, from the same start */
    g = ask_of("b", "g2", 5, 1, T0 + 2 * S + 500 * MS);
    ck_assert_int_eq(g.why, 3);
    ck_assert_int_eq(g.value, HOLD_US - 500 * MS);
    ck_assert_int_le(cmd_int("PTTL %s", HOLD), 1040);
    ck_assert_int_eq(ask_of("b", "g2", 5, 1, T0 + 2 * S + HOLD_US).ok, 1);
    /* a heartbeat with a stamp that finds no log (flushed under a live
     * link) holds too */
    freeReplyObject(redisCommand(rc, "FLUSHALL"));
    g = alive("b", num(T0 + 3 * S), T0 + 3 * S + 10 * MS);
    ck_assert_int_eq(g.value, 1);
    g = ask_of("b", "g3", 5, 1, T0 + 3 * S + 20 * MS);
    ck_assert_int_eq(g.why, 3);
    ck_assert_int_eq(g.value, HOLD_US - 10 * MS);
    /* a prev stamp after the log began: kept, no hold */
    freeReplyObject(redisCommand(rc, "FLUSHALL"));
    ck_assert_int_eq(alive("c", "", T0 + 4 * S).value, 0);
    const char *b2[] = {
        "back",    "c",          num(T0 + 4 * S + 5 * MS), num(T0 + 4 * S),
        num(L_US), num(HOLD_US), num(T0 + 4 * S + 6 * MS)};
    r = eval5(7, b2);
    ck_assert_int_eq(r->element[2]->integer, 0);
    freeReplyObject(r);
    /* a tampered log key is no log: a loss, healed */
    freeReplyObject(redisCommand(rc, "SET %s garbage", LOG));
    ck_assert_int_eq(alive("c", num(T0 + 5 * S), T0 + 5 * S).value, 1);
    ck_assert_int_eq(cmd_int("GET %s", LOG), T0 + 5 * S);
    /* a tampered alive key is nobody alive, healed at the next beat */
    freeReplyObject(redisCommand(rc, "DEL %s", ALIVE));
    freeReplyObject(redisCommand(rc, "SET %s x", ALIVE));
    ck_assert_int_eq(alive("c", num(T0 + 5 * S), T0 + 5 * S + 1).value, 1);
    ck_assert_int_eq(zscore(ALIVE, "c"), T0 + 5 * S + L_US);
}
END_TEST

static Suite *
scripts_suite(void)
{
    Suite *s = suite_create("redis_scripts_rl");
    TCase *tc = tcase_create("reserve");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, slots_are_spaced_one_interval_apart);
    tcase_add_test(tc, a_burst_goes_at_once_then_the_spacing_holds);
    tcase_add_test(tc, the_slots_are_those_of_the_memory_limiter);
    tcase_add_test(tc, a_refusal_writes_nothing);
    tcase_add_test(tc, tampered_keys_heal);
    tcase_add_test(tc, retry_after_is_rounded_up_in_ms);
    suite_add_tcase(s, tc);
    tc = tcase_create("pause");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, a_pause_holds_every_slot_and_the_later_end_wins);
    tcase_add_test(tc, a_pause_moves_the_pending_run_behind_it);
    tcase_add_test(tc, resume_ends_a_pause_for_everyone);
    tcase_add_test(tc, every_key_has_a_ttl);
    suite_add_tcase(s, tc);
    tc = tcase_create("depart");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, the_guard_counts_what_is_on_its_way_and_what_arrived);
    tcase_add_test(tc, a_pause_holds_every_departure);
    tcase_add_test(tc, a_dep_key_of_another_type_heals_at_the_next_ask);
    tcase_add_test(tc, a_dep_zset_without_ttl_is_replaced);
    tcase_add_test(tc, a_tampered_pause_key_is_no_pause);
    tcase_add_test(tc, a_bad_now_is_an_error_naming_the_script);
    suite_add_tcase(s, tc);
    tc = tcase_create("presence");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, the_room_leaves_the_share_of_each_instance_not_alive);
    tcase_add_test(tc, the_room_is_that_of_the_grant_s_time);
    tcase_add_test(
        tc, a_heartbeat_counts_from_its_stamp_and_a_stale_one_is_refused);
    tcase_add_test(tc, back_adds_what_it_sent_alone_and_makes_it_alive);
    tcase_add_test(tc, a_lost_log_holds_every_grant_for_a_window);
    tcase_add_test(
        tc, a_guard_lost_while_its_log_stays_holds_until_its_entries_are_old);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return harness_run_suite(scripts_suite());
}
