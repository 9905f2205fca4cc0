/* Activation quantization and the f16 dot products on NEON (plain Armv8.0), bit-identical to
 * the scalar twins:
 * - quantize_row: the same float multiply, FCVTNS (round half to even, like nearbyintf in the
 *   default mode), saturating narrows (= the clamp to [-128, 127]); FMAXNM ignores NaN like
 *   the scalar's `a > amax` does.
 * - dot_f16: the scalar reproduces ggml's AVX-512 order (src/EXACTNESS.md): 64 float lanes,
 *   lane l accumulating elements i+l. Here those 64 lanes are 16 float32x4 registers, so the
 *   additions happen in the same order and the result is the same bit for bit (FMA =
 *   multiply-then-add, because a product of two halves is exact in float). */
#include "neon_common.h"

#include <math.h>

float bn_neon_quantize_row(const float *x, size_t n, int8_t *q)
{
    float32x4_t m = vdupq_n_f32(0.0f);
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + i)));
    float amax = vmaxnmvq_f32(m);
    for (; i < n; i++) {
        float a = fabsf(x[i]);
        amax = a > amax ? a : amax;
    }
    double dmax = (double)amax > 1e-5 ? (double)amax : 1e-5;
    float s = (float)(127.0 / dmax);
    const float32x4_t vs = vdupq_n_f32(s);
    for (i = 0; i + 16 <= n; i += 16) {
        int32x4_t a = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + i), vs));
        int32x4_t b = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + i + 4), vs));
        int32x4_t c = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + i + 8), vs));
        int32x4_t d = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + i + 12), vs));
        int16x8_t ab = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b));
        int16x8_t cd = vcombine_s16(vqmovn_s32(c), vqmovn_s32(d));
        vst1q_s8(q + i, vcombine_s8(vqmovn_s16(ab), vqmovn_s16(cd)));
    }
    for (; i < n; i++) {
        float v = nearbyintf(x[i] * s);
        v = v > 127.0f ? 127.0f : v;
        v = v < -128.0f ? -128.0f : v;
        q[i] = (int8_t)v;
    }
    return s;
}

/* The scalar's final reduction of the 64 lanes (see scalar.c) and the tail in double. */
static float finish(const float32x4_t acc[16], const uint16_t *a, const uint16_t *b, size_t np,
                    size_t n)
{
    double sum = 0.0;
    if (np) {
        float32x4_t v[4];
        for (int j = 0; j < 4;
             j++) /* lanes 4j..4j+3 of v: (acc[l]+acc[32+l]) + (acc[16+l]+acc[48+l]) */
            v[j] = vaddq_f32(vaddq_f32(acc[j], acc[8 + j]), vaddq_f32(acc[4 + j], acc[12 + j]));
        v[0] = vaddq_f32(v[0], v[2]); /* l + 8 */
        v[1] = vaddq_f32(v[1], v[3]);
        v[0] = vaddq_f32(v[0], v[1]);                                 /* l + 4 */
        float l0 = vgetq_lane_f32(v[0], 0) + vgetq_lane_f32(v[0], 2); /* l + 2 */
        float l1 = vgetq_lane_f32(v[0], 1) + vgetq_lane_f32(v[0], 3);
        sum = l0 + l1; /* l + 1 */
    }
    for (size_t i = np; i < n; i++)
        sum += (double)(bn_f16_to_f32(a[i]) * bn_f16_to_f32(b[i]));
    return (float)sum;
}

static float32x4_t cvt_lo(uint16x8_t h)
{
    return vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h)));
}

static float32x4_t cvt_hi(uint16x8_t h) { return vcvt_high_f32_f16(vreinterpretq_f16_u16(h)); }

/* bn_f16_to_f32_row with FCVTL (exact; NaNs quieted with their payload, as the scalar). */
void bn_neon_f16_to_f32_row(const uint16_t *x, float *y, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const uint16x8_t h = vld1q_u16(x + i);
        vst1q_f32(y + i, cvt_lo(h));
        vst1q_f32(y + i + 4, cvt_hi(h));
    }
    for (; i < n; i++)
        y[i] = bn_f16_to_f32(x[i]);
}

/* Elements 8j..8j+7 of a 64-element step into accumulators lo (lanes 8j..8j+3) and hi; the
 * second operand is f16 (b) or already float (bf). */
static inline void step8(float32x4_t *lo, float32x4_t *hi, const uint16_t *a, const uint16_t *b,
                         const float *bf)
{
    uint16x8_t ha = vld1q_u16(a);
    float32x4_t bl, bh;
    if (bf) {
        bl = vld1q_f32(bf);
        bh = vld1q_f32(bf + 4);
    } else {
        uint16x8_t hb = vld1q_u16(b);
        bl = cvt_lo(hb);
        bh = cvt_hi(hb);
    }
    *lo = vfmaq_f32(*lo, cvt_lo(ha), bl);
    *hi = vfmaq_f32(*hi, cvt_hi(ha), bh);
}

/* Elements 8j..8j+7 against activations pre-scaled by 2^112, with the weights widened by
 * integer ops instead of FCVTL: the half's bits moved to their float places
 *   u32 = sign << 31 | (h & 0x7fff) << 13   (SHL #13 gives the low 16 bits, SSHR #3 & 0x8fff
 *                                             the high 16, ZIP interleaves them)
 * are the float w * 2^-112 exactly (normal halves and subnormals alike; zero stays zero), and
 * (w * 2^-112) * (x * 2^112) is the exact product w*x inside the FMA, so the sum is unchanged.
 * Why: on Neoverse N1 FCVTL issues on V0 only, once per 2 cycles, and bounds the LM head at
 * 0.5 cycles per weight; these ops use both vector pipes (0.41 cycles per weight, llvm-mca).
 * Only for finite weights: an f16 inf/NaN would read as a finite float here. */
static inline void step8_int(float32x4_t *lo, float32x4_t *hi, const uint16_t *a,
                             const float *bf_scaled)
{
    uint16x8_t h = vld1q_u16(a);
    uint16x8_t l16 = vshlq_n_u16(h, 13);
    uint16x8_t h16 = vandq_u16(vreinterpretq_u16_s16(vshrq_n_s16(vreinterpretq_s16_u16(h), 3)),
                               vdupq_n_u16(0x8fff));
    float32x4_t wl = vreinterpretq_f32_u16(vzip1q_u16(l16, h16));
    float32x4_t wh = vreinterpretq_f32_u16(vzip2q_u16(l16, h16));
    *lo = vfmaq_f32(*lo, wl, vld1q_f32(bf_scaled));
    *hi = vfmaq_f32(*hi, wh, vld1q_f32(bf_scaled + 4));
}

/* The 64 lanes over the first np elements (np % 64 == 0). Named accumulators, not an array:
 * with an array gcc stores all 16 to the stack on every iteration. */
static inline void lanes64(const uint16_t *a, const uint16_t *b, const float *bf, size_t np,
                           float32x4_t acc[16])
{
    float32x4_t c0 = vdupq_n_f32(0.0f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0;
    float32x4_t c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0, c12 = c0, c13 = c0, c14 = c0;
    float32x4_t c15 = c0;
    if (bf) /* odd 8-element groups: integer widening against x * 2^112 (see step8_int) */
        for (size_t i = 0; i < np; i += 64) {
            step8(&c0, &c1, a + i, NULL, bf + i);
            step8_int(&c2, &c3, a + i + 8, bf + i + 8);
            step8(&c4, &c5, a + i + 16, NULL, bf + i + 16);
            step8_int(&c6, &c7, a + i + 24, bf + i + 24);
            step8(&c8, &c9, a + i + 32, NULL, bf + i + 32);
            step8_int(&c10, &c11, a + i + 40, bf + i + 40);
            step8(&c12, &c13, a + i + 48, NULL, bf + i + 48);
            step8_int(&c14, &c15, a + i + 56, bf + i + 56);
        }
    else
        for (size_t i = 0; i < np; i += 64) {
            step8(&c0, &c1, a + i, b + i, NULL);
            step8(&c2, &c3, a + i + 8, b + i + 8, NULL);
            step8(&c4, &c5, a + i + 16, b + i + 16, NULL);
            step8(&c6, &c7, a + i + 24, b + i + 24, NULL);
            step8(&c8, &c9, a + i + 32, b + i + 32, NULL);
            step8(&c10, &c11, a + i + 40, b + i + 40, NULL);
            step8(&c12, &c13, a + i + 48, b + i + 48, NULL);
            step8(&c14, &c15, a + i + 56, b + i + 56, NULL);
        }
    acc[0] = c0, acc[1] = c1, acc[2] = c2, acc[3] = c3, acc[4] = c4, acc[5] = c5;
    acc[6] = c6, acc[7] = c7, acc[8] = c8, acc[9] = c9, acc[10] = c10, acc[11] = c11;
    acc[12] = c12, acc[13] = c13, acc[14] = c14, acc[15] = c15;
}

float bn_neon_dot_f16(const uint16_t *a, const uint16_t *b, size_t n)
{
    const size_t np = n & ~(size_t)63;
    float32x4_t acc[16];
    lanes64(a, b, NULL, np, acc);
    return finish(acc, a, b, np, n);
}

/* kernels.h dot_f16_rows: each result is bn_neon_dot_f16's sum with the second operand already
 * float (the same products and order); one vector at a time, a row's 64 lanes in 16 registers. */
static float dot_f16_widened(const uint16_t *a, const float *bf, size_t n)
{
    const size_t np = n & ~(size_t)63;
    float32x4_t c0 = vdupq_n_f32(0.0f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0;
    float32x4_t c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0, c12 = c0, c13 = c0, c14 = c0;
    float32x4_t c15 = c0;
    for (size_t i = 0; i < np; i += 64) {
        step8(&c0, &c1, a + i, NULL, bf + i);
        step8(&c2, &c3, a + i + 8, NULL, bf + i + 8);
        step8(&c4, &c5, a + i + 16, NULL, bf + i + 16);
        step8(&c6, &c7, a + i + 24, NULL, bf + i + 24);
        step8(&c8, &c9, a + i + 32, NULL, bf + i + 32);
        step8(&c10, &c11, a + i + 40, NULL, bf + i + 40);
        step8(&c12, &c13, a + i + 48, NULL, bf + i + 48);
        step8(&c14, &c15, a + i + 56, NULL, bf + i + 56);
    }
    const float32x4_t acc[16] = {c0, c1, c2,  c3,  c4,  c5,  c6,  c7,
                                 c8, c9, c10, c11, c12, c13, c14, c15};
    double sum = np ? finish(acc, a, a, np, np) : 0.0;
    for (size_t i = np; i < n; i++)
        sum += (double)(bn_f16_to_f32(a[i]) * bf[i]);
    return (float)sum;
}

void bn_neon_dot_f16_rows(const uint16_t *a, size_t lda, size_t n_rows, const float *b, size_t ldb,
                          size_t n_vec, size_t n, float *y, size_t ldy)
{
    for (size_t i = 0; i < n_rows; i++)
        for (size_t v = 0; v < n_vec; v++)
            y[v * ldy + i] = dot_f16_widened(a + i * lda, b + v * ldb, n);
}

/* One row against activations already widened to float (the LM head converts them once; odd
 * 8-element groups pre-scaled by 2^112). */
static float dot_f16_f32(const uint16_t *a, const float *xf, const uint16_t *b, size_t n)
{
    const size_t np = n & ~(size_t)63;
    float32x4_t acc[16];
    lanes64(a, b, xf, np, acc);
    return finish(acc, a, b, np, n);
}

enum {
    XF_MAX = 8192
}; /* widened activations on the stack: 32 KB */

void bn_neon_matvec_f16(const uint16_t *w, size_t k, size_t row_begin, size_t row_end,
                        const uint16_t *x, float *y)
{
    if (k > XF_MAX) {
        for (size_t i = row_begin; i < row_end; i++)
            y[i] = bn_neon_dot_f16(w + i * k, x, k);
        return;
    }
    float xf[XF_MAX];
    const size_t np = k & ~(size_t)63;
    /* odd 8-element groups scaled by 2^112 (exact: |x| <= 65504 stays below 2^128) */
    for (size_t i = 0; i < np; i += 8) {
        uint16x8_t h = vld1q_u16(x + i);
        const float32x4_t scale = vdupq_n_f32((i / 8) % 2 ? 0x1p112f : 1.0f);
        vst1q_f32(xf + i, vmulq_f32(cvt_lo(h), scale));
        vst1q_f32(xf + i + 4, vmulq_f32(cvt_hi(h), scale));
    }
    for (size_t i = row_begin; i < row_end; i++)
        y[i] = dot_f16_f32(w + i * k, xf, x, k);
}
