/* SPDX-License-Identifier: MIT */
/*
 * Checks of the C core through its public header alone, meant to be built
 * with -fsanitize=address,undefined (tests/test_native.py does so): the
 * Python tests cover behaviour broadly, this program makes the sanitizers
 * watch the same code paths, including the argument checks Python never
 * reaches because it validates first.
 *
 * Prints one line per failed check and exits non-zero if any failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lrq.h"

static void test_versions_and_errors(void)
{
    CHECK(lrq_version_number() == LRQ_VERSION_NUMBER);
    CHECK(LRQ_VERSION_NUMBER == 200);
    CHECK(LRQ_FORMAT_MAJOR == 1 && LRQ_FORMAT_MINOR == 2 && LRQ_REQUIRED_KNOWN == 11);
    CHECK(strcmp(lrq_error_name(LRQ_OK), "LRQ_OK") == 0);
    CHECK(strcmp(lrq_error_name(LRQ_ERR_PADDING), "LRQ_ERR_PADDING") == 0);
    CHECK(strcmp(lrq_error_name(LRQ_ERR_INTERNAL), "LRQ_ERR_INTERNAL") == 0);
    CHECK(strcmp(lrq_error_name(12345), "unknown error") == 0);
    CHECK(lrq_isa_name() != NULL);
}

static void test_crc(void)
{
    static uint8_t buf[4099];
    size_t i, split;
    uint32_t whole;

    CHECK(lrq_crc32c(0, "123456789", 9) == UINT32_C(0xE3069283));
    CHECK(lrq_crc32c(0, NULL, 0) == 0);
    CHECK(lrq_crc32c(UINT32_C(0xDEADBEEF), NULL, 0) == UINT32_C(0xDEADBEEF));
    for (i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rng_next();
    whole = lrq_crc32c(0, buf, sizeof buf);
    /* Every split point, so each tail length of the 8- and 4-byte loops and
     * every start misalignment is exercised. */
    for (split = 0; split <= 40; split++)
        CHECK(lrq_crc32c(lrq_crc32c(0, buf, split), buf + split, sizeof buf - split) == whole);
}

static void round_trip(const uint64_t rows, const uint64_t k, const int bits, const uint64_t panel)
{
    const size_t count = (size_t)(rows * k);
    uint8_t *const elems = malloc(count + 1);
    uint8_t *const back = malloc(count + 1);
    float *const signs = malloc((count + 1) * sizeof(float));
    uint64_t nbytes = 0;
    uint8_t *packed;
    size_t i;

    CHECK(lrq_layout_size(rows, k, bits, panel, &nbytes) == LRQ_OK);
    CHECK(nbytes == rows * ((k + 15) / 16) * (bits == 1 ? 2u : 16u));
    packed = malloc((size_t)nbytes + 1);
    if (elems == NULL || back == NULL || signs == NULL || packed == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (i = 0; i < count; i++)
        elems[i] = (uint8_t)(bits == 1 ? rng_next() & 1u : rng_next());
    CHECK(lrq_layout_pack(elems, rows, k, bits, panel, packed, (size_t)nbytes) == LRQ_OK);
    CHECK(lrq_layout_unpack(packed, (size_t)nbytes, rows, k, bits, panel, back) == LRQ_OK);
    CHECK(memcmp(elems, back, count) == 0);
    if (bits == 1) {
        CHECK(lrq_layout_unpack_signs_f32(packed, (size_t)nbytes, rows, k, panel, signs) == LRQ_OK);
        for (i = 0; i < count; i++)
            CHECK(signs[i] == (elems[i] ? -1.0f : 1.0f));
    }
    /* The length must be exact when reading. */
    CHECK(lrq_layout_unpack(packed, (size_t)nbytes + 1, rows, k, bits, panel, back) ==
          LRQ_ERR_BUFFER_SIZE);
    if (nbytes > 0) {
        CHECK(lrq_layout_unpack(packed, (size_t)nbytes - 1, rows, k, bits, panel, back) ==
              LRQ_ERR_BUFFER_SIZE);
        CHECK(lrq_layout_pack(elems, rows, k, bits, panel, packed, (size_t)nbytes - 1) ==
              LRQ_ERR_BUFFER_SIZE);
    }
    /* The last byte always holds padding when k is not a multiple of 16:
     * it belongs to the last chunk of the last row of the last panel. */
    if (k % 16 != 0 && rows > 0) {
        packed[nbytes - 1] = 0x80;
        CHECK(lrq_layout_unpack(packed, (size_t)nbytes, rows, k, bits, panel, back) ==
              LRQ_ERR_PADDING);
        if (bits == 1)
            CHECK(lrq_layout_unpack_signs_f32(packed, (size_t)nbytes, rows, k, panel, signs) ==
                  LRQ_ERR_PADDING);
    }
    free(packed);
    free(signs);
    free(back);
    free(elems);
}

static void test_layout(void)
{
    static const uint64_t shapes[][2] = {{0, 0}, {0, 5}, {5, 0}, {1, 1},   {1, 16}, {16, 16},
                                         {17, 33}, {3, 64}, {40, 200}, {33, 129}, {2, 4100}};
    static const uint64_t panels[] = {64, 128, 4096};
    size_t s, p;

    for (s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (p = 0; p < sizeof panels / sizeof panels[0]; p++) {
            round_trip(shapes[s][0], shapes[s][1], 1, panels[p]);
            round_trip(shapes[s][0], shapes[s][1], 8, panels[p]);
        }
}

static void test_bad_arguments(void)
{
    uint8_t elems[32] = {0};
    uint8_t packed[64] = {0};
    float f[32];
    uint64_t n = 7;

    CHECK(lrq_layout_size(1, 1, 1, 64, NULL) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_layout_size(1, 1, 2, 64, &n) == LRQ_ERR_ARGUMENT);
    CHECK(n == 7); /* not written on failure */
    CHECK(lrq_layout_size(1, 1, 1, 0, &n) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_layout_size(1, 1, 1, 96, &n) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_layout_size(1, 1, 1, (UINT64_C(1) << 20) + 64, &n) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_layout_size(1, 1, 1, UINT64_C(1) << 20, &n) == LRQ_OK);
    /* Sizes that do not fit in 64 bits. */
    CHECK(lrq_layout_size(UINT64_MAX, 16, 1, 64, &n) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_layout_size(2, UINT64_MAX, 8, 64, &n) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_layout_size(1, UINT64_MAX, 8, 64, &n) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_layout_size(1, UINT64_MAX, 1, 64, &n) == LRQ_OK);
    CHECK(n == (UINT64_C(1) << 61));
    /* The plain array rows*k would not fit, though the layout size does. */
    CHECK(lrq_layout_unpack(packed, 0, UINT64_C(1) << 40, UINT64_C(1) << 30, 1, 64, elems) ==
          LRQ_ERR_ARGUMENT);
    /* NULL where a buffer is needed; NULL is fine where it is empty. */
    CHECK(lrq_layout_pack(NULL, 2, 16, 1, 64, packed, sizeof packed) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_layout_pack(elems, 2, 16, 1, 64, NULL, 0) == LRQ_ERR_BUFFER_SIZE);
    CHECK(lrq_layout_pack(NULL, 0, 16, 1, 64, NULL, 0) == LRQ_OK);
    CHECK(lrq_layout_unpack(NULL, 4, 2, 16, 1, 64, elems) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_layout_unpack(packed, 4, 2, 16, 1, 64, NULL) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_layout_unpack(NULL, 0, 5, 0, 8, 64, NULL) == LRQ_OK);
    CHECK(lrq_layout_unpack_signs_f32(packed, 4, 2, 16, 64, NULL) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_layout_unpack_signs_f32(packed, 4, 2, 16, 63, f) == LRQ_ERR_ARGUMENT);
    /* Sign elements must be bits, in full and in partial chunks. */
    elems[3] = 2;
    CHECK(lrq_layout_pack(elems, 2, 16, 1, 64, packed, sizeof packed) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_layout_pack(elems, 1, 5, 1, 64, packed, sizeof packed) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_layout_pack(elems, 2, 16, 8, 64, packed, sizeof packed) == LRQ_OK);
    /* A larger output buffer is fine and untouched past the layout size. */
    memset(packed, 0xAB, sizeof packed);
    elems[3] = 1;
    CHECK(lrq_layout_pack(elems, 1, 5, 1, 64, packed, sizeof packed) == LRQ_OK);
    CHECK(packed[0] == 0x08 && packed[1] == 0 && packed[2] == 0xAB);
}

/* Tile constructors with a message: the rule, the section and where, in
 * the words lrq_file_verify() uses; "" on success. */
static void test_tile_detail(void)
{
    const float one = 1.0f, inf = 1.0f / 0.0f;
    uint8_t tt[2] = {0, 0}, s[2] = {0, 0}, c[4], codes[64 * 2], scales[2] = {0, 0x3C};
    char detail[LRQ_DETAIL_SIZE];
    lrq_tile *t = NULL;

    memcpy(c, &one, sizeof c);
    /* 1 x 1 with w = 1: one word per factor, whose bits 1..15 are padding. */
    CHECK(lrq_tile_create_signcut_detail(&t, 1, 1, 1, 64, c, 4, tt, 2, s, 2, detail,
                                         sizeof detail) == LRQ_OK);
    CHECK(t != NULL && detail[0] == '\0');
    lrq_tile_free(t);
    tt[0] = 0x20;
    CHECK(lrq_tile_create_signcut_detail(&t, 1, 1, 1, 64, c, 4, tt, 2, s, 2, detail,
                                         sizeof detail) == LRQ_ERR_PADDING);
    CHECK(t == NULL);
    CHECK(strcmp(detail, "[LAY-1] section 'tt': a padding bit in the word at byte 0 is not zero") == 0);
    tt[0] = 0;
    memcpy(c, &inf, sizeof c);
    CHECK(lrq_tile_create_signcut_detail(&t, 1, 1, 1, 64, c, 4, tt, 2, s, 2, detail,
                                         sizeof detail) == LRQ_ERR_FORMAT);
    CHECK(strcmp(detail, "[SC-2] section 'c': c[0] is NaN or infinite") == 0);
    CHECK(lrq_tile_create_signcut_detail(&t, 1, 1, 1, 64, c, 3, tt, 2, s, 2, detail,
                                         sizeof detail) == LRQ_ERR_BUFFER_SIZE);
    CHECK(strstr(detail, "section 'c' is 3 bytes") != NULL);
    /* The binary16 form: an infinite weight, then a scale that is no power of two. */
    c[0] = 0x00;
    c[1] = 0x7C;
    CHECK(lrq_tile_create_signcut_c16_detail(&t, 1, 1, 1, 64, 1.0f, c, 2, tt, 2, s, 2, detail,
                                             sizeof detail) == LRQ_ERR_FORMAT);
    CHECK(strncmp(detail, "[SC-2] section 'c'", 18) == 0);
    c[1] = 0x3C;
    CHECK(lrq_tile_create_signcut_c16_detail(&t, 1, 1, 1, 64, 3.0f, c, 2, tt, 2, s, 2, detail,
                                             sizeof detail) == LRQ_ERR_FORMAT);
    CHECK(strncmp(detail, "[SC-3]", 6) == 0);
    /* lplr, 1 x 1, rank 1, 5-bit codes (one 16-byte word group per factor): a code of 32 breaks [LP-4];
     * a negative scale [LP-3]; a bad super-scale [LP-2]. */
    memset(codes, 0, sizeof codes);
    codes[0] = 32;
    CHECK(lrq_tile_create_lplr_detail(&t, 1, 1, 1, 5, 5, 16, 1.0f, 1.0f, 64, codes, 16, scales, 2,
                                      codes + 64, 16, scales, 2, detail,
                                      sizeof detail) == LRQ_ERR_FORMAT);
    CHECK(strcmp(detail, "[LP-4] section 'r_codes': the word at byte 0 holds a code of more "
                         "than 5 bits") == 0);
    codes[0] = 0;
    scales[1] = 0xBC;
    CHECK(lrq_tile_create_lplr_detail(&t, 1, 1, 1, 5, 5, 16, 1.0f, 1.0f, 64, codes, 16, scales, 2,
                                      codes + 64, 16, scales, 2, detail,
                                      sizeof detail) == LRQ_ERR_FORMAT);
    CHECK(strncmp(detail, "[LP-3] section 'r_scales': scale #0", 35) == 0);
    scales[1] = 0x3C;
    CHECK(lrq_tile_create_lplr_detail(&t, 1, 1, 1, 5, 5, 16, -1.0f, 1.0f, 64, codes, 16, scales, 2,
                                      codes + 64, 16, scales, 2, detail,
                                      sizeof detail) == LRQ_ERR_FORMAT);
    CHECK(strncmp(detail, "[LP-2]", 6) == 0);
    CHECK(lrq_tile_create_lplr_detail(&t, 1, 1, 1, 5, 5, 16, 1.0f, 1.0f, 64, codes, 16, scales, 2,
                                      codes + 64, 16, scales, 2, detail, sizeof detail) == LRQ_OK);
    CHECK(t != NULL && detail[0] == '\0');
    lrq_tile_free(t);
    /* NULL detail is allowed, as for the file API. */
    CHECK(lrq_tile_create_signcut_detail(&t, 1, 1, 1, 64, c, 3, tt, 2, s, 2, NULL, 0) ==
          LRQ_ERR_BUFFER_SIZE);
}

int main(void)
{
    test_versions_and_errors();
    test_crc();
    test_layout();
    test_bad_arguments();
    test_tile_detail();
    return checks_result("test_core", lrq_isa_name());
}
