/* SentencePiece tokenizer rules on a hand-made vocabulary (the reference goldens are in
 * test_tokenizer_golden): score order and leftmost tie-break, byte fallback and UNK, the prefix
 * space at the start and after every special token, add_space_prefix/add_eos_token,
 * user-defined vs control tokens, decoding (U+2581, bytes, unused tokens, the leading-space
 * rule) and load errors. */
#include "testutil.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_fixture.h"
#include "gguf_writer.h"
#include "tokenizer.h"

#define SP "\xE2\x96\x81" /* U+2581, SentencePiece's space */

enum {
    UNK,
    BOS,
    EOS,
    BYTE0
};
enum {
    T_SP = BYTE0 + 256,
    T_A,
    T_B,
    T_C,
    T_X,
    T_Y,
    T_Z,
    T_AB,
    T_BC,
    T_XY,
    T_YZ,
    T_SPAB,
    T_USER,
    T_CTRL,
    T_PAD,
    N_TOK
};

typedef struct spec {
    int add_space_prefix; /* -1: no key */
    int add_eos;          /* -1: no key */
    bool no_bytes;        /* no <0xNN> tokens (then a missing character is UNK) */
    bool bad_byte;        /* a BYTE token that is not <0xNN> */
    int scores_delta;     /* scores array length - n_vocab */
} spec;

static const spec BASE = {-1, -1, false, false, 0};

static uint8_t *build(const spec *s, size_t *len)
{
    char *tok[N_TOK];
    float score[N_TOK + 1];
    int32_t type[N_TOK];
    for (int i = 0; i < N_TOK; i++) {
        type[i] = 1;
        score[i] = -100.0f;
    }
    tok[UNK] = strdup("<unk>");
    tok[BOS] = strdup("<s>");
    tok[EOS] = strdup("</s>");
    type[UNK] = 2;
    type[BOS] = type[EOS] = 3;
    for (int b = 0; b < 256; b++) {
        tok[BYTE0 + b] = malloc(8);
        if (s->no_bytes)
            snprintf(tok[BYTE0 + b], 8, "[B%02X]", b); /* ordinary tokens no text hits */
        else
            snprintf(tok[BYTE0 + b], 8, "<0x%02X>", b);
        type[BYTE0 + b] = s->no_bytes ? 1 : 6;
    }
    if (s->bad_byte)
        strcpy(tok[BYTE0 + 7], "<0xZZ>");
    const char *text[] = {SP, "a", "b", "c", "x", "y", "z", "ab", "bc", "xy", "yz", SP "ab"};
    for (int i = 0; i < 12; i++)
        tok[T_SP + i] = strdup(text[i]);
    score[T_AB] = score[T_BC] = -5.0f; /* a tie: the leftmost pair wins */
    score[T_XY] = -5.0f;
    score[T_YZ] = -1.0f; /* the better score wins wherever it is */
    score[T_SPAB] = -0.5f;
    tok[T_USER] = strdup("<u>");
    type[T_USER] = 4;
    tok[T_CTRL] = strdup("<c>");
    type[T_CTRL] = 3;
    tok[T_PAD] = strdup("[PAD1]");
    type[T_PAD] = 5;
    bn_gguf_writer *w = bn_gguf_writer_new();
    bn_gguf_writer_add_str(w, "general.architecture", "bitnet");
    bn_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
    bn_gguf_writer_add_str(w, "tokenizer.ggml.pre", "default");
    bn_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, N_TOK);
    bn_gguf_writer_add_arr(w, "tokenizer.ggml.scores", BN_GGUF_F32, score,
                           (uint64_t)(N_TOK + s->scores_delta));
    bn_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", BN_GGUF_I32, type, N_TOK);
    if (s->add_space_prefix >= 0)
        bn_gguf_writer_add_bool(w, "tokenizer.ggml.add_space_prefix", s->add_space_prefix);
    if (s->add_eos >= 0)
        bn_gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", s->add_eos);
    bn_err err = {0};
    uint8_t *buf = bn_fixture_write(w, 0, NULL, NULL, len, &err);
    if (!buf)
        fail_msg("writing the vocabulary: %s", err.msg);
    for (int i = 0; i < N_TOK; i++)
        free(tok[i]);
    return buf;
}

typedef struct fixture {
    uint8_t *buf;
    bn_gguf *g;
    bn_tokenizer *t;
} fixture;

static fixture load(const spec *s, bn_err *err)
{
    fixture f = {0};
    size_t len;
    f.buf = build(s, &len);
    f.g = bn_gguf_open_memory(f.buf, len, err);
    assert_non_null(f.g);
    f.t = bn_tokenizer_load(f.g, err);
    return f;
}

static void unload(fixture *f)
{
    bn_tokenizer_free(f->t);
    bn_gguf_close(f->g);
    free(f->buf);
}

/* Tokenizes TEXT and compares with the N ids that follow. */
static void expect(const bn_tokenizer *t, const char *text, bn_bos_mode bos, bool special, int n,
                   ...)
{
    bn_tokenize_opts o = {bos, special, BN_PRE_AUTO};
    int32_t *ids;
    size_t got;
    bn_err err = {0};
    if (bn_tokenize(t, text, strlen(text), &o, &ids, &got, &err))
        fail_msg("tokenize '%s': %s", text, err.msg);
    va_list ap;
    va_start(ap, n);
    bool same = got == (size_t)n;
    for (int i = 0; i < n; i++) {
        int32_t want = va_arg(ap, int32_t);
        if (same && ids[i] != want)
            same = false;
    }
    va_end(ap);
    if (!same) {
        char buf[256] = "";
        for (size_t i = 0; i < got && strlen(buf) < 200; i++)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), " %d", ids[i]);
        fail_msg("'%s' (bos %d, special %d): got%s, want %d ids", text, bos, special, buf, n);
    }
    free(ids);
}

static void test_merges(void **state)
{
    (void)state;
    bn_err err = {0};
    fixture f = load(&BASE, &err);
    assert_non_null(f.t);
    assert_true(bn_tokenizer_is_spm(f.t));
    assert_int_equal(bn_tokenizer_bos(f.t), BOS); /* llama.cpp's defaults 1 and 2 */
    assert_int_equal(bn_tokenizer_eos(f.t), EOS);
    expect(f.t, "", BN_BOS_NEVER, false, 0);
    expect(f.t, "", BN_BOS_DEFAULT, false, 1, BOS);
    /* "▁ab" is one token with the best score; then "▁ab" never forms from "▁" + "a" alone */
    expect(f.t, "ab", BN_BOS_NEVER, false, 1, T_SPAB);
    /* ab and bc tie at -5: the leftmost pair merges first */
    expect(f.t, "abc", BN_BOS_NEVER, false, 2, T_SPAB, T_C);
    expect(f.t, " bbc", BN_BOS_NEVER, false, 4, T_SP, T_SP, T_B, T_BC);
    /* yz (-1) beats xy (-5) although xy is further left */
    expect(f.t, "xyz", BN_BOS_NEVER, false, 3, T_SP, T_X, T_YZ);
    /* a character that is no token: its UTF-8 bytes */
    expect(f.t, "\xC3\xA9", BN_BOS_NEVER, false, 3, T_SP, BYTE0 + 0xC3, BYTE0 + 0xA9);
    /* a tab and a newline are not spaces */
    expect(f.t, "a\tb", BN_BOS_NEVER, false, 4, T_SP, T_A, BYTE0 + 9, T_B);
    unload(&f);
}

static void test_specials(void **state)
{
    (void)state;
    bn_err err = {0};
    fixture f = load(&BASE, &err);
    assert_non_null(f.t);
    /* user-defined: split out even as plain text; the text after it gets its own prefix space */
    expect(f.t, "<u>ab", BN_BOS_NEVER, false, 2, T_USER, T_SPAB);
    expect(f.t, "ab<u>ab", BN_BOS_NEVER, false, 3, T_SPAB, T_USER, T_SPAB);
    /* control: only with parse_special; as text its characters are tokens or bytes */
    expect(f.t, "<c>ab", BN_BOS_NEVER, true, 2, T_CTRL, T_SPAB);
    expect(f.t, "<c>ab", BN_BOS_NEVER, false, 5, T_SP, BYTE0 + '<', T_C, BYTE0 + '>', T_AB);
    expect(f.t, "<s>", BN_BOS_DEFAULT, true, 2, BOS, BOS);
    unload(&f);
}

static void test_flags(void **state)
{
    (void)state;
    bn_err err = {0};
    spec s = BASE;
    s.add_space_prefix = 0;
    s.add_eos = 1;
    fixture f = load(&s, &err);
    assert_non_null(f.t);
    expect(f.t, "ab", BN_BOS_NEVER, false, 1, T_AB);
    expect(f.t, "<u>ab", BN_BOS_NEVER, false, 2, T_USER, T_AB);
    /* EOS with the specials BOS mode adds, not with NEVER */
    expect(f.t, "ab", BN_BOS_DEFAULT, false, 3, BOS, T_AB, EOS);
    expect(f.t, "ab", BN_BOS_ALWAYS, false, 3, BOS, T_AB, EOS);
    unload(&f);
    s = BASE;
    s.no_bytes = true;
    f = load(&s, &err);
    assert_non_null(f.t);
    expect(f.t, "a\xC3\xA9", BN_BOS_NEVER, false, 4, T_SP, T_A, UNK, UNK);
    unload(&f);
}

static char *decode(const bn_tokenizer *t, const int32_t *ids, size_t n, bool special)
{
    char *out;
    size_t len;
    bn_err err = {0};
    if (bn_detokenize(t, ids, n, special, &out, &len, &err))
        fail_msg("detokenize: %s", err.msg);
    return out;
}

static void test_decode(void **state)
{
    (void)state;
    bn_err err = {0};
    fixture f = load(&BASE, &err);
    assert_non_null(f.t);
    const int32_t a[] = {T_SPAB, T_SP, BYTE0 + 0xC3, BYTE0 + 0xA9, T_PAD, T_C};
    char *s = decode(f.t, a, 6, false);
    assert_string_equal(s, "ab \xC3\xA9"
                           "c"); /* first space dropped, [PAD1] is nothing */
    free(s);
    const int32_t b[] = {BOS, T_SPAB};
    s = decode(f.t, b, 2, false); /* after a BOS the space stays */
    assert_string_equal(s, " ab");
    free(s);
    s = decode(f.t, b, 2, true);
    assert_string_equal(s, "<s> ab");
    free(s);
    size_t len;
    const char *p = bn_token_bytes(f.t, T_SPAB, false, &len); /* streaming keeps the space */
    assert_int_equal(len, 3);
    assert_memory_equal(p, " ab", 3);
    p = bn_token_bytes(f.t, T_USER, false, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(p, "<u>", 3);
    unload(&f);
    spec sp = BASE;
    sp.add_space_prefix = 0; /* nothing is dropped then */
    f = load(&sp, &err);
    s = decode(f.t, a, 1, false);
    assert_string_equal(s, " ab");
    free(s);
    unload(&f);
}

static void expect_load_error(const spec *s, const char *needle)
{
    bn_err err = {0};
    fixture f = load(s, &err);
    if (f.t)
        fail_msg("loaded, expected an error mentioning '%s'", needle);
    if (!strstr(err.msg, needle))
        fail_msg("error '%s' does not mention '%s'", err.msg, needle);
    unload(&f);
}

static void test_load_errors(void **state)
{
    (void)state;
    spec s = BASE;
    s.bad_byte = true;
    expect_load_error(&s,
                      "tokenizer.ggml.tokens[10] \"<0xZZ>\" has type BYTE but is not \"<0xNN>\"");
    s = BASE;
    s.scores_delta = -1;
    expect_load_error(&s, "tokenizer.ggml.scores has");
}

/* Over 1 GiB of text is refused before any byte is read (32-bit offsets of the escaped text). */
static void test_text_limit(void **state)
{
    (void)state;
    bn_err err = {0};
    fixture f = load(&BASE, &err);
    assert_non_null(f.t);
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(bn_tokenize(f.t, "ab", ((size_t)1 << 30) + 1, NULL, &ids, &n, &err), -1);
    assert_int_equal(err.code, BN_E_INPUT);
    assert_non_null(strstr(err.msg, "too long for a SentencePiece vocabulary"));
    assert_null(ids);
    unload(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merges),      cmocka_unit_test(test_specials),
        cmocka_unit_test(test_flags),       cmocka_unit_test(test_decode),
        cmocka_unit_test(test_load_errors), cmocka_unit_test(test_text_limit),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
