/* Unicode class lookup and lenient UTF-8 decoding (see unicode.h). */
#include "unicode.h"

#include <pthread.h>

static uint8_t bmp_flags[0x10000];
static pthread_once_t bmp_once = PTHREAD_ONCE_INIT;

static void build_bmp(void)
{
    for (size_t i = 0; i < bn_unicode_n_runs; i++) {
        uint32_t lo = bn_unicode_run_start[i];
        if (lo >= 0x10000)
            break;
        uint32_t hi = i + 1 < bn_unicode_n_runs ? bn_unicode_run_start[i + 1] : 0x110000;
        if (hi > 0x10000)
            hi = 0x10000;
        for (uint32_t c = lo; c < hi; c++)
            bmp_flags[c] = bn_unicode_run_flags[i];
    }
}

const uint8_t *bn_unicode_bmp(void)
{
    pthread_once(&bmp_once, build_bmp);
    return bmp_flags;
}

uint8_t bn_unicode_flags(uint32_t cp)
{
    if (cp < 0x10000)
        return bn_unicode_bmp()[cp];
    if (cp > 0x10FFFF)
        return 0;
    /* last run whose start <= cp */
    size_t lo = 0, hi = bn_unicode_n_runs;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (bn_unicode_run_start[mid] <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return bn_unicode_run_flags[lo];
}

size_t bn_utf8_seq_len(uint8_t c)
{
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0)
        return 2;
    if (c < 0xF0)
        return 3;
    if (c < 0xF5)
        return 4;
    return 0;
}

size_t bn_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len = bn_utf8_seq_len(c);
    if (len == 0 || len > n)
        goto invalid;
    /* the second byte's range excludes overlongs, surrogates and > U+10FFFF */
    uint8_t lo = 0x80, hi = 0xBF;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (s[1] < lo || s[1] > hi)
        goto invalid;
    if (len == 2) {
        *cp = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if ((s[2] & 0xC0) != 0x80)
        goto invalid;
    if (len == 3) {
        *cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    if ((s[3] & 0xC0) != 0x80)
        goto invalid;
    *cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
          ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
invalid:
    *cp = BN_UTF8_INVALID;
    return 1;
}
