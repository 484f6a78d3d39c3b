/* SPDX-License-Identifier: MIT */
/*
 * The header parser's shared parts: typed reads of map keys (spec §6) and
 * section entries (§8.1), used by both parts of steps 10 and 10a of spec
 * §15 -- header.c (tensors and tiles) and groups.c (groups and their member
 * tiles) -- and the entry points of groups.c that header.c calls.  Every
 * failure names the rule it reports and the map it is in (parse_ctx.where).
 */
#ifndef LRQ_FORMAT_FIELDS_H
#define LRQ_FORMAT_FIELDS_H

#include "format/container.h"

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static inline int fail(const parse_ctx *const c, const char *const rule, const int code,
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
static inline int read_fields(mp_reader *const r, const uint32_t count, field *const fields,
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

static inline int oom(const parse_ctx *const c, const char *const what)
{
    return lrq_detail(c->detail, c->dn, LRQ_ERR_MEMORY, "out of memory for %s", what);
}

static inline int missing(const parse_ctx *const c, const field *const fl, const char *const rule)
{
    return fail(c, rule, LRQ_ERR_FORMAT, "required key '%s' is missing", fl->key);
}

/* An int-typed key (not bool, not float) with lo <= value <= hi. */
static inline int get_int(const parse_ctx *const c, const field *const fl, const char *const rule,
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
static inline int get_float(const parse_ctx *const c, const field *const fl, const char *const rule,
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
static inline int get_scale(const parse_ctx *const c, const field *const fl, float *const out)
{
    const int rc = get_float(c, fl, "LP-2", out);
    if (rc == LRQ_OK && !(finite32(*out) && *out > 0))
        return fail(c, "LP-2", LRQ_ERR_FORMAT, "'%s' must be a finite binary32 value > 0", fl->key);
    return rc;
}

static inline int get_str(const parse_ctx *const c, const field *const fl, const char *const rule)
{
    if (!fl->found)
        return missing(c, fl, rule);
    if (fl->v.kind != MP_STR)
        return fail(c, rule, LRQ_ERR_FORMAT, "'%s' must be a string", fl->key);
    return LRQ_OK;
}

/* The head of a map at r and its wanted keys (read_fields()); `what` names
 * the map in messages, `rule` is the rule a value that is no map breaks. */
static inline int read_map(const parse_ctx *const c, mp_reader *const r, field *const fields,
                           const size_t n, const char *const rule, const char *const what)
{
    mp_value head;

    if (mp_read(r, &head) != LRQ_OK)
        return fail(c, "HDR-1", LRQ_ERR_FORMAT, "unreadable %s", what);
    if (head.kind != MP_MAP)
        return fail(c, rule, LRQ_ERR_FORMAT, "the %s is not a map", what);
    if (read_fields(r, head.count, fields, n) != LRQ_OK)
        return fail(c, "HDR-1", LRQ_ERR_FORMAT, "unreadable %s", what);
    return LRQ_OK;
}

/* A map's "name": a str of 1 to 1024 bytes ([TEN-2], [GRP-1]). */
static inline int get_name(const parse_ctx *const c, const field *const fl, const char *const rule,
                           const uint8_t **const name, uint32_t *const name_len)
{
    const int rc = get_str(c, fl, rule);

    if (rc != LRQ_OK)
        return rc;
    if (fl->v.len < 1 || fl->v.len > LRQ_NAME_BYTES_MAX)
        return fail(c, rule, LRQ_ERR_FORMAT, "the name has %u bytes; it needs 1 to %u",
                    fl->v.len, LRQ_NAME_BYTES_MAX);
    *name = fl->v.str;
    *name_len = fl->v.len;
    return LRQ_OK;
}

/* A section table ("sections") of `count` entries [kind, offset, length,
 * crc32c] of the kinds `kinds`, each `want[i]` bytes long, appended to
 * lrq_file.sections.  A missing or malformed table or entry, a wrong count
 * (`what` names the owner in that message: "scheme 'lplr'") or a wrong kind
 * is reported under `rule`, a wrong length under `length_rule` (tiles:
 * [SEC-1], [SEC-2]; a group's shared sections: both [GRP-5]). */
int lrq_fmt_read_entries(parse_ctx *const c, const field *const fl, const int *const kinds,
                         const unsigned count, const uint64_t *const want, const char *const rule,
                         const char *const length_rule, const char *const what);

/* Groups (groups.c, spec §10.4).  In a file that sets shared_factor: the
 * "groups" key of the top-level map, read before the tensors ([GRP-8],
 * [GRP-1]..[GRP-5]); per tensor, the group member it is or NULL, and the
 * member's one tile ([GRP-6], [GRP-7]); after every tensor, that each
 * member name is a tensor ([GRP-4]). */
int lrq_fmt_parse_groups(parse_ctx *const c, const field *const fl);
member_rec *lrq_fmt_find_member(const lrq_file *const f, const tensor_rec *const t);
int lrq_fmt_parse_member(parse_ctx *const c, const tensor_rec *const t, member_rec *const member,
                         mp_reader *const r);
int lrq_fmt_check_members(parse_ctx *const c);
/* Messages then name "group 'attn'" (or "group #3" before its name is read). */
void lrq_fmt_where_group(parse_ctx *const c, const group_rec *const g, const uint64_t index);

#endif /* LRQ_FORMAT_FIELDS_H */
