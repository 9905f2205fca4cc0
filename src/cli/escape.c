/* -e / --escape: backslash escapes in prompts and stop strings, as llama-cli processes them
 * (so scripts written for it give the same prompt here). */
#include <string.h>

#include "cli.h"

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void cli_unescape(char *s)
{
    char *out = s;
    for (const char *p = s; *p; p++) {
        if (*p != '\\' || !p[1]) {
            *out++ = *p;
            continue;
        }
        char c = *++p;
        switch (c) {
        case 'n': *out++ = '\n'; break;
        case 't': *out++ = '\t'; break;
        case 'r': *out++ = '\r'; break;
        case 'a': *out++ = '\a'; break;
        case 'b': *out++ = '\b'; break;
        case 'f': *out++ = '\f'; break;
        case 'v': *out++ = '\v'; break;
        case 'e': *out++ = '\x1b'; break;
        case '\\': *out++ = '\\'; break;
        case '"': *out++ = '"'; break;
        case '\'': *out++ = '\''; break;
        case '?': *out++ = '?'; break;
        case 'x': {
            int hi = hex_digit(p[1]), lo = hi >= 0 ? hex_digit(p[2]) : -1;
            if (hi < 0) { /* "\x" without digits stays as written */
                *out++ = '\\';
                *out++ = 'x';
            } else if (lo < 0) {
                *out++ = (char)hi;
                p += 1;
            } else {
                *out++ = (char)(hi * 16 + lo);
                p += 2;
            }
            break;
        }
        default:
            if (c >= '0' && c <= '7') { /* up to three octal digits; \0 would end the C string */
                int v = c - '0', n = 1;
                while (n < 3 && p[1] >= '0' && p[1] <= '7') {
                    v = v * 8 + (*++p - '0');
                    n++;
                }
                if (v == 0) { /* keep "\0" visible rather than truncating the prompt */
                    *out++ = '\\';
                    *out++ = '0';
                } else {
                    *out++ = (char)v;
                }
            } else {
                *out++ = '\\';
                *out++ = c;
            }
        }
    }
    *out = 0;
}
