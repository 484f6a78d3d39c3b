/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "lrq.h"
#include "common/internal.h"
#include "format/msgpack_reader.h"

/* msgpack stores multi-byte numbers big-endian (spec §1.4 exempts the header
 * from the file's little-endian rule). */
static uint64_t load_be(const uint8_t *const p, const unsigned n)
{
    uint64_t v = 0;
    unsigned i;
    for (i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Bit-exact reinterpretation without aliasing rules being an issue. */
static double f32_bits_to_double(const uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return (double)f;
}

static double f64_bits_to_double(const uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* The shape of a head: how many bytes of length or value follow the type
 * byte, and what they mean.  Working from one table keeps mp_read and the
 * checker agreeing on every encoding. */
typedef enum {
    HEAD_BAD,      /* 0xC1: never used */
    HEAD_BIN,      /* bin 8/16/32 */
    HEAD_EXT,      /* ext 8/16/32 and fixext */
    HEAD_OK
} head_class;

static int need(const mp_reader *const r, const uint64_t n)
{
    return n <= r->size - r->pos; /* pos <= size always holds */
}

/* Decode the head at r->pos.  On success r->pos is past the head (and past
 * the bytes of a str).  *cls reports disallowed types so that the checker can
 * name the rule; mp_read treats them as plain format errors. */
static int read_head(mp_reader *const r, mp_value *const v, head_class *const cls)
{
    unsigned t, n = 0;
    uint64_t x;

    memset(v, 0, sizeof *v);
    *cls = HEAD_OK;
    v->at = r->pos;
    if (!need(r, 1))
        return LRQ_ERR_FORMAT;
    t = r->base[r->pos++];

    if (t <= 0x7F) { /* positive fixint */
        v->kind = MP_INT;
        v->u = t;
        return LRQ_OK;
    }
    if (t >= 0xE0) { /* negative fixint */
        v->kind = MP_INT;
        v->neg = 1;
        v->i = (int64_t)t - 256;
        return LRQ_OK;
    }
    if (t <= 0x8F || (t >= 0xDE && t <= 0xDF)) {
        v->kind = MP_MAP;
        n = t <= 0x8F ? 0 : t == 0xDE ? 2 : 4;
    } else if (t <= 0x9F || (t >= 0xDC && t <= 0xDD)) {
        v->kind = MP_ARRAY;
        n = t <= 0x9F ? 0 : t == 0xDC ? 2 : 4;
    } else if (t <= 0xBF || (t >= 0xD9 && t <= 0xDB)) {
        v->kind = MP_STR;
        n = t <= 0xBF ? 0 : 1u << (t - 0xD9);
    } else {
        switch (t) {
        case 0xC0:
            v->kind = MP_NIL;
            return LRQ_OK;
        case 0xC2:
        case 0xC3:
            v->kind = MP_BOOL;
            v->u = t & 1u;
            return LRQ_OK;
        case 0xCA:
        case 0xCB:
            n = t == 0xCA ? 4 : 8;
            if (!need(r, n))
                return LRQ_ERR_FORMAT;
            x = load_be(r->base + r->pos, n);
            r->pos += n;
            v->kind = MP_FLOAT;
            v->f64 = t == 0xCB;
            v->f = v->f64 ? f64_bits_to_double(x) : f32_bits_to_double((uint32_t)x);
            return LRQ_OK;
        case 0xCC: case 0xCD: case 0xCE: case 0xCF:
        case 0xD0: case 0xD1: case 0xD2: case 0xD3:
            n = 1u << (t & 3u);
            if (!need(r, n))
                return LRQ_ERR_FORMAT;
            x = load_be(r->base + r->pos, n);
            r->pos += n;
            v->kind = MP_INT;
            if (t >= 0xD0 && (x >> (8 * n - 1)) != 0) {
                /* A signed encoding with its sign bit set.  Sign-extend in
                 * unsigned arithmetic; ext is then V + 2^64 for the value V,
                 * and V + 2^63 lies in [0, 2^63), so both conversions below
                 * are exact and no signed operation overflows. */
                const uint64_t ext = n == 8 ? x : x | (~UINT64_C(0) << (8 * n));
                v->neg = 1;
                v->i = (int64_t)(ext - (UINT64_C(1) << 63)) - INT64_MAX - 1;
            } else {
                v->u = x; /* also a non-negative value in an int encoding */
            }
            return LRQ_OK;
        case 0xC1:
            *cls = HEAD_BAD;
            return LRQ_ERR_FORMAT;
        case 0xC4: case 0xC5: case 0xC6:
            *cls = HEAD_BIN;
            return LRQ_ERR_FORMAT;
        default: /* 0xC7-0xC9 ext, 0xD4-0xD8 fixext */
            *cls = HEAD_EXT;
            return LRQ_ERR_FORMAT;
        }
    }

    /* str, array, map: a length or count in the low bits or in n bytes. */
    if (n == 0) {
        x = t & (v->kind == MP_STR ? 0x1Fu : 0x0Fu);
    } else {
        if (!need(r, n))
            return LRQ_ERR_FORMAT;
        x = load_be(r->base + r->pos, n);
        r->pos += n;
    }
    if (v->kind == MP_STR) {
        v->len = (uint32_t)x; /* x < 2^32: at most 4 length bytes */
        if (!need(r, x))
            return LRQ_ERR_FORMAT; /* v->len stays set, for the message */
        v->str = r->base + r->pos;
        r->pos += (size_t)x;
    } else {
        v->count = (uint32_t)x;
    }
    return LRQ_OK;
}

int mp_read(mp_reader *const r, mp_value *const v)
{
    head_class cls;
    return read_head(r, v, &cls);
}

int mp_skip(mp_reader *const r)
{
    /* Values still to step over.  A container adds its children; one value
     * is at most 2 * 2^32 children, so the counter cannot overflow 64 bits
     * before the buffer runs out and a read fails. */
    uint64_t pending = 1;

    while (pending > 0) {
        mp_value v;
        const int rc = mp_read(r, &v);
        if (rc != LRQ_OK)
            return rc;
        pending--;
        if (v.kind == MP_ARRAY)
            pending += v.count;
        else if (v.kind == MP_MAP)
            pending += 2 * (uint64_t)v.count;
    }
    return LRQ_OK;
}

int mp_str_is(const mp_value *const v, const char *const s)
{
    const size_t n = strlen(s);
    return v->kind == MP_STR && v->len == n && memcmp(v->str, s, n) == 0;
}

/* RFC 3629, as the table of its section 4: the second byte's range depends on
 * the lead byte, which is what excludes overlong forms, the surrogates
 * U+D800-U+DFFF and code points above U+10FFFF. */
static int utf8_valid(const uint8_t *p, size_t n)
{
    while (n > 0) {
        const unsigned c = *p;
        unsigned len, lo = 0x80, hi = 0xBF, i;

        if (c < 0x80) {
            p++;
            n--;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            len = 2;
        else if (c >= 0xE0 && c <= 0xEF)
            len = 3;
        else if (c >= 0xF0 && c <= 0xF4)
            len = 4;
        else
            return 0;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
        else if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
        if (n < len || p[1] < lo || p[1] > hi)
            return 0;
        for (i = 2; i < len; i++)
            if (p[i] < 0x80 || p[i] > 0xBF)
                return 0;
        p += len;
        n -= len;
    }
    return 1;
}

/* One open container of the checker's stack.  Maps remember their keys, at
 * most LRQ_MP_MAX_MAP, for the duplicate check: a quadratic scan over at most
 * 64 keys costs less than any hash table, and needs no allocation. */
typedef struct {
    uint64_t remaining; /* child values still to read (2 per map entry) */
    int is_map;
    unsigned nkeys;
    const uint8_t *key[LRQ_MP_MAX_MAP];
    uint32_t key_len[LRQ_MP_MAX_MAP];
} check_frame;

int mp_check_header(const uint8_t *const p, const size_t size, char *const detail,
                    const size_t detail_size)
{
    /* Static size, about 6.5 KiB: fine on any thread's stack. */
    check_frame stack[LRQ_MP_MAX_DEPTH];
    unsigned depth = 0; /* number of open containers */
    mp_reader r;
    int first = 1;

    r.base = p;
    r.size = size;
    r.pos = 0;
    for (;;) {
        mp_value v;
        head_class cls;
        check_frame *const top = depth ? &stack[depth - 1] : NULL;
        const int is_key = top != NULL && top->is_map && top->remaining % 2 == 0;
        const size_t at = r.pos;

        if (read_head(&r, &v, &cls) != LRQ_OK) {
            if (cls == HEAD_BAD)
                return lrq_detail(detail, detail_size, LRQ_ERR_FORMAT,
                                  "[HDR-2] header byte %zu is the unused msgpack type 0xC1", at);
            if (cls != HEAD_OK)
                return lrq_detail(detail, detail_size, LRQ_ERR_FORMAT,
                                  "[HDR-2] header byte %zu starts a msgpack %s value, which the "
                                  "format does not allow", at, cls == HEAD_BIN ? "bin" : "ext");
            /* A str whose bytes are missing still had its length read:
             * when that length is over the limit, [LIM-6] names the problem
             * whatever the size of the input. */
            if (v.kind == MP_STR && v.len > LRQ_MP_MAX_STR)
                return lrq_detail(detail, detail_size, LRQ_ERR_FORMAT,
                                  "[LIM-6] header string at byte %zu has %u bytes; the limit "
                                  "is %u", at, v.len, LRQ_MP_MAX_STR);
            return lrq_detail(detail, detail_size, LRQ_ERR_FORMAT,
                              "[HDR-1] the header ends inside the msgpack value at byte %zu "
                              "(it is cut short or a length is wrong)", at);
        }
        if (first && v.kind != MP_MAP)
            return lrq_detail(detail, detail_size, LRQ_ERR_FORMAT,
                              "[HDR-1] the header is not a msgpack map");
        first = 0;

        if (is_key) {
            unsigned k;
            if (v.kind != MP_STR)
                return lrq_detail(detail, detail_size, LRQ_ERR_FORMAT,
                                  "[HDR-2] the map key at header byte %zu is not a string", at);
            for (k = 0; k < top->nkeys; k++)
                if (top->key_len[k] == v.len && memcmp(top->key[k], v.str, v.len) == 0)
                    return lrq_detail(detail, detail_size, LRQ_ERR_FORMAT,
                                      "[HDR-4] a header map has the key '%.*s' twice",
                                      (int)(v.len < 64 ? v.len : 64), (const char *)v.str);
            /* nkeys < 64 here: the map's count was checked against LIM-1. */
            top->key[top->nkeys] = v.str;
            top->key_len[top->nkeys] = v.len;
            top->nkeys++;
        }
        if (v.kind == MP_STR) {
            if (v.len > LRQ_MP_MAX_STR)
                return lrq_detail(detail, detail_size, LRQ_ERR_FORMAT,
                                  "[LIM-6] header string at byte %zu has %u bytes; the limit is %u",
                                  at, v.len, LRQ_MP_MAX_STR);
            if (!utf8_valid(v.str, v.len))
                return lrq_detail(detail, detail_size, LRQ_ERR_FORMAT,
                                  "[HDR-3] header string at byte %zu is not well-formed UTF-8", at);
        }
        if (top != NULL)
            top->remaining--;

        if (v.kind == MP_ARRAY || v.kind == MP_MAP) {
            const uint64_t children = v.kind == MP_MAP ? 2 * (uint64_t)v.count : v.count;
            check_frame *f;
            if (v.kind == MP_MAP && v.count > LRQ_MP_MAX_MAP)
                return lrq_detail(detail, detail_size, LRQ_ERR_FORMAT,
                                  "[LIM-1] header map at byte %zu has %u entries; the limit is %u",
                                  at, v.count, LRQ_MP_MAX_MAP);
            if (v.kind == MP_ARRAY && v.count > LRQ_MP_MAX_ARRAY)
                return lrq_detail(detail, detail_size, LRQ_ERR_FORMAT,
                                  "[LIM-2] header array at byte %zu has %u elements; the limit "
                                  "is %u", at, v.count, LRQ_MP_MAX_ARRAY);
            if (depth == LRQ_MP_MAX_DEPTH)
                return lrq_detail(detail, detail_size, LRQ_ERR_FORMAT,
                                  "[LIM-3] header containers nest deeper than %d (at byte %zu)",
                                  LRQ_MP_MAX_DEPTH, at);
            /* [LIM-7]: every child takes at least one byte, so a count the
             * remaining bytes cannot hold is refused before it is trusted. */
            if (children > size - r.pos)
                return lrq_detail(detail, detail_size, LRQ_ERR_FORMAT,
                                  "[HDR-1] the %s at header byte %zu declares %llu values but "
                                  "only %zu bytes follow", v.kind == MP_MAP ? "map" : "array",
                                  at, (unsigned long long)children, size - r.pos);
            f = &stack[depth++];
            f->remaining = children;
            f->is_map = v.kind == MP_MAP;
            f->nkeys = 0;
        }
        /* Close every container whose last child this value was. */
        while (depth > 0 && stack[depth - 1].remaining == 0)
            depth--;
        if (depth == 0)
            break;
    }
    if (r.pos != size)
        return lrq_detail(detail, detail_size, LRQ_ERR_FORMAT,
                          "[HDR-1] %zu bytes follow the header map inside the header",
                          size - r.pos);
    return LRQ_OK;
}
