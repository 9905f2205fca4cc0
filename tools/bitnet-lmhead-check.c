/* bitnet-lmhead-check: seeded generations with BITNET_LM_HEAD=full and =screened on one model
 * file, compared token for token, with the screened head's candidate counts.
 *
 *   bitnet-lmhead-check MODEL [RUNS [N_PREDICT [THREADS [SEED]]]]
 *
 * Each run draws its sampling settings (greedy or top-k 1..100, temperature, top-p, min-p,
 * repetition penalty and window) and a prompt: a fixed 4-token prefix plus 1 random token,
 * so that the KV cache reuses the prefix between runs and a run costs N_PREDICT
 * forward passes per engine. Prints one JSON line and exits 1 on the first difference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static bn_engine *open_with(const char *path, const char *mode)
{
    bn_err err = {0};
    setenv("BITNET_LM_HEAD", mode, 1);
    bn_engine *e = bn_engine_open(path, NULL, &err);
    unsetenv("BITNET_LM_HEAD");
    if (!e)
        fprintf(stderr, "bitnet-lmhead-check: %s\n", err.msg);
    return e;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 6) {
        fprintf(stderr, "usage: bitnet-lmhead-check MODEL [RUNS [N_PREDICT [THREADS [SEED]]]]\n");
        return 2;
    }
    const int runs = argc > 2 ? atoi(argv[2]) : 1000;
    const int n_predict = argc > 3 ? atoi(argv[3]) : 4;
    const int threads = argc > 4 ? atoi(argv[4]) : 0;
    if (argc > 5)
        rng = strtoull(argv[5], NULL, 10) | 1;
    if (runs < 1 || n_predict < 1 || threads < 0) {
        fprintf(stderr, "bitnet-lmhead-check: RUNS and N_PREDICT must be >= 1, THREADS >= 0\n");
        return 2;
    }
    bn_engine *ef = open_with(argv[1], "full"), *es = ef ? open_with(argv[1], "screened") : NULL;
    if (!es)
        return 1;
    bn_engine_info info;
    bn_engine_get_info(es, &info);
    bn_err err = {0};
    bn_session_params sp = {512, threads, 0};
    bn_session *sf = bn_session_create(ef, &sp, &err),
               *ss = sf ? bn_session_create(es, &sp, &err) : NULL;
    if (!ss) {
        fprintf(stderr, "bitnet-lmhead-check: %s\n", err.msg);
        return 1;
    }
    static const float temps[] = {0.0f, 0.3f, 0.8f, 1.0f, 1.5f};
    static const float top_ps[] = {1.0f, 0.95f, 0.8f, 0.5f};
    static const float min_ps[] = {0.0f, 0.05f, 0.1f, 0.3f};
    static const float pens[] = {1.0f, 1.1f, 1.3f, 0.8f};
    static const int32_t lastn[] = {64, 8, 0, -1};
    const uint32_t nv = info.n_vocab;
    const int32_t prefix[4] = {(int32_t)(rnd() % nv), (int32_t)(rnd() % nv), (int32_t)(rnd() % nv),
                               (int32_t)(rnd() % nv)};
    uint64_t *per_eval = malloc((size_t)runs * (n_predict + 1) * sizeof *per_eval);
    size_t n_per = 0;
    double ms_full = 0, ms_scr = 0;
    uint64_t ev_full = 0, ev_scr = 0, screened = 0, evals = 0, rows = 0, tokens = 0;
    for (int run = 0; run < runs; run++) {
        int32_t prompt[8];
        memcpy(prompt, prefix, sizeof prefix);
        const size_t n_prompt = 5;
        for (size_t i = 4; i < n_prompt; i++)
            prompt[i] = (int32_t)(rnd() % nv);
        bn_generate_params g = bn_generate_default();
        g.prompt_ids = prompt;
        g.n_prompt_ids = n_prompt;
        g.n_predict = n_predict;
        g.sampling.seed = ((uint64_t)rnd() << 32) | rnd();
        g.sampling.temp = temps[rnd() % 5];
        g.sampling.top_k = 1 + (int32_t)(rnd() % 100);
        g.sampling.top_p = top_ps[rnd() % 4];
        g.sampling.min_p = min_ps[rnd() % 4];
        g.sampling.repeat_penalty = pens[rnd() % 4];
        g.sampling.repeat_last_n = lastn[rnd() % 4];
        bn_stats a, b;
        if (bn_generate(sf, &g, &a, &err) || bn_generate(ss, &g, &b, &err)) {
            fprintf(stderr, "bitnet-lmhead-check: run %d: %s\n", run, err.msg);
            return 1;
        }
        size_t na, nb;
        const int32_t *oa = bn_session_output_ids(sf, &na), *ob = bn_session_output_ids(ss, &nb);
        if (na != nb || memcmp(oa, ob, na * sizeof *oa)) {
            fprintf(stderr,
                    "bitnet-lmhead-check: run %d differs (seed %llu temp %g top-k %d top-p %g "
                    "min-p %g penalty %g/%d)\n",
                    run, (unsigned long long)g.sampling.seed, (double)g.sampling.temp,
                    (int)g.sampling.top_k, (double)g.sampling.top_p, (double)g.sampling.min_p,
                    (double)g.sampling.repeat_penalty, (int)g.sampling.repeat_last_n);
            return 1;
        }
        tokens += na;
        ms_full += a.gen_ms;
        ms_scr += b.gen_ms;
        ev_full += a.gen_eval;
        ev_scr += b.gen_eval;
        screened += b.lm_screened;
        evals += b.lm_evals;
        rows += b.lm_rows;
        if (b.lm_evals && b.lm_screened == b.lm_evals)
            per_eval[n_per++] = b.lm_rows / b.lm_evals;
        if ((run + 1) % 10 == 0)
            fprintf(stderr,
                    "bitnet-lmhead-check: %d runs identical (%llu tokens, %llu screened "
                    "evaluations, %.1f exact rows each)\n",
                    run + 1, (unsigned long long)tokens, (unsigned long long)screened,
                    evals ? (double)rows / evals : 0.0);
    }
    qsort(per_eval, n_per, sizeof *per_eval, cmp_u64);
    printf("{\"model\":\"%s\",\"runs\":%d,\"identical\":%d,\"tokens\":%llu,\"n_vocab\":%u,"
           "\"lm_evals\":%llu,\"lm_screened\":%llu,\"exact_rows_mean\":%.1f,"
           "\"exact_rows_run_p50\":%llu,\"exact_rows_run_p90\":%llu,\"exact_rows_run_max\":%llu,"
           "\"decode_tok_s_full\":%.2f,\"decode_tok_s_screened\":%.2f,\"threads\":%d,"
           "\"compact_mib\":%.1f,\"build_ms\":%.1f,\"build_threads\":%d}\n",
           argv[1], runs, runs, (unsigned long long)tokens, nv, (unsigned long long)evals,
           (unsigned long long)screened, screened ? (double)rows / evals : 0.0,
           n_per ? (unsigned long long)per_eval[n_per / 2] : 0ull,
           n_per ? (unsigned long long)per_eval[n_per * 9 / 10] : 0ull,
           n_per ? (unsigned long long)per_eval[n_per - 1] : 0ull,
           ms_full > 0 ? ev_full / (ms_full / 1e3) : 0.0,
           ms_scr > 0 ? ev_scr / (ms_scr / 1e3) : 0.0, bn_session_n_threads(ss),
           (double)info.lm_compact_bytes / (1024.0 * 1024.0), info.lm_build_ms,
           info.lm_build_threads);
    free(per_eval);
    bn_session_free(sf);
    bn_session_free(ss);
    bn_engine_free(ef);
    bn_engine_free(es);
    return 0;
}
