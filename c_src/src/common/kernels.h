/* SPDX-License-Identifier: MIT */
/*
 * The interface between the products (compute/) and the matrix-vector
 * kernels of each instruction set (kernels/products_<isa>.c), and the one
 * contract that makes their results equal.
 *
 * Bit-identical results across instruction sets and thread counts are not a
 * property of the compiler: they hold because every path evaluates the same
 * floating-point expression tree for every output element, and only integer
 * or exact operations (bit transposes, table look-ups, sign flips, scaling
 * by powers of two, f16 -> f32 widening) are allowed to differ.  The trees,
 * written once in kernels_body.h and instantiated per ISA, are:
 *
 *   Tables.  For each group j of 4 input values x[4j..4j+3] and each index
 *   0 <= i < 16, T_j[i] = ((a0 + a1) + a2) + a3 with a_b = -x[4j+b] if bit b
 *   of i is set, else +x[4j+b].  (A set bit means -1, as in the format.)
 *
 *   Sign matrix, y = X v.  Per row r and chunk c (16 elements), with w the
 *   row's u16 word and n_q = bits 4q..4q+3 of w, the chunk sum of one plane
 *   is cs = (T_{4c}[n_0] + T_{4c+1}[n_1]) + (T_{4c+2}[n_2] + T_{4c+3}[n_3]).
 *   Bit-planes are combined from the top plane down, s = (s + s) + cs_p
 *   (Horner; doubling is exact).  Chunks are summed in order into acc, which
 *   starts at +0 in every *segment* (the chunks of one panel that also share
 *   one scale group), and each segment ends with y = y + acc, or
 *   y = y + scale * acc when the matrix has scales.  y starts at +0.
 *
 *   Sign matrix, y = X^T z (the transposed direction).  Output k belongs to
 *   exactly one chunk c.  For each row tile t in order, the input is
 *   z'_i = z_i (or z_i * scale[i][group of c]) for the tile's 16 rows, tables
 *   are built from z' as above, the tile's 16x16 bit block for chunk c is
 *   transposed so that output k sees a 16-bit word over the tile's rows, the
 *   block sum s is formed exactly as the chunk sum above, and y_k = y_k + s.
 *
 *   Byte matrix (codes of 5..8 bits), y = X v.  l_b = (float)q_b - h is exact
 *   (h = (2^bits - 1)/2).  The chunk sum of 4 codes is
 *   (l_0 * v_0 + l_1 * v_1) + (l_2 * v_2 + l_3 * v_3), products rounded
 *   separately (no FMA), then segments and flushes as for sign matrices.
 *
 *   Byte matrix, y = X^T z.  For output k (byte b of chunk c) and each lane
 *   i < 16, P_i accumulates l(16t+i, k) * z'_{16t+i} over the row tiles t in
 *   order; then y_k = tree16(P), where tree16 adds lane i + s into lane i for
 *   s = 8, 4, 2, 1 and returns lane 0.
 *
 * The build passes -ffp-contract=off so that no compiler can fuse a multiply
 * and an add into an FMA in one path and not in another.
 *
 * The int16 / int8 paths (opt-in, documented in lrq.h) round each table
 * entry to an integer multiple of a per-block step; everything after that is
 * exact integer arithmetic, so its order does not matter, and the float part
 * (block step, conversion, flush) follows the same fixed order everywhere.
 */
#ifndef LRQ_KERNELS_H
#define LRQ_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/internal.h"

/* Elements per int-table block: each block of the input vector gets its own
 * quantization step, so one large value only coarsens its own block. */
#define LRQ_QBLOCK 256u
#define LRQ_QBLOCK_CHUNKS (LRQ_QBLOCK / 16u)

/* A matrix in the interleaved layout of spec §9, with what §10.3 adds. */
typedef struct {
    const uint8_t *data;   /* plane 0, or the byte matrix */
    size_t plane_bytes;    /* distance between consecutive bit-planes */
    size_t rows;           /* R */
    size_t k;              /* K */
    size_t kc;             /* chunks per row: K16 (sign) or 4*K16 (bytes) */
    size_t pc;             /* chunks per full panel: KP/16 or KP/4 */
    int planes;            /* 1..4 bit-planes, or 0 for a byte matrix */
    float half;            /* (2^bits - 1)/2, byte matrices only */
    const uint8_t *scales; /* f16 scales in spec §10.3 order, or NULL */
    size_t gc;             /* chunks per scale group (when scales != NULL) */
    size_t groups;         /* scale groups per row, G */
    int identity;          /* the identity matrix (data NULL): the second factor of a quant
                              tile, which the drivers copy through and no kernel reads */
} lrq_kmat;

/* Number of row tiles (16 rows each, the last possibly short). */
static inline size_t lrq_kmat_tiles(const lrq_kmat *m)
{
    return m->rows / 16 + (m->rows % 16 != 0);
}

/* The end of the segment that starts at chunk c inside a panel ending at
 * panel_end: segments never cross a scale-group boundary, nor a block
 * boundary when block_chunks != 0. */
static inline size_t lrq_segment_end(const lrq_kmat *m, size_t c, size_t panel_end,
                                     size_t block_chunks)
{
    size_t end = panel_end, b;
    if (m->scales != NULL && (b = (c / m->gc + 1) * m->gc) < end)
        end = b;
    if (block_chunks != 0 && (b = (c / block_chunks + 1) * block_chunks) < end)
        end = b;
    return end;
}

/* A little-endian 16-bit word of a section (sign words, binary16 scales). */
static inline unsigned load_u16(const uint8_t *p)
{
    return (unsigned)p[0] | (unsigned)p[1] << 8;
}

/* Byte offset of scale (row tile t, group g), for a tile of height h. */
static inline size_t lrq_scale_offset(const lrq_kmat *m, size_t t, size_t g, size_t h)
{
    return 2 * (16 * t * m->groups + g * h);
}

/* Byte offset of word (r, c), of ws bytes, in a plane (spec §9.3). */
static inline size_t lrq_word_offset(const lrq_kmat *m, size_t r, size_t c, size_t ws)
{
    const size_t c0 = c - c % m->pc, cp = m->kc - c0 < m->pc ? m->kc - c0 : m->pc;
    const size_t t = r / 16, h = m->rows - 16 * t < 16 ? m->rows - 16 * t : 16;
    return (m->rows * c0 + 16 * t * cp + (c - c0) * h + r % 16) * ws;
}

/* Round to the nearest integer, ties to even, in the current rounding mode,
 * for |v| <= 2^22.  Every path rounds with this same pair of additions (the
 * SIMD ones lane by lane), so no path depends on a conversion instruction's
 * own rounding rule. */
static inline float lrq_round_int(const float v)
{
    return (v + 12582912.0f) - 12582912.0f;
}

/* The int-table step of a block from the largest |T| in it: entries are
 * q = round(T * inv) with |q| <= lim, and stand for q * step. */
static inline void lrq_qstep(const float maxabs, const float lim, float *inv, float *step)
{
    if (maxabs > 0.0f) {
        *inv = lim / maxabs;
        *step = maxabs / lim;
    } else {
        *inv = 0.0f;
        *step = 0.0f;
    }
}

/* One instruction set's kernels.  Ranges are in row tiles (forward) or in
 * chunks of the output (transposed); every kernel first zeroes the part of
 * out it owns, then accumulates into it, so two threads given disjoint
 * ranges never touch the same element. */
typedef struct {
    const char *name;
    /* 16 floats per group of 4 inputs: tab[16j + i] = T_j[i]. */
    void (*tables_f32)(const float *v, size_t ngroups, float *tab);
    /* Sign matrix (all planes), out[r] for the rows of tiles [t0, t1), for
     * 1 <= nv <= LRQ_FWD_BATCH vectors at once: vector v's tables at
     * tab + v * tstride, its output at out + v * ostride.  Each vector's
     * result is bit for bit that of a call for it alone. */
    void (*fwd_sign)(const lrq_kmat *m, size_t t0, size_t t1, size_t nv, const float *tab,
                     size_t tstride, float *out, size_t ostride);
    /* Byte matrix; v is padded with zeros to 16*K16 elements. */
    void (*fwd_byte)(const lrq_kmat *m, size_t t0, size_t t1, const float *v, float *out);
    /* Transposed sign matrix: out[16*c0 .. 16*c1) from z, padded with zeros
     * to 16 * tiles, for 1 <= nv <= LRQ_TR_BATCH vectors at once: vector v's
     * input at z + v * zstride, its output at out + v * ostride.  A matrix
     * without scales reads z's tables instead (tables_f32 over all of z,
     * vector v's at tab + v * zstride * 4; z itself may then be NULL); with
     * scales the kernel builds them per scale group from z.  Each vector's
     * result is bit for bit that of a call for it alone. */
    void (*tr_sign)(const lrq_kmat *m, size_t c0, size_t c1, size_t nv, const float *z,
                    const float *tab, size_t zstride, float *out, size_t ostride);
    /* Transposed byte matrix: out[4*c0 .. 4*c1) from z, padded as above. */
    void (*tr_byte)(const lrq_kmat *m, size_t c0, size_t c1, const float *z, float *out);
    /* Int tables for the chunks [c0, c1) (block-aligned) of v: `bytes` per
     * chunk in a layout private to this ISA, and one step per block. */
    void (*tables_int)(const float *v, size_t c0, size_t c1, int wide, uint8_t *tab, float *step);
    void (*fwd_sign_int)(const lrq_kmat *m, size_t t0, size_t t1, int wide, const uint8_t *tab,
                         const float *step, float *out);
    /* Wide batches of LRQ_WIDE_VECTORS vectors, lane j of every 16 floats
     * holding vector j: x's element i at x + 16 i, out's row r at
     * out + 16 r.  tables_wide: tables_f32's entries for the chunks [c0, c1)
     * of x, entry e of chunk c at tab + 16 (64 c + e); fwd_wide: the sign
     * matrix (all planes) for the rows of tiles [t0, t1).  Each lane's
     * result is bit for bit the single product's of its vector. */
    void (*tables_wide)(const float *x, size_t c0, size_t c1, float *tab);
    void (*fwd_wide)(const lrq_kmat *m, size_t t0, size_t t1, const float *tab, float *out);
    /* The transposed sign matrix for a wide batch: out's columns of chunks
     * [c0, c1), from z's wide tables (tables_wide over all of z) or, for a
     * matrix with scales, from z itself (ztab then unused). */
    void (*tr_wide)(const lrq_kmat *m, size_t c0, size_t c1, const float *z, const float *ztab,
                    float *out);
    /* decode_rows: rows 16 t .. of a quant tile, decoded (compute/decode.c):
     * out[r * ld + j] = wb (wa (+0 + scale * level)) for j < n. */
    void (*decode_rows)(const lrq_kmat *m, size_t t, float wa, float wb, float *out, size_t ld,
                        size_t n);
} lrq_kernels;

/* Vectors per forward float kernel call: the words of a chunk and their
 * nibbles are extracted once for all of them. */
#define LRQ_FWD_BATCH 4

/* Vectors per transposed sign kernel call: each 16x16 bit block is turned
 * around once for all of them.  Both batches were measured at 4 and 8 on
 * an AVX-512 Intel Xeon (MiniLM's 30522 x 384 table, 64 vectors, one
 * thread): 8 gained nothing measurable in either direction (forward: its
 * accumulators then fit only half as many tiles per table load), as the
 * look-ups, one shuffle per 16 rows per nibble per vector, bound both. */
#define LRQ_TR_BATCH 4

/* Vectors of a wide batch (one per lane), and the fewest a product needs
 * to take wide batches: below it, LRQ_FWD_BATCH at a time look up fewer
 * table entries per vector than a wide batch's padding costs. */
#define LRQ_WIDE_VECTORS 16
#define LRQ_WIDE_MIN 16

/* Bytes of int tables per chunk of 16 inputs (int8 or int16 entries). */
#define LRQ_ITAB_BYTES(wide) ((wide) ? 128u : 64u)

#endif /* LRQ_KERNELS_H */
