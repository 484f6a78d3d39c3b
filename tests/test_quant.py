"""Scheme "quant" (format 1.5, spec §10.7): b-bit codes with scale codes per (row, group).

What a user relies on: the budget is met and spent, the error is lower than
signcut's from 2 bits up, the file reads back the same in both decoders and
on every CPU path, products are the bits of the single product whatever the
batch, and bad options or files fail with clear errors.
"""

from __future__ import annotations

import numpy as np
import pytest

import lrq
from lrq import _native, datasets
from lrq.errors import ArgumentError, FormatError
from lrq import quantized as writer
from lrq.reference import container, decoder, quantized

from test_kernels import available_paths, isa, threads


def rel(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def gaussian():
    return datasets.gaussian(256, 192, seed=3).astype(np.float32)


@pytest.mark.parametrize("bits", [2.0, 3.0, 4.0, 4.5, 8.0])
def test_budget_is_met_and_spent(gaussian, bits):
    m = lrq.encode(gaussian, "quant", bits=bits)
    assert m.bits_per_entry <= bits
    # Row bands of different code widths spend what a single width would
    # leave (4 bits of codes alone would exceed a budget of 4).
    # (8 bits mixes 4- and 8-bit bands: a band of the four here is 1 bit/entry of the budget.)
    assert m.bits_per_entry >= bits - (1.0 if bits == 8 else 0.25)
    assert {t.scheme for t in m._record.tiles} == {"quant"}


@pytest.mark.parametrize("bits", [3.0, 4.0])
def test_quant_beats_signcut_and_auto_takes_it(gaussian, bits):
    q = rel(lrq.decode(lrq.encode(gaussian, "quant", bits=bits)), gaussian)
    s = rel(lrq.decode(lrq.encode(gaussian, "signcut", bits=bits)), gaussian)
    a = lrq.encode(gaussian, bits=bits)
    assert q < s
    assert a.scheme == "quant" and rel(lrq.decode(a), gaussian) <= q * (1 + 1e-6)


def test_explicit_parameters_and_the_reference_decoder(gaussian):
    m = lrq.encode(gaussian, "quant", bits=5, code_bits=3, group=32, scale_bits=5)
    (tile,) = m._record.tiles
    assert {k: tile.params[k] for k in ("bits", "group", "scale_bits")} == {"bits": 3, "group": 32, "scale_bits": 5}
    data = lrq.dumps(m)
    assert data[10] == 5 and int.from_bytes(data[16:24], "little") == container.QUANT  # minor 5, bit 3 [VER-2]
    record = container.parse(data, _native.crc32c)
    reference = decoder.decode_tensor(record.tensors[0], _native.crc32c)
    # One exact term per element, rounded once to float32 [NUM-1].
    np.testing.assert_array_equal(lrq.decode(m), reference.astype(np.float32))
    assert lrq.dumps(lrq.loads(data)) == data


def test_error_does_not_depend_on_the_input_scale(gaussian):
    errors = [rel(lrq.decode(lrq.encode(gaussian * np.float32(s), "quant", bits=3.5)) / s, gaussian)
              for s in (1.0, 2.0**-100, 2.0**100)]
    assert max(errors) - min(errors) < 1e-6


def test_files_are_byte_identical_across_runs_threads_and_paths(gaussian):
    first = lrq.dumps(lrq.encode(gaussian, "quant", bits=3.0))
    with threads(1):
        assert lrq.dumps(lrq.encode(gaussian, "quant", bits=3.0, threads=1)) == first


@pytest.mark.parametrize("code_bits", [1, 2, 4, 8])
def test_products_are_the_same_bits_on_every_path_batch_and_thread_count(gaussian, code_bits):
    m = lrq.encode(gaussian[:100, :150], "quant", bits=code_bits + 1.5, code_bits=code_bits, group=16)
    dense = lrq.decode(m).astype(np.float64)
    rng = np.random.default_rng(5)
    X = rng.standard_normal((150, 21)).astype(np.float32)
    Y = rng.standard_normal((100, 21)).astype(np.float32)
    results = []
    for path in available_paths():
        for n in (1, 2):
            with isa(path), threads(n):
                results.append((m.matmat(X, dense_fallback=False), m.T.matmat(Y, dense_fallback=False),
                                m @ X[:, 7], m.T @ Y[:, 20], lrq.decode(m)))
    for got in results[1:]:
        for a, b in zip(results[0], got):
            np.testing.assert_array_equal(a, b)
    forward, transposed, single, single_t, decoded = results[0]
    np.testing.assert_array_equal(forward[:, 7], single)  # a column of a wide batch = the product alone
    np.testing.assert_array_equal(transposed[:, 20], single_t)
    np.testing.assert_array_equal(m.matmat(X[:, :5], dense_fallback=False)[:, 3], m @ X[:, 3])
    scale = np.abs(dense) @ np.abs(X)
    assert (np.abs(forward - dense @ X) <= 1e-5 * scale + 1e-30).all()
    assert (np.abs(transposed - dense.T @ Y) <= 1e-5 * (np.abs(dense.T) @ np.abs(Y)) + 1e-30).all()
    fast = m.matvec(X[:, 0], precision="int8")
    assert rel(fast, dense @ X[:, 0]) < 2e-2


@pytest.mark.parametrize("code_bits,group", [(1, 16), (2, 256), (3, 64), (4, 32), (5, 16), (8, 128)])
def test_decode_is_the_product_with_unit_vectors_on_every_path(gaussian, code_bits, group):
    """decode(M)[:, j] is M @ e_j to the bit (signed zeros too), decoded by the
    rows' fast path on every CPU path, thread count and with threads=1."""
    A = gaussian[:37, :181].copy()
    A[:, 16:32] = 0  # whole groups of zeros: zero scales, entries +-0
    m = lrq.encode(A, "quant", bits=code_bits + 6.0, code_bits=code_bits, group=group)
    unit = np.eye(A.shape[1], dtype=np.float32)
    columns = np.stack([m @ unit[j] for j in range(A.shape[1])], axis=1)
    (tile,) = m._record.tiles
    for path in available_paths():
        for n in (1, 2):
            with isa(path), threads(n):
                np.testing.assert_array_equal(lrq.decode(m).view(np.uint32), columns.view(np.uint32))
                one = m._kernel(0, tile).decode(threads=1)
                np.testing.assert_array_equal(one.view(np.uint32), columns.view(np.uint32))


def test_bad_options_are_refused(gaussian):
    with pytest.raises(ArgumentError, match="power of two"):
        lrq.encode(gaussian, "quant", bits=4, group=48)
    with pytest.raises(ArgumentError, match="code_bits"):
        lrq.encode(gaussian, "quant", bits=4, code_bits=9)
    with pytest.raises(ArgumentError, match="unknown option"):
        lrq.encode(gaussian, "quant", bits=4, rank=3)
    with pytest.raises(lrq.BudgetError):
        lrq.encode(gaussian, "quant", bits=0.5)


def test_a_damaged_scale_code_section_is_refused_by_both_decoders(gaussian):
    data = bytearray(lrq.dumps(lrq.encode(gaussian[:9, :33], "quant", bits=24, code_bits=1, group=16, scale_bits=7)))
    record = container.parse(bytes(data), _native.crc32c)
    section = record.tensors[0].tiles[0].sections["row_exponents"]
    data[section.offset] = 100  # outside [-24, 7]; the CRC is now wrong too
    with pytest.raises(lrq.ChecksumError):
        lrq.decode(lrq.loads(bytes(data)))
    from lrq.reference import surgery
    hh = surgery.header(bytes(data))
    fixed = surgery.assemble(hh, surgery.payloads(bytes(data)), minor=5, required=container.QUANT)
    for read in (lambda b: lrq.decode(lrq.loads(b)),
                 lambda b: decoder.decode_tensor(container.parse(b, _native.crc32c).tensors[0], _native.crc32c)):
        with pytest.raises(FormatError, match="QT-4"):
            read(fixed)


def test_scale_codes_pack_least_significant_bit_first():
    codes = np.array([[1, 2], [3, 63]], dtype=np.uint8)
    packed = writer.pack_scale_codes(codes, 6)
    assert quantized.pack_scale_codes(codes, 6) == packed  # the reference's writer (conformance vectors) agrees
    # §10.3 order for one row tile: group 0 rows 0, 1, then group 1 rows 0, 1 -> 1, 3, 2, 63
    stream = 1 | 3 << 6 | 2 << 12 | 63 << 18
    assert packed == stream.to_bytes(3, "little")
    np.testing.assert_array_equal(quantized.unpack_scale_codes(packed, 2, 2, 6), codes)
