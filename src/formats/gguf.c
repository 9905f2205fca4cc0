/* GGUF v3 reader. Every read goes through a bounds-checked cursor; counts are checked against
 * the bytes left, and tables grow only as entries actually parse, so a claimed count never
 * drives an allocation. */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct cursor {
    const uint8_t *base;
    size_t size;
    size_t pos;
} cursor;

static size_t left(const cursor *c) { return c->size - c->pos; }

static int need(cursor *c, uint64_t n, const char *what, bn_err *err)
{
    if (n > left(c))
        return bn_fail(err, BN_E_FORMAT,
                       "truncated: %s needs %llu bytes at offset %zu, file has %zu left", what,
                       (unsigned long long)n, c->pos, left(c));
    return 0;
}

static int read_bytes(cursor *c, void *dst, size_t n, const char *what, bn_err *err)
{
    if (need(c, n, what, err))
        return -1;
    memcpy(dst, c->base + c->pos, n);
    c->pos += n;
    return 0;
}

static int read_u32(cursor *c, uint32_t *v, const char *what, bn_err *err)
{
    uint8_t b[4];
    if (read_bytes(c, b, 4, what, err))
        return -1;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return 0;
}

static int read_u64(cursor *c, uint64_t *v, const char *what, bn_err *err)
{
    uint32_t lo, hi;
    if (read_u32(c, &lo, what, err) || read_u32(c, &hi, what, err))
        return -1;
    *v = (uint64_t)hi << 32 | lo;
    return 0;
}

static int read_str(cursor *c, bn_gguf_str *s, const char *what, bn_err *err)
{
    uint64_t len;
    if (read_u64(c, &len, what, err))
        return -1;
    if (len > left(c))
        return bn_fail(err, BN_E_FORMAT,
                       "%s: string length %llu at offset %zu runs past the end of the file "
                       "(%zu bytes left)",
                       what, (unsigned long long)len, c->pos - 8, left(c));
    s->ptr = (const char *)c->base + c->pos;
    s->len = len;
    c->pos += len;
    return 0;
}

static char *dup_str(bn_gguf_str s)
{
    char *z = malloc(s.len + 1);
    if (z) {
        memcpy(z, s.ptr, s.len);
        z[s.len] = 0;
    }
    return z;
}

bool bn_gguf_str_eq(bn_gguf_str s, const char *z)
{
    size_t n = strlen(z);
    return s.len == n && memcmp(s.ptr, z, n) == 0;
}

const char *bn_gguf_type_name(bn_gguf_type t)
{
    static const char *names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                  "bool", "string", "array", "u64", "i64", "f64"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

size_t bn_gguf_scalar_size(uint32_t t)
{
    switch (t) {
    case BN_GGUF_U8:
    case BN_GGUF_I8:
    case BN_GGUF_BOOL: return 1;
    case BN_GGUF_U16:
    case BN_GGUF_I16: return 2;
    case BN_GGUF_U32:
    case BN_GGUF_I32:
    case BN_GGUF_F32: return 4;
    case BN_GGUF_U64:
    case BN_GGUF_I64:
    case BN_GGUF_F64: return 8;
    default: return 0;
    }
}

typedef struct type_traits {
    uint32_t id;
    const char *name;
    uint64_t block;       /* elements per block */
    uint64_t block_bytes; /* bytes per block */
} type_traits;

static const type_traits ggml_types[] = {
    {BN_GGML_F32, "F32", 1, 4},     {BN_GGML_F16, "F16", 1, 2},     {BN_GGML_Q4_0, "Q4_0", 32, 18},
    {BN_GGML_Q4_1, "Q4_1", 32, 20}, {BN_GGML_Q5_0, "Q5_0", 32, 22}, {BN_GGML_Q5_1, "Q5_1", 32, 24},
    {BN_GGML_Q8_0, "Q8_0", 32, 34}, {BN_GGML_I8, "I8", 1, 1},       {BN_GGML_I16, "I16", 1, 2},
    {BN_GGML_I32, "I32", 1, 4},     {BN_GGML_I64, "I64", 1, 8},     {BN_GGML_F64, "F64", 1, 8},
    {BN_GGML_BF16, "BF16", 1, 2},   {BN_GGML_I2_S, "I2_S", 4, 1},
};

static const type_traits *ggml_traits(uint32_t t)
{
    for (size_t i = 0; i < sizeof ggml_types / sizeof ggml_types[0]; i++)
        if (ggml_types[i].id == t)
            return &ggml_types[i];
    return NULL;
}

const char *bn_ggml_type_name(uint32_t t)
{
    const type_traits *tt = ggml_traits(t);
    return tt ? tt->name : "?";
}

uint64_t bn_ggml_nbytes(uint32_t t, uint64_t n, bn_err *err)
{
    const type_traits *tt = ggml_traits(t);
    if (!tt) {
        bn_fail(err, BN_E_FORMAT, "unknown ggml type %u", t);
        return 0;
    }
    if (n % tt->block) {
        bn_fail(err, BN_E_FORMAT, "%llu elements do not fill whole %s blocks of %llu",
                (unsigned long long)n, tt->name, (unsigned long long)tt->block);
        return 0;
    }
    /* I2_S: the packed codes are followed by the f32 per-tensor scale and 28 unused bytes. */
    const uint64_t trailer = t == BN_GGML_I2_S ? 32 : 0;
    const uint64_t blocks = n / tt->block;
    if (blocks > (UINT64_MAX - trailer) / tt->block_bytes) {
        bn_fail(err, BN_E_FORMAT, "%llu %s elements take more than 2^64 bytes",
                (unsigned long long)n, tt->name);
        return 0;
    }
    return blocks * tt->block_bytes + trailer;
}

/* ---------------------------------------------------------------- name hash tables */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static size_t table_cap(uint64_t n)
{
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    return cap;
}

/* Inserts index i (name names[i]) or returns the index of an equal name already present. */
static int64_t table_insert(uint32_t *table, size_t cap, const char *name, uint32_t i,
                            const char *(*name_of)(const bn_gguf *, uint32_t), const bn_gguf *g)
{
    size_t mask = cap - 1, slot = hash_bytes(name, strlen(name)) & mask;
    while (table[slot]) {
        if (strcmp(name_of(g, table[slot] - 1), name) == 0)
            return table[slot] - 1;
        slot = (slot + 1) & mask;
    }
    table[slot] = i + 1;
    return -1;
}

static int64_t table_find(const uint32_t *table, size_t cap, const char *name,
                          const char *(*name_of)(const bn_gguf *, uint32_t), const bn_gguf *g)
{
    if (!table)
        return -1;
    size_t mask = cap - 1, slot = hash_bytes(name, strlen(name)) & mask;
    while (table[slot]) {
        if (strcmp(name_of(g, table[slot] - 1), name) == 0)
            return table[slot] - 1;
        slot = (slot + 1) & mask;
    }
    return -1;
}

static const char *kv_name(const bn_gguf *g, uint32_t i) { return g->kv[i].key; }
static const char *tensor_name(const bn_gguf *g, uint32_t i) { return g->tensors[i].name; }

/* ---------------------------------------------------------------- parsing */

/* Grows *arr (elements of size sz, zeroed) so that index i fits. Arrays grow as entries are
 * actually parsed, so a header claiming a huge count costs nothing until the file backs it. */
static int grow(void **arr, size_t *cap, uint64_t i, size_t sz)
{
    if (i < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, ncap * sz);
    if (!p)
        return -1;
    memset((char *)p + *cap * sz, 0, (ncap - *cap) * sz);
    *arr = p;
    *cap = ncap;
    return 0;
}

static int parse_value(cursor *c, bn_gguf_kv *kv, bn_err *err)
{
    const char *key = kv->key;
    uint32_t t;
    if (read_u32(c, &t, "value type", err))
        return bn_fail_prefix(err, "key '%s'", key);
    kv->type = (bn_gguf_type)t;
    size_t sz = bn_gguf_scalar_size(t);
    if (sz) {
        uint8_t b[8] = {0};
        if (read_bytes(c, b, sz, "value", err))
            return bn_fail_prefix(err, "key '%s'", key);
        uint64_t u = 0;
        for (size_t i = 0; i < sz; i++)
            u |= (uint64_t)b[i] << (8 * i);
        switch (t) {
        case BN_GGUF_I8: kv->num.i64 = (int8_t)u; break;
        case BN_GGUF_I16: kv->num.i64 = (int16_t)u; break;
        case BN_GGUF_I32: kv->num.i64 = (int32_t)u; break;
        case BN_GGUF_I64: memcpy(&kv->num.i64, &u, 8); break;
        case BN_GGUF_F32: {
            float f;
            uint32_t u32 = (uint32_t)u;
            memcpy(&f, &u32, 4);
            kv->num.f64 = f;
            break;
        }
        case BN_GGUF_F64: memcpy(&kv->num.f64, &u, 8); break;
        case BN_GGUF_BOOL:
            if (u > 1)
                return bn_fail(err, BN_E_FORMAT, "key '%s': bool value %llu is not 0 or 1", key,
                               (unsigned long long)u);
            kv->num.u64 = u;
            break;
        default: kv->num.u64 = u; break;
        }
        return 0;
    }
    if (t == BN_GGUF_STRING) {
        if (read_str(c, &kv->str, "string value", err))
            return bn_fail_prefix(err, "key '%s'", key);
        return 0;
    }
    if (t != BN_GGUF_ARRAY)
        return bn_fail(err, BN_E_FORMAT, "key '%s': unknown value type %u at offset %zu", key, t,
                       c->pos - 4);

    uint32_t et;
    if (read_u32(c, &et, "array element type", err) ||
        read_u64(c, &kv->arr_len, "array length", err))
        return bn_fail_prefix(err, "key '%s'", key);
    kv->arr_type = (bn_gguf_type)et;
    if (et == BN_GGUF_ARRAY)
        return bn_fail(err, BN_E_UNSUPPORTED, "key '%s': arrays of arrays are not supported", key);
    size_t esz = bn_gguf_scalar_size(et);
    if (esz) {
        if (kv->arr_len > left(c) / esz)
            return bn_fail(err, BN_E_FORMAT,
                           "key '%s': array of %llu %s elements runs past the end of the "
                           "file (%zu bytes left)",
                           key, (unsigned long long)kv->arr_len, bn_gguf_type_name(et), left(c));
        kv->arr_data = c->base + c->pos;
        c->pos += kv->arr_len * esz;
        if (et == BN_GGUF_BOOL)
            for (uint64_t i = 0; i < kv->arr_len; i++)
                if (kv->arr_data[i] > 1)
                    return bn_fail(err, BN_E_FORMAT,
                                   "key '%s': bool element %llu is %u, not 0 or 1", key,
                                   (unsigned long long)i, kv->arr_data[i]);
        return 0;
    }
    if (et != BN_GGUF_STRING)
        return bn_fail(err, BN_E_FORMAT, "key '%s': unknown array element type %u", key, et);
    /* every string takes at least its 8-byte length */
    if (kv->arr_len > left(c) / 8)
        return bn_fail(err, BN_E_FORMAT,
                       "key '%s': array of %llu strings cannot fit in the %zu bytes left", key,
                       (unsigned long long)kv->arr_len, left(c));
    size_t cap = 0;
    for (uint64_t i = 0; i < kv->arr_len; i++) {
        if (grow((void **)&kv->arr_strs, &cap, i, sizeof *kv->arr_strs))
            return bn_fail(err, BN_E_NOMEM, "key '%s': out of memory for %llu strings", key,
                           (unsigned long long)kv->arr_len);
        if (read_str(c, &kv->arr_strs[i], "array string", err))
            return bn_fail_prefix(err, "key '%s' element %llu", key, (unsigned long long)i);
    }
    /* callers may index an empty array's views: keep a valid pointer */
    if (!kv->arr_strs && !(kv->arr_strs = calloc(1, sizeof *kv->arr_strs)))
        return bn_fail(err, BN_E_NOMEM, "out of memory");
    return 0;
}

/* Builds a name table after parsing (sized by what was parsed); reports duplicates. */
static int build_table(bn_gguf *g, uint64_t n, uint32_t **table, size_t *cap,
                       const char *(*name_of)(const bn_gguf *, uint32_t), const char *what,
                       bn_err *err)
{
    *cap = table_cap(n);
    *table = calloc(*cap, sizeof **table);
    if (!*table)
        return bn_fail(err, BN_E_NOMEM, "out of memory for the %s table", what);
    for (uint64_t i = 0; i < n; i++) {
        int64_t dup = table_insert(*table, *cap, name_of(g, (uint32_t)i), (uint32_t)i, name_of, g);
        if (dup >= 0)
            return bn_fail(err, BN_E_FORMAT, "duplicate %s '%s' (#%lld and #%llu)", what,
                           name_of(g, (uint32_t)i), (long long)dup, (unsigned long long)i);
    }
    return 0;
}

static int parse_kvs(bn_gguf *g, cursor *c, uint64_t n_kv, bn_err *err)
{
    /* smallest entry: key length (8) + 1-byte key + type (4) + 1-byte value */
    if (n_kv > left(c) / 14)
        return bn_fail(err, BN_E_FORMAT,
                       "header claims %llu metadata keys, which cannot fit in the %zu bytes "
                       "left",
                       (unsigned long long)n_kv, left(c));
    size_t cap = 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        if (grow((void **)&g->kv, &cap, i, sizeof *g->kv))
            return bn_fail(err, BN_E_NOMEM, "out of memory for %llu keys",
                           (unsigned long long)n_kv);
        g->n_kv = i + 1; /* entries up to here are freed by bn_gguf_close */
        bn_gguf_kv *kv = &g->kv[i];
        bn_gguf_str key;
        kv->file_offset = c->pos;
        if (read_str(c, &key, "key", err))
            return bn_fail_prefix(err, "metadata key #%llu", (unsigned long long)i);
        if (key.len == 0 || key.len >= 65536)
            return bn_fail(err, BN_E_FORMAT,
                           "metadata key #%llu at offset %llu: key length %llu is out of "
                           "range (1..65535)",
                           (unsigned long long)i, (unsigned long long)kv->file_offset,
                           (unsigned long long)key.len);
        if (memchr(key.ptr, 0, key.len))
            return bn_fail(err, BN_E_FORMAT,
                           "metadata key #%llu at offset %llu contains a NUL byte",
                           (unsigned long long)i, (unsigned long long)kv->file_offset);
        if (!(kv->key = dup_str(key)))
            return bn_fail(err, BN_E_NOMEM, "out of memory");
        if (parse_value(c, kv, err))
            return -1;
    }
    return build_table(g, n_kv, &g->kv_hash, &g->kv_hash_cap, kv_name, "metadata key", err);
}

static int parse_tensor_infos(bn_gguf *g, cursor *c, uint64_t n_tensors, bn_err *err)
{
    /* smallest entry: name length (8) + 1-byte name + n_dims (4) + one dim (8) + type (4) +
     * offset (8) */
    if (n_tensors > left(c) / 33)
        return bn_fail(err, BN_E_FORMAT,
                       "header claims %llu tensors, which cannot fit in the %zu bytes left",
                       (unsigned long long)n_tensors, left(c));
    size_t cap = 0;
    for (uint64_t i = 0; i < n_tensors; i++) {
        if (grow((void **)&g->tensors, &cap, i, sizeof *g->tensors))
            return bn_fail(err, BN_E_NOMEM, "out of memory for %llu tensors",
                           (unsigned long long)n_tensors);
        g->n_tensors = i + 1;
        bn_gguf_tensor *t = &g->tensors[i];
        bn_gguf_str name;
        size_t at = c->pos;
        if (read_str(c, &name, "tensor name", err))
            return bn_fail_prefix(err, "tensor #%llu", (unsigned long long)i);
        if (name.len == 0 || name.len >= BN_GGUF_MAX_NAME || memchr(name.ptr, 0, name.len))
            return bn_fail(err, BN_E_FORMAT,
                           "tensor #%llu at offset %zu: bad name (length %llu; must be "
                           "1..%d bytes without NUL)",
                           (unsigned long long)i, at, (unsigned long long)name.len,
                           BN_GGUF_MAX_NAME - 1);
        if (!(t->name = dup_str(name)))
            return bn_fail(err, BN_E_NOMEM, "out of memory");
        if (read_u32(c, &t->n_dims, "n_dims", err))
            return bn_fail_prefix(err, "tensor '%s'", t->name);
        if (t->n_dims < 1 || t->n_dims > BN_GGUF_MAX_DIMS)
            return bn_fail(err, BN_E_FORMAT, "tensor '%s': %u dimensions (must be 1..%d)", t->name,
                           t->n_dims, BN_GGUF_MAX_DIMS);
        uint64_t n = 1;
        for (uint32_t d = 0; d < BN_GGUF_MAX_DIMS; d++)
            t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            if (read_u64(c, &t->ne[d], "dimension", err))
                return bn_fail_prefix(err, "tensor '%s'", t->name);
            if (t->ne[d] == 0 || t->ne[d] > (UINT64_C(1) << 62) / n)
                return bn_fail(err, BN_E_FORMAT,
                               "tensor '%s': dimension %u = %llu makes the element count "
                               "zero or overflow",
                               t->name, d, (unsigned long long)t->ne[d]);
            n *= t->ne[d];
        }
        if (read_u32(c, &t->type, "type", err) || read_u64(c, &t->offset, "offset", err))
            return bn_fail_prefix(err, "tensor '%s'", t->name);
        if (t->type == BN_GGML_TL1 || t->type == BN_GGML_TL2)
            return bn_fail(err, BN_E_UNSUPPORTED,
                           "tensor '%s': type %s (bitnet.cpp's %s lookup-table "
                           "layout) is not supported; use the I2_S file of this model "
                           "(llama-quantize F32.gguf OUT.gguf I2_S 1)",
                           t->name, t->type == BN_GGML_TL1 ? "TL1" : "TL2",
                           t->type == BN_GGML_TL1 ? "ARM" : "x86");
        if (!ggml_traits(t->type))
            return bn_fail(err, BN_E_FORMAT, "tensor '%s': unknown ggml type %u", t->name, t->type);
        if (!(t->nbytes = bn_ggml_nbytes(t->type, n, err)))
            return bn_fail_prefix(err, "tensor '%s'", t->name);
    }
    return build_table(g, n_tensors, &g->tensor_hash, &g->tensor_hash_cap, tensor_name,
                       "tensor name", err);
}

static int cmp_by_offset(const void *a, const void *b)
{
    const bn_gguf_tensor *x = *(const bn_gguf_tensor *const *)a;
    const bn_gguf_tensor *y = *(const bn_gguf_tensor *const *)b;
    /* ties by table position, so an overlap message names the same pair on every libc */
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int place_tensors(bn_gguf *g, size_t info_end, bn_err *err)
{
    g->data_offset = (info_end + g->alignment - 1) / g->alignment * g->alignment;
    if (g->n_tensors == 0) {
        g->data_size = 0;
        return 0;
    }
    if (g->data_offset > g->size)
        return bn_fail(err, BN_E_FORMAT,
                       "truncated: data section starts at %llu but the file has %zu bytes",
                       (unsigned long long)g->data_offset, g->size);
    uint64_t avail = g->size - g->data_offset;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        bn_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment)
            return bn_fail(err, BN_E_FORMAT,
                           "tensor '%s': offset %llu is not a multiple of the alignment %u",
                           t->name, (unsigned long long)t->offset, g->alignment);
        if (t->offset > avail || t->nbytes > avail - t->offset)
            return bn_fail(err, BN_E_FORMAT,
                           "tensor '%s': data [%llu, +%llu) runs past the end of the data "
                           "section (%llu bytes; file truncated?)",
                           t->name, (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                           (unsigned long long)avail);
        t->data = g->base + g->data_offset + t->offset;
    }
    const bn_gguf_tensor **order = malloc(g->n_tensors * sizeof *order);
    if (!order)
        return bn_fail(err, BN_E_NOMEM, "out of memory");
    for (uint64_t i = 0; i < g->n_tensors; i++)
        order[i] = &g->tensors[i];
    qsort(order, g->n_tensors, sizeof *order, cmp_by_offset);
    int rc = 0;
    uint64_t end = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        if (i > 0 && order[i]->offset < end) {
            rc = bn_fail(err, BN_E_FORMAT,
                         "tensor '%s' [%llu, +%llu) overlaps tensor '%s' which ends at %llu",
                         order[i]->name, (unsigned long long)order[i]->offset,
                         (unsigned long long)order[i]->nbytes, order[i - 1]->name,
                         (unsigned long long)end);
            break;
        }
        end = order[i]->offset + order[i]->nbytes;
    }
    g->data_size = end;
    free(order);
    return rc;
}

static int parse(bn_gguf *g, bn_err *err)
{
    cursor c = {g->base, g->size, 0};
    uint8_t magic[4];
    uint64_t n_tensors, n_kv;
    if (g->size < 4)
        return bn_fail(err, BN_E_FORMAT,
                       "truncated: file is %zu bytes, too small for a GGUF header (24 bytes)",
                       g->size);
    if (read_bytes(&c, magic, 4, "magic", err))
        return -1;
    if (memcmp(magic, "GGUF", 4) != 0)
        return bn_fail(err, BN_E_FORMAT,
                       "bad magic %02x %02x %02x %02x (expected 'GGUF'): not a GGUF file", magic[0],
                       magic[1], magic[2], magic[3]);
    if (read_u32(&c, &g->version, "version", err))
        return -1;
    if (g->version != 2 && g->version != 3)
        return bn_fail(err, BN_E_FORMAT,
                       "unsupported GGUF version %u (this reader handles 2 and 3%s)", g->version,
                       g->version > 0xffff ? "; big-endian file?" : "");
    if (read_u64(&c, &n_tensors, "tensor count", err) || read_u64(&c, &n_kv, "key count", err))
        return -1;
    if (parse_kvs(g, &c, n_kv, err))
        return -1;
    g->alignment = BN_GGUF_DEFAULT_ALIGNMENT;
    const bn_gguf_kv *al = bn_gguf_find(g, "general.alignment");
    if (al) {
        if (al->type != BN_GGUF_U32 || al->num.u64 == 0 || (al->num.u64 & (al->num.u64 - 1)) ||
            al->num.u64 > (1u << 20))
            return bn_fail(err, BN_E_FORMAT,
                           "general.alignment must be a u32 power of two up to 1 MiB (got "
                           "%s %llu)",
                           bn_gguf_type_name(al->type),
                           al->type == BN_GGUF_STRING || al->type == BN_GGUF_ARRAY
                               ? 0ull
                               : (unsigned long long)al->num.u64);
        g->alignment = (uint32_t)al->num.u64;
    }
    if (parse_tensor_infos(g, &c, n_tensors, err))
        return -1;
    return place_tensors(g, c.pos, err);
}

static bn_gguf *open_buffer(const void *data, size_t size, int mapped, bn_err *err)
{
    bn_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        bn_fail(err, BN_E_NOMEM, "out of memory");
        return NULL;
    }
    g->base = data;
    g->size = size;
    g->mapped = mapped;
    if (parse(g, err)) {
        bn_gguf_close(g);
        return NULL;
    }
    return g;
}

bn_gguf *bn_gguf_open_memory(const void *data, size_t size, bn_err *err)
{
    return open_buffer(data, size, 0, err);
}

bn_gguf *bn_gguf_open(const char *path, bn_err *err)
{
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever; the
     * type check below then refuses it (the flag changes nothing for a regular file). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        bn_fail(err, BN_E_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        bn_fail(err, BN_E_FORMAT, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if (st.st_size == 0) {
        bn_fail(err, BN_E_FORMAT, "%s: truncated: the file is empty", path);
        close(fd);
        return NULL;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        bn_fail(err, BN_E_IO, "%s: mmap failed: %s", path, strerror(errno));
        return NULL;
    }
    bn_gguf *g = open_buffer(p, (size_t)st.st_size, 1, err);
    if (!g)
        bn_fail_prefix(err, "%s", path);
    return g;
}

void bn_gguf_close(bn_gguf *g)
{
    if (!g)
        return;
    if (g->kv)
        for (uint64_t i = 0; i < g->n_kv; i++) {
            free(g->kv[i].key);
            free(g->kv[i].arr_strs);
        }
    if (g->tensors)
        for (uint64_t i = 0; i < g->n_tensors; i++)
            free(g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    free(g->kv_hash);
    free(g->tensor_hash);
    if (g->mapped)
        munmap((void *)g->base, g->size);
    free(g);
}

/* ---------------------------------------------------------------- lookups */

const bn_gguf_kv *bn_gguf_find(const bn_gguf *g, const char *key)
{
    int64_t i = table_find(g->kv_hash, g->kv_hash_cap, key, kv_name, g);
    return i >= 0 ? &g->kv[i] : NULL;
}

const bn_gguf_tensor *bn_gguf_find_tensor(const bn_gguf *g, const char *name)
{
    int64_t i = table_find(g->tensor_hash, g->tensor_hash_cap, name, tensor_name, g);
    return i >= 0 ? &g->tensors[i] : NULL;
}
