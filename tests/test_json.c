/* The JSON parser (strict RFC 8259) and writer: each malformed input asserts its error text
 * and byte offset; valid inputs check the decoded tree; the writer is checked against
 * hand-written expected text. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static bn_json_doc *parse_ok(const char *s)
{
    bn_err err = {0};
    bn_json_doc *d = bn_json_parse(s, strlen(s), NULL, &err);
    if (!d)
        fail_msg("parse of %s failed: %s", s, err.msg);
    return d;
}

static void expect_error(const char *s, size_t len, const bn_json_opts *o, const char *want)
{
    bn_err err = {0};
    bn_json_doc *d = bn_json_parse(s, len, o, &err);
    if (d) {
        bn_json_free(d);
        fail_msg("parse of [%.*s] should fail with \"%s\"", (int)len, s, want);
    }
    if (!strstr(err.msg, want))
        fail_msg("parse of [%.*s]: got \"%s\", want \"%s\"", (int)len, s, err.msg, want);
}

static void test_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *in, *err;
    } cases[] = {
        {"", "byte 0: unexpected end of input"},
        {"   ", "byte 3: unexpected end of input"},
        {"{", "byte 1: expected a string key"},
        {"{\"a\"}", "byte 4: expected ':' after object key"},
        {"{\"a\":1,}", "byte 7: expected a string key"},
        {"{\"a\":1 \"b\":2}", "byte 7: expected ',' or '}' in object"},
        {"[1,2", "byte 4: expected ',' or ']' in array"},
        {"[1,]", "byte 3: unexpected character"},
        {"[01]", "byte 1: invalid number (leading zero)"},
        {"-", "byte 0: invalid number (expected a digit)"},
        {"1.", "byte 2: invalid number (expected a digit after '.')"},
        {"1e", "byte 2: invalid number (expected a digit in the exponent)"},
        {"+1", "byte 0: unexpected character"},
        {".5", "byte 0: unexpected character"},
        {"1e400", "byte 0: number out of range"},
        {"-1e400", "byte 0: number out of range"},
        {"NaN", "byte 0: unexpected character"},
        {"tru", "byte 0: invalid literal"},
        {"nul", "byte 0: invalid literal"},
        {"True", "byte 0: unexpected character"},
        {"\"abc", "byte 0: unterminated string"},
        {"\"a\\x\"", "byte 2: invalid escape"},
        {"\"\\u12G4\"", "byte 1: invalid \\u escape"},
        {"\"\\u123\"", "byte 1: invalid \\u escape"},
        {"\"\\uDC00\"", "byte 1: unpaired low surrogate"},
        {"\"\\uD800\"", "byte 1: high surrogate not followed"},
        {"\"\\uD800\\u0041\"", "byte 1: high surrogate not followed"},
        {"\"\\uD800x\"", "byte 1: high surrogate not followed"},
        {"\"a\tb\"", "byte 2: control character in string"},
        {"\"\xC0\xAF\"", "byte 1: invalid UTF-8"},         /* overlong '/' */
        {"\"\xE0\x80\xAF\"", "byte 1: invalid UTF-8"},     /* overlong */
        {"\"\xED\xA0\x80\"", "byte 1: invalid UTF-8"},     /* encoded surrogate */
        {"\"\xF4\x90\x80\x80\"", "byte 1: invalid UTF-8"}, /* > U+10FFFF */
        {"\"\xF5\x80\x80\x80\"", "byte 1: invalid UTF-8"},
        {"\"ab\xE2\x82\"", "byte 3: invalid UTF-8"}, /* truncated sequence */
        {"\"\x80\"", "byte 1: invalid UTF-8"},       /* lone continuation */
        {"\"\xFF\"", "byte 1: invalid UTF-8"},
        {"1 2", "byte 2: unexpected data after the JSON value"},
        {"{} x", "byte 3: unexpected data after the JSON value"},
        {"{\"a\":1,\"a\":2}", "byte 11: duplicate key \"a\""},
        {"{\"k\":{\"x\":1,\"y\":2,\"x\":3}}", "duplicate key \"x\""},
        {"{'a':1}", "byte 1: expected a string key"},
        {"[1 /*c*/]", "byte 3: expected ',' or ']'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_error(cases[i].in, strlen(cases[i].in), NULL, cases[i].err);
    /* an embedded NUL outside a string is not whitespace */
    expect_error("[1]\0", 4, NULL, "byte 3: unexpected data after the JSON value");
    expect_error("\"a\0b\"", 5, NULL, "byte 2: control character");
}

static void test_duplicates_in_large_object(void **state)
{
    (void)state;
    bn_buf b = {0};
    bn_buf_puts(&b, "{");
    for (int i = 0; i < 200; i++)
        bn_buf_printf(&b, "%s\"k%d\":%d", i ? "," : "", i, i);
    bn_buf_puts(&b, "}");
    bn_err err = {0};
    bn_json_doc *d = bn_json_parse(b.data, b.len, NULL, &err);
    assert_non_null(d);
    assert_int_equal(bn_json_root(d)->len, 200);
    assert_int_equal(bn_json_get(bn_json_root(d), "k137")->i64, 137);
    bn_json_free(d);
    /* the same with one key repeated far apart: the sorted check must catch it and name the
     * later occurrence */
    b.len = b.len - 1;
    size_t pos = b.len + 6; /* the value of the second "k3" */
    bn_buf_puts(&b, ",\"k3\":9}");
    d = bn_json_parse(b.data, b.len, NULL, &err);
    assert_null(d);
    char want[64];
    snprintf(want, sizeof want, "byte %zu: duplicate key \"k3\" in object", pos);
    assert_string_equal(err.msg, want);
    bn_buf_free(&b);
}

static void test_limits(void **state)
{
    (void)state;
    char deep[300];
    for (int i = 0; i < 65; i++)
        deep[i] = '[';
    for (int i = 0; i < 65; i++)
        deep[65 + i] = ']';
    expect_error(deep, 130, NULL, "byte 64: nesting deeper than 64 levels");
    bn_err err = {0};
    bn_json_doc *d = bn_json_parse(deep + 1, 128, NULL, &err); /* exactly 64 levels */
    assert_non_null(d);
    bn_json_free(d);
    bn_json_opts o = {.max_depth = 3};
    expect_error("[[[[1]]]]", 9, &o, "byte 3: nesting deeper than 3 levels");
    bn_json_opts small = {.max_size = 8};
    expect_error("[1,2,3,4,5]", 11, &small, "JSON input of 11 bytes exceeds the limit of 8 bytes");
    char longnum[1100];
    memset(longnum, '1', sizeof longnum);
    expect_error(longnum, sizeof longnum, NULL, "byte 0: number too long");
}

static void test_values(void **state)
{
    (void)state;
    bn_json_doc *d = parse_ok(
        " {\"s\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\",\"u\":\"\\u00e9\\u20AC\\uD83D\\uDE00\","
        "\"z\":\"x\\u0000y\",\"raw\":\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\","
        "\"n\":[0,-0,12,-7,1.5,-2.5e-3,1E2,9223372036854775807,-9223372036854775808,"
        "9223372036854775808],\"t\":true,\"f\":false,\"nl\":null,\"e\":{},\"a\":[]} ");
    const bn_json *r = bn_json_root(d);
    assert_int_equal(r->type, BN_JSON_OBJECT);
    assert_int_equal(r->len, 10);
    assert_string_equal(bn_json_get(r, "s")->str, "a\"b\\c/d\b\f\n\r\t");
    const bn_json *u = bn_json_get(r, "u");
    assert_int_equal(u->len, 2 + 3 + 4);
    assert_memory_equal(u->str, "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 9);
    assert_memory_equal(bn_json_get(r, "raw")->str, u->str, 9);
    const bn_json *z = bn_json_get(r, "z");
    assert_int_equal(z->len, 3);
    assert_memory_equal(z->str, "x\0y", 3);
    const bn_json *n = bn_json_get(r, "n");
    assert_int_equal(n->len, 10);
    assert_true(bn_json_at(n, 0)->is_int && bn_json_at(n, 0)->i64 == 0);
    assert_true(bn_json_at(n, 1)->is_int && signbit(bn_json_at(n, 1)->num));
    assert_int_equal(bn_json_at(n, 3)->i64, -7);
    assert_false(bn_json_at(n, 4)->is_int);
    assert_true(bn_json_at(n, 4)->num == 1.5);
    assert_true(bn_json_at(n, 5)->num == -2.5e-3);
    assert_false(bn_json_at(n, 6)->is_int);
    assert_true(bn_json_at(n, 6)->num == 100.0);
    assert_true(bn_json_at(n, 7)->is_int && bn_json_at(n, 7)->i64 == INT64_MAX);
    assert_true(bn_json_at(n, 8)->is_int && bn_json_at(n, 8)->i64 == INT64_MIN);
    assert_false(bn_json_at(n, 9)->is_int); /* 2^63 does not fit */
    assert_true(bn_json_at(n, 9)->num == 9223372036854775808.0);
    assert_null(bn_json_at(n, 10));
    int64_t x;
    assert_int_equal(bn_json_int_in(bn_json_at(n, 6), 0, 1000, &x), 0); /* 1E2 is integral */
    assert_int_equal(x, 100);
    assert_int_equal(bn_json_int_in(bn_json_at(n, 4), -10, 10, &x), -1);  /* 1.5 */
    assert_int_equal(bn_json_int_in(bn_json_at(n, 2), 0, 11, &x), -1);    /* 12 > 11 */
    assert_int_equal(bn_json_int_in(bn_json_get(r, "s"), 0, 11, &x), -1); /* not a number */
    assert_true(bn_json_get(r, "t")->boolean);
    assert_int_equal(bn_json_get(r, "f")->type, BN_JSON_BOOL);
    assert_false(bn_json_get(r, "f")->boolean);
    assert_int_equal(bn_json_get(r, "nl")->type, BN_JSON_NULL);
    assert_int_equal(bn_json_get(r, "e")->len, 0);
    assert_null(bn_json_get(r, "missing"));
    assert_null(bn_json_get(n, "s"));
    assert_string_equal(bn_json_type_name(BN_JSON_ARRAY), "array");
    assert_int_equal(bn_json_get(r, "u")->pos, 33);
    bn_json_free(d);
    /* scalars at top level and the tiniest underflow are fine */
    d = parse_ok("\"only\"");
    assert_string_equal(bn_json_root(d)->str, "only");
    bn_json_free(d);
    d = parse_ok("1e-400");
    assert_true(bn_json_root(d)->num == 0.0);
    bn_json_free(d);
}

static char *write_value(const char *in)
{
    bn_json_doc *d = parse_ok(in);
    bn_buf b = {0};
    bn_jw w = {.out = &b};
    bn_jw_value(&w, bn_json_root(d));
    assert_false(w.bad);
    bn_json_free(d);
    return b.data;
}

static void test_writer(void **state)
{
    (void)state;
    bn_buf b = {0};
    bn_jw w = {.out = &b};
    bn_jw_obj(&w);
    bn_jw_key(&w, "text");
    bn_jw_strn(&w, "a\"\\\n\x01\x7f\xC3\xA9 \xE2\x82 \xFF", 13);
    bn_jw_key(&w, "n");
    bn_jw_int(&w, -42);
    bn_jw_key(&w, "x");
    bn_jw_num(&w, 0.1);
    bn_jw_key(&w, "three");
    bn_jw_num(&w, 3.0);
    bn_jw_key(&w, "inf");
    bn_jw_num(&w, INFINITY);
    bn_jw_key(&w, "l");
    bn_jw_arr(&w);
    bn_jw_bool(&w, true);
    bn_jw_null(&w);
    bn_jw_arr(&w);
    bn_jw_end(&w);
    bn_jw_end(&w);
    bn_jw_end(&w);
    assert_false(w.bad);
    assert_int_equal(w.depth, 0);
    /* \x7f passes through; the truncated E2 82 and the FF each become U+FFFD */
    assert_string_equal(b.data,
                        "{\"text\":\"a\\\"\\\\\\n\\u0001\x7f\xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD "
                        "\xEF\xBF\xBD\",\"n\":-42,\"x\":0.1,\"three\":3.0,\"inf\":null,"
                        "\"l\":[true,null,[]]}");
    bn_buf_free(&b);

    /* misuse is flagged, not written as broken JSON silently */
    bn_jw m = {.out = &b};
    bn_jw_obj(&m);
    bn_jw_int(&m, 1); /* value without key */
    assert_true(m.bad);
    bn_jw m2 = {.out = &b};
    bn_jw_end(&m2);
    assert_true(m2.bad);
    bn_jw m3 = {.out = &b};
    bn_jw_arr(&m3);
    bn_jw_key(&m3, "k"); /* key in array */
    assert_true(m3.bad);
    bn_buf_free(&b);

    char *s = write_value(
        " { \"a\" : [ 1 , 2.50 , 1e2 , -0 , \"\\u0000\\u001f\\/\" ] , \"b\" : { } } ");
    assert_string_equal(s, "{\"a\":[1,2.5,100.0,0,\"\\u0000\\u001f/\"],\"b\":{}}");
    free(s);
}

static void test_utf8_helpers(void **state)
{
    (void)state;
    assert_int_equal(bn_json_utf8_prefix("ab\xC3\xA9", 4), 4);
    assert_int_equal(bn_json_utf8_prefix("ab\xC3", 3), 2); /* truncated: held back */
    assert_int_equal(bn_json_utf8_prefix("\xF0\x9F\x98", 3), 0);
    assert_int_equal(bn_json_utf8_len("\xF0\x9F\x98\x80", 4), 4);
    assert_int_equal(bn_json_utf8_len("\xC0\x80", 2), 0);
    bn_buf b = {0};
    bn_buf_printf(&b, "%d-%s", 7, "x");
    bn_buf_append(&b, "yz", 2);
    assert_string_equal(b.data, "7-xyz");
    assert_int_equal(b.len, 5);
    bn_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed), cmocka_unit_test(test_duplicates_in_large_object),
        cmocka_unit_test(test_limits),    cmocka_unit_test(test_values),
        cmocka_unit_test(test_writer),    cmocka_unit_test(test_utf8_helpers),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
