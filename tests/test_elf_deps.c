/* tools/elf-deps.sh, which decides what goes into the FROM scratch Lambda image: on a built
 * program it lists the loader and every library (libc among them); a root made of exactly that
 * list satisfies it, a root missing one library or the loader fails naming it, and symbolic links
 * inside the root (absolute ones included) are followed inside the root, never on the host. */
#include "testutil.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs the shell command built from FMT (stderr merged into *out when out is not NULL);
 * returns its exit status. */
static int sh(char **out, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[8300];
    snprintf(full, sizeof full, "(%s) 2>&1", cmd);
    FILE *p = popen(full, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (n + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    int st = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void expect_in(const char *out, const char *want)
{
    if (!strstr(out, want))
        fail_msg("output lacks [%s]; output:\n%s", want, out);
}

static void test_elf_deps(void **state)
{
    (void)state;
    if (sh(NULL, "command -v readelf >/dev/null") != 0) {
        print_message("SKIP: readelf (binutils) not installed\n");
        skip();
    }
    char *script = bn_test_source("tools/elf-deps.sh");
    char *prog = bn_test_bin("bitnet-run");
    char *out;

    assert_int_equal(sh(&out, "bash '%s' '%s'", script, prog), 0);
    assert_true(strncmp(out, "/lib", 4) == 0); /* the loader comes first */
    char *libc = strstr(out, "/libc.so.6\n");
    assert_non_null(libc);
    /* libc's own directory: /lib/<triplet> of the program's machine */
    const char *line = libc;
    while (line > out && line[-1] != '\n')
        line--;
    char libdir[256];
    snprintf(libdir, sizeof libdir, "%.*s", (int)(libc - line), line);
    char *listed = out;

    /* A root holding exactly the listed files and the program. */
    char *root = bn_test_tmpfile(".root");
    assert_int_equal(sh(NULL,
                        "mkdir -p '%1$s/bin' && cp '%2$s' '%1$s/bin/prog' && "
                        "bash '%3$s' '%2$s' | while read -r f; do "
                        "mkdir -p \"%1$s${f%%/*}\" && cp -L \"$f\" \"%1$s$f\"; done",
                        root, prog, script),
                     0);
    assert_int_equal(sh(&out, "bash '%s' --root '%s' '%s/bin/prog'", script, root, root), 0);
    assert_string_equal(out, listed);
    free(out);

    /* /lib as an absolute symlink to /usr/lib inside the root: followed inside the root. */
    assert_int_equal(
        sh(NULL, "cd '%s' && mkdir -p usr && mv lib usr/lib && ln -s /usr/lib lib", root), 0);
    assert_int_equal(sh(&out, "bash '%s' --root '%s' '%s/bin/prog'", script, root, root), 0);
    assert_string_equal(out, listed);
    free(out);

    /* Without libc in the root it fails, although the host has one at the same path. */
    assert_int_equal(
        sh(NULL, "rm '%s/usr%s/libc.so.6' && test -e '%s/libc.so.6'", root, libdir, libdir), 0);
    assert_int_equal(sh(&out, "bash '%s' --root '%s' '%s/bin/prog'", script, root, root), 1);
    expect_in(out, "needs libc.so.6");
    free(out);

    /* Without the loader it fails naming the loader. Never touch ROOT/lib/...: on the host,
     * that path leads through the absolute link to the host's own /usr/lib. */
    char loader[256];
    snprintf(loader, sizeof loader, "%.*s", (int)strcspn(listed, "\n"), listed);
    bool under_lib = strncmp(loader, "/lib/", 5) == 0;
    assert_int_equal(sh(NULL, "rm '%s%s%s'", root, under_lib ? "/usr" : "", loader), 0);
    assert_int_equal(sh(&out, "bash '%s' --root '%s' '%s/bin/prog'", script, root, root), 1);
    expect_in(out, "loader");
    expect_in(out, loader);
    free(out);

    /* Not an ELF file, and bad usage: exit 2. */
    assert_int_equal(sh(&out, "bash '%s' '%s'", script, script), 2);
    expect_in(out, "not an ELF file");
    free(out);
    assert_int_equal(sh(&out, "bash '%s' --root", script), 2);
    free(out);

    assert_int_equal(sh(NULL, "rm -rf '%s'", root), 0);
    free(root);
    free(listed);
    free(prog);
    free(script);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_elf_deps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
