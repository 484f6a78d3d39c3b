/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "lrq.h"
#include "common/internal.h"

#define ROW_TILE 16u

/* Everything the word order depends on, validated once so the walk below can
 * do its index arithmetic without further checks: every offset it forms is
 * smaller than nbytes, which is known to fit. */
typedef struct {
    uint64_t rows;
    uint64_t k;
    uint64_t chunks;       /* Kc: chunks in the padded reduction */
    uint64_t panel_chunks; /* KP / chunk_elems */
    uint64_t nbytes;
    unsigned chunk_elems;  /* 16 (1-bit) or 4 (8-bit) */
    unsigned word_bytes;   /* 2 or 4 */
} layout_geom;

static int geom_init(layout_geom *const g, const uint64_t rows, const uint64_t k,
                     const int elem_bits, const uint64_t panel)
{
    const uint64_t k16 = k / 16 + (k % 16 != 0);
    uint64_t row_bytes;

    if (elem_bits != 1 && elem_bits != 8)
        return LRQ_ERR_ARGUMENT;
    if (panel < LRQ_PANEL_MIN || panel > LRQ_PANEL_MAX || panel % 64 != 0)
        return LRQ_ERR_ARGUMENT;
    g->rows = rows;
    g->k = k;
    g->chunk_elems = elem_bits == 1 ? 16u : 4u;
    g->word_bytes = elem_bits == 1 ? 2u : 4u;
    /* k16 <= 2^60, so chunks cannot overflow, but a row of 8-bit words
     * (16 bytes per 16 elements) can. */
    g->chunks = k16 * (16u / g->chunk_elems);
    g->panel_chunks = panel / g->chunk_elems;
    if (__builtin_mul_overflow(g->chunks, (uint64_t)g->word_bytes, &row_bytes) ||
        __builtin_mul_overflow(rows, row_bytes, &g->nbytes))
        return LRQ_ERR_ARGUMENT;
    return LRQ_OK;
}

int lrq_layout_size(const uint64_t rows, const uint64_t k, const int elem_bits,
                    const uint64_t panel, uint64_t *const nbytes)
{
    layout_geom g;
    int rc;

    if (nbytes == NULL)
        return LRQ_ERR_ARGUMENT;
    rc = geom_init(&g, rows, k, elem_bits, panel);
    if (rc == LRQ_OK)
        *nbytes = g.nbytes;
    return rc;
}

/* The plain-side array must be addressable: rows*k elements of elem_size
 * bytes, all within size_t, and present unless it is empty. */
static int check_plain(const layout_geom *const g, const void *const plain,
                       const size_t elem_size)
{
    uint64_t count, bytes;

    if (__builtin_mul_overflow(g->rows, g->k, &count) ||
        __builtin_mul_overflow(count, (uint64_t)elem_size, &bytes) ||
        bytes > SIZE_MAX)
        return LRQ_ERR_ARGUMENT;
    if (plain == NULL && bytes != 0)
        return LRQ_ERR_ARGUMENT;
    return LRQ_OK;
}

/* Fixed-endian loads and stores: the layout is little-endian on disk whatever
 * the host, and memcpy lets the compiler emit plain unaligned accesses. */
static uint64_t load_le64(const uint8_t *const p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static void store_le64(uint8_t *const p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, sizeof v);
}

#define LOW_BITS 0x0101010101010101u

/* Eight 0/1 bytes -> eight bits, byte j to bit j.  The multiplier places a
 * copy of byte j at bit 56 + j; the other partial products land below bit 56
 * or above bit 63 and never carry into the top byte (checked exhaustively
 * over all 256 patterns when this was written). */
static unsigned gather8(const uint64_t bytes)
{
    return (unsigned)((bytes * UINT64_C(0x0102040810204080)) >> 56);
}

/* Eight bits -> eight 0/1 bytes: broadcast the byte, keep bit j in byte j,
 * then turn each non-zero byte into 1 by carrying into its top bit (adding
 * 0x7F to a byte of at most 0x80 never carries into the next byte). */
static uint64_t spread8(const unsigned bits)
{
    const uint64_t mask = (uint64_t)bits * LOW_BITS & UINT64_C(0x8040201008040201);
    return ((mask + UINT64_C(0x7F7F7F7F7F7F7F7F)) >> 7) & LOW_BITS;
}

/* One word for each op.  n is the number of real elements in the chunk
 * (0..chunk_elems); the rest of the word is padding. */

static int pack_sign_word(const uint8_t *const e, const unsigned n, uint8_t *const w)
{
    unsigned bits = 0, b;

    if (n == 16) {
        const uint64_t lo = load_le64(e), hi = load_le64(e + 8);
        if (((lo | hi) & ~LOW_BITS) != 0)
            return LRQ_ERR_ARGUMENT;
        bits = gather8(lo) | gather8(hi) << 8;
    } else {
        for (b = 0; b < n; b++) {
            if (e[b] > 1)
                return LRQ_ERR_ARGUMENT;
            bits |= (unsigned)e[b] << b;
        }
    }
    w[0] = (uint8_t)bits;
    w[1] = (uint8_t)(bits >> 8);
    return LRQ_OK;
}

static int unpack_sign_word(const uint8_t *const w, const unsigned n, uint8_t *const e)
{
    const unsigned bits = (unsigned)w[0] | (unsigned)w[1] << 8;
    unsigned b;

    if (n == 16) {
        store_le64(e, spread8(bits & 0xFFu));
        store_le64(e + 8, spread8(bits >> 8));
        return LRQ_OK;
    }
    if ((bits >> n) != 0)
        return LRQ_ERR_PADDING;
    for (b = 0; b < n; b++)
        e[b] = (uint8_t)((bits >> b) & 1u);
    return LRQ_OK;
}

static int unpack_sign_word_f32(const uint8_t *const w, const unsigned n, float *const e)
{
    const unsigned bits = (unsigned)w[0] | (unsigned)w[1] << 8;
    unsigned b;

    if (n < 16 && (bits >> n) != 0)
        return LRQ_ERR_PADDING;
    for (b = 0; b < n; b++) {
        /* The stored bit is exactly the IEEE sign of the value: OR it onto
         * the pattern of 1.0f instead of branching. */
        const uint32_t u = UINT32_C(0x3F800000) | (uint32_t)((bits >> b) & 1u) << 31;
        memcpy(&e[b], &u, sizeof u);
    }
    return LRQ_OK;
}

/* The constant-size memcpy of a full word is the common case; it compiles to
 * a single move, where the variable-size one is a library call. */
static void pack_byte_word(const uint8_t *const e, const unsigned n, uint8_t *const w)
{
    if (n == 4) {
        memcpy(w, e, 4);
        return;
    }
    memcpy(w, e, n);
    memset(w + n, 0, 4 - n);
}

static int unpack_byte_word(const uint8_t *const w, const unsigned n, uint8_t *const e)
{
    unsigned b;

    if (n == 4) {
        memcpy(e, w, 4);
        return LRQ_OK;
    }
    for (b = n; b < 4; b++)
        if (w[b] != 0)
            return LRQ_ERR_PADDING;
    memcpy(e, w, n);
    return LRQ_OK;
}

/* What lrq_layout_check() needs from the walk: the code limit going in, and
 * the offset of the first bad word coming out. */
typedef struct {
    unsigned code_limit;
    uint64_t bad_offset;
} byte_check;

static int check_byte_word(const uint8_t *const w, const unsigned n, const uint64_t off,
                           byte_check *const state)
{
    unsigned b;

    for (b = 0; b < 4; b++) {
        if (b >= n ? w[b] != 0 : w[b] >= state->code_limit) {
            state->bad_offset = off;
            return b >= n ? LRQ_ERR_PADDING : LRQ_ERR_FORMAT;
        }
    }
    return LRQ_OK;
}

typedef enum {
    OP_PACK_SIGN,
    OP_PACK_BYTE,
    OP_UNPACK_SIGN,
    OP_UNPACK_BYTE,
    OP_SIGNS_F32,
    OP_CHECK_BYTE, /* plain_out is a byte_check */
    OP_PACK_BITROWS
} layout_op;

/* Rows of bits as the encoders keep them (see lrq_layout_pack_bitrows). */
typedef struct {
    const uint64_t *bits;
    uint64_t row_words;
} bit_rows;

/* Chunks start at multiples of 16 elements, so a chunk never straddles two
 * 64-bit words; bits past the row's end are masked off. */
static void pack_bitrow_word(const bit_rows *const src, const uint64_t r, const uint64_t col,
                             const unsigned n, uint8_t *const w)
{
    unsigned bits = 0;
    if (n != 0) {
        const uint64_t word = src->bits[r * src->row_words + col / 64];
        bits = (unsigned)(word >> (col % 64)) & 0xFFFFu;
        if (n < 16)
            bits &= (1u << n) - 1u;
    }
    w[0] = (uint8_t)bits;
    w[1] = (uint8_t)(bits >> 8);
}

/* The one place that knows the word order (spec §9.3): every op walks
 * the packed side sequentially within a (panel, row tile) block and the plain
 * side a row at a time, so both stay in cache.  The op switch sits in the
 * inner loop for brevity; it is loop-invariant, and -O3 unswitches it. */
static int layout_walk(const layout_geom *const g, const layout_op op,
                       const uint8_t *const packed_in, uint8_t *const packed_out,
                       const uint8_t *const plain_in, void *const plain_out,
                       const bit_rows *const rows_in)
{
    const uint64_t ws = g->word_bytes, wc = g->chunk_elems;
    uint64_t c0, r0;

    for (c0 = 0; c0 < g->chunks; c0 += g->panel_chunks) {
        const uint64_t cp = g->chunks - c0 < g->panel_chunks ? g->chunks - c0 : g->panel_chunks;
        for (r0 = 0; r0 < g->rows; r0 += ROW_TILE) {
            const uint64_t h = g->rows - r0 < ROW_TILE ? g->rows - r0 : ROW_TILE;
            /* panel_base(p) + 16t * C_p * ws: all earlier panels are full. */
            const uint64_t base = (g->rows * c0 + r0 * cp) * ws;
            uint64_t i, c;
            for (i = 0; i < h; i++) {
                for (c = 0; c < cp; c++) {
                    const uint64_t off = base + (c * h + i) * ws;
                    const uint64_t col = (c0 + c) * wc;
                    const unsigned n = col >= g->k ? 0u
                                       : g->k - col < wc ? (unsigned)(g->k - col)
                                                         : (unsigned)wc;
                    /* Not formed when n == 0: it could point past the end of plain. */
                    const size_t at = n ? (size_t)((r0 + i) * g->k + col) : 0;
                    int rc = LRQ_OK;
                    switch (op) {
                    case OP_PACK_SIGN:
                        rc = pack_sign_word(plain_in + at, n, packed_out + off);
                        break;
                    case OP_PACK_BYTE:
                        pack_byte_word(plain_in + at, n, packed_out + off);
                        break;
                    case OP_UNPACK_SIGN:
                        rc = unpack_sign_word(packed_in + off, n, (uint8_t *)plain_out + at);
                        break;
                    case OP_UNPACK_BYTE:
                        rc = unpack_byte_word(packed_in + off, n, (uint8_t *)plain_out + at);
                        break;
                    case OP_SIGNS_F32:
                        rc = unpack_sign_word_f32(packed_in + off, n, (float *)plain_out + at);
                        break;
                    case OP_CHECK_BYTE:
                        rc = check_byte_word(packed_in + off, n, off, (byte_check *)plain_out);
                        break;
                    case OP_PACK_BITROWS:
                        pack_bitrow_word(rows_in, r0 + i, col, n, packed_out + off);
                        break;
                    }
                    if (rc != LRQ_OK)
                        return rc;
                }
            }
        }
    }
    return LRQ_OK;
}

int lrq_layout_pack(const uint8_t *const elements, const uint64_t rows, const uint64_t k,
                    const int elem_bits, const uint64_t panel, uint8_t *const out,
                    const size_t out_len)
{
    layout_geom g;
    int rc = geom_init(&g, rows, k, elem_bits, panel);

    if (rc == LRQ_OK)
        rc = check_plain(&g, elements, 1);
    if (rc != LRQ_OK)
        return rc;
    if ((uint64_t)out_len < g.nbytes)
        return LRQ_ERR_BUFFER_SIZE;
    if (out == NULL && g.nbytes != 0)
        return LRQ_ERR_ARGUMENT;
    return layout_walk(&g, elem_bits == 1 ? OP_PACK_SIGN : OP_PACK_BYTE, NULL, out,
                       elements, NULL, NULL);
}

/* Shared front half of both unpackers, in the documented order: arguments,
 * then the exact length, then (in the walk) the padding. */
static int unpack_checked(const uint8_t *const packed, const size_t packed_len,
                          const uint64_t rows, const uint64_t k, const int elem_bits,
                          const uint64_t panel, void *const plain, const size_t elem_size,
                          const layout_op op)
{
    layout_geom g;
    int rc = geom_init(&g, rows, k, elem_bits, panel);

    if (rc == LRQ_OK)
        rc = check_plain(&g, plain, elem_size);
    if (rc != LRQ_OK)
        return rc;
    if (packed == NULL && packed_len != 0)
        return LRQ_ERR_ARGUMENT;
    if ((uint64_t)packed_len != g.nbytes)
        return LRQ_ERR_BUFFER_SIZE;
    return layout_walk(&g, op, packed, NULL, NULL, plain, NULL);
}

int lrq_layout_unpack(const uint8_t *const packed, const size_t packed_len,
                      const uint64_t rows, const uint64_t k, const int elem_bits,
                      const uint64_t panel, uint8_t *const elements)
{
    return unpack_checked(packed, packed_len, rows, k, elem_bits, panel, elements, 1,
                          elem_bits == 1 ? OP_UNPACK_SIGN : OP_UNPACK_BYTE);
}

int lrq_layout_unpack_signs_f32(const uint8_t *const packed, const size_t packed_len,
                                const uint64_t rows, const uint64_t k, const uint64_t panel,
                                float *const out)
{
    return unpack_checked(packed, packed_len, rows, k, 1, panel, out, sizeof(float),
                          OP_SIGNS_F32);
}

/* The byte offset of word(r, c), spec §9.3.  Every term is below nbytes,
 * which geom_init() showed to fit, so nothing here can overflow. */
static uint64_t word_offset(const layout_geom *const g, const uint64_t r, const uint64_t c)
{
    const uint64_t cpp = g->panel_chunks, p = c / cpp, t = r / ROW_TILE;
    const uint64_t c_p = (g->chunks - p * cpp < cpp ? g->chunks - p * cpp : cpp);
    const uint64_t h_t = (g->rows - ROW_TILE * t < ROW_TILE ? g->rows - ROW_TILE * t : ROW_TILE);

    return (g->rows * (p * cpp) + ROW_TILE * t * c_p + (c - p * cpp) * h_t + r % ROW_TILE) *
           g->word_bytes;
}

int lrq_layout_check(const uint8_t *const packed, const uint64_t packed_len, const uint64_t rows,
                     const uint64_t k, const int elem_bits, const uint64_t panel,
                     const unsigned code_limit, uint64_t *const bad_offset)
{
    layout_geom g;
    byte_check state;
    int rc = geom_init(&g, rows, k, elem_bits, panel);
    uint64_t r;

    if (rc != LRQ_OK)
        return rc;
    if (packed == NULL && packed_len != 0)
        return LRQ_ERR_ARGUMENT;
    if (packed_len != g.nbytes)
        return LRQ_ERR_BUFFER_SIZE;
    if (elem_bits == 1) {
        /* Sign bits cannot be out of range, and only the last chunk of a
         * row holds padding: one word per row is all there is to read,
         * which keeps a lazy first-use check of a large matrix cheap. */
        const unsigned n = (unsigned)(k % 16);
        if (n == 0)
            return LRQ_OK;
        for (r = 0; r < rows; r++) {
            const uint64_t off = word_offset(&g, r, g.chunks - 1);
            const unsigned bits = (unsigned)packed[off] | (unsigned)packed[off + 1] << 8;
            if ((bits >> n) != 0) {
                if (bad_offset != NULL)
                    *bad_offset = off;
                return LRQ_ERR_PADDING;
            }
        }
        return LRQ_OK;
    }
    state.code_limit = code_limit;
    state.bad_offset = 0;
    rc = layout_walk(&g, OP_CHECK_BYTE, packed, NULL, NULL, &state, NULL);
    if (rc != LRQ_OK && bad_offset != NULL)
        *bad_offset = state.bad_offset;
    return rc;
}

int lrq_layout_pack_bitrows(const uint64_t *const bits, const uint64_t row_words,
                            const uint64_t rows, const uint64_t k, const uint64_t panel,
                            uint8_t *const out, const size_t out_len)
{
    const bit_rows src = {bits, row_words};
    layout_geom g;
    uint64_t need;
    int rc = geom_init(&g, rows, k, 1, panel);

    if (rc != LRQ_OK)
        return rc;
    if (row_words < (k + 63) / 64 || __builtin_mul_overflow(rows, row_words, &need))
        return LRQ_ERR_ARGUMENT;
    if (bits == NULL && need != 0)
        return LRQ_ERR_ARGUMENT;
    if ((uint64_t)out_len < g.nbytes)
        return LRQ_ERR_BUFFER_SIZE;
    if (out == NULL && g.nbytes != 0)
        return LRQ_ERR_ARGUMENT;
    return layout_walk(&g, OP_PACK_BITROWS, NULL, out, NULL, NULL, &src);
}
