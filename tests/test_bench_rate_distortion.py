"""bench/rate_distortion.py --quick prints, for every matrix, the lrq rows and
the peers its docstring promises: NQ, truncated SVD, the Shannon limit on the
Gaussian, SZ3 and zfp searched to no more than each budget's bytes, the
product ratios, the ``gguf`` package's types at their bits/weight, and the
summary rows.  (Figures are printed, never asserted: bench/README.md.  The
ggml part, --peers, builds ggml and is not run here.)"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

for _package in ("gguf", "pysz", "zfpy"):
    pytest.importorskip(_package, reason=f"bench/rate_distortion.py's peers need {_package} (the bench extra)")

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUDGETS = ("1", "2")


@pytest.mark.slow
def test_the_rate_distortion_bench_prints_the_peer_rows():
    schemes = [shown for shown, _, _ in _bench_schemes()]
    command = [sys.executable, str(ROOT / "bench" / "rate_distortion.py"), "--quick", "--bits", *BUDGETS]
    out = subprocess.run(command, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    body, summary = out.stdout.split("\nsummary: ")
    sections = body.split("\n\n")[1:]
    labels = [s.split("\n", 1)[0] for s in sections if re.match(r"\S.* \d+×\d+$", s.split("\n", 1)[0])]
    assert labels[:4] == ["gaussian 256² 256×256", "photo china.jpg (grey) 214×320",
                          "photo flower.jpg (grey) 214×320", "smooth field 256² 256×256"], labels
    for label in labels:
        block = body.split(f"\n{label}\n", 1)[1].split("\n\n")
        table, products, gguf = block[0], block[1], block[2]
        *lines, best = table.splitlines()[2:]
        rows = {line[4:18].strip(): line[18:].split() for line in lines}
        assert best.startswith("    best: 1: ")
        peers = ["NQ", "SVD-f16"] + (["Shannon 2^-R"] if label.startswith("gaussian") else []) + \
            ["SZ3", "zfp rate", "zfp accuracy"]
        assert list(rows) == schemes + peers, table
        if label.startswith("gaussian"):
            assert rows["Shannon 2^-R"][:2] == ["0.5000", "0.2500"]
        for codec in ("SZ3", "zfp rate", "zfp accuracy"):
            for budget, cell in zip(BUDGETS, rows[codec]):
                if cell != "-":  # error@bits: matched size means no more bits than the budget
                    assert float(cell.split("@")[1]) <= float(budget), (label, codec, cell)
        assert products.lstrip().startswith("products: NumPy dense float32 A @ x")
        ratios = {line.split()[0]: line.split()[1:] for line in products.splitlines()[1:]}
        assert list(ratios) == schemes and all(re.fullmatch(r"[0-9.]+x|-", r) for v in ratios.values() for r in v)
        assert gguf.lstrip().startswith("GGUF types")
        found = dict(re.findall(r"gguf-py (\w+)\s+\S+ @\s*([0-9.]+)", gguf))
        assert found["Q4_0"] == "4.50" and found["Q8_0"] == "8.50", gguf
    lines = summary.splitlines()[3:]
    assert [re.match(r"(.*×\d+)\s+(\S+) ", line).groups() for line in lines] == \
        [(label, b) for label in labels for b in BUDGETS]
    gaussian_2_bits = lines[1].split()
    assert "TQ1_0" in lines[1] and len(gaussian_2_bits) >= 8, lines[1]  # the one gguf-py type ≤ 2 bits/weight


def _bench_schemes():
    """The script's SCHEMES, imported with bench/ on sys.path only meanwhile: left there, its dask.py would
    shadow the dask package in later tests' worker processes."""
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import rate_distortion

        return rate_distortion.SCHEMES
    finally:
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            if name in ("rate_distortion", "codec_peers", "timing"):
                del sys.modules[name]
