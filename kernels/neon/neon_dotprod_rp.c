/* Path "neon-dotprod-rp": SDOT on weights repacked at load time (prepare) so that one byte
 * holds the same input column of FOUR rows. Then one 16-byte load covers 4 rows x 16 inputs
 * against a single activation vector, and the raw byte itself is one of the four SDOT
 * operands: 3 ANDs + 4 SDOTs per 64 weights instead of 4 + 4 in the file layout.
 *
 *   quad g (rows 4g..4g+3; rows past m are zero weights), byte for input column j:
 *     bits 7..6 = t0 = c0 - 1 as a 2-bit two's complement (-1 = 11, 0 = 00, +1 = 01)
 *     bits 5..4 = c1, bits 3..2 = c2, bits 1..0 = c3     (raw codes 0..2 of rows 4g+1..4g+3)
 *   stored column after column: quad g = k bytes at data + g*k.
 *
 * As a signed byte, b = 64*t0 + 16*c1 + 4*c2 + c3. Accumulating SDOTs of b, b & 0x3f,
 * b & 0x0f and b & 0x03 against the same x gives S0..S3 with
 *   64*T0 = S0 - S1,   16*C1 = S1 - S2,   4*C2 = S2 - S3,   C3 = S3,
 * exact in int32 (|S| <= 4096*k); C = sum c*x, T = C - sum x for rows 1..3, row 0 is signed
 * already. Code 3 is not representable in row 0 (it would read as -2): the format never has
 * it (kernels.h). Without prepare() the path computes with the in-place SDOT kernel. */
#include "neon_common.h"
#include "kernels_registry.h"

#include <stdlib.h>
#include <string.h>

#if BN_NEON_HAVE_TARGET_ATTR

typedef struct rp_weights {
    const void *owner; /* &kernels_rp: tells this layout from another path's */
    size_t k, m;
    int8_t *data; /* ceil(m/4) quads x k bytes */
} rp_weights;

static const bn_kernels kernels_rp;

/* ---------------------------------------------------------------- repacking */

/* The k codes (0..3) of one file-layout row, one byte each. */
static void decode_row(const uint8_t *row, size_t k, uint8_t *codes)
{
    const uint8x16_t m3 = vdupq_n_u8(3);
    for (size_t b = 0; b < k / 128; b++)
        for (int h = 0; h < 2; h++) {
            uint8x16_t v = vld1q_u8(row + 32 * b + 16 * h);
            uint8_t *c = codes + 128 * b + 16 * h;
            vst1q_u8(c, vshrq_n_u8(v, 6));
            vst1q_u8(c + 32, vandq_u8(vshrq_n_u8(v, 4), m3));
            vst1q_u8(c + 64, vandq_u8(vshrq_n_u8(v, 2), m3));
            vst1q_u8(c + 96, vandq_u8(v, m3));
        }
}

static int rp_prepare(bn_ternary *w)
{
    const size_t k = w->k, m = w->m, quads = (m + 3) / 4;
    rp_weights *rw = malloc(sizeof *rw);
    int8_t *data = malloc(quads * k);
    uint8_t *codes = malloc(4 * k);
    if (!rw || !data || !codes) {
        free(rw);
        free(data);
        free(codes);
        return -1;
    }
    const uint8x16_t m3 = vdupq_n_u8(3), one = vdupq_n_u8(1);
    for (size_t g = 0; g < quads; g++) {
        for (size_t r = 0; r < 4; r++)
            if (4 * g + r < m)
                decode_row(w->packed + (4 * g + r) * (k / 4), k, codes + r * k);
            else
                memset(codes + r * k, 1, k); /* zero weights */
        for (size_t j = 0; j < k; j += 16) {
            uint8x16_t t0 = vandq_u8(vsubq_u8(vld1q_u8(codes + j), one), m3);
            uint8x16_t b = vshlq_n_u8(t0, 6);
            b = vorrq_u8(b, vshlq_n_u8(vld1q_u8(codes + k + j), 4));
            b = vorrq_u8(b, vshlq_n_u8(vld1q_u8(codes + 2 * k + j), 2));
            b = vorrq_u8(b, vld1q_u8(codes + 3 * k + j));
            vst1q_s8(data + g * k + j, vreinterpretq_s8_u8(b));
        }
    }
    free(codes);
    rw->owner = &kernels_rp;
    rw->k = k;
    rw->m = m;
    rw->data = data;
    w->repacked = rw;
    return 0;
}

static void rp_release(bn_ternary *w)
{
    rp_weights *rw = w->repacked;
    if (rw && rw->owner == &kernels_rp) {
        free(rw->data);
        free(rw);
        w->repacked = NULL;
    }
}

/* ---------------------------------------------------------------- kernel */

/* Three quads (12 rows) against x: s[q][0..3] = S0..S3 of quad q. Three quads share each
 * activation load; 12 accumulators + 3 masks + 4 loads leave gcc enough registers. */
BN_TARGET_DOTPROD
static void quads3_rp(const int8_t *q0, const int8_t *q1, const int8_t *q2, const int8_t *x,
                      size_t k, int32_t s[3][4])
{
    const int8x16_t m3f = vdupq_n_s8(0x3f), m0f = vdupq_n_s8(0x0f), m03 = vdupq_n_s8(0x03);
    int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
    int32x4_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int32x4_t c0 = a0, c1 = a0, c2 = a0, c3 = a0;
#pragma GCC unroll 4
    for (size_t j = 0; j < k; j += 16) {
        int8x16_t xv = vld1q_s8(x + j);
        int8x16_t v = vld1q_s8(q0 + j), u = vld1q_s8(q1 + j), t = vld1q_s8(q2 + j);
        a0 = vdotq_s32(a0, v, xv);
        b0 = vdotq_s32(b0, u, xv);
        c0 = vdotq_s32(c0, t, xv);
        a1 = vdotq_s32(a1, vandq_s8(v, m3f), xv);
        b1 = vdotq_s32(b1, vandq_s8(u, m3f), xv);
        c1 = vdotq_s32(c1, vandq_s8(t, m3f), xv);
        a2 = vdotq_s32(a2, vandq_s8(v, m0f), xv);
        b2 = vdotq_s32(b2, vandq_s8(u, m0f), xv);
        c2 = vdotq_s32(c2, vandq_s8(t, m0f), xv);
        a3 = vdotq_s32(a3, vandq_s8(v, m03), xv);
        b3 = vdotq_s32(b3, vandq_s8(u, m03), xv);
        c3 = vdotq_s32(c3, vandq_s8(t, m03), xv);
    }
    vst1q_s32(s[0], vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3)));
    vst1q_s32(s[1], vpaddq_s32(vpaddq_s32(b0, b1), vpaddq_s32(b2, b3)));
    vst1q_s32(s[2], vpaddq_s32(vpaddq_s32(c0, c1), vpaddq_s32(c2, c3)));
}

/* Prefill: one quad against four activation rows, each masked byte vector feeding four SDOTs
 * (3 ANDs per 16 SDOTs). s[j][0..3] = S0..S3 of the quad for activation row x[j]. */
BN_TARGET_DOTPROD
static inline void masks_x4(int32x4_t *a, int32x4_t *b, int32x4_t *c, int32x4_t *d, int8x16_t w,
                            int8x16_t x0, int8x16_t x1, int8x16_t x2, int8x16_t x3)
{
    *a = vdotq_s32(*a, w, x0);
    *b = vdotq_s32(*b, w, x1);
    *c = vdotq_s32(*c, w, x2);
    *d = vdotq_s32(*d, w, x3);
}

BN_TARGET_DOTPROD
static void quad_x4_rp(const int8_t *qd, const int8_t *const x[4], size_t k, int32_t s[4][4])
{
    const int8x16_t m3f = vdupq_n_s8(0x3f), m0f = vdupq_n_s8(0x0f), m03 = vdupq_n_s8(0x03);
    int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int32x4_t c0 = a0, c1 = a0, c2 = a0, c3 = a0, d0 = a0, d1 = a0, d2 = a0, d3 = a0;
    for (size_t j = 0; j < k; j += 16) {
        int8x16_t v = vld1q_s8(qd + j);
        int8x16_t x0 = vld1q_s8(x[0] + j), x1 = vld1q_s8(x[1] + j);
        int8x16_t x2 = vld1q_s8(x[2] + j), x3 = vld1q_s8(x[3] + j);
        masks_x4(&a0, &b0, &c0, &d0, v, x0, x1, x2, x3);
        masks_x4(&a1, &b1, &c1, &d1, vandq_s8(v, m3f), x0, x1, x2, x3);
        masks_x4(&a2, &b2, &c2, &d2, vandq_s8(v, m0f), x0, x1, x2, x3);
        masks_x4(&a3, &b3, &c3, &d3, vandq_s8(v, m03), x0, x1, x2, x3);
    }
    vst1q_s32(s[0], vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3)));
    vst1q_s32(s[1], vpaddq_s32(vpaddq_s32(b0, b1), vpaddq_s32(b2, b3)));
    vst1q_s32(s[2], vpaddq_s32(vpaddq_s32(c0, c1), vpaddq_s32(c2, c3)));
    vst1q_s32(s[3], vpaddq_s32(vpaddq_s32(d0, d1), vpaddq_s32(d2, d3)));
}

/* T of the four rows of a quad from S0..S3 (arithmetic shifts of exact multiples). */
static void quad_sums(const int32_t s[4], int32_t asum, int32_t t[4])
{
    t[0] = (s[0] - s[1]) / 64;
    t[1] = (s[1] - s[2]) / 16 - asum;
    t[2] = (s[2] - s[3]) / 4 - asum;
    t[3] = s[3] - asum;
}

static void rp_matmul(const bn_ternary *w, size_t row_begin, size_t row_end, const int8_t *q,
                      const float *act_scale, size_t n_act, float *y, size_t ldy)
{
    const rp_weights *rw = w->repacked;
    if (!rw || rw->owner != &kernels_rp || rw->k != w->k || rw->m != w->m) {
        bn_neon_dotprod_matmul(w, row_begin, row_end, q, act_scale, n_act, y, ldy);
        return;
    }
    const size_t k = w->k, g_begin = row_begin / 4, g_end = (row_end + 3) / 4;
    const size_t n4 = n_act / 4 * 4;
    /* Prefill, activation rows four at a time, blocked for the caches as the AVX-512 prefill
     * is: the quads go by blocks of about 256 KB, each serving up to act_block activation rows
     * before the next is read, instead of the whole matrix streamed once per four rows. Every
     * output is the same integer and epilogue in any order: y is unchanged. */
    enum {
        act_block = 64,
        weight_block_bytes = 256 * 1024
    };
    const size_t wq = k >= weight_block_bytes ? 1 : weight_block_bytes / k; /* quads per block */
    int32_t sums[act_block];
    for (size_t r0 = 0; r0 < n4; r0 += act_block) {
        const size_t nb = n4 - r0 < act_block ? n4 - r0 : act_block;
        for (size_t a = 0; a < nb; a++)
            sums[a] = bn_neon_sum_s8(q + (r0 + a) * k, k);
        for (size_t gb = g_begin; gb < g_end; gb += wq) {
            const size_t ge = g_end - gb < wq ? g_end : gb + wq;
            for (size_t a0 = 0; a0 < nb; a0 += 4) {
                const size_t r = r0 + a0;
                const int8_t *x[4] = {q + r * k, q + (r + 1) * k, q + (r + 2) * k, q + (r + 3) * k};
                for (size_t g = gb; g < ge; g++) {
                    int32_t s[4][4], t[4];
                    quad_x4_rp(rw->data + g * k, x, k, s);
                    for (size_t j = 0; j < 4; j++) {
                        quad_sums(s[j], sums[a0 + j], t);
                        for (size_t i = 4 * g; i < 4 * g + 4; i++)
                            if (i >= row_begin && i < row_end)
                                y[(r + j) * ldy + i] = bn_neon_epilogue(t[i % 4], act_scale[r + j],
                                                                        w->scale);
                    }
                }
            }
        }
    }
    for (size_t r = n4; r < n_act; r++) {
        const int8_t *x = q + r * k;
        const int32_t asum = bn_neon_sum_s8(x, k);
        for (size_t g = g_begin; g < g_end; g += 3) {
            /* a short last pass repeats its last quad */
            const size_t n = g_end - g < 3 ? g_end - g : 3;
            const size_t g1 = n > 1 ? g + 1 : g, g2 = n > 2 ? g + 2 : g1;
            int32_t s[3][4], t[4];
            quads3_rp(rw->data + g * k, rw->data + g1 * k, rw->data + g2 * k, x, k, s);
            for (size_t h = 0; h < n; h++) {
                quad_sums(s[h], asum, t);
                for (size_t i = 4 * (g + h); i < 4 * (g + h) + 4; i++)
                    if (i >= row_begin && i < row_end)
                        y[r * ldy + i] = bn_neon_epilogue(t[i % 4], act_scale[r], w->scale);
            }
        }
    }
}

static const bn_kernels kernels_rp = {
    .name = "neon-dotprod-rp",
    .row_block = 12,
    .quantize_row = bn_neon_quantize_row,
    .ternary_matmul = rp_matmul,
    .prepare = rp_prepare,
    .release = rp_release,
    .dot_f16 = bn_neon_dot_f16,
    .dot_f16_rows = bn_neon_dot_f16_rows,
    .matvec_f16 = bn_neon_matvec_f16,
    .matvec_i8 = bn_neon_dotprod_matvec_i8,
    .f16_to_f32_row = bn_neon_f16_to_f32_row,
};

/* Automatic where it wins (dispatch.c: dotprod without i8mm). Its copy replaces the file's
 * pages, which the loader releases after each matrix (model.c), so RSS does not grow; the
 * repacking pass runs on every thread at load (README "NEON kernels" has the numbers). */
const bn_kernel_path bn_path_neon_dotprod_rp = {&kernels_rp, bn_neon_has_dotprod, 0};

#endif
