/* Synthetic Hugging Face checkpoint folders (see checkpoint_writer.h): config.json,
 * safetensors (one file or shards + index), generation_config.json; the tokenizer files are
 * in checkpoint_tokenizer.c. */
#include "checkpoint_writer.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "json.h"
#include "kernels.h"

void bn_ckpt_defaults(bn_ckpt_params *p)
{
    memset(p, 0, sizeof *p);
    bn_synth_defaults(&p->shape);
    p->dtype = BN_CKPT_BF16;
    p->ternary = 1;
    p->shards = 1;
}

static int is_arch(const bn_ckpt_params *p, const char *a) { return strcmp(p->shape.arch, a) == 0; }

int bn_ckpt_check(const bn_ckpt_params *p, bn_err *err)
{
    if (bn_synth_check(&p->shape, err))
        return -1;
    if (p->shape.n_vocab < 300)
        return bn_fail(err, BN_E_INPUT, "n_vocab %u: a checkpoint needs at least 300 tokens",
                       p->shape.n_vocab);
    if (p->shards < 1 || p->shards > 99)
        return bn_fail(err, BN_E_INPUT, "shards %d must be in 1..99", p->shards);
    if (p->packed && is_arch(p, "bitnet"))
        return bn_fail(err, BN_E_INPUT, "--packed: 1bitLLM (bitnet) checkpoints are never packed");
    if (p->packed && !p->ternary)
        return bn_fail(err, BN_E_INPUT, "--packed weights are ternary by definition");
    return 0;
}

/* ---------------------------------------------------------------- values */

/* A counter-based generator: value i of a tensor depends on (seed, name, i) only, so any
 * element can be computed alone (the packed layout reads four rows at once). */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t name_key(uint64_t seed, const char *name)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *s = name; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return mix(seed * 0x9e3779b97f4a7c15ull ^ h);
}

static double uniform(uint64_t key, uint64_t i)
{
    return (double)(mix(key ^ mix(i)) >> 11) * 0x1p-53;
}

/* approximately standard normal: a sum of four 16-bit uniforms (Irwin-Hall) */
static double normal(uint64_t key, uint64_t i)
{
    uint64_t x = mix(key ^ mix(i));
    int32_t s = (int32_t)(x & 0xffff) + (int32_t)(x >> 16 & 0xffff) + (int32_t)(x >> 32 & 0xffff) +
                (int32_t)(x >> 48) - 2 * 65535;
    return (double)s * sqrt(3.0) / 65536.0;
}

static uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + (u >> 16 & 1); /* round to nearest even (no NaN here) */
    return (uint16_t)(u >> 16);
}

static float bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* f rounded to the dtype (so that stored values are exactly the ones computed with) */
static float in_dtype(bn_ckpt_dtype t, float f)
{
    if (t == BN_CKPT_BF16)
        return bf16_to_f32(f32_to_bf16(f));
    if (t == BN_CKPT_F16)
        return bn_f16_to_f32(bn_f32_to_f16(f));
    return f;
}

static size_t dtype_size(bn_ckpt_dtype t) { return t == BN_CKPT_F32 ? 4 : 2; }
static const char *dtype_name(bn_ckpt_dtype t)
{
    return t == BN_CKPT_F32 ? "F32" : t == BN_CKPT_F16 ? "F16" : "BF16";
}

static void store(bn_ckpt_dtype t, float f, uint8_t *out)
{
    if (t == BN_CKPT_F32) {
        memcpy(out, &f, 4);
        return;
    }
    uint16_t h = t == BN_CKPT_BF16 ? f32_to_bf16(f) : bn_f32_to_f16(f);
    memcpy(out, &h, 2);
}

/* ---------------------------------------------------------------- tensor plan */

typedef enum kind {
    K_EMBD,   /* embed_tokens, lm_head */
    K_NORM,   /* 1-D */
    K_LINEAR, /* [out, in] */
    K_PACKED, /* U8 [out/4, in] */
    K_SCALE,  /* weight_scale [1] of the packed tensor before it */
} kind;

typedef struct ck_tensor {
    char name[128];
    kind kind;
    uint64_t ne[2]; /* PyTorch order: rows, columns (ne[1] = 0 for 1-D) */
    uint64_t bytes, offset;
    int shard;
} ck_tensor;

static void add(ck_tensor *t, size_t *k, const char *name, kind kd, uint64_t rows, uint64_t cols)
{
    ck_tensor *e = &t[(*k)++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->kind = kd;
    e->ne[0] = rows;
    e->ne[1] = cols;
}

static void add_linear(const bn_ckpt_params *p, ck_tensor *t, size_t *k, const char *name,
                       uint64_t out, uint64_t in)
{
    char n[128];
    if (!p->packed) {
        add(t, k, name, K_LINEAR, out, in);
        return;
    }
    add(t, k, name, K_PACKED, out / 4, in);
    snprintf(n, sizeof n, "%.100s_scale", name);
    add(t, k, n, K_SCALE, 1, 0);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const ck_tensor *)a)->name, ((const ck_tensor *)b)->name);
}

static ck_tensor *plan(const bn_ckpt_params *p, size_t *count)
{
    const bn_synth_params *s = &p->shape;
    const uint64_t e = s->n_embd, ff = s->n_ff, kv = (uint64_t)s->n_head_kv * (e / s->n_head);
    ck_tensor *t = calloc(4 + 20 * (size_t)s->n_layer, sizeof *t);
    if (!t)
        return NULL;
    size_t k = 0;
    const int b158 = is_arch(p, "bitnet-b1.58"), llama = is_arch(p, "llama");
    add(t, &k, "model.embed_tokens.weight", K_EMBD, s->n_vocab, e);
    add(t, &k, "model.norm.weight", K_NORM, e, 0);
    if (llama && !s->tied)
        add(t, &k, "lm_head.weight", K_EMBD, s->n_vocab, e);
    for (uint32_t i = 0; i < s->n_layer; i++) {
        char n[96];
#define L(suffix) (snprintf(n, sizeof n, "model.layers.%u.%s", i, suffix), n)
        add(t, &k, L("input_layernorm.weight"), K_NORM, e, 0);
        add(t, &k, L("post_attention_layernorm.weight"), K_NORM, e, 0);
        if (!llama) {
            add(t, &k,
                L(b158 ? "self_attn.attn_sub_norm.weight" : "self_attn.inner_attn_ln.weight"),
                K_NORM, e, 0);
            add(t, &k, L(b158 ? "mlp.ffn_sub_norm.weight" : "mlp.ffn_layernorm.weight"), K_NORM, ff,
                0);
        }
        add_linear(p, t, &k, L("self_attn.q_proj.weight"), e, e);
        add_linear(p, t, &k, L("self_attn.k_proj.weight"), kv, e);
        add_linear(p, t, &k, L("self_attn.v_proj.weight"), kv, e);
        add_linear(p, t, &k, L("self_attn.o_proj.weight"), e, e);
        add_linear(p, t, &k, L("mlp.gate_proj.weight"), ff, e);
        add_linear(p, t, &k, L("mlp.up_proj.weight"), ff, e);
        add_linear(p, t, &k, L("mlp.down_proj.weight"), e, ff);
#undef L
    }
    qsort(t, k, sizeof *t, cmp_name);
    for (size_t i = 0; i < k; i++) {
        uint64_t n = t[i].ne[0] * (t[i].ne[1] ? t[i].ne[1] : 1);
        t[i].bytes = t[i].kind == K_PACKED ? n : n * dtype_size(p->dtype);
    }
    *count = k;
    return t;
}

/* The magnitude of a ternary tensor, exactly representable in the dtype. For a packed tensor
 * the stored weight_scale is 1/m rounded to the dtype. */
static float ternary_magnitude(const bn_ckpt_params *p, const ck_tensor *t, uint64_t key)
{
    const double gain = 0.8 + 0.4 * uniform(key, UINT64_MAX);
    const double m = gain / sqrt((double)t->ne[1] * (1.0 - p->shape.zero_frac));
    return in_dtype(p->dtype, (float)m);
}

static int8_t ternary_code(const bn_ckpt_params *p, uint64_t key, uint64_t i)
{
    const double u = uniform(key, i), z = p->shape.zero_frac;
    return (int8_t)(u < z ? 0 : u < z + (1.0 - z) / 2 ? -1 : 1);
}

static float value(const bn_ckpt_params *p, const ck_tensor *t, uint64_t key, float m, uint64_t i)
{
    switch (t->kind) {
    case K_EMBD: return in_dtype(p->dtype, (float)(normal(key, i) * 1.5 / sqrt((double)t->ne[1])));
    case K_NORM: return in_dtype(p->dtype, (float)(0.6 + 0.8 * uniform(key, i)));
    case K_LINEAR:
        if (p->ternary)
            return m * (float)ternary_code(p, key, i);
        return in_dtype(p->dtype, (float)(normal(key, i) / sqrt((double)t->ne[1])));
    default: return 0.0f;
    }
}

enum {
    CHUNK = 1 << 16 /* elements per write */
};

static int write_tensor(const bn_ckpt_params *p, const ck_tensor *t, const ck_tensor *prev, FILE *f,
                        uint8_t *buf, bn_err *err)
{
    if (t->kind == K_SCALE) { /* 1/m of the packed tensor just written (same key) */
        const uint64_t key = name_key(p->shape.seed, prev->name);
        const ck_tensor full = {.kind = K_LINEAR, .ne = {prev->ne[0] * 4, prev->ne[1]}};
        store(p->dtype, in_dtype(p->dtype, 1.0f / ternary_magnitude(p, &full, key)), buf);
        return fwrite(buf, dtype_size(p->dtype), 1, f) == 1 ? 0 : -1;
    }
    const uint64_t key = name_key(p->shape.seed, t->name);
    const uint64_t n = t->ne[0] * (t->ne[1] ? t->ne[1] : 1);
    const float m = t->kind == K_LINEAR && p->ternary ? ternary_magnitude(p, t, key) : 0.0f;
    const size_t es = t->kind == K_PACKED ? 1 : dtype_size(p->dtype);
    for (uint64_t i0 = 0; i0 < n; i0 += CHUNK) {
        const uint64_t c = n - i0 < CHUNK ? n - i0 : CHUNK;
        for (uint64_t j = 0; j < c; j++) {
            const uint64_t i = i0 + j;
            if (t->kind == K_PACKED) {
                const uint64_t r = i / t->ne[1], col = i % t->ne[1], rows = t->ne[0];
                uint8_t b = 0;
                for (unsigned s = 0; s < 4; s++)
                    b |= (uint8_t)((ternary_code(p, key, (s * rows + r) * t->ne[1] + col) + 1)
                                   << (2 * s));
                buf[j] = b;
            } else {
                store(p->dtype, value(p, t, key, m, i), buf + j * es);
            }
        }
        if (fwrite(buf, es, c, f) != c)
            return -1;
    }
    (void)err;
    return 0;
}

/* ---------------------------------------------------------------- files */

int bn_ckpt_write_file(const char *dir, const char *name, const void *data, size_t n, bn_err *err)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return bn_fail(err, BN_E_IO, "%s: path too long", dir);
    FILE *f = fopen(path, "wb");
    if (!f)
        return bn_fail(err, BN_E_IO, "%s: cannot create: %s", path, strerror(errno));
    int bad = fwrite(data, 1, n, f) != n;
    bad |= fclose(f) != 0;
    return bad ? bn_fail(err, BN_E_IO, "%s: write failed", path) : 0;
}

static void shard_name(char *out, size_t n, int shard, int shards)
{
    if (shards == 1)
        snprintf(out, n, "model.safetensors");
    else
        snprintf(out, n, "model-%05d-of-%05d.safetensors", shard + 1, shards);
}

static void shape_json(bn_jw *w, const ck_tensor *t)
{
    bn_jw_arr(w);
    bn_jw_int(w, (int64_t)t->ne[0]);
    if (t->ne[1])
        bn_jw_int(w, (int64_t)t->ne[1]);
    bn_jw_end(w);
}

static int write_shard(const bn_ckpt_params *p, const char *dir, ck_tensor *t, size_t begin,
                       size_t end, int shard, uint8_t *buf, bn_err *err)
{
    bn_buf h = {0};
    bn_jw w = {.out = &h};
    uint64_t off = 0;
    bn_jw_obj(&w);
    bn_jw_key(&w, "__metadata__");
    bn_jw_obj(&w);
    bn_jw_key(&w, "format");
    bn_jw_str(&w, "pt");
    bn_jw_end(&w);
    for (size_t i = begin; i < end; i++) {
        bn_jw_key(&w, t[i].name);
        bn_jw_obj(&w);
        bn_jw_key(&w, "dtype");
        bn_jw_str(&w, t[i].kind == K_PACKED ? "U8" : dtype_name(p->dtype));
        bn_jw_key(&w, "shape");
        shape_json(&w, &t[i]);
        bn_jw_key(&w, "data_offsets");
        bn_jw_arr(&w);
        bn_jw_int(&w, (int64_t)off);
        bn_jw_int(&w, (int64_t)(off + t[i].bytes));
        bn_jw_end(&w);
        bn_jw_end(&w);
        off += t[i].bytes;
    }
    bn_jw_end(&w);
    while (h.len % 8) /* the header is padded with spaces to 8 bytes, as safetensors does */
        bn_buf_append(&h, " ", 1);
    if (bn_buf_check(&h, err) || w.bad) {
        bn_buf_free(&h);
        return w.bad ? bn_fail(err, BN_E_INTERNAL, "safetensors header") : -1;
    }
    char name[64], path[4096];
    shard_name(name, sizeof name, shard, p->shards);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        bn_buf_free(&h);
        return bn_fail(err, BN_E_IO, "%s: cannot create: %s", path, strerror(errno));
    }
    setvbuf(f, NULL, _IOFBF, 1 << 22);
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
    int bad = fwrite(len, 1, 8, f) != 8 || fwrite(h.data, 1, h.len, f) != h.len;
    bn_buf_free(&h);
    for (size_t i = begin; i < end && !bad; i++)
        bad = write_tensor(p, &t[i], i ? &t[i - 1] : NULL, f, buf, err);
    bad |= fclose(f) != 0;
    return bad ? bn_fail(err, BN_E_IO, "%s: write failed", path) : 0;
}

static int write_index(const bn_ckpt_params *p, const char *dir, const ck_tensor *t, size_t n,
                       bn_err *err)
{
    bn_buf b = {0};
    bn_jw w = {.out = &b};
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += t[i].bytes;
    bn_jw_obj(&w);
    bn_jw_key(&w, "metadata");
    bn_jw_obj(&w);
    bn_jw_key(&w, "total_size");
    bn_jw_int(&w, (int64_t)total);
    bn_jw_end(&w);
    bn_jw_key(&w, "weight_map");
    bn_jw_obj(&w);
    for (size_t i = 0; i < n; i++) {
        char name[64];
        shard_name(name, sizeof name, t[i].shard, p->shards);
        bn_jw_key(&w, t[i].name);
        bn_jw_str(&w, name);
    }
    bn_jw_end(&w);
    bn_jw_end(&w);
    bn_buf_append(&b, "\n", 1);
    int rc = bn_buf_check(&b, err)
                 ? -1
                 : bn_ckpt_write_file(dir, "model.safetensors.index.json", b.data, b.len, err);
    bn_buf_free(&b);
    return rc;
}

/* a float as the shortest decimal that reads back as it (1e-05, not 9.99999974e-06), as
 * Python writes config.json */
static void jw_f32(bn_jw *w, float f)
{
    char tmp[40];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, (double)f);
        if (strtof(tmp, NULL) == f)
            break;
    }
    bn_jw_num(w, strtod(tmp, NULL));
}

static int write_config(const bn_ckpt_params *p, const char *dir, bn_err *err)
{
    const bn_synth_params *s = &p->shape;
    const int b158 = is_arch(p, "bitnet-b1.58"), llama = is_arch(p, "llama");
    bn_buf b = {0};
    bn_jw w = {.out = &b};
    bn_jw_obj(&w);
    bn_jw_key(&w, "architectures");
    bn_jw_arr(&w);
    bn_jw_str(&w, b158 ? "BitNetForCausalLM" : llama ? "LlamaForCausalLM" : "BitnetForCausalLM");
    bn_jw_end(&w);
    bn_jw_key(&w, "model_type");
    bn_jw_str(&w, b158 ? "bitnet" : "llama");
    bn_jw_key(&w, "hidden_act");
    bn_jw_str(&w, b158 ? "relu2" : "silu");
    bn_jw_key(&w, "hidden_size");
    bn_jw_int(&w, s->n_embd);
    bn_jw_key(&w, "intermediate_size");
    bn_jw_int(&w, s->n_ff);
    bn_jw_key(&w, "max_position_embeddings");
    bn_jw_int(&w, s->n_ctx);
    bn_jw_key(&w, "num_attention_heads");
    bn_jw_int(&w, s->n_head);
    bn_jw_key(&w, "num_hidden_layers");
    bn_jw_int(&w, s->n_layer);
    bn_jw_key(&w, "num_key_value_heads");
    bn_jw_int(&w, s->n_head_kv);
    bn_jw_key(&w, "rms_norm_eps");
    jw_f32(&w, s->rms_eps);
    bn_jw_key(&w, "rope_theta");
    jw_f32(&w, s->rope_theta);
    bn_jw_key(&w, "rope_scaling");
    bn_jw_null(&w);
    bn_jw_key(&w, "tie_word_embeddings");
    bn_jw_bool(&w, !llama || s->tied);
    bn_jw_key(&w, "torch_dtype");
    bn_jw_str(&w, p->dtype == BN_CKPT_F32   ? "float32"
                  : p->dtype == BN_CKPT_F16 ? "float16"
                                            : "bfloat16");
    bn_jw_key(&w, "vocab_size");
    bn_jw_int(&w, s->n_vocab);
    /* SentencePiece: <s> </s> (checkpoint_tokenizer.c); BPE: the first two of the 16 special
     * tokens at the end of the synthetic vocabulary */
    bn_jw_key(&w, "bos_token_id");
    bn_jw_int(&w, p->spm ? 1 : (int64_t)s->n_vocab - BN_SYNTH_N_SPECIAL);
    bn_jw_key(&w, "eos_token_id");
    bn_jw_int(&w, p->spm ? 2 : (int64_t)s->n_vocab - BN_SYNTH_N_SPECIAL + 1);
    if (p->packed) {
        bn_jw_key(&w, "quantization_config");
        bn_jw_obj(&w);
        bn_jw_key(&w, "linear_class");
        bn_jw_str(&w, "autobitlinear");
        bn_jw_key(&w, "quant_method");
        bn_jw_str(&w, "bitnet");
        bn_jw_key(&w, "quantization_mode");
        bn_jw_str(&w, "offline");
        bn_jw_end(&w);
    }
    bn_jw_end(&w);
    bn_buf_append(&b, "\n", 1);
    int rc = bn_buf_check(&b, err) ? -1
                                   : bn_ckpt_write_file(dir, "config.json", b.data, b.len, err);
    bn_buf_free(&b);
    return rc;
}

int bn_ckpt_write(const bn_ckpt_params *p, const char *dir, bn_err *err)
{
    if (bn_ckpt_check(p, err))
        return -1;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return bn_fail(err, BN_E_IO, "%s: cannot create: %s", dir, strerror(errno));
    size_t n = 0;
    ck_tensor *t = plan(p, &n);
    uint8_t *buf = malloc((size_t)CHUNK * 4);
    int rc = -1;
    if (!t || !buf) {
        bn_fail(err, BN_E_NOMEM, "out of memory");
        goto done;
    }
    /* shards of about equal size, a packed tensor and its scale in the same shard */
    uint64_t total = 0, acc = 0;
    for (size_t i = 0; i < n; i++)
        total += t[i].bytes;
    for (size_t i = 0; i < n; i++) {
        int s = (int)(acc * (uint64_t)p->shards / (total ? total : 1));
        t[i].shard = t[i].kind == K_SCALE ? t[i - 1].shard : s;
        acc += t[i].bytes;
    }
    size_t begin = 0;
    for (int s = 0; s < p->shards; s++) {
        size_t end = begin;
        while (end < n && t[end].shard == s)
            end++;
        if (write_shard(p, dir, t, begin, end, s, buf, err))
            goto done;
        begin = end;
    }
    if (p->shards > 1 && write_index(p, dir, t, n, err))
        goto done;
    if (write_config(p, dir, err) || bn_ckpt_write_tokenizer(p, dir, err))
        goto done;
    rc = 0;
done:
    free(buf);
    free(t);
    return rc;
}
