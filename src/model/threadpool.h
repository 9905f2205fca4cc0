/* A fixed pool of worker threads for data-parallel loops (no OpenMP). The caller takes part;
 * work is split into shares or chunks whose results do not depend on which thread computes
 * them, and a share no thread has started yet is taken by whichever thread is free, so a
 * worker that is descheduled (a busy or fractional CPU) never holds the others up: the caller
 * waits only for chunks already running. Between runs workers spin briefly
 * (100 us by default; never when threads outnumber CPUs), then sleep on a condition variable:
 * an idle pool, e.g. a frozen Lambda environment, does not spin. */
#ifndef BN_THREADPOOL_H
#define BN_THREADPOOL_H

#include <stddef.h>

#include "error.h"

typedef struct bn_threadpool bn_threadpool;

typedef void (*bn_parallel_fn)(void *arg, int ith, int nth);

/* n_threads >= 1 (the caller counts as one). */
bn_threadpool *bn_threadpool_create(int n_threads, bn_err *err);
void bn_threadpool_free(bn_threadpool *tp);
int bn_threadpool_size(const bn_threadpool *tp); /* 1 for NULL */
/* How long workers (and the caller waiting for them) spin before sleeping; 0 = sleep at once.
 * For measurements; the default suits the forward pass. */
void bn_threadpool_set_spin_us(bn_threadpool *tp, int us);

/* Runs fn(arg, ith, nth) for ith = 0..nth-1 (nth = the pool's size) and returns when all are
 * done. ith names a share of the work, not a thread: any thread may run any share (each runs
 * once), so per-share scratch indexed by ith is safe. A NULL pool runs fn(arg, 0, 1). Not
 * reentrant: one run at a time per pool. */
void bn_threadpool_run(bn_threadpool *tp, bn_parallel_fn fn, void *arg);

/* Dynamic variant for a machine whose CPUs may be busy with other work (shared hosts, Lambda's
 * fractional vCPUs): fn(arg, chunk, ith) runs exactly once for each chunk in [0, n_chunks),
 * chunks taken in increasing order by whichever thread is free, so a descheduled thread's
 * share is not waited for. ith (0..size-1) names the thread running the chunk, for per-thread
 * scratch. Results stay independent of the thread count and of timing as long as what a chunk
 * computes depends only on the chunk. */
typedef void (*bn_chunk_fn)(void *arg, size_t chunk, int ith);
void bn_threadpool_run_chunks(bn_threadpool *tp, size_t n_chunks, bn_chunk_fn fn, void *arg);
/* (n_chunks < 2^32 - 1; more run on the calling thread alone.) */

/* The half-open share [*begin, *end) of n items for thread ith of nth, in chunks that are
 * multiples of `block` (the last chunk may end at n). */
void bn_split_range(size_t n, size_t block, int ith, int nth, size_t *begin, size_t *end);

/* CPUs this process may run on (sched_getaffinity), at least 1. */
int bn_cpu_count(void);

#endif
