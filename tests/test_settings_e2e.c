/* Every sampling setting, end to end, through every entry point.
 *
 * For each setting (temperature, top-k, top-p, min-p, repeat penalty, penalty window, seed,
 * stop, n_predict) a case gives two requests that differ in that setting only, on a prompt and
 * base settings chosen so that the change must show in the tokens. For each entry point the
 * test asserts that
 *   1. both answers equal a direct library call (bn_generate) with the same settings, and
 *   2. the two answers differ,
 * so a setting dropped anywhere between a flag / an event field and the sampler fails here.
 *
 * Entry points are rows of ENTRY_POINTS: bitnet-run (--json: ids and text), the real
 * bin/bootstrap against the in-repo Runtime API server (one direct-invoke event per request,
 * answered with llama-server's completion object: content, tokens_predicted, stop_type), the
 * HTTP router's POST /completion (the route bitnet-server and Lambda's HTTP events serve), and
 * the library itself. Stop reasons are compared in llama-server's three kinds (limit, word,
 * eos), the finest every entry point reports. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "bitnet.h"
#include "json.h"
#include "runtime_server.h"
#include "synthetic_model.h"
#include "testutil.h"

/* One request's settings, as every entry point can express them. */
typedef struct settings {
    float temp;
    int32_t top_k;
    float top_p, min_p, repeat_penalty, presence_penalty, frequency_penalty;
    int32_t repeat_last_n;
    uint64_t seed;
    const char *stop; /* NULL: none */
    int32_t n_predict;
} settings;

/* What an entry point answered. ids: NULL when it does not report them (Lambda). text is as
 * the entry point shows it: JSON strings carry invalid UTF-8 as U+FFFD, so every answer's text
 * is compared after that replacement. */
typedef struct answer {
    int32_t *ids;
    size_t n_ids;
    long n_tokens;
    char *text;
    char stop_reason[32];
} answer;

typedef struct entry_point {
    const char *name;
    const char *unsupported; /* settings it has no way to express, comma-separated */
    void (*ask)(const settings *s, answer *a);
} entry_point;

typedef struct setting_case {
    const char *name;
    settings base, changed;
} setting_case;

static char *model_path;
static bn_engine *engine;
static bn_session *session;
static bn_rs *rs;
static pid_t bootstrap_pid;
static char *bootstrap_log;
static int n_events;

/* Repetitive, so that greedy decoding of the random model meets tokens of the prompt. */
static const char PROMPT[] = "the cat sat on the mat and the cat sat on the mat and the dog";

static void answer_free(answer *a)
{
    free(a->ids);
    free(a->text);
    memset(a, 0, sizeof *a);
}

/* raw bytes -> the string a JSON writer would produce (invalid UTF-8 -> U+FFFD). */
static char *as_json_text(const char *raw, size_t len)
{
    bn_buf b = {0};
    bn_buf_puts(&b, "\"");
    bn_json_escape(&b, raw, len);
    bn_buf_puts(&b, "\"");
    bn_err err = {0};
    bn_json_doc *d = bn_json_parse(b.data, b.len, NULL, &err);
    if (!d)
        fail_msg("escaped text is not JSON: %s", err.msg);
    char *t = strdup(bn_json_root(d)->str);
    bn_json_free(d);
    bn_buf_free(&b);
    return t;
}

/* A stop reason as llama-server reports it: "limit", "word" or "eos". */
static const char *stop_kind(const char *reason)
{
    if (!strcmp(reason, "stop_string") || !strcmp(reason, "word"))
        return "word";
    if (!strcmp(reason, "eos") || !strcmp(reason, "eot"))
        return "eos";
    return "limit"; /* length, context_full, limit */
}

/* ------------------------------------------------------------------ library */
static void ask_library(const settings *s, answer *a)
{
    bn_generate_params g = bn_generate_default();
    g.prompt = PROMPT;
    g.n_predict = s->n_predict;
    g.sampling.temp = s->temp;
    g.sampling.top_k = s->top_k;
    g.sampling.top_p = s->top_p;
    g.sampling.min_p = s->min_p;
    g.sampling.repeat_penalty = s->repeat_penalty;
    g.sampling.repeat_last_n = s->repeat_last_n;
    g.sampling.presence_penalty = s->presence_penalty;
    g.sampling.frequency_penalty = s->frequency_penalty;
    g.sampling.seed = s->seed;
    g.stop = &s->stop;
    g.n_stop = s->stop ? 1 : 0;
    bn_stats st;
    bn_err err = {0};
    if (bn_generate(session, &g, &st, &err))
        fail_msg("bn_generate: %s", err.msg);
    size_t n = 0, len = 0;
    const int32_t *ids = bn_session_output_ids(session, &n);
    a->ids = malloc((n + 1) * sizeof *a->ids);
    memcpy(a->ids, ids, n * sizeof *ids);
    a->n_ids = n;
    a->n_tokens = (long)st.gen_tokens;
    const char *text = bn_session_output_text(session, &len);
    a->text = as_json_text(text, len);
    snprintf(a->stop_reason, sizeof a->stop_reason, "%s",
             stop_kind(bn_stop_reason_name(st.stop_reason)));
}

/* ------------------------------------------------------------------ bitnet-run */
static void ask_cli(const settings *s, answer *a)
{
    char temp[32], top_k[32], top_p[32], min_p[32], pen[32], last_n[32], seed[32], n[32];
    char pres[32], freq[32];
    snprintf(pres, sizeof pres, "%.9g", (double)s->presence_penalty);
    snprintf(freq, sizeof freq, "%.9g", (double)s->frequency_penalty);
    snprintf(temp, sizeof temp, "%.9g", (double)s->temp);
    snprintf(top_k, sizeof top_k, "%d", (int)s->top_k);
    snprintf(top_p, sizeof top_p, "%.9g", (double)s->top_p);
    snprintf(min_p, sizeof min_p, "%.9g", (double)s->min_p);
    snprintf(pen, sizeof pen, "%.9g", (double)s->repeat_penalty);
    snprintf(last_n, sizeof last_n, "%d", (int)s->repeat_last_n);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->seed);
    snprintf(n, sizeof n, "%d", (int)s->n_predict);
    const char *argv[32] = {"bitnet-run",
                            "-m",
                            model_path,
                            "-p",
                            PROMPT,
                            "--json",
                            "-t",
                            "1",
                            "--temp",
                            temp,
                            "--top-k",
                            top_k,
                            "--top-p",
                            top_p,
                            "--min-p",
                            min_p,
                            "--repeat-penalty",
                            pen,
                            "--repeat-last-n",
                            last_n,
                            "--seed",
                            seed,
                            "-n",
                            n,
                            "--presence-penalty",
                            pres,
                            "--frequency-penalty",
                            freq};
    int argc = 28;
    if (s->stop) {
        argv[argc++] = "--stop";
        argv[argc++] = s->stop;
    }
    argv[argc] = NULL;
    char *out = NULL, *errout = NULL;
    int rc = bn_test_run(argv, NULL, &out, &errout);
    if (rc != 0)
        fail_msg("bitnet-run exit %d: %s", rc, errout);
    bn_err err = {0};
    bn_json_doc *d = bn_json_parse(out, strlen(out), NULL, &err);
    if (!d)
        fail_msg("bitnet-run --json printed no JSON (%s): %s", err.msg, out);
    const bn_json *root = bn_json_root(d);
    const bn_json *toks = bn_json_get(root, "tokens");
    const bn_json *text = bn_json_get(root, "text");
    const bn_json *stop = bn_json_get(root, "stop_reason");
    assert_true(toks && toks->type == BN_JSON_ARRAY && text && text->type == BN_JSON_STRING &&
                stop && stop->type == BN_JSON_STRING);
    a->ids = malloc((toks->len + 1) * sizeof *a->ids);
    for (const bn_json *v = toks->child; v; v = v->next)
        a->ids[a->n_ids++] = (int32_t)v->i64;
    a->n_tokens = (long)a->n_ids;
    a->text = strdup(text->str);
    snprintf(a->stop_reason, sizeof a->stop_reason, "%s", stop_kind(stop->str));
    bn_json_free(d);
    free(out);
    free(errout);
}

/* ------------------------------------------------------------------ HTTP body */
/* llama-server's completion fields for these settings. */
static void completion_body(const settings *s, bn_buf *body)
{
    bn_jw w = {.out = body};
    bn_jw_obj(&w);
    bn_jw_key(&w, "prompt");
    bn_jw_str(&w, PROMPT);
    bn_jw_key(&w, "n_predict");
    bn_jw_int(&w, s->n_predict);
    bn_jw_key(&w, "temperature");
    bn_jw_num(&w, s->temp);
    bn_jw_key(&w, "top_k");
    bn_jw_int(&w, s->top_k);
    bn_jw_key(&w, "top_p");
    bn_jw_num(&w, s->top_p);
    bn_jw_key(&w, "min_p");
    bn_jw_num(&w, s->min_p);
    bn_jw_key(&w, "repeat_penalty");
    bn_jw_num(&w, s->repeat_penalty);
    bn_jw_key(&w, "repeat_last_n");
    bn_jw_int(&w, s->repeat_last_n);
    bn_jw_key(&w, "presence_penalty");
    bn_jw_num(&w, s->presence_penalty);
    bn_jw_key(&w, "frequency_penalty");
    bn_jw_num(&w, s->frequency_penalty);
    bn_jw_key(&w, "seed");
    bn_jw_int(&w, (int64_t)s->seed);
    if (s->stop) {
        bn_jw_key(&w, "stop");
        bn_jw_str(&w, s->stop);
    }
    bn_jw_end(&w);
}

/* llama-server's completion object -> answer. */
static void read_completion(const char *body, size_t len, const char *who, answer *a)
{
    bn_err err = {0};
    bn_json_doc *d = bn_json_parse(body, len, NULL, &err);
    if (!d)
        fail_msg("%s's answer is not JSON (%s): %.*s", who, err.msg, (int)len, body);
    const bn_json *o = bn_json_root(d);
    const bn_json *text = bn_json_get(o, "content"), *n = bn_json_get(o, "tokens_predicted");
    const bn_json *stop = bn_json_get(o, "stop_type");
    if (!(text && text->type == BN_JSON_STRING && n && stop && stop->type == BN_JSON_STRING))
        fail_msg("%s's answer lacks content/tokens_predicted/stop_type: %.*s", who, (int)len, body);
    a->text = strdup(text->str);
    a->n_tokens = (long)n->i64;
    snprintf(a->stop_reason, sizeof a->stop_reason, "%s", stop_kind(stop->str));
    bn_json_free(d);
}

/* ------------------------------------------------------------------ Lambda (bin/bootstrap) */
static void ask_lambda(const settings *s, answer *a)
{
    bn_buf body = {0};
    completion_body(s, &body);
    char id[32];
    snprintf(id, sizeof id, "settings-%d", n_events);
    bn_rs_event ev = {.request_id = id, .body = body.data};
    bn_rs_queue(rs, &ev);
    if (!bn_rs_wait_records(rs, (size_t)n_events + 1, 120000)) {
        char *log = (char *)bn_test_read_file(bootstrap_log, NULL);
        fail_msg("no answer from bootstrap to %s; its log:\n%s", body.data, log ? log : "");
    }
    const bn_rs_record *r = bn_rs_record_at(rs, (size_t)n_events++);
    if (strcmp(r->kind, "response") != 0)
        fail_msg("bootstrap answered %s to %s: %s", r->kind, body.data, r->body);
    read_completion(r->body, r->len, "bootstrap", a);
    bn_buf_free(&body);
}

/* ------------------------------------------------------------------ HTTP router */
typedef struct http_answer {
    int status;
    bn_buf body;
} http_answer;

static int http_begin(void *u, int status, const char *ctype)
{
    (void)ctype;
    ((http_answer *)u)->status = status;
    return 0;
}

static int http_write(void *u, const char *data, size_t len)
{
    bn_buf_append(&((http_answer *)u)->body, data, len);
    return 0;
}

/* POST /completion through the router, on the test's own engine and session. */
static void ask_http(const settings *s, answer *a)
{
    bn_buf body = {0};
    completion_body(s, &body);
    bn_api api = {.engine = engine, .session = session, .model = "settings", .n_predict = -1};
    bn_api_request req = {
        .method = "POST", .path = "/completion", .body = body.data, .len = body.len};
    http_answer h = {0};
    bn_api_sink sink = {.begin = http_begin, .write = http_write, .user = &h};
    int status = bn_api_handle(&api, &req, &sink);
    if (status != 200 || h.status != 200)
        fail_msg("POST /completion answered %d: %s", status, h.body.data ? h.body.data : "");
    read_completion(h.body.data, h.body.len, "the router", a);
    bn_buf_free(&h.body);
    bn_buf_free(&body);
}

static const entry_point ENTRY_POINTS[] = {
    {"library", "", ask_library},
    {"bitnet-run", "", ask_cli},
    {"http /completion", "", ask_http},
    {"lambda", "", ask_lambda},
};

/* ------------------------------------------------------------------ the cases */
/* Sampling with nothing truncated, a fixed seed, no penalty. */
static settings sampled(void)
{
    return (settings){.temp = 1.0f,
                      .top_k = 0,
                      .top_p = 1.0f,
                      .min_p = 0.0f,
                      .repeat_penalty = 1.0f,
                      .presence_penalty = 0.0f,
                      .frequency_penalty = 0.0f,
                      .repeat_last_n = 64,
                      .seed = 5,
                      .n_predict = 24};
}

static settings greedy(void)
{
    settings s = sampled();
    s.temp = 0.0f;
    return s;
}

static setting_case make_case(const char *name, settings base, settings changed)
{
    return (setting_case){name, base, changed};
}

/* Fills cases[]; returns how many. The stop case takes its stop string from the base
 * answer's text, so that the string certainly occurs in it. */
static size_t build_cases(setting_case *c)
{
    size_t n = 0;
    settings a = sampled(), b = sampled();
    b.temp = 0.0f;
    c[n++] = make_case("temperature", a, b);
    b = sampled();
    b.top_k = 2;
    c[n++] = make_case("top_k", a, b);
    b = sampled();
    b.top_p = 0.3f;
    c[n++] = make_case("top_p", a, b);
    b = sampled();
    b.min_p = 0.3f;
    c[n++] = make_case("min_p", a, b);
    b = sampled();
    b.seed = 6;
    c[n++] = make_case("seed", a, b);
    b = sampled();
    b.n_predict = 10;
    c[n++] = make_case("n_predict", a, b);
    a = greedy();
    b = greedy();
    b.repeat_penalty = 1.5f;
    c[n++] = make_case("repeat_penalty", a, b);
    b = greedy();
    b.presence_penalty = 1.5f;
    c[n++] = make_case("presence_penalty", a, b);
    b = greedy();
    b.frequency_penalty = 1.0f;
    c[n++] = make_case("frequency_penalty", a, b);
    /* with a penalty, a window of 1 token (the last one) against the whole context */
    a = greedy();
    a.repeat_penalty = 1.5f;
    a.repeat_last_n = -1;
    b = a;
    b.repeat_last_n = 1;
    c[n++] = make_case("repeat_last_n", a, b);
    return n;
}

static bool same_answer(const answer *x, const answer *y)
{
    if (x->ids && y->ids &&
        (x->n_ids != y->n_ids || memcmp(x->ids, y->ids, x->n_ids * sizeof *x->ids)))
        return false;
    return x->n_tokens == y->n_tokens && strcmp(x->text, y->text) == 0 &&
           strcmp(x->stop_reason, y->stop_reason) == 0;
}

static bool supports(const entry_point *ep, const char *setting)
{
    const char *u = ep->unsupported;
    size_t n = strlen(setting);
    for (const char *p = strstr(u, setting); p; p = strstr(p + 1, setting))
        if ((p == u || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
            return false;
    return true;
}

static void assert_same(const char *what, const char *ep, const answer *want, const answer *got)
{
    if (!same_answer(want, got))
        fail_msg("%s via %s: %ld tokens \"%s\" (%s), the library gives %ld tokens \"%s\" (%s)",
                 what, ep, got->n_tokens, got->text, got->stop_reason, want->n_tokens, want->text,
                 want->stop_reason);
}

/* One case through every entry point. */
static void check_case(const setting_case *c)
{
    answer lib_base = {0}, lib_changed = {0};
    ask_library(&c->base, &lib_base);
    ask_library(&c->changed, &lib_changed);
    if (same_answer(&lib_base, &lib_changed))
        fail_msg("%s: the case does not change the tokens (\"%s\"); pick other values", c->name,
                 lib_base.text);
    /* row 0 is the library itself: the reference the other rows are compared with */
    for (size_t i = 1; i < sizeof ENTRY_POINTS / sizeof *ENTRY_POINTS; i++) {
        const entry_point *ep = &ENTRY_POINTS[i];
        if (!supports(ep, c->name)) {
            print_message("%s: not a setting of %s, not checked there\n", c->name, ep->name);
            continue;
        }
        answer base = {0}, changed = {0};
        ep->ask(&c->base, &base);
        ep->ask(&c->changed, &changed);
        assert_same(c->name, ep->name, &lib_base, &base);
        assert_same(c->name, ep->name, &lib_changed, &changed);
        assert_false(same_answer(&base, &changed));
        answer_free(&base);
        answer_free(&changed);
    }
    answer_free(&lib_base);
    answer_free(&lib_changed);
}

static void test_every_setting_reaches_the_sampler(void **state)
{
    (void)state;
    setting_case cases[16];
    size_t n = build_cases(cases);
    for (size_t i = 0; i < n; i++)
        check_case(&cases[i]);
}

/* stop: the base answer contains the string (taken from the middle of its text), the changed
 * one ends before it with stop_reason "stop_string". */
static void test_stop_reaches_the_matcher(void **state)
{
    (void)state;
    settings base = sampled();
    answer a = {0};
    ask_library(&base, &a);
    /* two printable ASCII bytes from the middle of the text */
    size_t len = strlen(a.text), at = len / 2;
    while (at + 1 < len &&
           !(a.text[at] > ' ' && a.text[at] < 127 && a.text[at + 1] > ' ' && a.text[at + 1] < 127))
        at++;
    if (at + 1 >= len)
        fail_msg("no printable pair in the base text \"%s\"; pick another seed", a.text);
    static char stop[3];
    memcpy(stop, a.text + at, 2);
    stop[2] = 0;
    answer_free(&a);
    settings changed = base;
    changed.stop = stop;
    setting_case c = make_case("stop", base, changed);
    check_case(&c);
    answer s = {0};
    ask_library(&changed, &s);
    assert_string_equal(s.stop_reason, "word");
    assert_null(strstr(s.text, stop));
    answer_free(&s);
}

/* ------------------------------------------------------------------ fixture */
static int setup(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_synth_params p;
    model_path = bn_test_tmpfile(".gguf");
    if (bn_synth_preset("tiny", &p, &err) || bn_synth_write(&p, model_path, &err)) {
        print_error("synthetic model: %s\n", err.msg);
        return -1;
    }
    if (!(engine = bn_engine_open(model_path, NULL, &err))) {
        print_error("bn_engine_open: %s\n", err.msg);
        return -1;
    }
    bn_session_params sp = {.n_threads = 1};
    if (!(session = bn_session_create(engine, &sp, &err))) {
        print_error("bn_session_create: %s\n", err.msg);
        return -1;
    }
    rs = bn_rs_start();
    if (!rs)
        return -1;
    bootstrap_log = bn_test_tmpfile(".log");
    char api[64], mod[1024];
    snprintf(api, sizeof api, "AWS_LAMBDA_RUNTIME_API=127.0.0.1:%d", bn_rs_port(rs));
    snprintf(mod, sizeof mod, "BITNET_MODEL=%s", model_path);
    const char *env[] = {
        api, mod, "BITNET_THREADS=1", "BITNET_CTX", "BITNET_STREAM", "AWS_LAMBDA_LOG_FORMAT", NULL};
    bootstrap_pid = bn_rs_spawn("bootstrap", env, bootstrap_log);
    return bootstrap_pid > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (bootstrap_pid > 0) {
        kill(bootstrap_pid, SIGTERM);
        bn_rs_wait_exit(bootstrap_pid, 10000);
    }
    if (rs)
        bn_rs_stop(rs);
    bn_session_free(session);
    bn_engine_free(engine);
    unlink(model_path);
    free(model_path);
    if (bootstrap_log)
        unlink(bootstrap_log);
    free(bootstrap_log);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_setting_reaches_the_sampler),
        cmocka_unit_test(test_stop_reaches_the_matcher),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
