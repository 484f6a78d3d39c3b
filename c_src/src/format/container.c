/* SPDX-License-Identifier: MIT */
/*
 * Parsing and validation of the `.lrq` v1 container (spec/lrq-format.md),
 * over a file the caller holds in memory.
 *
 * The order of the checks is the decoding procedure of spec §15, because the
 * error a damaged file gets must not depend on the decoder: preamble, header
 * checksum, msgpack profile (msgpack_reader.c), header values, placement;
 * then, per section and before first use, checksum and content.  The pure-
 * Python reference parser (codec/lrq/reference/container.py) follows the
 * same order, and the tests hold the two to the same verdict on every file.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lrq.h"
#include "common/internal.h"
#include "format/msgpack_reader.h"

#define PREAMBLE_SIZE 64u
/* Stripes of the locks that make first-use verification happen once. */
#define LOCK_STRIPES 16u
/* Longest piece of a tensor name quoted in a message. */
#define NAME_QUOTE 48
/* printf arguments for "%.*s" quoting at most 32 bytes of a str value. */
#define QUOTE(v) (int)((v).len < 32 ? (v).len : 32), (const char *)(v).str

static const uint8_t magic[8] = {0x89, 'L', 'R', 'Q', 0x0D, 0x0A, 0x1A, 0x0A};

/* Indexed by LRQ_DTYPE_*; entry 0 is no type. */
static const struct {
    const char *name;
    unsigned size;
    int is_float;
} dtypes[] = {
    {NULL, 0, 0},         {"float64", 8, 1}, {"float32", 4, 1}, {"float16", 2, 1},
    {"bfloat16", 2, 1},   {"int64", 8, 0},   {"int32", 4, 0},   {"int16", 2, 0},
    {"int8", 1, 0},       {"uint64", 8, 0},  {"uint32", 4, 0},  {"uint16", 2, 0},
    {"uint8", 1, 0},      {"bool", 1, 0},
};
#define DTYPE_COUNT (sizeof dtypes / sizeof dtypes[0])

/* Indexed by LRQ_SCHEME_*. */
static const char *const scheme_names[] = {NULL, "signcut", "lplr", "dense"};
#define SCHEME_COUNT (sizeof scheme_names / sizeof scheme_names[0])

/* Indexed by LRQ_SECTION_*. */
static const char *const kind_names[] = {NULL,      "values",   "c",       "tt",      "s",
                                         "r_codes", "r_scales", "l_codes", "l_scales"};
#define KIND_COUNT (sizeof kind_names / sizeof kind_names[0])

/* The sections of each scheme, in the order the spec lists them (§10). */
static const struct {
    unsigned count;
    int kind[LRQ_MAX_SECTIONS];
} scheme_sections[] = {
    {0, {0}},
    {3, {LRQ_SECTION_C, LRQ_SECTION_TT, LRQ_SECTION_S}},
    {4, {LRQ_SECTION_R_CODES, LRQ_SECTION_R_SCALES, LRQ_SECTION_L_CODES, LRQ_SECTION_L_SCALES}},
    {1, {LRQ_SECTION_VALUES}},
};

const char *lrq_dtype_name(const int dtype)
{
    return dtype > 0 && (size_t)dtype < DTYPE_COUNT ? dtypes[dtype].name : NULL;
}

unsigned lrq_dtype_size(const int dtype)
{
    return dtype > 0 && (size_t)dtype < DTYPE_COUNT ? dtypes[dtype].size : 0;
}

const char *lrq_scheme_name(const int scheme)
{
    return scheme > 0 && (size_t)scheme < SCHEME_COUNT ? scheme_names[scheme] : NULL;
}

const char *lrq_section_kind_name(const int kind)
{
    return kind > 0 && (size_t)kind < KIND_COUNT ? kind_names[kind] : NULL;
}

/* ------------------------------------------------------------------------ */
/* The handle                                                               */

/* Verification progress of a section.  Read with an acquire load and
 * written with a release store (__atomic builtins: C99 has no atomics), so
 * the fast path of ensure_section() needs no lock; the verification itself
 * runs under a lock, so it happens once however many threads ask. */
enum { SECTION_UNCHECKED = 0, SECTION_CRC_OK = 1, SECTION_CHECKED = 2 };

typedef struct {
    uint64_t offset;
    uint64_t length;
    uint32_t crc;
    int kind;
    int state;
} section_rec;

typedef struct {
    int scheme;
    int storage;
    unsigned bits_l, bits_r;
    uint64_t width; /* signcut w, or lplr r */
    int c16;        /* signcut: c stored as binary16 with "c_scale" */
    float c_scale;
    uint64_t group;
    float scale_l, scale_r;
    uint64_t first_section;
} tile_rec;

typedef struct {
    const uint8_t *name;
    uint32_t name_len;
    unsigned ndim;
    int dtype;
    uint64_t shape[LRQ_MAX_NDIM];
    uint64_t tile_shape[LRQ_MAX_NDIM];
    uint64_t grid[LRQ_MAX_NDIM];
    uint64_t panel;
    uint64_t first_tile;
    uint64_t tile_count;
    int has_rel_error;
    float rel_error;
    const uint8_t *encoder;
    size_t encoder_len;
} tensor_rec;

typedef struct {
    const uint8_t *key, *value;
    uint32_t key_len, value_len;
} meta_rec;

struct lrq_file {
    const uint8_t *data;
    uint64_t size;
    unsigned major, minor;
    uint64_t required, optional;
    uint64_t header_length;

    /* Grown as entries are parsed, so their size follows the header bytes
     * actually read, never a count the header merely declares. */
    tensor_rec *tensors;
    uint64_t n_tensors, cap_tensors;
    tile_rec *tiles;
    uint64_t n_tiles, cap_tiles;
    section_rec *sections;
    uint64_t n_sections, cap_sections;
    uint32_t *by_name; /* tensor indices sorted by name */

    meta_rec meta[LRQ_MP_MAX_MAP];
    unsigned n_meta;

    int locks_ready;
    pthread_mutex_t locks[LOCK_STRIPES];
};

/* Make room for one more element of `elem` bytes: returns the array, moved
 * if it had to grow, or NULL when memory runs out (the old array then stays
 * valid and owned by the caller). */
static void *grow(void *const array, uint64_t *const cap, const uint64_t used, const size_t elem)
{
    uint64_t want, bytes;
    void *p;

    if (used < *cap)
        return array;
    want = *cap ? 2 * *cap : 16;
    if (__builtin_mul_overflow(want, (uint64_t)elem, &bytes) || bytes > SIZE_MAX)
        return NULL;
    p = realloc(array, (size_t)bytes);
    if (p != NULL)
        *cap = want;
    return p;
}

void lrq_file_free(lrq_file *const file)
{
    unsigned i;

    if (file == NULL)
        return;
    if (file->locks_ready)
        for (i = 0; i < LOCK_STRIPES; i++)
            (void)pthread_mutex_destroy(&file->locks[i]);
    free(file->tensors);
    free(file->tiles);
    free(file->sections);
    free(file->by_name);
    free(file);
}

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */

static uint64_t load_le(const uint8_t *const p, const unsigned n)
{
    uint64_t v = 0;
    unsigned i;
    for (i = n; i > 0; i--)
        v = v << 8 | p[i - 1];
    return v;
}

static uint64_t ceil_div(const uint64_t a, const uint64_t b)
{
    return a / b + (a % b != 0);
}

/* 2 * rows * ceil(k/16): the bytes of one sign matrix (spec §9.1). */
static int sign_matrix_bytes(const uint64_t rows, const uint64_t k, uint64_t *const out)
{
    return __builtin_mul_overflow(rows, 2 * ceil_div(k, 16), out);
}

/* The bytes of an lplr code section (spec §10.3): b bit-planes for b <= 4,
 * one byte matrix (16 * rows * ceil(k/16)) for b >= 5. */
static int code_bytes(const uint64_t rows, const uint64_t k, const unsigned bits,
                      uint64_t *const out)
{
    uint64_t plane;
    if (bits <= 4)
        return sign_matrix_bytes(rows, k, &plane) || __builtin_mul_overflow(plane, bits, out);
    return __builtin_mul_overflow(rows, 16 * ceil_div(k, 16), out);
}

/* HDR-8: a float key denotes a binary32 value; a float 64 encoding is
 * rounded to nearest, ties to even.  C leaves a conversion of a value
 * outside float's range undefined, so overflow is resolved here by hand:
 * at or beyond the midpoint between FLT_MAX and 2^128 the result is an
 * infinity, below it FLT_MAX (ties go to the even 2^128, i.e. infinity). */
static float to_binary32(const double d)
{
    const double flt_max = 0x1.fffffep127, midpoint = 0x1.ffffffp127;
    const double mag = d < 0 ? -d : d;

    if (d != d)
        return (float)d; /* NaN converts without exception */
    if (mag >= midpoint)
        return d < 0 ? -__builtin_inff() : __builtin_inff();
    if (mag > flt_max)
        return d < 0 ? -0x1.fffffep127f : 0x1.fffffep127f;
    return (float)d;
}

static int finite32(const float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u & UINT32_C(0x7F800000)) != UINT32_C(0x7F800000);
}

static int is_power_of_two(const uint64_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

static int dtype_code(const mp_value *const v)
{
    size_t i;
    for (i = 1; i < DTYPE_COUNT; i++)
        if (mp_str_is(v, dtypes[i].name))
            return (int)i;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Preamble (spec §3): steps 1-8 of §15                                     */

static int check_preamble(const uint8_t *const p, const size_t size, char *const detail,
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

/* ------------------------------------------------------------------------ */
/* Header values (spec §6, §7, §8.1, §10): step 10 of §15                   */

/* Parsing context: the header, the handle being filled, where to report,
 * and a description of the map being read ("tensor 'W' tile #3") that
 * prefixes every message. */
typedef struct {
    lrq_file *f;
    mp_reader hdr; /* the whole header; copies of it are cursors */
    char *detail;
    size_t dn;
    char where[160];
} parse_ctx;

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int fail(const parse_ctx *const c, const char *const rule, const int code,
                const char *const fmt, ...)
{
    char message[LRQ_DETAIL_SIZE];
    va_list args;

    if (c->detail == NULL || c->dn == 0)
        return code;
    va_start(args, fmt);
    (void)vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    return lrq_detail(c->detail, c->dn, code, "[%s] %s: %s", rule, c->where, message);
}

static void set_where_tensor(parse_ctx *const c, const tensor_rec *const t, const uint64_t index)
{
    if (t != NULL && t->name != NULL)
        (void)snprintf(c->where, sizeof c->where, "tensor '%.*s'",
                       (int)(t->name_len < NAME_QUOTE ? t->name_len : NAME_QUOTE),
                       (const char *)t->name);
    else
        (void)snprintf(c->where, sizeof c->where, "tensor #%llu", (unsigned long long)index);
}

/* A cursor at header offset pos. */
static mp_reader cursor(const parse_ctx *const c, const size_t pos)
{
    mp_reader r = c->hdr;
    r.pos = pos;
    return r;
}

/* Wanted keys of one map: after read_fields(), `found` says whether the key
 * is present and `v` holds its value's head, read with cursor `next` just
 * past that head (at the first child of a container). */
typedef struct {
    const char *key;
    int found;
    mp_value v;
    mp_reader next;
} field;
#define FIELD(key) {key, 0, {0}, {0}}

/* Read a map whose head has been read (count entries; r at the first key)
 * in one pass, recording the wanted keys, and leave r past the map.  One
 * pass matters: a tensor map holds a "tiles" array of up to 2^20 tiles, and
 * looking each key up separately would step over it every time. */
static int read_fields(mp_reader *const r, const uint32_t count, field *const fields,
                       const size_t n)
{
    uint32_t e;
    size_t i;

    for (i = 0; i < n; i++)
        fields[i].found = 0;
    for (e = 0; e < count; e++) {
        mp_value key;
        int rc = mp_read(r, &key);
        if (rc != LRQ_OK)
            return rc;
        for (i = 0; i < n; i++) {
            if (mp_str_is(&key, fields[i].key)) {
                const size_t at = r->pos;
                fields[i].found = 1;
                rc = mp_read(r, &fields[i].v);
                if (rc != LRQ_OK)
                    return rc;
                fields[i].next = *r;
                r->pos = at;
                break;
            }
        }
        rc = mp_skip(r);
        if (rc != LRQ_OK)
            return rc;
    }
    return LRQ_OK;
}

static int oom(const parse_ctx *const c, const char *const what)
{
    return lrq_detail(c->detail, c->dn, LRQ_ERR_MEMORY, "out of memory for %s", what);
}

static int missing(const parse_ctx *const c, const field *const fl, const char *const rule)
{
    return fail(c, rule, LRQ_ERR_FORMAT, "required key '%s' is missing", fl->key);
}

/* An int-typed key (not bool, not float) with lo <= value <= hi. */
static int get_int(const parse_ctx *const c, const field *const fl, const char *const rule,
                   const uint64_t lo, const uint64_t hi, uint64_t *const out)
{
    if (!fl->found)
        return missing(c, fl, rule);
    if (fl->v.kind != MP_INT)
        return fail(c, rule, LRQ_ERR_FORMAT, "'%s' must be an integer", fl->key);
    if (fl->v.neg)
        return fail(c, rule, LRQ_ERR_FORMAT, "'%s' = %lld is outside [%llu, %llu]", fl->key,
                    (long long)fl->v.i, (unsigned long long)lo, (unsigned long long)hi);
    if (fl->v.u < lo || fl->v.u > hi)
        return fail(c, rule, LRQ_ERR_FORMAT, "'%s' = %llu is outside [%llu, %llu]", fl->key,
                    (unsigned long long)fl->v.u, (unsigned long long)lo, (unsigned long long)hi);
    *out = fl->v.u;
    return LRQ_OK;
}

/* A float-typed key, as its binary32 value ([HDR-8]); range checks are the
 * caller's, on the converted value. */
static int get_float(const parse_ctx *const c, const field *const fl, const char *const rule,
                     float *const out)
{
    if (!fl->found)
        return missing(c, fl, rule);
    if (fl->v.kind != MP_FLOAT)
        return fail(c, rule, LRQ_ERR_FORMAT, "'%s' must be a float", fl->key);
    *out = to_binary32(fl->v.f);
    return LRQ_OK;
}

/* [LP-2]: a super-scale is, as binary32, finite and > 0. */
static int get_scale(const parse_ctx *const c, const field *const fl, float *const out)
{
    const int rc = get_float(c, fl, "LP-2", out);
    if (rc == LRQ_OK && !(finite32(*out) && *out > 0))
        return fail(c, "LP-2", LRQ_ERR_FORMAT, "'%s' must be a finite binary32 value > 0", fl->key);
    return rc;
}

static int get_str(const parse_ctx *const c, const field *const fl, const char *const rule)
{
    if (!fl->found)
        return missing(c, fl, rule);
    if (fl->v.kind != MP_STR)
        return fail(c, rule, LRQ_ERR_FORMAT, "'%s' must be a string", fl->key);
    return LRQ_OK;
}

/* A str key naming an element type of spec §6.5 ("dtype", "storage"). */
static int get_dtype(const parse_ctx *const c, const field *const fl, const char *const rule,
                     int *const out)
{
    const int rc = get_str(c, fl, rule);
    if (rc != LRQ_OK)
        return rc;
    *out = dtype_code(&fl->v);
    if (*out == 0)
        return fail(c, rule, LRQ_ERR_FORMAT, "unknown %s '%.*s'", fl->key, QUOTE(fl->v));
    return LRQ_OK;
}

/* An array of 0 to LRQ_MAX_NDIM ints, each in [1, 2^31 - 1].  Values of
 * other types or ranges, and longer arrays, are one error under `rule`. */
static int get_dims(const parse_ctx *const c, const field *const fl, const char *const rule,
                    uint64_t *const out, unsigned *const ndim)
{
    mp_reader r = fl->next;
    uint32_t i;

    if (!fl->found)
        return missing(c, fl, rule);
    if (fl->v.kind != MP_ARRAY)
        return fail(c, rule, LRQ_ERR_FORMAT, "'%s' must be a list of integers", fl->key);
    if (fl->v.count > LRQ_MAX_NDIM)
        return fail(c, rule, LRQ_ERR_FORMAT, "'%s' has %u dimensions; at most %d are allowed",
                    fl->key, fl->v.count, LRQ_MAX_NDIM);
    for (i = 0; i < fl->v.count; i++) {
        mp_value v;
        if (mp_read(&r, &v) != LRQ_OK)
            return fail(c, "HDR-1", LRQ_ERR_FORMAT, "unreadable '%s'", fl->key);
        if (v.kind != MP_INT)
            return fail(c, rule, LRQ_ERR_FORMAT, "'%s' must be a list of integers", fl->key);
        if (v.neg || v.u < 1 || v.u > LRQ_DIM_MAX)
            return fail(c, rule, LRQ_ERR_FORMAT, "'%s'[%u] is outside [1, 2^31 - 1]", fl->key, i);
        out[i] = v.u;
    }
    *ndim = fl->v.count;
    return LRQ_OK;
}

/* The tile's own dimensions and origin (spec §7.1). */
static void tile_geometry(const tensor_rec *const t, const uint64_t index, uint64_t *const origin,
                          uint64_t *const dims)
{
    unsigned d;

    if (t->ndim != 2) {
        for (d = 0; d < t->ndim; d++) {
            origin[d] = 0;
            dims[d] = t->shape[d];
        }
        return;
    }
    origin[0] = index / t->grid[1] * t->tile_shape[0];
    origin[1] = index % t->grid[1] * t->tile_shape[1];
    for (d = 0; d < 2; d++) {
        const uint64_t rest = t->shape[d] - origin[d];
        dims[d] = rest < t->tile_shape[d] ? rest : t->tile_shape[d];
    }
}

/* The exact length of every section of a tile ([SEC-2]).  Inputs are
 * range-checked already, so overflow cannot happen with valid parameters;
 * it is still checked ([LIM-5]) so that this stays true if limits change. */
static int section_lengths(const tensor_rec *const t, const tile_rec *const tl,
                           const uint64_t *const dims, uint64_t *const len)
{
    int overflow = 0;

    if (tl->scheme == LRQ_SCHEME_DENSE) {
        uint64_t n = 1;
        unsigned d;
        for (d = 0; d < t->ndim; d++)
            overflow |= __builtin_mul_overflow(n, dims[d], &n);
        overflow |= __builtin_mul_overflow(n, (uint64_t)dtypes[tl->storage].size, &len[0]);
    } else if (tl->scheme == LRQ_SCHEME_SIGNCUT) {
        overflow |= __builtin_mul_overflow(tl->width, tl->c16 ? 2 : 4, &len[0]);
        overflow |= sign_matrix_bytes(tl->width, dims[1], &len[1]);
        overflow |= sign_matrix_bytes(dims[0], tl->width, &len[2]);
    } else {
        overflow |= code_bytes(tl->width, dims[1], tl->bits_r, &len[0]);
        overflow |= __builtin_mul_overflow(tl->width, 2 * ceil_div(dims[1], tl->group), &len[1]);
        overflow |= code_bytes(dims[0], tl->width, tl->bits_l, &len[2]);
        overflow |= __builtin_mul_overflow(dims[0], 2 * ceil_div(tl->width, tl->group), &len[3]);
    }
    return overflow ? LRQ_ERR_FORMAT : LRQ_OK;
}

/* Scheme parameters of one tile ([TEN-6], [DN-1], [DN-2], [SC-1], [SC-3],
 * [SC-4], [LP-1], [LP-2]). */
enum {
    TF_SCHEME, TF_STORAGE, TF_WIDTH, TF_C_SCALE, TF_RANK, TF_BITS_L, TF_BITS_R, TF_GROUP,
    TF_SCALE_L, TF_SCALE_R, TF_SECTIONS, TF_COUNT
};

/* A signcut tile's optional "c_scale" ([SC-3], [SC-4]): present only in a
 * file that sets the signcut_c16 flag, and a power of two 2^e with
 * -125 <= e <= 112 as binary32. */
static int get_c_scale(const parse_ctx *const c, const field *const fl, tile_rec *const tl)
{
    int rc;

    if (!fl->found)
        return LRQ_OK;
    if (!(c->f->required & LRQ_REQUIRED_SIGNCUT_C16))
        return fail(c, "SC-4", LRQ_ERR_FORMAT, "'c_scale' in a file whose required_features "
                    "lack signcut_c16 (bit 0)");
    if ((rc = get_float(c, fl, "SC-3", &tl->c_scale)) != LRQ_OK)
        return rc;
    if (!lrq_c_scale_ok(tl->c_scale))
        return fail(c, "SC-3", LRQ_ERR_FORMAT, "'c_scale' = %g is not a power of two in "
                    "[2^-125, 2^112]", (double)tl->c_scale);
    tl->c16 = 1;
    return LRQ_OK;
}

static int parse_params(const parse_ctx *const c, const tensor_rec *const t, field *const tf,
                        tile_rec *const tl)
{
    uint64_t v;
    int rc;

    if (tl->scheme == LRQ_SCHEME_DENSE) {
        if ((rc = get_dtype(c, &tf[TF_STORAGE], "DN-1", &tl->storage)) != LRQ_OK)
            return rc;
        if (dtypes[t->dtype].is_float ? !dtypes[tl->storage].is_float : tl->storage != t->dtype)
            return fail(c, "DN-2", LRQ_ERR_FORMAT, "a %s tensor cannot be stored as %s",
                        dtypes[t->dtype].name, dtypes[tl->storage].name);
        return LRQ_OK;
    }
    if (t->ndim != 2)
        return fail(c, "TEN-6", LRQ_ERR_FORMAT, "scheme '%s' needs a 2-D tensor",
                    scheme_names[tl->scheme]);
    if (!dtypes[t->dtype].is_float)
        return fail(c, "TEN-6", LRQ_ERR_FORMAT, "scheme '%s' needs a floating-point tensor, not %s",
                    scheme_names[tl->scheme], dtypes[t->dtype].name);
    if (tl->scheme == LRQ_SCHEME_SIGNCUT) {
        if ((rc = get_int(c, &tf[TF_WIDTH], "SC-1", 0, LRQ_DIM_MAX, &tl->width)) != LRQ_OK)
            return rc;
        return get_c_scale(c, &tf[TF_C_SCALE], tl);
    }
    if ((rc = get_int(c, &tf[TF_RANK], "LP-1", 0, LRQ_DIM_MAX, &tl->width)) != LRQ_OK)
        return rc;
    if ((rc = get_int(c, &tf[TF_BITS_L], "LP-1", 1, 8, &v)) != LRQ_OK)
        return rc;
    tl->bits_l = (unsigned)v;
    if ((rc = get_int(c, &tf[TF_BITS_R], "LP-1", 1, 8, &v)) != LRQ_OK)
        return rc;
    tl->bits_r = (unsigned)v;
    if ((rc = get_int(c, &tf[TF_GROUP], "LP-1", LRQ_GROUP_MIN, LRQ_GROUP_MAX, &tl->group)) != LRQ_OK)
        return rc;
    if (!is_power_of_two(tl->group))
        return fail(c, "LP-1", LRQ_ERR_FORMAT, "'group' = %llu is not a power of two",
                    (unsigned long long)tl->group);
    if ((rc = get_scale(c, &tf[TF_SCALE_L], &tl->scale_l)) != LRQ_OK)
        return rc;
    return get_scale(c, &tf[TF_SCALE_R], &tl->scale_r);
}

/* The section table of one tile ([SEC-1], [SEC-2]). */
static int parse_section_table(parse_ctx *const c, const field *const fl, tile_rec *const tl,
                               const uint64_t *const want)
{
    lrq_file *const f = c->f;
    const unsigned count = scheme_sections[tl->scheme].count;
    mp_reader r = fl->next;
    unsigned s;

    if (!fl->found)
        return missing(c, fl, "SEC-1");
    if (fl->v.kind != MP_ARRAY)
        return fail(c, "SEC-1", LRQ_ERR_FORMAT, "'sections' must be a list");
    if (fl->v.count != count)
        return fail(c, "SEC-1", LRQ_ERR_FORMAT, "the section table has %u entries; scheme '%s' has %u",
                    fl->v.count, scheme_names[tl->scheme], count);
    tl->first_section = f->n_sections;
    for (s = 0; s < count; s++) {
        const int kind = scheme_sections[tl->scheme].kind[s];
        mp_value head, e[4];
        section_rec *rec;
        void *grown;
        unsigned i;

        if (mp_read(&r, &head) != LRQ_OK)
            return fail(c, "HDR-1", LRQ_ERR_FORMAT, "unreadable section table");
        if (head.kind != MP_ARRAY || head.count != 4)
            return fail(c, "SEC-1", LRQ_ERR_FORMAT,
                        "a section entry must be [kind, offset, length, crc32c]");
        for (i = 0; i < 4; i++) {
            if (mp_read(&r, &e[i]) != LRQ_OK)
                return fail(c, "HDR-1", LRQ_ERR_FORMAT, "unreadable section table");
            /* Checked before the next read: after a container head, the
             * next read would land inside it. */
            if (e[i].kind != (i == 0 ? MP_STR : MP_INT))
                return fail(c, "SEC-1", LRQ_ERR_FORMAT,
                            "a section entry must be [kind, offset, length, crc32c]");
        }
        if (!mp_str_is(&e[0], kind_names[kind]))
            return fail(c, "SEC-1", LRQ_ERR_FORMAT, "section '%.*s' where '%s' belongs",
                        QUOTE(e[0]), kind_names[kind]);
        if (e[2].neg || e[2].u != want[s])
            return fail(c, "SEC-2", LRQ_ERR_FORMAT, "section '%s' has length %s%llu; its "
                        "parameters need %llu", kind_names[kind], e[2].neg ? "-" : "",
                        (unsigned long long)(e[2].neg ? 0 - (uint64_t)e[2].i : e[2].u),
                        (unsigned long long)want[s]);
        if (e[1].neg || e[3].neg || e[3].u > UINT32_C(0xFFFFFFFF))
            return fail(c, "SEC-1", LRQ_ERR_FORMAT, "section '%s' has an out-of-range offset "
                        "or CRC", kind_names[kind]);
        grown = grow(f->sections, &f->cap_sections, f->n_sections, sizeof *f->sections);
        if (grown == NULL)
            return oom(c, "the section table");
        f->sections = grown;
        rec = &f->sections[f->n_sections++];
        rec->offset = e[1].u;
        rec->length = e[2].u;
        rec->crc = (uint32_t)e[3].u;
        rec->kind = kind;
        rec->state = SECTION_UNCHECKED;
    }
    return LRQ_OK;
}

/* One tile map ([TIL-4] and what it contains). */
static int parse_tile(parse_ctx *const c, tensor_rec *const t, const uint64_t index,
                      mp_reader *const r)
{
    lrq_file *const f = c->f;
    field tf[TF_COUNT] = {FIELD("scheme"),  FIELD("storage"), FIELD("width"),   FIELD("c_scale"),
                          FIELD("rank"),    FIELD("bits_l"),  FIELD("bits_r"),  FIELD("group"),
                          FIELD("scale_l"), FIELD("scale_r"), FIELD("sections")};
    uint64_t origin[LRQ_MAX_NDIM], dims[LRQ_MAX_NDIM], want[LRQ_MAX_SECTIONS] = {0};
    const size_t prefix = strlen(c->where);
    tile_rec tl;
    mp_value head;
    void *grown;
    size_t i;
    int rc;

    (void)snprintf(c->where + prefix, sizeof c->where - prefix, " tile #%llu",
                   (unsigned long long)index);
    if (mp_read(r, &head) != LRQ_OK)
        return fail(c, "HDR-1", LRQ_ERR_FORMAT, "unreadable tile");
    if (head.kind != MP_MAP)
        return fail(c, "TIL-4", LRQ_ERR_FORMAT, "the tile is not a map");
    if (read_fields(r, head.count, tf, TF_COUNT) != LRQ_OK)
        return fail(c, "HDR-1", LRQ_ERR_FORMAT, "unreadable tile");
    memset(&tl, 0, sizeof tl);
    if ((rc = get_str(c, &tf[TF_SCHEME], "TIL-4")) != LRQ_OK)
        return rc;
    for (i = 1; i < SCHEME_COUNT; i++)
        if (mp_str_is(&tf[TF_SCHEME].v, scheme_names[i]))
            tl.scheme = (int)i;
    if (tl.scheme == 0)
        return fail(c, "TIL-4", LRQ_ERR_FORMAT, "unknown scheme '%.*s'", QUOTE(tf[TF_SCHEME].v));
    if ((rc = parse_params(c, t, tf, &tl)) != LRQ_OK)
        return rc;
    tile_geometry(t, index, origin, dims);
    if (section_lengths(t, &tl, dims, want) != LRQ_OK)
        return fail(c, "LIM-5", LRQ_ERR_FORMAT, "section sizes overflow 64 bits");
    if ((rc = parse_section_table(c, &tf[TF_SECTIONS], &tl, want)) != LRQ_OK)
        return rc;
    grown = grow(f->tiles, &f->cap_tiles, f->n_tiles, sizeof *f->tiles);
    if (grown == NULL)
        return oom(c, "the tile table");
    f->tiles = grown;
    f->tiles[f->n_tiles++] = tl;
    c->where[prefix] = '\0';
    return LRQ_OK;
}

enum {
    XF_NAME, XF_SHAPE, XF_DTYPE, XF_TILE_SHAPE, XF_PANEL, XF_TILES, XF_REL_ERROR, XF_ENCODER,
    XF_COUNT
};

/* One tensor map ([TEN-*], [TIL-1..3]), in the order of spec §15's notes. */
static int parse_tensor(parse_ctx *const c, const uint64_t index, mp_reader *const r)
{
    lrq_file *const f = c->f;
    field xf[XF_COUNT] = {FIELD("name"),  FIELD("shape"), FIELD("dtype"),     FIELD("tile_shape"),
                          FIELD("panel"), FIELD("tiles"), FIELD("rel_error"), FIELD("encoder")};
    tensor_rec *t;
    void *grown;
    mp_value head, tiles;
    mp_reader tr;
    uint64_t elements = 1, grid = 1, k;
    unsigned d, tile_ndim;
    int rc;

    set_where_tensor(c, NULL, index);
    if (mp_read(r, &head) != LRQ_OK)
        return fail(c, "HDR-1", LRQ_ERR_FORMAT, "unreadable tensor");
    if (head.kind != MP_MAP)
        return fail(c, "TEN-1", LRQ_ERR_FORMAT, "the tensor is not a map");
    if (read_fields(r, head.count, xf, XF_COUNT) != LRQ_OK)
        return fail(c, "HDR-1", LRQ_ERR_FORMAT, "unreadable tensor");
    grown = grow(f->tensors, &f->cap_tensors, f->n_tensors, sizeof *f->tensors);
    if (grown == NULL)
        return oom(c, "the tensor table");
    f->tensors = grown;
    t = &f->tensors[f->n_tensors];
    memset(t, 0, sizeof *t);

    if ((rc = get_str(c, &xf[XF_NAME], "TEN-2")) != LRQ_OK)
        return rc;
    if (xf[XF_NAME].v.len < 1 || xf[XF_NAME].v.len > LRQ_NAME_BYTES_MAX)
        return fail(c, "TEN-2", LRQ_ERR_FORMAT, "the name has %u bytes; it needs 1 to %u",
                    xf[XF_NAME].v.len, LRQ_NAME_BYTES_MAX);
    t->name = xf[XF_NAME].v.str;
    t->name_len = xf[XF_NAME].v.len;
    set_where_tensor(c, t, index);

    if ((rc = get_dims(c, &xf[XF_SHAPE], "TEN-3", t->shape, &t->ndim)) != LRQ_OK)
        return rc;
    /* The running product stays <= 2^48 but a factor may be 2^31 - 1, so a
     * product may not fit 64 bits: checked, not assumed ([LIM-5]). */
    for (d = 0; d < t->ndim; d++)
        if (__builtin_mul_overflow(elements, t->shape[d], &elements) || elements > LRQ_ELEMENTS_MAX)
            return fail(c, "TEN-3", LRQ_ERR_FORMAT, "the shape has more than 2^48 elements");

    if ((rc = get_dtype(c, &xf[XF_DTYPE], "TEN-4", &t->dtype)) != LRQ_OK)
        return rc;

    if ((rc = get_dims(c, &xf[XF_TILE_SHAPE], "TIL-1", t->tile_shape, &tile_ndim)) != LRQ_OK)
        return rc;
    if (tile_ndim != t->ndim)
        return fail(c, "TIL-1", LRQ_ERR_FORMAT, "'tile_shape' has %u dimensions; 'shape' has %u",
                    tile_ndim, t->ndim);
    for (d = 0; d < t->ndim; d++)
        if (t->tile_shape[d] > t->shape[d])
            return fail(c, "TIL-1", LRQ_ERR_FORMAT, "'tile_shape'[%u] = %llu exceeds the shape's "
                        "%llu", d, (unsigned long long)t->tile_shape[d],
                        (unsigned long long)t->shape[d]);
    if (t->ndim != 2)
        for (d = 0; d < t->ndim; d++)
            if (t->tile_shape[d] != t->shape[d])
                return fail(c, "TIL-2", LRQ_ERR_FORMAT, "a tensor that is not 2-D has one tile "
                            "(tile_shape = shape)");

    if ((rc = get_int(c, &xf[XF_PANEL], "TEN-5", LRQ_PANEL_MIN, LRQ_PANEL_MAX, &t->panel)) != LRQ_OK)
        return rc;
    if (t->panel % 64 != 0)
        return fail(c, "TEN-5", LRQ_ERR_FORMAT, "'panel' = %llu is not a multiple of 64",
                    (unsigned long long)t->panel);

    /* [TIL-3], [LIM-7]: the grid size is computed, not trusted, and compared
     * with the array before anything per tile exists.  Each grid dimension
     * is at most 2^31 - 1 and the product at most the element count. */
    if (!xf[XF_TILES].found)
        return missing(c, &xf[XF_TILES], "TIL-3");
    tiles = xf[XF_TILES].v;
    if (tiles.kind != MP_ARRAY)
        return fail(c, "TIL-3", LRQ_ERR_FORMAT, "'tiles' must be a list");
    for (d = 0; d < t->ndim; d++) {
        t->grid[d] = ceil_div(t->shape[d], t->tile_shape[d]);
        grid *= t->grid[d];
    }
    if (grid != tiles.count)
        return fail(c, "TIL-3", LRQ_ERR_FORMAT, "there are %u tiles; the grid needs %llu",
                    tiles.count, (unsigned long long)grid);
    t->tile_count = grid;

    if (xf[XF_REL_ERROR].found) {
        if ((rc = get_float(c, &xf[XF_REL_ERROR], "TEN-7", &t->rel_error)) != LRQ_OK)
            return rc;
        if (!(finite32(t->rel_error) && t->rel_error >= 0))
            return fail(c, "TEN-7", LRQ_ERR_FORMAT, "'rel_error' must be finite and >= 0");
        t->has_rel_error = 1;
    }
    if (xf[XF_ENCODER].found) {
        mp_reader er = cursor(c, xf[XF_ENCODER].v.at);
        if (xf[XF_ENCODER].v.kind != MP_MAP)
            return fail(c, "TEN-8", LRQ_ERR_FORMAT, "'encoder' must be a map");
        if (mp_skip(&er) != LRQ_OK)
            return fail(c, "HDR-1", LRQ_ERR_FORMAT, "unreadable 'encoder'");
        t->encoder = er.base + xf[XF_ENCODER].v.at;
        t->encoder_len = er.pos - xf[XF_ENCODER].v.at;
    }

    t->first_tile = f->n_tiles;
    tr = xf[XF_TILES].next;
    for (k = 0; k < grid; k++)
        if ((rc = parse_tile(c, t, k, &tr)) != LRQ_OK)
            return rc;
    f->n_tensors++;
    return LRQ_OK;
}

static int name_cmp(const tensor_rec *const a, const tensor_rec *const b)
{
    if (a->name_len != b->name_len)
        return a->name_len < b->name_len ? -1 : 1;
    return memcmp(a->name, b->name, a->name_len);
}

/* [TEN-2] uniqueness, in O(n log n): up to 65536 names compared pairwise
 * would be 2^31 comparisons.  The sorted order also serves
 * lrq_file_find_tensor(). */
static int sort_names(parse_ctx *const c)
{
    lrq_file *const f = c->f;
    uint64_t i, width;
    uint32_t *tmp;

    if (f->n_tensors == 0)
        return LRQ_OK;
    f->by_name = malloc(f->n_tensors * sizeof *f->by_name);
    tmp = malloc(f->n_tensors * sizeof *tmp);
    if (f->by_name == NULL || tmp == NULL) {
        free(tmp);
        return oom(c, "the name index");
    }
    for (i = 0; i < f->n_tensors; i++)
        f->by_name[i] = (uint32_t)i;
    /* A bottom-up merge sort: qsort() has no context pointer in C99, and a
     * file-scope pointer to the tensors would be global mutable state. */
    for (width = 1; width < f->n_tensors; width *= 2) {
        uint64_t lo;
        for (lo = 0; lo < f->n_tensors; lo += 2 * width) {
            const uint64_t mid = lo + width < f->n_tensors ? lo + width : f->n_tensors;
            const uint64_t hi = lo + 2 * width < f->n_tensors ? lo + 2 * width : f->n_tensors;
            uint64_t a = lo, b = mid, o = lo;
            while (a < mid || b < hi) {
                if (b >= hi || (a < mid && name_cmp(&f->tensors[f->by_name[a]],
                                                    &f->tensors[f->by_name[b]]) <= 0))
                    tmp[o++] = f->by_name[a++];
                else
                    tmp[o++] = f->by_name[b++];
            }
        }
        memcpy(f->by_name, tmp, f->n_tensors * sizeof *tmp);
    }
    free(tmp);
    for (i = 1; i < f->n_tensors; i++) {
        const tensor_rec *const t = &f->tensors[f->by_name[i]];
        if (name_cmp(&f->tensors[f->by_name[i - 1]], t) == 0) {
            set_where_tensor(c, t, f->by_name[i]);
            return fail(c, "TEN-2", LRQ_ERR_FORMAT, "the name appears twice");
        }
    }
    return LRQ_OK;
}

/* The top-level map ([HDR-5], [HDR-6], [LIM-4]) and everything below it. */
static int parse_header(parse_ctx *const c)
{
    lrq_file *const f = c->f;
    field top[2] = {FIELD("tensors"), FIELD("metadata")};
    mp_reader r = c->hdr;
    mp_value head;
    uint32_t i;
    int rc;

    (void)snprintf(c->where, sizeof c->where, "header");
    if (mp_read(&r, &head) != LRQ_OK || head.kind != MP_MAP ||
        read_fields(&r, head.count, top, 2) != LRQ_OK)
        return fail(c, "HDR-1", LRQ_ERR_FORMAT, "unreadable header map");
    if (!top[0].found)
        return missing(c, &top[0], "HDR-5");
    if (top[0].v.kind != MP_ARRAY)
        return fail(c, "HDR-5", LRQ_ERR_FORMAT, "'tensors' must be a list");
    if (top[0].v.count > LRQ_TENSORS_MAX)
        return fail(c, "LIM-4", LRQ_ERR_FORMAT, "%u tensors; at most %u are allowed",
                    top[0].v.count, LRQ_TENSORS_MAX);
    if (top[1].found) {
        mp_reader m = top[1].next;
        if (top[1].v.kind != MP_MAP)
            return fail(c, "HDR-6", LRQ_ERR_FORMAT, "'metadata' must be a map");
        for (i = 0; i < top[1].v.count; i++) { /* count <= 64, checked by [LIM-1] */
            mp_value key, value;
            if (mp_read(&m, &key) != LRQ_OK || mp_read(&m, &value) != LRQ_OK)
                return fail(c, "HDR-1", LRQ_ERR_FORMAT, "unreadable 'metadata'");
            if (value.kind != MP_STR)
                return fail(c, "HDR-6", LRQ_ERR_FORMAT, "metadata value '%.*s' is not a string",
                            QUOTE(key));
            f->meta[f->n_meta].key = key.str;
            f->meta[f->n_meta].key_len = key.len;
            f->meta[f->n_meta].value = value.str;
            f->meta[f->n_meta].value_len = value.len;
            f->n_meta++;
        }
    }
    r = top[0].next;
    for (i = 0; i < top[0].v.count; i++)
        if ((rc = parse_tensor(c, i, &r)) != LRQ_OK)
            return rc;
    /* [SC-5] once every tile is known (after [TEN-2], which sorting checks). */
    if ((rc = sort_names(c)) != LRQ_OK)
        return rc;
    if (f->required & LRQ_REQUIRED_SIGNCUT_C16) {
        uint64_t k;
        for (k = 0; k < f->n_tiles && !f->tiles[k].c16; k++)
            ;
        (void)snprintf(c->where, sizeof c->where, "file");
        if (k == f->n_tiles)
            return fail(c, "SC-5", LRQ_ERR_FORMAT, "required_features set signcut_c16 (bit 0) "
                        "but no signcut tile has 'c_scale'");
    }
    return LRQ_OK;
}

/* ------------------------------------------------------------------------ */
/* Placement (spec §8.2, §8.3): step 11 of §15                              */

static int check_placement(parse_ctx *const c)
{
    lrq_file *const f = c->f;
    uint64_t e = PREAMBLE_SIZE + f->header_length, t, k;

    for (t = 0; t < f->n_tensors; t++) {
        const tensor_rec *const tr = &f->tensors[t];
        set_where_tensor(c, tr, t);
        for (k = 0; k < tr->tile_count; k++) {
            const tile_rec *const tl = &f->tiles[tr->first_tile + k];
            unsigned s;
            for (s = 0; s < scheme_sections[tl->scheme].count; s++) {
                const section_rec *const sr = &f->sections[tl->first_section + s];
                const uint64_t a = sr->length >= LRQ_PAGE_ALIGNED_FROM ? 4096 : 64;
                uint64_t want, end, i;
                /* e <= size here, and size < 2^64 - 4096 for any buffer an
                 * address space can hold, but check rather than argue. */
                if (__builtin_add_overflow(e, a - 1, &want))
                    return fail(c, "LIM-5", LRQ_ERR_FORMAT, "section offsets overflow 64 bits");
                want -= want % a;
                if (sr->offset != want)
                    return fail(c, "SEC-3", LRQ_ERR_FORMAT, "tile #%llu section '%s' is at offset "
                                "%llu; the canonical offset is %llu", (unsigned long long)k,
                                kind_names[sr->kind], (unsigned long long)sr->offset,
                                (unsigned long long)want);
                if (__builtin_add_overflow(want, sr->length, &end) || end > f->size)
                    return fail(c, "SEC-4", LRQ_ERR_FORMAT, "tile #%llu section '%s' runs past "
                                "the end of the file", (unsigned long long)k,
                                kind_names[sr->kind]);
                for (i = e; i < want; i++)
                    if (f->data[i] != 0)
                        return fail(c, "SEC-5", LRQ_ERR_PADDING, "padding byte at offset %llu "
                                    "(before tile #%llu section '%s') is not zero",
                                    (unsigned long long)i, (unsigned long long)k,
                                    kind_names[sr->kind]);
                e = end;
            }
        }
    }
    (void)snprintf(c->where, sizeof c->where, "file");
    if (e != f->size)
        return fail(c, "SEC-4", LRQ_ERR_FORMAT, "%llu bytes follow the end of the last section "
                    "at offset %llu", (unsigned long long)(f->size - e), (unsigned long long)e);
    return LRQ_OK;
}

/* ------------------------------------------------------------------------ */
/* Section checks (spec §8.4, §9, §10): step 12 of §15                      */

/* Every item of a float storage type is finite ([DN-3], [SC-2]): its
 * exponent field is not all ones.  Works on the little-endian bytes. */
/* Where a section failure is reported from. */
static void section_where(const lrq_file *const f, const uint64_t tensor, const uint64_t tile,
                          const section_rec *const sr, char *const out, const size_t n)
{
    const tensor_rec *const t = &f->tensors[tensor];
    (void)snprintf(out, n, "tensor '%.*s' tile #%llu section '%s'",
                   (int)(t->name_len < NAME_QUOTE ? t->name_len : NAME_QUOTE),
                   (const char *)t->name, (unsigned long long)tile, kind_names[sr->kind]);
}

static int check_crc(const lrq_file *const f, const uint64_t tensor, const uint64_t tile,
                     const section_rec *const sr, char *const detail, const size_t dn)
{
    const uint32_t crc = lrq_crc32c(0, f->data + sr->offset, (size_t)sr->length);
    char where[LRQ_DETAIL_SIZE];

    if (crc == sr->crc)
        return LRQ_OK;
    section_where(f, tensor, tile, sr, where, sizeof where);
    return lrq_detail(detail, dn, LRQ_ERR_CHECKSUM,
                      "[SEC-6] %s at offset %llu: the CRC-32C is 0x%08x; the table says 0x%08x",
                      where, (unsigned long long)sr->offset, (unsigned)crc, (unsigned)sr->crc);
}

/* The content rules of one section ([SEC-7]). */
static int check_content(const lrq_file *const f, const uint64_t tensor, const uint64_t tile,
                         const section_rec *const sr, char *const detail, const size_t dn)
{
    const tensor_rec *const t = &f->tensors[tensor];
    const tile_rec *const tl = &f->tiles[t->first_tile + tile];
    const uint8_t *const p = f->data + sr->offset;
    uint64_t origin[LRQ_MAX_NDIM], dims[LRQ_MAX_NDIM], bad = 0, rows = 0, k = 0, i;
    unsigned bits = 1;
    char where[LRQ_DETAIL_SIZE];

    tile_geometry(t, tile, origin, dims);
    section_where(f, tensor, tile, sr, where, sizeof where);
    switch (sr->kind) {
    case LRQ_SECTION_VALUES:
        if (dtypes[tl->storage].is_float) {
            if (!lrq_floats_finite(p, sr->length, dtypes[tl->storage].size,
                                   tl->storage == LRQ_DTYPE_BFLOAT16, &bad))
                return lrq_detail(detail, dn, LRQ_ERR_FORMAT, "[DN-3] %s: value #%llu is NaN or "
                                  "infinite", where, (unsigned long long)bad);
        } else if (tl->storage == LRQ_DTYPE_BOOL) {
            for (i = 0; i < sr->length; i++)
                if (p[i] > 1)
                    return lrq_detail(detail, dn, LRQ_ERR_FORMAT, "[DN-4] %s: bool byte #%llu is "
                                      "0x%02x, neither 0 nor 1", where, (unsigned long long)i,
                                      p[i]);
        }
        return LRQ_OK;
    case LRQ_SECTION_C:
        return lrq_check_weights(p, sr->length, tl->c16, where, detail, dn);
    case LRQ_SECTION_R_SCALES:
    case LRQ_SECTION_L_SCALES:
        return lrq_check_scales(p, sr->length, where, detail, dn);
    case LRQ_SECTION_TT: /* Tᵀ: w rows of n */
        rows = tl->width;
        k = dims[1];
        break;
    case LRQ_SECTION_S: /* S: m rows of w */
        rows = dims[0];
        k = tl->width;
        break;
    case LRQ_SECTION_R_CODES: /* R: r rows of n */
        rows = tl->width;
        k = dims[1];
        bits = tl->bits_r;
        break;
    case LRQ_SECTION_L_CODES: /* L: m rows of r */
        rows = dims[0];
        k = tl->width;
        bits = tl->bits_l;
        break;
    default:
        return lrq_detail(detail, dn, LRQ_ERR_INTERNAL, "%s: unknown section kind", where);
    }

    return lrq_check_matrix(p, sr->length, rows, k, bits, t->panel, where, detail, dn);
}

/* Bring one section to at least `level`, once: the fast path is one acquire
 * load; otherwise the section's lock stripe serializes the verifiers, so
 * whichever thread comes first does the work and the others find it done. */
static int ensure_section(lrq_file *const f, const uint64_t tensor, const uint64_t tile,
                          const uint64_t index, const int level, char *const detail,
                          const size_t dn)
{
    section_rec *const sr = &f->sections[index];
    pthread_mutex_t *const lock = &f->locks[index % LOCK_STRIPES];
    int state, rc = LRQ_OK;

    if (__atomic_load_n(&sr->state, __ATOMIC_ACQUIRE) >= level)
        return LRQ_OK;
    if (pthread_mutex_lock(lock) != 0)
        return lrq_detail(detail, dn, LRQ_ERR_INTERNAL, "cannot take a section lock");
    state = __atomic_load_n(&sr->state, __ATOMIC_ACQUIRE);
    if (state < SECTION_CRC_OK) {
        rc = check_crc(f, tensor, tile, sr, detail, dn);
        if (rc == LRQ_OK)
            __atomic_store_n(&sr->state, state = SECTION_CRC_OK, __ATOMIC_RELEASE);
    }
    if (rc == LRQ_OK && state < level) {
        rc = check_content(f, tensor, tile, sr, detail, dn);
        if (rc == LRQ_OK)
            __atomic_store_n(&sr->state, SECTION_CHECKED, __ATOMIC_RELEASE);
    }
    (void)pthread_mutex_unlock(lock);
    return rc;
}

/* Every section to `level`, in file order. */
static int ensure_all(lrq_file *const f, const int level, char *const detail, const size_t dn)
{
    uint64_t t, k;
    unsigned s;
    int rc;

    for (t = 0; t < f->n_tensors; t++) {
        const tensor_rec *const tr = &f->tensors[t];
        for (k = 0; k < tr->tile_count; k++) {
            const tile_rec *const tl = &f->tiles[tr->first_tile + k];
            for (s = 0; s < scheme_sections[tl->scheme].count; s++)
                if ((rc = ensure_section(f, t, k, tl->first_section + s, level, detail, dn)) !=
                    LRQ_OK)
                    return rc;
        }
    }
    return LRQ_OK;
}

#define KNOWN_FLAGS (LRQ_FILE_VERIFY_CHECKSUMS | LRQ_FILE_VERIFY_CONTENT)

int lrq_file_verify(lrq_file *const file, const unsigned flags, char *const detail,
                    const size_t detail_size)
{
    int rc;

    (void)lrq_detail(detail, detail_size, LRQ_OK, "%s", "");
    if (file == NULL || (flags & ~KNOWN_FLAGS) != 0)
        return LRQ_ERR_ARGUMENT;
    /* All checksums first, then all content: a damaged file is reported
     * as damaged even when the damage also breaks a content rule. */
    if (flags & KNOWN_FLAGS)
        if ((rc = ensure_all(file, SECTION_CRC_OK, detail, detail_size)) != LRQ_OK)
            return rc;
    if (flags & LRQ_FILE_VERIFY_CONTENT)
        if ((rc = ensure_all(file, SECTION_CHECKED, detail, detail_size)) != LRQ_OK)
            return rc;
    return LRQ_OK;
}

/* ------------------------------------------------------------------------ */
/* Opening                                                                  */

int lrq_file_open_buffer(const void *const data, const size_t size, const unsigned flags,
                         lrq_file **const out, char *const detail, const size_t detail_size)
{
    const uint8_t *const p = (const uint8_t *)data;
    parse_ctx c;
    lrq_file *f;
    unsigned i;
    int rc;

    (void)lrq_detail(detail, detail_size, LRQ_OK, "%s", "");
    if (out == NULL)
        return LRQ_ERR_ARGUMENT;
    *out = NULL;
    if ((data == NULL && size != 0) || (flags & ~KNOWN_FLAGS) != 0)
        return LRQ_ERR_ARGUMENT;
    if ((rc = check_preamble(p, size, detail, detail_size)) != LRQ_OK)
        return rc;

    f = calloc(1, sizeof *f);
    if (f == NULL)
        return lrq_detail(detail, detail_size, LRQ_ERR_MEMORY, "out of memory for the handle");
    f->data = p;
    f->size = size;
    f->major = (unsigned)load_le(p + 8, 2);
    f->minor = (unsigned)load_le(p + 10, 2);
    f->required = load_le(p + 16, 8);
    f->optional = load_le(p + 24, 8);
    f->header_length = load_le(p + 32, 8);
    for (i = 0; i < LOCK_STRIPES; i++) {
        if (pthread_mutex_init(&f->locks[i], NULL) != 0) {
            while (i-- > 0)
                (void)pthread_mutex_destroy(&f->locks[i]);
            free(f);
            return lrq_detail(detail, detail_size, LRQ_ERR_MEMORY, "cannot create a lock");
        }
    }
    f->locks_ready = 1;

    c.f = f;
    c.hdr.base = p + PREAMBLE_SIZE;
    c.hdr.size = (size_t)f->header_length;
    c.hdr.pos = 0;
    c.detail = detail;
    c.dn = detail_size;
    c.where[0] = '\0';
    rc = mp_check_header(c.hdr.base, c.hdr.size, detail, detail_size);
    if (rc == LRQ_OK)
        rc = parse_header(&c);
    if (rc == LRQ_OK)
        rc = check_placement(&c);
    if (rc == LRQ_OK && flags != 0)
        rc = lrq_file_verify(f, flags, detail, detail_size);
    if (rc != LRQ_OK) {
        lrq_file_free(f);
        return rc;
    }
    *out = f;
    return LRQ_OK;
}

/* ------------------------------------------------------------------------ */
/* Accessors                                                                */

int lrq_file_get_info(const lrq_file *const file, lrq_file_info *const info)
{
    if (file == NULL || info == NULL)
        return LRQ_ERR_ARGUMENT;
    memset(info, 0, sizeof *info);
    info->format_major = file->major;
    info->format_minor = file->minor;
    info->required_features = file->required;
    info->optional_features = file->optional;
    info->header_length = file->header_length;
    info->file_length = file->size;
    info->tensor_count = file->n_tensors;
    info->metadata_count = file->n_meta;
    return LRQ_OK;
}

int lrq_file_metadata(const lrq_file *const file, const uint64_t index, const char **const key,
                      size_t *const key_len, const char **const value, size_t *const value_len)
{
    if (file == NULL || key == NULL || key_len == NULL || value == NULL || value_len == NULL ||
        index >= file->n_meta)
        return LRQ_ERR_ARGUMENT;
    *key = (const char *)file->meta[index].key;
    *key_len = file->meta[index].key_len;
    *value = (const char *)file->meta[index].value;
    *value_len = file->meta[index].value_len;
    return LRQ_OK;
}

int lrq_file_tensor(const lrq_file *const file, const uint64_t tensor, lrq_tensor_info *const info)
{
    const tensor_rec *t;

    if (file == NULL || info == NULL || tensor >= file->n_tensors)
        return LRQ_ERR_ARGUMENT;
    t = &file->tensors[tensor];
    memset(info, 0, sizeof *info);
    info->name = (const char *)t->name;
    info->name_len = t->name_len;
    info->ndim = t->ndim;
    memcpy(info->shape, t->shape, sizeof t->shape);
    memcpy(info->tile_shape, t->tile_shape, sizeof t->tile_shape);
    memcpy(info->grid, t->grid, sizeof t->grid);
    info->dtype = t->dtype;
    info->panel = t->panel;
    info->tile_count = t->tile_count;
    info->has_rel_error = t->has_rel_error;
    info->rel_error = t->rel_error;
    info->encoder = t->encoder;
    info->encoder_len = t->encoder_len;
    return LRQ_OK;
}

int lrq_file_find_tensor(const lrq_file *const file, const char *const name,
                         const size_t name_len, uint64_t *const index)
{
    tensor_rec key;
    uint64_t lo = 0, hi;

    if (file == NULL || index == NULL || (name == NULL && name_len != 0) ||
        name_len > LRQ_NAME_BYTES_MAX)
        return LRQ_ERR_ARGUMENT;
    key.name = (const uint8_t *)name;
    key.name_len = (uint32_t)name_len;
    hi = file->n_tensors;
    while (lo < hi) {
        const uint64_t mid = lo + (hi - lo) / 2;
        const int cmp = name_cmp(&file->tensors[file->by_name[mid]], &key);
        if (cmp == 0) {
            *index = file->by_name[mid];
            return LRQ_OK;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return LRQ_ERR_ARGUMENT;
}

int lrq_file_tile(const lrq_file *const file, const uint64_t tensor, const uint64_t tile,
                  lrq_tile_info *const info)
{
    const tensor_rec *t;
    const tile_rec *tl;
    unsigned s;

    if (file == NULL || info == NULL || tensor >= file->n_tensors ||
        tile >= file->tensors[tensor].tile_count)
        return LRQ_ERR_ARGUMENT;
    t = &file->tensors[tensor];
    tl = &file->tiles[t->first_tile + tile];
    memset(info, 0, sizeof *info);
    info->scheme = tl->scheme;
    info->ndim = t->ndim;
    tile_geometry(t, tile, info->origin, info->shape);
    if (tl->scheme == LRQ_SCHEME_DENSE) {
        info->storage = tl->storage;
    } else if (tl->scheme == LRQ_SCHEME_SIGNCUT) {
        info->width = tl->width;
        info->c_scale = tl->c16 ? tl->c_scale : 0.0f;
    } else {
        info->rank = tl->width;
        info->bits_l = tl->bits_l;
        info->bits_r = tl->bits_r;
        info->group = tl->group;
        info->scale_l = tl->scale_l;
        info->scale_r = tl->scale_r;
    }
    info->section_count = scheme_sections[tl->scheme].count;
    for (s = 0; s < info->section_count; s++) {
        const section_rec *const sr = &file->sections[tl->first_section + s];
        info->section_kind[s] = sr->kind;
        info->section_offset[s] = sr->offset;
        info->section_length[s] = sr->length;
        info->section_crc32c[s] = sr->crc;
    }
    return LRQ_OK;
}

int lrq_file_section(lrq_file *const file, const uint64_t tensor, const uint64_t tile,
                     const unsigned section, const void **const data, uint64_t *const length,
                     char *const detail, const size_t detail_size)
{
    const tile_rec *tl;
    const section_rec *sr;
    int rc;

    (void)lrq_detail(detail, detail_size, LRQ_OK, "%s", "");
    if (file == NULL || data == NULL || length == NULL || tensor >= file->n_tensors ||
        tile >= file->tensors[tensor].tile_count)
        return LRQ_ERR_ARGUMENT;
    tl = &file->tiles[file->tensors[tensor].first_tile + tile];
    if (section >= scheme_sections[tl->scheme].count)
        return LRQ_ERR_ARGUMENT;
    rc = ensure_section(file, tensor, tile, tl->first_section + section, SECTION_CHECKED, detail,
                        detail_size);
    if (rc != LRQ_OK)
        return rc;
    sr = &file->sections[tl->first_section + section];
    *data = file->data + sr->offset;
    *length = sr->length;
    return LRQ_OK;
}
