"""Alertmanager's webhook payload (version 4), checked whole before anything is recorded.

https://prometheus.io/docs/alerting/latest/configuration/#webhook_config: ``{"version": "4", "groupKey", "status",
"receiver", "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "alerts": [{"status", "labels",
"annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}]}``. A payload that breaks it is refused with one
line naming the field (``alerts[3].startsAt: ...``), and none of its alerts is recorded.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .checks import BadPayload

MAX_ALERTS = 10_000
MAX_LABELS = 100
MAX_TEXT = 4096  # one label or annotation value
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
    if not _TIME.match(value):
        raise ValueError(value)
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
        doc = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadPayload("the body is not UTF-8") from None
    except ValueError as exc:
        raise BadPayload(f"the body is not JSON ({str(exc).splitlines()[0][:120]})") from None
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
    return doc, out


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
