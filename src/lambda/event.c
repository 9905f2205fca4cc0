/* Event parsing and response JSON (see event.h). */
#include "event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

/* Lambda's synchronous payload limit is 6 MB; allow a little slack for proxy wrapping. */
#define EVENT_JSON_MAX ((size_t)8 << 20)

static int field_err(bn_err *err, const char *field, const char *want, const bn_json *v)
{
    return bn_fail(err, BN_E_INPUT, "field \"%s\": expected %s, got %s", field, want,
                   v ? bn_json_type_name(v->type) : "nothing");
}

/* A numeric field whose range is the engine's settings table (bitnet.h): this parser checks
 * the JSON type only, the table the value. */
static int get_setting(const bn_json *o, const char *field, bn_setting_id id, double *out,
                       bool *given, bn_err *err)
{
    const bn_json *v = bn_json_get(o, field);
    if (given)
        *given = v != NULL;
    if (!v)
        return 0;
    if (v->type != BN_JSON_NUMBER) {
        char range[64];
        return bn_fail(err, BN_E_INPUT, "field \"%s\": expected %s in %s, got %s", field,
                       bn_setting_get(id)->integer ? "an integer" : "a number",
                       bn_setting_range(id, range, sizeof range), bn_json_type_name(v->type));
    }
    char label[80];
    snprintf(label, sizeof label, "field \"%s\"", field);
    if (bn_setting_check(id, v->num, label, err))
        return -1;
    *out = v->num;
    return 0;
}

static int get_string(const bn_json *o, const char *field, const char **out, bn_err *err)
{
    const bn_json *v = bn_json_get(o, field);
    if (!v)
        return 0;
    if (v->type != BN_JSON_STRING)
        return field_err(err, field, "a string", v);
    if (strlen(v->str) != v->len)
        return bn_fail(err, BN_E_INPUT, "field \"%s\": contains a NUL character", field);
    *out = v->str;
    return 0;
}

static int parse_stop(const bn_json *v, bn_lambda_request *r, bn_err *err)
{
    if (!v)
        return 0;
    const bn_json *one = v->type == BN_JSON_STRING ? v : NULL;
    if (!one && v->type != BN_JSON_ARRAY)
        return field_err(err, "stop", "a string or an array of strings", v);
    if (!one && v->len > BN_LAMBDA_MAX_STOP)
        return bn_fail(err, BN_E_INPUT, "field \"stop\": at most %d strings, got %zu", BN_LAMBDA_MAX_STOP, v->len);
    size_t i = 0;
    for (const bn_json *s = one ? one : v->child; s; s = one ? NULL : s->next, i++) {
        if (s->type != BN_JSON_STRING)
            return bn_fail(err, BN_E_INPUT, "field \"stop[%zu]\": expected a string, got %s", i,
                           bn_json_type_name(s->type));
        if (s->len == 0 || s->len > 256 || strlen(s->str) != s->len)
            return bn_fail(err, BN_E_INPUT, "field \"stop[%zu]\": expected 1 to 256 bytes without NUL", i);
        r->stop[r->n_stop++] = s->str;
    }
    return 0;
}

static int parse_messages(const bn_json *v, const char *system, bn_lambda_request *r, bn_err *err)
{
    size_t n = v ? v->len : 0;
    if (v && v->type != BN_JSON_ARRAY)
        return field_err(err, "messages", "an array of {\"role\",\"content\"} objects", v);
    if (v && (n == 0 || n > BN_LAMBDA_MAX_MESSAGES))
        return bn_fail(err, BN_E_INPUT, "field \"messages\": expected 1 to %d messages, got %zu",
                       BN_LAMBDA_MAX_MESSAGES, n);
    r->messages = calloc(n + 2, sizeof *r->messages);
    if (!r->messages)
        return bn_fail(err, BN_E_NOMEM, "out of memory");
    if (system)
        r->messages[r->n_messages++] = (bn_chat_msg){"system", system};
    size_t i = 0;
    for (const bn_json *m = v ? v->child : NULL; m; m = m->next, i++) {
        char f[48];
        if (m->type != BN_JSON_OBJECT)
            return bn_fail(err, BN_E_INPUT, "field \"messages[%zu]\": expected an object, got %s", i,
                           bn_json_type_name(m->type));
        for (const bn_json *k = m->child; k; k = k->next)
            if (strcmp(k->key, "role") && strcmp(k->key, "content"))
                return bn_fail(err, BN_E_INPUT, "field \"messages[%zu].%.40s\": unknown field", i, k->key);
        const char *role = NULL, *content = NULL;
        snprintf(f, sizeof f, "messages[%zu].role", i);
        const bn_json *rv = bn_json_get(m, "role");
        if (!rv || rv->type != BN_JSON_STRING)
            return field_err(err, f, "\"system\", \"user\" or \"assistant\"", rv);
        role = rv->str;
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))
            return bn_fail(err, BN_E_INPUT, "field \"%s\": expected \"system\", \"user\" or \"assistant\", "
                                "got \"%.40s\"", f, role);
        snprintf(f, sizeof f, "messages[%zu].content", i);
        const bn_json *cv = bn_json_get(m, "content");
        if (!cv || cv->type != BN_JSON_STRING)
            return field_err(err, f, "a string", cv);
        if (strlen(cv->str) != cv->len)
            return bn_fail(err, BN_E_INPUT, "field \"%s\": contains a NUL character", f);
        content = cv->str;
        r->messages[r->n_messages++] = (bn_chat_msg){role, content};
    }
    return 0;
}

static const char *const known_fields[] = {
    "prompt", "n_predict", "temperature", "top_p", "top_k", "repeat_penalty", "min_p", "seed",
    "stop", "system", "messages", "stream", NULL,
};

static int parse_request(const bn_json *o, bn_lambda_request *r, bn_err *err)
{
    if (o->type != BN_JSON_OBJECT)
        return bn_fail(err, BN_E_INPUT, "request: expected a JSON object, got %s", bn_json_type_name(o->type));
    for (const bn_json *k = o->child; k; k = k->next) {
        int known = 0;
        for (int i = 0; known_fields[i]; i++)
            known |= !strcmp(k->key, known_fields[i]);
        if (!known)
            return bn_fail(err, BN_E_INPUT, "field \"%.60s\": unknown field (known: prompt, messages, system, "
                                "n_predict, temperature, top_p, top_k, min_p, repeat_penalty, seed, "
                                "stop, stream)", k->key);
    }
    const char *system = NULL;
    bn_sampling_params *sp = &r->sampling;
    double n_predict = BN_LAMBDA_DEFAULT_N_PREDICT, temp = sp->temp, top_p = sp->top_p,
           top_k = sp->top_k, min_p = sp->min_p, penalty = sp->repeat_penalty, seed = 0;
    if (get_string(o, "prompt", &r->prompt, err) || get_string(o, "system", &system, err) ||
        get_setting(o, "n_predict", BN_SET_N_PREDICT, &n_predict, NULL, err) ||
        get_setting(o, "temperature", BN_SET_TEMP, &temp, NULL, err) ||
        get_setting(o, "top_p", BN_SET_TOP_P, &top_p, NULL, err) ||
        get_setting(o, "top_k", BN_SET_TOP_K, &top_k, NULL, err) ||
        get_setting(o, "min_p", BN_SET_MIN_P, &min_p, NULL, err) ||
        get_setting(o, "repeat_penalty", BN_SET_REPEAT_PENALTY, &penalty, NULL, err) ||
        get_setting(o, "seed", BN_SET_SEED, &seed, &r->seed_given, err) ||
        parse_stop(bn_json_get(o, "stop"), r, err))
        return -1;
    const bn_json *st = bn_json_get(o, "stream");
    if (st && st->type != BN_JSON_BOOL)
        return field_err(err, "stream", "true or false", st);
    r->stream = st && st->boolean;
    r->n_predict = (int32_t)n_predict;
    sp->temp = (float)temp;
    sp->top_p = (float)top_p;
    sp->top_k = (int32_t)top_k;
    sp->min_p = (float)min_p;
    sp->repeat_penalty = (float)penalty;
    if (seed < 0) /* -1 = pick one (llama.cpp's convention) */
        r->seed_given = false;
    r->sampling.seed = seed < 0 ? 0 : (uint64_t)seed;
    const bn_json *msgs = bn_json_get(o, "messages");
    if (msgs && r->prompt)
        return bn_fail(err, BN_E_INPUT, "field \"messages\": give either \"prompt\" or \"messages\", not both");
    if (!msgs && !r->prompt)
        return bn_fail(err, BN_E_INPUT, "field \"prompt\": missing (give \"prompt\" or \"messages\")");
    if (r->prompt && !*r->prompt)
        return bn_fail(err, BN_E_INPUT, "field \"prompt\": must not be empty");
    if (msgs || system) {
        /* "system" with a plain prompt means a one-turn chat */
        r->chat = true;
        if (parse_messages(msgs, system, r, err))
            return -1;
        if (!msgs)
            r->messages[r->n_messages++] = (bn_chat_msg){"user", r->prompt};
        r->prompt = NULL;
    }
    return 0;
}

static int parse_http_body(const bn_json *ev, bn_lambda_request *r, bn_err *err)
{
    const bn_json *b = bn_json_get(ev, "body");
    if (!b || b->type == BN_JSON_NULL)
        return bn_fail(err, BN_E_INPUT, "field \"body\": missing (POST the request JSON)");
    if (b->type != BN_JSON_STRING)
        return field_err(err, "body", "a string", b);
    const bn_json *b64 = bn_json_get(ev, "isBase64Encoded");
    const char *text = b->str;
    size_t len = b->len;
    if (b64 && b64->type == BN_JSON_BOOL && b64->boolean) {
        r->decoded = malloc(3 * (b->len / 4) + 4);
        if (!r->decoded)
            return bn_fail(err, BN_E_NOMEM, "out of memory");
        long n = bn_base64_decode(b->str, b->len, r->decoded);
        if (n < 0)
            return bn_fail(err, BN_E_INPUT, "field \"body\": invalid base64 (isBase64Encoded is true)");
        text = (const char *)r->decoded;
        len = (size_t)n;
    }
    bn_err jerr = {0};
    bn_json_opts opts = {.max_size = EVENT_JSON_MAX};
    r->inner = bn_json_parse(text, len, &opts, &jerr);
    if (!r->inner)
        return bn_fail(err, BN_E_INPUT, "body: invalid JSON: %s", jerr.msg);
    return parse_request(bn_json_root(r->inner), r, err);
}

int bn_lambda_parse_event(const char *body, size_t len, bn_lambda_request *r, bool *is_http,
                          bn_err *err)
{
    memset(r, 0, sizeof *r);
    *is_http = false;
    r->sampling = bn_sampling_default();
    r->n_predict = BN_LAMBDA_DEFAULT_N_PREDICT;
    bn_err jerr = {0};
    bn_json_opts opts = {.max_size = EVENT_JSON_MAX};
    r->doc = bn_json_parse(body, len, &opts, &jerr);
    if (!r->doc)
        return bn_fail(err, BN_E_INPUT, "event: invalid JSON: %s", jerr.msg);
    const bn_json *ev = bn_json_root(r->doc);
    if (ev->type == BN_JSON_OBJECT &&
        (bn_json_get(ev, "requestContext") || bn_json_get(ev, "httpMethod") ||
         bn_json_get(ev, "routeKey"))) {
        *is_http = r->http = true;
        return parse_http_body(ev, r, err);
    }
    return parse_request(ev, r, err);
}

void bn_lambda_request_free(bn_lambda_request *r)
{
    bn_json_free(r->doc);
    bn_json_free(r->inner);
    free(r->decoded);
    free(r->messages);
    memset(r, 0, sizeof *r);
}

void bn_lambda_response_json(bn_buf *out, const bn_lambda_result *r, const char *model)
{
    bn_jw w = {.out = out};
    bn_jw_obj(&w);
    bn_jw_key(&w, "text");
    bn_jw_strn(&w, r->text ? r->text : "", r->text ? r->len : 0);
    bn_jw_key(&w, "tokens_generated");
    bn_jw_int(&w, r->tokens_generated);
    bn_jw_key(&w, "prompt_tokens");
    bn_jw_int(&w, r->prompt_tokens);
    bn_jw_key(&w, "stop_reason");
    bn_jw_str(&w, r->stop_reason ? r->stop_reason : "none");
    bn_jw_key(&w, "timings");
    bn_jw_obj(&w);
    bn_jw_key(&w, "prompt_ms");
    bn_jw_num(&w, r->prompt_ms);
    bn_jw_key(&w, "gen_ms");
    bn_jw_num(&w, r->gen_ms);
    bn_jw_key(&w, "prompt_tok_s");
    bn_jw_num(&w, r->prompt_tok_s);
    bn_jw_key(&w, "gen_tok_s");
    bn_jw_num(&w, r->gen_tok_s);
    bn_jw_end(&w);
    bn_jw_key(&w, "model");
    bn_jw_str(&w, model ? model : "");
    bn_jw_end(&w);
}

void bn_lambda_error_json(bn_buf *out, const char *type, const char *message)
{
    bn_jw w = {.out = out};
    bn_jw_obj(&w);
    bn_jw_key(&w, "errorMessage");
    bn_jw_str(&w, message);
    bn_jw_key(&w, "errorType");
    bn_jw_str(&w, type);
    bn_jw_end(&w);
}

void bn_lambda_http_json(bn_buf *out, int status, const char *ctype, const char *body, size_t len)
{
    bn_jw w = {.out = out};
    bn_jw_obj(&w);
    bn_jw_key(&w, "statusCode");
    bn_jw_int(&w, status);
    bn_jw_key(&w, "headers");
    bn_jw_obj(&w);
    bn_jw_key(&w, "content-type");
    bn_jw_str(&w, ctype);
    bn_jw_end(&w);
    bn_jw_key(&w, "body");
    bn_jw_strn(&w, body, len);
    bn_jw_key(&w, "isBase64Encoded");
    bn_jw_bool(&w, false);
    bn_jw_end(&w);
}
