/* shaper_in_real_time.c - the shaper (shaper.c) on a real event loop and
 * the real clock: handing over is not leaving. Its logic, with the time
 * injected, is unit-tested in tests/unit/check_shaper.c. */
#include <check.h>
#include <event2/event.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "harness.h"
#include "shaper.h"
#include "clock.h"

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
    Suite *s = suite_create("shaper_in_real_time");
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
    return harness_run_suite(shaper_suite());
}
