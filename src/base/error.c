#include "error.h"

#include "escape.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int bn_fail(bn_err *err, bn_err_code code, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        /* the arguments often quote a file or a request: escaped here, once for every caller */
        char raw[sizeof err->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(raw, sizeof raw, fmt, ap);
        va_end(ap);
        bn_escape(err->msg, sizeof err->msg, raw, strlen(raw));
    }
    return -1;
}

int bn_fail_prefix(bn_err *err, const char *fmt, ...)
{
    if (err) {
        char raw[256], prefix[256];
        char old[sizeof err->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(raw, sizeof raw, fmt, ap);
        va_end(ap);
        bn_escape(prefix, sizeof prefix, raw, strlen(raw)); /* the old message already is */
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
