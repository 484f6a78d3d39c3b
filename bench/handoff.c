/* SPDX-License-Identifier: MIT */
/*
 * What it costs to get a second thread to work on a product, the measurement
 * behind the design of c_src/src/common/threads.c.  From the repository root,
 * against the core built from c_src/Makefile's source list:
 *
 *   make -C c_src lib && cc -O2 -std=c99 -pthread -Ic_src/include -Ic_src/src \
 *      bench/handoff.c c_src/build/liblrq.a -lm -o /tmp/handoff && /tmp/handoff
 *
 * Prints the median round trip, in microseconds, of handing an empty task to
 * another thread and waiting for it to finish:
 *   - pthread_create + pthread_join per task;
 *   - a worker sleeping on a condition variable, woken per task;
 *   - lrq_parallel_run() with its spinning worker (tasks back to back);
 *   - lrq_parallel_run() after a pause long enough for its worker to sleep,
 *     where the caller runs the worker's part itself rather than wait.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "lrq.h"
#include "common/threads.h"

#define ROUNDS 2001

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

static int cmp(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[n / 2];
}

static void *empty(void *arg)
{
    return arg;
}

static struct {
    pthread_mutex_t lock;
    pthread_cond_t go, done;
    int job, finished;
} cv = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static void *sleeper(void *arg)
{
    int seen = 0;
    (void)arg;
    pthread_mutex_lock(&cv.lock);
    for (;;) {
        while (cv.job == seen)
            pthread_cond_wait(&cv.go, &cv.lock);
        seen = cv.job;
        if (seen < 0)
            break;
        cv.finished = seen;
        pthread_cond_signal(&cv.done);
    }
    pthread_mutex_unlock(&cv.lock);
    return NULL;
}

static void part(void *ctx, int phase, int p, int n)
{
    (void)ctx, (void)phase, (void)p, (void)n;
}

int main(void)
{
    static double t[ROUNDS];
    pthread_t th;
    int i;

    for (i = 0; i < ROUNDS; i++) {
        const double s = now_us();
        pthread_create(&th, NULL, empty, NULL);
        pthread_join(th, NULL);
        t[i] = now_us() - s;
    }
    printf("pthread_create + join per task:           %6.1f us\n", median(t, ROUNDS));

    pthread_create(&th, NULL, sleeper, NULL);
    for (i = 0; i < ROUNDS; i++) {
        const double s = now_us();
        pthread_mutex_lock(&cv.lock);
        cv.job = i + 1;
        pthread_cond_signal(&cv.go);
        while (cv.finished != i + 1)
            pthread_cond_wait(&cv.done, &cv.lock);
        pthread_mutex_unlock(&cv.lock);
        t[i] = now_us() - s;
    }
    pthread_mutex_lock(&cv.lock);
    cv.job = -1;
    pthread_cond_signal(&cv.go);
    pthread_mutex_unlock(&cv.lock);
    pthread_join(th, NULL);
    printf("sleeping worker woken per task:           %6.1f us\n", median(t, ROUNDS));

    lrq_threads_set(2);
    for (i = 0; i < ROUNDS; i++) {
        const double s = now_us();
        lrq_parallel_run(part, NULL, 1, 2, 2);
        t[i] = now_us() - s;
    }
    printf("lrq_parallel_run, worker spinning:        %6.1f us\n", median(t, ROUNDS));

    for (i = 0; i < 201; i++) {
        struct timespec pause = {0, 1000000}; /* 1 ms: past the worker's spin */
        double s;
        nanosleep(&pause, NULL);
        s = now_us();
        lrq_parallel_run(part, NULL, 1, 2, 2);
        t[i] = now_us() - s;
    }
    printf("lrq_parallel_run, worker asleep:          %6.1f us\n", median(t, 201));
    return 0;
}
