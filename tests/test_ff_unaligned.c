/* Models whose n_ff is not a multiple of 128 (bitnet_b1_58-3B: 8640). llama-quantize packs
 * each I2_S tensor as one flat run of 128-weight blocks, so ffn_down's rows start inside a
 * block; the loader copies them row-aligned with zero-weight padding (model.c pad_rows) and the
 * forward pass zero-pads the int8 activations. Checked here: the writer's flat layout against
 * its own F32 twin, the engine against the naive float implementation (which decodes the
 * file's flat layout itself), every kernel path bit-identical, thread and batch invariance. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "forward.h"
#include "gguf.h"
#include "naive_forward.h"
#include "synthetic_model.h"
#include "testdata.h"

typedef struct shape {
    uint32_t n_embd, n_layer, n_head, n_ff, n_vocab;
} shape;

/* 320 = 2.5 blocks (odd rows start mid-block), 192 = 1.5 blocks, 416 = 3.25 blocks (rows
 * start at every quarter of a block); n_embd a multiple of 256: an F16 LM head */
static const shape shapes[] = {
    {256, 2, 4, 320, 300},
    {256, 1, 2, 192, 288},
    {512, 1, 8, 416, 280},
};
enum {
    N_SHAPES = sizeof shapes / sizeof shapes[0],
    N_TOK = 40
};

static bn_synth_params params(const shape *s, uint64_t seed, int f32)
{
    bn_synth_params p;
    bn_synth_defaults(&p);
    snprintf(p.arch, sizeof p.arch, "bitnet");
    p.n_embd = s->n_embd;
    p.n_layer = s->n_layer;
    p.n_head = s->n_head;
    p.n_head_kv = s->n_head;
    p.n_ff = s->n_ff;
    p.n_vocab = s->n_vocab;
    p.n_ctx = 128;
    p.rope_theta = 10000.0f;
    p.seed = seed;
    p.f32 = f32;
    return p;
}

static char *write_model(const shape *s, uint64_t seed, int f32)
{
    bn_synth_params p = params(s, seed, f32);
    char *path = bn_test_tmpfile(".gguf");
    bn_err err = {0};
    if (bn_synth_write(&p, path, &err))
        fail_msg("%s", err.msg);
    return path;
}

static bn_model *load_on(const char *kernel, const char *path)
{
    if (bn_kernels_select(kernel))
        fail_msg("kernel path %s not available", kernel);
    bn_model *m = bn_test_load_model(path);
    assert_string_equal(m->kernels->name, kernel);
    return m;
}

/* The I2_S file's ternary tensors, read in the flat layout, are the F32 twin's weights
 * (scale * {-1, 0, +1}) with the same scale: the writer packs across row ends as
 * llama-quantize does (its quantize_i2_s on the F32 twin gives these bytes: README "Models"). */
static void test_flat_layout_matches_f32_twin(void **state)
{
    (void)state;
    for (size_t si = 0; si < N_SHAPES; si++) {
        char *qpath = write_model(&shapes[si], 40 + si, 0);
        char *fpath = write_model(&shapes[si], 40 + si, 1);
        bn_err err = {0};
        bn_gguf *q = bn_gguf_open(qpath, &err), *f = bn_gguf_open(fpath, &err);
        assert_non_null(q);
        assert_non_null(f);
        size_t checked = 0;
        for (uint64_t i = 0; i < q->n_tensors; i++) {
            const bn_gguf_tensor *tq = &q->tensors[i];
            if (tq->type != BN_GGML_I2_S)
                continue;
            const bn_gguf_tensor *tf = bn_gguf_find_tensor(f, tq->name);
            assert_non_null(tf);
            assert_int_equal(tf->type, BN_GGML_F32);
            const uint64_t k = tq->ne[0], rows = tq->ne[1];
            assert_int_equal(tf->ne[0], k);
            float scale;
            memcpy(&scale, (const uint8_t *)tq->data + k * rows / 4, sizeof scale);
            const float *w = tf->data;
            for (uint64_t r = 0; r < rows; r++)
                for (uint64_t c = 0; c < k; c++) {
                    const float want = (float)bn_naive_ternary_at(tq->data, k, r, c) * scale;
                    if (w[r * k + c] != want)
                        fail_msg("%s [%llu, %llu]: I2_S %g, F32 %g", tq->name,
                                 (unsigned long long)r, (unsigned long long)c, (double)want,
                                 (double)w[r * k + c]);
                }
            checked += k % 128 != 0;
        }
        assert_int_equal(checked, shapes[si].n_layer); /* every ffn_down */
        bn_gguf_close(q);
        bn_gguf_close(f);
        unlink(qpath);
        unlink(fpath);
        free(qpath);
        free(fpath);
    }
}

/* The engine (default kernel path) on the model at PATH against the naive float forward pass
 * on the same file: only summation order and libm vs ggml expf differ, so every row is within
 * float tolerance and the greedy tokens agree. Reading the rows as if each started on a block
 * boundary (the reference's misreading) or dropping the last n_ff % 128 weights moves logits
 * by far more (relative error > 1). */
static void check_against_naive(const char *path, uint64_t seed)
{
    const char *kernel = bn_kernels_get()->name;
    bn_model *m = load_on(kernel, path);
    const uint32_t nv = m->hp.n_vocab, ff = m->hp.n_ff;
    assert_int_not_equal(ff % 128, 0);
    assert_int_equal(m->layers[0].w_down.k, (ff + 127) / 128 * 128);
    int32_t tok[N_TOK];
    bn_test_rand_tokens(seed, tok, N_TOK, nv);
    float *ref = malloc((size_t)N_TOK * nv * sizeof *ref);
    assert_non_null(ref);
    assert_int_equal(bn_naive_forward(m, tok, N_TOK, ref, 0), 0);
    float *ours = bn_test_forward_all(m, tok, N_TOK, 64, 8, 1);
    double worst = 0;
    int argmax_same = 0;
    for (uint32_t r = 0; r < N_TOK; r++) {
        const float *a = ours + (size_t)r * nv, *b = ref + (size_t)r * nv;
        double num = 0, den = 0;
        for (uint32_t i = 0; i < nv; i++) {
            assert_true(isfinite(a[i]));
            num = fmax(num, fabs((double)a[i] - b[i]));
            den = fmax(den, fabs((double)b[i]));
        }
        worst = fmax(worst, num / den);
        argmax_same += bn_test_argmax(a, nv) == bn_test_argmax(b, nv);
        if (num / den > 5e-2)
            fail_msg("n_ff %u row %u: relative error %.3g vs naive", ff, r, num / den);
    }
    print_message("[%s] n_ff %u: max rel err %.3g vs naive, argmax equal on %d/%d\n", kernel, ff,
                  worst, argmax_same, N_TOK);
    assert_true(argmax_same * 10 >= N_TOK * 9);
    free(ours);
    free(ref);
    bn_model_free(m);
}

static void test_matches_naive(void **state)
{
    (void)state;
    for (size_t si = 0; si < N_SHAPES; si++) {
        char *path = write_model(&shapes[si], 40 + si, 0);
        check_against_naive(path, si);
        unlink(path);
        free(path);
    }
}

/* tests/data/models/tiny-bitnet-ff320.gguf: made by the reference's own llama-quantize from
 * bitnet-make-model's F32 file (tests/data/README.md). The writer's I2_S file is the same
 * bytes except the 28 leftover bytes after each I2_S scale (the reference leaves its work
 * buffer there), so the flat layout across row ends is the reference quantizer's; and the
 * engine runs the reference-quantized file as the naive implementation does. */
static void test_reference_quantized_file(void **state)
{
    (void)state;
    char *rpath = bn_test_data("models/tiny-bitnet-ff320.gguf");
    /* what bitnet-make-model --arch bitnet --n-embd 256 --n-layer 1 --n-head 4 --n-head-kv 4
       --n-ff 320 --n-vocab 300 writes: the defaults plus that shape */
    bn_synth_params p;
    bn_synth_defaults(&p);
    snprintf(p.arch, sizeof p.arch, "bitnet");
    p.n_embd = 256;
    p.n_layer = 1;
    p.n_head = p.n_head_kv = 4;
    p.n_ff = 320;
    p.n_vocab = 300;
    char *opath = bn_test_tmpfile(".gguf");
    bn_err err = {0};
    if (bn_synth_write(&p, opath, &err))
        fail_msg("%s", err.msg);
    bn_gguf *r = bn_gguf_open(rpath, &err), *o = bn_gguf_open(opath, &err);
    assert_non_null(r);
    assert_non_null(o);
    assert_int_equal(r->size, o->size);
    uint8_t *skip = calloc(r->size, 1); /* 1 = leftover byte of an I2_S tensor */
    assert_non_null(skip);
    int unaligned = 0;
    for (uint64_t i = 0; i < r->n_tensors; i++) {
        const bn_gguf_tensor *t = &r->tensors[i];
        if (t->type != BN_GGML_I2_S)
            continue;
        const size_t at = (size_t)((const uint8_t *)t->data - r->base) + t->ne[0] * t->ne[1] / 4;
        memset(skip + at + 4, 1, 28);
        unaligned += t->ne[0] % 128 != 0;
    }
    assert_int_equal(unaligned, 1);
    for (size_t i = 0; i < r->size; i++)
        if (!skip[i] && r->base[i] != o->base[i])
            fail_msg("byte %zu: reference 0x%02x, bitnet-make-model 0x%02x", i, r->base[i],
                     o->base[i]);
    free(skip);
    bn_gguf_close(r);
    bn_gguf_close(o);
    check_against_naive(rpath, 99);
    unlink(opath);
    free(opath);
    free(rpath);
}

/* Every kernel path this CPU runs, any thread count and batch size: the same logits bit for
 * bit as the scalar path on one thread (so the same greedy tokens). */
static void test_paths_threads_identical(void **state)
{
    (void)state;
    for (size_t si = 0; si < N_SHAPES; si++) {
        const shape *s = &shapes[si];
        char *path = write_model(s, 40 + si, 0);
        int32_t tok[N_TOK];
        bn_test_rand_tokens(7 + si, tok, N_TOK, s->n_vocab);
        bn_model *m = load_on("scalar", path);
        float *want = bn_test_forward_all(m, tok, N_TOK, 64, 1, 1);
        bn_model_free(m);
        const size_t n = (size_t)N_TOK * s->n_vocab;
        int paths = 0;
        for (const char *const *name = bn_kernels_all_names(); *name; name++) {
            if (!bn_kernels_by_name(*name))
                continue;
            paths++;
            m = load_on(*name, path);
            static const struct {
                uint32_t batch;
                int threads;
            } runs[] = {{1, 1}, {N_TOK, 2}, {7, 3}};
            for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
                float *got = bn_test_forward_all(m, tok, N_TOK, 64, runs[i].batch, runs[i].threads);
                for (size_t j = 0; j < n; j++)
                    if (memcmp(&got[j], &want[j], sizeof *got))
                        fail_msg("%s n_ff %u batch %u threads %d: row %zu logit %zu: %.9g, "
                                 "scalar %.9g",
                                 *name, s->n_ff, runs[i].batch, runs[i].threads, j / s->n_vocab,
                                 j % s->n_vocab, (double)got[j], (double)want[j]);
                free(got);
            }
            bn_model_free(m);
        }
        print_message("n_ff %u: %d kernel paths bit-identical\n", s->n_ff, paths);
        free(want);
        unlink(path);
        free(path);
    }
}

/* The bitnet-3b preset is bitnet_b1_58-3B's config.json shape (README "Models"); the full
 * file (917 MB) is generated and run by hand (README), not here. */
static void test_bitnet_3b_preset(void **state)
{
    (void)state;
    bn_test_preset_shape("bitnet-3b", "bitnet", 3200, 26, 32, 32, 8640, 32002);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flat_layout_matches_f32_twin),
        cmocka_unit_test(test_matches_naive),
        cmocka_unit_test(test_reference_quantized_file),
        cmocka_unit_test(test_paths_threads_identical),
        cmocka_unit_test(test_bitnet_3b_preset),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
