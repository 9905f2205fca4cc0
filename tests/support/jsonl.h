/* A minimal JSON reader for test data (golden .jsonl files): parses one document into a small
 * tree. Not the product's parser (src/json/json.h); tests only. */
#ifndef BN_TEST_JSONL_H
#define BN_TEST_JSONL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum bn_tj_type { BN_TJ_NULL, BN_TJ_BOOL, BN_TJ_NUM, BN_TJ_STR, BN_TJ_ARR, BN_TJ_OBJ } bn_tj_type;

typedef struct bn_tj {
    bn_tj_type type;
    bool b;
    double num;
    char *str; /* STR: decoded bytes, NUL-terminated; len excludes the NUL */
    size_t len;
    struct bn_tj *items; /* ARR/OBJ: n values */
    char **keys;         /* OBJ: n keys */
    size_t n;
} bn_tj;

/* NULL on a syntax error. */
bn_tj *bn_tj_parse(const char *s, size_t len);
void bn_tj_free(bn_tj *v);
/* Member of an object, or NULL. */
const bn_tj *bn_tj_get(const bn_tj *obj, const char *key);
/* An array of integers as a malloc'd int32 array (n may be 0; *ids non-NULL); -1 if not one. */
int bn_tj_ids(const bn_tj *arr, int32_t **ids, size_t *n);
/* Hex string -> malloc'd bytes; -1 on bad hex. */
int bn_tj_unhex(const char *hex, size_t hexlen, uint8_t **out, size_t *n);

#endif
