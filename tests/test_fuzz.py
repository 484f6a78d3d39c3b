"""Arbitrary and damaged bytes either decode or raise ``lrq.LrqError``.

``load_outcome`` / ``reference_outcome`` return "ok" or the LrqError class and
let any other exception through, which fails the test: no TypeError,
IndexError, struct.error, MemoryError or crash may escape a decoder.  Where
both decoders read the same bytes they must also agree on the outcome.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lrq
from lrq.reference import container
from _support import assemble, load_outcome, reference_outcome, section_entries, small_files, split

FILES = sorted(small_files())
# Cheap examples: five times the profile's count (300 by default).
many = settings(max_examples=5 * settings().max_examples)


def check_decoders(data):
    """Both decoders survive ``data``; a file that loads can be used."""
    outcome = load_outcome(data)
    reference = reference_outcome(data)
    if outcome == "ok":
        matrix = lrq.loads(data)
        dense = lrq.decode(matrix)
        assert dense.shape == matrix.shape
        if matrix.ndim == 2 and dense.dtype.kind == "f":
            x = np.ones(matrix.shape[1], dtype=np.float32)
            assert (matrix @ x).shape == (matrix.shape[0],)
    if outcome is not lrq.ArgumentError:
        # Same verdict, unless lrq.loads refused a file of several tensors
        # (its one ArgumentError on bytes) before looking at their values.
        assert outcome == reference, (outcome, reference)
    return outcome


# ---------------------------------------------------------------- arbitrary bytes


@many
@given(st.binary(max_size=512))
def test_arbitrary_bytes(data):
    assert check_decoders(data) != "ok"


@many
@given(st.binary(max_size=512))
def test_arbitrary_bytes_after_the_magic(tail):
    assert check_decoders(container.MAGIC + tail) != "ok"


@many
@given(st.sampled_from(FILES), st.binary(max_size=600))
def test_a_real_preamble_with_arbitrary_rest(name, tail):
    check_decoders(small_files()[name][:64] + tail)


# ---------------------------------------------------------------- mutated valid files

MUTATION = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "overwrite"]),
    st.floats(0, 1, exclude_max=True),  # position, as a fraction of the length
    st.integers(0, 255),
)


def mutate(data: bytes, mutations) -> bytes:
    buf = bytearray(data)
    for kind, where, value in mutations:
        pos = int(where * len(buf)) if buf else 0
        if kind == "flip" and buf:
            buf[pos] ^= 1 << (value % 8)
        elif kind == "insert":
            buf[pos:pos] = bytes([value])
        elif kind == "delete" and buf:
            del buf[pos]
        elif kind == "overwrite" and buf:
            buf[pos] = value
    return bytes(buf)


@many
@given(st.sampled_from(FILES), st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_valid_files(name, mutations):
    data = mutate(small_files()[name], mutations)
    outcome = check_decoders(data)
    if data != small_files()[name] and name != "multi":
        # Every byte of a file is covered by a CRC or must be zero padding,
        # and the length is recorded: no change goes unnoticed.
        assert outcome != "ok"


@many
@given(st.sampled_from(FILES), st.data())
def test_payload_damage_behind_the_crc(name, data):
    """Random bytes of one section changed, CRCs made right again: the
    decoders must check the values themselves (NaN, padding bits, codes)."""
    header, payloads = split(small_files()[name])
    nonempty = [i for i, p in enumerate(payloads) if p]
    i = data.draw(st.sampled_from(nonempty))
    buf = bytearray(payloads[i])
    for pos, value in data.draw(st.lists(st.tuples(st.integers(0, len(buf) - 1), st.integers(0, 255)), min_size=1, max_size=3)):
        buf[pos] = value
    payloads[i] = bytes(buf)
    check_decoders(assemble(header, payloads))


def leaves(obj, path=()):
    """Paths to the scalar values of a header, section positions excluded."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from leaves(value, path + (key,))
    elif isinstance(obj, list):
        if path and path[-1] == "sections":
            for k, entry in enumerate(obj):
                yield path + (k, 0)  # the kind; offset, length and CRC are recomputed
            return
        for k, value in enumerate(obj):
            yield from leaves(value, path + (k,))
    else:
        yield path


HEADER_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from([0, 1, 2, 15, 16, 17, 64, 100, 4096, 2**31 - 1, 2**31, 2**48 + 1, -1]),
    st.floats(width=32, allow_nan=True, allow_infinity=True),  # the header packs float32
    st.text(max_size=12),
    st.sampled_from(["signcut", "lplr", "dense", "float32", "bool", "int64", "bfloat16", "c", "tt", "values"]),
    st.lists(st.integers(-2, 40), max_size=4),
)


@many
@given(st.sampled_from(FILES), st.data())
def test_header_values_replaced_behind_the_crc(name, data):
    header, payloads = split(small_files()[name])
    paths = list(leaves(header))
    path = data.draw(st.sampled_from(paths))
    value = data.draw(HEADER_VALUES)
    target = header
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    check_decoders(assemble(header, payloads))


# ---------------------------------------------------------------- exhaustive


@pytest.mark.parametrize("name", ["signcut", "lplr", "tiled", "dense_1d"])
def test_every_truncation_and_every_byte_flip_is_caught(name):
    original = small_files()[name]
    assert 300 <= len(original) <= 3000
    for end in range(len(original)):
        assert load_outcome(original[:end]) is lrq.FormatError, end
    for pos in range(len(original)):
        damaged = bytearray(original)
        damaged[pos] ^= 0xFF
        assert load_outcome(bytes(damaged)) not in ("ok", lrq.LrqError), pos


def test_every_byte_flip_agrees_with_the_reference():
    original = small_files()["lplr"]
    for pos in range(len(original)):
        damaged = bytearray(original)
        damaged[pos] ^= 0xFF
        assert load_outcome(bytes(damaged)) is reference_outcome(bytes(damaged)), pos


def test_sections_cover_the_file():
    # The premise of the exhaustive tests: no byte escapes every check.
    for name, data in small_files().items():
        entries = section_entries(split(data)[0])
        assert entries[-1][1] + entries[-1][2] == len(data), name
