/* Unicode classes for the pre-tokenizers, and a lenient UTF-8 decoder.
 *
 * One flag byte per code point: bits 0-2 the general-category class, bit 3 White_Space.
 * The data is generated from Debian's unicode-data package by tools/gen_unicode_tables.py
 * into unicode_tables.c (runs of equal flags); lookups go through a flat table for the BMP
 * and a binary search above it. */
#ifndef BN_UNICODE_H
#define BN_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum {
    BN_UC_OTHER = 0, /* C* (controls, format, private use, surrogates) and unassigned */
    BN_UC_L = 1,
    BN_UC_N = 2,
    BN_UC_P = 3,
    BN_UC_M = 4,
    BN_UC_S = 5,
    BN_UC_Z = 6,
    BN_UC_CLASS_MASK = 7,
    BN_UC_WS = 8, /* White_Space property (U+0085 yes; U+200B, U+FEFF no) */
};

extern const size_t bn_unicode_n_runs;
extern const uint32_t bn_unicode_run_start[];
extern const uint8_t bn_unicode_run_flags[];

/* Flag byte of code point CP (0 for cp > 0x10FFFF). Thread-safe; the BMP table is built on
 * first use. */
uint8_t bn_unicode_flags(uint32_t cp);
/* Flat flags of the BMP (65536 entries), built once; for hot loops. */
const uint8_t *bn_unicode_bmp(void);

/* Decodes one UTF-8 sequence at S (N > 0 bytes available). Returns its length (1..4) and the
 * code point in *cp; an invalid or truncated sequence (overlong, surrogate, > U+10FFFF, bad
 * continuation) returns 1 with *cp = BN_UTF8_INVALID: such a byte is a unit of its own. */
#define BN_UTF8_INVALID 0xFFFFFFFFu
size_t bn_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);

/* Length of the UTF-8 sequence a lead byte announces (1..4), 0 for a continuation/invalid. */
size_t bn_utf8_seq_len(uint8_t lead);

#endif
