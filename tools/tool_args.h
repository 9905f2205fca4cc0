/* Argument helpers shared by the tools that write synthetic files (bitnet-make-model,
 * bitnet-make-checkpoint): one usage-error line and the strict number parsers. */
#ifndef BN_TOOLS_TOOL_ARGS_H
#define BN_TOOLS_TOOL_ARGS_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* "PROG: message" and a pointer to --help on stderr; returns 2, the exit status of bad usage. */
static inline int tool_bad(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline int tool_bad(const char *prog, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see %s --help)\n", prog);
    va_end(ap);
    return 2;
}

/* A decimal integer in [0, max], nothing else (no sign, no trailing text). */
static inline int tool_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

/* A whole number as strtod reads it (no trailing text), rounded to float. */
static inline int tool_parse_float(const char *s, float *out)
{
    char *end;
    if (!s || !*s)
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end)
        return -1;
    *out = (float)v;
    return 0;
}

#endif
