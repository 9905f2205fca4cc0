/* JSON writer (see json.h); it appends to a bn_buf (base/buf.h). */
#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bn_json_escape(bn_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0;
    while (i < n) {
        /* copy the longest run that needs no escaping in one go */
        size_t run = i;
        while (run < n) {
            unsigned char c = (unsigned char)s[run];
            if (c < 0x20 || c == '"' || c == '\\')
                break;
            if (c < 0x80) {
                run++;
                continue;
            }
            size_t k = bn_json_utf8_len(s + run, n - run);
            if (!k)
                break;
            run += k;
        }
        bn_buf_append(b, s + i, run - i);
        i = run;
        if (i >= n)
            break;
        unsigned char c = (unsigned char)s[i];
        char esc[7] = {'\\', 0};
        size_t elen = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            if (c < 0x20) {
                memcpy(esc + 1, "u00", 3);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                elen = 6;
            } else {
                /* an invalid UTF-8 byte: U+FFFD keeps the output valid */
                bn_buf_append(b, "\xEF\xBF\xBD", 3);
                i++;
                continue;
            }
        }
        bn_buf_append(b, esc, elen);
        i++;
    }
}

/* Writes the separator a new value needs; false when the call is misplaced. */
static bool begin_value(bn_jw *w)
{
    if (w->bad)
        return false;
    if (w->depth == 0)
        return true;
    int d = w->depth - 1;
    if (w->kind[d] == 'o') {
        if (!w->after_key) {
            w->bad = true;
            return false;
        }
        w->after_key = false;
        return true;
    }
    if (w->has_items[d])
        bn_buf_append(w->out, ",", 1);
    w->has_items[d] = true;
    return true;
}

static void open_container(bn_jw *w, char kind)
{
    if (!begin_value(w))
        return;
    if (w->depth >= BN_JW_MAX_DEPTH) {
        w->bad = true;
        return;
    }
    w->kind[w->depth] = kind;
    w->has_items[w->depth] = false;
    w->depth++;
    bn_buf_append(w->out, kind == 'o' ? "{" : "[", 1);
}

void bn_jw_obj(bn_jw *w) { open_container(w, 'o'); }
void bn_jw_arr(bn_jw *w) { open_container(w, 'a'); }

void bn_jw_end(bn_jw *w)
{
    if (w->bad || w->depth == 0 || w->after_key) {
        w->bad = true;
        return;
    }
    w->depth--;
    bn_buf_append(w->out, w->kind[w->depth] == 'o' ? "}" : "]", 1);
}

void bn_jw_keyn(bn_jw *w, const char *key, size_t n)
{
    if (w->bad || w->depth == 0 || w->kind[w->depth - 1] != 'o' || w->after_key) {
        w->bad = true;
        return;
    }
    if (w->has_items[w->depth - 1])
        bn_buf_append(w->out, ",", 1);
    w->has_items[w->depth - 1] = true;
    bn_buf_append(w->out, "\"", 1);
    bn_json_escape(w->out, key, n);
    bn_buf_append(w->out, "\":", 2);
    w->after_key = true;
}

void bn_jw_key(bn_jw *w, const char *key) { bn_jw_keyn(w, key, strlen(key)); }

void bn_jw_strn(bn_jw *w, const char *s, size_t n)
{
    if (!begin_value(w))
        return;
    bn_buf_append(w->out, "\"", 1);
    bn_json_escape(w->out, s, n);
    bn_buf_append(w->out, "\"", 1);
}

void bn_jw_str(bn_jw *w, const char *s) { bn_jw_strn(w, s, strlen(s)); }

void bn_jw_int(bn_jw *w, int64_t v)
{
    if (begin_value(w))
        bn_buf_printf(w->out, "%" PRId64, v);
}

void bn_jw_num(bn_jw *w, double v)
{
    if (!begin_value(w))
        return;
    if (!isfinite(v)) {
        bn_buf_append(w->out, "null", 4);
        return;
    }
    /* the shortest %.Ng that reads back as the same double */
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    bn_buf_puts(w->out, tmp);
    /* keep a fractional marker so the reader sees a non-integer literal again */
    if (!strpbrk(tmp, ".eE"))
        bn_buf_append(w->out, ".0", 2);
}

void bn_jw_bool(bn_jw *w, bool v)
{
    if (begin_value(w))
        bn_buf_puts(w->out, v ? "true" : "false");
}

void bn_jw_null(bn_jw *w)
{
    if (begin_value(w))
        bn_buf_append(w->out, "null", 4);
}

void bn_jw_value(bn_jw *w, const bn_json *v)
{
    switch (v->type) {
    case BN_JSON_NULL: bn_jw_null(w); break;
    case BN_JSON_BOOL: bn_jw_bool(w, v->boolean); break;
    case BN_JSON_NUMBER:
        if (v->is_int)
            bn_jw_int(w, v->i64);
        else
            bn_jw_num(w, v->num);
        break;
    case BN_JSON_STRING: bn_jw_strn(w, v->str, v->len); break;
    case BN_JSON_ARRAY:
    case BN_JSON_OBJECT:
        if (v->type == BN_JSON_OBJECT)
            bn_jw_obj(w);
        else
            bn_jw_arr(w);
        for (const bn_json *c = v->child; c && !w->bad; c = c->next) {
            if (v->type == BN_JSON_OBJECT)
                bn_jw_keyn(w, c->key, c->key_len);
            bn_jw_value(w, c);
        }
        bn_jw_end(w);
        break;
    }
}
