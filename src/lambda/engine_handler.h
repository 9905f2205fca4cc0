/* The real handler: a bn_engine opened once at init and one session reused by every
 * invocation (the KV cache keeps the longest common prompt prefix between calls), answering
 * through the API router. BITNET_API_KEY, when set, is required as "Authorization: Bearer"
 * on HTTP events (a public Function URL). */
#ifndef BN_LAMBDA_ENGINE_HANDLER_H
#define BN_LAMBDA_ENGINE_HANDLER_H

#include "api.h"
#include "bitnet.h"
#include "loop.h"

/* Tokens generated when a request gives no limit (a Lambda invocation has a deadline). */
#define BN_LAMBDA_DEFAULT_N_PREDICT 256

typedef struct bn_engine_handler {
    bn_engine *engine;
    bn_session *session;
    char model[128];   /* file name of the model, for responses */
    double open_ms;    /* bn_engine_open */
    double session_ms; /* bn_session_create */
    double warmup_ms;  /* bn_engine_handler_warmup */
    bn_api api;
} bn_engine_handler;

/* Opens PATH (mmap) and creates a session with n_threads and n_ctx (0 = the engine's
 * default). -1 + err on a missing or corrupt model. */
int bn_engine_handler_open(bn_engine_handler *eh, const char *path, int n_threads, uint32_t n_ctx,
                           bn_err *err);
void bn_engine_handler_close(bn_engine_handler *eh);
/* Generates one token from a short prompt and forgets it: pages in every weight, the KV cache
 * and the scratch buffers during Lambda's init phase instead of during the first request. */
int bn_engine_handler_warmup(bn_engine_handler *eh, bn_err *err);
/* The loop's view of it. */
bn_lambda_handler bn_engine_handler_iface(bn_engine_handler *eh);

#endif
