/* Text from a file or a request, made safe to quote in a one-line message: a terminal must not
 * receive its escape sequences (ESC [ ... could move the cursor, retitle the window or hide
 * the rest of the message), and a log line must not be split or carry invalid UTF-8. */
#ifndef BN_ESCAPE_H
#define BN_ESCAPE_H

#include <stddef.h>

/* Length (1..4) of the printable character at s (n bytes available): printable ASCII, or a
 * well-formed UTF-8 sequence that is not a C1 control (U+0080..U+009F). 0 when the byte at s
 * must be escaped: a C0 control, DEL, a C1 control, or invalid UTF-8 (stray continuation
 * byte, overlong form, surrogate, past U+10FFFF, cut short). */
size_t bn_printable_len(const char *s, size_t n);

/* Copies n bytes of src to dst (cap bytes, NUL-terminated, cap >= 1) with every byte that
 * bn_printable_len refuses written as \xNN; other bytes (backslash included) are copied, so
 * escaping twice changes nothing. Stops before an escape or character that does not fit.
 * Returns the length written. */
size_t bn_escape(char *dst, size_t cap, const char *src, size_t n);

#endif
