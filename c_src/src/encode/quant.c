/* SPDX-License-Identifier: MIT */
/*
 * Symmetric midrise quantization with one float16 scale per (row, group) and
 * a float32 super-scale (format spec section 10.3), as the lplr encoder uses
 * it.  The C twin of lrq.reference.quant.quantize: the same candidates and
 * formulas, in float64, one (row, group) at a time so nothing larger than a
 * group is ever materialized.
 *
 * For each (row, group) the scale is chosen among 13 clipping ratios
 * 0.1, 0.175, ..., 1.0 of the group's largest magnitude (mapped onto the top
 * level) by the least squared error over the group's real elements; the
 * scales are then divided by sigma (their maximum, rounded to float32),
 * rounded to float16, and the codes are recomputed against the scale a
 * decoder will actually use.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lrq.h"
#include "common/internal.h"

#define RATIOS 13

/* Round to nearest, ties to even (numpy.rint), for |v| < 2^51: adding and
 * subtracting 1.5 * 2^52 leaves no fraction bits.  Much faster than a libm
 * nearbyint() call on a baseline x86-64 build, and exact under IEEE
 * semantics (the build never enables fast-math). */
static inline double round_even(const double v)
{
    const double magic = 6755399441055744.0; /* 0x1.8p52 */
    return (v + magic) - magic;
}

static double code_of(const double x, const double scale, const double half, const double top)
{
    double q;
    if (!(scale > 0.0))
        return 0.0;
    /* |x| <= peak and scale >= 0.1 * peak / half, so |q| <= 10 * half + half. */
    q = round_even(x / scale + half);
    return q < 0.0 ? 0.0 : q > top ? top : q;
}

int lrq_quant_fit(const double *const x, const uint64_t rows, const uint64_t k, const uint64_t ld,
                  const int bits, const uint64_t group, uint8_t *const codes,
                  uint16_t *const scales, float *const sigma)
{
    const double half = ((double)(1u << (bits > 0 && bits <= 8 ? bits : 1)) - 1.0) / 2.0;
    const double top = 2.0 * half;
    uint64_t groups, i, g, j, cells;
    double *best;
    double biggest = 0.0, sig;

    if (bits < 1 || bits > 8 || group < 1 || rows > LRQ_DIM_MAX || k > LRQ_DIM_MAX || ld < k ||
        sigma == NULL || __builtin_mul_overflow(rows, k, &cells))
        return LRQ_ERR_ARGUMENT;
    groups = k / group + (k % group != 0);
    if (cells != 0 && (x == NULL || codes == NULL || scales == NULL))
        return LRQ_ERR_ARGUMENT;
    best = (double *)malloc((size_t)(rows * groups + 1) * sizeof *best);
    if (best == NULL)
        return LRQ_ERR_MEMORY;
    for (i = 0; i < rows; i++) {
        const double *const row = x + i * ld;
        for (g = 0; g < groups; g++) {
            const uint64_t j0 = g * group, j1 = j0 + group < k ? j0 + group : k;
            double peak = 0.0, best_err = INFINITY, best_scale = 0.0;
            int c;
            for (j = j0; j < j1; j++) {
                if (!isfinite(row[j])) {
                    free(best);
                    return LRQ_ERR_ARGUMENT;
                }
                if (fabs(row[j]) > peak)
                    peak = fabs(row[j]);
            }
            for (c = 0; c < RATIOS; c++) {
                /* As numpy.linspace(0.1, 1.0, 13) computes them. */
                const double ratio = c == RATIOS - 1 ? 1.0 : (double)c * (0.9 / (RATIOS - 1)) + 0.1;
                const double scale = ratio * peak / half;
                double err = 0.0;
                for (j = j0; j < j1; j++) {
                    const double d = row[j] - scale * (code_of(row[j], scale, half, top) - half);
                    err += d * d;
                }
                if (err < best_err) {
                    best_err = err;
                    best_scale = scale;
                }
            }
            best[i * groups + g] = best_scale;
            if (best_scale > biggest)
                biggest = best_scale;
        }
    }
    sig = biggest > 0.0 ? (double)(float)biggest : 1.0;
    for (i = 0; i < rows; i++) {
        const double *const row = x + i * ld;
        for (g = 0; g < groups; g++) {
            const uint64_t j0 = g * group, j1 = j0 + group < k ? j0 + group : k;
            const uint16_t h = lrq_half_from_double(best[i * groups + g] / sig);
            const double effective = sig * (double)lrq_half_to_float(h);
            scales[i * groups + g] = h;
            for (j = j0; j < j1; j++)
                codes[i * k + j] = (uint8_t)code_of(row[j], effective, half, top);
        }
    }
    free(best);
    *sigma = (float)sig;
    return LRQ_OK;
}
