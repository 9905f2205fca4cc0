/* bitnet-server's HTTP/1.1 transport: a listening socket, one thread per connection (at most
 * max_conns), keep-alive, bounded head and body sizes, a read deadline per request (a client
 * that trickles bytes is cut off when it expires, whatever its pace), one generation at a
 * time with a bounded queue (503 beyond it), and a clean stop on SIGTERM/SIGINT: the
 * listener closes, a running generation ends at its next token, the answers in flight finish,
 * then bn_server_run returns. Requests go to the router (src/api/api.h). */
#ifndef BN_SERVER_H
#define BN_SERVER_H

#include <stddef.h>

#include "api.h"

typedef struct bn_server_opts {
    const char *host;    /* "127.0.0.1" */
    int port;            /* 0 = any free port (printed on stderr) */
    int max_conns;       /* open connections served at once (more: 503 and close) */
    int queue;           /* generation requests waiting behind the running one */
    size_t max_head;     /* request head bytes (431 beyond) */
    size_t max_body;     /* body bytes (413 beyond) */
    int read_timeout_ms; /* a whole request (head + body) must arrive within this */
    int idle_timeout_ms; /* a keep-alive connection may wait this long for a request */
} bn_server_opts;

void bn_server_defaults(bn_server_opts *o);

/* Installs the SIGTERM/SIGINT handlers (and ignores SIGPIPE). */
void bn_server_install_signals(void);

/* Binds, prints "listening on http://host:port" on stderr, serves until a signal. -1 + err
 * when the address cannot be bound; 0 after a clean shutdown. */
int bn_server_run(const bn_api *api, const bn_server_opts *o, bn_err *err);

#endif
