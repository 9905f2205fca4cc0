/* Engine API (bitnet.h) on the project's own synthetic model: generation against a hand-driven
 * forward loop, stop conditions (callback, stop strings across token boundaries, context
 * full, n_predict), KV-cache reuse and -cnv appending (same tokens as evaluating everything
 * afresh), vocab-only files, thread-count independence. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bitnet.h"
#include "forward.h"
#include "gguf_writer.h"
#include "model.h"
#include "synthetic_model.h"
#include "testdata.h"
#include "testutil.h"

static char *model_path, *vocab_path;

static bn_engine *open_engine(void)
{
    bn_err err = {0};
    bn_engine *e = bn_engine_open(model_path, NULL, &err);
    if (!e)
        fail_msg("bn_engine_open: %s", err.msg);
    return e;
}

static bn_session *new_session(bn_engine *e, uint32_t n_ctx, int threads)
{
    bn_err err = {0};
    bn_session_params sp = {n_ctx, threads, 0};
    bn_session *s = bn_session_create(e, &sp, &err);
    if (!s)
        fail_msg("bn_session_create: %s", err.msg);
    return s;
}

/* A copy of SRC: with its tensors or vocab-only (tokenizer keys, no tensors); with the u32 key
 * SET_KEY set to SET_VAL when SET_KEY is not NULL. */
static int copy_gguf(const char *src, const char *dst, int tensors, const char *set_key,
                     uint32_t set_val)
{
    bn_err err = {0};
    bn_gguf *g = bn_gguf_open(src, &err);
    if (!g)
        return -1;
    bn_gguf_writer *w = bn_gguf_writer_new();
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const char *k = g->kv[i].key;
        if (set_key && strcmp(k, set_key) == 0)
            continue;
        if (tensors || strncmp(k, "tokenizer.", 10) == 0 || strcmp(k, "general.architecture") == 0)
            bn_gguf_writer_add_kv(w, k, &g->kv[i]);
    }
    if (set_key)
        bn_gguf_writer_add_u32(w, set_key, set_val);
    for (uint64_t i = 0; tensors && i < g->n_tensors; i++)
        bn_gguf_writer_add_tensor(w, g->tensors[i].name, g->tensors[i].type, g->tensors[i].n_dims,
                                  g->tensors[i].ne);
    FILE *f = fopen(dst, "wb");
    int rc = !f || bn_gguf_writer_begin(w, f, &err);
    for (uint64_t i = 0; !rc && tensors && i < g->n_tensors; i++)
        rc = bn_gguf_writer_data(w, g->tensors[i].data, g->tensors[i].nbytes, &err);
    rc = rc || bn_gguf_writer_finish(w, &err);
    if (f)
        rc |= fclose(f) != 0;
    bn_gguf_writer_free(w);
    bn_gguf_close(g);
    if (rc)
        print_error("copy_gguf: %s\n", err.msg);
    return rc ? -1 : 0;
}

static int setup(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_synth_params p;
    if (bn_synth_preset("tiny", &p, &err))
        return -1;
    model_path = bn_test_tmpfile(".gguf");
    vocab_path = bn_test_tmpfile("-vocab.gguf");
    if (bn_synth_write(&p, model_path, &err)) {
        print_error("bn_synth_write: %s\n", err.msg);
        return -1;
    }
    return copy_gguf(model_path, vocab_path, 0, NULL, 0);
}

static int teardown(void **state)
{
    (void)state;
    unlink(model_path);
    unlink(vocab_path);
    free(model_path);
    free(vocab_path);
    return 0;
}

static const int32_t PROMPT[6] = {1, 60, 7, 200, 33, 9};

static bn_generate_params greedy(int32_t n)
{
    bn_generate_params g = bn_generate_default();
    g.prompt_ids = PROMPT;
    g.n_prompt_ids = 6;
    g.n_predict = n;
    g.sampling.temp = 0.0f;
    return g;
}

/* Greedy generation through the engine equals a loop written directly on bn_forward. */
static void test_greedy_matches_forward_loop(void **state)
{
    (void)state;
    enum {
        N = 12
    };
    bn_err err = {0};
    bn_model *m = bn_test_load_model(model_path);
    bn_test_ctx t = bn_test_context(m, 64, 8, 1);
    bn_context *c = t.c;
    uint32_t V = m->hp.n_vocab;
    float *l = malloc(V * sizeof *l);
    int32_t want[N];
    assert_int_equal(bn_forward(c, PROMPT, 6, l, 1, &err), 0);
    for (int i = 0; i < N; i++) {
        want[i] = (int32_t)bn_test_argmax(l, V);
        if (i + 1 < N)
            assert_int_equal(bn_forward(c, &want[i], 1, l, 1, &err), 0);
    }
    free(l);
    bn_test_context_free(&t);
    bn_model_free(m);

    bn_engine *e = open_engine();
    bn_engine_info info;
    bn_engine_get_info(e, &info);
    bn_session *s = new_session(e, 64, 1);
    bn_generate_params g = greedy(N);
    bn_stats st;
    assert_int_equal(bn_generate(s, &g, &st, &err), 0);
    size_t n = 0;
    const int32_t *got = bn_session_output_ids(s, &n);
    int eog_at = -1; /* a synthetic model may pick an end token: the engine then stops */
    for (int i = 0; i < N && eog_at < 0; i++)
        if (want[i] == info.eos || want[i] == info.eot)
            eog_at = i;
    assert_int_equal(n, eog_at < 0 ? N : eog_at + 1);
    assert_memory_equal(got, want, n * sizeof *got);
    if (eog_at < 0)
        assert_int_equal(st.stop_reason, BN_STOP_LENGTH);
    else
        assert_int_equal(st.stop_reason, want[eog_at] == info.eot ? BN_STOP_EOT : BN_STOP_EOS);
    assert_int_equal(st.prompt_tokens, 6);
    assert_int_equal(st.gen_tokens, n);
    assert_int_equal(st.gen_eval, n - 1);
    bn_session_free(s);
    bn_engine_free(e);
}

typedef struct collect {
    char text[8192];
    size_t len;
    int calls, stop_after;
    int32_t last_id;
} collect;

static int collect_cb(void *user, int32_t id, const char *text, size_t len)
{
    collect *c = user;
    assert_true(c->len + len < sizeof c->text);
    memcpy(c->text + c->len, text, len);
    c->len += len;
    c->text[c->len] = 0;
    c->last_id = id;
    return ++c->calls == c->stop_after;
}

static void test_callback_stops(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_engine *e = open_engine();
    bn_session *s = new_session(e, 64, 1);
    collect c = {.stop_after = 3};
    bn_generate_params g = greedy(20);
    g.on_token = collect_cb;
    g.user = &c;
    bn_stats st;
    assert_int_equal(bn_generate(s, &g, &st, &err), 0);
    size_t n = 0;
    bn_session_output_ids(s, &n);
    /* this prompt's greedy run is longer than 3 tokens (test_greedy_matches_forward_loop) */
    assert_int_equal(st.stop_reason, BN_STOP_CALLBACK);
    assert_int_equal(n, 3);
    assert_int_equal(c.calls, 3); /* no call after the callback said stop */
    bn_session_free(s);
    bn_engine_free(e);
}

/* Byte offset where the text of token j starts (decoding ids[0..j) as a whole). */
static size_t text_offset(bn_engine *e, const int32_t *ids, size_t j)
{
    bn_err err = {0};
    size_t len = 0;
    char *t = bn_engine_detokenize(e, ids, j, false, &len, &err);
    assert_non_null(t);
    free(t);
    return len;
}

/* Where a stop string of STOP_LEN bytes can be taken from `full` so that a token boundary
 * falls after its first k bytes at its first occurrence: the string's offset, or -1. offs[j] =
 * byte offset of token j's text. */
enum {
    STOP_LEN = 5
};
static long stop_split_at(const char *full, size_t tlen, const size_t *offs, size_t n, size_t k)
{
    for (size_t j = 1; j < n; j++) {
        size_t b = offs[j];
        if (b < k || b - k + STOP_LEN > tlen)
            continue;
        const char *cand = full + b - k;
        if (memchr(cand, 0, STOP_LEN))
            continue; /* not usable as a C string */
        if (memmem(full, tlen, cand, STOP_LEN) == cand)
            return (long)(b - k);
    }
    return -1;
}

/* Generates again with stop string full[at, at + len) (and one that never occurs): the output
 * ends right before it, and the callback saw exactly the output. */
static void expect_stop(bn_session *s, bn_generate_params *g, const char *full, size_t at,
                        size_t len)
{
    bn_err err = {0};
    char stop[32];
    assert_true(len < sizeof stop);
    memcpy(stop, full + at, len);
    stop[len] = 0;
    collect c = {.stop_after = -1};
    const char *stops[2] = {"\x01never\x02", stop};
    g->stop = stops;
    g->n_stop = 2;
    g->on_token = collect_cb;
    g->user = &c;
    bn_stats st;
    assert_int_equal(bn_generate(s, g, &st, &err), 0);
    assert_int_equal(st.stop_reason, BN_STOP_STRING);
    assert_int_equal(st.stop_index, 1);
    size_t n = 0;
    const char *text = bn_session_output_text(s, &n);
    assert_int_equal(n, at);
    assert_memory_equal(text, full, at);
    /* what the callback saw is exactly the output text: the stop string never leaked */
    assert_int_equal(c.len, at);
    assert_memory_equal(c.text, full, at);
    g->stop = NULL;
    g->n_stop = 0;
}

/* A stop string split across tokens after each of its bytes (1|4, 2|3, 3|2, 4|1), and one made
 * of two whole tokens: the output ends right before its first occurrence, and the callback
 * never sees any of it. */
static void test_stop_string_across_tokens(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_engine *e = open_engine();
    bn_session *s = new_session(e, 128, 1);
    bn_generate_params g = greedy(60);
    g.sampling.temp = 0.9f; /* varied text, still deterministic */
    g.sampling.seed = 3;
    assert_int_equal(bn_generate(s, &g, NULL, &err), 0);
    size_t n = 0, tlen = 0;
    const int32_t *ids0 = bn_session_output_ids(s, &n);
    int32_t *ids = malloc(n * sizeof *ids);
    memcpy(ids, ids0, n * sizeof *ids);
    const char *t0 = bn_session_output_text(s, &tlen);
    char *full = malloc(tlen + 1);
    memcpy(full, t0, tlen + 1);
    size_t *offs = malloc(n * sizeof *offs);
    for (size_t j = 0; j < n; j++)
        offs[j] = text_offset(e, ids, j);

    for (size_t k = 1; k < STOP_LEN; k++) {
        long at = stop_split_at(full, tlen, offs, n, k);
        if (at < 0)
            fail_msg("no token boundary after byte %zu of a %d-byte string in this output: "
                     "change the seed",
                     k, STOP_LEN);
        expect_stop(s, &g, full, (size_t)at, STOP_LEN);
    }
    /* a stop string that is exactly the text of two whole tokens: the held text becomes
     * exactly the stop string when the second one arrives */
    long at = -1;
    size_t slen = 0;
    for (size_t j = 1; j + 1 < n && at < 0; j++) {
        size_t a0 = offs[j - 1], a2 = offs[j + 1];
        if (offs[j] == a0 || a2 == offs[j] || a2 - a0 > 16 || memchr(full + a0, 0, a2 - a0) ||
            memmem(full, tlen, full + a0, a2 - a0) != full + a0)
            continue;
        at = (long)a0;
        slen = a2 - a0;
    }
    if (at < 0)
        fail_msg("no two tokens whose text occurs first where they are: change the seed");
    expect_stop(s, &g, full, (size_t)at, slen);
    free(offs);
    free(ids);
    free(full);
    bn_session_free(s);
    bn_engine_free(e);
}

static void test_context_full_and_limits(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_engine *e = open_engine();
    /* 6 prompt tokens in 9 positions: 3 tokens are fed back, the 4th sampled has no room */
    bn_session *s = new_session(e, 9, 1);
    bn_generate_params g = greedy(-1);
    g.sampling.temp = 1.0f;
    g.sampling.top_k = 5;
    g.sampling.seed = 1;
    bn_stats st;
    assert_int_equal(bn_generate(s, &g, &st, &err), 0);
    /* seed 1 samples no end-of-generation token here: the context is what ends the run */
    assert_int_equal(st.stop_reason, BN_STOP_CONTEXT_FULL);
    assert_int_equal(st.gen_tokens, 4);
    assert_int_equal(st.gen_eval, 3);
    /* n_predict 0: the prompt is evaluated, nothing sampled */
    g.n_predict = 0;
    assert_int_equal(bn_generate(s, &g, &st, &err), 0);
    assert_int_equal(st.stop_reason, BN_STOP_LENGTH);
    assert_int_equal(st.gen_tokens, 0);
    bn_session_free(s);

    /* a prompt longer than the context is refused with both lengths in the message */
    s = new_session(e, 4, 1);
    g = greedy(4);
    assert_int_equal(bn_generate(s, &g, &st, &err), -1);
    assert_non_null(strstr(err.msg, "prompt is 6 tokens"));
    assert_non_null(strstr(err.msg, "holds only 4"));
    assert_int_equal(err.code, BN_E_CONTEXT_FULL);
    /* bad requests */
    g.prompt = "x";
    assert_int_equal(bn_generate(s, &g, &st, &err), -1);
    assert_non_null(strstr(err.msg, "exactly one"));
    assert_int_equal(err.code, BN_E_INPUT);
    g = greedy(4);
    const int32_t bad[1] = {100000};
    g.prompt_ids = bad;
    g.n_prompt_ids = 1;
    assert_int_equal(bn_generate(s, &g, &st, &err), -1);
    assert_non_null(strstr(err.msg, "out of range"));
    assert_int_equal(err.code, BN_E_INPUT);
    bn_session_free(s);
    bn_engine_free(e);
}

/* A second request sharing the prompt reuses the KV cache and gives the same tokens. */
static void test_prefix_reuse_is_exact(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_engine *e = open_engine();
    bn_session *s = new_session(e, 64, 1);
    bn_generate_params g = greedy(8);
    bn_stats st;
    assert_int_equal(bn_generate(s, &g, &st, &err), 0);
    assert_int_equal(st.prompt_eval, 6);
    size_t n1 = 0, n2 = 0;
    int32_t first[8];
    const int32_t *ids = bn_session_output_ids(s, &n1);
    assert_true(n1 <= 8);
    memcpy(first, ids, n1 * sizeof *first);
    assert_int_equal(bn_generate(s, &g, &st, &err), 0);
    assert_int_equal(st.prompt_eval, 1); /* only the last prompt token is evaluated again */
    const int32_t *second = bn_session_output_ids(s, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(first, second, n1 * sizeof *first);
    bn_session_free(s);
    bn_engine_free(e);
}

/* -cnv: turns appended to the session evaluate only their own tokens (plus the last sampled
 * token of the previous turn), and continue exactly like one fresh evaluation of the whole
 * conversation. */
static void test_append_turns(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_engine *e = open_engine();
    bn_session *s = new_session(e, 256, 1);
    bn_stats st;
    bn_chat_msg sys = {"system", "be kind"};
    bn_generate_params g = greedy(0);
    g.prompt_ids = NULL;
    g.n_prompt_ids = 0;
    g.messages = &sys;
    g.n_messages = 1;
    assert_int_equal(bn_generate(s, &g, &st, &err), 0);
    size_t n_sys = 0;
    const int32_t *p = bn_session_prompt_ids(s, &n_sys);
    int32_t all[256];
    size_t n_all = 0;
    memcpy(all, p, n_sys * sizeof *p);
    n_all = n_sys;

    bn_chat_msg u1 = {"user", "hello there"};
    g = greedy(4);
    g.prompt_ids = NULL;
    g.n_prompt_ids = 0;
    g.messages = &u1;
    g.n_messages = 1;
    g.append = true;
    assert_int_equal(bn_generate(s, &g, &st, &err), 0);
    size_t n = 0;
    p = bn_session_prompt_ids(s, &n);
    assert_int_equal(st.prompt_eval, n); /* nothing pending after a 0-token turn */
    memcpy(all + n_all, p, n * sizeof *p);
    n_all += n;
    p = bn_session_output_ids(s, &n);
    memcpy(all + n_all, p, n * sizeof *p);
    n_all += n;
    int eog = st.stop_reason == BN_STOP_EOS || st.stop_reason == BN_STOP_EOT;

    bn_chat_msg u2 = {"user", "more"};
    g.messages = &u2;
    assert_int_equal(bn_generate(s, &g, &st, &err), 0);
    p = bn_session_prompt_ids(s, &n);
    assert_int_equal(st.prompt_eval, n + 1); /* the previous turn's last token first */
    (void)eog;
    memcpy(all + n_all, p, n * sizeof *p);
    n_all += n;
    int32_t turn2[4];
    size_t n_turn2 = 0;
    p = bn_session_output_ids(s, &n_turn2);
    memcpy(turn2, p, n_turn2 * sizeof *turn2);

    /* the same conversation as one prompt in a fresh session */
    bn_session *f = new_session(e, 256, 1);
    g = greedy(4);
    g.prompt_ids = all;
    g.n_prompt_ids = n_all;
    assert_int_equal(bn_generate(f, &g, &st, &err), 0);
    p = bn_session_output_ids(f, &n);
    assert_int_equal(n, n_turn2);
    assert_memory_equal(p, turn2, n_turn2 * sizeof *turn2);
    bn_session_free(f);
    bn_session_free(s);
    bn_engine_free(e);
}

static void test_threads_do_not_change_tokens(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_engine *e = open_engine();
    int32_t out[2][24];
    size_t n[2];
    for (int t = 0; t < 2; t++) {
        bn_session *s = new_session(e, 64, t + 1);
        bn_generate_params g = greedy(24);
        g.sampling = bn_sampling_default();
        g.sampling.seed = 7;
        assert_int_equal(bn_generate(s, &g, NULL, &err), 0);
        const int32_t *ids = bn_session_output_ids(s, &n[t]);
        memcpy(out[t], ids, n[t] * sizeof(int32_t));
        bn_session_free(s);
    }
    assert_int_equal(n[0], n[1]);
    assert_memory_equal(out[0], out[1], n[0] * sizeof(int32_t));
    bn_engine_free(e);
}

static void test_text_prompt_and_tokenize(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_engine *e = open_engine();
    bn_engine_info info;
    bn_engine_get_info(e, &info);
    assert_true(info.has_weights);
    assert_int_equal(info.n_vocab, 384);
    assert_int_equal(info.n_layer, 2);
    int32_t *ids = NULL;
    size_t n = 0, len = 0;
    const char *text = "the cat sat on the mat";
    assert_int_equal(bn_engine_tokenize(e, text, strlen(text), true, false, &ids, &n, &err), 0);
    assert_int_equal(ids[0], info.bos);
    char *back = bn_engine_detokenize(e, ids + 1, n - 1, false, &len, &err);
    assert_string_equal(back, text);
    free(back);
    /* a text prompt = BOS + its tokens */
    bn_session *s = new_session(e, 64, 1);
    bn_generate_params g = greedy(2);
    g.prompt_ids = NULL;
    g.n_prompt_ids = 0;
    g.prompt = text;
    assert_int_equal(bn_generate(s, &g, NULL, &err), 0);
    size_t np = 0;
    const int32_t *p = bn_session_prompt_ids(s, &np);
    assert_int_equal(np, n);
    assert_memory_equal(p, ids, n * sizeof *ids);
    g.add_bos = false;
    assert_int_equal(bn_generate(s, &g, NULL, &err), 0);
    p = bn_session_prompt_ids(s, &np);
    assert_int_equal(np, n - 1);
    assert_memory_equal(p, ids + 1, (n - 1) * sizeof *ids);
    free(ids);
    bn_session_free(s);
    bn_engine_free(e);
}

/* End-of-generation stops: a copy of the model whose eos (then eot) id is the token greedy
 * decoding picks first must stop right after sampling it, printing nothing. */
static void test_eos_and_eot_stop(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_engine *e = open_engine();
    bn_session *s = new_session(e, 64, 1);
    bn_generate_params g = greedy(1);
    assert_int_equal(bn_generate(s, &g, NULL, &err), 0);
    size_t n = 0;
    int32_t first = bn_session_output_ids(s, &n)[0];
    assert_int_equal(n, 1);
    bn_session_free(s);
    bn_engine_free(e);

    const char *keys[2] = {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"};
    const bn_stop_reason want[2] = {BN_STOP_EOS, BN_STOP_EOT};
    for (int k = 0; k < 2; k++) {
        char *path = bn_test_tmpfile(".gguf");
        assert_int_equal(copy_gguf(model_path, path, 1, keys[k], (uint32_t)first), 0);
        e = bn_engine_open(path, NULL, &err);
        if (!e)
            fail_msg("open the edited copy: %s", err.msg);
        s = new_session(e, 64, 1);
        collect c = {.stop_after = -1};
        g = greedy(10);
        g.on_token = collect_cb;
        g.user = &c;
        bn_stats st;
        assert_int_equal(bn_generate(s, &g, &st, &err), 0);
        assert_int_equal(st.stop_reason, want[k]);
        assert_int_equal(bn_session_output_ids(s, &n)[0], first);
        assert_int_equal(n, 1);
        assert_int_equal(st.gen_eval, 0);
        assert_int_equal(c.calls, 1); /* the callback sees the token, with no text */
        assert_int_equal(c.last_id, first);
        assert_int_equal(c.len, 0);
        bn_session_free(s);
        bn_engine_free(e);
        unlink(path);
        free(path);
    }
}

/* Length of the incomplete but so-far valid UTF-8 sequence at the end of t[0..n) (0 if none). */
static size_t incomplete_tail(const char *t, size_t n)
{
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = (unsigned char)t[n - back];
        if ((c & 0xC0) == 0x80)
            continue; /* a continuation byte: look further back for the lead */
        size_t need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

typedef struct pieces {
    char *all;
    size_t len, cap, n_calls, bad;
} pieces;

static int piece_cb(void *user, int32_t id, const char *text, size_t len)
{
    pieces *p = user;
    if (id >= 0 && incomplete_tail(text, len))
        p->bad++; /* a character cut in two reached the caller */
    if (p->len + len + 1 > p->cap) {
        p->cap = (p->len + len + 1) * 2;
        p->all = realloc(p->all, p->cap);
    }
    memcpy(p->all + p->len, text, len);
    p->len += len;
    p->n_calls++;
    return 0;
}

/* Streaming is UTF-8 safe with the real Llama-3 vocabulary (byte tokens, characters split
 * over tokens): no piece ends inside a character, and the pieces add up to the whole decode. */
static void test_utf8_streaming_llama3_vocab(void **state)
{
    (void)state;
    char *vocab = bn_test_shared("tokenizer/llama3-vocab.gguf");
    bn_test_skip_if_missing(vocab, "tokenizer/llama3-vocab.gguf");
    bn_err err = {0};
    bn_synth_params sp;
    assert_int_equal(bn_synth_preset("tiny", &sp, &err), 0);
    sp.n_vocab = 0;
    sp.vocab_gguf = vocab;
    char *path = bn_test_tmpfile("-llama3.gguf");
    if (bn_synth_write(&sp, path, &err))
        fail_msg("bn_synth_write: %s", err.msg);
    bn_engine *e = bn_engine_open(path, NULL, &err);
    if (!e)
        fail_msg("open: %s", err.msg);
    bn_session *s = new_session(e, 256, 1);
    bn_generate_params g = bn_generate_default();
    g.prompt = "Grüße aus Köln, 東京 и Москва!";
    g.n_predict = 160;
    g.sampling.temp = 2.0f; /* wander over the vocabulary */
    g.sampling.top_k = 0;
    g.sampling.top_p = 1.0f;
    g.sampling.min_p = 0.0f;
    g.sampling.seed = 11;
    pieces p = {0};
    g.on_token = piece_cb;
    g.user = &p;
    bn_stats st;
    assert_int_equal(bn_generate(s, &g, &st, &err), 0);
    size_t n = 0, len = 0;
    const int32_t *ids = bn_session_output_ids(s, &n);
    size_t n_text = n - (st.stop_reason == BN_STOP_EOS || st.stop_reason == BN_STOP_EOT);
    char *whole = bn_engine_detokenize(e, ids, n_text, false, &len, &err);
    assert_non_null(whole);
    /* the run did split characters over tokens (else this test would prove nothing) */
    size_t split = 0;
    for (size_t i = 0; i < n_text; i++) {
        size_t tl = 0;
        char *t = bn_engine_detokenize(e, &ids[i], 1, false, &tl, &err);
        split += incomplete_tail(t, tl) > 0;
        free(t);
    }
    print_message("%zu of %zu tokens end inside a character\n", split, n_text);
    assert_true(split > 0);
    assert_int_equal(p.bad, 0);
    assert_int_equal(p.len, len);
    assert_memory_equal(p.all, whole, len);
    free(whole);
    free(p.all);
    bn_session_free(s);
    bn_engine_free(e);
    unlink(path);
    free(path);
    free(vocab);
}

static void test_vocab_only_and_bad_files(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_engine *e = bn_engine_open(vocab_path, NULL, &err);
    if (!e)
        fail_msg("vocab-only open: %s", err.msg);
    bn_engine_info info;
    bn_engine_get_info(e, &info);
    assert_false(info.has_weights);
    assert_int_equal(info.n_vocab, 384);
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(bn_engine_tokenize(e, "hi", 2, false, false, &ids, &n, &err), 0);
    assert_true(n >= 1);
    free(ids);
    assert_null(bn_session_create(e, NULL, &err));
    assert_non_null(strstr(err.msg, "vocab-only"));
    bn_engine_free(e);

    assert_null(bn_engine_open("/nonexistent/model.gguf", NULL, &err));
    assert_non_null(strstr(err.msg, "/nonexistent/model.gguf"));
    bn_open_opts o = {.pre_tokenizer = "gpt4"};
    assert_null(bn_engine_open(model_path, &o, &err));
    assert_non_null(strstr(err.msg, "pre-tokenizer"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_matches_forward_loop),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_stop_string_across_tokens),
        cmocka_unit_test(test_context_full_and_limits),
        cmocka_unit_test(test_prefix_reuse_is_exact),
        cmocka_unit_test(test_append_turns),
        cmocka_unit_test(test_threads_do_not_change_tokens),
        cmocka_unit_test(test_text_prompt_and_tokenize),
        cmocka_unit_test(test_eos_and_eot_stop),
        cmocka_unit_test(test_utf8_streaming_llama3_vocab),
        cmocka_unit_test(test_vocab_only_and_bad_files),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
