/* Path "neon-dotprod": ternary matmul with SDOT (Armv8.2 dotprod: Graviton2 and later).
 *
 * Same in-place layout and field split as neon_v80.c (v = bytes 0..15, u = bytes 16..31 of a
 * 128-weight block). The fields are extracted with ONE instruction each by keeping them at
 * their bit position and giving each position its own accumulator:
 *
 *   v >> 6      = c        (USHR)  -> acc1      SDOT sums 4 products per int32 lane; the
 *   v & 0x30    = 16*c     (AND)   -> acc16     scaled accumulators hold exact multiples of
 *   v & 0x0C    = 4*c      (AND)   -> acc4      16 and 4, so C = acc1 + acc4/4 + acc16/16
 *   v & 0x03    = c        (AND)   -> acc1      with arithmetic shifts is exact.
 *
 * (0xC0 cannot be masked the same way: 2*64 = 128 is not an int8.) That is 4 extraction ops +
 * 4 SDOT per 64 weights. Four rows share each activation load. Bounds: |16*c*x| <= 6144
 * (code 3 included), 8 products per lane per block, so int32 holds K up to ~5e6. */
#include "neon_common.h"
#include "kernels_registry.h"

#if BN_NEON_HAVE_TARGET_ATTR

BN_TARGET_DOTPROD
static void rows4_dotprod(const uint8_t *const w[4], const int8_t *x, size_t k, int32_t out[4])
{
    const uint8x16_t m03 = vdupq_n_u8(0x03), m0c = vdupq_n_u8(0x0c), m30 = vdupq_n_u8(0x30);
    int32x4_t a1[4], a4[4], a16[4];
    for (int r = 0; r < 4; r++)
        a1[r] = a4[r] = a16[r] = vdupq_n_s32(0);
    for (size_t b = 0; b < k / 128; b++) {
        const int8_t *xb = x + 128 * b;
        int8x16_t x0a = vld1q_s8(xb), x0b = vld1q_s8(xb + 16);
        int8x16_t x1a = vld1q_s8(xb + 32), x1b = vld1q_s8(xb + 48);
        int8x16_t x2a = vld1q_s8(xb + 64), x2b = vld1q_s8(xb + 80);
        int8x16_t x3a = vld1q_s8(xb + 96), x3b = vld1q_s8(xb + 112);
        for (int r = 0; r < 4; r++) {
            uint8x16_t v = vld1q_u8(w[r] + 32 * b), u = vld1q_u8(w[r] + 32 * b + 16);
            a1[r] = vdotq_s32(a1[r], vreinterpretq_s8_u8(vshrq_n_u8(v, 6)), x0a);
            a1[r] = vdotq_s32(a1[r], vreinterpretq_s8_u8(vshrq_n_u8(u, 6)), x0b);
            a16[r] = vdotq_s32(a16[r], vreinterpretq_s8_u8(vandq_u8(v, m30)), x1a);
            a16[r] = vdotq_s32(a16[r], vreinterpretq_s8_u8(vandq_u8(u, m30)), x1b);
            a4[r] = vdotq_s32(a4[r], vreinterpretq_s8_u8(vandq_u8(v, m0c)), x2a);
            a4[r] = vdotq_s32(a4[r], vreinterpretq_s8_u8(vandq_u8(u, m0c)), x2b);
            a1[r] = vdotq_s32(a1[r], vreinterpretq_s8_u8(vandq_u8(v, m03)), x3a);
            a1[r] = vdotq_s32(a1[r], vreinterpretq_s8_u8(vandq_u8(u, m03)), x3b);
        }
    }
    int32x4_t s[4];
    for (int r = 0; r < 4; r++)
        s[r] = vaddq_s32(a1[r], vaddq_s32(vshrq_n_s32(a4[r], 2), vshrq_n_s32(a16[r], 4)));
    vst1q_s32(out, vpaddq_s32(vpaddq_s32(s[0], s[1]), vpaddq_s32(s[2], s[3])));
}

static void dotprod_matmul(const bn_ternary *w, size_t row_begin, size_t row_end,
                           const int8_t *q, const float *act_scale, size_t n_act, float *y,
                           size_t ldy)
{
    bn_neon_matmul_rows4(w, row_begin, row_end, q, act_scale, n_act, y, ldy, rows4_dotprod);
}

static const bn_kernels kernels_dotprod = {
    .name = "neon-dotprod",
    .row_block = 4,
    .quantize_row = bn_neon_quantize_row,
    .ternary_matmul = dotprod_matmul,
    .prepare = NULL,
    .release = NULL,
    .dot_f16 = bn_neon_dot_f16,
    .matvec_f16 = bn_neon_matvec_f16,
};

const bn_kernel_path bn_path_neon_dotprod = {&kernels_dotprod, bn_neon_has_dotprod, 0};

#endif
