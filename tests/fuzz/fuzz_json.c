/* libFuzzer target for the JSON parser and writer: anything the parser accepts must survive
 * write -> parse unchanged, and writing the reparsed tree must give the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bn_err err;
    bn_json_opts o = {.max_depth = 64, .max_size = 1 << 20};
    bn_json_doc *d = bn_json_parse((const char *)data, size, &o, &err);
    if (!d)
        return 0;
    bn_buf b1 = {0}, b2 = {0};
    bn_jw w1 = {.out = &b1};
    bn_jw_value(&w1, bn_json_root(d));
    if (w1.bad || b1.oom)
        abort();
    bn_json_doc *d2 = bn_json_parse(b1.data, b1.len, &o, &err);
    if (!d2 || !bn_json_equal(bn_json_root(d), bn_json_root(d2)))
        abort();
    bn_jw w2 = {.out = &b2};
    bn_jw_value(&w2, bn_json_root(d2));
    if (b1.len != b2.len || memcmp(b1.data, b2.data, b1.len))
        abort();
    bn_buf_free(&b1);
    bn_buf_free(&b2);
    bn_json_free(d);
    bn_json_free(d2);
    return 0;
}
