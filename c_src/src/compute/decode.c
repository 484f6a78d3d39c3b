/* SPDX-License-Identifier: MIT */
/*
 * Decoding a tile to a dense float32 matrix.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/dispatch.h"
#include "common/internal.h"
#include "common/scratch.h"
#include "common/threads.h"
#include "compute/tile.h"
#include "lrq.h"

/*
 * Column j of A is computed as the product A e_j, bit for bit: for x = e_j
 * the first factor's kernel output is exactly its column j (every other
 * table entry is a signed zero, every flush adds one exact product), so
 * that column is read straight from the bits here, with the same zero-sign
 * rules, and only the second factor runs a kernel.  The forward kernels are
 * the fastest ones (no bit transposes), and decode inherits the products'
 * bit-identity across paths and thread counts.
 */
typedef struct {
    const lrq_tile *t;
    const lrq_kernels *k;
    float *out;
    size_t ld;
    uint8_t *scratch;
    size_t part_bytes;
} decoding;

#define DECODE_COLUMNS 16

/* v[jj * stride + k] = mid(u_k), u = A1 e_j, for columns j0 + jj < j0 + nj
 * (j0 a multiple of 16) and k < inner; zero up to the padded length. */
static void column_inputs(const lrq_tile *t, const size_t j0, const size_t nj, float *v,
                          const size_t stride)
{
    const lrq_kmat *a = &t->a;
    const int bits = a->planes > 0 ? a->planes : 0;
    const size_t wc = a->planes > 0 ? 16 : 4, g = a->scales ? a->gc * wc : 1;
    size_t k, jj, p;

    for (k = 0; k < t->inner; k++) {
        const size_t tile = k / 16, h = min_z(16, a->rows - 16 * tile);
        const uint8_t *sc = a->scales ? a->scales + lrq_scale_offset(a, tile, 0, h) + 2 * (k % 16) : NULL;
        unsigned w[4] = {0, 0, 0, 0};
        if (a->planes > 0)
            for (p = 0; p < (size_t)bits; p++)
                w[p] = load_u16(a->data + p * a->plane_bytes + lrq_word_offset(a, k, j0 / 16, 2));
        for (jj = 0; jj < nj; jj++) {
            const size_t j = j0 + jj;
            float u;
            if (a->planes > 0) {
                unsigned q = 0;
                for (p = 0; p < (size_t)bits; p++)
                    q |= (w[p] >> jj & 1u) << p;
                if (t->scheme == SCHEME_SIGNCUT) {
                    v[jj * stride + k] = mid_value(t, 0, k, q ? -1.0f : 1.0f);
                    continue;
                }
                /* Horner over +-1 planes: sum_p 2^p (1 - 2 q_p) = 2^b - 1 - 2q. */
                u = (float)((int)(1u << bits) - 1 - 2 * (int)q);
            } else {
                u = (float)a->data[lrq_word_offset(a, k, j / 4, 4) + j % 4] - a->half;
            }
            /* The kernel's flush: y = +0 + scale * acc. */
            u = 0.0f + lrq_half_to_float((uint16_t)load_u16(sc + 2 * (j / g) * h)) * u;
            v[jj * stride + k] = mid_value(t, 0, k, u);
        }
    }
    for (jj = 0; jj < nj; jj++)
        for (k = t->inner; k < stride; k++)
            v[jj * stride + k] = 0.0f;
}

/* A quant tile, row tile by row tile, by the kernels' decode_rows: the
 * operations (and so the bits, signed zeros included) of the product
 * A e_j that the column path below follows. */
static void decode_quant_part(void *ctx, const int phase, const int part, const int nparts)
{
    decoding *d = ctx;
    const lrq_tile *t = d->t;
    size_t lo, hi, tile;

    (void)phase;
    lrq_split(lrq_kmat_tiles(&t->a), part, nparts, &lo, &hi);
    for (tile = lo; tile < hi; tile++)
        d->k->decode_rows(&t->a, tile, t->wa, t->wb, d->out + 16 * tile * d->ld, d->ld, t->n);
}

static void decode_part(void *ctx, const int phase, const int part, const int nparts)
{
    decoding *d = ctx;
    const lrq_tile *t = d->t;
    const size_t stride = 16 * k16(t->inner), tiles_b = lrq_kmat_tiles(&t->b);
    float *v = (float *)(void *)(d->scratch + (size_t)part * d->part_bytes);
    float *lanes = v + DECODE_COLUMNS * stride, *tab = lanes + DECODE_COLUMNS * stride;
    float *cols = tab + DECODE_COLUMNS * 4 * stride;
    const size_t rows = 16 * tiles_b;
    size_t lo, hi, blk, jj, i, k;

    (void)phase;
    lrq_split(k16(t->n), part, nparts, &lo, &hi);
    for (blk = lo; blk < hi; blk++) {
        const size_t j0 = 16 * blk, nj = min_z(DECODE_COLUMNS, t->n - j0);
        column_inputs(t, j0, nj, v, stride);
        if (t->b.planes > 0) {
            /* One wide batch (common/kernels.h): the 16 columns side by
             * side, the bits of their single products. */
            for (k = 0; k < stride; k++)
                for (jj = 0; jj < DECODE_COLUMNS; jj++)
                    lanes[16 * k + jj] = jj < nj ? v[jj * stride + k] : 0.0f;
            d->k->tables_wide(lanes, 0, stride / 16, tab);
            d->k->fwd_wide(&t->b, 0, tiles_b, tab, cols);
            for (i = 0; i < t->m; i++)
                for (jj = 0; jj < nj; jj++)
                    d->out[i * d->ld + j0 + jj] = t->wb * cols[16 * i + jj];
            continue;
        }
        for (jj = 0; jj < nj; jj += LRQ_FWD_BATCH) {
            const size_t nb = min_z(LRQ_FWD_BATCH, nj - jj);
            size_t b;
            for (b = 0; b < nb; b++)
                d->k->fwd_byte(&t->b, 0, tiles_b, v + (jj + b) * stride, cols + (jj + b) * rows);
        }
        /* Written a row segment (one cache line) at a time: a column at a
         * time would touch m lines per column, long evicted by the kernel's
         * stream over the second factor. */
        for (i = 0; i < t->m; i++)
            for (jj = 0; jj < nj; jj++)
                d->out[i * d->ld + j0 + jj] = t->wb * cols[jj * rows + i];
    }
}

int lrq_tile_decode(const lrq_tile *t, float *out, const uint64_t ld)
{
    return lrq_tile_decode_threads(t, out, ld, 0);
}

int lrq_tile_decode_threads(const lrq_tile *t, float *out, const uint64_t ld, int nthreads)
{
    decoding d;
    size_t r;
    int cached, nparts;

    if (t == NULL || ld < t->n || (out == NULL && t->m != 0 && t->n != 0) || nthreads < 0 ||
        nthreads > LRQ_THREADS_MAX)
        return LRQ_ERR_ARGUMENT;
    if (nthreads == 0)
        nthreads = lrq_threads_get();
    nparts = nthreads * LRQ_PARTS_PER_THREAD;
    if (t->m == 0 || t->n == 0)
        return LRQ_OK;
    if (t->inner == 0) {
        for (r = 0; r < t->m; r++)
            memset(out + r * ld, 0, t->n * sizeof(float));
        return LRQ_OK;
    }
    d.t = t;
    d.k = lrq_dispatch()->products;
    d.out = out;
    d.ld = (size_t)ld;
    if (t->b.identity) { /* quant: no kernel, no scratch */
        lrq_parallel_run(decode_quant_part, &d, 1, nparts, nthreads);
        return LRQ_OK;
    }
    /* Per part: 16 inner vectors, twice (by column, and side by side), their
     * wide tables, 16 output columns. */
    d.part_bytes = ((2 * DECODE_COLUMNS + DECODE_COLUMNS * 4) * 16 * k16(t->inner) +
                    DECODE_COLUMNS * 16 * lrq_kmat_tiles(&t->b)) *
                   sizeof(float);
    d.part_bytes = (d.part_bytes + 63) & ~(size_t)63;
    d.scratch = lrq_scratch_get(d.part_bytes * (size_t)nparts, &cached);
    if (d.scratch == NULL)
        return LRQ_ERR_MEMORY;
    lrq_parallel_run(decode_part, &d, 1, nparts, nthreads);
    lrq_scratch_put(d.scratch, cached);
    return LRQ_OK;
}
