/* Test helpers for bitnet-server: start it on a free loopback port, speak raw HTTP/1.1 to it
 * (for the transport's error rows), and run curl (a real client) against it. */
#ifndef BN_TEST_HTTP_CLIENT_H
#define BN_TEST_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct bn_srv {
    pid_t pid;
    int port;
    char *log; /* its stderr */
} bn_srv;

/* Starts bin/bitnet-server (through $BN_EMULATOR) with --host 127.0.0.1 --port 0 and ARGS
 * (NULL-terminated); waits for its "listening on" line. false (and a message) on failure. */
bool bn_srv_start(bn_srv *s, const char *const *args);
/* SIGTERM, then the exit status (-1 when it did not exit within timeout_ms: then killed). */
int bn_srv_stop(bn_srv *s, int timeout_ms);

/* A connected loopback socket (-1 on failure). */
int bn_http_connect(int port);
/* Reads one response (head, then Content-Length or chunked body or until close) within
 * timeout_ms: malloc'd, NUL-terminated, the chunked framing removed; NULL on timeout or
 * when nothing arrived. *status = its status code. */
char *bn_http_read_response(int fd, int timeout_ms, int *status);
/* connect + send + read one response + close. */
char *bn_http_roundtrip(int port, const char *request, size_t len, int timeout_ms, int *status);
/* The body of a response (after the blank line). */
const char *bn_http_body(const char *response);

/* bitnet-run's greedy answer text (its --json "text", one thread) for PROMPT, with SYS as the
 * system prompt when not NULL: what an HTTP answer with the same settings must equal.
 * malloc'd; fails the running test when bitnet-run does. */
char *bn_cli_greedy_text(const char *model, const char *sys, const char *prompt, int n_predict);

/* true when `curl` runs. */
bool bn_have_curl(void);
/* Runs curl with ARGS (NULL-terminated) and returns its stdout (malloc'd); *rc = its exit
 * status. */
char *bn_curl(const char *const *args, int *rc);

#endif
