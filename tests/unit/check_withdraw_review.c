/* check_withdraw_review.c - a hostile review of shaper_withdraw() (the
 * sends queued behind a learned refusal, SPEC section 4a) against the
 * promises of SPEC section 6: random submits, withdraws, pauses and
 * resumes on the test's clock, with every hand-over leaving and being
 * answered at once (so the on-the-wire guard never holds: what is seen is
 * the limiter's schedule). Checked: every item ends exactly once (handed,
 * refused or taken back); with burst 1 no two hand-overs closer than 1 /
 * rate; with any burst no more than rate + burst - 1 in any 1 s window;
 * nothing refused before its bound. */
#include "unit.h"
#include <event2/event.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shaper.h"

#define RATE 5.0
#define T (1000.0 / RATE)
#define MAXQ 3000
#define ITEMS 600

static double now_ms;
static struct event_base *base;
static struct shaper *sh;

static double
test_clock(void *ctx)
{
    (void)ctx;
    return now_ms;
}

struct item {
    int ended; /* 1 handed, 2 refused, 3 taken back */
    int withdraw_me;
    double submitted;
};
static struct item items[ITEMS];
static double handed_at[ITEMS];
static int nhanded;

static void
go(void *p)
{
    struct item *it = p;
    ck_assert_int_eq(it->ended, 0);
    it->ended = 1;
    handed_at[nhanded++] = now_ms;
    uint64_t t = shaper_left(sh);
    shaper_answered(sh, t);
}

static void
refuse(void *p, long secs)
{
    struct item *it = p;
    ck_assert_int_eq(it->ended, 0);
    ck_assert_int_ge(secs, 1);
    it->ended = 2;
}

static int
match(void *p, void *arg)
{
    (void)arg;
    return ((struct item *)p)->withdraw_me;
}

static void
back(void *p, void *arg)
{
    (void)arg;
    struct item *it = p;
    ck_assert_int_eq(it->ended, 0);
    it->ended = 3;
}

static void
advance_to(double until)
{
    int guard = 0;
    while (shaper_next_ms(sh) <= until && guard++ < 100000) {
        if (shaper_next_ms(sh) > now_ms)
            now_ms = shaper_next_ms(sh);
        shaper_run(sh);
    }
    now_ms = until;
}

static void
run_once(unsigned seed, long burst)
{
    srand(seed);
    now_ms = 1000;
    nhanded = 0;
    memset(items, 0, sizeof(items));
    base = event_base_new();
    sh = shaper_new(base, RATE, burst, MAXQ);
    shaper_set_clock(sh, test_clock, NULL);
    int next = 0;
    while (next < ITEMS) {
        int op = rand() % 100;
        if (op < 50) { /* one to three arrive */
            for (int k = rand() % 3 + 1; k > 0 && next < ITEMS; k--) {
                struct item *it = &items[next++];
                it->submitted = now_ms;
                long retry;
                if (shaper_submit(sh, it, go, refuse, &retry) != 0) {
                    ck_assert_int_ge(retry, 1);
                    it->ended = 2;
                }
            }
        } else if (op < 62) { /* a refusal learned: some queued go back */
            for (int i = 0; i < next; i++)
                items[i].withdraw_me = items[i].ended == 0 && rand() % 2;
            shaper_withdraw(sh, match, back, NULL);
            for (int i = 0; i < next; i++) {
                if (items[i].withdraw_me)
                    ck_assert_int_eq(items[i].ended, 3);
                items[i].withdraw_me = 0;
            }
        } else if (op < 65) {
            shaper_pause(sh, (double)(rand() % 2000));
        } else if (op < 67) {
            shaper_resume(sh);
        } else {
            advance_to(now_ms + (double)(rand() % 300));
        }
    }
    advance_to(now_ms + 600000);
    for (int i = 0; i < ITEMS; i++)
        ck_assert_msg(items[i].ended != 0, "seed %u: item %d never ended",
                      seed, i);
    /* the schedule's promises, where the upstream sees them */
    double n = RATE + (double)burst - 1;
    for (int i = 0; i < nhanded; i++) {
        int c = 0;
        for (int j = i; j < nhanded && handed_at[j] - handed_at[i] < 1000.0;
             j++)
            c++;
        ck_assert_msg(c <= (int)n,
                      "seed %u burst %ld: %d hand-overs in 1 s from %.1f",
                      seed, burst, c, handed_at[i]);
        if (burst == 1 && i > 0)
            ck_assert_msg(handed_at[i] - handed_at[i - 1] >= T - 1e-6,
                          "seed %u: hand-overs %d and %d %.3f ms apart", seed,
                          i - 1, i, handed_at[i] - handed_at[i - 1]);
    }
    shaper_free(sh);
    event_base_free(base);
}

START_TEST(withdraw_keeps_the_schedule_s_promises)
{
    for (unsigned seed = 1; seed <= 300; seed++)
        for (long burst = 1; burst <= 3; burst++)
            run_once(seed * 7919u + (unsigned)burst, burst);
}
END_TEST

Suite *
unit_suite(void)
{
    Suite *s = suite_create("withdraw_review");
    TCase *tc = tcase_create("random");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, withdraw_keeps_the_schedule_s_promises);
    suite_add_tcase(s, tc);
    return s;
}
