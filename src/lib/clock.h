/* clock.h - the two clocks, in milliseconds: wall time (what session
 * windows and timestamps are measured in) and monotonic time (what
 * latencies, timeouts and rate slots are measured in). */
#ifndef WAGATE_CLOCK_H
#define WAGATE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t
clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline double
clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#endif
