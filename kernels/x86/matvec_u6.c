/* 6-bit rows x a 16-bit vector (the screened LM head's approximate pass in the u6 layout,
 * kernels.h: matvec_u6) on AVX-512 VNNI.
 *
 *   y[i] = sum_j q_ij * (255 xh[j] + xl[j]),  q = code - 32,  codes 1..63,  xh, xl in [-127, 127]
 *
 * Each group of 256 codes (192 bytes) gives four byte vectors of codes: A, B and C masked with
 * 0x3f, and the fourth assembled from their top two bits (three 16-bit shifts: a byte's top
 * bits land in its own low bits, the neighbour's bits are masked off). The codes are unsigned
 * (1..63), so they multiply the signed activation planes directly: eight VPDPBUSD per group.
 * The offset comes off once per row: sum u x = sum q x + 32 sum x. The k % 256 last codes are
 * plain bytes, summed in scalar. Every sum is an exact integer (per int32 lane at most
 * 2 * 4 * 63 * 127 per group and accumulator, 2^9 groups for k <= 131072), so the result is
 * the scalar twin's (bn_u6_matvec).
 *
 * Rows are streamed one after the other, as gcc schedules it (loads folded into the
 * instructions that use them). Measured on a Zen 4 EPYC (bench-kernels, 128256 x 2560, one
 * thread): 9.8-10.5 ms against 12.4-13.4 for matvec_i8. Two rows sharing each activation load
 * (with the loads pinned in registers) ran 42 instead of 29 GB/s from L2 but 24-27 ms from
 * DRAM (two interleaved streams defeat the prefetcher), and pinned loads alone 12.5-13.6 ms; an
 * AVX2 version (VPMADDUBSW + VPMADDWD) computed at ~20 GB/s from L2 and gained nothing over
 * AVX2's matvec_i8 end to end, so AVX2 has none (a u6 copy there runs the scalar twin). */
#include <immintrin.h>

#include "x86.h"

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

BN_AVX512 void bn_x86_avx512_matvec_u6(const uint8_t *w, size_t k, size_t row_begin, size_t row_end,
                                       const int8_t *xh, const int8_t *xl, int64_t *y)
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
