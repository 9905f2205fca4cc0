/* The engine (bitnet.h): a model file opened once, its weights and tokenizer, and the
 * tokenize/detokenize calls that use its pre-tokenizer choice. Sessions: session.c;
 * generation: generate.c. */
#include "bitnet.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "threadpool.h"

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

/* general.name, and whether it marks random weights: bitnet-make-model and the reference's
 * golden models name themselves "...synthetic..." (a user must not mistake their output for
 * the model's). */
static void read_name(const bn_gguf *g, bn_engine *e)
{
    bn_gguf_str name;
    bn_err ignored = {0};
    if (bn_gguf_get_str(g, "general.name", &name, &ignored))
        return;
    size_t n = name.len < sizeof e->name - 1 ? (size_t)name.len : sizeof e->name - 1;
    memcpy(e->name, name.ptr, n);
    e->name[n] = 0;
    for (size_t i = 0; i < n; i++)
        e->name[i] = e->name[i] ? e->name[i] : ' '; /* a NUL inside must not cut the check */
    char lower[sizeof e->name];
    for (size_t i = 0; i <= n; i++)
        lower[i] = (char)tolower((unsigned char)e->name[i]);
    e->synthetic = strstr(lower, "synthetic") != NULL;
}

/* BITNET_LM_HEAD=full|screened|screened-u6 (default screened): whether the screened LM head's
 * compact copy is built (on the load pool's threads), and in which format (lm_head.h): int8,
 * or u6 for workloads that decode greedily (fewer bytes per token, more exact rows under
 * top-k). */
static int build_lm_compact(bn_model *m, bn_threadpool *tp, bn_err *err)
{
    const char *mode = getenv("BITNET_LM_HEAD");
    if (!mode || !*mode)
        mode = "screened";
    if (strcmp(mode, "full") == 0)
        return 0;
    if (strcmp(mode, "screened") == 0)
        return bn_model_build_lm_compact(m, BN_LM_I8, tp, err);
    if (strcmp(mode, "screened-u6") == 0)
        return bn_model_build_lm_compact(m, BN_LM_U6, tp, err);
    return bn_fail(err, BN_E_INPUT,
                   "BITNET_LM_HEAD must be full, screened or screened-u6, got \"%s\"", mode);
}

/* BITNET_HUGEPAGES=0|1 (default: 1 where transparent huge pages are available): whether the
 * ternary weights are copied onto huge pages at load (model.h), on the load pool's threads. 1
 * copies even without them (tests: the copy path then runs anywhere). */
static int copy_weights(bn_model *m, bn_threadpool *tp, bn_err *err)
{
    const char *mode = getenv("BITNET_HUGEPAGES");
    if (mode && *mode && strcmp(mode, "0") && strcmp(mode, "1"))
        return bn_fail(err, BN_E_INPUT, "BITNET_HUGEPAGES must be 0 or 1, got \"%s\"", mode);
    const int forced = mode && strcmp(mode, "1") == 0;
    if ((mode && strcmp(mode, "0") == 0) || !bn_model_hugepages_useful(m, !forced))
        return 0;
    return bn_model_copy_to_hugepages(m, tp, err);
}

/* The load steps after the model's own (compact head, huge-page copy) on one pool of every
 * CPU this process may use, created once for both. */
static int prepare_model(bn_model *m, bn_err *err)
{
    const int n = bn_cpu_count();
    bn_threadpool *tp = NULL;
    if (n > 1 && !(tp = bn_threadpool_create(n, err)))
        return -1;
    const int rc = build_lm_compact(m, tp, err) || copy_weights(m, tp, err) ? -1 : 0;
    bn_threadpool_free(tp);
    return rc;
}

/* The file's template by its markers; else the default (bitnet.h, bn_open_opts). */
static bn_chat_template detect_chat(const bn_gguf *g, const bn_model *m)
{
    bn_gguf_str s = {0};
    bn_err ignored = {0};
    bn_chat_template t = BN_CHAT_UNKNOWN;
    if (bn_gguf_find(g, "tokenizer.chat_template") &&
        bn_gguf_get_str(g, "tokenizer.chat_template", &s, &ignored) == 0)
        t = bn_chat_detect(s.ptr, s.len);
    if (t != BN_CHAT_UNKNOWN)
        return t;
    return !m || strcmp(m->arch->name, "bitnet-b1.58") == 0 ? BN_CHAT_BITNET : BN_CHAT_CHATML;
}

bn_engine *bn_engine_open(const char *path, const bn_open_opts *opts, bn_err *err)
{
    double t0 = bn_now_ms();
    bn_pretokenizer pre = BN_PRE_AUTO;
    if (opts && opts->pre_tokenizer && bn_pretokenizer_from_name(opts->pre_tokenizer, &pre)) {
        bn_fail(err, BN_E_INPUT, "unknown pre-tokenizer \"%s\" (llama3, default or falcon3)",
                opts->pre_tokenizer);
        return NULL;
    }
    bn_engine *e = calloc(1, sizeof *e);
    if (!e) {
        bn_fail(err, BN_E_NOMEM, "out of memory");
        return NULL;
    }
    e->pre = pre;
    bn_gguf *g = bn_gguf_open(path, err);
    if (!g)
        goto fail;
    e->file_size = g->size;
    e->n_params = count_params(g);
    read_name(g, e);
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
    if (e->model && prepare_model(e->model, err)) {
        bn_fail_prefix(err, "%s", path);
        goto fail;
    }
    e->tok = bn_tokenizer_load(vocab_src, err);
    if (!e->tok) {
        bn_fail_prefix(err, "%s: vocabulary", path);
        goto fail;
    }
    if (e->model && (uint32_t)bn_tokenizer_n_vocab(e->tok) != e->model->hp.n_vocab) {
        bn_fail(err, BN_E_FORMAT, "%s: the vocabulary has %d tokens but the embedding has %u rows",
                path, bn_tokenizer_n_vocab(e->tok), e->model->hp.n_vocab);
        goto fail;
    }
    if (opts && opts->chat_template) {
        if (bn_chat_template_from_name(opts->chat_template, &e->chat)) {
            bn_fail(err, BN_E_INPUT,
                    "unknown chat template \"%s\" (bitnet, llama3, falcon3, chatml, "
                    "zephyr, falcon_e)",
                    opts->chat_template);
            goto fail;
        }
    } else {
        e->chat = detect_chat(vocab_src, e->model);
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
    return p == BN_PRE_DEFAULT ? "default" : p == BN_PRE_FALCON3 ? "falcon3" : "llama3";
}

/* Packed bytes of every ternary matrix plus the norm vectors: what one decode token reads. */
static uint64_t layer_bytes(const bn_model *m)
{
    const bn_hparams *hp = &m->hp;
    uint64_t sum = (uint64_t)hp->n_embd * sizeof(float); /* output norm */
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const bn_layer *ly = &m->layers[l];
        const bn_ternary *w[] = {&ly->wq,     &ly->wk,   &ly->wv,    &ly->wo,
                                 &ly->w_gate, &ly->w_up, &ly->w_down};
        for (size_t i = 0; i < sizeof w / sizeof *w; i++)
            sum += (uint64_t)w[i]->m * w[i]->k / 4;
        sum += (uint64_t)(2 * hp->n_embd + (ly->attn_sub_norm ? hp->n_embd : 0) +
                          (ly->ffn_sub_norm ? hp->n_ff : 0)) *
               sizeof(float);
    }
    return sum;
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
    /* a SentencePiece vocabulary has no pre-tokenizer (the option is ignored for it) */
    info->pre_tokenizer = bn_tokenizer_is_spm(e->tok)
                              ? "none (SentencePiece)"
                              : pre_name(e->pre == BN_PRE_AUTO ? bn_tokenizer_pre(e->tok) : e->pre);
    info->chat_template = bn_chat_template_name(e->chat);
    info->arch = e->model ? e->model->arch->name : NULL;
    info->kernels = e->model && e->model->kernels ? e->model->kernels->name : "none";
    info->name = e->name;
    info->synthetic = e->synthetic;
    if (e->model) {
        const bn_hparams *hp = &e->model->hp;
        info->n_ctx_train = hp->n_ctx_train;
        info->n_embd = hp->n_embd;
        info->n_layer = hp->n_layer;
        info->n_head = hp->n_head;
        info->n_head_kv = hp->n_head_kv;
        info->n_ff = hp->n_ff;
    }
    info->lm_head = e->model && e->model->lm_compact ? "screened" : "full";
    if (e->model) {
        info->repack_ms = e->model->repack_ms;
        info->repack_threads = e->model->repack_threads;
        info->lm_build_ms = e->model->lm_compact_ms;
        info->lm_build_threads = e->model->lm_compact_threads;
        info->lm_compact_bytes = bn_lm_compact_bytes(e->model->lm_compact);
        info->lm_compact = !e->model->lm_compact                                    ? NULL
                           : bn_lm_compact_format(e->model->lm_compact) == BN_LM_U6 ? "u6"
                                                                                    : "int8";
        info->decode_layer_bytes = layer_bytes(e->model);
        info->lm_head_row_bytes = e->model->lm_head.row_bytes;
        info->hugepage_copy_ms = e->model->hp_copy_ms;
        info->hugepage_copy_threads = e->model->hp_copy_threads;
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

char *bn_engine_detokenize(const bn_engine *e, const int32_t *ids, size_t n, bool special_names,
                           size_t *len, bn_err *err)
{
    char *out = NULL;
    size_t l = 0;
    if (bn_detokenize(e->tok, ids, n, special_names, &out, &l, err))
        return NULL;
    if (len)
        *len = l;
    return out;
}
