/* AVX-512 VNNI path (F/BW/VL/VNNI + F16C): bit-identical to the scalar twins. Per-function
 * target attributes keep the library runnable anywhere; dispatch.c only selects it when
 * bn_x86_has_avx512vnni().
 *
 * Ternary block (128 weights = 32 bytes, file layout), one zmm per half block:
 *
 *   v   = the 32 bytes broadcast to both 256-bit halves
 *   c01 = (v >> {6 | 4}) & 3  (low half shifted by 6, high half by 4)  pairs with q[ 0.. 64)
 *   c23 = (v >> {2 | 0}) & 3                                           pairs with q[64..128)
 *
 * vpdpbusd multiplies u8 codes by s8 activations and adds groups of four products straight
 * into int32 lanes without intermediate saturation, so the sums are exact; T = sum(code*q) -
 * sum(q) since t = code - 1.
 *
 * Decode (one activation row) skips the shifts: it masks the codes in place,
 *
 *   v & {0xC0 | 0x30} = {code0 << 6 | code1 << 4}   pairs with q[ 0.. 64)
 *   v & {0x0C | 0x03} = {code2 << 2 | code3     }   pairs with q[64..128)
 *
 * so each int32 lane sums products scaled by a fixed power of two (64, 16, 4 or 1 by lane
 * half and vector), and is divided exactly by an arithmetic shift after the loop. A lane gains
 * at most 4*192*128 = 98304 per block (192 = code 3 << 6), so blocks are summed in chunks of
 * 8192 (8192 * 98304 < 2^30) before shifting. Weight rows are streamed one after the other:
 * on the machines measured that keeps the hardware prefetcher at full memory bandwidth, where
 * interleaving several rows did not.
 */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "f16_reduce.h"
#include "x86.h"

#define BN_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

int bn_x86_has_avx512vnni(void)
{
    __builtin_cpu_init();
    /* __builtin_cpu_supports also checks that the OS saves the zmm state (XGETBV). */
    return bn_x86_has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512vnni");
}

/* ---------------------------------------------------------------- ternary matmul */

BN_AVX512 static int32_t sum_q(const int8_t *q, size_t k)
{
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i acc = _mm512_setzero_si512();
    for (size_t j = 0; j < k; j += 64)
        acc = _mm512_dpbusd_epi32(acc, ones, _mm512_loadu_si512(q + j));
    return _mm512_reduce_add_epi32(acc);
}

/* The two code vectors of one block (see the diagram). */
BN_AVX512 static void unpack_block(const uint8_t *blk, __m512i sh01, __m512i sh23, __m512i *c01,
                                   __m512i *c23)
{
    const __m512i m3 = _mm512_set1_epi8(3);
    __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)blk));
    *c01 = _mm512_and_si512(_mm512_srlv_epi16(v, sh01), m3);
    *c23 = _mm512_and_si512(_mm512_srlv_epi16(v, sh23), m3);
}

/* epi16 shift counts: 16-bit lanes 0..15 (low half) and 16..31 (high half). */
BN_AVX512 static __m512i shifts(int lo, int hi)
{
    return _mm512_inserti64x4(_mm512_set1_epi16((short)lo), _mm256_set1_epi16((short)hi), 1);
}

/* Software prefetch distance of the streaming decode kernels, into L2 (T1): rows follow each
 * other in memory, so this reaches into the next rows. Without it, on a Zen 4 EPYC (KVM) the
 * masked decode read only ~9-11 GB/s from DRAM although it computes at ~32 GB/s from L2 and
 * plain reads reach ~25-30 GB/s: the hardware prefetcher did not run far enough ahead. Measured
 * there (standalone loop over 512 MB): no prefetch 9.2 GB/s, T0 at 2-16 KB ~10.7, T1 at 2 KB
 * 13.9, T1 at 8-24 KB 21-24 (the plain read rate at that time). Prefetches never fault, so
 * reaching past the end of a matrix is harmless (at most these bytes wasted per call). */
enum {
    decode_prefetch_bytes = 16384
};

/* One block (128 codes at blk) against its 128 activations in q's order, by the diagram's
 * broadcast form: the sixteen int32 lanes whose sum is the block's sum(code * q). */
BN_AVX512 static __m512i block_lanes(const uint8_t *blk, const int8_t *qb)
{
    const __m512i m01 = _mm512_inserti64x4(_mm512_set1_epi8((char)0xC0), _mm256_set1_epi8(0x30), 1);
    const __m512i m23 = _mm512_inserti64x4(_mm512_set1_epi8(0x0C), _mm256_set1_epi8(0x03), 1);
    const __m512i s01 = _mm512_inserti64x4(_mm512_set1_epi32(6), _mm256_set1_epi32(4), 1);
    const __m512i s23 = _mm512_inserti64x4(_mm512_set1_epi32(2), _mm256_set1_epi32(0), 1);
    const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)blk));
    const __m512i zero = _mm512_setzero_si512();
    const __m512i a01 = _mm512_dpbusd_epi32(zero, _mm512_and_si512(v, m01), _mm512_loadu_si512(qb));
    const __m512i a23 = _mm512_dpbusd_epi32(zero, _mm512_and_si512(v, m23),
                                            _mm512_loadu_si512(qb + 64));
    return _mm512_add_epi32(_mm512_srav_epi32(a01, s01), _mm512_srav_epi32(a23, s23));
}

/* One weight row against one activation row (decode), by masking (see the diagram): the
 * sixteen int32 lanes whose sum is the row's sum(code * q). */
BN_AVX512 static __m512i dot_row_lanes(const uint8_t *w, const int8_t *q, size_t k)
{
    const __m512i m01 = _mm512_inserti64x4(_mm512_set1_epi8((char)0xC0), _mm256_set1_epi8(0x30), 1);
    const __m512i m23 = _mm512_inserti64x4(_mm512_set1_epi8(0x0C), _mm256_set1_epi8(0x03), 1);
    const __m512i s01 = _mm512_inserti64x4(_mm512_set1_epi32(6), _mm256_set1_epi32(4), 1);
    const __m512i s23 = _mm512_inserti64x4(_mm512_set1_epi32(2), _mm256_set1_epi32(0), 1);
    const size_t n_blocks = k / 128, n_pairs = n_blocks & ~(size_t)1;
    __m512i total = _mm512_setzero_si512();
    for (size_t c0 = 0; c0 < n_pairs; c0 += 8192) {
        const size_t c1 = n_pairs - c0 < 8192 ? n_pairs : c0 + 8192;
        /* two blocks per step, four independent accumulators */
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t b = c0; b < c1; b += 2) {
            const int8_t *qb = q + 128 * b;
            _mm_prefetch((const char *)(w + 32 * b + decode_prefetch_bytes), _MM_HINT_T1);
            __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(w + 32 * b)));
            __m512i u = _mm512_broadcast_i64x4(
                _mm256_loadu_si256((const __m256i *)(w + 32 * b + 32)));
            a0 = _mm512_dpbusd_epi32(a0, _mm512_and_si512(v, m01), _mm512_loadu_si512(qb));
            a1 = _mm512_dpbusd_epi32(a1, _mm512_and_si512(v, m23), _mm512_loadu_si512(qb + 64));
            a2 = _mm512_dpbusd_epi32(a2, _mm512_and_si512(u, m01), _mm512_loadu_si512(qb + 128));
            a3 = _mm512_dpbusd_epi32(a3, _mm512_and_si512(u, m23), _mm512_loadu_si512(qb + 192));
        }
        /* a0 + a2 (and a1 + a3) stay below 2^31: at most 8192 blocks' worth together */
        total = _mm512_add_epi32(total, _mm512_srav_epi32(_mm512_add_epi32(a0, a2), s01));
        total = _mm512_add_epi32(total, _mm512_srav_epi32(_mm512_add_epi32(a1, a3), s23));
    }
    if (n_pairs < n_blocks)
        total = _mm512_add_epi32(total, block_lanes(w + 32 * n_pairs, q + 128 * n_pairs));
    return total;
}

BN_AVX512 static int32_t dot_row_masked(const uint8_t *w, const int8_t *q, size_t k)
{
    return _mm512_reduce_add_epi32(dot_row_lanes(w, q, k));
}

/* Prefill tiles read the weights 64 bytes (two blocks) at a time, shifted by a constant:
 * field f of both blocks, (v >> (6 - 2f)) & 3, pairs with activations gathered as
 *
 *   qp[128b + 64f + 0..32) = q[128b + 32f ..]   qp[128b + 64f + 32..64) = q[128(b+1) + 32f ..]
 *
 * for each even b; a last odd block keeps q's order and takes the diagram's broadcast form. */
enum {
    decode_perm_max_k = 32768 /* decode permutes a row of at most this many activations */
};

BN_AVX512 static void permute_q(const int8_t *q, size_t k, int8_t *qp)
{
    const size_t n_blocks = k / 128;
    size_t b = 0;
    for (; b + 2 <= n_blocks; b += 2)
        for (int f = 0; f < 4; f++) {
            memcpy(qp + 128 * b + 64 * f, q + 128 * b + 32 * f, 32);
            memcpy(qp + 128 * b + 64 * f + 32, q + 128 * (b + 1) + 32 * f, 32);
        }
    if (b < n_blocks)
        memcpy(qp + 128 * b, q + 128 * b, 128);
}

/* One weight row against one activation row already permuted by permute_q (decode): one 64-byte
 * load per two blocks instead of two broadcasts, each field masked in place (0xC0, 0x30, 0x0C,
 * 0x03: the code times 64, 16, 4, 1) against its 64 permuted activations, and the four sums
 * shifted back once at the end (exact: each is a multiple of its power of two). A last odd
 * block keeps q's order in qp and takes block_lanes. The lanes' total is the same integer as
 * dot_row_lanes'. k <= decode_perm_max_k: no lane comes near 2^31, so no chunks. */
BN_AVX512 static __m512i dot_row_lanes_p(const uint8_t *w, const int8_t *qp, size_t k)
{
    const __m512i m0 = _mm512_set1_epi8((char)0xC0), m1 = _mm512_set1_epi8(0x30);
    const __m512i m2 = _mm512_set1_epi8(0x0C), m3 = _mm512_set1_epi8(0x03);
    const size_t n_blocks = k / 128, n_pairs = n_blocks & ~(size_t)1;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t b = 0; b < n_pairs; b += 2) {
        const int8_t *qb = qp + 128 * b;
        _mm_prefetch((const char *)(w + 32 * b + decode_prefetch_bytes), _MM_HINT_T1);
        const __m512i v = _mm512_loadu_si512(w + 32 * b);
        a0 = _mm512_dpbusd_epi32(a0, _mm512_and_si512(v, m0), _mm512_loadu_si512(qb));
        a1 = _mm512_dpbusd_epi32(a1, _mm512_and_si512(v, m1), _mm512_loadu_si512(qb + 64));
        a2 = _mm512_dpbusd_epi32(a2, _mm512_and_si512(v, m2), _mm512_loadu_si512(qb + 128));
        a3 = _mm512_dpbusd_epi32(a3, _mm512_and_si512(v, m3), _mm512_loadu_si512(qb + 192));
    }
    __m512i total = _mm512_add_epi32(
        _mm512_add_epi32(_mm512_srai_epi32(a0, 6), _mm512_srai_epi32(a1, 4)),
        _mm512_add_epi32(_mm512_srai_epi32(a2, 2), a3));
    if (n_pairs < n_blocks)
        total = _mm512_add_epi32(total, block_lanes(w + 32 * n_pairs, qp + 128 * n_pairs));
    return total;
}

/* Sixteen int32 vectors -> one vector of their sixteen lane sums (lane i = sum of x[i]). */
BN_AVX512 static __m512i reduce16(const __m512i x[16])
{
    __m512i y[8], z[4];
    for (int i = 0; i < 8; i++) /* 128-bit lane: [x2i 0+2, x2i+1 0+2, x2i 1+3, x2i+1 1+3] */
        y[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(x[2 * i], x[2 * i + 1]),
                                _mm512_unpackhi_epi32(x[2 * i], x[2 * i + 1]));
    for (int j = 0; j < 4; j++) /* 128-bit lane: partial sums of x4j .. x4j+3 */
        z[j] = _mm512_add_epi32(_mm512_unpacklo_epi64(y[2 * j], y[2 * j + 1]),
                                _mm512_unpackhi_epi64(y[2 * j], y[2 * j + 1]));
    __m512i w0 = _mm512_add_epi32(_mm512_shuffle_i32x4(z[0], z[1], 0x44),
                                  _mm512_shuffle_i32x4(z[0], z[1], 0xEE));
    __m512i w1 = _mm512_add_epi32(_mm512_shuffle_i32x4(z[2], z[3], 0x44),
                                  _mm512_shuffle_i32x4(z[2], z[3], 0xEE));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(w0, w1, 0x88), _mm512_shuffle_i32x4(w0, w1, 0xDD));
}

/* A 4 x 4 tile: four weight rows x four activation rows (qp: permuted, rows k apart); each
 * code vector serves four activation rows. Lane 4a + r of the result = sum(code * q) of weight
 * row r and activation row a: each 128-bit lane holds one activation row's four outputs. */
BN_AVX512 static __m512i dot_4x4(const uint8_t *w0, size_t row_bytes, const int8_t *qp, size_t k)
{
    const __m512i m3 = _mm512_set1_epi8(3);
    const size_t n_blocks = k / 128;
    __m512i acc[16];
    for (int i = 0; i < 16; i++)
        acc[i] = _mm512_setzero_si512();
    size_t b = 0;
    for (; b + 2 <= n_blocks; b += 2)
        for (int f = 0; f < 4; f++) {
            __m512i c[4];
            for (int r = 0; r < 4; r++) {
                __m512i v = _mm512_loadu_si512(w0 + r * row_bytes + 32 * b);
                c[r] = _mm512_and_si512(_mm512_srli_epi16(v, (unsigned)(6 - 2 * f)), m3);
            }
            for (int a = 0; a < 4; a++) {
                const __m512i qv = _mm512_loadu_si512(qp + a * k + 128 * b + 64 * f);
                for (int r = 0; r < 4; r++)
                    acc[4 * a + r] = _mm512_dpbusd_epi32(acc[4 * a + r], c[r], qv);
            }
        }
    if (b < n_blocks) {
        const __m512i sh01 = shifts(6, 4), sh23 = shifts(2, 0);
        for (int r = 0; r < 4; r++) {
            __m512i c01, c23;
            unpack_block(w0 + r * row_bytes + 32 * b, sh01, sh23, &c01, &c23);
            for (int a = 0; a < 4; a++) {
                const int8_t *qb = qp + a * k + 128 * b;
                acc[4 * a + r] = _mm512_dpbusd_epi32(acc[4 * a + r], c01, _mm512_loadu_si512(qb));
                acc[4 * a + r] = _mm512_dpbusd_epi32(acc[4 * a + r], c23,
                                                     _mm512_loadu_si512(qb + 64));
            }
        }
    }
    return reduce16(acc);
}

BN_AVX512 static void avx512_ternary_matmul(const bn_ternary *w, size_t row_begin, size_t row_end,
                                            const int8_t *q, const float *act_scale, size_t n_act,
                                            float *y, size_t ldy)
{
    const size_t k = w->k, row_bytes = k / 4;
    const float beta = w->scale;
    size_t r = 0;
    /* Tiles of four activation rows x four weight rows (dot_4x4), blocked for the caches: up to
     * act_block activation rows are permuted together (heap: act_block * k bytes), and the
     * weight rows go by blocks of about 256 KB, each block serving every group of four of
     * them before the next is read. Looping over all weight rows for each group of four
     * instead streamed the whole matrix n_act / 4 times: from DRAM once a matrix outgrows the
     * last-level cache (Llama3-8B's 14.7 MB ffn matrices: 1 thread prefill at 0.93-0.98x the
     * reference's). Each output is the same dot_4x4 integer and epilogue, in any order: y is
     * unchanged. The integer sums stay far from 2^31 (an int32 lane adds k/64 steps of four
     * products below 3 * 128). If the buffer cannot be had, every row takes the one-at-a-time
     * path below, with the same result. */
    enum {
        act_block = 64,
        weight_block_bytes = 256 * 1024
    };
    const size_t n_tiled = n_act / 4 * 4;
    int8_t *qp = n_tiled ? malloc((n_tiled < act_block ? n_tiled : act_block) * k) : NULL;
    const size_t wb = row_bytes * 4 >= weight_block_bytes ? 4
                                                          : weight_block_bytes / row_bytes / 4 * 4;
    const size_t i_end4 = row_begin + (row_end - row_begin) / 4 * 4;
    const __m512 betav = _mm512_set1_ps(beta);
    int32_t sq_tile[act_block];
    for (size_t r0 = 0; qp && r0 < n_tiled; r0 += act_block) {
        const size_t nb = n_tiled - r0 < act_block ? n_tiled - r0 : act_block;
        for (size_t a = 0; a < nb; a++) {
            sq_tile[a] = sum_q(q + (r0 + a) * k, k);
            permute_q(q + (r0 + a) * k, k, qp + a * k);
        }
        for (size_t i0 = row_begin; i0 < i_end4; i0 += wb) {
            const size_t i1 = i_end4 - i0 < wb ? i_end4 : i0 + wb;
            for (size_t g = 0; g < nb; g += 4) {
                /* the epilogue sixteen lanes at a time (lane 4a + t: activation g + a, weight
                 * row i + t), the scalar's ((float)T / s) * beta in the same IEEE operations */
                const int32_t *s4 = sq_tile + g;
                const __m512i sqv = _mm512_setr_epi32(s4[0], s4[0], s4[0], s4[0], s4[1], s4[1],
                                                      s4[1], s4[1], s4[2], s4[2], s4[2], s4[2],
                                                      s4[3], s4[3], s4[3], s4[3]);
                const float *sc = act_scale + r0 + g;
                const __m512 scv = _mm512_setr_ps(sc[0], sc[0], sc[0], sc[0], sc[1], sc[1], sc[1],
                                                  sc[1], sc[2], sc[2], sc[2], sc[2], sc[3], sc[3],
                                                  sc[3], sc[3]);
                float *yg = y + (r0 + g) * ldy;
                for (size_t i = i0; i < i1; i += 4) {
                    const __m512i d = _mm512_sub_epi32(
                        dot_4x4(w->packed + i * row_bytes, row_bytes, qp + g * k, k), sqv);
                    const __m512 v = _mm512_mul_ps(_mm512_div_ps(_mm512_cvtepi32_ps(d), scv),
                                                   betav);
                    _mm_storeu_ps(yg + 0 * ldy + i, _mm512_extractf32x4_ps(v, 0));
                    _mm_storeu_ps(yg + 1 * ldy + i, _mm512_extractf32x4_ps(v, 1));
                    _mm_storeu_ps(yg + 2 * ldy + i, _mm512_extractf32x4_ps(v, 2));
                    _mm_storeu_ps(yg + 3 * ldy + i, _mm512_extractf32x4_ps(v, 3));
                }
            }
        }
        for (size_t i = i_end4; i < row_end; i++) /* the last one to three weight rows */
            for (size_t a = 0; a < nb; a++)
                y[(r0 + a) * ldy + i] = ((float)(dot_row_masked(w->packed + i * row_bytes,
                                                                q + (r0 + a) * k, k) -
                                                 sq_tile[a]) /
                                         act_scale[r0 + a]) *
                                        beta;
        r = r0 + nb;
    }
    free(qp);
    int8_t qp_row[decode_perm_max_k]; /* one permuted activation row for the decode loop */
    /* leftover activation rows (all of them when decoding): still one weight row after the
     * other, but sixteen rows' lanes are summed together (reduce16) and their epilogue runs
     * as one vector. Per row, a horizontal sum, a conversion and a division in a chain cost
     * ~19% of the decode time in a profile (perf, 2B-4T); the vector ops round exactly as the
     * scalar ones, so y is unchanged. */
    for (; r < n_act; r++) {
        const int8_t *qr = q + r * k;
        const int32_t sq = sum_q(qr, k);
        const float s = act_scale[r];
        /* the activation permuted once (k bytes) so that each weight row is one plain load per
         * two blocks (dot_row_lanes_p); rows longer than the stack buffer keep q's order */
        const int permuted = k <= decode_perm_max_k;
        if (permuted)
            permute_q(qr, k, qp_row);
        size_t i = row_begin;
        for (; i + 16 <= row_end; i += 16) {
            __m512i lanes[16];
            for (int t = 0; t < 16; t++)
                lanes[t] = permuted ? dot_row_lanes_p(w->packed + (i + t) * row_bytes, qp_row, k)
                                    : dot_row_lanes(w->packed + (i + t) * row_bytes, qr, k);
            const __m512i d = _mm512_sub_epi32(reduce16(lanes), _mm512_set1_epi32(sq));
            const __m512 v = _mm512_mul_ps(_mm512_div_ps(_mm512_cvtepi32_ps(d), _mm512_set1_ps(s)),
                                           _mm512_set1_ps(beta));
            _mm512_storeu_ps(y + r * ldy + i, v);
        }
        for (; i < row_end; i++)
            y[r * ldy + i] = ((float)(dot_row_masked(w->packed + i * row_bytes, qr, k) - sq) / s) *
                             beta;
    }
}

/* ---------------------------------------------------------------- f16 dot products */

/* The scalar twin's order: 64 float accumulators acc[l] (zmm g holds acc[16g + lane]) over
 * steps of 64; v[l] = (acc[l] + acc[32+l]) + (acc[16+l] + acc[48+l]); lanes folded l+8, l+4,
 * l+2, l+1; tail in double. Products of halves are exact in float, so fma == mul + add. */
BN_AVX512 static float reduce64(__m512 a0, __m512 a1, __m512 a2, __m512 a3)
{
    return bn_x86_tree1(bn_x86_fold4(a0, a1, a2, a3));
}

BN_AVX512 static __m512 load_f16(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

BN_AVX512 static float tail_f16(const uint16_t *a, const uint16_t *b, size_t np, size_t n,
                                double sum)
{
    for (size_t i = np; i < n; i++) {
        float x = _cvtsh_ss(a[i]), z = _cvtsh_ss(b[i]);
        sum += (double)(x * z);
    }
    return (float)sum;
}

BN_AVX512 static float avx512_dot_f16(const uint16_t *a, const uint16_t *b, size_t n)
{
    const size_t np = n & ~(size_t)63;
    double sum = 0.0;
    if (np) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t i = 0; i < np; i += 64) {
            a0 = _mm512_fmadd_ps(load_f16(a + i), load_f16(b + i), a0);
            a1 = _mm512_fmadd_ps(load_f16(a + i + 16), load_f16(b + i + 16), a1);
            a2 = _mm512_fmadd_ps(load_f16(a + i + 32), load_f16(b + i + 32), a2);
            a3 = _mm512_fmadd_ps(load_f16(a + i + 48), load_f16(b + i + 48), a3);
        }
        sum = reduce64(a0, a1, a2, a3);
    }
    return tail_f16(a, b, np, n, sum);
}

/* LM head: rows streamed one after the other (full memory bandwidth, as for the ternary
 * decode), each summed exactly as avx512_dot_f16 does. x is converted to float once per call
 * when k <= 4096 (the 2B-4T head has 2560; longer rows convert as they go). No software
 * prefetch: the former T0 prefetch one row ahead halved the rate on a Zen 4 EPYC (standalone
 * loop, 2560-wide f16 rows from DRAM, alternated: T0 one row ahead 11 GB/s, none 22-24.5, T1
 * 8 KB ahead 21-24, the AVX2 kernel 23-26; bench-kernels lm_head_f16 44-49 ms before). */
BN_AVX512 static void avx512_matvec_f16(const uint16_t *w, size_t k, size_t row_begin,
                                        size_t row_end, const uint16_t *x, float *y)
{
    enum {
        piece = 4096
    };
    const size_t np = k & ~(size_t)63;
    if (np == 0 || np > piece) {
        for (size_t i = row_begin; i < row_end; i++)
            y[i] = avx512_dot_f16(w + i * k, x, k);
        return;
    }
    float xf[piece];
    for (size_t j = 0; j < np; j += 16)
        _mm512_storeu_ps(xf + j, load_f16(x + j));
    for (size_t i = row_begin; i < row_end; i++) {
        const uint16_t *r = w + i * k;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t j = 0; j < np; j += 64) {
            a0 = _mm512_fmadd_ps(load_f16(r + j), _mm512_loadu_ps(xf + j), a0);
            a1 = _mm512_fmadd_ps(load_f16(r + j + 16), _mm512_loadu_ps(xf + j + 16), a1);
            a2 = _mm512_fmadd_ps(load_f16(r + j + 32), _mm512_loadu_ps(xf + j + 32), a2);
            a3 = _mm512_fmadd_ps(load_f16(r + j + 48), _mm512_loadu_ps(xf + j + 48), a3);
        }
        y[i] = tail_f16(r, x, np, k, reduce64(a0, a1, a2, a3));
    }
}

const bn_kernels bn_kernels_avx512vnni = {
    .name = "avx512vnni",
    .row_block = 4,
    .quantize_row = bn_x86_avx2_quantize_row,
    .ternary_matmul = avx512_ternary_matmul,
    .prepare = NULL,
    .release = NULL,
    .dot_f16 = avx512_dot_f16,
    .dot_f16_rows = bn_x86_avx512_dot_f16_rows,
    .matvec_f16 = avx512_matvec_f16,
    .softmax = bn_x86_avx512_softmax,
    .silu_mul = bn_x86_fma_silu_mul,
    .f32_to_f16_row = bn_x86_f16c_f32_to_f16_row,
    .f16_to_f32_row = bn_x86_f16c_f16_to_f32_row,
    .matvec_i8 = bn_x86_avx512_matvec_i8,
    .matvec_i8x2 = bn_x86_avx512_matvec_i8x2,
    .matvec_u6 = bn_x86_avx512_matvec_u6,
};

const bn_kernel_path bn_path_avx512vnni = {&bn_kernels_avx512vnni, bn_x86_has_avx512vnni, 0};
