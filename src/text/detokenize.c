/* Ids -> bytes, whole or streamed without ever splitting a UTF-8 sequence. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"
#include "unicode.h"

const char *bn_token_bytes(const bn_tokenizer *t, int32_t id, bool special, size_t *len)
{
    *len = 0;
    if (id < 0 || id >= t->n_vocab)
        return "";
    uint8_t ty = t->type[id];
    /* llama.cpp's token_to_piece: user-defined text always, control/unknown names only when
       special rendering is asked for, unused tokens never */
    if (ty == BN_TOK_UNUSED || ((ty == BN_TOK_CONTROL || ty == BN_TOK_UNKNOWN) && !special))
        return "";
    *len = t->piece_off[id + 1] - t->piece_off[id];
    return (const char *)t->piece + t->piece_off[id];
}

/* llama.cpp's llama_detokenize (remove_special off): with add_space_prefix, the first token
 * loses one leading space, the one tokenizing added; after a BOS (or any first token that
 * renders as nothing) no space is removed. */
static const char *piece_at(const bn_tokenizer *t, const int32_t *ids, size_t i, bool special,
                            size_t *len)
{
    const char *p = bn_token_bytes(t, ids[i], special, len);
    if (i == 0 && t->spm && t->add_space_prefix && *len && p[0] == ' ') {
        p++;
        (*len)--;
    }
    return p;
}

size_t bn_token_to_piece(const bn_tokenizer *t, int32_t id, bool special, char *buf, size_t cap)
{
    size_t len;
    const char *p = bn_token_bytes(t, id, special, &len);
    if (buf && cap)
        memcpy(buf, p, len < cap ? len : cap);
    return len;
}

int bn_detokenize(const bn_tokenizer *t, const int32_t *ids, size_t n, bool special, char **out,
                  size_t *len, bn_err *err)
{
    *out = NULL;
    *len = 0;
    size_t total = 0, l;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return bn_fail(err, BN_E_INPUT,
                           "token id %ld at position %zu is out of range (vocabulary of %d)",
                           (long)ids[i], i, t->n_vocab);
        piece_at(t, ids, i, special, &l);
        total += l;
    }
    char *s = malloc(total + 1);
    if (!s)
        return bn_fail(err, BN_E_NOMEM, "detokenize: out of memory for %zu bytes", total);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = piece_at(t, ids, i, special, &l);
        memcpy(s + o, p, l);
        o += l;
    }
    s[o] = 0;
    *out = s;
    *len = o;
    return 0;
}

int bn_detok_init(bn_detokenizer *d, const bn_tokenizer *t, bool special, bn_err *err)
{
    memset(d, 0, sizeof *d);
    d->t = t;
    d->special = special;
    d->cap = t->max_piece + 8;
    d->buf = malloc(d->cap);
    if (!d->buf)
        return bn_fail(err, BN_E_NOMEM, "out of memory");
    return 0;
}

void bn_detok_free(bn_detokenizer *d)
{
    free(d->buf);
    d->buf = NULL;
}

/* Could the bytes S[0..n) (n >= 1, s[0] a lead byte) still become one valid sequence? */
static bool valid_prefix(const uint8_t *s, size_t n)
{
    size_t need = bn_utf8_seq_len(s[0]);
    if (need < 2 || n >= need)
        return false;
    if (n >= 2) {
        uint8_t lo = 0x80, hi = 0xBF;
        if (s[0] == 0xE0)
            lo = 0xA0;
        else if (s[0] == 0xED)
            hi = 0x9F;
        else if (s[0] == 0xF0)
            lo = 0x90;
        else if (s[0] == 0xF4)
            hi = 0x8F;
        if (s[1] < lo || s[1] > hi)
            return false;
    }
    if (n >= 3 && (s[2] & 0xC0) != 0x80)
        return false;
    return true;
}

const char *bn_detok_push(bn_detokenizer *d, int32_t id, size_t *len)
{
    size_t pl;
    const char *piece = bn_token_bytes(d->t, id, d->special, &pl);
    uint8_t *b = (uint8_t *)d->buf;
    memcpy(b, d->held, d->n_held);
    memcpy(b + d->n_held, piece, pl);
    size_t total = d->n_held + pl, keep = total;
    /* the last lead byte within 3 bytes of the end starts the only sequence that can still be
       incomplete; hold it back only if it can still become valid */
    for (size_t k = 1; k <= 3 && k <= total; k++) {
        uint8_t c = b[total - k];
        if ((c & 0xC0) == 0x80)
            continue;
        if (valid_prefix(b + total - k, k))
            keep = total - k;
        break;
    }
    d->n_held = total - keep;
    memcpy(d->held, b + keep, d->n_held);
    *len = keep;
    return d->buf;
}

const char *bn_detok_flush(bn_detokenizer *d, size_t *len)
{
    memcpy(d->buf, d->held, d->n_held);
    *len = d->n_held;
    d->n_held = 0;
    return d->buf;
}
