/* SPDX-License-Identifier: MIT */
/*
 * AVX2 signcut kernels, bit-identical to encoder_scalar.c (see
 * encoder_internal.h): one lane per output element, the same operations in
 * the same order; the canonical 16-lane float64 reductions are held in four
 * ymm registers (lanes 0-3, 4-7, 8-11, 12-15).  No FMA is used anywhere, so
 * the results cannot depend on contraction.
 */
#include "common/encoder_kernels.h"

#if LRQ_X86
#include <immintrin.h>
#include <string.h>

#define TARGET __attribute__((target("avx2")))
#define PIECE 4096

uint64_t lrq_sc_count_differ_popcnt(const uint64_t *a, const uint64_t *b, const uint64_t *f, size_t words);

/* Eight bits -> eight lanes holding the float sign bit where the bit is 1. */
TARGET static inline __m256 sign_lanes(const unsigned bits8)
{
    const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i b = _mm256_and_si256(_mm256_set1_epi32((int)bits8), lane_bit);
    const __m256i on = _mm256_cmpeq_epi32(b, lane_bit);
    return _mm256_castsi256_ps(_mm256_and_si256(on, _mm256_set1_epi32((int)0x80000000u)));
}

/* A mask selecting the first n of 8 lanes, for partial loads and stores. */
TARGET static inline __m256i lanes_below(const size_t n)
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < 8 ? n : 8)), idx);
}

/* 8 int16 values (lanes below n; the others read 0) times the scale. */
TARGET static inline __m256 widen8(const int16_t *const p, const size_t n, const __m256 s)
{
    __m128i h;
    if (n >= 8) {
        h = _mm_loadu_si128((const __m128i *)(const void *)p);
    } else {
        int16_t tmp[8] = {0};
        size_t k;
        for (k = 0; k < n; k++)
            tmp[k] = p[k];
        h = _mm_loadu_si128((const __m128i *)(const void *)tmp);
    }
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(h)), s);
}

TARGET static void flip_update(float *const out, const size_t len, const int16_t *const rows,
                               const size_t ld, const uint32_t *const idx,
                               const float *const scale, const size_t count)
{
    size_t i0, q, i;
    for (i0 = 0; i0 < len; i0 += PIECE) {
        const size_t i1 = len - i0 < PIECE ? len : i0 + PIECE;
        for (q = 0; q < count; q++) {
            const int16_t *const row = rows + (size_t)idx[q] * ld;
            const __m256 s = _mm256_set1_ps(scale[q]);
            for (i = i0; i + 16 <= i1; i += 16) {
                const __m256 a0 = widen8(row + i, 8, s);
                const __m256 a1 = widen8(row + i + 8, 8, s);
                _mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_loadu_ps(out + i), a0));
                _mm256_storeu_ps(out + i + 8, _mm256_add_ps(_mm256_loadu_ps(out + i + 8), a1));
            }
            for (; i < i1; i += 8) {
                const __m256i m = lanes_below(i1 - i);
                const __m256 a = widen8(row + i, i1 - i, s);
                _mm256_maskstore_ps(out + i, m, _mm256_add_ps(_mm256_maskload_ps(out + i, m), a));
            }
        }
    }
}

static inline unsigned bits8(const uint64_t *const bits, const size_t i)
{
    /* i is a multiple of 8: the byte never straddles words. */
    return (unsigned)(bits[i >> 6] >> (i & 63)) & 0xFFu;
}

/* A 16-entry table in two registers (entries 0-7, 8-15). */
typedef struct {
    __m256 lo, hi;
} table16;

/* Signed block sums of 8 patterns: per nibble, two 8-entry lookups
 * (vpermps reads the low 3 bits) and a blend on bit 3. */
TARGET static inline __m256 block_sum8(const __m256i x, const table16 *const t, const unsigned groups)
{
    __m256 acc = _mm256_setzero_ps();
    unsigned g;
    for (g = 0; g < groups; g++) {
        const __m256i idx = _mm256_srli_epi32(x, (int)(4 * g));
        const __m256 lo = _mm256_permutevar8x32_ps(t[g].lo, idx);
        const __m256 hi = _mm256_permutevar8x32_ps(t[g].hi, idx);
        const __m256 sel = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28));
        acc = _mm256_add_ps(acc, _mm256_blendv_ps(lo, hi, sel));
    }
    return acc;
}

TARGET static void load_tables(table16 *const t, const lrq_sc_table *const tab, const unsigned groups)
{
    unsigned g;
    for (g = 0; g < groups; g++) {
        t[g].lo = _mm256_loadu_ps(tab[g]);
        t[g].hi = _mm256_loadu_ps(tab[g] + 8);
    }
}

/* pat[i .. i+8), lanes at or past len reading 0. */
TARGET static inline __m256i load8u(const uint32_t *const p, const size_t i, const size_t len)
{
    if (i + 8 <= len)
        return _mm256_loadu_si256((const __m256i *)(const void *)(p + i));
    if (i >= len)
        return _mm256_setzero_si256();
    return _mm256_maskload_epi32((const int *)(const void *)(p + i), lanes_below(len - i));
}

TARGET static void block_correct(float *const out, const size_t len, const uint32_t *const pat,
                                 const lrq_sc_table *const tab, const unsigned groups)
{
    table16 t[8];
    size_t i;
    load_tables(t, tab, groups);
    for (i = 0; i < len; i += 8) {
        const __m256i m = lanes_below(len - i);
        const __m256 corr = block_sum8(load8u(pat, i, len), t, groups);
        _mm256_maskstore_ps(out + i, m, _mm256_sub_ps(_mm256_maskload_ps(out + i, m), corr));
    }
}

TARGET static void sub_signed(float *const out, const size_t len, const uint64_t *const bits, const float a)
{
    const __m256 av = _mm256_set1_ps(a);
    size_t i;
    for (i = 0; i < len; i += 8) {
        const __m256i m = lanes_below(len - i);
        const __m256 v = _mm256_xor_ps(av, sign_lanes(bits8(bits, i)));
        _mm256_maskstore_ps(out + i, m, _mm256_sub_ps(_mm256_maskload_ps(out + i, m), v));
    }
}

/* Sixteen float64 partial sums in four registers, lane l = element l mod 16. */
typedef struct {
    __m256d p[4];
} acc16;

TARGET static inline void acc_init(acc16 *const a)
{
    a->p[0] = a->p[1] = a->p[2] = a->p[3] = _mm256_setzero_pd();
}

/* Add 8 floats that belong to lanes 8h .. 8h+7 (h = 0 or 1). */
TARGET static inline void acc_add8(acc16 *const a, const int h, const __m256 v)
{
    a->p[2 * h] = _mm256_add_pd(a->p[2 * h], _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    a->p[2 * h + 1] = _mm256_add_pd(a->p[2 * h + 1], _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

TARGET static inline void acc_add8_squares(acc16 *const a, const int h, const __m256 v)
{
    const __m256d x = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    const __m256d y = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    a->p[2 * h] = _mm256_add_pd(a->p[2 * h], _mm256_mul_pd(x, x));
    a->p[2 * h + 1] = _mm256_add_pd(a->p[2 * h + 1], _mm256_mul_pd(y, y));
}

TARGET static inline double acc_result(const acc16 *const a)
{
    double p[16];
    int r;
    for (r = 0; r < 4; r++)
        _mm256_storeu_pd(p + 4 * r, a->p[r]);
    return lrq_sc_combine16(p);
}

/* x[i .. i+8) with lanes at or past len reading as +0.0. */
TARGET static inline __m256 load8(const float *const x, const size_t i, const size_t len)
{
    if (i + 8 <= len)
        return _mm256_loadu_ps(x + i);
    if (i >= len)
        return _mm256_setzero_ps();
    return _mm256_maskload_ps(x + i, lanes_below(len - i));
}

TARGET static double sum_abs_only(const float *const x, const size_t len)
{
    const __m256 nosign = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    acc16 a;
    size_t i;
    acc_init(&a);
    for (i = 0; i < len; i += 16) {
        acc_add8(&a, 0, _mm256_and_ps(load8(x, i, len), nosign));
        acc_add8(&a, 1, _mm256_and_ps(load8(x, i + 8, len), nosign));
    }
    return acc_result(&a);
}

TARGET static void sign_bits(const float *x, size_t len, uint64_t *bits);

TARGET static double sum_abs(const float *const x, const size_t len, uint64_t *const bits)
{
    const double v = sum_abs_only(x, len);
    if (bits != NULL)
        sign_bits(x, len, bits);
    return v;
}

TARGET static double signed_sum(const float *const x, const uint64_t *const bits, const size_t len)
{
    acc16 a;
    size_t i;
    acc_init(&a);
    for (i = 0; i < len; i += 16) {
        acc_add8(&a, 0, _mm256_xor_ps(load8(x, i, len), sign_lanes(bits8(bits, i))));
        acc_add8(&a, 1, _mm256_xor_ps(load8(x, i + 8, len), sign_lanes(bits8(bits, i + 8))));
    }
    return acc_result(&a);
}

TARGET static inline __attribute__((always_inline)) double block_row_body(float *const row, const size_t len, const uint32_t rowpat,
                               const uint32_t *const colpat, const lrq_sc_table *const tab,
                               const unsigned groups, const int write, const int norm)
{
    const __m256i rp = _mm256_set1_epi32((int)rowpat);
    table16 t[8];
    acc16 sq;
    size_t j;
    int h;
    load_tables(t, tab, groups);
    acc_init(&sq);
    for (j = 0; j < len; j += 16) {
        for (h = 0; h < 2; h++) {
            const size_t at = j + 8 * (size_t)h;
            const __m256i x = _mm256_xor_si256(rp, load8u(colpat, at, len));
            const __m256i m = lanes_below(at < len ? len - at : 0);
            /* Lanes past len are zeroed so they add nothing to the squares. */
            const __m256 v = _mm256_and_ps(_mm256_sub_ps(load8(row, at, len), block_sum8(x, t, groups)),
                                           _mm256_castsi256_ps(m));
            if (write)
                _mm256_maskstore_ps(row + at, m, v);
            if (norm)
                acc_add8_squares(&sq, h, v);
        }
    }
    return acc_result(&sq);
}

LRQ_SC_BLOCK_ROW(TARGET)

TARGET static float max_abs(const float *const row, const size_t len)
{
    const __m256 nosign = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 best = _mm256_setzero_ps();
    float lanes[8], out = 0.0f;
    size_t j;
    int k;
    for (j = 0; j < len; j += 8)
        best = _mm256_max_ps(best, _mm256_and_ps(load8(row, j, len), nosign));
    _mm256_storeu_ps(lanes, best);
    for (k = 0; k < 8; k++)
        out = lanes[k] > out ? lanes[k] : out;
    return out;
}

TARGET static void to_fixed(const float *const row, const size_t len, const int shift, int16_t *const out)
{
    const __m256 scale = _mm256_set1_ps(lrq_sc_pow2(shift));
    size_t j;
    for (j = 0; j + 8 <= len; j += 8) {
        /* Round explicitly (the conversion alone would follow MXCSR). */
        const __m256 r = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(row + j), scale),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m256i v = _mm256_cvtps_epi32(r);
        const __m128i packed = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        _mm_storeu_si128((__m128i *)(void *)(out + j), packed);
    }
    for (; j < len; j++) {
        const float magic = 12582912.0f; /* the scalar rule, for the tail */
        out[j] = (int16_t)((row[j] * lrq_sc_pow2(shift) + magic) - magic);
    }
}

/* Four vectors at a time, each in two registers (lanes 0-7, 8-15). */
TARGET static void multi_row(const float *const row, const size_t len, const uint64_t *const vecs,
                                    const size_t words, const unsigned nk, float *const out)
{
    unsigned k0, k;
    size_t j;
    for (k0 = 0; k0 < nk; k0 += 4) {
        const unsigned kn = nk - k0 < 4 ? nk - k0 : 4;
        __m256 lo[4], hi[4];
        for (k = 0; k < kn; k++)
            lo[k] = hi[k] = _mm256_setzero_ps();
        for (j = 0; j < len; j += 16) {
            const __m256 r0 = load8(row, j, len), r1 = load8(row, j + 8, len);
            for (k = 0; k < kn; k++) {
                const uint64_t *const bits = vecs + (k0 + k) * words;
                lo[k] = _mm256_add_ps(lo[k], _mm256_xor_ps(r0, sign_lanes(bits8(bits, j))));
                hi[k] = _mm256_add_ps(hi[k], _mm256_xor_ps(r1, sign_lanes(bits8(bits, j + 8))));
            }
        }
        for (k = 0; k < kn; k++) {
            float p[16];
            _mm256_storeu_ps(p, lo[k]);
            _mm256_storeu_ps(p + 8, hi[k]);
            out[k0 + k] = 0.5f * lrq_sc_combine16f(p);
        }
    }
}

TARGET static void sign_bits(const float *const x, const size_t len, uint64_t *const bits)
{
    size_t i;
    memset(bits, 0, ((len + 63) / 64) * sizeof *bits);
    for (i = 0; i < len; i += 8)
        bits[i >> 6] |= (uint64_t)(unsigned)_mm256_movemask_ps(load8(x, i, len)) << (i & 63);
}

__attribute__((target("popcnt"))) uint64_t lrq_sc_count_differ_popcnt(const uint64_t *const a,
                                                                      const uint64_t *const b,
                                                                      const uint64_t *const f,
                                                                      const size_t words)
{
    return lrq_sc_count_differ_body(a, b, f, words);
}

TARGET static void multi_signed_sum(const float *const rows, const size_t ld, const unsigned nrows,
                             const size_t len, const uint64_t *const vecs, const size_t words,
                             const unsigned nk, float *const out, const size_t out_ld)
{
    unsigned r;
    for (r = 0; r < nrows; r++)
        multi_row(rows + r * ld, len, vecs, words, nk, out + r * out_ld);
}

const lrq_sc_kernels lrq_sc_kernels_avx2 = {
    flip_update, max_abs, to_fixed, block_correct, sub_signed, sum_abs, signed_sum, block_row, multi_signed_sum, sign_bits,
    lrq_sc_count_differ_popcnt,
};

#endif
