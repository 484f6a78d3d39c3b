/* SPDX-License-Identifier: MIT */
/*
 * The scalar path's 16 floats and their arithmetic, shared by
 * products_scalar.c and encoder_scalar.c: plain C on 16-element arrays,
 * which a compiler may vectorize (lane-wise IEEE operations are the same in
 * any width) but never reorder (no -ffast-math, -ffp-contract=off).
 */
#ifndef LRQ_LANES_SCALAR_H
#define LRQ_LANES_SCALAR_H

#include <stdint.h>

typedef struct {
    float v[16];
} vf;

#define LANES for (int i_ = 0; i_ < 16; i_++)
#define L i_

static inline vf vf_set1(const float x)
{
    vf r;
    LANES r.v[L] = x;
    return r;
}

#define vf_zero() vf_set1(0.0f)

/* One IEEE operation per lane. */
#define LANEWISE(name, op)                                                                         \
    static inline vf name(const vf a, const vf b)                                                  \
    {                                                                                              \
        vf r;                                                                                      \
        LANES r.v[L] = a.v[L] op b.v[L];                                                           \
        return r;                                                                                  \
    }
LANEWISE(vf_add, +)
LANEWISE(vf_sub, -)
LANEWISE(vf_mul, *)
#undef LANEWISE

#endif /* LRQ_LANES_SCALAR_H */
