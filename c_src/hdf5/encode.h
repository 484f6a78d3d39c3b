/* SPDX-License-Identifier: MIT */
/*
 * Encoding one chunk in C, as the filter does on write: the request half
 * of the filter parameters (spec/hdf5-filter.md, "Filter parameters") and
 * the chunk's `.lrq` stream, byte for byte the one lrq.encode + lrq.dumps
 * make in Python for the same values and request (spec [H5-8]).
 */
#ifndef LRQ_H5_ENCODE_H
#define LRQ_H5_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "chunk.h"

/* Scheme codes (spec §10, as in the cd_values words). */
#define LRQ_H5_SCHEME_AUTO 0u
#define LRQ_H5_SCHEME_SIGNCUT 1u
#define LRQ_H5_SCHEME_LPLR 2u
#define LRQ_H5_SCHEME_DENSE 3u
/* Target codes. */
#define LRQ_H5_TARGET_DEFAULT 0u
#define LRQ_H5_TARGET_BITS 1u
#define LRQ_H5_TARGET_WIDTH 2u
#define LRQ_H5_TARGET_REL_ERROR 3u
/* The request form has at most this many words (scheme, target, value,
 * seed low, seed high, option); missing trailing words are 0. */
#define LRQ_H5_REQUEST_MAX_WORDS 6u
/* The filter's encoder takes tiles of one tile per chunk: lrq.encode tiles
 * a matrix with a side longer than this, which the filter does not. */
#define LRQ_H5_ENCODE_MAX_SIDE 4096u

typedef struct {
    unsigned scheme;  /* LRQ_H5_SCHEME_SIGNCUT or _DENSE */
    unsigned target;  /* LRQ_H5_TARGET_* */
    unsigned value;   /* the target's word: binary32 bits, or the width */
    uint64_t seed;
    unsigned option;  /* signcut: 0 c binary32, 1 binary16; dense: 0 searched, else a storage code */
} lrq_h5_request;

/*
 * lrq_h5_request_check -- read and check an encoding request.
 *
 * words: the request's six words in the order above (from the stored form
 * after "encoded by", or the request form padded with zeros).  chunk: the
 * chunk the request applies to.  Returns LRQ_OK, or LRQ_ERR_ARGUMENT with
 * the reason in detail (a scheme without a C encoder, a target out of its
 * range, a chunk the encoder does not take).
 */
int lrq_h5_request_check(const unsigned words[LRQ_H5_REQUEST_MAX_WORDS], const lrq_h5_chunk *chunk,
                         lrq_h5_request *request, char *detail, size_t detail_size);

/*
 * lrq_h5_chunk_encode -- one chunk's `.lrq` stream.
 *
 * values: chunk->bytes bytes, the chunk's elements in row-major order as
 * little-endian float32 or float64.  *out receives the stream (allocated
 * with `allocate`, zeroed or not) and *out_length its length.  Returns
 * LRQ_OK, or LRQ_ERR_ARGUMENT with a message (values not finite, out of
 * the scheme's range, a target nothing meets) or LRQ_ERR_MEMORY.
 */
int lrq_h5_chunk_encode(const lrq_h5_chunk *chunk, const lrq_h5_request *request,
                        const void *values, void *(*allocate)(size_t bytes, void *context),
                        void *context, void **out, size_t *out_length, char *detail,
                        size_t detail_size);

#endif
