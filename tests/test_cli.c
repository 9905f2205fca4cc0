/* bitnet-run end to end (through bn_test_run, so also under qemu): every bad input is one line
 * on stderr and exit 2; --json on the reference's tiny-a prints its golden greedy ids; seeds
 * reproduce; --dump-logits rows match the printed tokens; tokenize/detokenize round trip;
 * -cnv, --stop, -f, -b, --help, --inspect. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf_writer.h"
#include "json.h"
#include "synthetic_model.h"
#include "testutil.h"

static char *model, *vocab, *notgguf;

static int write_vocab_only(const char *src, const char *dst)
{
    bn_err err = {0};
    bn_gguf *g = bn_gguf_open(src, &err);
    if (!g)
        return -1;
    bn_gguf_writer *w = bn_gguf_writer_new();
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (strncmp(g->kv[i].key, "tokenizer.", 10) == 0 ||
            strcmp(g->kv[i].key, "general.architecture") == 0)
            bn_gguf_writer_add_kv(w, g->kv[i].key, &g->kv[i]);
    FILE *f = fopen(dst, "wb");
    int rc = !f || bn_gguf_writer_begin(w, f, &err) || bn_gguf_writer_finish(w, &err);
    if (f)
        rc |= fclose(f) != 0;
    bn_gguf_writer_free(w);
    bn_gguf_close(g);
    return rc ? -1 : 0;
}

static int setup(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_synth_params p;
    model = bn_test_tmpfile(".gguf");
    vocab = bn_test_tmpfile("-vocab.gguf");
    notgguf = bn_test_tmpfile(".txt");
    if (bn_synth_preset("tiny", &p, &err) || bn_synth_write(&p, model, &err))
        return -1;
    if (bn_test_write_file(notgguf, "just some text, definitely not a GGUF header\n", 46))
        return -1;
    return write_vocab_only(model, vocab);
}

static int teardown(void **state)
{
    (void)state;
    unlink(model);
    unlink(vocab);
    unlink(notgguf);
    free(model);
    free(vocab);
    free(notgguf);
    return 0;
}

/* Runs bitnet-run with the given arguments (NULL-terminated after argv[0]). */
static int run(const char *const *argv, const char *in, char **out, char **err)
{
    return bn_test_run(argv, in, out, err);
}

static void expect_usage_error(const char *const *argv, const char *needle)
{
    char *out = NULL, *err = NULL;
    int rc = run(argv, NULL, &out, &err);
    if (rc != 2 || !strstr(err, needle) || strchr(err, '\n') != err + strlen(err) - 1)
        fail_msg("args after %s: exit %d, stderr '%s' (want 2 and one line with '%s')",
                 argv[1] ? argv[1] : "", rc, err, needle);
    assert_string_equal(out, "");
    free(out);
    free(err);
}

static void test_bad_inputs_exit_2(void **state)
{
    (void)state;
    const char *long_prompt = "the cat sat on the mat and then the dog sat on the cat";
#define E(needle, ...)                                                                       \
    do {                                                                                     \
        const char *a[] = {"bitnet-run", __VA_ARGS__, NULL};                                 \
        expect_usage_error(a, needle);                                                       \
    } while (0)
    E("unknown option '--bogus'", "--bogus");
    E("unknown option '--temperature'", "-m", model, "-p", "x", "--temperature", "1");
    E("option '-p' needs a value", "-m", model, "-p");
    E("option '--top-k' needs a value", "-m", model, "-p", "x", "--top-k");
    E("option '-t' expects an integer, got 'abc'", "-m", model, "-p", "x", "-t", "abc");
    E("option '-n' expects an integer", "-m", model, "-p", "x", "-n", "12x");
    E("option '--seed' expects an integer", "-m", model, "-p", "x", "--seed", "seven");
    E("option '--temp' expects a number, got 'hot'", "-m", model, "-p", "x", "--temp", "hot");
    E("option '--top-p' must be in (0, 1], got '1.5'", "-m", model, "-p", "x", "--top-p", "1.5");
    E("option '--top-p' must be in (0, 1], got '0'", "-m", model, "-p", "x", "--top-p", "0");
    E("option '--min-p' must be in [0, 1]", "-m", model, "-p", "x", "--min-p", "2");
    E("option '--repeat-penalty' must be > 0", "-m", model, "-p", "x", "--repeat-penalty", "0");
    E("option '-c' must be in [0,", "-m", model, "-p", "x", "-c", "-1");
    E("option '-t' must be in [1,", "-m", model, "-p", "x", "-t", "0");
    E("option '-b' must be in [1,", "-m", model, "-p", "x", "-b", "0");
    E("option '-n' must be >= -1", "-m", model, "-p", "x", "-n", "-2");
    E("option '--repeat-last-n' must be >= -1", "-m", model, "-p", "x", "--repeat-last-n", "-5");
    E("option '--pre-tokenizer' must be llama3, default or falcon3", "-m", model, "--tokenize", "x",
      "--pre-tokenizer", "gpt4");
    E("option '--chat-template' must be bitnet, llama3, falcon3, chatml or zephyr", "-m", model,
      "-p", "x", "--chat-template", "jinja");
    E("option '--json' takes no value", "-m", model, "-p", "x", "--json=1");
    E("no model", "-p", "x");
    E("cannot open", "-m", "/nonexistent/dir/model.gguf", "-p", "x");
    E("not a GGUF", "-m", notgguf, "-p", "x");
    E("not a regular file", "-m", "/tmp", "-p", "x");
    E("vocab-only", "-m", vocab, "-p", "x");
    E("prompt is", "-m", model, "-p", long_prompt, "-c", "8");
    E("the context holds only 8", "-m", model, "-p", long_prompt, "-c", "8");
    E("exceeds the model's training context 4096", "-m", model, "-p", "x", "-c", "100000");
    E("nothing to do", "-m", model);
    E("give only one of -p, -f, --tokens", "-m", model, "-p", "x", "--tokens", "1,2");
    E("bad token id list", "-m", model, "--tokens", "1,two,3");
    E("bad token id list", "-m", model, "--tokens", "1,2,");
    E("out of range", "-m", model, "--tokens", "1,99999");
    E("cannot read", "-m", model, "-f", "/nonexistent/prompt.txt");
    E("out of range", "-m", model, "--detokenize", "1,99999");
#undef E
}

/* The JSON object printed by one run (fails the test when it is not one). */
static bn_json_doc *run_json(const char *const *argv, char **out_text)
{
    char *out = NULL, *err = NULL;
    int rc = run(argv, NULL, &out, &err);
    if (rc != 0)
        fail_msg("exit %d: %s", rc, err);
    bn_err jerr = {0};
    bn_json_doc *d = bn_json_parse(out, strlen(out), NULL, &jerr);
    if (!d)
        fail_msg("not JSON (%s): %s", jerr.msg, out);
    assert_non_null(strstr(err, "stop:")); /* the timings line still goes to stderr */
    if (out_text)
        *out_text = out;
    else
        free(out);
    free(err);
    return d;
}

/* "1,2,3" from a JSON array of integers. */
static char *ids_arg(const bn_json *arr)
{
    size_t cap = arr->len * 12 + 2, n = 0;
    char *s = malloc(cap);
    s[0] = 0;
    for (const bn_json *v = arr->child; v; v = v->next)
        n += (size_t)snprintf(s + n, cap - n, n ? ",%lld" : "%lld", (long long)v->i64);
    return s;
}

static void test_golden_tiny_a(void **state)
{
    (void)state;
    char *m = bn_test_shared("reference/models/tiny-a.gguf");
    char *gpath = bn_test_shared("reference/golden/tiny-a.b1.json");
    BN_SKIP_IF_MISSING(m, "tiny-a.gguf");
    BN_SKIP_IF_MISSING(gpath, "tiny-a.b1.json");
    size_t glen = 0;
    char *gtext = (char *)bn_test_read_file(gpath, &glen);
    bn_err err = {0};
    bn_json_doc *golden = bn_json_parse(gtext, glen, NULL, &err);
    assert_non_null(golden);
    const bn_json *gp = bn_json_get(bn_json_root(golden), "prompt_ids");
    const bn_json *gg = bn_json_get(bn_json_root(golden), "greedy_ids");
    assert_non_null(gp);
    assert_non_null(gg);
    char *prompt = ids_arg(gp);
    const char *argv[] = {"bitnet-run", "-m", m, "--tokens", prompt, "-n", "32", "--temp", "0",
                          "--json", "-t", "1", NULL};
    bn_json_doc *d = run_json(argv, NULL);
    const bn_json *root = bn_json_root(d);
    assert_true(bn_json_equal(bn_json_get(root, "prompt_tokens"), gp));
    if (!bn_json_equal(bn_json_get(root, "tokens"), gg))
        fail_msg("greedy ids differ from the reference's");
    assert_string_equal(bn_json_get(root, "stop_reason")->str, "length");
    const bn_json *t = bn_json_get(root, "timings");
    assert_non_null(t);
    assert_non_null(bn_json_get(t, "gen_tok_s"));
    assert_non_null(bn_json_get(t, "peak_rss_kib"));
    assert_non_null(bn_json_get(root, "text"));
    bn_json_free(d);
    bn_json_free(golden);
    free(prompt);
    free(gtext);
    free(gpath);
    free(m);
}

/* Same seed and settings: identical output, also with another thread count. (The other
 * runs pin -t 1: one process per run is slow under qemu, and threads are tested here.) */
static void test_seed_reproducible(void **state)
{
    (void)state;
    char *m = bn_test_shared("reference/models/tiny-a.gguf");
    const char *path = m ? m : model;
    char *out[3] = {0};
    const char *threads[3] = {"1", "1", "2"};
    for (int i = 0; i < 3; i++) {
        const char *argv[] = {"bitnet-run", "-m", path, "-p", "the cat", "-n", "32", "--seed",
                              "7", "--temp", "0.8", "-t", threads[i], NULL};
        char *err = NULL;
        assert_int_equal(run(argv, NULL, &out[i], &err), 0);
        free(err);
    }
    assert_true(strlen(out[0]) > 0);
    assert_string_equal(out[0], out[1]);
    assert_string_equal(out[0], out[2]);
    for (int i = 0; i < 3; i++)
        free(out[i]);
    free(m);
}

static int32_t argmax(const float *l, size_t n)
{
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (l[i] > l[b])
            b = i;
    return (int32_t)b;
}

/* Rows = prompt positions + generated tokens - 1; row (n_prompt - 1 + i) gives token i under
 * greedy decoding. -b 1 (token by token) writes the same bytes as one batch. */
static void test_dump_logits(void **state)
{
    (void)state;
    enum { V = 384, P = 6 };
    char *f1 = bn_test_tmpfile(".f32"), *f2 = bn_test_tmpfile(".f32");
    const char *argv[] = {"bitnet-run", "-m", model, "--tokens", "1,60,7,200,33,9", "-n", "10",
                          "--temp", "0", "--json", "--dump-logits", f1, "-t", "1", NULL};
    bn_json_doc *d = run_json(argv, NULL);
    const bn_json *toks = bn_json_get(bn_json_root(d), "tokens");
    size_t n_gen = toks->len, len = 0;
    assert_true(n_gen >= 1);
    float *rows = (float *)bn_test_read_file(f1, &len);
    assert_non_null(rows);
    assert_int_equal(len, (P + n_gen - 1) * V * sizeof(float));
    size_t i = 0;
    for (const bn_json *t = toks->child; t; t = t->next, i++)
        assert_int_equal(argmax(rows + (P - 1 + i) * V, V), t->i64);

    const char *argv1[] = {"bitnet-run", "-m", model, "--tokens", "1,60,7,200,33,9", "-n", "10",
                           "--temp", "0", "-b", "1", "--dump-logits", f2, "-t", "1", NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(run(argv1, NULL, &out, &err), 0);
    size_t len2 = 0;
    uint8_t *rows2 = bn_test_read_file(f2, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(rows2, rows, len);
    /* -n 0: the prompt rows only */
    const char *argv0[] = {"bitnet-run", "-m", model, "--tokens", "1,60,7,200,33,9", "-n", "0",
                           "--dump-logits", f2, "-t", "1", NULL};
    free(out);
    free(err);
    assert_int_equal(run(argv0, NULL, &out, &err), 0);
    free(rows2);
    rows2 = bn_test_read_file(f2, &len2);
    assert_int_equal(len2, P * V * sizeof(float));
    assert_memory_equal(rows2, rows, len2);
    free(rows2);
    free(out);
    free(err);
    free(rows);
    bn_json_free(d);
    unlink(f1);
    unlink(f2);
    free(f1);
    free(f2);
}

static void test_tokenize_round_trip(void **state)
{
    (void)state;
    const char *text = "the cat sat on the mat, 42 times!";
    const char *paths[2] = {model, vocab};
    for (int k = 0; k < 2; k++) {
        const char *argv[] = {"bitnet-run", "-m", paths[k], "--tokenize", text, NULL};
        char *out = NULL, *err = NULL;
        assert_int_equal(run(argv, NULL, &out, &err), 0);
        bn_err jerr = {0};
        bn_json_doc *d = bn_json_parse(out, strlen(out), NULL, &jerr);
        assert_non_null(d);
        const bn_json *ids = bn_json_root(d);
        assert_int_equal(ids->type, BN_JSON_ARRAY);
        assert_true(ids->len >= 2);
        char *arg = ids_arg(ids);
        const char *argv2[] = {"bitnet-run", "-m", paths[k], "--detokenize", arg, NULL};
        char *back = NULL;
        free(err);
        assert_int_equal(run(argv2, NULL, &back, &err), 0);
        assert_string_equal(back, text);
        /* --bos puts the BOS id (368 in the synthetic vocabulary: the first special) first */
        const char *argv3[] = {"bitnet-run", "-m", paths[k], "--tokenize", text, "--bos", NULL};
        char *out3 = NULL;
        free(err);
        assert_int_equal(run(argv3, NULL, &out3, &err), 0);
        assert_true(strncmp(out3, "[368, ", 6) == 0);
        assert_string_equal(out3 + 6, out + 1);
        /* --tokenize-file reads the bytes of a file */
        char *tf = bn_test_tmpfile(".txt");
        bn_test_write_file(tf, text, strlen(text));
        const char *argv4[] = {"bitnet-run", "-m", paths[k], "--tokenize-file", tf, NULL};
        char *out4 = NULL;
        free(err);
        assert_int_equal(run(argv4, NULL, &out4, &err), 0);
        assert_string_equal(out4, out);
        unlink(tf);
        free(tf);
        free(out4);
        free(out3);
        free(back);
        free(arg);
        bn_json_free(d);
        free(out);
        free(err);
    }
}

static void test_help_version_inspect(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    const char *h[] = {"bitnet-run", "--help", NULL};
    assert_int_equal(run(h, NULL, &out, &err), 0);
    const char *want[] = {"--temp T", "(default: 0.8)", "--top-k N", "(default: 40)",
                          "(default: 0.95)", "(default: 0.05)", "--repeat-last-n N",
                          "(default: 64)", "-cnv", "--dump-logits", "--pre-tokenizer"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (!strstr(out, want[i]))
            fail_msg("--help lacks '%s'", want[i]);
    assert_non_null(strstr(out, "--repeat-penalty X"));
    free(out);
    free(err);
    const char *v[] = {"bitnet-run", "--version", NULL};
    assert_int_equal(run(v, NULL, &out, &err), 0);
    assert_true(strncmp(out, "bitnet-run ", 11) == 0);
    free(out);
    free(err);
    const char *i1[] = {"bitnet-run", "-m", model, "--inspect", "--verbose", NULL};
    assert_int_equal(run(i1, NULL, &out, &err), 0);
    assert_non_null(strstr(out, "weights: yes"));
    assert_non_null(strstr(out, "n_vocab: 384"));
    assert_non_null(strstr(out, "n_layer: 2"));
    assert_non_null(strstr(err, "kernels ")); /* --verbose names the kernel path */
    free(out);
    free(err);
    const char *i2[] = {"bitnet-run", "-m", vocab, "--inspect", NULL};
    assert_int_equal(run(i2, NULL, &out, &err), 0);
    assert_non_null(strstr(out, "weights: no"));
    free(out);
    free(err);
}

/* The streamed text equals the JSON "text"; -f FILE (trailing newline dropped) equals -p. */
static void test_stream_file_and_stop(void **state)
{
    (void)state;
    char *streamed = NULL, *err = NULL;
    const char *a1[] = {"bitnet-run", "-m", model, "-p", "hello world", "-n", "16", "--temp",
                        "0.7", "--seed", "3", "-t", "1", NULL};
    assert_int_equal(run(a1, NULL, &streamed, &err), 0);
    assert_non_null(strstr(err, "stop: length"));
    free(err);
    const char *a2[] = {"bitnet-run", "-m", model, "-p", "hello world", "-n", "16", "--temp",
                        "0.7", "--seed", "3", "--json", "-t", "1", NULL};
    bn_json_doc *d = run_json(a2, NULL);
    const bn_json *text = bn_json_get(bn_json_root(d), "text");
    /* the JSON writer replaces invalid UTF-8 by U+FFFD; compare when the text is clean */
    if (strstr(text->str, "\xef\xbf\xbd") == NULL)
        assert_string_equal(streamed, text->str);

    char *pf = bn_test_tmpfile(".txt");
    bn_test_write_file(pf, "hello world\n", 12);
    const char *a3[] = {"bitnet-run", "-m", model, "-f", pf, "-n", "16", "--temp", "0.7",
                        "--seed", "3", "--json", "-t", "1", NULL};
    bn_json_doc *d3 = run_json(a3, NULL);
    assert_true(bn_json_equal(bn_json_root(d3), bn_json_root(d)) ||
                (bn_json_equal(bn_json_get(bn_json_root(d3), "tokens"),
                               bn_json_get(bn_json_root(d), "tokens")) &&
                 bn_json_equal(bn_json_get(bn_json_root(d3), "prompt_tokens"),
                               bn_json_get(bn_json_root(d), "prompt_tokens"))));

    /* --stop: output ends before the first occurrence of the stop string */
    size_t sl = strlen(streamed);
    if (sl >= 8) {
        char stop[4] = {streamed[sl / 2], streamed[sl / 2 + 1], streamed[sl / 2 + 2], 0};
        if (strlen(stop) == 3) {
            const char *a4[] = {"bitnet-run", "-m", model, "-p", "hello world", "-n", "16",
                                "--temp", "0.7", "--seed", "3", "--stop", "\x01zz", "--stop",
                                stop, "-t", "1", NULL};
            char *out4 = NULL;
            assert_int_equal(run(a4, NULL, &out4, &err), 0);
            assert_non_null(strstr(err, "stop: stop_string"));
            size_t want = (size_t)(strstr(streamed, stop) - streamed);
            assert_int_equal(strlen(out4), want);
            assert_memory_equal(out4, streamed, want);
            free(out4);
            free(err);
        }
    }
    unlink(pf);
    free(pf);
    bn_json_free(d3);
    bn_json_free(d);
    free(streamed);
}

/* -cnv reads one user turn per line; each turn prints a prompt and a timings line; the second
 * turn evaluates only its own tokens plus the previous turn's last token. */
static void test_conversation(void **state)
{
    (void)state;
    const char *argv[] = {"bitnet-run", "-m", model, "-cnv", "-sys", "be kind", "-n", "4",
                          "--temp", "0", "-t", "1", NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(run(argv, "hi there\n\nhow are you\n", &out, &err), 0);
    int prompts = 0, timings = 0;
    for (const char *p = out; (p = strstr(p, "\n> ")); p += 3)
        prompts++;
    for (const char *p = err; (p = strstr(p, "stop: ")); p += 6)
        timings++;
    assert_int_equal(prompts, 4); /* before each of the 3 lines, and at EOF */
    assert_int_equal(timings, 2); /* the empty line is skipped */
    unsigned tok[2], ev[2];
    const char *p = err;
    for (int i = 0; i < 2; i++) {
        p = strstr(p, "| prompt ");
        assert_non_null(p);
        assert_int_equal(sscanf(p, "| prompt %u tokens (%u evaluated)", &tok[i], &ev[i]), 2);
        p++;
    }
    assert_int_equal(ev[0], tok[0]);     /* "User: hi there<|eot_id|>Assistant: " */
    assert_int_equal(ev[1], tok[1] + 1); /* the last sampled token of turn 1, then turn 2 */
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_inputs_exit_2),
        cmocka_unit_test(test_golden_tiny_a),
        cmocka_unit_test(test_seed_reproducible),
        cmocka_unit_test(test_dump_logits),
        cmocka_unit_test(test_tokenize_round_trip),
        cmocka_unit_test(test_help_version_inspect),
        cmocka_unit_test(test_stream_file_and_stop),
        cmocka_unit_test(test_conversation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
