/* Clocks shared by the benchmarks. On a shared machine the wall clock also counts time other
 * jobs held the CPU, so benchmarks report CPU time beside it. */
#ifndef BN_BENCH_CLOCK_H
#define BN_BENCH_CLOCK_H

#include <time.h>

/* Seconds on clock `id` (CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID). */
static inline double bench_clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
