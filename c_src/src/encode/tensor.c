/* SPDX-License-Identifier: MIT */
/*
 * The signcut encoder for tensors of order d >= 3 (spec §10.5): greedy
 * rank-one sign terms
 *
 *     A ~ sum_k c_k  s_k^(0) (x) s_k^(1) (x) ... (x) s_k^(d-1),
 *
 * one +-1 vector per mode and term, the tensor analogue of the matrix
 * greedy in signcut.c (and of the seed's tensor extension).
 *
 * One term: all d sign vectors start random (the matrix encoder's
 * generator, signcut.h).  Mode by mode, round robin, the image of mode a,
 *
 *     h[i] = sum over the other indices of R[..., i, ...] * prod_{b != a} s^(b),
 *
 * is computed from the dense remainder R and s^(a) := sign(h); then
 * <R, s^(0) (x) ... (x) s^(d-1)> = |h|_1.  The term is done when every
 * other mode, updated in turn after the last strict increase of |h|_1,
 * fails to increase it.  Its weight c = |h|_1 / N (N = entries) is the
 * least-squares weight of a +-1 rank-one tensor, whose squared norm is N.
 *
 * The remainder is kept dense in float32, C order (the last mode varies
 * fastest), and every term is subtracted at once, in the pass that also
 * sums its squares in float64: the norm is exact (for the stored float32
 * remainder) after every term, so a rel_error target stops at the first
 * term that meets it.  Images are float64: long contiguous runs (the modes
 * after a, at least 64 values) go through the encoder kernels' canonical
 * signed sum, which gives the same bits on every ISA (encoder_kernels.h);
 * everything else is plain C in one fixed order.  The encoder is
 * single-threaded, so neither the ISA nor the thread count can change a
 * bit of its output.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "encode/signcut.h"

/* Below this run length the kernel call costs more than the sum. */
#define KERNEL_RUN_MIN 64
/* Fresh random starts tried when a term finds no positive value although
 * the remainder is not zero (every image exactly zero). */
#define RESTARTS 4

struct lrq_tensor_encoder {
    unsigned order;
    uint64_t dims[LRQ_TENSOR_ORDER_MAX];
    size_t words[LRQ_TENSOR_ORDER_MAX]; /* 64-bit words of a mode's sign vector */
    uint64_t count;                     /* N = prod dims */
    float *r;                           /* the remainder, C order */
    double norm2_a, norm2;
    uint64_t *sign[LRQ_TENSOR_ORDER_MAX]; /* the current term's signs, bit 1 = -1 */
    uint64_t *before, *after;           /* Kronecker bits of the modes before / after a */
    double *image;                      /* the largest dimension */
    uint64_t width, cap;
    float *out_c;
    uint64_t *out_s[LRQ_TENSOR_ORDER_MAX]; /* cap x words[a] per mode */
    uint64_t rng[4];
    int done;
    const lrq_sc_kernels *k;
};

typedef struct lrq_tensor_encoder tenc_t;

static inline unsigned bit_at(const uint64_t *const v, const uint64_t i)
{
    return (unsigned)(v[i >> 6] >> (i & 63) & 1u);
}

/* out = the Kronecker product of the sign vectors of modes [lo, hi), as
 * bits in C order (the last of them varies fastest): bit q is the XOR of
 * the modes' bits at q's multi-index.  Returns its length (1 for none). */
static uint64_t kron_bits(const tenc_t *const e, const unsigned lo, const unsigned hi,
                          uint64_t *const out)
{
    uint64_t len = 1, q, i, j;
    unsigned a;
    out[0] = 0;
    /* Built in place from the last mode back: prefixing mode a repeats the
     * current vector dims[a] times, flipped where s^(a) is -1.  Written
     * from the end so that no bit is overwritten before it is read. */
    for (a = hi; a-- > lo;) {
        const uint64_t n = e->dims[a];
        for (i = n; i-- > 0;) {
            const unsigned flip = bit_at(e->sign[a], i);
            for (j = len; j-- > 0;) {
                q = i * len + j;
                const uint64_t v = (uint64_t)(bit_at(out, j) ^ flip);
                out[q >> 6] = (out[q >> 6] & ~(UINT64_C(1) << (q & 63))) | v << (q & 63);
            }
        }
        len *= n;
    }
    for (q = len; q % 64; q++) /* padding bits zero, for the kernels */
        out[q >> 6] &= ~(UINT64_C(1) << (q & 63));
    return len;
}

/* The image of mode a (module comment) into e->image; returns |image|_1. */
static double image_of(tenc_t *const e, const unsigned a)
{
    const uint64_t n = e->dims[a];
    const uint64_t outer = kron_bits(e, 0, a, e->before);
    const uint64_t inner = kron_bits(e, a + 1, e->order, e->after);
    double total = 0.0;
    uint64_t p, i, q;
    for (i = 0; i < n; i++)
        e->image[i] = 0.0;
    for (p = 0; p < outer; p++) {
        const unsigned flip = bit_at(e->before, p);
        const float *row = e->r + p * n * inner;
        for (i = 0; i < n; i++, row += inner) {
            double z;
            if (inner >= KERNEL_RUN_MIN) {
                z = e->k->signed_sum(row, e->after, (size_t)inner);
            } else {
                z = 0.0;
                for (q = 0; q < inner; q++)
                    z += bit_at(e->after, q) ? -(double)row[q] : (double)row[q];
            }
            e->image[i] += flip ? -z : z;
        }
    }
    for (i = 0; i < n; i++)
        total += fabs(e->image[i]);
    return total;
}

static void draw_signs(tenc_t *const e)
{
    unsigned a;
    size_t w;
    for (a = 0; a < e->order; a++) {
        for (w = 0; w < e->words[a]; w++)
            e->sign[a][w] = lrq_sc_xoshiro_next(e->rng);
        if (e->dims[a] % 64)
            e->sign[a][e->words[a] - 1] &= (UINT64_C(1) << (e->dims[a] % 64)) - 1;
    }
}

/* Round robin over the modes from the current signs; returns the final
 * <R, s^(0) (x) ... (x) s^(d-1)> (-1 if no image was positive). */
static double alternate(tenc_t *const e)
{
    double best = -1.0;
    unsigned a = 0, stale = 0;
    for (;;) {
        const double v = image_of(e, a);
        uint64_t i;
        memset(e->sign[a], 0, e->words[a] * sizeof *e->sign[a]);
        for (i = 0; i < e->dims[a]; i++)
            if (e->image[i] < 0.0)
                e->sign[a][i >> 6] |= UINT64_C(1) << (i & 63);
        if (v > best) {
            best = v;
            stale = 0;
        } else if (++stale == e->order - 1) {
            return best > 0.0 ? best : -1.0;
        }
        a = (a + 1) % e->order;
    }
}

/* R -= c * (the current term), or += when sign < 0; returns the new
 * squared norm, summed in float64 row by row in order. */
static double subtract(tenc_t *const e, const float c)
{
    const unsigned last = e->order - 1;
    const uint64_t n = e->dims[last];
    const uint64_t outer = kron_bits(e, 0, last, e->before);
    double total = 0.0;
    uint64_t p, j;
    for (p = 0; p < outer; p++) {
        float *const row = e->r + p * n;
        const unsigned flip = bit_at(e->before, p);
        double sq = 0.0;
        for (j = 0; j < n; j++) {
            const float v = (flip ^ bit_at(e->sign[last], j)) ? row[j] + c : row[j] - c;
            row[j] = v;
            sq += (double)v * (double)v;
        }
        total += sq;
    }
    return total;
}

static int grow(tenc_t *const e)
{
    uint64_t cap;
    unsigned a;
    float *c;
    if (e->width < e->cap)
        return LRQ_OK;
    if (e->width >= LRQ_DIM_MAX)
        return LRQ_ERR_ARGUMENT;
    cap = e->cap ? e->cap * 2 : 64;
    if (cap > LRQ_DIM_MAX)
        cap = LRQ_DIM_MAX;
    c = (float *)realloc(e->out_c, (size_t)cap * sizeof *c);
    if (c == NULL)
        return LRQ_ERR_MEMORY;
    e->out_c = c;
    for (a = 0; a < e->order; a++) {
        uint64_t *const s = (uint64_t *)realloc(e->out_s[a], (size_t)cap * e->words[a] * sizeof *s);
        if (s == NULL)
            return LRQ_ERR_MEMORY;
        e->out_s[a] = s;
    }
    e->cap = cap;
    return LRQ_OK;
}

static int one_term(tenc_t *const e)
{
    double value = -1.0, norm2;
    float c;
    unsigned a, attempt;
    int rc = grow(e);
    if (rc != LRQ_OK)
        return rc;
    for (attempt = 0; attempt < RESTARTS && !(value > 0.0); attempt++) {
        draw_signs(e);
        value = alternate(e);
    }
    if (!(value > 0.0)) {
        e->done = 1; /* no start found a direction: nothing left to take */
        return LRQ_OK;
    }
    c = (float)(value / (double)e->count);
    if (!isfinite(c) || !(c > 0.0f))
        return LRQ_ERR_ARGUMENT; /* only for values near the float32 limits */
    norm2 = subtract(e, c);
    if (!(norm2 < e->norm2)) {
        /* float32 has nothing finer to give: undo the term and stop. */
        e->norm2 = subtract(e, -c);
        e->done = 1;
        return LRQ_OK;
    }
    e->norm2 = norm2;
    e->out_c[e->width] = c;
    for (a = 0; a < e->order; a++)
        memcpy(e->out_s[a] + e->width * e->words[a], e->sign[a], e->words[a] * sizeof(uint64_t));
    e->width++;
    return LRQ_OK;
}

/* --------------------------------------------------------------- public */

void lrq_tensor_encoder_free(lrq_tensor_encoder *const e)
{
    unsigned a;
    if (e == NULL)
        return;
    for (a = 0; a < LRQ_TENSOR_ORDER_MAX; a++) {
        free(e->sign[a]);
        free(e->out_s[a]);
    }
    free(e->r);
    free(e->before);
    free(e->after);
    free(e->image);
    free(e->out_c);
    free(e);
}

int lrq_tensor_encoder_create(const float *const a, const unsigned order, const uint64_t *const dims,
                              const uint64_t seed, lrq_tensor_encoder **const out)
{
    tenc_t *e;
    uint64_t count = 1, bytes, i, largest = 0, x = seed;
    unsigned m;
    int p, ok = 1;

    if (out == NULL || a == NULL || dims == NULL || order < 3 || order > LRQ_TENSOR_ORDER_MAX)
        return LRQ_ERR_ARGUMENT;
    for (m = 0; m < order; m++) {
        if (dims[m] == 0 || dims[m] > LRQ_DIM_MAX || __builtin_mul_overflow(count, dims[m], &count))
            return LRQ_ERR_ARGUMENT;
        if (dims[m] > largest)
            largest = dims[m];
    }
    if (__builtin_mul_overflow(count, (uint64_t)sizeof(float), &bytes) || bytes > SIZE_MAX / 2)
        return LRQ_ERR_ARGUMENT;
    for (i = 0; i < count; i++)
        if (!isfinite(a[i]))
            return LRQ_ERR_ARGUMENT;
    e = (tenc_t *)calloc(1, sizeof *e);
    if (e == NULL)
        return LRQ_ERR_MEMORY;
    e->order = order;
    e->count = count;
    e->k = lrq_dispatch()->encoder;
    for (m = 0; m < order; m++) {
        e->dims[m] = dims[m];
        e->words[m] = (size_t)((dims[m] + 63) / 64);
        e->sign[m] = (uint64_t *)calloc(e->words[m], sizeof(uint64_t));
        ok = ok && e->sign[m] != NULL;
    }
    e->r = (float *)malloc((size_t)bytes);
    e->before = (uint64_t *)calloc((size_t)(count / 64 + 1), sizeof(uint64_t));
    e->after = (uint64_t *)calloc((size_t)(count / 64 + 1), sizeof(uint64_t));
    e->image = (double *)malloc((size_t)largest * sizeof(double));
    if (!ok || !e->r || !e->before || !e->after || !e->image) {
        lrq_tensor_encoder_free(e);
        return LRQ_ERR_MEMORY;
    }
    memcpy(e->r, a, (size_t)bytes);
    for (p = 0; p < 4; p++)
        e->rng[p] = lrq_sc_splitmix64(&x);
    for (i = 0; i < count; i++)
        e->norm2_a += (double)a[i] * (double)a[i];
    e->norm2 = e->norm2_a;
    e->done = e->norm2_a == 0.0;
    *out = e;
    return LRQ_OK;
}

int lrq_tensor_encoder_run(lrq_tensor_encoder *const e, const uint64_t max_terms,
                           const double rel_error)
{
    double goal;
    uint64_t done = 0;
    int rc = LRQ_OK;
    if (e == NULL || !(rel_error >= 0.0) || rel_error > 1.0)
        return LRQ_ERR_ARGUMENT;
    goal = rel_error > 0.0 ? rel_error * rel_error * e->norm2_a : -1.0;
    while (!e->done && done < max_terms) {
        if (e->norm2 <= goal || e->norm2 == 0.0) {
            e->done = 1;
            break;
        }
        rc = one_term(e);
        if (rc != LRQ_OK)
            break;
        done++;
    }
    return rc;
}

uint64_t lrq_tensor_encoder_width(const lrq_tensor_encoder *const e)
{
    return e ? e->width : 0;
}

int lrq_tensor_encoder_finished(const lrq_tensor_encoder *const e)
{
    return e ? e->done : 1;
}

double lrq_tensor_encoder_input_norm(const lrq_tensor_encoder *const e)
{
    return e ? sqrt(e->norm2_a) : 0.0;
}

double lrq_tensor_encoder_remainder_norm(const lrq_tensor_encoder *const e)
{
    return e ? sqrt(e->norm2 > 0.0 ? e->norm2 : 0.0) : 0.0;
}

int lrq_tensor_encoder_write_c(const lrq_tensor_encoder *const e, uint8_t *const c, const size_t c_len)
{
    uint64_t k;
    if (e == NULL)
        return LRQ_ERR_ARGUMENT;
    if ((uint64_t)c_len != 4 * e->width)
        return LRQ_ERR_BUFFER_SIZE;
    if (e->width && c == NULL)
        return LRQ_ERR_ARGUMENT;
    for (k = 0; k < e->width; k++) {
        uint32_t u;
        memcpy(&u, &e->out_c[k], sizeof u);
        c[4 * k] = (uint8_t)u;
        c[4 * k + 1] = (uint8_t)(u >> 8);
        c[4 * k + 2] = (uint8_t)(u >> 16);
        c[4 * k + 3] = (uint8_t)(u >> 24);
    }
    return LRQ_OK;
}

int lrq_tensor_encoder_write_signs(const lrq_tensor_encoder *const e, const unsigned mode,
                                   const uint64_t panel, uint8_t *const s, const size_t s_len)
{
    uint64_t size, i, k, n, w;
    uint64_t *rows;
    size_t ww;
    int rc;
    if (e == NULL || mode >= e->order)
        return LRQ_ERR_ARGUMENT;
    n = e->dims[mode];
    w = e->width;
    rc = lrq_layout_size(n, w, 1, panel, &size);
    if (rc != LRQ_OK)
        return rc;
    if ((uint64_t)s_len != size)
        return LRQ_ERR_BUFFER_SIZE;
    if (w == 0)
        return LRQ_OK;
    if (s == NULL)
        return LRQ_ERR_ARGUMENT;
    /* Stored by rows (row i: entry i of the mode's vector in every term),
     * kept by term: transpose the bits, as the matrix writer does for S. */
    ww = (size_t)((w + 63) / 64);
    rows = (uint64_t *)calloc((size_t)n * ww, sizeof *rows);
    if (rows == NULL)
        return LRQ_ERR_MEMORY;
    for (k = 0; k < w; k++) {
        const uint64_t *const col = e->out_s[mode] + k * e->words[mode];
        for (i = 0; i < n; i++)
            rows[i * ww + k / 64] |= (uint64_t)bit_at(col, i) << (k & 63);
    }
    rc = lrq_layout_pack_bitrows(rows, ww, n, w, panel, s, s_len);
    free(rows);
    return rc;
}
