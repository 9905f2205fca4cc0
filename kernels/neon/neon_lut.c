/* Path "neon-lut": a lookup-table ternary matmul in the spirit of T-MAC / TL1 (plain Armv8.0
 * NEON, TBL), on weights repacked at load time by prepare().
 *
 * For every pair of activations (a0, a1) = (q[2p], q[2p+1]) the kernel tabulates the 16 sums
 * e(i) = (i/4 - 1)*a0 + (i%4 - 1)*a1, i = 4*c0 + c1 with c0, c1 the two 2-bit codes. A 4-bit
 * index per weight pair then selects its partial sum with one TBL for 16 rows at once. The sums
 * need up to 10 bits, and TBL returns bytes, so each table is split exactly in two:
 * e = 32*hi + lo with lo = e & 31 in [0, 31] and hi = e >> 5 in [-16, 15]; both parts add up
 * in bytes for 8 pairs without overflow, then widen to 16 bits (flushed to 32 bits every 2048
 * inputs). T = 32*sum(hi) + sum(lo) is exact, code 3 included (it tabulates as +2 like the
 * scalar twin).
 *
 * Repacked weights (same size as the file's: 2 bits per weight), blocks of 16 rows:
 *
 *   block B (rows 16B..16B+15, missing rows padded with zero weights), K/4 groups of 16 bytes:
 *   group P, byte r = idx(row 16B+r, pair 2P) | idx(row 16B+r, pair 2P+1) << 4
 *
 * Tables (per activation row, on the stack): pair p at 32p: 16 bytes lo, 16 bytes hi.
 * Without prepare() (or for K > LUT_MAX_K) the path computes with the Armv8.0 in-place kernel. */
#include "neon_common.h"
#include "kernels_registry.h"

#include <stdlib.h>
#include <string.h>

enum {
    LUT_ROWS = 16,
    LUT_MAX_K = 8192,       /* tables on the stack: K/2 pairs x 32 bytes = 128 KB at most */
    LUT_CHUNK_GROUPS = 512, /* groups (4 inputs) per 16-bit flush: 2048 inputs */
};

typedef struct lut_weights {
    const void *owner; /* &kernels_lut: tells this layout from another path's */
    size_t k, m;
    uint8_t *idx; /* ceil(m/16) blocks of k/4 x 16 bytes */
} lut_weights;

static const bn_kernels kernels_lut;

/* ---------------------------------------------------------------- repacking */

/* Bytes j..j+3 of a 128-block, field at bit `shift`: the codes of four consecutive weights
 * w0..w3 -> idx(w0,w1) | idx(w2,w3) << 4 = c0<<2 | c1 | c2<<6 | c3<<4. One multiply moves the
 * four 2-bit codes (bytes 0..3 of x) to bits 26, 24, 30, 28 with no overlapping terms. */
static uint8_t group_index(const uint8_t *bytes, int shift)
{
    uint32_t x;
    memcpy(&x, bytes, 4);
    uint64_t c = (x >> shift) & 0x03030303u;
    uint64_t prod = c * ((1ull << 26) + (1ull << 16) + (1ull << 14) + (1ull << 4));
    return (uint8_t)(prod >> 24);
}

static int lut_prepare(bn_ternary *w)
{
    const size_t k = w->k, m = w->m, groups = k / 4, nblk = (m + LUT_ROWS - 1) / LUT_ROWS;
    lut_weights *lw = malloc(sizeof *lw);
    uint8_t *idx = malloc(nblk * groups * LUT_ROWS);
    if (!lw || !idx) {
        free(lw);
        free(idx);
        return -1;
    }
    /* zero weights (code 1 twice: index 5) in the padding rows */
    memset(idx, 0x55, nblk * groups * LUT_ROWS);
    for (size_t i = 0; i < m; i++) {
        const uint8_t *row = w->packed + i * (k / 4);
        uint8_t *dst = idx + (i / LUT_ROWS) * groups * LUT_ROWS + i % LUT_ROWS;
        for (size_t b = 0; b < k / 128; b++)
            for (int f = 0; f < 4; f++)
                for (int j = 0; j < 32; j += 4) {
                    const size_t g = 32 * b + 8 * (size_t)f + (size_t)j / 4;
                    dst[g * LUT_ROWS] = group_index(row + 32 * b + j, 6 - 2 * f);
                }
    }
    lw->owner = &kernels_lut;
    lw->k = k;
    lw->m = m;
    lw->idx = idx;
    w->repacked = lw;
    return 0;
}

static void lut_release(bn_ternary *w)
{
    lut_weights *lw = w->repacked;
    if (lw && lw->owner == &kernels_lut) {
        free(lw->idx);
        free(lw);
        w->repacked = NULL;
    }
}

/* ---------------------------------------------------------------- kernel */

/* The 32-byte split table of every pair of x (k inputs). */
static void lut_tables(const int8_t *x, size_t k, uint8_t *tab)
{
    static const int16_t c0lo[8] = {-1, -1, -1, -1, 0, 0, 0, 0};
    static const int16_t c0hi[8] = {1, 1, 1, 1, 2, 2, 2, 2};
    static const int16_t c1[8] = {-1, 0, 1, 2, -1, 0, 1, 2};
    const int16x8_t vc0lo = vld1q_s16(c0lo), vc0hi = vld1q_s16(c0hi), vc1 = vld1q_s16(c1);
    const int16x8_t m31 = vdupq_n_s16(31);
    for (size_t p = 0; p < k / 2; p++) {
        const int16_t a0 = x[2 * p], a1 = x[2 * p + 1];
        int16x8_t e0 = vmlaq_n_s16(vmulq_n_s16(vc0lo, a0), vc1, a1); /* entries 0..7 */
        int16x8_t e1 = vmlaq_n_s16(vmulq_n_s16(vc0hi, a0), vc1, a1); /* entries 8..15 */
        int8x16_t lo = vcombine_s8(vmovn_s16(vandq_s16(e0, m31)), vmovn_s16(vandq_s16(e1, m31)));
        int8x16_t hi = vcombine_s8(vmovn_s16(vshrq_n_s16(e0, 5)), vmovn_s16(vshrq_n_s16(e1, 5)));
        vst1q_s8((int8_t *)tab + 32 * p, lo);
        vst1q_s8((int8_t *)tab + 32 * p + 16, hi);
    }
}

/* T for the 16 rows of one block: out[r] = sum over k of (c-1)*x. */
static void lut_block(const uint8_t *idx, const uint8_t *tab, size_t groups, int32_t out[16])
{
    const uint8x16_t m15 = vdupq_n_u8(15);
    int32x4_t t[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
    for (size_t g0 = 0; g0 < groups; g0 += LUT_CHUNK_GROUPS) {
        const size_t g1 = g0 + LUT_CHUNK_GROUPS < groups ? g0 + LUT_CHUNK_GROUPS : groups;
        uint16x8_t lo_a = vdupq_n_u16(0), lo_b = lo_a;
        int16x8_t hi_a = vdupq_n_s16(0), hi_b = hi_a;
        for (size_t g = g0; g < g1; g += 4) { /* groups is a multiple of 32 */
            uint8x16_t lo = vdupq_n_u8(0);
            int8x16_t hi = vdupq_n_s8(0);
            for (size_t j = g; j < g + 4; j++) {
                uint8x16_t v = vld1q_u8(idx + 16 * j);
                uint8x16_t i0 = vandq_u8(v, m15), i1 = vshrq_n_u8(v, 4);
                const uint8_t *tj = tab + 64 * j;
                lo = vaddq_u8(lo, vqtbl1q_u8(vld1q_u8(tj), i0));
                hi = vaddq_s8(hi, vqtbl1q_s8(vld1q_s8((const int8_t *)tj + 16), i0));
                lo = vaddq_u8(lo, vqtbl1q_u8(vld1q_u8(tj + 32), i1));
                hi = vaddq_s8(hi, vqtbl1q_s8(vld1q_s8((const int8_t *)tj + 48), i1));
            }
            lo_a = vaddw_u8(lo_a, vget_low_u8(lo));
            lo_b = vaddw_high_u8(lo_b, lo);
            hi_a = vaddw_s8(hi_a, vget_low_s8(hi));
            hi_b = vaddw_high_s8(hi_b, hi);
        }
        /* 32*hi + lo into 32 bits */
        t[0] = vaddq_s32(t[0], vshll_n_s16(vget_low_s16(hi_a), 5));
        t[1] = vaddq_s32(t[1], vshll_high_n_s16(hi_a, 5));
        t[2] = vaddq_s32(t[2], vshll_n_s16(vget_low_s16(hi_b), 5));
        t[3] = vaddq_s32(t[3], vshll_high_n_s16(hi_b, 5));
        t[0] = vreinterpretq_s32_u32(vaddw_u16(vreinterpretq_u32_s32(t[0]), vget_low_u16(lo_a)));
        t[1] = vreinterpretq_s32_u32(vaddw_high_u16(vreinterpretq_u32_s32(t[1]), lo_a));
        t[2] = vreinterpretq_s32_u32(vaddw_u16(vreinterpretq_u32_s32(t[2]), vget_low_u16(lo_b)));
        t[3] = vreinterpretq_s32_u32(vaddw_high_u16(vreinterpretq_u32_s32(t[3]), lo_b));
    }
    for (int i = 0; i < 4; i++)
        vst1q_s32(out + 4 * i, t[i]);
}

static void lut_matmul(const bn_ternary *w, size_t row_begin, size_t row_end, const int8_t *q,
                       const float *act_scale, size_t n_act, float *y, size_t ldy)
{
    const lut_weights *lw = w->repacked;
    if (!lw || lw->owner != &kernels_lut || lw->k != w->k || lw->m != w->m || w->k > LUT_MAX_K) {
        bn_path_neon.kernels->ternary_matmul(w, row_begin, row_end, q, act_scale, n_act, y, ldy);
        return;
    }
    const size_t k = w->k, groups = k / 4;
    uint8_t tab[LUT_MAX_K / 2 * 32];
    for (size_t r = 0; r < n_act; r++) {
        lut_tables(q + r * k, k, tab);
        for (size_t blk = row_begin / LUT_ROWS; blk * LUT_ROWS < row_end; blk++) {
            int32_t t[LUT_ROWS];
            lut_block(lw->idx + blk * groups * LUT_ROWS, tab, groups, t);
            const size_t i0 = blk * LUT_ROWS > row_begin ? blk * LUT_ROWS : row_begin;
            const size_t i1 = (blk + 1) * LUT_ROWS < row_end ? (blk + 1) * LUT_ROWS : row_end;
            for (size_t i = i0; i < i1; i++)
                y[r * ldy + i] = bn_neon_epilogue(t[i - blk * LUT_ROWS], act_scale[r], w->scale);
        }
    }
}

static const bn_kernels kernels_lut = {
    .name = "neon-lut",
    .row_block = LUT_ROWS,
    .quantize_row = bn_neon_quantize_row,
    .ternary_matmul = lut_matmul,
    .prepare = lut_prepare,
    .release = lut_release,
    .dot_f16 = bn_neon_dot_f16,
    .dot_f16_rows = bn_neon_dot_f16_rows,
    .matvec_f16 = bn_neon_matvec_f16,
    .matvec_i8 = bn_neon_matvec_i8,
    .f16_to_f32_row = bn_neon_f16_to_f32_row,
};

static int lut_supported(void) { return 1; }

/* Manual only: it needs prepare() at load time and does not beat SDOT (README "NEON kernels"). */
const bn_kernel_path bn_path_neon_lut = {&kernels_lut, lut_supported, 1};
