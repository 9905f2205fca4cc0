/* Errors as values: library code fills a bn_err with a code and one line that names what is
 * wrong and where, and returns -1 (or NULL). It never prints or exits; entry points print the
 * message and map the code (never the text) to an exit status or an error type. */
#ifndef BN_ERROR_H
#define BN_ERROR_H

#include <stddef.h>

/* The same definition as in bitnet.h (the public header is self-contained, so it carries its
 * own copy); whichever is included first defines it. */
#ifndef BN_ERR_TYPE_DEFINED
#define BN_ERR_TYPE_DEFINED
typedef enum bn_err_code {
    BN_OK = 0,
    BN_E_INPUT,        /* bad input: a setting out of range, a malformed request or prompt */
    BN_E_FORMAT,       /* a file is not what it claims: not a GGUF, corrupt, wrong shapes */
    BN_E_IO,           /* a file or connection could not be opened, read, written or mapped */
    BN_E_NOMEM,        /* an allocation failed */
    BN_E_CONTEXT_FULL, /* the prompt or conversation does not fit the context */
    BN_E_UNSUPPORTED,  /* well-formed but not supported (architecture, tensor type, ...) */
    BN_E_INTERNAL,     /* a broken invariant or a failed system call that is not I/O */
} bn_err_code;

typedef struct bn_err {
    bn_err_code code;
    char msg[512];
} bn_err;
#endif

/* Sets err's code and formats its message (when err is not NULL) and returns -1, so a failing
 * function can `return bn_fail(err, BN_E_INPUT, "...", ...);`. Control characters and invalid
 * UTF-8 in the result are escaped as \xNN (escape.h): messages quote file and request text. */
int bn_fail(bn_err *err, bn_err_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to an existing message, keeping its code (context on the way up). */
int bn_fail_prefix(bn_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "bad input", "format", "I/O", "out of memory", "context full", "unsupported", "internal". */
const char *bn_err_code_name(bn_err_code code);

#endif
