/* Read bandwidth of this machine for 1..N threads: the ceiling of decode speed, which streams
 * ~1.18 GB per token of the 2B-4T model (521 MB ternary weights + 657 MB f16 LM head). When
 * one thread already reads near the machine's total, more threads cannot speed decode up.
 *
 *   bench-membw [-m MiB (1024)] [-t 1,2] [-r reps (5)]
 *
 * The buffer is on transparent huge pages where the OS offers them (bench_read.h), as the
 * weights decode streams are (from 4 KB pages the rate is lower). */
#include "bench_clock.h"
#include "bench_read.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "threadpool.h"

typedef struct job {
    const uint64_t *buf;
    size_t n;
    uint64_t sums[64];
} job;

static void read_share(void *arg, int ith, int nth)
{
    job *j = arg;
    size_t b, e;
    bn_split_range(j->n, 512, ith, nth, &b, &e);
    j->sums[ith] = bench_read_words(j->buf, b, e);
}

int main(int argc, char **argv)
{
    size_t mib = 1024;
    int reps = 5;
    const char *threads = "1,2";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc)
            mib = (size_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc)
            threads = argv[++i];
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench-membw [-m MiB] [-t 1,2] [-r reps]\n");
            return 2;
        }
    }
    if (mib == 0 || reps < 1) {
        fprintf(stderr, "bench-membw: -m and -r must be positive\n");
        return 2;
    }
    size_t bytes = mib << 20;
    job j = {.n = bytes / 8};
    uint64_t *buf = bench_read_alloc(bytes); /* huge pages, as the engine's weights */
    if (!buf) {
        fprintf(stderr, "bench-membw: cannot allocate %zu MiB\n", mib);
        return 1;
    }
    for (size_t i = 0; i < j.n; i++)
        buf[i] = i * 0x9e3779b97f4a7c15ull;
    j.buf = buf;
    printf("| threads | best GB/s | mean GB/s |\n|---|---|---|\n");
    for (const char *p = threads; *p;) {
        int nt = atoi(p);
        if (nt < 1 || nt > 64) {
            fprintf(stderr, "bench-membw: bad thread count in '%s'\n", threads);
            return 2;
        }
        bn_err err;
        bn_threadpool *tp = bn_threadpool_create(nt, &err);
        if (!tp) {
            fprintf(stderr, "bench-membw: %s\n", err.msg);
            return 1;
        }
        bn_threadpool_run(tp, read_share, &j); /* warm-up */
        double best = 0, sum = 0;
        for (int r = 0; r < reps; r++) {
            double t0 = bench_clock_s(CLOCK_MONOTONIC);
            bn_threadpool_run(tp, read_share, &j);
            double gbs = (double)bytes / (bench_clock_s(CLOCK_MONOTONIC) - t0) / 1e9;
            best = gbs > best ? gbs : best;
            sum += gbs;
        }
        bn_threadpool_free(tp);
        fprintf(stderr,
                "{\"bench\":\"membw\",\"threads\":%d,\"mib\":%zu,\"best_gb_s\":%.2f,"
                "\"mean_gb_s\":%.2f,\"check\":%llu}\n",
                nt, mib, best, sum / reps, (unsigned long long)j.sums[0]);
        printf("| %d | %.2f | %.2f |\n", nt, best, sum / reps);
        p = strchr(p, ',');
        if (!p)
            break;
        p++;
    }
    free(buf);
    return 0;
}
