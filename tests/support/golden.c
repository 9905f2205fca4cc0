/* Golden-file reader: a recursive scanner over the JSON text that keeps the fields of
 * bn_golden and skips everything else. */
#include "golden.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct scanner {
    const char *begin, *p, *end;
    char *msg;
    size_t msg_len;
    int failed;
} scanner;

static int scan_fail(scanner *s, const char *fmt, ...)
{
    if (!s->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->msg, s->msg_len, fmt, ap);
        va_end(ap);
    }
    s->failed = 1;
    return -1;
}

static void ws(scanner *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

static int expect(scanner *s, char ch)
{
    ws(s);
    if (s->p >= s->end || *s->p != ch)
        return scan_fail(s, "expected '%c' at byte %td", ch, s->p - s->begin);
    s->p++;
    return 0;
}

/* A string's raw bytes (escapes left in place: keys here have none). */
static int string(scanner *s, const char **str, size_t *len)
{
    if (expect(s, '"'))
        return -1;
    const char *b = s->p;
    while (s->p < s->end && *s->p != '"')
        s->p += (*s->p == '\\' && s->p + 1 < s->end) ? 2 : 1;
    if (s->p >= s->end)
        return scan_fail(s, "unterminated string");
    *str = b;
    *len = (size_t)(s->p - b);
    s->p++;
    return 0;
}

static int number(scanner *s, double *v)
{
    ws(s);
    char buf[64];
    size_t n = 0;
    while (s->p < s->end && n + 1 < sizeof buf && strchr("+-0123456789.eE", *s->p))
        buf[n++] = *s->p++;
    buf[n] = 0;
    char *endp;
    *v = strtod(buf, &endp);
    if (n == 0 || *endp)
        return scan_fail(s, "bad number '%s'", buf);
    return 0;
}

static int skip_value(scanner *s, int depth)
{
    ws(s);
    if (s->p >= s->end || depth > 64)
        return scan_fail(s, "truncated or too deep");
    const char *str;
    size_t len;
    double d;
    switch (*s->p) {
    case '"':
        return string(s, &str, &len);
    case '{':
    case '[': {
        const char close = *s->p == '{' ? '}' : ']';
        const int obj = close == '}';
        s->p++;
        ws(s);
        if (s->p < s->end && *s->p == close) {
            s->p++;
            return 0;
        }
        for (;;) {
            if (obj && (string(s, &str, &len) || expect(s, ':')))
                return -1;
            if (skip_value(s, depth + 1))
                return -1;
            ws(s);
            if (s->p < s->end && *s->p == ',') {
                s->p++;
                continue;
            }
            return expect(s, close);
        }
    }
    case 't':
    case 'f':
    case 'n':
        while (s->p < s->end && *s->p >= 'a' && *s->p <= 'z')
            s->p++;
        return 0;
    default:
        return number(s, &d);
    }
}

/* A flat array of numbers, appended to a growing buffer of doubles. */
static int numbers(scanner *s, double **v, size_t *n, size_t *cap)
{
    if (expect(s, '['))
        return -1;
    ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return 0;
    }
    for (;;) {
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 1024;
            double *nv = realloc(*v, *cap * sizeof **v);
            if (!nv)
                return scan_fail(s, "out of memory");
            *v = nv;
        }
        if (number(s, &(*v)[*n]))
            return -1;
        (*n)++;
        ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        return expect(s, ']');
    }
}

/* A number array as doubles, allocated for at least one element. */
static int number_array(scanner *s, double **out, size_t *count)
{
    size_t cap = 0;
    *out = NULL;
    *count = 0;
    if (numbers(s, out, count, &cap)) {
        free(*out);
        return -1;
    }
    return 0;
}

static int int_array(scanner *s, int32_t **out, size_t *count)
{
    double *v;
    if (number_array(s, &v, count))
        return -1;
    *out = malloc((*count ? *count : 1) * sizeof **out);
    for (size_t i = 0; *out && i < *count; i++)
        (*out)[i] = (int32_t)v[i];
    free(v);
    return *out ? 0 : scan_fail(s, "out of memory");
}

static int float_array(scanner *s, float **out, size_t *count)
{
    double *v;
    if (number_array(s, &v, count))
        return -1;
    *out = malloc((*count ? *count : 1) * sizeof **out);
    for (size_t i = 0; *out && i < *count; i++)
        (*out)[i] = (float)v[i];
    free(v);
    return *out ? 0 : scan_fail(s, "out of memory");
}

/* An array of equally long number arrays: rows and their length. */
static int matrix(scanner *s, float **out, size_t *rows, size_t *cols)
{
    double *v = NULL;
    size_t n = 0, cap = 0;
    *rows = 0;
    *cols = 0;
    if (expect(s, '['))
        return -1;
    ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
    } else {
        for (;;) {
            size_t before = n;
            if (numbers(s, &v, &n, &cap))
                goto fail;
            if (*rows && n - before != *cols) {
                scan_fail(s, "ragged matrix: row %zu has %zu values, not %zu", *rows, n - before,
                     *cols);
                goto fail;
            }
            *cols = n - before;
            (*rows)++;
            ws(s);
            if (s->p < s->end && *s->p == ',') {
                s->p++;
                continue;
            }
            if (expect(s, ']'))
                goto fail;
            break;
        }
    }
    *out = malloc((n ? n : 1) * sizeof **out);
    if (!*out) {
        scan_fail(s, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        (*out)[i] = (float)v[i];
    free(v);
    return 0;
fail:
    free(v);
    return -1;
}

static int key_is(const char *k, size_t len, const char *want)
{
    return strlen(want) == len && memcmp(k, want, len) == 0;
}

int bn_golden_load(const char *path, bn_golden *g, char *msg, size_t msg_len)
{
    memset(g, 0, sizeof *g);
    size_t len;
    char *text = (char *)bn_test_read_file(path, &len);
    if (!text) {
        snprintf(msg, msg_len, "%s: cannot read", path);
        return -1;
    }
    scanner s = {text, text, text + len, msg, msg_len, 0};
    size_t pl_rows = 0, pl_cols = 0, gl_rows = 0, gl_cols = 0, n_margin = 0;
    double d;
    if (expect(&s, '{'))
        goto out;
    for (;;) {
        const char *k = NULL;
        size_t klen = 0;
        if (string(&s, &k, &klen) || expect(&s, ':'))
            goto out;
        if (key_is(k, klen, "n_vocab")) {
            if (number(&s, &d))
                goto out;
            g->n_vocab = (uint32_t)d;
        } else if (key_is(k, klen, "n_batch")) {
            if (number(&s, &d))
                goto out;
            g->n_batch = (uint32_t)d;
        } else if (key_is(k, klen, "prompt_ids")) {
            if (int_array(&s, &g->prompt_ids, &g->n_prompt))
                goto out;
        } else if (key_is(k, klen, "greedy_ids")) {
            if (int_array(&s, &g->greedy_ids, &g->n_greedy))
                goto out;
        } else if (key_is(k, klen, "greedy_top2_margin")) {
            if (float_array(&s, &g->greedy_margin, &n_margin))
                goto out;
        } else if (key_is(k, klen, "prompt_logits")) {
            if (matrix(&s, &g->prompt_logits, &pl_rows, &pl_cols))
                goto out;
        } else if (key_is(k, klen, "greedy_logits")) {
            if (matrix(&s, &g->greedy_logits, &gl_rows, &gl_cols))
                goto out;
        } else if (skip_value(&s, 0)) {
            goto out;
        }
        ws(&s);
        if (s.p < s.end && *s.p == ',') {
            s.p++;
            continue;
        }
        if (expect(&s, '}'))
            goto out;
        break;
    }
    if (!g->n_vocab || !g->prompt_ids || !g->greedy_ids || !g->prompt_logits ||
        !g->greedy_logits)
        scan_fail(&s, "missing field (n_vocab, prompt_ids, greedy_ids or *_logits)");
    else if (pl_rows != g->n_prompt || pl_cols != g->n_vocab || gl_rows != g->n_greedy ||
             gl_cols != g->n_vocab)
        scan_fail(&s, "logit matrices %zux%zu and %zux%zu do not match %zu prompt ids, %zu greedy "
                 "ids, %u vocab", pl_rows, pl_cols, gl_rows, gl_cols, g->n_prompt,
             g->n_greedy, g->n_vocab);
    else if (g->greedy_margin && n_margin != g->n_greedy)
        scan_fail(&s, "%zu margins for %zu greedy ids", n_margin, g->n_greedy);
out:
    free(text);
    if (s.failed) {
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%s", msg);
        snprintf(msg, msg_len, "%s: %s", path, tmp);
        bn_golden_free(g);
        return -1;
    }
    return 0;
}

void bn_golden_free(bn_golden *g)
{
    free(g->prompt_ids);
    free(g->greedy_ids);
    free(g->prompt_logits);
    free(g->greedy_logits);
    free(g->greedy_margin);
    memset(g, 0, sizeof *g);
}
