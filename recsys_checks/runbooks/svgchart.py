"""A small SVG writer for the runbooks' pictures: panels with axes, "nice" ticks, bars, lines, points and text.

Standard library only, so that a picture costs milliseconds and no plotting library is loaded in a runbook's kernel.
What it writes is deterministic (the same calls give the same bytes: no ids, no dates, numbers rounded to a tenth of
a pixel), every text is XML-escaped (a label holding markup is shown as text, never parsed), and text is kept as
text, so the runner's secret scan reads it. Text widths are estimated (0.6 of the font size per character) to cut a
label that would not fit with "…".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape

__all__ = ["Canvas", "Panel", "fit", "nice_ticks", "time_ticks"]

FONT = "DejaVu Sans, Arial, Helvetica, sans-serif"
CHAR_WIDTH = 0.6  # an estimated character width, in font sizes
INK = "#222222"
GRID = "#dddddd"
ELLIPSIS = "\u2026"


def _n(value: float) -> str:
    """A coordinate as text: a tenth of a pixel, no trailing zeros, never ``-0``."""
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _attr(value: str) -> str:
    return escape(value, {'"': "&quot;"})


def text_width(text: str, size: float) -> float:
    return len(text) * size * CHAR_WIDTH


def fit(text: str, width: float, size: float) -> str:
    """``text``, cut with "…" to about ``width`` pixels at font ``size``."""
    most = max(1, int(width / (size * CHAR_WIDTH)))
    return text if len(text) <= most else text[: max(0, most - 1)] + ELLIPSIS


def nice_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Evenly spaced ticks within ``[low, high]``, as many as fit in ``most`` (at least 3) with the smallest step that
    is 1, 2 or 5 times a power of ten; ``[low]`` when the range is a point, none when it is not finite."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    low, high = min(low, high), max(low, high)
    if high == low:
        return [low]
    most = max(3, most)
    power = 10.0 ** math.floor(math.log10((high - low) / most))
    for multiple in (1, 2, 5, 10, 20, 50, 100, 200, 500):
        step = multiple * power
        first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
        if last - first + 1 <= most:
            return [round(k * step, 12) + 0.0 for k in range(first, last + 1)]
    return [low, high]  # pragma: no cover - a step past the span always fits


_TIME_STEPS = [timedelta(minutes=m) for m in (10, 15, 30)] + [timedelta(hours=h) for h in (1, 2, 3, 6, 12)] + \
    [timedelta(days=d) for d in (1, 2, 7, 14, 30, 90, 365)]


def time_ticks(low: datetime, high: datetime, most: int = 6) -> list[datetime]:
    """UTC ticks within ``[low, high]`` on round times (10 minutes to a year apart), at most ``most``."""
    span = high - low
    step = next((s for s in _TIME_STEPS if span / s <= most - 1), _TIME_STEPS[-1] * max(1, math.ceil(
        span / (_TIME_STEPS[-1] * (most - 1)))))
    origin = datetime(2000, 1, 1, tzinfo=UTC)
    first = origin + step * math.ceil((low - origin) / step)
    ticks = []
    at = first
    while at <= high and len(ticks) < most + 1:
        ticks.append(at)
        at += step
    return ticks[:most]


def label_number(value: float) -> str:
    """A tick's number, short: ``0``, ``2.5``, ``0.05``, ``1200``, ``1.2e+06``."""
    if value == 0:
        return "0"
    if abs(value) >= 1e6 or abs(value) < 1e-3:
        return f"{value:.2g}"
    return f"{value:.6g}"


@dataclass
class Canvas:
    """A picture ``width`` × ``height`` pixels; elements are appended in drawing order."""

    width: int
    height: int
    parts: list[str] = field(default_factory=list)

    def rect(self, x: float, y: float, w: float, h: float, fill: str, stroke: str | None = None) -> None:
        line = f' stroke="{stroke}" stroke-width="1"' if stroke else ""
        self.parts.append(f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(max(w, 0))}" height="{_n(max(h, 0))}" '
                          f'fill="{fill}"{line}/>')

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = INK, width: float = 1.0,
             dash: str | None = None) -> None:
        pattern = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" stroke="{stroke}" '
                          f'stroke-width="{_n(width)}"{pattern}/>')

    def circle(self, x: float, y: float, r: float, fill: str) -> None:
        self.parts.append(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(r)}" fill="{fill}"/>')

    def text(self, x: float, y: float, text: str, size: float = 10, anchor: str = "start", colour: str = INK,
             weight: str | None = None, rotate: bool = False) -> None:
        bold = f' font-weight="{weight}"' if weight else ""
        turn = f' transform="rotate(-90 {_n(x)} {_n(y)})"' if rotate else ""
        self.parts.append(f'<text x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}" text-anchor="{anchor}" '
                          f'fill="{colour}"{bold}{turn}>{escape(text)}</text>')

    def render(self, group_id: str, title: str) -> str:
        """The SVG document: its ``<title>``, then one group ``group_id`` holding every element."""
        head = ('<?xml version="1.0" encoding="utf-8" standalone="no"?>\n'
                f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
                f'viewBox="0 0 {self.width} {self.height}" version="1.1" font-family="{_attr(FONT)}">\n'
                f"<title>{escape(title)}</title>\n"
                f'<g id="{_attr(group_id)}">\n'
                f'<rect x="0" y="0" width="{self.width}" height="{self.height}" fill="#ffffff"/>\n')
        return head + "\n".join(self.parts) + "\n</g>\n</svg>\n"


@dataclass
class Panel:
    """One plotting area of a canvas: ``x``, ``y`` (top left), ``w``, ``h`` in pixels, and the data ranges shown."""

    canvas: Canvas
    x: float
    y: float
    w: float
    h: float
    x_range: tuple[float, float] = (0.0, 1.0)
    y_range: tuple[float, float] = (0.0, 1.0)

    def px(self, value: float) -> float:
        lo, hi = self.x_range
        return self.x + (value - lo) / ((hi - lo) or 1.0) * self.w

    def py(self, value: float) -> float:
        lo, hi = self.y_range
        return self.y + self.h - (value - lo) / ((hi - lo) or 1.0) * self.h

    def frame(self) -> None:
        """The left and bottom axis lines."""
        self.canvas.line(self.x, self.y, self.x, self.y + self.h)
        self.canvas.line(self.x, self.y + self.h, self.x + self.w, self.y + self.h)

    def x_ticks(self, ticks: Sequence[float], label: Callable[[float], str] = label_number, size: float = 8) -> None:
        for t in ticks:
            at = self.px(t)
            self.canvas.line(at, self.y + self.h, at, self.y + self.h + 4)
            self.canvas.text(at, self.y + self.h + 14, label(t), size=size, anchor="middle")

    def y_ticks(self, ticks: Sequence[float], label: Callable[[float], str] = label_number, size: float = 8,
                grid: bool = True) -> None:
        for t in ticks:
            at = self.py(t)
            if grid:
                self.canvas.line(self.x, at, self.x + self.w, at, stroke=GRID)
            self.canvas.line(self.x - 4, at, self.x, at)
            self.canvas.text(self.x - 6, at + 3, label(t), size=size, anchor="end")

    def categories_x(self, names: Sequence[str], size: float = 8) -> None:
        """Category labels under slots 0..n-1 (the x range is -0.5 .. n-0.5), each cut to its slot's width."""
        slot = self.w / max(1, len(names))
        for i, name in enumerate(names):
            for j, part in enumerate(name.split("\n")):
                self.canvas.text(self.px(i), self.y + self.h + 13 + 10 * j, fit(part, slot - 4, size), size=size,
                                 anchor="middle")

    def categories_y(self, names: Sequence[str], room: float, size: float = 8) -> None:
        """Category labels left of rows 0..n-1 (the y range is -0.5 .. n-0.5), each cut to ``room`` pixels."""
        for i, name in enumerate(names):
            self.canvas.text(self.x - 6, self.py(i) + 3, fit(name, room, size), size=size, anchor="end")

    def title(self, text: str, size: float = 9, colour: str = INK) -> None:
        self.canvas.text(self.x + self.w / 2, self.y - 8, fit(text, self.w + 40, size), size=size, anchor="middle",
                         colour=colour)

    def x_label(self, text: str, below: float = 30) -> None:
        self.canvas.text(self.x + self.w / 2, self.y + self.h + below, fit(text, self.w, 9), size=9,
                         anchor="middle")

    def y_label(self, text: str) -> None:
        self.canvas.text(self.x - 42, self.y + self.h / 2, fit(text, self.h, 9), size=9, anchor="middle",
                         rotate=True)

    def legend(self, entries: Sequence[tuple[str, dict]], x: float, y: float, size: float = 8) -> None:
        """Entries (label, style) from ``x``, ``y`` down: a style with ``fill`` draws a swatch, else a line
        (``stroke``, ``width``, ``dash``)."""
        for i, (label, style) in enumerate(entries):
            top = y + 13 * i
            if "fill" in style:
                self.canvas.rect(x, top - 7, 14, 8, style["fill"])
            else:
                self.canvas.line(x, top - 3, x + 14, top - 3, stroke=style.get("stroke", INK),
                                 width=style.get("width", 1.0), dash=style.get("dash"))
            self.canvas.text(x + 18, top, label, size=size)
