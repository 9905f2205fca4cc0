/* bitnet-lmhead-draws: the screened LM head against the full one on a large model, one sampler
 * draw at a time, at the cost of one forward pass per draw (bitnet-lmhead-check needs two
 * generations per run, too slow for 1000 runs on a 2B model on a shared machine).
 *
 *   bitnet-lmhead-draws MODEL [STATES [RUNS_PER_STATE [THREADS [SEED [FORMAT]]]]]
 *                                                     (8, 125, all, 1, i8)
 *
 * FORMAT is the compact copy's rows: i8 or u6 (lm_head.h).
 *
 * For each state (a random token appended to the context) the full head's logits are computed
 * once. Each run then draws sampling settings (greedy or top-k 1..100, temperature, top-p,
 * min-p, repetition penalty) and a penalty history (random ids, half of them among the 200
 * best rows, so penalties hit the candidates), evaluates the same token again with the
 * screened head asked for what that sampler needs, and checks: every row the screen computed
 * is bit-identical to the full head's, and four successive draws of two identically seeded
 * samplers, one on each set of logits, give the same tokens. Prints one JSON line; exits 1 on
 * the first difference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "model.h"
#include "sampler.h"
#include "threadpool.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static int fail(const char *what, const bn_err *err)
{
    fprintf(stderr, "bitnet-lmhead-draws: %s%s%s\n", what, err ? ": " : "", err ? err->msg : "");
    return 1;
}

/* The 200 best rows of l (any order), for penalty histories that hit the candidates. */
static void top_rows(const float *l, uint32_t n, int32_t *top, uint32_t k)
{
    for (uint32_t i = 0; i < k; i++)
        top[i] = (int32_t)i;
    for (uint32_t i = k; i < n; i++) {
        uint32_t worst = 0;
        for (uint32_t j = 1; j < k; j++)
            if (l[top[j]] < l[top[worst]])
                worst = j;
        if (l[i] > l[top[worst]])
            top[worst] = (int32_t)i;
    }
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 7) {
        fprintf(stderr, "usage: bitnet-lmhead-draws MODEL [STATES [RUNS_PER_STATE [THREADS "
                        "[SEED [i8|u6]]]]]\n");
        return 2;
    }
    const int states = argc > 2 ? atoi(argv[2]) : 8, per = argc > 3 ? atoi(argv[3]) : 125;
    const int threads = argc > 4 && atoi(argv[4]) > 0 ? atoi(argv[4]) : bn_cpu_count();
    if (argc > 5)
        rng = strtoull(argv[5], NULL, 10) | 1;
    if (states < 1 || per < 1 || states > 4000)
        return fail("STATES in 1..4000 and RUNS_PER_STATE >= 1", NULL);
    bn_err err = {0};
    bn_model *m = bn_model_load(argv[1], &err);
    if (!m)
        return fail("load", &err);
    bn_threadpool *tp = threads > 1 ? bn_threadpool_create(threads, &err) : NULL;
    if (threads > 1 && !tp)
        return fail("threads", &err);
    if (argc > 6 && strcmp(argv[6], "i8") && strcmp(argv[6], "u6"))
        return fail("FORMAT is i8 or u6", NULL);
    const bn_lm_format format = argc > 6 && argv[6][0] == 'u' ? BN_LM_U6 : BN_LM_I8;
    if (bn_model_build_lm_compact(m, format, tp, &err))
        return fail("compact copy", &err);
    bn_context *c = bn_context_create(m, (uint32_t)states + 1, 1, tp, &err);
    if (!c)
        return fail("context", &err);
    const uint32_t nv = m->hp.n_vocab;
    float *full = malloc((size_t)nv * sizeof *full), *scr = malloc((size_t)nv * sizeof *scr);
    int32_t top[200], hist[96];
    if (!full || !scr)
        return fail("out of memory", NULL);
    static const float temps[] = {0.0f, 0.3f, 0.8f, 1.0f, 1.5f};
    static const float top_ps[] = {1.0f, 0.95f, 0.8f, 0.5f};
    static const float min_ps[] = {0.0f, 0.05f, 0.1f, 0.3f};
    static const float pens[] = {1.0f, 1.1f, 1.3f, 2.0f, 0.8f};
    uint64_t runs = 0, draws = 0, rows = 0, rows_min = UINT64_MAX, rows_max = 0;
    for (int st = 0; st < states; st++) {
        int32_t tok = (int32_t)(rnd() % nv);
        bn_context_set_lm_request(c, NULL);
        if (bn_forward(c, &tok, 1, full, 1, &err))
            return fail("forward", &err);
        const uint32_t pos = bn_context_pos(c);
        top_rows(full, nv, top, 200);
        for (int run = 0; run < per; run++) {
            bn_sampling_params p = bn_sampling_default();
            p.seed = ((uint64_t)rnd() << 32) | rnd();
            p.temp = temps[rnd() % 5];
            p.top_k = 1 + (int32_t)(rnd() % 100);
            p.top_p = top_ps[rnd() % 4];
            p.min_p = min_ps[rnd() % 4];
            p.repeat_penalty = pens[rnd() % 5];
            p.repeat_last_n = 64;
            bn_sampler *sf = bn_sampler_create(&p, nv, 64, &err);
            bn_sampler *ss = sf ? bn_sampler_create(&p, nv, 64, &err) : NULL;
            if (!ss)
                return fail("sampler", &err);
            const uint32_t n_hist = rnd() % 96;
            for (uint32_t i = 0; i < n_hist; i++) {
                hist[i] = rnd() % 2 ? top[rnd() % 200] : (int32_t)(rnd() % nv);
                bn_sampler_accept(sf, hist[i]);
                bn_sampler_accept(ss, hist[i]);
            }
            bn_lm_request req = {bn_sampler_keep(ss), NULL, 0};
            req.must = bn_sampler_penalized(ss, &req.n_must);
            bn_context_set_lm_request(c, &req);
            bn_context_set_pos(c, pos - 1);
            if (bn_forward(c, &tok, 1, scr, 1, &err))
                return fail("forward", &err);
            if (!bn_context_lm_screened(c))
                return fail("the screened head declined a request it should take", NULL);
            const uint64_t r = bn_context_lm_rows(c);
            rows += r;
            rows_min = r < rows_min ? r : rows_min;
            rows_max = r > rows_max ? r : rows_max;
            for (uint32_t i = 0; i < nv; i++)
                if (scr[i] != -INFINITY && memcmp(&scr[i], &full[i], sizeof(float))) {
                    fprintf(stderr, "bitnet-lmhead-draws: state %d run %d: row %u %.9g vs %.9g\n",
                            st, run, i, scr[i], full[i]);
                    return 1;
                }
            for (int d = 0; d < 4; d++) {
                const int32_t a = bn_sampler_sample(sf, full), b = bn_sampler_sample(ss, scr);
                if (a != b) {
                    fprintf(stderr,
                            "bitnet-lmhead-draws: state %d run %d draw %d: %d vs %d (seed %llu "
                            "temp %g top-k %d top-p %g min-p %g penalty %g, %u history)\n",
                            st, run, d, a, b, (unsigned long long)p.seed, (double)p.temp,
                            (int)p.top_k, (double)p.top_p, (double)p.min_p,
                            (double)p.repeat_penalty, n_hist);
                    return 1;
                }
                draws++;
            }
            bn_sampler_free(sf);
            bn_sampler_free(ss);
            runs++;
        }
        fprintf(stderr,
                "bitnet-lmhead-draws: state %d: %llu runs identical, %.1f exact rows each\n",
                st + 1, (unsigned long long)runs, (double)rows / runs);
    }
    printf(
        "{\"tool\":\"lmhead-draws\",\"model\":\"%s\",\"format\":\"%s\",\"states\":%d,\"runs\":%llu,"
        "\"draws\":%llu,\"identical\":true,\"n_vocab\":%u,\"exact_rows_mean\":%.1f,"
        "\"exact_rows_min\":%llu,\"exact_rows_max\":%llu,\"compact_mib\":%.1f,"
        "\"build_ms\":%.1f,\"build_threads\":%d}\n",
        argv[1], format == BN_LM_U6 ? "u6" : "i8", states, (unsigned long long)runs,
        (unsigned long long)draws, nv, (double)rows / runs, (unsigned long long)rows_min,
        (unsigned long long)rows_max,
        (double)bn_lm_compact_bytes(m->lm_compact) / (1024.0 * 1024.0), m->lm_compact_ms,
        m->lm_compact_threads);
    free(full);
    free(scr);
    bn_context_free(c);
    bn_threadpool_free(tp);
    bn_model_free(m);
    return 0;
}
