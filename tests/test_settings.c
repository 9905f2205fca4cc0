/* The settings table (bitnet.h): every setting has a range that reads right, boundaries are
 * checked exactly (open and closed ends, whole numbers), the params checkers name the field,
 * a repeat window larger than the context costs no more memory than the context, and a tiny
 * repeat penalty (1e-38, in range) never makes a logit infinite. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "sampler.h"
#include "testutil.h"

static void test_every_setting_has_a_row(void **state)
{
    (void)state;
    for (int id = 0; id < BN_SET_COUNT; id++) {
        const bn_setting *s = bn_setting_get((bn_setting_id)id);
        assert_non_null(s);
        assert_int_equal(s->id, id);
        assert_true(s->name && *s->name && s->meaning && *s->meaning);
        assert_true(s->lo < s->hi);
    }
    assert_null(bn_setting_get(BN_SET_COUNT));
    assert_null(bn_setting_get((bn_setting_id)-1));
}

static void test_range_text(void **state)
{
    (void)state;
    char buf[64];
    assert_string_equal(bn_setting_range(BN_SET_TOP_P, buf, sizeof buf), "(0, 1]");
    assert_string_equal(bn_setting_range(BN_SET_MIN_P, buf, sizeof buf), "[0, 1]");
    assert_string_equal(bn_setting_range(BN_SET_N_PREDICT, buf, sizeof buf), "[-1, 2147483647]");
    assert_string_equal(bn_setting_range(BN_SET_SEED, buf, sizeof buf), "[-1, 9007199254740992]");
}

static void test_boundaries(void **state)
{
    (void)state;
    bn_err err = {0};
    assert_int_equal(bn_setting_check(BN_SET_TOP_P, 1.0, NULL, &err), 0);
    assert_int_equal(bn_setting_check(BN_SET_TOP_P, 0.0, NULL, &err), -1); /* open end */
    assert_int_equal(err.code, BN_E_INPUT);
    assert_string_equal(err.msg, "top_p must be in (0, 1] (1 = off), got 0");
    assert_int_equal(bn_setting_check(BN_SET_TOP_P, nextafter(1.0, 2.0), NULL, &err), -1);
    assert_int_equal(bn_setting_check(BN_SET_MIN_P, 0.0, NULL, &err), 0); /* closed end */
    assert_int_equal(bn_setting_check(BN_SET_REPEAT_PENALTY, 1e-38, NULL, &err), 0);
    assert_int_equal(bn_setting_check(BN_SET_TEMP, NAN, NULL, &err), -1);
    assert_int_equal(bn_setting_check(BN_SET_TEMP, INFINITY, "--temp", &err), -1);
    assert_string_equal(err.msg, "--temp must be in [0, 100] (0 = greedy), got inf");
    assert_int_equal(bn_setting_check(BN_SET_N_PREDICT, -1, NULL, &err), 0);
    assert_int_equal(bn_setting_check(BN_SET_N_PREDICT, 2.5, NULL, &err), -1); /* whole only */
    assert_int_equal(bn_setting_check(BN_SET_N_PREDICT, 99999999999.0, "-n", &err), -1);
    assert_string_equal(err.msg, "-n must be an integer in [-1, 2147483647] (tokens to generate, "
                                 "-1 = until a stop condition), got 99999999999");
    assert_int_equal(bn_setting_check(BN_SET_SEED, 9007199254740992.0, NULL, &err), 0);
    assert_int_equal(bn_setting_check(BN_SET_SEED, 9007199254740994.0, NULL, &err), -1);
    assert_int_equal(bn_setting_check(BN_SET_COUNT, 0, NULL, &err), -1);
    assert_int_equal(err.code, BN_E_INTERNAL);
}

static void test_params_checks_name_the_field(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_generate_params g = bn_generate_default();
    assert_int_equal(bn_generate_params_check(&g, &err), 0);
    g.sampling.repeat_last_n = -2;
    assert_int_equal(bn_generate_params_check(&g, &err), -1);
    assert_non_null(strstr(err.msg, "repeat_last_n must be an integer in [-1, 2147483647]"));
    g = bn_generate_default();
    g.n_predict = -7;
    assert_int_equal(bn_generate_params_check(&g, &err), -1);
    assert_non_null(strstr(err.msg, "n_predict must be"));
    bn_session_params sp = {0, 0, 0};
    assert_int_equal(bn_session_params_check(&sp, &err), 0);
    sp.n_threads = 5000;
    assert_int_equal(bn_session_params_check(&sp, &err), -1);
    assert_non_null(strstr(err.msg, "n_threads must be an integer in [0, 1024]"));
    sp.n_threads = 1;
    sp.n_ctx = 1u << 30;
    assert_int_equal(bn_session_params_check(&sp, &err), -1);
    assert_non_null(strstr(err.msg, "n_ctx must be an integer in [0, 1048576]"));
}

/* repeat_last_n = INT32_MAX used to allocate a window of 2^31 tokens (an out-of-memory error
 * under ASan); the window can never hold more than the context. */
static void test_huge_repeat_window_is_the_context(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_sampling_params p = bn_sampling_default();
    p.temp = 0;
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 2147483647;
    bn_sampler *s = bn_sampler_create(&p, 4, 16, &err);
    if (!s)
        fail_msg("bn_sampler_create: %s", err.msg);
    /* the window still penalizes: token 0 seen, so 2/2 = 1 < 1.5 and token 1 wins */
    const float logits[4] = {2.0f, 1.5f, 0.0f, -1.0f};
    bn_sampler_accept(s, 0);
    assert_int_equal(bn_sampler_sample(s, logits), 1);
    bn_sampler_free(s);
}

static void test_tiny_repeat_penalty_stays_finite(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_sampling_params p = bn_sampling_default();
    p.temp = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1e-38f; /* 5 / 1e-38 overflows float */
    p.seed = 3;
    bn_sampler *s = bn_sampler_create(&p, 3, 16, &err);
    if (!s)
        fail_msg("bn_sampler_create: %s", err.msg);
    const float logits[3] = {5.0f, 4.0f, 1.0f};
    bn_sampler_accept(s, 1);
    /* token 1 becomes FLT_MAX: it takes all the mass, every draw */
    for (int i = 0; i < 20; i++)
        assert_int_equal(bn_sampler_sample(s, logits), 1);
    bn_sampler_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_setting_has_a_row),
        cmocka_unit_test(test_range_text),
        cmocka_unit_test(test_boundaries),
        cmocka_unit_test(test_params_checks_name_the_field),
        cmocka_unit_test(test_huge_repeat_window_is_the_context),
        cmocka_unit_test(test_tiny_repeat_penalty_stays_finite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
