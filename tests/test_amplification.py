"""What a file can cost beyond its size and its decoded output (spec §13,
[LIM-7], [LIM-8]): a tiny file declaring a huge signcut of width 0 costs the
reference decoder its output and a bounded block, and is a ResourceError when
memory runs out or the caller's limit is passed; opening a file of many tiles
builds no per-tile records until they are used, and decoding its dense tiles
or multiplying with them builds none at all and makes a bounded number of
Python calls per tile."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

import lrq
import lrq.reference
from lrq import format as lrq_format
from lrq.reference import decoder


def zero_width_signcut(m: int, n: int) -> bytes:
    tile = lrq_format.TileRecord((0, 0), (m, n), "signcut", {"width": 0},
                                 {kind: lrq_format.make_section(kind, b"", lrq.reference.crc32c)
                                  for kind in ("c", "tt", "s")})
    record = lrq_format.TensorRecord("huge", (m, n), "float32", (m, n), lrq_format.DEFAULT_PANEL, [tile])
    return b"".join(bytes(p) for p in lrq_format.serialize([record], None, lrq.reference.crc32c))


def test_a_tiny_file_declaring_a_huge_output_respects_the_callers_limit():
    data = zero_width_signcut(16384, 16384)
    assert len(data) <= 512
    with pytest.raises(lrq.ResourceError, match=r"tensor 'huge'.*1,073,741,824 bytes.*\[LIM-8\]"):
        lrq.reference.decode(data, max_output_bytes=1 << 29)


def test_running_out_of_memory_is_a_resource_error_not_a_memory_error(tmp_path):
    path = tmp_path / "huge.lrq"
    path.write_bytes(zero_width_signcut(16384, 16384))
    script = textwrap.dedent(f"""
        import resource
        import lrq, lrq.reference
        data = open({str(path)!r}, "rb").read()
        resource.setrlimit(resource.RLIMIT_AS, (768 << 20, resource.RLIM_INFINITY))
        try:
            lrq.reference.decode(data)
        except lrq.ResourceError as exc:
            print("ResourceError:", exc)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ResourceError: tensor 'huge': not enough memory to decode it")


def test_the_reference_decoder_needs_little_beyond_the_output():
    m = n = 4096  # 64 MiB of float32 output from a file of a few hundred bytes
    data = zero_width_signcut(m, n)
    tracemalloc.start()
    try:
        out = lrq.reference.decode(data)["huge"]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == (m, n) and not out.any()
    assert peak <= out.nbytes + decoder.PRODUCT_BLOCK_BYTES + (4 << 20)


def many_tiles(count: int) -> bytes:
    one = np.float32([1.5]).tobytes()
    tiles = [lrq_format.TileRecord(o, s, "dense", {"storage": "float32"},
                                   {"values": lrq_format.make_section("values", one, lrq.io._native.crc32c)})
             for o, s in lrq_format.tile_grid((1, count), (1, 1))]
    record = lrq_format.TensorRecord("t", (1, count), "float32", (1, 1), lrq_format.DEFAULT_PANEL, tiles)
    return b"".join(bytes(p) for p in lrq_format.serialize([record], None, lrq.io._native.crc32c))


def test_opening_a_file_of_many_tiles_builds_no_tile_records(tmp_path):
    count = 40_000
    path = tmp_path / "many.lrq"
    path.write_bytes(many_tiles(count))
    tracemalloc.start()
    try:
        f = lrq.open(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    with f:
        # A record per tile is ~1.5 KB; the list of 40 000 empty slots is 320 KB.
        assert peak < 2 << 20
        tiles = f["t"]._record.tiles
        assert len(tiles) == count and tiles[-1].origin == (0, count - 1)
        assert (tiles[3].origin, tiles[3].shape, tiles[3].scheme) == ((0, 3), (1, 1), "dense")
        assert [t.origin for t in tiles[1:3]] == [(0, 1), (0, 2)]
        np.testing.assert_array_equal(lrq.decode(f["t"]), np.full((1, count), 1.5, dtype=np.float32))


def _python_calls(call) -> int:
    """How many Python-level function calls (and generator resumptions) ``call()`` makes."""
    count = 0

    def profile(frame, event, arg):
        nonlocal count
        count += event == "call"

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return count


def test_decoding_and_products_of_many_dense_tiles_cost_a_few_python_calls_a_tile_and_no_records(tmp_path):
    """The work, not a timing: a file's dense tiles are decoded from the C tile
    table, with a bounded number of Python calls per tile and no tile records."""
    count = 5_000
    path = tmp_path / "many.lrq"
    path.write_bytes(many_tiles(count))
    with lrq.open(path) as f:
        m = f["t"]
        calls = _python_calls(lambda: np.testing.assert_array_equal(
            m.decode(), np.full((1, count), 1.5, dtype=np.float32)))
        assert calls <= 10 * count + 500, calls / count
        calls = _python_calls(lambda: np.testing.assert_array_equal(m @ np.ones(count, np.float32), [1.5 * count]))
        assert calls <= 10 * count + 500, calls / count
        assert all(record is None for record in m._record.tiles._records)
