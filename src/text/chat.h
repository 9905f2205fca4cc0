/* Chat templates as llama.cpp applies them (it never runs the Jinja text: it recognises a
 * template by its markers and formats with a built-in rule). The five the models bitnet.cpp
 * runs carry (README "Chat templates"):
 *
 *   bitnet   "BITNET"         System: {c} | User: {c}<|eot_id|>Assistant:  | {c}
 *   llama3   <|start_header_id|> and <|end_header_id|>
 *            <|start_header_id|>{role}<|end_header_id|>\n\n{trim(c)}<|eot_id|>
 *            then <|start_header_id|>assistant<|end_header_id|>\n\n
 *   falcon3  <|assistant|> and <|user|>   <|{role}|>\n{c}\n   then <|assistant|>\n
 *   chatml   <|im_start|>     <|im_start|>{role}\n{c}<|im_end|>\n  then <|im_start|>assistant\n
 *   zephyr   <|user|>         <|{role}|>\n{c}<|endoftext|>\n  then <|assistant|>\n
 *   falcon_e (by name only)   {role}{c}\n   then assistant\n   (plain text, no marker)
 *
 * Markers are tried in llama.cpp's order (chatml, falcon3, zephyr, llama3, bitnet; phi3's
 * "<|assistant|> and <|end|>" is not one of ours and is tried before falcon3). The assistant
 * prompt follows when the last message is the user's (llama.cpp's add_ass as llama-cli uses
 * it: a system message alone, as -cnv starts, gets none).
 *
 * falcon_e is the rule bitnet.cpp's llama.cpp fork added for Falcon-Edge; it is never
 * detected. Its branch there reads `tmpl == "falcon_e" && tmpl contains "assistant" and
 * "user"`, which no input satisfies, so the reference itself refuses the name ("the supplied
 * chat template is not supported"): the bytes here are that branch's body, which the
 * reference never runs (README "Chat templates").
 *
 * Details of the 2B-4T one (FORMAT.md 6.5): the
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

typedef enum bn_chat_template {
    BN_CHAT_UNKNOWN = 0,
    BN_CHAT_BITNET,
    BN_CHAT_LLAMA3,
    BN_CHAT_FALCON3,
    BN_CHAT_CHATML,
    BN_CHAT_ZEPHYR,
    BN_CHAT_FALCON_E,
} bn_chat_template;

/* The template a Jinja text (tokenizer.chat_template) stands for, by its markers; UNKNOWN
 * when none matches (or text is NULL). */
bn_chat_template bn_chat_detect(const char *text, size_t len);
/* By name ("bitnet", "llama3", "falcon3", "chatml", "zephyr", "falcon_e"); -1 when unknown. */
int bn_chat_template_from_name(const char *name, bn_chat_template *out);
const char *bn_chat_template_name(bn_chat_template t);

/* Whether the vocabulary has a token spelled NAME (a role marker such as <|user|>). */
typedef int (*bn_chat_has_token_fn)(void *user, const char *name, size_t len);

/* Renders msgs[0..n) in order with template t. bitnet's <|eot_id|> is always a special
 * segment (the vocabulary must have it); the other templates' markers are special segments
 * when has_token says the vocabulary has them (NULL: always) and plain text merged with their
 * neighbours otherwise, which is what llama.cpp's special-token parsing of the rendered text
 * amounts to. -1 + err on an unknown role or NULL content; the emitter's non-zero return
 * otherwise. */
int bn_chat_render_with(bn_chat_template t, const bn_chat_msg *msgs, size_t n,
                        bn_chat_has_token_fn has_token, bn_chat_emit_fn emit, void *user,
                        bn_err *err);
/* The "bitnet" template (the 2B-4T one). */
int bn_chat_render(const bn_chat_msg *msgs, size_t n, bn_chat_emit_fn emit, void *user,
                   bn_err *err);

/* The whole rendering as one malloc'd string, special tokens written as their names (what
 * llama-cli shows as the template example). NULL + err on failure. */
char *bn_chat_format_with(bn_chat_template t, const bn_chat_msg *msgs, size_t n, bn_err *err);
char *bn_chat_format(const bn_chat_msg *msgs, size_t n, bn_err *err);

#endif
