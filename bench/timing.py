"""Timing shared by the bench scripts that run from this folder (bench/ is not a package)."""

from __future__ import annotations

import statistics
import time


def median_time(step, reps: int) -> float:
    """Median seconds of ``reps`` calls of ``step``, after one warm-up call (page cache, first-call
    allocations, OpenBLAS waking its threads)."""
    step()
    times = []
    for _ in range(reps):
        begin = time.perf_counter()
        step()
        times.append(time.perf_counter() - begin)
    return statistics.median(times)

