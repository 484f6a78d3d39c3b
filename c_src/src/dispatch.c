/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lrq.h"
#include "lrq_internal.h"

/* Indexed by lrq_isa; these strings are also what LRQ_FORCE_ISA accepts. */
static const char *const isa_names[] = {"scalar", "sse4.2", "avx2", "avx512"};
#define ISA_COUNT (sizeof isa_names / sizeof isa_names[0])

/* Written once inside pthread_once and only read afterwards: pthread_once
 * gives the happens-before edge, so readers need no atomics and there is no
 * benign race for a sanitizer to flag. */
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static lrq_isa active_isa = LRQ_ISA_SCALAR;

static lrq_isa best_supported(void)
{
#if LRQ_X86
    /* libgcc's probe also checks XCR0, so an AVX level is reported only when
     * the operating system saves the wide registers. */
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("sse4.2"))
        return LRQ_ISA_SCALAR;
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return LRQ_ISA_SSE42;
    if (!__builtin_cpu_supports("avx512f") ||
        !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512dq") ||
        !__builtin_cpu_supports("avx512vl"))
        return LRQ_ISA_AVX2;
    return LRQ_ISA_AVX512;
#else
    return LRQ_ISA_SCALAR;
#endif
}

static void probe(void)
{
    const lrq_isa best = best_supported();
    const char *const forced = getenv("LRQ_FORCE_ISA");
    lrq_isa chosen = best;

    if (forced != NULL) {
        size_t i;
        for (i = 0; i < ISA_COUNT; i++) {
            if (strcmp(forced, isa_names[i]) == 0) {
                /* Never run instructions the CPU lacks: a forced level above
                 * what is supported degrades to the best supported one. */
                chosen = (lrq_isa)i < best ? (lrq_isa)i : best;
                break;
            }
        }
    }
    active_isa = chosen;
}

lrq_isa lrq_isa_active(void)
{
    (void)pthread_once(&probe_once, probe);
    return active_isa;
}

const char *lrq_isa_name(void)
{
    return isa_names[lrq_isa_active()];
}
