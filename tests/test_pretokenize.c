/* Both pre-tokenizers piece by piece, on cases derived from their definitions: Llama 3's split
 * regex (../shared/tokenizer/README.md lists its pitfalls) and llama.cpp's four-pass "default"
 * (FORMAT.md 6.2). No vocabulary is needed. */
#include "testutil.h"

#include <stdbool.h>
#include <string.h>

#include "tokenizer_impl.h"

typedef struct pieces {
    char buf[1024];
    size_t n;
} pieces;

static void collect(void *ctx, const uint8_t *p, size_t n)
{
    pieces *ps = ctx;
    assert_true(n > 0);
    assert_true(ps->n + n + 1 < sizeof ps->buf);
    memcpy(ps->buf + ps->n, p, n);
    ps->n += n;
    ps->buf[ps->n++] = '|';
    ps->buf[ps->n] = 0;
}

/* WANT: the pieces joined with '|' after each. */
static void split_is(bool llama3, const char *text, const char *want)
{
    pieces ps = {{0}, 0};
    if (llama3)
        bn_pretokenize_llama3((const uint8_t *)text, strlen(text), collect, &ps);
    else
        bn_pretokenize_default((const uint8_t *)text, strlen(text), collect, &ps);
    if (strcmp(ps.buf, want) != 0)
        fail_msg("%s split of \"%s\": got \"%s\", want \"%s\"", llama3 ? "llama3" : "default", text,
                 ps.buf, want);
}

static void test_pretokenize_llama3(void **state)
{
    (void)state;
    /* cases from the regex's definition (../shared/tokenizer/README.md lists the pitfalls) */
    split_is(true, "Hello world", "Hello| world|");
    split_is(true, "a   b", "a|  | b|");     /* \s+(?!\S) leaves one space */
    split_is(true, "a   ", "a|   |");        /* at the end the run stays whole */
    split_is(true, "1234567", "123|456|7|"); /* digits in threes from the left */
    split_is(true, "x1234", "x|123|4|");
    split_is(true, "I'M he'S we'Ll they'VE", "I|'M| he|'S| we|'Ll| they|'VE|");
    split_is(true, "it\xe2\x80\x99s", "it|\xe2\x80\x99s|"); /* U+2019 is no contraction */
    split_is(true, "'hello", "'hello|");                    /* one non-letter may lead a word */
    split_is(true, "(hello)", "(hello|)|");
    split_is(true, "a, b!!\n\nc", "a|,| b|!!\n\n|c|"); /* punctuation keeps trailing newlines */
    split_is(true, "a \n\n b", "a| \n\n| b|");         /* \s*[\r\n]+ up to the last newline */
    split_is(true, "x\r\n", "x|\r\n|");
    split_is(true, "\tfoo", "\tfoo|");
    split_is(true,
             "a\xc2\x85"
             "b",
             "a|\xc2\x85"
             "b|"); /* NEL is whitespace, leads a word */
    split_is(true,
             "a\xc2\x85\xc2\x85"
             "b",
             "a|\xc2\x85|\xc2\x85"
             "b|");
    split_is(true,
             "a\xef\xbb\xbf"
             "b",
             "a|\xef\xbb\xbf"
             "b|");                                               /* BOM is not: it leads */
    split_is(true, "e\xcc\x81t\xc3\xa9", "e|\xcc\x81t\xc3\xa9|"); /* a combining mark breaks */
    split_is(true, "\xd9\xa3\xd9\xa4\xd9\xa5\xd9\xa6", "\xd9\xa3\xd9\xa4\xd9\xa5|\xd9\xa6|");
    split_is(true, " ...", " ...|");
    split_is(true, "  ...", " | ...|");
    split_is(true,
             "\xff\xfe"
             "ab",
             "\xff\xfe|ab|"); /* invalid bytes: "other" units */
    split_is(true,
             "\xff"
             "ab",
             "\xff"
             "ab|");
    split_is(true, "'", "'|");
    split_is(true, "a'", "a|'|");
}

static void test_pretokenize_default(void **state)
{
    (void)state;
    /* llama.cpp's four passes (FORMAT.md 6.2) */
    split_is(false, "Hello world", "Hello| world|");
    split_is(false, "a  .", "a|  |.|");            /* punctuation cuts first: no " ." piece */
    split_is(false, " 12345", " |123|45|");        /* \p{N}+ then [0-9]{3} */
    split_is(false, "I'M it's", "I|'|M| it|'|s|"); /* the apostrophe is cut out first */
    split_is(false, "a   b", "a|  | b|");
    split_is(false, "x==y", "x|==|y|");
    split_is(false, "a`b", "a|`|b|"); /* the backtick is not in the first pass */
    split_is(false, "$5.00", "$|5|.|00|");
    split_is(false, "\xd9\xa3\xd9\xa4\xd9\xa5\xd9\xa6", "\xd9\xa3\xd9\xa4\xd9\xa5\xd9\xa6|");
    split_is(false,
             "12\xd9\xa3"
             "345",
             "12\xd9\xa3|345|");
    split_is(false,
             "\xff"
             "ab",
             "\xff|ab|");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pretokenize_llama3),
        cmocka_unit_test(test_pretokenize_default),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
