"""Steps of the production-readiness checklist: every item that can be checked from outside is checked; the rest
are listed from the spec's ``manual`` section with what to look at."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from recsys_checks.core.errors import ChecksError
from recsys_checks.core.results import CheckResult
from recsys_checks.judge.registry.freshness import check_freshness
from recsys_checks.levers.revert import plan_revert
from recsys_checks.levers.rollback import plan_rollback
from recsys_checks.reach.service import ServiceClient, ServiceProblem
from recsys_checks.reach.settings import parse_duration
from recsys_checks.runbooks import pictures
from recsys_checks.runbooks.steps.fix import diagnosis
from recsys_checks.runbooks.steps.serving import service_health

if TYPE_CHECKING:
    from recsys_checks.runbooks.run import RunbookRun

# The suite's metric names (namespace recsys): dashboards and alerts are built on them.
SUITE_METRICS = (
    "recsys_recommendation_requests_total",
    "recsys_recommendation_latency_seconds",
    "recsys_artifact_load_failures_total",
    "recsys_artifact_manifest_age_seconds",
)


def _item(name: str, ok: bool | None, detail: str) -> dict[str, Any]:
    return {"item": name, "status": "ok" if ok else "fail" if ok is False else "warn", "detail": detail}


def _result(check: str, run: RunbookRun, rows: list[dict[str, Any]]) -> CheckResult:
    failing = [r for r in rows if r["status"] == "fail"]
    status = "fail" if failing else "warn" if any(r["status"] == "warn" for r in rows) else "ok"
    summary = "; ".join(f"{r['item']}: {r['detail']}" for r in failing) or f"{len(rows)} item(s) pass"
    return CheckResult(check, status, summary, {"items": rows}, None, run.tenant)


def health_and_metrics(run: RunbookRun) -> CheckResult:
    """Health endpoints answer (liveness, readiness, per-dependency detail) and the suite's metrics are exposed."""
    health = service_health(run)
    rows = [_item("health endpoints", health.status != "fail", health.summary)]
    try:
        with ServiceClient(run.target) as c:
            names = c.metric_families()
        missing = [m for m in SUITE_METRICS if m not in names and m.removesuffix("_total") not in names]
        rows.append(_item("metrics", not missing, "missing " + ", ".join(missing) if missing
                          else f"{len(SUITE_METRICS)} suite metrics exposed on /metrics"))
    except ChecksError as exc:
        rows.append(_item("metrics", False, f"/metrics cannot be read: {run.redact(str(exc))}"))
    return _result("readiness.service", run, rows)


def admin_auth(run: RunbookRun) -> CheckResult:
    """The admin API refuses a request without a key and accepts the configured one (tenancy and auth)."""
    rows = []
    anonymous = dataclasses.replace(run.target, api_key=None)
    try:
        with ServiceClient(anonymous) as c:
            response = c._send("GET", f"/v1/admin/tenants/{run.tenant}/config", tenant=run.tenant)  # noqa: SLF001
        refused = response.status_code in (401, 403)
        rows.append(_item("admin API without a key", refused, f"answered {response.status_code}"
                          + ("" if refused else ": the admin API is open to anyone who can reach it")))
    except ChecksError as exc:
        rows.append(_item("admin API without a key", False, run.redact(str(exc))))
    if not run.target.api_key:
        rows.append(_item("admin API with the key", None, "RECSYS_API_KEY is not set here: not checked"))
    else:
        try:
            with ServiceClient(run.target) as c:
                c.get_doc(run.tenant, "config")
            rows.append(_item("admin API with the key", True, "the configured key reads the tenant's config"))
        except ServiceProblem as exc:
            rows.append(_item("admin API with the key", exc.status == 404, run.redact(str(exc))))
        except ChecksError as exc:
            rows.append(_item("admin API with the key", False, run.redact(str(exc))))
    return _result("readiness.auth", run, rows)


def publishing_freshness(run: RunbookRun) -> CheckResult:
    """Every surface of the tenant is published on schedule (fresh, valid manifests)."""
    max_age = parse_duration(str(run.params.get("max_age") or "26h"))
    try:
        result = check_freshness(run.target, max_age, tenant=run.tenant)
    except ChecksError as exc:
        return _result("readiness.freshness", run, [_item("scheduled publishing", False, run.redact(str(exc)))])
    pictures.freshness(run, result)
    rows = [_item(f"{r['tenant']}/{r['surface']} fresh", r["condition"] == "healthy", r["summary"])
            for r in result.data.get("rows") or []]
    return _result("readiness.freshness", run, rows or [_item("scheduled publishing", False, result.summary)])


def rollback_targets(run: RunbookRun) -> CheckResult:
    """Every surface has a valid earlier version to roll back to, and config and rules have an earlier version."""
    rows = []
    try:
        surfaces = [r["surface"] for r in (check_freshness(run.target, parse_duration("3650d"), tenant=run.tenant)
                                           .data.get("rows") or []) if r.get("surface")]
    except ChecksError as exc:
        surfaces = []
        rows.append(_item("manifest rollback", False, run.redact(str(exc))))
    for surface in surfaces:
        try:
            plan = plan_rollback(run.target, run.tenant, surface, previous=True)
            moves = ", ".join(f"{c['kind']} -> {c['after_version'][:12]}" for c in plan.changes)
            rows.append(_item(f"{surface} manifest rollback", True, f"a dry-run plan exists ({moves})"))
        except ChecksError as exc:
            rows.append(_item(f"{surface} manifest rollback", False, run.redact(str(exc))))
    for kind in ("config", "rules"):
        try:
            plan = plan_revert(run.target, run.tenant, kind, previous=True)
            rows.append(_item(f"{kind} revert", True, f"an earlier version exists "
                              f"({str(plan.changes[0]['after'])[:12]})"))
        except ChecksError as exc:
            rows.append(_item(f"{kind} revert", False, run.redact(str(exc))))
    return _result("readiness.rollback", run, rows)


def checklist(run: RunbookRun) -> CheckResult:
    """The checklist: each checked item with its result, then the items to review by hand."""
    rows: list[dict[str, Any]] = []
    for step in run.spec.steps:
        result = run.result(step.id)
        if step.role == "check" and isinstance(result, CheckResult):
            for item in result.data.get("items") or []:
                rows.append({"area": step.title, **item})
    manual = [{"area": "manual", "item": m["item"], "status": "manual", "detail": m["look_at"]}
              for m in run.spec.manual]
    failing = [r for r in rows if r["status"] == "fail"]
    found = diagnosis(
        run,
        f"{len(failing)} of {len(rows)} checked item(s) fail: " + "; ".join(f"{r['item']}: {r['detail']}"
                                                                         for r in failing)
        if failing else f"all {len(rows)} checked item(s) pass; {len(manual)} item(s) to review by hand",
        cause="readiness_gaps" if failing else None,
    )
    found.data["checklist"] = rows + manual
    return found
