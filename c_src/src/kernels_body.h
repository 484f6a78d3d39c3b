/* SPDX-License-Identifier: MIT */
/*
 * The kernel loops, written once and compiled once per instruction set.
 *
 * Included by kernels_scalar.c, kernels_avx2.c and kernels_avx512.c after
 * each defines the same small set of 16-lane primitives (vf: 16 floats,
 * vi: 16 u32, vt: a 16-entry float table, vq: 16 int32 accumulators).  Every
 * primitive is exact lane by lane, or one IEEE operation per lane, so the
 * expression trees below (documented in kernels.h) are the same in every
 * path: that is what makes the paths bit-identical, and why the loops live
 * in one place.  Performance tricks that do not change a tree (two tiles
 * sharing one table load, prefetch, masked loads) are free to vary.
 */
#ifndef LRQ_KERNEL_ISA
#error "include kernels_body.h from a kernels_<isa>.c file"
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

/* The chunk sum of one plane of one tile (kernels.h, "Sign matrix"); lut:
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

/* All planes of one chunk, top plane first (Horner). */
ALWAYS_INLINE vf planes_sum(const size_t pb, const uint8_t *wp, const size_t h, const vt t0,
                            const vt t1, const vt t2, const vt t3, const int planes)
{
    int p = planes - 1;
    vf s = chunk_sum(t0, t1, t2, t3, vi_load_lut(wp + (size_t)p * pb, h), 1);
    for (p--; p >= 0; p--)
        s = vf_add(vf_add(s, s), chunk_sum(t0, t1, t2, t3, vi_load_lut(wp + (size_t)p * pb, h), 1));
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

/* The byte-matrix chunk sum (kernels.h, "Byte matrix"). */
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

static void k_tr_sign(const lrq_kmat *m, const size_t c_lo, const size_t c_hi, const float *z,
                      float *out)
{
    const size_t tiles = lrq_kmat_tiles(m);
    size_t c0, t, a, b, c;

    if (c_hi > c_lo)
        memset(out + 16 * c_lo, 0, 16 * (c_hi - c_lo) * sizeof(float));
    for (c0 = c_lo - c_lo % m->pc; c0 < c_hi; c0 += m->pc) {
        const size_t cp = min_sz(m->pc, m->kc - c0);
        const size_t cs = c_lo > c0 ? c_lo : c0, ce = min_sz(c_hi, c0 + cp);
        const uint8_t *panel = m->data + m->rows * c0 * 2;
        for (t = 0; t < tiles; t++) {
            const size_t h = min_sz(16, m->rows - 16 * t);
            const uint8_t *tp = panel + 32 * t * cp;
            for (a = cs; a < ce; a = b) {
                float zz[16], tab[64];
                vt t0, t1, t2, t3;
                b = lrq_segment_end(m, a, ce, 0);
                vf_store(zz, tile_inputs(m, z, t, h, m->scales ? a / m->gc : 0), 16);
                k_tables_f32(zz, 4, tab);
                t0 = vt_load(tab), t1 = vt_load(tab + 16), t2 = vt_load(tab + 32),
                t3 = vt_load(tab + 48);
                for (c = a; c < b; c++) {
                    const uint8_t *wp = tp + (c - c0) * h * 2;
                    int p = m->planes - 1;
                    vf s = chunk_sum(t0, t1, t2, t3, vi_transpose16(wp + (size_t)p * m->plane_bytes, h), 0);
                    for (p--; p >= 0; p--)
                        s = vf_add(vf_add(s, s),
                                   chunk_sum(t0, t1, t2, t3,
                                             vi_transpose16(wp + (size_t)p * m->plane_bytes, h), 0));
                    vf_store(out + 16 * c, vf_add(vf_load(out + 16 * c, 16), s), 16);
                }
            }
        }
    }
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
 * every tile, which divides the table traffic (research §7.1, "2 tiles per
 * table load").  mode 0: float tables; 1: int8; 2: int16 (one step per
 * block).  Every argument that selects code is a constant after inlining. */
ALWAYS_INLINE void fwd_tiles(const lrq_kmat *m, const uint8_t *tp, const size_t c0, const size_t cp,
                             const size_t t, const size_t h, const int ntile, const void *tab,
                             const float *step, float *out, const int mode, const int planes)
{
    const size_t run = 32 * cp, pb = m->plane_bytes; /* run: one full tile in this panel */
    const int wide = mode == 2;
    size_t a, b, c;
    int i;

    for (a = c0; a < c0 + cp; a = b) {
        vf acc[FWD_TILES];
        vq q[FWD_TILES][2];
        for (i = 0; i < ntile; i++) {
            acc[i] = vf_zero();
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
                const float *tb = (const float *)tab + 64 * c;
                const vt t0 = vt_load(tb), t1 = vt_load(tb + 16), t2 = vt_load(tb + 32),
                         t3 = vt_load(tb + 48);
                for (i = 0; i < ntile; i++)
                    acc[i] = vf_add(acc[i], planes_sum(pb, wp + (size_t)i * run, h, t0, t1, t2, t3, planes));
            } else {
                const vqt qt = vqt_load((const uint8_t *)tab + LRQ_ITAB_BYTES(wide) * c, wide);
                const int odd = (int)((c - a) & 1);
                for (i = 0; i < ntile; i++)
                    q[i][odd] = int_planes(q[i][odd], pb, wp + (size_t)i * run, h, qt, wide, planes);
            }
        }
        for (i = 0; i < ntile; i++) {
            if (mode)
                acc[i] = vf_mul(vq_to_f(vq_add(q[i][0], q[i][1])), vf_set1(step[a / LRQ_QBLOCK_CHUNKS]));
            else
                acc[i] = vf_lut_rows(acc[i]);
            flush(m, t + (size_t)i, h, a, acc[i], out);
        }
    }
}

/* Rows of tiles [t0, t1), panel by panel, full tiles in groups of FWD_TILES. */
ALWAYS_INLINE void fwd_walk(const lrq_kmat *m, const size_t t0, const size_t t1, const void *tab,
                            const float *step, float *out, const int mode, const int planes)
{
    size_t c0;

    zero_rows(m, t0, t1, out);
    for (c0 = 0; c0 < m->kc; c0 += m->pc) {
        const size_t cp = min_sz(m->pc, m->kc - c0);
        const uint8_t *panel = m->data + m->rows * c0 * 2;
        size_t t = t0;
        for (; t + FWD_TILES <= t1 && 16 * (t + FWD_TILES) <= m->rows; t += FWD_TILES)
            fwd_tiles(m, panel + 32 * t * cp, c0, cp, t, 16, FWD_TILES, tab, step, out, mode, planes);
        for (; t < t1; t++)
            fwd_tiles(m, panel + 32 * t * cp, c0, cp, t, min_sz(16, m->rows - 16 * t), 1, tab, step,
                      out, mode, planes);
    }
}

/* One function per (mode, plane count), each with its loops unrolled for
 * its constants; separate functions keep each one small enough for the
 * compiler's debug-info tracking. */
#define FWD_INSTANCE(mode, planes)                                                              \
    static void fwd_##mode##_##planes(const lrq_kmat *m, const size_t t0, const size_t t1,     \
                                      const void *tab, const float *step, float *out)          \
    {                                                                                           \
        fwd_walk(m, t0, t1, tab, step, out, mode, planes);                                     \
    }
#define FWD_MODE(mode) \
    FWD_INSTANCE(mode, 1) FWD_INSTANCE(mode, 2) FWD_INSTANCE(mode, 3) FWD_INSTANCE(mode, 4)
FWD_MODE(0)
FWD_MODE(1)
FWD_MODE(2)

typedef void (*fwd_fn)(const lrq_kmat *, size_t, size_t, const void *, const float *, float *);
static const fwd_fn fwd_instances[3][4] = {{fwd_0_1, fwd_0_2, fwd_0_3, fwd_0_4},
                                           {fwd_1_1, fwd_1_2, fwd_1_3, fwd_1_4},
                                           {fwd_2_1, fwd_2_2, fwd_2_3, fwd_2_4}};

static void k_fwd_sign(const lrq_kmat *m, const size_t t0, const size_t t1, const float *tab,
                       float *out)
{
    fwd_instances[0][m->planes - 1](m, t0, t1, tab, NULL, out);
}

static void k_fwd_sign_int(const lrq_kmat *m, const size_t t0, const size_t t1, const int wide,
                           const uint8_t *tab, const float *step, float *out)
{
    fwd_instances[wide ? 2 : 1][m->planes - 1](m, t0, t1, tab, step, out);
}

#define KERNEL_TABLE(var, isa_name)                                                         \
    const lrq_kernels var = {isa_name,   k_tables_f32, k_fwd_sign, k_fwd_byte, k_tr_sign, \
                             k_tr_byte, k_tables_int, k_fwd_sign_int}
