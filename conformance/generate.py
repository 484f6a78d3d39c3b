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
bLxR bit widths, gN group, kpN panel, tRxC tile shape, f16/f32/bf16/… storage,
dtX the tensor's dtype where it is not float32 or differs from the storage.

Manifest keys beyond the verdict (conformance/README.md): "since" on an
invalid vector that needs required bit 0 for a verdict other than [PRE-4],
"also" for the further rules a vector exercises, "later" and "errata" for
verdicts a newer minor or an erratum changed.
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
from lrq.reference import dense, layout, lplr, quantized, signcut, surgery

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


def quant_tile(rng, origin, shape, bits, group, scale_bits, panel, exponents=(-6, 2)):
    """A 1.5 quant tile (spec §10.7): random codes, scale codes and row exponents in ``exponents``."""
    m, n = shape
    codes = rng.codes((m, n), bits)
    scale_codes = rng.codes((m, -(-n // group)), scale_bits)
    lo, hi = exponents
    exps = (rng.codes((m,), 8).astype(np.int64) % (hi - lo + 1) + lo).astype(np.int8)
    sigma = float(np.float32(rng.uniform((1,), 0.5, 2.0)[0]))
    params, raw = quantized.params_and_sections(bits, group, scale_bits, (codes, scale_codes, exps, sigma), panel)
    return container.TileRecord(origin, shape, "quant", params, {k: section(k, v) for k, v in raw.items()})


def dense_tile(origin, shape, storage, values):
    return container.TileRecord(origin, shape, "dense", {"storage": storage},
                                {"values": section("values", dense.store(values, storage))})


def tensor(name, shape, dtype, tiles, tile_shape=None, panel=container.DEFAULT_PANEL, rel_error=None, encoder=None):
    return container.TensorRecord(name, tuple(shape), dtype, tuple(tile_shape or shape), panel, tiles, rel_error, encoder)


def privacy_record(mechanism, epsilon, delta, rank, clip) -> dict:
    """A privacy record (spec §10.6) whose floats are binary32 values consistent by [PRV-5] and [PRV-6]."""
    f32 = lambda v: float(np.float32(v))  # noqa: E731
    epsilon, delta, clip = f32(epsilon), f32(delta), f32(clip)
    sensitivity = f32(clip * clip)
    noise_scale = f32(sensitivity * math.sqrt(2 * math.log(1.25 / delta)) / epsilon)
    return {"mechanism": mechanism, "epsilon": epsilon, "delta": delta, "rank": rank, "clip": clip,
            "sensitivity": sensitivity, "noise_scale": noise_scale, "library": "lrq conformance"}


def file_bytes(tensors, metadata=None, groups=()) -> bytes:
    return b"".join(bytes(p) for p in container.serialize(tensors, metadata, CRC, groups))


def signcut_group(rng, name, members, n, width, panel=container.DEFAULT_PANEL):
    """A 1.2 signcut group (spec §10.4): one T and c, an S per (tensor name, rows) of ``members``."""
    shared = {"c": section("c", rng.uniform((width,), 0.05, 1.0).astype("<f4").tobytes()),
              "tt": section("tt", layout.pack_interleaved(rng.bits((width, n)), 1, panel).tobytes())}
    tensors = []
    for tname, m in members:
        sections = dict(shared, s=section("s", layout.pack_interleaved(rng.bits((m, width)), 1, panel).tobytes()))
        tile = container.TileRecord((0, 0), (m, n), "signcut", {"width": width}, sections)
        tensors.append(tensor(tname, (m, n), "float32", [tile], panel=panel))
    return tensors, container.group_of(name, tensors)


def lplr_group(rng, name, members, n, rank, bits_l, bits_r, group, panel=container.DEFAULT_PANEL):
    """A 1.2 lplr group: one R, an L (with its own σ_L) per member."""
    right = _factor(rng, rank, n, bits_r, group)
    tensors = []
    for tname, m in members:
        params, raw = lplr.params_and_sections(rank, bits_l, bits_r, group, _factor(rng, m, rank, bits_l, group), right, panel)
        tile = container.TileRecord((0, 0), (m, n), "lplr", params, {k: section(k, v) for k, v in raw.items()})
        tensors.append(tensor(tname, (m, n), "float32", [tile], panel=panel))
    return tensors, container.group_of(name, tensors)


def signcut_tensor_tile(rng, shape, width, panel):
    """A format 1.3 tensor tile (spec §10.5): c, then one n_a × w sign matrix per mode."""
    sections = {"c": section("c", rng.uniform((width,), 0.05, 1.0).astype("<f4").tobytes())}
    for mode, n in enumerate(shape):
        sections[f"s{mode}"] = section(f"s{mode}", layout.pack_interleaved(rng.bits((n, width)), 1, panel).tobytes())
    return container.TileRecord((0,) * len(shape), tuple(shape), "signcut", {"width": width}, sections)


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

    # Added with errata E-1 to E-9 (2026-12-02): coverage the first suite lacked.
    add("empty-no-tensors", "an empty 'tensors' array: no sections, the file ends with its header", [])
    one_lplr("lplr-20x200-r3-b5x6-g16-kp64", (20, 200), 3, 5, 6, 16, 64,
             description="byte codes spanning four panels of 64 (r_codes: 52 chunks of 4)")
    one_lplr("lplr-6x300-r4-b2x3-g128-kp64", (6, 300), 4, 2, 3, 128, 64,
             description="scale groups of 128, wider than the panel of 64: a group spans two panels")

    def one_factored(name, dtype, make_tile, shape, description):
        rng = rng_for(name)
        add(name, description, [tensor("A", shape, dtype, [make_tile(rng, (0, 0), shape)])])

    for dt in ("f16", "bf16", "f64"):
        dtype = {"f16": "float16", "bf16": "bfloat16", "f64": "float64"}[dt]
        one_factored(f"signcut-12x20-w6-dt{dt}", dtype, lambda r, o, s: signcut_tile(r, o, s, 6, 4096), (12, 20),
                     f"signcut tile of a {dtype} tensor (delivered as {'float32' if dt == 'bf16' else dtype})")
        one_factored(f"lplr-10x18-r3-b2x5-g16-dt{dt}", dtype, lambda r, o, s: lplr_tile(r, o, s, 3, 2, 5, 16, 4096),
                     (10, 18), f"lplr tile of a {dtype} tensor (delivered as {'float32' if dt == 'bf16' else dtype})")

    # Storage wider than the dtype: the value is the stored one rounded once to
    # the dtype [NUM-2], ties to even, an infinity beyond its range.
    wider = {
        "dense-2x4-dtbf16-f32": ("bfloat16", "float32", [1 + 2.0**-20, 1 + 2.0**-8, 1 + 3 * 2.0**-8, -3.1,
                                                        3.4e38, -2.0**-140, 2.0**-149, 1e-40]),
        "dense-2x4-dtbf16-f64": ("bfloat16", "float64", [1 + 2.0**-8 + 2.0**-30, 1 + 2.0**-8, -1e300 / 1e262,
                                                        0.1, 3.3961e38, 2.0**-134 * 1.5, -2.0**-150, 7.0]),
        "dense-2x4-dtf16-f64": ("float16", "float64", [65519.0, 65520.0, 1e6, -1e6, 2.0**-25, 3 * 2.0**-26,
                                                      0.1, -2.0**-14]),
        "dense-2x4-dtf32-f64": ("float32", "float64", [1 + 2.0**-24, 1 + 3 * 2.0**-24, 0.1, 1e39,
                                                      -1e-46, 2.0**-150 * 3, 1 / 3, -2.5]),
    }
    for name, (dtype, storage, values) in wider.items():
        add(name, f"a {dtype} tensor stored as {storage}: values round once to {dtype}, infinities included",
            [tensor("A", (2, 4), dtype, [dense_tile((0, 0), (2, 4), storage, np.array(values).reshape(2, 4))])])
    rng = rng_for("dense-5x7-t2x3-i16")
    ints = np.array([rng.next() >> 48 for _ in range(35)], dtype=np.uint16).view(np.int16).reshape(5, 7)
    add("dense-5x7-t2x3-i16", "a 2-D int16 tensor in a 3x3 grid of dense tiles with short edge tiles",
        [tensor("A", (5, 7), "int16", [dense_tile(o, sh, "int16", ints[o[0]:o[0] + sh[0], o[1]:o[1] + sh[1]])
                                        for o, sh in container.tile_grid((5, 7), (2, 3))], tile_shape=(2, 3))])

    # Any msgpack encoding of a permitted value [HDR-11], keys in any order
    # [HDR-13], float 64 values that round to binary32 [HDR-8].
    base, _ = out["signcut-20x40-w5-c16"]
    hh = surgery.header(base)
    hh["tensors"][0]["tiles"][0]["c_scale"] = 2.0**-3 * (1 + 2.0**-30)  # rounds to 2^-3 [HDR-8]
    out["compat-header-wide-encodings-c16"] = (
        _rebuild(base, hh, minor=1, required=1, pack=pack_wide),
        "1.1: every int, str, array and map in its widest msgpack encoding, floats as float 64; c_scale "
        "0.125*(1+2^-30) rounds to 2^-3 [HDR-8]",
    )
    base, _ = out["lplr-18x21-r19-b2x6-g16-kp64"]
    hh = _reversed_keys(surgery.header(base))
    hh["tensors"][0]["tiles"][0]["scale_l"] *= 1 + 2.0**-40  # float 64, rounds back to the binary32 value
    out["compat-header-keys-reversed-f64"] = (
        _rebuild(base, hh, single_float=False),
        "every map's keys in reverse writer order, floats as float 64 (scale_l a float 64 just above its binary32 value)",
    )

    # Format 1.2: groups sharing a right factor (required feature bit 1,
    # shared_factor; spec §10.4).  Decoders of 1.0 and 1.1 refuse these [PRE-4].
    rng = rng_for("group-signcut-3members-40cols-w20")
    members, grp = signcut_group(rng, "attn", [("q", 20), ("k", 5), ("v", 33)], 40, 20)
    out["group-signcut-3members-40cols-w20"] = (
        file_bytes(members + [tensor("bias", (3,), "float32", [dense_tile((0,), (3,), "float32", np.array([0.5, -1, 2]))])],
                   None, [grp]),
        "1.2: a signcut group of three members (20, 5 and 33 rows; one not a multiple of 16) sharing T and c, "
        "and a tensor outside the group")
    rng = rng_for("groups-lplr-b5x3-and-signcut-kp64")
    lp_members, lp_group = lplr_group(rng, "mlp", [("gate", 17), ("up", 24)], 33, 3, 5, 3, 16, panel=64)
    sc_members, sc_group = signcut_group(rng, "qk", [("q", 4), ("k", 18)], 70, 9, panel=64)
    out["groups-lplr-b5x3-and-signcut-kp64"] = (
        file_bytes([sc_members[0]] + lp_members + [sc_members[1]], None, [lp_group, sc_group]),
        "1.2: two groups, lplr (byte codes for L, bit-planes for R, a σ_L per member) and signcut, panel 64, "
        "their members interleaved in 'tensors'")

    # Format 1.4: private releases (optional feature bit 0, private_release;
    # spec §10.6).  Decoders of earlier minors ignore the bit and the record
    # [PRE-5], [HDR-9] and decode the same values.
    rng = rng_for("private-complex-24x24-r2-lplr")
    release = tensor("cov", (24, 24), "float32", [lplr_tile(rng, (0, 0), (24, 24), 2, 8, 8, 16, 4096)], rel_error=0.0)
    release.privacy = privacy_record("complex-gaussian", 0.5, 1e-5, 2, 1.0)
    out["private-complex-24x24-r2-lplr"] = (
        file_bytes([release]),
        "1.4: a rank-2 release of the complex Gaussian mechanism stored as an lplr tile, with its privacy record")
    rng = rng_for("private-real-6x6-r1-dense-and-plain")
    plain = tensor("bias", (3,), "float32", [dense_tile((0,), (3,), "float32", np.array([1.0, -2.0, 0.25]))])
    release = tensor("gram", (6, 6), "float64", [dense_tile((0, 0), (6, 6), "float64", rng.uniform((6, 6), -3, 3))])
    release.privacy = privacy_record("real-gaussian", 0.125, 1e-9, 1, 0.75)
    out["private-real-6x6-r1-dense-and-plain"] = (
        file_bytes([plain, release]),
        "1.4: a dense float64 release of the real Gaussian mechanism (clip 0.75) after a tensor without a record")
    base, _ = out["private-complex-24x24-r2-lplr"]
    out["compat-privacy-key-without-flag"] = (
        surgery.edit_preamble(base, minor=0, optional=0),
        "a 'privacy' key in a file that does not set private_release: an unknown key, ignored [PRV-9]")
    # Format 1.3: signcut tiles of tensors of order 3 to 8 (required feature
    # bit 2, signcut_tensor; spec §10.5).  Decoders of 1.0 to 1.2 refuse these [PRE-4].
    rng = rng_for("tensor-signcut-5x6x7-w9")
    add("tensor-signcut-5x6x7-w9", "1.3: a 3-D signcut tensor, nine terms",
        [tensor("T", (5, 6, 7), "float32", [signcut_tensor_tile(rng, (5, 6, 7), 9, 4096)])])
    rng = rng_for("tensor-signcut-3x17x2x5-w20-kp64-mixed")
    add("tensor-signcut-3x17x2x5-w20-kp64-mixed",
        "1.3: a 4-D signcut tensor (a mode of 17 rows, 20 terms: two 16-term chunks), panel 64, beside a "
        "2-D signcut matrix and a dense vector",
        [tensor("conv", (3, 17, 2, 5), "float32", [signcut_tensor_tile(rng, (3, 17, 2, 5), 20, 64)], panel=64),
         tensor("W", (9, 12), "float32", [signcut_tile(rng, (0, 0), (9, 12), 4, 4096)]),
         tensor("b", (3,), "float32", [dense_tile((0,), (3,), "float32", np.array([1.0, -2.0, 0.25]))])])
    rng = rng_for("tensor-signcut-2x3x4-w0-f64")
    add("tensor-signcut-2x3x4-w0-f64", "1.3: a float64 3-D signcut tensor with no terms: it decodes to zeros",
        [tensor("Z", (2, 3, 4), "float64", [signcut_tensor_tile(rng, (2, 3, 4), 0, 4096)])])

    # Format 1.5, feature quant (bit 3): quantized matrices [QT-*].
    for name, shape, bits, group, scale_bits, panel, exponents, description in (
        ("quant-20x40-b2-g16-t6", (20, 40), 2, 16, 6, 4096, (-6, 2),
         "1.5: 2-bit codes on two bit-planes, 6-bit scale codes (3 per row: 60 codes, 45 bytes)"),
        ("quant-17x70-b4-g32-t4-kp64", (17, 70), 4, 32, 4, 64, (-3, 0),
         "1.5: 4 bit-planes across two panels of 64, a short row tile of one row, 4-bit scale codes"),
        ("quant-9x33-b1-g16-t7", (9, 33), 1, 16, 7, 4096, (-2, 1),
         "1.5: 1-bit codes (one plane), 7-bit scale codes straddling bytes, a group of one column"),
        ("quant-12x20-b8-g64-t8-dtf64", (12, 20), 8, 64, 8, 4096, (-24, 7),
         "1.5: byte codes, one 8-bit scale code per row, the extreme row exponents -24 and 7"),
    ):
        rng = rng_for(name)
        dtype = "float64" if name.endswith("dtf64") else "float32"
        add(name, description, [tensor("Q", shape, dtype, [quant_tile(rng, (0, 0), shape, bits, group, scale_bits, panel,
                                                                       exponents)], panel=panel)])
    rng = rng_for("tiled-quant-signcut-40x24-t16x24")
    add("tiled-quant-signcut-40x24-t16x24",
        "1.5: row bands of 16 rows with different schemes and code widths: quant 3 bits, signcut, quant 1 bit",
        [tensor("W", (40, 24), "float32", [quant_tile(rng, (0, 0), (16, 24), 3, 16, 6, 4096),
                                           signcut_tile(rng, (16, 0), (16, 24), 5, 4096),
                                           quant_tile(rng, (32, 0), (8, 24), 1, 32, 5, 4096)], tile_shape=(16, 24))])

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


def pack_wide(obj) -> bytes:
    """msgpack with the widest encoding of every value: uint/int 64, float 64, str/array/map 32 [HDR-11]."""
    if isinstance(obj, bool) or obj is None:
        return msgpack.packb(obj)
    if isinstance(obj, int):
        return struct.pack(">BQ", 0xCF, obj) if obj >= 0 else struct.pack(">Bq", 0xD3, obj)
    if isinstance(obj, float):
        return struct.pack(">Bd", 0xCB, obj)
    if isinstance(obj, str):
        raw = obj.encode()
        return struct.pack(">BI", 0xDB, len(raw)) + raw
    if isinstance(obj, list):
        return struct.pack(">BI", 0xDD, len(obj)) + b"".join(pack_wide(v) for v in obj)
    if isinstance(obj, dict):
        return struct.pack(">BI", 0xDF, len(obj)) + b"".join(pack_wide(k) + pack_wide(v) for k, v in obj.items())
    raise TypeError(type(obj))


def _reversed_keys(obj):
    """The same header with the keys of every map in reverse order."""
    if isinstance(obj, dict):
        return {k: _reversed_keys(obj[k]) for k in reversed(list(obj))}
    if isinstance(obj, list):
        return [_reversed_keys(v) for v in obj]
    return obj


# ------------------------------------------------------------------ invalid vectors

def _rebuild(data: bytes, header: dict, payloads=None, *, fix_offsets=True, fix_crcs=True, **assemble) -> bytes:
    """A file of ``header`` and ``payloads`` (default: ``data``'s own sections) laid out again."""
    if payloads is None:
        payloads = surgery.payloads(data)
    return surgery.assemble(header, list(payloads), fix_offsets=fix_offsets, fix_crcs=fix_crcs, **assemble)


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

    def add(name, data, rule, error, description, also=()):
        out[name] = (data, rule, error, description, list(also))

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
    add("xsc4-c-scale-without-flag", surgery.edit_preamble(c16, required=0), "SEC-2", "FormatError",
        "required_features is 0 (minor 1), so the tile's 'c_scale' is an unknown key [SC-4] and its 2w-byte c "
        "is short of the 4w bytes of binary32 weights", also=["SC-4"])
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
    hh = surgery.header(c16)
    hh["tensors"][0]["tiles"][0]["c_scale"] = 2.0**-3 * (1 + 2.0**-20)
    add("xhdr8-c-scale-f64-not-power-of-two", v11(_rebuild(c16, hh, single_float=False)), "SC-3", "FormatError",
        "c_scale a float 64 of 0.125*(1+2^-20): binary32 keeps the 2^-20, so it is no power of two", also=["HDR-8"])

    # Format 1.2, feature shared_factor (bit 1): groups [GRP-*].
    grp, _ = valid["group-signcut-3members-40cols-w20"]

    def group_edit(edit, payloads=None):
        hh = surgery.header(grp)
        edit(hh)
        return _rebuild(grp, hh, payloads, minor=2, required=2)

    shared_last = surgery.payloads(grp)
    add("xgrp5-shared-section-missing", group_edit(lambda hh: hh["groups"][0]["sections"].pop(), shared_last[:-1]),
        "GRP-5", "FormatError", "the group lists only its 'c' section: the shared 'tt' is missing")
    add("xgrp6-member-wrong-columns", group_edit(lambda hh: hh["tensors"][1].update(shape=[5, 41], tile_shape=[5, 41])),
        "GRP-6", "FormatError", "member 'k' has 41 columns, its group 40")
    add("xgrp4-member-not-a-tensor", group_edit(lambda hh: hh["groups"][0]["members"].append("o")), "GRP-4",
        "FormatError", "the group names a member 'o' that is no tensor of the file")
    add("xgrp7-member-scheme", group_edit(lambda hh: hh["tensors"][0]["tiles"][0].update(scheme="lplr")), "GRP-7",
        "FormatError", "member 'q' has an lplr tile in a signcut group")
    add("xgrp8-flag-without-groups", group_edit(lambda hh: hh.pop("groups"), shared_last[:-2]), "GRP-8", "FormatError",
        "shared_factor set, no 'groups' key")
    add("xgrp1-group-name-empty", group_edit(lambda hh: hh["groups"][0].update(name="")), "GRP-1", "FormatError",
        "the group's name is the empty string")
    add("xgrp2-group-scheme-dense", group_edit(lambda hh: hh["groups"][0].update(scheme="dense")), "GRP-2",
        "FormatError", "a group of scheme 'dense': only signcut and lplr factors are shared")
    add("xgrp3-group-columns-zero", group_edit(lambda hh: hh["groups"][0].update(columns=0)), "GRP-3", "FormatError",
        "the group's 'columns' is 0")
    add("xpre4-required-feature-bit2", surgery.edit_preamble(grp, required=6), "PRE-4", "UnsupportedError",
        "1.2 file with required bits 1 and 2: bit 2 is unknown to 1.2")

    # Format 1.4, optional feature private_release (bit 0): privacy records [PRV-*].
    prv, _ = valid["private-complex-24x24-r2-lplr"]

    def privacy_edit(edit):
        hh = surgery.header(prv)
        edit(hh["tensors"][0]["privacy"], hh)
        return _rebuild(prv, hh, minor=4, optional=1)

    def with_value(key, value):
        return lambda p, hh: p.__setitem__(key, value)

    add("xprv1-record-not-a-map", privacy_edit(lambda p, hh: hh["tensors"][0].__setitem__("privacy", "dp")), "PRV-1",
        "FormatError", "'privacy' is the str 'dp'")
    add("xprv1-noise-seed-stored", privacy_edit(with_value("seed", 1234)), "PRV-1", "FormatError",
        "the privacy record holds a 'seed': a record never holds the noise or its seed")
    add("xprv2-unknown-mechanism", privacy_edit(with_value("mechanism", "laplace")), "PRV-2", "FormatError",
        "mechanism 'laplace'")
    add("xprv3-epsilon-missing", privacy_edit(lambda p, hh: p.pop("epsilon")), "PRV-3", "FormatError",
        "the record has no 'epsilon'", also=["HDR-7"])
    add("xprv3-epsilon-one", privacy_edit(with_value("epsilon", 1.0)), "PRV-3", "FormatError",
        "epsilon 1.0: the Gaussian calibration needs epsilon < 1")
    add("xprv3-delta-zero", privacy_edit(with_value("delta", 0.0)), "PRV-3", "FormatError", "delta 0.0")
    add("xprv4-rank-above-size", privacy_edit(with_value("rank", 25)), "PRV-4", "FormatError",
        "rank 25 for a 24x24 release")
    oblong = tensor("cov", (24, 23), "float32", [lplr_tile(SplitMix64(seed_of("xprv4-release-not-square")), (0, 0),
                                                          (24, 23), 2, 8, 8, 16, 4096)])
    oblong.privacy = privacy_record("complex-gaussian", 0.5, 1e-5, 2, 1.0)
    add("xprv4-release-not-square", file_bytes([oblong]), "PRV-4", "FormatError", "a 24x23 tensor with a privacy record")
    add("xprv5-sensitivity-not-clip-squared", privacy_edit(with_value("sensitivity", 0.5)), "PRV-5", "FormatError",
        "clip 1.0 and sensitivity 0.5")
    add("xprv6-noise-scale-too-small", privacy_edit(lambda p, hh: p.update(noise_scale=float(np.float32(p["noise_scale"] / 2)))),
        "PRV-6", "FormatError", "noise_scale half of what epsilon, delta and the sensitivity call for")
    add("xprv7-library-empty", privacy_edit(with_value("library", "")), "PRV-7", "FormatError", "library ''")
    add("xprv8-flag-without-record", privacy_edit(lambda p, hh: hh["tensors"][0].pop("privacy")), "PRV-8",
        "FormatError", "private_release set, no tensor has a 'privacy' record")
    # Format 1.3, feature signcut_tensor (bit 2): tensor tiles [TNS-*].
    tns, _ = valid["tensor-signcut-5x6x7-w9"]
    tns_sec = surgery.payloads(tns)

    def tensor_edit(edit=None, payloads=None, **preamble):
        hh = surgery.header(tns)
        if edit is not None:
            edit(hh)
        return _rebuild(tns, hh, payloads, **{"minor": 3, "required": 4, **preamble})

    add("xpre4-required-feature-bit3", surgery.edit_preamble(tns, required=12), "PRE-4", "UnsupportedError",
        "1.3 file with required bits 2 and 3: bit 3 is unknown to 1.3")
    add("xtns1-tensor-tile-without-flag", tensor_edit(minor=0, required=0), "TEN-6", "FormatError",
        "a 3-D tensor with a signcut tile in a file that does not set signcut_tensor: [TEN-6] as in 1.0",
        also=["TNS-1"])
    add("xtns3-flag-without-tensor-tile", surgery.edit_preamble(sc, minor=3, required=4), "TNS-3", "FormatError",
        "signcut_tensor set, but the file's only signcut tile is a matrix's")
    add("xtns2-section-misnamed", tensor_edit(lambda hh: hh["tensors"][0]["tiles"][0]["sections"][2].__setitem__(0, "t1")),
        "SEC-1", "FormatError", "the second sign matrix is named 't1', not 's1'", also=["TNS-2"])
    add("xtns2-mode-missing", tensor_edit(lambda hh: hh["tensors"][0]["tiles"][0]["sections"].pop(), tns_sec[:-1]),
        "SEC-1", "FormatError", "the tile lists 'c', 's0' and 's1': the sign matrix of mode 2 is missing",
        also=["TNS-2"])
    add("xtns2-width-too-small", tensor_edit(lambda hh: hh["tensors"][0]["tiles"][0].__setitem__("width", 8)),
        "SEC-2", "FormatError", "width 8 with the sections of 9 terms", also=["TNS-2"])
    padded = bytearray(tns_sec[1])
    padded[1] |= 0x80  # s0: 5 rows x 9 terms; bit 15 of row 0's first 16-bit word is term 15, padding
    add("xtns2-padding-bit", tensor_edit(None, [tns_sec[0], bytes(padded)] + tns_sec[2:]), "LAY-1", "FormatError",
        "a padding bit (term 15 of row 0) of section 's0' is 1", also=["TNS-2"])
    nan_c = bytearray(tns_sec[0])
    nan_c[4:8] = struct.pack("<f", float("nan"))
    add("xtns2-c-nan", tensor_edit(None, [bytes(nan_c)] + tns_sec[1:]), "SC-2", "FormatError",
        "c[1] of a tensor tile is NaN", also=["TNS-2"])

    # Format 1.5, feature quant (bit 3): quantized matrices [QT-*].
    qt, _ = valid["quant-20x40-b2-g16-t6"]
    qt_sec = surgery.payloads(qt)
    qb, _ = valid["quant-12x20-b8-g64-t8-dtf64"]
    qb_sec = surgery.payloads(qb)

    def quant_edit(base, edit=None, payloads=None, **preamble):
        hh = surgery.header(base)
        if edit is not None:
            edit(hh)
        return _rebuild(base, hh, payloads, **{"minor": 5, "required": 8, **preamble})

    def quant_key(key, value):
        return lambda hh: hh["tensors"][0]["tiles"][0].__setitem__(key, value)

    add("xpre4-required-feature-bit4", surgery.edit_preamble(qt, required=24), "PRE-4", "UnsupportedError",
        "1.5 file with required bits 3 and 4: bit 4 is unknown to 1.5")
    for key, value, what in (("bits", 0, "bits 0"), ("bits", 9, "bits 9"), ("scale_bits", 0, "scale_bits 0"),
                             ("scale_bits", 9, "scale_bits 9"), ("group", 48, "group 48, not a power of two"),
                             ("group", 8, "group 8, below 16"), ("bits", 2.0, "bits the float 2.0")):
        add(f"xqt1-{key}-{str(value).replace('.', 'p')}", quant_edit(qt, quant_key(key, value)), "QT-1", "FormatError",
            f"a quant tile with {what}")
    for what, value in (("zero", 0.0), ("negative", -1.0), ("nan", float("nan")), ("infinite", float("inf")),
                        ("f64-overflow", 1e39), ("integer", 1)):
        add(f"xqt2-scale-{what}", quant_edit(qt, quant_key("scale", value), single_float=what != "f64-overflow"),
            "QT-2", "FormatError", f"super-scale {value!r}")
    q1, _ = valid["quant-9x33-b1-g16-t7"]
    q1_sec = surgery.payloads(q1)
    padded = bytearray(q1_sec[1])  # 9 rows x 3 groups x 7 bits = 189 bits: 3 padding bits in byte 23
    padded[-1] |= 0x80
    add("xqt3-scale-code-padding", quant_edit(q1, None, [q1_sec[0], bytes(padded), q1_sec[2]]), "QT-3", "FormatError",
        "the last of the 3 bits after the last scale code is 1")
    for what, value in (("low", -25), ("high", 8)):
        bad = bytearray(qt_sec[2])
        bad[3] = value & 0xFF
        add(f"xqt4-row-exponent-{what}", quant_edit(qt, None, [qt_sec[0], qt_sec[1], bytes(bad)]), "QT-4",
            "FormatError", f"row 3's exponent is {value}")
    add("xqt5-byte-code-too-wide", quant_edit(qb, quant_key("bits", 7)), "QT-5", "FormatError",
        "8-bit byte codes read as 7-bit ones: a code of 128 or more")
    add("xqt6-quant-without-flag", quant_edit(qt, minor=4, required=0), "QT-6", "FormatError",
        "a quant tile in a file whose required_features does not set bit 3")
    add("xqt6-flag-without-quant", surgery.edit_preamble(sc, minor=5, required=8), "QT-6", "FormatError",
        "quant set, but the file's only tile is a signcut one")
    add("xqt7-quant-3d", quant_edit(qt, lambda hh: (hh["tensors"][0].__setitem__("shape", [20, 40, 1]),
                                                    hh["tensors"][0].__setitem__("tile_shape", [20, 40, 1]))),
        "TEN-6", "FormatError", "a quant tile in a 3-D tensor", also=["QT-7"])
    add("xqt7-quant-int", quant_edit(qt, lambda hh: hh["tensors"][0].__setitem__("dtype", "int32")), "TEN-6",
        "FormatError", "a quant tile in an int32 tensor", also=["QT-7"])
    add("xqt-section-misnamed", quant_edit(qt, lambda hh: hh["tensors"][0]["tiles"][0]["sections"][1].__setitem__(0, "scales")),
        "SEC-1", "FormatError", "the scale codes are named 'scales'")
    short = qt_sec[1][:-1]
    add("xqt-scale-codes-short", quant_edit(qt, None, [qt_sec[0], short, qt_sec[2]]), "SEC-2", "FormatError",
        "section 'scale_codes' one byte short of 60 6-bit codes")
    padded_codes = bytearray(qt_sec[0])
    padded_codes[2 * 16 * 2 + 1] |= 0x80  # plane 0, chunk 2 (elements 32-47) of row 0: bit 15 is element 47, padding
    add("xqt-codes-padding", quant_edit(qt, None, [bytes(padded_codes)] + qt_sec[1:]), "LAY-1", "FormatError",
        "a padding bit (column 47 of row 0) of plane 0 of 'codes' is 1")

    # Added with errata E-1 to E-9 (2026-12-02): a vector for every rule with an error class.
    def edited(base, edit, **assemble):
        hh = surgery.header(base)
        edit(hh)
        return _rebuild(base, hh, **assemble)

    def parent(hh, path):
        """The container that holds the last key of ``path``."""
        for key in path[:-1]:
            hh = hh[key]
        return hh

    def set_key(path, value):
        return lambda hh: parent(hh, path).__setitem__(path[-1], value)

    def drop_key(path):
        return lambda hh: parent(hh, path).__delitem__(path[-1])

    t0, tile0 = ("tensors", 0), ("tensors", 0, "tiles", 0)
    add("xhdr6-metadata-value-not-str", edited(multi, set_key(("metadata", "license"), 1)), "HDR-6", "FormatError",
        "a metadata value is the int 1")
    add("xhdr7-missing-dtype", edited(sc, drop_key(t0 + ("dtype",))), "TEN-4", "FormatError",
        "the tensor map has no 'dtype'", also=["HDR-7"])
    add("xhdr7-width-is-bool", edited(sc, set_key(tile0 + ("width",), True), fix_offsets=False), "SC-1", "FormatError",
        "width is the bool true, not an int", also=["HDR-7"])
    add("xhdr8-scale-f64-rounds-to-zero", edited(lp_planes, set_key(tile0 + ("scale_l",), 1e-50), single_float=False),
        "LP-2", "FormatError", "scale_l a float 64 of 1e-50: it rounds to binary32 0", also=["HDR-8"])
    add("xten1-tensor-not-a-map", surgery.with_header(msgpack.packb({"tensors": [[1, 2]]})), "TEN-1", "FormatError",
        "the element of 'tensors' is an array")
    add("xten4-unknown-dtype", edited(sc, set_key(t0 + ("dtype",), "complex64")), "TEN-4", "FormatError",
        "dtype 'complex64'")
    add("xten6-signcut-in-int-tensor", edited(sc, set_key(t0 + ("dtype",), "int32")), "TEN-6", "FormatError",
        "a signcut tile in an int32 tensor")
    add("xten8-encoder-not-a-map", edited(sc, set_key(t0 + ("encoder",), "lrq")), "TEN-8", "FormatError",
        "encoder is the str 'lrq'")
    add("xtil1-tile-larger-than-shape", edited(sc, set_key(t0 + ("tile_shape",), [21, 40])), "TIL-1", "FormatError",
        "tile_shape [21, 40] for a 20x40 tensor")
    add("xtil2-1d-tensor-tiled", edited(multi, set_key(("tensors", 2, "tile_shape"), [2])), "TIL-2", "FormatError",
        "a 1-D tensor of 4 elements with tile_shape [2]")
    add("xsec1-entry-of-three", edited(sc, lambda hh: hh["tensors"][0]["tiles"][0]["sections"][2].pop(),
                                       fix_offsets=False, fix_crcs=False),
        "SEC-1", "FormatError", "section entry 's' has 3 elements (no CRC)")
    add("xsec4-trailing-zero-bytes", surgery.edit_preamble(sc + bytes(64), file_length=len(sc) + 64), "SEC-4",
        "FormatError", "64 zero bytes after the last section, counted in file_length")
    add("xsec4-section-past-end", surgery.edit_preamble(sc[:-2], file_length=len(sc) - 2), "SEC-4", "FormatError",
        "the file ends 2 bytes into its last section, file_length says so")
    lcodes = bytearray(lsec[2])
    lcodes[3] = 0x01  # l_codes: 17 rows x rank 3 as bytes; byte 3 of row 0's first word is element 3, padding
    add("xlay2-padding-byte", _rebuild(lp, surgery.header(lp), [lsec[0], lsec[1], bytes(lcodes), lsec[3]]), "LAY-2",
        "FormatError", "padding byte (element 3 of row 0) of l_codes is 1")
    add("xdn1-unknown-storage", edited(dn, set_key(tile0 + ("storage",), "float8")), "DN-1", "FormatError",
        "storage 'float8'")
    wide_map = {f"x-{i:02d}": i for i in range(65)}
    add("xlim1-map-65-entries", surgery.with_header(msgpack.packb({"tensors": [], "x-wide": wide_map})), "LIM-1",
        "FormatError", "an ignored map of 65 entries")
    add("xlim2-array-too-long", surgery.with_header(msgpack.packb({"tensors": [], "x-long": [0] * (2**20 + 1)})),
        "LIM-2", "FormatError", "an ignored array of 2^20 + 1 elements")
    add("xlim4-too-many-tensors", surgery.with_header(msgpack.packb({"tensors": [None] * 65537})), "LIM-4",
        "FormatError", "65537 elements in 'tensors'")
    add("xten3-shape-product-overflows", edited(dn, lambda hh: hh["tensors"][0].update(
        shape=[2**31 - 1] * 8, tile_shape=[2**31 - 1] * 8), fix_offsets=False), "TEN-3", "FormatError",
        "shape of 8 dimensions of 2^31-1: the element count overflows 64 bits", also=["LIM-5"])
    add("xlim6-string-too-long", surgery.with_header(msgpack.packb({"tensors": [], "x-text": "a" * 65536})), "LIM-6",
        "FormatError", "an ignored str of 65536 bytes")
    add("xlim7-array-count-beyond-header", surgery.with_header(b"\x81\xa7tensors\xdd\x00\x00\x03\xe8"), "HDR-1",
        "FormatError", "'tensors' declares 1000 elements and the header ends", also=["LIM-7"])

    # Normative orders ([PRE-12], [SEC-9]): two violations, one verdict.
    add("xpre12-reserved-before-required-feature", surgery.edit_preamble(sc, reserved_a=1, required=2), "PRE-3",
        "FormatError", "reserved0 is 1 and required bit 1 is set: [PRE-3] comes first", also=["PRE-12"])
    add("xpre12-file-length-before-header-crc", surgery.edit_preamble(sc, file_length=len(sc) + 1, fix_crc=False),
        "PRE-7", "FormatError", "file_length one too large and the header CRC not updated: [PRE-7] comes first",
        also=["PRE-12"])
    nan_c = bytearray(sec[0])
    nan_c[0:4] = struct.pack("<f", float("nan"))
    add("xsec9-crc-before-content", _rebuild(sc, surgery.header(sc), [bytes(nan_c)] + sec[1:], fix_crcs=False),
        "SEC-6", "ChecksumError", "c[0] is NaN and the CRC of 'c' was not updated: the CRC comes first",
        also=["SEC-9", "SC-2"])
    tiled, _ = valid["tiled-signcut-20x40-t8x16-w2"]
    tsec = surgery.payloads(tiled)
    first_c = bytearray(tsec[0])
    first_c[0:4] = struct.pack("<f", float("nan"))
    damaged = _rebuild(tiled, surgery.header(tiled), [bytes(first_c)] + tsec[1:])
    damaged = _flip(damaged, surgery.header(damaged)["tensors"][0]["tiles"][1]["sections"][0][1])
    add("xsec9-tiles-in-file-order", damaged, "SC-2", "FormatError",
        "tile #0's c[0] is NaN (CRC right) and a byte of tile #1's c is flipped (CRC stale): tile #0 comes first",
        also=["SEC-9", "SEC-6"])
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
        elif tile.scheme == "quant":  # one term per element: M = |x_ref|
            worst = max(worst, float(np.abs(quantized.factor(tile, record.panel, CRC)).max(initial=0.0)))
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
        # A product is defined for finite values; a dense value that rounds to
        # an infinity in its dtype [NUM-2] leaves the tensor without one.
        if len(t.shape) == 2 and array.dtype.kind == "f" and np.isfinite(array).all():
            rng = SplitMix64(seed_of(name + "/" + t.name + "/x"))
            x = rng.uniform((t.shape[1],), -1, 1).astype(np.float32)
            entry["x"] = x.tolist()
            y = array.astype(np.float64) @ x.astype(np.float64)
            entry["matvec"] = y.tolist()
            # A product computed from the factors (float32 arithmetic) need not
            # see the rounding of the decoded array to a type narrower than
            # float32, so that rounding is allowed on top [NUM-1].
            rounding = float(np.finfo(array.dtype).eps / 2) if array.dtype.itemsize < 4 else 0.0
            entry["matvec_abs_tol"] = float(tol * np.abs(x).sum() + (1e-5 + rounding) * (
                np.abs(array.astype(np.float64)) @ np.abs(x)).max())
        results[t.name] = (array, entry)
    return results


# Invalid vectors whose verdict changed with a later minor: "rule" and
# "error" stay those of the version the vector was released for, and
# "later" lists, per version, what a decoder of that version (or newer)
# reports instead.  xpre4-required-feature sets bit 0, unknown to 1.0; 1.1
# assigns bit 0 (signcut_c16), and the file has no tile that uses it.
LATER_VERDICTS = {
    "xpre4-required-feature": {"later": [{"since": "1.1", "rule": "SC-5", "error": "FormatError"}]},
    # 1.2 assigns bit 1 (shared_factor): the file then lacks its 'groups'.
    "xpre4-required-feature-bit1": {"later": [{"since": "1.2", "rule": "GRP-8", "error": "FormatError"}]},
    # 1.3 assigns bit 2 (signcut_tensor): the file then has no tensor tile.
    "xpre4-required-feature-bit2": {"later": [{"since": "1.3", "rule": "TNS-3", "error": "FormatError"}]},
    # 1.5 assigns bit 3 (quant): the file then has no quant tile.
    "xpre4-required-feature-bit3": {"later": [{"since": "1.5", "rule": "QT-6", "error": "FormatError"}]},
}


# Invalid vectors whose verdict an erratum corrected: "rule"/"error" are the
# corrected verdict, "errata" what the text before the erratum named.
ERRATA_VERDICTS = {
    "xsc4-c-scale-without-flag": {"errata": [{"erratum": "E-1", "rule": "SC-4", "error": "FormatError"}]},
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
            entry["since"] = f"1.{minor}"  # earlier decoders refuse it [PRE-4] ...
            if not struct.unpack_from("<Q", data, 16)[0]:
                entry["earlier"] = "decodes"  # ... unless it needs only optional features, which they ignore [PRE-5]
        manifest["valid"].append(entry)
    for name, (data, rule, error, description, also) in sorted(invalid.items()):
        files[f"v1/invalid/{name}.lrq"] = data
        entry = {"file": f"v1/invalid/{name}.lrq", "sha256": hashlib.sha256(data).hexdigest(),
                 "rule": rule, "error": error, "description": description}
        if also:
            entry["also"] = also
        required = struct.unpack_from("<Q", data, 16)[0] if len(data) >= 24 else 0
        optional = struct.unpack_from("<Q", data, 24)[0] if len(data) >= 32 else 0
        if optional & container.PRIVATE_RELEASE and rule.startswith("PRV-"):
            entry["since"] = "1.4"  # earlier decoders ignore the record [PRE-5]; the verdict is a 1.4 one
        if required & container.QUANT and rule != "PRE-4" and name not in LATER_VERDICTS:
            entry["since"] = "1.5"  # earlier decoders stop at bit 3 [PRE-4]; the verdict is a 1.5 one
        elif required & container.SIGNCUT_TENSOR and rule != "PRE-4" and name not in LATER_VERDICTS:
            entry["since"] = "1.3"  # earlier decoders stop at bit 2 [PRE-4]; the verdict is a 1.3 one
        elif required & container.SHARED_FACTOR and rule.startswith("GRP-"):
            entry["since"] = "1.2"  # earlier decoders stop at bit 1 [PRE-4]; the verdict is a 1.2 one
        elif required & container.SIGNCUT_C16 and rule != "PRE-4" and name not in LATER_VERDICTS:
            entry["since"] = "1.1"  # a 1.0 decoder stops at bit 0 [PRE-4]; the verdict is a 1.1 one
        entry.update(LATER_VERDICTS.get(name, {}))
        entry.update(ERRATA_VERDICTS.get(name, {}))
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
