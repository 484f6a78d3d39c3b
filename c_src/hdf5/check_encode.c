/* SPDX-License-Identifier: MIT */
/*
 * check_encode -- run the plugin's chunk encoder (encode.c) outside HDF5, on
 * many chunks in one process, so that tests can run it under AddressSanitizer
 * and UBSan (tests/test_hdf5_sanitized.py) and compare its streams with
 * lrq.encode's.
 *
 * Input, on standard input, a sequence of records, little-endian:
 *   u32 n, then n u32 words of the stored form; u64 length, then length bytes
 *   of chunk values.
 * Output, per record: i32 return code, u64 stream length, the stream.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "encode.h"
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

static void put_little(uint64_t v, unsigned size)
{
    for (unsigned i = 0; i < size; i++)
        putchar((int)((v >> (8 * i)) & 0xFF));
}

static void *allocate(size_t bytes, void *context)
{
    (void)context;
    return malloc(bytes ? bytes : 1);
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
        uint8_t *values = malloc(length ? length : 1);
        if (values == NULL || !read_exact(values, length))
            return 2;
        char detail[LRQ_DETAIL_SIZE];
        lrq_h5_chunk chunk;
        lrq_h5_request request;
        void *stream = NULL;
        size_t stream_length = 0;
        int rc = lrq_h5_chunk_parse(count, words, &chunk, detail, sizeof detail);
        if (rc == LRQ_OK && (count != 3 + chunk.ndim + LRQ_H5_CD_REQUEST_WORDS || length != chunk.bytes))
            rc = LRQ_ERR_ARGUMENT;
        if (rc == LRQ_OK)
            rc = lrq_h5_request_check(words + 4 + chunk.ndim, &chunk, &request, detail, sizeof detail);
        if (rc == LRQ_OK)
            rc = lrq_h5_chunk_encode(&chunk, &request, values, allocate, NULL, &stream,
                                     &stream_length, detail, sizeof detail);
        put_little((uint32_t)rc, 4);
        put_little(rc == LRQ_OK ? stream_length : 0, 8);
        if (rc == LRQ_OK)
            fwrite(stream, 1, stream_length, stdout);
        free(stream);
        free(values);
        free(words);
    }
    return 0;
}
