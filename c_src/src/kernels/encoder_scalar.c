/* SPDX-License-Identifier: MIT */
/*
 * Scalar signcut kernels: the definition every SIMD path reproduces bit for
 * bit (see encoder_internal.h).  Signs are applied by XOR-ing the IEEE sign
 * bit, never by multiplying, and a - b is used where the contract says
 * "add the negation": IEEE defines them as the same operation.
 */
#include <math.h>
#include <string.h>

#include "common/encoder_kernels.h"

static inline unsigned bit_at(const uint64_t *const bits, const size_t i)
{
    return (unsigned)(bits[i >> 6] >> (i & 63)) & 1u;
}

/* Elements in cache-sized pieces: a piece of out stays in L1 while every
 * flipped row streams through it, so each row is read once, contiguously. */
#define PIECE 4096

static void flip_update(float *const out, const size_t len, const int16_t *const rows,
                        const size_t ld, const uint32_t *const idx,
                        const float *const scale, const size_t count)
{
    size_t i0, q, i;
    for (i0 = 0; i0 < len; i0 += PIECE) {
        const size_t i1 = len - i0 < PIECE ? len : i0 + PIECE;
        for (q = 0; q < count; q++) {
            const int16_t *const row = rows + (size_t)idx[q] * ld;
            const float s = scale[q];
            for (i = i0; i < i1; i++)
                out[i] += (float)row[i] * s;
        }
    }
}

static float max_abs(const float *const row, const size_t len)
{
    float best = 0.0f;
    size_t j;
    for (j = 0; j < len; j++)
        if (fabsf(row[j]) > best)
            best = fabsf(row[j]);
    return best;
}

/* Round half to even for |v| < 2^22: adding and subtracting 1.5 * 2^23
 * leaves no fraction bits (IEEE semantics; no fast-math anywhere). */
static void to_fixed(const float *const row, const size_t len, const int shift, int16_t *const out)
{
    const float scale = lrq_sc_pow2(shift), magic = 12582912.0f;
    size_t j;
    for (j = 0; j < len; j++)
        out[j] = (int16_t)((row[j] * scale + magic) - magic);
}

static inline float block_sum(const uint32_t x, const lrq_sc_table *const tab, const unsigned groups)
{
    float acc = 0.0f;
    unsigned g;
    for (g = 0; g < groups; g++)
        acc += tab[g][x >> (4 * g) & 15u];
    return acc;
}

static void block_correct(float *const out, const size_t len, const uint32_t *const pat,
                          const lrq_sc_table *const tab, const unsigned groups)
{
    size_t i;
    for (i = 0; i < len; i++)
        out[i] -= block_sum(pat[i], tab, groups);
}

static void sub_signed(float *const out, const size_t len, const uint64_t *const bits, const float a)
{
    size_t i;
    for (i = 0; i < len; i++)
        out[i] -= bit_at(bits, i) ? -a : a;
}

static void sign_bits(const float *x, size_t len, uint64_t *bits);

static double sum_abs(const float *const x, const size_t len, uint64_t *const bits)
{
    double p[16] = {0};
    size_t i;
    for (i = 0; i < len; i++)
        p[i & 15] += fabs((double)x[i]);
    if (bits != NULL)
        sign_bits(x, len, bits);
    return lrq_sc_combine16(p);
}

static double signed_sum(const float *const x, const uint64_t *const bits, const size_t len)
{
    double p[16] = {0};
    size_t i;
    for (i = 0; i < len; i++) {
        const double v = (double)x[i];
        p[i & 15] += bit_at(bits, i) ? -v : v;
    }
    return lrq_sc_combine16(p);
}

static double block_row(float *const row, const size_t len, const uint32_t rowpat,
                        const uint32_t *const colpat, const lrq_sc_table *const tab,
                        const unsigned groups, const int mode)
{
    double p[16] = {0};
    size_t j;
    for (j = 0; j < len; j++) {
        const float v = row[j] - block_sum(rowpat ^ colpat[j], tab, groups);
        if (mode & LRQ_SC_WRITE)
            row[j] = v;
        if (mode & LRQ_SC_NORM)
            p[j & 15] += (double)v * (double)v;
    }
    return lrq_sc_combine16(p);
}

static void multi_row(const float *const row, const size_t len, const uint64_t *const vecs,
                             const size_t words, const unsigned nk, float *const out)
{
    unsigned k;
    size_t j;
    for (k = 0; k < nk; k++) {
        float p[16] = {0};
        const uint64_t *const bits = vecs + k * words;
        for (j = 0; j < len; j++)
            p[j & 15] += bit_at(bits, j) ? -row[j] : row[j];
        out[k] = 0.5f * lrq_sc_combine16f(p);
    }
}

static void sign_bits(const float *const x, const size_t len, uint64_t *const bits)
{
    size_t i;
    memset(bits, 0, ((len + 63) / 64) * sizeof *bits);
    for (i = 0; i < len; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        bits[i >> 6] |= (uint64_t)(u >> 31) << (i & 63);
    }
}

static uint64_t count_differ(const uint64_t *const a, const uint64_t *const b,
                             const uint64_t *const f, const size_t words)
{
    return lrq_sc_count_differ_body(a, b, f, words);
}

static void multi_signed_sum(const float *const rows, const size_t ld, const unsigned nrows,
                             const size_t len, const uint64_t *const vecs, const size_t words,
                             const unsigned nk, float *const out, const size_t out_ld)
{
    unsigned r;
    for (r = 0; r < nrows; r++)
        multi_row(rows + r * ld, len, vecs, words, nk, out + r * out_ld);
}

const lrq_sc_kernels lrq_sc_kernels_scalar = {
    flip_update, max_abs, to_fixed, block_correct, sub_signed, sum_abs, signed_sum, block_row, multi_signed_sum, sign_bits,
    count_differ,
};
