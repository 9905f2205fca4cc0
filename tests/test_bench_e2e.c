/* bin/bench-e2e -R: the reference's llama-bench is run beside each thread count and its CSV read
 * back. A stand-in script prints what llama-bench -o csv prints (a header and the prompt and
 * generation rows, fields quoted) with known rates, and records the arguments it got: the
 * bench must pass the same file, -p, -n, -t and -r, print the rates it read and put them beside
 * its own. A stand-in that prints no rows is an error (exit 1), never a table of zeros. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void expect_contains(const char *text, const char *want)
{
    if (!strstr(text, want))
        fail_msg("output does not contain '%s':\n%.3000s", want, text);
}

/* A stand-in llama-bench at a fresh path; it appends its arguments to ARGS_LOG. */
static char *write_fake(const char *args_log, int with_rows)
{
    char *path = bn_test_tmpfile("-llama-bench.sh");
    char script[2048];
    snprintf(script, sizeof script,
             "#!/bin/sh\n"
             "echo \"$@\" >> '%s'\n"
             "echo 'build_commit,cpu_info,model_filename,n_threads,n_prompt,n_gen,avg_ns,"
             "stddev_ns,avg_ts,stddev_ts'\n"
             "%s",
             args_log,
             with_rows ? "echo '\"x\",\"AMD EPYC\",\"m.gguf\",\"1\",\"16\",\"0\",\"1\",\"0\","
                         "\"12.500000\",\"0.250000\"'\n"
                         "echo '\"x\",\"AMD EPYC\",\"m.gguf\",\"1\",\"0\",\"8\",\"1\",\"0\","
                         "\"4.000000\",\"0.125000\"'\n"
                       : "");
    assert_int_equal(bn_test_write_file(path, script, strlen(script)), 0);
    assert_int_equal(chmod(path, 0755), 0);
    return path;
}

static void test_reference_side_by_side(void **state)
{
    (void)state;
    char *model = bn_test_data("models/tiny-llama.gguf");
    char *log = bn_test_tmpfile(".args");
    char *fake = write_fake(log, 1);
    const char *argv[] = {"bench-e2e", "-m", model, "-t", "1,2", "-p", "16", "-n",
                          "8",         "-r", "2",   "-w", "10",  "-R", fake, NULL};
    char *out, *err;
    int rc = bn_test_run(argv, NULL, &out, &err);
    if (rc != 0)
        fail_msg("bench-e2e exited %d: %s", rc, err);
    expect_contains(out, "\"bench\":\"llama-bench\"");
    expect_contains(out, "\"threads\":1,\"prompt_tokens\":16,\"prompt_tok_s\":12.50,"
                         "\"prompt_tok_s_sd\":0.25,\"gen_tokens\":8,\"decode_tok_s\":4.00,"
                         "\"decode_tok_s_sd\":0.12");
    expect_contains(out, "| threads | pp16 ours | pp16 reference | ratio | tg8 ours |");
    /* one row per thread count with the reference's rates and a ratio */
    expect_contains(out, "| 12.50 | ");
    expect_contains(out, "| 4.00 | ");
    const char *row1 = strstr(out, "\n| 1 | ");
    const char *row2 = strstr(out, "\n| 2 | ");
    assert_non_null(row1);
    assert_non_null(row2);
    /* the ratio printed is ours over the reference's */
    double ours_pp, ref_pp, ratio;
    assert_int_equal(sscanf(row1, "\n| 1 | %lf | %lf | %lfx", &ours_pp, &ref_pp, &ratio), 3);
    assert_true(ref_pp == 12.5);
    assert_true(ours_pp > 0.0);
    assert_true(ratio > 0.99 * ours_pp / 12.5 && ratio < 1.01 * ours_pp / 12.5 + 0.01);

    /* the stand-in got the same file, lengths, threads and repetitions, once per thread count */
    size_t n = 0;
    char *args = (char *)bn_test_read_file(log, &n);
    assert_non_null(args);
    char want[1024];
    snprintf(want, sizeof want,
             "-m %s -p 16 -n 8 -t 1 -r 2 -o csv\n-m %s -p 16 -n 8 -t 2 -r 2 -o csv\n", model,
             model);
    assert_string_equal(args, want);
    free(args);
    free(out);
    free(err);
    free(fake);
    free(log);
    free(model);
}

static void test_reference_without_rows_fails(void **state)
{
    (void)state;
    char *model = bn_test_data("models/tiny-llama.gguf");
    char *log = bn_test_tmpfile(".args");
    char *fake = write_fake(log, 0);
    const char *argv[] = {"bench-e2e", "-m", model, "-t", "1",  "-p", "8",
                          "-n",        "4",  "-w",  "10", "-R", fake, NULL};
    char *out, *err;
    assert_int_equal(bn_test_run(argv, NULL, &out, &err), 1);
    expect_contains(err, "did not run or gave no prompt and generation rows");
    assert_null(strstr(out, "side by side"));
    free(out);
    free(err);
    free(fake);
    free(log);
    free(model);
}

int main(void)
{
    const char *emu = getenv("BN_EMULATOR");
    if (emu && *emu) {
        /* bench-e2e runs each thread count in a fork()ed child, and a fork()ed child of a
         * dynamically linked program hangs under qemu-aarch64 7.2 (paths.c) */
        printf("SKIPPED: bench-e2e forks, which hangs under the emulator (%s)\n", emu);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_side_by_side),
        cmocka_unit_test(test_reference_without_rows_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
