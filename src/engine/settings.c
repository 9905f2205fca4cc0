/* Settings (bitnet.h): the one table of every numeric setting's range. Entry points (the CLI's
 * flags, the Lambda's event fields, HTTP routes) parse syntax only and ask this table, so a
 * range is written once and every error names the same range. */
#include "bitnet.h"

#include <math.h>
#include <stdio.h>

#include "error.h"

/* 2^53: the largest seed every entry point can carry exactly (JSON numbers are doubles). */
#define SEED_MAX 9007199254740992.0

static const bn_setting SETTINGS[BN_SET_COUNT] = {
    [BN_SET_N_PREDICT] = {BN_SET_N_PREDICT, "n_predict", true, -1, 2147483647.0, false,
                          "tokens to generate, -1 = until a stop condition"},
    [BN_SET_TEMP] = {BN_SET_TEMP, "temp", false, 0, 100, false, "0 = greedy"},
    [BN_SET_TOP_K] = {BN_SET_TOP_K, "top_k", true, -1, 2147483647.0, false, "0 or -1 = off"},
    [BN_SET_TOP_P] = {BN_SET_TOP_P, "top_p", false, 0, 1, true, "1 = off"},
    [BN_SET_MIN_P] = {BN_SET_MIN_P, "min_p", false, 0, 1, false, "0 = off"},
    [BN_SET_REPEAT_PENALTY] = {BN_SET_REPEAT_PENALTY, "repeat_penalty", false, 0, 100, true,
                               "1 = off"},
    [BN_SET_REPEAT_LAST_N] = {BN_SET_REPEAT_LAST_N, "repeat_last_n", true, -1, 2147483647.0, false,
                              "0 = off, -1 = the whole context"},
    [BN_SET_PRESENCE_PENALTY] = {BN_SET_PRESENCE_PENALTY, "presence_penalty", false, -2, 2, false,
                                 "0 = off; subtracted once from every token in the window"},
    [BN_SET_FREQUENCY_PENALTY] = {BN_SET_FREQUENCY_PENALTY, "frequency_penalty", false, -2, 2,
                                  false, "0 = off; subtracted per occurrence in the window"},
    [BN_SET_N_PROBS] = {BN_SET_N_PROBS, "n_probs", true, 0, BN_MAX_PROBS, false,
                        "most likely tokens reported per step, 0 = none"},
    [BN_SET_SEED] = {BN_SET_SEED, "seed", true, -1, SEED_MAX, false, "-1 = random"},
    [BN_SET_N_CTX] = {BN_SET_N_CTX, "n_ctx", true, 0, 1048576, false,
                      "0 = the model's, at most 4096"},
    [BN_SET_N_THREADS] = {BN_SET_N_THREADS, "n_threads", true, 0, 1024, false,
                          "0 = the CPUs this process may use"},
    [BN_SET_N_BATCH] = {BN_SET_N_BATCH, "n_batch", true, 0, 1048576, false,
                        "0 = 512, 1 = token by token"},
};

const bn_setting *bn_setting_get(bn_setting_id id)
{
    return (unsigned)id < BN_SET_COUNT ? &SETTINGS[id] : NULL;
}

const char *bn_setting_range(bn_setting_id id, char *buf, size_t n)
{
    const bn_setting *s = bn_setting_get(id);
    if (!s)
        snprintf(buf, n, "?");
    else if (s->integer)
        snprintf(buf, n, "[%.0f, %.0f]", s->lo, s->hi);
    else
        snprintf(buf, n, "%c%g, %g]", s->lo_open ? '(' : '[', s->lo, s->hi);
    return buf;
}

int bn_setting_check(bn_setting_id id, double v, const char *label, bn_err *err)
{
    const bn_setting *s = bn_setting_get(id);
    if (!s)
        return bn_fail(err, BN_E_INTERNAL, "unknown setting %d", (int)id);
    bool ok = isfinite(v) && v <= s->hi && (s->lo_open ? v > s->lo : v >= s->lo) &&
              (!s->integer || v == floor(v));
    if (ok)
        return 0;
    char range[64];
    bn_setting_range(id, range, sizeof range);
    if (s->integer && isfinite(v) && v == floor(v))
        return bn_fail(err, BN_E_INPUT, "%s must be %s %s (%s), got %.0f", label ? label : s->name,
                       s->integer ? "an integer in" : "in", range, s->meaning, v);
    return bn_fail(err, BN_E_INPUT, "%s must be %s %s (%s), got %g", label ? label : s->name,
                   s->integer ? "an integer in" : "in", range, s->meaning, v);
}

int bn_sampling_params_check(const bn_sampling_params *p, bn_err *err)
{
    /* the seed is any uint64 here: -1 ("random") is an entry point's convention */
    if (bn_setting_check(BN_SET_TEMP, p->temp, NULL, err) ||
        bn_setting_check(BN_SET_TOP_K, p->top_k, NULL, err) ||
        bn_setting_check(BN_SET_TOP_P, p->top_p, NULL, err) ||
        bn_setting_check(BN_SET_MIN_P, p->min_p, NULL, err) ||
        bn_setting_check(BN_SET_REPEAT_PENALTY, p->repeat_penalty, NULL, err) ||
        bn_setting_check(BN_SET_REPEAT_LAST_N, p->repeat_last_n, NULL, err) ||
        bn_setting_check(BN_SET_PRESENCE_PENALTY, p->presence_penalty, NULL, err) ||
        bn_setting_check(BN_SET_FREQUENCY_PENALTY, p->frequency_penalty, NULL, err))
        return -1;
    return 0;
}

int bn_generate_params_check(const bn_generate_params *p, bn_err *err)
{
    if (bn_setting_check(BN_SET_N_PREDICT, p->n_predict, NULL, err) ||
        bn_setting_check(BN_SET_N_PROBS, p->n_probs, NULL, err))
        return -1;
    return bn_sampling_params_check(&p->sampling, err);
}

int bn_session_params_check(const bn_session_params *p, bn_err *err)
{
    if (bn_setting_check(BN_SET_N_CTX, p->n_ctx, NULL, err) ||
        bn_setting_check(BN_SET_N_THREADS, p->n_threads, NULL, err) ||
        bn_setting_check(BN_SET_N_BATCH, p->n_batch, NULL, err))
        return -1;
    return 0;
}
