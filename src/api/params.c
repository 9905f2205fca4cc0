/* Request fields -> bn_api_gen (see params.h). Ranges are the engine's (bn_generate checks
 * them again); here they only produce a message that names the request's own field. */
#include "params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int field_err(bn_err *err, const char *field, const char *want, const bn_json *v)
{
    return bn_fail(err, BN_E_INPUT, "field \"%s\": expected %s, got %s", field, want,
                   v ? bn_json_type_name(v->type) : "nothing");
}

/* A number in [lo, hi] (or (lo, hi] when lo_open). null counts as absent (SDKs send it). */
/* A numeric field whose range is the engine's settings table (bitnet.h): this parser checks
 * the JSON type only, the table the value, so every entry point names the same range. */
static int get_setting(const bn_json *o, const char *field, bn_setting_id id, double *out,
                       bool *given, bn_err *err)
{
    const bn_json *v = bn_json_get(o, field);
    if (!v || v->type == BN_JSON_NULL)
        return 0;
    char range[64], label[80];
    if (v->type != BN_JSON_NUMBER) {
        char want[96];
        snprintf(want, sizeof want, "%s in %s",
                 bn_setting_get(id)->integer ? "an integer" : "a number",
                 bn_setting_range(id, range, sizeof range));
        return field_err(err, field, want, v);
    }
    snprintf(label, sizeof label, "field \"%s\"", field);
    if (bn_setting_check(id, v->num, label, err))
        return -1;
    *out = v->num;
    if (given)
        *given = true;
    return 0;
}

static int get_setting_f(const bn_json *o, const char *field, bn_setting_id id, float *out,
                         bn_err *err)
{
    double v = *out;
    if (get_setting(o, field, id, &v, NULL, err))
        return -1;
    *out = (float)v;
    return 0;
}

static int get_setting_i(const bn_json *o, const char *field, bn_setting_id id, int64_t *out,
                         bool *given, bn_err *err)
{
    double v = (double)*out;
    if (get_setting(o, field, id, &v, given, err))
        return -1;
    *out = (int64_t)v;
    return 0;
}

static int get_int(const bn_json *o, const char *field, int64_t lo, int64_t hi, int64_t *out,
                   bool *given, bn_err *err)
{
    const bn_json *v = bn_json_get(o, field);
    if (!v || v->type == BN_JSON_NULL)
        return 0;
    char want[96];
    snprintf(want, sizeof want, "an integer in [%lld, %lld]", (long long)lo, (long long)hi);
    if (v->type != BN_JSON_NUMBER)
        return field_err(err, field, want, v);
    if (bn_json_int_in(v, lo, hi, out))
        return bn_fail(err, BN_E_INPUT, "field \"%s\": expected %s, got %g", field, want, v->num);
    if (given)
        *given = true;
    return 0;
}

static int get_bool(const bn_json *o, const char *field, bool *out, bn_err *err)
{
    const bn_json *v = bn_json_get(o, field);
    if (!v || v->type == BN_JSON_NULL)
        return 0;
    if (v->type != BN_JSON_BOOL)
        return field_err(err, field, "true or false", v);
    *out = v->boolean;
    return 0;
}

static int check_text(const bn_json *v, const char *field, bn_err *err)
{
    if (!v || v->type != BN_JSON_STRING)
        return field_err(err, field, "a string", v);
    if (strlen(v->str) != v->len)
        return bn_fail(err, BN_E_INPUT, "field \"%s\": contains a NUL character", field);
    return 0;
}

static int parse_stop(const bn_json *v, bn_api_gen *g, bn_err *err)
{
    if (!v || v->type == BN_JSON_NULL)
        return 0;
    const bn_json *one = v->type == BN_JSON_STRING ? v : NULL;
    if (!one && v->type != BN_JSON_ARRAY)
        return field_err(err, "stop", "a string or an array of strings", v);
    if (!one && v->len > BN_API_MAX_STOP)
        return bn_fail(err, BN_E_INPUT, "field \"stop\": at most %d strings, got %zu",
                       BN_API_MAX_STOP, v->len);
    size_t i = 0;
    for (const bn_json *s = one ? one : v->child; s; s = one ? NULL : s->next, i++) {
        char f[32];
        snprintf(f, sizeof f, "stop[%zu]", i);
        if (check_text(s, f, err))
            return -1;
        if (s->len == 0 || s->len > 256)
            return bn_fail(err, BN_E_INPUT, "field \"%s\": expected 1 to 256 bytes", f);
        g->stop[g->n_stop++] = s->str;
    }
    return 0;
}

/* OpenAI content: a string, or an array of {"type": "text", "text": ...} parts (only text
 * parts; one part is used as is, several are refused rather than joined arbitrarily). */
static int message_content(const bn_json *cv, const char *f, const char **out, bn_err *err)
{
    if (cv && cv->type == BN_JSON_ARRAY && cv->len == 1 && cv->child->type == BN_JSON_OBJECT) {
        const bn_json *t = bn_json_get(cv->child, "type");
        if (!t || t->type != BN_JSON_STRING || strcmp(t->str, "text"))
            return bn_fail(err, BN_E_INPUT,
                           "field \"%s[0].type\": only \"text\" parts are supported", f);
        cv = bn_json_get(cv->child, "text");
    }
    if (check_text(cv, f, err))
        return -1;
    *out = cv->str;
    return 0;
}

static int parse_messages(const bn_json *v, bn_api_gen *g, bn_err *err)
{
    if (!v)
        return bn_fail(err, BN_E_INPUT, "field \"messages\": missing");
    if (v->type != BN_JSON_ARRAY)
        return field_err(err, "messages", "an array of {\"role\", \"content\"} objects", v);
    if (v->len == 0 || v->len > BN_API_MAX_MESSAGES)
        return bn_fail(err, BN_E_INPUT, "field \"messages\": expected 1 to %d messages, got %zu",
                       BN_API_MAX_MESSAGES, v->len);
    g->messages = calloc(v->len, sizeof *g->messages);
    if (!g->messages)
        return bn_fail(err, BN_E_NOMEM, "out of memory");
    size_t i = 0;
    for (const bn_json *m = v->child; m; m = m->next, i++) {
        char f[48];
        if (m->type != BN_JSON_OBJECT)
            return bn_fail(err, BN_E_INPUT, "field \"messages[%zu]\": expected an object, got %s",
                           i, bn_json_type_name(m->type));
        snprintf(f, sizeof f, "messages[%zu].role", i);
        const bn_json *rv = bn_json_get(m, "role");
        if (!rv || rv->type != BN_JSON_STRING)
            return field_err(err, f, "\"system\", \"user\" or \"assistant\"", rv);
        const char *role = rv->str;
        if (!strcmp(role, "developer")) /* OpenAI's newer name for the system role */
            role = "system";
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))
            return bn_fail(err, BN_E_INPUT,
                           "field \"%s\": expected \"system\", \"user\" or "
                           "\"assistant\", got \"%.40s\"",
                           f, rv->str);
        snprintf(f, sizeof f, "messages[%zu].content", i);
        const char *content = NULL;
        if (message_content(bn_json_get(m, "content"), f, &content, err))
            return -1;
        for (const bn_json *k = m->child; k; k = k->next)
            if (strcmp(k->key, "role") && strcmp(k->key, "content") && strcmp(k->key, "name"))
                return bn_fail(err, BN_E_INPUT, "field \"messages[%zu].%.40s\": unknown field", i,
                               k->key);
        g->messages[g->n_messages++] = (bn_chat_msg){role, content};
    }
    return 0;
}

/* A prompt: a string, token ids, or an array holding one string (OpenAI's batch form with
 * one element; more would need n answers). */
static int parse_prompt(const bn_json *v, bn_api_gen *g, bn_err *err)
{
    if (!v)
        return bn_fail(err, BN_E_INPUT, "field \"prompt\": missing");
    if (v->type == BN_JSON_ARRAY && v->len == 1 && v->child->type == BN_JSON_STRING)
        v = v->child;
    if (v->type == BN_JSON_STRING) {
        if (check_text(v, "prompt", err))
            return -1;
        if (v->len == 0)
            return bn_fail(err, BN_E_INPUT, "field \"prompt\": must not be empty");
        g->prompt = v->str;
        return 0;
    }
    if (v->type != BN_JSON_ARRAY || v->len == 0)
        return field_err(err, "prompt", "a string or a non-empty array of token ids", v);
    g->prompt_ids = malloc(v->len * sizeof *g->prompt_ids);
    if (!g->prompt_ids)
        return bn_fail(err, BN_E_NOMEM, "out of memory");
    size_t i = 0;
    for (const bn_json *t = v->child; t; t = t->next, i++) {
        int64_t id;
        if (t->type != BN_JSON_NUMBER || bn_json_int_in(t, 0, INT32_MAX, &id))
            return bn_fail(err, BN_E_INPUT, "field \"prompt[%zu]\": expected a token id", i);
        g->prompt_ids[g->n_prompt_ids++] = (int32_t)id;
    }
    return 0;
}

/* Every field a route accepts. The last group is accepted and ignored: clients send them,
 * and here they change nothing (the KV cache prefix is always reused, one slot exists). */
static const char *const known_fields[] = {
    "prompt",
    "messages",
    "n_predict",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "repeat_penalty",
    "repeat_last_n",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "stop",
    "stream",
    "stream_options",
    "n_probs",
    "logprobs",
    "top_logprobs",
    "n",
    "echo",
    "model",
    "cache_prompt",
    "user",
    "id_slot",
    "n_keep",
    NULL,
};

static int check_known(const bn_json *o, bn_err *err)
{
    for (const bn_json *k = o->child; k; k = k->next) {
        bool known = false;
        for (int i = 0; known_fields[i] && !known; i++)
            known = !strcmp(k->key, known_fields[i]);
        if (!known)
            return bn_fail(err, BN_E_INPUT, "field \"%.60s\": unknown field", k->key);
    }
    return 0;
}

static int parse_oai_options(const bn_json *o, bn_api_gen *g, bn_err *err)
{
    int64_t n = 1;
    if (get_int(o, "n", 1, 128, &n, NULL, err))
        return -1;
    if (n != 1)
        return bn_fail(err, BN_E_INPUT, "field \"n\": only 1 choice is supported, got %lld",
                       (long long)n);
    bool echo = false;
    if (get_bool(o, "echo", &echo, err))
        return -1;
    if (echo)
        return bn_fail(err, BN_E_INPUT, "field \"echo\": true is not supported");
    const bn_json *so = bn_json_get(o, "stream_options");
    if (so && so->type != BN_JSON_NULL) {
        if (so->type != BN_JSON_OBJECT)
            return field_err(err, "stream_options", "an object", so);
        for (const bn_json *k = so->child; k; k = k->next)
            if (strcmp(k->key, "include_usage"))
                return bn_fail(err, BN_E_INPUT, "field \"stream_options.%.40s\": unknown field",
                               k->key);
        if (get_bool(so, "include_usage", &g->include_usage, err))
            return bn_fail_prefix(err, "stream_options");
    }
    const bn_json *lp = bn_json_get(o, "logprobs");
    if (g->dialect == BN_API_OAI_CHAT) {
        /* chat: logprobs is a boolean, top_logprobs (0..20) the count */
        int64_t top = 0;
        if (get_bool(o, "logprobs", &g->logprobs, err) ||
            get_int(o, "top_logprobs", 0, 20, &top, NULL, err))
            return -1;
        if (top > 0 && !g->logprobs)
            return bn_fail(err, BN_E_INPUT, "field \"top_logprobs\": needs \"logprobs\": true");
        g->n_probs = (int32_t)top;
    } else if (lp && lp->type != BN_JSON_NULL) {
        /* completions: logprobs is the count (0..5 at OpenAI; the engine allows more) */
        int64_t top = 0;
        if (get_int(o, "logprobs", 0, BN_MAX_PROBS, &top, NULL, err))
            return -1;
        g->logprobs = true;
        g->n_probs = (int32_t)top;
    }
    return 0;
}

int bn_api_gen_parse(const bn_json *o, bn_api_dialect d, int32_t default_n_predict, bn_api_gen *g,
                     bn_err *err)
{
    memset(g, 0, sizeof *g);
    g->dialect = d;
    g->sampling = bn_sampling_default();
    g->n_predict = default_n_predict;
    if (!o || o->type != BN_JSON_OBJECT)
        return bn_fail(err, BN_E_INPUT, "body: expected a JSON object, got %s",
                       o ? bn_json_type_name(o->type) : "nothing");
    if (check_known(o, err))
        return -1;
    if (d == BN_API_OAI_CHAT ? parse_messages(bn_json_get(o, "messages"), g, err)
                             : parse_prompt(bn_json_get(o, "prompt"), g, err))
        return -1;
    if (d == BN_API_OAI_CHAT && bn_json_get(o, "prompt"))
        return bn_fail(err, BN_E_INPUT, "field \"prompt\": not a chat field (use \"messages\")");
    if (d != BN_API_OAI_CHAT && bn_json_get(o, "messages"))
        return bn_fail(err, BN_E_INPUT, "field \"messages\": use /v1/chat/completions");

    /* the generation limit under any of its three names; the most specific one wins */
    int64_t n_predict = default_n_predict, top_k = g->sampling.top_k;
    int64_t last_n = g->sampling.repeat_last_n, seed = -1, n_probs = 0;
    bool seed_given = false;
    if (get_setting_i(o, "n_predict", BN_SET_N_PREDICT, &n_predict, NULL, err) ||
        get_setting_i(o, "max_tokens", BN_SET_N_PREDICT, &n_predict, NULL, err) ||
        get_setting_i(o, "max_completion_tokens", BN_SET_N_PREDICT, &n_predict, NULL, err) ||
        get_setting_f(o, "temperature", BN_SET_TEMP, &g->sampling.temp, err) ||
        get_setting_i(o, "top_k", BN_SET_TOP_K, &top_k, NULL, err) ||
        get_setting_f(o, "top_p", BN_SET_TOP_P, &g->sampling.top_p, err) ||
        get_setting_f(o, "min_p", BN_SET_MIN_P, &g->sampling.min_p, err) ||
        get_setting_f(o, "repeat_penalty", BN_SET_REPEAT_PENALTY, &g->sampling.repeat_penalty,
                      err) ||
        get_setting_i(o, "repeat_last_n", BN_SET_REPEAT_LAST_N, &last_n, NULL, err) ||
        get_setting_f(o, "presence_penalty", BN_SET_PRESENCE_PENALTY, &g->sampling.presence_penalty,
                      err) ||
        get_setting_f(o, "frequency_penalty", BN_SET_FREQUENCY_PENALTY,
                      &g->sampling.frequency_penalty, err) ||
        get_setting_i(o, "seed", BN_SET_SEED, &seed, &seed_given, err) ||
        get_setting_i(o, "n_probs", BN_SET_N_PROBS, &n_probs, NULL, err) ||
        get_bool(o, "stream", &g->stream, err) || parse_stop(bn_json_get(o, "stop"), g, err))
        return -1;
    g->n_predict = (int32_t)n_predict;
    g->sampling.top_k = (int32_t)top_k;
    g->sampling.repeat_last_n = (int32_t)last_n;
    g->seed_given = seed_given && seed >= 0; /* -1 = pick one (llama.cpp's convention) */
    g->sampling.seed = g->seed_given ? (uint64_t)seed : bn_random_seed();
    g->n_probs = (int32_t)n_probs;
    if (d != BN_API_LLAMA && parse_oai_options(o, g, err))
        return -1;
    if (d == BN_API_LLAMA && bn_json_get(o, "logprobs")) /* llama-server's name is n_probs */
        return bn_fail(err, BN_E_INPUT, "field \"logprobs\": use \"n_probs\" on this route");
    return 0;
}

void bn_api_gen_free(bn_api_gen *g)
{
    free(g->prompt_ids);
    free(g->messages);
    memset(g, 0, sizeof *g);
}
