/* SPDX-License-Identifier: MIT */
/*
 * lrq.h -- the public C interface of lrq, a compression library that stores
 * real-valued matrices as low-rank / 1-bit factorizations in the versioned
 * `.lrq` file format and computes with them without decompressing.
 *
 * This is the only public header.  Everything it declares is stable within a
 * major library version; everything not declared here is private.
 *
 * Conventions used by every function below:
 *
 *   - Names are lrq_<object>_<verb>; macros start with LRQ_.
 *   - A fallible function returns an int: LRQ_OK (0) on success or one of the
 *     negative LRQ_ERR_* codes listed below.  Results come back through
 *     out-parameters, which are written only on success unless a function
 *     says otherwise.
 *   - Output buffers belong to the caller: lrq never keeps a pointer to an
 *     argument after it returns and never frees memory it did not allocate.
 *   - Every size is computed in 64-bit unsigned arithmetic with overflow
 *     checks before any memory is touched; a size that does not fit is an
 *     LRQ_ERR_ARGUMENT, never a wrap-around.
 *   - A pointer argument may be NULL only where its buffer is empty
 *     (length 0).
 *   - The functions in this header keep no mutable state other than the
 *     one-time CPU probe described at lrq_isa_name(); all of them may be
 *     called from any number of threads at once.
 */
#ifndef LRQ_H
#define LRQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Versions                                                                 */
/* ------------------------------------------------------------------------ */

/*
 * The library version (semantic versioning) of the code in this header.
 * LRQ_VERSION_NUMBER packs it as major*10000 + minor*100 + patch, so it can
 * be compared with < and > in the preprocessor.
 */
#define LRQ_VERSION_MAJOR 0
#define LRQ_VERSION_MINOR 1
#define LRQ_VERSION_PATCH 0
#define LRQ_VERSION_NUMBER \
    (LRQ_VERSION_MAJOR * 10000 + LRQ_VERSION_MINOR * 100 + LRQ_VERSION_PATCH)

/*
 * The `.lrq` file format version this library writes.  It is independent of
 * the library version: it changes only when the format specification
 * (spec/lrq-format.md) changes.  A reader refuses a file whose major it does
 * not know and accepts any minor of a major it knows.
 */
#define LRQ_FORMAT_MAJOR 1
#define LRQ_FORMAT_MINOR 0

/*
 * lrq_version_number -- the library version of the code actually linked.
 *
 * Returns LRQ_VERSION_NUMBER as it was when the library was compiled.
 * Compare it with the LRQ_VERSION_NUMBER macro seen by the caller's compiler
 * to detect a program built against one header but running another library.
 *
 * Errors: none.  Thread safety: safe.
 */
unsigned lrq_version_number(void);

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * The one list of return codes.  Values are pinned: a code, once released,
 * never changes its number or its meaning, and a removed code is never
 * reused.  New codes are added inside their group's range:
 *
 *   -1 .. -19   invalid input: the bytes given to lrq are not valid
 *   -20 .. -39  caller misuse: the arguments themselves are wrong
 *   -40 .. -59  resources: the system could not provide what was needed
 *   -60 .. -79  internal: a bug in lrq; please report it
 */
#define LRQ_OK 0

/* The input is not a valid encoding: bad magic, broken structure, a value
 * out of its allowed range, or a buffer cut short. */
#define LRQ_ERR_FORMAT (-1)
/* A stored CRC-32C does not match the bytes it covers. */
#define LRQ_ERR_CHECKSUM (-2)
/* The input is well formed but needs a format version or a required feature
 * this library does not implement. */
#define LRQ_ERR_UNSUPPORTED (-3)
/* A padding bit or padding byte that the format requires to be zero is not
 * zero.  This is a kind of invalid input; it has its own code because it is
 * the usual sign of a writer bug rather than of damage. */
#define LRQ_ERR_PADDING (-4)

/* An argument is out of its documented range, a size computation overflows,
 * or a required pointer is NULL. */
#define LRQ_ERR_ARGUMENT (-20)
/* A caller-provided buffer has the wrong length for the operation. */
#define LRQ_ERR_BUFFER_SIZE (-21)

/* Memory could not be allocated. */
#define LRQ_ERR_MEMORY (-40)

/* An internal invariant failed. */
#define LRQ_ERR_INTERNAL (-60)

/*
 * lrq_error_name -- the name of a return code, for messages and logs.
 *
 * code: any int.
 *
 * Returns the macro name as a string ("LRQ_OK", "LRQ_ERR_FORMAT", ...) for
 * the codes above and "unknown error" for any other value.  The string is a
 * static constant: never free or modify it.
 *
 * Errors: none.  Thread safety: safe.
 */
const char *lrq_error_name(int code);

/* ------------------------------------------------------------------------ */
/* CRC-32C                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * lrq_crc32c -- CRC-32C (Castagnoli; reflected polynomial 0x82F63B78,
 * initial value and final XOR 0xFFFFFFFF), the checksum of every `.lrq`
 * header and section.
 *
 * crc:  0 to start a new checksum, or the value a previous call returned to
 *       continue it; the same convention as zlib's crc32().  So
 *       lrq_crc32c(lrq_crc32c(0, a, na), b, nb) equals the CRC of a
 *       followed by b.
 * data: the bytes to add; may be NULL when len is 0.
 * len:  the number of bytes at data.
 *
 * Returns the updated CRC.  The CRC of "123456789" started from 0 is
 * 0xE3069283; the CRC of no bytes is crc unchanged.
 *
 * The result does not depend on the CPU: the table-driven code and the
 * SSE4.2 crc32 instruction (chosen at run time, see lrq_isa_name()) give
 * identical values.
 *
 * Errors: none (a NULL data with len > 0 is undefined behaviour).
 * Thread safety: safe.
 */
uint32_t lrq_crc32c(uint32_t crc, const void *data, size_t len);

/* ------------------------------------------------------------------------ */
/* Interleaved ("kernel-native") matrix layout                              */
/* ------------------------------------------------------------------------ */

/*
 * A matrix of `rows` output rows and `k` reduction elements is stored in the
 * order the matrix-vector kernels read it, so products run straight from a
 * memory-mapped file (format notes §3; the format specification is
 * normative):
 *
 *   - k is padded with zero elements up to a multiple of 16;
 *   - the padded reduction is cut into chunks (16 elements for 1-bit
 *     matrices, 4 for 8-bit ones), each stored as one little-endian word
 *     (u16 with element 16c+b in bit b; or 4 bytes with element 4c+b in
 *     byte b);
 *   - rows form tiles of 16 (the last may be short) and chunks form panels
 *     of `panel` elements (the last may be short);
 *   - words are stored panel by panel, then row tile by row tile, then chunk
 *     by chunk, then row by row within the tile.
 *
 * For 1-bit ("sign") matrices an element value of 1 means -1 and 0 means +1,
 * the IEEE sign-bit convention.  Padding bits and bytes are zero.
 *
 * The size is 2*rows*ceil(k/16) bytes for 1-bit matrices and
 * 16*rows*ceil(k/16) bytes for 8-bit ones; it does not depend on panel.
 *
 * Common parameters of the functions below:
 *   rows:      number of rows, >= 0.
 *   k:         number of reduction elements per row, >= 0.  A matrix with
 *              rows == 0 or k == 0 has size 0.
 *   elem_bits: 1 (sign bits) or 8 (byte codes).
 *   panel:     the reduction panel length in elements: a multiple of 64 in
 *              [64, 1048576] (the tensor's "panel" field in the header).
 *   elements:  the matrix in plain form: rows*k bytes, row-major, one byte
 *              per element.  For elem_bits == 1 each byte is the bit value,
 *              0 or 1; for elem_bits == 8 it is the code itself.
 */

/*
 * lrq_layout_size -- bytes taken by a matrix in the interleaved layout.
 *
 * nbytes: receives the size on success; not written on failure.
 *
 * Returns LRQ_OK, or LRQ_ERR_ARGUMENT if elem_bits or panel is out of range,
 * nbytes is NULL, or the size does not fit in 64 bits.
 *
 * Thread safety: safe.
 */
int lrq_layout_size(uint64_t rows, uint64_t k, int elem_bits, uint64_t panel,
                    uint64_t *nbytes);

/*
 * lrq_layout_pack -- write a plain matrix in the interleaved layout.
 *
 * elements: rows*k bytes, read only (see the common parameters above).
 * out:      the destination, at least lrq_layout_size() bytes; exactly that
 *           many bytes are written, padding included.  Bytes of out beyond
 *           the layout size are left untouched, so a caller may pack straight
 *           into a larger file buffer.  out must not overlap elements.
 * out_len:  the capacity of out in bytes.
 *
 * Returns LRQ_OK, or
 *   LRQ_ERR_ARGUMENT    a parameter is out of range, rows*k does not fit in
 *                       size_t, a needed pointer is NULL, or (elem_bits == 1)
 *                       an element is neither 0 nor 1;
 *   LRQ_ERR_BUFFER_SIZE out_len is smaller than the layout size.
 * On LRQ_ERR_ARGUMENT for an element value, out holds partial output.
 *
 * Thread safety: safe; concurrent calls must not share out.
 */
int lrq_layout_pack(const uint8_t *elements, uint64_t rows, uint64_t k,
                    int elem_bits, uint64_t panel, uint8_t *out,
                    size_t out_len);

/*
 * lrq_layout_unpack -- read an interleaved matrix back to plain form,
 * checking that every padding bit or byte is zero.
 *
 * packed:     the interleaved bytes, read only.
 * packed_len: must equal lrq_layout_size() exactly.
 * elements:   the destination, rows*k bytes (see the common parameters);
 *             must not overlap packed.  On failure its contents are
 *             unspecified.
 *
 * Returns LRQ_OK, or
 *   LRQ_ERR_ARGUMENT    a parameter is out of range, rows*k does not fit in
 *                       size_t, or a needed pointer is NULL;
 *   LRQ_ERR_BUFFER_SIZE packed_len differs from the layout size;
 *   LRQ_ERR_PADDING     a padding bit (elem_bits == 1) or padding byte
 *                       (elem_bits == 8) is not zero.
 * Arguments are checked in that order, so LRQ_ERR_PADDING means the
 * arguments were fine and the data is not.
 *
 * Thread safety: safe; concurrent calls must not share elements.
 */
int lrq_layout_unpack(const uint8_t *packed, size_t packed_len, uint64_t rows,
                      uint64_t k, int elem_bits, uint64_t panel,
                      uint8_t *elements);

/*
 * lrq_layout_unpack_signs_f32 -- read an interleaved 1-bit matrix straight
 * to its values: +1.0f for bit 0 and -1.0f for bit 1.
 *
 * The same as lrq_layout_unpack() with elem_bits == 1 followed by
 * out[i] = 1 - 2*elements[i], in one pass and without the byte array.  It is
 * a stop-gap accelerator for the Python reference matvec until the SIMD
 * kernels read the layout directly.
 *
 * packed, packed_len, rows, k, panel: as for lrq_layout_unpack().
 * out: the destination, rows*k floats, row-major; must not overlap packed.
 *      On failure its contents are unspecified.
 *
 * Returns LRQ_OK, or LRQ_ERR_ARGUMENT (including rows*k*sizeof(float) not
 * fitting in size_t), LRQ_ERR_BUFFER_SIZE or LRQ_ERR_PADDING as for
 * lrq_layout_unpack().
 *
 * Thread safety: safe; concurrent calls must not share out.
 */
int lrq_layout_unpack_signs_f32(const uint8_t *packed, size_t packed_len,
                                uint64_t rows, uint64_t k, uint64_t panel,
                                float *out);

/* ------------------------------------------------------------------------ */
/* Instruction-set dispatch                                                 */
/* ------------------------------------------------------------------------ */

/*
 * lrq_isa_name -- the instruction-set path lrq uses on this machine.
 *
 * Returns one of "scalar", "sse4.2", "avx2", "avx512": the best path this
 * CPU (and operating system) supports, unless the environment variable
 * LRQ_FORCE_ISA names one of these paths, in which case that path is used
 * if the CPU supports it and otherwise the best supported path below it.
 * An LRQ_FORCE_ISA value that names no path is ignored.  The string is a
 * static constant: never free or modify it.
 *
 * The CPU is probed and LRQ_FORCE_ISA read once per process, on the first
 * call into lrq that needs them; changing the variable afterwards has no
 * effect.  The path never changes any result: every path produces the same
 * bytes and values as "scalar", which is always built.
 *
 * "avx2" requires AVX2 and FMA; "avx512" requires AVX-512 F, BW, DQ and VL.
 * On a CPU that is not x86 the path is always "scalar".
 *
 * Errors: none.  Thread safety: safe (the probe runs exactly once).
 */
const char *lrq_isa_name(void);

/* ------------------------------------------------------------------------ */
/* Encoders: signed cuts                                                    */
/* ------------------------------------------------------------------------ */

/*
 * The signcut encoder finds A ~ S diag(c) T^T greedily, one cut at a time
 * (format spec section 10.2; the algorithm is the signed cut decomposition of
 * Riasanovsky & El Kazdadi 2024): each cut starts from a uniformly random
 * t in {-1,+1}^n, alternates s = sign(R t) and t = sign(R^T s) while the
 * cut s^T R t strictly increases, takes the least-squares weight
 * c = s^T R t / (m n) (stored as float32), and subtracts c s t^T from the
 * remainder R (initially A).  The squared Frobenius norm of the remainder
 * falls by exactly 2 c s^T R t - c^2 m n per cut, so an error target is met
 * at the smallest width that meets it.
 *
 * Defined behaviour (part of what "the same bytes" means):
 *   - sign(x) is the IEEE sign bit of x as computed: +0 gives +1 and -0
 *     gives -1, and bit 1 means -1 as in the file format.
 *   - Random starts: at each block update (at creation, after every 32nd
 *     cut, and at a restart) 32 vectors t are drawn, each n bits taken
 *     least-significant first from ceil(n/64) successive outputs of
 *     xoshiro256** seeded by four SplitMix64 outputs of `seed` (unused bits
 *     of the last word are dropped: padding bits are always zero); cut k of
 *     the block starts from the k-th.  Starts a block does not use are
 *     discarded.  Only t is random.
 *   - If a cut finds s^T R t = 0 although R may be non-zero, the cut
 *     restarts from t = sign(row of R holding its largest |entry|, first in
 *     row-major order); if R is exactly zero the encoder finishes.
 *   - The remainder is float32 and updated every 32 cuts (a block).  The
 *     images R t and R^T s are float32, recomputed from it at each block
 *     update and updated in between over the flipped coordinates only, by
 *     rows of the remainder rounded to 16-bit fixed point (a power-of-two
 *     scale per row; the images stay within ~1e-4 of exact).  The images
 *     steer the sign decisions and give s^T R t, hence c; the remainder
 *     and its norm are then updated with exactly the c that is stored.  The
 *     norms are float64, exact (for the stored float32 remainder) at each
 *     block update and whenever a stopping test needs it.  Every sum that
 *     feeds a decision has one evaluation order, the same on every CPU.
 *
 * Determinism: the same matrix, seed and sequence of lrq_signcut_encoder_run
 * calls give the same cuts on every CPU, instruction-set path
 * (LRQ_FORCE_ISA) and thread count; how a caller splits its cuts between
 * run() calls does not matter either.
 *
 * Thread safety: one encoder must not be used by two threads at once;
 * different encoders are independent.  run() uses up to `threads` threads
 * of its own and returns with all of them finished.
 */
typedef struct lrq_signcut_encoder lrq_signcut_encoder;

/*
 * lrq_signcut_encoder_create -- start encoding a float32 matrix.
 *
 * a:       rows x cols float32 values, row r at a + r*ld; copied, so the
 *          caller may free or change it as soon as this returns.  Every value
 *          must be finite.
 * rows, cols: in [1, 2^31 - 1].
 * ld:      the distance between rows of a, in floats, >= cols (lets a tile
 *          of a larger matrix be passed without a copy).
 * seed:    any value; see the random starts above.
 * threads: threads run() may use, 1..8 (0 means 1).  Never changes results.
 * out:     receives the new encoder; free it with lrq_signcut_encoder_free.
 *
 * Memory: about 12*rows*cols bytes (the float32 remainder row- and
 * column-major, and both again in 16-bit fixed point for the image updates)
 * plus the
 * cuts, (rows + cols)/8 + 4 bytes each.
 *
 * Returns LRQ_OK, or LRQ_ERR_ARGUMENT (a bad size, a NULL pointer, a value
 * that is not finite) or LRQ_ERR_MEMORY.  *out is written only on success.
 */
int lrq_signcut_encoder_create(const float *a, uint64_t rows, uint64_t cols,
                               uint64_t ld, uint64_t seed, unsigned threads,
                               lrq_signcut_encoder **out);

/*
 * lrq_signcut_encoder_run -- make up to max_cuts more cuts.
 *
 * rel_error: 0 for no target, or a relative error in (0, 1]: the encoder
 *            finishes as soon as ||R||_F <= rel_error * ||A||_F (exactly, for
 *            the stored float32 remainder), so the width is the smallest
 *            that reaches the target.
 *
 * Stops early, and reports lrq_signcut_encoder_finished() != 0, when the
 * target is met or the remainder is exactly zero.  Long encodes call this
 * repeatedly with a small max_cuts to report progress and to let the caller
 * stop between calls; results do not depend on how cuts are split between
 * calls.  The call runs without Python's GIL when made through cffi.
 *
 * Returns LRQ_OK; LRQ_ERR_ARGUMENT for a NULL encoder or a rel_error
 * outside [0, 1], or when a cut's weight does not fit float32 (values near
 * the float32 limit); LRQ_ERR_MEMORY.  After an error the cuts made so far
 * remain valid.
 */
int lrq_signcut_encoder_run(lrq_signcut_encoder *enc, uint64_t max_cuts,
                            double rel_error);

/* lrq_signcut_encoder_width -- the number of cuts made so far (0 for NULL). */
uint64_t lrq_signcut_encoder_width(const lrq_signcut_encoder *enc);

/* lrq_signcut_encoder_finished -- non-zero once run() will make no more
 * cuts: the target was met or the remainder is exactly zero (1 for NULL). */
int lrq_signcut_encoder_finished(const lrq_signcut_encoder *enc);

/* lrq_signcut_encoder_input_norm -- ||A||_F of the float32 input, computed
 * in float64 (0 for NULL). */
double lrq_signcut_encoder_input_norm(const lrq_signcut_encoder *enc);

/*
 * lrq_signcut_encoder_remainder_norm -- ||A - S diag(c) T^T||_F so far.
 *
 * exact: 0 for the tracked value (free; exact after every 32nd cut and
 *        within about 1e-6 relative otherwise), non-zero for the exact norm
 *        of the stored remainder (one pass over it when not already exact).
 *        Measuring never changes later cuts.
 * norm:  receives the value.
 *
 * Returns LRQ_OK or LRQ_ERR_ARGUMENT (NULL pointer).
 */
int lrq_signcut_encoder_remainder_norm(lrq_signcut_encoder *enc, int exact,
                                       double *norm);

/*
 * lrq_signcut_encoder_write -- the three sections of a signcut tile.
 *
 * With w = lrq_signcut_encoder_width(enc):
 *   c:  exactly 4*w bytes: the weights as little-endian float32;
 *   tt: exactly lrq_layout_size(w, cols, 1, panel) bytes: T^T as a sign
 *       matrix in the interleaved layout;
 *   s:  exactly lrq_layout_size(rows, w, 1, panel) bytes: S likewise.
 * Padding bits are zero.  The encoder is not changed; encoding may go on
 * after writing.  Buffers may be NULL when w == 0.
 *
 * Returns LRQ_OK, LRQ_ERR_ARGUMENT (bad panel, NULL pointer),
 * LRQ_ERR_BUFFER_SIZE (a length differs) or LRQ_ERR_MEMORY (a temporary of
 * rows*w/8 bytes for transposing S).
 */
int lrq_signcut_encoder_write(const lrq_signcut_encoder *enc, uint64_t panel,
                              uint8_t *c, size_t c_len, uint8_t *tt,
                              size_t tt_len, uint8_t *s, size_t s_len);

/* lrq_signcut_encoder_free -- release an encoder; NULL is accepted. */
void lrq_signcut_encoder_free(lrq_signcut_encoder *enc);

/* ------------------------------------------------------------------------ */
/* Encoders: quantization of lplr factors                                   */
/* ------------------------------------------------------------------------ */

/*
 * lrq_quant_fit -- quantize a factor of an lplr tile (format spec 10.3).
 *
 * The factor F (rows x k, float64, row r at x + r*ld) becomes codes q in
 * [0, 2^bits) and one float16 scale per (row, group of `group` elements
 * along k), times one float32 super-scale sigma, so that
 *     F[r, j] ~ sigma * scale[r][j / group] * (q[r, j] - (2^bits - 1) / 2).
 * Each (row, group) scale is the clipping ratio (13 candidates from 0.1 to
 * 1.0 of the group's largest magnitude, mapped to the top level) with the
 * least squared error; sigma is the largest scale rounded to float32 (1.0 if
 * all are zero); the codes are then chosen against the float16-rounded
 * scale a decoder will use.  The same rule as lrq.reference.quant.quantize.
 *
 * x:      rows x k finite values (NULL allowed when rows*k == 0).
 * rows, k: in [0, 2^31 - 1]; ld >= k.
 * bits:   1..8.  group: >= 1 (the format requires a power of two >= 16).
 * codes:  rows*k bytes, row-major.
 * scales: rows*ceil(k/group) binary16 bit patterns, row-major (not yet in
 *         the file's row-tile order; the caller packs them).
 * sigma:  receives the super-scale.
 *
 * Returns LRQ_OK, LRQ_ERR_ARGUMENT (a parameter out of range, a NULL
 * pointer, a value that is not finite) or LRQ_ERR_MEMORY.
 * Thread safety: safe; concurrent calls must not share outputs.
 */
int lrq_quant_fit(const double *x, uint64_t rows, uint64_t k, uint64_t ld,
                  int bits, uint64_t group, uint8_t *codes, uint16_t *scales,
                  float *sigma);

#ifdef __cplusplus
}
#endif

#endif /* LRQ_H */
