/* Sampler: greedy ties, llama.cpp's repeat-penalty arithmetic, top-k/top-p/min-p/temperature
 * checked statistically with fixed seeds, and a golden draw sequence derived by hand from the
 * SplitMix64 definition. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "sampler.h"
#include "testutil.h"

static bn_sampling_params plain(float temp, uint64_t seed)
{
    bn_sampling_params p = bn_sampling_default();
    p.temp = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.seed = seed;
    return p;
}

static bn_sampler *make(const bn_sampling_params *p, uint32_t n_vocab)
{
    bn_err err = {0};
    bn_sampler *s = bn_sampler_create(p, n_vocab, 4096, &err);
    if (!s)
        fail_msg("bn_sampler_create: %s", err.msg);
    return s;
}

/* Draws n samples and counts them per id. */
static void histogram(bn_sampler *s, const float *logits, uint32_t n_vocab, int n, int *count)
{
    memset(count, 0, n_vocab * sizeof *count);
    for (int i = 0; i < n; i++) {
        int32_t t = bn_sampler_sample(s, logits);
        assert_true(t >= 0 && (uint32_t)t < n_vocab);
        count[t]++;
    }
}

/* |observed share - p| within 5 binomial standard deviations (a false alarm is ~1e-6, and
 * the seeds are fixed, so the test is deterministic anyway). */
static void assert_share(int count, int n, double p)
{
    double share = (double)count / n, sd = sqrt(p * (1 - p) / n);
    if (fabs(share - p) > 5 * sd + 1e-12)
        fail_msg("share %.4f, expected %.4f (sd %.4f)", share, p, sd);
}

static void test_defaults_are_llama_cpp(void **state)
{
    (void)state;
    bn_sampling_params p = bn_sampling_default();
    assert_true(p.temp == 0.8f && p.top_k == 40 && p.top_p == 0.95f && p.min_p == 0.05f);
    assert_true(p.repeat_penalty == 1.0f && p.repeat_last_n == 64);
}

static void test_param_checks(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_sampling_params p = bn_sampling_default();
    p.top_p = 0.0f;
    assert_int_equal(bn_sampling_check(&p, &err), -1);
    assert_non_null(strstr(err.msg, "top_p must be in (0, 1]"));
    p.top_p = 1.01f;
    assert_int_equal(bn_sampling_check(&p, &err), -1);
    p.top_p = 1.0f;
    assert_int_equal(bn_sampling_check(&p, &err), 0);
    p.min_p = -0.1f;
    assert_int_equal(bn_sampling_check(&p, &err), -1);
    p.min_p = 0.0f;
    p.repeat_penalty = 0.0f;
    assert_int_equal(bn_sampling_check(&p, &err), -1);
    p.repeat_penalty = 1.1f;
    p.repeat_last_n = -2;
    assert_int_equal(bn_sampling_check(&p, &err), -1);
    p.repeat_last_n = -1;
    p.temp = NAN;
    assert_int_equal(bn_sampling_check(&p, &err), -1);
    assert_null(bn_sampler_create(&p, 10, 10, &err));
}

/* The penalty window is capped at the context: --repeat-last-n 2^31-1 used to allocate 8 GiB
 * before the first token. */
static void test_window_capped_at_context(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_sampling_params p = bn_sampling_default();
    p.repeat_last_n = INT32_MAX;
    bn_sampler *s = bn_sampler_create(&p, 10, 4096, &err);
    assert_non_null(s);
    assert_int_equal(bn_sampler_window(s), 4096);
    bn_sampler_free(s);
    p.repeat_last_n = 64;
    s = bn_sampler_create(&p, 10, 4096, &err);
    assert_int_equal(bn_sampler_window(s), 64);
    bn_sampler_free(s);
    p.repeat_last_n = -1;
    s = bn_sampler_create(&p, 10, 100, &err);
    assert_int_equal(bn_sampler_window(s), 100);
    bn_sampler_free(s);
}

static void test_greedy_lowest_id_on_ties(void **state)
{
    (void)state;
    bn_sampling_params p = plain(0.0f, 1);
    bn_sampler *s = make(&p, 5);
    const float l[5] = {1.0f, 3.0f, -2.0f, 3.0f, 2.5f};
    for (int i = 0; i < 10; i++)
        assert_int_equal(bn_sampler_sample(s, l), 1);
    bn_sampler_free(s);
    /* NaN is never the maximum */
    s = make(&p, 3);
    const float nanl[3] = {NAN, 0.5f, 0.25f};
    assert_int_equal(bn_sampler_sample(s, nanl), 1);
    bn_sampler_free(s);
}

/* llama.cpp: a token seen in the window gets logit/pen when positive, logit*pen otherwise,
 * once per distinct token however often it occurs. Each case is decided by the arithmetic. */
static void test_repeat_penalty_arithmetic(void **state)
{
    (void)state;
    bn_sampling_params p = plain(0.0f, 1);
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 64;

    /* positive logit divided once: 2.0 -> 1.0 beats 0.9 (divided three times it would not) */
    bn_sampler *s = make(&p, 2);
    const float a[2] = {2.0f, 0.9f};
    assert_int_equal(bn_sampler_sample(s, a), 0);
    bn_sampler_accept(s, 0);
    bn_sampler_accept(s, 0);
    bn_sampler_accept(s, 0);
    assert_int_equal(bn_sampler_sample(s, a), 0);
    const float a2[2] = {2.0f, 1.1f}; /* 1.0 < 1.1 */
    assert_int_equal(bn_sampler_sample(s, a2), 1);
    bn_sampler_free(s);

    /* negative logit multiplied: -1.0 -> -2.0 loses to -1.5 (dividing would give -0.5) */
    s = make(&p, 2);
    const float b[2] = {-1.0f, -1.5f};
    bn_sampler_accept(s, 0);
    assert_int_equal(bn_sampler_sample(s, b), 1);
    bn_sampler_free(s);

    /* The sign decides the branch right at zero: +0.001 is divided (0.0005 loses to 0.0007; it
     * would win multiplied), -0.001 is multiplied (-0.002 loses to -0.0015; it would win
     * divided). Zero itself is the same under both branches (0 * 2 == 0 / 2), so whether
     * zero counts as positive cannot be observed. */
    s = make(&p, 2);
    bn_sampler_accept(s, 0);
    const float small_pos[2] = {0.001f, 0.0007f};
    assert_int_equal(bn_sampler_sample(s, small_pos), 1);
    const float small_neg[2] = {-0.001f, -0.0015f};
    assert_int_equal(bn_sampler_sample(s, small_neg), 1);
    const float zero[2] = {0.0f, -0.1f}; /* 0 stays 0 and still beats -0.1 */
    assert_int_equal(bn_sampler_sample(s, zero), 0);
    bn_sampler_free(s);

    /* window: with last-n 2 only the two most recent tokens are penalized */
    p.repeat_last_n = 2;
    s = make(&p, 3);
    bn_sampler_accept(s, 0);
    bn_sampler_accept(s, 1);
    bn_sampler_accept(s, 2);
    const float d[3] = {1.0f, 1.9f, 1.9f}; /* 0 out of the window: 1.0 > 0.95 */
    assert_int_equal(bn_sampler_sample(s, d), 0);
    bn_sampler_reset(s); /* forgets the history */
    assert_int_equal(bn_sampler_sample(s, d), 1);
    bn_sampler_free(s);

    /* last-n 0 disables it */
    p.repeat_last_n = 0;
    s = make(&p, 2);
    bn_sampler_accept(s, 0);
    assert_int_equal(bn_sampler_sample(s, a2), 0);
    bn_sampler_free(s);
}

/* llama.cpp: logit -= count * frequency + (count > 0) * presence, over the same window,
 * after the repeat penalty's division. Exact float arithmetic decides every case. */
static void test_presence_frequency_penalties(void **state)
{
    (void)state;
    bn_sampling_params p = plain(0.0f, 1);
    p.repeat_last_n = 64;
    p.frequency_penalty = 0.5f;
    bn_sampler *s = make(&p, 3);
    const float a[3] = {3.0f, 1.6f, 0.0f};
    assert_int_equal(bn_sampler_sample(s, a), 0);
    bn_sampler_accept(s, 0);
    bn_sampler_accept(s, 0);
    /* token 0 seen twice: 3.0 - 2 * 0.5 = 2.0 > 1.6 */
    assert_int_equal(bn_sampler_sample(s, a), 0);
    bn_sampler_accept(s, 0);
    /* three times: 3.0 - 1.5 = 1.5 < 1.6 */
    assert_int_equal(bn_sampler_sample(s, a), 1);
    bn_sampler_free(s);

    /* presence: once however often the token occurs */
    p.frequency_penalty = 0.0f;
    p.presence_penalty = 1.0f;
    s = make(&p, 3);
    const float b[3] = {3.0f, 2.1f, 0.0f};
    for (int i = 0; i < 5; i++)
        bn_sampler_accept(s, 0);
    assert_int_equal(bn_sampler_sample(s, b), 1); /* 3 - 1 = 2.0 < 2.1 */
    const float b2[3] = {3.0f, 1.9f, 0.0f};
    assert_int_equal(bn_sampler_sample(s, b2), 0); /* 2.0 > 1.9: not 5 * 1.0 */
    bn_sampler_free(s);

    /* combined with the repeat penalty, which applies first: 4 / 2 - (2 * 0.25 + 0.5) = 1.0 */
    p.repeat_penalty = 2.0f;
    p.frequency_penalty = 0.25f;
    p.presence_penalty = 0.5f;
    s = make(&p, 2);
    bn_sampler_accept(s, 0);
    bn_sampler_accept(s, 0);
    const float c[2] = {4.0f, 0.99f}, c2[2] = {4.0f, 1.01f};
    assert_int_equal(bn_sampler_sample(s, c), 0);
    assert_int_equal(bn_sampler_sample(s, c2), 1);
    /* the window bounds them too: last-n 1 sees only the last token (once) */
    bn_sampler_free(s);
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 1;
    p.frequency_penalty = 1.0f;
    p.presence_penalty = 0.0f;
    s = make(&p, 2);
    bn_sampler_accept(s, 0);
    bn_sampler_accept(s, 0);
    const float d[2] = {2.0f, 0.9f}; /* 2 - 1 = 1.0 > 0.9 (two counted would give 0.0) */
    assert_int_equal(bn_sampler_sample(s, d), 0);
    bn_sampler_free(s);

    /* non-finite values are refused */
    bn_err err = {0};
    p.presence_penalty = INFINITY;
    assert_int_equal(bn_sampling_check(&p, &err), -1);
    assert_int_equal(err.code, BN_E_INPUT);
    assert_non_null(strstr(err.msg, "presence"));
    p.presence_penalty = 0.0f;
    p.frequency_penalty = NAN;
    assert_int_equal(bn_sampling_check(&p, &err), -1);
    assert_non_null(strstr(err.msg, "frequency"));
}

/* Probabilities: softmax of the penalized logits, top-n in order, the chosen one's too. */
static void test_probs(void **state)
{
    (void)state;
    bn_sampling_params p = plain(0.0f, 1);
    p.repeat_penalty = 2.0f;
    bn_sampler *s = make(&p, 4);
    bn_sampler_accept(s, 0);
    const float l[4] = {2.0f, 1.0f, 1.0f, -INFINITY}; /* token 0 penalized to 1.0 */
    int32_t t = bn_sampler_sample(s, l);
    assert_int_equal(t, 0); /* three-way tie at 1.0: lowest id */
    bn_token_prob top[4], chosen;
    bn_sampler_probs(s, t, &chosen, top, 4);
    assert_int_equal(chosen.id, 0);
    assert_float_equal(chosen.prob, 1.0 / 3.0, 1e-6);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(top[i].id, i); /* ties: lower id first */
        assert_float_equal(top[i].prob, 1.0 / 3.0, 1e-6);
    }
    assert_int_equal(top[3].id, 3);
    assert_true(top[3].prob == 0.0f);
    bn_sampler_free(s);

    /* against a double-precision softmax of random logits */
    enum {
        NV = 1000
    };
    static float r[NV];
    bn_rng g;
    bn_rng_seed(&g, 5);
    for (int i = 0; i < NV; i++)
        r[i] = (float)(bn_rng_uniform(&g) * 8.0 - 4.0);
    p = plain(0.7f, 3);
    s = make(&p, NV);
    t = bn_sampler_sample(s, r);
    bn_token_prob best[5];
    bn_sampler_probs(s, t, &chosen, best, 5);
    double total = 0, mx = -1e9;
    for (int i = 0; i < NV; i++)
        mx = r[i] > mx ? r[i] : mx;
    for (int i = 0; i < NV; i++)
        total += exp(r[i] - mx);
    assert_float_equal(chosen.prob, exp(r[t] - mx) / total, 1e-6);
    for (int k = 0; k < 5; k++) {
        assert_float_equal(best[k].prob, exp(r[best[k].id] - mx) / total, 1e-6);
        int higher = 0; /* exactly k tokens are more likely */
        for (int i = 0; i < NV; i++)
            higher += r[i] > r[best[k].id];
        assert_int_equal(higher, k);
    }
    bn_sampler_free(s);
}

/* Random logits from a fixed seed. */
static void random_logits(float *l, uint32_t n, uint64_t seed)
{
    bn_rng r;
    bn_rng_seed(&r, seed);
    for (uint32_t i = 0; i < n; i++)
        l[i] = (float)(bn_rng_uniform(&r) * 8.0 - 4.0);
}

static void test_top_k_never_outside_k_best(void **state)
{
    (void)state;
    enum {
        V = 1000,
        K = 5,
        N = 20000
    };
    float *l = malloc(V * sizeof *l);
    int *count = malloc(V * sizeof *count);
    random_logits(l, V, 42);
    /* the K best, found independently by repeated max */
    int best[K];
    uint8_t taken[V] = {0};
    for (int j = 0; j < K; j++) {
        int b = -1;
        for (int i = 0; i < V; i++)
            if (!taken[i] && (b < 0 || l[i] > l[b]))
                b = i;
        taken[b] = 1;
        best[j] = b;
    }
    bn_sampling_params p = plain(3.0f, 99); /* hot: without top-k almost anything comes out */
    p.top_k = K;
    bn_sampler *s = make(&p, V);
    histogram(s, l, V, N, count);
    int inside = 0;
    for (int j = 0; j < K; j++) {
        assert_true(count[best[j]] > 0); /* every one of them is reachable */
        inside += count[best[j]];
    }
    assert_int_equal(inside, N);
    bn_sampler_free(s);
    free(l);
    free(count);
}

/* logits = log(probabilities): softmax gives the probabilities back. */
static void log_probs(float *l, const double *pr, int n)
{
    for (int i = 0; i < n; i++)
        l[i] = (float)log(pr[i]);
}

static void test_top_p_mass(void **state)
{
    (void)state;
    enum {
        N = 40000
    };
    const double pr[5] = {0.1, 0.4, 0.05, 0.3, 0.15};
    float l[5];
    int count[5];
    log_probs(l, pr, 5);
    /* sorted: 0.4 (id1), 0.3 (id3), 0.15 (id4), 0.1, 0.05; cumulative 0.4, 0.7, 0.85: top-p
     * 0.8 keeps the smallest prefix reaching 0.8 = {1, 3, 4} */
    bn_sampling_params p = plain(1.0f, 7);
    p.top_p = 0.8f;
    bn_sampler *s = make(&p, 5);
    histogram(s, l, 5, N, count);
    assert_int_equal(count[0] + count[2], 0);
    assert_share(count[1], N, 0.4 / 0.85);
    assert_share(count[3], N, 0.3 / 0.85);
    assert_share(count[4], N, 0.15 / 0.85);
    bn_sampler_free(s);

    /* a tiny top-p keeps only the best token */
    p.top_p = 0.01f;
    s = make(&p, 5);
    histogram(s, l, 5, 1000, count);
    assert_int_equal(count[1], 1000);
    bn_sampler_free(s);
}

static void test_min_p_threshold(void **state)
{
    (void)state;
    enum {
        N = 40000
    };
    const double pr[4] = {0.5, 0.3, 0.12, 0.08};
    float l[4];
    int count[4];
    log_probs(l, pr, 4);
    /* min-p 0.2: keep p >= 0.2 * 0.5 = 0.1, so 0.12 stays and 0.08 goes */
    bn_sampling_params p = plain(1.0f, 11);
    p.min_p = 0.2f;
    bn_sampler *s = make(&p, 4);
    histogram(s, l, 4, N, count);
    assert_int_equal(count[3], 0);
    assert_share(count[0], N, 0.5 / 0.92);
    assert_share(count[1], N, 0.3 / 0.92);
    assert_share(count[2], N, 0.12 / 0.92);
    bn_sampler_free(s);
}

/* Which ids come out of n draws (the set, as a bit mask over at most 32 ids). */
static uint32_t drawn_set(bn_sampler *s, const float *l, uint32_t n_vocab, int n)
{
    uint32_t set = 0;
    for (int i = 0; i < n; i++) {
        int32_t t = bn_sampler_sample(s, l);
        assert_true(t >= 0 && (uint32_t)t < n_vocab);
        set |= 1u << t;
    }
    return set;
}

/* top-p keeps the smallest prefix whose mass REACHES p: with four equal logits the cumulative
 * masses are exactly 0.25, 0.5, 0.75, 1 (all exact in binary), so p = 0.5 keeps two tokens,
 * and the next float above 0.5 keeps three. */
static void test_top_p_exact_threshold(void **state)
{
    (void)state;
    const float l[5] = {0.0f, 0.0f, 0.0f, 0.0f,
                        -INFINITY}; /* exp(-inf) = 0: the masses stay exact */
    const struct {
        float p;
        uint32_t want;
    } rows[] = {
        {0.25f, 0x1}, {0.5f, 0x3}, {0x1.000002p-1f, 0x7}, {0.75f, 0x7}, {0.7500001f, 0xf},
    };
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
        bn_sampling_params p = plain(1.0f, 17 + r);
        p.top_p = rows[r].p;
        bn_sampler *s = make(&p, 5);
        uint32_t got = drawn_set(s, l, 5, 400);
        if (got != rows[r].want)
            fail_msg("top-p %.9g: drew ids 0x%x, want 0x%x", (double)rows[r].p, got, rows[r].want);
        bn_sampler_free(s);
    }
}

/* min-p keeps logit >= max + log(p): a token exactly at the cut stays, one ulp below goes;
 * min-p 1 keeps every token tied with the best. */
static void test_min_p_exact_threshold(void **state)
{
    (void)state;
    float cut = logf(0.5f);
    const float l[4] = {0.0f, cut, nextafterf(cut, -INFINITY), -0.01f};
    bn_sampling_params p = plain(1.0f, 23);
    p.min_p = 0.5f;
    bn_sampler *s = make(&p, 4);
    assert_int_equal(drawn_set(s, l, 4, 400), 0xb); /* ids 0, 1, 3 */
    bn_sampler_free(s);

    const float tied[3] = {2.0f, 1.0f, 2.0f};
    p.min_p = 1.0f;
    s = make(&p, 3);
    assert_int_equal(drawn_set(s, tied, 3, 200), 0x5);
    bn_sampler_free(s);
}

/* top-k keeps exactly k candidates, ties broken by the lower id. */
static void test_top_k_exact_count(void **state)
{
    (void)state;
    const float l[5] = {1.0f, 3.0f, 3.0f, 2.0f, 3.0f};
    const uint32_t want[5] = {0x2, 0x6, 0x16, 0x1e, 0x1f};
    for (int k = 1; k <= 5; k++) {
        bn_sampling_params p = plain(5.0f, 29 + (uint64_t)k);
        p.top_k = k;
        bn_sampler *s = make(&p, 5);
        assert_int_equal(drawn_set(s, l, 5, 600), want[k - 1]);
        bn_sampler_free(s);
    }
}

/* The window: repeat_last_n = -1 is the whole history the sampler was created for (the
 * context), n > 0 the last n accepted tokens. Token 0 accepted first, then 70 others. */
static void test_penalty_window_length(void **state)
{
    (void)state;
    const float l[3] = {1.0f, -5.0f, 0.9f}; /* penalized, 0 falls to 0.5 < 0.9 */
    const struct {
        int32_t last_n;
        uint32_t cap;
        int32_t want;
    } rows[] = {
        {-1, 4096, 2}, /* whole context: the first token is still in */
        {-1, 71, 2},   /* exactly 71 accepted: still in */
        {-1, 70, 0},   /* one more than the context: pushed out */
        {64, 4096, 0}, /* 64: out */
        {71, 4096, 2}, {70, 4096, 0},
    };
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
        bn_sampling_params p = plain(0.0f, 1);
        p.repeat_penalty = 2.0f;
        p.repeat_last_n = rows[r].last_n;
        bn_err err = {0};
        bn_sampler *s = bn_sampler_create(&p, 3, rows[r].cap, &err);
        assert_non_null(s);
        bn_sampler_accept(s, 0);
        for (int i = 0; i < 70; i++)
            bn_sampler_accept(s, 1);
        int32_t got = bn_sampler_sample(s, l);
        if (got != rows[r].want)
            fail_msg("last-n %d, context %u: got %d, want %d", (int)rows[r].last_n, rows[r].cap,
                     (int)got, (int)rows[r].want);
        bn_sampler_free(s);
    }
}

/* Temperature T turns p_i into p_i^(1/T) / sum: with p = (0.8, 0.2) and T = 2 the weights are
 * sqrt(0.8) : sqrt(0.2) = 2 : 1. */
static void test_temperature(void **state)
{
    (void)state;
    enum {
        N = 40000
    };
    const double pr[2] = {0.8, 0.2};
    float l[2];
    int count[2];
    log_probs(l, pr, 2);
    bn_sampling_params p = plain(2.0f, 5);
    bn_sampler *s = make(&p, 2);
    histogram(s, l, 2, N, count);
    assert_share(count[0], N, 2.0 / 3.0);
    bn_sampler_free(s);
    p.temp = 1.0f;
    s = make(&p, 2);
    histogram(s, l, 2, N, count);
    assert_share(count[0], N, 0.8);
    bn_sampler_free(s);
}

/* The PRNG is SplitMix64 with state = seed. Published outputs for seed 1234567 (Rosetta Code,
 * "Pseudo-random numbers/Splitmix64"): 6457827717110365317, 3203168211198807973,
 * 9817491932198370423, 4593380528125082431, 16408922859458223821. */
static void test_splitmix64_published_vector(void **state)
{
    (void)state;
    const uint64_t want[5] = {6457827717110365317ull, 3203168211198807973ull,
                              9817491932198370423ull, 4593380528125082431ull,
                              16408922859458223821ull};
    uint64_t st = 1234567;
    for (int i = 0; i < 5; i++)
        assert_true(bn_splitmix64(&st) == want[i]);
}

/* Golden draws. probabilities (0.5, 0.25, 0.125, 0.125) for ids 0..3, no truncation, temp 1:
 * the candidates in order 0,1,2,3 have cumulative bounds 0.5, 0.75, 0.875, 1. Each draw is
 * u = (x >> 11) / 2^53 for the next SplitMix64 output x of seed 1234567, i.e. x / 2^64 to 1e-16:
 *   0.3501 -> 0,  0.1736 -> 0,  0.5322 -> 1,  0.2490 -> 0,  0.8895 -> 3,
 * and the next three outputs (7804594928223864054, 10895525637215051397, 5078158048327840177;
 * same generator) give 0.4231 -> 0, 0.5906 -> 1, 0.2753 -> 0. No u is within 0.01 of a bound,
 * so float rounding of the softmax cannot move a draw. */
static void test_golden_sequence(void **state)
{
    (void)state;
    const double pr[4] = {0.5, 0.25, 0.125, 0.125};
    float l[4];
    log_probs(l, pr, 4);
    const int32_t want[8] = {0, 0, 1, 0, 3, 0, 1, 0};
    bn_sampling_params p = plain(1.0f, 1234567);
    bn_sampler *s = make(&p, 4);
    for (int i = 0; i < 8; i++)
        assert_int_equal(bn_sampler_sample(s, l), want[i]);
    /* reset re-seeds: the same sequence again */
    bn_sampler_reset(s);
    for (int i = 0; i < 8; i++)
        assert_int_equal(bn_sampler_sample(s, l), want[i]);
    bn_sampler_free(s);
}

/* Same seed, same settings, a realistic vocabulary and the full default chain: identical
 * sequences from two samplers; another seed gives another sequence. */
static void test_same_seed_same_sequence(void **state)
{
    (void)state;
    enum {
        V = 4096,
        N = 64
    };
    float *l = malloc(V * sizeof *l);
    random_logits(l, V, 3);
    bn_sampling_params p = bn_sampling_default();
    p.temp = 1.5f;
    p.repeat_penalty = 1.3f;
    p.seed = 7;
    bn_sampler *a = make(&p, V), *b = make(&p, V);
    p.seed = 8;
    bn_sampler *c = make(&p, V);
    int differ = 0;
    for (int i = 0; i < N; i++) {
        int32_t ta = bn_sampler_sample(a, l), tb = bn_sampler_sample(b, l);
        int32_t tc = bn_sampler_sample(c, l);
        assert_int_equal(ta, tb);
        differ += ta != tc;
        bn_sampler_accept(a, ta);
        bn_sampler_accept(b, tb);
        bn_sampler_accept(c, tc);
    }
    assert_true(differ > 0);
    bn_sampler_free(a);
    bn_sampler_free(b);
    bn_sampler_free(c);
    free(l);
}

static void test_degenerate_logits(void **state)
{
    (void)state;
    bn_sampling_params p = bn_sampling_default();
    bn_sampler *s = make(&p, 3);
    const float ninf[3] = {-INFINITY, -INFINITY, -INFINITY};
    assert_int_equal(bn_sampler_sample(s, ninf), 0);
    const float nanl[3] = {NAN, NAN, 1.0f};
    assert_int_equal(bn_sampler_sample(s, nanl), 2);
    const float one[3] = {-INFINITY, 5.0f, -INFINITY};
    for (int i = 0; i < 20; i++)
        assert_int_equal(bn_sampler_sample(s, one), 1);
    bn_sampler_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_capped_at_context),
        cmocka_unit_test(test_defaults_are_llama_cpp),
        cmocka_unit_test(test_param_checks),
        cmocka_unit_test(test_greedy_lowest_id_on_ties),
        cmocka_unit_test(test_repeat_penalty_arithmetic),
        cmocka_unit_test(test_presence_frequency_penalties),
        cmocka_unit_test(test_probs),
        cmocka_unit_test(test_top_k_never_outside_k_best),
        cmocka_unit_test(test_top_p_mass),
        cmocka_unit_test(test_min_p_threshold),
        cmocka_unit_test(test_top_p_exact_threshold),
        cmocka_unit_test(test_min_p_exact_threshold),
        cmocka_unit_test(test_top_k_exact_count),
        cmocka_unit_test(test_penalty_window_length),
        cmocka_unit_test(test_temperature),
        cmocka_unit_test(test_splitmix64_published_vector),
        cmocka_unit_test(test_golden_sequence),
        cmocka_unit_test(test_same_seed_same_sequence),
        cmocka_unit_test(test_degenerate_logits),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
