/* Synthetic BitNet b1.58 GGUF writer (see synthetic_model.h). The metadata and tensor plan
 * follow shared/reference/make_synthetic_gguf.py line by line; contents come from a private
 * PRNG and are streamed in chunks, so the 1.2 GB 2B-4T shape needs only a few MB of memory. */
#include "synthetic_model.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf_writer.h"
#include "kernels.h"
#include "rng.h"

#define QK_I2_S                 128
#define LLAMA_FTYPE_ALL_F32     0
#define LLAMA_FTYPE_MOSTLY_I2_S 40

/* The chat template the converter stored in the published file ("\\n" = backslash + n inside
 * a Jinja string literal, exactly as stored). */
static const char chat_template[] =
    "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ 'Human: ' + message['content'] + "
    "'\\n\\nBITNETAssistant: ' + eos_token }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token }}{% endif %}{% endfor %}";

typedef struct preset {
    const char *name;
    const char *arch;
    uint32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab;
    uint64_t seed;
    const char *model_name;
    uint32_t n_ctx;   /* 0 = the default 4096 */
    float rope_theta; /* 0 = the default 500000 */
    float rms_eps;    /* 0 = the default 1e-5 */
} preset;

/* The real shapes are those of each model's config.json (README "Models"). */
static const preset presets[] = {
    {"tiny", "bitnet-b1.58", 128, 2, 2, 1, 384, 384, 5, "bitnet2b-synthetic-tiny", 0, 0, 0},
    {"tiny-a", "bitnet-b1.58", 256, 2, 4, 2, 512, 512, 1, "bitnet2b-synthetic-tiny-a", 0, 0, 0},
    {"tiny-b", "bitnet-b1.58", 512, 3, 4, 1, 1408, 1024, 2, "bitnet2b-synthetic-tiny-b", 0, 0, 0},
    {"2b4t", "bitnet-b1.58", 2560, 30, 20, 5, 6912, 128256, 3, "bitnet2b-synthetic-2b4t", 0, 0, 0},
    /* tiny models of the other families: 384 = not a multiple of 256 -> Q8_0 LM head */
    {"tiny-bitnet", "bitnet", 384, 2, 6, 6, 1024, 512, 11, "bitnet-synthetic-tiny", 2048, 10000.0f,
     1e-5f},
    {"tiny-llama", "llama", 256, 2, 4, 2, 768, 512, 12, "llama-synthetic-tiny", 8192, 500000.0f,
     1e-5f},
    {"tiny-falcon3", "llama", 384, 2, 3, 1, 1152, 512, 13, "falcon3-synthetic-tiny", 8192,
     1000042.0f, 1e-6f},
    /* n_ff 8640 = 67.5 blocks: ffn_down rows start mid-block (README "Models") */
    {"bitnet-3b", "bitnet", 3200, 26, 32, 32, 8640, 32002, 27, "bitnet_b1_58-3B-synthetic", 2048,
     10000.0f, 1e-5f},
    {"bitnet-large", "bitnet", 1536, 24, 16, 16, 4096, 32002, 21, "bitnet_b1_58-large-synthetic",
     2048, 10000.0f, 1e-5f},
    {"llama3-8b", "llama", 4096, 32, 32, 8, 14336, 128256, 22, "llama3-8b-1.58-synthetic", 8192,
     500000.0f, 1e-5f},
    {"falcon3-1b", "llama", 2048, 18, 8, 4, 8192, 131072, 23, "falcon3-1b-1.58bit-synthetic", 8192,
     1000042.0f, 1e-6f},
    {"falcon3-3b", "llama", 3072, 22, 12, 4, 9216, 131072, 24, "falcon3-3b-1.58bit-synthetic",
     32768, 1000042.0f, 1e-6f},
    {"falcon3-7b", "llama", 3072, 28, 12, 4, 23040, 131072, 25, "falcon3-7b-1.58bit-synthetic",
     32768, 1000042.0f, 1e-6f},
    {"falcon3-10b", "llama", 3072, 40, 12, 4, 23040, 131072, 26, "falcon3-10b-1.58bit-synthetic",
     32768, 1000042.0f, 1e-6f},
    /* Falcon-E-1B: shapes of a public config.json of that family, not tiiuae's own (README
       "Models" says which facts come from where); Falcon-E-3B's are not known */
    {"falcon-e-1b", "llama", 2048, 24, 16, 2, 9216, 32768, 28, "falcon-e-1b-synthetic", 32768,
     1000000.0f, 1e-5f},
};
enum {
    n_presets = sizeof presets / sizeof presets[0]
};

const char *const *bn_synth_preset_names(void)
{
    static const char *names[n_presets + 1];
    for (size_t i = 0; i < n_presets; i++)
        names[i] = presets[i].name;
    names[n_presets] = NULL;
    return names;
}

void bn_synth_defaults(bn_synth_params *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->arch, sizeof p->arch, "bitnet-b1.58");
    snprintf(p->name, sizeof p->name, "bitnet2b-synthetic");
    p->n_ctx = 4096;
    p->zero_frac = 0.35f;
    p->rope_theta = 500000.0f;
    p->rms_eps = 1e-5f;
    p->out_gain = 1.0f;
}

int bn_synth_preset(const char *name, bn_synth_params *p, bn_err *err)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        const preset *s = &presets[i];
        if (strcmp(s->name, name) != 0)
            continue;
        bn_synth_defaults(p);
        snprintf(p->arch, sizeof p->arch, "%s", s->arch);
        snprintf(p->name, sizeof p->name, "%s", s->model_name);
        if (strcmp(s->arch, "llama") == 0)
            snprintf(p->pre, sizeof p->pre, "%s",
                     strstr(s->name, "falcon3")    ? "falcon3"
                     : strstr(s->name, "falcon-e") ? "falcon_e" /* the converter's hash name */
                                                   : "llama-bpe");
        if (s->n_ctx)
            p->n_ctx = s->n_ctx;
        if (s->rope_theta > 0.0f)
            p->rope_theta = s->rope_theta;
        if (s->rms_eps > 0.0f)
            p->rms_eps = s->rms_eps;
        p->n_embd = s->n_embd;
        p->n_layer = s->n_layer;
        p->n_head = s->n_head;
        p->n_head_kv = s->n_head_kv;
        p->n_ff = s->n_ff;
        p->n_vocab = s->n_vocab;
        p->seed = s->seed;
        return 0;
    }
    return bn_fail(err, BN_E_INPUT, "unknown preset '%s' (see bitnet-make-model --help)", name);
}

static int is_arch(const bn_synth_params *p, const char *a) { return strcmp(p->arch, a) == 0; }

int bn_synth_check(const bn_synth_params *p, bn_err *err)
{
    if (!is_arch(p, "bitnet-b1.58") && !is_arch(p, "bitnet") && !is_arch(p, "llama"))
        return bn_fail(err, BN_E_INPUT, "unknown architecture '%s' (bitnet-b1.58, bitnet, llama)",
                       p->arch);
    if (p->n_embd == 0 || p->n_embd % QK_I2_S)
        return bn_fail(err, BN_E_INPUT, "bad shape: n_embd %u must be a positive multiple of 128",
                       p->n_embd);
    /* any n_ff (bitnet_b1_58-3B: 8640): an I2_S tensor is one flat run of 128-weight blocks,
       as llama-quantize packs it, so ffn_down's rows may start inside a block; the F32 file
       needs n_ff % 4 == 0 only so that its F32 sizes match the converter's */
    if (p->n_ff == 0 || p->n_ff % 4)
        return bn_fail(err, BN_E_INPUT, "bad shape: n_ff %u must be a positive multiple of 4",
                       p->n_ff);
    if (p->n_layer < 1 || p->n_layer > 1024)
        return bn_fail(err, BN_E_INPUT, "bad shape: n_layer %u must be in 1..1024", p->n_layer);
    if (p->n_head == 0 || p->n_embd % p->n_head)
        return bn_fail(err, BN_E_INPUT, "bad shape: n_head %u must divide n_embd %u", p->n_head,
                       p->n_embd);
    uint32_t hd = p->n_embd / p->n_head;
    if (hd % 2)
        return bn_fail(err, BN_E_INPUT, "bad shape: head_dim %u must be even", hd);
    if (p->n_head_kv == 0 || p->n_head % p->n_head_kv)
        return bn_fail(err, BN_E_INPUT, "bad shape: n_head_kv %u must divide n_head %u",
                       p->n_head_kv, p->n_head);
    if ((uint64_t)p->n_head_kv * hd % 4)
        return bn_fail(err, BN_E_INPUT, "bad shape: n_head_kv * head_dim must be a multiple of 4");
    if (p->n_ctx == 0)
        return bn_fail(err, BN_E_INPUT, "bad shape: n_ctx must be positive");
    if (!(p->zero_frac >= 0.0f && p->zero_frac < 1.0f))
        return bn_fail(err, BN_E_INPUT, "zero_frac %g must be in [0, 1)", (double)p->zero_frac);
    if (!(p->rms_eps > 0.0f) || !(p->rope_theta > 0.0f) || !isfinite(p->rms_eps) ||
        !isfinite(p->rope_theta))
        return bn_fail(err, BN_E_INPUT, "rms_eps and rope_theta must be positive");
    if (!isfinite(p->out_gain) || !isfinite(p->embd_std) || p->embd_std < 0.0f)
        return bn_fail(err, BN_E_INPUT, "out_gain and embd_std must be finite (embd_std >= 0)");
    return 0;
}

/* ---------------------------------------------------------------- I2_S packing */

/* n/4 bytes of codes for n weights (n % 128 == 0): per 128-block, byte j holds weights j,
 * 32+j, 64+j, 96+j in bits 7..6, 5..4, 3..2, 1..0; code = weight + 1. */
static void pack_blocks(const int8_t *w, size_t n, uint8_t *out)
{
    for (size_t b = 0; b < n / QK_I2_S; b++, w += QK_I2_S, out += 32)
        for (int j = 0; j < 32; j++)
            out[j] = (uint8_t)((w[j] + 1) << 6 | (w[32 + j] + 1) << 4 | (w[64 + j] + 1) << 2 |
                               (w[96 + j] + 1));
}

void bn_i2s_pack(const int8_t *w, size_t n, float scale, uint8_t *out)
{
    pack_blocks(w, n, out);
    memset(out + n / 4, 0, 32);
    memcpy(out + n / 4, &scale, 4);
}

/* ---------------------------------------------------------------- tensor plan */

typedef struct plan_entry {
    char name[64];
    uint32_t type;
    uint64_t ne[2];
    uint32_t n_dims;
} plan_entry;

static int cmp_decimal(const void *a, const void *b)
{
    char x[16], y[16];
    snprintf(x, sizeof x, "%u", *(const uint32_t *)a);
    snprintf(y, sizeof y, "%u", *(const uint32_t *)b);
    return strcmp(x, y);
}

static void entry(plan_entry *e, const char *prefix, const char *name, uint32_t type, uint64_t ne0,
                  uint64_t ne1)
{
    snprintf(e->name, sizeof e->name, "%s%s", prefix, name);
    e->type = type;
    e->ne[0] = ne0;
    e->ne[1] = ne1;
    e->n_dims = ne1 ? 2 : 1;
}

/* The LM head's type as llama-quantize I2_S chooses it: Q8_0 when n_embd is not a multiple of
 * 256 (QK_K), else F16; a token_embd that is not the LM head becomes F16. */
static uint32_t lm_head_type(const bn_synth_params *p)
{
    if (is_arch(p, "bitnet-b1.58")) /* the published file: F16, whatever the shape */
        return BN_GGML_F16;
    return p->n_embd % 256 ? BN_GGML_Q8_0 : BN_GGML_F16;
}

static int has_output(const bn_synth_params *p) { return is_arch(p, "llama") && !p->tied; }

/* (name, type, ne) in file order: the lexicographic order of the Hugging Face parameter names
 * the converter started from (lm_head, then layers 0, 1, 10, 11, ..., 2, 20, ...). */
static plan_entry *tensor_plan(const bn_synth_params *p, uint32_t n_vocab, size_t *count)
{
    const uint64_t e = p->n_embd, ff = p->n_ff, kv = (uint64_t)p->n_head_kv * (e / p->n_head);
    const int sub_norms = !is_arch(p, "llama");
    const uint32_t f32 = BN_GGML_F32, i2s = p->f32 ? BN_GGML_F32 : BN_GGML_I2_S;
    const uint32_t head = p->f32 ? f32 : lm_head_type(p);
    size_t n = 3 + 11 * (size_t)p->n_layer;
    plan_entry *pl = calloc(n, sizeof *pl);
    uint32_t *order = calloc(p->n_layer, sizeof *order);
    if (!pl || !order) {
        free(pl);
        free(order);
        return NULL;
    }
    for (uint32_t i = 0; i < p->n_layer; i++)
        order[i] = i;
    qsort(order, p->n_layer, sizeof *order, cmp_decimal);
    size_t k = 0;
    if (has_output(p))
        entry(&pl[k++], "", "output.weight", head, e, n_vocab); /* lm_head */
    entry(&pl[k++], "", "token_embd.weight",
          p->f32          ? f32
          : has_output(p) ? BN_GGML_F16
                          : head,
          e, n_vocab);
    for (uint32_t i = 0; i < p->n_layer; i++) {
        char pre[32];
        snprintf(pre, sizeof pre, "blk.%u.", order[i]);
        entry(&pl[k++], pre, "attn_norm.weight", f32, e, 0); /* input_layernorm */
        entry(&pl[k++], pre, "ffn_down.weight", i2s, ff, e); /* mlp.down_proj */
        if (sub_norms)
            entry(&pl[k++], pre, "ffn_sub_norm.weight", f32, ff, 0); /* mlp.ffn_sub_norm */
        entry(&pl[k++], pre, "ffn_gate.weight", i2s, e, ff);         /* mlp.gate_proj */
        entry(&pl[k++], pre, "ffn_up.weight", i2s, e, ff);           /* mlp.up_proj */
        entry(&pl[k++], pre, "ffn_norm.weight", f32, e, 0);          /* post_attention_ln */
        if (sub_norms)
            entry(&pl[k++], pre, "attn_sub_norm.weight", f32, e, 0); /* attn_sub_norm */
        entry(&pl[k++], pre, "attn_k.weight", i2s, e, kv);           /* k_proj */
        entry(&pl[k++], pre, "attn_output.weight", i2s, e, e);       /* o_proj */
        entry(&pl[k++], pre, "attn_q.weight", i2s, e, e);            /* q_proj */
        entry(&pl[k++], pre, "attn_v.weight", i2s, e, kv);           /* v_proj */
    }
    entry(&pl[k++], "", "output_norm.weight", f32, e, 0); /* model.norm */
    free(order);
    *count = k;
    return pl;
}

/* Whether a plan entry holds ternary weights (I2_S, or their F32 form in the converter's file). */
static int is_ternary(const plan_entry *e)
{
    return e->n_dims == 2 && strcmp(e->name, "token_embd.weight") != 0 &&
           strcmp(e->name, "output.weight") != 0;
}

/* ---------------------------------------------------------------- contents */

enum {
    CHUNK_BYTES = 1 << 20
};

static void tensor_rng(bn_rng *r, uint64_t seed, const char *name)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *s = name; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    bn_rng_seed(r, seed * 0x9e3779b97f4a7c15ull ^ h);
}

/* Q8_0 as llama-quantize writes it (ggml's quantize_row_q8_0_ref: id = 1/d, roundf), so that
 * a Q8_0 tensor here is byte for byte the one the reference's pipeline makes. */
void bn_q8_0_quantize_ref(const float *x, uint8_t *out, uint64_t n)
{
    for (uint64_t b = 0; b < n / BN_QK8_0; b++, x += BN_QK8_0, out += BN_Q8_0_BYTES) {
        float amax = 0.0f;
        for (int j = 0; j < BN_QK8_0; j++)
            amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        const uint16_t h = bn_f32_to_f16(d);
        memcpy(out, &h, 2);
        for (int j = 0; j < BN_QK8_0; j++)
            out[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
    }
}

/* An embedding-shaped matrix (token_embd, output) of ne1 rows of ne0: values approximately
 * normal, rounded to f16, then stored in the entry's type (F16, F32 = the same values, or Q8_0
 * quantized row by row). */
static int write_embd(bn_gguf_writer *w, const bn_synth_params *p, const plan_entry *e, bn_rng *r,
                      uint8_t *chunk, bn_err *err)
{
    /* approximately normal: a sum of four 16-bit uniforms (Irwin-Hall, variance 4/12) */
    const float std = p->embd_std > 0.0f ? p->embd_std : 1.5f / sqrtf((float)p->n_embd);
    const float mul = std * sqrtf(3.0f) / 65536.0f;
    const uint64_t ne0 = e->ne[0];
    float *row = (float *)(void *)chunk; /* ne0 floats, then the row in its stored type */
    uint8_t *out = chunk + ne0 * 4;
    for (uint64_t i = 0; i < e->ne[1]; i++) {
        for (uint64_t j = 0; j < ne0; j++) {
            uint64_t x = bn_rng_next(r);
            int32_t s = (int32_t)(x & 0xffff) + (int32_t)(x >> 16 & 0xffff) +
                        (int32_t)(x >> 32 & 0xffff) + (int32_t)(x >> 48) - 2 * 65535;
            row[j] = bn_f16_to_f32(bn_f32_to_f16((float)s * mul));
        }
        size_t bytes;
        if (e->type == BN_GGML_F16) {
            bn_f32_to_f16_row(row, (uint16_t *)(void *)out, ne0);
            bytes = ne0 * 2;
        } else if (e->type == BN_GGML_Q8_0) {
            bn_q8_0_quantize_ref(row, out, ne0);
            bytes = ne0 / BN_QK8_0 * BN_Q8_0_BYTES;
        } else {
            memcpy(out, row, ne0 * 4);
            bytes = ne0 * 4;
        }
        if (bn_gguf_writer_data(w, out, bytes, err))
            return -1;
    }
    return 0;
}

static int write_f32_norm(bn_gguf_writer *w, bn_rng *r, uint64_t n, uint8_t *chunk, bn_err *err)
{
    float *f = (float *)(void *)chunk;
    const uint64_t per = CHUNK_BYTES / 4;
    for (uint64_t i = 0; i < n; i += per) {
        uint64_t k = n - i < per ? n - i : per;
        for (uint64_t j = 0; j < k; j++)
            f[j] = (float)(0.6 + 0.8 * bn_rng_uniform(r));
        if (bn_gguf_writer_data(w, f, k * 4, err))
            return -1;
    }
    return 0;
}

static int write_i2s(bn_gguf_writer *w, const bn_synth_params *p, const plan_entry *e, bn_rng *r,
                     uint8_t *chunk, int8_t *weights, bn_err *err)
{
    const uint64_t k = e->ne[0], n = e->ne[0] * e->ne[1];
    /* 16-bit thresholds: u < z -> 0, u < z + (1-z)/2 -> -1, else +1 */
    const uint32_t z = (uint32_t)(p->zero_frac * 65536.0f + 0.5f), neg = z + (65536 - z) / 2;
    const uint64_t per = CHUNK_BYTES / 32 *
                         QK_I2_S; /* weights per chunk: a whole number of blocks */
    double gain = 0.8 + 0.4 * bn_rng_uniform(r);
    if (strstr(e->name, "attn_output.weight") || strstr(e->name, "ffn_down.weight"))
        gain *= p->out_gain; /* < 1 keeps each layer's update small next to the residual */
    const float scale = (float)(gain / sqrt((double)k * (1.0 - p->zero_frac)));
    for (uint64_t i = 0; i < n; i += per) {
        uint64_t m = n - i < per ? n - i : per;
        for (uint64_t j = 0; j < m; j += 4) {
            uint64_t x = bn_rng_next(r);
            for (int q = 0; q < 4; q++, x >>= 16) {
                uint32_t u = (uint32_t)(x & 0xffff);
                weights[j + (uint64_t)q] = (int8_t)(u < z ? 0 : u < neg ? -1 : 1);
            }
        }
        if (e->type == BN_GGML_F32) { /* the converter's file: scale * {-1, 0, +1} */
            float *f = (float *)(void *)chunk;
            const uint64_t fper = CHUNK_BYTES / 4;
            for (uint64_t j0 = 0; j0 < m; j0 += fper) {
                const uint64_t c = m - j0 < fper ? m - j0 : fper;
                for (uint64_t j = 0; j < c; j++)
                    f[j] = (float)weights[j0 + j] * scale;
                if (bn_gguf_writer_data(w, f, c * 4, err))
                    return -1;
            }
            continue;
        }
        pack_blocks(weights, m, chunk);
        if (bn_gguf_writer_data(w, chunk, m / 4, err))
            return -1;
    }
    if (e->type == BN_GGML_F32)
        return 0;
    uint8_t tail_bytes[32] = {0};
    memcpy(tail_bytes, &scale, 4);
    return bn_gguf_writer_data(w, tail_bytes, sizeof tail_bytes, err);
}

/* ---------------------------------------------------------------- the file */

static void add_metadata(bn_gguf_writer *w, const bn_synth_params *p, const bn_synth_vocab *v,
                         float *scores)
{
    const char *A = p->arch;
    char key[96];
#define K(suffix) (snprintf(key, sizeof key, "%s.%s", A, suffix), key)
    bn_gguf_writer_add_str(w, "general.architecture", A);
    bn_gguf_writer_add_str(w, "general.name", p->name);
    if (is_arch(p, "bitnet-b1.58")) {
        /* the published 2B-4T file's 24 keys in its order (FORMAT.md 1.1) */
        bn_gguf_writer_add_u32(w, K("vocab_size"), (uint32_t)v->n_tokens);
        bn_gguf_writer_add_u32(w, K("context_length"), p->n_ctx);
        bn_gguf_writer_add_u32(w, K("embedding_length"), p->n_embd);
        bn_gguf_writer_add_u32(w, K("block_count"), p->n_layer);
        bn_gguf_writer_add_u32(w, K("feed_forward_length"), p->n_ff);
        bn_gguf_writer_add_u32(w, K("rope.dimension_count"), p->n_embd / p->n_head);
        bn_gguf_writer_add_u32(w, K("attention.head_count"), p->n_head);
        bn_gguf_writer_add_u32(w, K("attention.head_count_kv"), p->n_head_kv);
        bn_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", 1);
        bn_gguf_writer_add_f32(w, K("attention.layer_norm_rms_epsilon"), p->rms_eps);
        bn_gguf_writer_add_f32(w, K("rope.freq_base"), p->rope_theta);
    } else {
        /* what convert-hf-to-gguf-bitnet.py writes: Model.set_gguf_parameters, then the
         * family's additions (bitnet: linear rope scaling of 1; llama: rope dimension) */
        bn_gguf_writer_add_u32(w, K("block_count"), p->n_layer);
        bn_gguf_writer_add_u32(w, K("context_length"), p->n_ctx);
        bn_gguf_writer_add_u32(w, K("embedding_length"), p->n_embd);
        bn_gguf_writer_add_u32(w, K("feed_forward_length"), p->n_ff);
        bn_gguf_writer_add_u32(w, K("attention.head_count"), p->n_head);
        bn_gguf_writer_add_u32(w, K("attention.head_count_kv"), p->n_head_kv);
        bn_gguf_writer_add_f32(w, K("rope.freq_base"), p->rope_theta);
        bn_gguf_writer_add_f32(w, K("attention.layer_norm_rms_epsilon"), p->rms_eps);
        bn_gguf_writer_add_u32(w, "general.file_type",
                               p->f32 ? LLAMA_FTYPE_ALL_F32 : LLAMA_FTYPE_MOSTLY_I2_S);
        bn_gguf_writer_add_u32(w, K("vocab_size"), (uint32_t)v->n_tokens);
        if (is_arch(p, "bitnet")) {
            bn_gguf_writer_add_str(w, K("rope.scaling.type"), "linear");
            bn_gguf_writer_add_f32(w, K("rope.scaling.factor"), 1.0f);
        } else {
            bn_gguf_writer_add_u32(w, K("rope.dimension_count"), p->n_embd / p->n_head);
        }
        bn_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", 1);
    }
#undef K
    if (is_arch(p, "bitnet-b1.58"))
        bn_gguf_writer_add_u32(w, "general.file_type",
                               p->f32 ? LLAMA_FTYPE_ALL_F32 : LLAMA_FTYPE_MOSTLY_I2_S);
    /* a SentencePiece vocabulary as _set_vocab_sentencepiece writes it: pre "default", its
       scores, no merges */
    bn_gguf_writer_add_str(w, "tokenizer.ggml.model", v->spm ? "llama" : "gpt2");
    if (v->spm)
        bn_gguf_writer_add_str(w, "tokenizer.ggml.pre", "default");
    else if (p->pre[0])
        bn_gguf_writer_add_str(w, "tokenizer.ggml.pre", p->pre);
    bn_gguf_writer_add_arr_strv(w, "tokenizer.ggml.tokens", v->tokens, v->n_tokens);
    for (uint64_t i = 0; i < v->n_tokens; i++)
        scores[i] = v->spm ? v->scores[i] : v->types[i] == 1 ? 0.0f : -1000.0f;
    bn_gguf_writer_add_arr(w, "tokenizer.ggml.scores", BN_GGUF_F32, scores, v->n_tokens);
    bn_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", BN_GGUF_I32, v->types, v->n_tokens);
    if (!v->spm)
        bn_gguf_writer_add_arr_strv(w, "tokenizer.ggml.merges", v->merges, v->n_merges);
    bn_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", v->bos);
    bn_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", v->eos);
    if (v->unk_id >= 0)
        bn_gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)v->unk_id);
    bn_gguf_writer_add_u32(w, "tokenizer.ggml.padding_token_id",
                           v->spm ? (uint32_t)(v->pad_id >= 0 ? v->pad_id : v->eos) : v->eos);
    if (v->add_eos >= 0)
        bn_gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", v->add_eos);
    if (is_arch(p, "bitnet-b1.58"))
        bn_gguf_writer_add_str(w, "tokenizer.chat_template", chat_template);
    if (!p->f32)
        bn_gguf_writer_add_u32(w, "general.quantization_version", 2);
}

static int write_model(const bn_synth_params *p, const bn_synth_vocab *v, FILE *f, bn_err *err)
{
    size_t n_plan = 0;
    plan_entry *plan = tensor_plan(p, (uint32_t)v->n_tokens, &n_plan);
    bn_gguf_writer *w = bn_gguf_writer_new();
    float *scores = malloc(v->n_tokens * sizeof *scores);
    uint8_t *chunk = malloc(CHUNK_BYTES);
    int8_t *weights = malloc((size_t)CHUNK_BYTES / 32 * QK_I2_S);
    int rc = -1;
    if (!plan || !w || !scores || !chunk || !weights) {
        bn_fail(err, BN_E_NOMEM, "out of memory");
        goto done;
    }
    add_metadata(w, p, v, scores);
    for (size_t i = 0; i < n_plan; i++)
        bn_gguf_writer_add_tensor(w, plan[i].name, plan[i].type, plan[i].n_dims, plan[i].ne);
    if (bn_gguf_writer_begin(w, f, err))
        goto done;
    for (size_t i = 0; i < n_plan; i++) {
        const plan_entry *e = &plan[i];
        bn_rng r;
        tensor_rng(&r, p->seed, e->name);
        int bad;
        if (e->n_dims == 1)
            bad = write_f32_norm(w, &r, e->ne[0], chunk, err);
        else if (is_ternary(e))
            bad = write_i2s(w, p, e, &r, chunk, weights, err);
        else
            bad = write_embd(w, p, e, &r, chunk, err);
        if (bad)
            goto done;
    }
    rc = bn_gguf_writer_finish(w, err);
done:
    free(weights);
    free(chunk);
    free(scores);
    bn_gguf_writer_free(w);
    free(plan);
    return rc;
}

int bn_synth_write_stream(const bn_synth_params *p, FILE *f, bn_err *err)
{
    if (bn_synth_check(p, err))
        return -1;
    bn_synth_vocab v;
    if (p->vocab_gguf) {
        if (bn_synth_vocab_load(p->vocab_gguf, &v, err))
            return -1;
        if (p->n_vocab && p->n_vocab != v.n_tokens) {
            bn_fail(err, BN_E_INPUT, "n_vocab %u does not match the %llu tokens of %s", p->n_vocab,
                    (unsigned long long)v.n_tokens, p->vocab_gguf);
            bn_synth_vocab_free(&v);
            return -1;
        }
    } else if (bn_synth_vocab_make(p->n_vocab, p->seed, &v, err)) {
        return -1;
    }
    if (p->add_eos)
        v.add_eos = 1;
    int rc = write_model(p, &v, f, err);
    bn_synth_vocab_free(&v);
    return rc;
}

int bn_synth_write(const bn_synth_params *p, const char *path, bn_err *err)
{
    if (bn_synth_check(p, err))
        return -1;
    /* write beside the target and rename: a reader that has the old file mapped keeps a valid
     * map (truncating it in place would SIGBUS it), and a failed run leaves no partial file */
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid()) >= sizeof tmp)
        return bn_fail(err, BN_E_IO, "%s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return bn_fail(err, BN_E_IO, "%s: cannot create: %s", path, strerror(errno));
    setvbuf(f, NULL, _IOFBF, 1 << 22);
    int rc = bn_synth_write_stream(p, f, err);
    if (fclose(f) != 0 && rc == 0)
        rc = bn_fail(err, BN_E_IO, "%s: write failed: %s", path, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = bn_fail(err, BN_E_IO, "cannot rename to %s: %s", path, strerror(errno));
    else if (rc)
        bn_fail_prefix(err, "%s", path);
    if (rc)
        unlink(tmp);
    return rc;
}
