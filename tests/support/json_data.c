#include "json_data.h"

#include <stdlib.h>

int bn_test_json_ids(const bn_json *arr, int32_t **ids, size_t *n)
{
    if (!arr || arr->type != BN_JSON_ARRAY)
        return -1;
    int32_t *v = malloc((arr->len ? arr->len : 1) * sizeof *v);
    if (!v)
        return -1;
    size_t i = 0;
    for (const bn_json *e = arr->child; e; e = e->next, i++) {
        int64_t x;
        if (bn_json_int_in(e, INT32_MIN, INT32_MAX, &x)) {
            free(v);
            return -1;
        }
        v[i] = (int32_t)x;
    }
    *ids = v;
    *n = arr->len;
    return 0;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int bn_test_unhex(const char *hex, size_t hexlen, uint8_t **out, size_t *n)
{
    if (hexlen % 2)
        return -1;
    uint8_t *o = malloc(hexlen / 2 + 1);
    if (!o)
        return -1;
    for (size_t i = 0; i < hexlen / 2; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(o);
            return -1;
        }
        o[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = o;
    *n = hexlen / 2;
    return 0;
}
