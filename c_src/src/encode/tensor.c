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
 * generator, signcut.h).  Its value <R, s^(0) (x) ... (x) s^(d-1)> is then
 * raised by alternating sign vectors, each set to the signs of the
 * remainder contracted with all the others (its image h, so the value
 * becomes |h|_1), while that strictly increases.  The modes are taken in
 * neighbouring pairs, (0,1), (1,2), ..., (d-1,0) round robin: one pass over
 * R contracts it with every vector but the pair's into a small pair matrix
 * Y (n_a x n_b), on which the pair alternates as the matrix greedy does,
 * s_a = sign(Y s_b), s_b = sign(Y^T s_a), images moved by the rows of the
 * flipped coordinates only.  A pass over R therefore buys a whole matrix
 * alternation instead of one mode's update.  The term is done when d - 1
 * pairs in a row (which touch every mode) bring no strict increase: every
 * vector is then the signs of its image.  Its weight c = value / N
 * (N = entries) is the least-squares weight of a +-1 rank-one tensor,
 * whose squared norm is N.
 *
 * The remainder is kept dense in float32, C order (the last mode varies
 * fastest), and every term is subtracted at once, in the pass that also
 * sums its squares in float64: the norm is exact (for the stored float32
 * remainder) after every term, so a rel_error target stops at the first
 * term that meets it.  Contractions and images are float64: a long
 * contiguous run (the last mode, at least 64 values) goes through the
 * encoder kernels' canonical signed sum, which gives the same bits on every
 * ISA (encoder_kernels.h); everything else is plain C with one fixed order
 * of operations per value (element-wise loops that a compiler may
 * vectorize without changing a bit).  The encoder is
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
    uint64_t *before;                   /* Kronecker bits of the leading modes (subtract) */
    double *image, *image2;             /* the images of a pair, the largest dimension each */
    uint64_t *scratch;                  /* new signs of one mode */
    double *work[2];                    /* partial contractions of the remainder */
    float *pattern;                     /* the term over the last two modes */
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

/* out[p*Q + q] = sum_i (bit i of sign ? -1 : 1) * in[(p*n + i)*Q + q]: the
 * contraction of the middle mode of a P x n x Q array with a sign vector.
 * Each output is a sum in ascending i (float64), whatever the shape; with
 * Q > 1 the loop runs across q, element by element, which a compiler may
 * vectorize without changing a bit. */
#define CONTRACT_BODY(T)                                                                       \
    uint64_t p, i, q;                                                                          \
    if (Q == 1) {                                                                              \
        for (p = 0; p < P; p++) {                                                              \
            const T *const row = in + p * n;                                                   \
            double z = 0.0;                                                                    \
            for (i = 0; i < n; i++)                                                            \
                z += bit_at(sign, i) ? -(double)row[i] : (double)row[i];                       \
            out[p] = z;                                                                        \
        }                                                                                      \
        return;                                                                                \
    }                                                                                          \
    for (p = 0; p < P; p++) {                                                                  \
        double *const o = out + p * Q;                                                         \
        const T *row = in + p * n * Q;                                                         \
        /* 0 + x is x (up to the sign of a zero, which no decision reads) */                  \
        if (bit_at(sign, 0))                                                                   \
            for (q = 0; q < Q; q++)                                                            \
                o[q] = -(double)row[q];                                                        \
        else                                                                                   \
            for (q = 0; q < Q; q++)                                                            \
                o[q] = (double)row[q];                                                         \
        for (i = 1, row += Q; i < n; i++, row += Q) {                                          \
            if (bit_at(sign, i))                                                               \
                for (q = 0; q < Q; q++)                                                        \
                    o[q] -= (double)row[q];                                                    \
            else                                                                               \
                for (q = 0; q < Q; q++)                                                        \
                    o[q] += (double)row[q];                                                    \
        }                                                                                      \
    }

static void contract_f64(const double *const in, const uint64_t P, const uint64_t n, const uint64_t Q,
                         const uint64_t *const sign, double *const out)
{
    CONTRACT_BODY(double)
}

/* The first contraction reads the float32 remainder.  A contiguous run
 * (the last mode, Q == 1) of at least KERNEL_RUN_MIN values goes through the
 * encoder kernels' canonical signed sum, identical on every ISA. */
static void contract_f32(const tenc_t *const e, const float *const in, const uint64_t P, const uint64_t n,
                         const uint64_t Q, const uint64_t *const sign, double *const out)
{
    if (Q == 1 && n >= KERNEL_RUN_MIN) {
        uint64_t p;
        for (p = 0; p < P; p++)
            out[p] = e->k->signed_sum(in + p * n, sign, (size_t)n);
        return;
    }
    {
        CONTRACT_BODY(float)
    }
}

#undef CONTRACT_BODY

/* y (dims[a] x dims[b], a < b, row-major) = the remainder contracted with
 * the current signs of every mode but a and b.  The largest of those modes
 * goes first (its pass over the remainder shrinks the data most), the rest
 * in order on the float64 partial results. */
static double *pair_matrix(tenc_t *const e, const unsigned a, const unsigned b)
{
    uint64_t dims[LRQ_TENSOR_ORDER_MAX];
    unsigned modes[LRQ_TENSOR_ORDER_MAX], order = e->order, m, j, first = LRQ_TENSOR_ORDER_MAX;
    double *cur = NULL, *next = e->work[0];
    for (m = 0; m < order; m++) {
        dims[m] = e->dims[m];
        modes[m] = m;
        if (m != a && m != b && (first == LRQ_TENSOR_ORDER_MAX || dims[m] > dims[first]))
            first = m;
    }
    for (;;) {
        /* the mode to contract now: `first` on the remainder, then the
         * lowest one left that is not a or b */
        unsigned at = order;
        uint64_t P = 1, Q = 1;
        for (j = 0; j < order; j++)
            if (cur == NULL ? modes[j] == first : (modes[j] != a && modes[j] != b)) {
                at = j;
                break;
            }
        if (at == order)
            break;
        for (j = 0; j < at; j++)
            P *= dims[j];
        for (j = at + 1; j < order; j++)
            Q *= dims[j];
        if (cur == NULL)
            contract_f32(e, e->r, P, dims[at], Q, e->sign[modes[at]], next);
        else
            contract_f64(cur, P, dims[at], Q, e->sign[modes[at]], next);
        for (j = at; j + 1 < order; j++) {
            dims[j] = dims[j + 1];
            modes[j] = modes[j + 1];
        }
        order--;
        cur = next;
        next = cur == e->work[0] ? e->work[1] : e->work[0];
    }
    return cur;
}

/* Sets s (n bits) to the signs of h and returns |h|_1. */
static double take_signs(const double *const h, const uint64_t n, uint64_t *const s, const size_t words)
{
    double total = 0.0;
    uint64_t i;
    memset(s, 0, words * sizeof *s);
    for (i = 0; i < n; i++) {
        total += fabs(h[i]);
        if (h[i] < 0.0)
            s[i >> 6] |= UINT64_C(1) << (i & 63);
    }
    return total;
}

/* out (cols) = sum_r (bit r of sign ? -1 : 1) * m[r, :], m rows x cols
 * row-major: the rows added in ascending r, element by element. */
static void signed_rows(const double *const m, const uint64_t rows, const uint64_t cols,
                        const uint64_t *const sign, double *const out)
{
    uint64_t r, j;
    for (j = 0; j < cols; j++)
        out[j] = 0.0;
    for (r = 0; r < rows; r++) {
        const double *const row = m + r * cols;
        if (bit_at(sign, r))
            for (j = 0; j < cols; j++)
                out[j] -= row[j];
        else
            for (j = 0; j < cols; j++)
                out[j] += row[j];
    }
}

/* The signs of one side move from `old` to `now` (n bits): the other side's
 * image h (cols) gains 2 * (new sign) * m[i, :] for every flipped i. */
static void flip_rows(const double *const m, const uint64_t cols, const uint64_t *const old,
                      const uint64_t *const now, const size_t words, double *const h)
{
    size_t w;
    uint64_t j;
    for (w = 0; w < words; w++) {
        uint64_t f = old[w] ^ now[w];
        while (f) {
            const unsigned bit = (unsigned)__builtin_ctzll(f);
            const uint64_t i = (uint64_t)w * 64 + bit;
            const double *const row = m + i * cols;
            if (now[w] >> bit & 1u)
                for (j = 0; j < cols; j++)
                    h[j] -= 2.0 * row[j];
            else
                for (j = 0; j < cols; j++)
                    h[j] += 2.0 * row[j];
            f &= f - 1;
        }
    }
}

/* Alternates the signs of modes a and b (a < b) on their pair matrix y,
 * s_a = sign(y s_b) and s_b = sign(y^T s_a), until both in a row bring no
 * strict increase of <R, term> above `best`; returns the new best.  As in
 * the matrix encoder, the images are computed once and then moved by the
 * rows of the coordinates that flip (y's for h_b, its transpose's for h_a),
 * in float64. */
static double alternate_pair(tenc_t *const e, const unsigned a, const unsigned b, const double *const y,
                             double *const yt, double best)
{
    const uint64_t na = e->dims[a], nb = e->dims[b];
    double *const ha = e->image, *const hb = e->image2;
    unsigned stale = 0, side = 0;
    uint64_t i, j;
    for (i = 0; i < na; i++)
        for (j = 0; j < nb; j++)
            yt[j * na + i] = y[i * nb + j];
    signed_rows(yt, nb, na, e->sign[b], ha); /* y s_b */
    signed_rows(y, na, nb, e->sign[a], hb);  /* y^T s_a */
    while (stale < 2) {
        double v;
        if (side == 0) {
            v = take_signs(ha, na, e->scratch, e->words[a]);
            flip_rows(y, nb, e->sign[a], e->scratch, e->words[a], hb);
            memcpy(e->sign[a], e->scratch, e->words[a] * sizeof *e->scratch);
        } else {
            v = take_signs(hb, nb, e->scratch, e->words[b]);
            flip_rows(yt, na, e->sign[b], e->scratch, e->words[b], ha);
            memcpy(e->sign[b], e->scratch, e->words[b] * sizeof *e->scratch);
        }
        if (v > best) {
            best = v;
            stale = 0;
        } else {
            stale++;
        }
        side ^= 1u;
    }
    return best;
}

/* The term from the current (random) signs: pairs of neighbouring modes,
 * (0,1), (1,2), ..., (d-1,0) round robin, each alternated on its pair
 * matrix, until d - 1 pairs in a row (which touch every mode) bring no
 * strict increase.  Returns <R, term>, or -1 if no image was positive. */
static double alternate(tenc_t *const e)
{
    double best = -1.0;
    unsigned k = 0, stale = 0;
    for (;;) {
        const unsigned x = k, z = (k + 1) % e->order;
        const unsigned a = x < z ? x : z, b = x < z ? z : x;
        const double before = best;
        const double *const y = pair_matrix(e, a, b);
        best = alternate_pair(e, a, b, y, y == e->work[0] ? e->work[1] : e->work[0], best);
        if (best > before)
            stale = 0;
        else if (++stale == e->order - 1)
            return best > 0.0 ? best : -1.0;
        k = (k + 1) % e->order;
    }
}

/* The sum of squares of x[0 .. n), in float64, four partial sums in a fixed
 * order (so the same bits everywhere). */
static double sum_squares(const float *const x, const uint64_t n)
{
    double p[4] = {0.0, 0.0, 0.0, 0.0};
    uint64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        p[0] += (double)x[i] * (double)x[i];
        p[1] += (double)x[i + 1] * (double)x[i + 1];
        p[2] += (double)x[i + 2] * (double)x[i + 2];
        p[3] += (double)x[i + 3] * (double)x[i + 3];
    }
    for (; i < n; i++)
        p[0] += (double)x[i] * (double)x[i];
    return (p[0] + p[1]) + (p[2] + p[3]);
}

/* R -= c * (the current term); returns the new squared norm.  The term is
 * +-c times a block pattern over the last two modes, signed by the
 * Kronecker bits of the others, so the update runs over contiguous blocks. */
static double subtract(tenc_t *const e, const float c)
{
    const unsigned d = e->order;
    const uint64_t n1 = e->dims[d - 2], n2 = e->dims[d - 1], block = n1 * n2;
    const uint64_t outer = kron_bits(e, 0, d - 2, e->before);
    double total = 0.0;
    uint64_t p, i, j;
    for (i = 0; i < n1; i++)
        for (j = 0; j < n2; j++)
            e->pattern[i * n2 + j] = (bit_at(e->sign[d - 2], i) ^ bit_at(e->sign[d - 1], j)) ? -c : c;
    for (p = 0; p < outer; p++) {
        float *const row = e->r + p * block;
        if (bit_at(e->before, p))
            for (j = 0; j < block; j++)
                row[j] += e->pattern[j];
        else
            for (j = 0; j < block; j++)
                row[j] -= e->pattern[j];
        total += sum_squares(row, block);
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
    free(e->image);
    free(e->image2);
    free(e->scratch);
    free(e->work[0]);
    free(e->work[1]);
    free(e->pattern);
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
    /* The first contraction of a pair matrix removes the largest mode
     * outside the pair, so N / (the smallest such mode) doubles suffice. */
    {
        uint64_t work = 1, k, l, q;
        for (k = 0; k < order; k++) {
            l = (k + 1) % order;
            uint64_t big = 0;
            for (q = 0; q < order; q++)
                if (q != k && q != l && dims[q] > big)
                    big = dims[q];
            if (count / big > work)
                work = count / big;
        }
        e->work[0] = (double *)malloc((size_t)work * sizeof(double));
        e->work[1] = (double *)malloc((size_t)work * sizeof(double));
    }
    e->r = (float *)malloc((size_t)bytes);
    e->before = (uint64_t *)calloc((size_t)(count / 64 + 1), sizeof(uint64_t));
    e->image = (double *)malloc((size_t)largest * sizeof(double));
    e->image2 = (double *)malloc((size_t)largest * sizeof(double));
    e->scratch = (uint64_t *)calloc((size_t)((largest + 63) / 64), sizeof(uint64_t));
    e->pattern = (float *)malloc((size_t)(dims[order - 2] * dims[order - 1]) * sizeof(float));
    if (!ok || !e->r || !e->before || !e->image || !e->image2 || !e->scratch || !e->work[0] || !e->work[1] || !e->pattern) {
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
    for (k = 0; k < e->width; k++)
        lrq_sc_put_f32le(c + 4 * k, e->out_c[k]);
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
