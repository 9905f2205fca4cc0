/* The API router in-process (no transport): every route, llama-server's and OpenAI's answer
 * shapes, streaming (pieces concatenate to the buffered text, OpenAI ends with [DONE]),
 * logprobs against a softmax of the logits the engine produced, and every error row (400
 * naming the field, 401, 404, 405, 413, engine errors mapped by code). Expected texts come
 * from bn_generate called directly with the same settings. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "bitnet.h"
#include "json.h"
#include "synthetic_model.h"

static char *model_path;
static bn_engine *engine;
static bn_session *session;

static int setup(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_synth_params p;
    model_path = bn_test_tmpfile(".gguf");
    if (bn_synth_preset("tiny", &p, &err) || bn_synth_write(&p, model_path, &err))
        return -1;
    engine = bn_engine_open(model_path, NULL, &err);
    bn_session_params sp = {.n_threads = 1, .n_ctx = 256};
    session = engine ? bn_session_create(engine, &sp, &err) : NULL;
    return session ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    bn_session_free(session);
    bn_engine_free(engine);
    unlink(model_path);
    free(model_path);
    return 0;
}

/* ------------------------------------------------------------------ a capturing sink */
typedef struct answer {
    int status, begins, writes;
    char ctype[64];
    bn_buf body;
    int err_status;
    bn_err_code err_code;
    char err_type[64];
} answer;

static int cap_begin(void *u, int status, const char *ctype)
{
    answer *a = u;
    a->status = status;
    a->begins++;
    snprintf(a->ctype, sizeof a->ctype, "%s", ctype);
    return 0;
}

static int cap_write(void *u, const char *d, size_t n)
{
    answer *a = u;
    a->writes++;
    bn_buf_append(&a->body, d, n);
    return 0;
}

static bn_api make_api(void)
{
    return (bn_api){.engine = engine, .session = session, .model = "tiny", .n_predict = 16};
}

static answer call(const bn_api *api, const char *method, const char *path, const char *body,
                   const char *auth)
{
    answer a = {0};
    bn_api_sink sink = {.begin = cap_begin, .write = cap_write, .user = &a};
    bn_api_request req = {.method = method,
                          .path = path,
                          .authorization = auth,
                          .body = body,
                          .len = body ? strlen(body) : 0};
    int st = bn_api_handle(api, &req, &sink);
    assert_int_equal(st, a.status);
    assert_int_equal(a.begins, 1);
    return a;
}

static bn_json_doc *parse(const char *s, size_t n)
{
    bn_err err = {0};
    bn_json_doc *d = bn_json_parse(s, n, NULL, &err);
    if (!d)
        fail_msg("not JSON (%s): %.300s", err.msg, s);
    return d;
}

static const bn_json *path_get(const bn_json *v, const char *a, const char *b)
{
    v = bn_json_get(v, a);
    return b ? bn_json_get(v, b) : v;
}

/* Greedy text from bn_generate itself (the JSON writer's U+FFFD replacement applied). */
static char *expected(const char *prompt, const bn_chat_msg *m, size_t nm, int n, uint32_t *ntok)
{
    bn_err err = {0};
    bn_generate_params g = bn_generate_default();
    g.prompt = prompt;
    g.parse_special = true;
    g.messages = m;
    g.n_messages = nm;
    g.n_predict = n;
    g.sampling.temp = 0;
    bn_stats st;
    if (bn_generate(session, &g, &st, &err))
        fail_msg("%s", err.msg);
    size_t len;
    const char *t = bn_session_output_text(session, &len);
    bn_buf b = {0};
    bn_buf_puts(&b, "\"");
    bn_json_escape(&b, t, len);
    bn_buf_puts(&b, "\"");
    bn_json_doc *d = parse(b.data, b.len);
    char *r = strdup(bn_json_root(d)->str);
    bn_json_free(d);
    bn_buf_free(&b);
    if (ntok)
        *ntok = st.gen_tokens;
    return r;
}

static void expect_error(answer *a, int status, const char *needle)
{
    if (a->status != status)
        fail_msg("status %d, expected %d: %s", a->status, status, a->body.data);
    assert_string_equal(a->ctype, "application/json");
    bn_json_doc *d = parse(a->body.data, a->body.len);
    const bn_json *e = bn_json_get(bn_json_root(d), "error");
    assert_non_null(e);
    const bn_json *m = bn_json_get(e, "message"), *t = bn_json_get(e, "type"),
                  *c = bn_json_get(e, "code");
    assert_true(m && m->type == BN_JSON_STRING && t && t->type == BN_JSON_STRING);
    assert_true(c && c->is_int && c->i64 == status);
    if (needle && !strstr(m->str, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", m->str, needle);
    bn_json_free(d);
    bn_buf_free(&a->body);
}

/* ------------------------------------------------------------------ tests */
static void test_llama_completion(void **state)
{
    (void)state;
    uint32_t ntok;
    char *want = expected("Hello world", NULL, 0, 12, &ntok);
    bn_api api = make_api();
    answer a = call(&api, "POST", "/completion",
                    "{\"prompt\":\"Hello world\",\"n_predict\":12,\"temperature\":0,\"top_p\":0.9,"
                    "\"top_k\":40,\"repeat_penalty\":1.0,\"cache_prompt\":true}",
                    NULL);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.ctype, "application/json");
    bn_json_doc *d = parse(a.body.data, a.body.len);
    const bn_json *r = bn_json_root(d);
    assert_string_equal(bn_json_get(r, "content")->str, want);
    assert_int_equal(bn_json_get(r, "tokens_predicted")->i64, ntok);
    assert_true(bn_json_get(r, "tokens_evaluated")->i64 > 0);
    assert_true(bn_json_get(r, "stop")->boolean);
    const char *bools[] = {"stopped_eos", "stopped_word", "stopped_limit", "truncated"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(bn_json_get(r, bools[i])->type, BN_JSON_BOOL);
    assert_true(bn_json_get(r, "stopped_limit")->boolean == (ntok == 12));
    assert_string_equal(bn_json_get(r, "stopping_word")->str, "");
    assert_string_equal(bn_json_get(r, "model")->str, "tiny");
    assert_true(path_get(r, "generation_settings", "temperature")->num == 0.0);
    assert_int_equal(path_get(r, "generation_settings", "n_predict")->i64, 12);
    const char *tk[] = {"prompt_n",    "prompt_ms",    "prompt_per_second",
                        "predicted_n", "predicted_ms", "predicted_per_second"};
    for (int i = 0; i < 6; i++)
        assert_int_equal(path_get(r, "timings", tk[i])->type, BN_JSON_NUMBER);
    assert_int_equal(path_get(r, "timings", "predicted_n")->i64, ntok);
    bn_json_free(d);
    bn_buf_free(&a.body);

    /* /completions is the same route; token ids as the prompt give the same text as the
     * tokenized string (BOS included, as the engine tokenizes) */
    int32_t *ids;
    size_t n;
    bn_err err = {0};
    assert_int_equal(bn_engine_tokenize(engine, "Hello world", 11, true, true, &ids, &n, &err), 0);
    bn_buf req = {0};
    bn_buf_puts(&req, "{\"prompt\":[");
    for (size_t i = 0; i < n; i++)
        bn_buf_printf(&req, "%s%d", i ? "," : "", ids[i]);
    bn_buf_puts(&req, "],\"n_predict\":12,\"temperature\":0}");
    free(ids);
    a = call(&api, "POST", "/completions", req.data, NULL);
    bn_buf_free(&req);
    d = parse(a.body.data, a.body.len);
    assert_string_equal(bn_json_get(bn_json_root(d), "content")->str, want);
    bn_json_free(d);
    bn_buf_free(&a.body);
    free(want);
}

static void test_stop_word(void **state)
{
    (void)state;
    char *full = expected("Hello world", NULL, 0, 12, NULL);
    /* a stop string taken from the middle of the greedy text cuts it there */
    size_t cut = strlen(full) / 2;
    while (cut > 0 && ((unsigned char)full[cut] & 0xC0) == 0x80)
        cut--;
    char word[8] = {0};
    size_t wl = 0;
    while (wl < 3 && full[cut + wl] && ((unsigned char)full[cut + wl] & 0x80) == 0)
        wl++;
    if (wl == 0)
        skip();
    memcpy(word, full + cut, wl);
    bn_buf req = {0};
    bn_jw w = {.out = &req};
    bn_jw_obj(&w);
    bn_jw_key(&w, "prompt");
    bn_jw_str(&w, "Hello world");
    bn_jw_key(&w, "n_predict");
    bn_jw_int(&w, 12);
    bn_jw_key(&w, "temperature");
    bn_jw_int(&w, 0);
    bn_jw_key(&w, "stop");
    bn_jw_arr(&w);
    bn_jw_str(&w, word);
    bn_jw_end(&w);
    bn_jw_end(&w);
    bn_api api = make_api();
    answer a = call(&api, "POST", "/completion", req.data, NULL);
    bn_json_doc *d = parse(a.body.data, a.body.len);
    const bn_json *r = bn_json_root(d);
    const char *content = bn_json_get(r, "content")->str;
    assert_non_null(strstr(full, content));
    assert_null(strstr(content, word));
    assert_true(bn_json_get(r, "stopped_word")->boolean);
    assert_false(bn_json_get(r, "stopped_limit")->boolean);
    assert_string_equal(bn_json_get(r, "stopping_word")->str, word);
    bn_json_free(d);
    bn_buf_free(&a.body);
    bn_buf_free(&req);
    free(full);
}

static void test_openai_shapes(void **state)
{
    (void)state;
    bn_api api = make_api();
    uint32_t ntok;
    char *want = expected("Once upon", NULL, 0, 10, &ntok);
    answer a = call(&api, "POST", "/v1/completions",
                    "{\"model\":\"x\",\"prompt\":\"Once upon\",\"max_tokens\":10,\"temperature\":0,"
                    "\"n\":1,\"stream\":false,\"logprobs\":null,\"echo\":false}",
                    NULL);
    assert_int_equal(a.status, 200);
    bn_json_doc *d = parse(a.body.data, a.body.len);
    const bn_json *r = bn_json_root(d);
    assert_string_equal(bn_json_get(r, "object")->str, "text_completion");
    assert_int_equal(strncmp(bn_json_get(r, "id")->str, "cmpl-", 5), 0);
    assert_true(bn_json_get(r, "created")->is_int);
    const bn_json *c0 = bn_json_at(bn_json_get(r, "choices"), 0);
    assert_string_equal(bn_json_get(c0, "text")->str, want);
    assert_string_equal(bn_json_get(c0, "finish_reason")->str, ntok == 10 ? "length" : "stop");
    assert_int_equal(path_get(r, "usage", "completion_tokens")->i64, ntok);
    assert_int_equal(path_get(r, "usage", "total_tokens")->i64,
                     path_get(r, "usage", "prompt_tokens")->i64 + ntok);
    bn_json_free(d);
    bn_buf_free(&a.body);
    free(want);

    bn_chat_msg msgs[] = {{"system", "You are terse."}, {"user", "Name a color."}};
    want = expected(NULL, msgs, 2, 10, &ntok);
    const char *paths[] = {"/v1/chat/completions", "/chat/completions"};
    for (int i = 0; i < 2; i++) {
        a = call(
            &api, "POST", paths[i],
            "{\"model\":\"tiny\",\"messages\":[{\"role\":\"system\",\"content\":\"You are "
            "terse.\"},"
            "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Name a color.\"}]}],"
            "\"max_completion_tokens\":10,\"temperature\":0,\"seed\":3}",
            NULL);
        assert_int_equal(a.status, 200);
        d = parse(a.body.data, a.body.len);
        r = bn_json_root(d);
        assert_string_equal(bn_json_get(r, "object")->str, "chat.completion");
        assert_int_equal(strncmp(bn_json_get(r, "id")->str, "chatcmpl-", 9), 0);
        assert_string_equal(bn_json_get(r, "model")->str, "tiny");
        c0 = bn_json_at(bn_json_get(r, "choices"), 0);
        assert_string_equal(path_get(c0, "message", "role")->str, "assistant");
        assert_string_equal(path_get(c0, "message", "content")->str, want);
        assert_string_equal(bn_json_get(c0, "finish_reason")->str, ntok == 10 ? "length" : "stop");
        assert_int_equal(path_get(r, "usage", "completion_tokens")->i64, ntok);
        bn_json_free(d);
        bn_buf_free(&a.body);
    }
    free(want);
}

/* Splits an SSE body into its events' data; checks the framing. Returns the count. */
static size_t sse_events(const char *body, char **data, size_t max)
{
    size_t n = 0;
    const char *p = body;
    while (*p) {
        assert_int_equal(strncmp(p, "data: ", 6), 0);
        const char *e = strstr(p, "\n\n");
        assert_non_null(e);
        assert_true(n < max);
        data[n++] = strndup(p + 6, (size_t)(e - p - 6));
        p = e + 2;
    }
    return n;
}

static void test_streaming(void **state)
{
    (void)state;
    bn_api api = make_api();
    uint32_t ntok;
    char *want = expected("Hello world", NULL, 0, 12, &ntok);
    char *ev[64];

    /* llama-server: {"content", "stop": false} per piece, then the final object */
    answer a = call(
        &api, "POST", "/completion",
        "{\"prompt\":\"Hello world\",\"n_predict\":12,\"temperature\":0,\"stream\":true}", NULL);
    assert_string_equal(a.ctype, "text/event-stream");
    size_t n = sse_events(a.body.data, ev, 64);
    assert_true(n >= 2);
    assert_int_equal(a.writes, (int)n); /* one write per event: each leaves at once */
    bn_buf cat = {0};
    for (size_t i = 0; i < n; i++) {
        bn_json_doc *d = parse(ev[i], strlen(ev[i]));
        const bn_json *r = bn_json_root(d);
        bool last = i + 1 == n;
        assert_true(bn_json_get(r, "stop")->boolean == last);
        if (!last) {
            const bn_json *c = bn_json_get(r, "content");
            assert_true(c->len > 0);
            bn_buf_append(&cat, c->str, c->len);
        } else {
            assert_string_equal(bn_json_get(r, "content")->str, "");
            assert_int_equal(bn_json_get(r, "tokens_predicted")->i64, ntok);
            assert_non_null(path_get(r, "timings", "predicted_per_second"));
        }
        bn_json_free(d);
        free(ev[i]);
    }
    assert_string_equal(cat.data, want);
    bn_buf_free(&cat);
    bn_buf_free(&a.body);

    /* OpenAI chat: role first, delta.content pieces, the finish chunk, usage, [DONE] */
    bn_chat_msg msgs[] = {{"user", "Hello"}};
    free(want);
    want = expected(NULL, msgs, 1, 8, &ntok);
    a = call(&api, "POST", "/v1/chat/completions",
             "{\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"max_tokens\":8,"
             "\"temperature\":0,\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
             NULL);
    n = sse_events(a.body.data, ev, 64);
    assert_true(n >= 4);
    assert_string_equal(ev[n - 1], "[DONE]");
    for (size_t i = 0; i + 1 < n; i++) {
        bn_json_doc *d = parse(ev[i], strlen(ev[i]));
        const bn_json *r = bn_json_root(d);
        assert_string_equal(bn_json_get(r, "object")->str, "chat.completion.chunk");
        const bn_json *ch = bn_json_get(r, "choices");
        if (i == n - 2) { /* usage chunk */
            assert_int_equal(ch->len, 0);
            assert_int_equal(path_get(r, "usage", "completion_tokens")->i64, ntok);
        } else {
            const bn_json *c0 = bn_json_at(ch, 0), *delta = bn_json_get(c0, "delta");
            const bn_json *fr = bn_json_get(c0, "finish_reason");
            assert_true((bn_json_get(delta, "role") != NULL) == (i == 0));
            if (i == n - 3)
                assert_string_equal(fr->str, ntok == 8 ? "length" : "stop");
            else
                assert_int_equal(fr->type, BN_JSON_NULL);
            const bn_json *c = bn_json_get(delta, "content");
            if (c)
                bn_buf_append(&cat, c->str, c->len);
        }
        bn_json_free(d);
    }
    for (size_t i = 0; i < n; i++)
        free(ev[i]);
    assert_string_equal(cat.data ? cat.data : "", want);
    bn_buf_free(&cat);
    bn_buf_free(&a.body);
    free(want);

    /* OpenAI completions stream: text pieces, finish chunk, [DONE] (no usage unless asked) */
    want = expected("Hello world", NULL, 0, 12, &ntok);
    a = call(&api, "POST", "/v1/completions",
             "{\"prompt\":\"Hello world\",\"max_tokens\":12,\"temperature\":0,\"stream\":true}",
             NULL);
    n = sse_events(a.body.data, ev, 64);
    assert_string_equal(ev[n - 1], "[DONE]");
    for (size_t i = 0; i + 1 < n; i++) {
        bn_json_doc *d = parse(ev[i], strlen(ev[i]));
        const bn_json *c0 = bn_json_at(bn_json_get(bn_json_root(d), "choices"), 0);
        assert_non_null(c0);
        const bn_json *t = bn_json_get(c0, "text");
        bn_buf_append(&cat, t->str, t->len);
        assert_true((bn_json_get(c0, "finish_reason")->type == BN_JSON_STRING) == (i == n - 2));
        bn_json_free(d);
    }
    for (size_t i = 0; i < n; i++)
        free(ev[i]);
    assert_string_equal(cat.data, want);
    bn_buf_free(&cat);
    bn_buf_free(&a.body);
    free(want);
}

/* Logits of every position, for the logprob check. */
typedef struct logit_rows {
    float *rows;
    size_t n, cap;
    uint32_t n_vocab;
} logit_rows;

static int keep_logits(void *u, const float *l, uint32_t nv)
{
    logit_rows *r = u;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->rows = realloc(r->rows, r->cap * nv * sizeof *r->rows);
    }
    memcpy(r->rows + r->n * nv, l, nv * sizeof *l);
    r->n++;
    r->n_vocab = nv;
    return 0;
}

static void test_logprobs(void **state)
{
    (void)state;
    /* the logits of each generated position, from the engine itself */
    bn_err err = {0};
    logit_rows lr = {0};
    bn_generate_params g = bn_generate_default();
    bn_chat_msg msgs[] = {{"user", "Hello"}};
    g.messages = msgs;
    g.n_messages = 1;
    g.n_predict = 4;
    g.sampling.temp = 0;
    g.on_logits = keep_logits;
    g.user = &lr;
    bn_stats st;
    assert_int_equal(bn_generate(session, &g, &st, &err), 0);
    size_t nout;
    const int32_t *out = bn_session_output_ids(session, &nout);
    int32_t ids[8];
    memcpy(ids, out, nout * sizeof *ids);
    size_t first = st.prompt_tokens - 1; /* row of the last prompt position */

    bn_api api = make_api();
    answer a = call(&api, "POST", "/v1/chat/completions",
                    "{\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"max_tokens\":4,"
                    "\"temperature\":0,\"logprobs\":true,\"top_logprobs\":3}",
                    NULL);
    bn_json_doc *d = parse(a.body.data, a.body.len);
    const bn_json *c0 = bn_json_at(bn_json_get(bn_json_root(d), "choices"), 0);
    const bn_json *content = path_get(c0, "logprobs", "content");
    assert_int_equal(content->len, nout);
    for (size_t i = 0; i < nout; i++) {
        const float *l = lr.rows + (first + i) * lr.n_vocab;
        double mx = -INFINITY, tot = 0;
        for (uint32_t v = 0; v < lr.n_vocab; v++)
            mx = l[v] > mx ? l[v] : mx;
        for (uint32_t v = 0; v < lr.n_vocab; v++)
            tot += exp(l[v] - mx);
        const bn_json *e = bn_json_at(content, i);
        double want = l[ids[i]] - mx - log(tot);
        assert_float_equal(bn_json_get(e, "logprob")->num, want, 1e-5);
        const bn_json *top = bn_json_get(e, "top_logprobs");
        assert_int_equal(top->len, 3);
        /* greedy: the chosen token is the most likely one */
        assert_float_equal(bn_json_get(bn_json_at(top, 0), "logprob")->num, want, 1e-9);
        assert_true(bn_json_get(bn_json_at(top, 1), "logprob")->num <= want);
        assert_true(bn_json_get(bn_json_at(top, 2), "logprob")->num <=
                    bn_json_get(bn_json_at(top, 1), "logprob")->num);
        assert_int_equal(bn_json_get(e, "token")->type, BN_JSON_STRING);
        assert_int_equal(bn_json_get(e, "bytes")->type, BN_JSON_ARRAY);
    }
    bn_json_free(d);
    bn_buf_free(&a.body);

    /* llama-server's n_probs: completion_probabilities with ids */
    a = call(&api, "POST", "/completion",
             "{\"prompt\":\"Hello\",\"n_predict\":3,\"temperature\":0,\"n_probs\":2}", NULL);
    d = parse(a.body.data, a.body.len);
    const bn_json *cp = bn_json_get(bn_json_root(d), "completion_probabilities");
    assert_int_equal(cp->len, 3);
    const bn_json *e0 = bn_json_at(cp, 0);
    assert_true(bn_json_get(e0, "id")->is_int);
    assert_true(bn_json_get(e0, "logprob")->num <= 0.0);
    assert_int_equal(bn_json_get(e0, "top_logprobs")->len, 2);
    bn_json_free(d);
    bn_buf_free(&a.body);

    /* OpenAI completions: logprobs is the count */
    a = call(&api, "POST", "/v1/completions",
             "{\"prompt\":\"Hello\",\"max_tokens\":3,\"temperature\":0,\"logprobs\":2}", NULL);
    d = parse(a.body.data, a.body.len);
    const bn_json *lp = bn_json_get(bn_json_at(bn_json_get(bn_json_root(d), "choices"), 0),
                                    "logprobs");
    assert_int_equal(bn_json_get(lp, "tokens")->len, 3);
    assert_int_equal(bn_json_get(lp, "token_logprobs")->len, 3);
    assert_int_equal(bn_json_at(bn_json_get(lp, "top_logprobs"), 0)->type, BN_JSON_OBJECT);
    assert_int_equal(bn_json_at(bn_json_get(lp, "text_offset"), 0)->i64, 0);
    bn_json_free(d);
    bn_buf_free(&a.body);
    free(lr.rows);
}

static void test_penalties_pass_through(void **state)
{
    (void)state;
    bn_api api = make_api();
    answer a = call(&api, "POST", "/completion",
                    "{\"prompt\":\"Hello\",\"n_predict\":2,\"presence_penalty\":0.5,"
                    "\"frequency_penalty\":-0.25,\"repeat_last_n\":16,\"min_p\":0.1,\"seed\":42}",
                    NULL);
    bn_json_doc *d = parse(a.body.data, a.body.len);
    const bn_json *gs = bn_json_get(bn_json_root(d), "generation_settings");
    assert_true(bn_json_get(gs, "presence_penalty")->num == 0.5);
    assert_true(bn_json_get(gs, "frequency_penalty")->num == -0.25);
    assert_int_equal(bn_json_get(gs, "repeat_last_n")->i64, 16);
    assert_int_equal(bn_json_get(gs, "seed")->i64, 42);
    bn_json_free(d);
    bn_buf_free(&a.body);
}

static void test_other_routes(void **state)
{
    (void)state;
    bn_api api = make_api();
    answer a = call(&api, "GET", "/health", NULL, NULL);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body.data, "{\"status\":\"ok\"}");
    bn_buf_free(&a.body);

    const char *mp[] = {"/v1/models", "/models"};
    for (int i = 0; i < 2; i++) {
        a = call(&api, "GET", mp[i], NULL, NULL);
        bn_json_doc *d = parse(a.body.data, a.body.len);
        assert_string_equal(bn_json_get(bn_json_root(d), "object")->str, "list");
        assert_string_equal(
            bn_json_get(bn_json_at(bn_json_get(bn_json_root(d), "data"), 0), "id")->str, "tiny");
        bn_json_free(d);
        bn_buf_free(&a.body);
    }
    a = call(&api, "GET", "/props?x=1", NULL, NULL);
    bn_json_doc *d = parse(a.body.data, a.body.len);
    assert_int_equal(path_get(bn_json_root(d), "default_generation_settings", "n_ctx")->i64, 256);
    assert_int_equal(bn_json_get(bn_json_root(d), "total_slots")->i64, 1);
    bn_json_free(d);
    bn_buf_free(&a.body);

    /* tokenize -> detokenize round trip, against the engine's own tokenizer */
    int32_t *ids;
    size_t n;
    bn_err err = {0};
    assert_int_equal(bn_engine_tokenize(engine, "the quick fox", 13, false, false, &ids, &n, &err),
                     0);
    a = call(&api, "POST", "/tokenize", "{\"content\":\"the quick fox\"}", NULL);
    d = parse(a.body.data, a.body.len);
    const bn_json *t = bn_json_get(bn_json_root(d), "tokens");
    assert_int_equal(t->len, n);
    bn_buf req = {0};
    bn_buf_puts(&req, "{\"tokens\":[");
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(bn_json_at(t, i)->i64, ids[i]);
        bn_buf_printf(&req, "%s%d", i ? "," : "", ids[i]);
    }
    bn_buf_puts(&req, "]}");
    bn_json_free(d);
    bn_buf_free(&a.body);
    a = call(&api, "POST", "/tokenize",
             "{\"content\":\"the quick fox\",\"add_special\":true,\"with_pieces\":true}", NULL);
    d = parse(a.body.data, a.body.len);
    t = bn_json_get(bn_json_root(d), "tokens");
    assert_int_equal(t->len, n + 1); /* BOS */
    assert_int_equal(bn_json_get(bn_json_at(t, 1), "id")->i64, ids[0]);
    assert_int_equal(bn_json_get(bn_json_at(t, 1), "piece")->type, BN_JSON_STRING);
    bn_json_free(d);
    bn_buf_free(&a.body);
    free(ids);
    a = call(&api, "POST", "/detokenize", req.data, NULL);
    d = parse(a.body.data, a.body.len);
    assert_string_equal(bn_json_get(bn_json_root(d), "content")->str, "the quick fox");
    bn_json_free(d);
    bn_buf_free(&a.body);
    bn_buf_free(&req);
}

static void test_errors(void **state)
{
    (void)state;
    bn_api api = make_api();
    answer a;
    a = call(&api, "POST", "/completion", "{\"prompt\":\"x\",\"temperature\":\"hot\"}", NULL);
    expect_error(&a, 400, "\"temperature\"");
    a = call(&api, "POST", "/completion", "{\"prompt\":\"x\",\"top_p\":1.5}", NULL);
    expect_error(&a, 400, "\"top_p\"");
    a = call(&api, "POST", "/completion", "{\"prompt\":\"x\",\"n_predit\":5}", NULL);
    expect_error(&a, 400, "\"n_predit\"");
    a = call(&api, "POST", "/completion", "{\"n_predict\":5}", NULL);
    expect_error(&a, 400, "\"prompt\"");
    a = call(&api, "POST", "/completion", "{\"prompt\":[1,-2]}", NULL);
    expect_error(&a, 400, "prompt[1]");
    a = call(&api, "POST", "/completion", "{\"prompt\":\"x\",\"presence_penalty\":3}", NULL);
    expect_error(&a, 400, "\"presence_penalty\"");
    a = call(&api, "POST", "/v1/chat/completions",
             "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}", NULL);
    expect_error(&a, 400, "\"n\"");
    a = call(&api, "POST", "/v1/chat/completions",
             "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", NULL);
    expect_error(&a, 400, "messages[0].role");
    a = call(&api, "POST", "/v1/chat/completions", "{\"messages\":[]}", NULL);
    expect_error(&a, 400, "\"messages\"");
    a = call(&api, "POST", "/v1/chat/completions",
             "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":30,"
             "\"logprobs\":true}",
             NULL);
    expect_error(&a, 400, "\"top_logprobs\"");
    a = call(&api, "POST", "/v1/chat/completions",
             "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[\"a\",3]}", NULL);
    expect_error(&a, 400, "stop[1]");
    a = call(&api, "POST", "/completion", "{\"prompt\":\"x\",", NULL);
    expect_error(&a, 400, "invalid JSON");
    a = call(&api, "POST", "/completion", "[1]", NULL);
    expect_error(&a, 400, "JSON object");
    a = call(&api, "POST", "/detokenize", "{\"tokens\":[99999999]}", NULL);
    expect_error(&a, 400, NULL);
    /* an engine error, mapped by its code: a prompt longer than the context (256) */
    bn_buf big = {0};
    bn_buf_puts(&big, "{\"prompt\":\"");
    for (int i = 0; i < 400; i++)
        bn_buf_puts(&big, "word ");
    bn_buf_puts(&big, "\"}");
    a = call(&api, "POST", "/completion", big.data, NULL);
    expect_error(&a, 400, "context");
    bn_buf_free(&big);

    a = call(&api, "GET", "/nowhere", NULL, NULL);
    expect_error(&a, 404, "/nowhere");
    a = call(&api, "GET", "/v1/chat/completions", NULL, NULL);
    expect_error(&a, 405, "POST");
    a = call(&api, "DELETE", "/health", NULL, NULL);
    expect_error(&a, 405, NULL);

    api.max_body = 64;
    a = call(&api, "POST", "/completion",
             "{\"prompt\":\"this body is longer than sixty-four bytes, so it is refused\"}", NULL);
    expect_error(&a, 413, "limit");
    api.max_body = 0;

    /* API key: Bearer, compared whole; /health stays open */
    api.api_key = "s3cret";
    a = call(&api, "GET", "/v1/models", NULL, NULL);
    expect_error(&a, 401, "API key");
    a = call(&api, "GET", "/v1/models", NULL, "Bearer s3cre");
    expect_error(&a, 401, NULL);
    a = call(&api, "GET", "/v1/models", NULL, "Bearer s3cret2");
    expect_error(&a, 401, NULL);
    a = call(&api, "GET", "/v1/models", NULL, "Basic s3cret");
    expect_error(&a, 401, NULL);
    a = call(&api, "GET", "/v1/models", NULL, "Bearer s3cret");
    assert_int_equal(a.status, 200);
    bn_buf_free(&a.body);
    a = call(&api, "GET", "/health", NULL, NULL);
    assert_int_equal(a.status, 200);
    bn_buf_free(&a.body);
}

/* The Lambda direct invoke reports errors through sink.error instead of a body. */
static int never_begin(void *u, int s, const char *c)
{
    fail_msg("begin called");
    return -1;
}
static int never_write(void *u, const char *d, size_t n)
{
    fail_msg("write called");
    return -1;
}
static void cap_error(void *u, int status, const char *type, bn_err_code code, const char *msg)
{
    answer *a = u;
    a->err_status = status;
    a->err_code = code;
    snprintf(a->err_type, sizeof a->err_type, "%s", type);
    bn_buf_puts(&a->body, msg);
}

static void test_error_hook(void **state)
{
    (void)state;
    bn_api api = make_api();
    answer a = {0};
    bn_api_sink sink = {.begin = never_begin, .write = never_write, .error = cap_error, .user = &a};
    const char *body = "{\"prompt\":\"x\",\"top_k\":\"many\"}";
    bn_api_request req = {
        .method = "POST", .path = "/completion", .body = body, .len = strlen(body)};
    assert_int_equal(bn_api_handle(&api, &req, &sink), 400);
    assert_int_equal(a.err_status, 400);
    assert_string_equal(a.err_type, "invalid_request_error");
    assert_int_equal(a.err_code, BN_E_INPUT);
    assert_non_null(strstr(a.body.data, "\"top_k\""));
    bn_buf_free(&a.body);
    assert_true(bn_api_is_generation("POST", "/v1/chat/completions"));
    assert_true(bn_api_is_generation("POST", "/completion?x"));
    assert_false(bn_api_is_generation("POST", "/tokenize"));
    assert_false(bn_api_is_generation("GET", "/completion"));
    assert_int_equal(bn_api_status_for(BN_E_CONTEXT_FULL), 400);
    assert_int_equal(bn_api_status_for(BN_E_INPUT), 400);
    assert_int_equal(bn_api_status_for(BN_E_NOMEM), 500);
}

/* A tick that says stop ends the answer early with finish_reason "length". */
static int stop_now(void *u)
{
    int *n = u;
    return ++*n >= 2;
}

static void test_tick_stops(void **state)
{
    (void)state;
    bn_api api = make_api();
    answer a = {0};
    int ticks = 0;
    bn_api_sink sink = {.begin = cap_begin, .write = cap_write, .user = &a};
    const char *body = "{\"prompt\":\"Hello\",\"max_tokens\":50,\"temperature\":0}";
    bn_api_request req = {.method = "POST",
                          .path = "/v1/completions",
                          .body = body,
                          .len = strlen(body),
                          .tick = stop_now,
                          .tick_user = &ticks};
    assert_int_equal(bn_api_handle(&api, &req, &sink), 200);
    bn_json_doc *d = parse(a.body.data, a.body.len);
    const bn_json *r = bn_json_root(d);
    assert_int_equal(path_get(r, "usage", "completion_tokens")->i64, 2);
    assert_string_equal(bn_json_get(bn_json_at(bn_json_get(r, "choices"), 0), "finish_reason")->str,
                        "length");
    bn_json_free(d);
    bn_buf_free(&a.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_completion), cmocka_unit_test(test_stop_word),
        cmocka_unit_test(test_openai_shapes),    cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_logprobs),         cmocka_unit_test(test_penalties_pass_through),
        cmocka_unit_test(test_other_routes),     cmocka_unit_test(test_errors),
        cmocka_unit_test(test_error_hook),       cmocka_unit_test(test_tick_stops),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
