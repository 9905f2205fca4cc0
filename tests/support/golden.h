/* Reader for the reference's golden files (shared/reference/golden/tiny-*.json, FORMAT.md 8):
 * only the fields the forward tests compare against, read with the product's JSON parser
 * (src/json, itself tested by test_json and fuzz_json). */
#ifndef BN_GOLDEN_H
#define BN_GOLDEN_H

#include <stddef.h>
#include <stdint.h>

typedef struct bn_golden {
    uint32_t n_vocab;
    uint32_t n_batch; /* the reference's batch: 1 in *.b1.json */
    int32_t *prompt_ids;
    size_t n_prompt;
    int32_t *greedy_ids;
    size_t n_greedy;
    float *prompt_logits; /* [n_prompt][n_vocab] */
    float *greedy_logits; /* [n_greedy][n_vocab] */
    float *greedy_margin; /* [n_greedy] top-2 margins */
} bn_golden;

/* 0 on success; -1 with a message in msg (of size msg_len) otherwise. */
int bn_golden_load(const char *path, bn_golden *g, char *msg, size_t msg_len);
void bn_golden_free(bn_golden *g);

#endif
