/* SPDX-License-Identifier: MIT */
/*
 * The interface between the signcut encoder (encode/) and its kernels of
 * each instruction set (kernels/encoder_<isa>.c).  Not part of lrq.h.
 *
 * Determinism contract.  Every kernel here produces bit-identical results on
 * every ISA.  Element-wise kernels perform, for each output element, the same
 * sequence of IEEE single operations (adds of values whose sign bit was
 * flipped; never a fused multiply-add, except by +-1.0, which is exact and
 * rounds as the add of +-x does) in the same order, so vectorizing
 * across elements or splitting elements between threads cannot change a
 * bit.  Reductions use one canonical structure, defined by the scalar code
 * and emulated lane for lane by the SIMD code:
 *
 *   16 float64 partial sums p[0..15]; element i goes to p[i mod 16], added
 *   in ascending i; then p[l] += p[l+8] (l < 8), p[l] += p[l+4] (l < 4),
 *   p[l] += p[l+2] (l < 2), p[0] += p[1]; the result is p[0].
 *
 * Elements past the end are never added (SIMD tails add +0.0, which leaves
 * a partial sum that started at +0.0 unchanged bit for bit).
 */
#ifndef LRQ_ENCODER_KERNELS_H
#define LRQ_ENCODER_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "common/internal.h"

/* Cuts per block: the dense remainder is updated once per block.  It is part
 * of the algorithm's definition (images are re-synchronized at each block
 * boundary), so changing it changes the bytes an encoder writes. */
#define LRQ_SC_BLOCK 32

/*
 * Signed sums over the open block, sum_k (bit k of x ? -w_k : w_k) for a
 * block pattern x (bit k = the sign in cut k), are evaluated through nibble
 * tables: tab[g][b] is the sum, from +0.0f in ascending k, over the cuts k
 * of nibble g (k = 4g .. 4g+3, k < nk) of (bit k-4g of b ? -w_k : w_k); the
 * signed sum is then acc = +0.0f; acc += tab[g][(x >> 4g) & 15] for
 * g = 0 .. groups-1 with groups = ceil(nk / 4).  lrq_sc_tables() builds the
 * tables once, in scalar code, for every ISA.
 */
typedef float lrq_sc_table[16];

/* block_row() modes, or-ed. */
#define LRQ_SC_WRITE 1
#define LRQ_SC_NORM 2

typedef struct {
    /* out[i] += (float)rows[idx[q]*ld + i] * scale[q] for q < count
     * ascending, i in [0, len): the int16 fixed-point rows of lrq_sc_fixed
     * times their signed scales (powers of two, so each product is exact and
     * no contraction into an FMA can change it). */
    void (*flip_update)(float *out, size_t len, const int16_t *rows, size_t ld,
                        const uint32_t *idx, const float *scale, size_t count);
    /* max over j < len of |row[j]| (order-free: max is exact). */
    float (*max_abs)(const float *row, size_t len);
    /* out[j] = round-half-even(row[j] * 2^shift) as int16, j < len; the
     * caller picks shift so that every |value| stays within 2^14. */
    void (*to_fixed)(const float *row, size_t len, int shift, int16_t *out);
    /* out[i] -= signed block sum of pat[i] (tables above), i < len. */
    void (*block_correct)(float *out, size_t len, const uint32_t *pat,
                          const lrq_sc_table *tab, unsigned groups);
    /* out[i] -= (bit i of bits ? -a : a), i < len. */
    void (*sub_signed)(float *out, size_t len, const uint64_t *bits, float a);
    /* Canonical sum of |x[i]| in float64; if bits is not NULL, also what
     * sign_bits(x, len, bits) writes (one pass for both). */
    double (*sum_abs)(const float *x, size_t len, uint64_t *bits);
    /* Canonical sum of (bit i of bits ? -x[i] : x[i]) in float64. */
    double (*signed_sum)(const float *x, const uint64_t *bits, size_t len);
    /* One row of the block update: for j < len, with acc the signed block
     * sum of (rowpat ^ colpat[j]), v = row[j] - acc, row[j] = v if mode
     * has LRQ_SC_WRITE.  Returns the canonical float64 sum of v*v (each
     * square exact) if mode has LRQ_SC_NORM, else 0. */
    double (*block_row)(float *row, size_t len, uint32_t rowpat, const uint32_t *colpat,
                        const lrq_sc_table *tab, unsigned groups, int mode);
    /* For each of nrows rows (row r at rows + r*ld) and k < nk:
     * out[r*out_ld + k] = 0.5f * the float32 canonical sum of (bit j of
     * vecs[k*words] ? -row[j] : row[j]) over j < len: 16 float32 partials
     * (lane j mod 16, ascending j) combined by the tree of
     * the canonical reduction, in float32.  The images of a block's random
     * starts.  (A multiply-add by +-1 is exact, so it may stand for the
     * add of +-row[j].) */
    void (*multi_signed_sum)(const float *rows, size_t ld, unsigned nrows, size_t len,
                             const uint64_t *vecs, size_t words, unsigned nk, float *out,
                             size_t out_ld);
    /* bits[i/64] bit i%64 = IEEE sign bit of x[i]; the words are overwritten
     * entirely, bits past len are 0. */
    void (*sign_bits)(const float *x, size_t len, uint64_t *bits);
    /* sum over w < words of popcount((a[w] ^ b[w]) & f[w]). */
    uint64_t (*count_differ)(const uint64_t *a, const uint64_t *b, const uint64_t *f,
                             size_t words);
} lrq_sc_kernels;

/* The shift of a row's int16 copy: the largest with max|row| * 2^shift <
 * 2^14 (so rounding cannot overflow), clamped so that 2^shift and 2^-shift
 * are normal floats.  Relative precision is 2^-15 of the row's largest
 * entry, about 2^-13 of a typical one: images built from these rows steer
 * sign decisions only, and stay within ~1e-4 of exact. */
static inline int lrq_sc_shift(const float peak)
{
    int e;
    if (!(peak > 0.0f))
        return 0;
    (void)__builtin_frexpf(peak, &e); /* peak < 2^e */
    e = 14 - e;
    return e > 100 ? 100 : e < -100 ? -100 : e;
}

/* 2^k as a float, for |k| <= 126. */
static inline float lrq_sc_pow2(const int k)
{
    const uint32_t u = (uint32_t)(127 + k) << 23;
    float f;
    __builtin_memcpy(&f, &u, sizeof f);
    return f;
}

/* The nibble tables of weights w[0 .. nk) (nk <= 32); returns groups.
 * Built a term at a time, doubling the table: entry b after term j is the
 * entry b mod 2^j before it plus the signed weight, which is exactly the
 * sum "from +0.0f in ascending k" defined above (every entry goes through
 * the same sequence of rounded partial sums), with 30 adds per group
 * instead of 64 and no branch on the bits. */
static inline unsigned lrq_sc_tables(const float *const w, const unsigned nk, lrq_sc_table *const tab)
{
    const unsigned groups = (nk + 3) / 4;
    unsigned g, b, j;
    for (g = 0; g < groups; g++) {
        float *const t = tab[g];
        t[0] = 0.0f;
        for (j = 0; j < 4; j++) {
            const unsigned k = 4 * g + j, size = 1u << j;
            for (b = 0; b < size; b++) {
                if (k < nk) {
                    t[b + size] = t[b] - w[k]; /* a + (-w) and a - w are one IEEE operation */
                    t[b] = t[b] + w[k];
                } else {
                    t[b + size] = t[b]; /* terms past nk add nothing */
                }
            }
        }
    }
    return groups;
}

#endif /* LRQ_ENCODER_KERNELS_H */
