/* Synthetic GGUF files of each architecture bitnet.cpp runs. For "bitnet-b1.58": exactly the
 * structure of the published 2B-4T file
 * (FORMAT.md 1.1-1.2, 3; the same as shared/reference/make_synthetic_gguf.py): the same 24
 * metadata keys in the same order and types, the same tensor names and types in the
 * lexicographic Hugging Face order (layers 0, 1, 10, 11, ..., 2, ...), I2_S 128/32 packing
 * with the f32 scale and 28 zero bytes after the codes, F16 token_embd, F32 norms.
 *
 * Contents are random but a deterministic function of the parameters (a private PRNG seeded
 * from the seed and each tensor's name, so one tensor does not change when others do):
 * ternary weights with a share zero_frac of zeros and scale gain/sqrt(K*(1-zero_frac)),
 * norms uniform in [0.6, 1.4], embeddings approximately normal with std embd_std.
 *
 * Vocabulary: copied from another GGUF (tokens, token_type, merges, bos/eos; e.g. the Llama-3
 * vocabulary) or synthetic: 256 byte tokens in GPT-2 byte-to-unicode order, merged tokens
 * built from a small built-in corpus and seeded pseudo-words, then 16 Llama-3-named special
 * tokens (CONTROL); BOS = first special, EOS = second. The synthetic vocabulary works for any
 * size (also 128256 when no vocabulary file is given), but is not the Llama-3 one.
 *
 * "bitnet" (1bitLLM bitnet_b1_58-*) and "llama" (Llama3-8B-1.58, Falcon3-*-1.58bit): the keys
 * and tensors bitnet.cpp's converter writes for them, then the tensor types llama-quantize
 * I2_S gives (README "Models"): no sub-norms in "llama"; a separate output.weight in "llama"
 * unless tied; the LM head (output.weight, or token_embd when tied) Q8_0 when n_embd is not a
 * multiple of 256, else F16; a separate token_embd F16. The vocabulary is byte-level BPE for
 * every architecture (the real "bitnet" files carry SentencePiece).
 *
 * f32 = 1 writes the converter's output before llama-quantize instead: every tensor F32, the
 * ternary ones as scale * {-1, 0, +1}, so that the reference's llama-quantize ... I2_S 1 turns
 * it into exactly the I2_S file this writer would write (used to make reference goldens). */
#ifndef BN_SYNTHETIC_MODEL_H
#define BN_SYNTHETIC_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "gguf.h"

typedef struct bn_synth_params {
    char arch[32];  /* general.architecture: "bitnet-b1.58" (default), "bitnet", "llama" */
    char name[128]; /* general.name */
    char pre[32];   /* tokenizer.ggml.pre, "" = none (llama default: "llama-bpe") */
    int tied;       /* llama: no output.weight (the LM head is token_embd) */
    int f32;        /* the converter's F32 file, before llama-quantize (above) */
    int add_eos;    /* write tokenizer.ggml.add_eos_token = true (else the vocabulary file's
                       key, if it has one) */
    uint32_t n_embd, n_layer, n_head, n_head_kv, n_ff;
    uint32_t n_vocab; /* 0 with vocab_gguf = the file's token count */
    uint32_t n_ctx;
    uint64_t seed;
    float zero_frac; /* share of zero ternary weights, [0, 1) */
    float rope_theta, rms_eps;
    float out_gain;         /* extra gain of attn_output/ffn_down scales */
    float embd_std;         /* 0 = 1.5/sqrt(n_embd) */
    const char *vocab_gguf; /* NULL = synthetic vocabulary */
} bn_synth_params;

/* Defaults (no shape): n_ctx 4096, zero_frac 0.35, rope 500000, eps 1e-5, gains 1. */
void bn_synth_defaults(bn_synth_params *p);
/* Defaults plus a named shape: "tiny" (~200 KB), "tiny-a", "tiny-b" (the shapes of the
 * reference's golden models), "2b4t" (the real model, ~1.19 GB); the real shapes of the other
 * families: "bitnet-large", "bitnet-3b" (1bitLLM, arch "bitnet"), "llama3-8b", "falcon3-1b",
 * "falcon3-3b", "falcon3-7b", "falcon3-10b", "falcon-e-1b" (arch "llama"). */
int bn_synth_preset(const char *name, bn_synth_params *p, bn_err *err);
const char *const *bn_synth_preset_names(void); /* NULL-terminated */

/* Shape rules of the reference kernels (multiples of 128, heads dividing, ...). */
int bn_synth_check(const bn_synth_params *p, bn_err *err);

/* Writes the model to PATH (through a temporary file renamed at the end, so a failure leaves
 * nothing and readers mapping an old PATH are unaffected) or to an open stream. */
int bn_synth_write(const bn_synth_params *p, const char *path, bn_err *err);
int bn_synth_write_stream(const bn_synth_params *p, FILE *f, bn_err *err);

/* I2_S packing of n ternary weights (-1/0/+1, n % 128 == 0) into n/4 + 32 bytes: codes, then
 * the f32 scale, then 28 zero bytes. */
void bn_i2s_pack(const int8_t *w, size_t n, float scale, uint8_t *out);

/* Q8_0 of n floats (n % 32 == 0) as llama-quantize writes it (ggml's quantize_row_q8_0_ref:
 * d = max|x|/127 stored as f16, q = roundf(x / d)); bitnet-convert writes its LM heads with it. */
void bn_q8_0_quantize_ref(const float *x, uint8_t *out, uint64_t n);

/* A vocabulary as the writer stores it. Strings are views (not NUL-terminated). */
typedef struct bn_synth_vocab {
    uint64_t n_tokens, n_merges;
    bn_gguf_str *tokens;
    int32_t *types; /* 1 NORMAL, 3 CONTROL */
    bn_gguf_str *merges;
    uint32_t bos, eos;
    /* SentencePiece vocabularies (tokenizer.ggml.model "llama", loaded by bn_synth_vocab_load):
       no merges; scores, and the flags and ids the converter writes, copied as they are */
    bool spm;
    float *scores;
    int add_eos;    /* -1: no key */
    int64_t unk_id; /* -1: no key */
    int64_t pad_id; /* -1: no key (BPE vocabularies: the eos id is written) */
    /* private */
    char **owned;
    uint64_t n_owned;
    bn_gguf *src;
} bn_synth_vocab;

#define BN_SYNTH_N_SPECIAL 16

int bn_synth_vocab_make(uint32_t n_vocab, uint64_t seed, bn_synth_vocab *v, bn_err *err);
int bn_synth_vocab_load(const char *path, bn_synth_vocab *v, bn_err *err);
void bn_synth_vocab_free(bn_synth_vocab *v);

#endif
