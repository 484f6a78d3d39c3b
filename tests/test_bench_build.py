"""bench/handoff.c builds and runs with the command its first comment gives,
against the core built from c_src/Makefile's source list."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("make") is None or shutil.which("cc") is None, reason="needs make and cc")
def test_handoff_builds_and_runs_with_its_documented_command(tmp_path):
    comment = (ROOT / "bench" / "handoff.c").read_text().split("#define", 1)[0]
    lines = [line.strip(" *") for line in comment.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("make -C c_src lib"))
    command = ""
    for line in lines[start:]:
        command += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            break
    assert "c_src/build/liblrq.a" in command
    command = command.replace("/tmp/handoff", str(tmp_path / "handoff"))
    out = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    figures = re.findall(r"^(.+?):\s+([0-9.]+) us$", out.stdout, re.M)
    assert len(figures) == 4, out.stdout
