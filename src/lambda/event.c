/* Event envelopes (see event.h). */
#include "event.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"

/* Lambda's synchronous payload limit is 6 MB; allow a little slack for proxy wrapping. */
#define EVENT_JSON_MAX ((size_t)8 << 20)

static const char *str_at(const bn_json *o, const char *a, const char *b, const char *c)
{
    const bn_json *v = bn_json_get(o, a);
    if (b)
        v = bn_json_get(v, b);
    if (c)
        v = bn_json_get(v, c);
    return v && v->type == BN_JSON_STRING ? v->str : NULL;
}

/* Header lookup by name, whatever its case (payload 2.0 lower-cases, 1.0 keeps the client's). */
static const char *header(const bn_json *ev, const char *name)
{
    const bn_json *h = bn_json_get(ev, "headers");
    if (!h || h->type != BN_JSON_OBJECT)
        return NULL;
    for (const bn_json *k = h->child; k; k = k->next)
        if (!strcasecmp(k->key, name) && k->type == BN_JSON_STRING)
            return k->str;
    return NULL;
}

static int http_body(const bn_json *ev, bn_lambda_event *e, bn_err *err)
{
    const bn_json *b = bn_json_get(ev, "body");
    if (!b || b->type == BN_JSON_NULL)
        return 0;
    if (b->type != BN_JSON_STRING)
        return bn_fail(err, BN_E_INPUT, "event field \"body\": expected a string, got %s",
                       bn_json_type_name(b->type));
    const bn_json *b64 = bn_json_get(ev, "isBase64Encoded");
    e->body = b->str;
    e->len = b->len;
    if (b64 && b64->type == BN_JSON_BOOL && b64->boolean) {
        e->decoded = malloc(3 * (b->len / 4) + 4);
        if (!e->decoded)
            return bn_fail(err, BN_E_NOMEM, "out of memory");
        long n = bn_base64_decode(b->str, b->len, e->decoded);
        if (n < 0)
            return bn_fail(err, BN_E_INPUT,
                           "event field \"body\": invalid base64 (isBase64Encoded is true)");
        e->body = (const char *)e->decoded;
        e->len = (size_t)n;
    }
    return 0;
}

int bn_lambda_parse_event(const char *body, size_t len, bn_lambda_event *e, bn_err *err)
{
    memset(e, 0, sizeof *e);
    e->method = "POST";
    e->path = "/completion";
    bn_err jerr = {0};
    bn_json_opts opts = {.max_size = EVENT_JSON_MAX};
    e->doc = bn_json_parse(body, len, &opts, &jerr);
    if (!e->doc)
        return bn_fail(err, BN_E_INPUT, "event: invalid JSON: %s", jerr.msg);
    const bn_json *ev = bn_json_root(e->doc);
    if (ev->type == BN_JSON_OBJECT &&
        (bn_json_get(ev, "requestContext") || bn_json_get(ev, "httpMethod") ||
         bn_json_get(ev, "routeKey"))) {
        e->http = true;
        const char *m = str_at(ev, "requestContext", "http", "method"); /* 2.0 */
        const char *p = str_at(ev, "rawPath", NULL, NULL);
        if (!m)
            m = str_at(ev, "httpMethod", NULL, NULL); /* 1.0 */
        if (!p)
            p = str_at(ev, "path", NULL, NULL);
        e->method = m ? m : "POST";
        e->path = p && *p ? p : "/";
        /* an HTTP API stage other than $default prefixes rawPath with its name */
        const char *stage = str_at(ev, "requestContext", "stage", NULL);
        size_t sl = stage ? strlen(stage) : 0;
        if (stage && strcmp(stage, "$default") && str_at(ev, "rawPath", NULL, NULL) == p && p &&
            p[0] == '/' && !strncmp(p + 1, stage, sl) && p[1 + sl] == '/')
            e->path = p + 1 + sl;
        e->authorization = header(ev, "authorization");
        return http_body(ev, e, err);
    }
    /* direct invoke: the event is the request */
    e->body = body;
    e->len = len;
    if (ev->type == BN_JSON_OBJECT && bn_json_get(ev, "messages"))
        e->path = "/v1/chat/completions";
    return 0;
}

void bn_lambda_event_free(bn_lambda_event *e)
{
    bn_json_free(e->doc);
    free(e->decoded);
    memset(e, 0, sizeof *e);
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
    if (ctype) {
        bn_jw_key(&w, "headers");
        bn_jw_obj(&w);
        bn_jw_key(&w, "content-type");
        bn_jw_str(&w, ctype);
        bn_jw_end(&w);
    }
    bn_jw_key(&w, "body");
    bn_jw_strn(&w, body, len);
    if (ctype) {
        bn_jw_key(&w, "isBase64Encoded");
        bn_jw_bool(&w, false);
    }
    bn_jw_end(&w);
}
