/* Strict JSON parser (see json.h for the policy). Recursive descent over a bounded depth; nodes
 * and decoded strings live in an arena freed at once. */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Hard ceiling on max_depth: recursion uses ~100 bytes of stack per level. */
#define JSON_DEPTH_CEILING 1024
/* RFC-valid numbers can be arbitrarily long; nobody needs more than this many characters. */
#define JSON_NUMBER_MAX    1024

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_block;

struct bn_json_doc {
    arena_block *blocks;
    bn_json *root;
};

typedef struct parser {
    const unsigned char *s;
    size_t n, i;
    int depth, max_depth;
    bn_json_doc *doc;
    bn_err *err;
} parser;

static void *arena_alloc(bn_json_doc *doc, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    arena_block *b = doc->blocks;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > 65536 ? size : 65536;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = doc->blocks;
        doc->blocks = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    return p;
}

static int fail_at(parser *p, size_t at, const char *what)
{
    return bn_fail(p->err, BN_E_INPUT, "byte %zu: %s", at, what);
}

static void skip_ws(parser *p)
{
    while (p->i < p->n) {
        unsigned char c = p->s[p->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->i++;
    }
}

static bn_json *new_node(parser *p, bn_json_type t)
{
    bn_json *v = arena_alloc(p->doc, sizeof *v);
    if (!v) {
        fail_at(p, p->i, "out of memory");
        return NULL;
    }
    memset(v, 0, sizeof *v);
    v->type = t;
    v->pos = p->i;
    return v;
}

static int hex4(const unsigned char *s, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned c = s[k], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(unsigned char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at s[0..n) (Unicode Table 3-7), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    if (!n)
        return 0;
    unsigned c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        if (c == 0xED)
            hi = 0x9F; /* UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        if (c == 0xF4)
            hi = 0x8F; /* > U+10FFFF */
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xBF)
            return 0;
    return len;
}

size_t bn_json_utf8_len(const char *s, size_t n) { return utf8_seq((const unsigned char *)s, n); }

size_t bn_json_utf8_prefix(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_seq((const unsigned char *)s + i, n - i);
        if (!k)
            break;
        i += k;
    }
    return i;
}

/* Parses the string starting at the opening quote; decodes into the arena. */
static int parse_string(parser *p, const char **out, size_t *out_len)
{
    size_t start = ++p->i, end = start;
    /* find the closing quote first so the decoded copy can be sized (it is never longer) */
    while (end < p->n && p->s[end] != '"')
        end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->n)
        return fail_at(p, start - 1, "unterminated string");
    unsigned char *o = arena_alloc(p->doc, end - start + 1);
    if (!o)
        return fail_at(p, start, "out of memory");
    size_t k = 0, i = start;
    while (i < end) {
        unsigned char c = p->s[i];
        if (c < 0x20)
            return fail_at(p, i, "control character in string (must be escaped)");
        if (c == '\\') {
            unsigned char e = p->s[i + 1];
            const char *simple = strchr("\"\\/bfnrt", e);
            if (e && simple) {
                static const char map[] = "\"\\/\b\f\n\r\t";
                o[k++] = (unsigned char)map[simple - "\"\\/bfnrt"];
                i += 2;
                continue;
            }
            if (e != 'u')
                return fail_at(p, i, "invalid escape in string");
            unsigned cp, lo;
            if (end - i < 6 || hex4(p->s + i + 2, &cp))
                return fail_at(p, i, "invalid \\u escape (needs 4 hex digits)");
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return fail_at(p, i, "unpaired low surrogate in \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - i < 12 || p->s[i + 6] != '\\' || p->s[i + 7] != 'u' ||
                    hex4(p->s + i + 8, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return fail_at(p, i, "high surrogate not followed by a low surrogate escape");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            k += put_utf8(o + k, cp);
            i += 6;
            continue;
        }
        size_t len = utf8_seq(p->s + i, end - i);
        if (!len)
            return fail_at(p, i, "invalid UTF-8 in string");
        memcpy(o + k, p->s + i, len);
        k += len;
        i += len;
    }
    o[k] = 0;
    p->i = end + 1;
    *out = (const char *)o;
    *out_len = k;
    return 0;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int parse_number(parser *p, bn_json *v)
{
    size_t start = p->i, i = p->i;
    bool integral = true;
    if (i < p->n && p->s[i] == '-')
        i++;
    if (i >= p->n || !is_digit(p->s[i]))
        return fail_at(p, start, "invalid number (expected a digit)");
    if (p->s[i] == '0') {
        i++;
        if (i < p->n && is_digit(p->s[i]))
            return fail_at(p, start, "invalid number (leading zero)");
    } else {
        while (i < p->n && is_digit(p->s[i]))
            i++;
    }
    if (i < p->n && p->s[i] == '.') {
        integral = false;
        i++;
        if (i >= p->n || !is_digit(p->s[i]))
            return fail_at(p, i, "invalid number (expected a digit after '.')");
        while (i < p->n && is_digit(p->s[i]))
            i++;
    }
    if (i < p->n && (p->s[i] == 'e' || p->s[i] == 'E')) {
        integral = false;
        i++;
        if (i < p->n && (p->s[i] == '+' || p->s[i] == '-'))
            i++;
        if (i >= p->n || !is_digit(p->s[i]))
            return fail_at(p, i, "invalid number (expected a digit in the exponent)");
        while (i < p->n && is_digit(p->s[i]))
            i++;
    }
    size_t len = i - start;
    if (len > JSON_NUMBER_MAX)
        return fail_at(p, start, "number too long (over 1024 characters)");
    char buf[JSON_NUMBER_MAX + 1];
    memcpy(buf, p->s + start, len);
    buf[len] = 0;
    errno = 0;
    double d = strtod(buf, NULL);
    if (isinf(d))
        return fail_at(p, start, "number out of range (overflows a double)");
    v->num = d;
    if (integral && len <= 20) {
        /* exact int64 when it fits; the double above may have rounded */
        const char *q = buf;
        bool neg = *q == '-';
        q += neg;
        uint64_t mag = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        bool fits = true;
        for (; *q; q++) {
            unsigned dgt = (unsigned)(*q - '0');
            if (mag > (limit - dgt) / 10) {
                fits = false;
                break;
            }
            mag = mag * 10 + dgt;
        }
        if (fits) {
            v->is_int = true;
            v->i64 = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag)
                         : (int64_t)mag;
        }
    }
    p->i = i;
    return 0;
}

static int key_cmp(const void *a, const void *b)
{
    const bn_json *x = *(const bn_json *const *)a, *y = *(const bn_json *const *)b;
    if (x->key_len != y->key_len)
        return x->key_len < y->key_len ? -1 : 1;
    int c = memcmp(x->key, y->key, x->key_len);
    if (c)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int dup_error(parser *p, const bn_json *m)
{
    char shown[48];
    size_t k = 0;
    for (size_t j = 0; j < m->key_len && k < sizeof shown - 4; j++) {
        unsigned char c = (unsigned char)m->key[j];
        shown[k++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (m->key_len > k)
        memcpy(shown + k, "...", 3), k += 3;
    shown[k] = 0;
    return bn_fail(p->err, BN_E_INPUT, "byte %zu: duplicate key \"%s\" in object", m->pos, shown);
}

/* Duplicate keys are refused (json.h). Small objects: pairwise; larger: sort a copy. */
static int check_duplicates(parser *p, bn_json *obj)
{
    if (obj->len < 2)
        return 0;
    if (obj->len <= 8) {
        for (bn_json *a = obj->child; a; a = a->next)
            for (bn_json *b = a->next; b; b = b->next)
                if (a->key_len == b->key_len && !memcmp(a->key, b->key, a->key_len))
                    return dup_error(p, b);
        return 0;
    }
    bn_json **v = malloc(obj->len * sizeof *v);
    if (!v)
        return fail_at(p, obj->pos, "out of memory");
    size_t k = 0;
    for (bn_json *a = obj->child; a; a = a->next)
        v[k++] = a;
    qsort(v, k, sizeof *v, key_cmp);
    int rc = 0;
    for (size_t j = 1; j < k && !rc; j++)
        if (v[j]->key_len == v[j - 1]->key_len && !memcmp(v[j]->key, v[j - 1]->key, v[j]->key_len))
            rc = dup_error(p, v[j]);
    free(v);
    return rc;
}

static bn_json *parse_value(parser *p);

static bn_json *parse_container(parser *p, bool is_obj)
{
    bn_json *v = new_node(p, is_obj ? BN_JSON_OBJECT : BN_JSON_ARRAY);
    if (!v)
        return NULL;
    if (++p->depth > p->max_depth) {
        bn_fail(p->err, BN_E_INPUT, "byte %zu: nesting deeper than %d levels", p->i, p->max_depth);
        return NULL;
    }
    p->i++;
    bn_json **tail = &v->child;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == (is_obj ? '}' : ']')) {
        p->i++;
        p->depth--;
        return v;
    }
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        skip_ws(p);
        if (is_obj) {
            if (p->i >= p->n || p->s[p->i] != '"') {
                fail_at(p, p->i, "expected a string key in object");
                return NULL;
            }
            if (parse_string(p, &key, &key_len))
                return NULL;
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') {
                fail_at(p, p->i, "expected ':' after object key");
                return NULL;
            }
            p->i++;
        }
        bn_json *c = parse_value(p);
        if (!c)
            return NULL;
        c->key = key;
        c->key_len = key_len;
        *tail = c;
        tail = &c->next;
        v->len++;
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->i < p->n && p->s[p->i] == (is_obj ? '}' : ']')) {
            p->i++;
            break;
        }
        fail_at(p, p->i, is_obj ? "expected ',' or '}' in object" : "expected ',' or ']' in array");
        return NULL;
    }
    p->depth--;
    if (is_obj && check_duplicates(p, v))
        return NULL;
    return v;
}

static bn_json *parse_literal(parser *p, const char *word, bn_json_type t, bool b)
{
    size_t n = strlen(word);
    if (p->n - p->i < n || memcmp(p->s + p->i, word, n)) {
        fail_at(p, p->i, "invalid literal (expected true, false or null)");
        return NULL;
    }
    bn_json *v = new_node(p, t);
    if (v) {
        v->boolean = b;
        p->i += n;
    }
    return v;
}

static bn_json *parse_value(parser *p)
{
    skip_ws(p);
    if (p->i >= p->n) {
        fail_at(p, p->i, "unexpected end of input (expected a value)");
        return NULL;
    }
    unsigned char c = p->s[p->i];
    bn_json *v;
    switch (c) {
    case '{': return parse_container(p, true);
    case '[': return parse_container(p, false);
    case '"':
        v = new_node(p, BN_JSON_STRING);
        if (!v || parse_string(p, &v->str, &v->len))
            return NULL;
        return v;
    case 't': return parse_literal(p, "true", BN_JSON_BOOL, true);
    case 'f': return parse_literal(p, "false", BN_JSON_BOOL, false);
    case 'n': return parse_literal(p, "null", BN_JSON_NULL, false);
    default:
        if (c == '-' || is_digit(c)) {
            v = new_node(p, BN_JSON_NUMBER);
            if (!v || parse_number(p, v))
                return NULL;
            return v;
        }
        fail_at(p, p->i, "unexpected character (expected a value)");
        return NULL;
    }
}

bn_json_doc *bn_json_parse(const char *text, size_t len, const bn_json_opts *opts, bn_err *err)
{
    size_t max_size = opts && opts->max_size ? opts->max_size : BN_JSON_DEFAULT_SIZE;
    int max_depth = opts && opts->max_depth > 0 ? opts->max_depth : BN_JSON_DEFAULT_DEPTH;
    if (max_depth > JSON_DEPTH_CEILING)
        max_depth = JSON_DEPTH_CEILING;
    if (len > max_size) {
        bn_fail(err, BN_E_INPUT, "JSON input of %zu bytes exceeds the limit of %zu bytes", len,
                max_size);
        return NULL;
    }
    if (!text && len) {
        bn_fail(err, BN_E_INPUT, "JSON input is NULL");
        return NULL;
    }
    bn_json_doc *doc = calloc(1, sizeof *doc);
    if (!doc) {
        bn_fail(err, BN_E_NOMEM, "out of memory");
        return NULL;
    }
    parser p = {(const unsigned char *)(text ? text : ""), len, 0, 0, max_depth, doc, err};
    doc->root = parse_value(&p);
    if (doc->root) {
        skip_ws(&p);
        if (p.i != p.n) {
            fail_at(&p, p.i, "unexpected data after the JSON value");
            doc->root = NULL;
        }
    }
    if (!doc->root) {
        bn_json_free(doc);
        return NULL;
    }
    return doc;
}

void bn_json_free(bn_json_doc *doc)
{
    if (!doc)
        return;
    for (arena_block *b = doc->blocks, *nx; b; b = nx) {
        nx = b->next;
        free(b);
    }
    free(doc);
}

const bn_json *bn_json_root(const bn_json_doc *doc) { return doc ? doc->root : NULL; }

const bn_json *bn_json_get(const bn_json *v, const char *key)
{
    if (!v || v->type != BN_JSON_OBJECT)
        return NULL;
    size_t n = strlen(key);
    for (const bn_json *c = v->child; c; c = c->next)
        if (c->key_len == n && !memcmp(c->key, key, n))
            return c;
    return NULL;
}

const bn_json *bn_json_at(const bn_json *v, size_t i)
{
    if (!v || v->type != BN_JSON_ARRAY)
        return NULL;
    const bn_json *c = v->child;
    while (c && i--)
        c = c->next;
    return c;
}

const char *bn_json_type_name(bn_json_type t)
{
    static const char *names[] = {"null", "boolean", "number", "string", "array", "object"};
    return (unsigned)t < 6 ? names[t] : "?";
}

int bn_json_int_in(const bn_json *v, int64_t min, int64_t max, int64_t *out)
{
    if (!v || v->type != BN_JSON_NUMBER)
        return -1;
    int64_t x;
    if (v->is_int)
        x = v->i64;
    else if (v->num == floor(v->num) && v->num >= -9.2e18 && v->num <= 9.2e18)
        x = (int64_t)v->num;
    else
        return -1;
    if (x < min || x > max)
        return -1;
    *out = x;
    return 0;
}

bool bn_json_equal(const bn_json *a, const bn_json *b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case BN_JSON_NULL: return true;
    case BN_JSON_BOOL: return a->boolean == b->boolean;
    case BN_JSON_NUMBER:
        return a->num == b->num && a->is_int == b->is_int && (!a->is_int || a->i64 == b->i64);
    case BN_JSON_STRING: return a->len == b->len && !memcmp(a->str, b->str, a->len);
    case BN_JSON_ARRAY:
    case BN_JSON_OBJECT:
        if (a->len != b->len)
            return false;
        for (const bn_json *x = a->child, *y = b->child; x; x = x->next, y = y->next) {
            if (a->type == BN_JSON_OBJECT &&
                (x->key_len != y->key_len || memcmp(x->key, y->key, x->key_len)))
                return false;
            if (!bn_json_equal(x, y))
                return false;
        }
        return true;
    }
    return false;
}
