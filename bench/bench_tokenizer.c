/* Tokenizer speed: vocabulary load time and tokens/s on the two 1 MB bench texts, one core,
 * best of N runs (wall clock and thread CPU time). Prints one JSON object per result, then a
 * table.
 *
 *   bench-tokenizer [--shared DIR] [--vocab FILE] [--runs N] [--pre llama3|default] [TEXT...]
 * DIR defaults to $BN_SHARED_DIR, else ../shared; TEXT defaults to DIR/tokenizer/bench/
 * english-1mb.txt and mixed-1mb.txt. */
#include "bench_clock.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gguf.h"
#include "tokenizer.h"

static double now_s(void) { return bench_clock_s(CLOCK_MONOTONIC); }
/* CPU time of this thread: on a shared machine, wall time also counts time spent waiting for
 * a core; both are reported. */
static double cpu_s(void) { return bench_clock_s(CLOCK_THREAD_CPUTIME_ID); }

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        *len = (size_t)n;
    return buf;
}

int main(int argc, char **argv)
{
    const char *shared = getenv("BN_SHARED_DIR") ? getenv("BN_SHARED_DIR") : "../shared";
    const char *vocab = NULL, *pre_name = "llama3";
    const char *texts[16];
    int n_texts = 0, runs = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--shared") && i + 1 < argc)
            shared = argv[++i];
        else if (!strcmp(argv[i], "--vocab") && i + 1 < argc)
            vocab = argv[++i];
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--pre") && i + 1 < argc)
            pre_name = argv[++i];
        else if (argv[i][0] == '-') {
            fprintf(stderr,
                    "usage: %s [--shared DIR] [--vocab FILE] [--runs N] "
                    "[--pre llama3|default] [TEXT...]\n",
                    argv[0]);
            return 2;
        } else if (n_texts < 16)
            texts[n_texts++] = argv[i];
    }
    if (runs < 1)
        runs = 1;
    bn_pretokenizer pre;
    if (bn_pretokenizer_from_name(pre_name, &pre)) {
        fprintf(stderr, "bench-tokenizer: unknown pre-tokenizer '%s'\n", pre_name);
        return 2;
    }
    char vbuf[4096], t1[4096], t2[4096];
    if (!vocab) {
        snprintf(vbuf, sizeof vbuf, "%s/tokenizer/llama3-vocab.gguf", shared);
        vocab = vbuf;
    }
    if (n_texts == 0) {
        snprintf(t1, sizeof t1, "%s/tokenizer/bench/english-1mb.txt", shared);
        snprintf(t2, sizeof t2, "%s/tokenizer/bench/mixed-1mb.txt", shared);
        texts[n_texts++] = t1;
        texts[n_texts++] = t2;
    }
    bn_err err = {0};
    double best_open = 1e9, best_load = 1e9, best_load_cpu = 1e9;
    bn_gguf *g = NULL;
    bn_tokenizer *t = NULL;
    for (int r = 0; r < runs; r++) {
        bn_tokenizer_free(t);
        bn_gguf_close(g);
        double t0 = now_s();
        g = bn_gguf_open(vocab, &err);
        double t_open = now_s(), c_open = cpu_s();
        t = g ? bn_tokenizer_load(g, &err) : NULL;
        double t_load = now_s(), c_load = cpu_s();
        if (c_load - c_open < best_load_cpu)
            best_load_cpu = c_load - c_open;
        if (!t) {
            fprintf(stderr, "bench-tokenizer: %s\n", err.msg);
            bn_gguf_close(g);
            return 1;
        }
        if (t_open - t0 < best_open)
            best_open = t_open - t0;
        if (t_load - t_open < best_load)
            best_load = t_load - t_open;
    }
    printf("{\"bench\":\"tokenizer_load\",\"vocab\":\"%s\",\"n_vocab\":%d,\"gguf_open_ms\":%.3f,"
           "\"tokenizer_load_ms\":%.3f,\"tokenizer_load_cpu_ms\":%.3f,\"runs\":%d}\n",
           vocab, bn_tokenizer_n_vocab(t), best_open * 1e3, best_load * 1e3, best_load_cpu * 1e3,
           runs);
    double tps[16] = {0}, secs[16] = {0}, cpus[16] = {0};
    size_t ntok[16] = {0}, bytes[16] = {0};
    bn_tokenize_opts o = {BN_BOS_NEVER, false, pre};
    for (int k = 0; k < n_texts; k++) {
        size_t len;
        char *text = read_file(texts[k], &len);
        if (!text) {
            fprintf(stderr, "bench-tokenizer: cannot read %s\n", texts[k]);
            return 1;
        }
        double best = 1e9, best_cpu = 1e9;
        for (int r = 0; r < runs + 1; r++) { /* the first call warms caches and is discarded */
            int32_t *ids;
            size_t n;
            double t0 = now_s(), c0 = cpu_s();
            if (bn_tokenize(t, text, len, &o, &ids, &n, &err)) {
                fprintf(stderr, "bench-tokenizer: %s\n", err.msg);
                return 1;
            }
            double dt = now_s() - t0, dc = cpu_s() - c0;
            if (r > 0 && dt < best)
                best = dt;
            if (r > 0 && dc < best_cpu)
                best_cpu = dc;
            ntok[k] = n;
            free(ids);
        }
        secs[k] = best;
        cpus[k] = best_cpu;
        bytes[k] = len;
        tps[k] = (double)ntok[k] / best;
        printf(
            "{\"bench\":\"tokenize\",\"text\":\"%s\",\"pre\":\"%s\",\"bytes\":%zu,\"tokens\":%zu,"
            "\"best_s\":%.6f,\"tokens_per_s\":%.0f,\"mb_per_s\":%.2f,\"best_cpu_s\":%.6f,"
            "\"cpu_tokens_per_s\":%.0f,\"runs\":%d}\n",
            texts[k], pre_name, len, ntok[k], best, tps[k], (double)len / best / 1e6, best_cpu,
            (double)ntok[k] / best_cpu, runs);
        free(text);
    }
    printf("\n%-24s %10s %10s %10s %10s %10s %10s\n", "text", "bytes", "tokens", "wall ms",
           "M tok/s", "cpu ms", "M tok/s");
    for (int k = 0; k < n_texts; k++) {
        const char *base = strrchr(texts[k], '/') ? strrchr(texts[k], '/') + 1 : texts[k];
        printf("%-24s %10zu %10zu %10.2f %10.3f %10.2f %10.3f\n", base, bytes[k], ntok[k],
               secs[k] * 1e3, tps[k] / 1e6, cpus[k] * 1e3, (double)ntok[k] / cpus[k] / 1e6);
    }
    printf("vocab load: gguf open %.2f ms + tokenizer %.2f ms wall, %.2f ms cpu (best of %d)\n",
           best_open * 1e3, best_load * 1e3, best_load_cpu * 1e3, runs);
    bn_tokenizer_free(t);
    bn_gguf_close(g);
    return 0;
}
