"""The pure-NumPy reference codec for `.lrq` files.

It is the executable twin of ``spec/lrq-format.md``: a decoder written from
the spec alone (with its own CRC-32C, independent of the C core) and the
reference encoders.  ``lrq.reference.decode(data)`` reads a whole file and
returns ``{name: ndarray}``; it raises the same ``lrq.LrqError`` subclasses as
the library for every rule a file breaks.
"""

from __future__ import annotations

from typing import Optional

from .container import parse
from .crc32c import crc32c
from .decoder import decode_tensor


def decode(data, *, max_output_bytes: Optional[int] = None) -> dict:
    """Decode every tensor of a `.lrq` file held in ``data`` (bytes-like).

    A tensor whose decoded output would exceed ``max_output_bytes`` (the
    caller's limit of spec [LIM-8]), or that cannot be allocated, raises
    :class:`lrq.ResourceError`; beyond the outputs, memory stays within a
    fixed multiple of the file's size.
    """
    # Sections are checked tile by tile, in file order, as each tile is
    # decoded: every CRC of the tile, then its content rules [SEC-9].
    record = parse(data, crc32c, verify_sections=False)
    return {t.name: decode_tensor(t, crc32c, max_output_bytes) for t in record.tensors}


__all__ = ["decode", "crc32c", "parse"]
