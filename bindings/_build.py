# SPDX-License-Identifier: MIT
"""cffi builder for ``lrq._lrq_cffi`` (out-of-line API mode).

setuptools runs this through ``cffi_modules`` in ``setup.py`` from the
repository root.  The extension compiles the whole C core from source;
nothing is linked from the system.  Which sources, include directories and
flags is read from ``c_src/Makefile``, the one build description that the
C tests and the fuzz harnesses read as well (:func:`build_description`).

The cdef lists only what the Python package calls.  Macro values are written
as ``...`` so the C compiler fills them in from ``lrq.h``: a declaration that
drifts from the header fails the build instead of misbehaving at run time.
"""

from __future__ import annotations

import pathlib
import re

from cffi import FFI

C_SRC = pathlib.Path("c_src")


def build_description(makefile=None) -> dict:
    """The ``LRQ_*`` variables of ``c_src/Makefile`` as lists of words.

    The Makefile keeps them as plain ``NAME = words`` assignments (backslash
    continuations allowed, ``#`` comments), so this reads them without make.
    Source files and include directories come back joined to the Makefile's
    folder, as paths usable from the current directory.
    """
    path = pathlib.Path(makefile) if makefile is not None else C_SRC / "Makefile"
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    found = {}
    for line in text.splitlines():
        match = re.match(r"(LRQ_[A-Z_]+)\s*=(.*)$", line.split("#", 1)[0].strip())
        if match:
            found[match.group(1)] = match.group(2).split()
    folder = path.parent
    for key in ("LRQ_SOURCES", "LRQ_INCLUDE_DIRS"):
        found[key] = [str(folder / word) for word in found.get(key, [])]
    return found


BUILD = build_description()

CDEF = """
#define LRQ_VERSION_NUMBER ...

#define LRQ_OK ...
#define LRQ_ERR_FORMAT ...
#define LRQ_ERR_CHECKSUM ...
#define LRQ_ERR_UNSUPPORTED ...
#define LRQ_ERR_PADDING ...
#define LRQ_ERR_ARGUMENT ...
#define LRQ_ERR_BUFFER_SIZE ...
#define LRQ_ERR_MEMORY ...
#define LRQ_ERR_INTERNAL ...

#define LRQ_THREADS_MAX ...
#define LRQ_PRODUCT_TRANSPOSE ...
#define LRQ_PRODUCT_INT16 ...
#define LRQ_PRODUCT_INT8 ...

unsigned lrq_version_number(void);
const char *lrq_error_name(int code);
const char *lrq_isa_name(void);
int lrq_isa_set(const char *name);

int lrq_threads_set(int n);
int lrq_threads_get(void);

uint32_t lrq_crc32c(uint32_t crc, const void *data, size_t len);

int lrq_layout_size(uint64_t rows, uint64_t k, int elem_bits, uint64_t panel,
                    uint64_t *nbytes);
int lrq_layout_pack(const uint8_t *elements, uint64_t rows, uint64_t k,
                    int elem_bits, uint64_t panel, uint8_t *out, size_t out_len);
int lrq_layout_unpack(const uint8_t *packed, size_t packed_len, uint64_t rows,
                      uint64_t k, int elem_bits, uint64_t panel,
                      uint8_t *elements);
int lrq_layout_unpack_signs_f32(const uint8_t *packed, size_t packed_len,
                                uint64_t rows, uint64_t k, uint64_t panel,
                                float *out);

/* Reading `.lrq` files: container parsing and validation */
#define LRQ_DETAIL_SIZE ...
#define LRQ_MAX_NDIM ...
#define LRQ_MAX_SECTIONS ...
#define LRQ_FILE_VERIFY_CHECKSUMS ...
#define LRQ_FILE_VERIFY_CONTENT ...
#define LRQ_FORMAT_MINOR ...
#define LRQ_REQUIRED_SIGNCUT_C16 ...
#define LRQ_REQUIRED_SHARED_FACTOR ...
#define LRQ_REQUIRED_KNOWN ...

const char *lrq_dtype_name(int dtype);
unsigned lrq_dtype_size(int dtype);
const char *lrq_scheme_name(int scheme);
const char *lrq_section_kind_name(int kind);

typedef struct lrq_file lrq_file;

typedef struct {
    unsigned format_major;
    unsigned format_minor;
    uint64_t required_features;
    uint64_t optional_features;
    uint64_t header_length;
    uint64_t file_length;
    uint64_t tensor_count;
    uint64_t metadata_count;
    uint64_t group_count;
    ...;
} lrq_file_info;

typedef struct {
    const char *name;
    size_t name_len;
    unsigned ndim;
    uint64_t shape[...];
    uint64_t tile_shape[...];
    uint64_t grid[...];
    int dtype;
    uint64_t panel;
    uint64_t tile_count;
    int has_rel_error;
    float rel_error;
    const uint8_t *encoder;
    size_t encoder_len;
    ...;
} lrq_tensor_info;

typedef struct {
    int scheme;
    unsigned ndim;
    uint64_t origin[...];
    uint64_t shape[...];
    int storage;
    uint64_t width;
    float c_scale;
    uint64_t rank;
    unsigned bits_l;
    unsigned bits_r;
    uint64_t group;
    float scale_l;
    float scale_r;
    unsigned bits;
    unsigned scale_bits;
    float scale;
    uint64_t member_of;
    unsigned section_count;
    int section_kind[...];
    uint64_t section_offset[...];
    uint64_t section_length[...];
    uint32_t section_crc32c[...];
    ...;
} lrq_tile_info;

typedef struct {
    const char *name;
    size_t name_len;
    int scheme;
    uint64_t columns;
    uint64_t panel;
    uint64_t width;
    uint64_t rank;
    unsigned bits_r;
    uint64_t group;
    float scale_r;
    uint64_t member_count;
    unsigned section_count;
    int section_kind[...];
    uint64_t section_offset[...];
    uint64_t section_length[...];
    uint32_t section_crc32c[...];
    ...;
} lrq_group_info;

int lrq_file_open_buffer(const void *data, size_t size, unsigned flags, lrq_file **out,
                         char *detail, size_t detail_size);
void lrq_file_free(lrq_file *file);
int lrq_file_get_info(const lrq_file *file, lrq_file_info *info);
int lrq_file_metadata(const lrq_file *file, uint64_t index, const char **key,
                      size_t *key_len, const char **value, size_t *value_len);
int lrq_file_tensor(const lrq_file *file, uint64_t tensor, lrq_tensor_info *info);
int lrq_file_find_tensor(const lrq_file *file, const char *name, size_t name_len,
                         uint64_t *index);
int lrq_file_tile(const lrq_file *file, uint64_t tensor, uint64_t tile, lrq_tile_info *info);
int lrq_file_section(lrq_file *file, uint64_t tensor, uint64_t tile, unsigned section,
                     const void **data, uint64_t *length, char *detail, size_t detail_size);
int lrq_file_verify(lrq_file *file, unsigned flags, char *detail, size_t detail_size);
int lrq_file_group(const lrq_file *file, uint64_t group, lrq_group_info *info);
int lrq_file_group_member(const lrq_file *file, uint64_t group, uint64_t member,
                          uint64_t *tensor);

typedef struct lrq_tile lrq_tile;
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
void lrq_tile_free(lrq_tile *t);
int lrq_tile_product(const lrq_tile *t, unsigned flags, uint64_t nvec,
                     const float *x, int64_t x_vstride, int64_t x_estride,
                     float *y, int64_t y_vstride, int64_t y_estride);
int lrq_tile_decode(const lrq_tile *t, float *out, uint64_t ld);
int lrq_tile_decode_threads(const lrq_tile *t, float *out, uint64_t ld, int nthreads);

#define LRQ_MAPPING_GUARD_MAX ...
int lrq_mapping_guard(const void *base, size_t size, int *slot);
int lrq_mapping_damaged(int slot);
void lrq_mapping_unguard(int slot);
"""

# ---- encoders ----------------------------------------------------------------
CDEF_ENCODERS = """
typedef struct lrq_signcut_encoder lrq_signcut_encoder;
int lrq_signcut_encoder_create(const float *a, uint64_t rows, uint64_t cols,
                               uint64_t ld, uint64_t seed, unsigned threads,
                               lrq_signcut_encoder **out);
int lrq_signcut_encoder_run(lrq_signcut_encoder *enc, uint64_t max_cuts,
                            double rel_error);
uint64_t lrq_signcut_encoder_width(const lrq_signcut_encoder *enc);
int lrq_signcut_encoder_finished(const lrq_signcut_encoder *enc);
double lrq_signcut_encoder_input_norm(const lrq_signcut_encoder *enc);
int lrq_signcut_encoder_remainder_norm(lrq_signcut_encoder *enc, int exact,
                                       double *norm);
int lrq_signcut_encoder_write(const lrq_signcut_encoder *enc, uint64_t panel,
                              uint8_t *c, size_t c_len, uint8_t *tt,
                              size_t tt_len, uint8_t *s, size_t s_len);
void lrq_signcut_encoder_free(lrq_signcut_encoder *enc);
#define LRQ_SIGNCUT_C_FLOAT32 ...
#define LRQ_SIGNCUT_C_FLOAT16 ...
int lrq_signcut_encoder_set_c_storage(lrq_signcut_encoder *enc, int storage);
float lrq_signcut_encoder_c_scale(const lrq_signcut_encoder *enc);
typedef struct lrq_tensor_encoder lrq_tensor_encoder;
#define LRQ_TENSOR_ORDER_MAX ...
int lrq_tensor_encoder_create(const float *a, unsigned order, const uint64_t *dims,
                              uint64_t seed, lrq_tensor_encoder **out);
int lrq_tensor_encoder_run(lrq_tensor_encoder *enc, uint64_t max_terms, double rel_error);
uint64_t lrq_tensor_encoder_width(const lrq_tensor_encoder *enc);
int lrq_tensor_encoder_finished(const lrq_tensor_encoder *enc);
double lrq_tensor_encoder_input_norm(const lrq_tensor_encoder *enc);
double lrq_tensor_encoder_remainder_norm(const lrq_tensor_encoder *enc);
int lrq_tensor_encoder_write_c(const lrq_tensor_encoder *enc, uint8_t *c, size_t c_len);
int lrq_tensor_encoder_write_signs(const lrq_tensor_encoder *enc, unsigned mode, uint64_t panel,
                                   uint8_t *s, size_t s_len);
void lrq_tensor_encoder_free(lrq_tensor_encoder *enc);
int lrq_quant_fit(const double *x, uint64_t rows, uint64_t k, uint64_t ld,
                  int bits, uint64_t group, uint8_t *codes, uint16_t *scales,
                  float *sigma);
int lrq_quant_fit_coded(const double *x, uint64_t rows, uint64_t k, int bits, uint64_t group,
                        int scale_bits, uint8_t *codes, uint8_t *scale_codes, int8_t *exps,
                        float *sigma);
"""
# ---- end encoders -------------------------------------------------------------

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.cdef(CDEF_ENCODERS)
ffibuilder.set_source(
    "lrq._lrq_cffi",
    '#include "lrq.h"',
    # The Makefile's order: the same object order, hence the same binary, on
    # every machine.  Why each flag is there is written next to it there.
    sources=BUILD["LRQ_SOURCES"],
    include_dirs=BUILD["LRQ_INCLUDE_DIRS"],
    extra_compile_args=BUILD["LRQ_CFLAGS"] + BUILD["LRQ_OPT_CFLAGS"],
    extra_link_args=BUILD["LRQ_LDFLAGS"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
