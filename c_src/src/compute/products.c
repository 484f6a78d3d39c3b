/* SPDX-License-Identifier: MIT */
/*
 * Products of tiles with vectors, y = A x and y = A^T x, on the kernels of
 * the active path (compute/tile.h says how the schemes share one driver).
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

#define SMALL_WORK (UINT64_C(32) << 10)

/* Vectors per parallel region of the float products: a 64-byte line of a
 * row-major operand (NumPy's (n, k) arrays) holds 16 consecutive vectors'
 * elements, so gathering the inputs and scattering the outputs 16 at a time
 * reads and writes each line once instead of once per kernel batch of 4.
 * The kernels then take the group in batches (common/kernels.h) over the
 * same part of the tile, which stays in cache between them. */
#define GROUP_VECTORS 16

typedef struct {
    const lrq_tile *t;
    const lrq_kernels *k;
    int transpose, wide, int_a, int_b;
    const float *x; /* the current group's first vector */
    int64_t xe, xv; /* element and vector strides of x */
    float *y;
    int64_t ye, yv;
    size_t nv; /* vectors in the group: 1 on the int paths, else up to GROUP_VECTORS */
    int lane_batch; /* the group goes through the wide kernels, one vector per lane */
    float *xin, *tab1, *u, *tab2, *yout, *step1, *step2;
    uint8_t *itab1, *itab2;
} product;

static float mid(const product *p, const size_t i, const float u)
{
    return mid_value(p->t, p->transpose, i, u);
}

/* out = v for the elements of 16-element units [lo, hi) of nv vectors, at
 * vstride / ostride apart: the identity factor of a quant tile. */
static void copy_units(const size_t nv, const size_t lo, const size_t hi, const float *v,
                       const size_t vstride, float *out, const size_t ostride)
{
    size_t j;
    for (j = 0; j < nv; j++)
        memcpy(out + j * ostride + 16 * lo, v + j * vstride + 16 * lo, 16 * (hi - lo) * sizeof *out);
}

/* out = F v for the rows of tiles [lo, hi) of factor F: byte codes read v
 * itself, sign planes its float or int tables. */
static void apply_factor(const product *p, const lrq_kmat *f, const size_t lo, const size_t hi,
                         const float *v, const float *tab, const int use_int, const uint8_t *itab,
                         const float *step, float *out)
{
    const size_t k16s = f->planes > 0 ? f->kc : f->kc / 4, rows = 16 * lrq_kmat_tiles(f);
    size_t j;

    if (f->identity)
        copy_units(p->nv, lo, hi, v, 16 * k16s, out, rows);
    else if (f->planes == 0)
        for (j = 0; j < p->nv; j++)
            p->k->fwd_byte(f, lo, hi, v + j * 16 * k16s, out + j * rows);
    else if (use_int)
        p->k->fwd_sign_int(f, lo, hi, p->wide, itab, step, out);
    else
        for (j = 0; j < p->nv; j += LRQ_FWD_BATCH)
            p->k->fwd_sign(f, lo, hi, min_z(LRQ_FWD_BATCH, p->nv - j), tab + j * 64 * k16s, 64 * k16s,
                           out + j * rows, rows);
}

static void forward_part(void *ctx, int phase, const int part, const int nparts)
{
    product *p = ctx;
    const lrq_tile *t = p->t;
    const size_t ka = t->a.planes > 0 ? t->a.kc : t->a.kc / 4; /* K16 of n */
    const size_t tiles_a = lrq_kmat_tiles(&t->a), tiles_b = lrq_kmat_tiles(&t->b);
    /* Vector j of a batch: its slice of every buffer. */
    const size_t sx = 16 * ka, su = 16 * tiles_a, sy = 16 * tiles_b;
    size_t lo, hi, i, j;

    if (phase >= 2 && !p->int_b)
        phase++; /* phase 2 exists only for int tables: no barrier for nothing */
    switch (phase) {
    case 0: { /* gather x, then its tables (split by int-table blocks) */
        const size_t blocks = ka / LRQ_QBLOCK_CHUNKS + (ka % LRQ_QBLOCK_CHUNKS != 0);
        size_t c0, c1;
        lrq_split(blocks, part, nparts, &lo, &hi);
        c0 = lo * LRQ_QBLOCK_CHUNKS;
        c1 = min_z(ka, hi * LRQ_QBLOCK_CHUNKS);
        for (j = 0; j < p->nv; j++) {
            const float *x = p->x + (int64_t)j * p->xv;
            float *xin = p->xin + j * sx;
            for (i = 16 * c0; i < 16 * c1; i++)
                xin[i] = i < t->n ? x[(int64_t)i * p->xe] : 0.0f;
            if (c1 <= c0 || t->a.planes == 0)
                continue;
            if (p->int_a)
                p->k->tables_int(xin, c0, c1, p->wide, p->itab1, p->step1);
            else
                p->k->tables_f32(xin + 16 * c0, 4 * (c1 - c0), p->tab1 + 4 * j * sx + 64 * c0);
        }
        break;
    }
    case 1: /* u = A x, v = mid(u) in place, then v's float tables */
        lrq_split(tiles_a, part, nparts, &lo, &hi);
        if (hi <= lo)
            break;
        apply_factor(p, &t->a, lo, hi, p->xin, p->tab1, p->int_a, p->itab1, p->step1, p->u);
        for (j = 0; j < p->nv; j++) {
            float *u = p->u + j * su;
            for (i = 16 * lo; i < 16 * hi; i++)
                u[i] = i < t->inner ? mid(p, i, u[i]) : 0.0f;
            if (t->b.planes > 0 && !t->b.identity && !p->int_b)
                p->k->tables_f32(u + 16 * lo, 4 * (hi - lo), p->tab2 + 4 * j * su + 64 * lo);
        }
        break;
    case 2: /* v's int tables need whole blocks, hence a phase of their own */
        if (p->int_b) {
            const size_t blocks = tiles_a / LRQ_QBLOCK_CHUNKS + (tiles_a % LRQ_QBLOCK_CHUNKS != 0);
            lrq_split(blocks, part, nparts, &lo, &hi);
            if (hi > lo)
                p->k->tables_int(p->u, lo * LRQ_QBLOCK_CHUNKS, min_z(tiles_a, hi * LRQ_QBLOCK_CHUNKS),
                                 p->wide, p->itab2, p->step2);
        }
        break;
    default: /* y = B v */
        lrq_split(tiles_b, part, nparts, &lo, &hi);
        if (hi <= lo)
            break;
        apply_factor(p, &t->b, lo, hi, p->u, p->tab2, p->int_b, p->itab2, p->step2, p->yout);
        for (j = 0; j < p->nv; j++)
            for (i = 16 * lo; i < min_z(t->m, 16 * hi); i++)
                p->y[(int64_t)j * p->yv + (int64_t)i * p->ye] = t->wb * p->yout[j * sy + i];
        break;
    }
}

/* y = A x for a wide batch (common/kernels.h): the phases of forward_part,
 * every buffer holding the group's vectors side by side (element i of
 * vector j at 16 i + j; lanes past nv are zeros). */
static void forward_lanes_part(void *ctx, const int phase, const int part, const int nparts)
{
    product *p = ctx;
    const lrq_tile *t = p->t;
    const size_t ka = t->a.kc;
    const size_t tiles_a = lrq_kmat_tiles(&t->a), tiles_b = lrq_kmat_tiles(&t->b);
    size_t lo, hi, i, j;

    switch (phase) {
    case 0: /* gather x, then its tables */
        lrq_split(ka, part, nparts, &lo, &hi);
        for (i = 16 * lo; i < 16 * hi; i++) {
            float *xin = p->xin + 16 * i;
            for (j = 0; j < LRQ_WIDE_VECTORS; j++)
                xin[j] = i < t->n && j < p->nv ? p->x[(int64_t)j * p->xv + (int64_t)i * p->xe] : 0.0f;
        }
        if (hi > lo)
            p->k->tables_wide(p->xin, lo, hi, p->tab1);
        break;
    case 1: /* u = A x, v = mid(u) in place, then v's tables */
        lrq_split(tiles_a, part, nparts, &lo, &hi);
        if (hi <= lo)
            break;
        p->k->fwd_wide(&t->a, lo, hi, p->tab1, p->u);
        for (i = 16 * lo; i < 16 * hi; i++)
            for (j = 0; j < LRQ_WIDE_VECTORS; j++)
                p->u[16 * i + j] = i < t->inner ? mid(p, i, p->u[16 * i + j]) : 0.0f;
        if (!t->b.identity)
            p->k->tables_wide(p->u, lo, hi, p->tab2);
        break;
    default: /* y = B v */
        lrq_split(tiles_b, part, nparts, &lo, &hi);
        if (hi <= lo)
            break;
        if (t->b.identity) /* 16 lanes of 16 elements per unit */
            copy_units(1, 16 * lo, 16 * hi, p->u, 0, p->yout, 0);
        else
            p->k->fwd_wide(&t->b, lo, hi, p->tab2, p->yout);
        for (i = 16 * lo; i < min_z(t->m, 16 * hi); i++)
            for (j = 0; j < p->nv; j++)
                p->y[(int64_t)j * p->yv + (int64_t)i * p->ye] = t->wb * p->yout[16 * i + j];
        break;
    }
}

/* The transposed sign kernel for a group's nv vectors, in kernel batches;
 * tab (the inputs' tables) may be NULL, for factors with scales. */
static void transposed_factor(const product *p, const lrq_kmat *f, const size_t lo, const size_t hi,
                              const float *z, const float *tab, const size_t zstride, float *out,
                              const size_t ostride)
{
    size_t j;
    for (j = 0; j < p->nv; j += LRQ_TR_BATCH)
        p->k->tr_sign(f, lo, hi, min_z(LRQ_TR_BATCH, p->nv - j), z + j * zstride,
                      tab != NULL ? tab + 4 * j * zstride : NULL, zstride, out + j * ostride, ostride);
}

/* y = A^T x has the same phases as y = A x, each for the group's nv vectors
 * (vector j's slice of every buffer at j times its length). */
static void transposed_part(void *ctx, const int phase, const int part, const int nparts)
{
    product *p = ctx;
    const lrq_tile *t = p->t;
    const size_t tiles_b = lrq_kmat_tiles(&t->b);
    const size_t units_inner = k16(t->inner), units_n = k16(t->n);
    const size_t sz = 16 * tiles_b, su = 16 * units_inner, sy = 16 * units_n;
    size_t lo, hi, i, j;

    switch (phase) {
    case 0: /* z = x, padded to whole row tiles of B */
        lrq_split(tiles_b, part, nparts, &lo, &hi);
        for (j = 0; j < p->nv; j++) {
            const float *x = p->x + (int64_t)j * p->xv;
            for (i = 16 * lo; i < 16 * hi; i++)
                p->xin[j * sz + i] = i < t->m ? x[(int64_t)i * p->xe] : 0.0f;
            if (p->tab1 != NULL && hi > lo)
                p->k->tables_f32(p->xin + j * sz + 16 * lo, 4 * (hi - lo), p->tab1 + 4 * j * sz + 64 * lo);
        }
        break;
    case 1: /* u = B^T z, v = mid(u) */
        lrq_split(units_inner, part, nparts, &lo, &hi);
        if (hi <= lo)
            break;
        if (t->b.identity)
            copy_units(p->nv, lo, hi, p->xin, sz, p->u, su);
        else if (t->b.planes > 0)
            transposed_factor(p, &t->b, lo, hi, p->xin, p->tab1, sz, p->u, su);
        else
            for (j = 0; j < p->nv; j++)
                p->k->tr_byte(&t->b, 4 * lo, 4 * hi, p->xin + j * sz, p->u + j * su);
        for (j = 0; j < p->nv; j++) {
            float *u = p->u + j * su;
            for (i = 16 * lo; i < 16 * hi; i++)
                u[i] = i < t->inner ? mid(p, i, u[i]) : 0.0f;
            if (p->tab2 != NULL)
                p->k->tables_f32(u + 16 * lo, 4 * (hi - lo), p->tab2 + 4 * j * su + 64 * lo);
        }
        break;
    default: /* y = A^T v */
        lrq_split(units_n, part, nparts, &lo, &hi);
        if (hi <= lo)
            break;
        if (t->a.planes > 0)
            transposed_factor(p, &t->a, lo, hi, p->u, p->tab2, su, p->yout, sy);
        else
            for (j = 0; j < p->nv; j++)
                p->k->tr_byte(&t->a, 4 * lo, 4 * hi, p->u + j * su, p->yout + j * sy);
        for (j = 0; j < p->nv; j++)
            for (i = 16 * lo; i < min_z(t->n, 16 * hi); i++)
                p->y[(int64_t)j * p->yv + (int64_t)i * p->ye] = t->wa * p->yout[j * sy + i];
        break;
    }
}

/* y = A^T x for a wide batch: transposed_part's phases, the group's vectors
 * side by side as in forward_lanes_part.  tab1 / tab2 are NULL for a factor
 * with scales, whose kernel builds its tables from z itself. */
static void transposed_lanes_part(void *ctx, const int phase, const int part, const int nparts)
{
    product *p = ctx;
    const lrq_tile *t = p->t;
    const size_t tiles_b = lrq_kmat_tiles(&t->b);
    const size_t units_inner = k16(t->inner), units_n = k16(t->n);
    size_t lo, hi, i, j;

    switch (phase) {
    case 0: /* z = x, padded to whole row tiles of B */
        lrq_split(tiles_b, part, nparts, &lo, &hi);
        for (i = 16 * lo; i < 16 * hi; i++)
            for (j = 0; j < LRQ_WIDE_VECTORS; j++)
                p->xin[16 * i + j] = i < t->m && j < p->nv ? p->x[(int64_t)j * p->xv + (int64_t)i * p->xe] : 0.0f;
        if (p->tab1 != NULL && hi > lo)
            p->k->tables_wide(p->xin, lo, hi, p->tab1);
        break;
    case 1: /* u = B^T z, v = mid(u) */
        lrq_split(units_inner, part, nparts, &lo, &hi);
        if (hi <= lo)
            break;
        if (t->b.identity)
            copy_units(1, 16 * lo, 16 * hi, p->xin, 0, p->u, 0);
        else
            p->k->tr_wide(&t->b, lo, hi, p->xin, p->tab1, p->u);
        for (i = 16 * lo; i < 16 * hi; i++)
            for (j = 0; j < LRQ_WIDE_VECTORS; j++)
                p->u[16 * i + j] = i < t->inner ? mid(p, i, p->u[16 * i + j]) : 0.0f;
        if (p->tab2 != NULL)
            p->k->tables_wide(p->u, lo, hi, p->tab2);
        break;
    default: /* y = A^T v */
        lrq_split(units_n, part, nparts, &lo, &hi);
        if (hi <= lo)
            break;
        p->k->tr_wide(&t->a, lo, hi, p->u, p->tab2, p->yout);
        for (i = 16 * lo; i < min_z(t->n, 16 * hi); i++)
            for (j = 0; j < p->nv; j++)
                p->y[(int64_t)j * p->yv + (int64_t)i * p->ye] = t->wa * p->yout[16 * i + j];
        break;
    }
}

static void zero_vector(float *y, const size_t len, const int64_t stride)
{
    size_t i;
    for (i = 0; i < len; i++)
        y[(int64_t)i * stride] = 0.0f;
}

int lrq_tile_product(const lrq_tile *t, const unsigned flags, const uint64_t nvec, const float *x,
                     const int64_t x_vstride, const int64_t x_estride, float *y,
                     const int64_t y_vstride, const int64_t y_estride)
{
    const unsigned known = LRQ_PRODUCT_TRANSPOSE | LRQ_PRODUCT_INT16 | LRQ_PRODUCT_INT8;
    const int transpose = (flags & LRQ_PRODUCT_TRANSPOSE) != 0;
    const int fast = (flags & (LRQ_PRODUCT_INT16 | LRQ_PRODUCT_INT8)) != 0;
    product p;
    lrq_carver cv = {NULL, 0, 0};
    size_t in_len, out_len, ka, ti, batch;
    uint64_t j;
    void *block = NULL;
    int pass, cached = 0;
    int nthreads = lrq_threads_get();

    if (t == NULL || (flags & ~known) != 0 ||
        (flags & (LRQ_PRODUCT_INT16 | LRQ_PRODUCT_INT8)) == (LRQ_PRODUCT_INT16 | LRQ_PRODUCT_INT8) ||
        (transpose && fast))
        return LRQ_ERR_ARGUMENT;
    in_len = transpose ? t->m : t->n;
    out_len = transpose ? t->n : t->m;
    if (nvec == 0 || out_len == 0)
        return LRQ_OK;
    if ((x == NULL && in_len != 0) || y == NULL)
        return LRQ_ERR_ARGUMENT;
    if (t->inner == 0) {
        for (j = 0; j < nvec; j++)
            zero_vector(y + (int64_t)j * y_vstride, out_len, y_estride);
        return LRQ_OK;
    }
    /* Below SMALL_WORK bytes of sections a second thread costs more (about
     * 1.5 us per product to hand over and join) than it saves; results do
     * not depend on the split, so this changes time only. */
    if (t->bytes < SMALL_WORK / nvec)
        nthreads = 1;
    memset(&p, 0, sizeof p);
    p.t = t;
    p.k = lrq_dispatch()->products;
    p.transpose = transpose;
    p.wide = (flags & LRQ_PRODUCT_INT16) != 0;
    p.int_a = fast && t->a.planes > 0;
    p.int_b = fast && t->b.planes > 0 && !t->b.identity;
    ka = k16(t->n);
    ti = k16(t->inner);
    /* Wide batches need sign planes on both sides (byte codes have no
     * tables); they give the same bits as any other batch. */
    p.lane_batch = !fast && nvec >= LRQ_WIDE_MIN && t->a.planes > 0 && t->b.planes > 0;
    batch = fast ? 1 : p.lane_batch ? LRQ_WIDE_VECTORS : GROUP_VECTORS;
    if (batch > nvec)
        batch = (size_t)nvec;
    /* Two passes over the same carving: measure, then place. */
    for (pass = 0; pass < 2; pass++) {
        cv.used = 0;
        if (transpose && p.lane_batch) {
            p.xin = lrq_carve(&cv, LRQ_WIDE_VECTORS * 16 * lrq_kmat_tiles(&t->b), sizeof(float));
            const int tables_b = t->b.scales == NULL && !t->b.identity;
            p.tab1 = lrq_carve(&cv, tables_b ? LRQ_WIDE_VECTORS * 64 * lrq_kmat_tiles(&t->b) : 0,
                               sizeof(float));
            p.u = lrq_carve(&cv, LRQ_WIDE_VECTORS * 16 * ti, sizeof(float));
            p.tab2 = lrq_carve(&cv, t->a.scales == NULL ? LRQ_WIDE_VECTORS * 64 * ti : 0, sizeof(float));
            p.yout = lrq_carve(&cv, LRQ_WIDE_VECTORS * 16 * ka, sizeof(float));
            if (!tables_b)
                p.tab1 = NULL;
            if (t->a.scales != NULL)
                p.tab2 = NULL;
        } else if (transpose) {
            /* The tables of x and of v, when B and A (row tiles of B^T
             * and A^T) are sign planes without scales. */
            const int tables_b = t->b.planes > 0 && t->b.scales == NULL && !t->b.identity;
            const int tables_a = t->a.planes > 0 && t->a.scales == NULL;
            p.xin = lrq_carve(&cv, batch * 16 * lrq_kmat_tiles(&t->b), sizeof(float));
            p.tab1 = lrq_carve(&cv, tables_b ? batch * 64 * lrq_kmat_tiles(&t->b) : 0, sizeof(float));
            p.u = lrq_carve(&cv, batch * 16 * ti, sizeof(float));
            p.tab2 = lrq_carve(&cv, tables_a ? batch * 64 * ti : 0, sizeof(float));
            p.yout = lrq_carve(&cv, batch * 16 * ka, sizeof(float));
            if (!tables_b)
                p.tab1 = NULL;
            if (!tables_a)
                p.tab2 = NULL;
        } else if (p.lane_batch) {
            p.xin = lrq_carve(&cv, LRQ_WIDE_VECTORS * 16 * ka, sizeof(float));
            p.tab1 = lrq_carve(&cv, LRQ_WIDE_VECTORS * 64 * ka, sizeof(float));
            p.u = lrq_carve(&cv, LRQ_WIDE_VECTORS * 16 * ti, sizeof(float));
            p.tab2 = lrq_carve(&cv, t->b.identity ? 0 : LRQ_WIDE_VECTORS * 64 * ti, sizeof(float));
            p.yout = lrq_carve(&cv, LRQ_WIDE_VECTORS * 16 * lrq_kmat_tiles(&t->b), sizeof(float));
        } else {
            p.xin = lrq_carve(&cv, batch * 16 * ka, sizeof(float));
            p.tab1 = lrq_carve(&cv, p.int_a || t->a.planes == 0 ? 0 : batch * 64 * ka, sizeof(float));
            p.itab1 = lrq_carve(&cv, p.int_a ? LRQ_ITAB_BYTES(p.wide) * ka : 0, 1);
            p.step1 = lrq_carve(&cv, ka / LRQ_QBLOCK_CHUNKS + 1, sizeof(float));
            p.u = lrq_carve(&cv, batch * 16 * ti, sizeof(float));
            p.tab2 = lrq_carve(&cv, p.int_b || t->b.planes == 0 || t->b.identity ? 0 : batch * 64 * ti,
                               sizeof(float));
            p.itab2 = lrq_carve(&cv, p.int_b ? LRQ_ITAB_BYTES(p.wide) * ti : 0, 1);
            p.step2 = lrq_carve(&cv, ti / LRQ_QBLOCK_CHUNKS + 1, sizeof(float));
            p.yout = lrq_carve(&cv, batch * 16 * lrq_kmat_tiles(&t->b), sizeof(float));
        }
        if (cv.overflow)
            return LRQ_ERR_MEMORY;
        if (pass == 0) {
            block = lrq_scratch_get(cv.used > 64 ? cv.used : 64, &cached);
            if (block == NULL)
                return LRQ_ERR_MEMORY;
            cv.base = block;
        }
    }
    p.xe = x_estride;
    p.xv = x_vstride;
    p.ye = y_estride;
    p.yv = y_vstride;
    for (j = 0; j < nvec; j += p.nv) {
        p.nv = (size_t)(nvec - j < batch ? nvec - j : batch);
        p.x = x + (int64_t)j * x_vstride;
        p.y = y + (int64_t)j * y_vstride;
        if (transpose && p.lane_batch)
            lrq_parallel_run(transposed_lanes_part, &p, 3, nthreads * LRQ_PARTS_PER_THREAD, nthreads);
        else if (transpose)
            lrq_parallel_run(transposed_part, &p, 3, nthreads * LRQ_PARTS_PER_THREAD, nthreads);
        else if (p.lane_batch)
            lrq_parallel_run(forward_lanes_part, &p, 3, nthreads * LRQ_PARTS_PER_THREAD, nthreads);
        else
            lrq_parallel_run(forward_part, &p, p.int_b ? 4 : 3, nthreads * LRQ_PARTS_PER_THREAD,
                             nthreads);
    }
    lrq_scratch_put(block, cached);
    return LRQ_OK;
}

