/* tokenizer.ggml.add_eos_token = true: llama.cpp ends a text tokenized with add_special with
 * EOS, for BPE and SentencePiece vocabularies alike (llama_tokenize_impl). Checked against the
 * reference's llama-tokenize (tests/data/tokenize-add-eos.jsonl, with and without BOS) through
 * bn_engine_tokenize (/tokenize's add_special, bitnet-run --tokenize --bos), and through
 * bn_generate: a prompt text and chat messages end with EOS as llama-server tokenizes them
 * (add_special = the file's add_bos_token), a -cnv turn (append) does not (llama-cli tokenizes
 * turns without add_special), add_bos = false gives neither, and a file without the key gets
 * no EOS; and the same through the HTTP routes (/tokenize add_special, /completion, OpenAI
 * chat), which the Lambda handler shares. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "bitnet.h"
#include "buf.h"
#include "json.h"
#include "json_data.h"
#include "synthetic_model.h"
#include "testutil.h"

enum {
    BPE,
    SPM,
    BPE_NO_KEY,
    N_MODELS
};

static char *paths[N_MODELS];
static bn_engine *engines[N_MODELS];

static int write_model(int which, bn_err *err)
{
    bn_synth_params p;
    if (bn_synth_preset(which == SPM ? "tiny-bitnet" : "tiny-llama", &p, err))
        return -1;
    char *vocab = NULL;
    if (which == SPM) {
        vocab = bn_test_data("spm-vocab.gguf");
        p.vocab_gguf = vocab;
        p.n_vocab = 0; /* the vocabulary's size */
    }
    p.add_eos = which != BPE_NO_KEY;
    paths[which] = bn_test_tmpfile(which == SPM ? "-spm-eos.gguf" : "-bpe-eos.gguf");
    int rc = bn_synth_write(&p, paths[which], err);
    free(vocab);
    if (rc)
        return -1;
    engines[which] = bn_engine_open(paths[which], NULL, err);
    return engines[which] ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    bn_err err = {0};
    for (int i = 0; i < N_MODELS; i++)
        if (write_model(i, &err)) {
            fprintf(stderr, "model %d: %s\n", i, err.msg);
            return -1;
        }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < N_MODELS; i++) {
        bn_engine_free(engines[i]);
        if (paths[i])
            unlink(paths[i]);
        free(paths[i]);
    }
    return 0;
}

static int same(const char *what, const char *id, const int32_t *got, size_t ng,
                const int32_t *want, size_t nw)
{
    if (ng == nw && (nw == 0 || memcmp(got, want, nw * sizeof *got) == 0))
        return 1;
    print_message("%s %s: got %zu ids, want %zu:", what, id, ng, nw);
    for (size_t i = 0; i < ng; i++)
        print_message(" %d", got[i]);
    print_message(" | want");
    for (size_t i = 0; i < nw; i++)
        print_message(" %d", want[i]);
    print_message("\n");
    return 0;
}

/* One case of the reference file. */
typedef struct ref_case {
    int model; /* BPE or SPM */
    char id[32];
    uint8_t *text;
    size_t len;
    bool special;
    int32_t *ids, *ids_nobos;
    size_t n_ids, n_nobos;
} ref_case;

static ref_case cases[32];
static size_t n_cases;

static void load_cases(void)
{
    if (n_cases)
        return;
    char *path = bn_test_data("tokenize-add-eos.jsonl");
    size_t len;
    char *data = (char *)bn_test_read_file(path, &len);
    free(path);
    if (!data)
        fail_msg("cannot read tests/data/tokenize-add-eos.jsonl");
    for (char *line = data, *end = data + len; line < end;) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t ll = nl ? (size_t)(nl - line) : (size_t)(end - line);
        if (ll > 0) {
            bn_err err = {0};
            bn_json_doc *doc = bn_json_parse(line, ll, NULL, &err);
            if (!doc)
                fail_msg("tokenize-add-eos.jsonl: %s", err.msg);
            const bn_json *o = bn_json_root(doc);
            const bn_json *v = bn_json_get(o, "vocab"), *id = bn_json_get(o, "id"),
                          *hex = bn_json_get(o, "hex"), *sp = bn_json_get(o, "special");
            assert_true(n_cases < sizeof cases / sizeof *cases);
            assert_true(v && id && hex && sp && sp->type == BN_JSON_BOOL);
            ref_case *c = &cases[n_cases++];
            c->model = strcmp(v->str, "spm") == 0 ? SPM : BPE;
            snprintf(c->id, sizeof c->id, "%s/%s", v->str, id->str);
            c->special = sp->boolean;
            assert_int_equal(bn_test_unhex(hex->str, hex->len, &c->text, &c->len), 0);
            assert_int_equal(bn_test_json_ids(bn_json_get(o, "ids"), &c->ids, &c->n_ids), 0);
            assert_int_equal(
                bn_test_json_ids(bn_json_get(o, "ids_nobos"), &c->ids_nobos, &c->n_nobos), 0);
            bn_json_free(doc);
        }
        line += ll + 1;
    }
    free(data);
    assert_int_equal(n_cases, 16);
}

static void free_cases(void)
{
    for (size_t i = 0; i < n_cases; i++) {
        free(cases[i].text);
        free(cases[i].ids);
        free(cases[i].ids_nobos);
    }
    n_cases = 0;
}

static void test_tokenize_matches_reference(void **state)
{
    (void)state;
    load_cases();
    int failures = 0;
    for (size_t i = 0; i < n_cases; i++) {
        const ref_case *c = &cases[i];
        for (int bos = 0; bos < 2; bos++) {
            int32_t *ids = NULL;
            size_t n = 0;
            bn_err err = {0};
            if (bn_engine_tokenize(engines[c->model], (const char *)c->text, c->len, bos,
                                   c->special, &ids, &n, &err))
                fail_msg("%s: %s", c->id, err.msg);
            if (!same(bos ? "add_special" : "no BOS", c->id, ids, n, bos ? c->ids : c->ids_nobos,
                      bos ? c->n_ids : c->n_nobos))
                failures++;
            free(ids);
        }
    }
    assert_int_equal(failures, 0);
}

/* The prompt ids bn_generate evaluated for p (one token sampled). */
static const int32_t *prompt_of(bn_session *s, bn_generate_params *p, size_t *n)
{
    bn_err err = {0};
    p->n_predict = 1;
    p->sampling.temp = 0;
    if (bn_generate(s, p, NULL, &err))
        fail_msg("bn_generate: %s", err.msg);
    return bn_session_prompt_ids(s, n);
}

static bn_session *session(int model)
{
    bn_err err = {0};
    bn_session *s = bn_session_create(engines[model], NULL, &err);
    if (!s)
        fail_msg("bn_session_create: %s", err.msg);
    return s;
}

static void test_prompt_text_ends_with_eos(void **state)
{
    (void)state;
    load_cases();
    int failures = 0;
    for (size_t i = 0; i < n_cases; i++) {
        const ref_case *c = &cases[i];
        if (c->special || c->len == 0)
            continue;
        char *text = malloc(c->len + 1);
        memcpy(text, c->text, c->len);
        text[c->len] = 0;
        bn_session *s = session(c->model);
        bn_generate_params p = bn_generate_default();
        p.prompt = text;
        size_t n;
        const int32_t *ids = prompt_of(s, &p, &n);
        failures += !same("prompt", c->id, ids, n, c->ids, c->n_ids);
        /* add_bos false: no add_special, so no EOS either */
        p = bn_generate_default();
        p.prompt = text;
        p.add_bos = false;
        ids = prompt_of(s, &p, &n);
        failures += !same("prompt without BOS", c->id, ids, n, c->ids_nobos, c->n_nobos);
        bn_session_free(s);
        free(text);
    }
    assert_int_equal(failures, 0);
}

/* Chat messages: the rendering (ChatML, the fallback of files without a template) tokenized as
 * llama-server does it: BOS, the text with its special tokens, EOS. Then a -cnv turn (append):
 * no BOS, no EOS. */
static void test_chat_messages(void **state)
{
    (void)state;
    load_cases();
    const bn_chat_msg m[2] = {{"system", "Be brief."}, {"user", "Hello"}};
    for (int model = BPE; model <= SPM; model++) {
        const ref_case *want = NULL;
        for (size_t i = 0; i < n_cases; i++)
            if (cases[i].model == model && strstr(cases[i].id, "/chat"))
                want = &cases[i];
        assert_non_null(want);
        bn_session *s = session(model);
        bn_generate_params p = bn_generate_default();
        p.messages = m;
        p.n_messages = 2;
        size_t n;
        const int32_t *ids = prompt_of(s, &p, &n);
        assert_true(same("chat", want->id, ids, n, want->ids, want->n_ids));

        /* the same conversation the -cnv way: the system prompt, then the user turn appended */
        bn_session_free(s);
        s = session(model);
        p = bn_generate_default();
        p.messages = m;
        p.n_messages = 1;
        prompt_of(s, &p, &n);
        p = bn_generate_default();
        p.messages = &m[1];
        p.n_messages = 1;
        p.append = true;
        ids = prompt_of(s, &p, &n);
        const char turn[] = "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n";
        int32_t *turn_ids = NULL;
        size_t n_turn = 0;
        bn_err err = {0};
        assert_int_equal(bn_engine_tokenize(engines[model], turn, strlen(turn), false, true,
                                            &turn_ids, &n_turn, &err),
                         0);
        assert_true(n_turn > 0 && turn_ids[n_turn - 1] != want->ids[want->n_ids - 1]);
        assert_true(same("-cnv turn", want->id, ids, n, turn_ids, n_turn));
        free(turn_ids);
        bn_session_free(s);
    }
}

/* Without the key nothing changes: the reference's ids minus the final EOS. */
static void test_no_key_no_eos(void **state)
{
    (void)state;
    load_cases();
    const ref_case *c = &cases[0];
    assert_string_equal(c->id, "bpe/hello");
    int32_t *ids = NULL;
    size_t n = 0;
    bn_err err = {0};
    assert_int_equal(bn_engine_tokenize(engines[BPE_NO_KEY], (const char *)c->text, c->len, true,
                                        false, &ids, &n, &err),
                     0);
    assert_true(same("no key", c->id, ids, n, c->ids, c->n_ids - 1));
    free(ids);
    bn_session *s = session(BPE_NO_KEY);
    bn_generate_params p = bn_generate_default();
    p.prompt = "Hello world";
    const int32_t *pids = prompt_of(s, &p, &n);
    assert_true(same("no key, prompt", c->id, pids, n, c->ids, c->n_ids - 1));
    bn_session_free(s);
    free_cases();
}

/* ------------------------------------------------------------------ the HTTP routes */
typedef struct http_answer {
    bn_buf body;
    int status;
} http_answer;

static int http_begin(void *u, int status, const char *ctype)
{
    (void)ctype;
    ((http_answer *)u)->status = status;
    return 0;
}

static int http_write(void *u, const char *d, size_t n)
{
    bn_buf_append(&((http_answer *)u)->body, d, n);
    return 0;
}

/* POST body to path on an engine/session pair; the answer's body (status 200 asserted). */
static char *post(bn_engine *e, bn_session *s, const char *path, const char *body)
{
    http_answer out = {{0}, 0};
    bn_api api = {.engine = e, .session = s, .model = "tiny", .n_predict = 1};
    bn_api_sink sink = {.begin = http_begin, .write = http_write, .user = &out};
    bn_api_request req = {.method = "POST", .path = path, .body = body, .len = strlen(body)};
    bn_api_handle(&api, &req, &sink);
    if (out.status != 200)
        fail_msg("%s: status %d: %.*s", path, out.status, (int)out.body.len, out.body.data);
    return out.body.data; /* NUL-terminated */
}

static void test_http_routes(void **state)
{
    (void)state;
    load_cases();
    const ref_case *hello = &cases[0], *chat = NULL;
    assert_string_equal(hello->id, "bpe/hello");
    for (size_t i = 0; i < n_cases; i++)
        if (strcmp(cases[i].id, "bpe/chat") == 0)
            chat = &cases[i];
    assert_non_null(chat);
    bn_session *s = session(BPE);
    /* /tokenize with add_special: BOS ... EOS */
    char *body = post(engines[BPE], s, "/tokenize",
                      "{\"content\":\"Hello world\",\"add_special\":true}");
    bn_err err = {0};
    bn_json_doc *d = bn_json_parse(body, strlen(body), NULL, &err);
    assert_non_null(d);
    int32_t *ids;
    size_t n;
    assert_int_equal(bn_test_json_ids(bn_json_get(bn_json_root(d), "tokens"), &ids, &n), 0);
    assert_true(same("/tokenize", hello->id, ids, n, hello->ids, hello->n_ids));
    free(ids);
    bn_json_free(d);
    free(body);
    /* llama-server's /completion prompt */
    free(post(engines[BPE], s, "/completion",
              "{\"prompt\":\"Hello world\",\"n_predict\":1,\"temperature\":0}"));
    const int32_t *pids = bn_session_prompt_ids(s, &n);
    assert_true(same("/completion", hello->id, pids, n, hello->ids, hello->n_ids));
    /* OpenAI chat: the rendered messages, then EOS */
    free(post(engines[BPE], s, "/v1/chat/completions",
              "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
              "{\"role\":\"user\",\"content\":\"Hello\"}],\"max_tokens\":1,"
              "\"temperature\":0}"));
    pids = bn_session_prompt_ids(s, &n);
    assert_true(same("/v1/chat/completions", chat->id, pids, n, chat->ids, chat->n_ids));
    bn_session_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenize_matches_reference),
        cmocka_unit_test(test_prompt_text_ends_with_eos),
        cmocka_unit_test(test_chat_messages),
        cmocka_unit_test(test_http_routes),
        cmocka_unit_test(test_no_key_no_eos),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
