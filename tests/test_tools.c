/* bin/gguf-inspect and bin/bitnet-make-model end to end: outputs name the right tensor counts
 * and types (text and --json, the latter parsed by the strict JSON parser), bad usage exits 2,
 * unreadable files exit 1. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "json.h"

static void expect_contains(const char *text, const char *want)
{
    if (!strstr(text, want))
        fail_msg("output does not contain '%s':\n%.3000s", want, text);
}

static int run(const char *const *argv, char **out, char **err)
{
    return bn_test_run(argv, NULL, out, err);
}

static char *make_tiny(void)
{
    char *path = bn_test_tmpfile(".gguf");
    const char *argv[] = {"bitnet-make-model", "--preset", "tiny", "--out", path, NULL};
    char *out, *err;
    int rc = run(argv, &out, &err);
    if (rc != 0)
        fail_msg("bitnet-make-model exited %d: %s", rc, err);
    expect_contains(err, "24 tensors, n_embd 128, n_layer 2, heads 2/1, n_ff 384");
    free(out);
    free(err);
    return path;
}

static void test_inspect_text(void **state)
{
    (void)state;
    char *path = make_tiny();
    const char *argv[] = {"gguf-inspect", path, NULL};
    char *out, *err;
    assert_int_equal(run(argv, &out, &err), 0);
    expect_contains(out, "GGUF v3, 24 metadata keys, 24 tensors, alignment 32");
    expect_contains(out, "general.architecture");
    expect_contains(out, "\"bitnet-b1.58\"");
    expect_contains(out, "bitnet-b1.58.embedding_length                    u32            128");
    expect_contains(out, "string[384]    [\"!\", \"\\\"\", \"#\", \"$\", \"%\", ...]");
    expect_contains(out, "tokenizer.ggml.add_bos_token                     bool           true");
    expect_contains(out, "blk.1.ffn_down.weight            I2_S  [384, 128]");
    /* tiny: 2 layers -> 4*2+1 F32 norms, 7*2 I2_S matrices, one F16 embedding */
    expect_contains(out, "  F32        9 tensors");
    expect_contains(out, "  F16        1 tensors            98304 bytes");
    expect_contains(out, "  I2_S      14 tensors");
    expect_contains(out, "  all       24 tensors");
    free(out);
    free(err);
    remove(path);
    free(path);
}

/* Names and strings from the file are escaped in text mode: a hostile key, value or tensor name
 * cannot send escape sequences to the terminal. */
static void test_inspect_escapes(void **state)
{
    (void)state;
    char *path = make_tiny();
    size_t len;
    uint8_t *buf = bn_test_read_file(path, &len);
    assert_non_null(buf);
    /* same-length replacements inside the file: the architecture value and one tensor name */
    uint8_t *v = memmem(buf, len, "bitnet-b1.58", 12);
    uint8_t *t = memmem(buf, len, "output_norm.weight", 18);
    assert_non_null(v);
    assert_non_null(t);
    memcpy(v, "\x1b[2J\xc2\x9b\xff-1.58", 12);
    memcpy(t, "\x1b]0;x\x07_norm.weight", 18);
    assert_int_equal(bn_test_write_file(path, buf, len), 0);
    const char *argv[] = {"gguf-inspect", path, NULL};
    char *out, *err;
    assert_int_equal(run(argv, &out, &err), 0);
    expect_contains(out, "\"\\x1b[2J\\xc2\\x9b\\xff-1.58\"");
    expect_contains(out, "\\x1b]0;x\\x07_norm.weight");
    assert_null(strchr(out, 0x1b));
    assert_null(strchr(out, 0x07));
    free(out);
    free(err);
    free(buf);
    remove(path);
    free(path);
}

static const bn_json *get(const bn_json *v, const char *key)
{
    const bn_json *x = bn_json_get(v, key);
    if (!x)
        fail_msg("JSON has no '%s'", key);
    return x;
}

static void test_inspect_json(void **state)
{
    (void)state;
    char *path = make_tiny();
    const char *argv[] = {"gguf-inspect", "--json", path, NULL};
    char *out, *err;
    assert_int_equal(run(argv, &out, &err), 0);
    bn_err jerr = {0};
    bn_json_doc *doc = bn_json_parse(out, strlen(out), NULL, &jerr);
    if (!doc)
        fail_msg("--json output is not valid JSON: %s", jerr.msg);
    const bn_json *root = bn_json_root(doc);
    assert_int_equal(get(root, "version")->i64, 3);
    assert_int_equal(get(root, "n_tensors")->i64, 24);
    const bn_json *meta = get(root, "metadata"), *tensors = get(root, "tensors");
    assert_int_equal(meta->len, 24);
    assert_int_equal(tensors->len, 24);
    const bn_json *k0 = bn_json_at(meta, 0);
    assert_string_equal(get(k0, "key")->str, "general.architecture");
    assert_string_equal(get(k0, "value")->str, "bitnet-b1.58");
    const bn_json *toks = bn_json_at(meta, 15);
    assert_string_equal(get(toks, "key")->str, "tokenizer.ggml.tokens");
    assert_string_equal(get(toks, "elem_type")->str, "string");
    assert_int_equal(get(toks, "len")->i64, 384);
    assert_string_equal(bn_json_at(get(toks, "head"), 1)->str, "\"");
    const bn_json *eps = bn_json_at(meta, 11);
    assert_true(get(eps, "value")->num > 0.99e-5 && get(eps, "value")->num < 1.01e-5);
    const bn_json *t2 = bn_json_at(tensors, 2);
    assert_string_equal(get(t2, "name")->str, "blk.0.ffn_down.weight");
    assert_string_equal(get(t2, "type")->str, "I2_S");
    assert_int_equal(bn_json_at(get(t2, "dims"), 0)->i64, 384);
    assert_int_equal(get(t2, "bytes")->i64, 384 * 128 / 4 + 32);
    const bn_json *by = get(get(root, "totals"), "by_type");
    assert_int_equal(get(get(by, "F32"), "count")->i64, 9);
    assert_int_equal(get(get(by, "F16"), "count")->i64, 1);
    assert_int_equal(get(get(by, "I2_S"), "count")->i64, 14);
    bn_json_free(doc);
    free(out);
    free(err);
    remove(path);
    free(path);
}

/* The shared reference files: tensor counts per type, and the vocabulary-only file. */
static void test_inspect_shared_files(void **state)
{
    (void)state;
    char *a = bn_test_shared("reference/models/tiny-b.gguf");
    bn_test_skip_if_missing(a, "reference/models/tiny-b.gguf");
    const char *argv[] = {"gguf-inspect", a, NULL};
    char *out, *err;
    assert_int_equal(run(argv, &out, &err), 0);
    expect_contains(out, "35 tensors");
    expect_contains(out, "  F32       13 tensors");
    expect_contains(out, "  I2_S      21 tensors");
    free(out);
    free(err);
    char *v = bn_test_shared("tokenizer/llama3-vocab.gguf");
    if (v) {
        const char *argv2[] = {"gguf-inspect", "--json", v, NULL};
        assert_int_equal(run(argv2, &out, &err), 0);
        expect_contains(out, "\"n_tensors\":0");
        expect_contains(out, "\"key\":\"tokenizer.ggml.merges\",\"type\":\"array\","
                             "\"elem_type\":\"string\",\"len\":280147");
        bn_err jerr = {0};
        bn_json_doc *doc = bn_json_parse(out, strlen(out), NULL, &jerr);
        if (!doc)
            fail_msg("--json output is not valid JSON: %s", jerr.msg);
        bn_json_free(doc);
        free(out);
        free(err);
    }
    free(v);
    free(a);
}

/* Same structure as the reference file: keys in order with their types, the tokenizer
 * arrays element for element, and the tensor table (names, types, shapes, offsets). */
static void expect_same_structure(const char *ours_path, const char *ref_path)
{
    bn_err err = {0};
    bn_gguf *a = bn_gguf_open(ours_path, &err), *b = bn_gguf_open(ref_path, &err);
    if (!a || !b)
        fail_msg("bn_gguf_open: %s", err.msg);
    assert_int_equal(a->n_kv, b->n_kv);
    for (uint64_t i = 0; i < a->n_kv; i++) {
        const bn_gguf_kv *x = &a->kv[i], *y = &b->kv[i];
        assert_string_equal(x->key, y->key);
        assert_int_equal(x->type, y->type);
        if (strncmp(x->key, "tokenizer.", 10) || x->type != BN_GGUF_ARRAY)
            continue;
        assert_int_equal(x->arr_type, y->arr_type);
        assert_int_equal(x->arr_len, y->arr_len);
        for (uint64_t j = 0; x->arr_type == BN_GGUF_STRING && j < x->arr_len; j++)
            if (x->arr_strs[j].len != y->arr_strs[j].len ||
                memcmp(x->arr_strs[j].ptr, y->arr_strs[j].ptr, x->arr_strs[j].len))
                fail_msg("%s[%llu] differs from the reference's", x->key, (unsigned long long)j);
        if (x->arr_type != BN_GGUF_STRING)
            assert_memory_equal(x->arr_data, y->arr_data,
                                x->arr_len * bn_gguf_scalar_size(x->arr_type));
    }
    assert_int_equal(a->n_tensors, b->n_tensors);
    for (uint64_t i = 0; i < a->n_tensors; i++) {
        const bn_gguf_tensor *x = &a->tensors[i], *y = &b->tensors[i];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->type, y->type);
        assert_int_equal(x->n_dims, y->n_dims);
        assert_memory_equal(x->ne, y->ne, sizeof x->ne);
        assert_int_equal(x->offset, y->offset);
    }
    assert_int_equal(a->data_offset, b->data_offset);
    bn_gguf_close(a);
    bn_gguf_close(b);
}

/* --vocab-gguf with the reference's own vocabulary gives a file of the reference's size and
 * structure, with its vocabulary. */
static void test_make_model_with_vocab(void **state)
{
    (void)state;
    char *ref = bn_test_shared("reference/models/tiny-a.gguf");
    bn_test_skip_if_missing(ref, "reference/models/tiny-a.gguf");
    char *path = bn_test_tmpfile(".gguf");
    const char *argv[] = {
        "bitnet-make-model", "--preset", "tiny-a", "--vocab-gguf", ref, "--out", path, "-q", NULL};
    char *out, *err;
    assert_int_equal(run(argv, &out, &err), 0);
    assert_string_equal(err, "");
    size_t len;
    uint8_t *data = bn_test_read_file(path, &len);
    assert_non_null(data);
    assert_int_equal(len, 584384);
    free(data);
    expect_same_structure(path, ref);
    free(out);
    free(err);
    remove(path);
    free(path);
    free(ref);
}

static void test_make_model_custom_shape(void **state)
{
    (void)state;
    char *path = bn_test_tmpfile(".gguf");
    const char *argv[] = {"bitnet-make-model",
                          "--n-embd",
                          "256",
                          "--n-layer",
                          "1",
                          "--n-head",
                          "2",
                          "--n-head-kv",
                          "1",
                          "--n-ff",
                          "256",
                          "--n-vocab",
                          "300",
                          "--seed",
                          "9",
                          "--zero-frac",
                          "0.5",
                          "--out",
                          path,
                          NULL};
    char *out, *err;
    assert_int_equal(run(argv, &out, &err), 0);
    free(out);
    free(err);
    const char *argv2[] = {"gguf-inspect", path, NULL};
    assert_int_equal(run(argv2, &out, &err), 0);
    expect_contains(out, "13 tensors");
    expect_contains(out, "blk.0.attn_k.weight              I2_S  [256, 128]");
    expect_contains(out, "token_embd.weight                F16   [256, 300]");
    free(out);
    free(err);
    remove(path);
    free(path);
}

static void expect_usage_error(const char *const *argv, int code, const char *want)
{
    char *out, *err;
    int rc = run(argv, &out, &err);
    if (rc != code)
        fail_msg("%s exited %d, expected %d (stderr: %s)", argv[0], rc, code, err);
    expect_contains(err, want);
    free(out);
    free(err);
}

static void test_bad_usage(void **state)
{
    (void)state;
    const char *a1[] = {
        "bitnet-make-model", "--preset", "tiny", "--bogus", "1", "--out", "x", NULL};
    expect_usage_error(a1, 2, "unknown option '--bogus'");
    const char *a2[] = {"bitnet-make-model", "--preset", "huge", "--out", "x", NULL};
    expect_usage_error(a2, 2, "unknown preset 'huge'");
    const char *a3[] = {
        "bitnet-make-model", "--preset", "tiny", "--n-embd", "200", "--out", "x", NULL};
    expect_usage_error(a3, 2, "n_embd 200 must be a positive multiple of 128");
    const char *a4[] = {
        "bitnet-make-model", "--preset", "tiny", "--n-layer", "abc", "--out", "x", NULL};
    expect_usage_error(a4, 2, "--n-layer: 'abc' is not an unsigned 32-bit integer");
    const char *a5[] = {"bitnet-make-model", "--preset", "tiny", NULL};
    expect_usage_error(a5, 2, "--out FILE is required");
    const char *a6[] = {"bitnet-make-model", "--n-embd", "128", "--out", "x", NULL};
    expect_usage_error(a6, 2, "without --preset");
    const char *a7[] = {
        "bitnet-make-model", "--preset", "tiny", "--zero-frac", "1.5", "--out", "x", NULL};
    expect_usage_error(a7, 2, "zero_frac 1.5 must be in [0, 1)");
    const char *a8[] = {"bitnet-make-model", "--preset", "tiny", "--out", NULL};
    expect_usage_error(a8, 2, "--out needs a value");
    const char *a9[] = {"bitnet-make-model",       "--preset", "tiny", "--out",
                        "/nonexistent-dir/m.gguf", NULL};
    expect_usage_error(a9, 1, "/nonexistent-dir/m.gguf: cannot create");
    const char *b1[] = {"gguf-inspect", NULL};
    expect_usage_error(b1, 2, "usage: gguf-inspect");
    const char *b2[] = {"gguf-inspect", "--bogus", "x", NULL};
    expect_usage_error(b2, 2, "unknown option '--bogus'");
    const char *b3[] = {"gguf-inspect", "/nonexistent-file.gguf", NULL};
    expect_usage_error(b3, 1, "/nonexistent-file.gguf: cannot open");
    const char *b4[] = {"gguf-inspect", "a", "b", NULL};
    expect_usage_error(b4, 2, "one FILE only");
    /* a damaged file: exit 1 with the reader's message */
    char *path = bn_test_tmpfile(".gguf");
    assert_int_equal(bn_test_write_file(path, "GGUF\3\0\0\0", 8), 0);
    const char *b5[] = {"gguf-inspect", path, NULL};
    expect_usage_error(b5, 1, "truncated: tensor count needs 4 bytes at offset 8");
    remove(path);
    free(path);
    const char *h[] = {"bitnet-make-model", "--help", NULL};
    char *out, *err;
    assert_int_equal(run(h, &out, &err), 0);
    expect_contains(out, "--vocab-gguf FILE");
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inspect_text),
        cmocka_unit_test(test_inspect_escapes),
        cmocka_unit_test(test_inspect_json),
        cmocka_unit_test(test_inspect_shared_files),
        cmocka_unit_test(test_make_model_with_vocab),
        cmocka_unit_test(test_make_model_custom_shape),
        cmocka_unit_test(test_bad_usage),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
