/* SPDX-License-Identifier: MIT */
/*
 * The AVX2 path's 16 floats (two ymm registers, lanes 0-7 and 8-15) and
 * their arithmetic, shared by products_avx2.c and encoder_avx2.c.  Include
 * after LRQ_TARGET_BEGIN and <immintrin.h>.
 */
#ifndef LRQ_LANES_AVX2_H
#define LRQ_LANES_AVX2_H

typedef struct {
    __m256 lo, hi;
} vf;

static inline vf vf_zero(void)
{
    vf r = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    return r;
}

static inline vf vf_set1(const float x)
{
    vf r = {_mm256_set1_ps(x), _mm256_set1_ps(x)};
    return r;
}

/* One IEEE operation per lane, on both halves. */
#define HALVES(name, op)                                                                           \
    static inline vf name(const vf a, const vf b)                                                  \
    {                                                                                              \
        vf r = {op(a.lo, b.lo), op(a.hi, b.hi)};                                                   \
        return r;                                                                                  \
    }
HALVES(vf_add, _mm256_add_ps)
HALVES(vf_sub, _mm256_sub_ps)
HALVES(vf_mul, _mm256_mul_ps)
HALVES(vf_max, _mm256_max_ps)
HALVES(vf_and, _mm256_and_ps)
HALVES(vf_xor, _mm256_xor_ps)
#undef HALVES

#endif /* LRQ_LANES_AVX2_H */
