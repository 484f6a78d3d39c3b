"""The exceptions lrq raises.

Every error lrq reports on purpose is an :class:`LrqError`, which is a
``ValueError`` so that code written for numpy-style validation keeps working.
The subclasses mirror the error groups of the C core (``LRQ_ERR_*`` in
``lrq.h``), so a caller can tell a damaged file from a file that is merely
newer than this library, or from a bad argument it passed itself.
"""

from __future__ import annotations


class LrqError(ValueError):
    """Base class of every error lrq raises on purpose."""


class FormatError(LrqError):
    """The bytes are not a valid ``.lrq`` file: wrong magic, a broken header,
    a section out of place, non-zero padding, a value out of range, or a file
    cut short. Raised by decoders; the message names the rule that failed."""


class ChecksumError(LrqError):
    """A CRC-32C stored in the file does not match the bytes it covers: the
    file was damaged after it was written."""


class UnsupportedError(LrqError):
    """The file is well formed but needs something this library does not
    implement: a newer major format version or an unknown required feature."""


class ArgumentError(LrqError):
    """A caller passed something lrq cannot work with: a wrong shape or dtype,
    non-finite values, an unknown scheme, or an absurd parameter."""


class BudgetError(ArgumentError):
    """The requested target cannot be met: no encoding of the chosen scheme
    fits the ``bits=`` budget (headers alone may exceed it for tiny matrices),
    or none reaches the ``rel_error=`` goal."""


class ResourceError(LrqError):
    """Memory could not be obtained for a result of the size the file
    describes, or an I/O operation failed."""


class LrqWarning(UserWarning):
    """Something lrq was asked for through the environment and could not do
    (an ``LRQ_NUM_THREADS`` or ``LRQ_FORCE_ISA`` value it ignores); lrq goes
    on with its default and says which."""


__all__ = [
    "LrqWarning",
    "LrqError",
    "FormatError",
    "ChecksumError",
    "UnsupportedError",
    "ArgumentError",
    "BudgetError",
    "ResourceError",
]
