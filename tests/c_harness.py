"""Build a C test program of ``tests/c`` with the whole C core under ASan and
UBSan, and run it (the Python tests' way into the sanitizers)."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed: cannot build tests/c")


def run_sanitized(tmp_path, program: str, isas=(None,)) -> None:
    """Compile ``tests/c/<program>.c`` warning-free and run it once per forced
    ISA (None: the machine's best); any failed check or sanitizer report fails."""
    sources = sorted(str(p) for p in (ROOT / "c_src" / "src").glob("*.c"))
    exe = tmp_path / program
    cmd = [
        "gcc", "-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
        "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-pthread",
        "-I", str(ROOT / "c_src" / "include"),
        str(ROOT / "tests" / "c" / f"{program}.c"), *sources, "-o", str(exe),
    ]
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0 and not build.stderr, build.stderr
    for isa in isas:
        env = {k: v for k, v in os.environ.items() if k != "LRQ_FORCE_ISA"}
        if isa:
            env["LRQ_FORCE_ISA"] = isa
        run = subprocess.run([str(exe)], capture_output=True, text=True, env=env)
        assert run.returncode == 0, run.stdout + run.stderr
