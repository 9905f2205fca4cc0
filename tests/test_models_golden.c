/* The "bitnet" and "llama" architectures against the reference's golden logits
 * (tests/data/models: tiny synthetic models quantized by the reference's own llama-quantize,
 * logits token by token from its llama.h; README there). On every kernel path this CPU can
 * run: every teacher-forced row bit-identical, the greedy continuation identical, and logits
 * independent of the batch size and the thread count. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "golden.h"
#include "model.h"
#include "threadpool.h"

enum {
    N_CTX = 512
};

static uint32_t argmax(const float *x, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static bn_model *load_with(const char *kernel, const char *path)
{
    if (bn_kernels_select(kernel) != 0)
        fail_msg("kernel path %s not selectable", kernel);
    bn_err err = {0};
    bn_model *m = bn_model_load(path, &err);
    if (!m)
        fail_msg("%s", err.msg);
    assert_ptr_equal(m->kernels, bn_kernels_by_name(kernel));
    return m;
}

/* Logits of every token of seq[0..n), in batches of n_batch, on `threads` threads. */
static float *run_all(const bn_model *m, const int32_t *seq, uint32_t n, uint32_t n_batch,
                      int threads)
{
    bn_err err = {0};
    bn_threadpool *tp = NULL;
    if (threads > 1 && !(tp = bn_threadpool_create(threads, &err)))
        fail_msg("%s", err.msg);
    bn_context *c = bn_context_create(m, N_CTX, n_batch, tp, &err);
    if (!c)
        fail_msg("%s", err.msg);
    float *out = malloc((size_t)n * m->hp.n_vocab * sizeof *out);
    assert_non_null(out);
    if (bn_forward(c, seq, n, out, n, &err))
        fail_msg("%s", err.msg);
    bn_context_free(c);
    bn_threadpool_free(tp);
    return out;
}

/* Free greedy run from the prompt: n ids (first maximum, as the reference). */
static void greedy_run(const bn_model *m, const bn_golden *g, int32_t *ids, size_t n)
{
    bn_err err = {0};
    bn_context *c = bn_context_create(m, N_CTX, 1, NULL, &err);
    if (!c)
        fail_msg("%s", err.msg);
    float *logits = malloc(g->n_vocab * sizeof *logits);
    assert_non_null(logits);
    if (bn_forward(c, g->prompt_ids, (uint32_t)g->n_prompt, logits, 1, &err))
        fail_msg("%s", err.msg);
    for (size_t j = 0; j < n; j++) {
        ids[j] = (int32_t)argmax(logits, g->n_vocab);
        if (j + 1 < n && bn_forward(c, &ids[j], 1, logits, 1, &err))
            fail_msg("%s", err.msg);
    }
    free(logits);
    bn_context_free(c);
}

static void check_model(const char *name, const char *arch, uint32_t lm_head_type)
{
    char rel_model[96], rel_golden[96];
    snprintf(rel_model, sizeof rel_model, "models/%s.gguf", name);
    snprintf(rel_golden, sizeof rel_golden, "models/%s.b1.json", name);
    char *mpath = bn_test_data(rel_model), *gpath = bn_test_data(rel_golden);
    bn_golden g;
    char msg[512];
    if (bn_golden_load(gpath, &g, msg, sizeof msg))
        fail_msg("%s", msg);
    assert_int_equal(g.n_batch, 1);
    /* the reference's teacher-forced sequence: the prompt, then its greedy tokens but the last */
    const uint32_t n = (uint32_t)(g.n_prompt + g.n_greedy - 1), nv = g.n_vocab;
    int32_t *seq = malloc(n * sizeof *seq);
    float *ref = malloc((size_t)n * nv * sizeof *ref);
    int32_t *ids = malloc(g.n_greedy * sizeof *ids);
    assert_true(seq && ref && ids);
    memcpy(seq, g.prompt_ids, g.n_prompt * sizeof *seq);
    memcpy(seq + g.n_prompt, g.greedy_ids, (g.n_greedy - 1) * sizeof *seq);
    memcpy(ref, g.prompt_logits, g.n_prompt * nv * sizeof *ref);
    memcpy(ref + g.n_prompt * nv, g.greedy_logits, (g.n_greedy - 1) * nv * sizeof *ref);

    int ran = 0;
    for (const char *const *k = bn_kernels_all_names(); *k; k++) {
        if (!bn_kernels_by_name(*k))
            continue;
        bn_model *m = load_with(*k, mpath);
        assert_string_equal(m->arch->name, arch);
        assert_int_equal(m->lm_head.type, lm_head_type);
        assert_int_equal(m->hp.n_vocab, nv);
        float *ours = run_all(m, seq, n, 1, 1);
        for (uint32_t r = 0; r < n; r++)
            for (uint32_t i = 0; i < nv; i++)
                if (ours[(size_t)r * nv + i] != ref[(size_t)r * nv + i])
                    fail_msg("%s [%s] row %u logit %u: %.9g, reference %.9g", name, *k, r, i,
                             (double)ours[(size_t)r * nv + i], (double)ref[(size_t)r * nv + i]);
        greedy_run(m, &g, ids, g.n_greedy);
        for (size_t j = 0; j < g.n_greedy; j++)
            if (ids[j] != g.greedy_ids[j])
                fail_msg("%s [%s] greedy token %zu: %d, reference %d", name, *k, j, ids[j],
                         g.greedy_ids[j]);
        /* batch size and thread count change nothing */
        const struct {
            uint32_t n_batch;
            int threads;
        } v[] = {{(uint32_t)g.n_prompt, 1}, {5, 2}, {16, 3}};
        for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
            float *o = run_all(m, seq, n, v[i].n_batch, v[i].threads);
            if (memcmp(o, ours, (size_t)n * nv * sizeof *o))
                fail_msg("%s [%s]: batches of %u on %d threads differ from token by token", name,
                         *k, v[i].n_batch, v[i].threads);
            free(o);
        }
        print_message("%-14s [%s] %u rows bit-identical, %zu greedy tokens identical\n", name, *k,
                      n, g.n_greedy);
        free(ours);
        bn_model_free(m);
        ran++;
    }
    assert_true(ran > 0);
    free(ids);
    free(ref);
    free(seq);
    bn_golden_free(&g);
    free(mpath);
    free(gpath);
}

/* "bitnet" (1bitLLM): sub-norms, SiLU, NEOX rope, tied LM head in Q8_0 (n_embd 384) */
static void test_bitnet_tied_q8_0(void **state)
{
    (void)state;
    check_model("tiny-bitnet", "bitnet", BN_GGML_Q8_0);
}

/* "llama" (Llama3-8B-1.58 layout): permuted Q/K (NORM rope), separate F16 output.weight */
static void test_llama_output_f16(void **state)
{
    (void)state;
    check_model("tiny-llama", "llama", BN_GGML_F16);
}

/* "llama" with Falcon3's hyper-parameters (head size 128, GQA 3, rope 1000042, eps 1e-6) and
 * a Q8_0 output.weight beside an F16 token_embd (n_embd 384) */
static void test_falcon3_output_q8_0(void **state)
{
    (void)state;
    check_model("tiny-falcon3", "llama", BN_GGML_Q8_0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bitnet_tied_q8_0),
        cmocka_unit_test(test_llama_output_f16),
        cmocka_unit_test(test_falcon3_output_q8_0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
