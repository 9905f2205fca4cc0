/* int8 rows x int8 vector (the screened LM head's approximate pass) on AVX2 and AVX-512 VNNI,
 * and the same rows x a two-plane 15-bit vector (matvec_i8x2, below).
 *
 *   row i = k int8 at w + i*k; x = k int8; values in [-127, 127]; y[i] = exact int32 sum
 *
 * Neither ISA multiplies signed by signed bytes, so the sign of w moves onto x: |w| * (x
 * negated where w < 0) = w * x, with |w| <= 127 unsigned and -x representable because x is
 * never -128. AVX2: VPMADDUBSW pairs (2 * 127 * 127 = 32258 < 32767: never saturates), then
 * VPMADDWD by ones. AVX-512: VPDPBUSD. Rows are streamed one after the other with two
 * accumulators (one sequential stream for the prefetcher: 2.1-2.4x faster on the 2B-4T head
 * than four interleaved rows sharing each load of x, bench-matmul); the k % 64 (k % 128) tail
 * is summed in scalar. Integer sums are exact, so every path equals the scalar twin. */
#include <immintrin.h>

#include "x86.h"

#define BN_AVX2   __attribute__((target("avx2,fma,f16c")))
#define BN_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

static int32_t tail_dot(const int8_t *r, const int8_t *x, size_t j, size_t k)
{
    int32_t sum = 0;
    for (; j < k; j++)
        sum += (int32_t)r[j] * x[j];
    return sum;
}

/* tail_dot against the two planes (matvec_i8x2). */
static int64_t tail_dot2(const int8_t *r, const int8_t *xh, const int8_t *xl, size_t j, size_t k)
{
    int64_t sum = 0;
    for (; j < k; j++)
        sum += (int64_t)r[j] * (255 * (int32_t)xh[j] + xl[j]);
    return sum;
}

BN_AVX2 static int32_t hsum8(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

BN_AVX2 static __m256i dot32_avx2(__m256i acc, __m256i w, __m256i x, __m256i ones)
{
    __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
}

BN_AVX2 void bn_x86_avx2_matvec_i8(const int8_t *w, size_t k, size_t row_begin, size_t row_end,
                                   const int8_t *x, int32_t *y)
{
    const size_t kp = k & ~(size_t)63;
    const __m256i ones = _mm256_set1_epi16(1);
    for (size_t i = row_begin; i < row_end; i++) {
        const int8_t *r = w + i * k;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0;
        for (size_t j = 0; j < kp; j += 64) {
            a0 = dot32_avx2(a0, _mm256_loadu_si256((const __m256i *)(r + j)),
                            _mm256_loadu_si256((const __m256i *)(x + j)), ones);
            a1 = dot32_avx2(a1, _mm256_loadu_si256((const __m256i *)(r + j + 32)),
                            _mm256_loadu_si256((const __m256i *)(x + j + 32)), ones);
        }
        y[i] = hsum8(_mm256_add_epi32(a0, a1)) + tail_dot(r, x, kp, k);
    }
}

/* matvec_i8x2 on AVX2: each plane through matvec_i8's step (the sign of w moved onto the plane,
 * |w| <= 127 so a VPMADDUBSW pair stays below 32767), two planes per load of w; the int32 lanes
 * are added in int64 (their total can pass 2^31 when each cannot: a lane gains at most
 * 2 * 127 * 127 * 2 per 32 bytes, 2^12 steps for k <= 131072). */
BN_AVX2 static int64_t hsum8_64(__m256i v)
{
    const __m256i s = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)),
                                       _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
    const __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    return _mm_cvtsi128_si64(t) + _mm_extract_epi64(t, 1);
}

BN_AVX2 void bn_x86_avx2_matvec_i8x2(const int8_t *w, size_t k, size_t row_begin, size_t row_end,
                                     const int8_t *xh, const int8_t *xl, int64_t *y)
{
    const size_t kp = k & ~(size_t)31;
    const __m256i ones = _mm256_set1_epi16(1);
    for (size_t i = row_begin; i < row_end; i++) {
        const int8_t *r = w + i * k;
        __m256i h = _mm256_setzero_si256(), l = h;
        for (size_t j = 0; j < kp; j += 32) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(r + j));
            h = dot32_avx2(h, v, _mm256_loadu_si256((const __m256i *)(xh + j)), ones);
            l = dot32_avx2(l, v, _mm256_loadu_si256((const __m256i *)(xl + j)), ones);
        }
        y[i] = 255 * hsum8_64(h) + hsum8_64(l) + tail_dot2(r, xh, xl, kp, k);
    }
}

BN_AVX512 static __m512i dot64_vnni(__m512i acc, __m512i w, __m512i x)
{
    const __mmask64 neg = _mm512_movepi8_mask(w);
    const __m512i sx = _mm512_mask_sub_epi8(x, neg, _mm512_setzero_si512(), x);
    return _mm512_dpbusd_epi32(acc, _mm512_abs_epi8(w), sx);
}

/* The sixteen int32 lanes' sum in int64 (their total can pass 2^31 when each cannot). */
BN_AVX512 static int64_t hsum64(__m512i v)
{
    return _mm512_reduce_add_epi64(
        _mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(v)),
                         _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(v, 1))));
}

/* matvec_i8x2: the rows as unsigned bytes (q + 128, 1..255, one XOR) times both planes,
 * VPDPBUSD each; the offset comes off once per row (sum u x = sum q x + 128 sum x). A lane
 * gains at most 4 * 255 * 127 per instruction, 2^11 of them for k <= 131072: exact in int32;
 * the lanes are added in int64. (Unrolled to 128 bytes and four accumulators it measured no
 * faster from DRAM.) */
BN_AVX512 void bn_x86_avx512_matvec_i8x2(const int8_t *w, size_t k, size_t row_begin,
                                         size_t row_end, const int8_t *xh, const int8_t *xl,
                                         int64_t *y)
{
    const size_t kp = k & ~(size_t)63;
    int64_t sh = 0, sl = 0;
    for (size_t j = 0; j < kp; j++) {
        sh += xh[j];
        sl += xl[j];
    }
    const int64_t off = 128 * (255 * sh + sl);
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    for (size_t i = row_begin; i < row_end; i++) {
        const int8_t *r = w + i * k;
        __m512i h = _mm512_setzero_si512(), l = h;
        for (size_t j = 0; j < kp; j += 64) {
            const __m512i u = _mm512_xor_si512(_mm512_loadu_si512(r + j), bias);
            h = _mm512_dpbusd_epi32(h, u, _mm512_loadu_si512(xh + j));
            l = _mm512_dpbusd_epi32(l, u, _mm512_loadu_si512(xl + j));
        }
        y[i] = 255 * hsum64(h) + hsum64(l) - off + tail_dot2(r, xh, xl, kp, k);
    }
}

BN_AVX512 void bn_x86_avx512_matvec_i8(const int8_t *w, size_t k, size_t row_begin, size_t row_end,
                                       const int8_t *x, int32_t *y)
{
    const size_t kp = k & ~(size_t)127;
    for (size_t i = row_begin; i < row_end; i++) {
        const int8_t *r = w + i * k;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0;
        for (size_t j = 0; j < kp; j += 128) {
            a0 = dot64_vnni(a0, _mm512_loadu_si512(r + j), _mm512_loadu_si512(x + j));
            a1 = dot64_vnni(a1, _mm512_loadu_si512(r + j + 64), _mm512_loadu_si512(x + j + 64));
        }
        y[i] = _mm512_reduce_add_epi32(_mm512_add_epi32(a0, a1)) + tail_dot(r, x, kp, k);
    }
}
