/* Sampler: see sampler.h for the chain and the determinism argument. */
#include "sampler.h"

#include <float.h>
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
    int32_t *hist; /* ring buffer of the last hist_cap accepted tokens */
    uint32_t hist_cap, hist_len, hist_head;
    uint32_t *count;  /* [n_vocab] scratch: occurrences in the window (0 between calls) */
    int32_t *pen_ids; /* [hist_cap] distinct penalized tokens (bn_sampler_penalized) */
    float *work;      /* [n_vocab] penalized logits */
    cand *cands;      /* [n_vocab] */
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
        .presence_penalty = 0.0f,
        .frequency_penalty = 0.0f,
        .seed = 0,
    };
    return p;
}

int bn_sampling_check(const bn_sampling_params *p, bn_err *err)
{
    return bn_sampling_params_check(p, err);
}

bn_sampler *bn_sampler_create(const bn_sampling_params *p, uint32_t n_vocab, uint32_t history_cap,
                              bn_err *err)
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
    /* the window never holds more than the context's tokens: a larger N sees the same ones
     * (a window of 2^31 used to allocate 8 GiB up front) */
    s->hist_cap = p->repeat_last_n < 0 || (uint32_t)p->repeat_last_n > history_cap
                      ? history_cap
                      : (uint32_t)p->repeat_last_n;
    s->hist = calloc(s->hist_cap ? s->hist_cap : 1, sizeof *s->hist);
    if (!s->hist) {
        bn_fail(err, BN_E_NOMEM, "sampler: out of memory for a repeat_last_n window of %u tokens",
                s->hist_cap);
        bn_sampler_free(s);
        return NULL;
    }
    s->count = calloc(n_vocab, sizeof *s->count);
    s->pen_ids = calloc(s->hist_cap ? s->hist_cap : 1, sizeof *s->pen_ids);
    s->work = malloc((size_t)n_vocab * sizeof *s->work);
    s->cands = malloc((size_t)n_vocab * sizeof *s->cands);
    if (!s->count || !s->pen_ids || !s->work || !s->cands) {
        bn_sampler_free(s);
        bn_fail(err, BN_E_NOMEM, "sampler: out of memory for the scores of %u vocabulary tokens",
                n_vocab);
        return NULL;
    }
    s->rng = p->seed;
    return s;
}

uint32_t bn_sampler_window(const bn_sampler *s) { return s->hist_cap; }

void bn_sampler_free(bn_sampler *s)
{
    if (!s)
        return;
    free(s->hist);
    free(s->count);
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

/* llama.cpp's penalties (llama_sampler_penalties_apply): every DISTINCT token of the window
 * is penalized once: the repeat penalty divides a positive logit and multiplies the others
 * (so a penalty > 1 always pushes a repeated token down), then count * frequency + presence
 * is subtracted. */
static void apply_penalty(bn_sampler *s)
{
    float pen = s->p.repeat_penalty, freq = s->p.frequency_penalty, pres = s->p.presence_penalty;
    if ((pen == 1.0f && freq == 0.0f && pres == 0.0f) || s->hist_len == 0)
        return;
    for (uint32_t i = 0; i < s->hist_len; i++) {
        int32_t t = s->hist[i];
        if (t >= 0 && (uint32_t)t < s->n_vocab)
            s->count[t]++;
    }
    for (uint32_t i = 0; i < s->hist_len; i++) {
        int32_t t = s->hist[i];
        if (t < 0 || (uint32_t)t >= s->n_vocab || s->count[t] == 0)
            continue;
        float *l = &s->work[t];
        /* a tiny penalty (1e-38 is in range) must not turn a logit into inf, whose softmax
         * would be NaN */
        *l = *l <= 0.0f ? *l * pen : fminf(*l / pen, FLT_MAX);
        *l -= (float)s->count[t] * freq + pres;
        s->count[t] = 0; /* done: later occurrences are skipped, and the scratch is clean */
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
    if (s->p.repeat_penalty != 1.0f || s->p.presence_penalty != 0.0f ||
        s->p.frequency_penalty != 0.0f) {
        /* count[] is zero between calls: use it to list each token once, then clear it */
        for (uint32_t i = 0; i < s->hist_len; i++) {
            int32_t t = s->hist[i];
            if (t < 0 || (uint32_t)t >= s->n_vocab || s->count[t])
                continue;
            s->count[t] = 1;
            s->pen_ids[m++] = t;
        }
        for (size_t i = 0; i < m; i++)
            s->count[s->pen_ids[i]] = 0;
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

/* Higher probability first, lower id on ties: the same total order as the candidates. */
static int prob_better(bn_token_prob a, bn_token_prob b)
{
    return a.prob > b.prob || (a.prob == b.prob && a.id < b.id);
}

static float prob_of(float logit, float max, double total)
{
    return logit == -INFINITY ? 0.0f : (float)(exp((double)logit - (double)max) / total);
}

void bn_sampler_probs(const bn_sampler *s, int32_t chosen, bn_token_prob *chosen_out,
                      bn_token_prob *top, size_t n)
{
    uint32_t nv = s->n_vocab;
    float mx = -INFINITY;
    for (uint32_t i = 0; i < nv; i++)
        if (s->work[i] > mx)
            mx = s->work[i];
    double total = 0.0;
    for (uint32_t i = 0; i < nv; i++)
        total += exp((double)s->work[i] - (double)mx);
    if (mx == -INFINITY) /* nothing has any probability (every logit -inf or NaN) */
        total = INFINITY;
    if (n > nv)
        n = nv;
    /* insertion into a sorted list of n: n is small (<= BN_MAX_PROBS) */
    size_t have = 0;
    for (uint32_t i = 0; i < nv && n > 0; i++) {
        bn_token_prob x = {(int32_t)i, prob_of(s->work[i], mx, total)};
        if (have == n && !prob_better(x, top[n - 1]))
            continue;
        size_t j = have < n ? have++ : n - 1;
        while (j > 0 && prob_better(x, top[j - 1])) {
            top[j] = top[j - 1];
            j--;
        }
        top[j] = x;
    }
    chosen_out->id = chosen;
    chosen_out->prob = chosen >= 0 && (uint32_t)chosen < nv ? prob_of(s->work[chosen], mx, total)
                                                            : 0.0f;
}

uint64_t bn_random_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^
                 ((uint64_t)getpid() << 32);
    return bn_splitmix64(&x) >> 11; /* below 2^53: BN_SET_SEED's range (exact in JSON) */
}
