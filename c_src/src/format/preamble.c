/* SPDX-License-Identifier: MIT */
/*
 * The preamble (spec §3): steps 1-8 of spec §15.
 */
#include "format/container.h"

static const uint8_t magic[8] = {0x89, 'L', 'R', 'Q', 0x0D, 0x0A, 0x1A, 0x0A};

/* ------------------------------------------------------------------------ */
/* Preamble (spec §3): steps 1-8 of §15                                     */

int lrq_fmt_check_preamble(const uint8_t *const p, const size_t size, char *const detail,
                          const size_t dn)
{
    uint64_t header_length, file_length, required;
    uint32_t crc_stored, crc;
    unsigned major, i;

    if (size < PREAMBLE_SIZE) {
        /* A short input is judged on the part of the magic it has, then on
         * its major version, before it is called short ([PRE-8]). */
        const size_t n = size < 8 ? size : 8;
        if (n > 0 && memcmp(p, magic, n) != 0)
            return lrq_detail(detail, dn, LRQ_ERR_FORMAT, "[PRE-1] not an .lrq file: bad magic");
        major = size >= 10 ? (unsigned)load_le(p + 8, 2) : LRQ_FORMAT_MAJOR;
        if (major != LRQ_FORMAT_MAJOR)
            return lrq_detail(detail, dn, LRQ_ERR_UNSUPPORTED,
                              "[PRE-2] the file is format major version %u; this library reads "
                              "major version %d", major, LRQ_FORMAT_MAJOR);
        return lrq_detail(detail, dn, LRQ_ERR_FORMAT,
                          "[PRE-8] the file is %zu bytes, shorter than the 64-byte preamble", size);
    }
    if (memcmp(p, magic, 8) != 0)
        return lrq_detail(detail, dn, LRQ_ERR_FORMAT, "[PRE-1] not an .lrq file: bad magic");
    major = (unsigned)load_le(p + 8, 2);
    if (major != LRQ_FORMAT_MAJOR)
        return lrq_detail(detail, dn, LRQ_ERR_UNSUPPORTED,
                          "[PRE-2] the file is format version %u.%u; this library reads major "
                          "version %d", major, (unsigned)load_le(p + 10, 2), LRQ_FORMAT_MAJOR);
    if (load_le(p + 12, 4) != 0)
        return lrq_detail(detail, dn, LRQ_ERR_FORMAT, "[PRE-3] reserved0 is not zero");
    for (i = 52; i < PREAMBLE_SIZE; i++)
        if (p[i] != 0)
            return lrq_detail(detail, dn, LRQ_ERR_FORMAT,
                              "[PRE-3] reserved1 byte %u is not zero", i - 52);
    /* Version 1.1 assigns bit 0 (signcut_c16); every other bit is unknown. */
    required = load_le(p + 16, 8);
    if ((required & ~LRQ_REQUIRED_KNOWN) != 0)
        return lrq_detail(detail, dn, LRQ_ERR_UNSUPPORTED,
                          "[PRE-4] the file needs required features 0x%llx that this library "
                          "does not implement", (unsigned long long)(required & ~LRQ_REQUIRED_KNOWN));
    header_length = load_le(p + 32, 8);
    if (header_length < 1 || header_length > LRQ_HEADER_LENGTH_MAX)
        return lrq_detail(detail, dn, LRQ_ERR_FORMAT,
                          "[PRE-6] header length %llu is outside [1, 16777216]",
                          (unsigned long long)header_length);
    file_length = load_le(p + 40, 8);
    if (file_length != (uint64_t)size)
        return lrq_detail(detail, dn, LRQ_ERR_FORMAT,
                          "[PRE-7] the preamble says the file is %llu bytes but it is %zu "
                          "(truncated or extended)", (unsigned long long)file_length, size);
    /* header_length <= 16 MiB, so the sum cannot overflow. */
    if (PREAMBLE_SIZE + header_length > file_length)
        return lrq_detail(detail, dn, LRQ_ERR_FORMAT,
                          "[PRE-7] the %llu-byte header runs past the end of the %zu-byte file",
                          (unsigned long long)header_length, size);
    crc_stored = (uint32_t)load_le(p + 48, 4);
    crc = lrq_crc32c(lrq_crc32c(0, p, 48), p + PREAMBLE_SIZE, (size_t)header_length);
    if (crc != crc_stored)
        return lrq_detail(detail, dn, LRQ_ERR_CHECKSUM,
                          "[PRE-9] the header CRC-32C is 0x%08x; the preamble says 0x%08x",
                          (unsigned)crc, (unsigned)crc_stored);
    return LRQ_OK;
}
