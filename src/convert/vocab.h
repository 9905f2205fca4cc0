/* The vocabulary part of a conversion: tokenizer.json (byte-level BPE) or tokenizer.model
 * (SentencePiece), plus tokenizer_config.json and config.json's token ids, turned into the
 * values of the tokenizer.ggml.* keys as the reference converters compute them:
 *  - BPE, "bitnet"/"llama" (convert-hf-to-gguf-bitnet.py get_vocab_base): ids 0..vocab_size-1;
 *    an id no token has becomes "[PAD<id>]" (USER_DEFINED); an added token is CONTROL when
 *    "special", else USER_DEFINED, and is written as its content (the reference writes
 *    decode(encode(content)), which prefixes "<|begin_of_text|>" to every special token with a
 *    BOS-adding tokenizer: a defect we do not copy); other tokens NORMAL; no scores;
 *  - BPE, "bitnet-b1.58" (convert-ms-to-gguf-bitnet.py BpeVocab): model.vocab in id order
 *    (NORMAL, score 0) then the added tokens not in it (CONTROL, score -1000), whose ids must
 *    follow; vocab_size must equal the count;
 *  - SentencePiece (_set_vocab_sentencepiece): every piece with its score and type (UNKNOWN,
 *    CONTROL, UNUSED, BYTE kept; NORMAL and USER_DEFINED -> NORMAL), then added_tokens.json's
 *    keys that are not pieces yet (score -1000, USER_DEFINED), then "[PAD1]".."[PADn]" (score
 *    -1000, UNUSED) up to vocab_size;
 *  - merges (BPE only): strings as written, or [a, b] pairs joined by a space with spaces
 *    inside a part written as U+0120;
 *  - special ids (SpecialVocab): bos, eos, unk, sep, pad, cls, mask from tokenizer_config's
 *    *_token looked up among tokenizer.json's added_tokens, then config.json's *_token_id for
 *    the others, in the order found; ids >= the token count are dropped for SentencePiece;
 *  - add_bos_token / add_eos_token and chat_template (a string, copied verbatim) from
 *    tokenizer_config.json. */
#ifndef BN_CONVERT_VOCAB_H
#define BN_CONVERT_VOCAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "hf_config.h"

typedef struct bn_vocab_out {
    const char *model; /* "gpt2" or "llama" */
    char pre[32];      /* tokenizer.ggml.pre ("default" for SentencePiece) */
    size_t n_tokens;
    char **tokens; /* NUL-terminated (a token never holds a NUL: JSON and protobuf checked) */
    int32_t *types;
    float *scores; /* NULL = no scores key */
    size_t n_merges;
    char **merges;
    int n_special;
    int special_type[7]; /* index into bn_special_type() */
    uint32_t special_id[7];
    bn_opt_u32 add_bos, add_eos; /* .v = 0/1 */
    bn_opt_u32 add_prefix_space; /* tokenizer_config's add_prefix_space (llama) */
    char *chat_template;         /* NULL = none */
} bn_vocab_out;

/* Reads the tokenizer files of DIR for config C. pre_override (may be NULL) names
 * tokenizer.ggml.pre when the BPE split is not recognised. */
int bn_vocab_load(const char *dir, const bn_hf_config *c, const char *pre_override, bn_vocab_out *v,
                  bn_err *err);
void bn_vocab_free(bn_vocab_out *v);

/* Reads a whole small file (config/tokenizer JSON, tokenizer.model) into memory; *found = 0
 * (and 0 returned) when it does not exist and FOUND is not NULL. */
int bn_read_file(const char *dir, const char *name, char **data, size_t *len, int *found,
                 bn_err *err);

#endif
