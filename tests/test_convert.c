/* bitnet-convert on synthetic checkpoints (bitnet-make-checkpoint's writer) of every family:
 * the result loads and generates; its I2_S/F16/Q8_0 tensors are what llama-quantize makes of
 * our own --outtype f32 file (the reference pipeline's two steps); ternary checkpoints keep
 * their codes (through the Q/K permutation, recomputed here the other way round) and
 * magnitude; full-precision ones get the absmean rule (recomputed here) with a warning;
 * SentencePiece vocabularies and padding; determinism. Hostile inputs: test_convert_hostile. */
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint_writer.h"
#include "convert.h"
#include "gguf.h"
#include "kernels.h"
#include "safetensors.h"
#include "synthetic_model.h"

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.')
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static bn_ckpt_params ckpt(const char *preset)
{
    bn_ckpt_params p;
    bn_err err = {0};
    bn_ckpt_defaults(&p);
    if (bn_synth_preset(preset, &p.shape, &err))
        fail_msg("%s", err.msg);
    return p;
}

static char *write_ckpt(const bn_ckpt_params *p)
{
    char *dir = bn_test_tmpfile("-ckpt");
    bn_err err = {0};
    if (bn_ckpt_write(p, dir, &err))
        fail_msg("%s", err.msg);
    return dir;
}

static char *convert(const char *dir, bn_outtype t)
{
    char *out = bn_test_tmpfile(t == BN_OUT_I2S ? ".gguf" : "-f.gguf");
    bn_convert_opts o = {.model_dir = dir, .out_path = out, .outtype = t};
    bn_err err = {0};
    if (bn_convert(&o, &err))
        fail_msg("%s", err.msg);
    return out;
}

static bn_gguf *open_gguf(const char *path)
{
    bn_err err = {0};
    bn_gguf *g = bn_gguf_open(path, &err);
    if (!g)
        fail_msg("%s", err.msg);
    return g;
}

/* bitnet-run loads the file and generates 8 greedy tokens */
static void assert_generates(const char *gguf)
{
    char *bin = bn_test_bin("bitnet-run");
    const char *argv[] = {"bitnet-run", "-m", gguf,     "-p", "The quick brown fox",
                          "-n",         "8",  "--temp", "0",  "-t",
                          "1",          NULL};
    char *out = NULL, *err = NULL;
    int rc = bn_test_run(argv, NULL, &out, &err);
    if (rc != 0)
        fail_msg("bitnet-run exit %d: %s", rc, err);
    assert_non_null(strstr(err, "generation 8 tokens"));
    free(out);
    free(err);
    free(bin);
}

/* ------------------------------------------------------------ the reference's llama-quantize */

static float f32_at(const bn_gguf_tensor *t, uint64_t i)
{
    float f;
    memcpy(&f, (const uint8_t *)t->data + 4 * i, 4);
    return f;
}

/* llama-quantize I2_S of an F32 tensor: code sign(w) (|w| < 1e-6 -> 0), scale max|w| */
static void assert_i2s_of(const bn_gguf_tensor *q, const bn_gguf_tensor *f)
{
    const uint64_t n = f->ne[0] * f->ne[1];
    double max = 0;
    for (uint64_t i = 0; i < n; i++) { /* not fmax: aarch64 gcc 12 crashes vectorizing it */
        const double a = fabs((double)f32_at(f, i));
        max = a > max ? a : max;
    }
    const uint8_t *b = q->data;
    assert_int_equal(q->nbytes, n / 4 + 32);
    for (uint64_t i = 0; i < n; i++) {
        const double w = f32_at(f, i);
        const int want = fabs(w) < 1e-6 ? 1 : w > 0 ? 2 : 0;
        const uint64_t blk = i / 128, j = i % 128;
        const int got = b[blk * 32 + j % 32] >> (6 - 2 * (j / 32)) & 3;
        if (got != want)
            fail_msg("%s[%llu]: code %d, want %d", q->name, (unsigned long long)i, got, want);
    }
    float scale;
    memcpy(&scale, b + n / 4, 4);
    assert_true(scale == (float)max);
    for (int k = 4; k < 32; k++)
        assert_int_equal(b[n / 4 + k], 0);
}

static void assert_f16_of(const bn_gguf_tensor *h, const bn_gguf_tensor *f)
{
    const uint64_t n = f->ne[0] * f->ne[1];
    for (uint64_t i = 0; i < n; i++) {
        uint16_t x;
        memcpy(&x, (const uint8_t *)h->data + 2 * i, 2);
        assert_int_equal(x, bn_f32_to_f16(f32_at(f, i)));
    }
}

static void assert_q8_0_of(const bn_gguf_tensor *q, const bn_gguf_tensor *f)
{
    const uint64_t n = f->ne[0] * f->ne[1];
    const uint8_t *b = q->data;
    for (uint64_t blk = 0; blk < n / 32; blk++, b += 34) {
        float amax = 0;
        for (int j = 0; j < 32; j++) { /* not fmaxf: as above */
            const float a = fabsf(f32_at(f, blk * 32 + (uint64_t)j));
            amax = a > amax ? a : amax;
        }
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t h;
        memcpy(&h, b, 2);
        assert_int_equal(h, bn_f32_to_f16(d));
        for (int j = 0; j < 32; j++)
            assert_int_equal((int8_t)b[2 + j], (int)roundf(f32_at(f, blk * 32 + (uint64_t)j) * id));
    }
}

/* The I2_S file is the F32 file after llama-quantize ... I2_S: same keys and values except
 * general.file_type and the appended quantization version; every tensor quantized as the
 * reference quantizer does. */
static void assert_quantized_from(const char *i2s_path, const char *f32_path, uint32_t head_type)
{
    bn_gguf *q = open_gguf(i2s_path), *f = open_gguf(f32_path);
    assert_int_equal(q->n_kv, f->n_kv + 1);
    assert_string_equal(q->kv[q->n_kv - 1].key, "general.quantization_version");
    for (uint64_t i = 0; i < f->n_kv; i++) {
        assert_string_equal(q->kv[i].key, f->kv[i].key);
        assert_int_equal(q->kv[i].type, f->kv[i].type);
        if (strcmp(q->kv[i].key, "general.file_type") == 0) {
            assert_int_equal(q->kv[i].num.u64, 40);
            assert_int_equal(f->kv[i].num.u64, 0);
        }
    }
    assert_int_equal(q->n_tensors, f->n_tensors);
    int heads = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const bn_gguf_tensor *a = &q->tensors[i], *b = &f->tensors[i];
        assert_string_equal(a->name, b->name);
        assert_int_equal(b->type, BN_GGML_F32);
        if (a->n_dims == 1) {
            assert_int_equal(a->type, BN_GGML_F32);
            assert_memory_equal(a->data, b->data, b->nbytes);
        } else if (a->type == BN_GGML_I2_S) {
            assert_i2s_of(a, b);
        } else if (a->type == BN_GGML_F16) {
            assert_f16_of(a, b);
            heads += a->type == head_type;
        } else {
            assert_int_equal(a->type, BN_GGML_Q8_0);
            assert_q8_0_of(a, b);
            heads += a->type == head_type;
        }
    }
    assert_true(heads >= 1);
    bn_gguf_close(q);
    bn_gguf_close(f);
}

static void check_family(const char *preset, int shards, bn_ckpt_dtype dt, uint32_t head_type)
{
    bn_ckpt_params p = ckpt(preset);
    p.shards = shards;
    p.dtype = dt;
    char *dir = write_ckpt(&p);
    char *q = convert(dir, BN_OUT_I2S), *f = convert(dir, BN_OUT_F32);
    assert_quantized_from(q, f, head_type);
    assert_generates(q);
    unlink(q);
    unlink(f);
    rm_dir(dir);
    free(q);
    free(f);
    free(dir);
}

static void llama_converts(void **state)
{
    (void)state;
    check_family("tiny-llama", 1, BN_CKPT_BF16, BN_GGML_F16); /* n_embd 256: F16 head */
}

static void falcon3_shards_convert(void **state)
{
    (void)state;
    check_family("tiny-falcon3", 3, BN_CKPT_F32, BN_GGML_Q8_0); /* 384: Q8_0 head */
}

static void bitnet_converts(void **state)
{
    (void)state;
    check_family("tiny-bitnet", 1, BN_CKPT_F16, BN_GGML_Q8_0); /* tied Q8_0 token_embd */
}

static void b158_converts(void **state)
{
    (void)state;
    check_family("tiny", 1, BN_CKPT_BF16, BN_GGML_Q8_0); /* 128: tied Q8_0 (llama-quantize) */
}

/* ------------------------------------------------------------ codes and scales */

static const bn_gguf_tensor *tensor(const bn_gguf *g, const char *name)
{
    const bn_gguf_tensor *t = bn_gguf_find_tensor(g, name);
    if (!t)
        fail_msg("no tensor %s", name);
    return t;
}

static int i2s_code(const bn_gguf_tensor *t, uint64_t i)
{
    const uint8_t *b = t->data;
    const uint64_t j = i % 128;
    return (b[i / 128 * 32 + j % 32] >> (6 - 2 * (j / 32)) & 3) - 1;
}

static float i2s_scale(const bn_gguf_tensor *t)
{
    float s;
    memcpy(&s, (const uint8_t *)t->data + t->ne[0] * t->ne[1] / 4, 4);
    return s;
}

static float bf16(const uint8_t *p)
{
    uint32_t u = (uint32_t)(p[0] | p[1] << 8) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* source value (row, col) of an HF tensor: bf16, or packed codes / weight_scale */
static float hf_value(const bn_safetensors *st, const char *name, uint64_t row, uint64_t col,
                      uint64_t rows, uint64_t cols)
{
    const bn_st_tensor *t = bn_st_find(st, name);
    assert_non_null(t);
    if (t->dtype == BN_ST_BF16)
        return bf16(t->data + 2 * (row * cols + col));
    char sn[256];
    snprintf(sn, sizeof sn, "%s_scale", name);
    const bn_st_tensor *s = bn_st_find(st, sn);
    assert_non_null(s);
    const uint64_t q = rows / 4;
    const int code = (t->data[(row % q) * cols + col] >> (2 * (row / q)) & 3) - 1;
    return (float)code / bf16(s->data);
}

/* GGUF row r of a permuted Q/K came from HF row: per head of `per` rows, the first half holds
 * the even rotary positions: GGUF row h*per + 2i + j <- HF row h*per + j*per/2 + i */
static uint64_t hf_row(uint64_t r, uint64_t per, int permuted)
{
    if (!permuted)
        return r;
    const uint64_t h = r / per, k = r % per;
    return h * per + (k % 2) * (per / 2) + k / 2;
}

static void check_codes(const char *preset, int packed)
{
    bn_ckpt_params p = ckpt(preset);
    p.packed = packed;
    char *dir = write_ckpt(&p);
    char *q = convert(dir, BN_OUT_I2S);
    bn_gguf *g = open_gguf(q);
    bn_safetensors st = {0};
    bn_err err = {0};
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (bn_st_open(&st, path, &err))
        fail_msg("%s", err.msg);
    const int llama = strcmp(p.shape.arch, "llama") == 0;
    const uint64_t e = p.shape.n_embd, hd = e / p.shape.n_head, kv = p.shape.n_head_kv * hd;
    static const struct {
        const char *hf, *gguf;
    } pairs[] = {{"self_attn.q_proj.weight", "attn_q.weight"},
                 {"self_attn.k_proj.weight", "attn_k.weight"},
                 {"mlp.down_proj.weight", "ffn_down.weight"}};
    for (uint32_t l = 0; l < p.shape.n_layer; l++)
        for (int k = 0; k < 3; k++) {
            char hn[128], gn[128];
            snprintf(hn, sizeof hn, "model.layers.%u.%s", l, pairs[k].hf);
            snprintf(gn, sizeof gn, "blk.%u.%s", l, pairs[k].gguf);
            const bn_gguf_tensor *t = tensor(g, gn);
            const uint64_t rows = k == 0 ? e : k == 1 ? kv : e, cols = k == 2 ? p.shape.n_ff : e;
            assert_int_equal(t->ne[0], cols);
            assert_int_equal(t->ne[1], rows);
            float mag = 0;
            for (uint64_t r = 0; r < rows; r++)
                for (uint64_t c = 0; c < cols; c++) {
                    const float w = hf_value(&st, hn, hf_row(r, hd, llama && k < 2), c, rows, cols);
                    const int want = w > 0 ? 1 : w < 0 ? -1 : 0;
                    if (w != 0)
                        mag = fabsf(w);
                    if (i2s_code(t, r * cols + c) != want)
                        fail_msg("%s row %llu col %llu: code %d, want %d", gn,
                                 (unsigned long long)r, (unsigned long long)c,
                                 i2s_code(t, r * cols + c), want);
                }
            assert_true(i2s_scale(t) == mag); /* the magnitude kept, not mean|W| */
        }
    bn_st_close(&st);
    bn_gguf_close(g);
    unlink(q);
    rm_dir(dir);
    free(q);
    free(dir);
}

static void llama_keeps_codes_through_permutation(void **state)
{
    (void)state;
    check_codes("tiny-llama", 0);
}

static void packed_2b4t_keeps_codes(void **state)
{
    (void)state;
    check_codes("tiny", 1);
}

static void packed_llama_keeps_codes(void **state)
{
    (void)state;
    check_codes("tiny-llama", 1);
}

/* generation_config.json is not written (the reference never reads it), but an eos_token_id
 * there that is not the file's EOS is named in a warning; the output does not change. */
static int n_gen_warnings;
static void count_gen_warning(void *ctx, const char *msg)
{
    (void)ctx;
    if (strstr(msg, "generation_config.json: eos_token_id 7 is not the file's EOS"))
        n_gen_warnings++;
}

static void generation_config_eos_warned(void **state)
{
    (void)state;
    bn_ckpt_params p = ckpt("tiny-llama");
    char *dir = write_ckpt(&p);
    char *a = convert(dir, BN_OUT_I2S);
    char path[600];
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    size_t len;
    char *text = (char *)bn_test_read_file(path, &len);
    assert_non_null(text);
    char *at = strstr(text, "\"eos_token_id\":");
    assert_non_null(at);
    const char *num = at + strlen("\"eos_token_id\":");
    const size_t digits = strspn(num, "0123456789");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fprintf(f, "%.*s[%.*s,7]%s", (int)(num - text), text, (int)digits, num, num + digits);
    fclose(f);
    free(text);
    char *b = bn_test_tmpfile(".gguf");
    n_gen_warnings = 0;
    bn_convert_opts o = {
        .model_dir = dir, .out_path = b, .outtype = BN_OUT_I2S, .warn = count_gen_warning};
    bn_err err = {0};
    if (bn_convert(&o, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(n_gen_warnings, 1);
    size_t la, lb;
    uint8_t *da = bn_test_read_file(a, &la), *db = bn_test_read_file(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(da, db, la);
    free(da);
    free(db);
    unlink(a);
    unlink(b);
    free(a);
    free(b);
    free(dir);
}

/* full precision: absmean (mean |W| in double, rounded once), a warning names each tensor */
static int n_warnings;
static void count_warning(void *ctx, const char *msg)
{
    (void)ctx;
    assert_non_null(strstr(msg, "absmean"));
    n_warnings++;
}

static void full_precision_gets_absmean(void **state)
{
    (void)state;
    bn_ckpt_params p = ckpt("tiny-falcon3");
    p.ternary = 0;
    p.dtype = BN_CKPT_F32;
    char *dir = write_ckpt(&p);
    char *out = bn_test_tmpfile(".gguf");
    n_warnings = 0;
    bn_convert_opts o = {.model_dir = dir, .out_path = out, .warn = count_warning};
    bn_err err = {0};
    if (bn_convert(&o, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(n_warnings, 7 * (int)p.shape.n_layer);
    bn_gguf *g = open_gguf(out);
    bn_safetensors st = {0};
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (bn_st_open(&st, path, &err))
        fail_msg("%s", err.msg);
    const bn_st_tensor *w = bn_st_find(&st, "model.layers.1.mlp.up_proj.weight");
    const bn_gguf_tensor *t = tensor(g, "blk.1.ffn_up.weight");
    double sum = 0;
    for (uint64_t i = 0; i < w->n_elements; i++) {
        float x;
        memcpy(&x, w->data + 4 * i, 4);
        sum += fabs((double)x);
    }
    const float s = 1.0f / (float)(sum / (double)w->n_elements);
    int nonzero = 0;
    for (uint64_t i = 0; i < w->n_elements; i++) {
        float x;
        memcpy(&x, w->data + 4 * i, 4);
        float qv = nearbyintf(x * s);
        qv = fminf(1.0f, fmaxf(-1.0f, qv));
        assert_int_equal(i2s_code(t, i), (int)qv);
        nonzero += qv != 0;
    }
    assert_true(nonzero > 0);
    assert_true(i2s_scale(t) == 1.0f / s); /* not max|W| (sign-times-max) */
    bn_st_close(&st);
    bn_gguf_close(g);
    unlink(out);
    rm_dir(dir);
    free(out);
    free(dir);
}

/* ------------------------------------------------------------ vocabularies */

static void spm_vocabulary_pads(void **state)
{
    (void)state;
    bn_ckpt_params p = ckpt("tiny-bitnet");
    p.spm = 1;
    char *dir = write_ckpt(&p);
    char *q = convert(dir, BN_OUT_I2S);
    bn_gguf *g = open_gguf(q);
    const bn_gguf_kv *tok = bn_gguf_find(g, "tokenizer.ggml.tokens"),
                     *types = bn_gguf_find(g, "tokenizer.ggml.token_type"),
                     *scores = bn_gguf_find(g, "tokenizer.ggml.scores"),
                     *model = bn_gguf_find(g, "tokenizer.ggml.model");
    assert_non_null(tok);
    assert_non_null(types);
    assert_non_null(scores);
    assert_int_equal(tok->arr_len, p.shape.n_vocab);
    assert_memory_equal(model->str.ptr, "llama", 5);
    /* <unk> <s> </s>, bytes, pieces, then 2 pads */
    assert_memory_equal(tok->arr_strs[1].ptr, "<s>", 3);
    assert_memory_equal(tok->arr_strs[3].ptr, "<0x00>", 6);
    const bn_gguf_str last = tok->arr_strs[p.shape.n_vocab - 1];
    assert_int_equal(last.len, 6);
    assert_memory_equal(last.ptr, "[PAD2]", 6);
    int32_t ty[4];
    memcpy(&ty[0], types->arr_data, 4);
    memcpy(&ty[1], types->arr_data + 4 * 1, 4);
    memcpy(&ty[2], types->arr_data + 4 * 3, 4);
    memcpy(&ty[3], types->arr_data + 4 * (p.shape.n_vocab - 1), 4);
    assert_int_equal(ty[0], 2); /* UNKNOWN */
    assert_int_equal(ty[1], 3); /* CONTROL */
    assert_int_equal(ty[2], 6); /* BYTE */
    assert_int_equal(ty[3], 5); /* UNUSED pad */
    uint32_t bos = 0;
    assert_int_equal(bn_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &bos, NULL), 0);
    assert_int_equal(bos, 1);
    assert_null(bn_gguf_find(g, "tokenizer.ggml.merges"));
    bn_gguf_close(g);
    unlink(q);
    rm_dir(dir);
    free(q);
    free(dir);
}

/* added_tokens.json (SentencePiece): keys that are not pieces yet are appended before the
 * padding (USER_DEFINED, score -1000), in file order; "<s>" is a piece already */
static void spm_added_tokens(void **state)
{
    (void)state;
    bn_ckpt_params p = ckpt("tiny-bitnet");
    p.spm = 1;
    char *dir = write_ckpt(&p);
    char path[600];
    snprintf(path, sizeof path, "%s/added_tokens.json", dir);
    const char *json = "{\"<pad>\": 600, \"<s>\": 1, \"<mask>\": 601}";
    assert_int_equal(bn_test_write_file(path, json, strlen(json)), 0);
    char *q = convert(dir, BN_OUT_I2S);
    bn_gguf *g = open_gguf(q);
    const bn_gguf_kv *tok = bn_gguf_find(g, "tokenizer.ggml.tokens"),
                     *types = bn_gguf_find(g, "tokenizer.ggml.token_type"),
                     *scores = bn_gguf_find(g, "tokenizer.ggml.scores");
    const uint64_t n = p.shape.n_vocab; /* n - 2 pieces, then <pad>, <mask>, no [PAD] */
    assert_int_equal(tok->arr_len, n);
    assert_int_equal(tok->arr_strs[n - 2].len, 5);
    assert_memory_equal(tok->arr_strs[n - 2].ptr, "<pad>", 5);
    assert_int_equal(tok->arr_strs[n - 1].len, 6);
    assert_memory_equal(tok->arr_strs[n - 1].ptr, "<mask>", 6);
    int32_t t;
    float sc;
    memcpy(&t, types->arr_data + 4 * (n - 1), 4);
    memcpy(&sc, scores->arr_data + 4 * (n - 1), 4);
    assert_int_equal(t, 4);
    assert_true(sc == -1000.0f);
    bn_gguf_close(g);
    unlink(q);
    rm_dir(dir);
    free(q);
    free(dir);
}

/* special tokens are written as their content (the reference's BPE path prefixes
 * <|begin_of_text|>), typed CONTROL; the chat template is copied verbatim */
static void special_tokens_and_template(void **state)
{
    (void)state;
    bn_ckpt_params p = ckpt("tiny-llama");
    char *dir = write_ckpt(&p);
    char *q = convert(dir, BN_OUT_I2S);
    bn_gguf *g = open_gguf(q);
    const bn_gguf_kv *tok = bn_gguf_find(g, "tokenizer.ggml.tokens");
    const bn_gguf_kv *types = bn_gguf_find(g, "tokenizer.ggml.token_type");
    int found = 0;
    for (uint64_t i = 0; i < tok->arr_len; i++)
        if (tok->arr_strs[i].len == 10 && memcmp(tok->arr_strs[i].ptr, "<|eot_id|>", 10) == 0) {
            int32_t t;
            memcpy(&t, types->arr_data + 4 * i, 4);
            assert_int_equal(t, 3);
            found = 1;
        }
    assert_true(found);
    char cfg[600];
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    size_t len;
    char *text = (char *)bn_test_read_file(cfg, &len);
    bn_gguf_str tpl;
    assert_int_equal(bn_gguf_get_str(g, "tokenizer.chat_template", &tpl, NULL), 0);
    /* the JSON holds the template with \" and \\ escaped; compare a stretch with none */
    assert_non_null(strstr(text, "{% if add_generation_prompt %}"));
    assert_non_null(memmem(tpl.ptr, tpl.len, "{% if add_generation_prompt %}", 30));
    assert_int_equal(tpl.ptr[tpl.len - 1], '}');
    free(text);
    bn_gguf_close(g);
    unlink(q);
    rm_dir(dir);
    free(q);
    free(dir);
}

/* ------------------------------------------------------------ determinism, vocab-only */

static void deterministic_and_vocab_only(void **state)
{
    (void)state;
    bn_ckpt_params p = ckpt("tiny-llama");
    char *dir = write_ckpt(&p);
    char *a = convert(dir, BN_OUT_I2S), *b = convert(dir, BN_OUT_I2S);
    size_t na, nb;
    uint8_t *x = bn_test_read_file(a, &na), *y = bn_test_read_file(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(x, y, na);
    char *v = bn_test_tmpfile("-vocab.gguf");
    bn_convert_opts o = {.model_dir = dir, .out_path = v, .vocab_only = true};
    bn_err err = {0};
    if (bn_convert(&o, &err))
        fail_msg("%s", err.msg);
    bn_gguf *g = open_gguf(v);
    assert_int_equal(g->n_tensors, 0);
    assert_non_null(bn_gguf_find(g, "tokenizer.ggml.merges"));
    bn_gguf_close(g);
    free(x);
    free(y);
    unlink(a);
    unlink(b);
    unlink(v);
    rm_dir(dir);
    free(a);
    free(b);
    free(v);
    free(dir);
}

/* ------------------------------------------------------------ the 2B-4T's layout */

/* No reference golden exists for BitNetForCausalLM; its converter's layout is the published
 * file's, which bitnet-make-model writes (test_synthetic checks it against the reference's
 * golden models): the same keys, types and order, the same tensor table. */
static void replace_in(const char *dir, const char *name, const char *from, const char *to)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len;
    char *text = (char *)bn_test_read_file(path, &len);
    assert_non_null(text);
    char *at = strstr(text, from);
    if (!at)
        fail_msg("%s: no '%s'", name, from);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fprintf(f, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    fclose(f);
    free(text);
}

static void b158_has_the_published_layout(void **state)
{
    (void)state;
    bn_ckpt_params p = ckpt("tiny-a"); /* n_embd 256: token_embd F16 by either rule */
    p.packed = 1;
    char *dir = write_ckpt(&p);
    /* as the release: config.json pads with the eos (the published file's padding_token_id),
     * tokenizer_config.json has no add_bos_token / add_eos_token (Llama 3's has none) */
    char from[64], to[96];
    const unsigned eos = p.shape.n_vocab - BN_SYNTH_N_SPECIAL + 1;
    snprintf(from, sizeof from, "\"eos_token_id\":%u", eos);
    snprintf(to, sizeof to, "\"eos_token_id\":%u,\"pad_token_id\":%u", eos, eos);
    replace_in(dir, "config.json", from, to);
    replace_in(dir, "tokenizer_config.json", "\"add_bos_token\":true,\"add_eos_token\":false,", "");
    char *q = convert(dir, BN_OUT_I2S);
    char *s = bn_test_tmpfile("-synth.gguf");
    bn_err err = {0};
    if (bn_synth_write(&p.shape, s, &err))
        fail_msg("%s", err.msg);
    bn_gguf *a = open_gguf(q), *b = open_gguf(s);
    assert_int_equal(a->n_kv, b->n_kv);
    /* the converter writes the reference route's name, "bitnet-25", where the published file
     * (and bitnet-make-model) says "bitnet-b1.58": keys compared with that prefix swapped */
    const char *route = "bitnet-25", *published = "bitnet-b1.58";
    for (uint64_t i = 0; i < a->n_kv; i++) {
        const char *ka = a->kv[i].key, *kb = b->kv[i].key;
        if (strncmp(ka, route, strlen(route)) == 0 &&
            strncmp(kb, published, strlen(published)) == 0)
            assert_string_equal(ka + strlen(route), kb + strlen(published));
        else
            assert_string_equal(ka, kb);
        if (strcmp(ka, "general.architecture") == 0) {
            assert_int_equal(a->kv[i].str.len, strlen(route));
            assert_memory_equal(a->kv[i].str.ptr, route, strlen(route));
            continue;
        }
        assert_int_equal(a->kv[i].type, b->kv[i].type);
        if (a->kv[i].type == BN_GGUF_ARRAY) {
            assert_int_equal(a->kv[i].arr_type, b->kv[i].arr_type);
            assert_int_equal(a->kv[i].arr_len, b->kv[i].arr_len);
        } else if (a->kv[i].type == BN_GGUF_STRING && strcmp(a->kv[i].key, "general.name") != 0) {
            assert_int_equal(a->kv[i].str.len, b->kv[i].str.len);
            assert_memory_equal(a->kv[i].str.ptr, b->kv[i].str.ptr, a->kv[i].str.len);
        } else if (a->kv[i].type != BN_GGUF_STRING) {
            assert_true(a->kv[i].num.u64 == b->kv[i].num.u64);
        }
    }
    assert_int_equal(a->n_tensors, b->n_tensors);
    for (uint64_t i = 0; i < a->n_tensors; i++) {
        assert_string_equal(a->tensors[i].name, b->tensors[i].name);
        assert_int_equal(a->tensors[i].type, b->tensors[i].type);
        assert_int_equal(a->tensors[i].ne[0], b->tensors[i].ne[0]);
        assert_int_equal(a->tensors[i].ne[1], b->tensors[i].ne[1]);
        assert_int_equal(a->tensors[i].offset, b->tensors[i].offset);
    }
    /* the shorter name shortens the metadata; the tensor data is the same size */
    assert_int_equal(a->size - a->data_offset, b->size - b->data_offset);
    bn_gguf_close(a);
    bn_gguf_close(b);
    unlink(q);
    unlink(s);
    rm_dir(dir);
    free(q);
    free(s);
    free(dir);
}

/* --quant-embd: a tied Q8_0 head becomes F16 in i2_s (llama-quantize --token-embedding-type
 * f16), token_embd F16 instead of F32 in f16 */
static uint32_t embd_type(const char *dir, bn_outtype t, bool quant_embd)
{
    char *out = bn_test_tmpfile(".gguf");
    bn_convert_opts o = {.model_dir = dir, .out_path = out, .outtype = t, .quant_embd = quant_embd};
    bn_err err = {0};
    if (bn_convert(&o, &err))
        fail_msg("%s", err.msg);
    bn_gguf *g = open_gguf(out);
    const uint32_t type = tensor(g, "token_embd.weight")->type;
    bn_gguf_close(g);
    unlink(out);
    free(out);
    return type;
}

static void quant_embd(void **state)
{
    (void)state;
    bn_ckpt_params p = ckpt("tiny-bitnet"); /* n_embd 384, tied */
    char *dir = write_ckpt(&p);
    assert_int_equal(embd_type(dir, BN_OUT_I2S, false), BN_GGML_Q8_0);
    assert_int_equal(embd_type(dir, BN_OUT_I2S, true), BN_GGML_F16);
    assert_int_equal(embd_type(dir, BN_OUT_F16, false), BN_GGML_F32);
    assert_int_equal(embd_type(dir, BN_OUT_F16, true), BN_GGML_F16);
    assert_int_equal(embd_type(dir, BN_OUT_F32, true), BN_GGML_F32);
    rm_dir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(llama_converts),
        cmocka_unit_test(falcon3_shards_convert),
        cmocka_unit_test(bitnet_converts),
        cmocka_unit_test(b158_converts),
        cmocka_unit_test(llama_keeps_codes_through_permutation),
        cmocka_unit_test(packed_2b4t_keeps_codes),
        cmocka_unit_test(packed_llama_keeps_codes),
        cmocka_unit_test(full_precision_gets_absmean),
        cmocka_unit_test(generation_config_eos_warned),
        cmocka_unit_test(spm_vocabulary_pads),
        cmocka_unit_test(spm_added_tokens),
        cmocka_unit_test(special_tokens_and_template),
        cmocka_unit_test(deterministic_and_vocab_only),
        cmocka_unit_test(b158_has_the_published_layout),
        cmocka_unit_test(quant_embd),
    };
    return bn_test_exit_status(cmocka_run_group_tests(tests, NULL, NULL),
                               sizeof tests / sizeof *tests);
}
