/* SPDX-License-Identifier: MIT */
/*
 * The AVX-512 path's 16 floats (one zmm register) and their arithmetic,
 * shared by products_avx512.c and encoder_avx512.c.  Include after
 * LRQ_TARGET_BEGIN and <immintrin.h>.
 */
#ifndef LRQ_LANES_AVX512_H
#define LRQ_LANES_AVX512_H

typedef __m512 vf;

#define vf_zero _mm512_setzero_ps
#define vf_set1 _mm512_set1_ps
#define vf_add _mm512_add_ps
#define vf_sub _mm512_sub_ps
#define vf_mul _mm512_mul_ps

#endif /* LRQ_LANES_AVX512_H */
