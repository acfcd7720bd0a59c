"""Progress of long commands (replay, export, a collection over many sources) on stderr.

On a terminal rich draws a bar in place. Anywhere else (a log file, CI, cron) nothing is printed
for a quick job, and a long one prints at most four plain lines (at each quarter), so logs stay
readable; stdout is never touched, so `--json` output stays pure JSON.

A step deep inside a Prefect flow (the fetch of the watch cycle) cannot take a callback as a
flow parameter: Prefect stores parameters with the run and they must serialise. The command
line therefore registers a listener for a named step (`reporting`) around the flow call, in its
own process, and the step's task passes `listener(step)` to its plain function. Without a
listener (a deployment's run, the tests of the plain functions) nothing is reported.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn

ProgressCallback = Callable[[int, int], None]  # (done, total)

BAR_WIDTH = 30
# A redrawn bar at most this often: a terminal is slow to scroll through thousands of updates.
REDRAW_EVERY_S = 0.1
# Off a terminal, a job quicker than this prints nothing at all.
QUIET_FOR_S = 5.0

_LISTENERS: dict[str, ProgressCallback] = {}
_LISTENERS_LOCK = threading.Lock()


class ProgressBar:
    """`label  [#####.....]  done/total unit (pct)` on `stream` (stderr by default).

    Call it (or `update`) with (done, total) as the job advances, from any thread; `close()`
    (or the end of a `with` block) ends the line.
    """

    def __init__(
        self,
        label: str,
        unit: str,
        *,
        stream: TextIO | None = None,
        quiet_for_s: float = QUIET_FOR_S,
    ) -> None:
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.redraw = _is_terminal(self.stream)
        self._quiet_for_s = quiet_for_s
        self._quiet_until: float | None = None  # from the first update: the job's own start
        self._lock = threading.Lock()
        self._last_draw = float("-inf")
        self._drawn = False
        self._quarters_shown = 0
        self._last: tuple[int, int] | None = None
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, done: int, total: int) -> None:
        self.update(done, total)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def update(self, done: int, total: int) -> None:
        """Show that `done` of `total` are done (throttled; the last one is always shown)."""
        with self._lock:
            self._last = (done, total)
            now = time.monotonic()
            if self._quiet_until is None:
                self._quiet_until = now + self._quiet_for_s
            if self.redraw:
                if done >= total or now - self._last_draw >= REDRAW_EVERY_S:
                    self._last_draw = now
                    self._draw(done, total)
                if done >= total:  # ended: logs printed after it start on a new line
                    self._stop_bar()
                return
            quarters = 4 if total <= 0 else min(4, 4 * done // total)
            if quarters > self._quarters_shown and now >= self._quiet_until:
                self._quarters_shown = quarters
                self._write(self.describe(done, total) + "\n")

    def close(self) -> None:
        """End the bar's line; off a terminal, a long job that ended between quarters says
        where it stopped."""
        with self._lock:
            if self.redraw:
                self._stop_bar()
            elif (
                not self.redraw
                and self._quarters_shown
                and self._quarters_shown < 4
                and self._last is not None
            ):
                self._quarters_shown = 4
                self._write(self.describe(*self._last) + "\n")

    def describe(self, done: int, total: int) -> str:
        """One plain line: the label, the count and the share."""
        return f"{self.label}: {self._count(done, total)}"

    def _count(self, done: int, total: int) -> str:
        share = 1.0 if total <= 0 else min(1.0, max(0.0, done / total))
        return f"{done:,}/{total:,} {self.unit} ({share:.0%})"

    def _draw(self, done: int, total: int) -> None:
        """Redraw the terminal's bar (rich), started at the first update."""
        try:
            if self._bar is None:
                console = Console(
                    file=self.stream, force_terminal=True, color_system=None, highlight=False
                )
                self._bar = Progress(
                    TextColumn("{task.description}"),
                    BarColumn(bar_width=BAR_WIDTH),
                    TextColumn("{task.fields[count]}"),
                    console=console,
                    auto_refresh=False,  # redrawn here, at most every REDRAW_EVERY_S
                )
                self._bar.start()
                self._task = self._bar.add_task(self.label, total=max(total, 1), count="")
            assert self._task is not None
            self._bar.update(
                self._task, completed=done, total=max(total, 1), count=self._count(done, total)
            )
            self._bar.refresh()
            self._drawn = True
        except (OSError, ValueError):  # a closed terminal never fails the job itself
            pass

    def _stop_bar(self) -> None:
        if self._bar is not None:
            with contextlib.suppress(OSError, ValueError):
                self._bar.stop()
            self._bar = None
            self._drawn = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed terminal or pipe never fails the job itself
            pass


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def reporting(step: str, callback: ProgressCallback) -> Iterator[None]:
    """Within the block, the step named `step` reports its progress to `callback`."""
    with _LISTENERS_LOCK:
        _LISTENERS[step] = callback
    try:
        yield
    finally:
        with _LISTENERS_LOCK:
            if _LISTENERS.get(step) is callback:
                del _LISTENERS[step]


def listener(step: str) -> ProgressCallback | None:
    """The callback registered for `step` in this process, if any."""
    with _LISTENERS_LOCK:
        return _LISTENERS.get(step)
