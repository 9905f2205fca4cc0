/* Every kernel path this CPU can run against the scalar twins (the definition of the results):
 * - ternary matmul bit-identical (memcmp of the float outputs, and of the untouched outputs
 *   around the row range) on every shape of the real model, decode (1 activation row) and a
 *   small prefill (5 rows), split into row ranges the way the thread pool splits them, plus odd
 *   shapes with every row range, a grid of block counts and row/activation counts around the
 *   kernels' 4-row groups, rows longer than the kernels' accumulation chunks and buffers, and
 *   extreme activations that would overflow an int16 sum;
 * - paths with prepare() (repacked weights) go through prepare/matmul/release;
 * - quantize_row and the f16 dot products bit-identical;
 * - the dispatcher offers exactly the paths the CPU supports and picks the best by default.
 * Code 3 (never written by the reference) is not part of the contract: kernels.h lets each
 * path treat it as anything, so the weights here use codes 0..2 only.
 * On x86 this covers scalar and the x86 paths; on aarch64 scalar and every NEON path the
 * emulated/real CPU supports (ctest runs it under qemu -cpu neoverse-n1, max and cortex-a53). */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#if defined(__aarch64__)
#include <sys/auxv.h>
#endif

#include "kernels.h"
#include "testdata.h"
#include "threadpool.h"

static bn_test_rng rng = {0x2545f4914f6cdd1dull};
static uint32_t rnd(void) { return bn_test_rand(&rng); }
static float rnd_float(float amp) { return bn_test_rand_float(&rng, amp); }

/* The runnable paths other than scalar (NULL-terminated). */
static const bn_kernels *paths[16];
static int n_paths;

static int setup(void **state)
{
    (void)state;
    const char *const *names = bn_kernels_all_names();
    n_paths = 0;
    for (int i = 0; names[i] && n_paths < 15; i++) {
        const bn_kernels *k = bn_kernels_by_name(names[i]);
        if (!k)
            print_message("note: path %s is compiled in but this CPU cannot run it\n", names[i]);
        else if (strcmp(k->name, "scalar") != 0)
            paths[n_paths++] = k;
    }
    paths[n_paths] = NULL;
    return 0;
}

/* ---------------------------------------------------------------- ternary matmul */

enum {
    w_random,
    w_plus,
    w_minus,
    w_zero
};
enum {
    x_random,
    x_max,
    x_min,
    x_alternating,
    x_small
};

static uint8_t *make_weights(size_t m, size_t k, int kind)
{
    uint8_t *p = malloc(m * k / 4);
    assert_non_null(p);
    for (size_t i = 0; i < m * k / 4; i++) {
        uint8_t b = 0;
        for (int f = 0; f < 4; f++) {
            uint8_t c = kind == w_plus ? 2 : kind == w_minus ? 0 : kind == w_zero ? 1 : rnd() % 3;
            b = (uint8_t)(b << 2 | c);
        }
        p[i] = b;
    }
    return p;
}

static int8_t *make_acts(size_t n_act, size_t k, int kind)
{
    int8_t *q = malloc(n_act * k);
    assert_non_null(q);
    for (size_t i = 0; i < n_act * k; i++)
        q[i] = kind == x_max           ? 127
               : kind == x_min         ? -128
               : kind == x_alternating ? (i % 2 ? 127 : -128)
               : kind == x_small       ? (int8_t)((int)(rnd() % 7) - 3)
                                       : (int8_t)((int)(rnd() % 256) - 128);
    return q;
}

/* Runs [rb, re) on the scalar twin and on kern (after its prepare, when it has one) into
 * outputs pre-filled with the same sentinel, and compares the whole buffers byte for byte. */
static void check_range(const bn_kernels *kern, bn_ternary *w, const int8_t *q, const float *scales,
                        size_t n_act, size_t rb, size_t re)
{
    const size_t ldy = w->m + 3;
    float *ya = malloc(n_act * ldy * sizeof *ya), *yb = malloc(n_act * ldy * sizeof *yb);
    assert_true(ya && yb);
    for (size_t i = 0; i < n_act * ldy; i++)
        ya[i] = yb[i] = -777.25f;
    bn_kernels_scalar.ternary_matmul(w, rb, re, q, scales, n_act, ya, ldy);
    kern->ternary_matmul(w, rb, re, q, scales, n_act, yb, ldy);
    if (memcmp(ya, yb, n_act * ldy * sizeof *ya)) {
        for (size_t i = 0; i < n_act * ldy; i++)
            if (memcmp(&ya[i], &yb[i], sizeof *ya))
                fail_msg("%s: k=%zu m=%zu n_act=%zu rows [%zu,%zu): y[%zu] scalar %.9g, got %.9g",
                         kern->name, w->k, w->m, n_act, rb, re, i, ya[i], yb[i]);
    }
    free(ya);
    free(yb);
}

static void with_prepare(const bn_kernels *kern, bn_ternary *w)
{
    w->repacked = NULL;
    if (kern->prepare)
        assert_int_equal(kern->prepare(w), 0);
}

static void without_prepare(const bn_kernels *kern, bn_ternary *w)
{
    if (kern->release && w->repacked)
        kern->release(w);
    w->repacked = NULL;
}

/* One matrix, one activation set: the whole range, then the shares of nth threads. */
static void check_shape(size_t k, size_t m, size_t n_act, int wkind, int xkind, int nth)
{
    uint8_t *packed = make_weights(m, k, wkind);
    int8_t *q = make_acts(n_act, k, xkind);
    float scales[16];
    assert_true(n_act <= 16);
    for (size_t r = 0; r < n_act; r++)
        scales[r] = 1.0f + (float)(rnd() % 1000) / 7.0f;
    bn_ternary w = {.packed = packed, .k = k, .m = m, .scale = 0.8125f + rnd_float(0.1f)};
    for (int p = 0; p < n_paths; p++) {
        with_prepare(paths[p], &w);
        check_range(paths[p], &w, q, scales, n_act, 0, m);
        for (int ith = 0; ith < nth; ith++) {
            size_t b, e;
            bn_split_range(m, paths[p]->row_block, ith, nth, &b, &e);
            if (b < e)
                check_range(paths[p], &w, q, scales, n_act, b, e);
        }
        without_prepare(paths[p], &w);
    }
    free(packed);
    free(q);
}

/* The real model's matrices (K x M): attention q/o 2560x2560, k/v 2560x640, gate/up
 * 2560x6912, down 6912x2560; decode and a 5-row prefill, split over 3 threads. */
static void test_real_shapes(void **state)
{
    (void)state;
    const size_t shapes[][2] = {{2560, 2560}, {2560, 640}, {2560, 6912}, {6912, 2560}};
    for (int s = 0; s < 4; s++) {
        check_shape(shapes[s][0], shapes[s][1], 1, w_random, x_random, 3);
        check_shape(shapes[s][0], shapes[s][1], 5, w_random, x_random, 3);
    }
}

/* Small K, M around every row_block, and every row range [rb, re) of them. */
static void test_odd_shapes_every_range(void **state)
{
    (void)state;
    const size_t ks[] = {128, 384};
    const size_t ms[] = {1, 3, 5, 17};
    const size_t acts[] = {1, 2, 5};
    for (int ki = 0; ki < 2; ki++)
        for (int mi = 0; mi < 4; mi++)
            for (int ai = 0; ai < 3; ai++) {
                size_t k = ks[ki], m = ms[mi], n_act = acts[ai];
                uint8_t *packed = make_weights(m, k, w_random);
                int8_t *q = make_acts(n_act, k, x_random);
                float scales[5] = {3.5f, 127.0f, 0.25f, 9.0f, 1.0f};
                bn_ternary w = {.packed = packed, .k = k, .m = m, .scale = 1.5f};
                for (int p = 0; p < n_paths; p++) {
                    with_prepare(paths[p], &w);
                    for (size_t rb = 0; rb <= m; rb++)
                        for (size_t re = rb; re <= m; re++)
                            check_range(paths[p], &w, q, scales, n_act, rb, re);
                    without_prepare(paths[p], &w);
                }
                free(packed);
                free(q);
            }
}

/* K above what some paths keep on the stack (lookup tables, interleaved activations): those
 * paths fall back to an in-place kernel and must still agree. */
static void test_large_k(void **state)
{
    (void)state;
    check_shape(8320, 13, 1, w_random, x_random, 2);
    check_shape(8320, 13, 5, w_random, x_random, 2);
    check_shape(8320, 13, 8, w_random, x_min, 1);
}

/* Real inner sizes (2560, 6912) and small or odd block counts, with output rows and activation
 * rows around the kernels' 4-row groups; each over the whole range and, when m > 4, over a
 * range that starts at a row-block boundary and ends at m. */
static void test_block_grid(void **state)
{
    (void)state;
    const size_t ks[] = {128, 256, 384, 640, 2560, 6912};
    const size_t ms[] = {1, 3, 4, 5, 8, 13};
    const size_t acts[] = {1, 2, 3, 4, 5, 8, 9};
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
        for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
            for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++) {
                size_t k = ks[ki], m = ms[mi], n_act = acts[ai];
                uint8_t *packed = make_weights(m, k, w_random);
                int8_t *q = make_acts(n_act, k, x_random);
                float scales[9];
                for (size_t r = 0; r < n_act; r++)
                    scales[r] = 0.5f + (float)(rnd() % 1000) / 7.0f;
                bn_ternary w = {.packed = packed, .k = k, .m = m, .scale = 0.0123f};
                for (int p = 0; p < n_paths; p++) {
                    with_prepare(paths[p], &w);
                    check_range(paths[p], &w, q, scales, n_act, 0, m);
                    if (m > 4)
                        check_range(paths[p], &w, q, scales, n_act, 4, m);
                    without_prepare(paths[p], &w);
                }
                free(packed);
                free(q);
            }
}

/* One matrix, one activation set, one row range [rb, re) on every path. */
static void check_one_range(size_t k, size_t m, size_t n_act, size_t rb, size_t re)
{
    uint8_t *packed = make_weights(m, k, w_random);
    int8_t *q = make_acts(n_act, k, x_random);
    float scales[16];
    assert_true(n_act <= 16);
    for (size_t r = 0; r < n_act; r++)
        scales[r] = 0.5f + (float)(rnd() % 1000) / 7.0f;
    bn_ternary w = {.packed = packed, .k = k, .m = m, .scale = 0.0123f};
    for (int p = 0; p < n_paths; p++) {
        with_prepare(paths[p], &w);
        check_range(paths[p], &w, q, scales, n_act, rb, re);
        without_prepare(paths[p], &w);
    }
    free(packed);
    free(q);
}

/* Batches larger than the kernels' cache blocks: more activation rows than one permuted block
 * (AVX-512: 64) with a partial group of four after them, and more weight rows than one ~256 KB
 * weight block, over a share that starts and ends mid-group. */
static void test_blocked_tiles(void **state)
{
    (void)state;
    const size_t k = 2560, m = 900, n_act = 70;
    uint8_t *packed = make_weights(m, k, w_random);
    int8_t *q = make_acts(n_act, k, x_random);
    float scales[70];
    for (size_t r = 0; r < n_act; r++)
        scales[r] = 0.5f + (float)(rnd() % 1000) / 7.0f;
    bn_ternary w = {.packed = packed, .k = k, .m = m, .scale = 0.0123f};
    for (int p = 0; p < n_paths; p++) {
        with_prepare(paths[p], &w);
        check_range(paths[p], &w, q, scales, n_act, 3, 898);
        check_range(paths[p], &w, q, scales, 68, 0, m);
        without_prepare(paths[p], &w);
    }
    free(packed);
    free(q);
}

/* A thread's share of a real matrix, and rows longer than the kernels' internal chunks. */
static void test_shares_and_long_rows(void **state)
{
    (void)state;
    check_one_range(2560, 1284, 1, 640, 1284); /* rows [640, 1284) of a 2560-wide matrix */
    check_one_range(6912, 68, 6, 4, 68);       /* a prefill block's share */
    check_one_range(128 * 8195, 2, 1, 0, 2);   /* past the decode kernels' 8192-block chunks */
    check_one_range(128 * 65, 5, 5, 0, 5);     /* past the AVX-512 tile's 8192-byte buffer */
    check_one_range(23040, 9, 8, 0, 9);        /* Falcon3-7B/10B ffn_down: tiles, heap buffer */
}

/* Prefill batches: every activation row count 1..n_max (each kernel's row groups, tiles and
 * leftovers), distinct scales per row (a row's epilogue taking another row's scale or sum
 * shows), weight rows around the 4-row tiles, over the whole range and a share. */
static void test_every_row_count(void **state)
{
    (void)state;
    enum {
        n_max = 37
    };
    const size_t ks[] = {256, 2560};
    const size_t m = 13;
    float scales[n_max];
    for (size_t r = 0; r < n_max; r++)
        scales[r] = 0.75f + (float)r * 1.625f;
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        const size_t k = ks[ki];
        uint8_t *packed = make_weights(m, k, w_random);
        int8_t *q = make_acts(n_max, k, x_random);
        bn_ternary w = {.packed = packed, .k = k, .m = m, .scale = 0.0123f};
        for (int p = 0; p < n_paths; p++) {
            with_prepare(paths[p], &w);
            for (size_t n_act = 1; n_act <= n_max; n_act++) {
                check_range(paths[p], &w, q, scales, n_act, 0, m);
                check_range(paths[p], &w, q, scales, n_act, 4, m);
            }
            without_prepare(paths[p], &w);
        }
        free(packed);
        free(q);
    }
    /* extremes at a count that fills tiles and leaves a remainder */
    const int xk[] = {x_max, x_min, x_alternating};
    const int wk[] = {w_plus, w_minus};
    for (int a = 0; a < 3; a++)
        for (int c = 0; c < 2; c++) {
            uint8_t *packed = make_weights(8, 6912, wk[c]);
            int8_t *q = make_acts(n_max, 6912, xk[a]);
            bn_ternary w = {.packed = packed, .k = 6912, .m = 8, .scale = 0.5f};
            for (int p = 0; p < n_paths; p++) {
                with_prepare(paths[p], &w);
                check_range(paths[p], &w, q, scales, n_max, 0, 8);
                without_prepare(paths[p], &w);
            }
            free(packed);
            free(q);
        }
}

/* Every product at its largest magnitude and of one sign: an int16 partial sum that could
 * overflow does; also rows of one code and tiny activations. */
static void test_extreme_activations(void **state)
{
    (void)state;
    const int xk[] = {x_max, x_min, x_alternating, x_small};
    const int wk[] = {w_plus, w_minus, w_zero, w_random};
    for (int a = 0; a < 4; a++)
        for (int c = 0; c < 4; c++) {
            check_shape(6912, 20, 1, wk[c], xk[a], 2);
            check_shape(6912, 7, 4, wk[c], xk[a], 1);
            check_shape(128, 9, 2, wk[c], xk[a], 1);
            check_shape(6912, 8, 1, wk[c], xk[a], 1);
            check_shape(6912, 8, 5, wk[c], xk[a], 1);
            check_shape(2560, 5, 4, wk[c], xk[a], 1);
        }
}

/* Independent of the scalar twin: all weights +1 and q = -128 give T = -128 k; all -1 and
 * q = 127 give T = -127 k; zero weights give 0. */
static void test_known_answers(void **state)
{
    (void)state;
    const size_t k = 6912, m = 6;
    const struct {
        int w, x;
        double t;
    } cases[] = {
        {w_plus, x_min, -128.0 * 6912}, {w_minus, x_max, -127.0 * 6912}, {w_zero, x_min, 0.0}};
    const bn_kernels *all[17] = {&bn_kernels_scalar};
    for (int p = 0; p < n_paths; p++)
        all[p + 1] = paths[p];
    for (int c = 0; c < 3; c++) {
        uint8_t *packed = make_weights(m, k, cases[c].w);
        int8_t *q = make_acts(1, k, cases[c].x);
        bn_ternary w = {.packed = packed, .k = k, .m = m, .scale = 0.5f};
        const float s = 2.0f;
        for (int p = 0; p <= n_paths; p++) {
            float y[6];
            with_prepare(all[p], &w);
            all[p]->ternary_matmul(&w, 0, m, q, &s, 1, y, m);
            without_prepare(all[p], &w);
            for (size_t i = 0; i < m; i++)
                if (y[i] != (float)(cases[c].t / 2.0 * 0.5))
                    fail_msg("%s: case %d row %zu: %.9g", all[p]->name, c, i, y[i]);
        }
        free(packed);
        free(q);
    }
}

/* ---------------------------------------------------------------- quantize_row */

/* Sizes around every vector width; inputs: random (two amplitudes), tiny (below the 1e-5
 * amax floor), large, exact .5 ties, zeros (the floor), huge (1e30), and a row mostly small
 * with large negatives. (An infinite input is left out: inf * (127/inf) is NaN, whose
 * conversion to int8 the scalar twin leaves undefined.) */
static void test_quantize_identical(void **state)
{
    (void)state;
    const size_t sizes[] = {0,  1,  3,  4,  7,   8,   15,   16,   17,
                            31, 32, 33, 63, 100, 128, 2560, 6912, 6913};
    enum {
        n_kinds = 8
    };
    float *x = malloc(7000 * sizeof *x);
    int8_t *qa = malloc(7000), *qb = malloc(7000);
    assert_true(x && qa && qb);
    for (int p = 0; p < n_paths; p++)
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
            for (int kind = 0; kind < n_kinds; kind++) {
                size_t n = sizes[si];
                for (size_t i = 0; i < n; i++) {
                    switch (kind) {
                    case 0: x[i] = rnd_float(4.0f); break;
                    case 1: x[i] = rnd_float(1e-7f); break;
                    case 2: x[i] = rnd_float(3e4f); break;
                    /* exact .5 ties: amax 63.5 (x[0] below) makes s = 2, so x*s = m/2 */
                    case 3: x[i] = (float)((int)(rnd() % 255) - 127) / 4.0f; break;
                    case 4: x[i] = 0.0f; break;
                    case 5: x[i] = rnd_float(3.0f); break;
                    case 6: x[i] = rnd_float(1e30f); break;
                    default: x[i] = i % 3 ? rnd_float(1.0f) : -1e4f; break;
                    }
                }
                if (kind == 3 && n)
                    x[0] = 63.5f;
                float sa = bn_kernels_scalar.quantize_row(x, n, qa);
                float sb = paths[p]->quantize_row(x, n, qb);
                if (memcmp(&sa, &sb, sizeof sa))
                    fail_msg("%s: n=%zu kind %d: scale %.9g vs %.9g", paths[p]->name, n, kind, sa,
                             sb);
                if (n && memcmp(qa, qb, n))
                    fail_msg("%s: n=%zu kind %d: quantized rows differ", paths[p]->name, n, kind);
            }
    free(x);
    free(qa);
    free(qb);
}

/* ---------------------------------------------------------------- f16 */

static uint16_t rnd_half(int kind)
{
    if (kind == 1) /* any finite half, subnormals included */
        for (;;) {
            uint16_t h = (uint16_t)rnd();
            if ((h & 0x7c00u) != 0x7c00u)
                return h;
        }
    return bn_f32_to_f16(rnd_float(kind == 2 ? 60000.0f : 2.0f));
}

/* Every path reproduces the scalar's summation order, so the results are bit-identical
 * (no tolerance). */
static void test_dot_f16_identical(void **state)
{
    (void)state;
    const size_t ns[] = {0, 1, 5, 63, 64, 65, 127, 128, 1000, 2560, 6912};
    uint16_t *a = malloc(7000 * 2), *b = malloc(7000 * 2);
    assert_true(a && b);
    for (int p = 0; p < n_paths; p++)
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
            for (int kind = 0; kind < 3; kind++) {
                for (size_t i = 0; i < ns[ni]; i++) {
                    a[i] = rnd_half(kind);
                    b[i] = rnd_half(kind == 2 ? 0 : kind);
                }
                float da = bn_kernels_scalar.dot_f16(a, b, ns[ni]);
                float db = paths[p]->dot_f16(a, b, ns[ni]);
                if (memcmp(&da, &db, sizeof da))
                    fail_msg("%s: n=%zu kind %d: scalar %.9g vs %.9g", paths[p]->name, ns[ni], kind,
                             da, db);
            }
    free(a);
    free(b);
}

/* dot_f16_rows on every path (the scalar twin included) against one dot_f16 per result, bit for
 * bit: lengths with and without a 64-element body and a tail (the attention's head_dim 128 and
 * its probs.V lengths, multiples of 32), strided rows (19: blocks of 4 and 16 rows, and the
 * rest), 1..9 vectors (blocks of 4 and single ones), large values (f16 up to 60000) whose sums round differently in another order. */
static void test_dot_f16_rows_identical(void **state)
{
    (void)state;
    const size_t ns[] = {0, 1, 32, 63, 64, 96, 128, 160, 1000, 2048};
    const size_t n_vecs[] = {1, 3, 4, 5, 9};
    enum {
        rows = 19, /* blocks of 4 and of 16 rows, and the rest */
        lda = 2100,
        max_vec = 9,
        ldb = 2056,
        ldy = 23
    };
    uint16_t *a = malloc((size_t)rows * lda * 2), *bh = malloc((size_t)max_vec * ldb * 2);
    float *b = malloc((size_t)max_vec * ldb * sizeof *b);
    float y[max_vec * ldy], want[max_vec * ldy];
    assert_true(a && bh && b);
    const bn_kernels *all[17] = {&bn_kernels_scalar};
    for (int p = 0; p < n_paths; p++)
        all[p + 1] = paths[p];
    for (int p = 0; p <= n_paths; p++)
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
            for (size_t vi = 0; vi < sizeof n_vecs / sizeof n_vecs[0]; vi++)
                for (int kind = 0; kind < 3; kind++) {
                    const size_t n = ns[ni], nv = n_vecs[vi];
                    for (size_t i = 0; i < (size_t)rows * lda; i++)
                        a[i] = rnd_half(kind);
                    for (size_t i = 0; i < (size_t)max_vec * ldb; i++) {
                        bh[i] = rnd_half(kind == 2 ? 0 : kind);
                        b[i] = bn_f16_to_f32(bh[i]);
                    }
                    for (size_t v = 0; v < nv; v++)
                        for (size_t r = 0; r < rows; r++)
                            want[v * ldy + r] = bn_kernels_scalar.dot_f16(a + r * lda, bh + v * ldb,
                                                                          n);
                    memset(y, 0xff, sizeof y);
                    all[p]->dot_f16_rows(a, lda, rows, b, ldb, nv, n, y, ldy);
                    for (size_t v = 0; v < nv; v++)
                        for (size_t r = 0; r < rows; r++)
                            if (memcmp(&y[v * ldy + r], &want[v * ldy + r], sizeof *y))
                                fail_msg("%s: n=%zu vectors %zu kind %d, row %zu vector %zu: %.9g "
                                         "vs dot_f16 %.9g",
                                         all[p]->name, n, nv, kind, r, v, y[v * ldy + r],
                                         want[v * ldy + r]);
                }
    free(a);
    free(bh);
    free(b);
}

/* The tail of dot_f16 is summed in double in element order; with tiny products first and then
 * +2^30 and -2^30 the result depends on that order (another order cancels the big terms
 * first and keeps every tiny one), so a kernel that sums a tail in another order fails here. */
static void test_dot_f16_rows_tail_order(void **state)
{
    (void)state;
    enum {
        n = 96, /* 64-element body, 32-element tail */
        rows = 18,
        vecs = 5 /* a block of 4 vectors and one alone */
    };
    uint16_t a[rows * n], bh[vecs * n];
    float b[vecs * n], y[vecs * rows], want;
    for (int i = 0; i < rows * n; i++)
        a[i] = rnd_half(0);
    for (int i = 0; i < vecs * n; i++)
        bh[i] = rnd_half(0);
    for (int r = 0; r < rows; r++)
        for (int j = 64; j < n; j++)
            a[r * n + j] = j < n - 2 ? (uint16_t)(1 + r) : 0x7800; /* (1+r) 2^-24, or 32768 */
    for (int v = 0; v < vecs; v++)
        for (int j = 64; j < n; j++)
            bh[v * n + j] = j < n - 2 ? 0x3c00 : j == n - 2 ? 0x7800 : 0xf800; /* 1, +-32768 */
    for (int i = 0; i < vecs * n; i++)
        b[i] = bn_f16_to_f32(bh[i]);
    const bn_kernels *all[17] = {&bn_kernels_scalar};
    for (int p = 0; p < n_paths; p++)
        all[p + 1] = paths[p];
    for (int p = 0; p <= n_paths; p++) {
        all[p]->dot_f16_rows(a, n, rows, b, n, vecs, n, y, rows);
        for (int v = 0; v < vecs; v++)
            for (int r = 0; r < rows; r++) {
                want = bn_kernels_scalar.dot_f16(a + r * n, bh + v * n, n);
                if (memcmp(&y[v * rows + r], &want, sizeof want))
                    fail_msg("%s: row %d vector %d: %.9g vs dot_f16 %.9g", all[p]->name, r, v,
                             y[v * rows + r], want);
            }
    }
}

/* k: a few blocks, odd, real, past the AVX-512 path's converted-x buffer (4160, 4200), long;
 * row ranges around the kernels' row groups. */
static void test_matvec_f16_identical(void **state)
{
    (void)state;
    const size_t ks[] = {64, 100, 2560, 4160, 4200, 8256};
    enum {
        n_k = sizeof ks / sizeof ks[0],
        m = 11
    };
    uint16_t *w = malloc(m * 8256 * 2), *x = malloc(8256 * 2);
    float ya[m], yb[m];
    assert_true(w && x);
    for (int p = 0; p < n_paths; p++)
        for (size_t ki = 0; ki < n_k; ki++) {
            size_t k = ks[ki];
            /* any finite weight (subnormals too); activations small, large, or any */
            for (size_t i = 0; i < m * k; i++)
                w[i] = rnd_half(ki % 2 ? 1 : 0);
            for (size_t i = 0; i < k; i++)
                x[i] = rnd_half((int)(ki % 3));
            const size_t ranges[][2] = {{0, 11}, {1, 11}, {0, 9}, {1, 9}, {4, 8}, {3, 3}};
            for (int r = 0; r < 6; r++) {
                for (size_t i = 0; i < m; i++)
                    ya[i] = yb[i] = -3.0f;
                bn_kernels_scalar.matvec_f16(w, k, ranges[r][0], ranges[r][1], x, ya);
                paths[p]->matvec_f16(w, k, ranges[r][0], ranges[r][1], x, yb);
                if (memcmp(ya, yb, sizeof ya))
                    fail_msg("%s: matvec k=%zu range %d differs", paths[p]->name, k, r);
            }
        }
    free(w);
    free(x);
}

/* ---------------------------------------------------------------- optional float kernels */

/* A path's softmax (when it has one) gives the scalar's bits, over scores that reach expf's
 * underflow and the subnormal range (the two-step power-of-two scaling) as well as ordinary
 * ones. */
static void test_softmax_identical(void **state)
{
    (void)state;
    const size_t ns[] = {1, 2, 15, 16, 17, 33, 100, 1000, 4096};
    const float amps[] = {0.5f, 8.0f, 90.0f, 300.0f};
    float *a = malloc(4096 * sizeof *a), *b = malloc(4096 * sizeof *b);
    assert_true(a && b);
    for (int p = 0; p < n_paths; p++) {
        if (!paths[p]->softmax)
            continue;
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
            for (size_t ai = 0; ai < sizeof amps / sizeof amps[0]; ai++) {
                for (size_t i = 0; i < ns[ni]; i++)
                    a[i] = b[i] = rnd_float(amps[ai]);
                bn_softmax_f32(a, ns[ni]);
                paths[p]->softmax(b, ns[ni]);
                for (size_t i = 0; i < ns[ni]; i++)
                    if (memcmp(&a[i], &b[i], sizeof a[i]))
                        fail_msg("%s: n=%zu amp %g, element %zu: %a vs %a", paths[p]->name, ns[ni],
                                 amps[ai], i, a[i], b[i]);
            }
    }
    free(a);
    free(b);
}

/* A path's SwiGLU activation (when it has one) gives the scalar's bits, over gate values that
 * reach the exp's overflow and underflow as well as ordinary ones. */
static void test_silu_mul_identical(void **state)
{
    (void)state;
    const size_t ns[] = {1, 15, 16, 17, 100, 4096};
    const float amps[] = {0.5f, 8.0f, 90.0f, 300.0f};
    float *g1 = malloc(4096 * sizeof *g1), *g2 = malloc(4096 * sizeof *g2),
          *u = malloc(4096 * sizeof *u);
    assert_true(g1 && g2 && u);
    int checked = 0;
    for (int p = 0; p < n_paths; p++) {
        if (!paths[p]->silu_mul)
            continue;
        checked++;
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
            for (size_t ai = 0; ai < sizeof amps / sizeof amps[0]; ai++) {
                for (size_t i = 0; i < ns[ni]; i++) {
                    g1[i] = g2[i] = rnd_float(amps[ai]);
                    u[i] = rnd_float(4.0f);
                }
                bn_silu_mul_f32(g1, u, ns[ni]);
                paths[p]->silu_mul(g2, u, ns[ni]);
                for (size_t i = 0; i < ns[ni]; i++)
                    if (memcmp(&g1[i], &g2[i], sizeof g1[i]))
                        fail_msg("%s: n=%zu amp %g, element %zu: %a vs %a", paths[p]->name, ns[ni],
                                 amps[ai], i, g1[i], g2[i]);
            }
    }
    free(g1);
    free(g2);
    free(u);
    if (!checked)
        skip(); /* no path of this CPU has its own (x86 only) */
}

/* A path's f16 -> f32 row conversion gives bn_f16_to_f32's bits for every half (subnormals,
 * infinities, quiet and signalling NaNs with their payloads), at every row tail length. And the
 * scalar quiets a signalling NaN as F16C and FCVT do (so that the paths can agree). */
static void test_f16_to_f32_row_identical(void **state)
{
    (void)state;
    enum {
        n = 65536 + 15
    };
    uint16_t *x = malloc(n * 2);
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    assert_true(x && a && b);
    for (size_t i = 0; i < n; i++)
        x[i] = (uint16_t)(i * 40503u); /* every half once in the first 65536 (40503 is odd) */
    const float snan = bn_f16_to_f32(0x7c01);
    uint32_t bits;
    memcpy(&bits, &snan, 4);
    assert_int_equal(bits, 0x7fc02000u);
    int checked = 0;
    for (int p = 0; p < n_paths; p++) {
        if (!paths[p]->f16_to_f32_row)
            continue;
        checked++;
        for (size_t len = n - 15; len <= n; len++) {
            bn_f16_to_f32_row(x, a, len);
            memset(b, 0xA5, len * sizeof *b);
            paths[p]->f16_to_f32_row(x, b, len);
            if (memcmp(a, b, len * sizeof *a) != 0)
                for (size_t i = 0; i < len; i++)
                    if (memcmp(&a[i], &b[i], 4) != 0)
                        fail_msg("%s: half 0x%04x: %a vs %a (row of %zu)", paths[p]->name, x[i],
                                 (double)a[i], (double)b[i], len);
        }
    }
    assert_true(checked > 0); /* the scalar path has one */
    free(x);
    free(a);
    free(b);
}

/* A path's f32 -> f16 row conversion (when it has one) gives bn_f32_to_f16's bits: a stride
 * through every float bit pattern (normal, subnormal, overflowing, rounding ties,
 * infinities, NaNs) and the row tails. */
static void test_f32_to_f16_row_identical(void **state)
{
    (void)state;
    enum {
        n = 4099
    };
    float *x = malloc(n * sizeof *x);
    uint16_t *a = malloc(n * 2), *b = malloc(n * 2);
    assert_true(x && a && b);
    for (int p = 0; p < n_paths; p++) {
        if (!paths[p]->f32_to_f16_row)
            continue;
        for (uint64_t base = 0; base < (UINT64_C(1) << 32); base += (uint64_t)n * 251) {
            for (size_t i = 0; i < n; i++) {
                uint32_t bits = (uint32_t)(base + (uint64_t)i * 251);
                memcpy(&x[i], &bits, 4);
            }
            const size_t len = n - (size_t)(base / n % 8); /* varying tails */
            bn_f32_to_f16_row(x, a, len);
            paths[p]->f32_to_f16_row(x, b, len);
            for (size_t i = 0; i < len; i++)
                if (a[i] != b[i])
                    fail_msg("%s: %a (0x%08x): 0x%04x vs 0x%04x", paths[p]->name, x[i],
                             (unsigned)(base + i * 251), a[i], b[i]);
        }
    }
    free(x);
    free(a);
    free(b);
}

/* int8 x int8 (screened LM head): integer sums, so bit-identical; also against a plain
 * int64 sum (the scalar twin is checked, not trusted), with +-127 everywhere (the largest
 * products, where an int16 pair would saturate if a path got its bound wrong), on lengths
 * with and without a SIMD tail and every row range of a 9-row matrix. */
static void test_matvec_i8_identical(void **state)
{
    (void)state;
    const size_t ks[] = {1, 15, 16, 17, 63, 64, 100, 2560, 4099};
    enum {
        m = 9,
        kmax = 4099
    };
    int8_t *w = malloc((size_t)m * kmax), *x = malloc(kmax);
    int32_t ya[m], yb[m];
    assert_true(w && x);
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
        for (int kind = 0; kind < 3; kind++) {
            const size_t k = ks[ki];
            for (size_t i = 0; i < (size_t)m * k; i++)
                w[i] = kind == 1 ? (rnd() % 2 ? 127 : -127) : (int8_t)((int)(rnd() % 255) - 127);
            for (size_t i = 0; i < k; i++)
                x[i] = kind >= 1 ? (rnd() % 2 ? 127 : -127) : (int8_t)((int)(rnd() % 255) - 127);
            if (kind == 2) /* all +127 times all +-127: the largest |sum| for this k */
                memset(w, 127, (size_t)m * k);
            for (size_t i = 0; i < m; i++) {
                int64_t ref = 0;
                for (size_t j = 0; j < k; j++)
                    ref += (int64_t)w[i * k + j] * x[j];
                bn_kernels_scalar.matvec_i8(w, k, i, i + 1, x, ya);
                assert_int_equal(ya[i], ref);
            }
            for (int p = 0; p < n_paths; p++)
                for (size_t b = 0; b <= m; b++)
                    for (size_t e = b; e <= m; e++) {
                        for (size_t i = 0; i < m; i++)
                            ya[i] = yb[i] = -7;
                        bn_kernels_scalar.matvec_i8(w, k, b, e, x, ya);
                        paths[p]->matvec_i8(w, k, b, e, x, yb);
                        if (memcmp(ya, yb, sizeof ya))
                            fail_msg("%s: matvec_i8 k=%zu kind %d rows [%zu,%zu) differ",
                                     paths[p]->name, k, kind, b, e);
                    }
        }
    free(w);
    free(x);
}

/* One call of a two-plane head kernel (matvec_i8x2 or matvec_u6) of path k over rows [b, e). */
typedef void (*two_plane_call)(const bn_kernels *k, const void *w, size_t n, size_t b, size_t e,
                               const int8_t *xh, const int8_t *xl, int64_t *y);

static void call_i8x2(const bn_kernels *k, const void *w, size_t n, size_t b, size_t e,
                      const int8_t *xh, const int8_t *xl, int64_t *y)
{
    k->matvec_i8x2(w, n, b, e, xh, xl, y);
}

static void call_u6(const bn_kernels *k, const void *w, size_t n, size_t b, size_t e,
                    const int8_t *xh, const int8_t *xl, int64_t *y)
{
    k->matvec_u6(w, n, b, e, xh, xl, y);
}

/* Every row range [b, e) of a 9-row matrix on every path that has the kernel (has_it) against
 * the scalar twin, rows outside the range untouched; returns how many paths were checked. */
static int every_range_identical(const char *what, two_plane_call call,
                                 int (*has_it)(const bn_kernels *), const void *w, size_t k,
                                 const int8_t *xh, const int8_t *xl, int kind)
{
    enum {
        m = 9
    };
    int64_t ya[m], yb[m];
    int checked = 0;
    for (int p = 0; p < n_paths; p++) {
        if (!has_it(paths[p]))
            continue;
        checked++;
        for (size_t b = 0; b <= m; b++)
            for (size_t e = b; e <= m; e++) {
                for (size_t i = 0; i < m; i++)
                    ya[i] = yb[i] = -7;
                call(&bn_kernels_scalar, w, k, b, e, xh, xl, ya);
                call(paths[p], w, k, b, e, xh, xl, yb);
                if (memcmp(ya, yb, sizeof ya))
                    fail_msg("%s: %s k=%zu kind %d rows [%zu,%zu) differ", paths[p]->name, what, k,
                             kind, b, e);
            }
    }
    return checked;
}

/* A two-plane activation of kind 0 (random), or 1 and 2 (every element +-32512, the largest
 * magnitude: xh = xl = +-127). */
static void fill_planes(int8_t *xh, int8_t *xl, size_t k, int kind)
{
    for (size_t j = 0; j < k; j++) {
        xh[j] = kind >= 1 ? (rnd() % 2 ? 127 : -127) : (int8_t)((int)(rnd() % 255) - 127);
        xl[j] = kind >= 1 ? (int8_t)(xh[j] > 0 ? 127 : -127) : (int8_t)((int)(rnd() % 255) - 127);
    }
}

/* sum_j q[j] * (255 xh[j] + xl[j]) in plain int64: the tests' own reference. */
static int64_t planes_dot(const int8_t *q, const int8_t *xh, const int8_t *xl, size_t k)
{
    int64_t sum = 0;
    for (size_t j = 0; j < k; j++)
        sum += (int64_t)q[j] * (255 * xh[j] + xl[j]);
    return sum;
}

static int has_i8x2(const bn_kernels *k) { return k->matvec_i8x2 != NULL; }
static int has_u6(const bn_kernels *k) { return k->matvec_u6 != NULL; }

/* int8 rows x two-plane 15-bit vector: integer sums, so bit-identical; the scalar twin against
 * a plain int64 sum; extremes (+-127 x +-32512) on lengths with and without a SIMD tail and one
 * long enough (70000) that the lanes' total passes 2^31; every row range of a 9-row matrix. */
static void test_matvec_i8x2_identical(void **state)
{
    (void)state;
    const size_t ks[] = {1, 63, 64, 65, 200, 2560, 70000};
    enum {
        m = 9,
        kmax = 70000
    };
    int8_t *w = malloc((size_t)m * kmax), *xh = malloc(kmax), *xl = malloc(kmax);
    int64_t ya[m];
    assert_true(w && xh && xl);
    int n_checked = 0;
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
        for (int kind = 0; kind < 3; kind++) {
            const size_t k = ks[ki];
            for (size_t i = 0; i < (size_t)m * k; i++)
                w[i] = kind == 1 ? (rnd() % 2 ? 127 : -127) : (int8_t)((int)(rnd() % 255) - 127);
            fill_planes(xh, xl, k, kind);
            if (kind == 2) { /* all +127 times all +32512: the largest sum for this k */
                memset(w, 127, (size_t)m * k);
                memset(xh, 127, k);
                memset(xl, 127, k);
            }
            for (size_t i = 0; i < m; i++) {
                bn_kernels_scalar.matvec_i8x2(w, k, i, i + 1, xh, xl, ya);
                assert_true(ya[i] == planes_dot(w + i * k, xh, xl, k));
            }
            n_checked += every_range_identical("matvec_i8x2", call_i8x2, has_i8x2, w, k, xh, xl,
                                               kind);
        }
    print_message("matvec_i8x2: %d path x case checks\n", n_checked);
    free(w);
    free(xh);
    free(xl);
}

/* The u6 layout: pack then unpack gives every value back, and the packed bytes are the ones
 * kernels.h draws (checked on one group by hand), so that a pack and an unpack wrong the same
 * way cannot pass. */
static void test_u6_layout(void **state)
{
    (void)state;
    const size_t ks[] = {1, 100, 255, 256, 257, 512, 700, 2560};
    int8_t *q = malloc(2560), *back = malloc(2560);
    uint8_t *row = malloc(2560);
    assert_true(q && back && row);
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        const size_t k = ks[ki];
        assert_int_equal(bn_u6_row_bytes(k), k / 256 * 192 + k % 256);
        for (size_t j = 0; j < k; j++)
            q[j] = (int8_t)((int)(rnd() % 63) - 31);
        q[0] = -31;
        q[k - 1] = 31;
        memset(row, 0xAA, 2560);
        bn_u6_pack_row(q, k, row);
        bn_u6_unpack_row(row, k, back);
        assert_memory_equal(q, back, k);
        if (k >= 256)
            for (int i = 0; i < 64; i++) {
                const unsigned d = (unsigned)(q[192 + i] + 32);
                assert_int_equal(row[i], (q[i] + 32) | (d & 3) << 6);
                assert_int_equal(row[64 + i], (q[64 + i] + 32) | (d >> 2 & 3) << 6);
                assert_int_equal(row[128 + i], (q[128 + i] + 32) | (d >> 4) << 6);
            }
        for (size_t j = k / 256 * 256; j < k; j++) /* the tail: one code a byte */
            assert_int_equal(row[k / 256 * 192 + j % 256], q[j] + 32);
    }
    free(q);
    free(back);
    free(row);
}

/* 6-bit rows x 16-bit vector (screened LM head, u6 layout): integer sums, so bit-identical;
 * the scalar twin against a plain int64 sum over the unpacked values; extremes everywhere
 * (+-31 times +-32512, where a 16-bit partial would overflow if a path got its bound wrong),
 * lengths with and without whole groups and a tail, every row range of a 9-row matrix. */
static void test_matvec_u6_identical(void **state)
{
    (void)state;
    const size_t ks[] = {1, 63, 64, 255, 256, 300, 512, 2560, 4099};
    enum {
        m = 9,
        kmax = 4099
    };
    const size_t rb_max = bn_u6_row_bytes(kmax);
    int8_t *q = malloc((size_t)m * kmax), *xh = malloc(kmax), *xl = malloc(kmax);
    uint8_t *w = malloc((size_t)m * rb_max);
    int64_t ya[m];
    assert_true(q && xh && xl && w);
    int n_u6 = 0;
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
        for (int kind = 0; kind < 3; kind++) {
            const size_t k = ks[ki], rb = bn_u6_row_bytes(k);
            for (size_t i = 0; i < (size_t)m * k; i++)
                q[i] = kind == 1 ? (rnd() % 2 ? 31 : -31) : (int8_t)((int)(rnd() % 63) - 31);
            fill_planes(xh, xl, k, kind);
            if (kind == 2) /* all +31 times all +-32512: the largest |sum| for this k */
                memset(q, 31, (size_t)m * k);
            for (size_t i = 0; i < m; i++)
                bn_u6_pack_row(q + i * k, k, w + i * rb);
            for (size_t i = 0; i < m; i++) {
                bn_kernels_scalar.matvec_u6(w, k, i, i + 1, xh, xl, ya);
                assert_true(ya[i] == planes_dot(q + i * k, xh, xl, k));
            }
            n_u6 += every_range_identical("matvec_u6", call_u6, has_u6, w, k, xh, xl, kind);
        }
    print_message("matvec_u6: %d path x case checks\n", n_u6);
    free(q);
    free(xh);
    free(xl);
    free(w);
}

/* ---------------------------------------------------------------- dispatch */

/* Which paths exist follows the CPU's features exactly; unknown names are refused. */
static void test_dispatch(void **state)
{
    (void)state;
    assert_null(bn_kernels_by_name("no-such-path"));
    assert_int_equal(bn_kernels_select("no-such-path"), -1);
    assert_non_null(bn_kernels_by_name("scalar"));
    const char *const *names = bn_kernels_all_names();
    for (int i = 0; names[i]; i++) {
        const bn_kernels *k = bn_kernels_by_name(names[i]);
        if (k) {
            assert_string_equal(k->name, names[i]);
            assert_true(k->row_block >= 1);
            assert_true(k->quantize_row && k->ternary_matmul && k->dot_f16 && k->dot_f16_rows &&
                        k->matvec_f16 && k->matvec_i8);
            assert_true(!k->prepare == !k->release);
        }
    }
#if defined(__aarch64__)
    int have_neon = 0, have_dp = 0, have_mm = 0, have_lut = 0;
    for (int i = 0; names[i]; i++) {
        have_neon |= strcmp(names[i], "neon") == 0;
        have_dp |= strcmp(names[i], "neon-dotprod") == 0;
        have_mm |= strcmp(names[i], "neon-i8mm") == 0;
        have_lut |= strcmp(names[i], "neon-lut") == 0;
    }
    assert_true(have_neon && have_lut);
    assert_non_null(bn_kernels_by_name("neon"));
    assert_non_null(bn_kernels_by_name("neon-lut"));
    const int dp = (getauxval(AT_HWCAP) & (1UL << 20)) != 0;  /* HWCAP_ASIMDDP */
    const int mm = (getauxval(AT_HWCAP2) & (1UL << 13)) != 0; /* HWCAP2_I8MM */
    print_message("cpu: dotprod=%d i8mm=%d\n", dp, mm);
    if (have_dp)
        assert_int_equal(bn_kernels_by_name("neon-dotprod") != NULL, dp);
    if (have_mm)
        assert_int_equal(bn_kernels_by_name("neon-i8mm") != NULL, dp && mm);
    /* BITNET_KERNELS is set by main() to "neon", which every aarch64 CPU runs */
    assert_string_equal(bn_kernels_get()->name, "neon");
    assert_int_equal(bn_kernels_select("scalar"), 0);
    assert_string_equal(bn_kernels_get()->name, "scalar");
#elif defined(__x86_64__)
    int n_x86 = 0;
    for (int i = 0; names[i]; i++)
        n_x86 += strcmp(names[i], "avx2") == 0 || strcmp(names[i], "avx512vnni") == 0;
    assert_int_equal(n_x86, 2);
    /* without BITNET_KERNELS (main leaves it unset on x86) the best runnable path is chosen */
    if (!getenv("BITNET_KERNELS")) {
        const char *want = bn_kernels_by_name("avx512vnni") ? "avx512vnni"
                           : bn_kernels_by_name("avx2")     ? "avx2"
                                                            : "scalar";
        assert_string_equal(bn_kernels_get()->name, want);
    }
    assert_int_equal(bn_kernels_select("scalar"), 0);
    assert_string_equal(bn_kernels_get()->name, "scalar");
#else
    assert_string_equal(bn_kernels_get()->name, "scalar");
#endif
}

int main(void)
{
    /* aarch64: pins the path bn_kernels_get() chooses (the variable is read once, on first
     * use); x86: test_dispatch checks the automatic choice, then pins scalar itself */
#if defined(__aarch64__)
    setenv("BITNET_KERNELS", "neon", 1);
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_quantize_identical),
        cmocka_unit_test(test_dot_f16_identical),
        cmocka_unit_test(test_dot_f16_rows_identical),
        cmocka_unit_test(test_dot_f16_rows_tail_order),
        cmocka_unit_test(test_matvec_f16_identical),
        cmocka_unit_test(test_softmax_identical),
        cmocka_unit_test(test_silu_mul_identical),
        cmocka_unit_test(test_f32_to_f16_row_identical),
        cmocka_unit_test(test_f16_to_f32_row_identical),
        cmocka_unit_test(test_blocked_tiles),
        cmocka_unit_test(test_matvec_i8_identical),
        cmocka_unit_test(test_matvec_i8x2_identical),
        cmocka_unit_test(test_u6_layout),
        cmocka_unit_test(test_matvec_u6_identical),
        cmocka_unit_test(test_odd_shapes_every_range),
        cmocka_unit_test(test_block_grid),
        cmocka_unit_test(test_shares_and_long_rows),
        cmocka_unit_test(test_extreme_activations),
        cmocka_unit_test(test_every_row_count),
        cmocka_unit_test(test_large_k),
        cmocka_unit_test(test_real_shapes),
    };
    int failed = cmocka_run_group_tests(tests, setup, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
