/* bn_lambda_handler over the engine API (bitnet.h). */
#include "engine_handler.h"

#include <stdlib.h>
#include <string.h>

static int handle(void *self, const bn_api_request *req, const bn_api_sink *sink)
{
    bn_engine_handler *eh = self;
    return bn_api_handle(&eh->api, req, sink);
}

int bn_engine_handler_open(bn_engine_handler *eh, const char *path, int n_threads, uint32_t n_ctx,
                           bn_err *err)
{
    memset(eh, 0, sizeof *eh);
    double t0 = bn_now_ms();
    eh->engine = bn_engine_open(path, NULL, err);
    if (!eh->engine)
        return -1;
    double t1 = bn_now_ms();
    bn_session_params sp = {.n_ctx = n_ctx, .n_threads = n_threads};
    eh->session = bn_session_create(eh->engine, &sp, err);
    if (!eh->session) {
        bn_engine_free(eh->engine);
        eh->engine = NULL;
        return -1;
    }
    eh->open_ms = t1 - t0;
    eh->session_ms = bn_now_ms() - t1;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".gguf"))
        n -= 5;
    if (n >= sizeof eh->model)
        n = sizeof eh->model - 1;
    memcpy(eh->model, base, n);
    eh->model[n] = 0;
    const char *key = getenv("BITNET_API_KEY");
    eh->api = (bn_api){.engine = eh->engine,
                       .session = eh->session,
                       .model = eh->model,
                       .api_key = key && *key ? key : NULL,
                       .n_predict = BN_LAMBDA_DEFAULT_N_PREDICT};
    return 0;
}

int bn_engine_handler_warmup(bn_engine_handler *eh, bn_err *err)
{
    double t0 = bn_now_ms();
    bn_generate_params g = bn_generate_default();
    g.prompt = "Hello";
    g.n_predict = 1;
    g.sampling.temp = 0;
    int rc = bn_generate(eh->session, &g, NULL, err);
    bn_session_reset(eh->session);
    eh->warmup_ms = bn_now_ms() - t0;
    return rc;
}

void bn_engine_handler_close(bn_engine_handler *eh)
{
    bn_session_free(eh->session);
    bn_engine_free(eh->engine);
    memset(eh, 0, sizeof *eh);
}

bn_lambda_handler bn_engine_handler_iface(bn_engine_handler *eh)
{
    return (bn_lambda_handler){eh, handle};
}
