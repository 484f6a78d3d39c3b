/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the container parser and the tile decoder.
 *
 * Built and run by tests/fuzz/run.sh (clang only; sources and flags from
 * c_src/Makefile); tests/test_fuzz_replay.py replays it on the conformance
 * vectors in the test suite, built with gcc.
 *
 * The first input byte picks what the rest is:
 *
 *   even: a whole file, opened as it is.  Blind bytes rarely get past the
 *         header checksum, so this mode mostly tests the preamble and, from
 *         a corpus of real files, the placement and section checks.
 *   odd:  the msgpack header of a file whose preamble this harness writes,
 *         with the right lengths and checksum, followed by nothing: this is
 *         the mode that reaches the msgpack reader and the header rules.
 *         The first byte's higher bits are the preamble's required
 *         features (bit 1: signcut_c16, bit 2: shared_factor), so that the
 *         rules of format 1.1 and of 1.2's groups (spec §10.4) are reached
 *         too; run.sh seeds this mode with the headers of the conformance
 *         vectors, those with groups among them.
 *
 * Each accepted file is walked through every accessor, every section is
 * fetched (which runs its checksum and content checks), and every small
 * signcut or lplr tile is decoded by the product kernels, so the sanitizers
 * see all of the code a reader of a hostile file exercises.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lrq.h"

/* Decode a small signcut or lplr tile with the product kernels: what a
 * reader does next with sections the parser accepted.  Large tiles are left
 * out only to keep each fuzz iteration fast. */
static void decode_tile(lrq_file *const f, const uint64_t t, const uint64_t k,
                        const lrq_tile_info *const tl, const uint64_t panel)
{
    const void *p[LRQ_MAX_SECTIONS] = {NULL};
    uint64_t n[LRQ_MAX_SECTIONS] = {0};
    char detail[LRQ_DETAIL_SIZE];
    lrq_tile *tile = NULL;
    float *out;
    unsigned s;
    int rc;

    if (tl->scheme == LRQ_SCHEME_DENSE || tl->shape[0] * tl->shape[1] > 65536 ||
        tl->width > 4096 || tl->rank > 4096)
        return;
    for (s = 0; s < tl->section_count; s++)
        if (lrq_file_section(f, t, k, s, &p[s], &n[s], detail, sizeof detail) != LRQ_OK)
            return; /* a damaged section: refused before any kernel sees it */
    if (tl->scheme == LRQ_SCHEME_SIGNCUT && tl->c_scale != 0.0f)
        rc = lrq_tile_create_signcut_c16(&tile, tl->shape[0], tl->shape[1], tl->width, panel,
                                         tl->c_scale, p[0], (size_t)n[0], p[1], (size_t)n[1],
                                         p[2], (size_t)n[2]);
    else if (tl->scheme == LRQ_SCHEME_SIGNCUT)
        rc = lrq_tile_create_signcut(&tile, tl->shape[0], tl->shape[1], tl->width, panel,
                                     p[0], (size_t)n[0], p[1], (size_t)n[1], p[2], (size_t)n[2]);
    else if (tl->scheme == LRQ_SCHEME_QUANT)
        rc = lrq_tile_create_quant(&tile, tl->shape[0], tl->shape[1], (int)tl->bits, tl->group,
                                   (int)tl->scale_bits, tl->scale, panel, p[0], (size_t)n[0], p[1],
                                   (size_t)n[1], p[2], (size_t)n[2]);
    else
        rc = lrq_tile_create_lplr(&tile, tl->shape[0], tl->shape[1], tl->rank, (int)tl->bits_l,
                                  (int)tl->bits_r, tl->group, tl->scale_l, tl->scale_r, panel,
                                  p[0], (size_t)n[0], p[1], (size_t)n[1], p[2], (size_t)n[2],
                                  p[3], (size_t)n[3]);
    if (rc != LRQ_OK)
        abort(); /* the parser accepted these sections: the kernels must too */
    out = malloc((size_t)(tl->shape[0] * tl->shape[1]) * sizeof *out + 1);
    if (out != NULL && lrq_tile_decode(tile, out, tl->shape[1]) != LRQ_OK)
        abort();
    free(out);
    lrq_tile_free(tile);
}

/* Every group's members are tensors whose tile reads the group's shared
 * sections (spec §10.4): what a reader of the group relies on. */
static void walk_groups(lrq_file *const f, const lrq_file_info *const info)
{
    uint64_t g, m, tensor;
    unsigned s;

    for (g = 0; g < info->group_count; g++) {
        lrq_group_info gi;
        if (lrq_file_group(f, g, &gi) != LRQ_OK || gi.member_count == 0 || gi.section_count == 0)
            abort();
        for (m = 0; m < gi.member_count; m++) {
            lrq_tile_info tl;
            if (lrq_file_group_member(f, g, m, &tensor) != LRQ_OK || tensor >= info->tensor_count ||
                lrq_file_tile(f, tensor, 0, &tl) != LRQ_OK || tl.member_of != g + 1 ||
                tl.scheme != gi.scheme || tl.shape[1] != gi.columns)
                abort();
            for (s = 0; s < gi.section_count; s++)
                if (tl.section_kind[s] != gi.section_kind[s] ||
                    tl.section_offset[s] != gi.section_offset[s])
                    abort();
        }
    }
    if (lrq_file_group(f, info->group_count, &(lrq_group_info){0}) != LRQ_ERR_ARGUMENT)
        abort();
}

static void walk(lrq_file *const f)
{
    lrq_file_info info;
    uint64_t t, k, index;
    char detail[LRQ_DETAIL_SIZE];

    if (lrq_file_get_info(f, &info) != LRQ_OK)
        abort();
    for (t = 0; t < info.metadata_count; t++) {
        const char *key, *value;
        size_t key_len, value_len;
        if (lrq_file_metadata(f, t, &key, &key_len, &value, &value_len) != LRQ_OK)
            abort();
    }
    for (t = 0; t < info.tensor_count; t++) {
        lrq_tensor_info ti;
        if (lrq_file_tensor(f, t, &ti) != LRQ_OK)
            abort();
        if (lrq_file_find_tensor(f, ti.name, ti.name_len, &index) != LRQ_OK || index != t)
            abort(); /* names are unique, so the lookup must find this one */
        for (k = 0; k < ti.tile_count; k++) {
            lrq_tile_info tl;
            unsigned s;
            if (lrq_file_tile(f, t, k, &tl) != LRQ_OK)
                abort();
            for (s = 0; s < tl.section_count; s++) {
                const void *p;
                uint64_t n;
                if (lrq_file_section(f, t, k, s, &p, &n, detail, sizeof detail) == LRQ_OK &&
                    n != tl.section_length[s])
                    abort();
            }
            decode_tile(f, t, k, &tl, ti.panel);
        }
    }
    walk_groups(f, &info);
}

static void put_le64(uint8_t *const p, const uint64_t v)
{
    unsigned i;
    for (i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *const data, const size_t size)
{
    static const uint8_t magic[8] = {0x89, 'L', 'R', 'Q', 0x0D, 0x0A, 0x1A, 0x0A};
    uint8_t *file;
    size_t file_size;
    lrq_file *f = NULL;
    char detail[LRQ_DETAIL_SIZE];
    uint32_t crc;
    int rc;

    if (size == 0)
        return 0;
    if ((data[0] & 1) == 0) {
        /* An exact-size heap copy, so that ASan catches a read past the end. */
        file_size = size - 1;
        file = malloc(file_size ? file_size : 1);
        if (file == NULL)
            return 0;
        memcpy(file, data + 1, file_size);
    } else {
        file_size = 64 + (size - 1);
        file = calloc(1, file_size);
        if (file == NULL)
            return 0;
        memcpy(file, magic, 8);
        file[8] = 1; /* major 1 */
        put_le64(file + 16, (uint64_t)(data[0] >> 1) & LRQ_REQUIRED_KNOWN);
        file[10] = file[16] & LRQ_REQUIRED_SHARED_FACTOR ? 2 : file[16] ? 1 : 0; /* the minor [VER-2] */
        put_le64(file + 32, size - 1);
        put_le64(file + 40, file_size);
        memcpy(file + 64, data + 1, size - 1);
        crc = lrq_crc32c(lrq_crc32c(0, file, 48), file + 64, size - 1);
        file[48] = (uint8_t)crc;
        file[49] = (uint8_t)(crc >> 8);
        file[50] = (uint8_t)(crc >> 16);
        file[51] = (uint8_t)(crc >> 24);
    }
    rc = lrq_file_open_buffer(file, file_size, 0, &f, detail, sizeof detail);
    if (rc == LRQ_OK) {
        walk(f);
        (void)lrq_file_verify(f, LRQ_FILE_VERIFY_CONTENT, detail, sizeof detail);
    } else if (f != NULL || (rc != LRQ_ERR_MEMORY && detail[0] != '[')) {
        abort(); /* a refusal leaves no handle and names the rule it applies */
    }
    lrq_file_free(f);
    free(file);
    return 0;
}
