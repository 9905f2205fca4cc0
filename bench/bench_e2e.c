/* End-to-end speed through the public API (bitnet.h only): engine open time, prompt
 * processing (one batch of P tokens) and greedy decoding of N tokens, peak RSS, for each thread
 * count. Each thread count runs in its own child process, so open time and peak RSS are its
 * own.
 *
 *   bench-e2e -m MODEL [-t 1,2] [-p 64] [-n 128] [-r 1] [-c CONTEXT] [-k KERNELS] [-b BUSY]
 *             [-R LLAMA_BENCH]
 *
 * -R runs the reference's llama-bench (bitnet.cpp's, built elsewhere) right after each of our
 * thread counts, on the same file with the same -p -n -t -r, and prints both side by side with
 * the ratios: the only comparison with the reference this project reports is one measured on
 * the same machine in the same run (bench_llama_bench.h).
 *
 * -b BUSY starts that many spinning processes for the whole run (contention: one per core is
 * what a busy shared host or a fractional Lambda vCPU looks like); -t 1,2,1,2 alternates
 * thread counts so that both see the same drifting background load.
 *
 * As llama-bench does, one warm-up evaluation (which also faults the mmap'd weights in) comes
 * before the timed runs; -r repeats prompt+decode and reports the mean, standard deviation and
 * best run (the best is the least disturbed by other work on a shared machine). Each run is one
 * bn_generate on a reset session (prompt_ids, n_predict N + 1, temperature 0): the prompt is
 * one batch, then N tokens are evaluated one at a time. Open time is bn_engine_open's: the
 * model and its tokenizer. -k pins the kernel path through BITNET_KERNELS (the engine reads
 * it once). The greedy tokens' hash is printed: it must be the
 * same for every thread count (logits do not depend on it). One JSON object per thread count,
 * then a table.
 *
 * The engine's LM head is used as it is: screened by default (BITNET_LM_HEAD=full pins the full
 * head); the compact copy's build time is part of the open time and reported alone, with the
 * exact LM-head rows computed per token. The tokens' hash must not depend on it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bitnet.h"
#include "bench_busy.h"
#include "bench_clock.h"
#include "bench_llama_bench.h"
#include "bench_read.h"

typedef struct result {
    int threads, ok;
    char kernels[32];
    double load_ms, pp_mean, pp_sd, pp_best, tg_mean, tg_sd, tg_best, rss_mb;
    int screened;                    /* the engine's LM head is the screened one */
    double build_ms, rows_per_token; /* its build time, exact LM-head rows per evaluation */
    double pp_cpu, tg_cpu;           /* tokens per second of on-CPU time (see main's comment) */
    unsigned gen_eval;               /* tokens evaluated one at a time in the last run */
    double bytes_per_token;          /* weight bytes one decode token reads (see below) */
    double hp_copy_ms;               /* the weights' copy onto huge pages (part of the load) */
    unsigned long long tokens_hash;
} result;

/* CPU time of the whole process (all threads). */
static double cpu_s(void) { return bench_clock_s(CLOCK_PROCESS_CPUTIME_ID); }

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

enum {
    max_reps = 16
};

/* The first sampled token ends prompt processing: its callback splits the CPU time. */
typedef struct cpu_split {
    double first_token_cpu;
    int seen;
} cpu_split;

static int on_token(void *user, int32_t id, const char *text, size_t len)
{
    cpu_split *c = user;
    if (!c->seen && id >= 0) {
        c->first_token_cpu = cpu_s();
        c->seen = 1;
    }
    return 0;
}

static int fail(const char *what, const bn_err *err)
{
    fprintf(stderr, "bench-e2e: %s: %s\n", what, err->msg);
    return -1;
}

/* Timed runs on an open session; fills r's rates and hash. */
static int timed_runs(bn_session *s, const int32_t *prompt, int n_prompt, int n_gen, int reps,
                      result *r)
{
    bn_err err = {0};
    bn_generate_params g = bn_generate_default();
    g.prompt_ids = prompt;
    g.n_prompt_ids = (size_t)n_prompt;
    g.sampling.temp = 0.0f;
    g.on_token = on_token;
    /* warm-up: touches every weight page */
    g.n_prompt_ids = 1;
    g.n_predict = 0;
    if (bn_generate(s, &g, NULL, &err))
        return fail("warm-up", &err);
    g.n_prompt_ids = (size_t)n_prompt;
    g.n_predict = n_gen + 1; /* the last sampled token is not evaluated: n_gen evaluations */
    double pp[max_reps], tg[max_reps];
    for (int rep = 0; rep < reps; rep++) {
        bn_session_reset(s); /* no KV-cache reuse of the previous run's prompt */
        cpu_split split = {0, 0};
        g.user = &split;
        bn_stats st;
        double c0 = cpu_s();
        if (bn_generate(s, &g, &st, &err))
            return fail("generate", &err);
        double c1 = cpu_s();
        if (st.gen_eval == 0) {
            fprintf(stderr, "bench-e2e: generation stopped after the first token (%s)\n",
                    bn_stop_reason_name(st.stop_reason));
            return -1;
        }
        if (st.stop_reason != BN_STOP_LENGTH)
            fprintf(stderr,
                    "bench-e2e: %d threads: decoding stopped (%s) after %u of %d tokens; "
                    "the rate is over those\n",
                    r->threads, bn_stop_reason_name(st.stop_reason), st.gen_eval, n_gen);
        pp[rep] = st.prompt_tok_s;
        tg[rep] = st.gen_tok_s;
        if (r->threads == 1 && split.seen) { /* best on-CPU rate over the repetitions */
            double pc = n_prompt / (split.first_token_cpu - c0);
            double tc = st.gen_eval / (c1 - split.first_token_cpu);
            r->pp_cpu = pc > r->pp_cpu ? pc : r->pp_cpu;
            r->tg_cpu = tc > r->tg_cpu ? tc : r->tg_cpu;
        }
        /* FNV-1a of the first n_gen sampled ids (the ones fed back) */
        size_t n_out = 0;
        const int32_t *out = bn_session_output_ids(s, &n_out);
        unsigned long long h = 1469598103934665603ull;
        for (size_t i = 0; i < n_out && i < (size_t)n_gen; i++)
            h = (h ^ (unsigned long long)out[i]) * 1099511628211ull;
        r->tokens_hash = h;
        r->gen_eval = st.gen_eval;
        r->rows_per_token = st.lm_evals ? (double)st.lm_rows / st.lm_evals : 0;
    }
    mean_sd(pp, reps, &r->pp_mean, &r->pp_sd, &r->pp_best);
    mean_sd(tg, reps, &r->tg_mean, &r->tg_sd, &r->tg_best);
    return 0;
}

/* One thread count, in the child process. */
static result run_one(const char *path, const char *kern, int threads, int n_prompt, int n_gen,
                      int n_ctx, int reps)
{
    result r;
    memset(&r, 0, sizeof r);
    r.threads = threads;
    bn_err err = {0};
    bn_engine *e = bn_engine_open(path, NULL, &err);
    if (!e) {
        fail("open", &err);
        return r;
    }
    bn_engine_info info;
    bn_engine_get_info(e, &info);
    r.load_ms = info.load_ms;
    snprintf(r.kernels, sizeof r.kernels, "%s", info.kernels ? info.kernels : "?");
    r.screened = info.lm_head && strcmp(info.lm_head, "screened") == 0;
    r.build_ms = info.lm_build_ms;
    r.hp_copy_ms = info.hugepage_copy_ms;
    const double head_bytes = r.screened ? (double)info.lm_compact_bytes
                                         : (double)info.n_vocab * (double)info.lm_head_row_bytes;
    if (kern && strcmp(r.kernels, kern) != 0) {
        fprintf(stderr, "bench-e2e: kernel path '%s' is unknown or not supported here (got %s)\n",
                kern, r.kernels);
        bn_engine_free(e);
        return r;
    }
    bn_session_params sp = {(uint32_t)n_ctx, threads, (uint32_t)n_prompt};
    bn_session *s = bn_session_create(e, &sp, &err);
    int32_t *prompt = malloc((size_t)n_prompt * sizeof *prompt);
    if (!s) {
        fail("session", &err);
        goto done;
    }
    if (!prompt) {
        fprintf(stderr, "bench-e2e: out of memory\n");
        goto done;
    }
    /* a fixed pseudo-random prompt (the speed does not depend on the ids) */
    uint32_t x = 12345;
    for (int i = 0; i < n_prompt; i++) {
        x = x * 1103515245u + 12345u;
        prompt[i] = (int32_t)((x >> 8) % info.n_vocab);
    }
    if (timed_runs(s, prompt, n_prompt, n_gen, reps, &r))
        goto done;
    r.rss_mb = (double)bn_peak_rss_kib() / 1024.0;
    /* the layers' matrices, the head (its compact copy and the rows computed exactly when
     * screened); the KV cache and activations are left out (~6 MB at 100 positions, 2B-4T) */
    r.bytes_per_token = (double)info.decode_layer_bytes + head_bytes +
                        (r.screened ? r.rows_per_token * (double)info.lm_head_row_bytes : 0.0);
    r.ok = 1;
done:
    free(prompt);
    bn_session_free(s);
    bn_engine_free(e);
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
                    "[-c CONTEXT] [-k KERNELS] [-b BUSY] [-w READ_GB_S] [-R LLAMA_BENCH]\n");
    return 2;
}

/* Runs one thread count in a child process and reads its result back through a pipe. */
static int run_child(const char *path, const char *kern, int threads, int n_prompt, int n_gen,
                     int n_ctx, int reps, result *out)
{
    int fd[2];
    if (pipe(fd)) {
        perror("bench-e2e: pipe");
        return -1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("bench-e2e: fork");
        return -1;
    }
    if (pid == 0) {
        close(fd[0]);
        result r = run_one(path, kern, threads, n_prompt, n_gen, n_ctx, reps);
        ssize_t w = write(fd[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r && r.ok ? 0 : 1);
    }
    close(fd[1]);
    memset(out, 0, sizeof *out);
    ssize_t got = read(fd[0], out, sizeof *out);
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    if (got != (ssize_t)sizeof *out || !out->ok) {
        fprintf(stderr, "bench-e2e: the run with %d threads failed\n", threads);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *kern = NULL, *llama_bench = NULL;
    int threads[16] = {1, 2}, n_threads = 2, n_prompt = 64, n_gen = 128, reps = 1, n_ctx = 0,
        busy = 0;
    double read_gbs = -1.0; /* one thread's read bandwidth; measured here unless -w gives it */
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
        else if (!strcmp(a, "-c"))
            n_ctx = atoi(argv[++i]);
        else if (!strcmp(a, "-k"))
            kern = argv[++i];
        else if (!strcmp(a, "-b"))
            busy = atoi(argv[++i]);
        else if (!strcmp(a, "-w"))
            read_gbs = atof(argv[++i]);
        else if (!strcmp(a, "-R"))
            llama_bench = argv[++i];
        else
            return usage();
    }
    if (busy < 0 || busy > bench_busy_max || (read_gbs != -1.0 && !(read_gbs > 0.0)))
        return usage();
    if (!path || n_threads < 1 || n_prompt < 1 || n_prompt > 4096 || n_gen < 1 || n_gen > 4096 ||
        reps < 1 || reps > max_reps)
        return usage();
    for (int i = 0; i < n_threads; i++)
        if (threads[i] < 1 || threads[i] > 256)
            return usage();
    if (n_ctx == 0)
        n_ctx = n_prompt + n_gen + 1;
    if (n_ctx < n_prompt + n_gen + 1) {
        fprintf(stderr, "bench-e2e: context %d too small for %d + %d tokens\n", n_ctx, n_prompt,
                n_gen);
        return 2;
    }
    if (kern)
        setenv("BITNET_KERNELS", kern, 1);

    /* measured before the runs (and before -b's load): bench-membw -t 1's loop, timed on the
     * CPU like the decode rate it is compared with */
    if (read_gbs < 0.0)
        read_gbs = bench_read_gbs(1024, 5);
    result res[16];
    bench_ref_result ref[16] = {{0}};
    pid_t busy_pids[bench_busy_max];
    fflush(stdout);
    int n_busy = bench_busy_start(busy, busy_pids);
    for (int i = 0; i < n_threads; i++) {
        if (run_child(path, kern, threads[i], n_prompt, n_gen, n_ctx, reps, &res[i])) {
            bench_busy_stop(n_busy, busy_pids);
            return 1;
        }
        const result *r = &res[i];
        printf("{\"bench\":\"e2e\",\"model\":\"%s\",\"kernels\":\"%s\",\"threads\":%d,"
               "\"load_ms\":%.1f,\"prompt_tokens\":%d,\"prompt_tok_s\":%.2f,"
               "\"prompt_tok_s_sd\":%.2f,\"prompt_tok_s_best\":%.2f,\"gen_tokens\":%u,"
               "\"decode_tok_s\":%.2f,\"decode_tok_s_sd\":%.2f,\"decode_tok_s_best\":%.2f,"
               "\"reps\":%d,\"context\":%d,\"peak_rss_mb\":%.1f,\"prompt_tok_s_cpu\":%.2f,"
               "\"decode_tok_s_cpu\":%.2f,\"busy\":%d,\"lm_head\":\"%s\",\"lm_build_ms\":%.1f,"
               "\"lm_rows_per_eval\":%.1f,\"bytes_per_token\":%.0f,\"read_gb_s\":%.2f,"
               "\"decode_gb_s_cpu\":%.2f,\"hugepage_copy_ms\":%.1f,\"tokens_hash\":\"%016llx\"}\n",
               path, r->kernels, r->threads, r->load_ms, n_prompt, r->pp_mean, r->pp_sd, r->pp_best,
               r->gen_eval, r->tg_mean, r->tg_sd, r->tg_best, reps, n_ctx, r->rss_mb, r->pp_cpu,
               r->tg_cpu, busy, r->screened ? "screened" : "full", r->build_ms, r->rows_per_token,
               r->bytes_per_token, read_gbs, r->bytes_per_token * r->tg_cpu / 1e9, r->hp_copy_ms,
               r->tokens_hash);
        fflush(stdout);
        if (llama_bench) {
            ref[i] = bench_llama_bench(llama_bench, path, n_prompt, n_gen, threads[i], reps);
            if (!ref[i].ok) {
                bench_busy_stop(n_busy, busy_pids);
                return 1;
            }
            printf("{\"bench\":\"llama-bench\",\"model\":\"%s\",\"threads\":%d,"
                   "\"prompt_tokens\":%d,\"prompt_tok_s\":%.2f,\"prompt_tok_s_sd\":%.2f,"
                   "\"gen_tokens\":%d,\"decode_tok_s\":%.2f,\"decode_tok_s_sd\":%.2f,"
                   "\"reps\":%d}\n",
                   path, threads[i], n_prompt, ref[i].pp_ts, ref[i].pp_sd, n_gen, ref[i].tg_ts,
                   ref[i].tg_sd, reps);
            fflush(stdout);
        }
    }
    bench_busy_stop(n_busy, busy_pids);
    if (n_busy)
        printf("\n(with %d competing busy processes)\n", n_busy);
    printf(
        "\n| kernels | threads | load ms | pp%d tok/s (best) | tg%d tok/s (best) | peak RSS MB |\n"
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
            printf("pp%d %.2f tok/s, tg%d %.2f tok/s; ", n_prompt, res[i].pp_cpu, n_gen,
                   res[i].tg_cpu);
    printf("\n");
    /* Decode reads every layer matrix and the LM head (or its compact copy) once per token, so
     * its bytes per second over one thread's plain read rate says how close it is to the
     * memory limit. */
    for (int i = 0; i < n_threads; i++)
        if (res[i].threads == 1) {
            const double gbs = res[i].bytes_per_token * res[i].tg_cpu / 1e9;
            printf("decode bytes: %.1f MB per token (%s head, %.1f exact rows); on-CPU %.2f GB/s "
                   "= %.0f%% of one thread's on-CPU read rate (%.2f GB/s)\n",
                   res[i].bytes_per_token / 1e6, res[i].screened ? "screened" : "full",
                   res[i].rows_per_token, gbs, read_gbs > 0.0 ? 100.0 * gbs / read_gbs : 0.0,
                   read_gbs);
            break;
        }
    /* Wall-clock rates on both sides (llama-bench reports wall time; its generation test
     * starts from an empty context, ours after the P-token prompt). */
    if (llama_bench) {
        printf("\nside by side with the reference's llama-bench (same file, wall clock, mean of "
               "%d):\n\n| threads | pp%d ours | pp%d reference | ratio | tg%d ours | "
               "tg%d reference | ratio |\n|---|---|---|---|---|---|---|\n",
               reps, n_prompt, n_prompt, n_gen, n_gen);
        for (int i = 0; i < n_threads; i++)
            printf("| %d | %.2f | %.2f | %.2fx | %.2f | %.2f | %.2fx |\n", res[i].threads,
                   res[i].pp_mean, ref[i].pp_ts, res[i].pp_mean / ref[i].pp_ts, res[i].tg_mean,
                   ref[i].tg_ts, res[i].tg_mean / ref[i].tg_ts);
    } else {
        printf("(no reference figures: -R LLAMA_BENCH runs the reference beside each thread "
               "count)\n");
    }
    for (int i = 1; i < n_threads; i++)
        if (res[i].tokens_hash != res[0].tokens_hash) {
            fprintf(stderr, "bench-e2e: greedy tokens differ between %d and %d threads\n",
                    res[0].threads, res[i].threads);
            return 1;
        }
    return 0;
}
