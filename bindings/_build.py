# SPDX-License-Identifier: MIT
"""cffi builder for ``lrq._lrq_cffi`` (out-of-line API mode).

setuptools runs this through ``cffi_modules`` in ``setup.py`` from the
repository root, which is why the paths below are relative to it.  The
extension compiles the whole C core from source; nothing is linked from the
system.

The cdef lists only what the Python package calls.  Macro values are written
as ``...`` so the C compiler fills them in from ``lrq.h``: a declaration that
drifts from the header fails the build instead of misbehaving at run time.
"""

from __future__ import annotations

import glob

from cffi import FFI

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

unsigned lrq_version_number(void);
const char *lrq_error_name(int code);
const char *lrq_isa_name(void);

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
"""

# ---- encoders (issue 4) ------------------------------------------------------
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
int lrq_quant_fit(const double *x, uint64_t rows, uint64_t k, uint64_t ld,
                  int bits, uint64_t group, uint8_t *codes, uint16_t *scales,
                  float *sigma);
"""
# Encoders make sign decisions from float sums: no contraction into FMA, so
# that every ISA computes exactly the same values (the kernels also avoid
# multiply-add patterns; this flag makes sure of it).
ENCODER_COMPILE_ARGS = ["-ffp-contract=off"]
# ---- end encoders -------------------------------------------------------------

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.cdef(CDEF_ENCODERS)
ffibuilder.set_source(
    "lrq._lrq_cffi",
    '#include "lrq.h"',
    # sorted: the same object order, hence the same binary, on every machine.
    sources=sorted(glob.glob("c_src/src/*.c")),
    include_dirs=["c_src/include"],
    # Baseline ISA for the whole build: SIMD code carries its own target
    # attributes and is chosen at run time.  Hidden visibility keeps the core's
    # symbols from clashing with another copy of lrq in the same process.
    extra_compile_args=["-O3", "-std=gnu99", "-pthread", "-fvisibility=hidden", *ENCODER_COMPILE_ARGS],
    extra_link_args=["-pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
