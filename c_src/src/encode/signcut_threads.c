/* SPDX-License-Identifier: MIT */
/*
 * The signcut encoder's thread policy: which tasks run on the library's
 * team and which alone, and how a task is cut into parts (at multiples of
 * 64 elements that depend only on the task, never on the thread count, so
 * who runs a part never changes a result).
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <string.h>

#include "encode/signcut.h"

/* The copies image updates read: int16 with a power-of-two scale per row
 * (lrq_sc_shift), half the bytes of float32.  The flipped rows read per cut
 * are most of an encoder's memory traffic, and images only steer sign
 * decisions (they stay within ~1e-4 of exact), while the float32
 * remainder, updated exactly once per block, makes every stored c and
 * every reported norm exact and re-synchronizes the images at each block
 * update.  Returns the row's scale, 2^-shift. */
static float to_fixed(const enc_t *const e, const float *const row, const size_t len, int16_t *const out)
{
    const int shift = lrq_sc_shift(e->k->max_abs(row, len));
    e->k->to_fixed(row, len, shift, out);
    return lrq_sc_pow2(-shift);
}

/* Runs elements [lo, hi) of the current task. */
static void run_task(enc_t *const e, const task_kind task, const size_t lo, const size_t hi)
{
    const size_t m = (size_t)e->m, n = (size_t)e->n;
    size_t i;
    switch (task) {
    case T_UPDATE_HT:
        e->k->flip_update(e->ht + lo, hi - lo, e->rtb + lo, m, e->idx, e->fscale, e->task_count);
        if (e->open)
            e->k->block_correct(e->ht + lo, hi - lo, e->spat + lo, e->tab_d, e->groups_d);
        break;
    case T_UPDATE_HS:
        e->k->flip_update(e->hs + lo, hi - lo, e->rb + lo, n, e->idx, e->fscale, e->task_count);
        if (e->open)
            e->k->block_correct(e->hs + lo, hi - lo, e->tpat + lo, e->tab_d, e->groups_d);
        break;
    case T_BLOCK_R:
    case T_PEEK:
        /* Row i of R loses sum_k c_k s_k[i] t_k; the row's squared norm and
         * the images of the next block's starts come from the new row. */
        if (task == T_PEEK) {
            for (i = lo; i < hi; i++)
                e->row_sq[i] = e->k->block_row(e->r + i * n, n, e->spat[i], e->tpat, e->tab_c,
                                               e->groups_c, LRQ_SC_NORM);
            break;
        }
        /* In groups of four rows, which stay in cache from their update to
         * their fixed-point copy; the start images are computed for the four
         * rows at once.  ht needs no update: the next cut replaces it by a
         * start's image (restart() recomputes it when it needs it). */
        for (i = lo; i < hi; i += 4) {
            const size_t rows = hi - i < 4 ? hi - i : 4;
            size_t q;
            for (q = i; q < i + rows; q++)
                e->row_sq[q] = e->k->block_row(e->r + q * n, n, e->spat[q], e->tpat, e->tab_c,
                                               e->groups_c, LRQ_SC_WRITE | LRQ_SC_NORM);
            e->k->multi_signed_sum(e->r + i * n, n, (unsigned)rows, n, e->tstart, e->nw, BLOCK,
                                   e->g + i * BLOCK, BLOCK);
            for (q = i; q < i + rows; q++)
                e->rb_scale[q] = to_fixed(e, e->r + q * n, n, e->rb + q * n);
        }
        break;
    case T_START:
        /* The image of the open block's next start: its image under the
         * remainder of the last block update, corrected for the block's
         * cuts so far (weights in tab_d). */
        for (i = lo; i < hi; i++)
            e->ht[i] = e->g[i * BLOCK + e->open];
        if (e->open)
            e->k->block_correct(e->ht + lo, hi - lo, e->spat + lo, e->tab_d, e->groups_d);
        break;
    case T_BLOCK_RT:
        /* The same update of R^T with the roles of s and t exchanged: each
         * entry gets the same sum (the table lookup of s_i ^ t_j), so R^T
         * stays the exact transpose of R without a transposition pass. */
        for (i = lo; i < hi; i++) {
            float *const row = e->rt + i * m;
            (void)e->k->block_row(row, m, e->tpat[i], e->spat, e->tab_c, e->groups_c, LRQ_SC_WRITE);
            e->hs[i] = (float)(0.5 * e->k->signed_sum(row, e->s_cur, m));
            e->rtb_scale[i] = to_fixed(e, row, m, e->rtb + i * m);
        }
        break;
    }
}

/* Part `part` of phase `phase` of the current job. */
static void run_part(void *const ctx, const int phase, const int part, const int nparts)
{
    enc_t *const e = (enc_t *)ctx;
    const size_t lo = (size_t)part * e->chunk[phase];
    const size_t hi = lo + e->chunk[phase] < e->task_len[phase] ? lo + e->chunk[phase] : e->task_len[phase];
    (void)nparts;
    if (lo < hi)
        run_task(e, e->task[phase], lo, hi);
}

/* Parts of a task of len elements: enough to balance threads that run at
 * different speeds (or a worker the OS deschedules), but an image update
 * streams a slice of every flipped row per part, and long slices are what
 * the prefetchers need, so it gets few.  Part boundaries are multiples of
 * 64 elements and depend only on the task and len. */
static size_t chunk_of(const task_kind task, const size_t len)
{
    const size_t parts = task == T_UPDATE_HT || task == T_UPDATE_HS ? 4 : 16;
    return ((len + parts - 1) / parts + 63) & ~(size_t)63;
}

/* Lets the team's workers sleep again (see lrq_parallel_hold()): when the
 * encoder goes solo and whenever control returns to the caller. */
void lrq_sc_team_release(enc_t *const e)
{
    if (e->held) {
        lrq_parallel_hold(-1);
        e->held = 0;
    }
}

/* Runs task a over [0, len_a) and then, if nphases is 2, task b over
 * [0, len_b), on the team when the work (element operations) pays for it. */
void lrq_sc_parallel2(enc_t *const e, const int nphases, const task_kind a, const size_t len_a,
                      const task_kind b, const size_t len_b, const size_t work)
{
    int nparts = 1, ph;
    long waited;
    e->task[0] = a;
    e->task_len[0] = len_a;
    e->task[1] = b;
    e->task_len[1] = len_b;
    if (e->nthreads <= 1 || work < PARALLEL_MIN || (len_a <= 64 && (nphases == 1 || len_b <= 64)) ||
        e->solo) {
        if (e->solo && work >= PARALLEL_MIN)
            e->solo--;
        for (ph = 0; ph < nphases; ph++)
            run_task(e, e->task[ph], 0, e->task_len[ph]);
        return;
    }
    /* Every phase of a job has the same number of parts: the most any of
     * its tasks is cut into (a task with fewer leaves the rest empty). */
    for (ph = 0; ph < nphases; ph++) {
        const size_t len = e->task_len[ph];
        e->chunk[ph] = chunk_of(e->task[ph], len);
        if ((int)((len + e->chunk[ph] - 1) / e->chunk[ph]) > nparts)
            nparts = (int)((len + e->chunk[ph] - 1) / e->chunk[ph]);
    }
    if (!e->held) {
        lrq_parallel_hold(1);
        e->held = 1;
    }
    e->parts_helped += (size_t)lrq_parallel_run_stats(run_part, e, nphases, nparts, e->nthreads, &waited);
    e->parts_all += (size_t)(nphases * nparts);
    if (waited > WAIT_LIMIT_NS)
        e->solo = SOLO_AFTER_WAIT;
    if (++e->shared == REVIEW_JOBS) {
        if (4 * e->parts_helped < e->parts_all)
            e->solo = SOLO_AFTER_REVIEW;
        e->shared = 0;
        e->parts_all = e->parts_helped = 0;
    }
    if (e->solo)
        lrq_sc_team_release(e); /* let the workers sleep while the encoder runs alone */
}

void lrq_sc_parallel(enc_t *const e, const task_kind task, const size_t len, const size_t work)
{
    lrq_sc_parallel2(e, 1, task, len, task, 0, work);
}

/* The thread count of one run(): fixed for its duration. */
void lrq_sc_pick_threads(enc_t *const e)
{
    e->nthreads = e->threads ? (int)e->threads : lrq_threads_get();
}
