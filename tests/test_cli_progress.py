"""The progress bar of ``lrq compress``: an ETA, and redrawn while work goes on."""

from __future__ import annotations

import time

from lrq.cli import Progress


class Terminal:
    """A stream that says it is a terminal and keeps what is written."""

    def __init__(self, tty: bool = True):
        self.tty, self.writes = tty, []

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> None:
        self.writes.append(text)

    def flush(self) -> None:
        pass


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_bar_shows_elapsed_time_and_an_eta():
    stream, clock = Terminal(), Clock()
    bar = Progress(stream=stream, clock=clock, ticker=False)
    bar.update(0.0, "w: starting")
    assert "ETA -:--" in stream.writes[-1]  # no estimate before there is progress to go by
    clock.now += 10.0
    bar.update(0.25, "w: cuts 16/64")
    line = stream.writes[-1]
    assert "25.0%" in line and "0:10" in line and "ETA 0:30" in line and "w: cuts 16/64" in line
    clock.now += 3600.0
    bar.update(0.5, "w: cuts 32/64")
    assert "ETA 1:00:10" in stream.writes[-1]
    bar.done()


def test_the_bar_is_redrawn_between_reports():
    """tick() (the ticker thread's job) redraws a line older than half a second, with the clock moved on."""
    stream, clock = Terminal(), Clock()
    bar = Progress(stream=stream, clock=clock, ticker=False)
    bar.update(0.5, "w: cuts 32/64")
    count = len(stream.writes)
    clock.now += 0.2
    bar.tick()
    assert len(stream.writes) == count  # fresh enough
    clock.now += 2.0
    bar.tick()
    assert len(stream.writes) == count + 1 and "0:02" in stream.writes[-1]
    bar.done()


def test_the_ticker_thread_redraws_on_a_terminal_and_stops():
    stream = Terminal()
    bar = Progress(stream=stream)
    bar.update(0.1, "w: cuts 1/64")
    first = len(stream.writes)
    deadline = time.monotonic() + 30.0
    while len(stream.writes) == first and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(stream.writes) > first  # redrawn with no report from the encoder
    bar.done()
    settled = len(stream.writes)
    time.sleep(1.0)
    assert len(stream.writes) == settled  # stopped with the bar
    assert bar._ticker is None


def test_plain_lines_when_not_a_terminal():
    stream, clock = Terminal(tty=False), Clock()
    bar = Progress(stream=stream, clock=clock)
    bar.update(0.0, "w: starting")
    assert len(stream.writes) == 1 and stream.writes[0].endswith("w: starting\n")  # the first at once
    clock.now += 1.0
    bar.update(0.5, "w: half")
    assert len(stream.writes) == 1  # plain lines every 5 s
    clock.now += 5.0
    bar.update(0.6, "w: more")
    assert "ETA 0:04" in stream.writes[-1] and "[" not in stream.writes[-1]
    bar.done()
    assert bar._ticker is None
