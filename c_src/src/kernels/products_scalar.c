/* SPDX-License-Identifier: MIT */
/*
 * The scalar kernels: the reference every SIMD path must equal bit for bit,
 * and the path on CPUs that are not x86.  Plain C on 16-element arrays; the
 * compiler may vectorize these loops (lane-wise IEEE operations are the same
 * in any width), never reorder a sum (no -ffast-math, -ffp-contract=off).
 */
#include "common/kernels.h"
#include "kernels/lanes_scalar.h"

#define LRQ_KERNEL_ISA scalar
#define ALWAYS_INLINE static

typedef struct {
    uint32_t v[16];
} vi;
typedef struct {
    int32_t v[16];
} vq;
typedef const float *vt;

/* Loads and stores of the first n lanes; the other lanes read as zero. */
static inline vf vf_load(const float *p, const size_t n)
{
    vf r = vf_zero();
    memcpy(r.v, p, n * sizeof(float));
    return r;
}

static inline void vf_store(float *p, const vf a, const size_t n)
{
    memcpy(p, a.v, n * sizeof(float));
}

static inline vf vf_load_f16(const uint8_t *p, const size_t n)
{
    vf r = vf_zero();
    size_t i;
    for (i = 0; i < n; i++)
        r.v[i] = lrq_half_to_float((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
    return r;
}

/* The first n little-endian words of `bytes` bytes each; the other lanes read as zero. */
static inline vi vi_load_words(const uint8_t *p, const size_t n, const size_t bytes)
{
    vi r;
    size_t i, b;
    LANES r.v[L] = 0;
    for (i = 0; i < n; i++)
        for (b = 0; b < bytes; b++)
            r.v[i] |= (uint32_t)p[bytes * i + b] << (8 * b);
    return r;
}

static inline vi vi_load_w16(const uint8_t *p, const size_t n)
{
    return vi_load_words(p, n, 2);
}

static inline vi vi_load_w32(const uint8_t *p, const size_t n)
{
    return vi_load_words(p, n, 4);
}

static inline vt vt_load(const float *tab)
{
    return tab;
}

static inline vf vt_lookup(const vt t, const vi w, const int shift)
{
    vf r;
    LANES r.v[L] = t[(w.v[L] >> shift) & 15u];
    return r;
}

static inline vf vf_byte_level(const vi w, const int b, const vf half)
{
    vf r;
    LANES r.v[L] = (float)((w.v[L] >> (8 * b)) & 255u) - half.v[L];
    return r;
}

/* Lane k of the result holds bit k of the tile's h words, word i at bit i. */
static inline vi vi_transpose16(const uint8_t *p, const size_t h)
{
    const vi w = vi_load_w16(p, h);
    vi r;
    size_t i;
    LANES {
        uint32_t bits = 0;
        for (i = 0; i < 16; i++)
            bits |= (w.v[i] >> L & 1u) << i;
        r.v[L] = bits;
    }
    return r;
}

static inline float vf_tree16(vf a)
{
    int s, i;
    for (s = 8; s >= 1; s /= 2)
        for (i = 0; i < s; i++)
            a.v[i] = a.v[i] + a.v[i + s];
    return a.v[0];
}

static inline float vf_max_abs(const float *p, const size_t n)
{
    float m = 0.0f;
    size_t i;
    for (i = 0; i < n; i++) {
        const float a = p[i] < 0.0f ? -p[i] : p[i];
        m = a > m ? a : m;
    }
    return m;
}

static void k_tables_f32(const float *v, const size_t ngroups, float *tab)
{
    size_t j;
    unsigned i;

    for (j = 0; j < ngroups; j++, v += 4, tab += 16)
        for (i = 0; i < 16; i++) {
            const float a0 = i & 1u ? -v[0] : v[0], a1 = i & 2u ? -v[1] : v[1];
            const float a2 = i & 4u ? -v[2] : v[2], a3 = i & 8u ? -v[3] : v[3];
            tab[i] = ((a0 + a1) + a2) + a3;
        }
}

/* Scalar int tables: int8 or int16 entries in the float tables' order. */
static void quantize_tables(const float *ftab, const size_t nchunks, const float inv,
                            const float lim, const int wide, uint8_t *out)
{
    size_t i;

    for (i = 0; i < 64 * nchunks; i++) {
        float q = lrq_round_int(ftab[i] * inv);
        q = q > lim ? lim : q < -lim ? -lim : q;
        if (wide) {
            const int16_t s = (int16_t)q;
            memcpy(out + 2 * i, &s, 2);
        } else {
            out[i] = (uint8_t)(int8_t)q;
        }
    }
}

static inline vq vq_zero(void)
{
    vq r;
    LANES r.v[L] = 0;
    return r;
}

static inline vf vq_to_f(const vq a)
{
    vf r;
    LANES r.v[L] = (float)a.v[L];
    return r;
}

typedef const uint8_t *vqt;

static inline vqt vqt_load(const uint8_t *tab, const int wide)
{
    (void)wide;
    return tab;
}

static inline vq vq_add(vq a, const vq b)
{
    LANES a.v[L] += b.v[L];
    return a;
}

static inline vq vq_lut(vq acc, const vqt tab, const int wide, const vi w, const int mult)
{
    LANES {
        int32_t s = 0;
        unsigned q;
        for (q = 0; q < 4; q++) {
            const size_t e = 16 * q + ((w.v[L] >> (4 * q)) & 15u);
            if (wide) {
                int16_t x;
                memcpy(&x, tab + 2 * e, 2);
                s += x;
            } else {
                s += (int8_t)tab[e];
            }
        }
        acc.v[L] += mult * s;
    }
    return acc;
}

/* Lane j: value where bit j of word is set, else +0. */
static inline vf vf_bits(const unsigned word, const float value)
{
    vf r;
    LANES r.v[L] = (word >> L & 1u) ? value : 0.0f;
    return r;
}

/* 16 unsigned bytes as floats (exact). */
static inline vf vf_from_u8(const uint8_t *p)
{
    vf r;
    LANES r.v[L] = (float)p[L];
    return r;
}

#include "kernels/products_body.h"

KERNEL_TABLE(lrq_kernels_scalar, "scalar");
