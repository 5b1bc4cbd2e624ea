/* check_shaper.c - unit tests for shaper.c: the queue, the on-the-wire
 * guard, pauses and deadlines driven with injected time (the shaper's
 * clock is the test's, and the test plays its timer: no event loop runs,
 * nothing sleeps), and reading Retry-After. The same shaper on a real
 * loop and clock: tests/integration/shaper_in_real_time.c. */
#include "unit.h"
#include <event2/event.h>
#include <math.h>
#include <stddef.h>

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

#include "redis_scripts.h"
#include "shaper.h"

/* how long an unanswered departure holds its place in the guard */
#define W (SHAPER_GUARD_WINDOW_MS + SHAPER_GUARD_CAP_MS)
/* how long past its bound the guard may hold an item before it is
 * refused */
#define G(max_queue_ms) SHAPER_GUARD_GRACE_MS(max_queue_ms)

/* ---- a shaper on the test's clock ---- */

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

static struct shaper *
shaper_at(double rate, long burst, long long max_queue_ms)
{
    struct shaper *s = shaper_new(base, rate, burst, max_queue_ms);
    shaper_set_clock(s, test_clock, NULL);
    return s;
}

struct sink {
    int handed;
    int refused;
    long last_retry_s; /* of the latest refusal */
};

static void
go_count(void *item)
{
    ((struct sink *)item)->handed++;
}

static void
refuse_count(void *item, long secs)
{
    struct sink *k = item;
    k->refused++;
    k->last_retry_s = secs;
}

/* 0 when accepted (handed over now or waiting), -1 when refused now. */
static int
submit(struct shaper *s, struct sink *k, long *retry_s)
{
    long r = 0;
    int rc = shaper_submit(s, k, go_count, refuse_count, &r);
    if (retry_s != NULL)
        *retry_s = r;
    return rc;
}

/* Plays the timer: moves the clock to each time it would fire, up to
 * until, and runs it there; the clock ends at until. */
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

static struct shaper_stats
stats(const struct shaper *s)
{
    struct shaper_stats st;
    shaper_get_stats(s, &st);
    return st;
}

/* ---- the queue ---- */

START_TEST(rate_zero_hands_everything_over_at_once)
{
    struct shaper *s = shaper_at(0, 1, 1000);
    struct sink k = {0};
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(submit(s, &k, NULL), 0);
    ck_assert_int_eq(k.handed, 100);
    ck_assert(shaper_next_ms(s) == INFINITY);
    shaper_pause(s, 60000); /* off: nothing to pause */
    ck_assert_int_eq(submit(s, &k, NULL), 0);
    ck_assert_int_eq(k.handed, 101);
    ck_assert_uint_eq(stats(s).waited, 0);
    ck_assert_uint_eq(stats(s).pauses, 0);
    for (int i = 0; i < 101; i++)
        shaper_left(s);
    shaper_free(s);
}
END_TEST

START_TEST(slots_are_spaced_and_the_timer_fires_at_each)
{
    struct shaper *s = shaper_at(5, 1, 10000);
    struct sink k = {0};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(submit(s, &k, NULL), 0);
    ck_assert_int_eq(k.handed, 1); /* its slot is now */
    ck_assert_double_eq(shaper_next_ms(s), 200);
    advance(s, 199.9);
    ck_assert_int_eq(k.handed, 1);
    advance(s, 200);
    ck_assert_int_eq(k.handed, 2);
    ck_assert_double_eq(shaper_next_ms(s), 400);
    advance(s, 1000);
    ck_assert_int_eq(k.handed, 3);
    ck_assert(shaper_next_ms(s) == INFINITY);
    struct shaper_stats st = stats(s);
    ck_assert_uint_eq(st.submitted, 3);
    ck_assert_uint_eq(st.waited, 2);
    ck_assert_uint_eq(st.depth, 0);
    ck_assert_double_eq(st.wait_ms_total, 600);
    ck_assert_double_eq(st.wait_ms_max, 400);
    for (int i = 0; i < 3; i++)
        shaper_left(s);
    shaper_free(s);
}
END_TEST

START_TEST(a_slot_beyond_the_bound_is_refused_in_whole_seconds)
{
    struct shaper *s = shaper_at(0.25, 1, 2500); /* a slot every 4 s */
    struct sink k = {0};
    long retry = 0;
    ck_assert_int_eq(submit(s, &k, &retry), 0);
    ck_assert_int_eq(k.handed, 1);
    shaper_left(s); /* the guard (n = 1) is free again */
    /* the next slot, 4000, is 1500 ms beyond the bound: 2 s */
    ck_assert_int_eq(submit(s, &k, &retry), -1);
    ck_assert_int_eq(retry, 2);
    ck_assert_uint_eq(stats(s).refused, 1);
    ck_assert_int_eq(k.refused, 0); /* refused now, not called back */
    /* nothing was consumed: at 3000 the same slot is within the bound */
    now_ms = 3000;
    ck_assert_int_eq(submit(s, &k, &retry), 0);
    ck_assert_double_eq(shaper_next_ms(s), 4000);
    advance(s, 4000);
    ck_assert_int_eq(k.handed, 2);
    shaper_left(s);
    shaper_free(s);
}
END_TEST

START_TEST(cancel_takes_a_waiting_item_back_and_sets_the_timer_for_the_next)
{
    struct shaper *s = shaper_at(5, 1, 10000);
    struct sink a = {0}, b = {0}, c = {0};
    ck_assert_int_eq(submit(s, &a, NULL), 0);
    ck_assert_int_eq(submit(s, &b, NULL), 0);
    ck_assert_int_eq(submit(s, &c, NULL), 0);
    ck_assert_double_eq(shaper_next_ms(s), 200);
    ck_assert_int_eq(shaper_cancel(s, &a), 0); /* handed over: not waiting */
    ck_assert_int_eq(shaper_cancel(s, &b), 1);
    ck_assert_int_eq(shaper_cancel(s, &b), 0);
    ck_assert_double_eq(shaper_next_ms(s), 400); /* its slot stays used */
    ck_assert_uint_eq(stats(s).depth, 1);
    ck_assert_int_eq(shaper_cancel(s, &c), 1);
    ck_assert(shaper_next_ms(s) == INFINITY);
    advance(s, 5000);
    ck_assert_int_eq(b.handed + c.handed + b.refused + c.refused, 0);
    shaper_left(s);
    shaper_free(s);
}
END_TEST

/* withdraw: the sinks whose "off" mark is set */
struct marked_sink {
    struct sink k;
    int off;
};

static int
match_off(void *item, void *arg)
{
    (void)arg;
    return ((struct marked_sink *)item)->off;
}

static int backs;

static void
back_count(void *item, void *arg)
{
    (void)arg;
    ck_assert_int_eq(((struct marked_sink *)item)->off, 1);
    backs++;
}

START_TEST(withdraw_moves_the_rest_up_into_the_freed_slots)
{
    struct shaper *s = shaper_at(5, 1, 10000);
    struct marked_sink a = {{0}, 0}, m[6], x = {{0}, 0};
    backs = 0;
    ck_assert_int_eq(shaper_submit(s, &a, go_count, refuse_count, NULL), 0);
    ck_assert_int_eq(a.k.handed, 1);
    /* slots 200 .. 1200: off, on, off, on, off, on */
    for (int i = 0; i < 6; i++) {
        m[i] = (struct marked_sink){{0}, i % 2 == 0};
        ck_assert_int_eq(
            shaper_submit(s, &m[i], go_count, refuse_count, NULL), 0);
    }
    ck_assert_uint_eq(stats(s).depth, 6);
    ck_assert_uint_eq(shaper_withdraw(s, match_off, back_count, NULL), 3);
    ck_assert_int_eq(backs, 3);
    ck_assert_uint_eq(stats(s).depth, 3);
    for (int i = 0; i < 6; i += 2)
        m[i].off = 0; /* taken: not to be matched again */
    /* nothing matches: nothing moves */
    ck_assert_uint_eq(shaper_withdraw(s, match_off, back_count, NULL), 0);
    ck_assert_int_eq(backs, 3);
    /* the three left take the first three slots: 200, 400, 600 */
    ck_assert_double_eq(shaper_next_ms(s), 200);
    advance(s, 200);
    ck_assert_int_eq(m[1].k.handed, 1);
    advance(s, 400);
    ck_assert_int_eq(m[3].k.handed, 1);
    ck_assert_int_eq(m[5].k.handed, 0);
    advance(s, 600);
    ck_assert_int_eq(m[5].k.handed, 1);
    /* and the slots freed at the end were given back: the next is 800,
     * not 1400 */
    ck_assert_int_eq(shaper_submit(s, &x, go_count, refuse_count, NULL), 0);
    ck_assert_double_eq(shaper_next_ms(s), 800);
    advance(s, 800);
    ck_assert_int_eq(x.k.handed, 1);
    for (int i = 0; i < 6; i += 2)
        ck_assert_int_eq(m[i].k.handed + m[i].k.refused, 0);
    for (int i = 0; i < 5; i++)
        shaper_left(s);
    shaper_free(s);
}
END_TEST

/* Taking back every waiting item leaves nothing armed; a pause still
 * holds the items left (a withdraw does not end it). */
START_TEST(withdraw_keeps_a_pause)
{
    struct shaper *s = shaper_at(5, 1, 60000);
    struct marked_sink a = {{0}, 0}, m[4];
    backs = 0;
    ck_assert_int_eq(shaper_submit(s, &a, go_count, refuse_count, NULL), 0);
    shaper_pause(s, 10000); /* nothing waits: no slot before 10000 */
    for (int i = 0; i < 4; i++) {
        m[i] = (struct marked_sink){{0}, i < 2};
        ck_assert_int_eq(
            shaper_submit(s, &m[i], go_count, refuse_count, NULL), 0);
    }
    ck_assert_double_eq(shaper_next_ms(s), 10000);
    ck_assert_uint_eq(shaper_withdraw(s, match_off, back_count, NULL), 2);
    ck_assert_double_eq(shaper_next_ms(s), 10000); /* still paused */
    advance(s, 9999);
    ck_assert_int_eq(m[2].k.handed + m[3].k.handed, 0);
    advance(s, 10200);
    ck_assert_int_eq(m[2].k.handed + m[3].k.handed, 2);
    m[2].off = m[3].off = 0;
    ck_assert_uint_eq(shaper_withdraw(s, match_off, back_count, NULL), 0);
    ck_assert(shaper_next_ms(s) == INFINITY);
    for (int i = 0; i < 3; i++)
        shaper_left(s);
    shaper_free(s);
}
END_TEST

/* ---- the on-the-wire guard (the promise is about departures) ---- */

/* Handed over, not left: at most the window's worth (rate + burst - 1 =
 * 5) is on its way at once; the next waits past its slot until one of
 * them ends. */
START_TEST(the_guard_holds_while_the_window_is_on_its_way)
{
    struct shaper *s = shaper_at(5, 1, 10000);
    struct sink k = {0};
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(submit(s, &k, NULL), 0);
    advance(s, 800); /* slots 0, 200 .. 800 */
    ck_assert_int_eq(k.handed, 5);
    /* the 6th slot (1000) passes: held, the timer only for its bound */
    ck_assert_double_eq(shaper_next_ms(s), 10000 + G(10000));
    advance(s, 1300);
    ck_assert_int_eq(k.handed, 5);
    ck_assert_uint_eq(stats(s).on_the_way, 5);
    ck_assert_uint_eq(stats(s).depth, 1);
    /* one ends without leaving: room for the 6th at once */
    shaper_dropped(s);
    ck_assert(shaper_next_ms(s) <= now_ms);
    advance(s, 1300);
    ck_assert_int_eq(k.handed, 6);
    ck_assert_double_eq(stats(s).wait_ms_max, 1300);
    for (int i = 0; i < 5; i++)
        shaper_left(s);
    ck_assert_uint_eq(stats(s).on_the_way, 0);
    shaper_free(s);
}
END_TEST

/* With nothing waiting and its slot long past, an item still waits while
 * the window is on its way; one departure then counts for a window,
 * since the four still on their way may leave at any moment. */
START_TEST(an_idle_queue_still_waits_for_the_guard)
{
    struct shaper *s = shaper_at(5, 1, 10000);
    struct sink k = {0};
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(submit(s, &k, NULL), 0);
    advance(s, 2000);
    ck_assert_int_eq(k.handed, 5);
    ck_assert_int_eq(submit(s, &k, NULL), 0); /* slot 2000: now */
    ck_assert_int_eq(k.handed, 5);
    ck_assert_uint_eq(stats(s).depth, 1);
    ck_assert_double_eq(shaper_next_ms(s), 2000 + 10000 + G(10000));
    now_ms = 2100;
    shaper_left(s);
    ck_assert_double_eq(shaper_next_ms(s), 2100 + W);
    advance(s, 2100 + W - 1);
    ck_assert_int_eq(k.handed, 5);
    advance(s, 2100 + W);
    ck_assert_int_eq(k.handed, 6);
    for (int i = 0; i < 5; i++)
        shaper_left(s);
    shaper_free(s);
}
END_TEST

/* Five that left together (held for a connection, then released at once)
 * fill the window from that moment: the next five wait for its end, W
 * ms later, whatever their slots say; then they may go together, since
 * none of them has left yet. */
START_TEST(departures_that_bunch_hold_the_next_for_a_window)
{
    struct shaper *s = shaper_at(5, 1, 10000);
    struct sink k = {0};
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(submit(s, &k, NULL), 0);
    advance(s, 800);
    ck_assert_int_eq(k.handed, 5);
    now_ms = 900;
    for (int i = 0; i < 5; i++)
        shaper_left(s);
    ck_assert_double_eq(shaper_next_ms(s), 900 + W);
    advance(s, 900 + W - 1);
    ck_assert_int_eq(k.handed, 5); /* slots 1000 .. 1800 passed */
    advance(s, 900 + W);
    ck_assert_int_eq(k.handed, 10);
    for (int i = 0; i < 5; i++)
        shaper_left(s); /* all five at 900 + W */
    /* the next slot is 2000, the window of those five ends at 900 + 2W */
    ck_assert_int_eq(submit(s, &k, NULL), 0);
    ck_assert_double_eq(shaper_next_ms(s), 900 + 2 * W);
    advance(s, 900 + 2 * W - 1);
    ck_assert_int_eq(k.handed, 10);
    advance(s, 900 + 2 * W);
    ck_assert_int_eq(k.handed, 11);
    ck_assert_int_eq(k.refused, 0);
    shaper_left(s);
    shaper_free(s);
}
END_TEST

/* Requests stuck on their way hold the guard shut: a waiting item is
 * still answered, refused, once it has waited max_queue_ms (or until its
 * slot, if that is later), never held for as long as they hang. */
START_TEST(what_the_guard_holds_is_refused_at_its_bound)
{
    struct shaper *s = shaper_at(5, 1, 600);
    struct sink k = {0};
    long retry = 0;
    int accepted = 0;
    for (int i = 0; i < 5; i++)
        accepted += submit(s, &k, &retry) == 0;
    ck_assert_int_eq(accepted, 4); /* slots 0 .. 600; 800 is too far */
    ck_assert_int_eq(retry, 1);
    advance(s, 600);
    ck_assert_int_eq(k.handed, 4);
    ck_assert_int_eq(submit(s, &k, NULL), 0); /* slot 800 */
    advance(s, 800);
    /* the guard is full */
    ck_assert_int_eq(k.handed, 5);
    ck_assert_int_eq(submit(s, &k, NULL), 0); /* slot 1000, bound 1400 */
    ck_assert_double_eq(shaper_next_ms(s), 1400 + G(600));
    advance(s, 1400 + G(600) - 0.1);
    ck_assert_int_eq(k.refused, 0);
    advance(s, 1400 + G(600));
    ck_assert_int_eq(k.refused, 1);
    ck_assert_int_eq(k.last_retry_s, 1);
    ck_assert_int_eq(k.handed, 5);
    struct shaper_stats st = stats(s);
    ck_assert_uint_eq(st.depth, 0);
    ck_assert_uint_eq(st.refused, 2);
    ck_assert_uint_eq(st.on_the_way, 5);
    ck_assert(shaper_next_ms(s) == INFINITY);
    for (int i = 0; i < 5; i++)
        shaper_dropped(s);
    shaper_free(s);
}
END_TEST

/* ---- pauses ---- */

/* A 429 moves the waiting items back, keeping their spacing; one now
 * beyond the bound is refused and its slot given back; the others'
 * bounds follow their slots (none is refused before its slot). */
START_TEST(a_pause_moves_the_queue_and_the_bounds_follow_the_slots)
{
    struct shaper *s = shaper_at(5, 1, 1000);
    struct sink k = {0}, last = {0};
    ck_assert_int_eq(submit(s, &k, NULL), 0);    /* slot 0 */
    ck_assert_int_eq(submit(s, &k, NULL), 0);    /* slot 200, bound 1000 */
    ck_assert_int_eq(submit(s, &last, NULL), 0); /* slot 400 */
    now_ms = 100;
    shaper_pause(s, 1000); /* no slot before 1100: +900 */
    ck_assert_uint_eq(stats(s).pauses, 1);
    ck_assert_int_eq(last.refused, 1); /* 1300 is 1200 ms away */
    ck_assert_int_eq(last.last_retry_s, 1);
    ck_assert_double_eq(shaper_next_ms(s), 1100);
    advance(s, 1099);
    ck_assert_int_eq(k.handed + k.refused, 1); /* not refused at 1000 */
    advance(s, 1100);
    ck_assert_int_eq(k.handed, 2);
    /* the slot given back is the next one */
    ck_assert_int_eq(submit(s, &k, NULL), 0);
    ck_assert_double_eq(shaper_next_ms(s), 1300);
    advance(s, 1300);
    ck_assert_int_eq(k.handed, 3);
    for (int i = 0; i < 3; i++)
        shaper_left(s);
    shaper_free(s);
}
END_TEST

START_TEST(resume_ends_a_pause_at_the_normal_spacing)
{
    struct shaper *s = shaper_at(100, 1, 120000);
    struct sink k = {0}, other = {0};
    ck_assert_int_eq(shaper_resume(s), 0); /* no pause: nothing to end */
    ck_assert_int_eq(submit(s, &k, NULL), 0);
    ck_assert_int_eq(k.handed, 1);
    shaper_left(s);
    shaper_pause(s, 60000); /* nothing waits: no slot before 60000 */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(submit(s, &k, NULL), 0);
    ck_assert_int_eq(submit(s, &other, NULL), 0);
    ck_assert_int_eq(shaper_cancel(s, &other), 1);
    ck_assert_double_eq(shaper_next_ms(s), 60000);
    now_ms = 50;
    ck_assert_int_eq(shaper_resume(s), 1);
    /* from now, T = 10 ms apart after the last slot reached (0) */
    ck_assert_double_eq(shaper_next_ms(s), 50);
    advance(s, 69);
    ck_assert_int_eq(k.handed, 3);
    advance(s, 70);
    ck_assert_int_eq(k.handed, 4);
    ck_assert_int_eq(k.refused + other.handed + other.refused, 0);
    ck_assert_int_eq(shaper_resume(s), 0);
    for (int i = 0; i < 3; i++)
        shaper_left(s);
    shaper_free(s);
}
END_TEST

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
        int argc;
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
    c->argc = argc;
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

static void
fake_fail(struct rlink *l, int i)
{
    struct fake_cmd *c = &l->cmd[i];
    c->live = 0;
    c->cb(c->arg, RLINK_UNAVAILABLE, NULL);
}

/* The link goes down: every command still awaited is answered
 * unavailable (redis_link.h). */
static void
fake_down(struct rlink *l)
{
    l->up = 0;
    for (int i = 0; i < l->n; i++)
        if (l->cmd[i].live)
            fake_fail(l, i);
    if (l->beat.live) {
        l->beat.live = 0;
        l->beat.cb(l->beat.arg, RLINK_UNAVAILABLE, NULL);
    }
}

/* Answers the heartbeat in flight: Redis's time t_us (the next stamp),
 * accepted or not. */
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

/* A reservation is answered later: granted, it waits for its slot and
 * the shared guard's grant; refused, refuse() tells the caller (never
 * within submit); cancelled while awaited, its command is cancelled. */
START_TEST(shared_reservations_are_answered_from_the_loop)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 10000);
    struct sink a = {0}, b = {0}, c = {0};
    ck_assert_int_eq(submit(s, &a, NULL), 0);
    ck_assert_int_eq(submit(s, &b, NULL), 0);
    ck_assert_int_eq(submit(s, &c, NULL), 0);
    ck_assert_int_eq(l.n, 3);
    ck_assert_uint_eq(stats(s).reserving, 3);
    ck_assert_int_eq(a.handed + a.refused + b.refused, 0);
    /* c is cancelled while its reservation is awaited */
    ck_assert_int_eq(shaper_cancel(s, &c), 1);
    ck_assert_int_eq(l.cancelled, 1);
    ck_assert_int_eq(shaper_cancel(s, &c), 0);
    /* b is refused by Redis: 1500 ms to wait, 2 s for the header */
    fake_answer(&l, 1, (long long[]){0, 1500}, 2);
    ck_assert_int_eq(b.refused, 1);
    ck_assert_int_eq(b.last_retry_s, 2);
    /* a is granted now: the shared guard is asked, and grants */
    fake_answer(&l, 0, (long long[]){1, 0, 0}, 3);
    ck_assert_int_eq(a.handed, 0);
    advance(s, 0);
    ck_assert_int_eq(l.n, 4);
    ck_assert_int_eq(l.cmd[3].script, RS_RL_DEPART);
    ck_assert_str_eq(l.cmd[3].op, "ask");
    fake_answer(&l, 3, (long long[]){1, 0, 0}, 3);
    ck_assert_int_eq(a.handed, 1);
    /* its departure and answer are reported */
    uint64_t t = shaper_left(s);
    ck_assert_str_eq(l.cmd[4].op, "left");
    shaper_answered(s, t);
    ck_assert_str_eq(l.cmd[5].op, "done");
    struct shaper_stats st = stats(s);
    ck_assert_uint_eq(st.reserving, 0);
    ck_assert_uint_eq(st.local_slots, 0);
    ck_assert_uint_eq(st.refused, 1);
    shaper_free(s);
}
END_TEST

/* The link down: the instance's own limiter at rate / 3 (one slot per
 * 600 ms at 5/s), refusing at once when the slot is too far, counting its
 * slots; a reservation whose answer is lost is not counted on. Nothing
 * leaves for a window + cap after the link went down (shaper.h). Up
 * again: Redis's schedule once the hold is over. */
START_TEST(shared_degrades_to_the_instance_share)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 1000);
    struct sink k = {0};
    ck_assert_int_eq(submit(s, &k, NULL), 0);
    fake_fail(&l, 0); /* timed out: it may have run; local slot now */
    ck_assert_uint_eq(stats(s).local_slots, 1);
    fake_down(&l); /* the ask for it too */
    advance(s, W - 1);
    ck_assert_int_eq(k.handed, 0);
    advance(s, W);
    ck_assert_int_eq(k.handed, 1);
    shaper_left(s);                           /* the guard: W + cap + window */
    ck_assert_int_eq(submit(s, &k, NULL), 0); /* slot W */
    ck_assert_int_eq(submit(s, &k, NULL), 0); /* W + 600 */
    long retry = 0;
    ck_assert_int_eq(submit(s, &k, &retry), -1); /* W + 1200: too far */
    ck_assert_int_eq(retry, 1);
    ck_assert_int_eq(k.refused, 0); /* said by submit, not refuse() */
    ck_assert_uint_eq(stats(s).local_slots, 3);
    /* the local guard: one per window (5 / 3 rounded down) */
    advance(s, 2 * W - 1);
    ck_assert_int_eq(k.handed, 1);
    advance(s, 2 * W);
    ck_assert_int_eq(k.handed, 2);
    shaper_left(s);
    /* the next, held by the guard to 3 W, is refused at its bound
     * (arrival + max_queue_ms + grace = 2 W) */
    ck_assert_int_eq(k.refused, 1);
    advance(s, 3 * W);
    /* up again: the rejoin, a stamp first (heartbeats stopped while
     * down: only this one) */
    l.up = 1;
    int beats = l.beats;
    shaper_link_changed(s);
    advance(s, now_ms);
    ck_assert_int_eq(l.beats, beats + 1);
    int n = l.n;
    fake_beat(&l, 7000000, 0);
    /* then one "back": the stamp, no departure (the two it made alone
     * are a window old): 5 keys, 7 args */
    ck_assert_int_eq(l.n, n + 1);
    ck_assert_str_eq(l.cmd[n].op, "back");
    ck_assert_int_eq(l.cmd[n].argc, 5 + 7);
    ck_assert_uint_eq(stats(s).mode_changes, 1);
    fake_answer(&l, n, (long long[]){1, 7000100, 0}, 3);
    ck_assert_uint_eq(stats(s).mode_changes, 2);
    /* shared: Redis's schedule */
    int before = l.n;
    ck_assert_int_eq(submit(s, &k, NULL), 0);
    ck_assert_int_eq(l.cmd[before].script, RS_RL_RESERVE);
    ck_assert_uint_eq(stats(s).local_slots, 3);
    shaper_free(s);
    ck_assert_int_ge(l.cancelled, 1); /* the reservation still awaited */
}
END_TEST

/* Down after shared departures: the other instances' departures of the
 * last window are not in the local guard, so nothing leaves for a window
 * + cap from the moment the link is seen down, even where the local
 * guard (its own departure answered at 10: open at 1010) and the local
 * slot (now) would let it go. */
START_TEST(shared_down_waits_a_window_before_leaving_alone)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 10000);
    struct sink a = {0}, b = {0};
    ck_assert_int_eq(submit(s, &a, NULL), 0);
    fake_answer(&l, 0, (long long[]){1, 0, 0}, 3);
    advance(s, 0);
    ck_assert_str_eq(l.cmd[1].op, "ask");
    fake_answer(&l, 1, (long long[]){1, 0, 0}, 3);
    ck_assert_int_eq(a.handed, 1);
    uint64_t t = shaper_left(s);
    now_ms = 10;
    shaper_answered(s, t);
    now_ms = 300;
    fake_down(&l); /* Redis froze: the health check says so */
    ck_assert_int_eq(submit(s, &b, NULL), 0);
    ck_assert_uint_eq(stats(s).local_slots, 1);
    advance(s, 300 + W - 1);
    ck_assert_int_eq(b.handed, 0);
    advance(s, 300 + W);
    ck_assert_int_eq(b.handed, 1);
    ck_assert_uint_eq(stats(s).mode_changes, 1);
    shaper_free(s);
}
END_TEST

/* Down with a stamp 50 ms old (its heartbeat answered at 250): Redis
 * counts it alive until that stamp + SHAPER_ALIVE_MS, so the others
 * leave its share free only from then on, and it sends alone a window +
 * cap after that, not a window + cap after it saw the link down. */
START_TEST(shared_down_waits_for_its_alive_entry_to_go)
{
    struct rlink l = {.up = 1};
    struct shaper *s = shared_at(&l, 5, 1, 10000);
    struct sink b = {0};
    shaper_link_changed(s);
    advance(s, 0);
    ck_assert_int_eq(l.beats, 1); /* sharing: a heartbeat at once */
    now_ms = 250;
    fake_beat(&l, 5000000, 1);
    now_ms = 300;
    fake_down(&l);
    ck_assert_int_eq(submit(s, &b, NULL), 0);
    ck_assert_uint_eq(stats(s).local_slots, 1);
    advance(s, 250 + SHAPER_ALIVE_MS + W - 1);
    ck_assert_int_eq(b.handed, 0);
    advance(s, 250 + SHAPER_ALIVE_MS + W);
    ck_assert_int_eq(b.handed, 1);
    shaper_free(s);
}
END_TEST

/* Up again after running alone: first a stamp, then one "back" telling
 * Redis of its departure of the last window; nothing leaves while the
 * "back" is on its way, new sends take Redis's schedule meanwhile; then
 * it shares (its asks, Redis's slots). */
START_TEST(shared_up_rejoins_telling_what_it_sent_alone)
{
    struct rlink l = {.up = 0};
    struct shaper *s = shared_at(&l, 5, 1, 10000);
    struct sink a = {0}, b = {0};
    ck_assert_int_eq(submit(s, &a, NULL), 0); /* down at the first look */
    advance(s, W);
    ck_assert_int_eq(a.handed, 1);
    shaper_left(s); /* its bound: W + cap, within the window at 1500 */
    now_ms = 1500;
    l.up = 1;
    shaper_link_changed(s);
    advance(s, 1500);
    ck_assert_int_eq(l.beats, 1);
    ck_assert_int_eq(l.n, 0);
    fake_beat(&l, 9000000, 0);
    ck_assert_int_eq(l.n, 1);
    ck_assert_str_eq(l.cmd[0].op, "back");
    ck_assert_int_eq(l.cmd[0].argc, 5 + 7 + 2);
    ck_assert_int_eq(submit(s, &b, NULL), 0);
    ck_assert_int_eq(l.cmd[1].script, RS_RL_RESERVE);
    fake_answer(&l, 1, (long long[]){1, 0, 0}, 3);
    advance(s, 1600);
    ck_assert_int_eq(b.handed, 0);
    ck_assert_int_eq(l.n, 2); /* no ask before the "back" is answered */
    fake_answer(&l, 0, (long long[]){1, 9000100, 0}, 3);
    ck_assert_uint_eq(stats(s).mode_changes, 1);
    advance(s, 1600);
    ck_assert_int_eq(l.n, 3);
    ck_assert_str_eq(l.cmd[2].op, "ask");
    fake_answer(&l, 2, (long long[]){1, 0, 0}, 3);
    ck_assert_int_eq(b.handed, 1);
    ck_assert_uint_eq(stats(s).local_slots, 1);
    shaper_free(s);
}
END_TEST

/* ---- Retry-After ---- */

#define NOW 1767225600 /* 2026-01-01T00:00:00Z, a Thursday */

START_TEST(retry_after_values)
{
    static const struct {
        const char *v;
        double ms;
    } cases[] = {
        {NULL, 1000},
        {"", 1000},
        {"0", 0},
        {"5", 5000},
        {"  7\t", 7000},
        {"120", 60000},       /* capped */
        {"999999999", 60000}, /* capped, not an hour */
        {"99999999999999999999999999", 60000},
        {"-5", 1000},
        {"+5", 1000},
        {"5s", 1000},
        {"1.5", 1000},
        {"soon", 1000},
        {"Thu, 01 Jan 2026 00:00:10 GMT", 10000},
        {"Thursday, 01-Jan-26 00:00:20 GMT", 20000},
        {"Thu Jan  1 00:00:30 2026", 30000},
        {"Thu, 01 Jan 2099 00:00:00 GMT", 60000}, /* capped */
        {"Thu, 01 Jan 2026 00:00:00 GMT", 1000},  /* now: not future */
        {"Wed, 31 Dec 2025 23:59:00 GMT", 1000},  /* past */
        {"Mon, 99 Foo 2026 99:99:99 GMT", 1000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double ms = shaper_retry_after_ms(cases[i].v, NOW, 1000, 60000);
        ck_assert_msg(ms == cases[i].ms, "\"%s\": %g, want %g",
                      cases[i].v ? cases[i].v : "(null)", ms, cases[i].ms);
    }
    /* the cap bounds the default too: max_pause_ms 0 never pauses */
    ck_assert_double_eq(shaper_retry_after_ms("30", NOW, 1000, 0), 0);
    ck_assert_double_eq(shaper_retry_after_ms(NULL, NOW, 1000, 0), 0);
    ck_assert_double_eq(shaper_retry_after_ms(NULL, NOW, 1000, 500), 500);
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("shaper");
    TCase *tc = tcase_create("queue");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, rate_zero_hands_everything_over_at_once);
    tcase_add_test(tc, slots_are_spaced_and_the_timer_fires_at_each);
    tcase_add_test(tc, a_slot_beyond_the_bound_is_refused_in_whole_seconds);
    tcase_add_test(
        tc, cancel_takes_a_waiting_item_back_and_sets_the_timer_for_the_next);
    suite_add_tcase(s, tc);

    tc = tcase_create("guard");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, withdraw_moves_the_rest_up_into_the_freed_slots);
    tcase_add_test(tc, withdraw_keeps_a_pause);
    tcase_add_test(tc, the_guard_holds_while_the_window_is_on_its_way);
    tcase_add_test(tc, an_idle_queue_still_waits_for_the_guard);
    tcase_add_test(tc, departures_that_bunch_hold_the_next_for_a_window);
    tcase_add_test(tc, what_the_guard_holds_is_refused_at_its_bound);
    suite_add_tcase(s, tc);

    tc = tcase_create("pause");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_pause_moves_the_queue_and_the_bounds_follow_the_slots);
    tcase_add_test(tc, resume_ends_a_pause_at_the_normal_spacing);
    suite_add_tcase(s, tc);

    tc = tcase_create("shared");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, shared_reservations_are_answered_from_the_loop);
    tcase_add_test(tc, shared_degrades_to_the_instance_share);
    tcase_add_test(tc, shared_down_waits_a_window_before_leaving_alone);
    tcase_add_test(tc, shared_down_waits_for_its_alive_entry_to_go);
    tcase_add_test(tc, shared_up_rejoins_telling_what_it_sent_alone);
    suite_add_tcase(s, tc);
    tc = tcase_create("retry_after");
    tcase_add_test(tc, retry_after_values);
    suite_add_tcase(s, tc);
    return s;
}
