/* SPDX-License-Identifier: MIT */
/*
 * The content rules of the sections of signcut, lplr and quant tiles (spec §9,
 * §10; [SEC-7]), checked in one place: by the reader when a file's section
 * is first used (format/) and by the tile constructors for sections handed
 * over directly (compute/), with the same messages.
 */
#include <stdio.h>
#include <string.h>

#include "common/internal.h"
#include "lrq.h"

static uint64_t load_le(const uint8_t *const p, const unsigned size)
{
    uint64_t v = 0;
    unsigned i;
    for (i = size; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

int lrq_floats_finite(const uint8_t *const p, const uint64_t len, const unsigned size,
                      const int bfloat, uint64_t *const bad)
{
    uint64_t i;

    for (i = 0; i + size <= len; i += size) {
        int inf_or_nan;
        if (size == 8)
            inf_or_nan = (load_le(p + i, 8) & UINT64_C(0x7FF0000000000000)) ==
                         UINT64_C(0x7FF0000000000000);
        else if (size == 4)
            inf_or_nan = (load_le(p + i, 4) & 0x7F800000u) == 0x7F800000u;
        else if (bfloat)
            inf_or_nan = (load_le(p + i, 2) & 0x7F80u) == 0x7F80u;
        else
            inf_or_nan = (load_le(p + i, 2) & 0x7C00u) == 0x7C00u;
        if (inf_or_nan) {
            *bad = i / size;
            return 0;
        }
    }
    return 1;
}

int lrq_check_weights(const uint8_t *const p, const uint64_t len, const int half,
                      const char *const where, char *const detail, const size_t dn)
{
    uint64_t bad = 0;
    if (!lrq_floats_finite(p, len, half ? 2 : 4, 0, &bad))
        return lrq_detail(detail, dn, LRQ_ERR_FORMAT, "[SC-2] %s: c[%llu] is NaN or infinite",
                          where, (unsigned long long)bad);
    return LRQ_OK;
}

int lrq_check_scales(const uint8_t *const p, const uint64_t len, const char *const where,
                     char *const detail, const size_t dn)
{
    uint64_t i;
    for (i = 0; i + 2 <= len; i += 2)
        if (load_le(p + i, 2) >= 0x7C00u)
            return lrq_detail(detail, dn, LRQ_ERR_FORMAT, "[LP-3] %s: scale #%llu is "
                              "negative, -0, infinite or NaN (0x%04x)", where,
                              (unsigned long long)(i / 2), (unsigned)load_le(p + i, 2));
    return LRQ_OK;
}

int lrq_check_scale_codes(const uint8_t *const p, const uint64_t len, const uint64_t count,
                          const unsigned scale_bits, const char *const where, char *const detail,
                          const size_t dn)
{
    const uint64_t used = count * scale_bits; /* bits; len = ceil(used / 8) is checked already */

    if (len == 0 || used % 8 == 0)
        return LRQ_OK;
    if ((p[len - 1] >> (used % 8)) != 0)
        return lrq_detail(detail, dn, LRQ_ERR_PADDING, "[QT-3] %s: the %u bits after the last "
                          "scale code (in byte %llu) are not zero", where, (unsigned)(8 - used % 8),
                          (unsigned long long)(len - 1));
    return LRQ_OK;
}

int lrq_check_row_exponents(const uint8_t *const p, const uint64_t len, const char *const where,
                            char *const detail, const size_t dn)
{
    uint64_t i;
    for (i = 0; i < len; i++) {
        const int e = (int)(int8_t)p[i];
        if (e < LRQ_QUANT_EXP_MIN || e > LRQ_QUANT_EXP_MAX)
            return lrq_detail(detail, dn, LRQ_ERR_FORMAT, "[QT-4] %s: row %llu has exponent %d, "
                              "outside [%d, %d]", where, (unsigned long long)i, e,
                              LRQ_QUANT_EXP_MIN, LRQ_QUANT_EXP_MAX);
    }
    return LRQ_OK;
}

int lrq_check_matrix(const uint8_t *const p, const uint64_t len, const uint64_t rows,
                     const uint64_t k, const unsigned bits, const uint64_t panel,
                     const char *const where, char *const detail, const size_t dn)
{
    uint64_t bad = 0;
    int rc = LRQ_OK;

    if (bits >= 5) {
        rc = lrq_layout_check(p, len, rows, k, 8, panel, 1u << bits, &bad);
    } else {
        /* One sign matrix, or b bit-planes stored one after another. */
        const uint64_t plane = len / bits;
        uint64_t q;
        for (q = 0; q < bits && rc == LRQ_OK; q++)
            rc = lrq_layout_check(p + q * plane, plane, rows, k, 1, panel, 2, &bad);
        if (rc != LRQ_OK)
            bad += (q - 1) * plane;
    }
    if (rc == LRQ_ERR_PADDING)
        return lrq_detail(detail, dn, LRQ_ERR_PADDING, "[%s] %s: a padding %s in the word at "
                          "byte %llu is not zero", bits >= 5 ? "LAY-2" : "LAY-1", where,
                          bits >= 5 ? "byte" : "bit", (unsigned long long)bad);
    /* A quant tile's section 'codes' follows [QT-5], lplr's 'r_codes' and
     * 'l_codes' [LP-4]: the same rule, named where the scheme defines it. */
    if (rc == LRQ_ERR_FORMAT)
        return lrq_detail(detail, dn, LRQ_ERR_FORMAT, "[%s] %s: the word at byte %llu holds a "
                          "code of more than %u bits", strstr(where, "'codes'") != NULL ? "QT-5" : "LP-4",
                          where, (unsigned long long)bad, bits);
    if (rc != LRQ_OK) /* callers check lengths first: this cannot happen */
        return lrq_detail(detail, dn, LRQ_ERR_INTERNAL, "%s: inconsistent layout (%s)", where,
                          lrq_error_name(rc));
    return LRQ_OK;
}
