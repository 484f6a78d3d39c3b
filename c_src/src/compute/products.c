/* SPDX-License-Identifier: MIT */
/*
 * Tiles (signcut and lplr) as handles over borrowed section bytes, and the
 * products and decoding built on the per-ISA kernels.
 *
 * Both schemes are "B times (mid times (A times x))": signcut has A = T^T,
 * mid = diag(c), B = S; lplr has A = R, B = L and scalar weights.  So one
 * driver serves both, and the transposed product walks the same two
 * matrices the other way.  Every elementwise step here is one IEEE
 * operation per element, identical in every path and for every split.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/dispatch.h"
#include "common/internal.h"
#include "common/threads.h"
#include "lrq.h"

#define DIM_MAX ((UINT64_C(1) << 31) - 1)
#define PANEL_MIN 64u
#define PANEL_MAX (UINT64_C(1) << 20)
#define SMALL_WORK (UINT64_C(32) << 10)

enum { SCHEME_SIGNCUT = 1, SCHEME_LPLR = 2 };

struct lrq_tile {
    int scheme;
    size_t m, n, inner; /* A is m x n; inner = w or rank */
    lrq_kmat a;         /* applied first in y = A x: T^T (signcut) or R (lplr) */
    lrq_kmat b;         /* applied second: S or L */
    const uint8_t *c;   /* signcut: w little-endian f32 (borrowed, or c_own) */
    float *c_own;       /* signcut with binary16 c: the converted weights */
    uint64_t bytes;     /* bytes of all sections, a measure of the work */
    float wa, wb;       /* the factors' weights (lplr), 1 for signcut */
};

/* ---- small helpers --------------------------------------------------- */

static size_t min_z(const size_t a, const size_t b)
{
    return a < b ? a : b;
}

static size_t k16(const size_t k)
{
    return k / 16 + (k % 16 != 0);
}

static float load_f32(const uint8_t *p)
{
    float f;
    memcpy(&f, p, sizeof f);
    return f;
}

static int finite_f32(const float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u & 0x7F800000u) != 0x7F800000u;
}

static unsigned load_u16(const uint8_t *p)
{
    return (unsigned)p[0] | (unsigned)p[1] << 8;
}

/* Byte offset of word (r, c) in a plane (spec §9.3). */
static size_t word_offset(const lrq_kmat *m, const size_t r, const size_t c, const size_t ws)
{
    const size_t c0 = c - c % m->pc, cp = min_z(m->pc, m->kc - c0);
    const size_t t = r / 16, h = min_z(16, m->rows - 16 * t);
    return (m->rows * c0 + 16 * t * cp + (c - c0) * h + r % 16) * ws;
}

/* ---- construction and validation -------------------------------------- */

static int host_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Set up a factor of `bits` bits (1 for a signcut sign matrix) and check
 * its section length: b bit-planes for b <= 4, a byte matrix otherwise. */
static int kmat_init(lrq_kmat *km, const void *data, const size_t len, const uint64_t rows,
                     const uint64_t k, const int bits, const uint64_t panel)
{
    const uint64_t c16 = k / 16 + (k % 16 != 0);
    uint64_t plane, total;

    memset(km, 0, sizeof *km);
    if (__builtin_mul_overflow(rows, 2 * c16, &plane) ||
        __builtin_mul_overflow(plane, (uint64_t)(bits <= 4 ? bits : 8), &total))
        return LRQ_ERR_ARGUMENT;
    if (total != (uint64_t)len)
        return LRQ_ERR_BUFFER_SIZE;
    if (data == NULL && len != 0)
        return LRQ_ERR_ARGUMENT;
    km->data = data;
    km->rows = (size_t)rows;
    km->k = (size_t)k;
    if (bits <= 4) {
        km->planes = bits;
        km->plane_bytes = (size_t)plane;
        km->kc = (size_t)c16;
        km->pc = (size_t)(panel / 16);
    } else {
        km->planes = 0;
        km->half = (float)((1u << bits) - 1) * 0.5f;
        km->kc = (size_t)(4 * c16);
        km->pc = (size_t)(panel / 4);
    }
    return LRQ_OK;
}

/* [LAY-1] / [LAY-2]: padding elements are zero.  Only the last chunk of a
 * sign row, or the last few words of a byte row, can hold padding. */
static int check_padding(const lrq_kmat *m)
{
    size_t r, c, p, b;

    if (m->kc == 0 || m->rows == 0)
        return LRQ_OK;
    if (m->planes > 0) {
        const unsigned mask = (0xFFFFu << (m->k % 16)) & 0xFFFFu;
        if (m->k % 16 == 0)
            return LRQ_OK;
        for (p = 0; p < (size_t)m->planes; p++)
            for (r = 0; r < m->rows; r++)
                if (load_u16(m->data + p * m->plane_bytes + word_offset(m, r, m->kc - 1, 2)) & mask)
                    return LRQ_ERR_PADDING;
        return LRQ_OK;
    }
    for (r = 0; r < m->rows; r++)
        for (c = m->k / 4; c < m->kc; c++)
            for (b = 0; b < 4; b++)
                if (4 * c + b >= m->k && m->data[word_offset(m, r, c, 4) + b] != 0)
                    return LRQ_ERR_PADDING;
    return LRQ_OK;
}

/* Scales of a factor: length (2 bytes per row and group) and [LP-3]. */
static int set_scales(lrq_kmat *m, const void *scales, const size_t len, const uint64_t group)
{
    const uint64_t groups = (m->k + group - 1) / group;
    uint64_t need;
    size_t i;

    if (__builtin_mul_overflow((uint64_t)m->rows, 2 * groups, &need))
        return LRQ_ERR_ARGUMENT;
    if (need != (uint64_t)len)
        return LRQ_ERR_BUFFER_SIZE;
    if (scales == NULL && len != 0)
        return LRQ_ERR_ARGUMENT;
    m->scales = scales;
    m->groups = (size_t)groups;
    m->gc = (size_t)(group / (m->planes > 0 ? 16 : 4));
    for (i = 0; i < len; i += 2)
        if (load_u16(m->scales + i) >= 0x7C00u)
            return LRQ_ERR_FORMAT;
    return LRQ_OK;
}

/* [LP-4]: codes of a byte matrix fit in `bits` bits (padding is zero). */
static int check_codes(const lrq_kmat *m, const size_t len, const int bits)
{
    unsigned any = 0;
    size_t i;

    if (m->planes > 0 || bits == 8)
        return LRQ_OK;
    for (i = 0; i < len; i++)
        any |= m->data[i];
    return any >> bits ? LRQ_ERR_FORMAT : LRQ_OK;
}

static int panel_ok(const uint64_t panel)
{
    return panel >= PANEL_MIN && panel <= PANEL_MAX && panel % 64 == 0;
}

static int tile_new(lrq_tile **out, const int scheme, const uint64_t m, const uint64_t n,
                    const uint64_t inner, const uint64_t panel)
{
    if (out == NULL)
        return LRQ_ERR_ARGUMENT;
    *out = NULL;
    if (m > DIM_MAX || n > DIM_MAX || inner > DIM_MAX || !panel_ok(panel))
        return LRQ_ERR_ARGUMENT;
    if (!host_little_endian())
        return LRQ_ERR_UNSUPPORTED;
    *out = calloc(1, sizeof **out);
    if (*out == NULL)
        return LRQ_ERR_MEMORY;
    (*out)->scheme = scheme;
    (*out)->m = (size_t)m;
    (*out)->n = (size_t)n;
    (*out)->inner = (size_t)inner;
    (*out)->wa = (*out)->wb = 1.0f;
    return LRQ_OK;
}

static int tile_done(lrq_tile **out, const int rc)
{
    if (rc != LRQ_OK) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

int lrq_tile_create_signcut(lrq_tile **out, const uint64_t m, const uint64_t n, const uint64_t w,
                            const uint64_t panel, const void *c, const size_t c_len,
                            const void *tt, const size_t tt_len, const void *s,
                            const size_t s_len)
{
    lrq_tile *t;
    size_t i;
    int rc = tile_new(out, SCHEME_SIGNCUT, m, n, w, panel);

    if (rc != LRQ_OK)
        return rc;
    t = *out;
    if ((uint64_t)c_len != 4 * w)
        return tile_done(out, LRQ_ERR_BUFFER_SIZE);
    if (c == NULL && c_len != 0)
        return tile_done(out, LRQ_ERR_ARGUMENT);
    t->c = c;
    rc = kmat_init(&t->a, tt, tt_len, w, n, 1, panel);
    if (rc == LRQ_OK)
        rc = kmat_init(&t->b, s, s_len, m, w, 1, panel);
    if (rc != LRQ_OK)
        return tile_done(out, rc);
    for (i = 0; i < w; i++)
        if (!finite_f32(load_f32(t->c + 4 * i)))
            return tile_done(out, LRQ_ERR_FORMAT); /* [SC-2] */
    rc = check_padding(&t->a);
    if (rc == LRQ_OK)
        rc = check_padding(&t->b);
    t->bytes = (uint64_t)c_len + tt_len + s_len;
    return tile_done(out, rc);
}

int lrq_tile_create_signcut_c16(lrq_tile **out, const uint64_t m, const uint64_t n,
                                const uint64_t w, const uint64_t panel, const float c_scale,
                                const void *c, const size_t c_len, const void *tt,
                                const size_t tt_len, const void *s, const size_t s_len)
{
    const uint8_t *const p = (const uint8_t *)c;
    lrq_tile *t;
    float *own;
    size_t i;
    int rc;

    if (out == NULL)
        return LRQ_ERR_ARGUMENT;
    *out = NULL;
    if (w > DIM_MAX)
        return LRQ_ERR_ARGUMENT;
    if ((uint64_t)c_len != 2 * w)
        return LRQ_ERR_BUFFER_SIZE;
    if (c == NULL && c_len != 0)
        return LRQ_ERR_ARGUMENT;
    if (!lrq_c_scale_ok(c_scale))
        return LRQ_ERR_FORMAT; /* [SC-3] */
    own = (float *)malloc(w ? (size_t)w * sizeof *own : 1);
    if (own == NULL)
        return LRQ_ERR_MEMORY;
    for (i = 0; i < w; i++) {
        const uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
        if ((h & 0x7C00u) == 0x7C00u) {
            free(own);
            return LRQ_ERR_FORMAT; /* [SC-2] */
        }
        own[i] = c_scale * lrq_half_to_float(h); /* exact ([SC-3]) */
    }
    rc = lrq_tile_create_signcut(out, m, n, w, panel, own, 4 * (size_t)w, tt, tt_len, s, s_len);
    if (rc != LRQ_OK) {
        free(own);
        return rc;
    }
    t = *out;
    t->c_own = own;
    t->bytes = (uint64_t)c_len + tt_len + s_len;
    return LRQ_OK;
}

/* A factor's weight: with b <= 4 the kernels sum +-1 planes, and
 * q - (2^b - 1)/2 = -1/2 * sum_p 2^p s_p (spec §16.4); byte codes give the
 * level itself.  -sigma/2 is exact. */
static float factor_weight(const float sigma, const int bits)
{
    return bits <= 4 ? -0.5f * sigma : sigma;
}

int lrq_tile_create_lplr(lrq_tile **out, const uint64_t m, const uint64_t n, const uint64_t rank,
                         const int bits_l, const int bits_r, const uint64_t group,
                         const float scale_l, const float scale_r, const uint64_t panel,
                         const void *r_codes, const size_t r_codes_len, const void *r_scales,
                         const size_t r_scales_len, const void *l_codes, const size_t l_codes_len,
                         const void *l_scales, const size_t l_scales_len)
{
    lrq_tile *t;
    int rc;

    if (bits_l < 1 || bits_l > 8 || bits_r < 1 || bits_r > 8 || group < 16 ||
        group > PANEL_MAX || (group & (group - 1)) != 0)
        return out != NULL ? (*out = NULL, LRQ_ERR_ARGUMENT) : LRQ_ERR_ARGUMENT;
    rc = tile_new(out, SCHEME_LPLR, m, n, rank, panel);
    if (rc != LRQ_OK)
        return rc;
    t = *out;
    if (!finite_f32(scale_l) || !finite_f32(scale_r) || !(scale_l > 0.0f) || !(scale_r > 0.0f))
        return tile_done(out, LRQ_ERR_FORMAT); /* [LP-2] */
    t->wa = factor_weight(scale_r, bits_r);
    t->wb = factor_weight(scale_l, bits_l);
    rc = kmat_init(&t->a, r_codes, r_codes_len, rank, n, bits_r, panel);
    if (rc == LRQ_OK)
        rc = kmat_init(&t->b, l_codes, l_codes_len, m, rank, bits_l, panel);
    if (rc == LRQ_OK)
        rc = set_scales(&t->a, r_scales, r_scales_len, group);
    if (rc == LRQ_OK)
        rc = set_scales(&t->b, l_scales, l_scales_len, group);
    if (rc == LRQ_OK)
        rc = check_padding(&t->a);
    if (rc == LRQ_OK)
        rc = check_padding(&t->b);
    if (rc == LRQ_OK)
        rc = check_codes(&t->a, r_codes_len, bits_r);
    if (rc == LRQ_OK)
        rc = check_codes(&t->b, l_codes_len, bits_l);
    t->bytes = (uint64_t)r_codes_len + r_scales_len + l_codes_len + l_scales_len;
    return tile_done(out, rc);
}

void lrq_tile_free(lrq_tile *t)
{
    if (t != NULL)
        free(t->c_own);
    free(t);
}

/* ---- scratch ------------------------------------------------------------ */

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

static void *scratch_get(const size_t size, int *cached)
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

static void scratch_put(void *p, const int cached)
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

/* Carves 64-byte aligned arrays out of one block; the first pass (base
 * NULL) only measures. */
typedef struct {
    uint8_t *base;
    size_t used;
    int overflow;
} carver;

static void *carve(carver *cv, const size_t count, const size_t size)
{
    size_t bytes, at = (cv->used + 63) & ~(size_t)63;
    if (__builtin_mul_overflow(count, size, &bytes) || __builtin_add_overflow(at, bytes, &cv->used))
        cv->overflow = 1;
    return cv->base != NULL ? cv->base + at : NULL;
}

/* ---- products ----------------------------------------------------------- */

typedef struct {
    const lrq_tile *t;
    const lrq_kernels *k;
    int transpose, wide, int_a, int_b;
    const float *x; /* the current batch's first vector */
    int64_t xe, xv; /* element and vector strides of x */
    float *y;
    int64_t ye, yv;
    size_t nv; /* vectors in the batch: 1, or up to LRQ_FWD_BATCH on the float forward path */
    float *xin, *tab1, *u, *tab2, *yout, *step1, *step2;
    uint8_t *itab1, *itab2;
} product;

/* The inner vector between the two factors, v_i = mid(u_i): c_i u_i for
 * signcut, the weight of the factor just applied for lplr. */
static float mid_value(const lrq_tile *t, const int transpose, const size_t i, const float u)
{
    if (t->scheme == SCHEME_SIGNCUT)
        return load_f32(t->c + 4 * i) * u;
    return (transpose ? t->wb : t->wa) * u;
}

static float mid(const product *p, const size_t i, const float u)
{
    return mid_value(p->t, p->transpose, i, u);
}

/* out = F v for the rows of tiles [lo, hi) of factor F: byte codes read v
 * itself, sign planes its float or int tables. */
static void apply_factor(const product *p, const lrq_kmat *f, const size_t lo, const size_t hi,
                         const float *v, const float *tab, const int use_int, const uint8_t *itab,
                         const float *step, float *out)
{
    const size_t k16s = f->planes > 0 ? f->kc : f->kc / 4, rows = 16 * lrq_kmat_tiles(f);
    size_t j;

    if (f->planes == 0)
        for (j = 0; j < p->nv; j++)
            p->k->fwd_byte(f, lo, hi, v + j * 16 * k16s, out + j * rows);
    else if (use_int)
        p->k->fwd_sign_int(f, lo, hi, p->wide, itab, step, out);
    else
        p->k->fwd_sign(f, lo, hi, p->nv, tab, 64 * k16s, out, rows);
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
            if (t->b.planes > 0 && !p->int_b)
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

static void transposed_part(void *ctx, const int phase, const int part, const int nparts)
{
    product *p = ctx;
    const lrq_tile *t = p->t;
    const size_t tiles_b = lrq_kmat_tiles(&t->b);
    const size_t units_inner = k16(t->inner), units_n = k16(t->n);
    size_t lo, hi, i;

    switch (phase) {
    case 0: /* z = x, padded to whole row tiles of B */
        lrq_split(tiles_b, part, nparts, &lo, &hi);
        for (i = 16 * lo; i < 16 * hi; i++)
            p->xin[i] = i < t->m ? p->x[(int64_t)i * p->xe] : 0.0f;
        break;
    case 1: /* u = B^T z, v = mid(u) */
        lrq_split(units_inner, part, nparts, &lo, &hi);
        if (hi <= lo)
            break;
        if (t->b.planes > 0)
            p->k->tr_sign(&t->b, lo, hi, p->xin, p->u);
        else
            p->k->tr_byte(&t->b, 4 * lo, 4 * hi, p->xin, p->u);
        for (i = 16 * lo; i < 16 * hi; i++)
            p->u[i] = i < t->inner ? mid(p, i, p->u[i]) : 0.0f;
        break;
    default: /* y = A^T v */
        lrq_split(units_n, part, nparts, &lo, &hi);
        if (hi <= lo)
            break;
        if (t->a.planes > 0)
            p->k->tr_sign(&t->a, lo, hi, p->u, p->yout);
        else
            p->k->tr_byte(&t->a, 4 * lo, 4 * hi, p->u, p->yout);
        for (i = 16 * lo; i < min_z(t->n, 16 * hi); i++)
            p->y[(int64_t)i * p->ye] = t->wa * p->yout[i];
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
    carver cv = {NULL, 0, 0};
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
    p.int_b = fast && t->b.planes > 0;
    ka = k16(t->n);
    ti = k16(t->inner);
    /* Float forward products take the vectors in batches (kernels.h). */
    batch = transpose || fast ? 1 : (size_t)(nvec < LRQ_FWD_BATCH ? nvec : LRQ_FWD_BATCH);
    /* Two passes over the same carving: measure, then place. */
    for (pass = 0; pass < 2; pass++) {
        cv.used = 0;
        if (transpose) {
            p.xin = carve(&cv, 16 * lrq_kmat_tiles(&t->b), sizeof(float));
            p.u = carve(&cv, 16 * ti, sizeof(float));
            p.yout = carve(&cv, 16 * ka, sizeof(float));
        } else {
            p.xin = carve(&cv, batch * 16 * ka, sizeof(float));
            p.tab1 = carve(&cv, p.int_a || t->a.planes == 0 ? 0 : batch * 64 * ka, sizeof(float));
            p.itab1 = carve(&cv, p.int_a ? LRQ_ITAB_BYTES(p.wide) * ka : 0, 1);
            p.step1 = carve(&cv, ka / LRQ_QBLOCK_CHUNKS + 1, sizeof(float));
            p.u = carve(&cv, batch * 16 * ti, sizeof(float));
            p.tab2 = carve(&cv, p.int_b || t->b.planes == 0 ? 0 : batch * 64 * ti, sizeof(float));
            p.itab2 = carve(&cv, p.int_b ? LRQ_ITAB_BYTES(p.wide) * ti : 0, 1);
            p.step2 = carve(&cv, ti / LRQ_QBLOCK_CHUNKS + 1, sizeof(float));
            p.yout = carve(&cv, batch * 16 * lrq_kmat_tiles(&t->b), sizeof(float));
        }
        if (cv.overflow)
            return LRQ_ERR_MEMORY;
        if (pass == 0) {
            block = scratch_get(cv.used > 64 ? cv.used : 64, &cached);
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
        if (transpose)
            lrq_parallel_run(transposed_part, &p, 3, nthreads * LRQ_PARTS_PER_THREAD, nthreads);
        else
            lrq_parallel_run(forward_part, &p, p.int_b ? 4 : 3, nthreads * LRQ_PARTS_PER_THREAD,
                             nthreads);
    }
    scratch_put(block, cached);
    return LRQ_OK;
}

/* ---- decoding ----------------------------------------------------------- */

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
                w[p] = load_u16(a->data + p * a->plane_bytes + word_offset(a, k, j0 / 16, 2));
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
                u = (float)a->data[word_offset(a, k, j / 4, 4) + j % 4] - a->half;
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

static void decode_part(void *ctx, const int phase, const int part, const int nparts)
{
    decoding *d = ctx;
    const lrq_tile *t = d->t;
    const size_t stride = 16 * k16(t->inner), tiles_b = lrq_kmat_tiles(&t->b);
    float *v = (float *)(void *)(d->scratch + (size_t)part * d->part_bytes);
    float *tab = v + DECODE_COLUMNS * stride, *cols = tab + LRQ_FWD_BATCH * 4 * stride;
    const size_t rows = 16 * tiles_b;
    size_t lo, hi, blk, jj, i;

    (void)phase;
    lrq_split(k16(t->n), part, nparts, &lo, &hi);
    for (blk = lo; blk < hi; blk++) {
        const size_t j0 = 16 * blk, nj = min_z(DECODE_COLUMNS, t->n - j0);
        column_inputs(t, j0, nj, v, stride);
        for (jj = 0; jj < nj; jj += LRQ_FWD_BATCH) {
            const size_t nb = min_z(LRQ_FWD_BATCH, nj - jj);
            size_t b;
            for (b = 0; b < nb; b++) {
                const float *vj = v + (jj + b) * stride;
                if (t->b.planes > 0)
                    d->k->tables_f32(vj, stride / 4, tab + b * 4 * stride);
                else
                    d->k->fwd_byte(&t->b, 0, tiles_b, vj, cols + (jj + b) * rows);
            }
            if (t->b.planes > 0)
                d->k->fwd_sign(&t->b, 0, tiles_b, nb, tab, 4 * stride, cols + jj * rows, rows);
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
    decoding d;
    size_t r;
    int cached;
    const int nthreads = lrq_threads_get(), nparts = nthreads * LRQ_PARTS_PER_THREAD;

    if (t == NULL || ld < t->n || (out == NULL && t->m != 0 && t->n != 0))
        return LRQ_ERR_ARGUMENT;
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
    /* Per part: 16 inner vectors, the tables of a batch of them, 16 output columns. */
    d.part_bytes = ((DECODE_COLUMNS + LRQ_FWD_BATCH * 4) * 16 * k16(t->inner) + DECODE_COLUMNS * 16 * lrq_kmat_tiles(&t->b)) *
                   sizeof(float);
    d.part_bytes = (d.part_bytes + 63) & ~(size_t)63;
    d.scratch = scratch_get(d.part_bytes * (size_t)nparts, &cached);
    if (d.scratch == NULL)
        return LRQ_ERR_MEMORY;
    lrq_parallel_run(decode_part, &d, 1, nparts, nthreads);
    scratch_put(d.scratch, cached);
    return LRQ_OK;
}
