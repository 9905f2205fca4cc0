/* Trying the Lambda runtime locally: `bootstrap --help` and `--version` work without any Lambda
 * variable (and an unknown argument is refused), and bitnet-lambda-local runs bootstrap against
 * the in-repo Runtime API server: a valid event gets a response, a bad one an InvalidRequest
 * error, and the exit status says so. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bitnet.h"
#include "synthetic_model.h"
#include "testutil.h"

static void test_bootstrap_help_version(void **state)
{
    (void)state;
    char *bin = bn_test_bin("bootstrap");
    if (access(bin, X_OK) != 0) {
        free(bin);
        print_message("SKIP: bootstrap not built (no libcurl)\n");
        skip();
    }
    free(bin);
    char *out = NULL, *err = NULL;
    const char *h[] = {"bootstrap", "--help", NULL};
    assert_int_equal(bn_test_run(h, NULL, &out, &err), 0);
    const char *vars[] = {"AWS_LAMBDA_RUNTIME_API", "BITNET_MODEL",
                          "BITNET_THREADS",         "BITNET_CTX",
                          "BITNET_STREAM",          "BITNET_DEADLINE_MARGIN_MS",
                          "BITNET_EXTENSION",       "BITNET_WARMUP",
                          "AWS_LAMBDA_LOG_FORMAT"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (!strstr(out, vars[i]))
            fail_msg("bootstrap --help lacks %s", vars[i]);
    free(out);
    free(err);
    const char *v[] = {"bootstrap", "--version", NULL};
    assert_int_equal(bn_test_run(v, NULL, &out, &err), 0);
    assert_true(strncmp(out, "bootstrap " BN_VERSION "\n", 11 + strlen(BN_VERSION)) == 0);
    assert_non_null(strstr(out, "\nflags: "));
    assert_non_null(strstr(out, " scalar"));
    free(out);
    free(err);
    const char *bad[] = {"bootstrap", "--serve", NULL};
    assert_int_equal(bn_test_run(bad, NULL, &out, &err), 2);
    assert_non_null(strstr(err, "unknown argument '--serve'"));
    free(out);
    free(err);
}

static void test_lambda_local(void **state)
{
    (void)state;
    char *bin = bn_test_bin("bootstrap");
    int have = access(bin, X_OK) == 0;
    free(bin);
    const char *emu = getenv("BN_EMULATOR");
    if (!have || (emu && *emu)) {
        /* under qemu-user the tool's child (an aarch64 bootstrap) would need binfmt_misc */
        print_message("SKIP: %s\n", have ? "cross build (bootstrap is started by the tool)"
                                         : "bootstrap not built (no libcurl)");
        skip();
    }
    bn_err e = {0};
    bn_synth_params p;
    char *model = bn_test_tmpfile(".gguf");
    assert_int_equal(bn_synth_preset("tiny", &p, &e), 0);
    assert_int_equal(bn_synth_write(&p, model, &e), 0);
    char *out = NULL, *err = NULL;
    const char *ok[] = {"bitnet-lambda-local",
                        "-m",
                        model,
                        "-t",
                        "1",
                        "{\"prompt\":\"Hello\",\"n_predict\":4,\"temperature\":0}",
                        NULL};
    int rc = bn_test_run(ok, NULL, &out, &err);
    /* a direct invoke is POST /completion: llama-server's completion object */
    if (rc != 0 || strncmp(out, "response local-1 {", 18) != 0 || !strstr(out, "\"content\":"))
        fail_msg("exit %d, stdout: %s\nstderr: %s", rc, out, err);
    assert_non_null(strstr(out, "\"tokens_predicted\":4"));
    assert_non_null(strstr(err, "init: model")); /* bootstrap's log passes through */
    free(out);
    free(err);
    const char *bad[] = {
        "bitnet-lambda-local", "-m", model, "-t", "1", "{\"prompt\":\"x\",\"top_k\":\"5\"}", NULL};
    assert_int_equal(bn_test_run(bad, NULL, &out, &err), 1);
    assert_non_null(strstr(out, "error local-1 "));
    assert_non_null(strstr(out, "InvalidRequest"));
    free(out);
    free(err);
    const char *none[] = {"bitnet-lambda-local", "-m", model, NULL};
    assert_int_equal(bn_test_run(none, NULL, &out, &err), 2);
    free(out);
    free(err);
    unlink(model);
    free(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bootstrap_help_version),
        cmocka_unit_test(test_lambda_local),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
