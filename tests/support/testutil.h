/* Helpers shared by the cmocka tests: where the data is, temporary files, running programs. */
#ifndef BN_TESTUTIL_H
#define BN_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Path of REL under ../shared (the BITNET_SHARED_DIR cache variable, or $BN_SHARED_DIR), or
 * NULL when it does not exist. Returns a new malloc'd string. */
char *bn_test_shared(const char *rel);
/* Path of REL under tests/data (always returned; may not exist). malloc'd. */
char *bn_test_data(const char *rel);
/* Path of REL under the source tree (e.g. "deploy/template.yaml"). malloc'd. */
char *bn_test_source(const char *rel);
/* Path of a built program in bin/. malloc'd. */
char *bn_test_bin(const char *prog);
/* A fresh path in the temporary directory ending in SUFFIX (the file is not created; whatever
 * the test puts there, file or folder, is removed when the test program exits). */
char *bn_test_tmpfile(const char *suffix);

/* Whole file into memory (NUL-terminated for convenience); NULL if unreadable. */
uint8_t *bn_test_read_file(const char *path, size_t *len);
int bn_test_write_file(const char *path, const void *data, size_t len);

/* Runs a built program (through $BN_EMULATOR when cross-testing) with ARGV (NULL-terminated,
 * argv[0] = program name in bin/), optional STDIN_DATA; captures stdout and stderr
 * (malloc'd, NUL-terminated; pass NULL to discard). Returns the exit status, or 128+signal. */
int bn_test_run(const char *const *argv, const char *stdin_data, char **out, char **errout);

/* Exit status of a test executable whose every test skipped: ctest's SKIP_RETURN_CODE (set
 * on every test in CMakeLists.txt), so ctest reports "Skipped", never "Passed". */
enum {
    BN_TEST_SKIPPED = 77
};

/* Prints "SKIP: <why>" and skips the running test (cmocka's skip; does not return), counted
 * for bn_test_exit_status. */
void bn_test_skip(const char *why);
/* Skips the running test when path is NULL: "SKIP: <what> not found (../shared absent?)". */
void bn_test_skip_if_missing(const void *path, const char *what);

/* What main returns: cmocka's count of failed tests when any failed; BN_TEST_SKIPPED when all
 * n_tests were skipped; else 0. Use: return bn_test_exit_status(cmocka_run_group_tests(tests,
 * setup, teardown), sizeof tests / sizeof *tests); */
int bn_test_exit_status(int failed, size_t n_tests);

/* Sends signal sig once stdout shows `after` (searched from where the previous trigger
 * matched) followed by at least min_after more bytes. */
typedef struct bn_test_signal {
    const char *after;
    size_t min_after;
    int sig;
} bn_test_signal;

/* bn_test_run that sends sigs[0..n_sigs) in order as their triggers appear on stdout (a real
 * kill(), as a terminal's Ctrl-C). Standard input stays open after stdin_data until the
 * program exits; a run that prints nothing for 120 s is killed (SIGKILL, 137). */
int bn_test_run_signals(const char *const *argv, const char *stdin_data, const bn_test_signal *sigs,
                        size_t n_sigs, char **out, char **errout);

#endif
