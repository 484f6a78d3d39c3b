/* SPDX-License-Identifier: MIT */
/*
 * Groups of tensors that share a right factor (spec §10.4, format 1.2):
 * step 10a of spec §15.
 *
 * A file that sets shared_factor has a "groups" array; each group map holds
 * the shared parameters and the shared sections once, and names its member
 * tensors.  The groups are read before the tensors, so that a tensor is
 * known to be a member when its tile is read.  A member tile is then stored
 * resolved, as a tile of its scheme with the group's shared parameters
 * copied in and `in_group` pointing at the group whose sections it reads
 * (lrq_fmt_tile_section()), so every later step -- placement, section
 * checks, the accessors, decoding -- treats it as any tile of its scheme.
 *
 * Name uniqueness ([GRP-1] for group names, [GRP-4] for members) is checked
 * by sorting once all groups are read, as [TEN-2] is for tensors: up to
 * 65536 names compared pairwise would be 2^31 comparisons.
 */
#include "format/container.h"
#include "format/fields.h"

void lrq_fmt_where_group(parse_ctx *const c, const group_rec *const g, const uint64_t index)
{
    if (g != NULL && g->name != NULL)
        (void)snprintf(c->where, sizeof c->where, "group '%.*s'",
                       (int)(g->name_len < NAME_QUOTE ? g->name_len : NAME_QUOTE),
                       (const char *)g->name);
    else
        (void)snprintf(c->where, sizeof c->where, "group #%llu", (unsigned long long)index);
}

enum {
    GF_NAME, GF_SCHEME, GF_COLUMNS, GF_PANEL, GF_WIDTH, GF_RANK, GF_BITS_R, GF_GROUP, GF_SCALE_R,
    GF_MEMBERS, GF_SECTIONS, GF_COUNT
};

/* The shared parameters of a group, in the form of a tile's ([GRP-2]: the
 * ranges of [SC-1], [LP-1] and [LP-2], reported under [GRP-2]). */
static int parse_shared_params(const parse_ctx *const c, const field *const gf,
                               tile_rec *const shared)
{
    uint64_t v = 0;
    int rc;

    if (shared->scheme == LRQ_SCHEME_SIGNCUT)
        return get_int(c, &gf[GF_WIDTH], "GRP-2", 0, LRQ_DIM_MAX, &shared->width);
    if ((rc = get_int(c, &gf[GF_RANK], "GRP-2", 0, LRQ_DIM_MAX, &shared->width)) != LRQ_OK)
        return rc;
    if ((rc = get_int(c, &gf[GF_BITS_R], "GRP-2", 1, 8, &v)) != LRQ_OK)
        return rc;
    shared->bits_r = (unsigned)v;
    if ((rc = get_int(c, &gf[GF_GROUP], "GRP-2", LRQ_GROUP_MIN, LRQ_GROUP_MAX,
                      &shared->group)) != LRQ_OK)
        return rc;
    if (!is_power_of_two(shared->group))
        return fail(c, "GRP-2", LRQ_ERR_FORMAT, "'group' = %llu is not a power of two",
                    (unsigned long long)shared->group);
    if ((rc = get_float(c, &gf[GF_SCALE_R], "GRP-2", &shared->scale_r)) != LRQ_OK)
        return rc;
    if (!(finite32(shared->scale_r) && shared->scale_r > 0))
        return fail(c, "GRP-2", LRQ_ERR_FORMAT, "'scale_r' must be a finite binary32 value > 0");
    return LRQ_OK;
}

/* The "members" of group `index`: 1 to 65536 str ([GRP-4]). */
static int parse_member_names(parse_ctx *const c, const field *const fl, group_rec *const g,
                              const uint64_t index)
{
    lrq_file *const f = c->f;
    mp_reader r = fl->next;
    uint32_t i;

    if (!fl->found)
        return missing(c, fl, "GRP-4");
    if (fl->v.kind != MP_ARRAY || fl->v.count < 1 || fl->v.count > LRQ_TENSORS_MAX)
        return fail(c, "GRP-4", LRQ_ERR_FORMAT, "'members' must list 1 to %u tensor names",
                    LRQ_TENSORS_MAX);
    g->first_member = f->n_members;
    g->member_count = fl->v.count;
    for (i = 0; i < fl->v.count; i++) {
        mp_value v;
        void *grown;
        member_rec *m;

        if (mp_read(&r, &v) != LRQ_OK)
            return fail(c, "HDR-1", LRQ_ERR_FORMAT, "unreadable 'members'");
        if (v.kind != MP_STR) /* checked before the next read, as for section entries */
            return fail(c, "GRP-4", LRQ_ERR_FORMAT, "'members' must list 1 to %u tensor names",
                        LRQ_TENSORS_MAX);
        grown = lrq_fmt_grow(f->members, &f->cap_members, f->n_members, sizeof *f->members);
        if (grown == NULL)
            return oom(c, "the member table");
        f->members = grown;
        m = &f->members[f->n_members++];
        m->name = v.str;
        m->name_len = v.len;
        m->group = (uint32_t)index;
        m->tensor = MEMBER_UNMATCHED;
    }
    return LRQ_OK;
}

/* One group map ([GRP-1]..[GRP-5]), in the order of spec §15's notes. */
static int parse_group(parse_ctx *const c, const uint64_t index, mp_reader *const r)
{
    lrq_file *const f = c->f;
    field gf[GF_COUNT] = {FIELD("name"),    FIELD("scheme"), FIELD("columns"), FIELD("panel"),
                          FIELD("width"),   FIELD("rank"),   FIELD("bits_r"),  FIELD("group"),
                          FIELD("scale_r"), FIELD("members"), FIELD("sections")};
    uint64_t dims[2], want[LRQ_MAX_SECTIONS] = {0};
    unsigned shared_count;
    group_rec *g;
    void *grown;
    int rc;

    lrq_fmt_where_group(c, NULL, index);
    if ((rc = read_map(c, r, gf, GF_COUNT, "GRP-1", "group")) != LRQ_OK)
        return rc;
    grown = lrq_fmt_grow(f->groups, &f->cap_groups, f->n_groups, sizeof *f->groups);
    if (grown == NULL)
        return oom(c, "the group table");
    f->groups = grown;
    g = &f->groups[f->n_groups];
    memset(g, 0, sizeof *g);

    if ((rc = get_name(c, &gf[GF_NAME], "GRP-1", &g->name, &g->name_len)) != LRQ_OK)
        return rc;
    lrq_fmt_where_group(c, g, index);

    if ((rc = get_str(c, &gf[GF_SCHEME], "GRP-2")) != LRQ_OK)
        return rc;
    if (mp_str_is(&gf[GF_SCHEME].v, lrq_fmt_scheme_names[LRQ_SCHEME_SIGNCUT]))
        g->scheme = LRQ_SCHEME_SIGNCUT;
    else if (mp_str_is(&gf[GF_SCHEME].v, lrq_fmt_scheme_names[LRQ_SCHEME_LPLR]))
        g->scheme = LRQ_SCHEME_LPLR;
    else
        return fail(c, "GRP-2", LRQ_ERR_FORMAT, "scheme '%.*s' cannot be shared (signcut or lplr)",
                    QUOTE(gf[GF_SCHEME].v));
    if ((rc = get_int(c, &gf[GF_COLUMNS], "GRP-3", 1, LRQ_DIM_MAX, &g->columns)) != LRQ_OK)
        return rc;
    if ((rc = get_int(c, &gf[GF_PANEL], "GRP-3", LRQ_PANEL_MIN, LRQ_PANEL_MAX, &g->panel)) != LRQ_OK)
        return rc;
    if (g->panel % 64 != 0)
        return fail(c, "GRP-3", LRQ_ERR_FORMAT, "'panel' = %llu is not a multiple of 64",
                    (unsigned long long)g->panel);
    g->shared.scheme = g->scheme;
    if ((rc = parse_shared_params(c, gf, &g->shared)) != LRQ_OK)
        return rc;
    if ((rc = parse_member_names(c, &gf[GF_MEMBERS], g, index)) != LRQ_OK)
        return rc;

    /* [GRP-5]: the shared sections are those of a tile of `columns`
     * columns and no rows, the first `shared_count` of its scheme. */
    shared_count = lrq_fmt_shared_sections[g->scheme];
    dims[0] = 0;
    dims[1] = g->columns;
    if (lrq_fmt_section_lengths(NULL, &g->shared, dims, want) != LRQ_OK)
        return fail(c, "LIM-5", LRQ_ERR_FORMAT, "section sizes overflow 64 bits");
    g->first_section = f->n_sections;
    if ((rc = lrq_fmt_read_entries(c, &gf[GF_SECTIONS], lrq_fmt_scheme_sections[g->scheme].kind,
                                   shared_count, want, "GRP-5", "GRP-5",
                                   g->scheme == LRQ_SCHEME_SIGNCUT ? "a signcut group"
                                                                   : "an lplr group")) != LRQ_OK)
        return rc;
    f->n_groups++;
    return LRQ_OK;
}

static int group_name_cmp(const void *const ctx, const uint32_t a, const uint32_t b)
{
    const group_rec *const g = (const group_rec *)ctx;
    return lrq_fmt_bytes_cmp(g[a].name, g[a].name_len, g[b].name, g[b].name_len);
}

static int member_name_cmp(const void *const ctx, const uint32_t a, const uint32_t b)
{
    const member_rec *const m = (const member_rec *)ctx;
    return lrq_fmt_bytes_cmp(m[a].name, m[a].name_len, m[b].name, m[b].name_len);
}

/* [GRP-1] distinct group names, [GRP-4] no tensor named twice as a member;
 * leaves the member index sorted by name for lrq_fmt_find_member(). */
static int check_unique_names(parse_ctx *const c)
{
    lrq_file *const f = c->f;
    uint32_t *order;
    uint64_t i;
    int rc;

    order = malloc(f->n_groups * sizeof *order);
    f->members_by_name = malloc(f->n_members * sizeof *f->members_by_name);
    if (order == NULL || f->members_by_name == NULL) {
        free(order);
        return oom(c, "the group name index");
    }
    for (i = 0; i < f->n_groups; i++)
        order[i] = (uint32_t)i;
    rc = lrq_fmt_sort_indices(order, f->n_groups, group_name_cmp, f->groups);
    for (i = 1; rc == LRQ_OK && i < f->n_groups; i++) {
        if (group_name_cmp(f->groups, order[i - 1], order[i]) == 0) {
            const uint32_t later = order[i - 1] > order[i] ? order[i - 1] : order[i];
            lrq_fmt_where_group(c, &f->groups[later], later);
            rc = fail(c, "GRP-1", LRQ_ERR_FORMAT, "the name appears twice");
        }
    }
    free(order);
    if (rc != LRQ_OK)
        return rc == LRQ_ERR_MEMORY ? oom(c, "the group name index") : rc;

    for (i = 0; i < f->n_members; i++)
        f->members_by_name[i] = (uint32_t)i;
    if (lrq_fmt_sort_indices(f->members_by_name, f->n_members, member_name_cmp, f->members) !=
        LRQ_OK)
        return oom(c, "the member index");
    for (i = 1; i < f->n_members; i++) {
        const uint32_t a = f->members_by_name[i - 1], b = f->members_by_name[i];
        if (member_name_cmp(f->members, a, b) == 0) {
            const member_rec *const m = &f->members[a > b ? a : b];
            lrq_fmt_where_group(c, &f->groups[m->group], m->group);
            return fail(c, "GRP-4", LRQ_ERR_FORMAT, "tensor '%.*s' is a member twice",
                        (int)(m->name_len < NAME_QUOTE ? m->name_len : NAME_QUOTE),
                        (const char *)m->name);
        }
    }
    return LRQ_OK;
}

int lrq_fmt_parse_groups(parse_ctx *const c, const field *const fl)
{
    mp_reader r = fl->next;
    uint32_t i;
    int rc;

    (void)snprintf(c->where, sizeof c->where, "header");
    if (!fl->found)
        return fail(c, "GRP-8", LRQ_ERR_FORMAT, "required_features set shared_factor (bit 1) "
                    "but there is no 'groups'");
    if (fl->v.kind != MP_ARRAY)
        return fail(c, "GRP-8", LRQ_ERR_FORMAT, "'groups' must be a list");
    if (fl->v.count == 0)
        return fail(c, "GRP-8", LRQ_ERR_FORMAT, "required_features set shared_factor (bit 1) "
                    "but 'groups' is empty");
    if (fl->v.count > LRQ_TENSORS_MAX)
        return fail(c, "GRP-1", LRQ_ERR_FORMAT, "%u groups; at most %u are allowed", fl->v.count,
                    LRQ_TENSORS_MAX);
    for (i = 0; i < fl->v.count; i++)
        if ((rc = parse_group(c, i, &r)) != LRQ_OK)
            return rc;
    return check_unique_names(c);
}

member_rec *lrq_fmt_find_member(const lrq_file *const f, const tensor_rec *const t)
{
    uint64_t lo = 0, hi = f->n_members;

    while (lo < hi) {
        const uint64_t mid = lo + (hi - lo) / 2;
        member_rec *const m = &f->members[f->members_by_name[mid]];
        const int cmp = lrq_fmt_bytes_cmp(m->name, m->name_len, t->name, t->name_len);
        if (cmp == 0)
            return m;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

enum { MF_SCHEME, MF_BITS_L, MF_SCALE_L, MF_SECTIONS, MF_COUNT };

/* The one tile of a member tensor ([GRP-6], [GRP-7]), stored resolved. */
int lrq_fmt_parse_member(parse_ctx *const c, const tensor_rec *const t, member_rec *const member,
                         mp_reader *const r)
{
    lrq_file *const f = c->f;
    const group_rec *const g = &f->groups[member->group];
    field mf[MF_COUNT] = {FIELD("scheme"), FIELD("bits_l"), FIELD("scale_l"), FIELD("sections")};
    const unsigned shared_count = lrq_fmt_shared_sections[g->scheme];
    const unsigned own_count = lrq_fmt_scheme_sections[g->scheme].count - shared_count;
    const size_t prefix = strlen(c->where);
    uint64_t want[LRQ_MAX_SECTIONS] = {0}, v = 0;
    tile_rec tl;
    void *grown;
    int rc;

    if (member->tensor != MEMBER_UNMATCHED) /* the members' names are distinct ([GRP-4]) */
        return fail(c, "TEN-2", LRQ_ERR_FORMAT, "the name appears twice");
    if (t->ndim != 2 || t->shape[1] != g->columns || !lrq_fmt_dtypes[t->dtype].is_float ||
        t->tile_shape[0] != t->shape[0] || t->tile_shape[1] != t->shape[1] || t->panel != g->panel)
        return fail(c, "GRP-6", LRQ_ERR_FORMAT, "a member of group '%.*s' is a 2-D float tensor "
                    "of %llu columns, one tile and panel %llu",
                    (int)(g->name_len < NAME_QUOTE ? g->name_len : NAME_QUOTE),
                    (const char *)g->name, (unsigned long long)g->columns,
                    (unsigned long long)g->panel);

    (void)snprintf(c->where + prefix, sizeof c->where - prefix, " tile #0");
    if ((rc = read_map(c, r, mf, MF_COUNT, "TIL-4", "tile")) != LRQ_OK)
        return rc;
    if ((rc = get_str(c, &mf[MF_SCHEME], "GRP-7")) != LRQ_OK)
        return rc;
    if (!mp_str_is(&mf[MF_SCHEME].v, lrq_fmt_scheme_names[g->scheme]))
        return fail(c, "GRP-7", LRQ_ERR_FORMAT, "scheme '%.*s' in a member of a %s group",
                    QUOTE(mf[MF_SCHEME].v), lrq_fmt_scheme_names[g->scheme]);
    tl = g->shared; /* a member tile's "width", "rank", ... keys are unknown keys ([HDR-9]) */
    if (g->scheme == LRQ_SCHEME_LPLR) {
        if ((rc = get_int(c, &mf[MF_BITS_L], "LP-1", 1, 8, &v)) != LRQ_OK)
            return rc;
        tl.bits_l = (unsigned)v;
        if ((rc = get_scale(c, &mf[MF_SCALE_L], &tl.scale_l)) != LRQ_OK)
            return rc;
    }
    if (lrq_fmt_section_lengths(t, &tl, t->shape, want) != LRQ_OK)
        return fail(c, "LIM-5", LRQ_ERR_FORMAT, "section sizes overflow 64 bits");
    tl.first_section = f->n_sections;
    if ((rc = lrq_fmt_read_entries(c, &mf[MF_SECTIONS],
                                   lrq_fmt_scheme_sections[g->scheme].kind + shared_count,
                                   own_count, want + shared_count, "SEC-1", "SEC-2",
                                   "a member tile")) != LRQ_OK)
        return rc;
    tl.in_group = member->group + 1;
    grown = lrq_fmt_grow(f->tiles, &f->cap_tiles, f->n_tiles, sizeof *f->tiles);
    if (grown == NULL)
        return oom(c, "the tile table");
    f->tiles = grown;
    f->tiles[f->n_tiles++] = tl;
    member->tensor = f->n_tensors; /* the index the tensor being read gets */
    c->where[prefix] = '\0';
    return LRQ_OK;
}

int lrq_fmt_check_members(parse_ctx *const c)
{
    const lrq_file *const f = c->f;
    uint64_t i;

    for (i = 0; i < f->n_members; i++) {
        const member_rec *const m = &f->members[i];
        if (m->tensor == MEMBER_UNMATCHED) {
            lrq_fmt_where_group(c, &f->groups[m->group], m->group);
            return fail(c, "GRP-4", LRQ_ERR_FORMAT, "member '%.*s' is not a tensor of the file",
                        (int)(m->name_len < NAME_QUOTE ? m->name_len : NAME_QUOTE),
                        (const char *)m->name);
        }
    }
    return LRQ_OK;
}
