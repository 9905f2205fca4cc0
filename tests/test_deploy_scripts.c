/* deploy/ scripts: every script's --help, --dry-run (the exact aws/docker commands it would run),
 * and refusal of bad options; deploy/template.yaml: every !Ref/!GetAtt/!Sub/Condition names
 * something the template defines. No AWS account or network is used. */
#include "testutil.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static char *root(void) { return bn_test_source("."); }

/* Runs `bash deploy/<script> <args>` (stderr merged); returns the exit status. */
static int run_script(const char *script, const char *args, char **out)
{
    char *r = root();
    char cmd[4096];
    snprintf(
        cmd, sizeof cmd,
        "cd '%s' && env -u AWS_REGION -u AWS_DEFAULT_REGION -u BITNET_FUNCTION -u BITNET_STACK "
        "-u BITNET_REPO TMPDIR=/tmp bash deploy/%s %s 2>&1",
        r, script, args);
    free(r);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (n + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void expect_line(const char *out, const char *want)
{
    if (!strstr(out, want))
        fail_msg("output lacks [%s]; output:\n%s", want, out);
}

static size_t count(const char *out, const char *what)
{
    size_t n = 0;
    for (const char *p = out; (p = strstr(p, what)); p++)
        n++;
    return n;
}

static void test_help_and_bad_options(void **state)
{
    (void)state;
    const char *scripts[] = {"build-push.sh", "deploy.sh", "invoke.sh", "bench.sh", "logs.sh"};
    for (int i = 0; i < 5; i++) {
        char *out;
        assert_int_equal(run_script(scripts[i], "--help", &out), 0);
        expect_line(out, "usage: deploy/");
        free(out);
        assert_int_not_equal(run_script(scripts[i], "--dry-run --no-such-option", &out), 0);
        expect_line(out, "unknown option --no-such-option");
        free(out);
    }
    char *out;
    assert_int_not_equal(run_script("deploy.sh", "--dry-run", &out), 0);
    expect_line(out, "--image-uri is required");
    free(out);
    assert_int_not_equal(run_script("deploy.sh", "--dry-run --image-uri x --memory 1024", &out), 0);
    expect_line(out, "--memory must be 2048..10240 MB");
    free(out);
    assert_int_not_equal(run_script("build-push.sh", "--dry-run --arch sparc", &out), 0);
    expect_line(out, "--arch must be arm64 or x86_64");
    free(out);
    assert_int_not_equal(run_script("bench.sh", "--dry-run --memory '2048 99999'", &out), 0);
    expect_line(out, "memory 99999 is not in 2048..10240");
    free(out);
}

static void test_dry_runs(void **state)
{
    (void)state;
    char *out;
    assert_int_equal(run_script("build-push.sh", "--dry-run --tag t1", &out), 0);
    expect_line(out, "+ aws sts get-caller-identity --query Account --output text");
    expect_line(out,
                "+ aws ecr create-repository --region us-east-1 --repository-name bitnet-lambda");
    expect_line(out, "docker login --username AWS --password-stdin "
                     "123456789012.dkr.ecr.us-east-1.amazonaws.com");
    expect_line(out, "+ docker buildx build --platform linux/arm64 --provenance=false "
                     "--build-arg MODEL_SOURCE=context -t "
                     "123456789012.dkr.ecr.us-east-1.amazonaws.com/bitnet-lambda:t1 --push");
    free(out);
    assert_int_equal(run_script("build-push.sh",
                                "--dry-run --arch x86_64 --tag t2 --region eu-west-1 "
                                "--model-source download",
                                &out),
                     0);
    expect_line(out, "docker buildx build --platform linux/amd64 --provenance=false "
                     "--build-arg MODEL_SOURCE=download -t "
                     "123456789012.dkr.ecr.eu-west-1.amazonaws.com/bitnet-lambda:t2");
    free(out);

    assert_int_equal(run_script("deploy.sh",
                                "--dry-run --image-uri 1.dkr.ecr.us-east-1.amazonaws.com/b:t "
                                "--memory 10240 --timeout 300 --url stream --public",
                                &out),
                     0);
    expect_line(out, "+ aws cloudformation deploy --region us-east-1 --stack-name bitnet-lambda "
                     "--template-file ");
    expect_line(out,
                "deploy/template.yaml --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset "
                "--parameter-overrides ImageUri=1.dkr.ecr.us-east-1.amazonaws.com/b:t "
                "FunctionName=bitnet Architecture=arm64 MemorySize=10240 Timeout=300 "
                "FunctionUrl=RESPONSE_STREAM FunctionUrlAuth=NONE LogRetentionDays=14");
    expect_line(
        out, "+ aws cloudformation describe-stacks --region us-east-1 --stack-name bitnet-lambda");
    expect_line(out, "LogRetentionDays=14 AllowPublicWithoutKey=true ResponseShape=llama");
    free(out);
    /* an unsigned URL needs a key (checked by the function) unless --public says otherwise */
    assert_int_not_equal(
        run_script("deploy.sh", "--dry-run --image-uri x --url buffered --url-auth none", &out), 0);
    expect_line(out, "--url-auth none needs --api-key KEY");
    free(out);
    assert_int_equal(run_script("deploy.sh",
                                "--dry-run --image-uri x --url stream --api-key k1 "
                                "--cors https://a.example --envelope",
                                &out),
                     0);
    expect_line(out, "FunctionUrl=RESPONSE_STREAM FunctionUrlAuth=NONE LogRetentionDays=14 "
                     "AllowPublicWithoutKey=false ResponseShape=envelope ApiKey=k1 "
                     "CorsAllowOrigins=https://a.example");
    free(out);
    assert_int_equal(run_script("deploy.sh", "--dry-run --image-uri x --url buffered", &out), 0);
    expect_line(out, "FunctionUrl=BUFFERED FunctionUrlAuth=AWS_IAM ");
    free(out);
    /* HTTP routes with curl: SigV4 by default (credentials never printed), Bearer with a key */
    assert_int_equal(run_script("invoke.sh",
                                "--dry-run --url https://u.lambda-url.us-east-1.on.aws/ "
                                "--path /v1/chat/completions --n-predict 8",
                                &out),
                     0);
    expect_line(out,
                "+ curl -sS -N --aws-sigv4 aws:amz:us-east-1:lambda --user \\*\\*\\*:\\*\\*\\*");
    expect_line(out, "max_tokens\\\":8");
    expect_line(out, "https://u.lambda-url.us-east-1.on.aws/v1/chat/completions");
    free(out);
    assert_int_equal(
        run_script("invoke.sh", "--dry-run --url https://u --api-key s3 --path /health", &out), 0);
    expect_line(out, "+ curl -sS -N -H Authorization:\\ Bearer\\ \\*\\*\\* https://u/health");
    assert_null(strstr(out, "s3"));
    free(out);
    assert_int_not_equal(run_script("invoke.sh", "--dry-run --url https://u --path /nope", &out),
                         0);
    expect_line(out, "--path must be one of the routes");
    free(out);

    assert_int_equal(
        run_script("invoke.sh", "--dry-run --prompt 'Say \"hi\"' --n-predict 16", &out), 0);
    /* the payload is the blog's six fields, with the prompt JSON-escaped (then shell-quoted) */
    expect_line(out, "+ aws lambda invoke --region us-east-1 --function-name bitnet "
                     "--cli-binary-format raw-in-base64-out --payload "
                     "\\{\\\"prompt\\\":\\\"Say\\ \\\\\\\"hi\\\\\\\"\\\"\\,\\\"n_predict\\\":16\\,"
                     "\\\"temperature\\\":0.8\\,\\\"top_p\\\":0.95\\,\\\"top_k\\\":40\\,"
                     "\\\"repeat_penalty\\\":1.1\\}");
    free(out);
    assert_int_equal(run_script("invoke.sh", "--dry-run --stream", &out), 0);
    expect_line(
        out, "+ aws lambda invoke-with-response-stream --region us-east-1 --function-name bitnet");
    expect_line(out, "\\\"stream\\\":true\\}");
    free(out);

    assert_int_equal(run_script("bench.sh", "--dry-run --warm 2", &out), 0);
    expect_line(out, "--memory-size 2048");
    expect_line(out, "--memory-size 6144");
    expect_line(out, "--memory-size 10240");
    assert_int_equal(count(out, "+ aws lambda wait function-updated-v2"), 3);
    assert_int_equal(count(out, "+ aws lambda invoke "), 3 * (1 + 2));
    assert_int_equal(count(out, "--log-type Tail"), 9);
    expect_line(out, "memory        cold ms    init ms      warm ms   cold tok/s   warm tok/s");
    free(out);

    assert_int_equal(run_script("logs.sh", "--dry-run --function f2 --since 1h --follow", &out), 0);
    expect_line(
        out,
        "+ aws logs tail /aws/lambda/f2 --region us-east-1 --since 1h --format short --follow");
    free(out);
}

/* Names defined under a top-level section ("Parameters:", "Resources:", "Conditions:"). */
static int defined(const char *tpl, const char *name)
{
    const char *sections[] = {"\nParameters:\n", "\nResources:\n", "\nConditions:\n"};
    for (int s = 0; s < 3; s++) {
        const char *p = strstr(tpl, sections[s]);
        if (!p)
            continue;
        p += strlen(sections[s]);
        /* two-space-indented keys until the next top-level key (blank lines are skipped) */
        for (; *p && (*p == ' ' || *p == '\n'); p++) {
            if (p[0] == ' ' && p[1] == ' ' && p[2] != ' ') {
                size_t n = strlen(name);
                if (!strncmp(p + 2, name, n) && p[2 + n] == ':')
                    return 1;
            }
            if (*p == ' ' && !(p = strchr(p, '\n')))
                break;
        }
    }
    return 0;
}

static void test_template_references(void **state)
{
    (void)state;
    char *path = bn_test_source("deploy/template.yaml");
    char *tpl = (char *)bn_test_read_file(path, NULL);
    assert_non_null(tpl);
    const char *kinds[] = {"!Ref ", "!GetAtt ", "!Condition ", "Condition: ", "${"};
    int checked = 0;
    for (int k = 0; k < 5; k++) {
        for (const char *p = tpl; (p = strstr(p, kinds[k])); p++) {
            const char *q = p + strlen(kinds[k]);
            char name[128];
            size_t n = 0;
            while (n < sizeof name - 1 && (isalnum((unsigned char)q[n]) || q[n] == ':'))
                name[n] = q[n], n++;
            name[n] = 0;
            if (!n || !strncmp(name, "AWS::", 5))
                continue;
            if (!defined(tpl, name))
                fail_msg("template.yaml: %s%s is not defined", kinds[k], name);
            checked++;
        }
    }
    assert_true(checked >= 20);
    /* the pieces the issue asks for */
    assert_non_null(strstr(tpl, "AllowedValues: [arm64, x86_64]"));
    assert_non_null(strstr(tpl, "AllowedValues: [NONE, BUFFERED, RESPONSE_STREAM]"));
    assert_non_null(strstr(tpl, "RetentionInDays: !Ref LogRetentionDays"));
    assert_non_null(strstr(tpl, "PackageType: Image"));
    /* the role may only write its own log group */
    assert_non_null(strstr(tpl, "Action: [logs:CreateLogStream, logs:PutLogEvents]\n"
                                "                Resource: !Sub ${LogGroup.Arn}:*"));
    free(tpl);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_bad_options),
        cmocka_unit_test(test_dry_runs),
        cmocka_unit_test(test_template_references),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
