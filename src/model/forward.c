/* The forward pass (FORMAT.md section 4), read top to bottom in one layer function per family:
 * layer_forward_bitnet() (sub-norms; "bitnet-b1.58" and "bitnet") and layer_forward_llama()
 * ("llama": Llama3-8B-1.58, Falcon3). The architecture table in model.c picks the FFN
 * activation, the RoPE pairing and the LM head.
 *
 * A batch of n_tok tokens is a set of rows: x[t] is the residual stream of token t. Ternary
 * matmuls take all rows at once (matrix x matrix in prefill), split over threads by output
 * rows; attention is split by (KV head, token); the LM head by vocabulary rows; the per-token
 * steps between them (norm and quantization, RoPE and the KV writes, FFN activation, residual)
 * by token rows. Which thread
 * computes which output never changes any arithmetic, so logits do not depend on the number
 * of threads, and every token takes the reference's decode-path precision (FORMAT.md 4.8), so
 * they do not depend on the batch size either. src/EXACTNESS.md explains every rounding and
 * summation order reproduced here.
 *
 * KV cache (f16, as the reference's default):
 *   K: [n_layer][n_ctx][kv_dim]       one row per position
 *   V: [n_layer][kv_dim][n_ctx_pad]   transposed, as ggml stores it: probs.V is then one
 *                                     f16 dot product per output value, over positions
 * n_ctx_pad = n_ctx rounded up to 32: the reference attends over the occupied cells rounded up
 * to 32 (FORMAT.md 5), and the length of that dot product decides its summation order
 * (EXACTNESS.md "Summation orders"). */
#include "forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__clang__)
/* The RoPE and exp formulas below spell out exactly which operations are fused (fmaf). */
#pragma STDC FP_CONTRACT OFF
#endif

enum {
    KV_PAD = 32,
    MAX_CTX = 1u << 20
};

struct bn_context {
    const bn_model *m;
    const bn_kernels *kern;
    /* kern's optional entries, or their scalar definitions where the path has none (resolved
     * once here rather than at every call in the loops) */
    void (*to_f16)(const float *x, uint16_t *y, size_t n);
    void (*to_f32)(const uint16_t *x, float *y, size_t n);
    void (*softmax)(float *a, size_t n);
    void (*silu_mul)(float *restrict g, const float *restrict u, size_t n);
    bn_threadpool *tp;
    int n_threads;
    uint32_t n_ctx, n_ctx_pad, n_batch, pos;
    uint32_t kv_dim;   /* n_head_kv * head_dim */
    float theta_scale; /* powf(rope_theta, -2/head_dim) */
    float kq_scale;    /* 1/sqrtf(head_dim) */

    uint16_t *k_cache, *v_cache; /* layout in the header comment */

    /* one row per token of the batch */
    float *x;       /* [n_batch][n_embd] residual stream */
    float *xb;      /* [n_batch][n_embd] normed input / attention output */
    float *xb2;     /* [n_batch][n_embd] projection output */
    float *q;       /* [n_batch][n_embd] */
    float *k, *v;   /* [n_batch][kv_dim] */
    float *hg, *hu; /* [n_batch][n_ff] gate, up */
    int8_t *qact;   /* [n_batch][max(n_embd, n_ff rounded up to 128)] int8 activations */
    float *qscale;  /* [n_batch] their scales */
    float *rope;    /* [n_batch][head_dim]: cos, sin of each pair */
    uint8_t *lm_in; /* [n_batch][lm_in_bytes] LM-head input: f16, or Q8_0 blocks */
    size_t lm_in_bytes;

    /* screened LM head (lm_head.h): NULL unless the model has a compact copy */
    bn_lm_screen *screen;
    const bn_lm_request *lm_req; /* NULL: full head */
    float *xf_head;              /* [n_embd] the f16 LM-head input widened */
    size_t lm_rows;              /* rows computed exactly by the last LM head */
    int lm_screened;

    /* per thread, for attention */
    float *att;      /* [n_threads][group][n_ctx_pad] scores, then probabilities (f16 values) */
    uint16_t *att16; /* [n_threads][n_ctx_pad] probabilities in f16 */
    uint16_t *q16;   /* [n_threads][head_dim] query in f16 */
    float *qf;       /* [n_threads][group][head_dim] queries (f16 values); group = query heads
                        per KV head */
};

/* ------------------------------------------------------------------ element-wise math */

/* Squares summed in double, scale in float, then the weight (EXACTNESS.md "RMSNorm and RoPE";
 * FORMAT.md 4.2). In place allowed. */
static void rmsnorm_scale(float *y, const float *x, const float *w, size_t n, double sum, float eps)
{
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * scale;
    for (size_t i = 0; i < n; i++)
        y[i] = y[i] * w[i];
}

static void rmsnorm(float *y, const float *x, const float *w, size_t n, float eps)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += (double)(x[i] * x[i]);
    rmsnorm_scale(y, x, w, n, sum, eps);
}

/* rmsnorm of n_rows rows, n apart. Each row's squares are added in rmsnorm's order (the sum
 * is not associative), but four rows are summed side by side, so four chains of dependent
 * double additions overlap instead of one waiting on each addition's latency. */
static void rmsnorm_rows(float *y, const float *x, const float *w, size_t n, size_t n_rows,
                         float eps)
{
    size_t r = 0;
    for (; r + 4 <= n_rows; r += 4) {
        const float *x0 = x + r * n, *x1 = x0 + n, *x2 = x1 + n, *x3 = x2 + n;
        double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
        for (size_t i = 0; i < n; i++) {
            s0 += (double)(x0[i] * x0[i]);
            s1 += (double)(x1[i] * x1[i]);
            s2 += (double)(x2[i] * x2[i]);
            s3 += (double)(x3[i] * x3[i]);
        }
        const double sums[4] = {s0, s1, s2, s3};
        for (size_t a = 0; a < 4; a++)
            rmsnorm_scale(y + (r + a) * n, x + (r + a) * n, w, n, sums[a], eps);
    }
    for (; r < n_rows; r++)
        rmsnorm(y + r * n, x + r * n, w, n, eps);
}

/* cos/sin of the head_dim/2 RoPE angles at position p (EXACTNESS.md "RMSNorm and RoPE";
 * FORMAT.md 4.4.3): theta_0 = p, then repeated float multiplication by theta_scale, libm
 * cosf/sinf. */
static void rope_angles(float *cs, uint32_t p, uint32_t head_dim, float theta_scale)
{
    float theta = (float)p;
    for (uint32_t i = 0; i < head_dim / 2; i++) {
        cs[2 * i] = cosf(theta);
        cs[2 * i + 1] = sinf(theta);
        theta *= theta_scale;
    }
}

/* Rotates pair i of each of n_heads heads by angle i: NEOX pairs (x[i], x[i + head_dim/2]),
 * NORM pairs (x[2i], x[2i+1]); both with the reference's fused forms
 * x0*c - x1*s = fma(x0, c, -(x1*s)) and x0*s + x1*c = fma(x0, s, x1*c). */
static void rope_apply(float *x, uint32_t n_heads, uint32_t head_dim, const float *cs,
                       bn_rope_style style)
{
    const uint32_t half = head_dim / 2;
    const uint32_t stride = style == BN_ROPE_NEOX ? 1 : 2, other = style == BN_ROPE_NEOX ? half : 1;
    for (uint32_t h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        for (uint32_t i = 0; i < half; i++) {
            const float c = cs[2 * i], s = cs[2 * i + 1];
            float *p0 = v + i * stride, *p1 = p0 + other;
            const float x0 = *p0, x1 = *p1;
            *p0 = fmaf(x0, c, -(x1 * s));
            *p1 = fmaf(x0, s, x1 * c);
        }
    }
}

/* g = relu(g)^2 * u. relu by clearing negative numbers' bits (-0 and negatives become +0,
 * exactly as `g > 0 ? g : 0`): compilers do not vectorise that comparison (it may trap), and
 * its branch is mispredicted half the time. */
static void relu2_mul(float *restrict g, const float *restrict u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int32_t b;
        memcpy(&b, &g[i], sizeof b);
        b &= ~(b >> 31);
        float r;
        memcpy(&r, &b, sizeof r);
        g[i] = (r * r) * u[i];
    }
}

/* ------------------------------------------------------------------ parallel work */

/* Runs a job split by token rows: on the pool for a batch, on the calling thread for a single
 * row (decode), where the other shares would be empty and waking the workers costs more than
 * the work. */
static void run_rows(const bn_context *c, uint32_t n_tok, bn_parallel_fn fn, void *arg)
{
    if (n_tok > 1)
        bn_threadpool_run(c->tp, fn, arg);
    else
        fn(arg, 0, 1);
}

/* Up to three ternary matmuls sharing one quantized input (Q/K/V, or gate/up). */
typedef struct matmul_job {
    const bn_kernels *kern;
    const int8_t *q;
    const float *scale;
    size_t n_act;
    int n;
    const bn_ternary *w[3];
    float *y[3];
} matmul_job;

static void matmul_worker(void *arg, int ith, int nth)
{
    const matmul_job *job = arg;
    for (int i = 0; i < job->n; i++) {
        size_t b, e;
        bn_split_range(job->w[i]->m, job->kern->row_block, ith, nth, &b, &e);
        if (b < e)
            job->kern->ternary_matmul(job->w[i], b, e, job->q, job->scale, job->n_act, job->y[i],
                                      job->w[i]->m);
    }
}

/* The matmuls' input: rows t < n_tok of x (length k) to int8 (c->qact, c->qscale), with norm
 * first x[t] = rmsnorm(from[t]) * norm (from == x allowed). Split over the threads by rows, so
 * the norms and quantizations of a prompt do not run on one thread while the others wait.
 * The weights' rows may be longer than k (w_down of a model whose n_ff is not a multiple of
 * 128, padded with zero weights at load: model.c pad_rows): each int8 row then takes kq values,
 * the k real ones (their scale from those alone, as the model's math wants) and zeros after. */
typedef struct input_job {
    bn_context *c;
    float *x;
    const float *from, *norm;
    size_t k, kq;
    uint32_t n_tok;
} input_job;

static void input_worker(void *arg, int ith, int nth)
{
    const input_job *job = arg;
    bn_context *c = job->c;
    const size_t k = job->k, kq = job->kq;
    size_t b, e;
    bn_split_range(job->n_tok, 1, ith, nth, &b, &e);
    if (b >= e)
        return;
    if (job->norm)
        rmsnorm_rows(job->x + b * k, job->from + b * k, job->norm, k, e - b, c->m->hp.rms_eps);
    for (size_t t = b; t < e; t++) {
        int8_t *q = c->qact + t * kq;
        c->qscale[t] = c->kern->quantize_row(job->x + t * k, k, q);
        memset(q + k, 0, kq - k);
    }
}

/* Prepares the input (input_job: norm is NULL when x is used as it is), then runs the matmuls
 * on it. */
static void matmuls(bn_context *c, float *x, const float *from, const float *norm, size_t k,
                    uint32_t n_tok, int n, const bn_ternary *w0, float *y0, const bn_ternary *w1,
                    float *y1, const bn_ternary *w2, float *y2)
{
    input_job in = {c, x, from, norm, k, w0->k, n_tok};
    run_rows(c, n_tok, input_worker, &in);
    matmul_job job = {c->kern, c->qact, c->qscale, n_tok, n, {w0, w1, w2}, {y0, y1, y2}};
    bn_threadpool_run(c->tp, matmul_worker, &job);
}

typedef struct attn_job {
    bn_context *c;
    uint32_t il, n_tok, pos0;
    uint32_t heads_per_item; /* query heads of one KV head done together */
} attn_job;

/* RoPE on a share of the batch's queries and keys, then their keys and values into the cache
 * in f16 (the kernel path's conversion, bit-identical to bn_f32_to_f16_row). */
static void rope_kv_worker(void *arg, int ith, int nth)
{
    const attn_job *job = arg;
    bn_context *c = job->c;
    const bn_hparams *hp = &c->m->hp;
    const bn_rope_style rope = c->m->arch->rope;
    const size_t e = hp->n_embd, kv = c->kv_dim;
    size_t b, end;
    bn_split_range(job->n_tok, 1, ith, nth, &b, &end);
    for (size_t t = b; t < end; t++) {
        const float *cs = c->rope + t * hp->head_dim;
        rope_apply(c->q + t * e, hp->n_head, hp->head_dim, cs, rope);
        rope_apply(c->k + t * kv, hp->n_head_kv, hp->head_dim, cs, rope);
        c->to_f16(c->k + t * kv, c->k_cache + ((size_t)job->il * c->n_ctx + job->pos0 + t) * kv,
                  kv);
    }
    /* V is stored transposed: one value's positions are contiguous, so each value takes the
     * share's tokens (up to `chunk` at a time) in one conversion */
    enum {
        chunk = 64
    };
    float col[chunk];
    uint16_t *vc = c->v_cache + (size_t)job->il * kv * c->n_ctx_pad + job->pos0;
    for (size_t t0 = b; t0 < end; t0 += chunk) {
        const size_t nt = end - t0 < chunk ? end - t0 : chunk;
        for (size_t i = 0; i < kv; i++) {
            for (size_t t = 0; t < nt; t++)
                col[t] = c->v[(t0 + t) * kv + i];
            c->to_f16(col, vc + i * c->n_ctx_pad + t0, nt);
        }
    }
}

/* Query heads h0 .. h0+nh-1 (all reading KV head kvh) of one token over the cached positions
 * 0..p (FORMAT.md 4.4.5-6), in the decode-path precision (EXACTNESS.md "The f16 roundings of
 * the decode path"): q in f16 for the scores, probabilities in f16 for probs.V, the probs.V dot
 * product over p+1 rounded up to 32 cells (the padding holds zeros). dot_f16_rows takes the
 * f16 values widened to float, so each cached K and V row is read once for the nh heads; every
 * result is still the one dot_f16 gives (kernels.h). */
static void attend_heads(bn_context *c, int ith, uint32_t il, uint32_t t, uint32_t p, uint32_t h0,
                         uint32_t nh)
{
    const bn_hparams *hp = &c->m->hp;
    const uint32_t hd = hp->head_dim, kvh = h0 / (hp->n_head / hp->n_head_kv);
    const size_t n_kv = (size_t)p + 1, n_pad = (n_kv + KV_PAD - 1) / KV_PAD * KV_PAD;
    const size_t ld = c->n_ctx_pad, group = hp->n_head / hp->n_head_kv;
    float *att = c->att + (size_t)ith * group * ld; /* [nh][n_ctx_pad] */
    uint16_t *att16 = c->att16 + (size_t)ith * ld;
    uint16_t *q16 = c->q16 + (size_t)ith * hd;
    float *qf = c->qf + (size_t)ith * group * hd; /* [nh][hd] q rounded to f16, widened */

    for (uint32_t v = 0; v < nh; v++) {
        c->to_f16(c->q + (size_t)t * hp->n_embd + (size_t)(h0 + v) * hd, q16, hd);
        c->to_f32(q16, qf + (size_t)v * hd, hd);
    }
    const uint16_t *kc = c->k_cache + (size_t)il * c->n_ctx * c->kv_dim + (size_t)kvh * hd;
    c->kern->dot_f16_rows(kc, c->kv_dim, n_kv, qf, hd, nh, hd, att, ld);
    for (uint32_t v = 0; v < nh; v++) {
        float *a = att + v * ld;
        for (size_t j = 0; j < n_kv; j++)
            a[j] = a[j] * c->kq_scale;
        c->softmax(a, n_kv);
        c->to_f16(a, att16, n_kv);
        c->to_f32(att16, a, n_kv);
        memset(a + n_kv, 0, (n_pad - n_kv) * sizeof *a);
    }

    const uint16_t *vc = c->v_cache + ((size_t)il * c->kv_dim + (size_t)kvh * hd) * ld;
    float *out = c->xb + (size_t)t * hp->n_embd + (size_t)h0 * hd;
    c->kern->dot_f16_rows(vc, ld, hd, att, ld, nh, n_pad, out, hd);
}

static void attn_worker(void *arg, int ith, int nth)
{
    const attn_job *job = arg;
    const uint32_t n_head = job->c->m->hp.n_head, per = job->heads_per_item;
    const uint32_t n_items = n_head / per;
    size_t b, e;
    bn_split_range((size_t)job->n_tok * n_items, 1, ith, nth, &b, &e);
    /* head-major: consecutive items are the batch's tokens over the same cached K and V
     * rows, which then stay in the core's cache (one KV head's rows: 0.5 KB per position) */
    for (size_t i = b; i < e; i++) {
        const uint32_t t = (uint32_t)(i % job->n_tok), h0 = (uint32_t)(i / job->n_tok) * per;
        attend_heads(job->c, ith, job->il, t, job->pos0 + t, h0, per);
    }
}

typedef struct lmhead_job {
    bn_context *c;
    uint32_t n_rows;   /* tokens whose logits are wanted */
    const uint8_t *in; /* n_rows rows of c->lm_in_bytes: the input in the LM head's type */
    float *logits;
} lmhead_job;

static void lmhead_worker(void *arg, int ith, int nth)
{
    const lmhead_job *job = arg;
    const bn_model *m = job->c->m;
    const bn_rows *w = &m->lm_head;
    const size_t n_vocab = m->hp.n_vocab, n_embd = m->hp.n_embd, chunk = 32;
    const size_t in_bytes = job->c->lm_in_bytes;
    size_t b, e;
    bn_split_range(n_vocab, chunk, ith, nth, &b, &e);
    /* chunk by chunk, every token: the chunk's rows stay in cache across tokens */
    for (size_t r = b; r < e; r += chunk) {
        const size_t r1 = r + chunk < e ? r + chunk : e;
        for (uint32_t t = 0; t < job->n_rows; t++) {
            const uint8_t *in = job->in + t * in_bytes;
            float *y = job->logits + t * n_vocab;
            if (w->type == BN_GGML_F16)
                job->c->kern->matvec_f16((const uint16_t *)(const void *)w->data, n_embd, r, r1,
                                         (const uint16_t *)(const void *)in, y);
            else
                bn_q8_0_matvec(w->data, n_embd, r, r1, in, y);
        }
    }
}

/* The screened head's exact rows: today's f16 kernel, one row per call (each row's sum does not
 * depend on the range it is computed in), the list split over the threads. */
typedef struct exact_rows_job {
    bn_context *c;
    const int32_t *rows;
    size_t n;
    float *logits;
} exact_rows_job;

static void exact_rows_worker(void *arg, int ith, int nth)
{
    const exact_rows_job *job = arg;
    const bn_model *m = job->c->m;
    size_t b, e;
    bn_split_range(job->n, 1, ith, nth, &b, &e);
    for (size_t i = b; i < e; i++) {
        const size_t r = (size_t)job->rows[i];
        job->c->kern->matvec_f16((const uint16_t *)(const void *)m->lm_head.data, m->hp.n_embd, r,
                                 r + 1, (const uint16_t *)(const void *)job->c->lm_in, job->logits);
    }
}

static void exact_rows(void *user, const int32_t *rows, size_t n, float *logits)
{
    exact_rows_job job = {user, rows, n, logits};
    bn_threadpool_run(((bn_context *)user)->tp, exact_rows_worker, &job);
}

/* One row of logits from the f16 LM-head input (c->lm_in) through the screen; 0 when it could
 * not decide. Only F16 heads have a compact copy (bn_model_build_lm_compact). */
static size_t screened_head(bn_context *c, float *logits)
{
    const size_t e = c->m->hp.n_embd;
    c->to_f32((const uint16_t *)(const void *)c->lm_in, c->xf_head, e);
    return bn_lm_screen_run(c->screen, c->kern, c->tp, c->xf_head, bn_lm_f16_gamma(e), c->lm_req,
                            exact_rows, c, logits);
}

/* ------------------------------------------------------------------ one layer */

/* Attention of rows t < n_tok of c->x (tokens at positions pos0 + t) up to the concatenated
 * heads, left in c->xb (before any sub-norm and the output projection): norm -> Q, K, V from one
 * quantized input -> RoPE -> K/V join the cache -> every head over the cache (causal). */
static void attention_heads(bn_context *c, const bn_layer *L, uint32_t il, uint32_t n_tok,
                            uint32_t pos0)
{
    const bn_hparams *hp = &c->m->hp;
    matmuls(c, c->xb, c->x, L->attn_norm, hp->n_embd, n_tok, 3, &L->wq, c->q, &L->wk, c->k, &L->wv,
            c->v);
    /* a KV head's query heads together, unless that leaves too few items for the threads
     * (decode: 5 KV heads on 2 threads would be 3 + 2) */
    const uint32_t group = hp->n_head / hp->n_head_kv;
    const uint32_t per = (size_t)n_tok * hp->n_head_kv >= 4 * (size_t)c->n_threads ? group : 1;
    attn_job aj = {c, il, n_tok, pos0, per};
    run_rows(c, n_tok, rope_kv_worker, &aj);
    bn_threadpool_run(c->tp, attn_worker, &aj);
}

/* Element-wise steps over the batch's token rows t < n_tok, a share of the rows per thread. */
typedef struct rows_job {
    const bn_context *c;
    uint32_t n_tok;
} rows_job;

/* c->hg = act(gate) * up. */
static void act_worker(void *arg, int ith, int nth)
{
    const rows_job *job = arg;
    const bn_context *c = job->c;
    const size_t ff = c->m->hp.n_ff;
    size_t b, e;
    bn_split_range(job->n_tok, 1, ith, nth, &b, &e);
    if (b >= e)
        return;
    if (c->m->arch->act == BN_ACT_RELU2)
        relu2_mul(c->hg + b * ff, c->hu + b * ff, (e - b) * ff);
    else
        c->silu_mul(c->hg + b * ff, c->hu + b * ff, (e - b) * ff);
}

static void ffn_activation(bn_context *c, uint32_t n_tok)
{
    rows_job job = {c, n_tok};
    run_rows(c, n_tok, act_worker, &job);
}

/* c->x += c->xb2 (the residual stream takes a projection's output). */
static void residual_worker(void *arg, int ith, int nth)
{
    const rows_job *job = arg;
    const bn_context *c = job->c;
    const size_t e = c->m->hp.n_embd;
    size_t b, end;
    bn_split_range(job->n_tok, 1, ith, nth, &b, &end);
    for (size_t i = b * e; i < end * e; i++)
        c->x[i] = c->x[i] + c->xb2[i];
}

static void add_residual(bn_context *c, uint32_t n_tok)
{
    rows_job job = {c, n_tok};
    run_rows(c, n_tok, residual_worker, &job);
}

/* BitNet block (llm_build_bitnet / _158): sub-norms before the output and down projections. */
static void layer_forward_bitnet(bn_context *c, uint32_t il, uint32_t n_tok, uint32_t pos0)
{
    const bn_hparams *hp = &c->m->hp;
    const bn_layer *L = &c->m->layers[il];
    const size_t e = hp->n_embd, ff = hp->n_ff;

    attention_heads(c, L, il, n_tok, pos0);
    matmuls(c, c->xb, c->xb, L->attn_sub_norm, e, n_tok, 1, &L->wo, c->xb2, NULL, NULL, NULL, NULL);
    add_residual(c, n_tok);

    matmuls(c, c->xb, c->x, L->ffn_norm, e, n_tok, 2, &L->w_gate, c->hg, &L->w_up, c->hu, NULL,
            NULL);
    ffn_activation(c, n_tok);
    matmuls(c, c->hg, c->hg, L->ffn_sub_norm, ff, n_tok, 1, &L->w_down, c->xb2, NULL, NULL, NULL,
            NULL);
    add_residual(c, n_tok);
}

/* Llama block (llm_build_llama): no sub-norms, SiLU-gated FFN. */
static void layer_forward_llama(bn_context *c, uint32_t il, uint32_t n_tok, uint32_t pos0)
{
    const bn_hparams *hp = &c->m->hp;
    const bn_layer *L = &c->m->layers[il];
    const size_t e = hp->n_embd, ff = hp->n_ff;

    attention_heads(c, L, il, n_tok, pos0);
    matmuls(c, c->xb, NULL, NULL, e, n_tok, 1, &L->wo, c->xb2, NULL, NULL, NULL, NULL);
    add_residual(c, n_tok);

    matmuls(c, c->xb, c->x, L->ffn_norm, e, n_tok, 2, &L->w_gate, c->hg, &L->w_up, c->hu, NULL,
            NULL);
    ffn_activation(c, n_tok);
    matmuls(c, c->hg, NULL, NULL, ff, n_tok, 1, &L->w_down, c->xb2, NULL, NULL, NULL, NULL);
    add_residual(c, n_tok);
}

/* One batch of n_tok tokens at positions pos0..; logits of rows first_out..n_tok-1 go to
 * logits (NULL: none wanted). */
static void batch_forward(bn_context *c, const int32_t *tokens, uint32_t n_tok, uint32_t pos0,
                          uint32_t first_out, float *logits)
{
    const bn_hparams *hp = &c->m->hp;
    const size_t e = hp->n_embd;
    const bn_rows *embd = &c->m->token_embd;
    for (uint32_t t = 0; t < n_tok; t++) {
        const uint8_t *row = embd->data + (size_t)tokens[t] * embd->row_bytes;
        if (embd->type == BN_GGML_F16)
            c->to_f32((const uint16_t *)(const void *)row, c->x + t * e, e);
        else
            bn_q8_0_dequant_row(row, c->x + t * e, e);
        rope_angles(c->rope + (size_t)t * hp->head_dim, pos0 + t, hp->head_dim, c->theta_scale);
    }
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        if (c->m->arch->family == BN_FAMILY_BITNET)
            layer_forward_bitnet(c, il, n_tok, pos0);
        else
            layer_forward_llama(c, il, n_tok, pos0);
    }
    if (!logits || first_out >= n_tok)
        return;
    /* output norm, then the LM head's input in its vector type as ggml's one-column product
     * makes it (decode-path precision): f16 for an F16 head, Q8_0 blocks for a Q8_0 head */
    for (uint32_t t = first_out; t < n_tok; t++) {
        uint8_t *in = c->lm_in + (t - first_out) * c->lm_in_bytes;
        rmsnorm(c->xb + t * e, c->x + t * e, c->m->output_norm, e, hp->rms_eps);
        if (c->m->lm_head.type == BN_GGML_F16)
            c->to_f16(c->xb + t * e, (uint16_t *)(void *)in, e);
        else
            bn_q8_0_quantize_row(c->xb + t * e, in, e);
    }
    c->lm_screened = 0;
    if (c->screen && c->lm_req && n_tok - first_out == 1 &&
        (c->lm_rows = screened_head(c, logits)) > 0) {
        c->lm_screened = 1;
        return;
    }
    lmhead_job lj = {c, n_tok - first_out, c->lm_in, logits};
    bn_threadpool_run(c->tp, lmhead_worker, &lj);
    c->lm_rows = (size_t)(n_tok - first_out) * hp->n_vocab;
}

/* ------------------------------------------------------------------ public API */

int bn_forward(bn_context *c, const int32_t *tokens, uint32_t n, float *logits, uint32_t n_logits,
               bn_err *err)
{
    const bn_hparams *hp = &c->m->hp;
    if (n == 0)
        return bn_fail(err, BN_E_INPUT, "no tokens to evaluate");
    if (!tokens)
        return bn_fail(err, BN_E_INPUT, "no token array");
    if (n_logits > n)
        return bn_fail(err, BN_E_INPUT, "%u logit rows requested for %u tokens", n_logits, n);
    if (n > c->n_ctx - c->pos)
        return bn_fail(err, BN_E_CONTEXT_FULL,
                       "context full: %u tokens held + %u new > context length %u", c->pos, n,
                       c->n_ctx);
    for (uint32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= hp->n_vocab)
            return bn_fail(err, BN_E_INPUT, "token %u: id %d out of range (vocabulary of %u)", i,
                           (int)tokens[i], hp->n_vocab);
    if (!logits)
        n_logits = 0;
    const uint32_t first_out = n - n_logits; /* index of the first token with logits */
    for (uint32_t i = 0; i < n; i += c->n_batch) {
        const uint32_t nb = n - i < c->n_batch ? n - i : c->n_batch;
        const uint32_t fo = first_out > i ? first_out - i : 0; /* first row out, in batch */
        float *out = fo < nb ? logits + (size_t)(i + fo - first_out) * hp->n_vocab : NULL;
        batch_forward(c, tokens + i, nb, c->pos, fo, out);
        c->pos += nb;
    }
    return 0;
}

uint32_t bn_context_pos(const bn_context *c) { return c->pos; }
void bn_context_set_lm_request(bn_context *c, const bn_lm_request *req) { c->lm_req = req; }
size_t bn_context_lm_rows(const bn_context *c) { return c->lm_rows; }
int bn_context_lm_screened(const bn_context *c) { return c->lm_screened; }
uint32_t bn_context_n_ctx(const bn_context *c) { return c->n_ctx; }
uint32_t bn_context_n_batch(const bn_context *c) { return c->n_batch; }

void bn_context_set_pos(bn_context *c, uint32_t pos)
{
    if (pos >= c->pos)
        return;
    /* forgotten V cells return to zero: probs.V reads up to 31 cells past the last position,
     * with probability 0, and 0 * (stale inf) would be NaN */
    const size_t kv = c->kv_dim;
    for (size_t row = 0; row < (size_t)c->m->hp.n_layer * kv; row++)
        memset(c->v_cache + row * c->n_ctx_pad + pos, 0, (size_t)(c->pos - pos) * 2);
    c->pos = pos;
}

void bn_context_free(bn_context *c)
{
    if (!c)
        return;
    free(c->k_cache);
    free(c->v_cache);
    free(c->x);
    free(c->xb);
    free(c->xb2);
    free(c->q);
    free(c->k);
    free(c->v);
    free(c->hg);
    free(c->hu);
    free(c->qact);
    free(c->qscale);
    free(c->rope);
    free(c->lm_in);
    bn_lm_screen_free(c->screen);
    free(c->xf_head);
    free(c->att);
    free(c->att16);
    free(c->q16);
    free(c->qf);
    free(c);
}

/* calloc of a*b*size bytes, NULL on overflow. */
static void *alloc3(size_t a, size_t b, size_t size)
{
    if (b && a > SIZE_MAX / b)
        return NULL;
    return calloc(a * b, size);
}

bn_context *bn_context_create(const bn_model *m, uint32_t n_ctx, uint32_t n_batch,
                              bn_threadpool *tp, bn_err *err)
{
    if (!m) {
        bn_fail(err, BN_E_INPUT, "no model");
        return NULL;
    }
    if (n_ctx == 0 || n_ctx > MAX_CTX) {
        bn_fail(err, BN_E_INPUT, "context length %u out of range (1..%u)", n_ctx,
                (unsigned)MAX_CTX);
        return NULL;
    }
    if (n_batch == 0) {
        bn_fail(err, BN_E_INPUT, "batch size must be at least 1");
        return NULL;
    }
    bn_context *c = calloc(1, sizeof *c);
    if (!c) {
        bn_fail(err, BN_E_NOMEM, "out of memory");
        return NULL;
    }
    const bn_hparams *hp = &m->hp;
    c->m = m;
    c->kern = m->kernels;
    c->to_f16 = c->kern->f32_to_f16_row ? c->kern->f32_to_f16_row : bn_f32_to_f16_row;
    c->to_f32 = c->kern->f16_to_f32_row ? c->kern->f16_to_f32_row : bn_f16_to_f32_row;
    c->softmax = c->kern->softmax ? c->kern->softmax : bn_softmax_f32;
    c->silu_mul = c->kern->silu_mul ? c->kern->silu_mul : bn_silu_mul_f32;
    c->tp = tp;
    c->n_threads = bn_threadpool_size(tp);
    c->n_ctx = n_ctx;
    c->n_ctx_pad = (n_ctx + KV_PAD - 1) / KV_PAD * KV_PAD;
    c->n_batch = n_batch < n_ctx ? n_batch : n_ctx;
    c->kv_dim = hp->n_head_kv * hp->head_dim;
    c->theta_scale = powf(hp->rope_theta, -2.0f / (float)hp->head_dim);
    c->kq_scale = 1.0f / sqrtf((float)hp->head_dim);

    const size_t nb = c->n_batch, e = hp->n_embd, ff = hp->n_ff, kv = c->kv_dim;
    /* int8 rows of ffn_down's input span its padded row length (matmuls()) */
    const size_t ff_rows = (ff + 127) / 128 * 128;
    const size_t nt = (size_t)c->n_threads, widest = e > ff_rows ? e : ff_rows;
    const size_t cache_cells = (size_t)hp->n_layer * kv;
    c->k_cache = alloc3(cache_cells, n_ctx, sizeof(uint16_t));
    c->v_cache = alloc3(cache_cells, c->n_ctx_pad, sizeof(uint16_t));
    if (!c->k_cache || !c->v_cache) {
        bn_fail(err, BN_E_NOMEM, "out of memory for a KV cache of %u positions (%.1f MiB)", n_ctx,
                2.0 * (double)cache_cells * c->n_ctx_pad * 2 / (1024.0 * 1024.0));
        bn_context_free(c);
        return NULL;
    }
    c->x = alloc3(nb, e, sizeof(float));
    c->xb = alloc3(nb, e, sizeof(float));
    c->xb2 = alloc3(nb, e, sizeof(float));
    c->q = alloc3(nb, e, sizeof(float));
    c->k = alloc3(nb, kv, sizeof(float));
    c->v = alloc3(nb, kv, sizeof(float));
    c->hg = alloc3(nb, ff, sizeof(float));
    c->hu = alloc3(nb, ff, sizeof(float));
    c->qact = alloc3(nb, widest, 1);
    c->qscale = alloc3(nb, 1, sizeof(float));
    c->rope = alloc3(nb, hp->head_dim, sizeof(float));
    /* f16 rows are 2 bytes a value, Q8_0 rows 34/32: the wider one, aligned for uint16_t */
    c->lm_in_bytes = e * 2;
    c->lm_in = alloc3(nb, c->lm_in_bytes, 1);
    const size_t group = hp->n_head / hp->n_head_kv;
    c->att = alloc3(nt * group, c->n_ctx_pad, sizeof(float));
    c->qf = alloc3(nt * group, hp->head_dim, sizeof(float));
    c->att16 = alloc3(nt, c->n_ctx_pad, sizeof(uint16_t));
    c->q16 = alloc3(nt, hp->head_dim, sizeof(uint16_t));
    if (!c->x || !c->xb || !c->xb2 || !c->q || !c->k || !c->v || !c->hg || !c->hu || !c->qact ||
        !c->qscale || !c->rope || !c->lm_in || !c->att || !c->att16 || !c->q16 || !c->qf) {
        bn_fail(err, BN_E_NOMEM, "out of memory for the buffers of a %u-token batch", c->n_batch);
        bn_context_free(c);
        return NULL;
    }
    if (m->lm_compact && (!(c->screen = bn_lm_screen_create(m->lm_compact, err)) ||
                          !(c->xf_head = alloc3(e, 1, sizeof(float))))) {
        if (c->screen)
            bn_fail(err, BN_E_NOMEM, "out of memory for the screened LM head");
        bn_context_free(c);
        return NULL;
    }
    return c;
}
