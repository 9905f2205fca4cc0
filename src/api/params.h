/* Request fields -> generation settings: the one place where llama-server's and OpenAI's
 * field names, types and ranges are read, so that the range checks can move into the engine's
 * own table later without touching the routes. Unknown fields are refused (a typo such as
 * "n_predit" would otherwise silently use a default), except a few that clients send and
 * that change nothing here (listed in params.c). */
#ifndef BN_API_PARAMS_H
#define BN_API_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bitnet.h"
#include "json.h"

#define BN_API_MAX_STOP     16
#define BN_API_MAX_MESSAGES 1024

typedef enum bn_api_dialect {
    BN_API_LLAMA,    /* POST /completion, /completions: llama-server's answer */
    BN_API_OAI_TEXT, /* POST /v1/completions: OpenAI's text_completion */
    BN_API_OAI_CHAT, /* POST /v1/chat/completions, /chat/completions */
} bn_api_dialect;

typedef struct bn_api_gen {
    bn_api_dialect dialect;
    const char *prompt;  /* text prompt (completions) */
    int32_t *prompt_ids; /* or token ids (completions), malloc'd */
    size_t n_prompt_ids;
    bn_chat_msg *messages; /* chat, malloc'd */
    size_t n_messages;
    int32_t n_predict; /* -1 = until a stop */
    bn_sampling_params sampling;
    bool seed_given;
    const char *stop[BN_API_MAX_STOP];
    size_t n_stop;
    bool stream;
    bool include_usage; /* stream_options.include_usage */
    int32_t n_probs;    /* top tokens per position (llama n_probs, OpenAI top_logprobs) */
    bool logprobs;      /* OpenAI: answer with logprobs (chat: logprobs true) */
} bn_api_gen;

/* Reads the request object. -1 + err (BN_E_INPUT, naming the field) when a field is unknown,
 * of the wrong type or out of range. Strings point into the parsed tree. */
int bn_api_gen_parse(const bn_json *o, bn_api_dialect d, int32_t default_n_predict, bn_api_gen *g,
                     bn_err *err);
void bn_api_gen_free(bn_api_gen *g);

#endif
