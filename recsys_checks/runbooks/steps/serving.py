"""Steps of the serving runbooks: probes, manifest and config/rules reads, and the decisions built on them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from recsys_checks.core.errors import ChecksError
from recsys_checks.core.results import CheckResult
from recsys_checks.judge.invariants import config_shape_findings, hidden_share, rules_shape_findings, weight_findings
from recsys_checks.judge.registry.artifact import short_version as short
from recsys_checks.judge.registry.history import check_manifest_history
from recsys_checks.judge.registry.manifest import check_manifest
from recsys_checks.judge.registry.published import ManifestState, read_manifest_state
from recsys_checks.judge.serving.clients import DEFAULT_K, DOCUMENT_CAUSES, check_client_answers
from recsys_checks.judge.serving.documents import check_document, find_offending_change
from recsys_checks.judge.serving.health import check_health
from recsys_checks.judge.serving.probe import DEFAULT_USER, check_recommendations
from recsys_checks.judge.serving.served import check_served_vs_published
from recsys_checks.reach.settings import parse_duration
from recsys_checks.runbooks import pictures
from recsys_checks.runbooks.steps.fix import combine, diagnosis, step_not_run

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


def _k(run: RunbookRun) -> int:
    """The ``k`` the surface is used with (parameter ``k``)."""
    return int(run.params.get("k") or DEFAULT_K)


# --------------------------------------------------------------------------------------------------- checks


def probe_recommendations(run: RunbookRun) -> CheckResult:
    """Ask the service for recommendations as a client would, and name the cause when the answer is empty."""
    return _guarded("recs.probe", run, lambda: check_recommendations(run.target, run.tenant, run.surface, user_id=_user(run)))


def client_answers(run: RunbookRun) -> CheckResult:
    """Ask as every client asks (without and with anchors, at the surface's k, per segment) and judge each answer
    against what the manifest publishes."""
    return _guarded("recs.clients", run, lambda: check_client_answers(run.target, run.tenant, run.surface, k=_k(run),
                                                                      user_id=_user(run)))


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
        unread = result.unread or _document_unread(run, kind, problem)
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


def _document_unread(run: RunbookRun, kind: str, problem: dict[str, Any]) -> str | None:
    """Why the document was not read when the service answered without it: the key refused (401, 403), or the
    service failing (5xx: its admin backend down or overloaded). Either way nothing is known about the document."""
    status = problem.get("status")
    if status in (401, 403):
        return (f"the {kind} of {run.tenant}: the service refused the API key ({status} {problem.get('code')}); "
                "check RECSYS_API_KEY")
    if isinstance(status, int) and status >= 500:
        return (f"the {kind} of {run.tenant}: the service answered {status} {problem.get('code') or ''}".rstrip()
                + "; try again, and see the service-not-ready runbook if it persists")
    return None


def _document_findings(run: RunbookRun, docs: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """What is wrong with the documents by their effect, and the numbers behind it."""
    findings: list[str] = []
    data: dict[str, Any] = {"findings": findings, "weights": None, "hidden": None}
    shapes = [f.to_dict() for f in (config_shape_findings(docs["config"], _k(run)) if "config" in docs else [])]
    shapes += [f.to_dict() for f in (rules_shape_findings(docs["rules"]) if "rules" in docs else [])]
    data["shape_findings"] = shapes
    findings += [f"{f['field']} ({f['cause']}): {f['summary']}" for f in shapes]
    if "config" in docs:
        weights = weight_findings(docs["config"])
        data["weights"] = weights
        findings += [f"config: {w}" for w in weights]
    if "rules" in docs and not rules_shape_findings(docs["rules"]):
        state = published(run)
        if state.items:
            hidden = hidden_share(docs["rules"], state.items, run.surface)
            data["hidden"] = {"hidden": hidden.hidden, "total": hidden.total, "share": round(hidden.share, 4),
                              "uncounted_rules": hidden.uncounted}
            data["hidden"]["too_much"] = hidden.too_much
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


def _document_causes(run: RunbookRun, kind: str = "auto") -> list[CheckResult]:
    """A diagnosis for each way the config-rules step found the documents wrong: by their shape (outside the suite's
    schema, a limit below the surface's k, rules that are not a list) or by their effect (weights not finite or out
    of range, rules hiding most of the catalog); each lever reverts exactly the change that made them so."""
    docs = run.result("config-rules")
    if not isinstance(docs, CheckResult):
        return []
    found: list[CheckResult] = []
    shapes = docs.data.get("shape_findings") or []
    for cause in dict.fromkeys(f["cause"] for f in shapes):
        doc_kind = "rules" if cause.startswith("rules") else "config"
        if kind not in ("auto", doc_kind):
            continue
        what = "; ".join(f["summary"] for f in shapes if f["cause"] == cause)
        found.append(_revert_offending(run, doc_kind, cause, what, _shape_test(cause, _k(run))))
    weights = docs.data.get("weights") or []
    hidden = docs.data.get("hidden") or {}
    rules_bad = bool(hidden.get("too_much"))
    if weights and kind in ("auto", "config"):
        found.append(_revert_offending(run, "config", "config_weights", "; ".join(weights),
                                       lambda doc: bool(weight_findings(doc))))
    if rules_bad and kind in ("auto", "rules"):
        items = published(run).items or []
        found.append(_revert_offending(run, "rules", "rules_hide_catalog",
                                       f"active block rules hide {hidden.get('hidden')} of {hidden.get('total')} "
                                       f"items ({hidden.get('share', 0):.0%})",
                                       lambda doc: hidden_share(doc, items, run.surface).too_much))
    return found


def _shape_test(cause: str, k: int) -> Callable[[Any], bool]:
    """Whether a version of a document has the shape finding ``cause`` (to find the change that introduced it)."""
    if cause == "rules_not_list":
        return lambda doc: any(f.cause == cause for f in rules_shape_findings(doc))
    return lambda doc: any(f.cause == cause for f in config_shape_findings(doc, k))


def _client_causes(run: RunbookRun, probe_cause: str | None, *, outside: str | None = None) -> list[CheckResult]:
    """A diagnosis for each cause the clients step found, its shapes together. What the probe already classified
    (a failing plain request, an unreadable popularity artifact) is left to the probe's deeper cause; what is wrong
    with the tenant's documents is the probe's to explain never. ``outside``: the row that hands off a cause this
    runbook's table does not have (named in its evidence)."""
    res = run.result("clients")
    if not isinstance(res, CheckResult) or res.status != "fail" or res.unread:
        return []
    findings = [f for f in res.data.get("findings") or [] if f["cause"] in DOCUMENT_CAUSES or probe_cause is None
                or not (f["shape"].startswith("plain") or (f.get("evidence") or {}).get("kind") == "popularity")]
    if isinstance(run.result("config-rules"), CheckResult):  # the documents step judged the shape, with its lever
        findings = [f for f in findings if f["cause"] != "rules_not_list"]
    out = []
    for cause in dict.fromkeys(f["cause"] for f in findings):
        mine = [f for f in findings if f["cause"] == cause]
        what = "; ".join(dict.fromkeys(f["summary"] for f in mine))
        evidence = [{"shape": f["shape"], **(f.get("evidence") or {})} for f in mine]
        if outside is not None and run.spec.cause(cause) is None:
            out.append(diagnosis(run, f"{what} (the cause: {cause})", cause=outside,
                                 evidence=[{"probe_cause": cause}, *evidence]))
        elif cause == "artifact_unreadable":
            kinds = sorted({str(e["kind"]) for e in evidence if e.get("kind")})
            out.append(diagnosis(run, what, cause=cause, lever_args=_kind_or(run, kinds), evidence=evidence))
        elif cause == "rules_pin_unknown":
            pinned = {i for e in evidence for i in e.get("pinned_by_rules") or []}
            out.append(_revert_offending(run, "rules", cause, what, functools.partial(_pins_any, items=pinned)))
        elif cause == "answer_capped":
            out.append(_revert_offending(run, "config", cause, what, _shape_test("config_max_k_low", _k(run))))
        elif cause == "rules_not_list":
            out.append(_revert_offending(run, "rules", cause, what, _shape_test(cause, _k(run))))
        else:
            out.append(diagnosis(run, what, cause=cause, evidence=evidence))
    return out


def _pins_any(rules: Any, items: set[str]) -> bool:
    return isinstance(rules, list) and any(
        isinstance(r, dict) and r.get("action") == "pin" and set(r.get("item_ids") or []) & items for r in rules)


def _stale(run: RunbookRun) -> CheckResult | None:
    """The manifest or its data older than the limit, beside another cause: what no lever of a serving runbook
    fixes (the pipeline must publish), so it is reported and handed off."""
    ms = run.result("manifest-status")
    if not isinstance(ms, CheckResult) or ms.data.get("condition") != "stale":
        return None
    return diagnosis(run, ms.summary, cause="manifest_stale")


def _is(kind: str) -> str:
    return "are" if kind == "rules" else "is"


def _revert_offending(run: RunbookRun, kind: str, cause: str, what: str, is_bad: Callable[[Any], bool]) -> CheckResult:
    try:
        change = find_offending_change(run.target, run.tenant, kind, is_bad)
    except ChecksError as exc:
        change, why = None, f"; the audit log could not be read ({run.redact(str(exc))}), so the previous version is used"
    else:
        why = "" if change else "; the audit log shows no change that made it so, so the previous version is used"
    if change:
        when = f"the {kind} change of {change['when']} by {change['who'] or 'an unnamed actor'}"
        summary = (f"the {kind} of {run.tenant} {_is(kind)} wrong: {what}; {when} ({short(change['before'])} → "
                   f"{short(change['after'])}) made it so: revert exactly that change")
        offered = {"kind": kind, "to": change["before"]}
    else:
        summary = f"the {kind} of {run.tenant} {_is(kind)} wrong: {what}{why}"
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
    """Every cause of an empty or wrong answer that holds: a bad publish, documents wrong by their shape or effect,
    missing config/rules, a stale cache, a bad request, what clients of each shape get, and the data's age."""
    cause, probe_result = _probe_cause(run)
    if probe_result is None:
        return step_not_run(run, "probe")
    documents = _document_causes(run)
    found: list[CheckResult | None] = list(documents)
    if cause is not None and not (documents and cause in _DOCUMENT_EXPLAINS):
        found.append(_missing_document(run, cause) or _serving_diagnosis(run, cause, probe_result))
    found += [_shrunk(run), *_client_causes(run, cause), _stale(run)]
    return combine(run, found, f"recommendations are served: {probe_result.summary}")


def _missing_document(run: RunbookRun, cause: str) -> CheckResult | None:
    docs = run.result("config-rules")
    missing = docs.data.get("missing") if isinstance(docs, CheckResult) else []
    if not missing or cause not in ("cache_stale", "unknown"):
        return None
    kinds = " and ".join(missing)
    return diagnosis(run, f"{run.tenant} has no {kinds} document: the service ranks without it; `recsys-checks "
                     f"{missing[0]} history --tenant {run.tenant}` shows earlier versions", cause=f"{missing[0]}_missing")


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
    elif not isinstance(ms, CheckResult) and probe_result.data.get("broken_kind"):
        broken = [str(probe_result.data["broken_kind"])]  # no manifest step in this runbook: what the probe read
    return {"kinds": broken, "targets": list(probe_result.data.get("stale_documents") or [])}


def _serving_diagnosis(run: RunbookRun, cause: str, probe_result: CheckResult) -> CheckResult:
    return diagnosis(run, probe_result.summary, cause=cause, lever_args=_offered(run, probe_result))


def diagnose_stale_manifest(run: RunbookRun) -> CheckResult:
    """Every cause that holds, of "the pipeline did not publish", "the service serves a cache older than the
    manifest" and "the manifest cannot be read": a manifest days old whose service also serves an older version
    than it names has both (the re-run publishes, the invalidation makes the service serve it)."""
    ms = run.result("manifest-status")
    if not isinstance(ms, CheckResult):
        return step_not_run(run, "manifest-status")
    named = _unknown_name(run)
    if named is not None:
        return named
    manifest = _manifest_cause(run, ms)
    return combine(run, [manifest, _served_cause(run, explained=manifest is not None)],
                   f"the manifest is fresh and the service serves it: {ms.summary}")


def _manifest_cause(run: RunbookRun, ms: CheckResult) -> CheckResult | None:
    """What the manifest status says is wrong with the manifest or its data, or None."""
    condition = ms.data.get("condition")
    if condition in ("missing", "invalid"):
        return diagnosis(run, f"the manifest cannot be used: {ms.summary}", cause="manifest_unreadable",
                         lever_args={"kinds": _broken_kinds(run)} if condition == "invalid" else {})
    if condition == "shrunk":
        return _shrunk(run)
    if ms.status == "fail" and condition is None:
        return diagnosis(run, f"the manifest cannot be read from here: {ms.summary}", cause="store_unreachable")
    if condition != "stale":
        return None
    if ms.data.get("stale") == "future":
        return diagnosis(run, f"a time in the manifest or its data is in the future: {ms.summary}", cause="clock_skew")
    if ms.data.get("stale") == "data":
        return diagnosis(run, f"the manifest of {run.tenant}/{run.surface} was updated recently but names old "
                         f"data: {ms.summary}; a re-run or a repoint put old versions back (a re-run of an old "
                         "day writes no version record, only the manifest); `recsys-checks manifest history "
                         f"--tenant {run.tenant} --surface {run.surface}` lists the newer versions", cause="data_stale")
    return diagnosis(run, f"the pipeline has not published {run.tenant}/{run.surface}: {ms.summary}",
                     cause="pipeline_not_published")


def _served_cause(run: RunbookRun, *, explained: bool) -> CheckResult | None:
    """What the service serves against the manifest: an older published version (its cache is stale, whatever
    else holds), or a list nothing explains (only when the manifest's own cause does not already explain it)."""
    svp = run.result("served-vs-published")
    if not isinstance(svp, CheckResult):
        return None
    if svp.data.get("verdict") == "cache_stale":
        return diagnosis(run, svp.summary, cause="service_cache_stale")
    if not explained and svp.status == "fail" and svp.data.get("verdict") != "pipeline_stale":
        return diagnosis(run, svp.summary, cause="served_unexplained")
    return None


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
    """What the rollback-manifest diagnosis finds from the checks alone, before any version was asked for: every
    broken kind, what clients of each shape get, and the data's age."""
    ms = run.result("manifest-status")
    cause, probe_result = _probe_cause(run)
    if probe_result is not None and cause in ("unknown_tenant", "unknown_surface"):
        # No manifest and no history is what an unknown name looks like, not a version to roll back from.
        return diagnosis(run, probe_result.summary, cause=cause)
    named = _unknown_name(run)
    if named is not None:
        return named
    found: list[CheckResult | None] = []
    if probe_result is not None and cause in MANIFEST_CAUSES:
        found.append(diagnosis(run, probe_result.summary, cause=cause,
                               lever_args={"kind": kind} if kind else _offered(run, probe_result)))
    elif probe_result is not None and cause == "cache_stale":
        # The manifest is right and the service serves an older cache of it: a rollback whose invalidation was cut
        # short (a crash between the swap and the invalidation). Finishing it is the invalidation.
        found.append(diagnosis(run, probe_result.summary, cause=cause))
    if isinstance(ms, CheckResult) and ms.data.get("condition") in ("missing", "invalid") \
            and not (probe_result is not None and cause in MANIFEST_CAUSES):  # the probe named it already
        failing = _broken_kinds(run)
        found.append(diagnosis(run, ms.summary, cause="artifact_invalid" if failing else "manifest_unreadable",
                               lever_args={"kind": kind} if kind else {"kinds": failing}))
    found += [_shrunk(run), *_client_causes(run, cause)]
    if isinstance(ms, CheckResult) and ms.data.get("condition") == "stale":
        found.append(diagnosis(run, ms.summary, cause="stale"))
    return combine(run, found, "the current version is valid and nothing asked for a rollback (set to_version to "
                   "roll back a version that is valid but wrong)")


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
    """What the rollback-config-rules diagnosis finds from the checks alone, before any version was asked for:
    every document wrong by its shape or effect, what clients get because of it, and what lies outside the
    documents (handed off)."""
    cause, probe_result = _probe_cause(run)
    if probe_result is None:
        return step_not_run(run, "probe")
    documents = _document_causes(run, kind)
    found: list[CheckResult | None] = list(documents)
    if cause is not None and not (documents and cause in _DOCUMENT_EXPLAINS):
        found.append(_probe_document_cause(run, cause, kind, probe_result))
    found += _client_causes(run, cause, outside="outside_config_rules")
    return combine(run, found, f"recommendations are served: {probe_result.summary}")


def _probe_document_cause(run: RunbookRun, cause: str, kind: str, probe_result: CheckResult) -> CheckResult:
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
    elif cause in ("artifact_invalid", "artifact_incompatible") and probe_result is not None:
        # Up and ready, but the artifact it serves from cannot be read: an artifact problem, rolled back by kind.
        found, summary = cause, probe_result.summary
    elif cause == "unknown_tenant" and probe_result is not None:
        found, summary = cause, probe_result.summary  # up and ready: the name asked for is the problem
    elif cause == "service_error" and probe_result is not None:
        found, summary = "service_error", probe_result.summary
    else:
        found, summary = None, ""
    main = diagnosis(run, summary, cause=found, evidence=[{"dependency": name} for name in failing],
                     values={"failing": ", ".join(failing) or "the service process"},
                     lever_args=_offered(run, probe_result) if found in MANIFEST_CAUSES and probe_result else None)
    if found == "unknown_tenant":
        return main  # nothing else is judged for a tenant the service does not have
    return combine(run, [main, *_client_causes(run, cause)], f"the service is live and ready: {health.summary}")


# --------------------------------------------------------------------------------------------------- verification


def verify_recommendations(run: RunbookRun) -> CheckResult:
    """After the fix: the service answers the probe with items."""
    return probe_recommendations(run)


def verify_clients(run: RunbookRun) -> CheckResult:
    """After the fix: every client shape is answered in full with published items."""
    return client_answers(run)


def verify_artifacts(run: RunbookRun) -> CheckResult:
    """After a rollback: the manifest is valid and every artifact it names validates. A rollback lands on older data
    by its nature, so the data's age is not a failure here but a follow-up (re-run the pipeline)."""
    result = manifest_status(run)
    if result.unread or result.data.get("condition") != "stale":
        return result
    follow_up = (f"{result.summary}; the clients are served, from older data: re-run the pipeline for the days "
                 f"since (`recsys-checks manifest status --tenant {run.tenant} --surface {run.surface}`), or follow "
                 "the stale-manifest runbook")
    data = {**result.data, "follow_up": follow_up}
    return CheckResult(result.check, "warn", f"the manifest and its artifacts are valid; {follow_up}", data,
                       result.state, result.target)


def verify_manifest(run: RunbookRun) -> CheckResult:
    """After the fix: the manifest is present, valid and fresh."""
    return manifest_status(run)


def verify_served(run: RunbookRun) -> CheckResult:
    """After the fix: the service serves what the manifest publishes."""
    return served_vs_published_check(run)


def verify_health(run: RunbookRun) -> CheckResult:
    """After the fix: the service is live and ready and every dependency answers."""
    return service_health(run)
