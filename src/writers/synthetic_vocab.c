/* Vocabularies for synthetic models: copied from a GGUF, or made up (see synthetic_model.h).
 *
 * The made-up one is a valid byte-level BPE vocabulary: every merge "left right" joins two
 * existing tokens into a new one, in rank order. Merged tokens are the successive prefixes of
 * words (a built-in English corpus first, then seeded pseudo-words), which is enough for a
 * tokenizer to exercise real merges, and fills any size quickly. */
#include "synthetic_model.h"

#include <stdlib.h>
#include <string.h>

#include "rng.h"

static const char corpus[] =
    "The quick brown fox jumps over the lazy dog while the model counts tokens.\n"
    "A ternary weight is minus one, zero or plus one, and a single scale per tensor\n"
    "turns those integers back into real numbers. Activations are rounded to eight\n"
    "bits per token before every matrix product, then the integer sums are scaled.\n"
    "Inference engines read the file, map the weights, and run attention, a gated\n"
    "feed forward block with squared rectified units, and a tied output head.\n"
    "Numbers like 12, 345, 2048 and 1.58 appear in papers; so do words such as\n"
    "quantization, normalization, embedding, position, rotation and softmax.\n"
    "It's what they'll say: we've seen it, you'd know, I'm sure, they're right.\n"
    "def forward(x): return norm(x) @ weight + bias  # code, too {braces} [brackets]\n";

static const char *const syllables[] = {
    "ka",   "ri", "to",  "na",  "me",  "su",   "lo",  "pa",  "te",  "mi",  "ru",
    "shi",  "ne", "ho",  "ba",  "de",  "gi",   "fu",  "ya",  "zo",  "an",  "en",
    "in",   "on", "un",  "ar",  "er",  "ir",   "or",  "ur",  "al",  "el",  "il",
    "ol",   "ul", "th",  "st",  "ch",  "sh",   "qu",  "ing", "ion", "ter", "ment",
    "able", "ly", "est", "ous", "ive", "tion", "pre", "pro", "con", "dis"};

static const char *const llama3_special_head[] = {"<|begin_of_text|>",
                                                  "<|end_of_text|>",
                                                  "<|reserved_special_token_0|>",
                                                  "<|reserved_special_token_1|>",
                                                  "<|reserved_special_token_2|>",
                                                  "<|reserved_special_token_3|>",
                                                  "<|start_header_id|>",
                                                  "<|end_header_id|>",
                                                  "<|reserved_special_token_4|>",
                                                  "<|eot_id|>"};

/* GPT-2's byte -> printable code point map, in GPT-2's (= Llama 3's) token order: the
 * printable bytes first (mapped to themselves), then the others mapped to 256, 257, ... */
static void byte_table(uint8_t order[256], unsigned cp[256])
{
    int n = 0, extra = 0, used[256] = {0};
    for (int b = 0; b < 256; b++)
        if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
            order[n] = (uint8_t)b;
            cp[n++] = (unsigned)b;
            used[b] = 1;
        }
    for (int b = 0; b < 256; b++)
        if (!used[b]) {
            order[n] = (uint8_t)b;
            cp[n++] = 256u + (unsigned)extra++;
        }
}

static int utf8(unsigned c, char *out)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    out[0] = (char)(0xC0 | (c >> 6)); /* every code point here is < 0x800 */
    out[1] = (char)(0x80 | (c & 0x3F));
    return 2;
}

typedef struct builder {
    bn_synth_vocab *v;
    uint64_t cap_tokens, cap_merges, cap_owned;
    char **tok;    /* NUL-terminated tokens, index = id */
    uint32_t *set; /* open addressing: token id + 1 */
    size_t set_cap;
    int oom;
} builder;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

static int own(builder *b, char *s)
{
    bn_synth_vocab *v = b->v;
    if (!s) {
        b->oom = 1;
        return -1;
    }
    if (v->n_owned == b->cap_owned) {
        uint64_t cap = b->cap_owned ? 2 * b->cap_owned : 1024;
        char **p = realloc(v->owned, cap * sizeof *p);
        if (!p) {
            free(s);
            b->oom = 1;
            return -1;
        }
        v->owned = p;
        b->cap_owned = cap;
    }
    v->owned[v->n_owned++] = s;
    return 0;
}

/* Adds token S (taking ownership) unless it exists; returns 1 when added, 0 when present. */
static int add_token(builder *b, char *s)
{
    if (!s) {
        b->oom = 1;
        return -1;
    }
    size_t mask = b->set_cap - 1, slot = hash_str(s) & mask;
    while (b->set[slot]) {
        if (strcmp(b->tok[b->set[slot] - 1], s) == 0) {
            free(s);
            return 0;
        }
        slot = (slot + 1) & mask;
    }
    if (own(b, s))
        return -1;
    uint64_t id = b->v->n_tokens++;
    b->tok[id] = s;
    b->set[slot] = (uint32_t)id + 1;
    return 1;
}

static int add_merge(builder *b, const char *left, const char *right)
{
    size_t nl = strlen(left), nr = strlen(right);
    char *m = malloc(nl + nr + 2);
    if (!m || own(b, m)) {
        b->oom = 1;
        return -1;
    }
    memcpy(m, left, nl);
    m[nl] = ' ';
    memcpy(m + nl + 1, right, nr + 1);
    if (b->v->n_merges == b->cap_merges) {
        uint64_t cap = b->cap_merges ? 2 * b->cap_merges : 1024;
        bn_gguf_str *p = realloc(b->v->merges, cap * sizeof *p);
        if (!p) {
            b->oom = 1;
            return -1;
        }
        b->v->merges = p;
        b->cap_merges = cap;
    }
    b->v->merges[b->v->n_merges++] = (bn_gguf_str){m, nl + nr + 1};
    return 0;
}

/* Adds the prefixes of WORD (raw bytes) as merged tokens until the vocabulary has LIMIT. */
static int add_word(builder *b, const char *word, size_t len, char enc[256][3], uint64_t limit)
{
    char cur[256];
    size_t n = 0;
    for (size_t i = 0; i < len && b->v->n_tokens < limit; i++) {
        const char *sym = enc[(uint8_t)word[i]];
        size_t k = strlen(sym);
        if (n + k >= sizeof cur)
            break;
        if (i == 0) {
            memcpy(cur, sym, k + 1);
            n = k;
            continue;
        }
        char *next = malloc(n + k + 1);
        if (!next) {
            b->oom = 1;
            return -1;
        }
        memcpy(next, cur, n);
        memcpy(next + n, sym, k + 1);
        int added = add_token(b, next);
        if (added < 0)
            return -1;
        if (added && add_merge(b, cur, sym))
            return -1;
        memcpy(cur + n, sym, k + 1);
        n += k;
    }
    return 0;
}

/* Word I of the endless word stream: the corpus words (a leading space where one was), then
 * pseudo-words. Writes into W (room 64). */
static size_t next_word(size_t *corpus_pos, bn_rng *r, char *w)
{
    size_t p = *corpus_pos, n = 0;
    while (corpus[p]) {
        if (corpus[p] == '\n') {
            p++;
            continue;
        }
        /* take an optional leading space plus the non-space run after it */
        if (corpus[p] == ' ')
            w[n++] = corpus[p++];
        while (corpus[p] && corpus[p] != ' ' && corpus[p] != '\n' && n < 63)
            w[n++] = corpus[p++];
        *corpus_pos = p;
        if (n)
            return n;
    }
    *corpus_pos = p;
    w[n++] = ' ';
    if (bn_rng_uniform(r) < 0.05) {
        n += (size_t)snprintf(w + n, 16, "%u", (unsigned)bn_rng_below(r, 100000));
        return n;
    }
    int ns = 1 + (int)bn_rng_below(r, 4);
    size_t start = n;
    for (int i = 0; i < ns; i++) {
        const char *s = syllables[bn_rng_below(r, sizeof syllables / sizeof syllables[0])];
        size_t k = strlen(s);
        memcpy(w + n, s, k);
        n += k;
    }
    if (bn_rng_uniform(r) < 0.15 && w[start] >= 'a' && w[start] <= 'z')
        w[start] = (char)(w[start] - 'a' + 'A');
    return n;
}

int bn_synth_vocab_make(uint32_t n_vocab, uint64_t seed, bn_synth_vocab *v, bn_err *err)
{
    memset(v, 0, sizeof *v);
    v->add_eos = -1;
    v->unk_id = v->pad_id = -1;
    if (n_vocab < 256 + BN_SYNTH_N_SPECIAL + 1)
        return bn_fail(err, BN_E_INPUT, "a synthetic vocabulary needs at least %d tokens, not %u",
                       256 + BN_SYNTH_N_SPECIAL + 1, n_vocab);
    builder b = {.v = v};
    b.tok = calloc(n_vocab, sizeof *b.tok);
    b.set_cap = 1;
    while (b.set_cap < 2 * (size_t)n_vocab)
        b.set_cap *= 2;
    b.set = calloc(b.set_cap, sizeof *b.set);
    if (!b.tok || !b.set) {
        free(b.tok);
        free(b.set);
        return bn_fail(err, BN_E_NOMEM, "out of memory for a %u-token vocabulary", n_vocab);
    }
    uint8_t order[256];
    unsigned cp[256];
    char enc[256][3];
    byte_table(order, cp);
    for (int i = 0; i < 256; i++) {
        char s[3] = {0};
        utf8(cp[i], s);
        memcpy(enc[order[i]], s, 3);
        add_token(&b, strdup(s));
    }
    const uint64_t n_normal = n_vocab - BN_SYNTH_N_SPECIAL;
    bn_rng r;
    bn_rng_seed(&r, seed ^ 0x766f636162756c61ull);
    size_t corpus_pos = 0;
    char word[64];
    for (uint64_t i = 0; v->n_tokens < n_normal && !b.oom; i++) {
        if (i > 64 * (uint64_t)n_vocab + 100000) { /* cannot happen with 60^4 pseudo-words */
            free(b.tok);
            free(b.set);
            bn_synth_vocab_free(v);
            return bn_fail(err, BN_E_INPUT, "synthetic vocabulary: word stream exhausted");
        }
        size_t n = next_word(&corpus_pos, &r, word);
        add_word(&b, word, n, enc, n_normal);
    }
    for (uint32_t k = 0; k < BN_SYNTH_N_SPECIAL && !b.oom; k++) {
        char s[64];
        if (k < 10)
            snprintf(s, sizeof s, "%s", llama3_special_head[k]);
        else
            snprintf(s, sizeof s, "<|reserved_special_token_%u|>", k - 5);
        add_token(&b, strdup(s));
    }
    v->tokens = calloc(n_vocab, sizeof *v->tokens);
    v->types = calloc(n_vocab, sizeof *v->types);
    if (b.oom || !v->tokens || !v->types || v->n_tokens != n_vocab) {
        free(b.tok);
        free(b.set);
        bn_synth_vocab_free(v);
        return bn_fail(err, BN_E_NOMEM, "out of memory building the synthetic vocabulary");
    }
    for (uint64_t i = 0; i < n_vocab; i++) {
        v->tokens[i] = (bn_gguf_str){b.tok[i], strlen(b.tok[i])};
        v->types[i] = i < n_normal ? 1 : 3;
    }
    v->bos = (uint32_t)n_normal;
    v->eos = (uint32_t)n_normal + 1;
    free(b.tok);
    free(b.set);
    return 0;
}

/* SentencePiece: the scores, and the keys the converter's SpecialVocab may write. */
static int load_spm_extras(const bn_gguf *g, bn_synth_vocab *v, bn_err *err)
{
    v->scores = calloc(v->n_tokens, sizeof *v->scores);
    if (!v->scores)
        return bn_fail(err, BN_E_NOMEM, "out of memory");
    if (bn_gguf_find(g, "tokenizer.ggml.scores")) {
        const bn_gguf_kv *sc;
        if (bn_gguf_get_arr(g, "tokenizer.ggml.scores", BN_GGUF_F32, &sc, err))
            return -1;
        if (sc->arr_len != v->n_tokens)
            return bn_fail(err, BN_E_INPUT,
                           "tokenizer.ggml.scores has %llu entries for %llu tokens",
                           (unsigned long long)sc->arr_len, (unsigned long long)v->n_tokens);
        for (uint64_t i = 0; i < v->n_tokens; i++)
            v->scores[i] = bn_gguf_arr_f32(sc, i);
    }
    bool b;
    uint32_t u;
    if (bn_gguf_find(g, "tokenizer.ggml.add_eos_token")) {
        if (bn_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b, err))
            return -1;
        v->add_eos = b;
    }
    if (bn_gguf_find(g, "tokenizer.ggml.unknown_token_id")) {
        if (bn_gguf_get_u32(g, "tokenizer.ggml.unknown_token_id", &u, err))
            return -1;
        v->unk_id = u;
    }
    if (bn_gguf_find(g, "tokenizer.ggml.padding_token_id")) {
        if (bn_gguf_get_u32(g, "tokenizer.ggml.padding_token_id", &u, err))
            return -1;
        v->pad_id = u;
    }
    return 0;
}

int bn_synth_vocab_load(const char *path, bn_synth_vocab *v, bn_err *err)
{
    memset(v, 0, sizeof *v);
    bn_gguf *g = bn_gguf_open(path, err);
    if (!g)
        return -1;
    v->src = g;
    const bn_gguf_kv *toks, *merges = NULL, *types = NULL;
    v->add_eos = -1;
    v->unk_id = v->pad_id = -1;
    bn_gguf_str model;
    if (bn_gguf_get_str(g, "tokenizer.ggml.model", &model, err) ||
        bn_gguf_get_arr(g, "tokenizer.ggml.tokens", BN_GGUF_STRING, &toks, err))
        goto fail;
    v->spm = bn_gguf_str_eq(model, "llama");
    if (!v->spm && bn_gguf_get_arr(g, "tokenizer.ggml.merges", BN_GGUF_STRING, &merges, err))
        goto fail;
    if (toks->arr_len == 0 || toks->arr_len > UINT32_MAX) {
        bn_fail(err, BN_E_INPUT, "tokenizer.ggml.tokens has %llu entries",
                (unsigned long long)toks->arr_len);
        goto fail;
    }
    if (bn_gguf_find(g, "tokenizer.ggml.token_type")) {
        if (bn_gguf_get_arr(g, "tokenizer.ggml.token_type", BN_GGUF_I32, &types, err))
            goto fail;
        if (types->arr_len != toks->arr_len) {
            bn_fail(err, BN_E_INPUT, "tokenizer.ggml.token_type has %llu entries for %llu tokens",
                    (unsigned long long)types->arr_len, (unsigned long long)toks->arr_len);
            goto fail;
        }
    }
    v->n_tokens = toks->arr_len;
    v->tokens = toks->arr_strs;
    v->n_merges = merges ? merges->arr_len : 0;
    v->merges = merges ? merges->arr_strs : NULL;
    v->types = malloc(v->n_tokens * sizeof *v->types);
    if (!v->types) {
        bn_fail(err, BN_E_NOMEM, "out of memory");
        goto fail;
    }
    for (uint64_t i = 0; i < v->n_tokens; i++)
        v->types[i] = types ? bn_gguf_arr_i32(types, i) : 1;
    if (v->spm && load_spm_extras(g, v, err))
        goto fail;
    v->bos = v->spm ? 1 : 128000; /* llama.cpp's defaults */
    v->eos = v->spm ? 2 : 128001;
    if ((bn_gguf_find(g, "tokenizer.ggml.bos_token_id") &&
         bn_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &v->bos, err)) ||
        (bn_gguf_find(g, "tokenizer.ggml.eos_token_id") &&
         bn_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &v->eos, err)))
        goto fail;
    if (v->bos >= v->n_tokens || v->eos >= v->n_tokens) {
        bn_fail(err, BN_E_INPUT, "bos %u / eos %u outside the %llu tokens", v->bos, v->eos,
                (unsigned long long)v->n_tokens);
        goto fail;
    }
    /* the views belong to g: keep it open until the vocabulary is freed */
    return 0;
fail:
    bn_fail_prefix(err, "%s", path);
    bn_synth_vocab_free(v);
    return -1;
}

void bn_synth_vocab_free(bn_synth_vocab *v)
{
    if (v->src) {
        /* tokens/merges are views owned by the source file's index */
        bn_gguf_close(v->src);
    } else {
        free(v->tokens);
        free(v->merges);
    }
    for (uint64_t i = 0; i < v->n_owned; i++)
        free(v->owned[i]);
    free(v->owned);
    free(v->types);
    free(v->scores);
    memset(v, 0, sizeof *v);
}
