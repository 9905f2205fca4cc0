/* A loopback HTTP/1.1 server that plays the AWS Lambda Runtime API for tests (one thread per
 * connection, random port): serves queued events with their headers, holds GET /next until an
 * event is queued, records every /response, /error and /init/error (buffered or chunked, with
 * trailers), answers 403/413/500 on demand, and accepts the extensions API's register call
 * (holding /extension/event/next forever, as Lambda does when no events were asked for). */
#ifndef BN_RUNTIME_SERVER_H
#define BN_RUNTIME_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct bn_rs bn_rs;

typedef struct bn_rs_event {
    const char *request_id;
    const char *body;     /* NUL-terminated */
    int64_t deadline_ms;  /* epoch ms; 0 = now + 300 s */
    const char *trace_id; /* NULL = no Lambda-Runtime-Trace-Id header ("" = empty header) */
    bool lowercase;       /* send the header names in lower case */
    bool no_request_id;   /* omit Lambda-Runtime-Aws-Request-Id (a protocol failure) */
} bn_rs_event;

typedef struct bn_rs_record {
    char kind[16];    /* "response", "error", "init_error" */
    char version[16]; /* of the request line, e.g. "HTTP/1.1" */
    char request_id[128];
    char *headers; /* the raw header block */
    char *body;    /* NUL-terminated (body may contain NULs: use len) */
    size_t len;
    bool chunked;
    int n_chunks;   /* data chunks received (chunked bodies) */
    char *trailers; /* the raw trailer block, "" when none */
    int status;     /* what the server answered */
} bn_rs_record;

bn_rs *bn_rs_start(void);
void bn_rs_stop(bn_rs *rs); /* closes every connection and frees everything */
int bn_rs_port(const bn_rs *rs);

void bn_rs_queue(bn_rs *rs, const bn_rs_event *ev);
/* The next GET /next is answered with this status (403, 500) instead of an event. */
void bn_rs_fail_next(bn_rs *rs, int status);
/* The next POST .../response is answered with this status (413, 500) after reading it;
 * -1 = every later response's connection is closed without an answer. */
void bn_rs_fail_response(bn_rs *rs, int status);

/* Waits until at least n records exist; false on timeout. */
bool bn_rs_wait_records(bn_rs *rs, size_t n, int timeout_ms);
/* Waits until a client is parked in GET /next with no event to give it. */
bool bn_rs_wait_idle(bn_rs *rs, int timeout_ms);
size_t bn_rs_n_records(bn_rs *rs);
const bn_rs_record *bn_rs_record_at(bn_rs *rs, size_t i);
int bn_rs_n_next(bn_rs *rs); /* GET /next calls seen */
bool bn_rs_extension_registered(bn_rs *rs);
/* Connections accepted so far (keep-alive check). */
int bn_rs_n_connections(bn_rs *rs);

/* Value of header NAME (case-insensitive) in a raw header block, malloc'd; NULL if absent. */
char *bn_rs_header(const char *block, const char *name);

/* Starts bin/PROG (through $BN_EMULATOR when set) with the current environment plus ENV
 * ("K=V" strings, NULL-terminated; they override, the last of one name wins; "K" alone
 * removes K), stdout to /dev/null and stderr appended to
 * STDERR_PATH (or inherited when NULL). Returns the pid or -1. */
pid_t bn_rs_spawn(const char *prog, const char *const *env, const char *stderr_path);
/* Starts argv (searched in PATH) with ENV added to the current environment, or with ENV
 * alone when clean_env; stdout to /dev/null, stderr appended to STDERR_PATH. */
pid_t bn_rs_spawn_cmd(const char *const *argv, const char *const *env, bool clean_env,
                      const char *stderr_path);
/* Waits up to timeout_ms for pid: its exit status, 128+signal, or -1 on timeout (then the
 * process is killed). */
int bn_rs_wait_exit(pid_t pid, int timeout_ms);

#endif
