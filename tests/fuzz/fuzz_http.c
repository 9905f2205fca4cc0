/* libFuzzer target for bitnet-server's request head parser: any bytes give NEED_MORE, DONE
 * or ERROR with a status, never a crash; DONE's fields respect their bounds; and the answer
 * does not change when the same bytes arrive with more after them (the parser sees a prefix
 * of a stream: a head it accepted stays accepted, with the same length). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    size_t max_head = 4096;
    bn_http_req r, r2;
    int st, st2;
    const char *msg, *msg2;
    bn_http_parse_rc rc = bn_http_parse_head(buf, size, max_head, &r, &st, &msg);
    if (rc == BN_HTTP_ERROR && (st < 400 || st > 599 || !msg))
        abort();
    if (rc == BN_HTTP_DONE) {
        if (r.head_len > size || r.head_len > max_head || r.minor < 0 || r.minor > 1)
            abort();
        if (strlen(r.method) >= sizeof r.method || strlen(r.path) >= sizeof r.path ||
            r.path[0] != '/' || strlen(r.authorization) >= sizeof r.authorization)
            abort();
        /* the head alone parses the same */
        if (bn_http_parse_head(buf, r.head_len, max_head, &r2, &st2, &msg2) != BN_HTTP_DONE ||
            r2.head_len != r.head_len || strcmp(r2.path, r.path) ||
            r2.content_length != r.content_length || r2.keep_alive != r.keep_alive)
            abort();
    }
    if (rc == BN_HTTP_NEED_MORE && size >= max_head)
        abort();
    return 0;
}
