/* End-to-end speed of the forward pass on a model file (e.g. the 2B-4T-shape synthetic model
 * written by `bitnet-make-model --preset 2b4t`): load time, prompt processing (one batch of
 * -p tokens, logits of the last), greedy decoding of -n tokens one at a time, peak RSS.
 *
 *   bench-forward MODEL [-t THREADS] [-k KERNEL_PATH] [-p PROMPT_TOKENS] [-n DECODE_TOKENS]
 *                       [-c CONTEXT]
 *
 * A one-token warm-up pass (then forgotten) maps the weights in before timing, as llama-bench
 * does. Prints one JSON object per measurement, then a table. */
#include "bench_clock.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "forward.h"
#include "kernels.h"
#include "model.h"
#include "threadpool.h"

static double now_s(void) { return bench_clock_s(CLOCK_MONOTONIC); }

/* CPU time of the whole process: on the shared machine the wall clock also counts the time
 * other jobs held the CPU, so both are reported (with 1 thread, tokens per CPU-second is what an
 * idle machine would show). */
static double cpu_s(void) { return bench_clock_s(CLOCK_PROCESS_CPUTIME_ID); }

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
}

static uint32_t argmax(const float *x, uint32_t n)
{
    uint32_t b = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return b;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench-forward MODEL [-t THREADS] [-k KERNEL_PATH] "
                    "[-p PROMPT_TOKENS] [-n DECODE_TOKENS] [-c CONTEXT]\n");
    return 2;
}

static int parse_pos(const char *s, long max, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end || v < 1 || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *kernel = NULL;
    long threads = 1, n_prompt = 64, n_decode = 128, n_ctx = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            if (path)
                return usage();
            path = a;
            continue;
        }
        if (i + 1 >= argc)
            return usage();
        const char *v = argv[++i];
        int bad = 0;
        if (strcmp(a, "-t") == 0)
            bad = parse_pos(v, 1024, &threads);
        else if (strcmp(a, "-p") == 0)
            bad = parse_pos(v, 1 << 16, &n_prompt);
        else if (strcmp(a, "-n") == 0)
            bad = parse_pos(v, 1 << 16, &n_decode);
        else if (strcmp(a, "-c") == 0)
            bad = parse_pos(v, 1 << 20, &n_ctx);
        else if (strcmp(a, "-k") == 0)
            kernel = v;
        else
            return usage();
        if (bad) {
            fprintf(stderr, "bench-forward: bad value '%s' for %s\n", v, a);
            return 2;
        }
    }
    if (!path)
        return usage();
    if (kernel && bn_kernels_select(kernel)) {
        fprintf(stderr, "bench-forward: kernel path '%s' unknown or not supported here\n",
                kernel);
        return 2;
    }
    if (!n_ctx)
        n_ctx = n_prompt + n_decode + 1;
    if (n_ctx < n_prompt + n_decode + 1) {
        fprintf(stderr, "bench-forward: context %ld too small for %ld + %ld tokens\n", n_ctx,
                n_prompt, n_decode);
        return 2;
    }

    bn_err err = {0};
    double t0 = now_s();
    bn_model *m = bn_model_load(path, &err);
    const double load_ms = (now_s() - t0) * 1e3;
    if (!m) {
        fprintf(stderr, "bench-forward: %s\n", err.msg);
        return 1;
    }
    bn_threadpool *tp = NULL;
    if (threads > 1 && !(tp = bn_threadpool_create((int)threads, &err))) {
        fprintf(stderr, "bench-forward: %s\n", err.msg);
        return 1;
    }
    bn_context *c = bn_context_create(m, (uint32_t)n_ctx, (uint32_t)n_prompt, tp, &err);
    const uint32_t nv = m->hp.n_vocab;
    float *logits = malloc((size_t)nv * sizeof *logits);
    int32_t *tok = malloc((size_t)n_prompt * sizeof *tok);
    if (!c || !logits || !tok) {
        fprintf(stderr, "bench-forward: %s\n", c ? "out of memory" : err.msg);
        return 1;
    }
    uint32_t x = 12345;
    for (long i = 0; i < n_prompt; i++) {
        x = x * 1664525u + 1013904223u;
        tok[i] = (int32_t)((x >> 8) % nv);
    }

    /* warm-up: every weight page touched once, then forgotten */
    if (bn_forward(c, tok, 1, logits, 1, &err)) {
        fprintf(stderr, "bench-forward: %s\n", err.msg);
        return 1;
    }
    bn_context_set_pos(c, 0);

    t0 = now_s();
    double c0 = cpu_s();
    int rc = bn_forward(c, tok, (uint32_t)n_prompt, logits, 1, &err);
    const double prompt_s = now_s() - t0, prompt_cpu = cpu_s() - c0;
    int32_t next = (int32_t)argmax(logits, nv);
    t0 = now_s();
    c0 = cpu_s();
    for (long i = 0; i < n_decode && !rc; i++) {
        rc = bn_forward(c, &next, 1, logits, 1, &err);
        next = (int32_t)argmax(logits, nv);
    }
    const double decode_s = now_s() - t0, decode_cpu = cpu_s() - c0;
    if (rc) {
        fprintf(stderr, "bench-forward: %s\n", err.msg);
        return 1;
    }
    const double rss = peak_rss_mib();
    const char *kname = m->kernels->name;
    const double pp = (double)n_prompt / prompt_s, tg = (double)n_decode / decode_s;
    const double pp_cpu = (double)n_prompt / prompt_cpu, tg_cpu = (double)n_decode / decode_cpu;
    printf("{\"bench\":\"forward\",\"model\":\"%s\",\"kernels\":\"%s\",\"threads\":%ld,"
           "\"load_ms\":%.1f,\"prompt_tokens\":%ld,\"prompt_tok_s\":%.3f,"
           "\"prompt_tok_per_cpu_s\":%.3f,\"decode_tokens\":%ld,\"decode_tok_s\":%.3f,"
           "\"decode_tok_per_cpu_s\":%.3f,\"peak_rss_mib\":%.1f}\n",
           path, kname, threads, load_ms, n_prompt, pp, pp_cpu, n_decode, tg, tg_cpu, rss);
    printf("\n| kernels | threads | load ms | pp%ld tok/s | tg%ld tok/s | pp tok/CPU-s | "
           "tg tok/CPU-s | peak RSS MiB |\n|---|---|---|---|---|---|---|---|\n"
           "| %s | %ld | %.1f | %.2f | %.2f | %.2f | %.2f | %.1f |\n",
           n_prompt, n_decode, kname, threads, load_ms, pp, tg, pp_cpu, tg_cpu, rss);

    free(tok);
    free(logits);
    bn_context_free(c);
    bn_threadpool_free(tp);
    bn_model_free(m);
    return 0;
}
