"""The C core's layout rules (c_src/README.md), its one build description
(c_src/Makefile), and tile errors that name the rule."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

import numpy as np
import pytest

import lrq
from c_harness import BUILD, FLAGS, SOURCES
from lrq import _native

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "c_src" / "src"
DIRS = ("common", "format", "compute", "encode", "kernels")
# What each directory may include besides lrq.h and the C library.
ALLOWED = {
    "common": {"common"},
    "format": {"common", "format"},
    "compute": {"common", "compute"},
    "encode": {"common", "encode"},
    "kernels": {"common", "kernels"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)
TARGETING = re.compile(r"__attribute__\s*\(\(\s*target|#\s*pragma\s+(GCC|clang)\s+(target|attribute)"
                       r"|LRQ_TARGET_BEGIN|<\w*intrin\.h>")
ISA_TABLE = re.compile(r"\blrq_(sc_)?kernels_(?!h\b)\w+|\blrq_crc32c_update_(?!table\b|fn\b)\w+")
ARCH_MACRO = re.compile(r"__x86_64__|__i386__|__aarch64__|__ARM_NEON")


def c_files():
    return sorted(p for p in SRC.rglob("*") if p.suffix in (".c", ".h"))


def test_every_source_lives_in_a_job_directory():
    for path in c_files():
        assert path.parent.parent == SRC and path.parent.name in DIRS, f"{path.relative_to(ROOT)} is outside {DIRS}"


@pytest.mark.parametrize("path", c_files(), ids=lambda p: str(p.relative_to(SRC)))
def test_includes_follow_the_dependency_rules(path):
    own = path.parent.name
    for kind, name in INCLUDE.findall(path.read_text(encoding="utf-8")):
        if kind == "<":
            continue  # the C library and, in kernels/ only, intrinsics (checked below)
        if name == "lrq.h":
            continue
        folder, _, rest = name.partition("/")
        assert rest and "/" not in rest, f"{path.relative_to(ROOT)} includes {name!r}: use \"<dir>/<file>\""
        assert folder in ALLOWED[own], f"{path.relative_to(ROOT)} ({own}/) may not include {name!r}"
        assert (SRC / name).is_file(), f"{path.relative_to(ROOT)} includes {name!r}, which does not exist"


def test_only_kernels_set_targets_or_use_intrinsics():
    for path in c_files():
        if path.parent.name == "kernels":
            continue
        text = path.read_text(encoding="utf-8")
        match = TARGETING.search(text)
        assert match is None, f"{path.relative_to(ROOT)} has {match.group(0)!r}: only kernels/ may"


def test_per_isa_tables_are_named_only_by_dispatch():
    for path in c_files():
        if path.parent.name == "kernels" or path.relative_to(SRC).as_posix() == "common/dispatch.c":
            continue
        match = ISA_TABLE.search(path.read_text(encoding="utf-8"))
        assert match is None, f"{path.relative_to(ROOT)} names {match.group(0)}: reach it through lrq_dispatch()"


def test_architecture_macros_only_through_lrq_x86():
    """LRQ_NO_X86_SIMD must switch every x86 file off, so files test LRQ_X86."""
    for path in c_files():
        text = path.read_text(encoding="utf-8")
        if path.relative_to(SRC).as_posix() == "common/internal.h" or not ARCH_MACRO.search(text):
            continue
        assert path.parent.name == "kernels" and "#if LRQ_X86" in text, (
            f"{path.relative_to(ROOT)} tests an architecture macro outside an LRQ_X86 block")


def test_neon_files_only_through_lrq_neon():
    """Whatever includes <arm_neon.h> is compiled only under LRQ_NEON (common/internal.h), so an
    x86 build, or one with LRQ_NO_NEON_SIMD, never sees the NEON code."""
    for path in c_files():
        text = path.read_text(encoding="utf-8")
        if "#include <arm_neon.h>" in text:
            assert path.parent.name == "kernels" and "#if LRQ_NEON" in text.split("#include <arm_neon.h>")[0], (
                f"{path.relative_to(ROOT)} includes <arm_neon.h> outside an LRQ_NEON block")


def test_comments_point_only_into_the_repository():
    pointer = re.compile(r"\bissue\s*#?\d+|/work/|\bnotes/|\bresearch §", re.I)
    for path in [*c_files(), ROOT / "c_src" / "include" / "lrq.h", ROOT / "c_src" / "Makefile",
                 ROOT / "c_src" / "README.md"]:
        match = pointer.search(path.read_text(encoding="utf-8"))
        assert match is None, f"{path.relative_to(ROOT)} points outside the repository: {match.group(0)!r}"


# ---------------------------------------------------------------- the build


def test_makefile_lists_every_source_once():
    listed = [pathlib.Path(s).resolve() for s in BUILD["LRQ_SOURCES"]]
    assert len(listed) == len(set(listed))
    assert set(listed) == {p.resolve() for p in SRC.rglob("*.c")}


def test_one_standard_and_no_contraction_in_every_build():
    flags = BUILD["LRQ_CFLAGS"]
    assert [f for f in flags if f.startswith("-std=")] == ["-std=c99"]
    assert "-ffp-contract=off" in flags
    for name, value in BUILD.items():
        if name != "LRQ_CFLAGS" and name.endswith("CFLAGS"):
            assert not any(f.startswith(("-std=", "-ffp-contract")) for f in value), name


def test_every_reader_takes_the_makefile():
    assert [str(p) for p in SOURCES] == BUILD["LRQ_SOURCES"]
    assert all(f in FLAGS for f in BUILD["LRQ_CFLAGS"])
    builder = (ROOT / "bindings" / "_build.py").read_text(encoding="utf-8")
    assert 'BUILD["LRQ_SOURCES"]' in builder and 'BUILD["LRQ_CFLAGS"]' in builder
    fuzz = (ROOT / "tests" / "fuzz" / "run.sh").read_text(encoding="utf-8")
    assert "var LRQ_SOURCES" in fuzz and "var LRQ_CFLAGS" in fuzz and "c_src/src" not in fuzz


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_and_the_python_reader_agree():
    for name in ("LRQ_SOURCES", "LRQ_CFLAGS", "LRQ_INCLUDE_DIRS"):
        out = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(ROOT / "c_src"), f"print-{name}"],
                             capture_output=True, text=True, check=True).stdout.split()
        parsed = BUILD[name]
        if name != "LRQ_CFLAGS":
            parsed = [str(pathlib.Path(p).relative_to(ROOT / "c_src")) for p in parsed]
        assert out == parsed, name


# ----------------------------------------------------------- tile messages


def _sign_tile(tt: bytes, c: float = 1.0):
    return _native.signcut_tile(1, 1, 1, 64, np.float32([c]).tobytes(), tt, b"\0\0")


def test_tile_errors_name_the_rule_and_the_section():
    _sign_tile(b"\0\0")
    with pytest.raises(lrq.FormatError, match=r"^\[LAY-1\] section 'tt': a padding bit in the word at byte 0"):
        _sign_tile(b"\x20\0")
    with pytest.raises(lrq.FormatError, match=r"^\[SC-2\] section 'c': c\[0\] is NaN or infinite"):
        _sign_tile(b"\0\0", c=np.inf)
    params = {"rank": 1, "bits_l": 5, "bits_r": 5, "group": 16, "scale_l": 1.0, "scale_r": 1.0}
    codes, scales = bytearray(16), np.float16([1.0]).tobytes()
    _native.lplr_tile(1, 1, params, 64, bytes(codes), scales, bytes(codes), scales)
    codes[0] = 32
    with pytest.raises(lrq.FormatError, match=r"^\[LP-4\] section 'l_codes'"):
        _native.lplr_tile(1, 1, params, 64, bytes(16), scales, bytes(codes), scales)
