"""Deterministic exposure events, the publisher's input: one JSONL file per (tenant, surface, UTC day).

Each line is one item shown in one recommendation response, in the suite's pipeline event shape
(``v, ts, tenant, surface, user_id, session_id, request_id, item_id, rank``). The same (tenant, surface, day) always
gives the same bytes; different days give different popularity, so consecutive days publish different versions
and a rollback visibly changes what is served.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from . import catalog
from .formats import load_object, rfc3339, safe_segment
from .objstore import write_file_atomic

DEFAULT_VOLUME = 240  # recommendation responses per day; each shows ITEMS_PER_RESPONSE items
ITEMS_PER_RESPONSE = 10
REQUESTS_PER_SESSION = 2
USERS = 60


def events_path(root: Path, tenant: str, surface: str, day: date) -> Path:
    """``ROOT/events/<tenant>/<surface>/<YYYY-MM-DD>.jsonl``."""
    return Path(root) / "events" / safe_segment(tenant) / safe_segment(surface, "surface") / f"{day.isoformat()}.jsonl"


def _rng(*parts: str) -> random.Random:
    seed = hashlib.sha256("/".join(parts).encode("utf-8")).digest()
    return random.Random(int.from_bytes(seed[:8], "big"))


def _weights(tenant: str, surface: str, day: date) -> dict[str, float]:
    """Per-item exposure weight: a stable long tail per surface, perturbed per day so that rankings move."""
    base = _rng("base", tenant, surface)
    order = [item["item_id"] for item in catalog.ITEMS]
    base.shuffle(order)
    daily = _rng("day", tenant, surface, day.isoformat())
    return {item_id: math.exp(daily.gauss(0.0, 0.6)) / (rank + 1) ** 0.9 for rank, item_id in enumerate(order)}


def generate_events(tenant: str, surface: str, day: date, volume: int | None = None) -> list[dict]:
    """The exposure events of ``tenant``/``surface`` on ``day`` (UTC), oldest first."""
    safe_segment(tenant)
    safe_segment(surface, "surface")
    volume = DEFAULT_VOLUME if volume is None else volume
    if volume < 0:
        raise ValueError(f"event volume {volume} is negative: pass 0 or more responses per day")
    weights = _weights(tenant, surface, day)
    rng = _rng("events", tenant, surface, day.isoformat())
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    seconds = sorted(rng.randrange(86_400) for _ in range(volume))
    events: list[dict] = []
    for n, offset in enumerate(seconds):
        session = n // REQUESTS_PER_SESSION
        user = _rng("user", tenant, surface, day.isoformat(), str(session)).randrange(USERS)
        # Weighted sampling without replacement (Efraimidis-Spirakis): largest u^(1/w) wins.
        keyed = sorted(weights, key=lambda item_id: rng.random() ** (1.0 / weights[item_id]), reverse=True)
        ts = rfc3339(start + timedelta(seconds=offset))
        request_id = f"{tenant}-{surface}-{day:%Y%m%d}-{n:05d}"
        for rank, item_id in enumerate(keyed[:ITEMS_PER_RESPONSE], start=1):
            events.append(
                {
                    "v": 1,
                    "ts": ts,
                    "tenant": tenant,
                    "surface": surface,
                    "user_id": f"u-{user:03d}",
                    "session_id": f"{tenant}-{surface}-{day:%Y%m%d}-s{session:04d}",
                    "request_id": request_id,
                    "item_id": item_id,
                    "rank": rank,
                }
            )
    return events


def events_bytes(events: list[dict]) -> bytes:
    return b"".join(json.dumps(e, separators=(",", ":")).encode("utf-8") + b"\n" for e in events)


def ensure_events(root: Path, tenant: str, surface: str, day: date, volume: int | None = None, *,
                  rebuild: bool = False) -> Path:
    """Write the day's events file if it is missing (or holds a different ``volume``, or ``rebuild``: the upstream
    sent its data again) and return its path."""
    path = events_path(root, tenant, surface, day)
    if path.is_file() and volume is None and not rebuild:
        return path
    data = events_bytes(generate_events(tenant, surface, day, volume))
    if not path.is_file() or path.read_bytes() != data:
        write_file_atomic(path, data)
    return path


def read_events(path: Path) -> list[dict]:
    """Parse a JSONL events file; raise ValueError naming the line that is not a JSON object."""
    events = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            events.append(load_object(line, f"{path}:{number}"))
    return events
