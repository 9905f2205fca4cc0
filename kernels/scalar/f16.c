/* IEEE binary16 conversions (round to nearest even, like x86 F16C and AArch64 FCVT) and the
 * f16 dot products of the LM head and attention. */
#include "kernels.h"

#include <pthread.h>
#include <string.h>

uint16_t bn_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t exp = (x >> 23) & 0xffu;
    uint32_t man = x & 0x7fffffu;
    if (exp == 0xff) /* inf or NaN (keep NaN quiet and non-zero) */
        return (uint16_t)(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0));
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) { /* subnormal half or zero */
        if (e < -10)
            return (uint16_t)sign;
        man |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | (uint32_t)e << 10 | (man >> 13);
    uint32_t rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1)))
        half++; /* may carry into the exponent, up to infinity: correct */
    return (uint16_t)half;
}

float bn_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t x;
    if (exp == 0x1f) { /* inf, or NaN made quiet with its payload kept, as F16C and FCVT do */
        x = sign | 0x7f800000u | (man << 13) | (man ? 0x400000u : 0);
    } else if (exp == 0) {
        if (man == 0) {
            x = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                man <<= 1;
                e++;
            } while (!(man & 0x400u));
            x = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ffu) << 13;
        }
    } else {
        x = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

void bn_f32_to_f16_row(const float *x, uint16_t *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = bn_f32_to_f16(x[i]);
}

/* Every half's float value. Built before main (65536 conversions, ~0.2 ms) rather than on
 * first use: dot_f16 runs in attention's inner loop, once per head and key position, and a
 * once-check there (pthread_once is an out-of-line call) cost every call; built this way the
 * table is complete before any thread can reach a kernel. */
static float f16_table[65536];

__attribute__((constructor)) static void f16_table_init(void)
{
    for (uint32_t h = 0; h < 65536; h++)
        f16_table[h] = bn_f16_to_f32((uint16_t)h);
}

const float *bn_f16_table(void) { return f16_table; }

void bn_f16_to_f32_row(const uint16_t *x, float *y, size_t n)
{
    const float *t = bn_f16_table(); /* a load instead of bn_f16_to_f32's branches */
    for (size_t i = 0; i < n; i++)
        y[i] = t[x[i]];
}
