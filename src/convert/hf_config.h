/* config.json of a Hugging Face checkpoint, mapped to the GGUF family it converts to:
 *   BitnetForCausalLM  (1bitLLM bitnet_b1_58-*)                -> "bitnet"
 *   LlamaForCausalLM, LLaMAForCausalLM, MistralForCausalLM     -> "llama" (Llama3-8B-1.58,
 *                                                                 Falcon3-*-1.58bit)
 *   BitNetForCausalLM  (microsoft/bitnet-b1.58-2B-4T, -bf16)   -> "bitnet-b1.58"
 * Any other architecture is refused by name. Sizes are checked (positive, heads dividing). */
#ifndef BN_HF_CONFIG_H
#define BN_HF_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "json.h"

typedef enum bn_family {
    BN_FAM_BITNET,
    BN_FAM_LLAMA,
    BN_FAM_B158,
} bn_family;

/* an optional value read from the file */
typedef struct bn_opt_u32 {
    bool has;
    uint32_t v;
} bn_opt_u32;
typedef struct bn_opt_f64 {
    bool has;
    double v;
} bn_opt_f64;

typedef struct bn_hf_config {
    char arch_class[64]; /* architectures[0] */
    bn_family family;
    const char *gguf_arch; /* "bitnet", "llama", "bitnet-b1.58" */
    uint32_t n_embd, n_layer, n_head, n_vocab;
    bn_opt_u32 n_head_kv, n_ff, n_ctx, head_dim;
    bn_opt_f64 rope_theta, rms_eps;
    bool tied;
    bn_opt_f64 rope_linear_factor; /* rope_scaling {"type": "linear", "factor": x} */
    /* bos, eos, unk, sep, pad, cls, mask token ids (SpecialVocab's order) */
    bn_opt_u32 special[7];
} bn_hf_config;

int bn_hf_config_parse(const char *text, size_t len, bn_hf_config *c, bn_err *err);
/* "bos", "eos", ... for index i of special[] */
const char *bn_special_type(int i);

#endif
