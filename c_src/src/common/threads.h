/* SPDX-License-Identifier: MIT */
/*
 * One parallel region per product: a job is a short sequence of phases, each
 * cut into the same number of parts (a static split), with a barrier between
 * phases.  Which thread runs a part never changes a result: parts write
 * disjoint outputs and compute them the same way whoever runs them.
 */
#ifndef LRQ_THREADS_H
#define LRQ_THREADS_H

#include <stddef.h>
#include <stdint.h>

/* Run part `part` (0 <= part < nparts) of phase `phase`. */
typedef void (*lrq_part_fn)(void *ctx, int phase, int part, int nparts);

/* Most phases a job may have. */
#define LRQ_MAX_PHASES 8

/* Run every part of phases 0 .. nphases-1, finishing all parts of a phase
 * before any part of the next starts, on up to nthreads threads (the caller
 * and nthreads - 1 workers).  nparts >= nthreads: cutting the work into a
 * few more parts than threads lets the others take over the parts of a
 * thread the OS has descheduled (the machine may be shared), at the price
 * of a compare-and-swap per part.  Both are normally derived from
 * lrq_threads_get(), read once by the caller so that the parts it sized
 * its scratch for are the parts that run.  Never fails: if workers cannot
 * be had (none created, or another caller is using them) the calling
 * thread runs every part itself. */
void lrq_parallel_run(lrq_part_fn fn, void *ctx, int nphases, int nparts, int nthreads);

/* Parts per thread used by the products: see lrq_parallel_run(). */
#define LRQ_PARTS_PER_THREAD 4

/* Most parts a job may have. */
#define LRQ_MAX_PARTS (LRQ_THREADS_MAX * LRQ_PARTS_PER_THREAD)

/* lrq_parallel_run() for callers that adapt to how the team fares (the
 * encoder, whose jobs are many and small): returns how many parts workers
 * ran (0 when the caller ran the job alone), and if waited_ns is not NULL
 * stores there how long the caller waited, after running out of parts to
 * claim, for parts a worker had claimed (0 if it did not wait): long waits
 * mean a worker lost its CPU in the middle of a part.  nparts <=
 * LRQ_MAX_PARTS, nphases <= LRQ_MAX_PHASES. */
int lrq_parallel_run_stats(lrq_part_fn fn, void *ctx, int nphases, int nparts, int nthreads,
                           long *waited_ns);

/* lrq_parallel_hold(+1) asks idle workers to keep spinning, rather than
 * sleep once SPIN_NS has passed without a job, until a matching
 * lrq_parallel_hold(-1): for a caller about to run many small jobs with
 * serial stretches longer than SPIN_NS between them (the encoder, whose
 * cuts end in a tail of small serial steps), so that each job does not
 * begin with a wake-up.  Holds from several callers add up. */
void lrq_parallel_hold(int delta);

/* [lo, hi) of part `part` when n items are cut into nparts near-equal runs. */
static inline void lrq_split(const size_t n, const int part, const int nparts, size_t *lo,
                             size_t *hi)
{
    /* 64-bit products: n * nparts must not wrap where size_t is 32 bits. */
    *lo = (size_t)((uint64_t)n * (uint64_t)part / (uint64_t)nparts);
    *hi = (size_t)((uint64_t)n * (uint64_t)(part + 1) / (uint64_t)nparts);
}

#endif /* LRQ_THREADS_H */
