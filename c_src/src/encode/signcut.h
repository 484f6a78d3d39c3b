/* SPDX-License-Identifier: MIT */
/*
 * The signcut encoder's state, shared by the greedy (signcut.c), its
 * thread policy (signcut_threads.c) and its writer (signcut_write.c).
 */
#ifndef LRQ_ENCODE_SIGNCUT_H
#define LRQ_ENCODE_SIGNCUT_H

#include <stddef.h>
#include <stdint.h>

#include "common/dispatch.h"
#include "common/internal.h"
#include "common/threads.h"
#include "lrq.h"

#define BLOCK LRQ_SC_BLOCK
/* Below this many element operations (values read from the remainder) a
 * task runs on the calling thread: a hand-off costs ~1.5 us, as much as an
 * image update over 32 flipped rows of 2048 gains from a second thread. */
#define PARALLEL_MIN 65536
/* A tracked squared norm within this factor of the target triggers an exact
 * measurement; the tracked value is accurate to far better than this. */
#define PEEK_MARGIN 1e-4
/* On a machine whose other cores are busy a worker can lose its CPU in the
 * middle of a part, and the caller then waits for a time slice; or it
 * shares the caller's core and runs little but slows the caller down.
 * After a wait longer than WAIT_LIMIT_NS the encoder runs the next
 * SOLO_AFTER_WAIT jobs alone (a short break: one preemption says little),
 * and when workers ran under a quarter of the parts of the last
 * REVIEW_JOBS jobs, the next SOLO_AFTER_REVIEW; the team's workers sleep
 * meanwhile.  Who runs a part never changes a result, so this is free to
 * adapt. */
#define WAIT_LIMIT_NS 100000
#define SOLO_AFTER_WAIT 256
#define SOLO_AFTER_REVIEW 2048
#define REVIEW_JOBS 256

/* xoshiro256** seeded through SplitMix64 (Blackman & Vigna): fixed,
 * portable and defined here, so the random starts are the same everywhere.
 * lrq.reference.signcut has a Python twin of this generator.  Shared by the
 * matrix and the tensor encoders (signcut.c, tensor.c). */
static inline uint64_t lrq_sc_splitmix64(uint64_t *const x)
{
    uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static inline uint64_t lrq_sc_rotl(const uint64_t x, const int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t lrq_sc_xoshiro_next(uint64_t s[4])
{
    const uint64_t result = lrq_sc_rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = lrq_sc_rotl(s[3], 45);
    return result;
}

/* Writes v's binary32 bits to out[0..4), little-endian (a section "c"
 * weight, spec §10.2 and §10.5). */
static inline void lrq_sc_put_f32le(uint8_t *const out, const float v)
{
    uint32_t u;
    __builtin_memcpy(&u, &v, sizeof u);
    out[0] = (uint8_t)u;
    out[1] = (uint8_t)(u >> 8);
    out[2] = (uint8_t)(u >> 16);
    out[3] = (uint8_t)(u >> 24);
}

typedef enum { T_UPDATE_HT, T_UPDATE_HS, T_BLOCK_R, T_BLOCK_RT, T_PEEK, T_START } task_kind;

struct lrq_signcut_encoder {
    uint64_t m, n;
    size_t mw, nw;      /* 64-bit words of an s (m bits) and a t (n bits) */
    float *r;           /* remainder at the last block update, m x n */
    float *rt;          /* its transpose, n x m */
    int16_t *rb, *rtb;  /* both in int16 fixed point, what image updates read */
    float *rb_scale;    /* m: 2^-shift of each row of rb */
    float *rtb_scale;   /* n: the same for rtb */
    float *fscale;      /* per flip: its row's scale, signed by the new sign */
    float *ht;          /* R_cur t_cur / 2, m values */
    float *hs;          /* R_cur^T s_cur / 2, n values */
    uint64_t *t_cur, *t_new, *s_cur, *s_new;
    uint32_t *idx;
    uint64_t *flipmask; /* old ^ new of the current flip */
    double *row_sq;     /* per-row squared norms, summed in row order */
    float d[BLOCK];       /* correction weights of the current flip */
    lrq_sc_table tab_d[BLOCK / 4], tab_c[BLOCK / 4];
    unsigned groups_d, groups_c;
    uint64_t *tstart;     /* BLOCK x nw: the random starts of the open block */
    float *g;             /* m x BLOCK: R t / 2 for each start, R as at the block update */
    uint32_t *spat;       /* m: bit k = s_k[i] for the cuts of the open block */
    uint32_t *tpat;       /* n: bit k = t_k[j] */
    uint64_t width, cap, open;
    uint64_t *out_s;    /* cap x mw: the s of every cut */
    uint64_t *out_t;    /* cap x nw */
    float *out_c;
    double norm2_a, norm2;
    int exact, done;
    int c16;         /* weights stored as binary16 times c_scale */
    float c_scale;   /* fixed by the first cut (c16 only) */
    uint64_t rng[4];
    const lrq_sc_kernels *k;

    /* Threads: the library's team (threads.c).  `threads` is what create()
     * was given (0: lrq_threads_get() at each run()), `nthreads` the count
     * of the run() in progress.  A job is one or two tasks (phases), each
     * cut into parts at multiples of 64 elements that depend only on the
     * task and its length, never on the thread count. */
    unsigned threads;
    int nthreads;
    task_kind task[2];
    size_t task_len[2], task_count, chunk[2];
    unsigned solo;       /* jobs left to run alone */
    int held;            /* holds the team's workers spinning (threads.h) */
    unsigned shared;     /* jobs given to the team since the last review */
    size_t parts_all, parts_helped;
};

typedef struct lrq_signcut_encoder enc_t;

static inline const uint64_t *block_s(const enc_t *e)
{
    return e->out_s + (e->width - e->open) * e->mw;
}

static inline const uint64_t *block_t(const enc_t *e)
{
    return e->out_t + (e->width - e->open) * e->nw;
}

/* The thread policy (signcut_threads.c): a job of one task, or of two
 * phases, run on the team or alone; the int16 copy of one row. */
void lrq_sc_parallel2(enc_t *const e, const int nphases, const task_kind a, const size_t len_a,
                      const task_kind b, const size_t len_b, const size_t work);
void lrq_sc_parallel(enc_t *const e, const task_kind task, const size_t len, const size_t work);
void lrq_sc_pick_threads(enc_t *const e);
void lrq_sc_team_release(enc_t *const e);
uint16_t lrq_sc_c16_round(const double v);

#endif /* LRQ_ENCODE_SIGNCUT_H */
