"""The ``lrq`` command: compress, decompress, info, verify, demo (also ``python -m lrq``).

Every command takes ``-q`` / ``-v`` and reports failures by exit status
(``EXIT_*`` below, listed in ``lrq --help``); ``-`` names standard input or
output.  Outputs are checked before any work and written through
:func:`lrq.files.atomic_write`.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import io as _bytes_io
import itertools
import json
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import zipfile
from typing import Optional

import numpy as np

from . import __version__, _native, files, grouping, io, safetensors_file
from ._text import plural, print_table
from .encoder import encode
from .errors import ArgumentError, BudgetError, ChecksumError, FormatError, LrqError, ResourceError, UnsupportedError
from .inputs import INPUT_TYPES, read_source

# Exit statuses, so that a script can tell what went wrong (listed in `lrq --help`).
EXIT_OK = 0
EXIT_VERIFY_FAILED = 1
EXIT_USAGE = 2
EXIT_FILE = 3
EXIT_BAD_INPUT = 4
EXIT_UNSUPPORTED = 5
EXIT_INTERRUPTED = 130

_EXIT_HELP = f"""\
exit status:
  {EXIT_OK}    success
  {EXIT_VERIFY_FAILED}    verify: a file failed verification (damaged, or the two decoders disagree)
  {EXIT_USAGE}    usage: a bad command line or option value, or a target that cannot be met
  {EXIT_FILE}    a file could not be read or written (missing, a folder that is not one, no space, no permission)
  {EXIT_BAD_INPUT}    an input is damaged, not of its type, or holds values lrq cannot store (NaN, infinity)
  {EXIT_UNSUPPORTED}    a .lrq file needs a newer lrq, or an optional package is missing (h5py for HDF5)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); no output file is left behind

"-" as a file name reads standard input or writes standard output."""


class CliError(LrqError):
    """An error the command reports with a given exit status."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, CliError):
        return exc.code
    if isinstance(exc, (ResourceError, OSError)):
        return EXIT_FILE
    if isinstance(exc, UnsupportedError):
        return EXIT_UNSUPPORTED
    if isinstance(exc, ArgumentError):
        return EXIT_USAGE
    return EXIT_BAD_INPUT  # FormatError, ChecksumError and any other damage found in an input


_API_OPTIONS = {"bits", "width", "rel_error", "rank", "threads", "tile_shape", "variant", "c_storage", "refit", "seed"}


def _cli_terms(message: str) -> str:
    """An encoder message in the command's terms: ``--bits``, not ``bits=``."""
    message = re.sub(r"\bscheme='(\w+)'", r"--scheme \1", message)

    def option(match):
        name = "tile" if match[1] == "tile_shape" else match[1].replace("_", "-")
        return f"--{name} "

    message = re.sub(r"\b(\w+)=(?=[\w.\s,;)]|$)", lambda m: option(m) if m[1] in _API_OPTIONS else m[0], message)
    return re.sub(r" +([ ,;)]|$)", r"\1", message)


# ---------------------------------------------------------------- progress

def _clock_text(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """A one-line progress bar with an ETA on stderr (plain lines when not a terminal).

    On a terminal a background thread redraws the line every half second,
    so the elapsed time and the estimate keep moving between encoder reports.
    """

    REDRAW_S = 0.5

    def __init__(self, stream=None, enabled: bool = True, clock=time.monotonic, ticker: bool = True):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.clock = clock
        self.started: Optional[float] = None
        self.last_print = float("-inf")
        self.last_line = ""
        self.fraction, self.message = 0.0, ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = None
        self._use_ticker = ticker

    def line(self, now: float) -> str:
        elapsed = now - (self.started if self.started is not None else now)
        if self.fraction >= 0.01 and elapsed >= 1.0 and self.fraction < 1.0:
            eta = f"ETA {_clock_text(elapsed * (1.0 - self.fraction) / self.fraction)}"
        else:
            eta = "ETA -:--" if self.fraction < 1.0 else "done"
        filled = int(30 * self.fraction)
        bar = f"[{'#' * filled}{' ' * (30 - filled)}] " if self.tty else ""
        return f"{bar}{100 * self.fraction:5.1f}% {_clock_text(elapsed)} {eta}  {self.message}"

    def update(self, fraction: float, message: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            now = self.clock()
            if self.started is None:
                self.started = now
                if self.tty and self._use_ticker:
                    self._ticker = threading.Thread(target=self._tick_loop, name="lrq-progress", daemon=True)
                    self._ticker.start()
            self.fraction, self.message = min(max(float(fraction), 0.0), 1.0), message
            interval = 0.1 if self.tty else 5.0
            if now - self.last_print >= interval or (self.tty and self.fraction >= 1.0):
                self._draw(now)

    def tick(self) -> None:
        """Redraw if the line is older than REDRAW_S (the ticker's job)."""
        with self._lock:
            now = self.clock()
            if self.enabled and self.started is not None and now - self.last_print >= self.REDRAW_S:
                self._draw(now)

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.REDRAW_S / 2):
            self.tick()

    def _draw(self, now: float) -> None:
        text = self.line(now)
        if self.tty:
            text = text[:120]
            self.stream.write("\r" + text.ljust(len(self.last_line)))
            self.last_line = text
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self.last_print = now

    def done(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        with self._lock:
            if self.enabled and self.tty and self.last_line:
                self.stream.write("\r" + " " * len(self.last_line) + "\r")
                self.stream.flush()
                self.last_line = ""
            self.enabled = False


# ---------------------------------------------------------------- files

def _refuse_same_file(path: str, source: str) -> None:
    """An output that is the input (also through hard or symbolic links)
    would destroy it."""
    if "-" not in (path, source) and files.same_file(path, source):
        raise CliError(f"{path} is the input file {source}; choose another output name", EXIT_USAGE)


def _check_output(path: str, source: str) -> None:
    """Refuse an output that is the input or cannot be written, before any
    work is done."""
    _refuse_same_file(path, source)
    files.check_writable(path)


def _write_file(path: str, data_writer) -> None:
    """Write a file atomically (:func:`lrq.files.atomic_write`) or to standard output."""
    if path != "-":
        files.atomic_write(path, data_writer)
        return
    buffer = _bytes_io.BytesIO()
    data_writer(buffer)
    sys.stdout.buffer.write(buffer.getvalue())
    sys.stdout.buffer.flush()


def _save_lrq(path: str, matrices: dict, metadata: Optional[dict]) -> int:
    """io.save to a path or to standard output; returns the bytes written."""
    if path != "-":
        io.save(path, matrices, metadata=metadata)
        return os.path.getsize(path)
    with tempfile.TemporaryDirectory() as folder:
        staged = os.path.join(folder, "out.lrq")
        io.save(staged, matrices, metadata=metadata)
        with open(staged, "rb") as fh:
            shutil.copyfileobj(fh, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return os.path.getsize(staged)


def _refuse_terminal(path: str) -> None:
    if path == "-" and sys.stdout.isatty():
        raise CliError("refusing to write binary data to a terminal; redirect standard output or name a file", EXIT_USAGE)


def _named(label: str, exc: LrqError) -> LrqError:
    """The same error, its message starting with the file it is about."""
    message = str(exc)
    if label in message:
        return exc
    named = CliError(f"{label}: {message}", exc.code) if isinstance(exc, CliError) else type(exc)(f"{label}: {message}")
    return named


@contextlib.contextmanager
def _lrq_input(path: str):
    """(matrices by name, metadata, format version, size) of a .lrq file or
    of standard input (staged in a private temporary folder)."""
    with contextlib.ExitStack() as stack:
        label, opened = ("standard input", path) if path == "-" else (path, path)
        if path == "-":
            folder = stack.enter_context(tempfile.TemporaryDirectory())
            opened = os.path.join(folder, "input.lrq")
            with open(opened, "wb") as fh:
                shutil.copyfileobj(sys.stdin.buffer, fh)
        try:
            f = stack.enter_context(io.open(opened))
        except LrqError as exc:
            raise _named(label, exc) from None
        yield ({name: f[name] for name in f}, dict(f.metadata), f.format_version, os.path.getsize(opened),
               dict(f.groups))


def _read_bytes(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise ResourceError(f"cannot open {path}: {exc.strerror or exc}") from None


def _output(args, default: Optional[str]) -> str:
    if args.output and args.output_option and args.output != args.output_option:
        raise CliError(f"two outputs given ({args.output} and -o {args.output_option}); give one", EXIT_USAGE)
    output = args.output or args.output_option or default
    if output is None:
        raise CliError("name the output file (OUTPUT or -o OUTPUT; '-' for standard output)", EXIT_USAGE)
    return output


def _note(args, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr)


# ---------------------------------------------------------------- HDF5

_HDF5_EXTENSIONS = (".h5", ".hdf5")


def _is_hdf5(path: str) -> bool:
    return path != "-" and os.path.splitext(path)[1].lower() in _HDF5_EXTENSIONS


def _hdf5_modules(label: str):
    """(h5py, lrq.hdf5), or an UnsupportedError naming what is missing."""
    try:
        import h5py
    except ImportError:
        raise UnsupportedError(f"{label}: HDF5 files need the h5py package (pip install h5py)") from None
    try:
        from . import hdf5 as lrq_hdf5
    except ImportError as exc:
        raise UnsupportedError(f"{label}: {exc}") from None
    return h5py, lrq_hdf5


def _open_hdf5(h5py, path: str):
    if not os.path.isfile(path):
        reason = "not a regular file" if os.path.exists(path) else "No such file or directory"
        raise ResourceError(f"cannot read {path}: {reason}")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise FormatError(f"{path}: not a readable HDF5 file: {exc}") from None


def _is_lrq_filtered(dataset, lrq_hdf5) -> bool:
    plist = dataset.id.get_create_plist()
    return any(plist.get_filter(i)[0] == lrq_hdf5.FILTER_ID for i in range(plist.get_nfilters()))


# Attributes the HDF5 dimension-scale API keeps (object references to the
# scales and back); the copy attaches the scales again instead.
_DIMENSION_SCALE_LINKS = ("DIMENSION_LIST", "REFERENCE_LIST")


class _TreeCopy:
    """A copy of an HDF5 file's tree: groups, attributes, soft and external
    links, named types, with every dataset handed to
    ``copy_dataset(dataset, group, name)`` (which returns the new dataset).
    Attributes holding object references are rebuilt to point to the same
    paths in the copy, and dimension scales are attached again, once the
    whole tree exists; references of other kinds (regions, or inside
    compound and variable-length values) cannot be carried over and are
    left out with a note."""

    def __init__(self, h5py, copy_dataset):
        self.h5py, self.copy_dataset = h5py, copy_dataset
        self.references: list = []  # (target object, key, value) to rebuild
        self.notes: list = []

    def run(self, source, target) -> None:
        self._group(source, target)
        for item, key, value in self.references:
            item.attrs[key] = self._moved(source, target, value)
        self._attach_scales(source, target)

    def _group(self, source, target) -> None:
        h5py = self.h5py
        self.attributes(source, target)
        for key in source:
            link = source.get(key, getlink=True)
            if isinstance(link, h5py.SoftLink):
                target[key] = h5py.SoftLink(link.path)
            elif isinstance(link, h5py.ExternalLink):
                target[key] = h5py.ExternalLink(link.filename, link.path)
            else:
                item = source[key]
                if isinstance(item, h5py.Group):
                    self._group(item, target.create_group(key))
                elif isinstance(item, h5py.Dataset):
                    self.attributes(item, self.copy_dataset(item, target, key))
                else:
                    source.copy(item, target, name=key, without_attrs=True)
                    self.attributes(item, target[key])

    def attributes(self, source, target) -> None:
        """Every attribute with its stored type and shape (not as numpy infers it)."""
        h5py = self.h5py
        for key in source.attrs:
            stored = source.attrs.get_id(key)
            kind = h5py.check_dtype(ref=stored.dtype)
            if isinstance(source, h5py.Dataset) and key in _DIMENSION_SCALE_LINKS:
                continue
            if kind is h5py.Reference:
                self.references.append((target, key, source.attrs[key]))
            elif kind is not None or _holds_references(h5py, stored.dtype):
                self.notes.append(f"attribute '{key}' of '{source.name}' holds references of a kind the copy "
                                  "cannot carry over; left out")
            else:
                target.attrs.create(key, source.attrs[key], shape=stored.shape, dtype=stored.dtype)

    def _moved(self, source, target, value):
        """Object references into ``source`` as references to the same paths in ``target``."""
        h5py = self.h5py

        def one(ref):
            return target[source[ref].name].ref if ref else h5py.Reference()

        if isinstance(value, h5py.Reference):
            return one(value)
        moved = np.empty(value.shape, dtype=h5py.ref_dtype)
        for index in np.ndindex(value.shape):
            moved[index] = one(value[index])
        return moved

    def _attach_scales(self, source, target) -> None:
        h5py = self.h5py

        def attach(name, item):
            if isinstance(item, h5py.Dataset) and "DIMENSION_LIST" in item.attrs:
                for axis, dimension in enumerate(item.dims):
                    for scale in dimension.values():
                        target[name].dims[axis].attach_scale(target[scale.name])

        source.visititems(attach)


def _holds_references(h5py, dtype) -> bool:
    base = h5py.check_vlen_dtype(dtype)
    if base is not None:  # a sequence of base values, or str / bytes for a string
        return isinstance(base, np.dtype) and _holds_references(h5py, base)
    if dtype.fields:
        return any(_holds_references(h5py, field[0]) for field in dtype.fields.values())
    return dtype.subdtype is not None and _holds_references(h5py, dtype.subdtype[0]) or \
        h5py.check_dtype(ref=dtype) is not None


def _copy_as_is(dataset, group, key):
    """The dataset copied by HDF5 with its storage and filters (the tree copy adds its attributes)."""
    dataset.parent.copy(dataset, group, name=key, without_attrs=True)
    return group[key]


def _datasets(h5py, handle) -> list:
    names: list = []
    handle.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
    return names


def _write_hdf5(h5py, output: str, build) -> int:
    """Build an HDF5 file with ``build(h5py_file)`` in a private temporary
    folder (HDF5 needs a file it can read back and seek in), then write it to
    ``output`` atomically or to standard output; returns its size."""
    with tempfile.TemporaryDirectory() as folder:
        staged = os.path.join(folder, "out.h5")
        with h5py.File(staged, "w") as handle:
            build(handle)

        def copy(fh):
            with open(staged, "rb") as src:
                shutil.copyfileobj(src, fh, 1 << 20)

        _write_file(output, copy)
        return os.path.getsize(staged)


def _chunk_corner(region) -> tuple:
    return tuple(int(part.start or 0) for part in region)


class _CheckedBlocks:
    """A dataset as :func:`lrq.hdf5.write` reads it, one chunk's block at a
    time: in native byte order, checked for NaN and infinity (the error names
    the dataset and the index), the squared norm of each block kept (to give
    the dataset's error from the chunks' own), progress reported."""

    def __init__(self, dataset, label: str, report):
        self._dataset, self._label, self._report = dataset, label, report
        self.shape = tuple(dataset.shape)
        self.dtype = dataset.dtype.newbyteorder("=")
        self.squared_norms: dict = {}
        self._entries = 0

    def __getitem__(self, region):
        block = np.asarray(self._dataset[region], self.dtype)
        finite = np.isfinite(block)
        if not finite.all():
            where = [int(o + i) for o, i in zip(_chunk_corner(region), np.argwhere(~finite)[0])]
            raise CliError(f"{self._label}: dataset '{self._dataset.name.lstrip('/')}' holds NaN or infinity "
                           f"(first at index {where}); lrq stores finite values only", EXIT_BAD_INPUT)
        wide = block.astype(np.float64).ravel()
        self.squared_norms[_chunk_corner(region)] = float(wide @ wide)
        self._entries += block.size
        self._report(self._entries / max(self._dataset.size, 1))
        return block


def _lrq_dataset_summary(dataset, lrq_hdf5, squared_norms: Optional[dict] = None) -> dict:
    """What the stored chunks of an lrq-filtered dataset say: schemes, bytes,
    bits/entry, the worst chunk's relative error (each chunk's stream records
    the error measured when it was encoded) and, given each chunk's squared
    norm, the error of the whole dataset."""
    schemes: dict = {}
    stored = unfiltered = 0
    worst, known, error_sq = None, True, 0.0
    for i in range(dataset.id.get_num_chunks()):
        chunk = dataset.id.get_chunk_info(i)
        stored += chunk.size
        if chunk.filter_mask:
            unfiltered += 1  # refused by the filter or declined by it [H5-7], [H5-10]: exact
            continue
        where = f"dataset '{dataset.name}' chunk at {tuple(chunk.chunk_offset)}"
        try:
            matrix = io.loads(dataset.id.read_direct_chunk(chunk.chunk_offset)[1])
        except LrqError as exc:
            raise type(exc)(f"{where}: {exc}") from None
        schemes[matrix.scheme] = schemes.get(matrix.scheme, 0) + 1
        if matrix.rel_error is None:
            known = False
            continue
        worst = max(worst or 0.0, matrix.rel_error)
        if squared_norms is not None:
            error_sq += matrix.rel_error ** 2 * squared_norms.get(tuple(chunk.chunk_offset), 0.0)
    total_sq = sum(squared_norms.values()) if squared_norms else 0.0
    whole = math.sqrt(error_sq / total_sq) if known and squared_norms is not None and total_sq > 0 else None
    request = lrq_hdf5.encoding_request(dataset)
    target = " ".join(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
                      for key, value in request.items()
                      if key != "scheme" and (key, value) not in (("seed", 0), ("c_storage", "float32")))
    return {
        "name": dataset.name.lstrip("/"), "shape": list(dataset.shape), "dtype": dataset.dtype.name,
        "chunks": list(dataset.chunks), "request": request, "_params": target or "-",
        "scheme": next(iter(schemes)) if len(schemes) == 1 else "mixed", "chunk_schemes": schemes,
        "unfiltered_chunks": unfiltered, "bytes": stored, "bits_per_entry": 8.0 * stored / max(dataset.size, 1),
        "worst_chunk_rel_error": worst if known else None, "rel_error": whole,
    }


def _hdf5_chunks(tile, shape, default_edge: int) -> tuple:
    """The chunk shape of a compressed dataset: ``--tile`` (clipped to the
    dataset), else at most ``default_edge`` along each side, split evenly.
    Edge chunks get the budget of a full chunk (lrq.hdf5.write), so even
    chunks keep a dataset's bits/entry at the target: 300 rows are 2 chunks
    of 150, not 256 + 44."""
    if tile is not None:
        return tuple(min(t, d) for t, d in zip(tile, shape))
    return tuple(-(-d // -(-d // default_edge)) for d in shape)


def _compress_to_hdf5(args, output: str) -> int:
    """``lrq compress in.h5 out.h5``: an lrq-filtered copy of an HDF5 file."""
    if not _is_hdf5(args.input):
        raise CliError(f"{output}: an HDF5 output is an lrq-filtered copy of an HDF5 input, and "
                       f"{'standard input' if args.input == '-' else args.input} is not a .h5 / .hdf5 file "
                       "(write a .lrq file instead)", EXIT_USAGE)
    _refuse_terminal(output)
    options = _encoder_options(args)
    tile = options.pop("tile_shape", None)  # the chunk is the tile (c_src/hdf5/README.md)
    h5py, lrq_hdf5 = _hdf5_modules(args.input)
    if output != "-":
        _check_output(output, args.input)
    source = _open_hdf5(h5py, args.input)
    with source:
        names = _datasets(h5py, source)
        if not names:
            raise CliError(f"{args.input}: no datasets found", EXIT_BAD_INPUT)
        chosen = _selected(names, args.include, args.exclude)
        progress = Progress(enabled=not args.quiet)
        compressed, copied = [], []
        started = time.perf_counter()

        def copy_dataset(dataset, group, key):
            name = dataset.name.lstrip("/")
            reason = _hdf5_copy_reason(dataset, lrq_hdf5, name in chosen, args.scheme)
            if reason is None:
                index = len(compressed) + len(copied)

                def report(fraction):
                    progress.update((index + fraction) / len(names), f"{name}: encoding")

                blocks = _CheckedBlocks(dataset, args.input, report)
                begin = time.perf_counter()
                try:
                    written = lrq_hdf5.write(group, key, blocks, scheme=args.scheme, **dict(options),
                                             chunks=_hdf5_chunks(tile, dataset.shape, lrq_hdf5.DEFAULT_CHUNK_EDGE))
                except BudgetError as exc:
                    reason = f"too small for the target: {_cli_terms(str(exc))}"
                except CliError:
                    raise
                except LrqError as exc:
                    raise type(exc)(f"{args.input}: dataset '{name}': {exc}") from None
                else:
                    summary = _lrq_dataset_summary(written, lrq_hdf5, blocks.squared_norms)
                    summary["seconds"] = time.perf_counter() - begin
                    compressed.append(summary)
                    return written
            copied.append((name, reason))
            return _copy_as_is(dataset, group, key)

        tree = _TreeCopy(h5py, copy_dataset)
        try:
            size_out = _write_hdf5(h5py, output, lambda out: tree.run(source, out))
        finally:
            progress.done()
    elapsed = time.perf_counter() - started
    if args.verbose:
        for s in compressed:
            error = "-" if s["rel_error"] is None else f"{s['rel_error']:.4g}"
            print(f"  {s['name']}: {'×'.join(map(str, s['shape']))} in chunks of {'×'.join(map(str, s['chunks']))}, "
                  f"{_scheme_text(s)}, {s['bits_per_entry']:.3f} bits/entry, rel_error {error}, "
                  f"{s['seconds']:.2f} s", file=sys.stderr)
    if copied:
        _note(args, f"copied as they are, not compressed ({plural(len(copied), 'dataset')}):")
        for name, reason in copied:
            _note(args, f"  {name}: {reason}")
    for text in tree.notes:
        _note(args, text)
    size_in = os.path.getsize(args.input)
    _note(args, f"{args.input} -> {'standard output' if output == '-' else output}: {plural(len(names), 'dataset')} "
                f"({len(compressed)} lrq-filtered), {size_in:,} -> {size_out:,} bytes "
                f"({_size_change(size_in, size_out)}) in {elapsed:.1f} s")
    return EXIT_OK


def _hdf5_copy_reason(dataset, lrq_hdf5, chosen: bool, scheme: str) -> Optional[str]:
    """Why a dataset is copied as it is rather than compressed (None when it is compressed)."""
    if dataset.dtype.kind != "f":
        return f"{dataset.dtype} values are copied exactly; only float datasets are compressed"
    if dataset.ndim != 2:
        kind = {0: "a scalar", 1: "1-D"}.get(dataset.ndim, f"{dataset.ndim}-D")
        return f"{kind}; only 2-D matrices are compressed"
    if dataset.dtype.itemsize not in (4, 8):
        return f"{dataset.dtype} (the lrq filter stores float32 and float64 datasets)"
    if dataset.size == 0:
        return "empty"
    if _is_lrq_filtered(dataset, lrq_hdf5):
        return "lrq-filtered already"
    if not chosen:
        return "left out by --include / --exclude"
    if scheme == "dense":
        return "--scheme dense"
    return None


def _scheme_text(summary: dict) -> str:
    schemes = summary["chunk_schemes"]
    text = summary["scheme"] if len(schemes) <= 1 else \
        "mixed (" + ", ".join(f"{s} {n}" for s, n in sorted(schemes.items())) + ")"
    if summary["unfiltered_chunks"]:
        text += f", {plural(summary['unfiltered_chunks'], 'chunk')} stored unfiltered"
    return text


# ---------------------------------------------------------------- compress

_SCHEME_OF_OPTION = {"rank": "lplr", "variant": "lplr", "c_storage": "signcut", "refit": "signcut", "width": "signcut"}


def _encoder_options(args) -> dict:
    options = {}
    for key in ("bits", "width", "rel_error", "rank", "variant", "c_storage", "threads"):
        value = getattr(args, key)
        if value is not None:
            options[key] = value
    if args.refit:
        options["refit"] = True
    for key, scheme in _SCHEME_OF_OPTION.items():
        if key in options and args.scheme not in (scheme, "auto" if key != "width" else scheme):
            flag = "--" + key.replace("_", "-")
            raise CliError(f"{flag} applies to --scheme {scheme}" + ("" if key == "width" else " (or auto)")
                           + f", not --scheme {args.scheme}", EXIT_USAGE)
    if args.tile:
        options["tile_shape"] = tuple(args.tile)
    options["seed"] = args.seed
    return options


def _selected(names, include, exclude) -> set:
    """Names the patterns choose for compression; a pattern that matches no
    tensor is an error (most likely a typo)."""
    for pattern in (include or []) + (exclude or []):
        if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
            raise CliError(f"the pattern '{pattern}' matches no tensor name (names look like '{names[0]}')", EXIT_USAGE)
    chosen = set(names) if not include else {n for n in names if any(fnmatch.fnmatchcase(n, p) for p in include)}
    return {n for n in chosen if not any(fnmatch.fnmatchcase(n, p) for p in exclude or [])}


def _check_finite(label: str, tensor) -> None:
    if tensor.is_float:
        finite = np.isfinite(tensor.as_float())
        if not finite.all():
            where = tuple(int(i) for i in np.argwhere(~finite)[0])
            raise CliError(f"{label}: tensor '{tensor.name}' holds NaN or infinity (first at index {list(where)}); "
                           "lrq stores finite values only", EXIT_BAD_INPUT)


def _size_change(size_in: int, size_out: int) -> str:
    if size_out < size_in:
        return f"{size_in / size_out:.2f}x smaller"
    if size_out > size_in:
        return f"{size_out / max(size_in, 1):.2f}x larger"
    return "the same size"


def _tile_encoder(args, options: dict):
    """(encode function, closer): ``lrq.encode``, or with ``--scheduler``
    ``lrq.dask.encode`` on that cluster (the same bytes, tiles encoded on
    its workers)."""
    if args.scheduler is None:
        return encode, lambda: None
    if args.joint:
        raise CliError("--scheduler encodes tiles one tensor at a time; it does not combine with --joint", EXIT_USAGE)
    try:
        import distributed

        from . import dask as lrq_dask
    except ImportError as exc:
        raise CliError(f"--scheduler needs dask.distributed ({exc}); pip install 'lrq[dask]'", EXIT_UNSUPPORTED) from None
    try:
        client = distributed.Client(args.scheduler)  # waits distributed.comm.timeouts.connect (30 s)
    except (OSError, TimeoutError, ValueError) as exc:
        raise CliError(f"--scheduler {args.scheduler}: cannot connect ({exc})", EXIT_FILE) from None
    options.pop("threads", None)  # the workers' threads; never changes the bytes

    def encode_on_cluster(a, scheme, **kwargs):
        return lrq_dask.encode(a, None, scheme, client=client, **kwargs)

    return encode_on_cluster, client.close


def cmd_compress(args) -> int:
    stem = os.path.splitext(args.input)[0]
    output = _output(args, None if args.input == "-" else stem + ".lrq")
    _refuse_same_file(output, args.input)
    if _is_hdf5(output):
        if args.joint or args.scheduler:
            raise CliError(f"{'--joint' if args.joint else '--scheduler'} writes a .lrq file, not an lrq-filtered "
                           "HDF5 copy", EXIT_USAGE)
        return _compress_to_hdf5(args, output)
    if output != "-" and not output.lower().endswith(".lrq"):
        raise CliError(f"{output}: the output of compress must end in .lrq, or in .h5 / .hdf5 for an "
                       "lrq-filtered HDF5 copy of an HDF5 input", EXIT_USAGE)
    _refuse_terminal(output)
    options = _encoder_options(args)
    if output != "-":
        _check_output(output, args.input)
    source = read_source(args.input)
    if not source.tensors:
        raise CliError(f"{source.label}: no tensors found", EXIT_BAD_INPUT)
    chosen = _selected([t.name for t in source.tensors], args.include, args.exclude)
    for tensor in source.tensors:
        _check_finite(source.label, tensor)

    if args.joint and args.scheme == "dense":
        raise CliError("--joint shares factors of signcut or lplr; it does not apply to --scheme dense", EXIT_USAGE)
    if args.joint and args.width is not None:
        raise CliError("--joint compares joint and separate encodings at one bits budget or error target; "
                       "use --bits or --rel-error, not --width", EXIT_USAGE)

    progress = Progress(enabled=not args.quiet)
    matrices, dense, timings, choices = {}, [], [], []
    started = time.perf_counter()
    encode_tensor, close_encoder = _tile_encoder(args, options)
    try:
        for i, src in enumerate(source.tensors):
            def report(fraction, message, i=i, name=src.name):
                progress.update((i + fraction) / len(source.tensors), f"{name}: {message}")

            reason = src.dense_reason()
            if reason is None and src.name not in chosen:
                reason = "left out by --include / --exclude"
            if reason is None and args.scheme == "dense":
                reason = "--scheme dense"
            if reason is None:
                begin = time.perf_counter()
                try:
                    matrices[src.name] = encode_tensor(src.as_float(), args.scheme, progress=report, name=src.name,
                                                       source_dtype=src.dtype, **options)
                    timings.append((src.name, time.perf_counter() - begin))
                    continue
                except BudgetError as exc:
                    reason = f"too small for the target: {_cli_terms(str(exc))}"
                except LrqError as exc:
                    raise type(exc)(f"{source.label}: tensor '{src.name}': {exc}") from None
            dense.append((src.name, reason))
            matrices[src.name] = io.dense_matrix(src.name, src.as_float() if src.dtype == "bfloat16" else src.values,
                                                 src.dtype)
        if args.joint:
            matrices, choices = _joint_groups(source, matrices, {n for n, _ in timings}, args.scheme, options,
                                              progress)
    finally:
        progress.done()
        close_encoder()
    size_out = _save_lrq(output, matrices, source.metadata)
    elapsed = time.perf_counter() - started

    if args.verbose:
        for name, seconds in timings:
            m = matrices[name]
            print(f"  {name}: {'×'.join(map(str, m.shape))} {m.scheme}, {m.bits_per_entry:.3f} bits/entry, "
                  f"rel_error {m.rel_error:.4g}, {seconds:.2f} s", file=sys.stderr)
    if args.joint:
        _report_groups(args, choices)
    if dense:
        _note(args, f"stored losslessly, not compressed ({plural(len(dense), 'tensor')}):")
        for name, reason in dense:
            _note(args, f"  {name}: {reason}")
    count = len(source.tensors)
    _note(args, f"{source.label} -> {'standard output' if output == '-' else output}: {plural(count, 'tensor')} "
                f"({count - len(dense)} compressed), {source.size:,} -> {size_out:,} bytes "
                f"({_size_change(source.size, size_out)}) in {elapsed:.1f} s")
    return EXIT_OK


def _joint_groups(source, matrices: dict, compressed: set, scheme: str, options: dict, progress) -> tuple:
    """The matrices with joint groups where they win (lrq.grouping), and the
    choices made.  Only members compressed alone are grouped (2-D float,
    chosen by --include / --exclude, encodable at the target)."""
    tensors = {t.name: t for t in source.tensors}
    current = [""]

    def report(fraction, name):
        current[0] = name
        progress.update(fraction, f"joint groups: {name}")

    try:
        return grouping.group_where_it_wins({n: t.values.shape for n, t in tensors.items()}, matrices, compressed,
                                            lambda n: tensors[n].as_float(), scheme, options, report,
                                            lambda n: tensors[n].dtype)
    except LrqError as exc:
        raise type(exc)(f"{source.label}: joint group '{current[0]}': {exc}") from None


def _report_groups(args, choices: list) -> None:
    """One line per block found by name: what was kept, and the error of the
    block's members together with its bits per entry, each way tried."""
    if not choices:
        _note(args, "--joint: no query/key/value or gate/up blocks found by name")
        return
    made = sum(c.group is not None for c in choices)
    _note(args, f"joint groups ({made} of {plural(len(choices), 'block')} grouped; error of the block's members "
                f"together at its bits/entry, each way tried):")
    for c in choices:
        if c.group is not None:
            alone = f" ({'+'.join(c.roles[n] for n in c.alone)} alone)" if c.alone else ""
            what = f"joint {c.kept}{alone}"
        else:
            what = "kept separate"
        entries = sum(m.size for m in c.alone.values()) + (c.group.size if c.group is not None else 0)
        tried = "; ".join(f"{label} {err:.4g} at {8 * nbytes / entries:.3f} bits" if entries else f"{label} {err:.4g}"
                          for label, (err, nbytes) in c.errors.items())
        _note(args, f"  {c.name}: {what}" + (f" [{tried}]" if tried else ""))
        for note in c.notes:
            _note(args, f"    {_cli_terms(note)}")


# ---------------------------------------------------------------- decompress

_OUTPUT_FORMATS = {".npy": "npy", ".npz": "npz", ".safetensors": "safetensors", ".h5": "hdf5", ".hdf5": "hdf5"}


def _write_npz(fh, arrays: dict) -> None:
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def _chosen_tensors(args, available: list, fmt: str) -> list:
    """The names ``--tensor`` picks from ``available`` (all by default)."""
    names = args.tensor or available
    for name in names:
        if name not in available:
            raise CliError(f"{args.input} has no tensor named '{name}' (it has: {', '.join(available[:8])})",
                           EXIT_USAGE)
    if fmt == "npy" and len(names) != 1:
        raise CliError(f"{args.input} holds {plural(len(names), 'tensor')}; name one with --tensor, "
                       "or write .npz or .safetensors", EXIT_USAGE)
    return names


def _decoded(args, fmt: str):
    """(arrays, dtype names, tensor names, metadata) of the tensors to write."""
    if _is_hdf5(args.input):
        _hdf5_modules(args.input)  # registers the lrq filter, which decodes lrq-filtered datasets
        tensors = {t.name: t for t in read_source(args.input).tensors}
        names = _chosen_tensors(args, list(tensors), fmt)
        return ({n: tensors[n].values for n in names}, {n: tensors[n].dtype for n in names}, names, None)
    with _lrq_input(args.input) as (matrices, metadata, _, _, _):
        names = _chosen_tensors(args, list(matrices), fmt)
        arrays, dtypes = {}, {}
        for name in names:
            m = matrices[name]
            values = io.decode(m)  # bfloat16 decodes to float32; the safetensors writer rounds it back
            if m.source_dtype == "bfloat16" and fmt != "safetensors":
                _note(args, f"tensor '{name}' was bfloat16, which {fmt} cannot hold: written as float32 "
                            "(write .safetensors to keep bfloat16)")
            arrays[name], dtypes[name] = values, m.source_dtype if fmt == "safetensors" else values.dtype.name
    return arrays, dtypes, names, metadata


def _hdf5_datasets_writer(h5py, arrays: dict, names: list, metadata: Optional[dict]):
    """``build(h5py_file)`` writing each tensor as a plain dataset (names with
    ``/`` make groups) and the file's metadata as attributes of the root."""
    def build(handle):
        for key, value in (metadata or {}).items():
            handle.attrs[key] = value
        for name in names:
            try:
                handle.create_dataset(name, data=arrays[name])
            except (ValueError, TypeError, KeyError) as exc:
                raise CliError(f"tensor '{name}' cannot be an HDF5 dataset ({exc}); "
                               "write .npz or .safetensors instead", EXIT_USAGE) from None
    return build


def _decompress_hdf5_copy(args, output: str) -> int:
    """``lrq decompress filtered.h5 out.h5``: a copy whose lrq-filtered
    datasets are plain (decoded through the filter one chunk at a time);
    everything else is copied as it is."""
    if args.tensor:
        raise CliError("--tensor picks tensors for .npy, .npz or .safetensors; an HDF5 copy keeps every dataset",
                       EXIT_USAGE)
    h5py, lrq_hdf5 = _hdf5_modules(args.input)
    decoded = []

    def copy_dataset(dataset, group, key):
        if not _is_lrq_filtered(dataset, lrq_hdf5):
            return _copy_as_is(dataset, group, key)
        plain = group.create_dataset(key, shape=dataset.shape, dtype=dataset.dtype)
        grid = [range(0, d, c) for d, c in zip(dataset.shape, dataset.chunks)]
        for corner in itertools.product(*grid):
            region = tuple(slice(o, o + c) for o, c in zip(corner, dataset.chunks))
            try:
                plain[region] = dataset[region]
            except OSError as exc:
                raise FormatError(f"{args.input}: dataset '{dataset.name.lstrip('/')}' chunk at {corner} "
                                  f"cannot be decoded: {exc}") from None
        decoded.append(dataset.name.lstrip("/"))
        return plain

    tree = _TreeCopy(h5py, copy_dataset)
    with _open_hdf5(h5py, args.input) as source:
        total = len(_datasets(h5py, source))
        _write_hdf5(h5py, output, lambda out: tree.run(source, out))
    for text in tree.notes:
        _note(args, text)
    if args.verbose:
        for name in decoded:
            print(f"  {name}: decoded to a plain dataset", file=sys.stderr)
    _note(args, f"{args.input} -> {'standard output' if output == '-' else output}: {plural(total, 'dataset')} "
                f"({len(decoded)} decoded from lrq, the rest copied as they are)")
    return EXIT_OK


def cmd_decompress(args) -> int:
    output = _output(args, None)
    _refuse_same_file(output, args.input)
    fmt = args.format or ("safetensors" if output == "-" else _OUTPUT_FORMATS.get(os.path.splitext(output)[1].lower()))
    if fmt is None:
        raise CliError(f"{output}: the output of decompress must end in .npy, .npz, .safetensors, .h5 or .hdf5 "
                       "(or give --format)", EXIT_USAGE)
    _refuse_terminal(output)
    if output != "-":
        _check_output(output, args.input)
    if fmt == "hdf5" and _is_hdf5(args.input):
        return _decompress_hdf5_copy(args, output)
    h5py = _hdf5_modules(output)[0] if fmt == "hdf5" else None
    try:
        arrays, dtypes, names, metadata = _decoded(args, fmt)
    except LrqError as exc:
        raise _named("standard input" if args.input == "-" else args.input, exc) from None
    if metadata and fmt not in ("safetensors", "hdf5"):
        _note(args, f"the file's metadata ({plural(len(metadata), 'entry')}) is not written: {fmt} cannot hold it "
                    "(write .safetensors or .h5 to keep it)")
    if fmt == "npy":
        _write_file(output, lambda fh: np.save(fh, arrays[names[0]], allow_pickle=False))
    elif fmt == "npz":
        _write_file(output, lambda fh: _write_npz(fh, arrays))
    elif fmt == "hdf5":
        _write_hdf5(h5py, output, _hdf5_datasets_writer(h5py, arrays, names, metadata))
    else:
        tensors = {name: (arrays[name], dtypes[name]) for name in names}
        _write_file(output, lambda fh: safetensors_file.write(fh, tensors, metadata or None))
    if args.verbose:
        for name in names:
            print(f"  {name}: {'×'.join(map(str, arrays[name].shape))} {dtypes[name]}", file=sys.stderr)
    label = "standard input" if args.input == "-" else args.input
    _note(args, f"{label} -> {'standard output' if output == '-' else output}: {plural(len(names), 'tensor')}")
    return EXIT_OK


# ---------------------------------------------------------------- info

def _describe_params(m) -> str:
    tiles = m.tiles
    if len(tiles) > 1:
        return f"{len(tiles)} tiles of {'×'.join(map(str, m._record.tile_shape))}"
    params = tiles[0][3]
    shown = {k: v for k, v in params.items() if not k.startswith("scale_")}
    return " ".join(f"{k}={v}" for k, v in shown.items())


def _hdf5_info_record(path: str) -> dict:
    """The lrq-filtered datasets of an HDF5 file, described from their stored
    chunks, and the other datasets by shape, type and filters."""
    h5py, lrq_hdf5 = _hdf5_modules(path)
    with _open_hdf5(h5py, path) as handle:
        filtered, others = [], []
        for name in _datasets(h5py, handle):
            dataset = handle[name]
            if _is_lrq_filtered(dataset, lrq_hdf5):
                filtered.append(_lrq_dataset_summary(dataset, lrq_hdf5))
            else:
                plist = dataset.id.get_create_plist()
                filters = [plist.get_filter(i)[3].decode(errors="replace") or str(plist.get_filter(i)[0])
                           for i in range(plist.get_nfilters())]
                others.append({"name": name, "shape": list(dataset.shape), "dtype": str(dataset.dtype),
                               "chunks": list(dataset.chunks) if dataset.chunks else None, "filters": filters})
    return {"path": path, "format": "hdf5", "size": os.path.getsize(path), "datasets": filtered,
            "other_datasets": others}


def _print_hdf5_info(info: dict, verbose: bool) -> None:
    print(f"{info['path']}: HDF5, {plural(len(info['datasets']), 'lrq-filtered dataset')} "
          f"(of {len(info['datasets']) + len(info['other_datasets'])}), {info['size']:,} bytes")
    if info["datasets"]:
        rows = [("name", "shape", "dtype", "scheme", "request", "chunks", "bytes", "bits/entry", "rel_error")]
        for d in info["datasets"]:
            err = "-" if d["worst_chunk_rel_error"] is None else f"≤ {d['worst_chunk_rel_error']:.4g}"
            rows.append((d["name"], "×".join(map(str, d["shape"])), d["dtype"], _scheme_text(d), d["_params"],
                         "×".join(map(str, d["chunks"])), f"{d['bytes']:,}", f"{d['bits_per_entry']:.3f}", err))
        print_table(rows)
        print("  rel_error: the largest of the chunks' relative errors, each measured when it was encoded")
    if verbose:
        for d in info["other_datasets"]:
            chunks = "contiguous" if d["chunks"] is None else "chunks " + "×".join(map(str, d["chunks"]))
            print(f"  not lrq-filtered: {d['name']}: {'×'.join(map(str, d['shape'])) or 'scalar'} {d['dtype']}, "
                  f"{chunks}, filters: {', '.join(d['filters']) or 'none'}")


def _info_record(path: str) -> dict:
    if _is_hdf5(path):
        return _hdf5_info_record(path)
    with _lrq_input(path) as (matrices, metadata, version, size, groups):
        group_of = {member: g for g in groups.values() for member in g}
        tensors = []
        for name, m in matrices.items():
            group = group_of.get(name)
            # A member's bytes leave out the shared factor, which its group
            # counts once (each member's nbytes, a file holding it alone,
            # includes it: summing those would count it once per member).
            nbytes = m.nbytes if group is None else group.member_nbytes(name)
            tensors.append({
                "name": name, "shape": list(m.shape), "dtype": m.source_dtype, "scheme": m.scheme,
                "tiles": [{"origin": list(o), "shape": list(s), "scheme": sc, "params": p} for o, s, sc, p in m.tiles],
                "bytes": nbytes, "bits_per_entry": 8.0 * nbytes / m.size, "rel_error": m.rel_error,
                "group": None if group is None else group.name,
                "privacy": m.privacy,
                "_params": _describe_params(m),
            })
        group_records = [{
            "name": name, "scheme": g.scheme, "columns": g.columns, "members": list(g),
            "shared_bytes": g.shared_nbytes,
            "member_bytes": {member: g.member_nbytes(member) for member in g},
            "bytes": g.shared_nbytes + sum(g.member_nbytes(member) for member in g),
            "bits_per_entry": 8.0 * (g.shared_nbytes + sum(g.member_nbytes(member) for member in g)) / g.size,
        } for name, g in groups.items()]
    return {"path": path, "format_version": f"{version[0]}.{version[1]}",
            "size": size, "metadata": metadata, "tensors": tensors, "groups": group_records}


def _print_info(info: dict, verbose: bool) -> None:
    if info.get("format") == "hdf5":
        _print_hdf5_info(info, verbose)
        return
    label = "standard input" if info["path"] == "-" else info["path"]
    print(f"{label}: .lrq format {info['format_version']}, {plural(len(info['tensors']), 'tensor')}, "
          f"{info['size']:,} bytes")
    for key, value in info["metadata"].items():
        print(f"  metadata {key} = {value}")
    rows = [("name", "shape", "dtype", "scheme", "params", "bytes", "bits/entry", "rel_error")]
    for t in info["tensors"]:
        err = "-" if t["rel_error"] is None else f"{t['rel_error']:.4g}"
        rows.append((t["name"], "×".join(map(str, t["shape"])) or "scalar", t["dtype"], t["scheme"], t["_params"],
                     f"{t['bytes']:,}", f"{t['bits_per_entry']:.3f}", err))
    print_table(rows)
    if info["groups"]:
        print(f"{plural(len(info['groups']), 'group')} sharing a right factor (spec §10.4); a member's bytes above "
              "leave out its group's shared factor, counted once here:")
        rows = [("group", "scheme", "columns", "members", "shared bytes", "bytes", "bits/entry")]
        for g in info["groups"]:
            members = [m[len(g["name"]) + 1:] if m.startswith(g["name"] + ".") else m for m in g["members"]]
            rows.append((g["name"], g["scheme"], str(g["columns"]), ", ".join(members), f"{g['shared_bytes']:,}",
                         f"{g['bytes']:,}", f"{g['bits_per_entry']:.3f}"))
        print_table(rows)
    private = [t for t in info["tensors"] if t["privacy"] is not None]
    if private:
        print(f"{plural(len(private), 'private release')} under (ε, δ)-differential privacy (spec §10.6):")
        rows = [("tensor", "mechanism", "epsilon", "delta", "rank", "clip", "sensitivity", "noise_scale", "library")]
        for t in private:
            p = t["privacy"]
            rows.append((t["name"], p["mechanism"], f"{p['epsilon']:.6g}", f"{p['delta']:.6g}", str(p["rank"]),
                         f"{p['clip']:.6g}", f"{p['sensitivity']:.6g}", f"{p['noise_scale']:.6g}", p["library"]))
        print_table(rows)
    if verbose:
        for t in info["tensors"]:
            if len(t["tiles"]) > 1:
                print(f"  {t['name']} tiles:")
                for tile in t["tiles"]:
                    params = " ".join(f"{k}={v}" for k, v in tile["params"].items() if not k.startswith("scale_"))
                    print(f"    at {tuple(tile['origin'])} {'×'.join(map(str, tile['shape']))} {tile['scheme']} {params}")


def _for_each_path(args, one, show) -> int:
    """Run ``one(path)`` for every path; report each error and carry on.
    The exit status is that of the first failure."""
    status, results = EXIT_OK, []
    for path in args.paths:
        try:
            result = one(path)
        except LrqError as exc:
            code = _exit_code(exc)
            message = _cli_terms(str(_named("standard input" if path == "-" else path, exc)))
            print(f"lrq {args.command}: error: {message}", file=sys.stderr)
            result = {"path": path, "error": message, "exit_status": code}
            status = status or code
        results.append(result)
        if not args.json and "error" not in result:
            show(result)
    if args.json:
        print(json.dumps(results, indent=2, default=str, ensure_ascii=False))
    return status


def cmd_info(args) -> int:
    def show(info):
        _print_info(info, args.verbose)

    def one(path):
        info = _info_record(path)
        if args.json:
            for t in info.get("tensors", info.get("datasets")):
                t.pop("_params")
        return info

    return _for_each_path(args, one, show)


# ---------------------------------------------------------------- verify

def _within_num1(record, ours: np.ndarray, theirs: np.ndarray) -> bool:
    """The C decoder's tensor against the reference's, by spec §11.

    Dense tiles must match exactly [NUM-2]; signcut, lplr and quant tiles within
    [NUM-1]: |x - x_ref| <= 1e-5 * M + u_out * |x_ref| + lambda_out, with M
    the sum of the magnitudes of the terms of each element's defining sum.
    Tiles outside [NUM-1]'s binary32-safe domain have unspecified values and
    are not compared [NUM-4].
    """
    from .reference import decoder, lplr, signcut

    if ours.dtype != theirs.dtype or ours.shape != theirs.shape:
        return False
    if ours.dtype.kind != "f":
        return bool(np.array_equal(ours, theirs))
    info = np.finfo(ours.dtype)
    for tile in record.tiles:
        index = tuple(slice(o, o + n) for o, n in zip(tile.origin, tile.shape))
        a, b = ours[index].astype(np.float64), theirs[index].astype(np.float64)
        if not decoder.binary32_safe(tile, record.panel, io._native.crc32c):
            continue
        if tile.scheme == "signcut":
            c = signcut.coefficients(tile, io._native.crc32c)
            magnitude = float(np.abs(c.astype(np.float64)).sum())
        elif tile.scheme == "lplr":
            left, right = lplr.factors(tile, record.panel, io._native.crc32c)
            magnitude = np.abs(left) @ np.abs(right)
        elif tile.scheme == "quant":  # each element is one term, rounded once
            magnitude = np.abs(b)
        elif not np.array_equal(a, b, equal_nan=True):
            return False
        else:
            continue
        if not (np.abs(a - b) <= 1e-5 * magnitude + info.eps / 2 * np.abs(b) + info.smallest_subnormal).all():
            return False
    return True


def _verify_one(path: str, reference: bool) -> dict:
    if _is_hdf5(path):
        return _verify_hdf5(path, reference)
    return _verify_stream(path, _read_bytes(path), reference)


def _verify_hdf5(path: str, reference: bool) -> dict:
    """Every stored chunk of every lrq-filtered dataset verified as the
    `.lrq` stream it is (:func:`_verify_stream`), and read through the
    filter, which checks that it fits its place (c_src/hdf5/README.md)."""
    h5py, lrq_hdf5 = _hdf5_modules(path)
    result = {"path": path, "ok": True, "datasets": 0, "chunks": 0, "tensors": 0, "sections": 0}
    with _open_hdf5(h5py, path) as handle:
        for name in _datasets(h5py, handle):
            dataset = handle[name]
            if not _is_lrq_filtered(dataset, lrq_hdf5):
                continue
            result["datasets"] += 1
            for i in range(dataset.id.get_num_chunks()):
                chunk = dataset.id.get_chunk_info(i)
                if chunk.filter_mask:
                    continue  # stored unfiltered through HDF5: no stream to verify
                corner = tuple(chunk.chunk_offset)
                label = f"{path}: dataset '{name}' chunk at {corner}"
                one = _verify_stream(label, dataset.id.read_direct_chunk(corner)[1], reference)
                try:
                    dataset[tuple(slice(o, o + c) for o, c in zip(corner, dataset.chunks))]
                except OSError as exc:
                    raise CliError(f"{label}: FAILED: the filter refuses it: {exc}", EXIT_VERIFY_FAILED) from None
                result["chunks"] += 1
                result["tensors"] += one["tensors"]
                result["sections"] += one["sections"]
                if reference:
                    counts = result.setdefault("reference", {"tensors": 0, "bit_exact": 0, "within_spec_11": 0})
                    for key in counts:
                        counts[key] += one["reference"][key]
                result["checked"] = one["checked"] + ["every chunk read through the lrq filter"]
    if not result["datasets"]:
        raise CliError(f"{path}: has no lrq-filtered dataset to verify", EXIT_USAGE)
    return result


def _verify_stream(path: str, data: bytes, reference: bool) -> dict:
    """Every checksum and rule with the C-backed decoder; with ``reference``
    also the pure-NumPy decoder, compared by spec §11."""
    try:
        record = io._parse(data, verify=True)
        ours = {t.name: io.stored(t).decode() for t in record.tensors}
    except (FormatError, ChecksumError) as exc:
        raise CliError(f"{path}: FAILED: {exc}", EXIT_VERIFY_FAILED) from None
    sections = sum(len(tile.sections) for t in record.tensors for tile in t.tiles)
    result = {"path": path, "ok": True, "tensors": len(record.tensors), "sections": sections,
              "checked": ["every CRC-32C and format rule (C decoder)", "every tensor decoded"]}
    if reference:
        from . import reference as reference_decoder

        try:
            theirs = reference_decoder.decode(data)
        except (FormatError, ChecksumError) as exc:
            raise CliError(f"{path}: FAILED: the reference decoder rejects the file: {exc}", EXIT_VERIFY_FAILED) from None
        exact = 0
        for tensor in record.tensors:
            if not _within_num1(tensor, ours[tensor.name], theirs[tensor.name]):
                raise CliError(f"{path}: FAILED: tensor '{tensor.name}': the two decoders disagree beyond spec §11",
                               EXIT_VERIFY_FAILED)
            exact += all(tile.scheme == "dense" for tile in tensor.tiles)
        result["reference"] = {"tensors": len(record.tensors), "bit_exact": exact, "within_spec_11": len(record.tensors) - exact}
        result["checked"].append("the pure-NumPy reference decoder agrees with it")
    return result


def cmd_verify(args) -> int:
    def show(result):
        if args.quiet:
            return
        what = plural(result['tensors'], 'tensor') if "chunks" not in result else \
            f"{plural(result['datasets'], 'lrq-filtered dataset')}, {plural(result['chunks'], 'chunk')}"
        text = (f"{result['path']}: OK: {what} decoded; "
                f"{plural(result['sections'], 'section')}: every CRC-32C and format rule verified")
        ref = result.get("reference")
        if ref:
            text += (f"; the pure-NumPy reference decoder agrees on {plural(ref['tensors'], 'tensor')} "
                     f"({ref['bit_exact']} dense bit-exact, {ref['within_spec_11']} factored within spec §11 [NUM-1])")
        print(text)

    return _for_each_path(args, lambda path: _verify_one(path, args.reference), show)


# ---------------------------------------------------------------- demo

def cmd_demo(args) -> int:
    from .demo import run

    return run(quick=args.quick, quiet=args.quiet, verbose=args.verbose)


# ---------------------------------------------------------------- parser

def _number(kind, low=None, high=None, low_open=False, what="value"):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'number' if kind is float else 'whole number'}") from None
        if (low is not None and (value <= low if low_open else value < low)) or (high is not None and value > high) \
                or value != value:
            bound = f"above {low:g}" if low_open else f"at least {low:g}"
            raise argparse.ArgumentTypeError(f"{what} must be {bound}" + (f" and at most {high:g}" if high else "")
                                             + f", not {text}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lrq", description="Compress matrices into low-rank / 1-bit .lrq files.",
                                     epilog=_EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"lrq {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    talk = common.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", help="errors only: no progress bar, notes or summary")
    talk.add_argument("-v", "--verbose", action="store_true", help="details per tensor")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = {}

    def command(name, help_text, func):
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common], epilog=_EXIT_HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=func)
        commands[name] = p
        return p

    def output_arguments(p, what):
        p.add_argument("output", nargs="?", help=what)
        p.add_argument("-o", "--output", dest="output_option", metavar="OUTPUT", help="the same as OUTPUT")

    p = command("compress", f"compress the tensors of a {INPUT_TYPES} file into a .lrq file, or an HDF5 file "
                "into an lrq-filtered HDF5 copy (OUTPUT ending in .h5 / .hdf5)", cmd_compress)
    p.add_argument("input", help="input file, or - for standard input")
    output_arguments(p, "the .lrq file to write (default: the input's name with .lrq), an .h5 / .hdf5 file "
                        "(an HDF5 input's copy with every 2-D float dataset lrq-filtered, groups and "
                        "attributes kept, other datasets copied as they are), or - for standard output")
    p.add_argument("--scheme", default="auto", choices=["auto", "signcut", "lplr", "dense", "quant"])
    target = p.add_mutually_exclusive_group()
    target.add_argument("--bits", type=_number(float, 0, low_open=True, what="--bits"),
                        help="budget in bits per entry, headers included (default 4)")
    target.add_argument("--width", type=_number(int, 1, what="--width"), help="number of signed cuts (scheme signcut)")
    target.add_argument("--rel-error", type=_number(float, 0, 1, low_open=True, what="--rel-error"),
                        help="relative Frobenius error to reach")
    p.add_argument("--include", action="append", metavar="PATTERN",
                   help="compress only tensors whose name matches (shell pattern, e.g. '*.weight'; repeatable)")
    p.add_argument("--exclude", action="append", metavar="PATTERN",
                   help="store tensors whose name matches losslessly instead (repeatable)")
    p.add_argument("--rank", type=_number(int, 1, what="--rank"), help="lplr: the rank (searched when not given)")
    p.add_argument("--variant", choices=["sketch", "svd"], help="lplr: Gaussian sketch (default) or SVD start")
    p.add_argument("--c-storage", choices=["float32", "float16"],
                   help="signcut: store the cut weights as float32 (default) or float16 (a format 1.1 file)")
    p.add_argument("--refit", action="store_true", help="signcut: least-squares refit of the cut weights")
    p.add_argument("--threads", type=_number(int, 1, _native.threads_max(), what="--threads"),
                   help="encoding threads (default: LRQ_NUM_THREADS, else up to 2); never changes the output")
    p.add_argument("--joint", action="store_true",
                   help="find the matrices that read one input by name and shape (BERT "
                        "'...attention.self.{query,key,value}.weight', LLaMA '...self_attn.{q,k,v}_proj.weight' and "
                        "'...mlp.{gate,up}_proj.weight'), encode each block separately and as joint groups "
                        "sharing one right factor (query+key+value and query+key, value then alone; gate+up), "
                        "and keep a group only where it wins: a lower error of the block at the --bits budget, "
                        "or fewer bytes at the --rel-error target, with no member worse off than alone "
                        "(a format 1.2 file)")
    p.add_argument("--seed", type=_number(int, 0, what="--seed"), default=0)
    p.add_argument("--tile", type=_number(int, 1, what="--tile"), nargs=2, metavar=("ROWS", "COLS"),
                   help="encode in tiles of this size; for an HDF5 output, the chunk shape "
                        "(default: 256×256, smaller where a dataset is)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="encode the tiles on the dask.distributed cluster whose scheduler is at ADDRESS "
                        "(e.g. tcp://10.0.0.5:8786; lrq.dask.encode, the same bytes; needs lrq[dask])")

    p = command("decompress", "decode a .lrq file, or the lrq-filtered datasets of an HDF5 file, to .npy (one tensor), "
                ".npz, .safetensors or .h5 / .hdf5 (plain datasets)", cmd_decompress)
    p.add_argument("input", help=".lrq or .h5 / .hdf5 file, or - for standard input (.lrq)")
    output_arguments(p, "the file to write, or - for standard output")
    p.add_argument("--tensor", action="append", metavar="NAME",
                   help="a tensor to write (repeatable; required for .npy when the file has several)")
    p.add_argument("--format", choices=["npy", "npz", "safetensors", "hdf5"],
                   help="output format (default: from OUTPUT's extension; safetensors for -)")

    p = command("info", "list the tensors of .lrq files and the lrq-filtered datasets of .h5 / .hdf5 files "
                "(-v: also the other datasets)", cmd_info)
    p.add_argument("paths", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="a JSON list with one object per file")

    p = command("verify", "check every checksum and rule of .lrq files, and of every chunk of the lrq-filtered "
                "datasets of .h5 / .hdf5 files", cmd_verify)
    p.add_argument("paths", nargs="+", metavar="FILE")
    p.add_argument("--reference", action="store_true", help="also decode with the pure-NumPy reference decoder and compare")
    p.add_argument("--json", action="store_true", help="a JSON list with one object per file")

    p = command("demo", "compress real matrices and show size, error and speed per scheme", cmd_demo)
    p.add_argument("--quick", action="store_true", help="smaller matrices, one budget")
    parser.commands = commands
    return parser


def main(argv: Optional[list] = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if len(extra) == 1 and getattr(args, "output", "") is None and (extra[0] == "-" or not extra[0].startswith("-")):
        # argparse takes INPUT [OUTPUT] in one run, so an OUTPUT after an option lands here
        args.output, extra = extra[0], []
    if extra:  # the subcommand's usage, not the top-level one
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("\nlrq: interrupted; no output file was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except LrqError as exc:
        print(f"lrq {args.command}: error: {_cli_terms(str(exc))}", file=sys.stderr)
        return _exit_code(exc)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"lrq {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_FILE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
