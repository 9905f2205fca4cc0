#include "testdata.h"

#include "testutil.h"

#include <stdlib.h>

#include "synthetic_model.h"

uint32_t bn_test_argmax(const float *x, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return (uint32_t)best;
}

bn_test_rng bn_test_seed(uint64_t seed)
{
    return (bn_test_rng){(seed + 1) * 0x9e3779b97f4a7c15ull};
}

uint32_t bn_test_rand(bn_test_rng *r)
{
    r->state ^= r->state << 13;
    r->state ^= r->state >> 7;
    r->state ^= r->state << 17;
    return (uint32_t)(r->state >> 11);
}

float bn_test_rand_float(bn_test_rng *r, float amp)
{
    return ((float)(bn_test_rand(r) % 2000001) / 1000000.0f - 1.0f) * amp;
}

void bn_test_rand_tokens(uint64_t seed, int32_t *ids, size_t n, uint32_t n_vocab)
{
    bn_test_rng r = bn_test_seed(seed);
    for (size_t i = 0; i < n; i++)
        ids[i] = (int32_t)(bn_test_rand(&r) % n_vocab);
}

char *bn_test_preset_file(const char *preset)
{
    bn_err err = {0};
    bn_synth_params p;
    char *path = bn_test_tmpfile(".gguf");
    if (bn_synth_preset(preset, &p, &err) || bn_synth_write(&p, path, &err))
        fail_msg("preset %s: %s", preset, err.msg);
    return path;
}

bn_model *bn_test_load_model(const char *path)
{
    bn_err err = {0};
    bn_model *m = bn_model_load(path, &err);
    if (!m)
        fail_msg("%s", err.msg);
    return m;
}

bn_test_ctx bn_test_context(const bn_model *m, uint32_t n_ctx, uint32_t n_batch, int threads)
{
    bn_err err = {0};
    bn_test_ctx t = {NULL, NULL};
    if (threads > 1 && !(t.pool = bn_threadpool_create(threads, &err)))
        fail_msg("%s", err.msg);
    if (!(t.c = bn_context_create(m, n_ctx, n_batch, t.pool, &err)))
        fail_msg("%s", err.msg);
    return t;
}

void bn_test_context_free(bn_test_ctx *t)
{
    bn_context_free(t->c);
    bn_threadpool_free(t->pool);
    t->c = NULL;
    t->pool = NULL;
}

float *bn_test_forward_all(const bn_model *m, const int32_t *tokens, uint32_t n, uint32_t n_ctx,
                           uint32_t n_batch, int threads)
{
    bn_err err = {0};
    bn_test_ctx t = bn_test_context(m, n_ctx, n_batch, threads);
    float *out = malloc((size_t)n * m->hp.n_vocab * sizeof *out);
    assert_non_null(out);
    if (bn_forward(t.c, tokens, n, out, n, &err))
        fail_msg("%s", err.msg);
    bn_test_context_free(&t);
    return out;
}

bn_synth_params bn_test_preset_shape(const char *preset, const char *arch, uint32_t n_embd,
                                     uint32_t n_layer, uint32_t n_head, uint32_t n_head_kv,
                                     uint32_t n_ff, uint32_t n_vocab)
{
    bn_synth_params p;
    bn_err err = {0};
    if (bn_synth_preset(preset, &p, &err))
        fail_msg("preset %s: %s", preset, err.msg);
    assert_string_equal(p.arch, arch);
    assert_int_equal(p.n_embd, n_embd);
    assert_int_equal(p.n_layer, n_layer);
    assert_int_equal(p.n_head, n_head);
    assert_int_equal(p.n_head_kv, n_head_kv);
    assert_int_equal(p.n_ff, n_ff);
    assert_int_equal(p.n_vocab, n_vocab);
    assert_int_equal(bn_synth_check(&p, &err), 0);
    return p;
}
