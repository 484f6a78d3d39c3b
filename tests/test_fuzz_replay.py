"""The fuzz harness's invariants on every conformance vector, in the ordinary suite.

``tests/fuzz/fuzz_container.c`` runs under libFuzzer in CI (``tests/fuzz/run.sh``,
clang only).  Here the same harness is built with gcc under ASan and UBSan and
fed each conformance vector whole and with single bits flipped, so a change
that breaks what the harness asserts -- every tile the parser accepts builds
and decodes on the kernels, every refusal names its rule -- fails the README's
test command too.
"""

from __future__ import annotations

import pathlib

from c_harness import needs_gcc, run_sanitized

ROOT = pathlib.Path(__file__).resolve().parents[1]


@needs_gcc
def test_fuzz_harness_replays_every_conformance_vector(tmp_path):
    vectors = sorted((ROOT / "conformance" / "v1").glob("*/*.lrq"))
    assert len(vectors) > 50
    run_sanitized(tmp_path, "fuzz_replay", env={"FUZZ_REPLAY": "\n".join(map(str, vectors))})
