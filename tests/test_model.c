/* The model loader on synthetic files: a good file binds every tensor; each wrong, missing or
 * inconsistent piece is refused with a message naming it. Variants are made by copying the
 * "tiny" preset through the GGUF writer with one edit. tiny: n_embd 128, 2 layers, 2 heads
 * (head_dim 64), 1 kv head, n_ff 384, vocab 384. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "gguf_fixture.h"
#include "gguf_writer.h"
#include "model.h"
#include "synthetic_model.h"

enum {
    KEEP,
    DROP,
    SET_U32,
    SET_STR,
    SET_F32
};

typedef struct edit {
    const char *key; /* metadata edit */
    int kind;
    uint32_t u32;
    const char *str;
    float f32;
    const char *tensor; /* tensor edit: dropped when n_dims == 0, else retyped/reshaped */
    uint32_t type, n_dims;
    uint64_t ne[2];
    uint32_t alignment; /* non-zero: a general.alignment key first */
    const char *pad;    /* non-NULL: an extra string key, to move the data section */
} edit;

static uint8_t *tiny_model(size_t *len)
{
    bn_synth_params p;
    bn_err err = {0};
    assert_int_equal(bn_synth_preset("tiny", &p, &err), 0);
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    assert_non_null(f);
    if (bn_synth_write_stream(&p, f, &err))
        fail_msg("%s", err.msg);
    fclose(f);
    return (uint8_t *)buf;
}

static int copy_tensor(bn_gguf_writer *w, uint64_t i, void *ctx, bn_err *err)
{
    const bn_gguf *g = ((void **)ctx)[0];
    const edit *e = ((void **)ctx)[1];
    /* the i-th tensor written: skip a dropped one in the source numbering */
    uint64_t src = 0, k = 0;
    for (; src < g->n_tensors; src++) {
        int dropped = e->tensor && e->n_dims == 0 && strcmp(g->tensors[src].name, e->tensor) == 0;
        if (!dropped && k++ == i)
            break;
    }
    const bn_gguf_tensor *t = &g->tensors[src];
    if (e->tensor && strcmp(t->name, e->tensor) == 0) {
        /* a reshaped tensor: zeros of its new size */
        bn_err e2;
        uint64_t n = bn_ggml_nbytes(e->type, e->ne[0] * (e->n_dims > 1 ? e->ne[1] : 1), &e2);
        uint8_t *z = calloc(1, n);
        int rc = bn_gguf_writer_data(w, z, n, err);
        free(z);
        return rc;
    }
    return bn_gguf_writer_data(w, t->data, t->nbytes, err);
}

/* The tiny model with edit E applied, parsed and handed to the loader. */
static bn_model *load_edited(const edit *e, bn_err *err, uint8_t **keep)
{
    size_t len, len2;
    uint8_t *buf = tiny_model(&len);
    bn_gguf *g = bn_gguf_open_memory(buf, len, err);
    assert_non_null(g);
    bn_gguf_writer *w = bn_gguf_writer_new();
    if (e->alignment)
        bn_gguf_writer_add_u32(w, "general.alignment", e->alignment);
    if (e->pad)
        bn_gguf_writer_add_str(w, "pad", e->pad);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const bn_gguf_kv *kv = &g->kv[i];
        if (!e->key || strcmp(kv->key, e->key) != 0 || e->kind == KEEP)
            bn_gguf_writer_add_kv(w, NULL, kv);
        else if (e->kind == SET_U32)
            bn_gguf_writer_add_u32(w, kv->key, e->u32);
        else if (e->kind == SET_STR)
            bn_gguf_writer_add_str(w, kv->key, e->str);
        else if (e->kind == SET_F32)
            bn_gguf_writer_add_f32(w, kv->key, e->f32);
    }
    uint64_t n_out = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const bn_gguf_tensor *t = &g->tensors[i];
        if (e->tensor && strcmp(t->name, e->tensor) == 0) {
            if (e->n_dims == 0)
                continue;
            bn_gguf_writer_add_tensor(w, t->name, e->type, e->n_dims, e->ne);
        } else {
            bn_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne);
        }
        n_out++;
    }
    void *ctx[2] = {g, (void *)e};
    uint8_t *out = bn_fixture_write(w, n_out, copy_tensor, ctx, &len2, err);
    if (!out)
        fail_msg("rewrite failed: %s", err->msg);
    bn_gguf_close(g);
    free(buf);
    *keep = out;
    bn_gguf *g2 = bn_gguf_open_memory(out, len2, err);
    if (!g2)
        fail_msg("edited file does not parse: %s", err->msg);
    return bn_model_from_gguf(g2, err);
}

static void expect_refused(const edit *e, const char *want)
{
    bn_err err = {0};
    uint8_t *buf;
    bn_model *m = load_edited(e, &err, &buf);
    if (m)
        fail_msg("model accepted (expected '%s')", want);
    if (!strstr(err.msg, want))
        fail_msg("error '%s' does not contain '%s'", err.msg, want);
    free(buf);
}

static void test_tiny_loads(void **state)
{
    (void)state;
    edit none = {0};
    bn_err err = {0};
    uint8_t *buf;
    bn_model *m = load_edited(&none, &err, &buf);
    if (!m)
        fail_msg("%s", err.msg);
    const bn_hparams *hp = &m->hp;
    assert_int_equal(hp->n_embd, 128);
    assert_int_equal(hp->n_layer, 2);
    assert_int_equal(hp->n_head, 2);
    assert_int_equal(hp->n_head_kv, 1);
    assert_int_equal(hp->head_dim, 64);
    assert_int_equal(hp->n_rot, 64);
    assert_int_equal(hp->n_ff, 384);
    assert_int_equal(hp->n_vocab, 384);
    assert_int_equal(hp->n_ctx_train, 4096);
    assert_true(hp->rope_theta == 500000.0f);
    assert_true(hp->rms_eps == 1e-5f);
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const bn_layer *L = &m->layers[l];
        assert_int_equal(L->wk.k, 128);
        assert_int_equal(L->wk.m, 64);
        assert_int_equal(L->w_down.k, 384);
        assert_int_equal(L->w_down.m, 128);
        /* scale = gain / sqrt(K * (1 - 0.35)) with gain in [0.8, 1.2] */
        float lo = 0.8f / sqrtf(128 * 0.65f), hi = 1.2f / sqrtf(128 * 0.65f);
        assert_true(L->wq.scale >= lo && L->wq.scale <= hi);
        for (int i = 0; i < 128; i++)
            assert_true(L->attn_norm[i] >= 0.6f && L->attn_norm[i] <= 1.4f);
        char name[64];
        snprintf(name, sizeof name, "blk.%u.ffn_up.weight", l);
        assert_ptr_equal(L->w_up.packed, bn_gguf_find_tensor(m->gguf, name)->data);
    }
    assert_ptr_equal(m->token_embd.data, bn_gguf_find_tensor(m->gguf, "token_embd.weight")->data);
    assert_int_equal(m->token_embd.type, BN_GGML_F16);
    assert_ptr_equal(m->lm_head.data, m->token_embd.data); /* tied */
    bn_model_free(m);
    free(buf);
}

static void test_wrong_tensors(void **state)
{
    (void)state;
    edit e = {
        .tensor = "blk.1.ffn_down.weight", .type = BN_GGML_I2_S, .n_dims = 2, .ne = {384, 64}};
    expect_refused(&e, "blk.1.ffn_down.weight: expected I2_S [384, 128], got I2_S [384, 64]");
    e = (edit){.tensor = "blk.0.attn_k.weight", .type = BN_GGML_F16, .n_dims = 2, .ne = {128, 64}};
    expect_refused(&e, "blk.0.attn_k.weight: expected I2_S [128, 64], got F16 [128, 64]");
    e = (edit){.tensor = "blk.1.attn_q.weight", .type = BN_GGML_I2_S, .n_dims = 1, .ne = {16384}};
    expect_refused(&e, "blk.1.attn_q.weight: expected I2_S [128, 128], got I2_S [16384]");
    e = (edit){.tensor = "blk.0.attn_q.weight"};
    expect_refused(&e, "blk.0.attn_q.weight: missing tensor (expected I2_S [128, 128])");
    e = (edit){.tensor = "output_norm.weight"};
    expect_refused(&e, "output_norm.weight: missing tensor (expected F32 [128])");
    e = (edit){
        .tensor = "blk.1.ffn_sub_norm.weight", .type = BN_GGML_F32, .n_dims = 1, .ne = {128}};
    expect_refused(&e, "blk.1.ffn_sub_norm.weight: expected F32 [384], got F32 [128]");
    e = (edit){.tensor = "token_embd.weight", .type = BN_GGML_F32, .n_dims = 2, .ne = {128, 384}};
    expect_refused(&e, "token_embd.weight: type F32 is not supported (F16 or Q8_0, as "
                       "llama-quantize I2_S writes it)");
    /* vocab_size and the embedding table disagree */
    e = (edit){.key = "bitnet-b1.58.vocab_size", .kind = SET_U32, .u32 = 385};
    expect_refused(&e, "token_embd.weight: expected F16 [128, 385], got F16 [128, 384]");
}

static void test_architecture_and_hparams(void **state)
{
    (void)state;
    edit e = {.key = "general.architecture", .kind = SET_STR, .str = "gpt2"};
    expect_refused(&e, "unsupported architecture 'gpt2' (this engine runs 'bitnet-b1.58' (or "
                       "'bitnet-25'), 'bitnet' and 'llama' with I2_S weights)");
    /* file text reaches the message escaped: no terminal escape sequence, no invalid UTF-8 */
    e = (edit){.key = "general.architecture",
               .kind = SET_STR,
               .str = "\x1b]0;pwn\x07\x1b[2J\xff\xc2\x9b\xc3\xa9"};
    expect_refused(
        &e, "unsupported architecture '\\x1b]0;pwn\\x07\\x1b[2J\\xff\\xc2\\x9b\xc3\xa9' (this");
    e = (edit){.key = "general.architecture", .kind = DROP};
    expect_refused(&e, "missing metadata key 'general.architecture'");
    e = (edit){.key = "bitnet-b1.58.embedding_length", .kind = SET_U32, .u32 = 200};
    expect_refused(&e, "embedding_length 200 must be a positive multiple of 128");
    e = (edit){.key = "bitnet-b1.58.feed_forward_length", .kind = SET_U32, .u32 = 0};
    expect_refused(&e, "feed_forward_length must be positive");
    /* any other n_ff is a shape (a row length not a multiple of 128 is padded at load) */
    e = (edit){.key = "bitnet-b1.58.feed_forward_length", .kind = SET_U32, .u32 = 100};
    expect_refused(&e, "blk.0.ffn_gate.weight: expected I2_S [128, 100], got I2_S [128, 384]");
    e = (edit){.key = "bitnet-b1.58.attention.head_count", .kind = SET_U32, .u32 = 3};
    expect_refused(&e, "head_count 3 does not divide embedding_length 128");
    e = (edit){.key = "bitnet-b1.58.attention.head_count_kv", .kind = SET_U32, .u32 = 3};
    expect_refused(&e, "head_count_kv 3 does not divide head_count 2");
    e = (edit){.key = "bitnet-b1.58.attention.head_count_kv", .kind = SET_U32, .u32 = 0};
    expect_refused(&e, "head_count_kv 0 does not divide head_count 2");
    e = (edit){.key = "bitnet-b1.58.rope.dimension_count", .kind = SET_U32, .u32 = 32};
    expect_refused(&e, "rope.dimension_count 32 must equal the head size 64");
    e = (edit){.key = "bitnet-b1.58.block_count", .kind = SET_U32, .u32 = 0};
    expect_refused(&e, "block_count 0 is out of range (1..1024)");
    e = (edit){.key = "bitnet-b1.58.block_count", .kind = SET_U32, .u32 = 3};
    expect_refused(&e, "blk.2.attn_norm.weight: missing tensor (expected F32 [128])");
    e = (edit){.key = "bitnet-b1.58.block_count", .kind = DROP};
    expect_refused(&e, "missing metadata key 'bitnet-b1.58.block_count'");
    e = (edit){.key = "bitnet-b1.58.block_count", .kind = SET_STR, .str = "2"};
    expect_refused(
        &e, "metadata key 'bitnet-b1.58.block_count' is a string, expected an unsigned integer");
    e = (edit){
        .key = "bitnet-b1.58.attention.layer_norm_rms_epsilon", .kind = SET_F32, .f32 = 0.0f};
    expect_refused(&e, "layer_norm_rms_epsilon must be positive");
    e = (edit){.key = "bitnet-b1.58.rope.freq_base", .kind = SET_F32, .f32 = -1.0f};
    expect_refused(&e, "rope.freq_base must be positive");
    e = (edit){.key = "bitnet-b1.58.context_length", .kind = SET_U32, .u32 = 0};
    expect_refused(&e, "context_length must be positive");
}

/* With general.alignment 1 the data section may start at any offset: float views would be
 * misaligned, so the loader refuses them. Of four pad lengths exactly one puts the data section
 * at a multiple of 4. */
static void test_misaligned_floats(void **state)
{
    (void)state;
    int refused = 0, loaded = 0;
    const char *pads[] = {"", "a", "aa", "aaa"};
    for (int i = 0; i < 4; i++) {
        edit e = {.alignment = 1, .pad = pads[i]};
        bn_err err = {0};
        uint8_t *buf;
        bn_model *m = load_edited(&e, &err, &buf);
        if (m) {
            loaded++;
            bn_model_free(m);
        } else {
            if (!strstr(err.msg, ".weight: data at file offset ") ||
                (!strstr(err.msg, " is not 2-byte aligned") &&
                 !strstr(err.msg, " is not 4-byte aligned")))
                fail_msg("unexpected error '%s'", err.msg);
            refused++;
        }
        free(buf);
    }
    assert_int_equal(refused, 3);
    assert_int_equal(loaded, 1);
}

/* The scale after the packed codes must be a finite float. */
static void test_non_finite_scale(void **state)
{
    (void)state;
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 3; i++) {
        size_t len;
        uint8_t *buf = tiny_model(&len);
        bn_err err = {0};
        bn_gguf *g = bn_gguf_open_memory(buf, len, &err);
        assert_non_null(g);
        const bn_gguf_tensor *t = bn_gguf_find_tensor(g, "blk.1.attn_v.weight");
        size_t at = (size_t)((const uint8_t *)t->data - buf) + 128 * 64 / 4;
        float old;
        memcpy(&old, buf + at, 4);
        assert_true(isfinite(old) && old > 0.0f); /* the writer put the scale right there */
        memcpy(buf + at, &bad[i], 4);
        bn_model *m = bn_model_from_gguf(g, &err);
        assert_null(m);
        if (!strstr(err.msg, "blk.1.attn_v.weight: scale is not a finite number"))
            fail_msg("unexpected error '%s'", err.msg);
        free(buf);
    }
}

static void test_load_from_path(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = tiny_model(&len);
    char *path = bn_test_tmpfile(".gguf");
    assert_int_equal(bn_test_write_file(path, buf, len), 0);
    bn_err err = {0};
    bn_model *m = bn_model_load(path, &err);
    if (!m)
        fail_msg("%s", err.msg);
    assert_int_equal(m->hp.n_layer, 2);
    bn_model_free(m);
    /* a file cut short: the path and the reader's message */
    assert_int_equal(bn_test_write_file(path, buf, len - 100), 0);
    assert_null(bn_model_load(path, &err));
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "runs past the end of the data section"));
    remove(path);
    assert_null(bn_model_load(path, &err));
    assert_non_null(strstr(err.msg, "cannot open"));
    free(path);
    free(buf);
}

/* A model read from memory keeps its buffer: building the screened head's copy must not
 * release (with madvise, which zeroes anonymous memory) the f16 rows it reads again. */
static void test_memory_model_keeps_its_buffer(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = tiny_model(&len);
    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    bn_err err = {0};
    bn_gguf *g = bn_gguf_open_memory(buf, len, &err);
    assert_non_null(g);
    bn_model *m = bn_model_from_gguf(g, &err);
    if (!m)
        fail_msg("%s", err.msg);
    if (bn_model_build_lm_compact(m, BN_LM_U6, NULL, &err))
        fail_msg("%s", err.msg);
    assert_memory_equal(buf, copy, len);
    bn_model_free(m);
    free(copy);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_loads),
        cmocka_unit_test(test_memory_model_keeps_its_buffer),
        cmocka_unit_test(test_wrong_tensors),
        cmocka_unit_test(test_architecture_and_hparams),
        cmocka_unit_test(test_misaligned_floats),
        cmocka_unit_test(test_non_finite_scale),
        cmocka_unit_test(test_load_from_path),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
