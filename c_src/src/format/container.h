/* SPDX-License-Identifier: MIT */
/*
 * The reader's shared parts: the handle, the name tables and the steps of
 * spec §15, one file each (preamble.c, header.c, sections.c, file.c).
 *
 * The order of the checks is the decoding procedure of spec §15, because the
 * error a damaged file gets must not depend on the decoder: preamble, header
 * checksum, msgpack profile (msgpack_reader.c), header values, placement;
 * then, per section and before first use, checksum and content.  The pure-
 * Python reference parser (codec/lrq/reference/container.py) follows the
 * same order, and the tests hold the two to the same verdict on every file.
 */
#ifndef LRQ_FORMAT_CONTAINER_H
#define LRQ_FORMAT_CONTAINER_H

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
/* The flags lrq_file_open_buffer() and lrq_file_verify() know. */
#define LRQ_FMT_KNOWN_FLAGS (LRQ_FILE_VERIFY_CHECKSUMS | LRQ_FILE_VERIFY_CONTENT)
/* printf arguments for "%.*s" quoting at most 32 bytes of a str value. */
#define QUOTE(v) (int)((v).len < 32 ? (v).len : 32), (const char *)(v).str


/* Indexed by LRQ_DTYPE_*; entry 0 is no type. */
typedef struct {
    const char *name;
    unsigned size;
    int is_float;
} lrq_fmt_dtype;
/* The sections of a scheme, in the order the spec lists them (§10). */
typedef struct {
    unsigned count;
    int kind[LRQ_MAX_SECTIONS];
} lrq_fmt_sections;

#define DTYPE_COUNT 14u
#define SCHEME_COUNT 5u
#define KIND_COUNT 12u
extern const lrq_fmt_dtype lrq_fmt_dtypes[DTYPE_COUNT];
extern const char *const lrq_fmt_scheme_names[SCHEME_COUNT]; /* by LRQ_SCHEME_* */
extern const char *const lrq_fmt_kind_names[KIND_COUNT];     /* by LRQ_SECTION_* */
extern const lrq_fmt_sections lrq_fmt_scheme_sections[SCHEME_COUNT];
/* How many of a scheme's sections (its first ones) a group shares (§10.4). */
extern const unsigned lrq_fmt_shared_sections[SCHEME_COUNT];

/* The handle */

/* Verification progress of a section.  Read with an acquire load and
 * written with a release store (__atomic builtins: C99 has no atomics), so
 * the fast path of lrq_fmt_ensure_section() needs no lock; the verification itself
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
    unsigned bits, scale_bits; /* quant (its group is `group`) */
    float scale;               /* quant: the super-scale */
    uint64_t first_section; /* its own sections; see lrq_fmt_tile_section() */
    uint32_t in_group;      /* a member tile (spec §10.4): its group's index + 1; else 0 */
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

/* A group (spec §10.4).  Its shared parameters are held in the form of a
 * tile's (width, or rank, bits_r, group, scale_r), so a member tile copies
 * them; its shared sections are the first `shared` sections of its scheme
 * (lrq_fmt_shared_sections), stored from first_section on. */
typedef struct {
    const uint8_t *name;
    uint32_t name_len;
    int scheme;
    uint64_t columns, panel;
    tile_rec shared;
    uint64_t first_member; /* into lrq_file.members */
    uint32_t member_count;
    uint64_t first_section;
} group_rec;

/* One name of a group's "members", and the tensor it names once found. */
#define MEMBER_UNMATCHED UINT64_MAX
typedef struct {
    const uint8_t *name;
    uint32_t name_len;
    uint32_t group;
    uint64_t tensor; /* MEMBER_UNMATCHED until the tensor is read */
} member_rec;

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
    group_rec *groups; /* format 1.2 groups (groups.c) */
    uint64_t n_groups, cap_groups;
    member_rec *members;
    uint64_t n_members, cap_members;
    uint32_t *members_by_name; /* member indices sorted by name */

    meta_rec meta[LRQ_MP_MAX_MAP];
    unsigned n_meta;

    int locks_ready;
    pthread_mutex_t locks[LOCK_STRIPES];
};


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

/* Small helpers */

static inline uint64_t load_le(const uint8_t *const p, const unsigned n)
{
    uint64_t v = 0;
    unsigned i;
    for (i = n; i > 0; i--)
        v = v << 8 | p[i - 1];
    return v;
}

static inline uint64_t ceil_div(const uint64_t a, const uint64_t b)
{
    return a / b + (a % b != 0);
}

/* 2 * rows * ceil(k/16): the bytes of one sign matrix (spec §9.1). */
static inline int sign_matrix_bytes(const uint64_t rows, const uint64_t k, uint64_t *const out)
{
    return __builtin_mul_overflow(rows, 2 * ceil_div(k, 16), out);
}

/* The bytes of an lplr code section (spec §10.3): b bit-planes for b <= 4,
 * one byte matrix (16 * rows * ceil(k/16)) for b >= 5. */
static inline int code_bytes(const uint64_t rows, const uint64_t k, const unsigned bits,
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
static inline float to_binary32(const double d)
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

static inline int finite32(const float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u & UINT32_C(0x7F800000)) != UINT32_C(0x7F800000);
}

static inline int is_power_of_two(const uint64_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

/* Names compare by length, then bytes: an order for sorting and search. */
static inline int lrq_fmt_bytes_cmp(const uint8_t *const a, const uint32_t a_len,
                                    const uint8_t *const b, const uint32_t b_len)
{
    if (a_len != b_len)
        return a_len < b_len ? -1 : 1;
    return memcmp(a, b, a_len);
}

static inline int dtype_code(const mp_value *const v)
{
    size_t i;
    for (i = 1; i < DTYPE_COUNT; i++)
        if (mp_str_is(v, lrq_fmt_dtypes[i].name))
            return (int)i;
    return 0;
}

/* The steps (each file's banner says which part of spec §15). */
void *lrq_fmt_grow(void *const array, uint64_t *const cap, const uint64_t used, const size_t elem);
/* Sort `order` (n indices) by cmp(ctx, a, b), stably; LRQ_ERR_MEMORY if the
 * scratch array cannot be had. */
typedef int (*lrq_fmt_index_cmp)(const void *ctx, uint32_t a, uint32_t b);
int lrq_fmt_sort_indices(uint32_t *const order, const uint64_t n, const lrq_fmt_index_cmp cmp,
                         const void *const ctx);
/* The index in lrq_file.sections of section `s` (scheme order) of a tile:
 * a member tile's shared sections are its group's. */
static inline uint64_t lrq_fmt_tile_section(const lrq_file *const f, const tile_rec *const tl,
                                            const unsigned s)
{
    const unsigned shared = tl->in_group ? lrq_fmt_shared_sections[tl->scheme] : 0;
    if (s < shared)
        return f->groups[tl->in_group - 1].first_section + s;
    return tl->first_section + (s - shared);
}
int lrq_fmt_check_preamble(const uint8_t *const p, const size_t size, char *const detail,
                          const size_t dn);
void lrq_fmt_tile_geometry(const tensor_rec *const t, const uint64_t index, uint64_t *const origin,
                          uint64_t *const dims);
int lrq_fmt_name_cmp(const tensor_rec *const a, const tensor_rec *const b);
int lrq_fmt_section_lengths(const tensor_rec *const t, const tile_rec *const tl,
                            const uint64_t *const dims, uint64_t *const len);
int lrq_fmt_parse_header(parse_ctx *const c);
int lrq_fmt_check_placement(parse_ctx *const c);
int lrq_fmt_ensure_section(lrq_file *const f, const uint64_t tensor, const uint64_t tile,
                          const uint64_t index, const int level, char *const detail,
                          const size_t dn);

#endif /* LRQ_FORMAT_CONTAINER_H */
