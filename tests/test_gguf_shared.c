/* The GGUF reader and model loader on the reference's synthetic models and the Llama-3
 * vocabulary file from ../shared (skipped when absent). */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "model.h"

static void test_tiny_models_load(void **state)
{
    (void)state;
    const char *names[] = {"reference/models/tiny-a.gguf", "reference/models/tiny-b.gguf"};
    const uint32_t embd[] = {256, 512}, layers[] = {2, 3}, heads_kv[] = {2, 1};
    for (int i = 0; i < 2; i++) {
        char *path = bn_test_shared(names[i]);
        bn_test_skip_if_missing(path, names[i]);
        bn_err err = {0};
        bn_model *m = bn_model_load(path, &err);
        if (!m)
            fail_msg("%s", err.msg);
        assert_int_equal(m->hp.n_embd, embd[i]);
        assert_int_equal(m->hp.n_layer, layers[i]);
        assert_int_equal(m->hp.n_head, 4);
        assert_int_equal(m->hp.n_head_kv, heads_kv[i]);
        assert_int_equal(m->gguf->version, 3);
        assert_int_equal(m->gguf->n_kv, 24);
        assert_int_equal(m->gguf->n_tensors, 2 + 11 * layers[i]);
        assert_true(m->hp.rms_eps > 0.9e-5f && m->hp.rms_eps < 1.1e-5f);
        assert_true(m->hp.rope_theta == 500000.0f);
        bn_model_free(m);
        free(path);
    }
}

static void test_vocab_file(void **state)
{
    (void)state;
    char *path = bn_test_shared("tokenizer/llama3-vocab.gguf");
    bn_test_skip_if_missing(path, "tokenizer/llama3-vocab.gguf");
    bn_err err = {0};
    bn_gguf *g = bn_gguf_open(path, &err);
    if (!g)
        fail_msg("%s", err.msg);
    assert_int_equal(g->n_tensors, 0);
    assert_int_equal(g->n_kv, 12);
    const bn_gguf_kv *toks;
    assert_int_equal(bn_gguf_get_arr(g, "tokenizer.ggml.tokens", BN_GGUF_STRING, &toks, &err), 0);
    assert_int_equal(toks->arr_len, 128256);
    assert_true(bn_gguf_str_eq(toks->arr_strs[128009], "<|eot_id|>"));
    const bn_gguf_kv *merges;
    assert_int_equal(bn_gguf_get_arr(g, "tokenizer.ggml.merges", BN_GGUF_STRING, &merges, &err), 0);
    assert_int_equal(merges->arr_len, 280147);
    /* a vocab-only file is not a model */
    bn_model *m = bn_model_from_gguf(g, &err);
    assert_null(m);
    assert_non_null(strstr(err.msg, "token_embd.weight") ? err.msg
                                                         : strstr(err.msg, "embedding_length"));
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_models_load),
        cmocka_unit_test(test_vocab_file),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
