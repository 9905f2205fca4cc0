/* The synthetic-model writer: same structure as the reference's golden models (keys, types,
 * order, tensor table), I2_S packing against hand-computed bytes, contents within their
 * stated distributions, a valid BPE vocabulary, determinism, shape checks. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "kernels.h"
#include "model.h"
#include "synthetic_model.h"
#include "testdata.h"

static bn_synth_params preset(const char *name)
{
    bn_synth_params p;
    bn_err err = {0};
    if (bn_synth_preset(name, &p, &err))
        fail_msg("%s", err.msg);
    return p;
}

static uint8_t *write_mem(const bn_synth_params *p, size_t *len)
{
    bn_err err = {0};
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    assert_non_null(f);
    if (bn_synth_write_stream(p, f, &err))
        fail_msg("%s", err.msg);
    fclose(f);
    return (uint8_t *)buf;
}

static bn_gguf *open_mem(const uint8_t *buf, size_t len)
{
    bn_err err = {0};
    bn_gguf *g = bn_gguf_open_memory(buf, len, &err);
    if (!g)
        fail_msg("%s", err.msg);
    return g;
}

/* Same keys in the same order with the same types (and equal scalar values), same tensor
 * table (names, order, types, dims, offsets, sizes). */
static void assert_same_structure(const bn_gguf *a, const bn_gguf *b)
{
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->alignment, b->alignment);
    assert_int_equal(a->n_kv, b->n_kv);
    for (uint64_t i = 0; i < a->n_kv; i++) {
        const bn_gguf_kv *x = &a->kv[i], *y = &b->kv[i];
        assert_string_equal(x->key, y->key);
        assert_int_equal(x->type, y->type);
        if (x->type == BN_GGUF_ARRAY) {
            assert_int_equal(x->arr_type, y->arr_type);
        } else if (x->type == BN_GGUF_STRING) {
            assert_int_equal(x->str.len, y->str.len);
            assert_memory_equal(x->str.ptr, y->str.ptr, x->str.len);
        } else {
            assert_memory_equal(&x->num, &y->num, sizeof x->num);
        }
    }
    assert_int_equal(a->n_tensors, b->n_tensors);
    for (uint64_t i = 0; i < a->n_tensors; i++) {
        const bn_gguf_tensor *x = &a->tensors[i], *y = &b->tensors[i];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->type, y->type);
        assert_int_equal(x->n_dims, y->n_dims);
        assert_memory_equal(x->ne, y->ne, sizeof x->ne);
        assert_int_equal(x->offset, y->offset);
        assert_int_equal(x->nbytes, y->nbytes);
    }
    assert_int_equal(a->data_size, b->data_size);
}

static void compare_with_reference(const char *name)
{
    char rel[128];
    snprintf(rel, sizeof rel, "reference/models/%s.gguf", name);
    char *path = bn_test_shared(rel);
    bn_test_skip_if_missing(path, rel);
    bn_err err = {0};
    bn_gguf *ref = bn_gguf_open(path, &err);
    if (!ref)
        fail_msg("%s", err.msg);
    bn_synth_params p = preset(name);

    /* with our synthetic vocabulary: the same structure, a vocabulary of the same size with
     * the specials at the same ids */
    size_t len;
    uint8_t *buf = write_mem(&p, &len);
    bn_gguf *g = open_mem(buf, len);
    assert_int_equal(g->n_kv, 24);
    assert_same_structure(g, ref);
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].type == BN_GGUF_ARRAY && strcmp(g->kv[i].key, "tokenizer.ggml.merges") != 0)
            assert_int_equal(g->kv[i].arr_len, ref->kv[i].arr_len);
    /* the 256 byte tokens are the reference's (GPT-2 order), and so are the specials */
    const bn_gguf_kv *t1, *t2;
    assert_int_equal(bn_gguf_get_arr(g, "tokenizer.ggml.tokens", BN_GGUF_STRING, &t1, &err), 0);
    assert_int_equal(bn_gguf_get_arr(ref, "tokenizer.ggml.tokens", BN_GGUF_STRING, &t2, &err), 0);
    for (uint64_t i = 0; i < t1->arr_len; i++)
        if (i < 256 || i >= t1->arr_len - BN_SYNTH_N_SPECIAL) {
            assert_int_equal(t1->arr_strs[i].len, t2->arr_strs[i].len);
            assert_memory_equal(t1->arr_strs[i].ptr, t2->arr_strs[i].ptr, t1->arr_strs[i].len);
        }
    bn_gguf_close(g);
    free(buf);

    /* with the reference's own vocabulary copied in, everything before the tensor data is
     * byte-identical to the file the Python writer made */
    p.vocab_gguf = path;
    p.n_vocab = 0;
    buf = write_mem(&p, &len);
    g = open_mem(buf, len);
    assert_int_equal(len, ref->size);
    assert_int_equal(g->data_offset, ref->data_offset);
    assert_memory_equal(buf, ref->base, ref->data_offset);
    /* and each I2_S tail has the f32 scale then 28 zero bytes, like the reference's */
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const bn_gguf_tensor *t = &g->tensors[i];
        if (t->type != BN_GGML_I2_S)
            continue;
        const uint8_t *tail = (const uint8_t *)t->data + t->nbytes - 32;
        static const uint8_t zeros[28];
        assert_memory_equal(tail + 4, zeros, 28);
        assert_memory_equal(
            (const uint8_t *)bn_gguf_find_tensor(ref, t->name)->data + t->nbytes - 28, zeros, 28);
    }
    bn_gguf_close(g);
    free(buf);
    bn_gguf_close(ref);
    free(path);
}

static void test_tiny_a_matches_reference(void **state)
{
    (void)state;
    compare_with_reference("tiny-a");
}

static void test_tiny_b_matches_reference(void **state)
{
    (void)state;
    compare_with_reference("tiny-b");
}

/* FORMAT.md 3.2: byte j of a block holds weights j, 32+j, 64+j, 96+j in bits 7..6, 5..4, 3..2,
 * 1..0 with code = weight + 1. */
static void test_i2s_packing_by_hand(void **state)
{
    (void)state;
    int8_t w[256];
    uint8_t out[256 / 4 + 32];
    memset(w, 0, sizeof w); /* all zero -> code 1 everywhere -> 0b01010101 */
    w[0] = 1;               /* block 0, byte 0, bits 7..6 = 2 */
    w[32 + 5] = -1;         /* block 0, byte 5, bits 5..4 = 0 */
    w[64 + 31] = 1;         /* block 0, byte 31, bits 3..2 = 2 */
    w[96 + 31] = -1;        /* block 0, byte 31, bits 1..0 = 0 */
    w[128 + 7] = 1;         /* block 1, byte 7 (file byte 39), bits 7..6 = 2 */
    w[128 + 96 + 7] = 1;    /* block 1, byte 7, bits 1..0 = 2 */
    bn_i2s_pack(w, 256, 0.5f, out);
    uint8_t want[64];
    memset(want, 0x55, sizeof want);
    want[0] = 0x95;  /* 10 01 01 01 */
    want[5] = 0x45;  /* 01 00 01 01 */
    want[31] = 0x58; /* 01 01 10 00 */
    want[39] = 0x96; /* 10 01 01 10 */
    assert_memory_equal(out, want, 64);
    assert_memory_equal(out + 64, "\x00\x00\x00\x3f", 4); /* 0.5f little endian */
    for (int i = 68; i < 96; i++)
        assert_int_equal(out[i], 0);
    /* all +1 and all -1 */
    memset(w, 1, 128);
    bn_i2s_pack(w, 128, 1.0f, out);
    for (int i = 0; i < 32; i++)
        assert_int_equal(out[i], 0xAA);
    memset(w, -1, 128);
    bn_i2s_pack(w, 128, 1.0f, out);
    for (int i = 0; i < 32; i++)
        assert_int_equal(out[i], 0x00);
}

/* Contents: ternary codes only (never 3) with about zero_frac zeros and +1/-1 balanced,
 * scales as documented, norms in [0.6, 1.4], embeddings centred with the stated std. */
static void test_contents(void **state)
{
    (void)state;
    bn_synth_params p = preset("tiny-b");
    p.zero_frac = 0.25f;
    size_t len;
    uint8_t *buf = write_mem(&p, &len);
    bn_gguf *g = open_mem(buf, len);
    uint64_t counts[4] = {0};
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const bn_gguf_tensor *t = &g->tensors[i];
        if (t->type == BN_GGML_I2_S) {
            const uint8_t *d = t->data;
            uint64_t n = t->ne[0] * t->ne[1];
            for (uint64_t j = 0; j < n / 4; j++)
                for (int s = 0; s < 8; s += 2)
                    counts[(d[j] >> s) & 3]++;
            float scale;
            memcpy(&scale, d + n / 4, 4);
            double base = 1.0 / sqrt((double)t->ne[0] * 0.75);
            assert_true(scale >= 0.8 * base * 0.999 && scale <= 1.2 * base * 1.001);
        } else if (t->type == BN_GGML_F32) {
            const float *f = t->data;
            for (uint64_t j = 0; j < t->ne[0]; j++)
                assert_true(f[j] >= 0.6f && f[j] <= 1.4f);
        } else {
            assert_int_equal(t->type, BN_GGML_F16);
            const uint16_t *h = t->data;
            uint64_t n = t->ne[0] * t->ne[1];
            double sum = 0, sq = 0;
            for (uint64_t j = 0; j < n; j++) {
                double x = bn_f16_to_f32(h[j]);
                sum += x;
                sq += x * x;
            }
            double mean = sum / (double)n, sd = sqrt(sq / (double)n - mean * mean);
            double want = 1.5 / sqrt(512.0);
            assert_true(fabs(mean) < 0.01 * want * 10);
            assert_true(fabs(sd - want) < 0.02 * want);
        }
    }
    uint64_t total = counts[0] + counts[1] + counts[2] + counts[3];
    assert_int_equal(counts[3], 0);
    double zero = (double)counts[1] / (double)total;
    assert_true(fabs(zero - 0.25) < 0.01);
    assert_true(fabs((double)counts[0] - (double)counts[2]) < 0.01 * (double)total);
    bn_gguf_close(g);
    free(buf);
}

static int find_token(const bn_gguf_kv *toks, const char *s, size_t n)
{
    for (uint64_t i = 0; i < toks->arr_len; i++)
        if (toks->arr_strs[i].len == n && memcmp(toks->arr_strs[i].ptr, s, n) == 0)
            return (int)i;
    return -1;
}

/* Every merge "a b" joins two tokens into a third; every merged token has its merge; the 256
 * byte tokens come first in GPT-2 order and the 16 specials last (CONTROL, score -1000). */
static void test_synthetic_vocabulary(void **state)
{
    (void)state;
    bn_synth_params p = preset("tiny");
    size_t len;
    uint8_t *buf = write_mem(&p, &len);
    bn_gguf *g = open_mem(buf, len);
    bn_err err = {0};
    const bn_gguf_kv *toks, *merges, *types, *scores;
    assert_int_equal(bn_gguf_get_arr(g, "tokenizer.ggml.tokens", BN_GGUF_STRING, &toks, &err), 0);
    assert_int_equal(bn_gguf_get_arr(g, "tokenizer.ggml.merges", BN_GGUF_STRING, &merges, &err), 0);
    assert_int_equal(bn_gguf_get_arr(g, "tokenizer.ggml.token_type", BN_GGUF_I32, &types, &err), 0);
    assert_int_equal(bn_gguf_get_arr(g, "tokenizer.ggml.scores", BN_GGUF_F32, &scores, &err), 0);
    assert_int_equal(toks->arr_len, 384);
    assert_int_equal(merges->arr_len, 384 - 256 - 16);
    assert_true(bn_gguf_str_eq(toks->arr_strs[0], "!"));
    assert_true(bn_gguf_str_eq(toks->arr_strs[93], "~"));
    assert_true(bn_gguf_str_eq(toks->arr_strs[94], "\xc2\xa1"));  /* byte 0xA1 -> U+00A1 */
    assert_true(bn_gguf_str_eq(toks->arr_strs[188], "\xc4\x80")); /* byte 0x00 -> U+0100 */
    assert_true(bn_gguf_str_eq(toks->arr_strs[220], "\xc4\xa0")); /* space -> U+0120 'Ġ' */
    for (uint64_t i = 0; i < merges->arr_len; i++) {
        bn_gguf_str m = merges->arr_strs[i];
        const char *sp = memchr(m.ptr, ' ', m.len);
        assert_non_null(sp);
        size_t nl = (size_t)(sp - m.ptr), nr = m.len - nl - 1;
        assert_true(find_token(toks, m.ptr, nl) >= 0);
        assert_true(find_token(toks, sp + 1, nr) >= 0);
        char joined[256];
        memcpy(joined, m.ptr, nl);
        memcpy(joined + nl, sp + 1, nr);
        /* merged tokens are created in merge order, right after the byte tokens */
        assert_int_equal(find_token(toks, joined, nl + nr), 256 + (int)i);
    }
    for (uint64_t i = 0; i < toks->arr_len; i++) {
        assert_int_equal(find_token(toks, toks->arr_strs[i].ptr, toks->arr_strs[i].len), (int)i);
        int special = i >= 384 - 16;
        assert_int_equal(bn_gguf_arr_i32(types, i), special ? 3 : 1);
        assert_true(bn_gguf_arr_f32(scores, i) == (special ? -1000.0f : 0.0f));
    }
    assert_true(bn_gguf_str_eq(toks->arr_strs[368], "<|begin_of_text|>"));
    assert_true(bn_gguf_str_eq(toks->arr_strs[377], "<|eot_id|>"));
    assert_true(bn_gguf_str_eq(toks->arr_strs[383], "<|reserved_special_token_10|>"));
    uint32_t u;
    assert_int_equal(bn_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u, &err), 0);
    assert_int_equal(u, 368);
    assert_int_equal(bn_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u, &err), 0);
    assert_int_equal(u, 369);
    bn_gguf_close(g);
    free(buf);
}

/* The byte tokens are exactly Llama 3's first 256 tokens. */
static void test_byte_tokens_match_llama3(void **state)
{
    (void)state;
    char *path = bn_test_shared("tokenizer/llama3-vocab.gguf");
    bn_test_skip_if_missing(path, "tokenizer/llama3-vocab.gguf");
    bn_err err = {0};
    bn_synth_vocab ours, llama;
    assert_int_equal(bn_synth_vocab_make(300, 1, &ours, &err), 0);
    if (bn_synth_vocab_load(path, &llama, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(llama.n_tokens, 128256);
    assert_int_equal(llama.bos, 128000);
    assert_int_equal(llama.eos, 128001);
    for (int i = 0; i < 256; i++) {
        assert_int_equal(ours.tokens[i].len, llama.tokens[i].len);
        assert_memory_equal(ours.tokens[i].ptr, llama.tokens[i].ptr, ours.tokens[i].len);
    }
    bn_synth_vocab_free(&ours);
    bn_synth_vocab_free(&llama);
    free(path);
}

static void test_deterministic_and_seeded(void **state)
{
    (void)state;
    bn_synth_params p = preset("tiny");
    size_t l1, l2, l3;
    uint8_t *a = write_mem(&p, &l1), *b = write_mem(&p, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(a, b, l1);
    p.seed = 6;
    uint8_t *c = write_mem(&p, &l3);
    bn_gguf *ga = open_mem(a, l1), *gc = open_mem(c, l3);
    const bn_gguf_tensor *ta = bn_gguf_find_tensor(ga, "blk.0.ffn_up.weight");
    const bn_gguf_tensor *tc = bn_gguf_find_tensor(gc, "blk.0.ffn_up.weight");
    assert_int_equal(ta->nbytes, tc->nbytes);
    assert_true(memcmp(ta->data, tc->data, ta->nbytes) != 0);
    bn_gguf_close(ga);
    bn_gguf_close(gc);
    free(a);
    free(b);
    free(c);
}

static void test_layer_order_and_shapes(void **state)
{
    (void)state;
    bn_synth_params p = preset("tiny");
    p.n_layer = 12;
    size_t len;
    uint8_t *buf = write_mem(&p, &len);
    bn_gguf *g = open_mem(buf, len);
    assert_int_equal(g->n_tensors, 2 + 11 * 12);
    /* lexicographic layer order: 0, 1, 10, 11, 2, ... */
    const char *firsts[] = {"blk.0.", "blk.1.", "blk.10.", "blk.11.", "blk.2."};
    for (int i = 0; i < 5; i++)
        assert_int_equal(strncmp(g->tensors[1 + 11 * i].name, firsts[i], strlen(firsts[i])), 0);
    assert_string_equal(g->tensors[1].name, "blk.0.attn_norm.weight");
    assert_string_equal(g->tensors[2].name, "blk.0.ffn_down.weight");
    assert_string_equal(g->tensors[11].name, "blk.0.attn_v.weight");
    assert_string_equal(g->tensors[g->n_tensors - 1].name, "output_norm.weight");
    bn_gguf_close(g);
    free(buf);
}

static void test_shape_checks(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_synth_params p = preset("tiny");
    p.n_embd = 200;
    assert_int_equal(bn_synth_check(&p, &err), -1);
    assert_non_null(strstr(err.msg, "n_embd 200 must be a positive multiple of 128"));
    p = preset("tiny");
    p.n_ff = 322;
    assert_int_equal(bn_synth_check(&p, &err), -1);
    assert_non_null(strstr(err.msg, "n_ff 322 must be a positive multiple of 4"));
    /* I2_S (flat blocks across row ends, as llama-quantize packs them) and F32 of n_ff 320 */
    p.n_ff = 320;
    assert_int_equal(bn_synth_check(&p, &err), 0);
    p.f32 = true;
    assert_int_equal(bn_synth_check(&p, &err), 0);
    p = preset("tiny");
    p.n_head = 3;
    assert_int_equal(bn_synth_check(&p, &err), -1);
    assert_non_null(strstr(err.msg, "n_head 3 must divide n_embd 128"));
    p = preset("tiny");
    p.n_head_kv = 3;
    assert_int_equal(bn_synth_check(&p, &err), -1);
    assert_non_null(strstr(err.msg, "n_head_kv 3 must divide n_head 2"));
    p = preset("tiny");
    p.n_head = 128; /* head_dim 1 */
    assert_int_equal(bn_synth_check(&p, &err), -1);
    assert_non_null(strstr(err.msg, "head_dim 1 must be even"));
    p = preset("tiny");
    p.zero_frac = 1.0f;
    assert_int_equal(bn_synth_check(&p, &err), -1);
    assert_non_null(strstr(err.msg, "zero_frac 1 must be in [0, 1)"));
    p = preset("tiny");
    p.n_vocab = 100;
    size_t len;
    char *buf = NULL;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(bn_synth_write_stream(&p, f, &err), -1);
    fclose(f);
    free(buf);
    assert_non_null(strstr(err.msg, "a synthetic vocabulary needs at least 273 tokens, not 100"));
    assert_int_equal(bn_synth_preset("huge", &p, &err), -1);
    assert_non_null(strstr(err.msg, "unknown preset 'huge'"));
    /* the 2b4t preset is the real shape (FORMAT.md 2) */
    bn_test_preset_shape("2b4t", "bitnet-b1.58", 2560, 30, 20, 5, 6912, 128256);
    /* Falcon-E-1B (README "Models"): llama, falcon_e pre-tokenizer, a separate output.weight */
    p = bn_test_preset_shape("falcon-e-1b", "llama", 2048, 24, 16, 2, 9216, 32768);
    assert_string_equal(p.pre, "falcon_e");
    assert_int_equal(p.tied, 0);
    p = preset("falcon3-1b");
    assert_string_equal(p.pre, "falcon3");
}

/* The tiny preset written to a file loads as a model. */
static void test_tiny_preset_loads(void **state)
{
    (void)state;
    bn_synth_params p = preset("tiny");
    char *path = bn_test_tmpfile(".gguf");
    bn_err err = {0};
    if (bn_synth_write(&p, path, &err))
        fail_msg("%s", err.msg);
    size_t len;
    uint8_t *data = bn_test_read_file(path, &len);
    assert_non_null(data);
    assert_true(len > 100000 && len < 400000);
    free(data);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    assert_null(bn_test_read_file(tmp, &len)); /* renamed into place, nothing left over */
    bn_model *m = bn_model_load(path, &err);
    if (!m)
        fail_msg("%s", err.msg);
    assert_int_equal(m->hp.n_embd, 128);
    assert_int_equal(m->hp.n_vocab, 384);
    bn_model_free(m);
    remove(path);
    /* an unwritable path fails and leaves nothing behind */
    assert_int_equal(bn_synth_write(&p, "/nonexistent-dir/x.gguf", &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/x.gguf: cannot create"));
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_a_matches_reference),
        cmocka_unit_test(test_tiny_b_matches_reference),
        cmocka_unit_test(test_i2s_packing_by_hand),
        cmocka_unit_test(test_contents),
        cmocka_unit_test(test_synthetic_vocabulary),
        cmocka_unit_test(test_byte_tokens_match_llama3),
        cmocka_unit_test(test_deterministic_and_seeded),
        cmocka_unit_test(test_layer_order_and_shapes),
        cmocka_unit_test(test_shape_checks),
        cmocka_unit_test(test_tiny_preset_loads),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
