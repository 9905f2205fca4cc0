/* bitnet-convert's library: a Hugging Face checkpoint folder -> one GGUF file, as the reference
 * pipeline (its converter, then llama-quantize ... I2_S 1) writes it, except where the
 * reference is wrong (README "bitnet-convert").
 *
 * Memory stays bounded: safetensors files are mmap'd, each tensor is converted alone and
 * streamed to the output in chunks (the largest buffer is one row or 1 MiB of codes). */
#ifndef BN_CONVERT_H
#define BN_CONVERT_H

#include <stdbool.h>
#include <stdio.h>

#include "error.h"

typedef enum bn_outtype {
    BN_OUT_I2S,
    BN_OUT_F16,
    BN_OUT_F32,
} bn_outtype;

typedef struct bn_convert_opts {
    const char *model_dir;
    const char *out_path;
    bn_outtype outtype;
    bool
        quant_embd; /* token_embd F16 (f16: instead of F32; i2_s: also when it is the tied LM head) */
    bool vocab_only; /* metadata and vocabulary, no tensors */
    const char *pre; /* tokenizer.ggml.pre when the BPE split is not recognised; NULL = detect */
    /* called once per tensor (may be NULL): index, count, name, bytes written so far */
    void (*progress)(void *ctx, size_t i, size_t n, const char *name, unsigned long long bytes);
    void *progress_ctx;
    /* called for every warning line (may be NULL) */
    void (*warn)(void *ctx, const char *msg);
    void *warn_ctx;
} bn_convert_opts;

int bn_convert(const bn_convert_opts *o, bn_err *err);

#endif
