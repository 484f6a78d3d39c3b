/* SPDX-License-Identifier: MIT */
/*
 * Checks of the tile products and decoding through the public header, meant
 * for -fsanitize=address,undefined (tests/test_kernels.py builds and runs it
 * once per LRQ_FORCE_ISA value).  Within one run it also switches paths with
 * lrq_isa_set() and thread counts with lrq_threads_set() and requires the
 * same bits from all of them, and compares every result with a double
 * precision reference computed here from the plain factors.
 *
 * Prints one line per failed check and exits non-zero if any failed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lrq.h"

static float rng_float(void)
{
    return (float)((double)(rng_next() >> 11) * 0x1p-53 * 2.0 - 1.0);
}

static double half_to_double(const uint16_t h)
{
    const int exp = (h >> 10) & 31, man = h & 1023;
    const double v = exp == 0 ? ldexp(man, -24) : ldexp(1024 + man, exp - 25);
    return (h & 0x8000) ? -v : v;
}

/* A tile with its plain factors: A = B diag(mid) A1, in double. */
typedef struct {
    lrq_tile *tile;
    uint64_t m, n, inner;
    double *left;  /* m x inner: S, or L dequantized */
    double *right; /* inner x n: c_k T^T[k, :], or R dequantized */
    uint8_t *sections[4];
} fixture;

static void fixture_free(fixture *f)
{
    int i;
    lrq_tile_free(f->tile);
    free(f->left);
    free(f->right);
    for (i = 0; i < 4; i++)
        free(f->sections[i]);
}

/* Pack rows x k plain elements; returns the buffer and its length. */
static uint8_t *pack(const uint8_t *plain, uint64_t rows, uint64_t k, int bits, uint64_t panel,
                     size_t *len)
{
    uint64_t size = 0;
    uint8_t *out;
    CHECK(lrq_layout_size(rows, k, bits, panel, &size) == LRQ_OK);
    out = malloc(size ? size : 1);
    CHECK(lrq_layout_pack(plain, rows, k, bits, panel, out, size) == LRQ_OK);
    *len = size;
    return out;
}

static void make_signcut(fixture *f, uint64_t m, uint64_t n, uint64_t w, uint64_t panel)
{
    uint8_t *s = malloc(m * w + 1), *tt = malloc(w * n + 1);
    float *c = malloc(4 * w + 4);
    size_t s_len, tt_len;
    uint64_t i, k;

    memset(f, 0, sizeof *f);
    f->m = m, f->n = n, f->inner = w;
    f->left = malloc(sizeof(double) * (m * w + 1));
    f->right = malloc(sizeof(double) * (w * n + 1));
    for (i = 0; i < m * w; i++)
        s[i] = rng_next() & 1;
    for (i = 0; i < w * n; i++)
        tt[i] = rng_next() & 1;
    for (k = 0; k < w; k++)
        c[k] = rng_float();
    for (i = 0; i < m * w; i++)
        f->left[i] = s[i] ? -1.0 : 1.0;
    for (k = 0; k < w; k++)
        for (i = 0; i < n; i++)
            f->right[k * n + i] = (tt[k * n + i] ? -1.0 : 1.0) * c[k];
    f->sections[0] = (uint8_t *)c;
    f->sections[1] = pack(tt, w, n, 1, panel, &tt_len);
    f->sections[2] = pack(s, m, w, 1, panel, &s_len);
    CHECK(lrq_tile_create_signcut(&f->tile, m, n, w, panel, c, 4 * w, f->sections[1], tt_len,
                                  f->sections[2], s_len) == LRQ_OK);
    free(s);
    free(tt);
}

/* One lplr factor: codes (b <= 4: planes, else bytes), scales, and values. */
static void make_factor(uint64_t rows, uint64_t k, int bits, uint64_t group, uint64_t panel,
                        float sigma, uint8_t **codes, size_t *codes_len, uint8_t **scales,
                        size_t *scales_len, double *values)
{
    const uint64_t groups = (k + group - 1) / group, tiles = (rows + 15) / 16;
    uint8_t *q = malloc(rows * k + 1), *plane = malloc(rows * k + 1);
    uint16_t *s = malloc(2 * (rows * groups + 1));
    uint64_t i, j, t;
    int p;

    for (i = 0; i < rows * k; i++)
        q[i] = (uint8_t)(rng_next() & ((1u << bits) - 1));
    for (i = 0; i < rows * groups; i++)
        s[i] = (uint16_t)(0x2000 + rng_next() % 0x1C00); /* positive, normal, < 1 */
    for (i = 0; i < rows; i++)
        for (j = 0; j < k; j++)
            values[i * k + j] = (double)sigma * half_to_double(s[i * groups + j / group]) *
                                (q[i * k + j] - ((1 << bits) - 1) / 2.0);
    if (bits <= 4) {
        size_t one = 0;
        uint64_t size = 0;
        CHECK(lrq_layout_size(rows, k, 1, panel, &size) == LRQ_OK);
        *codes = malloc(bits * size + 1);
        for (p = 0; p < bits; p++) {
            uint8_t *packed;
            for (i = 0; i < rows * k; i++)
                plane[i] = (q[i] >> p) & 1;
            packed = pack(plane, rows, k, 1, panel, &one);
            if (size)
                memcpy(*codes + p * size, packed, size);
            free(packed);
        }
        *codes_len = bits * size;
    } else {
        *codes = pack(q, rows, k, 8, panel, codes_len);
    }
    /* Scale order of spec §10.3: [row tile][group][row in tile]. */
    *scales = malloc(2 * rows * groups + 1);
    *scales_len = 2 * rows * groups;
    for (t = 0, p = 0; t < tiles; t++) {
        const uint64_t h = rows - 16 * t < 16 ? rows - 16 * t : 16;
        for (j = 0; j < groups; j++)
            for (i = 0; i < h; i++) {
                const uint16_t v = s[(16 * t + i) * groups + j];
                (*scales)[2 * (16 * t * groups + j * h + i)] = (uint8_t)v;
                (*scales)[2 * (16 * t * groups + j * h + i) + 1] = (uint8_t)(v >> 8);
            }
    }
    free(q);
    free(plane);
    free(s);
}

static void make_lplr(fixture *f, uint64_t m, uint64_t n, uint64_t r, int bl, int br,
                      uint64_t group, uint64_t panel)
{
    size_t len[4];

    memset(f, 0, sizeof *f);
    f->m = m, f->n = n, f->inner = r;
    f->left = malloc(sizeof(double) * (m * r + 1));
    f->right = malloc(sizeof(double) * (r * n + 1));
    make_factor(r, n, br, group, panel, 1.25f, &f->sections[0], &len[0], &f->sections[1], &len[1],
                f->right);
    make_factor(m, r, bl, group, panel, 0.5f, &f->sections[2], &len[2], &f->sections[3], &len[3],
                f->left);
    CHECK(lrq_tile_create_lplr(&f->tile, m, n, r, bl, br, group, 0.5f, 1.25f, panel, f->sections[0],
                               len[0], f->sections[1], len[1], f->sections[2], len[2],
                               f->sections[3], len[3]) == LRQ_OK);
}

/* A quant tile (spec §10.7): F with random codes, t-bit scale codes and
 * row exponents in [-4, 0]; as a fixture, left is the identity and right F. */
static void make_quant(fixture *f, uint64_t m, uint64_t n, int bits, uint64_t group, int scale_bits,
                       uint64_t panel)
{
    const uint64_t groups = (n + group - 1) / group, tiles = (m + 15) / 16;
    const float sigma = 0.75f;
    uint8_t *q = malloc(m * n + 1), *plane = malloc(m * n + 1), *u = malloc(m * groups + 1);
    uint64_t i, j, t, code = 0, size = 0;
    size_t len[3], one = 0;
    int p;

    memset(f, 0, sizeof *f);
    f->m = m, f->n = n, f->inner = m;
    f->left = calloc(m * m + 1, sizeof(double));
    f->right = malloc(sizeof(double) * (m * n + 1));
    f->sections[2] = malloc(m + 1);
    for (i = 0; i < m; i++) {
        f->left[i * m + i] = 1.0;
        f->sections[2][i] = (uint8_t)(int8_t)(-(int)(rng_next() % 5));
    }
    for (i = 0; i < m * n; i++)
        q[i] = (uint8_t)(rng_next() & ((1u << bits) - 1));
    for (i = 0; i < m * groups; i++)
        u[i] = (uint8_t)(rng_next() & ((1u << scale_bits) - 1));
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++)
            f->right[i * n + j] = (double)sigma * u[i * groups + j / group] *
                                  ldexp(1.0, (int8_t)f->sections[2][i]) * (q[i * n + j] - ((1 << bits) - 1) / 2.0);
    if (bits <= 4) {
        CHECK(lrq_layout_size(m, n, 1, panel, &size) == LRQ_OK);
        f->sections[0] = malloc(bits * size + 1);
        for (p = 0; p < bits; p++) {
            uint8_t *packed;
            for (i = 0; i < m * n; i++)
                plane[i] = (q[i] >> p) & 1;
            packed = pack(plane, m, n, 1, panel, &one);
            if (size)
                memcpy(f->sections[0] + p * size, packed, size);
            free(packed);
        }
        len[0] = bits * size;
    } else {
        f->sections[0] = pack(q, m, n, 8, panel, &len[0]);
    }
    /* Scale codes in §10.3 order, scale_bits each, least significant bit first. */
    len[1] = (m * groups * scale_bits + 7) / 8;
    f->sections[1] = calloc(len[1] + 1, 1);
    for (t = 0; t < tiles; t++) {
        const uint64_t h = m - 16 * t < 16 ? m - 16 * t : 16;
        for (j = 0; j < groups; j++)
            for (i = 0; i < h; i++, code++)
                for (p = 0; p < scale_bits; p++)
                    if (u[(16 * t + i) * groups + j] >> p & 1)
                        f->sections[1][(code * scale_bits + p) / 8] |= (uint8_t)(1u << ((code * scale_bits + p) % 8));
    }
    len[2] = m;
    CHECK(lrq_tile_create_quant(&f->tile, m, n, bits, group, scale_bits, sigma, panel, f->sections[0], len[0],
                                f->sections[1], len[1], f->sections[2], len[2]) == LRQ_OK);
    free(q);
    free(plane);
    free(u);
}

/* All results of a fixture in one buffer: A x, A^T y (negative input
 * stride), A X for 3 vectors (strided output), int16 and int8, decode. */
static float *results(const fixture *f, size_t *count)
{
    const uint64_t m = f->m, n = f->n;
    const size_t total = m + n + 3 * m + 2 * m + m * n;
    float *out = calloc(total + 1, sizeof(float)), *x = malloc(sizeof(float) * (3 * n + 1)),
          *y = malloc(sizeof(float) * (m + 1));
    float *o = out;
    uint64_t i;

    rng_state = 99;
    for (i = 0; i < 3 * n; i++)
        x[i] = rng_float();
    for (i = 0; i < m; i++)
        y[i] = rng_float();
    CHECK(lrq_tile_product(f->tile, 0, 1, x, 0, 1, o, 0, 1) == LRQ_OK);
    o += m;
    CHECK(lrq_tile_product(f->tile, LRQ_PRODUCT_TRANSPOSE, 1, y + (m ? m - 1 : 0), 0, -1, o, 0, 1) ==
          LRQ_OK);
    o += n;
    /* X is n x 3 row-major; Y written as 3 x m (vector-major). */
    CHECK(lrq_tile_product(f->tile, 0, 3, x, 1, 3, o, (int64_t)m, 1) == LRQ_OK);
    o += 3 * m;
    CHECK(lrq_tile_product(f->tile, LRQ_PRODUCT_INT16, 1, x, 0, 1, o, 0, 1) == LRQ_OK);
    o += m;
    CHECK(lrq_tile_product(f->tile, LRQ_PRODUCT_INT8, 1, x, 0, 1, o, 0, 1) == LRQ_OK);
    o += m;
    CHECK(lrq_tile_decode(f->tile, o, n) == LRQ_OK);
    { /* the calling thread alone: the same bits */
        float *one = malloc(sizeof(float) * (m * n + 1));
        CHECK(one != NULL && lrq_tile_decode_threads(f->tile, one, n, 1) == LRQ_OK);
        CHECK(memcmp(one, o, sizeof(float) * m * n) == 0);
        CHECK(lrq_tile_decode_threads(f->tile, one, n, -1) == LRQ_ERR_ARGUMENT);
        CHECK(lrq_tile_decode_threads(f->tile, one, n, LRQ_THREADS_MAX + 1) == LRQ_ERR_ARGUMENT);
        free(one);
    }
    free(x);
    free(y);
    *count = total;
    return out;
}

/* [NUM-1]-style accuracy of the exact results against double. */
static void check_accuracy(const fixture *f, const float *res)
{
    const uint64_t m = f->m, n = f->n, r = f->inner;
    float *x = malloc(sizeof(float) * (3 * n + 1)), *y = malloc(sizeof(float) * (m + 1));
    double *u = malloc(sizeof(double) * (r + 1)), *ua = malloc(sizeof(double) * (r + 1));
    uint64_t i, j, k;

    rng_state = 99;
    for (i = 0; i < 3 * n; i++)
        x[i] = rng_float();
    for (i = 0; i < m; i++)
        y[i] = rng_float();
    for (k = 0; k < r; k++) { /* u = right x[:, 0] (every third element) */
        u[k] = ua[k] = 0;
        for (j = 0; j < n; j++) {
            u[k] += f->right[k * n + j] * x[3 * j];
            ua[k] += fabs(f->right[k * n + j] * x[3 * j]);
        }
    }
    (void)u;
    for (i = 0; i < m; i++) {
        double want = 0, mag = 0;
        for (k = 0; k < r; k++)
            for (j = 0; j < n; j++) {
                want += f->left[i * r + k] * f->right[k * n + j] * x[3 * j];
                mag += fabs(f->left[i * r + k] * f->right[k * n + j] * x[3 * j]);
            }
        /* Column 0 of the batched product (x[:,0] is x with stride 3). */
        CHECK(fabs(res[m + n + i] - want) <= 1e-5 * mag + 1e-30);
    }
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) {
            double want = 0, mag = 0;
            for (k = 0; k < r; k++) {
                want += f->left[i * r + k] * f->right[k * n + j];
                mag += fabs(f->left[i * r + k] * f->right[k * n + j]);
            }
            CHECK(fabs(res[6 * m + n + i * n + j] - want) <= 1e-5 * mag + 1e-30);
        }
    free(x);
    free(y);
    free(u);
    free(ua);
}

static const char *const paths[] = {"scalar", "avx2", "avx512", "neon"};
#define PATHS (sizeof paths / sizeof paths[0])

/* Switch to path p; false when this CPU runs another path for it instead
 * (a level it lacks, or another architecture's): that path is one of the
 * list too, so it is checked under its own name and skipped here. */
static int use_path(const size_t p)
{
    CHECK(lrq_isa_set(paths[p]) == LRQ_OK);
    return strcmp(lrq_isa_name(), paths[p]) == 0;
}

/* The same bits from every path and thread count. */
static void check_everywhere(const fixture *f)
{
    size_t count, other, p;
    float *want;
    int th;

    lrq_isa_set("scalar");
    lrq_threads_set(1);
    want = results(f, &count);
    check_accuracy(f, want);
    for (p = 0; p < PATHS; p++)
        for (th = 1; th <= 3 && use_path(p); th++) {
            float *got;
            CHECK(lrq_threads_set(th) == LRQ_OK);
            got = results(f, &other);
            CHECK(other == count && memcmp(got, want, count * sizeof(float)) == 0);
            free(got);
        }
    free(want);
    lrq_isa_set(NULL);
}

/* Vectors of the batch checks: more than two batches of the widest batch
 * size, with one left over. */
#define BATCH_VECTORS 17

/* Column j of a batched product, forward and transposed, is bit for bit the
 * product with vector j alone, on every path and thread count, whatever
 * batch (and place in it) the column fell in. */
static void check_batches(const fixture *f)
{
    const uint64_t m = f->m, n = f->n, len = (m > n ? m : n);
    float *x = malloc(sizeof(float) * (BATCH_VECTORS * len + 1));
    float *y = malloc(sizeof(float) * (BATCH_VECTORS * len + 1)), *one = malloc(sizeof(float) * (len + 1));
    uint64_t i, j, nvec;
    size_t p;
    int th, tr;

    rng_state = 7;
    for (i = 0; i < BATCH_VECTORS * len; i++)
        x[i] = rng_float();
    for (p = 0; p < PATHS; p++)
        for (th = 1; th <= 2 && use_path(p); th++)
            for (tr = 0; tr < 2; tr++) {
                const unsigned flags = tr ? LRQ_PRODUCT_TRANSPOSE : 0;
                const uint64_t in = tr ? m : n, out = tr ? n : m;
                CHECK(lrq_threads_set(th) == LRQ_OK);
                for (nvec = 1; nvec <= BATCH_VECTORS; nvec += 4) {
                    /* Vector j at x + j * in (vector-major), outputs element-major. */
                    CHECK(lrq_tile_product(f->tile, flags, nvec, x, (int64_t)in, 1, y, 1, (int64_t)nvec) ==
                          LRQ_OK);
                    for (j = 0; j < nvec; j++) {
                        CHECK(lrq_tile_product(f->tile, flags, 1, x + j * in, 0, 1, one, 0, 1) == LRQ_OK);
                        for (i = 0; i < out; i++)
                            CHECK(memcmp(&one[i], &y[i * nvec + j], sizeof(float)) == 0);
                    }
                }
            }
    free(x);
    free(y);
    free(one);
    lrq_isa_set(NULL);
}

static void test_shapes(void)
{
    static const uint64_t sc[][4] = {{1, 1, 1, 64},    {17, 33, 5, 64},  {40, 200, 37, 64},
                                     {300, 50, 700, 128}, {5, 90, 300, 64}};
    static const uint64_t lp[][7] = {{1, 1, 1, 1, 1, 16, 64},      {23, 70, 40, 2, 7, 16, 64},
                                     {64, 33, 130, 8, 3, 64, 128}, {130, 260, 90, 4, 5, 32, 64}};
    /* quant: m, n, bits, group, scale bits, panel */
    static const uint64_t qt[][6] = {{1, 1, 1, 16, 1, 64}, {21, 70, 2, 16, 6, 64}, {40, 130, 4, 32, 4, 128},
                                     {17, 90, 8, 64, 8, 64}, {130, 40, 3, 16, 7, 64}};
    size_t i;
    fixture f;

    for (i = 0; i < sizeof sc / sizeof sc[0]; i++) {
        make_signcut(&f, sc[i][0], sc[i][1], sc[i][2], sc[i][3]);
        check_everywhere(&f);
        check_batches(&f);
        fixture_free(&f);
    }
    for (i = 0; i < sizeof lp / sizeof lp[0]; i++) {
        make_lplr(&f, lp[i][0], lp[i][1], lp[i][2], (int)lp[i][3], (int)lp[i][4], lp[i][5], lp[i][6]);
        check_everywhere(&f);
        check_batches(&f);
        fixture_free(&f);
    }
    for (i = 0; i < sizeof qt / sizeof qt[0]; i++) {
        make_quant(&f, qt[i][0], qt[i][1], (int)qt[i][2], qt[i][3], (int)qt[i][4], qt[i][5]);
        check_everywhere(&f);
        check_batches(&f);
        fixture_free(&f);
    }
}

static void test_errors(void)
{
    uint8_t tt[2 * 3] = {0}, s[2 * 2] = {0}, codes[16 * 1] = {0}, scales[2] = {0, 0x3C};
    float c[3] = {1, 2, 3}, x[20] = {0}, y[20];
    lrq_tile *t = (lrq_tile *)&t; /* must be reset to NULL on failure */

    CHECK(lrq_tile_create_signcut(NULL, 2, 1, 3, 64, c, 12, tt, 6, s, 4) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_tile_create_signcut(&t, 2, 1, 3, 60, c, 12, tt, 6, s, 4) == LRQ_ERR_ARGUMENT && !t);
    CHECK(lrq_tile_create_signcut(&t, 2, 1, 3, 64, c, 8, tt, 6, s, 4) == LRQ_ERR_BUFFER_SIZE && !t);
    CHECK(lrq_tile_create_signcut(&t, 2, 1, 3, 64, c, 12, tt, 6, s, 5) == LRQ_ERR_BUFFER_SIZE);
    CHECK(lrq_tile_create_signcut(&t, 2, 1, 3, 64, NULL, 12, tt, 6, s, 4) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_tile_create_signcut(&t, UINT64_C(1) << 31, 1, 3, 64, c, 12, tt, 6, s, 4) ==
          LRQ_ERR_ARGUMENT);
    tt[1] = 0x80; /* element 15 of a row of K = 1: padding */
    CHECK(lrq_tile_create_signcut(&t, 2, 1, 3, 64, c, 12, tt, 6, s, 4) == LRQ_ERR_PADDING);
    tt[1] = 0;
    c[1] = NAN;
    CHECK(lrq_tile_create_signcut(&t, 2, 1, 3, 64, c, 12, tt, 6, s, 4) == LRQ_ERR_FORMAT);
    c[1] = 2;
    CHECK(lrq_tile_create_signcut(&t, 2, 1, 3, 64, c, 12, tt, 6, s, 4) == LRQ_OK);
    CHECK(lrq_tile_product(NULL, 0, 1, x, 0, 1, y, 0, 1) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_tile_product(t, 8, 1, x, 0, 1, y, 0, 1) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_tile_product(t, LRQ_PRODUCT_INT8 | LRQ_PRODUCT_INT16, 1, x, 0, 1, y, 0, 1) ==
          LRQ_ERR_ARGUMENT);
    CHECK(lrq_tile_product(t, LRQ_PRODUCT_INT8 | LRQ_PRODUCT_TRANSPOSE, 1, x, 0, 1, y, 0, 1) ==
          LRQ_ERR_ARGUMENT);
    CHECK(lrq_tile_product(t, 0, 1, NULL, 0, 1, y, 0, 1) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_tile_product(t, 0, 0, NULL, 0, 1, NULL, 0, 1) == LRQ_OK);
    CHECK(lrq_tile_decode(t, y, 0) == LRQ_ERR_ARGUMENT);
    lrq_tile_free(t);
    lrq_tile_free(NULL);

    /* lplr: 1 x 1, rank 1, one byte code of 5 bits in a 16-byte word block. */
    codes[0] = 31;
    CHECK(lrq_tile_create_lplr(&t, 1, 1, 1, 1, 5, 16, 1.0f, 1.0f, 64, codes, 15, scales, 2,
                               codes, 2, scales, 2) == LRQ_ERR_BUFFER_SIZE);
    codes[0] = 32; /* >= 2^5 [LP-4] */
    {
        uint8_t plane[2] = {1, 0};
        CHECK(lrq_tile_create_lplr(&t, 1, 1, 1, 1, 5, 16, 1.0f, 1.0f, 64, codes, 16, scales, 2,
                                   plane, 2, scales, 2) == LRQ_ERR_FORMAT);
        codes[0] = 31;
        codes[1] = 1; /* a padding byte [LAY-2] */
        CHECK(lrq_tile_create_lplr(&t, 1, 1, 1, 1, 5, 16, 1.0f, 1.0f, 64, codes, 16, scales, 2,
                                   plane, 2, scales, 2) == LRQ_ERR_PADDING);
        codes[1] = 0;
        CHECK(lrq_tile_create_lplr(&t, 1, 1, 1, 1, 5, 16, -1.0f, 1.0f, 64, codes, 16, scales, 2,
                                   plane, 2, scales, 2) == LRQ_ERR_FORMAT);
        scales[1] = 0x7C; /* +infinity [LP-3] */
        CHECK(lrq_tile_create_lplr(&t, 1, 1, 1, 1, 5, 16, 1.0f, 1.0f, 64, codes, 16, scales, 2,
                                   plane, 2, scales, 2) == LRQ_ERR_FORMAT);
        scales[1] = 0x3C;
        CHECK(lrq_tile_create_lplr(&t, 1, 1, 1, 1, 9, 16, 1.0f, 1.0f, 64, codes, 16, scales, 2,
                                   plane, 2, scales, 2) == LRQ_ERR_ARGUMENT);
        CHECK(lrq_tile_create_lplr(&t, 1, 1, 1, 1, 5, 24, 1.0f, 1.0f, 64, codes, 16, scales, 2,
                                   plane, 2, scales, 2) == LRQ_ERR_ARGUMENT);
        CHECK(lrq_tile_create_lplr(&t, 1, 1, 1, 1, 5, 16, 1.0f, 1.0f, 64, codes, 16, scales, 2,
                                   plane, 2, scales, 2) == LRQ_OK);
        x[0] = 1.0f;
        CHECK(lrq_tile_product(t, 0, 1, x, 0, 1, y, 0, 1) == LRQ_OK);
        CHECK(y[0] == 7.75f); /* L = 1 - 1/2 (one plane), R = 31 - 31/2 */
        lrq_tile_free(t);
    }
}

/* Width 0: every product and the decode are zeros. */
/* Binary16 weights with a scale (format 1.1): the tile decodes, bit for bit,
 * as a binary32 tile holding c_scale * half(c16), and refuses what [SC-2],
 * [SC-3] refuse. */
static void test_c16(void)
{
    /* 2 x 1, w = 3; halves 1.0, -1.5, 2^-24 (the smallest subnormal). */
    uint8_t tt[2 * 3] = {0, 0, 1, 0, 0, 0}, s[2 * 2] = {5, 0, 2, 0};
    uint8_t c16[6] = {0x00, 0x3C, 0x00, 0xBE, 0x01, 0x00};
    const float scale = 0x1p-3f;
    float c32[3], out16[2], out32[2];
    lrq_tile *t = NULL, *u = NULL;

    c32[0] = scale * 1.0f;
    c32[1] = scale * -1.5f;
    c32[2] = scale * 0x1p-24f;
    CHECK(lrq_tile_create_signcut_c16(&t, 2, 1, 3, 64, scale, c16, 6, tt, 6, s, 4) == LRQ_OK);
    CHECK(lrq_tile_create_signcut(&u, 2, 1, 3, 64, c32, 12, tt, 6, s, 4) == LRQ_OK);
    c16[0] = 0xFF; /* the tile holds its own copy of c */
    CHECK(lrq_tile_decode(t, out16, 1) == LRQ_OK && lrq_tile_decode(u, out32, 1) == LRQ_OK);
    CHECK(memcmp(out16, out32, sizeof out16) == 0);
    lrq_tile_free(t);
    lrq_tile_free(u);
    c16[0] = 0x00;

    t = (lrq_tile *)&t;
    CHECK(lrq_tile_create_signcut_c16(&t, 2, 1, 3, 64, scale, c16, 12, tt, 6, s, 4) ==
          LRQ_ERR_BUFFER_SIZE && !t);
    CHECK(lrq_tile_create_signcut_c16(&t, 2, 1, 3, 64, 0.3f, c16, 6, tt, 6, s, 4) == LRQ_ERR_FORMAT);
    CHECK(lrq_tile_create_signcut_c16(&t, 2, 1, 3, 64, 0.0f, c16, 6, tt, 6, s, 4) == LRQ_ERR_FORMAT);
    CHECK(lrq_tile_create_signcut_c16(&t, 2, 1, 3, 64, -0.125f, c16, 6, tt, 6, s, 4) == LRQ_ERR_FORMAT);
    CHECK(lrq_tile_create_signcut_c16(&t, 2, 1, 3, 64, 0x1p113f, c16, 6, tt, 6, s, 4) ==
          LRQ_ERR_FORMAT);
    CHECK(lrq_tile_create_signcut_c16(&t, 2, 1, 3, 64, 0x1p-126f, c16, 6, tt, 6, s, 4) ==
          LRQ_ERR_FORMAT);
    CHECK(lrq_tile_create_signcut_c16(&t, 2, 1, 3, 64, NAN, c16, 6, tt, 6, s, 4) == LRQ_ERR_FORMAT);
    CHECK(lrq_tile_create_signcut_c16(&t, 2, 1, 3, 64, 0x1p112f, c16, 6, tt, 6, s, 4) == LRQ_OK);
    lrq_tile_free(t);
    CHECK(lrq_tile_create_signcut_c16(&t, 2, 1, 3, 64, 0x1p-125f, c16, 6, tt, 6, s, 4) == LRQ_OK);
    lrq_tile_free(t);
    c16[3] = 0x7C; /* +inf */
    CHECK(lrq_tile_create_signcut_c16(&t, 2, 1, 3, 64, scale, c16, 6, tt, 6, s, 4) == LRQ_ERR_FORMAT);
    c16[3] = 0xFE; /* NaN */
    CHECK(lrq_tile_create_signcut_c16(&t, 2, 1, 3, 64, scale, c16, 6, tt, 6, s, 4) == LRQ_ERR_FORMAT);
    c16[3] = 0xBE;
    tt[1] = 0x80; /* padding, found after c is converted: nothing leaks */
    CHECK(lrq_tile_create_signcut_c16(&t, 2, 1, 3, 64, scale, c16, 6, tt, 6, s, 4) ==
          LRQ_ERR_PADDING && !t);
    CHECK(lrq_tile_create_signcut_c16(&t, 4, 3, 0, 64, scale, NULL, 0, NULL, 0, NULL, 0) == LRQ_OK);
    lrq_tile_free(t);
}

static void test_empty_inner(void)
{
    lrq_tile *t = NULL;
    float x[3] = {1, 2, 3}, y[4] = {9, 9, 9, 9}, d[12];
    int i;

    CHECK(lrq_tile_create_signcut(&t, 4, 3, 0, 64, NULL, 0, NULL, 0, NULL, 0) == LRQ_OK);
    CHECK(lrq_tile_product(t, 0, 1, x, 0, 1, y, 0, 1) == LRQ_OK);
    CHECK(lrq_tile_decode(t, d, 3) == LRQ_OK);
    for (i = 0; i < 4; i++)
        CHECK(y[i] == 0.0f);
    for (i = 0; i < 12; i++)
        CHECK(d[i] == 0.0f);
    lrq_tile_free(t);
}

static void test_settings(void)
{
    const int before = lrq_threads_get();
    CHECK(before >= 1 && before <= LRQ_THREADS_MAX);
    CHECK(lrq_threads_set(0) == LRQ_ERR_ARGUMENT && lrq_threads_get() == before);
    CHECK(lrq_threads_set(LRQ_THREADS_MAX + 1) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_isa_set("avx9000") == LRQ_ERR_ARGUMENT);
    CHECK(lrq_isa_set("scalar") == LRQ_OK && strcmp(lrq_isa_name(), "scalar") == 0);
    CHECK(lrq_isa_set(NULL) == LRQ_OK);
    {
        const char *forced = getenv("LRQ_FORCE_ISA");
        if (forced != NULL && strcmp(forced, "scalar") == 0)
            CHECK(strcmp(lrq_isa_name(), "scalar") == 0);
    }
}

int main(void)
{
    test_settings();
    test_errors();
    test_c16();
    test_empty_inner();
    test_shapes();
    {
        char context[64];
        snprintf(context, sizeof context, "%s, %d threads", lrq_isa_name(), lrq_threads_get());
        return checks_result("test_kernels", context);
    }
}
