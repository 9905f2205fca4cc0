/* Kernel throughput on the 2B-4T shapes, one thread, for every kernel path this CPU runs:
 * ternary matmul for decode (1 activation row) and prefill (64 rows), activation
 * quantization, the f16 LM head (matvec_f16) and the screened head's int8 pass (matvec_i8,
 * the same 128256 x 2560 rows as int8). Weights are spread over more memory than the
 * caches hold (like one token's pass over 30 layers), so decode figures are memory-bound ones.
 *
 *   bench-matmul [-k PATH] [-r REPS]
 *
 * Times are the thread's CPU time (the machine is often shared: time spent descheduled is not
 * the kernel's). One JSON object per measurement, then a table. */
#include "bench_clock.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"

static double now_s(void) { return bench_clock_s(CLOCK_THREAD_CPUTIME_ID); }

static uint32_t rng = 1;
static uint32_t rnd(void)
{
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}

typedef struct row {
    const char *path, *what;
    double ms, gbs, gops;
} row;

static row rows[64];
static int n_rows;

static void report(const char *path, const char *what, double ms, double bytes, double ops)
{
    row r = {path, what, ms, bytes / (ms * 1e-3) / 1e9, ops / (ms * 1e-3) / 1e9};
    printf("{\"bench\":\"matmul\",\"kernels\":\"%s\",\"case\":\"%s\",\"ms\":%.3f,"
           "\"gb_s\":%.2f,\"gops\":%.2f}\n",
           path, what, r.ms, r.gbs, r.gops);
    if (n_rows < 64)
        rows[n_rows++] = r;
}

enum { n_mats = 24 }; /* 24 x (6912 x 2560 / 4) = 106 MB of weights: beyond the caches */

static void bench_path(const bn_kernels *k, int reps)
{
    const size_t K = 2560, M = 6912, NP = 64, V = 128256;
    uint8_t *packed = malloc(n_mats * M * K / 4);
    int8_t *q = malloc(NP * M);
    float *scales = malloc(NP * sizeof *scales), *y = malloc(NP * M * sizeof *y);
    float *x = malloc(M * sizeof *x);
    uint16_t *emb = malloc(V * K * 2), *x16 = malloc(K * 2);
    float *logits = malloc(V * sizeof *logits);
    if (!packed || !q || !scales || !y || !x || !emb || !x16 || !logits) {
        fprintf(stderr, "bench-matmul: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n_mats * M * K / 4; i++) {
        uint8_t b = 0;
        for (int j = 0; j < 4; j++)
            b = (uint8_t)(b << 2 | rnd() % 3);
        packed[i] = b;
    }
    for (size_t i = 0; i < M; i++)
        x[i] = (float)(rnd() % 2001) / 1000.0f - 1.0f;
    for (size_t r = 0; r < NP; r++)
        scales[r] = k->quantize_row(x, K, q + r * K);
    for (size_t i = 0; i < V * K; i++)
        emb[i] = bn_f32_to_f16((float)(rnd() % 2001) / 1000.0f - 1.0f);
    bn_f32_to_f16_row(x, x16, K);

    /* decode: gate-shaped matrices (6912 x 2560), one activation row, cycling through them */
    bn_ternary w = {.k = K, .m = M, .scale = 0.5f};
    for (int pass = 0; pass < 2; pass++) { /* pass 0 warms up */
        double t0 = now_s();
        for (int r = 0; r < reps; r++)
            for (int i = 0; i < n_mats; i++) {
                w.packed = packed + i * M * K / 4;
                k->ternary_matmul(&w, 0, M, q, scales, 1, y, M);
            }
        double ms = (now_s() - t0) * 1e3 / (reps * n_mats);
        if (pass)
            report(k->name, "ternary decode 6912x2560", ms, (double)M * K / 4,
                   2.0 * (double)M * K);
    }
    /* prefill: 64 activation rows */
    {
        w.packed = packed;
        double t0 = now_s();
        int n = reps > 4 ? reps / 4 : 1;
        for (int r = 0; r < n; r++)
            k->ternary_matmul(&w, 0, M, q, scales, NP, y, M);
        double ms = (now_s() - t0) * 1e3 / n;
        report(k->name, "ternary prefill64 6912x2560", ms, (double)M * K / 4,
               2.0 * (double)M * K * NP);
    }
    /* activation quantization of an n_ff row */
    {
        double t0 = now_s();
        for (int r = 0; r < 1000; r++)
            scales[0] = k->quantize_row(x, M, q);
        double ms = (now_s() - t0) * 1e3 / 1000;
        report(k->name, "quantize_row 6912", ms, (double)M * 4, (double)M);
    }
    /* the LM head: 128256 x 2560 f16 */
    for (int pass = 0; pass < 2; pass++) {
        double t0 = now_s();
        int n = reps > 2 ? reps / 2 : 1;
        for (int r = 0; r < n; r++)
            k->matvec_f16(emb, K, 0, V, x16, logits);
        double ms = (now_s() - t0) * 1e3 / n;
        if (pass)
            report(k->name, "matvec_f16 128256x2560", ms, (double)V * K * 2,
                   2.0 * (double)V * K);
    }
    /* the screened LM head's approximate pass: the same rows as int8 */
    {
        int8_t *w8 = malloc((size_t)V * K), *x8 = malloc(K);
        int32_t *y8 = malloc((size_t)V * sizeof *y8);
        if (w8 && x8 && y8) {
            for (size_t i = 0; i < (size_t)V * K; i++)
                w8[i] = (int8_t)((int)(rnd() % 255) - 127);
            for (size_t i = 0; i < K; i++)
                x8[i] = (int8_t)((int)(rnd() % 255) - 127);
            for (int pass = 0; pass < 2; pass++) {
                double t0 = now_s();
                int n = reps > 2 ? reps / 2 : 1;
                for (int r = 0; r < n; r++)
                    k->matvec_i8(w8, K, 0, V, x8, y8);
                double ms = (now_s() - t0) * 1e3 / n;
                if (pass)
                    report(k->name, "matvec_i8 128256x2560", ms, (double)V * K,
                           2.0 * (double)V * K);
            }
        }
        free(w8);
        free(x8);
        free(y8);
    }
    free(packed);
    free(q);
    free(scales);
    free(y);
    free(x);
    free(emb);
    free(x16);
    free(logits);
}

int main(int argc, char **argv)
{
    const char *only = NULL;
    int reps = 4;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-k") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench-matmul [-k PATH] [-r REPS]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 1000) {
        fprintf(stderr, "bench-matmul: -r must be in 1..1000\n");
        return 2;
    }
    const char *const *names = bn_kernels_all_names();
    for (int i = 0; names[i]; i++) {
        if (only && strcmp(only, names[i]))
            continue;
        const bn_kernels *k = bn_kernels_by_name(names[i]);
        if (!k) {
            printf("{\"bench\":\"matmul\",\"kernels\":\"%s\",\"skipped\":\"not supported\"}\n",
                   names[i]);
            continue;
        }
        bench_path(k, reps);
    }
    printf("\n| kernels | case | ms | GB/s (weights) | G ops/s |\n|---|---|---|---|---|\n");
    for (int i = 0; i < n_rows; i++)
        printf("| %s | %s | %.3f | %.2f | %.2f |\n", rows[i].path, rows[i].what, rows[i].ms,
               rows[i].gbs, rows[i].gops);
    return 0;
}
