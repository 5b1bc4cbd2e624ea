/* check_shaper.c - the pure parts of rate shaping that issue 8 added
 * (the on-the-wire guard, ending a pause, reading Retry-After), then the
 * shaper on a real event loop: handing over is not leaving. */
#include <check.h>
#include <event2/event.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "ratelimit.h"
#include "shaper.h"
#include "clock.h"

#define W 1005.0

/* ---- rl_guard ---- */

START_TEST(guard_off_never_holds)
{
    struct rl_guard g;
    rl_guard_init(&g, 0, W);
    for (int i = 0; i < 100; i++) {
        rl_guard_handed(&g);
        ck_assert(rl_guard_until(&g) == -INFINITY);
    }
    rl_guard_left(&g, 5);
    ck_assert(rl_guard_until(&g) == -INFINITY);
    rl_guard_free(&g);
}
END_TEST

START_TEST(guard_counts_departures_and_those_on_their_way)
{
    struct rl_guard g;
    rl_guard_init(&g, 3, W);
    ck_assert(rl_guard_until(&g) == -INFINITY);
    rl_guard_handed(&g);
    rl_guard_handed(&g);
    ck_assert(rl_guard_until(&g) == -INFINITY); /* 2 on the way, room 1 */
    rl_guard_handed(&g);
    ck_assert(rl_guard_until(&g) == INFINITY); /* only an end frees room */
    rl_guard_left(&g, 0);
    rl_guard_left(&g, 10);
    /* one on its way: the 2nd most recent departure sets the time */
    ck_assert_double_eq(rl_guard_until(&g), 0 + W);
    rl_guard_left(&g, 20);
    ck_assert_double_eq(rl_guard_until(&g), 0 + W);
    rl_guard_handed(&g);
    ck_assert_double_eq(rl_guard_until(&g), 10 + W);
    rl_guard_dropped(&g); /* ended without leaving: no departure */
    ck_assert_double_eq(rl_guard_until(&g), 0 + W);
    ck_assert_uint_eq(g.pending, 0);
    rl_guard_dropped(&g); /* never below zero */
    ck_assert_uint_eq(g.pending, 0);
    rl_guard_left(&g, 2000); /* the ring moves on: 10, 20, 2000 */
    ck_assert_double_eq(rl_guard_until(&g), 10 + W);
    rl_guard_free(&g);
}
END_TEST

START_TEST(guard_resize_keeps_the_newest_and_the_pending)
{
    struct rl_guard g;
    rl_guard_init(&g, 3, W);
    rl_guard_left(&g, 0);
    rl_guard_left(&g, 10);
    rl_guard_left(&g, 20);
    rl_guard_handed(&g);
    rl_guard_resize(&g, 2);
    ck_assert_uint_eq(g.pending, 1);
    ck_assert_double_eq(rl_guard_until(&g), 20 + W); /* keeps 10, 20 */
    rl_guard_dropped(&g);
    ck_assert_double_eq(rl_guard_until(&g), 10 + W);
    rl_guard_resize(&g, 5);
    ck_assert(rl_guard_until(&g) == -INFINITY); /* 2 of 5 */
    rl_guard_left(&g, 30);
    rl_guard_left(&g, 40);
    rl_guard_left(&g, 50);
    ck_assert_double_eq(rl_guard_until(&g), 10 + W);
    rl_guard_resize(&g, 0);
    ck_assert(rl_guard_until(&g) == -INFINITY);
    rl_guard_free(&g);
}
END_TEST

static uint64_t
prng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Whatever the delays between handing over and leaving (bunched releases
 * of parked transfers, drops), no window holds more than n departures. */
START_TEST(guard_window_invariant_under_bunching)
{
    for (size_t n = 1; n <= 7; n++) {
        struct rl_guard g;
        rl_guard_init(&g, n, W);
        uint64_t seed = 0x9e3779b97f4a7c15ULL + n;
        double now = 0, dep[4000], due[64];
        size_t ndep = 0, nway = 0;
        while (now < 60000 && ndep < 4000) {
            now += (double)(prng(&seed) % 150);
            /* a random share of those on their way leaves now, together */
            for (size_t i = 0; i < nway;) {
                if (due[i] <= now) {
                    if (prng(&seed) % 5 == 0)
                        rl_guard_dropped(&g);
                    else {
                        rl_guard_left(&g, now);
                        dep[ndep++] = now;
                    }
                    due[i] = due[--nway];
                } else {
                    i++;
                }
            }
            while (now >= rl_guard_until(&g) && nway < 64) {
                rl_guard_handed(&g);
                due[nway++] = now + (double)(prng(&seed) % 3000);
            }
        }
        for (size_t i = 0; i < ndep; i++) {
            size_t in = 0;
            for (size_t j = i; j < ndep && dep[j] < dep[i] + W; j++)
                in++;
            ck_assert_msg(in <= n, "n=%zu: %zu in a window", n, in);
        }
        ck_assert_msg(ndep > 10, "n=%zu: only %zu departures", n, ndep);
        rl_guard_free(&g);
    }
}
END_TEST

/* ---- rl_restart ---- */

START_TEST(restart_forgets_the_pause_keeps_the_spacing)
{
    struct rl rl;
    double slot;
    rl_init(&rl, 5, 1);
    ck_assert_int_eq(rl_reserve(&rl, 1000, 10000, &slot), 0);
    ck_assert_double_eq(slot, 1000);
    ck_assert_int_eq(rl_reserve(&rl, 1000, 10000, &slot), 0);
    ck_assert_double_eq(slot, 1200);
    /* a long pause moves the pending slot an hour on */
    ck_assert(rl_pause(&rl, 1010, 3600000, 1200) > 0);
    ck_assert_int_eq(rl_reserve(&rl, 1010, 1e12, &slot), 0);
    ck_assert(slot > 3600000);
    /* restart after the slot at 1000 was reached: the next comes at
     * 1000 + T, not now, not after the pause */
    rl_restart(&rl, 1000);
    ck_assert_int_eq(rl_reserve(&rl, 1020, 10000, &slot), 0);
    ck_assert_double_eq(slot, 1200);
    ck_assert_int_eq(rl_reserve(&rl, 1020, 10000, &slot), 0);
    ck_assert_double_eq(slot, 1400);
    ck_assert_double_eq(rl.paused_until, -INFINITY);
    /* with nothing reached yet the first goes at once */
    rl_restart(&rl, -INFINITY);
    ck_assert_int_eq(rl_reserve(&rl, 5000, 0, &slot), 0);
    ck_assert_double_eq(slot, 5000);
}
END_TEST

START_TEST(restart_with_burst_allows_the_burst_again)
{
    struct rl rl;
    double slot;
    rl_init(&rl, 5, 3);
    rl_pause(&rl, 0, 60000, -1);
    rl_restart(&rl, 0);
    /* tat = 200, tau = 400: room at once */
    ck_assert_int_eq(rl_reserve(&rl, 100, 0, &slot), 0);
    ck_assert_double_eq(slot, 100);
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

/* ---- the shaper on an event loop ---- */

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

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Runs the loop until *count reaches want or ms pass. */
static void
run_until(struct event_base *b, const int *count, int want, double ms)
{
    struct event *tick = event_new(b, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 5000};
    event_add(tick, &tv);
    double end = clock_mono_ms() + ms;
    while (*count < want && clock_mono_ms() < end)
        event_base_loop(b, EVLOOP_ONCE);
    event_free(tick);
}

/* Handed over but not left: at most the window's worth is out at once;
 * the next waits, past its slot, until one of them ends. */
START_TEST(shaper_holds_while_the_window_is_on_its_way)
{
    struct event_base *b = event_base_new();
    struct shaper *s = shaper_new(b, 5, 1, 10000);
    struct sink k = {0, 0};
    long retry;
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(shaper_submit(s, &k, go_count, refuse_count, &retry),
                         0);
    ck_assert_int_eq(k.handed, 1);
    run_until(b, &k.handed, 5, 3000);
    ck_assert_int_eq(k.handed, 5);
    /* the 6th slot (+1000 ms) passes: still held, 5 are on their way */
    int never = 0;
    run_until(b, &never, 1, 1300);
    ck_assert_int_eq(k.handed, 5);
    struct shaper_stats st;
    shaper_get_stats(s, &st);
    ck_assert_uint_eq(st.on_the_way, 5);
    ck_assert_uint_eq(st.depth, 1);
    /* one ends without leaving: room for the 6th at once */
    shaper_dropped(s);
    run_until(b, &k.handed, 6, 1000);
    ck_assert_int_eq(k.handed, 6);
    for (int i = 0; i < 6; i++)
        shaper_left(s);
    shaper_get_stats(s, &st);
    ck_assert_uint_eq(st.on_the_way, 0);
    shaper_free(s);
    event_base_free(b);
}
END_TEST

START_TEST(shaper_resume_ends_a_pause_and_cancel_takes_back)
{
    struct event_base *b = event_base_new();
    struct shaper *s = shaper_new(b, 100, 1, 120000);
    struct sink k = {0, 0}, other = {0, 0};
    long retry;
    ck_assert_int_eq(shaper_resume(s), 0); /* no pause: nothing to end */
    ck_assert_int_eq(shaper_submit(s, &k, go_count, refuse_count, &retry), 0);
    ck_assert_int_eq(k.handed, 1);
    shaper_left(s);
    shaper_pause(s, 60000);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(shaper_submit(s, &k, go_count, refuse_count, &retry),
                         0);
    ck_assert_int_eq(shaper_submit(s, &other, go_count, refuse_count, &retry),
                     0);
    ck_assert_int_eq(shaper_cancel(s, &other), 1);
    ck_assert_int_eq(shaper_cancel(s, &other), 0);
    int never = 0;
    run_until(b, &never, 1, 100);
    ck_assert_int_eq(k.handed, 1); /* paused for a minute */
    ck_assert_int_eq(shaper_resume(s), 1);
    double t0 = clock_mono_ms();
    run_until(b, &k.handed, 4, 2000);
    ck_assert_int_eq(k.handed, 4);
    ck_assert_msg(clock_mono_ms() - t0 < 1000, "took %.0f ms", clock_mono_ms() - t0);
    ck_assert_int_eq(other.handed, 0);
    ck_assert_int_eq(k.refused + other.refused, 0);
    for (int i = 0; i < 3; i++)
        shaper_left(s);
    shaper_free(s);
    event_base_free(b);
}
END_TEST

/* Requests stuck on their way (a hanging upstream behind one connection)
 * hold the guard shut: a waiting item is still answered, refused, once
 * it has waited max_queue_ms (or until its slot, if that is later), never
 * held for as long as the upstream hangs. */
START_TEST(shaper_refuses_what_the_guard_holds_beyond_the_queue_bound)
{
    struct event_base *b = event_base_new();
    struct shaper *s = shaper_new(b, 5, 1, 600);
    struct sink k = {0, 0};
    long retry;
    /* the window's worth handed over at once (burst via the slots: 5
     * slots 200 ms apart, the last at +800 > 600 is refused now) */
    int accepted = 0;
    for (int i = 0; i < 5; i++)
        accepted += shaper_submit(s, &k, go_count, refuse_count, &retry) == 0;
    ck_assert_int_eq(accepted, 4); /* slots 0, 200, 400, 600 */
    run_until(b, &k.handed, 4, 2000);
    ck_assert_int_eq(k.handed, 4);
    /* one more on its way fills the guard (n = 5) */
    ck_assert_int_eq(shaper_submit(s, &k, go_count, refuse_count, &retry), 0);
    run_until(b, &k.handed, 5, 2000);
    ck_assert_int_eq(k.handed, 5);
    /* none of the five leaves or ends: the next item's slot comes, the
     * guard stays shut; at its bound it is refused, not held */
    double t0 = clock_mono_ms();
    ck_assert_int_eq(shaper_submit(s, &k, go_count, refuse_count, &retry), 0);
    run_until(b, &k.refused, 1, 3000);
    ck_assert_int_eq(k.refused, 1);
    ck_assert_int_eq(k.handed, 5);
    double took = clock_mono_ms() - t0;
    ck_assert_msg(took >= 590 && took < 900, "refused after %.0f ms", took);
    struct shaper_stats st;
    shaper_get_stats(s, &st);
    ck_assert_uint_eq(st.depth, 0);
    ck_assert_uint_eq(st.on_the_way, 5);
    for (int i = 0; i < 5; i++)
        shaper_dropped(s);
    shaper_free(s);
    event_base_free(b);
}
END_TEST

static Suite *
shaper_suite(void)
{
    Suite *s = suite_create("shaper");
    TCase *tc = tcase_create("pure");
    tcase_add_test(tc, guard_off_never_holds);
    tcase_add_test(tc, guard_counts_departures_and_those_on_their_way);
    tcase_add_test(tc, guard_resize_keeps_the_newest_and_the_pending);
    tcase_add_test(tc, guard_window_invariant_under_bunching);
    tcase_add_test(tc, restart_forgets_the_pause_keeps_the_spacing);
    tcase_add_test(tc, restart_with_burst_allows_the_burst_again);
    tcase_add_test(tc, retry_after_values);
    suite_add_tcase(s, tc);
    TCase *loop = tcase_create("loop");
    tcase_set_timeout(loop, 30);
    tcase_add_test(loop, shaper_holds_while_the_window_is_on_its_way);
    tcase_add_test(loop, shaper_resume_ends_a_pause_and_cancel_takes_back);
    tcase_add_test(loop,
                   shaper_refuses_what_the_guard_holds_beyond_the_queue_bound);
    suite_add_tcase(s, loop);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(shaper_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
