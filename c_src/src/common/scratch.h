/* SPDX-License-Identifier: MIT */
/*
 * Scratch memory for products and decoding: one cached block, and a carver
 * that lays out 64-byte aligned arrays in it.
 */
#ifndef LRQ_SCRATCH_H
#define LRQ_SCRATCH_H

#include <stddef.h>
#include <stdint.h>

/* A 64-byte aligned block of `size` bytes, or NULL.  *cached says whether
 * it is the cached block, which the caller holds until lrq_scratch_put(). */
void *lrq_scratch_get(size_t size, int *cached);
void lrq_scratch_put(void *p, int cached);

/* Carves 64-byte aligned arrays out of one block; the first pass (base
 * NULL) only measures. */
typedef struct {
    uint8_t *base;
    size_t used;
    int overflow;
} lrq_carver;

static inline void *lrq_carve(lrq_carver *cv, const size_t count, const size_t size)
{
    size_t bytes, at = (cv->used + 63) & ~(size_t)63;
    if (__builtin_mul_overflow(count, size, &bytes) || __builtin_add_overflow(at, bytes, &cv->used))
        cv->overflow = 1;
    return cv->base != NULL ? cv->base + at : NULL;
}

#endif /* LRQ_SCRATCH_H */
