/* Starting and reaping the programs the Runtime API tests drive (declared in
 * runtime_server.h): the environment is built before fork because the test process has
 * server threads running, so the child may only exec. */
#include "runtime_server.h"

#include <fcntl.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

pid_t bn_rs_spawn(const char *prog, const char *const *env, const char *stderr_path)
{
    /* bin/PROG, through the emulator's words when cross-testing */
    const char *emu = getenv("BN_EMULATOR");
    char *emu_copy = emu && *emu ? strdup(emu) : NULL;
    const char *argv[20];
    int n = 0;
    if (emu_copy)
        for (char *tok = strtok(emu_copy, " "); tok && n < 16; tok = strtok(NULL, " "))
            argv[n++] = tok;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", BN_BIN_DIR, prog);
    argv[n++] = path;
    argv[n] = NULL;
    pid_t pid = bn_rs_spawn_cmd(argv, env, false, stderr_path);
    free(emu_copy);
    return pid;
}

pid_t bn_rs_spawn_cmd(const char *const *argv, const char *const *env, bool clean_env,
                      const char *stderr_path)
{
    /* everything is prepared before fork: the parent has threads, the child may only exec */
    size_t ne = 0, nx = 0;
    while (!clean_env && environ[ne])
        ne++;
    while (env && env[nx])
        nx++;
    const char **envp = calloc(ne + nx + 1, sizeof *envp);
    size_t k = 0;
    for (size_t i = 0; i < ne; i++) {
        bool overridden = false;
        for (size_t j = 0; j < nx; j++) {
            const char *eq = strchr(env[j], '=');
            size_t kl = eq ? (size_t)(eq - env[j]) : strlen(env[j]);
            if (!strncmp(environ[i], env[j], kl) && environ[i][kl] == '=')
                overridden = true;
        }
        if (!overridden)
            envp[k++] = environ[i];
    }
    for (size_t j = 0; j < nx; j++) {
        const char *eq = strchr(env[j], '=');
        if (!eq) /* "K" alone = remove K */
            continue;
        bool later = false; /* a later K=... in ENV wins */
        for (size_t l = j + 1; l < nx; l++)
            later |= !strncmp(env[l], env[j], (size_t)(eq - env[j]) + 1);
        if (!later)
            envp[k++] = env[j];
    }
    envp[k] = NULL;
    int errfd = stderr_path ? open(stderr_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)
                            : -1;
    int nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(nullfd, 0);
        dup2(nullfd, 1);
        if (errfd >= 0)
            dup2(errfd, 2);
        execvpe(argv[0], (char *const *)argv, (char *const *)envp);
        _exit(127);
    }
    if (errfd >= 0)
        close(errfd);
    close(nullfd);
    free(envp);
    return pid;
}

int bn_rs_wait_exit(pid_t pid, int timeout_ms)
{
    for (int waited = 0;; waited += 10) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (r < 0)
            return -1;
        if (waited >= timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        usleep(10000);
    }
}
