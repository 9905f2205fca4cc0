/* bootstrap: the AWS Lambda custom runtime. One process: open the model during init (mmap),
 * then serve the Runtime API loop (src/lambda/loop.h) until Lambda stops it.
 *
 * Environment: see usage() below (printed by --help; the README's table is the same list). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine_handler.h"
#include "log.h"
#include "loop.h"

#define DEFAULT_MODEL "/opt/bitnet/model.gguf"

/* Milliseconds since the kernel started this process (exec and dynamic loading included),
 * from /proc/self/stat's start time; -1 when unknown. */
static double process_age_ms(void)
{
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the command name may contain spaces */
    unsigned long long start = 0;
    /* after ")": state is field 3, starttime field 22 */
    if (!p || sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
                     "%*d %*d %llu",
                     &start) != 1)
        return -1;
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    long hz = sysconf(_SC_CLK_TCK);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec / 1e6 - (double)start * 1e3 / (double)hz;
}

/* The errorType of a failed init: the environment's settings (BITNET_THREADS, BITNET_CTX) are
 * a configuration error; opening the model fails for lack of memory or because of the file. */
static const char *init_error_type(bool config, bn_err_code code)
{
    if (config)
        return "Runtime.ConfigInvalid";
    return code == BN_E_NOMEM ? "Runtime.OutOfMemory" : "Runtime.ModelLoadError";
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: bootstrap [--help | --version]\n"
        "AWS Lambda custom runtime for BitNet b1.58: maps the model, generates one token\n"
        "during init, then serves the Lambda Runtime API. Settings come from the\n"
        "environment:\n"
        "  AWS_LAMBDA_RUNTIME_API     host:port of the Runtime API (set by Lambda; locally:\n"
        "                             build/bin/bitnet-lambda-local starts one)\n"
        "  BITNET_MODEL               model GGUF (default %s)\n"
        "  BITNET_THREADS             threads, 0..1024, 0 = all CPUs (default: memory\n"
        "                             size / 1769 MB, at most the CPUs: Lambda's vCPUs)\n"
        "  BITNET_CTX                 KV cache positions, 0..1048576 (default 0: the\n"
        "                             engine's, min(model's context, 4096))\n"
        "  BITNET_STREAM=1            the Function URL is in RESPONSE_STREAM mode: \"stream\":\n"
        "                             true answers go out as Server-Sent Events as they come\n"
        "  BITNET_RESPONSE=envelope   direct invokes answer {\"statusCode\",\"body\"} (the\n"
        "                             Python-wrapper shape) instead of the bare object\n"
        "  BITNET_API_KEY             required as \"Authorization: Bearer <key>\" on HTTP\n"
        "                             events (compared in constant time)\n"
        "  BITNET_DEADLINE_MARGIN_MS  stop generating this long before the function's\n"
        "                             deadline (default 250; stop_reason \"deadline\")\n"
        "  BITNET_EXTENSION=0         do not register the no-op extension that makes\n"
        "                             Lambda send SIGTERM before shutdown\n"
        "  BITNET_WARMUP=0            skip the one-token warm-up during init\n"
        "  AWS_LAMBDA_LOG_FORMAT=JSON JSON log lines instead of text\n",
        DEFAULT_MODEL);
}

static void print_version(void)
{
    bn_build_info b;
    bn_get_build_info(&b);
    printf("bootstrap %s\ncompiler: %s\ntarget: %s\nflags: %s\nkernels:", b.version, b.compiler,
           b.target, b.flags);
    for (const char *const *k = b.kernels; *k; k++)
        printf(" %s", *k);
    printf("\nkernels chosen: %s\n", b.kernels_auto);
}

int main(int argc, char **argv)
{
    /* --help and --version work anywhere, without the Lambda environment */
    if (argc > 1) {
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[1], "--version")) {
            print_version();
            return 0;
        }
        fprintf(stderr,
                "bootstrap: unknown argument '%s' (see --help; settings come from the "
                "environment)\n",
                argv[1]);
        return 2;
    }
    double t0 = bn_now_ms();
    bn_log_init();
    bn_lambda_install_signals();
    bn_err err = {0};
    const char *endpoint = getenv("AWS_LAMBDA_RUNTIME_API");
    bn_rt *rt = bn_rt_open(endpoint, &err);
    if (!rt) {
        bn_log("ERROR", "%s", err.msg); /* nowhere to report it but the log */
        return 1;
    }
    const char *ext = getenv("BITNET_EXTENSION");
    if (!ext || strcmp(ext, "0")) {
        /* must happen before the first GET /next; failure only costs the SIGTERM */
        if (bn_rt_register_extension(endpoint, "bitnet-sigterm", &err))
            bn_log("WARN", "SIGTERM extension not registered: %s", err.msg);
    }
    const char *model = getenv("BITNET_MODEL");
    if (!model || !*model)
        model = DEFAULT_MODEL;
    int threads = bn_lambda_threads(&err);
    uint32_t n_ctx = 0; /* 0 = the engine's default */
    long ctx = 0;
    if (threads > 0 && bn_lambda_env_setting("BITNET_CTX", BN_SET_N_CTX, &ctx, &err) < 0)
        threads = -1;
    n_ctx = (uint32_t)ctx;
    const char *shape = getenv("BITNET_RESPONSE");
    if (threads > 0 && shape && *shape && strcmp(shape, "llama") && strcmp(shape, "envelope"))
        threads = bn_fail(&err, BN_E_INPUT, "BITNET_RESPONSE=\"%.32s\": expected llama or envelope",
                          shape);
    bn_engine_handler eh;
    if (threads < 0 || bn_engine_handler_open(&eh, model, threads, n_ctx, &err)) {
        long status = 0;
        bn_err perr = {0};
        char msg[sizeof err.msg + 64];
        snprintf(msg, sizeof msg, "%s", err.msg);
        bn_log("ERROR", "init failed: %s", msg);
        if (bn_rt_post_error(rt, NULL, init_error_type(threads < 0, err.code), msg, &status, &perr))
            bn_log("ERROR", "%s", perr.msg);
        bn_rt_close(rt);
        return 1;
    }
    const char *warm = getenv("BITNET_WARMUP");
    if ((!warm || strcmp(warm, "0")) && bn_engine_handler_warmup(&eh, &err))
        bn_log("WARN", "warm-up failed (serving anyway): %s", err.msg);
    bn_engine_info info;
    bn_engine_get_info(eh.engine, &info);
    if (info.synthetic)
        bn_log("WARN", "%s: %s (general.name \"%s\")", model, BN_SYNTHETIC_WARNING, info.name);
    bn_log("INFO",
           "init: model %s mapped in %.1f ms (%u layers, kernels %s), session in %.1f ms, "
           "warm-up %.1f ms, %d threads, main() to ready %.1f ms, process start to ready "
           "%.0f ms",
           model, eh.open_ms, info.n_layer, info.kernels ? info.kernels : "?", eh.session_ms,
           eh.warmup_ms, bn_session_n_threads(eh.session), bn_now_ms() - t0, process_age_ms());
    bn_log("INFO",
           "init: weights repacked in %.1f ms on %d threads; LM head %s (compact copy "
           "%.1f MiB built in %.1f ms on %d threads)",
           info.repack_ms, info.repack_threads, info.lm_head,
           (double)info.lm_compact_bytes / (1024.0 * 1024.0), info.lm_build_ms,
           info.lm_build_threads);
    bn_lambda_config cfg;
    bn_lambda_config_from_env(&cfg);
    bn_lambda_handler h = bn_engine_handler_iface(&eh);
    int rc = bn_lambda_run(rt, &h, &cfg);
    bn_engine_handler_close(&eh);
    bn_rt_close(rt);
    return rc;
}
