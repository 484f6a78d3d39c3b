"""The ``lrq`` command as scripts use it: run as ``python -m lrq``, with exit
statuses, JSON, standard streams, and outputs that never destroy an input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import lrq
from lrq import cli


def lrq_command(*args, stdin: bytes = b"", cwd=None, timeout=300):
    """Run ``python -m lrq ARGS`` the way a user does; returns (status, stdout bytes, stderr text)."""
    result = subprocess.run([sys.executable, "-m", "lrq", *map(str, args)], input=stdin, capture_output=True,
                            cwd=cwd, timeout=timeout)
    return result.returncode, result.stdout, result.stderr.decode()


@pytest.fixture
def matrix_npy(tmp_path):
    a = np.random.default_rng(5).standard_normal((48, 64)).astype(np.float32)
    path = tmp_path / "B.npy"
    np.save(path, a)
    return path, a


@pytest.fixture
def small_lrq(matrix_npy, tmp_path):
    src, a = matrix_npy
    out = tmp_path / "B.lrq"
    lrq.save(out, {"B": lrq.encode(a, "signcut", bits=2), "ids": np.arange(7)})
    return out


# ------------------------------------------------------- the input is never the output

@pytest.mark.parametrize("link", ["same", "hard", "symbolic"])
def test_compress_refuses_to_overwrite_its_input(matrix_npy, tmp_path, link):
    src, _ = matrix_npy
    before = src.read_bytes()
    if link == "same":
        target = src
    else:
        target = tmp_path / "alias.lrq"
        (os.link if link == "hard" else os.symlink)(src, target)
    status, _, err = lrq_command("compress", src, target, "--bits", "2")
    assert status == cli.EXIT_USAGE, err
    assert "is the input file" in err
    assert src.read_bytes() == before


def test_decompress_refuses_to_overwrite_its_input(small_lrq, tmp_path):
    alias = tmp_path / "alias.npz"
    os.symlink(small_lrq, alias)
    before = small_lrq.read_bytes()
    status, _, err = lrq_command("decompress", small_lrq, alias)
    assert status == cli.EXIT_USAGE and "is the input file" in err
    assert small_lrq.read_bytes() == before


def test_compress_names_the_output_extension(matrix_npy, tmp_path):
    src, _ = matrix_npy
    status, _, err = lrq_command("compress", src, tmp_path / "out.bin")
    assert status == cli.EXIT_USAGE
    assert "must end in .lrq" in err
    assert not (tmp_path / "out.bin").exists()


@pytest.mark.parametrize("where", ["missing folder", "file as folder", "proc"])
def test_compress_checks_the_output_before_encoding(matrix_npy, tmp_path, where, monkeypatch):
    """A folder that cannot take the file fails at once (no encoding), naming the output path."""
    src, _ = matrix_npy
    out = {"missing folder": tmp_path / "nope" / "x.lrq", "file as folder": src / "x.lrq", "proc": "/proc/x.lrq"}[where]
    calls = []
    monkeypatch.setattr(cli, "encode", lambda *a, **k: calls.append(a))
    assert cli.main(["compress", str(src), str(out), "-q"]) == cli.EXIT_FILE
    assert calls == []


def test_compress_to_a_missing_folder_says_which_path(matrix_npy, tmp_path):
    src, _ = matrix_npy
    status, _, err = lrq_command("compress", src, tmp_path / "nope" / "x.lrq")
    assert status == cli.EXIT_FILE
    assert f"cannot write {tmp_path / 'nope' / 'x.lrq'}" in err
    assert ".tmp" not in err and "Traceback" not in err


# ------------------------------------------------------- writing files

def test_decompress_does_not_follow_a_planted_symlink(small_lrq, tmp_path, monkeypatch):
    """The old writer used `.lrq-<pid>-<name>`; a link planted there must not be written through."""
    folder = tmp_path / "out"
    folder.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, folder / f".lrq-{os.getpid()}-restored.npz")
    assert cli.main(["decompress", str(small_lrq), str(folder / "restored.npz")]) == 0
    assert victim.read_text() == "precious"
    with np.load(folder / "restored.npz") as back:
        np.testing.assert_array_equal(back["ids"], np.arange(7))


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 64 KiB tmpfs: a full disk, also for root (who ignores permission bits)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_decompress_into_a_full_folder_is_a_clean_error(tmp_path, tiny_tmpfs):
    src = tmp_path / "big.lrq"
    lrq.save(src, {"big": np.arange(200_000, dtype=np.float32).reshape(400, 500)})
    out = tiny_tmpfs / "big.npy"
    status, _, err = lrq_command("decompress", src, out)
    assert status == cli.EXIT_FILE, err
    assert f"cannot write {out}" in err and "Traceback" not in err and ".tmp" not in err
    assert os.listdir(tiny_tmpfs) == []  # no partial file, no temporary


def test_decompress_into_a_read_only_mount_is_a_clean_error(small_lrq, tiny_tmpfs):
    if subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], capture_output=True).returncode:
        pytest.skip("cannot remount read-only")
    status, _, err = lrq_command("decompress", small_lrq, tiny_tmpfs / "x.npz")
    assert status == cli.EXIT_FILE, err
    assert f"cannot write {tiny_tmpfs / 'x.npz'}" in err and "Traceback" not in err


# ------------------------------------------------------- exit statuses

def test_exit_statuses_tell_failures_apart(matrix_npy, small_lrq, tmp_path):
    src, _ = matrix_npy
    damaged = tmp_path / "damaged.lrq"
    data = bytearray(small_lrq.read_bytes())
    data[-40] ^= 0xFF  # inside a section: a checksum fails
    damaged.write_bytes(bytes(data))
    assert lrq_command("compress", src, "--bogus-flag")[0] == cli.EXIT_USAGE
    assert lrq_command("info", tmp_path / "missing.lrq")[0] == cli.EXIT_FILE
    assert lrq_command("decompress", damaged, tmp_path / "d.npz")[0] == cli.EXIT_BAD_INPUT
    assert lrq_command("verify", damaged)[0] == cli.EXIT_VERIFY_FAILED
    assert lrq_command("verify", small_lrq)[0] == cli.EXIT_OK
    status, out, _ = lrq_command("--help")
    for code in (cli.EXIT_VERIFY_FAILED, cli.EXIT_USAGE, cli.EXIT_FILE, cli.EXIT_BAD_INPUT):
        assert f"\n  {code} " in out.decode()


def test_a_bad_flag_shows_the_subcommand_usage(matrix_npy):
    status, _, err = lrq_command("compress", matrix_npy[0], "--bogus")
    assert status == cli.EXIT_USAGE
    assert "usage: lrq compress" in err and "--bogus" in err


def test_messages_use_the_command_line_terms(tmp_path):
    src = tmp_path / "tiny.npy"
    np.save(src, np.ones((3, 3), np.float32))
    status, _, err = lrq_command("compress", src, "--scheme", "signcut", "--bits", "0.5", "-q")
    assert status == 0
    status, _, err = lrq_command("compress", src, "--scheme", "signcut", "--bits", "0.5")
    assert "--bits" in err and "bits=" not in err
    assert cli._cli_terms("raise bits= or choose another scheme; try scheme='dense'") == \
        "raise --bits or choose another scheme; try --scheme dense"


@pytest.mark.parametrize("value", ["0", "-1", "abc"])
def test_bad_option_values_are_usage_errors(matrix_npy, value):
    status, _, err = lrq_command("compress", matrix_npy[0], "--bits", value)
    assert status == cli.EXIT_USAGE and "usage: lrq compress" in err and "Traceback" not in err


def test_an_option_for_another_scheme_is_refused(matrix_npy):
    status, _, err = lrq_command("compress", matrix_npy[0], "--scheme", "signcut", "--rank", "4")
    assert status == cli.EXIT_USAGE and "--rank applies to --scheme lplr" in err


# ------------------------------------------------------- output for scripts

def test_info_json_of_several_files(small_lrq, tmp_path):
    other = tmp_path / "other.lrq"
    lrq.save(other, {"x": np.ones((2, 2), np.float32)}, metadata={"who": "test"})
    status, out, err = lrq_command("info", small_lrq, other, tmp_path / "missing.lrq", "--json")
    assert status == cli.EXIT_FILE  # the first failure's status; the others are still listed
    listing = json.loads(out)
    assert [entry["path"] for entry in listing] == [str(small_lrq), str(other), str(tmp_path / "missing.lrq")]
    assert [t["name"] for t in listing[0]["tensors"]] == ["B", "ids"]
    assert listing[0]["tensors"][0]["scheme"] == "signcut" and listing[0]["tensors"][0]["shape"] == [48, 64]
    assert listing[1]["metadata"] == {"who": "test"} and listing[1]["format_version"] == "1.0"
    assert "error" in listing[2] and listing[2]["exit_status"] == cli.EXIT_FILE


def test_info_text_of_several_files_says_1_tensor(small_lrq, tmp_path):
    other = tmp_path / "other.lrq"
    lrq.save(other, {"x": np.ones((2, 2), np.float32)})
    status, out, _ = lrq_command("info", small_lrq, other)
    text = out.decode()
    assert status == 0
    assert f"{small_lrq}: .lrq format 1.0, 2 tensors" in text
    assert f"{other}: .lrq format 1.0, 1 tensor," in text


def test_verify_json_and_what_reference_checked(small_lrq):
    status, out, _ = lrq_command("verify", small_lrq, "--reference", "--json")
    assert status == 0
    (report,) = json.loads(out)
    assert report["ok"] and report["tensors"] == 2
    assert report["reference"] == {"tensors": 2, "bit_exact": 1, "within_spec_11": 1}
    status, out, _ = lrq_command("verify", small_lrq, "--reference")
    text = out.decode()
    assert "CRC-32C" in text and "reference decoder agrees on 2 tensors" in text and "1 dense bit-exact" in text


def test_verify_quiet_prints_nothing(small_lrq):
    assert lrq_command("verify", small_lrq, "-q")[:2] == (0, b"")


def test_compress_summary_wording(tmp_path):
    """A tensor too small to shrink: "1 tensor", and "larger", not "(0.94x smaller)"."""
    src = tmp_path / "tiny.npy"
    np.save(src, np.ones((2, 3), np.float32))
    status, _, err = lrq_command("compress", src, "-o", tmp_path / "tiny.lrq", "--scheme", "dense")
    assert status == 0
    assert "1 tensor " in err and "tensors" not in err.split("->")[1].split("(")[0]
    assert "x larger" in err and "smaller" not in err


def test_stdin_to_stdout_round_trip(matrix_npy):
    src, a = matrix_npy
    status, packed, err = lrq_command("compress", "-", "-", "--scheme", "signcut", "--bits", "4", "-q",
                                      stdin=src.read_bytes())
    assert status == 0, err
    m = lrq.loads(packed)
    assert m.shape == a.shape and m.bits_per_entry <= 4
    status, restored, err = lrq_command("decompress", "-", "--format", "npy", "-", stdin=packed)
    assert status == 0, err
    import io

    np.testing.assert_array_equal(np.load(io.BytesIO(restored)), lrq.decode(m))


def test_output_option_and_default_name(matrix_npy, tmp_path):
    src, _ = matrix_npy
    assert lrq_command("compress", src, "-q", "--bits", "2")[0] == 0
    assert (tmp_path / "B.lrq").exists()
    assert lrq_command("decompress", tmp_path / "B.lrq", "-o", tmp_path / "C.npy", "-q")[0] == 0
    assert np.load(tmp_path / "C.npy").shape == (48, 64)


def test_quiet_and_verbose_on_every_command(small_lrq, matrix_npy, tmp_path):
    parser = cli.build_parser()
    for name, sub in parser.commands.items():
        flags = {s for action in sub._actions for s in action.option_strings}
        assert {"-q", "--quiet", "-v", "--verbose"} <= flags, name
    src, _ = matrix_npy
    status, _, err = lrq_command("compress", src, tmp_path / "v.lrq", "--bits", "2", "-v")
    assert status == 0 and "bits/entry" in err and "rel_error" in err
    status, _, err = lrq_command("compress", src, tmp_path / "q.lrq", "--bits", "2", "-q")
    assert status == 0 and err == ""


def test_python_dash_m_lrq_is_the_command():
    status, out, _ = lrq_command("--version")
    assert status == 0 and out.decode().startswith("lrq ")


def test_a_nan_names_the_tensor_and_where(tmp_path):
    bad = np.ones((8, 8), np.float32)
    bad[2, 5] = np.nan
    src = tmp_path / "ckpt.npz"
    np.savez(src, good=np.ones((4, 4), np.float32), bad=bad)
    status, _, err = lrq_command("compress", src)
    assert status == cli.EXIT_BAD_INPUT
    assert "tensor 'bad'" in err and "[2, 5]" in err
    assert not (tmp_path / "ckpt.lrq").exists()


def test_demo_does_not_import_the_cli():
    code = "import sys, lrq.demo; sys.exit('lrq.cli' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
