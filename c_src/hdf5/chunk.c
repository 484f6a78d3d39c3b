/* SPDX-License-Identifier: MIT */
/*
 * Decoding one lrq-filtered chunk through the public C interface.
 *
 * The container does the checking: the stream is opened with every
 * checksum and content rule verified up front (spec §15), so the loops
 * below only ever see sections that passed [SEC-6] and [SEC-7], and each
 * tile's own constructor rechecks what products rely on.  What is left here
 * is what only the filter knows: that the stream holds one tensor of the
 * dataset's type, fitting the chunk (spec/hdf5-filter.md §2).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "lrq.h"

int lrq_h5_fail(char *detail, size_t detail_size, int code, const char *format, ...)
{
    if (detail != NULL && detail_size > 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(detail, detail_size, format, args);
        va_end(args);
    }
    return code;
}

int lrq_h5_chunk_parse(size_t count, const unsigned *words, lrq_h5_chunk *chunk,
                       char *detail, size_t detail_size)
{
    memset(chunk, 0, sizeof *chunk);
    if (count < 3 || words == NULL)
        return lrq_h5_fail(detail, detail_size, LRQ_ERR_FORMAT,
                    "filter parameters: %zu words; the stored form has at least 4", count);
    if (words[0] != LRQ_H5_CD_WORD0) {
        if (words[0] >> 16 == LRQ_H5_CD_MARKER)
            return lrq_h5_fail(detail, detail_size, LRQ_ERR_UNSUPPORTED,
                        "filter parameters: layout version %u; this plugin reads version %u",
                        words[0] & 0xFFFFu, LRQ_H5_CD_LAYOUT);
        return lrq_h5_fail(detail, detail_size, LRQ_ERR_FORMAT,
                    "filter parameters: word 0 is %u, not the stored-form marker %u",
                    words[0], LRQ_H5_CD_WORD0);
    }
    if (words[1] != LRQ_DTYPE_FLOAT32 && words[1] != LRQ_DTYPE_FLOAT64)
        return lrq_h5_fail(detail, detail_size, LRQ_ERR_FORMAT,
                    "filter parameters: element type code %u is neither float32 (%d) nor float64 (%d)",
                    words[1], LRQ_DTYPE_FLOAT32, LRQ_DTYPE_FLOAT64);
    chunk->dtype = (int)words[1];
    if (words[2] < 1 || words[2] > LRQ_H5S_MAX_RANK || count < 3 + (size_t)words[2])
        return lrq_h5_fail(detail, detail_size, LRQ_ERR_FORMAT,
                    "filter parameters: chunk rank %u with %zu words", words[2], count);
    chunk->ndim = words[2];
    uint64_t bytes = lrq_dtype_size(chunk->dtype);
    for (unsigned i = 0; i < chunk->ndim; i++) {
        const uint64_t dim = words[3 + i];
        if (dim < 1 || bytes > LRQ_H5_CHUNK_MAX_BYTES / dim)
            return lrq_h5_fail(detail, detail_size, LRQ_ERR_FORMAT,
                        "filter parameters: chunk dimension %u is %llu (a chunk is 1 byte to 4 GiB)",
                        i, (unsigned long long)dim);
        chunk->dims[i] = dim;
        bytes *= dim;
    }
    chunk->bytes = bytes;
    return LRQ_OK;
}

int lrq_h5_chunk_encoded_by_writer(size_t count, const unsigned *words)
{
    lrq_h5_chunk chunk;
    return lrq_h5_chunk_parse(count, words, &chunk, NULL, 0) == LRQ_OK &&
           count >= 3 + chunk.ndim + LRQ_H5_CD_REQUEST_WORDS &&
           words[3 + chunk.ndim] == LRQ_H5_ENCODED_BY_WRITER;
}

/* ---------------------------------------------------------------- values */

static uint64_t load_le(const uint8_t *p, unsigned size)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static double half_value(uint16_t h)
{
    const int exponent = (h >> 10) & 0x1F;
    const double magnitude = exponent == 0 ? ldexp((double)(h & 0x3FF), -24)
                                           : ldexp((double)((h & 0x3FF) | 0x400), exponent - 25);
    return (h & 0x8000) ? -magnitude : magnitude;
}

/* A stored float as a double, exactly (every float type of spec §6.5 widens
 * exactly to binary64); only finite values reach here ([DN-3]). */
static double stored_value(const uint8_t *p, int storage)
{
    const uint64_t bits = load_le(p, lrq_dtype_size(storage));
    switch (storage) {
    case LRQ_DTYPE_FLOAT64: {
        double d;
        memcpy(&d, &bits, sizeof d);
        return d;
    }
    case LRQ_DTYPE_FLOAT32: {
        const uint32_t b = (uint32_t)bits;
        float f;
        memcpy(&f, &b, sizeof f);
        return f;
    }
    case LRQ_DTYPE_FLOAT16:
        return half_value((uint16_t)bits);
    default: { /* LRQ_DTYPE_BFLOAT16 */
        const uint32_t b = (uint32_t)bits << 16;
        float f;
        memcpy(&f, &b, sizeof f);
        return f;
    }
    }
}

/* One value into the output type: [NUM-2] asks for IEEE round-to-nearest-
 * even, which is what C's conversion does under the default rounding mode
 * (IEC 60559, Annex F); a binary64 too large for binary32 becomes infinity. */
static void put_value(uint8_t *out, uint64_t index, int dtype, double v)
{
    if (dtype == LRQ_DTYPE_FLOAT64) {
        memcpy(out + 8 * index, &v, 8);
    } else {
        const float f = (float)v;
        memcpy(out + 4 * index, &f, 4);
    }
}

/* ---------------------------------------------------------------- chunks */

/* The chunk as the tensor sees it: leading dimensions of extent 1 dropped
 * while more than two remain, so chunks (1, r, c) of a 3-D dataset hold
 * r x c matrices (spec/hdf5-filter.md §2). */
typedef struct {
    unsigned ndim;
    const uint64_t *dims;
    uint64_t stride[LRQ_H5S_MAX_RANK]; /* in elements */
} chunk_view;

static chunk_view view_of(const lrq_h5_chunk *chunk)
{
    chunk_view v;
    unsigned lead = 0;
    while (chunk->ndim - lead > 2 && chunk->dims[lead] == 1)
        lead++;
    v.ndim = chunk->ndim - lead;
    v.dims = chunk->dims + lead;
    uint64_t stride = 1;
    for (unsigned i = v.ndim; i-- > 0;) {
        v.stride[i] = stride;
        stride *= v.dims[i];
    }
    return v;
}

/* A dense tile: its values in row-major order over the tile's dimensions,
 * written at the tile's origin. */
static void place_dense(const chunk_view *v, const lrq_tile_info *tile, const uint8_t *values,
                        int dtype, uint8_t *out)
{
    const unsigned nd = tile->ndim;
    const unsigned item = lrq_dtype_size(tile->storage);
    const uint64_t run = tile->shape[nd - 1];
    uint64_t rows = 1;
    for (unsigned i = 0; i + 1 < nd; i++)
        rows *= tile->shape[i];
    uint64_t src = 0;
    for (uint64_t r = 0; r < rows; r++) {
        /* r as an index over the tile's leading dimensions, last fastest */
        uint64_t at = tile->origin[nd - 1], rest = r;
        for (unsigned i = nd - 1; i-- > 0;) {
            at += (tile->origin[i] + rest % tile->shape[i]) * v->stride[i];
            rest /= tile->shape[i];
        }
        for (uint64_t j = 0; j < run; j++, src++)
            put_value(out, at + j, dtype, stored_value(values + src * item, tile->storage));
    }
}

static int tile_handle(lrq_file *file, uint64_t index, const lrq_tile_info *tile,
                       const lrq_tensor_info *tensor, lrq_tile **handle, char *detail,
                       size_t detail_size)
{
    const void *data[LRQ_MAX_SECTIONS];
    size_t length[LRQ_MAX_SECTIONS];
    for (unsigned s = 0; s < tile->section_count; s++) {
        uint64_t len;
        const int rc = lrq_file_section(file, 0, index, s, &data[s], &len, detail, detail_size);
        if (rc != LRQ_OK)
            return rc;
        length[s] = (size_t)len;
    }
    const uint64_t m = tile->shape[0], n = tile->shape[1];
    if (tile->scheme == LRQ_SCHEME_LPLR)
        return lrq_tile_create_lplr_detail(handle, m, n, tile->rank, (int)tile->bits_l,
                                           (int)tile->bits_r, tile->group, tile->scale_l,
                                           tile->scale_r, tensor->panel, data[0], length[0],
                                           data[1], length[1], data[2], length[2], data[3],
                                           length[3], detail, detail_size);
    if (tile->scheme == LRQ_SCHEME_QUANT)
        return lrq_tile_create_quant_detail(handle, m, n, (int)tile->bits, tile->group,
                                            (int)tile->scale_bits, tile->scale, tensor->panel,
                                            data[0], length[0], data[1], length[1], data[2],
                                            length[2], detail, detail_size);
    if (tile->c_scale != 0.0f)
        return lrq_tile_create_signcut_c16_detail(handle, m, n, tile->width, tensor->panel,
                                                  tile->c_scale, data[0], length[0], data[1],
                                                  length[1], data[2], length[2], detail,
                                                  detail_size);
    return lrq_tile_create_signcut_detail(handle, m, n, tile->width, tensor->panel, data[0],
                                          length[0], data[1], length[1], data[2], length[2],
                                          detail, detail_size);
}

/* A signcut or lplr tile, decoded by the core in binary32: straight into a
 * float32 chunk, or through a row of scratch widened into a float64 one. */
static int place_factored(lrq_file *file, uint64_t index, const chunk_view *v,
                          const lrq_tile_info *tile, const lrq_tensor_info *tensor, int dtype,
                          uint8_t *out, char *detail, size_t detail_size)
{
    lrq_tile *handle = NULL;
    int rc = tile_handle(file, index, tile, tensor, &handle, detail, detail_size);
    if (rc != LRQ_OK)
        return rc;
    const uint64_t m = tile->shape[0], n = tile->shape[1], ld = v->stride[0];
    const uint64_t corner = tile->origin[0] * ld + tile->origin[1];
    if (dtype == LRQ_DTYPE_FLOAT32) {
        rc = lrq_tile_decode(handle, (float *)(void *)out + corner, ld);
    } else {
        float *values = malloc((size_t)(m * n) * sizeof *values);
        rc = values == NULL ? LRQ_ERR_MEMORY : lrq_tile_decode(handle, values, n);
        for (uint64_t i = 0; rc == LRQ_OK && i < m; i++)
            for (uint64_t j = 0; j < n; j++)
                put_value(out, corner + i * ld + j, dtype, values[i * n + j]);
        free(values);
    }
    lrq_tile_free(handle);
    if (rc != LRQ_OK)
        return lrq_h5_fail(detail, detail_size, rc, "decoding tile #%llu: %s", (unsigned long long)index,
                    lrq_error_name(rc));
    return LRQ_OK;
}

static int check_tensor(lrq_file *file, const lrq_h5_chunk *chunk, const chunk_view *v,
                        lrq_tensor_info *tensor, char *detail, size_t detail_size)
{
    lrq_file_info info;
    lrq_file_get_info(file, &info);
    if (info.tensor_count != 1)
        return lrq_h5_fail(detail, detail_size, LRQ_ERR_FORMAT,
                    "the chunk holds %llu tensors; an lrq chunk holds exactly one",
                    (unsigned long long)info.tensor_count);
    lrq_file_tensor(file, 0, tensor);
    if (tensor->dtype != chunk->dtype)
        return lrq_h5_fail(detail, detail_size, LRQ_ERR_FORMAT,
                    "the chunk's tensor is %s; the dataset is %s", lrq_dtype_name(tensor->dtype),
                    lrq_dtype_name(chunk->dtype));
    int fits = tensor->ndim == v->ndim;
    for (unsigned i = 0; fits && i < v->ndim; i++)
        fits = tensor->shape[i] <= v->dims[i];
    if (!fits) {
        char shape[96] = "", dims[96] = "";
        for (unsigned i = 0; i < tensor->ndim && strlen(shape) < 80; i++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%llu", i ? "x" : "",
                     (unsigned long long)tensor->shape[i]);
        for (unsigned i = 0; i < v->ndim && strlen(dims) < 80; i++)
            snprintf(dims + strlen(dims), sizeof dims - strlen(dims), "%s%llu", i ? "x" : "",
                     (unsigned long long)v->dims[i]);
        return lrq_h5_fail(detail, detail_size, LRQ_ERR_FORMAT,
                    "the chunk's tensor has shape %s, which does not fit the chunk %s", shape, dims);
    }
    return LRQ_OK;
}

int lrq_h5_chunk_decode(const lrq_h5_chunk *chunk, const void *stream, size_t length,
                        void *(*allocate)(size_t bytes, void *context),
                        void (*release)(void *memory, void *context), void *context,
                        void **out, char *detail, size_t detail_size)
{
    if (detail != NULL && detail_size > 0)
        detail[0] = '\0';
    lrq_file *file = NULL;
    int rc = lrq_file_open_buffer(stream, length, LRQ_FILE_VERIFY_CONTENT, &file, detail, detail_size);
    if (rc != LRQ_OK)
        return rc;
    const chunk_view v = view_of(chunk);
    lrq_tensor_info tensor;
    rc = check_tensor(file, chunk, &v, &tensor, detail, detail_size);
    uint8_t *values = NULL;
    if (rc == LRQ_OK) {
        values = allocate((size_t)chunk->bytes, context);
        if (values == NULL)
            rc = lrq_h5_fail(detail, detail_size, LRQ_ERR_MEMORY, "no memory for a chunk of %llu bytes",
                      (unsigned long long)chunk->bytes);
    }
    for (uint64_t t = 0; rc == LRQ_OK && t < tensor.tile_count; t++) {
        lrq_tile_info tile;
        lrq_file_tile(file, 0, t, &tile);
        if (tile.scheme == LRQ_SCHEME_DENSE) {
            const void *data;
            uint64_t len;
            rc = lrq_file_section(file, 0, t, 0, &data, &len, detail, detail_size);
            if (rc == LRQ_OK)
                place_dense(&v, &tile, data, chunk->dtype, values);
        } else {
            rc = place_factored(file, t, &v, &tile, &tensor, chunk->dtype, values, detail,
                                detail_size);
        }
    }
    lrq_file_free(file);
    if (rc != LRQ_OK) {
        if (values != NULL)
            release(values, context);
        return rc;
    }
    *out = values;
    return LRQ_OK;
}
