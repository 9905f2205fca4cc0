/* AVX2 + FMA + F16C path: bit-identical to the scalar twins (integers exactly, floats in the
 * same summation order). Compiled with per-function target attributes so the library still
 * runs on any x86_64; dispatch.c only selects it when bn_x86_has_avx2().
 *
 * Ternary block (128 weights = 32 bytes, file layout):
 *
 *   v = 32 bytes  ->  c0 = (v >> 6) & 3  pairs with q[  0.. 32)
 *                     c1 = (v >> 4) & 3  pairs with q[ 32.. 64)
 *                     c2 = (v >> 2) & 3  pairs with q[ 64.. 96)
 *                     c3 =  v       & 3  pairs with q[ 96..128)
 *
 * maddubs(code u8 in 0..3, q s8) adds two products per int16 lane: |sum| <= 2*3*128 = 768, so
 * it never saturates; the four per block add up to <= 3072, then madd(.., 1) widens to int32.
 * T = sum(code*q) - sum(q) since t = code - 1 (code 3, which never occurs, would count as +2).
 */
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>

#include "x86.h"

#define BN_AVX2 __attribute__((target("avx2,fma,f16c")))

static int cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    return (c & bit_F16C) != 0;
}

int bn_x86_has_avx2(void)
{
    __builtin_cpu_init();
    /* __builtin_cpu_supports also checks that the OS saves the ymm state (XGETBV). */
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
}

/* ---------------------------------------------------------------- activation quantization */

BN_AVX2 float bn_x86_avx2_quantize_row(const float *x, size_t n, int8_t *q)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 vmax = _mm256_setzero_ps();
    size_t i = 0;
    /* max_ps(a, b) returns b when a is NaN: NaNs are skipped as in the scalar comparison. */
    for (; i + 8 <= n; i += 8)
        vmax = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), vmax);
    float lanes[8];
    _mm256_storeu_ps(lanes, vmax);
    float amax = 0.0f;
    for (int l = 0; l < 8; l++)
        amax = lanes[l] > amax ? lanes[l] : amax;
    for (size_t j = i; j < n; j++) {
        float a = fabsf(x[j]);
        amax = a > amax ? a : amax;
    }
    double dmax = (double)amax > 1e-5 ? (double)amax : 1e-5;
    float s = (float)(127.0 / dmax);

    const __m256 vs = _mm256_set1_ps(s);
    const __m256 hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-128.0f);
    /* packs work per 128-bit lane: this permutation restores element order. */
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (i = 0; i + 32 <= n; i += 32) {
        __m256i v[4];
        for (int g = 0; g < 4; g++) {
            __m256 f = _mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * g), vs);
            f = _mm256_round_ps(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            f = _mm256_max_ps(_mm256_min_ps(f, hi), lo);
            v[g] = _mm256_cvtps_epi32(f);
        }
        __m256i w01 = _mm256_packs_epi32(v[0], v[1]);
        __m256i w23 = _mm256_packs_epi32(v[2], v[3]);
        __m256i b = _mm256_packs_epi16(w01, w23);
        _mm256_storeu_si256((__m256i *)(q + i), _mm256_permutevar8x32_epi32(b, order));
    }
    for (; i < n; i++) {
        float v = nearbyintf(x[i] * s);
        v = v > 127.0f ? 127.0f : v;
        v = v < -128.0f ? -128.0f : v;
        q[i] = (int8_t)v;
    }
    return s;
}

/* ---------------------------------------------------------------- ternary matmul */

BN_AVX2 static int32_t hsum_epi32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

BN_AVX2 static int32_t sum_q(const int8_t *q, size_t k)
{
    const __m256i ones = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    __m256i acc = _mm256_setzero_si256();
    for (size_t j = 0; j < k; j += 32) {
        __m256i p = _mm256_maddubs_epi16(ones, _mm256_loadu_si256((const __m256i *)(q + j)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones16));
    }
    return hsum_epi32(acc);
}

/* sum(code * q) over one 128-weight block, as int16 pairs (|lane| <= 3072). */
BN_AVX2 static __m256i block_dot16(const uint8_t *blk, const int8_t *qb)
{
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256i v = _mm256_loadu_si256((const __m256i *)blk);
    __m256i c0 = _mm256_and_si256(_mm256_srli_epi16(v, 6), m3);
    __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(v, 4), m3);
    __m256i c2 = _mm256_and_si256(_mm256_srli_epi16(v, 2), m3);
    __m256i c3 = _mm256_and_si256(v, m3);
    __m256i p0 = _mm256_maddubs_epi16(c0, _mm256_loadu_si256((const __m256i *)qb));
    __m256i p1 = _mm256_maddubs_epi16(c1, _mm256_loadu_si256((const __m256i *)(qb + 32)));
    __m256i p2 = _mm256_maddubs_epi16(c2, _mm256_loadu_si256((const __m256i *)(qb + 64)));
    __m256i p3 = _mm256_maddubs_epi16(c3, _mm256_loadu_si256((const __m256i *)(qb + 96)));
    return _mm256_add_epi16(_mm256_add_epi16(p0, p1), _mm256_add_epi16(p2, p3));
}

/* One weight row against one activation row (decode): rows are streamed one after the other,
 * which keeps the hardware prefetcher at full bandwidth (interleaving rows measured slower);
 * two blocks per step into two accumulators, and a software prefetch into L2 (T1) 16 KB ahead,
 * into the next rows (as on the AVX-512 path, avx512.c; here it gained ~5-10% on a Zen 4 EPYC,
 * 16-17 -> 17-19 GB/s from DRAM, since this kernel's own compute rate, ~23 GB/s from L2, is
 * the closer limit). Prefetches never fault. */
BN_AVX2 static __m256i dot_1row_lanes(const uint8_t *w, const int8_t *q, size_t k)
{
    const __m256i ones16 = _mm256_set1_epi16(1);
    __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0;
    const size_t n_blocks = k / 128;
    size_t b = 0;
    for (; b + 2 <= n_blocks; b += 2) {
        _mm_prefetch((const char *)(w + 32 * b) + 16384, _MM_HINT_T1);
        acc0 = _mm256_add_epi32(acc0,
                                _mm256_madd_epi16(block_dot16(w + 32 * b, q + 128 * b), ones16));
        acc1 = _mm256_add_epi32(
            acc1, _mm256_madd_epi16(block_dot16(w + 32 * b + 32, q + 128 * b + 128), ones16));
    }
    if (b < n_blocks)
        acc0 = _mm256_add_epi32(acc0,
                                _mm256_madd_epi16(block_dot16(w + 32 * b, q + 128 * b), ones16));
    return _mm256_add_epi32(acc0, acc1);
}

BN_AVX2 static int32_t dot_1row(const uint8_t *w, const int8_t *q, size_t k)
{
    return hsum_epi32(dot_1row_lanes(w, q, k));
}

/* Eight int32 vectors -> one vector of their eight lane sums (lane i = sum of x[i]). */
BN_AVX2 static __m256i reduce8(const __m256i x[8])
{
    /* 128-bit lane l of h0123: partial sums of x0..x3 over that lane's elements */
    const __m256i h0123 = _mm256_hadd_epi32(_mm256_hadd_epi32(x[0], x[1]),
                                            _mm256_hadd_epi32(x[2], x[3]));
    const __m256i h4567 = _mm256_hadd_epi32(_mm256_hadd_epi32(x[4], x[5]),
                                            _mm256_hadd_epi32(x[6], x[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(h0123, h4567, 0x20),
                            _mm256_permute2x128_si256(h0123, h4567, 0x31));
}

/* One weight row against four activation rows (prefill): the row's codes are unpacked once
 * per block and used four times. Returns sum(code * q) of activation row r in lane r. */
BN_AVX2 static __m128i dot_4acts(const uint8_t *w, const int8_t *q, size_t k)
{
    const __m256i m3 = _mm256_set1_epi8(3), ones16 = _mm256_set1_epi16(1);
    __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                      _mm256_setzero_si256()};
    for (size_t b = 0; b < k / 128; b++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(w + 32 * b));
        __m256i c0 = _mm256_and_si256(_mm256_srli_epi16(v, 6), m3);
        __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(v, 4), m3);
        __m256i c2 = _mm256_and_si256(_mm256_srli_epi16(v, 2), m3);
        __m256i c3 = _mm256_and_si256(v, m3);
        for (int r = 0; r < 4; r++) {
            const int8_t *qb = q + r * k + 128 * b;
            __m256i p0 = _mm256_maddubs_epi16(c0, _mm256_loadu_si256((const __m256i *)qb));
            __m256i p1 = _mm256_maddubs_epi16(c1, _mm256_loadu_si256((const __m256i *)(qb + 32)));
            __m256i p2 = _mm256_maddubs_epi16(c2, _mm256_loadu_si256((const __m256i *)(qb + 64)));
            __m256i p3 = _mm256_maddubs_epi16(c3, _mm256_loadu_si256((const __m256i *)(qb + 96)));
            __m256i p = _mm256_add_epi16(_mm256_add_epi16(p0, p1), _mm256_add_epi16(p2, p3));
            acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(p, ones16));
        }
    }
    /* the four sums in one vector: lane r = activation row r */
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(acc[0], acc[1]),
                                        _mm256_hadd_epi32(acc[2], acc[3]));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* Rows of activations are processed in groups of four (prefill), leftovers (decode) one at a
 * time. */
BN_AVX2 static void avx2_ternary_matmul(const bn_ternary *w, size_t row_begin, size_t row_end,
                                        const int8_t *q, const float *act_scale, size_t n_act,
                                        float *y, size_t ldy)
{
    const size_t k = w->k, row_bytes = k / 4;
    const float beta = w->scale;
    size_t r = 0;
    for (; r + 4 <= n_act; r += 4) {
        const int8_t *qr = q + r * k;
        const __m128i sqv = _mm_setr_epi32(sum_q(qr, k), sum_q(qr + k, k), sum_q(qr + 2 * k, k),
                                           sum_q(qr + 3 * k, k));
        const __m128 scv = _mm_loadu_ps(act_scale + r), betav = _mm_set1_ps(beta);
        for (size_t i = row_begin; i < row_end; i++) {
            /* the epilogue four lanes at a time: the scalar's ((float)T / s) * beta, the same
             * IEEE operations */
            const __m128i d = _mm_sub_epi32(dot_4acts(w->packed + i * row_bytes, qr, k), sqv);
            float v[4];
            _mm_storeu_ps(v, _mm_mul_ps(_mm_div_ps(_mm_cvtepi32_ps(d), scv), betav));
            for (int a = 0; a < 4; a++)
                y[(r + a) * ldy + i] = v[a];
        }
    }
    /* decode: eight rows' sums reduced together and their epilogue as one vector (as on the
     * AVX-512 path: the per-row horizontal sum and division chain; vector ops round exactly
     * as the scalar ones) */
    for (; r < n_act; r++) {
        const int8_t *qr = q + r * k;
        const int32_t sq = sum_q(qr, k);
        const float s = act_scale[r];
        size_t i = row_begin;
        for (; i + 8 <= row_end; i += 8) {
            __m256i lanes[8];
            for (int t = 0; t < 8; t++)
                lanes[t] = dot_1row_lanes(w->packed + (i + t) * row_bytes, qr, k);
            const __m256i d = _mm256_sub_epi32(reduce8(lanes), _mm256_set1_epi32(sq));
            const __m256 v = _mm256_mul_ps(_mm256_div_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(s)),
                                           _mm256_set1_ps(beta));
            _mm256_storeu_ps(y + r * ldy + i, v);
        }
        for (; i < row_end; i++)
            y[r * ldy + i] = ((float)(dot_1row(w->packed + i * row_bytes, qr, k) - sq) / s) * beta;
    }
}

/* ---------------------------------------------------------------- f16 dot products */

/* The scalar twin's order: 64 float accumulators acc[l] (here 8 ymm, acc[8g + lane]) over
 * steps of 64; v[l] = (acc[l] + acc[32+l]) + (acc[16+l] + acc[48+l]); lanes folded l+8, l+4,
 * l+2, l+1; tail in double. Products of halves are exact in float, so fma == mul + add. */
BN_AVX2 static float reduce64(const __m256 acc[8])
{
    __m256 vlo = _mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6]));
    __m256 vhi = _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7]));
    __m256 v8 = _mm256_add_ps(vlo, vhi);                                              /* l + 8 */
    __m128 v4 = _mm_add_ps(_mm256_castps256_ps128(v8), _mm256_extractf128_ps(v8, 1)); /* l + 4 */
    __m128 v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));                                /* l + 2 */
    __m128 v1 = _mm_add_ss(v2, _mm_shuffle_ps(v2, v2, 1));                            /* l + 1 */
    return _mm_cvtss_f32(v1);
}

BN_AVX2 static float avx2_dot_f16(const uint16_t *a, const uint16_t *b, size_t n)
{
    const size_t np = n & ~(size_t)63;
    double sum = 0.0;
    if (np) {
        __m256 acc[8];
        for (int g = 0; g < 8; g++)
            acc[g] = _mm256_setzero_ps();
        for (size_t i = 0; i < np; i += 64)
            for (int g = 0; g < 8; g++) {
                __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i + 8 * g)));
                __m256 z = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i + 8 * g)));
                acc[g] = _mm256_fmadd_ps(x, z, acc[g]);
            }
        sum = reduce64(acc);
    }
    for (size_t i = np; i < n; i++) {
        float x = _cvtsh_ss(a[i]), z = _cvtsh_ss(b[i]);
        sum += (double)(x * z);
    }
    return (float)sum;
}

BN_AVX2 static void avx2_matvec_f16(const uint16_t *w, size_t k, size_t row_begin, size_t row_end,
                                    const uint16_t *x, float *y)
{
    for (size_t i = row_begin; i < row_end; i++)
        y[i] = avx2_dot_f16(w + i * k, x, k);
}

const bn_kernels bn_kernels_avx2 = {
    .name = "avx2",
    .row_block = 4,
    .quantize_row = bn_x86_avx2_quantize_row,
    .ternary_matmul = avx2_ternary_matmul,
    .prepare = NULL,
    .release = NULL,
    .dot_f16 = avx2_dot_f16,
    .dot_f16_rows = bn_x86_avx2_dot_f16_rows,
    .matvec_f16 = avx2_matvec_f16,
    .softmax = bn_x86_fma_softmax,
    .silu_mul = bn_x86_fma_silu_mul,
    .f32_to_f16_row = bn_x86_f16c_f32_to_f16_row,
    .f16_to_f32_row = bn_x86_f16c_f16_to_f32_row,
    .matvec_i8 = bn_x86_avx2_matvec_i8,
    .matvec_i8x2 = bn_x86_avx2_matvec_i8x2,
};

const bn_kernel_path bn_path_avx2 = {&bn_kernels_avx2, bn_x86_has_avx2, 0};
