/* Which tokens the repeat penalty sees during bn_generate: the prompt's and the sampled ones,
 * the last repeat_last_n of them, or all of them with -1 (llama.cpp: the whole context).
 *
 * Every evaluated row of logits is captured (on_logits), and each sampled token is predicted
 * independently: the penalty applied by hand to the captured row over the window of
 * (prompt + tokens sampled so far), then greedy. The same prediction with the prompt left out,
 * with the sampled tokens left out, or with a 64-token window must disagree with the engine at
 * least once, so each membership rule is observed, not assumed. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bitnet.h"
#include "synthetic_model.h"
#include "testutil.h"

static char *model_path;

typedef struct rows {
    float *v;
    size_t n, cap;
    uint32_t n_vocab;
} rows;

static int keep_row(void *user, const float *logits, uint32_t n_vocab)
{
    rows *r = user;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->v = realloc(r->v, r->cap * n_vocab * sizeof *r->v);
        assert_non_null(r->v);
    }
    memcpy(r->v + r->n * n_vocab, logits, n_vocab * sizeof *logits);
    r->n_vocab = n_vocab;
    r->n++;
    return 0;
}

enum {
    FROM_PROMPT = 1,
    FROM_OUTPUT = 2
};

/* llama.cpp's penalty over the window, written out plainly, then the first maximum. hist[0..n)
 * = prompt (n_prompt tokens) then sampled tokens; `which` selects what may enter. */
static int32_t predict(const float *row, uint32_t n_vocab, const int32_t *hist, size_t n,
                       size_t n_prompt, int32_t last_n, float pen, int which)
{
    float *l = malloc(n_vocab * sizeof *l);
    uint8_t *done = calloc(n_vocab, 1);
    memcpy(l, row, n_vocab * sizeof *l);
    size_t from = last_n < 0 || (size_t)last_n >= n ? 0 : n - (size_t)last_n;
    for (size_t i = from; i < n; i++) {
        int32_t t = hist[i];
        int member = i < n_prompt ? FROM_PROMPT : FROM_OUTPUT;
        if (!(which & member) || done[t])
            continue;
        done[t] = 1;
        l[t] = l[t] > 0 ? l[t] / pen : l[t] * pen;
    }
    uint32_t best = 0;
    for (uint32_t i = 1; i < n_vocab; i++)
        if (l[i] > l[best])
            best = i;
    free(l);
    free(done);
    return (int32_t)best;
}

/* A prompt that repeats a few ids, so that greedy decoding meets them. */
static void make_prompt(int32_t *p, size_t n)
{
    static const int32_t words[] = {1, 60, 7, 200, 33, 9, 60, 7, 41, 200};
    for (size_t i = 0; i < n; i++)
        p[i] = words[(i * 7 + i / 10) % 10];
}

typedef struct run_result {
    rows r;
    int32_t *hist; /* prompt + output */
    size_t n_prompt, n;
} run_result;

static void generate(int32_t last_n, float pen, size_t n_prompt, int n_predict, run_result *out)
{
    bn_err err = {0};
    bn_engine *e = bn_engine_open(model_path, NULL, &err);
    if (!e)
        fail_msg("bn_engine_open: %s", err.msg);
    bn_session_params sp = {.n_ctx = 256, .n_threads = 1};
    bn_session *s = bn_session_create(e, &sp, &err);
    assert_non_null(s);
    int32_t *prompt = malloc(n_prompt * sizeof *prompt);
    make_prompt(prompt, n_prompt);
    memset(out, 0, sizeof *out);
    bn_generate_params g = bn_generate_default();
    g.prompt_ids = prompt;
    g.n_prompt_ids = n_prompt;
    g.n_predict = n_predict;
    g.sampling.temp = 0.0f;
    g.sampling.repeat_penalty = pen;
    g.sampling.repeat_last_n = last_n;
    g.on_logits = keep_row;
    g.user = &out->r;
    if (bn_generate(s, &g, NULL, &err))
        fail_msg("bn_generate: %s", err.msg);
    size_t n_out = 0;
    const int32_t *ids = bn_session_output_ids(s, &n_out);
    out->hist = malloc((n_prompt + n_out) * sizeof *out->hist);
    memcpy(out->hist, prompt, n_prompt * sizeof *prompt);
    memcpy(out->hist + n_prompt, ids, n_out * sizeof *ids);
    out->n_prompt = n_prompt;
    out->n = n_prompt + n_out;
    free(prompt);
    bn_session_free(s);
    bn_engine_free(e);
}

/* Sampled token j came from row n_prompt - 1 + j with the history hist[0..n_prompt + j). */
static int count_mismatches(const run_result *x, int32_t last_n, float pen, int which)
{
    int bad = 0;
    for (size_t j = 0; x->n_prompt + j < x->n; j++) {
        const float *row = x->r.v + (x->n_prompt - 1 + j) * x->r.n_vocab;
        int32_t want = predict(row, x->r.n_vocab, x->hist, x->n_prompt + j, x->n_prompt, last_n,
                               pen, which);
        bad += want != x->hist[x->n_prompt + j];
    }
    return bad;
}

static void free_result(run_result *x)
{
    free(x->r.v);
    free(x->hist);
}

/* The whole context (-1): every prompt and sampled token is in the window. */
static void test_whole_context_window(void **state)
{
    (void)state;
    const float pen = 3.0f;
    run_result x;
    generate(-1, pen, 8, 64, &x);
    assert_int_equal(count_mismatches(&x, -1, pen, FROM_PROMPT | FROM_OUTPUT), 0);
    /* each membership rule matters on this run (8 prompt + 64 sampled tokens: a 64-token
     * window drops the first prompt tokens) */
    assert_true(count_mismatches(&x, -1, pen, FROM_OUTPUT) > 0);
    assert_true(count_mismatches(&x, -1, pen, FROM_PROMPT) > 0);
    assert_true(count_mismatches(&x, 64, pen, FROM_PROMPT | FROM_OUTPUT) > 0);
    assert_true(count_mismatches(&x, -1, 1.0f, FROM_PROMPT | FROM_OUTPUT) > 0);
    free_result(&x);
}

/* A finite window slides over the prompt into the output. */
static void test_last_n_window(void **state)
{
    (void)state;
    const float pen = 3.0f;
    const int32_t windows[] = {1, 4, 16, 64};
    for (size_t w = 0; w < sizeof windows / sizeof *windows; w++) {
        run_result x;
        generate(windows[w], pen, 8, 64, &x);
        int bad = count_mismatches(&x, windows[w], pen, FROM_PROMPT | FROM_OUTPUT);
        if (bad)
            fail_msg("last-n %d: %d tokens differ from the hand-applied penalty", windows[w], bad);
        if (windows[w] < 16) /* shorter windows than the run's repeats: the length matters */
            assert_true(count_mismatches(&x, -1, pen, FROM_PROMPT | FROM_OUTPUT) > 0);
        free_result(&x);
    }
}

/* 0 switches the penalty off however strong it is. */
static void test_zero_window_is_off(void **state)
{
    (void)state;
    run_result x;
    generate(0, 3.0f, 8, 64, &x);
    assert_int_equal(count_mismatches(&x, -1, 1.0f, FROM_PROMPT | FROM_OUTPUT), 0);
    free_result(&x);
}

static size_t greedy_ids(bn_session *s, const int32_t *prompt, size_t n_prompt, float pen,
                         int n_predict, int32_t *out, bn_stats *st)
{
    bn_err err = {0};
    bn_generate_params g = bn_generate_default();
    g.prompt_ids = prompt;
    g.n_prompt_ids = n_prompt;
    g.n_predict = n_predict;
    g.sampling.temp = 0.0f;
    g.sampling.repeat_penalty = pen;
    g.sampling.repeat_last_n = -1;
    if (bn_generate(s, &g, st, &err))
        fail_msg("bn_generate: %s", err.msg);
    size_t n = 0;
    const int32_t *ids = bn_session_output_ids(s, &n);
    assert_true(n <= (size_t)n_predict);
    memcpy(out, ids, n * sizeof *ids);
    return n;
}

/* Prompt tokens reused from the KV cache (a second request sharing the prompt: only the new
 * tail is evaluated) still enter the penalty window: the answer equals the first one. The
 * prompt is made of tokens the model itself picks (its unpenalized greedy output), so that
 * penalizing them or not changes what it picks next. */
static void test_reused_prompt_tokens_in_window(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_engine *e = bn_engine_open(model_path, NULL, &err);
    if (!e)
        fail_msg("bn_engine_open: %s", err.msg);
    bn_session_params sp = {.n_ctx = 256, .n_threads = 1};
    bn_session *s = bn_session_create(e, &sp, &err);
    assert_non_null(s);
    enum {
        n_seed = 8,
        n_liked = 48,
        n_predict = 24
    };
    int32_t prompt[n_seed + n_liked], out[3][n_predict];
    bn_stats st;
    make_prompt(prompt, n_seed);
    size_t n_prompt = n_seed + greedy_ids(s, prompt, n_seed, 1.0f, n_liked, prompt + n_seed, &st);
    bn_session_reset(s);
    size_t n0 = greedy_ids(s, prompt, n_prompt, 1.5f, n_predict, out[0], &st);
    size_t n1 = greedy_ids(s, prompt, n_prompt, 1.5f, n_predict, out[1], &st);
    assert_true(st.prompt_eval < st.prompt_tokens); /* the second one reused the cache */
    assert_int_equal(n1, n0);
    assert_memory_equal(out[1], out[0], n0 * sizeof out[0][0]);
    /* the penalty changes this answer, so the comparison above means something */
    size_t n2 = greedy_ids(s, prompt, n_prompt, 1.0f, n_predict, out[2], &st);
    assert_true(n2 != n0 || memcmp(out[2], out[0], n0 * sizeof out[0][0]));
    bn_session_free(s);
    bn_engine_free(e);
}

static int setup(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_synth_params p;
    model_path = bn_test_tmpfile(".gguf");
    if (bn_synth_preset("tiny", &p, &err) || bn_synth_write(&p, model_path, &err)) {
        print_error("synthetic model: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(model_path);
    free(model_path);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_context_window),
        cmocka_unit_test(test_last_n_window),
        cmocka_unit_test(test_zero_window_is_off),
        cmocka_unit_test(test_reused_prompt_tokens_in_window),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
