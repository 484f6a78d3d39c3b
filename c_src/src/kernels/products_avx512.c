/* SPDX-License-Identifier: MIT */
/*
 * The AVX-512 kernels (F, BW, DQ, VL, VBMI, VNNI and GFNI; chosen at run
 * time, see dispatch.c).  The target pragma applies to this file only, so
 * the rest of the library stays baseline x86-64.
 *
 * A 16-row tile maps to one zmm register, one lane per row:
 *   - float tables: one table of 16 entries is one zmm and the look-up of 16
 *     rows' nibbles is one vpermps;
 *   - int tables: the 4 tables of a chunk are one zmm of bytes; vpmultishiftqb
 *     + vpternlogd form the 64 byte indices, vpermb looks them up, vpdpbusd
 *     sums each row's 4 bytes;
 *   - the transposed direction turns each 16x16 bit block around with one
 *     vgf2p8affineqb (8x8 bit transposes) between two byte shuffles.
 */
#include "common/kernels.h"

#if LRQ_X86

#include "kernels/target.h"

LRQ_TARGET_BEGIN("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vbmi,avx512vnni,gfni")

#include <immintrin.h>

#include "kernels/lanes_avx512.h"

#define LRQ_KERNEL_ISA avx512
/* 32 zmm registers hold four tiles' accumulators next to the tables; four
 * tiles per table load measured 15-25 % faster than two. */
#define FWD_TILES 4

typedef __m512i vi;
typedef __m512 vt;
/* Integer accumulators: `lo` sums table bytes at weight 1, `hi` the high
 * bytes of int16 entries at weight 256 (kept apart because 256 times a
 * plane weight does not fit vpdpbusd's unsigned byte). */
typedef struct {
    __m512i lo, hi;
} vq;

static inline __mmask16 first(const size_t n)
{
    return (__mmask16)((1u << n) - 1u);
}

/* Masked loads never fault on the lanes they skip, so a short last tile is
 * read in place. */
static inline vf vf_load(const float *p, const size_t n)
{
    return n == 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(first(n), p);
}

static inline void vf_store(float *p, const vf a, const size_t n)
{
    if (n == 16)
        _mm512_storeu_ps(p, a);
    else
        _mm512_mask_storeu_ps(p, first(n), a);
}

static inline __m256i load_words(const uint8_t *p, const size_t n)
{
    return n == 16 ? _mm256_loadu_si256((const __m256i *)(const void *)p)
                   : _mm256_maskz_loadu_epi16(first(n), p);
}

static inline vf vf_load_f16(const uint8_t *p, const size_t n)
{
    return _mm512_cvtph_ps(load_words(p, n));
}

static inline vi vi_load_w16(const uint8_t *p, const size_t n)
{
    return _mm512_cvtepu16_epi32(load_words(p, n));
}

static inline vi vi_load_w32(const uint8_t *p, const size_t n)
{
    return n == 16 ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi32(first(n), p);
}

static inline vt vt_load(const float *tab)
{
    return _mm512_loadu_ps(tab);
}

/* The forward float kernels' lane order: lane j < 8 holds row 2j and lane
 * 8 + j row 2j + 1.  A chunk's 16 words are then one broadcast load (both
 * 256-bit halves alike: lane j holds words 2j and 2j + 1) instead of a
 * zero-extension, which would take a slot on the shuffle port that the
 * look-ups saturate; each half's shift count picks its word.  Measured
 * ~4 % faster on an AMX-class Intel Xeon, where shuffles run on one port. */
#define LUT_ORDER 1

static inline vi vi_load_lut(const uint8_t *p, const size_t n)
{
    return _mm512_broadcast_i64x4(load_words(p, n));
}

static inline vf vt_lookup_lut(const vt t, const vi w, const int shift)
{
    const __m512i count = _mm512_setr_epi32(shift, shift, shift, shift, shift, shift, shift, shift,
                                            shift + 16, shift + 16, shift + 16, shift + 16,
                                            shift + 16, shift + 16, shift + 16, shift + 16);
    return _mm512_permutexvar_ps(_mm512_srlv_epi32(w, count), t);
}

static inline vf vf_lut_rows(const vf a)
{
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15), a);
}

/* vpermps reads only bits 3:0 of each index: no mask needed. */
static inline vf vt_lookup(const vt t, const vi w, const int shift)
{
    return _mm512_permutexvar_ps(shift ? _mm512_srli_epi32(w, (unsigned)shift) : w, t);
}

static inline vf vf_byte_level(const vi w, const int b, const vf half)
{
    const vi q = _mm512_and_si512(_mm512_srli_epi32(w, (unsigned)(8 * b)), _mm512_set1_epi32(255));
    return _mm512_sub_ps(_mm512_cvtepi32_ps(q), half);
}

/*
 * 16x16 bit transpose.  After the first shuffle each qword holds one byte of
 * 8 rows (row order reversed, as the affine instruction indexes its matrix
 * rows from the top); vgf2p8affineqb against the identity pattern then gives
 * byte j = bit j of those 8 rows; the final vpermb pairs the low and high
 * bytes of each output word into its dword, zeroing the upper half.
 */
static inline vi vi_transpose16(const uint8_t *p, const size_t h)
{
    const __m256i rev = _mm256_setr_epi8(14, 12, 10, 8, 6, 4, 2, 0, 15, 13, 11, 9, 7, 5, 3, 1, 14,
                                         12, 10, 8, 6, 4, 2, 0, 15, 13, 11, 9, 7, 5, 3, 1);
    const __m256i unit = _mm256_set1_epi64x(0x8040201008040201LL);
    const __m512i pair = _mm512_set_epi8(
        0, 0, 31, 15, 0, 0, 30, 14, 0, 0, 29, 13, 0, 0, 28, 12, 0, 0, 27, 11, 0, 0, 26, 10, 0, 0,
        25, 9, 0, 0, 24, 8, 0, 0, 23, 7, 0, 0, 22, 6, 0, 0, 21, 5, 0, 0, 20, 4, 0, 0, 19, 3, 0, 0,
        18, 2, 0, 0, 17, 1, 0, 0, 16, 0);
    const __m256i q = _mm256_shuffle_epi8(load_words(p, h), rev);
    const __m256i t = _mm256_gf2p8affine_epi64_epi8(unit, q, 0);
    return _mm512_maskz_permutexvar_epi8(0x3333333333333333ULL, pair, _mm512_castsi256_si512(t));
}

static inline float vf_tree16(const vf a)
{
    const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(a),
                                    _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

/* n is a multiple of 16 (whole tables); max is exact in any order. */
static inline float vf_max_abs(const float *p, const size_t n)
{
    __m512 m = _mm512_setzero_ps();
    size_t i;
    for (i = 0; i < n; i += 16)
        m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(p + i)));
    return _mm512_reduce_max_ps(m);
}

/* Lane i of SIGN[b] has the sign bit when bit b of i is set. */
static void k_tables_f32(const float *v, const size_t ngroups, float *tab)
{
    const __m512 s0 = _mm512_castsi512_ps(_mm512_setr_epi32(
        0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0,
        INT32_MIN, 0, INT32_MIN));
    const __m512 s1 = _mm512_castsi512_ps(_mm512_setr_epi32(
        0, 0, INT32_MIN, INT32_MIN, 0, 0, INT32_MIN, INT32_MIN, 0, 0, INT32_MIN, INT32_MIN, 0, 0,
        INT32_MIN, INT32_MIN));
    const __m512 s2 = _mm512_castsi512_ps(_mm512_setr_epi32(0, 0, 0, 0, INT32_MIN, INT32_MIN,
                                                            INT32_MIN, INT32_MIN, 0, 0, 0, 0,
                                                            INT32_MIN, INT32_MIN, INT32_MIN,
                                                            INT32_MIN));
    const __m512 s3 = _mm512_castsi512_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, INT32_MIN,
                                                            INT32_MIN, INT32_MIN, INT32_MIN,
                                                            INT32_MIN, INT32_MIN, INT32_MIN,
                                                            INT32_MIN));
    size_t j;

    for (j = 0; j < ngroups; j++, v += 4, tab += 16) {
        const __m512 a0 = _mm512_xor_ps(_mm512_set1_ps(v[0]), s0);
        const __m512 a1 = _mm512_xor_ps(_mm512_set1_ps(v[1]), s1);
        const __m512 a2 = _mm512_xor_ps(_mm512_set1_ps(v[2]), s2);
        const __m512 a3 = _mm512_xor_ps(_mm512_set1_ps(v[3]), s3);
        _mm512_storeu_ps(tab, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), a2), a3));
    }
}

/* int8: the chunk's 64 entries in table order (one vpermb table).
 * int16: 64 unsigned low bytes, then 64 signed high bytes. */
static void quantize_tables(const float *ftab, const size_t nchunks, const float inv,
                            const float lim, const int wide, uint8_t *out)
{
    const __m512 vinv = _mm512_set1_ps(inv), magic = _mm512_set1_ps(12582912.0f);
    const __m512 hi = _mm512_set1_ps(lim), lo = _mm512_set1_ps(-lim);
    size_t c, i;

    for (c = 0; c < nchunks; c++, ftab += 64, out += LRQ_ITAB_BYTES(wide))
        for (i = 0; i < 4; i++) {
            __m512 q = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(ftab + 16 * i), vinv), magic),
                                     magic);
            __m512i e;
            q = _mm512_min_ps(_mm512_max_ps(q, lo), hi);
            e = _mm512_cvttps_epi32(q);
            if (wide) {
                _mm_storeu_si128((__m128i *)(void *)(out + 16 * i), _mm512_cvtepi32_epi8(e));
                _mm_storeu_si128((__m128i *)(void *)(out + 64 + 16 * i),
                                 _mm512_cvtepi32_epi8(_mm512_srai_epi32(e, 8)));
            } else {
                _mm_storeu_si128((__m128i *)(void *)(out + 16 * i), _mm512_cvtepi32_epi8(e));
            }
        }
}

static inline vq vq_zero(void)
{
    vq r = {_mm512_setzero_si512(), _mm512_setzero_si512()};
    return r;
}

static inline vf vq_to_f(const vq a)
{
    return _mm512_cvtepi32_ps(_mm512_add_epi32(a.lo, _mm512_slli_epi32(a.hi, 8)));
}

typedef struct {
    __m512i lo, hi;
} vqt;

static inline vqt vqt_load(const uint8_t *tab, const int wide)
{
    vqt r;
    r.lo = _mm512_loadu_si512(tab);
    r.hi = wide ? _mm512_loadu_si512(tab + 64) : r.lo;
    return r;
}

static inline vq vq_add(const vq a, const vq b)
{
    vq r = {_mm512_add_epi32(a.lo, b.lo), _mm512_add_epi32(a.hi, b.hi)};
    return r;
}

static inline vq vq_lut(vq acc, const vqt tab, const int wide, const vi w, const int mult)
{
    /* Per row (dword): bytes at bit offsets 0, 4, 8, 12 of the word; keep
     * the nibble and add 16 * q to address table q of the chunk. */
    const __m512i offs = _mm512_set1_epi64(0x2C2824200C080400LL);
    const __m512i tabno = _mm512_set1_epi32(0x30201000);
    const __m512i idx =
        _mm512_ternarylogic_epi32(_mm512_multishift_epi64_epi8(offs, w), _mm512_set1_epi8(15), tabno, 0xEA);
    const __m512i m = _mm512_set1_epi8((char)mult);
    if (wide) {
        acc.lo = _mm512_dpbusd_epi32(acc.lo, _mm512_permutexvar_epi8(idx, tab.lo), m);
        acc.hi = _mm512_dpbusd_epi32(acc.hi, m, _mm512_permutexvar_epi8(idx, tab.hi));
    } else {
        acc.lo = _mm512_dpbusd_epi32(acc.lo, m, _mm512_permutexvar_epi8(idx, tab.lo));
    }
    return acc;
}

/* Lane j: value where bit j of word is set, else +0. */
static inline vf vf_bits(const unsigned word, const float value)
{
    return _mm512_maskz_mov_ps((__mmask16)word, _mm512_set1_ps(value));
}

/* 16 unsigned bytes as floats (exact). */
static inline vf vf_from_u8(const uint8_t *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)p)));
}

#include "kernels/products_body.h"

KERNEL_TABLE(lrq_kernels_avx512, "avx512");

LRQ_TARGET_END

#endif /* LRQ_X86 */
