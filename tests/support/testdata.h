/* Helpers shared by the tests that compute: argmax, seeded random data, and the
 * pool + context + forward set-up around bn_forward. Each fails the running test (cmocka) on
 * an error instead of returning one. */
#ifndef BN_TESTDATA_H
#define BN_TESTDATA_H

#include <stddef.h>
#include <stdint.h>

#include "forward.h"
#include "model.h"
#include "threadpool.h"

/* Index of the largest value, the lowest index on ties (the reference's greedy choice). */
uint32_t bn_test_argmax(const float *x, size_t n);

/* Seeded random data (xorshift64): the same seed gives the same data on every machine. */
typedef struct bn_test_rng {
    uint64_t state; /* never 0 (xorshift would stay at 0): use bn_test_seed or a non-zero value */
} bn_test_rng;
bn_test_rng bn_test_seed(uint64_t seed); /* any seed, 0 included */
uint32_t bn_test_rand(bn_test_rng *r);
/* Uniform in [-amp, amp] on a grid of 1e-6 * amp. */
float bn_test_rand_float(bn_test_rng *r, float amp);
/* n token ids in [0, n_vocab), the same for the same seed. */
void bn_test_rand_tokens(uint64_t seed, int32_t *ids, size_t n, uint32_t n_vocab);

/* A fresh temporary GGUF of bitnet-make-model's PRESET (a bn_test_tmpfile path, removed when
 * the test program exits). malloc'd. */
char *bn_test_preset_file(const char *preset);

/* Asserts that bitnet-make-model's PRESET has this architecture and these sizes, and passes
 * bn_synth_check; returns its parameters (for further checks). */
struct bn_synth_params bn_test_preset_shape(const char *preset, const char *arch, uint32_t n_embd,
                                            uint32_t n_layer, uint32_t n_head, uint32_t n_head_kv,
                                            uint32_t n_ff, uint32_t n_vocab);

/* Loads a model GGUF. */
bn_model *bn_test_load_model(const char *path);

/* A context of n_ctx positions for batches of up to n_batch tokens, with a thread pool of
 * `threads` threads when threads > 1 (else none: the calling thread only). */
typedef struct bn_test_ctx {
    bn_threadpool *pool;
    bn_context *c;
} bn_test_ctx;
bn_test_ctx bn_test_context(const bn_model *m, uint32_t n_ctx, uint32_t n_batch, int threads);
void bn_test_context_free(bn_test_ctx *t);

/* The logits of all n tokens (n rows of n_vocab, malloc'd), evaluated from position 0 in
 * batches of n_batch with `threads` threads in a fresh context of n_ctx positions. */
float *bn_test_forward_all(const bn_model *m, const int32_t *tokens, uint32_t n, uint32_t n_ctx,
                           uint32_t n_batch, int threads);

#endif
