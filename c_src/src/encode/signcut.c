/* SPDX-License-Identifier: MIT */
/*
 * The signed cut encoder: greedy cuts A ~ S diag(c) T^T (the factors of
 * spec §10.2), with the engineering that makes it cost a few dense
 * matrix-vector products per cut:
 *
 *   - The remainder R is kept dense in float32, twice (row-major and
 *     transposed), and both copies again in int16 fixed point: flipping
 *     coordinate j of t adds the contiguous row j of R^T to the image R t,
 *     and flipping i of s adds row i of R, read from the int16 copies (half
 *     the bytes; see to_fixed() for why that is safe).
 *   - Images are kept halved (h = R t / 2), so a flip adds +-R[:, j] with no
 *     factor 2 (the factor the signtensors refactor lost).
 *   - Cuts are subtracted from the dense remainder once per block of
 *     LRQ_SC_BLOCK cuts.  Between block updates an image update adds the
 *     open block's contribution as a low-rank correction whose weights are
 *     signed popcounts over the flipped coordinates.  At every block update
 *     both images are recomputed from the new dense remainder, so float32
 *     drift never outlives a block, and the squared norm of the remainder is
 *     recomputed exactly in float64.
 *   - The 32 random starts of a block are drawn at its block update and
 *     their images come out of that same pass over R: a cut then starts from
 *     its image plus the block correction, instead of reading half of R to
 *     move the image from the previous cut's t.  Per cut that leaves about
 *     1.5 passes' worth of flipped rows to read (N(0,1) at 2048^2), the
 *     floor for this algorithm: the first s flips half of the rows, the
 *     first t about a fifth, and some 60 further half-steps with shrinking
 *     flip counts (437, 246, 168, ... 10) the rest.
 *   - Block sums over cuts (the remainder update, the corrections) go through
 *     nibble tables: 8 lookups per element for 32 cuts instead of 32 adds.
 *
 * Threads: the steps above that pay for a hand-off (image updates with
 * enough flips, block updates, the start images) run as jobs on the
 * library's team (threads.c, shared with the products), several per cut.
 * The encoder watches how the team fares and runs alone for a while when
 * a worker cannot get a CPU (see WAIT_LIMIT_NS).
 *
 * Determinism: every value that feeds a sign decision or a stopping test is
 * computed by the kernels of encoder_internal.h, which give identical bits
 * on every ISA; jobs split element ranges at multiples of 64 fixed by the
 * task and its length (never by the thread count), and every per-element
 * computation is independent of the split, so the thread count cannot
 * change a bit either.  Reductions are single-threaded or per-row partials
 * summed in row order.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE 1 /* MADV_HUGEPAGE */

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "encode/signcut.h"

/* ------------------------------------------------------------ remainder */

static double sum_rows(const enc_t *const e)
{
    double total = 0.0;
    uint64_t i;
    for (i = 0; i < e->m; i++)
        total += e->row_sq[i];
    return total;
}

static void load_block_c(enc_t *const e)
{
    e->groups_c = lrq_sc_tables(e->out_c + (e->width - e->open), (unsigned)e->open, e->tab_c);
}

/* Subtracts the open block from the dense remainder (both copies),
 * re-synchronizes both images with it and makes the squared norm exact. */
static void flush(enc_t *const e)
{
    const size_t m = (size_t)e->m, n = (size_t)e->n;
    size_t w;
    /* The next block's random starts are drawn now, so that their images
     * come out of the pass over R that updates it: one pass serves 32
     * cuts, where starting each cut from the last one's image would read
     * half of R per cut.  Padding bits are zero. */
    for (w = 0; w < BLOCK * e->nw; w++)
        e->tstart[w] = lrq_sc_xoshiro_next(e->rng);
    if (n % 64)
        for (w = 0; w < BLOCK; w++)
            e->tstart[w * e->nw + e->nw - 1] &= (UINT64_C(1) << (n % 64)) - 1;
    load_block_c(e);
    lrq_sc_parallel2(e, 2, T_BLOCK_R, m, T_BLOCK_RT, n, m * n * (e->open + 1));
    e->open = 0;
    memset(e->spat, 0, m * sizeof *e->spat);
    memset(e->tpat, 0, n * sizeof *e->tpat);
    e->norm2 = sum_rows(e);
    e->exact = 1;
}

/* The exact squared norm of the current remainder, state untouched. */
static double peek(enc_t *const e)
{
    load_block_c(e);
    lrq_sc_parallel(e, T_PEEK, (size_t)e->m, (size_t)(e->m * e->n * (e->open + 1)));
    return sum_rows(e);
}

/* ------------------------------------------------------------ one cut */

/* Collects the coordinates where `old` and `now` differ, with now's sign
 * as a float sign mask, and the open block's correction weights: for cut
 * k, d_k = c_k * y_k with y_k = sum over flips of now_j * (cut k's sign
 * at j) = |F| - 2 popcount((now ^ cut_k) & F).  Returns |F|. */
static size_t flips(enc_t *const e, const uint64_t *const old, const uint64_t *const now,
                    const size_t words, const uint64_t *const block, const size_t block_words,
                    const float *const row_scale)
{
    size_t count = 0, w, k;
    for (w = 0; w < words; w++) {
        uint64_t f = e->flipmask[w] = old[w] ^ now[w];
        while (f) {
            const unsigned b = (unsigned)__builtin_ctzll(f);
            const size_t j = w * 64 + b;
            e->idx[count] = (uint32_t)j;
            /* Negated by its sign bit, without a branch (half of these
             * would be mispredicted). */
            uint32_t u;
            memcpy(&u, &row_scale[j], sizeof u);
            u ^= (uint32_t)(now[w] >> b & 1u) << 31;
            memcpy(&e->fscale[count], &u, sizeof u);
            count++;
            f &= f - 1;
        }
    }
    for (k = 0; k < e->open; k++) {
        const uint64_t *const cut = block + k * block_words;
        int64_t differ = 0;
        if (count < words) {
            /* Few flips (the tail of a cut): test them one by one rather
             * than count over every word. */
            size_t q;
            for (q = 0; q < count; q++) {
                const size_t j = e->idx[q];
                differ += (int64_t)((cut[j >> 6] ^ now[j >> 6]) >> (j & 63) & 1u);
            }
        } else {
            differ = (int64_t)e->k->count_differ(now, cut, e->flipmask, words);
        }
        e->d[k] = (float)((double)e->out_c[e->width - e->open + k] * (double)((int64_t)count - 2 * differ));
    }
    e->groups_d = lrq_sc_tables(e->d, (unsigned)e->open, e->tab_d);
    return count;
}

/* t moves from t_cur to t_new: update ht, then make t_new current. */
static void move_t(enc_t *const e)
{
    const size_t count = flips(e, e->t_cur, e->t_new, e->nw, block_t(e), e->nw, e->rtb_scale);
    uint64_t *const tmp = e->t_cur;
    if (count) {
        e->task_count = count;
        lrq_sc_parallel(e, T_UPDATE_HT, (size_t)e->m, count * (size_t)e->m);
    }
    e->t_cur = e->t_new;
    e->t_new = tmp;
}

static void move_s(enc_t *const e)
{
    const size_t count = flips(e, e->s_cur, e->s_new, e->mw, block_s(e), e->mw, e->rb_scale);
    uint64_t *const tmp = e->s_cur;
    if (count) {
        e->task_count = count;
        lrq_sc_parallel(e, T_UPDATE_HS, (size_t)e->n, count * (size_t)e->n);
    }
    e->s_cur = e->s_new;
    e->s_new = tmp;
}

/* Alternates s = sign(R t), t = sign(R^T s) from the current t while the
 * cut s^T R t strictly increases; returns the final half-cut s^T R t / 2.
 * On entry ht is the image of t_cur and hs that of s_cur = s_prev. */
static double alternate(enc_t *const e)
{
    const size_t m = (size_t)e->m, n = (size_t)e->n;
    double cut = e->k->signed_sum(e->ht, e->s_cur, m);
    for (;;) {
        /* Signs come out of the same pass as the norm; s_new and t_new
         * are scratch until move_s() / move_t() adopt them. */
        double v = e->k->sum_abs(e->ht, m, e->s_new);
        if (!(v > cut))
            break;
        cut = v;
        move_s(e);
        v = e->k->sum_abs(e->hs, n, e->t_new);
        if (!(v > cut))
            break;
        cut = v;
        move_t(e);
    }
    return cut;
}

/* After the alternation found no positive cut although R may be non-zero
 * (a random t orthogonal to every row, e.g. R = [1 -1] and t = [1 1]):
 * restart from the signs of the row holding R's largest entry, whose image
 * is then certainly non-zero.  Returns the half-cut, 0 if R is zero. */
static double restart(enc_t *const e)
{
    const size_t m = (size_t)e->m, n = (size_t)e->n;
    size_t i, j, best_i = 0;
    float best = 0.0f;
    if (e->open)
        flush(e);
    for (i = 0; i < m; i++) /* the image of t_cur, which flush() leaves stale */
        e->ht[i] = (float)(0.5 * e->k->signed_sum(e->r + i * n, e->t_cur, n));
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++)
            if (fabsf(e->r[i * n + j]) > best) {
                best = fabsf(e->r[i * n + j]);
                best_i = i;
            }
    if (!(best > 0.0f))
        return 0.0;
    e->k->sign_bits(e->r + best_i * n, n, e->t_new);
    move_t(e);
    return alternate(e);
}

static int grow(enc_t *const e)
{
    uint64_t cap = e->cap ? e->cap * 2 : 64;
    uint64_t *s, *t;
    float *c;
    if (cap > LRQ_DIM_MAX)
        cap = LRQ_DIM_MAX;
    if (e->width < e->cap)
        return LRQ_OK;
    if (e->width >= LRQ_DIM_MAX)
        return LRQ_ERR_ARGUMENT;
    s = (uint64_t *)realloc(e->out_s, (size_t)cap * e->mw * sizeof *s);
    if (s == NULL)
        return LRQ_ERR_MEMORY;
    e->out_s = s;
    t = (uint64_t *)realloc(e->out_t, (size_t)cap * e->nw * sizeof *t);
    if (t == NULL)
        return LRQ_ERR_MEMORY;
    e->out_t = t;
    c = (float *)realloc(e->out_c, (size_t)cap * sizeof *c);
    if (c == NULL)
        return LRQ_ERR_MEMORY;
    e->out_c = c;
    e->cap = cap;
    return LRQ_OK;
}

/* The tile's scale from its first weight c_0 > 0: 2^(floor(log2 c_0) - 8),
 * so c_0 / scale is in [256, 512): 2^7 of headroom below binary16's largest
 * value and 2^22 of decay before its subnormals.  Clamped to the powers of
 * two [SC-3] allows. */
static float c16_scale(const float c0)
{
    int x;
    (void)frexpf(c0, &x); /* c0 in [2^(x-1), 2^x) */
    x -= 9;
    if (x < -125)
        x = -125;
    if (x > 112)
        x = 112;
    return ldexpf(1.0f, x);
}

/* binary16 bits of v >= 0, rounded to nearest even; beyond 65504 it is
 * clamped to 65504 (the file needs finite values). */
uint16_t lrq_sc_c16_round(const double v)
{
    return v >= 65504.0 ? 0x7BFF : lrq_half_from_double(v);
}

static int one_cut(enc_t *const e)
{
    const size_t m = (size_t)e->m, n = (size_t)e->n;
    const double mn = (double)m * (double)n;
    double cut;
    float c;
    size_t w;
    int rc = grow(e);
    if (rc != LRQ_OK)
        return rc;
    /* The cut starts from the block's next random t:
     * R_cur t / 2 = G t - sum_j c_j s_j (t_j^T t) / 2 over the block's cuts. */
    {
        const uint64_t *const t = e->tstart + e->open * e->nw;
        const uint64_t *const tb = block_t(e);
        uint64_t k;
        for (w = 0; w < e->nw; w++)
            e->flipmask[w] = ~UINT64_C(0);
        for (k = 0; k < e->open; k++) {
            const uint64_t differ = e->k->count_differ(t, tb + k * e->nw, e->flipmask, e->nw);
            e->d[k] = (float)((double)e->out_c[e->width - e->open + k] * 0.5 *
                              ((double)n - 2.0 * (double)differ));
        }
        e->groups_d = lrq_sc_tables(e->d, (unsigned)e->open, e->tab_d);
        /* One cheap pass over m values: worth a hand-off only when huge. */
        lrq_sc_parallel(e, T_START, m, m);
        memcpy(e->t_cur, t, e->nw * sizeof *t);
    }
    cut = alternate(e);
    if (!(cut > 0.0)) {
        cut = restart(e);
        if (!(cut > 0.0)) {
            e->done = 1; /* the remainder is exactly zero */
            return LRQ_OK;
        }
    }
    /* c = s^T R t / (m n), the least-squares weight of s t^T. */
    c = (float)(2.0 * cut / mn);
    if (!isfinite(c) || !(c > 0.0f))
        return LRQ_ERR_ARGUMENT; /* only for values near the float32 limit */
    if (e->c16) {
        /* The weight as it will be stored, c_scale * binary16: the rest of
         * the cut (norm, remainder, images) uses it, so the error stays
         * exact and later cuts make up for the rounding. */
        if (e->width == 0)
            e->c_scale = c16_scale(c);
        c = e->c_scale * lrq_half_to_float(lrq_sc_c16_round((double)c / (double)e->c_scale));
        if (!(c > 0.0f)) {
            e->done = 1; /* the weight underflows binary16: no cut can help */
            return LRQ_OK;
        }
    }
    e->norm2 = e->norm2 - 2.0 * (double)c * (2.0 * cut) + (double)c * (double)c * mn;
    e->exact = 0;
    memcpy(e->out_s + e->width * e->mw, e->s_cur, e->mw * sizeof *e->s_cur);
    memcpy(e->out_t + e->width * e->nw, e->t_cur, e->nw * sizeof *e->t_cur);
    e->out_c[e->width] = c;
    /* (R - c s t^T) t = R t - c n s and (R - c s t^T)^T s = R^T s - c m t,
     * halved: a one-cut "block correction" with weight c n / 2 (c m / 2). */
    e->k->sub_signed(e->ht, m, e->s_cur, (float)((double)c * (double)n * 0.5));
    e->k->sub_signed(e->hs, n, e->t_cur, (float)((double)c * (double)m * 0.5));
    for (w = 0; w < m; w++)
        e->spat[w] |= (uint32_t)(e->s_cur[w >> 6] >> (w & 63) & 1u) << e->open;
    for (w = 0; w < n; w++)
        e->tpat[w] |= (uint32_t)(e->t_cur[w >> 6] >> (w & 63) & 1u) << e->open;
    e->width++;
    e->open++;
    if (e->open == BLOCK)
        flush(e);
    return LRQ_OK;
}

/* --------------------------------------------------------------- public */

int lrq_signcut_encoder_set_c_storage(lrq_signcut_encoder *const e, const int storage)
{
    if (e == NULL || e->width != 0 ||
        (storage != LRQ_SIGNCUT_C_FLOAT32 && storage != LRQ_SIGNCUT_C_FLOAT16))
        return LRQ_ERR_ARGUMENT;
    e->c16 = storage == LRQ_SIGNCUT_C_FLOAT16;
    e->c_scale = 0.0f;
    return LRQ_OK;
}

float lrq_signcut_encoder_c_scale(const lrq_signcut_encoder *const e)
{
    return e != NULL && e->c16 ? e->c_scale : 0.0f;
}

/* The remainder copies are read a row at a time in an order set by the
 * flips, i.e. all over the matrix: with 4 KiB pages every row costs TLB
 * misses, so ask for transparent huge pages (a hint; ignored where
 * unsupported).  2 MiB alignment lets the kernel back them fully. */
static void *alloc_remainder(const size_t bytes)
{
    void *p = NULL;
    const size_t align = (size_t)1 << 21;
    if (posix_memalign(&p, bytes >= align ? align : 64, bytes) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    if (bytes >= align)
        (void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

/* dst (cols x rows) = src^T, in 32 x 32 tiles that stay in cache. */
static void transpose(const float *const src, const uint64_t rows, const uint64_t cols,
                      float *const dst)
{
    uint64_t i0, j0, i, j;
    for (i0 = 0; i0 < rows; i0 += 32)
        for (j0 = 0; j0 < cols; j0 += 32)
            for (i = i0; i < i0 + 32 && i < rows; i++)
                for (j = j0; j < j0 + 32 && j < cols; j++)
                    dst[j * rows + i] = src[i * cols + j];
}

void lrq_signcut_encoder_free(lrq_signcut_encoder *const e)
{
    if (e == NULL)
        return;
    free(e->r);
    free(e->rt);
    free(e->rb);
    free(e->rtb);
    free(e->ht);
    free(e->hs);
    free(e->t_cur);
    free(e->t_new);
    free(e->s_cur);
    free(e->s_new);
    free(e->idx);
    free(e->fscale);
    free(e->rb_scale);
    free(e->rtb_scale);
    free(e->row_sq);
    free(e->flipmask);
    free(e->spat);
    free(e->tstart);
    free(e->g);
    free(e->tpat);
    free(e->out_s);
    free(e->out_t);
    free(e->out_c);
    free(e);
}

int lrq_signcut_encoder_create(const float *const a, const uint64_t rows, const uint64_t cols,
                               const uint64_t ld, const uint64_t seed, const unsigned threads,
                               lrq_signcut_encoder **const out)
{
    enc_t *e;
    uint64_t cells, bytes, i, j;
    uint64_t x = seed;
    int p;

    if (out == NULL || a == NULL || rows == 0 || cols == 0 || rows > LRQ_DIM_MAX || cols > LRQ_DIM_MAX ||
        ld < cols || threads > LRQ_THREADS_MAX)
        return LRQ_ERR_ARGUMENT;
    if (__builtin_mul_overflow(rows, cols, &cells) ||
        __builtin_mul_overflow(cells, (uint64_t)sizeof(float), &bytes) || bytes > SIZE_MAX / 2)
        return LRQ_ERR_ARGUMENT;
    for (i = 0; i < rows; i++)
        for (j = 0; j < cols; j++)
            if (!isfinite(a[i * ld + j]))
                return LRQ_ERR_ARGUMENT;
    e = (enc_t *)calloc(1, sizeof *e);
    if (e == NULL)
        return LRQ_ERR_MEMORY;
    e->m = rows;
    e->n = cols;
    e->mw = (size_t)((rows + 63) / 64);
    e->nw = (size_t)((cols + 63) / 64);
    e->k = lrq_dispatch()->encoder;
    e->threads = threads;
    lrq_sc_pick_threads(e);
    e->r = (float *)alloc_remainder((size_t)bytes);
    e->rt = (float *)alloc_remainder((size_t)bytes);
    e->rb = (int16_t *)alloc_remainder((size_t)bytes / 2);
    e->rtb = (int16_t *)alloc_remainder((size_t)bytes / 2);
    e->ht = (float *)malloc((size_t)rows * sizeof(float));
    e->hs = (float *)malloc((size_t)cols * sizeof(float));
    e->t_cur = (uint64_t *)calloc(e->nw, sizeof(uint64_t));
    e->t_new = (uint64_t *)calloc(e->nw, sizeof(uint64_t));
    e->s_cur = (uint64_t *)calloc(e->mw, sizeof(uint64_t));
    e->s_new = (uint64_t *)calloc(e->mw, sizeof(uint64_t));
    e->idx = (uint32_t *)malloc((size_t)(rows > cols ? rows : cols) * sizeof(uint32_t));
    e->fscale = (float *)malloc((size_t)(rows > cols ? rows : cols) * sizeof(float));
    e->rb_scale = (float *)malloc((size_t)rows * sizeof(float));
    e->rtb_scale = (float *)malloc((size_t)cols * sizeof(float));
    e->row_sq = (double *)malloc((size_t)rows * sizeof(double));
    e->spat = (uint32_t *)calloc((size_t)rows, sizeof(uint32_t));
    e->tstart = (uint64_t *)calloc((size_t)BLOCK * e->nw, sizeof(uint64_t));
    e->g = (float *)malloc((size_t)rows * BLOCK * sizeof(float));
    e->tpat = (uint32_t *)calloc((size_t)cols, sizeof(uint32_t));
    e->flipmask = (uint64_t *)calloc(e->mw > e->nw ? e->mw : e->nw, sizeof(uint64_t));
    if (!e->r || !e->rt || !e->rb || !e->rtb || !e->ht || !e->hs || !e->t_cur || !e->t_new || !e->s_cur || !e->s_new ||
        !e->idx || !e->fscale || !e->rb_scale || !e->rtb_scale || !e->row_sq ||
        !e->flipmask || !e->spat || !e->tpat ||
        !e->tstart || !e->g) {
        lrq_signcut_encoder_free(e);
        return LRQ_ERR_MEMORY;
    }
    for (i = 0; i < rows; i++)
        memcpy(e->r + i * cols, a + i * ld, (size_t)cols * sizeof(float));
    transpose(e->r, rows, cols, e->rt);
    for (p = 0; p < 4; p++)
        e->rng[p] = lrq_sc_splitmix64(&x);
    /* Images of the all-(+1) starting vectors and the exact norm: a block
     * update with an empty block does exactly that. */
    flush(e);
    lrq_sc_team_release(e);
    e->norm2_a = e->norm2;
    e->done = e->norm2_a == 0.0;
    *out = e;
    return LRQ_OK;
}

int lrq_signcut_encoder_run(lrq_signcut_encoder *const e, const uint64_t max_cuts,
                            const double rel_error)
{
    double goal;
    uint64_t done = 0;
    int rc = LRQ_OK;
    if (e == NULL || !(rel_error >= 0.0) || rel_error > 1.0)
        return LRQ_ERR_ARGUMENT;
    goal = rel_error > 0.0 ? rel_error * rel_error * e->norm2_a : -1.0;
    lrq_sc_pick_threads(e);
    while (!e->done && done < max_cuts) {
        if (e->norm2 <= goal * (1.0 + PEEK_MARGIN) || e->norm2 <= 0.0) {
            /* Near or past the goal (or at zero): measure exactly, which
             * changes nothing in the state, so where a caller splits its
             * run() calls never changes the result. */
            const double exact = e->exact ? e->norm2 : peek(e);
            if (exact <= goal || exact == 0.0) {
                e->norm2 = exact;
                e->exact = 1;
                e->done = 1;
                break;
            }
        }
        rc = one_cut(e);
        if (rc != LRQ_OK)
            break;
        done++;
    }
    lrq_sc_team_release(e);
    return rc;
}

uint64_t lrq_signcut_encoder_width(const lrq_signcut_encoder *const e)
{
    return e ? e->width : 0;
}

int lrq_signcut_encoder_finished(const lrq_signcut_encoder *const e)
{
    return e ? e->done : 1;
}

double lrq_signcut_encoder_input_norm(const lrq_signcut_encoder *const e)
{
    return e ? sqrt(e->norm2_a) : 0.0;
}

int lrq_signcut_encoder_remainder_norm(lrq_signcut_encoder *const e, const int exact,
                                       double *const norm)
{
    if (e == NULL || norm == NULL)
        return LRQ_ERR_ARGUMENT;
    if (exact && !e->exact) {
        lrq_sc_pick_threads(e);
        e->norm2 = peek(e);
        lrq_sc_team_release(e);
        e->exact = 1;
    }
    *norm = sqrt(e->norm2 > 0.0 ? e->norm2 : 0.0);
    return LRQ_OK;
}
