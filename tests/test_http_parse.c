/* bitnet-server's request head parser on its own (src/server/http_parse.h): the inputs a
 * request-smuggling proxy would read differently are refused with the status and reason the
 * server sends; well-formed heads fill every field. */
#include "testutil.h"

#include <string.h>

#include "http_parse.h"

static bn_http_parse_rc parse(const char *head, bn_http_req *r, int *status, const char **msg)
{
    *status = 0;
    *msg = NULL;
    return bn_http_parse_head(head, strlen(head), 16384, r, status, msg);
}

static void expect_error(const char *head, int want_status, const char *want_msg)
{
    bn_http_req r;
    int status;
    const char *msg;
    if (parse(head, &r, &status, &msg) != BN_HTTP_ERROR || status != want_status || !msg ||
        !strstr(msg, want_msg))
        fail_msg("%s: got status %d (%s), want %d (%s)", head, status, msg ? msg : "-", want_status,
                 want_msg);
}

static void test_well_formed(void **state)
{
    (void)state;
    bn_http_req r;
    int status;
    const char *msg;
    const char *head = "POST /v1/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 1234\r\n"
                       "Authorization: Bearer k\r\nExpect: 100-continue\r\n\r\nBODY";
    assert_int_equal(parse(head, &r, &status, &msg), BN_HTTP_DONE);
    assert_string_equal(r.method, "POST");
    assert_int_equal(r.minor, 1);
    assert_int_equal(r.content_length, 1234);
    assert_true(r.keep_alive);
    assert_true(r.expect_continue);
    assert_true(r.has_auth);
    assert_string_equal(r.authorization, "Bearer k");
    assert_int_equal(r.head_len, strlen(head) - 4);
    /* a head still arriving */
    assert_int_equal(bn_http_parse_head(head, 20, 16384, &r, &status, &msg), BN_HTTP_NEED_MORE);
}

static void test_content_length_refusals(void **state)
{
    (void)state;
    /* two lengths, even equal ones: a proxy might take the other (smuggling) */
    expect_error("POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", 400,
                 "more than one Content-Length");
    /* anything but digits */
    expect_error("POST / HTTP/1.1\r\nContent-Length: 1a\r\n\r\n", 400, "bad Content-Length");
    expect_error("POST / HTTP/1.1\r\nContent-Length: 1:2\r\n\r\n", 400, "bad Content-Length");
    expect_error("POST / HTTP/1.1\r\nContent-Length: 1;\r\n\r\n", 400, "bad Content-Length");
    expect_error("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 400, "bad Content-Length");
    expect_error("POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", 400, "bad Content-Length");
    /* more digits than any body we accept */
    expect_error("POST / HTTP/1.1\r\nContent-Length: 1234567890123456\r\n\r\n", 413,
                 "bad Content-Length");
    expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501, "Transfer-Encoding");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_well_formed),
        cmocka_unit_test(test_content_length_refusals),
    };
    return bn_test_exit_status(cmocka_run_group_tests(tests, NULL, NULL),
                               sizeof tests / sizeof *tests);
}
