/* Q8_0 rows (ggml's block of 32 int8 with one f16 scale), for LM heads and embeddings that
 * llama-quantize stores as Q8_0 (n_embd not a multiple of 256, e.g. bitnet_b1_58-3B).
 *
 *   block = 34 bytes:  [d: f16][qs: 32 x int8]      value i = qs[i] * d
 *
 * Plain C shared by every kernel path (like the f16 conversions), so all paths agree bit for
 * bit. The arithmetic is the reference's x86 build (ggml-quants.c, AVX2/AVX-512 paths): the
 * activation row is quantized with round-to-nearest-even, and the dot product keeps 8 float
 * lanes, lane l accumulating fma(dx*dy, sum of the 4 int products 4l..4l+3, acc_l) over the
 * blocks, then adds the lanes as hsum_float_8 does: ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)). */
#include "kernels.h"

#include <math.h>
#include <string.h>

static float block_d(const uint8_t *b)
{
    uint16_t h;
    memcpy(&h, b, 2);
    return bn_f16_to_f32(h);
}

void bn_q8_0_dequant_row(const uint8_t *blocks, float *y, size_t n)
{
    for (size_t i = 0; i < n / BN_QK8_0; i++, blocks += BN_Q8_0_BYTES) {
        const float d = block_d(blocks);
        const int8_t *qs = (const int8_t *)(blocks + 2);
        for (size_t j = 0; j < BN_QK8_0; j++)
            y[i * BN_QK8_0 + j] = (float)qs[j] * d;
    }
}

void bn_q8_0_quantize_row(const float *x, uint8_t *blocks, size_t n)
{
    for (size_t i = 0; i < n / BN_QK8_0; i++, x += BN_QK8_0, blocks += BN_Q8_0_BYTES) {
        float amax = 0.0f;
        for (size_t j = 0; j < BN_QK8_0; j++)
            amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        const uint16_t h = bn_f32_to_f16(d);
        memcpy(blocks, &h, 2);
        for (size_t j = 0; j < BN_QK8_0; j++) {
            float v = nearbyintf(x[j] * id); /* default rounding mode: ties to even */
            v = v > 127.0f ? 127.0f : v < -128.0f ? -128.0f : v;
            blocks[2 + j] = (uint8_t)(int8_t)v;
        }
    }
}

float bn_q8_0_dot(const uint8_t *a, const uint8_t *b, size_t n)
{
    float acc[8] = {0};
    for (size_t i = 0; i < n / BN_QK8_0; i++, a += BN_Q8_0_BYTES, b += BN_Q8_0_BYTES) {
        const float d = block_d(a) * block_d(b);
        const int8_t *qa = (const int8_t *)(a + 2), *qb = (const int8_t *)(b + 2);
        for (int l = 0; l < 8; l++) {
            int32_t s = 0;
            for (int j = 4 * l; j < 4 * l + 4; j++)
                s += (int32_t)qa[j] * qb[j];
            acc[l] = fmaf(d, (float)s, acc[l]);
        }
    }
    const float r0 = acc[4] + acc[0], r1 = acc[5] + acc[1], r2 = acc[6] + acc[2],
                r3 = acc[7] + acc[3];
    return (r0 + r2) + (r1 + r3);
}

void bn_q8_0_matvec(const uint8_t *w, size_t k, size_t row_begin, size_t row_end, const uint8_t *xq,
                    float *y)
{
    const size_t row_bytes = k / BN_QK8_0 * BN_Q8_0_BYTES;
    for (size_t i = row_begin; i < row_end; i++)
        y[i] = bn_q8_0_dot(w + i * row_bytes, xq, k);
}
