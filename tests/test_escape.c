/* Escaping of quoted file and request text (src/base/escape.c) and its use by bn_fail: which
 * bytes pass (printable ASCII, well-formed UTF-8 other than C1 controls) and which become \xNN. */
#include "testutil.h"

#include <string.h>

#include "error.h"
#include "escape.h"

static void expect_escaped(const char *in, size_t n, const char *want)
{
    char out[256];
    bn_escape(out, sizeof out, in, n);
    if (strcmp(out, want) != 0)
        fail_msg("escaped '%s', want '%s'", out, want);
}

static void test_what_passes(void **state)
{
    (void)state;
    expect_escaped("plain text \\ \"q\" ~", 18, "plain text \\ \"q\" ~");
    expect_escaped("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
                   "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    expect_escaped("\xc2\xa0", 2, "\xc2\xa0"); /* U+00A0, first after the C1 block */
}

static void test_what_is_escaped(void **state)
{
    (void)state;
    expect_escaped("\x1b[31mred\n\t\r\x7f", 12, "\\x1b[31mred\\x0a\\x09\\x0d\\x7f");
    expect_escaped("a\0b", 3, "a\\x00b");
    expect_escaped("\xc2\x9b", 2, "\\xc2\\x9b");                   /* C1 CSI */
    expect_escaped("\xc0\xaf", 2, "\\xc0\\xaf");                   /* overlong '/' */
    expect_escaped("\xed\xa0\x80", 3, "\\xed\\xa0\\x80");          /* surrogate */
    expect_escaped("\xf4\x90\x80\x80", 4, "\\xf4\\x90\\x80\\x80"); /* past U+10FFFF */
    expect_escaped("\xe2\x82", 2, "\\xe2\\x82");                   /* cut short */
    expect_escaped("\x80x", 2, "\\x80x");                          /* stray continuation */
}

static void test_idempotent_and_bounded(void **state)
{
    (void)state;
    char once[64], twice[64];
    bn_escape(once, sizeof once, "\x1b\xff", 2);
    bn_escape(twice, sizeof twice, once, strlen(once));
    assert_string_equal(once, twice);
    /* never cuts an escape or a character at the end of the buffer */
    char small[6];
    assert_int_equal(bn_escape(small, sizeof small, "ab\x1b", 3), 2);
    assert_string_equal(small, "ab");
    assert_int_equal(bn_escape(small, sizeof small, "abcd\xc3\xa9", 6), 4);
    assert_string_equal(small, "abcd");
}

static void test_bn_fail_escapes(void **state)
{
    (void)state;
    bn_err err = {0};
    assert_int_equal(bn_fail(&err, BN_E_FORMAT, "key '%s'", "\x1b[2J"), -1);
    assert_string_equal(err.msg, "key '\\x1b[2J'");
    bn_fail_prefix(&err, "file \x07%s", "\xff");
    assert_string_equal(err.msg, "file \\x07\\xff: key '\\x1b[2J'");
    assert_int_equal(err.code, BN_E_FORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_what_passes),
        cmocka_unit_test(test_what_is_escaped),
        cmocka_unit_test(test_idempotent_and_bounded),
        cmocka_unit_test(test_bn_fail_escapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
