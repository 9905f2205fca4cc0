/* int8 rows x int8 vector (the screened LM head's approximate pass) on NEON.
 *
 *   row i = k int8 at w + i*k; x = k int8; values in [-127, 127]; y[i] = exact int32 sum
 *
 * Armv8.0: SMULL + SMLAL2 put two products in each int16 lane (2 * 127 * 127 = 32258 fits),
 * SADALP widens the pairs into int32. dotprod: SDOT, four products per int32 lane. Four rows
 * share each load of x; the k % 16 tail is summed in scalar. Integer sums are exact, so every
 * path equals the scalar twin. */
#include "neon_common.h"

static int32_t tail_dot(const int8_t *r, const int8_t *x, size_t j, size_t k)
{
    int32_t sum = 0;
    for (; j < k; j++)
        sum += (int32_t)r[j] * x[j];
    return sum;
}

static inline int32x4_t dot16_v80(int32x4_t acc, int8x16_t w, int8x16_t x)
{
    int16x8_t p = vmull_s8(vget_low_s8(w), vget_low_s8(x));
    p = vmlal_high_s8(p, w, x);
    return vpadalq_s16(acc, p);
}

void bn_neon_matvec_i8(const int8_t *w, size_t k, size_t row_begin, size_t row_end, const int8_t *x,
                       int32_t *y)
{
    const size_t kp = k & ~(size_t)15;
    size_t i = row_begin;
    for (; i + 4 <= row_end; i += 4) {
        const int8_t *r0 = w + i * k, *r1 = r0 + k, *r2 = r1 + k, *r3 = r2 + k;
        int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
        for (size_t j = 0; j < kp; j += 16) {
            const int8x16_t xv = vld1q_s8(x + j);
            a0 = dot16_v80(a0, vld1q_s8(r0 + j), xv);
            a1 = dot16_v80(a1, vld1q_s8(r1 + j), xv);
            a2 = dot16_v80(a2, vld1q_s8(r2 + j), xv);
            a3 = dot16_v80(a3, vld1q_s8(r3 + j), xv);
        }
        y[i] = vaddvq_s32(a0) + tail_dot(r0, x, kp, k);
        y[i + 1] = vaddvq_s32(a1) + tail_dot(r1, x, kp, k);
        y[i + 2] = vaddvq_s32(a2) + tail_dot(r2, x, kp, k);
        y[i + 3] = vaddvq_s32(a3) + tail_dot(r3, x, kp, k);
    }
    for (; i < row_end; i++) {
        const int8_t *r = w + i * k;
        int32x4_t a = vdupq_n_s32(0);
        for (size_t j = 0; j < kp; j += 16)
            a = dot16_v80(a, vld1q_s8(r + j), vld1q_s8(x + j));
        y[i] = vaddvq_s32(a) + tail_dot(r, x, kp, k);
    }
}

#if BN_NEON_HAVE_TARGET_ATTR
BN_TARGET_DOTPROD
void bn_neon_dotprod_matvec_i8(const int8_t *w, size_t k, size_t row_begin, size_t row_end,
                               const int8_t *x, int32_t *y)
{
    const size_t kp = k & ~(size_t)15;
    size_t i = row_begin;
    for (; i + 4 <= row_end; i += 4) {
        const int8_t *r0 = w + i * k, *r1 = r0 + k, *r2 = r1 + k, *r3 = r2 + k;
        int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
        for (size_t j = 0; j < kp; j += 16) {
            const int8x16_t xv = vld1q_s8(x + j);
            a0 = vdotq_s32(a0, vld1q_s8(r0 + j), xv);
            a1 = vdotq_s32(a1, vld1q_s8(r1 + j), xv);
            a2 = vdotq_s32(a2, vld1q_s8(r2 + j), xv);
            a3 = vdotq_s32(a3, vld1q_s8(r3 + j), xv);
        }
        y[i] = vaddvq_s32(a0) + tail_dot(r0, x, kp, k);
        y[i + 1] = vaddvq_s32(a1) + tail_dot(r1, x, kp, k);
        y[i + 2] = vaddvq_s32(a2) + tail_dot(r2, x, kp, k);
        y[i + 3] = vaddvq_s32(a3) + tail_dot(r3, x, kp, k);
    }
    for (; i < row_end; i++) {
        const int8_t *r = w + i * k;
        int32x4_t a = vdupq_n_s32(0);
        for (size_t j = 0; j < kp; j += 16)
            a = vdotq_s32(a, vld1q_s8(r + j), vld1q_s8(x + j));
        y[i] = vaddvq_s32(a) + tail_dot(r, x, kp, k);
    }
}
#endif
