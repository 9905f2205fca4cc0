/* The Runtime API loop, decoupled from the engine by a small handler interface so that it can
 * be tested with a fake handler, and the deadline rule generation follows.
 *
 * Every event goes through the API router (src/api/api.h) by its method and path; a direct
 * invoke is POST /completion (event.h).
 *
 * Error policy (RUNTIME-API.md section 11):
 *  - an HTTP event: the router's answer, errors included, is a normal /response
 *    {"statusCode": 4xx/5xx, "body": "{\"error\": ...}"} (an HTTP client gets a 400, not a
 *    502). The loop continues.
 *  - a direct invoke: an error (bad JSON, unknown field, wrong type, out of range, prompt too
 *    long) -> POST /error with the router's message naming the field and an errorType from
 *    the engine's bn_err code (bn_lambda_error_type, never from the message text):
 *
 *      code                         errorType               HTTP status (router)
 *      BN_E_INPUT                   InvalidRequest          400 (and 401/404/405/413)
 *      BN_E_CONTEXT_FULL            InvalidRequest          400
 *      BN_E_NOMEM                   Runtime.OutOfMemory     500
 *      BN_E_IO                      Runtime.IOError         500
 *      BN_E_FORMAT                  Runtime.FormatError     500
 *      BN_E_UNSUPPORTED             Runtime.Unsupported     501
 *      BN_E_INTERNAL (and others)   Runtime.InternalError   500
 *
 *    With BITNET_RESPONSE=envelope, the {"statusCode", "body"} answer instead.
 *  - mid-stream failures are an SSE error event in the stream (as llama-server sends them).
 *  - 413 on /response: POST /error "ResponseSizeTooLarge" for that request, keep serving.
 *  - 400/403 on /response or /error: logged, keep serving.
 *  - any 500, 403 on /next, a transport failure on a POST, 3 consecutive transport failures
 *    on /next: stop (the caller exits non-zero; Lambda restarts the runtime).
 *  - SIGTERM: exit 0 at once when idle, else after answering the current request (the
 *    generation stops at the next token with stop_reason "shutdown"). */
#ifndef BN_LAMBDA_LOOP_H
#define BN_LAMBDA_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "api.h"
#include "event.h"
#include "runtime_api.h"

/* ------------------------------------------------------------------ deadline */
/* What earlier invocations measured (0 = not known yet): the prompt evaluation's speed, for
 * deciding before a long prompt is evaluated whether it can finish in time. */
typedef struct bn_speed_prior {
    double prefill_ms_per_tok; /* prompt evaluation, per token */
    double decode_ms;          /* one generated token */
} bn_speed_prior;

typedef struct bn_deadline {
    int64_t deadline_ms; /* Unix epoch ms; 0 = none */
    double margin_ms;    /* kept free for posting the answer */
    double last_ms;      /* epoch ms of the previous tick */
    double est_ms;       /* expected duration of the next token */
    int ticks;
    const char *reason;      /* "deadline", "shutdown" or "prompt_too_long" once it said stop */
    bn_speed_prior *prior;   /* learned across invocations (may be NULL) */
    double prefill_start_ms; /* epoch ms of the prompt evaluation's start */
} bn_deadline;

double bn_epoch_ms(void);
void bn_deadline_start(bn_deadline *d, int64_t deadline_ms, double margin_ms);
/* Call after each generated token: true when generation must stop because the next token
 * plus the margin would not fit before the deadline, or SIGTERM arrived. The first token's
 * time includes the prompt, so the per-token estimate starts from the second. */
bool bn_deadline_tick(bn_deadline *d);

/* Call before each chunk of the prompt evaluation: done of total tokens evaluated since
 * start_ms (epoch ms). True (reason "prompt_too_long", or "shutdown" on SIGTERM) when the rest
 * of the prompt, one token and the margin cannot finish before the deadline, estimated from
 * this prompt's own speed once a chunk was measured, else from the prior; *need_ms is then the
 * estimate for the whole prompt. With no estimate yet it lets the work start. */
bool bn_deadline_prefill(bn_deadline *d, size_t done, size_t total, double start_ms,
                         const bn_speed_prior *prior, double *need_ms);

/* The errorType of a direct invoke's failure (the table above). */
const char *bn_lambda_error_type(bn_err_code code);

/* ------------------------------------------------------------------ handler */
/* Answers one HTTP request: the router's contract (api.h). The loop sets req->tick to the
 * deadline rule (bn_deadline_tick on its bn_deadline), so a generation stops in time. */
typedef struct bn_lambda_handler {
    void *self;
    int (*handle)(void *self, const bn_api_request *req, const bn_api_sink *sink);
} bn_lambda_handler;

typedef struct bn_lambda_config {
    bool stream_mode; /* BITNET_STREAM=1: the Function URL is in RESPONSE_STREAM mode, so
                           HTTP answers go out as streamed responses (SSE as it is made) */
    bool envelope;    /* BITNET_RESPONSE=envelope: a direct invoke is answered with
                           {"statusCode", "body": "<the answer as a JSON string>"} */
    double margin_ms; /* BITNET_DEADLINE_MARGIN_MS, default 250 */
} bn_lambda_config;

/* Fills cfg from the environment. */
void bn_lambda_config_from_env(bn_lambda_config *cfg);

/* Threads for generation: BITNET_THREADS when set (the engine's n_threads range; 0 = the CPUs
 * this process may use), else round(AWS_LAMBDA_FUNCTION_MEMORY_SIZE / 1769) (>= 1; Lambda
 * gives one vCPU per 1769 MB), capped by the CPUs this process may use; without either
 * variable, all visible CPUs. */
int bn_lambda_threads(bn_err *err);

/* A numeric setting from the environment, checked against the engine's settings table:
 * 0 when NAME is unset or empty (*out untouched), 1 when set (*out = its value), -1 + err
 * naming the variable and the range. */
int bn_lambda_env_setting(const char *name, bn_setting_id id, long *out, bn_err *err);

/* SIGTERM handling (see above). Call once before bn_lambda_run. */
void bn_lambda_install_signals(void);
bool bn_lambda_terminating(void);

/* Serves invocations until a fatal condition or SIGTERM; returns the exit status. */
int bn_lambda_run(bn_rt *rt, const bn_lambda_handler *h, const bn_lambda_config *cfg);

#endif
