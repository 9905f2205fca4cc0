/* Errors as values: library code fills a bn_err with one line that names what is wrong and
 * where, and returns -1 (or NULL). It never prints or exits; entry points print the message. */
#ifndef BN_ERROR_H
#define BN_ERROR_H

#include <stddef.h>

typedef struct bn_err {
    char msg[512];
} bn_err;

/* Formats the message into err (when err is not NULL) and returns -1, so a failing function
 * can `return bn_fail(err, "...", ...);`. */
int bn_fail(bn_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends "prefix: " to an existing message (for adding context on the way up). */
int bn_fail_prefix(bn_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
