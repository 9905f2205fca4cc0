/* The screened LM head (src/model/lm_head.c) gives the sampler exactly what the full head gives
 * it, for every token it can draw:
 * - on random f16 heads (normal rows, rows with outliers, duplicated rows and rows one ulp
 *   apart, so that ties sit at the threshold) and activations (normal, with outliers, tiny,
 *   constant), the `keep` best rows that are not named and every named row are computed, and
 *   every computed row is bit-identical to the full head's;
 * - it declines (returns 0, logits untouched) when it cannot decide, and never screens out a
 *   row whose weights are not finite;
 * - end to end, >= 1000 seeded generations with BITNET_LM_HEAD=full and =screened give the same
 *   tokens across greedy and top-k 1..100, temperatures, top-p, min-p and repetition penalties,
 *   on the synthetic tiny model and the reference's tiny-a / tiny-b (skipped when ../shared is
 *   absent), and the screened engine did screen (so the comparison cannot pass vacuously).
 *   Under an emulator (BN_EMULATOR set: the aarch64 build under qemu, where the point is the
 *   NEON kernels, not the count) each model gets a tenth of the runs. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bitnet.h"
#include "kernels.h"
#include "lm_head.h"
#include "testdata.h"

static uint64_t rng_state = 0x853c49e6748fea9bull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}
static double rnd_unit(void) { return (rnd() % 1000001) / 1000000.0; }
static float rnd_normal(void)
{
    double u = rnd_unit() * 0.999998 + 1e-6, v = rnd_unit();
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* ------------------------------------------------------------------ the screen itself */

typedef struct head {
    uint32_t n, k;
    uint16_t *w;   /* f16 [n][k] */
    uint16_t *x16; /* the input in f16 */
} head;

static void head_row(const void *src, uint32_t r, float *out)
{
    const head *h = src;
    bn_f16_to_f32_row(h->w + (size_t)r * h->k, out, h->k);
}

static void head_exact(void *user, const int32_t *rows, size_t n, float *logits)
{
    const head *h = user;
    for (size_t i = 0; i < n; i++)
        bn_kernels_get()->matvec_f16(h->w, h->k, (size_t)rows[i], (size_t)rows[i] + 1, h->x16,
                                     logits);
}

/* Fills the head: kind 0 normal, 1 with outlier weights, 2 duplicates and one-ulp neighbours
 * of a few base rows (ties and near-ties at every threshold). */
static void fill_head(head *h, int kind)
{
    for (uint32_t r = 0; r < h->n; r++) {
        uint16_t *row = h->w + (size_t)r * h->k;
        if (kind == 2 && r >= 4) {
            memcpy(row, h->w + (size_t)(r % 4) * h->k, h->k * 2);
            if (r % 3 == 1)
                row[rnd() % h->k] ^= 1; /* one ulp off in one weight */
            continue;
        }
        for (uint32_t j = 0; j < h->k; j++) {
            float v = rnd_normal() * 0.05f;
            if (kind == 1 && rnd() % 97 == 0)
                v *= 40.0f;
            row[j] = bn_f32_to_f16(v);
        }
    }
}

static void fill_x(head *h, int kind)
{
    for (uint32_t j = 0; j < h->k; j++) {
        float v = rnd_normal() * 3.0f;
        if (kind == 1 && rnd() % 50 == 0)
            v *= 100.0f; /* activation outliers: a coarse int8 scale, a large ||dx|| */
        if (kind == 2)
            v *= 1e-4f; /* subnormal halves */
        if (kind == 3)
            v = 1.5f; /* constant: many rows tie when rows repeat */
        h->x16[j] = bn_f32_to_f16(v);
    }
}

/* Is row a before row b in the sampler's order (logit descending, id ascending)? */
static int before(const float *l, int32_t a, int32_t b)
{
    return l[a] > l[b] || (l[a] == l[b] && a < b);
}

/* The property the sampler needs, checked against the full head, with the screen on kern (the
 * path in use, or the same without matvec_i8x2: the int8 copy with a one-plane activation, as
 * on NEON). */
static void check_screen(bn_lm_screen *s, const bn_kernels *kern, head *h, uint32_t keep,
                         const int32_t *must, size_t n_must, size_t *computed_total)
{
    float *full = malloc(h->n * sizeof *full), *scr = malloc(h->n * sizeof *scr);
    uint8_t *named = calloc(h->n, 1);
    int32_t *order = malloc(h->n * sizeof *order);
    assert_true(full && scr && named && order);
    bn_kernels_get()->matvec_f16(h->w, h->k, 0, h->n, h->x16, full);
    float *x = malloc(h->k * sizeof *x);
    assert_non_null(x);
    bn_f16_to_f32_row(h->x16, x, h->k);
    for (uint32_t i = 0; i < h->n; i++)
        scr[i] = NAN; /* every row must be written: exact or -inf */
    bn_lm_request req = {keep, must, n_must};
    size_t got = bn_lm_screen_run(s, kern, NULL, x, bn_lm_f16_gamma(h->k), &req, head_exact, h,
                                  scr);
    assert_true(got > 0);
    size_t n_exact = 0;
    for (uint32_t i = 0; i < h->n; i++) {
        if (scr[i] == -INFINITY && full[i] != -INFINITY)
            continue;
        if (memcmp(&scr[i], &full[i], sizeof(float)))
            fail_msg("row %u: screened %.9g, full %.9g", i, scr[i], full[i]);
        n_exact++;
    }
    for (size_t i = 0; i < n_must; i++)
        if (must[i] >= 0 && (uint32_t)must[i] < h->n) {
            named[must[i]] = 1;
            if (scr[must[i]] != full[must[i]])
                fail_msg("named row %d not computed", must[i]);
        }
    /* the `keep` best unnamed rows of the full head (selection by the sampler's order) */
    uint32_t m = 0;
    for (uint32_t i = 0; i < h->n; i++)
        if (!named[i])
            order[m++] = (int32_t)i;
    for (uint32_t a = 0; a < keep && a < m; a++) {
        uint32_t best = a;
        for (uint32_t b = a + 1; b < m; b++)
            if (before(full, order[b], order[best]))
                best = b;
        int32_t t = order[a];
        order[a] = order[best];
        order[best] = t;
        if (memcmp(&scr[order[a]], &full[order[a]], sizeof(float)))
            fail_msg("keep %u: row %d (rank %u, logit %.9g) was screened out", keep, order[a], a,
                     full[order[a]]);
    }
    assert_true(n_exact >= got); /* rows computed are exact (a row's logit may be -inf too) */
    *computed_total += got;
    free(full);
    free(scr);
    free(named);
    free(order);
    free(x);
}

static void test_screen_keeps_what_the_sampler_needs(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_kernels one_plane = *bn_kernels_get();
    one_plane.matvec_i8x2 = NULL;
    for (int f = 0; f < 3; f++) {
        const bn_lm_format fmt = f == 2 ? BN_LM_U6 : BN_LM_I8;
        const bn_kernels *kern = f == 1 ? &one_plane : bn_kernels_get();
        size_t computed = 0, rows = 0;
        for (int kind = 0; kind < 3; kind++) {
            head h = {kind == 2 ? 200 : 300, kind == 1 ? 320 : 256, NULL, NULL};
            h.w = malloc((size_t)h.n * h.k * 2);
            h.x16 = malloc(h.k * 2);
            assert_true(h.w && h.x16);
            fill_head(&h, kind);
            bn_lm_compact *c = bn_lm_compact_build(h.n, h.k, fmt, head_row, NULL, &h, NULL, &err);
            assert_non_null(c);
            assert_int_equal(bn_lm_compact_rows(c), h.n);
            assert_int_equal(bn_lm_compact_format(c), fmt);
            assert_int_equal(bn_lm_compact_bytes(c),
                             (size_t)h.n * ((fmt == BN_LM_I8 ? h.k : bn_u6_row_bytes(h.k)) + 16));
            bn_lm_screen *s = bn_lm_screen_create(c, &err);
            assert_non_null(s);
            for (int trial = 0; trial < 60; trial++) {
                fill_x(&h, trial % 4);
                const uint32_t keep = trial % 5 == 0 ? 1 : 1 + rnd() % 40;
                int32_t must[24];
                size_t n_must = trial % 3 ? rnd() % 24 : 0;
                for (size_t i = 0; i < n_must; i++)
                    must[i] = (int32_t)(rnd() % (h.n + 8)) - 4; /* some out of range */
                check_screen(s, kern, &h, keep, must, n_must, &computed);
                rows += h.n;
            }
            bn_lm_screen_free(s);
            bn_lm_compact_free(c);
            free(h.w);
            free(h.x16);
        }
        print_message("screen (%s, %s activation): %zu of %zu rows computed exactly (%.1f%%)\n",
                      fmt == BN_LM_I8 ? "int8" : "u6",
                      fmt == BN_LM_U6 || kern->matvec_i8x2 ? "15-bit" : "int8", computed, rows,
                      100.0 * computed / rows);
        assert_true(computed < rows); /* it did screen rows out */
    }
}

/* The int8 copy's activation takes a second plane exactly when it has outliers: then fewer rows
 * are computed than with one plane; on an even activation the two kernel sets compute the same
 * rows (the second plane is declined). Both with the scalar twins, so this runs on every host. */
static void test_two_planes_for_outliers(void **state)
{
    (void)state;
    bn_err err = {0};
    head h = {400, 512, malloc(400 * 512 * 2), malloc(512 * 2)};
    assert_true(h.w && h.x16);
    fill_head(&h, 0);
    bn_lm_compact *c = bn_lm_compact_build(h.n, h.k, BN_LM_I8, head_row, NULL, &h, NULL, &err);
    bn_lm_screen *s = c ? bn_lm_screen_create(c, &err) : NULL;
    assert_non_null(s);
    bn_kernels one_plane = bn_kernels_scalar;
    one_plane.matvec_i8x2 = NULL;
    size_t rows[2][2] = {{0}}; /* [even, outliers][one plane, two] */
    for (int trial = 0; trial < 40; trial++) {
        const int outliers = trial % 2;
        fill_x(&h, outliers);
        for (int p = 0; p < 2; p++) {
            size_t got = 0;
            check_screen(s, p ? &bn_kernels_scalar : &one_plane, &h, 1 + (uint32_t)trial % 8, NULL,
                         0, &got);
            rows[outliers][p] += got;
        }
    }
    print_message("rows computed, even x: %zu / %zu, outliers: %zu / %zu (one / two planes)\n",
                  rows[0][0], rows[0][1], rows[1][0], rows[1][1]);
    assert_true(rows[0][0] == rows[0][1]);
    assert_true(rows[1][1] * 2 < rows[1][0]);
    bn_lm_screen_free(s);
    bn_lm_compact_free(c);
    free(h.w);
    free(h.x16);
}

static void test_screen_declines_and_keeps_nonfinite_rows(void **state)
{
    (void)state;
    bn_err err = {0};
    for (int f = 0; f < 2; f++) {
        const bn_lm_format fmt = f ? BN_LM_U6 : BN_LM_I8;
        head h = {64, 128, malloc(64 * 128 * 2), malloc(128 * 2)};
        assert_true(h.w && h.x16);
        fill_head(&h, 0);
        h.w[5 * 128 + 7] = 0x7c00; /* +inf in row 5 */
        h.w[9 * 128 + 3] = 0x7e00; /* NaN in row 9 */
        bn_lm_compact *c = bn_lm_compact_build(h.n, h.k, fmt, head_row, NULL, &h, NULL, &err);
        bn_lm_screen *s = c ? bn_lm_screen_create(c, &err) : NULL;
        assert_non_null(s);
        fill_x(&h, 0);
        float x[128], logits[64];
        bn_f16_to_f32_row(h.x16, x, 128);
        const double g = bn_lm_f16_gamma(128);
        for (int i = 0; i < 64; i++)
            logits[i] = 42.0f;
        bn_lm_request req = {0, NULL, 0};
        assert_int_equal(
            bn_lm_screen_run(s, bn_kernels_get(), NULL, x, g, &req, head_exact, &h, logits), 0);
        req.keep = BN_LM_KEEP_MAX + 1;
        assert_int_equal(
            bn_lm_screen_run(s, bn_kernels_get(), NULL, x, g, &req, head_exact, &h, logits), 0);
        req.keep = 65; /* more than the rows */
        assert_int_equal(
            bn_lm_screen_run(s, bn_kernels_get(), NULL, x, g, &req, head_exact, &h, logits), 0);
        int32_t all[64];
        for (int i = 0; i < 64; i++)
            all[i] = i;
        req = (bn_lm_request){1, all, 64}; /* every row named: nothing left to bound with */
        assert_int_equal(
            bn_lm_screen_run(s, bn_kernels_get(), NULL, x, g, &req, head_exact, &h, logits), 0);
        x[17] = INFINITY;
        req = (bn_lm_request){1, NULL, 0};
        assert_int_equal(
            bn_lm_screen_run(s, bn_kernels_get(), NULL, x, g, &req, head_exact, &h, logits), 0);
        for (int i = 0; i < 64; i++)
            assert_true(logits[i] == 42.0f);
        x[17] = 0.5f;
        h.x16[17] = bn_f32_to_f16(0.5f);
        assert_true(
            bn_lm_screen_run(s, bn_kernels_get(), NULL, x, g, &req, head_exact, &h, logits) > 0);
        /* the rows with non-finite weights were computed (what the full head gives, not -inf) */
        float full[64];
        bn_kernels_get()->matvec_f16(h.w, h.k, 0, 64, h.x16, full);
        for (int r = 5; r <= 9; r += 4)
            if (!(isnan(full[r]) ? isnan(logits[r]) : logits[r] == full[r]))
                fail_msg("row %d: screened %g, full %g", r, logits[r], full[r]);
        bn_lm_screen_free(s);
        bn_lm_compact_free(c);
        free(h.w);
        free(h.x16);
    }
}

static void test_build_refuses_bad_shapes(void **state)
{
    (void)state;
    for (int f = 0; f < 2; f++) {
        const bn_lm_format fmt = f ? BN_LM_U6 : BN_LM_I8;
        bn_err err = {0};
        head h = {1, 1, NULL, NULL};
        assert_null(bn_lm_compact_build(1, 0, fmt, head_row, NULL, &h, NULL, &err));
        assert_int_equal(err.code, BN_E_UNSUPPORTED);
        assert_null(bn_lm_compact_build(1, (uint32_t)BN_MATVEC_I8_K_MAX + 1, fmt, head_row, NULL,
                                        &h, NULL, &err));
        assert_null(bn_lm_compact_build(0, 64, fmt, head_row, NULL, &h, NULL, &err));
    }
}

/* ------------------------------------------------------------------ end to end */

typedef struct engines {
    bn_engine *full, *screened;
    bn_session *sf, *ss;
    uint32_t n_vocab;
} engines;

/* The full head and the screened one in the format named by mode (screened, screened-u6). */
static int open_pair(const char *path, const char *mode, engines *e)
{
    bn_err err = {0};
    memset(e, 0, sizeof *e);
    setenv("BITNET_LM_HEAD", "full", 1);
    e->full = bn_engine_open(path, NULL, &err);
    setenv("BITNET_LM_HEAD", mode, 1);
    e->screened = bn_engine_open(path, NULL, &err);
    unsetenv("BITNET_LM_HEAD");
    if (!e->full || !e->screened) {
        print_error("%s: %s\n", path, err.msg);
        return -1;
    }
    bn_engine_info fi, si;
    bn_engine_get_info(e->full, &fi);
    bn_engine_get_info(e->screened, &si);
    assert_string_equal(fi.lm_head, "full");
    assert_string_equal(si.lm_head, "screened");
    assert_null(fi.lm_compact);
    const int u6 = strcmp(mode, "screened-u6") == 0;
    assert_string_equal(si.lm_compact, u6 ? "u6" : "int8");
    assert_true(si.lm_compact_bytes >= (uint64_t)si.n_vocab * (u6 ? si.n_embd * 3 / 4 : si.n_embd));
    e->n_vocab = si.n_vocab;
    bn_session_params sp = {256, 1, 0};
    e->sf = bn_session_create(e->full, &sp, &err);
    sp.n_threads = 2; /* the screened side on two threads: rows split differently */
    e->ss = bn_session_create(e->screened, &sp, &err);
    return e->sf && e->ss ? 0 : -1;
}

static void close_pair(engines *e)
{
    bn_session_free(e->sf);
    bn_session_free(e->ss);
    bn_engine_free(e->full);
    bn_engine_free(e->screened);
}

/* n_runs seeded generations; returns how many LM-head evaluations were screened. */
static uint32_t compare_runs(engines *e, int n_runs, uint64_t *rows_screened)
{
    static const float temps[] = {0.0f, 0.3f, 0.8f, 1.0f, 1.5f, 3.0f};
    static const float top_ps[] = {1.0f, 0.95f, 0.8f, 0.5f};
    static const float min_ps[] = {0.0f, 0.05f, 0.1f, 0.3f};
    static const float pens[] = {1.0f, 1.1f, 1.3f, 2.0f, 0.8f};
    static const int32_t lastn[] = {64, 8, 0, -1};
    uint32_t screened = 0;
    for (int run = 0; run < n_runs; run++) {
        int32_t prompt[8];
        const size_t n_prompt = 1 + rnd() % 8;
        for (size_t i = 0; i < n_prompt; i++)
            prompt[i] = (int32_t)(rnd() % e->n_vocab);
        bn_generate_params g = bn_generate_default();
        g.prompt_ids = prompt;
        g.n_prompt_ids = n_prompt;
        g.n_predict = 12;
        g.sampling.seed = ((uint64_t)rnd() << 32) | rnd();
        g.sampling.temp = temps[rnd() % 6];
        g.sampling.top_k = 1 + (int32_t)(rnd() % 100);
        g.sampling.top_p = top_ps[rnd() % 4];
        g.sampling.min_p = min_ps[rnd() % 4];
        g.sampling.repeat_penalty = pens[rnd() % 5];
        g.sampling.repeat_last_n = lastn[rnd() % 4];
        bn_err err = {0};
        bn_stats sf, ss;
        assert_int_equal(bn_generate(e->sf, &g, &sf, &err), 0);
        assert_int_equal(bn_generate(e->ss, &g, &ss, &err), 0);
        size_t nf, ns;
        const int32_t *of = bn_session_output_ids(e->sf, &nf);
        const int32_t *os = bn_session_output_ids(e->ss, &ns);
        if (nf != ns || memcmp(of, os, nf * sizeof *of))
            fail_msg("run %d (seed %llu, temp %g, top-k %d, top-p %g, min-p %g, penalty %g/%d): "
                     "%zu vs %zu tokens differ",
                     run, (unsigned long long)g.sampling.seed, (double)g.sampling.temp,
                     (int)g.sampling.top_k, (double)g.sampling.top_p, (double)g.sampling.min_p,
                     (double)g.sampling.repeat_penalty, (int)g.sampling.repeat_last_n, nf, ns);
        assert_int_equal(sf.lm_screened, 0);
        assert_int_equal(sf.lm_rows, (uint64_t)sf.lm_evals * e->n_vocab);
        screened += ss.lm_screened;
        *rows_screened += ss.lm_rows;
    }
    return screened;
}

static void run_model(const char *path, int n_runs)
{
    const char *emu = getenv("BN_EMULATOR");
    if (emu && *emu)
        n_runs /= 10;
    static const char *const modes[] = {"screened", "screened-u6"};
    for (int f = 0; f < 2; f++) {
        engines e;
        assert_int_equal(open_pair(path, modes[f], &e), 0);
        uint64_t rows = 0;
        uint32_t screened = compare_runs(&e, n_runs, &rows);
        print_message("%s (%s): %d runs identical; %u screened evaluations, %.1f exact rows each "
                      "of %u\n",
                      path, modes[f], n_runs, screened, screened ? (double)rows / screened : 0.0,
                      e.n_vocab);
        assert_true(screened > (uint32_t)n_runs); /* most evaluations were screened */
        assert_true(rows < (uint64_t)screened * e.n_vocab);
        close_pair(&e);
    }
}

static int count_logits(void *user, const float *logits, uint32_t n_vocab)
{
    for (uint32_t i = 0; i < n_vocab; i++)
        if (logits[i] == -INFINITY)
            return 1; /* a screened row leaked into a full-distribution request */
    ++*(int *)user;
    return 0;
}

static void test_full_distribution_takes_full_head(void **state)
{
    (void)state;
    bn_err err = {0};
    char *path = bn_test_preset_file("tiny");
    setenv("BITNET_LM_HEAD", "screened", 1);
    bn_engine *en = bn_engine_open(path, NULL, &err);
    unsetenv("BITNET_LM_HEAD");
    assert_non_null(en);
    bn_engine_info info;
    bn_engine_get_info(en, &info);
    assert_string_equal(info.lm_compact, "int8"); /* the default copy */
    bn_session *s = bn_session_create(en, NULL, &err);
    assert_non_null(s);
    int32_t prompt[3] = {5, 6, 7};
    bn_generate_params g = bn_generate_default();
    g.prompt_ids = prompt;
    g.n_prompt_ids = 3;
    g.n_predict = 4;
    int n_rows = 0;
    g.on_logits = count_logits;
    g.user = &n_rows;
    bn_stats st;
    assert_int_equal(bn_generate(s, &g, &st, &err), 0);
    assert_true(n_rows >= 3);
    assert_int_equal(st.lm_screened, 0);
    g.on_logits = NULL;
    g.sampling.top_k = 0; /* top-k off: the whole distribution */
    assert_int_equal(bn_generate(s, &g, &st, &err), 0);
    assert_int_equal(st.lm_screened, 0);
    g.sampling.top_k = 5;
    assert_int_equal(bn_generate(s, &g, &st, &err), 0);
    assert_true(st.lm_screened > 0);
    bn_session_free(s);
    bn_engine_free(en);
    setenv("BITNET_LM_HEAD", "sometimes", 1);
    assert_null(bn_engine_open(path, NULL, &err));
    assert_int_equal(err.code, BN_E_INPUT);
    unsetenv("BITNET_LM_HEAD");
    unlink(path);
    free(path);
}

static void test_identical_tokens_synthetic(void **state)
{
    (void)state;
    char *path = bn_test_preset_file("tiny");
    run_model(path, 400);
    unlink(path);
    free(path);
}

static void test_identical_tokens_tiny_a(void **state)
{
    (void)state;
    char *path = bn_test_shared("reference/models/tiny-a.gguf");
    bn_test_skip_if_missing(path, "reference/models/tiny-a.gguf");
    run_model(path, 400);
    free(path);
}

static void test_identical_tokens_tiny_b(void **state)
{
    (void)state;
    char *path = bn_test_shared("reference/models/tiny-b.gguf");
    bn_test_skip_if_missing(path, "reference/models/tiny-b.gguf");
    run_model(path, 400);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_screen_keeps_what_the_sampler_needs),
        cmocka_unit_test(test_two_planes_for_outliers),
        cmocka_unit_test(test_screen_declines_and_keeps_nonfinite_rows),
        cmocka_unit_test(test_build_refuses_bad_shapes),
        cmocka_unit_test(test_full_distribution_takes_full_head),
        cmocka_unit_test(test_identical_tokens_synthetic),
        cmocka_unit_test(test_identical_tokens_tiny_a),
        cmocka_unit_test(test_identical_tokens_tiny_b),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
