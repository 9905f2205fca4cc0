/* GGUF writer -> reader round trips: every metadata value type, arrays of strings, empty
 * arrays, the alignment key, typed getters and their errors, the writer's own errors. The
 * corrupted-file classes are in test_gguf_corrupt.c. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "gguf_fixture.h"
#include "gguf_writer.h"

static bn_gguf *open_ok(const uint8_t *buf, size_t len)
{
    bn_err err = {0};
    bn_gguf *g = bn_gguf_open_memory(buf, len, &err);
    if (!g)
        fail_msg("open failed: %s", err.msg);
    return g;
}

static void expect_err(const bn_err *err, const char *want)
{
    if (!strstr(err->msg, want))
        fail_msg("error '%s' does not contain '%s'", err->msg, want);
}

static void test_round_trip_every_type(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = bn_fixture_gguf(0, &len);
    assert_non_null(buf);
    bn_gguf *g = open_ok(buf, len);
    bn_err err = {0};
    assert_int_equal(g->version, 3);
    assert_int_equal(g->n_kv, 23);
    assert_int_equal(g->n_tensors, 3);
    assert_int_equal(g->alignment, 32);

    /* keys keep their order of addition */
    assert_string_equal(g->kv[0].key, "general.architecture");
    assert_string_equal(g->kv[22].key, "a.empty_str");

    const bn_gguf_kv *kv;
    assert_non_null(kv = bn_gguf_find(g, "v.u8"));
    assert_int_equal(kv->type, BN_GGUF_U8);
    assert_int_equal(kv->num.u64, 200);
    assert_non_null(kv = bn_gguf_find(g, "v.i8"));
    assert_int_equal(kv->type, BN_GGUF_I8);
    assert_int_equal(kv->num.i64, -100);
    assert_int_equal(bn_gguf_find(g, "v.u16")->num.u64, 60000);
    assert_int_equal(bn_gguf_find(g, "v.i16")->num.i64, -30000);
    assert_int_equal(bn_gguf_find(g, "v.u32")->num.u64, 4000000000u);
    assert_int_equal(bn_gguf_find(g, "v.i32")->num.i64, -2000000000);
    assert_true(bn_gguf_find(g, "v.u64")->num.u64 == 0x123456789abcdef0ull);
    assert_true(bn_gguf_find(g, "v.i64")->num.i64 == -0x123456789abcdefll);
    assert_true(bn_gguf_find(g, "v.f32")->num.f64 == 1.5);
    assert_int_equal(bn_gguf_find(g, "v.f64")->type, BN_GGUF_F64);
    assert_true(bn_gguf_find(g, "v.f64")->num.f64 == -2.25e100);
    assert_int_equal(bn_gguf_find(g, "v.bool")->type, BN_GGUF_BOOL);
    assert_int_equal(bn_gguf_find(g, "v.bool")->num.u64, 1);
    bn_gguf_str s;
    assert_int_equal(bn_gguf_get_str(g, "v.str", &s, &err), 0);
    assert_true(bn_gguf_str_eq(s, "h\xc3\xa9llo \"w\""));
    assert_int_equal(bn_gguf_get_str(g, "v.empty_str", &s, &err), 0);
    assert_int_equal(s.len, 0);

    const bn_gguf_kv *a;
    assert_int_equal(bn_gguf_get_arr(g, "a.u8", BN_GGUF_U8, &a, &err), 0);
    assert_int_equal(a->arr_len, 3);
    assert_int_equal(a->arr_data[2], 255);
    assert_int_equal(bn_gguf_get_arr(g, "a.i32", BN_GGUF_I32, &a, &err), 0);
    assert_int_equal(a->arr_len, 4);
    assert_int_equal(bn_gguf_arr_i32(a, 0), -1);
    assert_int_equal(bn_gguf_arr_i32(a, 3), 2147483647);
    assert_int_equal(bn_gguf_get_arr(g, "a.f32", BN_GGUF_F32, &a, &err), 0);
    assert_true(bn_gguf_arr_f32(a, 0) == 0.25f && bn_gguf_arr_f32(a, 1) == -8.0f);
    assert_int_equal(bn_gguf_get_arr(g, "a.bool", BN_GGUF_BOOL, &a, &err), 0);
    assert_memory_equal(a->arr_data, "\1\0\1", 3);
    assert_int_equal(bn_gguf_get_arr(g, "a.u64", BN_GGUF_U64, &a, &err), 0);
    assert_int_equal(a->arr_data[15], 0xff);
    assert_int_equal(bn_gguf_get_arr(g, "a.f64", BN_GGUF_F64, &a, &err), 0);
    double d;
    memcpy(&d, a->arr_data, 8);
    assert_true(d == 3.0);
    assert_int_equal(bn_gguf_get_arr(g, "a.empty_i16", BN_GGUF_I16, &a, &err), 0);
    assert_int_equal(a->arr_len, 0);
    assert_int_equal(bn_gguf_get_arr(g, "a.str", BN_GGUF_STRING, &a, &err), 0);
    assert_int_equal(a->arr_len, 3);
    assert_true(bn_gguf_str_eq(a->arr_strs[0], "one"));
    assert_true(bn_gguf_str_eq(a->arr_strs[1], ""));
    assert_true(bn_gguf_str_eq(a->arr_strs[2], "three"));
    assert_int_equal(bn_gguf_get_arr(g, "a.empty_str", BN_GGUF_STRING, &a, &err), 0);
    assert_int_equal(a->arr_len, 0);

    /* tensors: types, dims, sizes, offsets (aligned, in order), data */
    const bn_gguf_tensor *t0 = bn_gguf_find_tensor(g, BN_FIX_T0);
    const bn_gguf_tensor *t1 = bn_gguf_find_tensor(g, BN_FIX_T1);
    const bn_gguf_tensor *t2 = bn_gguf_find_tensor(g, BN_FIX_T2);
    assert_non_null(t0);
    assert_non_null(t1);
    assert_non_null(t2);
    assert_null(bn_gguf_find_tensor(g, "tensor.delta"));
    assert_int_equal(t0->type, BN_GGML_F32);
    assert_int_equal(t0->n_dims, 1);
    assert_int_equal(t0->ne[0], 8);
    assert_int_equal(t0->ne[1], 1);
    assert_int_equal(t0->nbytes, 32);
    assert_int_equal(t1->n_dims, 2);
    assert_int_equal(t1->nbytes, 64);
    assert_int_equal(t2->type, BN_GGML_I2_S);
    assert_int_equal(t2->nbytes, 128 * 4 / 4 + 32);
    assert_int_equal(t0->offset, 0);
    assert_int_equal(t1->offset, 32);
    assert_int_equal(t2->offset, 96);
    assert_int_equal(g->data_offset % 32, 0);
    assert_int_equal(g->data_size, 96 + 160);
    assert_int_equal(len, g->data_offset + 256);
    const bn_gguf_tensor *ts[3] = {t0, t1, t2};
    for (int i = 0; i < 3; i++) {
        assert_ptr_equal(ts[i]->data, buf + g->data_offset + ts[i]->offset);
        for (uint64_t j = 0; j < ts[i]->nbytes; j++)
            assert_int_equal(((const uint8_t *)ts[i]->data)[j], bn_fixture_byte(i, j));
    }
    bn_gguf_close(g);
    free(buf);
}

static void test_alignment_key(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = bn_fixture_gguf(64, &len);
    assert_non_null(buf);
    bn_gguf *g = open_ok(buf, len);
    assert_int_equal(g->alignment, 64);
    assert_int_equal(g->data_offset % 64, 0);
    assert_int_equal(bn_gguf_find_tensor(g, BN_FIX_T1)->offset, 64);
    assert_int_equal(bn_gguf_find_tensor(g, BN_FIX_T2)->offset, 128);
    assert_int_equal(len, g->data_offset + 128 + 192);
    for (int i = 0; i < 3; i++) {
        const char *names[] = {BN_FIX_T0, BN_FIX_T1, BN_FIX_T2};
        const bn_gguf_tensor *t = bn_gguf_find_tensor(g, names[i]);
        assert_int_equal(((const uint8_t *)t->data)[t->nbytes - 1],
                         bn_fixture_byte(i, t->nbytes - 1));
    }
    bn_gguf_close(g);
    free(buf);
}

static void test_typed_getters(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = bn_fixture_gguf(0, &len);
    bn_gguf *g = open_ok(buf, len);
    bn_err err = {0};
    uint32_t u;
    float f;
    bool b;
    bn_gguf_str s;
    const bn_gguf_kv *a;
    /* integers of any width convert when the value fits */
    assert_int_equal(bn_gguf_get_u32(g, "v.u8", &u, &err), 0);
    assert_int_equal(u, 200);
    assert_int_equal(bn_gguf_get_u32(g, "v.u16", &u, &err), 0);
    assert_int_equal(u, 60000);
    assert_int_equal(bn_gguf_get_u32(g, "v.u32", &u, &err), 0);
    assert_int_equal(u, 4000000000u);
    assert_int_equal(bn_gguf_get_f32(g, "v.f32", &f, &err), 0);
    assert_true(f == 1.5f);
    assert_int_equal(bn_gguf_get_f32(g, "v.f64", &f, &err), 0);
    assert_int_equal(bn_gguf_get_bool(g, "v.bool", &b, &err), 0);
    assert_true(b);

    assert_int_equal(bn_gguf_get_u32(g, "nope", &u, &err), -1);
    expect_err(&err, "missing metadata key 'nope'");
    assert_int_equal(bn_gguf_get_u32(g, "v.i8", &u, &err), -1);
    expect_err(&err, "metadata key 'v.i8' is out of range for u32");
    assert_int_equal(bn_gguf_get_u32(g, "v.u64", &u, &err), -1);
    expect_err(&err, "metadata key 'v.u64' is out of range for u32");
    assert_int_equal(bn_gguf_get_u32(g, "v.str", &u, &err), -1);
    expect_err(&err, "metadata key 'v.str' is a string, expected an unsigned integer");
    assert_int_equal(bn_gguf_get_u32(g, "v.f32", &u, &err), -1);
    expect_err(&err, "metadata key 'v.f32' is a f32, expected an unsigned integer");
    assert_int_equal(bn_gguf_get_f32(g, "v.u32", &f, &err), -1);
    expect_err(&err, "metadata key 'v.u32' is a u32, expected f32");
    assert_int_equal(bn_gguf_get_bool(g, "v.u8", &b, &err), -1);
    expect_err(&err, "metadata key 'v.u8' is a u8, expected bool");
    assert_int_equal(bn_gguf_get_str(g, "a.str", &s, &err), -1);
    expect_err(&err, "metadata key 'a.str' is a array, expected string");
    assert_int_equal(bn_gguf_get_arr(g, "a.str", BN_GGUF_I32, &a, &err), -1);
    expect_err(&err, "metadata key 'a.str' is a array of string, expected an array of i32");
    assert_int_equal(bn_gguf_get_arr(g, "v.u8", BN_GGUF_U8, &a, &err), -1);
    expect_err(&err, "metadata key 'v.u8' is a u8, expected an array of u8");
    assert_int_equal(bn_gguf_get_arr(g, "missing.arr", BN_GGUF_U8, &a, &err), -1);
    expect_err(&err, "missing metadata key 'missing.arr'");
    bn_gguf_close(g);
    free(buf);
}

static void test_type_names_and_sizes(void **state)
{
    (void)state;
    bn_err err = {0};
    assert_string_equal(bn_gguf_type_name(BN_GGUF_F64), "f64");
    assert_string_equal(bn_gguf_type_name((bn_gguf_type)99), "?");
    assert_string_equal(bn_ggml_type_name(BN_GGML_I2_S), "I2_S");
    assert_string_equal(bn_ggml_type_name(37), "?");
    /* FORMAT.md 1: F32 4n, F16 2n, I2_S n/4 + 32; Q8_0 34 bytes per 32 */
    assert_int_equal(bn_ggml_nbytes(BN_GGML_F32, 2560, &err), 10240);
    assert_int_equal(bn_ggml_nbytes(BN_GGML_F16, 2560ull * 128256, &err), 656670720ull);
    assert_int_equal(bn_ggml_nbytes(BN_GGML_I2_S, 6912ull * 2560, &err), 4423712);
    assert_int_equal(bn_ggml_nbytes(BN_GGML_BF16, 3, &err), 6);
    assert_int_equal(bn_ggml_nbytes(BN_GGML_Q8_0, 64, &err), 68);
    assert_int_equal(bn_ggml_nbytes(BN_GGML_Q8_0, 33, &err), 0);
    expect_err(&err, "33 elements do not fill whole Q8_0 blocks of 32");
    assert_int_equal(bn_ggml_nbytes(99, 4, &err), 0);
    expect_err(&err, "unknown ggml type 99");
    /* sizes past 2^64 bytes are refused with a reason, not wrapped */
    assert_int_equal(bn_ggml_nbytes(BN_GGML_F32, UINT64_C(1) << 62, &err), 0);
    expect_err(&err, "4611686018427387904 F32 elements take more than 2^64 bytes");
    assert_int_equal(bn_ggml_nbytes(BN_GGML_F64, (UINT64_C(1) << 61) + 1, &err), 0);
    expect_err(&err, "F64 elements take more than 2^64 bytes");
    assert_int_equal(bn_ggml_nbytes(BN_GGML_F64, (UINT64_C(1) << 61) - 1, &err),
                     UINT64_C(0xfffffffffffffff8));
}

static int fill_n(bn_gguf_writer *w, uint64_t i, void *ctx, bn_err *err)
{
    const size_t *n = ctx;
    uint8_t b[64] = {0};
    (void)i;
    return bn_gguf_writer_data(w, b, *n, err);
}

static void test_writer_errors(void **state)
{
    (void)state;
    bn_err err = {0};
    size_t len, n;
    const uint64_t ne[1] = {4};

    /* unknown tensor type: reported once, by begin */
    bn_gguf_writer *w = bn_gguf_writer_new();
    assert_int_equal(bn_gguf_writer_add_tensor(w, "t", 99, 1, ne), 0);
    n = 0;
    assert_null(bn_fixture_write(w, 0, fill_n, &n, &len, &err));
    expect_err(&err, "unknown ggml type 99");

    /* too few bytes for the table */
    w = bn_gguf_writer_new();
    bn_gguf_writer_add_tensor(w, "t", BN_GGML_F32, 1, ne);
    n = 15;
    assert_null(bn_fixture_write(w, 1, fill_n, &n, &len, &err));
    expect_err(&err, "tensor 't' got 15 of its 16 bytes");

    /* too many */
    w = bn_gguf_writer_new();
    bn_gguf_writer_add_tensor(w, "t", BN_GGML_F32, 1, ne);
    n = 17;
    assert_null(bn_fixture_write(w, 1, fill_n, &n, &len, &err));
    expect_err(&err, "1 bytes of tensor data beyond the last tensor");

    /* an alignment that is not a power of two */
    w = bn_gguf_writer_new();
    bn_gguf_writer_add_u32(w, "general.alignment", 48);
    n = 0;
    assert_null(bn_fixture_write(w, 0, fill_n, &n, &len, &err));
    expect_err(&err, "general.alignment must be a power of two");

    /* zero tensors, zero keys: the smallest valid file is the 24-byte header */
    w = bn_gguf_writer_new();
    uint8_t *buf = bn_fixture_write(w, 0, fill_n, &n, &len, &err);
    assert_non_null(buf);
    assert_int_equal(len, 32); /* header padded to the alignment */
    bn_gguf *g = open_ok(buf, 24);
    assert_int_equal(g->n_kv, 0);
    assert_int_equal(g->n_tensors, 0);
    assert_null(bn_gguf_find(g, "x"));
    assert_null(bn_gguf_find_tensor(g, "x"));
    bn_gguf_close(g);
    free(buf);
}

/* A parsed key copied through bn_gguf_writer_add_kv keeps its type and value. */
static void test_copy_kv(void **state)
{
    (void)state;
    size_t len, len2;
    uint8_t *buf = bn_fixture_gguf(0, &len);
    bn_gguf *g = open_ok(buf, len);
    bn_gguf_writer *w = bn_gguf_writer_new();
    for (uint64_t i = 0; i < g->n_kv; i++)
        bn_gguf_writer_add_kv(w, NULL, &g->kv[i]);
    bn_gguf_writer_add_kv(w, "renamed", bn_gguf_find(g, "v.i64"));
    bn_err err = {0};
    size_t zero = 0;
    uint8_t *buf2 = bn_fixture_write(w, 0, fill_n, &zero, &len2, &err);
    assert_non_null(buf2);
    bn_gguf *g2 = open_ok(buf2, len2);
    assert_int_equal(g2->n_kv, g->n_kv + 1);
    /* the metadata section is byte-identical to the original's */
    long end1 = bn_fixture_find(buf, len, BN_FIX_T0, strlen(BN_FIX_T0)) - 8;
    assert_true(end1 > 24);
    assert_memory_equal(buf + 24, buf2 + 24, (size_t)end1 - 24);
    assert_true(bn_gguf_find(g2, "renamed")->num.i64 == -0x123456789abcdefll);
    bn_gguf_close(g2);
    bn_gguf_close(g);
    free(buf2);
    free(buf);
}

/* bn_gguf_open maps a file; missing/empty files fail with their own messages. */
static void test_open_file(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = bn_fixture_gguf(0, &len);
    char *path = bn_test_tmpfile(".gguf");
    assert_int_equal(bn_test_write_file(path, buf, len), 0);
    bn_err err = {0};
    bn_gguf *g = bn_gguf_open(path, &err);
    if (!g)
        fail_msg("%s", err.msg);
    assert_int_equal(g->n_tensors, 3);
    assert_memory_equal(bn_gguf_find_tensor(g, BN_FIX_T2)->data, buf + g->data_offset + 96, 160);
    bn_gguf_close(g);
    assert_int_equal(bn_test_write_file(path, buf, 0), 0);
    assert_null(bn_gguf_open(path, &err));
    expect_err(&err, "truncated: the file is empty");
    remove(path);
    assert_null(bn_gguf_open(path, &err));
    expect_err(&err, "cannot open");
    /* a FIFO without a writer: refused at once instead of blocking in open() (the alarm turns
     * a hang into a failure) */
    assert_int_equal(mkfifo(path, 0600), 0);
    alarm(10);
    assert_null(bn_gguf_open(path, &err));
    alarm(0);
    expect_err(&err, "not a regular file");
    remove(path);
    free(path);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_alignment_key),
        cmocka_unit_test(test_typed_getters),
        cmocka_unit_test(test_type_names_and_sizes),
        cmocka_unit_test(test_writer_errors),
        cmocka_unit_test(test_copy_kv),
        cmocka_unit_test(test_open_file),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
