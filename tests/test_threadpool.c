/* The thread pool and the work split: every item computed exactly once whatever the thread
 * count, bn_split_range's shares cover [0, n) without overlap at multiples of the block,
 * thousands of consecutive runs (spinning and sleeping hand-offs), dynamic chunks each run once
 * and taken over from a stalled thread, no lost wake-up in 120000 sleeping hand-offs, repeated
 * create/free, and bad thread counts rejected with a message. */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "threadpool.h"

static const int thread_counts[] = {1, 2, 3, 7};
enum {
    n_counts = sizeof thread_counts / sizeof thread_counts[0]
};

/* ---------------------------------------------------------------- bn_split_range */

static void check_split(size_t n, size_t block, int nth)
{
    size_t expect_begin = 0;
    size_t eff_block = block ? block : 1;
    size_t blocks = (n + eff_block - 1) / eff_block;
    for (int ith = 0; ith < nth; ith++) {
        size_t b = 99, e = 99;
        bn_split_range(n, block, ith, nth, &b, &e);
        /* contiguous, in thread order: coverage without overlap */
        assert_int_equal(b, expect_begin);
        assert_true(b <= e);
        assert_true(e <= n);
        /* boundaries at multiples of the block, except at n (a range ending there, or an
         * empty one of a thread that has no block left) */
        assert_true(b % eff_block == 0 || b == n);
        assert_true(e % eff_block == 0 || e == n);
        /* balanced: shares differ by at most one block */
        size_t my_blocks = (e - b + eff_block - 1) / eff_block;
        assert_true(my_blocks == blocks / (size_t)nth || my_blocks == blocks / (size_t)nth + 1);
        expect_begin = e;
    }
    assert_int_equal(expect_begin, n);
}

static void test_split_range_properties(void **state)
{
    (void)state;
    const size_t ns[] = {0, 1, 3, 4, 5, 7, 64, 100, 640, 2560, 6912, 128256, 128257};
    const size_t blocks[] = {0, 1, 2, 4, 8, 16, 64, 1000};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        for (size_t j = 0; j < sizeof blocks / sizeof blocks[0]; j++)
            for (int nth = 1; nth <= 9; nth++)
                check_split(ns[i], blocks[j], nth);
}

static void test_split_range_examples(void **state)
{
    (void)state;
    /* worked by hand: 10 items, block 4 -> blocks [0,4) [4,8) [8,10) */
    size_t b, e;
    bn_split_range(10, 4, 0, 2, &b, &e);
    assert_int_equal(b, 0);
    assert_int_equal(e, 8);
    bn_split_range(10, 4, 1, 2, &b, &e);
    assert_int_equal(b, 8);
    assert_int_equal(e, 10);
    /* more threads than blocks: the last ones get empty ranges at n */
    bn_split_range(10, 4, 3, 4, &b, &e);
    assert_int_equal(b, 10);
    assert_int_equal(e, 10);
    /* one thread takes everything */
    bn_split_range(2560, 4, 0, 1, &b, &e);
    assert_int_equal(b, 0);
    assert_int_equal(e, 2560);
}

/* ---------------------------------------------------------------- runs */

typedef struct count_job {
    size_t n, block;
    atomic_int *hits;     /* per item: how many threads computed it */
    int *owner;           /* per item: which thread */
    atomic_int calls[16]; /* per ith: how many times fn ran */
    atomic_int bad_nth;
    int nth_expected;
} count_job;

static void count_fn(void *arg, int ith, int nth)
{
    count_job *job = arg;
    if (nth != job->nth_expected || ith < 0 || ith >= nth)
        atomic_fetch_add(&job->bad_nth, 1);
    atomic_fetch_add(&job->calls[ith & 15], 1);
    size_t b, e;
    bn_split_range(job->n, job->block, ith, nth, &b, &e);
    for (size_t i = b; i < e; i++) {
        atomic_fetch_add(&job->hits[i], 1);
        job->owner[i] = ith;
    }
}

static void run_count_job(bn_threadpool *tp, int nth, size_t n, size_t block)
{
    count_job job;
    memset(&job, 0, sizeof job);
    job.n = n;
    job.block = block;
    job.nth_expected = nth;
    job.hits = calloc(n + 1, sizeof *job.hits);
    job.owner = calloc(n + 1, sizeof *job.owner);
    assert_true(job.hits && job.owner);
    bn_threadpool_run(tp, count_fn, &job);
    assert_int_equal(atomic_load(&job.bad_nth), 0);
    for (int t = 0; t < nth && t < 16; t++)
        assert_int_equal(atomic_load(&job.calls[t]), 1);
    for (size_t i = 0; i < n; i++) {
        if (atomic_load(&job.hits[i]) != 1)
            fail_msg("nth=%d n=%zu: item %zu computed %d times", nth, n, i,
                     atomic_load(&job.hits[i]));
        /* the owner is fixed by the split, not by timing */
        size_t b, e;
        bn_split_range(n, block, job.owner[i], nth, &b, &e);
        assert_true(i >= b && i < e);
    }
    free(job.hits);
    free(job.owner);
}

static void test_every_index_once(void **state)
{
    (void)state;
    for (int c = 0; c < n_counts; c++) {
        int nth = thread_counts[c];
        bn_err err = {0};
        bn_threadpool *tp = bn_threadpool_create(nth, &err);
        assert_non_null(tp);
        assert_int_equal(bn_threadpool_size(tp), nth);
        const size_t ns[] = {0, 1, 5, 64, 2560, 6913};
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
            run_count_job(tp, nth, ns[i], 1);
            run_count_job(tp, nth, ns[i], 4);
        }
        bn_threadpool_free(tp);
    }
    /* a NULL pool runs inline as thread 0 of 1 */
    run_count_job(NULL, 1, 100, 4);
    assert_int_equal(bn_threadpool_size(NULL), 1);
}

typedef struct sum_job {
    atomic_long total;
} sum_job;

static void sum_fn(void *arg, int ith, int nth)
{
    sum_job *job = arg;
    size_t b, e;
    bn_split_range(1000, 1, ith, nth, &b, &e);
    long s = 0;
    for (size_t i = b; i < e; i++)
        s += (long)i;
    atomic_fetch_add(&job->total, s);
}

/* Many back-to-back runs: each must see all threads finish before the next starts. With the
 * spin disabled, every hand-off goes through the condition variables. */
static void test_many_consecutive_runs(void **state)
{
    (void)state;
    for (int c = 0; c < n_counts; c++)
        for (int spin = 0; spin < 2; spin++) {
            int nth = thread_counts[c];
            bn_err err = {0};
            bn_threadpool *tp = bn_threadpool_create(nth, &err);
            assert_non_null(tp);
            if (!spin)
                bn_threadpool_set_spin_us(tp, 0);
            int runs = spin ? 5000 : 500;
            for (int r = 0; r < runs; r++) {
                sum_job job;
                atomic_init(&job.total, 0);
                bn_threadpool_run(tp, sum_fn, &job);
                if (atomic_load(&job.total) != 999L * 1000 / 2)
                    fail_msg("nth=%d spin=%d run %d: total %ld", nth, spin, r,
                             atomic_load(&job.total));
            }
            bn_threadpool_free(tp);
        }
}

/* Runs separated by pauses longer than the spin: workers go to sleep and must wake up. */
static void test_runs_after_sleep(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_threadpool *tp = bn_threadpool_create(2, &err);
    assert_non_null(tp);
    for (int r = 0; r < 5; r++) {
        struct timespec ts = {0, 2 * 1000 * 1000}; /* 2 ms > the 100 us spin */
        nanosleep(&ts, NULL);
        run_count_job(tp, 2, 2560, 4);
    }
    bn_threadpool_free(tp);
}

typedef struct chunk_count {
    size_t n_chunks;
    atomic_int *hits;
    atomic_int bad_ith;
    int nth;
} chunk_count;

static void chunk_fn(void *arg, size_t chunk, int ith)
{
    chunk_count *cc = arg;
    if (ith < 0 || ith >= cc->nth || chunk >= cc->n_chunks)
        atomic_fetch_add(&cc->bad_ith, 1);
    else
        atomic_fetch_add(&cc->hits[chunk], 1);
}

/* Dynamic chunks: each exactly once, for every thread count, also with the spin off and with
 * one thread kept busy (its chunks are taken by the others). */
static void test_run_chunks_each_once(void **state)
{
    (void)state;
    const size_t counts[] = {0, 1, 2, 7, 100, 1003};
    for (int c = 0; c < n_counts; c++) {
        int nth = thread_counts[c];
        bn_err err = {0};
        bn_threadpool *tp = bn_threadpool_create(nth, &err);
        assert_non_null(tp);
        for (int spin = 0; spin < 2; spin++) {
            bn_threadpool_set_spin_us(tp, spin ? 100 : 0);
            for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
                for (int rep = 0; rep < 20; rep++) {
                    chunk_count cc = {.n_chunks = counts[i], .nth = nth};
                    atomic_init(&cc.bad_ith, 0);
                    cc.hits = calloc(counts[i] + 1, sizeof *cc.hits);
                    assert_non_null(cc.hits);
                    bn_threadpool_run_chunks(tp, counts[i], chunk_fn, &cc);
                    assert_int_equal(atomic_load(&cc.bad_ith), 0);
                    for (size_t k = 0; k < counts[i]; k++)
                        if (atomic_load(&cc.hits[k]) != 1)
                            fail_msg("nth=%d n=%zu: chunk %zu ran %d times", nth, counts[i], k,
                                     atomic_load(&cc.hits[k]));
                    free(cc.hits);
                }
        }
        bn_threadpool_free(tp);
    }
    chunk_count cc = {.n_chunks = 5, .nth = 1};
    atomic_init(&cc.bad_ith, 0);
    cc.hits = calloc(5, sizeof *cc.hits);
    assert_non_null(cc.hits);
    bn_threadpool_run_chunks(NULL, 5, chunk_fn, &cc); /* a NULL pool runs inline */
    for (int k = 0; k < 5; k++)
        assert_int_equal(atomic_load(&cc.hits[k]), 1);
    free(cc.hits);
}

static void on_watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "test_no_lost_wake_up: no progress for 20 s: a lost wake-up\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1); /* all a signal handler may do */
    (void)ignored;
    _exit(1);
}

/* A chunk of uneven length (0 to 70 steps): workers are still in their chunks when the caller
 * runs out of chunks and goes to sleep, the moment a lost wake-up needs. */
static void uneven_chunk_fn(void *arg, size_t chunk, int ith)
{
    volatile int steps = 0;
    for (size_t i = 0; i < chunk * 37 % 8 * 10; i++)
        steps++;
    chunk_fn(arg, chunk, ith);
}

/* The sleeping hand-off loses no wake-up: 120000 jobs with the spin off, so that the caller
 * sleeps on `done` and the workers on the next generation. Under qemu-user the caller used
 * to sleep through its last wake-up in each run of this test (store_load_fence in
 * threadpool.c); a hang is reported by the watchdog, not by ctest's timeout. */
static void test_no_lost_wake_up(void **state)
{
    (void)state;
    signal(SIGALRM, on_watchdog);
    uint32_t seed = 1;
    static const int counts[] = {3, 5}; /* more threads than CPUs (2 here) */
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        const int nth = counts[c];
        bn_err err = {0};
        bn_threadpool *tp = bn_threadpool_create(nth, &err);
        assert_non_null(tp);
        bn_threadpool_set_spin_us(tp, 0);
        atomic_int hits[4096]; /* clearing it all is the caller's work between two jobs */
        for (int r = 0; r < 60000; r++) {
            alarm(20);
            seed = seed * 1103515245u + 12345u;
            const size_t n = 2 + (seed >> 16) % 63;
            chunk_count cc = {.n_chunks = n, .nth = nth, .hits = hits};
            atomic_init(&cc.bad_ith, 0);
            for (size_t k = 0; k < sizeof hits / sizeof hits[0]; k++)
                atomic_init(&hits[k], 0);
            bn_threadpool_run_chunks(tp, n, uneven_chunk_fn, &cc);
            assert_int_equal(atomic_load(&cc.bad_ith), 0);
            for (size_t k = 0; k < n; k++)
                if (atomic_load(&hits[k]) != 1)
                    fail_msg("nth=%d job %d: chunk %zu of %zu ran %d times", nth, r, k, n,
                             atomic_load(&hits[k]));
        }
        alarm(0);
        bn_threadpool_free(tp);
    }
    signal(SIGALRM, SIG_DFL);
}

typedef struct slow_chunks {
    atomic_int by_thread[2];
} slow_chunks;

static void slow_chunk_fn(void *arg, size_t chunk, int ith)
{
    slow_chunks *sc = arg;
    (void)chunk;
    atomic_fetch_add(&sc->by_thread[ith & 1], 1);
    if (ith == 1) { /* thread 1 is "descheduled" for 20 ms on its first chunk */
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* A thread that stalls does not hold its share: the other takes the remaining chunks. */
static void test_run_chunks_balances(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_threadpool *tp = bn_threadpool_create(2, &err);
    assert_non_null(tp);
    slow_chunks sc;
    atomic_init(&sc.by_thread[0], 0);
    atomic_init(&sc.by_thread[1], 0);
    bn_threadpool_run_chunks(tp, 200, slow_chunk_fn, &sc);
    assert_int_equal(atomic_load(&sc.by_thread[0]) + atomic_load(&sc.by_thread[1]), 200);
    assert_true(atomic_load(&sc.by_thread[1]) <= 2); /* asleep for the whole run */
    bn_threadpool_free(tp);
}

static double process_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* An idle pool sleeps: after a run, its threads stop spinning within the spin budget (100 us),
 * so 300 ms of idleness cost (nearly) no CPU time. A frozen or idle Lambda must not burn CPU. */
typedef struct share_owner {
    pthread_t caller;
    int caller_ran_share1;
} share_owner;

static void note_share(void *arg, int ith, int nth)
{
    share_owner *so = arg;
    (void)nth;
    if (ith == 1 && pthread_equal(pthread_self(), so->caller))
        so->caller_ran_share1++;
}

/* A worker that is not running does not hold the run up: on one CPU, while the caller runs,
 * the worker it just woke cannot, so the caller takes the worker's share itself. (The pool
 * used to give share 1 to worker 1 always and wait for it to be scheduled: 2 threads on 2
 * busy CPUs ran 10-100x slower than 1 thread.) Results cannot depend on who runs a share. */
static void test_share_of_a_descheduled_worker_is_taken(void **state)
{
    (void)state;
    cpu_set_t old, one;
    assert_int_equal(sched_getaffinity(0, sizeof old, &old), 0);
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &old)) {
            CPU_SET(c, &one);
            break;
        }
    if (sched_setaffinity(0, sizeof one, &one) != 0) {
        print_message("SKIP: cannot pin this process to one CPU\n");
        skip();
    }
    bn_err err = {0};
    bn_threadpool *tp = bn_threadpool_create(2, &err); /* its worker inherits the one CPU */
    assert_non_null(tp);
    share_owner so = {pthread_self(), 0};
    for (int r = 0; r < 2000; r++)
        bn_threadpool_run(tp, note_share, &so);
    bn_threadpool_free(tp);
    sched_setaffinity(0, sizeof old, &old);
    print_message("the caller ran the worker's share in %d of 2000 runs\n", so.caller_ran_share1);
    assert_true(so.caller_ran_share1 > 0);
}

static void test_idle_pool_uses_no_cpu(void **state)
{
    (void)state;
    bn_err err = {0};
    bn_threadpool *tp = bn_threadpool_create(2, &err);
    assert_non_null(tp);
    run_count_job(tp, 2, 1000, 4);
    double c0 = process_cpu_s();
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    double used = process_cpu_s() - c0;
    bn_threadpool_free(tp);
    if (used > 0.05)
        fail_msg("an idle pool used %.3f s of CPU in 0.3 s", used);
}

static void test_create_free_repeatedly(void **state)
{
    (void)state;
    for (int i = 0; i < 200; i++) {
        bn_err err = {0};
        int nth = thread_counts[i % n_counts];
        bn_threadpool *tp = bn_threadpool_create(nth, &err);
        assert_non_null(tp);
        if (i % 2) /* free right after a run, and without any run */
            run_count_job(tp, nth, 17, 1);
        bn_threadpool_free(tp);
    }
    bn_threadpool_free(NULL);
}

static void test_thread_count_errors(void **state)
{
    (void)state;
    const int bad[] = {0, -1, -100, 1025, 1 << 30};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bn_err err = {0};
        assert_null(bn_threadpool_create(bad[i], &err));
        assert_non_null(strstr(err.msg, "thread count"));
    }
}

/* CPUs in the kernel's own list for this thread ("0-3,8,10-11" in /proc/thread-self/status),
 * an answer independent of sched_getaffinity. -1 when unreadable. */
static int cpus_allowed_list(void)
{
    FILE *f = fopen("/proc/thread-self/status", "r");
    if (!f)
        return -1;
    char line[4096];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "Cpus_allowed_list:", 18) == 0) {
            n = 0;
            for (char *p = line + 18; *p && *p != '\n';) {
                char *end;
                long a = strtol(p, &end, 10), b = a;
                if (end == p) {
                    p++;
                    continue;
                }
                if (*end == '-')
                    b = strtol(end + 1, &end, 10);
                n += (int)(b - a + 1);
                p = end;
            }
        }
    fclose(f);
    return n;
}

/* bn_cpu_count is the number of CPUs this thread may run on: the kernel's list, and 1 after
 * pinning to one CPU. */
static void test_cpu_count(void **state)
{
    (void)state;
    int want = cpus_allowed_list();
    if (want < 0) {
        print_message("SKIP: /proc/thread-self/status unreadable\n");
        skip();
    }
    assert_int_equal(bn_cpu_count(), want);
    cpu_set_t old, one;
    assert_int_equal(sched_getaffinity(0, sizeof old, &old), 0);
    int first = 0;
    while (!CPU_ISSET(first, &old))
        first++;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
    int pinned = bn_cpu_count(), listed = cpus_allowed_list();
    assert_int_equal(sched_setaffinity(0, sizeof old, &old), 0);
    assert_int_equal(pinned, 1);
    assert_int_equal(listed, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* first: after the other tests' pools, the hang it looks for shows up far less often
         * under qemu (1 run in 4 instead of every run) */
        cmocka_unit_test(test_no_lost_wake_up),
        cmocka_unit_test(test_split_range_properties),
        cmocka_unit_test(test_split_range_examples),
        cmocka_unit_test(test_every_index_once),
        cmocka_unit_test(test_many_consecutive_runs),
        cmocka_unit_test(test_runs_after_sleep),
        cmocka_unit_test(test_run_chunks_each_once),
        cmocka_unit_test(test_run_chunks_balances),
        cmocka_unit_test(test_share_of_a_descheduled_worker_is_taken),
        cmocka_unit_test(test_idle_pool_uses_no_cpu),
        cmocka_unit_test(test_create_free_repeatedly),
        cmocka_unit_test(test_thread_count_errors),
        cmocka_unit_test(test_cpu_count),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return bn_test_exit_status(failed, sizeof tests / sizeof *tests);
}
