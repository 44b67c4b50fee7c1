"""Progress of long commands (backtest, data import, data synth, report) on stderr.

On a terminal: a live bar (rich) with done / total, the rate and the time left. Not on a
terminal (a log file, CI, a pipe): one plain line every ``every_s`` seconds, e.g.::

    backtest: 41.2% (412,345 / 1,000,000 events) 180,004 events/s, ETA 0:00:03

``arbsim --progress bar|lines|off`` chooses explicitly (default ``auto``).
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

ProgressMode = Literal["auto", "bar", "lines", "off"]
PROGRESS_MODES: tuple[ProgressMode, ...] = ("auto", "bar", "lines", "off")


def _count(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 or x == int(x) else f"{x:,.1f}"


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _bar(what: str, unit: str, total: float | None, stream: TextIO) -> tuple[Progress, TaskID]:
    """A started rich progress bar (rich is imported only when a bar is drawn)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        ProgressColumn,
        Task,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class DoneTotal(ProgressColumn):
        def render(self, task: Task) -> Text:
            of = "?" if task.total is None else _count(task.total)
            return Text(f"{_count(task.completed)} / {of} {unit}")

    class Rate(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{_count(speed)} {unit}/s")

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        DoneTotal(),
        Rate(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(file=stream, stderr=stream is sys.stderr),
        transient=True,
    )
    bar.start()
    return bar, bar.add_task(what, total=total)


class ProgressReport:
    """Reports ``done`` out of ``total`` units of one piece of work.

    Parameters
    ----------
    what:
        The work's name, first on each line (``backtest``, ``import binance_spot``).
    unit:
        What is counted (``events``, ``lines``, ``steps``).
    total:
        How many units in all (``None``: unknown; updatable with :meth:`update`).
    mode:
        ``auto`` (a bar when ``stream`` is a terminal, else lines), ``bar``, ``lines`` or
        ``off``.
    every_s:
        Seconds between two plain lines.
    stream:
        Where to write (default: stderr).
    """

    def __init__(
        self,
        what: str,
        unit: str,
        total: float | None = None,
        *,
        mode: ProgressMode = "auto",
        every_s: float = 10.0,
        stream: TextIO | None = None,
    ) -> None:
        self.what = what
        self.unit = unit
        self.total = total
        self.done = 0.0
        self.stream = stream if stream is not None else sys.stderr
        if mode == "auto":
            isatty = getattr(self.stream, "isatty", None)
            mode = "bar" if isatty is not None and isatty() else "lines"
        self.mode = mode
        self.every_s = every_s
        self._t0 = time.monotonic()
        self._last_line = self._t0
        self._bar: Progress | None = None
        self._task: Any = None
        if mode == "bar":
            self._bar, self._task = _bar(what, unit, total, self.stream)

    # ------------------------------------------------------------------ updates
    def update(self, done: float, total: float | None = None) -> None:
        """``done`` units so far (and a new ``total`` when it became known)."""
        self.done = done
        if total is not None:
            self.total = total
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done, total=self.total)
        elif self.mode == "lines":
            now = time.monotonic()
            if now - self._last_line >= self.every_s:
                self._last_line = now
                self.stream.write(self.line(now) + "\n")
                self.stream.flush()

    def fraction(self, frac: float) -> None:
        """Progress as a share of the total (0..1)."""
        self.update(frac * (self.total or 0.0) if self.total else frac)

    def line(self, now: float | None = None) -> str:
        """The plain progress line as of now."""
        elapsed = (now if now is not None else time.monotonic()) - self._t0
        rate = self.done / elapsed if elapsed > 0 else None
        if self.total:
            pct = 100.0 * self.done / self.total
            left = (self.total - self.done) / rate if rate else None
            return (
                f"{self.what}: {pct:.1f}% ({_count(self.done)} / {_count(self.total)} "
                f"{self.unit}) {_count(rate or 0)} {self.unit}/s, ETA {_eta(left)}"
            )
        return f"{self.what}: {_count(self.done)} {self.unit}, {_count(rate or 0)} {self.unit}/s"

    def close(self) -> None:
        """Remove the bar (a terminal) or say nothing more (lines)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> ProgressReport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
