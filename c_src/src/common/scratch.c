/* SPDX-License-Identifier: MIT */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdlib.h>

#include "common/scratch.h"

/* One cached block of scratch memory, so that products in a loop do not
 * map and fault in fresh pages on every call (glibc serves large blocks
 * with mmap).  Its size follows the vectors, never the matrix; blocks above
 * SCRATCH_KEEP are returned to the system after the product. */
#define SCRATCH_KEEP ((size_t)64 << 20)

static struct {
    pthread_mutex_t lock;
    void *block;
    size_t size;
} scratch_cache = {PTHREAD_MUTEX_INITIALIZER, NULL, 0};

void *lrq_scratch_get(const size_t size, int *cached)
{
    void *p = NULL;

    *cached = 0;
    if (pthread_mutex_trylock(&scratch_cache.lock) == 0) {
        if (scratch_cache.size < size) {
            free(scratch_cache.block);
            scratch_cache.block = NULL;
            scratch_cache.size = 0;
            if (posix_memalign(&scratch_cache.block, 64, size) == 0)
                scratch_cache.size = size;
            else
                scratch_cache.block = NULL;
        }
        if (scratch_cache.block != NULL) {
            *cached = 1;
            return scratch_cache.block;
        }
        pthread_mutex_unlock(&scratch_cache.lock);
    }
    return posix_memalign(&p, 64, size) == 0 ? p : NULL;
}

void lrq_scratch_put(void *p, const int cached)
{
    if (!cached) {
        free(p);
        return;
    }
    if (scratch_cache.size > SCRATCH_KEEP) {
        free(scratch_cache.block);
        scratch_cache.block = NULL;
        scratch_cache.size = 0;
    }
    pthread_mutex_unlock(&scratch_cache.lock);
}
