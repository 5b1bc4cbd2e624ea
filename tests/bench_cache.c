/* bench_cache.c - memory and speed of the session cache (SPEC section 10).
 * Not a test: built with the checks, run by hand or by scripts/bench.sh.
 *
 *   tests/bench_cache [N]     (N entries, default 1,000,000)
 *
 * Fills N entries into a cache bounded at N and reports the growth of the
 * resident set, then cache_decide calls on random present keys for about
 * two seconds, then the rate of inserting N more (each one an eviction). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "session_cache.h"

#define T0 INT64_C(1772015400000)
#define RECHECK INT64_C(300000)

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Resident set in bytes, from /proc/self/statm; 0 if unreadable. */
static double
rss_bytes(void)
{
    unsigned long size, resident;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    if (n != 2)
        return 0;
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

/* Key i: a few thousand senders, distinct E.164 numbers. */
static int64_t
ksender(uint64_t i)
{
    return (int64_t)(i % 4093) + 1;
}

static uint64_t
kphone(uint64_t i)
{
    return UINT64_C(14150000000) + i * 7;
}

static uint64_t
xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

int
main(int argc, char **argv)
{
    uint64_t n = 1000000;
    if (argc > 1) {
        char *end;
        unsigned long long v = strtoull(argv[1], &end, 10);
        if (*end != '\0' || v == 0 || v > UINT32_MAX - 2) {
            fprintf(stderr, "usage: %s [entries]\n", argv[0]);
            return 2;
        }
        n = v;
    }

    double rss0 = rss_bytes();
    struct session_cache *c = cache_new((size_t)n);
    double t = now_s();
    for (uint64_t i = 0; i < n; i++) {
        if (i % 2)
            cache_learn_open(c, ksender(i), kphone(i), T0 + 86400000,
                             CACHE_SRC_SEND_FREEFORM, T0);
        else
            cache_learn_closed(c, ksender(i), kphone(i), T0 - 1000,
                               CACHE_SRC_SEND_FREEFORM, T0);
    }
    double fill = now_s() - t;
    double grown = rss_bytes() - rss0;
    printf("cache: %llu entries, RSS growth %.1f MiB (%.1f B/entry), "
           "entry %zu B\n",
           (unsigned long long)n, grown / 1048576.0, grown / (double)n,
           cache_entry_size());
    printf("cache: fill %.2f M inserts/s\n", (double)n / fill / 1e6);

    /* lookups on random present keys, ~2 s, at most 2e9 calls */
    uint64_t seed = UINT64_C(0x9e3779b97f4a7c15), calls = 0, sc = 0;
    const uint64_t batch = 1 << 20;
    t = now_s();
    double el = 0;
    while (el < 2.0 && calls < UINT64_C(2000000000)) {
        for (uint64_t k = 0; k < batch; k++) {
            uint64_t i = xorshift64(&seed) % n;
            sc += cache_decide(c, ksender(i), kphone(i), T0 + 1000, RECHECK,
                               NULL) == CACHE_SHORT_CIRCUIT;
        }
        calls += batch;
        el = now_s() - t;
    }
    struct cache_stats s;
    cache_get_stats(c, &s);
    printf("cache: %.1f M lookups/s (%llu calls, %.0f%% hits, "
           "%.0f%% short-circuited)\n",
           (double)calls / el / 1e6, (unsigned long long)calls,
           100.0 * (double)s.hits / (double)s.lookups,
           100.0 * (double)sc / (double)calls);

    /* N more keys into a full cache: each evicts the LRU tail */
    uint64_t ev0 = s.evictions;
    t = now_s();
    for (uint64_t i = n; i < 2 * n; i++)
        cache_learn_closed(c, ksender(i), kphone(i), CACHE_TIME_UNKNOWN,
                           CACHE_SRC_SEND_FREEFORM, T0);
    el = now_s() - t;
    cache_get_stats(c, &s);
    printf("cache: %.1f M evictions/s (%llu evictions, %zu entries)\n",
           (double)(s.evictions - ev0) / el / 1e6,
           (unsigned long long)(s.evictions - ev0), s.entries);

    cache_free(c);
    return 0;
}
