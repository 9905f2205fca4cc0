/* Base64 (RFC 4648, standard alphabet, padded) for API Gateway / Function URL bodies and the
 * streaming error trailer. */
#ifndef BN_LAMBDA_BASE64_H
#define BN_LAMBDA_BASE64_H

#include <stddef.h>

/* Appends the encoding of data[0..n) plus a NUL to out (capacity >= 4*((n+2)/3)+1). */
void bn_base64_encode(const void *data, size_t n, char *out);
/* Decodes s[0..n) into out (capacity >= 3*(n/4)+3; NUL-terminated). Strict: length a multiple
 * of 4 after removing nothing, '=' only at the end. Returns the decoded length or -1. */
long bn_base64_decode(const char *s, size_t n, unsigned char *out);

#endif
