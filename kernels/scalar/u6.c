/* The screened LM head's passes with a two-plane activation (kernels.h): the u6 layout
 * (packing, unpacking) and the scalar twins of matvec_u6 and matvec_i8x2, which every SIMD path
 * must equal. */
#include "kernels.h"

enum {
    group_codes = 256,
    group_bytes = 192,
    code_offset = 32
};

size_t bn_u6_row_bytes(size_t k) { return k / group_codes * group_bytes + k % group_codes; }

void bn_u6_pack_row(const int8_t *q, size_t k, uint8_t *row)
{
    const size_t groups = k / group_codes;
    for (size_t g = 0; g < groups; g++) {
        const int8_t *v = q + g * group_codes;
        uint8_t *out = row + g * group_bytes;
        for (int i = 0; i < 64; i++) {
            const unsigned d = (unsigned)(v[192 + i] + code_offset);
            out[i] = (uint8_t)((unsigned)(v[i] + code_offset) | (d & 3) << 6);
            out[64 + i] = (uint8_t)((unsigned)(v[64 + i] + code_offset) | (d >> 2 & 3) << 6);
            out[128 + i] = (uint8_t)((unsigned)(v[128 + i] + code_offset) | (d >> 4) << 6);
        }
    }
    for (size_t j = groups * group_codes; j < k; j++)
        row[groups * group_bytes + (j - groups * group_codes)] = (uint8_t)(q[j] + code_offset);
}

void bn_u6_unpack_row(const uint8_t *row, size_t k, int8_t *q)
{
    const size_t groups = k / group_codes;
    for (size_t g = 0; g < groups; g++) {
        const uint8_t *in = row + g * group_bytes;
        int8_t *v = q + g * group_codes;
        for (int i = 0; i < 64; i++) {
            const unsigned a = in[i], b = in[64 + i], c = in[128 + i];
            v[i] = (int8_t)((int)(a & 63) - code_offset);
            v[64 + i] = (int8_t)((int)(b & 63) - code_offset);
            v[128 + i] = (int8_t)((int)(c & 63) - code_offset);
            v[192 + i] = (int8_t)((int)((a >> 6) | (b >> 6) << 2 | (c >> 6) << 4) - code_offset);
        }
    }
    for (size_t j = groups * group_codes; j < k; j++)
        q[j] = (int8_t)((int)row[groups * group_bytes + (j - groups * group_codes)] - code_offset);
}

void bn_u6_matvec(const uint8_t *w, size_t k, size_t row_begin, size_t row_end, const int8_t *xh,
                  const int8_t *xl, int64_t *y)
{
    const size_t row_bytes = bn_u6_row_bytes(k);
    int8_t q[group_codes];
    for (size_t i = row_begin; i < row_end; i++) {
        const uint8_t *r = w + i * row_bytes;
        int64_t sum = 0;
        for (size_t j0 = 0; j0 < k; j0 += group_codes) {
            const size_t n = k - j0 < group_codes ? k - j0 : group_codes;
            /* a whole group unpacks alone; the tail's codes are plain bytes */
            if (n == group_codes)
                bn_u6_unpack_row(r + j0 / group_codes * group_bytes, group_codes, q);
            else
                for (size_t j = 0; j < n; j++)
                    q[j] = (int8_t)((int)r[j0 / group_codes * group_bytes + j] - code_offset);
            for (size_t j = 0; j < n; j++)
                sum += (int64_t)q[j] * (255 * (int32_t)xh[j0 + j] + xl[j0 + j]);
        }
        y[i] = sum;
    }
}

void bn_i8x2_matvec(const int8_t *w, size_t k, size_t row_begin, size_t row_end, const int8_t *xh,
                    const int8_t *xl, int64_t *y)
{
    for (size_t i = row_begin; i < row_end; i++) {
        const int8_t *r = w + i * k;
        int64_t sum = 0;
        for (size_t j = 0; j < k; j++)
            sum += (int64_t)r[j] * (255 * (int32_t)xh[j] + xl[j]);
        y[i] = sum;
    }
}
