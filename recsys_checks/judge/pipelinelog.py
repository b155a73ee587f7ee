"""What a failed ``recsys-pipelines`` run printed, classified from the whole tail of its log.

The suite's pipelines end a failed run with a line that begins ``run failed:``, and what follows often carries no
kind word at all (``run failed: event limit exceeded: 51 > 50``). Typed errors print ``<kind>: <message>: <kind>``
and, when they wrap a detail error, the detail on the next line(s) (``items=6 max=5``). Configuration errors exit 2
with their own line (``checkpoint missing; provide --start for first run``) or Go's flag usage. Before the last
line, the run logs one line per stage (``INFO ingest: start tenant=demo surface=home start=2026-12-01T00:00:00Z
...``): the day that failed is the ``start=`` of the last ``ingest:`` or ``validate:`` line.

:func:`classify` reads all of that: the kind, the rule (or the field of a bad event), the suite's configuration key
and the numbers when a limit tripped (the validator's volume checks are limits too), the failed day, and the message
with its detail lines. A failure it cannot place is ``unclassified`` and quoted in full; a log with no failure line
at all is ``None``, never a failure that was overlooked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

KINDS = ("invalid_argument", "limit_exceeded", "validation_failed", "dependency", "unclassified")
MAX_DETAIL_LINES = 5

# A stage line of the suite's logger: `2026/12/02 13:41:15 INFO ingest: start tenant=demo ...`.
_LOG_LINE = re.compile(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)? [A-Z]+ ")
_STAGE_DAY = re.compile(r" (?:ingest|validate): .*?\bstart=(\d{4}-\d{2}-\d{2})T")
_FAILED = "run failed:"
_EXIT2 = (
    (re.compile(r"^checkpoint missing; provide --start for first run"), "checkpoint_missing", "--start"),
    (re.compile(r"^checkpoint error: "), "checkpoint_unreadable", None),
    (re.compile(r"^(?:flag provided but not defined|Usage of |  -\w[\w-]* (?:string|int|bool|duration))"),
     "flags", None),
)

# Limits: (pattern over the message, rule, the suite's `limits` key, observed group, limit group, detail pattern).
_KEYS_BY_COUNT = {"canonical event count": "max_events_per_run", "distinct item count": "max_distinct_items_per_run",
                  "distinct session count": "max_sessions_per_run"}
_COMPUTE_LIMITS = {"items per session": "max_items_per_session", "session": "max_sessions_per_run",
                   "distinct item": "max_items_per_artifact or max_distinct_items_per_run"}
_ARTIFACT_LIMITS = {"popularity items": "max_items_per_artifact", "cooc rows": "max_items_per_artifact",
                    "cooc neighbors": "max_neighbors_per_item"}
_OS_ERROR = re.compile(r"^(mkdir|open|read|write|rename|stat|lstat|remove|create|chmod|sync|close) (\S+): (.+)$")


@dataclass
class Failure:
    """One classified failure. ``key`` is the suite's configuration key of a limit; ``field`` the field of a bad
    event; ``day`` the failed day (the ``start=`` of the last ``ingest:``/``validate:`` line)."""

    kind: str
    rule: str
    message: str
    detail: list[str] = field(default_factory=list)
    day: str | None = None
    key: str | None = None
    observed: int | None = None
    limit: int | None = None
    field: str | None = None
    blob: str | None = None
    exit_code: int = 1
    line: str = ""

    @property
    def text(self) -> str:
        """The failure as printed: the line and its detail lines."""
        return "\n".join([self.line, *self.detail])

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "rule": self.rule, "message": self.message, "detail": self.detail,
                "day": self.day, "key": self.key, "observed": self.observed, "limit": self.limit,
                "field": self.field, "blob": self.blob, "exit_code": self.exit_code, "line": self.line}


def _numbers(detail: list[str]) -> dict[str, int]:
    """``items=6 max=5`` and the like from the detail lines."""
    out: dict[str, int] = {}
    for line in detail:
        for name, value in re.findall(r"\b(\w+)=(-?\d+)\b", line):
            out.setdefault(name, int(value))
    return out


def _tail(lines: list[str], start: int) -> list[str]:
    """The detail lines after a failure line: up to the next stage line or the end, blank lines dropped."""
    out = []
    for line in lines[start + 1:]:
        if _LOG_LINE.match(line) or line.startswith(_FAILED):
            break
        if line.strip():
            out.append(line.rstrip())
        if len(out) >= MAX_DETAIL_LINES:
            break
    return out


def failed_day(text: str) -> str | None:
    """The day of the last ``ingest:`` or ``validate:`` stage line (its ``start=``), or ``None``."""
    days = [m.group(1) for line in text.splitlines() if _LOG_LINE.match(line) for m in [_STAGE_DAY.search(line)] if m]
    return days[-1] if days else None


def classify(text: str) -> Failure | None:
    """The last failure in a pipeline log (see the module docstring), or ``None`` when the log shows none."""
    lines = text.splitlines()
    day = failed_day(text)
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i].rstrip()
        if line.startswith(_FAILED):
            failure = _classify_run_failed(line[len(_FAILED):].strip(), _tail(lines, i))
            failure.line, failure.day = line, day
            return failure
        for pattern, rule, key in _EXIT2:
            if pattern.match(line):
                if rule == "flags":  # Go's usage text: the failure is its first line
                    while i > 0 and (_EXIT2[2][0].match(lines[i - 1]) or lines[i - 1].startswith((" ", "\t"))):
                        i -= 1
                    line = lines[i].rstrip()
                detail = _tail(lines, i) if rule != "flags" else []
                return Failure("invalid_argument", rule, line, detail, day, key=key, exit_code=2, line=line)
    return None


def _classify_run_failed(message: str, detail: list[str]) -> Failure:
    def found(kind: str, rule: str, **extra: Any) -> Failure:
        return Failure(kind, rule, message, detail, **extra)

    numbers = _numbers(detail)
    # Ingest: the raw event count above max_events_per_run, and bad raw events.
    m = re.match(r"event limit exceeded: (\d+) > (\d+)$", message)
    if m:
        return found("limit_exceeded", "max_events_per_run", key="max_events_per_run", observed=int(m.group(1)),
                     limit=int(m.group(2)))
    m = re.match(r"invalid (\w+) event: (\w+) must be set$", message)
    if m:
        return found("validation_failed", f"bad_{m.group(1)}_event", field=m.group(2))
    m = re.match(r"invalid (\w+) event: (\w+) must be (.+)$", message)
    if m:
        return found("validation_failed", f"bad_{m.group(1)}_event", field=m.group(2))
    if re.match(r"(?:invalid \w+ event: )?unsupported version: ", message):
        return found("validation_failed", "event_version", field="v")
    # Configuration given to the run.
    if message == "segment must be set":
        return found("invalid_argument", "segment", key="--segment")
    m = re.match(r"backfill exceeds max days: (\d+) > (\d+)$", message)
    if m:
        return found("limit_exceeded", "max_days_backfill", key="max_days_backfill", observed=int(m.group(1)),
                     limit=int(m.group(2)))
    if message.startswith("endDay must be >= startDay"):
        return found("invalid_argument", "day_range")
    # The validator: volume checks are limits (with their numbers on the detail line), the rest are bad artifacts.
    m = re.match(r"validation_failed: (.+?) exceeds max: validation_failed$", message)
    if m:
        what = m.group(1)
        key = _KEYS_BY_COUNT.get(what) or _ARTIFACT_LIMITS.get(what)
        if key:
            observed = next((v for k, v in numbers.items() if k not in ("max", "min")), None)
            return found("limit_exceeded", key, key=key, observed=observed, limit=numbers.get("max"))
        return found("validation_failed", what.replace(" ", "_"))
    m = re.match(r"validation_failed: canonical event count below min: validation_failed$", message)
    if m:
        return found("validation_failed", "min_events", observed=numbers.get("events"), limit=numbers.get("min"))
    m = re.match(r"validation_failed: (\w+ )?(version hash|artifact version|artifact_type) mismatch", message)
    if m:
        return found("validation_failed", m.group(2).replace(" ", "_"))
    # Compute limits: `limit_exceeded: items per session limit exceeded: 2 >= 2: limit_exceeded`.
    m = re.match(r"limit_exceeded: (.+?) limit exceeded: (\d+) >= (\d+)", message)
    if m:
        key = _COMPUTE_LIMITS.get(m.group(1), m.group(1).replace(" ", "_"))
        return found("limit_exceeded", key, key=key, observed=int(m.group(2)), limit=int(m.group(3)))
    # Dependencies: `dependency: read canonical events: dependency` + the OS or decoder error.
    m = re.match(r"dependency: (.+?): dependency$", message)
    if m:
        return found("dependency", m.group(1).replace(" ", "_"))
    m = _OS_ERROR.match(message)
    if m:
        return found("dependency", "io", blob=m.group(2) if m.group(2).endswith(".json") else None)
    # A typed error of another shape: the kind word is still there.
    m = re.match(r"(invalid_argument|limit_exceeded|validation_failed|dependency): ", message)
    if m:
        return found(m.group(1), "other")
    return found("unclassified", "unclassified")
