/* SPDX-License-Identifier: MIT */
/*
 * The tensor signcut encoder (lrq_tensor_encoder_*) through lrq.h alone,
 * built with ASan and UBSan by tests/test_tensors.py: orders 3 to 8, modes
 * of size 1 and of sizes that cross 64-bit words and 16-element chunks,
 * a rank-one sign tensor (exact in one term), the zero tensor, splitting the
 * terms between run() calls, the error target, and the argument checks that
 * Python never reaches.
 *
 * Prints one line per failed check and exits non-zero if any failed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lrq.h"

static float *random_tensor(uint64_t count)
{
    float *a = malloc((size_t)count * sizeof *a);
    uint64_t i;
    for (i = 0; i < count; i++)
        a[i] = (float)((double)(rng_next() >> 11) / 9007199254740992.0 - 0.5);
    return a;
}

static uint64_t entries(unsigned order, const uint64_t *dims)
{
    uint64_t n = 1;
    unsigned m;
    for (m = 0; m < order; m++)
        n *= dims[m];
    return n;
}

/* Every section of the terms so far, concatenated ("c" then each mode). */
static uint8_t *all_sections(const lrq_tensor_encoder *e, unsigned order, const uint64_t *dims, size_t *len)
{
    const uint64_t w = lrq_tensor_encoder_width(e);
    uint64_t sizes[LRQ_TENSOR_ORDER_MAX], total = 4 * w, pos;
    unsigned m;
    uint8_t *out;
    for (m = 0; m < order; m++) {
        CHECK(lrq_layout_size(dims[m], w, 1, 64, &sizes[m]) == LRQ_OK);
        total += sizes[m];
    }
    out = malloc((size_t)total + 1);
    CHECK(lrq_tensor_encoder_write_c(e, out, (size_t)(4 * w)) == LRQ_OK);
    pos = 4 * w;
    for (m = 0; m < order; m++) {
        CHECK(lrq_tensor_encoder_write_signs(e, m, 64, out + pos, (size_t)sizes[m]) == LRQ_OK);
        pos += sizes[m];
    }
    *len = (size_t)total;
    return out;
}

static void test_shapes(void)
{
    static const uint64_t shapes[][LRQ_TENSOR_ORDER_MAX] = {
        {3, 5, 7}, {1, 1, 1}, {65, 1, 17}, {2, 3, 2, 5}, {1, 70, 1, 2}, {2, 2, 2, 2, 2, 2, 2, 3}, {129, 3, 4},
    };
    static const unsigned orders[] = {3, 3, 3, 4, 4, 8, 3};
    size_t k;
    for (k = 0; k < sizeof orders / sizeof orders[0]; k++) {
        const unsigned order = orders[k];
        const uint64_t count = entries(order, shapes[k]);
        float *a = random_tensor(count);
        lrq_tensor_encoder *whole = NULL, *split = NULL;
        uint8_t *x, *y;
        size_t xl = 0, yl = 0;
        double before;
        CHECK(lrq_tensor_encoder_create(a, order, shapes[k], 7, &whole) == LRQ_OK);
        CHECK(lrq_tensor_encoder_create(a, order, shapes[k], 7, &split) == LRQ_OK);
        free(a); /* the encoder keeps its own copy */
        before = lrq_tensor_encoder_remainder_norm(whole);
        CHECK(lrq_tensor_encoder_run(whole, 37, 0.0) == LRQ_OK);
        CHECK(lrq_tensor_encoder_run(split, 1, 0.0) == LRQ_OK);
        CHECK(lrq_tensor_encoder_run(split, 16, 0.0) == LRQ_OK);
        CHECK(lrq_tensor_encoder_run(split, 20, 0.0) == LRQ_OK);
        CHECK(lrq_tensor_encoder_width(whole) == lrq_tensor_encoder_width(split));
        CHECK(lrq_tensor_encoder_width(whole) >= 1 && lrq_tensor_encoder_width(whole) <= 37);
        CHECK(lrq_tensor_encoder_remainder_norm(whole) < before);
        x = all_sections(whole, order, shapes[k], &xl);
        y = all_sections(split, order, shapes[k], &yl);
        CHECK(xl == yl && memcmp(x, y, xl) == 0);
        free(x);
        free(y);
        lrq_tensor_encoder_free(whole);
        lrq_tensor_encoder_free(split);
    }
}

static void test_exact_cases(void)
{
    const uint64_t dims[3] = {5, 66, 3};
    const uint64_t count = entries(3, dims);
    float *a = malloc((size_t)count * sizeof *a);
    int sign[3][66];
    uint64_t i, j, l;
    unsigned m;
    lrq_tensor_encoder *e = NULL;
    for (m = 0; m < 3; m++)
        for (i = 0; i < dims[m]; i++)
            sign[m][i] = (rng_next() >> 63) ? -1 : 1;
    for (i = 0; i < dims[0]; i++)
        for (j = 0; j < dims[1]; j++)
            for (l = 0; l < dims[2]; l++)
                a[(i * dims[1] + j) * dims[2] + l] = 0.75f * (float)(sign[0][i] * sign[1][j] * sign[2][l]);
    CHECK(lrq_tensor_encoder_create(a, 3, dims, 1, &e) == LRQ_OK);
    CHECK(lrq_tensor_encoder_run(e, 4, 0.0) == LRQ_OK);
    CHECK(lrq_tensor_encoder_width(e) == 1);
    CHECK(lrq_tensor_encoder_finished(e));
    CHECK(lrq_tensor_encoder_remainder_norm(e) == 0.0);
    lrq_tensor_encoder_free(e);
    memset(a, 0, (size_t)count * sizeof *a);
    CHECK(lrq_tensor_encoder_create(a, 3, dims, 1, &e) == LRQ_OK);
    CHECK(lrq_tensor_encoder_finished(e));
    CHECK(lrq_tensor_encoder_run(e, 4, 0.0) == LRQ_OK);
    CHECK(lrq_tensor_encoder_width(e) == 0);
    CHECK(lrq_tensor_encoder_write_c(e, NULL, 0) == LRQ_OK);
    CHECK(lrq_tensor_encoder_write_signs(e, 2, 64, NULL, 0) == LRQ_OK);
    lrq_tensor_encoder_free(e);
    free(a);
}

static void test_target(void)
{
    const uint64_t dims[4] = {6, 5, 4, 3};
    float *a = random_tensor(entries(4, dims));
    lrq_tensor_encoder *e = NULL;
    CHECK(lrq_tensor_encoder_create(a, 4, dims, 3, &e) == LRQ_OK);
    CHECK(lrq_tensor_encoder_run(e, 1000, 0.5) == LRQ_OK);
    CHECK(lrq_tensor_encoder_finished(e));
    CHECK(lrq_tensor_encoder_remainder_norm(e) <= 0.5 * lrq_tensor_encoder_input_norm(e));
    lrq_tensor_encoder_free(e);
    free(a);
}

static void test_bad_arguments(void)
{
    const uint64_t dims[4] = {2, 3, 4, 0};
    const uint64_t good[3] = {2, 3, 4};
    float a[24] = {0};
    uint8_t buf[64];
    lrq_tensor_encoder *e = NULL;
    CHECK(lrq_tensor_encoder_create(a, 2, good, 0, &e) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_tensor_encoder_create(a, 9, good, 0, &e) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_tensor_encoder_create(a, 4, dims, 0, &e) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_tensor_encoder_create(NULL, 3, good, 0, &e) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_tensor_encoder_create(a, 3, good, 0, NULL) == LRQ_ERR_ARGUMENT);
    a[5] = (float)NAN;
    CHECK(lrq_tensor_encoder_create(a, 3, good, 0, &e) == LRQ_ERR_ARGUMENT);
    a[5] = 1.0f;
    CHECK(lrq_tensor_encoder_create(a, 3, good, 0, &e) == LRQ_OK);
    CHECK(lrq_tensor_encoder_run(e, 1, -0.5) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_tensor_encoder_run(e, 1, 1.5) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_tensor_encoder_run(e, 2, 0.0) == LRQ_OK);
    CHECK(lrq_tensor_encoder_write_c(e, buf, 4) == LRQ_ERR_BUFFER_SIZE);
    CHECK(lrq_tensor_encoder_write_signs(e, 3, 64, buf, sizeof buf) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_tensor_encoder_write_signs(e, 0, 63, buf, sizeof buf) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_tensor_encoder_write_signs(e, 0, 64, buf, 3) == LRQ_ERR_BUFFER_SIZE);
    CHECK(lrq_tensor_encoder_run(NULL, 1, 0.0) == LRQ_ERR_ARGUMENT);
    CHECK(lrq_tensor_encoder_width(NULL) == 0 && lrq_tensor_encoder_finished(NULL));
    lrq_tensor_encoder_free(e);
    lrq_tensor_encoder_free(NULL);
}

int main(void)
{
    test_shapes();
    test_exact_cases();
    test_target();
    test_bad_arguments();
    return checks_result("test_tensor_encoder", lrq_isa_name());
}
