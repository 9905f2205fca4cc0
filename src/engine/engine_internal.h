/* Private to the engine (engine.c, generate.c): the structures behind bitnet.h's handles. */
#ifndef BN_ENGINE_INTERNAL_H
#define BN_ENGINE_INTERNAL_H

#include "bitnet.h"
#include "buf.h"
#include "chat.h"
#include "clock.h"
#include "forward.h"
#include "model.h"
#include "sampler.h"
#include "tokenizer.h"

enum {
    BN_DEFAULT_CTX = 4096,
    BN_DEFAULT_BATCH = 512,
    BN_LOGIT_ROWS_MAX = 32
};

struct bn_engine {
    bn_gguf *vocab_gguf; /* owned when the file is vocab-only; else the model owns its gguf */
    bn_model *model;     /* NULL: tokenizer only */
    bn_tokenizer *tok;
    bn_pretokenizer pre;
    bn_chat_template chat;
    double load_ms;
    uint64_t file_size, n_params;
    char name[128]; /* general.name ("" when absent) */
    bool synthetic; /* the name says the weights are random (bitnet-make-model, goldens) */
};

struct bn_session {
    bn_engine *e;
    bn_threadpool *tp;
    bn_context *ctx;
    uint32_t n_ctx, n_batch, n_vocab;
    int n_threads;
    int32_t *hist;   /* [n_ctx] the token at each position held in the KV cache */
    int32_t pending; /* last sampled token not yet evaluated, or -1 */
    float *logits;   /* [logit_rows][n_vocab] */
    uint32_t logit_rows;
    bn_idvec prompt, out;
    bn_buf text;
};

#endif
