/* Growable buffers (see buf.h). */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool buf_reserve(bn_buf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->oom = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void bn_buf_append(bn_buf *b, const void *data, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = 0;
}

void bn_buf_puts(bn_buf *b, const char *s) { bn_buf_append(b, s, strlen(s)); }

void bn_buf_printf(bn_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void bn_buf_clear(bn_buf *b)
{
    b->len = 0;
    b->oom = false;
    if (b->data)
        b->data[0] = 0;
}

void bn_buf_free(bn_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

int bn_buf_check(const bn_buf *b, bn_err *err)
{
    return b->oom ? bn_fail(err, BN_E_NOMEM, "out of memory") : 0;
}

int bn_buf_add(bn_buf *b, const void *data, size_t n, bn_err *err)
{
    bn_buf_append(b, data, n);
    return bn_buf_check(b, err);
}

int bn_idvec_push(bn_idvec *a, int32_t id, bn_err *err)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        int32_t *v = realloc(a->v, cap * sizeof *v);
        if (!v)
            return bn_fail(err, BN_E_NOMEM, "out of memory");
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = id;
    return 0;
}

void bn_idvec_free(bn_idvec *a)
{
    free(a->v);
    memset(a, 0, sizeof *a);
}
