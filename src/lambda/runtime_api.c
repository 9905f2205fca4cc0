/* Runtime API client over libcurl (see runtime_api.h for the rules it follows). */
#include "runtime_api.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "bitnet.h"
#include "json.h"

#define EVENT_MAX  ((size_t)64 << 20)
#define USER_AGENT "bitnet-lambda/" BN_VERSION

struct bn_rt {
    CURL *h;
    char base[300];        /* http://host:port */
    bn_buf body;           /* reply body of the current call */
    bn_rt_invocation *inv; /* header sink during GET /next */
    char ext_id[128];      /* header sink during extension register */
};

void bn_rt_invocation_free(bn_rt_invocation *inv)
{
    free(inv->trace_id);
    free(inv->function_arn);
    free(inv->body);
    memset(inv, 0, sizeof *inv);
}

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
    bn_buf *b = user;
    size_t len = size * n;
    if (b->len + len > EVENT_MAX)
        return 0; /* makes curl fail the call */
    bn_buf_append(b, data, len);
    return b->oom ? 0 : len;
}

/* "Name: value\r\n" -> true when the name matches (case-insensitive); value trimmed. */
static bool header_value(const char *line, size_t n, const char *name, const char **v, size_t *vn)
{
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) || line[k] != ':')
        return false;
    const char *p = line + k + 1, *e = line + n;
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    while (e > p && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *v = p;
    *vn = (size_t)(e - p);
    return true;
}

static char *dup_nonempty(const char *v, size_t n)
{
    if (!n) /* empty = absent (RIE managed-instances mode sends empty optional headers) */
        return NULL;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, v, n);
        s[n] = 0;
    }
    return s;
}

static size_t on_header(char *line, size_t size, size_t n, void *user)
{
    bn_rt *rt = user;
    size_t len = size * n;
    const char *v;
    size_t vn;
    bn_rt_invocation *inv = rt->inv;
    if (inv) {
        if (header_value(line, len, "Lambda-Runtime-Aws-Request-Id", &v, &vn)) {
            if (vn < sizeof inv->request_id) {
                memcpy(inv->request_id, v, vn);
                inv->request_id[vn] = 0;
            } else {
                strcpy(inv->request_id, "?"); /* refused below as unusable */
            }
        } else if (header_value(line, len, "Lambda-Runtime-Deadline-Ms", &v, &vn)) {
            int64_t d = 0;
            size_t i = 0;
            for (; i < vn && i < 18 && v[i] >= '0' && v[i] <= '9'; i++)
                d = d * 10 + (v[i] - '0');
            inv->deadline_ms = i == vn && vn ? d : 0;
        } else if (header_value(line, len, "Lambda-Runtime-Trace-Id", &v, &vn)) {
            free(inv->trace_id);
            inv->trace_id = dup_nonempty(v, vn);
        } else if (header_value(line, len, "Lambda-Runtime-Invoked-Function-Arn", &v, &vn)) {
            free(inv->function_arn);
            inv->function_arn = dup_nonempty(v, vn);
        }
    }
    if (header_value(line, len, "Lambda-Extension-Identifier", &v, &vn) && vn < sizeof rt->ext_id) {
        memcpy(rt->ext_id, v, vn);
        rt->ext_id[vn] = 0;
    }
    return len;
}

/* Options every call gets after curl_easy_reset. */
static void common_options(bn_rt *rt, const char *url)
{
    CURL *h = rt->h;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 0L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &rt->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, rt);
    rt->body.len = 0;
    rt->body.oom = false;
}

/* Runs the prepared call; 0 on 2xx. */
static int perform(bn_rt *rt, const char *what, long *status, bn_err *err)
{
    CURLcode rc = curl_easy_perform(rt->h);
    *status = 0;
    if (rc != CURLE_OK)
        return bn_fail(err, BN_E_IO, "%s: %s", what, curl_easy_strerror(rc));
    curl_easy_getinfo(rt->h, CURLINFO_RESPONSE_CODE, status);
    if (*status < 200 || *status > 299)
        return bn_fail(err, BN_E_IO, "%s: HTTP %ld %.200s", what, *status,
                       rt->body.data ? rt->body.data : "");
    return 0;
}

static void global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

bn_rt *bn_rt_open(const char *endpoint, bn_err *err)
{
    if (!endpoint || !*endpoint) {
        bn_fail(err, BN_E_IO, "AWS_LAMBDA_RUNTIME_API is not set (host:port of the Runtime API)");
        return NULL;
    }
    if (strlen(endpoint) > 200 || strpbrk(endpoint, "/ ?#@")) {
        bn_fail(err, BN_E_IO, "AWS_LAMBDA_RUNTIME_API=\"%.64s\" is not a host:port", endpoint);
        return NULL;
    }
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_init);
    bn_rt *rt = calloc(1, sizeof *rt);
    if (!rt || !(rt->h = curl_easy_init())) {
        free(rt);
        bn_fail(err, BN_E_IO, "libcurl initialisation failed");
        return NULL;
    }
    snprintf(rt->base, sizeof rt->base, "http://%s", endpoint);
    return rt;
}

void bn_rt_close(bn_rt *rt)
{
    if (!rt)
        return;
    curl_easy_cleanup(rt->h);
    bn_buf_free(&rt->body);
    free(rt);
}

/* Request ids go into URL paths: accept what AWS and the RIE send (UUIDs) and nothing that
 * could change the path. */
static bool usable_request_id(const char *id)
{
    if (!*id)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.' || *p == ':'))
            return false;
    return true;
}

int bn_rt_next(bn_rt *rt, bn_rt_invocation *inv, long *status, bn_err *err)
{
    char url[400];
    memset(inv, 0, sizeof *inv);
    snprintf(url, sizeof url, "%s/2018-06-01/runtime/invocation/next", rt->base);
    curl_easy_reset(rt->h);
    common_options(rt, url);
    rt->inv = inv;
    int rc = perform(rt, "GET /runtime/invocation/next", status, err);
    rt->inv = NULL;
    if (rc == 0 && !usable_request_id(inv->request_id)) {
        *status = 0;
        rc = bn_fail(err, BN_E_IO,
                     "GET /runtime/invocation/next: missing or unusable "
                     "Lambda-Runtime-Aws-Request-Id");
    }
    if (rc == 0) {
        inv->len = rt->body.len;
        inv->body = malloc(inv->len + 1);
        if (!inv->body) {
            *status = 0;
            rc = bn_fail(err, BN_E_NOMEM, "event of %zu bytes: out of memory", inv->len);
        } else {
            if (inv->len)
                memcpy(inv->body, rt->body.data, inv->len);
            inv->body[inv->len] = 0;
        }
    }
    if (rc)
        bn_rt_invocation_free(inv);
    return rc;
}

static int post(bn_rt *rt, const char *path, const char *what, struct curl_slist *hdr,
                const char *body, size_t len, long *status, bn_err *err)
{
    char url[600];
    snprintf(url, sizeof url, "%s/2018-06-01%s", rt->base, path);
    curl_easy_reset(rt->h);
    common_options(rt, url);
    hdr = curl_slist_append(hdr, "Expect:");
    hdr = curl_slist_append(hdr, "Transfer-Encoding:");
    curl_easy_setopt(rt->h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(rt->h, CURLOPT_POST, 1L);
    curl_easy_setopt(rt->h, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(rt->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    int rc = perform(rt, what, status, err);
    curl_slist_free_all(hdr);
    return rc;
}

int bn_rt_post_response(bn_rt *rt, const char *request_id, const char *body, size_t len,
                        const char *content_type, long *status, bn_err *err)
{
    char path[256], ct[160];
    snprintf(path, sizeof path, "/runtime/invocation/%s/response", request_id);
    snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "application/json");
    struct curl_slist *hdr = curl_slist_append(NULL, ct);
    return post(rt, path, "POST /response", hdr, body, len, status, err);
}

static void error_json(bn_buf *b, const char *type, const char *message)
{
    bn_jw w = {.out = b};
    bn_jw_obj(&w);
    bn_jw_key(&w, "errorMessage");
    bn_jw_str(&w, message);
    bn_jw_key(&w, "errorType");
    bn_jw_str(&w, type);
    bn_jw_key(&w, "stackTrace");
    bn_jw_arr(&w);
    bn_jw_end(&w);
    bn_jw_end(&w);
}

int bn_rt_post_error(bn_rt *rt, const char *request_id, const char *type, const char *message,
                     long *status, bn_err *err)
{
    char path[256], th[200];
    if (request_id)
        snprintf(path, sizeof path, "/runtime/invocation/%s/error", request_id);
    else
        snprintf(path, sizeof path, "/runtime/init/error");
    bn_buf b = {0};
    error_json(&b, type, message);
    /* the header wants the Category.Reason form the RIE keeps (RUNTIME-API.md 3); the body
     * carries the plain type */
    snprintf(th, sizeof th, "Lambda-Runtime-Function-Error-Type: %s%s",
             strchr(type, '.') ? "" : "Function.", type);
    struct curl_slist *hdr = curl_slist_append(NULL, th);
    hdr = curl_slist_append(hdr, "Content-Type: application/vnd.aws.lambda.error+json");
    int rc = post(rt, path, request_id ? "POST /error" : "POST /init/error", hdr, b.data, b.len,
                  status, err);
    bn_buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------------ streaming
 * libcurl 7.88's own chunked upload with CURLOPT_TRAILERFUNCTION writes 3 bytes before its
 * upload buffer when the body ends (AddressSanitizer report in test_lambda_loop), so the
 * streamed POST is written by hand on a connection curl opens (CURLOPT_CONNECT_ONLY): the
 * request head, one HTTP/1.1 chunk per write, the last chunk with real trailers, then the
 * reply is read. Writes happen on the caller's thread; the connection is not reused. */
struct bn_rt_stream {
    bn_rt *rt;
    bool broken; /* a send failed: the server answered early or went away */
};

/* Sends all of data[0..n) on the CONNECT_ONLY connection. */
static int send_all(bn_rt *rt, const char *data, size_t n)
{
    curl_socket_t fd;
    if (curl_easy_getinfo(rt->h, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK || fd == CURL_SOCKET_BAD)
        return -1;
    while (n > 0) {
        size_t sent = 0;
        CURLcode rc = curl_easy_send(rt->h, data, n, &sent);
        if (rc == CURLE_AGAIN) {
            struct pollfd p = {fd, POLLOUT, 0};
            if (poll(&p, 1, -1) < 0 && errno != EINTR)
                return -1;
            continue;
        }
        if (rc != CURLE_OK)
            return -1;
        data += sent;
        n -= sent;
    }
    return 0;
}

bn_rt_stream *bn_rt_stream_open(bn_rt *rt, const char *request_id, const char *content_type,
                                bn_err *err)
{
    char url[600];
    snprintf(url, sizeof url, "%s/2018-06-01/runtime/invocation/%s/response", rt->base, request_id);
    curl_easy_reset(rt->h);
    common_options(rt, url);
    curl_easy_setopt(rt->h, CURLOPT_CONNECT_ONLY, 1L);
    CURLcode crc = curl_easy_perform(rt->h);
    if (crc != CURLE_OK) {
        bn_fail(err, BN_E_IO, "POST /response (streaming): connect: %s", curl_easy_strerror(crc));
        return NULL;
    }
    bn_rt_stream *s = calloc(1, sizeof *s);
    if (!s) {
        bn_fail(err, BN_E_NOMEM, "out of memory");
        return NULL;
    }
    s->rt = rt;
    bn_buf head = {0};
    bn_buf_printf(
        &head,
        "POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\n"
        "Host: %s\r\nUser-Agent: %s\r\nContent-Type: %s\r\n"
        "Lambda-Runtime-Function-Response-Mode: streaming\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n"
        "Connection: close\r\n\r\n",
        request_id, rt->base + strlen("http://"), USER_AGENT,
        content_type ? content_type : "text/plain; charset=utf-8");
    if (head.oom || send_all(rt, head.data, head.len))
        s->broken = true;
    bn_buf_free(&head);
    return s;
}

int bn_rt_stream_write(bn_rt_stream *s, const char *data, size_t len)
{
    if (s->broken)
        return -1;
    if (!len)
        return 0;
    char size[24];
    int n = snprintf(size, sizeof size, "%zx\r\n", len);
    if (send_all(s->rt, size, (size_t)n) || send_all(s->rt, data, len) ||
        send_all(s->rt, "\r\n", 2))
        s->broken = true;
    return s->broken ? -1 : 0;
}

/* Reads the reply head and body (Content-Length) from the CONNECT_ONLY connection. */
static int read_reply(bn_rt *rt, long *status, bn_err *err)
{
    curl_socket_t fd;
    if (curl_easy_getinfo(rt->h, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK || fd == CURL_SOCKET_BAD)
        return bn_fail(err, BN_E_IO, "POST /response (streaming): connection lost");
    bn_buf *b = &rt->body;
    b->len = 0;
    b->oom = false;
    size_t need = 0; /* total bytes expected once the head is known */
    for (;;) {
        char *end = b->len ? memmem(b->data, b->len, "\r\n\r\n", 4) : NULL;
        if (end && !need) {
            size_t head = (size_t)(end - b->data) + 4;
            if (sscanf(b->data, "HTTP/1.%*d %ld", status) != 1)
                return bn_fail(err, BN_E_IO, "POST /response (streaming): malformed reply");
            size_t cl = 0;
            for (const char *p = b->data; p && p < end; p = strstr(p, "\r\n"), p = p ? p + 2 : p) {
                if (!strncasecmp(p, "Content-Length:", 15)) {
                    cl = strtoul(p + 15, NULL, 10);
                    break;
                }
            }
            need = head + (cl < (1u << 20) ? cl : (1u << 20));
        }
        if (need && b->len >= need) {
            memmove(b->data, b->data + (end - b->data) + 4, b->len - (size_t)(end - b->data) - 4);
            b->len -= (size_t)(end - b->data) + 4;
            b->data[b->len] = 0;
            return 0;
        }
        char tmp[4096];
        size_t got = 0;
        CURLcode rc = curl_easy_recv(rt->h, tmp, sizeof tmp, &got);
        if (rc == CURLE_AGAIN) {
            struct pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, -1) < 0 && errno != EINTR)
                return bn_fail(err, BN_E_IO, "POST /response (streaming): poll failed");
            continue;
        }
        if (rc != CURLE_OK || got == 0) {
            if (end && need) /* closed early: take what came */
                return 0;
            return bn_fail(err, BN_E_IO, "POST /response (streaming): no reply (%s)",
                           rc != CURLE_OK ? curl_easy_strerror(rc) : "connection closed");
        }
        bn_buf_append(b, tmp, got);
        if (b->oom || b->len > (2u << 20))
            return bn_fail(err, BN_E_IO, "POST /response (streaming): reply too large");
    }
}

int bn_rt_stream_close(bn_rt_stream *s, const char *error_type, const char *error_message,
                       long *status, bn_err *err)
{
    bn_rt *rt = s->rt;
    *status = 0;
    if (!s->broken) {
        bn_buf t = {0};
        bn_buf_puts(&t, "0\r\n");
        if (error_type) {
            bn_buf j = {0};
            error_json(&j, error_type, error_message ? error_message : error_type);
            char *b64 = malloc(4 * ((j.len + 2) / 3) + 1);
            if (b64) {
                bn_base64_encode(j.data, j.len, b64);
                bn_buf_printf(&t,
                              "Lambda-Runtime-Function-Error-Type: %s\r\n"
                              "Lambda-Runtime-Function-Error-Body: %s\r\n",
                              error_type, b64);
            }
            free(b64);
            bn_buf_free(&j);
        }
        bn_buf_puts(&t, "\r\n");
        if (t.oom || send_all(rt, t.data, t.len))
            s->broken = true;
        bn_buf_free(&t);
    }
    /* a server that answered early (413) has its reply waiting even when sending failed */
    int rc = read_reply(rt, status, err);
    if (rc == 0 && (*status < 200 || *status > 299))
        rc = bn_fail(err, BN_E_IO, "POST /response (streaming): HTTP %ld %.200s", *status,
                     rt->body.data ? rt->body.data : "");
    /* drop the connection: the docs ask for it to be closed after a streamed response, and
     * curl_easy_reset would keep (and later leak) the CONNECT_ONLY connection; the next call
     * opens a fresh keep-alive connection on a fresh handle */
    CURL *fresh = curl_easy_init();
    if (fresh) {
        curl_easy_cleanup(rt->h);
        rt->h = fresh;
    } else {
        curl_easy_reset(rt->h);
    }
    free(s);
    return rc;
}

/* ------------------------------------------------------------------ internal extension */
/* Kept in a global so the parked thread's handle stays reachable (leak checkers) for the
 * life of the process. */
static bn_rt *g_ext;

static void *extension_thread(void *arg)
{
    bn_rt *rt = arg;
    char url[400], idh[200];
    snprintf(url, sizeof url, "%s/2020-01-01/extension/event/next", rt->base);
    snprintf(idh, sizeof idh, "Lambda-Extension-Identifier: %s", rt->ext_id);
    struct curl_slist *hdr = curl_slist_append(NULL, idh);
    /* no events were requested, so this normally never returns; if it does (SHUTDOWN from an
     * older platform, or an error), ask again a few times rather than spin */
    for (int i = 0; i < 3; i++) {
        curl_easy_reset(rt->h);
        common_options(rt, url);
        curl_easy_setopt(rt->h, CURLOPT_HTTPHEADER, hdr);
        if (curl_easy_perform(rt->h) != CURLE_OK)
            break;
    }
    curl_slist_free_all(hdr);
    return NULL;
}

int bn_rt_register_extension(const char *endpoint, const char *name, bn_err *err)
{
    bn_rt *rt = bn_rt_open(endpoint, err);
    if (!rt)
        return -1;
    char url[400], nh[200];
    snprintf(url, sizeof url, "%s/2020-01-01/extension/register", rt->base);
    snprintf(nh, sizeof nh, "Lambda-Extension-Name: %s", name);
    curl_easy_reset(rt->h);
    common_options(rt, url);
    struct curl_slist *hdr = curl_slist_append(NULL, nh);
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "Expect:");
    static const char body[] = "{\"events\":[]}";
    curl_easy_setopt(rt->h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(rt->h, CURLOPT_POST, 1L);
    curl_easy_setopt(rt->h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(rt->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(sizeof body - 1));
    long status;
    int rc = perform(rt, "POST /extension/register", &status, err);
    curl_slist_free_all(hdr);
    if (rc == 0 && !rt->ext_id[0])
        rc = bn_fail(err, BN_E_IO,
                     "POST /extension/register: no Lambda-Extension-Identifier in the reply");
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (rc == 0 && pthread_create(&t, &attr, extension_thread, rt))
        rc = bn_fail(err, BN_E_INTERNAL, "cannot start the extension thread");
    pthread_attr_destroy(&attr);
    if (rc) {
        bn_rt_close(rt);
        return -1;
    }
    g_ext = rt;
    return 0;
}
