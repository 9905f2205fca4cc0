/* The forward pass on the project's own synthetic models (no ../shared needed): against the
 * naive float implementation in tests/support on several shapes (head_dim 64 and 128, GQA
 * ratios 1, 2 and 4, 1..3 layers), invariance to batch size and threads over positions past
 * the 32/64-cell boundaries of the attention, cache rollback, and the API's refusals. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "forward.h"
#include "naive_forward.h"
#include "synthetic_model.h"
#include "testdata.h"

typedef struct shape {
    uint32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab;
} shape;

/* head_dim = n_embd / n_head; GQA ratio = n_head / n_head_kv */
static const shape shapes[] = {
    {256, 1, 4, 4, 384, 320}, /* hd 64, GQA 1, one layer */
    {256, 2, 2, 1, 512, 300}, /* hd 128, GQA 2 */
    {512, 3, 4, 1, 640, 512}, /* hd 128, GQA 4, three layers */
    {512, 2, 8, 2, 768, 400}, /* hd 64, GQA 4 */
    {384, 3, 6, 6, 384, 288}, /* hd 64, GQA 1, three layers */
};

static char *write_model(const shape *s, uint64_t seed)
{
    bn_synth_params p;
    bn_synth_defaults(&p);
    p.n_embd = s->n_embd;
    p.n_layer = s->n_layer;
    p.n_head = s->n_head;
    p.n_head_kv = s->n_head_kv;
    p.n_ff = s->n_ff;
    p.n_vocab = s->n_vocab;
    p.n_ctx = 256;
    p.seed = seed;
    char *path = bn_test_tmpfile(".gguf");
    bn_err err = {0};
    if (bn_synth_write(&p, path, &err))
        fail_msg("%s", err.msg);
    return path;
}

static const char *default_path; /* the automatic kernel choice, recorded in main() */

static bn_model *load_on(const char *kernel, const char *path)
{
    if (bn_kernels_select(kernel))
        fail_msg("kernel path %s not available", kernel);
    bn_model *m = bn_test_load_model(path);
    assert_string_equal(m->kernels->name, kernel);
    return m;
}

enum {
    N_NAIVE = 70
}; /* past 64 positions: probs.V takes both summation branches */

/* The naive implementation in ggml's summation order against the scalar path: every logit of
 * every shape bit-identical. Any slip in head mapping, masks, RoPE, cache layout, batching or
 * the precision steps shows here. */
static void test_naive_exact(void **state)
{
    (void)state;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        const shape *s = &shapes[si];
        char *path = write_model(s, 100 + si);
        bn_model *m = load_on("scalar", path);
        int32_t tok[N_NAIVE];
        bn_test_rand_tokens((uint32_t)si, tok, N_NAIVE, s->n_vocab);
        const size_t bytes = (size_t)N_NAIVE * s->n_vocab * sizeof(float);
        float *ref = malloc(bytes);
        assert_non_null(ref);
        assert_int_equal(bn_naive_forward(m, tok, N_NAIVE, ref, 1), 0);
        float *ours = bn_test_forward_all(m, tok, N_NAIVE, 128, 16, 2);
        for (size_t i = 0; i < bytes / sizeof(float); i++)
            if (memcmp(&ours[i], &ref[i], sizeof(float)))
                fail_msg("shape %zu: row %zu logit %zu: %.9g, naive %.9g", si, i / s->n_vocab,
                         i % s->n_vocab, ours[i], ref[i]);
        free(ours);
        free(ref);
        bn_model_free(m);
        unlink(path);
        free(path);
    }
}

/* The plainest naive reading (sequential sums, libm expf) against the default kernel path:
 * only float summation order differs, which is invisible until one int8 or f16 rounding flips
 * and moves later rows by ~1e-2 (FORMAT.md 4.9, src/EXACTNESS.md; a flip in K or V persists
 * in the cache). */
static void test_naive_plain(void **state)
{
    (void)state;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        const shape *s = &shapes[si];
        char *path = write_model(s, 100 + si);
        bn_model *m = load_on(default_path, path);
        int32_t tok[N_NAIVE];
        bn_test_rand_tokens((uint32_t)si, tok, N_NAIVE, s->n_vocab);
        float *ref = malloc((size_t)N_NAIVE * s->n_vocab * sizeof *ref);
        assert_non_null(ref);
        assert_int_equal(bn_naive_forward(m, tok, N_NAIVE, ref, 0), 0);
        float *ours = bn_test_forward_all(m, tok, N_NAIVE, 128, 16, 1);
        double worst = 0;
        int within = 0, argmax_same = 0;
        for (uint32_t r = 0; r < N_NAIVE; r++) {
            const float *a = ours + (size_t)r * s->n_vocab, *b = ref + (size_t)r * s->n_vocab;
            double num = 0, den = 0;
            for (uint32_t i = 0; i < s->n_vocab; i++) {
                assert_true(isfinite(a[i]));
                num = fmax(num, fabs((double)a[i] - b[i]));
                den = fmax(den, fabs((double)b[i]));
            }
            const double e = num / den;
            worst = fmax(worst, e);
            within += e <= 1e-3;
            argmax_same += bn_test_argmax(a, s->n_vocab) == bn_test_argmax(b, s->n_vocab);
            if (e > 5e-2)
                fail_msg("shape %zu row %u: relative error %.3g vs naive", si, r, e);
        }
        print_message("[%s] shape %zu (embd %u, hd %u, gqa %u, layers %u): max rel err %.3g, "
                      "%d/%d rows within 1e-3, argmax equal on %d\n",
                      default_path, si, s->n_embd, s->n_embd / s->n_head, s->n_head / s->n_head_kv,
                      s->n_layer, worst, within, N_NAIVE, argmax_same);
        assert_true(argmax_same * 10 >= N_NAIVE * 9);
        free(ours);
        free(ref);
        bn_model_free(m);
        unlink(path);
        free(path);
    }
}

/* Batches of 1, 5, 33, all, and 2/3 threads: bit-identical over 100 positions (the causal
 * masks and the 32-cell padding cross batch boundaries). */
static void test_batch_thread_invariance(void **state)
{
    (void)state;
    enum {
        N = 100
    };
    const shape *s = &shapes[3];
    char *path = write_model(s, 7);
    bn_model *m = bn_test_load_model(path);
    int32_t tok[N];
    bn_test_rand_tokens(9, tok, N, s->n_vocab);
    const size_t bytes = (size_t)N * s->n_vocab * sizeof(float);
    float *base = bn_test_forward_all(m, tok, N, 128, 1, 1);
    const uint32_t batches[] = {5, 33, N};
    for (size_t i = 0; i < 3; i++) {
        float *o = bn_test_forward_all(m, tok, N, 128, batches[i], 1);
        if (memcmp(o, base, bytes))
            fail_msg("n_batch %u differs from token by token", batches[i]);
        free(o);
    }
    for (int th = 2; th <= 3; th++) {
        float *o = bn_test_forward_all(m, tok, N, 128, 33, th);
        if (memcmp(o, base, bytes))
            fail_msg("%d threads differ from 1", th);
        free(o);
    }
    free(base);
    bn_model_free(m);
    unlink(path);
    free(path);
}

/* Rolling the cache back and evaluating other tokens gives the logits of a fresh context. */
static void test_set_pos_rollback(void **state)
{
    (void)state;
    const shape *s = &shapes[0];
    char *path = write_model(s, 11);
    bn_model *m = bn_test_load_model(path);
    const uint32_t nv = s->n_vocab;
    int32_t a[40], b[40];
    bn_test_rand_tokens(1, a, 40, nv);
    memcpy(b, a, sizeof a);
    bn_test_rand_tokens(2, b + 20, 20, nv); /* same first 20 tokens, different tail */
    float *fresh = bn_test_forward_all(m, b, 40, 128, 40, 1);

    bn_err err = {0};
    bn_context *c = bn_context_create(m, 64, 8, NULL, &err);
    assert_non_null(c);
    float *out = malloc(20 * nv * sizeof *out);
    assert_int_equal(bn_forward(c, a, 40, NULL, 0, &err), 0);
    assert_int_equal(bn_context_pos(c), 40);
    bn_context_set_pos(c, 20);
    assert_int_equal(bn_context_pos(c), 20);
    bn_context_set_pos(c, 30); /* cannot move forward */
    assert_int_equal(bn_context_pos(c), 20);
    assert_int_equal(bn_forward(c, b + 20, 20, out, 20, &err), 0);
    assert_memory_equal(out, fresh + 20 * nv, 20 * nv * sizeof *out);
    /* n_logits < n: the last rows only */
    bn_context_set_pos(c, 0);
    assert_int_equal(bn_forward(c, b, 40, out, 3, &err), 0);
    assert_memory_equal(out, fresh + 37 * nv, 3 * nv * sizeof *out);

    free(out);
    free(fresh);
    bn_context_free(c);
    bn_model_free(m);
    unlink(path);
    free(path);
}

static void test_refusals(void **state)
{
    (void)state;
    const shape *s = &shapes[0];
    char *path = write_model(s, 13);
    bn_model *m = bn_test_load_model(path);
    bn_err err = {0};
    assert_null(bn_context_create(m, 0, 1, NULL, &err));
    assert_non_null(strstr(err.msg, "context length"));
    assert_null(bn_context_create(m, 16, 0, NULL, &err));
    assert_non_null(strstr(err.msg, "batch"));
    assert_null(bn_context_create(m, 0xffffffffu, 1, NULL, &err));

    bn_context *c = bn_context_create(m, 16, 4, NULL, &err);
    assert_non_null(c);
    assert_int_equal(bn_context_n_batch(c), 4);
    int32_t tok[20];
    bn_test_rand_tokens(3, tok, 20, s->n_vocab);
    float *logits = malloc(20 * s->n_vocab * sizeof *logits);

    assert_int_equal(bn_forward(c, tok, 0, NULL, 0, &err), -1);
    assert_non_null(strstr(err.msg, "no tokens"));
    assert_int_equal(bn_forward(c, tok, 2, logits, 3, &err), -1);
    int32_t bad[3] = {1, (int32_t)s->n_vocab, 2};
    assert_int_equal(bn_forward(c, bad, 3, NULL, 0, &err), -1);
    assert_non_null(strstr(err.msg, "out of range"));
    bad[1] = -1;
    assert_int_equal(bn_forward(c, bad, 3, NULL, 0, &err), -1);
    assert_int_equal(bn_context_pos(c), 0); /* nothing was evaluated */

    assert_int_equal(bn_forward(c, tok, 17, NULL, 0, &err), -1);
    assert_non_null(strstr(err.msg, "context full"));
    assert_non_null(strstr(err.msg, "16"));
    assert_int_equal(bn_forward(c, tok, 10, logits, 1, &err), 0);
    assert_int_equal(bn_forward(c, tok, 7, logits, 1, &err), -1);
    assert_non_null(strstr(err.msg, "context full"));
    assert_int_equal(bn_context_pos(c), 10);
    assert_int_equal(bn_forward(c, tok, 6, logits, 6, &err), 0); /* exactly full */
    assert_int_equal(bn_context_pos(c), 16);
    assert_int_equal(bn_forward(c, tok, 1, logits, 1, &err), -1);

    free(logits);
    bn_context_free(c);
    bn_context_free(NULL);
    bn_model_free(m);
    unlink(path);
    free(path);
}

int main(void)
{
    default_path = bn_kernels_get()->name;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_naive_exact),
        cmocka_unit_test(test_naive_plain),
        cmocka_unit_test(test_batch_thread_invariance),
        cmocka_unit_test(test_set_pos_rollback),
        cmocka_unit_test(test_refusals),
    };
    if (getenv("BN_TEST_FILTER")) /* e.g. BN_TEST_FILTER='test_naive*' */
        cmocka_set_test_filter(getenv("BN_TEST_FILTER"));
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
