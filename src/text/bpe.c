/* Byte-pair encoding of one pre-token piece by merge rank.
 *
 * Start from one symbol per byte; repeatedly merge the adjacent pair with the lowest merge
 * rank (leftmost among equals) until no adjacent pair is a merge. Short pieces use a flat
 * array and a linear scan for the minimum (fast, O(n^2) worst case); long ones a linked list
 * and a binary heap of candidate pairs with lazy deletion, O(n log n), so a 100 KB word
 * without spaces stays cheap. Both give the same result (tests compare them). Pieces longer
 * than BN_BPE_WINDOW go window by window when that provably gives the same ids
 * (bpe_window.c), so their working memory stays that of one window. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"

#define SCAN_MAX 128 /* longest piece the linear scan handles */

typedef struct hent {
    uint64_t key; /* rank << 32 | position of the left symbol: pops lowest rank, leftmost */
    int32_t l, r; /* the symbols' ids when pushed: a stale entry no longer matches */
} hent;

static int grow(bn_bpe_scratch *s, size_t n)
{
    if (n <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < n)
        cap *= 2;
    int32_t *id = realloc(s->id, cap * sizeof *id);
    if (id)
        s->id = id;
    uint32_t *rank = realloc(s->rank, cap * sizeof *rank);
    if (rank)
        s->rank = rank;
    int32_t *prev = realloc(s->prev, cap * sizeof *prev);
    if (prev)
        s->prev = prev;
    int32_t *next = realloc(s->next, cap * sizeof *next);
    if (next)
        s->next = next;
    if (!id || !rank || !prev || !next)
        return -1;
    s->cap = cap;
    return 0;
}

void bn_bpe_scratch_free(bn_bpe_scratch *s)
{
    free(s->id);
    free(s->rank);
    free(s->prev);
    free(s->next);
    free(s->heap);
    free(s->steps[0]);
    free(s->steps[1]);
    memset(s, 0, sizeof *s);
}

static long bpe_scan(const bn_tokenizer *t, const uint8_t *p, size_t n, int32_t *out,
                     bn_bpe_scratch *s)
{
    int32_t *id = s->id;
    uint32_t *rk = s->rank;
    for (size_t i = 0; i < n; i++)
        id[i] = t->byte_tok[p[i]];
    for (size_t i = 0; i + 1 < n; i++)
        rk[i] = t->byte_pair_rank[(size_t)p[i] << 8 | p[i + 1]] - 1u; /* 0 -> UINT32_MAX */
    size_t m = n;
    while (m > 1) {
        uint32_t best = UINT32_MAX;
        size_t bi = 0;
        for (size_t i = 0; i + 1 < m; i++) {
            if (rk[i] < best) {
                best = rk[i];
                bi = i;
            }
        }
        if (best == UINT32_MAX)
            break;
        s->ops++;
        id[bi] = t->merge_result[best];
        /* drop symbol bi+1 and the pair (bi+1, bi+2); pairs after it shift down */
        if (m > bi + 2) {
            memmove(id + bi + 1, id + bi + 2, (m - bi - 2) * sizeof *id);
            memmove(rk + bi + 1, rk + bi + 2, (m - bi - 2 - 1) * sizeof *rk);
        }
        m--;
        if (bi > 0)
            rk[bi - 1] = bn_tok_pair_rank(t, id[bi - 1], id[bi]);
        if (bi + 1 < m)
            rk[bi] = bn_tok_pair_rank(t, id[bi], id[bi + 1]);
    }
    memcpy(out, id, m * sizeof *id);
    return (long)m;
}

static void heap_push(hent *h, size_t *len, hent e)
{
    size_t i = (*len)++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (h[up].key <= e.key)
            break;
        h[i] = h[up];
        i = up;
    }
    h[i] = e;
}

static hent heap_pop(hent *h, size_t *len)
{
    hent top = h[0], last = h[--*len];
    size_t i = 0, n = *len;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && h[c + 1].key < h[c].key)
            c++;
        if (last.key <= h[c].key)
            break;
        h[i] = h[c];
        i = c;
    }
    if (n)
        h[i] = last;
    return top;
}

long bn_bpe_heap(const bn_tokenizer *t, const uint8_t *p, size_t n, int32_t *out, bn_bpe_scratch *s,
                 bn_bpe_step *steps, size_t *n_steps)
{
    if (n > INT32_MAX / 4 || grow(s, n))
        return -1;
    /* every merge pushes at most two pairs: n - 1 initial + 2 (n - 1) */
    size_t hcap = 3 * n;
    if (hcap > s->heap_cap) {
        void *h = realloc(s->heap, hcap * sizeof(hent));
        if (!h)
            return -1;
        s->heap = h;
        s->heap_cap = hcap;
    }
    hent *h = s->heap;
    size_t hlen = 0, n_done = 0;
    int32_t *id = s->id, *prev = s->prev, *next = s->next;
    int32_t last = (int32_t)n - 1; /* the piece's last symbol (the first is always symbol 0) */
    for (size_t i = 0; i < n; i++) {
        id[i] = t->byte_tok[p[i]];
        prev[i] = (int32_t)i - 1;
        next[i] = (int32_t)i + 1;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        uint32_t r = t->byte_pair_rank[(size_t)p[i] << 8 | p[i + 1]];
        if (r)
            heap_push(h, &hlen, (hent){(uint64_t)(r - 1) << 32 | i, id[i], id[i + 1]});
    }
    while (hlen) {
        hent e = heap_pop(h, &hlen);
        s->ops++;
        int32_t a = (int32_t)(uint32_t)e.key;
        int32_t b = next[a];
        if (id[a] != e.l || b >= (int32_t)n || id[b] != e.r)
            continue; /* stale: one of the two symbols has changed since the push */
        id[a] = t->merge_result[e.key >> 32];
        id[b] = -1;
        if (b == last)
            last = a;
        if (steps)
            steps[n_done++] = (bn_bpe_step){(uint32_t)(e.key >> 32), id[0], id[last]};
        next[a] = next[b];
        if (next[b] < (int32_t)n)
            prev[next[b]] = a;
        if (prev[a] >= 0) {
            uint32_t r = bn_tok_pair_rank(t, id[prev[a]], id[a]);
            if (r != UINT32_MAX)
                heap_push(h, &hlen,
                          (hent){(uint64_t)r << 32 | (uint32_t)prev[a], id[prev[a]], id[a]});
        }
        if (next[a] < (int32_t)n) {
            uint32_t r = bn_tok_pair_rank(t, id[a], id[next[a]]);
            if (r != UINT32_MAX)
                heap_push(h, &hlen, (hent){(uint64_t)r << 32 | (uint32_t)a, id[a], id[next[a]]});
        }
    }
    long m = 0;
    for (int32_t i = 0; i < (int32_t)n; i = next[i])
        out[m++] = id[i];
    if (n_steps)
        *n_steps = n_done;
    return m;
}

long bn_bpe_encode(const bn_tokenizer *t, const uint8_t *p, size_t n, int32_t *out,
                   bn_bpe_scratch *s, int algo)
{
    if (n == 1) {
        out[0] = t->byte_tok[p[0]];
        return 1;
    }
    const size_t window = s->window ? s->window : BN_BPE_WINDOW;
    if (algo == BN_BPE_WINDOWS || (algo == BN_BPE_AUTO && n > window)) {
        long k = bn_bpe_windows(t, p, n, out, s);
        if (k != -2)
            return k;
        s->unverified++; /* a cut might change the result: the whole piece, unbounded */
        return bn_bpe_heap(t, p, n, out, s, NULL, NULL);
    }
    if (algo == BN_BPE_SCAN || (algo == BN_BPE_AUTO && n <= SCAN_MAX)) {
        if (n > INT32_MAX / 4 || grow(s, n))
            return -1;
        return bpe_scan(t, p, n, out, s);
    }
    return bn_bpe_heap(t, p, n, out, s, NULL, NULL);
}
