/* SPDX-License-Identifier: MIT */
/*
 * The file handle: opening a buffer (the steps of spec §15 in order) and
 * the accessors.
 */
#include "format/container.h"

/* Make room for one more element of `elem` bytes: returns the array, moved
 * if it had to grow, or NULL when memory runs out (the old array then stays
 * valid and owned by the caller). */
void *lrq_fmt_grow(void *const array, uint64_t *const cap, const uint64_t used, const size_t elem)
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

/* See container.h.  A bottom-up merge sort: qsort() has no context pointer
 * in C99, and a file-scope pointer to the records would be global mutable
 * state. */
int lrq_fmt_sort_indices(uint32_t *const order, const uint64_t n, const lrq_fmt_index_cmp cmp,
                         const void *const ctx)
{
    uint32_t *tmp;
    uint64_t width;

    if (n < 2)
        return LRQ_OK;
    tmp = malloc(n * sizeof *tmp);
    if (tmp == NULL)
        return LRQ_ERR_MEMORY;
    for (width = 1; width < n; width *= 2) {
        uint64_t lo;
        for (lo = 0; lo < n; lo += 2 * width) {
            const uint64_t mid = lo + width < n ? lo + width : n;
            const uint64_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            uint64_t a = lo, b = mid, o = lo;
            while (a < mid || b < hi) {
                if (b >= hi || (a < mid && cmp(ctx, order[a], order[b]) <= 0))
                    tmp[o++] = order[a++];
                else
                    tmp[o++] = order[b++];
            }
        }
        memcpy(order, tmp, n * sizeof *tmp);
    }
    free(tmp);
    return LRQ_OK;
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
    free(file->groups);
    free(file->members);
    free(file->members_by_name);
    free(file);
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
    if ((data == NULL && size != 0) || (flags & ~LRQ_FMT_KNOWN_FLAGS) != 0)
        return LRQ_ERR_ARGUMENT;
    if ((rc = lrq_fmt_check_preamble(p, size, detail, detail_size)) != LRQ_OK)
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
        rc = lrq_fmt_parse_header(&c);
    if (rc == LRQ_OK)
        rc = lrq_fmt_check_placement(&c);
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
    info->group_count = file->n_groups;
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
        const int cmp = lrq_fmt_name_cmp(&file->tensors[file->by_name[mid]], &key);
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

/* Entry s of the section table of lrq_tile_info or lrq_group_info. */
static void describe_section(const section_rec *const sr, const unsigned s, int *const kind,
                             uint64_t *const offset, uint64_t *const length, uint32_t *const crc)
{
    kind[s] = sr->kind;
    offset[s] = sr->offset;
    length[s] = sr->length;
    crc[s] = sr->crc;
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
    lrq_fmt_tile_geometry(t, tile, info->origin, info->shape);
    if (tl->scheme == LRQ_SCHEME_DENSE) {
        info->storage = tl->storage;
    } else if (tl->scheme == LRQ_SCHEME_SIGNCUT) {
        info->width = tl->width;
        info->c_scale = tl->c16 ? tl->c_scale : 0.0f;
    } else if (tl->scheme == LRQ_SCHEME_QUANT) {
        info->bits = tl->bits;
        info->group = tl->group;
        info->scale_bits = tl->scale_bits;
        info->scale = tl->scale;
    } else {
        info->rank = tl->width;
        info->bits_l = tl->bits_l;
        info->bits_r = tl->bits_r;
        info->group = tl->group;
        info->scale_l = tl->scale_l;
        info->scale_r = tl->scale_r;
    }
    info->member_of = tl->in_group;
    info->section_count = lrq_fmt_scheme_sections[tl->scheme].count;
    for (s = 0; s < info->section_count; s++)
        describe_section(&file->sections[lrq_fmt_tile_section(file, tl, s)], s,
                         info->section_kind, info->section_offset, info->section_length,
                         info->section_crc32c);
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
    if (section >= lrq_fmt_scheme_sections[tl->scheme].count)
        return LRQ_ERR_ARGUMENT;
    rc = lrq_fmt_ensure_section(file, tensor, tile, lrq_fmt_tile_section(file, tl, section),
                                SECTION_CHECKED, detail, detail_size);
    if (rc != LRQ_OK)
        return rc;
    sr = &file->sections[lrq_fmt_tile_section(file, tl, section)];
    *data = file->data + sr->offset;
    *length = sr->length;
    return LRQ_OK;
}

int lrq_file_group(const lrq_file *const file, const uint64_t group, lrq_group_info *const info)
{
    const group_rec *g;
    unsigned s;

    if (file == NULL || info == NULL || group >= file->n_groups)
        return LRQ_ERR_ARGUMENT;
    g = &file->groups[group];
    memset(info, 0, sizeof *info);
    info->name = (const char *)g->name;
    info->name_len = g->name_len;
    info->scheme = g->scheme;
    info->columns = g->columns;
    info->panel = g->panel;
    if (g->scheme == LRQ_SCHEME_SIGNCUT) {
        info->width = g->shared.width;
    } else {
        info->rank = g->shared.width;
        info->bits_r = g->shared.bits_r;
        info->group = g->shared.group;
        info->scale_r = g->shared.scale_r;
    }
    info->member_count = g->member_count;
    info->section_count = lrq_fmt_shared_sections[g->scheme];
    for (s = 0; s < info->section_count; s++)
        describe_section(&file->sections[g->first_section + s], s, info->section_kind,
                         info->section_offset, info->section_length, info->section_crc32c);
    return LRQ_OK;
}

int lrq_file_group_member(const lrq_file *const file, const uint64_t group, const uint64_t member,
                          uint64_t *const tensor)
{
    if (file == NULL || tensor == NULL || group >= file->n_groups ||
        member >= file->groups[group].member_count)
        return LRQ_ERR_ARGUMENT;
    *tensor = file->members[file->groups[group].first_member + member].tensor;
    return LRQ_OK;
}
