/* bootstrap: the AWS Lambda custom runtime. One process: open the model during init (mmap),
 * then serve the Runtime API loop (src/lambda/loop.h) until Lambda stops it.
 *
 * Environment: AWS_LAMBDA_RUNTIME_API (set by Lambda), BITNET_MODEL (default below, where the
 * Dockerfile puts the model), BITNET_THREADS, BITNET_CTX (KV cache positions, default the
 * engine's), BITNET_STREAM=1, BITNET_DEADLINE_MARGIN_MS (250), BITNET_EXTENSION=0 (do not
 * register the no-op extension that makes Lambda send SIGTERM), BITNET_WARMUP=0 (skip the
 * one-token warm-up that pages the model in during init), AWS_LAMBDA_LOG_FORMAT. */
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
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
                            "%*d %*d %llu", &start) != 1)
        return -1;
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    long hz = sysconf(_SC_CLK_TCK);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec / 1e6 - (double)start * 1e3 / (double)hz;
}

int main(void)
{
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
    uint32_t n_ctx = 0;
    const char *ctx = getenv("BITNET_CTX");
    if (threads > 0 && ctx && *ctx) {
        char *end;
        long v = strtol(ctx, &end, 10);
        if (*end || v < 16 || v > 1 << 20)
            threads = bn_fail(&err, BN_E_INPUT, "BITNET_CTX=\"%.32s\": expected an integer in [16, 1048576]", ctx);
        n_ctx = (uint32_t)v;
    }
    bn_engine_handler eh;
    if (threads < 0 || bn_engine_handler_open(&eh, model, threads, n_ctx, &err)) {
        long status = 0;
        bn_err perr = {0};
        char msg[sizeof err.msg + 64];
        snprintf(msg, sizeof msg, "%s", err.msg);
        bn_log("ERROR", "init failed: %s", msg);
        if (bn_rt_post_error(rt, NULL, threads < 0 ? "Runtime.ConfigInvalid" : "Runtime.ModelLoadError",
                             msg, &status, &perr))
            bn_log("ERROR", "%s", perr.msg);
        bn_rt_close(rt);
        return 1;
    }
    const char *warm = getenv("BITNET_WARMUP");
    if ((!warm || strcmp(warm, "0")) && bn_engine_handler_warmup(&eh, &err))
        bn_log("WARN", "warm-up failed (serving anyway): %s", err.msg);
    bn_engine_info info;
    bn_engine_get_info(eh.engine, &info);
    bn_log("INFO", "init: model %s mapped in %.1f ms (%u layers, kernels %s), session in %.1f ms, "
                   "warm-up %.1f ms, %d threads, main() to ready %.1f ms, process start to ready "
                   "%.0f ms",
           model, eh.open_ms, info.n_layer, info.kernels ? info.kernels : "?", eh.session_ms,
           eh.warmup_ms, bn_session_n_threads(eh.session), bn_now_ms() - t0, process_age_ms());
    bn_log("INFO", "init: weights repacked in %.1f ms on %d threads; LM head %s (compact copy "
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
