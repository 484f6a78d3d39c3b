/* SPDX-License-Identifier: MIT */
/*
 * The NEON signcut kernels: encoder_body.h with 16 lanes in four q
 * registers (lanes 0-3, 4-7, 8-11, 12-15), and the canonical 16-lane
 * float64 sums in eight (two lanes each).  No FMA is used (the build's
 * -ffp-contract=off keeps vmulq + vaddq apart), so the results cannot
 * depend on contraction.  Nibble tables are looked up through byte shuffles
 * (lanes_neon.h), as in the product kernels.
 */
#include <string.h>

#include "common/encoder_kernels.h"

#if LRQ_NEON

#include <arm_neon.h>

#include "kernels/lanes_neon.h"

#define LRQ_ENCODER_ISA neon
/* Four vectors' accumulators (16 q registers) stay in registers next to the
 * row: AArch64 has 32. */
#define MULTI_VECS 4

typedef struct {
    uint32x4_t q[4];
} eu;
typedef ntab et;
typedef vf es; /* the float sign bit in each flagged lane */
typedef es ev;
typedef struct {
    float64x2_t p[8];
} ed;

#define ef_load vf_load
#define ef_store vf_store
#define ef_max vf_max

static inline vf ef_abs(vf a)
{
    int k;
    for (k = 0; k < 4; k++)
        a.q[k] = vabsq_f32(a.q[k]); /* clears the sign bit, as fabsf */
    return a;
}

/* Lanes >= n become +0. */
static inline vf ef_keep(vf a, const size_t n)
{
    static const uint32_t index[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    int k;
    if (n >= 16)
        return a;
    for (k = 0; k < 4; k++) {
        const uint32x4_t keep = vcltq_u32(vld1q_u32(index + 4 * k), vdupq_n_u32((uint32_t)n));
        a.q[k] = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(a.q[k]), keep));
    }
    return a;
}

static inline vf ef_from_i16(const int16_t *const p, const size_t n)
{
    int16_t copy[16];
    const int16_t *src = lanes_from(p, n, sizeof *p, copy);
    vf r;
    int k;
    for (k = 0; k < 4; k++)
        r.q[k] = vcvtq_f32_s32(vmovl_s16(vld1_s16(src + 4 * k))); /* exact */
    return r;
}

/* v holds integers within int16, so the conversion is exact. */
static inline void ef_store_i16(int16_t *const p, const vf v, const size_t n)
{
    int16_t spare[16];
    int16_t *dst = lanes_to(p, n, spare);
    int k;
    for (k = 0; k < 4; k++)
        vst1_s16(dst + 4 * k, vmovn_s32(vcvtnq_s32_f32(v.q[k])));
    lanes_done(p, n, sizeof *p, spare);
}

static inline unsigned ef_signs(const vf v)
{
    const int32x4_t weight = {0, 1, 2, 3};
    unsigned bits = 0;
    int k;
    for (k = 0; k < 4; k++) {
        const uint32x4_t s = vshrq_n_u32(vreinterpretq_u32_f32(v.q[k]), 31);
        bits |= (unsigned)vaddvq_u32(vshlq_u32(s, weight)) << (4 * k);
    }
    return bits;
}

static inline eu eu_set1(const uint32_t x)
{
    const uint32x4_t v = vdupq_n_u32(x);
    eu r = {{v, v, v, v}};
    return r;
}

static inline eu eu_load(const uint32_t *const p, const size_t n)
{
    uint32_t copy[16];
    const uint32_t *src = lanes_from(p, n, sizeof *p, copy);
    eu r;
    int k;
    for (k = 0; k < 4; k++)
        r.q[k] = vld1q_u32(src + 4 * k);
    return r;
}

static inline eu eu_xor(const eu a, const eu b)
{
    eu r = {{veorq_u32(a.q[0], b.q[0]), veorq_u32(a.q[1], b.q[1]), veorq_u32(a.q[2], b.q[2]),
             veorq_u32(a.q[3], b.q[3])}};
    return r;
}

#define et_load ntab_load

/* Entry x & 15 of each lane: the low bytes of the 16 lanes, masked, index
 * the table's byte planes. */
static inline vf et_lookup(const et t, const eu x)
{
    const uint16x8_t lo = vuzp1q_u16(vreinterpretq_u16_u32(x.q[0]), vreinterpretq_u16_u32(x.q[1]));
    const uint16x8_t hi = vuzp1q_u16(vreinterpretq_u16_u32(x.q[2]), vreinterpretq_u16_u32(x.q[3]));
    const uint8x16_t low_bytes = vuzp1q_u8(vreinterpretq_u8_u16(lo), vreinterpretq_u8_u16(hi));
    return ntab_lookup(t, vandq_u8(low_bytes, vdupq_n_u8(15)));
}

static inline eu eu_next_nibble(const eu x)
{
    eu r = {{vshrq_n_u32(x.q[0], 4), vshrq_n_u32(x.q[1], 4), vshrq_n_u32(x.q[2], 4), vshrq_n_u32(x.q[3], 4)}};
    return r;
}

/* Bits i .. i+15 (i % 16 == 0) -> the float sign bit in each lane whose bit
 * is set. */
static inline es es_at(const uint64_t *const bits, const size_t i)
{
    static const uint32_t lane_bit[16] = {1u << 0,  1u << 1,  1u << 2,  1u << 3,  1u << 4,  1u << 5,
                                          1u << 6,  1u << 7,  1u << 8,  1u << 9,  1u << 10, 1u << 11,
                                          1u << 12, 1u << 13, 1u << 14, 1u << 15};
    const uint32x4_t b = vdupq_n_u32((uint32_t)(bits[i >> 6] >> (i & 63)) & 0xFFFFu);
    const uint32x4_t sign = vdupq_n_u32(0x80000000u);
    es r;
    int k;
    for (k = 0; k < 4; k++)
        r.q[k] = vreinterpretq_f32_u32(vandq_u32(vtstq_u32(b, vld1q_u32(lane_bit + 4 * k)), sign));
    return r;
}

#define ef_negate vf_xor

#define ev_at es_at

static inline vf ef_add_signed(const vf a, const vf x, const ev s)
{
    return vf_add(a, ef_negate(x, s));
}

static inline ed ed_zero(void)
{
    ed r;
    int k;
    for (k = 0; k < 8; k++)
        r.p[k] = vdupq_n_f64(0.0);
    return r;
}

/* a + v, or a + v * v, lane by lane in float64: widening is exact, and the
 * square of a float is exact in double, so multiply, then add, rounds as
 * the scalar code does. */
static inline ed ed_accumulate(ed a, const vf v, const int square)
{
    int k;
    for (k = 0; k < 4; k++) {
        const float64x2_t lo = vcvt_f64_f32(vget_low_f32(v.q[k])), hi = vcvt_high_f64_f32(v.q[k]);
        a.p[2 * k] = vaddq_f64(a.p[2 * k], square ? vmulq_f64(lo, lo) : lo);
        a.p[2 * k + 1] = vaddq_f64(a.p[2 * k + 1], square ? vmulq_f64(hi, hi) : hi);
    }
    return a;
}

#define ed_add(a, v) ed_accumulate((a), (v), 0)
#define ed_add_squares(a, v) ed_accumulate((a), (v), 1)

static inline void ed_store(double *const p, const ed a)
{
    int k;
    for (k = 0; k < 8; k++)
        vst1q_f64(p + 2 * k, a.p[k]);
}

#include "kernels/encoder_body.h"

ENCODER_TABLE(lrq_sc_kernels_neon);

#endif /* LRQ_NEON */
