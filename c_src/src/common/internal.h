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
