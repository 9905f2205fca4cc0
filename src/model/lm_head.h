/* The screened LM head: exact logits for every token the sampler can draw, at a fraction of
 * the f16 head's bytes per token.
 *
 * A compact copy of the head (int8 or 6-bit rows with a per-row scale, built once) gives an
 * approximate logit for every row through an integer kernel (kernels.h: matvec_i8 or
 * matvec_u6), and each row's exact
 * logit is bounded around it (Cauchy-Schwarz on the quantization errors of the row and of the
 * activation, plus the exact kernel's float rounding; lm_head.c says why it is a bound). Then
 * only rows whose bound reaches the `keep` best exact logits, and the rows the caller names
 * (tokens a penalty will change), are computed exactly with the exact head; every other row
 * is provably below `keep` exact rows that are not named, and is set to -INFINITY.
 *
 * The screen does not know how the exact head computes a row: it gets the head's rows as
 * floats once (to build the copy), a relative rounding bound of the exact kernel, and a
 * callback that computes a list of rows exactly. */
#ifndef BN_LM_HEAD_H
#define BN_LM_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "kernels.h"
#include "threadpool.h"

/* Largest `keep` the screen handles; larger requests take the full head. */
enum {
    BN_LM_KEEP_MAX = 1024
};

typedef struct bn_lm_compact bn_lm_compact;

/* The copy's rows: int8 (values in [-127, 127], kernels.h matvec_i8, int8 activation: the
 * default) or u6 (values in [-31, 31], kernels.h matvec_u6, a 15-bit activation): three
 * quarters of the bytes for a bound about twice as wide, so a greedy token reads fewer bytes
 * but a top-k draw computes ~5x the exact rows, each a random 5 KB read (README, "6-bit
 * copy"). */
typedef enum bn_lm_format {
    BN_LM_I8,
    BN_LM_U6
} bn_lm_format;

/* Writes row r of the exact head (k floats, exactly the values the exact kernel multiplies). */
typedef void (*bn_lm_row_fn)(const void *src, uint32_t r, float *out);

/* Rows [r0, r1) have been read and will not be read again by the build (so that their pages
 * can be released while the build goes on: peak RSS does not hold both heads). */
typedef void (*bn_lm_done_fn)(const void *src, uint32_t r0, uint32_t r1);

/* Builds the compact copy of an n_rows x k head on the pool's threads (tp may be NULL; done
 * may be NULL). NULL + err when k is out of the integer kernel's range or memory runs out. */
bn_lm_compact *bn_lm_compact_build(uint32_t n_rows, uint32_t k, bn_lm_format format,
                                   bn_lm_row_fn row, bn_lm_done_fn done, const void *src,
                                   bn_threadpool *tp, bn_err *err);
void bn_lm_compact_free(bn_lm_compact *c);
/* Bytes the copy holds (its rows and the per-row scale and bounds). */
size_t bn_lm_compact_bytes(const bn_lm_compact *c);
bn_lm_format bn_lm_compact_format(const bn_lm_compact *c);
uint32_t bn_lm_compact_rows(const bn_lm_compact *c);

/* The float rounding bound of an f16 head kernel (products of halves exact in float, sums of
 * k of them in float in any order, result rounded to float): |computed - exact| <=
 * gamma * sum|w_j x_j|. See lm_head.c. */
double bn_lm_f16_gamma(size_t k);

/* What the sampler can draw from: the `keep` best logits (1 = greedy), plus the rows it will
 * change (penalized tokens), exact whatever their value. */
typedef struct bn_lm_request {
    uint32_t keep;
    const int32_t *must; /* ids outside [0, n_rows) are ignored */
    size_t n_must;
} bn_lm_request;

/* Computes logits[rows[i]] exactly for i < n (the order of rows is irrelevant). */
typedef void (*bn_lm_exact_fn)(void *user, const int32_t *rows, size_t n, float *logits);

/* Per-context scratch of the screen (sized for one copy). */
typedef struct bn_lm_screen bn_lm_screen;
bn_lm_screen *bn_lm_screen_create(const bn_lm_compact *c, bn_err *err);
void bn_lm_screen_free(bn_lm_screen *s);

/* One token: x = the exact head's input (k floats), gamma = the exact kernel's rounding bound.
 * Fills logits (n_rows floats): exact values for the rows computed, -INFINITY for the rest.
 * Returns the number of rows computed exactly, or 0 when the screen cannot decide (keep is 0
 * or above BN_LM_KEEP_MAX, fewer than keep rows are not named, x is not finite): then logits
 * is untouched and the caller runs the full head. */
size_t bn_lm_screen_run(bn_lm_screen *s, const bn_kernels *kern, bn_threadpool *tp, const float *x,
                        double gamma, const bn_lm_request *req, bn_lm_exact_fn exact, void *user,
                        float *logits);

#endif
