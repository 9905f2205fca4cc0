/* libFuzzer target for the safetensors reader: whatever the input, parsing returns tensors or
 * an error; every accepted tensor lies inside the input (its first and last byte are read),
 * its byte size matches its dtype and shape, no two overlap, and each is found by name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a private copy: ASan then catches a read one byte past the end */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    bn_safetensors st = {0};
    bn_err err;
    if (bn_st_parse(&st, buf, size, "fuzz", 0, &err) == 0) {
        for (size_t i = 0; i < st.n_tensors; i++) {
            const bn_st_tensor *t = &st.tensors[i];
            if (t->data < buf || t->data + t->nbytes > buf + size)
                abort();
            if (t->nbytes)
                sink += t->data[0] + t->data[t->nbytes - 1];
            if (t->dtype != BN_ST_OTHER && t->nbytes != t->n_elements * bn_st_dtype_size(t->dtype))
                abort();
            if (bn_st_find(&st, t->name) != t)
                abort();
            for (size_t j = 0; j < i; j++) {
                const bn_st_tensor *u = &st.tensors[j];
                if (t->nbytes && u->nbytes && t->data < u->data + u->nbytes &&
                    u->data < t->data + t->nbytes)
                    abort();
            }
        }
    }
    bn_st_close(&st);
    free(buf);
    return 0;
}
