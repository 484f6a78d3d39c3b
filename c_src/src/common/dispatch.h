/* SPDX-License-Identifier: MIT */
/*
 * The one choice of instruction set: every per-ISA function the library
 * calls is reached through the table of the active path, so the products,
 * the encoder and the checksum can never run on different paths, and adding
 * an instruction set means its files in kernels/ plus one entry in
 * dispatch.c.
 */
#ifndef LRQ_DISPATCH_H
#define LRQ_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "common/encoder_kernels.h"
#include "common/kernels.h"

/* A CRC-32C core on the raw register (no initial or final XOR): the public
 * lrq_crc32c() owns the zlib-style convention in one place. */
typedef uint32_t (*lrq_crc32c_update_fn)(uint32_t reg, const uint8_t *p, size_t n);

/* The portable CRC-32C core (common/crc32c.c), every path's fallback. */
uint32_t lrq_crc32c_update_table(uint32_t reg, const uint8_t *p, size_t n);

/* Everything one instruction-set path provides. */
typedef struct {
    const char *name;                /* also what LRQ_FORCE_ISA accepts */
    const lrq_kernels *products;     /* matrix-vector kernels (common/kernels.h) */
    const lrq_sc_kernels *encoder;   /* signcut kernels (common/encoder_kernels.h) */
    lrq_crc32c_update_fn crc32c;
} lrq_isa_table;

/* The table of the active path: chosen once per process by the CPU probe
 * and LRQ_FORCE_ISA, changed only by lrq_isa_set(). */
const lrq_isa_table *lrq_dispatch(void);

#endif /* LRQ_DISPATCH_H */
