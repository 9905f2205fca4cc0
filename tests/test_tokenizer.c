/* Tokenizer unit tests on a hand-made byte-level vocabulary written in memory (no shared data):
 * loading and its errors, BPE by merge rank (scan and heap agree; a 100 KB word stays
 * linear-ish), whole-piece lookup, special tokens, BOS modes,
 * invalid UTF-8, whole and streaming decode. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf_fixture.h"
#include "tokenizer.h"
#include "tokenizer_impl.h"
#include "unicode.h"

/* ------------------------------------------------------------------ the vocabulary */

/* GPT-2's byte-to-unicode map, written from its definition: printable Latin-1 bytes stand for
 * themselves, the other 68 bytes for U+0100.. in byte order. Returns the UTF-8 of byte b. */
static void gpt2_char(uint8_t b, char out[3])
{
    int cp = b, extra = 0;
    bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    if (!self) {
        for (int x = 0; x < b; x++)
            if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE))
                extra++;
        cp = 0x100 + extra;
    }
    memset(out, 0, 3);
    if (cp < 0x80) {
        out[0] = (char)cp;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
    }
}

/* GPT-2 form of raw bytes ("Ġw" for " w"). */
static char *gpt2_text(const char *raw)
{
    char *o = malloc(strlen(raw) * 2 + 1), c[3];
    o[0] = 0;
    for (const char *p = raw; *p; p++) {
        gpt2_char((uint8_t)*p, c);
        strcat(o, c);
    }
    return o;
}

/* Merges in rank order, raw bytes "left|right"; each result becomes the next token. */
static const char *const MERGES[] = {
    "h|e", "l|l",   "he|ll", "hell|o", " |w", "o|r",   " w|or", "l|d", " wor|ld",
    "a|a", "aa|aa", "1|2",   "12|3",   "a|b", "ab|ab", "c|d",   "b|c",
};
#define N_MERGES (sizeof MERGES / sizeof *MERGES)
enum {
    T_HE = 256,
    T_LL,
    T_HELL,
    T_HELLO,
    T_SW,
    T_OR,
    T_SWOR,
    T_LD,
    T_SWORLD,
    T_AA,
    T_AAAA,
    T_12,
    T_123,
    T_AB,
    T_ABAB,
    T_CD,
    T_BC,
    T_XYZ, /* a token no merge reaches: only whole-piece lookup finds it */
    T_BOS,
    T_EOS,
    T_EOT,
    T_USER,
    N_VOCAB
};

typedef struct spec {
    const char *model; /* tokenizer.ggml.model */
    const char *pre;   /* tokenizer.ggml.pre, NULL = absent */
    int types_delta;   /* token_type array length - n_vocab */
    bool no_types;
    const char *bad_merge; /* appended to the merges */
    bool drop_byte_q;      /* no token for byte 'q' */
    long bos_id;           /* -1: no key */
    bool eot_key;
    int add_bos;        /* -1: no key */
    size_t big_control; /* > 0: the EOS text becomes that many 'a' then 'b' */
    size_t big_normal;  /* > 0: token "xyz" becomes that many 'x' */
} spec;

static const spec BASE = {"gpt2", NULL, 0, false, NULL, false, T_BOS, false, -1, 0, 0};

/* n copies of c, then tail (malloc'd). */
static char *repeat(char c, size_t n, const char *tail)
{
    char *p = malloc(n + strlen(tail) + 1);
    memset(p, c, n);
    strcpy(p + n, tail);
    return p;
}

static uint8_t *build_vocab(const spec *s, size_t *len)
{
    char *tokens[N_VOCAB];
    int32_t types[N_VOCAB + 4];
    char *merges[N_MERGES + 1];
    size_t n_merges = 0;
    char c[3];
    for (int b = 0; b < 256; b++) {
        gpt2_char((uint8_t)b, c);
        tokens[b] = strdup(s->drop_byte_q && b == 'q' ? "qq" : c);
        types[b] = 1;
    }
    for (size_t i = 0; i < N_MERGES; i++) {
        char raw[32];
        strcpy(raw, MERGES[i]);
        char *bar = strchr(raw, '|');
        *bar = 0;
        char *l = gpt2_text(raw), *r = gpt2_text(bar + 1);
        merges[n_merges] = malloc(strlen(l) + strlen(r) + 2);
        sprintf(merges[n_merges++], "%s %s", l, r);
        tokens[256 + i] = malloc(strlen(l) + strlen(r) + 1);
        sprintf(tokens[256 + i], "%s%s", l, r);
        types[256 + i] = 1;
        free(l);
        free(r);
    }
    if (s->bad_merge)
        merges[n_merges++] = strdup(s->bad_merge);
    tokens[T_XYZ] = s->big_normal ? repeat('x', s->big_normal, "") : strdup("xyz");
    types[T_XYZ] = 1;
    tokens[T_BOS] = strdup("<|begin_of_text|>");
    tokens[T_EOS] = s->big_control ? repeat('a', s->big_control, "b") : strdup("<|end_of_text|>");
    tokens[T_EOT] = strdup("<|eot_id|>");
    tokens[T_USER] = strdup("<u>");
    types[T_BOS] = types[T_EOS] = types[T_EOT] = 3;
    types[T_USER] = 4;
    for (int i = N_VOCAB; i < N_VOCAB + 4; i++)
        types[i] = 1;
    bn_gguf_writer *w = bn_gguf_writer_new();
    bn_gguf_writer_add_str(w, "general.architecture", "bitnet-b1.58");
    if (s->add_bos >= 0)
        bn_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", s->add_bos);
    bn_gguf_writer_add_str(w, "tokenizer.ggml.model", s->model);
    if (s->pre)
        bn_gguf_writer_add_str(w, "tokenizer.ggml.pre", s->pre);
    bn_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tokens, N_VOCAB);
    if (!s->no_types)
        bn_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", BN_GGUF_I32, types,
                               (uint64_t)(N_VOCAB + s->types_delta));
    bn_gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", (const char *const *)merges, n_merges);
    if (s->bos_id >= 0)
        bn_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)s->bos_id);
    bn_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", T_EOS);
    if (s->eot_key)
        bn_gguf_writer_add_u32(w, "tokenizer.ggml.eot_token_id", T_EOS);
    bn_err err = {0};
    uint8_t *buf = bn_fixture_write(w, 0, NULL, NULL, len, &err);
    if (!buf)
        fail_msg("writing the vocabulary: %s", err.msg);
    for (int i = 0; i < N_VOCAB; i++)
        free(tokens[i]);
    for (size_t i = 0; i < n_merges; i++)
        free(merges[i]);
    return buf;
}

typedef struct fixture {
    uint8_t *buf;
    bn_gguf *g;
    bn_tokenizer *t;
} fixture;

/* Loads a vocabulary built from S; returns NULL tokenizer (message in err) on load failure. */
static fixture load(const spec *s, bn_err *err)
{
    fixture f = {0};
    size_t len;
    f.buf = build_vocab(s, &len);
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

/* A 2 MiB control token of 'a's (then 'b') against 4 MiB of text made of 'a's: the scan used to
 * compare the token at every position (~2^42 byte comparisons, minutes of CPU); it is linear
 * now (well under a second), and finds the token where it is. The alarm turns the old
 * behaviour into a failure instead of a hang. */
static void test_special_scan_linear(void **state)
{
    (void)state;
    spec sp = BASE;
    sp.big_control = 2u << 20;
    bn_err err = {0};
    fixture f = load(&sp, &err);
    if (!f.t)
        fail_msg("load: %s", err.msg);
    const size_t n = 4u << 20;
    char *text = repeat('a', n, "");
    /* the special at byte 3: "xyz" + special + 'a's */
    memcpy(text, "xyz", 3);
    memset(text + 3 + (2u << 20), 'b', 1);
    bn_tokenize_opts o = {BN_BOS_NEVER, true, BN_PRE_AUTO};
    int32_t *ids = NULL;
    size_t n_ids = 0;
    alarm(60);
    assert_int_equal(bn_tokenize(f.t, text, n, &o, &ids, &n_ids, &err), 0);
    assert_true(n_ids >= 2);
    assert_int_equal(ids[0], T_XYZ);
    assert_int_equal(ids[1], T_EOS);
    for (size_t i = 2; i < n_ids; i++)
        assert_int_not_equal(ids[i], T_EOS);
    free(ids);
    /* all 'a's: no match anywhere (the token ends in 'b') */
    memset(text, 'a', n);
    assert_int_equal(bn_tokenize(f.t, text, n, &o, &ids, &n_ids, &err), 0);
    alarm(0);
    for (size_t i = 0; i < n_ids; i++)
        assert_int_not_equal(ids[i], T_EOS);
    free(ids);
    free(text);
    unload(&f);
}

/* The merge scratch is sized from the merges, not the longest token: a 16 MiB token made the
 * loader ask 32 x 32 MiB = 1 GiB up front (a 32 MiB one, before tokens were capped, 2 GiB). */
static void test_merge_scratch_bounded(void **state)
{
    (void)state;
    spec sp = BASE;
    sp.big_normal = (16u << 20) - 1; /* the longest the loader accepts */
    bn_err err = {0};
    fixture f = load(&sp, &err);
    if (!f.t)
        fail_msg("load: %s", err.msg);
    assert_true(f.t->max_text >= (16u << 20) - 1);
    if (f.t->merge_scratch_bytes > 64 * 1024)
        fail_msg("loading the merges took a %zu-byte buffer", f.t->merge_scratch_bytes);
    unload(&f);
}

static int setup(void **state)
{
    fixture *f = malloc(sizeof *f);
    bn_err err = {0};
    *f = load(&BASE, &err);
    if (!f->t)
        fail_msg("load: %s", err.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    unload(*state);
    free(*state);
    return 0;
}

/* Tokenizes TEXT (n bytes) and compares with the WANT list terminated by -1. */
static void expect(const bn_tokenizer *t, const char *text, size_t n, bn_tokenize_opts o,
                   const int32_t *want)
{
    int32_t *ids;
    size_t k;
    bn_err err = {0};
    assert_int_equal(bn_tokenize(t, text, n, &o, &ids, &k, &err), 0);
    size_t nw = 0;
    while (want[nw] >= 0)
        nw++;
    if (k != nw || memcmp(ids, want, k * sizeof *ids)) {
        print_message("tokens of \"%.*s\":", (int)n, text);
        for (size_t i = 0; i < k; i++)
            print_message(" %d", ids[i]);
        print_message("\n");
        fail_msg("wrong ids (%zu, expected %zu)", k, nw);
    }
    /* whatever the ids, decoding with special names gives the text back */
    char *out;
    size_t ol;
    assert_int_equal(bn_detokenize(t, ids, k, true, &out, &ol, &err), 0);
    int32_t bos = bn_tokenizer_bos(t);
    size_t skip = (k > 0 && ids[0] == bos && (o.bos != BN_BOS_NEVER)) ? strlen("<|begin_of_text|>")
                                                                      : 0;
    assert_int_equal(ol - skip, n);
    assert_memory_equal(out + skip, text, n);
    free(out);
    free(ids);
}

#define IDS(...) ((const int32_t[]){__VA_ARGS__, -1})
static const bn_tokenize_opts PLAIN = {BN_BOS_NEVER, false, BN_PRE_AUTO};
static const bn_tokenize_opts PLAIN_DEFAULT = {BN_BOS_NEVER, false, BN_PRE_DEFAULT};

/* ------------------------------------------------------------------ loading */

static void test_load_facts(void **state)
{
    fixture *f = *state;
    const bn_tokenizer *t = f->t;
    assert_int_equal(bn_tokenizer_n_vocab(t), N_VOCAB);
    assert_int_equal(bn_tokenizer_bos(t), T_BOS);
    assert_int_equal(bn_tokenizer_eos(t), T_EOS);
    assert_int_equal(bn_tokenizer_eot(t), T_EOT);         /* no key: found by its text */
    assert_true(bn_tokenizer_add_bos(t));                 /* no key: default true */
    assert_int_equal(bn_tokenizer_pre(t), BN_PRE_LLAMA3); /* no pre key: Llama 3 */
    assert_true(bn_tokenizer_is_eog(t, T_EOS));
    assert_true(bn_tokenizer_is_eog(t, T_EOT));
    assert_false(bn_tokenizer_is_eog(t, T_BOS));
    assert_false(bn_tokenizer_is_eog(t, -1));
    size_t len;
    const char *txt = bn_tokenizer_token_text(t, T_SWORLD, &len);
    assert_int_equal(len, strlen("\xc4\xa0world"));
    assert_memory_equal(txt, "\xc4\xa0world", len);
    assert_null(bn_tokenizer_token_text(t, N_VOCAB, &len));
    assert_int_equal(bn_tokenizer_find(t, "<|eot_id|>", 10), T_EOT);
    assert_int_equal(bn_tokenizer_find(t, "nope", 4), -1);
    assert_int_equal(bn_tokenizer_find(t, "\xc4\xa0world", 7), T_SWORLD); /* stored form */
    assert_int_equal(bn_tokenizer_find(t, "<u>", 3), T_USER);
    bn_pretokenizer p;
    assert_int_equal(bn_pretokenizer_from_name("default", &p), 0);
    assert_int_equal(p, BN_PRE_DEFAULT);
    assert_int_equal(bn_pretokenizer_from_name("llama-bpe", &p), 0);
    assert_int_equal(p, BN_PRE_LLAMA3);
    assert_int_equal(bn_pretokenizer_from_name("qwen2", &p), -1);
}

static void test_load_keys_honoured(void **state)
{
    (void)state;
    bn_err err = {0};
    spec s = BASE;
    s.pre = "default";
    s.add_bos = 0;
    s.eot_key = true;
    fixture f = load(&s, &err);
    assert_non_null(f.t);
    assert_int_equal(bn_tokenizer_pre(f.t), BN_PRE_DEFAULT);
    assert_false(bn_tokenizer_add_bos(f.t));
    assert_int_equal(bn_tokenizer_eot(f.t), T_EOS); /* the key wins over the text */
    /* AUTO now means default: no whole-piece lookup */
    expect(f.t, "xyz", 3, PLAIN, IDS('x', 'y', 'z'));
    expect(f.t, "he", 2, (bn_tokenize_opts){BN_BOS_DEFAULT, false, BN_PRE_AUTO}, IDS(T_HE));
    unload(&f);
    s = BASE;
    s.no_types = true; /* optional: every token is then ordinary */
    s.bos_id = -1;
    f = load(&s, &err);
    assert_non_null(f.t);
    assert_int_equal(bn_tokenizer_bos(f.t), T_BOS); /* by text */
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
    s.model = "bert";
    expect_load_error(&s, "only \"gpt2\" (byte-level BPE) and \"llama\" (SentencePiece)");
    s = BASE;
    s.types_delta = -1;
    expect_load_error(&s, "token_type");
    s = BASE;
    s.bad_merge = "h zz";
    expect_load_error(&s, "merges[17]");
    s = BASE;
    s.bad_merge = "nospace";
    expect_load_error(&s, "left right");
    s = BASE;
    s.bad_merge = "x y"; /* both parts are tokens, "xy" is not */
    expect_load_error(&s, "merged text");
    s = BASE;
    s.drop_byte_q = true;
    expect_load_error(&s, "byte 0x71");
    s = BASE;
    s.bos_id = N_VOCAB;
    expect_load_error(&s, "bos_token_id");
    s = BASE;
    s.pre = "qwen2";
    expect_load_error(&s, "qwen2");
    /* no tokenizer keys at all */
    bn_gguf_writer *w = bn_gguf_writer_new();
    bn_gguf_writer_add_str(w, "general.architecture", "bitnet-b1.58");
    bn_err err = {0};
    size_t len;
    uint8_t *buf = bn_fixture_write(w, 0, NULL, NULL, &len, &err);
    bn_gguf *g = bn_gguf_open_memory(buf, len, &err);
    assert_non_null(g);
    assert_null(bn_tokenizer_load(g, &err));
    assert_non_null(strstr(err.msg, "tokenizer.ggml"));
    bn_gguf_close(g);
    free(buf);
}

/* ------------------------------------------------------------------ encoding */

static void test_bpe_by_rank(void **state)
{
    fixture *f = *state;
    const bn_tokenizer *t = f->t;
    expect(t, "hello", 5, PLAIN_DEFAULT, IDS(T_HELLO));
    expect(t, "hello world", 11, PLAIN_DEFAULT, IDS(T_HELLO, T_SWORLD));
    expect(t, "helloo", 6, PLAIN_DEFAULT, IDS(T_HELLO, 'o'));
    expect(t, "aaa", 3, PLAIN_DEFAULT, IDS(T_AA, 'a')); /* leftmost among equal ranks */
    expect(t, "aaaaa", 5, PLAIN_DEFAULT, IDS(T_AAAA, 'a'));
    expect(t, "bcd", 3, PLAIN_DEFAULT, IDS('b', T_CD)); /* "c d" ranks before "b c" */
    expect(t, "bc", 2, PLAIN_DEFAULT, IDS(T_BC));
    expect(t, "abcd", 4, PLAIN_DEFAULT, IDS(T_AB, T_CD));
    expect(t, "1234", 4, PLAIN, IDS(T_123, '4'));
    expect(t, "", 0, PLAIN, (const int32_t[]){-1});
}

static void test_whole_piece_lookup(void **state)
{
    fixture *f = *state;
    expect(f->t, "xyz", 3, PLAIN, IDS(T_XYZ));                 /* Llama 3: whole piece */
    expect(f->t, "xyz", 3, PLAIN_DEFAULT, IDS('x', 'y', 'z')); /* default: BPE only */
    expect(f->t, " xyz", 4, PLAIN, IDS(' ', 'x', 'y', 'z'));   /* " xyz" is no token */
}

static void test_special_tokens(void **state)
{
    fixture *f = *state;
    const bn_tokenizer *t = f->t;
    const char *s = "he<|eot_id|>he";
    int32_t plain[32], k = 0;
    plain[k++] = T_HE;
    for (const char *p = "<|"; *p; p++)
        plain[k++] = (uint8_t)*p;
    for (const char *p = "eot"; *p; p++)
        plain[k++] = (uint8_t)*p;
    for (const char *p = "_id|>"; *p; p++)
        plain[k++] = (uint8_t)*p;
    plain[k++] = T_HE;
    plain[k] = -1;
    expect(t, s, strlen(s), PLAIN, plain); /* text by default */
    expect(t, s, strlen(s), (bn_tokenize_opts){BN_BOS_NEVER, true, BN_PRE_AUTO},
           IDS(T_HE, T_EOT, T_HE));
    /* user-defined tokens are split out even without special parsing */
    expect(t, "he<u>he", 7, PLAIN, IDS(T_HE, T_USER, T_HE));
    expect(t, "<|begin_of_text|><|eot_id|>", 27, (bn_tokenize_opts){BN_BOS_NEVER, true, 0},
           IDS(T_BOS, T_EOT));
    expect(t, "<|eot_id", 8, (bn_tokenize_opts){BN_BOS_NEVER, true, 0},
           IDS('<', '|', 'e', 'o', 't', '_', 'i', 'd'));
}

static void test_bos_modes(void **state)
{
    fixture *f = *state;
    expect(f->t, "he", 2, (bn_tokenize_opts){BN_BOS_DEFAULT, false, 0}, IDS(T_BOS, T_HE));
    expect(f->t, "he", 2, (bn_tokenize_opts){BN_BOS_ALWAYS, false, 0}, IDS(T_BOS, T_HE));
    expect(f->t, "he", 2, (bn_tokenize_opts){BN_BOS_NEVER, false, 0}, IDS(T_HE));
    expect(f->t, "", 0, (bn_tokenize_opts){BN_BOS_DEFAULT, false, 0}, IDS(T_BOS));
    /* NULL options = defaults */
    int32_t *ids;
    size_t n;
    bn_err err = {0};
    assert_int_equal(bn_tokenize(f->t, "he", 2, NULL, &ids, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], T_BOS);
    free(ids);
    bn_err e2 = {0};
    spec s = BASE;
    s.add_bos = 0;
    fixture g = load(&s, &e2);
    expect(g.t, "he", 2, (bn_tokenize_opts){BN_BOS_DEFAULT, false, 0}, IDS(T_HE));
    expect(g.t, "he", 2, (bn_tokenize_opts){BN_BOS_ALWAYS, false, 0}, IDS(T_BOS, T_HE));
    unload(&g);
}

static void test_invalid_utf8(void **state)
{
    fixture *f = *state;
    /* every byte has a token: invalid sequences come out byte by byte, round trip exact */
    expect(f->t,
           "\xff\xfe"
           "he\xc3",
           5, PLAIN, IDS(0xff, 0xfe, T_HE, 0xc3));
    expect(f->t, "\xed\xa0\x80", 3, PLAIN, IDS(0xed, 0xa0, 0x80)); /* a surrogate */
    expect(f->t,
           "\x00"
           "a",
           2, PLAIN, IDS(0, 'a'));
}

/* Scan and heap BPE agree on random pieces over a small alphabet (many merges apply). */
static void test_bpe_scan_equals_heap(void **state)
{
    fixture *f = *state;
    const char alphabet[] = "abcdhelowr 123";
    uint64_t seed = 12345;
    bn_bpe_scratch s1 = {0}, s2 = {0};
    uint8_t text[600];
    int32_t a[600], b[600];
    for (int iter = 0; iter < 300; iter++) {
        size_t n = 2 + (size_t)(iter * 7 % 590);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            text[i] = (uint8_t)alphabet[(seed >> 33) % (sizeof alphabet - 1)];
        }
        long na = bn_bpe_encode(f->t, text, n, a, &s1, BN_BPE_SCAN);
        long nb = bn_bpe_encode(f->t, text, n, b, &s2, BN_BPE_HEAP);
        assert_true(na > 0);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, (size_t)na * sizeof *a);
    }
    bn_bpe_scratch_free(&s1);
    bn_bpe_scratch_free(&s2);
}

/* A 100 KB word: the heap path does O(n) pops (each merge pushes at most two pairs), so the
 * operation count, not the clock, bounds the work; and the result is the expected one. */
static void test_long_word_linear(void **state)
{
    fixture *f = *state;
    size_t n = 100000;
    uint8_t *text = malloc(n);
    memset(text, 'a', n);
    int32_t *out = malloc(n * sizeof *out);
    bn_bpe_scratch s = {0};
    long k = bn_bpe_encode(f->t, text, n, out, &s, BN_BPE_AUTO);
    assert_int_equal(k, 25000);
    for (long i = 0; i < k; i++)
        assert_int_equal(out[i], T_AAAA);
    assert_true(s.ops <= 3 * n);
    /* alternating letters: "ab" pairs then "abab" */
    for (size_t i = 0; i < n; i++)
        text[i] = i % 2 ? 'b' : 'a';
    s.ops = 0;
    k = bn_bpe_encode(f->t, text, n, out, &s, BN_BPE_AUTO);
    assert_int_equal(k, 25000);
    for (long i = 0; i < k; i++)
        assert_int_equal(out[i], T_ABAB);
    assert_true(s.ops <= 3 * n);
    bn_bpe_scratch_free(&s);
    /* and through the whole pipeline (one 100 KB letter run = one piece) */
    int32_t *ids;
    size_t nid;
    bn_err err = {0};
    assert_int_equal(bn_tokenize(f->t, (const char *)text, n, &PLAIN, &ids, &nid, &err), 0);
    assert_int_equal(nid, 25000);
    assert_int_equal(ids[24999], T_ABAB);
    free(ids);
    free(out);
    free(text);
}

/* Repeated words come from the per-call cache: same ids as tokenizing each word alone. */
static void test_cache_consistent(void **state)
{
    fixture *f = *state;
    size_t n = 0, cap = 64 * 1024;
    char *text = malloc(cap);
    const char *words[] = {" helloo", " aaa", " bcd", " hello", " world", "!", " abab"};
    for (int i = 0; n + 16 < cap; i++) {
        const char *w = words[(i * 5 + i / 7) % 7];
        memcpy(text + n, w, strlen(w));
        n += strlen(w);
    }
    int32_t *ids;
    size_t k;
    bn_err err = {0};
    assert_int_equal(bn_tokenize(f->t, text, n, &PLAIN, &ids, &k, &err), 0);
    /* the same text cut into small calls (no cache below 2 KB) gives the same ids */
    size_t pos = 0, at = 0;
    while (pos < n) {
        size_t chunk = 0;
        /* cut right before a space so that no piece is split */
        while (pos + chunk < n && (chunk < 500 || text[pos + chunk] != ' '))
            chunk++;
        int32_t *part;
        size_t pk;
        assert_int_equal(bn_tokenize(f->t, text + pos, chunk, &PLAIN, &part, &pk, &err), 0);
        assert_true(at + pk <= k);
        assert_memory_equal(ids + at, part, pk * sizeof *part);
        at += pk;
        pos += chunk;
        free(part);
    }
    assert_int_equal(at, k);
    free(ids);
    free(text);
}

/* ------------------------------------------------------------------ decoding */

static void stream(bn_detokenizer *d, int32_t id, const char *want, size_t wn)
{
    size_t len;
    const char *p = bn_detok_push(d, id, &len);
    if (len != wn || memcmp(p, want, wn))
        fail_msg("push %d: got %zu bytes, want %zu", id, len, wn);
}

static void test_decode(void **state)
{
    fixture *f = *state;
    const bn_tokenizer *t = f->t;
    size_t len;
    const char *p = bn_token_bytes(t, T_SWORLD, false, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(p, " world", 6);
    bn_token_bytes(t, T_EOT, false, &len);
    assert_int_equal(len, 0); /* control tokens render as nothing ... */
    p = bn_token_bytes(t, T_EOT, true, &len);
    assert_int_equal(len, 10); /* ... or as their names */
    assert_memory_equal(p, "<|eot_id|>", 10);
    p = bn_token_bytes(t, T_USER, false, &len);
    assert_int_equal(len, 3); /* user-defined tokens always as text */
    bn_token_bytes(t, N_VOCAB, true, &len);
    assert_int_equal(len, 0);
    bn_token_bytes(t, -5, true, &len);
    assert_int_equal(len, 0);
    char small[3];
    assert_int_equal(bn_token_to_piece(t, T_HELLO, false, small, sizeof small), 5);
    assert_memory_equal(small, "hel", 3);
    char *out;
    bn_err err = {0};
    const int32_t ids[] = {T_HELLO, T_EOT, T_SWORLD};
    assert_int_equal(bn_detokenize(t, ids, 3, false, &out, &len, &err), 0);
    assert_string_equal(out, "hello world");
    free(out);
    assert_int_equal(bn_detokenize(t, ids, 3, true, &out, &len, &err), 0);
    assert_string_equal(out, "hello<|eot_id|> world");
    free(out);
    const int32_t bad[] = {T_HE, N_VOCAB};
    assert_int_equal(bn_detokenize(t, bad, 2, true, &out, &len, &err), -1);
    assert_non_null(strstr(err.msg, "out of range"));
}

static void test_stream_decode(void **state)
{
    fixture *f = *state;
    bn_detokenizer d;
    bn_err err = {0};
    size_t len;
    assert_int_equal(bn_detok_init(&d, f->t, false, &err), 0);
    /* U+20AC split over three byte tokens: nothing until complete */
    stream(&d, 0xE2, "", 0);
    stream(&d, 0x82, "", 0);
    stream(&d, 0xAC, "\xe2\x82\xac", 3);
    /* a held lead byte followed by ASCII can never complete: both bytes pass through */
    stream(&d, 0xE2, "", 0);
    stream(&d, T_HE, "\xe2he", 3);
    /* U+1F600 (F0 9F 98 80) with text before it */
    stream(&d, T_HE, "he", 2);
    stream(&d, 0xF0, "", 0);
    stream(&d, 0x9F, "", 0);
    stream(&d, T_EOT, "", 0); /* control token renders nothing; the held bytes stay held */
    stream(&d, 0x98, "", 0);
    stream(&d, 0x80, "\xf0\x9f\x98\x80", 4);
    /* invalid second byte: E0 80 is never valid, so it is not held */
    stream(&d, 0xE0, "", 0);
    stream(&d, 0x80, "\xe0\x80", 2);
    /* a stray continuation byte passes through */
    stream(&d, 0x80, "\x80", 1);
    /* end of stream with an incomplete sequence: flush gives the bytes back */
    stream(&d, 0xC3, "", 0);
    const char *p = bn_detok_flush(&d, &len);
    assert_int_equal(len, 1);
    assert_int_equal((uint8_t)p[0], 0xC3);
    p = bn_detok_flush(&d, &len);
    assert_int_equal(len, 0);
    bn_detok_free(&d);
    /* special rendering on */
    assert_int_equal(bn_detok_init(&d, f->t, true, &err), 0);
    stream(&d, T_EOT, "<|eot_id|>", 10);
    bn_detok_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_facts, setup, teardown),
        cmocka_unit_test(test_load_keys_honoured),
        cmocka_unit_test(test_special_scan_linear),
        cmocka_unit_test(test_merge_scratch_bounded),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test_setup_teardown(test_bpe_by_rank, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whole_piece_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bos_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bpe_scan_equals_heap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_word_linear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_consistent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_decode, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
