/* check_shaper_review.c - shaper.c's shared mode on a scripted link (the
 * test answers every command to Redis itself and plays the timer on its
 * own clock), reviewed against odd sequences of the link: a grant of the
 * shared guard held while the link goes down and comes back, replies of
 * the wrong type, a reservation's reply after the link flapped. */
#include "unit.h"
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
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
refuse_count(void *item, long secs)
{
    (void)secs;
    ((struct sink *)item)->refused++;
}

/* The shaper under test: an item handed over leaves at once and its
 * answer comes at once (as a fast upstream's would), so that the local
 * guard counts it as gone rather than on its way. */
static struct shaper *cur;

static void
go_left(void *item)
{
    ((struct sink *)item)->handed++;
    shaper_answered(cur, shaper_left(cur));
}

static int
submit(struct shaper *s, struct sink *k)
{
    long r = 0;
    cur = s;
    return shaper_submit(s, k, go_left, refuse_count, &r);
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

/* Answers command i with an error reply. */
static void
fake_error(struct rlink *l, int i, const char *msg)
{
    struct fake_cmd *c = &l->cmd[i];
    ck_assert(c->live);
    c->live = 0;
    redisReply r = {
        .type = REDIS_REPLY_ERROR, .str = (char *)msg, .len = strlen(msg)};
    c->cb(c->arg, RLINK_OK, &r);
}

/* Answers command i UNAVAILABLE (what redis_link does to every command of
 * a connection that drops). */
static void
fake_drop(struct rlink *l, int i)
{
    struct fake_cmd *c = &l->cmd[i];
    ck_assert(c->live);
    c->live = 0;
    c->cb(c->arg, RLINK_UNAVAILABLE, NULL);
}

/* The link goes up or down; down, the heartbeat in flight is answered
 * unavailable (as redis_link does with every command of a connection
 * that drops). */
static void
link_flip(struct rlink *l, struct shaper *s, int up)
{
    l->up = up;
    if (!up && l->beat.live) {
        l->beat.live = 0;
        l->beat.cb(l->beat.arg, RLINK_UNAVAILABLE, NULL);
    }
    shaper_link_changed(s);
}

/* Answers the rejoin after the link came back (shaper.h): its first
 * step (a heartbeat without a stamp) with Redis's time, then its "back"
 * as done. */
static void
rejoin(struct rlink *l, struct shaper *s)
{
    advance(s, now_ms);
    ck_assert(l->beat.live);
    l->beat.live = 0;
    redisReply el[2] = {{.type = REDIS_REPLY_INTEGER, .integer = 9000000},
                        {.type = REDIS_REPLY_INTEGER, .integer = 0}};
    redisReply *els[2] = {&el[0], &el[1]};
    redisReply r = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = els};
    l->beat.cb(l->beat.arg, RLINK_OK, &r);
    int back = l->n - 1;
    ck_assert_str_eq(l->cmd[back].op, "back");
    fake_answer(l, back, (long long[]){1, 9000100, 0}, 3);
}

/* Submits n items and answers their reservations with slots 100, 300,
 * 500, ... ms from now (0). */
static void
queue_n(struct rlink *l, struct shaper *s, struct sink *k, int n)
{
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(submit(s, &k[i]), 0);
        ck_assert_int_eq(l->cmd[l->n - 1].script, RS_RL_RESERVE);
        fake_answer(l, l->n - 1, (long long[]){1, 100000 + 200000LL * i, 0}, 3);
    }
}

static int
handed(const struct sink *k, int n)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += k[i].handed;
    return c;
}

/* A grant of the shared guard is outstanding (asked 20 ms ahead of the
 * head's slot) when the link drops; the head then goes on the local
 * guard, after the quiet, without it. The link is back 6 s later: the
 * grant's entry (bound: grant + pending_ms + cap = 5140) no longer counts
 * in any instance's window, or is gone with a Redis restarted empty. The
 * next head must ask the shared guard again (during the rejoin hold every
 * departure is to be in Redis's log before it leaves, shaper.h), not
 * leave on the grant made 6 s earlier for another item. */
START_TEST(a_grant_held_across_a_link_drop_is_not_used_after_it)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 20000);
    struct sink k[12] = {{0}};
    queue_n(&l, s, k, 12);
    advance(s, 80);
    int ask = last_op(&l, "ask");
    ck_assert_int_ge(ask, 0);
    fake_answer(&l, ask, (long long[]){1, 20000, 0}, 3); /* go at 100 */
    now_ms = 90;
    link_flip(&l, s, 0);
    advance(s, 6500);
    ck_assert_int_gt(handed(k, 12), 0); /* the local guard let some go */
    link_flip(&l, s, 1);
    rejoin(&l, s);
    int before = handed(k, 12);
    int asks = count_op(&l, "ask");
    advance(s, 9000);
    int after_asks = count_op(&l, "ask");
    int after = handed(k, 12);
    shaper_free(s); /* before the verdict: no leak when it fails */
    /* nobody answers the new asks: nothing may leave on the old grant */
    ck_assert_msg(after == before,
                  "%d handed over after the link came back, %d new asks "
                  "unanswered: the grant of 80 ms was used",
                  after - before, after_asks - asks);
}
END_TEST

/* The same with the ask in flight at the drop, answered UNAVAILABLE (as
 * redis_link does): once the link is back, the head asks again. */
START_TEST(an_ask_lost_at_a_drop_is_asked_again_once_back)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 20000);
    struct sink k[12] = {{0}};
    queue_n(&l, s, k, 12);
    advance(s, 80);
    int ask = last_op(&l, "ask");
    ck_assert_int_ge(ask, 0);
    l.up = 0;
    fake_drop(&l, ask);
    shaper_link_changed(s);
    advance(s, 6500);
    ck_assert_int_gt(handed(k, 12), 0);
    link_flip(&l, s, 1);
    rejoin(&l, s);
    int before = handed(k, 12);
    advance(s, 9000);
    ck_assert_msg(handed(k, 12) == before,
                  "%d handed over without an answered ask",
                  handed(k, 12) - before);
    ck_assert_int_ge(count_op(&l, "ask"), 2);
    /* the lost ask's entry is dropped once the link answers again */
    int a2 = last_op(&l, "ask");
    fake_answer(&l, a2, (long long[]){1, 0, 0}, 3);
    advance(s, 9100);
    ck_assert_int_eq(handed(k, 12), before + 1);
    ck_assert_int_ge(count_op(&l, "drop"), 1);
    shaper_free(s);
}
END_TEST

/* The same with the link back at once (a flap: 120 ms, within the quiet,
 * so nothing left alone): the lost ask must not leave a pass behind that
 * lets the head go without asking once it shares again (the rest of the
 * window may be the other instances'). */
START_TEST(an_ask_lost_in_a_flap_leaves_no_pass_behind)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 20000);
    struct sink k[12] = {{0}};
    queue_n(&l, s, k, 12);
    advance(s, 80);
    int ask = last_op(&l, "ask");
    ck_assert_int_ge(ask, 0);
    l.up = 0;
    fake_drop(&l, ask);
    link_flip(&l, s, 0);
    now_ms = 200;
    link_flip(&l, s, 1);
    rejoin(&l, s);
    advance(s, 3000);
    int after = handed(k, 12);
    int asks = count_op(&l, "ask");
    shaper_free(s);
    ck_assert_msg(after == 0, "%d handed over with %d asks unanswered", after,
                  asks - 1);
}
END_TEST

/* Replies of the wrong type (an error reply, a bulk string, a short
 * array) to an ask and to a reservation: no crash, the item is answered
 * once (local limiter), the instance keeps to its share meanwhile. */
START_TEST(replies_of_the_wrong_type_answer_each_item_once)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 20000);
    struct sink k[3] = {{0}};
    /* three reservations on their way, then their three bad answers (a
     * submit after the first would reserve locally: cut off) */
    int res[3];
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(submit(s, &k[i]), 0);
        res[i] = l.n - 1;
    }
    fake_error(&l, res[0], "ERR something");
    fake_answer(&l, res[1], (long long[]){1}, 1);        /* too short */
    fake_answer(&l, res[2], (long long[]){1, -5, 0}, 3); /* negative wait */
    for (int i = 0; i < 40; i++) {
        int ask = last_op(&l, "ask");
        if (ask >= 0 && l.cmd[ask].live)
            fake_error(&l, ask, "WRONGTYPE Operation");
        advance(s, now_ms + 250);
    }
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(k[i].handed + k[i].refused, 1);
    shaper_free(s);
}
END_TEST

/* A reservation sent before the link flapped (down, up) is answered after
 * it came back (a slow reply on a connection that survived is not
 * possible with redis_link, but a reply after the shaper saw the link
 * down and up is): the item is queued once and handed over once. */
START_TEST(a_reservation_answered_after_a_flap_is_handed_over_once)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 20000);
    struct sink a = {0};
    ck_assert_int_eq(submit(s, &a), 0);
    int res = l.n - 1;
    now_ms = 10;
    link_flip(&l, s, 0);
    now_ms = 20;
    link_flip(&l, s, 1);
    rejoin(&l, s);
    fake_answer(&l, res, (long long[]){1, 0, 0}, 3);
    for (int i = 0; i < 40 && a.handed + a.refused == 0; i++) {
        int ask = last_op(&l, "ask");
        if (ask >= 0 && l.cmd[ask].live)
            fake_answer(&l, ask, (long long[]){1, 0, 0}, 3);
        advance(s, now_ms + 100);
    }
    advance(s, 20000);
    ck_assert_int_eq(a.handed, 1);
    ck_assert_int_eq(a.refused, 0);
    shaper_free(s);
}
END_TEST

/* Answers the heartbeat in flight: {Redis time, accepted}. */
static void
fake_beat(struct rlink *l, long long t_us, long long ok)
{
    ck_assert(l->beat.live);
    l->beat.live = 0;
    redisReply el[2] = {{.type = REDIS_REPLY_INTEGER, .integer = t_us},
                        {.type = REDIS_REPLY_INTEGER, .integer = ok}};
    redisReply *els[2] = {&el[0], &el[1]};
    redisReply r = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = els};
    l->beat.cb(l->beat.arg, RLINK_OK, &r);
}

/* An idle instance, sharing and alive (its last stamp came at 0), gets
 * a send at 50 ms whose reservation Redis answers with an error (BUSY:
 * a long script; READONLY after a failover) while the link stays up.
 * The others count it alive until 0 + SHAPER_ALIVE_MS and may fill the
 * whole window meanwhile: nothing alone before 400 + window + cap =
 * 1440 ms (as after a drop), not at once on its empty local guard. It
 * rejoins meanwhile, and once Redis answers again its "back" tells of
 * the departure it made alone. */
START_TEST(an_error_reply_keeps_the_quiet_of_a_drop)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 20000);
    shaper_link_changed(s); /* up at the first look: sharing */
    advance(s, 0);
    fake_beat(&l, 7000000, 1); /* alive, stamp received at 0 */
    now_ms = 50;
    struct sink k = {0};
    ck_assert_int_eq(submit(s, &k), 0);
    ck_assert_int_eq(l.cmd[l.n - 1].script, RS_RL_RESERVE);
    fake_error(&l, l.n - 1, "BUSY Redis is busy running a script");
    /* the rejoin's first step goes at once and keeps failing, as would
     * an ask (BUSY answers every script) */
    for (double t = 50; t < 1430; t += 10) {
        advance(s, t);
        int ask = last_op(&l, "ask");
        if (ask >= 0 && l.cmd[ask].live)
            fake_error(&l, ask, "BUSY Redis is busy running a script");
        if (l.beat.live) {
            l.beat.live = 0;
            redisReply e = {.type = REDIS_REPLY_ERROR,
                            .str = (char *)"BUSY Redis is busy",
                            .len = 18};
            l.beat.cb(l.beat.arg, RLINK_OK, &e);
        }
    }
    advance(s, 1430);
    int early = k.handed;
    int beats = l.beats;
    advance(s, 1460);
    int late = k.handed;
    /* Redis answers again: the rejoin tells of the departure alone */
    advance(s, 1600);
    int had_beat = l.beat.live;
    if (had_beat)
        fake_beat(&l, 8600000, 0);
    int back = last_op(&l, "back");
    shaper_free(s);
    ck_assert_msg(early == 0, "handed over alone at once after an error reply");
    ck_assert_int_eq(late, 1);
    ck_assert_int_ge(beats, 10); /* the rejoin retried every 100 ms */
    ck_assert(had_beat);
    ck_assert_int_ge(back, 0);
}
END_TEST

/* The same with the error reply to an ask of a backlog's head (the
 * window already holds this instance's grants): the head waits for the
 * quiet or the rejoin, it does not go on its share at once. */
START_TEST(an_error_reply_to_an_ask_keeps_the_quiet_of_a_drop)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 20000);
    shaper_link_changed(s);
    advance(s, 0);
    fake_beat(&l, 7000000, 1);
    struct sink k[4] = {{0}};
    queue_n(&l, s, k, 4); /* slots 100, 300, 500, 700 */
    advance(s, 80);
    int ask = last_op(&l, "ask");
    ck_assert_int_ge(ask, 0);
    fake_error(&l, ask,
               "READONLY You can't write against a read only "
               "replica.");
    advance(s, 1430);
    int early = handed(k, 4);
    advance(s, 1460);
    int late = handed(k, 4);
    shaper_free(s);
    ck_assert_msg(early == 0, "%d handed over alone before the quiet ended",
                  early);
    ck_assert_int_eq(late, 1); /* its share: 1 of 5 per window */
}
END_TEST

/* ---- review 10b: cut_off() under a hostile Redis ----
 * Redis answers one operation with errors while the others pass: an ACL
 * denying ZCOUNT (only "ask" runs it: every ask fails with NOPERM, the
 * heartbeat and "back" succeed), OOM under noeviction (rl_reserve's first
 * write is a SET: refused; rl_depart's first writes are PEXPIRE or
 * ZREMRANGEBYSCORE, which are not deny-oom, so its operations pass). */

/* All the commands answered: the slots are free again (the cases below
 * run longer than 64 commands; they count what they need themselves). */
static void
fake_compact(struct rlink *l)
{
    for (int i = 0; i < l->n; i++)
        if (l->cmd[i].live)
            return;
    l->n = 0;
}

/* One answer of a Redis that refuses every ask (an error reply) and
 * answers the rest: the heartbeat with time t_us (accepted), "back" as
 * done. 1 when something was answered; *asks counts the asks failed. */
static int
answer_but_asks(struct rlink *l, long long t_us, int *asks)
{
    int ask = last_op(l, "ask"), back = last_op(l, "back");
    if (ask >= 0 && l->cmd[ask].live) {
        fake_error(l, ask,
                   "NOPERM this user has no permissions to run the 'zcount' "
                   "command");
        (*asks)++;
    } else if (back >= 0 && l->cmd[back].live) {
        fake_answer(l, back, (long long[]){1, t_us, 0}, 3);
    } else if (l->beat.live) {
        fake_beat(l, t_us, 1);
    } else {
        return 0;
    }
    return 1;
}

/* Found by review 10b (asks_fail_spin), fixed: every ask answered with an
 * error, the heartbeat and "back" answered. Each error cuts the instance
 * off (cut_off()), the rejoin's heartbeat and "back" succeed within a
 * round trip, start_sharing() sets ask_at = -INFINITY and the head asks
 * again at once: error, cut off, rejoin... with no time passing. On a
 * real loopback Redis that is one cycle per three round trips (thousands
 * a second, four log lines and two mode changes each, Redis's CPU with
 * them). Expected: a cut-off instance does not rejoin (nor ask) again
 * sooner than SHAPER_BEAT_MS after the last error. */
START_TEST(asks_failing_while_the_rejoin_succeeds_do_not_spin)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 20000);
    shaper_link_changed(s);
    advance(s, 0);
    fake_beat(&l, 7000000, 1);
    struct sink k[4] = {{0}};
    queue_n(&l, s, k, 4); /* slots 100, 300, 500, 700 */
    advance(s, 80);       /* the head's ask */
    struct shaper_stats st0, st1;
    shaper_get_stats(s, &st0);
    int asks = 0, steps = 0;
    /* Redis answers each command at once; no time passes */
    while (steps < 40 && l.n < 60 && answer_but_asks(&l, 7080000, &asks))
        steps++;
    shaper_get_stats(s, &st1);
    shaper_free(s);
    ck_assert_msg(asks <= 2,
                  "%d asks failed within the same ms (%d answers, %llu mode "
                  "changes): cut off, rejoined, asked again at once",
                  asks, steps,
                  (unsigned long long)(st1.mode_changes - st0.mode_changes));
}
END_TEST

/* Found by review 10b (asks_fail_starve), fixed: the same for 8 s (Redis
 * answering each command 1 ms after it was sent). An instance cut off
 * sends alone at its share once the quiet is over (shaper.h); here it
 * is cut off and back sharing again every few ms, each "back" makes it
 * alive again (so the quiet moves on with it), and while it shares the
 * head waits for a grant that never comes: nothing leaves in 8 s, every
 * caller is refused at its deadline. Expected: after the quiet the head
 * goes on the instance's share (1 of 5 per window here), as it would
 * with the link down. */
START_TEST(asks_failing_while_the_rejoin_succeeds_still_send_the_share)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 20000);
    shaper_link_changed(s);
    advance(s, 0);
    fake_beat(&l, 7000000, 1);
    struct sink k[8] = {{0}};
    queue_n(&l, s, k, 8);
    int asks = 0;
    for (double t = 80; t <= 8000; t += 1) {
        advance(s, t);
        fake_compact(&l);
        if (l.n < 60)
            answer_but_asks(&l, 7000000 + (long long)(t * 1000), &asks);
    }
    struct shaper_stats st;
    shaper_get_stats(s, &st);
    int h = handed(k, 8);
    shaper_free(s);
    ck_assert_msg(h >= 3,
                  "%d handed over in 8 s while only the asks failed (%d "
                  "asks failed, %llu mode changes)",
                  h, asks, (unsigned long long)st.mode_changes);
}
END_TEST

/* Found by review 10b (stale_grant), fixed by a one-line give-back in
 * on_back() (src/shaper.c): a reservation answered with an
 * error cuts the instance off while the head's ask is in flight; the ask
 * is then granted (Redis answered the one script, not the other: OOM
 * refuses rl_reserve's SET, not rl_depart's writes). went_down() gave
 * back the grant it knew of, not this one, which on_ask() keeps in
 * re->permit although the instance no longer shares. The rejoin fails
 * for 6 s (Redis BUSY); the heads go alone at the share meanwhile and the
 * grant stays. Once back, on_back() sets ask_at ("its grant for later is
 * stale: ask again") but keeps permit, and the next head leaves on the
 * grant made 6 s earlier, whose entry (bound: grant + pending_ms + cap =
 * 5140 ms) no longer counts in anyone's window (1 handed over at once
 * after the rejoin). Now on_back() gives that grant back and the head
 * asks again: nothing leaves after the rejoin until a new ask is
 * granted. */
START_TEST(a_grant_answered_after_a_cut_off_is_not_used_after_the_rejoin)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 20000);
    shaper_link_changed(s);
    advance(s, 0);
    fake_beat(&l, 7000000, 1);
    struct sink k[13] = {{0}};
    queue_n(&l, s, k, 12); /* slots 100 ... 2300 */
    advance(s, 80);
    int ask = last_op(&l, "ask");
    ck_assert_int_ge(ask, 0);
    now_ms = 85;
    ck_assert_int_eq(submit(s, &k[12]), 0);
    fake_error(&l, l.n - 1,
               "OOM command not allowed when used memory > "
               "'maxmemory'.");
    fake_answer(&l, ask, (long long[]){1, 15000, 0}, 3); /* go at 100 */
    /* the rejoin fails for 6 s: Redis BUSY */
    for (double t = 90; t < 6500; t += 10) {
        advance(s, t);
        if (l.beat.live) {
            l.beat.live = 0;
            redisReply e = {.type = REDIS_REPLY_ERROR,
                            .str = (char *)"BUSY Redis is busy",
                            .len = 18};
            l.beat.cb(l.beat.arg, RLINK_OK, &e);
        }
        fake_compact(&l);
    }
    advance(s, 6500);
    ck_assert_int_gt(handed(k, 13), 0); /* alone at the share meanwhile */
    ck_assert_int_lt(handed(k, 13), 13);
    /* Redis answers again: the rejoin (its next step) */
    for (int i = 0; i < 20 && !l.beat.live; i++)
        advance(s, now_ms + 10);
    ck_assert(l.beat.live);
    fake_beat(&l, 13500000, 0);
    int back = last_op(&l, "back");
    ck_assert_int_ge(back, 0);
    int before = handed(k, 13);
    fake_answer(&l, back, (long long[]){1, 13500100, 0}, 3);
    advance(s, 9000); /* nobody answers the asks from now on */
    int after = handed(k, 13);
    shaper_free(s);
    ck_assert_msg(after == before,
                  "%d handed over after the rejoin without a new grant (the "
                  "one answered at 85 ms was used)",
                  after - before);
}
END_TEST

/* A cut_off() (a reservation's error) while the head holds a grant for
 * later: the grant is not used while cut off, and its entry is dropped
 * in Redis once an ask is answered again (it does not hold a place in
 * every instance's window until its bound). */
START_TEST(a_grant_held_at_a_cut_off_is_given_back)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 20000);
    shaper_link_changed(s);
    advance(s, 0);
    fake_beat(&l, 7000000, 1);
    struct sink k[5] = {{0}};
    queue_n(&l, s, k, 4);
    advance(s, 80);
    int ask = last_op(&l, "ask");
    fake_answer(&l, ask, (long long[]){1, 20000, 0}, 3); /* go at 100 */
    now_ms = 90;
    ck_assert_int_eq(submit(s, &k[4]), 0);
    fake_error(&l, l.n - 1, "BUSY Redis is busy running a script");
    advance(s, 95);
    /* the heartbeat in flight is no rejoin step before SHAPER_BEAT_MS */
    ck_assert(l.beat.live);
    fake_beat(&l, 7095000, 0);
    ck_assert_int_lt(last_op(&l, "back"), 0);
    advance(s, 190);
    /* the rejoin succeeds */
    ck_assert(l.beat.live);
    fake_beat(&l, 7190000, 0);
    int back = last_op(&l, "back");
    ck_assert_int_ge(back, 0);
    fake_answer(&l, back, (long long[]){1, 7190100, 0}, 3);
    advance(s, 200);
    ck_assert_int_eq(handed(k, 5), 0); /* not on the old grant */
    int a2 = last_op(&l, "ask");
    ck_assert_int_gt(a2, ask);
    int drops = count_op(&l, "drop");
    fake_answer(&l, a2, (long long[]){1, 0, 0}, 3);
    advance(s, 300);
    int h = handed(k, 5), drops2 = count_op(&l, "drop");
    shaper_free(s);
    ck_assert_int_eq(h, 1);
    ck_assert_int_gt(drops2, drops);
}
END_TEST

/* Errors, timeouts and drops interleaved on one shaper for 30 s of its
 * clock (a scripted pseudo-random sequence): every item is answered
 * exactly once, the heads never leave within the quiet after an error
 * while the instance was alive, and the timer never spins. */
START_TEST(errors_timeouts_and_drops_interleaved_answer_each_item_once)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 3000);
    shaper_link_changed(s);
    advance(s, 0);
    fake_beat(&l, 7000000, 1);
    enum { N = 40 };
    struct sink k[N] = {{0}};
    int submitted = 0;
    unsigned x = 12345;
    for (double t = 0; t < 30000; t += 5) {
        x = x * 1103515245u + 12345u;
        unsigned r = (x >> 8) % 1000;
        advance(s, t);
        if (submitted < N && r < 8) {
            if (submit(s, &k[submitted]) != 0)
                k[submitted].refused++; /* refused at once */
            submitted++;
        }
        /* the link flaps now and then */
        if (r >= 990) {
            link_flip(&l, s, !l.up);
            continue;
        }
        if (!l.up)
            continue;
        for (int i = 0; i < l.n; i++) {
            struct fake_cmd *c = &l.cmd[i];
            if (!c->live || (x >> 20) % 3 == 0)
                continue; /* some wait for a later round */
            unsigned kind = (x >> 4) % 10;
            long long now_us = 7000000 + (long long)(t * 1000);
            if (kind < 3) {
                fake_error(&l, i, "BUSY Redis is busy running a script");
            } else if (kind < 4) {
                fake_drop(&l, i); /* a timeout: unavailable, link up */
            } else if (c->script == RS_RL_RESERVE) {
                fake_answer(&l, i, (long long[]){1, 200000, 0}, 3);
            } else if (strcmp(c->op, "back") == 0) {
                fake_answer(&l, i, (long long[]){1, now_us, 0}, 3);
            } else if (strcmp(c->op, "ask") == 0) {
                fake_answer(&l, i, (long long[]){1, 0, 0}, 3);
            } else {
                fake_answer(&l, i, (long long[]){1}, 1);
            }
        }
        if (l.beat.live && (x >> 12) % 2 == 0)
            fake_beat(&l, 7000000 + (long long)(t * 1000), 1);
        fake_compact(&l);
        if (l.n >= 60)
            break;
    }
    l.up = 0;
    shaper_link_changed(s);
    advance(s, 60000);
    int bad = -1;
    for (int i = 0; i < submitted; i++)
        if (k[i].handed + k[i].refused != 1)
            bad = i;
    shaper_free(s);
    ck_assert_int_gt(submitted, 10);
    ck_assert_msg(bad < 0, "item %d answered %d + %d times", bad,
                  bad >= 0 ? k[bad].handed : 0, bad >= 0 ? k[bad].refused : 0);
}
END_TEST

/* The quiet is the larger of the old and the new (went_down()'s fmax):
 * cut off at 50 (stamp received at 0: quiet to 1440), rejoined at 150
 * (SHAPER_BEAT_MS after the cut-off) with a stamp received at 150 (alive
 * in Redis until 550), cut off again at 160: nothing alone before 150 +
 * 400 + 1040 = 1590, and the second cut-off does not shorten the first's
 * quiet either. */
START_TEST(a_second_cut_off_after_a_rejoin_takes_the_later_quiet)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 20000);
    shaper_link_changed(s);
    advance(s, 0);
    fake_beat(&l, 7000000, 1);
    struct sink k[2] = {{0}};
    now_ms = 50;
    ck_assert_int_eq(submit(s, &k[0]), 0);
    fake_error(&l, l.n - 1, "BUSY Redis is busy running a script");
    advance(s, 149);
    ck_assert(!l.beat.live); /* the rejoin waits SHAPER_BEAT_MS */
    advance(s, 150);
    ck_assert(l.beat.live);
    fake_beat(&l, 7150000, 0);
    int back = last_op(&l, "back");
    ck_assert_int_ge(back, 0);
    fake_answer(&l, back, (long long[]){1, 7150000, 0}, 3);
    now_ms = 160;
    ck_assert_int_eq(submit(s, &k[1]), 0);
    fake_error(&l, l.n - 1, "OOM command not allowed");
    advance(s, 1580); /* the rejoin's heartbeat stays unanswered */
    int early = handed(k, 2);
    advance(s, 1600);
    int late = handed(k, 2);
    shaper_free(s);
    ck_assert_msg(early == 0, "%d handed over alone before 1590 ms", early);
    ck_assert_int_eq(late, 1); /* its share: 1 per window */
}
END_TEST

/* Answers the first command in flight: reservations with an error (an
 * ACL, WRONGTYPE on the rl: key, OOM refusing its SET), asks granted,
 * "back" and heartbeats accepted. 0 when nothing was in flight. */
static int
answer_but_reserves(struct rlink *l, long long t_us)
{
    for (int i = 0; i < l->n; i++) {
        if (!l->cmd[i].live)
            continue;
        if (l->cmd[i].script == RS_RL_RESERVE)
            fake_error(l, i, "WRONGTYPE Operation against a key");
        else if (strcmp(l->cmd[i].op, "ask") == 0)
            fake_answer(l, i, (long long[]){1, 0, 0}, 3);
        else if (strcmp(l->cmd[i].op, "back") == 0)
            fake_answer(l, i, (long long[]){1, t_us, 0}, 3);
        else
            l->cmd[i].live = 0; /* reports */
        return 1;
    }
    if (l->beat.live) {
        fake_beat(l, t_us, 1);
        return 1;
    }
    return 0;
}

/* Found by the read review: reservations refused while asks are granted,
 * a send every 50 ms for 5 s. An answered ask reset the wait before the
 * rejoin, so it stayed at 100 ms: 21 cut-offs (and 60 log lines). Cut-offs
 * count in a row while each came within SHAPER_CUTOFF_MAX_MS of sharing:
 * 100 + 200 + ... ms, 6 or so in 5 s. */
START_TEST(reservations_failing_while_asks_work_back_off_too)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 20000);
    shaper_link_changed(s);
    advance(s, 0);
    fake_beat(&l, 7000000, 1);
    static struct sink k[100];
    memset(k, 0, sizeof(k));
    int nk = 0;
    for (double t = 1; t <= 5000; t += 1) {
        advance(s, t);
        if ((int)t % 50 == 0 && nk < 100)
            submit(s, &k[nk++]); /* refused or queued */
        for (int j = 0;
             j < 10 && answer_but_reserves(&l, 7000000 + (long long)(t * 1000));
             j++)
            ;
        fake_compact(&l);
    }
    struct shaper_stats st;
    shaper_get_stats(s, &st);
    shaper_free(s);
    ck_assert_msg(st.cutoffs <= 8, "%llu cut-offs in 5 s",
                  (unsigned long long)st.cutoffs);
}
END_TEST

/* Found by the read review: with the guard off (rate + burst - 1 past
 * the guard's size) there is no presence, so no one counts the instance
 * alive: a reservation's error must not cut it off (its quiet would
 * protect nothing and its rejoin, with no heartbeat, would never end). */
START_TEST(without_presence_an_error_reply_only_takes_a_local_slot)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5000, 1, 500);
    shaper_link_changed(s);
    advance(s, 0);
    struct sink k[2] = {{0}};
    now_ms = 10;
    ck_assert_int_eq(submit(s, &k[0]), 0);
    fake_error(&l, l.n - 1, "OOM command not allowed");
    advance(s, 20);
    now_ms = 30;
    ck_assert_int_eq(submit(s, &k[1]), 0);
    if (l.n > 0 && l.cmd[l.n - 1].live &&
        l.cmd[l.n - 1].script == RS_RL_RESERVE)
        fake_answer(&l, l.n - 1, (long long[]){1, 0, 0}, 3);
    advance(s, 3000);
    struct shaper_stats st;
    shaper_get_stats(s, &st);
    shaper_free(s);
    ck_assert_int_eq(k[0].handed, 1);
    ck_assert_int_eq(k[1].handed, 1);
    ck_assert_int_eq(st.cutoffs, 0);
}
END_TEST

/* Found by the read review: after cut-offs in a row (asks refused) the
 * wait before the rejoin reached 3.2 s; a real drop and reconnect then
 * still waited it out ("back" 3.2 s after the reconnect, 34 rejoin steps
 * meanwhile). A link that comes back rejoins at once. */
START_TEST(a_real_drop_after_cut_offs_rejoins_at_once)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 20000);
    shaper_link_changed(s);
    advance(s, 0);
    fake_beat(&l, 7000000, 1);
    static struct sink k[8];
    memset(k, 0, sizeof(k));
    queue_n(&l, s, k, 8);
    int asks = 0;
    struct shaper_stats st = {0};
    double t = 80;
    for (; t <= 20000 && st.cutoffs < 6; t += 1) {
        advance(s, t);
        fake_compact(&l);
        if (l.n < 60)
            answer_but_asks(&l, 7000000 + (long long)(t * 1000), &asks);
        shaper_get_stats(s, &st);
    }
    ck_assert_uint_ge(st.cutoffs, 6);
    link_flip(&l, s, 0);
    for (int i = 0; i < l.n; i++)
        if (l.cmd[i].live)
            fake_drop(&l, i);
    advance(s, t + 50);
    link_flip(&l, s, 1);
    double back_at = -1;
    for (double u = t + 50; u <= t + 8000 && back_at < 0; u += 1) {
        advance(s, u);
        fake_compact(&l);
        int back = last_op(&l, "back");
        if (back >= 0 && l.cmd[back].live)
            back_at = u;
        else if (l.beat.live)
            fake_beat(&l, 7000000 + (long long)(u * 1000), 1);
    }
    shaper_free(s);
    ck_assert_msg(back_at >= 0 && back_at - (t + 50) < 300,
                  "back %.0f ms after the reconnect", back_at - (t + 50));
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("shaper_review");
    TCase *tc = tcase_create("odd_links");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_grant_held_across_a_link_drop_is_not_used_after_it);
    tcase_add_test(tc, an_ask_lost_at_a_drop_is_asked_again_once_back);
    tcase_add_test(tc, an_ask_lost_in_a_flap_leaves_no_pass_behind);
    tcase_add_test(tc, replies_of_the_wrong_type_answer_each_item_once);
    tcase_add_test(tc, a_reservation_answered_after_a_flap_is_handed_over_once);
    tcase_add_test(tc, an_error_reply_keeps_the_quiet_of_a_drop);
    tcase_add_test(tc, an_error_reply_to_an_ask_keeps_the_quiet_of_a_drop);
    tcase_add_test(tc, a_grant_held_at_a_cut_off_is_given_back);
    tcase_add_test(tc, a_second_cut_off_after_a_rejoin_takes_the_later_quiet);
    tcase_add_test(
        tc, a_grant_answered_after_a_cut_off_is_not_used_after_the_rejoin);
    tcase_add_test(tc,
                   errors_timeouts_and_drops_interleaved_answer_each_item_once);
    tcase_add_test(tc, reservations_failing_while_asks_work_back_off_too);
    tcase_add_test(tc, without_presence_an_error_reply_only_takes_a_local_slot);
    tcase_add_test(tc, a_real_drop_after_cut_offs_rejoins_at_once);
    /* found by review 10b, fixed (cut_off()'s wait before the rejoin) */
    tcase_add_test(tc, asks_failing_while_the_rejoin_succeeds_do_not_spin);
    tcase_add_test(tc,
                   asks_failing_while_the_rejoin_succeeds_still_send_the_share);
    suite_add_tcase(s, tc);
    return s;
}
