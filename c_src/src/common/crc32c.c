/* SPDX-License-Identifier: MIT */
#include <pthread.h>

#include "common/dispatch.h"
#include "common/internal.h"
#include "lrq.h"

#define CRC32C_POLY 0x82F63B78u /* Castagnoli, bit-reflected */

/* Slice-by-8: table[j][b] is the register after feeding byte b followed by j
 * zero bytes, so eight input bytes cost eight independent lookups instead of
 * a chain of eight dependent ones.  Built at first use rather than spelled
 * out as 2048 literals, so the source shows how the numbers arise. */
static uint32_t table[8][256];

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void)
{
    unsigned b, j;

    for (b = 0; b < 256; b++) {
        uint32_t reg = b;
        for (j = 0; j < 8; j++)
            reg = (reg >> 1) ^ (CRC32C_POLY & (0u - (reg & 1u)));
        table[0][b] = reg;
    }
    for (j = 1; j < 8; j++)
        for (b = 0; b < 256; b++)
            table[j][b] = (table[j - 1][b] >> 8) ^ table[0][table[j - 1][b] & 0xFFu];
}

/* Assembling the word from bytes keeps the table code endian-neutral; GCC and
 * Clang turn it into one load on little-endian targets. */
static uint32_t load_le32(const uint8_t *const p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

uint32_t lrq_crc32c_update_table(uint32_t reg, const uint8_t *p, size_t n)
{
    (void)pthread_once(&init_once, crc32c_init);
    for (; n >= 8; p += 8, n -= 8) {
        const uint32_t lo = reg ^ load_le32(p);
        const uint32_t hi = load_le32(p + 4);
        reg = table[7][lo & 0xFFu] ^ table[6][(lo >> 8) & 0xFFu] ^
              table[5][(lo >> 16) & 0xFFu] ^ table[4][lo >> 24] ^
              table[3][hi & 0xFFu] ^ table[2][(hi >> 8) & 0xFFu] ^
              table[1][(hi >> 16) & 0xFFu] ^ table[0][hi >> 24];
    }
    for (; n > 0; p++, n--)
        reg = (reg >> 8) ^ table[0][(reg ^ *p) & 0xFFu];
    return reg;
}

uint32_t lrq_crc32c(const uint32_t crc, const void *const data, const size_t len)
{
    if (len == 0)
        return crc; /* also keeps a NULL data pointer away from the cores */
    /* The XOR on entry and exit turns "0 starts, the result continues" into
     * the register convention (initial value and final XOR 0xFFFFFFFF). */
    /* The active path's core: forcing "scalar" is the way to exercise the
     * table code on any machine. */
    return ~lrq_dispatch()->crc32c(~crc, (const uint8_t *)data, len);
}
