"""The evaluation logs of the suite, read line by line in their exact contracts (exposure, outcome, assignment v1).

Each line is one JSON object. Fields are checked as the suite's schemas declare them: required fields present,
types and bounds right, ``ts`` an RFC 3339 date-time, and no field the contract does not name (the schemas set
``additionalProperties: false`` on the record; an exposure's item objects are left open, as in the schema). A line
that breaks the contract is not fatal: it is reported with its file, line number and what is wrong, counted, and
left out of every figure, so that a file with a few bad lines is still summarised.

Reads are bounded: a line longer than :data:`MAX_LINE_BYTES` (the suite's own limit) is a bad line, not a reason to
read without end, and files stream: nothing here holds more than one line.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from recsys_checks.core import progress
from recsys_checks.core.errors import BadInput, LineError, Unreadable
from recsys_checks.reach.localfiles import open_regular

MAX_LINE_BYTES = 16 * 1024 * 1024
# How far a log has been read is told every 4,096 lines (a mask: ``not number & PROGRESS_LINES``).
PROGRESS_LINES = 4096 - 1
KINDS = ("exposure", "outcome", "assignment")
EVENT_TYPES = ("click", "conversion")

_FIELDS = {
    "exposure": (("request_id", "user_id", "ts", "items"), ("context", "latency_ms", "error")),
    "outcome": (("request_id", "user_id", "item_id", "event_type", "ts"), ("value",)),
    "assignment": (("experiment_id", "variant", "request_id", "user_id", "ts"), ("context",)),
}
_ITEM_FIELDS = (("item_id", "rank"), ("propensity", "logging_propensity", "target_propensity"))
_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


@dataclass(frozen=True)
class BadLine:
    """One line that breaks the contract."""

    file: str
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.problem}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "problem": self.problem}


def _string(doc: dict, name: str, where: str = "") -> str:
    value = doc[name]
    if not isinstance(value, str):
        raise LineError(f"{where}{name} must be a string, got {_type(value)}")
    if value == "":
        raise LineError(f"{where}{name} is empty")
    return value


def _number(doc: dict, name: str, minimum: float | None = None, where: str = "") -> float:
    value = doc[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LineError(f"{where}{name} must be a number, got {_type(value)}")
    if minimum is not None and value < minimum:
        raise LineError(f"{where}{name} is {value}, below the minimum {minimum:g}")
    return float(value)


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _timestamp(doc: dict, name: str = "ts") -> str:
    value = doc[name]
    if not isinstance(value, str):
        raise LineError(f"{name} must be an RFC 3339 date-time string, got {_type(value)}")
    m = _DATE_TIME.match(value)
    if not m:
        raise LineError(f"{name} {value[:40]!r} is not an RFC 3339 date-time such as 2026-01-02T03:04:05Z")
    try:
        datetime(*(int(m.group(i)) for i in range(1, 6)), min(int(m.group(6)), 59))
    except ValueError:
        raise LineError(f"{name} {value[:40]!r} is not a real date and time") from None
    return value


def _context(doc: dict) -> dict[str, str] | None:
    if "context" not in doc:
        return None
    ctx = doc["context"]
    if not isinstance(ctx, dict):
        raise LineError(f"context must be an object of strings, got {_type(ctx)}")
    for key, value in ctx.items():
        if not isinstance(value, str):
            raise LineError(f"context.{key} must be a string, got {_type(value)}")
    return ctx


def _check_fields(doc: Any, kind: str) -> dict:
    if not isinstance(doc, dict):
        raise LineError(f"not a JSON object but {_type(doc)}")
    required, optional = _FIELDS[kind]
    unknown = [k for k in doc if k not in required and k not in optional]
    if unknown:
        raise LineError(f"unknown field {unknown[0]!r} (the {kind} contract has only {', '.join(required + optional)})")
    missing = [k for k in required if k not in doc]
    if missing:
        raise LineError(f"missing required field {missing[0]!r}")
    return doc


def parse_exposure(doc: Any) -> dict:
    """Validate one exposure object; returns it."""
    doc = _check_fields(doc, "exposure")
    for name in ("request_id", "user_id"):
        _string(doc, name)
    _timestamp(doc)
    items = doc["items"]
    if not isinstance(items, list):
        raise LineError(f"items must be an array, got {_type(items)}")
    for i, item in enumerate(items):
        # The common case (a plain item: a non-empty id, an int rank >= 1, no propensities) is checked in one
        # expression; anything else goes through the full checks, which say what is wrong.
        if type(item) is dict and len(item) == 2 and type(item.get("item_id")) is str and item["item_id"] and \
                type(item.get("rank")) is int and item["rank"] >= 1:
            continue
        _check_item(item, i)
    _context(doc)
    if "latency_ms" in doc:
        _number(doc, "latency_ms", 0)
    if "error" in doc and not isinstance(doc["error"], bool):
        raise LineError(f"error must be a boolean, got {_type(doc['error'])}")
    return doc


def _check_item(item: Any, i: int) -> None:
    where = f"items[{i}]."
    if not isinstance(item, dict):
        raise LineError(f"items[{i}] must be an object, got {_type(item)}")
    for name in _ITEM_FIELDS[0]:
        if name not in item:
            raise LineError(f"{where}{name} is missing")
    _string(item, "item_id", where)
    rank = item["rank"]
    if isinstance(rank, bool) or not isinstance(rank, int):
        if not (isinstance(rank, float) and rank.is_integer()):
            raise LineError(f"{where}rank must be an integer, got {rank!r}")
    if rank < 1:
        raise LineError(f"{where}rank is {rank}, ranks start at 1")
    for name in _ITEM_FIELDS[1]:
        if name in item:
            _number(item, name, 0, where)


def parse_outcome(doc: Any) -> dict:
    """Validate one outcome object; returns it."""
    doc = _check_fields(doc, "outcome")
    for name in ("request_id", "user_id", "item_id"):
        _string(doc, name)
    if doc["event_type"] not in EVENT_TYPES:
        raise LineError(f"event_type {str(doc['event_type'])[:40]!r} is not click or conversion")
    _timestamp(doc)
    if "value" in doc:
        _number(doc, "value")
    return doc


def parse_assignment(doc: Any) -> dict:
    """Validate one assignment object; returns it."""
    doc = _check_fields(doc, "assignment")
    for name in ("experiment_id", "variant", "request_id", "user_id"):
        _string(doc, name)
    _timestamp(doc)
    _context(doc)
    return doc


PARSERS = {"exposure": parse_exposure, "outcome": parse_outcome, "assignment": parse_assignment}


def _reject_constant(name: str) -> float:
    raise LineError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # one decoder: building one per line is costly


def open_log(path: str | os.PathLike[str], kind: str) -> Path:
    """Check that ``path`` is a readable regular file before anything is read; :class:`Unreadable` otherwise."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise Unreadable(f"{kind} file {p} does not exist: check the path") from None
    except OSError as exc:
        raise Unreadable(f"cannot read the {kind} file {p}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise Unreadable(f"{kind} file {p} is not a regular file")
    if not os.access(p, os.R_OK):
        raise Unreadable(f"cannot read the {kind} file {p}: permission denied")
    return p


def _size(fh: Any) -> int | None:
    try:
        return os.fstat(fh.fileno()).st_size or None
    except (OSError, ValueError, AttributeError):
        return None


def read_log(path: str | os.PathLike[str], kind: str) -> Iterator[tuple[int, dict | None, BadLine | None]]:
    """Yield ``(line_number, record, None)`` for each good line and ``(line_number, None, BadLine)`` for a bad one.

    Blank lines are skipped, as the suite skips them. ``kind`` is ``exposure``, ``outcome`` or ``assignment``.
    """
    if kind not in PARSERS:
        raise BadInput(f"unknown log kind {kind!r}: use one of {', '.join(KINDS)}")
    p = open_log(path, kind)
    parse = PARSERS[kind]
    name = str(p)
    fh = open_regular(p, f"the {kind} file")
    with fh, progress.stage(f"reading the {kind} log", total=_size(fh), unit="bytes") as read:
        number = 0
        while True:
            raw = fh.readline(MAX_LINE_BYTES + 1)
            if not raw:
                read.to(read.total or read.done)
                return
            number += 1
            if not number & PROGRESS_LINES:
                read.to(fh.tell())
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while True:  # skip the rest of the over-long line without holding it
                    more = fh.readline(1024 * 1024)
                    if not more or more.endswith(b"\n"):
                        break
                yield number, None, BadLine(name, number, f"line longer than {MAX_LINE_BYTES} bytes")
                continue
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield number, None, BadLine(name, number, "not UTF-8 text")
                continue
            try:
                doc = _DECODER.decode(text)
            except LineError as exc:
                yield number, None, BadLine(name, number, f"not valid JSON ({exc})")
                continue
            except json.JSONDecodeError as exc:
                yield number, None, BadLine(name, number, f"not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            except ValueError as exc:  # e.g. a number too large to convert
                yield number, None, BadLine(name, number, f"not valid JSON ({exc})")
                continue
            try:
                yield number, parse(doc), None
            except LineError as exc:
                yield number, None, BadLine(name, number, str(exc))
