/* bitnet-lambda-local: runs the Lambda `bootstrap` on this machine against the in-repo Runtime
 * API server (tests/support/runtime_server.c, the one the tests use), hands it each EVENT
 * (JSON text, or @FILE) in turn and prints every answer, so the function can be tried without
 * AWS or Docker:
 *
 *   build/bin/bitnet-lambda-local -m models/ggml-model-i2_s.gguf '{"prompt":"Hi","n_predict":16}'
 *
 * bootstrap's own log (init line, one line per request) goes to stderr; the answers go to
 * stdout, one line each: "response <id> <body>" or "error <id> <body>". Exit 0 when every
 * event got a response, 1 when one got an error (or none in time), 2 on bad usage. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime_server.h"

enum {
    WAIT_MS = 600000
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bitnet-lambda-local [-m MODEL] [--bootstrap PATH] [-t THREADS] EVENT...\n"
            "  EVENT             request JSON ('{\"prompt\":\"Hi\"}') or @FILE\n"
            "  -m, --model FILE  BITNET_MODEL for bootstrap (default: its own default)\n"
            "  --bootstrap PATH  the runtime to start (default: bootstrap beside this program)\n"
            "  -t THREADS        BITNET_THREADS\n"
            "Starts the in-repo Runtime API server on a loopback port, starts bootstrap with\n"
            "AWS_LAMBDA_RUNTIME_API pointing at it, queues the events, prints each answer, then\n"
            "stops bootstrap with SIGTERM (as Lambda does).\n");
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) {
                free(buf);
                buf = NULL;
            }
            buf = b;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = 0;
    return buf;
}

/* bootstrap in the directory of this program (build/bin). */
static void default_bootstrap(char *out, size_t n)
{
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        snprintf(out, n, "bootstrap");
        return;
    }
    self[len] = 0;
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = 0;
    snprintf(out, n, "%s/bootstrap", self);
}

int main(int argc, char **argv)
{
    const char *model = NULL, *threads = NULL;
    char boot[PATH_MAX + 16] = "";
    int first_event = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(a, "--bootstrap") && i + 1 < argc) {
            snprintf(boot, sizeof boot, "%s", argv[++i]);
        } else if (!strcmp(a, "-t") && i + 1 < argc) {
            threads = argv[++i];
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "bitnet-lambda-local: unknown option '%s' (see --help)\n", a);
            return 2;
        } else {
            first_event = i;
            break;
        }
    }
    if (first_event >= argc) {
        fprintf(stderr, "bitnet-lambda-local: give at least one EVENT (see --help)\n");
        return 2;
    }
    if (!boot[0])
        default_bootstrap(boot, sizeof boot);
    if (access(boot, X_OK) != 0) {
        fprintf(stderr,
                "bitnet-lambda-local: cannot run '%s' (build it: cmake --build build "
                "--target bootstrap, or give --bootstrap PATH)\n",
                boot);
        return 2;
    }
    int n_events = argc - first_event;
    char **bodies = calloc((size_t)n_events, sizeof *bodies);
    for (int i = 0; i < n_events; i++) {
        const char *ev = argv[first_event + i];
        bodies[i] = ev[0] == '@' ? slurp(ev + 1) : strdup(ev);
        if (!bodies[i]) {
            fprintf(stderr, "bitnet-lambda-local: cannot read '%s'\n", ev + 1);
            return 2;
        }
    }

    bn_rs *rs = bn_rs_start();
    if (!rs) {
        fprintf(stderr, "bitnet-lambda-local: cannot start the Runtime API server\n");
        return 1;
    }
    char api[64], model_env[PATH_MAX + 16], threads_env[64];
    snprintf(api, sizeof api, "AWS_LAMBDA_RUNTIME_API=127.0.0.1:%d", bn_rs_port(rs));
    const char *env[4] = {api, NULL, NULL, NULL};
    int ne = 1;
    if (model) {
        snprintf(model_env, sizeof model_env, "BITNET_MODEL=%s", model);
        env[ne++] = model_env;
    }
    if (threads) {
        snprintf(threads_env, sizeof threads_env, "BITNET_THREADS=%s", threads);
        env[ne++] = threads_env;
    }
    fprintf(stderr, "bitnet-lambda-local: Runtime API on 127.0.0.1:%d, starting %s\n",
            bn_rs_port(rs), boot);
    const char *bargv[] = {boot, NULL};
    pid_t pid = bn_rs_spawn_cmd(bargv, env, false, NULL);
    if (pid < 0) {
        fprintf(stderr, "bitnet-lambda-local: cannot start %s\n", boot);
        bn_rs_stop(rs);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < n_events; i++) {
        char id[32];
        snprintf(id, sizeof id, "local-%d", i + 1);
        bn_rs_event ev = {.request_id = id, .body = bodies[i]};
        bn_rs_queue(rs, &ev);
        if (!bn_rs_wait_records(rs, (size_t)i + 1, WAIT_MS)) {
            fprintf(stderr,
                    "bitnet-lambda-local: no answer to %s (bootstrap exited or hangs; "
                    "see its log above)\n",
                    id);
            rc = 1;
            break;
        }
        const bn_rs_record *r = bn_rs_record_at(rs, (size_t)i);
        printf("%s %s %.*s\n", r->kind, r->request_id, (int)r->len, r->body);
        fflush(stdout);
        if (strcmp(r->kind, "response") != 0) {
            rc = 1;
            if (!strcmp(r->kind, "init_error"))
                break;
        }
    }
    kill(pid, SIGTERM);
    bn_rs_wait_exit(pid, 20000);
    bn_rs_stop(rs);
    for (int i = 0; i < n_events; i++)
        free(bodies[i]);
    free(bodies);
    return rc;
}
