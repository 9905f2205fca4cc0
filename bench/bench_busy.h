/* Competing CPU load for the benchmarks: N child processes that spin, as other tenants of a
 * shared host or Lambda's fractional vCPUs do, so that contention figures can be reproduced
 * (`-b 2` on a 2-CPU machine: one busy loop per core). */
#ifndef BN_BENCH_BUSY_H
#define BN_BENCH_BUSY_H

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
    bench_busy_max = 64
};

/* Starts n spinning children; their pids go to pids[0..n). Returns how many started. */
static inline int bench_busy_start(int n, pid_t *pids)
{
    int started = 0;
    for (int i = 0; i < n && i < bench_busy_max; i++) {
        pid_t p = fork();
        if (p == 0) {
            volatile unsigned long x = 0;
            for (;;)
                x++;
        }
        if (p < 0)
            break;
        pids[started++] = p;
    }
    return started;
}

/* Stops exactly the children bench_busy_start started. */
static inline void bench_busy_stop(int n, const pid_t *pids)
{
    for (int i = 0; i < n; i++)
        kill(pids[i], SIGKILL);
    for (int i = 0; i < n; i++)
        waitpid(pids[i], NULL, 0);
}

#endif
