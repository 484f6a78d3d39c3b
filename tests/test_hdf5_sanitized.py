"""The HDF5 plugin's chunk decoder (c_src/hdf5/chunk.c) under AddressSanitizer
and UBSan: valid chunks of every scheme decode to the values lrq.decode
gives, and every single-byte change, cut and junk is refused without a
sanitizer report.  c_src/hdf5/check_chunk.c drives it outside HDF5."""

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
def check_chunk(tmp_path_factory):
    exe = tmp_path_factory.mktemp("check_chunk") / "check_chunk"
    build = subprocess.run(
        ["gcc", *FLAGS, "-I", str(PLUGIN), str(PLUGIN / "check_chunk.c"), str(PLUGIN / "chunk.c"),
         *core_objects(), "-o", str(exe), *LINK],
        capture_output=True, text=True,
    )
    assert build.returncode == 0 and not build.stderr, build.stderr

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
