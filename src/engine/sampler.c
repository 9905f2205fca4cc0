/* Sampler: see sampler.h for the chain and the determinism argument. */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rng.h"

typedef struct cand {
    float logit;
    int32_t id;
} cand;

struct bn_sampler {
    bn_sampling_params p;
    uint32_t n_vocab;
    int32_t *hist;      /* ring buffer of the last hist_cap accepted tokens */
    uint32_t hist_cap, hist_len, hist_head;
    uint8_t *seen;      /* [n_vocab] scratch for "penalize each distinct token once" */
    int32_t *pen_ids;   /* [hist_cap] distinct penalized tokens (bn_sampler_penalized) */
    float *work;        /* [n_vocab] penalized logits */
    cand *cands;        /* [n_vocab] */
    uint64_t rng;
};

/* Uniform double in [0, 1) from the top 53 bits of one SplitMix64 output (Steele, Lea, Flood
 * 2014; a single-word state, so `seed` IS the state and the stream is easy to check). */
static double uniform01(uint64_t *state)
{
    return (double)(bn_splitmix64(state) >> 11) * 0x1.0p-53;
}

bn_sampling_params bn_sampling_default(void)
{
    bn_sampling_params p = {
        .temp = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .repeat_last_n = 64,
        .seed = 0,
    };
    return p;
}

int bn_sampling_check(const bn_sampling_params *p, bn_err *err)
{
    if (!(p->temp == p->temp) || isinf(p->temp))
        return bn_fail(err, BN_E_INPUT, "temp must be a finite number, got %g", (double)p->temp);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return bn_fail(err, BN_E_INPUT, "top-p must be in (0, 1], got %g", (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return bn_fail(err, BN_E_INPUT, "min-p must be in [0, 1], got %g", (double)p->min_p);
    if (!(p->repeat_penalty > 0.0f) || isinf(p->repeat_penalty))
        return bn_fail(err, BN_E_INPUT, "repeat-penalty must be > 0, got %g", (double)p->repeat_penalty);
    if (p->repeat_last_n < -1)
        return bn_fail(err, BN_E_INPUT, "repeat-last-n must be >= -1, got %d", (int)p->repeat_last_n);
    return 0;
}

bn_sampler *bn_sampler_create(const bn_sampling_params *p, uint32_t n_vocab,
                              uint32_t history_cap, bn_err *err)
{
    if (bn_sampling_check(p, err))
        return NULL;
    if (n_vocab == 0) {
        bn_fail(err, BN_E_INPUT, "sampler: empty vocabulary");
        return NULL;
    }
    bn_sampler *s = calloc(1, sizeof *s);
    if (!s) {
        bn_fail(err, BN_E_NOMEM, "sampler: out of memory");
        return NULL;
    }
    s->p = *p;
    s->n_vocab = n_vocab;
    s->hist_cap = p->repeat_last_n < 0 ? history_cap : (uint32_t)p->repeat_last_n;
    s->hist = calloc(s->hist_cap ? s->hist_cap : 1, sizeof *s->hist);
    s->seen = calloc(n_vocab, 1);
    s->pen_ids = calloc(s->hist_cap ? s->hist_cap : 1, sizeof *s->pen_ids);
    s->work = malloc((size_t)n_vocab * sizeof *s->work);
    s->cands = malloc((size_t)n_vocab * sizeof *s->cands);
    if (!s->hist || !s->seen || !s->pen_ids || !s->work || !s->cands) {
        bn_sampler_free(s);
        bn_fail(err, BN_E_NOMEM, "sampler: out of memory for %u tokens", n_vocab);
        return NULL;
    }
    s->rng = p->seed;
    return s;
}

void bn_sampler_free(bn_sampler *s)
{
    if (!s)
        return;
    free(s->hist);
    free(s->seen);
    free(s->pen_ids);
    free(s->work);
    free(s->cands);
    free(s);
}

void bn_sampler_reset(bn_sampler *s)
{
    s->hist_len = 0;
    s->hist_head = 0;
    s->rng = s->p.seed;
}

void bn_sampler_accept(bn_sampler *s, int32_t token)
{
    if (s->hist_cap == 0)
        return;
    s->hist[s->hist_head] = token;
    s->hist_head = (s->hist_head + 1) % s->hist_cap;
    if (s->hist_len < s->hist_cap)
        s->hist_len++;
}

/* llama.cpp's repetition penalty: every DISTINCT token of the window is penalized once,
 * positive logits divided by the penalty, the others multiplied (so a penalty > 1 always
 * pushes a repeated token down). */
static void apply_penalty(bn_sampler *s)
{
    float pen = s->p.repeat_penalty;
    if (pen == 1.0f || s->hist_len == 0)
        return;
    for (uint32_t i = 0; i < s->hist_len; i++) {
        int32_t t = s->hist[i];
        if (t < 0 || (uint32_t)t >= s->n_vocab || s->seen[t])
            continue;
        s->seen[t] = 1;
        float *l = &s->work[t];
        *l = *l <= 0.0f ? *l * pen : *l / pen;
    }
    for (uint32_t i = 0; i < s->hist_len; i++) {
        int32_t t = s->hist[i];
        if (t >= 0 && (uint32_t)t < s->n_vocab)
            s->seen[t] = 0;
    }
}

/* The candidate order: higher logit first, lower id on ties (a total order). */
static int better(const cand *a, const cand *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cmp_cand(const void *pa, const void *pb)
{
    const cand *a = pa, *b = pb;
    if (better(a, b))
        return -1;
    return better(b, a) ? 1 : 0;
}

/* Min-heap (worst candidate at the root) of the k best seen so far. */
static void heap_sift_down(cand *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(&h[w], &h[l]))
            w = l;
        if (r < n && better(&h[w], &h[r]))
            w = r;
        if (w == i)
            return;
        cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* Fills s->cands with the k best (all when k covers the vocabulary), sorted. Returns k. */
static uint32_t top_k_sorted(bn_sampler *s, uint32_t k)
{
    cand *c = s->cands;
    uint32_t n = s->n_vocab;
    if (k >= n) {
        for (uint32_t i = 0; i < n; i++)
            c[i] = (cand){s->work[i], (int32_t)i};
        qsort(c, n, sizeof *c, cmp_cand);
        return n;
    }
    for (uint32_t i = 0; i < k; i++)
        c[i] = (cand){s->work[i], (int32_t)i};
    for (uint32_t i = k / 2; i-- > 0;)
        heap_sift_down(c, k, i);
    for (uint32_t i = k; i < n; i++) {
        cand x = {s->work[i], (int32_t)i};
        if (better(&x, &c[0])) {
            c[0] = x;
            heap_sift_down(c, k, 0);
        }
    }
    qsort(c, k, sizeof *c, cmp_cand);
    return k;
}

/* Keeps the smallest prefix whose probability mass (softmax of the raw logits) reaches p. */
static uint32_t top_p_cut(const cand *c, uint32_t n, float p)
{
    if (p >= 1.0f)
        return n;
    double total = 0.0;
    for (uint32_t i = 0; i < n; i++)
        total += exp((double)c[i].logit - (double)c[0].logit);
    double cum = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        cum += exp((double)c[i].logit - (double)c[0].logit) / total;
        if (cum >= (double)p)
            return i + 1;
    }
    return n;
}

/* Keeps tokens whose probability is at least p times the best one's: logit >= max + log p. */
static uint32_t min_p_cut(const cand *c, uint32_t n, float p)
{
    if (p <= 0.0f)
        return n;
    float min_logit = c[0].logit + logf(p);
    uint32_t i = 1; /* the best token always stays */
    while (i < n && c[i].logit >= min_logit)
        i++;
    return i;
}

uint32_t bn_sampler_keep(const bn_sampler *s)
{
    if (s->p.temp <= 0.0f)
        return 1;
    return s->p.top_k > 0 ? (uint32_t)s->p.top_k : 0;
}

/* The same tokens apply_penalty changes (when it changes any). */
const int32_t *bn_sampler_penalized(bn_sampler *s, size_t *n)
{
    size_t m = 0;
    if (s->p.repeat_penalty != 1.0f) {
        for (uint32_t i = 0; i < s->hist_len; i++) {
            int32_t t = s->hist[i];
            if (t < 0 || (uint32_t)t >= s->n_vocab || s->seen[t])
                continue;
            s->seen[t] = 1;
            s->pen_ids[m++] = t;
        }
        for (size_t i = 0; i < m; i++)
            s->seen[s->pen_ids[i]] = 0;
    }
    *n = m;
    return s->pen_ids;
}

int32_t bn_sampler_sample(bn_sampler *s, const float *logits)
{
    uint32_t n = s->n_vocab;
    for (uint32_t i = 0; i < n; i++)
        s->work[i] = isnan(logits[i]) ? -INFINITY : logits[i]; /* NaN would break the order */
    apply_penalty(s);

    if (s->p.temp <= 0.0f) {
        uint32_t best = 0;
        for (uint32_t i = 1; i < n; i++)
            if (s->work[i] > s->work[best])
                best = i;
        return (int32_t)best;
    }

    uint32_t k = s->p.top_k > 0 ? (uint32_t)s->p.top_k : n;
    n = top_k_sorted(s, k);
    cand *c = s->cands;
    if (c[0].logit == -INFINITY) /* nothing has any probability: take the first in order */
        return c[0].id;
    n = top_p_cut(c, n, s->p.top_p);
    n = min_p_cut(c, n, s->p.min_p);

    /* temperature, then softmax over the survivors and one draw */
    double top = (double)(c[0].logit / s->p.temp);
    double total = 0.0;
    for (uint32_t i = 0; i < n; i++)
        total += exp((double)(c[i].logit / s->p.temp) - top);
    double u = uniform01(&s->rng) * total, cum = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        cum += exp((double)(c[i].logit / s->p.temp) - top);
        if (u < cum)
            return c[i].id;
    }
    return c[n - 1].id; /* u landed on the rounding slack at the very end */
}

uint64_t bn_random_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^
                 ((uint64_t)getpid() << 32);
    return bn_splitmix64(&x) >> 1; /* below 2^63: fits every seed range we accept */
}
