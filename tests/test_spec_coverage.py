"""The specification against its conformance suite, and the rules errata E-1 to E-10 changed.

The rule index (spec §18) is read from ``spec/lrq-format.md`` itself, so a rule
added to the spec without a vector, or a vector citing a rule the spec does not
have, fails here.
"""

from __future__ import annotations

import fractions
import importlib.util
import json
import os
import re
import struct

import numpy as np
import pytest

import lrq
import lrq.reference
from lrq.reference import container, dense, surgery

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SPEC = os.path.join(ROOT, "spec", "lrq-format.md")
ERRATA = os.path.join(ROOT, "spec", "errata.md")
CONFORMANCE = os.path.join(ROOT, "conformance")

with open(SPEC, encoding="utf-8") as _fh:
    SPEC_TEXT = _fh.read()
with open(os.path.join(CONFORMANCE, "manifest.json")) as _fh:
    MANIFEST = json.load(_fh)
ERROR_CLASSES = ("FormatError", "ChecksumError", "UnsupportedError")

_run_spec = importlib.util.spec_from_file_location("conformance_run_for_coverage", os.path.join(CONFORMANCE, "run.py"))
RUN = importlib.util.module_from_spec(_run_spec)
_run_spec.loader.exec_module(RUN)


def rule_index() -> dict:
    """Rule ID -> error-class column of the §18 table."""
    section = SPEC_TEXT[SPEC_TEXT.index("## 18. Rule index"):SPEC_TEXT.index("## Change log")]
    rows = re.findall(r"^\| ([A-Z]+-\d+) \| .* \| (.*) \|$", section, flags=re.M)
    return dict(rows)


def _vector(entry) -> bytes:
    with open(os.path.join(CONFORMANCE, entry["file"]), "rb") as fh:
        return fh.read()


def _cited(entry) -> set:
    return {entry["rule"], *entry.get("also", ())}


def test_rule_index_lists_exactly_the_rules_the_text_defines():
    defined = set(re.findall(r"^\s*-?\s*\*\*\[([A-Z]+-\d+)\]\*\*", SPEC_TEXT, flags=re.M))
    assert defined and defined == set(rule_index())


def test_every_rule_with_an_error_class_has_an_invalid_vector():
    with_class = {rule for rule, cls in rule_index().items() if any(c in cls for c in ERROR_CLASSES)}
    covered = set().union(*(_cited(e) for e in MANIFEST["invalid"]))
    assert len(with_class) >= 55  # 56 in 1.1 as published; [SC-4] has none since E-1
    assert sorted(with_class - covered) == []


def test_manifest_cites_only_rules_of_the_index():
    index = rule_index()
    for entry in MANIFEST["invalid"]:
        cited = _cited(entry) | {v["rule"] for v in entry.get("later", []) + entry.get("errata", [])}
        assert cited <= set(index), entry["file"]
        # the verdict itself is a rule with that error class
        assert entry["error"] in index[entry["rule"]], entry["file"]


def test_since_marks_exactly_the_vectors_a_10_decoder_stops_early_on():
    """"since": "1.1" on an invalid vector iff it needs bit 0 and its verdict is not [PRE-4] nor a "later" one;
    "since": "1.2" on the vectors of the group rules [GRP-*], whose files set bit 1 (shared_factor), which 1.0
    and 1.1 decoders both stop at; "since": "1.3" on the vectors that set bit 2 (signcut_tensor) for a verdict of
    their own, which 1.0 to 1.2 decoders stop at; "since": "1.5" on those that set bit 3 (quant) for a verdict of
    their own, which 1.0 to 1.4 decoders stop at."""
    marked = set()
    for entry in MANIFEST["invalid"]:
        data = _vector(entry)
        required = struct.unpack_from("<Q", data, 16)[0] if len(data) >= 24 else 0
        own_verdict = entry["rule"] != "PRE-4" and "later" not in entry
        needs_15 = bool(required & 8) and own_verdict
        needs_13 = bool(required & 4) and own_verdict and not needs_15
        needs_12 = bool(required & 2) and entry["rule"].startswith("GRP-") and not needs_13  # checked after [PRE-4]
        needs_11 = bool(required & 1) and own_verdict and not needs_12 and not needs_13 and not needs_15
        optional = struct.unpack_from("<Q", data, 24)[0] if len(data) >= 32 else 0
        needs_14 = bool(optional & 1) and entry["rule"].startswith("PRV-")  # earlier decoders ignore the record
        assert ("since" in entry) == (needs_11 or needs_12 or needs_13 or needs_14 or needs_15), entry["file"]
        if needs_15:
            assert entry["since"] == "1.5"
            for earlier in (RUN._decode_reference_10, RUN._decode_reference_13, RUN._decode_reference_14):
                with pytest.raises(lrq.UnsupportedError, match=r"\[PRE-4\]"):
                    earlier(None, data)
        if needs_14:
            assert entry["since"] == "1.4"
            RUN._decode_reference_13(None, data)  # a 1.3 decoder reads the file, record ignored [PRE-5]
        if needs_13:
            assert entry["since"] == "1.3"
            for earlier in (RUN._decode_reference_10, RUN._decode_reference_11, RUN._decode_reference_12):
                with pytest.raises(lrq.UnsupportedError, match=r"\[PRE-4\]"):
                    earlier(None, data)
        if needs_12:
            assert entry["since"] == "1.2"
            for earlier in (RUN._decode_reference_10, RUN._decode_reference_11):
                with pytest.raises(lrq.UnsupportedError, match=r"\[PRE-4\]"):
                    earlier(None, data)
        if needs_11:
            assert entry["since"] == "1.1"
            marked.add(entry["file"])
            with pytest.raises(lrq.UnsupportedError, match=r"\[PRE-4\]"):
                RUN_10(data)
    released_in_11 = {"xsc5-flag-without-c-scale", "xsc2-c16-infinite", "xsc2-c16-nan", "xsec2-c16-section-as-float32",
                      "xsec2-c16-section-without-c-scale"} | {f"xsc3-c-scale-{w}" for w in (
                          "zero", "nan", "negative", "not-power-of-two", "too-large", "too-small", "integer")}
    assert {f"v1/invalid/{n}.lrq" for n in released_in_11} <= marked and len(released_in_11) == 12


def RUN_10(data):
    """The reference decoder restricted to format 1.0, as conformance/run.py runs it: {name: (array, product)}."""
    return RUN._decode_reference_10(None, data)


def test_errata_are_numbered_dated_and_in_the_change_log():
    with open(ERRATA, encoding="utf-8") as fh:
        errata = fh.read()
    numbers = re.findall(r"^### (E-\d+) — ", errata, flags=re.M)
    assert numbers == [f"E-{i}" for i in range(1, len(numbers) + 1)] and len(numbers) >= 10
    for number in numbers:
        body = errata.split(f"### {number} — ")[1].split("\n### ")[0]
        assert "**Date:** 2026-12-02" in body and "**Version:** 1.1" in body, number
        assert f"{number}:" in SPEC_TEXT[SPEC_TEXT.index("## Change log"):], number


# ---------------------------------------------------------------- valid-vector coverage

def _valid_records():
    for entry in MANIFEST["valid"]:
        data = _vector(entry)
        yield entry, data, lrq.reference.parse(data, lrq.reference.crc32c)


def _tiles(record):
    for t in record.tensors:
        for tile in t.tiles:
            yield t, tile


def _panels(rows, k, panel, chunk):
    return -(-(-(-k // 16) * (16 // chunk)) // (panel // chunk)) if rows and k else 0


def _type_bytes(raw: bytes) -> set:
    """Every msgpack type byte used in ``raw`` (one object), found by walking it."""
    fixed = {0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}
    found, pos, pending = set(), 0, 1
    while pending:
        byte = raw[pos]
        found.add(byte)
        pos += 1
        pending -= 1
        if byte <= 0x7F or byte >= 0xE0 or byte in (0xC0, 0xC2, 0xC3):
            continue
        if 0x80 <= byte <= 0x8F or 0x90 <= byte <= 0x9F:
            pending += (byte & 0x0F) * (2 if byte <= 0x8F else 1)
        elif 0xA0 <= byte <= 0xBF:
            pos += byte & 0x1F
        elif byte in fixed:
            pos += fixed[byte]
        elif byte in (0xD9, 0xDA, 0xDB):
            width = {0xD9: 1, 0xDA: 2, 0xDB: 4}[byte]
            pos += width + int.from_bytes(raw[pos:pos + width], "big")
        elif byte in (0xDC, 0xDD, 0xDE, 0xDF):
            width = 2 if byte in (0xDC, 0xDE) else 4
            pending += int.from_bytes(raw[pos:pos + width], "big") * (2 if byte >= 0xDE else 1)
            pos += width
        else:
            raise AssertionError(f"type byte {byte:#04x} in a valid vector's header")
    assert pos == len(raw)
    return found


def test_valid_vectors_cover_every_case_the_first_suite_missed():
    seen = set()
    for entry, data, record in _valid_records():
        if not record.tensors:
            seen.add("empty tensors")
        for t, tile in _tiles(record):
            if tile.scheme == "lplr":
                m, n = tile.shape
                p = tile.params
                if p["bits_r"] >= 5 and _panels(p["rank"], n, t.panel, 4) > 1:
                    seen.add("byte codes over several panels")
                if p["group"] > t.panel:
                    seen.add("group wider than a panel")
            if tile.scheme in ("signcut", "lplr") and t.dtype != "float32":
                seen.add(f"{tile.scheme} in {t.dtype}")
            if tile.scheme == "dense" and container.DTYPES[tile.params["storage"]][1] > container.DTYPES[t.dtype][1]:
                seen.add("storage wider than dtype")
        for t in record.tensors:
            if len(t.shape) == 2 and not container.DTYPES[t.dtype][2] and len(t.tiles) > 1:
                seen.add("tiled 2-D integer tensor")
        header_length = struct.unpack_from("<Q", data, 32)[0]
        raw = data[64:64 + header_length]
        types = _type_bytes(raw)
        if 0xCB in types:
            seen.add("float 64 in the header")
        if types & {0xCF, 0xD3, 0xDB, 0xDD, 0xDF}:  # shortest encoders never need these for a header this small
            seen.add("non-shortest encodings")
        top = surgery.header(data)
        if top["tensors"] and list(top["tensors"][0])[0] != "name":
            seen.add("keys out of writer order")
    wanted = {"empty tensors", "byte codes over several panels", "group wider than a panel", "storage wider than dtype",
              "tiled 2-D integer tensor", "float 64 in the header", "non-shortest encodings", "keys out of writer order"}
    wanted |= {f"{s} in {d}" for s in ("signcut", "lplr") for d in ("float16", "bfloat16", "float64")}
    assert sorted(wanted - seen) == []


# ---------------------------------------------------------------- E-1: "c_scale" without the flag

def _signcut_file() -> bytes:
    with open(os.path.join(CONFORMANCE, "v1/valid/signcut-20x40-w3.lrq"), "rb") as fh:
        return fh.read()


def test_a_10_file_with_a_c_scale_key_decodes_as_without_it_in_both_decoders():
    """[SC-4], [VER-4]: without signcut_c16 the key is unknown and ignored [HDR-9]."""
    base = _signcut_file()
    header = surgery.header(base)
    header["tensors"][0]["tiles"][0]["c_scale"] = 0.3  # not even a valid c_scale: ignored all the same
    data = surgery.assemble(header, surgery.payloads(base))
    want = lrq.reference.decode(base)["A"]
    np.testing.assert_array_equal(lrq.reference.decode(data)["A"], want)
    np.testing.assert_array_equal(RUN_10(data)["A"][0], want)  # run.py pairs each array with its product
    np.testing.assert_allclose(lrq.decode(lrq.loads(data)), want, rtol=0, atol=1e-5 * 3)


# ---------------------------------------------------------------- E-7: values stored wider than the dtype

def _exact_round(value: float, bits: int, min_exp: int, max_finite: float) -> float:
    """``value`` rounded to ``bits`` significant bits (ties to even), exponent >= min_exp, by exact arithmetic."""
    x = fractions.Fraction(value)
    if x == 0:
        return 0.0
    sign = -1 if x < 0 else 1
    x = abs(x)
    e = x.numerator.bit_length() - x.denominator.bit_length()
    while fractions.Fraction(2) ** e > x:
        e -= 1
    while fractions.Fraction(2) ** (e + 1) <= x:
        e += 1
    quantum = fractions.Fraction(2) ** (max(e, min_exp) - bits + 1)
    q, r = divmod(x, quantum)
    if r * 2 > quantum or (r * 2 == quantum and q % 2):
        q += 1
    result = q * quantum
    return sign * (float("inf") if result > max_finite else float(result))


BF16_MAX = float(dense.bfloat16_bits_to_float(np.array([0x7F7F], dtype=np.uint16))[0])


@pytest.mark.parametrize("storage", ["float32", "float64", "float16"])
def test_dense_values_round_once_to_bfloat16(storage):
    rng = np.random.default_rng(12)
    mantissas = rng.integers(0, 1 << 52, 4000)
    exponents = rng.integers(-150, 128, 4000)
    values = np.ldexp(1.0 + mantissas * 2.0**-52, exponents) * rng.choice([-1, 1], 4000)
    ties = np.ldexp(1 + (2 * rng.integers(0, 128, 200) + 1) * 2.0**-8, rng.integers(-120, 120, 200))
    values = np.concatenate([values, ties, ties * (1 + 2.0**-40)])
    with np.errstate(over="ignore", under="ignore"):
        stored = values.astype({"float32": np.float32, "float64": np.float64, "float16": np.float16}[storage])
    stored = stored[np.isfinite(stored)]
    got = dense.to_dtype(stored, storage, "bfloat16")
    assert got.dtype == np.float32
    want = [_exact_round(float(v), 8, -126, BF16_MAX) for v in stored]
    np.testing.assert_array_equal(got.astype(np.float64), np.array(want))


def test_dense_values_round_once_to_float16_and_float32():
    values = np.array([65519.0, 65520.0, 1e6, -1e6, 2.0**-25, 3 * 2.0**-26, 0.1, 1 + 2.0**-11])
    np.testing.assert_array_equal(dense.to_dtype(values, "float64", "float16"),
                                  np.array([65504, np.inf, np.inf, -np.inf, 0, 2.0**-24, 0.1, 1], dtype=np.float16))
    np.testing.assert_array_equal(dense.to_dtype(np.array([1 + 2.0**-24, 1e39]), "float64", "float32"),
                                  np.array([1, np.inf], dtype=np.float32))


def test_both_decoders_deliver_a_bfloat16_tensor_stored_as_float32_rounded():
    values = np.array([[1 + 2.0**-20, 1 + 2.0**-8, 1 + 3 * 2.0**-8, 3.0]], dtype=np.float32)
    tile = container.TileRecord((0, 0), (1, 4), "dense", {"storage": "float32"},
                                {"values": container.make_section("values", values.tobytes(), lrq.reference.crc32c)})
    record = container.TensorRecord("A", (1, 4), "bfloat16", (1, 4), container.DEFAULT_PANEL, [tile])
    data = b"".join(bytes(p) for p in container.serialize([record], None, lrq.reference.crc32c))
    want = np.array([[1.0, 1.0, 1 + 2.0**-6, 3.0]], dtype=np.float32)
    np.testing.assert_array_equal(lrq.reference.decode(data)["A"], want)
    np.testing.assert_array_equal(lrq.decode(lrq.loads(data)), want)
    np.testing.assert_array_equal(lrq.loads(data) @ np.ones(4, dtype=np.float32), want @ np.ones(4))


# ---------------------------------------------------------------- E-5: one verdict per file

def test_section_crc_comes_before_content_in_both_decoders_for_every_byte_of_c():
    """[SEC-9]: any damage inside a section whose CRC is stale is a ChecksumError, never a FormatError."""
    base = _signcut_file()
    c_offset, c_length = surgery.header(base)["tensors"][0]["tiles"][0]["sections"][0][1:3]
    for pos in range(c_offset, c_offset + c_length):
        for value in (0xFF, 0x7F, 0x80):  # 0x7F / 0xFF in a high byte make a NaN or an infinity
            damaged = bytearray(base)
            damaged[pos] = value if base[pos] != value else value ^ 1
            with pytest.raises(lrq.ChecksumError, match=r"\[SEC-6\]"):
                lrq.reference.decode(bytes(damaged))
            with pytest.raises(lrq.ChecksumError, match=r"\[SEC-6\]"):
                lrq.decode(lrq.loads(bytes(damaged)))


# ---------------------------------------------------------------- E-8: tiles outside the domain of [NUM-1]

def _with_payload(base: bytes, index: int, payload: bytes, edit=None) -> bytes:
    header = surgery.header(base)
    if edit:
        edit(header)
    payloads = surgery.payloads(base)
    payloads[index] = payload
    return surgery.assemble(header, payloads)


def _decoded_by_both(data: bytes) -> tuple:
    return lrq.reference.decode(data)["A"], lrq.decode(lrq.loads(data))


def test_a_tile_that_is_not_binary32_safe_is_decoded_not_refused():
    """[NUM-4]: every c = FLT_MAX (M beyond 2^128): both decoders deliver, neither fails nor warns."""
    base = _signcut_file()
    width = surgery.header(base)["tensors"][0]["tiles"][0]["width"]
    data = _with_payload(base, 0, np.full(width, np.finfo(np.float32).max, dtype="<f4").tobytes())
    for decoded in _decoded_by_both(data):
        assert decoded.shape == (20, 40) and decoded.dtype == np.float32


def test_a_subnormal_super_scale_is_decoded_not_refused():
    """[NUM-4]: scale_l = 2^-149 is allowed by [LP-2] but outside the domain; both decoders deliver."""
    with open(os.path.join(CONFORMANCE, "v1/valid/lplr-24x40-r5-b1x1-g16.lrq"), "rb") as fh:
        base = fh.read()
    header = surgery.header(base)
    header["tensors"][0]["tiles"][0]["scale_l"] = 2.0**-149
    data = surgery.assemble(header, surgery.payloads(base))
    reference, library = _decoded_by_both(data)
    assert reference.shape == library.shape == (24, 40)
    assert np.isfinite(reference).all() and np.abs(reference).max() < 2.0**-140


def test_verify_reference_accepts_a_tile_outside_the_domain(tmp_path, capsys):
    """[NUM-4]: a tool comparing the two decoders does not count such a tile as a disagreement."""
    from lrq.cli import main

    base = _signcut_file()
    width = surgery.header(base)["tensors"][0]["tiles"][0]["width"]
    path = tmp_path / "flt-max-c.lrq"
    path.write_bytes(_with_payload(base, 0, np.full(width, np.finfo(np.float32).max, dtype="<f4").tobytes()))
    assert main(["verify", str(path), "--reference"]) == 0
    capsys.readouterr()
    assert not lrq.reference.decoder.binary32_safe(lrq.reference.parse(path.read_bytes(), lrq.reference.crc32c)
                                                   .tensors[0].tiles[0], 4096, lrq.reference.crc32c)
    assert lrq.reference.decoder.binary32_safe(lrq.reference.parse(base, lrq.reference.crc32c).tensors[0].tiles[0],
                                               4096, lrq.reference.crc32c)


def test_every_valid_vector_is_binary32_safe():
    """E-8 changes no frozen verdict: [NUM-1] applies to every tile of every valid vector."""
    for entry, data, record in _valid_records():
        for t, tile in _tiles(record):
            assert lrq.reference.decoder.binary32_safe(tile, t.panel, lrq.reference.crc32c), entry["file"]
