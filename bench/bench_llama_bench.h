/* Runs the reference's llama-bench (bitnet.cpp, built outside this project) on the same file with
 * the same prompt length, generated tokens, threads and repetitions, and reads its CSV, so that
 * bench-e2e can print ratios measured side by side in one run (speed claims compare against the
 * reference on the same machine in the same session, never against figures from elsewhere).
 *
 * llama-bench -o csv prints a header line and one line per test: the prompt test (n_gen 0) and
 * the generation test (n_prompt 0); avg_ts / stddev_ts are its tokens per second. */
#ifndef BN_BENCH_LLAMA_BENCH_H
#define BN_BENCH_LLAMA_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct bench_ref_result {
    int ok;
    double pp_ts, pp_sd, tg_ts, tg_sd;
} bench_ref_result;

/* Splits one CSV line in place (fields may be double-quoted; no quotes inside fields, as
 * llama-bench writes them). Returns the number of fields. */
static inline int bench_csv_split(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        if (*p == '"') {
            fields[n++] = ++p;
            p = strchr(p, '"');
            if (!p)
                return n;
            *p++ = '\0';
        } else {
            fields[n++] = p;
            p += strcspn(p, ",\r\n");
        }
        if (*p != ',') {
            *p = '\0';
            return n;
        }
        *p++ = '\0';
    }
    return n;
}

static inline int bench_csv_column(char **names, int n, const char *want)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], want) == 0)
            return i;
    return -1;
}

/* Runs `LLAMA_BENCH -m MODEL -p P -n N -t T -r R -o csv` (its stderr goes to /dev/null) and
 * reads the two rates. ok = 0, with a message on stderr, when it cannot be run or read. */
static inline bench_ref_result bench_llama_bench(const char *llama_bench, const char *model,
                                                 int n_prompt, int n_gen, int threads, int reps)
{
    bench_ref_result r = {0};
    char p[16], n[16], t[16], rr[16];
    snprintf(p, sizeof p, "%d", n_prompt);
    snprintf(n, sizeof n, "%d", n_gen);
    snprintf(t, sizeof t, "%d", threads);
    snprintf(rr, sizeof rr, "%d", reps);
    int fd[2];
    if (pipe(fd)) {
        perror("bench-e2e: pipe");
        return r;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("bench-e2e: fork");
        close(fd[0]);
        close(fd[1]);
        return r;
    }
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        if (!freopen("/dev/null", "w", stderr))
            _exit(127);
        execl(llama_bench, llama_bench, "-m", model, "-p", p, "-n", n, "-t", t, "-r", rr, "-o",
              "csv", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    char header[4096], line[4096];
    char *names[64], *vals[64];
    int n_names = 0, c_p = -1, c_n = -1, c_ts = -1, c_sd = -1, got = 0;
    if (f && fgets(header, sizeof header, f)) {
        n_names = bench_csv_split(header, names, 64);
        c_p = bench_csv_column(names, n_names, "n_prompt");
        c_n = bench_csv_column(names, n_names, "n_gen");
        c_ts = bench_csv_column(names, n_names, "avg_ts");
        c_sd = bench_csv_column(names, n_names, "stddev_ts");
    }
    while (f && c_p >= 0 && c_n >= 0 && c_ts >= 0 && c_sd >= 0 && fgets(line, sizeof line, f)) {
        if (bench_csv_split(line, vals, 64) != n_names)
            continue;
        if (atoi(vals[c_p]) == n_prompt && atoi(vals[c_n]) == 0) {
            r.pp_ts = atof(vals[c_ts]);
            r.pp_sd = atof(vals[c_sd]);
            got |= 1;
        } else if (atoi(vals[c_p]) == 0 && atoi(vals[c_n]) == n_gen) {
            r.tg_ts = atof(vals[c_ts]);
            r.tg_sd = atof(vals[c_sd]);
            got |= 2;
        }
    }
    if (f)
        fclose(f);
    else
        close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    r.ok = got == 3 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!r.ok)
        fprintf(stderr,
                "bench-e2e: the reference's llama-bench (%s) did not run or gave no "
                "prompt and generation rows (exit status %d)\n",
                llama_bench, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return r;
}

#endif
