/* Tokenizer loaded from the tokenizer.ggml.* keys of any GGUF (a model file or a vocab-only
 * file): byte-level BPE (Llama 3 / GPT-2 style, `tokenizer.ggml.model = "gpt2"`) or SentencePiece
 * (`"llama"`, the 1bitLLM files; spm.c, llama.cpp's SPM semantics), picked at load.
 *
 * BPE:
 *   text ──special-token split (optional)──► pre-tokenizer (Llama-3 or llama.cpp "default")
 *        ──► per piece: whole-piece lookup (Llama-3 only) or BPE by merge rank ──► ids
 *        (EOS last when add_eos_token)
 *   ids ──► bytes (GPT-2 byte-to-unicode form undone; specials as names or nothing)
 * SentencePiece:
 *   text ──special-token split──► per fragment: prefix space (add_space_prefix), ' ' -> U+2581,
 *        merges by token score, byte fallback <0xNN> ──► ids (EOS last when add_eos_token)
 *   ids ──► bytes (U+2581 -> ' ', <0xNN> -> the byte; bn_detokenize drops the prefix space)
 *
 * The tokenizer keeps views into the GGUF's strings: the bn_gguf must stay open while the
 * tokenizer is used. A loaded tokenizer is read-only: any number of threads may tokenize and
 * decode with it at once.
 *
 * Typical use (generation):
 *   bn_tokenizer *t = bn_tokenizer_load(model->gguf, &err);
 *   bn_tokenize_opts o = {.parse_special = true};         // BOS per add_bos_token
 *   int32_t *ids; size_t n;
 *   if (bn_tokenize(t, prompt, strlen(prompt), &o, &ids, &n, &err)) ...
 *   bn_detokenizer d; bn_detok_init(&d, t, false, &err);
 *   for each sampled id: { size_t len; const char *s = bn_detok_push(&d, id, &len); fwrite(s, 1, len, out); }
 *   s = bn_detok_flush(&d, &len); fwrite(...); bn_detok_free(&d);
 *   free(ids); bn_tokenizer_free(t);
 */
#ifndef BN_TOKENIZER_H
#define BN_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "gguf.h"

typedef struct bn_tokenizer bn_tokenizer;

/* How text is cut into pieces before BPE. */
typedef enum bn_pretokenizer {
    BN_PRE_AUTO = 0, /* what the file says; a file without tokenizer.ggml.pre gets LLAMA3 */
    BN_PRE_LLAMA3,  /* Llama 3's split regex + whole-piece vocabulary lookup (training tokenizer) */
    BN_PRE_DEFAULT, /* llama.cpp's "default" BPE pre-tokenizer (what bitnet.cpp uses for 2B-4T,
                        FORMAT.md 6.2), no whole-piece lookup: for parity with its token ids */
    BN_PRE_FALCON3, /* llama.cpp's "falcon3" (also its "falcon_e"): the default split with the
                        backtick as punctuation and every digit a piece */
} bn_pretokenizer;

typedef enum bn_bos_mode {
    BN_BOS_DEFAULT = 0, /* prepend BOS when the file's add_bos_token says so (default true);
                           never when the vocabulary has no BOS token */
    BN_BOS_NEVER,
    BN_BOS_ALWAYS,
} bn_bos_mode;

/* Zero-initialised (or NULL) = BOS per file, special-token names are plain text, AUTO split. */
typedef struct bn_tokenize_opts {
    bn_bos_mode bos;
    bool parse_special; /* text "<|eot_id|>" becomes id 128009 (chat templates); default: text */
    bn_pretokenizer pre;
} bn_tokenize_opts;

/* Loads the vocabulary (tokens, token_type, merges or scores, bos/eos/eot/unk, add_bos_token,
 * add_eos_token, add_space_prefix, pre). NULL + err when keys are missing, arrays disagree in
 * length, a merge names an unknown token, a special id is out of range, a BYTE token is not
 * "<0xNN>", or the model is neither "gpt2" nor "llama". */
bn_tokenizer *bn_tokenizer_load(const bn_gguf *g, bn_err *err);
void bn_tokenizer_free(bn_tokenizer *t);

/* Tokenizes LEN bytes of TEXT (any bytes: invalid UTF-8 is tokenized byte-wise, never
 * rejected). On success *ids is a malloc'd array of *n ids (caller frees; BPE: never more than
 * len + 2; SentencePiece: a space can take 3 byte tokens and each fragment a prefix space, so
 * at most 3 (len + fragments) + 2) and 0 is returned; -1 + err on out-of-memory (or a text too
 * long, below).
 * BOS per o->bos, and EOS at the end when the file's add_eos_token says so and o->bos is not
 * NEVER (llama.cpp's add_special, for both kinds of vocabulary); SentencePiece texts over 1 GiB
 * are refused (BN_E_INPUT). */
int bn_tokenize(const bn_tokenizer *t, const char *text, size_t len, const bn_tokenize_opts *o,
                int32_t **ids, size_t *n, bn_err *err);

/* Zero-copy bytes of one token: ordinary tokens give their raw bytes; control tokens their
 * name when SPECIAL, else nothing; user-defined tokens always their text. Out-of-range ids
 * give length 0. The pointer stays valid while the tokenizer lives (not NUL-terminated). */
const char *bn_token_bytes(const bn_tokenizer *t, int32_t id, bool special, size_t *len);
/* Copying form (llama.cpp's token_to_piece): copies min(len, cap) bytes, returns the full len. */
size_t bn_token_to_piece(const bn_tokenizer *t, int32_t id, bool special, char *buf, size_t cap);

/* Whole decode: the concatenated bytes of IDS (malloc'd, NUL-terminated for convenience, the
 * NUL not counted in *len). SentencePiece with add_space_prefix: one leading space of the first
 * token is dropped (llama.cpp's llama_detokenize), so decode(encode(x)) == x; after a BOS it is
 * kept. -1 + err when an id is out of range. */
int bn_detokenize(const bn_tokenizer *t, const int32_t *ids, size_t n, bool special, char **out,
                  size_t *len, bn_err *err);

/* Streaming decode for printing as tokens arrive: never returns a partial UTF-8 sequence,
 * holds the bytes of an incomplete one until it completes, and passes through bytes that can
 * never complete (invalid UTF-8) as they are, so the concatenation of everything returned by
 * push + flush equals bn_detokenize's bytes exactly (SentencePiece: plus the leading space
 * bn_detokenize drops; generated text keeps it, as llama.cpp's token_to_piece does). */
typedef struct bn_detokenizer {
    const bn_tokenizer *t;
    bool special;
    uint8_t held[4];
    size_t n_held;
    char *buf; /* private output buffer (longest token + 4 bytes) */
    size_t cap;
} bn_detokenizer;

int bn_detok_init(bn_detokenizer *d, const bn_tokenizer *t, bool special, bn_err *err);
/* Bytes ready after appending token ID (*len may be 0); valid until the next call on D. */
const char *bn_detok_push(bn_detokenizer *d, int32_t id, size_t *len);
/* The held bytes (an incomplete sequence at the end of the stream), emptied. */
const char *bn_detok_flush(bn_detokenizer *d, size_t *len);
void bn_detok_free(bn_detokenizer *d);

/* Vocabulary facts. Ids are -1 when the file has no such token. */
int32_t bn_tokenizer_n_vocab(const bn_tokenizer *t);
int32_t bn_tokenizer_bos(const bn_tokenizer *t);
int32_t bn_tokenizer_eos(const bn_tokenizer *t);
int32_t bn_tokenizer_eot(const bn_tokenizer *t); /* eot_token_id, else the token "<|eot_id|>" */
bool bn_tokenizer_add_bos(const bn_tokenizer *t);
/* tokenizer.ggml.add_eos_token (default false): llama.cpp ends a text tokenized with
 * add_special with EOS (bn_tokenize does when o->bos is not NEVER). */
bool bn_tokenizer_add_eos(const bn_tokenizer *t);
/* SentencePiece ("llama") rather than byte-level BPE ("gpt2"). */
bool bn_tokenizer_is_spm(const bn_tokenizer *t);
/* End of generation: eos or eot. */
bool bn_tokenizer_is_eog(const bn_tokenizer *t, int32_t id);
/* The token as stored in the GGUF (GPT-2 byte-to-unicode form, specials as names); NULL for an
 * out-of-range id. Not NUL-terminated. */
const char *bn_tokenizer_token_text(const bn_tokenizer *t, int32_t id, size_t *len);
/* The id of a token by its stored text (e.g. "<|eot_id|>"), or -1. */
int32_t bn_tokenizer_find(const bn_tokenizer *t, const char *text, size_t len);
/* The pre-tokenizer AUTO resolves to for this file. */
bn_pretokenizer bn_tokenizer_pre(const bn_tokenizer *t);
/* Parses a pre-tokenizer name for a CLI flag: "llama3"/"llama-bpe" or "default"; -1 if unknown. */
int bn_pretokenizer_from_name(const char *name, bn_pretokenizer *out);

#endif
