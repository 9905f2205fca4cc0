/* The committed Unicode class table (src/text/unicode_tables.c) against its source: Debian's
 * unicode-data files, parsed here independently of the generator (skipped when absent), for
 * every code point; and the lenient UTF-8 decoder on the boundaries of validity. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"

#define UCD_DIR "/usr/share/unicode"

static uint8_t class_of(const char *cat)
{
    switch (cat[0]) {
    case 'L': return BN_UC_L;
    case 'N': return BN_UC_N;
    case 'P': return BN_UC_P;
    case 'M': return BN_UC_M;
    case 'S': return BN_UC_S;
    case 'Z': return BN_UC_Z;
    default: return BN_UC_OTHER;
    }
}

static void test_tables_match_ucd(void **state)
{
    (void)state;
    FILE *f = fopen(UCD_DIR "/UnicodeData.txt", "r");
    FILE *pl = fopen(UCD_DIR "/PropList.txt", "r");
    if (!f || !pl) {
        if (f)
            fclose(f);
        if (pl)
            fclose(pl);
        bn_test_skip(UCD_DIR " not installed (apt-get install unicode-data)");
    }
    uint8_t *want = calloc(0x110000, 1);
    char line[1024];
    long first = -1;
    while (fgets(line, sizeof line, f)) {
        /* code;name;category;... */
        char *name = strchr(line, ';');
        if (!name)
            continue;
        char *cat = strchr(name + 1, ';');
        assert_non_null(cat);
        long cp = strtol(line, NULL, 16);
        uint8_t cls = class_of(cat + 1);
        if (strstr(name, ", First>")) {
            first = cp;
            continue;
        }
        if (strstr(name, ", Last>")) {
            assert_true(first >= 0);
            for (long c = first; c <= cp; c++)
                want[c] = cls;
            first = -1;
            continue;
        }
        want[cp] = cls;
    }
    fclose(f);
    int ws = 0;
    while (fgets(line, sizeof line, pl)) {
        if (!strstr(line, "; White_Space"))
            continue;
        char *end;
        long lo = strtol(line, &end, 16), hi = lo;
        if (end[0] == '.' && end[1] == '.')
            hi = strtol(end + 2, NULL, 16);
        for (long c = lo; c <= hi; c++) {
            want[c] |= BN_UC_WS;
            ws++;
        }
    }
    fclose(pl);
    assert_int_equal(ws, 25); /* stable since Unicode 6 */
    long bad = 0;
    for (uint32_t c = 0; c < 0x110000; c++)
        if (bn_unicode_flags(c) != want[c] && bad++ < 5)
            print_message("U+%04X: table %d, UCD %d\n", c, bn_unicode_flags(c), want[c]);
    free(want);
    assert_int_equal(bad, 0);
    assert_int_equal(bn_unicode_flags(0x110000), 0);
}

static void test_known_classes(void **state)
{
    (void)state;
    /* the README's pitfalls, independent of any file */
    assert_true(bn_unicode_flags(0x85) & BN_UC_WS);
    assert_false(bn_unicode_flags(0xFEFF) & BN_UC_WS);
    assert_false(bn_unicode_flags(0x200B) & BN_UC_WS);
    assert_int_equal(bn_unicode_flags('a'), BN_UC_L);
    assert_int_equal(bn_unicode_flags('7'), BN_UC_N);
    assert_int_equal(bn_unicode_flags(0x00BD), BN_UC_N); /* 1/2 */
    assert_int_equal(bn_unicode_flags(0x2163), BN_UC_N); /* Roman numeral four */
    assert_int_equal(bn_unicode_flags(0x0301), BN_UC_M);
    assert_int_equal(bn_unicode_flags(0x4E2D), BN_UC_L);
    assert_int_equal(bn_unicode_flags(0x20000), BN_UC_L); /* CJK extension B, a First/Last range */
    assert_int_equal(bn_unicode_flags(0x1F600), BN_UC_S);
    assert_int_equal(bn_unicode_flags(' '), BN_UC_Z | BN_UC_WS);
    assert_int_equal(bn_unicode_flags('\n'), BN_UC_OTHER | BN_UC_WS);
    assert_int_equal(bn_unicode_flags(','), BN_UC_P);
    assert_int_equal(bn_unicode_flags('$'), BN_UC_S);
}

static void decodes(const char *s, size_t n, size_t want_len, uint32_t want_cp)
{
    uint32_t cp;
    size_t l = bn_utf8_decode((const uint8_t *)s, n, &cp);
    assert_int_equal(l, want_len);
    assert_int_equal(cp, want_cp);
}

static void test_utf8_decode(void **state)
{
    (void)state;
    decodes("A", 1, 1, 'A');
    decodes("\xc2\x80", 2, 2, 0x80);
    decodes("\xdf\xbf", 2, 2, 0x7FF);
    decodes("\xe0\xa0\x80", 3, 3, 0x800);
    decodes("\xef\xbf\xbf", 3, 3, 0xFFFF);
    decodes("\xf0\x90\x80\x80", 4, 4, 0x10000);
    decodes("\xf4\x8f\xbf\xbf", 4, 4, 0x10FFFF);
    decodes("\xc0\x80", 2, 1, BN_UTF8_INVALID);         /* overlong */
    decodes("\xe0\x9f\xbf", 3, 1, BN_UTF8_INVALID);     /* overlong */
    decodes("\xed\xa0\x80", 3, 1, BN_UTF8_INVALID);     /* surrogate */
    decodes("\xf4\x90\x80\x80", 4, 1, BN_UTF8_INVALID); /* > U+10FFFF */
    decodes("\xf5\x80\x80\x80", 4, 1, BN_UTF8_INVALID);
    decodes("\x80", 1, 1, BN_UTF8_INVALID);
    decodes("\xe2\x82", 2, 1, BN_UTF8_INVALID);     /* truncated */
    decodes("\xe2\x82\xac", 2, 1, BN_UTF8_INVALID); /* only 2 bytes available */
    decodes("\xe2\x41\xac", 3, 1, BN_UTF8_INVALID);
    assert_int_equal(bn_utf8_seq_len(0xC1), 0);
    assert_int_equal(bn_utf8_seq_len(0xF4), 4);
    assert_int_equal(bn_utf8_seq_len(0xBF), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_match_ucd),
        cmocka_unit_test(test_known_classes),
        cmocka_unit_test(test_utf8_decode),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
