/* Loading a vocabulary from GGUF keys (byte-level BPE, or SentencePiece whose own part is in
 * spm.c), and the lookups tokenizing needs.
 *
 * Built at load, from the mmap'd strings without per-token allocations:
 *   - every token's raw bytes in one arena (GPT-2's byte-to-unicode form undone);
 *   - an open-addressing table raw bytes -> id (ordinary tokens);
 *   - an open-addressing table (left id, right id) -> merge rank, packed in one u64 per slot,
 *     plus rank -> result id and a direct 256x256 table for the first merges of byte pairs;
 *   - the special tokens indexed by first byte, for splitting them out of text. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "tokenizer_impl.h"
#include "unicode.h"

/* ------------------------------------------------------------------ hashing */

static inline uint64_t mix64(uint64_t h)
{
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    return h;
}

/* The first min(n, 8) bytes as a little-endian word (zero-padded): a token's "head". */
static inline uint64_t head8(const uint8_t *p, size_t n)
{
    uint64_t w = 0;
    size_t k = n < 8 ? n : 8;
    for (size_t i = 0; i < k; i++)
        w |= (uint64_t)p[i] << (8 * i);
    return w;
}

static inline uint64_t hash_with_head(uint64_t head, const uint8_t *p, size_t n)
{
    uint64_t h = (head ^ (0x9E3779B97F4A7C15ull * (n + 1))) * 0x94d049bb133111ebull;
    for (size_t i = 8; i < n; i += 8) {
        uint64_t w = head8(p + i, n - i);
        h = (h ^ (h >> 32) ^ w) * 0x94d049bb133111ebull;
    }
    return mix64(h);
}

uint64_t bn_tok_hash(const uint8_t *p, size_t n) { return hash_with_head(head8(p, n), p, n); }

/* Slot probe: the head and length stored in the slot settle tokens of up to 8 bytes without
 * touching the byte arena (most lookups at load and tokenize time). */
static inline bool slot_matches(const bn_tokenizer *t, const bn_tok_slot *s, uint64_t head,
                                uint32_t meta, const uint8_t *p, size_t n)
{
    if (s->meta != meta || s->head != head)
        return false;
    if (n <= 8)
        return true;
    const uint8_t *q = t->bytes + t->off[s->id1 - 1];
    for (size_t i = 8; i < n; i += 8) { /* word compares: tokens are short, a call is not */
        uint64_t a = head8(q + i, n - i), b = head8(p + i, n - i);
        if (a != b)
            return false;
    }
    return true;
}

static inline uint32_t slot_meta(uint64_t h, size_t n)
{
    return (uint32_t)(h >> 56) << 24 | (uint32_t)n; /* n < 2^24 (checked at load) */
}

static inline int32_t tok_find(const bn_tokenizer *t, const uint8_t *p, size_t n, uint64_t head,
                               uint64_t h)
{
    uint32_t meta = slot_meta(h, n);
    for (uint64_t i = h & t->tok_mask;; i = (i + 1) & t->tok_mask) {
        const bn_tok_slot *s = &t->tok_slots[i];
        if (!s->id1)
            return -1;
        if (slot_matches(t, s, head, meta, p, n))
            return (int32_t)s->id1 - 1;
    }
}

int32_t bn_tok_lookup(const bn_tokenizer *t, const uint8_t *p, size_t n)
{
    if (n > t->max_piece)
        return -1;
    uint64_t head = head8(p, n);
    return tok_find(t, p, n, head, hash_with_head(head, p, n));
}

static inline uint64_t pair_key(int32_t l, int32_t r)
{
    return (uint64_t)(uint32_t)l << 20 | (uint32_t)r; /* both < 2^20 */
}

static inline uint64_t pair_hash(uint64_t k) { return mix64(k * 0x9E3779B97F4A7C15ull); }

uint32_t bn_tok_pair_rank(const bn_tokenizer *t, int32_t l, int32_t r)
{
    uint64_t k = pair_key(l, r);
    for (uint64_t i = pair_hash(k) & t->pair_mask;; i = (i + 1) & t->pair_mask) {
        uint64_t s = t->pair_slots[i];
        if (!s)
            return UINT32_MAX;
        if (s >> 24 == k)
            return (uint32_t)(s & 0xFFFFFF) - 1;
    }
}

/* Inserts id for its bytes; a later token with the same bytes replaces the earlier one
 * (llama.cpp's token_to_id keeps the last). */
static void tok_insert(bn_tokenizer *t, int32_t id, uint64_t h)
{
    const uint8_t *p = t->bytes + t->off[id];
    size_t n = t->off[id + 1] - t->off[id];
    uint64_t head = head8(p, n);
    uint32_t meta = slot_meta(h, n);
    for (uint64_t i = h & t->tok_mask;; i = (i + 1) & t->tok_mask) {
        bn_tok_slot *s = &t->tok_slots[i];
        if (!s->id1 || slot_matches(t, s, head, meta, p, n)) {
            *s = (bn_tok_slot){head, (uint32_t)id + 1, meta};
            return;
        }
    }
}

/* Inserts a merge unless the pair is already there (the first, lowest rank wins). Returns
 * true when inserted. */
static bool pair_insert(bn_tokenizer *t, int32_t l, int32_t r, uint32_t rank)
{
    uint64_t k = pair_key(l, r);
    for (uint64_t i = pair_hash(k) & t->pair_mask;; i = (i + 1) & t->pair_mask) {
        uint64_t s = t->pair_slots[i];
        if (!s) {
            t->pair_slots[i] = k << 24 | (rank + 1);
            return true;
        }
        if (s >> 24 == k)
            return false;
    }
}

/* ------------------------------------------------------------------ GPT-2 byte form */

/* Code point -> byte of GPT-2's byte-to-unicode map (-1 when not in the map): bytes that are
 * printable Latin-1 map to themselves, the other 68 to U+0100.. in byte order. */
static void build_unbyte(int16_t unbyte[0x144])
{
    for (int i = 0; i < 0x144; i++)
        unbyte[i] = -1;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        if (self)
            unbyte[b] = (int16_t)b;
        else
            unbyte[0x100 + extra++] = (int16_t)b;
    }
}

/* Raw bytes of a byte-level token text into DST (room for n bytes); a character outside the
 * map is kept as its UTF-8 bytes. Returns the length. */
static size_t unbyte_text(const int16_t *unbyte, const uint8_t *s, size_t n, uint8_t *dst)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        /* ASCII maps to itself (printable) or is kept as is (not in the map): either way c */
        if (c < 0x80) {
            dst[o++] = c;
            i++;
            continue;
        }
        uint32_t cp;
        size_t l;
        /* the rest of the map is U+00A1..U+0143: two-byte sequences C2..C5 */
        if (c >= 0xC2 && c <= 0xC5 && i + 1 < n && (s[i + 1] & 0xC0) == 0x80) {
            cp = (uint32_t)(c & 0x1F) << 6 | (s[i + 1] & 0x3F);
            l = 2;
        } else {
            l = bn_utf8_decode(s + i, n - i, &cp);
        }
        if (cp < 0x144 && unbyte[cp] >= 0) {
            dst[o++] = (uint8_t)unbyte[cp];
        } else {
            memcpy(dst + o, s + i, l);
            o += l;
        }
        i += l;
    }
    return o;
}

/* ------------------------------------------------------------------ loading */

static bool byte_level(uint8_t type)
{
    return type == BN_TOK_NORMAL || type == BN_TOK_BYTE || type == BN_TOK_UNDEFINED;
}

static bool splits_out(uint8_t type)
{
    return type == BN_TOK_CONTROL || type == BN_TOK_USER_DEFINED || type == BN_TOK_UNKNOWN;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* A zeroed table. Big ones are 2 MB aligned and asked to be backed by huge pages: lookups
 * hit them at random, and with 4 KB pages every probe would also miss the TLB. */
static void *alloc_table(size_t bytes)
{
    const size_t huge = (size_t)2 << 20;
    if (bytes < huge)
        return calloc(1, bytes);
    void *p = NULL;
    if (posix_memalign(&p, huge, bytes))
        return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE); /* advice only: failure is harmless */
#endif
    memset(p, 0, bytes);
    return p;
}

static uint64_t pow2_at_least(uint64_t n)
{
    uint64_t c = 16;
    while (c < n)
        c *= 2;
    return c;
}

int32_t bn_tokenizer_find(const bn_tokenizer *t, const char *text, size_t len)
{
    /* special tokens (what chat templates ask for) through their first-byte index */
    if (len > 0) {
        uint8_t b = (uint8_t)text[0];
        for (uint32_t k = t->first_lo[b]; k < t->first_hi[b]; k++) {
            int32_t id = t->specials[k];
            if (t->text[id].len == len && memcmp(t->text[id].ptr, text, len) == 0)
                return id;
        }
    }
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->text[i].len == len && memcmp(t->text[i].ptr, text, len) == 0)
            return i;
    return -1;
}

/* An optional id key: absent -> fallback text lookup; present -> must be in range. */
static int special_id(const bn_gguf *g, bn_tokenizer *t, const char *key, const char *fallback,
                      int32_t *out, bn_err *err)
{
    *out = -1;
    if (bn_gguf_find(g, key)) {
        uint32_t v;
        if (bn_gguf_get_u32(g, key, &v, err))
            return -1;
        if (v >= (uint32_t)t->n_vocab)
            return bn_fail(err, BN_E_FORMAT, "%s = %u is out of range (vocabulary of %d tokens)",
                           key, v, t->n_vocab);
        *out = (int32_t)v;
        return 0;
    }
    if (fallback)
        *out = bn_tokenizer_find(t, fallback, strlen(fallback));
    return 0;
}

int bn_pretokenizer_from_name(const char *name, bn_pretokenizer *out)
{
    static const char *const llama3[] = {"llama3", "llama-bpe", "llama-v3", "llama3-bpe"};
    for (size_t i = 0; i < sizeof llama3 / sizeof *llama3; i++)
        if (strcmp(name, llama3[i]) == 0) {
            *out = BN_PRE_LLAMA3;
            return 0;
        }
    if (strcmp(name, "default") == 0) {
        *out = BN_PRE_DEFAULT;
        return 0;
    }
    if (strcmp(name, "falcon3") == 0 || strcmp(name, "falcon_e") == 0) {
        *out = BN_PRE_FALCON3;
        return 0;
    }
    return -1;
}

static int load_model_kind(const bn_gguf *g, bn_tokenizer *t, bn_err *err)
{
    bn_gguf_str model;
    if (bn_gguf_get_str(g, "tokenizer.ggml.model", &model, err))
        return -1;
    t->spm = bn_gguf_str_eq(model, "llama");
    if (!t->spm && !bn_gguf_str_eq(model, "gpt2"))
        return bn_fail(err, BN_E_FORMAT,
                       "tokenizer.ggml.model is \"%.*s\": only \"gpt2\" (byte-level BPE) and "
                       "\"llama\" (SentencePiece) are supported",
                       (int)(model.len > 64 ? 64 : model.len), model.ptr);
    return 0;
}

/* End of turn: eot_token_id, else the token "<|eot_id|>" or "<|im_end|>". */
static int load_eot(const bn_gguf *g, bn_tokenizer *t, bn_err *err)
{
    if (special_id(g, t, "tokenizer.ggml.eot_token_id", "<|eot_id|>", &t->eot, err))
        return -1;
    if (t->eot < 0)
        t->eot = bn_tokenizer_find(t, "<|im_end|>", 10);
    return 0;
}

/* BPE: pre-tokenizer, add_bos_token, add_eos_token, bos/eos (by id, else by Llama 3's names). */
static int load_meta(const bn_gguf *g, bn_tokenizer *t, bn_err *err)
{
    /* A file of this architecture without tokenizer.ggml.pre carries Llama 3's vocabulary: give
       it the split it was trained with (bitnet.cpp's "default" is available on request). */
    t->pre = BN_PRE_LLAMA3;
    bn_gguf_str pre;
    if (bn_gguf_find(g, "tokenizer.ggml.pre")) {
        if (bn_gguf_get_str(g, "tokenizer.ggml.pre", &pre, err))
            return -1;
        char name[64];
        size_t n = pre.len < sizeof name - 1 ? pre.len : sizeof name - 1;
        memcpy(name, pre.ptr, n);
        name[n] = 0;
        if (pre.len >= sizeof name || bn_pretokenizer_from_name(name, &t->pre))
            return bn_fail(err, BN_E_UNSUPPORTED,
                           "tokenizer.ggml.pre \"%s\" is not supported (known: llama-bpe, "
                           "llama3, default, falcon3, falcon_e)",
                           name);
    }
    t->add_bos = true;
    if (bn_gguf_find(g, "tokenizer.ggml.add_bos_token") &&
        bn_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos, err))
        return -1;
    /* llama.cpp appends EOS to a text tokenized with add_special when this is true, for BPE
       vocabularies as for SentencePiece ones (llama_tokenize_impl) */
    t->add_eos = false;
    if (bn_gguf_find(g, "tokenizer.ggml.add_eos_token") &&
        bn_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &t->add_eos, err))
        return -1;
    if (special_id(g, t, "tokenizer.ggml.bos_token_id", "<|begin_of_text|>", &t->bos, err) ||
        special_id(g, t, "tokenizer.ggml.eos_token_id", "<|end_of_text|>", &t->eos, err))
        return -1;
    return 0;
}

static int load_tokens(const bn_gguf *g, bn_tokenizer *t, bn_err *err)
{
    const bn_gguf_kv *toks, *types = NULL;
    if (bn_gguf_get_arr(g, "tokenizer.ggml.tokens", BN_GGUF_STRING, &toks, err))
        return -1;
    if (toks->arr_len == 0 || toks->arr_len > BN_TOK_MAX_VOCAB)
        return bn_fail(err, BN_E_FORMAT, "tokenizer.ggml.tokens has %llu entries (expected 1..%d)",
                       (unsigned long long)toks->arr_len, BN_TOK_MAX_VOCAB);
    int32_t n = (int32_t)toks->arr_len;
    t->n_vocab = n;
    t->text = toks->arr_strs;
    if (bn_gguf_find(g, "tokenizer.ggml.token_type")) {
        if (bn_gguf_get_arr(g, "tokenizer.ggml.token_type", BN_GGUF_I32, &types, err))
            return -1;
        if (types->arr_len != toks->arr_len)
            return bn_fail(err, BN_E_FORMAT,
                           "tokenizer.ggml.token_type has %llu entries but tokens has %d",
                           (unsigned long long)types->arr_len, n);
    }
    uint64_t total = 0;
    for (int32_t i = 0; i < n; i++)
        total += toks->arr_strs[i].len;
    if (total >= UINT32_MAX)
        return bn_fail(err, BN_E_FORMAT, "tokenizer.ggml.tokens: %llu bytes of text is too large",
                       (unsigned long long)total);
    t->type = malloc((size_t)n);
    t->off = malloc(((size_t)n + 1) * sizeof *t->off);
    t->bytes = malloc(total ? total : 1);
    t->tok_mask = pow2_at_least(2 * (uint64_t)n) - 1; /* load <= 1/2 */
    t->tok_slots = alloc_table((t->tok_mask + 1) * sizeof *t->tok_slots);
    if (!t->type || !t->off || !t->bytes || !t->tok_slots)
        return bn_fail(err, BN_E_NOMEM, "out of memory loading %d tokens", n);
    int16_t unbyte[0x144];
    build_unbyte(unbyte);
    uint32_t o = 0;
    size_t max_piece = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t ty = types ? bn_gguf_arr_i32(types, (uint64_t)i) : BN_TOK_NORMAL;
        t->type[i] = (uint8_t)(ty >= 0 && ty <= BN_TOK_BYTE ? ty : BN_TOK_UNDEFINED);
        const uint8_t *s = (const uint8_t *)toks->arr_strs[i].ptr;
        size_t len = toks->arr_strs[i].len;
        t->off[i] = o;
        if (!t->spm && byte_level(t->type[i])) {
            o += (uint32_t)unbyte_text(unbyte, s, len, t->bytes + o);
        } else {
            memcpy(t->bytes + o, s, len);
            o += (uint32_t)len;
        }
        if (o - t->off[i] > max_piece)
            max_piece = o - t->off[i];
        if (len > t->max_text)
            t->max_text = len;
    }
    t->off[n] = o;
    t->max_piece = max_piece;
    if (max_piece >= (1u << 24))
        return bn_fail(err, BN_E_FORMAT, "tokenizer.ggml.tokens: a token of %zu bytes is too long",
                       max_piece);
    /* insert in batches whose slots are prefetched first (random access into the table) */
    for (int32_t i0 = 0; i0 < n; i0 += 32) {
        int32_t nb = n - i0 < 32 ? n - i0 : 32;
        uint64_t hs[32];
        for (int32_t k = 0; k < nb; k++) {
            const uint8_t *p = t->bytes + t->off[i0 + k];
            size_t len = t->off[i0 + k + 1] - t->off[i0 + k];
            hs[k] = hash_with_head(head8(p, len), p, len);
            __builtin_prefetch(&t->tok_slots[hs[k] & t->tok_mask], 1);
        }
        /* SentencePiece matches any token's text (llama.cpp's token_to_id), BPE only the
           ordinary tokens' bytes */
        for (int32_t k = 0; k < nb; k++)
            if ((t->spm || byte_level(t->type[i0 + k])) && t->off[i0 + k + 1] > t->off[i0 + k])
                tok_insert(t, i0 + k, hs[k]);
    }
    if (t->spm)
        return 0; /* byte fallback: bn_spm_load */
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        t->byte_tok[b] = bn_tok_lookup(t, &c, 1);
        if (t->byte_tok[b] < 0)
            return bn_fail(err, BN_E_FORMAT,
                           "tokenizer.ggml.tokens has no token for byte 0x%02x (not a "
                           "byte-level vocabulary)",
                           b);
    }
    return 0;
}

#define MERGE_BATCH 32

typedef struct merge_job {
    uint8_t *p; /* left bytes then right bytes */
    size_t lb, rb;
    uint64_t head[3], h[3]; /* left, right, left+right */
    int32_t id[3];
} merge_job;

static int load_merges(const bn_gguf *g, bn_tokenizer *t, bn_err *err)
{
    const bn_gguf_kv *merges;
    if (bn_gguf_get_arr(g, "tokenizer.ggml.merges", BN_GGUF_STRING, &merges, err))
        return -1;
    if (merges->arr_len > BN_TOK_MAX_MERGES)
        return bn_fail(err, BN_E_FORMAT, "tokenizer.ggml.merges has %llu entries (at most %d)",
                       (unsigned long long)merges->arr_len, BN_TOK_MAX_MERGES);
    uint32_t n = (uint32_t)merges->arr_len;
    t->n_merges = n;
    t->merge_result = malloc((n ? n : 1) * sizeof *t->merge_result);
    t->pair_mask = pow2_at_least((uint64_t)n + n / 2) - 1; /* load <= 2/3 */
    t->pair_slots = alloc_table((t->pair_mask + 1) * sizeof *t->pair_slots);
    t->byte_pair_rank = calloc(65536, sizeof *t->byte_pair_rank);
    /* decoded halves of a batch of merges: sized from the batch's own texts (raw bytes are
     * never longer than their text), not from the longest token, which a hostile vocabulary
     * can make 32 MiB long (32 x 64 MiB asked up front) */
    size_t buf_cap = 4096;
    uint8_t *buf = malloc(buf_cap);
    t->merge_scratch_bytes = buf_cap;
    if (!t->merge_result || !t->pair_slots || !t->byte_pair_rank || !buf) {
        free(buf);
        return bn_fail(err, BN_E_NOMEM, "out of memory loading %u merges", n);
    }
    int16_t unbyte[0x144];
    build_unbyte(unbyte);
    /* Merges are resolved in batches: first every text is decoded and hashed and its table
       slots prefetched, then looked up, then the pairs are inserted in rank order. The table
       accesses are random; overlapping their cache misses is what keeps the load fast. */
    for (uint32_t i0 = 0; i0 < n; i0 += MERGE_BATCH) {
        uint32_t nb = n - i0 < MERGE_BATCH ? n - i0 : MERGE_BATCH;
        size_t need = 0;
        for (uint32_t k = 0; k < nb; k++) {
            size_t len = merges->arr_strs[i0 + k].len;
            need += len <= 2 * t->max_text + 1 ? len : 0; /* longer ones are refused below */
        }
        if (need > buf_cap) {
            uint8_t *bigger = realloc(buf, need);
            if (!bigger) {
                free(buf);
                return bn_fail(err, BN_E_NOMEM, "out of memory loading merge %u (%zu bytes)", i0,
                               need);
            }
            buf = bigger;
            buf_cap = need;
            if (buf_cap > t->merge_scratch_bytes)
                t->merge_scratch_bytes = buf_cap;
        }
        merge_job jobs[MERGE_BATCH];
        size_t boff = 0;
        for (uint32_t k = 0; k < nb; k++) {
            uint32_t i = i0 + k;
            const uint8_t *s = (const uint8_t *)merges->arr_strs[i].ptr;
            size_t len = merges->arr_strs[i].len;
            const uint8_t *sp = NULL; /* the first space after the first byte */
            for (size_t q = 1; q < len; q++)
                if (s[q] == ' ') {
                    sp = s + q;
                    break;
                }
            /* both halves must be tokens, so a longer merge cannot be valid (and fits buf) */
            if (!sp || len > 2 * t->max_text + 1) {
                free(buf);
                return bn_fail(err, BN_E_FORMAT,
                               "tokenizer.ggml.merges[%u] \"%.*s\" is not \"left right\"", i,
                               (int)(len > 80 ? 80 : len), (const char *)s);
            }
            merge_job *j = &jobs[k];
            size_t ll = (size_t)(sp - s);
            j->p = buf + boff;
            j->lb = unbyte_text(unbyte, s, ll, j->p);
            j->rb = unbyte_text(unbyte, sp + 1, len - ll - 1, j->p + j->lb);
            boff += j->lb + j->rb;
            j->head[0] = head8(j->p, j->lb);
            j->head[1] = head8(j->p + j->lb, j->rb);
            j->head[2] = head8(j->p, j->lb + j->rb);
            j->h[0] = hash_with_head(j->head[0], j->p, j->lb);
            j->h[1] = hash_with_head(j->head[1], j->p + j->lb, j->rb);
            j->h[2] = hash_with_head(j->head[2], j->p, j->lb + j->rb);
            for (int q = 0; q < 3; q++)
                __builtin_prefetch(&t->tok_slots[j->h[q] & t->tok_mask]);
        }
        for (uint32_t k = 0; k < nb; k++) {
            merge_job *j = &jobs[k];
            size_t lens[3] = {j->lb, j->rb, j->lb + j->rb};
            const uint8_t *ps[3] = {j->p, j->p + j->lb, j->p};
            for (int q = 0; q < 3; q++)
                j->id[q] = lens[q] <= t->max_piece
                               ? tok_find(t, ps[q], lens[q], j->head[q], j->h[q])
                               : -1;
            if (j->id[0] >= 0 && j->id[1] >= 0)
                __builtin_prefetch(
                    &t->pair_slots[pair_hash(pair_key(j->id[0], j->id[1])) & t->pair_mask]);
        }
        for (uint32_t k = 0; k < nb; k++) {
            merge_job *j = &jobs[k];
            uint32_t i = i0 + k;
            if (j->id[0] < 0 || j->id[1] < 0 || j->id[2] < 0) {
                const bn_gguf_str *m = &merges->arr_strs[i];
                free(buf);
                return bn_fail(err, BN_E_FORMAT,
                               "tokenizer.ggml.merges[%u] \"%.*s\": %s is not a token", i,
                               (int)(m->len > 80 ? 80 : m->len), m->ptr,
                               j->id[0] < 0   ? "the left part"
                               : j->id[1] < 0 ? "the right part"
                                              : "the merged text");
            }
            if (pair_insert(t, j->id[0], j->id[1], i) && j->lb == 1 && j->rb == 1)
                t->byte_pair_rank[(size_t)j->p[0] << 8 | j->p[1]] = i + 1;
            t->merge_result[i] = j->id[2];
        }
    }
    free(buf);
    return 0;
}

static int load_specials(bn_tokenizer *t, bn_err *err)
{
    uint32_t n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (splits_out(t->type[i]) && t->off[i + 1] > t->off[i])
            n++;
    /* sort key: first byte, then longest first, then id (ids < 2^20, lengths < 2^32) */
    uint64_t *keys = malloc((n ? n : 1) * sizeof *keys);
    t->specials = malloc((n ? n : 1) * sizeof *t->specials);
    if (!keys || !t->specials) {
        free(keys);
        return bn_fail(err, BN_E_NOMEM, "out of memory");
    }
    n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (splits_out(t->type[i]) && t->off[i + 1] > t->off[i]) {
            uint64_t len = t->off[i + 1] - t->off[i];
            keys[n++] = (uint64_t)t->bytes[t->off[i]] << 52 | (0xFFFFFFFFull - len) << 20 |
                        (uint64_t)i;
            if (t->type[i] == BN_TOK_USER_DEFINED)
                t->has_user_defined = true;
        }
    t->n_specials = n;
    qsort(keys, n, sizeof *keys, cmp_u64);
    for (uint32_t i = 0; i < n; i++)
        t->specials[i] = (int32_t)(keys[i] & 0xFFFFF);
    free(keys);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t f = t->bytes[t->off[t->specials[i]]];
        if (t->first_hi[f] == 0)
            t->first_lo[f] = i;
        t->first_hi[f] = i + 1;
    }
    return bn_special_index_build(t, err);
}

bn_tokenizer *bn_tokenizer_load(const bn_gguf *g, bn_err *err)
{
    bn_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        bn_fail(err, BN_E_NOMEM, "out of memory");
        return NULL;
    }
    (void)bn_unicode_bmp(); /* build the class table now, off the first tokenize call */
    if (load_model_kind(g, t, err) || load_tokens(g, t, err)) {
        bn_tokenizer_free(t);
        return NULL;
    }
    int rc = t->spm ? bn_spm_load(g, t, err) : load_merges(g, t, err);
    if (!rc)
        rc = load_specials(t, err);
    if (!rc && !t->spm) {
        t->piece_off = t->off; /* BPE decodes to the bytes it matches */
        t->piece = t->bytes;
        rc = load_meta(g, t, err);
    }
    if (rc || load_eot(g, t, err)) {
        bn_tokenizer_free(t);
        return NULL;
    }
    return t;
}

void bn_tokenizer_free(bn_tokenizer *t)
{
    if (!t)
        return;
    if (t->piece != t->bytes) {
        free(t->piece_off);
        free(t->piece);
    }
    free(t->score);
    free(t->type);
    free(t->off);
    free(t->bytes);
    free(t->tok_slots);
    free(t->pair_slots);
    free(t->merge_result);
    free(t->byte_pair_rank);
    free(t->specials);
    bn_special_index_free(t);
    free(t);
}

int32_t bn_tokenizer_n_vocab(const bn_tokenizer *t) { return t->n_vocab; }
int32_t bn_tokenizer_bos(const bn_tokenizer *t) { return t->bos; }
int32_t bn_tokenizer_eos(const bn_tokenizer *t) { return t->eos; }
int32_t bn_tokenizer_eot(const bn_tokenizer *t) { return t->eot; }
bool bn_tokenizer_add_bos(const bn_tokenizer *t) { return t->add_bos; }
bool bn_tokenizer_add_eos(const bn_tokenizer *t) { return t->add_eos; }
bool bn_tokenizer_is_spm(const bn_tokenizer *t) { return t->spm; }
bn_pretokenizer bn_tokenizer_pre(const bn_tokenizer *t) { return t->pre; }

bool bn_tokenizer_is_eog(const bn_tokenizer *t, int32_t id)
{
    return id >= 0 && (id == t->eos || id == t->eot);
}

const char *bn_tokenizer_token_text(const bn_tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->n_vocab) {
        *len = 0;
        return NULL;
    }
    *len = t->text[id].len;
    return t->text[id].ptr;
}
