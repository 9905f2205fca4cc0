/* Pre-tokenizers, written by hand (no regex library): they cut text into the pieces BPE then
 * encodes one by one.
 *
 * Llama 3 (the model's training tokenizer) uses one regex, alternatives tried in order at each
 * position:
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}{1,3}
 *   | ' '?[^\s\p{L}\p{N}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
 * llama.cpp's "default" (what bitnet.cpp falls back to without tokenizer.ggml.pre) applies four
 * patterns in sequence, each splitting the pieces of the previous one (matches and the
 * stretches between them both stay pieces):
 *   1. [\p{P}\$\+<=>\^~\|]+   2. GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|
 *   ?[^\s\p{L}\p{N}]+|\s+(?!\S) (llama.cpp's hand-written version, whose lookahead stops at
 *   the end of the piece)   3. \p{N}+   4. [0-9][0-9][0-9]
 * Falcon3's (tokenizer.ggml.pre "falcon3", and "falcon_e" which llama.cpp treats the same) is
 * the default with the backtick added to stage 1 and, instead of stages 3-4, [0-9]: every
 * ASCII digit a piece of its own.
 *
 * Text is walked as UTF-8; a byte that does not start a valid sequence is a unit of its own in
 * the "other" class (like U+FFFD, which is a symbol), so invalid input is split, not rejected,
 * and its bytes survive unchanged. */
#include <stdbool.h>

#include "tokenizer_impl.h"
#include "unicode.h"

enum {
    PRESENT = 0x10
}; /* flag bit: the position is inside the current range */

typedef struct cursor {
    const uint8_t *s;
    size_t n;           /* end of the current range */
    const uint8_t *bmp; /* flat BMP flags */
    bn_piece_fn emit;
    void *ctx;
    bool falcon3; /* the Falcon3 variant of the default split (header comment) */
} cursor;

/* Flags of the unit at byte I (< c->n), its length in *len and code point in *cp. */
static inline uint8_t unit_at(const cursor *c, size_t i, size_t *len, uint32_t *cp)
{
    uint8_t b = c->s[i];
    if (b < 0x80) {
        *len = 1;
        *cp = b;
        return c->bmp[b];
    }
    *len = bn_utf8_decode(c->s + i, c->n - i, cp);
    if (*cp == BN_UTF8_INVALID)
        return BN_UC_OTHER;
    return *cp < 0x10000 ? c->bmp[*cp] : bn_unicode_flags(*cp);
}

static inline bool is_letter(uint8_t f) { return (f & BN_UC_CLASS_MASK) == BN_UC_L; }
static inline bool is_number(uint8_t f) { return (f & BN_UC_CLASS_MASK) == BN_UC_N; }
static inline bool is_space(uint8_t f) { return (f & BN_UC_WS) != 0; }
static inline bool is_other(uint8_t f) { return !is_space(f) && !is_letter(f) && !is_number(f); }

/* End of the run of letters starting at J. */
static size_t letters_end(const cursor *c, size_t j)
{
    size_t l;
    uint32_t cp;
    while (j < c->n) {
        uint8_t b = c->s[j];
        if (b < 0x80) {
            if (!is_letter(c->bmp[b]))
                break;
            j++;
            continue;
        }
        if (!is_letter(unit_at(c, j, &l, &cp)))
            break;
        j += l;
    }
    return j;
}

static size_t others_end(const cursor *c, size_t j)
{
    size_t l;
    uint32_t cp;
    while (j < c->n && is_other(unit_at(c, j, &l, &cp)))
        j += l;
    return j;
}

static inline uint8_t lower_ascii(uint8_t b)
{
    return (b >= 'A' && b <= 'Z') ? (uint8_t)(b + 32) : b;
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d) at I (s[i] == '\''): end of the match or 0. Case-insensitive
 * matching also folds U+017F (long s) to s, as the regex engines of the reference do. */
static size_t contraction(const cursor *c, size_t i)
{
    const uint8_t *s = c->s;
    if (i + 1 >= c->n)
        return 0;
    uint8_t a = lower_ascii(s[i + 1]);
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return i + 2;
    if (s[i + 1] == 0xC5 && i + 2 < c->n && s[i + 2] == 0xBF)
        return i + 3;
    if (i + 2 < c->n) {
        uint8_t b = lower_ascii(s[i + 2]);
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
            return i + 3;
    }
    return 0;
}

/* End of the Llama-3 piece starting at I (< n). */
static size_t llama3_next(const cursor *c, size_t i)
{
    const uint8_t *s = c->s;
    const size_t n = c->n;
    size_t l, l2;
    uint32_t cp, cp2;
    uint8_t f = unit_at(c, i, &l, &cp);
    if (cp == '\'') {
        size_t e = contraction(c, i);
        if (e)
            return e;
    }
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (is_letter(f))
        return letters_end(c, i + l);
    if (cp != '\r' && cp != '\n' && !is_number(f) && i + l < n &&
        is_letter(unit_at(c, i + l, &l2, &cp2)))
        return letters_end(c, i + l + l2);
    /* \p{N}{1,3} */
    if (is_number(f)) {
        size_t j = i + l;
        for (int k = 1; k < 3 && j < n && is_number(unit_at(c, j, &l2, &cp2)); k++)
            j += l2;
        return j;
    }
    /* ' '?[^\s\p{L}\p{N}]+[\r\n]* */
    size_t j = i;
    if (cp == ' ' && i + 1 < n && is_other(unit_at(c, i + 1, &l2, &cp2)))
        j = i + 1;
    if (j > i || is_other(f)) {
        j = others_end(c, j);
        while (j < n && (s[j] == '\r' || s[j] == '\n'))
            j++;
        return j;
    }
    /* whitespace: \s*[\r\n]+ ends after the run's last newline; else \s+(?!\S) leaves the
       run's last character for the next piece unless the run ends the text or is one char */
    size_t e = i, last_start = i, nl_end = 0, count = 0;
    while (e < n) {
        uint8_t f2 = unit_at(c, e, &l2, &cp2);
        if (!is_space(f2))
            break;
        if (cp2 == '\r' || cp2 == '\n')
            nl_end = e + 1;
        last_start = e;
        e += l2;
        count++;
    }
    if (nl_end)
        return nl_end;
    if (e == n || count == 1)
        return e;
    return last_start;
}

void bn_pretokenize_llama3(const uint8_t *text, size_t n, bn_piece_fn emit, void *ctx)
{
    cursor c = {text, n, bn_unicode_bmp(), emit, ctx, false};
    size_t i = 0;
    while (i < n) {
        size_t e = llama3_next(&c, i);
        emit(ctx, text + i, e - i);
        i = e;
    }
}

/* ------------------------------------------------------------------ llama.cpp "default" */

/* Stage 4: [0-9][0-9][0-9] matches and the stretches between them. */
static void stage4(const cursor *c, const uint8_t *p, size_t n)
{
    size_t start = 0, i = 0;
    while (i + 3 <= n) {
        if (p[i] >= '0' && p[i] <= '9' && p[i + 1] >= '0' && p[i + 1] <= '9' && p[i + 2] >= '0' &&
            p[i + 2] <= '9') {
            if (i > start)
                c->emit(c->ctx, p + start, i - start);
            c->emit(c->ctx, p + i, 3);
            i += 3;
            start = i;
        } else {
            i++;
        }
    }
    if (n > start)
        c->emit(c->ctx, p + start, n - start);
}

/* Falcon3's last stage: [0-9], each ASCII digit a piece, and the stretches between them. */
static void stage_digits(const cursor *c, const uint8_t *p, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] >= '0' && p[i] <= '9') {
            if (i > start)
                c->emit(c->ctx, p + start, i - start);
            c->emit(c->ctx, p + i, 1);
            start = i + 1;
        }
    if (n > start)
        c->emit(c->ctx, p + start, n - start);
}

/* Stage 3: runs of \p{N} and the stretches between them. */
static void stage3(const cursor *c, const uint8_t *p, size_t n)
{
    if (c->falcon3) {
        stage_digits(c, p, n);
        return;
    }
    cursor sub = *c;
    sub.s = p;
    sub.n = n;
    size_t i = 0, l;
    uint32_t cp;
    while (i < n) {
        bool num = is_number(unit_at(&sub, i, &l, &cp));
        size_t j = i + l;
        while (j < n && is_number(unit_at(&sub, j, &l, &cp)) == num)
            j += l;
        stage4(c, p + i, j - i);
        i = j;
    }
}

/* Flags at J within the range, with PRESENT set; 0 past the end (llama.cpp's empty flags). */
static inline uint8_t flags_in(const cursor *c, size_t j, size_t *len)
{
    uint32_t cp;
    if (j >= c->n) {
        *len = 0;
        return 0;
    }
    return unit_at(c, j, len, &cp) | PRESENT;
}

static inline bool other_in(uint8_t f) { return (f & PRESENT) && is_other(f); }

/* Stage 2: llama.cpp's GPT-2 splitter over one stage-1 piece [0, n). */
static void stage2(const cursor *c, const uint8_t *p, size_t n)
{
    cursor sub = *c;
    sub.s = p;
    sub.n = n;
    size_t pos = 0, l, l2;
    uint32_t cp, cp2;
    while (pos < n) {
        size_t start = pos;
        uint8_t f = unit_at(&sub, pos, &l, &cp);
        if (cp == '\'' && pos + 1 < n) {
            uint8_t a = p[pos + 1];
            if (a == 's' || a == 't' || a == 'm' || a == 'd') {
                stage3(c, p + pos, 2);
                pos += 2;
                continue;
            }
            if (pos + 2 < n) {
                uint8_t b = p[pos + 2];
                if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
                    stage3(c, p + pos, 3);
                    pos += 3;
                    continue;
                }
            }
        }
        uint8_t f2 = (uint8_t)(f | PRESENT);
        size_t q = pos;
        if (cp == ' ') {
            f2 = flags_in(&sub, pos + 1, &l2);
            q = pos + 1; /* where the run would start */
        }
        bool (*in_run)(uint8_t) = NULL;
        if ((f2 & PRESENT) && is_letter(f2))
            in_run = is_letter;
        else if ((f2 & PRESENT) && is_number(f2))
            in_run = is_number;
        else if (other_in(f2))
            in_run = other_in;
        if (in_run) {
            pos = q;
            while (pos < n) {
                uint8_t g = flags_in(&sub, pos, &l2);
                if (!in_run(g))
                    break;
                pos += l2;
            }
            stage3(c, p + start, pos - start);
            continue;
        }
        /* whitespace run: \s+(?!\S) keeps the last one back unless the run ends the piece */
        size_t e = pos, last_start = pos, count = 0;
        while (e < n) {
            uint8_t g = unit_at(&sub, e, &l2, &cp2);
            if (!is_space(g))
                break;
            last_start = e;
            e += l2;
            count++;
        }
        if (count > 1 && e < n)
            pos = last_start;
        else if (count > 0)
            pos = e;
        else
            pos += l; /* unreachable in practice: every unit is letter/number/other/space */
        stage3(c, p + start, pos - start);
    }
}

/* Stage 1 class: ASCII punctuation as llama.cpp collapses it (\p{P} plus $+<=>^~|, so every
 * printable non-alphanumeric except the backtick, which Falcon3 adds), non-ASCII by general
 * category P. */
static inline bool stage1_punct(uint8_t f, uint32_t cp, bool falcon3)
{
    if (cp < 0x80)
        return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) ||
               (cp >= 0x5B && cp <= 0x5F) || (cp >= 0x7B && cp <= 0x7E) || (falcon3 && cp == '`');
    return cp != BN_UTF8_INVALID && !is_space(f) && (f & BN_UC_CLASS_MASK) == BN_UC_P;
}

static void default_split(const uint8_t *text, size_t n, bn_piece_fn emit, void *ctx, bool falcon3)
{
    cursor c = {text, n, bn_unicode_bmp(), emit, ctx, falcon3};
    size_t i = 0, l;
    uint32_t cp;
    while (i < n) {
        uint8_t f = unit_at(&c, i, &l, &cp);
        bool punct = stage1_punct(f, cp, falcon3);
        size_t j = i + l;
        while (j < n) {
            f = unit_at(&c, j, &l, &cp);
            if (stage1_punct(f, cp, falcon3) != punct)
                break;
            j += l;
        }
        stage2(&c, text + i, j - i);
        i = j;
    }
}

void bn_pretokenize_default(const uint8_t *text, size_t n, bn_piece_fn emit, void *ctx)
{
    default_split(text, n, emit, ctx, false);
}

void bn_pretokenize_falcon3(const uint8_t *text, size_t n, bn_piece_fn emit, void *ctx)
{
    default_split(text, n, emit, ctx, true);
}
