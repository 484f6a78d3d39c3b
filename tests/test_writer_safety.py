"""Writing files: ``lrq.files.atomic_write`` (used by ``lrq.save`` and the CLI),
``check_writable`` and ``same_file``.  Nothing a failed or killed write does may
touch an existing file or leave anything behind, and errors name the output."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lrq
from lrq import files

BIAS = np.arange(5, dtype=np.float32)


def names(folder) -> list:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def umask():
    def set_to(value):
        os.umask(value)

    old = os.umask(0o022)
    yield set_to
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_new_files_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    lrq.save(tmp_path / "a.lrq", {"b": BIAS})
    files.atomic_write(tmp_path / "b.bin", lambda out: out.write(b"x"))
    for name in ("a.lrq", "b.bin"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o666 & ~mask


def test_atomic_write_replaces_the_file_and_leaves_only_it(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    files.atomic_write(target, lambda out: out.write(b"new content"))
    assert target.read_bytes() == b"new content"
    assert names(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("failure, raised", [
    (OSError(errno.ENOSPC, "No space left on device"), lrq.ResourceError),
    (KeyboardInterrupt(), KeyboardInterrupt),
    (lrq.ArgumentError("bad value"), lrq.ArgumentError),
])
def test_a_failing_write_keeps_the_old_file_and_leaves_nothing(tmp_path, failure, raised):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def write(out):
        out.write(b"partial")
        raise failure

    with pytest.raises(raised) as info:
        files.atomic_write(target, write)
    assert target.read_bytes() == b"old"
    assert names(tmp_path) == ["out.bin"]
    if raised is lrq.ResourceError:
        assert str(info.value) == f"cannot write {target}: No space left on device"


def test_a_write_past_the_file_size_limit_is_a_clean_error(tmp_path):
    # RLIMIT_FSIZE makes the kernel refuse the write itself (EFBIG), for root too.
    script = textwrap.dedent(f"""
        import resource, signal
        import numpy as np, lrq
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, 1 << 16))
        try:
            lrq.save({str(tmp_path / 'big.lrq')!r}, {{"x": np.ones(1 << 16, dtype=np.float32)}})
        except lrq.ResourceError as exc:
            print(exc)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"cannot write {tmp_path / 'big.lrq'}: File too large"
    assert names(tmp_path) == []


def test_a_folder_that_is_a_file_is_a_clean_error(tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    target = plain / "out.lrq"
    with pytest.raises(lrq.ResourceError) as info:
        lrq.save(target, {"b": BIAS})
    assert str(info.value) == f"cannot write {target}: Not a directory"
    with pytest.raises(lrq.ResourceError, match="is not a folder"):
        files.check_writable(target)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_a_clean_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(lrq.ResourceError, match="Permission denied"):
            lrq.save(folder / "out.lrq", {"b": BIAS})
        with pytest.raises(lrq.ResourceError, match="Permission denied"):
            files.check_writable(folder / "out.lrq")
    finally:
        folder.chmod(0o755)


def test_a_read_only_mount_is_a_clean_error():
    # /proc is mounted read-only for new files, whoever we are.
    with pytest.raises(lrq.ResourceError, match=r"^cannot write /proc/out\.lrq: "):
        lrq.save("/proc/out.lrq", {"b": BIAS})
    with pytest.raises(lrq.ResourceError, match=r"^cannot write /proc/out\.lrq: "):
        files.check_writable("/proc/out.lrq")


def test_check_writable(tmp_path):
    files.check_writable(tmp_path / "new.lrq")
    assert names(tmp_path) == []
    with pytest.raises(lrq.ResourceError, match="does not exist"):
        files.check_writable(tmp_path / "missing" / "x.lrq")
    with pytest.raises(lrq.ResourceError, match="it is a folder"):
        files.check_writable(tmp_path)


def test_same_file_sees_through_links(tmp_path):
    a = tmp_path / "a.npy"
    a.write_bytes(b"data")
    os.link(a, tmp_path / "hard.npy")
    os.symlink(a, tmp_path / "soft.npy")
    (tmp_path / "other.npy").write_bytes(b"data")
    assert files.same_file(a, a)
    assert files.same_file(a, tmp_path / "hard.npy")
    assert files.same_file(tmp_path / "soft.npy", tmp_path / "hard.npy")
    assert not files.same_file(a, tmp_path / "other.npy")
    assert not files.same_file(a, tmp_path / "missing.npy")


def test_a_symlink_planted_at_a_temporary_name_is_never_followed(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    planted = out_dir / ".lrq-tmp-planted"
    os.symlink(victim, planted)
    # Force the named-temporary path and make it pick the planted name: the
    # exclusive create must refuse it instead of writing through the link.
    monkeypatch.setattr(files, "_open_unnamed", lambda folder: None)
    monkeypatch.setattr(files, "_temp_name", lambda path: str(planted))
    with pytest.raises(lrq.ResourceError, match="File exists"):
        files.atomic_write(out_dir / "x.bin", lambda out: out.write(b"attack"))
    assert victim.read_bytes() == b"precious"
    assert os.path.islink(planted)


def test_the_named_fallback_also_leaves_nothing_on_failure(tmp_path, monkeypatch, umask):
    umask(0o027)
    monkeypatch.setattr(files, "_open_unnamed", lambda folder: None)
    files.atomic_write(tmp_path / "ok.bin", lambda out: out.write(b"ok"))
    assert os.stat(tmp_path / "ok.bin").st_mode & 0o777 == 0o640

    def write(out):
        raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(lrq.ResourceError, match="Input/output error"):
        files.atomic_write(tmp_path / "bad.bin", write)
    assert names(tmp_path) == ["ok.bin"]


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".lrq-tmp-{dead_pid}-0123456789abcdef-model.lrq"
    live = tmp_path / f".lrq-tmp-{os.getppid()}-0123456789abcdef-model.lrq"
    unrelated = tmp_path / ".lrq-tmp-notes.txt"
    for p in (stale, live, unrelated):
        p.write_bytes(b"x")
    lrq.save(tmp_path / "model.lrq", {"b": BIAS})
    assert names(tmp_path) == sorted([live.name, unrelated.name, "model.lrq"])


@pytest.mark.parametrize("unnamed", [True, False])
def test_kill_9_during_save_leaves_nothing_visible(tmp_path, unnamed):
    # The writer blocks inside lrq.save with part of the file written, and is
    # killed there.  With O_TMPFILE there is nothing to see at all; with named
    # temporaries the next save removes what the dead writer left.
    target = tmp_path / "model.lrq"
    lrq.save(target, {"b": BIAS})
    before = target.read_bytes()
    script = textwrap.dedent(f"""
        import sys, time
        import numpy as np
        import lrq
        from lrq import files
        if not {unnamed!r}:
            files._open_unnamed = lambda folder: None
        real = lrq.format.serialize
        def slow(*args, **kwargs):
            pieces = real(*args, **kwargs)
            yield next(pieces)
            print("writing", flush=True)
            time.sleep(60)
            yield from pieces
        lrq.format.serialize = slow
        lrq.save({str(target)!r}, {{"x": np.ones(1 << 20, dtype=np.float32)}})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        visible = names(tmp_path)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert target.read_bytes() == before
    if unnamed:
        assert visible == ["model.lrq"] and names(tmp_path) == ["model.lrq"]
    else:
        assert len(visible) == 2  # the dead writer's temporary, until the next write
    lrq.save(tmp_path / "next.lrq", {"b": BIAS})
    assert names(tmp_path) == ["model.lrq", "next.lrq"]
