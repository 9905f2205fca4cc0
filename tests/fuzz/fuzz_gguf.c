/* libFuzzer target for the GGUF reader (and the model loader on what it accepts): whatever the
 * input, parsing returns a file or an error; an accepted file can be walked completely (every
 * key through its typed getter, every array element, every tensor's first and last byte), and
 * every index entry must be found again by name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink; /* keeps the reads from being optimised away */

static void walk_kv(const bn_gguf *g, const bn_gguf_kv *kv)
{
    bn_err err;
    uint32_t u;
    float f;
    bool b;
    bn_gguf_str s;
    const bn_gguf_kv *a;
    if (bn_gguf_find(g, kv->key) != kv)
        abort();
    if (bn_gguf_get_u32(g, kv->key, &u, &err) == 0)
        sink += u;
    if (bn_gguf_get_f32(g, kv->key, &f, &err) == 0)
        sink += f == f;
    if (bn_gguf_get_bool(g, kv->key, &b, &err) == 0)
        sink += b;
    if (bn_gguf_get_str(g, kv->key, &s, &err) == 0 && s.len)
        sink += (uint8_t)s.ptr[0] + (uint8_t)s.ptr[s.len - 1];
    if (kv->type != BN_GGUF_ARRAY)
        return;
    if (bn_gguf_get_arr(g, kv->key, kv->arr_type, &a, &err) != 0 || a != kv)
        abort();
    for (uint64_t i = 0; i < kv->arr_len; i++) {
        if (kv->arr_type == BN_GGUF_STRING) {
            bn_gguf_str e = kv->arr_strs[i];
            if (e.len)
                sink += (uint8_t)e.ptr[0] + (uint8_t)e.ptr[e.len - 1];
        } else if (kv->arr_type == BN_GGUF_I32 || kv->arr_type == BN_GGUF_F32 ||
                   kv->arr_type == BN_GGUF_U32) {
            sink += (uint64_t)bn_gguf_arr_i32(kv, i);
        } else {
            sink += kv->arr_data[i];
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bn_err err;
    bn_gguf *g = bn_gguf_open_memory(data, size, &err);
    if (!g) {
        if (!err.msg[0])
            abort(); /* every failure explains itself */
        return 0;
    }
    for (uint64_t i = 0; i < g->n_kv; i++)
        walk_kv(g, &g->kv[i]);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const bn_gguf_tensor *t = &g->tensors[i];
        if (bn_gguf_find_tensor(g, t->name) != t || t->nbytes == 0)
            abort();
        const uint8_t *p = t->data;
        if (p < g->base || p + t->nbytes > g->base + g->size)
            abort();
        sink += p[0] + p[t->nbytes - 1];
    }
    /* the loader owns g from here, on success and failure */
    bn_model *m = bn_model_from_gguf(g, &err);
    if (m)
        sink += m->hp.n_layer;
    bn_model_free(m);
    return 0;
}
