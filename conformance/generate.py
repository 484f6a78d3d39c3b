"""Generate the `.lrq` conformance vectors (run by hand; tests never call it).

    python conformance/generate.py            # writes conformance/v1/ and manifest.json
    python conformance/generate.py --check    # regenerates in memory, compares with the files

The vectors are frozen: once released, a vector's bytes never change, and a
vector of every released format version stays forever.  ``--check`` proves
the generator still reproduces them bit for bit.

Inputs come from SplitMix64 (below), a fully specified integer generator, so
the bytes do not depend on NumPy's random streams.  Factors are built here
directly, not by an encoder, so improving an encoder never changes a vector.
Files are assembled with ``lrq.reference`` (the spec's executable twin) and
the expected decoded arrays come from ``lrq.reference.decode`` in float64.

Name grammar (PngSuite style), fields joined by "-":
    <scheme>-<shape>[-<params>…]            valid vectors, e.g. signcut-33x100-w17-kp64
    x<rule>-<what>                          invalid vectors, e.g. xsec3-offset-shifted
shape is RxC (or D0xD1x… / "scalar" for dense), params: wN width, rN rank,
bLxR bit widths, gN group, kpN panel, tRxC tile shape, f16/f32/bf16/… storage.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import struct
import sys

import msgpack
import numpy as np

from lrq.reference import container, decode as ref_decode
from lrq.reference.crc32c import crc32c as CRC
from lrq.reference import dense, layout, lplr, signcut, surgery

HERE = os.path.dirname(os.path.abspath(__file__))
V1 = os.path.join(HERE, "v1")

MASK64 = (1 << 64) - 1


class SplitMix64:
    """SplitMix64 (Steele, Lea & Flood 2014): 64-bit state, one output per step."""

    def __init__(self, seed: int):
        self.state = seed & MASK64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def bits(self, shape) -> np.ndarray:
        """0/1 values, one per output's top bit."""
        return np.array([self.next() >> 63 for _ in range(math.prod(shape))], dtype=np.uint8).reshape(shape)

    def uniform(self, shape, lo: float, hi: float) -> np.ndarray:
        """Doubles in [lo, hi) from the top 53 bits."""
        u = np.array([(self.next() >> 11) * 2.0**-53 for _ in range(math.prod(shape))]).reshape(shape)
        return lo + (hi - lo) * u

    def codes(self, shape, bits: int) -> np.ndarray:
        return np.array([self.next() >> (64 - bits) for _ in range(math.prod(shape))], dtype=np.uint8).reshape(shape)


def seed_of(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


# ------------------------------------------------------------------ tile builders


def section(kind, data):
    return container.make_section(kind, bytes(data), CRC)


def signcut_tile(rng, origin, shape, width, panel):
    m, n = shape
    s_bits = rng.bits((m, width))
    tt_bits = rng.bits((width, n))
    c = rng.uniform((width,), 0.05, 1.0).astype("<f4")
    sections = {
        "c": section("c", c.tobytes()),
        "tt": section("tt", layout.pack_interleaved(tt_bits, 1, panel).tobytes()),
        "s": section("s", layout.pack_interleaved(s_bits, 1, panel).tobytes()),
    }
    return container.TileRecord(origin, shape, "signcut", {"width": width}, sections)


def signcut_tile_c16(rng, origin, shape, width, panel, scale, c16=None):
    """A format 1.1 signcut tile: c stored as binary16, c[k] = scale * c16[k] [SC-3]."""
    m, n = shape
    s_bits = rng.bits((m, width))
    tt_bits = rng.bits((width, n))
    if c16 is None:
        c16 = rng.uniform((width,), 12.8, 256.0)
    c16 = np.asarray(c16, dtype=np.float64).astype("<f2")
    sections = {
        "c": section("c", c16.tobytes()),
        "tt": section("tt", layout.pack_interleaved(tt_bits, 1, panel).tobytes()),
        "s": section("s", layout.pack_interleaved(s_bits, 1, panel).tobytes()),
    }
    return container.TileRecord(origin, shape, "signcut", {"width": width, "c_scale": float(scale)}, sections)


def _factor(rng, rows, k, bits, group):
    codes = rng.codes((rows, k), bits)
    groups = -(-k // group)
    scales = rng.uniform((rows, groups), 0.25, 1.0).astype(np.float16)
    sigma = float(np.float32(rng.uniform((1,), 0.5, 2.0)[0]))
    return codes, scales, sigma


def lplr_tile(rng, origin, shape, rank, bits_l, bits_r, group, panel):
    m, n = shape
    left = _factor(rng, m, rank, bits_l, group)
    right = _factor(rng, rank, n, bits_r, group)
    params, raw = lplr.params_and_sections(rank, bits_l, bits_r, group, left, right, panel)
    return container.TileRecord(origin, shape, "lplr", params, {k: section(k, v) for k, v in raw.items()})


def dense_tile(origin, shape, storage, values):
    return container.TileRecord(origin, shape, "dense", {"storage": storage},
                                {"values": section("values", dense.store(values, storage))})


def tensor(name, shape, dtype, tiles, tile_shape=None, panel=container.DEFAULT_PANEL, rel_error=None, encoder=None):
    return container.TensorRecord(name, tuple(shape), dtype, tuple(tile_shape or shape), panel, tiles, rel_error, encoder)


def file_bytes(tensors, metadata=None) -> bytes:
    return b"".join(bytes(p) for p in container.serialize(tensors, metadata, CRC))


def grid_tensor(rng, name, shape, tile_shape, make_tile, panel=container.DEFAULT_PANEL):
    tiles = [make_tile(rng, o, s) for o, s in container.tile_grid(shape, tile_shape)]
    return tensor(name, shape, "float32", tiles, tile_shape, panel)


# ------------------------------------------------------------------ valid vectors


def valid_vectors() -> dict:
    """name -> (file bytes, description)."""
    out = {}

    def add(name, description, tensors, metadata=None):
        out[name] = (file_bytes(tensors, metadata), description)

    def rng_for(name):
        return SplitMix64(seed_of(name))

    def one_signcut(name, shape, width, panel=4096, description=""):
        rng = rng_for(name)
        add(name, description, [tensor("A", shape, "float32", [signcut_tile(rng, (0, 0), shape, width, panel)], panel=panel)])

    def one_lplr(name, shape, rank, bl, br, group, panel=4096, description=""):
        rng = rng_for(name)
        tile = lplr_tile(rng, (0, 0), shape, rank, bl, br, group, panel)
        add(name, description, [tensor("A", shape, "float32", [tile], panel=panel)])

    one_signcut("signcut-1x1-w1", (1, 1), 1, description="smallest signcut: one cut of a 1x1 matrix")
    one_signcut("signcut-20x40-w3", (20, 40), 3, description="short last row tile (20 rows), K not a multiple of 16")
    one_signcut("signcut-33x100-w17-kp64", (33, 100), 17, 64,
                description="w not a multiple of 16, three row tiles, two panels of 64 (Tt) and one (S)")
    one_signcut("signcut-5x300-w70-kp64", (5, 300), 70, 64, description="five panels in Tt, two in S; a wide matrix")
    one_signcut("signcut-4x4-w0", (4, 4), 0, description="width 0: empty sections, decodes to zeros")
    one_lplr("lplr-24x40-r5-b1x1-g16", (24, 40), 5, 1, 1, 16, description="1-bit factors: one bit-plane each")
    one_lplr("lplr-20x70-r4-b3x4-g32-kp64", (20, 70), 4, 3, 4, 32, 64,
             description="3 and 4 bit-planes, two panels, scale groups of 32")
    one_lplr("lplr-17x33-r3-b5x8-g16", (17, 33), 3, 5, 8, 16, description="byte-code factors (5 and 8 bits)")
    one_lplr("lplr-18x21-r19-b2x6-g16-kp64", (18, 21), 19, 2, 6, 16, 64,
             description="rank above min(m,n), mixed planes and bytes, two scale groups in L")
    one_lplr("lplr-5x5-r0", (5, 5), 0, 2, 2, 16, description="rank 0: empty sections, decodes to zeros")

    rng = rng_for("dense")
    values32 = rng.uniform((3, 5), -4, 4)
    add("dense-3x5-f32", "dense float32, exact", [tensor("A", (3, 5), "float32", [dense_tile((0, 0), (3, 5), "float32", values32)])])
    v16 = rng.uniform((7, 1), -100, 100)
    add("dense-7x1-f16", "dense float16 of a float32 tensor", [tensor("A", (7, 1), "float32", [dense_tile((0, 0), (7, 1), "float16", v16)])])
    vbf = rng.uniform((4, 4), -1e6, 1e6)
    add("dense-4x4-bf16", "dense bfloat16 of a bfloat16 tensor (decodes to float32)",
        [tensor("A", (4, 4), "bfloat16", [dense_tile((0, 0), (4, 4), "bfloat16", vbf)])])
    v3 = rng.uniform((2, 3, 4), -1, 1)
    add("dense-2x3x4-f64", "a 3-D float64 tensor (one tile)", [tensor("A", (2, 3, 4), "float64", [dense_tile((0, 0, 0), (2, 3, 4), "float64", v3)])])
    add("dense-scalar-u8", "a 0-D tensor", [tensor("A", (), "uint8", [dense_tile((), (), "uint8", np.array(200, dtype=np.uint8))])])

    rng = rng_for("tiled")
    add("tiled-signcut-20x40-t8x16-w2", "a 3x3 grid of signcut tiles with short edge tiles",
        [grid_tensor(rng, "A", (20, 40), (8, 16), lambda r, o, s: signcut_tile(r, o, s, 2, 4096))])
    rng = rng_for("mixed")

    def mixed(r, o, s):
        kind = (o[0] // 16 + o[1] // 16) % 3
        if kind == 0:
            return signcut_tile(r, o, s, 5, 64)
        if kind == 1:
            return lplr_tile(r, o, s, 3, 2, 5, 16, 64)
        return dense_tile(o, s, "float16", r.uniform(s, -2, 2))

    add("tiled-mixed-40x40-t16x16-kp64", "a 3x3 grid mixing signcut, lplr and dense tiles",
        [grid_tensor(rng, "A", (40, 40), (16, 16), mixed, panel=64)])

    rng = rng_for("multi")
    add("multi-3tensors-metadata", "three named tensors (signcut, int64, bool) and file metadata", [
        tensor("W", (6, 9), "float32", [signcut_tile(rng, (0, 0), (6, 9), 4, 4096)], rel_error=0.25,
               encoder={"seed": 0, "target": "width"}),
        tensor("ids", (2, 3), "int64", [dense_tile((0, 0), (2, 3), "int64", np.arange(-3, 3, dtype=np.int64).reshape(2, 3))]),
        tensor("flags", (4,), "bool", [dense_tile((0,), (4,), "bool", np.array([True, False, False, True]))]),
    ], metadata={"source": "conformance", "license": "CC0-1.0"})

    # A section of 1 MiB or more starts on a 4096-byte boundary.  A repeating
    # pattern keeps the vector small in the repository.
    ramp = (np.add.outer(np.arange(512), np.arange(512)) % 7 - 3).astype(np.float32)
    add("dense-512x512-f32-pagealigned", "a 1 MiB section: starts on a 4096-byte boundary",
        [tensor("A", (2, 3), "float32", [dense_tile((0, 0), (2, 3), "float32", np.ones((2, 3)))]),
         tensor("B", (512, 512), "float32", [dense_tile((0, 0), (512, 512), "float32", ramp)])])

    # Format 1.1: signcut weights as binary16 times a power-of-two c_scale
    # (required feature bit 0, signcut_c16).  A 1.0 decoder refuses these
    # files [PRE-4]; a 1.1 decoder reads them.
    def one_c16(name, shape, width, scale, c16=None, description=""):
        rng = rng_for(name)
        add(name, description, [tensor("A", shape, "float32", [signcut_tile_c16(rng, (0, 0), shape, width, 4096, scale, c16)])])

    one_c16("signcut-20x40-w5-c16", (20, 40), 5, 2.0**-3, [65504.0, -1.5, 2.0**-24, 1.0 / 3.0, 1000.0],
            description="1.1: c as binary16 with c_scale 2^-3: the largest binary16, a negative, the smallest "
                        "subnormal, 1/3 rounded")
    one_c16("signcut-1x1-w1-c16-scale2e112", (1, 1), 1, 2.0**112, [65504.0],
            description="1.1: the largest c_scale, 2^112, times 65504: just below the binary32 maximum")
    one_c16("signcut-2x16-w2-c16-scale2e-125", (2, 16), 2, 2.0**-125, [1.0, 2.0**-24],
            description="1.1: the smallest c_scale, 2^-125; c[1] = 2^-149, the smallest binary32 subnormal")
    one_c16("signcut-4x4-w0-c16", (4, 4), 0, 1.0,
            description="1.1: width 0 with a c_scale: empty sections, the feature flag still set")
    rng = rng_for("tiled-signcut-20x40-t8x16-w2-c16mix")

    def c16_mix(r, o, s):
        if (o[0] // 8 + o[1] // 16) % 2 == 0:
            return signcut_tile_c16(r, o, s, 2, 4096, 2.0**-8)
        return signcut_tile(r, o, s, 2, 4096)

    add("tiled-signcut-20x40-t8x16-w2-c16mix", "1.1: a 3x3 grid alternating binary16-c and binary32-c signcut tiles",
        [grid_tensor(rng, "A", (20, 40), (8, 16), c16_mix)])

    # Forward compatibility: a later minor, an unknown optional feature bit and
    # unknown (vendor) keys must all be accepted by a 1.0 decoder.
    base, _ = out["signcut-20x40-w3"]
    out["compat-minor9-optbit5-xkeys"] = (
        _future_compatible(base),
        "minor version 9, optional feature bit 5 and x- vendor keys: a 1.0 decoder ignores them",
    )
    return out


def _future_compatible(base: bytes) -> bytes:
    header = surgery.header(base)
    header["x-lrq-test-note"] = "ignore me"
    header["tensors"][0]["x-lrq-test"] = [1, 2, 3]
    header["tensors"][0]["tiles"][0]["x-lrq-test"] = {"nested": True}
    data = _rebuild(base, header)
    return surgery.edit_preamble(data, minor=9, optional=1 << 5)


# ------------------------------------------------------------------ invalid vectors

def _rebuild(data: bytes, header: dict, payloads=None, *, fix_offsets=True, fix_crcs=True) -> bytes:
    """A file of ``header`` and ``payloads`` (default: ``data``'s own sections) laid out again."""
    if payloads is None:
        payloads = surgery.payloads(data)
    return surgery.assemble(header, list(payloads), fix_offsets=fix_offsets, fix_crcs=fix_crcs)


def _flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[offset] ^= mask
    return bytes(out)


def invalid_vectors(valid: dict) -> dict:
    """name -> (bytes, rule, error class, description)."""
    sc, _ = valid["signcut-20x40-w3"]
    lp, _ = valid["lplr-17x33-r3-b5x8-g16"]
    lp_planes, _ = valid["lplr-24x40-r5-b1x1-g16"]
    dn, _ = valid["dense-3x5-f32"]
    multi, _ = valid["multi-3tensors-metadata"]
    out = {}

    def add(name, data, rule, error, description):
        out[name] = (data, rule, error, description)

    h = surgery.header(sc)
    sec = surgery.payloads(sc, h)

    add("xpre1-bad-magic", _flip(sc, 1, 0x20), "PRE-1", "FormatError", "magic 'LRQ' changed to 'lRQ'")
    add("xpre2-major-2", surgery.edit_preamble(sc, major=2), "PRE-2", "UnsupportedError", "a newer major version")
    add("xpre3-reserved-nonzero", surgery.edit_preamble(sc, reserved_b=b"\x01" + bytes(11)), "PRE-3", "FormatError",
        "a reserved preamble byte is 1")
    add("xpre4-required-feature", surgery.edit_preamble(sc, required=1), "PRE-4", "UnsupportedError",
        "required feature bit 0, unknown to 1.0")
    add("xpre6-header-too-long", surgery.edit_preamble(sc, header_length=16 * 1024 * 1024 + 1, fix_crc=False), "PRE-6",
        "FormatError", "header_length above 16 MiB")
    add("xpre7-truncated", sc[:-1], "PRE-7", "FormatError", "last byte missing")
    add("xpre7-trailing-byte", surgery.edit_preamble(sc + b"\x00", fix_crc=False), "PRE-7", "FormatError",
        "one byte appended (file_length unchanged)")
    add("xpre7-huge-file-length", surgery.edit_preamble(sc, file_length=(1 << 64) - 1), "PRE-7", "FormatError",
        "file_length 2^64-1 (an overflow trap)")
    add("xpre8-short", container.MAGIC + b"\x01\x00" + bytes(20), "PRE-8", "FormatError", "32 bytes: shorter than the preamble")
    add("xpre9-header-crc", _flip(sc, 70), "PRE-9", "ChecksumError", "a header byte flipped, CRC not updated")

    add("xhdr1-not-a-map", surgery.with_header(msgpack.packb([1, 2, 3])), "HDR-1", "FormatError", "the header is an array")
    add("xhdr2-bin-type", surgery.with_header(msgpack.packb({"tensors": [], "x-blob": b"\x00\x01"}, use_bin_type=True)),
        "HDR-2", "FormatError", "a msgpack bin value")
    add("xhdr3-bad-utf8", surgery.with_header(b"\x82\xa7tensors\x90\xa2x-\xa1\xff"), "HDR-3", "FormatError",
        "a string value that is not UTF-8")
    add("xhdr4-duplicate-key", surgery.with_header(b"\x82\xa7tensors\x90\xa7tensors\x90"), "HDR-4", "FormatError",
        "the key 'tensors' twice")
    add("xhdr5-no-tensors", surgery.with_header(msgpack.packb({"metadata": {}})), "HDR-5", "FormatError", "no 'tensors' key")
    add("xlim3-deep-nesting", surgery.with_header(msgpack.packb({"tensors": [], "x-deep": [[[[[[[[1]]]]]]]]})), "LIM-3",
        "FormatError", "an ignored key nested 9 containers deep")

    hh = surgery.header(sc)
    hh["tensors"][0]["shape"] = hh["tensors"][0]["tile_shape"] = [21, 40]
    add("xsec2-shape-section-mismatch", _rebuild(sc, hh, fix_offsets=False), "SEC-2", "FormatError",
        "shape says 21 rows; section s holds 20")
    hh = surgery.header(sc)
    hh["tensors"][0]["tiles"][0]["sections"][1][1] += 64
    add("xsec3-offset-shifted", _rebuild(sc, hh, fix_offsets=False), "SEC-3", "FormatError",
        "section 'tt' 64 bytes past its canonical offset (a gap)")
    hh = surgery.header(sc)
    hh["tensors"][0]["tiles"][0]["sections"][2][1] = hh["tensors"][0]["tiles"][0]["sections"][1][1]
    add("xsec3-overlapping-sections", _rebuild(sc, hh, fix_offsets=False), "SEC-3", "FormatError",
        "section 's' at the same offset as 'tt'")
    pad_at = h["tensors"][0]["tiles"][0]["sections"][0][1] - 1
    add("xsec5-padding-byte", _flip(sc, pad_at), "SEC-5", "FormatError", "a padding byte before the first section is 1")
    c_off = h["tensors"][0]["tiles"][0]["sections"][0][1]
    add("xsec6-section-crc", _flip(sc, c_off), "SEC-6", "ChecksumError", "a byte of section 'c' flipped")

    nan_c = bytearray(sec[0])
    nan_c[0:4] = struct.pack("<f", float("nan"))
    add("xsc2-nan-coefficient", _rebuild(sc, surgery.header(sc), [bytes(nan_c)] + sec[1:]), "SC-2", "FormatError", "c[0] is NaN")
    hh = surgery.header(sc)
    hh["tensors"][0]["tiles"][0]["width"] = -1
    add("xsc1-negative-width", _rebuild(sc, hh, fix_offsets=False), "SC-1", "FormatError", "width -1")
    tt = bytearray(sec[1])
    # Tt is 3 rows x 40: K16 = 3, the last chunk holds elements 32..47, of which 40..47 are padding:
    # high byte of the word of (row 0, chunk 2), stored at word index 2*3 + 0 = 6 → byte 13.
    tt[13] |= 0x01
    add("xlay1-padding-bit", _rebuild(sc, surgery.header(sc), [sec[0], bytes(tt), sec[2]]), "LAY-1", "FormatError",
        "padding bit (element 40 of row 0) of 'tt' set")

    hl = surgery.header(lp)
    lsec = surgery.payloads(lp, hl)
    # r_codes is a byte matrix (bits_r = 8 allows every u8); l_codes has 5 bits: set code 32.
    lcodes = bytearray(lsec[2])
    lcodes[0] |= 0x20
    add("xlp4-code-too-wide", _rebuild(lp, hl, [lsec[0], lsec[1], bytes(lcodes), lsec[3]]), "LP-4", "FormatError",
        "a 5-bit code of 32 in l_codes")
    nan_scale = bytearray(lsec[1])
    nan_scale[0:2] = np.array([np.nan], dtype="<f2").tobytes()
    add("xlp3-nan-scale", _rebuild(lp, surgery.header(lp), [lsec[0], bytes(nan_scale), lsec[2], lsec[3]]), "LP-3", "FormatError",
        "an r_scales entry is NaN")
    neg_scale = bytearray(lsec[3])
    neg_scale[1] |= 0x80
    add("xlp3-negative-scale", _rebuild(lp, surgery.header(lp), [lsec[0], lsec[1], lsec[2], bytes(neg_scale)]), "LP-3", "FormatError",
        "an l_scales entry has its sign bit set")
    hh = surgery.header(lp)
    hh["tensors"][0]["tiles"][0]["group"] = 24
    add("xlp1-group-not-power-of-two", _rebuild(lp, hh, fix_offsets=False), "LP-1", "FormatError", "group 24")
    hh = surgery.header(lp_planes)
    hh["tensors"][0]["tiles"][0]["scale_l"] = 0.0
    add("xlp2-zero-super-scale", _rebuild(lp_planes, hh), "LP-2", "FormatError", "scale_l 0")

    hd = surgery.header(dn)
    dsec = surgery.payloads(dn, hd)
    inf_value = bytearray(dsec[0])
    inf_value[0:4] = struct.pack("<f", float("inf"))
    add("xdn3-infinite-value", _rebuild(dn, hd, [bytes(inf_value)]), "DN-3", "FormatError", "a dense value is +inf")
    hh = surgery.header(dn)
    hh["tensors"][0]["tiles"][0]["storage"] = "int32"
    add("xdn2-float-tensor-int-storage", _rebuild(dn, hh), "DN-2", "FormatError", "a float32 tensor stored as int32")
    hm = surgery.header(multi)
    msec = surgery.payloads(multi, hm)
    bad_bool = bytearray(msec[-1])
    bad_bool[0] = 2
    add("xdn4-bool-byte-2", _rebuild(multi, hm, msec[:-1] + [bytes(bad_bool)]), "DN-4", "FormatError", "a bool byte of 2")

    hh = surgery.header(multi)
    hh["tensors"][1]["name"] = "W"
    add("xten2-duplicate-name", _rebuild(multi, hh), "TEN-2", "FormatError", "two tensors named 'W'")
    hh = surgery.header(sc)
    hh["tensors"][0]["shape"] = [2**31, 40]
    add("xten3-dim-too-large", _rebuild(sc, hh, fix_offsets=False), "TEN-3", "FormatError", "a dimension of 2^31")
    hh = surgery.header(sc)
    hh["tensors"][0]["panel"] = 100
    add("xten5-panel-not-multiple-of-64", _rebuild(sc, hh), "TEN-5", "FormatError", "panel 100")
    hh = surgery.header(sc)
    hh["tensors"][0]["rel_error"] = float("nan")
    add("xten7-nan-rel-error", _rebuild(sc, hh), "TEN-7", "FormatError", "rel_error NaN")
    hh = surgery.header(sc)
    hh["tensors"][0]["shape"] = [2**31 - 1, 2**17]
    hh["tensors"][0]["tile_shape"] = [1, 1]
    add("xtil3-grid-bomb", _rebuild(sc, hh, fix_offsets=False), "TIL-3", "FormatError",
        "a 2^31-1 x 2^17 shape in 1x1 tiles (2^48 tiles) with one tile listed: must fail fast")
    hh = surgery.header(sc)
    hh["tensors"][0]["tiles"][0]["scheme"] = "zstd"
    add("xtil4-unknown-scheme", _rebuild(sc, hh, fix_offsets=False), "TIL-4", "FormatError", "scheme 'zstd'")

    # Format 1.1, feature signcut_c16 (bit 0).
    c16, _ = valid["signcut-20x40-w5-c16"]
    mix, _ = valid["tiled-signcut-20x40-t8x16-w2-c16mix"]
    h16 = surgery.header(c16)
    sec16 = surgery.payloads(c16, h16)

    def v11(data):
        return surgery.edit_preamble(data, minor=1, required=1)

    add("xpre4-required-feature-bit1", surgery.edit_preamble(c16, required=3), "PRE-4", "UnsupportedError",
        "1.1 file with required bits 0 and 1: bit 1 is unknown to 1.1")
    add("xsc4-c-scale-without-flag", surgery.edit_preamble(c16, required=0), "SC-4", "FormatError",
        "a tile has 'c_scale' but required_features is 0 (minor 1)")
    add("xsc5-flag-without-c-scale", v11(sc), "SC-5", "FormatError",
        "minor 1, required bit 0 set, but no tile has 'c_scale'")
    for what, bits in (("infinite", 0x7C00), ("nan", 0x7E00)):
        bad = bytearray(sec16[0])
        bad[2:4] = struct.pack("<H", bits)
        add(f"xsc2-c16-{what}", v11(_rebuild(c16, surgery.header(c16), [bytes(bad)] + sec16[1:])), "SC-2", "FormatError",
            f"binary16 c[1] is {what}")
    for what, value in (("zero", 0.0), ("nan", float("nan")), ("negative", -0.125), ("not-power-of-two", 0.3),
                        ("too-large", 2.0**113), ("too-small", 2.0**-126), ("integer", 1)):
        hh = surgery.header(c16)
        hh["tensors"][0]["tiles"][0]["c_scale"] = value
        add(f"xsc3-c-scale-{what}", v11(_rebuild(c16, hh)), "SC-3", "FormatError", f"c_scale {value!r}")
    wide = np.frombuffer(sec16[0], dtype="<f2").astype("<f4").tobytes()
    add("xsec2-c16-section-as-float32", v11(_rebuild(c16, surgery.header(c16), [wide] + sec16[1:])), "SEC-2", "FormatError",
        "a tile with 'c_scale' whose c holds 4w bytes (binary32)")
    hm = surgery.header(mix)
    del hm["tensors"][0]["tiles"][0]["c_scale"]
    add("xsec2-c16-section-without-c-scale", v11(_rebuild(mix, hm)), "SEC-2", "FormatError",
        "tile #0 lost its 'c_scale' (other tiles keep theirs): its 2w-byte c is short")
    return out


# ------------------------------------------------------------------ expected results


def _tolerance(record) -> float:
    """Absolute tolerance of [NUM-1] for the worst element of a tensor (float32 output)."""
    worst = 0.0
    for tile in record.tiles:
        if tile.scheme == "signcut":
            c = signcut.coefficients(tile, CRC).astype(np.float64)
            worst = max(worst, float(np.abs(c).sum()))
        elif tile.scheme == "lplr":
            left, right = lplr.factors(tile, record.panel, CRC)
            worst = max(worst, float((np.abs(left) @ np.abs(right)).max()) if left.size and right.size else 0.0)
    return 1e-5 * worst


def expected(data: bytes, name: str):
    """Decoded arrays, tolerances, and a matvec per 2-D float tensor."""
    arrays = ref_decode(data)
    record = container.parse(data, CRC)
    results = {}
    for t in record.tensors:
        array = arrays[t.name]
        entry = {"dtype": str(array.dtype), "shape": list(array.shape)}
        exact = all(tile.scheme == "dense" for tile in t.tiles)
        tol = 0.0 if exact else _tolerance(t)
        entry["abs_tol"] = tol
        if len(t.shape) == 2 and array.dtype.kind == "f":
            rng = SplitMix64(seed_of(name + "/" + t.name + "/x"))
            x = rng.uniform((t.shape[1],), -1, 1).astype(np.float32)
            entry["x"] = x.tolist()
            y = array.astype(np.float64) @ x.astype(np.float64)
            entry["matvec"] = y.tolist()
            entry["matvec_abs_tol"] = float(tol * np.abs(x).sum() + 1e-5 * (np.abs(array.astype(np.float64)) @ np.abs(x)).max())
        results[t.name] = (array, entry)
    return results


# Invalid vectors whose verdict changed with a later minor: "rule" and
# "error" stay those of the version the vector was released for, and
# "later" lists, per version, what a decoder of that version (or newer)
# reports instead.  xpre4-required-feature sets bit 0, unknown to 1.0; 1.1
# assigns bit 0 (signcut_c16), and the file has no tile that uses it.
LATER_VERDICTS = {
    "xpre4-required-feature": {"later": [{"since": "1.1", "rule": "SC-5", "error": "FormatError"}]},
}


def build() -> dict:
    """Every file the suite consists of: relative path -> bytes, plus the manifest."""
    valid = valid_vectors()
    invalid = invalid_vectors(valid)
    files, manifest = {}, {"format": "lrq", "version": f"{container.FORMAT_MAJOR}.{container.FORMAT_MINOR}",
                           "valid": [], "invalid": []}
    for name, (data, description) in sorted(valid.items()):
        files[f"v1/valid/{name}.lrq"] = data
        tensors = []
        for tname, (array, entry) in expected(data, name).items():
            buf = io.BytesIO()
            np.save(buf, array, allow_pickle=False)
            rel = f"v1/valid/{name}.{_safe(tname)}.npy"
            files[rel] = buf.getvalue()
            entry.update(name=tname, expected=rel, expected_sha256=hashlib.sha256(buf.getvalue()).hexdigest())
            tensors.append(entry)
        entry = {"file": f"v1/valid/{name}.lrq", "sha256": hashlib.sha256(data).hexdigest(),
                 "description": description, "tensors": tensors}
        minor = struct.unpack_from("<H", data, 10)[0]
        if minor <= container.FORMAT_MINOR and minor > 0:
            entry["since"] = f"1.{minor}"  # earlier decoders refuse it [PRE-4]
        manifest["valid"].append(entry)
    for name, (data, rule, error, description) in sorted(invalid.items()):
        files[f"v1/invalid/{name}.lrq"] = data
        entry = {"file": f"v1/invalid/{name}.lrq", "sha256": hashlib.sha256(data).hexdigest(),
                 "rule": rule, "error": error, "description": description}
        entry.update(LATER_VERDICTS.get(name, {}))
        manifest["invalid"].append(entry)
    files["manifest.json"] = (json.dumps(manifest, indent=1, sort_keys=False) + "\n").encode()
    return files


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    parser.add_argument("--force", action="store_true", help="overwrite vectors that differ (never for released ones)")
    args = parser.parse_args()
    files = build()
    if args.check:
        bad = []
        for rel, data in files.items():
            path = os.path.join(HERE, rel)
            if not os.path.exists(path) or open(path, "rb").read() != data:
                bad.append(rel)
        print(f"{len(files) - len(bad)}/{len(files)} files reproduced bit for bit")
        for rel in bad:
            print("  differs:", rel)
        return 1 if bad else 0
    changed = [rel for rel, data in files.items()
               if rel.startswith("v1/") and os.path.exists(os.path.join(HERE, rel))
               and open(os.path.join(HERE, rel), "rb").read() != data]
    if changed and not args.force:
        print("refusing to change frozen vectors (use --force only for vectors never released):")
        for rel in changed:
            print("  ", rel)
        return 1
    for rel, data in files.items():
        path = os.path.join(HERE, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)
    print(f"wrote {len(files)} files under {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
