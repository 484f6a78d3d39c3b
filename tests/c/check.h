/* SPDX-License-Identifier: MIT */
/*
 * What every C test program of tests/c shares: a CHECK that reports and
 * counts instead of aborting (so one run lists every failure), and a small
 * fixed-seed generator.  Each program is one translation unit, so the
 * static state below exists once per program.
 */
#ifndef LRQ_TEST_CHECK_H
#define LRQ_TEST_CHECK_H

#include <stdint.h>
#include <stdio.h>

static int failures = 0;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                \
            failures++;                                                    \
        }                                                                  \
    } while (0)

/* xorshift64*: reproducible on every libc, unlike rand(). */
static uint64_t rng_state = UINT64_C(0x9E3779B97F4A7C15);

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(0x2545F4914F6CDD1D);
}

/* main's result: 1 after any failed CHECK, else 0, saying which on the
 * way (`context` names the kernels' path the checks ran on). */
static inline int checks_result(const char *program, const char *context)
{
    if (failures != 0) {
        fprintf(stderr, "%s: %d check(s) failed (%s)\n", program, failures, context);
        return 1;
    }
    printf("%s: all checks passed (%s)\n", program, context);
    return 0;
}

#endif /* LRQ_TEST_CHECK_H */
