#include "escape.h"

#include <stdio.h>
#include <string.h>

size_t bn_printable_len(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0)
        return 0;
    if (p[0] < 0x80)
        return p[0] >= 0x20 && p[0] != 0x7f;
    size_t len;
    unsigned cp, min;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2, cp = p[0] & 0x1fu, min = 0x80;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3, cp = p[0] & 0x0fu, min = 0x800;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4, cp = p[0] & 0x07u, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp <= 0x9f)
        return 0;
    return len;
}

size_t bn_escape(char *dst, size_t cap, const char *src, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        size_t k = bn_printable_len(src + i, n - i);
        if (k == 0) {
            if (w + 4 >= cap)
                break;
            snprintf(dst + w, 5, "\\x%02x", (unsigned char)src[i]);
            w += 4;
            i++;
        } else {
            if (w + k >= cap)
                break;
            memcpy(dst + w, src + i, k);
            w += k;
            i += k;
        }
    }
    dst[w] = 0;
    return w;
}
