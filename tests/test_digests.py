"""Encoder output is frozen: the SHA-256 of every case below was recorded from
the encoder as it stood before the C core and the Python package were
reorganised by job, and a reorganisation must not change a byte.

A change that is *meant* to change encoder output (a new default, a better
search) updates the digest of the cases it affects in the same commit and
says why in the commit message; the cases are chosen so that each scheme,
option and writer path has one of its own, so an unintended change shows up
as exactly the cases it touches.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest

import lrq


def _matrix(seed: int, shape, kind: str = "gauss") -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "gauss":
        return rng.standard_normal(shape).astype(np.float32)
    # approximately low-rank: a rank-8 product plus a little noise
    m, n = shape
    a = rng.standard_normal((m, 8)) @ rng.standard_normal((8, n))
    return (a + 0.01 * rng.standard_normal(shape)).astype(np.float32)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


CASES = {
    "signcut_width": lambda: lrq.encode(_matrix(1, (96, 80)), scheme="signcut", width=40),
    "signcut_bits": lambda: lrq.encode(_matrix(2, (200, 300)), scheme="signcut", bits=2.0),
    "signcut_rel_error": lambda: lrq.encode(_matrix(3, (64, 64)), scheme="signcut", rel_error=0.3),
    "signcut_refit": lambda: lrq.encode(_matrix(4, (70, 50)), scheme="signcut", width=24, refit=True),
    "signcut_c16": lambda: lrq.encode(_matrix(5, (120, 90)), scheme="signcut", bits=2.0, c_storage="float16"),
    "signcut_tiled": lambda: lrq.encode(_matrix(6, (150, 130)), scheme="signcut", bits=3.0, tile_shape=(64, 64)),
    "signcut_float64_in": lambda: lrq.encode(_matrix(7, (33, 47)).astype(np.float64), scheme="signcut", width=10),
    "signcut_panel": lambda: lrq.encode(_matrix(8, (40, 300)), scheme="signcut", width=12, panel=128),
    "lplr_sketch": lambda: lrq.encode(_matrix(9, (128, 96), "lowrank"), scheme="lplr", bits=2.0),
    "lplr_svd": lambda: lrq.encode(_matrix(10, (128, 96), "lowrank"), scheme="lplr", bits=2.0, variant="svd"),
    "lplr_explicit": lambda: lrq.encode(
        _matrix(11, (100, 140), "lowrank"), scheme="lplr", rank=6, bits_l=4, bits_r=3, group=64
    ),
    "lplr_rel_error": lambda: lrq.encode(_matrix(12, (90, 90), "lowrank"), scheme="lplr", rel_error=0.05),
    "dense_f16": lambda: lrq.encode(_matrix(13, (20, 30)), scheme="dense", storage="float16"),
    "dense_bf16": lambda: lrq.encode(_matrix(14, (20, 30)), scheme="dense", storage="bfloat16"),
    "dense_f32": lambda: lrq.encode(_matrix(15, (20, 30)), scheme="dense", storage="float32"),
    "auto_bits": lambda: lrq.encode(_matrix(16, (96, 64), "lowrank"), bits=2.0),
    "auto_gauss": lambda: lrq.encode(_matrix(17, (80, 80)), bits=3.0),
    "auto_default": lambda: lrq.encode(_matrix(18, (64, 48))),
    "quant_bands": lambda: lrq.encode(_matrix(19, (200, 96)), scheme="quant", bits=3.0),
    "quant_fixed": lambda: lrq.encode(_matrix(20, (40, 70)), scheme="quant", bits=8.0, code_bits=4, group=32, scale_bits=5),
    "from_factors": lambda: lrq.signcut_from_factors(
        np.where(_matrix(19, (30, 5)) > 0, 1.0, -1.0),
        np.where(_matrix(20, (25, 5)) > 0, 1.0, -1.0),
        np.abs(_matrix(21, (5,))),
    ),
}

DIGESTS = {
    "signcut_width": "4448aefda923ddc617b8d06a84941c2f06edf4ab3d901141fcd95260ac13b614",
    "signcut_bits": "92f32a6fdcfee9976ca865f576d88f8f8cf8342e61b1dfea21661d5ede58f416",
    "signcut_rel_error": "a09c19c47efc80d2b1f58505d15c0e5ab6dbd610782dca21d76c3fdaa63db086",
    "signcut_refit": "e5baadd662075e1ff7fd2aa84a17240b4d180cca728abde7d0f9ae77eac7c34a",
    "signcut_c16": "ea1d66361f1aaaebbddb6d2d561d62ea0b089540fab9491e961eb34cff018d31",
    "signcut_tiled": "c76b111ad3b9d5fd7ae9ed3bdd61fde0420c12bc7ea150da2444b9ff352e3e71",
    "signcut_float64_in": "675eb76d54a6eadc2d8055906837da0023d3bf4a3b673958b3f4e172c7b135f6",
    "signcut_panel": "94b2b270539ac6c587498b0c0ae10248529e6e2d450b786d4e882364f1187de5",
    "lplr_sketch": "2358a37b079ffd301126901b6bc863c44864d8740e8f2332facd6f93519f282f",
    "lplr_svd": "ee81b7960c745ff9121fa9ab61ff3df3b4b0106d7bfb6e8f8406729c4f73f967",
    "lplr_explicit": "fbf13fb9fce9e2e1739c52e94003b7d5f859258a8dce6d015de348b7049f978a",
    "lplr_rel_error": "90d657b523c70a47a3911bda740de6f2045b5fccd0c78db68c6c363e1ce47986",
    "dense_f16": "e6e35f7259eb398a9e6891fb041032065b21d09ff4c4bd4de9e933c11f788b97",
    "dense_bf16": "683d7d5778fa25e75978ddbd94ff41b4068e6a83a30fb5c9280ca7b858218ea0",
    "dense_f32": "ac9af5e91b91fb029687ebdbbdfdfa1afcb24b2f44c8857c923fe6aa02b33328",
    "auto_bits": "5ef691026344b387457fbb5edb8fcca041cf3718831cc9b39367fe4cf33c4aba",
    "auto_gauss": "fa774aba83d14182da17f6345061ea60a39e23d088173c0b4243c47e065f71fc",
    "auto_default": "63f4b91c047edcd2174f68b33f75a83c2ba323252d548e6f2f09f06a86ce4b6c",
    "quant_bands": "4f993f17486f4a00c6e902a17cc6d816e298f4ed4e3bfaeb7e3cdc262035be07",
    "quant_fixed": "573d0c59d9c13eaf94107bceefdb926cf2fa603fbbb2ededde2fdc0c0a187c30",
    "from_factors": "acb914ee6023d1bbdcd0e25b272d710e14f819c99c6a5073b14631b83125ee37",
    "saved_file": "3e6cf81a105dabf1faed2cf860bf981909b671c9e26dd1908f494d2749aabad4",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_encoder_output_is_unchanged(case):
    assert _digest(lrq.dumps(CASES[case]())) == DIGESTS[case]


def test_saved_file_is_unchanged(tmp_path):
    """The many-tensor writer: encoded and lossless tensors, metadata."""
    path = tmp_path / "model.lrq"
    tensors = {
        "W": CASES["signcut_width"](),
        "P": CASES["lplr_explicit"](),
        "bias": np.arange(7, dtype=np.float32),
        "ids": np.arange(12, dtype=np.int64).reshape(3, 4),
    }
    lrq.save(path, tensors, metadata={"source": "digest test", "format": "pt"})
    assert _digest(path.read_bytes()) == DIGESTS["saved_file"]
