/* Path "neon-i8mm": prefill with SMMLA (Armv8.6 i8mm: Graviton3/4), decode with SDOT.
 *
 * SMMLA multiplies a 2x8 int8 block by the transpose of another: acc(2x2 int32) += A * B^T,
 * 32 multiply-adds per instruction against SDOT's 16. A = two activation rows, B = two weight
 * rows, over the same 8 inputs:
 *
 *   A = [ q_r0[g*8 .. g*8+7] | q_r1[g*8 .. g*8+7] ]      (activations, interleaved once per
 *   B = [ c_i [g*8 .. g*8+7] | c_i1[g*8 .. g*8+7] ]       call into a heap buffer)
 *   acc lanes = [ r0.i, r0.i1, r1.i, r1.i1 ]
 *
 * B comes from the file layout with no repacking: the 16-byte halves of rows i and i1 are
 * interleaved by 64-bit halves (ZIP1/ZIP2 .2d) first, then the four 2-bit fields are extracted
 * (USHR/AND) from the interleaved vectors, so one zip serves four fields. One weight row pair
 * meets four activation pairs (8 rows) per pass, which amortises the unpacking.
 * Decode (one activation row) and short prefills go to the SDOT kernel, where SMMLA would
 * waste half its products or the unpacking would dominate. */
#include <stdlib.h>

#include "neon_common.h"
#include "kernels_registry.h"

#if BN_NEON_HAVE_TARGET_ATTR

enum {
    I8MM_MIN_ACT = 4, /* fewer activation rows: SDOT (measured, see README "NEON kernels") */
    PAIRS = 4,        /* activation pairs per pass */
};

/* acc[p] += activation pair p times weight rows (wi, wi1), over all k. */
BN_TARGET_I8MM
static void i8mm_tile(const uint8_t *wi, const uint8_t *wi1, const int8_t *abuf, size_t k,
                      int32x4_t acc[PAIRS])
{
    const uint8x16_t m3 = vdupq_n_u8(3);
    const size_t groups = k / 8; /* stride of one activation pair in abuf, in 16-byte units */
    for (size_t b = 0; b < k / 128; b++)
        for (int h = 0; h < 2; h++) {
            uint8x16_t v = vld1q_u8(wi + 32 * b + 16 * h), V = vld1q_u8(wi1 + 32 * b + 16 * h);
            uint64x2_t v64 = vreinterpretq_u64_u8(v), V64 = vreinterpretq_u64_u8(V);
            uint8x16_t lo = vreinterpretq_u8_u64(vzip1q_u64(v64, V64)); /* inputs +0..7 */
            uint8x16_t hi = vreinterpretq_u8_u64(vzip2q_u64(v64, V64)); /* inputs +8..15 */
            for (int f = 0; f < 4; f++) {
                uint8x16_t cl, ch;
                switch (f) {
                case 0:
                    cl = vshrq_n_u8(lo, 6);
                    ch = vshrq_n_u8(hi, 6);
                    break;
                case 1:
                    cl = vandq_u8(vshrq_n_u8(lo, 4), m3);
                    ch = vandq_u8(vshrq_n_u8(hi, 4), m3);
                    break;
                case 2:
                    cl = vandq_u8(vshrq_n_u8(lo, 2), m3);
                    ch = vandq_u8(vshrq_n_u8(hi, 2), m3);
                    break;
                default:
                    cl = vandq_u8(lo, m3);
                    ch = vandq_u8(hi, m3);
                    break;
                }
                /* 8-input group of these codes: block b, field f, half h */
                const size_t g = 16 * b + 4 * f + 2 * h;
                const int8_t *a = abuf + 16 * g;
                for (int p = 0; p < PAIRS; p++) {
                    acc[p] = vmmlaq_s32(acc[p], vld1q_s8(a + 16 * groups * p),
                                        vreinterpretq_s8_u8(cl));
                    acc[p] = vmmlaq_s32(acc[p], vld1q_s8(a + 16 * groups * p + 16),
                                        vreinterpretq_s8_u8(ch));
                }
            }
        }
}

/* Two activation rows into the A layout above. */
static void interleave_pair(const int8_t *q0, const int8_t *q1, size_t k, int8_t *dst)
{
    for (size_t g = 0; g < k / 8; g++) {
        vst1_s8(dst + 16 * g, vld1_s8(q0 + 8 * g));
        vst1_s8(dst + 16 * g + 8, vld1_s8(q1 + 8 * g));
    }
}

/* One pass of up to 8 activation rows from r0 (a missing row repeats the last one, its results
 * dropped, so that every pass is a full tile): their sums and their interleaved pairs. */
static void prepare_tile(const int8_t *q, size_t k, size_t r0, size_t n_act, int8_t *abuf,
                         int32_t asum[2 * PAIRS])
{
    size_t rows[2 * PAIRS];
    for (size_t j = 0; j < 2 * PAIRS; j++) {
        rows[j] = r0 + j < n_act ? r0 + j : n_act - 1;
        asum[j] = bn_neon_sum_s8(q + rows[j] * k, k);
    }
    for (size_t p = 0; p < PAIRS; p++)
        interleave_pair(q + rows[2 * p] * k, q + rows[2 * p + 1] * k, k, abuf + p * 2 * k);
}

/* Tiles of 8 activation rows x 2 weight rows, blocked for the caches as the AVX-512 prefill
 * is (kernels/x86/avx512.c): up to act_block activation rows are interleaved together (heap:
 * act_block * k bytes), and the weight rows go by blocks of about 256 KB, each block serving
 * every tile before the next is read, instead of the whole matrix streamed once per 8
 * activation rows. Every output is the same tile integer and epilogue in any order: y is
 * unchanged. Without the buffer, the SDOT kernel computes the same sums. */
static void i8mm_matmul(const bn_ternary *w, size_t row_begin, size_t row_end, const int8_t *q,
                        const float *act_scale, size_t n_act, float *y, size_t ldy)
{
    enum {
        act_block = 64, /* a multiple of the tile's 8 rows */
        weight_block_bytes = 256 * 1024
    };
    const size_t k = w->k, rs = k / 4;
    const size_t n_first = n_act < act_block ? (n_act + 2 * PAIRS - 1) / (2 * PAIRS) * 2 * PAIRS
                                             : act_block;
    int8_t *abuf = n_act < I8MM_MIN_ACT ? NULL : malloc(n_first * k);
    if (!abuf) {
        bn_neon_dotprod_matmul(w, row_begin, row_end, q, act_scale, n_act, y, ldy);
        return;
    }
    const size_t wb = rs * 2 >= weight_block_bytes ? 2 : weight_block_bytes / rs / 2 * 2;
    int32_t asum[act_block];
    for (size_t r0 = 0; r0 < n_act; r0 += act_block) {
        const size_t nb = n_act - r0 < act_block ? n_act - r0 : act_block;
        for (size_t t = 0; t < nb; t += 2 * PAIRS)
            prepare_tile(q, k, r0 + t, n_act, abuf + t * k, asum + t);
        for (size_t i0 = row_begin; i0 < row_end; i0 += wb) {
            const size_t i_end = row_end - i0 < wb ? row_end : i0 + wb;
            for (size_t t = 0; t < nb; t += 2 * PAIRS)
                for (size_t i = i0; i < i_end; i += 2) {
                    const size_t i1 = i + 1 < i_end ? i + 1 : i;
                    int32x4_t acc[PAIRS];
                    for (int p = 0; p < PAIRS; p++)
                        acc[p] = vdupq_n_s32(0);
                    i8mm_tile(w->packed + i * rs, w->packed + i1 * rs, abuf + t * k, k, acc);
                    for (size_t p = 0; p < PAIRS; p++) {
                        int32_t c[4];
                        vst1q_s32(c, acc[p]);
                        for (size_t a = 0; a < 2; a++) {
                            const size_t j = t + 2 * p + a, r = r0 + j;
                            if (r >= n_act)
                                continue;
                            y[r * ldy + i] = bn_neon_epilogue(c[2 * a] - asum[j], act_scale[r],
                                                              w->scale);
                            if (i1 != i)
                                y[r * ldy + i1] = bn_neon_epilogue(c[2 * a + 1] - asum[j],
                                                                   act_scale[r], w->scale);
                        }
                    }
                }
        }
    }
    free(abuf);
}

static const bn_kernels kernels_i8mm = {
    .name = "neon-i8mm",
    .row_block = 4, /* the SDOT fallback works in 4-row groups; SMMLA in 2 */
    .quantize_row = bn_neon_quantize_row,
    .ternary_matmul = i8mm_matmul,
    .prepare = NULL,
    .release = NULL,
    .dot_f16 = bn_neon_dot_f16,
    .dot_f16_rows = bn_neon_dot_f16_rows,
    .matvec_f16 = bn_neon_matvec_f16,
    .matvec_i8 = bn_neon_dotprod_matvec_i8,
    .f16_to_f32_row = bn_neon_f16_to_f32_row,
};

static int i8mm_supported(void) { return bn_neon_has_dotprod() && bn_neon_has_i8mm(); }

const bn_kernel_path bn_path_neon_i8mm = {&kernels_i8mm, i8mm_supported, 0};

#endif
