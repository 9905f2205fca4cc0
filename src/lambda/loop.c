/* The Runtime API loop (policy in loop.h). */
#include "loop.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bitnet.h"
#include "log.h"

#define MAX_NEXT_TRANSPORT_FAILURES 3

static volatile sig_atomic_t g_term, g_busy;

static void on_sigterm(int sig)
{
    (void)sig;
    g_term = 1;
    if (!g_busy) {
        /* idle (blocked in GET /next): nothing to finish */
        static const char msg[] = "INFO\t-\tSIGTERM while idle: exiting\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(0);
    }
}

/* The model is mmap'd: if its file is truncated or replaced in place while we run, reading a
 * page past the new end raises SIGBUS. Nothing can be recovered (the weights are gone); say
 * what happened in one log line instead of dying silently, and exit so Lambda restarts us. */
static void on_sigbus(int sig)
{
    (void)sig;
    static const char line[] = "ERROR\t-\tmodel file changed while in use (SIGBUS reading the "
                               "mapped model); exiting\n";
    ssize_t w = write(STDERR_FILENO, line, sizeof line - 1);
    (void)w;
    _exit(1);
}

void bn_lambda_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigterm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_sigbus;
    sigaction(SIGBUS, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

bool bn_lambda_terminating(void) { return g_term != 0; }

double bn_epoch_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void bn_deadline_start(bn_deadline *d, int64_t deadline_ms, double margin_ms)
{
    memset(d, 0, sizeof *d);
    d->deadline_ms = deadline_ms;
    d->margin_ms = margin_ms;
    d->last_ms = bn_epoch_ms();
}

bool bn_deadline_tick(bn_deadline *d)
{
    double now = bn_epoch_ms();
    double dt = now - d->last_ms;
    d->last_ms = now;
    if (d->ticks++ > 0) {
        /* the slowest of the last token and a running average: tokens slow down as the
         * context grows, and a late answer is lost entirely */
        double avg = d->ticks == 2 ? dt : 0.8 * d->est_ms + 0.2 * dt;
        d->est_ms = dt > avg ? dt : avg;
    }
    if (g_term) {
        d->reason = "shutdown";
        return true;
    }
    if (d->deadline_ms > 0 && now + d->est_ms + d->margin_ms >= (double)d->deadline_ms) {
        d->reason = "deadline";
        return true;
    }
    return false;
}

bool bn_deadline_prefill(bn_deadline *d, size_t done, size_t total, double start_ms,
                         const bn_speed_prior *prior, double *need_ms)
{
    *need_ms = 0;
    if (g_term) {
        d->reason = "shutdown";
        return true;
    }
    if (d->deadline_ms <= 0 || done >= total)
        return false;
    const double now = bn_epoch_ms();
    /* this prompt's measured rate once a chunk is done; it grows with the position (attention
     * covers more cells), so the rest is at least as slow per token as what was measured */
    double per_tok = done > 0 ? (now - start_ms) / (double)done : prior->prefill_ms_per_tok;
    if (per_tok <= 0)
        return false;
    double first_token = prior->decode_ms > per_tok ? prior->decode_ms : per_tok;
    double rest = (double)(total - done) * per_tok;
    *need_ms = (now - start_ms) + rest;
    if (now + rest + first_token + d->margin_ms >= (double)d->deadline_ms) {
        d->reason = "prompt_too_long";
        return true;
    }
    return false;
}

static double env_double(const char *name, double def)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    char *end;
    double x = strtod(v, &end);
    return *end || x < 0 ? def : x;
}

void bn_lambda_config_from_env(bn_lambda_config *cfg)
{
    const char *s = getenv("BITNET_STREAM");
    cfg->force_stream = s && (!strcmp(s, "1") || !strcmp(s, "true"));
    cfg->margin_ms = env_double("BITNET_DEADLINE_MARGIN_MS", 250);
}

int bn_lambda_env_setting(const char *name, bn_setting_id id, long *out, bn_err *err)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    char *end, range[64], label[96];
    errno = 0;
    long n = strtol(v, &end, 10);
    if (*end || errno == ERANGE)
        return bn_fail(err, BN_E_INPUT, "%s=\"%.32s\": expected an integer in %s", name, v,
                       bn_setting_range(id, range, sizeof range));
    snprintf(label, sizeof label, "%s", name);
    if (bn_setting_check(id, (double)n, label, err))
        return -1;
    *out = n;
    return 1;
}

int bn_lambda_threads(bn_err *err)
{
    int cpus = bn_cpu_count();
    long set = 0;
    int given = bn_lambda_env_setting("BITNET_THREADS", BN_SET_N_THREADS, &set, err);
    if (given < 0)
        return -1;
    if (given)
        return set == 0 ? cpus : (int)set;
    const char *m = getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
    if (m && *m) {
        char *end;
        long mb = strtol(m, &end, 10);
        if (!*end && mb > 0) {
            long n = (mb + 1769 / 2) / 1769;
            if (n < 1)
                n = 1;
            return n < cpus ? (int)n : cpus;
        }
    }
    return cpus;
}

/* ------------------------------------------------------------------ one invocation */
typedef struct invocation {
    bn_rt *rt;
    const bn_lambda_handler *h;
    const bn_lambda_config *cfg;
    bn_rt_invocation inv;
    bn_lambda_request req;
    bool http;
} invocation;

/* Outcome of a POST: 0 keep serving, 1 stop the loop. */
static int post_outcome(invocation *iv, int rc, long status, const bn_err *err, size_t len)
{
    if (rc == 0)
        return 0;
    bn_log("ERROR", "%s", err->msg);
    if (status == 0 || status >= 500)
        return 1;
    if (status == 413) {
        char msg[200];
        snprintf(msg, sizeof msg, "response of %zu bytes exceeds the Runtime API's payload limit "
                                  "(6 MB buffered; use \"stream\": true for long outputs)", len);
        bn_err e2 = {0};
        long st2 = 0;
        if (bn_rt_post_error(iv->rt, iv->inv.request_id, "ResponseSizeTooLarge", msg, &st2, &e2)) {
            bn_log("ERROR", "%s", e2.msg);
            if (st2 == 0 || st2 >= 500)
                return 1;
        }
    }
    return 0; /* 400/403/413: this request is lost, the next one may be fine */
}

const char *bn_lambda_error_type(bn_err_code code)
{
    switch (code) {
    case BN_E_INPUT:
    case BN_E_CONTEXT_FULL:
        return "InvalidRequest";
    case BN_E_NOMEM:
        return "Runtime.OutOfMemory";
    case BN_E_IO:
        return "Runtime.IOError";
    case BN_E_FORMAT:
        return "Runtime.FormatError";
    case BN_E_UNSUPPORTED:
        return "Runtime.Unsupported";
    case BN_OK:
    case BN_E_INTERNAL:
        break;
    }
    return "Runtime.InternalError";
}

int bn_lambda_error_status(bn_err_code code)
{
    return code == BN_E_INPUT || code == BN_E_CONTEXT_FULL ? 400 : 500;
}

/* An error answer that is not an HTTP failure of the call itself. */
static int answer_error(invocation *iv, const bn_err *failure)
{
    const char *type = bn_lambda_error_type(failure->code);
    const char *msg = failure->msg;
    bn_log("ERROR", "%s: %s", type, msg);
    bn_err err = {0};
    long status = 0;
    int rc;
    size_t len = 0;
    if (iv->http) {
        bn_buf e = {0}, b = {0};
        bn_lambda_error_json(&e, type, msg);
        bn_lambda_http_json(&b, bn_lambda_error_status(failure->code), "application/json", e.data,
                            e.len);
        len = b.len;
        rc = bn_rt_post_response(iv->rt, iv->inv.request_id, b.data, b.len, "application/json",
                                 &status, &err);
        bn_buf_free(&e);
        bn_buf_free(&b);
    } else {
        rc = bn_rt_post_error(iv->rt, iv->inv.request_id, type, msg, &status, &err);
    }
    return post_outcome(iv, rc, status, &err, len);
}

static void log_result(const bn_lambda_result *r)
{
    bn_log("INFO", "done: %u prompt tokens in %.1f ms (%.2f tok/s), %u tokens in %.1f ms "
                   "(%.2f tok/s), stop %s, peak RSS %llu MB",
           r->prompt_tokens, r->prompt_ms, r->prompt_tok_s, r->tokens_generated, r->gen_ms,
           r->gen_tok_s, r->stop_reason ? r->stop_reason : "none",
           (unsigned long long)(bn_peak_rss_kib() / 1024));
}

static int serve_buffered(invocation *iv, bn_deadline *dl)
{
    bn_lambda_result res = {0};
    bn_err err = {0};
    if (iv->h->generate(iv->h->self, &iv->req, dl, NULL, NULL, &res, &err))
        return answer_error(iv, &err);
    log_result(&res);
    bn_buf body = {0}, wrapped = {0};
    bn_lambda_response_json(&body, &res, iv->h->model);
    const bn_buf *out = &body;
    if (iv->http) {
        bn_lambda_http_json(&wrapped, 200, "application/json", body.data, body.len);
        out = &wrapped;
    }
    long status = 0;
    int rc = out->oom ? -1 : 0;
    if (rc) {
        bn_fail(&err, BN_E_NOMEM, "out of memory building the response");
        bn_buf_free(&body);
        bn_buf_free(&wrapped);
        return answer_error(iv, &err);
    }
    rc = bn_rt_post_response(iv->rt, iv->inv.request_id, out->data, out->len, "application/json",
                             &status, &err);
    int stop = post_outcome(iv, rc, status, &err, out->len);
    bn_buf_free(&body);
    bn_buf_free(&wrapped);
    return stop;
}

static int stream_piece(void *user, const char *text, size_t len)
{
    return bn_rt_stream_write(user, text, len);
}

static int serve_streaming(invocation *iv, bn_deadline *dl)
{
    bn_err err = {0};
    bn_rt_stream *s = bn_rt_stream_open(
        iv->rt, iv->inv.request_id,
        iv->http ? "application/vnd.awslambda.http-integration-response" : "text/plain; charset=utf-8",
        &err);
    if (!s) {
        bn_log("ERROR", "%s", err.msg);
        return 1;
    }
    if (iv->http) {
        /* Function URL streaming: a JSON prelude with status and headers, then 8 NUL bytes,
         * then the body */
        static const char prelude[] = "{\"statusCode\":200,\"headers\":{\"content-type\":"
                                      "\"text/plain; charset=utf-8\"}}\0\0\0\0\0\0\0";
        bn_rt_stream_write(s, prelude, sizeof prelude); /* sizeof includes the 8th NUL */
    }
    bn_lambda_result res = {0};
    bn_err gerr = {0};
    int grc = iv->h->generate(iv->h->self, &iv->req, dl, stream_piece, s, &res, &gerr);
    const char *etype = grc ? bn_lambda_error_type(gerr.code) : NULL;
    if (grc) {
        bn_log("ERROR", "%s: %s (reported in the stream's trailers)", etype, gerr.msg);
    } else {
        log_result(&res);
    }
    long status = 0;
    int rc = bn_rt_stream_close(s, etype, grc ? gerr.msg : NULL, &status, &err);
    return post_outcome(iv, rc, status, &err, res.len);
}

static void set_trace_env(const char *trace_id)
{
    /* unset when absent so a stale id never leaks into the next invocation */
    if (trace_id)
        setenv("_X_AMZN_TRACE_ID", trace_id, 1);
    else
        unsetenv("_X_AMZN_TRACE_ID");
}

int bn_lambda_run(bn_rt *rt, const bn_lambda_handler *h, const bn_lambda_config *cfg)
{
    int transport_failures = 0;
    for (;;) {
        if (g_term)
            return 0;
        invocation iv = {.rt = rt, .h = h, .cfg = cfg};
        bn_err err = {0};
        long status = 0;
        bn_log_set_request(NULL);
        if (bn_rt_next(rt, &iv.inv, &status, &err)) {
            bn_log("ERROR", "%s", err.msg);
            if (status == 0 && ++transport_failures < MAX_NEXT_TRANSPORT_FAILURES)
                continue;
            return 1;
        }
        g_busy = 1;
        transport_failures = 0;
        bn_log_set_request(iv.inv.request_id);
        set_trace_env(iv.inv.trace_id);
        int64_t left = iv.inv.deadline_ms ? iv.inv.deadline_ms - (int64_t)bn_epoch_ms() : -1;
        bn_log("INFO", "invocation: %zu bytes, %lld ms left, trace %s", iv.inv.len,
               (long long)left, iv.inv.trace_id ? iv.inv.trace_id : "-");
        int stop;
        if (bn_lambda_parse_event(iv.inv.body, iv.inv.len, &iv.req, &iv.http, &err)) {
            stop = answer_error(&iv, &err);
        } else {
            bn_deadline dl;
            bn_deadline_start(&dl, iv.inv.deadline_ms, cfg->margin_ms);
            if (iv.req.stream || cfg->force_stream)
                stop = serve_streaming(&iv, &dl);
            else
                stop = serve_buffered(&iv, &dl);
        }
        bn_lambda_request_free(&iv.req);
        bn_rt_invocation_free(&iv.inv);
        g_busy = 0;
        if (stop)
            return 1;
    }
}
