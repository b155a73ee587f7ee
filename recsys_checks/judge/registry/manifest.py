"""The manifest v1 — the pointer that is shipped and rolled back: its model, how it is read, and its status.

A manifest names, per artifact kind, the blob the service serves for one (tenant, surface). Rollback moves that
pointer only (records and blobs are append-only), after validating the target, with compare-and-swap on the
manifest's ETag, and leaves one audit object per applied change under ``<registry>/audit/<tenant>/<surface>/``.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from recsys_checks.core import jsonio
from recsys_checks.core.errors import BadInput, ChecksError, InvalidObject, NotFound
from recsys_checks.core.results import CheckResult
from recsys_checks.core.timefmt import age_text, parse_go_time, parse_seconds_z, parse_time
from recsys_checks.judge.invariants import WINDOW_AHEAD, age_finding, future_finding, item_drop_finding, time_findings
from recsys_checks.judge.names import unknown_name
from recsys_checks.judge.registry.artifact import KINDS, validate_artifact, version_from_uri
from recsys_checks.judge.registry.hold import check_hold
from recsys_checks.judge.registry.version_records import load_version_records
from recsys_checks.reach.settings import Target, safe_segment
from recsys_checks.reach.store import TargetStores, stores_for

__all__ = ["DEFAULT_MAX_AGE", "DROP_LOOKBACK", "READ_STATES", "Manifest", "ManifestRead", "check_manifest",
           "manifest_bytes", "parse_manifest", "read_current", "read_manifest"]

# A daily pipeline runs at 01:00-02:00 UTC for the previous day: 24 h between publishes plus 2 h of slack.
DEFAULT_MAX_AGE = timedelta(hours=26)
_FIELDS = ("v", "tenant", "surface", "current", "updated_at")
_FIELD_SET = frozenset(_FIELDS)
_KIND_SET = frozenset(KINDS)
# A daily window [D, D+1) is published after D+1 00:00: its end trails the publish by the pipeline's lag.
WINDOW_LAG = timedelta(hours=6)
# How many earlier versions the item-count comparison (and a rollback's choice of target) tries before giving up
# on finding a valid one.
DROP_LOOKBACK = 3


@dataclass(frozen=True)
class Manifest:
    """Manifest v1: exactly these five fields.

    ``deviations``: what is off the suite's contract that the service tolerates (a kind it does not have, an
    ``updated_at`` with an offset other than ``Z``), one sentence each; clients are not affected. ``ignored``: the
    kinds of ``current`` that are not the suite's, kept apart (a repoint writes the manifest without them).
    """

    v: int
    tenant: str
    surface: str
    current: dict[str, str] = field(default_factory=dict)
    updated_at: str = ""
    deviations: tuple[str, ...] = ()
    ignored: dict[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def updated_at_dt(self) -> datetime:
        return _updated_at(self.updated_at)[0]

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
    kept: dict[str, str] = {}
    ignored: dict[str, Any] = {}
    for kind, uri in current.items():  # one pass: a fleet scan parses thousands
        if kind not in _KIND_SET:
            ignored[kind] = uri
        elif uri.__class__ is str and uri.startswith(("file://", "s3://")):
            kept[kind] = uri
        else:
            raise BadInput(f"manifest field 'current.{kind}' must be a file:// or s3:// URI, got {uri!r}")
    deviations = [f"current names kind {kind!r}, which is not a kind of the suite's ({', '.join(KINDS)}): the "
                  "service ignores it, clients are not affected" for kind in sorted(ignored)]
    updated, off = _updated_at(doc["updated_at"])
    if off:
        deviations.append(f"updated_at {doc['updated_at']!r} is not UTC with Z as the suite writes it (read as "
                          f"{updated.strftime('%Y-%m-%dT%H:%M:%SZ')}): the service does not read it, clients are "
                          "not affected")
    m = Manifest(1, doc["tenant"], doc["surface"], kept, doc["updated_at"], tuple(deviations), ignored)
    m.__dict__["updated_at_dt"] = updated  # parsed once: the cached property's value
    return m


def _updated_at(value: Any) -> tuple[datetime, bool]:
    """``updated_at`` as a UTC time, and whether it was off the suite's form (an offset other than ``Z``, a
    fraction): any RFC 3339 time is read; anything else is :class:`BadInput`."""
    try:
        return parse_seconds_z(value, "manifest field 'updated_at'"), False
    except BadInput:
        try:
            parsed, _ = parse_go_time(value, "manifest field 'updated_at'")
        except BadInput:
            raise BadInput(f"manifest field 'updated_at' {value!r} is not an RFC 3339 time (the suite writes "
                           "2026-01-02T01:23:45Z)") from None
        return parsed.astimezone(UTC), True


def manifest_bytes(manifest: Manifest) -> bytes:
    """The manifest exactly as the suite writes it: Go's MarshalIndent with two spaces, no trailing newline."""
    text = json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False)
    # Go's encoder escapes these in strings; JSON syntax never contains them, so replacing globally is safe.
    for raw, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                     ("\u2029", "\\u2029")):
        text = text.replace(raw, esc)
    return text.encode("utf-8")


# What reading a surface's current manifest can find: the one vocabulary of every reader of it.
READ_STATES = ("valid", "missing", "invalid", "unreachable")


@dataclass(frozen=True)
class ManifestRead:
    """One surface's current manifest as :func:`read_manifest` found it, whatever its state.

    ``state`` is one of :data:`READ_STATES`: ``valid`` (``manifest`` is a v1 manifest of this tenant and surface),
    ``missing`` (nothing at ``uri``), ``invalid`` (something there that is not one: a damaged object such as a FIFO
    or one above the byte limit, bad JSON, a wrong field, another surface's manifest) or ``unreachable`` (the store
    could not be asked: down, no credentials, a URI it cannot serve). ``etag`` is the state token of what is there
    (a damaged object's too), ``raw`` its bytes when they were read. ``problem`` is what failed as the store or the
    parser said it, ``summary`` the sentence a check shows for it (with what to do), ``error`` the exception.
    """

    state: str
    uri: str
    tenant: str
    surface: str
    manifest: Manifest | None = None
    etag: str | None = None
    raw: bytes | None = None
    problem: str | None = None
    summary: str | None = None
    error: ChecksError | None = None

    def reachable(self) -> ManifestRead:
        """This read, unless the store could not be asked: then its error is raised (for callers that stop there)."""
        if self.state == "unreachable" and self.error is not None:
            raise self.error
        return self

    def require(self) -> tuple[Manifest, str]:
        """The manifest and its ETag; raises :class:`NotFound` when missing, :class:`BadInput` when invalid and the
        store's own error when unreachable."""
        if self.manifest is not None and self.etag is not None:
            return self.manifest, self.etag
        if self.state == "missing":
            raise NotFound(
                f"no manifest for {self.tenant}/{self.surface} at {self.uri}: check RECSYS_ARTIFACT_MANIFEST_TEMPLATE, "
                f"or list versions with `recsys-checks manifest history --tenant {self.tenant} --surface "
                f"{self.surface}`")
        if self.state == "invalid" or self.error is None:
            raise BadInput(self.summary or f"manifest at {self.uri} is invalid")
        raise self.error


def read_manifest(target: Target, tenant: str, surface: str, *, stores: TargetStores | None = None,
                  uri: str | None = None) -> ManifestRead:
    """Read and classify the current manifest of ``tenant``/``surface``: never raises for what it finds.

    ``uri``: where it is, when the caller already has it (a fleet scan builds it from names it proved safe).
    """
    uri = uri or target.manifest_uri(tenant, surface)
    st, own = stores_for(target, stores)
    try:
        raw, etag = st.get(uri)
    except NotFound as exc:
        return ManifestRead("missing", uri, tenant, surface, problem=f"no manifest at {uri}", error=exc, summary=(
            f"no manifest for {tenant}/{surface} at {uri}: the service serves empty recommendations; publish or roll "
            "back this surface"))
    except InvalidObject as exc:
        return ManifestRead("invalid", uri, tenant, surface, etag=exc.etag, problem=str(exc), error=exc, summary=(
            f"manifest for {tenant}/{surface} is invalid: {exc}; roll back with `recsys-checks manifest rollback "
            f"--tenant {tenant} --surface {surface} --previous`"))
    except ChecksError as exc:
        return ManifestRead("unreachable", uri, tenant, surface, problem=str(exc), summary=str(exc), error=exc)
    finally:
        if own:
            st.close()
    try:
        m = _parse_for(raw, tenant, surface, uri)
    except BadInput as exc:
        return ManifestRead("invalid", uri, tenant, surface, etag=etag, raw=raw, problem=str(exc), summary=str(exc),
                            error=exc)
    return ManifestRead("valid", uri, tenant, surface, m, etag, raw)


def read_current(target: Target, tenant: str, surface: str, *, stores: TargetStores | None = None) -> tuple[Manifest, str]:
    """Fetch and parse the current manifest; return it with its ETag.

    Raises :class:`NotFound` when there is none and :class:`BadInput` when it is not a valid v1 manifest of this
    tenant and surface (:meth:`ManifestRead.require`).
    """
    return read_manifest(target, tenant, surface, stores=stores).require()


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
    st, own = stores_for(target, stores)
    try:
        found = read_manifest(target, tenant, surface, stores=st, uri=uri)
        if found.manifest is None:
            return _named_unknown(target, st, _failed_status(found, data), tenant, surface)
        m, etag = found.manifest, found.etag
        data["etag"] = etag
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
        notes += list(m.deviations)
        data["deviations"] = list(m.deviations)
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


def _named_unknown(target: Target, st: TargetStores, result: CheckResult, tenant: str, surface: str) -> CheckResult:
    """A missing manifest of a tenant or surface the registry does not have reads as a name to check (exit 2, bad
    input), with the names it has, not as a surface whose manifest is gone."""
    if result.data.get("condition") != "missing":
        return result
    unknown = unknown_name(target, tenant, surface, stores=st, ask_service=False)
    if unknown is None:
        return result
    result.data.update({"unknown": unknown.to_dict(), "exit_code": 2})
    result.summary = f"no manifest for {tenant}/{surface}: {unknown.message}"
    return result


def _failed_status(found: ManifestRead, data: dict[str, Any]) -> CheckResult:
    """The status of a missing or invalid manifest; an unreachable store raises its error."""
    found.reachable()
    data["condition"] = found.state
    if found.state == "invalid":
        data["etag"] = found.etag
        data["problems"].append(found.summary)
        return CheckResult("manifest.status", "fail", found.summary or "", data, found.etag, found.uri)
    data["problems"].append(found.problem)
    return CheckResult("manifest.status", "fail", found.summary or "", data, None, found.uri)


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
        for candidate in before[:DROP_LOOKBACK]:
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

    try:
        res = check_hold(target, tenant, surface, stores=stores)
    except BadInput:
        return None
    return {"held": res.data["held"], "marker_uri": res.target, "summary": res.data["description"]}

