/* Sessions (bitnet.h): one conversation on an engine: KV cache, thread pool, the token
 * history and the results of the last bn_generate. */
#include "bitnet.h"

#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "threadpool.h"

bn_session *bn_session_create(bn_engine *e, const bn_session_params *p, bn_err *err)
{
    if (!e->model) {
        bn_fail(err, BN_E_INPUT,
                "this GGUF has no weights (vocab-only): it can tokenize, not generate");
        return NULL;
    }
    bn_session_params d = {0};
    if (!p)
        p = &d;
    if (bn_session_params_check(p, err))
        return NULL;
    bn_session *s = calloc(1, sizeof *s);
    if (!s) {
        bn_fail(err, BN_E_NOMEM, "out of memory");
        return NULL;
    }
    const bn_hparams *hp = &e->model->hp;
    s->e = e;
    s->n_ctx = p->n_ctx;
    if (s->n_ctx == 0)
        s->n_ctx = hp->n_ctx_train && hp->n_ctx_train < BN_DEFAULT_CTX ? hp->n_ctx_train
                                                                       : BN_DEFAULT_CTX;
    /* a context past the training length is allowed, as in llama.cpp (entry points warn:
     * those positions give noise); its size is bounded by BN_SET_N_CTX's range and an
     * impossible KV cache is an out-of-memory error below */
    s->n_batch = p->n_batch ? p->n_batch : BN_DEFAULT_BATCH;
    if (s->n_batch > s->n_ctx)
        s->n_batch = s->n_ctx;
    s->n_threads = p->n_threads ? p->n_threads : bn_cpu_count();
    s->n_vocab = hp->n_vocab;
    s->pending = -1;
    s->logit_rows = s->n_batch < BN_LOGIT_ROWS_MAX ? s->n_batch : BN_LOGIT_ROWS_MAX;
    if (s->n_threads > 1 && !(s->tp = bn_threadpool_create(s->n_threads, err)))
        goto fail;
    if (!(s->ctx = bn_context_create(e->model, s->n_ctx, s->n_batch, s->tp, err)))
        goto fail;
    s->hist = malloc((size_t)s->n_ctx * sizeof *s->hist);
    s->logits = malloc((size_t)s->logit_rows * s->n_vocab * sizeof *s->logits);
    if (!s->hist || !s->logits) {
        bn_fail(err, BN_E_NOMEM, "out of memory for the session buffers");
        goto fail;
    }
    return s;
fail:
    bn_session_free(s);
    return NULL;
}

void bn_session_free(bn_session *s)
{
    if (!s)
        return;
    bn_context_free(s->ctx);
    bn_threadpool_free(s->tp);
    free(s->hist);
    free(s->logits);
    bn_idvec_free(&s->prompt);
    bn_idvec_free(&s->out);
    bn_buf_free(&s->text);
    free(s);
}

void bn_session_reset(bn_session *s)
{
    bn_context_set_pos(s->ctx, 0);
    s->pending = -1;
}

uint32_t bn_session_n_ctx(const bn_session *s) { return s->n_ctx; }
int bn_session_n_threads(const bn_session *s) { return s->n_threads; }

const int32_t *bn_session_prompt_ids(const bn_session *s, size_t *n)
{
    *n = s->prompt.n;
    return s->prompt.v;
}

const int32_t *bn_session_output_ids(const bn_session *s, size_t *n)
{
    *n = s->out.n;
    return s->out.v;
}

const char *bn_session_output_text(const bn_session *s, size_t *len)
{
    if (len)
        *len = s->text.len;
    return s->text.data ? s->text.data : "";
}
