/* What the NEON paths share: CPU feature probes and the row driver (see neon_common.h). */
#include "neon_common.h"

#include <sys/auxv.h>

/* Linux's bits for AT_HWCAP / AT_HWCAP2 (arch/arm64/include/uapi/asm/hwcap.h), in case the
 * libc headers are older than the features. */
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1UL << 13)
#endif

int bn_neon_has_dotprod(void) { return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0; }

int bn_neon_has_i8mm(void) { return (getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0; }

int32_t bn_neon_sum_s8(const int8_t *x, size_t n)
{
    int32x4_t acc = vdupq_n_s32(0);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        acc = vpadalq_s16(acc, vpaddlq_s8(vld1q_s8(x + i)));
    int32_t s = vaddvq_s32(acc);
    for (; i < n; i++)
        s += x[i];
    return s;
}

void bn_neon_matmul_rows4(const bn_ternary *w, size_t row_begin, size_t row_end, const int8_t *q,
                          const float *act_scale, size_t n_act, float *y, size_t ldy,
                          bn_neon_rows4_fn fn)
{
    const size_t k = w->k, rs = k / 4;
    for (size_t r = 0; r < n_act; r++) {
        const int8_t *x = q + r * k;
        const int32_t asum = bn_neon_sum_s8(x, k);
        for (size_t i = row_begin; i < row_end; i += 4) {
            const size_t n = row_end - i < 4 ? row_end - i : 4;
            /* a short tail repeats its last row rather than reading past the matrix */
            const uint8_t *rows[4];
            for (size_t j = 0; j < 4; j++)
                rows[j] = w->packed + (i + (j < n ? j : n - 1)) * rs;
            int32_t c[4];
            fn(rows, x, k, c);
            for (size_t j = 0; j < n; j++)
                y[r * ldy + i + j] = bn_neon_epilogue(c[j] - asum, act_scale[r], w->scale);
        }
    }
}
