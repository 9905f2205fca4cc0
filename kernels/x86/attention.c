/* Attention helpers for the x86 paths: the scalar softmax body compiled with FMA enabled, so
 * that its fmaf calls become single instructions instead of libm calls (same operations, same
 * bits: see softmax_impl.h) and, on AVX-512, the same softmax 16 lanes at a time; f32 -> f16
 * rows with F16C; and the many-rows f16 dot products (kernels.h dot_f16_rows) in dot_f16's
 * summation order. */
#include <immintrin.h>
#include <math.h>

#include "f16_reduce.h"
#include "scalar/softmax_impl.h"
#include "x86.h"

__attribute__((target("fma"))) void bn_x86_fma_softmax(float *a, size_t n) { bn_sm_softmax(a, n); }

__attribute__((target("fma"))) void bn_x86_fma_silu_mul(float *restrict g, const float *restrict u,
                                                        size_t n)
{
    bn_sm_silu_mul(g, u, n);
}

/* f32 -> f16 rows with F16C (VCVTPS2PH, round to nearest even: the IEEE conversion that
 * bn_f32_to_f16 spells out, NaNs quieted the same way); the attention converts a row of
 * probabilities per head and token, which the scalar loop made a seventh of a long prefill. */
__attribute__((target("avx2,f16c"))) void bn_x86_f16c_f32_to_f16_row(const float *x, uint16_t *y,
                                                                     size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(y + i), h);
    }
    for (; i < n; i++)
        y[i] = bn_f32_to_f16(x[i]);
}

/* f16 -> f32 rows with F16C (VCVTPH2PS: exact, subnormals kept, NaNs quieted with their
 * payload, as bn_f16_to_f32). The loader widens the whole LM head row by row to build its
 * compact copy (128256 x 2560 halves for 2B-4T), where the scalar table lookups were a
 * quarter of the load time. */
__attribute__((target("avx2,f16c"))) void bn_x86_f16c_f16_to_f32_row(const uint16_t *x, float *y,
                                                                     size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++)
        y[i] = bn_f16_to_f32(x[i]);
}

/* ---------------------------------------------------------------- dot_f16_rows
 *
 * Each result is one dot_f16 (kernels/scalar/scalar.c): 64 float lanes over steps of 64
 * elements, lane l accumulating elements 64s + l; lanes folded (l, l+32) + (l+16, l+48), then
 * l+8, l+4, l+2, l+1; the tail (n % 64 elements) added in double. Products of two halves are
 * exact in float, so fma == multiply-then-add. The gain over one dot_f16 call per result: a
 * row of K or V (f16) is widened once for up to four query heads, the heads' vectors are
 * already float, and there is no call per cached position. */

#define BN_ATT_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))
#define BN_ATT_AVX2   __attribute__((target("avx2,fma,f16c")))

/* bn_x86_tree1 (f16_reduce.h) of 16 vectors at once, the same additions with the same operands
 * (a transpose done along the tree: 15 adds instead of 60), result k in lane tree16_lane[k]. */
static const int tree16_lane[16] = {0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15};

BN_ATT_AVX512 static __m512 tree16(const __m512 v[16])
{
    __m512 a[8], b[4], d[2];
    for (int k = 0; k < 8; k++) /* l + 8: result k in lanes 0..7, k + 8 in lanes 8..15 */
        a[k] = _mm512_add_ps(_mm512_shuffle_f32x4(v[k], v[k + 8], 0x44),
                             _mm512_shuffle_f32x4(v[k], v[k + 8], 0xEE));
    for (int k = 0; k < 4; k++) /* l + 4: four results per vector, four lanes each */
        b[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a[k], a[k + 4], 0x88),
                             _mm512_shuffle_f32x4(a[k], a[k + 4], 0xDD));
    for (int k = 0; k < 2; k++) /* l + 2, inside each 128-bit lane */
        d[k] = _mm512_add_ps(_mm512_shuffle_ps(b[k], b[k + 2], 0x44),
                             _mm512_shuffle_ps(b[k], b[k + 2], 0xEE));
    return _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], 0x88), /* l + 1 */
                         _mm512_shuffle_ps(d[0], d[1], 0xDD));
}

BN_ATT_AVX2 static float tail_widened(const uint16_t *a, const float *b, size_t np, size_t n,
                                      double sum)
{
    for (size_t i = np; i < n; i++) {
        float x = _cvtsh_ss(a[i]);
        sum += (double)(x * b[i]);
    }
    return (float)sum;
}

BN_ATT_AVX512 static __m512 widen16(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

/* The upper 8 floats of a zmm, widened to double. */
BN_ATT_AVX512 static __m512d widen_hi8(__m512 v)
{
    return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

/* The tails (elements np..n-1) of a block of 4 rows x 4 vectors, result k = 4 * row + vector
 * in lane k, sums holding the first np elements' sums: each result adds its products in
 * double one after the other, as tail_widened does, but the 16 results' chains run side by
 * side (one chain alone waits ~4 cycles per element: it was most of probs.V when
 * n % 64 == 32). */
BN_ATT_AVX512 static __m512 tails16(const uint16_t *a, size_t lda, const float *const bv[4],
                                    size_t np, size_t n, __m512 sums)
{
    if (np == n)
        return sums;
    const __m512i row_of = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(sums)), hi = widen_hi8(sums);
    for (size_t j = np; j < n; j++) {
        const __m128 x4 = _mm_set_ps(_cvtsh_ss(a[3 * lda + j]), _cvtsh_ss(a[2 * lda + j]),
                                     _cvtsh_ss(a[lda + j]), _cvtsh_ss(a[j]));
        const __m128 b4 = _mm_set_ps(bv[3][j], bv[2][j], bv[1][j], bv[0][j]);
        const __m512 p = _mm512_mul_ps(_mm512_permutexvar_ps(row_of, _mm512_castps128_ps512(x4)),
                                       _mm512_broadcast_f32x4(b4)); /* exact, as x * b */
        lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(p)));
        hi = _mm512_add_pd(hi, widen_hi8(p));
    }
    const __m256 flo = _mm512_cvtpd_ps(lo), fhi = _mm512_cvtpd_ps(hi);
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(flo)),
                                               _mm256_castps_pd(fhi), 1));
}

/* One row r against four vectors b0..b3 over the first np elements (np % 64 == 0, np > 0):
 * each vector's 64 lanes in 4 accumulators (16 in all), folded to one zmm per vector. */
BN_ATT_AVX512 static inline __attribute__((always_inline)) void row_x4(
    const uint16_t *r, const float *b0, const float *b1, const float *b2, const float *b3,
    size_t np, __m512 out[4])
{
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c03 = c00;
    __m512 c10 = c00, c11 = c00, c12 = c00, c13 = c00;
    __m512 c20 = c00, c21 = c00, c22 = c00, c23 = c00;
    __m512 c30 = c00, c31 = c00, c32 = c00, c33 = c00;
    for (size_t j = 0; j < np; j += 64) {
        const __m512 x0 = widen16(r + j), x1 = widen16(r + j + 16);
        const __m512 x2 = widen16(r + j + 32), x3 = widen16(r + j + 48);
        c00 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(b0 + j), c00);
        c01 = _mm512_fmadd_ps(x1, _mm512_loadu_ps(b0 + j + 16), c01);
        c02 = _mm512_fmadd_ps(x2, _mm512_loadu_ps(b0 + j + 32), c02);
        c03 = _mm512_fmadd_ps(x3, _mm512_loadu_ps(b0 + j + 48), c03);
        c10 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(b1 + j), c10);
        c11 = _mm512_fmadd_ps(x1, _mm512_loadu_ps(b1 + j + 16), c11);
        c12 = _mm512_fmadd_ps(x2, _mm512_loadu_ps(b1 + j + 32), c12);
        c13 = _mm512_fmadd_ps(x3, _mm512_loadu_ps(b1 + j + 48), c13);
        c20 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(b2 + j), c20);
        c21 = _mm512_fmadd_ps(x1, _mm512_loadu_ps(b2 + j + 16), c21);
        c22 = _mm512_fmadd_ps(x2, _mm512_loadu_ps(b2 + j + 32), c22);
        c23 = _mm512_fmadd_ps(x3, _mm512_loadu_ps(b2 + j + 48), c23);
        c30 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(b3 + j), c30);
        c31 = _mm512_fmadd_ps(x1, _mm512_loadu_ps(b3 + j + 16), c31);
        c32 = _mm512_fmadd_ps(x2, _mm512_loadu_ps(b3 + j + 32), c32);
        c33 = _mm512_fmadd_ps(x3, _mm512_loadu_ps(b3 + j + 48), c33);
    }
    out[0] = bn_x86_fold4(c00, c01, c02, c03);
    out[1] = bn_x86_fold4(c10, c11, c12, c13);
    out[2] = bn_x86_fold4(c20, c21, c22, c23);
    out[3] = bn_x86_fold4(c30, c31, c32, c33);
}

/* Four vectors b, b + ldb, b + 2 ldb, b + 3 ldb against every row; four rows at a time share
 * one tree16. */
BN_ATT_AVX512 static void rows_x4_avx512(const uint16_t *a, size_t lda, size_t n_rows,
                                         const float *b, size_t ldb, size_t n, float *y, size_t ldy)
{
    const size_t np = n & ~(size_t)63;
    const float *b0 = b, *b1 = b + ldb, *b2 = b + 2 * ldb, *b3 = b + 3 * ldb;
    const float *bv[4] = {b0, b1, b2, b3};
    const __m512i by_result = _mm512_loadu_si512(tree16_lane);
    size_t i = 0;
    if (np)
        for (; i + 4 <= n_rows; i += 4) {
            __m512 v[16]; /* v[4 * row + vector] */
            for (int q = 0; q < 4; q++)
                row_x4(a + (i + q) * lda, b0, b1, b2, b3, np, v + 4 * q);
            float sums[16]; /* result k = 4 * row + vector */
            _mm512_storeu_ps(sums, tails16(a + i * lda, lda, bv, np, n,
                                           _mm512_permutexvar_ps(by_result, tree16(v))));
            for (int k = 0; k < 16; k++)
                y[(size_t)(k % 4) * ldy + i + (size_t)k / 4] = sums[k];
        }
    for (; i < n_rows; i++) {
        const uint16_t *r = a + i * lda;
        __m512 v[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                       _mm512_setzero_ps()};
        if (np)
            row_x4(r, b0, b1, b2, b3, np, v);
        for (int q = 0; q < 4; q++)
            y[(size_t)q * ldy + i] = tail_widened(r, bv[q], np, n, np ? bn_x86_tree1(v[q]) : 0.0);
    }
}

/* One row against one vector over the first np elements, folded to one zmm. */
BN_ATT_AVX512 static inline __attribute__((always_inline)) __m512 row_x1(const uint16_t *r,
                                                                         const float *b, size_t np)
{
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
    for (size_t j = 0; j < np; j += 64) {
        c0 = _mm512_fmadd_ps(widen16(r + j), _mm512_loadu_ps(b + j), c0);
        c1 = _mm512_fmadd_ps(widen16(r + j + 16), _mm512_loadu_ps(b + j + 16), c1);
        c2 = _mm512_fmadd_ps(widen16(r + j + 32), _mm512_loadu_ps(b + j + 32), c2);
        c3 = _mm512_fmadd_ps(widen16(r + j + 48), _mm512_loadu_ps(b + j + 48), c3);
    }
    return bn_x86_fold4(c0, c1, c2, c3);
}

/* tails16 for 16 rows against one vector (result k = row k). */
BN_ATT_AVX512 static __m512 tails16_x1(const uint16_t *a, size_t lda, const float *b, size_t np,
                                       size_t n, __m512 sums)
{
    if (np == n)
        return sums;
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(sums)), hi = widen_hi8(sums);
    for (size_t j = np; j < n; j++) {
        uint16_t h[16];
        for (int k = 0; k < 16; k++)
            h[k] = a[(size_t)k * lda + j];
        const __m512 p = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)h)),
                                       _mm512_set1_ps(b[j])); /* exact, as x * b */
        lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(p)));
        hi = _mm512_add_pd(hi, widen_hi8(p));
    }
    const __m256 flo = _mm512_cvtpd_ps(lo), fhi = _mm512_cvtpd_ps(hi);
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(flo)),
                                               _mm256_castps_pd(fhi), 1));
}

/* One vector against every row; sixteen rows at a time share one tree16. */
BN_ATT_AVX512 static void rows_x1_avx512(const uint16_t *a, size_t lda, size_t n_rows,
                                         const float *b, size_t n, float *y)
{
    const size_t np = n & ~(size_t)63;
    const __m512i by_result = _mm512_loadu_si512(tree16_lane);
    size_t i = 0;
    if (np)
        for (; i + 16 <= n_rows; i += 16) {
            __m512 v[16];
            for (int k = 0; k < 16; k++)
                v[k] = row_x1(a + (i + (size_t)k) * lda, b, np);
            _mm512_storeu_ps(y + i, tails16_x1(a + i * lda, lda, b, np, n,
                                               _mm512_permutexvar_ps(by_result, tree16(v))));
        }
    for (; i < n_rows; i++) {
        const uint16_t *r = a + i * lda;
        y[i] = tail_widened(r, b, np, n, np ? bn_x86_tree1(row_x1(r, b, np)) : 0.0);
    }
}

BN_ATT_AVX512 void bn_x86_avx512_dot_f16_rows(const uint16_t *a, size_t lda, size_t n_rows,
                                              const float *b, size_t ldb, size_t n_vec, size_t n,
                                              float *y, size_t ldy)
{
    size_t v = 0;
    for (; v + 4 <= n_vec; v += 4)
        rows_x4_avx512(a, lda, n_rows, b + v * ldb, ldb, n, y + v * ldy, ldy);
    for (; v < n_vec; v++)
        rows_x1_avx512(a, lda, n_rows, b + v * ldb, n, y + v * ldy);
}

/* ---------------------------------------------------------------- softmax, 16 lanes
 *
 * bn_sm_softmax (kernels/scalar/softmax_impl.h) a vector at a time: the max (max_ps keeps the
 * running max on NaN and on equal zeros, as the scalar's `a[j] > max` does; which zero wins
 * does not change any a[j] - max), ggml's expf lane by lane with the same fused operations,
 * the scaling by 2^n in one rounding (scalef, what bn_sm_scale_pow2 spells out), each
 * 16-element block's exps added as the same tree (lanes past n are zeros) and the blocks
 * summed in double in order. Bit-identical to bn_softmax_f32 (test_kernels). */
BN_ATT_AVX512 static __m512 expf16(__m512 x)
{
    const __m512 r = _mm512_set1_ps(0x1.8p23f);
    const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r);
    const __m512 n = _mm512_sub_ps(z, r);
    const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f),
                                      _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
    const __m512 u = _mm512_mul_ps(b, b);
    const __m512 j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(
            _mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
            _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f))),
        u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f)));
    __m512 e = _mm512_scalef_ps(j, n);
    /* |n| > 192: 0 or infinity; NaN: n itself (the scalar's early returns, in its order) */
    const __m512 absn = _mm512_abs_ps(n);
    const __mmask16 big = _mm512_cmp_ps_mask(absn, _mm512_set1_ps(192.0f), _CMP_GT_OQ);
    const __mmask16 nonpos = _mm512_cmp_ps_mask(n, _mm512_setzero_ps(), _CMP_LE_OQ);
    e = _mm512_mask_blend_ps(
        big, e, _mm512_mask_blend_ps(nonpos, _mm512_set1_ps(INFINITY), _mm512_setzero_ps()));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(n, n, _CMP_UNORD_Q), e, n);
}

BN_ATT_AVX512 void bn_x86_avx512_softmax(float *a, size_t n)
{
    __m512 m = _mm512_set1_ps(-INFINITY);
    size_t j = 0;
    for (; j + 16 <= n; j += 16)
        m = _mm512_max_ps(_mm512_loadu_ps(a + j), m);
    if (j < n)
        m = _mm512_mask_max_ps(m, (__mmask16)((1u << (n - j)) - 1),
                               _mm512_maskz_loadu_ps((__mmask16)((1u << (n - j)) - 1), a + j), m);
    const __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(m));
    double sum = 0.0;
    for (j = 0; j < n; j += 16) {
        const __mmask16 live = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
        const __m512 x = _mm512_maskz_loadu_ps(live, a + j);
        const __m512 e = _mm512_maskz_mov_ps(live, expf16(_mm512_sub_ps(x, max)));
        _mm512_mask_storeu_ps(a + j, live, e);
        sum += (double)bn_x86_tree1(e);
    }
    const __m512 inv = _mm512_set1_ps((float)(1.0 / sum));
    for (j = 0; j < n; j += 16) {
        const __mmask16 live = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
        _mm512_mask_storeu_ps(a + j, live, _mm512_mul_ps(_mm512_maskz_loadu_ps(live, a + j), inv));
    }
}

/* The fold of avx2.c's reduce64 (ymm g holds lanes 8g..8g+7). */
BN_ATT_AVX2 static float fold64_avx2(const __m256 acc[8])
{
    __m256 vlo = _mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6]));
    __m256 vhi = _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7]));
    __m256 v8 = _mm256_add_ps(vlo, vhi);
    __m128 v4 = _mm_add_ps(_mm256_castps256_ps128(v8), _mm256_extractf128_ps(v8, 1));
    __m128 v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));
    __m128 v1 = _mm_add_ss(v2, _mm_shuffle_ps(v2, v2, 1));
    return _mm_cvtss_f32(v1);
}

/* One vector at a time (its 64 lanes fill 8 of the 16 ymm registers). */
BN_ATT_AVX2 void bn_x86_avx2_dot_f16_rows(const uint16_t *a, size_t lda, size_t n_rows,
                                          const float *b, size_t ldb, size_t n_vec, size_t n,
                                          float *y, size_t ldy)
{
    const size_t np = n & ~(size_t)63;
    for (size_t i = 0; i < n_rows; i++) {
        const uint16_t *r = a + i * lda;
        for (size_t v = 0; v < n_vec; v++) {
            const float *bv = b + v * ldb;
            __m256 acc[8];
            for (int g = 0; g < 8; g++)
                acc[g] = _mm256_setzero_ps();
            for (size_t j = 0; j < np; j += 64)
                for (int g = 0; g < 8; g++) {
                    __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r + j + 8 * g)));
                    acc[g] = _mm256_fmadd_ps(x, _mm256_loadu_ps(bv + j + 8 * g), acc[g]);
                }
            y[v * ldy + i] = tail_widened(r, bv, np, n, np ? fold64_avx2(acc) : 0.0);
        }
    }
}
