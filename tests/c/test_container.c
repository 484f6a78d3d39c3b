/* SPDX-License-Identifier: MIT */
/*
 * Checks of the container parser through the public header alone, meant to
 * be built with -fsanitize=address,undefined (tests/test_container_c.py does
 * so).  The Python tests compare the parser with the reference parser over
 * many files; this program makes the sanitizers watch it on damaged files:
 * every truncation and every single-bit flip of the example file of spec
 * §17, random header edits with the header checksum repaired (so they reach
 * the msgpack reader and the header rules), hand-made hostile headers, lazy
 * verification, and concurrent first use of sections.
 *
 * Prints one line per failed check and exits non-zero if any failed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lrq.h"
#include "check.h"

/* ------------------------------------------------------------------------ */
/* The example file of spec §17: two tensors ("W", signcut 2x3 of width 2;
 * "b", dense float16 of 3) and metadata, 582 bytes.  The preamble and the
 * 302-byte header are spelled out; the sections are placed below.         */

#define EXAMPLE_SIZE 582
#define EXAMPLE_HEADER_END 366

static const uint8_t example_head[EXAMPLE_HEADER_END] = {
    0x89, 0x4c, 0x52, 0x51, 0x0d, 0x0a, 0x1a, 0x0a, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2e, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x46, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x65, 0xf0, 0xc5, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x82, 0xa7, 0x74, 0x65, 0x6e, 0x73, 0x6f, 0x72,
    0x73, 0x92, 0x87, 0xa4, 0x6e, 0x61, 0x6d, 0x65, 0xa1, 0x57, 0xa5, 0x73,
    0x68, 0x61, 0x70, 0x65, 0x92, 0x02, 0x03, 0xa5, 0x64, 0x74, 0x79, 0x70,
    0x65, 0xa7, 0x66, 0x6c, 0x6f, 0x61, 0x74, 0x33, 0x32, 0xaa, 0x74, 0x69,
    0x6c, 0x65, 0x5f, 0x73, 0x68, 0x61, 0x70, 0x65, 0x92, 0x02, 0x03, 0xa5,
    0x70, 0x61, 0x6e, 0x65, 0x6c, 0xcd, 0x10, 0x00, 0xa5, 0x74, 0x69, 0x6c,
    0x65, 0x73, 0x91, 0x83, 0xa6, 0x73, 0x63, 0x68, 0x65, 0x6d, 0x65, 0xa7,
    0x73, 0x69, 0x67, 0x6e, 0x63, 0x75, 0x74, 0xa5, 0x77, 0x69, 0x64, 0x74,
    0x68, 0x02, 0xa8, 0x73, 0x65, 0x63, 0x74, 0x69, 0x6f, 0x6e, 0x73, 0x93,
    0x94, 0xa1, 0x63, 0xcd, 0x01, 0x80, 0x08, 0xce, 0x09, 0x4f, 0xfa, 0x73,
    0x94, 0xa2, 0x74, 0x74, 0xcd, 0x01, 0xc0, 0x04, 0xce, 0xb9, 0x8a, 0x09,
    0x9a, 0x94, 0xa1, 0x73, 0xcd, 0x02, 0x00, 0x04, 0xce, 0xf7, 0x00, 0x68,
    0x46, 0xa9, 0x72, 0x65, 0x6c, 0x5f, 0x65, 0x72, 0x72, 0x6f, 0x72, 0xca,
    0x00, 0x00, 0x00, 0x00, 0x86, 0xa4, 0x6e, 0x61, 0x6d, 0x65, 0xa1, 0x62,
    0xa5, 0x73, 0x68, 0x61, 0x70, 0x65, 0x91, 0x03, 0xa5, 0x64, 0x74, 0x79,
    0x70, 0x65, 0xa7, 0x66, 0x6c, 0x6f, 0x61, 0x74, 0x33, 0x32, 0xaa, 0x74,
    0x69, 0x6c, 0x65, 0x5f, 0x73, 0x68, 0x61, 0x70, 0x65, 0x91, 0x03, 0xa5,
    0x70, 0x61, 0x6e, 0x65, 0x6c, 0xcd, 0x10, 0x00, 0xa5, 0x74, 0x69, 0x6c,
    0x65, 0x73, 0x91, 0x83, 0xa6, 0x73, 0x63, 0x68, 0x65, 0x6d, 0x65, 0xa5,
    0x64, 0x65, 0x6e, 0x73, 0x65, 0xa7, 0x73, 0x74, 0x6f, 0x72, 0x61, 0x67,
    0x65, 0xa7, 0x66, 0x6c, 0x6f, 0x61, 0x74, 0x31, 0x36, 0xa8, 0x73, 0x65,
    0x63, 0x74, 0x69, 0x6f, 0x6e, 0x73, 0x91, 0x94, 0xa6, 0x76, 0x61, 0x6c,
    0x75, 0x65, 0x73, 0xcd, 0x02, 0x40, 0x06, 0xce, 0xfb, 0xf2, 0xd5, 0x21,
    0xa8, 0x6d, 0x65, 0x74, 0x61, 0x64, 0x61, 0x74, 0x61, 0x81, 0xa6, 0x73,
    0x6f, 0x75, 0x72, 0x63, 0x65, 0xac, 0x73, 0x70, 0x65, 0x63, 0x20, 0x65,
    0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65,
};

static const struct {
    unsigned offset, length;
    uint8_t bytes[8];
} example_sections[] = {
    {384, 8, {0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0x3f}}, /* c = 1.5, 0.5 */
    {448, 4, {0x02, 0x00, 0x04, 0x00}},                         /* tt */
    {512, 4, {0x02, 0x00, 0x00, 0x00}},                         /* s */
    {576, 6, {0x00, 0x38, 0x00, 0xbc, 0x00, 0x40}},             /* 0.5, -1, 2 */
};

static void make_example(uint8_t *const out)
{
    size_t i;
    memset(out, 0, EXAMPLE_SIZE);
    memcpy(out, example_head, sizeof example_head);
    for (i = 0; i < sizeof example_sections / sizeof example_sections[0]; i++)
        memcpy(out + example_sections[i].offset, example_sections[i].bytes,
               example_sections[i].length);
}

static void put_le32(uint8_t *const p, const uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Recompute the header CRC-32C of a file (after editing its header). */
static void fix_header_crc(uint8_t *const file, const size_t header_length)
{
    put_le32(file + 48, lrq_crc32c(lrq_crc32c(0, file, 48), file + 64, header_length));
}

/* Open with the given flags; return the code and keep nothing. */
static int try_open(const uint8_t *const data, const size_t size, const unsigned flags,
                    char *const detail)
{
    lrq_file *f = NULL;
    const int rc = lrq_file_open_buffer(data, size, flags, &f, detail, LRQ_DETAIL_SIZE);
    CHECK((rc == LRQ_OK) == (f != NULL));
    if (rc == LRQ_OK) {
        /* Walk everything the accessors offer: the sanitizers watch it. */
        lrq_file_info info;
        uint64_t t, k;
        CHECK(lrq_file_get_info(f, &info) == LRQ_OK);
        for (t = 0; t < info.tensor_count; t++) {
            lrq_tensor_info ti;
            CHECK(lrq_file_tensor(f, t, &ti) == LRQ_OK);
            for (k = 0; k < ti.tile_count; k++) {
                lrq_tile_info tl;
                unsigned s;
                CHECK(lrq_file_tile(f, t, k, &tl) == LRQ_OK);
                for (s = 0; s < tl.section_count; s++) {
                    const void *p;
                    uint64_t n;
                    (void)lrq_file_section(f, t, k, s, &p, &n, NULL, 0);
                }
            }
        }
    }
    lrq_file_free(f);
    return rc;
}

static int starts_with(const char *const s, const char *const prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void test_names(void)
{
    CHECK(strcmp(lrq_dtype_name(LRQ_DTYPE_BFLOAT16), "bfloat16") == 0);
    CHECK(strcmp(lrq_dtype_name(LRQ_DTYPE_BOOL), "bool") == 0);
    CHECK(lrq_dtype_name(0) == NULL && lrq_dtype_name(14) == NULL && lrq_dtype_name(-1) == NULL);
    CHECK(lrq_dtype_size(LRQ_DTYPE_FLOAT64) == 8 && lrq_dtype_size(LRQ_DTYPE_INT8) == 1);
    CHECK(lrq_dtype_size(99) == 0);
    CHECK(strcmp(lrq_scheme_name(LRQ_SCHEME_LPLR), "lplr") == 0 && lrq_scheme_name(5) == NULL);
    CHECK(strcmp(lrq_scheme_name(LRQ_SCHEME_QUANT), "quant") == 0);
    CHECK(strcmp(lrq_section_kind_name(LRQ_SECTION_L_SCALES), "l_scales") == 0);
    CHECK(strcmp(lrq_section_kind_name(LRQ_SECTION_ROW_EXPONENTS), "row_exponents") == 0);
    CHECK(lrq_section_kind_name(0) == NULL && lrq_section_kind_name(12) == NULL);
}

static void test_example(void)
{
    static uint8_t file[EXAMPLE_SIZE];
    char detail[LRQ_DETAIL_SIZE];
    lrq_file *f = NULL;
    lrq_file_info info;
    lrq_tensor_info t;
    lrq_tile_info tl;
    const char *key, *value;
    size_t key_len, value_len;
    const void *p;
    uint64_t n, index;
    float c[2];

    make_example(file);
    CHECK(lrq_file_open_buffer(file, sizeof file, 0, &f, detail, sizeof detail) == LRQ_OK);
    CHECK(detail[0] == '\0');
    if (f == NULL)
        return;
    CHECK(lrq_file_get_info(f, &info) == LRQ_OK);
    CHECK(info.format_major == 1 && info.format_minor == 0);
    CHECK(info.header_length == 302 && info.file_length == EXAMPLE_SIZE);
    CHECK(info.tensor_count == 2 && info.metadata_count == 1);
    CHECK(lrq_file_metadata(f, 0, &key, &key_len, &value, &value_len) == LRQ_OK);
    CHECK(key_len == 6 && memcmp(key, "source", 6) == 0);
    CHECK(value_len == 12 && memcmp(value, "spec example", 12) == 0);
    CHECK(lrq_file_metadata(f, 1, &key, &key_len, &value, &value_len) == LRQ_ERR_ARGUMENT);

    CHECK(lrq_file_tensor(f, 0, &t) == LRQ_OK);
    CHECK(t.name_len == 1 && t.name[0] == 'W' && t.ndim == 2);
    CHECK(t.shape[0] == 2 && t.shape[1] == 3 && t.tile_shape[0] == 2 && t.tile_shape[1] == 3);
    CHECK(t.grid[0] == 1 && t.grid[1] == 1 && t.tile_count == 1);
    CHECK(t.dtype == LRQ_DTYPE_FLOAT32 && t.panel == 4096);
    CHECK(t.has_rel_error == 1 && t.rel_error == 0.0f && t.encoder == NULL);
    CHECK(lrq_file_tile(f, 0, 0, &tl) == LRQ_OK);
    CHECK(tl.scheme == LRQ_SCHEME_SIGNCUT && tl.width == 2 && tl.section_count == 3);
    CHECK(tl.origin[0] == 0 && tl.origin[1] == 0 && tl.shape[0] == 2 && tl.shape[1] == 3);
    CHECK(tl.section_kind[0] == LRQ_SECTION_C && tl.section_kind[2] == LRQ_SECTION_S);
    CHECK(tl.section_offset[0] == 384 && tl.section_length[0] == 8);
    CHECK(tl.section_crc32c[0] == UINT32_C(0x094FFA73));
    CHECK(tl.section_offset[1] == 448 && tl.section_offset[2] == 512);
    CHECK(lrq_file_section(f, 0, 0, 0, &p, &n, detail, sizeof detail) == LRQ_OK);
    CHECK(p == file + 384 && n == 8);
    memcpy(c, p, sizeof c);
    CHECK(c[0] == 1.5f && c[1] == 0.5f);

    CHECK(lrq_file_tensor(f, 1, &t) == LRQ_OK);
    CHECK(t.name_len == 1 && t.name[0] == 'b' && t.ndim == 1 && t.shape[0] == 3);
    CHECK(t.has_rel_error == 0);
    CHECK(lrq_file_tile(f, 1, 0, &tl) == LRQ_OK);
    CHECK(tl.scheme == LRQ_SCHEME_DENSE && tl.storage == LRQ_DTYPE_FLOAT16);
    CHECK(tl.section_count == 1 && tl.section_kind[0] == LRQ_SECTION_VALUES);
    CHECK(tl.section_offset[0] == 576 && tl.section_length[0] == 6);

    CHECK(lrq_file_find_tensor(f, "b", 1, &index) == LRQ_OK && index == 1);
    CHECK(lrq_file_find_tensor(f, "W", 1, &index) == LRQ_OK && index == 0);
    CHECK(lrq_file_find_tensor(f, "x", 1, &index) == LRQ_ERR_ARGUMENT);

    /* Misuse is an argument error, never a crash. */
    CHECK(lrq_file_tensor(f, 2, &t) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_file_tile(f, 0, 1, &tl) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_file_section(f, 0, 0, 3, &p, &n, NULL, 0) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_file_section(f, 1, 0, 0, NULL, &n, NULL, 0) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_file_verify(f, 4u, NULL, 0) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_file_verify(f, LRQ_FILE_VERIFY_CONTENT, NULL, 0) == LRQ_OK);
    lrq_file_free(f);

    CHECK(lrq_file_open_buffer(file, sizeof file, 0, NULL, NULL, 0) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_file_open_buffer(NULL, 5, 0, &f, NULL, 0) == LRQ_ERR_ARGUMENT && f == NULL);
    CHECK(lrq_file_open_buffer(file, sizeof file, 8u, &f, NULL, 0) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_file_open_buffer(NULL, 0, 0, &f, detail, sizeof detail) == LRQ_ERR_FORMAT);
    CHECK(starts_with(detail, "[PRE-8]"));
    CHECK(lrq_file_open_buffer(file, sizeof file, LRQ_FILE_VERIFY_CONTENT, &f, detail, 8) ==
          LRQ_OK);
    lrq_file_free(f);
    lrq_file_free(NULL);
}

/* Every prefix of the file is refused, as a format error of the preamble. */
static void test_truncations(void)
{
    static uint8_t file[EXAMPLE_SIZE];
    char detail[LRQ_DETAIL_SIZE];
    size_t size;

    make_example(file);
    for (size = 0; size < EXAMPLE_SIZE; size++) {
        /* A heap copy of exactly `size` bytes: ASan sees any read past it. */
        uint8_t *const copy = malloc(size ? size : 1);
        int rc;
        memcpy(copy, file, size);
        rc = try_open(copy, size, LRQ_FILE_VERIFY_CONTENT, detail);
        CHECK(rc == LRQ_ERR_FORMAT);
        CHECK(starts_with(detail, size < 64 ? "[PRE-8]" : "[PRE-7]"));
        free(copy);
    }
}

/* Every single-bit flip, with the class each region of the file must give. */
static void test_bit_flips(void)
{
    static uint8_t file[EXAMPLE_SIZE];
    char detail[LRQ_DETAIL_SIZE];
    size_t i;
    unsigned bit;

    make_example(file);
    for (i = 0; i < EXAMPLE_SIZE; i++) {
        for (bit = 0; bit < 8; bit++) {
            int rc, want;
            file[i] ^= (uint8_t)(1u << bit);
            rc = try_open(file, EXAMPLE_SIZE, LRQ_FILE_VERIFY_CONTENT, detail);
            if (i < 8)
                want = LRQ_ERR_FORMAT; /* [PRE-1] */
            else if (i == 16 && (bit <= 1 || bit == 3))
                want = LRQ_ERR_CHECKSUM; /* bits 0 (1.1), 1 (1.2), 3 (1.5) are known: [PRE-9] finds them */
            else if (i < 10 || (i >= 16 && i < 24))
                want = LRQ_ERR_UNSUPPORTED; /* [PRE-2], [PRE-4] */
            else if ((i >= 12 && i < 16) || (i >= 52 && i < 64))
                want = LRQ_ERR_FORMAT; /* [PRE-3] */
            else if (i >= 32 && i < 40) {
                /* A header length still inside the file only moves the
                 * header's end: the checksum finds it. */
                uint64_t length = 0;
                unsigned j;
                for (j = 8; j > 0; j--)
                    length = length << 8 | file[32 + j - 1];
                want = length >= 1 && length <= EXAMPLE_SIZE - 64 ? LRQ_ERR_CHECKSUM
                                                                  : LRQ_ERR_FORMAT;
            } else if (i >= 40 && i < 48)
                want = LRQ_ERR_FORMAT; /* [PRE-7] */
            else if (i < EXAMPLE_HEADER_END)
                want = LRQ_ERR_CHECKSUM; /* [PRE-9]: minor, flags, CRC, header */
            else if ((i >= 384 && i < 392) || (i >= 448 && i < 452) || (i >= 512 && i < 516) ||
                     i >= 576)
                want = LRQ_ERR_CHECKSUM; /* [SEC-6] */
            else
                want = LRQ_ERR_PADDING; /* [SEC-5] */
            if (rc != want)
                fprintf(stderr, "flip of byte %zu bit %u: %s (%s)\n", i, bit, lrq_error_name(rc),
                        detail);
            CHECK(rc == want);
            file[i] ^= (uint8_t)(1u << bit);
        }
    }
}

/* Random edits of the header with its checksum repaired, so that they reach
 * the msgpack reader and the header rules; the verdict is not predicted,
 * only that it is a verdict of the file (and the sanitizers stay quiet). */
static void test_header_edits(void)
{
    static uint8_t file[EXAMPLE_SIZE];
    char detail[LRQ_DETAIL_SIZE];
    unsigned round, accepted = 0;

    for (round = 0; round < 50000; round++) {
        const unsigned edits = 1 + (unsigned)(rng_next() % 4);
        unsigned e;
        int rc;
        make_example(file);
        for (e = 0; e < edits; e++) {
            const size_t at = 64 + (size_t)(rng_next() % 302);
            file[at] = (uint8_t)(rng_next() % 4 ? rng_next() : file[at] ^ (1u << (rng_next() % 8)));
        }
        fix_header_crc(file, 302);
        rc = try_open(file, EXAMPLE_SIZE, LRQ_FILE_VERIFY_CONTENT, detail);
        CHECK(rc == LRQ_OK || rc == LRQ_ERR_FORMAT || rc == LRQ_ERR_PADDING ||
              rc == LRQ_ERR_CHECKSUM);
        CHECK(rc == LRQ_OK || detail[0] == '[');
        accepted += rc == LRQ_OK;
    }
    /* Some edits only touch values that are ignored or still valid. */
    CHECK(accepted > 0);
}

/* Lazy verification: open reads no section; first use checks, once. */
static void test_lazy(void)
{
    static uint8_t file[EXAMPLE_SIZE];
    char detail[LRQ_DETAIL_SIZE];
    lrq_file *f = NULL;
    const void *p;
    uint64_t n;

    make_example(file);
    file[385] ^= 1; /* inside c */
    CHECK(lrq_file_open_buffer(file, sizeof file, 0, &f, detail, sizeof detail) == LRQ_OK);
    CHECK(lrq_file_section(f, 0, 0, 0, &p, &n, detail, sizeof detail) == LRQ_ERR_CHECKSUM);
    CHECK(starts_with(detail, "[SEC-6] tensor 'W' tile #0 section 'c'"));
    /* Not remembered: the same verdict again. */
    CHECK(lrq_file_section(f, 0, 0, 0, &p, &n, NULL, 0) == LRQ_ERR_CHECKSUM);
    CHECK(lrq_file_section(f, 0, 0, 1, &p, &n, NULL, 0) == LRQ_OK);
    CHECK(lrq_file_verify(f, LRQ_FILE_VERIFY_CHECKSUMS, NULL, 0) == LRQ_ERR_CHECKSUM);
    lrq_file_free(f);
    CHECK(lrq_file_open_buffer(file, sizeof file, LRQ_FILE_VERIFY_CHECKSUMS, &f, NULL, 0) ==
          LRQ_ERR_CHECKSUM);

    /* Once verified, a section is not verified again: damage done to the
     * buffer afterwards (which the API forbids) goes unseen by this handle
     * but not by a new one. */
    make_example(file);
    CHECK(lrq_file_open_buffer(file, sizeof file, 0, &f, NULL, 0) == LRQ_OK);
    CHECK(lrq_file_section(f, 1, 0, 0, &p, &n, NULL, 0) == LRQ_OK);
    file[577] ^= 0x7C; /* 0.5 -> NaN, CRC broken too */
    CHECK(lrq_file_section(f, 1, 0, 0, &p, &n, NULL, 0) == LRQ_OK);
    lrq_file_free(f);
    CHECK(lrq_file_open_buffer(file, sizeof file, LRQ_FILE_VERIFY_CONTENT, &f, NULL, 0) ==
          LRQ_ERR_CHECKSUM);
}

typedef struct {
    lrq_file *file;
    int failures;
} worker_arg;

static void *worker(void *const p)
{
    worker_arg *const a = (worker_arg *)p;
    unsigned round, s;

    for (round = 0; round < 200; round++) {
        for (s = 0; s < 3; s++) {
            const void *data;
            uint64_t n;
            if (lrq_file_section(a->file, 0, 0, s, &data, &n, NULL, 0) != LRQ_OK)
                a->failures++;
        }
        {
            const void *data;
            uint64_t n;
            if (lrq_file_section(a->file, 1, 0, 0, &data, &n, NULL, 0) != LRQ_OK)
                a->failures++;
        }
    }
    return NULL;
}

/* First use from several threads at once. */
static void test_threads(void)
{
    static uint8_t file[EXAMPLE_SIZE];
    pthread_t threads[6];
    worker_arg args[6];
    lrq_file *f = NULL;
    unsigned i;

    make_example(file);
    CHECK(lrq_file_open_buffer(file, sizeof file, 0, &f, NULL, 0) == LRQ_OK);
    for (i = 0; i < 6; i++) {
        args[i].file = f;
        args[i].failures = 0;
        CHECK(pthread_create(&threads[i], NULL, worker, &args[i]) == 0);
    }
    for (i = 0; i < 6; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
        CHECK(args[i].failures == 0);
    }
    lrq_file_free(f);
}

/* ------------------------------------------------------------------------ */
/* Hostile headers, written with a few msgpack helpers.                     */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *const b, const void *const data, const size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = 2 * (b->n + n);
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL)
            abort();
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void put_u8(buf *const b, const unsigned v)
{
    const uint8_t c = (uint8_t)v;
    put(b, &c, 1);
}

static void put_be(buf *const b, const uint64_t v, const unsigned n)
{
    unsigned i;
    for (i = n; i > 0; i--)
        put_u8(b, (unsigned)(v >> (8 * (i - 1))) & 0xFFu);
}

static void put_str(buf *const b, const char *const s)
{
    const size_t n = strlen(s);
    put_u8(b, 0xA0u | (unsigned)n); /* fixstr: n < 32 here */
    put(b, s, n);
}

static void put_uint(buf *const b, const uint64_t v)
{
    if (v < 128) {
        put_u8(b, (unsigned)v);
    } else if (v <= 0xFFFFFFFFu) {
        put_u8(b, 0xCE);
        put_be(b, v, 4);
    } else {
        put_u8(b, 0xCF);
        put_be(b, v, 8);
    }
}

/* An array or map head: the fix form below 16 entries, else the 32-bit one
 * (fix is 0x90 or 0x80, wide 0xDD or 0xDF). */
static void put_head(buf *const b, const uint32_t n, const unsigned fix, const unsigned wide)
{
    if (n < 16) {
        put_u8(b, fix | n);
    } else {
        put_u8(b, wide);
        put_be(b, n, 4);
    }
}

static void put_array(buf *const b, const uint32_t n)
{
    put_head(b, n, 0x90, 0xDD);
}

static void put_map(buf *const b, const uint32_t n)
{
    put_head(b, n, 0x80, 0xDF);
}

/* The start of a one-tensor header: {"tensors": [{"name": "W", "shape": ...,
 * "dtype": "float32", "tile_shape": ..., "panel": 4096, "tiles": <caller>}]} */
static void put_tensor_start(buf *const b, const uint64_t rows, const uint64_t cols,
                             const uint64_t tile)
{
    put_map(b, 1);
    put_str(b, "tensors");
    put_array(b, 1);
    put_map(b, 6);
    put_str(b, "name");
    put_str(b, "W");
    put_str(b, "shape");
    put_array(b, 2);
    put_uint(b, rows);
    put_uint(b, cols);
    put_str(b, "dtype");
    put_str(b, "float32");
    put_str(b, "tile_shape");
    put_array(b, 2);
    put_uint(b, tile);
    put_uint(b, tile);
    put_str(b, "panel");
    put_uint(b, 4096);
    put_str(b, "tiles");
}

/* A file holding the header in b and nothing else; opened, then freed. */
static int open_header(const buf *const b, char *const detail)
{
    const size_t size = 64 + b->n;
    uint8_t *const file = calloc(1, size);
    int rc;

    memcpy(file, example_head, 8 + 2); /* magic, major */
    file[32] = (uint8_t)b->n;
    file[33] = (uint8_t)(b->n >> 8);
    file[34] = (uint8_t)(b->n >> 16);
    file[35] = (uint8_t)(b->n >> 24);
    memcpy(file + 40, file + 32, 4);
    file[40] = (uint8_t)size;
    file[41] = (uint8_t)(size >> 8);
    file[42] = (uint8_t)(size >> 16);
    file[43] = (uint8_t)(size >> 24);
    memcpy(file + 64, b->p, b->n);
    fix_header_crc(file, b->n);
    rc = try_open(file, size, LRQ_FILE_VERIFY_CONTENT, detail);
    free(file);
    return rc;
}

static void expect_header(buf *const b, const int want, const char *const rule)
{
    char detail[LRQ_DETAIL_SIZE];
    const int rc = open_header(b, detail);
    if (rc != want || (rule != NULL && !starts_with(detail, rule)))
        fprintf(stderr, "expected %s %s, got %s: %s\n", lrq_error_name(want), rule ? rule : "",
                lrq_error_name(rc), detail);
    CHECK(rc == want);
    CHECK(rule == NULL || starts_with(detail, rule));
    b->n = 0;
}

static void test_hostile_headers(void)
{
    buf b = {NULL, 0, 0};
    unsigned i, depth;
    char key[4];

    /* Depth 8 is the limit: {"tensors": [], "x": [[[[[[[]]]]]]]} is fine
     * (7 arrays under the top map), one more array is not. */
    for (depth = 7; depth <= 8; depth++) {
        put_map(&b, 2);
        put_str(&b, "tensors");
        put_array(&b, 0);
        put_str(&b, "x");
        for (i = 1; i < depth; i++)
            put_array(&b, 1);
        put_array(&b, 0);
        expect_header(&b, depth == 7 ? LRQ_OK : LRQ_ERR_FORMAT, depth == 7 ? NULL : "[LIM-3]");
    }

    /* 65 map entries. */
    put_map(&b, 65);
    for (i = 0; i < 65; i++) {
        (void)snprintf(key, sizeof key, "%u", i);
        put_str(&b, key);
        put_u8(&b, 0xC0);
    }
    expect_header(&b, LRQ_ERR_FORMAT, "[LIM-1]");

    /* Claims without bytes behind them: no allocation, just a refusal. */
    put_map(&b, 1);
    put_str(&b, "x");
    put_array(&b, (1u << 20) + 1);
    expect_header(&b, LRQ_ERR_FORMAT, "[LIM-2]");
    put_map(&b, 1);
    put_str(&b, "x");
    put_array(&b, 1u << 20);
    expect_header(&b, LRQ_ERR_FORMAT, "[HDR-1]");
    put_map(&b, 1);
    put_str(&b, "x");
    put_u8(&b, 0xDB);
    put_be(&b, 65536, 4);
    expect_header(&b, LRQ_ERR_FORMAT, "[LIM-6]");
    put_map(&b, 0xFFFFFFFFu);
    expect_header(&b, LRQ_ERR_FORMAT, "[LIM-1]");

    /* Profile violations. */
    put_map(&b, 2);
    put_str(&b, "a");
    put_u8(&b, 0xC0);
    put_str(&b, "a");
    put_u8(&b, 0xC0);
    expect_header(&b, LRQ_ERR_FORMAT, "[HDR-4]");
    put_map(&b, 1);
    put_str(&b, "a");
    put(&b, "\xC4\x00", 2); /* bin 8 */
    expect_header(&b, LRQ_ERR_FORMAT, "[HDR-2]");
    put_map(&b, 1);
    put_str(&b, "a");
    put(&b, "\xD4\x01\x00", 3); /* fixext 1 */
    expect_header(&b, LRQ_ERR_FORMAT, "[HDR-2]");
    put_map(&b, 1);
    put_str(&b, "a");
    put_u8(&b, 0xC1);
    expect_header(&b, LRQ_ERR_FORMAT, "[HDR-2]");
    put_map(&b, 1);
    put_u8(&b, 0x01); /* an int key */
    put_u8(&b, 0xC0);
    expect_header(&b, LRQ_ERR_FORMAT, "[HDR-2]");
    put_map(&b, 1);
    put_str(&b, "a");
    put(&b, "\xA3\xED\xA0\x80", 4); /* an encoded surrogate */
    expect_header(&b, LRQ_ERR_FORMAT, "[HDR-3]");
    put_map(&b, 1);
    put_str(&b, "a");
    put(&b, "\xA2\xC0\x80", 3); /* an overlong NUL */
    expect_header(&b, LRQ_ERR_FORMAT, "[HDR-3]");
    put_map(&b, 1);
    put_str(&b, "a");
    put(&b, "\xA4\xF4\x90\x80\x80", 5); /* above U+10FFFF */
    expect_header(&b, LRQ_ERR_FORMAT, "[HDR-3]");
    put_map(&b, 1);
    put_str(&b, "a");
    put(&b, "\xA4\xF0\x9F\x98\x80", 5); /* U+1F600 is fine */
    expect_header(&b, LRQ_ERR_FORMAT, "[HDR-5]");
    put_map(&b, 0);
    put_u8(&b, 0xC0);
    expect_header(&b, LRQ_ERR_FORMAT, "[HDR-1]");
    put_array(&b, 0);
    expect_header(&b, LRQ_ERR_FORMAT, "[HDR-1]");

    /* A 2^31-1 square matrix of 1x1 tiles: too many elements. */
    put_tensor_start(&b, (UINT64_C(1) << 31) - 1, (UINT64_C(1) << 31) - 1, 1);
    put_array(&b, 0);
    expect_header(&b, LRQ_ERR_FORMAT, "[TEN-3]");
    /* 2^24 x 2^24 (2^48 elements) of 1x1 tiles: a grid of 2^48 tiles that
     * the array does not hold. */
    put_tensor_start(&b, UINT64_C(1) << 24, UINT64_C(1) << 24, 1);
    put_array(&b, 0);
    expect_header(&b, LRQ_ERR_FORMAT, "[TIL-3]");
    /* 2^20 tiles that are empty maps: refused at the first tile. */
    put_tensor_start(&b, 1024, 1024, 1);
    put_array(&b, 1u << 20);
    for (i = 0; i < (1u << 20); i++)
        put_u8(&b, 0x80);
    expect_header(&b, LRQ_ERR_FORMAT, "[TIL-4]");
    /* A signcut tile whose width makes tt and s large: the lengths are
     * computed, compared and refused, never allocated. */
    put_tensor_start(&b, UINT64_C(1) << 24, UINT64_C(1) << 24, UINT64_C(1) << 24);
    put_array(&b, 1);
    put_map(&b, 3);
    put_str(&b, "scheme");
    put_str(&b, "signcut");
    put_str(&b, "width");
    put_uint(&b, (UINT64_C(1) << 31) - 1);
    put_str(&b, "sections");
    put_array(&b, 3);
    for (i = 0; i < 3; i++) {
        put_array(&b, 4);
        put_str(&b, i == 0 ? "c" : i == 1 ? "tt" : "s");
        put_uint(&b, 0);
        put_uint(&b, 8);
        put_uint(&b, 0);
    }
    expect_header(&b, LRQ_ERR_FORMAT, "[SEC-2]");
    free(b.p);
}

int main(void)
{
    test_names();
    test_example();
    test_truncations();
    test_bit_flips();
    test_header_edits();
    test_lazy();
    test_threads();
    test_hostile_headers();
    return checks_result("test_container", lrq_isa_name());
}
