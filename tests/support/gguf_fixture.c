/* See gguf_fixture.h. */
#include "gguf_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint8_t bn_fixture_byte(int tensor, uint64_t j)
{
    return (uint8_t)(j * 7 + (uint64_t)tensor * 50 + 1);
}

static int fill_pattern(bn_gguf_writer *w, uint64_t i, void *ctx, bn_err *err)
{
    const uint64_t *sizes = ctx;
    uint8_t b[256];
    /* odd chunk sizes exercise the writer's streaming across calls */
    for (uint64_t done = 0; done < sizes[i];) {
        uint64_t k = sizes[i] - done < 37 ? sizes[i] - done : 37;
        for (uint64_t j = 0; j < k; j++)
            b[j] = bn_fixture_byte((int)i, done + j);
        if (bn_gguf_writer_data(w, b, (size_t)k, err))
            return -1;
        done += k;
    }
    return 0;
}

uint8_t *bn_fixture_write(bn_gguf_writer *w, uint64_t n_tensors, bn_fixture_fill fill, void *ctx,
                          size_t *len, bn_err *err)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    int rc = -1;
    if (f && bn_gguf_writer_begin(w, f, err) == 0) {
        rc = 0;
        for (uint64_t i = 0; i < n_tensors && rc == 0; i++)
            rc = fill(w, i, ctx, err);
        if (rc == 0)
            rc = bn_gguf_writer_finish(w, err);
    }
    if (f)
        fclose(f);
    bn_gguf_writer_free(w);
    if (rc) {
        free(buf);
        return NULL;
    }
    *len = n;
    return (uint8_t *)buf;
}

uint8_t *bn_fixture_gguf(uint32_t alignment, size_t *len)
{
    bn_gguf_writer *w = bn_gguf_writer_new();
    if (alignment)
        bn_gguf_writer_add_u32(w, "general.alignment", alignment);
    bn_gguf_writer_add_str(w, "general.architecture", "fixture");
    bn_gguf_writer_add_u8(w, "v.u8", 200);
    bn_gguf_writer_add_i8(w, "v.i8", -100);
    bn_gguf_writer_add_u16(w, "v.u16", 60000);
    bn_gguf_writer_add_i16(w, "v.i16", -30000);
    bn_gguf_writer_add_u32(w, "v.u32", 4000000000u);
    bn_gguf_writer_add_i32(w, "v.i32", -2000000000);
    bn_gguf_writer_add_u64(w, "v.u64", 0x123456789abcdef0ull);
    bn_gguf_writer_add_i64(w, "v.i64", -0x123456789abcdefll);
    bn_gguf_writer_add_f32(w, "v.f32", 1.5f);
    bn_gguf_writer_add_f64(w, "v.f64", -2.25e100);
    bn_gguf_writer_add_bool(w, "v.bool", 1);
    bn_gguf_writer_add_str(w, "v.str", "h\xc3\xa9llo \"w\"");
    bn_gguf_writer_add_str(w, "v.empty_str", "");
    const uint8_t u8s[3] = {1, 2, 255};
    const int32_t i32s[4] = {-1, 0, 7, 2147483647};
    const float f32s[2] = {0.25f, -8.0f};
    const uint8_t bools[3] = {1, 0, 1};
    const uint64_t u64s[2] = {1, 0xffffffffffffffffull};
    const double f64s[1] = {3.0};
    bn_gguf_writer_add_arr(w, "a.u8", BN_GGUF_U8, u8s, 3);
    bn_gguf_writer_add_arr(w, "a.i32", BN_GGUF_I32, i32s, 4);
    bn_gguf_writer_add_arr(w, "a.f32", BN_GGUF_F32, f32s, 2);
    bn_gguf_writer_add_arr(w, "a.bool", BN_GGUF_BOOL, bools, 3);
    bn_gguf_writer_add_arr(w, "a.u64", BN_GGUF_U64, u64s, 2);
    bn_gguf_writer_add_arr(w, "a.f64", BN_GGUF_F64, f64s, 1);
    bn_gguf_writer_add_arr(w, "a.empty_i16", BN_GGUF_I16, NULL, 0);
    const char *strs[3] = {"one", "", "three"};
    bn_gguf_writer_add_arr_str(w, "a.str", strs, 3);
    bn_gguf_writer_add_arr_str(w, "a.empty_str", strs, 0);
    const uint64_t ne0[1] = {8}, ne1[2] = {16, 2}, ne2[2] = {128, 4};
    uint64_t sizes[3];
    sizes[0] = bn_gguf_writer_add_tensor(w, BN_FIX_T0, BN_GGML_F32, 1, ne0);
    sizes[1] = bn_gguf_writer_add_tensor(w, BN_FIX_T1, BN_GGML_F16, 2, ne1);
    sizes[2] = bn_gguf_writer_add_tensor(w, BN_FIX_T2, BN_GGML_I2_S, 2, ne2);
    bn_err err;
    return bn_fixture_write(w, 3, fill_pattern, sizes, len, &err);
}

long bn_fixture_find(const uint8_t *buf, size_t len, const void *needle, size_t n)
{
    const uint8_t *p = memmem(buf, len, needle, n);
    return p ? (long)(p - buf) : -1;
}

void bn_fixture_put_u32(uint8_t *buf, size_t off, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        buf[off + (size_t)i] = (uint8_t)(v >> (8 * i));
}

void bn_fixture_put_u64(uint8_t *buf, size_t off, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        buf[off + (size_t)i] = (uint8_t)(v >> (8 * i));
}

uint64_t bn_fixture_get_u64(const uint8_t *buf, size_t off)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)buf[off + (size_t)i] << (8 * i);
    return v;
}
