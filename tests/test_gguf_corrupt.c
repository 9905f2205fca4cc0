/* Hostile GGUF input: every corrupted-file class, built in memory from the valid fixture
 * (tests/support/gguf_fixture.c), must fail with its own message, never crash or allocate
 * from a claimed count. Each variant is copied into an exact-size heap buffer, so ASan catches
 * any read past the end. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "gguf_fixture.h"
#include "rng.h"

static const char *const fixture_keys[] = {"general.architecture",
                                           "v.u8",
                                           "v.i8",
                                           "v.u16",
                                           "v.i16",
                                           "v.u32",
                                           "v.i32",
                                           "v.u64",
                                           "v.i64",
                                           "v.f32",
                                           "v.f64",
                                           "v.bool",
                                           "v.str",
                                           "v.empty_str",
                                           "a.u8",
                                           "a.i32",
                                           "a.f32",
                                           "a.bool",
                                           "a.u64",
                                           "a.f64",
                                           "a.empty_i16",
                                           "a.str",
                                           "a.empty_str"};
enum {
    N_KEYS = 23
};

typedef struct fixture {
    uint8_t *buf;
    size_t len;
} fixture;

static fixture make(uint32_t alignment)
{
    fixture f;
    f.buf = bn_fixture_gguf(alignment, &f.len);
    assert_non_null(f.buf);
    return f;
}

/* Parses the first n bytes of buf from an exact-size copy; returns 1 when it parsed. */
static int try_open(const uint8_t *buf, size_t n, bn_err *err)
{
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, buf, n);
    bn_gguf *g = bn_gguf_open_memory(copy, n, err);
    int ok = g != NULL;
    if (g) {
        /* walk it as a user would */
        for (uint64_t i = 0; i < g->n_tensors; i++)
            assert_ptr_equal(bn_gguf_find_tensor(g, g->tensors[i].name), &g->tensors[i]);
        for (uint64_t i = 0; i < g->n_kv; i++)
            assert_non_null(bn_gguf_find(g, g->kv[i].key));
    }
    bn_gguf_close(g);
    free(copy);
    return ok;
}

static void expect_fail_n(const uint8_t *buf, size_t n, const char *want)
{
    bn_err err = {0};
    if (try_open(buf, n, &err))
        fail_msg("corrupted file (expecting '%s') was accepted", want);
    if (!strstr(err.msg, want))
        fail_msg("error '%s' does not contain '%s'", err.msg, want);
}

static void expect_fail(const fixture *f, const char *want) { expect_fail_n(f->buf, f->len, want); }

static size_t find(const fixture *f, const char *s)
{
    long at = bn_fixture_find(f->buf, f->len, s, strlen(s));
    assert_true(at > 0);
    return (size_t)at;
}

/* offsets of a key's length field, type field and value */
static size_t key_len_at(const fixture *f, const char *k) { return find(f, k) - 8; }
static size_t type_at(const fixture *f, const char *k) { return find(f, k) + strlen(k); }
static size_t value_at(const fixture *f, const char *k) { return type_at(f, k) + 4; }
/* tensor info fields */
static size_t ndims_at(const fixture *f, const char *t) { return find(f, t) + strlen(t); }
static size_t dim_at(const fixture *f, const char *t, int d)
{
    return ndims_at(f, t) + 4 + 8 * (size_t)d;
}
static size_t ttype_at(const fixture *f, const char *t, int n_dims) { return dim_at(f, t, n_dims); }
static size_t toff_at(const fixture *f, const char *t, int n_dims)
{
    return dim_at(f, t, n_dims) + 4;
}

static void test_magic_and_version(void **state)
{
    (void)state;
    fixture f = make(0);
    memcpy(f.buf, "GGML", 4);
    expect_fail(&f, "bad magic 47 47 4d 4c (expected 'GGUF'): not a GGUF file");
    memcpy(f.buf, "GGUF", 4);
    bn_fixture_put_u32(f.buf, 4, 1);
    expect_fail(&f, "unsupported GGUF version 1 (this reader handles 2 and 3)");
    bn_fixture_put_u32(f.buf, 4, 4);
    expect_fail(&f, "unsupported GGUF version 4");
    bn_fixture_put_u32(f.buf, 4, 0x03000000); /* version 3 written big-endian */
    expect_fail(
        &f, "unsupported GGUF version 50331648 (this reader handles 2 and 3; big-endian file?)");
    free(f.buf);
}

/* Every prefix of the file fails (a cut anywhere is truncation), with the message of the
 * section it cuts. */
static void test_truncation_every_prefix(void **state)
{
    (void)state;
    fixture f = make(0);
    bn_err err = {0};
    for (size_t n = 0; n < f.len; n++) {
        if (try_open(f.buf, n, &err))
            fail_msg("prefix of %zu bytes (of %zu) was accepted", n, f.len);
        if (!strstr(err.msg, "truncated") && !strstr(err.msg, "runs past the end") &&
            !strstr(err.msg, "cannot fit"))
            fail_msg("prefix %zu: '%s' does not say the file is cut short", n, err.msg);
    }
    assert_true(try_open(f.buf, f.len, &err));
    free(f.buf);
}

static void test_truncation_section_boundaries(void **state)
{
    (void)state;
    fixture f = make(0);
    char want[160];
    expect_fail_n(f.buf, 0, "truncated: file is 0 bytes, too small for a GGUF header");
    expect_fail_n(f.buf, 3, "truncated: file is 3 bytes");
    expect_fail_n(f.buf, 4, "truncated: version needs 4 bytes at offset 4, file has 0 left");
    expect_fail_n(f.buf, 8, "truncated: tensor count needs 4 bytes at offset 8");
    expect_fail_n(f.buf, 20, "truncated: key count needs 4 bytes at offset 20");
    expect_fail_n(f.buf, 24,
                  "header claims 23 metadata keys, which cannot fit in the 0 bytes left");
    for (int k = 1; k < N_KEYS; k++) {
        size_t at = key_len_at(&f, fixture_keys[k]);
        if (at - 24 < 14 * N_KEYS)
            snprintf(want, sizeof want,
                     "header claims 23 metadata keys, which cannot fit in the "
                     "%zu bytes left",
                     at - 24);
        else
            snprintf(want, sizeof want,
                     "metadata key #%d: truncated: key needs 4 bytes at "
                     "offset %zu, file has 0 left",
                     k, at);
        expect_fail_n(f.buf, at, want);
        /* a cut inside the key's value */
        size_t v = value_at(&f, fixture_keys[k]);
        if (v - 24 >= 14 * N_KEYS) {
            snprintf(want, sizeof want, "key '%s'", fixture_keys[k]);
            expect_fail_n(f.buf, v, want);
        }
    }
    size_t infos = find(&f, BN_FIX_T0) - 8, t1 = find(&f, BN_FIX_T1) - 8,
           t2 = find(&f, BN_FIX_T2) - 8;
    expect_fail_n(f.buf, infos, "header claims 3 tensors, which cannot fit in the 0 bytes left");
    expect_fail_n(f.buf, t1, "header claims 3 tensors");
    if ((t2 - infos) / 33 < 3)
        snprintf(want, sizeof want,
                 "header claims 3 tensors, which cannot fit in the %zu bytes "
                 "left",
                 t2 - infos);
    else
        snprintf(want, sizeof want,
                 "tensor #2: truncated: tensor name needs 4 "
                 "bytes at offset %zu",
                 t2);
    expect_fail_n(f.buf, t2, want);
    expect_fail_n(f.buf, ndims_at(&f, BN_FIX_T2), "tensor 'tensor.charl': truncated: n_dims needs");
    expect_fail_n(f.buf, dim_at(&f, BN_FIX_T2, 1),
                  "tensor 'tensor.charl': truncated: dimension needs");
    expect_fail_n(f.buf, ttype_at(&f, BN_FIX_T2, 2),
                  "tensor 'tensor.charl': truncated: type needs");
    expect_fail_n(f.buf, toff_at(&f, BN_FIX_T2, 2),
                  "tensor 'tensor.charl': truncated: offset needs");
    size_t info_end = toff_at(&f, BN_FIX_T2, 2) + 8;
    size_t data = (info_end + 31) / 32 * 32;
    assert_int_equal(data + 256, f.len);
    if (info_end < data) {
        snprintf(want, sizeof want,
                 "truncated: data section starts at %zu but the file has %zu "
                 "bytes",
                 data, info_end);
        expect_fail_n(f.buf, info_end, want);
    }
    expect_fail_n(f.buf, data,
                  "tensor 'tensor.alpha': data [0, +32) runs past the end of the "
                  "data section (0 bytes; file truncated?)");
    expect_fail_n(f.buf, data + 32, "tensor 'tensor.bravo': data [32, +64) runs past the end");
    expect_fail_n(f.buf, data + 96, "tensor 'tensor.charl': data [96, +160) runs past the end");
    expect_fail_n(f.buf, f.len - 1,
                  "tensor 'tensor.charl': data [96, +160) runs past the end of "
                  "the data section (255 bytes");
    free(f.buf);
}

static void test_huge_counts(void **state)
{
    (void)state;
    const uint64_t huge[] = {UINT64_MAX, UINT64_C(1) << 63, UINT64_C(1) << 40, 100000};
    for (size_t h = 0; h < sizeof huge / sizeof huge[0]; h++) {
        fixture f = make(0);
        uint8_t *orig = malloc(f.len);
        memcpy(orig, f.buf, f.len);
        char want[200];
        const uint64_t v = huge[h];
#define RESET() memcpy(f.buf, orig, f.len)
        bn_fixture_put_u64(f.buf, 16, v);
        snprintf(want, sizeof want, "header claims %llu metadata keys, which cannot fit",
                 (unsigned long long)v);
        expect_fail(&f, want);
        RESET();
        bn_fixture_put_u64(f.buf, 8, v);
        snprintf(want, sizeof want, "header claims %llu tensors, which cannot fit",
                 (unsigned long long)v);
        expect_fail(&f, want);
        RESET();
        /* numeric array length (after the element type) */
        bn_fixture_put_u64(f.buf, value_at(&f, "a.i32") + 4, v);
        snprintf(want, sizeof want,
                 "key 'a.i32': array of %llu i32 elements runs past the end "
                 "of the file",
                 (unsigned long long)v);
        expect_fail(&f, want);
        RESET();
        bn_fixture_put_u64(f.buf, value_at(&f, "a.str") + 4, v);
        snprintf(want, sizeof want, "key 'a.str': array of %llu strings cannot fit",
                 (unsigned long long)v);
        expect_fail(&f, want);
        RESET();
        bn_fixture_put_u64(f.buf, value_at(&f, "a.empty_str") + 4, v);
        snprintf(want, sizeof want, "key 'a.empty_str': array of %llu strings cannot fit",
                 (unsigned long long)v);
        expect_fail(&f, want);
        RESET();
        /* string lengths: a value, an array element, a key, a tensor name */
        bn_fixture_put_u64(f.buf, value_at(&f, "v.str"), v);
        snprintf(want, sizeof want,
                 "key 'v.str': string value: string length %llu at offset %zu "
                 "runs past the end of the file",
                 (unsigned long long)v, value_at(&f, "v.str"));
        expect_fail(&f, want);
        RESET();
        bn_fixture_put_u64(f.buf, value_at(&f, "a.str") + 12, v);
        snprintf(want, sizeof want, "key 'a.str' element 0: array string: string length %llu",
                 (unsigned long long)v);
        expect_fail(&f, want);
        RESET();
        bn_fixture_put_u64(f.buf, key_len_at(&f, "v.u8"), v);
        snprintf(want, sizeof want, "metadata key #1: key: string length %llu",
                 (unsigned long long)v);
        expect_fail(&f, want);
        RESET();
        bn_fixture_put_u64(f.buf, find(&f, BN_FIX_T1) - 8, v);
        snprintf(want, sizeof want, "tensor #1: tensor name: string length %llu",
                 (unsigned long long)v);
        expect_fail(&f, want);
#undef RESET
        free(orig);
        free(f.buf);
    }
}

static void test_bad_values(void **state)
{
    (void)state;
    fixture f = make(0);
    uint8_t *orig = malloc(f.len);
    memcpy(orig, f.buf, f.len);
    bn_fixture_put_u32(f.buf, type_at(&f, "v.u8"), 13);
    expect_fail(&f, "key 'v.u8': unknown value type 13 at offset");
    memcpy(f.buf, orig, f.len);
    bn_fixture_put_u32(f.buf, value_at(&f, "a.u8"), BN_GGUF_ARRAY);
    expect_fail(&f, "key 'a.u8': arrays of arrays are not supported");
    memcpy(f.buf, orig, f.len);
    bn_fixture_put_u32(f.buf, value_at(&f, "a.u8"), 13);
    expect_fail(&f, "key 'a.u8': unknown array element type 13");
    memcpy(f.buf, orig, f.len);
    f.buf[value_at(&f, "v.bool")] = 2;
    expect_fail(&f, "key 'v.bool': bool value 2 is not 0 or 1");
    memcpy(f.buf, orig, f.len);
    f.buf[value_at(&f, "a.bool") + 12 + 1] = 7;
    expect_fail(&f, "key 'a.bool': bool element 1 is 7, not 0 or 1");
    memcpy(f.buf, orig, f.len);
    bn_fixture_put_u64(f.buf, key_len_at(&f, "v.u8"), 0);
    expect_fail(&f, "metadata key #1 at offset");
    expect_fail(&f, "key length 0 is out of range (1..65535)");
    memcpy(f.buf, orig, f.len);
    f.buf[find(&f, "v.u16") + 2] = 0;
    expect_fail(&f, "metadata key #3 at offset");
    expect_fail(&f, "contains a NUL byte");
    memcpy(f.buf, orig, f.len);
    /* "v.i8" -> "v.u8": the same key twice */
    f.buf[find(&f, "v.i8") + 2] = 'u';
    expect_fail(&f, "duplicate metadata key 'v.u8' (#1 and #2)");
    free(orig);
    free(f.buf);
}

static void test_bad_alignment(void **state)
{
    (void)state;
    fixture f = make(64);
    size_t v = value_at(&f, "general.alignment");
    bn_err err = {0};
    assert_true(try_open(f.buf, f.len, &err));
    bn_fixture_put_u32(f.buf, v, 48);
    expect_fail(&f, "general.alignment must be a u32 power of two up to 1 MiB (got u32 48)");
    bn_fixture_put_u32(f.buf, v, 0);
    expect_fail(&f, "(got u32 0)");
    bn_fixture_put_u32(f.buf, v, 1u << 21);
    expect_fail(&f, "(got u32 2097152)");
    bn_fixture_put_u32(f.buf, v, 64);
    bn_fixture_put_u32(f.buf, type_at(&f, "general.alignment"), BN_GGUF_I32);
    expect_fail(&f, "(got i32 64)");
    /* a valid alignment that the tensor offsets do not follow */
    bn_fixture_put_u32(f.buf, type_at(&f, "general.alignment"), BN_GGUF_U32);
    bn_fixture_put_u32(f.buf, v, 128);
    expect_fail(&f, "tensor 'tensor.bravo': offset 64 is not a multiple of the alignment 128");
    free(f.buf);
}

static void test_bad_tensor_infos(void **state)
{
    (void)state;
    fixture f = make(0);
    uint8_t *orig = malloc(f.len);
    memcpy(orig, f.buf, f.len);
#define RESET() memcpy(f.buf, orig, f.len)
    bn_fixture_put_u32(f.buf, ndims_at(&f, BN_FIX_T0), 0);
    expect_fail(&f, "tensor 'tensor.alpha': 0 dimensions (must be 1..4)");
    bn_fixture_put_u32(f.buf, ndims_at(&f, BN_FIX_T0), 5);
    expect_fail(&f, "tensor 'tensor.alpha': 5 dimensions (must be 1..4)");
    RESET();
    bn_fixture_put_u64(f.buf, dim_at(&f, BN_FIX_T0, 0), 0);
    expect_fail(&f,
                "tensor 'tensor.alpha': dimension 0 = 0 makes the element count zero or overflow");
    RESET();
    bn_fixture_put_u64(f.buf, dim_at(&f, BN_FIX_T1, 0), UINT64_C(1) << 40);
    bn_fixture_put_u64(f.buf, dim_at(&f, BN_FIX_T1, 1), UINT64_C(1) << 40);
    expect_fail(&f, "tensor 'tensor.bravo': dimension 1 = 1099511627776 makes the element count "
                    "zero or overflow");
    RESET();
    bn_fixture_put_u32(f.buf, ttype_at(&f, BN_FIX_T0, 1), 99);
    expect_fail(&f, "tensor 'tensor.alpha': unknown ggml type 99");
    bn_fixture_put_u32(f.buf, ttype_at(&f, BN_FIX_T0, 1), 37); /* I8_S: not a file type */
    expect_fail(&f, "tensor 'tensor.alpha': unknown ggml type 37");
    /* bitnet.cpp's lookup-table layouts: refused by name, pointing at the I2_S file */
    bn_fixture_put_u32(f.buf, ttype_at(&f, BN_FIX_T0, 1), 38);
    expect_fail(&f, "tensor 'tensor.alpha': type TL1 (bitnet.cpp's ARM lookup-table layout) is not "
                    "supported; use the I2_S file of this model");
    bn_fixture_put_u32(f.buf, ttype_at(&f, BN_FIX_T0, 1), 39);
    expect_fail(&f, "tensor 'tensor.alpha': type TL2 (bitnet.cpp's x86 lookup-table layout)");
    RESET();
    bn_fixture_put_u64(f.buf, dim_at(&f, BN_FIX_T2, 0), 3);
    bn_fixture_put_u64(f.buf, dim_at(&f, BN_FIX_T2, 1), 1);
    expect_fail(&f, "tensor 'tensor.charl': 3 elements do not fill whole I2_S blocks of 4");
    RESET();
    bn_fixture_put_u64(f.buf, find(&f, BN_FIX_T1) - 8, 0);
    expect_fail(&f, "tensor #1 at offset");
    expect_fail(&f, "bad name (length 0; must be 1..255 bytes without NUL)");
    RESET();
    bn_fixture_put_u64(f.buf, toff_at(&f, BN_FIX_T1, 2), 48);
    expect_fail(&f, "tensor 'tensor.bravo': offset 48 is not a multiple of the alignment 32");
    RESET();
    bn_fixture_put_u64(f.buf, toff_at(&f, BN_FIX_T2, 2), UINT64_C(1) << 40);
    expect_fail(&f, "tensor 'tensor.charl': data [1099511627776, +160) runs past the end of the "
                    "data section (256 bytes; file truncated?)");
    bn_fixture_put_u64(f.buf, toff_at(&f, BN_FIX_T2, 2), UINT64_MAX - 31);
    expect_fail(&f, "tensor 'tensor.charl': data [18446744073709551584, +160) runs past the end");
    bn_fixture_put_u64(f.buf, toff_at(&f, BN_FIX_T2, 2), 128);
    expect_fail(&f, "tensor 'tensor.charl': data [128, +160) runs past the end");
    RESET();
    bn_fixture_put_u64(f.buf, toff_at(&f, BN_FIX_T2, 2), 64);
    expect_fail(&f,
                "tensor 'tensor.charl' [64, +160) overlaps tensor 'tensor.bravo' which ends at 96");
    RESET();
    bn_fixture_put_u64(f.buf, toff_at(&f, BN_FIX_T1, 2), 0);
    expect_fail(&f,
                "tensor 'tensor.bravo' [0, +64) overlaps tensor 'tensor.alpha' which ends at 32");
    RESET();
    memcpy(f.buf + find(&f, BN_FIX_T2), BN_FIX_T1, strlen(BN_FIX_T1));
    expect_fail(&f, "duplicate tensor name 'tensor.bravo' (#1 and #2)");
#undef RESET
    free(orig);
    free(f.buf);
}

/* Every byte of header, metadata and tensor table set to a few hostile values, and random
 * multi-byte damage: the reader may accept or refuse, but must not crash (ASan/UBSan). */
static void test_byte_damage_never_crashes(void **state)
{
    (void)state;
    fixture f = make(64);
    bn_err err = {0};
    const uint8_t vals[] = {0x00, 0xff, 0x80, 0x7f, 0x01, 0x20};
    size_t meta = find(&f, BN_FIX_T2) + 64;
    int accepted = 0;
    for (size_t i = 0; i < meta && i < f.len; i++) {
        uint8_t old = f.buf[i];
        for (size_t v = 0; v < sizeof vals; v++) {
            f.buf[i] = vals[v];
            accepted += try_open(f.buf, f.len, &err);
        }
        f.buf[i] = old;
    }
    bn_rng r;
    bn_rng_seed(&r, 42);
    uint8_t *copy = malloc(f.len);
    for (int round = 0; round < 3000; round++) {
        memcpy(copy, f.buf, f.len);
        int flips = 1 + (int)bn_rng_below(&r, 4);
        for (int k = 0; k < flips; k++)
            copy[bn_rng_below(&r, meta)] = (uint8_t)bn_rng_next(&r);
        accepted += try_open(copy, (size_t)bn_rng_below(&r, f.len + 1), &err);
    }
    /* damage inside string/number payloads leaves a valid file: some variants must parse */
    assert_true(accepted > 0);
    free(copy);
    free(f.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_magic_and_version),
        cmocka_unit_test(test_truncation_every_prefix),
        cmocka_unit_test(test_truncation_section_boundaries),
        cmocka_unit_test(test_huge_counts),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_bad_alignment),
        cmocka_unit_test(test_bad_tensor_infos),
        cmocka_unit_test(test_byte_damage_never_crashes),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
