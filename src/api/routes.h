/* Shared by the router's files (not for transports: they include api.h). */
#ifndef BN_API_ROUTES_H
#define BN_API_ROUTES_H

#include "api.h"
#include "json.h"
#include "params.h"

/* {"error":{"message","type","code"}} */
void bn_api_error_body(bn_buf *out, int status, const char *type, const char *message);
/* begin(status, application/json) + the body (500 when the buffer ran out of memory). */
int bn_api_send_json(const bn_api_sink *sink, int status, const bn_buf *b);

/* The three generation routes (generate.c). */
int bn_api_generate(const bn_api *api, const bn_json *body, bn_api_dialect d,
                    const bn_api_request *req, const bn_api_sink *sink);

#endif
