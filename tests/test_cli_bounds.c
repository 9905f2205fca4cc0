/* bitnet-run at its bounds: a prompt file with a NUL byte is refused (it used to end the
 * prompt silently); a -cnv line over 1 MiB is refused and the conversation goes on (it used to
 * grow without bound); a FIFO as the model fails at once (open() used to wait for a writer);
 * a model file truncated while in use gives one line instead of a SIGBUS death. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "synthetic_model.h"

extern char **environ;

static char *model;

static int setup(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_synth_params p;
    model = bn_test_tmpfile(".gguf");
    return bn_synth_preset("tiny", &p, &err) || bn_synth_write(&p, model, &err) ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(model);
    free(model);
    return 0;
}

static void expect_contains(const char *text, const char *want)
{
    if (!strstr(text, want))
        fail_msg("output does not contain '%s':\n%.2000s", want, text);
}

static void test_prompt_file_with_nul(void **state)
{
    (void)state;
    char *pf = bn_test_tmpfile(".txt");
    assert_int_equal(bn_test_write_file(pf, "hello\0world\n", 12), 0);
    const char *argv[] = {"bitnet-run", "-m", model, "-f", pf, "-n", "2", "-t", "1", NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(bn_test_run(argv, NULL, &out, &err), 2);
    expect_contains(err, "contains a NUL byte at offset 5 (prompts are text)");
    assert_string_equal(out, "");
    free(out);
    free(err);
    unlink(pf);
    free(pf);
}

/* A 2 MiB line between two ordinary ones: refused with one line, and the next line still gets
 * its answer (two turns with timings). */
static void test_conversation_line_cap(void **state)
{
    (void)state;
    const size_t big = 2u << 20;
    char *in = malloc(big + 64);
    assert_non_null(in);
    strcpy(in, "hi\n");
    memset(in + 3, 'a', big);
    strcpy(in + 3 + big, "\nhow are you\n");
    const char *argv[] = {"bitnet-run", "-m", model, "-cnv", "-n", "2",
                          "--temp",     "0",  "-t",  "1",    NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(bn_test_run(argv, in, &out, &err), 0);
    expect_contains(
        err, "bitnet-run: error: input line longer than 1 MiB (1048576 bytes); line skipped");
    int timings = 0;
    for (const char *p = err; (p = strstr(p, "stop: ")); p += 6)
        timings++;
    assert_int_equal(timings, 2);
    free(out);
    free(err);
    free(in);
}

static void test_fifo_model(void **state)
{
    (void)state;
    char *fifo = bn_test_tmpfile(".fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    const char *argv[] = {"bitnet-run", "-m", fifo, "-p", "hi", NULL};
    char *out = NULL, *err = NULL;
    alarm(20); /* a hang in open() fails the test instead of stalling ctest */
    int rc = bn_test_run(argv, NULL, &out, &err);
    alarm(0);
    assert_int_equal(rc, 1); /* a file error */
    expect_contains(err, "not a regular file");
    free(out);
    free(err);
    unlink(fifo);
    free(fifo);
}

/* Starts bitnet-run -cnv on a copy of the model, waits for its first prompt (the model is
 * mapped and in use), truncates the copy, then sends a line: the next weight read faults. */
static void test_model_truncated_in_use(void **state)
{
    (void)state;
    char *copy = bn_test_tmpfile(".gguf");
    size_t len;
    uint8_t *bytes = bn_test_read_file(model, &len);
    assert_non_null(bytes);
    assert_int_equal(bn_test_write_file(copy, bytes, len), 0);
    free(bytes);
    char *errpath = bn_test_tmpfile(".err");

    const char *emu = getenv("BN_EMULATOR");
    char *emu_copy = emu && *emu ? strdup(emu) : NULL;
    char *args[32];
    int n = 0;
    if (emu_copy)
        for (char *tok = strtok(emu_copy, " "); tok && n < 16; tok = strtok(NULL, " "))
            args[n++] = tok;
    char *prog = bn_test_bin("bitnet-run");
    const char *rest[] = {prog, "-m", copy, "-cnv", "-n", "8", "--temp", "0", "-t", "1", NULL};
    for (int i = 0; rest[i]; i++)
        args[n++] = (char *)rest[i];
    args[n] = NULL;

    int pin[2], pout[2];
    assert_int_equal(pipe(pin), 0);
    assert_int_equal(pipe(pout), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
    posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int fds[4] = {pin[0], pin[1], pout[0], pout[1]};
    for (int i = 0; i < 4; i++)
        posix_spawn_file_actions_addclose(&fa, fds[i]);
    pid_t pid;
    assert_int_equal(posix_spawnp(&pid, args[0], &fa, NULL, args, environ),
                     0); /* the emulator is found on PATH */
    posix_spawn_file_actions_destroy(&fa);
    close(pin[0]);
    close(pout[1]);

    /* the first "> " comes after the model is mapped and the (empty) system turn ran */
    char buf[256];
    size_t got = 0;
    alarm(60);
    while (got < sizeof buf - 1) {
        ssize_t r = read(pout[0], buf + got, sizeof buf - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        buf[got] = 0;
        if (strstr(buf, "> "))
            break;
    }
    buf[got] = 0;
    assert_non_null(strstr(buf, "> "));
    assert_int_equal(truncate(copy, 4096), 0);
    const char line[] = "tell me more\n";
    assert_int_equal(write(pin[1], line, sizeof line - 1), (ssize_t)(sizeof line - 1));
    close(pin[1]);
    while (read(pout[0], buf, sizeof buf) > 0)
        ;
    close(pout[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    alarm(0);
    char *err = (char *)bn_test_read_file(errpath, &len);
    assert_non_null(err);
    if (!WIFEXITED(status))
        fail_msg("bitnet-run died of signal %d; stderr: %s", WTERMSIG(status), err);
    assert_int_equal(WEXITSTATUS(status), 1);
    expect_contains(err, "bitnet-run: error: model file changed while in use");
    free(err);
    free(prog);
    free(emu_copy);
    unlink(errpath);
    free(errpath);
    unlink(copy);
    free(copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prompt_file_with_nul),
        cmocka_unit_test(test_conversation_line_cap),
        cmocka_unit_test(test_fifo_model),
        cmocka_unit_test(test_model_truncated_in_use),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
