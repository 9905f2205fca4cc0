/* The fold of dot_f16's 64 float lanes (kernels/scalar/scalar.c: (l, l+32) + (l+16, l+48),
 * then l+8, l+4, l+2, l+1) on AVX-512, shared by the LM head's and the attention's f16 dot
 * products (avx512.c, attention.c) so that both keep exactly the scalar twin's order. */
#ifndef BN_KERNELS_X86_F16_REDUCE_H
#define BN_KERNELS_X86_F16_REDUCE_H

#include <immintrin.h>

/* Lanes (l, l+32) + (l+16, l+48) of one result (zmm g holds lanes 16g..16g+15). */
static inline __attribute__((target("avx512f"))) __m512 bn_x86_fold4(__m512 a0, __m512 a1,
                                                                     __m512 a2, __m512 a3)
{
    return _mm512_add_ps(_mm512_add_ps(a0, a2), _mm512_add_ps(a1, a3));
}

/* The 16 lanes folded l+8, l+4, l+2, l+1. */
static inline __attribute__((target("avx512f"))) float bn_x86_tree1(__m512 v)
{
    __m256 v8 = _mm256_add_ps(_mm512_castps512_ps256(v),
                              _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 v4 = _mm_add_ps(_mm256_castps256_ps128(v8), _mm256_extractf128_ps(v8, 1));
    __m128 v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));
    __m128 v1 = _mm_add_ss(v2, _mm_shuffle_ps(v2, v2, 1));
    return _mm_cvtss_f32(v1);
}

#endif
