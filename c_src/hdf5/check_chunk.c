/* SPDX-License-Identifier: MIT */
/*
 * check_chunk -- run the plugin's chunk decoder (chunk.c) outside HDF5, on
 * many chunks in one process, so that tests can run it under AddressSanitizer
 * and UBSan (tests/test_hdf5_sanitized.py).
 *
 * Input, on standard input, a sequence of records, little-endian:
 *   u32 n, then n u32 cd_values words; u64 length, then length chunk bytes.
 * Output, one line per record: the decoder's return code, and for a decoded
 * chunk the sum over its values' bytes of (position + 1) * byte, modulo 2^64
 * (a fingerprint of the values and their places that the test compares with
 * what lrq.decode gives).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "chunk.h"
#include "lrq.h"

static int read_exact(void *to, size_t bytes)
{
    return fread(to, 1, bytes, stdin) == bytes;
}

static uint64_t little(const uint8_t *p, unsigned size)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void *allocate(size_t bytes, void *context)
{
    (void)context;
    return calloc(bytes ? bytes : 1, 1);
}

static void release(void *memory, void *context)
{
    (void)context;
    free(memory);
}

int main(void)
{
    lrq_threads_set(1);
    uint8_t head[8];
    while (read_exact(head, 4)) {
        const uint32_t count = (uint32_t)little(head, 4);
        unsigned *words = malloc((count ? count : 1) * sizeof *words);
        if (words == NULL)
            return 2;
        for (uint32_t i = 0; i < count; i++) {
            if (!read_exact(head, 4))
                return 2;
            words[i] = (unsigned)little(head, 4);
        }
        if (!read_exact(head, 8))
            return 2;
        const uint64_t length = little(head, 8);
        uint8_t *stream = malloc(length ? length : 1);
        if (stream == NULL || !read_exact(stream, length))
            return 2;
        char detail[LRQ_DETAIL_SIZE];
        lrq_h5_chunk chunk;
        void *values = NULL;
        int rc = lrq_h5_chunk_parse(count, words, &chunk, detail, sizeof detail);
        if (rc == LRQ_OK)
            rc = lrq_h5_chunk_decode(&chunk, stream, length, allocate, release, NULL, &values,
                                     detail, sizeof detail);
        uint64_t fingerprint = 0;
        if (rc == LRQ_OK) {
            for (uint64_t i = 0; i < chunk.bytes; i++)
                fingerprint += (i + 1) * ((const uint8_t *)values)[i];
            free(values);
        }
        printf("%d %llu\n", rc, (unsigned long long)fingerprint);
        free(stream);
        free(words);
    }
    return 0;
}
