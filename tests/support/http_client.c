/* Test helpers for bitnet-server (see http_client.h). */
#include "http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "runtime_server.h"
#include "testutil.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

bool bn_srv_start(bn_srv *s, const char *const *args)
{
    memset(s, 0, sizeof *s);
    s->log = bn_test_tmpfile(".log");
    const char *argv[64];
    int n = 0;
    char *emu = getenv("BN_EMULATOR") ? strdup(getenv("BN_EMULATOR")) : NULL;
    for (char *w = emu ? strtok(emu, " ") : NULL; w && n < 8; w = strtok(NULL, " "))
        argv[n++] = w;
    char *bin = bn_test_bin("bitnet-server");
    argv[n++] = bin;
    argv[n++] = "--host";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--port";
    argv[n++] = "0";
    for (int i = 0; args && args[i] && n < 62; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    const char *env[] = {"BITNET_API_KEY", NULL}; /* none from the caller's environment */
    s->pid = bn_rs_spawn_cmd(argv, env, false, s->log);
    free(bin);
    free(emu);
    if (s->pid <= 0)
        return false;
    for (int i = 0; i < 600; i++) {
        char *l = (char *)bn_test_read_file(s->log, NULL);
        const char *p = l ? strstr(l, "listening on http://127.0.0.1:") : NULL;
        if (p)
            s->port = atoi(p + strlen("listening on http://127.0.0.1:"));
        free(l);
        if (s->port > 0)
            return true;
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = -1;
            return false;
        }
        usleep(50000);
    }
    return false;
}

int bn_srv_stop(bn_srv *s, int timeout_ms)
{
    int rc = -1;
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        rc = bn_rs_wait_exit(s->pid, timeout_ms);
    }
    if (s->log) {
        unlink(s->log);
        free(s->log);
    }
    memset(s, 0, sizeof *s);
    return rc;
}

int bn_http_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Appends what arrives within the deadline; 1 got bytes, 0 closed, -1 timeout. */
static int read_more(int fd, char **buf, size_t *len, size_t *cap, double deadline)
{
    double left = deadline - now_ms();
    if (left <= 0)
        return -1;
    struct pollfd p = {fd, POLLIN, 0};
    int rc = poll(&p, 1, (int)left);
    if (rc <= 0)
        return -1;
    if (*len + 65536 + 1 > *cap) {
        *cap = (*len + 65536 + 1) * 2;
        *buf = realloc(*buf, *cap);
    }
    ssize_t r = recv(fd, *buf + *len, 65536, 0);
    if (r <= 0)
        return 0;
    *len += (size_t)r;
    (*buf)[*len] = 0;
    return 1;
}

char *bn_http_read_response(int fd, int timeout_ms, int *status)
{
    double deadline = now_ms() + timeout_ms;
    size_t len = 0, cap = 65536;
    char *buf = calloc(1, cap);
    char *head_end = NULL;
    int rc = 1;
    while (!(head_end = strstr(buf, "\r\n\r\n")) &&
           (rc = read_more(fd, &buf, &len, &cap, deadline)) > 0) {
    }
    *status = 0;
    if (!head_end) {
        if (len == 0) {
            free(buf);
            return NULL;
        }
        return buf;
    }
    sscanf(buf, "HTTP/1.%*d %d", status);
    size_t head = (size_t)(head_end - buf) + 4;
    /* the headers we need, case-insensitively */
    long clen = -1;
    bool chunked = false;
    for (const char *l = strstr(buf, "\r\n") + 2; l < buf + head - 2; l = strstr(l, "\r\n") + 2) {
        if (!strncasecmp(l, "Content-Length:", 15))
            clen = atol(l + 15);
        if (!strncasecmp(l, "Transfer-Encoding:", 18) && strstr(l, "chunked") < strstr(l, "\r\n"))
            chunked = true;
    }
    if (clen >= 0) {
        while (len < head + (size_t)clen && read_more(fd, &buf, &len, &cap, deadline) > 0) {
        }
        return buf;
    }
    if (!chunked) {
        while (read_more(fd, &buf, &len, &cap, deadline) > 0) {
        }
        return buf;
    }
    /* de-chunk into a new buffer: head + data */
    size_t pos = head;
    char *out = malloc(head + 1);
    memcpy(out, buf, head);
    size_t olen = head;
    for (;;) {
        char *crlf;
        while (!(crlf = strstr(buf + pos, "\r\n")) &&
               read_more(fd, &buf, &len, &cap, deadline) > 0) {
        }
        if (!crlf)
            break;
        size_t n = strtoul(buf + pos, NULL, 16);
        size_t data = (size_t)(crlf - buf) + 2;
        while (len < data + n + 2 && read_more(fd, &buf, &len, &cap, deadline) > 0) {
        }
        if (len < data + n + 2)
            break;
        out = realloc(out, olen + n + 1);
        memcpy(out + olen, buf + data, n);
        olen += n;
        pos = data + n + 2;
        if (n == 0)
            break;
    }
    out[olen] = 0;
    free(buf);
    return out;
}

char *bn_http_roundtrip(int port, const char *request, size_t len, int timeout_ms, int *status)
{
    int fd = bn_http_connect(port);
    if (fd < 0)
        return NULL;
    if (send(fd, request, len, MSG_NOSIGNAL) != (ssize_t)len) {
        close(fd);
        return NULL;
    }
    char *r = bn_http_read_response(fd, timeout_ms, status);
    close(fd);
    return r;
}

const char *bn_http_body(const char *response)
{
    const char *p = response ? strstr(response, "\r\n\r\n") : NULL;
    return p ? p + 4 : "";
}

bool bn_have_curl(void) { return system("curl --version >/dev/null 2>&1") == 0; }

char *bn_curl(const char *const *args, int *rc)
{
    const char *argv[64] = {"curl", "-sS", "--max-time", "120"};
    int n = 4;
    for (int i = 0; args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int pipefd[2];
    if (pipe(pipefd))
        return NULL;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        close(pipefd[1]);
        execvp("curl", (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    size_t len = 0, cap = 4096;
    char *out = malloc(cap);
    ssize_t r;
    while ((r = read(pipefd[0], out + len, cap - len - 1)) > 0) {
        len += (size_t)r;
        if (cap - len < 1024)
            out = realloc(out, cap *= 2);
    }
    out[len] = 0;
    close(pipefd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    return out;
}

char *bn_cli_greedy_text(const char *model, const char *sys, const char *prompt, int n_predict)
{
    char ns[16];
    snprintf(ns, sizeof ns, "%d", n_predict);
    const char *argv[16] = {"bitnet-run", "-m",     model, "-p", prompt, "-n",
                            ns,           "--temp", "0",   "-t", "1",    "--json"};
    int k = 12;
    if (sys) {
        argv[k++] = "-sys";
        argv[k++] = sys;
    }
    argv[k] = NULL;
    char *out = NULL;
    assert_int_equal(bn_test_run(argv, NULL, &out, NULL), 0);
    bn_err err = {0};
    bn_json_doc *d = bn_json_parse(out, strlen(out), NULL, &err);
    if (!d)
        fail_msg("bitnet-run --json printed no JSON (%s): %.400s", err.msg, out);
    const bn_json *t = bn_json_get(bn_json_root(d), "text");
    if (!t || t->type != BN_JSON_STRING)
        fail_msg("bitnet-run --json printed no \"text\": %.400s", out);
    char *text = strdup(t->str);
    bn_json_free(d);
    free(out);
    return text;
}
