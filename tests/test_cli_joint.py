"""``lrq compress --joint``: joint groups of a checkpoint found by name and
shape, kept only where they win (lrq.grouping, spec §10.4)."""

from __future__ import annotations

import re
from typing import Optional

import numpy as np
import pytest

import lrq
from lrq import grouping
from lrq.cli import main

from test_cli import _write_safetensors

BERT = "encoder.layer.{}.attention.self."
LLAMA = "model.layers.0."


def _checkpoint(path) -> dict:
    """BERT and LLaMA names; query/key (and LLaMA's q/k/v, gate) built on one
    row space, so sharing a right factor pays for them; value and up on
    their own.  Also a bias, an int64 buffer and a float16 matrix."""
    rng = np.random.default_rng(7)
    n, r = 64, 6
    shared = rng.standard_normal((r, n))

    def low_rank(m, basis, dtype=np.float32):
        return (rng.standard_normal((m, r)) @ basis + 0.05 * rng.standard_normal((m, n))).astype(dtype)

    t = {}
    for layer in range(2):
        p = BERT.format(layer)
        t[p + "query.weight"] = low_rank(64, shared)
        t[p + "key.weight"] = low_rank(64, shared)
        t[p + "value.weight"] = low_rank(64, rng.standard_normal((r, n)))
        t[p + "query.bias"] = rng.standard_normal(64).astype(np.float32)
    t[LLAMA + "self_attn.q_proj.weight"] = low_rank(64, shared)
    t[LLAMA + "self_attn.k_proj.weight"] = low_rank(32, shared)
    t[LLAMA + "self_attn.v_proj.weight"] = low_rank(32, shared)
    t[LLAMA + "mlp.gate_proj.weight"] = low_rank(96, shared, np.float16)
    t[LLAMA + "mlp.up_proj.weight"] = low_rank(96, rng.standard_normal((r, n)), np.float16)
    t["position_ids"] = np.arange(12, dtype=np.int64)
    _write_safetensors(path, t)
    return t


def _report(err: str, bits: Optional[dict] = None) -> dict:
    """block name -> (what was kept, {label: error}) from the --joint report;
    ``bits`` gets (block, label) -> bits/entry."""
    bits = {} if bits is None else bits
    out, block = {}, None
    for line in err.splitlines():
        rejected = re.match(r"^    (.*): not kept, ", line)
        if rejected and block is not None:
            # A way that made a member worse off is not a candidate.
            out[block][1].pop(rejected[1], None)
            continue
        m = re.match(r"^  (\S+): (joint \S+(?: \S+)?(?: \(.*\))?|kept separate)(?: \[(.*)\])?$", line)
        if m:
            tried = {}
            for item in (m[3] or "").split("; "):
                if item:
                    label, err_text, bits_text = re.match(r"^(.*) (\S+) at (\S+) bits$", item).groups()
                    tried[label] = float(err_text)
                    bits[(m[1], label)] = float(bits_text)
            out[m[1]] = (m[2], tried)
            block = m[1]
    return out


@pytest.mark.parametrize("scheme", ["signcut", "lplr", "auto"])
def test_joint_groups_round_trip(tmp_path, capsys, scheme):
    source = tmp_path / "model.safetensors"
    tensors = _checkpoint(source)
    out = tmp_path / "out.lrq"
    assert main(["compress", str(source), str(out), "--joint", "--scheme", scheme, "--bits", "3"]) == 0
    report = _report(capsys.readouterr().err)
    assert set(report) == {BERT.format(0)[:-1], BERT.format(1)[:-1], LLAMA + "self_attn", LLAMA + "mlp"}
    with lrq.open(out) as f:
        assert f.format_version == (1, 2)
        assert set(f) == set(tensors)
        # The groups in the file are exactly those reported, named by their
        # members' common prefix, each made of members of its own block.
        grouped = {name for name, (kept, _) in report.items() if kept.startswith("joint")}
        assert set(f.groups) == grouped and grouped
        for name, group in f.groups.items():
            assert len(group) >= 2 and all(member.startswith(name + ".") for member in group)
            assert group.scheme == scheme if scheme != "auto" else group.scheme in ("signcut", "lplr")
        x = np.random.default_rng(0).standard_normal(64).astype(np.float32)
        for name in tensors:
            if tensors[name].ndim == 2:
                # decode() rounds to the tensor's dtype (float16 for gate/up); the
                # product runs on the factors, so allow that rounding.
                d = f[name].decode()
                bound = 2 * np.finfo(d.dtype).eps * (np.abs(d.astype(np.float32)) @ np.abs(x)) + 1e-4
                assert np.all(np.abs(f[name] @ x - d.astype(np.float32) @ x) <= bound), name
        decoded = {name: f[name].decode() for name in f}
    # The shared row space of query and key makes a group win for them.
    assert any(BERT.format(0) + "query.weight" in g and BERT.format(0) + "key.weight" in g
               for g in lrq.open(out).groups.values())

    restored_path = tmp_path / "restored.safetensors"
    assert main(["decompress", str(out), str(restored_path)]) == 0
    restored = {t.name: t for t in lrq.safetensors_file.read(str(restored_path))[0]}
    assert set(restored) == set(tensors)
    for name, original in tensors.items():
        assert restored[name].values.shape == original.shape, name
        assert restored[name].values.dtype == original.dtype, name
        np.testing.assert_array_equal(restored[name].values, decoded[name].astype(original.dtype))
    np.testing.assert_array_equal(restored["position_ids"].values, tensors["position_ids"])
    np.testing.assert_array_equal(restored[BERT.format(0) + "query.bias"].values, tensors[BERT.format(0) + "query.bias"])


def test_joint_kept_only_where_it_wins(tmp_path, capsys):
    source = tmp_path / "model.safetensors"
    _checkpoint(source)
    out = tmp_path / "out.lrq"
    assert main(["compress", str(source), str(out), "--joint", "--scheme", "signcut", "--bits", "3"]) == 0
    report = _report(capsys.readouterr().err)
    for name, (kept, tried) in report.items():
        best = min(tried, key=tried.get)
        # At a bits budget the encoding with the lowest error of the block wins.
        assert kept == ("kept separate" if best == "separate" else kept), (name, kept, tried)
        if best != "separate":
            assert kept.split(" (")[0] == f"joint {best}"
    # This checkpoint's up matrix shares nothing with gate: signcut keeps them apart.
    assert report[LLAMA + "mlp"][0] == "kept separate"


def test_joint_at_an_error_target_keeps_the_fewest_bytes(tmp_path, capsys):
    source = tmp_path / "model.safetensors"
    _checkpoint(source)
    out = tmp_path / "out.lrq"
    assert main(["compress", str(source), str(out), "--joint", "--scheme", "lplr", "--rel-error", "0.1",
                 "--seed", "0"]) == 0
    bits = {}
    report = _report(capsys.readouterr().err, bits)
    decided = 0
    for name, (kept, tried) in report.items():
        if not tried:
            continue
        decided += 1
        fewest = min(tried, key=lambda label: bits[(name, label)])
        assert (kept == "kept separate") == (fewest == "separate"), (name, kept, bits)
        if fewest != "separate":
            assert kept.split(" (")[0] == f"joint {fewest}"
    assert decided >= 2
    with lrq.open(out) as f:
        assert f.groups
        for name in f:
            if f[name].scheme != "dense" and f[name].rel_error is not None:
                # A kept group's members were encoded to the stack's target, not each its own.
                assert f[name].rel_error < 0.2, name


def test_choose_encoding_keeps_separate_when_joint_loses():
    rng = np.random.default_rng(1)
    arrays = {f"b.attention.self.{r}.weight": rng.standard_normal((64, 96)).astype(np.float32)
              for r in ("query", "key", "value")}
    alone = {n: lrq.encode(a, "lplr", bits=3) for n, a in arrays.items()}
    (candidate,), _ = grouping.find_groups({n: a.shape for n, a in arrays.items()}, set(arrays))

    def worse(members, **options):  # a group whose error is far above the separate one's
        return lrq.encode_group({n: a * 0 + 1 for n, a in members.items()}, **options)

    choice = grouping.choose_encoding(candidate, arrays, alone, "lplr", {"bits": 3}, encode_joint=worse)
    assert choice.group is None and choice.kept == "separate" and choice.alone == alone
    real = grouping.choose_encoding(candidate, arrays, alone, "lplr", {"bits": 3})
    assert set(real.errors) == {"separate", "query+key+value", "query+key"}
    assert (real.group is None) == (min(real.errors.values())[0] == real.errors["separate"][0])


def test_choose_encoding_refuses_a_group_that_makes_a_member_worse():
    rng = np.random.default_rng(2)
    basis = rng.standard_normal((4, 96))
    arrays = {f"b.attention.self.{r}.weight": (rng.standard_normal((64, 4)) @ basis).astype(np.float32)
              for r in ("query", "key", "value")}
    alone = {n: lrq.encode(a, "lplr", bits=3) for n, a in arrays.items()}
    (candidate,), _ = grouping.find_groups({n: a.shape for n, a in arrays.items()}, set(arrays))

    def value_worse(members, **options):  # query and key shared honestly, value 1 % off
        return lrq.encode_group({n: a * (0.99 if "value" in n else 1.0) for n, a in members.items()}, **options)

    choice = grouping.choose_encoding(candidate, arrays, alone, "lplr", {"bits": 3}, encode_joint=value_worse)
    value = "b.attention.self.value.weight"
    assert any(note.startswith("query+key+value: not kept, value ") for note in choice.notes)
    # The block error alone would have kept it: lower than separate, and fewer bytes.
    joint_error, joint_bytes = choice.errors["query+key+value"]
    assert joint_error < choice.errors["separate"][0] and joint_bytes < choice.errors["separate"][1]
    assert choice.kept != "query+key+value" and (choice.group is None or value not in choice.group)


def test_find_groups_by_name_and_shape():
    shapes = {
        "bert.encoder.layer.0.attention.self.query.weight": (8, 16),
        "bert.encoder.layer.0.attention.self.key.weight": (8, 16),
        "bert.encoder.layer.0.attention.self.value.weight": (8, 12),  # other columns: not with q+k+v
        "model.layers.3.self_attn.q_proj.weight": (8, 16),
        "model.layers.3.self_attn.k_proj.weight": (4, 16),
        "model.layers.3.self_attn.v_proj.weight": (4, 16),
        "model.layers.3.mlp.gate_proj.weight": (32, 16),
        "model.layers.3.mlp.up_proj.weight": (32, 16),
        "model.layers.3.mlp.down_proj.weight": (16, 32),
        "model.layers.4.mlp.gate_proj.weight": (32, 16),  # its up is not selected
        "model.layers.4.mlp.up_proj.weight": (32, 16),
    }
    eligible = set(shapes) - {"model.layers.4.mlp.up_proj.weight"}
    candidates, skipped = grouping.find_groups(shapes, eligible)
    found = {c.prefix: c.subsets for c in candidates}
    assert found == {
        "bert.encoder.layer.0.attention.self.": [["bert.encoder.layer.0.attention.self.query.weight",
                                                  "bert.encoder.layer.0.attention.self.key.weight"]],
        "model.layers.3.self_attn.": [[f"model.layers.3.self_attn.{r}_proj.weight" for r in "qkv"],
                                      [f"model.layers.3.self_attn.{r}_proj.weight" for r in "qk"]],
        "model.layers.3.mlp.": [["model.layers.3.mlp.gate_proj.weight", "model.layers.3.mlp.up_proj.weight"]],
    }
    assert [p for p, _ in skipped] == ["model.layers.4.mlp"]
    assert "model.layers.4.mlp.up_proj.weight" in skipped[0][1]
    assert grouping.group_name(["a.b.query.weight", "a.b.key.weight"]) == "a.b"
    assert grouping.group_name(["query", "key"]) == "query+key"


def test_joint_respects_exclude(tmp_path, capsys):
    source = tmp_path / "model.safetensors"
    _checkpoint(source)
    out = tmp_path / "out.lrq"
    key = BERT.format(0) + "key.weight"
    assert main(["compress", str(source), str(out), "--joint", "--scheme", "lplr", "--bits", "3",
                 "--exclude", key]) == 0
    err = capsys.readouterr().err
    with lrq.open(out) as f:
        assert all(key not in g for g in f.groups.values())
        assert f[key].scheme == "dense"
        assert BERT.format(0)[:-1] not in f.groups
    assert re.search(rf"{re.escape(BERT.format(0)[:-1])}: kept separate", err)


def test_joint_usage_errors(tmp_path, capsys):
    source = tmp_path / "model.safetensors"
    _checkpoint(source)
    assert main(["compress", str(source), str(tmp_path / "a.lrq"), "--joint", "--width", "8",
                 "--scheme", "signcut"]) == 2
    assert "--width" in capsys.readouterr().err
    assert main(["compress", str(source), str(tmp_path / "b.lrq"), "--joint", "--scheme", "dense"]) == 2
    assert "--scheme dense" in capsys.readouterr().err
    assert not (tmp_path / "a.lrq").exists() and not (tmp_path / "b.lrq").exists()


def test_without_joint_no_groups(tmp_path, capsys):
    source = tmp_path / "model.safetensors"
    _checkpoint(source)
    out = tmp_path / "out.lrq"
    assert main(["compress", str(source), str(out), "--scheme", "lplr", "--bits", "3"]) == 0
    assert "joint groups" not in capsys.readouterr().err
    with lrq.open(out) as f:
        assert f.groups == {} and f.format_version < (1, 2)


def _grouped_file(tmp_path) -> tuple:
    """A file with BERT q+k (value alone) as a group, written by the API."""
    rng = np.random.default_rng(5)
    basis = rng.standard_normal((4, 96))
    q, k, v = ((rng.standard_normal((64, 4)) @ basis).astype(np.float32) for _ in range(3))
    p = "bert.layer.0.attention.self."
    group = lrq.encode_group({p + "query.weight": q, p + "key.weight": k}, scheme="signcut", bits=3)
    value = lrq.encode(v, "signcut", bits=3)
    path = tmp_path / "grouped.lrq"
    lrq.save(path, {"bert.layer.0.attention.self": group, p + "value.weight": value})
    return path, group, value


def test_info_shows_groups_json(tmp_path, capsys):
    path, group, value = _grouped_file(tmp_path)
    assert main(["info", str(path), "--json"]) == 0
    (info,) = __import__("json").loads(capsys.readouterr().out)
    (g,) = info["groups"]
    p = "bert.layer.0.attention.self."
    assert g["name"] == "bert.layer.0.attention.self" and g["scheme"] == "signcut" and g["columns"] == 96
    assert g["members"] == [p + "query.weight", p + "key.weight"]
    # The shared factor (signs T and weights c, width cuts over 96 columns)
    # is counted once: its bytes are at least T's bits.
    width = group[p + "query.weight"].tiles[0][3]["width"]
    assert g["shared_bytes"] >= width * 96 // 8 and g["shared_bytes"] == group.shared_nbytes
    by_name = {t["name"]: t for t in info["tensors"]}
    for member in g["members"]:
        own = by_name[member]["bytes"]
        assert own == g["member_bytes"][member] == group[member].nbytes - g["shared_bytes"]
        assert by_name[member]["group"] == g["name"]
        assert by_name[member]["bits_per_entry"] == pytest.approx(8 * own / (64 * 96))
    assert g["bytes"] == g["shared_bytes"] + sum(g["member_bytes"].values())
    # Counted once, the group's bytes stay below the file; counted per member they would not.
    assert g["bytes"] + by_name[p + "value.weight"]["bytes"] <= info["size"] + 2 * 4096
    assert by_name[p + "value.weight"]["bytes"] == value.nbytes and by_name[p + "value.weight"]["group"] is None


def test_info_shows_groups_text(tmp_path, capsys):
    path, group, _ = _grouped_file(tmp_path)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1 group sharing a right factor" in out
    line = next(l for l in out.splitlines() if l.startswith("bert.layer.0.attention.self "))
    assert "signcut" in line and "query.weight, key.weight" in line
    assert f"{group.shared_nbytes:,}" in line
    member = next(l for l in out.splitlines() if l.startswith("bert.layer.0.attention.self.query.weight"))
    assert f"{group.member_nbytes('bert.layer.0.attention.self.query.weight'):,}" in member


def test_info_without_groups_lists_none(tmp_path, capsys):
    path = tmp_path / "plain.lrq"
    lrq.save(path, {"a": lrq.encode(np.ones((64, 64), np.float32), "signcut", bits=4)})
    assert main(["info", str(path), "--json"]) == 0
    (info,) = __import__("json").loads(capsys.readouterr().out)
    assert info["groups"] == [] and info["tensors"][0]["group"] is None
    assert main(["info", str(path)]) == 0
    assert "sharing a right factor" not in capsys.readouterr().out
