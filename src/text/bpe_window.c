/* BPE of a long piece window by window, with a proof per cut that the result is the one the
 * whole piece would give, so the working memory follows the window, not the piece (a 20 MB
 * word needed ~16 bytes of symbol state and up to 48 bytes of heap per input byte).
 *
 * BPE on a whole piece repeatedly merges the adjacent pair of lowest rank, leftmost among
 * equal ranks. Cut the piece into windows and run BPE on each window alone, recording every
 * merge (its rank and the window's first and last symbol after it). The whole-piece process is
 * the interleaving of the windows' own processes for as long as no pair across a cut is the
 * lowest: at each step the lowest pair of the whole piece is then the lowest pair of one window
 * (leftmost: windows on the left win ties), which is exactly what that window alone does next.
 * So the windows' concatenated ids are the whole piece's ids if no cross pair is ever picked.
 *
 * Two neighbouring windows L | R advance in the order "lower next rank first, L on a tie" no
 * matter what other windows do (another window's merges change neither L's nor R's next
 * rank), so the states (last symbol of L, first symbol of R, their next ranks) that ever meet
 * are found by replaying the two recorded histories in that order. The cross pair (x, y) is
 * never picked in a state where rank(x, y) >= next rank of L (L's pair is lower, or equal and
 * further left) or rank(x, y) > next rank of R, or where x and y do not merge at all. If every
 * state of every cut passes, the result is exact; if one does not (the cross pair might be the
 * lowest, depending on the rest), the caller encodes the piece whole, as before.
 *
 * A cut fails when the whole piece really has a token across it, so cuts are put where a token
 * ends: near each window's nominal end, a few hundred bytes around it are encoded alone and the
 * cut goes to the token boundary closest to the nominal end (a guess the proof then checks;
 * in a repeating stretch the guess keeps the stretch's phase, see probe_start). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"

#define DONE ((uint64_t)1 << 32) /* "no more merges": above every rank and "no merge" */

static uint64_t next_rank(const bn_bpe_step *h, size_t n, size_t i)
{
    return i < n ? h[i].rank : DONE;
}

/* Whether the cut between window L (history hl, last byte's token xl) and window R (history
 * hr, first byte's token yr) is never crossed by the whole-piece process (header comment). */
static int cut_holds(const bn_tokenizer *t, const bn_bpe_step *hl, size_t nl, int32_t xl,
                     const bn_bpe_step *hr, size_t nr, int32_t yr)
{
    size_t i = 0, j = 0;
    for (;;) {
        const int32_t x = i ? hl[i - 1].last : xl, y = j ? hr[j - 1].first : yr;
        const uint64_t rl = next_rank(hl, nl, i), rr = next_rank(hr, nr, j);
        const uint32_t cross = bn_tok_pair_rank(t, x, y);
        if (cross != UINT32_MAX && cross < rl && cross <= rr)
            return 0;
        if (rl == DONE && rr == DONE)
            return 1;
        if (rl <= rr)
            i++;
        else
            j++;
    }
}

enum {
    PROBE = 128,     /* bytes encoded on each side of a nominal cut to find a token boundary */
    MAX_PERIOD = 8,  /* longest repeating pattern whose phase the probe keeps */
    PHASE_STEPS = 64 /* in one, the probe starts a multiple of 64 periods after a boundary */
};

/* Where the probe before position AT starts. In a stretch that repeats with a short period (a
 * run of one letter, "hahaha", a line of "=-"), the tokens follow the phase the stretch got at
 * its start (leftmost merges first, and whatever the bytes before it merged with), so the
 * probe keeps that phase: from the window's start (a token boundary) when the stretch begins
 * inside the window, else a whole number of periods after the window's start. */
static size_t probe_start(const uint8_t *p, size_t start, size_t at)
{
    for (size_t q = 1; q <= MAX_PERIOD; q++) {
        size_t i = at;
        while (i >= start + q && p[i] == p[i - q])
            i--;
        const bool to_start = i < start + q; /* [start, at] repeats with period q */
        if (to_start)
            return at - (at - start) % (q * PHASE_STEPS);
        if (at - (i - q + 1) >= 4 * q)
            return start;
    }
    return at;
}

/* Where the window starting at START ends: the token boundary of a short encoding around
 * start + window closest to it, or n. The probe's ids go to OUT (room for n - start ids), which
 * the window's own ids overwrite next. */
static long pick_end(const bn_tokenizer *t, const uint8_t *p, size_t n, size_t start, size_t window,
                     int32_t *out, bn_bpe_scratch *s)
{
    const size_t nominal = start + window;
    if (nominal >= n || n - nominal < PROBE) /* no short last window */
        return (long)n;
    if (s->fixed_cuts || window <= 2 * PROBE)
        return (long)nominal;
    const size_t from = probe_start(p, start, nominal - PROBE), len = nominal + PROBE - from;
    long k = bn_bpe_heap(t, p + from, len, out, s, NULL, NULL);
    if (k < 0)
        return -1;
    size_t best = nominal, best_dist = (size_t)-1, at = from;
    for (long i = 0; i + 1 < k; i++) {
        at += t->off[out[i] + 1] - t->off[out[i]];
        size_t dist = at > nominal ? at - nominal : nominal - at;
        if (dist < best_dist) {
            best = at;
            best_dist = dist;
        }
    }
    return (long)best;
}

static int steps_room(bn_bpe_scratch *s, size_t n)
{
    if (n <= s->steps_cap)
        return 0;
    for (int k = 0; k < 2; k++) {
        bn_bpe_step *h = realloc(s->steps[k], n * sizeof *h);
        if (!h)
            return -1;
        s->steps[k] = h;
    }
    s->steps_cap = n;
    return 0;
}

long bn_bpe_windows(const bn_tokenizer *t, const uint8_t *p, size_t n, int32_t *out,
                    bn_bpe_scratch *s)
{
    const size_t window = s->window ? s->window : BN_BPE_WINDOW;
    if (steps_room(s, window + 2 * PROBE))
        return -1;
    long m = 0;
    size_t n_prev = 0;
    for (size_t start = 0; start < n;) {
        const long end = pick_end(t, p, n, start, window, out + m, s);
        if (end < 0)
            return -1;
        const size_t len = (size_t)end - start;
        bn_bpe_step *cur = s->steps[1];
        size_t n_cur = 0;
        long k = bn_bpe_heap(t, p + start, len, out + m, s, cur, &n_cur);
        if (k < 0)
            return -1;
        if (start > 0 && !cut_holds(t, s->steps[0], n_prev, t->byte_tok[p[start - 1]], cur, n_cur,
                                    t->byte_tok[p[start]]))
            return -2;
        m += k;
        n_prev = n_cur;
        s->steps[1] = s->steps[0];
        s->steps[0] = cur;
        start += len;
    }
    s->windowed++;
    return m;
}
