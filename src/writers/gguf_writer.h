/* GGUF v3 writer: metadata of every value type, a tensor table, then the tensor data streamed
 * in table order (so a 1.2 GB model never has to be in memory).
 *
 *   w = bn_gguf_writer_new();
 *   bn_gguf_writer_add_u32(w, "key", 7); ... bn_gguf_writer_add_tensor(w, "t", type, 2, ne);
 *   bn_gguf_writer_begin(w, f, &err);        header, metadata, tensor infos, padding
 *   bn_gguf_writer_data(w, p, n, &err) ...   bytes of tensor 0, then 1, ... (any chunking)
 *   bn_gguf_writer_finish(w, &err);          checks every tensor got exactly its bytes
 *   bn_gguf_writer_free(w);
 *
 * Metadata is kept in order of addition. A u32 "general.alignment" key also sets the
 * alignment used for the data section (default 32). Errors while adding (out of memory,
 * unknown type) are remembered and reported by begin(), so callers check once. */
#ifndef BN_GGUF_WRITER_H
#define BN_GGUF_WRITER_H

#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "gguf.h"

typedef struct bn_gguf_writer bn_gguf_writer;

bn_gguf_writer *bn_gguf_writer_new(void);
void bn_gguf_writer_free(bn_gguf_writer *w);

void bn_gguf_writer_add_u8(bn_gguf_writer *w, const char *key, uint8_t v);
void bn_gguf_writer_add_i8(bn_gguf_writer *w, const char *key, int8_t v);
void bn_gguf_writer_add_u16(bn_gguf_writer *w, const char *key, uint16_t v);
void bn_gguf_writer_add_i16(bn_gguf_writer *w, const char *key, int16_t v);
void bn_gguf_writer_add_u32(bn_gguf_writer *w, const char *key, uint32_t v);
void bn_gguf_writer_add_i32(bn_gguf_writer *w, const char *key, int32_t v);
void bn_gguf_writer_add_u64(bn_gguf_writer *w, const char *key, uint64_t v);
void bn_gguf_writer_add_i64(bn_gguf_writer *w, const char *key, int64_t v);
void bn_gguf_writer_add_f32(bn_gguf_writer *w, const char *key, float v);
void bn_gguf_writer_add_f64(bn_gguf_writer *w, const char *key, double v);
void bn_gguf_writer_add_bool(bn_gguf_writer *w, const char *key, int v);
void bn_gguf_writer_add_str(bn_gguf_writer *w, const char *key, const char *v);
/* A numeric/bool array: n elements of elem, DATA in host order (little-endian hosts only). */
void bn_gguf_writer_add_arr(bn_gguf_writer *w, const char *key, bn_gguf_type elem, const void *data,
                            uint64_t n);
/* Arrays of strings: NUL-terminated ones, or views (e.g. taken from a bn_gguf). */
void bn_gguf_writer_add_arr_str(bn_gguf_writer *w, const char *key, const char *const *v,
                                uint64_t n);
void bn_gguf_writer_add_arr_strv(bn_gguf_writer *w, const char *key, const bn_gguf_str *v,
                                 uint64_t n);
/* Copies one parsed key/value (any type) under its own key or, when KEY is not NULL, KEY. */
void bn_gguf_writer_add_kv(bn_gguf_writer *w, const char *key, const bn_gguf_kv *kv);

/* Appends a tensor to the table; its offset is the previous end rounded up to the alignment.
 * Returns the tensor's byte size (0 after an error, e.g. unknown type). */
uint64_t bn_gguf_writer_add_tensor(bn_gguf_writer *w, const char *name, uint32_t type,
                                   uint32_t n_dims, const uint64_t *ne);

/* Writes header, metadata and tensor table to F (which the caller owns) and pads to the
 * data section. */
int bn_gguf_writer_begin(bn_gguf_writer *w, FILE *f, bn_err *err);
/* Streams tensor bytes in table order; padding between tensors is inserted automatically. */
int bn_gguf_writer_data(bn_gguf_writer *w, const void *data, size_t n, bn_err *err);
/* Fails unless every tensor received exactly its byte size; flushes F. */
int bn_gguf_writer_finish(bn_gguf_writer *w, bn_err *err);

/* Offsets known after the table is complete (for tests and tools). */
uint64_t bn_gguf_writer_data_offset(const bn_gguf_writer *w);
uint64_t bn_gguf_writer_file_size(const bn_gguf_writer *w);
/* Header, metadata and tensor table without the padding to the data section (a file with no
 * tensor may end there, as gguf-py's vocab-only files do). */
uint64_t bn_gguf_writer_meta_size(const bn_gguf_writer *w);

#endif
