/* The x86 kernel paths (AVX2, AVX-512 VNNI) against the scalar twins: activation quantization
 * and ternary matmul must be bit-identical (integer sums are exact, the float epilogue is
 * fixed), and so must the f16 dot products, which reproduce the scalar summation order.
 * Paths this CPU cannot run are skipped with a message (on other architectures none exist). */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

static const char *const x86_paths[] = {"avx2", "avx512vnni"};
enum { n_x86_paths = sizeof x86_paths / sizeof x86_paths[0] };

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}
static float rnd_float(float amp) { return ((float)(rnd() % 2000001) / 1000000.0f - 1.0f) * amp; }

/* Runs body(k) for every x86 path this CPU supports; skips when there is none. */
static int n_runnable(void)
{
    int n = 0;
    for (int i = 0; i < n_x86_paths; i++)
        if (bn_kernels_by_name(x86_paths[i]))
            n++;
        else
            print_message("note: path %s not runnable here\n", x86_paths[i]);
    return n;
}

/* ---------------------------------------------------------------- quantize_row */

static void check_quantize(const bn_kernels *k, const float *x, size_t n)
{
    int8_t *qa = malloc(n + 1), *qb = malloc(n + 1);
    assert_non_null(qa);
    assert_non_null(qb);
    float sa = bn_kernels_scalar.quantize_row(x, n, qa);
    float sb = k->quantize_row(x, n, qb);
    assert_memory_equal(&sa, &sb, sizeof sa);
    if (n)
        assert_memory_equal(qa, qb, n);
    free(qa);
    free(qb);
}

static void test_quantize_identical(void **state)
{
    (void)state;
    if (!n_runnable())
        skip();
    const size_t sizes[] = {0, 1, 7, 8, 31, 32, 33, 63, 100, 128, 2560, 6912, 6913};
    float *x = malloc(7000 * sizeof *x);
    assert_non_null(x);
    for (int p = 0; p < n_x86_paths; p++) {
        const bn_kernels *k = bn_kernels_by_name(x86_paths[p]);
        if (!k)
            continue;
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            size_t n = sizes[si];
            for (int kind = 0; kind < 6; kind++) {
                for (size_t i = 0; i < n; i++) {
                    switch (kind) {
                    case 0: x[i] = rnd_float(3.0f); break;
                    case 1: x[i] = 0.0f; break;                          /* amax floor 1e-5 */
                    case 2: x[i] = rnd_float(1e-7f); break;              /* tiny, below floor */
                    case 3: x[i] = rnd_float(1e30f); break;              /* huge */
                    case 4: x[i] = (float)((int)(rnd() % 255) - 127) * 0.5f; break; /* ties */
                    default: x[i] = i % 3 ? rnd_float(1.0f) : -1e4f; break;
                    }
                }
                check_quantize(k, x, n);
            }
        }
        /* (an infinite input is left out: inf * (127/inf) is NaN, whose conversion to int8
         * the scalar twin leaves undefined) */
    }
    free(x);
}

/* ---------------------------------------------------------------- ternary matmul */

/* Packs codes (0..2, row-major m x k) into the I2_S file layout of kernels.h. */
static uint8_t *pack(const uint8_t *codes, size_t m, size_t k)
{
    uint8_t *p = calloc(m * k / 4, 1);
    assert_non_null(p);
    for (size_t r = 0; r < m; r++)
        for (size_t b = 0; b < k / 128; b++)
            for (size_t j = 0; j < 32; j++) {
                const uint8_t *c = codes + r * k + 128 * b;
                p[r * k / 4 + 32 * b + j] =
                    (uint8_t)(c[j] << 6 | c[32 + j] << 4 | c[64 + j] << 2 | c[96 + j]);
            }
    return p;
}

enum { act_random, act_max, act_min, act_alternating };

static void check_matmul(const bn_kernels *kern, size_t m, size_t k, size_t n_act, int act_kind,
                         int code_kind, size_t row_begin, size_t row_end)
{
    uint8_t *codes = malloc(m * k);
    int8_t *q = malloc(n_act * k);
    float *scales = malloc(n_act * sizeof *scales);
    const size_t ldy = m + 3; /* y rows wider than m: the kernel must honour ldy */
    float *ya = malloc(n_act * ldy * sizeof *ya), *yb = malloc(n_act * ldy * sizeof *yb);
    assert_true(codes && q && scales && ya && yb);
    for (size_t i = 0; i < m * k; i++)
        codes[i] = code_kind == 0 ? (uint8_t)(rnd() % 3) : (uint8_t)(code_kind == 1 ? 2 : 0);
    for (size_t i = 0; i < n_act * k; i++) {
        switch (act_kind) {
        case act_max: q[i] = 127; break;
        case act_min: q[i] = -128; break;
        case act_alternating: q[i] = (int8_t)(i & 1 ? -128 : 127); break;
        default: q[i] = (int8_t)(rnd() % 256 - 128); break;
        }
    }
    for (size_t r = 0; r < n_act; r++)
        scales[r] = 0.5f + (float)(rnd() % 1000) / 7.0f;
    uint8_t *packed = pack(codes, m, k);
    bn_ternary w = {.packed = packed, .k = k, .m = m, .scale = 0.0123f, .repacked = NULL};
    for (size_t i = 0; i < n_act * ldy; i++)
        ya[i] = yb[i] = -7.0f; /* sentinels outside the row range must survive */
    bn_kernels_scalar.ternary_matmul(&w, row_begin, row_end, q, scales, n_act, ya, ldy);
    kern->ternary_matmul(&w, row_begin, row_end, q, scales, n_act, yb, ldy);
    if (memcmp(ya, yb, n_act * ldy * sizeof *ya) != 0) {
        for (size_t i = 0; i < n_act * ldy; i++)
            if (memcmp(&ya[i], &yb[i], sizeof *ya))
                fail_msg("%s: m=%zu k=%zu n_act=%zu rows [%zu,%zu): y[%zu] scalar %.9g vs %.9g",
                         kern->name, m, k, n_act, row_begin, row_end, i, ya[i], yb[i]);
    }
    free(codes);
    free(q);
    free(scales);
    free(ya);
    free(yb);
    free(packed);
}

static void test_ternary_identical(void **state)
{
    (void)state;
    if (!n_runnable())
        skip();
    /* real inner sizes (2560, 6912) and small/odd block counts; m and n_act around the
     * kernels' 4-row groups */
    const size_t ks[] = {128, 256, 384, 640, 2560, 6912};
    const size_t ms[] = {1, 3, 4, 5, 8, 13};
    const size_t acts[] = {1, 2, 3, 4, 5, 8, 9};
    for (int p = 0; p < n_x86_paths; p++) {
        const bn_kernels *kern = bn_kernels_by_name(x86_paths[p]);
        if (!kern)
            continue;
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
            for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
                for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++) {
                    size_t m = ms[mi];
                    check_matmul(kern, m, ks[ki], acts[ai], act_random, 0, 0, m);
                    if (m > 4) /* a range starting at a row_block boundary, ending at m */
                        check_matmul(kern, m, ks[ki], acts[ai], act_random, 0, 4, m);
                }
        /* a thread's share of a real matrix: rows [640, 1280) of 2560 x 2560, decode and a
         * prefill block */
        check_matmul(kern, 1284, 2560, 1, act_random, 0, 640, 1284);
        check_matmul(kern, 68, 6912, 6, act_random, 0, 4, 68);
        /* rows longer than the decode kernel's 8192-block accumulation chunks */
        check_matmul(kern, 2, 128 * 8195, 1, act_random, 0, 0, 2);
        /* prefill rows longer than the AVX-512 tile's activation buffer (8192) */
        check_matmul(kern, 5, 128 * 65, 5, act_random, 0, 0, 5);
    }
}

/* Extreme activations: every product at its largest magnitude, uniform in sign, so that any
 * int16 intermediate that could saturate would. */
static void test_ternary_extremes(void **state)
{
    (void)state;
    if (!n_runnable())
        skip();
    const int acts[] = {act_max, act_min, act_alternating};
    for (int p = 0; p < n_x86_paths; p++) {
        const bn_kernels *kern = bn_kernels_by_name(x86_paths[p]);
        if (!kern)
            continue;
        for (int a = 0; a < 3; a++)
            for (int codes = 0; codes < 3; codes++) {
                check_matmul(kern, 8, 6912, 1, acts[a], codes, 0, 8);
                check_matmul(kern, 8, 6912, 5, acts[a], codes, 0, 8);
                check_matmul(kern, 5, 2560, 4, acts[a], codes, 0, 5);
            }
    }
}

/* A case computed by hand, independent of the scalar twin: all weights +1, all q = -128:
 * T = -128 k, y = (T / s) * beta. */
static void test_ternary_known_answer(void **state)
{
    (void)state;
    if (!n_runnable())
        skip();
    const size_t k = 6912, m = 4;
    uint8_t *packed = malloc(m * k / 4);
    int8_t *q = malloc(k);
    assert_true(packed && q);
    memset(packed, 0xaa, m * k / 4); /* code 2 in every pair of bits */
    memset(q, 0x80, k);
    bn_ternary w = {.packed = packed, .k = k, .m = m, .scale = 0.5f, .repacked = NULL};
    const float s = 2.0f;
    for (int p = 0; p < n_x86_paths; p++) {
        const bn_kernels *kern = bn_kernels_by_name(x86_paths[p]);
        if (!kern)
            continue;
        float y[4];
        kern->ternary_matmul(&w, 0, m, q, &s, 1, y, m);
        for (size_t i = 0; i < m; i++)
            assert_true(y[i] == (float)(-128.0 * 6912 / 2.0 * 0.5));
    }
    free(packed);
    free(q);
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

static void test_dot_f16_identical(void **state)
{
    (void)state;
    if (!n_runnable())
        skip();
    const size_t ns[] = {0, 1, 5, 63, 64, 65, 127, 128, 1000, 2560, 6912};
    uint16_t *a = malloc(7000 * 2), *b = malloc(7000 * 2);
    assert_true(a && b);
    for (int p = 0; p < n_x86_paths; p++) {
        const bn_kernels *kern = bn_kernels_by_name(x86_paths[p]);
        if (!kern)
            continue;
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
            for (int kind = 0; kind < 3; kind++) {
                for (size_t i = 0; i < ns[ni]; i++) {
                    a[i] = rnd_half(kind);
                    b[i] = rnd_half(kind == 2 ? 0 : kind);
                }
                float da = bn_kernels_scalar.dot_f16(a, b, ns[ni]);
                float db = kern->dot_f16(a, b, ns[ni]);
                if (memcmp(&da, &db, sizeof da))
                    fail_msg("%s: n=%zu kind %d: scalar %.9g vs %.9g", kern->name, ns[ni], kind,
                             da, db);
            }
    }
    free(a);
    free(b);
}

/* The FMA-compiled softmax gives the scalar's bits, over scores that reach expf's underflow
 * and the subnormal range (the two-step power-of-two scaling) as well as ordinary ones. */
static void test_softmax_identical(void **state)
{
    (void)state;
    if (!n_runnable())
        skip();
    const size_t ns[] = {1, 2, 15, 16, 17, 33, 100, 1000, 4096};
    const float amps[] = {0.5f, 8.0f, 90.0f, 300.0f};
    float *a = malloc(4096 * sizeof *a), *b = malloc(4096 * sizeof *b);
    assert_true(a && b);
    for (int p = 0; p < n_x86_paths; p++) {
        const bn_kernels *kern = bn_kernels_by_name(x86_paths[p]);
        if (!kern)
            continue;
        assert_non_null(kern->softmax);
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
            for (size_t ai = 0; ai < sizeof amps / sizeof amps[0]; ai++) {
                for (size_t i = 0; i < ns[ni]; i++)
                    a[i] = b[i] = rnd_float(amps[ai]);
                bn_softmax_f32(a, ns[ni]);
                kern->softmax(b, ns[ni]);
                for (size_t i = 0; i < ns[ni]; i++)
                    if (memcmp(&a[i], &b[i], sizeof a[i]))
                        fail_msg("%s: n=%zu amp %g, element %zu: %a vs %a", kern->name, ns[ni],
                                 amps[ai], i, a[i], b[i]);
            }
    }
    free(a);
    free(b);
}

/* F16C rows give bn_f32_to_f16's bits: a stride through every float bit pattern (normal,
 * subnormal, overflowing, rounding ties, infinities, NaNs) and the row tails. */
static void test_f32_to_f16_row_identical(void **state)
{
    (void)state;
    if (!n_runnable())
        skip();
    enum { n = 4099 };
    float *x = malloc(n * sizeof *x);
    uint16_t *a = malloc(n * 2), *b = malloc(n * 2);
    assert_true(x && a && b);
    for (int p = 0; p < n_x86_paths; p++) {
        const bn_kernels *kern = bn_kernels_by_name(x86_paths[p]);
        if (!kern)
            continue;
        assert_non_null(kern->f32_to_f16_row);
        for (uint64_t base = 0; base < (UINT64_C(1) << 32); base += (uint64_t)n * 251) {
            for (size_t i = 0; i < n; i++) {
                uint32_t bits = (uint32_t)(base + (uint64_t)i * 251);
                memcpy(&x[i], &bits, 4);
            }
            const size_t len = n - (size_t)(base / n % 8); /* varying tails */
            bn_f32_to_f16_row(x, a, len);
            kern->f32_to_f16_row(x, b, len);
            for (size_t i = 0; i < len; i++)
                if (a[i] != b[i])
                    fail_msg("%s: %a (0x%08x): 0x%04x vs 0x%04x", kern->name, x[i],
                             (unsigned)(base + i * 251), a[i], b[i]);
        }
    }
    free(x);
    free(a);
    free(b);
}

static void test_matvec_f16_identical(void **state)
{
    (void)state;
    if (!n_runnable())
        skip();
    /* 4160 and 4200: longer than the converted-x buffer of the AVX-512 path */
    const size_t ks[] = {64, 100, 2560, 4160, 4200};
    const size_t m = 11;
    uint16_t *w = malloc(m * 4200 * 2), *x = malloc(4200 * 2);
    float ya[11], yb[11];
    assert_true(w && x);
    for (int p = 0; p < n_x86_paths; p++) {
        const bn_kernels *kern = bn_kernels_by_name(x86_paths[p]);
        if (!kern)
            continue;
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
            size_t k = ks[ki];
            for (size_t i = 0; i < m * k; i++)
                w[i] = rnd_half(0);
            for (size_t i = 0; i < k; i++)
                x[i] = rnd_half(0);
            const size_t ranges[][2] = {{0, 11}, {1, 11}, {4, 8}, {3, 3}};
            for (int r = 0; r < 4; r++) {
                for (size_t i = 0; i < m; i++)
                    ya[i] = yb[i] = -3.0f;
                bn_kernels_scalar.matvec_f16(w, k, ranges[r][0], ranges[r][1], x, ya);
                kern->matvec_f16(w, k, ranges[r][0], ranges[r][1], x, yb);
                assert_memory_equal(ya, yb, sizeof ya);
            }
        }
    }
    free(w);
    free(x);
}

/* ---------------------------------------------------------------- dispatch */

static void test_dispatch_knows_x86_paths(void **state)
{
    (void)state;
#if defined(__x86_64__)
    const char *const *names = bn_kernels_all_names();
    int found = 0;
    for (int i = 0; names[i]; i++)
        for (int p = 0; p < n_x86_paths; p++)
            found += strcmp(names[i], x86_paths[p]) == 0;
    assert_int_equal(found, n_x86_paths);
    /* without BITNET_KERNELS the best runnable path is chosen */
    if (!getenv("BITNET_KERNELS")) {
        const char *want = bn_kernels_by_name("avx512vnni") ? "avx512vnni"
                           : bn_kernels_by_name("avx2")     ? "avx2"
                                                            : "scalar";
        assert_string_equal(bn_kernels_get()->name, want);
    }
#else
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize_identical),
        cmocka_unit_test(test_ternary_identical),
        cmocka_unit_test(test_ternary_extremes),
        cmocka_unit_test(test_ternary_known_answer),
        cmocka_unit_test(test_dot_f16_identical),
        cmocka_unit_test(test_matvec_f16_identical),
        cmocka_unit_test(test_softmax_identical),
        cmocka_unit_test(test_f32_to_f16_row_identical),
        cmocka_unit_test(test_dispatch_knows_x86_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
