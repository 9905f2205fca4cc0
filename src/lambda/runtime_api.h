/* Client of the AWS Lambda Runtime API (2018-06-01) over libcurl, following the checklist in
 * shared/lambda/RUNTIME-API.md section 11: one easy handle reused for every call (keep-alive),
 * curl_easy_reset + options per call, no total timeout (the environment may be frozen inside
 * GET /next), a 1 s connect timeout, NOSIGNAL, TCP_NODELAY, no proxy, HTTP/1.1, no
 * "Expect: 100-continue", explicit Content-Length on buffered bodies.
 *
 * Every call returns 0 on a 2xx answer, else -1 with *status = the HTTP status (0 when the
 * transport failed) and err filled; the caller decides (500 -> exit, 413 -> keep serving...). */
#ifndef BN_LAMBDA_RUNTIME_API_H
#define BN_LAMBDA_RUNTIME_API_H

#include <stddef.h>
#include <stdint.h>

#include "bitnet.h" /* bn_err */

typedef struct bn_rt bn_rt;

typedef struct bn_rt_invocation {
    char request_id[128];
    int64_t deadline_ms; /* Lambda-Runtime-Deadline-Ms (Unix epoch ms), 0 when absent */
    char *trace_id;      /* Lambda-Runtime-Trace-Id, NULL when absent or empty */
    char *function_arn;  /* NULL when absent */
    char *body;          /* the event (NUL-terminated for convenience) */
    size_t len;
} bn_rt_invocation;

void bn_rt_invocation_free(bn_rt_invocation *inv);

/* endpoint = AWS_LAMBDA_RUNTIME_API ("host:port"). */
bn_rt *bn_rt_open(const char *endpoint, bn_err *err);
void bn_rt_close(bn_rt *rt);

/* GET /runtime/invocation/next. A missing/empty/unusable request id is a failure (status 0
 * and a message). The body is capped at 64 MiB. */
int bn_rt_next(bn_rt *rt, bn_rt_invocation *inv, long *status, bn_err *err);

/* POST /runtime/invocation/{id}/response with a buffered body. */
int bn_rt_post_response(bn_rt *rt, const char *request_id, const char *body, size_t len,
                        const char *content_type, long *status, bn_err *err);

/* POST /runtime/invocation/{id}/error, or /runtime/init/error when request_id is NULL:
 * header Lambda-Runtime-Function-Error-Type: type, body
 * {"errorMessage":message,"errorType":type,"stackTrace":[]}. */
int bn_rt_post_error(bn_rt *rt, const char *request_id, const char *type, const char *message,
                     long *status, bn_err *err);

/* ---- response streaming: a chunked POST with Lambda-Runtime-Function-Response-Mode:
 * streaming, fed from the caller's thread while a helper thread runs the transfer; one HTTP
 * chunk per write; the connection is closed afterwards (as the docs ask). */
typedef struct bn_rt_stream bn_rt_stream;

bn_rt_stream *bn_rt_stream_open(bn_rt *rt, const char *request_id, const char *content_type,
                                bn_err *err);
/* Queues one chunk. -1 when the transfer already ended (the server answered or the
 * connection broke): stop producing. */
int bn_rt_stream_write(bn_rt_stream *s, const char *data, size_t len);
/* Ends the body. With error_type != NULL the trailers Lambda-Runtime-Function-Error-Type and
 * Lambda-Runtime-Function-Error-Body (base64 of {"errorMessage","errorType"}) report a
 * mid-stream error. Waits for the answer; frees s. */
int bn_rt_stream_close(bn_rt_stream *s, const char *error_type, const char *error_message,
                       long *status, bn_err *err);

/* The no-op internal extension (RUNTIME-API.md section 8): registering it makes Lambda send
 * SIGTERM before shutting the environment down. Registers, then parks a thread in
 * GET /extension/event/next (its own connection) for the life of the process. */
int bn_rt_register_extension(const char *endpoint, const char *name, bn_err *err);

#endif
