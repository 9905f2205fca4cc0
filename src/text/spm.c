/* SentencePiece tokenizer (`tokenizer.ggml.model = "llama"`, the 1bitLLM bitnet_b1_58 files),
 * with exactly the semantics of the reference's llama.cpp (llm_tokenizer_spm and the SPM branch
 * of llama_tokenize_internal in 3rdparty/llama.cpp/src/llama-vocab.cpp):
 *
 *   text ──special tokens split out (control/unknown only with parse_special; user-defined
 *         always)──► each text fragment: a leading space when add_space_prefix and the fragment
 *         is first or follows a special token, every ' ' -> U+2581 "▁"
 *        ──► one symbol per UTF-8 character (length from the lead byte) ──► repeatedly merge the
 *         adjacent pair whose concatenation is a token with the highest score (leftmost among
 *         equal scores) ──► each symbol: its token, else one <0xNN> byte token per byte.
 *
 * Any token text can be matched (llama.cpp's token_to_id holds every token), so the token table
 * here is keyed by the stored text of every token.
 *
 * Cost: a fragment of m bytes takes at most 3(m+1) bytes of escaped text, one 16-byte symbol
 * per character (at most 1.5 per byte, see text_fragment) and at most three 16-byte queue
 * entries per symbol (its first pair plus two per merge), plus room for 3(m+1) ids: about 80
 * bytes per input byte for ordinary text, at most ~110, the scratch freed when the call
 * returns. Time is O(m log m + m * L), L the longest token (each tried pair is hashed, and a
 * pair longer than the longest token is rejected without hashing); a text without spaces is
 * not quadratic. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"

/* ------------------------------------------------------------------ loading */

/* "<0xNN>" (any hex case) -> the byte, else -1. */
static int parse_byte_token(const char *s, size_t n)
{
    if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Decoded form of a normal token: every U+2581 (E2 96 81) becomes a space. */
static size_t unescape_spaces(const uint8_t *s, size_t n, uint8_t *dst)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (i + 2 < n && s[i] == 0xE2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) {
            dst[o++] = ' ';
            i += 3;
        } else {
            dst[o++] = s[i++];
        }
    }
    return o;
}

static int build_pieces(bn_tokenizer *t, bn_err *err)
{
    size_t total = t->off[t->n_vocab]; /* a piece is never longer than its text */
    t->piece_off = malloc(((size_t)t->n_vocab + 1) * sizeof *t->piece_off);
    t->piece = malloc(total ? total : 1);
    if (!t->piece_off || !t->piece)
        return bn_fail(err, BN_E_NOMEM, "out of memory loading %d tokens", t->n_vocab);
    uint32_t o = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        const uint8_t *s = t->bytes + t->off[i];
        size_t n = t->off[i + 1] - t->off[i];
        t->piece_off[i] = o;
        switch (t->type[i]) {
        case BN_TOK_NORMAL: o += (uint32_t)unescape_spaces(s, n, t->piece + o); break;
        case BN_TOK_BYTE: {
            int b = parse_byte_token((const char *)s, n);
            if (b < 0)
                return bn_fail(err, BN_E_FORMAT,
                               "tokenizer.ggml.tokens[%d] \"%.*s\" has type BYTE but is not "
                               "\"<0xNN>\"",
                               i, (int)(n > 40 ? 40 : n), (const char *)s);
            t->piece[o++] = (uint8_t)b;
            break;
        }
        case BN_TOK_CONTROL:
        case BN_TOK_UNKNOWN:
        case BN_TOK_USER_DEFINED:
            memcpy(t->piece + o, s, n);
            o += (uint32_t)n;
            break;
        default: /* unused and undefined tokens decode to nothing (llama.cpp) */ break;
        }
    }
    t->piece_off[t->n_vocab] = o;
    return 0;
}

/* An id key: absent -> DEF (-1 when DEF is out of range); present -> must be in range. */
static int id_key(const bn_gguf *g, const bn_tokenizer *t, const char *key, int32_t def,
                  int32_t *out, bn_err *err)
{
    *out = def < t->n_vocab ? def : -1;
    if (!bn_gguf_find(g, key))
        return 0;
    uint32_t v;
    if (bn_gguf_get_u32(g, key, &v, err))
        return -1;
    if (v >= (uint32_t)t->n_vocab)
        return bn_fail(err, BN_E_FORMAT, "%s = %u is out of range (vocabulary of %d tokens)", key,
                       v, t->n_vocab);
    *out = (int32_t)v;
    return 0;
}

static int bool_key(const bn_gguf *g, const char *key, bool def, bool *out, bn_err *err)
{
    *out = def;
    return bn_gguf_find(g, key) ? bn_gguf_get_bool(g, key, out, err) : 0;
}

int bn_spm_load(const bn_gguf *g, bn_tokenizer *t, bn_err *err)
{
    t->score = calloc((size_t)t->n_vocab, sizeof *t->score);
    if (!t->score)
        return bn_fail(err, BN_E_NOMEM, "out of memory loading %d scores", t->n_vocab);
    if (bn_gguf_find(g, "tokenizer.ggml.scores")) {
        const bn_gguf_kv *sc;
        if (bn_gguf_get_arr(g, "tokenizer.ggml.scores", BN_GGUF_F32, &sc, err))
            return -1;
        if (sc->arr_len != (uint64_t)t->n_vocab)
            return bn_fail(err, BN_E_FORMAT,
                           "tokenizer.ggml.scores has %llu entries but tokens has %d",
                           (unsigned long long)sc->arr_len, t->n_vocab);
        for (int32_t i = 0; i < t->n_vocab; i++)
            t->score[i] = bn_gguf_arr_f32(sc, (uint64_t)i);
    }
    if (build_pieces(t, err))
        return -1;
    t->pre = BN_PRE_DEFAULT; /* unused: SentencePiece has no pre-tokenizer (never AUTO) */
    if (id_key(g, t, "tokenizer.ggml.bos_token_id", 1, &t->bos, err) ||
        id_key(g, t, "tokenizer.ggml.eos_token_id", 2, &t->eos, err) ||
        id_key(g, t, "tokenizer.ggml.unknown_token_id", 0, &t->unk, err) ||
        bool_key(g, "tokenizer.ggml.add_bos_token", true, &t->add_bos, err) ||
        bool_key(g, "tokenizer.ggml.add_eos_token", false, &t->add_eos, err) ||
        bool_key(g, "tokenizer.ggml.add_space_prefix", true, &t->add_space_prefix, err))
        return -1;
    /* byte fallback: the token "<0xNN>", else the byte itself as a token (llama.cpp's
       byte_to_token), else UNK (where llama.cpp throws: a vocabulary without byte tokens) */
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; b++) {
        const uint8_t name[6] = {'<', '0', 'x', (uint8_t)hex[b >> 4], (uint8_t)hex[b & 15], '>'};
        const uint8_t c = (uint8_t)b;
        int32_t id = bn_tok_lookup(t, name, sizeof name);
        if (id < 0)
            id = bn_tok_lookup(t, &c, 1);
        t->byte_tok[b] = id >= 0 ? id : t->unk;
        if (t->byte_tok[b] < 0)
            return bn_fail(err, BN_E_FORMAT,
                           "tokenizer.ggml.tokens has no token for byte 0x%02x (no <0x%02X> "
                           "token, no unknown token)",
                           b, b);
    }
    return 0;
}

/* ------------------------------------------------------------------ tokenizing */

#define SPM_MAX_TEXT (1 << 30) /* bytes of text per call */

typedef struct sym {
    uint32_t off, n; /* bytes of the escaped text; n = 0 once merged into its left neighbour */
    int32_t prev, next;
} sym;

/* A candidate merge. key orders the queue: score descending, then left symbol ascending. */
typedef struct cand {
    uint64_t key;
    int32_t right;
    uint32_t size; /* bytes of left + right when pushed: a stale entry no longer matches */
} cand;

typedef struct work {
    const bn_tokenizer *t;
    uint8_t *esc;
    sym *sy;
    cand *heap; /* at most 3 entries per symbol: its first pair and two per merge */
    size_t cap_esc, cap_sy, cap_heap, n_heap;
    int32_t *out;
    size_t n_out, cap_out;
} work;

/* Float -> key part that sorts descending as an unsigned integer (-0 and +0 equal). */
static uint32_t score_desc(float f)
{
    if (f == 0.0f)
        f = 0.0f;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u); /* ascending */
    return ~u;
}

static void heap_push(work *w, cand c)
{
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (w->heap[p].key <= c.key)
            break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = c;
}

static cand heap_pop(work *w)
{
    cand top = w->heap[0], last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && w->heap[c + 1].key < w->heap[c].key)
            c++;
        if (last.key <= w->heap[c].key)
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n)
        w->heap[i] = last;
    return top;
}

static void try_pair(work *w, int32_t l, int32_t r)
{
    if (l < 0 || r < 0)
        return;
    uint32_t size = w->sy[l].n + w->sy[r].n;
    int32_t id = bn_tok_lookup(w->t, w->esc + w->sy[l].off, size);
    if (id < 0)
        return;
    uint64_t key = (uint64_t)score_desc(w->t->score[id]) << 32 | (uint32_t)l;
    heap_push(w, (cand){key, r, size});
}

static const uint8_t utf8_len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};

/* Tokenizes the escaped text esc[0..n) and appends the ids (at most n). */
static void spm_fragment(work *w, size_t n)
{
    int32_t ns = 0;
    for (size_t o = 0; o < n;) {
        size_t l = utf8_len[w->esc[o] >> 4];
        if (l > n - o)
            l = n - o;
        w->sy[ns] = (sym){(uint32_t)o, (uint32_t)l, ns - 1, o + l == n ? -1 : ns + 1};
        ns++;
        o += l;
    }
    w->n_heap = 0;
    for (int32_t i = 1; i < ns; i++)
        try_pair(w, i - 1, i);
    while (w->n_heap) {
        cand c = heap_pop(w);
        int32_t l = (int32_t)(c.key & 0xFFFFFFFFu);
        sym *ls = &w->sy[l], *rs = &w->sy[c.right];
        if (ls->n == 0 || rs->n == 0 || ls->n + rs->n != c.size)
            continue;
        ls->n += rs->n;
        rs->n = 0;
        ls->next = rs->next;
        if (rs->next >= 0)
            w->sy[rs->next].prev = l;
        try_pair(w, ls->prev, l);
        try_pair(w, l, ls->next);
    }
    for (int32_t i = ns ? 0 : -1; i >= 0; i = w->sy[i].next) {
        const uint8_t *p = w->esc + w->sy[i].off;
        int32_t id = bn_tok_lookup(w->t, p, w->sy[i].n);
        if (id >= 0) {
            w->out[w->n_out++] = id;
            continue;
        }
        for (uint32_t k = 0; k < w->sy[i].n; k++)
            w->out[w->n_out++] = w->t->byte_tok[p[k]];
    }
}

/* P grown to hold n elements of size sz (contents dropped: every user refills it); NULL when
 * out of memory (P is then freed and *cap is 0). */
static void *room(void *p, size_t *cap, size_t n, size_t sz)
{
    if (n <= *cap)
        return p;
    free(p);
    p = malloc(n * sz);
    *cap = p ? n : 0;
    return p;
}

/* One text fragment: escape it, make room for its symbols, queue and ids, tokenize. */
static int text_fragment(work *w, const uint8_t *s, size_t m, bool prefix, bn_err *err)
{
    size_t need_out = w->n_out + 3 * (m + 1) + 2; /* at most one id per escaped byte */
    if (need_out > w->cap_out) {
        size_t c = w->cap_out * 2 > need_out ? w->cap_out * 2 : need_out;
        int32_t *o = realloc(w->out, c * sizeof *o);
        if (!o)
            return bn_fail(err, BN_E_NOMEM, "tokenize: out of memory for %zu ids", c);
        w->out = o;
        w->cap_out = c;
    }
    w->esc = room(w->esc, &w->cap_esc, 3 * (m + 1), 1);
    if (!w->esc)
        return bn_fail(err, BN_E_NOMEM, "tokenize: out of memory for %zu bytes of text", m);
    size_t n = 0;
    if (prefix) {
        memcpy(w->esc, "\xE2\x96\x81", 3);
        n = 3;
    }
    for (size_t i = 0; i < m; i++) {
        if (s[i] == ' ') {
            memcpy(w->esc + n, "\xE2\x96\x81", 3);
            n += 3;
        } else {
            w->esc[n++] = s[i];
        }
    }
    /* symbols can outnumber the input characters: a lead byte swallows the first bytes of an
       escaped space after it ("\xC3 " -> [C3 E2][96][81]), at most 1.5 per input byte */
    size_t ns = 0;
    for (size_t o = 0; o < n; ns++)
        o += utf8_len[w->esc[o] >> 4];
    w->sy = room(w->sy, &w->cap_sy, ns, sizeof *w->sy);
    w->heap = room(w->heap, &w->cap_heap, 3 * ns, sizeof *w->heap);
    if (!w->sy || !w->heap)
        return bn_fail(err, BN_E_NOMEM, "tokenize: out of memory for %zu bytes of text", m);
    spm_fragment(w, n);
    return 0;
}

static int push_id(work *w, int32_t id, bn_err *err)
{
    if (w->n_out == w->cap_out) {
        size_t c = w->cap_out ? 2 * w->cap_out : 16;
        int32_t *o = realloc(w->out, c * sizeof *o);
        if (!o)
            return bn_fail(err, BN_E_NOMEM, "tokenize: out of memory for %zu ids", c);
        w->out = o;
        w->cap_out = c;
    }
    w->out[w->n_out++] = id;
    return 0;
}

int bn_spm_tokenize(const bn_tokenizer *t, const uint8_t *s, size_t len, bool bos, bool eos,
                    bool parse_special, int32_t **ids, size_t *n, bn_err *err)
{
    /* escaped offsets are 32-bit (3 bytes per space) and symbol indices int32 (1.5 per byte) */
    if (len > SPM_MAX_TEXT)
        return bn_fail(err, BN_E_INPUT,
                       "tokenize: text of %zu bytes is too long for a SentencePiece vocabulary "
                       "(at most %d)",
                       len, SPM_MAX_TEXT);
    work w = {.t = t};
    int rc = 0;
    bool prev_special = true; /* the first fragment gets the space prefix */
    if (bos && t->bos >= 0)
        rc = push_id(&w, t->bos, err);
    size_t start = 0;
    bn_special_scan sc;
    bool scanning = !rc && len && (parse_special || t->has_user_defined);
    if (scanning && bn_special_scan_init(&sc, t, s, len, parse_special, err)) {
        scanning = false;
        rc = -1;
    }
    if (scanning) {
        size_t at;
        int32_t id;
        while (!rc && (id = bn_special_next(&sc, start, &at)) >= 0) {
            if (at > start) {
                rc = text_fragment(&w, s + start, at - start, t->add_space_prefix && prev_special,
                                   err);
                prev_special = false;
            }
            if (!rc)
                rc = push_id(&w, id, err);
            prev_special = true;
            start = at + (t->off[id + 1] - t->off[id]);
        }
        bn_special_scan_free(&sc);
    }
    if (!rc && start < len)
        rc = text_fragment(&w, s + start, len - start, t->add_space_prefix && prev_special, err);
    if (!rc && eos && t->eos >= 0)
        rc = push_id(&w, t->eos, err);
    free(w.esc);
    free(w.sy);
    free(w.heap);
    if (rc) {
        free(w.out);
        return -1;
    }
    if (!w.out)
        w.out = malloc(sizeof *w.out); /* an empty result is still a freeable array */
    if (!w.out)
        return bn_fail(err, BN_E_NOMEM, "tokenize: out of memory");
    *ids = w.out;
    *n = w.n_out;
    return 0;
}
