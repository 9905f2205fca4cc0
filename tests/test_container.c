/* The container image's entrypoint, run from the image's exported filesystem (under chroot, or
 * qemu-aarch64 for the arm64 image) against the in-repo Runtime API server. tests/container/run.sh builds the image with podman and sets
 *   BN_CONTAINER_ROOT        the exported filesystem
 *   BN_CONTAINER_ENTRYPOINT  the image's ENTRYPOINT (one path)
 *   BN_CONTAINER_ENV         the image's Env, one K=V per line
 *   BN_CONTAINER_RUNNER      optional: the program that runs ENTRYPOINT as `RUNNER ROOT ENTRYPOINT`
 *                            (default chroot; tests/container/qemu-run.sh for an arm64 image)
 * Without them (a plain ctest run) the test skips. The expected text comes from the engine API
 * in-process on the model file inside the image. */
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bitnet.h"
#include "json.h"
#include "runtime_server.h"

static char *reference(const char *model)
{
    bn_err err = {0};
    bn_engine *e = bn_engine_open(model, NULL, &err);
    if (!e)
        fail_msg("%s", err.msg);
    bn_session *s = bn_session_create(e, NULL, &err);
    assert_non_null(s);
    bn_generate_params g = bn_generate_default();
    g.prompt = "What is the capital of France?";
    g.n_predict = 10;
    g.sampling.temp = 0;
    if (bn_generate(s, &g, NULL, &err))
        fail_msg("%s", err.msg);
    size_t len;
    const char *raw = bn_session_output_text(s, &len);
    /* as the JSON response carries it (invalid UTF-8 -> U+FFFD, json.h) */
    bn_buf b = {0};
    bn_buf_puts(&b, "\"");
    bn_json_escape(&b, raw, len);
    bn_buf_puts(&b, "\"");
    bn_json_doc *d = bn_json_parse(b.data, b.len, NULL, &err);
    assert_non_null(d);
    char *t = strdup(bn_json_root(d)->str);
    bn_json_free(d);
    bn_buf_free(&b);
    bn_session_free(s);
    bn_engine_free(e);
    return t;
}

static void test_image_entrypoint(void **state)
{
    (void)state;
    const char *root = getenv("BN_CONTAINER_ROOT");
    const char *entry = getenv("BN_CONTAINER_ENTRYPOINT");
    const char *envs = getenv("BN_CONTAINER_ENV");
    if (!root || !entry || !envs) {
        bn_test_skip("no container image (run tests/container/run.sh or make test-container)");
    }
    bn_rs *rs = bn_rs_start();
    assert_non_null(rs);
    char api[64];
    snprintf(api, sizeof api, "AWS_LAMBDA_RUNTIME_API=127.0.0.1:%d", bn_rs_port(rs));
    /* the image's environment only (as Lambda would run it), plus the Runtime API address */
    char *copy = strdup(envs);
    const char *env[64];
    int n = 0;
    const char *model_in_image = "/opt/bitnet/model.gguf";
    for (char *line = strtok(copy, "\n"); line && n < 60; line = strtok(NULL, "\n")) {
        env[n++] = line;
        if (!strncmp(line, "BITNET_MODEL=", 13))
            model_in_image = line + 13;
    }
    env[n++] = api;
    env[n++] = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=2048";
    env[n] = NULL;
    char model[2048];
    snprintf(model, sizeof model, "%s%s", root, model_in_image);
    char *want = reference(model);

    char *log = bn_test_tmpfile(".log");
    const char *runner = getenv("BN_CONTAINER_RUNNER");
    const char *argv[] = {runner && *runner ? runner : "chroot", root, entry, NULL};
    pid_t pid = bn_rs_spawn_cmd(argv, env, true, log);
    assert_true(pid > 0);
    bn_rs_event ev = {.request_id = "c-1",
                      .body = "{\"prompt\":\"What is the capital of France?\",\"n_predict\":10,"
                              "\"temperature\":0}"};
    bn_rs_queue(rs, &ev);
    bn_rs_event ev2 = {.request_id = "c-2",
                       .body = "{\"prompt\":\"What is the capital of France?\",\"n_predict\":10,"
                               "\"temperature\":0,\"stream\":true}"};
    bn_rs_queue(rs, &ev2);
    if (!bn_rs_wait_records(rs, 2, 60000)) {
        char *l = (char *)bn_test_read_file(log, NULL);
        fail_msg("no answers from the image's entrypoint; its log:\n%s", l ? l : "");
    }
    const bn_rs_record *r = bn_rs_record_at(rs, 0);
    assert_string_equal(r->kind, "response");
    bn_err err = {0};
    bn_json_doc *d = bn_json_parse(r->body, r->len, NULL, &err);
    assert_non_null(d);
    assert_string_equal(bn_json_get(bn_json_root(d), "content")->str, want);
    assert_string_equal(bn_json_get(bn_json_root(d), "model")->str, "model");
    bn_json_free(d);
    /* "stream": true without BITNET_STREAM (a buffered Function URL): the SSE body at once */
    r = bn_rs_record_at(rs, 1);
    assert_string_equal(r->kind, "response");
    assert_int_equal(strncmp(r->body, "data: {", 7), 0);
    assert_true(bn_rs_extension_registered(rs));
    assert_true(bn_rs_wait_idle(rs, 20000));
    kill(pid, SIGTERM);
    assert_int_equal(bn_rs_wait_exit(pid, 20000), 0);
    char *l = (char *)bn_test_read_file(log, NULL);
    assert_non_null(l);
    print_message("entrypoint log:\n%s", l);
    assert_non_null(strstr(l, "init: model /opt/bitnet/model.gguf mapped"));
    assert_non_null(strstr(l, "1 threads")); /* 2048 MB -> round(2048/1769) = 1 */
    free(l);
    unlink(log);
    free(log);
    free(want);
    free(copy);
    bn_rs_stop(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_entrypoint),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
