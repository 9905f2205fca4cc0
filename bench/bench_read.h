/* Plain streaming reads: the loop bench-membw times, shared with bench-e2e so that decode's
 * bytes per second can be put beside the bandwidth one thread reads at the same moment. */
#ifndef BN_BENCH_READ_H
#define BN_BENCH_READ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "bench_clock.h"

/* bytes on 2 MB transparent huge pages where the OS offers them (free() releases it; NULL when
 * out of memory): the engine streams its decode weights from such pages (model.c), and plain
 * reads from 4 KB pages were ~30% slower on the machine measured (16-18 against 25-30 GB/s). */
static inline void *bench_read_alloc(size_t bytes)
{
    const size_t huge = (size_t)2 << 20, len = (bytes + huge - 1) / huge * huge;
    void *p = aligned_alloc(huge, len ? len : huge);
#ifdef MADV_HUGEPAGE
    if (p)
        (void)madvise(p, len, MADV_HUGEPAGE);
#endif
    return p;
}

/* Reads buf[b..e) (8-byte words) once; the result keeps the loads alive. */
static inline uint64_t bench_read_words(const uint64_t *buf, size_t b, size_t e)
{
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = b; i + 4 <= e; i += 4) {
        s0 += buf[i];
        s1 += buf[i + 1];
        s2 += buf[i + 2];
        s3 += buf[i + 3];
    }
    return s0 ^ s1 ^ s2 ^ s3;
}

/* Best of reps single-thread reads of a fresh mib-MiB buffer, in GB/s of this thread's CPU
 * time (like bench-e2e's on-CPU decode rates: time other work held the CPU is not counted);
 * 0 when out of memory. */
static inline double bench_read_gbs(size_t mib, int reps)
{
    const size_t n = (mib << 20) / 8;
    uint64_t *buf = bench_read_alloc(n * 8);
    if (!buf)
        return 0.0;
    for (size_t i = 0; i < n; i++)
        buf[i] = i * 0x9e3779b97f4a7c15ull;
    volatile uint64_t keep = bench_read_words(buf, 0, n); /* warm-up */
    double best = 0.0;
    for (int r = 0; r < reps; r++) {
        double t0 = bench_clock_s(CLOCK_THREAD_CPUTIME_ID);
        keep ^= bench_read_words(buf, 0, n);
        double gbs = (double)(n * 8) / (bench_clock_s(CLOCK_THREAD_CPUTIME_ID) - t0) / 1e9;
        best = gbs > best ? gbs : best;
    }
    (void)keep;
    free(buf);
    return best;
}

#endif
