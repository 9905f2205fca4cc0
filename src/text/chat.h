/* The chat template of BitNet b1.58 2B-4T as the reference applies it (FORMAT.md 6.5): the
 * file's Jinja placeholder contains "BITNET", which makes llama.cpp use its built-in "bitnet"
 * rule instead of running the template:
 *
 *   system    -> "System: {content}"
 *   user      -> "User: {content}<|eot_id|>Assistant: "
 *   assistant -> "{content}"
 *
 * BOS (<|begin_of_text|>) comes first in a new conversation; the caller adds it as a token.
 *
 * The rendering is handed out as segments so that ONLY the template's own special token is
 * parsed as special: content is always plain text, even if it spells "<|eot_id|>". Text
 * segments merge the template's literals with the content (the reference tokenizes
 * "User: hi" as one fragment; tokenizing "User: " and "hi" apart would give other ids). */
#ifndef BN_CHAT_H
#define BN_CHAT_H

#include <stddef.h>

#include "error.h"

/* The same definition as in bitnet.h (which is self-contained). */
#ifndef BN_CHAT_MSG_DEFINED
#define BN_CHAT_MSG_DEFINED
typedef struct bn_chat_msg {
    const char *role;    /* "system", "user" or "assistant" */
    const char *content; /* UTF-8 */
} bn_chat_msg;
#endif

/* The special token the template places after each user message. */
#define BN_CHAT_EOT "<|eot_id|>"

/* Called once per segment, in order: plain text (special = 0) or the name of a special token
 * (special = 1). Adjacent text is merged into one segment; empty text segments are skipped.
 * Returns non-zero to abort (that value is returned by bn_chat_render). */
typedef int (*bn_chat_emit_fn)(void *user, const char *text, size_t len, int special);

/* Renders msgs[0..n) in order. -1 + err on an unknown role or NULL content; the emitter's
 * non-zero return otherwise. */
int bn_chat_render(const bn_chat_msg *msgs, size_t n, bn_chat_emit_fn emit, void *user,
                   bn_err *err);

/* The whole rendering as one malloc'd string, special tokens written as their names (what
 * llama-cli shows as the template example). NULL + err on failure. */
char *bn_chat_format(const bn_chat_msg *msgs, size_t n, bn_err *err);

#endif
