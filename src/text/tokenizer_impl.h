/* Internals shared by tokenizer.c (loading), pretokenize.c, bpe.c, spm.c, tokenize.c and
 * detokenize.c. Not part of the public API (tests may use it). */
#ifndef BN_TOKENIZER_IMPL_H
#define BN_TOKENIZER_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

/* GGUF token types (llama.cpp's llama_token_type). */
enum {
    BN_TOK_UNDEFINED = 0,
    BN_TOK_NORMAL = 1,
    BN_TOK_UNKNOWN = 2,
    BN_TOK_CONTROL = 3,
    BN_TOK_USER_DEFINED = 4,
    BN_TOK_UNUSED = 5,
    BN_TOK_BYTE = 6,
};

/* Limits that keep the packed tables below valid (checked at load). */
#define BN_TOK_MAX_VOCAB  (1 << 20)
#define BN_TOK_MAX_MERGES ((1 << 24) - 2)

typedef struct bn_tok_slot {
    uint64_t head; /* first 8 bytes of the token, zero-padded */
    uint32_t id1;  /* id + 1; 0 = empty */
    uint32_t meta; /* 8 hash bits << 24 | length */
} bn_tok_slot;

/* Special tokens indexed for the linear-time scan (special.c). */
typedef struct bn_special_slot {
    uint64_t h;
    int32_t id; /* id + 1; 0 = empty */
} bn_special_slot;

typedef struct bn_special_set {
    uint32_t n_lens;
    uint32_t *lens; /* distinct lengths, longest first */
    uint64_t *pow;  /* base^(len-1) mod 2^61-1 of each */
    bn_special_slot *slots;
    uint64_t mask;
} bn_special_set;

struct bn_tokenizer {
    int32_t n_vocab;
    bool spm;                /* SentencePiece ("llama"), else byte-level BPE ("gpt2") */
    const bn_gguf_str *text; /* token strings in the GGUF (views) */
    uint8_t *type;           /* token types */
    uint32_t *off;           /* n_vocab + 1 offsets into bytes: what tokenizing matches. BPE:
                                a token's raw bytes (byte-level form undone for ordinary tokens,
                                stored text for the others); SPM: the stored text of every token */
    uint8_t *bytes;
    /* what decoding gives (n_vocab + 1 offsets): the same arrays as off/bytes for BPE; for SPM
       its own arena (U+2581 -> space, <0xNN> -> the byte, unused/undefined tokens empty) */
    uint32_t *piece_off;
    uint8_t *piece;
    size_t max_piece;           /* longest entry of bytes */
    size_t max_text;            /* longest token text in the GGUF */
    size_t merge_scratch_bytes; /* largest buffer loading the merges needed (for tests) */
    /* raw bytes -> id of ordinary tokens (open addressing, linear probing) */
    bn_tok_slot *tok_slots;
    uint64_t tok_mask;
    int32_t byte_tok[256]; /* the token of each single byte */
    /* merge pair -> rank; slot = left << 44 | right << 24 | (rank + 1), 0 = empty */
    uint64_t *pair_slots;
    uint64_t pair_mask;
    int32_t *merge_result; /* by rank: the token left+right makes */
    uint32_t n_merges;
    uint32_t *byte_pair_rank; /* 65536: rank + 1 of merging byte tokens a,b (0 = none) */
    /* tokens split out of the text before pre-tokenization: sorted by first byte, longest
       first; first_lo/first_hi index them by first byte */
    int32_t *specials;
    uint32_t n_specials;
    uint32_t first_lo[256], first_hi[256];
    uint64_t spec_base;
    bn_special_set spec_all;  /* control, user-defined, unknown (parse_special) */
    bn_special_set spec_user; /* user-defined only (plain text mode) */
    bool has_user_defined;
    int32_t bos, eos, eot;
    bool add_bos;
    bool add_eos; /* add_eos_token (default false): EOS ends a text tokenized with BOS allowed */
    bn_pretokenizer pre;
    /* SentencePiece only */
    float *score;          /* merge priority of each token (higher first) */
    int32_t unk;           /* unknown_token_id (default 0), -1 when out of range */
    bool add_space_prefix; /* add_space_prefix (default true): a text fragment at the start or
                              after a special token gets a leading space */
};

/* Linear-time special-token scan over one text: bn_special_next returns the first allowed
 * special at or after `from` (longest first, then lowest id) and its start in *at, or -1. */
typedef struct bn_special_scan {
    const bn_tokenizer *t;
    const bn_special_set *set;
    const uint8_t *s;
    size_t len, pos;
    uint64_t *h; /* rolling hash of s[pos, pos+len_k) per length k */
} bn_special_scan;
int bn_special_index_build(bn_tokenizer *t, bn_err *err);
void bn_special_index_free(bn_tokenizer *t);
int bn_special_scan_init(bn_special_scan *sc, const bn_tokenizer *t, const uint8_t *text,
                         size_t len, bool parse_special, bn_err *err);
int32_t bn_special_next(bn_special_scan *sc, size_t from, size_t *at);
void bn_special_scan_free(bn_special_scan *sc);

/* Hash of a byte string (the token table's; also used by the per-call piece cache). */
uint64_t bn_tok_hash(const uint8_t *p, size_t n);
/* Id of the ordinary token whose raw bytes are P[0..N), or -1. */
int32_t bn_tok_lookup(const bn_tokenizer *t, const uint8_t *p, size_t n);
/* Rank of merging tokens L and R, or UINT32_MAX. */
uint32_t bn_tok_pair_rank(const bn_tokenizer *t, int32_t l, int32_t r);

/* Pre-tokenizers: call EMIT for each piece of TEXT[0..N), in order, covering every byte. */
typedef void (*bn_piece_fn)(void *ctx, const uint8_t *p, size_t n);
void bn_pretokenize_llama3(const uint8_t *text, size_t n, bn_piece_fn emit, void *ctx);
void bn_pretokenize_default(const uint8_t *text, size_t n, bn_piece_fn emit, void *ctx);
void bn_pretokenize_falcon3(const uint8_t *text, size_t n, bn_piece_fn emit, void *ctx);

/* BPE of one piece: scratch grows as needed. */
typedef struct bn_bpe_step {
    uint32_t rank;       /* rank of the merge done at this step */
    int32_t first, last; /* the piece's first and last symbol after it */
} bn_bpe_step;

typedef struct bn_bpe_scratch {
    int32_t *id;
    uint32_t *rank;
    int32_t *prev, *next;
    void *heap;
    size_t cap, heap_cap;
    bn_bpe_step *steps[2]; /* merge histories of two neighbouring windows (bpe_window.c) */
    size_t steps_cap;
    size_t window;       /* window bytes for long pieces; 0 = BN_BPE_WINDOW (tests set it) */
    bool fixed_cuts;     /* tests: cut at every window bytes, not at a probed token boundary */
    uint64_t ops;        /* merge steps + heap pops done, for tests of the complexity bound */
    uint64_t windowed;   /* pieces encoded window by window */
    uint64_t unverified; /* long pieces whose window cuts could not be proven: done whole */
} bn_bpe_scratch;

enum {
    BN_BPE_AUTO = 0,
    BN_BPE_SCAN,
    BN_BPE_HEAP,
    BN_BPE_WINDOWS
};
/* Pieces longer than this are encoded in windows of this many bytes when every cut between
 * windows is proven not to change the result (bpe_window.c); the working memory is then
 * bounded by the window, not by the piece. */
#define BN_BPE_WINDOW ((size_t)65536)

/* Appends the ids of P[0..N) (n >= 1) to OUT (room for n ids); returns how many, or -1 on
 * out-of-memory. ALGO forces the quadratic scan, the heap or the windows (tests); AUTO picks
 * by length. */
long bn_bpe_encode(const bn_tokenizer *t, const uint8_t *p, size_t n, int32_t *out,
                   bn_bpe_scratch *s, int algo);
void bn_bpe_scratch_free(bn_bpe_scratch *s);
/* The heap algorithm on one piece; when STEPS is not NULL (room for n - 1 entries), records
 * every merge in order and *n_steps their count. -1 on out-of-memory. */
long bn_bpe_heap(const bn_tokenizer *t, const uint8_t *p, size_t n, int32_t *out, bn_bpe_scratch *s,
                 bn_bpe_step *steps, size_t *n_steps);
/* Window by window (bpe_window.c): the ids, -1 on out-of-memory, -2 when a cut could not be
 * proven safe (OUT then holds garbage: encode the piece whole). */
long bn_bpe_windows(const bn_tokenizer *t, const uint8_t *p, size_t n, int32_t *out,
                    bn_bpe_scratch *s);

/* SentencePiece (spm.c). bn_spm_load runs after the token arena and table are built: scores,
 * byte fallback, the decoding arena, bos/eos/unk and the add_* flags. */
int bn_spm_load(const bn_gguf *g, bn_tokenizer *t, bn_err *err);
/* bn_tokenize for a SentencePiece vocabulary (same contract): BOS first and EOS last when
 * asked (and the vocabulary has them). */
int bn_spm_tokenize(const bn_tokenizer *t, const uint8_t *text, size_t len, bool bos, bool eos,
                    bool parse_special, int32_t **ids, size_t *n, bn_err *err);

#endif
