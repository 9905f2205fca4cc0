/* Token sampler with llama.cpp's semantics and a private, portable PRNG.
 *
 * Chain (the order llama-cli applies by default, FORMAT.md 6.4, minus the samplers that are
 * off by default there — logit bias, tail-free, typical):
 *
 *   logits -> penalties (last n tokens) -> top-k -> top-p -> min-p -> temperature
 *          -> softmax -> draw
 *
 * and with temp <= 0:  logits -> penalties -> greedy (first maximum = lowest id).
 *
 * Note top-p and min-p see the logits BEFORE temperature (as in llama.cpp), so temperature
 * only reshapes the distribution over the survivors.
 *
 * Determinism: candidates are ordered by (logit descending, id ascending), a total order, so
 * the result does not depend on the sort algorithm; probabilities are summed in double; the
 * draw uses SplitMix64 (src/base/rng.h: bn_splitmix64) with state = seed, one 64-bit output per
 * draw, its top 53 bits as a uniform double in [0,1). Same logits + same params + same seed = same tokens on
 * every machine and thread count. */
#ifndef BN_SAMPLER_H
#define BN_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "bitnet.h" /* bn_sampling_params */
#include "error.h"

/* Checks ranges; -1 + err naming the parameter. */
int bn_sampling_check(const bn_sampling_params *p, bn_err *err);

typedef struct bn_sampler bn_sampler;

/* history_cap: most tokens kept for the penalty window (the context length): the window when
 * repeat_last_n = -1 and its cap otherwise. NULL + err on bad params or allocation failure. */
bn_sampler *bn_sampler_create(const bn_sampling_params *p, uint32_t n_vocab, uint32_t history_cap,
                              bn_err *err);
void bn_sampler_free(bn_sampler *s);
/* Tokens the penalty window holds (what was allocated for it). */
uint32_t bn_sampler_window(const bn_sampler *s);

/* Forgets the penalty history and re-seeds the PRNG with params.seed. */
void bn_sampler_reset(bn_sampler *s);
/* Appends a token to the penalty history (prompt tokens too, as llama-cli does). */
void bn_sampler_accept(bn_sampler *s, int32_t token);
/* Picks the next token from n_vocab logits (not modified). Does not accept it. */
int32_t bn_sampler_sample(bn_sampler *s, const float *logits);
/* After bn_sampler_sample: the probability of token `chosen` and the n most likely tokens
 * (n <= n_vocab) under the softmax of the penalized logits that sample saw. */
void bn_sampler_probs(const bn_sampler *s, int32_t chosen, bn_token_prob *chosen_out,
                      bn_token_prob *top, size_t n);

/* What the next bn_sampler_sample can draw from, for the screened LM head: how many of the
 * best logits it looks at (1 when greedy, top_k; 0 = the whole distribution, top-k off) ... */
uint32_t bn_sampler_keep(const bn_sampler *s);
/* ... and the distinct tokens whose logits the penalty will change (*n of them; the array
 * stays valid until the next call on s). */
const int32_t *bn_sampler_penalized(bn_sampler *s, size_t *n);

#endif
