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
#define LRQ_VERSION_MINOR 2
#define LRQ_VERSION_PATCH 0
#define LRQ_VERSION_NUMBER \
    (LRQ_VERSION_MAJOR * 10000 + LRQ_VERSION_MINOR * 100 + LRQ_VERSION_PATCH)

/*
 * The newest `.lrq` file format version this library implements.  It is
 * independent of the library version: it changes only when the format
 * specification (spec/lrq-format.md) changes.  Writers emit the lowest
 * version that holds their content (1.0 unless a 1.1 or 1.2 feature is used).  A
 * reader refuses a file whose major it does not know and accepts any minor
 * of a major it knows.
 */
#define LRQ_FORMAT_MAJOR 1
#define LRQ_FORMAT_MINOR 2

/*
 * Feature flags of the preamble's required_features (format spec §4).  A
 * reader refuses a file with a required bit it does not know ([PRE-4]);
 * LRQ_REQUIRED_KNOWN lists the bits this library implements.
 *
 * LRQ_REQUIRED_SIGNCUT_C16 (bit 0, since format 1.1): some signcut tile
 *     stores its weights c as binary16 times a power-of-two "c_scale"
 *     (spec §10.2).  A writer sets it, with minor 1, exactly when a tile
 *     does; files without such tiles stay 1.0 with no flags.
 * LRQ_REQUIRED_SHARED_FACTOR (bit 1, since format 1.2): the file has groups
 *     of tensors that share one right factor, stored once (spec §10.4; see
 *     lrq_file_group()).  A writer sets it, with minor 2, exactly when the
 *     file has a group.
 * LRQ_REQUIRED_QUANT (bit 3, since format 1.5): some tile has the scheme
 *     "quant", a b-bit quantized matrix with scale codes under per-row
 *     exponents (spec §10.7).  A writer sets it, with minor 5, exactly when
 *     a tile does.  (Bit 2, format 1.3's signcut tensors of order 3 to 8, is
 *     read by the Python package, not by this reader.)
 */
#define LRQ_REQUIRED_SIGNCUT_C16 (UINT64_C(1) << 0)
#define LRQ_REQUIRED_SHARED_FACTOR (UINT64_C(1) << 1)
#define LRQ_REQUIRED_QUANT (UINT64_C(1) << 3)
#define LRQ_REQUIRED_KNOWN (LRQ_REQUIRED_SIGNCUT_C16 | LRQ_REQUIRED_SHARED_FACTOR | LRQ_REQUIRED_QUANT)

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
 * memory-mapped file (spec §9 is normative; §16.3 gives the reasons):
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
 * Returns one of "scalar", "sse4.2", "avx2", "avx512", "neon": the best path
 * this CPU (and operating system) supports, unless the environment variable
 * LRQ_FORCE_ISA names one of these paths, in which case that path is used
 * if the CPU supports it and otherwise the best supported path (a path of
 * another architecture counts as unsupported; "scalar" runs everywhere).
 * An LRQ_FORCE_ISA value that names no path is ignored.  The string is a
 * static constant: never free or modify it.
 *
 * The CPU is probed and LRQ_FORCE_ISA read once per process, on the first
 * call into lrq that needs them; changing the variable afterwards has no
 * effect.  The path never changes any result: every path produces the same
 * bytes and values as "scalar", which is always built.
 *
 * "avx2" requires AVX2, FMA and F16C; "avx512" requires AVX-512 F, BW, DQ,
 * VL, VBMI and VNNI, and GFNI (Ice Lake, Zen 4 and later: the kernels use
 * byte permutes and GF(2) affine bit transposes).  "neon" is the path of
 * 64-bit ARM (AArch64, whose Advanced SIMD every core has: Apple silicon,
 * Graviton, Ampere, Cortex-A); on any other CPU the path is always
 * "scalar".
 *
 * Errors: none.  Thread safety: safe (the probe runs exactly once).
 */
const char *lrq_isa_name(void);


/* ------------------------------------------------------------------------ */
/* Reading `.lrq` files: container parsing and validation                   */
/* ------------------------------------------------------------------------ */

/*
 * An lrq_file is a parsed, validated view of a whole `.lrq` file that the
 * caller holds in memory -- typically a read-only mmap of the file, or a
 * byte buffer.  lrq never copies the file: names, metadata strings and
 * section pointers handed out below point into the caller's buffer.
 *
 * What is checked when.  The format specification (spec/lrq-format.md) is
 * normative; every message lrq writes names the rule it reports, e.g.
 * "[SEC-3] tensor 'W' tile #0: section 'tt' is at offset 4160; the canonical
 * offset is 4096".
 *
 *   At open (always): the preamble ([PRE-*]), the header checksum
 *   ([PRE-9]), the msgpack profile and its limits ([HDR-1..4], [LIM-*]),
 *   every header value ([HDR-5..8], [TEN-*], [TIL-*], [DN-1], [DN-2],
 *   [SC-1], [LP-1], [LP-2], [SEC-1], [SEC-2], and in format 1.2 the groups,
 *   [GRP-1..8]), and the placement of every
 *   section: canonical offsets, zero padding between sections, no trailing
 *   bytes ([SEC-3], [SEC-4], [SEC-5]).  This reads the preamble, the header
 *   and at most 4095 padding bytes per section -- never the sections.
 *
 *   Per section, before first use: its CRC-32C ([SEC-6]), then the content
 *   rules that need its bytes ([SC-2] finite c, [DN-3] finite dense floats,
 *   [DN-4] bool bytes, [LP-3] scales, [LP-4] codes, [LAY-1]/[LAY-2] padding
 *   bits and bytes).  lrq_file_section() runs both the first time a section
 *   is asked for, so a caller that reaches section bytes only through it
 *   never computes on unchecked bytes ([SEC-7]).  The open flags below run
 *   them for every section up front instead.
 *
 * Every size and offset is computed in overflow-checked 64-bit arithmetic,
 * and memory is allocated only in proportion to the header (at most
 * 16 MiB), never to a count or size the file merely claims: a tiny file
 * that declares a 2^31 x 2^31 matrix of 1 x 1 tiles is refused without
 * allocating anything for it.
 *
 * Errors of the file (the classes of the specification, §1.6):
 *   LRQ_ERR_FORMAT       the bytes are not a conforming file;
 *   LRQ_ERR_PADDING      a padding byte or bit is not zero ([SEC-5],
 *                        [LAY-1], [LAY-2]); a kind of format error;
 *   LRQ_ERR_CHECKSUM     the header or a section fails its CRC-32C;
 *   LRQ_ERR_UNSUPPORTED  another format major version, or a required
 *                        feature flag this library does not implement.
 * Errors of the call: LRQ_ERR_ARGUMENT (a NULL pointer, an index out of
 * range, an unknown flag) and LRQ_ERR_MEMORY.
 *
 * Detail messages.  Every function below that can fail because of the file
 * takes `char *detail, size_t detail_size`: a caller-owned buffer that
 * receives a NUL-terminated, human-readable message on failure (cut to fit;
 * LRQ_DETAIL_SIZE bytes is always enough to keep the rule ID and the gist)
 * and an empty string on success.  detail may be NULL (or detail_size 0) to
 * get no message.  lrq keeps no message in the handle or anywhere else, so
 * concurrent calls never see each other's messages.
 */
#define LRQ_DETAIL_SIZE 256

/* The most dimensions a tensor may have ([TEN-3]) and the most sections a
 * tile may have (scheme lplr has four). */
#define LRQ_MAX_NDIM 8
#define LRQ_MAX_SECTIONS 4

/* Element types (spec §6.5): the "dtype" of a tensor and the "storage" of a
 * dense tile.  Values are pinned like the error codes; 0 is never a type. */
#define LRQ_DTYPE_FLOAT64 1
#define LRQ_DTYPE_FLOAT32 2
#define LRQ_DTYPE_FLOAT16 3
#define LRQ_DTYPE_BFLOAT16 4
#define LRQ_DTYPE_INT64 5
#define LRQ_DTYPE_INT32 6
#define LRQ_DTYPE_INT16 7
#define LRQ_DTYPE_INT8 8
#define LRQ_DTYPE_UINT64 9
#define LRQ_DTYPE_UINT32 10
#define LRQ_DTYPE_UINT16 11
#define LRQ_DTYPE_UINT8 12
#define LRQ_DTYPE_BOOL 13

/* Tile schemes (spec §10); pinned. */
#define LRQ_SCHEME_SIGNCUT 1
#define LRQ_SCHEME_LPLR 2
#define LRQ_SCHEME_DENSE 3
#define LRQ_SCHEME_QUANT 4

/* Section kinds (spec §10), in the order a tile of each scheme lists them:
 * dense: VALUES; signcut: C, TT, S; lplr: R_CODES, R_SCALES, L_CODES,
 * L_SCALES; quant: CODES, SCALE_CODES, ROW_EXPONENTS.  Pinned. */
#define LRQ_SECTION_VALUES 1
#define LRQ_SECTION_C 2
#define LRQ_SECTION_TT 3
#define LRQ_SECTION_S 4
#define LRQ_SECTION_R_CODES 5
#define LRQ_SECTION_R_SCALES 6
#define LRQ_SECTION_L_CODES 7
#define LRQ_SECTION_L_SCALES 8
#define LRQ_SECTION_CODES 9
#define LRQ_SECTION_SCALE_CODES 10
#define LRQ_SECTION_ROW_EXPONENTS 11

/*
 * lrq_dtype_name, lrq_scheme_name, lrq_section_kind_name -- the names the
 * file itself uses for a code above ("bfloat16", "signcut", "r_scales"),
 * or NULL for a value that is not a code.  Static strings: never free them.
 *
 * lrq_dtype_size -- the item size in bytes of a dtype code (8 for
 * LRQ_DTYPE_FLOAT64, 1 for LRQ_DTYPE_BOOL, ...), or 0 for a non-code.
 *
 * Errors: none.  Thread safety: safe.
 */
const char *lrq_dtype_name(int dtype);
unsigned lrq_dtype_size(int dtype);
const char *lrq_scheme_name(int scheme);
const char *lrq_section_kind_name(int kind);

/* The handle: opaque; create with lrq_file_open_buffer(), destroy with
 * lrq_file_free(). */
typedef struct lrq_file lrq_file;

/* Flags of lrq_file_open_buffer() and lrq_file_verify(). */

/* Verify the CRC-32C of every section now ([SEC-6]), in file order. */
#define LRQ_FILE_VERIFY_CHECKSUMS 0x1u
/* Verify the CRC-32C of every section, and then the content rules of every
 * section, now (implies LRQ_FILE_VERIFY_CHECKSUMS).  All checksums are
 * checked before any content, so a file that is both damaged and malformed
 * is reported as damaged (LRQ_ERR_CHECKSUM), as the specification's
 * decoding procedure (§15) orders it.  This is what a decoder that reads
 * a whole file at once does. */
#define LRQ_FILE_VERIFY_CONTENT 0x2u

/*
 * lrq_file_open_buffer -- parse and validate the `.lrq` file held in a
 * caller's buffer.
 *
 * data:  the whole file, read only.  It must stay valid and unchanged until
 *        lrq_file_free(): the handle keeps pointers into it and reads
 *        sections from it on first use.  May be NULL when size is 0 (which
 *        is then reported as a file too short, LRQ_ERR_FORMAT).
 * size:  the number of bytes at data; the file's length.
 * flags: 0 for lazy section checks, or LRQ_FILE_VERIFY_CHECKSUMS and/or
 *        LRQ_FILE_VERIFY_CONTENT to run them now (see above).
 * out:   receives the new handle on success, NULL on failure.
 * detail, detail_size: the message buffer (see "Detail messages" above).
 *
 * Returns LRQ_OK, or
 *   LRQ_ERR_FORMAT, LRQ_ERR_PADDING, LRQ_ERR_CHECKSUM, LRQ_ERR_UNSUPPORTED
 *                       the file breaks the rule named in detail;
 *   LRQ_ERR_ARGUMENT    out is NULL, data is NULL with size > 0, or flags
 *                       has an unknown bit;
 *   LRQ_ERR_MEMORY      the handle's tables could not be allocated (they
 *                       are proportional to the header, at most a small
 *                       multiple of its 16 MiB limit).
 * Checks run in the order of the specification's decoding procedure (§15),
 * so the first violated rule in that order is the one reported; in
 * particular an unknown major version or required feature is reported as
 * LRQ_ERR_UNSUPPORTED before the header checksum is even read.
 *
 * Ownership: the handle belongs to the caller, who frees it with
 * lrq_file_free().  Thread safety: safe; the buffer may be shared by
 * several handles.
 */
int lrq_file_open_buffer(const void *data, size_t size, unsigned flags, lrq_file **out,
                         char *detail, size_t detail_size);

/*
 * lrq_file_free -- release a handle and everything it allocated.
 *
 * file: a handle from lrq_file_open_buffer(), or NULL (then nothing
 *       happens).  The caller's buffer is not touched; it may be released
 *       afterwards.  Every pointer the accessors below hand out points into
 *       the caller's buffer or to a static string, never into the handle,
 *       so it stays valid after this call for as long as the buffer does.
 *
 * Thread safety: no other call may use the handle during or after this.
 */
void lrq_file_free(lrq_file *file);

/* What the preamble and the top of the header say. */
typedef struct lrq_file_info {
    unsigned format_major;      /* 1 */
    unsigned format_minor;      /* any minor of major 1 is accepted */
    uint64_t required_features; /* within LRQ_REQUIRED_KNOWN for every file
                                   this library accepts */
    uint64_t optional_features; /* bits this library ignores ([PRE-5]) */
    uint64_t header_length;     /* L, the msgpack header's bytes */
    uint64_t file_length;       /* the file's size */
    uint64_t tensor_count;      /* entries of "tensors", 0 .. 65536 */
    uint64_t metadata_count;    /* entries of "metadata", 0 .. 64 */
    uint64_t group_count;       /* groups (spec §10.4), 0 .. 65536; 0 unless
                                   LRQ_REQUIRED_SHARED_FACTOR is set */
} lrq_file_info;

/*
 * lrq_file_get_info -- fill *info from an open file.
 *
 * Returns LRQ_OK, or LRQ_ERR_ARGUMENT if file or info is NULL.
 * Thread safety: safe.
 */
int lrq_file_get_info(const lrq_file *file, lrq_file_info *info);

/*
 * lrq_file_metadata -- one entry of the file's "metadata" map, in file
 * order.
 *
 * index: 0 .. metadata_count - 1.
 * key, key_len, value, value_len: receive the entry's key and value: UTF-8
 *        bytes inside the caller's buffer, NOT NUL-terminated (they may
 *        contain NUL bytes), valid as long as the buffer.  All four
 *        pointers are required.
 *
 * Returns LRQ_OK, or LRQ_ERR_ARGUMENT for a NULL pointer or an index out
 * of range.  Thread safety: safe.
 */
int lrq_file_metadata(const lrq_file *file, uint64_t index, const char **key,
                      size_t *key_len, const char **value, size_t *value_len);

/* What the header says about one tensor (spec §6.4, §7.1). */
typedef struct lrq_tensor_info {
    const char *name;  /* UTF-8 inside the caller's buffer, NOT NUL-terminated */
    size_t name_len;   /* 1 .. 1024 bytes */
    unsigned ndim;     /* 0 .. LRQ_MAX_NDIM; 0 is a scalar */
    uint64_t shape[LRQ_MAX_NDIM];      /* first ndim entries used */
    uint64_t tile_shape[LRQ_MAX_NDIM]; /* equal to shape unless ndim == 2 */
    uint64_t grid[LRQ_MAX_NDIM];       /* tiles along each dimension */
    int dtype;                         /* an LRQ_DTYPE_* code */
    uint64_t panel;                    /* KP, a multiple of 64 in [64, 2^20] */
    uint64_t tile_count;               /* product of grid; 1 .. 2^20 */
    int has_rel_error;                 /* 1 if "rel_error" is present */
    float rel_error;                   /* its binary32 value, else 0 */
    /* The "encoder" map, informational ([TEN-8]): its msgpack bytes inside
     * the caller's buffer (already checked against the profile of §5), or
     * NULL and 0 when absent.  lrq attaches no meaning to it. */
    const uint8_t *encoder;
    size_t encoder_len;
} lrq_tensor_info;

/*
 * lrq_file_tensor -- describe tensor number `tensor` (0 .. tensor_count-1,
 * in file order).
 *
 * Returns LRQ_OK, or LRQ_ERR_ARGUMENT for a NULL pointer or an index out
 * of range.  Thread safety: safe.
 */
int lrq_file_tensor(const lrq_file *file, uint64_t tensor, lrq_tensor_info *info);

/*
 * lrq_file_find_tensor -- the index of the tensor with the given name.
 *
 * name, name_len: the name's UTF-8 bytes (no NUL needed; compared byte by
 *        byte, as the format compares names).
 * index: receives the index on success.
 *
 * Returns LRQ_OK, or LRQ_ERR_ARGUMENT for a NULL pointer or when no tensor
 * has this name.  Takes O(log tensor_count) comparisons.
 * Thread safety: safe.
 */
int lrq_file_find_tensor(const lrq_file *file, const char *name, size_t name_len,
                         uint64_t *index);

/* What the header says about one tile (spec §7, §8.1, §10). */
typedef struct lrq_tile_info {
    int scheme;                    /* an LRQ_SCHEME_* code */
    unsigned ndim;                 /* the tensor's */
    uint64_t origin[LRQ_MAX_NDIM]; /* index of the tile's first element */
    uint64_t shape[LRQ_MAX_NDIM];  /* the tile's own dimensions (m, n) */
    /* Scheme parameters; those of other schemes are 0. */
    int storage;                   /* dense: an LRQ_DTYPE_* code */
    uint64_t width;                /* signcut: w */
    float c_scale;                 /* signcut: "c_scale" (a power of two) when
                                      c is stored as binary16, 0 when c is
                                      binary32 (spec §10.2) */
    uint64_t rank;                 /* lplr: r */
    unsigned bits_l, bits_r;       /* lplr: 1 .. 8 */
    uint64_t group;                /* lplr: g */
    float scale_l, scale_r;        /* lplr: the binary32 super-scales */
    unsigned bits;                 /* quant: b, 1 .. 8 (its group is `group`) */
    unsigned scale_bits;           /* quant: t, the bits of a scale code, 1 .. 8 */
    float scale;                   /* quant: the binary32 super-scale sigma */
    /* For the tile of a group member (spec §10.4): the group's index + 1
     * (see lrq_file_group()); 0 for any other tile.  A member tile is
     * described as a whole tile of its scheme: the group's shared
     * parameters (width; or rank, bits_r, group, scale_r) are filled in
     * above, and its section table lists the group's shared sections
     * (c and tt; or r_codes and r_scales) first, then its own. */
    uint64_t member_of;
    /* The section table, in the scheme's order (see LRQ_SECTION_*).
     * Entries past section_count are 0.  Offsets and lengths are already
     * proven to lie inside the file; the bytes themselves are not yet
     * checked (see lrq_file_section()). */
    unsigned section_count;
    int section_kind[LRQ_MAX_SECTIONS];
    uint64_t section_offset[LRQ_MAX_SECTIONS];
    uint64_t section_length[LRQ_MAX_SECTIONS];
    uint32_t section_crc32c[LRQ_MAX_SECTIONS];
} lrq_tile_info;

/*
 * lrq_file_tile -- describe tile number `tile` of tensor `tensor`, tiles
 * counted in row-major grid order (spec §7.1).
 *
 * Returns LRQ_OK, or LRQ_ERR_ARGUMENT for a NULL pointer or an index out
 * of range.  Thread safety: safe.
 */
int lrq_file_tile(const lrq_file *file, uint64_t tensor, uint64_t tile, lrq_tile_info *info);

/* What the header says about one group (spec §10.4, format 1.2): named
 * tensors, its members, that share one right factor stored once.  Every
 * member is a one-tile 2-D float tensor of `columns` columns whose tile
 * lrq_file_tile() describes as a whole tile of the group's scheme, so the
 * members are read and computed with like any other tensor. */
typedef struct lrq_group_info {
    const char *name;  /* UTF-8 inside the caller's buffer, NOT NUL-terminated */
    size_t name_len;   /* 1 .. 1024 bytes; group names are their own name space */
    int scheme;        /* LRQ_SCHEME_SIGNCUT or LRQ_SCHEME_LPLR */
    uint64_t columns;  /* n, every member's number of columns */
    uint64_t panel;    /* KP of the shared factor and of every member */
    /* The shared parameters; those of the other scheme are 0. */
    uint64_t width;    /* signcut: w */
    uint64_t rank;     /* lplr: r */
    unsigned bits_r;   /* lplr: 1 .. 8 */
    uint64_t group;    /* lplr: g */
    float scale_r;     /* lplr: the binary32 super-scale of R */
    uint64_t member_count; /* 1 .. 65536; see lrq_file_group_member() */
    /* The shared sections, as in lrq_tile_info (c, tt; or r_codes,
     * r_scales).  Their bytes are checked through a member: call
     * lrq_file_section() on a member tile's first sections. */
    unsigned section_count;
    int section_kind[LRQ_MAX_SECTIONS];
    uint64_t section_offset[LRQ_MAX_SECTIONS];
    uint64_t section_length[LRQ_MAX_SECTIONS];
    uint32_t section_crc32c[LRQ_MAX_SECTIONS];
} lrq_group_info;

/*
 * lrq_file_group -- describe group number `group` (0 .. group_count - 1, in
 * the order of the header's "groups").
 *
 * Returns LRQ_OK, or LRQ_ERR_ARGUMENT for a NULL pointer or an index out
 * of range.  Thread safety: safe.
 */
int lrq_file_group(const lrq_file *file, uint64_t group, lrq_group_info *info);

/*
 * lrq_file_group_member -- the tensor index (as for lrq_file_tensor()) of
 * member number `member` (0 .. member_count - 1, in the group's order) of
 * group `group`.
 *
 * Returns LRQ_OK, or LRQ_ERR_ARGUMENT for a NULL pointer or an index out
 * of range.  Thread safety: safe.
 */
int lrq_file_group_member(const lrq_file *file, uint64_t group, uint64_t member,
                          uint64_t *tensor);

/*
 * lrq_file_section -- the bytes of one section, verified.
 *
 * tensor, tile: as for lrq_file_tile().
 * section:      0 .. section_count - 1 of that tile.
 * data:         receives a pointer to the section's first byte, inside the
 *               caller's buffer (for a section of length 0, a pointer to
 *               where it would start; do not dereference it).
 * length:       receives the section's length in bytes.
 * detail, detail_size: the message buffer.
 *
 * The first successful call for a section verifies its CRC-32C ([SEC-6])
 * and then its content rules (see the introduction of this part), unless
 * the open flags or lrq_file_verify() did so already; later calls only
 * return the pointer.  Each section is verified at most once: concurrent
 * first calls for the same section wait for one another (a lock shared by
 * a stripe of sections), and calls for other sections proceed in
 * parallel.  A failed verification is not remembered: the next call checks
 * again and fails again.
 *
 * Returns LRQ_OK, or
 *   LRQ_ERR_CHECKSUM    the section's bytes do not match its CRC-32C;
 *   LRQ_ERR_FORMAT      a content rule fails (a NaN in c or in dense float
 *                       values, a negative scale, a code out of range, a
 *                       bool byte other than 0 or 1);
 *   LRQ_ERR_PADDING     a padding bit or byte of a code or sign matrix is
 *                       not zero;
 *   LRQ_ERR_ARGUMENT    a NULL pointer or an index out of range.
 * On failure *data and *length are not written.
 *
 * Thread safety: safe, also on one handle from many threads.
 */
int lrq_file_section(lrq_file *file, uint64_t tensor, uint64_t tile, unsigned section,
                     const void **data, uint64_t *length, char *detail, size_t detail_size);

/*
 * lrq_file_verify -- run the lazy checks of every section now, in file
 * order: the checksums, and with LRQ_FILE_VERIFY_CONTENT then the content
 * rules.  Sections verified before are not verified again.
 *
 * flags: LRQ_FILE_VERIFY_CHECKSUMS and/or LRQ_FILE_VERIFY_CONTENT; 0 does
 *        nothing.
 *
 * Returns LRQ_OK or the first error, as for lrq_file_section(), or
 * LRQ_ERR_ARGUMENT for a NULL file or an unknown flag.
 * Thread safety: safe, also concurrently with lrq_file_section().
 */
int lrq_file_verify(lrq_file *file, unsigned flags, char *detail, size_t detail_size);

/*
 * lrq_isa_set -- choose the instruction-set path for the rest of the
 * process, as LRQ_FORCE_ISA does at start-up.
 *
 * name: one of the names lrq_isa_name() returns, or NULL to go back to the
 *       path chosen at start-up (the CPU probe and LRQ_FORCE_ISA).  A path
 *       the CPU does not support degrades to the best one below it.
 *
 * Meant for tests and benchmarks that compare paths within one process.
 * Because every path gives the same bits (see lrq_isa_name()), switching
 * while other threads run products is harmless: each product reads the
 * path once when it starts.
 *
 * Returns LRQ_OK, or LRQ_ERR_ARGUMENT if name is not NULL and names no path
 * (the path is then unchanged).
 *
 * Thread safety: safe.
 */
int lrq_isa_set(const char *name);

/* ------------------------------------------------------------------------ */
/* Threads                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Products and decoding run in one parallel region per call, split
 * statically over output rows (never over a sum), so every result is the
 * same bits whatever the thread count.  The signcut encoder runs its steps
 * on the same team (several small parallel regions per cut, split over
 * fixed ranges), also with results independent of the thread count.  The calling thread always works;
 * n - 1 worker threads, created on first use, join it.  Between calls a
 * worker spins for about 0.2 ms and then sleeps (a signcut encoder's run()
 * keeps it spinning while it shares work); a call that finds it asleep
 * does not wait for it -- the caller starts at once and takes over any part
 * the worker has not claimed.  Each call is cut into four parts per thread
 * and any thread may run any part, so a thread the operating system
 * deschedules (on a busy machine) holds the call up by one part at most.
 * Two calls from different threads at once are fine: the second runs on
 * its own thread.  Workers block all signals.
 *
 * The default is 2, or the number of CPUs online if that is 1, unless the
 * environment variable LRQ_NUM_THREADS holds an integer in
 * [1, LRQ_THREADS_MAX] (read once, on the first call that needs it).
 */
#define LRQ_THREADS_MAX 64

/*
 * lrq_threads_set -- the number of threads later calls use.
 *
 * n: 1 .. LRQ_THREADS_MAX.  1 runs everything on the calling thread.
 *
 * Returns LRQ_OK, or LRQ_ERR_ARGUMENT if n is out of range (the setting is
 * then unchanged).  Thread safety: safe; calls already running keep the
 * count they started with.
 */
int lrq_threads_set(int n);

/*
 * lrq_threads_get -- the number of threads products and decoding use now
 * (and signcut encoders created with threads = 0).
 *
 * Errors: none.  Thread safety: safe.
 */
int lrq_threads_get(void);

/* ------------------------------------------------------------------------ */
/* Factorized tiles: products and decoding                                  */
/* ------------------------------------------------------------------------ */

/*
 * An lrq_tile is one "signcut" or "lplr" tile (format spec §10.2, §10.3)
 * ready for y = A x, y = A^T x and decoding, straight from its section
 * bytes: the handle borrows the sections (for instance the pages of a
 * memory-mapped file) and copies nothing.  The caller keeps the section
 * buffers alive and unchanged until lrq_tile_free().
 *
 * Creating a tile checks everything the products rely on, once: the
 * parameters, every section length, and the value rules of the format
 * that are not checksums (zero padding bits and bytes [LAY-1, LAY-2],
 * finite coefficients [SC-2], super-scales and scales [LP-2, LP-3], codes
 * in range [LP-4]).  Section CRCs are the container's business and are not
 * checked here.  A tile is immutable after creation, so one tile may serve
 * any number of threads at once.
 *
 * Kernels exist for the "scalar", "avx2", "avx512" and "neon" paths of
 * lrq_isa_name(); "sse4.2" (which only speeds up CRC-32C) runs the scalar
 * ones.
 *
 * Arithmetic.  Products and decoding are evaluated in binary32 with one
 * fixed expression tree per output element (documented in the source,
 * c_src/src/common/kernels.h): the results are bit-identical for every
 * instruction-set path and every thread count, and within the accuracy
 * the format asks of decoders ([NUM-1]: error at most 1e-5 times the sum of
 * the magnitudes of the terms).  Inputs must be finite; with NaN or
 * infinity in x the outputs are unspecified (but no memory is touched
 * outside the documented buffers).
 */
typedef struct lrq_tile lrq_tile;

/*
 * lrq_tile_create_signcut -- a signcut tile A = S diag(c) T^T (m x n,
 * width w).
 *
 * out:    receives the new tile; set to NULL on failure.
 * m, n:   the tile's shape, each <= 2^31 - 1.
 * w:      the width, <= 2^31 - 1; w == 0 gives a zero matrix.
 * panel:  the tensor's panel length: a multiple of 64 in [64, 2^20].
 * c, tt, s, and their lengths: the three sections ("c": 4w bytes of
 *         little-endian binary32; "tt": T^T as a w x n sign matrix; "s": S
 *         as an m x w sign matrix; §9 layout).  No alignment is required.
 *
 * Returns LRQ_OK, or
 *   LRQ_ERR_ARGUMENT     out is NULL, a dimension or panel is out of range,
 *                        or a section pointer is NULL with a non-zero length;
 *   LRQ_ERR_BUFFER_SIZE  a section length differs from the one the
 *                        parameters give;
 *   LRQ_ERR_FORMAT       a coefficient is NaN or infinite [SC-2];
 *   LRQ_ERR_PADDING      a padding bit is set [LAY-1];
 *   LRQ_ERR_UNSUPPORTED  the host is big-endian;
 *   LRQ_ERR_MEMORY       the handle could not be allocated.
 *
 * Thread safety: safe.
 */
int lrq_tile_create_signcut(lrq_tile **out, uint64_t m, uint64_t n, uint64_t w,
                            uint64_t panel, const void *c, size_t c_len,
                            const void *tt, size_t tt_len, const void *s,
                            size_t s_len);

/*
 * lrq_tile_create_signcut_c16 -- a signcut tile whose weights are stored as
 * binary16 with a scale (format 1.1, feature LRQ_REQUIRED_SIGNCUT_C16):
 * c[k] = c_scale * half(c16[k]), exact in binary32 (spec §10.2).
 *
 * out, m, n, w, panel, tt, s: as for lrq_tile_create_signcut().
 * c_scale: the tile's "c_scale": a power of two 2^e, -125 <= e <= 112
 *          [SC-3].
 * c, c_len: section "c": 2w bytes, w little-endian binary16 values, each
 *          finite [SC-2].
 *
 * Unlike lrq_tile_create_signcut(), the tile does not borrow section "c":
 * it keeps its own binary32 copy of the w weights (4w bytes, released by
 * lrq_tile_free()), so c may be released after this call; tt and s are
 * borrowed as before.  Products and decoding are then the same code, and
 * give the same bits, as for a binary32 tile holding those weights.
 *
 * Returns LRQ_OK, or the errors of lrq_tile_create_signcut(), where
 * LRQ_ERR_FORMAT also covers a c_scale that is not such a power of two
 * [SC-3] and LRQ_ERR_BUFFER_SIZE a c_len other than 2w.
 *
 * Thread safety: safe.
 */
int lrq_tile_create_signcut_c16(lrq_tile **out, uint64_t m, uint64_t n, uint64_t w,
                                uint64_t panel, float c_scale, const void *c,
                                size_t c_len, const void *tt, size_t tt_len,
                                const void *s, size_t s_len);

/*
 * lrq_tile_create_lplr -- an lplr tile A = L R (m x n, rank r).
 *
 * out, m, n, panel: as for lrq_tile_create_signcut().
 * rank:             r <= 2^31 - 1; r == 0 gives a zero matrix.
 * bits_l, bits_r:   code widths, 1 .. 8 (<= 4: bit-planes; >= 5: bytes).
 * group:            the scale group g, a power of two in [16, 2^20].
 * scale_l, scale_r: the super-scales sigma_L, sigma_R: finite and > 0.
 * the four sections and their lengths: "r_codes", "r_scales", "l_codes",
 *                   "l_scales" as §10.3 defines them.
 *
 * Returns LRQ_OK, or the errors of lrq_tile_create_signcut(), where
 * LRQ_ERR_ARGUMENT also covers bits or group out of range, and
 * LRQ_ERR_FORMAT covers a bad super-scale [LP-2], a scale that is
 * negative, infinite or NaN [LP-3] or a byte code >= 2^bits [LP-4];
 * LRQ_ERR_PADDING covers padding bytes of byte codes [LAY-2].
 *
 * Thread safety: safe.
 */
int lrq_tile_create_lplr(lrq_tile **out, uint64_t m, uint64_t n, uint64_t rank,
                         int bits_l, int bits_r, uint64_t group, float scale_l,
                         float scale_r, uint64_t panel, const void *r_codes,
                         size_t r_codes_len, const void *r_scales,
                         size_t r_scales_len, const void *l_codes,
                         size_t l_codes_len, const void *l_scales,
                         size_t l_scales_len);

/*
 * lrq_tile_create_quant -- a quant tile A = F (m x n, spec §10.7): b-bit
 * codes with one scale per (row, group), s = code * 2^e_row.
 *
 * out, m, n, panel: as for lrq_tile_create_signcut().
 * bits:             b, 1 .. 8 (<= 4: bit-planes; >= 5: bytes).
 * group:            the scale group g, a power of two in [16, 2^20].
 * scale_bits:       t, the width of a scale code, 1 .. 8.
 * scale:            the super-scale sigma: finite and > 0.
 * the three sections and their lengths: "codes", "scale_codes",
 *                   "row_exponents" as §10.7 defines them.
 *
 * The tile keeps its own binary16 copy of the scales (2 bytes per row and
 * group); the codes are borrowed.  Products and decode run on the lplr
 * factor kernels: one factor, so a product costs b sign-MACs per entry.
 *
 * Returns LRQ_OK, or the errors of lrq_tile_create_lplr(), where
 * LRQ_ERR_FORMAT also covers a row exponent outside [-24, 7] [QT-4] and
 * LRQ_ERR_PADDING nonzero bits after the last scale code [QT-3].
 *
 * Thread safety: safe.
 */
int lrq_tile_create_quant(lrq_tile **out, uint64_t m, uint64_t n, int bits, uint64_t group,
                          int scale_bits, float scale, uint64_t panel, const void *codes,
                          size_t codes_len, const void *scale_codes, size_t scale_codes_len,
                          const void *row_exponents, size_t row_exponents_len);

/*
 * lrq_tile_create_signcut_detail, lrq_tile_create_signcut_c16_detail,
 * lrq_tile_create_lplr_detail, lrq_tile_create_quant_detail -- the
 * constructors above with a
 * message, as lrq_file_open_buffer() gives one: on failure `detail`
 * (detail_size bytes, at least LRQ_DETAIL_SIZE recommended; NULL or 0:
 * none) receives a NUL-terminated text that starts with the spec rule that
 * failed and names the section, e.g. "[LAY-1] section 'tt': a padding bit
 * in the word at byte 34 is not zero"; on success it is set to "".  The
 * section checks are the ones lrq_file_verify() makes, with the same words.
 * Same arguments, results and thread safety otherwise.
 */
int lrq_tile_create_signcut_detail(lrq_tile **out, uint64_t m, uint64_t n, uint64_t w,
                                   uint64_t panel, const void *c, size_t c_len,
                                   const void *tt, size_t tt_len, const void *s,
                                   size_t s_len, char *detail, size_t detail_size);
int lrq_tile_create_signcut_c16_detail(lrq_tile **out, uint64_t m, uint64_t n, uint64_t w,
                                       uint64_t panel, float c_scale, const void *c,
                                       size_t c_len, const void *tt, size_t tt_len,
                                       const void *s, size_t s_len, char *detail,
                                       size_t detail_size);
int lrq_tile_create_lplr_detail(lrq_tile **out, uint64_t m, uint64_t n, uint64_t rank,
                                int bits_l, int bits_r, uint64_t group, float scale_l,
                                float scale_r, uint64_t panel, const void *r_codes,
                                size_t r_codes_len, const void *r_scales,
                                size_t r_scales_len, const void *l_codes,
                                size_t l_codes_len, const void *l_scales,
                                size_t l_scales_len, char *detail, size_t detail_size);
int lrq_tile_create_quant_detail(lrq_tile **out, uint64_t m, uint64_t n, int bits,
                                 uint64_t group, int scale_bits, float scale, uint64_t panel,
                                 const void *codes, size_t codes_len, const void *scale_codes,
                                 size_t scale_codes_len, const void *row_exponents,
                                 size_t row_exponents_len, char *detail, size_t detail_size);

/*
 * lrq_tile_free -- release a tile (not its sections, which were borrowed).
 * NULL is accepted and ignored.  Thread safety: no other call may use the
 * tile during or after this one.
 */
void lrq_tile_free(lrq_tile *t);

/* Flags of lrq_tile_product(). */
/* Compute y = A^T x instead of y = A x. */
#define LRQ_PRODUCT_TRANSPOSE 1u
/* Opt-in fast paths (y = A x only): see "Fast paths" below. */
#define LRQ_PRODUCT_INT16 2u
#define LRQ_PRODUCT_INT8 4u

/*
 * lrq_tile_product -- Y = A X, or Y = A^T X, for a batch of vectors.
 *
 * t:        the tile (m x n).
 * flags:    0 (exact binary32, the default), or an OR of
 *           LRQ_PRODUCT_TRANSPOSE and at most one of LRQ_PRODUCT_INT16 and
 *           LRQ_PRODUCT_INT8 (not both, and not with TRANSPOSE).
 * nvec:     the number of vectors; 0 does nothing.
 * x:        the inputs.  Element i of vector j is
 *           x[j * x_vstride + i * x_estride], for i < n (or m with
 *           TRANSPOSE).  Strides are in floats and may be any value
 *           (negative, zero for a broadcast), so a NumPy array is used in
 *           place whatever its memory order.
 * y:        the outputs, element i of vector j at
 *           y[j * y_vstride + i * y_estride], i < m (or n with TRANSPOSE);
 *           every output element is written.  y must not overlap x.
 *
 * Each vector's result does not depend on the other vectors in the batch:
 * column j of Y is bit-identical to the product with vector j alone.  The
 * exact paths take the vectors 4 at a time, sharing each chunk's bit
 * unpacking (y = A X) or each block's bit transpose (y = A^T X) between
 * them, so a batch costs less than separate calls; and they gather and
 * scatter the vectors 16 at a time, so that a row-major X or Y (16 floats to
 * a cache line) is read or written one line at a time.
 *
 * Returns LRQ_OK, or
 *   LRQ_ERR_ARGUMENT  t is NULL, flags are unknown or combined as above, or
 *                     x or y is NULL while needed;
 *   LRQ_ERR_MEMORY    scratch memory could not be allocated.
 * Scratch memory is proportional to the vectors (about 20 bytes per
 * element of the input and of the inner width w or r, 4 per element of
 * the output, times up to 16 vectors), never to the tile's data; it is kept between calls while it
 * is at most 64 MiB.  Products with less than 32 KiB of sections run on the
 * calling thread alone (handing work to a second thread costs more).
 *
 * Thread safety: safe; calls may share t but not y.
 *
 * Fast paths.  LRQ_PRODUCT_INT16 and LRQ_PRODUCT_INT8 replace the binary32
 * tables of the sign kernels by integer tables: the input vector of each
 * bit-plane factor (x, then the inner vector v) is cut into blocks of 256
 * elements, and every partial sum of 4 consecutive inputs with signs
 * (+-v_a +- v_b +- v_c +- v_d) is rounded to a multiple of the block's step
 * d = M / L, where M is the block's largest |v_a| + |v_b| + |v_c| + |v_d|
 * over its groups of 4 and L = 32767 (INT16) or 127 (INT8).  The sums of
 * table entries are then exact integers.  Factors stored as byte codes
 * (lplr, 5..8 bits) are always computed exactly.  Error, for one factor
 * F with per-entry magnitudes |F[i,k]| <= a_i on the sign planes:
 *
 *   |(F v)_i computed - (F v)_i exact| <= sum over 4-groups g of
 *        A_{i,g} * d_{block(g)} / 2        (+ binary32 rounding),
 *
 * with A_{i,g} = 1 for a signcut sign matrix and
 * |sigma| * scale[i][g] * (2^b - 1) / 2 for an lplr factor of b bit-planes.
 * For a whole signcut product the error of u = T^T x carries through
 * c and S: |dy_i| <= sum_k |c_k| |du_k| + (the bound above for S and
 * v = c o u).  In practice, for Gaussian inputs the relative error
 * ||dy|| / ||y|| is about 4e-5 with INT16 and about 1e-2 with INT8; the
 * bound and these figures are checked by tests/test_kernels.py.  The fast
 * paths are as deterministic as the exact one (identical bits on every
 * path and thread count).
 */
int lrq_tile_product(const lrq_tile *t, unsigned flags, uint64_t nvec,
                     const float *x, int64_t x_vstride, int64_t x_estride,
                     float *y, int64_t y_vstride, int64_t y_estride);

/*
 * lrq_tile_decode -- the dense tile, in binary32.
 *
 * out: m rows of n floats, row i starting at out + i * ld (so a tile can be
 *      written straight into a larger row-major array).  Must not overlap
 *      the sections.
 * ld:  the row stride in floats, >= n.
 *
 * The same arithmetic as the products: column j is bit for bit the product
 * A e_j of lrq_tile_product() (the first factor's column is read from its
 * bits, the second factor runs the forward kernel; a quant tile's rows are
 * read from its codes with the single product's operations).
 *
 * Returns LRQ_OK, or LRQ_ERR_ARGUMENT (t NULL, ld < n, out NULL for a
 * non-empty tile) or LRQ_ERR_MEMORY.  Thread safety: safe.
 */
int lrq_tile_decode(const lrq_tile *t, float *out, uint64_t ld);

/*
 * lrq_tile_decode_threads -- lrq_tile_decode() on nthreads threads (0: the
 * lrq_threads_get() count; 1: the calling thread alone, for a caller that
 * hands the other cores to another library's threads, such as a BLAS
 * product of the decoded tile).  The same bits for every count.
 *
 * Returns what lrq_tile_decode() returns, or LRQ_ERR_ARGUMENT for nthreads
 * outside 0 .. LRQ_THREADS_MAX.  Thread safety: safe.
 */
int lrq_tile_decode_threads(const lrq_tile *t, float *out, uint64_t ld, int nthreads);

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
 * different encoders are independent.  run() works on the library's thread
 * team (see "Threads" above): the calling thread and up to `threads` - 1
 * workers, which are idle again when it returns.  Its work is cut into
 * ranges fixed by the matrix size alone; if another call holds the team
 * (a product, or an encoder in another thread), that part runs on the
 * calling thread alone.
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
 * threads: threads run() may use, 1..LRQ_THREADS_MAX, or 0 for
 *          lrq_threads_get() at each run().  Never changes results.
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
 *   c:  exactly 4*w bytes: the weights as little-endian float32; with
 *       LRQ_SIGNCUT_C_FLOAT16 storage exactly 2*w bytes: c[k] / c_scale
 *       as little-endian binary16 (lrq_signcut_encoder_c_scale());
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

/* Storage of the weights c: lrq_signcut_encoder_set_c_storage(). */
#define LRQ_SIGNCUT_C_FLOAT32 0
#define LRQ_SIGNCUT_C_FLOAT16 1

/*
 * lrq_signcut_encoder_set_c_storage -- choose how the weights are stored.
 *
 * storage: LRQ_SIGNCUT_C_FLOAT32 (the default: c as binary32, format 1.0)
 *          or LRQ_SIGNCUT_C_FLOAT16 (c as binary16 times a power-of-two
 *          scale, format 1.1 feature LRQ_REQUIRED_SIGNCUT_C16; spec §10.2).
 *
 * With FLOAT16 the weights are quantized inside the greedy loop: the first
 * cut fixes the tile's scale, 2^(floor(log2 c_0) - 8) clamped to
 * [2^-125, 2^112], so c_0 / scale lies in [256, 512), far inside binary16's
 * normal range [2^-14, 65504]; every cut's least-squares weight is then
 * rounded to scale * binary16 (round to nearest even; a value beyond 65504
 * is clamped to it) and that rounded weight is the one subtracted from the
 * remainder and used in the norm.  So later cuts compensate for the
 * rounding and the tracked error stays exact for the weights written.  The
 * encoder finishes early (lrq_signcut_encoder_finished() != 0) if a weight
 * would round to zero.
 *
 * Must be called before the first cut.  Returns LRQ_OK, or
 * LRQ_ERR_ARGUMENT for a NULL encoder, an unknown storage or an encoder
 * that has made cuts already.
 */
int lrq_signcut_encoder_set_c_storage(lrq_signcut_encoder *enc, int storage);

/*
 * lrq_signcut_encoder_c_scale -- the "c_scale" a FLOAT16 encoder writes:
 * a power of two once the first cut is made, 0 before it and for FLOAT32
 * encoders (or NULL).
 */
float lrq_signcut_encoder_c_scale(const lrq_signcut_encoder *enc);

/* lrq_signcut_encoder_free -- release an encoder; NULL is accepted. */
void lrq_signcut_encoder_free(lrq_signcut_encoder *enc);

/* ------------------------------------------------------------------------ */
/* Signcut encoder for tensors of order 3 and more (format 1.3, spec §10.5)  */
/* ------------------------------------------------------------------------ */

/* The highest order a tensor encoder takes: the format's rank limit [TEN-3]. */
#define LRQ_TENSOR_ORDER_MAX 8

/*
 * A greedy encoder of an order-d float32 tensor (3 <= d <= 8) as
 * A ~ sum_k c_k s_k^(0) (x) ... (x) s_k^(d-1), one +-1 vector per mode and
 * term.  Each term sets mode vectors to the signs of the remainder
 * contracted with the other modes' vectors while that strictly increases
 * <R, term>, in neighbouring pairs of modes (one pass over the remainder
 * per pair, then a matrix alternation on the pair's contraction), until
 * every vector is the signs of its image; its weight is that value divided
 * by the number of entries N (the least-squares weight).
 * The dense float32 remainder is updated after every term and its squared
 * norm recomputed in float64 in the same pass, so the reported error is
 * exact and a rel_error target stops at the first term that meets it.
 *
 * Determinism: the same tensor and seed give the same terms on every CPU
 * and instruction-set path (LRQ_FORCE_ISA); the encoder runs on the calling
 * thread only, and how a caller splits its terms between run() calls does
 * not matter.
 *
 * Thread safety: one encoder must not be used by two threads at once;
 * different encoders are independent.
 */
typedef struct lrq_tensor_encoder lrq_tensor_encoder;

/*
 * lrq_tensor_encoder_create -- start encoding a tensor.
 *
 * a:     the tensor, prod(dims) float32 values in C order (the last mode
 *        varies fastest), all finite; copied, so the caller may free it.
 * order: d, 3 .. LRQ_TENSOR_ORDER_MAX.
 * dims:  d sizes, each in [1, 2^31-1].
 * seed:  seeds the random starting vectors (xoshiro256**, as the matrix
 *        encoder).
 * out:   receives the encoder; free it with lrq_tensor_encoder_free.
 *
 * Returns LRQ_OK, LRQ_ERR_ARGUMENT (a bad size or order, a NaN or infinity,
 * NULL) or LRQ_ERR_MEMORY (it needs about 4N + N/4 bytes).
 */
int lrq_tensor_encoder_create(const float *a, unsigned order, const uint64_t *dims,
                              uint64_t seed, lrq_tensor_encoder **out);

/*
 * lrq_tensor_encoder_run -- make up to max_terms more terms.
 *
 * Stops early, and reports lrq_tensor_encoder_finished() != 0, when the
 * remainder's norm is at most rel_error times the input's (rel_error in
 * [0, 1]; 0: no target), when it is zero, or when a term no longer lowers
 * it (that term is not kept).  Returns LRQ_OK, or LRQ_ERR_ARGUMENT for a
 * bad rel_error or a weight that is not a finite float32, LRQ_ERR_MEMORY.
 */
int lrq_tensor_encoder_run(lrq_tensor_encoder *enc, uint64_t max_terms, double rel_error);

/* lrq_tensor_encoder_width -- the number of terms so far (0 for NULL). */
uint64_t lrq_tensor_encoder_width(const lrq_tensor_encoder *enc);

/* lrq_tensor_encoder_finished -- non-zero once run() will add no term. */
int lrq_tensor_encoder_finished(const lrq_tensor_encoder *enc);

/* lrq_tensor_encoder_input_norm -- ||A||_F of the input, in float64. */
double lrq_tensor_encoder_input_norm(const lrq_tensor_encoder *enc);

/* lrq_tensor_encoder_remainder_norm -- ||A - sum of the terms||_F, exact
 * for the float32 remainder the encoder keeps (always up to date). */
double lrq_tensor_encoder_remainder_norm(const lrq_tensor_encoder *enc);

/*
 * lrq_tensor_encoder_write_c -- section "c": the w weights as little-endian
 * float32; c_len must be exactly 4*w (c may be NULL when w == 0).
 * Returns LRQ_OK, LRQ_ERR_ARGUMENT or LRQ_ERR_BUFFER_SIZE.
 */
int lrq_tensor_encoder_write_c(const lrq_tensor_encoder *enc, uint8_t *c, size_t c_len);

/*
 * lrq_tensor_encoder_write_signs -- the section of mode `mode`: the
 * dims[mode] x w sign matrix whose row i holds entry i of the mode's
 * vector in every term, in the interleaved layout; s_len must be exactly
 * lrq_layout_size(dims[mode], w, 1, panel).  Padding bits are zero.
 * Returns LRQ_OK, LRQ_ERR_ARGUMENT (bad mode or panel, NULL),
 * LRQ_ERR_BUFFER_SIZE or LRQ_ERR_MEMORY (a temporary of dims[mode]*w/8 bytes).
 */
int lrq_tensor_encoder_write_signs(const lrq_tensor_encoder *enc, unsigned mode, uint64_t panel,
                                   uint8_t *s, size_t s_len);

/* lrq_tensor_encoder_free -- release an encoder; NULL is accepted. */
void lrq_tensor_encoder_free(lrq_tensor_encoder *enc);

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

/*
 * lrq_quant_fit_coded -- quantize a quant tile (format spec 10.7).
 *
 * x:           rows x k doubles, row-major (finite).
 * bits:        1 .. 8; group >= 1; scale_bits 1 .. 8.
 * codes:       rows * k codes, row-major.
 * scale_codes: rows * ceil(k / group) scale codes, row-major (the caller
 *              packs them in the order of spec 10.3).
 * exps:        rows row exponents in [-24, 7].
 * sigma:       the super-scale.
 *
 * Each group's scale is the clipping ratio of lrq_quant_fit(); divided by
 * sigma it becomes a scale_bits code under the row's exponent (the smallest
 * that holds the row's largest scale), the nearest code and its two
 * neighbours are tried against the group, and the codes are taken at the
 * scale a decoder uses.  Deterministic; one thread.
 *
 * Returns LRQ_OK, LRQ_ERR_ARGUMENT (bad sizes, a value that is not
 * finite) or LRQ_ERR_MEMORY.  Thread safety: safe.
 */
int lrq_quant_fit_coded(const double *x, uint64_t rows, uint64_t k, int bits, uint64_t group,
                        int scale_bits, uint8_t *codes, uint8_t *scale_codes, int8_t *exps,
                        float *sigma);

/* ------------------------------------------------------------------------ */
/* Guarded file mappings                                                    */
/* ------------------------------------------------------------------------ */

/*
 * A file mapped into memory and truncated while mapped (by this process or
 * another) raises SIGBUS on the next access past its new end, which ends the
 * process.  A mapping registered here is guarded instead: a fault inside it
 * is caught, zero pages are mapped over the rest of the mapping (from the
 * faulting page to its end), the mapping is marked damaged and the access
 * finishes on zeros.  The caller checks lrq_mapping_damaged() after every
 * call that read the mapping and discards what the call computed.  Faults
 * outside guarded mappings go to the SIGBUS action installed before.
 *
 * The handler is (re)installed by each lrq_mapping_guard() call that finds
 * another SIGBUS action in place.  At most LRQ_MAPPING_GUARD_MAX mappings
 * are guarded at once.  POSIX systems only.
 */
#define LRQ_MAPPING_GUARD_MAX 1024

/*
 * lrq_mapping_guard -- guard the mapping [base, base + size).
 *
 * slot: receives the handle for lrq_mapping_damaged() and
 *       lrq_mapping_unguard().
 *
 * Returns LRQ_OK; LRQ_ERR_ARGUMENT for a NULL base or slot or a size of 0;
 * LRQ_ERR_MEMORY when LRQ_MAPPING_GUARD_MAX mappings are guarded already;
 * LRQ_ERR_INTERNAL if the handler cannot be installed.
 * Thread safety: safe.
 */
int lrq_mapping_guard(const void *base, size_t size, int *slot);

/*
 * lrq_mapping_damaged -- 1 once a fault inside the guarded mapping has
 * been caught (the mapping then reads as zeros from that page on), else 0.
 * Thread safety: safe.
 */
int lrq_mapping_damaged(int slot);

/*
 * lrq_mapping_unguard -- stop guarding (before the mapping is unmapped).
 * Thread safety: safe; not while another thread still reads the mapping.
 */
void lrq_mapping_unguard(int slot);

#ifdef __cplusplus
}
#endif

#endif /* LRQ_H */
