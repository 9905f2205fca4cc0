/* A deliberately naive float implementation of the BitNet b1.58 forward pass, written from
 * FORMAT.md section 4 with straight loops: its own I2_S decoding, its own activation
 * quantization, sequential sums, libm expf, no kernel table, no threads, no cache layout
 * tricks. It takes the same quantization and rounding steps as the reference's decode path
 * (int8 activations, f16 KV cache, q / probabilities / LM-head input rounded to f16), so the
 * optimized forward pass must agree with it up to float summation order. The ternary weights
 * are decoded from the file's own tensors (the flat I2_S layout, any row length), not from the
 * loader's views; the FFN activation follows the architecture (ReLU^2 or, for "bitnet", SiLU
 * with libm expf: compare that one with a tolerance). */
#ifndef BN_NAIVE_FORWARD_H
#define BN_NAIVE_FORWARD_H

#include <stdint.h>

#include "model.h"

/* Evaluates tokens[0..n) one at a time from position 0 and writes n rows of n_vocab logits.
 * ggml_order = 0: sequential float sums and libm expf, the plainest reading of the math;
 * ggml_order = 1: dot products, exp and softmax sums in the order and form of the reference's
 * AVX-512 build (src/EXACTNESS.md; FORMAT.md 4.4-4.8), which the scalar kernel path
 * reproduces bit for bit.
 * 0 on success, -1 when out of memory or a token id is out of range. */
int bn_naive_forward(const bn_model *m, const int32_t *tokens, uint32_t n, float *logits,
                     int ggml_order);

/* The pieces, exposed for unit tests. */
/* int8 quantization of x (FORMAT.md 4.3 steps 1-3); returns the scale s. */
float bn_naive_quantize(const float *x, uint32_t n, int8_t *q);
/* Ternary weight (-1, 0, +1) at row r, column i of an I2_S matrix with k columns. */
int bn_naive_ternary_at(const uint8_t *packed, uint64_t k, uint64_t r, uint64_t i);

#endif
