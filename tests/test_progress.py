"""Progress at least every second of work, and Ctrl-C honoured within about
a second, in every scheme: long NumPy calls run where the calling thread can
still report and be interrupted (``_TileJob.heavy``)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import lrq
from lrq import lplr


def _slow_least_squares(monkeypatch, seconds: float):
    original = lplr.least_squares
    started = []

    def slow(left, a):
        started.append(time.monotonic())
        time.sleep(seconds)
        return original(left, a)

    monkeypatch.setattr(lplr, "least_squares", slow)
    # The call is long because it sleeps, not for its flops: let every call
    # of this small matrix take the path a long one takes.
    monkeypatch.setattr(lrq.encoder, "_HEAVY_FLOPS", 1e6)
    return started


def _interrupt_once_started(started):
    """A progress callback that presses Ctrl-C 0.5 s into the slow call."""

    def progress(fraction, message):
        if started and time.monotonic() > started[0] + 0.5:
            raise KeyboardInterrupt

    return progress


def _matrix(shape=(600, 500)):
    return np.random.default_rng(5).standard_normal(shape).astype(np.float32)


def test_progress_keeps_coming_during_a_long_numpy_call(monkeypatch):
    started = _slow_least_squares(monkeypatch, 3.0)
    calls = []
    lrq.encode(_matrix(), "lplr", bits=2.0, bits_l=2, bits_r=2,
               progress=lambda f, m: calls.append((time.monotonic(), f, m)))
    assert started
    during = [t for t, _, _ in calls if started[0] < t < started[0] + 3.0]
    assert len(during) >= 5, len(during)  # one every 0.2 s while the call runs
    fractions = [f for _, f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


@pytest.mark.parametrize("scheme", ["lplr", "auto"])
def test_keyboard_interrupt_from_the_callback_stops_within_a_second(monkeypatch, scheme):
    a = _matrix()
    if scheme == "auto":  # low rank, so that auto fits lplr
        rng = np.random.default_rng(6)
        a = (rng.standard_normal((1200, 6)) @ rng.standard_normal((6, 1000))).astype(np.float32)
    started = _slow_least_squares(monkeypatch, 30.0)
    with pytest.raises(KeyboardInterrupt):
        lrq.encode(a, scheme, bits=2.0, progress=_interrupt_once_started(started))
    assert started
    # Measured from the slow call's start (Ctrl-C comes 0.5 s into it): what
    # precedes it depends on the machine's load, the stop must not.
    assert time.monotonic() - started[0] < 10.0  # not the 30 s of the call


def test_interrupting_a_tiled_encode_stops_every_worker(monkeypatch):
    started = _slow_least_squares(monkeypatch, 30.0)
    with pytest.raises(KeyboardInterrupt):
        lrq.encode(_matrix((600, 1000)), "lplr", bits=2.0, bits_l=2, bits_r=2, tile_shape=(600, 500),
                   threads=2, progress=_interrupt_once_started(started))
    assert time.monotonic() - started[0] < 10.0
    assert not [t for t in threading.enumerate() if t.name.startswith("lrq-tile")]


def test_signcut_reports_in_short_steps():
    calls = []
    lrq.encode(_matrix((300, 300)), "signcut", width=200, progress=lambda f, m: calls.append(m))
    assert sum("cuts" in m for m in calls) >= 5
