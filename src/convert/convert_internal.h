/* Shared by convert.c (plan, tensors) and metadata.c (keys). */
#ifndef BN_CONVERT_INTERNAL_H
#define BN_CONVERT_INTERNAL_H

#include "convert.h"
#include "gguf_writer.h"
#include "hf_config.h"
#include "safetensors.h"
#include "vocab.h"
#include "weights.h"

enum role {
    R_EMBD,
    R_OUTPUT,
    R_NORM_E,
    R_SUBNORM_E,
    R_SUBNORM_FF,
    R_Q,
    R_K,
    R_V,
    R_O,
    R_GATE,
    R_UP,
    R_DOWN,
};

typedef struct plan_entry {
    char name[96]; /* GGUF name */
    int role, layer;
    size_t src;          /* index in st.tensors */
    ptrdiff_t scale;     /* packed: index of the weight_scale, else -1 */
    uint64_t rows, cols; /* logical PyTorch shape (cols 1 for 1-D) */
    uint32_t n_dims, type;
} plan_entry;

typedef struct conv {
    const bn_convert_opts *o;
    bn_hf_config c;
    bn_vocab_out v;
    bn_safetensors st;
    plan_entry *plan;
    size_t n_plan;
    bool has_output;
    uint64_t n_ff, n_kv_dim;
    size_t n_absmean;
    bn_gguf_writer *w;
    float *row;
    uint8_t *out;
    int8_t *codes;
    uint8_t *packed;
} conv;

void add_metadata(conv *cv);
int write_row(conv *cv, uint32_t type, const float *f, uint64_t n, bn_err *err);

#endif
