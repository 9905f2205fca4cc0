/* The engine API (bitnet.h): engine = model + tokenizer, session = context + history,
 * bn_generate = prompt -> prefill -> sample/decode loop with streaming text and stop rules. */
#include "bitnet.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "engine_internal.h"
#include "threadpool.h"

double bn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

uint64_t bn_peak_rss_kib(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0 || ru.ru_maxrss < 0)
        return 0;
    return (uint64_t)ru.ru_maxrss; /* Linux: KiB */
}

int bn_idvec_push(bn_idvec *a, int32_t id, bn_err *err)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        int32_t *v = realloc(a->v, cap * sizeof *v);
        if (!v)
            return bn_fail(err, "out of memory");
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = id;
    return 0;
}

int bn_strbuf_add(bn_strbuf *b, const char *s, size_t n, bn_err *err)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return bn_fail(err, "out of memory");
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

/* ------------------------------------------------------------------ engine */

static uint64_t count_params(const bn_gguf *g)
{
    uint64_t total = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        uint64_t n = 1;
        for (uint32_t d = 0; d < g->tensors[i].n_dims; d++)
            n *= g->tensors[i].ne[d];
        total += n;
    }
    return total;
}

bn_engine *bn_engine_open(const char *path, const bn_open_opts *opts, bn_err *err)
{
    double t0 = bn_now_ms();
    bn_pretokenizer pre = BN_PRE_AUTO;
    if (opts && opts->pre_tokenizer && bn_pretokenizer_from_name(opts->pre_tokenizer, &pre)) {
        bn_fail(err, "unknown pre-tokenizer \"%s\" (llama3 or default)", opts->pre_tokenizer);
        return NULL;
    }
    bn_engine *e = calloc(1, sizeof *e);
    if (!e) {
        bn_fail(err, "out of memory");
        return NULL;
    }
    e->pre = pre;
    bn_gguf *g = bn_gguf_open(path, err);
    if (!g)
        goto fail;
    e->file_size = g->size;
    e->n_params = count_params(g);
    const bn_gguf *vocab_src = g;
    if (g->n_tensors == 0) {
        e->vocab_gguf = g; /* a vocab-only file: tokenizer, no weights */
    } else {
        e->model = bn_model_from_gguf(g, err); /* owns g from here, also on failure */
        if (!e->model) {
            bn_fail_prefix(err, "%s", path);
            goto fail;
        }
        vocab_src = e->model->gguf;
    }
    e->tok = bn_tokenizer_load(vocab_src, err);
    if (!e->tok) {
        bn_fail_prefix(err, "%s: vocabulary", path);
        goto fail;
    }
    if (e->model && (uint32_t)bn_tokenizer_n_vocab(e->tok) != e->model->hp.n_vocab) {
        bn_fail(err, "%s: the vocabulary has %d tokens but the embedding has %u rows", path,
                bn_tokenizer_n_vocab(e->tok), e->model->hp.n_vocab);
        goto fail;
    }
    e->load_ms = bn_now_ms() - t0;
    return e;
fail:
    bn_engine_free(e);
    return NULL;
}

void bn_engine_free(bn_engine *e)
{
    if (!e)
        return;
    bn_tokenizer_free(e->tok);
    bn_model_free(e->model);
    bn_gguf_close(e->vocab_gguf);
    free(e);
}

static const char *pre_name(bn_pretokenizer p)
{
    return p == BN_PRE_DEFAULT ? "default" : "llama3";
}

void bn_engine_get_info(const bn_engine *e, bn_engine_info *info)
{
    memset(info, 0, sizeof *info);
    info->has_weights = e->model != NULL;
    info->n_vocab = (uint32_t)bn_tokenizer_n_vocab(e->tok);
    info->bos = bn_tokenizer_bos(e->tok);
    info->eos = bn_tokenizer_eos(e->tok);
    info->eot = bn_tokenizer_eot(e->tok);
    info->file_size = e->file_size;
    info->n_params = e->n_params;
    info->load_ms = e->load_ms;
    info->pre_tokenizer = pre_name(e->pre == BN_PRE_AUTO ? bn_tokenizer_pre(e->tok) : e->pre);
    info->kernels = e->model && e->model->kernels ? e->model->kernels->name : "none";
    if (e->model) {
        const bn_hparams *hp = &e->model->hp;
        info->n_ctx_train = hp->n_ctx_train;
        info->n_embd = hp->n_embd;
        info->n_layer = hp->n_layer;
        info->n_head = hp->n_head;
        info->n_head_kv = hp->n_head_kv;
        info->n_ff = hp->n_ff;
    }
}

int bn_engine_tokenize(const bn_engine *e, const char *text, size_t len, bool add_bos,
                       bool parse_special, int32_t **ids, size_t *n_ids, bn_err *err)
{
    bn_tokenize_opts o = {
        .bos = add_bos ? BN_BOS_ALWAYS : BN_BOS_NEVER,
        .parse_special = parse_special,
        .pre = e->pre,
    };
    return bn_tokenize(e->tok, text, len, &o, ids, n_ids, err);
}

char *bn_engine_detokenize(const bn_engine *e, const int32_t *ids, size_t n,
                           bool special_names, size_t *len, bn_err *err)
{
    char *out = NULL;
    size_t l = 0;
    if (bn_detokenize(e->tok, ids, n, special_names, &out, &l, err))
        return NULL;
    if (len)
        *len = l;
    return out;
}

/* ------------------------------------------------------------------ session */

bn_session *bn_session_create(bn_engine *e, const bn_session_params *p, bn_err *err)
{
    if (!e->model) {
        bn_fail(err, "this GGUF has no weights (vocab-only): it can tokenize, not generate");
        return NULL;
    }
    bn_session_params d = {0};
    if (!p)
        p = &d;
    if (p->n_threads < 0) {
        bn_fail(err, "threads must be >= 1, got %d", p->n_threads);
        return NULL;
    }
    bn_session *s = calloc(1, sizeof *s);
    if (!s) {
        bn_fail(err, "out of memory");
        return NULL;
    }
    const bn_hparams *hp = &e->model->hp;
    s->e = e;
    s->n_ctx = p->n_ctx;
    if (s->n_ctx == 0)
        s->n_ctx = hp->n_ctx_train && hp->n_ctx_train < BN_DEFAULT_CTX ? hp->n_ctx_train
                                                                     : BN_DEFAULT_CTX;
    if (hp->n_ctx_train && s->n_ctx > hp->n_ctx_train) {
        /* positions past the training length only give noise, and the KV cache of a huge
         * context is a huge allocation */
        bn_fail(err, "context %u exceeds the model's training context %u", s->n_ctx,
                hp->n_ctx_train);
        goto fail;
    }
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
        bn_fail(err, "out of memory for the session buffers");
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
    free(s->prompt.v);
    free(s->out.v);
    free(s->text.p);
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
    return s->text.p ? s->text.p : "";
}

const char *bn_stop_reason_name(bn_stop_reason r)
{
    switch (r) {
    case BN_STOP_EOS: return "eos";
    case BN_STOP_EOT: return "eot";
    case BN_STOP_LENGTH: return "length";
    case BN_STOP_STRING: return "stop_string";
    case BN_STOP_CONTEXT_FULL: return "context_full";
    case BN_STOP_CALLBACK: return "callback";
    case BN_STOP_NONE: break;
    }
    return "none";
}

bn_generate_params bn_generate_default(void)
{
    bn_generate_params p;
    memset(&p, 0, sizeof p);
    p.add_bos = true;
    p.n_predict = -1;
    p.sampling = bn_sampling_default();
    return p;
}
