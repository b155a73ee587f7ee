"""Is the service up: liveness, readiness, per-dependency detail and a few key metrics, in one check."""

from __future__ import annotations

import math
from typing import Any

from recsys_checks.core.errors import ChecksError, Unreachable
from recsys_checks.core.results import CheckResult
from recsys_checks.reach.service import Answer, ServiceClient, given_or_new_client, metric_sum
from recsys_checks.reach.settings import Target

_GOOD = {"ok", "up", "pass", "passing", "healthy", "ready", "true", "serving"}
# Status words a dependency check reports when it is down (any word in neither set is degraded).
FAILING_STATUSES = {"fail", "failed", "failing", "down", "error", "unhealthy", "not_ready", "false", "critical"}


def _status_word(value: Any) -> str:
    if isinstance(value, bool):
        return "ok" if value else "fail"
    if isinstance(value, dict):
        return _status_word(value.get("status", value.get("ok", "unknown")))
    return str(value).strip().lower() if value is not None else "unknown"


def dependency_checks(body: Any) -> list[dict[str, Any]]:
    """Normalise a ``/health/detailed`` (or ``/health``) body into ``[{name, status, detail}]``.

    Accepts ``{"checks": {name: {...}|"ok"}}``, ``{"checks": [{"name", "status"}]}`` and the same under
    ``components`` or ``dependencies``: versions of the service differ.
    """
    if not isinstance(body, dict):
        return []
    raw = body.get("checks", body.get("components", body.get("dependencies")))
    rows: list[dict[str, Any]] = []
    if isinstance(raw, dict):
        items = list(raw.items())
    elif isinstance(raw, list):
        items = [(str(c.get("name", f"check-{i}")), c) for i, c in enumerate(raw) if isinstance(c, dict)]
    else:
        return rows
    for name, value in items:
        detail = ""
        if isinstance(value, dict):
            detail = str(value.get("detail") or value.get("error") or value.get("message") or "")
        rows.append({"name": str(name), "status": _status_word(value), "detail": detail})
    return rows


def _answer_dict(answer: Answer) -> dict[str, Any]:
    return {"path": answer.path, "status_code": answer.status, "body": answer.body, "request_id": answer.request_id}


def _sum_present(values: Any) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def key_metrics(metrics: dict[str, float]) -> dict[str, float | None]:
    """The few series on-call looks at first (cumulative since the service started).

    A gauge the service exports as NaN (e.g. the manifest age before any manifest was loaded) is ``None``: NaN is
    not JSON.
    """
    values = {
        "requests_total": metric_sum(metrics, "recsys_recommendation_requests_total"),
        "requests_error": _sum_present(
            metric_sum(metrics, "recsys_recommendation_requests_total", outcome=outcome)
            for outcome in ("error", "server_error")
        ),
        "requests_empty": metric_sum(metrics, "recsys_recommendation_requests_total", empty="true"),
        "artifact_load_failures_total": metric_sum(metrics, "recsys_artifact_load_failures_total"),
        "manifest_age_seconds": metric_sum(metrics, "recsys_artifact_manifest_age_seconds"),
        "manifest_artifacts": metric_sum(metrics, "recsys_artifact_manifest_artifacts"),
    }
    return {k: None if v is not None and math.isnan(v) else v for k, v in values.items()}


def check_health(target: Target, client: ServiceClient | None = None) -> CheckResult:
    """Liveness, readiness, dependency detail and key metrics; fail when not live or not ready, warn when degraded.

    A dependency that reports failure in the detailed health counts as not ready even when ``/readyz`` answers 200.

    A service that does not answer is a ``fail`` result, not an exception, so a runbook can branch on it.
    """
    data: dict[str, Any] = {"base_url": target.base_url}
    try:
        with given_or_new_client(target, client) as c:
            live = c.healthz()
            data["live"] = _answer_dict(live)
            ready = c.readyz()
            data["ready"] = _answer_dict(ready)
            detail = c.health_detailed()
            data["detail"] = {**_answer_dict(detail), "checks": dependency_checks(detail.body)}
            try:
                data["metrics"] = key_metrics(c.metrics())
            except ChecksError as exc:
                if isinstance(exc, Unreachable):
                    raise
                data["metrics"] = None
                data["metrics_error"] = str(exc)
    except Unreachable as exc:
        data["error"] = str(exc)
        data["exit_code"] = exc.exit_code  # could not look: configuration or connectivity, not a broken service
        return CheckResult("health", "fail", str(exc), data, target=target.base_url)

    checks = data["detail"]["checks"]
    failing = [c for c in checks if c["status"] in FAILING_STATUSES]
    degraded = [c for c in checks if c["status"] not in _GOOD and c["status"] not in FAILING_STATUSES]
    overall = _status_word(detail.body.get("status")) if isinstance(detail.body, dict) else "unknown"
    state = f"live={live.status} ready={ready.status}"

    def names(rows: list[dict[str, Any]]) -> str:
        return ", ".join(f"{r['name']} ({r['status']}{': ' + r['detail'] if r['detail'] else ''})" for r in rows)

    if live.status != 200:
        return CheckResult(
            "health", "fail", f"service at {target.base_url} is not live: /healthz answered {live.status}; "
            "restart it (see the service-not-ready runbook)", data, state, target.base_url,
        )
    if ready.status != 200:
        why = names(failing) or f"/readyz answered {ready.status}"
        return CheckResult(
            "health", "fail", f"service is live but not ready: {why}; check its dependencies (object store, "
            "admin database) — service-not-ready runbook", data, state, target.base_url,
        )
    if failing:
        # /readyz of some versions checks only the database; a failing store still breaks every recommendation.
        return CheckResult(
            "health", "fail", f"service is live and /readyz answers 200, but a dependency fails: {names(failing)}; "
            "recommendations will fail (service-not-ready runbook)", data, state, target.base_url,
        )
    if detail.status == 200 and not isinstance(detail.body, dict):
        # A proxy, a login portal or another application answers 200 with a page on every path.
        return CheckResult(
            "health", "warn", f"{detail.path} answered 200 but not with JSON, so the dependencies are unknown: check "
            "that RECSYS_BASE_URL points at recsys-service", data, state, target.base_url,
        )
    if degraded or overall in ("degraded", "warn", "warning"):
        why = names(degraded) or f"overall status {overall!r}"
        return CheckResult("health", "warn", f"service is live and ready but degraded: {why}", data, state,
                           target.base_url)
    n = len(checks)
    return CheckResult(
        "health", "ok", f"service is live and ready; {n} dependency check{'s' if n != 1 else ''} ok", data, state,
        target.base_url,
    )
