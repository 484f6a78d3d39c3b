/* SPDX-License-Identifier: MIT */
/*
 * The lrq HDF5 filter plugin: HDF5's two plugin entry points and the filter
 * callback, over chunk.c.
 *
 * The plugin links no libhdf5 (h5z_abi.h says why).  The only HDF5 calls it
 * makes are optional and resolved at run time from the very library that
 * called the filter: the return address of the callback lies inside that
 * library, dladdr() names its file, and dlopen(RTLD_NOLOAD) gives a handle
 * to the copy already loaded, whatever scope it was loaded in (h5py loads
 * its bundled HDF5 privately, where a plain undefined symbol would not
 * bind).  From it the plugin takes H5allocate_memory / H5free_memory, so
 * buffers change hands with the allocator HDF5 itself uses, and H5Epush2,
 * so a refused chunk reaches the user as an HDF5 error that says what is
 * wrong with it.  Without them it falls back to malloc/free and a bare
 * failure; nothing ever depends on them being there.
 *
 * Writing.  The filter encodes chunks of scheme signcut and dense in C
 * (encode.c), the bytes lrq.encode would write [H5-8].  set_local turns
 * the request form of the parameters (what h5repack -f UD=335,... and
 * lrq.hdf5.LRQ give, without the chunk shape) into the stored form, using
 * the dataset's chunk dimensions and element type, and leaves the filter's
 * pipeline flag as the application set it [H5-10]: optional (what h5py
 * sets) has HDF5 store a chunk the encoder refuses -- a NaN, a target out
 * of reach -- unfiltered and exact; mandatory fails that chunk's write,
 * which HDF5 reports only at flush or close (and HDF5 2.0 then crashes the
 * process at exit).  Parameters it cannot honour -- a scheme with no
 * C encoder, a bad target, a chunk or element type the encoder does not
 * take -- fail the dataset's creation [H5-6].  Datasets of
 * lrq.hdf5.write say their chunks are encoded by the writer (word
 * "encoded by"); for them the filter stays optional and declines chunks
 * written through HDF5, which HDF5 then stores unfiltered, marked so in the
 * chunk index, and reads back exactly (the Python encoder of lplr and auto
 * has no C twin).
 *
 * The core runs single-threaded here: HDF5 may unload the plugin at exit
 * while worker threads of the core's team would still be parked in its
 * code, and HDF5 calls filters one chunk at a time anyway.
 */
#define _GNU_SOURCE

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "encode.h"
#include "h5z_abi.h"
#include "lrq.h"

#define EXPORT __attribute__((visibility("default")))

typedef void *(*allocate_func)(size_t size, int clear);
typedef lrq_herr_t (*free_func)(void *memory);

/* The HDF5 library that called the filter, as far as it could be found. */
typedef struct {
    void *handle;
    allocate_func allocate;
    free_func release;
    lrq_h5e_push2_func push;
    lrq_h5p_get_filter_by_id2_func get_filter;
    lrq_h5p_get_chunk_func get_chunk;
    lrq_h5p_get_filter2_func get_filter_at;
    lrq_h5p_modify_filter_func modify_filter;
    lrq_h5t_get_class_func type_class;
    lrq_h5t_get_order_func type_order;
    lrq_h5t_get_size_func type_size;
    const lrq_hid_t *error_class, *major, *minor;
} host_library;

static void host_open(const void *caller, host_library *host)
{
    memset(host, 0, sizeof *host);
    Dl_info info;
    if (dladdr(caller, &info) == 0 || info.dli_fname == NULL)
        return;
    host->handle = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    if (host->handle == NULL)
        return;
    /* Function pointers from dlsym: POSIX guarantees the conversion. */
    *(void **)&host->allocate = dlsym(host->handle, "H5allocate_memory");
    *(void **)&host->release = dlsym(host->handle, "H5free_memory");
    if (host->allocate == NULL || host->release == NULL)
        host->allocate = NULL, host->release = NULL;
    *(void **)&host->push = dlsym(host->handle, "H5Epush2");
    *(void **)&host->get_filter = dlsym(host->handle, "H5Pget_filter_by_id2");
    *(void **)&host->get_chunk = dlsym(host->handle, "H5Pget_chunk");
    *(void **)&host->get_filter_at = dlsym(host->handle, "H5Pget_filter2");
    *(void **)&host->modify_filter = dlsym(host->handle, "H5Pmodify_filter");
    *(void **)&host->type_class = dlsym(host->handle, "H5Tget_class");
    *(void **)&host->type_order = dlsym(host->handle, "H5Tget_order");
    *(void **)&host->type_size = dlsym(host->handle, "H5Tget_size");
    host->error_class = dlsym(host->handle, "H5E_ERR_CLS_g");
    host->major = dlsym(host->handle, "H5E_PLINE_g");
    host->minor = dlsym(host->handle, "H5E_CANTFILTER_g");
}

static void host_close(host_library *host)
{
    if (host->handle != NULL)
        dlclose(host->handle);
}

static void *chunk_allocate(size_t bytes, void *context)
{
    const host_library *host = context;
    if (host->allocate == NULL)
        return calloc(bytes ? bytes : 1, 1);
    void *memory = host->allocate(bytes ? bytes : 1, 0);
    if (memory != NULL)
        memset(memory, 0, bytes);
    return memory;
}

static void chunk_release(void *memory, void *context)
{
    const host_library *host = context;
    if (host->release != NULL)
        host->release(memory);
    else
        free(memory);
}

static void report(const host_library *host, const char *message)
{
    if (host->push != NULL && host->error_class != NULL && host->major != NULL &&
        host->minor != NULL)
        host->push(LRQ_H5E_DEFAULT, __FILE__, "lrq filter", __LINE__, *host->error_class,
                   *host->major, *host->minor, "lrq: %s", message);
}

static size_t run_filter(const void *caller, unsigned flags, size_t cd_nelmts,
                         const unsigned cd_values[], size_t nbytes, size_t *buf_size, void **buf)
{
    host_library host;
    host_open(caller, &host);
    char detail[LRQ_DETAIL_SIZE + 128];
    lrq_h5_chunk chunk;
    void *values = NULL;
    int rc;
    size_t produced_bytes = 0;
    if (!(flags & LRQ_H5Z_FLAG_REVERSE)) {
        lrq_threads_set(1);
        rc = lrq_h5_chunk_parse(cd_nelmts, cd_values, &chunk, detail, sizeof detail);
        if (rc == LRQ_OK && lrq_h5_chunk_encoded_by_writer(cd_nelmts, cd_values)) {
            strcpy(detail, "this dataset's chunks are encoded by the writing application "
                           "(lrq.hdf5.write); HDF5 stores the chunk unfiltered");
            rc = LRQ_ERR_UNSUPPORTED;
        } else if (rc == LRQ_OK && cd_nelmts != 3 + chunk.ndim + LRQ_H5_CD_REQUEST_WORDS) {
            snprintf(detail, sizeof detail, "filter parameters: %zu words; the stored form of a "
                     "rank-%u chunk has %u", cd_nelmts, chunk.ndim,
                     3 + chunk.ndim + LRQ_H5_CD_REQUEST_WORDS);
            rc = LRQ_ERR_FORMAT;
        } else if (rc == LRQ_OK && nbytes != chunk.bytes) {
            snprintf(detail, sizeof detail, "HDF5 handed the filter %zu bytes for a chunk of %llu",
                     nbytes, (unsigned long long)chunk.bytes);
            rc = LRQ_ERR_ARGUMENT;
        }
        lrq_h5_request request;
        if (rc == LRQ_OK)
            rc = lrq_h5_request_check(cd_values + 4 + chunk.ndim, &chunk, &request, detail,
                                      sizeof detail);
        if (rc == LRQ_OK)
            rc = lrq_h5_chunk_encode(&chunk, &request, *buf, chunk_allocate, &host, &values,
                                     &produced_bytes, detail, sizeof detail);
    } else {
        lrq_threads_set(1);
        rc = lrq_h5_chunk_parse(cd_nelmts, cd_values, &chunk, detail, sizeof detail);
        if (rc == LRQ_OK)
            rc = lrq_h5_chunk_decode(&chunk, *buf, nbytes, chunk_allocate, chunk_release, &host,
                                     &values, detail, sizeof detail);
        produced_bytes = (size_t)chunk.bytes;
    }
    size_t produced = 0;
    if (rc == LRQ_OK) {
        chunk_release(*buf, &host);
        *buf = values;
        /* The buffer is exactly this long: HDF5 2.2 refuses a result
         * longer than *buf_size. */
        *buf_size = produced_bytes;
        produced = produced_bytes;
    } else {
        report(&host, detail);
    }
    host_close(&host);
    return produced;
}

/* Not inlined, so that its return address is in the caller of the filter,
 * which is HDF5. */
__attribute__((noinline)) static size_t lrq_filter(unsigned flags, size_t cd_nelmts,
                                                   const unsigned cd_values[], size_t nbytes,
                                                   size_t *buf_size, void **buf)
{
    return run_filter(__builtin_return_address(0), flags, cd_nelmts, cd_values, nbytes, buf_size,
                      buf);
}

/* The dataset's element type as a spec §6.5 code, or 0. */
static int dataset_dtype(const host_library *host, lrq_hid_t type)
{
    if (host->type_class(type) != LRQ_H5T_FLOAT || host->type_order(type) != LRQ_H5T_ORDER_LE)
        return 0;
    const size_t size = host->type_size(type);
    return size == 4 ? LRQ_DTYPE_FLOAT32 : size == 8 ? LRQ_DTYPE_FLOAT64 : 0;
}

/*
 * The checks of a new dataset's parameters, and with `store` their stored
 * form written back (set_local): the request form becomes the stored form
 * for the dataset's chunk and element type, its pipeline flag kept.
 * Returns 0, or -1 with the reason in detail.
 */
static int prepare(const host_library *host, lrq_hid_t dcpl, lrq_hid_t type, int store,
                   char *detail, size_t detail_size)
{
    if (host->get_filter == NULL || host->get_chunk == NULL || host->modify_filter == NULL ||
        host->get_filter_at == NULL ||
        host->type_class == NULL || host->type_order == NULL || host->type_size == NULL) {
        snprintf(detail, detail_size, "the HDF5 library that called the filter lacks the calls it "
                 "needs to set up a dataset (H5Pget_chunk, H5Pget_filter2, H5Pmodify_filter, H5Tget_*)");
        return -1;
    }
    unsigned flags = 0, words[3 + LRQ_H5S_MAX_RANK + LRQ_H5_CD_REQUEST_WORDS];
    size_t count = sizeof words / sizeof words[0];
    if (host->get_filter(dcpl, LRQ_H5_FILTER_ID, &flags, &count, words, 0, NULL, NULL) < 0) {
        snprintf(detail, detail_size, "the dataset's parameters of filter %d cannot be read",
                 LRQ_H5_FILTER_ID);
        return -1;
    }
    /* HDF5 reports how many words there are, which may be more than it
     * copied; neither form is longer than the stored one of layout 1. */
    if (count > sizeof words / sizeof words[0]) {
        snprintf(detail, detail_size, "%zu filter parameters; the stored form has at most %zu",
                 count, sizeof words / sizeof words[0]);
        return -1;
    }
    const int dtype = dataset_dtype(host, type);
    if (dtype == 0) {
        snprintf(detail, detail_size, "the lrq filter stores little-endian float32 and float64 "
                 "datasets only, not this element type");
        return -1;
    }
    uint64_t dims[LRQ_H5S_MAX_RANK];
    const int rank = host->get_chunk(dcpl, LRQ_H5S_MAX_RANK, dims);
    if (rank < 1) {
        snprintf(detail, detail_size, "the dataset is not chunked");
        return -1;
    }
    unsigned stored[3 + LRQ_H5S_MAX_RANK + LRQ_H5_CD_REQUEST_WORDS];
    const size_t stored_count = 3 + (size_t)rank + LRQ_H5_CD_REQUEST_WORDS;
    stored[0] = LRQ_H5_CD_WORD0;
    stored[1] = (unsigned)dtype;
    stored[2] = (unsigned)rank;
    for (int i = 0; i < rank; i++)
        stored[3 + i] = dims[i] > 0xFFFFFFFFu ? 0 : (unsigned)dims[i];
    lrq_h5_chunk chunk;
    if (lrq_h5_chunk_parse(stored_count, stored, &chunk, detail, detail_size) != LRQ_OK)
        return -1;
    unsigned *request = stored + 4 + rank;
    if (count >= 1 && words[0] >> 16 == LRQ_H5_CD_MARKER) {
        /* The stored form already: lrq.hdf5.write's, or a copy of an lrq
         * dataset (h5repack).  Chunks a writer encoded must be this
         * dataset's; a request the filter encodes applies to any chunk, so
         * it is stored again for this dataset's chunk and type. */
        lrq_h5_chunk given;
        if (lrq_h5_chunk_parse(count, words, &given, detail, detail_size) != LRQ_OK)
            return -1;
        if (count != 3 + given.ndim + LRQ_H5_CD_REQUEST_WORDS) {
            snprintf(detail, detail_size, "filter parameters: %zu words; the stored form of a "
                     "rank-%u chunk has %u", count, given.ndim,
                     3 + given.ndim + LRQ_H5_CD_REQUEST_WORDS);
            return -1;
        }
        if (lrq_h5_chunk_encoded_by_writer(count, words)) {
            if (given.dtype != dtype || given.ndim != chunk.ndim ||
                memcmp(given.dims, chunk.dims, sizeof chunk.dims) != 0) {
                snprintf(detail, detail_size, "the stored filter parameters describe another chunk "
                         "shape or element type than this dataset's");
                return -1;
            }
            return 0;
        }
        memcpy(request - 1, words + 3 + given.ndim, LRQ_H5_CD_REQUEST_WORDS * sizeof *words);
    } else {
        if (count < 1 || count > LRQ_H5_REQUEST_MAX_WORDS) {
            snprintf(detail, detail_size, "the request form of the lrq filter's parameters has 1 to "
                     "%u words (scheme, target, value, seed low, seed high, option), not %zu",
                     LRQ_H5_REQUEST_MAX_WORDS, count);
            return -1;
        }
        request[-1] = LRQ_H5_ENCODED_BY_FILTER;
        memset(request, 0, LRQ_H5_REQUEST_MAX_WORDS * sizeof *request);
        memcpy(request, words, count * sizeof *words);
    }
    if (request[-1] != LRQ_H5_ENCODED_BY_FILTER) {
        snprintf(detail, detail_size, "filter parameters: \"encoded by\" is %u, neither 0 nor 1",
                 request[-1]);
        return -1;
    }
    lrq_h5_request checked;
    if (lrq_h5_request_check(request, &chunk, &checked, detail, detail_size) != LRQ_OK)
        return -1;
    /* The encoder needs the dataset's values: a filter before it in the
     * pipeline (shuffle, scale-offset, ...) would hand it other bytes. */
    unsigned first_flags = 0;
    size_t first_count = 0;
    const int first = host->get_filter_at(dcpl, 0, &first_flags, &first_count, NULL, 0, NULL, NULL);
    if (first != LRQ_H5_FILTER_ID) {
        snprintf(detail, detail_size, "the lrq filter encodes the dataset's values, so it must come "
                 "first in the filter pipeline, before filter %d", first);
        return -1;
    }
    if (store && host->modify_filter(dcpl, LRQ_H5_FILTER_ID, flags,
                                     stored_count, stored) < 0) {
        snprintf(detail, detail_size, "the stored parameters could not be written");
        return -1;
    }
    return 0;
}

static int set_up(const void *caller, lrq_hid_t dcpl, lrq_hid_t type, int store)
{
    host_library host;
    host_open(caller, &host);
    char detail[LRQ_DETAIL_SIZE + 128];
    const int rc = prepare(&host, dcpl, type, store, detail, sizeof detail);
    if (rc < 0)
        report(&host, detail);
    host_close(&host);
    return rc;
}

/* Not inlined, so that their return address is in HDF5. */
__attribute__((noinline)) static int lrq_can_apply(lrq_hid_t dcpl, lrq_hid_t type, lrq_hid_t space)
{
    (void)space;
    /* -1, never 0: HDF5 drops an optional filter that cannot apply,
     * silently. */
    return set_up(__builtin_return_address(0), dcpl, type, 0) < 0 ? -1 : 1;
}

__attribute__((noinline)) static lrq_herr_t lrq_set_local(lrq_hid_t dcpl, lrq_hid_t type,
                                                         lrq_hid_t space)
{
    (void)space;
    return set_up(__builtin_return_address(0), dcpl, type, 1) < 0 ? -1 : 0;
}

static const lrq_h5z_class2 filter_class = {
    LRQ_H5Z_CLASS_T_VERS,
    LRQ_H5_FILTER_ID,
    1,
    1,
    "lrq: low-rank and 1-bit matrix chunks (.lrq streams)",
    lrq_can_apply,
    lrq_set_local,
    lrq_filter,
};

EXPORT int H5PLget_plugin_type(void)
{
    return LRQ_H5PL_TYPE_FILTER;
}

EXPORT const void *H5PLget_plugin_info(void)
{
    return &filter_class;
}
