/* OpenAI's official Node SDK (`openai` from npm, installed at test time into a scratch folder
 * of the build directory) against bitnet-server: chat.completions.create and
 * completions.create, buffered and streamed; the texts equal bitnet-run's for the same greedy
 * settings. Exits with 77 (ctest's SKIP_RETURN_CODE, shown as "Skipped") and a SKIPPED line
 * when node or npm is absent or the install fails (no registry). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http_client.h"
#include "json.h"
#include "synthetic_model.h"

#define SKIP_CODE 77
#define N_TOKENS  12

static char *model;
static char *modules; /* .../openai-node/node_modules */

static bn_json_doc *parse(const char *s, size_t n)
{
    bn_err err = {0};
    bn_json_doc *d = bn_json_parse(s, n, NULL, &err);
    if (!d)
        fail_msg("not JSON (%s): %.400s", err.msg, s);
    return d;
}

static const char *str(const bn_json *o, const char *k)
{
    const bn_json *v = bn_json_get(o, k);
    if (!v || v->type != BN_JSON_STRING)
        fail_msg("no string \"%s\" in the SDK's results", k);
    return v->str;
}

static void test_sdk(void **state)
{
    (void)state;
    char *want_chat = bn_cli_greedy_text(model, "Be brief.", "Hello", N_TOKENS);
    char *want_text = bn_cli_greedy_text(model, NULL, "The capital of France is", N_TOKENS);
    bn_srv s;
    const char *args[] = {"-m",        model,     "-t",      "1",    "-c", "1024",
                          "--api-key", "sdk-key", "--alias", "tiny", NULL};
    assert_true(bn_srv_start(&s, args));
    char *script = bn_test_source("tests/node/openai_sdk.mjs");
    char url[64], cmd[4096], ntok[8];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", s.port);
    snprintf(ntok, sizeof ntok, "%d", N_TOKENS);
    snprintf(cmd, sizeof cmd, "node '%s' '%s' '%s' sdk-key %s", script, modules, url, ntok);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    bn_buf out = {0};
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        bn_buf_append(&out, buf, n);
    int rc = pclose(p);
    if (rc != 0)
        fail_msg("node exited %d: %s", rc, out.data ? out.data : "");
    bn_json_doc *d = parse(out.data, out.len);
    const bn_json *o = bn_json_root(d);
    assert_string_equal(str(o, "chat"), want_chat);
    assert_string_equal(str(o, "chat_stream"), want_chat);
    assert_string_equal(str(o, "completion"), want_text);
    assert_string_equal(str(o, "completion_stream"), want_text);
    assert_string_equal(str(o, "chat_object"), "chat.completion");
    assert_string_equal(str(o, "completion_object"), "text_completion");
    assert_string_equal(str(o, "chat_finish"), str(o, "chat_stream_finish"));
    assert_int_equal(bn_json_get(o, "chat_usage")->i64, bn_json_get(o, "chat_stream_usage")->i64);
    assert_int_equal(bn_json_get(o, "error_status")->i64, 400);
    assert_string_equal(bn_json_at(bn_json_get(o, "model_ids"), 0)->str, "tiny");
    bn_json_free(d);
    bn_buf_free(&out);
    free(script);
    assert_int_equal(bn_srv_stop(&s, 10000), 0);
    free(want_chat);
    free(want_text);
}

/* npm install openai into <bin>/../openai-node (once; later runs reuse it). */
static bool install_sdk(void)
{
    if (system("node --version >/dev/null 2>&1") || system("npm --version >/dev/null 2>&1")) {
        printf("SKIPPED: node or npm not found (apt-get install nodejs npm)\n");
        return false;
    }
    char *bin = bn_test_bin("");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/../openai-node", bin);
    free(bin);
    mkdir(dir, 0755);
    char check[1200];
    snprintf(check, sizeof check, "%s/node_modules/openai/package.json", dir);
    if (access(check, R_OK)) {
        char cmd[1400];
        snprintf(cmd, sizeof cmd,
                 "cd '%s' && npm install --no-audit --no-fund --silent "
                 "--no-package-lock openai >npm.log 2>&1",
                 dir);
        if (system(cmd) || access(check, R_OK)) {
            printf("SKIPPED: npm install openai failed (no registry?); see %s/npm.log\n", dir);
            return false;
        }
    }
    modules = malloc(strlen(dir) + 16);
    sprintf(modules, "%s/node_modules", dir);
    return true;
}

int main(void)
{
    if (!install_sdk())
        return SKIP_CODE;
    bn_err err = {0};
    bn_synth_params sp;
    model = bn_test_tmpfile(".gguf");
    if (bn_synth_preset("tiny", &sp, &err) || bn_synth_write(&sp, model, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_sdk)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(model);
    free(model);
    free(modules);
    return rc;
}
