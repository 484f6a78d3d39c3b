/* SPDX-License-Identifier: MIT */
/*
 * What an lrq-filtered HDF5 chunk is, apart from HDF5 itself: the filter's
 * parameters (its cd_values words) and the decoding of one chunk -- a
 * complete `.lrq` stream of one tensor -- into the dataset's element type,
 * through the public C interface only (lrq.h).  spec/hdf5-filter.md
 * specifies both; plugin.c binds them to HDF5's filter interface.
 */
#ifndef LRQ_H5_CHUNK_H
#define LRQ_H5_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "h5z_abi.h"

/* The HDF5 filter ID (spec/hdf5-filter.md §1). */
#define LRQ_H5_FILTER_ID 335

/* cd_values word 0 of the stored parameters: a marker in the high half that
 * no requested parameter starts with, and the layout version in the low
 * half. */
#define LRQ_H5_CD_MARKER 0x6C72u
#define LRQ_H5_CD_LAYOUT 1u
#define LRQ_H5_CD_WORD0 ((LRQ_H5_CD_MARKER << 16) | LRQ_H5_CD_LAYOUT)

/* The encoding request after the chunk dimensions: encoded by, scheme,
 * target kind, target value, seed (low, high), scheme option. */
#define LRQ_H5_CD_REQUEST_WORDS 7
/* "encoded by": the filter itself, or the writing application, which
 * stores encoded chunks directly (H5Dwrite_chunk). */
#define LRQ_H5_ENCODED_BY_FILTER 0u
#define LRQ_H5_ENCODED_BY_WRITER 1u

/* The tensor name a writer gives a chunk's stream [H5-1]. */
#define LRQ_H5_CHUNK_NAME "chunk"

/* A chunk is at most this many bytes decoded (HDF5's own chunk limit). */
#define LRQ_H5_CHUNK_MAX_BYTES UINT64_C(0xFFFFFFFF)

/* The stored parameters a decoder needs; spec/hdf5-filter.md §3.1 gives every word. */
typedef struct {
    int dtype;                       /* LRQ_DTYPE_FLOAT32 or LRQ_DTYPE_FLOAT64 */
    unsigned ndim;                   /* the chunk's rank, 1 .. LRQ_H5S_MAX_RANK */
    uint64_t dims[LRQ_H5S_MAX_RANK]; /* the chunk's dimensions, each >= 1 */
    uint64_t bytes;                  /* prod(dims) * item size */
} lrq_h5_chunk;

/*
 * lrq_h5_chunk_parse -- read the stored cd_values words.
 *
 * Returns LRQ_OK, or LRQ_ERR_FORMAT with a message in detail when a word is
 * out of its range.  Words after the chunk dimensions are the encoding
 * parameters; decoding does not read them.
 */
int lrq_h5_chunk_parse(size_t count, const unsigned *words, lrq_h5_chunk *chunk,
                       char *detail, size_t detail_size);

/* Whether stored parameters say the application encodes the chunks. */
int lrq_h5_chunk_encoded_by_writer(size_t count, const unsigned *words);

/*
 * lrq_h5_chunk_decode -- the values of one chunk.
 *
 * stream, length: the chunk as stored, a complete `.lrq` stream.
 * out:            receives chunk->bytes bytes allocated with `allocate`
 *                 (which must return zeroed memory, or NULL): the chunk's
 *                 elements in row-major order, the tensor in its leading
 *                 corner and zeros elsewhere (spec/hdf5-filter.md §5).
 *
 * Returns LRQ_OK, or the error of the stream (LRQ_ERR_FORMAT, _CHECKSUM,
 * _PADDING, _UNSUPPORTED) or LRQ_ERR_MEMORY, with a message in detail; *out
 * is then not written.  Every byte of the stream is verified before any
 * value is computed.
 */
int lrq_h5_chunk_decode(const lrq_h5_chunk *chunk, const void *stream, size_t length,
                        void *(*allocate)(size_t bytes, void *context),
                        void (*release)(void *memory, void *context), void *context,
                        void **out, char *detail, size_t detail_size);

/* Writes a printf-style message into detail (when given) and returns code:
 * how the plugin's functions report an error. */
int lrq_h5_fail(char *detail, size_t detail_size, int code, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

#endif
