/* GGUF v3 writer (see gguf_writer.h). Metadata and the tensor table are built in memory (they
 * are small: the Llama-3 vocabulary is ~8 MB); tensor data goes straight to the FILE. */
#include "gguf_writer.h"

#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "GGUF is little endian; the array paths below copy host-order elements"
#endif

typedef struct wtensor {
    char *name;
    uint32_t type, n_dims;
    uint64_t ne[BN_GGUF_MAX_DIMS];
    uint64_t offset, nbytes;
} wtensor;

struct bn_gguf_writer {
    bn_buf kv;
    uint64_t n_kv;
    wtensor *tensors;
    uint64_t n_tensors, cap_tensors;
    uint32_t alignment;
    uint64_t data_end; /* end of the last tensor, relative to the data section */
    bn_err first_err;  /* first error while adding; reported by begin() */
    int failed;
    /* streaming state */
    FILE *f;
    uint64_t cur;      /* tensor being written */
    uint64_t cur_done; /* bytes of it written so far */
    uint64_t pos;      /* bytes written to f */
};

static void fail_add(bn_gguf_writer *w, bn_err_code code, const char *what)
{
    if (!w->failed)
        bn_fail(&w->first_err, code, "%s", what);
    w->failed = 1;
}

static void put(bn_gguf_writer *w, bn_buf *b, const void *p, size_t n)
{
    if (w->failed)
        return;
    bn_buf_append(b, p, n);
    if (b->oom)
        fail_add(w, BN_E_NOMEM, "out of memory building GGUF metadata");
}

static void put_le(bn_gguf_writer *w, bn_buf *b, uint64_t v, size_t n)
{
    uint8_t t[8];
    for (size_t i = 0; i < n; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    put(w, b, t, n);
}

static void put_strn(bn_gguf_writer *w, bn_buf *b, const char *s, uint64_t n)
{
    put_le(w, b, n, 8);
    put(w, b, s, (size_t)n);
}

static void put_key(bn_gguf_writer *w, const char *key, bn_gguf_type t)
{
    put_strn(w, &w->kv, key, strlen(key));
    put_le(w, &w->kv, (uint32_t)t, 4);
    w->n_kv++;
}

bn_gguf_writer *bn_gguf_writer_new(void)
{
    bn_gguf_writer *w = calloc(1, sizeof *w);
    if (w)
        w->alignment = BN_GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void bn_gguf_writer_free(bn_gguf_writer *w)
{
    if (!w)
        return;
    for (uint64_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->tensors);
    bn_buf_free(&w->kv);
    free(w);
}

static void add_scalar(bn_gguf_writer *w, const char *key, bn_gguf_type t, uint64_t bits, size_t n)
{
    put_key(w, key, t);
    put_le(w, &w->kv, bits, n);
}

void bn_gguf_writer_add_u8(bn_gguf_writer *w, const char *key, uint8_t v)
{
    add_scalar(w, key, BN_GGUF_U8, v, 1);
}

void bn_gguf_writer_add_i8(bn_gguf_writer *w, const char *key, int8_t v)
{
    add_scalar(w, key, BN_GGUF_I8, (uint8_t)v, 1);
}

void bn_gguf_writer_add_u16(bn_gguf_writer *w, const char *key, uint16_t v)
{
    add_scalar(w, key, BN_GGUF_U16, v, 2);
}

void bn_gguf_writer_add_i16(bn_gguf_writer *w, const char *key, int16_t v)
{
    add_scalar(w, key, BN_GGUF_I16, (uint16_t)v, 2);
}

void bn_gguf_writer_add_u32(bn_gguf_writer *w, const char *key, uint32_t v)
{
    add_scalar(w, key, BN_GGUF_U32, v, 4);
    /* the reader takes the data alignment from this key, so the writer must lay out with it */
    if (strcmp(key, "general.alignment") == 0) {
        if (v == 0 || (v & (v - 1)) || v > (1u << 20) || w->n_tensors)
            fail_add(w, BN_E_INPUT,
                     "general.alignment must be a power of two up to 1 MiB, set before "
                     "any tensor");
        else
            w->alignment = v;
    }
}

void bn_gguf_writer_add_i32(bn_gguf_writer *w, const char *key, int32_t v)
{
    add_scalar(w, key, BN_GGUF_I32, (uint32_t)v, 4);
}

void bn_gguf_writer_add_u64(bn_gguf_writer *w, const char *key, uint64_t v)
{
    add_scalar(w, key, BN_GGUF_U64, v, 8);
}

void bn_gguf_writer_add_i64(bn_gguf_writer *w, const char *key, int64_t v)
{
    add_scalar(w, key, BN_GGUF_I64, (uint64_t)v, 8);
}

void bn_gguf_writer_add_f32(bn_gguf_writer *w, const char *key, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    add_scalar(w, key, BN_GGUF_F32, u, 4);
}

void bn_gguf_writer_add_f64(bn_gguf_writer *w, const char *key, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    add_scalar(w, key, BN_GGUF_F64, u, 8);
}

void bn_gguf_writer_add_bool(bn_gguf_writer *w, const char *key, int v)
{
    add_scalar(w, key, BN_GGUF_BOOL, v ? 1 : 0, 1);
}

void bn_gguf_writer_add_str(bn_gguf_writer *w, const char *key, const char *v)
{
    put_key(w, key, BN_GGUF_STRING);
    put_strn(w, &w->kv, v, strlen(v));
}

void bn_gguf_writer_add_arr(bn_gguf_writer *w, const char *key, bn_gguf_type elem, const void *data,
                            uint64_t n)
{
    size_t es = bn_gguf_scalar_size(elem);
    if (!es) {
        fail_add(w, BN_E_INPUT, "bn_gguf_writer_add_arr: element type must be a number or bool");
        return;
    }
    put_key(w, key, BN_GGUF_ARRAY);
    put_le(w, &w->kv, (uint32_t)elem, 4);
    put_le(w, &w->kv, n, 8);
    put(w, &w->kv, data, (size_t)(n * es));
}

void bn_gguf_writer_add_arr_str(bn_gguf_writer *w, const char *key, const char *const *v,
                                uint64_t n)
{
    put_key(w, key, BN_GGUF_ARRAY);
    put_le(w, &w->kv, BN_GGUF_STRING, 4);
    put_le(w, &w->kv, n, 8);
    for (uint64_t i = 0; i < n; i++)
        put_strn(w, &w->kv, v[i], strlen(v[i]));
}

void bn_gguf_writer_add_arr_strv(bn_gguf_writer *w, const char *key, const bn_gguf_str *v,
                                 uint64_t n)
{
    put_key(w, key, BN_GGUF_ARRAY);
    put_le(w, &w->kv, BN_GGUF_STRING, 4);
    put_le(w, &w->kv, n, 8);
    for (uint64_t i = 0; i < n; i++)
        put_strn(w, &w->kv, v[i].ptr, v[i].len);
}

void bn_gguf_writer_add_kv(bn_gguf_writer *w, const char *key, const bn_gguf_kv *kv)
{
    if (!key)
        key = kv->key;
    switch (kv->type) {
    case BN_GGUF_U8: bn_gguf_writer_add_u8(w, key, (uint8_t)kv->num.u64); break;
    case BN_GGUF_I8: bn_gguf_writer_add_i8(w, key, (int8_t)kv->num.i64); break;
    case BN_GGUF_U16: bn_gguf_writer_add_u16(w, key, (uint16_t)kv->num.u64); break;
    case BN_GGUF_I16: bn_gguf_writer_add_i16(w, key, (int16_t)kv->num.i64); break;
    case BN_GGUF_U32: bn_gguf_writer_add_u32(w, key, (uint32_t)kv->num.u64); break;
    case BN_GGUF_I32: bn_gguf_writer_add_i32(w, key, (int32_t)kv->num.i64); break;
    case BN_GGUF_U64: bn_gguf_writer_add_u64(w, key, kv->num.u64); break;
    case BN_GGUF_I64: bn_gguf_writer_add_i64(w, key, kv->num.i64); break;
    case BN_GGUF_F32: bn_gguf_writer_add_f32(w, key, (float)kv->num.f64); break;
    case BN_GGUF_F64: bn_gguf_writer_add_f64(w, key, kv->num.f64); break;
    case BN_GGUF_BOOL: bn_gguf_writer_add_bool(w, key, kv->num.u64 != 0); break;
    case BN_GGUF_STRING:
        put_key(w, key, BN_GGUF_STRING);
        put_strn(w, &w->kv, kv->str.ptr, kv->str.len);
        break;
    case BN_GGUF_ARRAY:
        if (kv->arr_type == BN_GGUF_STRING)
            bn_gguf_writer_add_arr_strv(w, key, kv->arr_strs, kv->arr_len);
        else
            bn_gguf_writer_add_arr(w, key, kv->arr_type, kv->arr_data, kv->arr_len);
        break;
    default: fail_add(w, BN_E_INPUT, "bn_gguf_writer_add_kv: unknown value type"); break;
    }
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

uint64_t bn_gguf_writer_add_tensor(bn_gguf_writer *w, const char *name, uint32_t type,
                                   uint32_t n_dims, const uint64_t *ne)
{
    if (w->failed)
        return 0;
    if (n_dims < 1 || n_dims > BN_GGUF_MAX_DIMS) {
        fail_add(w, BN_E_INPUT, "tensor with an unsupported number of dimensions");
        return 0;
    }
    uint64_t n = 1;
    for (uint32_t d = 0; d < n_dims; d++)
        n *= ne[d];
    bn_err e;
    uint64_t nbytes = bn_ggml_nbytes(type, n, &e);
    if (!nbytes) {
        fail_add(w, e.code, e.msg);
        return 0;
    }
    if (w->n_tensors == w->cap_tensors) {
        uint64_t cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
        wtensor *t = realloc(w->tensors, cap * sizeof *t);
        if (!t) {
            fail_add(w, BN_E_NOMEM, "out of memory");
            return 0;
        }
        w->tensors = t;
        w->cap_tensors = cap;
    }
    wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) {
        fail_add(w, BN_E_NOMEM, "out of memory");
        return 0;
    }
    t->type = type;
    t->n_dims = n_dims;
    memcpy(t->ne, ne, n_dims * sizeof *ne);
    t->offset = align_up(w->data_end, w->alignment);
    t->nbytes = nbytes;
    w->data_end = t->offset + nbytes;
    w->n_tensors++;
    return nbytes;
}

static uint64_t infos_size(const bn_gguf_writer *w)
{
    uint64_t s = 0;
    for (uint64_t i = 0; i < w->n_tensors; i++)
        s += 8 + strlen(w->tensors[i].name) + 4 + 8 * (uint64_t)w->tensors[i].n_dims + 4 + 8;
    return s;
}

uint64_t bn_gguf_writer_data_offset(const bn_gguf_writer *w)
{
    return align_up(24 + w->kv.len + infos_size(w), w->alignment);
}

uint64_t bn_gguf_writer_meta_size(const bn_gguf_writer *w)
{
    return 24 + w->kv.len + infos_size(w);
}

uint64_t bn_gguf_writer_file_size(const bn_gguf_writer *w)
{
    return bn_gguf_writer_data_offset(w) + align_up(w->data_end, w->alignment);
}

static int out(bn_gguf_writer *w, const void *p, size_t n, bn_err *err)
{
    if (n && fwrite(p, 1, n, w->f) != n)
        return bn_fail(err, BN_E_IO, "write failed at byte %llu: %s", (unsigned long long)w->pos,
                       strerror(errno));
    w->pos += n;
    return 0;
}

static int out_zeros(bn_gguf_writer *w, uint64_t n, bn_err *err)
{
    static const uint8_t zeros[256];
    while (n) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (out(w, zeros, k, err))
            return -1;
        n -= k;
    }
    return 0;
}

int bn_gguf_writer_begin(bn_gguf_writer *w, FILE *f, bn_err *err)
{
    if (w->failed)
        return bn_fail(err, w->first_err.code, "%s", w->first_err.msg);
    if (w->f)
        return bn_fail(err, BN_E_INPUT, "bn_gguf_writer_begin called twice");
    bn_buf head = {0};
    put(w, &head, "GGUF", 4);
    put_le(w, &head, 3, 4);
    put_le(w, &head, w->n_tensors, 8);
    put_le(w, &head, w->n_kv, 8);
    put(w, &head, w->kv.data, w->kv.len);
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        put_strn(w, &head, t->name, strlen(t->name));
        put_le(w, &head, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_le(w, &head, t->ne[d], 8);
        put_le(w, &head, t->type, 4);
        put_le(w, &head, t->offset, 8);
    }
    if (w->failed) {
        bn_buf_free(&head);
        return bn_fail(err, w->first_err.code, "%s", w->first_err.msg);
    }
    w->f = f;
    int rc = out(w, head.data, head.len, err);
    bn_buf_free(&head);
    if (rc || out_zeros(w, bn_gguf_writer_data_offset(w) - w->pos, err))
        return -1;
    w->cur = 0;
    w->cur_done = 0;
    return 0;
}

int bn_gguf_writer_data(bn_gguf_writer *w, const void *data, size_t n, bn_err *err)
{
    const uint8_t *p = data;
    if (!w->f)
        return bn_fail(err, BN_E_INPUT, "bn_gguf_writer_data before begin");
    while (n) {
        if (w->cur >= w->n_tensors)
            return bn_fail(err, BN_E_INPUT, "%zu bytes of tensor data beyond the last tensor", n);
        const wtensor *t = &w->tensors[w->cur];
        uint64_t room = t->nbytes - w->cur_done;
        size_t k = n < room ? n : (size_t)room;
        if (out(w, p, k, err))
            return -1;
        p += k;
        n -= k;
        w->cur_done += k;
        if (w->cur_done == t->nbytes) {
            /* pad up to the next tensor (or the end of the data section) */
            uint64_t next = align_up(t->offset + t->nbytes, w->alignment);
            if (out_zeros(w, next - (t->offset + t->nbytes), err))
                return -1;
            w->cur++;
            w->cur_done = 0;
        }
    }
    return 0;
}

int bn_gguf_writer_finish(bn_gguf_writer *w, bn_err *err)
{
    if (!w->f)
        return bn_fail(err, BN_E_INPUT, "bn_gguf_writer_finish before begin");
    if (w->cur < w->n_tensors)
        return bn_fail(err, BN_E_INPUT, "tensor '%s' got %llu of its %llu bytes",
                       w->tensors[w->cur].name, (unsigned long long)w->cur_done,
                       (unsigned long long)w->tensors[w->cur].nbytes);
    if (fflush(w->f) != 0)
        return bn_fail(err, BN_E_IO, "write failed: %s", strerror(errno));
    return 0;
}
