/* Text -> ids: special-token split, pre-tokenizer, then per piece a whole-token lookup (Llama 3
 * mode) or BPE, with a per-call cache of pieces already encoded (real text repeats words).
 *
 * Every piece of n bytes gives at most n ids and a special token at least one byte of text, so
 * the output never exceeds len + 2 ids (BOS, EOS): it is allocated once, up front. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"

#define CACHE_SLOTS     4096 /* direct-mapped: a collision just replaces the entry */
#define CACHE_MIN_TEXT  2048 /* shorter texts rarely repeat a word: no cache */
#define CACHE_MAX_PIECE 256

typedef struct cache_entry {
    uint64_t hash;
    const uint8_t *p;         /* the piece in the caller's text (alive for the call) */
    uint32_t len, off, count; /* its ids are out[off .. off+count) */
} cache_entry;

typedef struct run {
    const bn_tokenizer *t;
    bool whole_lookup;
    int32_t *out;
    size_t n;
    bn_bpe_scratch scratch;
    cache_entry *cache;
    bool failed;
} run;

static void on_piece(void *vctx, const uint8_t *p, size_t n)
{
    run *r = vctx;
    const bn_tokenizer *t = r->t;
    if (r->failed)
        return;
    if (n == 1) {
        r->out[r->n++] = t->byte_tok[p[0]];
        return;
    }
    if (r->whole_lookup) {
        int32_t id = bn_tok_lookup(t, p, n);
        if (id >= 0) {
            r->out[r->n++] = id;
            return;
        }
    }
    cache_entry *e = NULL;
    uint64_t h = 0;
    if (r->cache && n <= CACHE_MAX_PIECE) {
        h = bn_tok_hash(p, n);
        e = &r->cache[h & (CACHE_SLOTS - 1)];
        if (e->p && e->hash == h && e->len == n && memcmp(e->p, p, n) == 0) {
            memcpy(r->out + r->n, r->out + e->off, e->count * sizeof *r->out);
            r->n += e->count;
            return;
        }
    }
    long k = bn_bpe_encode(t, p, n, r->out + r->n, &r->scratch, BN_BPE_AUTO);
    if (k < 0) {
        r->failed = true;
        return;
    }
    if (e)
        *e = (cache_entry){h, p, (uint32_t)n, (uint32_t)r->n, (uint32_t)k};
    r->n += (size_t)k;
}

static void pretokenize(run *r, bn_pretokenizer pre, const uint8_t *p, size_t n)
{
    if (n == 0)
        return;
    if (pre == BN_PRE_DEFAULT)
        bn_pretokenize_default(p, n, on_piece, r);
    else if (pre == BN_PRE_FALCON3)
        bn_pretokenize_falcon3(p, n, on_piece, r);
    else
        bn_pretokenize_llama3(p, n, on_piece, r);
}

int bn_tokenize(const bn_tokenizer *t, const char *text, size_t len, const bn_tokenize_opts *o,
                int32_t **ids, size_t *n, bn_err *err)
{
    static const bn_tokenize_opts defaults = {BN_BOS_DEFAULT, false, BN_PRE_AUTO};
    if (!o)
        o = &defaults;
    *ids = NULL;
    *n = 0;
    if (len >= (size_t)INT32_MAX)
        return bn_fail(err, BN_E_INPUT, "tokenize: text of %zu bytes is too long", len);
    bool bos = o->bos == BN_BOS_ALWAYS || (o->bos == BN_BOS_DEFAULT && t->add_bos);
    if (t->spm)
        return bn_spm_tokenize(t, (const uint8_t *)text, len, bos,
                               o->bos != BN_BOS_NEVER && t->add_eos, o->parse_special, ids, n, err);
    bn_pretokenizer pre = o->pre == BN_PRE_AUTO ? t->pre : o->pre;
    run r = {.t = t, .whole_lookup = pre == BN_PRE_LLAMA3};
    r.out = malloc((len + 2) * sizeof *r.out);
    if (!r.out)
        return bn_fail(err, BN_E_NOMEM, "tokenize: out of memory for %zu bytes of text", len);
    if (len >= CACHE_MIN_TEXT)
        r.cache = calloc(CACHE_SLOTS, sizeof *r.cache); /* optional: NULL just means no cache */
    if (bos && t->bos >= 0)
        r.out[r.n++] = t->bos;
    const uint8_t *s = (const uint8_t *)text;
    size_t start = 0;
    if (o->parse_special || t->has_user_defined) {
        bn_special_scan sc;
        if (bn_special_scan_init(&sc, t, s, len, o->parse_special, err)) {
            free(r.cache);
            free(r.out);
            return -1;
        }
        size_t at;
        int32_t id;
        while ((id = bn_special_next(&sc, start, &at)) >= 0) {
            pretokenize(&r, pre, s + start, at - start);
            r.out[r.n++] = id;
            start = at + (t->off[id + 1] - t->off[id]);
        }
        bn_special_scan_free(&sc);
    }
    pretokenize(&r, pre, s + start, len - start);
    if (o->bos != BN_BOS_NEVER && t->add_eos && t->eos >= 0 && !r.failed)
        r.out[r.n++] = t->eos;
    free(r.cache);
    bn_bpe_scratch_free(&r.scratch);
    if (r.failed) {
        free(r.out);
        return bn_fail(err, BN_E_NOMEM, "tokenize: out of memory");
    }
    int32_t *shrunk = realloc(r.out, (r.n ? r.n : 1) * sizeof *r.out);
    *ids = shrunk ? shrunk : r.out;
    *n = r.n;
    return 0;
}
