/* A BitNet b1.58 model: hyper-parameters and views of its weights inside the mapped GGUF.
 * Loading checks every tensor's presence, type and shape; nothing is copied. */
#ifndef BN_MODEL_H
#define BN_MODEL_H

#include <stdint.h>

#include "error.h"
#include "gguf.h"
#include "kernels.h"
#include "lm_head.h"
#include "threadpool.h"

#define BN_ARCH "bitnet-b1.58"

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
    const float *attn_sub_norm; /* [n_embd] */
    bn_ternary wo;              /* n_embd -> n_embd */
    const float *ffn_norm;      /* [n_embd] */
    bn_ternary w_gate;          /* n_embd -> n_ff */
    bn_ternary w_up;            /* n_embd -> n_ff */
    const float *ffn_sub_norm;  /* [n_ff] */
    bn_ternary w_down;          /* n_ff -> n_embd */
} bn_layer;

typedef struct bn_model {
    bn_gguf *gguf;
    bn_hparams hp;
    const uint16_t *token_embd; /* f16 [n_vocab][n_embd]; also the LM head (tied) */
    const float *output_norm;   /* [n_embd] */
    bn_layer *layers;           /* [n_layer] */
    const bn_kernels *kernels;  /* path whose prepare() ran on the weights (may repack) */
    double repack_ms;           /* prepare() on every ternary matrix (0: the path has none) */
    int repack_threads;         /* threads it ran on */
    bn_lm_compact *lm_compact;  /* screened LM head's copy (lm_head.h), or NULL: full head */
    double lm_compact_ms;       /* time to build it */
    int lm_compact_threads;     /* threads that built it */
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
int bn_model_build_lm_compact(bn_model *m, bn_threadpool *tp, bn_err *err);

/* Reads hyper-parameters only (no tensors): also used by tools on partial files. */
int bn_model_read_hparams(const bn_gguf *g, bn_hparams *hp, bn_err *err);

#endif
