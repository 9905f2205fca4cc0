/* bitnet-server with real clients: curl for every route (the texts equal bitnet-run's for
 * the same greedy settings), raw sockets for the transport's rows (keep-alive, 400, 401,
 * 404, 405, 408 for a trickling client, 413, 431, 501, 503 busy, SIGTERM), and the same
 * requests as Function URL (2.0) and API Gateway REST (1.0) events through the real bootstrap
 * and the in-repo Runtime API server: identical bodies (apart from ids, clocks and timings),
 * and SSE through the streamed response. All on 127.0.0.1 with a synthetic model. */
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "http_client.h"
#include "json.h"
#include "runtime_server.h"
#include "synthetic_model.h"

static char *model;
static char *body_file;

static int setup(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_synth_params p;
    model = bn_test_tmpfile(".gguf");
    body_file = bn_test_tmpfile(".json");
    return bn_synth_preset("tiny", &p, &err) || bn_synth_write(&p, model, &err) ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(model);
    unlink(body_file);
    free(model);
    free(body_file);
    return 0;
}

static bn_json_doc *parse(const char *s, size_t n)
{
    bn_err err = {0};
    bn_json_doc *d = bn_json_parse(s, n, NULL, &err);
    if (!d)
        fail_msg("not JSON (%s): %.400s", err.msg, s);
    return d;
}

static void start(bn_srv *s, const char *const *extra)
{
    const char *args[32] = {"-m", model, "-t", "1", "-c", "1024"};
    int n = 6;
    for (int i = 0; extra && extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    if (!bn_srv_start(s, args)) {
        char *l = s->log ? (char *)bn_test_read_file(s->log, NULL) : NULL;
        fail_msg("bitnet-server did not start: %s", l ? l : "");
    }
}

/* curl -i against the server; returns the body, checks the status. */
static char *curl_req(int port, const char *method, const char *path, const char *body,
                      const char *key, int want_status)
{
    char url[256], auth[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    const char *args[16] = {"-i", "-X", method, "-H", "Content-Type: application/json"};
    int n = 5;
    if (body) {
        bn_test_write_file(body_file, body, strlen(body));
        char *at = malloc(strlen(body_file) + 2);
        sprintf(at, "@%s", body_file);
        args[n++] = "--data-binary";
        args[n++] = at;
    }
    if (key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        args[n++] = "-H";
        args[n++] = auth;
    }
    args[n++] = url;
    args[n] = NULL;
    int rc;
    char *out = bn_curl(args, &rc);
    if (body)
        free((char *)args[6]);
    assert_int_equal(rc, 0);
    int status = 0;
    sscanf(out, "HTTP/1.%*d %d", &status);
    if (status != want_status)
        fail_msg("%s %s: status %d, want %d:\n%s", method, path, status, want_status, out);
    const char *b = strstr(out, "\r\n\r\n");
    char *r = strdup(b ? b + 4 : "");
    free(out);
    return r;
}

static const char *str_of(const bn_json *o, const char *k)
{
    const bn_json *v = bn_json_get(o, k);
    if (!v || v->type != BN_JSON_STRING)
        fail_msg("no string \"%s\"", k);
    return v->str;
}

/* ------------------------------------------------------------------ curl, every route */
static void test_curl_routes(void **state)
{
    (void)state;
    if (!bn_have_curl()) {
        print_message("SKIPPED: curl not found\n");
        skip();
    }
    char *want = bn_cli_greedy_text(model, NULL, "The capital of France is", 16);
    char *want_chat = bn_cli_greedy_text(model, "Be brief.", "Hello", 12);
    bn_srv s;
    const char *extra[] = {"--api-key", "k3y", NULL};
    start(&s, extra);
    char *b = curl_req(s.port, "GET", "/health", NULL, NULL, 200);
    assert_string_equal(b, "{\"status\":\"ok\"}");
    free(b);
    /* llama-server's /completion */
    b = curl_req(s.port, "POST", "/completion",
                 "{\"prompt\":\"The capital of France is\",\"n_predict\":16,\"temperature\":0}",
                 "k3y", 200);
    bn_json_doc *d = parse(b, strlen(b));
    assert_string_equal(str_of(bn_json_root(d), "content"), want);
    bn_json_free(d);
    free(b);
    /* OpenAI completions and chat */
    b = curl_req(s.port, "POST", "/v1/completions",
                 "{\"model\":\"tiny\",\"prompt\":\"The capital of France "
                 "is\",\"max_tokens\":16,\"temperature\":0}",
                 "k3y", 200);
    d = parse(b, strlen(b));
    assert_string_equal(str_of(bn_json_at(bn_json_get(bn_json_root(d), "choices"), 0), "text"),
                        want);
    bn_json_free(d);
    free(b);
    b = curl_req(
        s.port, "POST", "/v1/chat/completions",
        "{\"model\":\"tiny\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":\"Hello\"}],\"max_tokens\":12,\"temperature\":0}",
        "k3y", 200);
    d = parse(b, strlen(b));
    const bn_json *c0 = bn_json_at(bn_json_get(bn_json_root(d), "choices"), 0);
    assert_string_equal(str_of(bn_json_get(c0, "message"), "content"), want_chat);
    bn_json_free(d);
    free(b);
    /* streamed: the pieces concatenate to the same text */
    b = curl_req(s.port, "POST", "/chat/completions",
                 "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                 "{\"role\":\"user\",\"content\":\"Hello\"}],\"max_tokens\":12,\"temperature\":0,"
                 "\"stream\":true}",
                 "k3y", 200);
    bn_buf cat = {0};
    bn_buf_puts(&cat, "");
    for (char *p = b; (p = strstr(p, "data: ")); p += 6) {
        if (!strncmp(p + 6, "[DONE]", 6))
            break;
        char *e = strstr(p, "\n\n");
        bn_json_doc *ev = parse(p + 6, (size_t)(e - p - 6));
        const bn_json *c = bn_json_get(
            bn_json_get(bn_json_at(bn_json_get(bn_json_root(ev), "choices"), 0), "delta"),
            "content");
        if (c)
            bn_buf_append(&cat, c->str, c->len);
        bn_json_free(ev);
    }
    assert_non_null(strstr(b, "data: [DONE]\n\n"));
    assert_string_equal(cat.data, want_chat);
    bn_buf_free(&cat);
    free(b);
    b = curl_req(s.port, "POST", "/completions",
                 "{\"prompt\":\"The capital of France "
                 "is\",\"n_predict\":16,\"temperature\":0,\"stream\":true}",
                 "k3y", 200);
    assert_int_equal(strncmp(b, "data: {", 7), 0);
    assert_null(strstr(b, "[DONE]")); /* llama-server's stream has none */
    free(b);
    /* tokenize / detokenize */
    b = curl_req(s.port, "POST", "/tokenize", "{\"content\":\"hello world\"}", "k3y", 200);
    d = parse(b, strlen(b));
    const bn_json *toks = bn_json_get(bn_json_root(d), "tokens");
    assert_true(toks && toks->len > 0);
    bn_buf req = {0};
    bn_buf_puts(&req, "{\"tokens\":[");
    for (size_t i = 0; i < toks->len; i++)
        bn_buf_printf(&req, "%s%lld", i ? "," : "", (long long)bn_json_at(toks, i)->i64);
    bn_buf_puts(&req, "]}");
    bn_json_free(d);
    free(b);
    b = curl_req(s.port, "POST", "/detokenize", req.data, "k3y", 200);
    bn_buf_free(&req);
    d = parse(b, strlen(b));
    assert_string_equal(str_of(bn_json_root(d), "content"), "hello world");
    bn_json_free(d);
    free(b);
    /* models, props */
    const char *gets[] = {"/v1/models", "/models", "/props"};
    for (int i = 0; i < 3; i++) {
        b = curl_req(s.port, "GET", gets[i], NULL, "k3y", 200);
        d = parse(b, strlen(b));
        bn_json_free(d);
        free(b);
    }
    /* the error rows a client sees */
    b = curl_req(s.port, "GET", "/v1/models", NULL, NULL, 401);
    assert_non_null(strstr(b, "\"authentication_error\""));
    free(b);
    b = curl_req(s.port, "GET", "/v1/models", NULL, "wrong", 401);
    free(b);
    b = curl_req(s.port, "GET", "/nope", NULL, "k3y", 404);
    free(b);
    b = curl_req(s.port, "GET", "/completion", NULL, "k3y", 405);
    free(b);
    b = curl_req(s.port, "POST", "/completion", "{\"prompt\":\"x\",\"temperature\":\"hot\"}", "k3y",
                 400);
    assert_non_null(strstr(b, "temperature"));
    free(b);
    b = curl_req(s.port, "POST", "/v1/chat/completions",
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":3}", "k3y", 400);
    free(b);
    assert_int_equal(bn_srv_stop(&s, 10000), 0);
    free(want);
    free(want_chat);
}

/* The README's curl examples (the ```sh blocks after an "http-examples" marker), run as
 * written against the server, localhost:8080 swapped for its port: each exits 0 (curl -f:
 * an HTTP error fails) and prints JSON or SSE. */
static void test_readme_examples(void **state)
{
    (void)state;
    if (!bn_have_curl()) {
        print_message("SKIPPED: curl not found\n");
        skip();
    }
    char *readme_path = bn_test_source("README.md");
    char *readme = (char *)bn_test_read_file(readme_path, NULL);
    assert_non_null(readme);
    bn_srv s;
    start(&s, NULL);
    char port[32];
    snprintf(port, sizeof port, "127.0.0.1:%d", s.port);
    int ran = 0;
    for (const char *m = readme; (m = strstr(m, "<!-- http-examples")); m++) {
        const char *b = strstr(m, "```sh\n"), *e = b ? strstr(b + 6, "```") : NULL;
        assert_non_null(e);
        for (const char *l = b + 6; l < e; l = strchr(l, '\n') + 1) {
            const char *nl = strchr(l, '\n');
            if (strncmp(l, "curl ", 5))
                continue;
            bn_buf cmd = {0};
            for (const char *c = l; c < nl; c++) {
                if (!strncmp(c, "localhost:8080", 14)) {
                    bn_buf_puts(&cmd, port);
                    c += 13;
                } else {
                    bn_buf_append(&cmd, c, 1);
                }
            }
            bn_buf_puts(&cmd, " --max-time 60");
            FILE *p = popen(cmd.data, "r");
            bn_buf out = {0};
            char buf[4096];
            size_t n;
            while ((n = fread(buf, 1, sizeof buf, p)) > 0)
                bn_buf_append(&out, buf, n);
            int rc = pclose(p);
            if (rc != 0 || !out.data || (out.data[0] != '{' && strncmp(out.data, "data: ", 6)))
                fail_msg("README example failed (%d): %s\n%s", rc, cmd.data,
                         out.data ? out.data : "");
            bn_buf_free(&out);
            bn_buf_free(&cmd);
            ran++;
        }
    }
    assert_true(ran >= 8);
    assert_int_equal(bn_srv_stop(&s, 10000), 0);
    free(readme);
    free(readme_path);
}

/* ------------------------------------------------------------------ the transport's rows */
static void test_transport_limits(void **state)
{
    (void)state;
    bn_srv s;
    const char *extra[] = {"--max-body", "2048", "--timeout", "1", NULL};
    start(&s, extra);
    int st;
    /* keep-alive: two requests on one connection, then a pipelined pair */
    int fd = bn_http_connect(s.port);
    const char *get = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < 2; i++) {
        assert_int_equal(send(fd, get, strlen(get), 0), (ssize_t)strlen(get));
        char *r = bn_http_read_response(fd, 5000, &st);
        assert_int_equal(st, 200);
        assert_non_null(strstr(r, "Connection: keep-alive"));
        assert_string_equal(bn_http_body(r), "{\"status\":\"ok\"}");
        free(r);
    }
    close(fd);

    struct {
        const char *req;
        int status;
    } rows[] = {
        {"GARBAGE\r\n\r\n", 400},
        {"GET /health HTTP/2.0\r\n\r\n", 505},
        {"GET /health HTTP/1.1\nHost: x\n\n", 400},
        {"POST /completion HTTP/1.1\r\nContent-Length: 999999\r\n\r\n", 413},
        {"POST /completion HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400},
        {"POST /completion HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501},
        {"GET /nowhere HTTP/1.1\r\n\r\n", 404},
        {"PUT /health HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405},
        {"POST /completion HTTP/1.1\r\nContent-Length: 3\r\n\r\n{x}", 400},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *r = bn_http_roundtrip(s.port, rows[i].req, strlen(rows[i].req), 5000, &st);
        if (st != rows[i].status)
            fail_msg("row %zu: status %d, want %d: %s", i, st, rows[i].status, r ? r : "(nothing)");
        bn_json_doc *d = parse(bn_http_body(r), strlen(bn_http_body(r)));
        assert_true(bn_json_get(bn_json_get(bn_json_root(d), "error"), "code")->i64 == st);
        bn_json_free(d);
        free(r);
    }
    /* HTTP/1.0 and HEAD: the head alone, and the connection closes after it */
    const char *head10 = "HEAD /health HTTP/1.0\r\n\r\n";
    char *r = bn_http_roundtrip(s.port, head10, strlen(head10), 5000, &st);
    assert_int_equal(st, 200);
    assert_int_equal(strncmp(r, "HTTP/1.0 200", 12), 0);
    assert_non_null(strstr(r, "Content-Length: 15\r\n"));
    assert_non_null(strstr(r, "Connection: close\r\n"));
    assert_string_equal(bn_http_body(r), "");
    free(r);
    /* Expect: 100-continue: the interim answer, then the body is read */
    fd = bn_http_connect(s.port);
    const char *exp =
        "POST /tokenize HTTP/1.1\r\nContent-Length: 15\r\nExpect: 100-continue\r\n\r\n";
    send(fd, exp, strlen(exp), 0);
    char cont[64] = {0};
    assert_true(recv(fd, cont, sizeof cont - 1, 0) > 0);
    assert_string_equal(cont, "HTTP/1.1 100 Continue\r\n\r\n");
    send(fd, "{\"content\":\"a\"}", 15, 0);
    r = bn_http_read_response(fd, 5000, &st);
    assert_int_equal(st, 200);
    assert_non_null(strstr(bn_http_body(r), "\"tokens\":["));
    free(r);
    close(fd);
    /* a head beyond the limit: 431 */
    bn_buf big = {0};
    bn_buf_puts(&big, "GET /health HTTP/1.1\r\nX-Filler: ");
    for (int i = 0; i < 20000; i++)
        bn_buf_puts(&big, "a");
    bn_buf_puts(&big, "\r\n\r\n");
    r = bn_http_roundtrip(s.port, big.data, big.len, 5000, &st);
    assert_int_equal(st, 431);
    free(r);
    bn_buf_free(&big);

    /* a client that trickles one byte every 300 ms is cut off after the 1 s deadline (408),
     * and meanwhile the server answers others */
    fd = bn_http_connect(s.port);
    const char *slow = "POST /completion HTTP/1.1\r\nContent-Length: 40\r\n\r\n{\"prompt\":";
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool cut = false;
    for (size_t i = 0; i < strlen(slow) && !cut; i++) {
        if (send(fd, slow + i, 1, MSG_NOSIGNAL) != 1)
            cut = true;
        usleep(300000);
        if (i == 2) {
            char *h = bn_http_roundtrip(s.port, get, strlen(get), 2000, &st);
            assert_int_equal(st, 200);
            free(h);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (t1.tv_sec - t0.tv_sec > 5)
            break;
    }
    r = bn_http_read_response(fd, 3000, &st);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(st, 408);
    assert_true(t1.tv_sec - t0.tv_sec <= 4);
    free(r);
    close(fd);
    assert_int_equal(bn_srv_stop(&s, 10000), 0);
}

/* A generation that cannot finish: the client asks for a long stream with large events and
 * does not read, so the server's writes block (up to --timeout) while holding the slot. */
static int stalled_client(int port)
{
    int fd = bn_http_connect(port);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    const char *body =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":-1,"
        "\"temperature\":0.5,\"seed\":1,\"stream\":true,\"logprobs\":true,\"top_logprobs\":20}";
    char req[512];
    int n = snprintf(req, sizeof req,
                     "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    send(fd, req, (size_t)n, 0);
    return fd;
}

static void test_busy_and_sigterm(void **state)
{
    (void)state;
    bn_srv s;
    const char *extra[] = {"--queue", "0", "--timeout", "4", NULL};
    start(&s, extra);
    int hold = stalled_client(s.port);
    /* once it holds the slot (blocked writing for up to 4 s), a generation request is refused;
     * until then (a slow start under an emulator) a one-token request is simply served */
    int st = 0;
    const char *gen = "POST /completion HTTP/1.1\r\nContent-Length: "
                      "29\r\n\r\n{\"prompt\":\"hi\",\"n_predict\":1}";
    char *r = NULL;
    for (int i = 0; i < 100 && st != 503; i++) {
        usleep(50000);
        free(r);
        r = bn_http_roundtrip(s.port, gen, strlen(gen), 5000, &st);
        assert_true(st == 503 || st == 200);
    }
    assert_int_equal(st, 503);
    assert_non_null(strstr(r, "\"unavailable_error\""));
    free(r);
    /* routes that do not generate are served meanwhile */
    const char *get = "GET /health HTTP/1.1\r\n\r\n";
    r = bn_http_roundtrip(s.port, get, strlen(get), 5000, &st);
    assert_int_equal(st, 200);
    free(r);
    /* SIGTERM while the generation is blocked: it ends at its next token or write timeout,
     * and the process exits 0 */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(bn_srv_stop(&s, 15000), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec <= 8);
    close(hold);

    /* idle, with an open keep-alive connection: SIGINT (Ctrl-C) exits at once */
    start(&s, NULL);
    int fd = bn_http_connect(s.port);
    send(fd, get, strlen(get), 0);
    r = bn_http_read_response(fd, 5000, &st);
    free(r);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kill(s.pid, SIGINT);
    assert_int_equal(bn_rs_wait_exit(s.pid, 10000), 0);
    s.pid = -1;
    bn_srv_stop(&s, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec <= 3);
    close(fd);
}

/* ------------------------------------------------------------------ same answers on Lambda */
/* Removes what differs between two runs of one request: ids, clocks, timings. */
static void normalize(bn_buf *out, const bn_json *v)
{
    bn_jw w = {.out = out};
    bn_jw_value(&w, v);
}

static char *stable_json(const char *text, size_t len)
{
    bn_json_doc *d = parse(text, len);
    bn_json *r = (bn_json *)bn_json_root(d);
    /* blank the volatile members in place (the tree is ours) */
    for (bn_json *k = r->child; k; k = k->next) {
        if (!strcmp(k->key, "id") || !strcmp(k->key, "created") || !strcmp(k->key, "timings")) {
            k->type = BN_JSON_NULL;
        }
        if (!strcmp(k->key, "generation_settings")) /* a seed nobody chose */
            for (bn_json *f = k->child; f; f = f->next)
                if (!strcmp(f->key, "seed"))
                    f->type = BN_JSON_NULL;
        if (!strcmp(k->key, "data")) /* /v1/models: created */
            for (bn_json *m = k->child; m; m = m->next)
                for (bn_json *f = m->child; f; f = f->next)
                    if (!strcmp(f->key, "created"))
                        f->type = BN_JSON_NULL;
    }
    bn_buf b = {0};
    normalize(&b, r);
    bn_json_free(d);
    return b.data;
}

typedef struct lam {
    bn_rs *rs;
    pid_t pid;
    char *log;
} lam;

static void lambda_start_key(lam *l, bool stream, const char *key_env)
{
    l->rs = bn_rs_start();
    assert_non_null(l->rs);
    l->log = bn_test_tmpfile(".log");
    char api[64], mod[1024];
    snprintf(api, sizeof api, "AWS_LAMBDA_RUNTIME_API=127.0.0.1:%d", bn_rs_port(l->rs));
    snprintf(mod, sizeof mod, "BITNET_MODEL=%s", model);
    const char *env[] = {api,
                         mod,
                         "BITNET_THREADS=1",
                         "BITNET_CTX=1024",
                         "BITNET_WARMUP=0",
                         stream ? "BITNET_STREAM=1" : "BITNET_STREAM",
                         "BITNET_RESPONSE",
                         key_env ? key_env : "BITNET_API_KEY",
                         NULL};
    l->pid = bn_rs_spawn("bootstrap", env, l->log);
    assert_true(l->pid > 0);
}

static void lambda_start(lam *l, bool stream) { lambda_start_key(l, stream, NULL); }

static void lambda_stop(lam *l)
{
    bn_rs_fail_next(l->rs, 403);
    assert_int_equal(bn_rs_wait_exit(l->pid, 20000), 1);
    bn_rs_stop(l->rs);
    unlink(l->log);
    free(l->log);
}

/* The event for method + path + body in payload format 2.0 (Function URL) or 1.0 (REST). */
static char *event_for(int version, const char *method, const char *path, const char *body)
{
    bn_buf b = {0};
    bn_jw w = {.out = &b};
    bn_jw_obj(&w);
    if (version == 2) {
        bn_jw_key(&w, "version");
        bn_jw_str(&w, "2.0");
        bn_jw_key(&w, "routeKey");
        bn_jw_str(&w, "$default");
        bn_jw_key(&w, "rawPath");
        bn_jw_str(&w, path);
        bn_jw_key(&w, "rawQueryString");
        bn_jw_str(&w, "");
        bn_jw_key(&w, "headers");
        bn_jw_obj(&w);
        bn_jw_key(&w, "content-type");
        bn_jw_str(&w, "application/json");
        bn_jw_end(&w);
        bn_jw_key(&w, "requestContext");
        bn_jw_obj(&w);
        bn_jw_key(&w, "http");
        bn_jw_obj(&w);
        bn_jw_key(&w, "method");
        bn_jw_str(&w, method);
        bn_jw_key(&w, "path");
        bn_jw_str(&w, path);
        bn_jw_end(&w);
        bn_jw_end(&w);
    } else {
        bn_jw_key(&w, "resource");
        bn_jw_str(&w, "/{proxy+}");
        bn_jw_key(&w, "path");
        bn_jw_str(&w, path);
        bn_jw_key(&w, "httpMethod");
        bn_jw_str(&w, method);
        bn_jw_key(&w, "headers");
        bn_jw_obj(&w);
        bn_jw_key(&w, "Content-Type");
        bn_jw_str(&w, "application/json");
        bn_jw_end(&w);
        bn_jw_key(&w, "requestContext");
        bn_jw_obj(&w);
        bn_jw_key(&w, "stage");
        bn_jw_str(&w, "prod");
        bn_jw_end(&w);
    }
    bn_jw_key(&w, "body");
    if (body) {
        /* Function URLs base64-encode bodies; REST passes text */
        if (version == 2) {
            char *b64 = malloc(4 * (strlen(body) / 3) + 8);
            bn_base64_encode(body, strlen(body), b64);
            bn_jw_str(&w, b64);
            free(b64);
        } else {
            bn_jw_str(&w, body);
        }
    } else {
        bn_jw_null(&w);
    }
    bn_jw_key(&w, "isBase64Encoded");
    bn_jw_bool(&w, version == 2 && body);
    bn_jw_end(&w);
    return b.data;
}

static void test_same_answers_on_lambda(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path, *body;
    } reqs[] = {
        {"POST", "/completion",
         "{\"prompt\":\"The capital of France is\",\"n_predict\":12,\"temperature\":0}"},
        {"POST", "/v1/completions",
         "{\"prompt\":\"Once upon\",\"max_tokens\":8,\"temperature\":0,\"logprobs\":2}"},
        {"POST", "/v1/chat/completions",
         "{\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],"
         "\"max_tokens\":8,\"temperature\":0,\"seed\":5}"},
        {"POST", "/tokenize", "{\"content\":\"hello world\"}"},
        {"GET", "/v1/models", NULL},
        {"GET", "/nope", NULL},
        {"POST", "/completion", "{\"prompt\":\"x\",\"top_k\":\"many\"}"},
    };
    enum {
        N = sizeof reqs / sizeof reqs[0]
    };
    bn_srv s;
    start(&s, NULL);
    char *want[N];
    int want_status[N];
    for (int i = 0; i < N; i++) {
        char req[1024];
        size_t bl = reqs[i].body ? strlen(reqs[i].body) : 0;
        int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s",
                         reqs[i].method, reqs[i].path, bl, reqs[i].body ? reqs[i].body : "");
        char *r = bn_http_roundtrip(s.port, req, (size_t)n, 20000, &want_status[i]);
        want[i] = stable_json(bn_http_body(r), strlen(bn_http_body(r)));
        free(r);
    }
    assert_int_equal(bn_srv_stop(&s, 10000), 0);

    for (int version = 1; version <= 2; version++) {
        lam l;
        lambda_start(&l, false);
        for (int i = 0; i < N; i++) {
            char id[32];
            snprintf(id, sizeof id, "v%d-%d", version, i);
            char *ev = event_for(version, reqs[i].method, reqs[i].path, reqs[i].body);
            bn_rs_event e = {.request_id = id, .body = ev};
            bn_rs_queue(l.rs, &e);
            free(ev);
        }
        for (int i = 0; i < N; i++) {
            if (!bn_rs_wait_records(l.rs, (size_t)i + 1, 60000)) {
                char *lg = (char *)bn_test_read_file(l.log, NULL);
                fail_msg("no answer %d from bootstrap; log:\n%s", i, lg ? lg : "");
            }
            const bn_rs_record *r = bn_rs_record_at(l.rs, (size_t)i);
            assert_string_equal(r->kind, "response");
            bn_json_doc *d = parse(r->body, r->len);
            const bn_json *o = bn_json_root(d);
            assert_int_equal(bn_json_get(o, "statusCode")->i64, want_status[i]);
            const bn_json *b = bn_json_get(o, "body");
            char *got = stable_json(b->str, b->len);
            if (strcmp(got, want[i]))
                fail_msg("v%d %s %s:\n lambda %s\n server %s", version, reqs[i].method,
                         reqs[i].path, got, want[i]);
            free(got);
            bn_json_free(d);
        }
        lambda_stop(&l);
    }

    /* SSE through the streamed response (RESPONSE_STREAM Function URL) equals the server's */
    const char *sreq = "{\"prompt\":\"Hello\",\"n_predict\":10,\"temperature\":0,\"stream\":true}";
    start(&s, NULL);
    char req[512];
    int n = snprintf(req, sizeof req, "POST /completion HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(sreq), sreq);
    int st;
    char *r = bn_http_roundtrip(s.port, req, (size_t)n, 20000, &st);
    assert_non_null(strstr(r, "Content-Type: text/event-stream"));
    assert_non_null(strstr(r, "Transfer-Encoding: chunked"));
    /* every event but the last (which carries timings) is identical */
    const char *sb = bn_http_body(r);
    const char *last = strstr(sb, "\"stop\":true");
    assert_non_null(last);
    while (last > sb && strncmp(last, "data: ", 6))
        last--;
    char *server_events = strndup(sb, (size_t)(last - sb));
    free(r);
    assert_int_equal(bn_srv_stop(&s, 10000), 0);
    lam l;
    lambda_start(&l, true);
    char *ev = event_for(2, "POST", "/completion", sreq);
    bn_rs_event e = {.request_id = "sse", .body = ev};
    bn_rs_queue(l.rs, &e);
    free(ev);
    assert_true(bn_rs_wait_records(l.rs, 1, 60000));
    const bn_rs_record *rec = bn_rs_record_at(l.rs, 0);
    assert_true(rec->chunked);
    assert_true(rec->n_chunks >= 3);
    const char *pre = "{\"statusCode\":200,\"headers\":{\"content-type\":\"text/event-stream\"";
    assert_memory_equal(rec->body, pre, strlen(pre));
    const char *lb = memchr(rec->body, 0, rec->len);
    assert_non_null(lb);
    lb += 8;
    assert_memory_equal(lb, server_events, strlen(server_events));
    free(server_events);
    lambda_stop(&l);
    for (int i = 0; i < N; i++)
        free(want[i]);
}

/* BITNET_API_KEY on Lambda: HTTP events need the Bearer key (a public Function URL). */
static void test_lambda_api_key(void **state)
{
    (void)state;
    lam l;
    lambda_start_key(&l, false, "BITNET_API_KEY=lk");
    const char *evs[] = {
        "{\"version\":\"2.0\",\"rawPath\":\"/v1/"
        "models\",\"requestContext\":{\"http\":{\"method\":\"GET\"}}}",
        "{\"version\":\"2.0\",\"rawPath\":\"/v1/models\",\"headers\":{\"authorization\":\"Bearer "
        "nope\"},"
        "\"requestContext\":{\"http\":{\"method\":\"GET\"}}}",
        "{\"version\":\"2.0\",\"rawPath\":\"/v1/models\",\"headers\":{\"authorization\":\"Bearer "
        "lk\"},"
        "\"requestContext\":{\"http\":{\"method\":\"GET\"}}}",
    };
    int want[] = {401, 401, 200};
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "k%d", i);
        bn_rs_event e = {.request_id = id, .body = evs[i]};
        bn_rs_queue(l.rs, &e);
    }
    assert_true(bn_rs_wait_records(l.rs, 3, 60000));
    for (int i = 0; i < 3; i++) {
        const bn_rs_record *r = bn_rs_record_at(l.rs, (size_t)i);
        bn_json_doc *d = parse(r->body, r->len);
        assert_int_equal(bn_json_get(bn_json_root(d), "statusCode")->i64, want[i]);
        bn_json_free(d);
    }
    lambda_stop(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_curl_routes),
        cmocka_unit_test(test_readme_examples),
        cmocka_unit_test(test_transport_limits),
        cmocka_unit_test(test_busy_and_sigterm),
        cmocka_unit_test(test_same_answers_on_lambda),
        cmocka_unit_test(test_lambda_api_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
