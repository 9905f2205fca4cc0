/* One tensor's values as the reference converter sees them, and the ternary rule.
 *
 * A source is a safetensors tensor read as float32 (bf16/f16/f32 exactly; the packed 2-bit
 * form as (code - 1) / weight_scale in f32, the unpacking of bitnet.cpp's llama converter and
 * of transformers' BitNet: packed row r, bit pair s holds logical row s * rows/4 + r), with an
 * optional Q/K row permutation for rotary embeddings (the reference's permute(): per head, the
 * two halves of the rotary dimensions interleaved).
 *
 * The ternary rule for a linear weight W (n values):
 *  - "keep" when W is already ternary (every non-zero |w| equal, as published 1.58-bit weights
 *    once unpacked): codes sign(w), scale that magnitude; exactly what llama-quantize I2_S
 *    writes for them (codes sign(w), |w| < 1e-6 -> 0, scale max|w|);
 *  - "absmean" otherwise, and always for the "bitnet" family (its converter applies it to every
 *    q/k/v/o/gate/up/down): s = 1 / max(mean|W|, 1e-5) in f32, with mean|W| summed in double
 *    and rounded to f32 once (torch's f32 mean differs in the last bit between CPU kernels);
 *    q = clamp(round_half_even(w * s), -1, 1); w' = q / s in f32, rounded to f16 when the source
 *    is f16 (the converter casts back to the source dtype). I2_S then stores codes sign(w') and
 *    scale max|w'|. Never the reference llama path's sign(w) * max|w| of full-precision weights. */
#ifndef BN_CONVERT_WEIGHTS_H
#define BN_CONVERT_WEIGHTS_H

#include <stdbool.h>
#include <stdint.h>

#include "safetensors.h"

typedef struct bn_wsrc {
    const bn_st_tensor *t;
    float inv_scale; /* packed: weight_scale as f32 (w = (code - 1) / inv_scale) */
    bool packed;
    uint64_t rows, cols; /* logical PyTorch shape ([n, 1] for 1-D) */
    uint32_t perm_heads; /* 0 = no permutation */
} bn_wsrc;

/* value of logical element (row, col), after the permutation */
float bn_wsrc_at(const bn_wsrc *s, uint64_t row, uint64_t col);
/* a whole logical row into out[cols] */
void bn_wsrc_row(const bn_wsrc *s, uint64_t row, float *out);
/* a scalar tensor (weight_scale) as f32 */
float bn_st_scalar(const bn_st_tensor *t);

typedef struct bn_trule {
    bool ternary;  /* the keep rule applies */
    bool absmean;  /* the absmean rule applies */
    float s;       /* absmean: 1 / max(mean|W|, 1e-5) */
    bool cast_f16; /* absmean: w' rounded to f16 */
    float scale;   /* the I2_S scale: max|w'| */
} bn_trule;

/* Pass over W: decides the rule (force_absmean for the bitnet family) and the scale. */
void bn_trule_plan(const bn_wsrc *s, bool force_absmean, bn_trule *r);
/* w' of one value under the rule (the keep rule returns w) */
float bn_trule_value(const bn_trule *r, float w);
/* the I2_S code (-1, 0, +1) of w' as llama-quantize derives it */
int8_t bn_i2s_code(float w);

#endif
