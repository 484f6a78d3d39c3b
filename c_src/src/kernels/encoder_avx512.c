/* SPDX-License-Identifier: MIT */
/*
 * AVX-512 (F, BW, DQ, VL) signcut kernels.  Each reproduces the scalar
 * kernel of encoder_scalar.c bit for bit: one vector lane per output
 * element, the same operations in the same order, and the canonical 16-lane
 * float64 reductions of encoder_internal.h held in two zmm registers
 * (lanes 0-7 and 8-15).  Compiled with a target attribute, never with a
 * build-wide -m flag; called only when dispatch.c found the CPU able.
 */
#include "common/encoder_kernels.h"

#if LRQ_X86
#include <immintrin.h>
#include <string.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
#define PIECE 4096

uint64_t lrq_sc_count_differ_popcnt(const uint64_t *a, const uint64_t *b, const uint64_t *f, size_t words);
extern const lrq_sc_kernels lrq_sc_kernels_scalar;

static inline uint16_t bits16(const uint64_t *const bits, const size_t i)
{
    /* i is a multiple of 16, and x86 is little-endian: the 16 bits are the
     * two bytes at i/8, one load (memcpy keeps it free of aliasing UB). */
    uint16_t v;
    memcpy(&v, (const unsigned char *)bits + (i >> 3), sizeof v);
    return v;
}

/* The same 16 bits straight into a mask register (kmovw from memory: a
 * load, where bits16() plus a move from a general register costs a uop on
 * the port the vector adds need). */
typedef uint16_t u16_alias __attribute__((may_alias));
TARGET static inline __mmask16 mask_at(const uint64_t *const bits, const size_t i)
{
    __mmask16 k;
    __asm__("kmovw %1, %0" : "=k"(k) : "m"(*(const u16_alias *)((const unsigned char *)bits + (i >> 3))));
    return k;
}

TARGET static inline __mmask16 tail_mask(const size_t n)
{
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

/* 16 int16 values times their row's signed scale (exact). */
TARGET static inline __m512 widen(const __mmask16 m, const int16_t *const p, const __m512 s)
{
    const __m512i w = _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(w), s);
}

/* Four flipped rows per pass over a piece of out: out is loaded once, the
 * four rows are added one after another (the scalar order), and four read
 * streams run at once, which is what a memory-bound loop needs. */
TARGET static void flip_update(float *const out, const size_t len, const int16_t *const rows,
                               const size_t ld, const uint32_t *const idx,
                               const float *const scale, const size_t count)
{
    size_t i0, q, i;
    for (i0 = 0; i0 < len; i0 += PIECE) {
        const size_t i1 = len - i0 < PIECE ? len : i0 + PIECE;
        for (q = 0; q + 4 <= count; q += 4) {
            const int16_t *const r0 = rows + (size_t)idx[q] * ld;
            const int16_t *const r1 = rows + (size_t)idx[q + 1] * ld;
            const int16_t *const r2 = rows + (size_t)idx[q + 2] * ld;
            const int16_t *const r3 = rows + (size_t)idx[q + 3] * ld;
            const __m512 s0 = _mm512_set1_ps(scale[q]);
            const __m512 s1 = _mm512_set1_ps(scale[q + 1]);
            const __m512 s2 = _mm512_set1_ps(scale[q + 2]);
            const __m512 s3 = _mm512_set1_ps(scale[q + 3]);
            /* The next four rows are fetched while these four are added:
             * flipped rows are scattered, so the hardware cannot guess. */
            const size_t qn = q + 8 <= count ? q + 4 : q;
            const char *const p0 = (const char *)(rows + (size_t)idx[qn] * ld);
            const char *const p1 = (const char *)(rows + (size_t)idx[qn + 1] * ld);
            const char *const p2 = (const char *)(rows + (size_t)idx[qn + 2] * ld);
            const char *const p3 = (const char *)(rows + (size_t)idx[qn + 3] * ld);
            for (i = i0; i < i1; i += 16) {
                const __mmask16 m = tail_mask(i1 - i);
                __m512 v;
                if ((i & 31) == 0) {
                    _mm_prefetch(p0 + 2 * i, _MM_HINT_T0);
                    _mm_prefetch(p1 + 2 * i, _MM_HINT_T0);
                    _mm_prefetch(p2 + 2 * i, _MM_HINT_T0);
                    _mm_prefetch(p3 + 2 * i, _MM_HINT_T0);
                }
                v = _mm512_maskz_loadu_ps(m, out + i);
                v = _mm512_add_ps(v, widen(m, r0 + i, s0));
                v = _mm512_add_ps(v, widen(m, r1 + i, s1));
                v = _mm512_add_ps(v, widen(m, r2 + i, s2));
                v = _mm512_add_ps(v, widen(m, r3 + i, s3));
                _mm512_mask_storeu_ps(out + i, m, v);
            }
        }
        if (q < count) {
            /* The last 1-3 rows in one pass, in the same order.  (A missing
             * row repeats the last one with a zero scale, which is never
             * added: the loop below stops at `left`.) */
            const size_t left = count - q;
            const int16_t *const r0 = rows + (size_t)idx[q] * ld;
            const int16_t *const r1 = left > 1 ? rows + (size_t)idx[q + 1] * ld : r0;
            const int16_t *const r2 = left > 2 ? rows + (size_t)idx[q + 2] * ld : r0;
            const __m512 s0 = _mm512_set1_ps(scale[q]);
            const __m512 s1 = _mm512_set1_ps(left > 1 ? scale[q + 1] : 0.0f);
            const __m512 s2 = _mm512_set1_ps(left > 2 ? scale[q + 2] : 0.0f);
            for (i = i0; i < i1; i += 16) {
                const __mmask16 m = tail_mask(i1 - i);
                __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, out + i), widen(m, r0 + i, s0));
                if (left > 1)
                    v = _mm512_add_ps(v, widen(m, r1 + i, s1));
                if (left > 2)
                    v = _mm512_add_ps(v, widen(m, r2 + i, s2));
                _mm512_mask_storeu_ps(out + i, m, v);
            }
        }
    }
}

TARGET static float max_abs(const float *const row, const size_t len)
{
    __m512 best = _mm512_setzero_ps();
    size_t j;
    for (j = 0; j < len; j += 16)
        best = _mm512_max_ps(best, _mm512_abs_ps(_mm512_maskz_loadu_ps(tail_mask(len - j), row + j)));
    return _mm512_reduce_max_ps(best);
}

/* Explicit round-to-nearest-even, whatever MXCSR says. */
TARGET static void to_fixed(const float *const row, const size_t len, const int shift, int16_t *const out)
{
    const __m512 scale = _mm512_set1_ps(lrq_sc_pow2(shift));
    size_t j;
    for (j = 0; j < len; j += 16) {
        const __mmask16 m = tail_mask(len - j);
        const __m512i v = _mm512_cvt_roundps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + j), scale),
                                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(out + j, m, _mm512_cvtepi32_epi16(v));
    }
}

/* Lanes whose bit is set take -v, the others v: the scalar "bit ? -v : v". */
TARGET static inline __m512 signed_by(const __m512 v, const __mmask16 neg)
{
    const __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32((int)0x80000000u));
    return _mm512_mask_xor_ps(v, neg, v, sign);
}

/* The signed block sums of 16 patterns: one in-register table lookup
 * (vpermps reads the low 4 bits of each index) per nibble. */
TARGET static inline __m512 block_sum16(const __m512i x, const __m512 *const t, const unsigned groups)
{
    __m512 acc = _mm512_setzero_ps();
    unsigned g;
    for (g = 0; g < groups; g++)
        acc = _mm512_add_ps(acc, _mm512_permutexvar_ps(_mm512_srli_epi32(x, 4 * g), t[g]));
    return acc;
}

TARGET static void block_correct(float *const out, const size_t len, const uint32_t *const pat,
                                 const lrq_sc_table *const tab, const unsigned groups)
{
    __m512 t[8];
    size_t i;
    unsigned g;
    for (g = 0; g < groups; g++)
        t[g] = _mm512_loadu_ps(tab[g]);
    for (i = 0; i < len; i += 16) {
        const __mmask16 m = tail_mask(len - i);
        const __m512 corr = block_sum16(_mm512_maskz_loadu_epi32(m, pat + i), t, groups);
        _mm512_mask_storeu_ps(out + i, m, _mm512_sub_ps(_mm512_maskz_loadu_ps(m, out + i), corr));
    }
}

TARGET static void sub_signed(float *const out, const size_t len, const uint64_t *const bits, const float a)
{
    const __m512 av = _mm512_set1_ps(a);
    size_t i;
    for (i = 0; i < len; i += 16) {
        const __mmask16 m = tail_mask(len - i);
        const __m512 v = signed_by(av, (__mmask16)bits16(bits, i));
        _mm512_mask_storeu_ps(out + i, m, _mm512_sub_ps(_mm512_maskz_loadu_ps(m, out + i), v));
    }
}

/* The canonical combine of two zmm partials (lanes 0-7, 8-15). */
TARGET static inline double combine(const __m512d lo, const __m512d hi)
{
    double p[16];
    _mm512_storeu_pd(p, lo);
    _mm512_storeu_pd(p + 8, hi);
    return lrq_sc_combine16(p);
}

TARGET static double sum_abs(const float *const x, const size_t len, uint64_t *const bits)
{
    __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
    size_t i;
    if (bits != NULL)
        memset(bits, 0, ((len + 63) / 64) * sizeof *bits);
    for (i = 0; i < len; i += 16) {
        const __m512 x16 = _mm512_maskz_loadu_ps(tail_mask(len - i), x + i);
        const __m512 v = _mm512_abs_ps(x16);
        if (bits != NULL)
            bits[i >> 6] |= (uint64_t)_mm512_movepi32_mask(_mm512_castps_si512(x16)) << (i & 63);
        lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
        hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
    }
    return combine(lo, hi);
}

TARGET static double signed_sum(const float *const x, const uint64_t *const bits, const size_t len)
{
    __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
    size_t i;
    for (i = 0; i < len; i += 16) {
        const __m512 v = signed_by(_mm512_maskz_loadu_ps(tail_mask(len - i), x + i), (__mmask16)bits16(bits, i));
        lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
        hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
    }
    return combine(lo, hi);
}

TARGET static inline void add_squares(__m512d *const lo, __m512d *const hi, const __m512 v)
{
    const __m512d a = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    const __m512d b = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    /* The squares of floats are exact in double, so multiply-then-add here
     * equals the scalar code's rounding exactly. */
    *lo = _mm512_add_pd(*lo, _mm512_mul_pd(a, a));
    *hi = _mm512_add_pd(*hi, _mm512_mul_pd(b, b));
}

TARGET static inline __attribute__((always_inline)) double block_row_body(float *const row, const size_t len, const uint32_t rowpat,
                               const uint32_t *const colpat, const lrq_sc_table *const tab,
                               const unsigned groups, const int write, const int norm)
{
    const __m512i rp = _mm512_set1_epi32((int)rowpat);
    __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
    __m512 t[8];
    size_t j;
    unsigned g;
    for (g = 0; g < groups; g++)
        t[g] = _mm512_loadu_ps(tab[g]);
    for (j = 0; j < len; j += 16) {
        const __mmask16 m = tail_mask(len - j);
        const __m512i x = _mm512_xor_si512(rp, _mm512_maskz_loadu_epi32(m, colpat + j));
        const __m512 v = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, row + j), block_sum16(x, t, groups));
        if (write)
            _mm512_mask_storeu_ps(row + j, m, v);
        /* Lanes past len are +0.0 (maskz) and add nothing. */
        if (norm)
            add_squares(&lo, &hi, v);
    }
    return combine(lo, hi);
}

LRQ_SC_BLOCK_ROW(TARGET)

/* Sixteen vectors at a time: sixteen accumulators (lanes j mod 16) stay in
 * registers while the row streams from L1 once per group; the constant
 * trip count lets the compiler unroll and keep them there. */
TARGET static inline void multi16(const float *const row, const size_t len, const uint64_t *const vecs,
                                  const size_t words, float *const out)
{
#define M16_ALL(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define M16_DECL(k) __m512 a##k = _mm512_setzero_ps(); const uint64_t *const v##k = vecs + (size_t)(k) * words;
#define M16_ADD(k) a##k = _mm512_add_ps(a##k, _mm512_mask_blend_ps(mask_at(v##k, j), r, nr));
#define M16_OUT(k) _mm512_storeu_ps(p, a##k); out[k] = 0.5f * lrq_sc_combine16f(p);
    /* Sixteen accumulators in named registers (an array of them ends up
     * stored to the stack on every iteration). */
    M16_ALL(M16_DECL)
    float p[16];
    size_t j;
    for (j = 0; j < len; j += 16) {
        const __m512 r = _mm512_maskz_loadu_ps(tail_mask(len - j), row + j);
        __m512 nr = signed_by(r, (__mmask16)0xFFFF);
        /* Hidden from the optimizer, which would otherwise turn each blend
         * below into a register copy plus a masked XOR: two uops where
         * vblendmps is one.  A blend of r and -r is the value signed_by()
         * gives. */
        __asm__("" : "+v"(nr));
        M16_ALL(M16_ADD)
    }
    M16_ALL(M16_OUT)
#undef M16_ALL
#undef M16_DECL
#undef M16_ADD
#undef M16_OUT
}

TARGET static void multi_row(const float *const row, const size_t len, const uint64_t *const vecs,
                             const size_t words, const unsigned nk, float *const out)
{
    unsigned k0;
    for (k0 = 0; k0 + 16 <= nk; k0 += 16)
        multi16(row, len, vecs + (size_t)k0 * words, words, out + k0);
    if (k0 < nk) /* never for the encoder's blocks of 32; exact either way */
        lrq_sc_kernels_scalar.multi_signed_sum(row, 0, 1, len, vecs + (size_t)k0 * words, words, nk - k0,
                                               out + k0, 0);
}

/* Four rows and four vectors at a time: each sign pattern is turned once
 * into a vector of +-1.0 and serves the four rows through a multiply-add
 * (exact: the product is +-row[j], so the one rounding is that of the
 * add).  That is 5 vector operations per 4 (row, vector) pairs where
 * multi16 needs 8, with 16 accumulators in registers; the four rows stay
 * in L1 while all the vectors go by. */
TARGET static void multi4x4(const float *const rows, const size_t ld, const size_t len,
                            const uint64_t *const vecs, const size_t words, float *const out,
                            const size_t out_ld)
{
#define M44_ROWS(X, k) X(0, k) X(1, k) X(2, k) X(3, k)
#define M44_ALL(X) M44_ROWS(X, 0) M44_ROWS(X, 1) M44_ROWS(X, 2) M44_ROWS(X, 3)
#define M44_DECL(r, k) __m512 a##r##k = _mm512_setzero_ps();
#define M44_FMA(r, k) a##r##k = _mm512_fmadd_ps(s##k, x##r, a##r##k);
#define M44_OUT(r, k) _mm512_storeu_ps(p, a##r##k); out[(r) * out_ld + (k)] = 0.5f * lrq_sc_combine16f(p);
    const __m512 one = _mm512_set1_ps(1.0f), minus = _mm512_set1_ps(-1.0f);
    const float *const r0 = rows, *const r1 = rows + ld, *const r2 = rows + 2 * ld, *const r3 = rows + 3 * ld;
    const uint64_t *const v0 = vecs, *const v1 = vecs + words, *const v2 = vecs + 2 * words,
                   *const v3 = vecs + 3 * words;
    float p[16];
    size_t j;
    M44_ALL(M44_DECL)
    for (j = 0; j < len; j += 16) {
        const __mmask16 m = tail_mask(len - j);
        const __m512 x0 = _mm512_maskz_loadu_ps(m, r0 + j), x1 = _mm512_maskz_loadu_ps(m, r1 + j);
        const __m512 x2 = _mm512_maskz_loadu_ps(m, r2 + j), x3 = _mm512_maskz_loadu_ps(m, r3 + j);
        const __m512 s0 = _mm512_mask_blend_ps(mask_at(v0, j), one, minus);
        const __m512 s1 = _mm512_mask_blend_ps(mask_at(v1, j), one, minus);
        const __m512 s2 = _mm512_mask_blend_ps(mask_at(v2, j), one, minus);
        const __m512 s3 = _mm512_mask_blend_ps(mask_at(v3, j), one, minus);
        M44_ALL(M44_FMA)
    }
    M44_ALL(M44_OUT)
#undef M44_ROWS
#undef M44_ALL
#undef M44_DECL
#undef M44_FMA
#undef M44_OUT
}

TARGET static void multi_signed_sum(const float *const rows, const size_t ld, const unsigned nrows,
                                    const size_t len, const uint64_t *const vecs, const size_t words,
                                    const unsigned nk, float *const out, const size_t out_ld)
{
    unsigned r = 0, k;
    if (nk % 4 == 0)
        for (; r + 4 <= nrows; r += 4)
            for (k = 0; k < nk; k += 4)
                multi4x4(rows + r * ld, ld, len, vecs + (size_t)k * words, words, out + r * out_ld + k, out_ld);
    for (; r < nrows; r++)
        multi_row(rows + r * ld, len, vecs, words, nk, out + r * out_ld);
}

TARGET static void sign_bits(const float *const x, const size_t len, uint64_t *const bits)
{
    size_t i;
    memset(bits, 0, ((len + 63) / 64) * sizeof *bits);
    for (i = 0; i < len; i += 16) {
        const __m512i v = _mm512_castps_si512(_mm512_maskz_loadu_ps(tail_mask(len - i), x + i));
        bits[i >> 6] |= (uint64_t)_mm512_movepi32_mask(v) << (i & 63);
    }
}


const lrq_sc_kernels lrq_sc_kernels_avx512 = {
    flip_update, max_abs, to_fixed, block_correct, sub_signed, sum_abs, signed_sum, block_row, multi_signed_sum, sign_bits,
    lrq_sc_count_differ_popcnt,
};

#endif
