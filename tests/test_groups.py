"""Groups of matrices sharing a right factor (spec §10.4, format 1.2): lrq.encode_group, lrq.Group."""

from __future__ import annotations

import os

import numpy as np
import pytest

import lrq
import lrq.reference
from lrq import _native
from lrq.reference import surgery

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "..", "conformance", "v1", "valid")


def _members(seed=0, columns=40, rows=(48, 21, 35)):
    rng = np.random.default_rng(seed)
    # Matrices that read the same input through related maps: give them a
    # common row space, so that sharing a right factor pays.
    basis = rng.standard_normal((12, columns))
    return {name: (rng.standard_normal((m, 12)) @ basis + 0.1 * rng.standard_normal((m, columns))).astype(np.float32)
            for name, m in zip("qkv", rows)}


@pytest.fixture(params=["signcut", "lplr"])
def group(request):
    return lrq.encode_group(_members(), scheme=request.param, bits=4.0)


def test_members_are_matrices_whose_products_match_their_decoding(group):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(40).astype(np.float32)
    for name, a in _members().items():
        m = group[name]
        assert isinstance(m, lrq.Matrix) and m.shape == a.shape and m.scheme == group.scheme
        dense = m.decode().astype(np.float64)
        assert m.rel_error == pytest.approx(np.linalg.norm(a - dense) / np.linalg.norm(a), rel=1e-5)
        assert m.rel_error < 0.6  # a broken split (rows of another member) gives errors near 1 or more
        y = rng.standard_normal(a.shape[0]).astype(np.float32)
        np.testing.assert_allclose(m @ x, dense @ x, atol=1e-4)
        np.testing.assert_allclose(m.T @ y, dense.T @ y, atol=1e-4)


def test_every_member_reads_the_same_shared_sections(group):
    kinds = lrq.format.SHARED_KINDS[group.scheme]
    tiles = [m._record.tiles[0] for m in group.values()]
    for kind in kinds:
        assert all(t.sections[kind] is tiles[0].sections[kind] for t in tiles)


def test_group_product_computes_the_shared_part_once(group, monkeypatch):
    calls = []
    original = _native.Tile.product

    def counting(self, *args, **kwargs):
        calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(_native.Tile, "product", counting)
    x = np.random.default_rng(2).standard_normal(40).astype(np.float32)
    ys = group @ x
    # One kernel product (Tᵀx or R·x once, then the stacked rows) for all three...
    assert len(calls) == 1 and group.shared_products == 1
    for name in group:
        np.testing.assert_allclose(ys[name], group[name].decode().astype(np.float64) @ x, atol=1e-4)
    calls.clear()
    for name in group:
        group[name] @ x
    assert len(calls) == 3  # ...where the members alone take one each
    X = np.random.default_rng(3).standard_normal((40, 5)).astype(np.float32)
    Ys = group @ X
    assert all(Ys[n].shape == (group[n].shape[0], 5) for n in group)


def test_a_group_fits_its_bits_budget_counting_the_shared_factor_once(group):
    assert 3.5 < group.bits_per_entry <= 4.0
    separate = sum(m.nbytes for m in group.values())  # each member alone repeats the shared factor
    assert group.nbytes < separate


def test_joint_beats_separate_on_matrices_with_a_shared_row_space():
    members = _members(seed=5, columns=96, rows=(128, 64, 96))
    for scheme in ("signcut", "lplr"):
        joint = lrq.encode_group(members, scheme=scheme, bits=3.0)
        separate = {k: lrq.encode(a, scheme, bits=3.0) for k, a in members.items()}
        total = lambda errs: np.sqrt(sum((e * np.linalg.norm(members[k])) ** 2 for k, e in errs.items()))  # noqa: E731
        assert total({k: joint[k].rel_error for k in members}) < total({k: m.rel_error for k, m in separate.items()})


def test_save_open_keeps_the_group_and_writes_format_1_2(group, tmp_path):
    path = tmp_path / "attn.lrq"
    bias = np.arange(3, dtype=np.float32)
    lrq.save(path, {"attn": group, "bias": bias})
    data = path.read_bytes()
    assert int.from_bytes(data[10:12], "little") == 2 and int.from_bytes(data[16:24], "little") & 2
    x = np.random.default_rng(4).standard_normal(40).astype(np.float32)
    reference = lrq.reference.decode(data)
    with lrq.open(path) as f:
        assert f.format_version == (1, 2) and list(f) == ["q", "k", "v", "bias"]
        assert list(f.groups) == ["attn"] and list(f.groups["attn"]) == ["q", "k", "v"]
        np.testing.assert_array_equal(f["bias"].decode(), bias)
        ys = f.groups["attn"] @ x
        for name in group:
            np.testing.assert_array_equal(f[name].decode(), group[name].decode())
            np.testing.assert_array_equal(f[name] @ x, group[name] @ x)
            np.testing.assert_array_equal(ys[name], f[name] @ x)
            np.testing.assert_allclose(reference[name], group[name].decode(), atol=1e-5)
        again = tmp_path / "again.lrq"
        lrq.save(again, dict(f.groups))  # a group read from a file is written back unchanged
    assert lrq.reference.decode(again.read_bytes()).keys() == {"q", "k", "v"}


def test_a_group_file_is_smaller_than_its_members_saved_alone(group, tmp_path):
    lrq.save(tmp_path / "g.lrq", {"attn": group})
    lrq.save(tmp_path / "s.lrq", dict(group))
    shared = sum(group["q"]._record.tiles[0].sections[k].length for k in lrq.format.SHARED_KINDS[group.scheme])
    assert os.path.getsize(tmp_path / "s.lrq") - os.path.getsize(tmp_path / "g.lrq") >= 2 * shared
    # Members saved without their group are ordinary tensors: the lowest version [VER-2].
    assert (tmp_path / "s.lrq").read_bytes()[10] == 0


def test_dumps_loads_of_a_group_and_of_one_member(group):
    data = lrq.dumps(group)
    back = lrq.loads(data)
    assert isinstance(back, lrq.Group) and list(back) == list(group)
    for name in group:
        np.testing.assert_array_equal(back[name].decode(), group[name].decode())
    alone = lrq.dumps(group["k"])
    assert alone[10] == 0 and int.from_bytes(alone[16:24], "little") == 0
    np.testing.assert_array_equal(lrq.loads(alone).decode(), group["k"].decode())


def test_the_c_file_parser_reads_groups_and_their_members_as_whole_tiles(group):
    parsed = _native.ContainerFile(lrq.dumps(group), "content")
    (g,) = parsed.groups()
    kinds = lrq.format.SHARED_KINDS[group.scheme]
    assert (g["name"], g["scheme"], g["columns"]) == ("group", group.scheme, 40)
    assert [parsed.tensor(i)["name"] for i in g["members"]] == list(group)
    assert [entry[0] for entry in g["sections"]] == list(kinds)
    for i in g["members"]:
        tile = parsed.tile(i, 0)
        # A member tile is a tile of its scheme whose first sections are the group's.
        assert tile["sections"][:len(kinds)] == g["sections"]
        assert [entry[0] for entry in tile["sections"]] == list(lrq.format.SECTION_KINDS[group.scheme])
        assert tile["params"] == group[parsed.tensor(i)["name"]]._record.tiles[0].params
        assert {k: tile["params"][k] for k in g["params"]} == g["params"]


def test_an_opened_member_streams_from_the_mapping(group, tmp_path):
    lrq.save(tmp_path / "g.lrq", {"attn": group})
    x = np.random.default_rng(9).standard_normal(40).astype(np.float32)
    with lrq.open(tmp_path / "g.lrq") as f:
        q = f["q"]
        sections = q._record.tiles[0].sections
        assert all(s.data.obj is f._map and not s.verified for s in sections.values())  # views, unchecked yet
        np.testing.assert_array_equal(q @ x, group["q"] @ x)
        assert all(s.verified for s in sections.values())  # checked by C on first use [SEC-7]
        kinds = lrq.format.SHARED_KINDS[group.scheme]
        assert all(f["k"]._record.tiles[0].sections[k] is sections[k] for k in kinds)


def test_a_read_group_whose_lplr_members_have_their_own_scale_l_computes_member_by_member():
    path = os.path.join(VECTORS, "groups-lplr-b5x3-and-signcut-kp64.lrq")
    x = np.linspace(-1, 1, 33, dtype=np.float32)
    with lrq.open(path) as f:
        mlp = f.groups["mlp"]
        assert {f["gate"].params["scale_l"], f["up"].params["scale_l"]} != 1
        ys = mlp @ x
        assert mlp.shared_products == 0  # the σ_L differ: no exact stacked tile, one product per member
        for name in mlp:
            np.testing.assert_array_equal(ys[name], f[name] @ x)
        assert isinstance(lrq.loads(lrq.dumps(mlp)), lrq.Group)


def test_files_without_groups_are_unchanged():
    m = lrq.encode(_members()["q"], "signcut", bits=4.0)
    data = lrq.dumps(m)
    assert data[10] == 0 and int.from_bytes(data[16:24], "little") == 0 and b"groups" not in data


@pytest.mark.parametrize("members, message", [
    ({"q": np.ones((3, 4), np.float32)}, "at least two"),
    ({"q": np.ones((3, 4), np.float32), "k": np.ones((3, 5), np.float32)}, "same number of columns"),
    ({"q": np.ones((3, 4), np.float32), "k": np.ones(4, np.float32)}, "2-D float"),
    ({"q": np.ones((3, 4), np.int32), "k": np.ones((3, 4), np.int32)}, "2-D float"),
])
def test_bad_groups_are_refused(members, message):
    with pytest.raises(lrq.ArgumentError, match=message):
        lrq.encode_group(members, scheme="signcut", bits=2.0)


def test_a_group_needs_a_shareable_scheme_and_unique_names(group, tmp_path):
    with pytest.raises(lrq.ArgumentError, match="signcut or lplr"):
        lrq.encode_group(_members(), scheme="dense", bits=2.0)
    with pytest.raises(lrq.ArgumentError, match="unique"):
        lrq.save(tmp_path / "x.lrq", {"attn": group, "q": np.ones(2, np.float32)})
    assert not (tmp_path / "x.lrq").exists()


def test_encoding_is_deterministic():
    a = lrq.dumps(lrq.encode_group(_members(), scheme="signcut", bits=3.0))
    b = lrq.dumps(lrq.encode_group(_members(), scheme="signcut", bits=3.0))
    assert a == b


@pytest.mark.parametrize("vector", ["group-signcut-3members-40cols-w20", "groups-lplr-b5x3-and-signcut-kp64"])
def test_damaged_group_files_decode_or_raise_lrq_errors_in_both_decoders(vector):
    with open(os.path.join(VECTORS, f"{vector}.lrq"), "rb") as fh:
        data = fh.read()
    header_end = 64 + int.from_bytes(data[32:40], "little")
    rng = np.random.default_rng(7)
    # Every header byte (where the group maps are) flipped, and a sample of the rest.
    positions = list(range(64, header_end)) + sorted(rng.choice(len(data), 200, replace=False).tolist())
    for pos in positions:
        for mask in (0x01, 0x80):
            damaged = bytearray(data)
            damaged[pos] ^= mask
            # Keep the header CRC right, so the parsers meet the damaged header itself.
            crc = _native.crc32c(bytes(damaged[64:header_end]), _native.crc32c(bytes(damaged[:48])))
            damaged[48:52] = crc.to_bytes(4, "little")
            for decode in (lambda b: lrq.loads(b), lrq.reference.decode):
                try:
                    decode(bytes(damaged))
                except lrq.LrqError:
                    pass


def test_group_products_of_stacked_batches_split_by_rows(group):
    X = np.random.default_rng(8).standard_normal((2, 40, 3)).astype(np.float32)
    Ys = group @ X
    for name in group:
        np.testing.assert_allclose(Ys[name], group[name] @ X, atol=1e-5)


def test_a_member_with_nonzero_padding_bits_fails_the_group_product(tmp_path):
    # Joining the members' left factors drops padding bits: each member's
    # content rules are checked first [SEC-7], [LAY-1].
    group = lrq.encode_group(_members(), scheme="signcut", width=20)
    lrq.save(tmp_path / "g.lrq", {"attn": group})
    data = bytearray((tmp_path / "g.lrq").read_bytes())
    k = lrq.reference.parse(bytes(data), lrq.reference.crc32c, verify_sections=False).tensors[1]
    s = k.tiles[0].sections["s"]
    # Row 0's second chunk (elements 16-31; 20-31 are padding as w = 20) is the
    # u16 at byte 32 of the first row tile (spec §9.3): its high byte is padding.
    data[s.offset + 33] |= 0x80
    path = tmp_path / "bad.lrq"
    header = surgery.header(bytes(data))
    path.write_bytes(surgery.assemble(header, surgery.payloads(bytes(data)), minor=2, required=2))  # CRCs made right
    with lrq.open(path) as f:
        with pytest.raises(lrq.FormatError, match="LAY-1"):
            f.groups["attn"] @ np.ones(40, np.float32)


def test_groups_pickle_through_their_bytes(group, tmp_path):
    import pickle

    back = pickle.loads(pickle.dumps(group))
    assert isinstance(back, lrq.Group) and list(back) == list(group)
    lrq.save(tmp_path / "g.lrq", {"attn": group})
    with lrq.open(tmp_path / "g.lrq") as f:
        from_file = pickle.loads(pickle.dumps(f.groups["attn"]))
    for name in group:
        np.testing.assert_array_equal(from_file[name].decode(), group[name].decode())


def _group_vectors():
    import json

    with open(os.path.join(HERE, "..", "conformance", "manifest.json")) as fh:
        manifest = json.load(fh)
    return [e for e in manifest["invalid"] if e["file"].split("/")[-1].startswith("xgrp")]


@pytest.mark.parametrize("entry", _group_vectors(), ids=lambda e: e["file"].split("/")[-1])
def test_the_c_parser_refuses_each_invalid_group_vector_with_its_class_and_rule(entry):
    with open(os.path.join(HERE, "..", "conformance", entry["file"]), "rb") as fh:
        data = fh.read()
    with pytest.raises(getattr(lrq, entry["error"]), match=rf"\[{entry['rule']}\]"):
        _native.ContainerFile(data, "content")
