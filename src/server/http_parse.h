/* HTTP/1.1 request head parser for bitnet-server: the request line and the headers that
 * matter here (Content-Length, Transfer-Encoding, Connection, Expect, Authorization), from
 * bytes that may still be arriving. Defensive: every length is bounded, anything ambiguous
 * (two Content-Lengths, a Content-Length with a Transfer-Encoding, obsolete line folding,
 * control characters) is refused rather than guessed, since a proxy in front might read it
 * the other way (request smuggling). Pure function of its input: the fuzz target calls it. */
#ifndef BN_HTTP_PARSE_H
#define BN_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define BN_HTTP_MAX_PATH 2048
#define BN_HTTP_MAX_AUTH 1024

typedef struct bn_http_req {
    char method[16];
    char path[BN_HTTP_MAX_PATH];
    int minor;             /* HTTP/1.<minor> */
    size_t content_length; /* 0 when absent */
    bool keep_alive;       /* after this request (HTTP/1.1 default, 1.0 with keep-alive) */
    bool expect_continue;  /* Expect: 100-continue */
    bool has_auth;
    char authorization[BN_HTTP_MAX_AUTH];
    size_t head_len; /* bytes of the head, blank line included */
} bn_http_req;

typedef enum bn_http_parse_rc {
    BN_HTTP_NEED_MORE = 0, /* no blank line yet (and the head is below max_head) */
    BN_HTTP_DONE = 1,      /* r is filled; the body starts at buf + r->head_len */
    BN_HTTP_ERROR = -1,    /* *status (400, 413, 431, 501, 505) and *msg say why */
} bn_http_parse_rc;

/* Parses buf[0..len). max_head: largest head accepted (431 beyond). */
bn_http_parse_rc bn_http_parse_head(const char *buf, size_t len, size_t max_head, bn_http_req *r,
                                    int *status, const char **msg);

#endif
