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
    cfg->stream_mode = s && (!strcmp(s, "1") || !strcmp(s, "true"));
    const char *r = getenv("BITNET_RESPONSE");
    cfg->envelope = r && !strcmp(r, "envelope");
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
    bn_lambda_event ev;
    /* the answer, as the router gives it */
    int status;
    const char *ctype;
    bn_buf body;          /* buffered answers */
    bn_rt_stream *stream; /* streamed answers */
    bool stream_failed;
    bool direct_error; /* a direct invoke's error went to POST /error */
    int stop;          /* 1: the loop must end (a fatal Runtime API answer) */
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
        snprintf(msg, sizeof msg,
                 "response of %zu bytes exceeds the Runtime API's payload limit "
                 "(6 MB buffered; use a RESPONSE_STREAM Function URL for long "
                 "outputs)",
                 len);
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

const char *bn_lambda_error_type(bn_err_code code)
{
    switch (code) {
    case BN_E_INPUT:
    case BN_E_CONTEXT_FULL: return "InvalidRequest";
    case BN_E_NOMEM: return "Runtime.OutOfMemory";
    case BN_E_IO: return "Runtime.IOError";
    case BN_E_FORMAT: return "Runtime.FormatError";
    case BN_E_UNSUPPORTED: return "Runtime.Unsupported";
    case BN_OK:
    case BN_E_INTERNAL: break;
    }
    return "Runtime.InternalError";
}

/* A direct invoke's error: a function error whose type comes from the engine's error code
 * (never from the message text). */
static int post_function_error(invocation *iv, bn_err_code code, const char *msg)
{
    const char *type = bn_lambda_error_type(code);
    bn_log("ERROR", "%s: %s", type, msg);
    bn_err err = {0};
    long st = 0;
    int rc = bn_rt_post_error(iv->rt, iv->inv.request_id, type, msg, &st, &err);
    return post_outcome(iv, rc, st, &err, 0);
}

/* Streamed answers: an HTTP event gets the Function URL prelude (status and content type as
 * JSON, then 8 NUL bytes) before the body. */
static int open_stream(invocation *iv)
{
    bn_err err = {0};
    iv->stream = bn_rt_stream_open(
        iv->rt, iv->inv.request_id,
        iv->ev.http ? "application/vnd.awslambda.http-integration-response" : iv->ctype, &err);
    if (!iv->stream) {
        bn_log("ERROR", "%s", err.msg);
        iv->stop = 1;
        return -1;
    }
    if (iv->ev.http) {
        bn_buf pre = {0};
        bn_jw w = {.out = &pre};
        bn_jw_obj(&w);
        bn_jw_key(&w, "statusCode");
        bn_jw_int(&w, iv->status);
        bn_jw_key(&w, "headers");
        bn_jw_obj(&w);
        bn_jw_key(&w, "content-type");
        bn_jw_str(&w, iv->ctype);
        bn_jw_key(&w, "cache-control");
        bn_jw_str(&w, "no-cache");
        bn_jw_end(&w);
        bn_jw_end(&w);
        bn_buf_append(&pre, "\0\0\0\0\0\0\0\0", 8);
        int rc = pre.oom ? -1 : bn_rt_stream_write(iv->stream, pre.data, pre.len);
        bn_buf_free(&pre);
        if (rc)
            iv->stream_failed = true;
    }
    return iv->stream_failed ? -1 : 0;
}

static int sink_begin(void *user, int status, const char *ctype)
{
    invocation *iv = user;
    iv->status = status;
    iv->ctype = ctype;
    /* SSE goes out as it is made when the Function URL streams (or the direct invoke came
     * through InvokeWithResponseStream: the same setting); everything else is buffered */
    bool sse = !strcmp(ctype, "text/event-stream");
    if (sse && iv->cfg->stream_mode && !(iv->cfg->envelope && !iv->ev.http))
        return open_stream(iv);
    return 0;
}

static int sink_write(void *user, const char *data, size_t len)
{
    invocation *iv = user;
    if (iv->stream) {
        if (!iv->stream_failed && bn_rt_stream_write(iv->stream, data, len))
            iv->stream_failed = true; /* the Runtime API closed it: stop generating */
        return iv->stream_failed ? -1 : 0;
    }
    bn_buf_append(&iv->body, data, len);
    return iv->body.oom ? -1 : 0;
}

static void sink_error(void *user, int status, const char *type, bn_err_code code,
                       const char *message)
{
    (void)status;
    (void)type;
    invocation *iv = user;
    iv->direct_error = true;
    iv->stop = post_function_error(iv, code, message);
}

static int deadline_tick(void *user) { return bn_deadline_tick(user); }

/* The router's prefill hook: the deadline holds through prompt evaluation. A prompt that
 * cannot finish in time is refused at once (bad input, with the estimate) instead of being
 * answered after the function timed out; the speed of a completed evaluation is learned. */
static int deadline_prefill(void *user, size_t done, size_t total, bn_err *why)
{
    bn_deadline *d = user;
    static const bn_speed_prior none;
    const bn_speed_prior *prior = d->prior ? d->prior : &none;
    const double now = bn_epoch_ms();
    if (done == 0)
        d->prefill_start_ms = now;
    if (done >= total) {
        /* a prior needs a prompt long enough to measure (a few tokens cost more each) */
        if (d->prior && total >= BN_PREFILL_CHUNK && now > d->prefill_start_ms)
            d->prior->prefill_ms_per_tok = (now - d->prefill_start_ms) / (double)total;
        return 0;
    }
    double need_ms = 0;
    if (!bn_deadline_prefill(d, done, total, d->prefill_start_ms, prior, &need_ms))
        return 0;
    if (!strcmp(d->reason, "shutdown")) {
        bn_fail(why, BN_E_INTERNAL, "the runtime is shutting down (SIGTERM during the prompt)");
        return 1;
    }
    bn_fail(why, BN_E_INPUT,
            "prompt too long for the time left: the prompt of %zu tokens cannot be evaluated "
            "before the deadline: it needs about %.1f s (%s), %.1f s were left; shorten the "
            "prompt or raise the function timeout",
            total, need_ms / 1e3,
            done ? "measured on its first tokens" : "at the speed measured before",
            ((double)d->deadline_ms - d->prefill_start_ms) / 1e3);
    return 1;
}

/* Posts a buffered answer: the body itself (direct invoke), or wrapped in the HTTP envelope. */
static int post_buffered(invocation *iv)
{
    if (iv->body.oom)
        return iv->ev.http || iv->cfg->envelope
                   ? 0
                   : post_function_error(iv, BN_E_NOMEM, "out of memory building the response");
    bn_buf wrapped = {0};
    const bn_buf *out = &iv->body;
    const char *ctype = iv->ctype ? iv->ctype : "application/json";
    if (iv->ev.http || iv->cfg->envelope) {
        bn_lambda_http_json(&wrapped, iv->status, iv->ev.http ? ctype : NULL,
                            iv->body.data ? iv->body.data : "", iv->body.len);
        out = &wrapped;
        ctype = "application/json";
    }
    bn_err err = {0};
    long status = 0;
    int rc = bn_rt_post_response(iv->rt, iv->inv.request_id, out->data ? out->data : "", out->len,
                                 ctype, &status, &err);
    int stop = post_outcome(iv, rc, status, &err, out->len);
    bn_buf_free(&wrapped);
    return stop;
}

static int serve(invocation *iv, bn_deadline *dl)
{
    bn_api_request req = {
        .method = iv->ev.method,
        .path = iv->ev.path,
        .authorization = iv->ev.authorization,
        .body = iv->ev.body,
        .len = iv->ev.len,
        .tick = deadline_tick,
        .prefill = deadline_prefill,
        .tick_user = dl,
    };
    bn_api_sink sink = {.begin = sink_begin, .write = sink_write, .user = iv};
    /* a direct invoke reports errors as function errors, unless the envelope is asked for */
    if (!iv->ev.http && !iv->cfg->envelope)
        sink.error = sink_error;
    double t0 = bn_now_ms();
    int status = iv->h->handle(iv->h->self, &req, &sink);
    if (dl->prior && dl->ticks >= 2 && !dl->reason) /* a finished decode: its token time */
        dl->prior->decode_ms = dl->est_ms;
    bn_log("INFO", "done: %s %s -> %d%s in %.1f ms, peak RSS %llu MB", iv->ev.method, iv->ev.path,
           status,
           dl->reason
               ? (strcmp(dl->reason, "deadline") ? " (cut by shutdown)" : " (cut by the deadline)")
               : "",
           bn_now_ms() - t0, (unsigned long long)(bn_peak_rss_kib() / 1024));
    if (iv->direct_error)
        return iv->stop;
    if (iv->stream) {
        bn_err err = {0};
        long st = 0;
        int rc = bn_rt_stream_close(
            iv->stream, iv->stream_failed ? bn_lambda_error_type(BN_E_IO) : NULL,
            iv->stream_failed ? "the response stream ended early" : NULL, &st, &err);
        iv->stream = NULL;
        return iv->stop ? 1 : post_outcome(iv, rc, st, &err, 0);
    }
    if (iv->stop)
        return 1;
    return post_buffered(iv);
}

/* An event whose envelope is broken: a 400 like the router's own. */
static int answer_bad_event(invocation *iv, const bn_err *e)
{
    if (!iv->ev.http && !iv->cfg->envelope)
        return post_function_error(iv, e->code, e->msg);
    bn_log("ERROR", "InvalidRequest: %s", e->msg);
    bn_api_sink sink = {.begin = sink_begin, .write = sink_write, .user = iv};
    bn_api_send_error(&sink, 400, NULL, e->msg);
    return post_buffered(iv);
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
    bn_speed_prior prior = {0}; /* prompt and token speed, learned from earlier invocations */
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
        bn_log("INFO", "invocation: %zu bytes, %lld ms left, trace %s", iv.inv.len, (long long)left,
               iv.inv.trace_id ? iv.inv.trace_id : "-");
        int stop;
        if (bn_lambda_parse_event(iv.inv.body, iv.inv.len, &iv.ev, &err)) {
            stop = answer_bad_event(&iv, &err);
        } else {
            bn_deadline dl;
            bn_deadline_start(&dl, iv.inv.deadline_ms, cfg->margin_ms);
            dl.prior = &prior;
            stop = serve(&iv, &dl);
        }
        bn_buf_free(&iv.body);
        bn_lambda_event_free(&iv.ev);
        bn_rt_invocation_free(&iv.inv);
        g_busy = 0;
        if (stop)
            return 1;
    }
}
