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

/* Prefill: one weight row against four activation rows, so that each unpacked field feeds
 * four SDOTs (4 unpack ops per 16 SDOTs instead of 4 per 4). One field of one half: */
BN_TARGET_DOTPROD
static inline void field_x4(int32x4_t *a, int32x4_t *b, int32x4_t *c, int32x4_t *d,
                            uint8x16_t codes, const int8_t *const x[4], size_t at)
{
    int8x16_t s = vreinterpretq_s8_u8(codes);
    *a = vdotq_s32(*a, s, vld1q_s8(x[0] + at));
    *b = vdotq_s32(*b, s, vld1q_s8(x[1] + at));
    *c = vdotq_s32(*c, s, vld1q_s8(x[2] + at));
    *d = vdotq_s32(*d, s, vld1q_s8(x[3] + at));
}

/* out[j] = C of weight row w against activation row x[j]. Named accumulators (12) so that gcc
 * keeps them in registers. */
BN_TARGET_DOTPROD
static void row1_x4_dotprod(const uint8_t *w, const int8_t *const x[4], size_t k, int32_t out[4])
{
    const uint8x16_t m03 = vdupq_n_u8(0x03), m0c = vdupq_n_u8(0x0c), m30 = vdupq_n_u8(0x30);
    int32x4_t a1 = vdupq_n_s32(0), a4 = a1, a16 = a1, b1 = a1, b4 = a1, b16 = a1;
    int32x4_t c1 = a1, c4 = a1, c16 = a1, d1 = a1, d4 = a1, d16 = a1;
    for (size_t blk = 0; blk < k / 128; blk++) {
        const size_t o = 128 * blk;
        uint8x16_t v = vld1q_u8(w + 32 * blk), u = vld1q_u8(w + 32 * blk + 16);
        field_x4(&a1, &b1, &c1, &d1, vshrq_n_u8(v, 6), x, o);
        field_x4(&a1, &b1, &c1, &d1, vshrq_n_u8(u, 6), x, o + 16);
        field_x4(&a16, &b16, &c16, &d16, vandq_u8(v, m30), x, o + 32);
        field_x4(&a16, &b16, &c16, &d16, vandq_u8(u, m30), x, o + 48);
        field_x4(&a4, &b4, &c4, &d4, vandq_u8(v, m0c), x, o + 64);
        field_x4(&a4, &b4, &c4, &d4, vandq_u8(u, m0c), x, o + 80);
        field_x4(&a1, &b1, &c1, &d1, vandq_u8(v, m03), x, o + 96);
        field_x4(&a1, &b1, &c1, &d1, vandq_u8(u, m03), x, o + 112);
    }
    int32x4_t s0 = vaddq_s32(a1, vaddq_s32(vshrq_n_s32(a4, 2), vshrq_n_s32(a16, 4)));
    int32x4_t s1 = vaddq_s32(b1, vaddq_s32(vshrq_n_s32(b4, 2), vshrq_n_s32(b16, 4)));
    int32x4_t s2 = vaddq_s32(c1, vaddq_s32(vshrq_n_s32(c4, 2), vshrq_n_s32(c16, 4)));
    int32x4_t s3 = vaddq_s32(d1, vaddq_s32(vshrq_n_s32(d4, 2), vshrq_n_s32(d16, 4)));
    vst1q_s32(out, vpaddq_s32(vpaddq_s32(s0, s1), vpaddq_s32(s2, s3)));
}

/* Activation rows in groups of four (prefill), the rest one at a time (decode). */
void bn_neon_dotprod_matmul(const bn_ternary *w, size_t row_begin, size_t row_end, const int8_t *q,
                            const float *act_scale, size_t n_act, float *y, size_t ldy)
{
    const size_t k = w->k, rs = k / 4, n4 = n_act / 4 * 4;
    for (size_t r = 0; r < n4; r += 4) {
        const int8_t *x[4] = {q + r * k, q + (r + 1) * k, q + (r + 2) * k, q + (r + 3) * k};
        int32_t asum[4];
        for (int j = 0; j < 4; j++)
            asum[j] = bn_neon_sum_s8(x[j], k);
        for (size_t i = row_begin; i < row_end; i++) {
            int32_t c[4];
            row1_x4_dotprod(w->packed + i * rs, x, k, c);
            for (size_t j = 0; j < 4; j++)
                y[(r + j) * ldy + i] = bn_neon_epilogue(c[j] - asum[j], act_scale[r + j], w->scale);
        }
    }
    if (n4 < n_act)
        bn_neon_matmul_rows4(w, row_begin, row_end, q + n4 * k, act_scale + n4, n_act - n4,
                             y + n4 * ldy, ldy, rows4_dotprod);
}

static const bn_kernels kernels_dotprod = {
    .name = "neon-dotprod",
    .row_block = 4,
    .quantize_row = bn_neon_quantize_row,
    .ternary_matmul = bn_neon_dotprod_matmul,
    .prepare = NULL,
    .release = NULL,
    .dot_f16 = bn_neon_dot_f16,
    .dot_f16_rows = bn_neon_dot_f16_rows,
    .matvec_f16 = bn_neon_matvec_f16,
    .matvec_i8 = bn_neon_dotprod_matvec_i8,
    .f16_to_f32_row = bn_neon_f16_to_f32_row,
};

const bn_kernel_path bn_path_neon_dotprod = {&kernels_dotprod, bn_neon_has_dotprod, 0};

#endif
