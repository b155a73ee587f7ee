"""Version records: the append-only history under ``<registry>/records/<tenant>/<surface>/<kind>/<version>.json``.

The suite writes them with Go field names (``Key``, ``Window``, ``Version``, ``URI``, ``BuiltAt``) and no JSON
tags; Go reads keys case-insensitively, and so do we. ``BuiltAt`` is nanosecond RFC 3339 or the zero time
``0001-01-01T00:00:00Z`` (versions published from staging), which sorts as the oldest build.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from recsys_checks.core import jsonio
from recsys_checks.core.errors import BadInput, InvalidObject, NotFound
from recsys_checks.core.timefmt import check_go_time, is_zero_time, parse_go_time
from recsys_checks.judge.registry.artifact import KINDS, VERSION_RE
from recsys_checks.reach.settings import Target, safe_segment
from recsys_checks.reach.store import TargetStores

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class VersionRecord:
    """One published version of one artifact kind of a (tenant, surface)."""

    tenant: str
    surface: str
    segment: str
    kind: str
    version: str
    uri: str
    window_start: str
    window_end: str
    built_at: str
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    record_uri: str = ""

    @property
    def from_staging(self) -> bool:
        """Built at Go's zero time: published from staging, no build time known."""
        return is_zero_time(self.built_at)

    @cached_property  # a history sorts and compares thousands of records: each parses its times once
    def sort_key(self) -> tuple[int, int, str]:
        """Ascending age order: window end, then build time (nanoseconds), then version for stability."""
        return (parse_go_time(self.window_end, "Window.End")[1], parse_go_time(self.built_at, "BuiltAt")[1],
                self.version)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "surface": self.surface,
            "segment": self.segment,
            "kind": self.kind,
            "version": self.version,
            "uri": self.uri,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "built_at": self.built_at,
            "from_staging": self.from_staging,
            "record_uri": self.record_uri,
        }


def _field(obj: dict[str, Any], name: str, where: str, *, required: bool = True) -> Any:
    if name in obj:
        return obj[name]
    for key, value in obj.items():  # Go's decoder matches field names case-insensitively
        if isinstance(key, str) and key.lower() == name.lower():
            return value
    if required:
        raise BadInput(f"version record {where} has no {name} field")
    return None


def _string(value: Any, name: str, where: str) -> str:
    if not isinstance(value, str):
        raise BadInput(f"version record {where}: {name} must be a string, got {type(value).__name__}")
    return value


def parse_version_record(data: bytes | str, *, where: str = "") -> VersionRecord:
    """Parse one record in the suite's format; :class:`BadInput` names the field that is wrong."""
    where = where or "(inline)"
    doc = jsonio.load_object(data, f"version record {where}")
    key = _field(doc, "Key", where)
    window = _field(doc, "Window", where)
    if not isinstance(key, dict) or not isinstance(window, dict):
        raise BadInput(f"version record {where}: Key and Window must be objects")
    tenant = safe_segment(_string(_field(key, "Tenant", where), "Key.Tenant", where), "tenant")
    surface = safe_segment(_string(_field(key, "Surface", where), "Key.Surface", where), "surface")
    segment = _string(_field(key, "Segment", where, required=False) or "", "Key.Segment", where)
    kind = _string(_field(key, "Type", where), "Key.Type", where)
    if kind not in KINDS:
        raise BadInput(f"version record {where}: Key.Type {kind!r} is not one of {', '.join(KINDS)}")
    version = _string(_field(doc, "Version", where), "Version", where)
    if not VERSION_RE.match(version):
        raise BadInput(f"version record {where}: Version {version!r} is not 64 lowercase hex")
    uri = _string(_field(doc, "URI", where), "URI", where)
    start = _string(_field(window, "Start", where), "Window.Start", where)
    end = _string(_field(window, "End", where), "Window.End", where)
    built_at = _string(_field(doc, "BuiltAt", where), "BuiltAt", where)
    try:
        parse_go_time(start, "Window.Start")  # window times repeat across a fleet: parsed once, remembered
        parse_go_time(end, "Window.End")
        check_go_time(built_at, "BuiltAt")  # each build time is its own: checked, not remembered
    except BadInput as exc:
        raise BadInput(f"version record {where}: {exc}") from None
    return VersionRecord(tenant, surface, segment, kind, version, uri, start, end, built_at, doc, where)


# A local read slower than this (a network mount) is worth a pool of readers; faster ones are read in order.
SLOW_LOCAL_READ = 0.002  # seconds
_PROBE_READS = 2


def read_each(read: Callable[[T], R], items: list[T], *, local: bool, workers: int = 8) -> list[R]:
    """``read`` over ``items``, results in order: by a pool of threads for a remote store; for local files in order
    (each takes microseconds, and threads would only contend for the interpreter, several times slower over a long
    history), unless the first reads show a slow mount, when the rest go to the pool."""
    done: list[R] = []
    if local:
        started = time.perf_counter()
        done = [read(item) for item in items[:_PROBE_READS]]
        if len(items) <= _PROBE_READS or (time.perf_counter() - started) / len(done) < SLOW_LOCAL_READ:
            return done + [read(item) for item in items[_PROBE_READS:]]
    rest = items[len(done):]
    if len(rest) < 2:
        return done + [read(item) for item in rest]
    from concurrent.futures import ThreadPoolExecutor  # imported when used: a fleet scan never reads records

    with ThreadPoolExecutor(max_workers=min(workers, len(rest))) as pool:
        return done + list(pool.map(read, rest))


def load_version_records(
    target: Target, tenant: str, surface: str, kind: str | None = None, *, stores: TargetStores
) -> tuple[list[VersionRecord], list[str]]:
    """Every readable record of the surface (newest first) and a problem line for each unusable one."""
    safe_segment(tenant, "tenant")
    safe_segment(surface, "surface")
    if kind is not None and kind not in KINDS:
        raise BadInput(f"unknown artifact kind {kind!r}: use one of {', '.join(KINDS)}")
    prefix = target.records_prefix(tenant, surface) + (f"{kind}/" if kind else "")
    uris = [u for u in stores.list(prefix) if u.endswith(".json")]

    def _read(uri: str) -> VersionRecord | str:
        try:
            data, _ = stores.get(uri)
            rec = parse_version_record(data, where=uri)
        except (BadInput, NotFound, InvalidObject) as exc:
            return str(exc)
        rel = uri[len(target.records_prefix(tenant, surface)):]
        if (rec.tenant, rec.surface) != (tenant, surface):
            return f"version record {uri} is for {rec.tenant}/{rec.surface}, not {tenant}/{surface}"
        if rel != f"{rec.kind}/{rec.version}.json":
            return f"version record {uri} says {rec.kind}/{rec.version}, which does not match its key"
        return rec

    results = read_each(_read, uris, local=prefix.startswith("file://"))
    version_records = [r for r in results if isinstance(r, VersionRecord)]
    problems = [r for r in results if isinstance(r, str)]
    version_records.sort(key=lambda r: r.sort_key, reverse=True)
    return version_records, problems


def version_history(
    target: Target, tenant: str, surface: str, kind: str | None = None, *, stores: TargetStores | None = None
) -> list[VersionRecord]:
    """Published versions of a surface, newest first by window end then build time; unreadable records skipped."""
    own = stores is None
    stores = stores or TargetStores(target)
    try:
        return load_version_records(target, tenant, surface, kind, stores=stores)[0]
    finally:
        if own:
            stores.close()
