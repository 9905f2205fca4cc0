/* Internal to kernels/x86/: pieces shared by the AVX2 and AVX-512 paths, and the CPU checks.
 * Every function here is compiled with a per-function target attribute, so the library stays
 * runnable on any x86_64; callers must check bn_x86_has_*() first. */
#ifndef BN_KERNELS_X86_H
#define BN_KERNELS_X86_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "kernels_registry.h"

/* AVX2 + FMA + F16C, with the OS saving the ymm state. */
int bn_x86_has_avx2(void);
/* AVX-512 F/BW/VL/VNNI (+ the AVX2 set), with the OS saving the zmm state. */
int bn_x86_has_avx512vnni(void);

/* Bit-identical to bn_scalar_quantize_row (needs AVX2). */
float bn_x86_avx2_quantize_row(const float *x, size_t n, int8_t *q);

/* bn_softmax_f32 with FMA instructions (needs FMA, which both x86 paths require). */
void bn_x86_fma_softmax(float *a, size_t n);
/* bn_silu_mul_f32 with FMA instructions (needs FMA): without them every fmaf of the exp is a
 * libm call, ~6% of a Falcon3-1B prefill. */
void bn_x86_fma_silu_mul(float *restrict g, const float *restrict u, size_t n);
/* bn_softmax_f32 16 lanes at a time (needs AVX-512 F). */
void bn_x86_avx512_softmax(float *a, size_t n);
/* bn_f32_to_f16_row with F16C (needs AVX2 + F16C). */
void bn_x86_f16c_f32_to_f16_row(const float *x, uint16_t *y, size_t n);
/* bn_f16_to_f32_row with F16C (needs AVX2 + F16C). */
void bn_x86_f16c_f16_to_f32_row(const uint16_t *x, float *y, size_t n);
/* kernels.h dot_f16_rows, bit-identical to the scalar twin (attention.c). */
void bn_x86_avx512_dot_f16_rows(const uint16_t *a, size_t lda, size_t n_rows, const float *b,
                                size_t ldb, size_t n_vec, size_t n, float *y, size_t ldy);
void bn_x86_avx2_dot_f16_rows(const uint16_t *a, size_t lda, size_t n_rows, const float *b,
                              size_t ldb, size_t n_vec, size_t n, float *y, size_t ldy);
/* int8 x int8 matvec of the screened LM head (kernels.h: matvec_i8), in matvec_i8.c. */
void bn_x86_avx2_matvec_i8(const int8_t *w, size_t k, size_t row_begin, size_t row_end,
                           const int8_t *x, int32_t *y);
void bn_x86_avx512_matvec_i8(const int8_t *w, size_t k, size_t row_begin, size_t row_end,
                             const int8_t *x, int32_t *y);
/* int8 rows x a two-plane 15-bit vector (kernels.h: matvec_i8x2), in matvec_i8.c. */
void bn_x86_avx2_matvec_i8x2(const int8_t *w, size_t k, size_t row_begin, size_t row_end,
                             const int8_t *xh, const int8_t *xl, int64_t *y);
void bn_x86_avx512_matvec_i8x2(const int8_t *w, size_t k, size_t row_begin, size_t row_end,
                               const int8_t *xh, const int8_t *xl, int64_t *y);
/* 6-bit rows x 16-bit vector of the screened LM head (kernels.h: matvec_u6), in matvec_u6.c. */
void bn_x86_avx512_matvec_u6(const uint8_t *w, size_t k, size_t row_begin, size_t row_end,
                             const int8_t *xh, const int8_t *xl, int64_t *y);

extern const bn_kernels bn_kernels_avx2;
extern const bn_kernels bn_kernels_avx512vnni;
extern const bn_kernel_path bn_path_avx2;
extern const bn_kernel_path bn_path_avx512vnni;

#endif
