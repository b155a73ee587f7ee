"""How far long work has got: the stage being worked on, how much of it is done and of how much.

Long reads (an evaluation's logs, a fleet's manifests, a tenant's histories) open a :func:`stage` and advance it as
they go. By default nothing is shown: the stage only remembers where it is, so that an interrupted command can say
how far it got (:func:`where`). A front end that wants a display (the CLI, on a terminal) installs one with
:func:`show`; a notebook kernel, a pipe or ``--json`` never does, so nothing of it reaches a run record or an executed
notebook. Advancing costs an attribute update, and callers advance every few thousand lines, not every line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Display", "Stage", "active", "show", "stage", "where"]


class Display(Protocol):
    """What a front end draws: told when a stage starts, moves and ends."""

    def start(self, st: Stage) -> None: ...

    def update(self, st: Stage) -> None: ...

    def end(self, st: Stage) -> None: ...


@dataclass
class Stage:
    """One piece of long work: ``what`` is being done (``reading the exposure log``), ``done`` of ``total``
    ``unit`` (``total`` None when not known in advance)."""

    what: str
    total: int | None = None
    unit: str = ""
    done: int = 0
    _display: Display | None = None

    def to(self, done: int) -> None:
        """Set how much is done (a position, e.g. the bytes read so far)."""
        self.done = done
        if self._display is not None:
            self._display.update(self)

    def advance(self, n: int = 1) -> None:
        """Add ``n`` to what is done."""
        self.to(self.done + n)

    def describe(self) -> str:
        """``reading the exposure log: 41,200,000 of 100,000,000 bytes (41%)``."""
        if self.total:
            share = f" ({min(self.done / self.total, 1.0):.0%})"
            return f"{self.what}: {self.done:,} of {self.total:,} {self.unit}{share}".rstrip()
        return f"{self.what}: {self.done:,} {self.unit}".rstrip()


_stages: list[Stage] = []
_display: Display | None = None
_last: Stage | None = None  # the innermost stage that was open last, for where() after it ended by an exception


@contextlib.contextmanager
def stage(what: str, total: int | None = None, unit: str = "") -> Iterator[Stage]:
    """Open a stage for the work inside the ``with``; it ends (and leaves the display) however the block ends."""
    global _last
    st = Stage(what, total, unit, _display=_display)
    _stages.append(st)
    _last = st
    if _display is not None:
        _display.start(st)
    try:
        yield st
    finally:
        _stages.remove(st)
        if _display is not None:
            _display.end(st)


def where() -> str | None:
    """How far the work got: the open stage (or the last one, when an interruption closed it), None when no stage
    was opened."""
    st = _stages[-1] if _stages else _last
    return st.describe() if st is not None else None


def active() -> bool:
    """Whether a display is installed (work may then gather what lets it show the time left, e.g. a total)."""
    return _display is not None


@contextlib.contextmanager
def show(display: Display | None) -> Iterator[None]:
    """Install ``display`` for the work inside the ``with`` (None: none), restoring the previous one after."""
    global _display
    previous = _display
    _display = display
    try:
        yield
    finally:
        _display = previous

