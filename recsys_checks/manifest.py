"""The manifest v1 — the pointer that is shipped and rolled back: model, status, history and rollback.

A manifest names, per artifact kind, the blob the service serves for one (tenant, surface). Rollback moves that
pointer only (records and blobs are append-only), after validating the target, with compare-and-swap on the
manifest's ETag, and leaves one audit object per applied change under ``<registry>/audit/<tenant>/<surface>/``.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from . import audit, guard, jsonio
from .artifact import KINDS, validate_artifact, version_from_uri
from .config import Target, safe_segment
from .errors import BadInput, ChecksError, Conflict, InvalidObject, NotFound
from .invariants import WINDOW_AHEAD, age_finding, future_finding, item_drop_finding, time_findings
from .results import ActionResult, CheckResult, Plan
from .store import TargetStores, etag_of
from .timefmt import age_text, format_z, parse_seconds_z, parse_time
from .version_records import VersionRecord, load_version_records, read_each, version_history

__all__ = [
    "DEFAULT_MAX_AGE",
    "Manifest",
    "VersionRecord",
    "apply_rollback",
    "check_manifest",
    "check_manifest_history",
    "manifest_bytes",
    "parse_manifest",
    "plan_rollback",
    "read_audit",
    "read_current",
    "validate_artifact",
    "version_history",
]

# A daily pipeline runs at 01:00-02:00 UTC for the previous day: 24 h between publishes plus 2 h of slack.
DEFAULT_MAX_AGE = timedelta(hours=26)
_FIELDS = ("v", "tenant", "surface", "current", "updated_at")
_FIELD_SET = frozenset(_FIELDS)
# A daily window [D, D+1) is published after D+1 00:00: its end trails the publish by the pipeline's lag.
WINDOW_LAG = timedelta(hours=6)
# How many earlier versions the item-count comparison tries before giving up on finding a valid one.
_DROP_LOOKBACK = 3


@dataclass(frozen=True)
class Manifest:
    """Manifest v1: exactly these five fields."""

    v: int
    tenant: str
    surface: str
    current: dict[str, str] = field(default_factory=dict)
    updated_at: str = ""

    @functools.cached_property
    def updated_at_dt(self) -> datetime:
        return parse_seconds_z(self.updated_at, "updated_at")

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": self.v,
            "tenant": self.tenant,
            "surface": self.surface,
            "current": {k: self.current[k] for k in sorted(self.current)},
            "updated_at": self.updated_at,
        }


def parse_manifest(data: bytes | str) -> Manifest:
    """Parse a manifest strictly as v1; :class:`BadInput` names the field that is wrong."""
    doc = jsonio.load_object(data, "manifest")
    if doc.keys() != _FIELD_SET:
        extra = sorted(set(doc) - _FIELD_SET)
        if extra:
            raise BadInput(f"manifest has unknown field {extra[0]!r} (v1 allows only {', '.join(_FIELDS)})")
        for name in _FIELDS:
            if name not in doc:
                raise BadInput(f"manifest is missing field {name!r}")
    v = doc["v"]
    if type(v) is not int or v != 1:
        raise BadInput(f"manifest field 'v' is {v!r}; only manifest v1 (the integer 1) is supported")
    for name in ("tenant", "surface"):
        if not isinstance(doc[name], str):
            raise BadInput(f"manifest field {name!r} must be a string")
        try:
            safe_segment(doc[name], name)
        except BadInput as exc:
            raise BadInput(f"manifest field {name!r}: {exc}") from None
    current = doc["current"]
    if not isinstance(current, dict):
        raise BadInput("manifest field 'current' must be an object of kind -> blob URI")
    for kind, uri in current.items():
        if kind not in KINDS:
            raise BadInput(f"manifest field 'current' has unknown kind {kind!r} (known: {', '.join(KINDS)})")
        if not isinstance(uri, str) or not uri.startswith(("file://", "s3://")):
            raise BadInput(f"manifest field 'current.{kind}' must be a file:// or s3:// URI, got {uri!r}")
    updated = parse_seconds_z(doc["updated_at"], "manifest field 'updated_at'")
    m = Manifest(1, doc["tenant"], doc["surface"], dict(current), doc["updated_at"])
    m.__dict__["updated_at_dt"] = updated  # parsed once: the cached property's value
    return m


def manifest_bytes(manifest: Manifest) -> bytes:
    """The manifest exactly as the suite writes it: Go's MarshalIndent with two spaces, no trailing newline."""
    text = json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False)
    # Go's encoder escapes these in strings; JSON syntax never contains them, so replacing globally is safe.
    for raw, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                     ("\u2029", "\\u2029")):
        text = text.replace(raw, esc)
    return text.encode("utf-8")


def _stores(target: Target, stores: TargetStores | None) -> tuple[TargetStores, bool]:
    return (stores, False) if stores is not None else (TargetStores(target), True)


def read_current(target: Target, tenant: str, surface: str, *, stores: TargetStores | None = None) -> tuple[Manifest, str]:
    """Fetch and parse the current manifest; return it with its ETag.

    Raises :class:`NotFound` when there is none and :class:`BadInput` when it is not a valid v1 manifest of this
    tenant and surface.
    """
    uri = target.manifest_uri(tenant, surface)
    st, own = _stores(target, stores)
    try:
        try:
            data, etag = st.get(uri)
        except InvalidObject as exc:
            raise BadInput(f"manifest for {tenant}/{surface} is invalid: {exc}; roll back with "
                           f"`recsys-checks manifest rollback --tenant {tenant} --surface {surface} --previous`") from None
        except NotFound:
            raise NotFound(
                f"no manifest for {tenant}/{surface} at {uri}: check RECSYS_ARTIFACT_MANIFEST_TEMPLATE, or list "
                f"versions with `recsys-checks manifest history --tenant {tenant} --surface {surface}`"
            ) from None
    finally:
        if own:
            st.close()
    return _parse_for(data, tenant, surface, uri), etag


def _parse_for(data: bytes, tenant: str, surface: str, uri: str) -> Manifest:
    try:
        m = parse_manifest(data)
    except BadInput as exc:
        raise BadInput(
            f"manifest for {tenant}/{surface} at {uri} is invalid: {exc}; roll back with "
            f"`recsys-checks manifest rollback --tenant {tenant} --surface {surface} --previous`"
        ) from None
    if (m.tenant, m.surface) != (tenant, surface):
        raise BadInput(
            f"manifest at {uri} is for {m.tenant}/{m.surface}, not {tenant}/{surface}: the service rejects it "
            "(422); roll back or republish this surface"
        )
    return m


# --------------------------------------------------------------------------------------------------- status


def check_manifest(
    target: Target,
    tenant: str,
    surface: str,
    max_age: timedelta = DEFAULT_MAX_AGE,
    now: datetime | None = None,
    *,
    validate_blobs: bool = True,
    stores: TargetStores | None = None,
) -> CheckResult:
    """Is the surface's manifest present, valid, fresh, and does every blob it names validate?

    ``data["condition"]`` is ``healthy``, ``stale``, ``shrunk`` (a kind lost more than half the items of the version
    before it), ``missing`` or ``invalid`` (the worst seen); ``state`` is the manifest's ETag.
    """
    safe_segment(tenant, "tenant")
    safe_segment(surface, "surface")
    now = now or datetime.now(UTC)
    uri = target.manifest_uri(tenant, surface)
    data: dict[str, Any] = {
        "tenant": tenant,
        "surface": surface,
        "manifest_uri": uri,
        "max_age_seconds": int(max_age.total_seconds()),
        "problems": [],
        "artifacts": [],
    }
    st, own = _stores(target, stores)
    try:
        read = _read_for_status(st, tenant, surface, uri, data)
        if isinstance(read, CheckResult):
            return read
        m, etag = read
        data["manifest"] = m.to_dict()
        data["updated_at"] = m.updated_at
        age = now - m.updated_at_dt
        data["age_seconds"] = int(age.total_seconds())
        notes: list[str] = []
        pointer = time_findings("manifest updated_at", m.updated_at_dt, now, max_age)
        broken = _check_artifacts(target, st, m, tenant, surface, validate_blobs, data)
        # Fresh is about the data, not only the pointer: a fresh updated_at can name old versions.
        window: list[str] = []
        for row in data["artifacts"]:
            what, end = f"{row['kind']} data window end", parse_time(row.get("window_end"))
            window += filter(None, [age_finding(what, end, now, max_age + WINDOW_LAG)])
            # A window that has not begun is noted, not failed: the local stack's publisher still runs ahead of
            # the calendar when a drill publishes several days in one session.
            notes += filter(None, [future_finding(what, end, now, WINDOW_AHEAD)])
        drops = _drop_findings(target, st, tenant, surface, data, notes) if validate_blobs and not broken else []
        data["problems"].extend(drops + pointer + window)
        stale = bool(pointer or window)
        skewed = future_finding("manifest updated_at", m.updated_at_dt, now) is not None
        data["stale"] = "future" if skewed else "pointer" if pointer else "data" if window else None
        data["notes"] = notes
    finally:
        if own:
            st.close()
    data["condition"] = "invalid" if broken else "shrunk" if drops else "stale" if stale else "healthy"
    kinds = ", ".join(f"{r['kind']} {str(r['version'] or '?')[:12]}" for r in data["artifacts"]) or "nothing"
    hold = _hold(target, tenant, surface, stores)
    data["hold"] = hold
    if hold and hold["held"] and not broken:
        # Held on purpose: publishing is stopped, so an old manifest is expected, not a pipeline failure.
        data["condition"] = "held"
        age_note = f"; manifest updated {age_text(age)} ago" + (" (stale, as expected while held)" if stale else "")
        return CheckResult("manifest.status", "warn", f"{tenant}/{surface} is held: {hold['summary']}{age_note}, "
                           f"serving {kinds}", data, etag, uri)
    if data["problems"]:
        more = f" (+{len(data['problems']) - 1} more)" if len(data["problems"]) > 1 else ""
        summary = f"{tenant}/{surface} is {data['condition']}: {data['problems'][0]}{more}"
        return CheckResult("manifest.status", "fail", summary, data, etag, uri)
    summary = f"{tenant}/{surface} is healthy: updated {age_text(age)} ago at {m.updated_at}, serving {kinds}"
    return CheckResult("manifest.status", "warn" if notes else "ok", summary, data, etag, uri)


def _read_for_status(st: TargetStores, tenant: str, surface: str, uri: str,
                     data: dict[str, Any]) -> tuple[Manifest, str] | CheckResult:
    """The manifest and its ETag, or the failed status of a missing or invalid one."""
    try:
        raw, etag = st.get(uri)
    except InvalidObject as exc:
        data["etag"] = exc.etag
        data["condition"] = "invalid"
        problem = (f"manifest for {tenant}/{surface} is invalid: {exc}; roll back with `recsys-checks manifest "
                   f"rollback --tenant {tenant} --surface {surface} --previous`")
        data["problems"].append(problem)
        return CheckResult("manifest.status", "fail", problem, data, exc.etag, uri)
    except NotFound:
        data["condition"] = "missing"
        data["problems"].append(f"no manifest at {uri}")
        return CheckResult(
            "manifest.status", "fail",
            f"no manifest for {tenant}/{surface} at {uri}: the service serves empty recommendations; publish "
            "or roll back this surface", data, None, uri,
        )
    data["etag"] = etag
    try:
        return _parse_for(raw, tenant, surface, uri), etag
    except BadInput as exc:
        data["condition"] = "invalid"
        data["problems"].append(str(exc))
        return CheckResult("manifest.status", "fail", str(exc), data, etag, uri)


def _check_artifacts(target: Target, st: TargetStores, m: Manifest, tenant: str, surface: str, validate_blobs: bool,
                     data: dict[str, Any]) -> bool:
    """One row per artifact the manifest names into ``data["artifacts"]``; whether one is missing or broken."""
    broken = False
    if "popularity" not in m.current:
        broken = True
        data["problems"].append("manifest has no popularity artifact: the service serves empty recommendations")
    for kind in sorted(m.current):
        if validate_blobs:
            res = validate_artifact(target, m.current[kind], tenant=tenant, surface=surface, kind=kind, stores=st)
            row = {"kind": kind, "uri": m.current[kind], "version": version_from_uri(m.current[kind]),
                   "status": res.status, "summary": res.summary, "items": res.data.get("items"),
                   "window_start": res.data.get("window_start"), "window_end": res.data.get("window_end")}
            if res.status == "fail":
                broken = True
                data["problems"].append(res.summary)
        else:
            row = {"kind": kind, "uri": m.current[kind], "version": version_from_uri(m.current[kind]),
                   "status": "unchecked", "summary": "", "items": None, "window_start": None, "window_end": None}
        data["artifacts"].append(row)
    return broken


def _drop_findings(target: Target, st: TargetStores, tenant: str, surface: str, data: dict[str, Any],
                   notes: list[str]) -> list[str]:
    """Each artifact that lost more than half the items of the version recorded before it (its row marked ``fail``,
    ``previous_items`` set); previous versions that cannot be read are a note, not a finding."""
    rows = [r for r in data["artifacts"] if isinstance(r.get("items"), int)]
    if not rows:
        return []
    try:
        records, _ = load_version_records(target, tenant, surface, stores=st)
    except ChecksError as exc:
        notes.append(f"the version records could not be read to compare item counts: {exc}")
        return []
    findings = []
    for row in rows:
        mine = [r for r in records if r.kind == row["kind"]]  # newest first
        current = next((r for r in mine if r.uri == row["uri"]), None)
        before = [r for r in mine if current is not None and r.sort_key < current.sort_key]
        # Compared with the version a rollback would choose: the newest valid one before it (a few tried).
        previous, res = None, None
        for candidate in before[:_DROP_LOOKBACK]:
            try:
                res = validate_artifact(target, candidate.uri, tenant=tenant, surface=surface, kind=row["kind"],
                                        version=candidate.version, stores=st)
            except ChecksError as exc:
                notes.append(f"the previous {row['kind']} version {candidate.version[:12]} could not be read: {exc}")
                break
            if res.status != "fail":
                previous = candidate
                break
        if previous is None or res is None:
            continue
        row["previous_version"], row["previous_items"] = previous.version, res.data.get("items")
        finding = item_drop_finding(row["kind"], row["items"], res.data.get("items"), previous.version)
        if finding:
            row["status"], row["summary"] = "fail", finding
            findings.append(finding)
    return findings


def _hold(target: Target, tenant: str, surface: str, stores: TargetStores | None) -> dict[str, Any] | None:
    """The surface's hold, or None when its location cannot be derived from the manifest template."""
    from .hold import check_hold

    try:
        res = check_hold(target, tenant, surface, stores=stores)
    except BadInput:
        return None
    return {"held": res.data["held"], "marker_uri": res.target, "summary": res.data["description"]}


# -------------------------------------------------------------------------------------------------- history


class CurrentManifest(NamedTuple):
    """The current manifest as found, whatever its condition: ``state`` is ``valid``, ``invalid`` or ``missing``;
    ``manifest`` is set when valid, ``raw`` when its bytes could be read, ``problem`` says what is wrong."""

    state: str
    manifest: Manifest | None
    etag: str | None
    raw: bytes | None
    problem: str | None


def _try_current(st: TargetStores, target: Target, tenant: str, surface: str) -> CurrentManifest:
    """The current manifest, or what is wrong with it (never raises for a missing or invalid one)."""
    uri = target.manifest_uri(tenant, surface)
    try:
        raw, etag = st.get(uri)
    except NotFound:
        return CurrentManifest("missing", None, None, None, f"no manifest at {uri}")
    except InvalidObject as exc:
        return CurrentManifest("invalid", None, exc.etag, None, str(exc))
    try:
        return CurrentManifest("valid", _parse_for(raw, tenant, surface, uri), etag, raw, None)
    except BadInput as exc:
        return CurrentManifest("invalid", None, etag, raw, str(exc))


class _Validator:
    """Validates each record's blob once per call (blobs are immutable)."""

    def __init__(self, target: Target, st: TargetStores, allow_empty: bool = False) -> None:
        self.target, self.st, self.allow_empty = target, st, allow_empty
        self._seen: dict[tuple[str, str], CheckResult] = {}

    def __call__(self, rec: VersionRecord) -> CheckResult:
        key = (rec.kind, rec.uri)
        if key not in self._seen:
            self._seen[key] = self._validate(rec)
        return self._seen[key]

    def _validate(self, rec: VersionRecord) -> CheckResult:
        return validate_artifact(
            self.target, rec.uri, tenant=rec.tenant, surface=rec.surface, kind=rec.kind, version=rec.version,
            window=(rec.window_start, rec.window_end), allow_empty=self.allow_empty, stores=self.st,
        )

    def prefetch(self, version_records: list[VersionRecord], workers: int = 8) -> None:
        """Validate many version records' blobs concurrently (a registry can hold thousands of versions)."""
        todo = list({(r.kind, r.uri): r for r in version_records if (r.kind, r.uri) not in self._seen}.values())
        if len(todo) < 2:
            return
        local = all(r.uri.startswith("file://") for r in todo)  # read in order unless the mount is slow
        for rec, res in zip(todo, read_each(self._validate, todo, local=local, workers=workers), strict=True):
            self._seen[(rec.kind, rec.uri)] = res


def check_manifest_history(
    target: Target,
    tenant: str,
    surface: str,
    kind: str | None = None,
    *,
    validate: bool = True,
    stores: TargetStores | None = None,
) -> CheckResult:
    """Published versions newest first, each marked ``current`` and whether it is a valid rollback target.

    Fails when there are no records at all; warns when a kind currently served has no valid version to roll back
    to, or when some records cannot be read.
    """
    safe_segment(tenant, "tenant")
    safe_segment(surface, "surface")
    st, own = _stores(target, stores)
    try:
        found = _try_current(st, target, tenant, surface)
        state, m, etag, problem = found.state, found.manifest, found.etag, found.problem
        version_records, problems = load_version_records(target, tenant, surface, kind, stores=st)
        current = m.current if m else {}
        check = _Validator(target, st)
        if validate:
            check.prefetch(version_records)
        rows = []
        for rec in version_records:
            is_current = current.get(rec.kind) == rec.uri
            row = rec.to_dict()
            row["current"] = is_current
            if validate:
                res = check(rec)
                row["valid"] = res.status != "fail"
                row["problems"] = res.data.get("problems", [])
                row["items"] = res.data.get("items")
            else:
                row["valid"] = None
                row["problems"] = []
            row["rollback_target"] = bool(row["valid"]) and not is_current if validate else not is_current
            rows.append(row)
    finally:
        if own:
            st.close()
    data: dict[str, Any] = {
        "tenant": tenant, "surface": surface, "kind": kind, "manifest_state": state, "current": current,
        "records_prefix": target.records_prefix(tenant, surface), "versions": rows, "record_problems": problems,
    }
    if problem:
        data["manifest_problem"] = problem
    warnings: list[str] = []
    for k in sorted(current):
        if kind is not None and k != kind:
            continue
        if not any(r["kind"] == k and r["current"] for r in rows):
            warnings.append(f"current {k} {current[k]} has no version record")
        if validate and not any(r["kind"] == k and r["rollback_target"] for r in rows):
            warnings.append(f"no valid {k} version to roll back to")
    if problems:
        warnings.append(f"{len(problems)} unreadable version record(s)")
    data["warnings"] = warnings
    scope = f"{tenant}/{surface}" + (f" {kind}" if kind else "")
    if not rows:
        return CheckResult("manifest.history", "fail",
                           f"no version records for {scope} under {data['records_prefix']}: nothing to roll back to",
                           data, etag, target.manifest_uri(tenant, surface))
    n_targets = sum(1 for r in rows if r["rollback_target"])
    summary = f"{len(rows)} version(s) of {scope}, {n_targets} valid rollback target(s)"
    if warnings:
        summary += "; " + "; ".join(warnings)
    return CheckResult("manifest.history", "warn" if warnings else "ok", summary, data, etag,
                       target.manifest_uri(tenant, surface))


# ------------------------------------------------------------------------------------------------- rollback


def _history_hint(tenant: str, surface: str) -> str:
    return f"list versions with `recsys-checks manifest history --tenant {tenant} --surface {surface}`"


def plan_rollback(
    target: Target,
    tenant: str,
    surface: str,
    *,
    to: str | None = None,
    previous: bool = False,
    kind: str | None = None,
    reason: str = "",
    allow_empty: bool = False,
    stores: TargetStores | None = None,
    kinds: list[str] | None = None,
) -> Plan:
    """Plan repointing the manifest to a recorded version; changes nothing.

    ``to``: a version (full hash, or a unique prefix of at least 8 hex), in whichever kind(s) it was recorded.
    ``previous``: per kind, the newest valid version older than the current one (when the manifest is missing or
    unreadable: the newest valid version of each kind). ``kind`` restricts either. Every target blob is validated
    before the plan is returned; an unknown or invalid target raises :class:`BadInput`.
    """
    safe_segment(tenant, "tenant")
    safe_segment(surface, "surface")
    if (to is None) == (not previous):
        raise BadInput("say where to roll back to: give either a version (--to VERSION) or --previous, not both")
    if kind is not None and kind not in KINDS:
        raise BadInput(f"unknown artifact kind {kind!r}: use one of {', '.join(KINDS)}")
    if kinds is not None and (not kinds or any(k not in KINDS for k in kinds)):
        raise BadInput(f"artifact kinds {kinds!r}: give one or more of {', '.join(KINDS)}")
    if kind is not None and kinds is not None:
        raise BadInput("give either one kind or a list of kinds, not both")
    manifest_uri = target.manifest_uri(tenant, surface)
    audit.audit_prefix(target, tenant, surface)  # refuse now, not after the swap, if audit records cannot be placed
    st, own = _stores(target, stores)
    try:
        found = _try_current(st, target, tenant, surface)
        current = dict(found.manifest.current) if found.manifest else {}
        version_records, _ = load_version_records(target, tenant, surface, kind, stores=st)
        check = _Validator(target, st, allow_empty=allow_empty)
        if to is not None:
            chosen, notes = _chosen_by_version(to, version_records, check, found, tenant, surface, kind)
        else:
            chosen, notes = _chosen_previous(version_records, check, found, current, tenant, surface, kind, kinds)
    finally:
        if own:
            st.close()
    after = dict(current)
    changes = []
    for k in sorted(chosen):
        rec = chosen[k]
        after[k] = rec.uri
        changes.append({
            "what": f"current.{k}",
            "kind": k,
            "before": current.get(k),
            "after": rec.uri,
            "before_version": version_from_uri(current[k]) if k in current else None,
            "after_version": rec.version,
        })
    m, raw = found.manifest, found.raw
    details: dict[str, Any] = {
        "tenant": tenant,
        "surface": surface,
        "manifest_uri": manifest_uri,
        "mode": "to" if to is not None else "previous",
        "requested": to,
        "kind": kind,
        "kinds": kinds,
        "allow_empty": allow_empty,
        "before": {
            "state": found.state,
            "etag": found.etag,
            "manifest": m.to_dict() if m else None,
            "raw": raw.decode("utf-8", "replace")[:4096] if raw is not None and m is None else None,
            "problem": found.problem,
            "current": current,
        },
        "after_current": {k: after[k] for k in sorted(after)},
        "targets": {k: chosen[k].to_dict() for k in sorted(chosen)},
        "notes": notes,
    }
    return Plan("manifest.rollback", manifest_uri, found.etag, changes, reason, details, deployment=target.deployment)


def _chosen_by_version(to: str, version_records: list[VersionRecord], check: _Validator, found: CurrentManifest,
                       tenant: str, surface: str, kind: str | None) -> tuple[dict[str, VersionRecord], list[str]]:
    """``--to``: the recorded version(s) named, per kind, each validated; raises BadInput for an invalid one."""
    notes: list[str] = []
    chosen = _resolve_to(to, version_records, tenant, surface, kind)
    for rec in chosen.values():
        res = check(rec)
        if res.status == "fail":
            raise BadInput(
                f"refusing to roll back {tenant}/{surface} {rec.kind} to {rec.version}: "
                f"{'; '.join(res.data.get('problems', [])) or res.summary}; pick another version "
                f"({_history_hint(tenant, surface)})"
            )
    if found.manifest is None:
        notes.append(
            f"the current manifest is {found.state}; the new manifest holds only {', '.join(sorted(chosen))}"
        )
    return chosen, notes


def _chosen_previous(version_records: list[VersionRecord], check: _Validator, found: CurrentManifest,
                     current: dict[str, str], tenant: str, surface: str, kind: str | None,
                     only: list[str] | None = None) -> tuple[dict[str, VersionRecord], list[str]]:
    """``--previous``: per kind, the newest valid version older than the current one; raises BadInput for none.
    ``only`` restricts it to the kinds found broken (the others keep their healthy versions)."""
    m = found.manifest
    notes: list[str] = []
    chosen: dict[str, VersionRecord] = {}
    kinds = ([kind] if kind else sorted(only) if only else sorted(current) if m is not None
             else sorted({r.kind for r in version_records}))
    if m is None:
        notes.append(f"the current manifest is {found.state}: restoring the newest valid version of each kind")
    for k in kinds:
        rec, why = _previous_for(k, current.get(k), version_records, check, m is not None)
        if rec is None:
            if kind is not None or only:
                raise BadInput(
                    f"no valid earlier {k} version for {tenant}/{surface} ({why}); "
                    f"{_history_hint(tenant, surface)}"
                )
            notes.append(f"{k} left as is: {why}")
            continue
        chosen[k] = rec
    if not chosen:
        raise BadInput(
            f"nothing to roll back for {tenant}/{surface}: no kind has a valid earlier version; "
            f"{_history_hint(tenant, surface)}"
        )
    return chosen, notes


def _resolve_to(
    to: str, version_records: list[VersionRecord], tenant: str, surface: str, kind: str | None
) -> dict[str, VersionRecord]:
    wanted = to.strip().lower()
    if len(wanted) < 8 or any(c not in "0123456789abcdef" for c in wanted):
        raise BadInput(f"version {to!r} is not a version hash (64 hex, or a unique prefix of at least 8); "
                       f"{_history_hint(tenant, surface)}")
    matches = [r for r in version_records if r.version.startswith(wanted)]
    if len({r.version for r in matches}) > 1:
        shown = ", ".join(sorted({r.version[:16] for r in matches}))
        raise BadInput(f"version prefix {to!r} is ambiguous ({shown}); give more characters")
    if not matches:
        scope = f"{kind} " if kind else ""
        raise BadInput(f"version {to} is not a recorded {scope}version of {tenant}/{surface}; "
                       f"{_history_hint(tenant, surface)}")
    return {r.kind: r for r in matches}


def _previous_for(
    kind: str, current_uri: str | None, version_records: list[VersionRecord], check: _Validator, manifest_ok: bool
) -> tuple[VersionRecord | None, str]:
    mine = [r for r in version_records if r.kind == kind]
    if not mine:
        return None, f"no {kind} version records"
    if manifest_ok and current_uri is not None:
        cur_version = version_from_uri(current_uri)
        idx = next((i for i, r in enumerate(mine) if r.uri == current_uri or r.version == cur_version), None)
        # Unrecorded current (e.g. hand-edited): every recorded version other than it is a candidate.
        candidates = mine[idx + 1:] if idx is not None else [r for r in mine if r.version != cur_version]
    else:
        candidates = mine
    for i, rec in enumerate(candidates):
        if check(rec).status != "fail" and not _shrunk_against_older(rec, candidates[i + 1:], check):
            return rec, ""
    return None, f"no valid {kind} version older than the current one"


def _shrunk_against_older(rec: VersionRecord, older: list[VersionRecord], check: _Validator) -> bool:
    """A rollback target must be healthy by the item-count invariant too: not less than half the items of the
    newest valid version before it (a shrunk build that was rolled back from is never restored)."""
    before = next((r for r in older[:_DROP_LOOKBACK] if check(r).status != "fail"), None)
    if before is None:
        return False
    return item_drop_finding(rec.kind, check(rec).data.get("items"), check(before).data.get("items")) is not None


def apply_rollback(
    target: Target,
    plan: Plan,
    *,
    execute: bool = False,
    actor: str | None = None,
    runbook: str | None = None,
    now: datetime | None = None,
    stores: TargetStores | None = None,
    invalidate_cache: bool = False,
    plan_id: str | None = None,
    confirm: str | None = None,
) -> ActionResult:
    """Apply a rollback plan; a dry-run unless ``execute``.

    With execute: re-read the manifest; already at the plan's target → ``noop``; moved since the plan →
    :class:`Conflict` (nothing changed); else write the new manifest with compare-and-swap on the observed ETag,
    then one audit object (never overwritten), then read it back as verification.

    ``plan_id`` and ``confirm``: see :mod:`recsys_checks.guard` (checked before anything is changed).

    When the target has a service (``base_url``), the result's ``service`` says what the service serves now: it
    keeps its cached artifact until a TTL expires, so a rollback it does not serve yet is reported (``fail``,
    exit 1) with the invalidation that fixes it; ``invalidate_cache`` performs that invalidation (audited) first.
    """
    if plan.action != "manifest.rollback":
        raise BadInput(f"not a manifest rollback plan: {plan.action}")
    d = plan.details
    tenant, surface = safe_segment(d["tenant"], "tenant"), safe_segment(d["surface"], "surface")
    uri = target.manifest_uri(tenant, surface)
    if uri != plan.target:
        raise BadInput(f"the plan was made for {plan.target}, but this target's manifest is {uri}")
    moves = ", ".join(f"{c['kind']} {str(c['before_version'] or c['before'])[:12]} -> {c['after_version'][:12]}"
                      for c in plan.changes)
    if not execute:
        return guard.dry_run(plan, already=f"{tenant}/{surface} already points at the planned versions",
                             would=f"repoint {tenant}/{surface}: {moves}")
    guard.check(target, plan, plan_id=plan_id, confirm=confirm)
    now = now or datetime.now(UTC)
    st, own = _stores(target, stores)
    try:
        try:
            raw, etag = st.get(uri)
        except NotFound:
            raw, etag = None, None
        except InvalidObject as exc:  # damaged (a FIFO, a huge file...): replaced if it is what the plan saw
            raw, etag = None, exc.etag
        # A crash between an earlier swap and its record left an intent: complete it now that the world shows it.
        audit.settle(st, target, tenant, surface, audit.judge_by_state(etag), now=now, only="manifest.")
        if raw is not None and _already_applied(raw, tenant, surface, plan):
            return ActionResult("noop", f"{tenant}/{surface} already points at the planned versions; nothing changed",
                                plan, verification=_verify(target, st, tenant, surface, plan))
        if etag != plan.observed:
            raise Conflict(
                f"manifest for {tenant}/{surface} changed since the plan (planned against {plan.observed}, now "
                f"{etag}); nothing was changed: plan again and review"
            )
        _revalidate_targets(target, st, plan, tenant, surface)
        audit_uri, problem = _swap_audited(target, st, plan, tenant, surface, now=now, actor=actor, runbook=runbook,
                                           moves=moves)
        verification = _verify(target, st, tenant, surface, plan)
    finally:
        if own:
            st.close()
    summary = f"repointed {tenant}/{surface}: {moves}" + (f"; {problem}" if problem else "")
    served = _served_after(target, plan, tenant, surface, actor=actor, runbook=runbook,
                           invalidate_cache=invalidate_cache, verified=verification.status == "ok")
    if served is not None:
        summary += f"; service: {served.summary}"
    return ActionResult("applied", summary, plan, audit_uri, verification, served)


def _revalidate_targets(target: Target, st: TargetStores, plan: Plan, tenant: str, surface: str) -> None:
    """Every blob the plan points at still validates; raises Conflict (nothing changed) when one does not."""
    d = plan.details
    for k, rec in d["targets"].items():
        res = validate_artifact(target, rec["uri"], tenant=tenant, surface=surface, kind=k,
                                version=rec["version"], window=(rec["window_start"], rec["window_end"]),
                                allow_empty=bool(d.get("allow_empty")), stores=st)
        if res.status == "fail":
            raise Conflict(f"rollback target {k} {rec['version']} no longer validates ({res.summary}); "
                           "nothing was changed")


def _swap_audited(target: Target, st: TargetStores, plan: Plan, tenant: str, surface: str, *, now: datetime,
                  actor: str | None, runbook: str | None, moves: str) -> tuple[str | None, str | None]:
    """Write the intent, swap the manifest with compare-and-swap, complete the audit record.

    Returns ``(audit record URI, None)``, or ``(None, problem)`` when the swap happened but its record could not be
    written (the intent stands and the next run completes it).
    """
    d = plan.details
    uri = target.manifest_uri(tenant, surface)
    new = Manifest(1, tenant, surface, dict(d["after_current"]), format_z(now))
    body = manifest_bytes(new)
    after = {"etag": etag_of(body), "manifest": new.to_dict(), "current": new.to_dict()["current"]}
    # The intent goes first: if it cannot be written, nothing is changed; if the process dies after the swap,
    # the next run finds the intent and completes it.
    intent_uri, intent = audit.begin(
        st, target, plan, tenant=tenant, scope=surface, now=now, actor=actor, runbook=runbook,
        before=d["before"], after=after, expect={"observed": plan.observed, "result": after["etag"]},
        manifest_uri=uri,
    )
    try:
        new_etag = st.put(uri, body, if_match=plan.observed, if_none_match=plan.observed is None)
    except Conflict:
        audit.complete(st, intent_uri, intent, state="abandoned",
                       note="another change won the compare-and-swap; nothing was changed")
        raise
    except ChecksError:
        raise  # the intent stays pending; the next run settles it from what the manifest shows
    after["etag"] = new_etag
    try:
        return audit.complete(st, intent_uri, intent, after=after), None
    except ChecksError as exc:
        return None, (f"the manifest of {tenant}/{surface} WAS rolled back ({moves}) but its audit record could not "
                      f"be written ({exc}); the intent {intent_uri} stands and the next rollback run completes it")


def _served_after(target: Target, plan: Plan, tenant: str, surface: str, *, actor: str | None,
                  runbook: str | None, invalidate_cache: bool, verified: bool) -> CheckResult | None:
    """What the service serves for the surface after a rollback (None without a service or a popularity move)."""
    if not target.base_url or not verified or not any(c.get("kind") == "popularity" for c in plan.changes):
        return None
    from . import cache
    from .served_vs_published import check_served_vs_published

    fix = (f"recsys-checks cache invalidate --tenant {tenant} --surface {surface} --targets popularity --execute")
    invalidated = ""
    if invalidate_cache:
        inv_plan = cache.plan_invalidate(target, tenant, ["popularity"], surface=surface,
                                         reason=f"serve the rolled-back manifest of {tenant}/{surface} now")
        try:
            inv = cache.apply_invalidate(target, inv_plan, execute=True, actor=actor, runbook=runbook,
                                         confirm=target.deployment)
            invalidated = f" (popularity cache invalidated, audit {inv.audit})"
        except ChecksError as exc:
            return CheckResult("manifest.rollback.service", "fail",
                               f"the popularity cache could not be invalidated ({exc}); run `{fix}`",
                               {"fix": fix, "exit_code": 1}, None, target.base_url)
    seen = check_served_vs_published(target, tenant, surface, max_age=timedelta(days=36500))
    verdict = seen.data.get("verdict")
    data = {"verdict": verdict, "served_version": seen.data.get("served_version"), "fix": fix,
            "invalidated": bool(invalidated)}
    if verdict == "consistent":
        return CheckResult("manifest.rollback.service", "ok",
                           f"the service serves the rolled-back popularity{invalidated}", data, seen.state,
                           target.base_url)
    if verdict in ("cache_stale", "empty"):
        what = (f"popularity {str(seen.data.get('served_version'))[:12]}" if verdict == "cache_stale"
                else "no items (most likely the cached artifact that was rolled back)")
        return CheckResult(
            "manifest.rollback.service", "fail",
            f"the service still serves {what} from its cache, not the rolled-back version; users get the old answer "
            f"until the cache TTL expires or `{fix}` (or re-run the rollback with --invalidate-cache)", data,
            seen.state, target.base_url)
    return CheckResult("manifest.rollback.service", "warn",
                       f"cannot confirm what the service serves ({seen.summary}); if it is cached, `{fix}`",
                       data, seen.state, target.base_url)


def _already_applied(raw: bytes, tenant: str, surface: str, plan: Plan) -> bool:
    try:
        m = parse_manifest(raw)
    except BadInput:
        return False
    if (m.tenant, m.surface) != (tenant, surface):
        return False
    return all(m.current.get(c["kind"]) == c["after"] for c in plan.changes)


def _verify(target: Target, st: TargetStores, tenant: str, surface: str, plan: Plan) -> CheckResult:
    uri = target.manifest_uri(tenant, surface)
    try:
        raw, etag = st.get(uri)
        m = _parse_for(raw, tenant, surface, uri)
    except (NotFound, BadInput, InvalidObject) as exc:
        return CheckResult("manifest.rollback.verify", "fail", str(exc), {}, None, uri)
    wrong = [c["kind"] for c in plan.changes if m.current.get(c["kind"]) != c["after"]]
    data = {"manifest": m.to_dict(), "wrong": wrong}
    if wrong:
        return CheckResult("manifest.rollback.verify", "fail",
                           f"{tenant}/{surface} does not point at the planned {', '.join(wrong)}", data, etag, uri)
    return CheckResult("manifest.rollback.verify", "ok",
                       f"{tenant}/{surface} points at the planned versions (updated_at {m.updated_at})", data, etag, uri)


def read_audit(target: Target, tenant: str, surface: str, *, stores: TargetStores | None = None,
               since: datetime | None = None, limit: int | None = audit.MAX_AUDIT_RECORDS) -> list[dict[str, Any]]:
    """The audit objects of a surface's actions, newest first, each with its ``uri``: those written since ``since``
    (default: all), at most the newest ``limit`` (see :func:`recsys_checks.audit.read`)."""
    return audit.read(target, safe_segment(tenant, "tenant"), safe_segment(surface, "surface"), stores=stores,
                      since=since, limit=limit)
