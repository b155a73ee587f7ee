"""The one way the command lines read a number: a whole number or a finite decimal in a range, refused in one line.

``recsys-checks`` and its ``alerts serve`` use :func:`number` for every numeric option; argparse prints the refusal as
``argument --workers: '0' is not a whole number of at least 1`` and exits 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number(*, whole: bool, low: float, high: float | None = None, says: str) -> Callable[[str], float]:
    """A parser for argparse's ``type=``: ``value`` as an int (``whole``: ASCII digits only, spaces around allowed)
    or a finite float, from ``low`` to ``high`` (no limit above when None); else ``'VALUE' is not SAYS``."""

    def parse(value: str) -> float:
        found = _read(value, whole)
        if found is None or found < low or (high is not None and found > high):
            raise argparse.ArgumentTypeError(f"{value!r} is not {says}")
        return found

    parse.__name__ = "number"
    return parse


def _read(value: str, whole: bool) -> float | None:
    if not value.isascii():
        return None
    if whole:
        return int(value.strip()) if value.strip().isdigit() else None
    try:
        found = float(value)
    except ValueError:
        return None
    return found if math.isfinite(found) else None


def count(low: int, high: int) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high``."""
    return number(whole=True, low=low, high=high, says=f"a whole number from {low} to {high}")  # type: ignore[return-value]


positive: Callable[[str], int] = number(whole=True, low=1, says="a whole number of at least 1")  # type: ignore[assignment]
fraction = number(whole=False, low=0, high=1, says="a fraction between 0 and 1, e.g. 0.95")
non_negative = number(whole=False, low=0, says="a number of at least 0")
seconds = number(whole=False, low=0, high=86_400, says="a number of seconds from 0 to 86400")
