/* Naive forward pass: one token at a time, every step a plain loop over FORMAT.md section 4. */
#include "naive_forward.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h" /* bn_f32_to_f16 / bn_f16_to_f32 only */

static float f16_round(float x) { return bn_f16_to_f32(bn_f32_to_f16(x)); }

/* Dot product. Sequential in float, or in ggml's AVX-512 order (src/EXACTNESS.md "Summation
 * orders"; the build the golden files come from): 64 running sums over whole steps of 64, folded (l, l+32) and
 * (l+16, l+48), then the 16 lanes as a tree (l+8, l+4, l+2, l+1); the rest added in double. */
static float dot(const float *a, const float *b, uint32_t n, int ggml_order)
{
    if (!ggml_order) {
        float acc = 0.0f;
        for (uint32_t i = 0; i < n; i++)
            acc += a[i] * b[i];
        return acc;
    }
    const uint32_t steps = n / 64 * 64;
    double sum = 0.0;
    if (steps) {
        float acc[64] = {0}, lane[16];
        for (uint32_t i = 0; i < steps; i++)
            acc[i % 64] += a[i] * b[i];
        for (int l = 0; l < 16; l++)
            lane[l] = (acc[l] + acc[l + 32]) + (acc[l + 16] + acc[l + 48]);
        for (int w = 8; w >= 1; w /= 2)
            for (int l = 0; l < w; l++)
                lane[l] += lane[l + w];
        sum = lane[0];
    }
    for (uint32_t i = steps; i < n; i++)
        sum += (double)(a[i] * b[i]);
    return (float)sum;
}

/* ggml's AVX-512 expf (ggml_v_expf), one lane: polynomial on the reduced argument. */
static float expf_ggml(float x)
{
    const float z = fmaf(x, 0x1.715476p+0f, 0x1.8p23f), n = z - 0x1.8p23f;
    if (isnan(n))
        return n;
    if (fabsf(n) > 192.0f)
        return n > 0.0f ? INFINITY : 0.0f;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x)), u = b * b;
    const float p = fmaf(
        fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
        u, fmaf(0x1.ffffecp-1f, b, 1.0f));
    return ldexpf(p, (int)n);
}

/* Softmax of a[0..n) in place: max-subtracted exp, sum in double (sequentially, or per 16-lane
 * vector whose lanes are added as a tree), times (float)(1/sum). */
static void softmax(float *a, uint32_t n, int ggml_order)
{
    float max = -INFINITY;
    for (uint32_t j = 0; j < n; j++)
        max = fmaxf(max, a[j]);
    double sum = 0.0;
    for (uint32_t j = 0; j < n; j++)
        a[j] = ggml_order ? expf_ggml(a[j] - max) : expf(a[j] - max);
    if (!ggml_order) {
        for (uint32_t j = 0; j < n; j++)
            sum += a[j];
    } else {
        for (uint32_t j0 = 0; j0 < n; j0 += 16) {
            float lane[16];
            for (uint32_t l = 0; l < 16; l++)
                lane[l] = j0 + l < n ? a[j0 + l] : 0.0f;
            for (int w = 8; w >= 1; w /= 2)
                for (int l = 0; l < w; l++)
                    lane[l] += lane[l + w];
            sum += lane[0];
        }
    }
    for (uint32_t j = 0; j < n; j++)
        a[j] = a[j] * (float)(1.0 / sum);
}

int bn_naive_ternary_at(const uint8_t *packed, uint64_t k, uint64_t r, uint64_t i)
{
    /* flat index -> 128-weight block, then byte j = index % 32 and the bit pair of the
     * quarter (first 32 weights in bits 7..6) */
    const uint64_t flat = r * k + i, block = flat / 128, in = flat % 128;
    const uint8_t byte = packed[block * 32 + in % 32];
    const int code = (byte >> (6 - 2 * (int)(in / 32))) & 3;
    return code - 1;
}

float bn_naive_quantize(const float *x, uint32_t n, int8_t *q)
{
    double amax = 1e-5;
    for (uint32_t i = 0; i < n; i++)
        if (fabs((double)x[i]) > amax)
            amax = fabs((double)x[i]);
    const float s = (float)(127.0 / amax);
    for (uint32_t i = 0; i < n; i++) {
        float v = x[i] * s;
        v = (v + 12582912.0f) - 12582912.0f; /* + 1.5*2^23: round half to even */
        if (v > 127.0f)
            v = 127.0f;
        if (v < -128.0f)
            v = -128.0f;
        q[i] = (int8_t)v;
    }
    return s;
}

/* An I2_S matrix decoded to -1/0/+1 bytes, row after row, with its per-tensor scale. */
typedef struct naive_matrix {
    int8_t *t;
    uint64_t k, m;
    float scale;
} naive_matrix;

/* Decodes tensor NAME straight from the file (not from the model's views, which may be the
 * loader's row-aligned copies): k = ne0 columns, flat layout, scale after the k*m/4 bytes.
 * Once per call of bn_naive_forward: the naive path is meant for small models. */
static int decode(const bn_gguf *g, const char *name, naive_matrix *w)
{
    const bn_gguf_tensor *tt = bn_gguf_find_tensor(g, name);
    if (!tt || tt->type != BN_GGML_I2_S || tt->n_dims != 2)
        return -1;
    w->k = tt->ne[0];
    w->m = tt->ne[1];
    memcpy(&w->scale, (const uint8_t *)tt->data + w->k * w->m / 4, sizeof w->scale);
    if (!(w->t = malloc(w->k * w->m)))
        return -1;
    for (uint64_t r = 0; r < w->m; r++)
        for (uint64_t i = 0; i < w->k; i++)
            w->t[r * w->k + i] = (int8_t)bn_naive_ternary_at(tt->data, w->k, r, i);
    return 0;
}

/* y = W a (FORMAT.md 4.3): integer dot of codes (t + 1 = 0, 1, 2) with q, minus the sum of
 * q, / s, * beta. */
static void ternary(const naive_matrix *w, const float *a, float *y, int8_t *q)
{
    const float s = bn_naive_quantize(a, (uint32_t)w->k, q);
    int32_t sum_q = 0;
    for (uint64_t i = 0; i < w->k; i++)
        sum_q += q[i];
    for (uint64_t r = 0; r < w->m; r++) {
        int32_t d = 0;
        for (uint64_t i = 0; i < w->k; i++)
            d += (w->t[r * w->k + i] + 1) * q[i];
        y[r] = (((float)d - (float)sum_q) / s) * w->scale;
    }
}

static void rmsnorm(float *y, const float *x, const float *w, uint32_t n, float eps)
{
    double sum = 0.0;
    for (uint32_t i = 0; i < n; i++)
        sum += (double)(x[i] * x[i]);
    const float scale = 1.0f / sqrtf((float)(sum / n) + eps);
    for (uint32_t i = 0; i < n; i++)
        y[i] = (x[i] * scale) * w[i];
}

static void rope(float *x, uint32_t n_heads, uint32_t hd, uint32_t pos, float base)
{
    const float theta_scale = powf(base, -2.0f / (float)hd);
    for (uint32_t h = 0; h < n_heads; h++) {
        float *v = x + h * hd;
        float theta = (float)pos;
        for (uint32_t i = 0; i < hd / 2; i++) {
            const float c = cosf(theta), s = sinf(theta);
            const float x0 = v[i], x1 = v[i + hd / 2];
            v[i] = fmaf(x0, c, -(x1 * s));
            v[i + hd / 2] = fmaf(x0, s, x1 * c);
            theta *= theta_scale;
        }
    }
}

int bn_naive_forward(const bn_model *m, const int32_t *tokens, uint32_t n, float *logits,
                     int ggml_order)
{
    const bn_hparams *hp = &m->hp;
    const uint32_t e = hp->n_embd, ff = hp->n_ff, hd = hp->head_dim;
    const uint32_t kvd = hp->n_head_kv * hd, group = hp->n_head / hp->n_head_kv;
    float *x = malloc(e * sizeof *x), *h = malloc(e * sizeof *h), *o = malloc(e * sizeof *o);
    float *q = malloc(e * sizeof *q), *k = malloc(kvd * sizeof *k), *v = malloc(kvd * sizeof *v);
    float *g = malloc(ff * sizeof *g), *u = malloc(ff * sizeof *u);
    const size_t n_pad = ((size_t)n + 31) / 32 * 32;
    float *att = malloc(n_pad * sizeof *att), *col = malloc(n_pad * sizeof *col);
    float *qh = malloc(hd * sizeof *qh);
    int8_t *qa = malloc(ff > e ? ff : e);
    /* caches hold the f16-rounded values, as floats: [layer][pos][kvd] */
    float *kc = malloc((size_t)hp->n_layer * n * kvd * sizeof *kc);
    float *vc = malloc((size_t)hp->n_layer * n * kvd * sizeof *vc);
    naive_matrix *dec = calloc(7 * (size_t)hp->n_layer, sizeof *dec);
    float *embd = malloc((size_t)hp->n_vocab * e * sizeof *embd);
    int rc = -1;
    if (!dec || !embd)
        goto out;
    static const char *const names[7] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                         "ffn_gate", "ffn_up", "ffn_down"};
    for (uint32_t l = 0; l < hp->n_layer; l++)
        for (int i = 0; i < 7; i++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%u.%s.weight", l, names[i]);
            if (decode(m->gguf, name, &dec[7 * (size_t)l + i]))
                goto out;
        }
    for (size_t r = 0; r < hp->n_vocab; r++) {
        const uint8_t *row = m->token_embd.data + r * m->token_embd.row_bytes;
        if (m->token_embd.type == BN_GGML_F16)
            bn_f16_to_f32_row((const uint16_t *)(const void *)row, embd + r * e, e);
        else
            bn_q8_0_dequant_row(row, embd + r * e, e);
    }
    if (!x || !h || !o || !q || !k || !v || !g || !u || !att || !col || !qh || !qa || !kc || !vc)
        goto out;
    for (uint32_t p = 0; p < n; p++)
        if (tokens[p] < 0 || (uint32_t)tokens[p] >= hp->n_vocab)
            goto out;

    for (uint32_t p = 0; p < n; p++) {
        memcpy(x, embd + (size_t)tokens[p] * e, e * sizeof *x);
        for (uint32_t l = 0; l < hp->n_layer; l++) {
            const bn_layer *L = &m->layers[l];
            const naive_matrix *T = dec + 7 * (size_t)l;
            float *kl = kc + (size_t)l * n * kvd, *vl = vc + (size_t)l * n * kvd;
            rmsnorm(h, x, L->attn_norm, e, hp->rms_eps);
            ternary(&T[0], h, q, qa);
            ternary(&T[1], h, k, qa);
            ternary(&T[2], h, v, qa);
            rope(q, hp->n_head, hd, p, hp->rope_theta);
            rope(k, hp->n_head_kv, hd, p, hp->rope_theta);
            for (uint32_t i = 0; i < kvd; i++) {
                kl[(size_t)p * kvd + i] = f16_round(k[i]);
                vl[(size_t)p * kvd + i] = f16_round(v[i]);
            }
            for (uint32_t hh = 0; hh < hp->n_head; hh++) {
                const uint32_t kvh = hh / group;
                for (uint32_t d = 0; d < hd; d++)
                    qh[d] = f16_round(q[hh * hd + d]);
                for (uint32_t j = 0; j <= p; j++)
                    att[j] = dot(qh, kl + (size_t)j * kvd + kvh * hd, hd, ggml_order) *
                             (1.0f / sqrtf((float)hd));
                softmax(att, p + 1, ggml_order);
                /* the reference's probs.V runs over p+1 rounded up to 32 cells of zeros */
                const uint32_t len = ggml_order ? (p + 1 + 31) / 32 * 32 : p + 1;
                for (uint32_t j = 0; j < len; j++)
                    att[j] = j <= p ? f16_round(att[j]) : 0.0f;
                for (uint32_t d = 0; d < hd; d++) {
                    for (uint32_t j = 0; j < len; j++)
                        col[j] = j <= p ? vl[(size_t)j * kvd + kvh * hd + d] : 0.0f;
                    o[hh * hd + d] = dot(att, col, len, ggml_order);
                }
            }
            rmsnorm(o, o, L->attn_sub_norm, e, hp->rms_eps);
            ternary(&T[3], o, h, qa);
            for (uint32_t i = 0; i < e; i++)
                x[i] += h[i];

            rmsnorm(h, x, L->ffn_norm, e, hp->rms_eps);
            ternary(&T[4], h, g, qa);
            ternary(&T[5], h, u, qa);
            for (uint32_t i = 0; i < ff; i++) {
                if (m->arch->act == BN_ACT_SILU) { /* "bitnet" (1bitLLM large / 3B) */
                    g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
                } else {
                    const float r = g[i] > 0.0f ? g[i] : 0.0f;
                    g[i] = (r * r) * u[i];
                }
            }
            rmsnorm(g, g, L->ffn_sub_norm, ff, hp->rms_eps);
            ternary(&T[6], g, h, qa);
            for (uint32_t i = 0; i < e; i++)
                x[i] += h[i];
        }
        rmsnorm(h, x, m->output_norm, e, hp->rms_eps);
        for (uint32_t i = 0; i < e; i++)
            h[i] = f16_round(h[i]);
        for (uint32_t t = 0; t < hp->n_vocab; t++)
            logits[(size_t)p * hp->n_vocab + t] = dot(embd + (size_t)t * e, h, e, ggml_order);
    }
    rc = 0;
out:
    if (dec)
        for (size_t i = 0; i < 7 * (size_t)hp->n_layer; i++)
            free(dec[i].t);
    free(dec);
    free(embd);
    free(x);
    free(h);
    free(o);
    free(q);
    free(k);
    free(v);
    free(g);
    free(u);
    free(att);
    free(col);
    free(qh);
    free(qa);
    free(kc);
    free(vc);
    return rc;
}
