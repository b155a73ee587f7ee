"""What a failed ``recsys-pipelines`` run printed, classified from the whole tail of its log.

The suite's pipelines end a failed run with a line that begins ``run failed:``, and what follows often carries no
kind word at all (``run failed: event limit exceeded: 51 > 50``, ``run failed: Get "http://...": dial tcp ...:
connect: connection refused``). Typed errors print ``<kind>: <message>: <kind>`` and, when they wrap a detail error,
the detail on the next line(s) (``items=6 max=5``). A run that stops on its setup exits 2 before any stage line with
a line of its own (``config error: ...``, ``object store error: ...``, ``invalid start: ...``, ``missing required
flags``, ``checkpoint missing; provide --start for first run``) or Go's flag usage. Before the last line, the run
logs one line per stage (``INFO ingest: start tenant=demo surface=home start=2026-12-01T00:00:00Z ...``): the day
that failed is the ``start=`` of the last ``ingest:`` or ``validate:`` line, except after a backfill over its limit,
whose logged days all succeeded (the failed day is the one after them).

:func:`classify` reads all of that by family, not by line: the kind, the rule (or the field of a bad event), the
setting a configuration failure names, what refused for a dependency, the suite's configuration key and the numbers
when a limit tripped (``at_least`` when a number is where counting stopped, not the day's volume), the failed day, and
the message with its detail lines. A failure it cannot place is ``unclassified`` and quoted in full, and so is a log
whose last line is neither a stage line nor a failure; only a log of stage lines alone is ``None``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

KINDS = ("configuration", "invalid_argument", "limit_exceeded", "validation_failed", "dependency", "unclassified")
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
# The suite's setup failures (exit 2, before any day runs): `<source> error: <detail>`, `invalid start: ...`.
_SETUP = re.compile(r"^(config|object store|raw source|signal store|catalog) error: (.*)$")
_SETUP_FLAG = re.compile(r"^invalid (start|end): (.*)$")
_SETUP_OTHER = re.compile(r"^(unknown command: .*|missing required flags.*)$")

# The suite's `limits` keys, by the words of its messages. The validator's counts and the compute stages stop
# counting at the first value over the limit (`sessions=6 max=5` of a day of ten); the others are the whole count.
_KEYS_BY_COUNT = {"canonical event count": "max_events_per_run", "distinct item count": "max_distinct_items_per_run",
                  "distinct session count": "max_sessions_per_run"}
_COMPUTE_LIMITS = {"items per session": "max_items_per_session", "session": "max_sessions_per_run",
                   "distinct item": "max_items_per_artifact or max_distinct_items_per_run",
                   "distinct user": "max_users_per_run", "items per user": "max_items_per_user",
                   "catalog item": "max_items_per_artifact"}
_ARTIFACT_LIMITS = {"popularity items": "max_items_per_artifact", "cooc rows": "max_items_per_artifact",
                    "cooc neighbors": "max_neighbors_per_item"}
_OS_OPS = "mkdir|open|read|write|rename|stat|lstat|remove|create|chmod|sync|close"
_OS_ERROR = re.compile(rf"^({_OS_OPS}) (.+?): ([^:]+)$")
_NOT_WRITABLE = ("permission denied", "read-only file system", "operation not permitted")
_HTTP = re.compile(r'^(?:Get|Put|Head|Post|Delete|Patch) "([^"]+)": (.+)$')
_DATABASE = re.compile(r"^failed to connect to `([^`]*)`: (.+)$")
_UNREACHABLE = re.compile(r"dial tcp|connection refused|i/o timeout|no such host|connection reset")


@dataclass
class Failure:
    """One classified failure. ``key`` is the suite's configuration key of a limit (``at_least``: ``observed`` is
    where counting stopped, the day holds at least that many); ``field`` the field of a bad event; ``setting`` what a
    configuration failure names; ``target`` what refused (a URL, a database, a path); ``day`` the failed day."""

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
    setting: str | None = None
    target: str | None = None
    at_least: bool = False
    file: str | None = None

    @property
    def text(self) -> str:
        """The failure as printed: the line and its detail lines."""
        return "\n".join([self.line, *self.detail])

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "rule": self.rule, "message": self.message, "detail": self.detail,
                "day": self.day, "key": self.key, "observed": self.observed, "limit": self.limit,
                "field": self.field, "blob": self.blob, "exit_code": self.exit_code, "line": self.line,
                "setting": self.setting, "target": self.target, "at_least": self.at_least, "file": self.file}


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


def day_after(day: str | None) -> str | None:
    """The day after ``day`` (``YYYY-MM-DD``), or ``None``."""
    try:
        return (date.fromisoformat(day) + timedelta(days=1)).isoformat() if day else None
    except ValueError:
        return None


def classify(text: str) -> Failure | None:
    """The last failure in a pipeline log (see the module docstring), or ``None`` when the log shows none."""
    lines = text.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        found = _failure_at(lines, i)
        if found is not None:
            found.day = _the_failed_day(found, text)
            return found
    return _unplaced(lines)


def _the_failed_day(failure: Failure, text: str) -> str | None:
    """The failed day: the last logged ``start=``; after a backfill over its limit every logged day succeeded."""
    if failure.kind == "configuration":
        return None  # the run stopped on its setup, before any day
    day = failed_day(text)
    return day_after(day) if failure.rule == "max_days_backfill" else day


def _failure_at(lines: list[str], i: int) -> Failure | None:
    line = lines[i].rstrip()
    if line.startswith(_FAILED):
        failure = _classify_run_failed(line[len(_FAILED):].strip(), _tail(lines, i))
        failure.line = line
        return failure
    setup = _setup_failure(line)
    if setup is not None:
        return setup
    for pattern, rule, key in _EXIT2:
        if pattern.match(line):
            if rule == "flags":  # Go's usage text: the failure is its first line
                while i > 0 and (_EXIT2[2][0].match(lines[i - 1]) or lines[i - 1].startswith((" ", "\t"))):
                    i -= 1
                line = lines[i].rstrip()
            detail = _tail(lines, i) if rule != "flags" else []
            return Failure("invalid_argument", rule, line, detail, key=key, exit_code=2, line=line)
    return None


def _unplaced(lines: list[str]) -> Failure | None:
    """No failure line: ``None`` when the log ends on a line of the suite's logger (or is empty), else the last line
    is something no rule knows (a panic, a truncated log, another program's output): unclassified, quoted."""
    last = next((line.rstrip() for line in reversed(lines) if line.strip()), None)
    if last is None or _LOG_LINE.match(last):
        return None
    return Failure("unclassified", "unclassified", last, [], line=last)


def _setup_failure(line: str) -> Failure | None:
    """A run that stopped on its setup (exit 2): the setting it names."""
    m = _SETUP.match(line)
    if m:
        return Failure("configuration", f"{m.group(1).replace(' ', '_')}_error", line, exit_code=2, line=line,
                       setting=_setting_of(m.group(1), m.group(2)))
    m = _SETUP_FLAG.match(line)
    if m:
        return Failure("configuration", f"invalid_{m.group(1)}", line, exit_code=2, line=line,
                       setting=f"--{m.group(1)}")
    m = _SETUP_OTHER.match(line)
    if m:
        rule = "unknown_command" if line.startswith("unknown command") else "missing_flags"
        setting = "the command" if rule == "unknown_command" else "the required flags (--tenant, --surface, ...)"
        return Failure("configuration", rule, line, exit_code=2, line=line, setting=setting)
    return None


def _setting_of(source: str, detail: str) -> str:
    """What a setup error names: ``unsupported artifact kind: embeddings`` → ``artifact kind (embeddings)``, an
    unreadable file → that file, anything else → the source's settings."""
    m = re.match(r"(?:unsupported|unknown|invalid|missing) ([\w .-]+?)(?:: (.+))?$", detail)
    if m:
        return f"{m.group(1)} ({m.group(2)})" if m.group(2) else m.group(1)
    m = re.match(rf"(?:{_OS_OPS}) (.+?): ", detail)
    if m:
        return f"the {source} file {m.group(1)}"
    if detail.startswith("parse "):
        return f"the {source} file (it does not parse: {detail.split(': ', 1)[-1]})"
    return f"the {source} settings"


def _classify_run_failed(message: str, detail: list[str]) -> Failure:
    for family in (_ingest, _arguments, _validator, _compute, _dependency):
        found = family(message, detail)
        if found is not None:
            return found
    # A typed error of another shape: the kind word is still there.
    m = re.match(r"(invalid_argument|limit_exceeded|validation_failed|dependency): ", message)
    if m:
        return Failure(m.group(1), "other", message, detail)
    return Failure("unclassified", "unclassified", message, detail)


def _ingest(message: str, detail: list[str]) -> Failure | None:
    """The raw events of the day: their count, a bad event, a line the decoder cannot read."""
    m = re.match(r"event limit exceeded: (\d+) > (\d+)$", message)
    if m:
        return Failure("limit_exceeded", "max_events_per_run", message, detail, key="max_events_per_run",
                       observed=int(m.group(1)), limit=int(m.group(2)), at_least=True)
    m = re.match(r"invalid (\w+) event: (\w+) must be (?:set|.+)$", message)
    if m and not message.startswith(f"invalid {m.group(1)} event: unsupported"):
        return Failure("validation_failed", f"bad_{m.group(1)}_event", message, detail, field=m.group(2),
                       file=f"the day's raw {m.group(1)} file")
    if re.match(r"(?:invalid \w+ event: )?unsupported version: ", message):
        return Failure("validation_failed", "event_version", message, detail, field="v")
    m = re.match(r"decode (\w+) jsonl: (.+)$", message)
    if m:
        return Failure("validation_failed", f"bad_{m.group(1)}_jsonl", message, detail,
                       file=f"the day's raw {m.group(1)} file (a line that is not JSON: {m.group(2)})")
    return None


def _arguments(message: str, detail: list[str]) -> Failure | None:
    """What the run was given: the segment, the day range, the backfill's length."""
    if message == "segment must be set":
        return Failure("invalid_argument", "segment", message, detail, key="--segment")
    m = re.match(r"backfill exceeds max days: (\d+) > (\d+)$", message)
    if m:
        return Failure("limit_exceeded", "max_days_backfill", message, detail, key="max_days_backfill",
                       observed=int(m.group(1)), limit=int(m.group(2)))
    if message.startswith("endDay must be >= startDay"):
        return Failure("invalid_argument", "day_range", message, detail)
    return None


def _validator(message: str, detail: list[str]) -> Failure | None:
    """The validator: volume checks are limits (numbers on the detail line), the rest are bad artifacts."""
    numbers = _numbers(detail)
    m = re.match(r"validation_failed: (.+?) exceeds max: validation_failed$", message)
    if m:
        what = m.group(1)
        key = _KEYS_BY_COUNT.get(what) or _ARTIFACT_LIMITS.get(what)
        if key:
            observed = next((v for k, v in numbers.items() if k not in ("max", "min")), None)
            return Failure("limit_exceeded", key, message, detail, key=key, observed=observed,
                           limit=numbers.get("max"), at_least=what in _KEYS_BY_COUNT)
        return Failure("validation_failed", what.replace(" ", "_"), message, detail)
    if re.match(r"validation_failed: canonical event count below min: validation_failed$", message):
        return Failure("validation_failed", "min_events", message, detail, observed=numbers.get("events"),
                       limit=numbers.get("min"))
    m = re.match(r"validation_failed: (\w+ )?(version hash|artifact version|artifact_type) mismatch", message)
    if m:
        return Failure("validation_failed", m.group(2).replace(" ", "_"), message, detail)
    return None


def _compute(message: str, detail: list[str]) -> Failure | None:
    """A compute stage's limit, optional stages included: `limit_exceeded: <what> limit exceeded: A >= B`."""
    m = re.match(r"limit_exceeded: (.+?) limit exceeded: (\d+) (>=|>) (\d+)", message)
    if not m:
        return None
    key = _COMPUTE_LIMITS.get(m.group(1))
    rule = key or "unknown_limit"  # never a made-up key: the suite ignores a `limits` key it does not know
    return Failure("limit_exceeded", rule, message, detail, key=key, observed=int(m.group(2)),
                   limit=int(m.group(4)), at_least=m.group(3) == ">=", field=None if key else m.group(1))


def _dependency(message: str, detail: list[str]) -> Failure | None:
    """What refused: the object store (HTTP), the signal database, the store's permissions, the OS, a torn JSON."""
    m = re.match(r"dependency: (.+?): dependency$", message)
    if m:
        return Failure("dependency", m.group(1).replace(" ", "_"), message, detail)
    m = _HTTP.match(message)
    if m:
        return Failure("dependency", "object_store", message, detail, target=m.group(1))
    m = _DATABASE.match(message)
    if m:
        return Failure("dependency", "signal_database", message, detail, target=m.group(1))
    m = _OS_ERROR.match(message)
    if m:
        if m.group(3).strip() in _NOT_WRITABLE:
            return Failure("dependency", "store_permissions", message, detail, target=m.group(2))
        return Failure("dependency", "io", message, detail, target=m.group(2),
                       blob=m.group(2) if m.group(2).endswith(".json") else None)
    if message.startswith("unexpected end of JSON input") or message.startswith("invalid character "):
        return Failure("dependency", "registry_document", message, detail)
    if _UNREACHABLE.search(message):
        return Failure("dependency", "unreachable", message, detail)
    return None
