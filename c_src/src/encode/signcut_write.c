/* SPDX-License-Identifier: MIT */
/*
 * The signcut encoder's writer: the cuts made so far as the three sections
 * of a signcut tile (spec §10.2).
 */
#include <stdlib.h>
#include <string.h>

#include "encode/signcut.h"

int lrq_signcut_encoder_write(const lrq_signcut_encoder *const e, const uint64_t panel,
                              uint8_t *const c, const size_t c_len, uint8_t *const tt,
                              const size_t tt_len, uint8_t *const s, const size_t s_len)
{
    const uint64_t w = e ? e->width : 0;
    uint64_t tt_size, s_size, i, k;
    uint64_t *srows;
    size_t ww;
    int rc;

    if (e == NULL)
        return LRQ_ERR_ARGUMENT;
    rc = lrq_layout_size(w, e->n, 1, panel, &tt_size);
    if (rc == LRQ_OK)
        rc = lrq_layout_size(e->m, w, 1, panel, &s_size);
    if (rc != LRQ_OK)
        return rc;
    if ((uint64_t)c_len != (e->c16 ? 2 : 4) * w || (uint64_t)tt_len != tt_size ||
        (uint64_t)s_len != s_size)
        return LRQ_ERR_BUFFER_SIZE;
    if (w == 0)
        return LRQ_OK;
    if (c == NULL || tt == NULL || s == NULL)
        return LRQ_ERR_ARGUMENT;
    for (k = 0; k < w && e->c16; k++) {
        /* Exact: every stored weight is c_scale times a binary16. */
        const uint16_t h = lrq_sc_c16_round((double)e->out_c[k] / (double)e->c_scale);
        c[2 * k] = (uint8_t)h;
        c[2 * k + 1] = (uint8_t)(h >> 8);
    }
    for (k = 0; k < w && !e->c16; k++)
        lrq_sc_put_f32le(c + 4 * k, e->out_c[k]);
    rc = lrq_layout_pack_bitrows(e->out_t, e->nw, w, e->n, panel, tt, tt_len);
    if (rc != LRQ_OK)
        return rc;
    /* S is stored by rows (row i: the signs of row i in every cut), the
     * encoder keeps it by cut: transpose the bits. */
    ww = (size_t)((w + 63) / 64);
    srows = (uint64_t *)calloc((size_t)e->m * ww, sizeof *srows);
    if (srows == NULL)
        return LRQ_ERR_MEMORY;
    for (k = 0; k < w; k++) {
        const uint64_t *const col = e->out_s + k * e->mw;
        for (i = 0; i < e->m; i++)
            srows[i * ww + k / 64] |= (col[i >> 6] >> (i & 63) & 1u) << (k & 63);
    }
    rc = lrq_layout_pack_bitrows(srows, ww, e->m, w, panel, s, s_len);
    free(srows);
    return rc;
}
