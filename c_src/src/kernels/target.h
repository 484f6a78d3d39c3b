/* SPDX-License-Identifier: MIT */
/*
 * The one way a kernels/ file enables an instruction set: for the rest of
 * the file, between LRQ_TARGET_BEGIN("...") and LRQ_TARGET_END.  The rest of
 * the library stays baseline (no -m flag anywhere), and dispatch.c calls a
 * file's functions only after the CPU reported every feature it names.
 */
#ifndef LRQ_KERNELS_TARGET_H
#define LRQ_KERNELS_TARGET_H

#define LRQ_PRAGMA(x) _Pragma(#x)

/* GCC applies a target pragma to the rest of the file; clang needs an
 * attribute pushed onto every function for the same effect. */
#if defined(__clang__)
#define LRQ_TARGET_BEGIN(features) \
    LRQ_PRAGMA(clang attribute push(__attribute__((target(features))), apply_to = function))
#define LRQ_TARGET_END LRQ_PRAGMA(clang attribute pop)
#else
#define LRQ_TARGET_BEGIN(features) LRQ_PRAGMA(GCC target(features))
#define LRQ_TARGET_END
#endif

#endif /* LRQ_KERNELS_TARGET_H */
