/* Log lines to stderr for CloudWatch: one line per record, flushed, tagged with the current
 * request id; JSON lines ({"timestamp","level","requestId","message"}) when
 * AWS_LAMBDA_LOG_FORMAT=JSON, else "LEVEL<TAB>request-id<TAB>message". */
#ifndef BN_LAMBDA_LOG_H
#define BN_LAMBDA_LOG_H

/* Reads AWS_LAMBDA_LOG_FORMAT once. */
void bn_log_init(void);
/* The request id later lines carry (NULL = none). Copied. */
void bn_log_set_request(const char *request_id);
void bn_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
