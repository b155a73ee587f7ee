"""The stack's pipeline: build a UTC day's popularity and co-occurrence artifacts and publish them (§1.4).

For each kind: (1) write the blob, (2) validate what the store now holds, (3) write the version record (never
rewritten; an existing record is a no-op). Only after every kind succeeded: (4) swap the manifest, merging the
existing ``current`` and compare-and-swapping against the manifest read at the start. Any failure stops before (4),
so serving keeps the previous versions. Every run leaves a run log under ``ROOT/runs/<tenant>/<surface>/``; a
successful one also advances ``ROOT/checkpoints/<tenant>/<surface>.json``.

A run prints what the suite's ``recsys-pipelines`` prints (tests/checks_pipelines quotes the suite's lines): one log
line per stage (``2026/12/02 13:41:15 INFO ingest: start
tenant=demo surface=home start=...``), and on failure a last line that begins ``run failed:``, often with no kind
word (``run failed: event limit exceeded: 51 > 50``), typed errors as ``<kind>: <message>: <kind>`` with the detail
on the next line. The same text is kept as ``ROOT/runs/<tenant>/<surface>/<run id>.log`` beside the JSON run log.
The job's limits use the suite's ``limits`` keys and defaults. Like the suite's, this publisher checks no hold: a
scheduler that must respect one asks the gate first (``recsys-stack scheduled-publish``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import socket
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .events import ensure_events, read_events
from .formats import (
    ArtifactInvalid,
    UnsafeSegment,
    artifact_bytes,
    build_artifact,
    check_artifact,
    cooc_rows,
    day_window,
    go_json,
    manifest_bytes,
    manifest_dict,
    parse_manifest,
    parse_time,
    popularity_items,
    record_bytes,
    record_dict,
    rfc3339,
    rfc3339_nano,
    safe_segment,
)
from .objstore import (
    NotFound,
    ObjectStore,
    PreconditionFailed,
    StoreError,
    blob_key,
    manifest_key,
    record_key,
    write_file_atomic,
)

KINDS: tuple[str, ...] = ("popularity", "cooc")
STEPS: tuple[str, ...] = ("blob", "validate", "record", "swap")
# The suite's four kinds of typed error, and ``io`` and ``bad_event``: failures it prints with no kind word.
ERROR_KINDS: tuple[str, ...] = ("invalid_argument", "limit_exceeded", "validation_failed", "dependency", "io",
                                "bad_event", "setup", "refused")
RECORD_SEGMENT = "default"
# The suite's `limits` keys and defaults (the ones this publisher enforces).
DEFAULT_LIMITS: dict[str, int] = {"max_events_per_run": 1_000_000, "max_distinct_items_per_run": 2_000_000}
# Limits the suite enforces only when configured: the implicit stage's users, and a backfill's length in days.
OPTIONAL_LIMITS: tuple[str, ...] = ("max_users_per_run", "max_days_backfill")
DEFAULT_MAX_EVENTS = DEFAULT_LIMITS["max_events_per_run"]
DEFAULT_MAX_ITEMS = DEFAULT_LIMITS["max_distinct_items_per_run"]

# What an injected failure looks like to the operator, per step.
_INJECTED_KIND = {"blob": "dependency", "validate": "validation_failed", "record": "dependency", "swap": "dependency"}


class PublishError(Exception):
    """A failed publish. ``str()`` is what the suite prints last: ``run failed: `` and the message as the suite
    shapes it (typed errors ``<kind>: <message>: <kind>`` with the detail on the next line; others bare)."""

    def __init__(self, kind: str, message: str, *, exit_code: int = 1, step: str | None = None,
                 detail: str | None = None, bare: bool = False) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown publish error kind {kind!r}: use one of {', '.join(ERROR_KINDS)}")
        super().__init__(kind, message)
        self.kind = kind
        self.message = message
        self.detail = detail
        self.bare = bare or kind in ("io", "bad_event", "refused")
        self.exit_code = exit_code
        self.step = step
        self.run_log: dict | None = None

    def __str__(self) -> str:
        if self.kind == "setup":  # the suite stops on its setup with a line of its own, exit 2, no stage line
            return self.message
        if self.bare:
            text = f"run failed: {self.message}"
        else:
            text = f"run failed: {self.kind}: {self.message}: {self.kind}"
        return text + (f"\n{self.detail}" if self.detail else "")


# --- paths ---------------------------------------------------------------------------------------------------------


def runs_dir(root: Path, tenant: str, surface: str) -> Path:
    return Path(root) / "runs" / safe_segment(tenant) / safe_segment(surface, "surface")


def checkpoint_path(root: Path, tenant: str, surface: str) -> Path:
    return Path(root) / "checkpoints" / safe_segment(tenant) / f"{safe_segment(surface, 'surface')}.json"


def write_checkpoint(root: Path, tenant: str, surface: str, day: date) -> None:
    """``{"day": "YYYY-MM-DD"}``, as the suite writes it after each successful day."""
    path = checkpoint_path(root, tenant, surface)
    write_file_atomic(path, go_json({"day": day.isoformat()}, indent=True).encode("utf-8"))


def read_checkpoint(root: Path, tenant: str, surface: str) -> date | None:
    """The last successfully published day, or None before the first success."""
    path = checkpoint_path(root, tenant, surface)
    try:
        return date.fromisoformat(json.loads(path.read_text(encoding="utf-8"))["day"])
    except FileNotFoundError:
        return None


def run_logs(root: Path, tenant: str, surface: str) -> list[dict]:
    """Run logs of ``tenant``/``surface``, newest first."""
    folder = runs_dir(root, tenant, surface)
    logs = [json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*.json")] if folder.is_dir() else []
    return sorted(logs, key=lambda log: (log.get("started_at", ""), log.get("run_id", "")), reverse=True)


def job_limits_path(root: Path) -> Path:
    return Path(root) / "pipeline.json"


def job_limits(root: Path) -> dict[str, int]:
    """The job's configured limits from ``ROOT/pipeline.json`` (``{"limits": {...}}``, the suite's keys); empty:
    the defaults (:data:`DEFAULT_LIMITS`)."""
    try:
        doc = json.loads(job_limits_path(root).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    limits = doc.get("limits") if isinstance(doc, dict) else None
    return {k: int(v) for k, v in (limits or {}).items() if k in DEFAULT_LIMITS or k in OPTIONAL_LIMITS}


def job_config(root: Path) -> dict[str, Any]:
    """The job's configuration ``ROOT/pipeline.json`` as the suite reads its own at start: a file that does not parse,
    an artifact kind or object store type it does not support stops the run before any day (exit 2)."""
    try:
        doc = json.loads(job_limits_path(root).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise PublishError("setup", f"config error: parse config: {exc}", exit_code=2) from None
    if not isinstance(doc, dict):
        raise PublishError("setup", "config error: parse config: not an object", exit_code=2)
    for kind in doc.get("kinds") or []:
        if kind not in KINDS:
            raise PublishError("setup", f"config error: unsupported artifact kind: {kind}", exit_code=2)
    store_type = (doc.get("object_store") or {}).get("type", "file")
    if store_type not in ("file", "s3"):
        raise PublishError("setup", f"object store error: unsupported object store type: {store_type}", exit_code=2)
    return doc


def set_job_config(root: Path, **settings: Any) -> None:
    """Merge ``settings`` into the job's configuration (what a deployment's config change does)."""
    try:
        doc = json.loads(job_limits_path(root).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        doc = {}
    write_file_atomic(job_limits_path(root), (json.dumps({**doc, **settings}, indent=2) + "\n").encode())


def set_job_limits(root: Path, **limits: int) -> None:
    unknown = sorted(set(limits) - set(DEFAULT_LIMITS) - set(OPTIONAL_LIMITS))
    if unknown:
        raise ValueError(f"unknown job limit(s) {', '.join(unknown)}: use {', '.join(DEFAULT_LIMITS)}")
    set_job_config(root, limits={**job_limits(root), **limits})


def reset_job_limits(root: Path) -> bool:
    """Back to the default limits; True when something was reset."""
    path = job_limits_path(root)
    if not path.exists():
        return False
    path.unlink()
    return True


# --- arguments -----------------------------------------------------------------------------------------------------


def _parse_fail_at(fail_at: str | None, kinds: Sequence[str]) -> tuple[str, str | None] | None:
    if fail_at is None:
        return None
    step, _, kind = fail_at.partition(":")
    valid = ", ".join(list(STEPS[:3]) + [f"{s}:<kind>" for s in STEPS[:3]] + ["swap"])
    if step not in STEPS or (step == "swap" and kind) or (kind and kind not in kinds):
        raise PublishError("invalid_argument", f"fail_at {fail_at!r} is not one of {valid}", exit_code=2)
    return step, kind or None


def _check_arguments(
    tenant: str, surface: str, day: date, kinds: Sequence[str], override: Mapping[str, list] | None
) -> None:
    try:
        safe_segment(tenant, "tenant")
        safe_segment(surface, "surface")
    except UnsafeSegment as exc:
        raise PublishError("invalid_argument", str(exc), exit_code=2) from None
    if not isinstance(day, date) or isinstance(day, datetime):
        raise PublishError("invalid_argument", f"day {day!r} must be a date such as 2026-01-01", exit_code=2)
    unknown = [k for k in kinds if k not in KINDS]
    if not kinds or unknown or len(set(kinds)) != len(kinds):
        raise PublishError(
            "invalid_argument", f"kinds {list(kinds)!r} must be distinct values of {', '.join(KINDS)}", exit_code=2
        )
    for kind, payload in (override or {}).items():
        if kind not in kinds or not isinstance(payload, list):
            raise PublishError(
                "invalid_argument", f"override for {kind!r} must be a list payload of a published kind", exit_code=2
            )


# --- building ------------------------------------------------------------------------------------------------------


def _popularity(events: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for event in events:
        counts[event["item_id"]] += 1
    return counts


def _cooc(events: list[dict]) -> dict[str, dict[str, int]]:
    # Items co-occur when shown in the same session (as in the suite's pipeline).
    sessions: dict[str, set[str]] = defaultdict(set)
    for event in events:
        sessions[event["session_id"]].add(event["item_id"])
    pairs: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for items in sessions.values():
        ordered = sorted(items)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                pairs[a][b] += 1
                pairs[b][a] += 1
    return pairs


def _payload(kind: str, events: list[dict]) -> list[dict]:
    return popularity_items(_popularity(events)) if kind == "popularity" else cooc_rows(_cooc(events))


# --- the run -------------------------------------------------------------------------------------------------------


class _Run:
    """Collects the steps of one publish and writes its run log."""

    def __init__(
        self,
        root: Path,
        tenant: str,
        surface: str,
        day: date,
        started: datetime,
        fixed: bool,
        injected: tuple[str, str | None] | None = None,
    ) -> None:
        self.root, self.tenant, self.surface, self.day = root, tenant, surface, day
        self.started, self.fixed, self.injected = started, fixed, injected
        self.run_id = f"{started:%Y%m%dT%H%M%S}Z-{day:%Y%m%d}-{secrets.token_hex(3)}"
        self.steps: list[dict] = []
        self.lines: list[str] = []  # what the suite's binary prints, line by line
        self.log: dict[str, Any] = {}
        # The step (and kind) under way: a failure that is not a PublishError is reported against it.
        self.current: tuple[str, str | None] = ("manifest", None)

    def at(self, step: str, kind: str | None = None) -> None:
        self.current = (step, kind)

    def inject(self, step: str, kind: str | None) -> None:
        """Raise the failure ``fail_at`` asked for when the run reaches that step (and kind), shaped as the suite
        prints a failure of that step."""
        if self.injected and self.injected[0] == step and (self.injected[1] in (None, kind)):
            what = {"blob": "write blob", "record": "write version record", "swap": "swap manifest"}.get(step)
            if what is None:  # validate: the validator's own line for a blob that is not what its version says
                raise PublishError("validation_failed", f"{kind or 'popularity'} version hash mismatch",
                                   detail="computed=injected payload=injected", step=step)
            raise PublishError(_INJECTED_KIND[step], what, step=step,
                               detail=f"input/output error (injected by recsys-stack at {step}"
                                      f"{':' + kind if kind else ''})")

    def step(self, step: str, kind: str | None, status: str, detail: str = "", **extra: Any) -> None:
        self.steps.append({"step": step, "kind": kind, "status": status, "detail": detail, **extra})

    def say(self, stage: str, what: str, **fields: Any) -> None:
        """One stage line as the suite's logger prints it."""
        stamp = datetime.now(UTC).strftime("%Y/%m/%d %H:%M:%S")
        text = " ".join(f"{k}={v}" for k, v in fields.items())
        self.lines.append(f"{stamp} INFO {stage}: {what}" + (f" {text}" if text else ""))

    def now(self) -> datetime:
        return self.started if self.fixed else datetime.now(UTC)

    def finish(self, *, error: PublishError | None, versions: dict, manifest: dict) -> dict:
        self.log = {
            "run_id": self.run_id,
            "tenant": self.tenant,
            "surface": self.surface,
            "day": self.day.isoformat(),
            "started_at": rfc3339_nano(self.started),
            "ended_at": rfc3339_nano(self.now()),
            "status": "failed" if error else "ok",
            "error": str(error) if error else None,
            "exit_code": error.exit_code if error else 0,
            "steps": self.steps,
            "versions": versions,
            "manifest": manifest,
        }
        folder = runs_dir(self.root, self.tenant, self.surface)
        text = "\n".join(self.lines + ([str(error)] if error else [])) + "\n"
        write_file_atomic(folder / f"{self.run_id}.log", text.encode("utf-8"))
        path = folder / f"{self.run_id}.json"
        write_file_atomic(path, (json.dumps(self.log, indent=2) + "\n").encode("utf-8"))
        self.log["path"] = str(path)
        self.log["log_path"] = str(folder / f"{self.run_id}.log")
        self.log["output"] = text
        return self.log


def publish(
    store: ObjectStore,
    root: Path,
    *,
    tenant: str,
    surface: str,
    day: date,
    now: datetime | None = None,
    fail_at: str | None = None,
    kinds: Sequence[str] = KINDS,
    override: Mapping[str, list] | None = None,
    max_distinct_items_per_run: int = DEFAULT_MAX_ITEMS,
    max_events_per_run: int = DEFAULT_MAX_EVENTS,
    volume: int | None = None,
    rebuild_events: bool = False,
    max_users_per_run: int | None = None,
    max_days_backfill: int | None = None,  # a backfill's limit: a one-day publish is within any
) -> dict:
    """Build and publish ``tenant``/``surface``'s artifacts for UTC ``day`` and return the run log.

    ``fail_at`` injects a failure at ``blob``, ``validate``, ``record`` (optionally ``:<kind>``; the first kind
    otherwise) or ``swap``. ``override`` replaces the built payload of a kind (``{"popularity": []}`` publishes a
    valid but empty artifact). More than ``max_events_per_run`` events or ``max_distinct_items_per_run`` distinct
    items fail as the suite's do. Raises :class:`PublishError` (with ``run_log`` set once the run log is written).
    """
    root = Path(root)
    kinds = tuple(kinds)
    _check_arguments(tenant, surface, day, kinds, override)  # before any path is built
    injected = _parse_fail_at(fail_at, kinds)
    started, built_ns = _start_time(now)
    run = _Run(root, tenant, surface, day, started, fixed=now is not None, injected=injected)
    versions: dict[str, str] = {}
    manifest_info: dict[str, Any] = {"key": manifest_key(tenant, surface), "before": None, "after": None}
    try:
        config = job_config(root)  # the suite reads its setup first: a bad one stops the run before any day
    except PublishError as exc:
        exc.run_log = run.finish(error=exc, versions=versions, manifest=manifest_info)
        raise

    window_start, window_end = (rfc3339(t) for t in day_window(day))
    try:
        run.at("manifest")
        before, etag = _read_manifest(store, tenant, surface)
        manifest_info["before"] = etag
        run.step("manifest", None, "ok", f"etag {etag}" if etag else "no manifest yet")

        run.at("events")
        run.say("ingest", "start", tenant=tenant, surface=surface, start=window_start, end=window_end)
        events, source_hash = _load_events(root, tenant, surface, day, volume, max_events_per_run, run,
                                           rebuild_events)
        run.step("events", None, "ok", f"{len(events)} events", count=len(events))
        _connect_signal_store(config)
        run.say("validate", "start", tenant=tenant, surface=surface, start=window_start, end=window_end)
        _validate_events(events, max_distinct_items_per_run)
        _implicit_users(events, max_users_per_run)

        uris: dict[str, str] = {}
        for kind in kinds:
            run.at("build", kind)
            overridden = bool(override and kind in override)
            payload = list(override[kind]) if overridden else _payload(kind, events)
            versions[kind], uris[kind] = _publish_kind(
                store, run, kind, payload, source_hash=source_hash, built_ns=built_ns, overridden=overridden
            )

        # The manifest is swapped last: until here a failure leaves serving on the previous versions.
        run.at("swap")
        run.say("publish", "start", tenant=tenant, surface=surface)
        run.inject("swap", None)
        manifest_info["after"] = _swap(store, tenant, surface, before, etag, uris, run)

        run.at("checkpoint")
        write_checkpoint(root, tenant, surface, day)
        run.step("checkpoint", None, "ok", day.isoformat())
        run.say("publish", "done", tenant=tenant, surface=surface)
    except PublishError as exc:
        error = exc
    except StoreError as exc:
        error = PublishError("dependency", f"{run.current[0]} object store", detail=str(exc), step=run.current[0])
    except OSError as exc:  # printed as Go prints an OS error: `<op> <path>: <reason>`
        reason = (exc.strerror or str(exc)).lower()
        error = PublishError("io", f"open {exc.filename}: {reason}" if exc.filename else reason, step=run.current[0])
    except ValueError as exc:
        error = PublishError("dependency", "read canonical events", detail=str(exc), step=run.current[0])
    else:
        return run.finish(error=None, versions=versions, manifest=manifest_info)

    run.step(error.step or run.current[0], run.current[1], "failed", str(error))
    error.run_log = run.finish(error=error, versions=versions, manifest=manifest_info)
    raise error


def _start_time(now: datetime | None) -> tuple[datetime, int | None]:
    """When the run started, and (without a fixed ``now``) the same instant in nanoseconds for the records."""
    if now is not None and now.tzinfo is None:
        raise PublishError("invalid_argument", f"now {now!r} is naive: pass an aware UTC datetime", exit_code=2)
    if now is None:
        built_ns = time.time_ns()
        return datetime.fromtimestamp(built_ns / 1e9, UTC), built_ns
    return now.astimezone(UTC), None


def _publish_kind(
    store: ObjectStore,
    run: _Run,
    kind: str,
    payload: list,
    *,
    source_hash: str,
    built_ns: int | None,
    overridden: bool,
) -> tuple[str, str]:
    """Steps (1) to (3) for one kind: build, write and validate the blob, write its version record.

    Returns the version and the blob's URI.
    """
    tenant, surface = run.tenant, run.surface
    start, end = day_window(run.day)
    artifact = build_artifact(kind, tenant, surface, start, end, payload, built_at=run.started, source_hash=source_hash)
    version = artifact["build"]["version"]
    key = blob_key(tenant, surface, kind, version)
    uri = store.uri(key)
    run.step(
        "build",
        kind,
        "ok",
        f"{len(payload)} {'items' if kind == 'popularity' else 'rows'}",
        version=version,
        overridden=overridden,
    )

    run.at("blob", kind)
    run.inject("blob", kind)
    _check_writable(store, key)
    try:
        store.put(key, artifact_bytes(artifact), if_none_match=True)
        run.step("blob", kind, "ok", uri, uri=uri)
    except PreconditionFailed:
        # Blobs are content-addressed and immutable: the same version is already stored.
        run.step("blob", kind, "noop", f"{uri} already stored", uri=uri)

    run.at("validate", kind)
    run.inject("validate", kind)
    try:
        check_artifact(
            store.get(key),
            kind=kind,
            tenant=tenant,
            surface=surface,
            window_start=start,
            window_end=end,
            version=version,
        )
    except ArtifactInvalid as exc:
        raise _validator_error(kind, str(exc), len(payload)) from None
    run.step("validate", kind, "ok", "type, tenant/surface, window, limits and version hash check out")

    run.at("record", kind)
    run.inject("record", kind)
    record = record_dict(
        tenant,
        surface,
        kind,
        version,
        uri,
        start,
        end,
        built_ns if built_ns is not None else run.started,
        segment=RECORD_SEGMENT,
    )
    _put_record(store, run, kind, version, record)
    return version, uri


def _put_record(store: ObjectStore, run: _Run, kind: str, version: str, record: dict) -> None:
    """Write a version record once: an existing record is never rewritten (a no-op step)."""
    rkey = record_key(run.tenant, run.surface, kind, version)
    if store.exists(rkey):
        run.step("record", kind, "noop", f"record {version} exists (never rewritten)", uri=store.uri(rkey))
        return
    try:
        store.put(rkey, record_bytes(record), if_none_match=True)
        run.step("record", kind, "ok", store.uri(rkey), uri=store.uri(rkey))
    except PreconditionFailed:
        run.step("record", kind, "noop", f"record {version} exists (never rewritten)", uri=store.uri(rkey))


def _validator_error(kind: str, problem: str, entries: int) -> PublishError:
    """The suite validator's line for a blob that fails it: limits with their numbers, else the check that failed."""
    if "above the limit" in problem:
        what, counted = ("popularity items", "items") if kind == "popularity" else ("cooc rows", "rows")
        limit = problem.rsplit(" ", 1)[-1]
        return PublishError("validation_failed", f"{what} exceeds max", detail=f"{counted}={entries} max={limit}",
                            step="validate")
    if "artifact_type" in problem:
        return PublishError("validation_failed", f"{kind} artifact_type mismatch", detail=problem, step="validate")
    if "version" in problem or "hashes" in problem:
        return PublishError("validation_failed", f"{kind} version hash mismatch", detail=problem, step="validate")
    return PublishError("validation_failed", f"{kind} artifact invalid", detail=problem, step="validate")


def _read_manifest(store: ObjectStore, tenant: str, surface: str) -> tuple[dict | None, str | None]:
    key = manifest_key(tenant, surface)
    try:
        data, etag = store.get_with_etag(key)
    except NotFound:
        return None, None
    try:
        manifest = parse_manifest(data)
    except ValueError as exc:
        raise PublishError("dependency", "read manifest", detail=f"{store.uri(key)}: {exc}", step="manifest") from None
    if manifest["tenant"] != tenant or manifest["surface"] != surface:
        raise PublishError("dependency", "read manifest", step="manifest",
                           detail=f"{store.uri(key)} is for {manifest['tenant']}/{manifest['surface']}")
    return manifest, etag


def _load_events(
    root: Path, tenant: str, surface: str, day: date, volume: int | None, max_events_per_run: int, run: _Run,
    rebuild: bool = False,
) -> tuple[list[dict], str]:
    """Ingest: the day's raw events, refused as the suite's ingest refuses them (count, then each event)."""
    path = ensure_events(root, tenant, surface, day, volume, rebuild=rebuild)
    data = path.read_bytes()
    events = read_events(path)
    if max_events_per_run is not None and len(events) > max_events_per_run:
        # The ingest stops counting at the first event over the limit: the day may hold many more.
        raise PublishError("limit_exceeded", f"event limit exceeded: {max_events_per_run + 1} > {max_events_per_run}",
                           step="events", bare=True)
    prefix = day.isoformat()
    for event in events:
        for name in ("tenant", "surface", "item_id", "ts"):
            if not event.get(name):
                raise PublishError("bad_event", f"invalid exposure event: {name} must be set", step="events")
        if event["tenant"] != tenant or event["surface"] != surface or not str(event["ts"]).startswith(prefix):
            # An event of another tenant, surface or day: the suite's ingest reads per tenant/surface/day files, so
            # such an event means the input itself is wrong.
            raise PublishError("bad_event", f"invalid exposure event: event for {event['tenant']}/{event['surface']} "
                               f"at {event['ts']} in the {tenant}/{surface} file of {day}", step="events")
    run.say("ingest", "done", events=len(events))
    return events, hashlib.sha256(data).hexdigest()


def _validate_events(events: list[dict], max_distinct_items_per_run: int) -> None:
    """The validator's volume checks before compute, with the suite's line and its numbers on the next line."""
    distinct = len({event["item_id"] for event in events})
    if max_distinct_items_per_run is not None and distinct > max_distinct_items_per_run:
        raise PublishError("validation_failed", "distinct item count exceeds max",
                           detail=f"items={distinct} max={max_distinct_items_per_run}", step="validate")


def _connect_signal_store(config: Mapping[str, Any]) -> None:
    """The signal database, when the job names one: connected as the suite's pgx does, refused as it prints it."""
    dsn = (config.get("signal_store") or {}).get("dsn")
    if not dsn:
        return
    url = urlsplit(dsn)
    host, port = url.hostname or "127.0.0.1", url.port or 5432
    try:
        socket.create_connection((host, port), timeout=2.0).close()
    except OSError as exc:
        reason = "connect: connection refused" if isinstance(exc, ConnectionRefusedError) else str(exc).lower()
        raise PublishError("refused", f"failed to connect to `user={url.username or ''} database="
                           f"{url.path.lstrip('/')}`: {host}:{port} ({host}): dial error: dial tcp {host}:{port}: "
                           f"{reason}", step="events") from None


def _implicit_users(events: list[dict], max_users_per_run: int | None) -> None:
    """The implicit stage counts distinct users and stops at its limit (`3 >= 3` of a day of six users)."""
    if not max_users_per_run:
        return
    seen: set[str] = set()
    for event in events:
        seen.add(str(event.get("user_id")))
        if len(seen) >= max_users_per_run:
            raise PublishError("limit_exceeded", f"distinct user limit exceeded: {len(seen)} >= {max_users_per_run}",
                               step="build")


def _check_writable(store: ObjectStore, key: str) -> None:
    """A file store folder without write permission refuses the blob's temporary file as the OS does for the
    pipeline's (unprivileged) user; the mode bits are read, so a stack run as root refuses it too."""
    folder = getattr(store, "root", None)
    if folder is None:
        return
    target = Path(folder).joinpath(*key.split("/"))
    for parent in [*reversed(target.parents)]:
        if parent.is_dir() and str(parent).startswith(str(folder)) and not parent.stat().st_mode & 0o200:
            tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
            raise PermissionError(errno.EACCES, "permission denied", str(tmp))


def _swap(
    store: ObjectStore,
    tenant: str,
    surface: str,
    before: dict | None,
    etag: str | None,
    uris: dict[str, str],
    run: _Run,
) -> str | None:
    key = manifest_key(tenant, surface)
    merged = dict(before["current"]) if before else {}
    merged.update(uris)  # a publish overwrites only the kinds it produced
    # Written even when the pointers are unchanged (a re-run of the same day): as in the suite, updated_at is the
    # wall-clock time of the last publish, which is what freshness checks read.
    data = manifest_bytes(manifest_dict(tenant, surface, merged, rfc3339(run.now())))
    try:
        if etag is None:
            new_etag = store.put(key, data, if_none_match=True)
        else:
            new_etag = store.put(key, data, if_match=etag)
    except PreconditionFailed:
        raise PublishError("dependency", "swap manifest", step="swap",
                           detail=f"{store.uri(key)} changed during the publish (read {etag or 'no manifest'}); "
                                  "nothing was swapped: re-run the publish") from None
    run.step("swap", None, "ok", f"{store.uri(key)} -> {new_etag}", etag=new_etag)
    return new_etag


def last_ended_day(today: date | None = None) -> date:
    """The newest UTC day whose window has ended: yesterday. The suite's daily job runs early in the morning for the
    previous day (§1.4), so no scheduled publish covers a window that ends in the future."""
    return (today or datetime.now(UTC).date()) - timedelta(days=1)


def next_day(store: ObjectStore, tenant: str, surface: str, *, today: date | None = None) -> date:
    """The day to publish next: the day the current popularity window ends on, else yesterday (UTC); never a day
    that has not ended (a surface that is up to date re-runs yesterday)."""
    return min(_day_after_current(store, tenant, surface, today), last_ended_day(today))


def _day_after_current(store: ObjectStore, tenant: str, surface: str, today: date | None) -> date:
    try:
        safe_segment(tenant, "tenant")
        safe_segment(surface, "surface")
    except UnsafeSegment as exc:
        raise PublishError("invalid_argument", str(exc), exit_code=2) from None
    fallback = last_ended_day(today)
    try:
        manifest, _ = _read_manifest(store, tenant, surface)
        uri = (manifest or {}).get("current", {}).get("popularity")
        if not uri:
            return fallback
        version = uri.rsplit("/", 1)[-1].removesuffix(".json")
        try:
            record = json.loads(store.get(record_key(tenant, surface, "popularity", version)))
            end = record["Window"]["End"]
        except (NotFound, ValueError, KeyError, TypeError):
            end = json.loads(store.get(store.key_for_uri(uri)))["window"]["end"]
        return parse_time(end).date()
    except StoreError as exc:
        if isinstance(exc, NotFound):
            return fallback
        raise PublishError("dependency", f"object store: {exc}") from None
    except (ValueError, KeyError, TypeError):
        return fallback


def scheduled_day(store: ObjectStore, root: Path, tenant: str, surface: str, *, today: date | None = None) -> date:
    """The day a scheduler runs next: after the last successful day (the checkpoint) and after the current window.

    After a rollback the manifest's window is older than the checkpoint; the pipeline still continues from its
    checkpoint, so it never re-publishes a day it already published, unless that day is yesterday: a deployment that
    is up to date has no ended day left, and a run now re-runs yesterday, never the day in progress.
    """
    day = next_day(store, tenant, surface, today=today)
    done = read_checkpoint(root, tenant, surface)
    after = max(day, done + timedelta(days=1)) if done is not None else day
    return min(after, last_ended_day(today))


def backfill(store: ObjectStore, root: Path, *, tenant: str, surface: str, start: date, end: date,
             now: datetime | None = None, **limits: Any) -> list[dict]:
    """Publish ``start`` .. ``end`` day by day as the suite's backfill does: the first ``max_days_backfill`` days are
    published and checkpointed, **then** the run fails (``backfill exceeds max days: N > M``), in one log."""
    days = (end - start).days + 1
    limit = int(limits.pop("max_days_backfill", None) or 365)
    logs, lines = [], []
    for i in range(min(days, limit)):
        log = publish(store, root, tenant=tenant, surface=surface, day=start + timedelta(days=i), now=now, **limits)
        logs.append(log)
        lines += [line for line in log["output"].splitlines() if line]
    if days <= limit:
        return logs
    error = PublishError("invalid_argument", f"backfill exceeds max days: {days} > {limit}", bare=True)
    run = _Run(Path(root), tenant, surface, start + timedelta(days=limit), _start_time(now)[0], fixed=now is not None)
    run.lines = lines
    error.run_log = run.finish(error=error, versions={}, manifest={"key": manifest_key(tenant, surface)})
    raise error
