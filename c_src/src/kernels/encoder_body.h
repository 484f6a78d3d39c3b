/* SPDX-License-Identifier: MIT */
/*
 * The signcut encoder kernels, written once and compiled once per
 * instruction set (the contract they keep is in common/encoder_kernels.h).
 *
 * Included by kernels/encoder_<isa>.c after each defines the same small set
 * of 16-lane primitives (vf and its vf_ arithmetic come from the ISA's
 * kernels/lanes_<isa>.h, shared with the product kernels):
 *
 *   vf  16 floats          vf_zero, vf_set1, ef_load(p, n), ef_store(p, v, n),
 *                          vf_add, vf_sub, vf_mul, ef_abs, ef_max,
 *                          ef_keep(v, n) (lanes >= n become +0),
 *                          ef_from_i16(p, n), ef_store_i16(p, v, n) (v holds
 *                          integers), ef_signs(v) (the 16 sign bits)
 *   eu  16 uint32          eu_set1, eu_load(p, n), eu_xor
 *   et  a 16-entry table   et_load(t), et_lookup(t, x): entry x & 15 of each
 *                          lane; eu_next_nibble(x) = x >> 4
 *   es  16 sign flags      es_at(bits, i) (bits i .. i+15, i % 16 == 0),
 *                          ef_negate(v, s): -v where the flag is set
 *   ev  16 signs as used   ev_at(bits, i), ef_add_signed(a, x, s): a + (flag
 *       by a sum           ? -x : x), one rounding (an FMA by +-1 qualifies)
 *   ed  16 float64 sums    ed_zero, ed_add(a, v), ed_add_squares(a, v),
 *                          ed_store(p, a) (16 doubles, lane order)
 *
 * Loads with n < 16 read the first n lanes and give +0 in the others;
 * stores write the first n lanes only.  Every primitive is exact lane by
 * lane or one IEEE operation per lane, so every path evaluates the same
 * operations in the same order, and the canonical reductions are stored
 * and combined by the same combine16 code.  Adding +0 to a partial
 * sum that started at +0 never changes it (a sum is -0 only when both terms
 * are), which is why short tails may run full width.
 *
 * Each loop calls its step once per full 16 lanes with a constant n = 16,
 * so the masks fold away there, and once more for a short tail.
 */
#ifndef LRQ_ENCODER_ISA
#error "include encoder_body.h from a kernels/encoder_<isa>.c file"
#endif

/* Elements in cache-sized pieces: a piece of out stays in L1 while every
 * flipped row streams through it, so each row is read once, contiguously. */
#define PIECE 4096

/* The (rows x vectors) block each multi_signed_sum step keeps in registers
 * (an ISA file with more registers raises it). */
#ifndef MULTI_ROWS
#define MULTI_ROWS 1
#endif
#ifndef MULTI_VECS
#define MULTI_VECS 1
#endif

#ifndef ALWAYS_INLINE
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#endif


/* The loop shape above: step(i, n) over [0, len) in 16s. */
#define FOR_LANES(len, i, step)                                                                    \
    do {                                                                                           \
        for ((i) = 0; (i) + 16 <= (len); (i) += 16)                                                \
            step((i), 16);                                                                         \
        if ((i) < (len))                                                                           \
            step((i), (len) - (i));                                                                \
    } while (0)

/* The combine step of the canonical reductions (common/encoder_kernels.h),
 * in float64 and, for multi_signed_sum, in float32. */
#define COMBINE16(name, type)                                                                      \
    static inline type name(type p[16])                                                            \
    {                                                                                              \
        int h, l;                                                                                  \
        for (h = 8; h >= 1; h >>= 1)                                                               \
            for (l = 0; l < h; l++)                                                                \
                p[l] += p[l + h];                                                                  \
        return p[0];                                                                               \
    }
COMBINE16(combine16, double)
COMBINE16(combine16f, float)

static inline double ed_result(const ed a)
{
    double p[16];
    ed_store(p, a);
    return combine16(p);
}

/* out[i] += (float)row[i] * s for the (1 to 4) rows given, one after another
 * in the caller's order. */
ALWAYS_INLINE void flip_rows(float *const out, const size_t i0, const size_t i1,
                             const int16_t *const *const row, const float *const s,
                             const unsigned nrows, const char *const *const next)
{
    vf scale[4];
    size_t i;
    unsigned q;
    for (q = 0; q < nrows; q++)
        scale[q] = vf_set1(s[q]);
#define FLIP_STEP(at, n)                                                                           \
    do {                                                                                           \
        vf v = ef_load(out + (at), (n));                                                           \
        if (next != NULL && ((at) & 31) == 0)                                                      \
            for (q = 0; q < nrows; q++)                                                            \
                __builtin_prefetch(next[q] + 2 * (at), 0, 3);                                      \
        for (q = 0; q < nrows; q++)                                                                \
            v = vf_add(v, vf_mul(ef_from_i16(row[q] + (at), (n)), scale[q]));                      \
        ef_store(out + (at), v, (n));                                                              \
    } while (0)
    for (i = i0; i + 16 <= i1; i += 16)
        FLIP_STEP(i, 16);
    if (i < i1)
        FLIP_STEP(i, i1 - i);
#undef FLIP_STEP
}

/* Four flipped rows per pass over a piece of out: out is loaded once, the
 * rows are added one after another (the order of the contract), and four
 * read streams run at once, with the next four rows prefetched: flipped
 * rows are scattered, so the hardware cannot guess them. */
static void e_flip_update(float *const out, const size_t len, const int16_t *const rows,
                          const size_t ld, const uint32_t *const idx, const float *const scale,
                          const size_t count)
{
    size_t i0, q;
    unsigned r;
    for (i0 = 0; i0 < len; i0 += PIECE) {
        const size_t i1 = len - i0 < PIECE ? len : i0 + PIECE;
        for (q = 0; q + 4 <= count; q += 4) {
            const int16_t *row[4];
            const char *next[4];
            const size_t qn = q + 8 <= count ? q + 4 : q;
            for (r = 0; r < 4; r++) {
                row[r] = rows + (size_t)idx[q + r] * ld;
                next[r] = (const char *)(rows + (size_t)idx[qn + r] * ld);
            }
            flip_rows(out, i0, i1, row, scale + q, 4, next);
        }
        if (q < count) {
            const int16_t *row[4];
            for (r = 0; q + r < count; r++)
                row[r] = rows + (size_t)idx[q + r] * ld;
            if (count - q == 1)
                flip_rows(out, i0, i1, row, scale + q, 1, NULL);
            else if (count - q == 2)
                flip_rows(out, i0, i1, row, scale + q, 2, NULL);
            else
                flip_rows(out, i0, i1, row, scale + q, 3, NULL);
        }
    }
}

static float e_max_abs(const float *const row, const size_t len)
{
    vf best = vf_zero();
    float lanes[16], out = 0.0f;
    size_t j;
    int k;
#define MAX_STEP(at, n) best = ef_max(best, ef_abs(ef_load(row + (at), (n))))
    FOR_LANES(len, j, MAX_STEP);
#undef MAX_STEP
    ef_store(lanes, best, 16);
    for (k = 0; k < 16; k++)
        out = lanes[k] > out ? lanes[k] : out;
    return out;
}

/* Round half to even for |v| < 2^22 by adding and subtracting 1.5 * 2^23
 * (IEEE semantics; no fast-math anywhere): the same two operations in
 * every path, whatever a conversion instruction or MXCSR would do. */
static void e_to_fixed(const float *const row, const size_t len, const int shift, int16_t *const out)
{
    const vf scale = vf_set1(lrq_sc_pow2(shift)), magic = vf_set1(12582912.0f);
    size_t j;
#define FIXED_STEP(at, n)                                                                          \
    ef_store_i16(out + (at), vf_sub(vf_add(vf_mul(ef_load(row + (at), (n)), scale), magic), magic), (n))
    FOR_LANES(len, j, FIXED_STEP);
#undef FIXED_STEP
}

/* Signed block sums of 16 patterns (common/encoder_kernels.h). */
ALWAYS_INLINE vf block_sum(eu x, const et *const t, const unsigned groups)
{
    vf acc = vf_zero();
    unsigned g;
    /* Nibble g is brought down by one shift of 4 per group. */
    for (g = 0; g < groups; g++, x = eu_next_nibble(x))
        acc = vf_add(acc, et_lookup(t[g], x));
    return acc;
}

ALWAYS_INLINE void load_tables(et *const t, const lrq_sc_table *const tab, const unsigned groups)
{
    unsigned g;
    for (g = 0; g < groups; g++)
        t[g] = et_load(tab[g]);
}

static void e_block_correct(float *const out, const size_t len, const uint32_t *const pat,
                            const lrq_sc_table *const tab, const unsigned groups)
{
    et t[8];
    size_t i;
    load_tables(t, tab, groups);
#define CORRECT_STEP(at, n)                                                                        \
    ef_store(out + (at), vf_sub(ef_load(out + (at), (n)), block_sum(eu_load(pat + (at), (n)), t, groups)), (n))
    FOR_LANES(len, i, CORRECT_STEP);
#undef CORRECT_STEP
}

static void e_sub_signed(float *const out, const size_t len, const uint64_t *const bits, const float a)
{
    const vf av = vf_set1(a);
    size_t i;
#define SUB_STEP(at, n)                                                                            \
    ef_store(out + (at), vf_sub(ef_load(out + (at), (n)), ef_negate(av, es_at(bits, (at)))), (n))
    FOR_LANES(len, i, SUB_STEP);
#undef SUB_STEP
}

static void e_sign_bits(const float *const x, const size_t len, uint64_t *const bits)
{
    size_t i;
    memset(bits, 0, ((len + 63) / 64) * sizeof *bits);
#define SIGN_STEP(at, n) bits[(at) >> 6] |= (uint64_t)ef_signs(ef_load(x + (at), (n))) << ((at) & 63)
    FOR_LANES(len, i, SIGN_STEP);
#undef SIGN_STEP
}

static double e_sum_abs(const float *const x, const size_t len, uint64_t *const bits)
{
    ed acc = ed_zero();
    size_t i;
    if (bits != NULL)
        memset(bits, 0, ((len + 63) / 64) * sizeof *bits);
#define ABS_STEP(at, n)                                                                            \
    do {                                                                                           \
        const vf v = ef_load(x + (at), (n));                                                       \
        if (bits != NULL)                                                                          \
            bits[(at) >> 6] |= (uint64_t)ef_signs(v) << ((at) & 63);                               \
        acc = ed_add(acc, ef_abs(v));                                                              \
    } while (0)
    FOR_LANES(len, i, ABS_STEP);
#undef ABS_STEP
    return ed_result(acc);
}

static double e_signed_sum(const float *const x, const uint64_t *const bits, const size_t len)
{
    ed acc = ed_zero();
    size_t i;
#define SIGNED_STEP(at, n) acc = ed_add(acc, ef_negate(ef_load(x + (at), (n)), es_at(bits, (at))))
    FOR_LANES(len, i, SIGNED_STEP);
#undef SIGNED_STEP
    return ed_result(acc);
}

/* block_row (common/encoder_kernels.h) for constant write / norm flags. */
ALWAYS_INLINE double block_row_body(float *const row, const size_t len, const uint32_t rowpat,
                                    const uint32_t *const colpat, const lrq_sc_table *const tab,
                                    const unsigned groups, const int write, const int norm)
{
    const eu rp = eu_set1(rowpat);
    ed sq = ed_zero();
    et t[8];
    size_t j;
    load_tables(t, tab, groups);
    /* Lanes past len are zeroed so that they add nothing to the squares. */
#define ROW_STEP(at, n)                                                                            \
    do {                                                                                           \
        const eu x = eu_xor(rp, eu_load(colpat + (at), (n)));                                      \
        const vf v = ef_keep(vf_sub(ef_load(row + (at), (n)), block_sum(x, t, groups)), (n));      \
        if (write)                                                                                 \
            ef_store(row + (at), v, (n));                                                          \
        if (norm)                                                                                  \
            sq = ed_add_squares(sq, v);                                                            \
    } while (0)
    FOR_LANES(len, j, ROW_STEP);
#undef ROW_STEP
    return ed_result(sq);
}

/* The two common modes (the row-major update writes and takes the norm,
 * the transposed one writes, an exact norm only reads) each get a copy
 * compiled for constant flags. */
static double e_block_row(float *const row, const size_t len, const uint32_t rowpat,
                          const uint32_t *const colpat, const lrq_sc_table *const tab,
                          const unsigned groups, const int mode)
{
    switch (mode) {
    case LRQ_SC_WRITE:
        return block_row_body(row, len, rowpat, colpat, tab, groups, 1, 0);
    case LRQ_SC_NORM:
        return block_row_body(row, len, rowpat, colpat, tab, groups, 0, 1);
    default:
        return block_row_body(row, len, rowpat, colpat, tab, groups, mode & LRQ_SC_WRITE,
                              mode & LRQ_SC_NORM);
    }
}

/* nr rows x nv vectors of multi_signed_sum, all accumulators live at once;
 * inlined with constant nr and nv, the loops unroll into registers. */
ALWAYS_INLINE void multi_block(const float *const rows, const size_t ld, const unsigned nr,
                               const size_t len, const uint64_t *const vecs, const size_t words,
                               const unsigned nv, float *const out, const size_t out_ld)
{
    vf acc[MULTI_ROWS][MULTI_VECS];
    float p[16];
    size_t j;
    unsigned r, k;
    for (r = 0; r < nr; r++)
        for (k = 0; k < nv; k++)
            acc[r][k] = vf_zero();
#define MULTI_STEP(at, n)                                                                          \
    do {                                                                                           \
        vf x[MULTI_ROWS];                                                                          \
        for (r = 0; r < nr; r++)                                                                   \
            x[r] = ef_load(rows + r * ld + (at), (n));                                             \
        for (k = 0; k < nv; k++) {                                                                 \
            const ev s = ev_at(vecs + (size_t)k * words, (at));                                    \
            for (r = 0; r < nr; r++)                                                               \
                acc[r][k] = ef_add_signed(acc[r][k], x[r], s);                                     \
        }                                                                                          \
    } while (0)
    FOR_LANES(len, j, MULTI_STEP);
#undef MULTI_STEP
    for (r = 0; r < nr; r++)
        for (k = 0; k < nv; k++) {
            ef_store(p, acc[r][k], 16);
            out[r * out_ld + k] = 0.5f * combine16f(p);
        }
}

static void e_multi_signed_sum(const float *const rows, const size_t ld, const unsigned nrows,
                               const size_t len, const uint64_t *const vecs, const size_t words,
                               const unsigned nk, float *const out, const size_t out_ld)
{
    unsigned r = 0, k;
    for (; r + MULTI_ROWS <= nrows; r += MULTI_ROWS) {
        for (k = 0; k + MULTI_VECS <= nk; k += MULTI_VECS)
            multi_block(rows + r * ld, ld, MULTI_ROWS, len, vecs + (size_t)k * words, words,
                        MULTI_VECS, out + r * out_ld + k, out_ld);
        for (; k < nk; k++) /* never for the encoder's blocks of 32 */
            multi_block(rows + r * ld, ld, MULTI_ROWS, len, vecs + (size_t)k * words, words, 1,
                        out + r * out_ld + k, out_ld);
    }
    for (; r < nrows; r++) {
        for (k = 0; k + MULTI_VECS <= nk; k += MULTI_VECS)
            multi_block(rows + r * ld, ld, 1, len, vecs + (size_t)k * words, words, MULTI_VECS,
                        out + r * out_ld + k, out_ld);
        for (; k < nk; k++)
            multi_block(rows + r * ld, ld, 1, len, vecs + (size_t)k * words, words, 1,
                        out + r * out_ld + k, out_ld);
    }
}

/* Compiled with the file's target, the popcount is one instruction where
 * the ISA has POPCNT. */
static uint64_t e_count_differ(const uint64_t *const a, const uint64_t *const b,
                               const uint64_t *const f, const size_t words)
{
    uint64_t total = 0;
    size_t w;
    for (w = 0; w < words; w++)
        total += (uint64_t)__builtin_popcountll((a[w] ^ b[w]) & f[w]);
    return total;
}

#define ENCODER_TABLE(var)                                                                         \
    const lrq_sc_kernels var = {e_flip_update, e_max_abs,   e_to_fixed,         e_block_correct,   \
                                e_sub_signed,  e_sum_abs,   e_signed_sum,       e_block_row,       \
                                e_multi_signed_sum,         e_sign_bits,        e_count_differ}
