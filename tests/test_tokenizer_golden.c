/* The tokenizer against the shared golden data (skipped when ../shared is absent):
 *  - tokenizer/golden.jsonl: Llama-3 ids (plain and with special-token parsing), decode round trip;
 *  - tokenizer/decode.jsonl: bytes with special tokens rendered and skipped, whole and streamed;
 *  - both 1 MB bench texts against their .ids.txt;
 *  - llama.cpp's "default" pre-tokenizer: reference/golden/tokenize-2b4t-default-pre.jsonl and
 *    tokenize-bench-*.default-pre.ids.txt;
 *  - the `tokenize` arrays of reference/golden/tiny-{a,b}.json (synthetic vocabularies);
 *  - llama.cpp's "falcon3" pre-tokenizer: tests/data/tokenize-falcon3-pre.jsonl (the reference's
 *    llama-tokenize on every text of tokenizer/golden.jsonl, Llama-3 vocabulary, pre falcon3);
 *  - SentencePiece: tests/data/tokenize-spm.jsonl (the reference's llama-tokenize with
 *    tests/data/spm-vocab.gguf on golden.jsonl's texts and SentencePiece cases), and the decode
 *    round trip under llama.cpp's leading-space rule. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "json_data.h"
#include "tokenizer.h"

typedef struct vocab {
    bn_gguf *g;
    bn_tokenizer *t;
} vocab;

static int open_vocab(const char *rel, vocab *v)
{
    char *path = bn_test_shared(rel);
    if (!path)
        return -1;
    bn_err err = {0};
    v->g = bn_gguf_open(path, &err);
    free(path);
    if (!v->g)
        fail_msg("%s: %s", rel, err.msg);
    v->t = bn_tokenizer_load(v->g, &err);
    if (!v->t)
        fail_msg("%s: %s", rel, err.msg);
    return 0;
}

static void close_vocab(vocab *v)
{
    bn_tokenizer_free(v->t);
    bn_gguf_close(v->g);
}

static void tokenize(const bn_tokenizer *t, const uint8_t *text, size_t len, bn_tokenize_opts o,
                     int32_t **ids, size_t *n)
{
    bn_err err = {0};
    if (bn_tokenize(t, (const char *)text, len, &o, ids, n, &err))
        fail_msg("tokenize: %s", err.msg);
}

/* Compares and prints the first difference; returns true when equal. */
static bool same_ids(const char *what, const char *id, const int32_t *got, size_t ng,
                     const int32_t *want, size_t nw)
{
    if (ng == nw && memcmp(got, want, ng * sizeof *got) == 0)
        return true;
    size_t i = 0;
    while (i < ng && i < nw && got[i] == want[i])
        i++;
    print_message("%s %s: %zu ids, expected %zu; first difference at %zu: got %d, want %d\n", what,
                  id, ng, nw, i, i < ng ? got[i] : -1, i < nw ? want[i] : -1);
    return false;
}

static bool decodes_to(const bn_tokenizer *t, const int32_t *ids, size_t n, bool special,
                       const uint8_t *want, size_t wn)
{
    char *out;
    size_t len;
    bn_err err = {0};
    if (bn_detokenize(t, ids, n, special, &out, &len, &err))
        fail_msg("detokenize: %s", err.msg);
    bool ok = len == wn && memcmp(out, want, wn) == 0;
    free(out);
    /* the streaming decoder must give the same bytes in total */
    bn_detokenizer d;
    if (bn_detok_init(&d, t, special, &err))
        fail_msg("%s", err.msg);
    uint8_t *acc = malloc(wn + 64 * n + 8);
    size_t an = 0, l;
    for (size_t i = 0; i < n; i++) {
        const char *p = bn_detok_push(&d, ids[i], &l);
        memcpy(acc + an, p, l);
        an += l;
    }
    const char *p = bn_detok_flush(&d, &l);
    memcpy(acc + an, p, l);
    an += l;
    ok = ok && an == wn && memcmp(acc, want, wn) == 0;
    free(acc);
    bn_detok_free(&d);
    return ok;
}

typedef void (*line_fn)(const bn_json *obj, void *ctx, int *failures);

static void each_line_at(char *path, const char *rel, line_fn fn, void *ctx, int *failures,
                         int *count)
{
    size_t len;
    char *data = (char *)bn_test_read_file(path, &len);
    free(path);
    if (!data)
        fail_msg("cannot read %s", rel);
    char *line = data, *end = data + len;
    while (line < end) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t ll = nl ? (size_t)(nl - line) : (size_t)(end - line);
        if (ll > 0) {
            bn_err err = {0};
            bn_json_doc *obj = bn_json_parse(line, ll, NULL, &err);
            if (!obj)
                fail_msg("%s: line %d: %s", rel, *count + 1, err.msg);
            fn(bn_json_root(obj), ctx, failures);
            bn_json_free(obj);
            (*count)++;
        }
        line += ll + 1;
    }
    free(data);
}

static void each_line(const char *rel, line_fn fn, void *ctx, int *failures, int *count)
{
    each_line_at(bn_test_shared(rel), rel, fn, ctx, failures, count);
}

typedef struct golden_ctx {
    const bn_tokenizer *t;
    bn_pretokenizer pre;
    bool round_trip;
} golden_ctx;

static void golden_line(const bn_json *obj, void *vctx, int *failures)
{
    golden_ctx *c = vctx;
    const bn_json *hex = bn_json_get(obj, "hex"), *jid = bn_json_get(obj, "id");
    const char *id = jid && jid->type == BN_JSON_STRING ? jid->str : "?";
    uint8_t *text;
    size_t tn;
    assert_non_null(hex);
    assert_int_equal(hex->type, BN_JSON_STRING);
    assert_int_equal(bn_test_unhex(hex->str, hex->len, &text, &tn), 0);
    int32_t *want, *want_sp, *got;
    size_t nw, nws, ng;
    assert_int_equal(bn_test_json_ids(bn_json_get(obj, "ids"), &want, &nw), 0);
    const bn_json *sp = bn_json_get(obj, "ids_special");
    if (sp)
        assert_int_equal(bn_test_json_ids(sp, &want_sp, &nws), 0);
    tokenize(c->t, text, tn, (bn_tokenize_opts){BN_BOS_NEVER, false, c->pre}, &got, &ng);
    if (!same_ids("ids", id, got, ng, want, nw))
        (*failures)++;
    free(got);
    /* special parsing: where the file gives no ids_special, the result is the same as ids */
    tokenize(c->t, text, tn, (bn_tokenize_opts){BN_BOS_NEVER, true, c->pre}, &got, &ng);
    if (!same_ids("ids_special", id, got, ng, sp ? want_sp : want, sp ? nws : nw))
        (*failures)++;
    free(got);
    if (c->round_trip) {
        if (!decodes_to(c->t, want, nw, true, text, tn)) {
            print_message("decode %s: not the input bytes\n", id);
            (*failures)++;
        }
        if (sp && !decodes_to(c->t, want_sp, nws, true, text, tn)) {
            print_message("decode ids_special %s: not the input bytes\n", id);
            (*failures)++;
        }
    }
    if (sp)
        free(want_sp);
    free(want);
    free(text);
}

static void test_golden_llama3(void **state)
{
    (void)state;
    vocab v;
    if (open_vocab("tokenizer/llama3-vocab.gguf", &v))
        bn_test_skip_if_missing(NULL, "tokenizer/llama3-vocab.gguf");
    assert_int_equal(bn_tokenizer_pre(v.t), BN_PRE_LLAMA3);
    golden_ctx c = {v.t, BN_PRE_AUTO, true};
    int failures = 0, count = 0;
    each_line("tokenizer/golden.jsonl", golden_line, &c, &failures, &count);
    print_message("golden.jsonl: %d cases, %d failures\n", count, failures);
    assert_int_equal(count, 387);
    assert_int_equal(failures, 0);
    close_vocab(&v);
}

static void decode_line(const bn_json *obj, void *vctx, int *failures)
{
    const bn_tokenizer *t = vctx;
    int32_t *ids;
    size_t n;
    assert_int_equal(bn_test_json_ids(bn_json_get(obj, "ids"), &ids, &n), 0);
    const char *keys[2] = {"hex", "hex_skip_special"};
    for (int k = 0; k < 2; k++) {
        const bn_json *h = bn_json_get(obj, keys[k]);
        uint8_t *want;
        size_t wn;
        assert_non_null(h);
        assert_int_equal(h->type, BN_JSON_STRING);
        assert_int_equal(bn_test_unhex(h->str, h->len, &want, &wn), 0);
        if (!decodes_to(t, ids, n, k == 0, want, wn)) {
            const bn_json *note = bn_json_get(obj, "note");
            print_message("decode.jsonl %s (%s): wrong bytes\n",
                          note && note->type == BN_JSON_STRING ? note->str : "?", keys[k]);
            (*failures)++;
        }
        free(want);
    }
    free(ids);
}

static void test_decode_cases(void **state)
{
    (void)state;
    vocab v;
    if (open_vocab("tokenizer/llama3-vocab.gguf", &v))
        bn_test_skip_if_missing(NULL, "tokenizer/llama3-vocab.gguf");
    int failures = 0, count = 0;
    each_line("tokenizer/decode.jsonl", decode_line, v.t, &failures, &count);
    print_message("decode.jsonl: %d cases, %d failures\n", count, failures);
    assert_int_equal(count, 40);
    assert_int_equal(failures, 0);
    close_vocab(&v);
}

static int32_t *read_ids_txt(const char *rel, size_t *n)
{
    char *path = bn_test_shared(rel);
    size_t len;
    char *data = (char *)bn_test_read_file(path, &len);
    free(path);
    if (!data)
        fail_msg("cannot read %s", rel);
    int32_t *ids = malloc((len / 2 + 1) * sizeof *ids);
    size_t k = 0;
    char *p = data;
    for (;;) {
        char *e;
        long v = strtol(p, &e, 10);
        if (e == p)
            break;
        ids[k++] = (int32_t)v;
        p = e;
    }
    free(data);
    *n = k;
    return ids;
}

static void check_bench(const bn_tokenizer *t, bn_pretokenizer pre, const char *text_rel,
                        const char *ids_rel, size_t expect_n)
{
    char *path = bn_test_shared(text_rel);
    size_t len;
    uint8_t *text = bn_test_read_file(path, &len);
    free(path);
    assert_non_null(text);
    size_t nw, ng;
    int32_t *want = read_ids_txt(ids_rel, &nw), *got;
    assert_int_equal(nw, expect_n);
    tokenize(t, text, len, (bn_tokenize_opts){BN_BOS_NEVER, false, pre}, &got, &ng);
    assert_true(same_ids("bench", text_rel, got, ng, want, nw));
    assert_true(decodes_to(t, got, ng, true, text, len));
    free(got);
    free(want);
    free(text);
}

static void test_bench_texts(void **state)
{
    (void)state;
    vocab v;
    if (open_vocab("tokenizer/llama3-vocab.gguf", &v))
        bn_test_skip_if_missing(NULL, "tokenizer/llama3-vocab.gguf");
    check_bench(v.t, BN_PRE_AUTO, "tokenizer/bench/english-1mb.txt",
                "tokenizer/bench/english-1mb.ids.txt", 244387);
    check_bench(v.t, BN_PRE_AUTO, "tokenizer/bench/mixed-1mb.txt",
                "tokenizer/bench/mixed-1mb.ids.txt", 353320);
    close_vocab(&v);
}

static void test_default_pre(void **state)
{
    (void)state;
    vocab v;
    if (open_vocab("tokenizer/llama3-vocab.gguf", &v))
        bn_test_skip_if_missing(NULL, "tokenizer/llama3-vocab.gguf");
    char *ref = bn_test_shared("reference/golden/tokenize-2b4t-default-pre.jsonl");
    bn_test_skip_if_missing(ref, "reference/golden/tokenize-2b4t-default-pre.jsonl");
    free(ref);
    golden_ctx c = {v.t, BN_PRE_DEFAULT, false};
    int failures = 0, count = 0;
    each_line("reference/golden/tokenize-2b4t-default-pre.jsonl", golden_line, &c, &failures,
              &count);
    print_message("default pre-tokenizer: %d cases, %d failures\n", count, failures);
    assert_int_equal(count, 387);
    assert_int_equal(failures, 0);
    check_bench(v.t, BN_PRE_DEFAULT, "tokenizer/bench/english-1mb.txt",
                "reference/golden/tokenize-bench-english-1mb.default-pre.ids.txt", 276392);
    check_bench(v.t, BN_PRE_DEFAULT, "tokenizer/bench/mixed-1mb.txt",
                "reference/golden/tokenize-bench-mixed-1mb.default-pre.ids.txt", 384392);
    close_vocab(&v);
}

static void test_falcon3_pre(void **state)
{
    (void)state;
    vocab v;
    if (open_vocab("tokenizer/llama3-vocab.gguf", &v))
        bn_test_skip_if_missing(NULL, "tokenizer/llama3-vocab.gguf");
    golden_ctx c = {v.t, BN_PRE_FALCON3, false};
    int failures = 0, count = 0;
    each_line_at(bn_test_data("tokenize-falcon3-pre.jsonl"), "tokenize-falcon3-pre.jsonl",
                 golden_line, &c, &failures, &count);
    print_message("falcon3 pre-tokenizer: %d cases, %d failures\n", count, failures);
    assert_true(count >= 380);
    assert_int_equal(failures, 0);
    close_vocab(&v);
}

/* Decoding SentencePiece ids of TEXT: the whole decode (llama_detokenize) drops the space the
 * tokenizer put in front; after a BOS it keeps it; the stream (token_to_piece, as generation
 * prints) keeps it too. Only for texts where that is exact: no user-defined token split out
 * (the text after it gets a prefix space of its own), no literal U+2581, no lead byte right
 * before a space (lead_before_space). */
static bool spm_round_trip(const bn_tokenizer *t, const int32_t *ids, size_t n, const uint8_t *text,
                           size_t tn)
{
    uint8_t *spaced = malloc(tn + 1);
    spaced[0] = ' ';
    memcpy(spaced + 1, text, tn);
    char *out;
    size_t len;
    bn_err err = {0};
    if (bn_detokenize(t, ids, n, false, &out, &len, &err))
        fail_msg("detokenize: %s", err.msg);
    bool ok = len == tn && memcmp(out, text, tn) == 0;
    free(out);
    int32_t *with_bos = malloc((n + 1) * sizeof *with_bos);
    with_bos[0] = bn_tokenizer_bos(t);
    memcpy(with_bos + 1, ids, n * sizeof *ids);
    if (bn_detokenize(t, with_bos, n + 1, false, &out, &len, &err))
        fail_msg("detokenize: %s", err.msg);
    ok = ok && len == tn + (tn > 0) && memcmp(out, spaced, len) == 0;
    free(out);
    free(with_bos);
    bn_detokenizer d;
    if (bn_detok_init(&d, t, false, &err))
        fail_msg("%s", err.msg);
    uint8_t *acc = malloc(4 * tn + 8);
    size_t an = 0, l;
    for (size_t i = 0; i < n; i++) {
        const char *p = bn_detok_push(&d, ids[i], &l);
        memcpy(acc + an, p, l);
        an += l;
    }
    const char *p = bn_detok_flush(&d, &l);
    memcpy(acc + an, p, l);
    an += l;
    ok = ok && an == tn + (tn > 0) && memcmp(acc, spaced, an) == 0;
    free(acc);
    bn_detok_free(&d);
    free(spaced);
    return ok;
}

/* A lead byte whose sequence length reaches over a space: the tokenizer's character then
 * swallows part of the escaped space (U+2581), whose bytes come back as bytes, not a space. */
static bool lead_before_space(const uint8_t *s, size_t n)
{
    static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    for (size_t i = 0; i < n; i++)
        for (size_t k = 1; k < len[s[i] >> 4] && i + k < n; k++)
            if (s[i + k] == ' ')
                return true;
    return false;
}

static bool has_user_defined(const bn_tokenizer *t, const int32_t *ids, size_t n)
{
    static const char *const names[] = {"<|user|>", "<|assistant|>"};
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 2; k++)
            if (ids[i] == bn_tokenizer_find(t, names[k], strlen(names[k])))
                return true;
    return false;
}

typedef struct spm_ctx {
    const bn_tokenizer *t;
    int round_trips;
} spm_ctx;

static void spm_line(const bn_json *obj, void *vctx, int *failures)
{
    spm_ctx *c = vctx;
    const bn_json *hex = bn_json_get(obj, "hex"), *jid = bn_json_get(obj, "id");
    const char *id = jid && jid->type == BN_JSON_STRING ? jid->str : "?";
    uint8_t *text;
    size_t tn;
    assert_non_null(hex);
    assert_int_equal(bn_test_unhex(hex->str, hex->len, &text, &tn), 0);
    const char *keys[3] = {"ids", "ids_bos", "ids_special"};
    const bn_tokenize_opts opts[3] = {{BN_BOS_NEVER, false, BN_PRE_AUTO},
                                      {BN_BOS_DEFAULT, false, BN_PRE_AUTO},
                                      {BN_BOS_NEVER, true, BN_PRE_AUTO}};
    int32_t *plain = NULL;
    size_t n_plain = 0;
    for (int k = 0; k < 3; k++) {
        /* ids_special only where it differs from ids */
        const bn_json *j = bn_json_get(obj, keys[k]);
        if (!j)
            j = bn_json_get(obj, "ids");
        int32_t *want, *got;
        size_t nw, ng;
        assert_int_equal(bn_test_json_ids(j, &want, &nw), 0);
        tokenize(c->t, text, tn, opts[k], &got, &ng);
        if (!same_ids(keys[k], id, got, ng, want, nw))
            (*failures)++;
        free(got);
        if (k == 0) {
            plain = want;
            n_plain = nw;
        } else {
            free(want);
        }
    }
    if (!memmem(text, tn, "\xE2\x96\x81", 3) && !lead_before_space(text, tn) &&
        !has_user_defined(c->t, plain, n_plain)) {
        c->round_trips++;
        if (!spm_round_trip(c->t, plain, n_plain, text, tn)) {
            print_message("decode %s: not the input bytes (under the leading-space rule)\n", id);
            (*failures)++;
        }
    }
    free(plain);
    free(text);
}

static void test_spm(void **state)
{
    (void)state;
    char *path = bn_test_data("spm-vocab.gguf");
    bn_err err = {0};
    bn_gguf *g = bn_gguf_open(path, &err);
    free(path);
    if (!g)
        fail_msg("spm-vocab.gguf: %s", err.msg);
    bn_tokenizer *t = bn_tokenizer_load(g, &err);
    if (!t)
        fail_msg("spm-vocab.gguf: %s", err.msg);
    assert_int_equal(bn_tokenizer_n_vocab(t), 3004);
    assert_int_equal(bn_tokenizer_bos(t), 1);
    assert_int_equal(bn_tokenizer_eos(t), 2);
    spm_ctx c = {t, 0};
    int failures = 0, count = 0;
    each_line_at(bn_test_data("tokenize-spm.jsonl"), "tokenize-spm.jsonl", spm_line, &c, &failures,
                 &count);
    print_message("SentencePiece: %d cases x 3 modes, %d round trips, %d failures\n", count,
                  c.round_trips, failures);
    assert_true(count >= 490);
    assert_true(c.round_trips >= 470);
    assert_int_equal(failures, 0);
    bn_tokenizer_free(t);
    bn_gguf_close(g);
}

static void test_tiny_models(void **state)
{
    (void)state;
    const char *models[2] = {"reference/models/tiny-a.gguf", "reference/models/tiny-b.gguf"};
    const char *golden[2] = {"reference/golden/tiny-a.json", "reference/golden/tiny-b.json"};
    for (int m = 0; m < 2; m++) {
        vocab v;
        if (open_vocab(models[m], &v))
            bn_test_skip_if_missing(NULL, models[m]);
        char *path = bn_test_shared(golden[m]);
        bn_test_skip_if_missing(path, golden[m]);
        size_t len;
        char *data = (char *)bn_test_read_file(path, &len);
        free(path);
        bn_err err = {0};
        bn_json_doc *doc = bn_json_parse(data, len, NULL, &err);
        if (!doc)
            fail_msg("%s: %s", golden[m], err.msg);
        const bn_json *root = bn_json_root(doc);
        const bn_json *cases = bn_json_get(root, "tokenize");
        assert_non_null(cases);
        assert_int_equal(cases->type, BN_JSON_ARRAY);
        assert_true(cases->len > 0);
        const bn_json *bos = bn_json_get(root, "bos"), *eos = bn_json_get(root, "eos"),
                      *eot = bn_json_get(root, "eot");
        assert_true(bos && eos && eot);
        assert_int_equal(bn_tokenizer_bos(v.t), (int32_t)bos->num);
        assert_int_equal(bn_tokenizer_eos(v.t), (int32_t)eos->num);
        assert_int_equal(bn_tokenizer_eot(v.t), (int32_t)eot->num);
        int failures = 0;
        for (const bn_json *c = cases->child; c; c = c->next) {
            const bn_json *text = bn_json_get(c, "text");
            assert_true(text && text->type == BN_JSON_STRING);
            const char *keys[3] = {"ids_add_bos", "ids_no_bos", "ids_parse_special"};
            const bn_tokenize_opts opts[3] = {{BN_BOS_DEFAULT, false, BN_PRE_DEFAULT},
                                              {BN_BOS_NEVER, false, BN_PRE_DEFAULT},
                                              {BN_BOS_NEVER, true, BN_PRE_DEFAULT}};
            for (int k = 0; k < 3; k++) {
                int32_t *want, *got;
                size_t nw, ng;
                assert_int_equal(bn_test_json_ids(bn_json_get(c, keys[k]), &want, &nw), 0);
                tokenize(v.t, (const uint8_t *)text->str, text->len, opts[k], &got, &ng);
                if (!same_ids(keys[k], golden[m], got, ng, want, nw))
                    failures++;
                free(want);
                free(got);
            }
        }
        print_message("%s: %zu texts x 3 modes, %d failures\n", golden[m], cases->len, failures);
        assert_int_equal(failures, 0);
        bn_json_free(doc);
        free(data);
        close_vocab(&v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_llama3), cmocka_unit_test(test_decode_cases),
        cmocka_unit_test(test_bench_texts),   cmocka_unit_test(test_falcon3_pre),
        cmocka_unit_test(test_default_pre),   cmocka_unit_test(test_tiny_models),
        cmocka_unit_test(test_spm),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
