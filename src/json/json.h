/* A small strict JSON (RFC 8259) parser into a read-only tree, and a writer that appends to a
 * growable buffer. Used for Lambda events/responses and the programs' --json output.
 *
 * Parser policy (hostile input is the normal case here):
 *  - the input must be exactly one JSON value surrounded by optional whitespace;
 *  - strings must be valid UTF-8 (no overlong forms, no encoded surrogates, <= U+10FFFF), raw
 *    control characters (< 0x20) are rejected, \u escapes must form valid code points (a high
 *    surrogate must be followed by a low one); decoded strings are NUL-terminated and carry
 *    their length (they may contain U+0000);
 *  - numbers follow the RFC grammar exactly; a value that overflows a double is an error;
 *  - DUPLICATE KEYS IN AN OBJECT ARE AN ERROR: "last one wins" vs "first one wins" differs
 *    between parsers, and a request that means different things to different readers is
 *    refused rather than guessed;
 *  - nesting depth and input size are limited (bn_json_opts); memory use is bounded by a
 *    small multiple of the input size.
 * Errors name the problem and the byte offset: "byte 12: expected ':' after object key". */
#ifndef BN_JSON_H
#define BN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"

typedef enum bn_json_type {
    BN_JSON_NULL,
    BN_JSON_BOOL,
    BN_JSON_NUMBER,
    BN_JSON_STRING,
    BN_JSON_ARRAY,
    BN_JSON_OBJECT,
} bn_json_type;

typedef struct bn_json bn_json;
struct bn_json {
    bn_json_type type;
    bool boolean;    /* BOOL */
    bool is_int;     /* NUMBER written without fraction/exponent and fits in int64 */
    int64_t i64;     /* NUMBER with is_int */
    double num;      /* NUMBER (always set) */
    const char *str; /* STRING: decoded UTF-8, NUL-terminated */
    size_t len;      /* STRING: bytes; ARRAY/OBJECT: number of children */
    bn_json *child;  /* ARRAY/OBJECT: first child (in document order) */
    bn_json *next;   /* next sibling */
    const char *key; /* member of an OBJECT: its decoded key (NUL-terminated) */
    size_t key_len;
    size_t pos; /* byte offset of the value in the input (for messages) */
};

typedef struct bn_json_opts {
    int max_depth;   /* arrays/objects nested deeper are refused; 0 = default 64 */
    size_t max_size; /* longer inputs are refused; 0 = default 16 MiB */
} bn_json_opts;

#define BN_JSON_DEFAULT_DEPTH 64
#define BN_JSON_DEFAULT_SIZE  ((size_t)16 << 20)

typedef struct bn_json_doc bn_json_doc;

/* Parses TEXT[0..len) (need not be NUL-terminated). opts may be NULL. Returns NULL and fills
 * err on any error. The tree lives until bn_json_free. */
bn_json_doc *bn_json_parse(const char *text, size_t len, const bn_json_opts *opts, bn_err *err);
void bn_json_free(bn_json_doc *doc);
const bn_json *bn_json_root(const bn_json_doc *doc);

/* Member KEY of an OBJECT (NULL when absent or when v is not an object). */
const bn_json *bn_json_get(const bn_json *v, const char *key);
/* Element I of an ARRAY (NULL when out of range). O(i). */
const bn_json *bn_json_at(const bn_json *v, size_t i);
/* "null", "boolean", "number", "string", "array", "object" (for error messages). */
const char *bn_json_type_name(bn_json_type t);
/* Number with an integral value in [min, max] (5, 5.0 and 5e0 all qualify). 0 or -1. */
int bn_json_int_in(const bn_json *v, int64_t min, int64_t max, int64_t *out);
/* Deep equality (numbers by value, member order significant). */
bool bn_json_equal(const bn_json *a, const bn_json *b);

/* Length of the valid UTF-8 sequence starting at s (n bytes available), 0 when invalid or
 * truncated. */
size_t bn_json_utf8_len(const char *s, size_t n);
/* Length of the longest prefix of s[0..n) made of whole valid UTF-8 sequences. */
size_t bn_json_utf8_prefix(const char *s, size_t n);

/* ------------------------------------------------------------------ writer
 * Appends compact JSON to a bn_buf and inserts the commas itself:
 *   bn_jw w = {.out = &buf};
 *   bn_jw_obj(&w); bn_jw_key(&w, "text"); bn_jw_str(&w, s); bn_jw_end(&w);
 * Strings are written as valid UTF-8: '"', '\\' and control characters are escaped, and any
 * invalid UTF-8 byte (e.g. a token piece that splits a character) becomes U+FFFD.
 * Non-finite numbers are written as null. Misuse (too deep, end without begin) sets `bad`. */
#define BN_JW_MAX_DEPTH 256
typedef struct bn_jw {
    bn_buf *out;
    int depth;
    bool bad;
    bool after_key;
    char kind[BN_JW_MAX_DEPTH]; /* 'o' object, 'a' array */
    bool has_items[BN_JW_MAX_DEPTH];
} bn_jw;

void bn_jw_obj(bn_jw *w);
void bn_jw_arr(bn_jw *w);
void bn_jw_end(bn_jw *w); /* closes the innermost object or array */
void bn_jw_key(bn_jw *w, const char *key);
void bn_jw_keyn(bn_jw *w, const char *key, size_t n);
void bn_jw_str(bn_jw *w, const char *s);
void bn_jw_strn(bn_jw *w, const char *s, size_t n);
void bn_jw_int(bn_jw *w, int64_t v);
void bn_jw_num(bn_jw *w, double v);
void bn_jw_bool(bn_jw *w, bool v);
void bn_jw_null(bn_jw *w);
void bn_jw_value(bn_jw *w, const bn_json *v); /* a parsed tree, recursively */
/* The escaped body of a JSON string (no quotes) appended to b, with the rules above. */
void bn_json_escape(bn_buf *b, const char *s, size_t n);

#endif
