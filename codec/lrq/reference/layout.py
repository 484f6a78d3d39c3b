"""The interleaved ("kernel-native") matrix layout of spec §9, in NumPy.

A matrix of R rows and K reduction elements is stored as words, one word per
(row, chunk of K): a 16-bit word of 16 sign bits, or a 4-byte word of four u8
codes.  Rows are grouped in tiles of 16 and the reduction in panels of KP
elements; the order is [panel][row tile][chunk][row in tile].  That is the
order a matvec kernel consumes, so products run straight from a mapped file.

This module is the executable twin of the spec text: it favours plain index
arithmetic over speed.  The C core has the fast version (``lrq._native``).
"""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError, FormatError

ROW_TILE = 16  # rows per row tile
CHUNK_ELEMENTS = {1: 16, 8: 4}  # elements per word, by element width in bits
WORD_BYTES = {1: 2, 8: 4}


def padded_k(k: int) -> int:
    """K rounded up to a whole number of 16-element chunks."""
    return -(-k // 16) * 16


def layout_size(rows: int, k: int, elem_bits: int) -> int:
    """Bytes taken by a rows × k interleaved matrix (independent of the panel)."""
    if elem_bits not in WORD_BYTES:
        raise ArgumentError(f"element width must be 1 or 8 bits, not {elem_bits}")
    return rows * padded_k(k) * elem_bits // 8


def _check_panel(panel: int) -> None:
    if panel < 64 or panel > 1 << 20 or panel % 64:
        raise ArgumentError(f"panel must be a multiple of 64 in [64, 2^20], not {panel}")


def _panels(n_chunks: int, chunks_per_panel: int):
    for start in range(0, n_chunks, chunks_per_panel):
        yield start, min(n_chunks, start + chunks_per_panel)


def _row_tiles(rows: int):
    for start in range(0, rows, ROW_TILE):
        yield start, min(rows, start + ROW_TILE)


def _to_words(elements: np.ndarray, elem_bits: int) -> np.ndarray:
    """rows × k elements → rows × chunks × word_bytes, K zero-padded."""
    rows, k = elements.shape
    kp = padded_k(k)
    padded = np.zeros((rows, kp), dtype=np.uint8)
    padded[:, :k] = elements
    if elem_bits == 1:
        # LSB first inside a little-endian u16: np.packbits(bitorder="little")
        # gives byte 0 = elements 0..7, byte 1 = elements 8..15 of each chunk.
        packed = np.packbits(padded, axis=1, bitorder="little")
        return packed.reshape(rows, kp // 16, 2)
    return padded.reshape(rows, kp // 4, 4)


def pack_interleaved(elements: np.ndarray, elem_bits: int, panel: int) -> np.ndarray:
    """Pack a rows × k array of element values into the interleaved layout.

    For ``elem_bits == 1`` each element is a bit value (0 means +1, 1 means −1);
    for ``elem_bits == 8`` it is a u8 code.  Returns a 1-D uint8 array.
    """
    elements = np.asarray(elements)
    if elements.ndim != 2:
        raise ArgumentError("elements must be a 2-D array")
    if elem_bits not in WORD_BYTES:
        raise ArgumentError(f"element width must be 1 or 8 bits, not {elem_bits}")
    _check_panel(panel)
    if elem_bits == 1 and elements.size and elements.max(initial=0) > 1:
        raise ArgumentError("sign elements must be 0 or 1")
    rows, _ = elements.shape
    words = _to_words(elements.astype(np.uint8, copy=False), elem_bits)
    chunks_per_panel = panel // CHUNK_ELEMENTS[elem_bits]
    parts = []
    for c0, c1 in _panels(words.shape[1], chunks_per_panel):
        for r0, r1 in _row_tiles(rows):
            # [chunk][row] inside the tile: transpose the (rows, chunks) block.
            parts.append(words[r0:r1, c0:c1].transpose(1, 0, 2).reshape(-1))
    if not parts:
        return np.zeros(0, dtype=np.uint8)
    return np.concatenate(parts)


def unpack_interleaved(
    buf, rows: int, k: int, elem_bits: int, panel: int, *, what: str = "matrix"
) -> np.ndarray:
    """Inverse of :func:`pack_interleaved`; checks length and zero padding.

    Raises FormatError (naming ``what``) when the buffer has the wrong length
    or a padding element is not zero.
    """
    _check_panel(panel)
    data = np.frombuffer(buf, dtype=np.uint8)
    size = layout_size(rows, k, elem_bits)
    if data.size != size:
        raise FormatError(f"{what}: {data.size} bytes where the layout needs {size}")
    kp = padded_k(k)
    wb = WORD_BYTES[elem_bits]
    n_chunks = kp // CHUNK_ELEMENTS[elem_bits]
    words = np.empty((rows, n_chunks, wb), dtype=np.uint8)
    chunks_per_panel = panel // CHUNK_ELEMENTS[elem_bits]
    pos = 0
    for c0, c1 in _panels(n_chunks, chunks_per_panel):
        for r0, r1 in _row_tiles(rows):
            count = (c1 - c0) * (r1 - r0) * wb
            block = data[pos : pos + count].reshape(c1 - c0, r1 - r0, wb)
            words[r0:r1, c0:c1] = block.transpose(1, 0, 2)
            pos += count
    if elem_bits == 1:
        elements = np.unpackbits(words.reshape(rows, n_chunks * 2), axis=1, bitorder="little")
    else:
        elements = words.reshape(rows, kp)
    if kp > k and elements[:, k:].any():
        rule = "LAY-1" if elem_bits == 1 else "LAY-2"
        raise FormatError(f"{what}: padding elements beyond K={k} are not zero [{rule}]")
    return np.ascontiguousarray(elements[:, :k])


def pack_scales(scales: np.ndarray) -> bytes:
    """Per-(row, group) float16 scales in [row tile][group][row] order."""
    scales = np.asarray(scales, dtype="<f2")
    rows, _ = scales.shape
    parts = [scales[r0:r1].T.reshape(-1) for r0, r1 in _row_tiles(rows)]
    if not parts:
        return b""
    return np.concatenate(parts).tobytes()


def unpack_scales(buf, rows: int, groups: int, *, what: str = "scales") -> np.ndarray:
    """Inverse of :func:`pack_scales`: rows × groups float16."""
    data = np.frombuffer(buf, dtype="<f2")
    if data.size * 2 != len(memoryview(buf).cast("B")) or data.size != rows * groups:
        raise FormatError(f"{what}: {len(memoryview(buf).cast('B'))} bytes where {2 * rows * groups} are needed")
    out = np.empty((rows, groups), dtype=np.float16)
    pos = 0
    for r0, r1 in _row_tiles(rows):
        count = (r1 - r0) * groups
        out[r0:r1] = data[pos : pos + count].reshape(groups, r1 - r0).T
        pos += count
    return out
