/* Model loading for the architectures bitnet.cpp's pipeline writes (FORMAT.md sections 1-2 for
 * "bitnet-b1.58"; README "Models" for "bitnet" and "llama"): hyper-parameters under the
 * architecture's key prefix, then every tensor checked for presence, type and shape. */
#include "model.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "clock.h"

static const bn_arch_info archs[] = {
    /* microsoft BitNet-b1.58-2B-4T */
    {"bitnet-b1.58", BN_FAMILY_BITNET, BN_ACT_RELU2, BN_ROPE_NEOX, BN_LM_HEAD_TIED},
    /* The same model as the reference's 2B-4T route writes it (convert-helper-bitnet.py, then
     * convert-ms-to-gguf-bitnet.py): its llama.cpp fork builds both names with one graph. */
    {"bitnet-25", BN_FAMILY_BITNET, BN_ACT_RELU2, BN_ROPE_NEOX, BN_LM_HEAD_TIED},
    /* 1bitLLM bitnet_b1_58-large / -3B (llm_build_bitnet: SiLU, LM head = token_embd) */
    {"bitnet", BN_FAMILY_BITNET, BN_ACT_SILU, BN_ROPE_NEOX, BN_LM_HEAD_TIED},
    /* Llama3-8B-1.58, Falcon3-*-1.58bit (llm_build_llama; Q/K permuted by the converter) */
    {"llama", BN_FAMILY_LLAMA, BN_ACT_SILU, BN_ROPE_NORM, BN_LM_HEAD_OUTPUT},
};

const bn_arch_info *bn_arch_find(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (strlen(archs[i].name) == len && memcmp(archs[i].name, name, len) == 0)
            return &archs[i];
    return NULL;
}

static int get_hp(const bn_gguf *g, const char *arch, const char *suffix, uint32_t *out,
                  bn_err *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return bn_gguf_get_u32(g, key, out, err);
}

static int has_hp(const bn_gguf *g, const char *arch, const char *suffix)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return bn_gguf_find(g, key) != NULL;
}

static const bn_arch_info *read_arch(const bn_gguf *g, bn_err *err)
{
    bn_gguf_str name;
    if (bn_gguf_get_str(g, "general.architecture", &name, err))
        return NULL;
    const bn_arch_info *a = bn_arch_find(name.ptr, name.len);
    if (!a)
        bn_fail(err, BN_E_UNSUPPORTED,
                "unsupported architecture '%.*s' (this engine runs "
                "'bitnet-b1.58' (or 'bitnet-25'), 'bitnet' and 'llama' with I2_S weights)",
                (int)(name.len > 64 ? 64 : name.len), name.ptr);
    return a;
}

int bn_model_read_hparams(const bn_gguf *g, bn_hparams *hp, bn_err *err)
{
    const bn_arch_info *a = read_arch(g, err);
    if (!a)
        return -1;
    const char *A = a->name;
    memset(hp, 0, sizeof *hp);
    if (get_hp(g, A, "embedding_length", &hp->n_embd, err) ||
        get_hp(g, A, "block_count", &hp->n_layer, err) ||
        get_hp(g, A, "feed_forward_length", &hp->n_ff, err) ||
        get_hp(g, A, "attention.head_count", &hp->n_head, err) ||
        get_hp(g, A, "context_length", &hp->n_ctx_train, err))
        return -1;
    /* llama.cpp: head_count_kv defaults to head_count */
    hp->n_head_kv = hp->n_head;
    if (has_hp(g, A, "attention.head_count_kv") &&
        get_hp(g, A, "attention.head_count_kv", &hp->n_head_kv, err))
        return -1;
    char key[128];
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", A);
    if (bn_gguf_get_f32(g, key, &hp->rms_eps, err))
        return -1;
    snprintf(key, sizeof key, "%s.rope.freq_base", A);
    hp->rope_theta = 10000.0f;
    if (bn_gguf_find(g, key) && bn_gguf_get_f32(g, key, &hp->rope_theta, err))
        return -1;
    snprintf(key, sizeof key, "%s.rope.scaling.factor", A);
    float factor = 1.0f;
    if (bn_gguf_find(g, key) && bn_gguf_get_f32(g, key, &factor, err))
        return -1;
    if (factor != 1.0f && factor != 0.0f)
        return bn_fail(err, BN_E_UNSUPPORTED, "rope scaling factor %g is not supported (only 1)",
                       (double)factor);

    if (hp->n_embd == 0 || hp->n_embd % 128)
        return bn_fail(err, BN_E_FORMAT, "embedding_length %u must be a positive multiple of 128",
                       hp->n_embd);
    /* n_ff need not be a multiple of 128 (bitnet_b1_58-3B: 8640): ffn_down's rows then cross
       block boundaries in the file and are copied row-aligned at load (pad_rows below) */
    if (hp->n_ff == 0)
        return bn_fail(err, BN_E_FORMAT, "feed_forward_length must be positive");
    if (hp->n_layer == 0 || hp->n_layer > 1024)
        return bn_fail(err, BN_E_FORMAT, "block_count %u is out of range (1..1024)", hp->n_layer);
    if (hp->n_head == 0 || hp->n_embd % hp->n_head)
        return bn_fail(err, BN_E_FORMAT, "head_count %u does not divide embedding_length %u",
                       hp->n_head, hp->n_embd);
    if (hp->n_head_kv == 0 || hp->n_head % hp->n_head_kv)
        return bn_fail(err, BN_E_FORMAT, "head_count_kv %u does not divide head_count %u",
                       hp->n_head_kv, hp->n_head);
    hp->head_dim = hp->n_embd / hp->n_head;
    if (hp->head_dim % 2)
        return bn_fail(err, BN_E_FORMAT, "head size %u must be even for RoPE", hp->head_dim);
    hp->n_rot = hp->head_dim;
    if (has_hp(g, A, "rope.dimension_count")) {
        if (get_hp(g, A, "rope.dimension_count", &hp->n_rot, err))
            return -1;
        if (hp->n_rot != hp->head_dim)
            return bn_fail(err, BN_E_FORMAT, "rope.dimension_count %u must equal the head size %u",
                           hp->n_rot, hp->head_dim);
    }
    if (hp->n_ctx_train == 0)
        return bn_fail(err, BN_E_FORMAT, "context_length must be positive");
    if (!(hp->rms_eps > 0.0f) || !isfinite(hp->rms_eps))
        return bn_fail(err, BN_E_FORMAT, "layer_norm_rms_epsilon must be positive");
    if (!(hp->rope_theta > 0.0f) || !isfinite(hp->rope_theta))
        return bn_fail(err, BN_E_FORMAT, "rope.freq_base must be positive");

    const bn_gguf_tensor *embd = bn_gguf_find_tensor(g, "token_embd.weight");
    if (has_hp(g, A, "vocab_size")) {
        if (get_hp(g, A, "vocab_size", &hp->n_vocab, err))
            return -1;
    } else if (embd && embd->n_dims == 2 && embd->ne[1] <= UINT32_MAX) {
        hp->n_vocab = (uint32_t)embd->ne[1];
    } else {
        const bn_gguf_kv *toks = bn_gguf_find(g, "tokenizer.ggml.tokens");
        if (!toks || toks->type != BN_GGUF_ARRAY || toks->arr_len > UINT32_MAX)
            return bn_fail(err, BN_E_FORMAT, "cannot tell the vocabulary size (no %s.vocab_size)",
                           A);
        hp->n_vocab = (uint32_t)toks->arr_len;
    }
    if (hp->n_vocab == 0)
        return bn_fail(err, BN_E_FORMAT, "vocab_size must be positive");
    return 0;
}

static void describe_shape(char *buf, size_t n, const bn_gguf_tensor *t)
{
    int w = snprintf(buf, n, "%s [", bn_ggml_type_name(t->type));
    for (uint32_t d = 0; d < t->n_dims && w > 0 && (size_t)w < n; d++)
        w += snprintf(buf + w, n - (size_t)w, "%s%llu", d ? ", " : "",
                      (unsigned long long)t->ne[d]);
    if (w > 0 && (size_t)w < n)
        snprintf(buf + w, n - (size_t)w, "]");
}

/* Finds NAME and checks it is TYPE with dims ne0 (and ne1 when non-zero). */
static const bn_gguf_tensor *want(const bn_gguf *g, const char *name, uint32_t type, uint64_t ne0,
                                  uint64_t ne1, bn_err *err)
{
    const bn_gguf_tensor *t = bn_gguf_find_tensor(g, name);
    char exp[96], got[96];
    if (ne1)
        snprintf(exp, sizeof exp, "%s [%llu, %llu]", bn_ggml_type_name(type),
                 (unsigned long long)ne0, (unsigned long long)ne1);
    else
        snprintf(exp, sizeof exp, "%s [%llu]", bn_ggml_type_name(type), (unsigned long long)ne0);
    if (!t) {
        bn_fail(err, BN_E_FORMAT, "%s: missing tensor (expected %s)", name, exp);
        return NULL;
    }
    uint32_t dims = ne1 ? 2 : 1;
    if (t->type != type || t->n_dims != dims || t->ne[0] != ne0 || (ne1 && t->ne[1] != ne1)) {
        describe_shape(got, sizeof got, t);
        bn_fail(err, BN_E_FORMAT, "%s: expected %s, got %s", name, exp, got);
        return NULL;
    }
    /* float views are dereferenced directly: a file with general.alignment 1 could misalign them */
    size_t align = type == BN_GGML_F32 ? 4 : type == BN_GGML_F16 ? 2 : 1;
    if ((uintptr_t)t->data % align) {
        bn_fail(err, BN_E_FORMAT, "%s: data at file offset %llu is not %zu-byte aligned", name,
                (unsigned long long)((const uint8_t *)t->data - g->base), align);
        return NULL;
    }
    return t;
}

static int bind_ternary(const bn_gguf *g, const char *name, uint64_t k, uint64_t m, bn_ternary *w,
                        bn_err *err)
{
    const bn_gguf_tensor *t = want(g, name, BN_GGML_I2_S, k, m, err);
    if (!t)
        return -1;
    w->packed = t->data;
    w->k = k;
    w->m = m;
    /* the per-tensor scale is the f32 right after the k*m/4 packed bytes */
    memcpy(&w->scale, (const uint8_t *)t->data + k * m / 4, sizeof w->scale);
    if (!isfinite(w->scale))
        return bn_fail(err, BN_E_FORMAT, "%s: scale is not a finite number", name);
    w->repacked = NULL;
    return 0;
}

static const float *bind_f32(const bn_gguf *g, const char *name, uint64_t n, bn_err *err)
{
    const bn_gguf_tensor *t = want(g, name, BN_GGML_F32, n, 0, err);
    return t ? t->data : NULL;
}

static const char *layer_tensor_name(char *buf, size_t n, uint32_t il, const char *suffix)
{
    snprintf(buf, n, "blk.%u.%s", il, suffix);
    return buf;
}

static int bind_layer(const bn_gguf *g, const bn_model *m, uint32_t il, bn_layer *L, bn_err *err)
{
    char n[96];
    const bn_hparams *hp = &m->hp;
    const uint64_t e = hp->n_embd, kv = (uint64_t)hp->n_head_kv * hp->head_dim, ff = hp->n_ff;
    const int sub_norms = m->arch->family == BN_FAMILY_BITNET;
    if (!(L->attn_norm = bind_f32(g, layer_tensor_name(n, sizeof n, il, "attn_norm.weight"), e,
                                  err)) ||
        bind_ternary(g, layer_tensor_name(n, sizeof n, il, "attn_q.weight"), e, e, &L->wq, err) ||
        bind_ternary(g, layer_tensor_name(n, sizeof n, il, "attn_k.weight"), e, kv, &L->wk, err) ||
        bind_ternary(g, layer_tensor_name(n, sizeof n, il, "attn_v.weight"), e, kv, &L->wv, err) ||
        (sub_norms &&
         !(L->attn_sub_norm = bind_f32(
               g, layer_tensor_name(n, sizeof n, il, "attn_sub_norm.weight"), e, err))) ||
        bind_ternary(g, layer_tensor_name(n, sizeof n, il, "attn_output.weight"), e, e, &L->wo,
                     err) ||
        !(L->ffn_norm = bind_f32(g, layer_tensor_name(n, sizeof n, il, "ffn_norm.weight"), e,
                                 err)) ||
        bind_ternary(g, layer_tensor_name(n, sizeof n, il, "ffn_gate.weight"), e, ff, &L->w_gate,
                     err) ||
        bind_ternary(g, layer_tensor_name(n, sizeof n, il, "ffn_up.weight"), e, ff, &L->w_up,
                     err) ||
        (sub_norms &&
         !(L->ffn_sub_norm = bind_f32(g, layer_tensor_name(n, sizeof n, il, "ffn_sub_norm.weight"),
                                      ff, err))) ||
        bind_ternary(g, layer_tensor_name(n, sizeof n, il, "ffn_down.weight"), ff, e, &L->w_down,
                     err))
        return -1;
    return 0;
}

/* Tensors the reference would apply but this engine does not: refusing beats wrong output. */
static int refuse_extras(const bn_gguf *g, bn_err *err)
{
    static const char *const unsupported[] = {"rope_freqs.weight", "blk.0.attn_q.bias",
                                              "blk.0.attn_q.scale", "blk.0.ffn_up.scale"};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (bn_gguf_find_tensor(g, unsupported[i]))
            return bn_fail(err, BN_E_UNSUPPORTED, "%s: tensor not supported by this engine",
                           unsupported[i]);
    return 0;
}

/* An embedding or LM-head matrix [n_embd, n_vocab] in a type llama-quantize writes for it. */
static int bind_rows(const bn_gguf *g, const char *name, const bn_hparams *hp, bn_rows *r,
                     bn_err *err)
{
    const bn_gguf_tensor *t = bn_gguf_find_tensor(g, name);
    if (!t)
        return bn_fail(err, BN_E_FORMAT, "%s: missing tensor (expected F16 or Q8_0 [%u, %u])", name,
                       hp->n_embd, hp->n_vocab);
    if (t->type != BN_GGML_F16 && t->type != BN_GGML_Q8_0)
        return bn_fail(err, BN_E_UNSUPPORTED,
                       "%s: type %s is not supported (F16 or Q8_0, as "
                       "llama-quantize I2_S writes it)",
                       name, bn_ggml_type_name(t->type));
    if (!want(g, name, t->type, hp->n_embd, hp->n_vocab, err))
        return -1;
    r->data = t->data;
    r->type = t->type;
    r->row_bytes = t->type == BN_GGML_F16 ? (size_t)hp->n_embd * 2
                                          : (size_t)hp->n_embd / BN_QK8_0 * BN_Q8_0_BYTES;
    return 0;
}

static bn_ternary *layer_matrices(bn_layer *L, int i)
{
    bn_ternary *all[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
    return i < 7 ? all[i] : NULL;
}

static void release_pages(const bn_model *m, uintptr_t b, uintptr_t e);
static void advise_pages(uintptr_t b, uintptr_t e, int advice);

typedef struct repack_job {
    bn_model *m;
    atomic_int failed;
} repack_job;

/* The codes of row r of an I2_S tensor with k columns, in the flat layout llama-quantize
 * writes (quantize_i2_s): the tensor's k*m weights are one run of 128-weight blocks, so row r
 * starts at flat index r*k, inside a block when k % 128 != 0. Unpacks the blocks the row
 * touches into tmp (k + 256 bytes, one code a byte) and returns where the row starts in it.
 * The blocks end at or before the tensor's end: r*k + k <= m*k, a whole number of blocks. */
static const uint8_t *unpack_row(const uint8_t *packed, size_t k, size_t r, uint8_t *tmp)
{
    const size_t flat = r * k, off = flat % 128, n_blocks = (off + k + 127) / 128;
    const uint8_t *src = packed + flat / 128 * 32;
    for (size_t b = 0; b < n_blocks; b++, src += 32, tmp += 128)
        for (int j = 0; j < 32; j++) {
            tmp[j] = src[j] >> 6 & 3;
            tmp[32 + j] = src[j] >> 4 & 3;
            tmp[64 + j] = src[j] >> 2 & 3;
            tmp[96 + j] = src[j] & 3;
        }
    return tmp - n_blocks * 128 + off;
}

/* Replaces w (k % 128 != 0) by a row-aligned copy: each row padded to kp = k rounded up to 128
 * with code 1 (weight 0), so every kernel sees whole blocks. The forward pass quantizes the
 * real k activations and zero-fills the rest (forward.c), so the padding adds nothing to any
 * dot product. The file's pages of w are released: only the copy is read from now on. */
static uint8_t *pad_rows(const bn_model *m, bn_ternary *w)
{
    const size_t k = w->k, kp = (k + 127) / 128 * 128, bytes = w->m * kp / 4;
    uint8_t *copy = aligned_alloc(64, (bytes + 63) / 64 * 64);
    uint8_t *tmp = malloc(k + 256), *row = malloc(kp);
    if (!copy || !tmp || !row) {
        free(copy);
        free(tmp);
        free(row);
        return NULL;
    }
    memset(row + k, 1, kp - k);
    for (size_t r = 0; r < w->m; r++) {
        memcpy(row, unpack_row(w->packed, k, r, tmp), k);
        uint8_t *out = copy + r * (kp / 4);
        for (size_t b = 0; b < kp / 128; b++, out += 32)
            for (int j = 0; j < 32; j++) {
                const uint8_t *c = row + b * 128 + j;
                out[j] = (uint8_t)(c[0] << 6 | c[32] << 4 | c[64] << 2 | c[96]);
            }
    }
    free(tmp);
    free(row);
    release_pages(m, (uintptr_t)w->packed, (uintptr_t)w->packed + w->m * k / 4);
    w->packed = copy;
    w->k = kp;
    return copy;
}

/* Chunk = one ternary matrix (layer il = chunk / 7): rows padded to whole blocks when needed,
 * then the kernel's prepare(). Once repacked, the matrix's file pages (or its padded copy)
 * leave this process: the kernel reads its own copy, so RSS does not hold both. */
static void repack_one(void *arg, size_t chunk, int ith)
{
    (void)ith;
    repack_job *job = arg;
    bn_layer *L = &job->m->layers[chunk / 7];
    bn_ternary *w = layer_matrices(L, (int)(chunk % 7));
    if (w->k % 128) {
        if (!(L->w_down_rows = pad_rows(job->m, w))) {
            atomic_store(&job->failed, 1);
            return;
        }
    }
    if (!job->m->kernels->prepare)
        return;
    if (job->m->kernels->prepare(w)) {
        atomic_store(&job->failed, 1);
        return;
    }
    if (w->repacked && w->packed == L->w_down_rows) {
        /* the kernel reads only w->repacked from now on */
        free(L->w_down_rows);
        L->w_down_rows = NULL;
        w->packed = NULL;
    } else if (w->repacked) {
        release_pages(job->m, (uintptr_t)w->packed, (uintptr_t)w->packed + w->m * w->k / 4);
    }
}

/* Row padding where needed and the kernel's prepare() on every ternary matrix, on every CPU
 * this process may use. */
static int repack_all(bn_model *m, bn_err *err)
{
    const double t0 = bn_now_ms();
    const int n = bn_cpu_count();
    bn_threadpool *tp = NULL;
    if (n > 1 && !(tp = bn_threadpool_create(n, err)))
        return -1;
    repack_job job;
    job.m = m;
    atomic_init(&job.failed, 0);
    bn_threadpool_run_chunks(tp, (size_t)m->hp.n_layer * 7, repack_one, &job);
    bn_threadpool_free(tp);
    if (atomic_load(&job.failed))
        return bn_fail(err, BN_E_NOMEM, "out of memory repacking weights for kernel '%s'",
                       m->kernels->name);
    m->repack_ms = bn_now_ms() - t0;
    m->repack_threads = n > 1 ? n : 1;
    return 0;
}

bn_model *bn_model_from_gguf(bn_gguf *g, bn_err *err)
{
    bn_model *m = calloc(1, sizeof *m);
    if (!m) {
        bn_gguf_close(g);
        bn_fail(err, BN_E_NOMEM, "out of memory");
        return NULL;
    }
    m->gguf = g;
    if (bn_model_read_hparams(g, &m->hp, err))
        goto fail;
    const bn_hparams *hp = &m->hp;
    m->arch = read_arch(g, err);
    if (!m->arch || refuse_extras(g, err) ||
        bind_rows(g, "token_embd.weight", hp, &m->token_embd, err))
        goto fail;
    m->lm_head = m->token_embd;
    if (m->arch->lm_head == BN_LM_HEAD_OUTPUT && bn_gguf_find_tensor(g, "output.weight") &&
        bind_rows(g, "output.weight", hp, &m->lm_head, err))
        goto fail;
    if (!(m->output_norm = bind_f32(g, "output_norm.weight", hp->n_embd, err)))
        goto fail;
    m->layers = calloc(hp->n_layer, sizeof *m->layers);
    if (!m->layers) {
        bn_fail(err, BN_E_NOMEM, "out of memory");
        goto fail;
    }
    for (uint32_t il = 0; il < hp->n_layer; il++)
        if (bind_layer(g, m, il, &m->layers[il], err))
            goto fail;
    m->kernels = bn_kernels_get();
    if ((m->kernels->prepare || hp->n_ff % 128) && repack_all(m, err))
        goto fail;
    return m;
fail:
    bn_model_free(m);
    return NULL;
}

bn_model *bn_model_load(const char *path, bn_err *err)
{
    bn_gguf *g = bn_gguf_open(path, err);
    if (!g)
        return NULL;
    bn_model *m = bn_model_from_gguf(g, err);
    if (!m)
        bn_fail_prefix(err, "%s", path);
    return m;
}

/* Row r of an F16 LM head as floats (the compact copy is built from these). */
static void f16_head_row(const void *src, uint32_t r, float *out)
{
    const bn_model *m = src;
    const size_t k = m->hp.n_embd;
    (m->kernels->f16_to_f32_row ? m->kernels->f16_to_f32_row : bn_f16_to_f32_row)(
        (const uint16_t *)(const void *)m->lm_head.data + (size_t)r * k, out, k);
}

/* Releases the whole pages inside bytes [b, e) of the mapping: read-only file pages, so
 * dropping them loses nothing (the page cache keeps them; a later read faults them back in).
 * Never on a model read from memory (bn_gguf_open_memory): there MADV_DONTNEED would zero the
 * caller's buffer, and the f16 head's rows are read again. Advice only: a failure is harmless. */
static void release_pages(const bn_model *m, uintptr_t b, uintptr_t e)
{
    if (m->gguf && m->gguf->mapped)
        advise_pages(b, e, MADV_DONTNEED);
}

/* madvise(advice) on the whole pages inside [b, e); advice only, a failure is harmless. */
static void advise_pages(uintptr_t b, uintptr_t e, int advice)
{
    const long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        return;
    b = (b + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    e &= ~((uintptr_t)page - 1);
    if (e > b)
        (void)madvise((void *)b, e - b, advice);
}

static void f16_head_done(const void *src, uint32_t r0, uint32_t r1)
{
    const bn_model *m = src;
    const size_t row = m->lm_head.row_bytes;
    release_pages(m, (uintptr_t)m->lm_head.data + r0 * row, (uintptr_t)m->lm_head.data + r1 * row);
}

int bn_model_build_lm_compact(bn_model *m, bn_lm_format format, bn_threadpool *tp, bn_err *err)
{
    /* the screen's error bound is derived for the f16 kernel's summation; a Q8_0 head (only
     * when n_embd % 256 != 0) keeps the full head */
    if (m->lm_compact || m->lm_head.type != BN_GGML_F16)
        return 0;
    const double t0 = bn_now_ms();
    m->lm_compact = bn_lm_compact_build(m->hp.n_vocab, m->hp.n_embd, format, f16_head_row,
                                        f16_head_done, m, tp, err);
    if (!m->lm_compact)
        return -1;
    m->lm_compact_ms = bn_now_ms() - t0;
    m->lm_compact_threads = bn_threadpool_size(tp);
    /* the pages the chunks shared */
    f16_head_done(m, 0, m->hp.n_vocab);
    return 0;
}

/* ------------------------------------------------------------------ huge-page weights */

/* Why: decode streams every ternary matrix once per token. From 4 KB pages the prefetchers
 * stop at every page boundary and every page costs a TLB walk; on a Zen 4 EPYC (KVM) the
 * AVX-512 decode kernel read 16.5-17.6 GB/s from 4 KB pages and 22.7-26.2 GB/s from 2 MB ones,
 * the int8 head 18-19 against 26-31 (standalone loops, alternated, load average ~8). File
 * pages of the page cache are 4 KB, hence the copy. */
enum {
    huge_page = 2u << 20,
    hp_align = 64
};

int bn_model_hugepages_useful(const bn_model *m, int require_thp)
{
    if (!m || !m->gguf || !m->gguf->mapped || !m->kernels || m->kernels->prepare || m->hp_arena)
        return 0;
    if (!require_thp)
        return 1;
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f)
        return 0;
    char line[128] = "";
    const int ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    return ok && (strstr(line, "[always]") || strstr(line, "[madvise]"));
}

typedef struct hp_job {
    bn_model *m;
    uint8_t *dst;
    const size_t *offset; /* [n_layer * 7] */
} hp_job;

static size_t matrix_bytes(const bn_ternary *w) { return w->m * w->k / 4; }

static void hp_copy_one(void *arg, size_t chunk, int ith)
{
    (void)ith;
    const hp_job *job = arg;
    bn_ternary *w = layer_matrices(&job->m->layers[chunk / 7], (int)(chunk % 7));
    uint8_t *dst = job->dst + job->offset[chunk];
    const uintptr_t src = (uintptr_t)w->packed;
    advise_pages(src, src + matrix_bytes(w), MADV_SEQUENTIAL); /* fault-around reads ahead */
    memcpy(dst, w->packed, matrix_bytes(w));
    w->packed = dst;
    /* whole pages inside the matrix only: neighbouring tensors keep theirs */
    release_pages(job->m, src, src + matrix_bytes(w));
}

int bn_model_copy_to_hugepages(bn_model *m, bn_threadpool *tp, bn_err *err)
{
    const double t0 = bn_now_ms();
    const size_t n = (size_t)m->hp.n_layer * 7;
    size_t *offset = malloc((n ? n : 1) * sizeof *offset);
    if (!offset)
        return bn_fail(err, BN_E_NOMEM, "out of memory");
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        offset[i] = total;
        total += (matrix_bytes(layer_matrices(&m->layers[i / 7], (int)(i % 7))) + hp_align - 1) &
                 ~(size_t)(hp_align - 1);
    }
    /* one extra huge page to align the start */
    const size_t len = total + huge_page;
    void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        free(offset);
        return bn_fail(err, BN_E_NOMEM, "out of memory for a %.1f MiB copy of the weights",
                       (double)total / (1024.0 * 1024.0));
    }
    uint8_t *dst = (uint8_t *)(((uintptr_t)map + huge_page - 1) & ~(uintptr_t)(huge_page - 1));
    (void)madvise(dst, total, MADV_HUGEPAGE); /* advice: without it the copy still works */
    hp_job job = {m, dst, offset};
    bn_threadpool_run_chunks(tp, n, hp_copy_one, &job);
    free(offset);
    m->hp_arena = map;
    m->hp_arena_len = len;
    m->hp_copy_ms = bn_now_ms() - t0;
    m->hp_copy_threads = tp ? bn_threadpool_size(tp) : 1;
    return 0;
}

void bn_model_free(bn_model *m)
{
    if (!m)
        return;
    bn_lm_compact_free(m->lm_compact);
    if (m->layers && m->kernels && m->kernels->release)
        for (uint32_t il = 0; il < m->hp.n_layer; il++)
            for (int i = 0; layer_matrices(&m->layers[il], i); i++)
                if (layer_matrices(&m->layers[il], i)->repacked)
                    m->kernels->release(layer_matrices(&m->layers[il], i));
    if (m->layers)
        for (uint32_t il = 0; il < m->hp.n_layer; il++)
            free(m->layers[il].w_down_rows);
    free(m->layers);
    if (m->hp_arena)
        munmap(m->hp_arena, m->hp_arena_len);
    bn_gguf_close(m->gguf);
    free(m);
}
