/* SPDX-License-Identifier: MIT */
/*
 * Symmetric midrise quantization with one float16 scale per (row, group) and
 * a float32 super-scale (format spec section 10.3), as the lplr encoder uses
 * it; and the quantizer of scheme quant (section 10.7), whose scales become
 * codes under a power of two per row (lrq_quant_fit_coded, at the end).  The C twin of lrq.reference.quant.quantize: the same candidates and
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

/* The clipping ratio of the least squared error for one group's elements
 * row[j0 .. j1): the scale it gives, or 0 for a group of zeros.  Returns
 * LRQ_ERR_ARGUMENT for a value that is not finite. */
static int best_group_scale(const double *const row, const uint64_t j0, const uint64_t j1,
                            const double half, const double top, double *const out)
{
    double peak = 0.0, best_err = INFINITY, best_scale = 0.0;
    uint64_t j;
    int c;

    for (j = j0; j < j1; j++) {
        if (!isfinite(row[j]))
            return LRQ_ERR_ARGUMENT;
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
    *out = best_scale;
    return LRQ_OK;
}

/* Every (row, group)'s best scale (best_group_scale) into best[rows * groups]
 * and their largest into *biggest. */
static int best_scales(const double *const x, const uint64_t rows, const uint64_t k, const uint64_t ld,
                       const uint64_t group, const double half, const double top, double *const best,
                       double *const biggest)
{
    const uint64_t groups = k / group + (k % group != 0);
    uint64_t i, g;

    *biggest = 0.0;
    for (i = 0; i < rows; i++)
        for (g = 0; g < groups; g++) {
            const uint64_t j0 = g * group, j1 = j0 + group < k ? j0 + group : k;
            if (best_group_scale(x + i * ld, j0, j1, half, top, &best[i * groups + g]) != LRQ_OK)
                return LRQ_ERR_ARGUMENT;
            if (best[i * groups + g] > *biggest)
                *biggest = best[i * groups + g];
        }
    return LRQ_OK;
}

static double group_error(const double *const row, const uint64_t j0, const uint64_t j1,
                          const double scale, const double half, const double top)
{
    double err = 0.0;
    uint64_t j;
    for (j = j0; j < j1; j++) {
        const double d = row[j] - scale * (code_of(row[j], scale, half, top) - half);
        err += d * d;
    }
    return err;
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
    if (best_scales(x, rows, k, ld, group, half, top, best, &biggest) != LRQ_OK) {
        free(best);
        return LRQ_ERR_ARGUMENT;
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

/* The smallest e in [-24, 7] with top_code * 2^e >= m (spec §10.7 [QT-4]):
 * the row exponent that lets the row's largest scale take a code. */
static int row_exponent(const double m, const double top_code)
{
    int e;
    if (!(m > 0.0))
        return LRQ_QUANT_EXP_MIN;
    e = (int)ceil(log2(m / top_code));
    while (e > LRQ_QUANT_EXP_MIN && ldexp(top_code, e - 1) >= m)
        e--;
    while (e < LRQ_QUANT_EXP_MAX && ldexp(top_code, e) < m)
        e++;
    return e < LRQ_QUANT_EXP_MIN ? LRQ_QUANT_EXP_MIN : e > LRQ_QUANT_EXP_MAX ? LRQ_QUANT_EXP_MAX : e;
}

int lrq_quant_fit_coded(const double *const x, const uint64_t rows, const uint64_t k, const int bits,
                        const uint64_t group, const int scale_bits, uint8_t *const codes,
                        uint8_t *const scale_codes, int8_t *const exps, float *const sigma)
{
    const double half = ((double)(1u << (bits > 0 && bits <= 8 ? bits : 1)) - 1.0) / 2.0;
    const double top = 2.0 * half;
    const double top_code = (double)((1u << (scale_bits > 0 && scale_bits <= 8 ? scale_bits : 1)) - 1u);
    uint64_t groups, i, g, j, cells;
    double *best;
    double biggest = 0.0, sig;

    if (bits < 1 || bits > 8 || scale_bits < 1 || scale_bits > 8 || group < 1 || rows > LRQ_DIM_MAX ||
        k > LRQ_DIM_MAX || sigma == NULL || __builtin_mul_overflow(rows, k, &cells))
        return LRQ_ERR_ARGUMENT;
    groups = k / group + (k % group != 0);
    if (cells != 0 && (x == NULL || codes == NULL || scale_codes == NULL || exps == NULL))
        return LRQ_ERR_ARGUMENT;
    best = (double *)malloc((size_t)(rows * groups + 1) * sizeof *best);
    if (best == NULL)
        return LRQ_ERR_MEMORY;
    if (best_scales(x, rows, k, k, group, half, top, best, &biggest) != LRQ_OK) {
        free(best);
        return LRQ_ERR_ARGUMENT;
    }
    sig = biggest > 0.0 ? (double)(float)biggest : 1.0;
    for (i = 0; i < rows; i++) {
        const double *const row = x + i * k;
        double row_max = 0.0, step;
        for (g = 0; g < groups; g++)
            if (best[i * groups + g] / sig > row_max)
                row_max = best[i * groups + g] / sig;
        exps[i] = (int8_t)row_exponent(row_max, top_code);
        step = ldexp(1.0, exps[i]);
        for (g = 0; g < groups; g++) {
            const uint64_t j0 = g * group, j1 = j0 + group < k ? j0 + group : k;
            double nearest = round_even(best[i * groups + g] / sig / step), chosen, chosen_err = INFINITY;
            int d;
            nearest = nearest < 0.0 ? 0.0 : nearest > top_code ? top_code : nearest;
            chosen = nearest;
            /* The nearest code, then its neighbours: the rounding of the
             * scale moves the error, and the group decides. */
            for (d = 0; d < 3; d++) {
                double code = nearest + (d == 0 ? 0.0 : d == 1 ? -1.0 : 1.0), err;
                code = code < 0.0 ? 0.0 : code > top_code ? top_code : code;
                err = group_error(row, j0, j1, sig * code * step, half, top);
                if (err < chosen_err) {
                    chosen_err = err;
                    chosen = code;
                }
            }
            scale_codes[i * groups + g] = (uint8_t)chosen;
            for (j = j0; j < j1; j++)
                codes[i * k + j] = (uint8_t)code_of(row[j], sig * chosen * step, half, top);
        }
    }
    free(best);
    *sigma = (float)sig;
    return LRQ_OK;
}
