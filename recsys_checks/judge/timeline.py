"""What was shipped, when, by whom and why: one chronological view over every source of change.

Sources: artifact publishes (the registry's version records), the manifest's own ``updated_at``, our audit records
next to the registry (manifest rollbacks, config and rules reverts, cache invalidations, holds), and config/rules
changes and cache invalidations (the service's admin audit log). One source being unavailable makes the result a
warning naming it; the others are still shown.

The manifest's ``updated_at`` is an event of its own when nothing else explains it: a re-run of a day the registry
already has a version of writes no version record (records are append-only) yet rewrites the manifest, so a swap
back to an old version leaves no trace in ``records/``. Such a write is shown as ``manifest repointed to an old
version`` (or ``manifest updated`` when it names the newest versions), unless a publish record of a version it names
was built just before it (the publish's own swap) or one of our manifest rollbacks was recorded at the same time.

Our audit records are read in a bounded window: their names sort by time, so those written before ``since`` are
left out by name before any is read, and of the rest only the newest ``max_audit_records`` per scope
(:data:`recsys_checks.judge.auditlog.MAX_AUDIT_RECORDS` by default) are read; the result says how many older ones that left
out. Time and memory follow the window, not the size of the audit folder.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from recsys_checks.core import progress
from recsys_checks.core.errors import ChecksError, NotFound
from recsys_checks.core.results import CheckResult
from recsys_checks.core.timefmt import format_z, is_zero_time, parse_time
from recsys_checks.judge import auditlog
from recsys_checks.judge import auditlog as audit
from recsys_checks.judge.registry import manifest
from recsys_checks.judge.registry.artifact import version_from_uri
from recsys_checks.judge.registry.version_records import VersionRecord, version_history
from recsys_checks.judge.serving.documents import MAX_AUDIT_SCAN, doc_version, short
from recsys_checks.reach.service import ServiceClient, given_or_new_client
from recsys_checks.reach.settings import Target, safe_segment
from recsys_checks.reach.store import TargetStores

# (target, tenant, surface) -> the surface's version records, newest first
HistoryFn = Callable[[Target, str, str], list[VersionRecord]]
# (target, tenant, scope) -> our audit records of that scope, newest first
AuditFn = Callable[[Target, str, str], list[dict[str, Any]]]
# (target, tenant, surface) -> the surface's current manifest, None when it has none
ManifestFn = Callable[[Target, str, str], "manifest.Manifest | None"]

# A publish writes its version records, then swaps the manifest: the swap of a publish follows the build of the
# versions it names by well under a minute. updated_at has whole seconds and may come from another host's clock,
# hence a little slack before the build as well.
PUBLISH_SWAP_LAG = timedelta(minutes=2)
PUBLISH_SWAP_SLACK = timedelta(seconds=5)
# Our manifest rollback takes updated_at and its audit record's `when` from one clock reading.
ROLLBACK_SLACK = timedelta(seconds=5)


def _row(when: datetime | None, kind: str, surface: str | None, who: Any, what: str, before: Any, after: Any,
         why: Any, source: str) -> dict[str, Any]:
    return {
        "when": format_z(when) if when else None,
        "kind": kind,
        "surface": surface,
        "who": who,
        "what": what,
        "before": before,
        "after": after,
        "why": why or None,
        "source": source,
        "_at": when,
    }


def _surfaces(target: Target, tenant: str) -> list[str]:
    root = target.registry_root()
    with TargetStores(target) as stores:
        names = set(stores.children(f"{root}/current/{tenant}/"))
        names |= set(stores.children(f"{root}/records/{tenant}/"))
    return sorted(n for n in names if n)


def _publishes(version_records: list[VersionRecord], surface: str, start: datetime) -> list[dict[str, Any]]:
    rows = []
    by_kind: dict[str, list[VersionRecord]] = {}
    for rec in reversed(version_records):  # oldest first, so each record's predecessor is known
        by_kind.setdefault(rec.kind, []).append(rec)
    for kind, of_kind in by_kind.items():
        for i, rec in enumerate(of_kind):
            built = _built(rec)
            when = built or parse_time(rec.window_end)
            if when is None or when < start:
                continue
            before = of_kind[i - 1].version if i > 0 else None
            who = "pipeline" if built else "pipeline (from staging)"
            rows.append(_row(when, "publish", surface, who, f"{kind} {short(rec.version)}", short(before),
                             short(rec.version), f"window {rec.window_start} .. {rec.window_end}", "registry records"))
    return rows


def _built(rec: VersionRecord) -> datetime | None:
    """When a version was built; None for one published from staging (Go's zero time)."""
    return None if is_zero_time(rec.built_at) else parse_time(rec.built_at)


def read_manifest_or_none(target: Target, tenant: str, surface: str) -> manifest.Manifest | None:
    """The surface's current manifest, None when it has none (the default manifest reader of the timeline)."""
    try:
        return manifest.read_current(target, tenant, surface)[0]
    except NotFound:
        return None


def _manifest_row(m: manifest.Manifest, version_records: list[VersionRecord], rollbacks: list[datetime] | None,
                  surface: str, start: datetime) -> dict[str, Any] | None:
    """The manifest's last write as a row, unless a publish's swap or one of our rollbacks explains it.

    ``rollbacks``: when our manifest rollbacks of the surface were recorded (None: our audit records could not be
    read). A write explained by nothing is a manifest repointed without a record: a re-run of an old day names an
    already-recorded version, so the suite writes no version record, only the manifest.
    """
    when = m.updated_at_dt
    if when < start:
        return None
    if any(abs(when - t) <= ROLLBACK_SLACK for t in rollbacks or []):
        return None
    named = {kind: version_from_uri(uri) or uri for kind, uri in m.current.items()}
    found: dict[str, VersionRecord] = {}
    for rec in version_records:
        if named.get(rec.kind) in (rec.version, rec.uri):
            found[rec.kind] = rec
            built = _built(rec)
            if built is not None and built - PUBLISH_SWAP_SLACK <= when <= built + PUBLISH_SWAP_LAG:
                return None  # the swap of the publish that recorded this version
    old, parts = [], []
    for kind in sorted(named):
        rec = found.get(kind)
        if rec is None:
            parts.append(f"{kind} {short(named[kind])} has no version record")
            continue
        newer = sum(1 for r in version_records if r.kind == kind and r.sort_key > rec.sort_key)
        if newer:
            old.append(f"{kind} {short(rec.version)}")
            parts.append(f"{kind} {short(rec.version)} is of window {rec.window_start} .. {rec.window_end} "
                         f"({newer} newer version{'s' if newer != 1 else ''} recorded)")
    if old:
        what = "manifest repointed to an old version"
        cause = "no version record was written (e.g. a re-run of an old day)"
    else:
        what = "manifest updated"
        staged = sorted(kind for kind, rec in found.items() if _built(rec) is None)
        cause = "no version record was written at this time (e.g. a re-run of the newest day, or a swap by hand)"
        if staged:
            cause = (f"no version record is timed at this write: {', '.join(staged)} came from staging (records "
                     "without a build time), or it is a later re-run of the newest day")
    why = "; ".join([cause, *parts])
    if rollbacks is None:
        why += "; our audit records could not be read, so a rollback by recsys-checks is not ruled out"
    after = "; ".join(old) if old else "; ".join(f"{k} {short(v)}" for k, v in sorted(named.items())) or None
    return _row(when, "manifest", surface, None, what, None, after, why, "registry manifest")


def _versions(changes: list[Any], key: str) -> str | None:
    """``kind version`` of each pointer move of a manifest rollback, before or after (``key``)."""
    parts = []
    for change in changes:
        if isinstance(change, dict):
            version = change.get(f"{key}_version") or change.get(key)
            if isinstance(version, str) and "/" in version:  # a blob URI outside the layout: its file name
                version = version.rstrip("/").rsplit("/", 1)[-1].removesuffix(".json")
            parts.append(f"{change.get('kind')} {short(version) if isinstance(version, str) else version}")
    return "; ".join(parts) or None


# The sources of our own audit records: next to the registry, and the local audit folder (RECSYS_AUDIT_DIR).
_OUR_AUDITS = ("registry audit", "local audit")
# What our audit records are called on the timeline, by action.
_AUDIT_KINDS = {"manifest.rollback": "rollback", "config.revert": "config", "rules.revert": "rules",
                "cache.invalidate": "cache", "hold.set": "hold", "hold.clear": "hold"}


def _audit_record_rows(read_audit: AuditFn, target: Target, tenant: str, scope: str, start: datetime,
                       source: str = "registry audit", left_out: list[str] | None = None,
                       ) -> tuple[list[dict[str, Any]], list[str], list[datetime]]:
    """Rows for our audit records of one scope (a surface, or the tenant-wide scope): manifest rollbacks, config
    and rules reverts, cache invalidations and holds, as :func:`recsys_checks.levers.audit.audit_record` writes them.

    Also returns when each manifest rollback that was read was recorded, in the window or just before it (they
    explain manifest writes). A note on how many older records the reader's cap left out goes to ``left_out``."""
    rows, problems, rollbacks = [], [], []
    docs = read_audit(target, tenant, scope)
    cut = getattr(docs, "left_out", 0)
    if cut and left_out is not None:
        left_out.append(f"{source} {tenant}/{scope}: the newest {len(docs):,} records were read, {cut:,} older "
                        "ones in the window were not (--max-audit-records)")
    for doc in docs:
        if doc.get("error"):
            problems.append(str(doc["error"]))
            continue
        if doc.get("state") == "abandoned":  # an intent whose change never happened
            continue
        when = parse_time(doc.get("when"))
        if when is not None and doc.get("action") == "manifest.rollback":
            rollbacks.append(when)
        if when is None or when < start:
            continue
        changes = doc.get("changes") or []
        why = doc.get("why")
        if doc.get("runbook"):
            why = f"{why or ''} (runbook {doc['runbook']})".strip()
        action = str(doc.get("action"))
        if action == "manifest.rollback":
            before, after = _versions(changes, "before"), _versions(changes, "after")
        elif action.startswith("hold.") and changes and isinstance(changes[0], dict):
            before, after = changes[0].get("before"), changes[0].get("after")  # "held" / "not held"
        else:
            before = short(doc["before"]) if isinstance(doc.get("before"), str) else None
            after = short(doc["after"]) if isinstance(doc.get("after"), str) else None
        what = action + (" (outcome unknown)" if doc.get("state") == "unknown" else "")
        row = _row(when, _AUDIT_KINDS.get(action, action), doc.get("surface"), doc.get("who"), what, before, after,
                   why, source)
        row["_rid"] = doc.get("service_request_id")
        rows.append(row)
    return rows, problems, rollbacks


def _service_events(c: ServiceClient, tenant: str, surface: str | None, start: datetime) -> list[dict[str, Any]]:
    rows = []
    for entry in c.audit(tenant, limit=200, max_entries=MAX_AUDIT_SCAN):
        when = parse_time(entry.get("occurred_at"))
        if when is not None and when < start:
            break  # newest first: everything after this is older
        action = str(entry.get("action") or "")
        who = entry.get("actor_sub")
        if entry.get("actor_type"):
            who = f"{who} ({entry['actor_type']})"
        extra = entry.get("extra") if isinstance(entry.get("extra"), dict) else {}
        why = extra.get("reason") or extra.get("why")
        if action == "cache.invalidate":
            state = entry.get("after_state") if isinstance(entry.get("after_state"), dict) else {}
            targets = state.get("targets") or extra.get("targets") or []
            where = state.get("surface") or extra.get("surface")
            if surface is not None and where not in (None, "", surface):
                continue
            what = f"invalidate {', '.join(map(str, targets)) or 'caches'}"
            rows.append({**_row(when, "cache", where, who, what, None, None, why, "service audit"),
                         "_rid": entry.get("request_id")})
            continue
        kind = action.split(".", 1)[0] if "." in action else str(entry.get("entity_type") or action)
        before, after = entry.get("before_state"), entry.get("after_state")
        rows.append({**_row(when, kind, None, who, action,
                            short(doc_version(before)) if before is not None else None,
                            short(doc_version(after)) if after is not None else None, why, "service audit"),
                     "_rid": entry.get("request_id")})
    return rows


def _join_audits(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per change: where our audit record and the service's describe the same request, keep the service's
    row and add our why and runbook to it."""
    ours = {r["_rid"]: r for r in rows if r["source"] in _OUR_AUDITS and r.get("_rid")}
    joined = set()
    for r in rows:
        mine = ours.get(r.get("_rid")) if r["source"] == "service audit" else None
        if mine is not None:
            r["why"] = r["why"] or mine["why"]
            r["who"] = mine["who"] if str(r["who"] or "").startswith("api-key:") else r["who"]
            joined.add(id(mine))
    return [r for r in rows if id(r) not in joined]


def check_timeline(
    target: Target,
    tenant: str,
    surface: str | None = None,
    since: timedelta = timedelta(days=7),
    now: datetime | None = None,
    *,
    client: ServiceClient | None = None,
    read_history: HistoryFn | None = None,
    read_audit: AuditFn | None = None,
    read_manifest: ManifestFn | None = None,
    surfaces: list[str] | None = None,
    max_audit_records: int | None = audit.MAX_AUDIT_RECORDS,
) -> CheckResult:
    """Every change to the tenant (optionally one surface) in the last ``since``, oldest first.

    ``read_history(target, tenant, surface)`` lists the version records (default
    :func:`recsys_checks.judge.registry.version_records.version_history`), ``read_audit(target, tenant, scope)`` our audit records (default
    :func:`recsys_checks.judge.auditlog.read_audit` over the window, at most ``max_audit_records`` per scope),
    ``read_manifest(target, tenant, surface)`` the current manifest or None (default :func:`read_manifest_or_none`);
    ``surfaces`` overrides discovering the tenant's surfaces in the registry.
    """
    safe_segment(tenant, "tenant")
    if surface is not None:
        safe_segment(surface, "surface")
    now = now or datetime.now(UTC)
    start = now - since
    sources: dict[str, str] = {}
    # A rollback recorded just before the window may explain a manifest write at its start.
    window = start - ROLLBACK_SLACK

    def read_window(target: Target, tenant: str, scope: str) -> list[dict[str, Any]]:
        return auditlog.read_audit(target, tenant, scope, since=window, limit=max_audit_records)

    left_out: list[str] = []
    rows, problems = _registry_rows(target, tenant, surface, surfaces, start, sources,
                                    read_history or version_history, read_audit or read_window,
                                    read_manifest or read_manifest_or_none, left_out, max_audit_records)
    rows += _service_rows(target, client, tenant, surface, start, sources)
    rows = _join_audits(rows)
    epoch = datetime.min.replace(tzinfo=UTC)
    rows.sort(key=lambda r: (r["_at"] or epoch, r["kind"], str(r["what"])))
    for r in rows:
        r.pop("_at")
        r.pop("_rid", None)
    return _timeline_result(target, tenant, surface, start, now, rows, sources, problems, left_out)


def _registry_rows(target: Target, tenant: str, surface: str | None, surfaces: list[str] | None, start: datetime,
                   sources: dict[str, str], read_history: HistoryFn, read_audit: AuditFn,
                   read_manifest: ManifestFn, left_out: list[str],
                   max_audit_records: int | None) -> tuple[list[dict[str, Any]], list[str]]:
    """Publishes from the version records, unexplained manifest writes and our audit records; ``sources`` says
    which could be read."""
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    names: list[str] = []
    try:
        names = [surface] if surface is not None else (surfaces if surfaces is not None else _surfaces(target, tenant))
        sources["registry"] = "ok"
    except ChecksError as exc:
        sources["registry"] = _unavailable(target, exc)
    histories: dict[str, list[VersionRecord]] = {}
    with progress.stage("reading version histories", total=len(names), unit="surfaces") as read:
        for name in names:
            try:
                histories[name] = list(read_history(target, tenant, name))
                rows += _publishes(histories[name], name, start)
                sources.setdefault("registry", "ok")
            except ChecksError as exc:
                sources["registry"] = _unavailable(target, exc)
            read.advance()
    rollbacks: dict[str, list[datetime] | None] = {}
    for scope in [*names, audit.TENANT_SCOPE]:  # our audit records: per surface, and tenant-wide actions
        try:
            found, bad, rollbacks[scope] = _audit_record_rows(read_audit, target, tenant, scope, start,
                                                              left_out=left_out)
            rows += found
            problems += bad
            sources.setdefault("registry audit", "ok")
        except ChecksError as exc:
            rollbacks[scope] = None
            sources["registry audit"] = _unavailable(target, exc)
    rows += _local_audit_rows(target, tenant, names, start, sources, problems, left_out, max_audit_records)
    for name, version_records in histories.items():  # the manifest of each surface whose records could be read
        try:
            m = read_manifest(target, tenant, name)
        except ChecksError as exc:
            problems.append(f"manifest of {tenant}/{name} unreadable: {exc}")
            continue
        row = _manifest_row(m, version_records, rollbacks.get(name), name, start) if m is not None else None
        if row is not None:
            rows.append(row)
    return rows, problems


def _unavailable(target: Target, exc: ChecksError) -> str:
    if target.has_registry:
        return f"unavailable: {exc}"
    return (f"unavailable: no registry is configured (RECSYS_ARTIFACT_MANIFEST_TEMPLATE is not set) and the suite's "
            f"default location could not be read: {exc}")


def _local_audit_rows(target: Target, tenant: str, names: list[str], start: datetime, sources: dict[str, str],
                      problems: list[str], left_out: list[str], max_audit_records: int | None) -> list[dict[str, Any]]:
    """Our audit records in the local audit folder (``RECSYS_AUDIT_DIR``, else the per-user state folder when it has
    records), where config and rules reverts record when no registry could be used; nothing when there is none. The
    working directory plays no part."""
    try:
        root = audit.local_root_to_read(target)
    except ChecksError as exc:
        sources["local audit"] = f"unavailable: {exc}"
        return []
    if root is None:
        return []
    try:
        if target.has_registry and root == target.audit_root():
            return []  # the registry's own folder, already read
    except ChecksError:
        pass
    rows: list[dict[str, Any]] = []

    def read_local(target: Target, tenant: str, scope: str) -> list[dict[str, Any]]:
        return audit.read(target, tenant, scope, root=root, since=start - ROLLBACK_SLACK, limit=max_audit_records)

    for scope in [*names, audit.TENANT_SCOPE]:
        try:
            found, bad, _ = _audit_record_rows(read_local, target, tenant, scope, start, "local audit", left_out)
            rows += found
            problems += bad
            sources.setdefault("local audit", "ok")
        except ChecksError as exc:
            sources["local audit"] = f"unavailable: {exc}"
    return rows


def _service_rows(target: Target, client: ServiceClient | None, tenant: str, surface: str | None, start: datetime,
                  sources: dict[str, str]) -> list[dict[str, Any]]:
    """Config, rules and cache changes from the service's admin audit log; ``sources`` says whether it was read."""
    if not target.base_url:
        sources["service audit"] = "unavailable: no RECSYS_BASE_URL"
    elif not target.api_key and client is None:
        sources["service audit"] = "unavailable: the admin audit log needs RECSYS_API_KEY"
    else:
        try:
            with given_or_new_client(target, client) as c:
                rows = _service_events(c, tenant, surface, start)
            sources["service audit"] = "ok"
            return rows
        except ChecksError as exc:
            sources["service audit"] = f"unavailable: {exc}"
    return []


def _timeline_result(target: Target, tenant: str, surface: str | None, start: datetime, now: datetime,
                     rows: list[dict[str, Any]], sources: dict[str, str], problems: list[str],
                     left_out: list[str] | None = None) -> CheckResult:
    down = {k: v for k, v in sources.items() if v != "ok"}
    scope = f"{tenant}/{surface}" if surface else tenant
    data = {"tenant": tenant, "surface": surface, "since": format_z(start), "until": format_z(now),
            "events": rows, "sources": sources, "problems": problems, "left_out": left_out or []}
    summary = f"{len(rows)} change(s) to {scope} since {format_z(start)}"
    if down and len(down) == len(sources):
        return CheckResult("timeline", "fail", f"no source of changes could be read for {scope}: "
                           + "; ".join(f"{k} {v}" for k, v in down.items()), data, None, target.base_url)
    if down or problems or left_out:
        missing = "; ".join([*(f"{k} {v}" for k, v in down.items()), *(left_out or [])])
        if problems:
            manifests = sum(1 for p in problems if p.startswith("manifest of "))
            unread = [f"{len(problems) - manifests} unreadable audit record(s)" if len(problems) > manifests else "",
                      f"{manifests} unreadable manifest(s)" if manifests else ""]
            missing = "; ".join(filter(None, [missing, *unread]))
        return CheckResult("timeline", "warn", f"{summary} (incomplete: {missing})", data, None, target.base_url)
    return CheckResult("timeline", "ok", summary, data, None, target.base_url)
