/* SPDX-License-Identifier: MIT */
/*
 * Tiles (signcut, lplr and quant) as handles over borrowed section bytes: the
 * parameters and section lengths are checked here, the section contents by
 * the one validator of common/sections.c, which the reader uses as well.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "compute/tile.h"
#include "lrq.h"

static int host_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* [SEC-7] lengths: section `name` holds `len` bytes where the tile's
 * parameters need `need`, and is not NULL unless empty. */
static int section_length(const char *name, const void *data, const uint64_t len,
                          const uint64_t need, char *detail, const size_t dn)
{
    if (len != need)
        return lrq_detail(detail, dn, LRQ_ERR_BUFFER_SIZE, "section '%s' is %llu bytes; the "
                          "tile's parameters need %llu", name, (unsigned long long)len,
                          (unsigned long long)need);
    if (data == NULL && len != 0)
        return lrq_detail(detail, dn, LRQ_ERR_ARGUMENT, "section '%s' is NULL", name);
    return LRQ_OK;
}

/* Set up a factor of `bits` bits (1 for a signcut sign matrix) and check
 * its section length: b bit-planes for b <= 4, a byte matrix otherwise. */
static int kmat_init(lrq_kmat *km, const void *data, const size_t len, const uint64_t rows,
                     const uint64_t k, const int bits, const uint64_t panel, const char *name,
                     char *detail, const size_t dn)
{
    const uint64_t c16 = k / 16 + (k % 16 != 0);
    uint64_t plane, total;
    int rc;

    memset(km, 0, sizeof *km);
    if (__builtin_mul_overflow(rows, 2 * c16, &plane) ||
        __builtin_mul_overflow(plane, (uint64_t)(bits <= 4 ? bits : 8), &total))
        return lrq_detail(detail, dn, LRQ_ERR_ARGUMENT, "section '%s': the size of %llu x %llu "
                          "elements overflows", name, (unsigned long long)rows,
                          (unsigned long long)k);
    rc = section_length(name, data, len, total, detail, dn);
    if (rc != LRQ_OK)
        return rc;
    km->data = data;
    km->rows = (size_t)rows;
    km->k = (size_t)k;
    if (bits <= 4) {
        km->planes = bits;
        km->plane_bytes = (size_t)plane;
        km->kc = (size_t)c16;
        km->pc = (size_t)(panel / 16);
    } else {
        km->planes = 0;
        km->half = (float)((1u << bits) - 1) * 0.5f;
        km->kc = (size_t)(4 * c16);
        km->pc = (size_t)(panel / 4);
    }
    return LRQ_OK;
}

/* The content of a factor's section: padding ([LAY-1], [LAY-2]) and codes
 * ([LP-4]). */
static int check_factor(const lrq_kmat *m, const size_t len, const int bits, const uint64_t panel,
                        const char *name, char *detail, const size_t dn)
{
    char where[64];
    (void)snprintf(where, sizeof where, "section '%s'", name);
    return lrq_check_matrix(m->data, len, m->rows, m->k, (unsigned)bits, panel, where, detail, dn);
}

/* Scales of a factor: length (2 bytes per row and group) and [LP-3]. */
static int set_scales(lrq_kmat *m, const void *scales, const size_t len, const uint64_t group,
                      const char *name, char *detail, const size_t dn)
{
    const uint64_t groups = (m->k + group - 1) / group;
    char where[64];
    uint64_t need;
    int rc;

    if (__builtin_mul_overflow((uint64_t)m->rows, 2 * groups, &need))
        return lrq_detail(detail, dn, LRQ_ERR_ARGUMENT, "section '%s': the size overflows", name);
    rc = section_length(name, scales, len, need, detail, dn);
    if (rc != LRQ_OK)
        return rc;
    m->scales = scales;
    m->groups = (size_t)groups;
    m->gc = (size_t)(group / (m->planes > 0 ? 16 : 4));
    (void)snprintf(where, sizeof where, "section '%s'", name);
    return lrq_check_scales(m->scales, len, where, detail, dn);
}

static int panel_ok(const uint64_t panel)
{
    return panel >= LRQ_PANEL_MIN && panel <= LRQ_PANEL_MAX && panel % 64 == 0;
}

static int tile_new(lrq_tile **out, const int scheme, const uint64_t m, const uint64_t n,
                    const uint64_t inner, const uint64_t panel, char *detail, const size_t dn)
{
    if (out == NULL)
        return lrq_detail(detail, dn, LRQ_ERR_ARGUMENT, "no place for the tile (out is NULL)");
    *out = NULL;
    if (m > LRQ_DIM_MAX || n > LRQ_DIM_MAX || inner > LRQ_DIM_MAX)
        return lrq_detail(detail, dn, LRQ_ERR_ARGUMENT, "a tile of %llu x %llu with inner "
                          "dimension %llu: each must be at most 2^31 - 1",
                          (unsigned long long)m, (unsigned long long)n,
                          (unsigned long long)inner);
    if (!panel_ok(panel))
        return lrq_detail(detail, dn, LRQ_ERR_ARGUMENT, "[TEN-5] panel %llu is not a multiple "
                          "of 64 in [64, 2^20]", (unsigned long long)panel);
    if (!host_little_endian())
        return lrq_detail(detail, dn, LRQ_ERR_UNSUPPORTED, "the products need a little-endian "
                          "host");
    *out = calloc(1, sizeof **out);
    if (*out == NULL)
        return lrq_detail(detail, dn, LRQ_ERR_MEMORY, "no memory for a tile");
    (*out)->scheme = scheme;
    (*out)->m = (size_t)m;
    (*out)->n = (size_t)n;
    (*out)->inner = (size_t)inner;
    (*out)->wa = (*out)->wb = 1.0f;
    return LRQ_OK;
}

static int tile_done(lrq_tile **out, const int rc)
{
    if (rc != LRQ_OK) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* The checks of a binary32 signcut tile.  c16 says which section c the
 * caller was given (binary16 ones are checked, then converted, by the
 * caller), only for the length message. */
static int create_signcut(lrq_tile **out, const uint64_t m, const uint64_t n, const uint64_t w,
                          const uint64_t panel, const void *c, const size_t c_len,
                          const void *tt, const size_t tt_len, const void *s, const size_t s_len,
                          char *detail, const size_t dn)
{
    lrq_tile *t;
    int rc = tile_new(out, SCHEME_SIGNCUT, m, n, w, panel, detail, dn);

    if (rc != LRQ_OK)
        return rc;
    t = *out;
    rc = section_length("c", c, c_len, 4 * w, detail, dn);
    if (rc != LRQ_OK)
        return tile_done(out, rc);
    t->c = c;
    rc = kmat_init(&t->a, tt, tt_len, w, n, 1, panel, "tt", detail, dn);
    if (rc == LRQ_OK)
        rc = kmat_init(&t->b, s, s_len, m, w, 1, panel, "s", detail, dn);
    if (rc == LRQ_OK)
        rc = lrq_check_weights(t->c, c_len, 0, "section 'c'", detail, dn);
    if (rc == LRQ_OK)
        rc = check_factor(&t->a, tt_len, 1, panel, "tt", detail, dn);
    if (rc == LRQ_OK)
        rc = check_factor(&t->b, s_len, 1, panel, "s", detail, dn);
    t->bytes = (uint64_t)c_len + tt_len + s_len;
    return tile_done(out, rc);
}

int lrq_tile_create_signcut_detail(lrq_tile **out, const uint64_t m, const uint64_t n,
                                   const uint64_t w, const uint64_t panel, const void *c,
                                   const size_t c_len, const void *tt, const size_t tt_len,
                                   const void *s, const size_t s_len, char *const detail,
                                   const size_t detail_size)
{
    (void)lrq_detail(detail, detail_size, LRQ_OK, "%s", "");
    return create_signcut(out, m, n, w, panel, c, c_len, tt, tt_len, s, s_len, detail,
                          detail_size);
}

int lrq_tile_create_signcut(lrq_tile **out, const uint64_t m, const uint64_t n, const uint64_t w,
                            const uint64_t panel, const void *c, const size_t c_len,
                            const void *tt, const size_t tt_len, const void *s,
                            const size_t s_len)
{
    return create_signcut(out, m, n, w, panel, c, c_len, tt, tt_len, s, s_len, NULL, 0);
}

int lrq_tile_create_signcut_c16_detail(lrq_tile **out, const uint64_t m, const uint64_t n,
                                       const uint64_t w, const uint64_t panel,
                                       const float c_scale, const void *c, const size_t c_len,
                                       const void *tt, const size_t tt_len, const void *s,
                                       const size_t s_len, char *const detail, const size_t dn)
{
    const uint8_t *const p = (const uint8_t *)c;
    float *own;
    size_t i;
    int rc;

    (void)lrq_detail(detail, dn, LRQ_OK, "%s", "");
    if (out == NULL)
        return lrq_detail(detail, dn, LRQ_ERR_ARGUMENT, "no place for the tile (out is NULL)");
    *out = NULL;
    if (w > LRQ_DIM_MAX)
        return lrq_detail(detail, dn, LRQ_ERR_ARGUMENT, "[SC-1] width %llu is more than "
                          "2^31 - 1", (unsigned long long)w);
    rc = section_length("c", c, c_len, 2 * w, detail, dn);
    if (rc != LRQ_OK)
        return rc;
    if (!lrq_c_scale_ok(c_scale))
        return lrq_detail(detail, dn, LRQ_ERR_FORMAT, "[SC-3] c_scale %g is not a power of two "
                          "2^e with -125 <= e <= 112", (double)c_scale);
    rc = lrq_check_weights(p, c_len, 1, "section 'c'", detail, dn);
    if (rc != LRQ_OK)
        return rc;
    own = (float *)malloc(w ? (size_t)w * sizeof *own : 1);
    if (own == NULL)
        return lrq_detail(detail, dn, LRQ_ERR_MEMORY, "no memory for a tile's weights");
    for (i = 0; i < w; i++)
        own[i] = c_scale * lrq_half_to_float((uint16_t)(p[2 * i] | p[2 * i + 1] << 8)); /* exact ([SC-3]) */
    rc = create_signcut(out, m, n, w, panel, own, 4 * (size_t)w, tt, tt_len, s, s_len, detail, dn);
    if (rc != LRQ_OK) {
        free(own);
        return rc;
    }
    (*out)->c_own = own;
    (*out)->bytes = (uint64_t)c_len + tt_len + s_len;
    return LRQ_OK;
}

int lrq_tile_create_signcut_c16(lrq_tile **out, const uint64_t m, const uint64_t n,
                                const uint64_t w, const uint64_t panel, const float c_scale,
                                const void *c, const size_t c_len, const void *tt,
                                const size_t tt_len, const void *s, const size_t s_len)
{
    return lrq_tile_create_signcut_c16_detail(out, m, n, w, panel, c_scale, c, c_len, tt, tt_len,
                                              s, s_len, NULL, 0);
}

/* A factor's weight: with b <= 4 the kernels sum +-1 planes, and
 * q - (2^b - 1)/2 = -1/2 * sum_p 2^p s_p (spec §16.4); byte codes give the
 * level itself.  -sigma/2 is exact. */
static float factor_weight(const float sigma, const int bits)
{
    return bits <= 4 ? -0.5f * sigma : sigma;
}

int lrq_tile_create_lplr_detail(lrq_tile **out, const uint64_t m, const uint64_t n,
                                const uint64_t rank, const int bits_l, const int bits_r,
                                const uint64_t group, const float scale_l, const float scale_r,
                                const uint64_t panel, const void *r_codes,
                                const size_t r_codes_len, const void *r_scales,
                                const size_t r_scales_len, const void *l_codes,
                                const size_t l_codes_len, const void *l_scales,
                                const size_t l_scales_len, char *const detail, const size_t dn)
{
    lrq_tile *t;
    int rc;

    (void)lrq_detail(detail, dn, LRQ_OK, "%s", "");
    if (bits_l < 1 || bits_l > 8 || bits_r < 1 || bits_r > 8 || group < LRQ_GROUP_MIN ||
        group > LRQ_GROUP_MAX || (group & (group - 1)) != 0) {
        if (out != NULL)
            *out = NULL;
        return lrq_detail(detail, dn, LRQ_ERR_ARGUMENT, "[LP-1] bits_l %d, bits_r %d, group "
                          "%llu: bits must be in [1, 8], group a power of two in [16, 2^20]",
                          bits_l, bits_r, (unsigned long long)group);
    }
    rc = tile_new(out, SCHEME_LPLR, m, n, rank, panel, detail, dn);
    if (rc != LRQ_OK)
        return rc;
    t = *out;
    if (!finite_f32(scale_l) || !finite_f32(scale_r) || !(scale_l > 0.0f) || !(scale_r > 0.0f))
        return tile_done(out, lrq_detail(detail, dn, LRQ_ERR_FORMAT, "[LP-2] the super-scales "
                                         "scale_l %g and scale_r %g must be finite and > 0",
                                         (double)scale_l, (double)scale_r));
    t->wa = factor_weight(scale_r, bits_r);
    t->wb = factor_weight(scale_l, bits_l);
    rc = kmat_init(&t->a, r_codes, r_codes_len, rank, n, bits_r, panel, "r_codes", detail, dn);
    if (rc == LRQ_OK)
        rc = kmat_init(&t->b, l_codes, l_codes_len, m, rank, bits_l, panel, "l_codes", detail, dn);
    if (rc == LRQ_OK)
        rc = set_scales(&t->a, r_scales, r_scales_len, group, "r_scales", detail, dn);
    if (rc == LRQ_OK)
        rc = set_scales(&t->b, l_scales, l_scales_len, group, "l_scales", detail, dn);
    if (rc == LRQ_OK)
        rc = check_factor(&t->a, r_codes_len, bits_r, panel, "r_codes", detail, dn);
    if (rc == LRQ_OK)
        rc = check_factor(&t->b, l_codes_len, bits_l, panel, "l_codes", detail, dn);
    t->bytes = (uint64_t)r_codes_len + r_scales_len + l_codes_len + l_scales_len;
    return tile_done(out, rc);
}

int lrq_tile_create_lplr(lrq_tile **out, const uint64_t m, const uint64_t n, const uint64_t rank,
                         const int bits_l, const int bits_r, const uint64_t group,
                         const float scale_l, const float scale_r, const uint64_t panel,
                         const void *r_codes, const size_t r_codes_len, const void *r_scales,
                         const size_t r_scales_len, const void *l_codes, const size_t l_codes_len,
                         const void *l_scales, const size_t l_scales_len)
{
    return lrq_tile_create_lplr_detail(out, m, n, rank, bits_l, bits_r, group, scale_l, scale_r,
                                       panel, r_codes, r_codes_len, r_scales, r_scales_len,
                                       l_codes, l_codes_len, l_scales, l_scales_len, NULL, 0);
}

/* The binary16 scales of a quant tile, s = code * 2^e_row in §10.3's scale
 * order, from the scale codes packed `scale_bits` bits each in that order
 * (spec §10.7).  Exact: code < 2^8 and e in [-24, 7] ([QT-4]). */
static int quant_scales(lrq_tile *t, const uint8_t *codes, const int8_t *exps, const unsigned scale_bits,
                        char *detail, const size_t dn)
{
    const lrq_kmat *f = &t->a;
    const size_t groups = f->groups, tiles = lrq_kmat_tiles(f), count = f->rows * groups;
    uint8_t *own = malloc(count != 0 ? 2 * count : 1);
    size_t tile, j, r, k = 0;

    if (own == NULL)
        return lrq_detail(detail, dn, LRQ_ERR_MEMORY, "no memory for a tile's scales");
    for (tile = 0; tile < tiles; tile++) {
        const size_t h = min_z(16, f->rows - 16 * tile);
        for (j = 0; j < groups; j++)
            for (r = 0; r < h; r++, k++) {
                const uint64_t first = (uint64_t)k * scale_bits;
                unsigned code = 0, b;
                uint16_t half;
                for (b = 0; b < scale_bits; b++) /* stream bit i: bit i % 8 of byte i / 8 */
                    code |= (unsigned)(codes[(first + b) / 8] >> ((first + b) % 8) & 1u) << b;
                half = lrq_half_from_double(ldexp((double)code, exps[16 * tile + r]));
                own[2 * k] = (uint8_t)half;
                own[2 * k + 1] = (uint8_t)(half >> 8);
            }
    }
    t->scales_own = own;
    t->a.scales = own;
    return LRQ_OK;
}

static int create_quant(lrq_tile **out, const uint64_t m, const uint64_t n, const int bits,
                        const uint64_t group, const int scale_bits, const float scale,
                        const uint64_t panel, const void *codes, const size_t codes_len,
                        const void *scale_codes, const size_t scale_codes_len,
                        const void *row_exponents, const size_t row_exponents_len, char *detail,
                        const size_t dn)
{
    uint64_t groups, count, need;
    lrq_tile *t;
    int rc;

    if (bits < 1 || bits > 8 || scale_bits < 1 || scale_bits > 8 || group < LRQ_GROUP_MIN ||
        group > LRQ_GROUP_MAX || (group & (group - 1)) != 0) {
        if (out != NULL)
            *out = NULL;
        return lrq_detail(detail, dn, LRQ_ERR_ARGUMENT, "[QT-1] bits %d, scale_bits %d, group "
                          "%llu: bits must be in [1, 8], scale_bits in [1, 8], group a power of "
                          "two in [16, 2^20]", bits, scale_bits, (unsigned long long)group);
    }
    rc = tile_new(out, SCHEME_QUANT, m, n, m, panel, detail, dn);
    if (rc != LRQ_OK)
        return rc;
    t = *out;
    if (!finite_f32(scale) || !(scale > 0.0f))
        return tile_done(out, lrq_detail(detail, dn, LRQ_ERR_FORMAT, "[QT-2] the super-scale %g "
                                         "must be finite and > 0", (double)scale));
    t->wa = factor_weight(scale, bits);
    rc = kmat_init(&t->a, codes, codes_len, m, n, bits, panel, "codes", detail, dn);
    if (rc != LRQ_OK)
        return tile_done(out, rc);
    groups = (n + group - 1) / group;
    count = m * groups; /* m, n <= 2^31 - 1 and g >= 16: no overflow */
    need = (count * (uint64_t)scale_bits + 7) / 8;
    rc = section_length("scale_codes", scale_codes, scale_codes_len, need, detail, dn);
    if (rc == LRQ_OK)
        rc = section_length("row_exponents", row_exponents, row_exponents_len, m, detail, dn);
    if (rc == LRQ_OK)
        rc = lrq_check_scale_codes(scale_codes, scale_codes_len, count, (unsigned)scale_bits,
                                   "section 'scale_codes'", detail, dn);
    if (rc == LRQ_OK)
        rc = lrq_check_row_exponents(row_exponents, row_exponents_len, "section 'row_exponents'",
                                     detail, dn);
    if (rc == LRQ_OK)
        rc = check_factor(&t->a, codes_len, bits, panel, "codes", detail, dn);
    if (rc != LRQ_OK)
        return tile_done(out, rc);
    t->a.groups = (size_t)groups;
    t->a.gc = (size_t)(group / (t->a.planes > 0 ? 16 : 4));
    rc = quant_scales(t, scale_codes, row_exponents, (unsigned)scale_bits, detail, dn);
    if (rc != LRQ_OK)
        return tile_done(out, rc);
    /* B: the m x m identity, copied through by the drivers. */
    t->b.identity = 1;
    t->b.rows = t->b.k = (size_t)m;
    t->b.planes = 1;
    t->b.kc = (size_t)k16((size_t)m);
    t->b.pc = (size_t)(panel / 16);
    t->bytes = (uint64_t)codes_len + scale_codes_len + row_exponents_len;
    return LRQ_OK;
}

int lrq_tile_create_quant_detail(lrq_tile **out, const uint64_t m, const uint64_t n, const int bits,
                                 const uint64_t group, const int scale_bits, const float scale,
                                 const uint64_t panel, const void *codes, const size_t codes_len,
                                 const void *scale_codes, const size_t scale_codes_len,
                                 const void *row_exponents, const size_t row_exponents_len,
                                 char *const detail, const size_t dn)
{
    (void)lrq_detail(detail, dn, LRQ_OK, "%s", "");
    return create_quant(out, m, n, bits, group, scale_bits, scale, panel, codes, codes_len,
                        scale_codes, scale_codes_len, row_exponents, row_exponents_len, detail, dn);
}

int lrq_tile_create_quant(lrq_tile **out, const uint64_t m, const uint64_t n, const int bits,
                          const uint64_t group, const int scale_bits, const float scale,
                          const uint64_t panel, const void *codes, const size_t codes_len,
                          const void *scale_codes, const size_t scale_codes_len,
                          const void *row_exponents, const size_t row_exponents_len)
{
    return create_quant(out, m, n, bits, group, scale_bits, scale, panel, codes, codes_len,
                        scale_codes, scale_codes_len, row_exponents, row_exponents_len, NULL, 0);
}

void lrq_tile_free(lrq_tile *t)
{
    if (t != NULL) {
        free(t->c_own);
        free(t->scales_own);
    }
    free(t);
}
