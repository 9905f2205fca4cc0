/* Growable buffers: bytes (bn_buf) and token ids (bn_idvec). The one copy of each, under every
 * layer (the tokenizer, the engine, the JSON writer and the entry points all append to these).
 *
 * bn_buf keeps going after a failed allocation: the first failure sets `oom`, later appends do
 * nothing, and the owner checks `oom` once at the end (bn_buf_check turns it into an error).
 * That keeps long chains of appends (a JSON answer) free of per-call error handling. */
#ifndef BN_BUF_H
#define BN_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct bn_buf {
    char *data; /* NUL-terminated when not NULL */
    size_t len, cap;
    bool oom; /* an allocation failed: contents are truncated, stop using it */
} bn_buf;

void bn_buf_append(bn_buf *b, const void *data, size_t n);
void bn_buf_puts(bn_buf *b, const char *s);
void bn_buf_printf(bn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* bn_buf_append, then bn_buf_check: for callers that handle errors per call. */
int bn_buf_add(bn_buf *b, const void *data, size_t n, bn_err *err);
/* Empties the buffer, keeping its memory (and clearing oom). */
void bn_buf_clear(bn_buf *b);
void bn_buf_free(bn_buf *b);
/* 0, or -1 + an out-of-memory error when an append failed since the last clear. */
int bn_buf_check(const bn_buf *b, bn_err *err);

typedef struct bn_idvec {
    int32_t *v;
    size_t n, cap;
} bn_idvec;

/* 0, or -1 + an out-of-memory error (the vector is unchanged). */
int bn_idvec_push(bn_idvec *a, int32_t id, bn_err *err);
void bn_idvec_free(bn_idvec *a);

#endif
