/* SPDX-License-Identifier: MIT */
/*
 * Every signcut encoder kernel (common/encoder_kernels.h) of every path this
 * CPU runs, called directly and compared bit for bit with the scalar one:
 * lengths 0 .. 80 (every short tail of the 16 lanes and the 64-bit sign
 * words) and one past the encoder's 4096-element pieces, inputs with signed
 * zeros, ties and values of very different magnitude.  tests/c/test_encoder.c
 * checks the same through the encoder's output; this finds a kernel whose
 * difference the encoder's decisions happen to hide.
 *
 * Prints one line per failed check and exits non-zero if any failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/dispatch.h"
#include "lrq.h"

#define MAXLEN 4100
#define ROWS 5

static const char *const paths[] = {"avx2", "avx512", "neon"};

/* Floats of mixed sizes and signs, with exact zeros of both signs. */
static float value(void)
{
    const uint64_t r = rng_next();
    const float mag = (float)(r >> 40) * 0x1p-24f * (float)(1u << (r >> 8 & 7));
    switch (r & 15) {
    case 0:
        return 0.0f;
    case 1:
        return -0.0f;
    default:
        return r & 16 ? -mag : mag;
    }
}

typedef struct {
    float rows[ROWS * MAXLEN], out[MAXLEN], w[32];
    int16_t fixed[ROWS * MAXLEN], fixed_out[MAXLEN];
    uint32_t pat[MAXLEN], idx[ROWS], colpat[MAXLEN];
    uint64_t bits[32 * (MAXLEN / 64 + 1)], other[MAXLEN / 64 + 1]; /* bits: one word run per vector */
    float scale[ROWS];
    lrq_sc_table tab[8];
    unsigned groups, nk;
    uint32_t rowpat;
} inputs;

/* Everything one path's kernels compute from the inputs, in one buffer so
 * that one memcmp compares it all. */
typedef struct {
    float flip[MAXLEN];
    float maxabs;
    int16_t fixed[MAXLEN];
    float corrected[MAXLEN], subbed[MAXLEN];
    double sum_abs, sum_abs_bits, signed_sum, block_norm[3];
    uint64_t abs_bits[MAXLEN / 64 + 1], sign_bits[MAXLEN / 64 + 1];
    float block_rows[3][MAXLEN];
    float multi[ROWS * 32];
    uint64_t differ;
} results;

static void fill(inputs *in, const size_t len)
{
    size_t i;
    for (i = 0; i < ROWS * MAXLEN; i++) {
        in->rows[i] = value();
        in->fixed[i] = (int16_t)(rng_next() % 32768) - 16384;
    }
    for (i = 0; i < MAXLEN; i++) {
        in->out[i] = value();
        in->pat[i] = (uint32_t)rng_next();
        in->colpat[i] = (uint32_t)rng_next();
    }
    for (i = 0; i < sizeof in->bits / sizeof in->bits[0]; i++)
        in->bits[i] = rng_next();
    for (i = 0; i < sizeof in->other / sizeof in->other[0]; i++)
        in->other[i] = rng_next();
    for (i = 0; i < ROWS; i++) {
        in->idx[i] = (uint32_t)(rng_next() % ROWS);
        in->scale[i] = (rng_next() & 1 ? -1.0f : 1.0f) * (float)(1u << (rng_next() % 5)) * 0x1p-14f;
    }
    in->nk = 1 + (unsigned)(rng_next() % 32);
    for (i = 0; i < in->nk; i++)
        in->w[i] = value();
    in->groups = lrq_sc_tables(in->w, in->nk, in->tab);
    in->rowpat = (uint32_t)rng_next();
    (void)len;
}

static void run(const lrq_sc_kernels *k, const inputs *in, const size_t len, results *r)
{
    const size_t words = MAXLEN / 64 + 1;
    int mode;

    memset(r, 0, sizeof *r);
    memcpy(r->flip, in->out, len * sizeof(float));
    k->flip_update(r->flip, len, in->fixed, MAXLEN, in->idx, in->scale, ROWS);
    r->maxabs = k->max_abs(in->rows, len);
    k->to_fixed(in->rows, len, 3, r->fixed);
    memcpy(r->corrected, in->out, len * sizeof(float));
    k->block_correct(r->corrected, len, in->pat, in->tab, in->groups);
    memcpy(r->subbed, in->out, len * sizeof(float));
    k->sub_signed(r->subbed, len, in->bits, in->w[0]);
    r->sum_abs = k->sum_abs(in->rows, len, NULL);
    r->sum_abs_bits = k->sum_abs(in->rows, len, r->abs_bits);
    r->signed_sum = k->signed_sum(in->rows, in->bits, len);
    for (mode = 1; mode <= 3; mode++) {
        memcpy(r->block_rows[mode - 1], in->rows, len * sizeof(float));
        r->block_norm[mode - 1] =
            k->block_row(r->block_rows[mode - 1], len, in->rowpat, in->colpat, in->tab, in->groups, mode);
    }
    k->multi_signed_sum(in->rows, MAXLEN, ROWS, len, in->bits, words, in->nk, r->multi, 32);
    k->sign_bits(in->rows, len, r->sign_bits);
    r->differ = k->count_differ(in->bits, in->other, in->bits + words, (len + 63) / 64);
}

/* Each field on its own, so that a failure names the kernel. */
static void compare(const results *a, const results *b, const char *path, const size_t len)
{
#define SAME(field)                                                                                \
    do {                                                                                           \
        if (memcmp(&a->field, &b->field, sizeof a->field) != 0) {                                  \
            fprintf(stderr, "%s differs from scalar: %s, len %zu\n", path, #field, len);           \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)
    SAME(flip);
    SAME(maxabs);
    SAME(fixed);
    SAME(corrected);
    SAME(subbed);
    SAME(sum_abs);
    SAME(sum_abs_bits);
    SAME(abs_bits);
    SAME(signed_sum);
    SAME(block_norm);
    SAME(block_rows);
    SAME(multi);
    SAME(sign_bits);
    SAME(differ);
#undef SAME
}

int main(void)
{
    static inputs in;
    static results want, got;
    size_t len, p, ran = 0;

    for (len = 0; len <= MAXLEN; len = len < 80 ? len + 1 : len < 4097 ? 4097 : MAXLEN + 1) {
        fill(&in, len);
        CHECK(lrq_isa_set("scalar") == LRQ_OK);
        run(lrq_dispatch()->encoder, &in, len, &want);
        for (p = 0; p < sizeof paths / sizeof paths[0]; p++) {
            CHECK(lrq_isa_set(paths[p]) == LRQ_OK);
            if (strcmp(lrq_isa_name(), paths[p]) != 0)
                continue; /* this CPU runs another path for it, compared under its own name */
            run(lrq_dispatch()->encoder, &in, len, &got);
            compare(&want, &got, paths[p], len);
            ran++;
        }
    }
    CHECK(lrq_isa_set(NULL) == LRQ_OK);
    {
        char context[64];
        snprintf(context, sizeof context, "%zu comparisons, active %s", ran, lrq_isa_name());
        return checks_result("test_encoder_kernels", context);
    }
}
