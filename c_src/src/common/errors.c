/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>

#include "lrq.h"
#include "common/internal.h"

const char *lrq_error_name(const int code)
{
    /* A switch rather than a table indexed by -code: the codes are sparse on
     * purpose (one range per group), and a switch makes a forgotten code a
     * visible omission instead of a NULL slot. */
    switch (code) {
    case LRQ_OK:
        return "LRQ_OK";
    case LRQ_ERR_FORMAT:
        return "LRQ_ERR_FORMAT";
    case LRQ_ERR_CHECKSUM:
        return "LRQ_ERR_CHECKSUM";
    case LRQ_ERR_UNSUPPORTED:
        return "LRQ_ERR_UNSUPPORTED";
    case LRQ_ERR_PADDING:
        return "LRQ_ERR_PADDING";
    case LRQ_ERR_ARGUMENT:
        return "LRQ_ERR_ARGUMENT";
    case LRQ_ERR_BUFFER_SIZE:
        return "LRQ_ERR_BUFFER_SIZE";
    case LRQ_ERR_MEMORY:
        return "LRQ_ERR_MEMORY";
    case LRQ_ERR_INTERNAL:
        return "LRQ_ERR_INTERNAL";
    default:
        return "unknown error";
    }
}

int lrq_detail(char *const detail, const size_t detail_size, const int code,
               const char *const fmt, ...)
{
    va_list args;

    if (detail == NULL || detail_size == 0)
        return code;
    va_start(args, fmt);
    (void)vsnprintf(detail, detail_size, fmt, args);
    va_end(args);
    return code;
}
