/* Harness for bench/neon-measure.sh (not built by CMake: its name does not start with bench_).
 * Runs one kernel path's ternary matmul (or the f16 LM head) on random data, checks the result
 * against the scalar twin (exit 1 on any difference) and prints, for the measuring script,
 * "NEON_MEASURE <symbol> <work units>" for the functions the path spends its time in
 * (work unit = one weight x one activation row, i.e. one multiply-add).
 *
 *   neon_harness PATH K M N_ACT REPS        (PATH = neon | neon-dotprod | neon-i8mm | neon-lut |
 *                                            lmhead | lmhead-i8: the default path's f16 LM head
 *                                            or the screened head's int8 matvec)
 *
 * PATH+prepare (e.g. neon-lut+prepare) reports the repacking of a path with prepare() instead
 * (work unit = one weight repacked).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

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
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

/* The functions each path's time goes to (inner kernel first). Missing ones (inlined) are
 * reported as such by the script. */
static const char *symbols(const char *path)
{
    if (!strcmp(path, "neon"))
        return "rows4_v80 bn_neon_matmul_rows4 bn_neon_sum_s8";
    if (!strcmp(path, "neon-dotprod"))
        return "rows2_dotprod rows4_dotprod bn_neon_matmul_rows4 bn_neon_sum_s8 row1_x4_dotprod "
               "bn_neon_dotprod_matmul";
    if (!strcmp(path, "neon-dotprod-rp"))
        return "quads3_rp quad_x4_rp rp_matmul bn_neon_sum_s8";
    if (!strcmp(path, "neon-i8mm"))
        return "i8mm_tile i8mm_matmul interleave_pair bn_neon_sum_s8 rows2_dotprod "
               "bn_neon_matmul_rows4";
    if (!strcmp(path, "neon-lut"))
        return "lut_block lut_matmul lut_tables bn_neon_sum_s8";
    if (!strcmp(path, "lmhead"))
        return "bn_neon_matvec_f16";
    if (!strcmp(path, "lmhead-i8"))
        return "bn_neon_dotprod_matvec_i8 bn_neon_matvec_i8";
    return "";
}

static int run_lmhead(size_t k, size_t m, int reps)
{
    const bn_kernels *kern = bn_kernels_get();
    uint16_t *w = xmalloc(m * k * 2), *x = xmalloc(k * 2);
    float *ya = xmalloc(m * sizeof *ya), *yb = xmalloc(m * sizeof *yb);
    for (size_t i = 0; i < m * k; i++)
        w[i] = bn_f32_to_f16((float)((int)(rnd() % 2001) - 1000) / 1000.0f);
    for (size_t i = 0; i < k; i++)
        x[i] = bn_f32_to_f16((float)((int)(rnd() % 2001) - 1000) / 100.0f);
    for (int r = 0; r < reps; r++)
        kern->matvec_f16(w, k, 0, m, x, yb);
    bn_kernels_scalar.matvec_f16(w, k, 0, m, x, ya);
    if (memcmp(ya, yb, m * sizeof *ya)) {
        printf("FAIL lmhead (%s) differs from scalar\n", kern->name);
        return 1;
    }
    printf("ok lmhead %s k=%zu m=%zu\n", kern->name, k, m);
    printf("NEON_MEASURE bn_neon_matvec_f16 %llu\n", (unsigned long long)m * k * reps);
    printf("NEON_MEASURE dot_f16_f32 %llu\n", (unsigned long long)m * k * reps);
    return 0;
}

/* The screened LM head's approximate pass: int8 rows x int8 vector (values in [-127, 127]). */
static int run_lmhead_i8(size_t k, size_t m, int reps)
{
    const bn_kernels *kern = bn_kernels_get();
    int8_t *w = xmalloc(m * k), *x = xmalloc(k);
    int32_t *ya = xmalloc(m * sizeof *ya), *yb = xmalloc(m * sizeof *yb);
    for (size_t i = 0; i < m * k; i++)
        w[i] = (int8_t)((int)(rnd() % 255) - 127);
    for (size_t i = 0; i < k; i++)
        x[i] = (int8_t)((int)(rnd() % 255) - 127);
    for (int r = 0; r < reps; r++)
        kern->matvec_i8(w, k, 0, m, x, yb);
    bn_kernels_scalar.matvec_i8(w, k, 0, m, x, ya);
    if (memcmp(ya, yb, m * sizeof *ya)) {
        printf("FAIL lmhead-i8 (%s) differs from scalar\n", kern->name);
        return 1;
    }
    printf("ok lmhead-i8 %s k=%zu m=%zu\n", kern->name, k, m);
    printf("NEON_MEASURE bn_neon_dotprod_matvec_i8 %llu\n", (unsigned long long)m * k * reps);
    printf("NEON_MEASURE bn_neon_matvec_i8 %llu\n", (unsigned long long)m * k * reps);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s PATH K M N_ACT REPS\n", argv[0]);
        return 2;
    }
    char path[64];
    snprintf(path, sizeof path, "%s", argv[1]);
    char *plus = strchr(path, '+');
    const int count_prepare = plus && !strcmp(plus, "+prepare");
    if (plus)
        *plus = 0;
    size_t k = strtoul(argv[2], NULL, 10), m = strtoul(argv[3], NULL, 10);
    size_t n_act = strtoul(argv[4], NULL, 10);
    int reps = atoi(argv[5]);
    if (!k || k % 128 || !m || !n_act || reps < 1) {
        fprintf(stderr, "need K a multiple of 128, M, N_ACT, REPS >= 1\n");
        return 2;
    }
    if (!strcmp(path, "lmhead"))
        return run_lmhead(k, m, reps);
    if (!strcmp(path, "lmhead-i8"))
        return run_lmhead_i8(k, m, reps);
    const bn_kernels *kern = bn_kernels_by_name(path);
    if (!kern) {
        fprintf(stderr, "path %s unknown or not supported by this CPU\n", path);
        return 2;
    }
    uint8_t *packed = xmalloc(m * k / 4);
    int8_t *q = xmalloc(n_act * k);
    float *scales = xmalloc(n_act * sizeof *scales);
    float *ya = xmalloc(n_act * m * sizeof *ya), *yb = xmalloc(n_act * m * sizeof *yb);
    for (size_t i = 0; i < m * k / 4; i++) {
        uint8_t b = 0;
        for (int f = 0; f < 4; f++)
            b = (uint8_t)(b << 2 | rnd() % 3);
        packed[i] = b;
    }
    for (size_t i = 0; i < n_act * k; i++)
        q[i] = (int8_t)((int)(rnd() % 256) - 128);
    for (size_t r = 0; r < n_act; r++)
        scales[r] = 1.0f + (float)r;
    bn_ternary w = {.packed = packed, .k = k, .m = m, .scale = 0.75f, .repacked = NULL};
    if (kern->prepare && kern->prepare(&w)) {
        fprintf(stderr, "prepare failed\n");
        return 2;
    }
    for (int r = 0; r < reps; r++)
        kern->ternary_matmul(&w, 0, m, q, scales, n_act, yb, m);
    bn_kernels_scalar.ternary_matmul(&w, 0, m, q, scales, n_act, ya, m);
    if (memcmp(ya, yb, n_act * m * sizeof *ya)) {
        printf("FAIL %s k=%zu m=%zu n_act=%zu differs from scalar\n", path, k, m, n_act);
        return 1;
    }
    printf("ok %s k=%zu m=%zu n_act=%zu\n", path, k, m, n_act);
    char syms[256];
    snprintf(syms, sizeof syms, "%s", symbols(path));
    if (count_prepare) {
        snprintf(syms, sizeof syms, "%s",
                 !strcmp(path, "neon-lut") ? "lut_prepare group_index" : "rp_prepare decode_row");
        for (char *s = strtok(syms, " "); s; s = strtok(NULL, " "))
            printf("NEON_MEASURE %s %llu\n", s, (unsigned long long)m * k);
        syms[0] = 0;
    }
    for (char *s = strtok(syms, " "); s; s = strtok(NULL, " "))
        printf("NEON_MEASURE %s %llu\n", s, (unsigned long long)m * k * n_act * reps);
    if (kern->release)
        kern->release(&w);
    return 0;
}
