/* SPDX-License-Identifier: MIT */
/*
 * The NEON kernels (64-bit ARM Advanced SIMD, part of the base architecture,
 * so this file needs no target pragma; dispatch.c still selects it only
 * after the probe saw it).  A 16-row tile is four q registers of floats.
 *
 * The 16 words of a tile are kept as byte planes (vld2q_u8 / vld4q_u8
 * de-interleave them on load): plane b holds byte b of every row's word, so
 * a nibble of 16 rows is one and / shift of a plane, and a look-up in a
 * 16-entry float table is four tbl instructions on the table's byte planes
 * plus the zips that put the bytes back together (lanes_neon.h).  The int
 * tables are looked up by the same tbl, 16 rows per instruction.  The
 * transposed direction turns 16x16 bit blocks around as four 8x8 bit
 * transposes, two per 64-bit lane.
 */
#include "common/kernels.h"

#if LRQ_NEON

#include <arm_neon.h>

#include "kernels/lanes_neon.h"

#define LRQ_KERNEL_ISA neon

/* The 16 words of a tile: first as 16 u32 lanes in row order (what the
 * body's wide transposed kernel reads of every ISA's vi), then as byte
 * planes, byte b of every word (b < 2 for u16 words, b < 4 for u32), which
 * the look-ups use.  Each kernel uses one form; the compiler drops the
 * other. */
typedef struct {
    uint32x4_t w[4];
    uint8x16_t b[4];
} vi;

static inline vi vi_from_planes(const uint8x16_t b0, const uint8x16_t b1, const uint8x16_t b2, const uint8x16_t b3)
{
    vi r;
    planes_to_lanes(b0, b1, b2, b3, r.w);
    r.b[0] = b0, r.b[1] = b1, r.b[2] = b2, r.b[3] = b3;
    return r;
}
typedef ntab vt;
typedef struct {
    int32x4_t q[4];
} vq;

/* f16 bytes may be unaligned: loaded as bytes, then read as u16 lanes. */
static inline vf vf_load_f16(const uint8_t *p, const size_t n)
{
    uint8_t copy[32];
    const uint8_t *src = lanes_from(p, n, 2, copy);
    vf r;
    int i;
    for (i = 0; i < 4; i++)
        r.q[i] = vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(src + 8 * i))); /* exact */
    return r;
}

static inline vi vi_load_w16(const uint8_t *p, const size_t n)
{
    uint8_t copy[32];
    const uint8x16x2_t w = vld2q_u8(lanes_from(p, n, 2, copy));
    return vi_from_planes(w.val[0], w.val[1], vdupq_n_u8(0), vdupq_n_u8(0));
}

static inline vi vi_load_w32(const uint8_t *p, const size_t n)
{
    uint8_t copy[64];
    const uint8x16x4_t w = vld4q_u8(lanes_from(p, n, 4, copy));
    return vi_from_planes(w.val[0], w.val[1], w.val[2], w.val[3]);
}

#define vt_load ntab_load

/* Bits shift .. shift+3 of every word, one byte per row. */
static inline uint8x16_t nibble(const vi w, const int shift)
{
    const uint8x16_t plane = w.b[shift / 8];
    return shift % 8 ? vshrq_n_u8(plane, 4) : vandq_u8(plane, vdupq_n_u8(15));
}

static inline vf vt_lookup(const vt t, const vi w, const int shift)
{
    return ntab_lookup(t, nibble(w, shift));
}

/* Byte b of the 16 words as floats, minus half: exact. */
static inline vf vf_byte_level(const vi w, const int b, const vf half)
{
    const uint16x8_t lo = vmovl_u8(vget_low_u8(w.b[b])), hi = vmovl_u8(vget_high_u8(w.b[b]));
    vf r = {{vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo))), vcvtq_f32_u32(vmovl_u16(vget_high_u16(lo))),
             vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi))), vcvtq_f32_u32(vmovl_u16(vget_high_u16(hi)))}};
    return vf_sub(r, half);
}

/* Each 64-bit lane as an 8x8 bit matrix, byte i = row i, bit j = column j,
 * transposed (byte j bit i of the result = byte i bit j of x): three rounds
 * of swapping bit blocks across the diagonal. */
static inline uint64x2_t transpose8x8(uint64x2_t x)
{
    uint64x2_t t;
    t = vandq_u64(veorq_u64(x, vshrq_n_u64(x, 7)), vdupq_n_u64(UINT64_C(0x00AA00AA00AA00AA)));
    x = veorq_u64(veorq_u64(x, t), vshlq_n_u64(t, 7));
    t = vandq_u64(veorq_u64(x, vshrq_n_u64(x, 14)), vdupq_n_u64(UINT64_C(0x0000CCCC0000CCCC)));
    x = veorq_u64(veorq_u64(x, t), vshlq_n_u64(t, 14));
    t = vandq_u64(veorq_u64(x, vshrq_n_u64(x, 28)), vdupq_n_u64(UINT64_C(0x00000000F0F0F0F0)));
    return veorq_u64(veorq_u64(x, t), vshlq_n_u64(t, 28));
}

/* Lane k of the result holds bit k of the tile's h words, word i at bit i.
 * With the words' low bytes L (rows 0-7 in 64-bit lane 0, rows 8-15 in lane
 * 1) and high bytes H, output word k < 8 has bit k of L's rows and word
 * 8 + k bit k of H's: the transposes of L and H are the output's low bytes
 * (lane 0) and high bytes (lane 1), which one zip regroups. */
static inline vi vi_transpose16(const uint8_t *p, const size_t h)
{
    const vi w = vi_load_w16(p, h);
    const uint64x2_t l = transpose8x8(vreinterpretq_u64_u8(w.b[0]));
    const uint64x2_t u = transpose8x8(vreinterpretq_u64_u8(w.b[1]));
    return vi_from_planes(vreinterpretq_u8_u64(vzip1q_u64(l, u)), vreinterpretq_u8_u64(vzip2q_u64(l, u)),
                          vdupq_n_u8(0), vdupq_n_u8(0));
}

/* Lane i + s into lane i for s = 8, 4, 2, 1 (common/kernels.h, tree16). */
static inline float vf_tree16(const vf a)
{
    const float32x4_t s4 = vaddq_f32(vaddq_f32(a.q[0], a.q[2]), vaddq_f32(a.q[1], a.q[3]));
    const float32x2_t s2 = vadd_f32(vget_low_f32(s4), vget_high_f32(s4));
    return vget_lane_f32(s2, 0) + vget_lane_f32(s2, 1);
}

static inline float vf_max_abs(const float *p, const size_t n)
{
    vf m = vf_zero();
    size_t i;
    int k;
    for (i = 0; i + 16 <= n; i += 16) {
        vf a = vf_load(p + i, 16);
        for (k = 0; k < 4; k++)
            a.q[k] = vabsq_f32(a.q[k]);
        m = vf_max(m, a);
    }
    if (i < n) {
        vf a = vf_load(p + i, n - i);
        for (k = 0; k < 4; k++)
            a.q[k] = vabsq_f32(a.q[k]);
        m = vf_max(m, a);
    }
    return vf_reduce_max(m);
}

/* Entry i = ((a0 + a1) + a2) + a3 with the signs of i's bits: entries
 * 4q .. 4q+3 share a0 + a1 (signs from bits 0, 1) and take the signs of a2
 * and a3 from q. */
static void k_tables_f32(const float *v, const size_t ngroups, float *tab)
{
    const uint32x4_t s0 = {0, 0x80000000u, 0, 0x80000000u}, s1 = {0, 0, 0x80000000u, 0x80000000u};
    const uint32x4_t sign = vdupq_n_u32(0x80000000u);
    size_t j;

    for (j = 0; j < ngroups; j++, v += 4, tab += 16) {
        const float32x4_t x2 = vdupq_n_f32(v[2]), x3 = vdupq_n_f32(v[3]);
        const float32x4_t n2 = XOR_F32(x2, vreinterpretq_f32_u32(sign)), n3 = XOR_F32(x3, vreinterpretq_f32_u32(sign));
        const float32x4_t s01 = vaddq_f32(XOR_F32(vdupq_n_f32(v[0]), vreinterpretq_f32_u32(s0)),
                                          XOR_F32(vdupq_n_f32(v[1]), vreinterpretq_f32_u32(s1)));
        const float32x4_t p2 = vaddq_f32(s01, x2), m2 = vaddq_f32(s01, n2);
        vst1q_f32(tab, vaddq_f32(p2, x3));
        vst1q_f32(tab + 4, vaddq_f32(m2, x3));
        vst1q_f32(tab + 8, vaddq_f32(p2, n3));
        vst1q_f32(tab + 12, vaddq_f32(m2, n3));
    }
}

/* Int tables in the x86 paths' layout: group q's 16 int8 entries at bytes
 * 16q .. 16q+15, or for int16 entries their low bytes there and their high
 * bytes at 64 + 16q, so that each is one tbl table. */
static void quantize_tables(const float *ftab, const size_t nchunks, const float inv,
                            const float lim, const int wide, uint8_t *out)
{
    const float32x4_t vinv = vdupq_n_f32(inv), magic = vdupq_n_f32(12582912.0f);
    const float32x4_t hi = vdupq_n_f32(lim), lo = vdupq_n_f32(-lim);
    size_t c, i;
    int k;

    for (c = 0; c < nchunks; c++, ftab += 64, out += LRQ_ITAB_BYTES(wide))
        for (i = 0; i < 4; i++) {
            int16x8_t e16[2];
            for (k = 0; k < 2; k++) {
                int32x4_t e[2];
                int h;
                for (h = 0; h < 2; h++) {
                    float32x4_t q = vld1q_f32(ftab + 16 * i + 8 * k + 4 * h);
                    q = vsubq_f32(vaddq_f32(vmulq_f32(q, vinv), magic), magic);
                    /* q > lim ? lim : q < -lim ? -lim : q, as the scalar path clamps */
                    q = vbslq_f32(vcgtq_f32(q, hi), hi, vbslq_f32(vcltq_f32(q, lo), lo, q));
                    e[h] = vcvtq_s32_f32(q); /* an integer: exact */
                }
                e16[k] = vcombine_s16(vmovn_s32(e[0]), vmovn_s32(e[1]));
            }
            if (wide) {
                const uint8x16x2_t bytes = vuzpq_u8(vreinterpretq_u8_s16(e16[0]), vreinterpretq_u8_s16(e16[1]));
                vst1q_u8(out + 16 * i, bytes.val[0]);
                vst1q_u8(out + 64 + 16 * i, bytes.val[1]);
            } else {
                vst1q_s8((int8_t *)(void *)(out + 16 * i), vcombine_s8(vmovn_s16(e16[0]), vmovn_s16(e16[1])));
            }
        }
}

static inline vq vq_zero(void)
{
    const int32x4_t z = vdupq_n_s32(0);
    vq r = {{z, z, z, z}};
    return r;
}

static inline vf vq_to_f(const vq a)
{
    vf r = {{vcvtq_f32_s32(a.q[0]), vcvtq_f32_s32(a.q[1]), vcvtq_f32_s32(a.q[2]), vcvtq_f32_s32(a.q[3])}};
    return r;
}

/* The chunk's tables: t[0..3] the int8 entries (or low bytes), t[4..7] the high bytes. */
typedef struct {
    uint8x16_t t[8];
} vqt;

static inline vqt vqt_load(const uint8_t *tab, const int wide)
{
    vqt r;
    int i;
    for (i = 0; i < 8; i++)
        r.t[i] = i < 4 || wide ? vld1q_u8(tab + 16 * i) : vdupq_n_u8(0);
    return r;
}

static inline vq vq_add(const vq a, const vq b)
{
    vq r = {{vaddq_s32(a.q[0], b.q[0]), vaddq_s32(a.q[1], b.q[1]), vaddq_s32(a.q[2], b.q[2]),
             vaddq_s32(a.q[3], b.q[3])}};
    return r;
}

/* acc += mult * (the 16 rows' 16-bit sums s_lo, s_hi of rows 0-7, 8-15). */
static inline vq add_rows16(vq acc, const int16x8_t s_lo, const int16x8_t s_hi, const int mult)
{
    acc.q[0] = vmlaq_n_s32(acc.q[0], vmovl_s16(vget_low_s16(s_lo)), mult);
    acc.q[1] = vmlaq_n_s32(acc.q[1], vmovl_s16(vget_high_s16(s_lo)), mult);
    acc.q[2] = vmlaq_n_s32(acc.q[2], vmovl_s16(vget_low_s16(s_hi)), mult);
    acc.q[3] = vmlaq_n_s32(acc.q[3], vmovl_s16(vget_high_s16(s_hi)), mult);
    return acc;
}

/* The four nibbles of each row looked up in their group's table and summed
 * (exact integers: four int8 entries fit in int16; four int16 entries are
 * summed in int32). */
static inline vq vq_lut(vq acc, const vqt tab, const int wide, const vi w, const int mult)
{
    const uint8x16_t n[4] = {nibble(w, 0), nibble(w, 4), nibble(w, 8), nibble(w, 12)};
    int q;

    if (wide) {
        int32x4_t s[4];
        for (q = 0; q < 4; q++)
            s[q] = vdupq_n_s32(0);
        for (q = 0; q < 4; q++) {
            const uint8x16_t l = vqtbl1q_u8(tab.t[q], n[q]), h = vqtbl1q_u8(tab.t[4 + q], n[q]);
            const int16x8_t e_lo = vreinterpretq_s16_u8(vzip1q_u8(l, h)), e_hi = vreinterpretq_s16_u8(vzip2q_u8(l, h));
            s[0] = vaddw_s16(s[0], vget_low_s16(e_lo));
            s[1] = vaddw_s16(s[1], vget_high_s16(e_lo));
            s[2] = vaddw_s16(s[2], vget_low_s16(e_hi));
            s[3] = vaddw_s16(s[3], vget_high_s16(e_hi));
        }
        for (q = 0; q < 4; q++)
            acc.q[q] = vmlaq_n_s32(acc.q[q], s[q], mult);
        return acc;
    }
    {
        int16x8_t s_lo = vdupq_n_s16(0), s_hi = vdupq_n_s16(0);
        for (q = 0; q < 4; q++) {
            const int8x16_t e = vreinterpretq_s8_u8(vqtbl1q_u8(tab.t[q], n[q]));
            s_lo = vaddw_s8(s_lo, vget_low_s8(e));
            s_hi = vaddw_s8(s_hi, vget_high_s8(e));
        }
        return add_rows16(acc, s_lo, s_hi, mult);
    }
}

/* Lane j: value where bit j of word is set, else +0. */
static inline vf vf_bits(const unsigned word, const float value)
{
    static const uint32_t lane_bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048,
                                          4096, 8192, 16384, 32768};
    const uint32x4_t w = vdupq_n_u32(word), v = vreinterpretq_u32_f32(vdupq_n_f32(value));
    vf r;
    int i;
    for (i = 0; i < 4; i++)
        r.q[i] = vreinterpretq_f32_u32(vandq_u32(vtstq_u32(w, vld1q_u32(lane_bit + 4 * i)), v));
    return r;
}

/* 16 unsigned bytes as floats (exact). */
static inline vf vf_from_u8(const uint8_t *p)
{
    const uint8x16_t b = vld1q_u8(p);
    const uint16x8_t lo = vmovl_u8(vget_low_u8(b)), hi = vmovl_u8(vget_high_u8(b));
    vf r = {{vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo))), vcvtq_f32_u32(vmovl_u16(vget_high_u16(lo))),
             vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi))), vcvtq_f32_u32(vmovl_u16(vget_high_u16(hi)))}};
    return r;
}

#include "kernels/products_body.h"

KERNEL_TABLE(lrq_kernels_neon, "neon");

#endif /* LRQ_NEON */
