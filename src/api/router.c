/* The route table, authentication, errors and the routes that do not generate: /health,
 * /v1/models, /props, /tokenize, /detokenize (see api.h). */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "routes.h"

#define DEFAULT_MAX_BODY ((size_t)8 << 20)

const char *bn_api_error_type(int status)
{
    switch (status) {
    case 400:
    case 408:
    case 413:
    case 414:
    case 417:
    case 431:
    case 505: return "invalid_request_error";
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 405: return "invalid_request_error";
    case 501: return "not_supported_error";
    case 503: return "unavailable_error";
    default: return "server_error";
    }
}

int bn_api_status_for(bn_err_code code)
{
    switch (code) {
    case BN_E_INPUT:
    case BN_E_CONTEXT_FULL: return 400;
    case BN_E_UNSUPPORTED: return 501;
    default: return 500;
    }
}

void bn_api_error_body(bn_buf *out, int status, const char *type, const char *message)
{
    bn_jw w = {.out = out};
    bn_jw_obj(&w);
    bn_jw_key(&w, "error");
    bn_jw_obj(&w);
    bn_jw_key(&w, "message");
    bn_jw_str(&w, message);
    bn_jw_key(&w, "type");
    bn_jw_str(&w, type ? type : bn_api_error_type(status));
    bn_jw_key(&w, "code");
    bn_jw_int(&w, status);
    bn_jw_end(&w);
    bn_jw_end(&w);
}

/* The engine error code behind an answer the router gives itself: the client's fault (4xx)
 * is bad input; a 501 is unsupported; the rest is the server's. */
static bn_err_code code_for_status(int status)
{
    if (status >= 400 && status < 500)
        return BN_E_INPUT;
    return status == 501 ? BN_E_UNSUPPORTED : BN_E_INTERNAL;
}

static void send_error(const bn_api_sink *sink, int status, const char *type, bn_err_code code,
                       const char *message)
{
    if (!type)
        type = bn_api_error_type(status);
    if (sink->error) {
        sink->error(sink->user, status, type, code, message);
        return;
    }
    bn_buf b = {0};
    bn_api_error_body(&b, status, type, message);
    if (!b.oom && !sink->begin(sink->user, status, "application/json"))
        sink->write(sink->user, b.data, b.len);
    bn_buf_free(&b);
}

void bn_api_send_error(const bn_api_sink *sink, int status, const char *type, const char *message)
{
    send_error(sink, status, type, code_for_status(status), message);
}

int bn_api_send_json(const bn_api_sink *sink, int status, const bn_buf *b)
{
    if (b->oom) {
        send_error(sink, 500, NULL, BN_E_NOMEM, "out of memory building the answer");
        return 500;
    }
    if (!sink->begin(sink->user, status, "application/json"))
        sink->write(sink->user, b->data, b->len);
    return status;
}

int bn_api_fail(const bn_api_sink *sink, const bn_err *err)
{
    int status = bn_api_status_for(err->code);
    send_error(sink, status, NULL, err->code, err->msg);
    return status;
}

/* Constant time in the length of the given key: no early exit on the first difference. */
static bool key_matches(const char *want, const char *authorization)
{
    static const char bearer[] = "Bearer ";
    if (!authorization || strncmp(authorization, bearer, sizeof bearer - 1))
        return false;
    const char *got = authorization + sizeof bearer - 1;
    size_t nw = strlen(want), ng = strlen(got);
    unsigned char diff = (unsigned char)(nw != ng);
    for (size_t i = 0; i < ng; i++)
        diff |= (unsigned char)(got[i] ^ want[i % (nw ? nw : 1)]);
    return diff == 0 && nw > 0;
}

/* ------------------------------------------------------------------ simple routes */
static int health(const bn_api *api, const bn_json *body, const bn_api_sink *sink)
{
    bn_buf b = {0};
    bn_buf_puts(&b, "{\"status\":\"ok\"}");
    int st = bn_api_send_json(sink, 200, &b);
    bn_buf_free(&b);
    return st;
}

static int models(const bn_api *api, const bn_json *body, const bn_api_sink *sink)
{
    bn_engine_info info;
    bn_engine_get_info(api->engine, &info);
    bn_buf b = {0};
    bn_jw w = {.out = &b};
    bn_jw_obj(&w);
    bn_jw_key(&w, "object");
    bn_jw_str(&w, "list");
    bn_jw_key(&w, "data");
    bn_jw_arr(&w);
    bn_jw_obj(&w);
    bn_jw_key(&w, "id");
    bn_jw_str(&w, api->model);
    bn_jw_key(&w, "object");
    bn_jw_str(&w, "model");
    bn_jw_key(&w, "created");
    bn_jw_int(&w, (int64_t)time(NULL));
    bn_jw_key(&w, "owned_by");
    bn_jw_str(&w, "bitnet");
    bn_jw_key(&w, "meta");
    bn_jw_obj(&w);
    bn_jw_key(&w, "n_vocab");
    bn_jw_int(&w, info.n_vocab);
    bn_jw_key(&w, "n_ctx_train");
    bn_jw_int(&w, info.n_ctx_train);
    bn_jw_key(&w, "n_embd");
    bn_jw_int(&w, info.n_embd);
    bn_jw_key(&w, "n_params");
    bn_jw_int(&w, (int64_t)info.n_params);
    bn_jw_key(&w, "size");
    bn_jw_int(&w, (int64_t)info.file_size);
    bn_jw_end(&w);
    bn_jw_end(&w);
    bn_jw_end(&w);
    bn_jw_end(&w);
    int st = bn_api_send_json(sink, 200, &b);
    bn_buf_free(&b);
    return st;
}

static int props(const bn_api *api, const bn_json *body, const bn_api_sink *sink)
{
    bn_sampling_params sp = bn_sampling_default();
    bn_buf b = {0};
    bn_jw w = {.out = &b};
    bn_jw_obj(&w);
    bn_jw_key(&w, "default_generation_settings");
    bn_jw_obj(&w);
    bn_jw_key(&w, "n_ctx");
    bn_jw_int(&w, bn_session_n_ctx(api->session));
    bn_jw_key(&w, "model");
    bn_jw_str(&w, api->model);
    bn_jw_key(&w, "n_predict");
    bn_jw_int(&w, api->n_predict);
    bn_jw_key(&w, "temperature");
    bn_jw_num(&w, sp.temp);
    bn_jw_key(&w, "top_k");
    bn_jw_int(&w, sp.top_k);
    bn_jw_key(&w, "top_p");
    bn_jw_num(&w, sp.top_p);
    bn_jw_key(&w, "min_p");
    bn_jw_num(&w, sp.min_p);
    bn_jw_key(&w, "repeat_penalty");
    bn_jw_num(&w, sp.repeat_penalty);
    bn_jw_key(&w, "repeat_last_n");
    bn_jw_int(&w, sp.repeat_last_n);
    bn_jw_end(&w);
    bn_jw_key(&w, "total_slots");
    bn_jw_int(&w, 1);
    bn_jw_key(&w, "n_threads");
    bn_jw_int(&w, bn_session_n_threads(api->session));
    bn_jw_key(&w, "model_path");
    bn_jw_str(&w, api->model);
    bn_jw_key(&w, "build_info");
    bn_jw_str(&w, "bitnet " BN_VERSION);
    bn_jw_end(&w);
    int st = bn_api_send_json(sink, 200, &b);
    bn_buf_free(&b);
    return st;
}

static int tokenize(const bn_api *api, const bn_json *body, const bn_api_sink *sink)
{
    bn_err err = {0};
    const bn_json *c = bn_json_get(body, "content");
    const bn_json *as = bn_json_get(body, "add_special"), *wp = bn_json_get(body, "with_pieces");
    for (const bn_json *k = body->child; k; k = k->next)
        if (strcmp(k->key, "content") && strcmp(k->key, "add_special") &&
            strcmp(k->key, "with_pieces") && strcmp(k->key, "parse_special"))
            return bn_api_fail(
                sink, (bn_fail(&err, BN_E_INPUT, "field \"%.60s\": unknown field", k->key), &err));
    if (!c || c->type != BN_JSON_STRING)
        return bn_api_fail(
            sink, (bn_fail(&err, BN_E_INPUT, "field \"content\": expected a string, got %s",
                           c ? bn_json_type_name(c->type) : "nothing"),
                   &err));
    if ((as && as->type != BN_JSON_BOOL) || (wp && wp->type != BN_JSON_BOOL))
        return bn_api_fail(sink,
                           (bn_fail(&err, BN_E_INPUT, "field \"%s\": expected true or false",
                                    as && as->type != BN_JSON_BOOL ? "add_special" : "with_pieces"),
                            &err));
    const bn_json *ps = bn_json_get(body, "parse_special");
    int32_t *ids = NULL;
    size_t n = 0;
    if (bn_engine_tokenize(api->engine, c->str, c->len, as && as->boolean,
                           ps && ps->type == BN_JSON_BOOL && ps->boolean, &ids, &n, &err))
        return bn_api_fail(sink, &err);
    bn_buf b = {0};
    bn_jw w = {.out = &b};
    bn_jw_obj(&w);
    bn_jw_key(&w, "tokens");
    bn_jw_arr(&w);
    for (size_t i = 0; i < n; i++) {
        if (!(wp && wp->boolean)) {
            bn_jw_int(&w, ids[i]);
            continue;
        }
        size_t len = 0;
        char *piece = bn_engine_detokenize(api->engine, &ids[i], 1, true, &len, &err);
        bn_jw_obj(&w);
        bn_jw_key(&w, "id");
        bn_jw_int(&w, ids[i]);
        bn_jw_key(&w, "piece");
        bn_jw_strn(&w, piece ? piece : "", piece ? len : 0);
        bn_jw_end(&w);
        free(piece);
    }
    bn_jw_end(&w);
    bn_jw_end(&w);
    free(ids);
    int st = bn_api_send_json(sink, 200, &b);
    bn_buf_free(&b);
    return st;
}

static int detokenize(const bn_api *api, const bn_json *body, const bn_api_sink *sink)
{
    bn_err err = {0};
    const bn_json *t = bn_json_get(body, "tokens");
    for (const bn_json *k = body->child; k; k = k->next)
        if (strcmp(k->key, "tokens"))
            return bn_api_fail(
                sink, (bn_fail(&err, BN_E_INPUT, "field \"%.60s\": unknown field", k->key), &err));
    if (!t || t->type != BN_JSON_ARRAY)
        return bn_api_fail(
            sink,
            (bn_fail(&err, BN_E_INPUT, "field \"tokens\": expected an array of token ids, got %s",
                     t ? bn_json_type_name(t->type) : "nothing"),
             &err));
    int32_t *ids = malloc((t->len ? t->len : 1) * sizeof *ids);
    if (!ids)
        return bn_api_fail(sink, (bn_fail(&err, BN_E_NOMEM, "out of memory"), &err));
    size_t i = 0;
    for (const bn_json *v = t->child; v; v = v->next, i++) {
        int64_t id;
        if (v->type != BN_JSON_NUMBER || bn_json_int_in(v, 0, INT32_MAX, &id)) {
            free(ids);
            return bn_api_fail(
                sink,
                (bn_fail(&err, BN_E_INPUT, "field \"tokens[%zu]\": expected a token id", i), &err));
        }
        ids[i] = (int32_t)id;
    }
    size_t len = 0;
    char *text = bn_engine_detokenize(api->engine, ids, i, false, &len, &err);
    free(ids);
    if (!text)
        return bn_api_fail(sink, &err);
    bn_buf b = {0};
    bn_jw w = {.out = &b};
    bn_jw_obj(&w);
    bn_jw_key(&w, "content");
    bn_jw_strn(&w, text, len);
    bn_jw_end(&w);
    free(text);
    int st = bn_api_send_json(sink, 200, &b);
    bn_buf_free(&b);
    return st;
}

static int completion(const bn_api *api, const bn_json *body, const bn_api_sink *sink,
                      const bn_api_request *req, bn_api_dialect d)
{
    return bn_api_generate(api, body, d, req, sink);
}

/* ------------------------------------------------------------------ route table */
typedef enum kind {
    K_HEALTH,
    K_MODELS,
    K_PROPS,
    K_TOKENIZE,
    K_DETOKENIZE,
    K_LLAMA,
    K_TEXT,
    K_CHAT
} kind;

typedef struct route {
    const char *method, *path;
    kind k;
} route;

static const route routes[] = {
    {"GET", "/health", K_HEALTH},
    {"GET", "/v1/health", K_HEALTH},
    {"GET", "/v1/models", K_MODELS},
    {"GET", "/models", K_MODELS},
    {"GET", "/props", K_PROPS},
    {"POST", "/tokenize", K_TOKENIZE},
    {"POST", "/detokenize", K_DETOKENIZE},
    {"POST", "/completion", K_LLAMA},
    {"POST", "/completions", K_LLAMA},
    {"POST", "/v1/completions", K_TEXT},
    {"POST", "/v1/chat/completions", K_CHAT},
    {"POST", "/chat/completions", K_CHAT},
};

/* The path without its query string, compared as a whole. */
static bool path_is(const char *path, const char *want)
{
    size_t n = strcspn(path, "?#");
    return strlen(want) == n && !strncmp(path, want, n);
}

/* The route for the path; *method_ok tells whether the method matches too. */
static const route *find_route(const char *method, const char *path, bool *method_ok)
{
    const route *found = NULL;
    *method_ok = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!path_is(path, routes[i].path))
            continue;
        found = &routes[i];
        if (!strcmp(method, routes[i].method) ||
            (!strcmp(method, "HEAD") && !strcmp(routes[i].method, "GET"))) {
            *method_ok = true;
            return found;
        }
    }
    return found;
}

bool bn_api_is_generation(const char *method, const char *path)
{
    bool ok;
    const route *r = find_route(method, path, &ok);
    return r && ok && r->k >= K_LLAMA;
}

int bn_api_handle(const bn_api *api, const bn_api_request *req, const bn_api_sink *sink)
{
    bool method_ok;
    const route *r = find_route(req->method, req->path, &method_ok);
    char msg[200];
    if (!r) {
        snprintf(msg, sizeof msg, "no route %.16s %.120s", req->method, req->path);
        bn_api_send_error(sink, 404, NULL, msg);
        return 404;
    }
    if (!method_ok) {
        snprintf(msg, sizeof msg, "%.120s takes %s, not %.16s", r->path, r->method, req->method);
        bn_api_send_error(sink, 405, NULL, msg);
        return 405;
    }
    /* /health stays open so that load balancers can probe without the key */
    if (api->api_key && *api->api_key && r->k != K_HEALTH &&
        !key_matches(api->api_key, req->authorization)) {
        bn_api_send_error(sink, 401, NULL,
                          "invalid or missing API key (Authorization: Bearer <key>)");
        return 401;
    }
    size_t max_body = api->max_body ? api->max_body : DEFAULT_MAX_BODY;
    if (req->len > max_body) {
        snprintf(msg, sizeof msg, "body of %zu bytes exceeds the limit of %zu", req->len, max_body);
        bn_api_send_error(sink, 413, NULL, msg);
        return 413;
    }
    bn_json_doc *doc = NULL;
    const bn_json *body = NULL;
    if (!strcmp(r->method, "POST")) {
        bn_err err = {0}, jerr = {0};
        bn_json_opts opts = {.max_size = max_body};
        doc = bn_json_parse(req->body ? req->body : "", req->len, &opts, &jerr);
        if (!doc) {
            bn_fail(&err, BN_E_INPUT, "body: invalid JSON: %s", jerr.msg);
            return bn_api_fail(sink, &err);
        }
        body = bn_json_root(doc);
        if (body->type != BN_JSON_OBJECT) {
            bn_fail(&err, BN_E_INPUT, "body: expected a JSON object, got %s",
                    bn_json_type_name(body->type));
            bn_json_free(doc);
            return bn_api_fail(sink, &err);
        }
    }
    int st;
    switch (r->k) {
    case K_HEALTH: st = health(api, body, sink); break;
    case K_MODELS: st = models(api, body, sink); break;
    case K_PROPS: st = props(api, body, sink); break;
    case K_TOKENIZE: st = tokenize(api, body, sink); break;
    case K_DETOKENIZE: st = detokenize(api, body, sink); break;
    case K_LLAMA: st = completion(api, body, sink, req, BN_API_LLAMA); break;
    case K_TEXT: st = completion(api, body, sink, req, BN_API_OAI_TEXT); break;
    default: st = completion(api, body, sink, req, BN_API_OAI_CHAT); break;
    }
    bn_json_free(doc);
    return st;
}
