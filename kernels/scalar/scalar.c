/* Scalar twins: the definition of every kernel's result. Written as plain loops over the
 * 128-weight I2_S block so compilers vectorise them on any target. */
#include "kernels.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- activation quantization */

float bn_scalar_quantize_row(const float *x, size_t n, int8_t *q);
float bn_scalar_quantize_row(const float *x, size_t n, int8_t *q)
{
    /* The reference takes the maximum in double, starting from 1e-5 (an all-zero row must
     * not divide by zero). A float maximum gives the same value: every |x| is a float.
     * (src/EXACTNESS.md "Activation quantization".) */
    float amax = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        amax = a > amax ? a : amax;
    }
    double dmax = (double)amax > 1e-5 ? (double)amax : 1e-5;
    float s = (float)(127.0 / dmax);
    for (size_t i = 0; i < n; i++) {
        /* round half to even: the reference adds 1.5*2^23 in float (nearbyintf in the
         * default rounding mode is the same) */
        float v = nearbyintf(x[i] * s);
        v = v > 127.0f ? 127.0f : v;
        v = v < -128.0f ? -128.0f : v;
        q[i] = (int8_t)v;
    }
    return s;
}

/* ---------------------------------------------------------------- ternary matmul */

/* T = sum_j t_j * q_j over one packed row (k weights). */
static int32_t ternary_dot_row(const uint8_t *restrict row, const int8_t *restrict q, size_t k)
{
    int32_t sum = 0;
    for (size_t b = 0; b < k / 128; b++) {
        const uint8_t *blk = row + 32 * b;
        const int8_t *qb = q + 128 * b;
        int32_t s = 0;
        for (int j = 0; j < 32; j++) {
            uint8_t byte = blk[j];
            s += ((int32_t)(byte >> 6) - 1) * qb[j];
            s += ((int32_t)((byte >> 4) & 3) - 1) * qb[32 + j];
            s += ((int32_t)((byte >> 2) & 3) - 1) * qb[64 + j];
            s += ((int32_t)(byte & 3) - 1) * qb[96 + j];
        }
        sum += s;
    }
    return sum;
}

static void scalar_ternary_matmul(const bn_ternary *w, size_t row_begin, size_t row_end,
                                  const int8_t *q, const float *act_scale, size_t n_act, float *y,
                                  size_t ldy)
{
    const size_t row_bytes = w->k / 4;
    for (size_t r = 0; r < n_act; r++) {
        const int8_t *qr = q + r * w->k;
        for (size_t i = row_begin; i < row_end; i++) {
            int32_t t = ternary_dot_row(w->packed + i * row_bytes, qr, w->k);
            y[r * ldy + i] = ((float)t / act_scale[r]) * w->scale;
        }
    }
}

/* ---------------------------------------------------------------- f16 dot products */

/* The 64 accumulators folded in ggml's order: (l, l+32) + (l+16, l+48), then the 16 lanes as a
 * tree (l+8, l+4, l+2, l+1). */
static float fold64(const float acc[64])
{
    float v[16];
    for (int l = 0; l < 16; l++) {
        float x0 = acc[l] + acc[32 + l];
        float x1 = acc[16 + l] + acc[48 + l];
        v[l] = x0 + x1;
    }
    for (int w = 8; w >= 1; w /= 2)
        for (int l = 0; l < w; l++)
            v[l] = v[l] + v[l + w];
    return v[0];
}

/* ggml's x86 AVX-512 order (the build the golden files come from; src/EXACTNESS.md "Summation
 * orders"): 4 accumulators of 16 lanes over steps of 64 elements, accumulators folded 0+2,
 * 1+3, then 0+1, the 16 lanes reduced as a tree (l+8, l+4, l+2, l+1), and the tail added in
 * double. Products of two halves are exact in float, so fma and multiply-then-add agree. */
static float scalar_dot_f16(const uint16_t *a, const uint16_t *b, size_t n)
{
    const float *f16_table = bn_f16_table(); /* built before main: no check per call */
    const size_t np = n & ~(size_t)63;
    double sum = 0.0;
    if (np) {
        float acc[64] = {0};
        for (size_t i = 0; i < np; i += 64)
            for (int l = 0; l < 64; l++)
                acc[l] += f16_table[a[i + l]] * f16_table[b[i + l]];
        sum = fold64(acc);
    }
    for (size_t i = np; i < n; i++)
        sum += (double)(f16_table[a[i]] * f16_table[b[i]]);
    return (float)sum;
}

/* scalar_dot_f16 with the second operand already widened: the same products, the same order. */
static float dot_f16_widened(const uint16_t *a, const float *b, size_t n)
{
    const float *f16_table = bn_f16_table();
    const size_t np = n & ~(size_t)63;
    double sum = 0.0;
    if (np) {
        float acc[64] = {0};
        for (size_t i = 0; i < np; i += 64)
            for (int l = 0; l < 64; l++)
                acc[l] += f16_table[a[i + l]] * b[i + l];
        sum = fold64(acc);
    }
    for (size_t i = np; i < n; i++)
        sum += (double)(f16_table[a[i]] * b[i]);
    return (float)sum;
}

static void scalar_dot_f16_rows(const uint16_t *a, size_t lda, size_t n_rows, const float *b,
                                size_t ldb, size_t n_vec, size_t n, float *y, size_t ldy)
{
    for (size_t i = 0; i < n_rows; i++)
        for (size_t v = 0; v < n_vec; v++)
            y[v * ldy + i] = dot_f16_widened(a + i * lda, b + v * ldb, n);
}

static void scalar_matvec_f16(const uint16_t *w, size_t k, size_t row_begin, size_t row_end,
                              const uint16_t *x, float *y)
{
    for (size_t i = row_begin; i < row_end; i++)
        y[i] = scalar_dot_f16(w + i * k, x, k);
}

/* ---------------------------------------------------------------- int8 matvec */

static void scalar_matvec_i8(const int8_t *w, size_t k, size_t row_begin, size_t row_end,
                             const int8_t *x, int32_t *y)
{
    for (size_t i = row_begin; i < row_end; i++) {
        const int8_t *r = w + i * k;
        int32_t sum = 0;
        for (size_t j = 0; j < k; j++)
            sum += (int32_t)r[j] * x[j];
        y[i] = sum;
    }
}

const bn_kernels bn_kernels_scalar = {
    .name = "scalar",
    .row_block = 1,
    .quantize_row = bn_scalar_quantize_row,
    .ternary_matmul = scalar_ternary_matmul,
    .prepare = NULL,
    .release = NULL,
    .dot_f16 = scalar_dot_f16,
    .dot_f16_rows = scalar_dot_f16_rows,
    .matvec_f16 = scalar_matvec_f16,
    .softmax = bn_softmax_f32,
    .f32_to_f16_row = bn_f32_to_f16_row,
    .f16_to_f32_row = bn_f16_to_f32_row,
    .matvec_i8 = scalar_matvec_i8,
    .matvec_i8x2 = bn_i8x2_matvec,
    .matvec_u6 = bn_u6_matvec,
};
