#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    snprintf(s, n, "%s/%s", a, b);
    return s;
}

char *bn_test_shared(const char *rel)
{
    const char *dir = getenv("BN_SHARED_DIR");
    char *p = join(dir && *dir ? dir : BN_SHARED_DIR, rel);
    struct stat st;
    if (stat(p, &st) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

char *bn_test_data(const char *rel) { return join(BN_TEST_DATA_DIR, rel); }
char *bn_test_source(const char *rel) { return join(BN_SOURCE_DIR, rel); }
char *bn_test_bin(const char *prog) { return join(BN_BIN_DIR, prog); }

/* Every temporary path handed out, removed when the test program exits (also after a failed
 * assertion: cmocka returns from main), so that a run leaves nothing behind in /tmp. Children
 * forked by the helpers leave with _exit and never run this. */
static char **tmp_paths;
static size_t n_tmp_paths;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    (void)remove(path);
    return 0;
}

static void remove_tmp_paths(void)
{
    for (size_t i = 0; i < n_tmp_paths; i++) {
        struct stat st;
        if (lstat(tmp_paths[i], &st) == 0)
            (void)nftw(tmp_paths[i], remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(tmp_paths[i]);
    }
    free(tmp_paths);
    tmp_paths = NULL;
    n_tmp_paths = 0;
}

char *bn_test_tmpfile(const char *suffix)
{
    static unsigned counter;
    const char *dir = getenv("TMPDIR");
    char buf[512];
    snprintf(buf, sizeof buf, "%s/bn-test-%d-%u%s", dir && *dir ? dir : "/tmp", (int)getpid(),
             counter++, suffix);
    char **grown = realloc(tmp_paths, (n_tmp_paths + 1) * sizeof *grown);
    char *kept = strdup(buf);
    static int registered;
    if (!registered)
        registered = atexit(remove_tmp_paths) == 0;
    if (grown && kept) {
        tmp_paths = grown;
        tmp_paths[n_tmp_paths++] = kept;
    } else {
        if (grown)
            tmp_paths = grown;
        free(kept);
    }
    return strdup(buf);
}

uint8_t *bn_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap + 1);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
    }
    fclose(f);
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

int bn_test_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

typedef struct sink {
    char *buf;
    size_t len, cap;
} sink;

static void sink_add(sink *s, const char *p, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        s->cap = (s->len + n + 1) * 2;
        s->buf = realloc(s->buf, s->cap);
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = 0;
}

int bn_test_run(const char *const *argv, const char *stdin_data, char **out, char **errout)
{
    return bn_test_run_signals(argv, stdin_data, NULL, 0, out, errout);
}

/* The next trigger fires when its pattern occurs in stdout at or after *from with at least
 * min_after bytes behind it; *from then moves past those bytes. */
static int trigger_ready(const bn_test_signal *t, const char *outbuf, size_t outlen, size_t *from)
{
    if (*from > outlen)
        return 0;
    const char *m = strstr(outbuf + *from, t->after);
    if (!m)
        return 0;
    size_t end = (size_t)(m - outbuf) + strlen(t->after);
    if (outlen - end < t->min_after)
        return 0;
    *from = end + t->min_after;
    return 1;
}

int bn_test_run_signals(const char *const *argv, const char *stdin_data, const bn_test_signal *sigs,
                        size_t n_sigs, char **out, char **errout)
{
    /* argv[0] is a program name in bin/; prefix the emulator's words when cross-testing */
    const char *emu = getenv("BN_EMULATOR");
    char *emu_copy = emu && *emu ? strdup(emu) : NULL;
    const char *args[128];
    int n = 0;
    if (emu_copy)
        for (char *tok = strtok(emu_copy, " "); tok && n < 16; tok = strtok(NULL, " "))
            args[n++] = tok;
    char *prog = bn_test_bin(argv[0]);
    args[n++] = prog;
    for (int i = 1; argv[i] && n < 127; i++)
        args[n++] = argv[i];
    args[n] = NULL;

    int pin[2], pout[2], perr[2];
    if (pipe(pin) || pipe(pout) || pipe(perr))
        return -1;
    /* posix_spawn, not fork: a fork()ed child of a dynamically linked program hangs under
     * qemu-aarch64 7.2 (Debian 12), while posix_spawn (CLONE_VFORK) works there. */
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
    posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
    posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
    int fds_to_close[6] = {pin[0], pin[1], pout[0], pout[1], perr[0], perr[1]};
    for (int i = 0; i < 6; i++)
        posix_spawn_file_actions_addclose(&fa, fds_to_close[i]);
    pid_t pid;
    int spawn_rc = posix_spawnp(&pid, args[0], &fa, NULL, (char *const *)args, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (spawn_rc != 0) {
        fprintf(stderr, "spawn %s: %s\n", args[0], strerror(spawn_rc));
        for (int i = 0; i < 6; i++)
            close(fds_to_close[i]);
        free(prog);
        free(emu_copy);
        return 127;
    }
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    signal(SIGPIPE, SIG_IGN);
    size_t in_len = stdin_data ? strlen(stdin_data) : 0, in_pos = 0;
    /* with signals to send, standard input stays open (a -cnv prompt waits, as on a
     * terminal) until the process exits */
    int keep_stdin = n_sigs > 0;
    if (!in_len && !keep_stdin) {
        close(pin[1]);
        pin[1] = -1;
    } else {
        fcntl(pin[1], F_SETFL, O_NONBLOCK);
    }
    sink so = {0}, se = {0};
    sink_add(&so, "", 0);
    sink_add(&se, "", 0);
    int open_fds = 2;
    size_t next_sig = 0, from = 0;
    while (open_fds > 0) {
        struct pollfd fds[3] = {{pout[0], POLLIN, 0}, {perr[0], POLLIN, 0}, {pin[1], POLLOUT, 0}};
        int nf = pin[1] >= 0 && in_pos < in_len ? 3 : 2;
        /* a trigger that never comes must not hang the test: 120 s without output ends it */
        int pr = poll(fds, (nfds_t)nf, next_sig < n_sigs ? 120000 : -1);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr == 0) {
            kill(pid, SIGKILL);
            next_sig = n_sigs;
        }
        char buf[65536];
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = read(fds[i].fd, buf, sizeof buf);
            if (r > 0) {
                sink_add(i == 0 ? &so : &se, buf, (size_t)r);
            } else {
                close(fds[i].fd);
                if (i == 0)
                    pout[0] = -1;
                else
                    perr[0] = -1;
                open_fds--;
            }
        }
        if (nf == 3 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write(pin[1], stdin_data + in_pos, in_len - in_pos);
            if (w > 0)
                in_pos += (size_t)w;
            if ((w < 0 || in_pos == in_len) && !keep_stdin) {
                close(pin[1]);
                pin[1] = -1;
            }
        }
        while (next_sig < n_sigs && trigger_ready(&sigs[next_sig], so.buf, so.len, &from))
            kill(pid, sigs[next_sig++].sig);
        if (pout[0] < 0 && perr[0] < 0)
            break;
    }
    if (pin[1] >= 0)
        close(pin[1]);
    int status = 0;
    waitpid(pid, &status, 0);
    free(prog);
    free(emu_copy);
    if (out)
        *out = so.buf;
    else
        free(so.buf);
    if (errout)
        *errout = se.buf;
    else
        free(se.buf);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}
