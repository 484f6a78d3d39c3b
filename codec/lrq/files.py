"""Writing files safely: the one place where lrq creates an output file.

Every writer in lrq (``lrq.save`` and the outputs of the ``lrq`` command)
goes through :func:`atomic_write`:

``atomic_write(path, write)``
    ``write(binary_file)`` produces the content.  It goes into a temporary
    file in the output's folder that is created exclusively and never
    through a symlink: on Linux an unnamed ``O_TMPFILE`` inode, so a process
    killed mid-write leaves nothing visible; elsewhere (or on file systems
    without it) a new file named ``.lrq-tmp-<pid>-<random>-<name>`` opened
    with ``O_CREAT | O_EXCL``.  The content is fsync'd, then the temporary
    replaces ``path`` by one rename (a symlink at ``path`` is replaced, not
    followed) and the folder is fsync'd.  The new file's mode is
    ``0o666 & ~umask``, like files made by other tools.  On any failure the
    existing file at ``path`` is untouched and no temporary is left behind;
    an ``OSError`` becomes an :class:`lrq.ResourceError` naming ``path``
    and the system's reason.  Other exceptions raised by ``write`` (an
    ``lrq.LrqError``, ``KeyboardInterrupt``) pass through unchanged after
    the clean-up.  Before writing, named temporaries left in the folder by
    writers that no longer run (killed between link and rename, or on a
    system without ``O_TMPFILE``) are removed.

``check_writable(path)``
    The pre-flight check a caller makes before long work whose result goes
    to ``path``: the folder exists, is a folder, and a file can be created
    in it (tried for real, so it also holds for root and read-only mounts),
    and ``path`` is not a folder.  Raises :class:`lrq.ResourceError`.

``same_file(a, b)``
    True when both paths name the same existing file, also through hard
    links and symlinks.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import sys
from typing import BinaryIO, Callable

from .errors import ResourceError

TEMP_PREFIX = ".lrq-tmp-"
# .lrq-tmp-<pid>-<16 hex digits>-<output name>: the pid tells a live writer's
# temporary from a dead one's.
_TEMP_NAME = re.compile(r"^\.lrq-tmp-(\d+)-[0-9a-f]{16}-")
_NEW_FILE_MODE = 0o666  # the umask takes away what the user does not want
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _reason(exc: OSError) -> str:
    """The system's reason without the file name it carries (which may be a temporary's)."""
    return exc.strerror or type(exc).__name__


def _folder(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


def _temp_name(path: str) -> str:
    return os.path.join(_folder(path), f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}-{os.path.basename(path)}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists but belongs to someone else
    return True


def remove_stale_temporaries(folder: str) -> list:
    """Remove temporaries in ``folder`` whose writer process no longer runs; returns their names."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _TEMP_NAME.match(name)
        if match and not _pid_alive(int(match.group(1))):
            try:
                os.unlink(os.path.join(folder, name))
                removed.append(name)
            except OSError:
                pass  # another writer cleaned it, or we may not: harmless
    return removed


def _open_unnamed(folder: str):
    """An fd of an unnamed file in ``folder`` (Linux O_TMPFILE), or None where that cannot work."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag or not _unnamed_files_work(folder):
        return None
    return os.open(folder, flag | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), _NEW_FILE_MODE)


def _linkat_empty_path():
    """libc's linkat, for linkat(fd, "", AT_FDCWD, name, AT_EMPTY_PATH); None if unavailable."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        linkat = libc.linkat
    except (OSError, AttributeError, ImportError):
        return None
    linkat.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
    return linkat, ctypes.get_errno


_AT_FDCWD, _AT_EMPTY_PATH = -100, 0x1000
_linkat = _linkat_empty_path() if sys.platform.startswith("linux") else None


def _link_unnamed(fd: int, name: str) -> None:
    """Give the unnamed file ``fd`` the new name ``name`` (never replacing a file there)."""
    if _linkat is not None:
        linkat, get_errno = _linkat
        if linkat(fd, b"", _AT_FDCWD, os.fsencode(name), _AT_EMPTY_PATH) == 0:
            return
        code = get_errno()
        if code not in (errno.EPERM, errno.ENOENT, errno.EINVAL, errno.EXDEV):
            raise OSError(code, os.strerror(code))
    # Without the privilege AT_EMPTY_PATH needs on older kernels, /proc names it.
    os.link(f"/proc/self/fd/{fd}", name, follow_symlinks=True)


_unnamed_by_device: dict = {}


def _unnamed_files_work(folder: str) -> bool:
    """Whether an O_TMPFILE file can be made and named in ``folder``'s file system (probed once)."""
    device = os.stat(folder).st_dev
    works = _unnamed_by_device.get(device)
    if works is None:
        probe = os.path.join(folder, f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}-probe")
        try:
            fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise  # a real reason (read-only, no permission): the caller reports it
            works = False
        else:
            try:
                _link_unnamed(fd, probe)
                os.unlink(probe)
                works = True
            except OSError:
                works = False
            finally:
                os.close(fd)
        _unnamed_by_device[device] = works
    return works


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # not every system opens folders; the rename itself is done
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create(path: str) -> tuple:
    """(fd, name) of a new temporary for ``path``; name is None for an unnamed file."""
    folder = _folder(path)
    fd = _open_unnamed(folder)
    if fd is not None:
        return fd, None
    name = _temp_name(path)
    return os.open(name, _CREATE_FLAGS, _NEW_FILE_MODE), name


def _discard(temp) -> None:
    if temp is not None:
        try:
            os.unlink(temp)
        except OSError:
            pass  # already gone: nothing is left behind either way


def atomic_write(path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` atomically with ``write(binary_file)``; see the module docstring."""
    path = os.fspath(path)
    folder = _folder(path)
    temp = None  # the temporary's name once it has one; only ever a file we created
    try:
        remove_stale_temporaries(folder)
        fd, temp = _create(path)
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
            if temp is None:
                name = _temp_name(path)
                _link_unnamed(out.fileno(), name)
                temp = name
        os.replace(temp, path)
        temp = None
        _fsync_folder(folder)
    except OSError as exc:
        raise ResourceError(f"cannot write {path}: {_reason(exc)}") from None
    finally:
        _discard(temp)


def check_writable(path) -> None:
    """Raise :class:`lrq.ResourceError` unless a file can be written at ``path`` now."""
    path = os.fspath(path)
    folder = _folder(path)
    if os.path.isdir(path):
        raise ResourceError(f"cannot write {path}: it is a folder")
    if not os.path.exists(folder):
        raise ResourceError(f"cannot write {path}: the folder {folder} does not exist")
    if not os.path.isdir(folder):
        raise ResourceError(f"cannot write {path}: {folder} is not a folder")
    try:
        fd, temp = _create(path)
    except OSError as exc:
        raise ResourceError(f"cannot write {path}: {_reason(exc)}") from None
    os.close(fd)
    _discard(temp)


def same_file(a, b) -> bool:
    """True when ``a`` and ``b`` are the same existing file (also through hard links and symlinks)."""
    try:
        sa, sb = os.stat(a), os.stat(b)
    except (OSError, ValueError):
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


__all__ = ["atomic_write", "check_writable", "same_file", "remove_stale_temporaries", "TEMP_PREFIX"]
