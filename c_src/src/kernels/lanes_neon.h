/* SPDX-License-Identifier: MIT */
/*
 * The NEON path's 16 floats (four q registers, lanes 0-3, 4-7, 8-11 and
 * 12-15) and their arithmetic, shared by products_neon.c and encoder_neon.c,
 * with the two exact pieces both of them need: 16-entry float tables looked
 * up through byte shuffles, and the canonical order of a max.  Include after
 * <arm_neon.h>.
 *
 * Every operation here is one IEEE operation per lane or exact, and the
 * build's -ffp-contract=off keeps the compiler from fusing a vmulq and a
 * vaddq into an fmla, so the lanes compute what the scalar path computes.
 */
#ifndef LRQ_LANES_NEON_H
#define LRQ_LANES_NEON_H

typedef struct {
    float32x4_t q[4];
} vf;

static inline vf vf_set1(const float x)
{
    const float32x4_t v = vdupq_n_f32(x);
    vf r = {{v, v, v, v}};
    return r;
}

#define vf_zero() vf_set1(0.0f)

/* One IEEE operation (or one exact bit operation) per lane, on all four quarters. */
#define QUARTERS(name, op)                                                                         \
    static inline vf name(const vf a, const vf b)                                                  \
    {                                                                                              \
        vf r = {{op(a.q[0], b.q[0]), op(a.q[1], b.q[1]), op(a.q[2], b.q[2]), op(a.q[3], b.q[3])}}; \
        return r;                                                                                  \
    }
#define XOR_F32(a, b) vreinterpretq_f32_u32(veorq_u32(vreinterpretq_u32_f32(a), vreinterpretq_u32_f32(b)))
/* b > a ? b : a, lane by lane: the scalar path's max, which keeps a when b
 * is NaN (vmaxq_f32 would return the NaN), so no input can make them differ. */
#define MAX_F32(a, b) vbslq_f32(vcgtq_f32(b, a), b, a)
QUARTERS(vf_add, vaddq_f32)
QUARTERS(vf_sub, vsubq_f32)
QUARTERS(vf_mul, vmulq_f32)
QUARTERS(vf_xor, XOR_F32)
QUARTERS(vf_max, MAX_F32)
#undef QUARTERS

/* Where to load 16 elements of `size` bytes from, for the first n of p
 * (the others read as zero): p itself, or when short a zeroed copy (of 16
 * elements), so a short tail never reads past its end. */
static inline const void *lanes_from(const void *const p, const size_t n, const size_t size, void *const copy)
{
    if (n >= 16)
        return p;
    memset(copy, 0, 16 * size);
    memcpy(copy, p, n * size);
    return copy;
}

/* Where to store 16 elements for the first n of p: p itself, or when short
 * the spare buffer, which lanes_done() then copies the n elements from. */
static inline void *lanes_to(void *const p, const size_t n, void *const spare)
{
    return n >= 16 ? p : spare;
}

static inline void lanes_done(void *const p, const size_t n, const size_t size, const void *const spare)
{
    if (n < 16)
        memcpy(p, spare, n * size);
}

/* The first n lanes of p (n <= 16; the others read as +0). */
static inline vf vf_load(const float *const p, const size_t n)
{
    float copy[16];
    const float *src = lanes_from(p, n, sizeof(float), copy);
    vf r;
    int i;
    for (i = 0; i < 4; i++)
        r.q[i] = vld1q_f32(src + 4 * i);
    return r;
}

/* The first n lanes of a to p (n <= 16). */
static inline void vf_store(float *const p, const vf a, const size_t n)
{
    float spare[16];
    float *dst = lanes_to(p, n, spare);
    int i;
    for (i = 0; i < 4; i++)
        vst1q_f32(dst + 4 * i, a.q[i]);
    lanes_done(p, n, sizeof(float), spare);
}

/* A 16-entry float table as four byte planes: plane k holds byte k of every
 * entry, so one tbl instruction looks up byte k of 16 entries at once. */
typedef struct {
    uint8x16_t plane[4];
} ntab;

static inline ntab ntab_load(const float *const t)
{
    const uint8x16x4_t p = vld4q_u8((const uint8_t *)(const void *)t);
    ntab r = {{p.val[0], p.val[1], p.val[2], p.val[3]}};
    return r;
}

/* Byte planes back to 16 little-endian 32-bit lanes, lanes in order: lane
 * l's bytes are b0[l], b1[l], b2[l], b3[l]. */
static inline void planes_to_lanes(const uint8x16_t b0, const uint8x16_t b1, const uint8x16_t b2,
                                   const uint8x16_t b3, uint32x4_t out[4])
{
    const uint16x8_t lo01 = vreinterpretq_u16_u8(vzip1q_u8(b0, b1)), hi01 = vreinterpretq_u16_u8(vzip2q_u8(b0, b1));
    const uint16x8_t lo23 = vreinterpretq_u16_u8(vzip1q_u8(b2, b3)), hi23 = vreinterpretq_u16_u8(vzip2q_u8(b2, b3));
    out[0] = vreinterpretq_u32_u16(vzip1q_u16(lo01, lo23));
    out[1] = vreinterpretq_u32_u16(vzip2q_u16(lo01, lo23));
    out[2] = vreinterpretq_u32_u16(vzip1q_u16(hi01, hi23));
    out[3] = vreinterpretq_u32_u16(vzip2q_u16(hi01, hi23));
}

/* Entry idx[l] (0..15) of the table for each of the 16 lanes: four byte
 * look-ups, then the bytes zipped back into floats. */
static inline vf ntab_lookup(const ntab t, const uint8x16_t idx)
{
    uint32x4_t u[4];
    vf r;
    int i;
    planes_to_lanes(vqtbl1q_u8(t.plane[0], idx), vqtbl1q_u8(t.plane[1], idx), vqtbl1q_u8(t.plane[2], idx),
                    vqtbl1q_u8(t.plane[3], idx), u);
    for (i = 0; i < 4; i++)
        r.q[i] = vreinterpretq_f32_u32(u[i]);
    return r;
}

/* The largest of the 16 lanes by the same rule as MAX_F32, starting from +0
 * (order-free: a max of non-NaN values is exact, and NaN is never taken). */
static inline float vf_reduce_max(const vf a)
{
    float lanes[16], m = 0.0f;
    int i;
    vf_store(lanes, a, 16);
    for (i = 0; i < 16; i++)
        m = lanes[i] > m ? lanes[i] : m;
    return m;
}

#endif /* LRQ_LANES_NEON_H */
