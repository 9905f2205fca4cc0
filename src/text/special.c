/* Finding special tokens in text in linear time. The first-byte scan this replaces compared
 * every candidate token at every position: a 1 MiB control token and a 2 MiB prompt of its
 * first letter took hours. Here each distinct special length L keeps a rolling hash of the
 * window text[i, i+L) (a polynomial mod 2^61-1 with a base drawn at load, so texts cannot be
 * crafted to collide), and a table of the allowed specials' hashes is probed only where the
 * byte can start one. A hash hit is verified with memcmp; a verified hit is a match, and the
 * scan then skips the L bytes it compared, so the work is O(len x distinct lengths). Longest
 * first, then lowest id, as before. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer_impl.h"

#define M61 ((UINT64_C(1) << 61) - 1)

static uint64_t mulmod(uint64_t a, uint64_t b)
{
    __extension__ typedef unsigned __int128 u128;
    u128 x = (u128)a * b;
    uint64_t r = ((uint64_t)x & M61) + (uint64_t)(x >> 61);
    return r >= M61 ? r - M61 : r;
}

static uint64_t addmod(uint64_t a, uint64_t b)
{
    uint64_t r = a + b;
    return r >= M61 ? r - M61 : r;
}

/* bytes + 1, so that a zero byte still moves the hash */
static uint64_t hash_bytes(uint64_t base, const uint8_t *p, size_t n)
{
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++)
        h = addmod(mulmod(h, base), (uint64_t)p[i] + 1);
    return h;
}

static int cmp_desc_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t tok_len(const bn_tokenizer *t, int32_t id) { return t->off[id + 1] - t->off[id]; }

/* The specials allowed in one mode (all, or user-defined only), inserted lowest id first so
 * that among equal texts linear probing finds the lowest id first. */
static int build_set(bn_tokenizer *t, bn_special_set *set, bool user_only, bn_err *err)
{
    uint32_t n = 0;
    for (uint32_t k = 0; k < t->n_specials; k++)
        if (!user_only || t->type[t->specials[k]] == BN_TOK_USER_DEFINED)
            n++;
    set->mask = 15;
    while (set->mask + 1 < (uint64_t)n * 2)
        set->mask = set->mask * 2 + 1;
    set->slots = calloc(set->mask + 1, sizeof *set->slots);
    set->lens = malloc((n ? n : 1) * sizeof *set->lens);
    set->pow = malloc((n ? n : 1) * sizeof *set->pow);
    if (!set->slots || !set->lens || !set->pow)
        return bn_fail(err, BN_E_NOMEM, "out of memory indexing %u special tokens", n);
    /* ids in increasing order, so that among equal texts the lowest id is probed first */
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids)
        return bn_fail(err, BN_E_NOMEM, "out of memory indexing %u special tokens", n);
    uint32_t m = 0;
    for (uint32_t k = 0; k < t->n_specials; k++)
        if (!user_only || t->type[t->specials[k]] == BN_TOK_USER_DEFINED)
            ids[m++] = t->specials[k];
    qsort(ids, m, sizeof *ids, cmp_i32);
    for (uint32_t i = 0; i < m; i++) {
        const int32_t id = ids[i];
        const uint64_t h = hash_bytes(t->spec_base, t->bytes + t->off[id], tok_len(t, id));
        uint64_t s = (h ^ tok_len(t, id) * UINT64_C(0x9E3779B97F4A7C15)) & set->mask;
        while (set->slots[s].id)
            s = (s + 1) & set->mask;
        set->slots[s].h = h;
        set->slots[s].id = id + 1;
        set->lens[i] = tok_len(t, id);
    }
    free(ids);
    qsort(set->lens, m, sizeof *set->lens, cmp_desc_u32);
    uint32_t d = 0;
    for (uint32_t i = 0; i < m; i++)
        if (d == 0 || set->lens[d - 1] != set->lens[i])
            set->lens[d++] = set->lens[i];
    set->n_lens = d;
    for (uint32_t i = 0; i < d; i++) {
        uint64_t p = 1; /* base^(L-1), by squaring */
        uint64_t b = t->spec_base;
        for (uint32_t e = set->lens[i] - 1; e; e >>= 1) {
            if (e & 1)
                p = mulmod(p, b);
            b = mulmod(b, b);
        }
        set->pow[i] = p;
    }
    return 0;
}

int bn_special_index_build(bn_tokenizer *t, bn_err *err)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t seed = (uint64_t)ts.tv_nsec * UINT64_C(0x9E3779B97F4A7C15) ^ (uint64_t)(uintptr_t)t ^
                    ((uint64_t)ts.tv_sec << 32);
    t->spec_base = 257 + seed % (M61 - 514); /* above every byte value + 1 */
    if (build_set(t, &t->spec_all, false, err) || build_set(t, &t->spec_user, true, err))
        return -1;
    return 0;
}

static void free_set(bn_special_set *set)
{
    free(set->slots);
    free(set->lens);
    free(set->pow);
    memset(set, 0, sizeof *set);
}

void bn_special_index_free(bn_tokenizer *t)
{
    free_set(&t->spec_all);
    free_set(&t->spec_user);
}

int bn_special_scan_init(bn_special_scan *sc, const bn_tokenizer *t, const uint8_t *text,
                         size_t len, bool parse_special, bn_err *err)
{
    memset(sc, 0, sizeof *sc);
    sc->t = t;
    sc->set = parse_special ? &t->spec_all : &t->spec_user;
    sc->s = text;
    sc->len = len;
    sc->h = malloc((sc->set->n_lens ? sc->set->n_lens : 1) * sizeof *sc->h);
    if (!sc->h)
        return bn_fail(err, BN_E_NOMEM, "tokenize: out of memory");
    for (uint32_t k = 0; k < sc->set->n_lens; k++)
        sc->h[k] = sc->set->lens[k] <= len ? hash_bytes(t->spec_base, text, sc->set->lens[k]) : 0;
    return 0;
}

void bn_special_scan_free(bn_special_scan *sc)
{
    free(sc->h);
    sc->h = NULL;
}

/* Moves every window one byte on, from pos to pos + 1. */
static void roll(bn_special_scan *sc)
{
    const bn_special_set *set = sc->set;
    const uint64_t base = sc->t->spec_base, out = (uint64_t)sc->s[sc->pos] + 1;
    for (uint32_t k = 0; k < set->n_lens; k++) {
        const size_t L = set->lens[k];
        if (sc->pos + 1 + L > sc->len)
            continue; /* this window has run off the end for good */
        uint64_t h = addmod(sc->h[k], M61 - mulmod(out, set->pow[k]));
        sc->h[k] = addmod(mulmod(h, base), (uint64_t)sc->s[sc->pos + L] + 1);
    }
    sc->pos++;
}

/* The allowed special of length L whose text starts at pos, or -1. */
static int32_t lookup(const bn_special_scan *sc, uint32_t k)
{
    const bn_special_set *set = sc->set;
    const bn_tokenizer *t = sc->t;
    const uint32_t L = set->lens[k];
    const uint64_t h = sc->h[k];
    for (uint64_t s = (h ^ L * UINT64_C(0x9E3779B97F4A7C15)) & set->mask; set->slots[s].id;
         s = (s + 1) & set->mask) {
        const int32_t id = set->slots[s].id - 1;
        if (set->slots[s].h == h && tok_len(t, id) == L &&
            memcmp(sc->s + sc->pos, t->bytes + t->off[id], L) == 0)
            return id;
    }
    return -1;
}

int32_t bn_special_next(bn_special_scan *sc, size_t from, size_t *at)
{
    const bn_tokenizer *t = sc->t;
    while (sc->pos < from)
        roll(sc);
    for (; sc->pos < sc->len; roll(sc)) {
        if (!t->first_hi[sc->s[sc->pos]])
            continue; /* no special starts with this byte */
        for (uint32_t k = 0; k < sc->set->n_lens; k++) {
            if (sc->pos + sc->set->lens[k] > sc->len)
                continue;
            int32_t id = lookup(sc, k);
            if (id >= 0) {
                *at = sc->pos;
                return id;
            }
        }
    }
    return -1;
}
