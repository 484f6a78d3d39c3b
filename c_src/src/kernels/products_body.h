/* SPDX-License-Identifier: MIT */
/*
 * The kernel loops, written once and compiled once per instruction set.
 *
 * Included by kernels/products_scalar.c, products_avx2.c, products_avx512.c
 * and products_neon.c after each defines the same small set of 16-lane
 * primitives (vf: 16 floats,
 * vi: 16 u32, vt: a 16-entry float table, vq: 16 int32 accumulators).  Every
 * primitive is exact lane by lane, or one IEEE operation per lane, so the
 * expression trees below (documented in common/kernels.h) are the same in every
 * path: that is what makes the paths bit-identical, and why the loops live
 * in one place.  Performance tricks that do not change a tree (two tiles
 * sharing one table load, prefetch, masked loads) are free to vary.
 */
#ifndef LRQ_KERNEL_ISA
#error "include products_body.h from a kernels/products_<isa>.c file"
#endif

/* Prefetch distance on the bit stream.  2 KiB measured best of 0.5-16 KiB
 * for a 16 MiB product on an AMX-class Intel Xeon (~12 % faster than 4 KiB once
 * the prefetch follows each stream into the next group of tiles). */
#define PF_DIST 2048

/* Full row tiles that share each table load in the forward kernels (an
 * ISA file may raise it when it has the registers). */
#ifndef FWD_TILES
#define FWD_TILES 2
#endif

/* Most vectors one forward float kernel call takes (common/kernels.h). */
#define FWD_BATCH LRQ_FWD_BATCH

static inline size_t min_sz(const size_t a, const size_t b)
{
    return a < b ? a : b;
}

/* Inlined into callers whose plane count is a constant, so the Horner loop
 * and the per-plane offsets unroll away.  The scalar file leaves inlining to
 * the compiler: forced, its 16-lane loops grow into functions that take
 * minutes to compile with sanitizers, for speed nobody needs there. */
#ifndef ALWAYS_INLINE
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#endif

/* The forward float kernels may keep a tile's 16 rows in lanes in an order
 * of the ISA's choosing (an ISA file that does defines LUT_ORDER):
 * vi_load_lut() reads a chunk's words in that order, vt_lookup_lut() looks
 * up one nibble of each, and vf_lut_rows() returns an accumulator to row
 * order.  All three are exact, so the order changes no sum. */
#ifndef LUT_ORDER
#define vi_load_lut vi_load_w16
#define vt_lookup_lut vt_lookup
#define vf_lut_rows(a) (a)
#endif

/* The chunk sum of one plane of one tile (common/kernels.h, "Sign matrix"); lut:
 * w came from vi_load_lut(), else one word per lane in row order. */
ALWAYS_INLINE vf chunk_sum(const vt t0, const vt t1, const vt t2, const vt t3, const vi w,
                           const int lut)
{
    if (lut)
        return vf_add(vf_add(vt_lookup_lut(t0, w, 0), vt_lookup_lut(t1, w, 4)),
                      vf_add(vt_lookup_lut(t2, w, 8), vt_lookup_lut(t3, w, 12)));
    return vf_add(vf_add(vt_lookup(t0, w, 0), vt_lookup(t1, w, 4)),
                  vf_add(vt_lookup(t2, w, 8), vt_lookup(t3, w, 12)));
}

/* All planes of one chunk of the forward kernels, top plane first (Horner).
 * Inlined with a constant plane count, the loop and its offsets unroll away. */
ALWAYS_INLINE vf planes_sum(const size_t pb, const uint8_t *wp, const size_t h, const vt t0,
                            const vt t1, const vt t2, const vt t3, const int planes)
{
    int p = planes - 1;
    vf s = chunk_sum(t0, t1, t2, t3, vi_load_lut(wp + (size_t)p * pb, h), 1);
    for (p--; p >= 0; p--)
        s = vf_add(vf_add(s, s), chunk_sum(t0, t1, t2, t3, vi_load_lut(wp + (size_t)p * pb, h), 1));
    return s;
}

/* The block sum of the transposed kernel from one block's words, already
 * turned around (w[p]: plane p), with the same Horner tree as planes_sum. */
ALWAYS_INLINE vf block_sum(const vi *w, const vt *tab, const int planes)
{
    int p = planes - 1;
    vf s = chunk_sum(tab[0], tab[1], tab[2], tab[3], w[p], 0);
    for (p--; p >= 0; p--)
        s = vf_add(vf_add(s, s), chunk_sum(tab[0], tab[1], tab[2], tab[3], w[p], 0));
    return s;
}

/* out[16t .. 16t+h) += acc (or scale * acc) at the end of a segment. */
ALWAYS_INLINE void flush(const lrq_kmat *m, const size_t t, const size_t h, const size_t c,
                         const vf acc, float *const out)
{
    vf o = vf_load(out + 16 * t, h);
    if (m->scales != NULL)
        o = vf_add(o, vf_mul(vf_load_f16(m->scales + lrq_scale_offset(m, t, c / m->gc, h), h), acc));
    else
        o = vf_add(o, acc);
    vf_store(out + 16 * t, o, h);
}

static void zero_rows(const lrq_kmat *m, const size_t t0, const size_t t1, float *const out)
{
    const size_t r1 = min_sz(m->rows, 16 * t1);
    if (r1 > 16 * t0)
        memset(out + 16 * t0, 0, (r1 - 16 * t0) * sizeof(float));
}

/* The byte-matrix chunk sum (common/kernels.h, "Byte matrix"). */
static inline vf byte_chunk(const vi w, const vf half, const float *v)
{
    return vf_add(vf_add(vf_mul(vf_byte_level(w, 0, half), vf_set1(v[0])),
                         vf_mul(vf_byte_level(w, 1, half), vf_set1(v[1]))),
                  vf_add(vf_mul(vf_byte_level(w, 2, half), vf_set1(v[2])),
                         vf_mul(vf_byte_level(w, 3, half), vf_set1(v[3]))));
}

static void k_fwd_byte(const lrq_kmat *m, const size_t t0, const size_t t1, const float *v,
                       float *out)
{
    const vf half = vf_set1(m->half);
    size_t c0, t, a, b, c;

    zero_rows(m, t0, t1, out);
    for (c0 = 0; c0 < m->kc; c0 += m->pc) {
        const size_t cp = min_sz(m->pc, m->kc - c0);
        const uint8_t *panel = m->data + m->rows * c0 * 4;
        for (t = t0; t < t1; t++) {
            const size_t h = min_sz(16, m->rows - 16 * t);
            const uint8_t *tp = panel + 64 * t * cp;
            for (a = c0; a < c0 + cp; a = b) {
                vf acc = vf_zero();
                b = lrq_segment_end(m, a, c0 + cp, 0);
                for (c = a; c < b; c++) {
                    const uint8_t *wp = tp + (c - c0) * h * 4;
                    __builtin_prefetch(wp + PF_DIST);
                    acc = vf_add(acc, byte_chunk(vi_load_w32(wp, h), half, v + 4 * c));
                }
                flush(m, t, h, a, acc, out);
            }
        }
    }
}

/* The inputs of row tile t for scale group g: z, times the scales if any. */
static inline vf tile_inputs(const lrq_kmat *m, const float *z, const size_t t, const size_t h,
                             const size_t g)
{
    const vf zv = vf_load(z + 16 * t, 16);
    if (m->scales == NULL)
        return zv;
    return vf_mul(zv, vf_load_f16(m->scales + lrq_scale_offset(m, t, g, h), h));
}

static void k_tables_f32(const float *v, size_t ngroups, float *tab);

/* Most vectors one transposed sign kernel call takes (common/kernels.h). */
#define TR_BATCH LRQ_TR_BATCH

/* out_v[16c ..] += the block sums of chunks [a, b) of one row tile, for nv
 * vectors (vector v's tables tab[v], its output at out + v * ostride): each
 * block is turned around once for all of them, and only the look-ups and
 * sums are per vector. */
ALWAYS_INLINE void tr_blocks(const size_t pb, const uint8_t *tp, const size_t c0, const size_t a,
                             const size_t b, const size_t h, const vt (*tab)[4], const int planes,
                             const int nv, float *out, const size_t ostride)
{
    size_t c;
    int p, v;
    for (c = a; c < b; c++) {
        vi w[4];
        for (p = 0; p < planes; p++)
            w[p] = vi_transpose16(tp + (c - c0) * h * 2 + (size_t)p * pb, h);
        for (v = 0; v < nv; v++) {
            float *o = out + (size_t)v * ostride + 16 * c;
            vf_store(o, vf_add(vf_load(o, 16), block_sum(w, tab[v], planes)), 16);
        }
    }
}

/* The transposed sign kernel for one plane count and batch size (constants,
 * as in the forward kernels): vector v's input at z + v * zstride, or its
 * tables at ztab + 4 * v * zstride (common/kernels.h). */
ALWAYS_INLINE void tr_sign_walk(const lrq_kmat *m, const size_t c_lo, const size_t c_hi,
                                const float *z, const float *ztab, const size_t zstride,
                                float *out, const size_t ostride, const int planes, const int nv)
{
    const size_t tiles = lrq_kmat_tiles(m), pb = m->plane_bytes;
    size_t c0, t, a, b;
    int v;

    if (c_hi > c_lo)
        for (v = 0; v < nv; v++)
            memset(out + (size_t)v * ostride + 16 * c_lo, 0, 16 * (c_hi - c_lo) * sizeof(float));
    for (c0 = c_lo - c_lo % m->pc; c0 < c_hi; c0 += m->pc) {
        const size_t cp = min_sz(m->pc, m->kc - c0);
        const size_t cs = c_lo > c0 ? c_lo : c0, ce = min_sz(c_hi, c0 + cp);
        const uint8_t *panel = m->data + m->rows * c0 * 2;
        for (t = 0; t < tiles; t++) {
            const size_t h = min_sz(16, m->rows - 16 * t);
            const uint8_t *tp = panel + 32 * t * cp;
            for (a = cs; a < ce; a = b) {
                /* built outlives tab: a vt may point into its table (scalar). */
                float built[TR_BATCH][64], zz[16];
                vt tab[TR_BATCH][4];
                b = lrq_segment_end(m, a, ce, 0);
                for (v = 0; v < nv; v++) {
                    /* Without scales the tables of the tile's inputs are
                     * those of z, built once for every call. */
                    const float *tb = built[v];
                    if (m->scales == NULL) {
                        tb = ztab + 4 * (size_t)v * zstride + 64 * t;
                    } else {
                        vf_store(zz, tile_inputs(m, z + (size_t)v * zstride, t, h, a / m->gc), 16);
                        k_tables_f32(zz, 4, built[v]);
                    }
                    tab[v][0] = vt_load(tb), tab[v][1] = vt_load(tb + 16), tab[v][2] = vt_load(tb + 32),
                    tab[v][3] = vt_load(tb + 48);
                }
                /* A constant height for full tiles lets their loads go unmasked. */
                if (h == 16)
                    tr_blocks(pb, tp, c0, a, b, 16, (const vt(*)[4])tab, planes, nv, out, ostride);
                else
                    tr_blocks(pb, tp, c0, a, b, h, (const vt(*)[4])tab, planes, nv, out, ostride);
            }
        }
    }
}

#define TR_INSTANCE(planes, nv)                                                                   \
    static void tr_##planes##_##nv(const lrq_kmat *m, const size_t c_lo, const size_t c_hi,       \
                                   const float *z, const float *ztab, const size_t zstride,        \
                                   float *out, const size_t ostride)                               \
    {                                                                                             \
        tr_sign_walk(m, c_lo, c_hi, z, ztab, zstride, out, ostride, planes, nv);                  \
    }
#define TR_PLANES(nv) TR_INSTANCE(1, nv) TR_INSTANCE(2, nv) TR_INSTANCE(3, nv) TR_INSTANCE(4, nv)
TR_PLANES(1)
TR_PLANES(2)
TR_PLANES(3)
TR_PLANES(4)
#if TR_BATCH != 4
#error "TR_BATCH: instantiate the kernels for every batch size up to it"
#endif

typedef void (*tr_fn)(const lrq_kmat *, size_t, size_t, const float *, const float *, size_t, float *,
                      size_t);
#define TR_ROW(nv) {tr_1_##nv, tr_2_##nv, tr_3_##nv, tr_4_##nv}
static const tr_fn tr_float[TR_BATCH][4] = {TR_ROW(1), TR_ROW(2), TR_ROW(3), TR_ROW(4)};

static void k_tr_sign(const lrq_kmat *m, const size_t c_lo, const size_t c_hi, const size_t nv,
                      const float *z, const float *ztab, const size_t zstride, float *out,
                      const size_t ostride)
{
    tr_float[nv - 1][m->planes - 1](m, c_lo, c_hi, z, ztab, zstride, out, ostride);
}

/* Chunks handled together by the transposed byte kernel: their 64-byte
 * words are contiguous inside a tile, so a block reads 1 KiB runs instead of
 * one 64-byte line per tile per chunk. */
#define TR_BYTE_BLOCK 16

static void k_tr_byte(const lrq_kmat *m, const size_t c_lo, const size_t c_hi, const float *z,
                      float *out)
{
    const size_t tiles = lrq_kmat_tiles(m);
    const vf half = vf_set1(m->half);
    size_t a, b, c, t, j;

    for (a = c_lo; a < c_hi; a = b) {
        /* A block stays inside one panel and one scale group. */
        const size_t c0 = a - a % m->pc, cp = min_sz(m->pc, m->kc - c0);
        const uint8_t *panel = m->data + m->rows * c0 * 4;
        vf acc[TR_BYTE_BLOCK][4];
        b = min_sz(min_sz(c_hi, a + TR_BYTE_BLOCK), lrq_segment_end(m, a, c0 + cp, 0));
        for (c = a; c < b; c++)
            for (j = 0; j < 4; j++)
                acc[c - a][j] = vf_zero();
        for (t = 0; t < tiles; t++) {
            const size_t h = min_sz(16, m->rows - 16 * t);
            const uint8_t *tp = panel + 64 * t * cp;
            const vf zv = tile_inputs(m, z, t, h, m->scales ? a / m->gc : 0);
            for (c = a; c < b; c++) {
                const vi w = vi_load_w32(tp + (c - c0) * h * 4, h);
                for (j = 0; j < 4; j++)
                    acc[c - a][j] = vf_add(acc[c - a][j], vf_mul(vf_byte_level(w, (int)j, half), zv));
            }
        }
        for (c = a; c < b; c++)
            for (j = 0; j < 4; j++)
                out[4 * c + j] = vf_tree16(acc[c - a][j]);
    }
}

/* ---- int16 / int8 tables (opt-in fast path) ---------------------------- */

static void k_tables_int(const float *v, const size_t c0, const size_t c1, const int wide,
                         uint8_t *tab, float *step)
{
    const float lim = wide ? 32767.0f : 127.0f;
    float ftab[64 * LRQ_QBLOCK_CHUNKS];
    size_t a, b;

    for (a = c0; a < c1; a = b) {
        float inv, maxabs;
        b = min_sz(c1, a + LRQ_QBLOCK_CHUNKS);
        k_tables_f32(v + 16 * a, 4 * (b - a), ftab);
        /* max |T| is the largest |x_a|+|x_b|+|x_c|+|x_d| of the block, as
         * rounded in the tables themselves, so |T * inv| <= lim. */
        maxabs = vf_max_abs(ftab, 64 * (b - a));
        lrq_qstep(maxabs, lim, &inv, &step[a / LRQ_QBLOCK_CHUNKS]);
        quantize_tables(ftab, b - a, inv, lim, wide, tab + LRQ_ITAB_BYTES(wide) * a);
    }
}

/* Integer table sums are exact, so unlike the float ones they may use as
 * many accumulators as they like: even and odd chunks go to different ones
 * to break the dependency chain of the dot-product instruction. */
ALWAYS_INLINE vq int_planes(vq acc, const size_t pb, const uint8_t *wp, const size_t h,
                            const vqt tab, const int wide, const int planes)
{
    int p;
    for (p = 0; p < planes; p++)
        acc = vq_lut(acc, tab, wide, vi_load_w16(wp + (size_t)p * pb, h), 1 << p);
    return acc;
}

/* Sign matrix times tables for one panel of `ntile` row tiles from t (h
 * rows each; ntile > 1 only for full tiles): each table load then feeds
 * every tile, which divides the table traffic.  mode 0: float tables; 1: int8; 2: int16 (one step per
 * block).  Float tables may come for a batch of nv vectors (vector v's at
 * tab + v * tstride, its output at out + v * ostride): each chunk's words
 * and their shifted nibbles then serve every vector, and only the look-ups
 * and sums are per vector, so a batch costs less than nv single products
 * and every vector's sums are those of its single product.  Every argument
 * that selects code is a constant after inlining. */
ALWAYS_INLINE void fwd_tiles(const lrq_kmat *m, const uint8_t *tp, const size_t c0, const size_t cp,
                             const size_t t, const size_t h, const int ntile, const void *tab,
                             const size_t tstride, const float *step, float *out,
                             const size_t ostride, const int mode, const int planes, const int nv)
{
    const size_t run = 32 * cp, pb = m->plane_bytes; /* run: one full tile in this panel */
    const int wide = mode == 2;
    size_t a, b, c;
    int i, v;

    for (a = c0; a < c0 + cp; a = b) {
        vf acc[FWD_TILES][FWD_BATCH];
        vq q[FWD_TILES][2];
        for (i = 0; i < ntile; i++) {
            for (v = 0; v < nv; v++)
                acc[i][v] = vf_zero();
            q[i][0] = q[i][1] = vq_zero();
        }
        b = lrq_segment_end(m, a, c0 + cp, mode ? LRQ_QBLOCK_CHUNKS : 0);
        for (c = a; c < b; c++) {
            const uint8_t *wp = tp + (c - c0) * h * 2;
            /* One prefetch per 64-byte line of each tile's stream, PF_DIST
             * ahead; past the end of its run, into the same stream of the
             * next group of tiles (the run after it belongs to a tile this
             * group reads itself).  Prefetches never fault. */
            if ((c & 1) == 0 || ntile == 1) {
                const size_t ahead = (c - c0) * 32 + PF_DIST >= run ? (size_t)(ntile - 1) * run : 0;
                for (i = 0; i < ntile; i++)
                    __builtin_prefetch(wp + (size_t)i * run + PF_DIST + ahead);
            }
            if (mode == 0) {
                for (v = 0; v < nv; v++) {
                    const float *tb = (const float *)tab + (size_t)v * tstride + 64 * c;
                    const vt t0 = vt_load(tb), t1 = vt_load(tb + 16), t2 = vt_load(tb + 32),
                             t3 = vt_load(tb + 48);
                    for (i = 0; i < ntile; i++)
                        acc[i][v] = vf_add(acc[i][v],
                                           planes_sum(pb, wp + (size_t)i * run, h, t0, t1, t2, t3, planes));
                }
            } else {
                const vqt qt = vqt_load((const uint8_t *)tab + LRQ_ITAB_BYTES(wide) * c, wide);
                const int odd = (int)((c - a) & 1);
                for (i = 0; i < ntile; i++)
                    q[i][odd] = int_planes(q[i][odd], pb, wp + (size_t)i * run, h, qt, wide, planes);
            }
        }
        for (i = 0; i < ntile; i++) {
            if (mode)
                flush(m, t + (size_t)i, h, a,
                      vf_mul(vq_to_f(vq_add(q[i][0], q[i][1])), vf_set1(step[a / LRQ_QBLOCK_CHUNKS])), out);
            else
                for (v = 0; v < nv; v++)
                    flush(m, t + (size_t)i, h, a, vf_lut_rows(acc[i][v]), out + (size_t)v * ostride);
        }
    }
}

/* Rows of tiles [t0, t1), panel by panel, full tiles in groups of
 * FWD_TILES (for batches too: groups of 2 measured slower on an AVX-512
 * Intel Xeon, although 4 tiles x 4 vectors of accumulators spill). */
ALWAYS_INLINE void fwd_walk(const lrq_kmat *m, const size_t t0, const size_t t1, const void *tab,
                            const size_t tstride, const float *step, float *out,
                            const size_t ostride, const int mode, const int planes, const int nv)
{
    size_t c0;
    int v;

    for (v = 0; v < nv; v++)
        zero_rows(m, t0, t1, out + (size_t)v * ostride);
    for (c0 = 0; c0 < m->kc; c0 += m->pc) {
        const size_t cp = min_sz(m->pc, m->kc - c0);
        const uint8_t *panel = m->data + m->rows * c0 * 2;
        size_t t = t0;
        for (; t + FWD_TILES <= t1 && 16 * (t + FWD_TILES) <= m->rows; t += FWD_TILES)
            fwd_tiles(m, panel + 32 * t * cp, c0, cp, t, 16, FWD_TILES, tab, tstride, step, out, ostride,
                      mode, planes, nv);
        for (; t < t1; t++)
            fwd_tiles(m, panel + 32 * t * cp, c0, cp, t, min_sz(16, m->rows - 16 * t), 1, tab,
                      tstride, step, out, ostride, mode, planes, nv);
    }
}

/* One function per (mode, plane count, batch size), each with its loops
 * unrolled for its constants; separate functions keep each one small enough
 * for the compiler's debug-info tracking. */
#define FWD_INSTANCE(mode, planes, nv)                                                          \
    static void fwd_##mode##_##planes##_##nv(const lrq_kmat *m, const size_t t0, const size_t t1, \
                                             const void *tab, const size_t tstride,             \
                                             const float *step, float *out, const size_t ostride) \
    {                                                                                           \
        fwd_walk(m, t0, t1, tab, tstride, step, out, ostride, mode, planes, nv);               \
    }
#define FWD_PLANES(mode, nv)                                                                   \
    FWD_INSTANCE(mode, 1, nv) FWD_INSTANCE(mode, 2, nv) FWD_INSTANCE(mode, 3, nv)              \
    FWD_INSTANCE(mode, 4, nv)
FWD_PLANES(0, 1)
FWD_PLANES(0, 2)
FWD_PLANES(0, 3)
FWD_PLANES(0, 4)
FWD_PLANES(1, 1)
FWD_PLANES(2, 1)

typedef void (*fwd_fn)(const lrq_kmat *, size_t, size_t, const void *, size_t, const float *, float *,
                       size_t);
#define FWD_ROW(mode, nv) {fwd_##mode##_1_##nv, fwd_##mode##_2_##nv, fwd_##mode##_3_##nv, fwd_##mode##_4_##nv}
static const fwd_fn fwd_float[FWD_BATCH][4] = {FWD_ROW(0, 1), FWD_ROW(0, 2), FWD_ROW(0, 3), FWD_ROW(0, 4)};
static const fwd_fn fwd_int[2][4] = {FWD_ROW(1, 1), FWD_ROW(2, 1)};

static void k_fwd_sign(const lrq_kmat *m, const size_t t0, const size_t t1, const size_t nv,
                       const float *tab, const size_t tstride, float *out, const size_t ostride)
{
    fwd_float[nv - 1][m->planes - 1](m, t0, t1, tab, tstride, NULL, out, ostride);
}

static void k_fwd_sign_int(const lrq_kmat *m, const size_t t0, const size_t t1, const int wide,
                           const uint8_t *tab, const float *step, float *out)
{
    fwd_int[wide][m->planes - 1](m, t0, t1, tab, 0, step, out, 0);
}

/* Wide batches (common/kernels.h): lane j of every 16 floats belongs to
 * vector j of a group of 16, so a look-up fetches one table entry for all
 * of them from memory instead of shuffling one register per vector.  Each
 * lane does the single product's operations in the single product's
 * order -- the same table entries, chunk sums, Horner steps over planes,
 * segment sums and flushes -- so every vector gets the bits of its single
 * product. */

/* k_tables_f32's entries, lane by lane: T[64c + 16g + e] for the chunks
 * [c0, c1) of x (element i's 16 lanes at x + 16 i). */
static void k_tables_wide(const float *x, const size_t c0, const size_t c1, float *tab)
{
    const vf minus = vf_set1(-1.0f);
    size_t c, g;
    unsigned e;
    int i;

    for (c = c0; c < c1; c++)
        for (g = 0; g < 4; g++) {
            const float *xg = x + 16 * (16 * c + 4 * g);
            float *tg = tab + 16 * (64 * c + 16 * g);
            vf pos[4], neg[4];
            for (i = 0; i < 4; i++) {
                pos[i] = vf_load(xg + 16 * i, 16);
                neg[i] = vf_mul(pos[i], minus); /* exact, -0 included */
            }
            for (e = 0; e < 16; e++)
                vf_store(tg + 16 * e,
                         vf_add(vf_add(vf_add(e & 1u ? neg[0] : pos[0], e & 2u ? neg[1] : pos[1]),
                                       e & 4u ? neg[2] : pos[2]),
                                e & 8u ? neg[3] : pos[3]),
                         16);
        }
}

/* chunk_sum for one row's word, every lane: tc holds the chunk's 64 entries. */
ALWAYS_INLINE vf wide_chunk(const float *tc, const unsigned w)
{
    /* Nibble g's entry e at tc + 256 g + 16 e: one shift and one mask each. */
    return vf_add(vf_add(vf_load(tc + (w << 4 & 0xF0u), 16), vf_load(tc + 256 + (w & 0xF0u), 16)),
                  vf_add(vf_load(tc + 512 + (w >> 4 & 0xF0u), 16), vf_load(tc + 768 + (w >> 8 & 0xF0u), 16)));
}

/* Chunks and row tiles of one step of a wide walk: the tables of WIDE_CHUNKS
 * chunks (4 KiB each) stay in L1 while WIDE_TILES tiles' rows read them,
 * each row's running sum parked in between (parking changes no bits). */
#ifndef WIDE_CHUNKS
#define WIDE_CHUNKS 8
#endif
#ifndef WIDE_TILES
#define WIDE_TILES 4
#endif

/* Rows of a wide walk handled together: independent running sums, so the
 * additions of one row's chain overlap the look-ups of the others. */
#define WIDE_ROWS 4

/* Rows [r, r + nr) of tile t (in the tile group from tb) over the chunks
 * [s0, s1) of the segment [a, b): their running sums continue from
 * `parked` unless s0 == a, and are parked again, or flushed into out at
 * the segment's end, as flush() does for the single product. */
ALWAYS_INLINE void wide_rows(const lrq_kmat *m, const uint8_t *tp, const size_t c0, const size_t s0,
                             const size_t s1, const size_t a, const size_t b, const size_t t,
                             const size_t tb, const size_t r, const size_t h, const size_t nr,
                             const float *tab, float *parked, float *out, const int planes)
{
    const size_t pb = m->plane_bytes;
    float *park = parked + 16 * (16 * (t - tb) + r);
    vf acc[WIDE_ROWS];
    size_t c, q;

    for (q = 0; q < nr; q++)
        acc[q] = s0 == a ? vf_zero() : vf_load(park + 16 * q, 16);
    for (c = s0; c < s1; c++) {
        const uint8_t *wp = tp + (c - c0) * h * 2 + 2 * r;
        const float *tc = tab + 1024 * c;
        for (q = 0; q < nr; q++) {
            int p = planes - 1;
            vf sum = wide_chunk(tc, load_u16(wp + 2 * q + (size_t)p * pb));
            for (p--; p >= 0; p--)
                sum = vf_add(vf_add(sum, sum), wide_chunk(tc, load_u16(wp + 2 * q + (size_t)p * pb)));
            acc[q] = vf_add(acc[q], sum);
        }
    }
    for (q = 0; q < nr; q++) {
        float *o = out + 16 * (16 * t + r + q);
        if (s1 < b) {
            vf_store(park + 16 * q, acc[q], 16);
        } else if (m->scales != NULL) {
            const float scale = lrq_half_to_float(
                (uint16_t)load_u16(m->scales + lrq_scale_offset(m, t, a / m->gc, h) + 2 * (r + q)));
            vf_store(o, vf_add(vf_load(o, 16), vf_mul(vf_set1(scale), acc[q])), 16);
        } else {
            vf_store(o, vf_add(vf_load(o, 16), acc[q]), 16);
        }
    }
}

/* fwd_walk of one plane count for a wide batch: out[16 r + j] for the rows
 * r of tiles [t0, t1), from the wide tables of k_tables_wide. */
ALWAYS_INLINE void wide_walk(const lrq_kmat *m, const size_t t0, const size_t t1, const float *tab,
                             float *out, const int planes)
{
    const size_t r1 = min_sz(m->rows, 16 * t1);
    size_t c0, a, b, s0, s1, tb, t, r;
    float parked[WIDE_TILES * 16 * 16];

    if (r1 > 16 * t0)
        memset(out + 256 * t0, 0, 16 * (r1 - 16 * t0) * sizeof(float));
    for (c0 = 0; c0 < m->kc; c0 += m->pc) {
        const size_t cp = min_sz(m->pc, m->kc - c0);
        const uint8_t *panel = m->data + m->rows * c0 * 2;
        for (a = c0; a < c0 + cp; a = b) {
            b = lrq_segment_end(m, a, c0 + cp, 0);
            for (tb = t0; tb < t1; tb += WIDE_TILES) {
                const size_t te = min_sz(t1, tb + WIDE_TILES);
                for (s0 = a; s0 < b; s0 = s1) {
                    s1 = min_sz(b, s0 + WIDE_CHUNKS);
                    for (t = tb; t < te; t++) {
                        const size_t h = min_sz(16, m->rows - 16 * t);
                        const uint8_t *tp = panel + 32 * t * cp;
                        for (r = 0; r < h; r += WIDE_ROWS)
                            if (r + WIDE_ROWS <= h)
                                wide_rows(m, tp, c0, s0, s1, a, b, t, tb, r, h, WIDE_ROWS, tab, parked, out, planes);
                            else
                                wide_rows(m, tp, c0, s0, s1, a, b, t, tb, r, h, h - r, tab, parked, out, planes);
                    }
                }
            }
        }
    }
}

/* tr_sign_walk for a wide batch: out[16 col + j] for the columns of chunks
 * [c_lo, c_hi), from z's wide tables (tile t's at ztab + 1024 t) or, for a
 * matrix with scales, tables built per tile and scale group from z (rows
 * at z + 16 r).  Each 16 x 16 bit block is turned around once for all 16
 * vectors. */
ALWAYS_INLINE void wide_tr_walk(const lrq_kmat *m, const size_t c_lo, const size_t c_hi, const float *z,
                                const float *ztab, float *out, const int planes)
{
    const size_t tiles = lrq_kmat_tiles(m), pb = m->plane_bytes;
    size_t c0, cb, t, a, b, c, r;
    unsigned e;

    if (c_hi > c_lo)
        memset(out + 256 * c_lo, 0, 256 * (c_hi - c_lo) * sizeof(float));
    for (c0 = c_lo - c_lo % m->pc; c0 < c_hi; c0 += m->pc) {
        const size_t cp = min_sz(m->pc, m->kc - c0);
        const size_t cs = c_lo > c0 ? c_lo : c0, ce = min_sz(c_hi, c0 + cp);
        const uint8_t *panel = m->data + m->rows * c0 * 2;
        /* WIDE_CHUNKS chunks' sums (1 KiB each) stay in L1 while every
         * tile adds to them; each column still sums its tiles in order. */
        for (cb = cs; cb < ce; cb += WIDE_CHUNKS)
        for (t = 0; t < tiles; t++) {
            const size_t h = min_sz(16, m->rows - 16 * t), cbe = min_sz(ce, cb + WIDE_CHUNKS);
            const uint8_t *tp = panel + 32 * t * cp;
            for (a = cb; a < cbe; a = b) {
                float built[1024], scaled[256];
                const float *tb = ztab + 1024 * t;
                b = lrq_segment_end(m, a, cbe, 0);
                if (m->scales != NULL) {
                    /* tile_inputs(), lane by lane: rows past h meet a 0 scale. */
                    const uint8_t *sp = m->scales + lrq_scale_offset(m, t, a / m->gc, h);
                    for (r = 0; r < 16; r++)
                        vf_store(scaled + 16 * r,
                                 vf_mul(vf_load(z + 16 * (16 * t + r), 16),
                                        vf_set1(r < h ? lrq_half_to_float((uint16_t)load_u16(sp + 2 * r)) : 0.0f)),
                                 16);
                    k_tables_wide(scaled, 0, 1, built);
                    tb = built;
                }
                for (c = a; c < b; c++) {
                    /* Every ISA's vi begins with its 16 dword lanes in order. */
                    uint32_t cols[4][16];
                    int p;
                    for (p = 0; p < planes; p++) {
                        const vi w = vi_transpose16(tp + (c - c0) * h * 2 + (size_t)p * pb, h);
                        memcpy(cols[p], &w, sizeof cols[p]);
                    }
                    for (e = 0; e < 16; e++) {
                        float *o = out + 16 * (16 * c + e);
                        vf sum;
                        p = planes - 1;
                        sum = wide_chunk(tb, cols[p][e]);
                        for (p--; p >= 0; p--)
                            sum = vf_add(vf_add(sum, sum), wide_chunk(tb, cols[p][e]));
                        vf_store(o, vf_add(vf_load(o, 16), sum), 16);
                    }
                }
            }
        }
    }
}

#define WIDE_TR_INSTANCE(planes)                                                                   \
    static void wide_tr_##planes(const lrq_kmat *m, const size_t c_lo, const size_t c_hi,           \
                                 const float *z, const float *ztab, float *out)                    \
    {                                                                                              \
        wide_tr_walk(m, c_lo, c_hi, z, ztab, out, planes);                                         \
    }
WIDE_TR_INSTANCE(1)
WIDE_TR_INSTANCE(2)
WIDE_TR_INSTANCE(3)
WIDE_TR_INSTANCE(4)

typedef void (*wide_tr_fn)(const lrq_kmat *, size_t, size_t, const float *, const float *, float *);
static const wide_tr_fn wide_tr_float[4] = {wide_tr_1, wide_tr_2, wide_tr_3, wide_tr_4};

static void k_tr_wide(const lrq_kmat *m, const size_t c_lo, const size_t c_hi, const float *z,
                      const float *ztab, float *out)
{
    wide_tr_float[m->planes - 1](m, c_lo, c_hi, z, ztab, out);
}

#define WIDE_INSTANCE(planes)                                                                      \
    static void wide_##planes(const lrq_kmat *m, const size_t t0, const size_t t1, const float *tab,  \
                              float *out)                                                          \
    {                                                                                              \
        wide_walk(m, t0, t1, tab, out, planes);                                                    \
    }
WIDE_INSTANCE(1)
WIDE_INSTANCE(2)
WIDE_INSTANCE(3)
WIDE_INSTANCE(4)

typedef void (*wide_fn)(const lrq_kmat *, size_t, size_t, const float *, float *);
static const wide_fn wide_float[4] = {wide_1, wide_2, wide_3, wide_4};

static void k_fwd_wide(const lrq_kmat *m, const size_t t0, const size_t t1, const float *tab, float *out)
{
    wide_float[m->planes - 1](m, t0, t1, tab, out);
}

/* Decoding a quant tile (compute/decode.c): out[r * ld + j] = wb (wa (+0 +
 * scale * level)) for the rows r < 16 of row tile t of its factor m (fewer
 * in the last tile) and the columns j < n -- the operations of the single
 * product A e_j, so the bits of the column path.  scale * level is exact in
 * binary32 (a binary16 scale times a level of at most 8 significant bits). */
ALWAYS_INLINE void decode_rows_body(const lrq_kmat *m, const size_t t, const float wa, const float wb,
                                    float *out, const size_t ld, const size_t n, const int planes)
{
    const size_t h = min_sz(16, m->rows - 16 * t), chunks = (n + 15) / 16;
    const size_t bytes = planes > 0 ? 2 : 4;
    const vf vwa = vf_set1(wa), vwb = vf_set1(wb), top = vf_set1((float)((1u << planes) - 1u));
    const vf half = vf_set1(m->half);
    float scale[16];
    size_t c, r, q;
    int p;

    for (c = 0; c < chunks; c++) {
        const size_t cols = min_sz(16, n - 16 * c);
        /* The chunk's first 4-code word (byte codes) or its word (planes). */
        const size_t first = planes > 0 ? c : 4 * c;
        const uint8_t *wp = m->data + lrq_word_offset(m, 16 * t, first, bytes);
        vf_store(scale, vf_load_f16(m->scales + lrq_scale_offset(m, t, first / m->gc, h), h), 16);
        for (r = 0; r < h; r++) {
            vf level;
            if (planes > 0) {
                /* Horner over +-1 planes: sum_p 2^p (1 - 2 q_p) = 2^b - 1 - sum_p q_p 2^(p+1). */
                level = top;
                for (p = 0; p < planes; p++)
                    level = vf_sub(level, vf_bits(load_u16(wp + (size_t)p * m->plane_bytes + 2 * r),
                                                  (float)(2u << p)));
            } else {
                uint8_t codes[16];
                for (q = 0; q < 4; q++)
                    memcpy(codes + 4 * q, wp + (q * h + r) * 4, 4);
                level = vf_sub(vf_from_u8(codes), half);
            }
            level = vf_add(vf_zero(), vf_mul(vf_set1(scale[r]), level));
            vf_store(out + r * ld + 16 * c, vf_mul(vwb, vf_mul(vwa, level)), cols);
        }
    }
}

/* One body per code width, so that the plane loop unrolls. */
static void k_decode_rows(const lrq_kmat *m, const size_t t, const float wa, const float wb,
                          float *out, const size_t ld, const size_t n)
{
    switch (m->planes) {
    case 1: decode_rows_body(m, t, wa, wb, out, ld, n, 1); break;
    case 2: decode_rows_body(m, t, wa, wb, out, ld, n, 2); break;
    case 3: decode_rows_body(m, t, wa, wb, out, ld, n, 3); break;
    case 4: decode_rows_body(m, t, wa, wb, out, ld, n, 4); break;
    default: decode_rows_body(m, t, wa, wb, out, ld, n, 0); break;
    }
}

#define KERNEL_TABLE(var, isa_name)                                                         \
    const lrq_kernels var = {isa_name,      k_tables_f32, k_fwd_sign,   k_fwd_byte, k_tr_sign, \
                             k_tr_byte,     k_tables_int, k_fwd_sign_int, k_tables_wide, k_fwd_wide, \
                             k_tr_wide,     k_decode_rows}
