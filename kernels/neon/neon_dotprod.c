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
 * 4 SDOT per 64 weights. Bounds: |16*c*x| <= 6144
 * (code 3 included), 8 products per lane per block, so int32 holds K up to ~5e6. */
#include "neon_common.h"
#include "kernels_registry.h"

#if BN_NEON_HAVE_TARGET_ATTR

/* Two rows per pass: 6 accumulators + 8 activation registers + 3 masks leave gcc enough
 * registers; with four rows it spills. The activation loads it repeats go to the load pipes,
 * which have room (10 loads per 32 vector ops). */
BN_TARGET_DOTPROD
static void rows2_dotprod(const uint8_t *w0, const uint8_t *w1, const int8_t *x, size_t k,
                          int32_t out[2])
{
    const uint8x16_t m03 = vdupq_n_u8(0x03), m0c = vdupq_n_u8(0x0c), m30 = vdupq_n_u8(0x30);
    int32x4_t a1 = vdupq_n_s32(0), a4 = a1, a16 = a1, b1 = a1, b4 = a1, b16 = a1;
    for (size_t b = 0; b < k / 128; b++) {
        const int8_t *xb = x + 128 * b;
        uint8x16_t v = vld1q_u8(w0 + 32 * b), u = vld1q_u8(w0 + 32 * b + 16);
        uint8x16_t V = vld1q_u8(w1 + 32 * b), U = vld1q_u8(w1 + 32 * b + 16);
        int8x16_t xa = vld1q_s8(xb), xc = vld1q_s8(xb + 16);
        a1 = vdotq_s32(a1, vreinterpretq_s8_u8(vshrq_n_u8(v, 6)), xa);
        b1 = vdotq_s32(b1, vreinterpretq_s8_u8(vshrq_n_u8(V, 6)), xa);
        a1 = vdotq_s32(a1, vreinterpretq_s8_u8(vshrq_n_u8(u, 6)), xc);
        b1 = vdotq_s32(b1, vreinterpretq_s8_u8(vshrq_n_u8(U, 6)), xc);
        xa = vld1q_s8(xb + 32), xc = vld1q_s8(xb + 48);
        a16 = vdotq_s32(a16, vreinterpretq_s8_u8(vandq_u8(v, m30)), xa);
        b16 = vdotq_s32(b16, vreinterpretq_s8_u8(vandq_u8(V, m30)), xa);
        a16 = vdotq_s32(a16, vreinterpretq_s8_u8(vandq_u8(u, m30)), xc);
        b16 = vdotq_s32(b16, vreinterpretq_s8_u8(vandq_u8(U, m30)), xc);
        xa = vld1q_s8(xb + 64), xc = vld1q_s8(xb + 80);
        a4 = vdotq_s32(a4, vreinterpretq_s8_u8(vandq_u8(v, m0c)), xa);
        b4 = vdotq_s32(b4, vreinterpretq_s8_u8(vandq_u8(V, m0c)), xa);
        a4 = vdotq_s32(a4, vreinterpretq_s8_u8(vandq_u8(u, m0c)), xc);
        b4 = vdotq_s32(b4, vreinterpretq_s8_u8(vandq_u8(U, m0c)), xc);
        xa = vld1q_s8(xb + 96), xc = vld1q_s8(xb + 112);
        a1 = vdotq_s32(a1, vreinterpretq_s8_u8(vandq_u8(v, m03)), xa);
        b1 = vdotq_s32(b1, vreinterpretq_s8_u8(vandq_u8(V, m03)), xa);
        a1 = vdotq_s32(a1, vreinterpretq_s8_u8(vandq_u8(u, m03)), xc);
        b1 = vdotq_s32(b1, vreinterpretq_s8_u8(vandq_u8(U, m03)), xc);
    }
    int32x4_t s0 = vaddq_s32(a1, vaddq_s32(vshrq_n_s32(a4, 2), vshrq_n_s32(a16, 4)));
    int32x4_t s1 = vaddq_s32(b1, vaddq_s32(vshrq_n_s32(b4, 2), vshrq_n_s32(b16, 4)));
    out[0] = vaddvq_s32(s0);
    out[1] = vaddvq_s32(s1);
}

BN_TARGET_DOTPROD
static void rows4_dotprod(const uint8_t *const w[4], const int8_t *x, size_t k, int32_t out[4])
{
    rows2_dotprod(w[0], w[1], x, k, out);
    rows2_dotprod(w[2], w[3], x, k, out + 2);
}

void bn_neon_dotprod_matmul(const bn_ternary *w, size_t row_begin, size_t row_end,
                           const int8_t *q, const float *act_scale, size_t n_act, float *y,
                           size_t ldy)
{
    bn_neon_matmul_rows4(w, row_begin, row_end, q, act_scale, n_act, y, ldy, rows4_dotprod);
}

static const bn_kernels kernels_dotprod = {
    .name = "neon-dotprod",
    .row_block = 4,
    .quantize_row = bn_neon_quantize_row,
    .ternary_matmul = bn_neon_dotprod_matmul,
    .prepare = NULL,
    .release = NULL,
    .dot_f16 = bn_neon_dot_f16,
    .matvec_f16 = bn_neon_matvec_f16,
};

const bn_kernel_path bn_path_neon_dotprod = {&kernels_dotprod, bn_neon_has_dotprod, 0};

#endif
