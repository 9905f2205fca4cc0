/* Tensor values and the ternary rule (see weights.h). */
#include "weights.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernels.h"

static float bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float element(const bn_st_tensor *t, uint64_t i)
{
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case BN_ST_F32: {
        float f;
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    case BN_ST_F16: {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        return bn_f16_to_f32(h);
    }
    case BN_ST_BF16: {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        return bf16(h);
    }
    default: return 0.0f;
    }
}

float bn_st_scalar(const bn_st_tensor *t) { return element(t, 0); }

/* permute(): reshape(heads, 2, rows/heads/2, cols).swapaxes(1, 2): output row o of head h
 * holds pair index i, half j -> source row h*2*half + j*half + i */
static uint64_t source_row(const bn_wsrc *s, uint64_t o)
{
    if (!s->perm_heads)
        return o;
    const uint64_t per = s->rows / s->perm_heads, half = per / 2;
    const uint64_t h = o / per, rem = o % per, i = rem / 2, j = rem % 2;
    return h * per + j * half + i;
}

float bn_wsrc_at(const bn_wsrc *s, uint64_t row, uint64_t col)
{
    const uint64_t r = source_row(s, row);
    if (s->packed) {
        const uint64_t prow = s->rows / 4, shift = r / prow;
        const uint8_t b = s->t->data[(r % prow) * s->cols + col];
        return (float)((int)(b >> (2 * shift) & 3) - 1) / s->inv_scale;
    }
    return element(s->t, r * s->cols + col);
}

void bn_wsrc_row(const bn_wsrc *s, uint64_t row, float *out)
{
    if (!s->packed && !s->perm_heads && s->t->dtype == BN_ST_F32) {
        memcpy(out, s->t->data + row * s->cols * 4, s->cols * 4);
        return;
    }
    for (uint64_t c = 0; c < s->cols; c++)
        out[c] = bn_wsrc_at(s, row, c);
}

void bn_trule_plan(const bn_wsrc *s, bool force_absmean, bn_trule *r)
{
    memset(r, 0, sizeof *r);
    double sum = 0.0;
    float mag = 0.0f;
    bool ternary = true;
    /* the permutation moves rows only: statistics over the source order are the same */
    bn_wsrc flat = *s;
    flat.perm_heads = 0;
    for (uint64_t i = 0; i < s->rows; i++)
        for (uint64_t c = 0; c < s->cols; c++) {
            const float a = fabsf(bn_wsrc_at(&flat, i, c));
            sum += (double)a;
            if (a != 0.0f) {
                if (mag == 0.0f)
                    mag = a;
                else if (a != mag)
                    ternary = false;
            }
        }
    r->ternary = ternary;
    if (ternary && !force_absmean) {
        r->scale = mag;
        return;
    }
    r->absmean = true;
    float mean = (float)(sum / (double)(s->rows * s->cols));
    if (!(mean >= 1e-5f))
        mean = 1e-5f;
    r->s = 1.0f / mean;
    r->cast_f16 = !s->packed && s->t->dtype == BN_ST_F16;
    /* every non-zero w' is +-1/s (rounded like the values): the scale if any q is non-zero */
    float any = 0.0f;
    for (uint64_t i = 0; i < s->rows && any == 0.0f; i++)
        for (uint64_t c = 0; c < s->cols; c++) {
            const float w = bn_trule_value(r, bn_wsrc_at(&flat, i, c));
            if (w != 0.0f) {
                any = fabsf(w);
                break;
            }
        }
    r->scale = any;
}

float bn_trule_value(const bn_trule *r, float w)
{
    if (!r->absmean)
        return w;
    float q = rintf(w * r->s); /* round half to even, as torch.round */
    q = q > 1.0f ? 1.0f : q < -1.0f ? -1.0f : q;
    float v = q / r->s;
    if (r->cast_f16)
        v = bn_f16_to_f32(bn_f32_to_f16(v));
    return v;
}

int8_t bn_i2s_code(float w)
{
    if (fabs((double)w) < 1e-6)
        return 0;
    return w > 0.0f ? 1 : -1;
}
