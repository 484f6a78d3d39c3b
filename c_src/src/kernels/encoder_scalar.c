/* SPDX-License-Identifier: MIT */
/*
 * The scalar signcut kernels: the loops of encoder_body.h on 16-element
 * arrays, the definition every SIMD path reproduces bit for bit (see
 * common/encoder_kernels.h).  Signs are applied by flipping the IEEE sign
 * bit, never by multiplying, and a - b stands where the contract says "add
 * the negation": IEEE defines them as the same operation.
 */
#include <math.h>
#include <string.h>

#include "common/encoder_kernels.h"
#include "kernels/lanes_scalar.h"

#define LRQ_ENCODER_ISA scalar
/* Forced inlining would grow the 16-lane loops into functions that take
 * minutes to compile with sanitizers, for speed nobody needs here. */
#define ALWAYS_INLINE static inline

typedef struct {
    uint32_t v[16];
} eu;
typedef const float *et;
typedef unsigned es; /* bit l: lane l's flag */
typedef unsigned ev;
typedef struct {
    double v[16];
} ed;

static inline vf ef_load(const float *const p, const size_t n)
{
    vf r;
    LANES r.v[L] = (size_t)L < n ? p[L] : 0.0f;
    return r;
}

static inline void ef_store(float *const p, const vf v, const size_t n)
{
    LANES if ((size_t)L < n) p[L] = v.v[L];
}

static inline vf ef_abs(const vf a)
{
    vf r;
    LANES r.v[L] = fabsf(a.v[L]);
    return r;
}

static inline vf ef_max(const vf a, const vf b)
{
    vf r;
    LANES r.v[L] = b.v[L] > a.v[L] ? b.v[L] : a.v[L];
    return r;
}

static inline vf ef_keep(const vf a, const size_t n)
{
    vf r;
    LANES r.v[L] = (size_t)L < n ? a.v[L] : 0.0f;
    return r;
}

static inline vf ef_from_i16(const int16_t *const p, const size_t n)
{
    vf r;
    LANES r.v[L] = (size_t)L < n ? (float)p[L] : 0.0f;
    return r;
}

static inline void ef_store_i16(int16_t *const p, const vf v, const size_t n)
{
    LANES if ((size_t)L < n) p[L] = (int16_t)v.v[L];
}

static inline unsigned ef_signs(const vf v)
{
    unsigned bits = 0;
    LANES {
        uint32_t u;
        memcpy(&u, &v.v[L], sizeof u);
        bits |= (unsigned)(u >> 31) << L;
    }
    return bits;
}

static inline eu eu_set1(const uint32_t x)
{
    eu r;
    LANES r.v[L] = x;
    return r;
}

static inline eu eu_load(const uint32_t *const p, const size_t n)
{
    eu r;
    LANES r.v[L] = (size_t)L < n ? p[L] : 0u;
    return r;
}

static inline eu eu_xor(const eu a, const eu b)
{
    eu r;
    LANES r.v[L] = a.v[L] ^ b.v[L];
    return r;
}

static inline et et_load(const float *const t)
{
    return t;
}

static inline vf et_lookup(const et t, const eu x)
{
    vf r;
    LANES r.v[L] = t[x.v[L] & 15u];
    return r;
}

static inline eu eu_next_nibble(const eu x)
{
    eu r;
    LANES r.v[L] = x.v[L] >> 4;
    return r;
}

static inline es es_at(const uint64_t *const bits, const size_t i)
{
    return (unsigned)(bits[i >> 6] >> (i & 63)) & 0xFFFFu;
}

static inline vf ef_negate(const vf v, const es s)
{
    vf r;
    LANES r.v[L] = (s >> L & 1u) ? -v.v[L] : v.v[L];
    return r;
}

#define ev_at es_at

static inline vf ef_add_signed(const vf a, const vf x, const ev s)
{
    vf r;
    LANES r.v[L] = a.v[L] + ((s >> L & 1u) ? -x.v[L] : x.v[L]);
    return r;
}

static inline ed ed_zero(void)
{
    ed r;
    LANES r.v[L] = 0.0;
    return r;
}

static inline ed ed_add(const ed a, const vf v)
{
    ed r;
    LANES r.v[L] = a.v[L] + (double)v.v[L];
    return r;
}

static inline ed ed_add_squares(const ed a, const vf v)
{
    ed r;
    LANES r.v[L] = a.v[L] + (double)v.v[L] * (double)v.v[L];
    return r;
}

static inline void ed_store(double *const p, const ed a)
{
    LANES p[L] = a.v[L];
}

#include "kernels/encoder_body.h"

ENCODER_TABLE(lrq_sc_kernels_scalar);
