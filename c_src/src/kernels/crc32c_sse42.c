/* SPDX-License-Identifier: MIT */
#include "common/internal.h"

#if LRQ_X86

#include <string.h>

#include "kernels/target.h"

LRQ_TARGET_BEGIN("sse4.2")

#include <nmmintrin.h>

uint32_t lrq_crc32c_update_sse42(uint32_t reg, const uint8_t *p, size_t n);

/* dispatch.c calls this only after the CPU reported SSE4.2. */
uint32_t lrq_crc32c_update_sse42(uint32_t reg, const uint8_t *p, size_t n)
{
    /* The crc32 instruction uses the same reflected Castagnoli polynomial
     * and the same raw register as the table code, so results are equal by
     * construction. memcpy expresses an unaligned load without UB. */
#if defined(__x86_64__)
    uint64_t reg64 = reg;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        reg64 = _mm_crc32_u64(reg64, v);
    }
    reg = (uint32_t)reg64;
#endif
    for (; n >= 4; p += 4, n -= 4) {
        uint32_t v;
        memcpy(&v, p, sizeof v);
        reg = _mm_crc32_u32(reg, v);
    }
    for (; n > 0; p++, n--)
        reg = _mm_crc32_u8(reg, *p);
    return reg;
}

LRQ_TARGET_END

#else

/* ISO C forbids an empty translation unit. */
typedef int lrq_crc32c_sse42_unused;

#endif
