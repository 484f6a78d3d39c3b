"""What Matrix reports when its data cannot be used: a damaged section names
the spec rule, the tensor, the tile and the section; no memory for a decode is
a ResourceError naming the tensor and the size; overflow to infinity in a
dense product is a result, not a warning."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import lrq
from lrq import _native
from lrq import format as lrq_format
from test_amplification import zero_width_signcut


def _damaged(matrix: lrq.Matrix, kind: str, data: bytes) -> lrq.Matrix:
    """``matrix`` with one section replaced in memory (its CRC matching the new bytes)."""
    record = matrix._record
    tile = record.tiles[0]
    sections = dict(tile.sections, **{kind: lrq_format.make_section(kind, data, _native.crc32c)})
    damaged = lrq_format.TileRecord(tile.origin, tile.shape, tile.scheme, tile.params, sections)
    return lrq.Matrix(lrq_format.TensorRecord("W", record.shape, record.dtype, record.tile_shape,
                                              record.panel, [damaged]))


def test_a_damaged_section_names_the_rule_the_tensor_the_tile_and_the_section():
    a = np.random.default_rng(0).standard_normal((20, 30)).astype(np.float32)
    signcut = lrq.encode(a, "signcut", width=3)
    c = bytearray(bytes(signcut._record.tiles[0].sections["c"].data))
    c[0:4] = np.float32(np.inf).tobytes()
    with pytest.raises(lrq.FormatError, match=r"^\[SC-2\] tensor 'W' tile #0 section 'c': c\[0\] is NaN or infinite"):
        _damaged(signcut, "c", bytes(c)) @ np.ones(30, np.float32)
    lplr = lrq.encode(a, "lplr", rank=2)
    scales = bytearray(bytes(lplr._record.tiles[0].sections["l_scales"].data))
    scales[0:2] = np.float16(-1.0).tobytes()
    with pytest.raises(lrq.FormatError, match=r"^\[LP-3\] tensor 'W' tile #0 section 'l_scales': scale #0"):
        lrq.decode(_damaged(lplr, "l_scales", bytes(scales)))


def test_no_memory_for_a_decode_is_a_resource_error_naming_the_tensor(tmp_path):
    path = tmp_path / "huge.lrq"
    path.write_bytes(zero_width_signcut(16384, 16384))
    script = textwrap.dedent(f"""
        import resource
        import lrq
        f = lrq.open({str(path)!r})
        resource.setrlimit(resource.RLIMIT_AS, (768 << 20, resource.RLIM_INFINITY))
        try:
            f["huge"].decode()
        except lrq.ResourceError as exc:
            print("ResourceError:", exc)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ResourceError: tensor 'huge': not enough memory to decode it "
                                 "(its 16384×16384 float32 output alone takes 1,073,741,824 bytes)"), out.stdout


def test_a_dense_product_overflowing_to_infinity_warns_nothing():
    big = lrq.encode(np.full((3, 4), 3.4e38, dtype=np.float32), "dense")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = big @ np.ones(4, np.float32)
        yt = big.T @ np.ones(3, np.float32)
        tiled = lrq.encode(np.full((3, 4), 3.4e38, dtype=np.float32), "dense", tile_shape=(2, 2)) @ np.ones(4, np.float32)
    assert np.isposinf(y).all() and np.isposinf(yt).all() and np.isposinf(tiled).all()
