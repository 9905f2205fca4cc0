/* Internal to kernels/neon: what the NEON paths share (CPU feature probes, the row driver, the
 * float epilogue, the float/f16 kernels that are the same on every NEON path).
 *
 * The aarch64 library is compiled for plain Armv8.0 (-march=armv8-a, see CMakeLists.txt), so no
 * code outside a function marked BN_TARGET_DOTPROD / BN_TARGET_I8MM can contain an instruction
 * that an Armv8.0 core (Cortex-A53/A72) lacks. Those functions are only reached after
 * getauxval() said the CPU has the feature. gcc 12 needs the full "arch=armv8.2-a+..." form:
 * "+dotprod" alone on an armv8-a base does not let arm_neon.h's vdotq_s32 inline. */
#ifndef BN_NEON_COMMON_H
#define BN_NEON_COMMON_H

#include <arm_neon.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "kernels_registry.h" /* BN_NEON_HAVE_TARGET_ATTR */

#define BN_TARGET_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#define BN_TARGET_I8MM    __attribute__((target("arch=armv8.2-a+dotprod+i8mm")))

/* CPU features of the running machine (getauxval). */
int bn_neon_has_dotprod(void);
int bn_neon_has_i8mm(void);

/* T-sum helpers: every kernel computes C = sum c_j*q_j with the raw codes c in {0,1,2} and
 * subtracts sum q_j once per activation row (T = sum (c_j-1) q_j = C - sum q_j). */
int32_t bn_neon_sum_s8(const int8_t *x, size_t n);

/* Four rows (pointers may repeat, for a short tail) times one activation row:
 * out[j] = sum over the row's k weights of code * x (C above, codes not offset). */
typedef void (*bn_neon_rows4_fn)(const uint8_t *const w[4], const int8_t *x, size_t k,
                                 int32_t out[4]);

/* The shared driver: for each activation row and each block of 4 rows of [row_begin, row_end),
 * calls fn and writes the scalar twin's epilogue. */
void bn_neon_matmul_rows4(const bn_ternary *w, size_t row_begin, size_t row_end, const int8_t *q,
                          const float *act_scale, size_t n_act, float *y, size_t ldy,
                          bn_neon_rows4_fn fn);

#if BN_NEON_HAVE_TARGET_ATTR
/* The neon-dotprod matmul (the i8mm path falls back to it for decode). */
void bn_neon_dotprod_matmul(const bn_ternary *w, size_t row_begin, size_t row_end, const int8_t *q,
                            const float *act_scale, size_t n_act, float *y, size_t ldy);
#endif

/* The scalar twin's float epilogue, written once so that every path rounds identically. */
static inline float bn_neon_epilogue(int32_t t, float act_scale, float beta)
{
    return ((float)t / act_scale) * beta;
}

/* Same on every NEON path (plain Armv8.0 instructions). */
float bn_neon_quantize_row(const float *x, size_t n, int8_t *q);
float bn_neon_dot_f16(const uint16_t *a, const uint16_t *b, size_t n);
/* bn_f16_to_f32_row with FCVTL (kernel entry f16_to_f32_row). */
void bn_neon_f16_to_f32_row(const uint16_t *x, float *y, size_t n);
void bn_neon_matvec_f16(const uint16_t *w, size_t k, size_t row_begin, size_t row_end,
                        const uint16_t *x, float *y);
void bn_neon_dot_f16_rows(const uint16_t *a, size_t lda, size_t n_rows, const float *b, size_t ldb,
                          size_t n_vec, size_t n, float *y, size_t ldy);

/* int8 x int8 matvec of the screened LM head (kernels.h: matvec_i8), in neon_int8.c. */
void bn_neon_matvec_i8(const int8_t *w, size_t k, size_t row_begin, size_t row_end, const int8_t *x,
                       int32_t *y);
#if BN_NEON_HAVE_TARGET_ATTR
void bn_neon_dotprod_matvec_i8(const int8_t *w, size_t k, size_t row_begin, size_t row_end,
                               const int8_t *x, int32_t *y);
#endif

#endif
