/* bitnet-server: llama-server's and OpenAI's HTTP APIs on a local socket (src/api/ routes,
 * src/server/server.c transport). Flags follow llama-server where they apply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bitnet-server -m MODEL.gguf [options]\n"
            "  -m, --model FILE       model GGUF (required)\n"
            "      --host ADDR        address to listen on (default 127.0.0.1)\n"
            "      --port N           port (default 8080; 0 = any free port)\n"
            "  -c, --ctx-size N       context length, 0 = the model's (at most 4096)\n"
            "  -t, --threads N        threads (default: the CPUs this process may use)\n"
            "  -n, --n-predict N      tokens to generate when a request says nothing (default -1)\n"
            "      --api-key KEY      require Authorization: Bearer KEY (also $BITNET_API_KEY)\n"
            "      --alias NAME       model name in answers (default: the file name)\n"
            "      --queue N          generation requests waiting behind the running one (8)\n"
            "      --max-conns N      connections served at once (64)\n"
            "      --timeout S        seconds for a whole request to arrive (10)\n"
            "      --max-body BYTES   largest request body (8388608)\n"
            "  -h, --help             this help\n");
}

static int int_arg(const char *flag, const char *v, long lo, long hi, long *out)
{
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || x < lo || x > hi) {
        fprintf(stderr, "bitnet-server: %s: expected an integer in [%ld, %ld], got \"%s\"\n", flag,
                lo, hi, v ? v : "");
        return -1;
    }
    *out = x;
    return 0;
}

int main(int argc, char **argv)
{
    bn_server_opts o;
    bn_server_defaults(&o);
    const char *model = NULL, *alias = NULL, *api_key = getenv("BITNET_API_KEY");
    long n_ctx = 0, threads = 0, n_predict = -1, v = 0;
    for (int i = 1; i < argc; i += 2) { /* an option and its value */
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            model = val;
        } else if (!strcmp(a, "--host")) {
            o.host = val;
        } else if (!strcmp(a, "--port")) {
            rc = int_arg(a, val, 0, 65535, &v);
            o.port = (int)v;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            rc = int_arg(a, val, 0, 1 << 20, &n_ctx);
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            rc = int_arg(a, val, 1, 1024, &threads);
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            rc = int_arg(a, val, -1, 1 << 24, &n_predict);
        } else if (!strcmp(a, "--api-key")) {
            api_key = val;
        } else if (!strcmp(a, "--alias")) {
            alias = val;
        } else if (!strcmp(a, "--queue")) {
            rc = int_arg(a, val, 0, 1024, &v);
            o.queue = (int)v;
        } else if (!strcmp(a, "--max-conns")) {
            rc = int_arg(a, val, 1, 4096, &v);
            o.max_conns = (int)v;
        } else if (!strcmp(a, "--timeout")) {
            rc = int_arg(a, val, 1, 3600, &v);
            o.read_timeout_ms = (int)v * 1000;
        } else if (!strcmp(a, "--max-body")) {
            rc = int_arg(a, val, 1, 1 << 30, &v);
            o.max_body = (size_t)v;
        } else {
            fprintf(stderr, "bitnet-server: unknown option %s (see --help)\n", a);
            return 2;
        }
        if (rc)
            return 2;
        if (!val) { /* every option but --help takes a value */
            fprintf(stderr, "bitnet-server: %s needs a value\n", a);
            return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "bitnet-server: -m MODEL.gguf is required (see --help)\n");
        return 2;
    }
    bn_server_install_signals();
    bn_err err = {0};
    bn_engine *e = bn_engine_open(model, NULL, &err);
    if (!e) {
        fprintf(stderr, "bitnet-server: %s\n", err.msg);
        return 1;
    }
    bn_session_params sp = {.n_ctx = (uint32_t)n_ctx, .n_threads = (int)threads};
    bn_session *s = bn_session_create(e, &sp, &err);
    if (!s) {
        fprintf(stderr, "bitnet-server: %s\n", err.msg);
        bn_engine_free(e);
        return 1;
    }
    /* the model's name: the file name without directory and .gguf */
    char name[256];
    const char *base = strrchr(model, '/');
    snprintf(name, sizeof name, "%s", alias ? alias : base ? base + 1 : model);
    size_t nl = strlen(name);
    if (!alias && nl > 5 && !strcmp(name + nl - 5, ".gguf"))
        name[nl - 5] = 0;
    bn_api api = {.engine = e,
                  .session = s,
                  .model = name,
                  .api_key = api_key,
                  .n_predict = (int32_t)n_predict,
                  .max_body = o.max_body};
    int rc = bn_server_run(&api, &o, &err);
    if (rc)
        fprintf(stderr, "bitnet-server: %s\n", err.msg);
    bn_session_free(s);
    bn_engine_free(e);
    return rc ? 1 : 0;
}
