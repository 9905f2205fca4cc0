/* The softmax of attention scores (FORMAT.md 4.4.5), as one body shared by the scalar twin
 * (kernels/scalar/softmax.c) and the x86 copy compiled with FMA enabled (kernels/x86/
 * softmax_fma.c): the same C operations, and fmaf is exactly rounded whether the compiler
 * emits an instruction or calls libm, so both give the same bits. The libm calls were a fifth
 * of a long prefill on x86, whose default target has no FMA. */
#ifndef BN_KERNELS_SOFTMAX_IMPL_H
#define BN_KERNELS_SOFTMAX_IMPL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__clang__)
/* The exp formula spells out exactly which operations are fused (fmaf). */
#pragma STDC FP_CONTRACT OFF
#endif

/* 2^e as a float, for -126 <= e <= 127 (a normal number: exact). */
static inline __attribute__((always_inline)) float bn_sm_pow2f(int e)
{
    const uint32_t bits = (uint32_t)(e + 127) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* j * 2^n rounded once, as ldexpf (whose libm call cost a fifth of a long prefill): a product
 * by a normal power of two is exact unless the result is subnormal, where it rounds once, as
 * ldexpf does. Below 2^-126 the scaling goes in two steps, the first of them exact (j is
 * ~[0.7, 1.5], so j * 2^(n+100) stays normal for n >= -192). */
static inline __attribute__((always_inline)) float bn_sm_scale_pow2(float j, int n)
{
    if (n >= -126 && n <= 127)
        return j * bn_sm_pow2f(n);
    if (n < -126)
        return (j * bn_sm_pow2f(n + 100)) * bn_sm_pow2f(-100);
    return (j * bn_sm_pow2f(127)) * bn_sm_pow2f(n - 127);
}

/* ggml's vectorised expf (AVX-512 ggml_v_expf, the build the golden files come from), one lane
 * at a time: the softmax of the reference uses it, not libm's expf. */
static inline __attribute__((always_inline)) float bn_sm_expf(float x)
{
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    if (n != n)
        return n; /* NaN in, NaN out */
    if (fabsf(n) > 192.0f)
        return n <= 0.0f ? 0.0f : INFINITY;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const float u = b * b;
    const float j = fmaf(
        fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
        u, fmaf(0x1.ffffecp-1f, b, 1.0f));
    return bn_sm_scale_pow2(j, (int)n); /* _mm512_scalef_ps: exact scaling, one rounding */
}

/* g[i] = silu(g[i]) * u[i], silu(x) = x / (1 + e^-x) with the exp above (ggml_vec_silu_f32 on
 * the reference's AVX-512 build; every n_ff is a multiple of 16, so no lane takes libm). */
static inline __attribute__((always_inline)) void bn_sm_silu_mul(float *restrict g,
                                                                 const float *restrict u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const float x = g[i];
        g[i] = (x / (1.0f + bn_sm_expf(0.0f - x))) * u[i];
    }
}

/* Softmax of the first n scores in place (FORMAT.md 4.4.5; the scores are already scaled):
 * max-subtracted exp, summed in double per 16-lane vector whose lanes are added as a tree
 * (l+8, l+4, l+2, l+1), as ggml_vec_soft_max_f32 does; multiplied by (float)(1/sum). Lanes
 * past n are the masked cells: exact zeros. */
static inline __attribute__((always_inline)) void bn_sm_softmax(float *a, size_t n)
{
    float max = -INFINITY;
    for (size_t j = 0; j < n; j++)
        max = a[j] > max ? a[j] : max;
    double sum = 0.0;
    for (size_t j0 = 0; j0 < n; j0 += 16) {
        float lane[16];
        for (size_t l = 0; l < 16; l++) {
            lane[l] = j0 + l < n ? bn_sm_expf(a[j0 + l] - max) : 0.0f;
            if (j0 + l < n)
                a[j0 + l] = lane[l];
        }
        for (int w = 8; w >= 1; w /= 2)
            for (int l = 0; l < w; l++)
                lane[l] = lane[l] + lane[l + w];
        sum += (double)lane[0];
    }
    const float inv = (float)(1.0 / sum);
    for (size_t j = 0; j < n; j++)
        a[j] *= inv;
}

#endif
