/* bitnet-server's transport (see server.h). */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "http_parse.h"

static volatile sig_atomic_t g_stop;
/* The self-pipe: the signal handler writes one byte that nobody reads, so every poll that
 * watches the read end wakes up from then on. */
static int g_wake[2] = {-1, -1};

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    if (g_wake[1] >= 0) {
        ssize_t w = write(g_wake[1], "x", 1);
        (void)w;
    }
}

void bn_server_install_signals(void)
{
    if (g_wake[0] < 0 && pipe(g_wake) == 0) {
        fcntl(g_wake[1], F_SETFL, O_NONBLOCK);
        fcntl(g_wake[0], F_SETFD, FD_CLOEXEC);
        fcntl(g_wake[1], F_SETFD, FD_CLOEXEC);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void bn_server_defaults(bn_server_opts *o)
{
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 8080;
    o->max_conns = 64;
    o->queue = 8;
    o->max_head = 16 << 10;
    o->max_body = 8 << 20;
    o->read_timeout_ms = 10000;
    o->idle_timeout_ms = 30000;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct server {
    const bn_api *api;
    const bn_server_opts *o;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n_conns;     /* connection threads alive */
    bool gen_busy;   /* a generation is running */
    int gen_waiting; /* generation requests queued behind it */
} server;

typedef struct conn {
    server *sv;
    int fd;
    bn_buf in; /* bytes received and not consumed yet (pipelined requests) */
} conn;

/* ------------------------------------------------------------------ socket I/O */
static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1; /* includes SO_SNDTIMEO expiring: a client that does not read */
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Waits for bytes until deadline: 1 readable, 0 timed out, -1 shutting down. */
static int wait_readable(int fd, int64_t deadline)
{
    for (;;) {
        if (g_stop)
            return -1;
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p[2] = {{fd, POLLIN, 0}, {g_wake[0], POLLIN, 0}};
        int rc = poll(p, g_wake[0] >= 0 ? 2 : 1, left > 1000 ? 1000 : (int)left);
        if (rc < 0 && errno != EINTR)
            return -1;
        if (rc > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            return 1;
    }
}

/* Reads what is there into c->in (at most cap bytes held). 1 got bytes, 0 EOF/error. */
static int read_some(conn *c, size_t cap)
{
    char tmp[16384];
    size_t want = cap > c->in.len ? cap - c->in.len : 0;
    if (want == 0)
        return 1;
    if (want > sizeof tmp)
        want = sizeof tmp;
    ssize_t r;
    do
        r = recv(c->fd, tmp, want, 0);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        return 0;
    bn_buf_append(&c->in, tmp, (size_t)r);
    return !c->in.oom;
}

static void consume(conn *c, size_t n)
{
    memmove(c->in.data, c->in.data + n, c->in.len - n);
    c->in.len -= n;
}

/* ------------------------------------------------------------------ the router's sink */
typedef struct reply {
    conn *c;
    int minor;
    bool keep_alive, head_only;
    int status;
    const char *ctype;
    bool sse, head_sent, failed;
    bn_buf body;
} reply;

static const char *reason(int st)
{
    switch (st) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Internal Server Error";
    }
}

static int send_head(reply *r, size_t content_length)
{
    char h[512];
    int n = snprintf(h, sizeof h,
                     "HTTP/1.%d %d %s\r\nContent-Type: %s\r\nServer: bitnet-server/" BN_VERSION
                     "\r\n"
                     "Access-Control-Allow-Origin: *\r\n",
                     r->minor, r->status, reason(r->status), r->ctype);
    if (r->sse)
        n += snprintf(h + n, sizeof h - (size_t)n, "Cache-Control: no-cache\r\n%s",
                      r->minor ? "Transfer-Encoding: chunked\r\n" : "");
    else
        n += snprintf(h + n, sizeof h - (size_t)n, "Content-Length: %zu\r\n", content_length);
    n += snprintf(h + n, sizeof h - (size_t)n, "Connection: %s\r\n\r\n",
                  r->keep_alive ? "keep-alive" : "close");
    r->head_sent = true;
    if (send_all(r->c->fd, h, (size_t)n))
        r->failed = true;
    return r->failed ? -1 : 0;
}

static int sink_begin(void *user, int status, const char *ctype)
{
    reply *r = user;
    r->status = status;
    r->ctype = ctype;
    r->sse = !strcmp(ctype, "text/event-stream");
    if (status >= 400 && status != 404 && status != 405 && status != 401 && status != 400)
        r->keep_alive = false;
    if (r->sse) {
        if (!r->minor)
            r->keep_alive = false; /* HTTP/1.0: the body ends when the connection does */
        return send_head(r, 0);
    }
    return 0;
}

static int sink_write(void *user, const char *data, size_t len)
{
    reply *r = user;
    if (r->failed)
        return -1;
    if (!r->sse) {
        bn_buf_append(&r->body, data, len);
        return r->body.oom ? -1 : 0;
    }
    if (r->minor) {
        char sz[32];
        int n = snprintf(sz, sizeof sz, "%zx\r\n", len);
        if (send_all(r->c->fd, sz, (size_t)n) || send_all(r->c->fd, data, len) ||
            send_all(r->c->fd, "\r\n", 2))
            r->failed = true;
    } else if (send_all(r->c->fd, data, len)) {
        r->failed = true;
    }
    return r->failed ? -1 : 0;
}

/* Sends what is buffered (JSON) or ends the chunked stream. */
static void reply_finish(reply *r)
{
    if (r->failed)
        return;
    if (r->sse) {
        if (r->minor && send_all(r->c->fd, "0\r\n\r\n", 5))
            r->failed = true;
    } else if (r->ctype) {
        if (send_head(r, r->body.len) == 0 && !r->head_only &&
            send_all(r->c->fd, r->body.data ? r->body.data : "", r->body.len))
            r->failed = true;
    }
    bn_buf_free(&r->body);
}

static bn_api_sink make_sink(reply *r)
{
    return (bn_api_sink){.begin = sink_begin, .write = sink_write, .user = r};
}

/* A transport-level error answer; the connection closes after it. */
static void send_error(conn *c, int minor, int status, const char *msg)
{
    reply r = {.c = c, .minor = minor ? 1 : 0, .keep_alive = false};
    bn_api_sink s = make_sink(&r);
    bn_api_send_error(&s, status, NULL, msg);
    reply_finish(&r);
}

/* ------------------------------------------------------------------ one generation at a time */
static int tick(void *user)
{
    (void)user;
    return g_stop != 0;
}

/* 0 = the generation slot is ours; -1 = the queue is full or the server is stopping. */
static int gen_acquire(server *sv)
{
    pthread_mutex_lock(&sv->mu);
    if (sv->gen_busy && sv->gen_waiting >= sv->o->queue) {
        pthread_mutex_unlock(&sv->mu);
        return -1;
    }
    sv->gen_waiting++;
    while (sv->gen_busy && !g_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L; /* wake to notice a signal */
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&sv->cv, &sv->mu, &ts);
    }
    sv->gen_waiting--;
    int rc = g_stop ? -1 : 0;
    if (rc == 0)
        sv->gen_busy = true;
    pthread_mutex_unlock(&sv->mu);
    return rc;
}

static void gen_release(server *sv)
{
    pthread_mutex_lock(&sv->mu);
    sv->gen_busy = false;
    pthread_cond_broadcast(&sv->cv);
    pthread_mutex_unlock(&sv->mu);
}

/* ------------------------------------------------------------------ a connection */
/* Serves one request; false when the connection must close. */
static bool serve_one(conn *c)
{
    server *sv = c->sv;
    const bn_server_opts *o = sv->o;
    bn_http_req rq;
    int status = 0;
    const char *msg = NULL;
    /* the head: idle wait for its first byte, then the request deadline runs */
    int64_t deadline = now_ms() + (c->in.len ? o->read_timeout_ms : o->idle_timeout_ms);
    bool started = c->in.len > 0;
    for (;;) {
        bn_http_parse_rc rc = bn_http_parse_head(c->in.data ? c->in.data : "", c->in.len,
                                                 o->max_head, &rq, &status, &msg);
        if (rc == BN_HTTP_ERROR) {
            send_error(c, 1, status, msg);
            return false;
        }
        if (rc == BN_HTTP_DONE)
            break;
        int w = wait_readable(c->fd, deadline);
        if (w < 0)
            return false;
        if (w == 0) {
            if (started)
                send_error(c, 1, 408, "request not received in time");
            return false;
        }
        if (!read_some(c, o->max_head + 1))
            return false;
        if (!started) {
            started = true;
            deadline = now_ms() + o->read_timeout_ms;
        }
    }
    if (rq.content_length > o->max_body) {
        char m[120];
        snprintf(m, sizeof m, "body of %zu bytes exceeds the limit of %zu", rq.content_length,
                 o->max_body);
        send_error(c, rq.minor, 413, m);
        return false;
    }
    if (rq.expect_continue && c->in.len == rq.head_len) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (send_all(c->fd, cont, sizeof cont - 1))
            return false;
    }
    size_t need = rq.head_len + rq.content_length;
    while (c->in.len < need) {
        int w = wait_readable(c->fd, deadline);
        if (w < 0)
            return false;
        if (w == 0) {
            send_error(c, rq.minor, 408, "request body not received in time");
            return false;
        }
        if (!read_some(c, need))
            return false;
    }
    reply r = {.c = c,
               .minor = rq.minor,
               .keep_alive = rq.keep_alive && !g_stop,
               .head_only = !strcmp(rq.method, "HEAD")};
    bn_api_sink sink = make_sink(&r);
    bn_api_request req = {
        .method = rq.method,
        .path = rq.path,
        .authorization = rq.has_auth ? rq.authorization : NULL,
        .body = c->in.data + rq.head_len,
        .len = rq.content_length,
        .tick = tick,
    };
    bool gen = bn_api_is_generation(rq.method, rq.path);
    if (gen && gen_acquire(sv)) {
        r.keep_alive = false;
        bn_api_send_error(&sink, 503, NULL,
                          g_stop ? "the server is shutting down"
                                 : "busy: the generation queue is full, retry later");
    } else {
        bn_api_handle(sv->api, &req, &sink);
        if (gen)
            gen_release(sv);
    }
    reply_finish(&r);
    consume(c, need);
    return r.keep_alive && !r.failed && !g_stop;
}

static void *conn_main(void *arg)
{
    conn *c = arg;
    server *sv = c->sv;
    while (serve_one(c)) {
    }
    shutdown(c->fd, SHUT_WR);
    close(c->fd);
    bn_buf_free(&c->in);
    free(c);
    pthread_mutex_lock(&sv->mu);
    sv->n_conns--;
    pthread_cond_broadcast(&sv->cv);
    pthread_mutex_unlock(&sv->mu);
    return NULL;
}

static int listen_on(const bn_server_opts *o, int *port_out, bn_err *err)
{
    char port[16];
    snprintf(port, sizeof port, "%d", o->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *res = NULL;
    int gai = getaddrinfo(o->host, port, &hints, &res);
    if (gai)
        return bn_fail(err, BN_E_INPUT, "--host %s: %s", o->host, gai_strerror(gai));
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) || listen(fd, 128)) {
            close(fd);
            fd = -1;
        }
    }
    int e = errno;
    freeaddrinfo(res);
    if (fd < 0)
        return bn_fail(err, BN_E_IO, "cannot listen on %s:%d: %s", o->host, o->port, strerror(e));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    *port_out = o->port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *port_out = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                             : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static void start_conn(server *sv, int fd)
{
    struct timeval tv = {sv->o->read_timeout_ms / 1000, (sv->o->read_timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* a client that stops reading */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* SSE pieces leave at once */
    pthread_mutex_lock(&sv->mu);
    bool full = sv->n_conns >= sv->o->max_conns;
    if (!full)
        sv->n_conns++;
    pthread_mutex_unlock(&sv->mu);
    conn *c = full ? NULL : calloc(1, sizeof *c);
    if (c) {
        c->sv = sv;
        c->fd = fd;
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&at, 256 << 10);
        int rc = pthread_create(&t, &at, conn_main, c);
        pthread_attr_destroy(&at);
        if (rc == 0)
            return;
        free(c);
    }
    if (!full) {
        pthread_mutex_lock(&sv->mu);
        sv->n_conns--;
        pthread_mutex_unlock(&sv->mu);
    }
    conn tmp = {.sv = sv, .fd = fd};
    send_error(&tmp, 1, 503, "busy: too many connections, retry later");
    close(fd);
}

int bn_server_run(const bn_api *api, const bn_server_opts *o, bn_err *err)
{
    if (g_wake[0] < 0)
        bn_server_install_signals();
    int port = 0;
    int lfd = listen_on(o, &port, err);
    if (lfd < 0)
        return -1;
    server sv = {.api = api, .o = o};
    pthread_mutex_init(&sv.mu, NULL);
    pthread_cond_init(&sv.cv, NULL);
    fprintf(stderr, "bitnet-server: listening on http://%s:%d\n", o->host, port);
    while (!g_stop) {
        struct pollfd p[2] = {{lfd, POLLIN, 0}, {g_wake[0], POLLIN, 0}};
        int rc = poll(p, 2, 1000);
        if (rc <= 0 || !(p[0].revents & POLLIN))
            continue;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            start_conn(&sv, fd);
    }
    close(lfd);
    fprintf(stderr, "bitnet-server: shutting down\n");
    /* the connections notice the signal at their next wait or token */
    pthread_mutex_lock(&sv.mu);
    while (sv.n_conns > 0)
        pthread_cond_wait(&sv.cv, &sv.mu);
    pthread_mutex_unlock(&sv.mu);
    pthread_mutex_destroy(&sv.mu);
    pthread_cond_destroy(&sv.cv);
    fprintf(stderr, "bitnet-server: stopped\n");
    return 0;
}
