/* GGUF v3 reader: maps a file read-only and indexes its metadata and tensors in place.
 *
 * Nothing is copied out of the map except small indexes (key/tensor tables, string-array
 * views); every count, length and offset is checked against the file size before use, so a
 * truncated or hostile file gives one error message instead of a crash or a huge allocation.
 *
 *   file:  "GGUF" u32 version | u64 n_tensors | u64 n_kv | kv[n_kv] | tensor_info[n_tensors]
 *          | pad to alignment | data section (tensor offsets are relative to its start)
 */
#ifndef BN_GGUF_H
#define BN_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum bn_gguf_type {
    BN_GGUF_U8 = 0,
    BN_GGUF_I8 = 1,
    BN_GGUF_U16 = 2,
    BN_GGUF_I16 = 3,
    BN_GGUF_U32 = 4,
    BN_GGUF_I32 = 5,
    BN_GGUF_F32 = 6,
    BN_GGUF_BOOL = 7,
    BN_GGUF_STRING = 8,
    BN_GGUF_ARRAY = 9,
    BN_GGUF_U64 = 10,
    BN_GGUF_I64 = 11,
    BN_GGUF_F64 = 12,
} bn_gguf_type;

/* ggml tensor types this reader can size (ids of bitnet.cpp's ggml fork). */
typedef enum bn_ggml_type {
    BN_GGML_F32 = 0,
    BN_GGML_F16 = 1,
    BN_GGML_Q4_0 = 2,
    BN_GGML_Q4_1 = 3,
    BN_GGML_Q5_0 = 6,
    BN_GGML_Q5_1 = 7,
    BN_GGML_Q8_0 = 8,
    BN_GGML_I8 = 24,
    BN_GGML_I16 = 25,
    BN_GGML_I32 = 26,
    BN_GGML_I64 = 27,
    BN_GGML_F64 = 28,
    BN_GGML_BF16 = 30,
    BN_GGML_I2_S = 36, /* 2-bit ternary, 128-weight blocks of 32 bytes + f32 scale tail */
    /* bitnet.cpp's kernel-specific lookup-table layouts: recognised only to refuse them */
    BN_GGML_TL1 = 38,
    BN_GGML_TL2 = 39,
} bn_ggml_type;

#define BN_GGUF_DEFAULT_ALIGNMENT 32
#define BN_GGUF_MAX_DIMS          4
#define BN_GGUF_MAX_NAME          256

/* A string inside the map: not NUL-terminated. */
typedef struct bn_gguf_str {
    const char *ptr;
    uint64_t len;
} bn_gguf_str;

typedef struct bn_gguf_kv {
    char *key; /* NUL-terminated copy */
    bn_gguf_type type;
    union {
        uint64_t u64; /* U8, U16, U32, U64, BOOL (0/1) */
        int64_t i64;  /* I8, I16, I32, I64 */
        double f64;   /* F32, F64 */
    } num;
    bn_gguf_str str;         /* STRING */
    bn_gguf_type arr_type;   /* ARRAY: element type (never ARRAY) */
    uint64_t arr_len;        /* ARRAY: element count */
    const uint8_t *arr_data; /* numeric ARRAY: arr_len little-endian elements, maybe unaligned */
    bn_gguf_str *arr_strs;   /* STRING ARRAY: arr_len views into the map */
    uint64_t file_offset;    /* where the key starts, for messages */
} bn_gguf_kv;

typedef struct bn_gguf_tensor {
    char *name; /* NUL-terminated copy */
    uint32_t n_dims;
    uint64_t ne[BN_GGUF_MAX_DIMS]; /* ne[0] is the contiguous dimension; unused dims are 1 */
    uint32_t type;                 /* bn_ggml_type */
    uint64_t offset;               /* relative to the data section */
    uint64_t nbytes;
    const void *data;
} bn_gguf_tensor;

typedef struct bn_gguf bn_gguf;

struct bn_gguf {
    uint32_t version;
    uint64_t n_kv;
    uint64_t n_tensors;
    bn_gguf_kv *kv;
    bn_gguf_tensor *tensors;
    uint32_t alignment;
    uint64_t data_offset; /* absolute file offset of the data section */
    uint64_t data_size;   /* bytes used by tensors (end of the last tensor) */
    const uint8_t *base;
    size_t size;
    /* private */
    int mapped;
    uint32_t *kv_hash; /* open addressing tables of index+1, 0 = empty */
    uint32_t *tensor_hash;
    size_t kv_hash_cap, tensor_hash_cap;
};

/* Maps PATH (O_RDONLY, PROT_READ, MAP_PRIVATE) and parses it. NULL + err on failure. */
bn_gguf *bn_gguf_open(const char *path, bn_err *err);
/* Parses a buffer the caller keeps alive (tests, fuzzing). */
bn_gguf *bn_gguf_open_memory(const void *data, size_t size, bn_err *err);
void bn_gguf_close(bn_gguf *g);

const char *bn_gguf_type_name(bn_gguf_type t);
/* Bytes of one scalar value of type t; 0 for STRING, ARRAY and unknown types. */
size_t bn_gguf_scalar_size(uint32_t t);
const char *bn_ggml_type_name(uint32_t t); /* "?" for unknown ids */
/* Bytes of a tensor of type t with n elements; 0 (and err) when t is unknown or n does not
 * fill whole blocks. */
uint64_t bn_ggml_nbytes(uint32_t t, uint64_t n, bn_err *err);

const bn_gguf_kv *bn_gguf_find(const bn_gguf *g, const char *key);
const bn_gguf_tensor *bn_gguf_find_tensor(const bn_gguf *g, const char *name);

/* Typed lookups: 0 on success; -1 with err naming the key when missing or of a type that
 * cannot represent the value (integers of any width are accepted when the value fits). */
int bn_gguf_get_u32(const bn_gguf *g, const char *key, uint32_t *out, bn_err *err);
int bn_gguf_get_f32(const bn_gguf *g, const char *key, float *out, bn_err *err);
int bn_gguf_get_bool(const bn_gguf *g, const char *key, bool *out, bn_err *err);
int bn_gguf_get_str(const bn_gguf *g, const char *key, bn_gguf_str *out, bn_err *err);
/* An array whose elements have type elem. */
int bn_gguf_get_arr(const bn_gguf *g, const char *key, bn_gguf_type elem, const bn_gguf_kv **out,
                    bn_err *err);

/* Element i of an array of 4-byte elements (i32 / f32, as checked by bn_gguf_get_arr). No
 * bounds check and no clamp: the caller must keep i < kv->arr_len. */
int32_t bn_gguf_arr_i32(const bn_gguf_kv *kv, uint64_t i);
float bn_gguf_arr_f32(const bn_gguf_kv *kv, uint64_t i);

bool bn_gguf_str_eq(bn_gguf_str s, const char *z);

#endif
