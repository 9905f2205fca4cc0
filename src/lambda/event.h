/* Lambda events -> an HTTP request for the router (src/api/api.h).
 *
 * Three event shapes:
 *  - Function URL and API Gateway HTTP API (payload 2.0): requestContext.http.method, rawPath;
 *  - API Gateway REST API (payload 1.0): httpMethod, path;
 *    both with "headers" and "body" (base64 when "isBase64Encoded");
 *  - direct invoke (no HTTP envelope): the event itself is the body of POST /completion
 *    (llama-server's fields), or of POST /v1/chat/completions when it has "messages". */
#ifndef BN_LAMBDA_EVENT_H
#define BN_LAMBDA_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bitnet.h"
#include "buf.h"
#include "json.h"

typedef struct bn_lambda_event {
    bool http; /* an HTTP envelope: answer with statusCode/headers/body */
    const char *method, *path;
    const char *authorization; /* the Authorization header (any case), NULL when absent */
    const char *body;          /* the request body (NULL = none) */
    size_t len;
    /* private */
    bn_json_doc *doc;
    unsigned char *decoded;
} bn_lambda_event;

/* Parses an event. -1 + err (BN_E_INPUT) when the event is not JSON or its envelope is
 * broken (bad base64, a body that is not a string); ev->http tells how to answer even then. */
int bn_lambda_parse_event(const char *body, size_t len, bn_lambda_event *ev, bn_err *err);
void bn_lambda_event_free(bn_lambda_event *ev);

/* {"errorMessage","errorType"} */
void bn_lambda_error_json(bn_buf *out, const char *type, const char *message);
/* {"statusCode":status,"headers":{"content-type":ctype},"body":body,"isBase64Encoded":false};
 * ctype NULL = no headers (the envelope that Python-wrapper deployments return). */
void bn_lambda_http_json(bn_buf *out, int status, const char *ctype, const char *body, size_t len);

#endif
