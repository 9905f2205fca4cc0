/* A Hugging Face checkpoint folder -> GGUF (see convert.h): the tensor plan (names, checks,
 * types) and the streaming of each tensor. The metadata is in metadata.c. */
#include "convert.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert_internal.h"
#include "gguf_writer.h"
#include "json.h"
#include "kernels.h"
#include "synthetic_model.h"

#define QK_I2_S 128

/* ---------------------------------------------------------------- names */

static const struct {
    const char *hf, *gguf;
    int role;
} layer_names[] = {
    {"input_layernorm.weight", "attn_norm.weight", R_NORM_E},
    {"post_attention_layernorm.weight", "ffn_norm.weight", R_NORM_E},
    {"self_attn.q_proj.weight", "attn_q.weight", R_Q},
    {"self_attn.k_proj.weight", "attn_k.weight", R_K},
    {"self_attn.v_proj.weight", "attn_v.weight", R_V},
    {"self_attn.o_proj.weight", "attn_output.weight", R_O},
    {"mlp.gate_proj.weight", "ffn_gate.weight", R_GATE},
    {"mlp.up_proj.weight", "ffn_up.weight", R_UP},
    {"mlp.down_proj.weight", "ffn_down.weight", R_DOWN},
    {"self_attn.inner_attn_ln.weight", "attn_sub_norm.weight", R_SUBNORM_E}, /* 1bitLLM */
    {"self_attn.attn_sub_norm.weight", "attn_sub_norm.weight", R_SUBNORM_E}, /* 2B-4T */
    {"mlp.ffn_layernorm.weight", "ffn_sub_norm.weight", R_SUBNORM_FF},       /* 1bitLLM */
    {"mlp.ffn_sub_norm.weight", "ffn_sub_norm.weight", R_SUBNORM_FF},        /* 2B-4T */
};

static int skipped(const char *name)
{
    static const char *const suffixes[] = {".attention.masked_bias", ".attention.bias",
                                           ".rotary_emb.inv_freq"};
    const size_t n = strlen(name);
    for (size_t i = 0; i < 3; i++) {
        const size_t k = strlen(suffixes[i]);
        if (n >= k && strcmp(name + n - k, suffixes[i]) == 0)
            return 1;
    }
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    const size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* HF name -> role, layer and GGUF name; -1 when the family has no such tensor */
static int map_name(const bn_hf_config *c, const char *hf, plan_entry *e)
{
    e->layer = -1;
    if (strcmp(hf, "model.embed_tokens.weight") == 0) {
        e->role = R_EMBD;
        snprintf(e->name, sizeof e->name, "token_embd.weight");
        return 0;
    }
    if (strcmp(hf, "model.norm.weight") == 0) {
        e->role = R_NORM_E;
        snprintf(e->name, sizeof e->name, "output_norm.weight");
        return 0;
    }
    if (strcmp(hf, "lm_head.weight") == 0 && c->family != BN_FAM_BITNET) {
        e->role = R_OUTPUT;
        snprintf(e->name, sizeof e->name, "output.weight");
        return 0;
    }
    const char *prefix = "model.layers.";
    if (strncmp(hf, prefix, strlen(prefix)) != 0)
        return -1;
    const char *p = hf + strlen(prefix);
    char *end;
    errno = 0;
    unsigned long layer = strtoul(p, &end, 10);
    if (end == p || *end != '.' || errno || layer >= c->n_layer || (p[0] == '0' && end - p > 1))
        return -1;
    for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++) {
        if (strcmp(end + 1, layer_names[i].hf) != 0)
            continue;
        if ((layer_names[i].role == R_SUBNORM_E || layer_names[i].role == R_SUBNORM_FF) &&
            c->family == BN_FAM_LLAMA)
            return -1;
        e->role = layer_names[i].role;
        e->layer = (int)layer;
        snprintf(e->name, sizeof e->name, "blk.%lu.%s", layer, layer_names[i].gguf);
        return 0;
    }
    return -1;
}

static int is_linear(int role) { return role >= R_Q && role <= R_DOWN; }

/* ---------------------------------------------------------------- files */

static int open_weights(const char *dir, bn_safetensors *st, bn_err *err)
{
    /* the reference's part names: one file = model.safetensors, N files =
     * model-0000i-of-0000N.safetensors (it counts the *.safetensors in the folder) */
    DIR *d = opendir(dir);
    if (!d)
        return bn_fail(err, BN_E_IO, "%s: cannot open the folder: %s", dir, strerror(errno));
    int n = 0;
    for (struct dirent *de; (de = readdir(d));)
        if (ends_with(de->d_name, ".safetensors"))
            n++;
    closedir(d);
    if (n == 0)
        return bn_fail(err, BN_E_INPUT, "%s: no *.safetensors file", dir);
    for (int i = 0; i < n; i++) {
        char path[4096], name[64];
        if (n == 1)
            snprintf(name, sizeof name, "model.safetensors");
        else
            snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", i + 1, n);
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
            return bn_fail(err, BN_E_INPUT, "%s: path too long", dir);
        if (access(path, F_OK) != 0)
            return bn_fail(err, BN_E_INPUT, "%s: %d safetensors files but no %s", dir, n, name);
        if (bn_st_open(st, path, err))
            return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- plan */

static int has_gguf(const conv *cv, const char *name)
{
    for (size_t k = 0; k < cv->n_plan; k++)
        if (strcmp(cv->plan[k].name, name) == 0)
            return 1;
    return 0;
}

static int check_complete(const conv *cv, bn_err *err)
{
    const bn_hf_config *c = &cv->c;
    if (!has_gguf(cv, "token_embd.weight"))
        return bn_fail(err, BN_E_INPUT, "missing tensor model.embed_tokens.weight");
    if (!has_gguf(cv, "output_norm.weight"))
        return bn_fail(err, BN_E_INPUT, "missing tensor model.norm.weight");
    if (c->family == BN_FAM_LLAMA && !c->tied && !cv->has_output)
        return bn_fail(err, BN_E_INPUT,
                       "missing tensor lm_head.weight (config.json: tie_word_embeddings is false)");
    for (uint32_t l = 0; l < c->n_layer; l++)
        for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++) {
            const int sub = layer_names[i].role == R_SUBNORM_E ||
                            layer_names[i].role == R_SUBNORM_FF;
            if (sub && c->family == BN_FAM_LLAMA)
                continue;
            /* each sub-norm has two names: report the family's own */
            const int b158_name = i == 10 || i == 12;
            if (sub && b158_name != (c->family == BN_FAM_B158))
                continue;
            char g[96];
            snprintf(g, sizeof g, "blk.%u.%s", l, layer_names[i].gguf);
            if (!has_gguf(cv, g))
                return bn_fail(err, BN_E_INPUT, "missing tensor model.layers.%u.%s", l,
                               layer_names[i].hf);
        }
    return 0;
}

static uint64_t dim(const bn_st_tensor *t, uint32_t i) { return i < t->n_dims ? t->shape[i] : 0; }

static int expect_shape(const plan_entry *e, const bn_st_tensor *t, uint64_t r, uint64_t cols,
                        bn_err *err)
{
    const uint32_t want = cols ? 2 : 1;
    if (t->n_dims == want && dim(t, 0) == r && (!cols || dim(t, 1) == cols))
        return 0;
    char got[96] = "";
    size_t k = 0;
    for (uint32_t i = 0; i < t->n_dims && k < sizeof got - 24; i++)
        k += (size_t)snprintf(got + k, sizeof got - k, "%s%llu", i ? "x" : "",
                              (unsigned long long)t->shape[i]);
    if (cols)
        return bn_fail(
            err, BN_E_INPUT, "tensor %s (%s): expected %llux%llu from config.json, got %s", t->name,
            e->name, (unsigned long long)r, (unsigned long long)cols, t->n_dims ? got : "a scalar");
    return bn_fail(err, BN_E_INPUT, "tensor %s (%s): expected %llu from config.json, got %s",
                   t->name, e->name, (unsigned long long)r, t->n_dims ? got : "a scalar");
}

/* llama-quantize's rule for the LM head (output, or the tied token_embd); the 2B-4T's 2560 is a
 * multiple of 256, so its token_embd is F16 as in the published file */
static uint32_t lm_head_type(const conv *cv)
{
    return cv->c.n_embd % 256 ? BN_GGML_Q8_0 : BN_GGML_F16;
}

static int check_entry(conv *cv, plan_entry *e, bn_err *err)
{
    const bn_hf_config *c = &cv->c;
    const bn_st_tensor *t = &cv->st.tensors[e->src];
    const uint64_t E = c->n_embd, V = c->n_vocab, FF = cv->n_ff, KV = cv->n_kv_dim;
    uint64_t r = 0, cols = 0;
    switch (e->role) {
    case R_EMBD:
    case R_OUTPUT: r = V, cols = E; break;
    case R_NORM_E:
    case R_SUBNORM_E: r = E; break;
    case R_SUBNORM_FF: r = FF; break;
    case R_Q:
    case R_O: r = E, cols = E; break;
    case R_K:
    case R_V: r = KV, cols = E; break;
    case R_GATE:
    case R_UP: r = FF, cols = E; break;
    case R_DOWN: r = E, cols = FF; break;
    }
    const bool packed = e->scale >= 0;
    if (packed) {
        const bn_st_tensor *s = &cv->st.tensors[e->scale];
        if (t->dtype != BN_ST_U8)
            return bn_fail(err, BN_E_INPUT, "tensor %s has a weight_scale but dtype %s, not U8",
                           t->name, t->dtype_name);
        if (s->n_elements != 1 || s->dtype == BN_ST_U8 || s->dtype == BN_ST_OTHER)
            return bn_fail(err, BN_E_INPUT, "tensor %s: expected one float, got %llu %s values",
                           s->name, (unsigned long long)s->n_elements, s->dtype_name);
        if (r % 4)
            return bn_fail(err, BN_E_INPUT, "tensor %s: %llu rows cannot be packed 4 per byte",
                           t->name, (unsigned long long)r);
        if (expect_shape(e, t, r / 4, cols, err))
            return -1;
        const float inv = bn_st_scalar(s);
        if (!isfinite(inv) || inv == 0.0f)
            return bn_fail(err, BN_E_INPUT, "tensor %s: weight_scale %g is not usable", s->name,
                           (double)inv);
    } else {
        if (t->dtype != BN_ST_F32 && t->dtype != BN_ST_F16 && t->dtype != BN_ST_BF16)
            return bn_fail(err, BN_E_INPUT, "tensor %s: dtype %s is not F32, F16 or BF16 (%s)",
                           t->name, t->dtype_name,
                           t->dtype == BN_ST_U8 ? "packed weights need a weight_scale"
                                                : "unsupported");
        if (expect_shape(e, t, r, cols, err))
            return -1;
    }
    e->rows = r;
    e->cols = cols ? cols : 1;
    e->n_dims = cols ? 2 : 1;
    if (is_linear(e->role) && (r * e->cols) % QK_I2_S && cv->o->outtype == BN_OUT_I2S)
        return bn_fail(err, BN_E_UNSUPPORTED,
                       "tensor %s: %llu weights are not a multiple of 128 (I2_S)", t->name,
                       (unsigned long long)(r * e->cols));
    /* the output type */
    const bn_outtype ot = cv->o->outtype;
    if (e->n_dims == 1 || ot == BN_OUT_F32)
        e->type = BN_GGML_F32;
    else if (ot == BN_OUT_F16)
        e->type = e->role == R_EMBD && !cv->o->quant_embd ? BN_GGML_F32 : BN_GGML_F16;
    else if (is_linear(e->role))
        e->type = BN_GGML_I2_S;
    else if (e->role == R_EMBD && cv->o->quant_embd) /* llama-quantize --token-embedding-type f16 */
        e->type = BN_GGML_F16;
    else if (e->role == R_OUTPUT || (e->role == R_EMBD && !cv->has_output))
        e->type = lm_head_type(cv);
    else
        e->type = BN_GGML_F16;
    if (e->type == BN_GGML_Q8_0 && E % BN_QK8_0)
        return bn_fail(err, BN_E_UNSUPPORTED, "hidden_size %u is not a multiple of 32 (Q8_0)",
                       c->n_embd);
    return 0;
}

/* The 2B-4T-bf16 route (convert-helper-bitnet.py) re-saves the checkpoint after ternarizing
 * the linear weights in f32, and safetensors' save_file orders tensors by dtype (F32, then
 * BF16, then F16) before names; its converter then keeps that order. A packed checkpoint has
 * no such route: it keeps the name order (the published file's). */
static int b158_rank(const conv *cv, const plan_entry *e)
{
    const bn_st_dtype d = is_linear(e->role) ? BN_ST_F32 : cv->st.tensors[e->src].dtype;
    return d == BN_ST_F32 ? 0 : d == BN_ST_BF16 ? 1 : 2;
}

static void b158_order(conv *cv)
{
    for (size_t k = 0; k < cv->n_plan; k++)
        if (cv->plan[k].scale >= 0)
            return;
    for (size_t i = 1; i < cv->n_plan; i++) { /* stable insertion sort: a few hundred */
        plan_entry e = cv->plan[i];
        size_t j = i;
        while (j > 0 && b158_rank(cv, &cv->plan[j - 1]) > b158_rank(cv, &e)) {
            cv->plan[j] = cv->plan[j - 1];
            j--;
        }
        cv->plan[j] = e;
    }
}

static int build_plan(conv *cv, bn_err *err)
{
    const bn_hf_config *c = &cv->c;
    const size_t n = cv->st.n_tensors;
    cv->plan = calloc(n ? n : 1, sizeof *cv->plan);
    if (!cv->plan)
        return bn_fail(err, BN_E_NOMEM, "out of memory");
    /* duplicates across shards (within a file the JSON parser refuses them) */
    for (size_t i = 1; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (cv->st.tensors[i].file != cv->st.tensors[j].file &&
                strcmp(cv->st.tensors[i].name, cv->st.tensors[j].name) == 0)
                return bn_fail(err, BN_E_INPUT, "tensor %s is in two files",
                               cv->st.tensors[i].name);
    for (size_t i = 0; i < n; i++) {
        const bn_st_tensor *t = &cv->st.tensors[i];
        if (skipped(t->name))
            continue;
        if (ends_with(t->name, ".weight_scale") && c->family != BN_FAM_BITNET) {
            char base[600];
            snprintf(base, sizeof base, "%.*s", (int)(strlen(t->name) - 6), t->name);
            if (!bn_st_find(&cv->st, base))
                return bn_fail(err, BN_E_INPUT, "tensor %s: no %s to scale", t->name, base);
            continue; /* read with its weight */
        }
        plan_entry *e = &cv->plan[cv->n_plan];
        e->src = i;
        e->scale = -1;
        if (map_name(c, t->name, e))
            return bn_fail(err, BN_E_INPUT, "tensor %s cannot be mapped for %s (%s)", t->name,
                           c->arch_class, c->gguf_arch);
        for (size_t k = 0; k < cv->n_plan; k++)
            if (strcmp(cv->plan[k].name, e->name) == 0)
                return bn_fail(err, BN_E_INPUT, "tensors %s and %s both map to %s",
                               cv->st.tensors[cv->plan[k].src].name, t->name, e->name);
        char sname[600];
        snprintf(sname, sizeof sname, "%s_scale", t->name);
        const bn_st_tensor *s = c->family != BN_FAM_BITNET ? bn_st_find(&cv->st, sname) : NULL;
        if (s) {
            if (!is_linear(e->role))
                return bn_fail(err, BN_E_INPUT, "tensor %s: only linear weights can be packed",
                               t->name);
            e->scale = s - cv->st.tensors;
        }
        if (e->role == R_OUTPUT)
            cv->has_output = true;
        cv->n_plan++;
    }
    /* every tensor the family needs, exactly once (duplicates were refused above) */
    if (check_complete(cv, err))
        return -1;
    /* n_ff from config.json, else from the gate projection */
    for (size_t k = 0; k < cv->n_plan && !cv->n_ff; k++)
        if (cv->plan[k].role == R_GATE) {
            const bn_st_tensor *t = &cv->st.tensors[cv->plan[k].src];
            cv->n_ff = dim(t, 0) * (cv->plan[k].scale >= 0 ? 4 : 1);
        }
    for (size_t k = 0; k < cv->n_plan; k++)
        if (check_entry(cv, &cv->plan[k], err))
            return -1;
    if (cv->c.family == BN_FAM_B158)
        b158_order(cv);
    return 0;
}

/* ---------------------------------------------------------------- tensor data */

enum {
    CODE_CHUNK = 1 << 20 /* weights per I2_S chunk (a multiple of 128) */
};

static void source_of(const conv *cv, const plan_entry *e, bn_wsrc *s)
{
    memset(s, 0, sizeof *s);
    s->t = &cv->st.tensors[e->src];
    s->rows = e->rows;
    s->cols = e->cols;
    if (e->scale >= 0) {
        s->packed = true;
        s->inv_scale = bn_st_scalar(&cv->st.tensors[e->scale]);
    }
    /* rotary permutation: the llama converter permutes q and k; bitnet's and the 2B-4T's
     * converters do not */
    if (cv->c.family == BN_FAM_LLAMA && (e->role == R_Q || e->role == R_K))
        s->perm_heads = e->role == R_Q || !cv->c.n_head_kv.has ? cv->c.n_head : cv->c.n_head_kv.v;
}

static int write_linear(conv *cv, const plan_entry *e, bn_err *err)
{
    bn_wsrc s;
    source_of(cv, e, &s);
    bn_trule r;
    bn_trule_plan(&s, cv->c.family == BN_FAM_BITNET, &r);
    if (!r.ternary && cv->o->warn) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "%s: not ternary (full-precision weights): quantized with the absmean rule",
                 cv->st.tensors[e->src].name);
        cv->o->warn(cv->o->warn_ctx, msg);
        cv->n_absmean++;
    }
    const uint64_t n = e->rows * e->cols;
    if (e->type != BN_GGML_I2_S) { /* F32 / F16 of w' */
        for (uint64_t row = 0; row < e->rows; row++) {
            float *f = cv->row;
            for (uint64_t c = 0; c < e->cols; c++)
                f[c] = bn_trule_value(&r, bn_wsrc_at(&s, row, c));
            if (write_row(cv, e->type, f, e->cols, err))
                return -1;
        }
        return 0;
    }
    for (uint64_t i0 = 0; i0 < n; i0 += CODE_CHUNK) {
        const uint64_t m = n - i0 < CODE_CHUNK ? n - i0 : CODE_CHUNK;
        for (uint64_t j = 0; j < m; j++) {
            const uint64_t i = i0 + j;
            cv->codes[j] = bn_i2s_code(
                bn_trule_value(&r, bn_wsrc_at(&s, i / e->cols, i % e->cols)));
        }
        bn_i2s_pack(cv->codes, (size_t)m, r.scale, cv->packed);
        if (bn_gguf_writer_data(cv->w, cv->packed, (size_t)m / 4, err))
            return -1;
    }
    /* the f32 scale, then 28 bytes the reference leaves from a reused buffer: zeros here */
    uint8_t tail[32] = {0};
    memcpy(tail, &r.scale, 4);
    return bn_gguf_writer_data(cv->w, tail, sizeof tail, err);
}

int write_row(conv *cv, uint32_t type, const float *f, uint64_t n, bn_err *err)
{
    if (type == BN_GGML_F32)
        return bn_gguf_writer_data(cv->w, f, n * 4, err);
    if (type == BN_GGML_F16) {
        bn_f32_to_f16_row(f, (uint16_t *)(void *)cv->out, n);
        return bn_gguf_writer_data(cv->w, cv->out, n * 2, err);
    }
    bn_q8_0_quantize_ref(f, cv->out, n);
    return bn_gguf_writer_data(cv->w, cv->out, n / BN_QK8_0 * BN_Q8_0_BYTES, err);
}

static int write_plain(conv *cv, const plan_entry *e, bn_err *err)
{
    bn_wsrc s;
    source_of(cv, e, &s);
    /* an embedding is read once, in order: release its pages every few MB, so that the
     * largest tensor (the 2B-4T's 656 MB token_embd) is never resident at once */
    const uint64_t row_bytes = e->cols * bn_st_dtype_size(s.t->dtype),
                   every = (16u << 20) / row_bytes + 1;
    for (uint64_t row = 0; row < e->rows; row++) {
        bn_wsrc_row(&s, row, cv->row);
        if (write_row(cv, e->type, cv->row, e->cols, err))
            return -1;
        if ((row + 1) % every == 0)
            bn_st_release_range(s.t, (row + 1 - every) * row_bytes, (row + 1) * row_bytes);
    }
    return 0;
}

/* ---------------------------------------------------------------- the run */

static int write_all(conv *cv, FILE *f, bn_err *err)
{
    cv->w = bn_gguf_writer_new();
    if (!cv->w)
        return bn_fail(err, BN_E_NOMEM, "out of memory");
    add_metadata(cv);
    if (!cv->o->vocab_only)
        for (size_t k = 0; k < cv->n_plan; k++) {
            const plan_entry *e = &cv->plan[k];
            const uint64_t ne[2] = {e->cols, e->rows};
            if (e->n_dims == 1)
                bn_gguf_writer_add_tensor(cv->w, e->name, e->type, 1, &ne[1]);
            else
                bn_gguf_writer_add_tensor(cv->w, e->name, e->type, 2, ne);
        }
    if (bn_gguf_writer_begin(cv->w, f, err))
        return -1;
    if (!cv->o->vocab_only) {
        uint64_t max_cols = 1;
        for (size_t k = 0; k < cv->n_plan; k++)
            max_cols = cv->plan[k].cols > max_cols ? cv->plan[k].cols : max_cols;
        cv->row = malloc(max_cols * sizeof *cv->row);
        cv->out = malloc(max_cols * 4);
        cv->codes = malloc(CODE_CHUNK);
        cv->packed = malloc(CODE_CHUNK / 4 + 32);
        if (!cv->row || !cv->out || !cv->codes || !cv->packed)
            return bn_fail(err, BN_E_NOMEM, "out of memory");
        unsigned long long done = 0;
        for (size_t k = 0; k < cv->n_plan; k++) {
            const plan_entry *e = &cv->plan[k];
            if (cv->o->progress)
                cv->o->progress(cv->o->progress_ctx, k, cv->n_plan, e->name, done);
            if (is_linear(e->role) ? write_linear(cv, e, err) : write_plain(cv, e, err)) {
                bn_fail_prefix(err, "%s", e->name);
                return -1;
            }
            done += cv->st.tensors[e->src].nbytes;
            /* drop the pages just read, so that resident memory stays at a tensor's worth
             * however large the checkpoint (the map is read-only: they reload if needed) */
            bn_st_release(&cv->st.tensors[e->src]);
            if (e->scale >= 0)
                bn_st_release(&cv->st.tensors[e->scale]);
        }
        if (cv->o->progress)
            cv->o->progress(cv->o->progress_ctx, cv->n_plan, cv->n_plan, "", done);
    }
    return bn_gguf_writer_finish(cv->w, err);
}

/* generation_config.json: the reference pipeline never reads it (its special ids come from
 * config.json and tokenizer_config.json), so nothing of it is written: the output stays the
 * reference's. It is still read: a malformed one is refused like the other JSON files, and an
 * eos_token_id there that is not the file's EOS (Llama 3 Instruct lists <|eot_id|> beside
 * <|end_of_text|>) is named in a warning, since generation stops where that file says. */
static int check_generation_config(const conv *cv, bn_err *err)
{
    char *text = NULL;
    size_t len;
    int found = 0;
    if (bn_read_file(cv->o->model_dir, "generation_config.json", &text, &len, &found, err))
        return -1;
    if (!found)
        return 0;
    bn_json_doc *doc = bn_json_parse(text, len, NULL, err);
    if (!doc) {
        free(text);
        return bn_fail_prefix(err, "generation_config.json");
    }
    int rc = 0;
    const bn_json *root = bn_json_root(doc);
    const bn_json *eos = root->type == BN_JSON_OBJECT ? bn_json_get(root, "eos_token_id") : NULL;
    if (root->type != BN_JSON_OBJECT)
        rc = bn_fail(err, BN_E_INPUT, "generation_config.json: not a JSON object");
    int64_t file_eos = -1;
    for (int i = 0; i < cv->v.n_special; i++)
        if (strcmp(bn_special_type(cv->v.special_type[i]), "eos") == 0)
            file_eos = cv->v.special_id[i];
    const size_t n = !eos ? 0 : eos->type == BN_JSON_ARRAY ? eos->len : 1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const bn_json *e = eos->type == BN_JSON_ARRAY ? bn_json_at(eos, i) : eos;
        int64_t id;
        if (bn_json_int_in(e, 0, UINT32_MAX, &id)) {
            rc = bn_fail(
                err, BN_E_INPUT,
                "generation_config.json: eos_token_id must be a token id or a list of them");
        } else if (id != file_eos && cv->o->warn) {
            char msg[256];
            snprintf(msg, sizeof msg,
                     "generation_config.json: eos_token_id %lld is not the file's EOS (%lld); "
                     "like the reference, only config.json and tokenizer_config.json set it",
                     (long long)id, (long long)file_eos);
            cv->o->warn(cv->o->warn_ctx, msg);
        }
    }
    bn_json_free(doc);
    free(text);
    return rc;
}

int bn_convert(const bn_convert_opts *o, bn_err *err)
{
    conv cv;
    memset(&cv, 0, sizeof cv);
    cv.o = o;
    char *text = NULL;
    size_t len;
    int rc = -1;
    FILE *f = NULL;
    char tmp[4096] = "";
    if (bn_read_file(o->model_dir, "config.json", &text, &len, NULL, err) ||
        bn_hf_config_parse(text, len, &cv.c, err))
        goto done;
    if (cv.c.family == BN_FAM_B158 && !cv.c.rms_eps.has) { /* convert-ms refuses it too */
        bn_fail(err, BN_E_INPUT, "config.json: BitNetForCausalLM needs rms_norm_eps");
        goto done;
    }
    cv.n_ff = cv.c.n_ff.has ? cv.c.n_ff.v : 0;
    cv.n_kv_dim = (uint64_t)(cv.c.n_head_kv.has ? cv.c.n_head_kv.v : cv.c.n_head) *
                  (cv.c.n_embd / cv.c.n_head);
    if (bn_vocab_load(o->model_dir, &cv.c, o->pre, &cv.v, err) || check_generation_config(&cv, err))
        goto done;
    if (!o->vocab_only && (open_weights(o->model_dir, &cv.st, err) || build_plan(&cv, err)))
        goto done;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-%ld", o->out_path, (long)getpid()) >=
        sizeof tmp) {
        bn_fail(err, BN_E_INPUT, "%s: path too long", o->out_path);
        tmp[0] = 0;
        goto done;
    }
    f = fopen(tmp, "wb");
    if (!f) {
        bn_fail(err, BN_E_IO, "%s: cannot create: %s", o->out_path, strerror(errno));
        tmp[0] = 0;
        goto done;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 22);
    rc = write_all(&cv, f, err);
    if (fclose(f) != 0 && rc == 0)
        rc = bn_fail(err, BN_E_IO, "%s: write failed: %s", o->out_path, strerror(errno));
    /* gguf-py's vocab-only file ends right after the metadata, unpadded */
    if (rc == 0 && o->vocab_only && truncate(tmp, (off_t)bn_gguf_writer_meta_size(cv.w)) != 0)
        rc = bn_fail(err, BN_E_IO, "%s: truncate failed: %s", o->out_path, strerror(errno));
    if (rc == 0 && rename(tmp, o->out_path) != 0)
        rc = bn_fail(err, BN_E_IO, "cannot rename to %s: %s", o->out_path, strerror(errno));
done:
    if (rc && tmp[0])
        unlink(tmp);
    free(text);
    free(cv.plan);
    free(cv.row);
    free(cv.out);
    free(cv.codes);
    free(cv.packed);
    bn_gguf_writer_free(cv.w);
    bn_vocab_free(&cv.v);
    bn_st_close(&cv.st);
    return rc;
}
