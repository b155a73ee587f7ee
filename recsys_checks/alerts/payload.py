"""Alertmanager's webhook payload (version 4), checked whole before anything is recorded.

https://prometheus.io/docs/alerting/latest/configuration/#webhook_config: ``{"version": "4", "groupKey", "status",
"receiver", "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "alerts": [{"status", "labels",
"annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}]}``. A payload that breaks it is refused with one
line naming the field (``alerts[3].startsAt: ...``), and none of its alerts is recorded.

Alertmanager's payload nests at most four deep (the payload, ``alerts``, one alert, its ``labels``), writes no
``NaN`` or ``Infinity`` and no number beyond a float's range; a body that does any of these is not one of its
payloads and is refused before anything is kept, as is an alert whose compact JSON is over :data:`MAX_ALERT_BYTES`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .checks import BadPayload, loads

MAX_ALERTS = 10_000
MAX_LABELS = 100
MAX_TEXT = 4096  # one label or annotation value
MAX_DEPTH = 4  # the payload, its alerts, one alert, its labels: all that Alertmanager nests
MAX_ALERT_BYTES = 1024 * 1024  # one alert as kept (compact JSON); 100 labels and 100 annotations of 4 KiB fit
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
_FINGERPRINT = re.compile(r"^[0-9A-Za-z]{1,64}$")


@dataclass(frozen=True)
class Alert:
    status: str  # firing | resolved
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str  # as sent (RFC 3339)
    ends_at: str | None
    fingerprint: str
    generator_url: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.labels["alertname"]

    @property
    def key(self) -> tuple[str, str]:
        """The same alert notified again has the same key: its fingerprint and when it started."""
        return self.fingerprint, normal_time(self.starts_at)


def parse_time(value: str) -> datetime:
    """The UTC instant of an RFC 3339 time; ValueError when it is not one or lies outside the years 1 to 9999 once
    its offset is applied."""
    if not _TIME.match(value):
        raise ValueError(value)
    try:
        return _parse_time(value)
    except (ValueError, OverflowError):
        raise ValueError(value) from None


def _parse_time(value: str) -> datetime:
    text = value.replace("Z", "+00:00")
    if "." in text:  # Go writes up to nine fractional digits; Python reads six
        head, _, rest = text.partition(".")
        digits = re.match(r"\d+", rest).group(0)  # type: ignore[union-attr]
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits):]}"
    return datetime.fromisoformat(text).astimezone(UTC)


def normal_time(value: str) -> str:
    """An RFC 3339 time as UTC with microseconds, so that one instant written two ways is one key."""
    return parse_time(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(body: bytes) -> tuple[dict[str, Any], list[Alert]]:
    """The payload and its alerts; :class:`BadPayload` (one line) when it is not a version 4 webhook payload."""
    try:
        doc = loads(body.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite)
    except UnicodeDecodeError:
        raise BadPayload("the body is not UTF-8") from None
    except ValueError as exc:
        raise BadPayload(f"the body is not JSON ({str(exc).splitlines()[0][:120]})") from None
    deepest = depth(doc)
    if deepest > MAX_DEPTH:
        raise BadPayload(f"the body nests {deepest} deep, more than the {MAX_DEPTH} of Alertmanager's payload "
                         "(payload, alerts, alert, labels)")
    if not isinstance(doc, dict):
        raise BadPayload("the body is not a JSON object")
    if doc.get("version") != "4":
        raise BadPayload(f"version: expected \"4\" (Alertmanager's webhook payload), got {_shown(doc.get('version'))}")
    alerts = doc.get("alerts")
    if not isinstance(alerts, list):
        raise BadPayload("alerts: expected a list")
    if len(alerts) > MAX_ALERTS:
        raise BadPayload(f"alerts: {len(alerts)} alerts, more than {MAX_ALERTS} in one payload")
    out = [_alert(a, f"alerts[{i}]") for i, a in enumerate(alerts)]
    for i, a in enumerate(out):
        size = len(compact(a.raw))
        if size > MAX_ALERT_BYTES:
            raise BadPayload(f"alerts[{i}]: {size} bytes as JSON, more than {MAX_ALERT_BYTES} for one alert")
    return doc, out


def compact(doc: Any) -> bytes:
    """A document as the receiver keeps it: standard JSON, no spaces, UTF-8."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def depth(doc: Any) -> int:
    """How deep objects and lists nest in ``doc`` (a string or number is 0), without recursion."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        value, level = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        stack.extend((c, level + 1) for c in children if isinstance(c, dict | list))
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:40]} is beyond a float's range")
    return value


def _alert(raw: Any, at: str) -> Alert:
    if not isinstance(raw, dict):
        raise BadPayload(f"{at}: expected an object")
    status = raw.get("status")
    if status not in ("firing", "resolved"):
        raise BadPayload(f"{at}.status: expected \"firing\" or \"resolved\", got {_shown(status)}")
    labels = _strings(raw.get("labels"), f"{at}.labels")
    if not labels.get("alertname"):
        raise BadPayload(f"{at}.labels.alertname: missing or empty")
    annotations = _strings(raw.get("annotations") or {}, f"{at}.annotations")
    starts = raw.get("startsAt")
    if not isinstance(starts, str):
        raise BadPayload(f"{at}.startsAt: expected an RFC 3339 time")
    try:
        parse_time(starts)
    except ValueError:
        raise BadPayload(f"{at}.startsAt: {_shown(starts)} is not an RFC 3339 time") from None
    ends = raw.get("endsAt")
    if ends is not None and not isinstance(ends, str):
        raise BadPayload(f"{at}.endsAt: expected an RFC 3339 time")
    if ends:
        try:
            parse_time(ends)
        except ValueError:
            raise BadPayload(f"{at}.endsAt: {_shown(ends)} is not an RFC 3339 time") from None
    fingerprint = raw.get("fingerprint")
    if fingerprint in (None, ""):
        # Alertmanager always sends one (a hash of the label set); a hand-made payload may not.
        fingerprint = hashlib.sha256(json.dumps(sorted(labels.items())).encode()).hexdigest()[:16]
    elif not isinstance(fingerprint, str) or not _FINGERPRINT.match(fingerprint):
        raise BadPayload(f"{at}.fingerprint: expected up to 64 letters and digits, got {_shown(fingerprint)}")
    generator = raw.get("generatorURL") or ""
    if not isinstance(generator, str) or len(generator) > MAX_TEXT:
        raise BadPayload(f"{at}.generatorURL: expected a URL")
    return Alert(status=status, labels=labels, annotations=annotations, starts_at=starts, ends_at=ends or None,
                 fingerprint=fingerprint, generator_url=generator, raw=raw)


def _strings(value: Any, at: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise BadPayload(f"{at}: expected an object of strings")
    if len(value) > MAX_LABELS:
        raise BadPayload(f"{at}: more than {MAX_LABELS} entries")
    for k, v in value.items():
        if not isinstance(v, str):
            raise BadPayload(f"{at}.{k[:60]}: expected a string, got {_shown(v)}")
        if len(k) > 200 or len(v) > MAX_TEXT:
            raise BadPayload(f"{at}.{k[:60]}: longer than {MAX_TEXT} characters")
    return dict(value)


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True) if not isinstance(value, str) else json.dumps(value[:60])
    return text[:80]
