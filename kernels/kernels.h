/* The kernel contract: one table of function pointers per code path (scalar, NEON variants,
 * x86 variants), filled by kernels/dispatch.c from the CPU's features and overridable with
 * BITNET_KERNELS=name. Kernels know packed weights, int8 activations and floats; nothing of
 * GGUF, layers or tokens.
 *
 * Ternary weights (I2_S, the file layout, read in place from the mmap):
 *
 *   row m of W (k weights, k % 128 == 0) = k/4 bytes at packed + m*k/4, in 128-weight blocks:
 *   block b = 32 bytes; byte j:  bits 7..6 = w[128b + j]       bits 5..4 = w[128b + 32 + j]
 *                                bits 3..2 = w[128b + 64 + j]  bits 1..0 = w[128b + 96 + j]
 *   code 0 -> -1, 1 -> 0, 2 -> +1 (3 never occurs; kernels may treat it as anything)
 *
 * Every integer result is exact and identical on every path (bit-identical floats follow,
 * since the float epilogue is fixed):  y = ((float)T / s) * beta  with T = sum_j t_j * q_j.
 */
#ifndef BN_KERNELS_H
#define BN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef struct bn_ternary {
    const uint8_t *packed; /* I2_S codes, file layout above */
    size_t k;              /* inputs per row, multiple of 128 */
    size_t m;              /* output rows */
    float scale;           /* per-tensor beta */
    void *repacked;        /* layout made by the kernel's prepare(), or NULL */
} bn_ternary;

typedef struct bn_kernels {
    const char *name;
    /* Output rows a kernel call handles together; callers split row ranges at multiples of it
     * (a range end equal to m is always allowed). */
    size_t row_block;

    /* Activation quantization (per row, the reference's rounding; src/EXACTNESS.md):
     * amax = max(max|x|, 1e-5) in double, s = (float)(127/amax),
     * q = round-half-even((float)(x*s)) clamped to [-128, 127]. Returns s. */
    float (*quantize_row)(const float *x, size_t n, int8_t *q);

    /* y[r*ldy + i] = ((float)T(r,i) / act_scale[r]) * w->scale for rows i in
     * [row_begin, row_end) and activation rows r < n_act, where q holds n_act rows of w->k. */
    void (*ternary_matmul)(const bn_ternary *w, size_t row_begin, size_t row_end, const int8_t *q,
                           const float *act_scale, size_t n_act, float *y, size_t ldy);

    /* Optional: build w->repacked for this kernel (at load time); 0 on success. */
    int (*prepare)(bn_ternary *w);
    void (*release)(bn_ternary *w);

    /* f16 x f16 dot product with f32 products/accumulation, in ggml's AVX-512 summation order
     * (64 lanes, folded, then a tree; the tail in double: src/EXACTNESS.md). */
    float (*dot_f16)(const uint16_t *a, const uint16_t *b, size_t n);
    /* Attention, many dot products per call: for rows i < n_rows and vectors v < n_vec,
     *   y[v*ldy + i] = dot_f16(a + i*lda, b_v, n)   bit for bit (same summation order),
     * where b_v = b + v*ldb holds halves already widened to float (every value exactly an f16).
     * Scores: rows = cached K positions of one KV head (lda = kv_dim), vectors = the query
     * heads that read it; probs.V: rows = that head's V rows (lda = n_ctx_pad), vectors = the
     * heads' probabilities. Each row is read once for all the vectors. */
    void (*dot_f16_rows)(const uint16_t *a, size_t lda, size_t n_rows, const float *b, size_t ldb,
                         size_t n_vec, size_t n, float *y, size_t ldy);
    /* LM head: y[i] = dot_f16(w + i*k, x, k) for i in [row_begin, row_end). */
    void (*matvec_f16)(const uint16_t *w, size_t k, size_t row_begin, size_t row_end,
                       const uint16_t *x, float *y);
    /* Optional (NULL = bn_softmax_f32): softmax of n attention scores in place, bit-identical
     * to bn_softmax_f32. */
    void (*softmax)(float *a, size_t n);
    /* Optional (NULL = bn_silu_mul_f32): the SwiGLU activation, bit-identical to it. */
    void (*silu_mul)(float *restrict g, const float *restrict u, size_t n);
    /* Optional (NULL = bn_f32_to_f16_row): the same conversion, bit-identical. */
    void (*f32_to_f16_row)(const float *x, uint16_t *y, size_t n);
    /* Optional (NULL = bn_f16_to_f32_row): the same conversion, bit-identical (every half,
     * NaNs included). */
    void (*f16_to_f32_row)(const uint16_t *x, float *y, size_t n);

    /* Screened LM head, approximate pass (src/model/lm_head.c): int8 rows times an int8
     * vector, y[i] = sum_j w[i*k + j] * x[j] for rows i in [row_begin, row_end). Every value
     * of w and x is in [-127, 127] (never -128: the SIMD paths negate x by the sign of w) and
     * k <= BN_MATVEC_I8_K_MAX, so the int32 sum is exact and identical on every path.
     *
     *   row i = k int8 at w + i*k, no alignment, no padding (any k; tails done scalar)
     */
    void (*matvec_i8)(const int8_t *w, size_t k, size_t row_begin, size_t row_end, const int8_t *x,
                      int32_t *y);

    /* Optional (NULL: the screen quantizes its activation to int8 and calls matvec_i8): the
     * same int8 rows times a 15-bit vector given as two int8 planes,
     *
     *   y[i] = sum_j w[i*k + j] * (255 * xh[j] + xl[j])   (exact, int64)
     *
     * with xh, xl in [-127, 127]; k <= BN_MATVEC_I8_K_MAX. Twice the integer work of matvec_i8
     * for a bound with next to no activation error (lm_head.c): for paths whose pass is bound
     * by bytes, not instructions. */
    void (*matvec_i8x2)(const int8_t *w, size_t k, size_t row_begin, size_t row_end,
                        const int8_t *xh, const int8_t *xl, int64_t *y);

    /* Optional (NULL: the screened head keeps int8 rows and matvec_i8): 6-bit rows times a
     * 16-bit vector given as two int8 planes,
     *
     *   y[i] = sum_j q_ij * (255 * xh[j] + xl[j])   (exact, int64) for i in [row_begin, row_end)
     *
     * with q in [-31, 31] stored as codes u = q + 32 (1..63) in the u6 layout below, and xh, xl
     * in [-127, 127]; k <= BN_MATVEC_I8_K_MAX. Three quarters of the int8 copy's bytes, with a
     * 15-bit activation that keeps the bound close (lm_head.c); a path without it runs the
     * scalar twin bn_u6_matvec. */
    void (*matvec_u6)(const uint8_t *w, size_t k, size_t row_begin, size_t row_end,
                      const int8_t *xh, const int8_t *xl, int64_t *y);
} bn_kernels;

/* The u6 layout of one row of k codes (1..63), bn_u6_row_bytes(k) bytes, rows back to back:
 * groups of 256 codes in 192 bytes, then the k % 256 last codes one byte each. In group g
 * (u = the group's codes, i < 64), the low 6 bits of three 64-byte vectors hold u[0..192) and
 * their top two bits hold u[192..256) two bits at a time:
 *
 *   A[i] = u[i]       | (u[192 + i] & 3) << 6
 *   B[i] = u[64 + i]  | (u[192 + i] >> 2 & 3) << 6
 *   C[i] = u[128 + i] | (u[192 + i] >> 4) << 6
 *
 * so each vector's codes come out with one AND, and the fourth vector's with three shifts and
 * two bit selects, every code lined up with 64 consecutive activations. */
size_t bn_u6_row_bytes(size_t k);
/* Packs k values q in [-31, 31] (as codes q + 32) into one u6 row. */
void bn_u6_pack_row(const int8_t *q, size_t k, uint8_t *row);
/* The values back: q[j] = code - 32. */
void bn_u6_unpack_row(const uint8_t *row, size_t k, int8_t *q);
/* matvec_i8x2 in plain C: the scalar path's entry and the definition the others reproduce. */
void bn_i8x2_matvec(const int8_t *w, size_t k, size_t row_begin, size_t row_end, const int8_t *xh,
                    const int8_t *xl, int64_t *y);
/* matvec_u6 in plain C: the scalar path's entry and the definition the others reproduce. */
void bn_u6_matvec(const uint8_t *w, size_t k, size_t row_begin, size_t row_end, const int8_t *xh,
                  const int8_t *xl, int64_t *y);

/* Longest row matvec_i8 accepts: k * 127 * 127 < 2^31. */
#define BN_MATVEC_I8_K_MAX ((size_t)131072)

/* IEEE half <-> float, round to nearest even (exact scalar definitions shared by all paths). */
uint16_t bn_f32_to_f16(float f);
float bn_f16_to_f32(uint16_t h);
void bn_f32_to_f16_row(const float *x, uint16_t *y, size_t n);
void bn_f16_to_f32_row(const uint16_t *x, float *y, size_t n);
/* bn_f16_to_f32 of every half, indexed by its bits (built once, thread-safe). */
const float *bn_f16_table(void);

/* Softmax of n scores in place (FORMAT.md 4.4.5): max-subtracted ggml expf, summed in double
 * per 16-lane vector with the lanes added as a tree, times (float)(1/sum). */
void bn_softmax_f32(float *a, size_t n);
/* g[i] = silu(g[i]) * u[i], silu with the same ggml exp as the softmax (SwiGLU FFNs). */
void bn_silu_mul_f32(float *restrict g, const float *restrict u, size_t n);

/* Q8_0 rows (kernels/scalar/q8_0.c; one plain-C definition used by every path): blocks of
 * BN_QK8_0 int8 values after an f16 scale, BN_Q8_0_BYTES bytes each; n % BN_QK8_0 == 0. */
enum {
    BN_QK8_0 = 32,
    BN_Q8_0_BYTES = 34
};
void bn_q8_0_dequant_row(const uint8_t *blocks, float *y, size_t n);
/* Quantizes a float row as ggml's quantize_row_q8_0 (d = amax/127, round half to even). */
void bn_q8_0_quantize_row(const float *x, uint8_t *blocks, size_t n);
/* ggml_vec_dot_q8_0_q8_0 with the x86 build's lane order (see q8_0.c). */
float bn_q8_0_dot(const uint8_t *a, const uint8_t *b, size_t n);
/* LM head: y[i] = bn_q8_0_dot(row i of w, xq, k) for i in [row_begin, row_end). */
void bn_q8_0_matvec(const uint8_t *w, size_t k, size_t row_begin, size_t row_end, const uint8_t *xq,
                    float *y);

/* The scalar twins: the definition every other path must reproduce. */
extern const bn_kernels bn_kernels_scalar;

/* The path in use: chosen once from BITNET_KERNELS or the CPU's features. */
const bn_kernels *bn_kernels_get(void);
/* A path by name ("scalar", "neon", "neon-dotprod", ...); NULL when unknown or when this CPU
 * cannot run it. */
const bn_kernels *bn_kernels_by_name(const char *name);
/* Names of every path compiled in, NULL-terminated (whether or not this CPU can run them). */
const char *const *bn_kernels_all_names(void);
/* Pins the path used by bn_kernels_get(); 0 on success, -1 when unknown/unsupported. */
int bn_kernels_select(const char *name);

#endif
