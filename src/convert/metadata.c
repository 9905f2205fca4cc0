/* The GGUF keys of a conversion, in the order the reference writes them:
 *  - "bitnet" / "llama": convert-hf-to-gguf-bitnet.py (Model.set_gguf_parameters, the family's
 *    additions, then set_vocab), with general.file_type set to the output's type and, for
 *    I2_S, general.quantization_version appended (what llama-quantize does);
 *  - "bitnet-b1.58": convert-ms-to-gguf-bitnet.py (add_meta_arch, add_meta_vocab, the special
 *    vocabulary and its fixed chat template), the 24 keys of the published 2B-4T file. */
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "convert_internal.h"

#define LLAMA_FTYPE_ALL_F32     0
#define LLAMA_FTYPE_MOSTLY_F16  1
#define LLAMA_FTYPE_MOSTLY_I2_S 40

/* convert-ms-to-gguf-bitnet.py's fixed template for every "bitnet*" architecture */
static const char b158_template[] =
    "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ 'Human: ' + message['content'] + "
    "'\\n\\nBITNETAssistant: ' + eos_token }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token }}{% endif %}{% endfor %}";

/* gguf-py's add_string skips empty strings (a model folder named "." has no general.name) */
static void add_str(bn_gguf_writer *w, const char *key, const char *v)
{
    if (v && *v)
        bn_gguf_writer_add_str(w, key, v);
}

static const char *const special_keys[7] = {
    "tokenizer.ggml.bos_token_id",     "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.seperator_token_id",
    "tokenizer.ggml.padding_token_id", "tokenizer.ggml.cls_token_id",
    "tokenizer.ggml.mask_token_id"};

/* a vocab-only file is the converter's own (no llama-quantize step): i2_s means its f32 */
static uint32_t file_type(const conv *cv)
{
    if (cv->o->vocab_only && cv->o->outtype == BN_OUT_I2S)
        return LLAMA_FTYPE_ALL_F32;
    return cv->o->outtype == BN_OUT_F32   ? LLAMA_FTYPE_ALL_F32
           : cv->o->outtype == BN_OUT_F16 ? LLAMA_FTYPE_MOSTLY_F16
                                          : LLAMA_FTYPE_MOSTLY_I2_S;
}

/* Python's Path(dir).name (after stripping trailing slashes) */
static void dir_name(const char *dir, int parent, char *out, size_t n)
{
    char buf[4096];
    if (parent) {
        char *r = realpath(dir, NULL);
        snprintf(buf, sizeof buf, "%s", r ? r : dir);
        free(r);
        char *slash = strrchr(buf, '/');
        if (slash && slash != buf)
            *slash = 0;
    } else {
        snprintf(buf, sizeof buf, "%s", dir);
    }
    size_t len = strlen(buf);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = 0;
    const char *base = strrchr(buf, '/');
    snprintf(out, n, "%s", strcmp(buf, ".") == 0 ? "" : base ? base + 1 : buf);
}

static void add_tokens(conv *cv, int scores)
{
    bn_gguf_writer *w = cv->w;
    const bn_vocab_out *v = &cv->v;
    bn_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tokens,
                               v->n_tokens);
    if (scores && v->scores)
        bn_gguf_writer_add_arr(w, "tokenizer.ggml.scores", BN_GGUF_F32, v->scores, v->n_tokens);
    bn_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", BN_GGUF_I32, v->types, v->n_tokens);
}

/* SpecialVocab.add_to_gguf: merges, ids, add_* flags, chat template */
static void add_special(conv *cv, int skip_add_bos, const char *template)
{
    bn_gguf_writer *w = cv->w;
    const bn_vocab_out *v = &cv->v;
    if (v->n_merges)
        bn_gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merges,
                                   v->n_merges);
    for (int i = 0; i < v->n_special; i++)
        bn_gguf_writer_add_u32(w, special_keys[v->special_type[i]], v->special_id[i]);
    if (v->add_bos.has && !skip_add_bos)
        bn_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", (int)v->add_bos.v);
    if (v->add_eos.has)
        bn_gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", (int)v->add_eos.v);
    if (template)
        add_str(w, "tokenizer.chat_template", template);
}

static void add_b158(conv *cv)
{
    bn_gguf_writer *w = cv->w;
    const bn_hf_config *c = &cv->c;
    const char *A = c->gguf_arch;
    char key[96], name[256];
#define K(suffix) (snprintf(key, sizeof key, "%s.%s", A, suffix), key)
    add_str(w, "general.architecture", A);
    if (c->n_ctx.has && c->n_ctx.v == 4096)
        snprintf(name, sizeof name, "bitnet2b_2501");
    else
        dir_name(cv->o->model_dir, 1, name, sizeof name);
    add_str(w, "general.name", name);
    bn_gguf_writer_add_u32(w, K("vocab_size"), c->n_vocab);
    bn_gguf_writer_add_u32(w, K("context_length"), c->n_ctx.has ? c->n_ctx.v : 0);
    bn_gguf_writer_add_u32(w, K("embedding_length"), c->n_embd);
    bn_gguf_writer_add_u32(w, K("block_count"), c->n_layer);
    bn_gguf_writer_add_u32(w, K("feed_forward_length"), (uint32_t)cv->n_ff);
    bn_gguf_writer_add_u32(w, K("rope.dimension_count"), c->n_embd / c->n_head);
    bn_gguf_writer_add_u32(w, K("attention.head_count"), c->n_head);
    bn_gguf_writer_add_u32(w, K("attention.head_count_kv"),
                           c->n_head_kv.has ? c->n_head_kv.v : c->n_head);
    bn_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", 1);
    bn_gguf_writer_add_f32(w, K("attention.layer_norm_rms_epsilon"), (float)c->rms_eps.v);
    if (c->rope_theta.has)
        bn_gguf_writer_add_f32(w, K("rope.freq_base"), (float)c->rope_theta.v);
    bn_gguf_writer_add_u32(w, "general.file_type", file_type(cv));
#undef K
    add_str(w, "tokenizer.ggml.model", cv->v.model);
    add_tokens(cv, 1);
    add_special(cv, 1, b158_template);
}

static void add_hf(conv *cv)
{
    bn_gguf_writer *w = cv->w;
    const bn_hf_config *c = &cv->c;
    const char *A = c->gguf_arch;
    char key[96], name[256];
#define K(suffix) (snprintf(key, sizeof key, "%s.%s", A, suffix), key)
    add_str(w, "general.architecture", A);
    dir_name(cv->o->model_dir, 0, name, sizeof name);
    add_str(w, "general.name", name);
    bn_gguf_writer_add_u32(w, K("block_count"), c->n_layer);
    if (c->n_ctx.has)
        bn_gguf_writer_add_u32(w, K("context_length"), c->n_ctx.v);
    bn_gguf_writer_add_u32(w, K("embedding_length"), c->n_embd);
    if (c->n_ff.has)
        bn_gguf_writer_add_u32(w, K("feed_forward_length"), c->n_ff.v);
    bn_gguf_writer_add_u32(w, K("attention.head_count"), c->n_head);
    if (c->n_head_kv.has)
        bn_gguf_writer_add_u32(w, K("attention.head_count_kv"), c->n_head_kv.v);
    if (c->rope_theta.has)
        bn_gguf_writer_add_f32(w, K("rope.freq_base"), (float)c->rope_theta.v);
    if (c->rms_eps.has)
        bn_gguf_writer_add_f32(w, K("attention.layer_norm_rms_epsilon"), (float)c->rms_eps.v);
    bn_gguf_writer_add_u32(w, "general.file_type", file_type(cv));
    bn_gguf_writer_add_u32(w, K("vocab_size"), c->n_vocab);
    if (c->family == BN_FAM_BITNET) {
        add_str(w, K("rope.scaling.type"), "linear");
        bn_gguf_writer_add_f32(w, K("rope.scaling.factor"), 1.0f);
    } else {
        bn_gguf_writer_add_u32(w, K("rope.dimension_count"),
                               c->head_dim.has ? c->head_dim.v : c->n_embd / c->n_head);
        if (c->rope_linear_factor.has) {
            add_str(w, K("rope.scaling.type"), "linear");
            bn_gguf_writer_add_f32(w, K("rope.scaling.factor"), (float)c->rope_linear_factor.v);
        }
        if (cv->v.add_prefix_space.has)
            bn_gguf_writer_add_bool(w, "tokenizer.ggml.add_space_prefix",
                                    (int)cv->v.add_prefix_space.v);
    }
#undef K
    add_str(w, "tokenizer.ggml.model", cv->v.model);
    add_str(w, "tokenizer.ggml.pre", cv->v.pre);
    add_tokens(cv, strcmp(cv->v.model, "llama") == 0);
    add_special(cv, 0, cv->v.chat_template);
}

void add_metadata(conv *cv)
{
    if (cv->c.family == BN_FAM_B158)
        add_b158(cv);
    else
        add_hf(cv);
    if (cv->o->outtype == BN_OUT_I2S && !cv->o->vocab_only)
        bn_gguf_writer_add_u32(cv->w, "general.quantization_version", 2);
}
