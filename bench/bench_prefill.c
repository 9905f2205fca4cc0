/* Prompt evaluation speed against prompt length: tokens per second (wall and on-CPU) for each
 * length, from an empty KV cache, in batches of -B tokens (512, bitnet-run's default). The
 * per-token cost of the matmuls is flat; attention grows with the position, so the longer
 * prompts show how much of a long prompt goes to attention.
 *
 *   bench-prefill -m MODEL [-p 64,256,1024,4096] [-t 1] [-B 512] [-r 1] [-b BUSY] [-k KERNELS]
 *
 * One JSON object per (threads, length), then a table with the rate relative to the first
 * length. Measured figures (before and after each change to attention) are in README.md,
 * "Performance (x86_64)"; on a busy machine compare alternating runs and each run's ratio to
 * its own first length. */
#include "bench_busy.h"
#include "bench_clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "kernels.h"
#include "model.h"
#include "threadpool.h"

enum {
    max_list = 16
};

static int parse_list(char *s, int *out, int max)
{
    int n = 0;
    for (char *t = strtok(s, ","); t && n < max; t = strtok(NULL, ","))
        out[n++] = atoi(t);
    return n;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench-prefill -m MODEL [-p 64,256,1024,4096] [-t 1] [-B 512] "
                    "[-r REPS] [-b BUSY] [-k KERNELS]\n");
    return 2;
}

typedef struct rate {
    double wall, cpu; /* best tokens per second over the repetitions */
} rate;

static int measure(const bn_model *m, bn_threadpool *tp, int n_prompt, int n_batch, int reps,
                   rate *out)
{
    bn_err err = {0};
    bn_context *c = bn_context_create(m, (uint32_t)n_prompt, (uint32_t)n_batch, tp, &err);
    float *logits = malloc((size_t)m->hp.n_vocab * sizeof *logits);
    int32_t *prompt = malloc((size_t)n_prompt * sizeof *prompt);
    int rc = -1;
    if (!c || !logits || !prompt) {
        fprintf(stderr, "bench-prefill: %s\n", c ? "out of memory" : err.msg);
        goto done;
    }
    uint32_t s = 12345; /* fixed pseudo-random ids: the speed does not depend on them */
    for (int i = 0; i < n_prompt; i++) {
        s = s * 1103515245u + 12345u;
        prompt[i] = (int32_t)((s >> 8) % m->hp.n_vocab);
    }
    out->wall = out->cpu = 0;
    for (int r = 0; r < reps; r++) {
        bn_context_set_pos(c, 0);
        double a = bench_clock_s(CLOCK_MONOTONIC), ca = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID);
        if (bn_forward(c, prompt, (uint32_t)n_prompt, logits, 1, &err)) {
            fprintf(stderr, "bench-prefill: %s\n", err.msg);
            goto done;
        }
        double b = bench_clock_s(CLOCK_MONOTONIC), cb = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID);
        if (n_prompt / (b - a) > out->wall)
            out->wall = n_prompt / (b - a);
        if (n_prompt / (cb - ca) > out->cpu)
            out->cpu = n_prompt / (cb - ca);
    }
    rc = 0;
done:
    free(prompt);
    free(logits);
    bn_context_free(c);
    return rc;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *kern = NULL;
    int lens[max_list] = {64, 256, 1024, 4096}, n_lens = 4;
    int threads[max_list] = {1}, n_threads = 1, n_batch = 512, reps = 1, busy = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            return usage();
        if (!strcmp(a, "-m"))
            path = argv[++i];
        else if (!strcmp(a, "-p"))
            n_lens = parse_list(argv[++i], lens, max_list);
        else if (!strcmp(a, "-t"))
            n_threads = parse_list(argv[++i], threads, max_list);
        else if (!strcmp(a, "-B"))
            n_batch = atoi(argv[++i]);
        else if (!strcmp(a, "-r"))
            reps = atoi(argv[++i]);
        else if (!strcmp(a, "-b"))
            busy = atoi(argv[++i]);
        else if (!strcmp(a, "-k"))
            kern = argv[++i];
        else
            return usage();
    }
    if (!path || n_lens < 1 || n_threads < 1 || n_batch < 1 || reps < 1 || busy < 0 ||
        busy > bench_busy_max)
        return usage();
    for (int i = 0; i < n_lens; i++)
        if (lens[i] < 1 || lens[i] > 1 << 16)
            return usage();
    for (int i = 0; i < n_threads; i++)
        if (threads[i] < 1 || threads[i] > 256)
            return usage();
    if (kern && bn_kernels_select(kern)) {
        fprintf(stderr, "bench-prefill: kernel path '%s' is unknown or not supported here\n", kern);
        return 1;
    }
    bn_err err = {0};
    bn_model *m = bn_model_load(path, &err);
    if (!m) {
        fprintf(stderr, "bench-prefill: %s\n", err.msg);
        return 1;
    }
    pid_t pids[bench_busy_max];
    fflush(stdout);
    int n_busy = bench_busy_start(busy, pids);
    rate res[max_list][max_list];
    int rc = 0;
    for (int ti = 0; ti < n_threads && rc == 0; ti++) {
        bn_threadpool *tp = bn_threadpool_create(threads[ti], &err);
        if (!tp) {
            fprintf(stderr, "bench-prefill: %s\n", err.msg);
            rc = 1;
            break;
        }
        rate warm; /* pages the weights in */
        measure(m, tp, 8, n_batch, 1, &warm);
        for (int li = 0; li < n_lens && rc == 0; li++) {
            if (measure(m, tp, lens[li], n_batch, reps, &res[ti][li])) {
                rc = 1;
                break;
            }
            printf("{\"bench\":\"prefill\",\"model\":\"%s\",\"kernels\":\"%s\",\"threads\":%d,"
                   "\"batch\":%d,\"prompt_tokens\":%d,\"prompt_tok_s\":%.2f,"
                   "\"prompt_tok_s_cpu\":%.2f,\"busy\":%d,\"reps\":%d}\n",
                   path, m->kernels->name, threads[ti], n_batch, lens[li], res[ti][li].wall,
                   res[ti][li].cpu, n_busy, reps);
            fflush(stdout);
        }
        bn_threadpool_free(tp);
    }
    bench_busy_stop(n_busy, pids);
    if (rc == 0) {
        printf("\n| threads | prompt tokens | tok/s (wall) | tok/s (on-CPU) | on-CPU vs pp%d |\n"
               "|---|---|---|---|---|\n",
               lens[0]);
        for (int ti = 0; ti < n_threads; ti++)
            for (int li = 0; li < n_lens; li++)
                printf("| %d | %d | %.1f | %.1f | %.2f |\n", threads[ti], lens[li],
                       res[ti][li].wall, res[ti][li].cpu, res[ti][li].cpu / res[ti][0].cpu);
        if (n_busy)
            printf("(with %d competing busy processes)\n", n_busy);
    }
    bn_model_free(m);
    return rc;
}
