/* SPDX-License-Identifier: MIT */
/*
 * The AVX2 signcut kernels: encoder_body.h with 16 lanes in two ymm
 * registers (lanes 0-7 and 8-15), and the canonical 16-lane float64 sums in
 * four (lanes 0-3, 4-7, 8-11, 12-15).  No FMA is used, so the results
 * cannot depend on contraction.
 */
#include <string.h>

#include "common/encoder_kernels.h"

#if LRQ_X86

#include "kernels/target.h"

LRQ_TARGET_BEGIN("avx2,popcnt")

#include <immintrin.h>

#include "kernels/lanes_avx2.h"

#define LRQ_ENCODER_ISA avx2
/* Four vectors' accumulators (eight ymm) stay in registers next to the row. */
#define MULTI_VECS 4

typedef struct {
    __m256i lo, hi;
} eu;
typedef vf et; /* entries 0-7 and 8-15 */
typedef vf es; /* the float sign bit in each flagged lane */
typedef es ev;
typedef struct {
    __m256d p[4];
} ed;

/* A mask selecting the first n of 8 lanes, for partial loads and stores. */
static inline __m256i lanes_below(const size_t n)
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < 8 ? n : 8)), idx);
}

static inline size_t upper(const size_t n)
{
    return n > 8 ? n - 8 : 0;
}

static inline vf ef_load(const float *const p, const size_t n)
{
    vf r;
    if (n >= 16) {
        r.lo = _mm256_loadu_ps(p);
        r.hi = _mm256_loadu_ps(p + 8);
    } else {
        r.lo = _mm256_maskload_ps(p, lanes_below(n));
        r.hi = _mm256_maskload_ps(p + 8, lanes_below(upper(n)));
    }
    return r;
}

static inline void ef_store(float *const p, const vf v, const size_t n)
{
    if (n >= 16) {
        _mm256_storeu_ps(p, v.lo);
        _mm256_storeu_ps(p + 8, v.hi);
    } else {
        _mm256_maskstore_ps(p, lanes_below(n), v.lo);
        _mm256_maskstore_ps(p + 8, lanes_below(upper(n)), v.hi);
    }
}

static inline vf ef_abs(const vf a)
{
    const __m256 nosign = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const vf mask = {nosign, nosign};
    return vf_and(a, mask);
}

#define ef_max vf_max

static inline vf ef_keep(const vf a, const size_t n)
{
    vf r;
    if (n >= 16)
        return a;
    r.lo = _mm256_and_ps(a.lo, _mm256_castsi256_ps(lanes_below(n)));
    r.hi = _mm256_and_ps(a.hi, _mm256_castsi256_ps(lanes_below(upper(n))));
    return r;
}

static inline vf ef_from_i16(const int16_t *const p, const size_t n)
{
    __m128i lo, hi;
    vf r;
    if (n >= 16) {
        lo = _mm_loadu_si128((const __m128i *)(const void *)p);
        hi = _mm_loadu_si128((const __m128i *)(const void *)(p + 8));
    } else {
        int16_t tmp[16] = {0};
        memcpy(tmp, p, n * sizeof *p);
        lo = _mm_loadu_si128((const __m128i *)(const void *)tmp);
        hi = _mm_loadu_si128((const __m128i *)(const void *)(tmp + 8));
    }
    r.lo = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(lo));
    r.hi = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(hi));
    return r;
}

/* v holds integers within int16, so the conversion is exact in any mode. */
static inline void ef_store_i16(int16_t *const p, const vf v, const size_t n)
{
    const __m256i lo = _mm256_cvtps_epi32(v.lo), hi = _mm256_cvtps_epi32(v.hi);
    const __m128i a = _mm_packs_epi32(_mm256_castsi256_si128(lo), _mm256_extracti128_si256(lo, 1));
    const __m128i b = _mm_packs_epi32(_mm256_castsi256_si128(hi), _mm256_extracti128_si256(hi, 1));
    if (n >= 16) {
        _mm_storeu_si128((__m128i *)(void *)p, a);
        _mm_storeu_si128((__m128i *)(void *)(p + 8), b);
    } else {
        int16_t tmp[16];
        _mm_storeu_si128((__m128i *)(void *)tmp, a);
        _mm_storeu_si128((__m128i *)(void *)(tmp + 8), b);
        memcpy(p, tmp, n * sizeof *p);
    }
}

static inline unsigned ef_signs(const vf v)
{
    return (unsigned)_mm256_movemask_ps(v.lo) | (unsigned)_mm256_movemask_ps(v.hi) << 8;
}

static inline eu eu_set1(const uint32_t x)
{
    eu r = {_mm256_set1_epi32((int)x), _mm256_set1_epi32((int)x)};
    return r;
}

static inline eu eu_load(const uint32_t *const p, const size_t n)
{
    eu r;
    if (n >= 16) {
        r.lo = _mm256_loadu_si256((const __m256i *)(const void *)p);
        r.hi = _mm256_loadu_si256((const __m256i *)(const void *)(p + 8));
    } else {
        r.lo = _mm256_maskload_epi32((const int *)(const void *)p, lanes_below(n));
        r.hi = _mm256_maskload_epi32((const int *)(const void *)(p + 8), lanes_below(upper(n)));
    }
    return r;
}

static inline eu eu_xor(const eu a, const eu b)
{
    eu r = {_mm256_xor_si256(a.lo, b.lo), _mm256_xor_si256(a.hi, b.hi)};
    return r;
}

static inline et et_load(const float *const t)
{
    et r = {_mm256_loadu_ps(t), _mm256_loadu_ps(t + 8)};
    return r;
}

/* vpermps reads the low 3 bits of each index; bit 3 picks the half through
 * a blend on the sign position, where a shift by 28 puts it. */
static inline __m256 lookup8(const et t, const __m256i idx)
{
    const __m256 lo = _mm256_permutevar8x32_ps(t.lo, idx);
    const __m256 hi = _mm256_permutevar8x32_ps(t.hi, idx);
    return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}

static inline vf et_lookup(const et t, const eu x)
{
    vf r = {lookup8(t, x.lo), lookup8(t, x.hi)};
    return r;
}

static inline eu eu_next_nibble(const eu x)
{
    eu r = {_mm256_srli_epi32(x.lo, 4), _mm256_srli_epi32(x.hi, 4)};
    return r;
}

/* Eight bits -> eight lanes holding the float sign bit where the bit is 1. */
static inline __m256 sign_lanes(const unsigned bits8)
{
    const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i b = _mm256_and_si256(_mm256_set1_epi32((int)bits8), lane_bit);
    const __m256i on = _mm256_cmpeq_epi32(b, lane_bit);
    return _mm256_castsi256_ps(_mm256_and_si256(on, _mm256_set1_epi32((int)0x80000000u)));
}

static inline es es_at(const uint64_t *const bits, const size_t i)
{
    /* i is a multiple of 16 and x86 is little-endian: the 16 bits are the
     * two bytes at i/8 (memcpy keeps the load free of aliasing UB). */
    uint16_t b;
    es r;
    memcpy(&b, (const unsigned char *)bits + (i >> 3), sizeof b);
    r.lo = sign_lanes(b & 0xFFu);
    r.hi = sign_lanes((unsigned)b >> 8);
    return r;
}

#define ef_negate vf_xor

#define ev_at es_at

static inline vf ef_add_signed(const vf a, const vf x, const ev s)
{
    return vf_add(a, ef_negate(x, s));
}

static inline ed ed_zero(void)
{
    ed r;
    r.p[0] = r.p[1] = r.p[2] = r.p[3] = _mm256_setzero_pd();
    return r;
}

/* Lanes 4q .. 4q+3 of v, widened to float64 (exact). */
static inline __m256d quarter(const vf v, const int q)
{
    const __m256 half = q < 2 ? v.lo : v.hi;
    return _mm256_cvtps_pd(q % 2 ? _mm256_extractf128_ps(half, 1) : _mm256_castps256_ps128(half));
}

/* a + v, or a + v * v: the squares of floats are exact in double, so
 * multiply, then add, rounds as the scalar code does. */
static inline ed ed_accumulate(ed a, const vf v, const int square)
{
    int q;
    for (q = 0; q < 4; q++) {
        const __m256d x = quarter(v, q);
        a.p[q] = _mm256_add_pd(a.p[q], square ? _mm256_mul_pd(x, x) : x);
    }
    return a;
}

#define ed_add(a, v) ed_accumulate((a), (v), 0)
#define ed_add_squares(a, v) ed_accumulate((a), (v), 1)

static inline void ed_store(double *const p, const ed a)
{
    int r;
    for (r = 0; r < 4; r++)
        _mm256_storeu_pd(p + 4 * r, a.p[r]);
}

#include "kernels/encoder_body.h"

ENCODER_TABLE(lrq_sc_kernels_avx2);

LRQ_TARGET_END

#endif /* LRQ_X86 */
