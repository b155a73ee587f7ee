"""RFC 3339 timestamps as the suite writes them.

Manifests carry second precision with ``Z``; version records carry Go's ``time.Time`` text (nanoseconds, or the
zero time ``0001-01-01T00:00:00Z`` for versions published from staging). Python keeps microseconds only, so
ordering uses integer nanoseconds since the epoch.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta

from recsys_checks.core.errors import BadInput, ChecksError

ZERO_TIME = "0001-01-01T00:00:00Z"
_SECONDS_Z = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_GO_TIME = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d{1,9}))?(?P<zone>Z|[+-]\d{2}:\d{2})$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_micro_z(dt: datetime) -> str:
    """``dt`` in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``: for records whose order within a second matters."""
    if dt.tzinfo is None:
        raise ValueError("a naive datetime has no time zone; pass an aware UTC datetime")
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_z(dt: datetime) -> str:
    """``dt`` in UTC as ``YYYY-MM-DDTHH:MM:SSZ`` (the manifest's ``updated_at`` format)."""
    if dt.tzinfo is None:
        raise ValueError("a naive datetime has no time zone; pass an aware UTC datetime")
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_seconds_z(value: object, what: str) -> datetime:
    """Parse RFC 3339 UTC with second precision and ``Z``, strictly; :class:`BadInput` names ``what``."""
    if not isinstance(value, str) or not _SECONDS_Z.fullmatch(value):
        raise BadInput(f"{what} {value!r} is not RFC 3339 UTC with second precision, e.g. 2026-01-02T01:23:45Z")
    try:  # the pattern fixed the format; fromisoformat is many times faster than strptime over a fleet
        return datetime.fromisoformat(value)  # "Z" reads as UTC (Python 3.11+)
    except ValueError:
        raise BadInput(f"{what} {value!r} is not a valid date and time") from None


def parse_go_time(value: object, what: str) -> tuple[datetime, int]:
    """Parse Go's RFC 3339 time text (optional fraction up to nanoseconds, ``Z`` or offset).

    Returns ``(aware datetime truncated to microseconds, nanoseconds since the epoch)``.
    """
    parsed = _go_time(value) if isinstance(value, str) else None
    if parsed is None:
        raise BadInput(f"{what} {value!r} is not an RFC 3339 time, e.g. 2026-01-02T01:23:45.123456789Z")
    if parsed is _INVALID_DATE:
        raise BadInput(f"{what} {value!r} is not a valid date and time")
    return parsed


_INVALID_DATE = (datetime.min, 0)


def check_go_time(value: object, what: str) -> None:
    """Raise :class:`BadInput` exactly when :func:`parse_go_time` would, without working the time out: for texts
    read once each (every version record's build time is its own), where remembering them would gain nothing."""
    m = _GO_TIME.match(value) if isinstance(value, str) else None
    if m is None:
        raise BadInput(f"{what} {value!r} is not an RFC 3339 time, e.g. 2026-01-02T01:23:45.123456789Z")
    try:
        datetime.fromisoformat(m["base"])
    except ValueError:
        raise BadInput(f"{what} {value!r} is not a valid date and time") from None


@functools.lru_cache(maxsize=4096)
def _go_time(value: str) -> tuple[datetime, int] | None:
    """:func:`parse_go_time` of a text, remembered: a fleet's records repeat the same window times (the results are
    immutable). ``None`` when it is not RFC 3339, :data:`_INVALID_DATE` when it names no date."""
    m = _GO_TIME.match(value)
    if not m:
        return None
    zone = m["zone"]
    try:  # the pattern fixed the format; fromisoformat is many times faster than strptime over a long history
        base = datetime.fromisoformat(m["base"])
    except ValueError:
        return _INVALID_DATE
    if zone == "Z":
        tz = UTC
    else:
        sign = 1 if zone[0] == "+" else -1
        from datetime import timezone

        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    frac = (m["frac"] or "").ljust(9, "0")
    nanos = int(frac)
    dt = base.replace(tzinfo=tz, microsecond=nanos // 1000)
    delta = dt.replace(microsecond=0) - _EPOCH
    total_ns = (delta.days * 86400 + delta.seconds) * 1_000_000_000 + nanos
    return dt.astimezone(UTC) if dt.year > 1 else dt, total_ns


def is_zero_time(value: str) -> bool:
    """Whether ``value`` is Go's zero time (a version published from staging)."""
    return value == ZERO_TIME


def parse_time(value: object) -> datetime | None:
    """Any RFC 3339 text (second, micro or nano precision) as an aware UTC datetime; ``None`` if absent or bad."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_go_time(value, "time")[0]
    except ChecksError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def age_text(age: timedelta | float | int) -> str:
    """An age (or a duration) as a person reads it: ``45s``, ``17m``, ``26h00m``; negative ages keep their sign."""
    seconds = age.total_seconds() if isinstance(age, timedelta) else float(age)
    secs, sign = int(abs(seconds)), "-" if seconds < 0 else ""
    if secs < 120:
        return f"{sign}{secs}s"
    if secs < 7200:
        return f"{sign}{secs // 60}m"
    hours, rest = divmod(secs, 3600)
    return f"{sign}{hours}h{rest // 60:02d}m"
