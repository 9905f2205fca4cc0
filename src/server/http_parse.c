/* HTTP/1.1 request head parser (see http_parse.h; RFC 9112 sections 3, 5, 6). */
#include "http_parse.h"

#include <string.h>
#include <strings.h>

static bn_http_parse_rc fail(int *status, const char **msg, int st, const char *m)
{
    *status = st;
    *msg = m;
    return BN_HTTP_ERROR;
}

/* tchar of RFC 9110 5.6.2 */
static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Does the comma-separated list v[0..n) contain token (case-insensitive)? */
static bool list_has(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && !strncasecmp(v + s, token, tl))
            return true;
    }
    return false;
}

static bool name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && !strncasecmp(name, want, n);
}

/* The request line: METHOD SP request-target SP HTTP/1.x */
static bn_http_parse_rc request_line(const char *l, size_t n, bn_http_req *r, int *status,
                                     const char **msg)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)l[i]))
        i++;
    if (i == 0 || i >= sizeof r->method || i >= n || l[i] != ' ')
        return fail(status, msg, 400, "malformed request line (method)");
    memcpy(r->method, l, i);
    r->method[i] = 0;
    size_t p = ++i;
    while (i < n && l[i] != ' ') {
        unsigned char c = (unsigned char)l[i];
        if (c <= 0x20 || c == 0x7f)
            return fail(status, msg, 400, "malformed request line (target)");
        i++;
    }
    if (i == p || i >= n)
        return fail(status, msg, 400, "malformed request line (target)");
    if (i - p >= sizeof r->path)
        return fail(status, msg, 414, "request target too long");
    if (l[p] != '/')
        return fail(status, msg, 400, "request target must be a path (origin form)");
    memcpy(r->path, l + p, i - p);
    r->path[i - p] = 0;
    i++;
    if (n - i != 8 || strncmp(l + i, "HTTP/1.", 7))
        return fail(status, msg, n - i == 8 && !strncmp(l + i, "HTTP/", 5) ? 505 : 400,
                    "malformed request line (version)");
    char m = l[i + 7];
    if (m != '0' && m != '1')
        return fail(status, msg, 505, "HTTP version not supported");
    r->minor = m - '0';
    return BN_HTTP_DONE;
}

static bn_http_parse_rc header(const char *l, size_t n, bn_http_req *r, bool *seen_length,
                               bool *conn_close, bool *conn_keep, int *status, const char **msg)
{
    if (l[0] == ' ' || l[0] == '\t')
        return fail(status, msg, 400, "obsolete header line folding");
    size_t c = 0;
    while (c < n && is_tchar((unsigned char)l[c]))
        c++;
    if (c == 0 || c >= n || l[c] != ':')
        return fail(status, msg, 400, "malformed header line");
    size_t vs = c + 1, ve = n;
    while (vs < ve && (l[vs] == ' ' || l[vs] == '\t'))
        vs++;
    while (ve > vs && (l[ve - 1] == ' ' || l[ve - 1] == '\t'))
        ve--;
    for (size_t i = vs; i < ve; i++) {
        unsigned char ch = (unsigned char)l[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return fail(status, msg, 400, "control character in a header value");
    }
    const char *v = l + vs;
    size_t vn = ve - vs;
    if (name_is(l, c, "content-length")) {
        if (*seen_length)
            return fail(status, msg, 400, "more than one Content-Length");
        *seen_length = true;
        if (vn == 0 || vn > 15)
            return fail(status, msg, vn > 15 ? 413 : 400, "bad Content-Length");
        size_t x = 0;
        for (size_t i = 0; i < vn; i++) {
            if (v[i] < '0' || v[i] > '9')
                return fail(status, msg, 400, "bad Content-Length");
            x = x * 10 + (size_t)(v[i] - '0');
        }
        r->content_length = x;
    } else if (name_is(l, c, "transfer-encoding")) {
        return fail(status, msg, 501, "Transfer-Encoding is not supported (send Content-Length)");
    } else if (name_is(l, c, "connection")) {
        *conn_close |= list_has(v, vn, "close");
        *conn_keep |= list_has(v, vn, "keep-alive");
    } else if (name_is(l, c, "expect")) {
        if (vn != 12 || strncasecmp(v, "100-continue", 12))
            return fail(status, msg, 417, "unsupported Expect");
        r->expect_continue = true;
    } else if (name_is(l, c, "authorization")) {
        if (r->has_auth)
            return fail(status, msg, 400, "more than one Authorization");
        if (vn >= sizeof r->authorization)
            return fail(status, msg, 431, "Authorization header too long");
        memcpy(r->authorization, v, vn);
        r->authorization[vn] = 0;
        r->has_auth = true;
    }
    return BN_HTTP_DONE;
}

bn_http_parse_rc bn_http_parse_head(const char *buf, size_t len, size_t max_head, bn_http_req *r,
                                    int *status, const char **msg)
{
    memset(r, 0, sizeof *r);
    *status = 0;
    *msg = NULL;
    /* RFC 9112 2.2: ignore at least one empty line before the request line */
    size_t start = 0;
    while (start + 1 < len && buf[start] == '\r' && buf[start + 1] == '\n' && start < 4)
        start += 2;
    /* a bare LF or a NUL is refused as soon as it arrives (waiting for a CRLF CRLF that a
     * LF-only client never sends would only end in a timeout) */
    for (size_t i = start; i < len && i < max_head; i++)
        if (buf[i] == 0 || (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r')))
            return fail(status, msg, 400, "bare LF or NUL in the request head");
    /* find the end of the head: CRLF CRLF */
    size_t end = 0;
    for (size_t i = start; i + 3 < len && i + 4 <= max_head; i++)
        if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n') {
            end = i + 4;
            break;
        }
    if (!end)
        return len >= max_head ? fail(status, msg, 431, "request head too large")
                               : BN_HTTP_NEED_MORE;
    bool seen_length = false, conn_close = false, conn_keep = false, first = true;
    size_t i = start;
    while (i < end - 2) {
        size_t e = i;
        while (e < end && buf[e] != '\r' && buf[e] != '\n' && buf[e] != 0)
            e++;
        if (e + 1 >= end || buf[e] != '\r' || buf[e + 1] != '\n')
            return fail(status, msg, 400, "bare CR, LF or NUL in the request head");
        if (e == i)
            return fail(status, msg, 400, "malformed request head");
        bn_http_parse_rc rc = first ? request_line(buf + i, e - i, r, status, msg)
                                    : header(buf + i, e - i, r, &seen_length, &conn_close,
                                             &conn_keep, status, msg);
        if (rc != BN_HTTP_DONE)
            return rc;
        first = false;
        i = e + 2;
    }
    if (first)
        return fail(status, msg, 400, "empty request");
    r->keep_alive = r->minor == 1 ? !conn_close : conn_keep && !conn_close;
    r->head_len = end;
    return BN_HTTP_DONE;
}
