/* libFuzzer target for the tokenizer: for any bytes, tokenize -> decode gives the bytes back
 * exactly (whole and streamed), ids are in range and never more than the input length, and
 * the streaming decoder never cuts a valid UTF-8 sequence of the output between two chunks.
 *
 * Input: byte 0 picks the mode (bit 0: llama.cpp "default" pre-tokenizer instead of Llama 3,
 * bit 1: parse special-token names, bit 2: the SentencePiece vocabulary below instead), the
 * rest is the text. Without bit 2 the text is also BPE-encoded as one piece in windows
 * (bpe_window.c; window 16..616 bytes from the high nibble, cuts fixed when bit 3 is set, else
 * probed) and must give the whole piece's ids. Byte 0 = 0xFF instead makes the rest a GGUF
 * file: loading it as a vocabulary must fail cleanly or give a tokenizer for which the same
 * checks hold (corpus seed: vocab-gguf). The BPE vocabulary is the project's synthetic
 * byte-level one (2048 tokens, 16 Llama-3-named specials), or the GGUF named by $BN_FUZZ_VOCAB
 * (e.g. ../shared/tokenizer/llama3-vocab.gguf).
 *
 * SentencePiece: its round trip is not exact by design (a prefix space per fragment, U+2581 in
 * the text, byte fallback of a sequence cut by an escaped space), so instead its ids must equal
 * a plain quadratic rendering of llama.cpp's algorithm (best score, leftmost, until no pair is
 * a token) on texts without special tokens, ids stay in range and within 3 per byte plus the
 * prefix space, and the stream never cuts a UTF-8 sequence and adds up to bn_detokenize's bytes
 * plus the prefix space it drops. The vocabulary is made here: byte pieces, "▁"-prefixed and
 * plain prefixes of a few words with scores that tie in threes, a control and a user-defined
 * token. */
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

static bn_gguf *gguf, *spm_gguf;
static bn_tokenizer *tok, *spm;
static char *membuf, *spm_membuf;

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

#define SPM_MAX 1024

static bn_gguf *spm_vocab(void)
{
    static const char *const words[] = {
        "the",      "and",  "hello", "world", "token", "piece",        "tokenizer",
        "sentence", "中文", "日本",  "é",     "naïve", "\xe2\x96\x81", "\xe2\x96\x81\xe2\x96\x81",
        "ab",       "ba"};
    char *tokens[SPM_MAX];
    float scores[SPM_MAX];
    int32_t types[SPM_MAX];
    int n = 0;
    const char *fixed[3] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++) {
        tokens[n] = strdup(fixed[i]);
        types[n] = i == 0 ? BN_TOK_UNKNOWN : BN_TOK_CONTROL;
        scores[n++] = 0.0f;
    }
    for (int b = 0; b < 256; b++) {
        tokens[n] = malloc(7);
        snprintf(tokens[n], 7, "<0x%02X>", b);
        types[n] = BN_TOK_BYTE;
        scores[n++] = 0.0f;
    }
    /* single ASCII letters, then every prefix of each word with and without "▁" */
    for (char c = 'a'; c <= 'z'; c++) {
        tokens[n] = malloc(2);
        tokens[n][0] = c;
        tokens[n][1] = 0;
        types[n] = BN_TOK_NORMAL;
        scores[n] = -(float)(n / 3); /* ties in threes: the leftmost pair must win */
        n++;
    }
    for (size_t w = 0; w < sizeof words / sizeof *words; w++)
        for (int sp = 0; sp < 2; sp++) {
            char full[64];
            snprintf(full, sizeof full, "%s%s", sp ? "\xe2\x96\x81" : "", words[w]);
            for (size_t l = 2; l <= strlen(full); l++) {
                char *t = strndup(full, l);
                bool dup = false;
                for (int k = 0; k < n && !dup; k++)
                    dup = strcmp(tokens[k], t) == 0;
                if (dup) {
                    free(t);
                    continue;
                }
                tokens[n] = t;
                types[n] = BN_TOK_NORMAL;
                scores[n] = -(float)(n / 3);
                n++;
            }
        }
    tokens[n] = strdup("<|eot_id|>");
    types[n] = BN_TOK_CONTROL;
    scores[n++] = 0.0f;
    tokens[n] = strdup("<u>");
    types[n] = BN_TOK_USER_DEFINED;
    scores[n++] = -1000.0f;
    bn_err err = {0};
    bn_gguf_writer *w = bn_gguf_writer_new();
    bn_gguf_writer_add_str(w, "general.architecture", "bitnet");
    bn_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
    bn_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tokens,
                               (uint64_t)n);
    bn_gguf_writer_add_arr(w, "tokenizer.ggml.scores", BN_GGUF_F32, scores, (uint64_t)n);
    bn_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", BN_GGUF_I32, types, (uint64_t)n);
    size_t len = 0;
    FILE *f = open_memstream(&spm_membuf, &len);
    if (!f || bn_gguf_writer_begin(w, f, &err) || bn_gguf_writer_finish(w, &err))
        die("writing the SentencePiece vocabulary", err.msg);
    fclose(f);
    bn_gguf_writer_free(w);
    for (int i = 0; i < n; i++)
        free(tokens[i]);
    bn_gguf *g = bn_gguf_open_memory(spm_membuf, len, &err);
    if (!g)
        die("reading the SentencePiece vocabulary", err.msg);
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
    spm_gguf = spm_vocab();
    spm = bn_tokenizer_load(spm_gguf, &err);
    if (!spm)
        die("loading the SentencePiece tokenizer", err.msg);
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

/* llama.cpp's SPM algorithm in its plainest form (quadratic): one fragment, prefix space. */
static size_t naive_spm(const bn_tokenizer *t, const uint8_t *text, size_t len, int32_t *out)
{
    uint8_t *esc = malloc(3 * (len + 1));
    size_t n = 0;
    if (t->add_space_prefix) {
        memcpy(esc, "\xe2\x96\x81", 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(esc + n, "\xe2\x96\x81", 3);
            n += 3;
        } else {
            esc[n++] = text[i];
        }
    }
    static const uint8_t seq[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    size_t *off = malloc((n + 1) * sizeof *off), *sz = malloc((n + 1) * sizeof *sz), ns = 0;
    for (size_t o = 0; o < n;) {
        size_t l = seq[esc[o] >> 4];
        if (l > n - o)
            l = n - o;
        off[ns] = o;
        sz[ns++] = l;
        o += l;
    }
    for (;;) {
        size_t best = SIZE_MAX;
        float best_score = 0.0f;
        for (size_t i = 0; i + 1 < ns; i++) {
            int32_t id = bn_tok_lookup(t, esc + off[i], sz[i] + sz[i + 1]);
            if (id >= 0 && (best == SIZE_MAX || t->score[id] > best_score)) {
                best = i;
                best_score = t->score[id];
            }
        }
        if (best == SIZE_MAX)
            break;
        sz[best] += sz[best + 1];
        memmove(off + best + 1, off + best + 2, (ns - best - 2) * sizeof *off);
        memmove(sz + best + 1, sz + best + 2, (ns - best - 2) * sizeof *sz);
        ns--;
    }
    size_t k = 0;
    for (size_t i = 0; i < ns; i++) {
        int32_t id = bn_tok_lookup(t, esc + off[i], sz[i]);
        if (id >= 0)
            out[k++] = id;
        else
            for (size_t b = 0; b < sz[i]; b++)
                out[k++] = t->byte_tok[esc[off[i] + b]];
    }
    free(off);
    free(sz);
    free(esc);
    return k;
}

static void spm_check(const bn_tokenizer *tk, uint8_t mode, const uint8_t *data, size_t len)
{
    const char *text = (const char *)data;
    bool parse = (mode & 2) != 0;
    bn_tokenize_opts o = {BN_BOS_NEVER, parse, BN_PRE_AUTO};
    bn_err err = {0};
    int32_t *ids;
    size_t n;
    if (bn_tokenize(tk, text, len, &o, &ids, &n, &err))
        die("spm tokenize", err.msg);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= bn_tokenizer_n_vocab(tk))
            die("spm tokenize", "id out of range");
    /* no special token can split the text: the whole text is one fragment */
    bool specials = false;
    for (int32_t id = 0; id < tk->n_vocab && !specials; id++) {
        uint8_t ty = tk->type[id];
        bool splits = ty == BN_TOK_USER_DEFINED ||
                      (parse && (ty == BN_TOK_CONTROL || ty == BN_TOK_UNKNOWN));
        size_t tl = tk->off[id + 1] - tk->off[id];
        specials = splits && tl && memmem(data, len, tk->bytes + tk->off[id], tl);
    }
    if (!specials && len && len <= 512 && tk == spm) {
        int32_t *want = malloc(3 * (len + 1) * sizeof *want);
        size_t nw = naive_spm(tk, data, len, want);
        if (nw != n || memcmp(want, ids, n * sizeof *ids) != 0)
            die("spm tokenize", "ids differ from the plain quadratic algorithm");
        free(want);
    }
    if (!specials && n > 3 * (len + 1))
        die("spm tokenize", "more than 3 ids per byte (and the prefix space)");
    char *out;
    size_t ol;
    if (bn_detokenize(tk, ids, n, true, &out, &ol, &err))
        die("spm detokenize", err.msg);
    bn_detokenizer d;
    if (bn_detok_init(&d, tk, true, &err))
        die("detok_init", err.msg);
    size_t cap = ol + 2, an = 0, l;
    uint8_t *acc = malloc(cap);
    size_t *ends = malloc((n + 1) * sizeof *ends);
    for (size_t i = 0; i < n; i++) {
        const char *p = bn_detok_push(&d, ids[i], &l);
        if (an + l > ol + 1)
            die("spm stream", "more bytes than the whole decode");
        memcpy(acc + an, p, l);
        an += l;
        ends[i] = l ? an : 0;
    }
    const char *p = bn_detok_flush(&d, &l);
    if (an + l > ol + 1)
        die("spm stream", "more bytes than the whole decode");
    memcpy(acc + an, p, l);
    an += l;
    size_t skip = an == ol + 1 && acc[0] == ' ' ? 1 : 0; /* the prefix space bn_detokenize drops */
    if (an != ol + skip || memcmp(acc + skip, out, ol) != 0)
        die("spm stream", "bytes differ from the whole decode");
    uint8_t *starts = unit_starts(acc, an);
    for (size_t i = 0; i < n; i++)
        if (ends[i] && !starts[ends[i]])
            die("spm stream", "a chunk ends inside a UTF-8 sequence");
    free(starts);
    free(ends);
    free(acc);
    free(out);
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
        if (data[0] & 4) {
            spm_check(spm, data[0], data + 1, size - 1);
        } else {
            round_trip(tok, data[0], data + 1, size - 1);
            windows_equal_whole(tok, data[0], data + 1, size - 1);
        }
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
            if (bn_tokenizer_is_spm(t))
                spm_check(t, mode, (const uint8_t *)sample, sizeof sample - 1);
            else
                round_trip(t, mode, (const uint8_t *)sample, sizeof sample - 1);
        if (!bn_tokenizer_is_spm(t)) /* windows of 16 bytes */
            windows_equal_whole(t, 0x0c, (const uint8_t *)sample, sizeof sample - 1);
        bn_tokenizer_free(t);
    } else if (!err.msg[0] || strchr(err.msg, '\n')) {
        die("load", "failure without a one-line message");
    }
    bn_gguf_close(g);
    return 0;
}
