"""The NEON path (64-bit ARM), which this x86 machine cannot run natively:
its C tests cross-compiled and run under qemu-user (tests/cross/run.sh), each
comparing every kernel and the encoder's output with the scalar path bit for
bit.  .ci/run runs the whole C suite that way under the sanitizers; this is
the quick form, without them."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOOLS = ("aarch64-linux-gnu-gcc", "qemu-aarch64", "make")


def cross_tools() -> None:
    """CI installs them (.ci/run), so there a missing one fails instead of skipping."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{', '.join(missing)} missing; .ci/run installs gcc-aarch64-linux-gnu and qemu-user")
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install gcc-aarch64-linux-gnu qemu-user)")


@pytest.mark.slow
def test_neon_kernels_equal_scalar_under_qemu():
    cross_tools()
    run = subprocess.run([str(ROOT / "tests" / "cross" / "run.sh"), "--quick"], capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    passed = [line for line in run.stdout.splitlines() if "all checks passed" in line]
    # Each program names the path it ran on: the probe must have picked NEON.
    assert len(passed) == 3 and all("neon" in line for line in passed), run.stdout
