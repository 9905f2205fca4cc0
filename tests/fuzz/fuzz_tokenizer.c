/* libFuzzer target for the tokenizer: for any bytes, tokenize -> decode gives the bytes back
 * exactly (whole and streamed), ids are in range and never more than the input length, and
 * the streaming decoder never cuts a valid UTF-8 sequence of the output between two chunks.
 *
 * Input: byte 0 picks the mode (bit 0: llama.cpp "default" pre-tokenizer instead of Llama 3,
 * bit 1: parse special-token names), the rest is the text. With bit 2 set, the text is also
 * BPE-encoded as one piece in windows (bpe_window.c; window 16..616 bytes from the high
 * nibble, cuts fixed when bit 3 is set, else probed) and must give the whole piece's ids. Byte 0 = 0xFF instead makes the
 * rest a GGUF file: loading it as a vocabulary must fail cleanly or give a tokenizer for which
 * the same round trip holds (corpus seed: vocab-gguf). The vocabulary is the project's
 * synthetic byte-level BPE one (2048 tokens, 16 Llama-3-named specials), or the GGUF named by
 * $BN_FUZZ_VOCAB (e.g. ../shared/tokenizer/llama3-vocab.gguf). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "gguf_writer.h"
#include "synthetic_model.h"
#include "tokenizer.h"
#include "tokenizer_impl.h"
#include "unicode.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bn_gguf *gguf;
static bn_tokenizer *tok;
static char *membuf;

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "fuzz_tokenizer: %s: %s\n", what, msg);
    abort();
}

static bn_gguf *synthetic_vocab(void)
{
    bn_err err = {0};
    bn_synth_vocab v;
    if (bn_synth_vocab_make(2048, 7, &v, &err))
        die("synthetic vocabulary", err.msg);
    bn_gguf_writer *w = bn_gguf_writer_new();
    bn_gguf_writer_add_str(w, "general.architecture", "bitnet-b1.58");
    bn_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2");
    bn_gguf_writer_add_arr_strv(w, "tokenizer.ggml.tokens", v.tokens, v.n_tokens);
    bn_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", BN_GGUF_I32, v.types, v.n_tokens);
    bn_gguf_writer_add_arr_strv(w, "tokenizer.ggml.merges", v.merges, v.n_merges);
    bn_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", v.bos);
    bn_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", v.eos);
    size_t n = 0;
    FILE *f = open_memstream(&membuf, &n);
    if (!f || bn_gguf_writer_begin(w, f, &err) || bn_gguf_writer_finish(w, &err))
        die("writing the vocabulary", err.msg);
    fclose(f);
    bn_gguf_writer_free(w);
    bn_synth_vocab_free(&v);
    bn_gguf *g = bn_gguf_open_memory(membuf, n, &err);
    if (!g)
        die("reading the vocabulary", err.msg);
    return g;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    bn_err err = {0};
    const char *path = getenv("BN_FUZZ_VOCAB");
    gguf = path && *path ? bn_gguf_open(path, &err) : synthetic_vocab();
    if (!gguf)
        die(path, err.msg);
    tok = bn_tokenizer_load(gguf, &err);
    if (!tok)
        die("loading the tokenizer", err.msg);
    return 0;
}

/* unit_start[i] = 1 where a UTF-8 unit (a valid sequence or one invalid byte) of S starts. */
static uint8_t *unit_starts(const uint8_t *s, size_t n)
{
    uint8_t *m = calloc(n + 1, 1);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        m[i] = 1;
        i += bn_utf8_decode(s + i, n - i, &cp);
    }
    m[n] = 1;
    return m;
}

static void round_trip(const bn_tokenizer *tk, uint8_t mode, const uint8_t *data, size_t len)
{
    const char *text = (const char *)data;
    bn_tokenize_opts o = {BN_BOS_NEVER, (mode & 2) != 0,
                          (mode & 1) ? BN_PRE_DEFAULT : BN_PRE_LLAMA3};
    bn_err err = {0};
    int32_t *ids;
    size_t n;
    if (bn_tokenize(tk, text, len, &o, &ids, &n, &err))
        die("tokenize", err.msg);
    if (n > len)
        die("tokenize", "more ids than bytes");
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= bn_tokenizer_n_vocab(tk))
            die("tokenize", "id out of range");
    char *out;
    size_t ol;
    if (bn_detokenize(tk, ids, n, true, &out, &ol, &err))
        die("detokenize", err.msg);
    if (ol != len || memcmp(out, text, len) != 0)
        die("round trip", "decoded bytes differ from the input");
    free(out);
    bn_detokenizer d;
    if (bn_detok_init(&d, tk, true, &err))
        die("detok_init", err.msg);
    uint8_t *acc = malloc(len + 1), *starts = unit_starts(data, len);
    size_t an = 0, l;
    for (size_t i = 0; i < n; i++) {
        const char *p = bn_detok_push(&d, ids[i], &l);
        if (an + l > len)
            die("stream", "more bytes than the input");
        memcpy(acc + an, p, l);
        an += l;
        if (l && !starts[an])
            die("stream", "a chunk ends inside a UTF-8 sequence");
    }
    const char *p = bn_detok_flush(&d, &l);
    if (an + l != len)
        die("stream", "wrong total length");
    memcpy(acc + an, p, l);
    if (memcmp(acc, text, len) != 0)
        die("stream", "bytes differ from the input");
    free(acc);
    free(starts);
    bn_detok_free(&d);
    free(ids);
}

/* Windows against the whole piece: a cut the proof accepts must not change the ids. */
static void windows_equal_whole(const bn_tokenizer *t, uint8_t mode, const uint8_t *p, size_t n)
{
    if (n == 0)
        return;
    int32_t *whole = malloc(n * sizeof *whole), *win = malloc(n * sizeof *win);
    bn_bpe_scratch a = {0};
    bn_bpe_scratch b = {.window = 16 + (size_t)(mode >> 4) * 40, .fixed_cuts = (mode & 8) != 0};
    long na = bn_bpe_encode(t, p, n, whole, &a, BN_BPE_HEAP);
    long nb = bn_bpe_encode(t, p, n, win, &b, BN_BPE_AUTO);
    if (na < 0 || nb < 0)
        die("windows", "out of memory");
    if (na != nb || memcmp(whole, win, (size_t)na * sizeof *whole) != 0)
        die("windows", "window-by-window ids differ from the whole piece's");
    bn_bpe_scratch_free(&a);
    bn_bpe_scratch_free(&b);
    free(whole);
    free(win);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] != 0xFF) {
        round_trip(tok, data[0], data + 1, size - 1);
        if (data[0] & 4)
            windows_equal_whole(tok, data[0], data + 1, size - 1);
        return 0;
    }
    bn_err err = {0};
    bn_gguf *g = bn_gguf_open_memory(data + 1, size - 1, &err);
    if (!g)
        return 0;
    bn_tokenizer *t = bn_tokenizer_load(g, &err);
    if (t) {
        static const char sample[] = "Hello world, it's 2024!\n\t<|eot_id|> \xe4\xb8\xad\xff";
        for (uint8_t mode = 0; mode < 4; mode++)
            round_trip(t, mode, (const uint8_t *)sample, sizeof sample - 1);
        windows_equal_whole(t, 0x0c, (const uint8_t *)sample, sizeof sample - 1); /* 16 bytes */
        bn_tokenizer_free(t);
    } else if (!err.msg[0] || strchr(err.msg, '\n')) {
        die("load", "failure without a one-line message");
    }
    bn_gguf_close(g);
    return 0;
}
