"""File surgery: take `.lrq` bytes apart and put them back together, rules optional.

The one set of tools with which the conformance generator
(``conformance/generate.py``) and the damaged-file tests (``tests/``) build
files that break exactly one rule: change the header map or a payload, then
:func:`assemble` lays the file out again (canonical offsets and CRCs unless
told to keep what the header says), or :func:`edit_preamble` changes
preamble fields.  Nothing here checks a rule; that is the parsers' job.
"""

from __future__ import annotations

import struct

import msgpack

from .container import MAGIC, PREAMBLE_SIZE, align, section_alignment
from .crc32c import crc32c

PREAMBLE = struct.Struct("<8sHHIQQQQI12s")
PREAMBLE_FIELDS = ("magic", "major", "minor", "reserved_a", "required", "optional", "header_length",
                   "file_length", "header_crc", "reserved_b")


def header(data: bytes) -> dict:
    """The header map of a file (no checks)."""
    length = PREAMBLE.unpack_from(data, 0)[6]
    return msgpack.unpackb(data[PREAMBLE_SIZE : PREAMBLE_SIZE + length], raw=False)


def section_entries(header_map: dict) -> list:
    """Every section entry [kind, offset, length, crc] of a header map, in file order
    (the tensors', then a 1.2 file's groups' shared sections, spec §10.4)."""
    entries = [entry for t in header_map["tensors"] for tile in t["tiles"] for entry in tile["sections"]]
    return entries + [entry for g in header_map.get("groups", ()) for entry in g["sections"]]


def payloads(data: bytes, header_map: dict = None) -> list:
    """Section payload bytes in file order, where ``header_map`` (default: the file's own) places them."""
    entries = section_entries(header(data) if header_map is None else header_map)
    return [bytes(data[offset : offset + length]) for _, offset, length, _ in entries]


def section_position(header_map: dict, kind: str, tensor: int = 0, tile: int = 0) -> int:
    """Index in file order of section ``kind`` of a given tensor and tile."""
    pos = 0
    for ti, t in enumerate(header_map["tensors"]):
        for ki, tile_map in enumerate(t["tiles"]):
            for entry in tile_map["sections"]:
                if (ti, ki, entry[0]) == (tensor, tile, kind):
                    return pos
                pos += 1
    raise KeyError(kind)


def _preamble(raw_header: bytes, file_length: int, major: int, minor: int, required: int, optional: int) -> bytes:
    head = PREAMBLE.pack(MAGIC, major, minor, 0, required, optional, len(raw_header), file_length, 0, bytes(12))
    crc = crc32c(raw_header, crc32c(head[:48]))
    return head[:48] + struct.pack("<I", crc) + bytes(12)


def assemble(header_map: dict, section_payloads: list, *, shift: int = 0, major: int = 1, minor: int = 0,
             required: int = 0, optional: int = 0, fix_offsets: bool = True, keep_lengths: bool = False,
             fix_crcs: bool = True, single_float: bool = True, pack=None) -> bytes:
    """A file from a header map and section payloads (the entries of ``header_map`` are updated).

    By default every section gets its canonical offset and its payload's
    length and CRC-32C.  ``shift`` moves the first section that many bytes
    past its canonical offset (zero-filled); ``keep_lengths`` keeps the
    header's lengths; ``fix_offsets=False`` keeps the header's offsets and
    lengths and puts each payload where its entry says; ``fix_crcs=False``
    keeps the header's CRCs.  Without ``single_float`` floats are packed as
    float 64; ``pack`` (a function of the header map) replaces msgpack's
    shortest encodings altogether.  The preamble's lengths and header CRC are
    always right.
    """
    entries = section_entries(header_map)
    if len(entries) != len(section_payloads):
        raise ValueError(f"{len(entries)} section entries but {len(section_payloads)} payloads")
    header_length = 0
    for _ in range(64):  # offsets depend on the header length and vice versa
        pos = PREAMBLE_SIZE + header_length
        for i, (entry, payload) in enumerate(zip(entries, section_payloads)):
            if fix_offsets:
                pos = align(pos, section_alignment(len(payload))) + (shift if i == 0 else 0)
                entry[1] = pos
                if not keep_lengths:
                    entry[2] = len(payload)
                pos += len(payload)
            if fix_crcs:
                entry[3] = crc32c(payload)
        raw = pack(header_map) if pack else msgpack.packb(header_map, use_single_float=single_float)
        if len(raw) == header_length:
            break
        header_length = len(raw)
    end = PREAMBLE_SIZE + len(raw)
    body = bytearray()
    for entry, payload in zip(entries, section_payloads):
        start = entry[1] - end
        if start > len(body):
            body += bytes(start - len(body))
        body[start : start + len(payload)] = payload
    return _preamble(raw, end + len(body), major, minor, required, optional) + raw + bytes(body)


def with_header(raw_header: bytes, *, major: int = 1, minor: int = 0) -> bytes:
    """A file of a preamble (lengths and CRC right) and the given header bytes, no sections."""
    return _preamble(raw_header, PREAMBLE_SIZE + len(raw_header), major, minor, 0, 0) + raw_header


def edit_preamble(data: bytes, *, fix_crc: bool = True, **fields) -> bytes:
    """Change named preamble fields (:data:`PREAMBLE_FIELDS`); recompute the header CRC if ``fix_crc``."""
    values = dict(zip(PREAMBLE_FIELDS, PREAMBLE.unpack_from(data, 0)))
    unknown = set(fields) - set(values)
    if unknown:
        raise KeyError(f"no preamble fields {sorted(unknown)}")
    values.update(fields)
    head = PREAMBLE.pack(*(values[name] for name in PREAMBLE_FIELDS))
    if fix_crc:
        end = PREAMBLE_SIZE + values["header_length"]
        crc = crc32c(data[PREAMBLE_SIZE:end], crc32c(head[:48]))
        head = head[:48] + struct.pack("<I", crc) + head[52:]
    return head + data[PREAMBLE_SIZE:]
