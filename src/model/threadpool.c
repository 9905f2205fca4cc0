/* Workers wait for a new "generation" of work: first spinning briefly on an atomic (the next
 * matmul usually comes a few microseconds after the last one, and a condition-variable wake-up
 * costs ~5-10 us on this kind of machine), then sleeping on a condition variable, so that an
 * idle pool (between requests, or a frozen Lambda environment) uses no CPU. The caller waits
 * for the workers the same way. Spinning is off when there are more threads than CPUs: a
 * spinning thread would then steal the CPU from the one doing the work.
 *
 * Sleeping is race-free by a store/load pair on both sides: the waiter counts itself in
 * `sleepers` (or sets `caller_sleeping`) and then re-checks the condition under the mutex; the
 * waker changes the condition and then reads `sleepers`, taking the mutex to signal only when
 * needed. Each side has a full fence between its store and its load (store_load_fence). C11's
 * seq_cst store and load alone would be enough, but qemu-user, where the arm64 tests run,
 * translates Arm's stlr-then-ldar without the store-load barrier an x86 host needs: the caller
 * then read a stale `done`, the worker a stale `caller_sleeping`, and the caller slept through
 * its wake-up (within 77 to 77000 jobs at 3 threads on 2 CPUs). A fence is a dmb, which qemu
 * does translate; it is paid only on the way to sleep and once per job. */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static void cpu_relax(void) { _mm_pause(); }
#elif defined(__aarch64__)
static void cpu_relax(void) { __asm__ __volatile__("yield"); }
#else
static void cpu_relax(void) {}
#endif

enum {
    default_spin_us = 100
};
static const long yield_after_ns = 5000;

struct bn_threadpool {
    int n;
    pthread_t *threads;
    atomic_uint generation; /* bumped once per job (and at stop): wakes the workers */
    atomic_int stop;
    atomic_int sleepers;        /* workers asleep (or about to sleep) on `wake` */
    atomic_int caller_sleeping; /* the caller asleep (or about to) on `done_cv` */
    atomic_long spin_ns;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_cond_t done_cv;
    /* The job: chunks are claimed through `claim` = job number << 32 | next chunk. The caller
     * closes the claim word (next chunk = CLOSED), writes the job's fields, then opens it at
     * chunk 0; a worker reads the fields after loading an open claim word and keeps its chunk
     * only if its compare-and-swap on that same word succeeds, i.e. the fields it read belong
     * to the job it claimed from. A late worker (woken after the job ended, or descheduled in
     * between) finds no chunk or fails its swap, and never touches a finished job. A release
     * fence after the close and an acquire fence before the swap make this hold on Arm, whose
     * stores may otherwise become visible out of order: a worker that read a new job's field
     * then also sees the closed word, and its swap fails. */
    _Atomic uint64_t claim;
    _Atomic(bn_chunk_fn) fn;
    _Atomic(void *) arg;
    atomic_size_t n_chunks;
    atomic_size_t done; /* chunks finished in the current job */
    uint32_t job;       /* the caller's job counter (claim's upper half) */
};

enum {
    CLOSED = 0xFFFFFFFFu
};

typedef struct worker_arg {
    bn_threadpool *tp;
    int ith;
} worker_arg;

static void store_load_fence(void) { atomic_thread_fence(memory_order_seq_cst); }

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* One step of a bounded spin that started at t0: returns 0 once the budget is spent. After the
 * first few microseconds each step also yields the CPU, so that on a loaded machine (more
 * runnable threads than CPUs) the waiting thread lets the others run, one of which may be the
 * pool thread it waits for. */
static int spin_step(unsigned i, long t0, long budget)
{
    cpu_relax();
    if ((i & 63) != 0)
        return 1;
    long dt = now_ns() - t0;
    if (dt > budget)
        return 0;
    if (dt > yield_after_ns)
        sched_yield();
    return 1;
}

/* Spins up to tp->spin_ns until *gen != seen (or stop); returns 1 if it changed. */
static int spin_for_generation(bn_threadpool *tp, unsigned seen)
{
    long budget = atomic_load_explicit(&tp->spin_ns, memory_order_relaxed);
    if (budget <= 0)
        return 0;
    long t0 = now_ns();
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(&tp->generation, memory_order_acquire) != seen)
            return 1;
        if (!spin_step(i, t0, budget))
            return 0;
    }
}

/* Claims and runs chunks of the current job until none is left. */
static void work(bn_threadpool *tp, int ith)
{
    for (;;) {
        uint64_t c = atomic_load_explicit(&tp->claim, memory_order_acquire);
        const size_t next = (size_t)(c & 0xFFFFFFFFu);
        const bn_chunk_fn fn = atomic_load_explicit(&tp->fn, memory_order_relaxed);
        void *arg = atomic_load_explicit(&tp->arg, memory_order_relaxed);
        const size_t n = atomic_load_explicit(&tp->n_chunks, memory_order_relaxed);
        if (next == CLOSED || next >= n)
            return;
        atomic_thread_fence(memory_order_acquire); /* pairs with the caller's after closing */
        if (!atomic_compare_exchange_weak_explicit(&tp->claim, &c, c + 1, memory_order_acq_rel,
                                                   memory_order_relaxed))
            continue;
        fn(arg, next, ith);
        if (atomic_fetch_add(&tp->done, 1) + 1 != n)
            continue;
        store_load_fence();
        if (atomic_load(&tp->caller_sleeping)) {
            pthread_mutex_lock(&tp->mu);
            pthread_cond_signal(&tp->done_cv);
            pthread_mutex_unlock(&tp->mu);
        }
    }
}

static void *worker(void *p)
{
    worker_arg wa = *(worker_arg *)p;
    free(p);
    bn_threadpool *tp = wa.tp;
    unsigned seen = 0;
    for (;;) {
        if (!spin_for_generation(tp, seen)) {
            pthread_mutex_lock(&tp->mu);
            atomic_fetch_add(&tp->sleepers, 1);
            store_load_fence();
            while (atomic_load(&tp->generation) == seen)
                pthread_cond_wait(&tp->wake, &tp->mu);
            atomic_fetch_sub(&tp->sleepers, 1);
            pthread_mutex_unlock(&tp->mu);
        }
        seen = atomic_load_explicit(&tp->generation, memory_order_acquire);
        if (atomic_load(&tp->stop))
            break;
        work(tp, wa.ith);
    }
    return NULL;
}

/* Starts a new generation and wakes sleeping workers. */
static void publish(bn_threadpool *tp)
{
    atomic_fetch_add(&tp->generation, 1);
    store_load_fence();
    if (atomic_load(&tp->sleepers) > 0) {
        pthread_mutex_lock(&tp->mu);
        pthread_cond_broadcast(&tp->wake);
        pthread_mutex_unlock(&tp->mu);
    }
}

bn_threadpool *bn_threadpool_create(int n_threads, bn_err *err)
{
    if (n_threads < 1 || n_threads > 1024) {
        bn_fail(err, BN_E_INPUT, "thread count %d is out of range (1..1024)", n_threads);
        return NULL;
    }
    bn_threadpool *tp = calloc(1, sizeof *tp);
    if (!tp) {
        bn_fail(err, BN_E_NOMEM, "out of memory");
        return NULL;
    }
    tp->n = n_threads;
    atomic_init(&tp->generation, 0);
    atomic_init(&tp->stop, 0);
    atomic_init(&tp->sleepers, 0);
    atomic_init(&tp->caller_sleeping, 0);
    atomic_init(&tp->spin_ns, n_threads <= bn_cpu_count() ? default_spin_us * 1000L : 0);
    atomic_init(&tp->claim, (uint64_t)CLOSED);
    atomic_init(&tp->fn, NULL);
    atomic_init(&tp->arg, NULL);
    atomic_init(&tp->n_chunks, 0);
    atomic_init(&tp->done, 0);
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->wake, NULL);
    pthread_cond_init(&tp->done_cv, NULL);
    tp->threads = calloc((size_t)n_threads, sizeof *tp->threads);
    if (!tp->threads) {
        pthread_mutex_destroy(&tp->mu);
        pthread_cond_destroy(&tp->wake);
        pthread_cond_destroy(&tp->done_cv);
        free(tp);
        bn_fail(err, BN_E_NOMEM, "out of memory");
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa || (wa->tp = tp, wa->ith = i, pthread_create(&tp->threads[i], NULL, worker, wa))) {
            free(wa);
            tp->n = i; /* join what was started */
            bn_threadpool_free(tp);
            bn_fail(err, BN_E_INTERNAL, "cannot start thread %d of %d", i, n_threads);
            return NULL;
        }
    }
    return tp;
}

void bn_threadpool_free(bn_threadpool *tp)
{
    if (!tp)
        return;
    atomic_store(&tp->stop, 1);
    publish(tp);
    for (int i = 1; i < tp->n; i++)
        pthread_join(tp->threads[i], NULL);
    pthread_mutex_destroy(&tp->mu);
    pthread_cond_destroy(&tp->wake);
    pthread_cond_destroy(&tp->done_cv);
    free(tp->threads);
    free(tp);
}

int bn_threadpool_size(const bn_threadpool *tp) { return tp ? tp->n : 1; }

void bn_threadpool_set_spin_us(bn_threadpool *tp, int us)
{
    if (tp)
        atomic_store(&tp->spin_ns, us > 0 ? us * 1000L : 0);
}

void bn_threadpool_run_chunks(bn_threadpool *tp, size_t n_chunks, bn_chunk_fn fn, void *arg)
{
    if (n_chunks == 0)
        return;
    if (!tp || tp->n == 1 || n_chunks == 1 || n_chunks >= CLOSED) { /* nothing to share */
        for (size_t c = 0; c < n_chunks; c++)
            fn(arg, c, 0);
        return;
    }
    const uint64_t job = (uint64_t)++tp->job << 32;
    atomic_store(&tp->claim, job | CLOSED);
    atomic_thread_fence(memory_order_release); /* the close is seen before any field below */
    atomic_store_explicit(&tp->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&tp->arg, arg, memory_order_relaxed);
    atomic_store_explicit(&tp->n_chunks, n_chunks, memory_order_relaxed);
    atomic_store_explicit(&tp->done, 0, memory_order_relaxed);
    atomic_store_explicit(&tp->claim, job, memory_order_release);
    publish(tp);
    work(tp, 0); /* the caller takes chunks too: all of them if the workers are late */

    /* what is left: chunks that workers claimed and are still running */
    long budget = atomic_load_explicit(&tp->spin_ns, memory_order_relaxed);
    long t0 = budget > 0 ? now_ns() : 0;
    for (unsigned i = 1; budget > 0; i++) {
        if (atomic_load_explicit(&tp->done, memory_order_acquire) == n_chunks)
            return;
        if (!spin_step(i, t0, budget))
            break;
    }
    pthread_mutex_lock(&tp->mu);
    atomic_store(&tp->caller_sleeping, 1);
    store_load_fence();
    while (atomic_load(&tp->done) != n_chunks)
        pthread_cond_wait(&tp->done_cv, &tp->mu);
    atomic_store(&tp->caller_sleeping, 0);
    pthread_mutex_unlock(&tp->mu);
}

typedef struct static_job {
    bn_parallel_fn fn;
    void *arg;
    int nth;
} static_job;

static void static_chunk(void *p, size_t chunk, int ith)
{
    (void)ith;
    const static_job *j = p;
    j->fn(j->arg, (int)chunk, j->nth);
}

void bn_threadpool_run(bn_threadpool *tp, bn_parallel_fn fn, void *arg)
{
    if (!tp || tp->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    /* share ith is a chunk: whichever thread is free computes it, so a worker that is not
     * running (a busy or fractional CPU) does not hold the others up */
    static_job j = {fn, arg, tp->n};
    bn_threadpool_run_chunks(tp, (size_t)tp->n, static_chunk, &j);
}

void bn_split_range(size_t n, size_t block, int ith, int nth, size_t *begin, size_t *end)
{
    if (block == 0)
        block = 1;
    if (nth < 1)
        nth = 1;
    size_t blocks = (n + block - 1) / block;
    size_t per = blocks / (size_t)nth, extra = blocks % (size_t)nth;
    size_t b0 = (size_t)ith * per + ((size_t)ith < extra ? (size_t)ith : extra);
    size_t b1 = b0 + per + ((size_t)ith < extra ? 1 : 0);
    *begin = b0 * block < n ? b0 * block : n;
    *end = b1 * block < n ? b1 * block : n;
}

int bn_cpu_count(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    return 1;
}
