/* Minimal recursive-descent JSON reader for test data (see jsonl.h). */
#include "jsonl.h"

#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const char *s, *end;
    int depth;
} parser;

static void skip_ws(parser *p)
{
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
        p->s++;
}

static int parse_value(parser *p, bn_tj *v);

static int hex4(parser *p, uint32_t *out)
{
    if (p->end - p->s < 4)
        return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *p->s++;
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int parse_string(parser *p, char **out, size_t *len)
{
    p->s++; /* opening quote */
    const char *q = p->s;
    size_t cap = 0;
    while (q < p->end && *q != '"') {
        if (*q == '\\')
            q++;
        q++;
        cap++;
    }
    char *o = malloc(cap * 4 + 1);
    if (!o)
        return -1;
    size_t n = 0;
    while (p->s < p->end && *p->s != '"') {
        char c = *p->s++;
        if (c != '\\') {
            o[n++] = c;
            continue;
        }
        if (p->s >= p->end)
            goto bad;
        c = *p->s++;
        switch (c) {
        case '"': o[n++] = '"'; break;
        case '\\': o[n++] = '\\'; break;
        case '/': o[n++] = '/'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (hex4(p, &cp))
                goto bad;
            if (cp >= 0xD800 && cp < 0xDC00 && p->end - p->s >= 6 && p->s[0] == '\\' &&
                p->s[1] == 'u') {
                const char *save = p->s;
                uint32_t lo;
                p->s += 2;
                if (hex4(p, &lo) == 0 && lo >= 0xDC00 && lo < 0xE000)
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                else
                    p->s = save;
            }
            n += put_utf8(o + n, cp);
            break;
        }
        default:
            goto bad;
        }
    }
    if (p->s >= p->end)
        goto bad;
    p->s++;
    o[n] = 0;
    *out = o;
    *len = n;
    return 0;
bad:
    free(o);
    return -1;
}

static int push(bn_tj *v, size_t *cap)
{
    if (v->n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 8;
    bn_tj *items = realloc(v->items, nc * sizeof *items);
    if (!items)
        return -1;
    v->items = items;
    if (v->type == BN_TJ_OBJ) {
        char **keys = realloc(v->keys, nc * sizeof *keys);
        if (!keys)
            return -1;
        v->keys = keys;
    }
    *cap = nc;
    return 0;
}

static int parse_container(parser *p, bn_tj *v, char close)
{
    size_t cap = 0;
    p->s++;
    skip_ws(p);
    if (p->s < p->end && *p->s == close) {
        p->s++;
        return 0;
    }
    for (;;) {
        skip_ws(p);
        if (push(v, &cap))
            return -1;
        char *key = NULL;
        if (v->type == BN_TJ_OBJ) {
            size_t kl;
            if (p->s >= p->end || *p->s != '"' || parse_string(p, &key, &kl))
                return -1;
            skip_ws(p);
            if (p->s >= p->end || *p->s != ':') {
                free(key);
                return -1;
            }
            p->s++;
            v->keys[v->n] = key;
        }
        memset(&v->items[v->n], 0, sizeof v->items[v->n]);
        v->n++;
        if (parse_value(p, &v->items[v->n - 1]))
            return -1;
        skip_ws(p);
        if (p->s < p->end && *p->s == ',') {
            p->s++;
            continue;
        }
        if (p->s < p->end && *p->s == close) {
            p->s++;
            return 0;
        }
        return -1;
    }
}

static int parse_value(parser *p, bn_tj *v)
{
    skip_ws(p);
    if (p->s >= p->end || ++p->depth > 200)
        return -1;
    int rc = 0;
    char c = *p->s;
    if (c == '"') {
        v->type = BN_TJ_STR;
        rc = parse_string(p, &v->str, &v->len);
    } else if (c == '[') {
        v->type = BN_TJ_ARR;
        rc = parse_container(p, v, ']');
    } else if (c == '{') {
        v->type = BN_TJ_OBJ;
        rc = parse_container(p, v, '}');
    } else if (p->end - p->s >= 4 && memcmp(p->s, "null", 4) == 0) {
        v->type = BN_TJ_NULL;
        p->s += 4;
    } else if (p->end - p->s >= 4 && memcmp(p->s, "true", 4) == 0) {
        v->type = BN_TJ_BOOL;
        v->b = true;
        p->s += 4;
    } else if (p->end - p->s >= 5 && memcmp(p->s, "false", 5) == 0) {
        v->type = BN_TJ_BOOL;
        p->s += 5;
    } else {
        char buf[64];
        size_t n = 0;
        while (p->s + n < p->end && n < sizeof buf - 1 && strchr("+-0123456789.eE", p->s[n]))
            n++;
        if (n == 0)
            return -1;
        memcpy(buf, p->s, n);
        buf[n] = 0;
        char *e;
        v->type = BN_TJ_NUM;
        v->num = strtod(buf, &e);
        if (*e)
            return -1;
        p->s += n;
    }
    p->depth--;
    return rc;
}

static void free_inner(bn_tj *v)
{
    free(v->str);
    for (size_t i = 0; i < v->n; i++) {
        free_inner(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
}

void bn_tj_free(bn_tj *v)
{
    if (!v)
        return;
    free_inner(v);
    free(v);
}

bn_tj *bn_tj_parse(const char *s, size_t len)
{
    parser p = {s, s + len, 0};
    bn_tj *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    if (parse_value(&p, v)) {
        bn_tj_free(v);
        return NULL;
    }
    skip_ws(&p);
    if (p.s != p.end) {
        bn_tj_free(v);
        return NULL;
    }
    return v;
}

const bn_tj *bn_tj_get(const bn_tj *obj, const char *key)
{
    if (!obj || obj->type != BN_TJ_OBJ)
        return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return &obj->items[i];
    return NULL;
}

int bn_tj_ids(const bn_tj *arr, int32_t **ids, size_t *n)
{
    if (!arr || arr->type != BN_TJ_ARR)
        return -1;
    int32_t *v = malloc((arr->n ? arr->n : 1) * sizeof *v);
    if (!v)
        return -1;
    for (size_t i = 0; i < arr->n; i++) {
        if (arr->items[i].type != BN_TJ_NUM) {
            free(v);
            return -1;
        }
        v[i] = (int32_t)arr->items[i].num;
    }
    *ids = v;
    *n = arr->n;
    return 0;
}

int bn_tj_unhex(const char *hex, size_t hexlen, uint8_t **out, size_t *n)
{
    if (hexlen % 2)
        return -1;
    uint8_t *o = malloc(hexlen / 2 + 1);
    if (!o)
        return -1;
    for (size_t i = 0; i < hexlen / 2; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = hex[2 * i + (size_t)k];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= c - '0';
            else if (c >= 'a' && c <= 'f')
                v |= c - 'a' + 10;
            else if (c >= 'A' && c <= 'F')
                v |= c - 'A' + 10;
            else {
                free(o);
                return -1;
            }
        }
        o[i] = (uint8_t)v;
    }
    *out = o;
    *n = hexlen / 2;
    return 0;
}
