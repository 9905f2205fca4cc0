/* The generation routes: llama-server's /completion, OpenAI's /v1/completions and
 * /v1/chat/completions, buffered (one JSON object) or streamed (Server-Sent Events, one event
 * per piece of text the engine made final; the engine never splits a UTF-8 character). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "routes.h"

typedef struct run {
    const bn_api *api;
    const bn_api_gen *g;
    const bn_api_request *req;
    const bn_api_sink *sink;
    char id[48];
    int64_t created;
    bool begun, gone, stopped_by_tick, stopped_by_prefill;
    bn_err prefill_why; /* why req->prefill stopped the prompt */
    uint32_t n_tokens;  /* sampled so far */
    bn_buf ev;          /* the event being built */
    bn_buf probs;       /* per token: 1 + n_probs bn_token_prob (chosen first) */
    size_t n_prob_rows, sent_rows;
    size_t text_offset; /* OpenAI completions logprobs: offset of the next token's text */
} run;

static size_t row_size(const run *r) { return (size_t)(1 + r->g->n_probs); }

static const bn_token_prob *prob_row(const run *r, size_t i)
{
    return (const bn_token_prob *)(const void *)r->probs.data + i * row_size(r);
}

static int on_probs(void *user, bn_token_prob chosen, const bn_token_prob *top, size_t n)
{
    run *r = user;
    bn_token_prob row[1 + BN_MAX_PROBS];
    memset(row, 0, sizeof row);
    row[0] = chosen;
    memcpy(row + 1, top, n * sizeof *top);
    bn_buf_append(&r->probs, row, row_size(r) * sizeof *row);
    r->n_prob_rows++;
    return r->probs.oom ? -1 : 0;
}

/* ------------------------------------------------------------------ common JSON pieces */
static double logprob(float p) { return p > 0.0f ? log((double)p) : -9999.0; }

/* The text of one token (its bytes; the writer turns a split character into U+FFFD). */
static void token_text(const run *r, int32_t id, bn_buf *out)
{
    bn_err err = {0};
    size_t len = 0;
    char *t = bn_engine_detokenize(r->api->engine, &id, 1, true, &len, &err);
    if (t)
        bn_buf_append(out, t, len);
    free(t);
}

static void write_token(bn_jw *w, const run *r, const char *key, int32_t id, bool bytes)
{
    bn_buf t = {0};
    token_text(r, id, &t);
    bn_jw_key(w, key);
    bn_jw_strn(w, t.data ? t.data : "", t.len);
    if (bytes) {
        bn_jw_key(w, "bytes");
        bn_jw_arr(w);
        for (size_t i = 0; i < t.len; i++)
            bn_jw_int(w, (unsigned char)t.data[i]);
        bn_jw_end(w);
    }
    bn_buf_free(&t);
}

/* llama-server's completion_probabilities (its logprob form) / OpenAI chat's
 * logprobs.content: [{"id"?, "token", "logprob", "bytes", "top_logprobs": [...]}] */
static void write_prob_rows(bn_jw *w, const run *r, size_t from, size_t to, bool with_id)
{
    bn_jw_arr(w);
    for (size_t i = from; i < to; i++) {
        const bn_token_prob *row = prob_row(r, i);
        bn_jw_obj(w);
        if (with_id) {
            bn_jw_key(w, "id");
            bn_jw_int(w, row[0].id);
        }
        write_token(w, r, "token", row[0].id, true);
        bn_jw_key(w, "logprob");
        bn_jw_num(w, logprob(row[0].prob));
        bn_jw_key(w, "top_logprobs");
        bn_jw_arr(w);
        for (int32_t k = 1; k <= r->g->n_probs; k++) {
            bn_jw_obj(w);
            if (with_id) {
                bn_jw_key(w, "id");
                bn_jw_int(w, row[k].id);
            }
            write_token(w, r, "token", row[k].id, true);
            bn_jw_key(w, "logprob");
            bn_jw_num(w, logprob(row[k].prob));
            bn_jw_end(w);
        }
        bn_jw_end(w);
        bn_jw_end(w);
    }
    bn_jw_end(w);
}

/* OpenAI completions' logprobs: {"tokens", "token_logprobs", "top_logprobs", "text_offset"} */
static void write_text_logprobs(bn_jw *w, run *r, size_t from, size_t to)
{
    bn_jw_obj(w);
    bn_jw_key(w, "tokens");
    bn_jw_arr(w);
    for (size_t i = from; i < to; i++) {
        bn_buf t = {0};
        token_text(r, prob_row(r, i)[0].id, &t);
        bn_jw_strn(w, t.data ? t.data : "", t.len);
        bn_buf_free(&t);
    }
    bn_jw_end(w);
    bn_jw_key(w, "token_logprobs");
    bn_jw_arr(w);
    for (size_t i = from; i < to; i++)
        bn_jw_num(w, logprob(prob_row(r, i)[0].prob));
    bn_jw_end(w);
    bn_jw_key(w, "top_logprobs");
    bn_jw_arr(w);
    for (size_t i = from; i < to; i++) {
        bn_jw_obj(w);
        for (int32_t k = 1; k <= r->g->n_probs; k++) {
            bn_buf t = {0};
            token_text(r, prob_row(r, i)[k].id, &t);
            bn_jw_keyn(w, t.data ? t.data : "", t.len);
            bn_jw_num(w, logprob(prob_row(r, i)[k].prob));
            bn_buf_free(&t);
        }
        bn_jw_end(w);
    }
    bn_jw_end(w);
    bn_jw_key(w, "text_offset");
    bn_jw_arr(w);
    for (size_t i = from; i < to; i++) {
        bn_jw_int(w, (int64_t)r->text_offset);
        bn_buf t = {0};
        token_text(r, prob_row(r, i)[0].id, &t);
        r->text_offset += t.len;
        bn_buf_free(&t);
    }
    bn_jw_end(w);
    bn_jw_end(w);
}

static const char *finish_reason(bn_stop_reason s)
{
    return s == BN_STOP_EOS || s == BN_STOP_EOT || s == BN_STOP_STRING ? "stop" : "length";
}

static void write_usage(bn_jw *w, const bn_stats *st)
{
    bn_jw_key(w, "usage");
    bn_jw_obj(w);
    bn_jw_key(w, "prompt_tokens");
    bn_jw_int(w, st->prompt_tokens);
    bn_jw_key(w, "completion_tokens");
    bn_jw_int(w, st->gen_tokens);
    bn_jw_key(w, "total_tokens");
    bn_jw_int(w, (int64_t)st->prompt_tokens + st->gen_tokens);
    bn_jw_end(w);
}

static void write_head(bn_jw *w, const run *r, const char *object)
{
    bn_jw_key(w, "id");
    bn_jw_str(w, r->id);
    bn_jw_key(w, "object");
    bn_jw_str(w, object);
    bn_jw_key(w, "created");
    bn_jw_int(w, r->created);
    bn_jw_key(w, "model");
    bn_jw_str(w, r->api->model);
    bn_jw_key(w, "system_fingerprint");
    bn_jw_str(w, "bitnet-" BN_VERSION);
}

static void write_settings(bn_jw *w, const run *r)
{
    const bn_api_gen *g = r->g;
    bn_jw_key(w, "generation_settings");
    bn_jw_obj(w);
    bn_jw_key(w, "n_predict");
    bn_jw_int(w, g->n_predict);
    bn_jw_key(w, "seed");
    bn_jw_int(w, (int64_t)g->sampling.seed);
    bn_jw_key(w, "temperature");
    bn_jw_num(w, g->sampling.temp);
    bn_jw_key(w, "top_k");
    bn_jw_int(w, g->sampling.top_k);
    bn_jw_key(w, "top_p");
    bn_jw_num(w, g->sampling.top_p);
    bn_jw_key(w, "min_p");
    bn_jw_num(w, g->sampling.min_p);
    bn_jw_key(w, "repeat_penalty");
    bn_jw_num(w, g->sampling.repeat_penalty);
    bn_jw_key(w, "repeat_last_n");
    bn_jw_int(w, g->sampling.repeat_last_n);
    bn_jw_key(w, "presence_penalty");
    bn_jw_num(w, g->sampling.presence_penalty);
    bn_jw_key(w, "frequency_penalty");
    bn_jw_num(w, g->sampling.frequency_penalty);
    bn_jw_key(w, "stop");
    bn_jw_arr(w);
    for (size_t i = 0; i < g->n_stop; i++)
        bn_jw_str(w, g->stop[i]);
    bn_jw_end(w);
    bn_jw_key(w, "n_probs");
    bn_jw_int(w, g->n_probs);
    bn_jw_key(w, "stream");
    bn_jw_bool(w, g->stream);
    bn_jw_key(w, "n_ctx");
    bn_jw_int(w, bn_session_n_ctx(r->api->session));
    bn_jw_end(w);
}

/* llama-server's answer (and its last stream event, with content ""). */
static void write_llama(bn_jw *w, run *r, const char *text, size_t len, const bn_stats *st)
{
    const bn_api_gen *g = r->g;
    bn_jw_obj(w);
    bn_jw_key(w, "index");
    bn_jw_int(w, 0);
    bn_jw_key(w, "content");
    bn_jw_strn(w, text, len);
    bn_jw_key(w, "id_slot");
    bn_jw_int(w, 0);
    bn_jw_key(w, "stop");
    bn_jw_bool(w, true);
    bn_jw_key(w, "model");
    bn_jw_str(w, r->api->model);
    bn_jw_key(w, "tokens_predicted");
    bn_jw_int(w, st->gen_tokens);
    bn_jw_key(w, "tokens_evaluated");
    bn_jw_int(w, st->prompt_tokens);
    bn_jw_key(w, "tokens_cached");
    bn_jw_int(w, (int64_t)st->prompt_tokens - st->prompt_eval);
    write_settings(w, r);
    bn_jw_key(w, "has_new_line");
    bn_jw_bool(w, memchr(text, '\n', len) != NULL);
    bn_jw_key(w, "truncated");
    bn_jw_bool(w, false);
    bn_jw_key(w, "stopped_eos");
    bn_jw_bool(w, st->stop_reason == BN_STOP_EOS || st->stop_reason == BN_STOP_EOT);
    bn_jw_key(w, "stopped_word");
    bn_jw_bool(w, st->stop_reason == BN_STOP_STRING);
    bn_jw_key(w, "stopped_limit");
    bn_jw_bool(w, !strcmp(finish_reason(st->stop_reason), "length"));
    bn_jw_key(w, "stopping_word");
    bn_jw_str(w, st->stop_reason == BN_STOP_STRING && st->stop_index >= 0 &&
                         (size_t)st->stop_index < g->n_stop
                     ? g->stop[st->stop_index]
                     : "");
    bn_jw_key(w, "stop_type");
    bn_jw_str(w, st->stop_reason == BN_STOP_STRING                                  ? "word"
                 : st->stop_reason == BN_STOP_EOS || st->stop_reason == BN_STOP_EOT ? "eos"
                                                                                    : "limit");
    if (g->n_probs > 0) {
        bn_jw_key(w, "completion_probabilities");
        write_prob_rows(w, r, r->sent_rows, r->n_prob_rows, true);
    }
    bn_jw_key(w, "timings");
    bn_jw_obj(w);
    bn_jw_key(w, "prompt_n");
    bn_jw_int(w, st->prompt_eval);
    bn_jw_key(w, "prompt_ms");
    bn_jw_num(w, st->prompt_ms);
    bn_jw_key(w, "prompt_per_token_ms");
    bn_jw_num(w, st->prompt_eval ? st->prompt_ms / st->prompt_eval : 0.0);
    bn_jw_key(w, "prompt_per_second");
    bn_jw_num(w, st->prompt_tok_s);
    bn_jw_key(w, "predicted_n");
    bn_jw_int(w, st->gen_tokens);
    bn_jw_key(w, "predicted_ms");
    bn_jw_num(w, st->gen_ms);
    bn_jw_key(w, "predicted_per_token_ms");
    bn_jw_num(w, st->gen_eval ? st->gen_ms / st->gen_eval : 0.0);
    bn_jw_key(w, "predicted_per_second");
    bn_jw_num(w, st->gen_tok_s);
    bn_jw_end(w);
    bn_jw_end(w);
}

/* OpenAI's answer object (buffered), or one stream chunk (text = the piece, finish NULL
 * while running). */
static void write_oai(bn_jw *w, run *r, const char *text, size_t len, const char *finish,
                      const bn_stats *usage, bool chunk, bool role)
{
    bool chat = r->g->dialect == BN_API_OAI_CHAT;
    bn_jw_obj(w);
    write_head(w, r,
               chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion");
    bn_jw_key(w, "choices");
    bn_jw_arr(w);
    bn_jw_obj(w);
    bn_jw_key(w, "index");
    bn_jw_int(w, 0);
    if (chat) {
        bn_jw_key(w, chunk ? "delta" : "message");
        bn_jw_obj(w);
        if (role || !chunk) {
            bn_jw_key(w, "role");
            bn_jw_str(w, "assistant");
        }
        if (text) {
            bn_jw_key(w, "content");
            bn_jw_strn(w, text, len);
        }
        bn_jw_end(w);
    } else {
        bn_jw_key(w, "text");
        bn_jw_strn(w, text ? text : "", text ? len : 0);
    }
    bn_jw_key(w, "logprobs");
    if (r->g->logprobs && r->n_prob_rows > r->sent_rows) {
        if (chat) {
            bn_jw_obj(w);
            bn_jw_key(w, "content");
            write_prob_rows(w, r, r->sent_rows, r->n_prob_rows, false);
            bn_jw_end(w);
        } else {
            write_text_logprobs(w, r, r->sent_rows, r->n_prob_rows);
        }
        r->sent_rows = r->n_prob_rows;
    } else {
        bn_jw_null(w);
    }
    bn_jw_key(w, "finish_reason");
    if (finish)
        bn_jw_str(w, finish);
    else
        bn_jw_null(w);
    bn_jw_end(w);
    bn_jw_end(w);
    if (usage)
        write_usage(w, usage);
    bn_jw_end(w);
}

/* ------------------------------------------------------------------ streaming */
static int send_event(run *r)
{
    if (r->gone || r->ev.oom)
        return -1;
    if (!r->begun) {
        r->begun = true;
        if (r->sink->begin(r->sink->user, 200, "text/event-stream")) {
            r->gone = true;
            return -1;
        }
    }
    if (r->sink->write(r->sink->user, r->ev.data, r->ev.len))
        r->gone = true;
    return r->gone ? -1 : 0;
}

static void event_begin(run *r)
{
    bn_buf_clear(&r->ev);
    bn_buf_puts(&r->ev, "data: ");
}

static int event_end(run *r)
{
    bn_buf_puts(&r->ev, "\n\n");
    return send_event(r);
}

static int stream_piece(run *r, const char *text, size_t len)
{
    event_begin(r);
    bn_jw w = {.out = &r->ev};
    if (r->g->dialect == BN_API_LLAMA) {
        size_t n_prompt = 0;
        bn_session_prompt_ids(r->api->session, &n_prompt);
        bn_jw_obj(&w);
        bn_jw_key(&w, "index");
        bn_jw_int(&w, 0);
        bn_jw_key(&w, "content");
        bn_jw_strn(&w, text, len);
        bn_jw_key(&w, "stop");
        bn_jw_bool(&w, false);
        bn_jw_key(&w, "id_slot");
        bn_jw_int(&w, 0);
        bn_jw_key(&w, "tokens_predicted");
        bn_jw_int(&w, r->n_tokens);
        bn_jw_key(&w, "tokens_evaluated");
        bn_jw_int(&w, (int64_t)n_prompt);
        if (r->g->n_probs > 0) {
            bn_jw_key(&w, "completion_probabilities");
            write_prob_rows(&w, r, r->sent_rows, r->n_prob_rows, true);
            r->sent_rows = r->n_prob_rows;
        }
        bn_jw_end(&w);
    } else {
        bool first = !r->begun && r->g->dialect == BN_API_OAI_CHAT;
        write_oai(&w, r, text, len, NULL, NULL, true, first);
    }
    return event_end(r);
}

static int on_token(void *user, int32_t id, const char *text, size_t len)
{
    run *r = user;
    if (id >= 0)
        r->n_tokens++;
    if (r->g->stream && len > 0 && stream_piece(r, text, len))
        return 1;
    if (id >= 0 && r->req->tick && r->req->tick(r->req->tick_user)) {
        r->stopped_by_tick = true;
        return 1;
    }
    return 0;
}

static int on_prefill(void *user, size_t done, size_t total)
{
    run *r = user;
    if (r->req->prefill(r->req->tick_user, done, total, &r->prefill_why)) {
        r->stopped_by_prefill = true;
        return 1;
    }
    return 0;
}

/* The events after the last piece: llama-server's final object; OpenAI's chunk with the
 * finish reason, the usage chunk when asked, then [DONE]. */
static void stream_end(run *r, const bn_stats *st)
{
    bn_jw w = {.out = &r->ev};
    event_begin(r);
    if (r->g->dialect == BN_API_LLAMA) {
        write_llama(&w, r, "", 0, st);
        event_end(r);
        return;
    }
    bool first = !r->begun && r->g->dialect == BN_API_OAI_CHAT;
    write_oai(&w, r, first ? "" : NULL, 0, finish_reason(st->stop_reason), NULL, true, first);
    if (event_end(r))
        return;
    if (r->g->include_usage) {
        /* OpenAI: a last chunk with empty choices and the usage */
        event_begin(r);
        w = (bn_jw){.out = &r->ev};
        bn_jw_obj(&w);
        write_head(&w, r,
                   r->g->dialect == BN_API_OAI_CHAT ? "chat.completion.chunk" : "text_completion");
        bn_jw_key(&w, "choices");
        bn_jw_arr(&w);
        bn_jw_end(&w);
        write_usage(&w, st);
        bn_jw_end(&w);
        if (event_end(r))
            return;
    }
    bn_buf_clear(&r->ev);
    bn_buf_puts(&r->ev, "data: [DONE]\n\n");
    send_event(r);
}

static void stream_error(run *r, const bn_err *err)
{
    event_begin(r);
    bn_api_error_body(&r->ev, bn_api_status_for(err->code), NULL, err->msg);
    event_end(r);
}

/* ------------------------------------------------------------------ the route */
static void make_id(run *r)
{
    uint64_t x = bn_random_seed();
    snprintf(r->id, sizeof r->id, "%s-%016llx",
             r->g->dialect == BN_API_OAI_CHAT ? "chatcmpl" : "cmpl", (unsigned long long)x);
    r->created = (int64_t)time(NULL);
}

int bn_api_generate(const bn_api *api, const bn_json *body, bn_api_dialect d,
                    const bn_api_request *req, const bn_api_sink *sink)
{
    bn_err err = {0};
    bn_api_gen g;
    if (bn_api_gen_parse(body, d, api->n_predict, &g, &err)) {
        bn_api_gen_free(&g);
        return bn_api_fail(sink, &err);
    }
    run r = {.api = api, .g = &g, .req = req, .sink = sink};
    make_id(&r);
    bn_generate_params p = bn_generate_default();
    p.prompt = g.prompt;
    p.parse_special = true; /* as llama-server and bitnet-run -p tokenize prompts */
    p.prompt_ids = g.prompt_ids;
    p.n_prompt_ids = g.n_prompt_ids;
    p.messages = g.messages;
    p.n_messages = g.n_messages;
    p.n_predict = g.n_predict;
    p.sampling = g.sampling;
    p.stop = g.stop;
    p.n_stop = g.n_stop;
    p.on_token = on_token;
    if (g.n_probs > 0 || g.logprobs) {
        p.n_probs = g.n_probs;
        p.on_probs = on_probs;
    }
    if (req->prefill)
        p.on_prefill = on_prefill;
    p.user = &r;
    bn_stats st;
    int status = 200;
    if (bn_generate(api->session, &p, &st, &err)) {
        if (r.begun)
            stream_error(&r, &err);
        else
            status = bn_api_fail(sink, &err);
        if (r.begun)
            status = 200;
        goto done;
    }
    if (r.gone)
        goto done;
    if (r.stopped_by_prefill) { /* nothing was sent yet: the prompt came first */
        status = bn_api_fail(sink, &r.prefill_why);
        goto done;
    }
    if (g.stream) {
        stream_end(&r, &st);
        goto done;
    }
    size_t len = 0;
    const char *text = bn_session_output_text(api->session, &len);
    bn_buf out = {0};
    bn_jw w = {.out = &out};
    if (d == BN_API_LLAMA)
        write_llama(&w, &r, text, len, &st);
    else
        write_oai(&w, &r, text, len, finish_reason(st.stop_reason), &st, false, true);
    status = bn_api_send_json(sink, 200, &out);
    bn_buf_free(&out);
done:
    bn_buf_free(&r.ev);
    bn_buf_free(&r.probs);
    bn_api_gen_free(&g);
    return status;
}
