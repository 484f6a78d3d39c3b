"""Plain-text output shared by the ``lrq`` command and ``lrq demo``."""

from __future__ import annotations


def print_table(rows, stream=None) -> None:
    """Rows of cells in aligned columns: the first column and the header row
    left-aligned, the rest right-aligned (numbers)."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        print("  ".join(str(v).ljust(w) if i == 0 or k == 0 else str(v).rjust(w) for i, (v, w) in enumerate(zip(row, widths))),
              file=stream)


def plural(count: int, noun: str) -> str:
    """'1 tensor', '2 tensors'."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")
