/* SPDX-License-Identifier: MIT */
/*
 * Declarations shared between the files of the C core and nobody else.
 * Nothing here is part of the public interface (that is lrq.h alone).
 */
#ifndef LRQ_INTERNAL_H
#define LRQ_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* LRQ_NO_X86_SIMD builds the portable library only, as on a CPU that is not
 * x86: the way to compile-test the non-x86 configuration on an x86 host. */
#if (defined(__x86_64__) || defined(__i386__)) && !defined(LRQ_NO_X86_SIMD)
#define LRQ_X86 1
#else
#define LRQ_X86 0
#endif

/* The same for 64-bit ARM, whose Advanced SIMD (NEON) is part of the base
 * architecture: LRQ_NO_NEON_SIMD leaves the NEON files out. */
#if defined(__aarch64__) && defined(__ARM_NEON) && !defined(LRQ_NO_NEON_SIMD)
#define LRQ_NEON 1
#else
#define LRQ_NEON 0
#endif

/* The format's limits, each defined once (spec §6-§10; the rule names the
 * limit).  Every dimension, width, rank and encoder input side is at most
 * LRQ_DIM_MAX, so that sizes derived from two of them fit in 64 bits. */
#define LRQ_DIM_MAX ((UINT64_C(1) << 31) - 1)           /* [TEN-3], [SC-1], [LP-1] */
#define LRQ_ELEMENTS_MAX (UINT64_C(1) << 48)            /* [TEN-3] */
#define LRQ_PANEL_MIN 64u                               /* [TEN-5] */
#define LRQ_PANEL_MAX (UINT64_C(1) << 20)               /* [TEN-5] */
#define LRQ_GROUP_MIN 16u                               /* [LP-1] */
#define LRQ_GROUP_MAX (UINT64_C(1) << 20)               /* [LP-1] */
#define LRQ_HEADER_LENGTH_MAX (UINT64_C(16) << 20)      /* [PRE-6] */
#define LRQ_TENSORS_MAX 65536u                          /* [LIM-4] */
#define LRQ_NAME_BYTES_MAX 1024u                        /* [TEN-2] */
#define LRQ_PAGE_ALIGNED_FROM (UINT64_C(1) << 20)       /* spec §8.2 */

/* Write a message into a caller's detail buffer (NULL or size 0: nothing is
 * written; too long: cut, always NUL-terminated) and return `code`, so that
 * a failing check reads `return lrq_detail(detail, n, LRQ_ERR_FORMAT, ...)`.
 * Messages start with the spec rule they report, e.g. "[SEC-3] ...". */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
int lrq_detail(char *detail, size_t detail_size, int code, const char *fmt, ...);

/* Check the content of an interleaved matrix without unpacking it: every
 * padding bit (elem_bits 1, [LAY-1]) or padding byte (elem_bits 8, [LAY-2])
 * must be zero, and with elem_bits 8 every element must be < code_limit
 * ([LP-4]; pass 256 for no limit).  packed_len must equal the layout size.
 * Returns LRQ_OK, LRQ_ERR_PADDING, LRQ_ERR_FORMAT (a code over the limit),
 * or LRQ_ERR_ARGUMENT / LRQ_ERR_BUFFER_SIZE as lrq_layout_unpack() does.
 * On a content error *bad_offset receives the byte offset of the first
 * offending word. */
int lrq_layout_check(const uint8_t *packed, uint64_t packed_len, uint64_t rows,
                     uint64_t k, int elem_bits, uint64_t panel, unsigned code_limit,
                     uint64_t *bad_offset);

/* The content rules of signcut, lplr and quant sections (common/sections.c).  Each
 * returns LRQ_OK, or the error with a message in `detail` that starts with
 * the rule and names the section by `where` (e.g. "section 'tt'").
 *   lrq_check_weights: [SC-2], w weights as float32, or binary16 if half;
 *   lrq_check_scales:  [LP-3], binary16 scales;
 *   lrq_check_matrix:  [LAY-1] / [LAY-2] padding and [LP-4] codes of a
 *                      sign matrix or bit-planes (bits <= 4, one plane per
 *                      bit) or a byte matrix (bits >= 5) of rows x k; the
 *                      length must match the layout (spec §9). */
int lrq_check_weights(const uint8_t *p, uint64_t len, int half, const char *where, char *detail,
                      size_t dn);
int lrq_check_scales(const uint8_t *p, uint64_t len, const char *where, char *detail, size_t dn);
int lrq_check_matrix(const uint8_t *p, uint64_t len, uint64_t rows, uint64_t k, unsigned bits,
                     uint64_t panel, const char *where, char *detail, size_t dn);
/* Quant tiles (format 1.5, spec §10.7): the bits after the last of `count`
 * scale codes of scale_bits bits are zero ([QT-3]); every row exponent, an
 * int8, is in [LRQ_QUANT_EXP_MIN, LRQ_QUANT_EXP_MAX] ([QT-4]).  Those bounds
 * make every scale code * 2^e (code < 2^8) an exact binary16 below 2^15. */
#define LRQ_QUANT_EXP_MIN (-24)
#define LRQ_QUANT_EXP_MAX 7
int lrq_check_scale_codes(const uint8_t *p, uint64_t len, uint64_t count, unsigned scale_bits,
                          const char *where, char *detail, size_t dn);
int lrq_check_row_exponents(const uint8_t *p, uint64_t len, const char *where, char *detail,
                            size_t dn);
/* 1 if none of the len / size little-endian floats of `size` bytes (8, 4,
 * or 2: binary16, or bfloat16 if bfloat) is infinite or NaN; else 0 and
 * *bad is the index of the first that is. */
int lrq_floats_finite(const uint8_t *p, uint64_t len, unsigned size, int bfloat, uint64_t *bad);

/* lrq_layout_pack() for a matrix given as rows of bits (element c of row r
 * is bit c%64 of bits[r*row_words + c/64]), without a byte per element.
 * Bits at index >= k are ignored.  Same arguments and errors otherwise. */
int lrq_layout_pack_bitrows(const uint64_t *bits, uint64_t row_words,
                            uint64_t rows, uint64_t k, uint64_t panel,
                            uint8_t *out, size_t out_len);

/* Signcut weights stored as binary16 with a scale (format 1.1, spec §10.2).
 *
 * lrq_c_scale_ok: [SC-3], "c_scale" is a power of two 2^e with
 * -125 <= e <= 112, i.e. a binary32 with a zero fraction and a biased
 * exponent in [2, 239].  Then scale * h is exact in binary32 for every
 * finite binary16 h: h is an integer of at most 11 bits times 2^-24 or
 * more, so the product is such an integer times 2^(e-24) >= 2^-149, and
 * |product| <= 65504 * 2^112 < 2^128.
 */
static inline int lrq_c_scale_ok(const float scale)
{
    union { float f; uint32_t u; } v;
    unsigned biased;
    v.f = scale;
    biased = (unsigned)(v.u >> 23);
    return (v.u & 0x7FFFFFu) == 0 && biased >= 2 && biased <= 239;
}

/* binary64 x >= 0 -> IEEE binary16 bits, rounded to nearest even; 0 for
 * x <= 0 or NaN, infinity (0x7C00) past the largest finite half.  The one
 * rounding of the signcut weights (binary16 c) and the lplr scales. */
static inline uint16_t lrq_half_from_double(const double x)
{
    int e;
    double r;
    if (!(x > 0.0))
        return 0;
    if (x < 0x1p-14) /* subnormal: multiples of 2^-24; 1024 is the first normal */
        return (uint16_t)nearbyint(x * 0x1p24);
    (void)frexp(x, &e); /* x in [2^(e-1), 2^e) */
    e -= 1;
    r = nearbyint(ldexp(x, 10 - e)); /* in [1024, 2048] */
    if (r >= 2048.0) {
        r = 1024.0;
        e += 1;
    }
    if (e > 15)
        return 0x7C00;
    return (uint16_t)(((unsigned)(e + 15) << 10) | (unsigned)(r - 1024.0));
}

/* IEEE binary16 -> binary32, exact (F16C's vcvtph2ps gives the same bits). */
static inline float lrq_half_to_float(const uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
    uint32_t bits;
    float f;

    if (exp == 0) {
        /* Subnormal or zero: man * 2^-24 is exact in binary32. */
        f = (float)man * 0x1p-24f;
        return sign ? -f : f;
    }
    bits = exp == 31 ? sign | 0x7F800000u | man << 13 : sign | (exp + 112u) << 23 | man << 13;
    memcpy(&f, &bits, sizeof f);
    return f;
}

#endif /* LRQ_INTERNAL_H */
