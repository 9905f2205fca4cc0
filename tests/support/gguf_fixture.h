/* A small GGUF built in memory with the project's writer, holding every metadata value type
 * (scalars, strings, arrays incl. arrays of strings, empty arrays) and three tensors of
 * different types, for reader round trips and corrupted-file tests. */
#ifndef BN_GGUF_FIXTURE_H
#define BN_GGUF_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "gguf_writer.h"

/* The fixture's tensors: names chosen so they occur nowhere else in the file. */
#define BN_FIX_T0 "tensor.alpha" /* F32 [8] */
#define BN_FIX_T1 "tensor.bravo" /* F16 [16, 2] */
#define BN_FIX_T2 "tensor.charl" /* I2_S [128, 4] */

/* Writes the fixture (alignment 0 = no general.alignment key). malloc'd; *len its size. */
uint8_t *bn_fixture_gguf(uint32_t alignment, size_t *len);

/* Byte pattern of fixture tensor i at byte j (so tests can check the data section). */
uint8_t bn_fixture_byte(int tensor, uint64_t j);

/* Runs W's begin/data/finish into memory, calling FILL(w, i, ctx) to stream tensor i's bytes;
 * frees W. NULL (and err) on failure. */
typedef int (*bn_fixture_fill)(bn_gguf_writer *w, uint64_t i, void *ctx, bn_err *err);
uint8_t *bn_fixture_write(bn_gguf_writer *w, uint64_t n_tensors, bn_fixture_fill fill, void *ctx,
                          size_t *len, bn_err *err);

/* Offset of the first occurrence of NEEDLE (n bytes) in buf, or -1. */
long bn_fixture_find(const uint8_t *buf, size_t len, const void *needle, size_t n);
void bn_fixture_put_u32(uint8_t *buf, size_t off, uint32_t v);
void bn_fixture_put_u64(uint8_t *buf, size_t off, uint64_t v);
uint64_t bn_fixture_get_u64(const uint8_t *buf, size_t off);

#endif
