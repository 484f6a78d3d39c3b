/* SPDX-License-Identifier: MIT */
/*
 * The AVX2 kernels (AVX2, FMA, F16C; chosen at run time).  A 16-row tile is
 * two ymm registers, rows 0-7 and 8-15.
 *
 * AVX2 has no 16-entry float permute: a look-up is two vpermps (entries
 * 0-7 and 8-15) and a blend on bit 3 of the nibble, which the same shift
 * that aligns the nibble leaves in the sign position.  The int tables use
 * vpshufb, whose 16-byte tables are exactly one group's entries (the
 * table look-up scheme of T-MAC); even and odd bytes of a word need different tables,
 * so each look-up is done twice with the other half's indices zeroed by
 * their top bit.  The transposed direction turns 16x16 bit blocks around
 * with eight shift + vpmovmskb steps.
 */
#include "common/kernels.h"

#if LRQ_X86

#include "kernels/target.h"

LRQ_TARGET_BEGIN("avx2,fma,f16c")

#include <immintrin.h>

#include "kernels/lanes_avx2.h"

#define LRQ_KERNEL_ISA avx2

/* Words of 16 rows as dwords (lo: rows 0-7), plus the 16 raw u16 words for
 * the byte-table look-ups (the compiler drops whichever is unused). */
typedef struct {
    __m256i lo, hi, raw;
} vi;
typedef struct {
    __m256 lo, hi; /* entries 0-7 and 8-15 */
} vt;
typedef struct {
    __m256i lo, hi;
} vq;

/* Short tiles go through a zeroed copy: AVX2 has no masked 16-bit loads. */
static inline vf vf_load(const float *p, const size_t n)
{
    vf r;
    if (n < 16) {
        float b[16] = {0};
        memcpy(b, p, n * sizeof(float));
        r.lo = _mm256_loadu_ps(b);
        r.hi = _mm256_loadu_ps(b + 8);
        return r;
    }
    r.lo = _mm256_loadu_ps(p);
    r.hi = _mm256_loadu_ps(p + 8);
    return r;
}

static inline void vf_store(float *p, const vf a, const size_t n)
{
    if (n < 16) {
        float b[16];
        _mm256_storeu_ps(b, a.lo);
        _mm256_storeu_ps(b + 8, a.hi);
        memcpy(p, b, n * sizeof(float));
        return;
    }
    _mm256_storeu_ps(p, a.lo);
    _mm256_storeu_ps(p + 8, a.hi);
}

static inline __m256i load_bytes32(const uint8_t *p, const size_t len)
{
    if (len < 32) {
        uint8_t b[32] = {0};
        memcpy(b, p, len);
        return _mm256_loadu_si256((const __m256i *)(const void *)b);
    }
    return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

static inline vf vf_load_f16(const uint8_t *p, const size_t n)
{
    const __m256i h = load_bytes32(p, 2 * n);
    vf r = {_mm256_cvtph_ps(_mm256_castsi256_si128(h)), _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1))};
    return r;
}

static inline vi vi_load_w16(const uint8_t *p, const size_t n)
{
    const __m256i raw = load_bytes32(p, 2 * n);
    vi r = {_mm256_cvtepu16_epi32(_mm256_castsi256_si128(raw)),
            _mm256_cvtepu16_epi32(_mm256_extracti128_si256(raw, 1)), raw};
    return r;
}

static inline vi vi_load_w32(const uint8_t *p, const size_t n)
{
    vi r;
    if (n < 16) {
        uint8_t b[64] = {0};
        memcpy(b, p, 4 * n);
        r.lo = _mm256_loadu_si256((const __m256i *)(const void *)b);
        r.hi = _mm256_loadu_si256((const __m256i *)(const void *)(b + 32));
    } else {
        r.lo = _mm256_loadu_si256((const __m256i *)(const void *)p);
        r.hi = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
    }
    r.raw = _mm256_setzero_si256();
    return r;
}

static inline vt vt_load(const float *tab)
{
    vt r = {_mm256_loadu_ps(tab), _mm256_loadu_ps(tab + 8)};
    return r;
}

static inline __m256 lookup8(const vt t, const __m256i w, const int shift)
{
    const __m256i i = _mm256_srli_epi32(w, shift);
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(t.lo, i), _mm256_permutevar8x32_ps(t.hi, i),
                            _mm256_castsi256_ps(_mm256_slli_epi32(w, 28 - shift)));
}

static inline vf vt_lookup(const vt t, const vi w, const int shift)
{
    vf r = {lookup8(t, w.lo, shift), lookup8(t, w.hi, shift)};
    return r;
}

static inline __m256 level8(const __m256i w, const int b, const __m256 half)
{
    const __m256i q = _mm256_and_si256(_mm256_srli_epi32(w, 8 * b), _mm256_set1_epi32(255));
    return _mm256_sub_ps(_mm256_cvtepi32_ps(q), half);
}

static inline vf vf_byte_level(const vi w, const int b, const vf half)
{
    vf r = {level8(w.lo, b, half.lo), level8(w.hi, b, half.hi)};
    return r;
}

/* Bytes regrouped so that bytes 0-15 are the rows' low bytes and 16-31 their
 * high bytes; then vpmovmskb of the vector shifted left by 7 - b collects
 * bit b of every row: output word b in the low 16 bits, word 8 + b above. */
static inline vi vi_transpose16(const uint8_t *p, const size_t h)
{
    const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0,
                                           2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    const __m256i v = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(load_bytes32(p, 2 * h), split),
                                               0xD8);
    const __m256i m = _mm256_setr_epi32(
        _mm256_movemask_epi8(_mm256_slli_epi16(v, 7)), _mm256_movemask_epi8(_mm256_slli_epi16(v, 6)),
        _mm256_movemask_epi8(_mm256_slli_epi16(v, 5)), _mm256_movemask_epi8(_mm256_slli_epi16(v, 4)),
        _mm256_movemask_epi8(_mm256_slli_epi16(v, 3)), _mm256_movemask_epi8(_mm256_slli_epi16(v, 2)),
        _mm256_movemask_epi8(_mm256_slli_epi16(v, 1)), _mm256_movemask_epi8(v));
    vi r = {_mm256_and_si256(m, _mm256_set1_epi32(0xFFFF)), _mm256_srli_epi32(m, 16),
            _mm256_setzero_si256()};
    return r;
}

static inline float vf_tree16(const vf a)
{
    const __m256 s8 = _mm256_add_ps(a.lo, a.hi);
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

static inline float vf_max_abs(const float *p, const size_t n)
{
    const __m256 mag = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 m = _mm256_setzero_ps();
    __m128 r;
    size_t i;
    for (i = 0; i < n; i += 8)
        m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(p + i), mag));
    r = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    r = _mm_max_ps(r, _mm_movehl_ps(r, r));
    r = _mm_max_ss(r, _mm_shuffle_ps(r, r, 1));
    return _mm_cvtss_f32(r);
}

/* Entries 0-7 and 8-15 share ((a0 + a1) + a2) and differ in the sign of a3. */
static void k_tables_f32(const float *v, const size_t ngroups, float *tab)
{
    const __m256 s0 = _mm256_castsi256_ps(
        _mm256_setr_epi32(0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN, 0, INT32_MIN));
    const __m256 s1 = _mm256_castsi256_ps(
        _mm256_setr_epi32(0, 0, INT32_MIN, INT32_MIN, 0, 0, INT32_MIN, INT32_MIN));
    const __m256 s2 = _mm256_castsi256_ps(
        _mm256_setr_epi32(0, 0, 0, 0, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN));
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN));
    size_t j;

    for (j = 0; j < ngroups; j++, v += 4, tab += 16) {
        const __m256 a3 = _mm256_set1_ps(v[3]);
        const __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_xor_ps(_mm256_set1_ps(v[0]), s0),
                                                     _mm256_xor_ps(_mm256_set1_ps(v[1]), s1)),
                                       _mm256_xor_ps(_mm256_set1_ps(v[2]), s2));
        _mm256_storeu_ps(tab, _mm256_add_ps(s, a3));
        _mm256_storeu_ps(tab + 8, _mm256_add_ps(s, _mm256_xor_ps(a3, sign)));
    }
}

/* 16 int32 (two ymm) -> 16 int16 in order. */
static inline __m256i narrow16(const __m256i a, const __m256i b)
{
    return _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8);
}

/* 16 int16 -> 16 bytes in order, signed or unsigned saturation. */
static inline __m128i narrow8(const __m256i x, const int is_unsigned)
{
    const __m256i p = is_unsigned ? _mm256_packus_epi16(x, x) : _mm256_packs_epi16(x, x);
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(p, 0xD8));
}

/* The same table layout as the AVX-512 path (vpshufb reads group q's 16
 * entries at bytes 16q .. 16q+15). */
static void quantize_tables(const float *ftab, const size_t nchunks, const float inv,
                            const float lim, const int wide, uint8_t *out)
{
    const __m256 vinv = _mm256_set1_ps(inv), magic = _mm256_set1_ps(12582912.0f);
    const __m256 hi = _mm256_set1_ps(lim), lo = _mm256_set1_ps(-lim);
    size_t c, i, h;

    for (c = 0; c < nchunks; c++, ftab += 64, out += LRQ_ITAB_BYTES(wide))
        for (i = 0; i < 4; i++) {
            __m256i e[2], e16;
            for (h = 0; h < 2; h++) {
                __m256 q = _mm256_loadu_ps(ftab + 16 * i + 8 * h);
                q = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(q, vinv), magic), magic);
                e[h] = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(q, lo), hi));
            }
            e16 = narrow16(e[0], e[1]);
            if (wide) {
                _mm_storeu_si128((__m128i *)(void *)(out + 16 * i),
                                 narrow8(_mm256_and_si256(e16, _mm256_set1_epi16(0xFF)), 1));
                _mm_storeu_si128((__m128i *)(void *)(out + 64 + 16 * i),
                                 narrow8(_mm256_srai_epi16(e16, 8), 0));
            } else {
                _mm_storeu_si128((__m128i *)(void *)(out + 16 * i), narrow8(e16, 0));
            }
        }
}

static inline vq vq_zero(void)
{
    vq r = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    return r;
}

static inline vf vq_to_f(const vq a)
{
    vf r = {_mm256_cvtepi32_ps(a.lo), _mm256_cvtepi32_ps(a.hi)};
    return r;
}

/* The chunk's tables, each 16-byte group table broadcast to both lanes:
 * t[0..3] the int8 entries (or low bytes), t[4..7] the high bytes. */
typedef struct {
    __m256i t[8];
} vqt;

static inline vqt vqt_load(const uint8_t *tab, const int wide)
{
    vqt r;
    int i;
    for (i = 0; i < (wide ? 8 : 4); i++)
        r.t[i] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(tab + 16 * i)));
    for (; i < 8; i++)
        r.t[i] = r.t[i - 4];
    return r;
}

static inline vq vq_add(const vq a, const vq b)
{
    vq r = {_mm256_add_epi32(a.lo, b.lo), _mm256_add_epi32(a.hi, b.hi)};
    return r;
}

/* Even bytes of each word hold nibbles 0 and 1, odd bytes nibbles 2 and 3;
 * a look-up per table pair gives T_a[.] in even bytes and T_b[.] in odd
 * ones (the other index has its top bit set, which vpshufb reads as zero),
 * and vpmaddubsw adds the two bytes of each row's word. */
static inline __m256i pair_lookup(const __m256i a, const __m256i b, const __m256i even_idx)
{
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    return _mm256_or_si256(_mm256_shuffle_epi8(a, even_idx),
                           _mm256_shuffle_epi8(b, _mm256_xor_si256(even_idx, flip)));
}

static inline vq widen_add(vq acc, const __m256i s16)
{
    acc.lo = _mm256_add_epi32(acc.lo, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s16)));
    acc.hi = _mm256_add_epi32(acc.hi, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s16, 1)));
    return acc;
}

static inline vq vq_lut(vq acc, const vqt tab, const int wide, const vi w, const int mult)
{
    const __m256i nib = _mm256_set1_epi8(15);
    const __m256i odd = _mm256_set1_epi16((short)0x8000); /* 0x80 in each odd byte */
    const __m256i i02 = _mm256_or_si256(_mm256_and_si256(w.raw, nib), odd);
    const __m256i i13 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(w.raw, 4), nib), odd);
    const __m256i m = _mm256_set1_epi8((char)mult);

    if (wide) {
        const __m256i slo = _mm256_add_epi16(_mm256_maddubs_epi16(pair_lookup(tab.t[0], tab.t[2], i02), m),
                                             _mm256_maddubs_epi16(pair_lookup(tab.t[1], tab.t[3], i13), m));
        const __m256i shi = _mm256_add_epi16(_mm256_maddubs_epi16(m, pair_lookup(tab.t[4], tab.t[6], i02)),
                                             _mm256_maddubs_epi16(m, pair_lookup(tab.t[5], tab.t[7], i13)));
        const vq h = widen_add(vq_zero(), shi);
        acc = widen_add(acc, slo);
        acc.lo = _mm256_add_epi32(acc.lo, _mm256_slli_epi32(h.lo, 8));
        acc.hi = _mm256_add_epi32(acc.hi, _mm256_slli_epi32(h.hi, 8));
        return acc;
    }
    return widen_add(acc, _mm256_add_epi16(_mm256_maddubs_epi16(m, pair_lookup(tab.t[0], tab.t[2], i02)),
                                           _mm256_maddubs_epi16(m, pair_lookup(tab.t[1], tab.t[3], i13))));
}

/* Lane j: value where bit j of word is set, else +0. */
static inline vf vf_bits(const unsigned word, const float value)
{
    const __m256i w = _mm256_set1_epi32((int)word), v = _mm256_castps_si256(_mm256_set1_ps(value));
    const __m256i lo = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i hi = _mm256_slli_epi32(lo, 8);
    vf r = {_mm256_castsi256_ps(_mm256_and_si256(_mm256_cmpeq_epi32(_mm256_and_si256(w, lo), lo), v)),
            _mm256_castsi256_ps(_mm256_and_si256(_mm256_cmpeq_epi32(_mm256_and_si256(w, hi), hi), v))};
    return r;
}

/* 16 unsigned bytes as floats (exact). */
static inline vf vf_from_u8(const uint8_t *p)
{
    const __m128i b = _mm_loadu_si128((const __m128i *)(const void *)p);
    vf r = {_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b)),
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(b, 8)))};
    return r;
}

#include "kernels/products_body.h"

KERNEL_TABLE(lrq_kernels_avx2, "avx2");

LRQ_TARGET_END

#endif /* LRQ_X86 */
