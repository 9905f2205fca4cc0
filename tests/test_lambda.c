/* The real bin/bootstrap with the real engine on the reference's tiny model, against the
 * in-repo Runtime API server: every row of the checklist in shared/lambda/RUNTIME-API.md
 * that a process-level test can see (normal, invalid events, 413 then still serving, 500 ->
 * exit, 403 -> exit, init errors, deadline cut, streaming with trailers, trace id, JSON
 * logs, SIGTERM idle and busy). Expected texts come from the engine API called in-process
 * with the same settings, not from the bootstrap itself. */
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bitnet.h"
#include "json.h"
#include "loop.h"
#include "runtime_server.h"

#define TINY "reference/models/tiny-a.gguf"

typedef struct proc {
    bn_rs *rs;
    pid_t pid;
    char *log;
} proc;

static proc start(const char *model, const char *const *extra)
{
    proc p = {0};
    p.rs = bn_rs_start();
    assert_non_null(p.rs);
    p.log = bn_test_tmpfile(".log");
    char api[64], mod[1024];
    snprintf(api, sizeof api, "AWS_LAMBDA_RUNTIME_API=127.0.0.1:%d", bn_rs_port(p.rs));
    snprintf(mod, sizeof mod, "BITNET_MODEL=%s", model);
    const char *env[24] = {api, mod, "BITNET_THREADS=2", "AWS_LAMBDA_LOG_FORMAT", "BITNET_STREAM",
                           "_X_AMZN_TRACE_ID", "BITNET_CTX"};
    int n = 7;
    for (int i = 0; extra && extra[i] && n < 23; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    p.pid = bn_rs_spawn("bootstrap", env, p.log);
    assert_true(p.pid > 0);
    return p;
}

static char *log_text(const proc *p)
{
    char *t = (char *)bn_test_read_file(p->log, NULL);
    return t ? t : strdup("");
}

/* Waits for the exit status, stops the server, prints the log on failure. */
static int finish(proc *p, int timeout_ms)
{
    int rc = bn_rs_wait_exit(p->pid, timeout_ms);
    bn_rs_stop(p->rs);
    return rc;
}

static void cleanup(proc *p)
{
    unlink(p->log);
    free(p->log);
}

static void queue(proc *p, const char *id, const char *body, const char *trace, int64_t deadline)
{
    bn_rs_event ev = {.request_id = id, .body = body, .trace_id = trace, .deadline_ms = deadline};
    bn_rs_queue(p->rs, &ev);
}

static const bn_rs_record *wait_record(proc *p, size_t i)
{
    if (!bn_rs_wait_records(p->rs, i + 1, 120000)) {
        char *l = log_text(p);
        fail_msg("no record %zu from bootstrap; its log:\n%s", i, l);
    }
    return bn_rs_record_at(p->rs, i);
}

static bn_json_doc *parse(const char *s, size_t n)
{
    bn_err err = {0};
    bn_json_doc *d = bn_json_parse(s, n, NULL, &err);
    if (!d)
        fail_msg("not JSON (%s): %.300s", err.msg, s);
    return d;
}

/* What the engine itself generates for a prompt (greedy), for comparison. */
static char *reference_text(const char *model, const char *prompt, const bn_chat_msg *msgs,
                            size_t n_msgs, int n_predict, uint32_t *tokens)
{
    bn_err err = {0};
    bn_engine *e = bn_engine_open(model, NULL, &err);
    if (!e)
        fail_msg("%s", err.msg);
    bn_session_params sp = {.n_threads = 1};
    bn_session *s = bn_session_create(e, &sp, &err);
    assert_non_null(s);
    bn_generate_params g = bn_generate_default();
    g.prompt = prompt;
    g.messages = msgs;
    g.n_messages = n_msgs;
    g.n_predict = n_predict;
    g.sampling.temp = 0;
    bn_stats st;
    if (bn_generate(s, &g, &st, &err))
        fail_msg("%s", err.msg);
    size_t len;
    char *t = strdup(bn_session_output_text(s, &len));
    *tokens = st.gen_tokens;
    bn_session_free(s);
    bn_engine_free(e);
    return t;
}

/* The JSON response carries the text with invalid UTF-8 bytes replaced by U+FFFD (json.h; a
 * random tiny model emits stray byte tokens), so compare with the reference after the same
 * replacement (unit-tested in test_json). */
static char *as_json_text(const char *raw)
{
    bn_buf b = {0};
    bn_buf_puts(&b, "\"");
    bn_json_escape(&b, raw, strlen(raw));
    bn_buf_puts(&b, "\"");
    bn_json_doc *d = parse(b.data, b.len);
    char *t = strdup(bn_json_root(d)->str);
    bn_json_free(d);
    bn_buf_free(&b);
    return t;
}

static void test_normal_invalid_sigterm_idle(void **state)
{
    (void)state;
    char *model = bn_test_shared(TINY);
    BN_SKIP_IF_MISSING(model, TINY);
    uint32_t ref_tokens, chat_tokens;
    char *raw = reference_text(model, "The capital of France is", NULL, 0, 12, &ref_tokens);
    bn_chat_msg msgs[] = {{"system", "Be brief."}, {"user", "Hello"}};
    char *chat_raw = reference_text(model, NULL, msgs, 2, 6, &chat_tokens);
    char *ref = as_json_text(raw), *chat_ref = as_json_text(chat_raw);
    free(raw);
    free(chat_raw);

    proc p = start(model, NULL);
    queue(&p, "req-1", "{\"prompt\":\"The capital of France is\",\"n_predict\":12,\"temperature\":0,"
                       "\"top_p\":0.95,\"top_k\":40,\"repeat_penalty\":1.0}", NULL, 0);
    const bn_rs_record *r = wait_record(&p, 0);
    assert_string_equal(r->kind, "response");
    assert_string_equal(r->request_id, "req-1");
    bn_json_doc *d = parse(r->body, r->len);
    const bn_json *o = bn_json_root(d);
    assert_string_equal(bn_json_get(o, "text")->str, ref);
    assert_int_equal(bn_json_get(o, "tokens_generated")->i64, ref_tokens);
    const char *stop = bn_json_get(o, "stop_reason")->str;
    assert_true(!strcmp(stop, "length") || !strcmp(stop, "eos") || !strcmp(stop, "eot"));
    assert_string_equal(bn_json_get(o, "model")->str, "tiny-a");
    const bn_json *t = bn_json_get(o, "timings");
    assert_true(bn_json_get(t, "prompt_ms")->num > 0);
    assert_true(bn_json_get(t, "gen_tok_s")->num >= 0);
    bn_json_free(d);

    /* malformed and wrongly typed events: function errors naming the problem, still serving */
    queue(&p, "bad-json", "{\"prompt\":", NULL, 0);
    queue(&p, "bad-type", "{\"prompt\":\"x\",\"top_k\":\"40\"}", NULL, 0);
    queue(&p, "chat", "{\"system\":\"Be brief.\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],"
                      "\"n_predict\":6,\"temperature\":0}", NULL, 0);
    r = wait_record(&p, 1);
    assert_string_equal(r->kind, "error");
    assert_string_equal(r->request_id, "bad-json");
    assert_non_null(strstr(r->body, "invalid JSON: byte 10: unexpected end of input"));
    assert_non_null(strstr(r->body, "\"errorType\":\"InvalidRequest\""));
    r = wait_record(&p, 2);
    assert_string_equal(r->kind, "error");
    assert_non_null(strstr(r->body, "field \\\"top_k\\\": expected an integer"));
    r = wait_record(&p, 3);
    assert_string_equal(r->kind, "response");
    d = parse(r->body, r->len);
    assert_string_equal(bn_json_get(bn_json_root(d), "text")->str, chat_ref);
    assert_int_equal(bn_json_get(bn_json_root(d), "tokens_generated")->i64, chat_tokens);
    bn_json_free(d);

    /* the no-op extension was registered (so Lambda would send SIGTERM) */
    assert_true(bn_rs_extension_registered(p.rs));
    /* SIGTERM while parked in GET /next: exit 0 at once */
    assert_true(bn_rs_wait_idle(p.rs, 20000));
    kill(p.pid, SIGTERM);
    int rc = finish(&p, 10000);
    char *l = log_text(&p);
    if (rc != 0)
        fail_msg("exit %d after SIGTERM; log:\n%s", rc, l);
    /* log lines carry the request id */
    assert_non_null(strstr(l, "INFO\treq-1\tinvocation:"));
    assert_non_null(strstr(l, "ERROR\tbad-type\tInvalidRequest: field \"top_k\""));
    assert_non_null(strstr(l, "init: model"));
    /* the screened LM head's copy is built at init (default) and reported */
    assert_non_null(strstr(l, "LM head screened (compact copy"));
    free(l);
    cleanup(&p);
    free(ref);
    free(chat_ref);
    free(model);
}

static void test_413_then_serving_then_403(void **state)
{
    (void)state;
    char *model = bn_test_shared(TINY);
    BN_SKIP_IF_MISSING(model, TINY);
    proc p = start(model, NULL);
    bn_rs_fail_response(p.rs, 413);
    queue(&p, "big", "{\"prompt\":\"Hello\",\"n_predict\":4}", NULL, 0);
    const bn_rs_record *r = wait_record(&p, 0);
    assert_int_equal(r->status, 413);
    r = wait_record(&p, 1);
    assert_string_equal(r->kind, "error");
    assert_string_equal(r->request_id, "big");
    assert_non_null(strstr(r->body, "\"errorType\":\"ResponseSizeTooLarge\""));
    queue(&p, "after", "{\"prompt\":\"Hello\",\"n_predict\":4}", NULL, 0);
    r = wait_record(&p, 2);
    assert_string_equal(r->kind, "response");
    assert_int_equal(r->status, 202);
    /* 403 on /next: a stuck state, exit */
    bn_rs_fail_next(p.rs, 403);
    assert_int_equal(finish(&p, 20000), 1);
    cleanup(&p);
    free(model);
}

static void test_500_exits(void **state)
{
    (void)state;
    char *model = bn_test_shared(TINY);
    BN_SKIP_IF_MISSING(model, TINY);
    proc p = start(model, NULL);
    bn_rs_fail_response(p.rs, 500);
    queue(&p, "r", "{\"prompt\":\"Hello\",\"n_predict\":2}", NULL, 0);
    wait_record(&p, 0);
    int rc = bn_rs_wait_exit(p.pid, 20000);
    assert_int_equal(bn_rs_n_next(p.rs), 1);
    bn_rs_stop(p.rs);
    assert_int_equal(rc, 1);
    cleanup(&p);
    /* and a 500 on /next */
    p = start(model, NULL);
    bn_rs_fail_next(p.rs, 500);
    assert_int_equal(finish(&p, 20000), 1);
    cleanup(&p);
    free(model);
}

static void check_init_error(const char *model, const char *const *env, const char *want_type,
                             const char *want)
{
    proc p = start(model, env);
    int rc = bn_rs_wait_exit(p.pid, 60000);
    assert_int_equal(rc, 1);
    assert_int_equal(bn_rs_n_records(p.rs), 1);
    const bn_rs_record *r = bn_rs_record_at(p.rs, 0);
    assert_string_equal(r->kind, "init_error");
    char *type = bn_rs_header(r->headers, "Lambda-Runtime-Function-Error-Type");
    assert_non_null(type);
    assert_string_equal(type, want_type);
    free(type);
    bn_json_doc *d = parse(r->body, r->len);
    assert_string_equal(bn_json_get(bn_json_root(d), "errorType")->str, want_type);
    const char *msg = bn_json_get(bn_json_root(d), "errorMessage")->str;
    if (!strstr(msg, want))
        fail_msg("init error \"%s\" lacks \"%s\"", msg, want);
    bn_json_free(d);
    assert_int_equal(bn_rs_n_next(p.rs), 0); /* never asks for work after /init/error */
    bn_rs_stop(p.rs);
    cleanup(&p);
}

static void test_init_errors(void **state)
{
    (void)state;
    check_init_error("/nonexistent/model.gguf", NULL, "Runtime.ModelLoadError",
                     "/nonexistent/model.gguf");
    char *bad = bn_test_tmpfile(".gguf");
    bn_test_write_file(bad, "GGUF\x03\0\0\0garbage", 15);
    check_init_error(bad, NULL, "Runtime.ModelLoadError", bad);
    const char *threads[] = {"BITNET_THREADS=many", NULL};
    check_init_error(bad, threads, "Runtime.ConfigInvalid",
                     "BITNET_THREADS=\"many\": expected an integer in [1, 256]");
    const char *ctx[] = {"BITNET_CTX=5", NULL};
    check_init_error(bad, ctx, "Runtime.ConfigInvalid",
                     "BITNET_CTX=\"5\": expected an integer in [16, 1048576]");
    unlink(bad);
    free(bad);
}

static void test_deadline_cut(void **state)
{
    (void)state;
    char *model = bn_test_shared(TINY);
    BN_SKIP_IF_MISSING(model, TINY);
    proc p = start(model, NULL);
    /* 100 ms left is inside the 250 ms margin: stop after the first token */
    queue(&p, "late", "{\"prompt\":\"Hello\",\"n_predict\":64,\"temperature\":0}", NULL,
          (int64_t)bn_epoch_ms() + 100);
    /* plenty of time: the same request runs to its length */
    queue(&p, "early", "{\"prompt\":\"Hello\",\"n_predict\":64,\"temperature\":0,\"stop\":[]}", NULL, 0);
    bn_json_doc *d = parse(wait_record(&p, 0)->body, wait_record(&p, 0)->len);
    assert_string_equal(bn_json_get(bn_json_root(d), "stop_reason")->str, "deadline");
    assert_int_equal(bn_json_get(bn_json_root(d), "tokens_generated")->i64, 1);
    bn_json_free(d);
    d = parse(wait_record(&p, 1)->body, wait_record(&p, 1)->len);
    assert_string_not_equal(bn_json_get(bn_json_root(d), "stop_reason")->str, "deadline");
    assert_true(bn_json_get(bn_json_root(d), "tokens_generated")->i64 > 1);
    bn_json_free(d);
    bn_rs_fail_next(p.rs, 403);
    assert_int_equal(finish(&p, 20000), 1);
    cleanup(&p);
    free(model);
}

static void test_streaming(void **state)
{
    (void)state;
    char *model = bn_test_shared(TINY);
    BN_SKIP_IF_MISSING(model, TINY);
    uint32_t ref_tokens;
    char *ref = reference_text(model, "Once upon a time", NULL, 0, 16, &ref_tokens);
    proc p = start(model, NULL);
    queue(&p, "s1", "{\"prompt\":\"Once upon a time\",\"n_predict\":16,\"temperature\":0,\"stream\":true}",
          NULL, 0);
    const bn_rs_record *r = wait_record(&p, 0);
    assert_true(r->chunked);
    assert_true(r->n_chunks >= 1);
    assert_string_equal(r->body, ref);
    char *mode = bn_rs_header(r->headers, "Lambda-Runtime-Function-Response-Mode");
    assert_string_equal(mode, "streaming");
    free(mode);
    char *trailer = bn_rs_header(r->headers, "Trailer");
    assert_non_null(trailer);
    free(trailer);
    assert_string_equal(r->trailers, "");
    /* a prompt longer than the context fails before any text: reported in the trailers */
    bn_buf big = {0};
    bn_buf_puts(&big, "{\"stream\":true,\"prompt\":\"");
    for (int i = 0; i < 5000; i++)
        bn_buf_puts(&big, "word ");
    bn_buf_puts(&big, "\"}");
    queue(&p, "s2", big.data, NULL, 0);
    bn_buf_free(&big);
    r = wait_record(&p, 1);
    assert_true(r->chunked);
    char *type = bn_rs_header(r->trailers, "Lambda-Runtime-Function-Error-Type");
    char *body = bn_rs_header(r->trailers, "Lambda-Runtime-Function-Error-Body");
    if (!type || !body)
        fail_msg("no error trailers: [%s]", r->trailers);
    assert_string_equal(type, "InvalidRequest");
    free(type);
    free(body);
    bn_rs_fail_next(p.rs, 403);
    assert_int_equal(finish(&p, 20000), 1);
    cleanup(&p);

    /* BITNET_STREAM=1 streams a request that did not ask */
    const char *env[] = {"BITNET_STREAM=1", NULL};
    p = start(model, env);
    queue(&p, "s3", "{\"prompt\":\"Once upon a time\",\"n_predict\":16,\"temperature\":0}", NULL, 0);
    r = wait_record(&p, 0);
    assert_true(r->chunked);
    assert_string_equal(r->body, ref);
    bn_rs_fail_next(p.rs, 403);
    assert_int_equal(finish(&p, 20000), 1);
    cleanup(&p);
    free(ref);
    free(model);
}

static void test_trace_and_json_logs(void **state)
{
    (void)state;
    char *model = bn_test_shared(TINY);
    BN_SKIP_IF_MISSING(model, TINY);
    const char *env[] = {"AWS_LAMBDA_LOG_FORMAT=JSON", NULL};
    proc p = start(model, env);
    queue(&p, "tr-1", "{\"prompt\":\"Hi\",\"n_predict\":2}", "Root=1-abc-def;Parent=12;Sampled=1", 0);
    queue(&p, "tr-2", "{\"prompt\":\"Hi\",\"n_predict\":2}", NULL, 0);
    wait_record(&p, 1);
    bn_rs_fail_next(p.rs, 403);
    assert_int_equal(finish(&p, 20000), 1);
    char *l = log_text(&p);
    int lines = 0, traced = 0, untraced = 0;
    for (char *line = strtok(l, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "{", 1))
            continue; /* sanitizer or libc noise, if any */
        bn_json_doc *d = parse(line, strlen(line));
        const bn_json *o = bn_json_root(d);
        assert_non_null(bn_json_get(o, "timestamp"));
        assert_non_null(bn_json_get(o, "level"));
        const bn_json *msg = bn_json_get(o, "message"), *id = bn_json_get(o, "requestId");
        assert_non_null(msg);
        if (strstr(msg->str, "invocation:")) {
            assert_non_null(id);
            if (!strcmp(id->str, "tr-1") && strstr(msg->str, "trace Root=1-abc-def;Parent=12;Sampled=1"))
                traced++;
            if (!strcmp(id->str, "tr-2") && strstr(msg->str, "trace -"))
                untraced++;
        }
        lines++;
        bn_json_free(d);
    }
    assert_true(lines >= 4);
    assert_int_equal(traced, 1);
    assert_int_equal(untraced, 1);
    free(l);
    cleanup(&p);
    free(model);
}

static void test_sigterm_busy(void **state)
{
    (void)state;
    char *model = bn_test_shared(TINY);
    BN_SKIP_IF_MISSING(model, TINY);
    const char *env[] = {"BITNET_THREADS=1", "BITNET_CTX=4096", NULL};
    proc p = start(model, env);
    /* These settings draw 4000 tokens on tiny-a without an end token (checked with bitnet-run:
     * stop_reason "length"; other seeds meet EOS within ~400 tokens, i.e. within tens of ms,
     * which raced the SIGTERM below). 4000 tokens take about a second even without
     * sanitizers; SIGTERM comes 100 ms after the event was taken. */
    queue(&p, "long", "{\"prompt\":\"Hello\",\"n_predict\":4000,\"temperature\":0.3,\"seed\":2}", NULL, 0);
    /* wait until it is generating (took the event, answered nothing yet) */
    for (int i = 0; i < 2000 && bn_rs_n_next(p.rs) < 1; i++)
        usleep(10000);
    usleep(100000);
    if (bn_rs_n_records(p.rs) != 0) {
        const bn_rs_record *early = bn_rs_record_at(p.rs, 0);
        fail_msg("answered before SIGTERM: %s %.300s", early->kind, early->body);
    }
    kill(p.pid, SIGTERM);
    int rc = bn_rs_wait_exit(p.pid, 20000);
    if (rc != 0) {
        char *l = log_text(&p);
        fail_msg("exit %d after SIGTERM while busy; log:\n%s", rc, l);
    }
    /* the request in flight was answered (cut short) before exiting */
    assert_int_equal(bn_rs_n_records(p.rs), 1);
    const bn_rs_record *r = bn_rs_record_at(p.rs, 0);
    assert_string_equal(r->kind, "response");
    bn_json_doc *d = parse(r->body, r->len);
    assert_string_equal(bn_json_get(bn_json_root(d), "stop_reason")->str, "shutdown");
    assert_true(bn_json_get(bn_json_root(d), "tokens_generated")->i64 < 4000);
    bn_json_free(d);
    bn_rs_stop(p.rs);
    cleanup(&p);
    free(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normal_invalid_sigterm_idle),
        cmocka_unit_test(test_413_then_serving_then_403),
        cmocka_unit_test(test_500_exits),
        cmocka_unit_test(test_init_errors),
        cmocka_unit_test(test_deadline_cut),
        cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_trace_and_json_logs),
        cmocka_unit_test(test_sigterm_busy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
