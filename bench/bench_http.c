/* What the HTTP layer costs: per generated token (router + SSE JSON + chunked framing +
 * socket writes) and for the first streamed byte.
 *
 *   bench-http -m MODEL [-n 128] [-r 5] [-p PROMPT] [--server]
 *
 * Per token: the same greedy generation (one thread, so that all its work is on the calling
 * thread and CPU time measures it however busy the machine is) runs r times through
 * bn_api_handle with "stream": true into a loopback TCP socket (framed and written as
 * bitnet-server does: one chunk per event, three send() calls), and r times through
 * bn_generate alone. The difference of the best CPU times, divided by the tokens, is the HTTP
 * layer's cost per token. It is measured on a tiny synthetic model written by the bench
 * (whose decode is so cheap that the difference stands out of the noise; on a real-shape
 * model the HTTP layer is far below the run-to-run noise of decode), and divided by MODEL's
 * decode time per token (CPU, one thread) to give its share of decode.
 *
 * With --server, the time to first streamed byte is measured against a real bin/bitnet-server
 * (same model, one thread) over loopback: request sent -> first byte of the SSE body, r times,
 * beside the engine's own time to first token for the same prompt (prompt evaluation), so the
 * difference is what HTTP adds. One JSON object per measurement, then a table. */
#include "bench_clock.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api.h"
#include "bitnet.h"
#include "synthetic_model.h"

static double now_ms(void) { return bench_clock_s(CLOCK_MONOTONIC) * 1e3; }
static double thread_cpu_ms(void) { return bench_clock_s(CLOCK_THREAD_CPUTIME_ID) * 1e3; }

/* ------------------------------------------------------------------ a loopback socket sink */
typedef struct chan {
    int wfd, rfd;
    pthread_t drain;
    size_t bytes, events;
} chan;

static void *drain_main(void *arg)
{
    chan *c = arg;
    char buf[65536];
    while (read(c->rfd, buf, sizeof buf) > 0) {
    }
    return NULL;
}

static void chan_open(chan *c)
{
    memset(c, 0, sizeof *c);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) ||
        getsockname(l, (struct sockaddr *)&a, &al)) {
        perror("bench-http: socket");
        exit(1);
    }
    c->wfd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c->wfd, (struct sockaddr *)&a, sizeof a)) {
        perror("bench-http: connect");
        exit(1);
    }
    int one = 1;
    setsockopt(c->wfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->rfd = accept(l, NULL, NULL);
    close(l);
    pthread_create(&c->drain, NULL, drain_main, c);
}

static void chan_close(chan *c)
{
    close(c->wfd);
    pthread_join(c->drain, NULL);
    close(c->rfd);
}

static int sink_begin(void *u, int status, const char *ctype)
{
    chan *c = u;
    char h[256];
    int n = snprintf(h, sizeof h,
                     "HTTP/1.1 %d OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n",
                     status, ctype);
    return send(c->wfd, h, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

static int sink_write(void *u, const char *d, size_t len)
{
    chan *c = u;
    char sz[32];
    int n = snprintf(sz, sizeof sz, "%zx\r\n", len);
    if (send(c->wfd, sz, (size_t)n, MSG_NOSIGNAL) != n ||
        send(c->wfd, d, len, MSG_NOSIGNAL) != (ssize_t)len ||
        send(c->wfd, "\r\n", 2, MSG_NOSIGNAL) != 2)
        return -1;
    c->bytes += len;
    c->events++;
    return 0;
}

/* ------------------------------------------------------------------ per token */
typedef struct run_result {
    double cpu_ms, wall_ms;
    uint32_t tokens;
} run_result;

static run_result run_api(bn_api *api, const char *body, size_t *events)
{
    chan c;
    chan_open(&c);
    bn_api_sink sink = {.begin = sink_begin, .write = sink_write, .user = &c};
    bn_api_request req = {
        .method = "POST", .path = "/v1/chat/completions", .body = body, .len = strlen(body)};
    bn_session_reset(api->session);
    double c0 = thread_cpu_ms(), w0 = now_ms();
    int st = bn_api_handle(api, &req, &sink);
    run_result r = {thread_cpu_ms() - c0, now_ms() - w0, 0};
    chan_close(&c);
    if (st != 200) {
        fprintf(stderr, "bench-http: status %d\n", st);
        exit(1);
    }
    size_t n;
    bn_session_output_ids(api->session, &n);
    r.tokens = (uint32_t)n;
    *events = c.events;
    return r;
}

static run_result run_plain(bn_session *s, const char *prompt, int n_predict)
{
    bn_chat_msg m = {"user", prompt};
    bn_generate_params g = bn_generate_default();
    g.messages = &m;
    g.n_messages = 1;
    g.n_predict = n_predict;
    g.sampling.temp = 0;
    bn_session_reset(s);
    bn_err err = {0};
    bn_stats st;
    double c0 = thread_cpu_ms(), w0 = now_ms();
    if (bn_generate(s, &g, &st, &err)) {
        fprintf(stderr, "bench-http: %s\n", err.msg);
        exit(1);
    }
    run_result r = {thread_cpu_ms() - c0, now_ms() - w0, st.gen_tokens};
    return r;
}

/* ------------------------------------------------------------------ first streamed byte */
static pid_t start_server(const char *model, int *port)
{
    int pfd[2];
    if (pipe(pfd))
        return -1;
    char bin[4096];
    ssize_t n = readlink("/proc/self/exe", bin, sizeof bin - 32);
    if (n <= 0)
        return -1;
    bin[n] = 0;
    strcpy(strrchr(bin, '/') + 1, "bitnet-server");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 2);
        close(pfd[0]);
        execl(bin, bin, "-m", model, "-t", "1", "--host", "127.0.0.1", "--port", "0", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char buf[512] = {0};
    size_t len = 0;
    *port = 0;
    while (len < sizeof buf - 1) {
        ssize_t r = read(pfd[0], buf + len, sizeof buf - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        const char *p = strstr(buf, "127.0.0.1:");
        if (p && strchr(p, '\n')) {
            *port = atoi(p + 10);
            break;
        }
    }
    close(pfd[0]); /* later stderr lines go nowhere (SIGPIPE is ignored there) */
    return *port ? pid : -1;
}

/* ms from sending the request to the first byte of the SSE body */
static double first_byte_ms(int port, const char *body, double *total_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a))
        return -1;
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     strlen(body), body);
    double t0 = now_ms(), first = -1;
    send(fd, req, (size_t)n, 0);
    char buf[65536];
    size_t got = 0;
    bool in_body = false;
    char tail[4] = {0};
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < r && !in_body; i++) {
            memmove(tail, tail + 1, 3);
            tail[3] = buf[i];
            if (!memcmp(tail, "\r\n\r\n", 4)) {
                in_body = true;
                if (i + 1 < r)
                    first = now_ms() - t0;
            }
        }
        if (in_body && first < 0 && got > 0)
            first = now_ms() - t0;
        got += (size_t)r;
    }
    *total_ms = now_ms() - t0;
    close(fd);
    return first;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *prompt = "Explain 1-bit quantization in one paragraph.";
    int n_predict = 128, reps = 5;
    bool server = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "-n") && i + 1 < argc)
            n_predict = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-p") && i + 1 < argc)
            prompt = argv[++i];
        else if (!strcmp(argv[i], "--server"))
            server = true;
        else {
            fprintf(stderr, "usage: bench-http -m MODEL [-n 128] [-r 5] [-p PROMPT] [--server]\n");
            return 2;
        }
    }
    if (!model || n_predict < 1 || reps < 1) {
        fprintf(stderr, "usage: bench-http -m MODEL [-n 128] [-r 5] [-p PROMPT] [--server]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    bn_err err = {0};
    /* the HTTP layer's cost, on a tiny model */
    char tiny[] = "/tmp/bench-http-XXXXXX";
    int tfd = mkstemp(tiny);
    bn_synth_params tp;
    if (tfd < 0 || bn_synth_preset("tiny", &tp, &err) || bn_synth_write(&tp, tiny, &err)) {
        fprintf(stderr, "bench-http: tiny model: %s\n", err.msg);
        return 1;
    }
    close(tfd);
    bn_engine *te = bn_engine_open(tiny, NULL, &err);
    bn_session_params sp = {.n_threads = 1, .n_ctx = 1024};
    bn_session *ts = te ? bn_session_create(te, &sp, &err) : NULL;
    unlink(tiny);
    if (!ts) {
        fprintf(stderr, "bench-http: %s\n", err.msg);
        return 1;
    }
    const int tiny_n = 256; /* enough tokens (and SSE events) for a stable difference */
    bn_api api = {.engine = te, .session = ts, .model = "bench", .n_predict = tiny_n};
    char body[1024];
    snprintf(body, sizeof body,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"max_tokens\":%d,"
             "\"temperature\":0,\"stream\":true}",
             prompt, tiny_n);
    run_plain(ts, prompt, tiny_n); /* warm-up */
    double best_api = 1e300, best_plain = 1e300;
    uint32_t tokens = 0;
    size_t events = 0;
    for (int r = 0; r < 5 * reps; r++) {
        run_result a = run_api(&api, body, &events);
        run_result p = run_plain(ts, prompt, tiny_n);
        if (a.tokens != p.tokens) {
            fprintf(stderr, "bench-http: %u tokens via HTTP, %u without\n", a.tokens, p.tokens);
            return 1;
        }
        tokens = p.tokens;
        best_api = a.cpu_ms < best_api ? a.cpu_ms : best_api;
        best_plain = p.cpu_ms < best_plain ? p.cpu_ms : best_plain;
    }
    bn_session_free(ts);
    bn_engine_free(te);
    double per_tok_us = (best_api - best_plain) * 1e3 / tokens;
    double per_event_us = events ? (best_api - best_plain) * 1e3 / (double)events : 0.0;

    /* MODEL's decode time per token */
    bn_engine *e = bn_engine_open(model, NULL, &err);
    bn_session *s = e ? bn_session_create(e, &sp, &err) : NULL;
    if (!s) {
        fprintf(stderr, "bench-http: %s\n", err.msg);
        return 1;
    }
    run_plain(s, prompt, 2); /* warm-up: page the weights in */
    double best_dec = 1e300;
    uint32_t dec_tokens = 0;
    for (int r = 0; r < reps; r++) {
        run_result p = run_plain(s, prompt, n_predict);
        dec_tokens = p.tokens;
        best_dec = p.cpu_ms < best_dec ? p.cpu_ms : best_dec;
    }
    double decode_ms = best_dec / dec_tokens;
    double share = per_tok_us / 1e3 / decode_ms * 100.0;
    printf("{\"bench\":\"http_per_token\",\"tokens\":%u,\"events\":%zu,\"reps\":%d,\"cpu_ms_http\":"
           "%.3f,"
           "\"cpu_ms_engine\":%.3f,\"http_us_per_token\":%.2f,\"http_us_per_event\":%.2f,"
           "\"model_ms_per_token\":%.3f,\"http_share_pct\":%.4f}\n",
           tokens, events, 5 * reps, best_api, best_plain, per_tok_us, per_event_us, decode_ms,
           share);

    double ttfb_med = -1, ttfb_min = -1, engine_ttft = -1;
    if (server) {
        int port;
        pid_t pid = start_server(model, &port);
        if (pid < 0) {
            fprintf(stderr, "bench-http: could not start bitnet-server\n");
            return 1;
        }
        double *t = calloc((size_t)reps, sizeof *t);
        char b1[1024];
        snprintf(b1, sizeof b1,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"max_tokens\":4,"
                 "\"temperature\":0,\"stream\":true}",
                 prompt);
        double total;
        first_byte_ms(port, b1, &total); /* warm-up */
        for (int r = 0; r < reps; r++)
            t[r] = first_byte_ms(port, b1, &total);
        qsort(t, (size_t)reps, sizeof *t, cmp_d);
        ttfb_min = t[0];
        ttfb_med = t[reps / 2];
        free(t);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        /* the engine's own time to first token for the same prompt; the server reuses the
         * prompt's prefix from its KV cache between requests, so the best of the repeated
         * runs (which reuse it too) is the fair comparison */
        bn_chat_msg m = {"user", prompt};
        bn_generate_params g = bn_generate_default();
        g.messages = &m;
        g.n_messages = 1;
        g.n_predict = 1;
        g.sampling.temp = 0;
        bn_stats st;
        double best = 1e300;
        for (int r = 0; r < reps; r++) {
            bn_generate(s, &g, &st,
                        &err); /* the second and later reuse the prefix, as the server */
            if (r > 0 || reps == 1)
                best = st.ttft_ms < best ? st.ttft_ms : best;
        }
        engine_ttft = best;
        printf("{\"bench\":\"http_first_byte\",\"reps\":%d,\"ttfb_ms_min\":%.3f,\"ttfb_ms_median\":"
               "%.3f,"
               "\"engine_ttft_ms\":%.3f}\n",
               reps, ttfb_min, ttfb_med, engine_ttft);
    }
    printf("\n%-34s %12s\n", "measurement", "value");
    printf("%-34s %7u (%zu)\n", "tiny-model tokens (SSE events)", tokens, events);
    printf("%-34s %12.2f\n", "HTTP layer, us CPU per token", per_tok_us);
    printf("%-34s %12.2f\n", "HTTP layer, us CPU per SSE event", per_event_us);
    printf("%-34s %12.3f\n", "MODEL decode, ms CPU/token (1 thr)", decode_ms);
    printf("%-34s %11.4f%%\n", "HTTP layer / MODEL decode", share);
    if (server) {
        printf("%-34s %12.3f\n", "first streamed byte, ms (min)", ttfb_min);
        printf("%-34s %12.3f\n", "first streamed byte, ms (median)", ttfb_med);
        printf("%-34s %12.3f\n", "engine time to first token, ms", engine_ttft);
    }
    bn_session_free(s);
    bn_engine_free(e);
    return 0;
}
