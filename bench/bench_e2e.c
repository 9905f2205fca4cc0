/* End-to-end speed of the forward pass on a real-shape model: load time, prompt processing
 * (one batch of P tokens, matrix x matrix) and decoding (N tokens one at a time, greedy), peak
 * RSS, for each thread count. Each thread count runs in its own child process, so load time and
 * peak RSS are its own.
 *
 *   bench-e2e -m MODEL [-t 1,2] [-p 64] [-n 128] [-r 1] [-k KERNELS]
 *
 * As llama-bench does, one warm-up evaluation (which also faults the mmap'd weights in) comes
 * before the timed runs; -r repeats prompt+decode and reports the mean, standard deviation and
 * best run (the best is the least disturbed by other work on a shared machine).
 * The greedy tokens' hash is printed: it must be the same for every thread count (logits do
 * not depend on it). One JSON object per thread count, then a table.
 *
 * BITNET_LM_HEAD=screened builds the screened LM head's compact copy on the run's threads
 * (its time is part of load_ms, and reported alone) and asks for the greedy row only (keep 1):
 * the tokens' hash must equal the full head's (default, or BITNET_LM_HEAD=full). */
#include "bench_clock.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "forward.h"
#include "model.h"
#include "threadpool.h"

typedef struct result {
    int threads, ok;
    char kernels[32];
    double load_ms, pp_mean, pp_sd, pp_best, tg_mean, tg_sd, tg_best, rss_mb;
    int screened;                /* BITNET_LM_HEAD=screened */
    double build_ms, rows_per_token; /* its build time, exact LM-head rows per decode token */
    double build_cpu_ms;             /* process CPU time of the build (all threads) */
    double pp_cpu, tg_cpu; /* tokens per second of on-CPU time (see main's comment) */
    unsigned long long tokens_hash;
} result;

static double now_s(void) { return bench_clock_s(CLOCK_MONOTONIC); }

/* CPU time of the whole process (all threads). */
static double cpu_s(void) { return bench_clock_s(CLOCK_PROCESS_CPUTIME_ID); }

static int32_t argmax(const float *x, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return (int32_t)best;
}

static void mean_sd(const double *v, int n, double *mean, double *sd, double *best)
{
    double s = 0, s2 = 0;
    *best = 0;
    for (int i = 0; i < n; i++) {
        s += v[i];
        *best = v[i] > *best ? v[i] : *best;
    }
    *mean = s / n;
    for (int i = 0; i < n; i++)
        s2 += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(s2 / (n - 1)) : 0.0;
}

enum { max_reps = 16 };

/* One thread count, in the child process. */
static result run_one(const char *path, int threads, int n_prompt, int n_gen, int reps)
{
    result r;
    memset(&r, 0, sizeof r);
    r.threads = threads;
    bn_err err = {0};
    double t0 = now_s();
    bn_model *m = bn_model_load(path, &err);
    r.load_ms = (now_s() - t0) * 1e3;
    if (!m) {
        fprintf(stderr, "bench-e2e: %s\n", err.msg);
        return r;
    }
    snprintf(r.kernels, sizeof r.kernels, "%s", m->kernels->name);
    bn_threadpool *tp = bn_threadpool_create(threads, &err);
    bn_context *c = NULL;
    float *logits = NULL;
    int32_t *prompt = NULL;
    const char *head = getenv("BITNET_LM_HEAD");
    r.screened = head && !strcmp(head, "screened");
    if (r.screened && tp) {
        double tb = now_s(), cb = cpu_s();
        if (bn_model_build_lm_compact(m, tp, &err)) {
            fprintf(stderr, "bench-e2e: %s\n", err.msg);
            goto done;
        }
        r.build_ms = (now_s() - tb) * 1e3;
        r.build_cpu_ms = (cpu_s() - cb) * 1e3;
        r.load_ms += r.build_ms;
    }
    if (tp)
        c = bn_context_create(m, (uint32_t)(n_prompt + n_gen + 1), (uint32_t)n_prompt, tp, &err);
    const bn_lm_request greedy = {1, NULL, 0};
    if (c && r.screened)
        bn_context_set_lm_request(c, &greedy);
    logits = malloc((size_t)m->hp.n_vocab * sizeof *logits);
    prompt = malloc((size_t)n_prompt * sizeof *prompt);
    if (!c || !logits || !prompt) {
        fprintf(stderr, "bench-e2e: %s\n", c ? "out of memory" : err.msg);
        goto done;
    }
    /* a fixed pseudo-random prompt (the speed does not depend on the ids) */
    uint32_t s = 12345;
    for (int i = 0; i < n_prompt; i++) {
        s = s * 1103515245u + 12345u;
        prompt[i] = (int32_t)((s >> 8) % m->hp.n_vocab);
    }
    /* warm-up: touches every weight page */
    if (bn_forward(c, prompt, 1, logits, 1, &err)) {
        fprintf(stderr, "bench-e2e: %s\n", err.msg);
        goto done;
    }
    double pp[max_reps], tg[max_reps];
    for (int rep = 0; rep < reps; rep++) {
        bn_context_set_pos(c, 0);
        double a = now_s(), ca = cpu_s();
        if (bn_forward(c, prompt, (uint32_t)n_prompt, logits, 1, &err)) {
            fprintf(stderr, "bench-e2e: %s\n", err.msg);
            goto done;
        }
        double b = now_s(), cb = cpu_s();
        int32_t tok = argmax(logits, m->hp.n_vocab);
        unsigned long long h = 1469598103934665603ull;
        double rows = 0;
        for (int i = 0; i < n_gen; i++) {
            h = (h ^ (unsigned long long)tok) * 1099511628211ull;
            if (bn_forward(c, &tok, 1, logits, 1, &err)) {
                fprintf(stderr, "bench-e2e: %s\n", err.msg);
                goto done;
            }
            rows += (double)bn_context_lm_rows(c);
            tok = argmax(logits, m->hp.n_vocab);
        }
        r.rows_per_token = rows / n_gen;
        double d = now_s(), cd = cpu_s();
        pp[rep] = n_prompt / (b - a);
        tg[rep] = n_gen / (d - b);
        if (threads == 1) { /* best on-CPU rate over the repetitions */
            r.pp_cpu = n_prompt / (cb - ca) > r.pp_cpu ? n_prompt / (cb - ca) : r.pp_cpu;
            r.tg_cpu = n_gen / (cd - cb) > r.tg_cpu ? n_gen / (cd - cb) : r.tg_cpu;
        }
        r.tokens_hash = h;
    }
    mean_sd(pp, reps, &r.pp_mean, &r.pp_sd, &r.pp_best);
    mean_sd(tg, reps, &r.tg_mean, &r.tg_sd, &r.tg_best);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r.rss_mb = (double)ru.ru_maxrss / 1024.0;
    r.ok = 1;
done:
    free(prompt);
    free(logits);
    bn_context_free(c);
    bn_threadpool_free(tp);
    bn_model_free(m);
    return r;
}

static int parse_list(char *s, int *out, int max)
{
    int n = 0;
    for (char *t = strtok(s, ","); t && n < max; t = strtok(NULL, ","))
        out[n++] = atoi(t);
    return n;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench-e2e -m MODEL [-t 1,2] [-p 64] [-n 128] [-r REPS] "
                    "[-k KERNELS]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *kern = NULL;
    int threads[16] = {1, 2}, n_threads = 2, n_prompt = 64, n_gen = 128, reps = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            return usage();
        if (!strcmp(a, "-m"))
            path = argv[++i];
        else if (!strcmp(a, "-t"))
            n_threads = parse_list(argv[++i], threads, 16);
        else if (!strcmp(a, "-p"))
            n_prompt = atoi(argv[++i]);
        else if (!strcmp(a, "-n"))
            n_gen = atoi(argv[++i]);
        else if (!strcmp(a, "-r"))
            reps = atoi(argv[++i]);
        else if (!strcmp(a, "-k"))
            kern = argv[++i];
        else
            return usage();
    }
    if (!path || n_threads < 1 || n_prompt < 1 || n_prompt > 4096 || n_gen < 1 ||
        n_gen > 4096 || reps < 1 || reps > max_reps)
        return usage();
    for (int i = 0; i < n_threads; i++)
        if (threads[i] < 1 || threads[i] > 256)
            return usage();
    if (kern && bn_kernels_select(kern)) {
        fprintf(stderr, "bench-e2e: kernel path '%s' is unknown or not supported here\n", kern);
        return 1;
    }

    result res[16];
    for (int i = 0; i < n_threads; i++) {
        int fd[2];
        if (pipe(fd)) {
            perror("bench-e2e: pipe");
            return 1;
        }
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            perror("bench-e2e: fork");
            return 1;
        }
        if (pid == 0) {
            close(fd[0]);
            result r = run_one(path, threads[i], n_prompt, n_gen, reps);
            ssize_t w = write(fd[1], &r, sizeof r);
            _exit(w == (ssize_t)sizeof r && r.ok ? 0 : 1);
        }
        close(fd[1]);
        memset(&res[i], 0, sizeof res[i]);
        ssize_t got = read(fd[0], &res[i], sizeof res[i]);
        close(fd[0]);
        int st = 0;
        waitpid(pid, &st, 0);
        if (got != (ssize_t)sizeof res[i] || !res[i].ok) {
            fprintf(stderr, "bench-e2e: the run with %d threads failed\n", threads[i]);
            return 1;
        }
        const result *r = &res[i];
        printf("{\"bench\":\"e2e\",\"model\":\"%s\",\"kernels\":\"%s\",\"threads\":%d,"
               "\"load_ms\":%.1f,\"prompt_tokens\":%d,\"prompt_tok_s\":%.2f,"
               "\"prompt_tok_s_sd\":%.2f,\"prompt_tok_s_best\":%.2f,\"gen_tokens\":%d,"
               "\"decode_tok_s\":%.2f,\"decode_tok_s_sd\":%.2f,\"decode_tok_s_best\":%.2f,"
               "\"reps\":%d,\"peak_rss_mb\":%.1f,\"prompt_tok_s_cpu\":%.2f,"
               "\"decode_tok_s_cpu\":%.2f,\"lm_head\":\"%s\",\"lm_build_ms\":%.1f,"
               "\"lm_build_cpu_ms\":%.1f,"
               "\"lm_rows_per_token\":%.1f,"
               "\"tokens_hash\":\"%016llx\"}\n",
               path, r->kernels, r->threads, r->load_ms, n_prompt, r->pp_mean, r->pp_sd, r->pp_best,
               n_gen, r->tg_mean, r->tg_sd, r->tg_best, reps, r->rss_mb, r->pp_cpu, r->tg_cpu,
               r->screened ? "screened" : "full", r->build_ms, r->build_cpu_ms, r->rows_per_token,
               r->tokens_hash);
        fflush(stdout);
    }
    printf("\n| kernels | threads | load ms | pp%d tok/s (best) | tg%d tok/s (best) | peak RSS MB |\n"
           "|---|---|---|---|---|---|\n",
           n_prompt, n_gen);
    for (int i = 0; i < n_threads; i++)
        printf("| %s | %d | %.0f | %.2f ± %.2f (%.2f) | %.2f ± %.2f (%.2f) | %.0f |\n",
               res[i].kernels, res[i].threads, res[i].load_ms, res[i].pp_mean, res[i].pp_sd,
               res[i].pp_best, res[i].tg_mean, res[i].tg_sd, res[i].tg_best, res[i].rss_mb);
    /* On a shared machine wall time includes the time other work held the CPU. With one
     * thread, tokens per second of process CPU time is what an idle machine would give (two
     * threads spin while waiting, so their CPU time says nothing; 0 there). */
    printf("\non-CPU rate, 1 thread (robust to other load): ");
    for (int i = 0; i < n_threads; i++)
        if (res[i].threads == 1)
            printf("pp%d %.2f tok/s, tg%d %.2f tok/s", n_prompt, res[i].pp_cpu, n_gen,
                   res[i].tg_cpu);
    printf("\n");
    /* FORMAT.md section 7: bitnet.cpp (I2_S, AVX2/AVX-512 build, llama-bench -p 64 -n 32) on
     * this machine type with the same kind of file, for comparison */
    printf("reference (bitnet.cpp, FORMAT.md 7): 1 thread pp64 25.4 (runs 25.7, 28.8), "
           "tg32 5.17 (5.58, 5.77); 2 threads pp64 23.3 (32.5), tg32 4.25 (4.38) tok/s\n");
    for (int i = 1; i < n_threads; i++)
        if (res[i].tokens_hash != res[0].tokens_hash) {
            fprintf(stderr, "bench-e2e: greedy tokens differ between %d and %d threads\n",
                    res[0].threads, res[i].threads);
            return 1;
        }
    return 0;
}
