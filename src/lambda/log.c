#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"

static bool g_json;
static char g_request[128];

void bn_log_init(void)
{
    const char *f = getenv("AWS_LAMBDA_LOG_FORMAT");
    g_json = f && !strcmp(f, "JSON");
}

void bn_log_set_request(const char *request_id)
{
    snprintf(g_request, sizeof g_request, "%s", request_id ? request_id : "");
}

void bn_log(const char *level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* one record per line: CloudWatch splits text logs on newlines */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    bn_buf b = {0};
    if (g_json) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        char stamp[96];
        snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
        bn_jw w = {.out = &b};
        bn_jw_obj(&w);
        bn_jw_key(&w, "timestamp");
        bn_jw_str(&w, stamp);
        bn_jw_key(&w, "level");
        bn_jw_str(&w, level);
        if (g_request[0]) {
            bn_jw_key(&w, "requestId");
            bn_jw_str(&w, g_request);
        }
        bn_jw_key(&w, "message");
        bn_jw_str(&w, msg);
        bn_jw_end(&w);
    } else {
        bn_buf_printf(&b, "%s\t%s\t%s", level, g_request[0] ? g_request : "-", msg);
    }
    bn_buf_append(&b, "\n", 1);
    if (b.data)
        fwrite(b.data, 1, b.len, stderr);
    fflush(stderr);
    bn_buf_free(&b);
}
