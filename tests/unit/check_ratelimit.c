/* check_ratelimit.c - unit tests for the GCRA rate limiter (SPEC section
 * 6). Every time is an argument: no clock, no sleeping. */
#include "unit.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

#define NOW0 12345.0  /* an arbitrary origin: slots are relative to it */
#define FOREVER 1e15  /* max_wait that never refuses */
#define EPS 1e-6      /* ms; float noise allowed in slot comparisons */
#define WINDOW 1000.0 /* the upstream's 1-second window, half-open */

static double
reserve(struct rl *rl, double now)
{
    double slot = -1;
    ck_assert_int_eq(rl_reserve(rl, now, FOREVER, &slot), 0);
    return slot;
}

static void
expect_slot(struct rl *rl, double now, double want)
{
    double got = reserve(rl, now);
    ck_assert_msg(fabs(got - want) <= EPS, "slot %.9f, want %.9f", got, want);
}

/* ---- exact slots ---- */

/* n requests at the same instant, burst b: b at once, then T apart. */
static void
check_same_instant(double rate, long burst, int n)
{
    struct rl rl;
    double t = 1000.0 / rate;

    rl_init(&rl, rate, burst);
    for (int k = 0; k < n; k++) {
        double want = NOW0 + (k < burst ? 0 : (k - burst + 1) * t);
        expect_slot(&rl, NOW0, want);
    }
}

START_TEST(test_burst1_rates)
{
    check_same_instant(1, 1, 20);
    check_same_instant(5, 1, 20);
    check_same_instant(100, 1, 200);
    check_same_instant(10000, 1, 2000);
}
END_TEST

START_TEST(test_burst1_exact_values)
{
    struct rl rl;

    rl_init(&rl, 5, 1);
    /* 200 ms is exact in binary: compare with == */
    for (int k = 0; k < 10; k++)
        ck_assert(reserve(&rl, 0) == 200.0 * k);
    rl_init(&rl, 1, 1);
    ck_assert(reserve(&rl, 7) == 7);
    ck_assert(reserve(&rl, 7) == 1007);
    ck_assert(reserve(&rl, 500) == 2007); /* later arrival, same queue */
}
END_TEST

START_TEST(test_bursts)
{
    check_same_instant(5, 2, 20);
    check_same_instant(5, 5, 30);
    check_same_instant(10, 2, 30);
    check_same_instant(100, 5, 300);
}
END_TEST

START_TEST(test_first_goes_at_once)
{
    static const double nows[] = {0, -1e9, 1, 1.7e12, 0.25};
    for (size_t i = 0; i < sizeof(nows) / sizeof(nows[0]); i++) {
        struct rl rl;
        double slot = -1;
        rl_init(&rl, 0.001, 1); /* T = 1000 s */
        ck_assert_int_eq(rl_reserve(&rl, nows[i], 0, &slot), 0);
        ck_assert(slot == nows[i]);
    }
}
END_TEST

START_TEST(test_arrivals_spaced_out)
{
    struct rl rl;

    /* arrivals slower than the rate never wait */
    rl_init(&rl, 5, 1);
    for (int k = 0; k < 50; k++)
        ck_assert(reserve(&rl, 250.0 * k) == 250.0 * k);
    /* exactly at the rate: never wait either */
    rl_init(&rl, 5, 1);
    for (int k = 0; k < 50; k++)
        ck_assert(reserve(&rl, 200.0 * k) == 200.0 * k);
}
END_TEST

/* ---- the 1-second window invariant, by brute force ---- */

struct pair {
    double rate;
    long burst;
};

static const struct pair pairs[] = {
    {10, 2},  {5, 1},    {1, 1},   {3, 1},     {3, 4},   {7, 3},
    {100, 1}, {100, 10}, {2.5, 2}, {1000, 50}, {0.5, 3},
};
#define NPAIRS ((int)(sizeof(pairs) / sizeof(pairs[0])))

/* Most slots in any half-open window [s, s + 1000). Slots come sorted; the
 * fullest window can always be slid to start at a slot. */
static int
max_in_window(const double *slots, int n)
{
    int best = 0;
    for (int i = 0; i < n; i++) {
        int c = 0;
        for (int j = i; j < n && slots[j] < slots[i] + WINDOW - EPS; j++)
            c++;
        if (c > best)
            best = c;
    }
    return best;
}

static unsigned
lcg(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

#define NRES 1000

/* static: a failed assertion longjmps out of the test (CK_FORK=no) */
static double sched[NRES];

/* rate + b - 1, with a fractional rate rounded up: slots T apart fill a
 * half-open window of 1000 ms ceil(1000 / T) times. */
static int
window_bound(const struct pair *p)
{
    return (int)ceil(p->rate) + (int)p->burst - 1;
}

/* pattern 0: all at once; 1: bursts of 3b every 2 s; 2: random gaps with
 * a bounded queue (some refusals). */
static int
run_pattern(const struct pair *p, int pattern, double *out)
{
    struct rl rl;
    unsigned seed = 42;
    double now = NOW0, t = 1000.0 / p->rate;
    int n = 0, tries = 0;

    rl_init(&rl, p->rate, p->burst);
    while (n < NRES) {
        double slot = -1, max_wait = FOREVER;
        ck_assert_int_lt(++tries, 100 * NRES);
        switch (pattern) {
        case 1:
            if (n % (3 * p->burst) == 0 && n > 0)
                now += 2000;
            break;
        case 2:
            now += t * (double)(lcg(&seed) % 300) / 100.0;
            max_wait = 1500;
            break;
        }
        if (rl_reserve(&rl, now, max_wait, &slot) < 0)
            continue;
        ck_assert(slot >= now);
        if (n > 0)
            ck_assert(slot >= out[n - 1]);
        out[n++] = slot;
    }
    return max_in_window(out, n);
}

START_TEST(test_window_invariant)
{
    const struct pair *p = &pairs[_i];
    int bound = window_bound(p);

    for (int pattern = 0; pattern < 3; pattern++) {
        int m = run_pattern(p, pattern, sched);
        ck_assert_msg(m <= bound, "rate %g burst %ld pattern %d: %d > %d",
                      p->rate, p->burst, pattern, m, bound);
        /* all at once fills the bound exactly, given enough requests */
        if (pattern == 0 && bound < NRES)
            ck_assert_int_eq(m, bound);
    }
}
END_TEST

START_TEST(test_window_named_cases)
{
    static const struct pair named[] = {{10, 2}, {5, 1}};
    static const int bound[] = {11, 5};

    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(window_bound(&named[i]), bound[i]);
        ck_assert_int_eq(run_pattern(&named[i], 0, sched), bound[i]);
        ck_assert_int_eq(run_pattern(&named[i], 2, sched), bound[i]);
    }
}
END_TEST

/* With pauses, pending sched are moved by the caller: replay the shifts on
 * a copy of the schedule and check the invariant on the moved sched. */
START_TEST(test_window_invariant_with_pauses)
{
    const struct pair *p = &pairs[_i];
    struct rl rl;
    unsigned seed = 7;
    double now = NOW0, t = 1000.0 / p->rate;
    int n = 0, reached = 0;
    int bound = window_bound(p);

    rl_init(&rl, p->rate, p->burst);
    while (n < NRES) {
        now += t * (double)(lcg(&seed) % 200) / 100.0;
        while (reached < n && sched[reached] <= now)
            reached++;
        if (lcg(&seed) % 40 == 0) {
            double first = reached < n ? sched[reached] : -1;
            double d = rl_pause(&rl, now, (double)(lcg(&seed) % 3000), first);
            ck_assert(d >= 0);
            for (int j = reached; j < n; j++)
                sched[j] += d;
        }
        double slot = -1;
        ck_assert_int_eq(rl_reserve(&rl, now, FOREVER, &slot), 0);
        ck_assert(slot >= now);
        if (n > 0)
            ck_assert(slot >= sched[n - 1] - EPS);
        sched[n++] = slot;
    }
    ck_assert_int_le(max_in_window(sched, n), bound);
}
END_TEST

/* ---- idle time refills the burst, never beyond b ---- */

START_TEST(test_refill)
{
    struct rl rl;
    const double t = 200; /* rate 5 */

    rl_init(&rl, 5, 3);
    for (int k = 0; k < 3; k++)
        ck_assert(reserve(&rl, 0) == 0);
    ck_assert(reserve(&rl, 0) == t); /* 4th waits */

    /* idle until the bucket is empty (tat = 4T): 3 at once again */
    for (int k = 0; k < 3; k++)
        ck_assert(reserve(&rl, 4 * t) == 4 * t);
    ck_assert(reserve(&rl, 4 * t) == 5 * t);

    /* a much longer idle refills no more than b */
    for (int k = 0; k < 3; k++)
        ck_assert(reserve(&rl, 100000) == 100000);
    ck_assert(reserve(&rl, 100000) == 100000 + t);

    /* one T of idle after a drained bucket refills one */
    rl_init(&rl, 5, 3);
    for (int k = 0; k < 3; k++)
        (void)reserve(&rl, 0);       /* tat = 3T */
    ck_assert(reserve(&rl, t) == t); /* tat - tau = T */
    ck_assert(reserve(&rl, t) == 2 * t);
}
END_TEST

/* ---- the queue bound ---- */

START_TEST(test_queue_bound)
{
    struct rl rl, before;
    double slot = -1;

    rl_init(&rl, 5, 1);
    for (int k = 0; k < 6; k++) {
        ck_assert_int_eq(rl_reserve(&rl, 0, 1000, &slot), 0);
        ck_assert(slot == 200.0 * k); /* 0..1000: 1000 away is still ok */
    }
    before = rl;
    slot = -1;
    ck_assert_int_eq(rl_reserve(&rl, 0, 1000, &slot), -1);
    ck_assert(slot == -1); /* left alone */
    ck_assert(memcmp(&rl, &before, sizeof(rl)) == 0);
    ck_assert(rl_retry_after_ms(&rl, 0, 1000) == 200);
    ck_assert(rl_retry_after_ms(&rl, 0, 1000) > 0);

    /* refused again and again: still nothing consumed */
    for (int k = 0; k < 10; k++)
        ck_assert_int_eq(rl_reserve(&rl, 0, 1000, &slot), -1);
    ck_assert(memcmp(&rl, &before, sizeof(rl)) == 0);

    /* 199 ms later still too far; at retry_after it goes, in the slot the
     * refused one would have had */
    ck_assert_int_eq(rl_reserve(&rl, 199, 1000, &slot), -1);
    ck_assert(rl_retry_after_ms(&rl, 199, 1000) == 1);
    ck_assert_int_eq(rl_reserve(&rl, 200, 1000, &slot), 0);
    ck_assert(slot == 1200);

    /* max_wait 0: only a free slot now */
    rl_init(&rl, 5, 1);
    ck_assert_int_eq(rl_reserve(&rl, 0, 0, &slot), 0);
    ck_assert_int_eq(rl_reserve(&rl, 0, 0, &slot), -1);
    ck_assert(rl_retry_after_ms(&rl, 0, 0) == 200);
    ck_assert_int_eq(rl_reserve(&rl, 200, 0, &slot), 0);
    ck_assert(slot == 200);
}
END_TEST

START_TEST(test_retry_after)
{
    struct rl rl;
    double slot;

    /* slot 1000 with max_wait 999.5: refused by half a millisecond; the
     * answer is still at least 1 */
    rl_init(&rl, 5, 1);
    for (int k = 0; k < 5; k++)
        ck_assert_int_eq(rl_reserve(&rl, 0, 999.5, &slot), 0);
    ck_assert_int_eq(rl_reserve(&rl, 0, 999.5, &slot), -1);
    ck_assert(rl_retry_after_ms(&rl, 0, 999.5) == 1);

    /* long queue: (slot - now) - max_wait */
    rl_init(&rl, 1, 1);
    for (int k = 0; k < 30; k++)
        (void)reserve(&rl, 0); /* next slot 30000 */
    ck_assert(rl_retry_after_ms(&rl, 0, 10000) == 20000);
    ck_assert(rl_retry_after_ms(&rl, 5000, 10000) == 15000);
    ck_assert(rl_retry_after_ms(&rl, 0, 29999.75) == 1);

    /* a pause counts too */
    rl_init(&rl, 5, 1);
    ck_assert(rl_pause(&rl, 0, 60000, -1) == 0);
    ck_assert_int_eq(rl_reserve(&rl, 0, 10000, &slot), -1);
    ck_assert(rl_retry_after_ms(&rl, 0, 10000) == 50000);

    /* and when a request would be accepted it still says >= 1 */
    rl_init(&rl, 5, 1);
    ck_assert(rl_retry_after_ms(&rl, 0, 10000) == 1);
}
END_TEST

/* ---- pauses ---- */

START_TEST(test_pause_no_pending)
{
    struct rl rl;

    rl_init(&rl, 5, 1);
    ck_assert(reserve(&rl, 0) == 0); /* reached at once: not pending */
    ck_assert(rl_pause(&rl, 100, 1000, -1) == 0);
    ck_assert(reserve(&rl, 100) == 1100); /* exactly at the pause's end */
    ck_assert(reserve(&rl, 100) == 1300); /* then T apart, no burst */
    ck_assert(reserve(&rl, 100) == 1500);

    /* a pause shorter than T after the last slot: T still holds */
    rl_init(&rl, 5, 1);
    ck_assert(reserve(&rl, 0) == 0);
    ck_assert(rl_pause(&rl, 10, 50, -1) == 0);
    ck_assert(reserve(&rl, 10) == 200);

    /* a pause before any reservation */
    rl_init(&rl, 5, 1);
    ck_assert(rl_pause(&rl, 0, 1000, -1) == 0);
    ck_assert(reserve(&rl, 0) == 1000);
    ck_assert(reserve(&rl, 0) == 1200);

    /* arriving after the pause ended: the pause no longer matters */
    rl_init(&rl, 5, 1);
    ck_assert(rl_pause(&rl, 0, 1000, -1) == 0);
    ck_assert(reserve(&rl, 5000) == 5000);

    /* burst 3: the pause was idle time, so the burst is there at its end,
     * and no more than the burst */
    rl_init(&rl, 5, 3);
    ck_assert(reserve(&rl, 0) == 0);
    ck_assert(rl_pause(&rl, 0, 1000, -1) == 0);
    for (int k = 0; k < 3; k++)
        ck_assert(reserve(&rl, 0) == 1000);
    ck_assert(reserve(&rl, 0) == 1200);
}
END_TEST

START_TEST(test_pause_with_pending)
{
    struct rl rl;
    double slots[5];

    rl_init(&rl, 5, 1);
    for (int k = 0; k < 5; k++)
        slots[k] = reserve(&rl, 0); /* 0 200 400 600 800 */
    /* at 300, 0 and 200 were reached; 400 is the first pending */
    double d = rl_pause(&rl, 300, 1000, slots[2]);
    ck_assert(d == 900);
    for (int k = 2; k < 5; k++)
        slots[k] += d;           /* the caller moves them: 1300 1500 1700 */
    ck_assert(slots[2] == 1300); /* first lands at the pause's end */
    ck_assert(slots[4] - slots[3] == 200);
    /* new ones come after the moved ones, T apart */
    ck_assert(reserve(&rl, 300) == 1900);
    ck_assert(reserve(&rl, 300) == 2100);

    /* burst 2: the run keeps its shape (two at once, then T apart) */
    rl_init(&rl, 5, 2);
    ck_assert(reserve(&rl, 0) == 0);
    ck_assert(reserve(&rl, 0) == 0);
    ck_assert(reserve(&rl, 0) == 200);
    ck_assert(reserve(&rl, 0) == 400);
    d = rl_pause(&rl, 100, 500, 200);
    ck_assert(d == 400); /* 200 -> 600, 400 -> 800 */
    ck_assert(reserve(&rl, 100) == 1000);
}
END_TEST

START_TEST(test_pause_shorter_than_queue)
{
    struct rl rl;

    rl_init(&rl, 5, 1);
    for (int k = 0; k < 5; k++)
        (void)reserve(&rl, 0);                   /* 0 .. 800 */
    ck_assert(rl_pause(&rl, 300, 50, 400) == 0); /* ends at 350 < 400 */
    ck_assert(reserve(&rl, 300) == 1000);        /* nothing moved */
    /* exactly at the first pending slot: still 0 */
    ck_assert(rl_pause(&rl, 300, 100, 400) == 0);
    ck_assert(reserve(&rl, 300) == 1200);
}
END_TEST

START_TEST(test_pause_overlapping)
{
    struct rl rl;

    /* a shorter second pause inside the first: the first's end wins */
    rl_init(&rl, 5, 1);
    ck_assert(rl_pause(&rl, 0, 1000, -1) == 0);
    ck_assert(rl_pause(&rl, 100, 500, -1) == 0);
    ck_assert(rl.paused_until == 1000);
    ck_assert(reserve(&rl, 100) == 1000);

    /* a longer second pause: its end wins */
    rl_init(&rl, 5, 1);
    ck_assert(rl_pause(&rl, 0, 1000, -1) == 0);
    ck_assert(rl_pause(&rl, 100, 2000, -1) == 0);
    ck_assert(reserve(&rl, 100) == 2100);

    /* with pending slots: the second pause sees them already moved */
    rl_init(&rl, 5, 1);
    double s0 = reserve(&rl, 0), s1 = reserve(&rl, 0), s2 = reserve(&rl, 0);
    ck_assert(s0 == 0 && s1 == 200 && s2 == 400);
    double d1 = rl_pause(&rl, 100, 1000, s1); /* until 1100 */
    ck_assert(d1 == 900);
    s1 += d1, s2 += d1;                          /* 1100, 1300 */
    ck_assert(rl_pause(&rl, 150, 500, s1) == 0); /* until 650: inside */
    double d2 = rl_pause(&rl, 200, 1500, s1);    /* until 1700 */
    ck_assert(d2 == 600);
    s1 += d2, s2 += d2; /* 1700, 1900 */
    ck_assert(s2 - s1 == 200);
    ck_assert(reserve(&rl, 200) == 2100);
}
END_TEST

/* ---- reconfiguration ---- */

START_TEST(test_configure)
{
    struct rl rl;

    /* 5/s -> 10/s with a queue: handed-out slots stand, the next come the
     * new T after the latest */
    rl_init(&rl, 5, 1);
    ck_assert(reserve(&rl, 0) == 0);
    ck_assert(reserve(&rl, 0) == 200);
    ck_assert(reserve(&rl, 0) == 400);
    rl_configure(&rl, 10, 1);
    ck_assert(rl.interval_ms == 100);
    ck_assert(reserve(&rl, 0) == 500);
    ck_assert(reserve(&rl, 0) == 600);
    ck_assert(reserve(&rl, 50) == 700);

    /* 10/s -> 5/s: the gap after the latest slot is already the new one */
    rl_init(&rl, 10, 1);
    ck_assert(reserve(&rl, 0) == 0);
    ck_assert(reserve(&rl, 0) == 100);
    ck_assert(reserve(&rl, 0) == 200);
    rl_configure(&rl, 5, 1);
    ck_assert(reserve(&rl, 0) == 400);
    ck_assert(reserve(&rl, 0) == 600);

    /* before any reservation: the first still goes at once */
    rl_init(&rl, 5, 1);
    rl_configure(&rl, 1, 1);
    ck_assert(reserve(&rl, 3) == 3);
    ck_assert(reserve(&rl, 3) == 1003);

    /* idle: a new burst applies at once */
    rl_init(&rl, 5, 1);
    ck_assert(reserve(&rl, 0) == 0);
    rl_configure(&rl, 5, 3);
    for (int k = 0; k < 3; k++)
        ck_assert(reserve(&rl, 10000) == 10000);
    ck_assert(reserve(&rl, 10000) == 10200);

    /* a pause survives a reload */
    rl_init(&rl, 5, 1);
    (void)rl_pause(&rl, 0, 1000, -1);
    rl_configure(&rl, 10, 1);
    ck_assert(reserve(&rl, 0) == 1000);
    ck_assert(reserve(&rl, 0) == 1100);
}
END_TEST

/* ---- no drift ---- */

static void
check_no_drift(double now, int n, double tol)
{
    struct rl rl;

    /* all queued at once */
    rl_init(&rl, 3, 1);
    for (int k = 0; k < n; k++) {
        double slot = reserve(&rl, now);
        double want = now + (double)k * 1000.0 / 3.0;
        ck_assert_msg(fabs(slot - want) <= tol,
                      "now %.0f k %d: slot %.9f want %.9f", now, k, slot, want);
    }
    /* each arriving at its ideal time or a hair before (then queued) */
    rl_init(&rl, 3, 1);
    for (int k = 0; k < n; k++) {
        double want = now + (double)k * 1000.0 / 3.0;
        double slot = reserve(&rl, want - (k % 3 == 1 ? 1e-3 : 0));
        ck_assert_msg(fabs(slot - want) <= tol,
                      "now %.0f k %d: slot %.9f want %.9f", now, k, slot, want);
    }
}

START_TEST(test_rate3_no_drift)
{
    check_no_drift(0, 10000, 1e-6);
    check_no_drift(NOW0, 10000, 1e-6);
    check_no_drift(1e9, 100000, 1e-6); /* 11 days of CLOCK_MONOTONIC */
    /* near 1.7e12 a double holds 2.4e-4 ms; summing T would be ~1 ms off
     * after 10,000 */
    check_no_drift(1.7e12, 10000, 1e-3);
}
END_TEST

START_TEST(test_rate3_burst_no_drift)
{
    struct rl rl;
    const double t = 1000.0 / 3.0;

    rl_init(&rl, 3, 4);
    for (int k = 0; k < 10000; k++) {
        double slot = reserve(&rl, 0);
        double want = k < 4 ? 0 : (double)(k - 3) * t;
        ck_assert(fabs(slot - want) <= 1e-6);
    }
}
END_TEST

START_TEST(release_gives_back_the_newest_slots)
{
    struct rl rl;
    double slot;
    rl_init(&rl, 5, 1);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(rl_reserve(&rl, 0, 10000, &slot), 0);
    ck_assert_double_eq_tol(slot, 800, 1e-9);
    rl_release(&rl, 2); /* the slots at 600 and 800 come back */
    ck_assert_int_eq(rl_reserve(&rl, 0, 10000, &slot), 0);
    ck_assert_double_eq_tol(slot, 600, 1e-9);
    rl_release(&rl, 100); /* more than handed out: back to the start */
    ck_assert_int_eq(rl_reserve(&rl, 0, 10000, &slot), 0);
    ck_assert_double_eq_tol(slot, 0, 1e-9);
}
END_TEST

/* ---- the on-the-wire guard ---- */

#define W 1005.0

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

/* Departures bounded by their time + cap until answered, then by the
 * answer's time: the window counts from the bound. */
START_TEST(guard_answers_bring_the_bounds_down)
{
    struct rl_guard g;
    rl_guard_init(&g, 2, WINDOW);
    rl_guard_set_cap(&g, 40);
    rl_guard_handed(&g);
    rl_guard_handed(&g);
    uint64_t a = rl_guard_left(&g, 0), b = rl_guard_left(&g, 10);
    ck_assert_uint_ne(a, 0);
    ck_assert_uint_ne(a, b);
    /* unanswered: held until the 2nd largest bound (0 + 40) + window */
    ck_assert_double_eq(rl_guard_until(&g), 40 + WINDOW);
    rl_guard_answered(&g, a, 3); /* a arrived by 3 */
    ck_assert_double_eq(rl_guard_until(&g), 3 + WINDOW);
    rl_guard_answered(&g, a, 2); /* bounds only fall */
    ck_assert_double_eq(rl_guard_until(&g), 2 + WINDOW);
    rl_guard_answered(&g, a, 30); /* never rise */
    ck_assert_double_eq(rl_guard_until(&g), 2 + WINDOW);
    rl_guard_answered(&g, b, 1); /* answered out of order: b is the 1st */
    ck_assert_double_eq(rl_guard_until(&g), 1 + WINDOW);
    rl_guard_answered(&g, 0, 0);   /* no ticket: nothing */
    rl_guard_answered(&g, 999, 0); /* unknown: nothing */
    ck_assert_double_eq(rl_guard_until(&g), 1 + WINDOW);
    /* a new departure evicts the smallest bound, which cannot matter */
    rl_guard_handed(&g);
    uint64_t c = rl_guard_left(&g, 1500);
    ck_assert_double_eq(rl_guard_until(&g), 2 + WINDOW);
    rl_guard_answered(&g, b, 0); /* evicted: ignored */
    ck_assert_double_eq(rl_guard_until(&g), 2 + WINDOW);
    rl_guard_answered(&g, c, 1501);
    ck_assert_double_eq(rl_guard_until(&g), 2 + WINDOW);
    rl_guard_free(&g);
}
END_TEST

/* The promise at the upstream's clock: requests arrive anywhere between
 * leaving and leaving + cap, are answered some time after arriving (or
 * never), and some are parked before leaving; whatever the order, no
 * window of arrivals holds more than n. */
START_TEST(guard_arrivals_stay_within_the_window)
{
    for (size_t n = 1; n <= 6; n++) {
        struct rl_guard g;
        rl_guard_init(&g, n, WINDOW);
        rl_guard_set_cap(&g, 40);
        uint64_t seed = 0x2545f4914f6cdd1dULL + n;
        double now = 0, arr[4000];
        struct {
            double leave, answer;
            uint64_t ticket;
            int left;
        } way[64];
        size_t narr = 0, nway = 0;
        while (now < 60000 && narr < 4000) {
            now += (double)(prng(&seed) % 60);
            for (size_t i = 0; i < nway;) {
                if (!way[i].left && way[i].leave <= now) {
                    way[i].left = 1;
                    way[i].ticket = rl_guard_left(&g, now);
                    double at = now + (double)(prng(&seed) % 41);
                    arr[narr++] = at;
                    /* answered after arriving, or never */
                    way[i].answer = prng(&seed) % 4 == 0
                                        ? INFINITY
                                        : at + (double)(prng(&seed) % 300);
                }
                if (way[i].left && way[i].answer <= now) {
                    rl_guard_answered(&g, way[i].ticket, now);
                    way[i] = way[--nway];
                } else if (way[i].left && way[i].answer == INFINITY) {
                    way[i] = way[--nway];
                } else {
                    i++;
                }
            }
            while (now >= rl_guard_until(&g) && nway < 64) {
                rl_guard_handed(&g);
                way[nway].left = 0;
                way[nway].leave = now + (double)(prng(&seed) % 500);
                nway++;
            }
        }
        /* arrivals in order, then every window */
        for (size_t i = 1; i < narr; i++)
            for (size_t j = i; j > 0 && arr[j - 1] > arr[j]; j--) {
                double t = arr[j];
                arr[j] = arr[j - 1];
                arr[j - 1] = t;
            }
        for (size_t i = 0; i < narr; i++) {
            size_t in = 0;
            for (size_t j = i; j < narr && arr[j] < arr[i] + WINDOW; j++)
                in++;
            ck_assert_msg(in <= n, "n=%zu: %zu arrivals in a window", n, in);
        }
        ck_assert_msg(narr > 40 * n, "n=%zu: only %zu arrivals", n, narr);
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

Suite *
unit_suite(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *tc;

    tc = tcase_create("slots");
    tcase_add_test(tc, test_burst1_rates);
    tcase_add_test(tc, test_burst1_exact_values);
    tcase_add_test(tc, test_bursts);
    tcase_add_test(tc, test_first_goes_at_once);
    tcase_add_test(tc, test_arrivals_spaced_out);
    tcase_add_test(tc, test_refill);
    suite_add_tcase(s, tc);

    tc = tcase_create("window");
    tcase_set_timeout(tc, 120); /* valgrind */
    tcase_add_loop_test(tc, test_window_invariant, 0, NPAIRS);
    tcase_add_test(tc, test_window_named_cases);
    tcase_add_loop_test(tc, test_window_invariant_with_pauses, 0, NPAIRS);
    suite_add_tcase(s, tc);

    tc = tcase_create("queue");
    tcase_add_test(tc, test_queue_bound);
    tcase_add_test(tc, test_retry_after);
    suite_add_tcase(s, tc);

    tc = tcase_create("pause");
    tcase_add_test(tc, test_pause_no_pending);
    tcase_add_test(tc, test_pause_with_pending);
    tcase_add_test(tc, test_pause_shorter_than_queue);
    tcase_add_test(tc, test_pause_overlapping);
    suite_add_tcase(s, tc);

    tc = tcase_create("configure");
    tcase_add_test(tc, test_configure);
    suite_add_tcase(s, tc);

    tc = tcase_create("drift");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_rate3_no_drift);
    tcase_add_test(tc, test_rate3_burst_no_drift);
    tcase_add_test(tc, release_gives_back_the_newest_slots);
    suite_add_tcase(s, tc);

    tc = tcase_create("guard");
    tcase_add_test(tc, guard_off_never_holds);
    tcase_add_test(tc, guard_counts_departures_and_those_on_their_way);
    tcase_add_test(tc, guard_resize_keeps_the_newest_and_the_pending);
    tcase_add_test(tc, guard_window_invariant_under_bunching);
    tcase_add_test(tc, guard_answers_bring_the_bounds_down);
    tcase_add_test(tc, guard_arrivals_stay_within_the_window);
    suite_add_tcase(s, tc);

    tc = tcase_create("restart");
    tcase_add_test(tc, restart_forgets_the_pause_keeps_the_spacing);
    tcase_add_test(tc, restart_with_burst_allows_the_burst_again);
    suite_add_tcase(s, tc);

    return s;
}
