"""CRC-32C (Castagnoli) in pure Python, for the reference decoder.

The reference decoder must not depend on the C core it is checked against, so
it carries its own CRC.  It is slow (a table lookup per byte) and only meant
for conformance vectors and tests; the library uses ``lrq._native.crc32c``.
Parameters: reflected polynomial 0x82F63B78, initial value and final XOR
0xFFFFFFFF; the CRC of b"123456789" is 0xE3069283.
"""

from __future__ import annotations

_POLY = 0x82F63B78


def _make_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _make_table()


def crc32c(data, value: int = 0) -> int:
    """CRC-32C of ``data``, continuing from ``value`` (like ``zlib.crc32``)."""
    crc = value ^ 0xFFFFFFFF
    table = _TABLE
    for byte in memoryview(data).cast("B"):
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFFFFFF
