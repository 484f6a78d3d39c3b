/* SPDX-License-Identifier: MIT */
/*
 * The tile handle shared by the files of compute/: tiles.c builds and
 * checks it, products.c and decode.c run the kernels on it.
 *
 * Every scheme is "B times (mid times (A times x))": signcut has A = T^T,
 * mid = diag(c), B = S; lplr has A = R, B = L and scalar weights; quant has
 * A = its one factor F, B = the identity (copied through, never a kernel).
 * So one driver serves all three, and the transposed product walks the same
 * two matrices the other way.  Every elementwise step is one IEEE operation per
 * element, identical in every path and for every split.
 */
#ifndef LRQ_COMPUTE_TILE_H
#define LRQ_COMPUTE_TILE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/kernels.h"
#include "lrq.h"

enum { SCHEME_SIGNCUT = 1, SCHEME_LPLR = 2, SCHEME_QUANT = 3 };

struct lrq_tile {
    int scheme;
    size_t m, n, inner; /* A is m x n; inner = w, rank, or m for quant */
    lrq_kmat a;         /* applied first in y = A x: T^T (signcut) or R (lplr) */
    lrq_kmat b;         /* applied second: S or L */
    const uint8_t *c;   /* signcut: w little-endian f32 (borrowed, or c_own) */
    float *c_own;       /* signcut with binary16 c: the converted weights */
    uint8_t *scales_own; /* quant: the binary16 scales code * 2^e_row, §10.3 order */
    uint64_t bytes;     /* bytes of all sections, a measure of the work */
    float wa, wb;       /* the factors' weights (lplr, quant's wa), 1 for signcut */
};

static inline size_t min_z(const size_t a, const size_t b)
{
    return a < b ? a : b;
}

static inline size_t k16(const size_t k)
{
    return k / 16 + (k % 16 != 0);
}

static inline float load_f32(const uint8_t *p)
{
    float f;
    memcpy(&f, p, sizeof f);
    return f;
}

static inline int finite_f32(const float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u & 0x7F800000u) != 0x7F800000u;
}

/* The inner vector between the two factors, v_i = mid(u_i): c_i u_i for
 * signcut, the weight of the factor just applied for lplr. */
static inline float mid_value(const lrq_tile *t, const int transpose, const size_t i, const float u)
{
    if (t->scheme == SCHEME_SIGNCUT)
        return load_f32(t->c + 4 * i) * u;
    return (transpose ? t->wb : t->wa) * u;
}

#endif /* LRQ_COMPUTE_TILE_H */
