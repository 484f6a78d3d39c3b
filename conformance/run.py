"""Run every conformance vector through both decoders and check the manifest.

    python conformance/run.py [-v]

Decoders:
  lrq        the library (``lrq.open``: the C core checks and decodes)
  reference  ``lrq.reference.decode``: pure NumPy, written from the spec
  reference-1.0  the reference decoder restricted to format 1.0 (no required
             feature known), for the verdicts a 1.0 decoder must reach
  reference-1.1  the reference decoder restricted to format 1.1 (required bit 0
             only, no groups), for the verdicts a 1.1 decoder must reach
  reference-1.2  the reference decoder restricted to format 1.2 (required bits 0
             and 1, no tensor tiles, no optional feature known)
  reference-1.3  restricted to format 1.3 (required bits 0 to 2, no optional
             feature known), as a 1.3 decoder reads 1.4 files

A valid vector must decode, in both, to its expected arrays within the
manifest's tolerance (exactly for dense tensors), and each 2-D float tensor's
product with the manifest's x must match its expected result; a vector
marked "since" a later minor must be refused with UnsupportedError [PRE-4] by
the restricted decoders of every earlier minor (1.0, 1.1 for a 1.2 file, 1.2 for a 1.3 file),
or, when it also says "earlier": "decodes" (a file that needs only optional
features, e.g. a 1.4 private release), decoded by them to the same arrays.  An invalid vector must be refused with exactly the
error class, and a message citing the rule, that the manifest names for the
decoder's version ("rule"/"error", or the last entry of "later" whose "since"
the decoder implements).  An invalid vector marked "since" a minor applies
only to decoders of that minor or newer; every other invalid vector is also
checked against reference-1.0.  Exit status 0 only if every check passes.

Tolerances (conformance/README.md): an element passes when
|got - expected| <= abs_tol + 2 u |expected| + lambda, with u and lambda the
unit roundoff and smallest subnormal of the delivered type (the expected
array is the exact value rounded to that type, hence 2 u); a product passes
when every |y_i - matvec_i| <= matvec_abs_tol.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile

import numpy as np

import lrq
import lrq.reference
from lrq.reference import container as _container

HERE = os.path.dirname(os.path.abspath(__file__))


def _read(rel: str) -> bytes:
    with open(os.path.join(HERE, rel), "rb") as fh:
        return fh.read()


def _decode_lrq(path: str, data: bytes) -> dict:
    """Decode with the library, products included; returns {name: (array, matrix-product fn)}."""
    out = {}
    with lrq.open(path) as f:
        for name in f:
            m = f[name]
            out[name] = (lrq.decode(m), (lambda x, m=m: m @ x) if m.ndim == 2 and m.dtype.kind == "f" else None)
    return out


def _decode_reference(path: str, data: bytes) -> dict:
    arrays = lrq.reference.decode(data)
    return {name: (a, (lambda x, a=a: a.astype(np.float64) @ x) if a.ndim == 2 and a.dtype.kind == "f" else None)
            for name, a in arrays.items()}


def _restricted(known: int, optional: int = 0):
    """The reference decoder as a decoder of an earlier minor: it knows only the
    required features ``known`` (1.0: none; 1.1: signcut_c16; 1.2: and
    shared_factor; 1.3: and signcut_tensor; 1.4: the same) and the optional
    ones ``optional`` (private_release is 1.4's)."""
    def decode(path: str, data: bytes) -> dict:
        saved = _container.KNOWN_REQUIRED_FEATURES, _container.KNOWN_OPTIONAL_FEATURES
        _container.KNOWN_REQUIRED_FEATURES, _container.KNOWN_OPTIONAL_FEATURES = known, optional
        try:
            return _decode_reference(path, data)
        finally:
            _container.KNOWN_REQUIRED_FEATURES, _container.KNOWN_OPTIONAL_FEATURES = saved
    return decode


_decode_reference_10 = _restricted(0)
_decode_reference_11 = _restricted(_container.SIGNCUT_C16)
_decode_reference_12 = _restricted(_container.SIGNCUT_C16 | _container.SHARED_FACTOR)
_decode_reference_13 = _restricted(_container.SIGNCUT_C16 | _container.SHARED_FACTOR | _container.SIGNCUT_TENSOR)
_decode_reference_14 = _restricted(_container.SIGNCUT_C16 | _container.SHARED_FACTOR | _container.SIGNCUT_TENSOR,
                                   _container.PRIVATE_RELEASE)
EARLIER = {"reference-1.0": ((1, 0), _decode_reference_10), "reference-1.1": ((1, 1), _decode_reference_11),
           "reference-1.2": ((1, 2), _decode_reference_12), "reference-1.3": ((1, 3), _decode_reference_13),
           "reference-1.4": ((1, 4), _decode_reference_14)}

DECODERS = {"lrq": _decode_lrq, "reference": _decode_reference}
# The format version each decoder implements.
VERSIONS = {"lrq": lrq.FORMAT_VERSION, "reference": lrq.FORMAT_VERSION,
            **{name: version for name, (version, _) in EARLIER.items()}}


def _version(text: str) -> tuple:
    major, minor = text.split(".")
    return int(major), int(minor)


def applies(entry: dict, version: tuple) -> bool:
    """Whether an invalid vector's verdict binds a decoder of ``version`` (its "since", default 1.0)."""
    return _version(entry.get("since", "1.0")) <= version


def expectation(entry: dict, version: tuple) -> tuple:
    """(rule, error) a decoder of ``version`` must report for an invalid vector."""
    rule, error = entry["rule"], entry["error"]
    for later in entry.get("later", []):
        if _version(later["since"]) <= version:
            rule, error = later["rule"], later["error"]
    return rule, error


def _close(got, want, tol) -> bool:
    if got.shape != want.shape or got.dtype != want.dtype:
        return False
    if tol == 0:
        return np.array_equal(got, want) or (got.dtype.kind == "f" and np.array_equal(got.view(np.uint8), want.view(np.uint8)))
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    # [NUM-1] allows u|x_ref| for the output type's rounding; ``want`` is x_ref
    # already rounded to that type (at most u|x_ref| away), hence 2u.
    unit = np.finfo(want.dtype).eps / 2 if want.dtype.kind == "f" else 0
    return bool((diff <= tol + 2 * unit * np.abs(want.astype(np.float64)) + np.finfo(want.dtype).smallest_subnormal).all())


def _vector(entry: dict):
    """A vector's bytes and path; no bytes when they are not the ones the manifest names."""
    data = _read(entry["file"])
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        return None, None
    return data, os.path.join(HERE, entry["file"])


def check_valid(entry: dict) -> list:
    """Problems found with one valid vector, per decoder; empty when it passes."""
    problems = []
    data, path = _vector(entry)
    if data is None:
        return [f"{entry['file']}: sha256 differs from the manifest"]
    for earlier, (version, decode) in EARLIER.items():
        if "since" not in entry or version >= _version(entry["since"]):
            continue
        if entry.get("earlier") == "decodes":
            problems.extend(f"{earlier}: {problem}" for problem in _same_arrays(entry, decode, path, data))
            continue
        try:
            decode(path, data)
        except lrq.UnsupportedError:
            pass
        except Exception as exc:
            problems.append(f"{earlier}: raised {type(exc).__name__} ({exc}), not UnsupportedError [PRE-4]")
        else:
            problems.append(f"{earlier}: accepted a {entry['since']} file")
    for decoder_name, decode in DECODERS.items():
        try:
            decoded = decode(path, data)
        except lrq.LrqError as exc:
            problems.append(f"{decoder_name}: refused a valid file: {type(exc).__name__}: {exc}")
            continue
        if sorted(decoded) != sorted(t["name"] for t in entry["tensors"]):
            problems.append(f"{decoder_name}: tensor names {sorted(decoded)}")
            continue
        for t in entry["tensors"]:
            raw = _read(t["expected"])
            if hashlib.sha256(raw).hexdigest() != t["expected_sha256"]:
                problems.append(f"{t['expected']}: sha256 differs from the manifest")
                continue
            want = np.load(os.path.join(HERE, t["expected"]), allow_pickle=False)
            got, product = decoded[t["name"]]
            if not _close(np.asarray(got), want, t["abs_tol"]):
                problems.append(f"{decoder_name}: tensor '{t['name']}' decodes outside tolerance {t['abs_tol']:.3g}")
            if "x" in t and product is not None:
                x = np.asarray(t["x"], dtype=np.float32)
                y = np.asarray(product(x), dtype=np.float64)
                err = np.abs(y - np.asarray(t["matvec"])).max() if y.size else 0.0
                if not err <= t["matvec_abs_tol"]:
                    problems.append(f"{decoder_name}: tensor '{t['name']}' matvec off by {err:.3g} (tolerance {t['matvec_abs_tol']:.3g})")
    return problems


def _same_arrays(entry: dict, decode, path: str, data: bytes) -> list:
    """Problems when ``decode`` does not reproduce a valid vector's expected arrays."""
    try:
        decoded = decode(path, data)
    except lrq.LrqError as exc:
        return [f"refused a file it can read ignoring optional features: {type(exc).__name__}: {exc}"]
    problems = []
    for t in entry["tensors"]:
        want = np.load(os.path.join(HERE, t["expected"]), allow_pickle=False)
        if t["name"] not in decoded or not _close(np.asarray(decoded[t["name"]][0]), want, t["abs_tol"]):
            problems.append(f"tensor '{t['name']}' does not decode as in the manifest")
    return problems


def check_invalid(entry: dict) -> list:
    problems = []
    data, path = _vector(entry)
    if data is None:
        return [f"{entry['file']}: sha256 differs from the manifest"]
    decoders = dict(DECODERS, **{name: decode for name, (_, decode) in EARLIER.items()})
    for decoder_name, decode in decoders.items():
        if not applies(entry, VERSIONS[decoder_name]):
            continue
        rule, error = expectation(entry, VERSIONS[decoder_name])
        want = getattr(lrq, error)
        try:
            decode(path, data)
        except lrq.LrqError as exc:
            if type(exc) is not want:
                problems.append(f"{decoder_name}: raised {type(exc).__name__} ({exc}), the manifest says {error}")
            elif f"[{rule}]" not in str(exc):
                problems.append(f"{decoder_name}: raised {error} under another rule ({exc}); the manifest says [{rule}]")
        except Exception as exc:  # any other exception is a decoder bug
            problems.append(f"{decoder_name}: crashed with {type(exc).__name__}: {exc}")
        else:
            problems.append(f"{decoder_name}: accepted a file that breaks [{rule}]")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="print the problems of failing vectors in full")
    args = parser.parse_args()
    with open(os.path.join(HERE, "manifest.json")) as fh:
        manifest = json.load(fh)
    failures = 0
    print(f"lrq {lrq.__version__} ({lrq.build_info()['isa']}), decoders: {', '.join(DECODERS)}")
    for kind, check in (("valid", check_valid), ("invalid", check_invalid)):
        for entry in manifest[kind]:
            problems = check(entry)
            name = os.path.basename(entry["file"])
            if kind == "invalid":
                what = "[%s] %s" % expectation(entry, lrq.FORMAT_VERSION)
            else:
                what = f"{len(entry['tensors'])} tensor(s)" + (f", since {entry['since']}" if "since" in entry else "")
            print(f"{'ok  ' if not problems else 'FAIL'} {kind:<7} {name:<44} {what:<32} lrq+reference")
            for problem in problems:
                print(f"       {problem}")
            failures += bool(problems)
    total = len(manifest["valid"]) + len(manifest["invalid"])
    print(f"{total - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
