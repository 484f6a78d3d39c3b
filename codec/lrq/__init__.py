"""lrq: compressed low-rank and 1-bit matrices you can multiply without decoding.

    import lrq
    M = lrq.encode(A, scheme="signcut", bits=2.0)   # or width=…, rel_error=…
    y = M @ x                                        # products on the factors
    A2 = lrq.decode(M)                               # dense ndarray
    lrq.save("model.lrq", {"W": M, "b": bias})       # many named tensors
    with lrq.open("model.lrq") as f:                 # memory-mapped, lazy
        y = f["W"] @ x

The format is specified in ``spec/lrq-format.md``; ``lrq.reference`` is its
pure-NumPy twin.
"""

from __future__ import annotations

from . import errors
from .errors import *  # noqa: F403 -- the error classes are part of lrq's API; errors.__all__ lists them
from .format import FORMAT_MAJOR, FORMAT_MINOR

try:
    from . import _native
except ModuleNotFoundError as exc:
    # Without the compiled C core only the pure-NumPy ``lrq.reference`` and
    # ``lrq.errors`` work; everything else says what is missing when used.
    if exc.name != "lrq._lrq_cffi":
        raise
    _MISSING_EXTENSION = exc
else:
    _MISSING_EXTENSION = None
    from .encoder import encode, signcut_from_factors
    from .groups import Group, encode_group
    from .io import File, decode, dumps, loads, open, save
    from .matrix import Matrix
    from .private import PrivateCovariance, private_covariance
    from .tensor import Tensor

__version__ = "0.2.0"
FORMAT_VERSION = (FORMAT_MAJOR, FORMAT_MINOR)


def build_info() -> dict:
    """How this copy of lrq was built, which kernel path is active, how many threads."""
    return {
        "version": __version__,
        "library_version_number": _core().version_number(),
        "format_version": f"{FORMAT_MAJOR}.{FORMAT_MINOR}",
        "isa": _core().isa_name(),
        "threads": _core().threads(),
    }


def set_num_threads(n: int) -> None:
    """Threads for products, decoding and encoding (default 2, or ``LRQ_NUM_THREADS``).

    Encoding uses it when :func:`lrq.encode` is not given ``threads=``.
    Work is split statically (products over output rows, the encoder over
    fixed ranges that do not depend on the thread count), so results are the
    same bits for every thread count.
    """
    _core().set_threads(n)


def get_num_threads() -> int:
    """Threads products, decoding and encoding use (see :func:`set_num_threads`)."""
    return _core().threads()




def _missing_extension(what: str) -> ImportError:
    return ImportError(f"{what} needs lrq's compiled C core, which is not installed ({_MISSING_EXTENSION}); "
                       "reinstall lrq where a C compiler is available (lrq.reference works without it)")


def _core():
    if _MISSING_EXTENSION is not None:
        raise _missing_extension("this function")
    return _native


def __getattr__(name: str):
    if _MISSING_EXTENSION is not None and name in __all__:
        raise _missing_extension(f"lrq.{name}")
    raise AttributeError(f"module 'lrq' has no attribute {name!r}")


__all__ = [
    "encode",
    "encode_group",
    "decode",
    "dumps",
    "loads",
    "save",
    "open",
    "signcut_from_factors",
    "private_covariance",
    "PrivateCovariance",
    "build_info",
    "set_num_threads",
    "get_num_threads",
    "Matrix",
    "Tensor",
    "File",
    "Group",
    "FORMAT_VERSION",
    "__version__",
    *errors.__all__,
]
