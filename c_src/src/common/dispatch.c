/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/dispatch.h"
#include "common/internal.h"
#include "lrq.h"

#if LRQ_X86
#include <cpuid.h>
#endif

/* The per-ISA tables, defined in kernels/ and named nowhere else. */
extern const lrq_kernels lrq_kernels_scalar;
extern const lrq_sc_kernels lrq_sc_kernels_scalar;
#if LRQ_X86
extern const lrq_kernels lrq_kernels_avx2, lrq_kernels_avx512;
extern const lrq_sc_kernels lrq_sc_kernels_avx2, lrq_sc_kernels_avx512;
uint32_t lrq_crc32c_update_sse42(uint32_t reg, const uint8_t *p, size_t n);
#define X86_PATH(name, products, encoder, crc) {name, products, encoder, crc}
#else
/* Without a path's files its name stays valid for LRQ_FORCE_ISA and
 * lrq_isa_set() (and degrades to the best supported path); the probe never
 * selects it. */
#define X86_PATH(name, products, encoder, crc) \
    {name, &lrq_kernels_scalar, &lrq_sc_kernels_scalar, lrq_crc32c_update_table}
#endif
#if LRQ_NEON
extern const lrq_kernels lrq_kernels_neon;
extern const lrq_sc_kernels lrq_sc_kernels_neon;
#define NEON_PATH(name, products, encoder, crc) {name, products, encoder, crc}
#else
#define NEON_PATH(name, products, encoder, crc) \
    {name, &lrq_kernels_scalar, &lrq_sc_kernels_scalar, lrq_crc32c_update_table}
#endif

/* The one table of paths.  Paths of one architecture are ordered so that
 * each level implies the ones below it; scalar runs everywhere (the probe
 * returns an index into this table).  SSE4.2 adds only the CRC-32C
 * instruction.  NEON keeps the portable CRC-32C: the ARMv8 CRC instructions
 * are optional, and the checksum is not where the time goes. */
typedef enum { LRQ_ISA_SCALAR, LRQ_ISA_SSE42, LRQ_ISA_AVX2, LRQ_ISA_AVX512, LRQ_ISA_NEON } lrq_isa;
static const lrq_isa_table paths[] = {
    {"scalar", &lrq_kernels_scalar, &lrq_sc_kernels_scalar, lrq_crc32c_update_table},
    X86_PATH("sse4.2", &lrq_kernels_scalar, &lrq_sc_kernels_scalar, lrq_crc32c_update_sse42),
    X86_PATH("avx2", &lrq_kernels_avx2, &lrq_sc_kernels_avx2, lrq_crc32c_update_sse42),
    X86_PATH("avx512", &lrq_kernels_avx512, &lrq_sc_kernels_avx512, lrq_crc32c_update_sse42),
    NEON_PATH("neon", &lrq_kernels_neon, &lrq_sc_kernels_neon, lrq_crc32c_update_table),
};
#define ISA_COUNT (sizeof paths / sizeof paths[0])

/* The architecture of each path, by index: a path runs on a CPU only if it
 * is scalar or of the CPU's architecture and at most its best level. */
typedef enum { ARCH_ANY, ARCH_X86, ARCH_ARM64 } lrq_arch;
static const lrq_arch path_arch[] = {ARCH_ANY, ARCH_X86, ARCH_X86, ARCH_X86, ARCH_ARM64};
typedef char lrq_path_arch_matches_paths[sizeof path_arch / sizeof path_arch[0] == ISA_COUNT ? 1 : -1];

/* Written once inside pthread_once and only read afterwards: pthread_once
 * gives the happens-before edge, so readers need no atomics and there is no
 * benign race for a sanitizer to flag. */
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static lrq_isa best_isa = LRQ_ISA_SCALAR;
static lrq_isa startup_isa = LRQ_ISA_SCALAR;
/* Changed later only by lrq_isa_set(), hence atomic accesses; every path
 * gives the same results, so a reader seeing either value is fine. */
static int active_isa = LRQ_ISA_SCALAR;

#if LRQ_X86
/* F16C (CPUID leaf 1, ECX bit 29) by hand: not every compiler's
 * __builtin_cpu_supports knows its name. */
static int has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1u);
}
#endif

static lrq_isa best_supported(void)
{
#if LRQ_X86
    /* libgcc's probe also checks XCR0, so an AVX level is reported only when
     * the operating system saves the wide registers. */
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("sse4.2"))
        return LRQ_ISA_SCALAR;
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || !has_f16c())
        return LRQ_ISA_SSE42;
    /* The kernels' AVX-512 path uses byte permutes (VBMI), dot products of
     * bytes (VNNI) and GF(2) affine bit transposes (GFNI) besides the core
     * subsets: all present together from Ice Lake and Zen 4 on. */
    if (!__builtin_cpu_supports("avx512f") ||
        !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512dq") ||
        !__builtin_cpu_supports("avx512vl") ||
        !__builtin_cpu_supports("avx512vbmi") ||
        !__builtin_cpu_supports("avx512vnni") ||
        !__builtin_cpu_supports("gfni"))
        return LRQ_ISA_AVX2;
    return LRQ_ISA_AVX512;
#elif LRQ_NEON
    /* Advanced SIMD is part of the 64-bit ARM base architecture, and
     * LRQ_NEON holds only when the compiler targets it. */
    return LRQ_ISA_NEON;
#else
    return LRQ_ISA_SCALAR;
#endif
}

/* The path a name asks for, capped at what the CPU supports, or -1. */
static int isa_by_name(const char *const name)
{
    size_t i;
    for (i = 0; i < ISA_COUNT; i++)
        if (strcmp(name, paths[i].name) == 0)
            /* Never run instructions the CPU lacks: a forced level above
             * what is supported, or of another architecture, degrades to
             * the best supported one. */
            return path_arch[i] == ARCH_ANY || (path_arch[i] == path_arch[best_isa] && (lrq_isa)i < best_isa)
                       ? (int)i
                       : (int)best_isa;
    return -1;
}

static void probe(void)
{
    const char *const forced = getenv("LRQ_FORCE_ISA");
    int chosen;

    best_isa = best_supported();
    chosen = forced != NULL ? isa_by_name(forced) : -1;
    startup_isa = chosen >= 0 ? (lrq_isa)chosen : best_isa;
    __atomic_store_n(&active_isa, (int)startup_isa, __ATOMIC_RELAXED);
}

const lrq_isa_table *lrq_dispatch(void)
{
    (void)pthread_once(&probe_once, probe);
    return &paths[__atomic_load_n(&active_isa, __ATOMIC_RELAXED)];
}

int lrq_isa_set(const char *const name)
{
    int chosen;

    (void)pthread_once(&probe_once, probe);
    chosen = name == NULL ? (int)startup_isa : isa_by_name(name);
    if (chosen < 0)
        return LRQ_ERR_ARGUMENT;
    __atomic_store_n(&active_isa, chosen, __ATOMIC_RELAXED);
    return LRQ_OK;
}

const char *lrq_isa_name(void)
{
    return lrq_dispatch()->name;
}
