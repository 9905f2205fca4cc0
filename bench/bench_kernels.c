/* Kernel microbenchmark: every real matrix shape of BitNet b1.58 2B-4T x (decode: 1 activation
 * row, prefill: 64 rows) x every kernel path this CPU runs, plus the f16 LM head, activation
 * quantization, a decode pass streaming 24 different gate-shaped matrices (106 MB of weights,
 * more than the caches hold, like one token's pass over the layers: the memory-bound figure),
 * and what the paths with prepare() cost to repack (time, bytes).
 *
 *   bench-kernels [-p PATH,...] [-t THREADS] [-r ROWS,...] [-s SECONDS] [--quick]
 *
 * Prints one JSON object per measurement, then a table. ns per call (wall clock; with one
 * thread also the thread's CPU time, which does not count time the machine gave to other
 * work), weights per second (one weight x one activation row = one multiply-add) and
 * effective GB/s of weight bytes (2 bits per ternary weight, 2 bytes per f16 weight, counted
 * once per call: what a core would have to stream from DRAM). Under qemu the times mean
 * nothing (bench/neon-measure.sh gives instruction counts and llvm-mca cycles instead);
 * --quick runs one call per case to check that everything runs. Every result is also compared
 * with the scalar twin once. This bench includes kernels/kernels.h (and the thread pool):
 * the one documented exception to "benchmarks use bitnet.h". */
#include "bench_clock.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "kernels.h"
#include "threadpool.h"

static double now_s(void) { return bench_clock_s(CLOCK_MONOTONIC); }

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "bench-kernels: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* n bytes on 2 MB transparent huge pages where the OS offers them (free() releases it), as the
 * engine holds the weights decode streams (model.c bn_model_copy_to_hugepages, the screened
 * head's int8 copy): from 4 KB pages the streaming rates are ~30% lower. */
static void *xmalloc_huge(size_t n)
{
    const size_t huge = (size_t)2 << 20;
    void *p = aligned_alloc(huge, (n + huge - 1) / huge * huge);
    if (!p) {
        fprintf(stderr, "bench-kernels: out of memory (%zu bytes)\n", n);
        exit(1);
    }
#ifdef MADV_HUGEPAGE
    (void)madvise(p, (n + huge - 1) / huge * huge, MADV_HUGEPAGE);
#endif
    return p;
}

/* ---------------------------------------------------------------- threaded calls */

typedef struct job {
    const bn_kernels *kern;
    const bn_ternary *w;
    const int8_t *q;
    const float *scales;
    size_t n_act;
    float *y;
    const uint16_t *hw, *hx; /* LM head */
    size_t hk, hm;
    const int8_t *w8, *x8; /* screened LM head's int8 pass */
    int32_t *y8;
    const uint8_t *w6; /* its u6 pass: rows, the low activation plane (x8 the high one) */
    const int8_t *x8l;
    int64_t *y6;
    const bn_ternary *ws; /* streaming decode: n_ws matrices one after the other */
    size_t n_ws;
    const float *x; /* quantize_row input (xk floats) */
    size_t xk;
    int8_t *qout;
    float scales_out;
} job;

static void run_ternary(void *arg, int ith, int nth)
{
    job *j = arg;
    size_t b, e;
    bn_split_range(j->w->m, j->kern->row_block, ith, nth, &b, &e);
    if (b < e)
        j->kern->ternary_matmul(j->w, b, e, j->q, j->scales, j->n_act, j->y, j->w->m);
}

static void run_head(void *arg, int ith, int nth)
{
    job *j = arg;
    size_t b, e;
    bn_split_range(j->hm, 16, ith, nth, &b, &e);
    if (b < e)
        j->kern->matvec_f16(j->hw, j->hk, b, e, j->hx, j->y);
}

static void run_head_i8(void *arg, int ith, int nth)
{
    job *j = arg;
    size_t b, e;
    bn_split_range(j->hm, 16, ith, nth, &b, &e);
    if (b < e)
        j->kern->matvec_i8(j->w8, j->hk, b, e, j->x8, j->y8);
}

static void run_head_i8x2(void *arg, int ith, int nth)
{
    job *j = arg;
    size_t b, e;
    bn_split_range(j->hm, 16, ith, nth, &b, &e);
    if (b < e)
        j->kern->matvec_i8x2(j->w8, j->hk, b, e, j->x8, j->x8l, j->y6);
}

static void run_head_u6(void *arg, int ith, int nth)
{
    job *j = arg;
    size_t b, e;
    bn_split_range(j->hm, 16, ith, nth, &b, &e);
    if (b < e)
        j->kern->matvec_u6(j->w6, j->hk, b, e, j->x8, j->x8l, j->y6);
}

static void run_stream(void *arg, int ith, int nth)
{
    job *j = arg;
    for (size_t i = 0; i < j->n_ws; i++) {
        size_t b, e;
        bn_split_range(j->ws[i].m, j->kern->row_block, ith, nth, &b, &e);
        if (b < e)
            j->kern->ternary_matmul(&j->ws[i], b, e, j->q, j->scales, 1, j->y, j->ws[i].m);
    }
}

static void run_quantize(void *arg, int ith, int nth)
{
    job *j = arg;
    if (ith == 0) /* one row: the calling thread's job, as in the forward pass */
        j->scales_out = j->kern->quantize_row(j->x, j->xk, j->qout);
}

/* Seconds per call, wall clock and the calling thread's CPU time: calls repeated until min_s
 * has passed (at least once after a warm-up). */
typedef struct timing {
    double wall, cpu;
} timing;

static timing time_calls(bn_threadpool *tp, bn_parallel_fn fn, job *j, double min_s, int quick)
{
    bn_threadpool_run(tp, fn, j);
    if (quick)
        return (timing){0.0, 0.0};
    int calls = 0;
    double t0 = now_s(), c0 = bench_clock_s(CLOCK_THREAD_CPUTIME_ID), t;
    do {
        bn_threadpool_run(tp, fn, j);
        calls++;
        t = now_s();
    } while (t - t0 < min_s);
    double c = bench_clock_s(CLOCK_THREAD_CPUTIME_ID);
    return (timing){(t - t0) / calls, (c - c0) / calls};
}

/* ---------------------------------------------------------------- results */

typedef struct result {
    char what[24], path[24];
    size_t k, m, rows;
    double ns, cpu_ns, wps, gbs;
} result;

static result results[256];
static int n_results;

/* t: per call; weight_bytes: bytes of weights (or inputs) one call reads. The rates use the
 * wall clock; the CPU time is reported beside it with one thread (0 otherwise). */
static void report(const char *what, const char *path, size_t k, size_t m, size_t rows, timing t,
                   double weight_bytes, int threads)
{
    result *r = &results[n_results < 255 ? n_results++ : 255];
    snprintf(r->what, sizeof r->what, "%s", what);
    snprintf(r->path, sizeof r->path, "%s", path);
    r->k = k;
    r->m = m;
    r->rows = rows;
    r->ns = t.wall * 1e9;
    r->cpu_ns = threads == 1 ? t.cpu * 1e9 : 0;
    r->wps = t.wall > 0 ? (double)k * m * rows / t.wall : 0;
    r->gbs = t.wall > 0 ? weight_bytes / t.wall / 1e9 : 0;
    printf("{\"bench\":\"kernels\",\"what\":\"%s\",\"path\":\"%s\",\"k\":%zu,\"m\":%zu,"
           "\"rows\":%zu,\"threads\":%d,\"ns_per_call\":%.0f,\"cpu_ns_per_call\":%.0f,"
           "\"weights_per_s\":%.4g,\"weight_gb_per_s\":%.3f}\n",
           what, path, k, m, rows, threads, r->ns, r->cpu_ns, r->wps, r->gbs);
}

/* ---------------------------------------------------------------- cases */

static int bench_ternary(const bn_kernels *kern, size_t k, size_t m, size_t rows, bn_threadpool *tp,
                         double min_s, int quick)
{
    uint8_t *packed = xmalloc(m * k / 4);
    int8_t *q = xmalloc(rows * k);
    float *scales = xmalloc(rows * sizeof *scales);
    float *y = xmalloc(rows * m * sizeof *y), *ref = xmalloc(rows * m * sizeof *ref);
    for (size_t i = 0; i < m * k / 4; i++)
        packed[i] = (uint8_t)((rnd() % 3) << 6 | (rnd() % 3) << 4 | (rnd() % 3) << 2 | rnd() % 3);
    for (size_t i = 0; i < rows * k; i++)
        q[i] = (int8_t)((int)(rnd() % 256) - 128);
    for (size_t r = 0; r < rows; r++)
        scales[r] = 1.0f + (float)r;
    bn_ternary w = {.packed = packed, .k = k, .m = m, .scale = 0.7f, .repacked = NULL};
    if (kern->prepare) {
        double t0 = now_s();
        if (kern->prepare(&w)) {
            fprintf(stderr, "bench-kernels: %s: prepare failed\n", kern->name);
            return -1;
        }
        double dt = now_s() - t0;
        /* the repacked copy has the size of the packed weights in every current layout */
        printf("{\"bench\":\"kernels\",\"what\":\"prepare\",\"path\":\"%s\",\"k\":%zu,\"m\":%zu,"
               "\"ms\":%.3f,\"repacked_bytes\":%zu,\"mb_per_s\":%.1f}\n",
               kern->name, k, m, dt * 1e3, m * k / 4, dt > 0 ? (double)m * k / 4 / dt / 1e6 : 0.0);
    }
    job j = {.kern = kern, .w = &w, .q = q, .scales = scales, .n_act = rows, .y = y};
    timing sec = time_calls(tp, run_ternary, &j, min_s, quick);
    bn_kernels_scalar.ternary_matmul(&w, 0, m, q, scales, rows, ref, m);
    int bad = memcmp(y, ref, rows * m * sizeof *y) != 0;
    if (bad)
        fprintf(stderr, "bench-kernels: %s %zux%zu rows %zu DIFFERS from scalar\n", kern->name, k,
                m, rows);
    char what[24];
    snprintf(what, sizeof what, "ternary");
    report(what, kern->name, k, m, rows, sec, (double)m * k / 4, bn_threadpool_size(tp));
    if (kern->release)
        kern->release(&w);
    free(packed);
    free(q);
    free(scales);
    free(y);
    free(ref);
    return bad ? -1 : 0;
}

static int bench_head(const bn_kernels *kern, size_t k, size_t m, bn_threadpool *tp, double min_s,
                      int quick)
{
    uint16_t *hw = xmalloc(m * k * 2), *hx = xmalloc(k * 2);
    float *y = xmalloc(m * sizeof *y), *ref = xmalloc(m * sizeof *ref);
    for (size_t i = 0; i < m * k; i++)
        hw[i] = bn_f32_to_f16((float)((int)(rnd() % 2001) - 1000) / 16000.0f);
    for (size_t i = 0; i < k; i++)
        hx[i] = bn_f32_to_f16((float)((int)(rnd() % 2001) - 1000) / 100.0f);
    job j = {.kern = kern, .hw = hw, .hx = hx, .hk = k, .hm = m, .y = y};
    timing sec = time_calls(tp, run_head, &j, min_s, quick);
    bn_kernels_scalar.matvec_f16(hw, k, 0, m, hx, ref);
    int bad = memcmp(y, ref, m * sizeof *y) != 0;
    if (bad)
        fprintf(stderr, "bench-kernels: %s LM head DIFFERS from scalar\n", kern->name);
    report("lm_head_f16", kern->name, k, m, 1, sec, (double)m * k * 2, bn_threadpool_size(tp));
    free(hw);
    free(hx);
    free(y);
    free(ref);
    return bad ? -1 : 0;
}

/* The screened LM head's approximate pass (matvec_i8): the same rows as int8. */
static int bench_head_i8(const bn_kernels *kern, size_t k, size_t m, bn_threadpool *tp,
                         double min_s, int quick)
{
    int8_t *w8 = xmalloc_huge(m * k), *x8 = xmalloc(k);
    int32_t *y = xmalloc(m * sizeof *y), *ref = xmalloc(m * sizeof *ref);
    for (size_t i = 0; i < m * k; i++)
        w8[i] = (int8_t)((int)(rnd() % 255) - 127);
    for (size_t i = 0; i < k; i++)
        x8[i] = (int8_t)((int)(rnd() % 255) - 127);
    job j = {.kern = kern, .w8 = w8, .x8 = x8, .hk = k, .hm = m, .y8 = y};
    timing sec = time_calls(tp, run_head_i8, &j, min_s, quick);
    bn_kernels_scalar.matvec_i8(w8, k, 0, m, x8, ref);
    int bad = memcmp(y, ref, m * sizeof *y) != 0;
    if (bad)
        fprintf(stderr, "bench-kernels: %s matvec_i8 DIFFERS from scalar\n", kern->name);
    report("lm_head_i8", kern->name, k, m, 1, sec, (double)m * k, bn_threadpool_size(tp));
    if (kern->matvec_i8x2) { /* the same rows against a two-plane activation */
        int8_t *xl = xmalloc(k);
        int64_t *y2 = xmalloc(m * sizeof *y2), *ref2 = xmalloc(m * sizeof *ref2);
        for (size_t i = 0; i < k; i++)
            xl[i] = (int8_t)((int)(rnd() % 255) - 127);
        job j2 = {.kern = kern, .w8 = w8, .x8 = x8, .x8l = xl, .hk = k, .hm = m, .y6 = y2};
        timing sec2 = time_calls(tp, run_head_i8x2, &j2, min_s, quick);
        bn_i8x2_matvec(w8, k, 0, m, x8, xl, ref2);
        if (memcmp(y2, ref2, m * sizeof *y2)) {
            fprintf(stderr, "bench-kernels: %s matvec_i8x2 DIFFERS from scalar\n", kern->name);
            bad = 1;
        }
        report("lm_head_i8x2", kern->name, k, m, 1, sec2, (double)m * k, bn_threadpool_size(tp));
        free(xl);
        free(y2);
        free(ref2);
    }
    free(w8);
    free(x8);
    free(y);
    free(ref);
    return bad ? -1 : 0;
}

/* The same pass in the u6 layout (kernels.h matvec_u6: three quarters of the bytes, a 16-bit
 * activation as two int8 planes), on paths that have it. */
static int bench_head_u6(const bn_kernels *kern, size_t k, size_t m, bn_threadpool *tp,
                         double min_s, int quick)
{
    if (!kern->matvec_u6)
        return 0;
    const size_t rb = bn_u6_row_bytes(k);
    uint8_t *w6 = xmalloc_huge(m * rb);
    int8_t *q = xmalloc(k), *xh = xmalloc(k), *xl = xmalloc(k);
    int64_t *y = xmalloc(m * sizeof *y), *ref = xmalloc(m * sizeof *ref);
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < k; j++)
            q[j] = (int8_t)((int)(rnd() % 63) - 31);
        bn_u6_pack_row(q, k, w6 + i * rb);
    }
    for (size_t i = 0; i < k; i++) {
        xh[i] = (int8_t)((int)(rnd() % 255) - 127);
        xl[i] = (int8_t)((int)(rnd() % 255) - 127);
    }
    job j = {.kern = kern, .w6 = w6, .x8 = xh, .x8l = xl, .hk = k, .hm = m, .y6 = y};
    timing sec = time_calls(tp, run_head_u6, &j, min_s, quick);
    bn_u6_matvec(w6, k, 0, m, xh, xl, ref);
    int bad = memcmp(y, ref, m * sizeof *y) != 0;
    if (bad)
        fprintf(stderr, "bench-kernels: %s matvec_u6 DIFFERS from scalar\n", kern->name);
    report("lm_head_u6", kern->name, k, m, 1, sec, (double)m * rb, bn_threadpool_size(tp));
    free(w6);
    free(q);
    free(xh);
    free(xl);
    free(y);
    free(ref);
    return bad ? -1 : 0;
}

enum {
    n_stream = 24
}; /* 24 x (6912 x 2560 / 4) = 106 MB of weights: beyond the caches */

/* Decode over n_stream different 6912 x 2560 matrices one after the other, so the weights come
 * from DRAM as in a real token's pass; reported per matrix. */
static int bench_stream(const bn_kernels *kern, bn_threadpool *tp, double min_s, int quick)
{
    const size_t k = 2560, m = 6912;
    uint8_t *packed = xmalloc_huge(n_stream * m * k / 4);
    bn_ternary ws[n_stream];
    int8_t *q = xmalloc(k);
    float scale = 1.0f, *y = xmalloc(m * sizeof *y), *ref = xmalloc(m * sizeof *ref);
    for (size_t i = 0; i < n_stream * m * k / 4; i++)
        packed[i] = (uint8_t)((rnd() % 3) << 6 | (rnd() % 3) << 4 | (rnd() % 3) << 2 | rnd() % 3);
    for (size_t i = 0; i < k; i++)
        q[i] = (int8_t)((int)(rnd() % 256) - 128);
    for (int i = 0; i < n_stream; i++) {
        ws[i] = (bn_ternary){.packed = packed + i * m * k / 4, .k = k, .m = m, .scale = 0.5f};
        if (kern->prepare && kern->prepare(&ws[i])) {
            fprintf(stderr, "bench-kernels: %s: prepare failed\n", kern->name);
            return -1;
        }
    }
    job j = {.kern = kern, .q = q, .scales = &scale, .y = y, .ws = ws, .n_ws = n_stream};
    timing t = time_calls(tp, run_stream, &j, min_s, quick);
    t.wall /= n_stream;
    t.cpu /= n_stream;
    bn_kernels_scalar.ternary_matmul(&ws[n_stream - 1], 0, m, q, &scale, 1, ref, m);
    int bad = memcmp(y, ref, m * sizeof *y) != 0;
    if (bad)
        fprintf(stderr, "bench-kernels: %s streaming decode DIFFERS from scalar\n", kern->name);
    report("ternary_stream24", kern->name, k, m, 1, t, (double)m * k / 4, bn_threadpool_size(tp));
    for (int i = 0; i < n_stream; i++)
        if (kern->release)
            kern->release(&ws[i]);
    free(packed);
    free(q);
    free(y);
    free(ref);
    return bad ? -1 : 0;
}

/* Activation quantization of one n_ff row (6912 floats). */
static int bench_quantize(const bn_kernels *kern, bn_threadpool *tp, double min_s, int quick)
{
    const size_t n = 6912;
    float *x = xmalloc(n * sizeof *x);
    int8_t *q = xmalloc(n), *ref = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(rnd() % 2001) / 1000.0f - 1.0f;
    job j = {.kern = kern, .x = x, .xk = n, .qout = q};
    timing t = time_calls(tp, run_quantize, &j, min_s, quick);
    float sref = bn_kernels_scalar.quantize_row(x, n, ref);
    int bad = memcmp(q, ref, n) != 0 || memcmp(&sref, &j.scales_out, sizeof sref) != 0;
    if (bad)
        fprintf(stderr, "bench-kernels: %s quantize_row DIFFERS from scalar\n", kern->name);
    report("quantize_row", kern->name, n, 1, 1, t, (double)n * 4, bn_threadpool_size(tp));
    free(x);
    free(q);
    free(ref);
    return bad ? -1 : 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench-kernels [-p PATH,...] [-t THREADS] [-r ROWS,...] [-s SECONDS] "
                    "[--quick]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    char paths_arg[256] = "";
    char rows_arg[64] = "1,64";
    int threads = 1, quick = 0;
    double min_s = 0.5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-p") && i + 1 < argc)
            snprintf(paths_arg, sizeof paths_arg, "%s", argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            snprintf(rows_arg, sizeof rows_arg, "%s", argv[++i]);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc)
            min_s = atof(argv[++i]);
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else
            usage();
    }
    if (threads < 1 || threads > 256 || min_s < 0)
        usage();
    size_t rows_list[8], n_rows = 0;
    for (char *s = strtok(rows_arg, ","); s && n_rows < 8; s = strtok(NULL, ",")) {
        long v = atol(s);
        if (v < 1 || v > 4096)
            usage();
        rows_list[n_rows++] = (size_t)v;
    }
    /* paths: the named ones, else every path this CPU runs */
    const bn_kernels *kerns[16];
    int n_k = 0;
    if (paths_arg[0]) {
        for (char *s = strtok(paths_arg, ","); s && n_k < 16; s = strtok(NULL, ",")) {
            if (!(kerns[n_k] = bn_kernels_by_name(s))) {
                fprintf(stderr, "bench-kernels: path '%s' unknown or not runnable here\n", s);
                return 2;
            }
            n_k++;
        }
    } else {
        const char *const *names = bn_kernels_all_names();
        for (int i = 0; names[i] && n_k < 16; i++)
            if ((kerns[n_k] = bn_kernels_by_name(names[i])))
                n_k++;
    }
    bn_err err;
    bn_threadpool *tp = bn_threadpool_create(threads, &err);
    if (!tp) {
        fprintf(stderr, "bench-kernels: %s\n", err.msg);
        return 1;
    }
    /* K x M of the real model: attention q/o, k/v, ffn gate/up, ffn down */
    static const size_t shapes[][2] = {{2560, 2560}, {2560, 640}, {2560, 6912}, {6912, 2560}};
    int bad = 0;
    for (int s = 0; s < 4; s++)
        for (size_t r = 0; r < n_rows; r++)
            for (int p = 0; p < n_k; p++)
                bad |= bench_ternary(kerns[p], shapes[s][0], shapes[s][1], rows_list[r], tp, min_s,
                                     quick);
    for (int p = 0; p < n_k; p++) { /* the LM head is one row: only the last token needs logits */
        bad |= bench_head(kerns[p], 2560, 128256, tp, min_s, quick);
        bad |= bench_head_i8(kerns[p], 2560, 128256, tp, min_s, quick);
        bad |= bench_head_u6(kerns[p], 2560, 128256, tp, min_s, quick);
    }
    for (int p = 0; p < n_k; p++)
        bad |= bench_stream(kerns[p], tp, min_s, quick);
    for (int p = 0; p < n_k; p++)
        bad |= bench_quantize(kerns[p], tp, min_s, quick);
    bn_threadpool_free(tp);

    printf("\n%-16s %-16s %6s %7s %5s %14s %14s %12s %10s\n", "kernel", "path", "K", "M", "rows",
           "ns/call", "CPU ns/call", "weights/s", "GB/s");
    for (int i = 0; i < n_results; i++) {
        const result *r = &results[i];
        printf("%-16s %-16s %6zu %7zu %5zu %14.0f %14.0f %12.3g %10.2f\n", r->what, r->path, r->k,
               r->m, r->rows, r->ns, r->cpu_ns, r->wps, r->gbs);
    }
    if (quick)
        printf("(--quick: one call per case, no timing)\n");
    return bad ? 1 : 0;
}
