"""The frozen conformance vectors: both decoders against the manifest.

Vectors are never written here: a missing or changed vector is a failure,
and ``conformance/generate.py --check`` (mirrored below) must reproduce every
committed byte.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os

import numpy as np
import pytest

import lrq
import lrq.reference

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance")


def _module(name):
    spec = importlib.util.spec_from_file_location(f"conformance_{name}", os.path.join(ROOT, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUN = _module("run")
with open(os.path.join(ROOT, "manifest.json")) as _fh:
    MANIFEST = json.load(_fh)
VALID = {os.path.basename(e["file"]): e for e in MANIFEST["valid"]}
INVALID = {os.path.basename(e["file"]): e for e in MANIFEST["invalid"]}


def test_suite_is_large_enough_and_covers_every_scheme():
    assert len(VALID) >= 12 and len(INVALID) >= 20
    schemes = set()
    for entry in MANIFEST["valid"]:
        with open(os.path.join(ROOT, entry["file"]), "rb") as fh:
            record = lrq.reference.parse(fh.read(), lrq.reference.crc32c)
        schemes |= {tile.scheme for t in record.tensors for tile in t.tiles}
    assert schemes == {"signcut", "lplr", "dense", "quant"}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_vector_decodes_in_both_decoders(name):
    assert RUN.check_valid(VALID[name]) == []


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_vector_is_refused_with_its_error_class(name):
    assert RUN.check_invalid(INVALID[name]) == []


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_vector_breaks_the_rule_it_names(name):
    """Each invalid vector must fail on its own rule, not on an earlier one."""
    entry = INVALID[name]
    with open(os.path.join(ROOT, entry["file"]), "rb") as fh:
        data = fh.read()
    rule, _ = RUN.expectation(entry, lrq.FORMAT_VERSION)
    with pytest.raises(lrq.LrqError, match=rf"\[{rule}\]"):
        lrq.reference.decode(data)
    if RUN.applies(entry, (1, 0)):  # the verdict of a 1.0 decoder, when it has one
        rule_10, error_10 = RUN.expectation(entry, (1, 0))
        with pytest.raises(getattr(lrq, error_10), match=rf"\[{rule_10}\]"):
            RUN._decode_reference_10(None, data)


def _small_valid_files():
    out = {}
    for name, entry in sorted(VALID.items()):
        with open(os.path.join(ROOT, entry["file"]), "rb") as fh:
            data = fh.read()
        if len(data) <= 4096:
            out[name] = data
    return out


def _refused_by_both(data: bytes) -> None:
    for decode in (lrq.reference.decode, lambda d: [m.decode() for m in [lrq.loads(d)]] if _one_tensor(d) else _decode_all(d)):
        with pytest.raises(lrq.LrqError):
            decode(data)


def _one_tensor(data):
    try:
        return len(lrq.reference.parse(data, lrq.reference.crc32c, verify_sections=False).tensors) == 1
    except lrq.LrqError:
        return True


def _decode_all(data):
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".lrq") as tmp:
        tmp.write(data)
        tmp.flush()
        with lrq.open(tmp.name) as f:
            return [f[name].decode() for name in f]


def test_every_single_byte_corruption_and_truncation_is_refused():
    """Thousands of damaged copies of the small valid vectors, in both decoders."""
    rng = np.random.default_rng(5)
    checked = 0
    for name, data in _small_valid_files().items():
        positions = rng.choice(len(data), size=min(len(data), 150), replace=False)
        for pos in positions:
            damaged = bytearray(data)
            damaged[pos] ^= int(rng.integers(1, 256))
            _refused_by_both(bytes(damaged))
            checked += 1
        for cut in rng.choice(len(data), size=min(len(data), 40), replace=False):
            _refused_by_both(data[:cut])
            checked += 1
    assert checked >= 2000


def test_generator_reproduces_every_committed_byte():
    generate = _module("generate")
    for rel, data in generate.build().items():
        with open(os.path.join(ROOT, rel), "rb") as fh:
            assert fh.read() == data, f"{rel} is not what generate.py produces"


def _parse_production(data: bytes):
    return lrq.io._parse(data, verify=True)


def _parse_reference(data: bytes):
    return lrq.reference.parse(data, lrq.reference.crc32c)


def _rewrite(record, writer) -> bytes:
    # Groups (1.2): the library's reader resolves member tiles into ordinary
    # ones; marked as members again, they are written with their group.
    member_of = {name: g.name for g in record.groups for name in g.members}
    tensors = [dataclasses.replace(t, tiles=[dataclasses.replace(tile, group=member_of[t.name]) for tile in t.tiles])
               if t.name in member_of else t for t in record.tensors]
    return b"".join(bytes(p) for p in writer(tensors, record.metadata or None, lrq.reference.crc32c, record.groups))


# Vectors whose bytes hold what a writer does not reproduce on purpose: a
# newer minor version, optional feature bits and vendor keys a reader ignores.
_NOT_CANONICAL = {name for name in VALID if name.startswith("compat-")}


@pytest.mark.parametrize("name", sorted(VALID))
@pytest.mark.parametrize("parse", [_parse_production, _parse_reference], ids=["C reader", "reference reader"])
@pytest.mark.parametrize("writer", [lrq.format.serialize, lrq.reference.container.serialize],
                         ids=["library writer", "reference writer"])
def test_writers_reproduce_every_valid_vector_from_either_reader(name, parse, writer):
    """Differential test of the writers: read a vector, write it again, get its bytes."""
    with open(os.path.join(ROOT, VALID[name]["file"]), "rb") as fh:
        data = fh.read()
    rewritten = _rewrite(parse(data), writer)
    if name in _NOT_CANONICAL:
        # The rewrite is the canonical 1.x file of the same content.
        assert lrq.reference.decode(rewritten).keys() == lrq.reference.decode(data).keys()
        for key, value in lrq.reference.decode(rewritten).items():
            np.testing.assert_array_equal(value, lrq.reference.decode(data)[key])
        assert _rewrite(_parse_production(rewritten), lrq.format.serialize) == rewritten
    else:
        assert rewritten == data
