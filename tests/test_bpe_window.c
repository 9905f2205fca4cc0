/* Long pieces encoded window by window (src/text/bpe_window.c) with the Llama-3 vocabulary
 * (skipped when ../shared is absent):
 *  - the ids equal the whole-piece heap's on many kinds of long pieces (letter runs, random
 *    letters, random bytes, punctuation, UTF-8 letters), with small windows so that there are
 *    many cuts;
 *  - with cuts forced at fixed places, the proof rejects cuts the whole piece really crosses
 *    (and the piece is then encoded whole, still exact);
 *  - the working memory of a 4 MB piece follows the window, not the piece. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"
#include "tokenizer_impl.h"

typedef struct vocab {
    bn_gguf *g;
    bn_tokenizer *t;
} vocab;

static int setup(void **state)
{
    char *path = bn_test_shared("tokenizer/llama3-vocab.gguf");
    if (!path) {
        *state = NULL;
        return 0;
    }
    vocab *v = calloc(1, sizeof *v);
    bn_err err = {0};
    v->g = bn_gguf_open(path, &err);
    free(path);
    if (v->g)
        v->t = bn_tokenizer_load(v->g, &err);
    if (!v->t) {
        print_message("llama3-vocab.gguf: %s\n", err.msg);
        return -1;
    }
    *state = v;
    return 0;
}

static int teardown(void **state)
{
    vocab *v = *state;
    if (v) {
        bn_tokenizer_free(v->t);
        bn_gguf_close(v->g);
        free(v);
    }
    return 0;
}

static const bn_tokenizer *vocab_or_skip(void **state)
{
    vocab *v = *state;
    if (!v)
        bn_test_skip_if_missing(NULL, "tokenizer/llama3-vocab.gguf");
    return v->t;
}

static uint64_t rng_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

enum {
    KIND_RUN,      /* one letter repeated, after a few other letters */
    KIND_PERIOD,   /* a pattern of 2..5 letters repeated, after a few other letters */
    KIND_LOWER,    /* random a-z */
    KIND_TWO,      /* random over "ab" */
    KIND_BYTES,    /* random bytes 0..255 */
    KIND_PUNCT,    /* random punctuation */
    KIND_CYRILLIC, /* random two-byte letters */
    N_KINDS
};
static const char *const kind_names[N_KINDS] = {"run",   "period", "lower",   "two",
                                                "bytes", "punct",  "cyrillic"};

static void fill(uint8_t *p, size_t n, int kind, uint64_t *seed)
{
    static const char punct[] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    const size_t prefix = rng_next(seed) % 8, period = 2 + rng_next(seed) % 4;
    uint8_t pattern[5];
    for (size_t i = 0; i < period; i++)
        pattern[i] = (uint8_t)('a' + rng_next(seed) % 26);
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rng_next(seed);
        switch (kind) {
        case KIND_RUN: p[i] = i < prefix ? (uint8_t)('a' + r % 26) : 'a'; break;
        case KIND_PERIOD:
            p[i] = i < prefix ? (uint8_t)('a' + r % 26) : pattern[(i - prefix) % period];
            break;
        case KIND_LOWER: p[i] = (uint8_t)('a' + r % 26); break;
        case KIND_TWO: p[i] = (uint8_t)("ab"[r % 2]); break;
        case KIND_BYTES: p[i] = (uint8_t)r; break;
        case KIND_PUNCT: p[i] = (uint8_t)punct[r % (sizeof punct - 1)]; break;
        default: /* U+0430..U+044F, two bytes each (an odd n ends on a lead byte) */
            p[i] = i % 2 ? (uint8_t)(0xb0 + r % 16) : 0xd0;
        }
    }
}

/* Encodes p whole (heap) and in windows; asserts the same ids; returns the scratch's counters
 * through *windowed / *unverified. */
static void compare(const bn_tokenizer *t, const uint8_t *p, size_t n, size_t window,
                    bool fixed_cuts, uint64_t *windowed, uint64_t *unverified)
{
    int32_t *whole = malloc(n * sizeof *whole), *win = malloc(n * sizeof *win);
    assert_non_null(whole);
    assert_non_null(win);
    bn_bpe_scratch a = {0}, b = {.window = window, .fixed_cuts = fixed_cuts};
    long na = bn_bpe_encode(t, p, n, whole, &a, BN_BPE_HEAP);
    long nb = bn_bpe_encode(t, p, n, win, &b, BN_BPE_AUTO);
    assert_true(na > 0);
    assert_int_equal(na, nb);
    assert_memory_equal(whole, win, (size_t)na * sizeof *whole);
    *windowed += b.windowed;
    *unverified += b.unverified;
    bn_bpe_scratch_free(&a);
    bn_bpe_scratch_free(&b);
    free(whole);
    free(win);
}

/* Probed cuts: every kind of piece is encoded window by window and gives the whole piece's ids. */
static void test_windows_equal_whole(void **state)
{
    const bn_tokenizer *t = vocab_or_skip(state);
    const size_t windows[] = {1000, 2500, 4096};
    uint64_t seed = 7;
    uint8_t *p = malloc(40000);
    for (int kind = 0; kind < N_KINDS; kind++) {
        uint64_t windowed = 0, unverified = 0;
        for (int iter = 0; iter < 6; iter++) {
            size_t n = 9000 + (size_t)rng_next(&seed) % 30000;
            fill(p, n, kind, &seed);
            compare(t, p, n, windows[iter % 3], false, &windowed, &unverified);
        }
        print_message("%-8s probed cuts: %2llu pieces in windows, %2llu whole\n", kind_names[kind],
                      (unsigned long long)windowed, (unsigned long long)unverified);
        /* the probe finds true token boundaries in all of these */
        assert_int_equal(windowed, 6);
    }
    free(p);
}

/* Cuts at fixed places: in random letters most pieces have a token across some cut, and the
 * proof must see it (a missed one gives different ids); a run of one letter with cuts at
 * multiples of 512 splits where the whole piece does. */
static void test_fixed_cuts_checked(void **state)
{
    const bn_tokenizer *t = vocab_or_skip(state);
    uint64_t seed = 99;
    uint8_t *p = malloc(40000);
    uint64_t windowed = 0, unverified = 0;
    for (int iter = 0; iter < 40; iter++) {
        size_t n = 2000 + (size_t)rng_next(&seed) % 30000;
        fill(p, n, iter % 2 ? KIND_LOWER : KIND_TWO, &seed);
        compare(t, p, n, 200 + (size_t)rng_next(&seed) % 800, true, &windowed, &unverified);
    }
    print_message("fixed cuts, random letters: %llu pieces in windows, %llu whole\n",
                  (unsigned long long)windowed, (unsigned long long)unverified);
    assert_true(unverified > 0);
    windowed = unverified = 0;
    memset(p, 'a', 40000);
    compare(t, p, 40000, 512, true, &windowed, &unverified);
    assert_int_equal(windowed, 1);
    free(p);
}

/* A 4 MB piece (one letter; random letters) needs scratch for a window, not for the piece:
 * before the windows, the symbol arrays alone held 16 bytes per input byte. */
static void test_long_piece_memory(void **state)
{
    const bn_tokenizer *t = vocab_or_skip(state);
    const size_t n = 4u << 20;
    uint8_t *p = malloc(n);
    int32_t *out = malloc(n * sizeof *out);
    uint64_t seed = 3;
    for (int kind = KIND_RUN; kind <= KIND_LOWER; kind++) {
        fill(p, n, kind, &seed);
        bn_bpe_scratch s = {0};
        long k = bn_bpe_encode(t, p, n, out, &s, BN_BPE_AUTO);
        assert_true(k > 0);
        print_message("%s: %ld ids, scratch for %zu symbols and %zu heap entries\n",
                      kind_names[kind], k, s.cap, s.heap_cap);
        assert_int_equal(s.windowed, 1);
        assert_true(s.cap <= 2 * BN_BPE_WINDOW);
        assert_true(s.heap_cap <= 3 * 2 * BN_BPE_WINDOW);
        assert_true(s.steps_cap <= 2 * BN_BPE_WINDOW);
        bn_bpe_scratch_free(&s);
    }
    free(out);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_windows_equal_whole),
        cmocka_unit_test(test_fixed_cuts_checked),
        cmocka_unit_test(test_long_piece_memory),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
