"""The HDF5 plugin's chunk decoder (c_src/hdf5/chunk.c) and encoder
(c_src/hdf5/encode.c) under AddressSanitizer and UBSan: valid chunks of every
scheme decode to the values lrq.decode gives, and every single-byte change,
cut and junk is refused without a sanitizer report; the encoder writes the
streams lrq.encode writes and refuses what it cannot encode cleanly.
c_src/hdf5/check_chunk.c drives both outside HDF5."""

from __future__ import annotations

import struct
import subprocess

import numpy as np
import pytest

import lrq
from c_harness import FLAGS, LINK, ROOT, core_objects, needs_gcc

h5py = pytest.importorskip("h5py", reason="lrq.hdf5 needs h5py (in the test extra)")
import lrq.hdf5  # noqa: E402

PLUGIN = ROOT / "c_src" / "hdf5"


def record(words, stream: bytes) -> bytes:
    return (struct.pack("<I", len(words)) + struct.pack(f"<{len(words)}I", *words)
            + struct.pack("<Q", len(stream)) + stream)


def fingerprint(stream: bytes, chunks: tuple, dtype) -> int:
    """What check_chunk prints for a chunk that decodes: the position-weighted
    byte sum of the chunk's values, the tensor in the leading corner and
    zeros elsewhere."""
    block = lrq.decode(lrq.loads(stream)).astype(dtype)
    values = np.zeros(chunks, dtype)
    values[tuple(slice(0, s) for s in (1,) * (len(chunks) - block.ndim) + block.shape)] = \
        block.reshape((1,) * (len(chunks) - block.ndim) + block.shape)
    data = np.frombuffer(values.tobytes(), np.uint8).astype(np.uint64)
    return int((data * np.arange(1, data.size + 1, dtype=np.uint64)).sum(dtype=np.uint64))


@pytest.fixture(scope="module")
def check_chunk_exe(tmp_path_factory):
    exe = tmp_path_factory.mktemp("check_chunk") / "check_chunk"
    build = subprocess.run(
        ["gcc", *FLAGS, "-I", str(PLUGIN), str(PLUGIN / "check_chunk.c"), str(PLUGIN / "chunk.c"),
         str(PLUGIN / "encode.c"), *core_objects(), "-o", str(exe), *LINK],
        capture_output=True, text=True,
    )
    assert build.returncode == 0 and not build.stderr, build.stderr
    return exe


@pytest.fixture(scope="module")
def check_chunk(check_chunk_exe):
    exe = check_chunk_exe

    def run(records: list) -> list:
        out = subprocess.run([str(exe)], input=b"".join(records), capture_output=True, timeout=600)
        assert out.returncode == 0, out.stderr.decode(errors="replace")
        return [tuple(int(v) for v in line.split()) for line in out.stdout.decode().splitlines()]

    return run


# (chunk shape, the tensor it holds: an edge chunk's part, dtype, scheme, options)
CASES = [
    ((40, 48), (37, 45), np.float32, "signcut", {"width": 20}),
    ((40, 48), (40, 45), np.float64, "signcut", {"width": 20, "c_storage": "float16"}),
    ((40, 48), (37, 48), np.float32, "lplr", {"rank": 6, "bits_l": 2, "bits_r": 5}),
    ((1, 40, 48), (33, 48), np.float64, "dense", {"storage": "bfloat16"}),
    ((2, 3, 8), (2, 3, 5), np.float32, "dense", {"storage": "float16"}),
]


@needs_gcc
@pytest.mark.slow
@pytest.mark.parametrize("chunks,shape,dtype,scheme,options", CASES, ids=[f"{c[3]}-{i}" for i, c in enumerate(CASES)])
def test_the_chunk_decoder_is_clean_under_sanitizers(check_chunk, chunks, shape, dtype, scheme, options):
    a = np.random.default_rng(11).standard_normal(shape).astype(dtype)
    stream = lrq.dumps(lrq.encode(a, scheme, name="chunk", **options))
    words = lrq.hdf5.filter_parameters(dtype, chunks, scheme, **options)
    records = [record(words, stream)]
    for i in range(len(stream)):
        bad = bytearray(stream)
        bad[i] ^= 0xA5
        records.append(record(words, bytes(bad)))
    records += [record(words, stream[:n]) for n in (0, 1, 10, 63, 64, len(stream) // 2, len(stream) - 1)]
    records.append(record(words, stream + b"\0"))
    records.append(record(words[:3], stream))
    results = check_chunk(records)
    assert len(results) == len(records)
    assert results[0] == (0, fingerprint(stream, chunks, dtype))
    refused = [i for i, (rc, _) in enumerate(results[1:], 1) if rc < 0]
    assert refused == list(range(1, len(records)))


# ---------------------------------------------------------------- the encoder


@pytest.fixture(scope="module")
def check_encode(check_chunk_exe):
    def run(records: list) -> list:
        out = subprocess.run([str(check_chunk_exe), "encode"], input=b"".join(records), capture_output=True, timeout=600)
        assert out.returncode == 0, out.stderr.decode(errors="replace")
        results, data = [], out.stdout
        while data:
            rc, length = struct.unpack("<iQ", data[:12])
            results.append((rc, data[12:12 + length]))
            data = data[12 + length:]
        return results

    return run


# (chunk, dtype, scheme, options): what lrq.hdf5.LRQ asks of the plugin
ENCODE_CASES = [
    ((64, 64), np.float32, "signcut", {"bits": 2.0}),
    ((40, 48), np.float64, "signcut", {"bits": 3.0, "c_storage": "float16"}),
    ((40, 48), np.float32, "signcut", {"width": 200}),
    ((1, 40, 48), np.float64, "signcut", {"rel_error": 0.5}),
    ((2, 3, 8), np.float32, "dense", {}),
    ((40, 48), np.float64, "dense", {"bits": 20.0}),
    ((40, 48), np.float32, "dense", {"rel_error": 0.01}),
]


@needs_gcc
@pytest.mark.slow
@pytest.mark.parametrize("chunks,dtype,scheme,options", ENCODE_CASES,
                         ids=[f"{c[2]}-{i}" for i, c in enumerate(ENCODE_CASES)])
def test_the_chunk_encoder_is_clean_under_sanitizers_and_writes_lrq_encodes_bytes(check_encode, chunks, dtype,
                                                                                    scheme, options):
    rng = np.random.default_rng(12)
    a = rng.standard_normal(chunks).astype(dtype)
    tiny = a * 2.0**-140  # signcut weights below float32's range: refused [H5-9]
    words = lrq.hdf5.filter_parameters(dtype, chunks, scheme, seed=5, encoded_by=0, **options)
    bad = a.copy()
    bad.flat[7] = np.nan
    records = [record(words, a.tobytes()), record(words, bad.tobytes()), record(words, a.tobytes()[:-1]),
               record(words, tiny.tobytes()), record(words, np.zeros_like(a).tobytes())]
    results = check_encode(records)
    view = a.reshape(a.shape[1:]) if a.ndim == 3 and a.shape[0] == 1 else a
    assert results[0] == (0, lrq.dumps(lrq.encode(view, scheme, seed=5, name="chunk", **options)))
    assert results[1][0] < 0 and results[2][0] < 0
    if scheme == "signcut":
        assert results[3][0] < 0
    zero = lrq.dumps(lrq.encode(np.zeros_like(view), scheme, seed=5, name="chunk", **options))
    assert results[4] == (0, zero)
