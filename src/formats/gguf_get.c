/* Typed metadata lookups on a parsed GGUF: the value converted to the caller's type, or an
 * error naming the key and what it holds instead. */
#include <string.h>

#include "gguf.h"

static const bn_gguf_kv *find_req(const bn_gguf *g, const char *key, bn_err *err)
{
    const bn_gguf_kv *kv = bn_gguf_find(g, key);
    if (!kv)
        bn_fail(err, BN_E_FORMAT, "missing metadata key '%s'", key);
    return kv;
}

int bn_gguf_get_u32(const bn_gguf *g, const char *key, uint32_t *out, bn_err *err)
{
    const bn_gguf_kv *kv = find_req(g, key, err);
    if (!kv)
        return -1;
    switch (kv->type) {
    case BN_GGUF_U8:
    case BN_GGUF_U16:
    case BN_GGUF_U32:
    case BN_GGUF_U64:
        if (kv->num.u64 > UINT32_MAX)
            break;
        *out = (uint32_t)kv->num.u64;
        return 0;
    case BN_GGUF_I8:
    case BN_GGUF_I16:
    case BN_GGUF_I32:
    case BN_GGUF_I64:
        if (kv->num.i64 < 0 || kv->num.i64 > (int64_t)UINT32_MAX)
            break;
        *out = (uint32_t)kv->num.i64;
        return 0;
    default:
        return bn_fail(err, BN_E_FORMAT, "metadata key '%s' is a %s, expected an unsigned integer",
                       key, bn_gguf_type_name(kv->type));
    }
    return bn_fail(err, BN_E_FORMAT, "metadata key '%s' is out of range for u32", key);
}

int bn_gguf_get_f32(const bn_gguf *g, const char *key, float *out, bn_err *err)
{
    const bn_gguf_kv *kv = find_req(g, key, err);
    if (!kv)
        return -1;
    if (kv->type != BN_GGUF_F32 && kv->type != BN_GGUF_F64)
        return bn_fail(err, BN_E_FORMAT, "metadata key '%s' is a %s, expected f32", key,
                       bn_gguf_type_name(kv->type));
    *out = (float)kv->num.f64;
    return 0;
}

int bn_gguf_get_bool(const bn_gguf *g, const char *key, bool *out, bn_err *err)
{
    const bn_gguf_kv *kv = find_req(g, key, err);
    if (!kv)
        return -1;
    if (kv->type != BN_GGUF_BOOL)
        return bn_fail(err, BN_E_FORMAT, "metadata key '%s' is a %s, expected bool", key,
                       bn_gguf_type_name(kv->type));
    *out = kv->num.u64 != 0;
    return 0;
}

int bn_gguf_get_str(const bn_gguf *g, const char *key, bn_gguf_str *out, bn_err *err)
{
    const bn_gguf_kv *kv = find_req(g, key, err);
    if (!kv)
        return -1;
    if (kv->type != BN_GGUF_STRING)
        return bn_fail(err, BN_E_FORMAT, "metadata key '%s' is a %s, expected string", key,
                       bn_gguf_type_name(kv->type));
    *out = kv->str;
    return 0;
}

int bn_gguf_get_arr(const bn_gguf *g, const char *key, bn_gguf_type elem, const bn_gguf_kv **out,
                    bn_err *err)
{
    const bn_gguf_kv *kv = find_req(g, key, err);
    if (!kv)
        return -1;
    if (kv->type != BN_GGUF_ARRAY || kv->arr_type != elem)
        return bn_fail(err, BN_E_FORMAT, "metadata key '%s' is a %s%s%s, expected an array of %s",
                       key, bn_gguf_type_name(kv->type), kv->type == BN_GGUF_ARRAY ? " of " : "",
                       kv->type == BN_GGUF_ARRAY ? bn_gguf_type_name(kv->arr_type) : "",
                       bn_gguf_type_name(elem));
    *out = kv;
    return 0;
}

int32_t bn_gguf_arr_i32(const bn_gguf_kv *kv, uint64_t i)
{
    int32_t v;
    memcpy(&v, kv->arr_data + 4 * i, 4);
    return v;
}

float bn_gguf_arr_f32(const bn_gguf_kv *kv, uint64_t i)
{
    float v;
    memcpy(&v, kv->arr_data + 4 * i, 4);
    return v;
}
