/* SPDX-License-Identifier: MIT */
/*
 * The names of dtypes, schemes and section kinds (spec §7, §10), and the
 * sections of each scheme.
 */
#include "format/container.h"

/* Indexed by LRQ_DTYPE_*; entry 0 is no type. */
const lrq_fmt_dtype lrq_fmt_dtypes[DTYPE_COUNT] = {
    {NULL, 0, 0},         {"float64", 8, 1}, {"float32", 4, 1}, {"float16", 2, 1},
    {"bfloat16", 2, 1},   {"int64", 8, 0},   {"int32", 4, 0},   {"int16", 2, 0},
    {"int8", 1, 0},       {"uint64", 8, 0},  {"uint32", 4, 0},  {"uint16", 2, 0},
    {"uint8", 1, 0},      {"bool", 1, 0},
};

/* Indexed by LRQ_SCHEME_*. */
const char *const lrq_fmt_scheme_names[SCHEME_COUNT] = {NULL, "signcut", "lplr", "dense", "quant"};

/* Indexed by LRQ_SECTION_*. */
const char *const lrq_fmt_kind_names[KIND_COUNT] = {NULL,      "values",   "c",       "tt",      "s",
                                         "r_codes", "r_scales", "l_codes", "l_scales",
                                         "codes", "scale_codes", "row_exponents"};

/* The sections of each scheme, in the order the spec lists them (§10). */
const lrq_fmt_sections lrq_fmt_scheme_sections[SCHEME_COUNT] = {
    {0, {0}},
    {3, {LRQ_SECTION_C, LRQ_SECTION_TT, LRQ_SECTION_S}},
    {4, {LRQ_SECTION_R_CODES, LRQ_SECTION_R_SCALES, LRQ_SECTION_L_CODES, LRQ_SECTION_L_SCALES}},
    {1, {LRQ_SECTION_VALUES}},
    {3, {LRQ_SECTION_CODES, LRQ_SECTION_SCALE_CODES, LRQ_SECTION_ROW_EXPONENTS}},
};

/* Groups share a scheme's first sections (spec §10.4): signcut "c" and
 * "tt", lplr "r_codes" and "r_scales"; dense and quant tiles are never
 * members. */
const unsigned lrq_fmt_shared_sections[SCHEME_COUNT] = {0, 2, 2, 0, 0};

const char *lrq_dtype_name(const int dtype)
{
    return dtype > 0 && (size_t)dtype < DTYPE_COUNT ? lrq_fmt_dtypes[dtype].name : NULL;
}

unsigned lrq_dtype_size(const int dtype)
{
    return dtype > 0 && (size_t)dtype < DTYPE_COUNT ? lrq_fmt_dtypes[dtype].size : 0;
}

const char *lrq_scheme_name(const int scheme)
{
    return scheme > 0 && (size_t)scheme < SCHEME_COUNT ? lrq_fmt_scheme_names[scheme] : NULL;
}

const char *lrq_section_kind_name(const int kind)
{
    return kind > 0 && (size_t)kind < KIND_COUNT ? lrq_fmt_kind_names[kind] : NULL;
}
