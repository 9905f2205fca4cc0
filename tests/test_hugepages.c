/* The ternary weights copied onto huge pages at load (BITNET_HUGEPAGES, model.h
 * bn_model_copy_to_hugepages): the engine computes exactly the same logits from the copy as
 * from the file, the copy is reported, and a bad setting is refused. Also checks the engine's
 * decode byte counts (bn_engine_info.decode_layer_bytes, lm_head_row_bytes) against the shapes.
 * BITNET_HUGEPAGES=1 copies even where the OS offers no huge pages, so this runs anywhere. */
#include "testutil.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bitnet.h"
#include "testdata.h"

typedef struct logit_log {
    float *rows; /* every evaluated position's logits, appended */
    size_t n, cap;
} logit_log;

static int keep_logits(void *user, const float *logits, uint32_t n_vocab)
{
    logit_log *l = user;
    if (l->n + n_vocab > l->cap) {
        l->cap = 2 * (l->n + n_vocab);
        l->rows = realloc(l->rows, l->cap * sizeof *l->rows);
        if (!l->rows)
            return 1;
    }
    memcpy(l->rows + l->n, logits, n_vocab * sizeof *logits);
    l->n += n_vocab;
    return 0;
}

/* Opens path with BITNET_HUGEPAGES=mode, runs a 4-token prompt and 12 greedy tokens, returns
 * every logit row; *copy_ms = the reported copy time, *repacks = the kernel path repacked. */
static logit_log run(const char *path, const char *mode, double *copy_ms, int *repacks)
{
    bn_err err = {0};
    setenv("BITNET_HUGEPAGES", mode, 1);
    bn_engine *e = bn_engine_open(path, NULL, &err);
    unsetenv("BITNET_HUGEPAGES");
    assert_non_null(e);
    bn_engine_info info;
    bn_engine_get_info(e, &info);
    *copy_ms = info.hugepage_copy_ms;
    /* a path that repacks at load (neon-dotprod-rp) reads its own copy: nothing to move */
    *repacks = info.repack_ms > 0.0;
    bn_session *s = bn_session_create(e, NULL, &err);
    assert_non_null(s);
    int32_t prompt[4] = {3, 9, 27, 81};
    bn_generate_params g = bn_generate_default();
    g.prompt_ids = prompt;
    g.n_prompt_ids = 4;
    g.n_predict = 12;
    g.sampling.temp = 0.0f;
    logit_log log = {0};
    g.on_logits = keep_logits;
    g.user = &log;
    assert_int_equal(bn_generate(s, &g, NULL, &err), 0);
    bn_session_free(s);
    bn_engine_free(e);
    return log;
}

static void test_copy_gives_identical_logits(void **state)
{
    (void)state;
    char *path = bn_test_preset_file("tiny");
    double ms_file = -1, ms_copy = -1;
    int repacks = 0;
    logit_log a = run(path, "0", &ms_file, &repacks);
    logit_log b = run(path, "1", &ms_copy, &repacks);
    assert_true(ms_file == 0.0);                           /* not copied */
    assert_true(repacks ? ms_copy == 0.0 : ms_copy > 0.0); /* copied unless repacked */
    assert_true(a.n > 0);
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.rows, b.rows, a.n * sizeof *a.rows);
    free(a.rows);
    free(b.rows);
    unlink(path);
    free(path);
}

static void test_bad_setting_refused(void **state)
{
    (void)state;
    bn_err err = {0};
    char *path = bn_test_preset_file("tiny");
    setenv("BITNET_HUGEPAGES", "yes", 1);
    assert_null(bn_engine_open(path, NULL, &err));
    unsetenv("BITNET_HUGEPAGES");
    assert_int_equal(err.code, BN_E_INPUT);
    assert_non_null(strstr(err.msg, "BITNET_HUGEPAGES"));
    unlink(path);
    free(path);
}

static void test_decode_bytes_match_shapes(void **state)
{
    (void)state;
    bn_err err = {0};
    char *path = bn_test_preset_file("tiny");
    bn_engine *e = bn_engine_open(path, NULL, &err);
    assert_non_null(e);
    bn_engine_info i;
    bn_engine_get_info(e, &i);
    const uint64_t d = i.n_embd, f = i.n_ff, kv = (uint64_t)i.n_embd / i.n_head * i.n_head_kv;
    /* q, o: d x d; k, v: d x kv; gate, up, down: d x f; 2 bits per weight */
    const uint64_t ternary = i.n_layer * (2 * d * d + 2 * d * kv + 3 * d * f) / 4;
    /* norms (f32): per layer attn, ffn, and the sub-norms of the bitnet family; the output's */
    assert_true(i.decode_layer_bytes > ternary);
    assert_true(i.decode_layer_bytes <= ternary + 4 * (i.n_layer * (3 * d + f) + d));
    assert_int_equal(i.lm_head_row_bytes, 2 * d); /* f16 */
    bn_engine_free(e);
    unlink(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_gives_identical_logits),
        cmocka_unit_test(test_bad_setting_refused),
        cmocka_unit_test(test_decode_bytes_match_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
