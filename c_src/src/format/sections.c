/* SPDX-License-Identifier: MIT */
/*
 * Section checks (spec §8.4, §9, §10): step 12 of spec §15, per section and
 * before first use.
 */
#include "format/container.h"

/* ------------------------------------------------------------------------ */
/* Section checks (spec §8.4, §9, §10): step 12 of §15                      */

/* Every item of a float storage type is finite ([DN-3], [SC-2]): its
 * exponent field is not all ones.  Works on the little-endian bytes. */
/* Where a section failure is reported from: a group's shared section is
 * named by its group, whichever member tile it is checked for. */
static void section_where(const lrq_file *const f, const uint64_t tensor, const uint64_t tile,
                          const section_rec *const sr, char *const out, const size_t n)
{
    const tensor_rec *const t = &f->tensors[tensor];
    const tile_rec *const tl = &f->tiles[t->first_tile + tile];
    const uint64_t index = (uint64_t)(sr - f->sections);
    const group_rec *const g = tl->in_group ? &f->groups[tl->in_group - 1] : NULL;

    if (g != NULL && index - g->first_section < lrq_fmt_shared_sections[g->scheme]) {
        (void)snprintf(out, n, "group '%.*s' section '%s'",
                       (int)(g->name_len < NAME_QUOTE ? g->name_len : NAME_QUOTE),
                       (const char *)g->name, lrq_fmt_kind_names[sr->kind]);
        return;
    }
    (void)snprintf(out, n, "tensor '%.*s' tile #%llu section '%s'",
                   (int)(t->name_len < NAME_QUOTE ? t->name_len : NAME_QUOTE),
                   (const char *)t->name, (unsigned long long)tile, lrq_fmt_kind_names[sr->kind]);
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

    lrq_fmt_tile_geometry(t, tile, origin, dims);
    section_where(f, tensor, tile, sr, where, sizeof where);
    switch (sr->kind) {
    case LRQ_SECTION_VALUES:
        if (lrq_fmt_dtypes[tl->storage].is_float) {
            if (!lrq_floats_finite(p, sr->length, lrq_fmt_dtypes[tl->storage].size,
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
    case LRQ_SECTION_CODES: /* quant F: m rows of n */
        rows = dims[0];
        k = dims[1];
        bits = tl->bits;
        break;
    case LRQ_SECTION_SCALE_CODES:
        return lrq_check_scale_codes(p, sr->length, dims[0] * ((dims[1] + tl->group - 1) / tl->group),
                                     tl->scale_bits, where, detail, dn);
    case LRQ_SECTION_ROW_EXPONENTS:
        return lrq_check_row_exponents(p, sr->length, where, detail, dn);
    default:
        return lrq_detail(detail, dn, LRQ_ERR_INTERNAL, "%s: unknown section kind", where);
    }

    return lrq_check_matrix(p, sr->length, rows, k, bits, t->panel, where, detail, dn);
}

/* Bring one section to at least `level`, once: the fast path is one acquire
 * load; otherwise the section's lock stripe serializes the verifiers, so
 * whichever thread comes first does the work and the others find it done. */
int lrq_fmt_ensure_section(lrq_file *const f, const uint64_t tensor, const uint64_t tile,
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

/* Every section to `level`, tile by tile in file order; a member tile's
 * shared sections first, with it ([SEC-9], spec §10.4). */
static int ensure_all(lrq_file *const f, const int level, char *const detail, const size_t dn)
{
    uint64_t t, k;
    unsigned s;
    int rc;

    for (t = 0; t < f->n_tensors; t++) {
        const tensor_rec *const tr = &f->tensors[t];
        for (k = 0; k < tr->tile_count; k++) {
            const tile_rec *const tl = &f->tiles[tr->first_tile + k];
            for (s = 0; s < lrq_fmt_scheme_sections[tl->scheme].count; s++)
                if ((rc = lrq_fmt_ensure_section(f, t, k, lrq_fmt_tile_section(f, tl, s), level,
                                                 detail, dn)) != LRQ_OK)
                    return rc;
        }
    }
    return LRQ_OK;
}


int lrq_file_verify(lrq_file *const file, const unsigned flags, char *const detail,
                    const size_t detail_size)
{
    int rc;

    (void)lrq_detail(detail, detail_size, LRQ_OK, "%s", "");
    if (file == NULL || (flags & ~LRQ_FMT_KNOWN_FLAGS) != 0)
        return LRQ_ERR_ARGUMENT;
    /* All checksums first, then all content: a damaged file is reported
     * as damaged even when the damage also breaks a content rule. */
    if (flags & LRQ_FMT_KNOWN_FLAGS)
        if ((rc = ensure_all(file, SECTION_CRC_OK, detail, detail_size)) != LRQ_OK)
            return rc;
    if (flags & LRQ_FILE_VERIFY_CONTENT)
        if ((rc = ensure_all(file, SECTION_CHECKED, detail, detail_size)) != LRQ_OK)
            return rc;
    return LRQ_OK;
}
