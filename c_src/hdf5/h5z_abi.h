/* SPDX-License-Identifier: MIT */
/*
 * The few pieces of HDF5's binary interface the plugin depends on, written
 * out here instead of included from HDF5's headers.
 *
 * Why not #include <H5PLextern.h>: the plugin must load into whichever HDF5
 * the host process runs (the copy bundled in h5py's wheel, Debian's
 * libhdf5 behind h5dump and h5repack, a conda build), so it is built against
 * none of them and links none of them.  Everything below has been the same
 * since HDF5 1.8.11 (plugins) and 1.10 (64-bit hid_t) up to 2.x: the filter
 * class struct version 1, the two plugin entry points, the flag bit of a
 * read, and the error-stack call the plugin resolves at run time from the
 * library that calls it (plugin.c).
 */
#ifndef LRQ_H5Z_ABI_H
#define LRQ_H5Z_ABI_H

#include <stddef.h>
#include <stdint.h>

/* H5Z_class2_t.version: H5Z_CLASS_T_VERS. */
#define LRQ_H5Z_CLASS_T_VERS 1
/* H5PL_TYPE_FILTER of enum H5PL_type_t. */
#define LRQ_H5PL_TYPE_FILTER 0
/* H5Z_FLAG_REVERSE: the filter runs on read (decode). */
#define LRQ_H5Z_FLAG_REVERSE 0x0100u
/* H5Z_FLAG_OPTIONAL: a filter that may fail on write, the chunk then
 * stored unfiltered (H5Z_FLAG_MANDATORY is 0). */
#define LRQ_H5Z_FLAG_OPTIONAL 0x0001u
/* H5T_FLOAT of enum H5T_class_t, H5T_ORDER_LE of enum H5T_order_t. */
#define LRQ_H5T_FLOAT 1
#define LRQ_H5T_ORDER_LE 0
/* H5E_DEFAULT: the calling thread's current error stack. */
#define LRQ_H5E_DEFAULT ((int64_t)0)
/* H5S_MAX_RANK: the most dimensions a dataset (and so a chunk) may have. */
#define LRQ_H5S_MAX_RANK 32

/* hid_t and herr_t since HDF5 1.10. */
typedef int64_t lrq_hid_t;
typedef int lrq_herr_t;

typedef int (*lrq_h5z_can_apply_func)(lrq_hid_t dcpl, lrq_hid_t type, lrq_hid_t space);
typedef lrq_herr_t (*lrq_h5z_set_local_func)(lrq_hid_t dcpl, lrq_hid_t type, lrq_hid_t space);
/* The filter itself: in, nbytes valid bytes at *buf of a *buf_size buffer;
 * out, the new buffer in *buf (the old one freed), its allocated size in
 * *buf_size, and the number of valid bytes as the return value; 0 reports
 * failure with *buf and *buf_size untouched. */
typedef size_t (*lrq_h5z_func)(unsigned flags, size_t cd_nelmts, const unsigned cd_values[],
                               size_t nbytes, size_t *buf_size, void **buf);

/* H5Z_class2_t, member for member. */
typedef struct {
    int version;
    int id;                     /* H5Z_filter_t */
    unsigned encoder_present;
    unsigned decoder_present;
    const char *name;           /* shown by h5dump and h5ls -v */
    lrq_h5z_can_apply_func can_apply;
    lrq_h5z_set_local_func set_local;
    lrq_h5z_func filter;
} lrq_h5z_class2;

/* H5Epush2(stack, file, func, line, class, major, minor, format, ...). */
typedef lrq_herr_t (*lrq_h5e_push2_func)(lrq_hid_t stack, const char *file, const char *func,
                                         unsigned line, lrq_hid_t cls, lrq_hid_t major,
                                         lrq_hid_t minor, const char *format, ...);

/* H5Pget_filter_by_id2(dcpl, id, flags, cd_nelmts, cd_values, namelen, name,
 * filter_config). */
typedef lrq_herr_t (*lrq_h5p_get_filter_by_id2_func)(lrq_hid_t dcpl, int id, unsigned *flags,
                                                     size_t *cd_nelmts, unsigned cd_values[],
                                                     size_t namelen, char name[],
                                                     unsigned *filter_config);

/* H5Pget_chunk(dcpl, max_ndims, dims): the rank, or negative. */
typedef int (*lrq_h5p_get_chunk_func)(lrq_hid_t dcpl, int max_ndims, uint64_t dims[]);
/* H5Pmodify_filter(dcpl, id, flags, cd_nelmts, cd_values). */
typedef lrq_herr_t (*lrq_h5p_modify_filter_func)(lrq_hid_t dcpl, int id, unsigned flags,
                                                 size_t cd_nelmts, const unsigned cd_values[]);
/* H5Pget_filter2(dcpl, index, flags, cd_nelmts, cd_values, namelen, name,
 * filter_config): the ID of the index-th filter of the pipeline. */
typedef int (*lrq_h5p_get_filter2_func)(lrq_hid_t dcpl, unsigned index, unsigned *flags,
                                        size_t *cd_nelmts, unsigned cd_values[], size_t namelen,
                                        char name[], unsigned *filter_config);
/* H5Tget_class, H5Tget_order (enums, negative on error), H5Tget_size (0 on
 * error). */
typedef int (*lrq_h5t_get_class_func)(lrq_hid_t type);
typedef int (*lrq_h5t_get_order_func)(lrq_hid_t type);
typedef size_t (*lrq_h5t_get_size_func)(lrq_hid_t type);

#endif
