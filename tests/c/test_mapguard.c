/* SPDX-License-Identifier: MIT */
/*
 * The SIGBUS guard of file mappings (lrq_mapping_guard): a read past the end
 * of a truncated, guarded mapping -- on a worker thread of the team -- reads
 * zeros and marks the mapping damaged instead of ending the process; a
 * SIGBUS outside every guarded mapping reaches the handler installed before.
 */
#define _DEFAULT_SOURCE 1

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "common/threads.h"
#include "lrq.h"

#define FILE_PAGES 16

static volatile sig_atomic_t earlier_handler_calls = 0;

static void earlier_handler(int sig, siginfo_t *info, void *context)
{
    (void)sig;
    (void)info;
    (void)context;
    earlier_handler_calls++;
}

typedef struct {
    const volatile unsigned char *map;
    size_t page;
    pthread_t caller;
    int worker_read; /* atomic */
    unsigned sum;    /* atomic */
} job;

/* Only workers read the mapping: the first fault is then on a worker. */
static void read_on_workers(void *ctx, int phase, int part, int nparts)
{
    job *const j = ctx;
    size_t p;
    (void)phase;
    if (pthread_equal(pthread_self(), j->caller))
        return;
    for (p = (size_t)part; p < FILE_PAGES; p += (size_t)nparts)
        __atomic_add_fetch(&j->sum, j->map[p * j->page], __ATOMIC_RELAXED);
    __atomic_store_n(&j->worker_read, 1, __ATOMIC_RELEASE);
}

int main(void)
{
    char path[] = "/tmp/lrq-mapguard-XXXXXX";
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const int fd = mkstemp(path);
    unsigned char *bytes = malloc(FILE_PAGES * page);
    struct sigaction earlier;
    job j;
    int slot = -1, rounds;

    (void)rng_next; /* from check.h, not needed here */
    CHECK(fd >= 0 && bytes != NULL);
    memset(bytes, 1, FILE_PAGES * page);
    CHECK(write(fd, bytes, FILE_PAGES * page) == (ssize_t)(FILE_PAGES * page));
    free(bytes);

    memset(&earlier, 0, sizeof earlier);
    earlier.sa_sigaction = earlier_handler;
    earlier.sa_flags = SA_SIGINFO;
    sigemptyset(&earlier.sa_mask);
    CHECK(sigaction(SIGBUS, &earlier, NULL) == 0);

    j.map = mmap(NULL, FILE_PAGES * page, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(j.map != MAP_FAILED);
    CHECK(lrq_mapping_guard(NULL, page, &slot) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_mapping_guard((const void *)j.map, FILE_PAGES * page, &slot) == LRQ_OK);
    CHECK(lrq_mapping_damaged(slot) == 0);
    j.page = page;
    j.caller = pthread_self();
    j.sum = 0;
    j.worker_read = 0;

    CHECK(ftruncate(fd, (off_t)page) == 0); /* one page left */
    lrq_parallel_hold(1);
    for (rounds = 0; rounds < 100000 && !__atomic_load_n(&j.worker_read, __ATOMIC_ACQUIRE); rounds++)
        lrq_parallel_run(read_on_workers, &j, 1, 2 * LRQ_PARTS_PER_THREAD, 2);
    lrq_parallel_hold(-1);
    CHECK(j.worker_read == 1);
    CHECK(lrq_mapping_damaged(slot) == 1);
    CHECK(j.map[0] == 1);               /* the page that is still in the file */
    CHECK(j.map[FILE_PAGES * page - 1] == 0); /* a lost one: zeros */

    /* A SIGBUS that is not a fault in a guarded mapping goes to the handler
     * that was there before. */
    CHECK(raise(SIGBUS) == 0);
    CHECK(earlier_handler_calls == 1);

    lrq_mapping_unguard(slot);
    CHECK(munmap((void *)j.map, FILE_PAGES * page) == 0);
    close(fd);
    unlink(path);
    if (failures)
        fprintf(stderr, "test_mapguard: %d failures\n", failures);
    return failures != 0;
}
