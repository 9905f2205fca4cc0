/* Path "neon": ternary matmul for any Armv8.0 core (no dotprod: Cortex-A53/A72, Graviton1).
 *
 * Layout read in place (kernels.h): a 128-weight block is 32 bytes, byte j holds the codes of
 * weights j (bits 7..6), 32+j (5..4), 64+j (3..2) and 96+j (1..0). Loading the block as two
 * 16-byte vectors v (bytes 0..15) and u (bytes 16..31), field f of v covers weights
 * 32f + 0..15 and of u weights 32f + 16..31, so each extracted field meets 16 consecutive
 * activations:
 *
 *   v = [b0 .. b15]   field 0 = v >> 6        -> x[0..15]     u >> 6        -> x[16..31]
 *   u = [b16.. b31]   field 1 = (v >> 4) & 3  -> x[32..47]    (u >> 4) & 3  -> x[48..63]
 *                     field 2 = (v >> 2) & 3  -> x[64..79]    ...           -> x[80..95]
 *                     field 3 = v & 3         -> x[96..111]   ...           -> x[112..127]
 *
 * Products code*x (|.| <= 3*128) are formed with SMULL/SMLAL into int16 lanes; each int16 lane
 * takes 8 products per block (<= 3072, far from overflow even for all-(-128) activations and
 * the unused code 3) before SADALP folds it into int32. Four rows share each activation load. */
#include "neon_common.h"
#include "kernels_registry.h"

static int16x8_t mla16(int16x8_t p, uint8x16_t c, int8x16_t x)
{
    int8x16_t s = vreinterpretq_s8_u8(c);
    p = vmlal_s8(p, vget_low_s8(s), vget_low_s8(x));
    return vmlal_high_s8(p, s, x);
}

static void rows4_v80(const uint8_t *const w[4], const int8_t *x, size_t k, int32_t out[4])
{
    const uint8x16_t m3 = vdupq_n_u8(3);
    int32x4_t acc[4];
    for (int r = 0; r < 4; r++)
        acc[r] = vdupq_n_s32(0);
    for (size_t b = 0; b < k / 128; b++) {
        const int8_t *xb = x + 128 * b;
        int8x16_t x0a = vld1q_s8(xb), x0b = vld1q_s8(xb + 16);
        int8x16_t x1a = vld1q_s8(xb + 32), x1b = vld1q_s8(xb + 48);
        int8x16_t x2a = vld1q_s8(xb + 64), x2b = vld1q_s8(xb + 80);
        int8x16_t x3a = vld1q_s8(xb + 96), x3b = vld1q_s8(xb + 112);
        for (int r = 0; r < 4; r++) {
            uint8x16_t v = vld1q_u8(w[r] + 32 * b), u = vld1q_u8(w[r] + 32 * b + 16);
            int16x8_t p = vdupq_n_s16(0), s = vdupq_n_s16(0);
            p = mla16(p, vshrq_n_u8(v, 6), x0a);
            p = mla16(p, vshrq_n_u8(u, 6), x0b);
            p = mla16(p, vandq_u8(vshrq_n_u8(v, 4), m3), x1a);
            p = mla16(p, vandq_u8(vshrq_n_u8(u, 4), m3), x1b);
            s = mla16(s, vandq_u8(vshrq_n_u8(v, 2), m3), x2a);
            s = mla16(s, vandq_u8(vshrq_n_u8(u, 2), m3), x2b);
            s = mla16(s, vandq_u8(v, m3), x3a);
            s = mla16(s, vandq_u8(u, m3), x3b);
            acc[r] = vpadalq_s16(vpadalq_s16(acc[r], p), s);
        }
    }
    for (int r = 0; r < 4; r++)
        out[r] = vaddvq_s32(acc[r]);
}

static void v80_matmul(const bn_ternary *w, size_t row_begin, size_t row_end, const int8_t *q,
                       const float *act_scale, size_t n_act, float *y, size_t ldy)
{
    bn_neon_matmul_rows4(w, row_begin, row_end, q, act_scale, n_act, y, ldy, rows4_v80);
}

static const bn_kernels kernels_neon = {
    .name = "neon",
    .row_block = 4,
    .quantize_row = bn_neon_quantize_row,
    .ternary_matmul = v80_matmul,
    .prepare = NULL,
    .release = NULL,
    .dot_f16 = bn_neon_dot_f16,
    .dot_f16_rows = bn_neon_dot_f16_rows,
    .matvec_f16 = bn_neon_matvec_f16,
    .matvec_i8 = bn_neon_matvec_i8,
    .f16_to_f32_row = bn_neon_f16_to_f32_row,
};

static int neon_supported(void) { return 1; /* Advanced SIMD is mandatory in AArch64 Linux */ }

const bn_kernel_path bn_path_neon = {&kernels_neon, neon_supported, 0};
