/* bn_generate: prompt -> ids -> prefill -> (sample, stream text, check stops, decode)*.
 *
 * Output text goes through two holding stages before the callback sees it:
 *   1. the streaming detokenizer holds the bytes of a UTF-8 character split across tokens;
 *   2. the stop-string matcher holds the longest tail that is a prefix of a stop string, so a
 *      stop string spread over several tokens is caught and never shown.
 * What is passed on is final: it is also what bn_session_output_text returns. */
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

typedef struct gen {
    bn_session *s;
    const bn_generate_params *p;
    bn_buf held; /* decoded text not yet passed on (possible stop-string prefix) */
    bn_stats *st;
    bn_err *err;
    bn_lm_request lm_req; /* what the sampler can draw next (screened LM head) */
} gen;

/* Asks the forward pass for the logits the sampler's next draw can use: the screened LM head
 * keeps the sampler's top-k (1 when greedy) and every token a penalty changes exactly, so the
 * sampler sees today's logits for every token it can draw. The full head when the request
 * needs every logit: a logits callback (e.g. --dump-logits), token probabilities (on_probs:
 * a softmax over the whole vocabulary), or top-k off. */
static void ask_lm_head(gen *g, bn_sampler *smp)
{
    bn_context *ctx = g->s->ctx;
    g->lm_req.keep = bn_sampler_keep(smp);
    if (g->p->on_logits || g->p->on_probs || g->lm_req.keep == 0) {
        bn_context_set_lm_request(ctx, NULL);
        return;
    }
    g->lm_req.must = bn_sampler_penalized(smp, &g->lm_req.n_must);
    bn_context_set_lm_request(ctx, &g->lm_req);
}

/* After a forward pass that produced logits: the LM-head counters of bn_stats. */
static void count_lm_head(gen *g)
{
    g->st->lm_evals++;
    g->st->lm_screened += (uint32_t)bn_context_lm_screened(g->s->ctx);
    g->st->lm_rows += bn_context_lm_rows(g->s->ctx);
}

/* Length of the longest tail of text that is a proper prefix of a stop string. */
static size_t stop_prefix_tail(const gen *g, const char *text, size_t len)
{
    size_t best = 0;
    for (size_t i = 0; i < g->p->n_stop; i++) {
        const char *stop = g->p->stop[i];
        size_t sl = stop ? strlen(stop) : 0;
        for (size_t k = sl > 0 ? sl - 1 : 0; k > best; k--)
            if (k <= len && memcmp(text + len - k, stop, k) == 0) {
                best = k;
                break;
            }
    }
    return best;
}

/* Earliest occurrence of any stop string in text: its offset (and *which), or len. */
static size_t find_stop(const gen *g, const char *text, size_t len, int *which)
{
    size_t first = len;
    for (size_t i = 0; i < g->p->n_stop; i++) {
        const char *stop = g->p->stop[i];
        size_t sl = stop ? strlen(stop) : 0;
        if (sl == 0 || sl > len)
            continue;
        const char *hit = memmem(text, len, stop, sl);
        if (hit && (size_t)(hit - text) < first) {
            first = (size_t)(hit - text);
            *which = (int)i;
        }
    }
    return first;
}

/* Appends decoded bytes, passes on what is final. id = the token (or -1 at the end: flush).
 * Returns -1 on error, 1 when generation must stop (callback or stop string), else 0. */
static int emit(gen *g, int32_t id, const char *bytes, size_t n)
{
    if (bn_buf_add(&g->held, bytes, n, g->err))
        return -1;
    const char *t = g->held.data;
    size_t len = g->held.len, out = len;
    int which = -1, stopped = 0;
    size_t at = find_stop(g, t, len, &which);
    if (at < len) {
        out = at;
        stopped = 1;
        g->st->stop_reason = BN_STOP_STRING;
        g->st->stop_index = which;
    } else if (id >= 0) {
        out = len - stop_prefix_tail(g, t, len);
    }
    if (bn_buf_add(&g->s->text, t, out, g->err))
        return -1;
    int rc = 0;
    if (g->p->on_token && (id >= 0 || out > 0))
        rc = g->p->on_token(g->p->user, id, t, out);
    size_t keep = stopped ? 0 : len - out;
    memmove(g->held.data, t + out, keep);
    g->held.len = keep;
    g->held.data[keep] = 0;
    if (stopped)
        return 1;
    if (rc) {
        g->st->stop_reason = BN_STOP_CALLBACK;
        return 1;
    }
    return 0;
}

typedef struct chat_tok {
    bn_session *s;
    bn_err *err;
} chat_tok;

static int chat_has_token(void *user, const char *name, size_t len)
{
    const chat_tok *c = user;
    return bn_tokenizer_find(c->s->e->tok, name, len) >= 0;
}

/* Chat segments: text tokenized as plain text, specials looked up by name. */
static int chat_emit(void *user, const char *text, size_t len, int special)
{
    chat_tok *c = user;
    const bn_engine *e = c->s->e;
    if (special) {
        int32_t id = bn_tokenizer_find(e->tok, text, len);
        if (id < 0)
            return bn_fail(c->err, BN_E_INPUT,
                           "the vocabulary has no %.*s token for the chat template", (int)len,
                           text);
        return bn_idvec_push(&c->s->prompt, id, c->err);
    }
    int32_t *ids = NULL;
    size_t n = 0;
    if (bn_engine_tokenize(e, text, len, false, false, &ids, &n, c->err))
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = bn_idvec_push(&c->s->prompt, ids[i], c->err);
    free(ids);
    return rc;
}

/* Fills s->prompt from whichever prompt form p carries. */
static int build_prompt(bn_session *s, const bn_generate_params *p, bn_err *err)
{
    const bn_engine *e = s->e;
    int n_src = (p->prompt != NULL) + (p->prompt_ids != NULL) + (p->messages != NULL);
    if (n_src != 1)
        return bn_fail(err, BN_E_INPUT,
                       "give exactly one of: prompt text, prompt ids, chat messages");
    bool bos = p->add_bos && !p->append && bn_tokenizer_add_bos(e->tok);
    if (p->prompt_ids) {
        for (size_t i = 0; i < p->n_prompt_ids; i++) {
            int32_t id = p->prompt_ids[i];
            if (id < 0 || (uint32_t)id >= s->n_vocab)
                return bn_fail(err, BN_E_INPUT,
                               "prompt token %zu: id %d out of range (vocabulary of %u)", i, id,
                               s->n_vocab);
            if (bn_idvec_push(&s->prompt, id, err))
                return -1;
        }
        return 0;
    }
    if (bos && bn_idvec_push(&s->prompt, bn_tokenizer_bos(e->tok), err))
        return -1;
    int rc = 0;
    if (p->messages) {
        chat_tok c = {s, err};
        rc = bn_chat_render_with(e->chat, p->messages, p->n_messages, chat_has_token, chat_emit, &c,
                                 err)
                 ? -1
                 : 0;
    } else {
        int32_t *ids = NULL;
        size_t n = 0;
        if (bn_engine_tokenize(e, p->prompt, strlen(p->prompt), false, p->parse_special, &ids, &n,
                               err))
            return -1;
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = bn_idvec_push(&s->prompt, ids[i], err);
        free(ids);
    }
    /* llama.cpp tokenizes a prompt (text, or the rendered chat) with add_special = the file's
       add_bos_token (llama-server, llama-tokenize; -cnv turns with false), which also appends
       EOS when add_eos_token is true. llama-cli itself aborts on such a file
       (GGML_ASSERT(!llama_add_eos_token(model)) in main.cpp); README "Tokenizer". */
    if (rc == 0 && bos && bn_tokenizer_add_eos(e->tok) && bn_tokenizer_eos(e->tok) >= 0)
        rc = bn_idvec_push(&s->prompt, bn_tokenizer_eos(e->tok), err);
    return rc;
}

/* Evaluates ev[0..n) at the current position; leaves the last row's logits in *last. Returns
 * 1 when on_prefill asked to stop (nothing of ev stays in the KV cache). */
static int prefill(bn_session *s, const bn_generate_params *p, const int32_t *ev, size_t n,
                   const float **last, bn_err *err)
{
    uint32_t pos = bn_context_pos(s->ctx);
    /* chunks: whole batches, or BN_PREFILL_CHUNK tokens between progress calls, or
     * logit_rows rows when every row is wanted (the forward pass gives the same logits
     * however the prompt is cut) */
    size_t chunk = n;
    if (p->on_prefill)
        chunk = BN_PREFILL_CHUNK;
    if (p->on_logits && chunk > s->logit_rows)
        chunk = s->logit_rows;
    for (size_t i = 0; i < n;) {
        if (p->on_prefill && p->on_prefill(p->user, i, n)) {
            bn_context_set_pos(s->ctx, pos);
            return 1;
        }
        uint32_t m = (uint32_t)(n - i < chunk ? n - i : chunk);
        uint32_t rows = p->on_logits ? m : 1;
        if (bn_forward(s->ctx, ev + i, m, s->logits, rows, err)) {
            bn_context_set_pos(s->ctx, pos); /* no half-evaluated prompt stays */
            return -1;
        }
        if (p->on_logits)
            for (uint32_t r = 0; r < m; r++)
                if (p->on_logits(p->user, s->logits + (size_t)r * s->n_vocab, s->n_vocab)) {
                    bn_context_set_pos(s->ctx, pos);
                    return bn_fail(err, BN_E_IO, "logits callback failed");
                }
        *last = s->logits + (size_t)(rows - 1) * s->n_vocab;
        i += m;
    }
    if (p->on_prefill && p->on_prefill(p->user, n, n)) {
        bn_context_set_pos(s->ctx, pos);
        return 1;
    }
    memcpy(s->hist + pos, ev, n * sizeof *ev);
    return 0;
}

/* The evaluation list of this call: [pending] + prompt when appending; otherwise the prompt
 * minus the prefix already in the KV cache (at most all but its last token, whose logits are
 * needed). Sets the context position accordingly. */
static int plan_eval(bn_session *s, const bn_generate_params *p, bn_idvec *ev, bn_err *err)
{
    if (p->append) {
        if (s->pending >= 0 && bn_idvec_push(ev, s->pending, err))
            return -1;
    } else {
        size_t held = bn_context_pos(s->ctx), reuse = 0;
        if (!p->on_logits) {
            while (reuse < held && reuse < s->prompt.n && s->hist[reuse] == s->prompt.v[reuse])
                reuse++;
            if (reuse == s->prompt.n && reuse > 0)
                reuse--;
        }
        bn_context_set_pos(s->ctx, (uint32_t)reuse);
        s->pending = -1;
        for (size_t i = reuse; i < s->prompt.n; i++)
            if (bn_idvec_push(ev, s->prompt.v[i], err))
                return -1;
        return 0;
    }
    for (size_t i = 0; i < s->prompt.n; i++)
        if (bn_idvec_push(ev, s->prompt.v[i], err))
            return -1;
    return 0;
}

/* The chosen token's probability and the top n_probs, for on_probs. */
static int report_probs(gen *g, const bn_sampler *smp, int32_t tok)
{
    bn_token_prob top[BN_MAX_PROBS], chosen;
    size_t n = (size_t)g->p->n_probs;
    bn_sampler_probs(smp, tok, &chosen, top, n);
    if (g->p->on_probs(g->p->user, chosen, top, n < g->s->n_vocab ? n : g->s->n_vocab))
        return bn_fail(g->err, BN_E_INPUT, "probabilities callback failed");
    return 0;
}

/* The sample -> stream -> decode loop after the prefill. */
static int decode_loop(gen *g, bn_sampler *smp, const float *logits, double t_start)
{
    bn_session *s = g->s;
    const bn_generate_params *p = g->p;
    bn_stats *st = g->st;
    bn_detokenizer dt;
    if (bn_detok_init(&dt, s->e->tok, false, g->err))
        return -1;
    int rc = 0;
    double decode_ms = 0.0;
    for (;;) {
        if (p->n_predict >= 0 && s->out.n >= (size_t)p->n_predict) {
            st->stop_reason = BN_STOP_LENGTH;
            break;
        }
        int32_t tok = bn_sampler_sample(smp, logits);
        if (s->out.n == 0)
            st->ttft_ms = bn_now_ms() - t_start;
        if (p->on_probs && (rc = report_probs(g, smp, tok)))
            break;
        if ((rc = bn_idvec_push(&s->out, tok, g->err)))
            break;
        bn_sampler_accept(smp, tok);
        s->pending = tok;
        if (bn_tokenizer_is_eog(s->e->tok, tok)) {
            st->stop_reason = tok == bn_tokenizer_eot(s->e->tok) ? BN_STOP_EOT : BN_STOP_EOS;
            if (p->on_token)
                p->on_token(p->user, tok, "", 0);
            break;
        }
        size_t n = 0;
        const char *bytes = bn_detok_push(&dt, tok, &n);
        int e = emit(g, tok, bytes, n);
        if (e) {
            rc = e < 0 ? -1 : 0;
            break;
        }
        if (p->n_predict >= 0 && s->out.n >= (size_t)p->n_predict) {
            st->stop_reason = BN_STOP_LENGTH;
            break;
        }
        uint32_t pos = bn_context_pos(s->ctx);
        if (pos >= s->n_ctx) {
            st->stop_reason = BN_STOP_CONTEXT_FULL;
            break;
        }
        ask_lm_head(g, smp);
        double t0 = bn_now_ms();
        if ((rc = bn_forward(s->ctx, &tok, 1, s->logits, 1, g->err)))
            break;
        decode_ms += bn_now_ms() - t0;
        count_lm_head(g);
        s->hist[pos] = tok;
        s->pending = -1;
        st->gen_eval++;
        if (p->on_logits && p->on_logits(p->user, s->logits, s->n_vocab)) {
            rc = bn_fail(g->err, BN_E_IO, "logits callback failed");
            break;
        }
        logits = s->logits;
    }
    /* the end: pass on the held text unless a stop string or the callback ended it */
    if (rc == 0 && st->stop_reason != BN_STOP_STRING && st->stop_reason != BN_STOP_CALLBACK) {
        size_t n = 0;
        const char *bytes = bn_detok_flush(&dt, &n);
        bn_stop_reason before = st->stop_reason;
        if (emit(g, -1, bytes, n) < 0)
            rc = -1;
        else if (st->stop_reason == BN_STOP_CALLBACK) /* the run had already ended */
            st->stop_reason = before;
    }
    bn_detok_free(&dt);
    st->gen_tokens = (uint32_t)s->out.n;
    st->gen_ms = decode_ms;
    st->gen_tok_s = decode_ms > 0 ? st->gen_eval / (decode_ms / 1e3) : 0.0;
    return rc ? -1 : 0;
}

int bn_generate(bn_session *s, const bn_generate_params *p, bn_stats *stats, bn_err *err)
{
    double t_start = bn_now_ms();
    bn_stats st;
    memset(&st, 0, sizeof st);
    st.stop_index = -1;
    st.load_ms = s->e->load_ms;
    s->prompt.n = 0;
    s->out.n = 0;
    bn_buf_clear(&s->text);
    if (bn_generate_params_check(p, err) || build_prompt(s, p, err))
        return -1;

    bn_idvec ev = {0};
    bn_sampler *smp = NULL;
    gen g = {.s = s, .p = p, .st = &st, .err = err};
    int rc = -1;
    if (plan_eval(s, p, &ev, err))
        goto done;
    uint32_t base = bn_context_pos(s->ctx);
    if (ev.n == 0) {
        bn_fail(err, BN_E_INPUT, "empty prompt");
        goto done;
    }
    if (base + ev.n > s->n_ctx) {
        if (p->append)
            bn_fail(err, BN_E_CONTEXT_FULL,
                    "the conversation needs %zu positions but the context holds %u", base + ev.n,
                    s->n_ctx);
        else
            bn_fail(err, BN_E_CONTEXT_FULL, "prompt is %zu tokens but the context holds only %u",
                    s->prompt.n, s->n_ctx);
        goto done;
    }
    if (!(smp = bn_sampler_create(&p->sampling, s->n_vocab, s->n_ctx, err)))
        goto done;

    /* the penalty window sees the whole conversation, prompt included (as llama-cli); accepted
     * before the prefill so that the LM head knows which tokens the first draw penalizes */
    for (uint32_t i = 0; i < base; i++)
        bn_sampler_accept(smp, s->hist[i]);
    for (size_t i = 0; i < ev.n; i++)
        bn_sampler_accept(smp, ev.v[i]);
    ask_lm_head(&g, smp);
    double t0 = bn_now_ms();
    const float *last = NULL;
    int pf = prefill(s, p, ev.v, ev.n, &last, err);
    if (pf == 0 && !p->on_logits)
        count_lm_head(&g);
    st.prompt_ms = bn_now_ms() - t0;
    if (pf < 0)
        goto done;
    if (pf > 0) { /* stopped by on_prefill: nothing sampled, nothing kept */
        st.prompt_tokens = (uint32_t)s->prompt.n;
        st.stop_reason = BN_STOP_CALLBACK;
        rc = 0;
        goto done;
    }
    st.prompt_tokens = (uint32_t)s->prompt.n;
    st.prompt_eval = (uint32_t)ev.n;
    st.prompt_tok_s = st.prompt_ms > 0 ? ev.n / (st.prompt_ms / 1e3) : 0.0;
    rc = decode_loop(&g, smp, last, t_start);
done:
    bn_context_set_lm_request(s->ctx, NULL); /* g.lm_req ends here */
    bn_sampler_free(smp);
    bn_idvec_free(&ev);
    bn_buf_free(&g.held);
    if (stats)
        *stats = st;
    return rc;
}

const char *bn_stop_reason_name(bn_stop_reason r)
{
    switch (r) {
    case BN_STOP_EOS: return "eos";
    case BN_STOP_EOT: return "eot";
    case BN_STOP_LENGTH: return "length";
    case BN_STOP_STRING: return "stop_string";
    case BN_STOP_CONTEXT_FULL: return "context_full";
    case BN_STOP_CALLBACK: return "callback";
    case BN_STOP_NONE: break;
    }
    return "none";
}

bn_generate_params bn_generate_default(void)
{
    bn_generate_params p;
    memset(&p, 0, sizeof p);
    p.add_bos = true;
    p.n_predict = -1;
    p.sampling = bn_sampling_default();
    return p;
}
