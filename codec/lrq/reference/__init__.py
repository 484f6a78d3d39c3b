"""The pure-NumPy reference codec for `.lrq` files.

It is the executable twin of ``spec/lrq-format.md``: a decoder written from
the spec alone (with its own CRC-32C, independent of the C core) and the
reference encoders.  ``lrq.reference.decode(data)`` reads a whole file and
returns ``{name: ndarray}``; it raises the same ``lrq.LrqError`` subclasses as
the library for every rule a file breaks.
"""

from __future__ import annotations

from .container import parse
from .crc32c import crc32c
from .decoder import decode_tensor


def decode(data) -> dict:
    """Decode every tensor of a `.lrq` file held in ``data`` (bytes-like)."""
    record = parse(data, crc32c, verify_sections=True)
    return {t.name: decode_tensor(t, crc32c) for t in record.tensors}


__all__ = ["decode", "crc32c", "parse"]
