/* The forward pass of BitNet b1.58 (FORMAT.md section 4) over a context: a KV cache and scratch
 * buffers sized once for n_ctx positions and batches of up to n_batch tokens.
 *
 * Every token takes the reference's decode-path precision (FORMAT.md 4.8: q rounded to f16 for
 * the scores, probabilities rounded to f16 for probs.V, the LM-head input rounded to f16), also
 * when a prompt is evaluated as one batch, so logits do not depend on how the prompt is cut
 * into batches nor on the number of threads (bit-identical; src/EXACTNESS.md says why). */
#ifndef BN_FORWARD_H
#define BN_FORWARD_H

#include <stdint.h>

#include "error.h"
#include "lm_head.h"
#include "model.h"
#include "threadpool.h"

typedef struct bn_context bn_context;

/* n_ctx >= 1 positions of KV cache; n_batch >= 1 = most tokens evaluated together (prefill
 * block). tp may be NULL (one thread); it is not owned and must outlive the context, as must
 * the model. NULL + err on failure. */
bn_context *bn_context_create(const bn_model *m, uint32_t n_ctx, uint32_t n_batch,
                              bn_threadpool *tp, bn_err *err);
void bn_context_free(bn_context *c);

/* Tokens held in the KV cache. */
uint32_t bn_context_pos(const bn_context *c);
/* Forgets cache cells >= pos (pos larger than the current position is clamped to it). */
void bn_context_set_pos(bn_context *c, uint32_t pos);
uint32_t bn_context_n_ctx(const bn_context *c);
uint32_t bn_context_n_batch(const bn_context *c);

/* Evaluates tokens[0..n) at positions pos..pos+n-1 (in batches of at most n_batch, each batch
 * matrix x matrix) and appends them to the KV cache. If logits != NULL, writes n_vocab floats
 * for each of the LAST n_logits tokens (n_logits <= n), row after row. Allocates nothing.
 * -1 + err (and the cache unchanged) when the context would overflow, a token id is out of
 * range, n == 0 or n_logits > n. */
int bn_forward(bn_context *c, const int32_t *tokens, uint32_t n, float *logits, uint32_t n_logits,
               bn_err *err);

/* The LM head of the following bn_forward calls: req == NULL (the default) computes every
 * logit; otherwise, when the model has a compact copy (bn_model_build_lm_compact) and one row
 * of logits is wanted, the screened head (lm_head.h) computes exactly the rows req asks for
 * and sets the others to -INFINITY (it falls back to the full head when it cannot decide).
 * req is not copied: it must stay valid while it is set. */
void bn_context_set_lm_request(bn_context *c, const bn_lm_request *req);
/* Rows the last LM head computed exactly (n_vocab per row of logits for the full head). */
size_t bn_context_lm_rows(const bn_context *c);
/* Whether the last LM head was the screened one. */
int bn_context_lm_screened(const bn_context *c);

#endif
