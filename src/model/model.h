/* A BitNet b1.58 model: hyper-parameters and views of its weights inside the mapped GGUF.
 * Loading checks every tensor's presence, type and shape; nothing is copied, except the
 * ffn_down rows of a model whose n_ff is not a multiple of 128 (padded to whole blocks). */
#ifndef BN_MODEL_H
#define BN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "gguf.h"
#include "kernels.h"
#include "lm_head.h"
#include "threadpool.h"

/* The architectures bitnet.cpp's pipeline produces, and what distinguishes them (README "Models"):
 * which layer function runs, the FFN activation, the RoPE pairing and where the LM head is. */
typedef enum bn_layer_family {
    BN_FAMILY_BITNET, /* sub-norms before the output and down projections */
    BN_FAMILY_LLAMA,  /* plain Llama block */
} bn_layer_family;

typedef enum bn_ffn_act {
    BN_ACT_RELU2, /* relu(g)^2 * u */
    BN_ACT_SILU,  /* silu(g) * u */
} bn_ffn_act;

typedef enum bn_rope_style {
    BN_ROPE_NEOX, /* pairs (x[i], x[i + head_dim/2]): heads in Hugging Face layout */
    BN_ROPE_NORM, /* pairs (x[2i], x[2i+1]): Q and K permuted by the converter */
} bn_rope_style;

typedef enum bn_lm_head_src {
    BN_LM_HEAD_TIED,   /* always token_embd (output.weight ignored, as the reference does) */
    BN_LM_HEAD_OUTPUT, /* output.weight when present, else token_embd */
} bn_lm_head_src;

typedef struct bn_arch_info {
    const char *name; /* general.architecture, also the prefix of the hyper-parameter keys */
    bn_layer_family family;
    bn_ffn_act act;
    bn_rope_style rope;
    bn_lm_head_src lm_head;
} bn_arch_info;

/* NULL when the architecture is not one of ours. */
const bn_arch_info *bn_arch_find(const char *name, size_t len);

/* A matrix of float rows stored as F16 or Q8_0 (embeddings, LM head): row r (ne0 values) is
 * row_bytes bytes at data + r * row_bytes. */
typedef struct bn_rows {
    const uint8_t *data;
    uint32_t type; /* BN_GGML_F16 or BN_GGML_Q8_0 */
    size_t row_bytes;
} bn_rows;

typedef struct bn_hparams {
    uint32_t n_vocab;
    uint32_t n_ctx_train;
    uint32_t n_embd;
    uint32_t n_layer;
    uint32_t n_ff;
    uint32_t n_head;
    uint32_t n_head_kv;
    uint32_t head_dim; /* n_embd / n_head */
    uint32_t n_rot;    /* rope.dimension_count (== head_dim) */
    float rope_theta;
    float rms_eps;
} bn_hparams;

typedef struct bn_layer {
    const float *attn_norm;     /* [n_embd] */
    bn_ternary wq;              /* n_embd -> n_embd */
    bn_ternary wk;              /* n_embd -> n_head_kv*head_dim */
    bn_ternary wv;              /* n_embd -> n_head_kv*head_dim */
    const float *attn_sub_norm; /* [n_embd]; NULL in the llama family */
    bn_ternary wo;              /* n_embd -> n_embd */
    const float *ffn_norm;      /* [n_embd] */
    bn_ternary w_gate;          /* n_embd -> n_ff */
    bn_ternary w_up;            /* n_embd -> n_ff */
    const float *ffn_sub_norm;  /* [n_ff]; NULL in the llama family */
    bn_ternary w_down;          /* n_ff -> n_embd */
    /* Owned row-aligned copy of w_down's codes when n_ff % 128 != 0 (w_down.k is then n_ff
     * rounded up to 128; model.c pad_rows), else NULL. */
    uint8_t *w_down_rows;
} bn_layer;

typedef struct bn_model {
    bn_gguf *gguf;
    const bn_arch_info *arch;
    bn_hparams hp;
    bn_rows token_embd;        /* [n_vocab][n_embd] */
    bn_rows lm_head;           /* [n_vocab][n_embd]: token_embd (tied) or output.weight */
    const float *output_norm;  /* [n_embd] */
    bn_layer *layers;          /* [n_layer] */
    const bn_kernels *kernels; /* path whose prepare() ran on the weights (may repack) */
    double repack_ms;          /* prepare() on every ternary matrix (0: the path has none) */
    int repack_threads;        /* threads it ran on */
    bn_lm_compact *lm_compact; /* screened LM head's copy (lm_head.h), or NULL: full head */
    double lm_compact_ms;      /* time to build it */
    int lm_compact_threads;    /* threads that built it */
    void *hp_arena;            /* bn_model_copy_to_hugepages's mapping (NULL: none) */
    size_t hp_arena_len;
    double hp_copy_ms; /* its time and threads */
    int hp_copy_threads;
} bn_model;

/* Opens PATH and binds the model. NULL + err (one line naming the problem) on failure. */
bn_model *bn_model_load(const char *path, bn_err *err);
/* Binds a model to an already opened GGUF; takes ownership of g on success and failure. */
bn_model *bn_model_from_gguf(bn_gguf *g, bn_err *err);
void bn_model_free(bn_model *m);

/* Builds m->lm_compact from the f16 head on tp's threads (tp may be NULL), then releases the
 * pages of the f16 head from this process (madvise): decode reads only the rows the screen
 * keeps, which fault back in from the page cache. Contexts created afterwards screen their
 * LM head when asked (forward.h). -1 + err on failure (the model stays usable, full head). */
int bn_model_build_lm_compact(bn_model *m, bn_lm_format format, bn_threadpool *tp, bn_err *err);

/* Whether bn_model_copy_to_hugepages applies: the model reads its ternary weights in place
 * from a mapped file (no prepare(), not copied yet) and, when require_thp, transparent huge
 * pages are available (always or madvise). */
int bn_model_hugepages_useful(const bn_model *m, int require_thp);
/* Copies every ternary matrix into one anonymous mapping on transparent huge pages (madvise
 * MADV_HUGEPAGE) on tp's threads (tp may be NULL), points the matrices at the copy and
 * releases their file pages, so RSS does not hold both. The bytes are the same, so every
 * result is. -1 + err when out of memory (the model stays usable, reading the file). */
int bn_model_copy_to_hugepages(bn_model *m, bn_threadpool *tp, bn_err *err);

/* Reads hyper-parameters only (no tensors): also used by tools on partial files. */
int bn_model_read_hparams(const bn_gguf *g, bn_hparams *hp, bn_err *err);

#endif
