"""Build the C test programs of ``tests/c`` with the whole C core under ASan
and UBSan, and run them (the Python tests' way into the sanitizers).

Sources and flags come from ``c_src/Makefile`` (the one build description,
read through ``bindings/_build.py``), so these programs are built as
``make -C c_src test`` builds them.  The core is compiled once per test
session and per set of defines, two files at a time, and every test program
links against those objects: compiling the SIMD kernels with sanitizers is
the slow part, and several programs share it.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import pathlib
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed: cannot build tests/c")


def _load_build_module():
    spec = importlib.util.spec_from_file_location("_lrq_build_description", ROOT / "bindings" / "_build.py")
    module = importlib.util.module_from_spec(spec)
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)  # the builder reads c_src/Makefile relative to the root
        spec.loader.exec_module(module)
    finally:
        os.chdir(cwd)
    return module


BUILD = _load_build_module().build_description(ROOT / "c_src" / "Makefile")
SOURCES = [pathlib.Path(s) for s in BUILD["LRQ_SOURCES"]]
FLAGS = [
    *BUILD["LRQ_CFLAGS"], *BUILD["LRQ_TEST_CFLAGS"],
    *(arg for d in BUILD["LRQ_INCLUDE_DIRS"] for arg in ("-I", d)),
]
LINK = [*BUILD["LRQ_LDFLAGS"], *BUILD["LRQ_LIBS"]]

_BUILD_ROOT = pathlib.Path(tempfile.mkdtemp(prefix="lrq-ctests-"))
atexit.register(shutil.rmtree, _BUILD_ROOT, True)
_CORE: dict = {}


def _compile(args) -> str:
    source, obj, defines = args
    run = subprocess.run(["gcc", *FLAGS, *defines, "-c", source, "-o", obj], capture_output=True, text=True)
    return run.stderr if run.returncode or run.stderr else ""


def core_objects(defines=()) -> list:
    """Object files of the sanitized C core for these defines (built once)."""
    key = tuple(defines)
    if key not in _CORE:
        folder = _BUILD_ROOT / ("core" + "".join(d.replace("-D", "_") for d in key))
        folder.mkdir(parents=True, exist_ok=True)
        src_root = ROOT / "c_src" / "src"
        jobs = [(str(src), str(folder / (str(src.relative_to(src_root).with_suffix(".o")).replace(os.sep, "_"))),
                 list(key)) for src in SOURCES]
        with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
            errors = [e for e in pool.map(_compile, jobs) if e]
        assert not errors, "\n".join(errors)
        _CORE[key] = [obj for _, obj, _ in jobs]
    return _CORE[key]


def run_sanitized(tmp_path, program: str, isas=(None,), defines=(), env=None, timeout=600) -> None:
    """Compile ``tests/c/<program>.c`` warning-free against the sanitized core and
    run it once per forced ISA (None: the machine's best); any failed check or
    sanitizer report fails the test."""
    exe = tmp_path / program
    build = subprocess.run(
        ["gcc", *FLAGS, *defines, str(ROOT / "tests" / "c" / f"{program}.c"), *core_objects(defines), "-o", str(exe),
         *LINK],
        capture_output=True, text=True,
    )
    assert build.returncode == 0 and not build.stderr, build.stderr
    for isa in isas:
        run_env = {k: v for k, v in os.environ.items() if k not in ("LRQ_FORCE_ISA", "LRQ_NUM_THREADS")}
        run_env.update(env or {})
        if isa:
            run_env["LRQ_FORCE_ISA"] = isa
        run = subprocess.run([str(exe)], capture_output=True, text=True, env=run_env, timeout=timeout)
        assert run.returncode == 0, f"LRQ_FORCE_ISA={isa}: " + run.stdout + run.stderr
