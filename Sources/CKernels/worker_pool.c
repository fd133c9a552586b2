// A small pool of worker threads for the kernels' fork-join regions (see CKernels.h).
//
// Why not libdispatch: a batch-1 forward of the flow transformer has a few dozen parallel regions of
// 20–100 µs each. `concurrentPerform` wakes its workers through a semaphore (futex) every time, and a
// profile of that forward spent more samples in wake-ups, futex waits and yields than in the GEMM
// itself; two threads were no faster than one. Here the workers spin briefly after each region, so
// the next region of the same pass finds them awake, and only then sleep on a condition variable.
//
// Protocol: one caller at a time owns the pool (`busy`). It publishes the job (function, context,
// task count), resets the task counter and the acknowledgements, then bumps `generation`. Every
// worker that sees a new generation takes tasks by an atomic counter until none are left and then
// acknowledges; the caller takes tasks too and returns once every worker has acknowledged, so the job
// (which lives on the caller's stack) is never read after the call. A caller that finds the pool
// owned — a nested region, or a second thread of the daemon — runs its tasks inline.
#include "CKernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define MAX_WORKERS 64

static pthread_mutex_t busy = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;

static int workers;  // threads started so far; guarded by `busy`
static _Atomic unsigned long generation;
static _Atomic int sleepers;
static _Atomic long next_task;
static _Atomic int acks;
static _Atomic long spin_ns = 100000;  // how long an idle worker spins before it sleeps

// The current job; written by its caller before `generation` moves, read by workers after.
static erudiff_task_fn job_fn;
static void *job_ctx;
static long job_count;

static void take_tasks(void) {
    for (;;) {
        long i = atomic_fetch_add_explicit(&next_task, 1, memory_order_relaxed);
        if (i >= job_count) return;
        job_fn(job_ctx, i);
    }
}

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

static void *worker_main(void *arg) {
    unsigned long seen = (unsigned long)(size_t)arg;
    for (;;) {
        long spins = 0, limit = atomic_load_explicit(&spin_ns, memory_order_relaxed);
        long start = now_ns();
        while (atomic_load(&generation) == seen) {
            if ((++spins & 255) != 0 || now_ns() - start < limit) { CPU_RELAX(); continue; }
            pthread_mutex_lock(&sleep_lock);
            atomic_fetch_add(&sleepers, 1);
            while (atomic_load(&generation) == seen) pthread_cond_wait(&wake, &sleep_lock);
            atomic_fetch_sub(&sleepers, 1);
            pthread_mutex_unlock(&sleep_lock);
        }
        seen = atomic_load(&generation);
        take_tasks();
        atomic_fetch_add(&acks, 1);
    }
    return NULL;
}

static void run_inline(long count, erudiff_task_fn fn, void *ctx) {
    for (long i = 0; i < count; i++) fn(ctx, i);
}

void erudiff_pool_run(long count, erudiff_task_fn fn, void *ctx, int threads) {
    if (count <= 0) return;
    if (threads <= 1 || count == 1 || pthread_mutex_trylock(&busy) != 0) { run_inline(count, fn, ctx); return; }
    int want = threads - 1 < MAX_WORKERS ? threads - 1 : MAX_WORKERS;
    if (workers == 0) {
        const char *spin = getenv("ERUDIFF_POOL_SPIN_NS");  // for benchmarks
        if (spin) erudiff_pool_set_spin(atol(spin));
    }
    while (workers < want) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&t, &attr, worker_main, (void *)(size_t)atomic_load(&generation));
        pthread_attr_destroy(&attr);
        if (failed) break;
        workers++;
    }
    if (workers == 0) { pthread_mutex_unlock(&busy); run_inline(count, fn, ctx); return; }
    job_fn = fn;
    job_ctx = ctx;
    job_count = count;
    atomic_store(&next_task, 0);
    atomic_store(&acks, 0);
    atomic_fetch_add(&generation, 1);
    if (atomic_load(&sleepers) > 0) {
        pthread_mutex_lock(&sleep_lock);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&sleep_lock);
    }
    take_tasks();
    // The workers are normally a few microseconds behind; when the cores are oversubscribed one may
    // be descheduled, and spinning through the caller's time slice would only delay it further.
    for (long spins = 0; atomic_load(&acks) < workers; spins++) {
        if (spins < 4096) CPU_RELAX(); else sched_yield();
    }
    pthread_mutex_unlock(&busy);
}

void erudiff_pool_set_spin(long nanoseconds) { atomic_store(&spin_ns, nanoseconds < 0 ? 0 : nanoseconds); }
