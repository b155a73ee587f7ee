"""Steps of the serving runbooks: probes, manifest and config/rules reads, and the decisions built on them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from recsys_checks.core.errors import ChecksError
from recsys_checks.core.results import CheckResult
from recsys_checks.judge.invariants import hidden_share, weight_findings
from recsys_checks.judge.registry.artifact import short_version as short
from recsys_checks.judge.registry.history import check_manifest_history
from recsys_checks.judge.registry.manifest import check_manifest
from recsys_checks.judge.registry.published import ManifestState, read_manifest_state
from recsys_checks.judge.serving.documents import check_document, find_offending_change
from recsys_checks.judge.serving.health import check_health
from recsys_checks.judge.serving.probe import DEFAULT_USER, check_recommendations
from recsys_checks.judge.serving.served import check_served_vs_published
from recsys_checks.reach.settings import parse_duration
from recsys_checks.runbooks import pictures
from recsys_checks.runbooks.steps.fix import diagnosis, step_not_run

if TYPE_CHECKING:
    from recsys_checks.runbooks.run import RunbookRun

DEFAULT_MAX_AGE = "26h"

# Probe causes that a rollback of the manifest answers.
MANIFEST_CAUSES = ("empty_artifact", "missing_blob", "no_popularity", "artifact_invalid", "artifact_incompatible",
                   "manifest_missing")


# Probe causes a document wrong by its effect can explain: the service answering 500 or "store unreachable" to
# weights it cannot rank with, an empty or short answer from rules hiding the catalog.
_DOCUMENT_EXPLAINS = ("service_error", "store_unreachable", "config_weights", "rules_block_all", "short_answer",
                      "cache_stale")


def _guarded(check: str, run: RunbookRun, fn: Callable[[], CheckResult]) -> CheckResult:
    """``fn()``, or a ``fail`` result marked ``unread`` when the check cannot run (no URL or key, unreachable,
    refused): what the step meant to read was not read, which is never a finding about the deployment."""
    try:
        return fn()
    except ChecksError as exc:
        message = run.redact(str(exc))
        return CheckResult(check, "fail", message, {"error": message}, None, f"{run.tenant}/{run.surface}",
                           unread=message)


def _max_age(run: RunbookRun):
    return parse_duration(str(run.params.get("max_age") or DEFAULT_MAX_AGE))


def _user(run: RunbookRun) -> str:
    return str(run.params.get("user_id") or DEFAULT_USER)


# --------------------------------------------------------------------------------------------------- checks


def probe_recommendations(run: RunbookRun) -> CheckResult:
    """Ask the service for recommendations as a client would, and name the cause when the answer is empty."""
    return _guarded("recs.probe", run, lambda: check_recommendations(run.target, run.tenant, run.surface, user_id=_user(run)))


def manifest_status(run: RunbookRun) -> CheckResult:
    """The current manifest: present, valid, fresh, and every blob it names validates."""
    result = _guarded("manifest.status", run,
                      lambda: check_manifest(run.target, run.tenant, run.surface, max_age=_max_age(run)))
    pictures.versions(run, result)
    return result


def manifest_history(run: RunbookRun) -> CheckResult:
    """Published versions, newest first, with the valid rollback targets marked."""
    result = _guarded("manifest.history", run, lambda: check_manifest_history(run.target, run.tenant, run.surface))
    pictures.versions(run, result)
    return result


def served_vs_published_check(run: RunbookRun) -> CheckResult:
    """What the service serves against what the manifest publishes: consistent, cache stale or pipeline stale."""
    return _guarded("recs.served_vs_published", run, lambda: check_served_vs_published(
        run.target, run.tenant, run.surface, user_id=_user(run), max_age=_max_age(run)))


def published(run: RunbookRun) -> ManifestState:
    """The surface's published popularity (manifest → blob → items), read once per run and shared by the steps."""
    if "published" not in run.memo:
        try:
            run.memo["published"] = read_manifest_state(run.target, run.tenant, run.surface)
        except ChecksError as exc:
            run.memo["published"] = ManifestState("unreachable", run.redact(str(exc)))
    return run.memo["published"]


def config_and_rules(run: RunbookRun) -> CheckResult:
    """The tenant's current config and rules, judged by their effect: weights finite and in range, and the share
    of the catalog (the popularity artifact's items) that active block rules hide."""
    rows: list[dict[str, Any]] = []
    docs: dict[str, Any] = {}
    for kind in ("config", "rules"):
        result = _guarded(f"{kind}.show", run, lambda kind=kind: check_document(run.target, run.tenant, kind))
        problem = result.data.get("problem") or {}
        missing = result.status == "fail" and (problem.get("status") == 404 or "NOT_FOUND" in str(problem))
        refused = problem.get("status") in (401, 403)
        unread = result.unread or (f"the {kind} of {run.tenant}: the service refused the API key "
                                   f"({problem.get('status')} {problem.get('code')}); check RECSYS_API_KEY"
                                   if refused else None)
        if "document" in result.data:
            docs[kind] = result.data["document"]
        rows.append({"kind": kind, "status": result.status, "version": result.data.get("version"),
                     "missing": missing, "summary": result.summary, "unread": unread})
    findings, data = _document_findings(run, docs)
    data.update({"documents": rows, "missing": [r["kind"] for r in rows if r["missing"]]})
    failing = [r for r in rows if r["status"] == "fail"]
    summary = "; ".join(findings + [r["summary"] for r in rows])
    unread = [r["unread"] for r in rows if r["unread"]]
    if "rules" in docs and data["hidden"] is None and published(run).state == "unreachable":
        unread.append(f"the catalog the rules apply to (the popularity artifact): {published(run).detail}; what "
                      "the rules hide cannot be counted")
    unread_text = "; ".join(unread) or None
    status = "fail" if failing or findings else "ok"
    return CheckResult("config_rules.show", status, summary, data, None, run.tenant, unread=unread_text)


def _document_findings(run: RunbookRun, docs: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """What is wrong with the documents by their effect, and the numbers behind it."""
    findings: list[str] = []
    data: dict[str, Any] = {"findings": findings, "weights": None, "hidden": None}
    if "config" in docs:
        weights = weight_findings(docs["config"])
        data["weights"] = weights
        findings += [f"config: {w}" for w in weights]
    if "rules" in docs:
        state = published(run)
        if state.items:
            hidden = hidden_share(docs["rules"], state.items, run.surface)
            data["hidden"] = {"hidden": hidden.hidden, "total": hidden.total, "share": round(hidden.share, 4),
                              "uncounted_rules": hidden.uncounted}
            if hidden.too_much:
                findings.append(f"rules: {hidden.finding()}")
        pictures.rules(run, docs["rules"], state.items)
    return findings, data


def service_health(run: RunbookRun) -> CheckResult:
    """Liveness, readiness, each dependency and key metrics of the service."""
    return _guarded("health", run, lambda: check_health(run.target))


# --------------------------------------------------------------------------------------------------- diagnoses
#
# Each diagnosis names a cause of its runbook's decision table (runbooks/ID.yaml) and offers the arguments the run
# knows (the kinds that broke, the version a change came from); the row says which lever acts and which of those
# arguments it takes, what to do without a lever, and where to go next.


def _probe_cause(run: RunbookRun, step: str = "probe") -> tuple[str | None, CheckResult | None]:
    result = run.result(step)
    if not isinstance(result, CheckResult):
        return None, None
    if result.status != "fail":
        return None, result
    return result.data.get("cause") or "unknown", result


def _document_cause(run: RunbookRun, kind: str = "auto") -> CheckResult | None:
    """A diagnosis when the config-rules step found documents that are wrong by their effect (weights not finite or
    out of range, rules hiding most of the catalog); the lever reverts exactly the change that made them so."""
    docs = run.result("config-rules")
    if not isinstance(docs, CheckResult):
        return None
    weights = docs.data.get("weights") or []
    hidden = docs.data.get("hidden") or {}
    rules_bad = bool([f for f in docs.data.get("findings") or [] if f.startswith("rules:")])
    if weights and kind in ("auto", "config"):
        return _revert_offending(run, "config", "config_weights", "; ".join(weights),
                                 lambda doc: bool(weight_findings(doc)))
    if rules_bad and kind in ("auto", "rules"):
        items = published(run).items or []
        return _revert_offending(run, "rules", "rules_hide_catalog",
                                 f"active block rules hide {hidden.get('hidden')} of {hidden.get('total')} items "
                                 f"({hidden.get('share', 0):.0%})",
                                 lambda doc: hidden_share(doc, items, run.surface).too_much)
    return None


def _revert_offending(run: RunbookRun, kind: str, cause: str, what: str, is_bad: Callable[[Any], bool]) -> CheckResult:
    try:
        change = find_offending_change(run.target, run.tenant, kind, is_bad)
    except ChecksError as exc:
        change, why = None, f"; the audit log could not be read ({run.redact(str(exc))}), so the previous version is used"
    else:
        why = "" if change else "; the audit log shows no change that made it so, so the previous version is used"
    if change:
        when = f"the {kind} change of {change['when']} by {change['who'] or 'an unnamed actor'}"
        summary = (f"the {kind} of {run.tenant} is wrong by its effect: {what}; {when} ({short(change['before'])} → "
                   f"{short(change['after'])}) made it so: revert exactly that change")
        offered = {"kind": kind, "to": change["before"]}
    else:
        summary = f"the {kind} of {run.tenant} is wrong by its effect: {what}{why}"
        offered = {"kind": kind}
    return diagnosis(run, summary, cause=cause, lever_args=offered,
                     evidence=[{"offending_change": change}] if change else [])


def _broken_kinds(run: RunbookRun, *, condition: str | None = None) -> list[str]:
    """The kinds the manifest status found failing (only under ``condition`` when given)."""
    ms = run.result("manifest-status")
    if not isinstance(ms, CheckResult) or (condition is not None and ms.data.get("condition") != condition):
        return []
    return sorted({r["kind"] for r in ms.data.get("artifacts") or [] if r.get("status") == "fail"})


def _kind_or(run: RunbookRun, kinds: list[str]) -> dict[str, Any]:
    """The kind the operator named (parameter ``kind``), else the kinds found broken: what a rollback may move."""
    kind = str(run.params.get("kind") or "").strip()
    return {"kind": kind} if kind else {"kinds": kinds}


def _shrunk(run: RunbookRun) -> CheckResult | None:
    """A current version that lost most of the items of the one before it: roll back exactly the kinds that shrank."""
    ms = run.result("manifest-status")
    if not isinstance(ms, CheckResult) or ms.data.get("condition") != "shrunk":
        return None
    return diagnosis(run, f"{ms.summary}; roll the shrunken kind back to the version before it", cause="artifact_shrunk",
                     lever_args=_kind_or(run, _broken_kinds(run)))


def diagnose_empty_recs(run: RunbookRun) -> CheckResult:
    """Tell a bad publish from rules that filter everything, missing config/rules, a stale cache and a bad request."""
    cause, probe_result = _probe_cause(run)
    if probe_result is None:
        return step_not_run(run, "probe")
    documents = _document_cause(run)
    if documents is not None and (cause is None or cause in _DOCUMENT_EXPLAINS):
        return documents
    if cause is None:
        return _shrunk(run) or diagnosis(run, f"recommendations are served: {probe_result.summary}")
    docs = run.result("config-rules")
    missing = docs.data.get("missing") if isinstance(docs, CheckResult) else []
    if missing and cause in ("cache_stale", "unknown"):
        kinds = " and ".join(missing)
        return diagnosis(run, f"{run.tenant} has no {kinds} document: the service ranks without it; `recsys-checks "
                         f"{missing[0]} history --tenant {run.tenant}` shows earlier versions",
                         cause=f"{missing[0]}_missing")
    return _serving_diagnosis(run, cause, probe_result)


def _unknown_name(run: RunbookRun) -> CheckResult | None:
    """The diagnosis when a step found that the tenant or surface is not one the deployment has (a typo), else
    None: a name to check, not a manifest to restore."""
    for step in run.spec.steps:
        result = run.result(step.id)
        unknown = result.data.get("unknown") if isinstance(result, CheckResult) else None
        if isinstance(unknown, dict) and unknown.get("what") in ("tenant", "surface"):
            return diagnosis(run, result.summary, cause=f"unknown_{unknown['what']}")
    return None


def _offered(run: RunbookRun, probe_result: CheckResult) -> dict[str, Any]:
    """What the run knows that a lever may take: the kinds the manifest status found broken (a healthy kind keeps
    its version), and the documents the service ranks with an older version of."""
    broken = _broken_kinds(run)
    ms = run.result("manifest-status")
    if isinstance(ms, CheckResult) and ms.data.get("condition") == "missing":
        broken = []
    return {"kinds": broken, "targets": list(probe_result.data.get("stale_documents") or [])}


def _serving_diagnosis(run: RunbookRun, cause: str, probe_result: CheckResult) -> CheckResult:
    return diagnosis(run, probe_result.summary, cause=cause, lever_args=_offered(run, probe_result))


def diagnose_stale_manifest(run: RunbookRun) -> CheckResult:
    """Tell "the pipeline did not publish" from "the service serves a cache older than a fresh manifest" from
    "the manifest cannot be read"."""
    ms = run.result("manifest-status")
    svp = run.result("served-vs-published")
    if not isinstance(ms, CheckResult):
        return step_not_run(run, "manifest-status")
    condition = ms.data.get("condition")
    named = _unknown_name(run)
    if named is not None:
        return named
    if condition in ("missing", "invalid"):
        return diagnosis(run, f"the manifest cannot be used: {ms.summary}", cause="manifest_unreadable",
                         lever_args={"kinds": _broken_kinds(run)} if condition == "invalid" else {})
    if condition == "shrunk":
        return _shrunk(run)  # type: ignore[return-value]
    if condition == "stale" or ms.status == "fail" and condition is None:
        if condition is None:
            return diagnosis(run, f"the manifest cannot be read from here: {ms.summary}", cause="store_unreachable")
        if ms.data.get("stale") == "future":
            return diagnosis(run, f"a time in the manifest or its data is in the future: {ms.summary}",
                             cause="clock_skew")
        if ms.data.get("stale") == "data":
            return diagnosis(run, f"the manifest of {run.tenant}/{run.surface} was updated recently but names old "
                             f"data: {ms.summary}; a re-run or a repoint put old versions back (a re-run of an old "
                             "day writes no version record, only the manifest); `recsys-checks manifest history "
                             f"--tenant {run.tenant} --surface {run.surface}` lists the newer versions",
                             cause="data_stale")
        return diagnosis(run, f"the pipeline has not published {run.tenant}/{run.surface}: {ms.summary}",
                         cause="pipeline_not_published")
    if isinstance(svp, CheckResult) and svp.data.get("verdict") == "cache_stale":
        return diagnosis(run, svp.summary, cause="service_cache_stale")
    if isinstance(svp, CheckResult) and svp.status == "fail" and svp.data.get("verdict") not in ("pipeline_stale",):
        return diagnosis(run, svp.summary, cause="served_unexplained")
    return diagnosis(run, f"the manifest is fresh and the service serves it: {ms.summary}")


def diagnose_rollback_manifest(run: RunbookRun) -> CheckResult:
    """A broken current version (invalid, empty, missing blob, unreadable manifest) or an explicit request."""
    to = str(run.params.get("to_version") or "").strip()
    kind = str(run.params.get("kind") or "").strip() or None
    found = _rollback_found(run, kind)
    if to:
        return requested(run, found, f"repoint of {run.tenant}/{run.surface} to {to} requested",
                         lever_args={"to": to, "kind": kind}, to=to)
    return found


def requested(run: RunbookRun, found: CheckResult, summary: str, *, lever_args: dict[str, Any],
              to: str) -> CheckResult:
    """A diagnosis for a version the operator named: the lever of the row ``requested`` acts on the request, and
    what the checks found stays beside it. The cause is what was found (cause ``requested`` only when nothing was
    wrong), ``requested`` is the version asked for, and the summary says both."""
    if found.data.get("problem"):
        out = diagnosis(run, f"{found.summary}; {summary}", cause=found.data.get("cause"), lever_args=lever_args,
                        evidence=found.data.get("evidence"), lever_from="requested")
    else:
        out = diagnosis(run, summary, cause="requested", lever_args=lever_args)
    out.data["requested"] = to
    return out


def _rollback_found(run: RunbookRun, kind: str | None) -> CheckResult:
    """What the rollback-manifest diagnosis finds from the checks alone, before any version was asked for."""
    ms = run.result("manifest-status")
    cause, probe_result = _probe_cause(run)
    if probe_result is not None and cause in ("unknown_tenant", "unknown_surface"):
        # No manifest and no history is what an unknown name looks like, not a version to roll back from.
        return diagnosis(run, probe_result.summary, cause=cause)
    named = _unknown_name(run)
    if named is not None:
        return named
    if probe_result is not None and cause in MANIFEST_CAUSES:
        return diagnosis(run, probe_result.summary, cause=cause,
                         lever_args={"kind": kind} if kind else _offered(run, probe_result))
    if isinstance(ms, CheckResult) and ms.data.get("condition") in ("missing", "invalid"):
        failing = _broken_kinds(run)
        return diagnosis(run, ms.summary, cause="artifact_invalid" if failing else "manifest_unreadable",
                         lever_args={"kind": kind} if kind else {"kinds": failing})
    shrunk = _shrunk(run)
    if shrunk is not None:
        return shrunk
    if isinstance(ms, CheckResult) and ms.data.get("condition") == "stale":
        return diagnosis(run, ms.summary, cause="stale")
    return diagnosis(run, "the current version is valid and nothing asked for a rollback (set to_version to roll "
                     "back a version that is valid but wrong)")


def diagnose_config_rules(run: RunbookRun) -> CheckResult:
    """Config weights that leave no signal, or rules that block everything; or a revert the operator asked for."""
    kind = str(run.params.get("kind") or "auto")
    to = str(run.params.get("to_version") or "").strip() or None
    found = _config_rules_found(run, kind)
    if to and kind in ("config", "rules"):
        return requested(run, found, f"revert of the {kind} of {run.tenant} to {to} requested",
                         lever_args={"kind": kind, "to": to}, to=to)
    return found


def _config_rules_found(run: RunbookRun, kind: str) -> CheckResult:
    """What the rollback-config-rules diagnosis finds from the checks alone, before any version was asked for."""
    cause, probe_result = _probe_cause(run)
    if probe_result is None:
        return step_not_run(run, "probe")
    documents = _document_cause(run, kind)
    if documents is not None and (cause is None or cause in _DOCUMENT_EXPLAINS):
        return documents
    if cause is None:
        return diagnosis(run, f"recommendations are served: {probe_result.summary}")
    if cause == "document_cache_stale":
        # A served version older than the current document is a stale cache, not a reason to revert again.
        return diagnosis(run, probe_result.summary, cause=cause, lever_args=_offered(run, probe_result))
    if cause in ("config_weights", "rules_block_all"):
        asked = {"kind": kind} if kind in ("config", "rules") else {}
        return diagnosis(run, probe_result.summary, cause=cause, lever_args=asked)
    return diagnosis(run, f"{probe_result.summary} (the probe's cause: {cause})", cause="outside_config_rules",
                     evidence=[{"probe_cause": cause, "runbook": probe_result.data.get("runbook")}])


def diagnose_not_ready(run: RunbookRun) -> CheckResult:
    """Down, not ready (which dependency), or up but unable to read its artifact store."""
    health = run.result("health")
    cause, probe_result = _probe_cause(run)
    if not isinstance(health, CheckResult):
        return step_not_run(run, "health")
    data = health.data
    checks = (data.get("detail") or {}).get("checks") or []
    failing = [c["name"] for c in checks if c.get("status") not in ("ok", "up", "pass", "healthy", "ready")]
    if (data.get("live") or {}).get("status_code") == 404:
        return diagnosis(run, f"{run.target.base_url} has no /healthz: it is not recsys-service ({health.summary})",
                         cause="not_the_service")
    if data.get("error"):
        found, summary = "service_down", f"the service does not answer: {health.summary}"
    elif (data.get("live") or {}).get("status_code") not in (200, None) and not failing:
        found, summary = "service_down", health.summary
    elif (data.get("ready") or {}).get("status_code") not in (200, None):
        found, summary = "not_ready", health.summary
    elif failing:
        found, summary = "dependency_failed", health.summary
    elif cause == "store_unreachable" and probe_result is not None:
        found, summary = "store_unreachable", probe_result.summary
    elif cause == "service_error" and probe_result is not None:
        return diagnosis(run, probe_result.summary, cause="service_error")
    else:
        return diagnosis(run, f"the service is live and ready: {health.summary}")
    return diagnosis(run, summary, cause=found, evidence=[{"dependency": name} for name in failing],
                     values={"failing": ", ".join(failing) or "the service process"})


# --------------------------------------------------------------------------------------------------- verification


def verify_recommendations(run: RunbookRun) -> CheckResult:
    """After the fix: the service answers the probe with items."""
    return probe_recommendations(run)


def verify_manifest(run: RunbookRun) -> CheckResult:
    """After the fix: the manifest is present, valid and fresh."""
    return manifest_status(run)


def verify_served(run: RunbookRun) -> CheckResult:
    """After the fix: the service serves what the manifest publishes."""
    return served_vs_published_check(run)


def verify_health(run: RunbookRun) -> CheckResult:
    """After the fix: the service is live and ready and every dependency answers."""
    return service_health(run)
