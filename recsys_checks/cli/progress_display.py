"""Progress on the terminal for the long commands (``eval quality``, ``freshness``, ``timeline``): tqdm bars on stderr.

Shown only when stderr is a terminal and the command writes text (never with ``--json`` or ``--jsonl``); on a pipe,
in a notebook kernel or in a run record nothing of it appears. Each stage of the work
(:mod:`recsys_checks.core.progress`) is one bar: what is being read, how far, the rate and the time left; a bar is
cleared when its stage ends, so the terminal keeps the command's own output only.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from recsys_checks.core import progress

__all__ = ["LONG_COMMANDS", "TerminalBars", "for_command", "stdout_beside_bars"]

# The commands whose work can take long enough to want a display: (command, subcommand or None).
LONG_COMMANDS = {("eval", "quality"), ("freshness", None), ("timeline", None)}
# Seconds between redraws: often enough to look alive, rarely enough to cost nothing measurable.
REDRAW_SECONDS = 0.2
# Set to 0 to turn the display off on a terminal too (e.g. a screen recorder that cannot take carriage returns).
PROGRESS_ENV = "RECSYS_CHECKS_PROGRESS"


class TerminalBars:
    """A :class:`recsys_checks.core.progress.Display` drawing one tqdm bar per open stage on ``stream``."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._bars: dict[int, Any] = {}

    def start(self, st: progress.Stage) -> None:
        from tqdm import tqdm

        in_bytes = st.unit == "bytes"
        self._bars[id(st)] = tqdm(
            total=st.total, desc=st.what, unit="B" if in_bytes else f" {st.unit}", unit_scale=in_bytes,
            unit_divisor=1024 if in_bytes else 1000, file=self.stream, leave=False, mininterval=REDRAW_SECONDS,
            dynamic_ncols=True, position=len(self._bars))

    def update(self, st: progress.Stage) -> None:
        bar = self._bars.get(id(st))
        if bar is not None and st.done > bar.n:
            bar.update(st.done - bar.n)

    def end(self, st: progress.Stage) -> None:
        bar = self._bars.pop(id(st), None)
        if bar is not None:
            bar.close()


def wanted(command: tuple[str, str | None], *, machine_output: bool, stream: TextIO | None = None) -> bool:
    """Whether ``command`` shows progress: a long command writing text, with stderr a terminal."""
    stream = stream or sys.stderr
    if command not in LONG_COMMANDS or machine_output or os.environ.get(PROGRESS_ENV, "1") == "0":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def for_command(command: tuple[str, str | None], *, machine_output: bool) -> Iterator[None]:
    """Bars on stderr for the work inside the ``with`` when :func:`wanted`, else nothing at all."""
    display = TerminalBars(sys.stderr) if wanted(command, machine_output=machine_output) else None
    with progress.show(display):
        yield


class stdout_beside_bars:  # noqa: N801 - used like a function: stdout_beside_bars(sys.stdout)
    """``stream`` whose writes first lift the bars off the terminal and then put them back (tqdm's
    external write mode), so rows printed while a stage runs do not land inside a bar."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        from tqdm import tqdm

        with tqdm.external_write_mode(file=sys.stderr):
            written = self._stream.write(text)
            self._stream.flush()
        return written

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
