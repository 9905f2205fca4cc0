/* Ctrl-C for bitnet-run, as llama-cli: the first SIGINT asks the running answer to stop (the
 * token callback sees it and returns non-zero, so the timings line is still printed); a
 * second SIGINT before the answer has ended exits at once with 130 (128 + SIGINT). The
 * handler is installed without SA_RESTART so that a SIGINT at the -cnv prompt interrupts
 * the blocking read of standard input. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static volatile sig_atomic_t n_interrupts, at_prompt, newline_on_exit = 1;

static void on_sigint(int sig)
{
    (void)sig;
    /* at the -cnv prompt there is no answer to end: leave at once (exiting here, not after
     * the read returns, cannot miss a SIGINT that lands just before the read starts) */
    if (at_prompt || ++n_interrupts >= 2) {
        if (newline_on_exit) /* only async-signal-safe calls here */
            (void)!write(STDOUT_FILENO, "\n", 1);
        _exit(CLI_INTERRUPTED);
    }
}

void cli_interrupt_at_prompt(bool waiting, bool newline)
{
    newline_on_exit = newline;
    at_prompt = waiting;
}

int cli_interrupt_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: getline at the -cnv prompt returns with EINTR */
    return sigaction(SIGINT, &sa, NULL);
}

bool cli_interrupted(void) { return n_interrupts > 0; }

void cli_interrupt_reset(void) { n_interrupts = 0; }
