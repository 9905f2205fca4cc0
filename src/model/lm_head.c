/* The screened LM head (lm_head.h): the compact copy, the bound, the candidate selection.
 *
 * Why the bound holds. For row r with exact weights w (floats), activation x (floats), let
 * s = sum_j w_j x_j (a real number). The copy holds q and a scale d, w~ = d q, and the
 * activation is quantized the same way, x~ = e p. With dw = w - w~ and dx = x - x~:
 *
 *   s - d e sum_j q_j p_j  =  sum_j dw_j x_j + sum_j w~_j dx_j
 *   |s - A|  <=  ||dw|| ||x|| + ||w~|| ||dx||                          (Cauchy-Schwarz, twice)
 *
 * where A = d e I and I = sum q_j p_j is the exact integer from the copy's kernel: q in
 * [-127, 127] for the int8 copy with p in [-127, 127] (matvec_i8) or, when the activation has
 * outliers, in [-32385, 32385] (matvec_i8x2, p as two int8 planes: two_planes below); q in
 * [-31, 31] and p in [-32385, 32385] for u6 (matvec_u6). Nothing below depends on which:
 * the norms measure whatever rounding was chosen. u6's coarser rows make ||dw|| ~4x larger,
 * but its 15-bit activation all but removes the second term, which is the larger one as soon as the
 * activation has outliers (a coarse int8 step for every other element). The exact kernel
 * does not return s but its float evaluation y; for an f16 head every product of two halves
 * is exact in float, and a sum of k terms in any order (any tree, partial sums in float or
 * double, one final rounding to float) is off by at most gamma_n * sum_j |w_j x_j| with
 * gamma_n = n u / (1 - n u), u = 2^-24, n >= the additions and roundings a term goes through
 * (Higham, Accuracy and Stability, 3.1 and 4.2); n = k + 2 covers every order, ggml's 64-lane
 * one included. And sum |w_j x_j| <= ||w|| ||x|| (Cauchy-Schwarz again). So
 *
 *   |y - A|  <=  (||dw|| + gamma ||w||) ||x|| + ||w~|| ||dx||  =:  E.
 *
 * The three row norms are stored rounded up to float; ||x||, ||dx||, A and E are computed in
 * double, whose own rounding (relative 2^-53 per operation, k <= 2^17 terms) is covered by
 * inflating E by 1e-6 relative and 1e-12 |A|, far more than it can be. A row whose weights or
 * bound are not finite is never screened out (every comparison is written so that NaN keeps
 * the row).
 *
 * Why the selection is exact. Let K = keep, and compute exactly the K rows (among those not
 * named by the caller) with the largest lower bounds A - E; let T be the smallest of their
 * exact logits. Any other unnamed row with A + E < T has an exact logit below T, so K unnamed
 * rows, whose values the sampler sees unchanged, beat it: it cannot be among the sampler's K
 * best, for any penalty applied to the named rows. All unnamed rows with A + E >= T, and the
 * named rows, are computed exactly. */
#include "lm_head.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct bn_lm_compact {
    uint32_t n_rows, k;
    bn_lm_format format;
    size_t row_bytes; /* k (int8) or bn_u6_row_bytes(k) */
    uint8_t *q;       /* [n_rows][row_bytes], in q_map (q_len bytes) */
    void *q_map;
    size_t q_len;
    float *scale;          /* [n_rows] d: w~ = d q */
    float *dw;             /* [n_rows] >= ||w - w~|| (INFINITY: row not finite) */
    float *wn;             /* [n_rows] >= ||w|| */
    float *qn;             /* [n_rows] >= ||w~|| */
    double dw_sum, qn_sum; /* over the finite rows: the bound's two terms' weights (two_planes) */
};

struct bn_lm_screen {
    const bn_lm_compact *c;
    int8_t *xq;        /* [k] quantized activation: p (one plane) or the high plane xh */
    int8_t *xl;        /* [k] the low plane (two planes: p = 255 xh + xl) */
    int planes;        /* this token's activation: one int8 plane or two */
    int32_t *approx32; /* [n_rows] the integer dot products with one plane (matvec_i8) */
    int64_t *approx;   /* [n_rows] those with two (matvec_i8x2, matvec_u6) */
    int32_t *rows;     /* [n_rows] rows to compute exactly */
    uint8_t *state;    /* [n_rows] 0 = not yet, 1 = named, 2 = computed */
    double *heap_lo;   /* [BN_LM_KEEP_MAX] min-heap of the best lower bounds, then of the best
                          exact logits */
    int32_t *heap_id;
    struct candidate {
        double hi; /* upper bound */
        int32_t id;
    } * cand; /* [n_rows] rows still to decide, best upper bound first */
};

enum {
    EXACT_CHUNK = 64 /* the first chunk of candidates computed together (one pool run); each
                        next one is twice as large, so a long list takes few pool runs */
};

/* Upper bound descending, then id ascending (a deterministic order). */
static int by_upper_bound(const void *pa, const void *pb)
{
    const struct candidate *a = pa, *b = pb;
    if (a->hi != b->hi)
        return a->hi > b->hi ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* The smallest float >= v (v >= 0, finite or not). */
static float up_f(double v)
{
    float f = (float)v;
    if ((double)f < v)
        f = nextafterf(f, INFINITY);
    return f;
}

/* ------------------------------------------------------------------ building the copy */

typedef struct build_job {
    bn_lm_compact *c;
    bn_lm_row_fn row;
    bn_lm_done_fn done;
    const void *src;
    float *tmp;   /* [n_threads][k] */
    int8_t *qtmp; /* [n_threads][k]: a u6 row's values before packing */
} build_job;

enum {
    BUILD_CHUNK = 256
};

/* Row r from its k floats w: the values q (in q, then packed into the copy for u6), the scale
 * and the three norms. */
static void build_row(bn_lm_compact *c, uint32_t r, const float *w, int8_t *qtmp)
{
    const size_t k = c->k;
    int8_t *q = c->format == BN_LM_I8 ? (int8_t *)(c->q + (size_t)r * k) : qtmp;
    const float levels = c->format == BN_LM_I8 ? 127.0f : 31.0f;
    float amax = 0.0f;
    int finite = 1;
    for (size_t j = 0; j < k; j++) {
        if (!isfinite(w[j]))
            finite = 0;
        else if (fabsf(w[j]) > amax)
            amax = fabsf(w[j]);
    }
    if (!finite || amax == 0.0f) {
        memset(q, 0, k);
        if (c->format == BN_LM_U6)
            bn_u6_pack_row(q, k, c->q + (size_t)r * c->row_bytes);
        c->scale[r] = 0.0f;
        /* a zero row has A = 0 and E = 0 (exactly right: its logit is 0); a non-finite row
         * gets an infinite bound and is always computed exactly */
        c->dw[r] = finite ? 0.0f : INFINITY;
        c->wn[r] = finite ? 0.0f : INFINITY;
        c->qn[r] = 0.0f;
        return;
    }
    /* Any rounding of w/d would do (the norms below measure what was chosen): adding and
     * subtracting 1.5 * 2^23 rounds |y| < 2^22 to an integer without a libm call, so the loop
     * vectorizes. */
    const float d = amax / levels, inv = levels / amax, magic = 12582912.0f;
    double dw2 = 0.0, wn2 = 0.0, qn2 = 0.0;
    for (size_t j = 0; j < k; j++) {
        float v = (w[j] * inv + magic) - magic;
        v = v > levels ? levels : v < -levels ? -levels : v;
        q[j] = (int8_t)v;
        const double wt = (double)d * (double)v; /* exact: 24 x 8 bits */
        const double e = (double)w[j] - wt;
        dw2 += e * e;
        wn2 += (double)w[j] * w[j];
        qn2 += wt * wt;
    }
    if (c->format == BN_LM_U6)
        bn_u6_pack_row(q, k, c->q + (size_t)r * c->row_bytes);
    const double infl = 1.0 + 1e-9; /* double rounding of k <= 2^17 squares and a sqrt */
    c->scale[r] = d;
    c->dw[r] = up_f(sqrt(dw2) * infl);
    c->wn[r] = up_f(sqrt(wn2) * infl);
    c->qn[r] = up_f(sqrt(qn2) * infl);
}

/* The copy is read whole for every token: on 2 MB transparent huge pages (where the OS offers
 * them; the advice is harmless otherwise) the int8 pass read 26-31 GB/s against 18-19 from
 * 4 KB pages on a Zen 4 EPYC (standalone loop, alternated). NULL when out of memory. */
static uint8_t *alloc_huge(size_t bytes, void **map, size_t *len)
{
    const size_t huge = (size_t)2 << 20;
    *len = bytes + huge;
    *map = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (*map == MAP_FAILED) {
        *map = NULL;
        return NULL;
    }
    uint8_t *p = (uint8_t *)(((uintptr_t)*map + huge - 1) & ~(uintptr_t)(huge - 1));
    (void)madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

static void build_chunk(void *arg, size_t chunk, int ith)
{
    build_job *job = arg;
    bn_lm_compact *c = job->c;
    float *w = job->tmp + (size_t)ith * c->k;
    int8_t *q = job->qtmp + (size_t)ith * c->k;
    const size_t b = chunk * BUILD_CHUNK;
    const size_t e = b + BUILD_CHUNK < c->n_rows ? b + BUILD_CHUNK : c->n_rows;
    for (size_t r = b; r < e; r++) {
        job->row(job->src, (uint32_t)r, w);
        build_row(c, (uint32_t)r, w, q);
    }
    if (job->done)
        job->done(job->src, (uint32_t)b, (uint32_t)e);
}

bn_lm_compact *bn_lm_compact_build(uint32_t n_rows, uint32_t k, bn_lm_format format,
                                   bn_lm_row_fn row, bn_lm_done_fn done, const void *src,
                                   bn_threadpool *tp, bn_err *err)
{
    if (k == 0 || k > BN_MATVEC_I8_K_MAX || n_rows == 0) {
        bn_fail(err, BN_E_UNSUPPORTED,
                "screened LM head: %u x %u head out of range (rows of 1..%zu)", n_rows, k,
                (size_t)BN_MATVEC_I8_K_MAX);
        return NULL;
    }
    bn_lm_compact *c = calloc(1, sizeof *c);
    const int nt = bn_threadpool_size(tp);
    float *tmp = malloc((size_t)nt * k * sizeof *tmp);
    int8_t *qtmp = malloc((size_t)nt * k);
    if (c) {
        c->n_rows = n_rows;
        c->k = k;
        c->format = format;
        c->row_bytes = format == BN_LM_I8 ? k : bn_u6_row_bytes(k);
        c->q = alloc_huge((size_t)n_rows * c->row_bytes, &c->q_map, &c->q_len);
        c->scale = malloc((size_t)n_rows * sizeof *c->scale);
        c->dw = malloc((size_t)n_rows * sizeof *c->dw);
        c->wn = malloc((size_t)n_rows * sizeof *c->wn);
        c->qn = malloc((size_t)n_rows * sizeof *c->qn);
    }
    if (!c || !tmp || !qtmp || !c->q || !c->scale || !c->dw || !c->wn || !c->qn) {
        free(tmp);
        free(qtmp);
        bn_lm_compact_free(c);
        bn_fail(err, BN_E_NOMEM, "screened LM head: out of memory for a %.1f MiB copy",
                (double)n_rows * (k + 16) / (1024.0 * 1024.0));
        return NULL;
    }
    build_job job = {c, row, done, src, tmp, qtmp};
    bn_threadpool_run_chunks(tp, (n_rows + BUILD_CHUNK - 1) / BUILD_CHUNK, build_chunk, &job);
    free(tmp);
    free(qtmp);
    for (uint32_t r = 0; r < n_rows; r++)
        if (isfinite(c->dw[r])) {
            c->dw_sum += c->dw[r];
            c->qn_sum += c->qn[r];
        }
    return c;
}

void bn_lm_compact_free(bn_lm_compact *c)
{
    if (!c)
        return;
    if (c->q_map)
        munmap(c->q_map, c->q_len);
    free(c->scale);
    free(c->dw);
    free(c->wn);
    free(c->qn);
    free(c);
}

size_t bn_lm_compact_bytes(const bn_lm_compact *c)
{
    return c ? (size_t)c->n_rows * (c->row_bytes + 4 * sizeof(float)) : 0;
}

bn_lm_format bn_lm_compact_format(const bn_lm_compact *c) { return c->format; }

uint32_t bn_lm_compact_rows(const bn_lm_compact *c) { return c ? c->n_rows : 0; }

double bn_lm_f16_gamma(size_t k)
{
    const double nu = (double)(k + 2) * 0x1p-24;
    return nu / (1.0 - nu);
}

/* ------------------------------------------------------------------ per token */

bn_lm_screen *bn_lm_screen_create(const bn_lm_compact *c, bn_err *err)
{
    bn_lm_screen *s = calloc(1, sizeof *s);
    if (s) {
        s->c = c;
        s->xq = malloc(c->k);
        s->xl = malloc(c->k);
        s->approx = malloc((size_t)c->n_rows * sizeof *s->approx);
        s->approx32 = malloc((size_t)c->n_rows * sizeof *s->approx32);
        s->rows = malloc((size_t)c->n_rows * sizeof *s->rows);
        s->state = calloc(c->n_rows, 1);
        s->heap_lo = malloc(BN_LM_KEEP_MAX * sizeof *s->heap_lo);
        s->heap_id = malloc(BN_LM_KEEP_MAX * sizeof *s->heap_id);
        s->cand = malloc((size_t)c->n_rows * sizeof *s->cand);
    }
    if (!s || !s->xq || !s->xl || !s->approx || !s->approx32 || !s->rows || !s->state ||
        !s->heap_lo || !s->heap_id || !s->cand) {
        bn_lm_screen_free(s);
        bn_fail(err, BN_E_NOMEM, "screened LM head: out of memory for the scratch of %u rows",
                c->n_rows);
        return NULL;
    }
    return s;
}

void bn_lm_screen_free(bn_lm_screen *s)
{
    if (!s)
        return;
    free(s->xq);
    free(s->xl);
    free(s->approx);
    free(s->approx32);
    free(s->rows);
    free(s->state);
    free(s->heap_lo);
    free(s->heap_id);
    free(s->cand);
    free(s);
}

typedef struct approx_job {
    const bn_lm_screen *s;
    const bn_kernels *kern;
} approx_job;

/* Whether the int8 copy's activation takes two planes this token (u6 always does): where the
 * path has matvec_i8x2 and the one-plane activation's error (ndx1, against ||x|| =
 * nx) would make the bound's activation term more than twice its weight term, summed over the
 * rows: an activation with outliers (one coarse int8 step for every element). Then the second
 * plane (~8% more time for the pass, bench-kernels) cuts the rows computed exactly by up to
 * thousands; on an even activation it would cost more than it saves. */
static int two_planes(const bn_lm_compact *c, const bn_kernels *kern, double nx, double ndx1)
{
    return kern->matvec_i8x2 != NULL && ndx1 * c->qn_sum > 2.0 * nx * c->dw_sum;
}

/* x quantized to one plane (L = 127, s->xq) or two (L = 32385 = 255 * 127, p = 255 xh + xl with
 * xh = p / 255 rounded into s->xq, |xl| <= 127 into s->xl), x~ = e p; returns e and sets
 * *ndx = ||x - x~|| (rounded up). */
static float quantize_x(bn_lm_screen *s, const float *x, float amax, int planes, double *ndx)
{
    const long levels = planes == 1 ? 127 : 32385;
    const float e_x = amax / (float)levels;
    double ndx2 = 0.0;
    for (size_t j = 0; j < s->c->k; j++) {
        long v = e_x > 0.0f ? lrint((double)x[j] / (double)e_x) : 0;
        v = v > levels ? levels : v < -levels ? -levels : v;
        if (planes == 1) {
            s->xq[j] = (int8_t)v;
        } else {
            const long h = lrint((double)v / 255.0);
            s->xq[j] = (int8_t)h;
            s->xl[j] = (int8_t)(v - 255 * h);
        }
        const double dx = (double)x[j] - (double)e_x * (double)v; /* e_x * v exact: 24 x 15 bits */
        ndx2 += dx * dx;
    }
    *ndx = sqrt(ndx2) * (1.0 + 1e-9);
    return e_x;
}

/* A share of the rows' integer sums, in the copy's format (a path without a u6 kernel takes
 * the scalar definition: the same integers). */
static void approx_worker(void *arg, int ith, int nth)
{
    const approx_job *job = arg;
    const bn_lm_screen *s = job->s;
    const bn_lm_compact *c = s->c;
    size_t b, e;
    bn_split_range(c->n_rows, 64, ith, nth, &b, &e);
    if (b >= e)
        return;
    if (c->format == BN_LM_U6) {
        (job->kern->matvec_u6 ? job->kern->matvec_u6 : bn_u6_matvec)(c->q, c->k, b, e, s->xq, s->xl,
                                                                     s->approx);
        return;
    }
    if (s->planes == 2)
        job->kern->matvec_i8x2((const int8_t *)c->q, c->k, b, e, s->xq, s->xl, s->approx);
    else
        job->kern->matvec_i8((const int8_t *)c->q, c->k, b, e, s->xq, s->approx32);
}

/* Lower and upper bounds of row r's exact logit (NaN-free for a finite row). */
static void row_bounds(const bn_lm_screen *s, uint32_t r, double e_x, double nx, double ndx,
                       double gamma, double *lo, double *hi)
{
    const bn_lm_compact *c = s->c;
    const double I = s->planes == 1 ? (double)s->approx32[r] : (double)s->approx[r];
    const double a = (double)c->scale[r] * e_x * I;
    const double err = (((double)c->dw[r] + gamma * (double)c->wn[r]) * nx +
                        (double)c->qn[r] * ndx) *
                           (1.0 + 1e-6) +
                       fabs(a) * 1e-12 + 1e-30;
    *lo = a - err;
    *hi = a + err;
}

/* Min-heap on lower bounds: the root is the worst of the best `n` seen. */
static void heap_down(double *lo, int32_t *id, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && lo[l] < lo[w])
            w = l;
        if (r < n && lo[r] < lo[w])
            w = r;
        if (w == i)
            return;
        double t = lo[i];
        lo[i] = lo[w];
        lo[w] = t;
        int32_t u = id[i];
        id[i] = id[w];
        id[w] = u;
        i = w;
    }
}

size_t bn_lm_screen_run(bn_lm_screen *s, const bn_kernels *kern, bn_threadpool *tp, const float *x,
                        double gamma, const bn_lm_request *req, bn_lm_exact_fn exact, void *user,
                        float *logits)
{
    const bn_lm_compact *c = s->c;
    const uint32_t n = c->n_rows, keep = req->keep;
    const size_t k = c->k;
    if (keep == 0 || keep > BN_LM_KEEP_MAX || keep > n)
        return 0;

    /* the activation: finite, quantized to [-L, L] with x~ = e p, and the two norms; L = 127
     * in one int8 plane, or 32385 = 255 * 127 in two (two_planes: the kernel takes p = 255 xh
     * + xl, xh = p / 255 rounded, |xl| <= 127) */
    float amax = 0.0f;
    double nx2 = 0.0;
    for (size_t j = 0; j < k; j++) {
        if (!isfinite(x[j]))
            return 0;
        if (fabsf(x[j]) > amax)
            amax = fabsf(x[j]);
        nx2 += (double)x[j] * x[j];
    }
    const double nx = sqrt(nx2) * (1.0 + 1e-9);
    s->planes = c->format == BN_LM_U6 ? 2 : 1;
    double ndx;
    float e_x = quantize_x(s, x, amax, s->planes, &ndx);
    if (s->planes == 1 && two_planes(c, kern, nx, ndx)) {
        s->planes = 2;
        e_x = quantize_x(s, x, amax, 2, &ndx);
    }

    approx_job aj = {s, kern};
    bn_threadpool_run(tp, approx_worker, &aj);

    /* named rows first; they are exact and never set the threshold */
    size_t n_rows = 0, n_named = 0;
    for (size_t i = 0; i < req->n_must; i++) {
        const int32_t r = req->must[i];
        if (r >= 0 && (uint32_t)r < n && !s->state[r]) {
            s->state[r] = 1;
            s->rows[n_rows++] = r;
            n_named++;
        }
    }
    size_t ret = 0;
    if (n - n_named < keep)
        goto done; /* not enough unnamed rows to bound anything */

    /* the `keep` unnamed rows with the best lower bounds */
    uint32_t hn = 0;
    for (uint32_t r = 0; r < n; r++) {
        if (s->state[r])
            continue;
        double lo, hi;
        row_bounds(s, r, (double)e_x, nx, ndx, gamma, &lo, &hi);
        if (!(lo >= -HUGE_VAL))
            lo = -HUGE_VAL; /* NaN: as weak as possible (it is still computed below) */
        if (hn < keep) {
            s->heap_lo[hn] = lo;
            s->heap_id[hn++] = (int32_t)r;
            if (hn == keep)
                for (uint32_t i = keep / 2; i-- > 0;)
                    heap_down(s->heap_lo, s->heap_id, keep, i);
        } else if (lo > s->heap_lo[0]) {
            s->heap_lo[0] = lo;
            s->heap_id[0] = (int32_t)r;
            heap_down(s->heap_lo, s->heap_id, keep, 0);
        }
    }
    for (uint32_t i = 0; i < keep; i++) {
        s->state[s->heap_id[i]] = 2;
        s->rows[n_rows++] = s->heap_id[i];
    }
    exact(user, s->rows, n_rows, logits);
    /* T: the smallest exact logit among them, as the sampler sees it (NaN counts as -inf) */
    double t = HUGE_VAL;
    for (uint32_t i = 0; i < keep; i++) {
        const float v = logits[s->heap_id[i]];
        const double dv = isnan(v) ? -HUGE_VAL : (double)v;
        if (dv < t)
            t = dv;
    }

    /* Every unnamed row whose upper bound reaches T is a candidate. They are computed in the
     * order of their upper bounds, best first, a chunk at a time, and T rises to the
     * `keep`-th best exact logit seen so far (a min-heap of exact values): once the next
     * candidate's upper bound is below T, it and every one after it are below `keep` exact
     * unnamed rows. With a loose bound this stops long before the last candidate (the u6
     * copy's greedy and top-k 40 draws compute about half of them). */
    for (uint32_t i = 0; i < keep; i++) {
        const float v = logits[s->heap_id[i]];
        s->heap_lo[i] = isnan(v) ? -HUGE_VAL : (double)v;
    }
    for (uint32_t i = keep / 2; i-- > 0;)
        heap_down(s->heap_lo, s->heap_id, keep, i);
    size_t n_cand = 0;
    for (uint32_t r = 0; r < n; r++) {
        if (s->state[r])
            continue;
        double lo, hi;
        row_bounds(s, r, (double)e_x, nx, ndx, gamma, &lo, &hi);
        if (hi < t) {
            logits[r] = -INFINITY;
        } else {
            s->cand[n_cand].hi = hi >= -HUGE_VAL ? hi : HUGE_VAL; /* NaN: computed first */
            s->cand[n_cand++].id = (int32_t)r;
        }
    }
    qsort(s->cand, n_cand, sizeof *s->cand, by_upper_bound);
    size_t next = 0, chunk = EXACT_CHUNK;
    while (next < n_cand && s->cand[next].hi >= t) {
        const size_t first = n_rows;
        for (; next < n_cand && n_rows - first < chunk && s->cand[next].hi >= t; next++) {
            s->state[s->cand[next].id] = 2;
            s->rows[n_rows++] = s->cand[next].id;
        }
        exact(user, s->rows + first, n_rows - first, logits);
        for (size_t i = first; i < n_rows; i++) {
            const float v = logits[s->rows[i]];
            const double dv = isnan(v) ? -HUGE_VAL : (double)v;
            if (dv > s->heap_lo[0]) {
                s->heap_lo[0] = dv;
                s->heap_id[0] = s->rows[i];
                heap_down(s->heap_lo, s->heap_id, keep, 0);
            }
        }
        t = s->heap_lo[0];
        chunk *= 2;
    }
    for (; next < n_cand; next++)
        logits[s->cand[next].id] = -INFINITY;
    ret = n_rows;
done:
    for (size_t i = 0; i < n_rows; i++)
        s->state[s->rows[i]] = 0;
    return ret;
}
