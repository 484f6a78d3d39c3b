/* SPDX-License-Identifier: MIT */
/*
 * The signcut encoder through lrq.h alone, built with ASan and UBSan by
 * tests/test_encoder_c.py: every public function, odd shapes (1x1, thin,
 * wide, sizes that are not multiples of 16 or 64, widths that cross block
 * boundaries), two threads, the all-zero matrix, and the argument checks
 * that Python never reaches.  Results must not depend on the thread count
 * or on how cuts are split between run() calls.
 *
 * Prints one line per failed check and exits non-zero if any failed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lrq.h"

/* Same seed as before check.h was shared, so the inputs are unchanged. */
static double uniform(void)
{
    return (double)(rng_next() >> 11) / 9007199254740992.0;
}

static void seed_inputs(void)
{
    rng_state = UINT64_C(0x243F6A8885A308D3);
}

typedef struct {
    uint8_t *c, *tt, *s;
    size_t c_len, tt_len, s_len;
} sections;

static void get_sections(const lrq_signcut_encoder *e, uint64_t rows, uint64_t cols, sections *out)
{
    const uint64_t w = lrq_signcut_encoder_width(e);
    uint64_t tt, s;
    CHECK(lrq_layout_size(w, cols, 1, 64, &tt) == LRQ_OK);
    CHECK(lrq_layout_size(rows, w, 1, 64, &s) == LRQ_OK);
    out->c_len = (size_t)(4 * w);
    out->tt_len = (size_t)tt;
    out->s_len = (size_t)s;
    out->c = malloc(out->c_len + 1);
    out->tt = malloc(out->tt_len + 1);
    out->s = malloc(out->s_len + 1);
    CHECK(lrq_signcut_encoder_write(e, 64, out->c, out->c_len, out->tt, out->tt_len, out->s,
                                    out->s_len) == LRQ_OK);
}

static int same(const sections *a, const sections *b)
{
    return a->c_len == b->c_len && a->tt_len == b->tt_len && a->s_len == b->s_len &&
           memcmp(a->c, b->c, a->c_len) == 0 && memcmp(a->tt, b->tt, a->tt_len) == 0 &&
           memcmp(a->s, b->s, a->s_len) == 0;
}

static void release(sections *s)
{
    free(s->c);
    free(s->tt);
    free(s->s);
}

/* Encodes the same matrix with 1 thread in one call and with 2 threads in
 * uneven steps: the sections must be identical, the error must fall. */
static void shape_case(const uint64_t rows, const uint64_t cols, const uint64_t width)
{
    float *a = malloc((size_t)(rows * cols) * sizeof *a);
    lrq_signcut_encoder *one = NULL, *two = NULL;
    sections x, y;
    double before, after, exact;
    uint64_t i, done = 0;

    for (i = 0; i < rows * cols; i++)
        a[i] = (float)(uniform() - 0.5);
    CHECK(lrq_signcut_encoder_create(a, rows, cols, cols, 7, 1, &one) == LRQ_OK);
    CHECK(lrq_signcut_encoder_create(a, rows, cols, cols, 7, 2, &two) == LRQ_OK);
    free(a); /* the encoders hold their own copies */
    CHECK(lrq_signcut_encoder_remainder_norm(one, 1, &before) == LRQ_OK);
    CHECK(fabs(before - lrq_signcut_encoder_input_norm(one)) <= 1e-12 * before);
    CHECK(lrq_signcut_encoder_run(one, width, 0.0) == LRQ_OK);
    while (done < width && !lrq_signcut_encoder_finished(two)) {
        const uint64_t step = done % 3 == 0 ? 5 : 13;
        CHECK(lrq_signcut_encoder_run(two, step < width - done ? step : width - done, 0.0) == LRQ_OK);
        done = lrq_signcut_encoder_width(two);
    }
    CHECK(lrq_signcut_encoder_width(one) == lrq_signcut_encoder_width(two));
    CHECK(lrq_signcut_encoder_remainder_norm(one, 0, &after) == LRQ_OK);
    CHECK(lrq_signcut_encoder_remainder_norm(one, 1, &exact) == LRQ_OK);
    CHECK(after < before || before == 0.0);
    CHECK(fabs(after - exact) <= 1e-4 * before);
    get_sections(one, rows, cols, &x);
    get_sections(two, rows, cols, &y);
    CHECK(same(&x, &y));
    release(&x);
    release(&y);
    lrq_signcut_encoder_free(one);
    lrq_signcut_encoder_free(two);
}

static void test_shapes(void)
{
    shape_case(1, 1, 3);
    shape_case(1, 70, 40);
    shape_case(70, 1, 40);
    shape_case(17, 33, 70);
    shape_case(64, 64, 65);
    shape_case(100, 37, 33);
    shape_case(300, 257, 96);
}

/* Every path the CPU runs under its own name writes the scalar path's
 * bytes: sections, and the float32 / binary16 weights, for shapes that
 * cross the 16-lane, 64-bit and cut-block boundaries, one and two threads,
 * and cuts taken in uneven steps. */
static void encode_on_path(const char *path, const float *a, const uint64_t rows, const uint64_t cols,
                           const uint64_t width, const int threads, const int c16, sections *out)
{
    lrq_signcut_encoder *e = NULL;
    uint64_t done = 0;
    CHECK(lrq_isa_set(path) == LRQ_OK);
    CHECK(lrq_signcut_encoder_create(a, rows, cols, cols, 11, threads, &e) == LRQ_OK);
    if (c16)
        CHECK(lrq_signcut_encoder_set_c_storage(e, LRQ_SIGNCUT_C_FLOAT16) == LRQ_OK);
    while (done < width && !lrq_signcut_encoder_finished(e)) {
        const uint64_t step = threads == 1 ? width : done % 2 ? 7 : 33;
        CHECK(lrq_signcut_encoder_run(e, step < width - done ? step : width - done, 0.0) == LRQ_OK);
        done = lrq_signcut_encoder_width(e);
    }
    memset(out, 0, sizeof *out);
    if (c16) {
        const uint64_t w = lrq_signcut_encoder_width(e);
        uint64_t tt, s;
        CHECK(lrq_layout_size(w, cols, 1, 64, &tt) == LRQ_OK && lrq_layout_size(rows, w, 1, 64, &s) == LRQ_OK);
        out->c_len = (size_t)(2 * w), out->tt_len = (size_t)tt, out->s_len = (size_t)s;
        out->c = malloc(out->c_len + 1), out->tt = malloc(out->tt_len + 1), out->s = malloc(out->s_len + 1);
        CHECK(lrq_signcut_encoder_write(e, 64, out->c, out->c_len, out->tt, out->tt_len, out->s, out->s_len) ==
              LRQ_OK);
    } else {
        get_sections(e, rows, cols, out);
    }
    lrq_signcut_encoder_free(e);
}

static void test_paths_agree(void)
{
    static const char *const paths[] = {"avx2", "avx512", "neon"};
    static const uint64_t shapes[][3] = {{1, 1, 2}, {3, 70, 40}, {33, 17, 65}, {100, 129, 70}, {48, 64, 96}};
    size_t i, p;
    int threads, c16;
    for (i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const uint64_t rows = shapes[i][0], cols = shapes[i][1], width = shapes[i][2];
        float *a = malloc((size_t)(rows * cols) * sizeof *a);
        uint64_t k;
        for (k = 0; k < rows * cols; k++) /* a few exact zeros and sign ties among them */
            a[k] = k % 7 == 3 ? 0.0f : (float)(uniform() - 0.5);
        for (threads = 1; threads <= 2; threads++)
            for (c16 = 0; c16 <= 1; c16++) {
                sections want, got;
                encode_on_path("scalar", a, rows, cols, width, threads, c16, &want);
                for (p = 0; p < sizeof paths / sizeof paths[0]; p++) {
                    CHECK(lrq_isa_set(paths[p]) == LRQ_OK);
                    if (strcmp(lrq_isa_name(), paths[p]) != 0)
                        continue; /* this CPU runs another path for it, checked under its own name */
                    encode_on_path(paths[p], a, rows, cols, width, threads, c16, &got);
                    CHECK(same(&want, &got));
                    release(&got);
                }
                release(&want);
            }
        free(a);
    }
    CHECK(lrq_isa_set(NULL) == LRQ_OK);
}

static void test_exact_cases(void)
{
    const float one = 1.0f;
    float zeros[6] = {0};
    const float eye[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    lrq_signcut_encoder *e = NULL;
    double norm = -1.0;
    uint8_t c[4], tt[2], s[6];

    /* 1x1 ones: one cut, exact, then finished. */
    CHECK(lrq_signcut_encoder_create(&one, 1, 1, 1, 0, 1, &e) == LRQ_OK);
    CHECK(lrq_signcut_encoder_run(e, 10, 0.0) == LRQ_OK);
    CHECK(lrq_signcut_encoder_width(e) == 1);
    CHECK(lrq_signcut_encoder_finished(e));
    CHECK(lrq_signcut_encoder_remainder_norm(e, 1, &norm) == LRQ_OK && norm == 0.0);
    CHECK(lrq_signcut_encoder_write(e, 64, c, 4, tt, 2, s, 2) == LRQ_OK);
    CHECK(c[0] == 0 && c[1] == 0 && c[2] == 0x80 && c[3] == 0x3F); /* 1.0f */
    lrq_signcut_encoder_free(e);

    /* The 3x3 identity: first c = 1/3. */
    CHECK(lrq_signcut_encoder_create(eye, 3, 3, 3, 0, 1, &e) == LRQ_OK);
    CHECK(lrq_signcut_encoder_run(e, 1, 0.0) == LRQ_OK);
    CHECK(lrq_signcut_encoder_write(e, 64, c, 4, tt, 2, s, 6) == LRQ_OK);
    {
        const float third = 1.0f / 3.0f;
        uint8_t want[4];
        memcpy(want, &third, 4);
        CHECK(memcmp(c, want, 4) == 0);
    }
    lrq_signcut_encoder_free(e);

    /* All zeros: finished at once, width 0, empty sections. */
    CHECK(lrq_signcut_encoder_create(zeros, 2, 3, 3, 0, 2, &e) == LRQ_OK);
    CHECK(lrq_signcut_encoder_finished(e));
    CHECK(lrq_signcut_encoder_run(e, 10, 0.5) == LRQ_OK);
    CHECK(lrq_signcut_encoder_width(e) == 0);
    CHECK(lrq_signcut_encoder_write(e, 64, NULL, 0, NULL, 0, NULL, 0) == LRQ_OK);
    lrq_signcut_encoder_free(e);

    /* [1 -1]: a random t may be orthogonal to the only row; the restart
     * must still find the exact decomposition. */
    zeros[0] = 1.0f;
    zeros[1] = -1.0f;
    CHECK(lrq_signcut_encoder_create(zeros, 1, 2, 2, 3, 1, &e) == LRQ_OK);
    CHECK(lrq_signcut_encoder_run(e, 4, 0.0) == LRQ_OK);
    CHECK(lrq_signcut_encoder_width(e) == 1);
    CHECK(lrq_signcut_encoder_remainder_norm(e, 1, &norm) == LRQ_OK && norm == 0.0);
    lrq_signcut_encoder_free(e);
}

/* Binary16 weights (format 1.1): the scale from the first cut, every weight
 * written as c_scale * binary16, and the tracked error exact for them. */
static void test_c16(void)
{
    enum { R = 40, C = 56 };
    static float a[R * C];
    lrq_signcut_encoder *e = NULL, *f = NULL;
    uint8_t c16[2 * 40], c32[4 * 40], tt[4096], s[4096];
    uint64_t tt_len, s_len;
    double norm = -1.0, norm32 = -1.0;
    uint8_t c[2], tt1[2], s3[6];
    size_t i;

    for (i = 0; i < R * C; i++)
        a[i] = (float)(uniform() * 2.0 - 1.0);
    CHECK(lrq_signcut_encoder_create(a, R, C, C, 7, 2, &e) == LRQ_OK);
    CHECK(lrq_signcut_encoder_c_scale(e) == 0.0f);
    CHECK(lrq_signcut_encoder_set_c_storage(e, 2) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_signcut_encoder_set_c_storage(NULL, LRQ_SIGNCUT_C_FLOAT16) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_signcut_encoder_set_c_storage(e, LRQ_SIGNCUT_C_FLOAT16) == LRQ_OK);
    CHECK(lrq_signcut_encoder_run(e, 40, 0.0) == LRQ_OK);
    CHECK(lrq_signcut_encoder_width(e) == 40);
    CHECK(lrq_signcut_encoder_set_c_storage(e, LRQ_SIGNCUT_C_FLOAT32) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_layout_size(40, C, 1, 64, &tt_len) == LRQ_OK && tt_len <= sizeof tt);
    CHECK(lrq_layout_size(R, 40, 1, 64, &s_len) == LRQ_OK && s_len <= sizeof s);
    CHECK(lrq_signcut_encoder_write(e, 64, c32, sizeof c32, tt, tt_len, s, s_len) ==
          LRQ_ERR_BUFFER_SIZE);
    CHECK(lrq_signcut_encoder_write(e, 64, c16, sizeof c16, tt, tt_len, s, s_len) == LRQ_OK);
    {
        /* The scale puts c_0 in [256, 512) binary16 units; the file's tile
         * decodes to a remainder whose norm is the one the encoder tracks. */
        const float scale = lrq_signcut_encoder_c_scale(e);
        float *dec = malloc(sizeof(float) * R * C);
        lrq_tile *t = NULL;
        double sq = 0.0;
        const float h0 = (float)((c16[0] | c16[1] << 8) >> 10);
        CHECK(scale > 0.0f && h0 >= 15 + 8 && h0 < 15 + 9); /* exponent field of c_0 / scale */
        CHECK(lrq_tile_create_signcut_c16(&t, R, C, 40, 64, scale, c16, sizeof c16, tt,
                                          (size_t)tt_len, s, (size_t)s_len) == LRQ_OK);
        CHECK(dec != NULL && lrq_tile_decode(t, dec, C) == LRQ_OK);
        for (i = 0; dec != NULL && i < R * C; i++)
            sq += ((double)a[i] - dec[i]) * ((double)a[i] - dec[i]);
        CHECK(lrq_signcut_encoder_remainder_norm(e, 1, &norm) == LRQ_OK);
        CHECK(fabs(sqrt(sq) - norm) <= 1e-5 * norm);
        lrq_tile_free(t);
        free(dec);
    }
    /* The rounding is compensated: the error stays close to float32's. */
    CHECK(lrq_signcut_encoder_create(a, R, C, C, 7, 1, &f) == LRQ_OK);
    CHECK(lrq_signcut_encoder_run(f, 40, 0.0) == LRQ_OK);
    CHECK(lrq_signcut_encoder_remainder_norm(f, 1, &norm32) == LRQ_OK);
    CHECK(norm <= 1.03 * norm32 && norm >= 0.97 * norm32);
    CHECK(lrq_signcut_encoder_c_scale(f) == 0.0f);
    lrq_signcut_encoder_free(f);
    lrq_signcut_encoder_free(e);

    /* The 3x3 identity: c = 1/3 rounds to binary16 (0x3555 * 2^-10 scale). */
    {
        const float eye[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
        CHECK(lrq_signcut_encoder_create(eye, 3, 3, 3, 0, 1, &e) == LRQ_OK);
        CHECK(lrq_signcut_encoder_set_c_storage(e, LRQ_SIGNCUT_C_FLOAT16) == LRQ_OK);
        CHECK(lrq_signcut_encoder_run(e, 1, 0.0) == LRQ_OK);
        CHECK(lrq_signcut_encoder_c_scale(e) == 0x1p-10f); /* 1/3 in [2^-2, 2^-1) */
        CHECK(lrq_signcut_encoder_write(e, 64, c, 2, tt1, 2, s3, 6) == LRQ_OK);
        /* 1/3 / 2^-10 = 341.33: binary16 341.25 (0x5D55) */
        CHECK(c[0] == 0x55 && c[1] == 0x5D);
        lrq_signcut_encoder_free(e);
    }
}

static void test_target(void)
{
    enum { R = 40, C = 50 };
    static float a[R * C];
    lrq_signcut_encoder *e = NULL, *f = NULL;
    double norm, base;
    uint64_t w, i;
    for (i = 0; i < R * C; i++)
        a[i] = (float)(uniform() - 0.5);
    CHECK(lrq_signcut_encoder_create(a, R, C, C, 1, 2, &e) == LRQ_OK);
    CHECK(lrq_signcut_encoder_run(e, 100000, 0.3) == LRQ_OK);
    CHECK(lrq_signcut_encoder_finished(e));
    w = lrq_signcut_encoder_width(e);
    base = lrq_signcut_encoder_input_norm(e);
    CHECK(lrq_signcut_encoder_remainder_norm(e, 1, &norm) == LRQ_OK && norm <= 0.3 * base);
    /* One cut fewer misses the target: the width is the smallest. */
    CHECK(lrq_signcut_encoder_create(a, R, C, C, 1, 1, &f) == LRQ_OK);
    CHECK(lrq_signcut_encoder_run(f, w - 1, 0.0) == LRQ_OK);
    CHECK(lrq_signcut_encoder_remainder_norm(f, 1, &norm) == LRQ_OK && norm > 0.3 * base);
    lrq_signcut_encoder_free(e);
    lrq_signcut_encoder_free(f);
}

static void test_bad_arguments(void)
{
    const float a[4] = {1, 2, 3, 4};
    const float bad[2] = {1.0f, (float)INFINITY};
    lrq_signcut_encoder *e = NULL;
    uint8_t buf[64];
    double norm;

    CHECK(lrq_signcut_encoder_create(a, 2, 2, 2, 0, 1, NULL) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_signcut_encoder_create(NULL, 2, 2, 2, 0, 1, &e) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_signcut_encoder_create(a, 0, 2, 2, 0, 1, &e) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_signcut_encoder_create(a, 2, 0, 2, 0, 1, &e) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_signcut_encoder_create(a, 2, 2, 1, 0, 1, &e) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_signcut_encoder_create(a, 2, 2, 2, 0, 99, &e) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_signcut_encoder_create(a, UINT64_C(1) << 31, 2, 2, 0, 1, &e) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_signcut_encoder_create(bad, 1, 2, 2, 0, 1, &e) == LRQ_ERR_ARGUMENT);
    CHECK(e == NULL);
    CHECK(lrq_signcut_encoder_run(NULL, 1, 0.0) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_signcut_encoder_width(NULL) == 0);
    CHECK(lrq_signcut_encoder_finished(NULL) == 1);
    CHECK(lrq_signcut_encoder_input_norm(NULL) == 0.0);
    CHECK(lrq_signcut_encoder_remainder_norm(NULL, 1, &norm) == LRQ_ERR_ARGUMENT);
    lrq_signcut_encoder_free(NULL);

    CHECK(lrq_signcut_encoder_create(a, 2, 2, 2, 0, 1, &e) == LRQ_OK);
    CHECK(lrq_signcut_encoder_run(e, 1, -0.5) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_signcut_encoder_run(e, 1, 1.5) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_signcut_encoder_run(e, 1, NAN) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_signcut_encoder_remainder_norm(e, 0, NULL) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_signcut_encoder_run(e, 1, 0.0) == LRQ_OK);
    CHECK(lrq_signcut_encoder_write(e, 63, buf, 4, buf, 2, buf, 4) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_signcut_encoder_write(e, 64, buf, 5, buf, 2, buf, 4) == LRQ_ERR_BUFFER_SIZE);
    CHECK(lrq_signcut_encoder_write(e, 64, buf, 4, buf, 4, buf, 4) == LRQ_ERR_BUFFER_SIZE);
    CHECK(lrq_signcut_encoder_write(e, 64, NULL, 4, buf, 2, buf, 4) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_signcut_encoder_write(e, 64, buf, 4, buf, 2, buf, 4) == LRQ_OK);
    CHECK(lrq_signcut_encoder_write(NULL, 64, buf, 4, buf, 2, buf, 4) == LRQ_ERR_ARGUMENT);
    lrq_signcut_encoder_free(e);
}

static void test_quant(void)
{
    double x[3 * 40];
    uint8_t codes[3 * 40];
    uint16_t scales[3 * 3];
    float sigma = 0.0f;
    int i;
    for (i = 0; i < 3 * 40; i++)
        x[i] = uniform() - 0.5;
    for (i = 40; i < 80; i++)
        x[i] = 0.0; /* a zero row */
    CHECK(lrq_quant_fit(x, 3, 40, 40, 3, 16, codes, scales, &sigma) == LRQ_OK);
    CHECK(sigma > 0.0f && sigma < 1.0f);
    for (i = 0; i < 3 * 40; i++)
        CHECK(codes[i] < 8);
    CHECK(scales[3] == 0 && scales[4] == 0 && scales[5] == 0);
    CHECK(lrq_quant_fit(x, 3, 30, 40, 8, 16, codes, scales, &sigma) == LRQ_OK);
    CHECK(lrq_quant_fit(NULL, 0, 0, 0, 2, 16, NULL, NULL, &sigma) == LRQ_OK && sigma == 1.0f);
    CHECK(lrq_quant_fit(x, 3, 40, 39, 3, 16, codes, scales, &sigma) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_quant_fit(x, 3, 40, 40, 0, 16, codes, scales, &sigma) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_quant_fit(x, 3, 40, 40, 9, 16, codes, scales, &sigma) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_quant_fit(x, 3, 40, 40, 2, 0, codes, scales, &sigma) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_quant_fit(x, 3, 40, 40, 2, 16, NULL, scales, &sigma) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_quant_fit(x, 3, 40, 40, 2, 16, codes, scales, NULL) == LRQ_ERR_ARGUMENT);
    x[7] = (double)NAN;
    CHECK(lrq_quant_fit(x, 3, 40, 40, 2, 16, codes, scales, &sigma) == LRQ_ERR_ARGUMENT);
}

int main(void)
{
    seed_inputs();
    test_quant();
    test_shapes();
    test_exact_cases();
    test_c16();
    test_target();
    test_bad_arguments();
    test_paths_agree();
    return checks_result("test_encoder", lrq_isa_name());
}
