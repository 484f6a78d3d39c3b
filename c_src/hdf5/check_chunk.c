/* SPDX-License-Identifier: MIT */
/*
 * check_chunk -- run the plugin's chunk decoder (chunk.c) or, with the
 * argument "encode", its encoder (encode.c) outside HDF5, on many chunks in
 * one process, so that tests can run them under AddressSanitizer and UBSan
 * (tests/test_hdf5_sanitized.py).
 *
 * Input, on standard input, a sequence of records, little-endian:
 *   u32 n, then n u32 cd_values words (the stored form); u64 length, then
 *   length bytes: the chunk's stream (decode) or its values (encode).
 * Output of the decoder, one line per record: its return code, and for a
 * decoded chunk the sum over its values' bytes of (position + 1) * byte,
 * modulo 2^64 (a fingerprint of the values and their places that the test
 * compares with what lrq.decode gives).  Output of the encoder, per record:
 * i32 return code, u64 stream length, the stream (compared with lrq.encode's).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
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

static void *allocate(size_t bytes, void *context)
{
    (void)context;
    return calloc(bytes ? bytes : 1, 1);
}

static void put_little(uint64_t v, unsigned size)
{
    for (unsigned i = 0; i < size; i++)
        putchar((int)((v >> (8 * i)) & 0xFF));
}

static void decode(size_t count, const unsigned *words, const uint8_t *stream, uint64_t length);
static void encode(size_t count, const unsigned *words, const uint8_t *values, uint64_t length);

static void release(void *memory, void *context)
{
    (void)context;
    free(memory);
}

int main(int argc, char **argv)
{
    const int encoding = argc > 1 && strcmp(argv[1], "encode") == 0;
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
        (encoding ? encode : decode)(count, words, stream, length);
        free(stream);
        free(words);
    }
    return 0;
}

static void decode(size_t count, const unsigned *words, const uint8_t *stream, uint64_t length)
{
    char detail[LRQ_DETAIL_SIZE];
    lrq_h5_chunk chunk;
    void *values = NULL;
    int rc = lrq_h5_chunk_parse(count, words, &chunk, detail, sizeof detail);
    if (rc == LRQ_OK)
        rc = lrq_h5_chunk_decode(&chunk, stream, length, allocate, release, NULL, &values, detail,
                                 sizeof detail);
    uint64_t fingerprint = 0;
    if (rc == LRQ_OK) {
        for (uint64_t i = 0; i < chunk.bytes; i++)
            fingerprint += (i + 1) * ((const uint8_t *)values)[i];
        free(values);
    }
    printf("%d %llu\n", rc, (unsigned long long)fingerprint);
}

static void encode(size_t count, const unsigned *words, const uint8_t *values, uint64_t length)
{
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
        rc = lrq_h5_chunk_encode(&chunk, &request, values, allocate, NULL, &stream, &stream_length,
                                 detail, sizeof detail);
    put_little((uint32_t)rc, 4);
    put_little(rc == LRQ_OK ? stream_length : 0, 8);
    if (rc == LRQ_OK)
        fwrite(stream, 1, stream_length, stdout);
    free(stream);
}
