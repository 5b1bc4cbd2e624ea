/* check_shaper_hostile.c - shaper.c's shared mode attacked on a scripted
 * link (the test answers every command to Redis itself, and plays the
 * timer on its own clock): what a grant of the shared on-the-wire guard
 * (rl_depart.lua's "ask") becomes when its item goes away, when a pause
 * comes in between, and when the pause is ended. A grant is an entry in
 * the shared departure log, counted by every instance until it is
 * dropped or its bound (grant + pending_ms) passes: one left behind holds
 * a place of the account's window for timeout_ms; one used after its
 * bound passed lets a request leave that no instance counts. */
#include "unit.h"
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "redis_scripts.h"
#include "shaper.h"

static double now_ms; /* the shaper's clock */
static struct event_base *base;

static double
test_clock(void *ctx)
{
    (void)ctx;
    return now_ms;
}

static void
setup(void)
{
    now_ms = 0;
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
}

static void
teardown(void)
{
    event_base_free(base);
}

struct sink {
    int handed;
    int refused;
};

static void
go_count(void *item)
{
    ((struct sink *)item)->handed++;
}

static void
refuse_count(void *item, long secs)
{
    (void)secs;
    ((struct sink *)item)->refused++;
}

static int
submit(struct shaper *s, struct sink *k)
{
    long r = 0;
    return shaper_submit(s, k, go_count, refuse_count, &r);
}

/* Plays the timer up to until (bounded). */
static void
advance(struct shaper *s, double until)
{
    int i = 0;
    for (; i < 100000 && shaper_next_ms(s) <= until; i++) {
        if (shaper_next_ms(s) > now_ms)
            now_ms = shaper_next_ms(s);
        shaper_run(s);
    }
    ck_assert_msg(i < 100000, "the timer keeps firing at %g", now_ms);
    now_ms = until;
}

static struct shaper *
shaper_at(double rate, long burst, long long max_queue_ms)
{
    struct shaper *s = shaper_new(base, rate, burst, max_queue_ms);
    shaper_set_clock(s, test_clock, NULL);
    return s;
}

/* ---- shared mode, on a scripted link ----
 *
 * The link is the test's: it holds each command until the test answers
 * it (the way to Redis and back, with the test's own replies). */

struct rlink {
    int up;
    struct fake_cmd {
        size_t script;
        char op[8]; /* rl_depart's operation */
        rlink_reply_cb cb;
        void *arg;
        int live; /* not answered, not cancelled */
    } cmd[64];
    int n, cancelled;
    /* heartbeats ("alive": one at a time) are kept apart, so that the
     * other commands keep their places; answered by fake_beat() */
    struct fake_cmd beat;
    int beats;
};
struct rlink_cmd; /* fake_cmd, through a cast */

static struct rlink_cmd *
fake_eval(struct rlink *l, size_t script, int nkeys, int argc,
          const char *const *argv, const size_t *argvlen, rlink_reply_cb cb,
          void *arg)
{
    (void)argvlen;
    /* rl_depart takes its five keys (dep, pause, alive, log, hold) */
    ck_assert_int_eq(nkeys, script == RS_RL_DEPART ? 5 : 2);
    if (!l->up) {
        cb(arg, RLINK_UNAVAILABLE, NULL);
        return NULL;
    }
    const char *op = script == RS_RL_DEPART && argc > nkeys ? argv[nkeys] : "";
    struct fake_cmd *c;
    if (strcmp(op, "alive") == 0) {
        ck_assert(!l->beat.live);
        c = &l->beat;
        l->beats++;
    } else {
        ck_assert_int_lt(l->n, 64);
        c = &l->cmd[l->n++];
    }
    c->script = script;
    snprintf(c->op, sizeof(c->op), "%s", op);
    c->cb = cb;
    c->arg = arg;
    c->live = 1;
    return (struct rlink_cmd *)c;
}

static void
fake_cancel(struct rlink *l, struct rlink_cmd *c)
{
    ((struct fake_cmd *)c)->live = 0;
    l->cancelled++;
}

static int
fake_up(const struct rlink *l)
{
    return l->up;
}

/* Answers command i with the integers v[0..n). */
static void
fake_answer(struct rlink *l, int i, const long long *v, size_t n)
{
    struct fake_cmd *c = &l->cmd[i];
    ck_assert(c->live);
    c->live = 0;
    redisReply el[3], *els[3];
    redisReply r = {.type = REDIS_REPLY_ARRAY, .elements = n, .element = els};
    for (size_t k = 0; k < n; k++) {
        el[k] = (redisReply){.type = REDIS_REPLY_INTEGER, .integer = v[k]};
        els[k] = &el[k];
    }
    c->cb(c->arg, RLINK_OK, &r);
}

static struct shaper *
shared_at(struct rlink *l, double rate, long burst, long long max_queue_ms)
{
    struct shaper *s = shaper_at(rate, burst, max_queue_ms);
    struct shaper_share sh = {
        .link = {l, fake_eval, fake_cancel, fake_up},
        .key_base = "wagate:{t}:",
        .limiter = "send",
        .instances = 3,
        .pending_ms = 5000,
    };
    shaper_share(s, &sh);
    return s;
}

/* How many rl_depart commands with operation op were sent. */
static int
count_op(const struct rlink *l, const char *op)
{
    int c = 0;
    for (int i = 0; i < l->n; i++)
        c += l->cmd[i].script == RS_RL_DEPART && strcmp(l->cmd[i].op, op) == 0;
    return c;
}

/* The index of the last rl_depart command with operation op, or -1. */
static int
last_op(const struct rlink *l, const char *op)
{
    for (int i = l->n - 1; i >= 0; i--)
        if (l->cmd[i].script == RS_RL_DEPART && strcmp(l->cmd[i].op, op) == 0)
            return i;
    return -1;
}

/* One item reserved at slot 100 and granted by the shared guard for
 * then (asked 20 ms ahead): the grant is outstanding at 80. */
static void
granted_for_100(struct rlink *l, struct shaper *s, struct sink *a)
{
    ck_assert_int_eq(submit(s, a), 0);
    ck_assert_int_eq(l->cmd[0].script, RS_RL_RESERVE);
    fake_answer(l, 0, (long long[]){1, 100000, 0}, 3);
    advance(s, 80);
    int ask = last_op(l, "ask");
    ck_assert_int_ge(ask, 0);
    fake_answer(l, ask, (long long[]){1, 20000, 0}, 3);
    ck_assert_int_eq(a->handed, 0);
}

/* The caller hangs up (relay_halt -> shaper_cancel) while its item holds
 * the grant and nothing else waits: the grant's entry is dropped, not
 * left to hold a place of every instance's window for pending_ms. */
START_TEST(a_grant_whose_item_is_cancelled_is_given_back)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 10000);
    struct sink a = {0};
    granted_for_100(&l, s, &a);
    ck_assert_int_eq(shaper_cancel(s, &a), 1);
    advance(s, 10000);
    ck_assert_int_eq(a.handed + a.refused, 0);
    ck_assert_int_eq(count_op(&l, "drop"), 1);
    shaper_free(s);
}
END_TEST

/* A pause ended early (DELETE /admin/pause, a reload) while a grant is
 * outstanding: the queue reserves again and asks again; the old grant's
 * entry is dropped. */
START_TEST(a_grant_outstanding_at_a_resume_is_given_back)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 10000);
    struct sink a = {0};
    granted_for_100(&l, s, &a);
    shaper_pause(s, 3000); /* an earlier request's 429 */
    now_ms = 500;
    ck_assert_int_eq(shaper_resume(s), 1);
    ck_assert_int_eq(count_op(&l, "drop"), 1);
    shaper_free(s);
}
END_TEST

/* A pause longer than pending_ms (5000 here; upstream.timeout_ms, 30 s
 * by default, under upstream.max_pause_ms, 60 s by default) moves the
 * head past its grant's bound: by then no instance counts that entry, so
 * the head must ask again rather than leave on the stale grant. */
START_TEST(a_grant_is_not_used_after_a_pause_outlived_it)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 20000);
    struct sink a = {0};
    granted_for_100(&l, s, &a);
    int asks = count_op(&l, "ask");
    shaper_pause(s, 10000);
    advance(s, 10200);
    ck_assert_msg(a.handed == 0,
                  "handed over at %g on a grant made for 100 (its entry "
                  "counted until 5140)",
                  now_ms);
    ck_assert_int_eq(count_op(&l, "ask"), asks + 1);
    shaper_free(s);
}
END_TEST

/* The same when the pause comes while the ask is on its way: its grant,
 * made for now, is not for a head that moved 10 s on. */
START_TEST(a_grant_that_comes_after_a_pause_is_not_used_behind_it)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 20000);
    struct sink a = {0};
    ck_assert_int_eq(submit(s, &a), 0);
    fake_answer(&l, 0, (long long[]){1, 100000, 0}, 3);
    advance(s, 80);
    int ask = last_op(&l, "ask");
    ck_assert_int_ge(ask, 0);
    shaper_pause(s, 10000);
    fake_answer(&l, ask, (long long[]){1, 20000, 0}, 3);
    advance(s, 10200);
    ck_assert_msg(a.handed == 0, "handed over at %g on a grant made for 100",
                  now_ms);
    ck_assert_int_eq(count_op(&l, "ask"), 2);
    ck_assert_int_eq(count_op(&l, "drop"), 1);
    shaper_free(s);
}
END_TEST

/* The pause is learned from the shared guard's answer (another instance
 * saw the 429) and ended early on another instance: once the poll finds
 * it over, the head reserves again and asks again at once, not when the
 * pause it was told of would have ended. */
START_TEST(an_ask_told_of_a_pause_asks_again_once_it_is_ended)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 20000);
    struct sink a = {0};
    ck_assert_int_eq(submit(s, &a), 0);
    fake_answer(&l, 0, (long long[]){1, 100000, 0}, 3);
    advance(s, 80);
    int ask = last_op(&l, "ask");
    ck_assert_int_ge(ask, 0);
    fake_answer(&l, ask, (long long[]){0, 5000000, 2}, 3); /* 5 s more */
    advance(s, 700);
    int poll = last_op(&l, "paused");
    ck_assert_msg(poll >= 0, "the pause is never polled");
    fake_answer(&l, poll, (long long[]){0}, 1); /* ended elsewhere */
    int res = l.n - 1;
    ck_assert_int_eq(l.cmd[res].script, RS_RL_RESERVE);
    fake_answer(&l, res, (long long[]){1, 0, 0}, 3);
    advance(s, 800);
    ck_assert_msg(count_op(&l, "ask") == 2,
                  "no new ask after the resume (asks: %d)",
                  count_op(&l, "ask"));
    fake_answer(&l, last_op(&l, "ask"), (long long[]){1, 0, 0}, 3);
    advance(s, 900);
    ck_assert_int_eq(a.handed, 1);
    shaper_free(s);
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("shaper_hostile");
    TCase *tc = tcase_create("grants");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_grant_whose_item_is_cancelled_is_given_back);
    tcase_add_test(tc, a_grant_outstanding_at_a_resume_is_given_back);
    tcase_add_test(tc, a_grant_is_not_used_after_a_pause_outlived_it);
    tcase_add_test(tc, a_grant_that_comes_after_a_pause_is_not_used_behind_it);
    tcase_add_test(tc, an_ask_told_of_a_pause_asks_again_once_it_is_ended);
    suite_add_tcase(s, tc);
    return s;
}
