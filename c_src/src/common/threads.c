/* SPDX-License-Identifier: MIT */
/*
 * The thread helper behind every product, decoding and the signcut encoder:
 * persistent workers that spin briefly between jobs and then sleep, and
 * parts that any thread may claim.  (The encoder runs dozens of small jobs
 * per cut, back to back, which is the spinning worker's best case; it reads
 * lrq_parallel_run_stats() to notice a worker that cannot get a CPU.)
 *
 * Why this shape, measured by bench/handoff.c on the 2-core Zen 5 VM (the
 * round trip of handing an empty task to a second thread, median):
 *   - pthread_create + join per product:    ~17 us
 *   - a worker sleeping on a condvar:        ~8 us
 *   - this pool, worker still spinning:      ~1.5 us
 * against ~100 us for a whole 2 bits/entry 4096 x 4096 product, so a thread
 * per call or a sleeping pool would eat 8-17 % of it, and more of smaller
 * ones.  A worker that spins for a short while after each job is ready at
 * once for the next one, which is the case that matters (products in a
 * loop).
 * The remaining hazard, a product arriving while the worker sleeps (or is
 * descheduled by a busy machine), is covered by letting any participant
 * claim any unclaimed part: the caller starts on its own part at once,
 * then takes the worker's part too if the worker has not claimed it yet.
 * The split into parts is static, so results never depend on who ran what.
 *
 * C99 has no atomics; GCC's __atomic builtins (also in clang) are used.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "lrq.h"
#include "common/internal.h"
#include "common/threads.h"

#define ACQ __ATOMIC_ACQUIRE
#define REL __ATOMIC_RELEASE
#define SEQ __ATOMIC_SEQ_CST
#define RLX __ATOMIC_RELAXED

/* How long an idle worker keeps spinning before it sleeps.  Long enough to
 * bridge the Python-side gap between two products in a loop (a few
 * microseconds) with a wide margin, short enough not to hold a core. */
#define SPIN_NS 200000L

static void cpu_relax(void)
{
#if LRQ_X86
    __builtin_ia32_pause();
#elif LRQ_NEON
    __asm__ __volatile__("yield"); /* the spin-wait hint of AArch64 */
#endif
}

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Part states. */
enum { PART_FREE = 0, PART_TAKEN = 1 };

static struct {
    pthread_mutex_t busy;  /* held by the caller whose job owns the workers */
    pthread_mutex_t sleep; /* with `wake`: idle workers past their spin */
    pthread_cond_t wake;
    int sleepers;          /* under `sleep` */
    int nworkers;          /* created so far; under `busy` */
    /* ticket = 2 * job number + 1 while a job runs, 2 * job number after. */
    unsigned long ticket;
    int active;            /* workers inside the current job */
    /* The current job: written before the ticket is published (release),
     * read only after it is seen (acquire). */
    lrq_part_fn fn;
    void *ctx;
    int nphases, nparts;
    int nthreads;
    int state[LRQ_MAX_PHASES][LRQ_MAX_PARTS];
    int done[LRQ_MAX_PHASES];
    int helped;            /* parts run by workers in the current job */
    int held;              /* lrq_parallel_hold() count: idle workers keep spinning */
} pool = {.busy = PTHREAD_MUTEX_INITIALIZER, .sleep = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static int thread_setting; /* 0 until initialised */
static pthread_once_t setting_once = PTHREAD_ONCE_INIT;

/* A forked child has only the thread that forked: forget the workers (they
 * do not exist there) and re-create the locks, which another thread may
 * have held at the fork. */
static void after_fork_child(void)
{
    pthread_mutex_init(&pool.busy, NULL);
    pthread_mutex_init(&pool.sleep, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pool.sleepers = 0;
    pool.nworkers = 0;
    pool.active = 0;
    pool.ticket &= ~1ul;
    /* The child's encoders may still release holds taken before the fork:
     * a count below zero counts as no hold. */
    pool.held = 0;
}

static void init_setting(void)
{
    const char *env = getenv("LRQ_NUM_THREADS");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int n = 2;

    /* Two threads by default, but never more than there are CPUs online:
     * a spinning worker sharing a CPU with the caller only slows it. */
    if (cpus >= 1 && cpus < n)
        n = (int)cpus;
    if (env != NULL && *env != '\0') {
        char *end;
        const long v = strtol(env, &end, 10);
        if (*end == '\0' && v >= 1 && v <= LRQ_THREADS_MAX)
            n = (int)v;
    }
    __atomic_store_n(&thread_setting, n, REL);
    (void)pthread_atfork(NULL, NULL, after_fork_child);
}

int lrq_threads_get(void)
{
    (void)pthread_once(&setting_once, init_setting);
    return __atomic_load_n(&thread_setting, ACQ);
}

int lrq_threads_set(const int n)
{
    if (n < 1 || n > LRQ_THREADS_MAX)
        return LRQ_ERR_ARGUMENT;
    (void)pthread_once(&setting_once, init_setting);
    __atomic_store_n(&thread_setting, n, REL);
    return LRQ_OK;
}

/* Claim and run parts of each phase, starting from this thread's share of
 * them so that, without contention, thread i runs the i-th run of parts. */
static void participate(const int me)
{
    const int nphases = pool.nphases, nparts = pool.nparts;
    const int home = me * nparts / pool.nthreads;
    int ph, k;
    long spins = 0;

    for (ph = 0; ph < nphases; ph++) {
        if (ph > 0)
            while (__atomic_load_n(&pool.done[ph - 1], ACQ) < nparts) {
                cpu_relax();
                if (++spins % 4096 == 0)
                    sched_yield(); /* the part's owner may have lost its CPU */
            }
        for (k = 0; k < nparts; k++) {
            const int part = (home + k) % nparts;
            int expected = PART_FREE;
            if (__atomic_compare_exchange_n(&pool.state[ph][part], &expected, PART_TAKEN, 0, SEQ,
                                            RLX)) {
                pool.fn(pool.ctx, ph, part, nparts);
                if (me != 0)
                    __atomic_fetch_add(&pool.helped, 1, RLX);
                __atomic_fetch_add(&pool.done[ph], 1, REL);
            }
        }
    }
}

static void *worker_main(void *arg)
{
    const int me = (int)(intptr_t)arg;
    unsigned long last = 0;

    for (;;) {
        unsigned long t = __atomic_load_n(&pool.ticket, ACQ);
        const long start = now_ns();
        long spins = 0;

        while (!(t & 1ul) || t == last) {
            cpu_relax();
            if (++spins % 256 == 0 && now_ns() - start > SPIN_NS &&
                __atomic_load_n(&pool.held, RLX) <= 0) {
                pthread_mutex_lock(&pool.sleep);
                pool.sleepers++;
                while (!((t = __atomic_load_n(&pool.ticket, ACQ)) & 1ul) || t == last)
                    pthread_cond_wait(&pool.wake, &pool.sleep);
                pool.sleepers--;
                pthread_mutex_unlock(&pool.sleep);
                break;
            }
            t = __atomic_load_n(&pool.ticket, ACQ);
        }
        last = t;
        /* Dekker-style handshake with the caller's finish: announce, then
         * re-check, both sequentially consistent.  Either the caller sees
         * this worker as active and waits for it, or the worker sees the job
         * closed and never touches it. */
        __atomic_fetch_add(&pool.active, 1, SEQ);
        if (__atomic_load_n(&pool.ticket, SEQ) == t && me < pool.nthreads)
            participate(me);
        __atomic_fetch_sub(&pool.active, 1, SEQ);
    }
    return NULL;
}

/* Workers block every signal: signals (Ctrl-C in Python) belong to the
 * threads that run user code. */
static void ensure_workers(const int want)
{
    sigset_t all, old;

    sigfillset(&all);
    /* Faults stay deliverable: blocked, a fault kills the process anyway,
     * and a worker reading a guarded file mapping (common/mapguard.c) that
     * was truncated must reach the SIGBUS handler. */
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (pool.nworkers < want) {
        pthread_t tid;
        pthread_attr_t attr;
        int rc;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&tid, &attr, worker_main, (void *)(intptr_t)(pool.nworkers + 1));
        pthread_attr_destroy(&attr);
        if (rc != 0)
            break; /* fewer workers: the caller claims their parts */
        pool.nworkers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void lrq_parallel_hold(const int delta)
{
    __atomic_add_fetch(&pool.held, delta, SEQ);
}

static void run_inline(const lrq_part_fn fn, void *ctx, const int nphases, const int nparts)
{
    int ph, part;
    for (ph = 0; ph < nphases; ph++)
        for (part = 0; part < nparts; part++)
            fn(ctx, ph, part, nparts);
}

void lrq_parallel_run(const lrq_part_fn fn, void *ctx, const int nphases, const int nparts,
                      const int nthreads)
{
    (void)lrq_parallel_run_stats(fn, ctx, nphases, nparts, nthreads, NULL);
}

int lrq_parallel_run_stats(const lrq_part_fn fn, void *ctx, const int nphases, const int nparts,
                           const int nthreads, long *const waited_ns)
{
    int ph, k, helped;
    unsigned long t;
    long spins = 0, start = 0;

    if (waited_ns != NULL)
        *waited_ns = 0;
    if (nthreads <= 1 || nparts <= 1 || pthread_mutex_trylock(&pool.busy) != 0) {
        run_inline(fn, ctx, nphases, nparts);
        return 0;
    }
    ensure_workers(nthreads - 1);
    pool.fn = fn;
    pool.ctx = ctx;
    pool.nphases = nphases;
    pool.nparts = nparts;
    pool.nthreads = nthreads < nparts ? nthreads : nparts;
    pool.helped = 0;
    for (ph = 0; ph < nphases; ph++) {
        for (k = 0; k < nparts; k++)
            pool.state[ph][k] = PART_FREE;
        pool.done[ph] = 0;
    }
    t = pool.ticket + 1; /* odd: running */
    __atomic_store_n(&pool.ticket, t, REL);
    pthread_mutex_lock(&pool.sleep);
    if (pool.sleepers > 0)
        pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.sleep);

    participate(0);
    if (waited_ns != NULL && __atomic_load_n(&pool.done[nphases - 1], ACQ) < nparts)
        start = now_ns();
    while (__atomic_load_n(&pool.done[nphases - 1], ACQ) < nparts) {
        cpu_relax();
        if (++spins % 4096 == 0)
            sched_yield();
    }
    if (start != 0)
        *waited_ns = now_ns() - start;
    __atomic_store_n(&pool.ticket, t + 1, SEQ); /* closed */
    while (__atomic_load_n(&pool.active, SEQ) != 0)
        cpu_relax();
    helped = __atomic_load_n(&pool.helped, RLX);
    pthread_mutex_unlock(&pool.busy);
    return helped;
}
