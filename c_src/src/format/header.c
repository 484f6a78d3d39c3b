/* SPDX-License-Identifier: MIT */
/*
 * Header values (spec §6, §7, §8.1, §10) and placement (spec §8.2, §8.3):
 * steps 10 and 11 of spec §15.
 */
#include <float.h>

#include "format/container.h"
#include "format/fields.h"

/* ------------------------------------------------------------------------ */
/* Header values (spec §6, §7, §8.1, §10): step 10 of §15                   */


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
void lrq_fmt_tile_geometry(const tensor_rec *const t, const uint64_t index, uint64_t *const origin,
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

/* The exact length of every section of a tile ([SEC-2]); t is read only
 * for a dense tile.  Inputs are range-checked already, so overflow cannot
 * happen with valid parameters; it is still checked ([LIM-5]) so that this
 * stays true if limits change. */
int lrq_fmt_section_lengths(const tensor_rec *const t, const tile_rec *const tl,
                            const uint64_t *const dims, uint64_t *const len)
{
    int overflow = 0;

    if (tl->scheme == LRQ_SCHEME_DENSE) {
        uint64_t n = 1;
        unsigned d;
        for (d = 0; d < t->ndim; d++)
            overflow |= __builtin_mul_overflow(n, dims[d], &n);
        overflow |= __builtin_mul_overflow(n, (uint64_t)lrq_fmt_dtypes[tl->storage].size, &len[0]);
    } else if (tl->scheme == LRQ_SCHEME_SIGNCUT) {
        overflow |= __builtin_mul_overflow(tl->width, tl->c16 ? 2 : 4, &len[0]);
        overflow |= sign_matrix_bytes(tl->width, dims[1], &len[1]);
        overflow |= sign_matrix_bytes(dims[0], tl->width, &len[2]);
    } else if (tl->scheme == LRQ_SCHEME_QUANT) {
        uint64_t count = 0, scale_code_bits = 0;
        overflow |= code_bytes(dims[0], dims[1], tl->bits, &len[0]);
        overflow |= __builtin_mul_overflow(dims[0], ceil_div(dims[1], tl->group), &count);
        overflow |= __builtin_mul_overflow(count, (uint64_t)tl->scale_bits, &scale_code_bits);
        len[1] = scale_code_bits / 8 + (scale_code_bits % 8 != 0);
        len[2] = dims[0];
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
    TF_SCALE_L, TF_SCALE_R, TF_BITS, TF_SCALE_BITS, TF_SCALE, TF_SECTIONS, TF_COUNT
};

/* A signcut tile's optional "c_scale" ([SC-3], [SC-4]): a power of two 2^e
 * with -125 <= e <= 112 as binary32.  The key means something only in a file
 * that sets the signcut_c16 flag; in any other file it is an unknown key,
 * ignored whatever its value ([HDR-9], [VER-4]), and the tile's c is binary32
 * (so a 2w-byte c then fails [SEC-2]). */
static int get_c_scale(const parse_ctx *const c, const field *const fl, tile_rec *const tl)
{
    int rc;

    if (!fl->found || !(c->f->required & LRQ_REQUIRED_SIGNCUT_C16))
        return LRQ_OK;
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
    uint64_t v = 0; /* set by get_int on success (0 quiets -Wmaybe-uninitialized) */
    int rc;

    if (tl->scheme == LRQ_SCHEME_DENSE) {
        if ((rc = get_dtype(c, &tf[TF_STORAGE], "DN-1", &tl->storage)) != LRQ_OK)
            return rc;
        if (lrq_fmt_dtypes[t->dtype].is_float ? !lrq_fmt_dtypes[tl->storage].is_float : tl->storage != t->dtype)
            return fail(c, "DN-2", LRQ_ERR_FORMAT, "a %s tensor cannot be stored as %s",
                        lrq_fmt_dtypes[t->dtype].name, lrq_fmt_dtypes[tl->storage].name);
        return LRQ_OK;
    }
    if (t->ndim != 2)
        return fail(c, "TEN-6", LRQ_ERR_FORMAT, "scheme '%s' needs a 2-D tensor",
                    lrq_fmt_scheme_names[tl->scheme]);
    if (!lrq_fmt_dtypes[t->dtype].is_float)
        return fail(c, "TEN-6", LRQ_ERR_FORMAT, "scheme '%s' needs a floating-point tensor, not %s",
                    lrq_fmt_scheme_names[tl->scheme], lrq_fmt_dtypes[t->dtype].name);
    if (tl->scheme == LRQ_SCHEME_SIGNCUT) {
        if ((rc = get_int(c, &tf[TF_WIDTH], "SC-1", 0, LRQ_DIM_MAX, &tl->width)) != LRQ_OK)
            return rc;
        return get_c_scale(c, &tf[TF_C_SCALE], tl);
    }
    if (tl->scheme == LRQ_SCHEME_QUANT) {
        if (!(c->f->required & LRQ_REQUIRED_QUANT))
            return fail(c, "QT-6", LRQ_ERR_FORMAT, "a quant tile in a file whose "
                        "required_features does not set quant (bit 3)");
        if ((rc = get_int(c, &tf[TF_BITS], "QT-1", 1, 8, &v)) != LRQ_OK)
            return rc;
        tl->bits = (unsigned)v;
        if ((rc = get_int(c, &tf[TF_GROUP], "QT-1", LRQ_GROUP_MIN, LRQ_GROUP_MAX, &tl->group)) != LRQ_OK)
            return rc;
        if (!is_power_of_two(tl->group))
            return fail(c, "QT-1", LRQ_ERR_FORMAT, "'group' = %llu is not a power of two",
                        (unsigned long long)tl->group);
        if ((rc = get_int(c, &tf[TF_SCALE_BITS], "QT-1", 1, 8, &v)) != LRQ_OK)
            return rc;
        tl->scale_bits = (unsigned)v;
        if ((rc = get_float(c, &tf[TF_SCALE], "QT-2", &tl->scale)) != LRQ_OK)
            return rc;
        if (!(tl->scale > 0.0f && tl->scale <= FLT_MAX))
            return fail(c, "QT-2", LRQ_ERR_FORMAT, "'scale' = %g must be finite and > 0",
                        (double)tl->scale);
        return LRQ_OK;
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

/* See fields.h. */
int lrq_fmt_read_entries(parse_ctx *const c, const field *const fl, const int *const kinds,
                         const unsigned count, const uint64_t *const want, const char *const rule,
                         const char *const length_rule, const char *const what)
{
    lrq_file *const f = c->f;
    mp_reader r = fl->next;
    unsigned s;

    if (!fl->found)
        return missing(c, fl, rule);
    if (fl->v.kind != MP_ARRAY)
        return fail(c, rule, LRQ_ERR_FORMAT, "'sections' must be a list");
    if (fl->v.count != count)
        return fail(c, rule, LRQ_ERR_FORMAT, "the section table has %u entries; %s has %u",
                    fl->v.count, what, count);
    for (s = 0; s < count; s++) {
        const int kind = kinds[s];
        mp_value head, e[4];
        section_rec *rec;
        void *grown;
        unsigned i;

        if (mp_read(&r, &head) != LRQ_OK)
            return fail(c, "HDR-1", LRQ_ERR_FORMAT, "unreadable section table");
        if (head.kind != MP_ARRAY || head.count != 4)
            return fail(c, rule, LRQ_ERR_FORMAT,
                        "a section entry must be [kind, offset, length, crc32c]");
        for (i = 0; i < 4; i++) {
            if (mp_read(&r, &e[i]) != LRQ_OK)
                return fail(c, "HDR-1", LRQ_ERR_FORMAT, "unreadable section table");
            /* Checked before the next read: after a container head, the
             * next read would land inside it. */
            if (e[i].kind != (i == 0 ? MP_STR : MP_INT))
                return fail(c, rule, LRQ_ERR_FORMAT,
                            "a section entry must be [kind, offset, length, crc32c]");
        }
        if (!mp_str_is(&e[0], lrq_fmt_kind_names[kind]))
            return fail(c, rule, LRQ_ERR_FORMAT, "section '%.*s' where '%s' belongs",
                        QUOTE(e[0]), lrq_fmt_kind_names[kind]);
        if (e[2].neg || e[2].u != want[s])
            return fail(c, length_rule, LRQ_ERR_FORMAT, "section '%s' has length %s%llu; its "
                        "parameters need %llu", lrq_fmt_kind_names[kind], e[2].neg ? "-" : "",
                        (unsigned long long)(e[2].neg ? 0 - (uint64_t)e[2].i : e[2].u),
                        (unsigned long long)want[s]);
        if (e[1].neg || e[3].neg || e[3].u > UINT32_C(0xFFFFFFFF))
            return fail(c, rule, LRQ_ERR_FORMAT, "section '%s' has an out-of-range offset "
                        "or CRC", lrq_fmt_kind_names[kind]);
        grown = lrq_fmt_grow(f->sections, &f->cap_sections, f->n_sections, sizeof *f->sections);
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

/* The section table of one tile ([SEC-1], [SEC-2]). */
static int parse_section_table(parse_ctx *const c, const field *const fl, tile_rec *const tl,
                               const uint64_t *const want)
{
    char what[32];

    (void)snprintf(what, sizeof what, "scheme '%s'", lrq_fmt_scheme_names[tl->scheme]);
    tl->first_section = c->f->n_sections;
    return lrq_fmt_read_entries(c, fl, lrq_fmt_scheme_sections[tl->scheme].kind,
                                lrq_fmt_scheme_sections[tl->scheme].count, want, "SEC-1", "SEC-2",
                                what);
}

/* One tile map ([TIL-4] and what it contains). */
static int parse_tile(parse_ctx *const c, tensor_rec *const t, const uint64_t index,
                      mp_reader *const r)
{
    lrq_file *const f = c->f;
    field tf[TF_COUNT] = {FIELD("scheme"),  FIELD("storage"), FIELD("width"),   FIELD("c_scale"),
                          FIELD("rank"),    FIELD("bits_l"),  FIELD("bits_r"),  FIELD("group"),
                          FIELD("scale_l"), FIELD("scale_r"), FIELD("bits"),    FIELD("scale_bits"),
                          FIELD("scale"),   FIELD("sections")};
    uint64_t origin[LRQ_MAX_NDIM], dims[LRQ_MAX_NDIM], want[LRQ_MAX_SECTIONS] = {0};
    const size_t prefix = strlen(c->where);
    tile_rec tl;
    void *grown;
    size_t i;
    int rc;

    (void)snprintf(c->where + prefix, sizeof c->where - prefix, " tile #%llu",
                   (unsigned long long)index);
    if ((rc = read_map(c, r, tf, TF_COUNT, "TIL-4", "tile")) != LRQ_OK)
        return rc;
    memset(&tl, 0, sizeof tl);
    if ((rc = get_str(c, &tf[TF_SCHEME], "TIL-4")) != LRQ_OK)
        return rc;
    for (i = 1; i < SCHEME_COUNT; i++)
        if (mp_str_is(&tf[TF_SCHEME].v, lrq_fmt_scheme_names[i]))
            tl.scheme = (int)i;
    if (tl.scheme == 0)
        return fail(c, "TIL-4", LRQ_ERR_FORMAT, "unknown scheme '%.*s'", QUOTE(tf[TF_SCHEME].v));
    if ((rc = parse_params(c, t, tf, &tl)) != LRQ_OK)
        return rc;
    lrq_fmt_tile_geometry(t, index, origin, dims);
    if (lrq_fmt_section_lengths(t, &tl, dims, want) != LRQ_OK)
        return fail(c, "LIM-5", LRQ_ERR_FORMAT, "section sizes overflow 64 bits");
    if ((rc = parse_section_table(c, &tf[TF_SECTIONS], &tl, want)) != LRQ_OK)
        return rc;
    grown = lrq_fmt_grow(f->tiles, &f->cap_tiles, f->n_tiles, sizeof *f->tiles);
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
    member_rec *member;
    void *grown;
    mp_value tiles;
    mp_reader tr;
    uint64_t elements = 1, grid = 1, k;
    unsigned d, tile_ndim;
    int rc;

    set_where_tensor(c, NULL, index);
    if ((rc = read_map(c, r, xf, XF_COUNT, "TEN-1", "tensor")) != LRQ_OK)
        return rc;
    grown = lrq_fmt_grow(f->tensors, &f->cap_tensors, f->n_tensors, sizeof *f->tensors);
    if (grown == NULL)
        return oom(c, "the tensor table");
    f->tensors = grown;
    t = &f->tensors[f->n_tensors];
    memset(t, 0, sizeof *t);

    if ((rc = get_name(c, &xf[XF_NAME], "TEN-2", &t->name, &t->name_len)) != LRQ_OK)
        return rc;
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
    member = lrq_fmt_find_member(f, t);
    if (member != NULL) {
        if ((rc = lrq_fmt_parse_member(c, t, member, &tr)) != LRQ_OK)
            return rc;
    } else {
        for (k = 0; k < grid; k++)
            if ((rc = parse_tile(c, t, k, &tr)) != LRQ_OK)
                return rc;
    }
    f->n_tensors++;
    return LRQ_OK;
}

int lrq_fmt_name_cmp(const tensor_rec *const a, const tensor_rec *const b)
{
    return lrq_fmt_bytes_cmp(a->name, a->name_len, b->name, b->name_len);
}

static int tensor_name_cmp(const void *const ctx, const uint32_t a, const uint32_t b)
{
    const tensor_rec *const t = (const tensor_rec *)ctx;
    return lrq_fmt_name_cmp(&t[a], &t[b]);
}

/* [TEN-2] uniqueness, in O(n log n): up to 65536 names compared pairwise
 * would be 2^31 comparisons.  The sorted order also serves
 * lrq_file_find_tensor(). */
static int sort_names(parse_ctx *const c)
{
    lrq_file *const f = c->f;
    uint64_t i;

    if (f->n_tensors == 0)
        return LRQ_OK;
    f->by_name = malloc(f->n_tensors * sizeof *f->by_name);
    if (f->by_name == NULL)
        return oom(c, "the name index");
    for (i = 0; i < f->n_tensors; i++)
        f->by_name[i] = (uint32_t)i;
    if (lrq_fmt_sort_indices(f->by_name, f->n_tensors, tensor_name_cmp, f->tensors) != LRQ_OK)
        return oom(c, "the name index");
    for (i = 1; i < f->n_tensors; i++) {
        const tensor_rec *const t = &f->tensors[f->by_name[i]];
        if (lrq_fmt_name_cmp(&f->tensors[f->by_name[i - 1]], t) == 0) {
            set_where_tensor(c, t, f->by_name[i]);
            return fail(c, "TEN-2", LRQ_ERR_FORMAT, "the name appears twice");
        }
    }
    return LRQ_OK;
}

/* The top-level map ([HDR-5], [HDR-6], [LIM-4]) and everything below it. */
int lrq_fmt_parse_header(parse_ctx *const c)
{
    lrq_file *const f = c->f;
    field top[3] = {FIELD("tensors"), FIELD("metadata"), FIELD("groups")};
    mp_reader r = c->hdr;
    mp_value head;
    uint32_t i;
    int rc;

    (void)snprintf(c->where, sizeof c->where, "header");
    if (mp_read(&r, &head) != LRQ_OK || head.kind != MP_MAP ||
        read_fields(&r, head.count, top, 3) != LRQ_OK)
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
    /* Step 10a: the groups before the tensors, so that members are known
     * ([GRP-9]: without shared_factor, "groups" is an unknown key). */
    if (f->required & LRQ_REQUIRED_SHARED_FACTOR)
        if ((rc = lrq_fmt_parse_groups(c, &top[2])) != LRQ_OK)
            return rc;
    r = top[0].next;
    for (i = 0; i < top[0].v.count; i++)
        if ((rc = parse_tensor(c, i, &r)) != LRQ_OK)
            return rc;
    /* [GRP-4], [SC-5] and [QT-6] once every tile is known (after [TEN-2], which
     * sorting checks). */
    if ((rc = sort_names(c)) != LRQ_OK)
        return rc;
    if ((rc = lrq_fmt_check_members(c)) != LRQ_OK)
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
    if (f->required & LRQ_REQUIRED_QUANT) {
        uint64_t k;
        for (k = 0; k < f->n_tiles && f->tiles[k].scheme != LRQ_SCHEME_QUANT; k++)
            ;
        (void)snprintf(c->where, sizeof c->where, "file");
        if (k == f->n_tiles)
            return fail(c, "QT-6", LRQ_ERR_FORMAT, "required_features set quant (bit 3) but "
                        "no tile has the scheme 'quant'");
    }
    return LRQ_OK;
}

/* ------------------------------------------------------------------------ */
/* Placement (spec §8.2, §8.3): step 11 of §15                              */

/* One section of the sequence at its canonical place after offset *e
 * ([SEC-3], [SEC-4], [SEC-5]); `owner` names its tile ("tile #3 ") or is
 * empty (a group's, named by c->where). */
static int place_section(const parse_ctx *const c, const section_rec *const sr, uint64_t *const e,
                         const char *const owner)
{
    const lrq_file *const f = c->f;
    const uint64_t a = sr->length >= LRQ_PAGE_ALIGNED_FROM ? 4096 : 64;
    uint64_t want, end, i;

    /* e <= size here, and size < 2^64 - 4096 for any buffer an address
     * space can hold, but check rather than argue. */
    if (__builtin_add_overflow(*e, a - 1, &want))
        return fail(c, "LIM-5", LRQ_ERR_FORMAT, "section offsets overflow 64 bits");
    want -= want % a;
    if (sr->offset != want)
        return fail(c, "SEC-3", LRQ_ERR_FORMAT, "%ssection '%s' is at offset %llu; the canonical "
                    "offset is %llu", owner, lrq_fmt_kind_names[sr->kind],
                    (unsigned long long)sr->offset, (unsigned long long)want);
    if (__builtin_add_overflow(want, sr->length, &end) || end > f->size)
        return fail(c, "SEC-4", LRQ_ERR_FORMAT, "%ssection '%s' runs past the end of the file",
                    owner, lrq_fmt_kind_names[sr->kind]);
    for (i = *e; i < want; i++)
        if (f->data[i] != 0)
            return fail(c, "SEC-5", LRQ_ERR_PADDING, "padding byte at offset %llu (before %s"
                        "section '%s') is not zero", (unsigned long long)i, owner,
                        lrq_fmt_kind_names[sr->kind]);
    *e = end;
    return LRQ_OK;
}

/* The section sequence of §8.2: every tile's own sections, tensor by
 * tensor; then, in 1.2, every group's shared sections (§10.4). */
int lrq_fmt_check_placement(parse_ctx *const c)
{
    lrq_file *const f = c->f;
    uint64_t e = PREAMBLE_SIZE + f->header_length, t, k, g;
    char owner[32];
    int rc;

    for (t = 0; t < f->n_tensors; t++) {
        const tensor_rec *const tr = &f->tensors[t];
        set_where_tensor(c, tr, t);
        for (k = 0; k < tr->tile_count; k++) {
            const tile_rec *const tl = &f->tiles[tr->first_tile + k];
            const unsigned own = lrq_fmt_scheme_sections[tl->scheme].count -
                                 (tl->in_group ? lrq_fmt_shared_sections[tl->scheme] : 0);
            unsigned s;
            (void)snprintf(owner, sizeof owner, "tile #%llu ", (unsigned long long)k);
            for (s = 0; s < own; s++)
                if ((rc = place_section(c, &f->sections[tl->first_section + s], &e, owner)) !=
                    LRQ_OK)
                    return rc;
        }
    }
    for (g = 0; g < f->n_groups; g++) {
        const group_rec *const gr = &f->groups[g];
        unsigned s;
        lrq_fmt_where_group(c, gr, g);
        for (s = 0; s < lrq_fmt_shared_sections[gr->scheme]; s++)
            if ((rc = place_section(c, &f->sections[gr->first_section + s], &e, "")) != LRQ_OK)
                return rc;
    }
    (void)snprintf(c->where, sizeof c->where, "file");
    if (e != f->size)
        return fail(c, "SEC-4", LRQ_ERR_FORMAT, "%llu bytes follow the end of the last section "
                    "at offset %llu", (unsigned long long)(f->size - e), (unsigned long long)e);
    return LRQ_OK;
}
