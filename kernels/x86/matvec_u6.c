/* 6-bit rows x a 16-bit vector (the screened LM head's approximate pass in the u6 layout,
 * kernels.h: matvec_u6) on AVX2 and AVX-512 VNNI.
 *
 *   y[i] = sum_j q_ij * (255 xh[j] + xl[j]),  q = code - 32,  codes 1..63,  xh, xl in [-127, 127]
 *
 * Each group of 256 codes (192 bytes) gives four byte vectors of codes: A, B and C masked with
 * 0x3f, and the fourth assembled from their top two bits (three 16-bit shifts: a byte's top
 * bits land in its own low bits, the neighbour's bits are masked off). The codes are unsigned
 * (1..63), so they multiply the signed activation planes directly: VPDPBUSD, or VPMADDUBSW
 * (2 * 63 * 127 = 16002, two of them added 32004 < 32767: never saturates) and VPMADDWD by
 * ones. The offset comes off once per row: sum u x = sum q x + 32 sum x. Rows are streamed one
 * after the other (one sequential stream for the prefetcher, as matvec_i8); the k % 256 last
 * codes are plain bytes, summed in scalar. Every sum is an exact integer (per int32 lane at most
 * 4 * 63 * 127 per code vector and group, 2^9 groups for k <= 131072), so every path equals the
 * scalar twin bn_u6_matvec. */
#include <immintrin.h>

#include "x86.h"

#define BN_AVX2   __attribute__((target("avx2,fma,f16c")))
#define BN_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

enum {
    group_codes = 256,
    group_bytes = 192
};

/* sum_j over the first n (a multiple of 256) activations of a plane: the codes' offset. */
static int32_t plane_sum(const int8_t *x, size_t n)
{
    int32_t s = 0;
    for (size_t j = 0; j < n; j++)
        s += x[j];
    return s;
}

/* The k % 256 last codes (plain bytes) against their activations. */
static int64_t tail_dot(const uint8_t *codes, const int8_t *xh, const int8_t *xl, size_t n)
{
    int64_t s = 0;
    for (size_t j = 0; j < n; j++)
        s += (int64_t)((int)codes[j] - 32) * (255 * (int32_t)xh[j] + xl[j]);
    return s;
}

/* ------------------------------------------------------------------ AVX-512 VNNI */

BN_AVX512 void bn_x86_avx512_matvec_u6(const uint8_t *w, size_t k, size_t row_begin,
                                       size_t row_end, const int8_t *xh, const int8_t *xl,
                                       int64_t *y)
{
    const size_t groups = k / group_codes, kg = groups * group_codes;
    const size_t row_bytes = groups * group_bytes + (k - kg);
    const int64_t off = 32 * (255 * (int64_t)plane_sum(xh, kg) + plane_sum(xl, kg));
    const __m512i m3f = _mm512_set1_epi8(0x3f), m03 = _mm512_set1_epi8(0x03);
    const __m512i m0f = _mm512_set1_epi8(0x0f);
    for (size_t i = row_begin; i < row_end; i++) {
        const uint8_t *r = w + i * row_bytes;
        __m512i h0 = _mm512_setzero_si512(), h1 = h0, l0 = h0, l1 = h0;
        for (size_t g = 0; g < groups; g++) {
            const uint8_t *p = r + g * group_bytes;
            const int8_t *ph = xh + g * group_codes, *pl = xl + g * group_codes;
            const __m512i A = _mm512_loadu_si512(p), B = _mm512_loadu_si512(p + 64);
            const __m512i C = _mm512_loadu_si512(p + 128);
            const __m512i a = _mm512_and_si512(A, m3f), b = _mm512_and_si512(B, m3f);
            const __m512i c = _mm512_and_si512(C, m3f);
            /* bits 0-1 from A >> 6, bits 2-3 from B >> 4, bits 4-5 from C >> 2 (0xCA: pick the
             * first operand where the mask bit is set, else the second) */
            const __m512i t = _mm512_ternarylogic_epi32(m03, _mm512_srli_epi16(A, 6),
                                                        _mm512_srli_epi16(B, 4), 0xCA);
            const __m512i d = _mm512_and_si512(
                _mm512_ternarylogic_epi32(m0f, t, _mm512_srli_epi16(C, 2), 0xCA), m3f);
            h0 = _mm512_dpbusd_epi32(h0, a, _mm512_loadu_si512(ph));
            l0 = _mm512_dpbusd_epi32(l0, a, _mm512_loadu_si512(pl));
            h1 = _mm512_dpbusd_epi32(h1, b, _mm512_loadu_si512(ph + 64));
            l1 = _mm512_dpbusd_epi32(l1, b, _mm512_loadu_si512(pl + 64));
            h0 = _mm512_dpbusd_epi32(h0, c, _mm512_loadu_si512(ph + 128));
            l0 = _mm512_dpbusd_epi32(l0, c, _mm512_loadu_si512(pl + 128));
            h1 = _mm512_dpbusd_epi32(h1, d, _mm512_loadu_si512(ph + 192));
            l1 = _mm512_dpbusd_epi32(l1, d, _mm512_loadu_si512(pl + 192));
        }
        const int64_t sh = _mm512_reduce_add_epi32(_mm512_add_epi32(h0, h1));
        const int64_t sl = _mm512_reduce_add_epi32(_mm512_add_epi32(l0, l1));
        y[i] = 255 * sh + sl - off + tail_dot(r + groups * group_bytes, xh + kg, xl + kg, k - kg);
    }
}

/* ------------------------------------------------------------------ AVX2 */

BN_AVX2 static int32_t hsum8(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* Four code vectors against their four activation vectors of one plane, into int32 lanes. */
BN_AVX2 static __m256i dot4(__m256i acc, __m256i a, __m256i b, __m256i c, __m256i d,
                           const int8_t *x, __m256i ones)
{
    const __m256i ab = _mm256_add_epi16(
        _mm256_maddubs_epi16(a, _mm256_loadu_si256((const __m256i *)x)),
        _mm256_maddubs_epi16(b, _mm256_loadu_si256((const __m256i *)(x + 64))));
    const __m256i cd = _mm256_add_epi16(
        _mm256_maddubs_epi16(c, _mm256_loadu_si256((const __m256i *)(x + 128))),
        _mm256_maddubs_epi16(d, _mm256_loadu_si256((const __m256i *)(x + 192))));
    return _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(ab, ones),
                                                  _mm256_madd_epi16(cd, ones)));
}

BN_AVX2 void bn_x86_avx2_matvec_u6(const uint8_t *w, size_t k, size_t row_begin, size_t row_end,
                                   const int8_t *xh, const int8_t *xl, int64_t *y)
{
    const size_t groups = k / group_codes, kg = groups * group_codes;
    const size_t row_bytes = groups * group_bytes + (k - kg);
    const int64_t off = 32 * (255 * (int64_t)plane_sum(xh, kg) + plane_sum(xl, kg));
    const __m256i m3f = _mm256_set1_epi8(0x3f), m03 = _mm256_set1_epi8(0x03);
    const __m256i m0c = _mm256_set1_epi8(0x0c), m30 = _mm256_set1_epi8(0x30);
    const __m256i ones = _mm256_set1_epi16(1);
    for (size_t i = row_begin; i < row_end; i++) {
        const uint8_t *r = w + i * row_bytes;
        __m256i hs = _mm256_setzero_si256(), ls = hs;
        for (size_t g = 0; g < groups; g++)
            for (int half = 0; half < 2; half++) { /* 32 of the 64 bytes of A, B and C */
                const uint8_t *p = r + g * group_bytes + 32 * half;
                const size_t j = g * group_codes + 32 * (size_t)half;
                const __m256i A = _mm256_loadu_si256((const __m256i *)p);
                const __m256i B = _mm256_loadu_si256((const __m256i *)(p + 64));
                const __m256i C = _mm256_loadu_si256((const __m256i *)(p + 128));
                const __m256i d = _mm256_or_si256(
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(A, 6), m03),
                                    _mm256_and_si256(_mm256_srli_epi16(B, 4), m0c)),
                    _mm256_and_si256(_mm256_srli_epi16(C, 2), m30));
                const __m256i a = _mm256_and_si256(A, m3f), b = _mm256_and_si256(B, m3f);
                const __m256i c = _mm256_and_si256(C, m3f);
                hs = dot4(hs, a, b, c, d, xh + j, ones);
                ls = dot4(ls, a, b, c, d, xl + j, ones);
            }
        y[i] = 255 * (int64_t)hsum8(hs) + hsum8(ls) - off +
               tail_dot(r + groups * group_bytes, xh + kg, xl + kg, k - kg);
    }
}
