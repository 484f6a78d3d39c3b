"""Tests of the C core through ``lrq._native``, and of the C core alone.

The interleaved layout is checked against the element-by-element offset
formula of the format notes (§3), written out again here on purpose, and
against the pure-NumPy reference twin when it is present.  The CRC is checked
against a bitwise CRC-32C written in a few lines below.  ``test_c_core``
compiles ``tests/c/test_core.c`` with the C sources under ASan and UBSan.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from c_harness import needs_gcc, run_sanitized
import lrq
from lrq import _native
from lrq.errors import ArgumentError, FormatError, LrqError

ROOT = pathlib.Path(__file__).resolve().parents[1]
PANELS = (64, 128, 4096)
ISA_NAMES = ("scalar", "sse4.2", "avx2", "avx512", "neon")
# Each path's architecture; within one, a level implies the ones before it.
ISA_ARCH = {"scalar": None, "sse4.2": "x86", "avx2": "x86", "avx512": "x86", "neon": "arm64"}


def runs_instead(forced: str, best: str) -> str:
    """The path the core runs when ``forced`` is asked for on a CPU whose best is
    ``best``: scalar always, a path of best's architecture up to best, else best."""
    if ISA_ARCH[forced] is None or (ISA_ARCH[forced] == ISA_ARCH[best]
                                    and ISA_NAMES.index(forced) <= ISA_NAMES.index(best)):
        return forced
    return best

# derandomize: the same examples on every run and every machine.
SETTINGS = settings(derandomize=True, max_examples=150, deadline=None)
# A random matrix: its shape, element width, panel, and the seed of its values.
LAYOUT_CASES = given(
    rows=st.integers(0, 200),
    k=st.integers(0, 200),
    elem_bits=st.sampled_from([1, 8]),
    panel=st.sampled_from(PANELS),
    seed=st.integers(0, 2**32 - 1),
)


def bitwise_crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C one bit at a time, straight from the definition."""
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def random_elements(rng: np.random.Generator, rows: int, k: int, elem_bits: int) -> np.ndarray:
    high = 2 if elem_bits == 1 else 256
    return rng.integers(0, high, size=(rows, k), dtype=np.uint8)


def layout_by_formula(elements: np.ndarray, elem_bits: int, panel: int) -> bytes:
    """The layout built one element at a time from the word-offset formula."""
    rows, k = elements.shape
    k16 = -(-k // 16)
    wc, ws = (16, 2) if elem_bits == 1 else (4, 4)
    kc = k16 if elem_bits == 1 else 4 * k16
    per_panel = panel // wc
    out = bytearray(rows * kc * ws)
    for i in range(rows):
        t = i // 16
        h_t = min(rows, 16 * t + 16) - 16 * t
        for e in range(k):
            chunk, b = divmod(e, wc)
            p = chunk // per_panel
            c_p = min(kc, (p + 1) * per_panel) - p * per_panel
            offset = (
                rows * (p * per_panel) * ws
                + (16 * t) * c_p * ws
                + (chunk - p * per_panel) * h_t * ws
                + (i % 16) * ws
            )
            value = int(elements[i, e])
            if elem_bits == 1:
                out[offset + b // 8] |= value << (b % 8)
            else:
                out[offset + b] = value
    return bytes(out)


# --------------------------------------------------------------------------
# versions, names, ISA


def test_version_and_error_names():
    assert _native.version_number() == 200
    assert _native.error_name(0) == "LRQ_OK"
    assert _native.error_name(-1) == "LRQ_ERR_FORMAT"
    assert _native.error_name(-4) == "LRQ_ERR_PADDING"
    assert _native.error_name(-21) == "LRQ_ERR_BUFFER_SIZE"
    assert _native.error_name(-60) == "LRQ_ERR_INTERNAL"
    assert _native.error_name(-5) == "unknown error"
    assert _native.error_name(1 << 40) == "unknown error"
    assert _native.isa_name() in ISA_NAMES


# --------------------------------------------------------------------------
# CRC-32C


def test_crc32c_check_value():
    assert _native.crc32c(b"123456789") == 0xE3069283
    assert _native.crc32c(b"") == 0
    assert _native.crc32c(b"", 0x12345678) == 0x12345678


def test_crc32c_buffer_types():
    data = bytes(range(256)) * 3
    expected = _native.crc32c(data)
    for buf in (bytearray(data), memoryview(data), np.frombuffer(data, dtype=np.uint8),
                np.frombuffer(data, dtype=np.float32)):
        assert _native.crc32c(buf) == expected
    with pytest.raises(ArgumentError):
        _native.crc32c("text is not bytes")
    with pytest.raises(ArgumentError):
        _native.crc32c(np.zeros((4, 4), dtype=np.uint8)[:, ::2])
    with pytest.raises(ArgumentError):
        _native.crc32c(data, -1)
    with pytest.raises(ArgumentError):
        _native.crc32c(data, 1 << 32)


@SETTINGS
@given(data=st.binary(max_size=300), split=st.integers(0, 300), start=st.integers(0, 0xFFFFFFFF))
def test_crc32c_matches_bitwise_and_continues(data, split, start):
    split = min(split, len(data))
    one_shot = _native.crc32c(data, start)
    assert one_shot == bitwise_crc32c(data, start)
    assert _native.crc32c(data[split:], _native.crc32c(data[:split], start)) == one_shot


def _crc_in_subprocess(isa: str | None) -> tuple[str, list[int]]:
    code = (
        "import numpy as np; from lrq import _native as n\n"
        "d = np.random.default_rng(7).integers(0, 256, 70001, dtype=np.uint8).tobytes()\n"
        "print(n.isa_name(), *[n.crc32c(d[o:o + m]) for o in range(9) for m in (0, 1, 7, 8, 63, 65537)])\n"
    )
    env = dict(os.environ)
    env.pop("LRQ_FORCE_ISA", None)
    if isa is not None:
        env["LRQ_FORCE_ISA"] = isa
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True, cwd=os.getcwd()).stdout.split()
    return out[0], [int(x) for x in out[1:]]


def test_crc32c_same_on_every_isa_path():
    best, reference = _crc_in_subprocess(None)
    scalar, crcs = _crc_in_subprocess("scalar")
    assert scalar == "scalar"
    assert crcs == reference
    for isa in ISA_NAMES:
        name, crcs = _crc_in_subprocess(isa)
        # A forced path the CPU lacks (or of another architecture) falls back to the best it has.
        assert name == runs_instead(isa, best)
        assert crcs == reference
    name, _ = _crc_in_subprocess("no-such-isa")
    assert name == best


# --------------------------------------------------------------------------
# interleaved layout


@pytest.mark.parametrize("elem_bits", [1, 8])
@pytest.mark.parametrize("panel", [64, 128])
@pytest.mark.parametrize("rows,k", [(1, 1), (3, 17), (16, 64), (17, 65), (33, 150), (5, 300)])
def test_layout_matches_offset_formula(rows, k, elem_bits, panel):
    elements = random_elements(np.random.default_rng(rows * 1000 + k), rows, k, elem_bits)
    packed = _native.pack_interleaved(elements, elem_bits, panel)
    assert packed.tobytes() == layout_by_formula(elements, elem_bits, panel)


@pytest.mark.parametrize(
    "rows,k,elem_bits,row,col,byte,bit",
    [  # the worked examples of spec/lrq-format.md §9.4
        (20, 40, 1, 17, 37, 114, 5),
        (20, 40, 8, 17, 37, 917, None),
        (20, 100, 1, 17, 70, 258, 6),
        (20, 100, 1, 3, 37, 70, 5),
    ],
)
def test_spec_worked_examples(rows, k, elem_bits, row, col, byte, bit):
    elements = np.zeros((rows, k), dtype=np.uint8)
    elements[row, col] = 1 if bit is not None else 0xA5
    packed = _native.pack_interleaved(elements, elem_bits, 64)
    expected = np.zeros_like(packed)
    expected[byte] = 1 << bit if bit is not None else 0xA5
    np.testing.assert_array_equal(packed, expected)


@SETTINGS
@LAYOUT_CASES
def test_round_trip(rows, k, elem_bits, panel, seed):
    elements = random_elements(np.random.default_rng(seed), rows, k, elem_bits)
    packed = _native.pack_interleaved(elements, elem_bits, panel)
    k16 = -(-k // 16)
    assert packed.dtype == np.uint8 and packed.ndim == 1
    assert packed.size == _native.layout_size(rows, k, elem_bits, panel)
    assert packed.size == rows * k16 * (2 if elem_bits == 1 else 16)
    back = _native.unpack_interleaved(packed, rows, k, elem_bits, panel)
    assert back.dtype == np.uint8 and back.shape == (rows, k)
    np.testing.assert_array_equal(back, elements)

    # Padding is zero: read back at the padded width (the same byte count),
    # the columns past k are all zeros.
    padded = _native.unpack_interleaved(packed, rows, 16 * k16, elem_bits, panel)
    assert not padded[:, k:].any()

    if elem_bits == 1:
        signs = _native.unpack_signs_f32(packed, rows, k, panel)
        assert signs.dtype == np.float32 and signs.shape == (rows, k)
        np.testing.assert_array_equal(signs, 1 - 2 * elements.astype(np.float32))
        assert not np.signbit(signs[signs > 0]).any()


@SETTINGS
@given(
    rows=st.integers(1, 40),
    k=st.integers(1, 200).filter(lambda k: k % 16),
    elem_bits=st.sampled_from([1, 8]),
    panel=st.sampled_from(PANELS),
    data=st.data(),
)
def test_unpack_rejects_nonzero_padding(rows, k, elem_bits, panel, data):
    elements = random_elements(np.random.default_rng(rows + 7 * k), rows, k, elem_bits)
    packed = _native.pack_interleaved(elements, elem_bits, panel)
    wide = 16 * -(-k // 16)
    # Set one padding element, then pack at the padded width: that puts a
    # non-zero bit/byte exactly where the narrow matrix has padding.
    row = data.draw(st.integers(0, rows - 1))
    col = data.draw(st.integers(k, wide - 1))
    dirty = np.zeros((rows, wide), dtype=np.uint8)
    dirty[:, :k] = elements
    dirty[row, col] = 1
    bad = _native.pack_interleaved(dirty, elem_bits, panel)
    assert bad.size == packed.size
    with pytest.raises(FormatError, match="LRQ_ERR_PADDING"):
        _native.unpack_interleaved(bad, rows, k, elem_bits, panel)
    if elem_bits == 1:
        with pytest.raises(FormatError, match="LRQ_ERR_PADDING"):
            _native.unpack_signs_f32(bad, rows, k, panel)


def test_unpack_rejects_wrong_length():
    elements = random_elements(np.random.default_rng(3), 5, 40, 1)
    packed = _native.pack_interleaved(elements, 1, 64).tobytes()
    for buf in (packed[:-1], packed + b"\0", b""):
        with pytest.raises(ArgumentError, match="LRQ_ERR_BUFFER_SIZE"):
            _native.unpack_interleaved(buf, 5, 40, 1, 64)
        with pytest.raises(ArgumentError, match="LRQ_ERR_BUFFER_SIZE"):
            _native.unpack_signs_f32(buf, 5, 40, 64)
    # Every bytes-like input works, without a copy on the caller's side.
    for buf in (packed, bytearray(packed), memoryview(packed), np.frombuffer(packed, np.uint8)):
        np.testing.assert_array_equal(_native.unpack_interleaved(buf, 5, 40, 1, 64), elements)


def test_bad_arguments():
    ok = np.zeros((4, 20), dtype=np.uint8)
    for elem_bits, panel in ((2, 64), (1, 0), (1, 96), (8, (1 << 20) + 64), (0, 64)):
        with pytest.raises(ArgumentError, match="LRQ_ERR_ARGUMENT"):
            _native.layout_size(4, 20, elem_bits, panel)
        with pytest.raises(ArgumentError):
            _native.pack_interleaved(ok, elem_bits, panel)
    assert _native.layout_size(4, 20, 1, 1 << 20) == 16
    with pytest.raises(ArgumentError):
        _native.layout_size(1 << 63, 1 << 20, 8, 64)  # does not fit in 64 bits
    for value in (-1, 1 << 64, 2.0, "3"):
        with pytest.raises(ArgumentError):
            _native.layout_size(value, 1, 1, 64)
    with pytest.raises(ArgumentError, match="0 or 1"):
        _native.pack_interleaved(np.full((2, 3), 2, dtype=np.uint8), 1, 64)
    for bad in (ok.astype(np.int8), ok[None], ok[:, ::2], ok.tolist()):
        with pytest.raises(ArgumentError):
            _native.pack_interleaved(bad, 1, 64)
    # bool arrays are sign bits too
    flags = np.random.default_rng(1).random((3, 30)) < 0.5
    np.testing.assert_array_equal(
        _native.pack_interleaved(flags, 1, 64), _native.pack_interleaved(flags.view(np.uint8), 1, 64)
    )
    assert issubclass(ArgumentError, LrqError) and issubclass(LrqError, ValueError)


def test_input_is_not_modified_or_copied():
    elements = random_elements(np.random.default_rng(5), 20, 70, 8)
    elements.flags.writeable = False  # a read-only input must be accepted as is
    before = elements.copy()
    _native.pack_interleaved(elements, 8, 64)
    np.testing.assert_array_equal(elements, before)


@SETTINGS
@LAYOUT_CASES
def test_matches_numpy_reference(rows, k, elem_bits, panel, seed):
    reference = pytest.importorskip("lrq.reference.layout")
    elements = random_elements(np.random.default_rng(seed), rows, k, elem_bits)
    packed = _native.pack_interleaved(elements, elem_bits, panel)
    np.testing.assert_array_equal(reference.pack_interleaved(elements, elem_bits, panel), packed)
    np.testing.assert_array_equal(
        reference.unpack_interleaved(packed.tobytes(), rows, k, elem_bits, panel), elements
    )


# --------------------------------------------------------------------------
# the C core on its own, under sanitizers


@needs_gcc
def test_c_core(tmp_path):
    run_sanitized(tmp_path, "test_core", isas=(None, "scalar"))


# ------------------------------------------- environment variables ignored

WARNINGS_AT_IMPORT = (
    "import warnings\n"
    "with warnings.catch_warnings(record=True) as caught:\n"
    "    warnings.simplefilter('always')\n"
    "    import lrq\n"
    "    lrq.encode(__import__('numpy').ones((4, 4)), scheme='dense') @ __import__('numpy').ones(4)\n"
    "print(lrq.get_num_threads(), lrq.build_info()['isa'])\n"
    "for w in caught:\n"
    "    print(w.category.__name__, '|', w.message)\n"
)


def import_in_subprocess(**env):
    full = {k: v for k, v in os.environ.items() if k not in ("LRQ_NUM_THREADS", "LRQ_FORCE_ISA")}
    full.update(env)
    done = subprocess.run([sys.executable, "-c", WARNINGS_AT_IMPORT], env=full, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    first, *warned = done.stdout.splitlines()
    return first.split(), warned


@pytest.mark.parametrize("value", ["abc", "0", "1000", "-2", "3x", "65"])
def test_bad_thread_count_warns_once(value):
    (count, _), warned = import_in_subprocess(LRQ_NUM_THREADS=value)
    assert count == str(min(2, os.cpu_count() or 1))
    assert warned == [f"LrqWarning | LRQ_NUM_THREADS={value!r} is not a whole number in [1, 64]; "
                      f"ignored, lrq uses {count} threads"]


@pytest.mark.parametrize("value", ["foo", "AVX2", "", "avx-512"])
def test_unknown_isa_warns_once(value):
    (_, isa), warned = import_in_subprocess(LRQ_FORCE_ISA=value)
    assert len(warned) == 1 and warned[0].startswith(f"LrqWarning | LRQ_FORCE_ISA={value!r} names no kernel path")
    assert warned[0].endswith(f"ignored, lrq uses {isa}")


@pytest.mark.parametrize("env", [{}, {"LRQ_NUM_THREADS": "1"}, {"LRQ_NUM_THREADS": " 3"}, {"LRQ_NUM_THREADS": ""},
                                 {"LRQ_FORCE_ISA": "scalar"}])
def test_good_settings_do_not_warn(env):
    (count, isa), warned = import_in_subprocess(**env)
    assert warned == []
    if env.get("LRQ_NUM_THREADS", "").strip():
        assert count == env["LRQ_NUM_THREADS"].strip()
    if "LRQ_FORCE_ISA" in env:
        assert isa == env["LRQ_FORCE_ISA"]


def test_isa_the_cpu_lacks_warns(monkeypatch):
    """A known path the CPU cannot run (faked here: this host may run all of them)."""
    monkeypatch.setenv("LRQ_FORCE_ISA", "avx512")
    monkeypatch.delenv("LRQ_NUM_THREADS", raising=False)
    monkeypatch.setattr(_native, "isa_name", lambda: "avx2")
    with pytest.warns(lrq.LrqWarning, match=r"LRQ_FORCE_ISA='avx512': this CPU cannot run the avx512 kernels; "
                                            r"lrq uses avx2"):
        _native._warn_about_environment()
