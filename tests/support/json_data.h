/* Test data read with the product's own JSON parser (src/json): golden .json/.jsonl files. */
#ifndef BN_TEST_JSON_DATA_H
#define BN_TEST_JSON_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"

/* An array of int32 numbers as a malloc'd array (*n may be 0; *ids is then still non-NULL);
 * -1 when arr is not such an array. */
int bn_test_json_ids(const bn_json *arr, int32_t **ids, size_t *n);

/* Hex text ("48656c6c6f") -> malloc'd bytes; -1 on an odd length or a non-hex digit. */
int bn_test_unhex(const char *hex, size_t hexlen, uint8_t **out, size_t *n);

#endif
