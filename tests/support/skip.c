/* Skipped tests: counted, so that an executable with nothing to run (e.g. ../shared absent)
 * exits with BN_TEST_SKIPPED and ctest reports it as skipped instead of passed. */
#include "testutil.h"

#include <stdio.h>

static size_t n_skipped;

void bn_test_skip(const char *why)
{
    print_message("SKIP: %s\n", why);
    n_skipped++;
    _skip(__FILE__, __LINE__);
}

void bn_test_skip_if_missing(const void *path, const char *what)
{
    if (path)
        return;
    char why[512];
    snprintf(why, sizeof why, "%s not found (../shared absent?)", what);
    bn_test_skip(why);
}

int bn_test_exit_status(int failed, size_t n_tests)
{
    if (failed)
        return failed;
    return n_tests > 0 && n_skipped == n_tests ? BN_TEST_SKIPPED : 0;
}
