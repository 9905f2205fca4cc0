/* The Runtime API loop in-process against the test server, with a fake handler so every
 * protocol path (413 with a real 7 MB body, 500, 403, streaming trailers, deadline) is driven
 * exactly. The real bootstrap with the real engine is tested in test_lambda.c. */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "base64.h"
#include "json.h"
#include "loop.h"
#include "runtime_server.h"

/* ------------------------------------------------------------------ fake router
 * The body's "prompt" (or the last message's content) picks the behaviour: "BIG": 7 MB of
 * content; "FAIL": a 500 before any output; "BAD": a 400 naming a field; "FULL": an engine
 * error BN_E_CONTEXT_FULL, "NOMEM": BN_E_NOMEM (the router's status and the Lambda
 * errorType come from the code); "FAILMID": an SSE
 * error event after two pieces; "SLOW": a token every 20 ms until the tick (the deadline
 * rule) stops it (at most 500); "TRACE": the content is the _X_AMZN_TRACE_ID seen; otherwise
 * the content is "echo:<prompt>|<method> <path>|auth=<Authorization>", sent as SSE in 3
 * pieces when the body says "stream": true. */
static char *g_big;

static void send_json(const bn_api_sink *sink, int status, const char *content)
{
    bn_buf b = {0};
    bn_jw w = {.out = &b};
    bn_jw_obj(&w);
    bn_jw_key(&w, "content");
    bn_jw_str(&w, content);
    bn_jw_end(&w);
    if (!sink->begin(sink->user, status, "application/json"))
        sink->write(sink->user, b.data, b.len);
    bn_buf_free(&b);
}

static void send_piece(const bn_api_sink *sink, const char *text, size_t n)
{
    bn_buf b = {0};
    bn_buf_puts(&b, "data: {\"content\":\"");
    bn_buf_append(&b, text, n);
    bn_buf_puts(&b, "\"}\n\n");
    sink->write(sink->user, b.data, b.len);
    bn_buf_free(&b);
}

static int fake_handle(void *self, const bn_api_request *req, const bn_api_sink *sink)
{
    static char text[512];
    (void)self;
    bn_err err = {0};
    bn_json_doc *d = req->body ? bn_json_parse(req->body, req->len, NULL, &err) : NULL;
    const bn_json *o = d ? bn_json_root(d) : NULL;
    const bn_json *pv = bn_json_get(o, "prompt"), *msgs = bn_json_get(o, "messages");
    const bn_json *st = bn_json_get(o, "stream");
    if (!pv && msgs)
        pv = bn_json_get(bn_json_at(msgs, msgs->len - 1), "content");
    const char *p = pv && pv->type == BN_JSON_STRING ? pv->str : "";
    bool stream = st && st->type == BN_JSON_BOOL && st->boolean;
    int status = 200;
    if (!strcmp(p, "FAIL")) {
        bn_api_send_error(sink, status = 500, NULL, "fake failure");
    } else if (!strcmp(p, "FULL") || !strcmp(p, "NOMEM")) {
        bn_err e = {0};
        if (!strcmp(p, "FULL"))
            bn_fail(&e, BN_E_CONTEXT_FULL, "prompt is 9 tokens but the context holds only 8");
        else
            bn_fail(&e, BN_E_NOMEM, "out of memory");
        status = bn_api_fail(sink, &e);
    } else if (!strcmp(p, "BAD")) {
        bn_api_send_error(sink, status = 400, NULL, "field \"x\": fake bad field");
    } else if (!strcmp(p, "BIG")) {
        send_json(sink, 200, g_big);
    } else if (!strcmp(p, "SLOW")) {
        int n = 0;
        while (n < 500) {
            usleep(20000);
            n++;
            if (req->tick && req->tick(req->tick_user))
                break;
        }
        snprintf(text, sizeof text, "%d", n);
        send_json(sink, 200, text);
    } else {
        if (!strcmp(p, "TRACE")) {
            const char *t = getenv("_X_AMZN_TRACE_ID");
            snprintf(text, sizeof text, "%s", t ? t : "(unset)");
        } else {
            snprintf(text, sizeof text, "echo:%s|%s %s|auth=%s", p, req->method, req->path,
                     req->authorization ? req->authorization : "-");
        }
        if (!stream) {
            send_json(sink, 200, text);
        } else if (!sink->begin(sink->user, 200, "text/event-stream")) {
            size_t len = strlen(text), third = len / 3;
            send_piece(sink, text, third);
            send_piece(sink, text + third, third);
            if (!strcmp(p, "FAILMID"))
                sink->write(sink->user, "data: {\"error\":{\"message\":\"failed\"}}\n\n", 39);
            else
                send_piece(sink, text + 2 * third, len - 2 * third);
        }
    }
    bn_json_free(d);
    return status;
}

typedef struct fixture {
    bn_rs *rs;
    bn_rt *rt;
    pthread_t thread;
    bn_lambda_handler h;
    bn_lambda_config cfg;
    int rc;
} fixture;

static void *loop_thread(void *arg)
{
    fixture *f = arg;
    f->rc = bn_lambda_run(f->rt, &f->h, &f->cfg);
    return NULL;
}

static fixture *start_with(double margin_ms, bool stream_mode, bool envelope)
{
    fixture *f = calloc(1, sizeof *f);
    f->rs = bn_rs_start();
    assert_non_null(f->rs);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%d", bn_rs_port(f->rs));
    bn_err err = {0};
    f->rt = bn_rt_open(ep, &err);
    assert_non_null(f->rt);
    f->h = (bn_lambda_handler){NULL, fake_handle};
    f->cfg.margin_ms = margin_ms;
    f->cfg.stream_mode = stream_mode;
    f->cfg.envelope = envelope;
    f->rc = -1;
    pthread_create(&f->thread, NULL, loop_thread, f);
    return f;
}

static fixture *start(double margin_ms) { return start_with(margin_ms, false, false); }

/* Ends the loop with the given failure on /next; returns the loop's exit status. */
static int finish(fixture *f, int next_status)
{
    bn_rs_fail_next(f->rs, next_status);
    pthread_join(f->thread, NULL);
    int rc = f->rc;
    bn_rt_close(f->rt);
    bn_rs_stop(f->rs);
    free(f);
    return rc;
}

static void queue(fixture *f, const char *id, const char *body, const char *trace)
{
    bn_rs_event ev = {.request_id = id, .body = body, .trace_id = trace};
    bn_rs_queue(f->rs, &ev);
}

static const bn_rs_record *wait_record(fixture *f, size_t i)
{
    if (!bn_rs_wait_records(f->rs, i + 1, 20000))
        fail_msg("no record %zu from the runtime", i);
    return bn_rs_record_at(f->rs, i);
}

static bn_json_doc *parse_body(const bn_rs_record *r)
{
    bn_err err = {0};
    bn_json_doc *d = bn_json_parse(r->body, r->len, NULL, &err);
    if (!d)
        fail_msg("body is not JSON (%s): %s", err.msg, r->body);
    return d;
}

static void assert_header(const bn_rs_record *r, const char *name, const char *want)
{
    char *v = bn_rs_header(r->headers, name);
    if (!v || strcmp(v, want))
        fail_msg("header %s: got \"%s\", want \"%s\"", name, v ? v : "(absent)", want);
    free(v);
}

static const char *content_of(const bn_rs_record *r, bn_json_doc **d)
{
    *d = parse_body(r);
    const bn_json *c = bn_json_get(bn_json_root(*d), "content");
    if (!c)
        fail_msg("no content in %s", r->body);
    return c->str;
}

static void test_normal_and_keepalive(void **state)
{
    (void)state;
    fixture *f = start(250);
    /* a direct invoke is POST /completion, answered with the router's body as it is */
    queue(f, "req-1",
          "{\"prompt\":\"What is the capital of France?\",\"n_predict\":128,"
          "\"temperature\":0.8,\"top_p\":0.95,\"top_k\":40,\"repeat_penalty\":1.1}",
          NULL);
    const bn_rs_record *r = wait_record(f, 0);
    assert_string_equal(r->kind, "response");
    assert_string_equal(r->request_id, "req-1");
    assert_string_equal(r->version, "HTTP/1.1");
    assert_false(r->chunked);
    assert_header(r, "Content-Type", "application/json");
    char *cl = bn_rs_header(r->headers, "Content-Length");
    assert_non_null(cl);
    assert_int_equal(strtoul(cl, NULL, 10), r->len);
    free(cl);
    char *expect = bn_rs_header(r->headers, "Expect");
    assert_null(expect);
    char *ua = bn_rs_header(r->headers, "User-Agent");
    assert_non_null(ua);
    assert_non_null(strstr(ua, "bitnet-lambda/"));
    free(ua);
    bn_json_doc *d;
    assert_string_equal(content_of(r, &d),
                        "echo:What is the capital of France?|POST /completion|auth=-");
    bn_json_free(d);
    /* with "messages" a direct invoke is a chat completion; the same connection is reused */
    queue(f, "req-2", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":4}",
          NULL);
    r = wait_record(f, 1);
    assert_string_equal(content_of(r, &d), "echo:hi|POST /v1/chat/completions|auth=-");
    bn_json_free(d);
    assert_int_equal(bn_rs_n_connections(f->rs), 1);
    assert_int_equal(finish(f, 500), 1);
}

static void test_invalid_requests(void **state)
{
    (void)state;
    fixture *f = start(250);
    /* an event that is not JSON, and a router 400: function errors of type InvalidRequest */
    queue(f, "bad-0", "{\"prompt\":\"x\"", NULL);
    queue(f, "bad-1", "{\"prompt\":\"BAD\"}", NULL);
    queue(f, "bad-2", "{\"prompt\":\"FAIL\"}", NULL);
    const char *want[][2] = {
        {"InvalidRequest", "event: invalid JSON: byte 13: expected ',' or '}' in object"},
        {"InvalidRequest", "field \"x\": fake bad field"},
        {"Runtime.InternalError", "fake failure"}};
    for (size_t i = 0; i < 3; i++) {
        const bn_rs_record *r = wait_record(f, i);
        assert_string_equal(r->kind, "error");
        char type[64];
        /* types without a dot get "Function." on the wire (RUNTIME-API.md) */
        snprintf(type, sizeof type, "%s%s", strchr(want[i][0], '.') ? "" : "Function.", want[i][0]);
        assert_header(r, "Lambda-Runtime-Function-Error-Type", type);
        bn_json_doc *d = parse_body(r);
        assert_string_equal(bn_json_get(bn_json_root(d), "errorType")->str, want[i][0]);
        const char *msg = bn_json_get(bn_json_root(d), "errorMessage")->str;
        if (!strstr(msg, want[i][1]))
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, msg, want[i][1]);
        bn_json_free(d);
    }
    /* still serving */
    queue(f, "good", "{\"prompt\":\"ok\"}", NULL);
    assert_string_equal(wait_record(f, 3)->kind, "response");
    assert_int_equal(finish(f, 403), 1);
}

/* The envelope the Python-wrapper deployments return: {"statusCode", "body": "<JSON>"}. */
static void test_envelope(void **state)
{
    (void)state;
    fixture *f = start_with(250, true, true);
    queue(f, "e-1", "{\"prompt\":\"hello\",\"stream\":false}", NULL);
    queue(f, "e-2", "{\"prompt\":\"BAD\"}", NULL);
    queue(f, "e-3", "not json", NULL);
    int want_status[] = {200, 400, 400};
    for (size_t i = 0; i < 3; i++) {
        const bn_rs_record *r = wait_record(f, i);
        assert_string_equal(r->kind, "response");
        assert_false(r->chunked);
        bn_json_doc *d = parse_body(r);
        const bn_json *o = bn_json_root(d);
        assert_int_equal(o->len, 2); /* exactly statusCode and body */
        assert_int_equal(bn_json_get(o, "statusCode")->i64, want_status[i]);
        const bn_json *body = bn_json_get(o, "body");
        bn_err err = {0};
        bn_json_doc *in = bn_json_parse(body->str, body->len, NULL, &err);
        assert_non_null(in);
        if (i == 0)
            assert_string_equal(bn_json_get(bn_json_root(in), "content")->str,
                                "echo:hello|POST /completion|auth=-");
        else
            assert_non_null(bn_json_get(bn_json_get(bn_json_root(in), "error"), "message"));
        bn_json_free(in);
        bn_json_free(d);
    }
    assert_int_equal(finish(f, 500), 1);
}

static void test_http_events(void **state)
{
    (void)state;
    fixture *f = start(250);
    /* Function URL / HTTP API (2.0): method and rawPath route it; base64 body; headers */
    const char *inner = "{\"prompt\":\"hello\",\"n_predict\":4}";
    char b64[128], ev[768];
    bn_base64_encode(inner, strlen(inner), b64);
    snprintf(ev, sizeof ev,
             "{\"version\":\"2.0\",\"routeKey\":\"$default\",\"rawPath\":\"/v1/completions\","
             "\"headers\":{\"content-type\":\"application/json\",\"authorization\":\"Bearer k\"},"
             "\"requestContext\":{\"http\":{\"method\":\"POST\",\"path\":\"/v1/completions\"}},"
             "\"body\":\"%s\",\"isBase64Encoded\":true}",
             b64);
    queue(f, "url-1", ev, NULL);
    bn_json_doc *d = parse_body(wait_record(f, 0));
    const bn_json *o = bn_json_root(d);
    assert_int_equal(bn_json_get(o, "statusCode")->i64, 200);
    assert_string_equal(bn_json_get(bn_json_get(o, "headers"), "content-type")->str,
                        "application/json");
    const bn_json *body = bn_json_get(o, "body");
    bn_err err = {0};
    bn_json_doc *in = bn_json_parse(body->str, body->len, NULL, &err);
    assert_non_null(in);
    assert_string_equal(bn_json_get(bn_json_root(in), "content")->str,
                        "echo:hello|POST /v1/completions|auth=Bearer k");
    bn_json_free(in);
    bn_json_free(d);
    /* API Gateway REST (1.0): httpMethod and path; header names in the client's case */
    queue(f, "apigw-0",
          "{\"httpMethod\":\"GET\",\"path\":\"/v1/models\",\"resource\":\"/{proxy+}\","
          "\"headers\":{\"Authorization\":\"Bearer z\"},\"body\":null,"
          "\"requestContext\":{\"stage\":\"prod\"}}",
          NULL);
    d = parse_body(wait_record(f, 1));
    body = bn_json_get(bn_json_root(d), "body");
    assert_non_null(strstr(body->str, "|GET /v1/models|auth=Bearer z"));
    bn_json_free(d);
    /* an HTTP API stage other than $default: rawPath starts with its name */
    queue(f, "stage-1",
          "{\"version\":\"2.0\",\"rawPath\":\"/prod/v1/models\",\"requestContext\":"
          "{\"stage\":\"prod\",\"http\":{\"method\":\"GET\"}}}",
          NULL);
    d = parse_body(wait_record(f, 2));
    body = bn_json_get(bn_json_root(d), "body");
    assert_non_null(strstr(body->str, "|GET /v1/models|"));
    bn_json_free(d);
    /* a router 400 is an HTTP answer, not a function error */
    queue(f, "apigw-1",
          "{\"httpMethod\":\"POST\",\"path\":\"/completion\",\"headers\":{},"
          "\"body\":\"{\\\"prompt\\\":\\\"BAD\\\"}\"}",
          NULL);
    const bn_rs_record *r = wait_record(f, 3);
    assert_string_equal(r->kind, "response");
    d = parse_body(r);
    o = bn_json_root(d);
    assert_int_equal(bn_json_get(o, "statusCode")->i64, 400);
    body = bn_json_get(o, "body");
    assert_non_null(strstr(body->str, "fake bad field"));
    bn_json_free(d);
    queue(f, "apigw-2", "{\"httpMethod\":\"POST\",\"body\":\"!!!\",\"isBase64Encoded\":true}",
          NULL);
    d = parse_body(wait_record(f, 4));
    assert_int_equal(bn_json_get(bn_json_root(d), "statusCode")->i64, 400);
    assert_non_null(strstr(bn_json_get(bn_json_root(d), "body")->str, "invalid base64"));
    assert_non_null(strstr(bn_json_get(bn_json_root(d), "body")->str, "{\"error\":"));
    bn_json_free(d);
    assert_int_equal(finish(f, 500), 1);
}

static void test_413_then_still_serving(void **state)
{
    (void)state;
    size_t n = 7u << 20;
    g_big = malloc(n + 1);
    memset(g_big, 'x', n);
    g_big[n] = 0;
    fixture *f = start(250);
    bn_rs_fail_response(f->rs, 413);
    queue(f, "big-1", "{\"prompt\":\"BIG\"}", NULL);
    const bn_rs_record *r = wait_record(f, 0);
    assert_string_equal(r->kind, "response");
    assert_int_equal(r->status, 413);
    assert_true(r->len > n);
    r = wait_record(f, 1);
    assert_string_equal(r->kind, "error");
    assert_string_equal(r->request_id, "big-1");
    assert_non_null(strstr(r->body, "\"errorType\":\"ResponseSizeTooLarge\""));
    queue(f, "after-big", "{\"prompt\":\"small\"}", NULL);
    r = wait_record(f, 2);
    assert_string_equal(r->kind, "response");
    assert_int_equal(r->status, 202);
    assert_int_equal(finish(f, 500), 1);
    free(g_big);
}

static void test_500_on_response_stops(void **state)
{
    (void)state;
    fixture *f = start(250);
    bn_rs_fail_response(f->rs, 500);
    queue(f, "r500", "{\"prompt\":\"x\"}", NULL);
    pthread_join(f->thread, NULL);
    assert_int_equal(f->rc, 1);
    assert_int_equal(bn_rs_n_next(f->rs), 1); /* no further GET /next */
    bn_rt_close(f->rt);
    bn_rs_stop(f->rs);
    free(f);
}

static void test_streaming(void **state)
{
    (void)state;
    /* the fake's three pieces of its text, as SSE events */
    const char *text = "echo:streamed|POST /completion|auth=-";
    size_t len = strlen(text), third = len / 3;
    char sse[256];
    snprintf(sse, sizeof sse,
             "data: {\"content\":\"%.*s\"}\n\ndata: {\"content\":\"%.*s\"}\n\n"
             "data: {\"content\":\"%s\"}\n\n",
             (int)third, text, (int)third, text + third, text + 2 * third);
    /* buffered mode: the whole SSE body at once */
    fixture *f = start(250);
    queue(f, "b-1", "{\"prompt\":\"streamed\",\"stream\":true}", NULL);
    const bn_rs_record *r = wait_record(f, 0);
    assert_false(r->chunked);
    assert_header(r, "Content-Type", "text/event-stream");
    assert_string_equal(r->body, sse);
    assert_int_equal(finish(f, 500), 1);

    /* RESPONSE_STREAM mode: one chunk per event */
    f = start_with(250, true, false);
    queue(f, "s-1", "{\"prompt\":\"streamed\",\"stream\":true}", NULL);
    r = wait_record(f, 0);
    assert_string_equal(r->kind, "response");
    assert_true(r->chunked);
    assert_int_equal(r->n_chunks, 3);
    assert_string_equal(r->body, sse);
    assert_header(r, "Content-Type", "text/event-stream");
    assert_header(r, "Lambda-Runtime-Function-Response-Mode", "streaming");
    assert_header(r, "Connection", "close");
    assert_string_equal(r->version, "HTTP/1.1");
    assert_header(r, "Trailer",
                  "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body");
    assert_string_equal(r->trailers, "");
    /* mid-stream failure: the partial body and the SSE error event (as llama-server does) */
    queue(f, "s-2", "{\"prompt\":\"FAILMID\",\"stream\":true}", NULL);
    r = wait_record(f, 1);
    assert_int_equal(r->n_chunks, 3);
    assert_non_null(strstr(r->body, "data: {\"error\":"));
    /* Function URL streaming: prelude + 8 NULs, then the SSE body */
    queue(f, "s-3",
          "{\"requestContext\":{\"http\":{\"method\":\"POST\"}},\"rawPath\":\"/completion\","
          "\"body\":\"{\\\"prompt\\\":\\\"u\\\",\\\"stream\\\":true}\"}",
          NULL);
    r = wait_record(f, 2);
    assert_header(r, "Content-Type", "application/vnd.awslambda.http-integration-response");
    const char *pre = "{\"statusCode\":200,\"headers\":{\"content-type\":\"text/event-stream\","
                      "\"cache-control\":\"no-cache\"}}";
    size_t pl = strlen(pre);
    assert_true(r->len > pl + 8);
    assert_memory_equal(r->body, pre, pl);
    assert_memory_equal(r->body + pl, "\0\0\0\0\0\0\0\0", 8);
    assert_non_null(strstr(r->body + pl + 8, "data: {\"content\":\"echo"));
    /* a JSON answer stays buffered in stream mode; the loop reconnects after a stream */
    queue(f, "s-4", "{\"prompt\":\"after\"}", NULL);
    r = wait_record(f, 3);
    assert_string_equal(r->kind, "response");
    assert_false(r->chunked);
    assert_int_equal(finish(f, 500), 1);
}

static void test_trace_id(void **state)
{
    (void)state;
    fixture *f = start(250);
    queue(f, "t-1", "{\"prompt\":\"TRACE\"}", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1");
    queue(f, "t-2", "{\"prompt\":\"TRACE\"}", NULL);
    bn_json_doc *d = parse_body(wait_record(f, 0));
    assert_string_equal(bn_json_get(bn_json_root(d), "content")->str,
                        "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1");
    bn_json_free(d);
    d = parse_body(wait_record(f, 1));
    assert_string_equal(bn_json_get(bn_json_root(d), "content")->str, "(unset)");
    bn_json_free(d);
    assert_int_equal(finish(f, 500), 1);
}

static void test_deadline(void **state)
{
    (void)state;
    fixture *f = start(100);
    double t0 = bn_epoch_ms();
    bn_rs_event ev = {
        .request_id = "d-1", .body = "{\"prompt\":\"SLOW\"}", .deadline_ms = (int64_t)t0 + 600};
    bn_rs_queue(f->rs, &ev);
    bn_json_doc *d = parse_body(wait_record(f, 0));
    double t1 = bn_epoch_ms();
    const bn_json *o = bn_json_root(d);
    int64_t n = atoi(bn_json_get(o, "content")->str);
    /* ~500 ms of budget at 20 ms a token: well short of the 500 the handler would make */
    assert_true(n >= 5 && n < 40);
    assert_true(t1 < t0 + 600); /* answered before the deadline */
    bn_json_free(d);
    assert_int_equal(finish(f, 500), 1);

    /* the rule itself: no deadline never stops; a past deadline stops at once */
    bn_deadline dl;
    bn_deadline_start(&dl, 0, 250);
    for (int i = 0; i < 5; i++)
        assert_false(bn_deadline_tick(&dl));
    bn_deadline_start(&dl, (int64_t)bn_epoch_ms() + 200, 250);
    assert_true(bn_deadline_tick(&dl));
    assert_string_equal(dl.reason, "deadline");
    /* the estimate follows the slowest recent token */
    bn_deadline_start(&dl, (int64_t)bn_epoch_ms() + 100000, 0);
    assert_false(bn_deadline_tick(&dl));
    usleep(30000);
    assert_false(bn_deadline_tick(&dl));
    assert_true(dl.est_ms >= 29);
}

/* The prompt rule: from the prior before any work, from the prompt's own speed after a chunk. */
static void test_deadline_prefill_rule(void **state)
{
    (void)state;
    bn_deadline dl;
    double need;
    const bn_speed_prior none = {0}, prior = {.prefill_ms_per_tok = 10, .decode_ms = 50};
    const double now = bn_epoch_ms();
    /* no deadline, or no estimate yet: go on */
    bn_deadline_start(&dl, 0, 250);
    assert_false(bn_deadline_prefill(&dl, 0, 100000, now, &prior, &need));
    bn_deadline_start(&dl, (int64_t)now + 1000, 250);
    assert_false(bn_deadline_prefill(&dl, 0, 100000, now, &none, &need));
    /* 10 s left: 500 tokens at 10 ms fit (5 s + 50 ms + 250 ms), 1000 do not */
    bn_deadline_start(&dl, (int64_t)now + 10000, 250);
    assert_false(bn_deadline_prefill(&dl, 0, 500, now, &prior, &need));
    assert_true(bn_deadline_prefill(&dl, 0, 1000, now, &prior, &need));
    assert_string_equal(dl.reason, "prompt_too_long");
    assert_true(need >= 9990 && need <= 10100);
    /* measured: 32 tokens took 1 s (started 1 s ago); 320 more need 10 s, more than is left */
    bn_deadline_start(&dl, (int64_t)now + 10000, 250);
    assert_true(bn_deadline_prefill(&dl, 32, 352, now - 1000, &prior, &need));
    assert_true(need >= 10900 && need <= 11200);
    /* ... while 200 more fit (6.25 s) */
    bn_deadline_start(&dl, (int64_t)now + 10000, 250);
    assert_false(bn_deadline_prefill(&dl, 32, 232, now - 1000, &none, &need));
    /* the end of the prompt is never refused */
    assert_false(bn_deadline_prefill(&dl, 232, 232, now - 1000, &none, &need));
}

static void test_next_failures(void **state)
{
    (void)state;
    /* 403 and 500 on /next end the loop at once; so does a vanished API after 3 tries */
    fixture *f = start(250);
    assert_int_equal(finish(f, 403), 1);
    f = start(250);
    assert_int_equal(finish(f, 500), 1);
    bn_rs *rs = bn_rs_start();
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%d", bn_rs_port(rs));
    bn_rs_stop(rs); /* nothing listens there now */
    bn_err err = {0};
    bn_rt *rt = bn_rt_open(ep, &err);
    bn_lambda_handler h = {NULL, fake_handle};
    bn_lambda_config cfg = {.margin_ms = 250};
    assert_int_equal(bn_lambda_run(rt, &h, &cfg), 1);
    bn_rt_close(rt);
    assert_null(bn_rt_open(NULL, &err));
    assert_non_null(strstr(err.msg, "AWS_LAMBDA_RUNTIME_API is not set"));
    assert_null(bn_rt_open("http://x/y", &err));
}

static void test_protocol_robustness(void **state)
{
    (void)state;
    /* proxy variables are ignored (CURLOPT_PROXY ""): the Runtime API is always direct */
    setenv("http_proxy", "http://127.0.0.1:9", 1);
    setenv("HTTP_PROXY", "http://127.0.0.1:9", 1);
    setenv("ALL_PROXY", "http://127.0.0.1:9", 1);
    fixture *f = start(250);
    /* GET /next held longer than the 1 s connect timeout: no total timeout applies */
    assert_true(bn_rs_wait_idle(f->rs, 10000));
    usleep(1500000);
    queue(f, "held", "{\"prompt\":\"TRACE\"}", "Root=1-held");
    bn_json_doc *d = parse_body(wait_record(f, 0));
    assert_string_equal(bn_json_get(bn_json_root(d), "content")->str, "Root=1-held");
    bn_json_free(d);
    /* lower-case header names are fine; an empty trace header counts as absent */
    bn_rs_event ev = {
        .request_id = "lower", .body = "{\"prompt\":\"TRACE\"}", .trace_id = "", .lowercase = true};
    bn_rs_queue(f->rs, &ev);
    const bn_rs_record *r = wait_record(f, 1);
    assert_string_equal(r->request_id, "lower");
    d = parse_body(r);
    assert_string_equal(bn_json_get(bn_json_root(d), "content")->str, "(unset)");
    bn_json_free(d);
    /* no request id: that event cannot be answered; the loop asks again and serves the next */
    bn_rs_event noid = {.request_id = "x", .body = "{\"prompt\":\"lost\"}", .no_request_id = true};
    bn_rs_queue(f->rs, &noid);
    queue(f, "after-noid", "{\"prompt\":\"ok\"}", NULL);
    r = wait_record(f, 2);
    assert_string_equal(r->request_id, "after-noid");
    /* a handler failure is a function error, and the loop goes on */
    queue(f, "fail", "{\"prompt\":\"FAIL\"}", NULL);
    r = wait_record(f, 3);
    assert_string_equal(r->kind, "error");
    assert_header(r, "Lambda-Runtime-Function-Error-Type", "Runtime.InternalError");
    assert_header(r, "Content-Type", "application/vnd.aws.lambda.error+json");
    assert_string_equal(r->body, "{\"errorMessage\":\"fake failure\",\"errorType\":"
                                 "\"Runtime.InternalError\",\"stackTrace\":[]}");
    /* 403 on /response (e.g. answered twice): logged, keep serving */
    bn_rs_fail_response(f->rs, 403);
    queue(f, "r403", "{\"prompt\":\"a\"}", NULL);
    assert_int_equal(wait_record(f, 4)->status, 403);
    queue(f, "after403", "{\"prompt\":\"b\"}", NULL);
    assert_int_equal(wait_record(f, 5)->status, 202);
    /* a POST that gets no answer at all: exit */
    bn_rs_fail_response(f->rs, -1);
    queue(f, "dropped", "{\"prompt\":\"c\"}", NULL);
    pthread_join(f->thread, NULL);
    assert_int_equal(f->rc, 1);
    bn_rt_close(f->rt);
    bn_rs_stop(f->rs);
    free(f);
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("ALL_PROXY");
}

static void test_threads_from_env(void **state)
{
    (void)state;
    bn_err err = {0};
    int cpus = bn_lambda_threads(&err);
    assert_true(cpus >= 1);
    setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128", 1);
    assert_int_equal(bn_lambda_threads(&err), 1); /* rounds to 0, at least 1 */
    setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "10240", 1);
    assert_int_equal(bn_lambda_threads(&err), cpus < 6 ? cpus : 6);
    setenv("BITNET_THREADS", "3", 1);
    assert_int_equal(bn_lambda_threads(&err), 3);
    setenv("BITNET_THREADS", "0", 1); /* the table's meaning: all CPUs */
    assert_int_equal(bn_lambda_threads(&err), cpus);
    setenv("BITNET_THREADS", "-1", 1);
    assert_int_equal(bn_lambda_threads(&err), -1);
    assert_non_null(strstr(err.msg, "BITNET_THREADS must be an integer in [0, 1024]"));
    unsetenv("BITNET_THREADS");
    unsetenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
}

/* The errorType of each error code (and the router's HTTP status for it): the request's fault
 * (bad input, a prompt that does not fit) is InvalidRequest and 400; everything else a
 * Runtime.* type and 500 (501 for unsupported). */
static void test_error_type_table(void **state)
{
    (void)state;
    static const struct {
        bn_err_code code;
        const char *type;
        int status;
    } table[] = {
        {BN_E_INPUT, "InvalidRequest", 400},
        {BN_E_CONTEXT_FULL, "InvalidRequest", 400},
        {BN_E_NOMEM, "Runtime.OutOfMemory", 500},
        {BN_E_IO, "Runtime.IOError", 500},
        {BN_E_FORMAT, "Runtime.FormatError", 500},
        {BN_E_UNSUPPORTED, "Runtime.Unsupported", 501},
        {BN_E_INTERNAL, "Runtime.InternalError", 500},
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        assert_string_equal(bn_lambda_error_type(table[i].code), table[i].type);
        assert_int_equal(bn_api_status_for(table[i].code), table[i].status);
    }
}

/* The engine's error code, not its message, picks the errorType of a direct invoke: a prompt
 * that does not fit is InvalidRequest, out of memory Runtime.OutOfMemory; an HTTP event gets
 * the router's status (400, 500) and OpenAI's error body. */
static void test_error_codes_through_the_loop(void **state)
{
    (void)state;
    fixture *f = start(250);
    queue(f, "full", "{\"prompt\":\"FULL\"}", NULL);
    const bn_rs_record *r = wait_record(f, 0);
    assert_string_equal(r->kind, "error");
    assert_header(r, "Lambda-Runtime-Function-Error-Type", "Function.InvalidRequest");
    assert_string_equal(r->body, "{\"errorMessage\":\"prompt is 9 tokens but the context holds "
                                 "only 8\",\"errorType\":\"InvalidRequest\",\"stackTrace\":[]}");
    queue(f, "nomem", "{\"prompt\":\"NOMEM\"}", NULL);
    r = wait_record(f, 1);
    assert_string_equal(r->kind, "error");
    assert_header(r, "Lambda-Runtime-Function-Error-Type", "Runtime.OutOfMemory");
    queue(f, "full-http",
          "{\"httpMethod\":\"POST\",\"path\":\"/"
          "completion\",\"body\":\"{\\\"prompt\\\":\\\"FULL\\\"}\"}",
          NULL);
    bn_json_doc *d = parse_body(wait_record(f, 2));
    assert_int_equal(bn_json_get(bn_json_root(d), "statusCode")->i64, 400);
    assert_non_null(strstr(bn_json_get(bn_json_root(d), "body")->str, "invalid_request_error"));
    bn_json_free(d);
    queue(f, "nomem-http",
          "{\"httpMethod\":\"POST\",\"path\":\"/"
          "completion\",\"body\":\"{\\\"prompt\\\":\\\"NOMEM\\\"}\"}",
          NULL);
    d = parse_body(wait_record(f, 3));
    assert_int_equal(bn_json_get(bn_json_root(d), "statusCode")->i64, 500);
    assert_non_null(strstr(bn_json_get(bn_json_root(d), "body")->str, "out of memory"));
    bn_json_free(d);
    assert_int_equal(finish(f, 403), 1);
}

static void test_base64(void **state)
{
    (void)state;
    char out[64];
    unsigned char dec[64];
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        bn_base64_encode(in[i], strlen(in[i]), out);
        assert_string_equal(out, want[i]);
        assert_int_equal(bn_base64_decode(out, strlen(out), dec), (long)strlen(in[i]));
        assert_string_equal((char *)dec, in[i]);
    }
    assert_int_equal(bn_base64_decode("Zm9", 3, dec), -1);
    assert_int_equal(bn_base64_decode("Z=9v", 4, dec), -1);
    assert_int_equal(bn_base64_decode("Zm9v!A==", 8, dec), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normal_and_keepalive),
        cmocka_unit_test(test_invalid_requests),
        cmocka_unit_test(test_envelope),
        cmocka_unit_test(test_http_events),
        cmocka_unit_test(test_413_then_still_serving),
        cmocka_unit_test(test_500_on_response_stops),
        cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_trace_id),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_deadline_prefill_rule),
        cmocka_unit_test(test_next_failures),
        cmocka_unit_test(test_protocol_robustness),
        cmocka_unit_test(test_threads_from_env),
        cmocka_unit_test(test_error_type_table),
        cmocka_unit_test(test_error_codes_through_the_loop),
        cmocka_unit_test(test_base64),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
