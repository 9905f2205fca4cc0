#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

struct bn_threadpool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake;  /* workers wait for a new generation */
    pthread_cond_t done;  /* the caller waits for pending == 0 */
    unsigned generation;
    int pending;
    int stop;
    bn_parallel_fn fn;
    void *arg;
};

typedef struct worker_arg {
    bn_threadpool *tp;
    int ith;
} worker_arg;

static void *worker(void *p)
{
    worker_arg wa = *(worker_arg *)p;
    free(p);
    bn_threadpool *tp = wa.tp;
    unsigned seen = 0;
    pthread_mutex_lock(&tp->mu);
    for (;;) {
        while (!tp->stop && tp->generation == seen)
            pthread_cond_wait(&tp->wake, &tp->mu);
        if (tp->stop)
            break;
        seen = tp->generation;
        bn_parallel_fn fn = tp->fn;
        void *arg = tp->arg;
        pthread_mutex_unlock(&tp->mu);
        fn(arg, wa.ith, tp->n);
        pthread_mutex_lock(&tp->mu);
        if (--tp->pending == 0)
            pthread_cond_signal(&tp->done);
    }
    pthread_mutex_unlock(&tp->mu);
    return NULL;
}

bn_threadpool *bn_threadpool_create(int n_threads, bn_err *err)
{
    if (n_threads < 1 || n_threads > 1024) {
        bn_fail(err, "thread count %d is out of range (1..1024)", n_threads);
        return NULL;
    }
    bn_threadpool *tp = calloc(1, sizeof *tp);
    if (!tp) {
        bn_fail(err, "out of memory");
        return NULL;
    }
    tp->n = n_threads;
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->wake, NULL);
    pthread_cond_init(&tp->done, NULL);
    tp->threads = calloc((size_t)n_threads, sizeof *tp->threads);
    if (!tp->threads) {
        free(tp);
        bn_fail(err, "out of memory");
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa || (wa->tp = tp, wa->ith = i, pthread_create(&tp->threads[i], NULL, worker, wa))) {
            free(wa);
            tp->n = i; /* join what was started */
            bn_threadpool_free(tp);
            bn_fail(err, "cannot start thread %d of %d", i, n_threads);
            return NULL;
        }
    }
    return tp;
}

void bn_threadpool_free(bn_threadpool *tp)
{
    if (!tp)
        return;
    pthread_mutex_lock(&tp->mu);
    tp->stop = 1;
    pthread_cond_broadcast(&tp->wake);
    pthread_mutex_unlock(&tp->mu);
    for (int i = 1; i < tp->n; i++)
        pthread_join(tp->threads[i], NULL);
    pthread_mutex_destroy(&tp->mu);
    pthread_cond_destroy(&tp->wake);
    pthread_cond_destroy(&tp->done);
    free(tp->threads);
    free(tp);
}

int bn_threadpool_size(const bn_threadpool *tp) { return tp ? tp->n : 1; }

void bn_threadpool_run(bn_threadpool *tp, bn_parallel_fn fn, void *arg)
{
    if (!tp || tp->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    pthread_mutex_lock(&tp->mu);
    tp->fn = fn;
    tp->arg = arg;
    tp->pending = tp->n - 1;
    tp->generation++;
    pthread_cond_broadcast(&tp->wake);
    pthread_mutex_unlock(&tp->mu);
    fn(arg, 0, tp->n);
    pthread_mutex_lock(&tp->mu);
    while (tp->pending > 0)
        pthread_cond_wait(&tp->done, &tp->mu);
    pthread_mutex_unlock(&tp->mu);
}

void bn_split_range(size_t n, size_t block, int ith, int nth, size_t *begin, size_t *end)
{
    if (block == 0)
        block = 1;
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
