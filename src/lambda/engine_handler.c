/* bn_lambda_handler over the engine API (bitnet.h). */
#include "engine_handler.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct run {
    bn_deadline *dl;
    const bn_speed_prior *prior;
    double prefill_start_ms, need_ms;
    size_t prompt_total, prompt_done;
    bool prefill_stopped;
    bn_lambda_piece_fn on_piece;
    void *piece_user;
    bool consumer_gone;
} run;

static int on_token(void *user, int32_t id, const char *text, size_t len)
{
    run *r = user;
    if (len && r->on_piece && r->on_piece(r->piece_user, text, len)) {
        r->consumer_gone = true;
        return 1;
    }
    if (id >= 0 && bn_deadline_tick(r->dl))
        return 1;
    return 0;
}

static int on_prefill(void *user, size_t done, size_t total)
{
    run *r = user;
    if (done == 0)
        r->prefill_start_ms = bn_epoch_ms();
    r->prompt_total = total;
    r->prompt_done = done;
    if (bn_deadline_prefill(r->dl, done, total, r->prefill_start_ms, r->prior, &r->need_ms)) {
        r->prefill_stopped = true;
        return 1;
    }
    return 0;
}

/* A prior needs a prompt long enough to measure (a few tokens cost more each than many). */
static void learn_speed(bn_speed_prior *sp, const bn_stats *st)
{
    if (st->prompt_eval >= BN_PREFILL_CHUNK && st->prompt_ms > 0)
        sp->prefill_ms_per_tok = st->prompt_ms / st->prompt_eval;
    if (st->gen_eval > 0 && st->gen_ms > 0)
        sp->decode_ms = st->gen_ms / st->gen_eval;
}

static uint64_t fresh_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec ^
           ((uint64_t)getpid() << 32);
}

static int generate(void *self, const bn_lambda_request *req, bn_deadline *dl,
                    bn_lambda_piece_fn on_piece, void *piece_user, bn_lambda_result *res,
                    bn_err *err)
{
    bn_engine_handler *eh = self;
    run r = {.dl = dl, .prior = &eh->speed, .on_piece = on_piece, .piece_user = piece_user};
    bn_generate_params g = bn_generate_default();
    if (req->chat) {
        g.messages = req->messages;
        g.n_messages = req->n_messages;
    } else {
        g.prompt = req->prompt;
    }
    g.n_predict = req->n_predict;
    g.sampling = req->sampling;
    if (!req->seed_given)
        g.sampling.seed = fresh_seed();
    g.stop = req->stop;
    g.n_stop = req->n_stop;
    g.on_token = on_token;
    g.on_prefill = on_prefill;
    g.user = &r;
    bn_stats st;
    if (bn_generate(eh->session, &g, &st, err))
        return -1; /* err's code decides the errorType (loop.h) */
    if (r.prefill_stopped && !strcmp(dl->reason, "shutdown"))
        return bn_fail(err, BN_E_INTERNAL,
                       "the runtime is shutting down (SIGTERM during the prompt)");
    if (r.prefill_stopped) {
        double left = (double)dl->deadline_ms - bn_epoch_ms();
        /* the request cannot be served as asked: InvalidRequest, with the estimate */
        return bn_fail(err, BN_E_INPUT,
                       "prompt too long for the time left: the prompt of %zu tokens cannot be "
                       "evaluated before the deadline: it needs about %.1f s (%s), %.1f s were "
                       "left; shorten the prompt or raise the function timeout",
                       r.prompt_total, r.need_ms / 1e3,
                       r.prompt_done ? "measured on its first tokens" : "at the speed measured before",
                       (left + (bn_epoch_ms() - r.prefill_start_ms)) / 1e3);
    }
    learn_speed(&eh->speed, &st);
    if (r.consumer_gone)
        return bn_fail(err, BN_E_IO, "the response stream ended early (the Runtime API closed it)");
    size_t len = 0;
    res->text = bn_session_output_text(eh->session, &len);
    res->len = len;
    res->tokens_generated = st.gen_tokens;
    res->prompt_tokens = st.prompt_tokens;
    res->stop_reason = st.stop_reason == BN_STOP_CALLBACK && dl->reason
                           ? dl->reason
                           : bn_stop_reason_name(st.stop_reason);
    res->prompt_ms = st.prompt_ms;
    res->prompt_tok_s = st.prompt_tok_s;
    res->gen_ms = st.gen_ms;
    res->gen_tok_s = st.gen_tok_s;
    return 0;
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
    return 0;
}

int bn_engine_handler_warmup(bn_engine_handler *eh, bn_err *err)
{
    double t0 = bn_now_ms();
    bn_generate_params g = bn_generate_default();
    g.prompt = "Hello";
    g.n_predict = 1;
    g.sampling.temp = 0;
    bn_stats st;
    int rc = bn_generate(eh->session, &g, &st, err);
    if (rc == 0)
        learn_speed(&eh->speed, &st);
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
    return (bn_lambda_handler){eh, eh->model, generate};
}
