/* safetensors reader: an 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "BF16", "shape": [r, c], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {...}}, then the data section (offsets are relative to it).
 *
 * Files are mmap'd read-only; tensors are views. Everything is checked before use: the header
 * length against the file, the JSON strictly (src/json), each dtype, shape (<= 8 dims, no
 * overflow), that end - begin equals the shape's byte size, offsets inside the data section,
 * and that no two tensors overlap. Errors are one line naming the file and the tensor. */
#ifndef BN_SAFETENSORS_H
#define BN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum bn_st_dtype {
    BN_ST_F32,
    BN_ST_F16,
    BN_ST_BF16,
    BN_ST_U8,
    BN_ST_OTHER, /* valid safetensors dtype the converter does not read (I64, F64, ...) */
} bn_st_dtype;

#define BN_ST_MAX_DIMS 8

typedef struct bn_st_tensor {
    char *name;
    bn_st_dtype dtype;
    char dtype_name[8]; /* as written: "BF16" */
    uint32_t n_dims;
    uint64_t shape[BN_ST_MAX_DIMS]; /* PyTorch order: shape[0] is the slowest */
    uint64_t n_elements;
    const uint8_t *data; /* view into the map */
    uint64_t nbytes;
    int file; /* index of the file it came from */
} bn_st_tensor;

typedef struct bn_st_file {
    char *path;
    uint8_t *map;
    size_t size;
} bn_st_file;

/* The tensors of one or more files (shards), in reading order: file by file, each file's
 * tensors sorted by name (as safetensors' safe_open().keys() lists them). */
typedef struct bn_safetensors {
    bn_st_file *files;
    int n_files;
    bn_st_tensor *tensors;
    size_t n_tensors;
} bn_safetensors;

/* Parses a whole safetensors image (header and data) in memory; LABEL names it in errors.
 * Appends its tensors (sorted by name) to st with file index FILE. */
int bn_st_parse(bn_safetensors *st, const uint8_t *buf, size_t size, const char *label, int file,
                bn_err *err);
/* Maps PATH and parses it. */
int bn_st_open(bn_safetensors *st, const char *path, bn_err *err);
void bn_st_close(bn_safetensors *st);
const bn_st_tensor *bn_st_find(const bn_safetensors *st, const char *name);
size_t bn_st_dtype_size(bn_st_dtype t);
/* Tells the kernel the tensor's pages may be dropped (MADV_DONTNEED on the whole pages inside
 * it): converting tensor after tensor then keeps the resident set small. */
void bn_st_release(const bn_st_tensor *t);
/* The same for bytes [begin, end) of the tensor's data. */
void bn_st_release_range(const bn_st_tensor *t, uint64_t begin, uint64_t end);

#endif
