/* Attention helpers for the x86 paths: the scalar softmax body compiled with FMA enabled, so
 * that its fmaf calls become single instructions instead of libm calls (same operations, same
 * bits: see softmax_impl.h), and f32 -> f16 rows with F16C. */
#include <immintrin.h>

#include "scalar/softmax_impl.h"
#include "x86.h"

__attribute__((target("fma"))) void bn_x86_fma_softmax(float *a, size_t n) { bn_sm_softmax(a, n); }

/* f32 -> f16 rows with F16C (VCVTPS2PH, round to nearest even: the IEEE conversion that
 * bn_f32_to_f16 spells out, NaNs quieted the same way); the attention converts a row of
 * probabilities per head and token, which the scalar loop made a seventh of a long prefill. */
__attribute__((target("avx2,f16c"))) void bn_x86_f16c_f32_to_f16_row(const float *x, uint16_t *y,
                                                                     size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(y + i), h);
    }
    for (; i < n; i++)
        y[i] = bn_f32_to_f16(x[i]);
}
