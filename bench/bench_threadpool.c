/* Dispatch overhead of the thread pool: the wall time of one bn_threadpool_run whose work is
 * (nearly) empty, as the forward pass issues ~10 runs per layer and token. Also the case the
 * forward pass actually has: a short serial step (norm, quantize) between two runs; and the
 * same without spinning (sleep on the condition variable at once).
 *
 *   bench-threadpool [-t THREADS,...] [-n RUNS]
 *
 * Prints one JSON object per measurement, then a table. */
#include "bench_clock.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "threadpool.h"

static double now_s(void) { return bench_clock_s(CLOCK_MONOTONIC); }

typedef struct work {
    volatile int sink[64 * 16]; /* one cache line per thread */
    int spin;                   /* iterations of busy work per thread */
} work;

static void fn(void *arg, int ith, int nth)
{
    (void)nth;
    work *w = arg;
    for (int i = 0; i < w->spin; i++)
        w->sink[64 * (ith % 16)] += i;
}

/* Busy work on the caller alone for `us` microseconds, between runs (what the forward pass
 * does between matmuls: norms, quantization, sampling). */
static void serial_gap(int us)
{
    double end = now_s() + us * 1e-6;
    while (now_s() < end)
        ;
}

typedef struct result {
    int threads;
    const char *what;
    double us_per_run;
} result;

static result measure(bn_threadpool *tp, int threads, const char *what, int runs, int spin, int gap)
{
    static work w;
    w.spin = spin;
    for (int i = 0; i < 100; i++) /* warm up: threads started and scheduled */
        bn_threadpool_run(tp, fn, &w);
    /* only the runs are timed (each on its own), not the serial gaps between them */
    double dt = 0.0;
    for (int i = 0; i < runs; i++) {
        double t0 = now_s();
        bn_threadpool_run(tp, fn, &w);
        dt += now_s() - t0;
        if (gap)
            serial_gap(gap);
    }
    result r = {threads, what, dt / runs * 1e6};
    printf("{\"bench\":\"threadpool\",\"threads\":%d,\"case\":\"%s\",\"runs\":%d,"
           "\"us_per_run\":%.3f}\n",
           threads, what, runs, r.us_per_run);
    return r;
}

int main(int argc, char **argv)
{
    int thread_list[16] = {1, 2}, n_list = 2, runs = 20000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
            n_list = 0;
            for (char *s = strtok(argv[++i], ","); s && n_list < 16; s = strtok(NULL, ","))
                thread_list[n_list++] = atoi(s);
        } else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: bench-threadpool [-t THREADS,...] [-n RUNS]\n");
            return 2;
        }
    }
    if (runs < 1) {
        fprintf(stderr, "bench-threadpool: -n must be >= 1\n");
        return 2;
    }
    result res[16 * 5];
    int n_res = 0;
    for (int t = 0; t < n_list; t++) {
        bn_err err = {0};
        bn_threadpool *tp = bn_threadpool_create(thread_list[t], &err);
        if (!tp) {
            fprintf(stderr, "bench-threadpool: %s\n", err.msg);
            return 1;
        }
        res[n_res++] = measure(tp, thread_list[t], "empty", runs, 0, 0);
        res[n_res++] = measure(tp, thread_list[t], "empty+gap2us", runs / 4, 0, 2);
        res[n_res++] = measure(tp, thread_list[t], "empty+gap50us", 2000, 0, 50);
        res[n_res++] = measure(tp, thread_list[t], "empty+gap500us", 500, 0, 500);
        bn_threadpool_set_spin_us(tp, 0); /* the pure condition-variable hand-off */
        res[n_res++] = measure(tp, thread_list[t], "empty,nospin", runs / 4, 0, 0);
        bn_threadpool_free(tp);
    }
    printf("\n| threads | case | us per run |\n|---|---|---|\n");
    for (int i = 0; i < n_res; i++)
        printf("| %d | %s | %.2f |\n", res[i].threads, res[i].what, res[i].us_per_run);
    return 0;
}
