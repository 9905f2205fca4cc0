/* bitnet-convert: a Hugging Face checkpoint folder -> a GGUF bitnet-run loads, without Python
 * (src/convert/convert.h; README "bitnet-convert"). Exit 2 on bad usage, 1 when the input is
 * unusable or writing fails, 3 when out of memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "convert.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: bitnet-convert MODEL_DIR -o OUT.gguf [--outtype i2_s|f16|f32] [--quant-embd]\n"
        "                      [--vocab-only] [--pre NAME] [-q]\n"
        "Converts a Hugging Face checkpoint folder (config.json, model.safetensors or shards,\n"
        "tokenizer.json or tokenizer.model, tokenizer_config.json) to GGUF: the file bitnet.cpp's\n"
        "converter followed by llama-quantize ... I2_S 1 writes (README \"bitnet-convert\").\n"
        "\n"
        "  -o, --outfile FILE  output path (required)\n"
        "  --outtype T         i2_s (default: ternary weights packed, ready to run), f16 or\n"
        "                      f32 (the reference converter's intermediate files)\n"
        "  --quant-embd        token_embd in F16 (f16: instead of F32; i2_s: also a tied\n"
        "                      LM head, as llama-quantize --token-embedding-type f16)\n"
        "  --vocab-only        metadata and vocabulary only\n"
        "  --pre NAME          tokenizer.ggml.pre when the BPE split is not recognised\n"
        "  -q, --quiet         no progress line and no summary\n"
        "  -h, --help          this text\n");
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct progress {
    double t0;
    unsigned long long total;
} progress;

/* "tensor i/N name  MB/s  ETA", rewritten in place on a terminal */
static void show(void *ctx, size_t i, size_t n, const char *name, unsigned long long bytes)
{
    progress *p = ctx;
    const double dt = now() - p->t0, rate = dt > 0 ? (double)bytes / dt : 0.0;
    const double eta = rate > 0 && p->total > bytes ? (double)(p->total - bytes) / rate : 0.0;
    fprintf(stderr, "\r\033[Ktensor %zu/%zu %-28.28s %7.1f MB/s  ETA %4.0f s", i, n, name,
            rate / 1e6, eta);
    if (i == n)
        fputc('\n', stderr);
}

static void warn(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "%sbitnet-convert: warning: %s\n", isatty(2) ? "\r\033[K" : "", msg);
}

int main(int argc, char **argv)
{
    bn_convert_opts o = {0};
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else if (strcmp(a, "--quant-embd") == 0) {
            o.quant_embd = true;
        } else if (strcmp(a, "--vocab-only") == 0) {
            o.vocab_only = true;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--outfile") == 0 ||
                   strcmp(a, "--outtype") == 0 || strcmp(a, "--pre") == 0) {
            if (!v) {
                fprintf(stderr, "bitnet-convert: %s needs a value (see --help)\n", a);
                return 2;
            }
            i++;
            if (strcmp(a, "--outtype") == 0) {
                if (strcmp(v, "i2_s") == 0)
                    o.outtype = BN_OUT_I2S;
                else if (strcmp(v, "f16") == 0)
                    o.outtype = BN_OUT_F16;
                else if (strcmp(v, "f32") == 0)
                    o.outtype = BN_OUT_F32;
                else {
                    fprintf(stderr, "bitnet-convert: --outtype '%s' is not i2_s, f16 or f32\n", v);
                    return 2;
                }
            } else if (strcmp(a, "--pre") == 0) {
                o.pre = v;
            } else {
                o.out_path = v;
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "bitnet-convert: unknown option '%s' (see --help)\n", a);
            return 2;
        } else if (o.model_dir) {
            fprintf(stderr, "bitnet-convert: one MODEL_DIR only ('%s' and '%s')\n", o.model_dir, a);
            return 2;
        } else {
            o.model_dir = a;
        }
    }
    if (!o.model_dir || !o.out_path) {
        fprintf(stderr, "bitnet-convert: MODEL_DIR and -o OUT.gguf are required (see --help)\n");
        return 2;
    }
    progress p = {.t0 = now()};
    if (!quiet && isatty(2)) {
        o.progress = show;
        o.progress_ctx = &p;
    }
    o.warn = warn;
    bn_err err = {0};
    if (bn_convert(&o, &err)) {
        if (o.progress)
            fputs("\r\033[K", stderr);
        fprintf(stderr, "bitnet-convert: %s\n", err.msg);
        return err.code == BN_E_NOMEM ? 3 : 1; /* bad input files are not bad usage: 1 */
    }
    if (!quiet)
        fprintf(stderr, "bitnet-convert: wrote %s in %.2f s\n", o.out_path, now() - p.t0);
    return 0;
}
