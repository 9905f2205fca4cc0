#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int bn_fail(bn_err *err, bn_err_code code, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int bn_fail_prefix(bn_err *err, const char *fmt, ...)
{
    if (err) {
        char prefix[256];
        char old[sizeof err->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        memcpy(old, err->msg, sizeof old);
        size_t n = strlen(prefix);
        if (n > sizeof err->msg - 3)
            n = sizeof err->msg - 3;
        memcpy(err->msg, prefix, n);
        memcpy(err->msg + n, ": ", 2);
        size_t rest = sizeof err->msg - n - 3;
        size_t m = strnlen(old, rest);
        memcpy(err->msg + n + 2, old, m);
        err->msg[n + 2 + m] = 0;
    }
    return -1;
}

const char *bn_err_code_name(bn_err_code code)
{
    switch (code) {
    case BN_OK: return "ok";
    case BN_E_INPUT: return "bad input";
    case BN_E_FORMAT: return "format";
    case BN_E_IO: return "I/O";
    case BN_E_NOMEM: return "out of memory";
    case BN_E_CONTEXT_FULL: return "context full";
    case BN_E_UNSUPPORTED: return "unsupported";
    case BN_E_INTERNAL: return "internal";
    }
    return "unknown";
}
