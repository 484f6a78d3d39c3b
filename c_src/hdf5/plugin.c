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
 * Writing.  This build encodes no chunk itself: lrq.hdf5.write encodes
 * chunks in Python and stores them with H5Dwrite_chunk, past the filter,
 * and says so in the parameters (README.md, word "encoded by").  HDF5
 * creates no dataset whose filter lacks an encoder, so the filter has one
 * that declines every chunk; lrq.hdf5.write makes the filter optional, and
 * HDF5 stores a chunk an optional filter declines unfiltered, marked so in
 * the chunk index: a later write through HDF5 is kept exactly, never lost.
 * Any other dataset asking for the filter -- h5repack -f UD=..., h5py's
 * compression= -- would get only raw chunks, silently, so can_apply
 * refuses it, loudly.
 *
 * The core runs single-threaded here: HDF5 may unload the plugin at exit
 * while worker threads of the core's team would still be parked in its
 * code, and HDF5 calls filters one chunk at a time anyway.
 */
#define _GNU_SOURCE

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
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
    if (!(flags & LRQ_H5Z_FLAG_REVERSE)) {
        strcpy(detail, "this build of the lrq filter does not encode chunks; HDF5 stores the "
                       "chunk unfiltered");
        rc = LRQ_ERR_UNSUPPORTED;
    } else {
        lrq_threads_set(1);
        rc = lrq_h5_chunk_parse(cd_nelmts, cd_values, &chunk, detail, sizeof detail);
        if (rc == LRQ_OK)
            rc = lrq_h5_chunk_decode(&chunk, *buf, nbytes, chunk_allocate, chunk_release, &host,
                                     &values, detail, sizeof detail);
    }
    size_t produced = 0;
    if (rc == LRQ_OK) {
        chunk_release(*buf, &host);
        *buf = values;
        *buf_size = (size_t)chunk.bytes;
        produced = (size_t)chunk.bytes;
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

static int can_apply(const void *caller, lrq_hid_t dcpl)
{
    host_library host;
    host_open(caller, &host);
    unsigned flags = 0, words[3 + LRQ_H5S_MAX_RANK + LRQ_H5_CD_REQUEST_WORDS];
    size_t count = sizeof words / sizeof words[0];
    int ok = 1;
    /* HDF5 reports how many words there are, which may be more than it
     * copied; the stored form of layout 1 always fits. */
    if (host.get_filter != NULL &&
        host.get_filter(dcpl, LRQ_H5_FILTER_ID, &flags, &count, words, 0, NULL, NULL) >= 0 &&
        (count > sizeof words / sizeof words[0] || !lrq_h5_chunk_encoded_by_writer(count, words))) {
        report(&host, "this build of the lrq filter does not encode chunks itself; create lrq "
                      "datasets with lrq.hdf5.write (Python), which encodes and stores them");
        ok = -1;
    }
    host_close(&host);
    return ok;
}

__attribute__((noinline)) static int lrq_can_apply(lrq_hid_t dcpl, lrq_hid_t type, lrq_hid_t space)
{
    (void)type, (void)space;
    return can_apply(__builtin_return_address(0), dcpl);
}

static const lrq_h5z_class2 filter_class = {
    LRQ_H5Z_CLASS_T_VERS,
    LRQ_H5_FILTER_ID,
    1, /* declines every chunk: see "Writing" above */
    1,
    "lrq: low-rank and 1-bit matrix chunks (.lrq streams)",
    lrq_can_apply,
    NULL,
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
