"""The ``lrq`` command: compress, decompress, info, verify, demo."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Optional

import numpy as np

from . import __version__, io
from .encoder import encode
from .errors import BudgetError, LrqError
from .inputs import read_tensors


class Progress:
    """A one-line progress bar on stderr (plain lines when not a terminal)."""

    def __init__(self, stream=None, enabled: bool = True):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.last_print = 0.0
        self.last_line = ""

    def update(self, fraction: float, message: str) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if now - self.last_print < 0.1 and fraction < 1.0:
                return
            filled = int(30 * fraction)
            line = f"\r[{'#' * filled}{' ' * (30 - filled)}] {100 * fraction:5.1f}% {message}"
            self.stream.write(line[:120].ljust(len(self.last_line)))
            self.last_line = line[:120]
        elif now - self.last_print >= 5.0:
            self.stream.write(f"{100 * fraction:5.1f}% {message}\n")
        else:
            return
        self.stream.flush()
        self.last_print = now

    def done(self) -> None:
        if self.enabled and self.tty and self.last_line:
            self.stream.write("\r" + " " * len(self.last_line) + "\r")
            self.stream.flush()
            self.last_line = ""


def _target_kwargs(args) -> dict:
    return {k: v for k, v in (("bits", args.bits), ("width", args.width), ("rel_error", args.rel_error)) if v is not None}


def cmd_compress(args) -> int:
    progress = Progress(enabled=not args.quiet)
    sources = list(read_tensors(args.input))
    if not sources:
        raise LrqError(f"{args.input}: no tensors found")
    matrices, notes = {}, []
    started = time.perf_counter()
    options = {}
    if args.tile:
        options["tile_shape"] = tuple(args.tile)
    for i, src in enumerate(sources):
        def report(fraction, message, i=i, name=src.name):
            progress.update((i + fraction) / len(sources), f"{name}: {message}")

        if src.is_float_matrix:
            try:
                matrices[src.name] = encode(
                    src.as_float(), args.scheme, seed=args.seed, progress=report, name=src.name,
                    source_dtype=src.dtype, **_target_kwargs(args), **options,
                )
                continue
            except BudgetError as exc:
                notes.append(f"{src.name}: stored dense ({exc})")
        matrices[src.name] = io.dense_matrix(src.name, src.as_float() if src.dtype == "bfloat16" else src.values, src.dtype)
    progress.done()
    io.save(args.output, matrices)
    elapsed = time.perf_counter() - started
    size_in = os.path.getsize(args.input)
    size_out = os.path.getsize(args.output)
    if not args.quiet:
        for note in notes:
            print(note, file=sys.stderr)
        print(
            f"{args.input} -> {args.output}: {len(matrices)} tensors, {size_in:,} -> {size_out:,} bytes "
            f"({size_in / size_out:.2f}x smaller) in {elapsed:.1f} s"
        )
    return 0


def cmd_decompress(args) -> int:
    with io.open(args.input) as f:
        names = [args.tensor] if args.tensor else list(f)
        if args.tensor and args.tensor not in f:
            raise LrqError(f"{args.input} has no tensor named '{args.tensor}'")
        if args.output.lower().endswith(".npy"):
            if len(names) != 1:
                raise LrqError(f"{args.input} holds {len(names)} tensors; name one with --tensor or write .safetensors")
            _atomic(args.output, lambda path: np.save(path, io.decode(f[names[0]])))
        elif args.output.lower().endswith(".safetensors"):
            arrays = {name: io.decode(f[name]) for name in names}
            _atomic(args.output, lambda path: _write_safetensors(path, arrays))
        else:
            raise LrqError(f"{args.output}: unknown output type (expected .npy or .safetensors)")
    return 0


def _atomic(path: str, write) -> None:
    """Write through a temporary name in the same folder, then rename."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".lrq-{os.getpid()}-{os.path.basename(path)}")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


_SAFETENSORS_NAMES = {"float64": "F64", "float32": "F32", "float16": "F16", "int64": "I64", "int32": "I32",
                      "int16": "I16", "int8": "I8", "uint64": "U64", "uint32": "U32", "uint16": "U16",
                      "uint8": "U8", "bool": "BOOL"}


def _write_safetensors(fh, arrays: dict) -> None:
    import json

    header, offset = {}, 0
    for name, array in arrays.items():
        nbytes = array.nbytes
        header[name] = {"dtype": _SAFETENSORS_NAMES[array.dtype.name], "shape": list(array.shape),
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    fh.write(len(raw).to_bytes(8, "little") + raw)
    for array in arrays.values():
        fh.write(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes())


def cmd_info(args) -> int:
    with io.open(args.path) as f:
        size = os.path.getsize(args.path)
        print(f"{args.path}: .lrq format {f.format_version[0]}.{f.format_version[1]}, {len(f)} tensors, {size:,} bytes")
        for key, value in f.metadata.items():
            print(f"  metadata {key} = {value}")
        rows = [("name", "shape", "dtype", "scheme", "params", "bytes", "bits/entry", "rel_error")]
        for name in f:
            m = f[name]
            params = _describe_params(m)
            err = "-" if m.rel_error is None else f"{m.rel_error:.4g}"
            rows.append((name, "×".join(map(str, m.shape)) or "scalar", m.source_dtype, m.scheme, params,
                         f"{m.nbytes:,}", f"{m.bits_per_entry:.3f}", err))
        _print_table(rows)
    return 0


def _describe_params(m) -> str:
    tiles = m.tiles
    if len(tiles) > 1:
        return f"{len(tiles)} tiles of {'×'.join(map(str, m._record.tile_shape))}"
    params = tiles[0][3]
    shown = {k: v for k, v in params.items() if not k.startswith("scale_")}
    return " ".join(f"{k}={v}" for k, v in shown.items())


def _print_table(rows, stream=None) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        print("  ".join(str(v).ljust(w) if i == 0 or k == 0 else str(v).rjust(w) for i, (v, w) in enumerate(zip(row, widths))),
              file=stream)


def _within_num1(record, ours: np.ndarray, theirs: np.ndarray) -> bool:
    """The C decoder's tensor against the reference's, by spec §11.

    Dense tiles must match exactly [NUM-2]; signcut and lplr tiles within
    [NUM-1]: |x - x_ref| <= 1e-5 * M + u_out * |x_ref| + lambda_out, with M
    the sum of the magnitudes of the terms of each element's defining sum.
    """
    from .reference import lplr, signcut

    if ours.dtype != theirs.dtype or ours.shape != theirs.shape:
        return False
    if ours.dtype.kind != "f":
        return bool(np.array_equal(ours, theirs))
    info = np.finfo(ours.dtype)
    for tile in record.tiles:
        index = tuple(slice(o, o + n) for o, n in zip(tile.origin, tile.shape))
        a, b = ours[index].astype(np.float64), theirs[index].astype(np.float64)
        if tile.scheme == "signcut":
            c = signcut.coefficients(tile, io._native.crc32c)
            magnitude = float(np.abs(c.astype(np.float64)).sum())
        elif tile.scheme == "lplr":
            left, right = lplr.factors(tile, record.panel, io._native.crc32c)
            magnitude = np.abs(left) @ np.abs(right)
        elif not np.array_equal(a, b, equal_nan=True):
            return False
        else:
            continue
        if not (np.abs(a - b) <= 1e-5 * magnitude + info.eps / 2 * np.abs(b) + info.smallest_subnormal).all():
            return False
    return True


def cmd_verify(args) -> int:
    """Check every rule and checksum with the C-backed decoder and the reference one."""
    from . import reference

    with open(args.path, "rb") as fh:
        data = fh.read()
    record = io._parse(data, verify=True)
    ours = {t.name: io.Matrix(t).decode() for t in record.tensors}
    if args.reference:
        theirs = reference.decode(data)
        for tensor in record.tensors:
            if not _within_num1(tensor, ours[tensor.name], theirs[tensor.name]):
                raise LrqError(f"tensor '{tensor.name}': the two decoders disagree beyond spec §11")
    print(f"{args.path}: OK ({len(ours)} tensors, every checksum and rule verified)")
    return 0


def cmd_demo(args) -> int:
    from .demo import run

    return run(quick=args.quick)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lrq", description="Compress matrices into low-rank / 1-bit .lrq files.")
    parser.add_argument("--version", action="version", version=f"lrq {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compress", help="compress .npy or .safetensors tensors into a .lrq file")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--scheme", default="auto", choices=["auto", "signcut", "lplr", "dense"])
    target = p.add_mutually_exclusive_group()
    target.add_argument("--bits", type=float, help="budget in bits per entry, headers included (default 4)")
    target.add_argument("--width", type=int, help="number of signed cuts (scheme signcut)")
    target.add_argument("--rel-error", type=float, help="relative Frobenius error to reach")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tile", type=int, nargs=2, metavar=("ROWS", "COLS"), help="encode in tiles of this size")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("decompress", help="decode a .lrq file to .npy (one tensor) or .safetensors")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--tensor", help="the tensor to write (required for .npy when the file has several)")
    p.set_defaults(func=cmd_decompress)

    p = sub.add_parser("info", help="list the tensors of a .lrq file")
    p.add_argument("path")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("verify", help="check every checksum and rule of a .lrq file")
    p.add_argument("path")
    p.add_argument("--reference", action="store_true", help="also decode with the pure-NumPy reference decoder and compare")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("demo", help="compress real matrices and show size, error and speed per scheme")
    p.add_argument("--quick", action="store_true", help="smaller matrices, one budget")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Optional[list] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("\nlrq: interrupted; no output file was written", file=sys.stderr)
        return 130
    except LrqError as exc:
        print(f"lrq: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"lrq: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
