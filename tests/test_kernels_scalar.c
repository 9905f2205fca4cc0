/* Bit-exact integer parts of the kernels against hand-computed cases (src/EXACTNESS.md; the
 * reference: FORMAT.md 4.3): the
 * activation quantization's rounding and scale, the ternary dot product on hand-packed I2_S
 * blocks (every code in every bit position of the byte), and the IEEE half conversions at
 * their edges. The integer cases run on every kernel path this CPU supports; the summation
 * order of dot_f16 is checked on the scalar twin, which defines it. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

/* ------------------------------------------------------------------ quantization */

static void check_quantize(const bn_kernels *k)
{
    /* amax = 127 -> s = 1: the products are the inputs; ties go to even, -0.5 to 0 */
    float x[16] = {127.0f, 0.5f,   1.5f,    2.5f,  -0.5f,  -1.5f, -2.5f, 3.49f,
                   126.5f, 125.5f, -127.0f, 0.49f, -0.51f, 64.0f, -3.5f, 0.0f};
    const int8_t want[16] = {127, 0, 2, 2, 0, -2, -2, 3, 126, 126, -127, 0, -1, 64, -4, 0};
    int8_t q[16];
    float s = k->quantize_row(x, 16, q);
    assert_true(s == 1.0f);
    for (int i = 0; i < 16; i++)
        if (q[i] != want[i])
            fail_msg("[%s] q[%d] = %d for %g, want %d", k->name, i, q[i], (double)x[i], want[i]);

    /* s = (float)(127/3) = 42.33333206; the exact 1.5 * s = 63.49999809 lies half an ulp
     * below 63.5, so the float product rounds (to even) to 63.5, which rounds (to even) to 64;
     * a product kept in double would give 63 */
    float y[4] = {3.0f, 1.5f, -1.5f, -3.0f};
    int8_t qy[4];
    s = k->quantize_row(y, 4, qy);
    assert_true(s == (float)(127.0 / 3.0));
    assert_int_equal(qy[0], 127);
    assert_int_equal(qy[1], 64);
    assert_int_equal(qy[2], -64);
    assert_int_equal(qy[3], -127); /* never -128: |x| <= amax */

    /* all-zero row: amax floors at 1e-5, no division by zero, all codes 0 */
    float z[128] = {0};
    int8_t qz[128];
    memset(qz, 0x55, sizeof qz);
    s = k->quantize_row(z, 128, qz);
    assert_true(s == (float)(127.0 / 1e-5));
    for (int i = 0; i < 128; i++)
        assert_int_equal(qz[i], 0);

    /* below the floor: amax = 1e-5, so 5e-6 maps to 63.5 * (1 + tiny) and the maximum 1e-6
     * is not stretched to 127 */
    float t[2] = {1e-6f, -5e-6f};
    int8_t qt[2];
    s = k->quantize_row(t, 2, qt);
    assert_true(s == (float)(127.0 / 1e-5));
    assert_int_equal(qt[0], (int)nearbyintf(1e-6f * s));
    assert_int_equal(qt[0], 13);
    assert_int_equal(qt[1], (int)nearbyintf(-5e-6f * s));

    /* a long row (the SIMD paths' main loops and tails): x_i = i - 100 for i < 300,
     * amax = 199 -> s = (float)(127/199); expected from the definition */
    float L[300];
    int8_t qL[300];
    for (int i = 0; i < 300; i++)
        L[i] = (float)(i - 100);
    s = k->quantize_row(L, 300, qL);
    const float s_want = (float)(127.0 / 199.0);
    assert_true(s == s_want);
    for (int i = 0; i < 300; i++) {
        float v = nearbyintf(L[i] * s_want);
        if (qL[i] != (int8_t)v)
            fail_msg("[%s] long row q[%d] = %d, want %d", k->name, i, qL[i], (int)v);
    }
}

/* ------------------------------------------------------------------ ternary dot products */

/* Packs weights w (-1/0/+1, k per row, rows after one another) into the I2_S file layout,
 * written out by hand from the diagram in kernels.h. */
static void pack(const int8_t *w, size_t n, uint8_t *out)
{
    memset(out, 0, n / 4);
    for (size_t i = 0; i < n; i++) {
        const size_t block = i / 128, in = i % 128;
        const int shift = 6 - 2 * (int)(in / 32);
        out[block * 32 + in % 32] |= (uint8_t)((w[i] + 1) << shift);
    }
}

static void matmul(const bn_kernels *k, bn_ternary *w, const int8_t *q, const float *sc,
                   size_t n_act, float *y)
{
    if (k->prepare)
        assert_int_equal(k->prepare(w), 0);
    k->ternary_matmul(w, 0, w->m, q, sc, n_act, y, w->m);
    if (k->release && w->repacked)
        k->release(w);
}

static void check_ternary(const bn_kernels *k)
{
    /* One row of 128 weights, a single +1 or -1 at index i (every byte position j and every
     * bit pair), zeros elsewhere: T = +-q[i]. Eight rows so that row-blocked paths see a
     * full block. */
    enum {
        K = 128,
        M = 8
    };
    int8_t q[K];
    for (int i = 0; i < K; i++)
        q[i] = (int8_t)(i % 2 ? -(i + 1) : i); /* distinct, both signs, |q| <= 127 */
    q[127] = -128;                             /* the extreme int8 */
    const float one = 1.0f;
    int8_t w[K * M];
    uint8_t packed[K * M / 4];
    float y[M];
    for (int i = 0; i < K; i++) {
        memset(w, 0, sizeof w);
        for (int r = 0; r < M; r++)
            w[r * K + i] = (int8_t)(r % 2 ? -1 : 1);
        pack(w, sizeof w, packed);
        /* the packing by hand: byte i % 32 of each row, bits (6 - 2*(i/32)), code 2 = +1 */
        assert_int_equal(packed[i % 32] >> (6 - 2 * (i / 32)) & 3, 2);
        bn_ternary t = {packed, K, M, 1.0f, NULL};
        matmul(k, &t, q, &one, 1, y);
        for (int r = 0; r < M; r++) {
            const float want = (float)(r % 2 ? -q[i] : q[i]);
            if (y[r] != want)
                fail_msg("[%s] weight %d (byte %d, bits %d..%d) row %d: %g, want %g", k->name, i,
                         i % 32, 7 - 2 * (i / 32), 6 - 2 * (i / 32), r, (double)y[r], (double)want);
        }
    }

    /* Full blocks: all +1 -> sum q, all -1 -> -sum q, alternating over two blocks (k = 256),
     * with the float epilogue ((float)T / s) * beta on two activation rows. */
    enum {
        K2 = 256,
        M2 = 4
    };
    int8_t q2[2 * K2], w2[K2 * M2];
    uint8_t p2[K2 * M2 / 4];
    int32_t sum0 = 0, sum1 = 0, alt0 = 0, alt1 = 0;
    for (int i = 0; i < K2; i++) {
        q2[i] = (int8_t)((i * 37) % 255 - 127);
        q2[K2 + i] = (int8_t)(127 - (i * 11) % 256 + (i * 11 % 256 > 254 ? 1 : 0));
        sum0 += q2[i];
        sum1 += q2[K2 + i];
        alt0 += (i % 3 == 0 ? 1 : i % 3 == 1 ? -1 : 0) * q2[i];
        alt1 += (i % 3 == 0 ? 1 : i % 3 == 1 ? -1 : 0) * q2[K2 + i];
    }
    for (int i = 0; i < K2; i++) {
        w2[0 * K2 + i] = 1;
        w2[1 * K2 + i] = -1;
        w2[2 * K2 + i] = 0;
        w2[3 * K2 + i] = (int8_t)(i % 3 == 0 ? 1 : i % 3 == 1 ? -1 : 0);
    }
    pack(w2, sizeof w2, p2);
    bn_ternary t2 = {p2, K2, M2, 0.5f, NULL};
    const float sc[2] = {2.0f, 4.0f};
    float y2[2 * M2];
    matmul(k, &t2, q2, sc, 2, y2);
    const int32_t want[2][M2] = {{sum0, -sum0, 0, alt0}, {sum1, -sum1, 0, alt1}};
    for (int a = 0; a < 2; a++)
        for (int r = 0; r < M2; r++) {
            const float f = ((float)want[a][r] / sc[a]) * 0.5f;
            if (y2[a * M2 + r] != f)
                fail_msg("[%s] act %d row %d: %g, want %g (T = %d)", k->name, a, r,
                         (double)y2[a * M2 + r], (double)f, want[a][r]);
        }
}

/* ------------------------------------------------------------------ f16 */

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_f16_from_f32(void **state)
{
    (void)state;
    const struct {
        float f;
        uint16_t h;
    } cases[] = {
        {0.0f, 0x0000},
        {-0.0f, 0x8000},
        {1.0f, 0x3c00},
        {-2.0f, 0xc000},
        {65504.0f, 0x7bff},  /* largest half */
        {65519.99f, 0x7bff}, /* just under the midpoint to 65536 */
        {65520.0f, 0x7c00},  /* midpoint: ties to even = 2^16 = overflow -> inf */
        {1e10f, 0x7c00},
        {-1e10f, 0xfc00},
        {INFINITY, 0x7c00},
        {-INFINITY, 0xfc00},
        {1.0f + 0x1p-11f, 0x3c00},            /* tie between 0x3c00 and 0x3c01 -> even */
        {1.0f + 3 * 0x1p-11f, 0x3c02},        /* tie between 0x3c01 and 0x3c02 -> even */
        {1.0f + 0x1p-11f + 0x1p-20f, 0x3c01}, /* just above the tie */
        {0x1p-14f, 0x0400},                   /* smallest normal */
        {0x1p-24f, 0x0001},                   /* smallest subnormal */
        {0x1p-25f, 0x0000},                   /* half of it: tie -> even (0) */
        {0x1.8p-25f, 0x0001},                 /* 0.75 of it: rounds up */
        {0x1.8p-24f, 0x0002},                 /* 1.5 of it: tie -> even (2) */
        {0x1.4p-23f, 0x0002},                 /* 2.5 of it: tie -> even (2) */
        {1023 * 0x1p-24f, 0x03ff},            /* largest subnormal */
        {1023.5f * 0x1p-24f, 0x0400},         /* tie between 0x3ff and 0x400 -> even, normal */
        {-0x1p-24f, 0x8001},
        {1e-10f, 0x0000},
        {-1e-10f, 0x8000},
        {0.1f, 0x2e66}, /* 0.0999755859375 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint16_t h = bn_f32_to_f16(cases[i].f);
        if (h != cases[i].h)
            fail_msg("f32_to_f16(%a) = 0x%04x, want 0x%04x", (double)cases[i].f, h, cases[i].h);
    }
    /* NaN stays NaN (exponent all ones, mantissa non-zero), sign kept */
    const uint32_t nans[] = {0x7fc00000u, 0x7f800001u, 0xffc00000u, 0x7f802000u};
    for (size_t i = 0; i < 4; i++) {
        uint16_t h = bn_f32_to_f16(bits_f32(nans[i]));
        assert_int_equal(h & 0x7c00, 0x7c00);
        assert_int_not_equal(h & 0x03ff, 0);
        assert_int_equal(h >> 15, nans[i] >> 31);
    }
}

static void test_f16_to_f32(void **state)
{
    (void)state;
    assert_true(bn_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(bn_f16_to_f32(0x03ff) == 1023 * 0x1p-24f);
    assert_true(bn_f16_to_f32(0x0400) == 0x1p-14f);
    assert_true(bn_f16_to_f32(0x3c00) == 1.0f);
    assert_true(bn_f16_to_f32(0x3c01) == 1.0f + 0x1p-10f);
    assert_true(bn_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(bn_f16_to_f32(0xc000) == -2.0f);
    assert_true(bn_f16_to_f32(0x7c00) == INFINITY);
    assert_true(bn_f16_to_f32(0xfc00) == -INFINITY);
    assert_true(isnan(bn_f16_to_f32(0x7e00)));
    assert_true(isnan(bn_f16_to_f32(0x7c01)));
    float nz = bn_f16_to_f32(0x8000);
    assert_true(nz == 0.0f && signbit(nz));
    /* every non-NaN half survives the round trip; rows agree with single values */
    uint16_t all[1024];
    float back[1024];
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
            continue;
        if (bn_f32_to_f16(bn_f16_to_f32((uint16_t)h)) != h)
            fail_msg("round trip of 0x%04x", h);
    }
    for (uint32_t i = 0; i < 1024; i++)
        all[i] = (uint16_t)(i * 61 + 7);
    bn_f16_to_f32_row(all, back, 1024);
    for (uint32_t i = 0; i < 1024; i++)
        assert_memory_equal(&back[i], &(float){bn_f16_to_f32(all[i])}, 4);
    uint16_t again[1024];
    bn_f32_to_f16_row(back, again, 1024);
    for (uint32_t i = 0; i < 1024; i++)
        if (!((all[i] & 0x7c00) == 0x7c00 && (all[i] & 0x3ff)))
            assert_int_equal(again[i], all[i]);
}

/* ------------------------------------------------------------------ f16 dot products */

/* ggml's order (the scalar definition): products 0, 16, 32 and 48 of one 64-step fold as
 * (p0 + p32) + (p16 + p48). With p0 = 2^24 and the others 1: 2^24 + 1 rounds back to 2^24,
 * 1 + 1 = 2, and 2^24 + 2 is exact. A sequential float sum would give 2^24, a double sum
 * 2^24 + 3. */
static void test_dot_f16_order(void **state)
{
    (void)state;
    uint16_t a[64], b[64];
    for (int i = 0; i < 64; i++)
        a[i] = b[i] = 0;
    a[0] = b[0] = bn_f32_to_f16(4096.0f);
    a[16] = a[32] = a[48] = b[16] = b[32] = b[48] = bn_f32_to_f16(1.0f);
    assert_true(bn_kernels_scalar.dot_f16(a, b, 64) == 16777218.0f);
    /* under 64 elements everything is summed in double: 2^24 + 3 */
    assert_true(bn_kernels_scalar.dot_f16(a, b, 63) == (float)(16777216.0 + 3.0));
    /* the tail after whole steps is added in double to the folded steps */
    uint16_t c[65], d[65];
    memcpy(c, a, sizeof a);
    memcpy(d, b, sizeof b);
    c[64] = d[64] = bn_f32_to_f16(1.0f);
    assert_true(bn_kernels_scalar.dot_f16(c, d, 65) == (float)(16777218.0 + 1.0));
}

/* Small integers are exact in any summation order: every path must agree exactly. */
static void check_f16_exact(const bn_kernels *k)
{
    enum {
        N = 200,
        R = 5
    };
    uint16_t w[R * N], x[N];
    float y[R];
    for (int i = 0; i < N; i++)
        x[i] = bn_f32_to_f16((float)(i % 7 - 3));
    for (int r = 0; r < R; r++)
        for (int i = 0; i < N; i++)
            w[r * N + i] = bn_f32_to_f16((float)((i * (r + 1)) % 5 - 2));
    k->matvec_f16(w, N, 0, R, x, y);
    for (int r = 0; r < R; r++) {
        int want = 0;
        for (int i = 0; i < N; i++)
            want += ((i * (r + 1)) % 5 - 2) * (i % 7 - 3);
        if (y[r] != (float)want || k->dot_f16(w + r * N, x, N) != (float)want)
            fail_msg("[%s] f16 row %d: %g, want %d", k->name, r, (double)y[r], want);
    }
}

/* ------------------------------------------------------------------ all paths */

static void for_each_path(void (*check)(const bn_kernels *))
{
    int ran = 0;
    for (const char *const *n = bn_kernels_all_names(); *n; n++) {
        const bn_kernels *k = bn_kernels_by_name(*n);
        if (!k) {
            print_message("kernel path %s: not supported on this CPU\n", *n);
            continue;
        }
        check(k);
        ran++;
    }
    assert_true(ran >= 1);
    check(&bn_kernels_scalar);
}

static void test_quantize(void **state)
{
    (void)state;
    for_each_path(check_quantize);
}

static void test_ternary(void **state)
{
    (void)state;
    for_each_path(check_ternary);
}

static void test_f16_dot_exact(void **state)
{
    (void)state;
    for_each_path(check_f16_exact);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize),      cmocka_unit_test(test_ternary),
        cmocka_unit_test(test_f16_from_f32),  cmocka_unit_test(test_f16_to_f32),
        cmocka_unit_test(test_dot_f16_order), cmocka_unit_test(test_f16_dot_exact),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
