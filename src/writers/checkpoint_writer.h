/* Synthetic Hugging Face checkpoints (a folder as `huggingface-cli download` leaves it) of each
 * family bitnet.cpp converts, for bitnet-convert's tests and the reference pipeline's goldens:
 *
 *   config.json                 the family's field names (below)
 *   model.safetensors           or model-0000i-of-0000N.safetensors + model.safetensors.index.json
 *   tokenizer.json              byte-level BPE (the synthetic vocabulary of synthetic_vocab.c)
 *     or tokenizer.model        SentencePiece ModelProto (pieces with score and type)
 *   tokenizer_config.json       special tokens, add_bos_token, a chat template
 *   generation_config.json
 *
 * Families (arch = the GGUF architecture the folder converts to):
 *   "bitnet"        1bitLLM bitnet_b1_58-*: BitnetForCausalLM, sub-norms named
 *                   self_attn.inner_attn_ln / mlp.ffn_layernorm, tied embeddings (no lm_head);
 *   "llama"         Llama3-8B-1.58 / Falcon3-*-1.58bit: LlamaForCausalLM, no sub-norms,
 *                   lm_head.weight unless tied;
 *   "bitnet-b1.58"  microsoft/bitnet-b1.58-2B-4T(-bf16): BitNetForCausalLM (model_type
 *                   "bitnet", relu2), sub-norms self_attn.attn_sub_norm / mlp.ffn_sub_norm, tied.
 * Linear weights are [out, in] row-major as PyTorch stores them. "ternary" weights are
 * m * {-1, 0, +1} with one magnitude m per tensor exactly representable in the dtype (what a
 * 1.58-bit release holds once unpacked); otherwise they are full-precision (approximately
 * normal). "packed" (bitnet-b1.58 and llama): each linear weight is U8 [out/4, in], byte (r, c)
 * holding the codes (w + 1) of rows r, out/4 + r, 2*out/4 + r, 3*out/4 + r in bits 1..0, 3..2,
 * 5..4, 7..6, plus a `<name>_scale` tensor ("weight_scale", [1], the dtype) with
 * w = code / weight_scale, as the 2B-4T release stores them.
 *
 * Every value is a function of (seed, tensor name, index) only: byte-deterministic, and a
 * tensor is streamed in chunks, so the 2B-4T shape (~5 GB in bf16) needs a few MB of memory. */
#ifndef BN_CHECKPOINT_WRITER_H
#define BN_CHECKPOINT_WRITER_H

#include "synthetic_model.h"

typedef enum bn_ckpt_dtype {
    BN_CKPT_F32,
    BN_CKPT_F16,
    BN_CKPT_BF16,
} bn_ckpt_dtype;

typedef struct bn_ckpt_params {
    bn_synth_params shape; /* arch, sizes, seed, zero_frac, rope_theta, rms_eps, n_ctx, tied */
    bn_ckpt_dtype dtype;
    int ternary; /* linear weights m * {-1, 0, +1} (else full precision) */
    int packed;  /* U8 packed codes + weight_scale (implies ternary) */
    int shards;  /* 1 = model.safetensors; N > 1 = N shards and the index */
    int spm;     /* tokenizer.model (SentencePiece) instead of tokenizer.json */
} bn_ckpt_params;

/* Defaults: the synthetic defaults, bf16, ternary, one shard, BPE. */
void bn_ckpt_defaults(bn_ckpt_params *p);
int bn_ckpt_check(const bn_ckpt_params *p, bn_err *err);
/* Writes the folder DIR (created if missing; existing files of the same names replaced). */
int bn_ckpt_write(const bn_ckpt_params *p, const char *dir, bn_err *err);

/* The tokenizer files (checkpoint_tokenizer.c). n_vocab = config.json's vocab_size. */
int bn_ckpt_write_tokenizer(const bn_ckpt_params *p, const char *dir, bn_err *err);

/* Writes BUF to DIR/NAME (helper shared by the writer's files). */
int bn_ckpt_write_file(const char *dir, const char *name, const void *data, size_t n, bn_err *err);

#endif
