/* SPDX-License-Identifier: MIT */
/*
 * A reader for the msgpack profile of the `.lrq` header (spec §5), private to
 * the C core.
 *
 * Reading happens in two passes over the header bytes, neither of which
 * recurses or allocates:
 *
 *   1. mp_check_header() walks the whole header once and enforces every rule
 *      of the profile: one object, a map, filling the bytes exactly ([HDR-1]);
 *      no bin, ext or 0xC1 and str keys only ([HDR-2]); well-formed UTF-8
 *      ([HDR-3]); no duplicate keys ([HDR-4]); the limits of [LIM-1],
 *      [LIM-2], [LIM-3] and [LIM-6].  Its only state is a stack of at most
 *      LRQ_MP_MAX_DEPTH frames of fixed size.
 *   2. The container parser then reads the values it needs with mp_read()
 *      and steps over the rest with mp_skip().  Both still check every read
 *      against the end of the buffer, so a bug in pass 1 cannot turn into an
 *      out-of-bounds read, but they no longer report profile violations.
 */
#ifndef LRQ_MSGPACK_READER_H
#define LRQ_MSGPACK_READER_H

#include <stddef.h>
#include <stdint.h>

#define LRQ_MP_MAX_DEPTH 8             /* [LIM-3] */
#define LRQ_MP_MAX_MAP (64u)           /* [LIM-1] */
#define LRQ_MP_MAX_ARRAY (1u << 20)    /* [LIM-2] */
#define LRQ_MP_MAX_STR (65535u)        /* [LIM-6] */

typedef enum {
    MP_NIL,
    MP_BOOL,
    MP_INT,   /* any integer encoding; see mp_value.neg */
    MP_FLOAT, /* float 32 or float 64; see mp_value.f64 */
    MP_STR,
    MP_ARRAY,
    MP_MAP
} mp_kind;

/* The head of one value.  Containers are not materialized: `count` says how
 * many elements (arrays) or key/value pairs (maps) follow the head. */
typedef struct {
    mp_kind kind;
    int neg;              /* MP_INT: 1 if the value is negative */
    uint64_t u;           /* MP_INT: the value when !neg; MP_BOOL: 0 or 1 */
    int64_t i;            /* MP_INT: the value when neg */
    double f;             /* MP_FLOAT: the value (float 32 widened exactly) */
    int f64;              /* MP_FLOAT: 1 for a float 64 encoding */
    const uint8_t *str;   /* MP_STR: the bytes, inside the header */
    uint32_t len;         /* MP_STR: byte length */
    uint32_t count;       /* MP_ARRAY, MP_MAP: element or pair count */
    size_t at;            /* offset of the value's first byte */
} mp_value;

/* A position in a header.  Copy it freely: it owns nothing. */
typedef struct {
    const uint8_t *base;
    size_t size;
    size_t pos;
} mp_reader;

/*
 * Pass 1: check that the `size` bytes at `p` are one header as §5 allows.
 * Returns 0 (LRQ_OK) or LRQ_ERR_FORMAT with a message naming the rule in
 * detail (which may be NULL).
 */
int mp_check_header(const uint8_t *p, size_t size, char *detail, size_t detail_size);

/* Read the head of the value at r->pos into *v and advance past it (past the
 * bytes of a str; to the first child of a container).  Returns 0, or
 * LRQ_ERR_FORMAT if the bytes run out or use a type outside the profile. */
int mp_read(mp_reader *r, mp_value *v);

/* Advance past one whole value, children included, without recursion. */
int mp_skip(mp_reader *r);

/* 1 if the str value v has exactly the bytes of the NUL-terminated s. */
int mp_str_is(const mp_value *v, const char *s);

#endif /* LRQ_MSGPACK_READER_H */
