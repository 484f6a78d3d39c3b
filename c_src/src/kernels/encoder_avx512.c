/* SPDX-License-Identifier: MIT */
/*
 * The AVX-512 (F, BW, DQ, VL) signcut kernels: encoder_body.h with 16
 * lanes in one zmm register, tails through mask registers, and the
 * canonical 16-lane float64 sums in two zmm (lanes 0-7 and 8-15).
 */
#include <string.h>

#include "common/encoder_kernels.h"

#if LRQ_X86

#include "kernels/target.h"

LRQ_TARGET_BEGIN("avx512f,avx512bw,avx512dq,avx512vl,popcnt")

#include <immintrin.h>

#include "kernels/lanes_avx512.h"

#define LRQ_ENCODER_ISA avx512
/* Four rows and four vectors at a time in multi_signed_sum: each sign
 * pattern becomes a vector of +-1.0 once and serves the four rows through
 * a multiply-add (exact: the product is +-x, so the one rounding is that
 * of the add), 5 operations per 4 (row, vector) pairs with the 16
 * accumulators in registers while the four rows stay in L1. */
#define MULTI_ROWS 4
#define MULTI_VECS 4

typedef __m512i eu;
typedef __m512 et;
typedef __mmask16 es;
typedef __m512 ev; /* +-1.0 per lane */
typedef struct {
    __m512d lo, hi;
} ed;

static inline __mmask16 tail_mask(const size_t n)
{
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

static inline vf ef_load(const float *const p, const size_t n)
{
    return n >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(tail_mask(n), p);
}

static inline void ef_store(float *const p, const vf v, const size_t n)
{
    if (n >= 16)
        _mm512_storeu_ps(p, v);
    else
        _mm512_mask_storeu_ps(p, tail_mask(n), v);
}

static inline vf ef_abs(const vf a)
{
    return _mm512_abs_ps(a);
}

static inline vf ef_max(const vf a, const vf b)
{
    return _mm512_max_ps(a, b);
}

static inline vf ef_keep(const vf a, const size_t n)
{
    return n >= 16 ? a : _mm512_maskz_mov_ps(tail_mask(n), a);
}

static inline vf ef_from_i16(const int16_t *const p, const size_t n)
{
    const __m256i h = n >= 16 ? _mm256_loadu_si256((const __m256i *)(const void *)p)
                              : _mm256_maskz_loadu_epi16(tail_mask(n), p);
    return _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(h));
}

/* v holds integers within int16, so the conversion is exact in any mode. */
static inline void ef_store_i16(int16_t *const p, const vf v, const size_t n)
{
    _mm256_mask_storeu_epi16(p, tail_mask(n), _mm512_cvtepi32_epi16(_mm512_cvtps_epi32(v)));
}

static inline unsigned ef_signs(const vf v)
{
    return (unsigned)_mm512_movepi32_mask(_mm512_castps_si512(v));
}

static inline eu eu_set1(const uint32_t x)
{
    return _mm512_set1_epi32((int)x);
}

static inline eu eu_load(const uint32_t *const p, const size_t n)
{
    return n >= 16 ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi32(tail_mask(n), p);
}

static inline eu eu_xor(const eu a, const eu b)
{
    return _mm512_xor_si512(a, b);
}

static inline et et_load(const float *const t)
{
    return _mm512_loadu_ps(t);
}

/* One in-register look-up: vpermps reads the low 4 bits of each index. */
static inline vf et_lookup(const et t, const eu x)
{
    return _mm512_permutexvar_ps(x, t);
}

static inline eu eu_next_nibble(const eu x)
{
    return _mm512_srli_epi32(x, 4);
}

/* The 16 bits at bit i (a multiple of 16) straight into a mask register:
 * kmovw from memory is a load, where a load into a general register plus a
 * move costs a uop on the port the vector adds need. */
typedef uint16_t u16_alias __attribute__((may_alias));
static inline es es_at(const uint64_t *const bits, const size_t i)
{
    __mmask16 k;
    __asm__("kmovw %1, %0" : "=k"(k) : "m"(*(const u16_alias *)((const unsigned char *)bits + (i >> 3))));
    return k;
}

static inline vf ef_negate(const vf v, const es s)
{
    const __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32((int)0x80000000u));
    return _mm512_mask_xor_ps(v, s, v, sign);
}

static inline ev ev_at(const uint64_t *const bits, const size_t i)
{
    return _mm512_mask_blend_ps(es_at(bits, i), _mm512_set1_ps(1.0f), _mm512_set1_ps(-1.0f));
}

static inline vf ef_add_signed(const vf a, const vf x, const ev s)
{
    return _mm512_fmadd_ps(s, x, a);
}

static inline ed ed_zero(void)
{
    ed r = {_mm512_setzero_pd(), _mm512_setzero_pd()};
    return r;
}

static inline __m512d upper_pd(const vf v)
{
    return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

static inline ed ed_add(ed a, const vf v)
{
    a.lo = _mm512_add_pd(a.lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    a.hi = _mm512_add_pd(a.hi, upper_pd(v));
    return a;
}

/* The squares of floats are exact in double: multiply, then add, rounds as
 * the scalar code does. */
static inline ed ed_add_squares(ed a, const vf v)
{
    const __m512d x = _mm512_cvtps_pd(_mm512_castps512_ps256(v)), y = upper_pd(v);
    a.lo = _mm512_add_pd(a.lo, _mm512_mul_pd(x, x));
    a.hi = _mm512_add_pd(a.hi, _mm512_mul_pd(y, y));
    return a;
}

static inline void ed_store(double *const p, const ed a)
{
    _mm512_storeu_pd(p, a.lo);
    _mm512_storeu_pd(p + 8, a.hi);
}

#include "kernels/encoder_body.h"

ENCODER_TABLE(lrq_sc_kernels_avx512);

LRQ_TARGET_END

#endif /* LRQ_X86 */
