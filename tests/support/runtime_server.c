/* Runtime API test server (see runtime_server.h). Deliberately simple HTTP/1.1: requests are
 * read whole (Content-Length or chunked with trailers), replies always carry Content-Length. */
#include "runtime_server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONN    64
#define MAX_QUEUE   64
#define MAX_RECORDS 256
#define MAX_BODY    ((size_t)64 << 20)

typedef struct queued {
    char id[128];
    char *body;
    int64_t deadline_ms;
    char *trace;
    bool lowercase, no_id;
} queued;

struct bn_rs {
    int listen_fd, port;
    pthread_t acceptor;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    pthread_t threads[MAX_CONN];
    int fds[MAX_CONN];
    int n_conn;
    queued q[MAX_QUEUE];
    size_t q_head, q_tail;
    int fail_next, fail_response;
    bn_rs_record *rec[MAX_RECORDS];
    size_t n_rec;
    int n_next, n_idle_waiters;
    bool ext_registered;
};

typedef struct conn {
    bn_rs *rs;
    int fd;
    char *buf; /* bytes read but not consumed */
    size_t len, cap;
} conn;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads more bytes into c->buf; false on EOF/error. */
static bool fill(conn *c)
{
    if (c->len + 65536 + 1 > c->cap) {
        c->cap = (c->len + 65536 + 1) * 2;
        c->buf = realloc(c->buf, c->cap);
    }
    ssize_t r;
    do
        r = read(c->fd, c->buf + c->len, 65536);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        return false;
    c->len += (size_t)r;
    c->buf[c->len] = 0;
    return true;
}

static void consume(conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    c->buf[c->len] = 0;
}

/* A line ending in CRLF (returned without it, malloc'd); NULL on EOF. */
static char *read_line(conn *c)
{
    for (;;) {
        char *e = c->len ? memmem(c->buf, c->len, "\r\n", 2) : NULL;
        if (e) {
            size_t n = (size_t)(e - c->buf);
            char *line = strndup(c->buf, n);
            consume(c, n + 2);
            return line;
        }
        if (c->len > 1 << 20 || !fill(c))
            return NULL;
    }
}

/* Header block up to the empty line (lines joined with CRLF). NULL on EOF. */
static char *read_block(conn *c)
{
    size_t cap = 256, len = 0;
    char *block = malloc(cap);
    block[0] = 0;
    for (;;) {
        char *line = read_line(c);
        if (!line) {
            free(block);
            return NULL;
        }
        size_t n = strlen(line);
        if (!n) {
            free(line);
            return block;
        }
        if (len + n + 3 > cap) {
            cap = (len + n + 3) * 2;
            block = realloc(block, cap);
        }
        memcpy(block + len, line, n);
        memcpy(block + len + n, "\r\n", 3);
        len += n + 2;
        free(line);
    }
}

char *bn_rs_header(const char *block, const char *name)
{
    size_t k = strlen(name);
    for (const char *p = block; p && *p;) {
        const char *e = strstr(p, "\r\n");
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > k && !strncasecmp(p, name, k) && p[k] == ':') {
            const char *v = p + k + 1;
            while (*v == ' ')
                v++;
            return strndup(v, (size_t)(p + n - v));
        }
        p = e ? e + 2 : NULL;
    }
    return NULL;
}

static bool read_exact(conn *c, size_t n, char **out)
{
    while (c->len < n)
        if (!fill(c))
            return false;
    *out = malloc(n + 1);
    memcpy(*out, c->buf, n);
    (*out)[n] = 0;
    consume(c, n);
    return true;
}

/* Reads the body per the headers into rec. */
static bool read_body(conn *c, const char *headers, bn_rs_record *rec)
{
    char *te = bn_rs_header(headers, "Transfer-Encoding");
    rec->chunked = te && strstr(te, "chunked");
    free(te);
    if (!rec->chunked) {
        char *cl = bn_rs_header(headers, "Content-Length");
        size_t n = cl ? strtoul(cl, NULL, 10) : 0;
        free(cl);
        if (n > MAX_BODY)
            return false;
        rec->len = n;
        rec->trailers = strdup("");
        return read_exact(c, n, &rec->body);
    }
    size_t cap = 1024;
    rec->body = malloc(cap);
    rec->len = 0;
    for (;;) {
        char *line = read_line(c);
        if (!line)
            return false;
        size_t n = strtoul(line, NULL, 16);
        free(line);
        if (n == 0)
            break;
        if (rec->len + n > MAX_BODY)
            return false;
        char *chunk, *crlf;
        if (!read_exact(c, n, &chunk))
            return false;
        if (rec->len + n + 1 > cap) {
            cap = (rec->len + n + 1) * 2;
            rec->body = realloc(rec->body, cap);
        }
        memcpy(rec->body + rec->len, chunk, n);
        rec->len += n;
        rec->n_chunks++;
        free(chunk);
        if (!read_exact(c, 2, &crlf))
            return false;
        free(crlf);
    }
    rec->body[rec->len] = 0;
    rec->trailers = read_block(c);
    return rec->trailers != NULL;
}

static void reply(int fd, int status, const char *extra_headers, const char *body)
{
    const char *reason = status == 200   ? "OK"
                         : status == 202 ? "Accepted"
                         : status == 403 ? "Forbidden"
                         : status == 413 ? "Payload Too Large"
                         : status == 404 ? "Not Found"
                         : status == 500 ? "Internal Server Error"
                                         : "Status";
    size_t n = strlen(body);
    char head[2048];
    int h = snprintf(
        head, sizeof head,
        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n", status,
        reason, n, extra_headers ? extra_headers : "");
    ssize_t w = write(fd, head, (size_t)h);
    if (w >= 0 && n)
        w = write(fd, body, n);
    (void)w;
}

static const char *error_body(int status)
{
    switch (status) {
    case 403:
        return "{\"errorMessage\":\"State transition is not "
               "allowed\",\"errorType\":\"InvalidStateTransition\"}";
    case 413:
        return "{\"errorMessage\":\"Exceeded maximum allowed payload size (6291556 "
               "bytes).\",\"errorType\":\"RequestEntityTooLarge\"}";
    default: return "{\"errorMessage\":\"container error\",\"errorType\":\"ServiceError\"}";
    }
}

static void serve_next(bn_rs *rs, int fd)
{
    pthread_mutex_lock(&rs->mu);
    rs->n_next++;
    rs->n_idle_waiters++;
    pthread_cond_broadcast(&rs->cv);
    /* a failure set while the client is parked applies to the parked call too */
    while (rs->q_head == rs->q_tail && !rs->stopping && !rs->fail_next)
        pthread_cond_wait(&rs->cv, &rs->mu);
    rs->n_idle_waiters--;
    int fail = rs->fail_next;
    rs->fail_next = 0;
    if (fail && !rs->stopping) {
        pthread_mutex_unlock(&rs->mu);
        reply(fd, fail, NULL, error_body(fail));
        return;
    }
    if (rs->stopping) {
        pthread_mutex_unlock(&rs->mu);
        return;
    }
    queued ev = rs->q[rs->q_head++ % MAX_QUEUE];
    pthread_mutex_unlock(&rs->mu);
    char hdr[1024];
    int n = 0;
    if (!ev.no_id)
        n = snprintf(hdr, sizeof hdr, "Lambda-Runtime-Aws-Request-Id: %s\r\n", ev.id);
    n += snprintf(hdr + n, sizeof hdr - (size_t)n,
                  "Lambda-Runtime-Deadline-Ms: %lld\r\n"
                  "Lambda-Runtime-Invoked-Function-Arn: "
                  "arn:aws:lambda:us-east-1:123456789012:function:bitnet\r\n",
                  (long long)ev.deadline_ms);
    if (ev.trace)
        snprintf(hdr + n, sizeof hdr - (size_t)n, "Lambda-Runtime-Trace-Id: %s\r\n", ev.trace);
    if (ev.lowercase) /* header names are case-insensitive (RFC 9110) */
        for (char *p = hdr; *p; p = strstr(p, "\r\n") + 2)
            for (char *c = p; *c && *c != ':'; c++)
                *c = (char)tolower((unsigned char)*c);
    reply(fd, 200, hdr, ev.body);
    free(ev.body);
    free(ev.trace);
}

static void add_record(bn_rs *rs, bn_rs_record *rec)
{
    pthread_mutex_lock(&rs->mu);
    if (rs->n_rec < MAX_RECORDS)
        rs->rec[rs->n_rec++] = rec;
    pthread_cond_broadcast(&rs->cv);
    pthread_mutex_unlock(&rs->mu);
}

static void free_record(bn_rs_record *r)
{
    free(r->headers);
    free(r->body);
    free(r->trailers);
    free(r);
}

/* One request; false when the connection must close. */
static bool serve_one(conn *c)
{
    bn_rs *rs = c->rs;
    char *line = read_line(c);
    if (!line)
        return false;
    char method[16] = {0}, path[512] = {0}, version[16] = {0};
    sscanf(line, "%15s %511s %15s", method, path, version);
    free(line);
    char *headers = read_block(c);
    if (!headers)
        return false;
    char *connection = bn_rs_header(headers, "Connection");
    bool keep = !(connection && !strcasecmp(connection, "close"));
    free(connection);
    const char *inv = "/2018-06-01/runtime/invocation/";
    if (!strcmp(method, "GET") && !strcmp(path, "/2018-06-01/runtime/invocation/next")) {
        free(headers);
        serve_next(rs, c->fd);
        return keep;
    }
    if (!strcmp(method, "GET") && !strcmp(path, "/2020-01-01/extension/event/next")) {
        free(headers);
        pthread_mutex_lock(&rs->mu);
        while (!rs->stopping)
            pthread_cond_wait(&rs->cv, &rs->mu);
        pthread_mutex_unlock(&rs->mu);
        return false;
    }
    bn_rs_record *rec = calloc(1, sizeof *rec);
    rec->headers = headers;
    memcpy(rec->version, version, sizeof rec->version);
    if (!read_body(c, headers, rec)) {
        free_record(rec);
        return false;
    }
    int status = 202;
    const char *body = "{\"status\":\"OK\"}";
    char extra[256] = "";
    if (!strcmp(method, "POST") && !strcmp(path, "/2020-01-01/extension/register")) {
        pthread_mutex_lock(&rs->mu);
        rs->ext_registered = true;
        pthread_mutex_unlock(&rs->mu);
        free_record(rec);
        reply(c->fd, 200, "Lambda-Extension-Identifier: 4b1e0a52-test-extension\r\n",
              "{\"functionName\":\"bitnet\",\"functionVersion\":\"$LATEST\",\"handler\":\"\"}");
        return keep;
    }
    if (!strcmp(method, "POST") && !strcmp(path, "/2018-06-01/runtime/init/error")) {
        strcpy(rec->kind, "init_error");
    } else if (!strcmp(method, "POST") && !strncmp(path, inv, strlen(inv))) {
        const char *id = path + strlen(inv), *slash = strchr(id, '/');
        if (!slash || (strcmp(slash, "/response") && strcmp(slash, "/error"))) {
            free_record(rec);
            reply(c->fd, 404, NULL, "{\"errorType\":\"NotFound\"}");
            return keep;
        }
        snprintf(rec->request_id, sizeof rec->request_id, "%.*s", (int)(slash - id), id);
        strcpy(rec->kind, strcmp(slash, "/response") ? "error" : "response");
        if (!strcmp(rec->kind, "response")) {
            pthread_mutex_lock(&rs->mu);
            if (rs->fail_response) {
                status = rs->fail_response;
                body = error_body(status);
            }
            if (rs->fail_response > 0) /* a dropped connection stays dropped: curl retries
                                          * a request whose reused connection died once */
                rs->fail_response = 0;
            pthread_mutex_unlock(&rs->mu);
        }
    } else {
        free_record(rec);
        reply(c->fd, 404, NULL, "{\"errorType\":\"NotFound\"}");
        return keep;
    }
    rec->status = status;
    add_record(rs, rec);
    if (status < 0)
        return false; /* drop the connection without an answer */
    reply(c->fd, status, extra, body);
    return keep;
}

static void *conn_thread(void *arg)
{
    conn *c = arg;
    while (serve_one(c)) {
    }
    /* the peer sees the close now; the fd itself is closed by bn_rs_stop */
    shutdown(c->fd, SHUT_RDWR);
    free(c->buf);
    free(c);
    return NULL;
}

static void *accept_thread(void *arg)
{
    bn_rs *rs = arg;
    for (;;) {
        int fd = accept(rs->listen_fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        pthread_mutex_lock(&rs->mu);
        if (rs->stopping || rs->n_conn >= MAX_CONN) {
            pthread_mutex_unlock(&rs->mu);
            close(fd);
            continue;
        }
        conn *c = calloc(1, sizeof *c);
        c->rs = rs;
        c->fd = fd;
        rs->fds[rs->n_conn] = fd;
        pthread_create(&rs->threads[rs->n_conn], NULL, conn_thread, c);
        rs->n_conn++;
        pthread_mutex_unlock(&rs->mu);
    }
}

bn_rs *bn_rs_start(void)
{
    bn_rs *rs = calloc(1, sizeof *rs);
    pthread_mutex_init(&rs->mu, NULL);
    pthread_cond_init(&rs->cv, NULL);
    signal(SIGPIPE, SIG_IGN);
    rs->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (rs->listen_fd < 0 || bind(rs->listen_fd, (struct sockaddr *)&a, sizeof a) ||
        listen(rs->listen_fd, 16) || getsockname(rs->listen_fd, (struct sockaddr *)&a, &al)) {
        if (rs->listen_fd >= 0)
            close(rs->listen_fd);
        free(rs);
        return NULL;
    }
    rs->port = ntohs(a.sin_port);
    pthread_create(&rs->acceptor, NULL, accept_thread, rs);
    return rs;
}

void bn_rs_stop(bn_rs *rs)
{
    if (!rs)
        return;
    pthread_mutex_lock(&rs->mu);
    rs->stopping = true;
    pthread_cond_broadcast(&rs->cv);
    for (int i = 0; i < rs->n_conn; i++)
        shutdown(rs->fds[i], SHUT_RDWR);
    pthread_mutex_unlock(&rs->mu);
    shutdown(rs->listen_fd, SHUT_RDWR);
    pthread_join(rs->acceptor, NULL);
    close(rs->listen_fd);
    for (int i = 0; i < rs->n_conn; i++) {
        pthread_join(rs->threads[i], NULL);
        close(rs->fds[i]);
    }
    for (size_t i = rs->q_head; i < rs->q_tail; i++) {
        free(rs->q[i % MAX_QUEUE].body);
        free(rs->q[i % MAX_QUEUE].trace);
    }
    for (size_t i = 0; i < rs->n_rec; i++)
        free_record(rs->rec[i]);
    pthread_mutex_destroy(&rs->mu);
    pthread_cond_destroy(&rs->cv);
    free(rs);
}

int bn_rs_port(const bn_rs *rs) { return rs->port; }

void bn_rs_queue(bn_rs *rs, const bn_rs_event *ev)
{
    pthread_mutex_lock(&rs->mu);
    queued *q = &rs->q[rs->q_tail++ % MAX_QUEUE];
    snprintf(q->id, sizeof q->id, "%s", ev->request_id);
    q->body = strdup(ev->body);
    q->deadline_ms = ev->deadline_ms ? ev->deadline_ms : now_ms() + 300000;
    q->trace = ev->trace_id ? strdup(ev->trace_id) : NULL;
    q->lowercase = ev->lowercase;
    q->no_id = ev->no_request_id;
    pthread_cond_broadcast(&rs->cv);
    pthread_mutex_unlock(&rs->mu);
}

void bn_rs_fail_next(bn_rs *rs, int status)
{
    pthread_mutex_lock(&rs->mu);
    rs->fail_next = status;
    pthread_cond_broadcast(&rs->cv);
    pthread_mutex_unlock(&rs->mu);
}

void bn_rs_fail_response(bn_rs *rs, int status)
{
    pthread_mutex_lock(&rs->mu);
    rs->fail_response = status;
    pthread_mutex_unlock(&rs->mu);
}

static bool wait_until(bn_rs *rs, bool (*cond)(bn_rs *, size_t), size_t n, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&rs->mu);
    bool ok;
    while (!(ok = cond(rs, n)))
        if (pthread_cond_timedwait(&rs->cv, &rs->mu, &ts) == ETIMEDOUT) {
            ok = cond(rs, n);
            break;
        }
    pthread_mutex_unlock(&rs->mu);
    return ok;
}

static bool have_records(bn_rs *rs, size_t n) { return rs->n_rec >= n; }
static bool is_idle(bn_rs *rs, size_t n)
{
    (void)n;
    return rs->n_idle_waiters > 0 && rs->q_head == rs->q_tail;
}

bool bn_rs_wait_records(bn_rs *rs, size_t n, int timeout_ms)
{
    return wait_until(rs, have_records, n, timeout_ms);
}

bool bn_rs_wait_idle(bn_rs *rs, int timeout_ms) { return wait_until(rs, is_idle, 0, timeout_ms); }

size_t bn_rs_n_records(bn_rs *rs)
{
    pthread_mutex_lock(&rs->mu);
    size_t n = rs->n_rec;
    pthread_mutex_unlock(&rs->mu);
    return n;
}

const bn_rs_record *bn_rs_record_at(bn_rs *rs, size_t i)
{
    pthread_mutex_lock(&rs->mu);
    const bn_rs_record *r = i < rs->n_rec ? rs->rec[i] : NULL;
    pthread_mutex_unlock(&rs->mu);
    return r;
}

int bn_rs_n_next(bn_rs *rs)
{
    pthread_mutex_lock(&rs->mu);
    int n = rs->n_next;
    pthread_mutex_unlock(&rs->mu);
    return n;
}

bool bn_rs_extension_registered(bn_rs *rs)
{
    pthread_mutex_lock(&rs->mu);
    bool r = rs->ext_registered;
    pthread_mutex_unlock(&rs->mu);
    return r;
}

int bn_rs_n_connections(bn_rs *rs)
{
    pthread_mutex_lock(&rs->mu);
    int n = rs->n_conn;
    pthread_mutex_unlock(&rs->mu);
    return n;
}
