"""Helpers shared by the test modules: data, tolerances, and file surgery.

The file surgery (``split`` / ``assemble``) takes a `.lrq` file apart into its
msgpack header and section payloads and puts it back together with canonical
offsets and freshly computed CRCs.  Corruption tests use it to build files
that break exactly one rule *behind* the checksums (a NaN coefficient, a set
padding bit, …), so the decoder has to catch the rule itself.  It is written
from the format notes with the reference CRC, independent of the writer.
"""

from __future__ import annotations

import functools
import struct

import msgpack
import numpy as np

import lrq
from lrq.reference import container
from lrq.reference.crc32c import crc32c

PREAMBLE = struct.Struct("<8sHHIQQQQI12s")

# Relative tolerance of a product against decode(M) @ x, by result dtype.
PRODUCT_TOL = {np.dtype(np.float16): 2e-3, np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def random_matrix(shape, seed: int = 0, dtype=np.float64) -> np.ndarray:
    """Standard normal entries from ``np.random.default_rng(seed)``."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def rel_error(a, approx) -> float:
    """‖a − approx‖_F / ‖a‖_F in float64."""
    a = np.asarray(a, dtype=np.float64)
    return float(np.linalg.norm(a - np.asarray(approx, dtype=np.float64)) / np.linalg.norm(a))


def assert_product_close(got, dense, x, dtype) -> None:
    """``got`` ≈ ``dense @ x`` to the tolerance of ``dtype``.

    The error is measured against ‖|dense|·|x|‖, the scale of the rounding
    errors of any summation order, so a product that cancels to nearly zero
    does not make the comparison meaningless.
    """
    dense64 = np.asarray(dense, dtype=np.float64)
    x64 = np.asarray(x, dtype=np.float64)
    want = dense64 @ x64
    got = np.asarray(got)
    assert got.shape == want.shape
    scale = np.linalg.norm(np.abs(dense64) @ np.abs(x64))
    err = np.linalg.norm(got.astype(np.float64) - want)
    assert err <= PRODUCT_TOL[np.dtype(dtype)] * scale + 1e-30, (err, scale)


# ---------------------------------------------------------------- small valid files


@functools.lru_cache(maxsize=None)
def small_files() -> dict:
    """A few small valid files (name -> bytes), every scheme and feature once.

    Cached: the fuzz and corruption tests share them.  Each is a few KB at most.
    """
    a = random_matrix((7, 13), seed=1)
    files = {
        "signcut": lrq.dumps(lrq.encode(a, "signcut", width=3)),
        # bits_l ≤ 4 is stored as bit-planes, bits_r ≥ 5 as byte codes.
        "lplr": lrq.dumps(lrq.encode(a, "lplr", rank=2, bits_l=3, bits_r=6, group=16)),
        "dense": lrq.dumps(lrq.encode(a.astype(np.float16), "dense")),
        "tiled": lrq.dumps(lrq.encode(random_matrix((20, 21), seed=2), "signcut", width=2, tile_shape=(16, 16))),
    }
    files["dense_1d"] = lrq.dumps(lrq.encode(np.linspace(-1, 1, 5, dtype=np.float32), "dense"))
    files["multi"] = to_bytes_via_save(
        {"W": lrq.encode(a, "signcut", width=2), "ids": np.arange(6, dtype=np.int64).reshape(2, 3), "flag": np.array([True, False])},
    )
    return files


def to_bytes_via_save(tensors, **kw) -> bytes:
    """The bytes ``lrq.save`` writes for ``tensors`` (through a temporary folder)."""
    import pathlib
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "t.lrq"
        lrq.save(path, tensors, **kw)
        return path.read_bytes()


# ---------------------------------------------------------------- file surgery


def split(data: bytes):
    """(header map, [section payload bytes in file order]) of a valid file."""
    fields = PREAMBLE.unpack_from(data, 0)
    header_length = fields[6]
    header = msgpack.unpackb(data[64 : 64 + header_length], raw=False)
    payloads = [bytes(data[off : off + ln]) for _, off, ln, _ in section_entries(header)]
    return header, payloads


def section_entries(header: dict) -> list:
    """Every section entry [kind, offset, length, crc] of a header map, in file order."""
    return [entry for t in header["tensors"] for tile in t["tiles"] for entry in tile["sections"]]


def section_position(header: dict, kind: str, tensor: int = 0, tile: int = 0) -> int:
    """Index in file order of section ``kind`` of a given tensor and tile."""
    pos = 0
    for ti, t in enumerate(header["tensors"]):
        for ki, tl in enumerate(t["tiles"]):
            for entry in tl["sections"]:
                if (ti, ki, entry[0]) == (tensor, tile, kind):
                    return pos
                pos += 1
    raise KeyError(kind)


def assemble(header: dict, payloads: list, *, shift: int = 0, major: int = 1, minor: int = 0,
             required: int = 0, optional: int = 0, keep_lengths: bool = False,
             single_float: bool = True) -> bytes:
    """A file from a header map and payloads: canonical layout, CRCs recomputed.

    ``shift`` moves the first section that many bytes past its canonical
    offset (zero-filled).  With ``keep_lengths`` the header's section lengths
    are kept as they are instead of being set from the payloads; without
    ``single_float`` floats are packed as float64 (readers must accept both).
    """
    entries = section_entries(header)
    assert len(entries) == len(payloads)
    header_length = 0
    for _ in range(32):  # offsets depend on the header length and vice versa
        pos, offsets = 64 + header_length, []
        for i, payload in enumerate(payloads):
            pos = container.align(pos, container.section_alignment(len(payload))) + (shift if i == 0 else 0)
            offsets.append(pos)
            pos += len(payload)
        for entry, off, payload in zip(entries, offsets, payloads):
            entry[1] = off
            if not keep_lengths:
                entry[2] = len(payload)
            entry[3] = crc32c(payload)
        raw = msgpack.packb(header, use_single_float=single_float)
        if len(raw) == header_length:
            break
        header_length = len(raw)
    body, pos = bytearray(), 64 + header_length
    for off, payload in zip(offsets, payloads):
        body += bytes(off - pos) + payload
        pos = off + len(payload)
    head = PREAMBLE.pack(container.MAGIC, major, minor, 0, required, optional, header_length, pos, 0, bytes(12))
    crc = crc32c(raw, crc32c(head[:48]))
    return head[:48] + struct.pack("<I", crc) + bytes(12) + raw + bytes(body)


def edit_preamble(data: bytes, *, fix_crc: bool, **fields) -> bytes:
    """Change named preamble fields; recompute the header CRC if ``fix_crc``."""
    names = ("magic", "major", "minor", "reserved_a", "required", "optional", "header_length",
             "file_length", "header_crc", "reserved_b")
    values = dict(zip(names, PREAMBLE.unpack_from(data, 0)))
    values.update(fields)
    head = PREAMBLE.pack(*(values[n] for n in names))
    if fix_crc:
        end = 64 + values["header_length"]
        crc = crc32c(data[64:end], crc32c(head[:48]))
        head = head[:48] + struct.pack("<I", crc) + head[52:]
    return head + data[64:]


def outcome(decoder, data):
    """What ``decoder`` makes of ``data``: "ok" or the LrqError subclass raised.

    Any other exception propagates, and so fails the calling test.
    """
    try:
        decoder(data)
    except lrq.LrqError as exc:
        assert str(exc), "an error without a message"
        return type(exc)
    return "ok"


def load_outcome(data):
    """The outcome of ``lrq.loads``."""
    return outcome(lrq.loads, data)


def reference_outcome(data):
    """The outcome of the pure-NumPy reference decoder."""
    return outcome(lrq.reference.decode, data)
