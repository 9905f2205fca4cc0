/* Lambda events -> a generation request, and results -> response JSON.
 *
 * Two event shapes:
 *  - direct invoke: the body of the blog unchanged,
 *      {"prompt", "n_predict", "temperature", "top_p", "top_k", "repeat_penalty"}
 *    plus "min_p", "seed", "stop" (string or array of strings), "system", "messages"
 *    ([{"role","content"}], rendered with the chat template) and "stream" (boolean);
 *  - Function URL / API Gateway proxy events (an object with "requestContext" or "httpMethod"
 *    or "routeKey"): the same JSON inside the "body" string (base64 when "isBase64Encoded");
 *    the answer is {"statusCode","headers","body"}.
 * Unknown fields, wrong types and out-of-range values are refused with a message naming the
 * field (a typo such as "n_predit" would otherwise silently use a default). */
#ifndef BN_LAMBDA_EVENT_H
#define BN_LAMBDA_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bitnet.h"
#include "json.h"

#define BN_LAMBDA_MAX_STOP 16
#define BN_LAMBDA_MAX_MESSAGES 256
#define BN_LAMBDA_DEFAULT_N_PREDICT 256

typedef struct bn_lambda_request {
    bool http;              /* proxy event: answer with {statusCode, headers, body} */
    const char *prompt;     /* raw completion text (NULL when chat) */
    bool chat;              /* messages (and/or system) given: use the chat template */
    bn_chat_msg *messages;  /* system first when given */
    size_t n_messages;
    int32_t n_predict;      /* -1 = until another stop condition */
    bn_sampling_params sampling;
    bool seed_given;
    const char *stop[BN_LAMBDA_MAX_STOP];
    size_t n_stop;
    bool stream;
    /* private */
    bn_json_doc *doc, *inner;
    unsigned char *decoded;
} bn_lambda_request;

/* Parses an event. -1 + err ("field \"top_p\": expected a number in [0, 1], got string")
 * when the request is invalid; *is_http tells how to answer even then. */
int bn_lambda_parse_event(const char *body, size_t len, bn_lambda_request *req, bool *is_http,
                          bn_err *err);
void bn_lambda_request_free(bn_lambda_request *req);

typedef struct bn_lambda_result {
    const char *text;
    size_t len;
    uint32_t tokens_generated;
    uint32_t prompt_tokens;
    const char *stop_reason; /* "eos", "eot", "length", "stop_string", "context_full", "deadline" */
    double prompt_ms, gen_ms, prompt_tok_s, gen_tok_s;
} bn_lambda_result;

/* {"text","tokens_generated","prompt_tokens","stop_reason","timings":{...},"model"} */
void bn_lambda_response_json(bn_buf *out, const bn_lambda_result *r, const char *model);
/* {"errorMessage","errorType"} */
void bn_lambda_error_json(bn_buf *out, const char *type, const char *message);
/* {"statusCode":status,"headers":{"content-type":ctype},"body":body} */
void bn_lambda_http_json(bn_buf *out, int status, const char *ctype, const char *body, size_t len);

#endif
