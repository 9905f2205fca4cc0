/* The HTTP API router: llama-server's and OpenAI's routes over the engine API (bitnet.h).
 *
 *   method + path + headers that matter + JSON body  ->  status + content type + body
 *                                                         (JSON, or Server-Sent Events)
 *
 * The router never knows its transport: bitnet-server (src/server/) and the Lambda loop
 * (src/lambda/) each fill a bn_api_request and a bn_api_sink and call bn_api_handle. The sink
 * gets begin() once, then write() per piece: one write with the whole JSON body, or one
 * write per SSE event ("data: {...}\n\n") when the request asked for "stream": true.
 *
 * Errors are OpenAI's shape {"error": {"message", "type", "code"}} with the status mapped
 * from the bn_err code (never from message text): BN_E_INPUT / BN_E_CONTEXT_FULL -> 400,
 * BN_E_UNSUPPORTED -> 501, the rest -> 500; 401 bad API key, 404 unknown route, 405 wrong
 * method, 413 body too large. 503 (busy) is the transport's: it owns the queue. */
#ifndef BN_API_H
#define BN_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bitnet.h"

typedef struct bn_api {
    bn_engine *engine;
    bn_session *session; /* used by one request at a time (the transport serializes) */
    const char *model;   /* "model" in answers (e.g. the file name without .gguf) */
    const char *api_key; /* NULL/"": no authentication; else "Authorization: Bearer" */
    int32_t n_predict;   /* default when a request gives none (-1 = until a stop) */
    size_t max_body;     /* larger bodies: 413 (0 = 8 MiB) */
} bn_api;

typedef struct bn_api_request {
    const char *method;        /* "GET", "POST", ... */
    const char *path;          /* "/v1/chat/completions" (a query string is ignored) */
    const char *authorization; /* the Authorization header's value, NULL when absent */
    const char *body;          /* need not be NUL-terminated */
    size_t len;
    /* Called after every generated token; non-zero stops the generation (a deadline or a
     * shutdown; the answer then ends with finish_reason "length"). May be NULL. */
    int (*tick)(void *user);
    /* Called before each chunk of the prompt's evaluation (bitnet.h bn_prefill_fn: done of
     * total tokens); non-zero stops it, and the answer is an error made from *why, which the
     * hook fills (a deadline the prompt cannot meet: BN_E_INPUT with the estimate). May be
     * NULL. */
    int (*prefill)(void *user, size_t done, size_t total, bn_err *why);
    void *tick_user; /* for tick and prefill */
} bn_api_request;

typedef struct bn_api_sink {
    /* The answer's status and content type ("application/json" or "text/event-stream"),
     * before any write. Non-zero: the client is gone. */
    int (*begin)(void *user, int status, const char *content_type);
    /* Body bytes. Non-zero: the client is gone (generation stops). */
    int (*write)(void *user, const char *data, size_t len);
    /* Optional: when set, an error answered before begin() goes here instead of
     * begin + write (the Lambda direct invoke reports errors to the Runtime API).
     * type: OpenAI's error type ("invalid_request_error", "server_error", ...); code: the
     * engine's error code behind it (the router's own 4xx answers are BN_E_INPUT), for
     * transports that name errors by code. */
    void (*error)(void *user, int status, const char *type, bn_err_code code, const char *message);
    void *user;
} bn_api_sink;

/* Answers one request through sink. Returns the HTTP status sent (or that would have been
 * sent when the client went away). Never fails otherwise: every problem is an answer. */
int bn_api_handle(const bn_api *api, const bn_api_request *req, const bn_api_sink *sink);

/* True when the route runs a generation (needs the session, so the transport queues it);
 * the other routes may be answered at once, even while a generation runs. */
bool bn_api_is_generation(const char *method, const char *path);

/* An error answer in OpenAI's shape, for transports (413 before the body was read, 503 busy,
 * 400 malformed HTTP). type NULL = derived from the status. */
void bn_api_send_error(const bn_api_sink *sink, int status, const char *type, const char *message);

/* The error answer for an engine error: status from its code (bn_api_status_for), the
 * message as is. Returns the status. */
int bn_api_fail(const bn_api_sink *sink, const bn_err *err);

/* OpenAI's error type for a status: 400 "invalid_request_error", 401 "authentication_error",
 * 404 "not_found_error", 503 "unavailable_error", else "server_error"... */
const char *bn_api_error_type(int status);
/* HTTP status for an engine error code (400, 500, 501). */
int bn_api_status_for(bn_err_code code);

#endif
