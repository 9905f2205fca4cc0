/* Developer tool: prints the pre-tokenizer pieces of hex-encoded lines, for comparing the
 * hand-written splitters with a regex engine (tools/check_pretokenize.py).
 *
 *   pretokenize-split [llama3|default] < lines-of-hex   ->   one line of hex pieces per input */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"

static void print_piece(void *ctx, const uint8_t *p, size_t n)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    putchar(' ');
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int main(int argc, char **argv)
{
    bool dflt = argc > 1 && strcmp(argv[1], "default") == 0;
    if (argc > 2 || (argc == 2 && !dflt && strcmp(argv[1], "llama3") != 0)) {
        fprintf(stderr, "usage: pretokenize-split [llama3|default] < hex-lines\n");
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, stdin)) >= 0) {
        size_t len = (size_t)got;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        uint8_t *buf = malloc(len / 2 + 1);
        size_t n = 0;
        for (size_t i = 0; i + 1 < len; i += 2) {
            int hi = hexval(line[i]), lo = hexval(line[i + 1]);
            if (hi < 0 || lo < 0) {
                fprintf(stderr, "pretokenize-split: bad hex\n");
                return 1;
            }
            buf[n++] = (uint8_t)(hi << 4 | lo);
        }
        if (dflt)
            bn_pretokenize_default(buf, n, print_piece, NULL);
        else
            bn_pretokenize_llama3(buf, n, print_piece, NULL);
        putchar('\n');
        free(buf);
    }
    free(line);
    return 0;
}
