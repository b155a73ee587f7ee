"""A surface's version history, each version judged a valid rollback target or not, read-only."""

from __future__ import annotations

from typing import Any

from recsys_checks.core.results import CheckResult
from recsys_checks.judge.names import unknown_name
from recsys_checks.judge.registry.artifact import validate_artifact
from recsys_checks.judge.registry.manifest import read_manifest
from recsys_checks.judge.registry.version_records import VersionRecord, load_version_records, read_each
from recsys_checks.reach.settings import Target, safe_segment
from recsys_checks.reach.store.router import TargetStores, stores_for


class Validator:
    """Validates each version record's blob, once per blob (blobs are immutable): a callable record -> CheckResult."""

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
    st, own = stores_for(target, stores)
    try:
        found = read_manifest(target, tenant, surface, stores=st).reachable()
        state, m, etag, problem = found.state, found.manifest, found.etag, found.problem
        version_records, problems = load_version_records(target, tenant, surface, kind, stores=st)
        current = m.current if m else {}
        check = Validator(target, st)
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
        unknown = unknown_name(target, tenant, surface, ask_service=False) if state == "missing" else None
        if unknown is not None:  # a typo, not a surface that lost its history (exit 2, bad input)
            data.update({"unknown": unknown.to_dict(), "exit_code": 2})
            return CheckResult("manifest.history", "fail", f"no version records for {scope}: {unknown.message}",
                               data, etag, target.manifest_uri(tenant, surface))
        return CheckResult("manifest.history", "fail",
                           f"no version records for {scope} under {data['records_prefix']}: nothing to roll back to",
                           data, etag, target.manifest_uri(tenant, surface))
    n_targets = sum(1 for r in rows if r["rollback_target"])
    summary = f"{len(rows)} version(s) of {scope}, {n_targets} valid rollback target(s)"
    if warnings:
        summary += "; " + "; ".join(warnings)
    return CheckResult("manifest.history", "warn" if warnings else "ok", summary, data, etag,
                       target.manifest_uri(tenant, surface))



def history_hint(tenant: str, surface: str) -> str:
    """The command that lists a surface's versions, as advice to end a message with."""
    return f"list versions with `recsys-checks manifest history --tenant {tenant} --surface {surface}`"
