/* SPDX-License-Identifier: MIT */
/*
 * The filter's encoder: one chunk -> one `.lrq` stream, for the schemes
 * with a C encoder (signcut and dense), byte for byte what
 * lrq.dumps(lrq.encode(chunk, scheme, <target>, seed=..., name="chunk"))
 * writes (spec/hdf5-filter.md [H5-8]).  So every decision below follows
 * lrq's Python encoder (codec/lrq/encoder.py) step by step: the budget of
 * a bits= target less the header's bound, the power-of-two normalisation
 * of the chunk, the signcut cut count and its stopping rules, the fold of
 * the normalisation into the stored weights, dense storage chosen by error
 * or size; and the container is laid out as lrq.format.serialize lays it
 * out (msgpack in its shortest forms, floats as binary32, spec §6.6).
 *
 * Where the Python encoder takes a path that needs more than this (a
 * weight below float32's normal range after the fold, decoded values near
 * the float32 limit, a chunk side above 4096 that it would tile) the
 * filter refuses the chunk instead of writing other bytes.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "lrq.h"

#define PREAMBLE_SIZE 64u
#define SMALL_ALIGNMENT 64u
#define PAGE_ALIGNMENT 4096u
#define PAGE_ALIGNED_FROM (UINT64_C(1) << 20)
#define DEFAULT_PANEL 4096u
#define MAX_PARAM ((UINT64_C(1) << 31) - 1)
#define DEFAULT_BITS 4.0
/* lrq.encode's signcut steps: 4 cuts, then 4 times more per call up to
 * 64 * 64 (codec/lrq/encoder.py SIGNCUT_STEP); they matter only to the
 * stopping rule deep into the cuts. */
#define STEP_FIRST 4u
#define STEP_MAX 4096u

static double word_float(unsigned word)
{
    const uint32_t bits = word;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* ------------------------------------------------------------ the chunk */

/* The chunk's matrix view [H5-3]: leading dimensions of extent 1 dropped
 * while more than two remain. */
static unsigned matrix_view(const lrq_h5_chunk *chunk, uint64_t *dims)
{
    unsigned lead = 0;
    while (chunk->ndim - lead > 2 && chunk->dims[lead] == 1)
        lead++;
    for (unsigned i = lead; i < chunk->ndim; i++)
        dims[i - lead] = chunk->dims[i];
    return chunk->ndim - lead;
}

static const char *storage_name(unsigned code)
{
    switch (code) {
    case LRQ_DTYPE_FLOAT64: return "float64";
    case LRQ_DTYPE_FLOAT32: return "float32";
    case LRQ_DTYPE_FLOAT16: return "float16";
    case LRQ_DTYPE_BFLOAT16: return "bfloat16";
    default: return NULL;
    }
}

/* ------------------------------------------------------------ msgpack */

/* A msgpack writer in the shortest forms (spec §6.6); with p NULL it only
 * counts. */
typedef struct {
    uint8_t *p;
    size_t n;
} packer;

static void put(packer *k, const void *bytes, size_t n)
{
    if (k->p != NULL)
        memcpy(k->p + k->n, bytes, n);
    k->n += n;
}

static void put_byte(packer *k, unsigned b)
{
    const uint8_t v = (uint8_t)b;
    put(k, &v, 1);
}

static void put_be(packer *k, uint64_t v, unsigned size)
{
    for (unsigned i = size; i-- > 0;)
        put_byte(k, (unsigned)(v >> (8 * i)) & 0xFFu);
}

static void pack_uint(packer *k, uint64_t v)
{
    if (v < 128)
        put_byte(k, (unsigned)v);
    else if (v <= 0xFF)
        put_byte(k, 0xCC), put_be(k, v, 1);
    else if (v <= 0xFFFF)
        put_byte(k, 0xCD), put_be(k, v, 2);
    else if (v <= 0xFFFFFFFFu)
        put_byte(k, 0xCE), put_be(k, v, 4);
    else
        put_byte(k, 0xCF), put_be(k, v, 8);
}

static void pack_str(packer *k, const char *s)
{
    const size_t n = strlen(s);
    if (n < 32)
        put_byte(k, 0xA0 | (unsigned)n);
    else
        put_byte(k, 0xD9), put_be(k, n, 1); /* names here are short */
    put(k, s, n);
}

static void pack_array(packer *k, unsigned n)
{
    if (n < 16)
        put_byte(k, 0x90 | n);
    else
        put_byte(k, 0xDC), put_be(k, n, 2);
}

static void pack_map(packer *k, unsigned n)
{
    put_byte(k, 0x80 | n); /* every map here has fewer than 16 entries */
}

static void pack_f32(packer *k, double value)
{
    const float f = (float)value;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    put_byte(k, 0xCA);
    put_be(k, bits, 4);
}

/* ------------------------------------------------------------ the header */

typedef struct {
    const char *kind;
    uint64_t offset, length;
    uint32_t crc;
} section_entry;

/* What lrq.format.header_object writes for one tensor of one tile. */
typedef struct {
    unsigned ndim;
    uint64_t shape[8];
    const char *dtype;
    const char *scheme;          /* the tile's */
    uint64_t width;              /* signcut */
    int has_c_scale;
    double c_scale;
    const char *storage;         /* dense */
    unsigned nsections;
    section_entry sections[3];
    double rel_error;
    const char *request_scheme;  /* the "encoder" map [TEN-8] */
    uint64_t seed;
    const char *target;
    double value;
} stream_header;

static void pack_header(packer *k, const stream_header *h)
{
    pack_map(k, 1);
    pack_str(k, "tensors");
    pack_array(k, 1);
    pack_map(k, 8);
    pack_str(k, "name");
    pack_str(k, LRQ_H5_CHUNK_NAME);
    pack_str(k, "shape");
    pack_array(k, h->ndim);
    for (unsigned i = 0; i < h->ndim; i++)
        pack_uint(k, h->shape[i]);
    pack_str(k, "dtype");
    pack_str(k, h->dtype);
    pack_str(k, "tile_shape");
    pack_array(k, h->ndim);
    for (unsigned i = 0; i < h->ndim; i++)
        pack_uint(k, h->shape[i]);
    pack_str(k, "panel");
    pack_uint(k, DEFAULT_PANEL);
    pack_str(k, "tiles");
    pack_array(k, 1);
    const int signcut = strcmp(h->scheme, "signcut") == 0;
    pack_map(k, signcut ? 3u + (h->has_c_scale ? 1u : 0u) : 3u);
    pack_str(k, "scheme");
    pack_str(k, h->scheme);
    if (signcut) {
        pack_str(k, "width");
        pack_uint(k, h->width);
        if (h->has_c_scale) {
            pack_str(k, "c_scale");
            pack_f32(k, h->c_scale);
        }
    } else {
        pack_str(k, "storage");
        pack_str(k, h->storage);
    }
    pack_str(k, "sections");
    pack_array(k, h->nsections);
    for (unsigned i = 0; i < h->nsections; i++) {
        pack_array(k, 4);
        pack_str(k, h->sections[i].kind);
        pack_uint(k, h->sections[i].offset);
        pack_uint(k, h->sections[i].length);
        pack_uint(k, h->sections[i].crc);
    }
    pack_str(k, "rel_error");
    pack_f32(k, h->rel_error);
    pack_str(k, "encoder");
    pack_map(k, 4);
    pack_str(k, "scheme");
    pack_str(k, h->request_scheme);
    pack_str(k, "seed");
    pack_uint(k, h->seed);
    pack_str(k, "target");
    pack_str(k, h->target);
    pack_str(k, "value");
    pack_f32(k, h->value);
}

static uint64_t align_up(uint64_t offset, uint64_t alignment)
{
    return (offset + alignment - 1) / alignment * alignment;
}

static uint64_t section_alignment(uint64_t length)
{
    return length >= PAGE_ALIGNED_FROM ? PAGE_ALIGNMENT : SMALL_ALIGNMENT;
}

/* Bytes a tile may add to a file: its sections and their padding. */
static uint64_t tile_cost(const uint64_t *lengths, unsigned count)
{
    uint64_t cost = 0;
    for (unsigned i = 0; i < count; i++)
        cost += lengths[i] + section_alignment(lengths[i]) - 1;
    return cost;
}

/* The stream: preamble, header, sections at their canonical offsets
 * (spec §8.2), laid out as lrq.format.serialize does it. */
static int assemble(stream_header *h, const uint8_t *const data[3], int c16,
                    void *(*allocate)(size_t, void *), void *context, void **out,
                    size_t *out_length, char *detail, size_t detail_size)
{
    uint64_t header_length = 0, end = 0;
    for (unsigned i = 0; i < h->nsections; i++)
        h->sections[i].crc = h->sections[i].length ? lrq_crc32c(0, data[i], h->sections[i].length) : 0;
    for (;;) {
        uint64_t pos = PREAMBLE_SIZE + header_length;
        for (unsigned i = 0; i < h->nsections; i++) {
            pos = align_up(pos, section_alignment(h->sections[i].length));
            h->sections[i].offset = pos;
            pos += h->sections[i].length;
        }
        packer count = {NULL, 0};
        pack_header(&count, h);
        if (count.n == header_length) {
            end = pos;
            break;
        }
        header_length = count.n;
    }
    if (end > SIZE_MAX)
        return lrq_h5_fail(detail, detail_size, LRQ_ERR_MEMORY, "a stream of %llu bytes", (unsigned long long)end);
    uint8_t *file = allocate((size_t)end, context);
    if (file == NULL)
        return lrq_h5_fail(detail, detail_size, LRQ_ERR_MEMORY, "out of memory for a stream of %llu bytes",
                    (unsigned long long)end);
    memset(file, 0, (size_t)end);
    packer header = {file + PREAMBLE_SIZE, 0};
    pack_header(&header, h);
    for (unsigned i = 0; i < h->nsections; i++)
        if (h->sections[i].length)
            memcpy(file + h->sections[i].offset, data[i], h->sections[i].length);
    /* Preamble (spec §3): magic, version, flags, features, lengths, CRC. */
    static const uint8_t magic[8] = {0x89, 'L', 'R', 'Q', '\r', '\n', 0x1A, '\n'};
    memcpy(file, magic, 8);
    const uint64_t fields[] = {1, c16 ? 1 : 0, 0, c16 ? 1 : 0, 0, header_length, end};
    const unsigned sizes[] = {2, 2, 4, 8, 8, 8, 8};
    size_t at = 8;
    for (unsigned i = 0; i < 7; i++)
        for (unsigned b = 0; b < sizes[i]; b++)
            file[at++] = (uint8_t)(fields[i] >> (8 * b));
    const uint32_t crc = lrq_crc32c(lrq_crc32c(0, file, 48), file + PREAMBLE_SIZE, (size_t)header_length);
    for (unsigned b = 0; b < 4; b++)
        file[48 + b] = (uint8_t)(crc >> (8 * b));
    *out = file;
    *out_length = (size_t)end;
    return LRQ_OK;
}

/* preamble + header with every number at the widest a budget allows
 * (codec/lrq/encoder.py _header_bound). */
static uint64_t header_bound(const stream_header *base, int signcut, int c16, uint64_t budget)
{
    stream_header h = *base;
    const uint64_t limit = 8 * budget < MAX_PARAM ? 8 * budget : MAX_PARAM;
    h.rel_error = 1.0;
    if (signcut) {
        h.scheme = "signcut";
        h.width = limit;
        h.has_c_scale = c16;
        h.c_scale = 1.0;
        h.nsections = 3;
    } else {
        h.scheme = "dense";
        h.storage = "bfloat16";
        h.nsections = 1;
    }
    for (unsigned i = 0; i < h.nsections; i++) {
        h.sections[i].kind = signcut ? "tt" : "values";
        h.sections[i].offset = budget;
        h.sections[i].length = budget;
        h.sections[i].crc = 0xFFFFFFFFu;
    }
    packer count = {NULL, 0};
    pack_header(&count, &h);
    return PREAMBLE_SIZE + count.n;
}

/* ------------------------------------------------------------ values */

static double load_value(const uint8_t *values, uint64_t i, int dtype)
{
    if (dtype == LRQ_DTYPE_FLOAT32) {
        float f;
        memcpy(&f, values + 4 * i, 4);
        return f;
    }
    double d;
    memcpy(&d, values + 8 * i, 8);
    return d;
}

/* ||a x 2^-exponent||_F as codec/lrq/encoder.py _norm takes it: in float64,
 * rows in blocks of 2^20 // cols, the scaling first. */
static double scaled_norm(const double *a, uint64_t rows, uint64_t cols, int exponent)
{
    uint64_t step = (UINT64_C(1) << 20) / cols;
    if (step < 1)
        step = 1;
    double total = 0;
    for (uint64_t r = 0; r < rows; r += step) {
        const uint64_t last = r + step < rows ? r + step : rows;
        double block = 0;
        for (uint64_t i = r * cols; i < last * cols; i++) {
            const double v = ldexp(a[i], -exponent);
            block += v * v;
        }
        total += block;
    }
    return sqrt(total);
}

static uint16_t half_bits(double x)
{
    const uint16_t sign = signbit(x) ? 0x8000u : 0;
    const double a = fabs(x);
    if (a < ldexp(1.0, -14)) /* subnormal steps of 2^-24; 1024 steps is the smallest normal */
        return sign | (uint16_t)nearbyint(ldexp(a, 24));
    int e;
    frexp(a, &e); /* a in [2^(e-1), 2^e) */
    double q = nearbyint(ldexp(a, 11 - e)); /* in [1024, 2048] */
    int exponent = e - 1;
    if (q >= 2048)
        q = 1024, exponent++;
    if (exponent > 15)
        return sign | 0x7C00u;
    return sign | (uint16_t)(((unsigned)(exponent + 15) << 10) | ((unsigned)q - 1024));
}

static double half_value(uint16_t h)
{
    const int exponent = (h >> 10) & 0x1F;
    if (exponent == 31)
        return (h & 0x8000) ? -INFINITY : INFINITY;
    const double magnitude = exponent == 0 ? ldexp((double)(h & 0x3FF), -24)
                                           : ldexp((double)((h & 0x3FF) | 0x400), exponent - 25);
    return (h & 0x8000) ? -magnitude : magnitude;
}

/* ------------------------------------------------------------ schemes */

typedef struct {
    const lrq_h5_chunk *chunk;
    const lrq_h5_request *request;
    unsigned ndim;
    uint64_t shape[8], count, rows, cols;
    const double *raw;  /* the chunk in float64 */
    int exponent;       /* the normalisation: largest |value| x 2^-exponent in [0.5, 1) */
    double norm;        /* ||raw x 2^-exponent||_F */
    int has_budget;
    int64_t allowance;  /* bytes the tile may take (bits and default targets) */
    uint64_t budget;
    double value;       /* the target's value as the encoder map records it */
    const char *target;
    char *detail;
    size_t detail_size;
} job;

static uint64_t interleaved_bytes(uint64_t rows, uint64_t k)
{
    return rows * ((k + 15) / 16 * 16) / 8;
}

static uint64_t signcut_cost(const job *j, uint64_t w, int c16)
{
    const uint64_t lengths[3] = {(c16 ? 2u : 4u) * w, interleaved_bytes(w, j->cols),
                                 interleaved_bytes(j->rows, w)};
    return tile_cost(lengths, 3);
}

static int encode_signcut(job *j, stream_header *h, uint8_t *data[3], int *c16_out)
{
    const uint64_t m = j->rows, n = j->cols;
    const int c16 = j->request->option == 1;
    const uint64_t c_bits = c16 ? 16 : 32;
    uint64_t dense_width = (32 * m * n) / (m + n + c_bits);
    if (dense_width < 1)
        dense_width = 1;
    uint64_t width;
    double goal = 0;
    int has_goal = 0;
    if (j->request->target == LRQ_H5_TARGET_WIDTH) {
        const uint64_t most = m * n < MAX_PARAM ? m * n : MAX_PARAM;
        width = j->request->value < most ? j->request->value : most;
    } else if (j->request->target == LRQ_H5_TARGET_REL_ERROR) {
        width = dense_width, goal = j->value, has_goal = 1;
    } else {
        /* The largest width whose tile fits the allowance (binary search,
         * as _largest_fitting). */
        uint64_t lo = 1, hi = dense_width;
        if ((int64_t)signcut_cost(j, lo, c16) > j->allowance) {
            if (j->request->target == LRQ_H5_TARGET_BITS)
                return lrq_h5_fail(j->detail, j->detail_size, LRQ_ERR_ARGUMENT,
                            "no signcut encoding of a %llux%llu chunk fits %g bits/entry",
                            (unsigned long long)m, (unsigned long long)n, j->value);
            width = 1;
        } else {
            while (lo < hi) {
                const uint64_t mid = (lo + hi + 1) / 2;
                if ((int64_t)signcut_cost(j, mid, c16) <= j->allowance)
                    lo = mid;
                else
                    hi = mid - 1;
            }
            width = lo;
        }
    }
    float *a32 = malloc((size_t)(m * n) * sizeof *a32);
    if (a32 == NULL)
        return lrq_h5_fail(j->detail, j->detail_size, LRQ_ERR_MEMORY, "out of memory for the chunk");
    for (uint64_t i = 0; i < m * n; i++)
        a32[i] = j->chunk->dtype == LRQ_DTYPE_FLOAT32 ? ldexpf((float)j->raw[i], -j->exponent)
                                                      : (float)ldexp(j->raw[i], -j->exponent);
    lrq_signcut_encoder *enc = NULL;
    int rc = lrq_signcut_encoder_create(a32, m, n, n, j->request->seed, 1, &enc);
    free(a32);
    if (rc == LRQ_OK && c16)
        rc = lrq_signcut_encoder_set_c_storage(enc, LRQ_SIGNCUT_C_FLOAT16);
    if (rc != LRQ_OK) {
        lrq_signcut_encoder_free(enc);
        return lrq_h5_fail(j->detail, j->detail_size, rc, "the signcut encoder could not start (%s)",
                    lrq_error_name(rc));
    }
    const double input_norm = lrq_signcut_encoder_input_norm(enc);
    double c_goal = 0;
    if (has_goal && input_norm > 0) {
        c_goal = goal * j->norm / input_norm;
        if (c_goal > 1.0)
            c_goal = 1.0;
    }
    uint64_t step = STEP_FIRST;
    double exact_before = -1;
    while (lrq_signcut_encoder_width(enc) < width && !lrq_signcut_encoder_finished(enc)) {
        const uint64_t now = lrq_signcut_encoder_width(enc);
        rc = lrq_signcut_encoder_run(enc, step < width - now ? step : width - now, c_goal);
        if (rc != LRQ_OK) {
            lrq_signcut_encoder_free(enc);
            return lrq_h5_fail(j->detail, j->detail_size, rc,
                        rc == LRQ_ERR_ARGUMENT ? "signcut cannot encode this chunk: a cut weight is not "
                                                 "a finite float32"
                                               : "the signcut encoder failed (%s)",
                        lrq_error_name(rc));
        }
        step = 4 * step < STEP_MAX ? 4 * step : STEP_MAX;
        if (!has_goal && lrq_signcut_encoder_width(enc) >= m + n) {
            /* Deep into the cuts: stop once a step no longer lowers the
             * remainder (float32 has nothing finer to give). */
            double exact;
            lrq_signcut_encoder_remainder_norm(enc, 1, &exact);
            if (exact_before >= 0 && exact >= exact_before)
                break;
            exact_before = exact;
        }
    }
    double error;
    lrq_signcut_encoder_remainder_norm(enc, 1, &error);
    if (has_goal && error > goal * j->norm) {
        lrq_signcut_encoder_free(enc);
        return lrq_h5_fail(j->detail, j->detail_size, LRQ_ERR_ARGUMENT,
                    "signcut reaches no relative error of %g within %llu cuts on this chunk", goal,
                    (unsigned long long)width);
    }
    const uint64_t w = lrq_signcut_encoder_width(enc);
    uint64_t lengths[3] = {(c16 ? 2u : 4u) * w, 0, 0};
    lrq_layout_size(w, n, 1, DEFAULT_PANEL, &lengths[1]);
    lrq_layout_size(m, w, 1, DEFAULT_PANEL, &lengths[2]);
    for (unsigned i = 0; i < 3; i++) {
        data[i] = malloc(lengths[i] ? (size_t)lengths[i] : 1);
        if (data[i] == NULL) {
            lrq_signcut_encoder_free(enc);
            return lrq_h5_fail(j->detail, j->detail_size, LRQ_ERR_MEMORY, "out of memory for the sections");
        }
    }
    rc = lrq_signcut_encoder_write(enc, DEFAULT_PANEL, data[0], (size_t)lengths[0], data[1],
                                   (size_t)lengths[1], data[2], (size_t)lengths[2]);
    const double c_scale = lrq_signcut_encoder_c_scale(enc);
    lrq_signcut_encoder_free(enc);
    if (rc != LRQ_OK)
        return lrq_h5_fail(j->detail, j->detail_size, rc, "writing the signcut sections failed (%s)",
                    lrq_error_name(rc));
    h->has_c_scale = c16 && w > 0 && c_scale > 0;
    h->c_scale = c_scale;
    /* Fold the normalisation 2^exponent into the stored weights. */
    if (j->exponent != 0 && w > 0) {
        if (h->has_c_scale) {
            const double scale = ldexp(c_scale, j->exponent);
            if (!(scale >= ldexp(1.0, -125) && scale <= ldexp(1.0, 112)))
                return lrq_h5_fail(j->detail, j->detail_size, LRQ_ERR_ARGUMENT,
                            "scheme 'signcut' cannot store this chunk at its magnitude: its float16 "
                            "weights' scale leaves [2^-125, 2^112]; use c storage float32");
            h->c_scale = scale;
        } else {
            double sum = 0;
            for (uint64_t k = 0; k < w; k++) {
                float c;
                memcpy(&c, data[0] + 4 * k, 4);
                const double want = ldexp((double)c, j->exponent);
                const float stored = (float)want;
                if (!isfinite(stored) || (double)stored != want)
                    return lrq_h5_fail(j->detail, j->detail_size, LRQ_ERR_ARGUMENT,
                                "scheme 'signcut' cannot store this chunk at its magnitude in C: a "
                                "weight %s float32's normal range; multiply the data by a power of two",
                                isfinite(stored) ? "falls below" : "overflows");
                sum += fabs(want);
                memcpy(data[0] + 4 * k, &stored, 4);
            }
            if (sum > FLT_MAX / 2)
                return lrq_h5_fail(j->detail, j->detail_size, LRQ_ERR_ARGUMENT,
                            "scheme 'signcut' cannot store this chunk in C: its decoded values may "
                            "approach the float32 limit; multiply the data by a power of two");
        }
    }
    h->scheme = "signcut";
    h->width = w;
    h->nsections = 3;
    static const char *const kinds[3] = {"c", "tt", "s"};
    for (unsigned i = 0; i < 3; i++)
        h->sections[i].kind = kinds[i], h->sections[i].length = lengths[i];
    h->rel_error = j->norm > 0 ? error / j->norm : 0.0;
    *c16_out = h->has_c_scale;
    return LRQ_OK;
}

static const double unit_roundoff[5] = {0, 0.0, 0x1p-24, 0x1p-11, 0x1p-8}; /* by storage code */

static int encode_dense(job *j, stream_header *h, uint8_t *data[3])
{
    unsigned choices[4], count = 0;
    const unsigned given = j->request->option;
    if (given != 0)
        choices[count++] = given;
    else if (j->request->target == LRQ_H5_TARGET_DEFAULT)
        choices[count++] = (unsigned)j->chunk->dtype;
    else {
        choices[0] = LRQ_DTYPE_FLOAT16, choices[1] = LRQ_DTYPE_BFLOAT16;
        choices[2] = LRQ_DTYPE_FLOAT32, choices[3] = LRQ_DTYPE_FLOAT64;
        count = 4;
    }
    double *diff = malloc((size_t)j->count * sizeof *diff);
    if (diff == NULL)
        return lrq_h5_fail(j->detail, j->detail_size, LRQ_ERR_MEMORY, "out of memory for the chunk");
    unsigned best = 0, lost = 0;
    double best_error = 0;
    uint64_t best_cost = 0;
    for (unsigned c = 0; c < count; c++) {
        const unsigned storage = choices[c];
        const uint64_t size = lrq_dtype_size((int)storage);
        const uint64_t length = j->count * size;
        const uint64_t cost = tile_cost(&length, 1);
        if (j->request->target == LRQ_H5_TARGET_BITS && (int64_t)cost > j->allowance)
            continue;
        uint8_t *bytes = malloc(length ? (size_t)length : 1);
        if (bytes == NULL) {
            free(diff);
            return lrq_h5_fail(j->detail, j->detail_size, LRQ_ERR_MEMORY, "out of memory for the values");
        }
        int finite = 1;
        for (uint64_t i = 0; i < j->count && finite; i++) {
            const double x = j->raw[i];
            double decoded;
            if (storage == LRQ_DTYPE_FLOAT64) {
                memcpy(bytes + 8 * i, &x, 8);
                decoded = x;
            } else if (storage == LRQ_DTYPE_FLOAT32) {
                const float f = (float)x;
                memcpy(bytes + 4 * i, &f, 4);
                decoded = f;
            } else if (storage == LRQ_DTYPE_FLOAT16) {
                const uint16_t b = half_bits(x);
                bytes[2 * i] = (uint8_t)b, bytes[2 * i + 1] = (uint8_t)(b >> 8);
                decoded = half_value(b);
            } else { /* bfloat16: through float32, rounded to nearest even */
                const float f = (float)x;
                uint32_t bits32;
                memcpy(&bits32, &f, 4);
                const uint16_t b = (uint16_t)(((uint64_t)bits32 + 0x7FFF + ((bits32 >> 16) & 1)) >> 16);
                bytes[2 * i] = (uint8_t)b, bytes[2 * i + 1] = (uint8_t)(b >> 8);
                const uint32_t wide = (uint32_t)b << 16;
                float back;
                memcpy(&back, &wide, 4);
                decoded = back;
            }
            finite = isfinite(decoded);
            diff[i] = x - decoded;
        }
        if (!finite) {
            free(bytes);
            if (given != 0) {
                free(diff);
                return lrq_h5_fail(j->detail, j->detail_size, LRQ_ERR_ARGUMENT,
                            "values do not fit in %s (they would become infinite); choose a wider "
                            "storage", storage_name(storage));
            }
            continue;
        }
        const double error = scaled_norm(diff, j->rows, j->cols, j->exponent);
        if (error > 1.01 * unit_roundoff[storage] * j->norm) {
            lost |= 1u << storage;
            free(bytes);
            continue;
        }
        int better;
        if (j->request->target == LRQ_H5_TARGET_REL_ERROR) {
            better = !(error > j->value * j->norm) &&
                     (best == 0 || cost < best_cost || (cost == best_cost && error < best_error));
        } else {
            better = best == 0 || error < best_error || (error == best_error && cost < best_cost);
        }
        if (better) {
            free(data[0]);
            data[0] = bytes;
            best = storage, best_error = error, best_cost = cost;
        } else {
            free(bytes);
        }
    }
    free(diff);
    if (best == 0)
        return lrq_h5_fail(j->detail, j->detail_size, LRQ_ERR_ARGUMENT,
                    lost ? "scheme 'dense' cannot store this chunk at its magnitude: its values are "
                           "too small for the storage types that fit"
                         : "no dense storage of this chunk meets the target");
    h->scheme = "dense";
    h->storage = storage_name(best);
    h->nsections = 1;
    h->sections[0].kind = "values";
    h->sections[0].length = j->count * lrq_dtype_size((int)best);
    h->rel_error = j->norm > 0 ? best_error / j->norm : 0.0;
    return LRQ_OK;
}

/* ------------------------------------------------------------ the chunk */

static const char *target_name(unsigned target)
{
    switch (target) {
    case LRQ_H5_TARGET_BITS: return "bits";
    case LRQ_H5_TARGET_WIDTH: return "width";
    case LRQ_H5_TARGET_REL_ERROR: return "rel_error";
    default: return "default";
    }
}

static uint64_t smallest_cost(const job *j, int signcut)
{
    if (signcut)
        return signcut_cost(j, 1, j->request->option == 1);
    const uint64_t length = j->count * lrq_dtype_size(j->request->option ? (int)j->request->option
                                                                           : LRQ_DTYPE_FLOAT16);
    return tile_cost(&length, 1);
}

/* The job and header of a chunk before its values are seen: its shape,
 * the encoder map, and for bits and default targets the plan of lrq.encode
 * for one tile, the budget less the header's bound as the tile's
 * allowance.  Fails when a bits= budget cannot be met by any encoding. */
static int plan(job *j, stream_header *h, const lrq_h5_chunk *chunk, const lrq_h5_request *request,
                char *detail, size_t detail_size)
{
    memset(j, 0, sizeof *j);
    j->chunk = chunk, j->request = request, j->detail = detail, j->detail_size = detail_size;
    j->ndim = matrix_view(chunk, j->shape);
    j->count = 1;
    for (unsigned i = 0; i < j->ndim; i++)
        j->count *= j->shape[i];
    /* _norm's blocks: a matrix by rows, anything else as one row. */
    j->rows = j->ndim == 2 ? j->shape[0] : 1;
    j->cols = j->ndim == 2 ? j->shape[1] : j->count;
    const int signcut = request->scheme == LRQ_H5_SCHEME_SIGNCUT;
    j->target = target_name(request->target);
    j->value = request->target == LRQ_H5_TARGET_DEFAULT ? DEFAULT_BITS
               : request->target == LRQ_H5_TARGET_WIDTH ? (double)request->value
                                                        : word_float(request->value);
    memset(h, 0, sizeof *h);
    h->ndim = j->ndim;
    memcpy(h->shape, j->shape, sizeof h->shape);
    h->dtype = chunk->dtype == LRQ_DTYPE_FLOAT32 ? "float32" : "float64";
    h->request_scheme = signcut ? "signcut" : "dense";
    h->seed = request->seed;
    h->target = j->target;
    h->value = j->value;
    if (request->target == LRQ_H5_TARGET_BITS || request->target == LRQ_H5_TARGET_DEFAULT) {
        j->budget = (uint64_t)floor(j->value * (double)j->count / 8);
        const uint64_t overhead = header_bound(h, signcut, request->option == 1, j->budget);
        const int64_t spare = (int64_t)j->budget - (int64_t)overhead - (int64_t)smallest_cost(j, signcut);
        if (spare < 0 && request->target == LRQ_H5_TARGET_BITS)
            return lrq_h5_fail(detail, detail_size, LRQ_ERR_ARGUMENT,
                        "a chunk of %llu entries cannot be stored in %g bits/entry with scheme %s: "
                        "its header and smallest encoding alone take more than %llu bytes",
                        (unsigned long long)j->count, j->value, h->request_scheme,
                        (unsigned long long)j->budget);
        j->allowance = spare < 0 ? -1 : (int64_t)j->budget - (int64_t)overhead;
    }
    return LRQ_OK;
}

int lrq_h5_request_check(const unsigned words[LRQ_H5_REQUEST_MAX_WORDS], const lrq_h5_chunk *chunk,
                         lrq_h5_request *request, char *detail, size_t detail_size)
{
    memset(request, 0, sizeof *request);
    request->scheme = words[0];
    request->target = words[1];
    request->value = words[2];
    request->seed = (uint64_t)words[3] | (uint64_t)words[4] << 32;
    request->option = words[5];
    if (request->scheme == LRQ_H5_SCHEME_AUTO || request->scheme == LRQ_H5_SCHEME_LPLR)
        return lrq_h5_fail(detail, detail_size, LRQ_ERR_ARGUMENT,
                    "scheme %s has no C encoder, so the filter cannot write it; use scheme signcut "
                    "or dense, or write the dataset with lrq.hdf5.write (Python)",
                    request->scheme == LRQ_H5_SCHEME_AUTO ? "auto" : "lplr");
    if (request->scheme != LRQ_H5_SCHEME_SIGNCUT && request->scheme != LRQ_H5_SCHEME_DENSE)
        return lrq_h5_fail(detail, detail_size, LRQ_ERR_ARGUMENT,
                    "scheme code %u is none of 1 (signcut) and 3 (dense)", request->scheme);
    const double value = word_float(request->value);
    switch (request->target) {
    case LRQ_H5_TARGET_DEFAULT:
        if (request->value != 0)
            return lrq_h5_fail(detail, detail_size, LRQ_ERR_ARGUMENT,
                        "target 0 (default) takes value word 0, not %u", request->value);
        break;
    case LRQ_H5_TARGET_BITS:
        if (!(value > 0 && value <= 1024))
            return lrq_h5_fail(detail, detail_size, LRQ_ERR_ARGUMENT,
                        "bits must be in (0, 1024], not %g (word %u)", value, request->value);
        break;
    case LRQ_H5_TARGET_WIDTH:
        if (request->scheme != LRQ_H5_SCHEME_SIGNCUT)
            return lrq_h5_fail(detail, detail_size, LRQ_ERR_ARGUMENT, "target width applies to scheme signcut only");
        if (request->value < 1 || request->value > MAX_PARAM)
            return lrq_h5_fail(detail, detail_size, LRQ_ERR_ARGUMENT,
                        "width must be in [1, 2^31-1], not %u", request->value);
        break;
    case LRQ_H5_TARGET_REL_ERROR:
        if (!(value > 0 && value < 1))
            return lrq_h5_fail(detail, detail_size, LRQ_ERR_ARGUMENT,
                        "rel_error must be in (0, 1), not %g (word %u)", value, request->value);
        break;
    default:
        return lrq_h5_fail(detail, detail_size, LRQ_ERR_ARGUMENT,
                    "target code %u is none of 0 (default), 1 (bits), 2 (width), 3 (rel_error)",
                    request->target);
    }
    if (request->seed >> 63)
        return lrq_h5_fail(detail, detail_size, LRQ_ERR_ARGUMENT, "the seed must be below 2^63");
    if (request->scheme == LRQ_H5_SCHEME_SIGNCUT && request->option > 1)
        return lrq_h5_fail(detail, detail_size, LRQ_ERR_ARGUMENT,
                    "signcut option %u is neither 0 (c as float32) nor 1 (c as float16)", request->option);
    if (request->scheme == LRQ_H5_SCHEME_DENSE && request->option != 0 &&
        storage_name(request->option) == NULL)
        return lrq_h5_fail(detail, detail_size, LRQ_ERR_ARGUMENT,
                    "dense option %u is neither 0 (storage searched) nor a float storage code 1-4",
                    request->option);
    uint64_t dims[LRQ_H5S_MAX_RANK];
    const unsigned ndim = matrix_view(chunk, dims);
    if (request->scheme == LRQ_H5_SCHEME_SIGNCUT && ndim != 2)
        return lrq_h5_fail(detail, detail_size, LRQ_ERR_ARGUMENT,
                    "scheme signcut encodes matrices; this chunk's matrix view has %u dimensions "
                    "(use chunks (..., 1, r, c) or scheme dense)", ndim);
    if (ndim > 8)
        return lrq_h5_fail(detail, detail_size, LRQ_ERR_ARGUMENT,
                    "a chunk of %u dimensions (after leading 1s) is more than a tensor holds (8)", ndim);
    if (ndim == 2 && (dims[0] > LRQ_H5_ENCODE_MAX_SIDE || dims[1] > LRQ_H5_ENCODE_MAX_SIDE))
        return lrq_h5_fail(detail, detail_size, LRQ_ERR_ARGUMENT,
                    "chunk matrix %llux%llu: the filter encodes chunks of up to %u x %u (lrq.encode "
                    "would tile a larger one)", (unsigned long long)dims[0],
                    (unsigned long long)dims[1], LRQ_H5_ENCODE_MAX_SIDE, LRQ_H5_ENCODE_MAX_SIDE);
    /* A bits= budget that no encoding of the chunk fits fails here, at
     * the dataset's creation, rather than at the first write. */
    job j;
    stream_header h;
    return plan(&j, &h, chunk, request, detail, detail_size);
}

int lrq_h5_chunk_encode(const lrq_h5_chunk *chunk, const lrq_h5_request *request,
                        const void *values, void *(*allocate)(size_t bytes, void *context),
                        void *context, void **out, size_t *out_length, char *detail,
                        size_t detail_size)
{
    job j;
    stream_header h;
    int rc = plan(&j, &h, chunk, request, detail, detail_size);
    if (rc != LRQ_OK)
        return rc;
    const int signcut = request->scheme == LRQ_H5_SCHEME_SIGNCUT;
    double *raw = malloc((size_t)j.count * sizeof *raw);
    if (raw == NULL)
        return lrq_h5_fail(detail, detail_size, LRQ_ERR_MEMORY, "out of memory for the chunk");
    double peak = 0;
    uint64_t bad = 0;
    for (uint64_t i = 0; i < j.count; i++) {
        raw[i] = load_value(values, i, chunk->dtype);
        if (!isfinite(raw[i]))
            bad++;
        else if (fabs(raw[i]) > peak)
            peak = fabs(raw[i]);
    }
    uint8_t *data[3] = {NULL, NULL, NULL};
    if (bad)
        rc = lrq_h5_fail(detail, detail_size, LRQ_ERR_ARGUMENT, "the chunk holds %llu NaN or infinite values",
                  (unsigned long long)bad);
    else if (signcut && peak > FLT_MAX)
        rc = lrq_h5_fail(detail, detail_size, LRQ_ERR_ARGUMENT,
                  "values reach %.3g, beyond the float32 range that scheme 'signcut' stores", peak);
    if (rc != LRQ_OK) {
        free(raw);
        return rc;
    }
    if (peak > 0)
        frexp(peak, &j.exponent);
    j.raw = raw;
    j.norm = scaled_norm(raw, j.rows, j.cols, j.exponent);
    int c16 = 0;
    if (rc == LRQ_OK)
        rc = signcut ? encode_signcut(&j, &h, data, &c16) : encode_dense(&j, &h, data);
    free(raw);
    if (rc == LRQ_OK)
        rc = assemble(&h, (const uint8_t *const *)data, c16, allocate, context, out, out_length,
                      detail, detail_size);
    for (unsigned i = 0; i < 3; i++)
        free(data[i]);
    return rc;
}
