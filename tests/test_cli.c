/* bitnet-run end to end (through bn_test_run, so also under qemu): every bad input is one line
 * on stderr and exit 2, every file error one line and exit 1; --json on the reference's tiny-a
 * prints its golden greedy ids; seeds reproduce and another seed changes the text;
 * --dump-logits rows match the printed tokens; tokenize/detokenize round trip;
 * -cnv, --stop, -f, -b, --help, --inspect. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bitnet.h"
#include "gguf_writer.h"
#include "json.h"
#include "synthetic_model.h"
#include "testdata.h"
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

/* The test models are synthetic: bitnet-run warns once about that (one line naming it) before
 * anything else; the error after it must still be one line. */
static const char *after_synthetic_warning(const char *err)
{
    const char *w = "synthetic model (random weights): output is meaningless";
    const char *nl = strchr(err, '\n');
    if (strncmp(err, "bitnet-run: warning: ", 21) == 0 && nl && strstr(err, w) &&
        strstr(err, w) < nl)
        return nl + 1;
    return err;
}

static void expect_error(const char *const *argv, int status, const char *needle)
{
    char *out = NULL, *err0 = NULL;
    int rc = run(argv, NULL, &out, &err0);
    const char *err = after_synthetic_warning(err0);
    if (rc != status || !strstr(err, needle) || strchr(err, '\n') != err + strlen(err) - 1)
        fail_msg("args after %s: exit %d, stderr '%s' (want %d and one line with '%s')",
                 argv[1] ? argv[1] : "", rc, err, status, needle);
    assert_string_equal(out, "");
    free(out);
    free(err0);
}

/* Exit status 2: usage and bad input, a prompt longer than the context included. */
static void test_bad_inputs_exit_2(void **state)
{
    (void)state;
    const char *long_prompt = "the cat sat on the mat and then the dog sat on the cat";
#define E(needle, ...)                                       \
    do {                                                     \
        const char *a[] = {"bitnet-run", __VA_ARGS__, NULL}; \
        expect_error(a, 2, needle);                          \
    } while (0)
    E("unknown option '--bogus'", "--bogus");
    E("unknown option '--temperature'", "-m", model, "-p", "x", "--temperature", "1");
    E("option '-p' needs a value", "-m", model, "-p");
    E("option '--top-k' needs a value", "-m", model, "-p", "x", "--top-k");
    E("option '-t' expects an integer, got 'abc'", "-m", model, "-p", "x", "-t", "abc");
    E("option '-n' expects an integer", "-m", model, "-p", "x", "-n", "12x");
    E("option '--seed' expects an integer", "-m", model, "-p", "x", "--seed", "seven");
    E("option '--temp' expects a number, got 'hot'", "-m", model, "-p", "x", "--temp", "hot");
    /* ranges come from the engine's settings table and name both ends */
    E("option '--top-p' must be in (0, 1] (1 = off), got 1.5", "-m", model, "-p", "x", "--top-p",
      "1.5");
    E("option '--top-p' must be in (0, 1] (1 = off), got 0", "-m", model, "-p", "x", "--top-p",
      "0");
    E("option '--min-p' must be in [0, 1]", "-m", model, "-p", "x", "--min-p", "2");
    E("option '--repeat-penalty' must be in (0, 100]", "-m", model, "-p", "x", "--repeat-penalty",
      "0");
    E("option '--temp' must be in [0, 100] (0 = greedy), got inf", "-m", model, "-p", "x", "--temp",
      "inf");
    E("option '-c' must be an integer in [0, 1048576]", "-m", model, "-p", "x", "-c", "-1");
    E("option '-t' must be an integer in [0, 1024]", "-m", model, "-p", "x", "-t", "-1");
    E("option '-b' must be an integer in [0, 1048576]", "-m", model, "-p", "x", "-b", "-3");
    E("option '-n' must be an integer in [-1, 2147483647]", "-m", model, "-p", "x", "-n", "-2");
    E("option '-n' must be an integer in [-1, 2147483647]", "-m", model, "-p", "x", "-n",
      "99999999999");
    E("option '--repeat-last-n' must be an integer in [-1, 2147483647]", "-m", model, "-p", "x",
      "--repeat-last-n", "-5");
    E("option '--seed' must be an integer in [-1, 9007199254740992] (-1 = random), got "
      "100000000000000000000",
      "-m", model, "-p", "x", "--seed", "99999999999999999999");
    E("option '--seed' must be an integer in [-1, 9007199254740992]", "-m", model, "-p", "x",
      "--seed", "9007199254740993");
    E("option '--repeat-penalty': '1e-50' rounds to 0 as a float", "-m", model, "-p", "x",
      "--repeat-penalty", "1e-50");
    E("option '--pre-tokenizer' must be llama3, default or falcon3", "-m", model, "--tokenize", "x",
      "--pre-tokenizer", "gpt4");
    E("option '--chat-template' must be bitnet, llama3, falcon3, chatml, zephyr or falcon_e", "-m",
      model, "-p", "x", "--chat-template", "jinja");
    E("option '--json' takes no value", "-m", model, "-p", "x", "--json=1");
    E("no model", "-p", "x");
    E("vocab-only", "-m", vocab, "-p", "x");
    E("prompt is", "-m", model, "-p", long_prompt, "-c", "8");
    E("the context holds only 8", "-m", model, "-p", long_prompt, "-c", "8");
    E("nothing to do", "-m", model);
    E("give only one of -p, -f, --tokens", "-m", model, "-p", "x", "--tokens", "1,2");
    E("bad token id list", "-m", model, "--tokens", "1,two,3");
    E("bad token id list", "-m", model, "--tokens", "1,2,");
    E("out of range", "-m", model, "--tokens", "1,99999");
    E("out of range", "-m", model, "--detokenize", "1,99999");
    E("out of range", "-m", model, "--tokens", "1,99999", "--dump-logits", "/dev/null");
#undef E
}

/* Exit status 1: files that are missing, unreadable or not a model, and failed writes. */
static void test_file_errors_exit_1(void **state)
{
    (void)state;
#define E(needle, ...)                                       \
    do {                                                     \
        const char *a[] = {"bitnet-run", __VA_ARGS__, NULL}; \
        expect_error(a, 1, needle);                          \
    } while (0)
    E("cannot open", "-m", "/nonexistent/dir/model.gguf", "-p", "x");
    E("cannot open", "-m", "/nonexistent/dir/model.gguf", "--tokenize", "x");
    E("not a GGUF", "-m", notgguf, "-p", "x");
    E("not a GGUF", "-m", notgguf, "--inspect");
    E("not a regular file", "-m", "/tmp", "-p", "x");
    E("cannot read", "-m", model, "-f", "/nonexistent/prompt.txt");
    E("cannot read", "-m", model, "--tokenize-file", "/nonexistent/prompt.txt");
    E("cannot write", "-m", model, "--tokens", "1,2", "--dump-logits", "/nonexistent/dir/l.f32");
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

/* The JSON object printed by a run that prints no timings line (tokenize, detokenize). */
static bn_json_doc *run_json_nostats(const char *const *argv)
{
    char *out = NULL, *err = NULL;
    int rc = run(argv, NULL, &out, &err);
    if (rc != 0)
        fail_msg("exit %d: %s", rc, err);
    assert_non_null(strchr(out, '\n')); /* one object, one line */
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
    bn_json_doc *d = bn_json_parse(out, strlen(out), NULL, NULL);
    if (!d)
        fail_msg("not JSON: %s", out);
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
    bn_test_skip_if_missing(m, "tiny-a.gguf");
    bn_test_skip_if_missing(gpath, "tiny-a.b1.json");
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
    const char *argv[] = {"bitnet-run", "-m", m,        "--tokens", prompt, "-n", "32",
                          "--temp",     "0",  "--json", "-t",       "1",    NULL};
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

/* Same seed and settings: identical output, also with another thread count; another seed:
 * another output. (The other runs pin -t 1: one process per run is slow under qemu, and
 * threads are tested here.) */
static void test_seed_reproducible(void **state)
{
    (void)state;
    char *m = bn_test_shared("reference/models/tiny-a.gguf");
    const char *path = m ? m : model;
    char *out[4] = {0};
    const char *threads[4] = {"1", "1", "2", "1"}, *seeds[4] = {"7", "7", "7", "8"};
    for (int i = 0; i < 4; i++) {
        const char *argv[] = {"bitnet-run", "-m",     path,     "-p",  "the cat", "-n",       "32",
                              "--seed",     seeds[i], "--temp", "0.8", "-t",      threads[i], NULL};
        char *err = NULL;
        assert_int_equal(run(argv, NULL, &out[i], &err), 0);
        free(err);
    }
    assert_true(strlen(out[0]) > 0);
    assert_string_equal(out[0], out[1]);
    assert_string_equal(out[0], out[2]);
    assert_string_not_equal(out[0], out[3]);
    for (int i = 0; i < 4; i++)
        free(out[i]);
    free(m);
}

/* Rows = prompt positions + generated tokens - 1; row (n_prompt - 1 + i) gives token i under
 * greedy decoding. -b 1 (token by token) writes the same bytes as one batch. */
static void test_dump_logits(void **state)
{
    (void)state;
    enum {
        V = 384,
        P = 6
    };
    char *f1 = bn_test_tmpfile(".f32"), *f2 = bn_test_tmpfile(".f32");
    const char *argv[] = {"bitnet-run", "-m",     model, "--tokens", "1,60,7,200,33,9", "-n",
                          "10",         "--temp", "0",   "--json",   "--dump-logits",   f1,
                          "-t",         "1",      NULL};
    bn_json_doc *d = run_json(argv, NULL);
    const bn_json *toks = bn_json_get(bn_json_root(d), "tokens");
    size_t n_gen = toks->len, len = 0;
    assert_true(n_gen >= 1);
    float *rows = (float *)bn_test_read_file(f1, &len);
    assert_non_null(rows);
    assert_int_equal(len, (P + n_gen - 1) * V * sizeof(float));
    size_t i = 0;
    for (const bn_json *t = toks->child; t; t = t->next, i++)
        assert_int_equal(bn_test_argmax(rows + (P - 1 + i) * V, V), t->i64);

    const char *argv1[] = {"bitnet-run", "-m", model, "--tokens", "1,60,7,200,33,9", "-n", "10",
                           "--temp",     "0",  "-b",  "1",        "--dump-logits",   f2,   "-t",
                           "1",          NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(run(argv1, NULL, &out, &err), 0);
    size_t len2 = 0;
    uint8_t *rows2 = bn_test_read_file(f2, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(rows2, rows, len);
    /* -n 0: the prompt rows only */
    const char *argv0[] = {"bitnet-run", "-m", model,           "--tokens", "1,60,7,200,33,9",
                           "-n",         "0",  "--dump-logits", f2,         "-t",
                           "1",          NULL};
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
    const char *want[] = {"--temp T",
                          "(default: 0.8)",
                          "--top-k N",
                          "(default: 40)",
                          "(default: 0.95)",
                          "(default: 0.05)",
                          "--repeat-last-n N",
                          "(default: 64)",
                          "-cnv",
                          "--dump-logits",
                          "--pre-tokenizer",
                          "Exit status: 0 done; 1 a file or I/O error",
                          "2 usage or bad input",
                          "3 out of\nmemory"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (!strstr(out, want[i]))
            fail_msg("--help lacks '%s'", want[i]);
    assert_non_null(strstr(out, "--repeat-penalty X"));
    /* ranges printed from the engine's settings table */
    assert_non_null(strstr(out, "(0, 1]"));
    assert_non_null(strstr(out, "[-1, 9007199254740992]"));
    free(out);
    free(err);
    /* --version: what the binary was built with, so a container test can check -mcpu */
    const char *v[] = {"bitnet-run", "--version", NULL};
    assert_int_equal(run(v, NULL, &out, &err), 0);
    assert_true(strncmp(out, "bitnet-run " BN_VERSION "\n", 12 + strlen(BN_VERSION)) == 0);
    assert_non_null(strstr(out, "\ncompiler: "));
    assert_non_null(strstr(out, "\nflags: "));
    assert_non_null(strstr(out, "\nkernels: "));
    assert_non_null(strstr(out, " scalar")); /* every build has the scalar twins */
    assert_non_null(strstr(out, "\nkernels chosen: "));
#if defined(__aarch64__)
    assert_non_null(strstr(out, "target: aarch64"));
    assert_non_null(strstr(out, " neon"));
#elif defined(__x86_64__)
    assert_non_null(strstr(out, "target: x86_64"));
#endif
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

/* raw bytes -> the string the JSON writer produces (invalid UTF-8 -> U+FFFD). */
static char *as_json_text(const char *raw)
{
    bn_buf b = {0};
    bn_buf_puts(&b, "\"");
    bn_json_escape(&b, raw, strlen(raw));
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

static int printable(char c) { return c > ' ' && c < 127; }

/* The streamed text equals the JSON "text"; -f FILE (trailing newline dropped) equals -p. */
static void test_stream_file_and_stop(void **state)
{
    (void)state;
    char *streamed = NULL, *err = NULL;
    const char *a1[] = {"bitnet-run", "-m",  model,    "-p", "hello world", "-n", "16",
                        "--temp",     "0.7", "--seed", "3",  "-t",          "1",  NULL};
    assert_int_equal(run(a1, NULL, &streamed, &err), 0);
    assert_non_null(strstr(err, "stop: length"));
    free(err);
    const char *a2[] = {"bitnet-run", "-m",     model,    "-p",  "hello world",
                        "-n",         "16",     "--temp", "0.7", "--seed",
                        "3",          "--json", "-t",     "1",   NULL};
    bn_json_doc *d = run_json(a2, NULL);
    const bn_json *text = bn_json_get(bn_json_root(d), "text");
    /* the JSON writer replaces invalid UTF-8 by U+FFFD: compare after the same replacement;
     * stdout (a pipe here) ends with one newline after the answer */
    assert_true(strlen(streamed) > 0);
    assert_int_equal(streamed[strlen(streamed) - 1], '\n');
    char *answer = strdup(streamed);
    assert_non_null(answer);
    size_t n_out = strlen(answer);
    if (text->len == 0 || text->str[text->len - 1] != '\n')
        answer[n_out - 1] = 0; /* the newline bitnet-run adds, not part of the answer */
    char *clean = as_json_text(answer);
    assert_string_equal(clean, text->str);
    free(clean);
    free(answer);

    char *pf = bn_test_tmpfile(".txt");
    bn_test_write_file(pf, "hello world\n", 12);
    const char *a3[] = {"bitnet-run", "-m",     model, "-f",     pf,   "-n", "16", "--temp",
                        "0.7",        "--seed", "3",   "--json", "-t", "1",  NULL};
    bn_json_doc *d3 = run_json(a3, NULL);
    assert_true(bn_json_equal(bn_json_root(d3), bn_json_root(d)) ||
                (bn_json_equal(bn_json_get(bn_json_root(d3), "tokens"),
                               bn_json_get(bn_json_root(d), "tokens")) &&
                 bn_json_equal(bn_json_get(bn_json_root(d3), "prompt_tokens"),
                               bn_json_get(bn_json_root(d), "prompt_tokens"))));

    /* --stop: output ends before the first occurrence of the stop string */
    size_t sl = strlen(streamed), at = sl / 2;
    while (at + 3 < sl &&
           !(printable(streamed[at]) && printable(streamed[at + 1]) && printable(streamed[at + 2])))
        at++;
    if (at + 3 >= sl)
        fail_msg("no 3 printable bytes in the second half of \"%s\": change the seed", streamed);
    {
        char stop[4] = {streamed[at], streamed[at + 1], streamed[at + 2], 0};
        {
            const char *a4[] = {"bitnet-run", "-m",     model, "-p",     "hello world", "-n",
                                "16",         "--temp", "0.7", "--seed", "3",           "--stop",
                                "\x01zz",     "--stop", stop,  "-t",     "1",           NULL};
            char *out4 = NULL;
            assert_int_equal(run(a4, NULL, &out4, &err), 0);
            assert_non_null(strstr(err, "stop: stop_string"));
            size_t want = (size_t)(strstr(streamed, stop) - streamed);
            assert_int_equal(strlen(out4), want + (want == 0 || streamed[want - 1] != '\n'));
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

/* What a new user runs into: -f carries the reason and reads stdin for "-", --dump-logits
 * names why it cannot write, --json works with --tokenize/--detokenize, and greedy --json
 * reports no seed (there was no draw). */
static void test_messages_and_json(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    const char *nofile[] = {"bitnet-run", "-m", model, "-f", "/nonexistent/p.txt", NULL};
    assert_int_equal(run(nofile, NULL, &out, &err), 1); /* an I/O error */
    assert_non_null(strstr(err, "cannot read '/nonexistent/p.txt': No such file or directory"));
    free(out);
    free(err);

    /* -f - and -p give the same prompt tokens (one trailing newline dropped from stdin) */
    const char *a_stdin[] = {"bitnet-run", "-m", model,    "-f", "-", "-n", "2",
                             "--temp",     "0",  "--json", "-t", "1", NULL};
    assert_int_equal(run(a_stdin, "hello world\n", &out, &err), 0);
    bn_json_doc *d1 = bn_json_parse(out, strlen(out), NULL, NULL);
    assert_non_null(d1);
    free(out);
    free(err);
    const char *a_p[] = {"bitnet-run", "-m", model,    "-p", "hello world", "-n", "2",
                         "--temp",     "0",  "--json", "-t", "1",           NULL};
    bn_json_doc *d2 = run_json(a_p, NULL);
    assert_true(bn_json_equal(bn_json_get(bn_json_root(d1), "prompt_tokens"),
                              bn_json_get(bn_json_root(d2), "prompt_tokens")));
    const bn_json *seed = bn_json_get(bn_json_root(d2), "seed");
    assert_non_null(seed);
    assert_int_equal(seed->type, BN_JSON_NULL);
    bn_json_free(d1);
    bn_json_free(d2);
    const char *a_seed[] = {"bitnet-run", "-m", model,    "-p", "hello", "-n", "2",
                            "--seed",     "42", "--json", "-t", "1",     NULL};
    d2 = run_json(a_seed, NULL);
    assert_int_equal(bn_json_get(bn_json_root(d2), "seed")->i64, 42);
    bn_json_free(d2);

    if (access("/dev/full", W_OK) == 0) {
        const char *full[] = {"bitnet-run",    "-m",        model, "-p", "x", "-n", "2",
                              "--dump-logits", "/dev/full", "-t",  "1",  NULL};
        assert_int_equal(run(full, NULL, &out, &err), 1);
        assert_non_null(
            strstr(err, "--dump-logits: cannot write '/dev/full': No space left on device"));
        free(out);
        free(err);
    } else {
        print_message("SKIP: /dev/full part (no /dev/full)\n");
    }

    /* in range, so accepted: a penalty below float's normal range, and a window larger than
     * any context (it used to allocate 2^31 entries: "out of memory for 384 tokens") */
    const char *tiny_pen[] = {
        "bitnet-run",      "-m",         model, "-p", "x", "-n", "4", "--repeat-penalty", "1e-38",
        "--repeat-last-n", "2147483647", "-t",  "1",  NULL};
    if (run(tiny_pen, NULL, &out, &err) != 0)
        fail_msg("--repeat-penalty 1e-38 --repeat-last-n 2147483647: %s", err);
    assert_non_null(strstr(err, "stop: length"));
    free(out);
    free(err);

    /* -cnv --json: one object per line per answer (JSON Lines), no prompts in between */
    const char *cj[] = {"bitnet-run", "-m",     model, "-cnv", "--json", "-n",
                        "2",          "--temp", "0",   "-t",   "1",      NULL};
    assert_int_equal(run(cj, "hi\nthere\n", &out, &err), 0);
    int lines = 0;
    for (char *line = out, *nl; (nl = strchr(line, '\n')); line = nl + 1, lines++) {
        bn_json_doc *d = bn_json_parse(line, (size_t)(nl - line), NULL, NULL);
        if (!d)
            fail_msg("-cnv --json line %d is not one JSON object: %.*s", lines, (int)(nl - line),
                     line);
        assert_non_null(bn_json_get(bn_json_root(d), "tokens"));
        bn_json_free(d);
    }
    assert_int_equal(lines, 2);
    free(out);
    free(err);

    const char *tok[] = {"bitnet-run", "-m", model, "--tokenize", "hello", "--json", NULL};
    d1 = run_json_nostats(tok);
    const bn_json *ids = bn_json_get(bn_json_root(d1), "tokens");
    assert_non_null(ids);
    assert_int_equal(ids->type, BN_JSON_ARRAY);
    assert_int_equal(bn_json_get(bn_json_root(d1), "n_tokens")->i64, (int64_t)ids->len);
    char *list = ids_arg(ids);
    const char *detok[] = {"bitnet-run", "-m", model, "--detokenize", list, "--json", NULL};
    d2 = run_json_nostats(detok);
    assert_string_equal(bn_json_get(bn_json_root(d2), "text")->str, "hello");
    free(list);
    bn_json_free(d1);
    bn_json_free(d2);
}

/* -cnv reads one user turn per line; each turn prints a prompt and a timings line; the second
 * turn evaluates only its own tokens plus the previous turn's last token. */
static void test_conversation(void **state)
{
    (void)state;
    const char *argv[] = {"bitnet-run", "-m",     model, "-cnv", "-sys", "be kind", "-n",
                          "4",          "--temp", "0",   "-t",   "1",    NULL};
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

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* A model whose general.name says "synthetic" gets exactly one warning line, whatever the
 * mode; the same weights under another name get none. */
static void test_synthetic_warning(void **state)
{
    (void)state;
    const char *w = "synthetic model (random weights): output is meaningless";
    char *out = NULL, *err = NULL;
    const char *gen[] = {"bitnet-run", "-m", model, "-p", "x", "-n", "2", "-t", "1", NULL};
    assert_int_equal(run(gen, NULL, &out, &err), 0);
    assert_int_equal(count_of(err, w), 1);
    assert_non_null(strstr(err, "general.name \"bitnet2b-synthetic-tiny\""));
    free(out);
    free(err);
    const char *cnv[] = {"bitnet-run", "-m", model, "-cnv", "-n", "2", "-t", "1", NULL};
    assert_int_equal(run(cnv, "a\nb\n", &out, &err), 0);
    assert_int_equal(count_of(err, w), 1); /* once per run, not per turn */
    free(out);
    free(err);

    bn_err e = {0};
    bn_synth_params p;
    char *named = bn_test_tmpfile(".gguf");
    assert_int_equal(bn_synth_preset("tiny", &p, &e), 0);
    snprintf(p.name, sizeof p.name, "bitnet-b1.58-2B-4T");
    assert_int_equal(bn_synth_write(&p, named, &e), 0);
    const char *real[] = {"bitnet-run", "-m", named, "-p", "x", "-n", "2", "-t", "1", NULL};
    assert_int_equal(run(real, NULL, &out, &err), 0);
    assert_int_equal(count_of(err, w), 0);
    free(out);
    free(err);
    unlink(named);
    free(named);
}

/* Flags that bitnet.cpp's scripts and llama-cli users pass: accepted; -e turns escapes into
 * the characters they name; -i is -cnv and -no-cnv undoes it; -r stops like --stop; -ngl and
 * friends are ignored and --verbose says so; a context past the training one only warns. */
static void test_llama_cli_flags(void **state)
{
    (void)state;
    const char *esc[] = {"bitnet-run", "-m", model, "-p",     "a\\tb\\nc\\x41\\\\",
                         "-e",         "-n", "1",   "--temp", "0",
                         "--json",     "-t", "1",   NULL};
    const char *raw[] = {"bitnet-run",
                         "-m",
                         model,
                         "-p",
                         "a\tb\nc"
                         "A\\",
                         "-n",
                         "1",
                         "--temp",
                         "0",
                         "--json",
                         "-t",
                         "1",
                         NULL};
    bn_json_doc *d1 = run_json(esc, NULL), *d2 = run_json(raw, NULL);
    assert_true(bn_json_equal(bn_json_get(bn_json_root(d1), "prompt_tokens"),
                              bn_json_get(bn_json_root(d2), "prompt_tokens")));
    bn_json_free(d1);
    bn_json_free(d2);

    char *out = NULL, *err = NULL;
    const char *ignored[] = {"bitnet-run", "-m",   model, "-p",      "x",       "-n",
                             "2",          "-ngl", "99",  "--color", "--mlock", "--no-mmap",
                             "--verbose",  "-t",   "1",   NULL};
    assert_int_equal(run(ignored, NULL, &out, &err), 0);
    assert_non_null(strstr(err, "-ngl 99 ignored: this engine runs on the CPU only"));
    assert_non_null(strstr(err, "ignored: --color --mlock --no-mmap"));
    free(out);
    free(err);

    /* -i reads turns from stdin like -cnv; -no-cnv after it turns chat off again */
    const char *inter[] = {"bitnet-run", "-m", model, "-i", "-n", "2", "-t", "1", NULL};
    assert_int_equal(run(inter, "hi\n", &out, &err), 0);
    assert_non_null(strstr(out, "\n> "));
    free(out);
    free(err);
    const char *nocnv[] = {"bitnet-run", "-m", model, "-i", "-no-cnv", "-p",
                           "x",          "-n", "2",   "-t", "1",       NULL};
    assert_int_equal(run(nocnv, "hi\n", &out, &err), 0);
    assert_null(strstr(out, "> "));
    free(out);
    free(err);

    /* -r: the first generated piece as a reverse prompt ends the answer before it */
    const char *first[] = {"bitnet-run", "-m",     model, "-p", "hello", "-n",
                           "6",          "--temp", "0",   "-t", "1",     NULL};
    assert_int_equal(run(first, NULL, &out, &err), 0);
    free(err);
    if (strlen(out) >= 4) {
        char stop[3] = {out[2], out[3], 0};
        const char *rev[] = {"bitnet-run", "-m", model, "-p", "hello", "-n", "6",
                             "--temp",     "0",  "-r",  stop, "-t",    "1",  NULL};
        char *out2 = NULL;
        assert_int_equal(run(rev, NULL, &out2, &err), 0);
        assert_non_null(strstr(err, "stop: stop_string"));
        assert_true(strlen(out2) < strlen(out));
        free(out2);
        free(err);
    }
    free(out);

    const char *big[] = {"bitnet-run", "-m", model,  "-p", "x", "-n",
                         "1",          "-c", "8192", "-t", "1", NULL};
    assert_int_equal(run(big, NULL, &out, &err), 0);
    assert_non_null(strstr(err, "warning: context 8192 is larger than the model's training "
                                "context 4096"));
    free(out);
    free(err);
}

/* Ctrl-C, with a real SIGINT: a generation that would run for seconds (greedy on the tiny
 * model fills the 4096-token context without meeting EOS) stops, prints its newline and the
 * timings line ("stop: interrupted") and exits 130. In -cnv the first SIGINT ends the answer
 * and the prompt comes back; a SIGINT at the prompt exits 130. */
static void test_ctrl_c(void **state)
{
    (void)state;
    const char *argv[] = {"bitnet-run", "-m",   model,    "-p", "hello", "-n", "-1",
                          "-c",         "4096", "--temp", "0",  "-t",    "1",  NULL};
    const bn_test_signal once[] = {{"", 16, SIGINT}};
    char *out = NULL, *err = NULL;
    int rc = bn_test_run_signals(argv, NULL, once, 1, &out, &err);
    if (rc != 130 || !strstr(err, "stop: interrupted"))
        fail_msg("exit %d (want 130), stderr: %s", rc, err);
    unsigned gen = 0;
    const char *g = strstr(err, "| generation ");
    assert_non_null(g);
    assert_int_equal(sscanf(g, "| generation %u tokens", &gen), 1);
    assert_true(gen > 0 && gen < 4000);
    assert_true(strlen(out) >= 16);
    assert_int_equal(out[strlen(out) - 1], '\n');
    free(out);
    free(err);

    const char *cnv[] = {"bitnet-run", "-m",   model,    "-cnv", "-sys", "be kind", "-n", "-1",
                         "-c",         "4096", "--temp", "0",    "-t",   "1",       NULL};
    const bn_test_signal twice[] = {{"> ", 16, SIGINT}, {"\n> ", 0, SIGINT}};
    rc = bn_test_run_signals(cnv, "hi there\n", twice, 2, &out, &err);
    if (rc != 130)
        fail_msg("-cnv: exit %d (want 130), stdout: %s\nstderr: %s", rc, out, err);
    int timings = 0;
    for (const char *p = err; (p = strstr(p, "stop: ")); p += 6)
        timings++;
    assert_int_equal(timings, 1); /* one answer, cut short */
    assert_non_null(strstr(err, "stop: interrupted"));
    const char *second = strstr(strstr(out, "\n> ") + 3, "\n> ");
    assert_non_null(second); /* the prompt came back after the interrupted answer */
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_inputs_exit_2),
        cmocka_unit_test(test_file_errors_exit_1),
        cmocka_unit_test(test_golden_tiny_a),
        cmocka_unit_test(test_seed_reproducible),
        cmocka_unit_test(test_dump_logits),
        cmocka_unit_test(test_tokenize_round_trip),
        cmocka_unit_test(test_help_version_inspect),
        cmocka_unit_test(test_stream_file_and_stop),
        cmocka_unit_test(test_conversation),
        cmocka_unit_test(test_messages_and_json),
        cmocka_unit_test(test_ctrl_c),
        cmocka_unit_test(test_llama_cli_flags),
        cmocka_unit_test(test_synthetic_warning),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
