"""The verdict rule and the decisions of each runbook, on results built by hand (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import specskit

from recsys_checks.core.results import ActionResult, CheckResult, Plan
from recsys_checks.reach.settings import Target
from recsys_checks.runbooks.remedy import Remedy
from recsys_checks.runbooks.run import RunbookRun, changes_of
from recsys_checks.runbooks.steps import fix, pipelines, serving
from recsys_checks.runbooks.verdict import decide


def _run(runbook_id: str, tmp_path: Path, **params) -> RunbookRun:
    target = Target.from_env({"RECSYS_BASE_URL": "http://127.0.0.1:9",
                              "RECSYS_ARTIFACT_MANIFEST_TEMPLATE": f"file://{tmp_path}/current/{{tenant}}/{{surface}}/manifest.json"})
    return RunbookRun(runbook_id, spec=specskit.spec(runbook_id), target=target,
                      record_path=tmp_path / "out" / "record.json", **params)


def _check(name: str, status: str, **data) -> CheckResult:
    return CheckResult(name, status, f"{name} {status}", data)


def _probe(cause: str | None) -> CheckResult:
    return _check("recs.probe", "fail" if cause else "ok", cause=cause, runbook=None)


# --- the verdict rule -------------------------------------------------------------------------------------------


def _all_read(run: RunbookRun) -> None:
    """Every read step of the run's spec ran and found nothing wrong."""
    for step in run.spec.steps:
        if step.role in ("check", "info", "verify"):
            run.results[step.id] = _check(step.id, "ok")


def test_nothing_found_is_healthy(tmp_path):
    run = _run("empty-recs", tmp_path)
    _all_read(run)
    run.results["diagnose"] = fix.diagnosis(run, "fine")
    assert tuple(decide(run.spec, run.results, None)) == ("healthy", "")


def test_found_and_dry_run_is_action_required(tmp_path):
    run = _run("empty-recs", tmp_path)
    run.results["diagnose"] = fix.diagnosis(run, "empty", cause="empty_artifact")
    run.results["fix"] = Remedy("planned", "manifest-rollback", "would roll back")
    verdict, why = decide(run.spec, run.results, None)
    assert verdict == "action-required" and why.startswith("dry run: would roll back")


def test_found_fixed_and_verified_is_mitigated(tmp_path):
    run = _run("empty-recs", tmp_path)
    run.results["diagnose"] = fix.diagnosis(run, "empty", cause="empty_artifact")
    run.results["fix"] = Remedy("applied", "manifest-rollback", "rolled back")
    run.results["verify"] = _check("recs.probe", "ok")
    assert decide(run.spec, run.results, None)[0] == "action-required"  # not every client shape verified yet
    run.results["verify-clients"] = _check("recs.clients", "ok")
    assert decide(run.spec, run.results, None)[0] == "mitigated"


def test_a_fix_that_does_not_verify_is_not_mitigated(tmp_path):
    run = _run("empty-recs", tmp_path)
    run.results["diagnose"] = fix.diagnosis(run, "empty", cause="empty_artifact")
    run.results["fix"] = Remedy("applied", "manifest-rollback", "rolled back")
    run.results["verify"] = _check("recs.probe", "fail")
    verdict, why = decide(run.spec, run.results, None)
    assert verdict == "action-required" and "verification failed at verify" in why


def test_no_lever_is_action_required_with_the_reason(tmp_path):
    run = _run("empty-recs", tmp_path)
    run.results["diagnose"] = fix.diagnosis(run, "filters", cause="request_filters")
    run.results["fix"] = fix.apply_fix(run)
    verdict, why = decide(run.spec, run.results, None)
    assert verdict == "action-required" and "fix the caller's request" in why


def test_a_step_error_or_a_missing_diagnosis_is_failed(tmp_path):
    run = _run("empty-recs", tmp_path)
    assert decide(run.spec, run.results, None)[0] == "failed"
    assert tuple(decide(run.spec, run.results, {"step": "probe", "error": "boom"})) == (
        "failed", "step probe could not run: boom")


def test_changes_list_before_after_and_audit_of_applied_actions_only():
    plan = Plan("manifest.rollback", "m", "e1", [{"what": "current.popularity", "before": "a", "after": "b"}])
    applied = ActionResult("applied", "done", plan, audit="file:///audit/1.json")
    planned = ActionResult("planned", "would", plan)
    remedy = Remedy("applied", "manifest-rollback", "x", [applied, planned])
    assert changes_of(remedy) == [{"action": "manifest.rollback", "what": "current.popularity", "before": "a",
                                   "after": "b", "audit": "file:///audit/1.json"}]


def test_the_run_record_is_written_and_secret_free(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_API_KEY", "sekrit-value-123")
    run = _run("empty-recs", tmp_path, reason="drill")
    _all_read(run)
    run.results["diagnose"] = fix.diagnosis(run, "fine")
    doc = run.finish()
    stored = json.loads((tmp_path / "out" / "record.json").read_text())
    assert stored["verdict"] == doc["verdict"] == "healthy"
    assert stored["parameters"]["reason"] == "drill" and stored["execute"] is False
    assert "sekrit-value-123" not in json.dumps(stored)


def test_a_secret_in_a_step_summary_is_redacted(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_API_KEY", "sekrit-value-123")
    run = _run("empty-recs", tmp_path)
    run.step("probe", lambda r: _check("recs.probe", "fail", cause="auth", note="key sekrit-value-123"), show=False)
    text = (tmp_path / "out" / "record.json").read_text()
    assert "sekrit-value-123" not in text and "***" in text


# --- decisions ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cause", "lever", "args"), [
    ("empty_artifact", "manifest-rollback", {"kind": "popularity"}),
    ("missing_blob", "manifest-rollback", {"kind": "popularity"}),
    ("artifact_incompatible", "manifest-rollback", {}),
    ("rules_block_all", "doc-revert", {"kind": "rules"}),
    ("config_weights", "doc-revert", {"kind": "config"}),
    ("cache_stale", "cache-invalidate", {"targets": ["popularity"]}),
    ("request_filters", None, {}),
    ("store_unreachable", None, {}),
])
def test_empty_recs_pulls_the_smallest_lever_for_each_cause(tmp_path, cause, lever, args):
    run = _run("empty-recs", tmp_path)
    run.results["probe"] = _probe(cause)
    run.results["config-rules"] = _check("config_rules.show", "ok", missing=[])
    found = serving.diagnose_empty_recs(run)
    assert found.data["cause"] == cause and found.data["lever"] == lever
    assert found.data["lever_args"] == args
    assert (found.data["no_lever"] is None) == (lever is not None)


def test_empty_recs_names_missing_config_before_guessing_a_stale_cache(tmp_path):
    run = _run("empty-recs", tmp_path)
    run.results["probe"] = _probe("cache_stale")
    run.results["config-rules"] = _check("config_rules.show", "fail", missing=["rules"])
    found = serving.diagnose_empty_recs(run)
    assert found.data["cause"] == "rules_missing" and found.data["lever"] is None


def test_empty_recs_is_quiet_when_items_are_served(tmp_path):
    run = _run("empty-recs", tmp_path)
    run.results["probe"] = _probe(None)
    assert serving.diagnose_empty_recs(run).data["problem"] is False


@pytest.mark.parametrize(("condition", "verdict", "command", "cause", "lever"), [
    ("stale", "pipeline_stale", "", "pipeline_not_published", None),
    ("stale", "pipeline_stale", "publish {tenant}", "pipeline_not_published", "command"),
    ("healthy", "cache_stale", "", "service_cache_stale", "cache-invalidate"),
    ("invalid", None, "", "manifest_unreadable", "manifest-rollback"),
    ("missing", None, "", "manifest_unreadable", "manifest-rollback"),
    ("healthy", "consistent", "", None, None),
])
def test_stale_manifest_tells_pipeline_from_cache_from_unreadable(tmp_path, condition, verdict, command, cause, lever):
    run = _run("stale-manifest", tmp_path, rerun_command=command)
    run.results["manifest-status"] = _check("manifest.status", "ok" if condition == "healthy" else "fail",
                                            condition=condition)
    if verdict:
        run.results["served-vs-published"] = _check("recs.served_vs_published",
                                                    "ok" if verdict == "consistent" else "fail", verdict=verdict)
    found = serving.diagnose_stale_manifest(run)
    assert found.data["cause"] == cause and found.data["lever"] == lever


@pytest.mark.parametrize(("command", "levers"), [("", [None, "cache-invalidate"]),
                                                  ("publish {tenant}", ["command", "cache-invalidate"])])
def test_stale_manifest_reports_a_missed_publish_and_a_stale_cache_at_once(tmp_path, command, levers):
    """A manifest days old whose service also serves an older version than it names: both causes, in the table's
    order (publish, then invalidate), each with its own lever; neither hides the other."""
    run = _run("stale-manifest", tmp_path, rerun_command=command)
    run.results["manifest-status"] = _check("manifest.status", "fail", condition="stale", stale="manifest")
    run.results["served-vs-published"] = _check("recs.served_vs_published", "fail", verdict="cache_stale")
    found = serving.diagnose_stale_manifest(run)
    entries = fix.detected_of(found)
    assert [e["cause"] for e in entries] == ["pipeline_not_published", "service_cache_stale"]
    assert [e["lever"] for e in entries] == levers
    assert found.summary.startswith("2 problems: ")


@pytest.mark.parametrize("condition", ["invalid", "missing", "stale"])
def test_stale_manifest_leaves_what_the_manifest_explains_to_the_manifest(tmp_path, condition):
    """A service answer the manifest's own cause explains (it cannot compare, it serves nothing) adds no cause."""
    run = _run("stale-manifest", tmp_path)
    run.results["manifest-status"] = _check("manifest.status", "fail", condition=condition, stale="manifest")
    run.results["served-vs-published"] = _check("recs.served_vs_published", "fail", verdict="manifest_unusable")
    assert len(fix.detected_of(serving.diagnose_stale_manifest(run))) == 1


@pytest.mark.parametrize("runbook_id", ["service-not-ready", "rollback-manifest"])
def test_an_artifact_rollback_comes_with_the_revert_of_a_wrapped_rules_document(tmp_path, runbook_id, monkeypatch):
    """Requests answer 422 and the rules document is wrapped: both are found, the rollback first, each with its
    lever, so the run cannot call the rollback alone a mitigation while a recall is served."""
    monkeypatch.setattr(serving, "find_offending_change", lambda *a, **k: None)
    run = _run(runbook_id, tmp_path)
    run.results["health"] = _check("health", "ok", live={"status_code": 200}, ready={"status_code": 200})
    run.results["manifest-status"] = _check("manifest.status", "ok", condition="healthy")
    run.results["probe"] = _probe("artifact_incompatible")
    run.results["clients"] = _check("recs.clients", "fail", findings=[
        {"cause": "requests_fail", "shape": "plain", "summary": "requests without anchors answer 422", "evidence": {}},
        {"cause": "rules_not_list", "shape": "rules", "summary": "the rules document is a JSON object",
         "evidence": {"field": "rules", "blocked_served": {}}}])
    entries = fix.detected_of(next(s for s in run.spec.steps if s.role == "diagnose").resolve()(run))
    assert [(e["cause"], e["lever"]) for e in entries] == [("artifact_incompatible", "manifest-rollback"),
                                                           ("rules_not_list", "doc-revert")]
    assert entries[1]["lever_args"] == {"kind": "rules"}


def test_not_ready_names_the_failing_dependency_and_uses_only_a_given_command(tmp_path):
    run = _run("service-not-ready", tmp_path)
    health = _check("health", "fail", live={"status_code": 200}, ready={"status_code": 503},
                    detail={"checks": [{"name": "database", "status": "fail"}]})
    run.results["health"] = health
    run.results["probe"] = _probe(None)
    found = serving.diagnose_not_ready(run)
    assert found.data["cause"] == "not_ready" and found.data["lever"] is None
    assert "database" in found.data["no_lever"]
    run = _run("service-not-ready", tmp_path, recovery_command="systemctl restart recsys")
    run.results["health"], run.results["probe"] = health, _probe(None)
    assert serving.diagnose_not_ready(run).data["lever"] == "command"


def test_not_ready_is_quiet_on_a_ready_service(tmp_path):
    run = _run("service-not-ready", tmp_path)
    run.results["health"] = _check("health", "ok", live={"status_code": 200}, ready={"status_code": 200},
                                   detail={"checks": [{"name": "database", "status": "ok"}]})
    run.results["probe"] = _probe(None)
    assert serving.diagnose_not_ready(run).data["problem"] is False


# --- pipelines -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "kind", "rule"), [
    ("run failed: event limit exceeded: 1200 > 600", "limit_exceeded", "max_events_per_run"),
    ("run failed: validation_failed: distinct item count exceeds max: validation_failed\nitems=6 max=5",
     "limit_exceeded", "max_distinct_items_per_run"),
    ("run failed: invalid exposure event: item_id must be set", "validation_failed", "bad_exposure_event"),
    ("run failed: validation_failed: cooc version hash mismatch: validation_failed\ncomputed=1 payload=2",
     "validation_failed", "version_hash"),
    ("run failed: dependency: read canonical events: dependency\nopen /x: no such file", "dependency",
     "read_canonical_events"),
    ("run failed: segment must be set", "invalid_argument", "segment"),
])
def test_failures_are_classified_down_to_the_rule(line, kind, rule):
    failure = pipelines.classify(f"some output\n{line}\n")
    assert failure is not None and (failure.kind, failure.rule) == (kind, rule)


def test_limit_failure_carries_observed_and_limit_and_day():
    failure = pipelines.classify("2026/01/03 01:30:00 INFO ingest: start tenant=demo surface=home "
                                 "start=2026-01-02T00:00:00Z end=2026-01-03T00:00:00Z\n"
                                 "run failed: event limit exceeded: 1200 > 600")
    assert (failure.observed, failure.limit, failure.day) == (1200, 600, "2026-01-02")


def test_a_log_without_a_failure_classifies_as_none():
    """Only a log that ends on a stage line of the suite's logger shows no failure; any other last line is unknown."""
    assert pipelines.classify("2026/01/03 01:30:00 INFO publish: done tenant=demo surface=home\n") is None
    assert pipelines.classify("published demo/home day 2026-01-02\nok\n").kind == "unclassified"


def _pipeline_run(tmp_path, runbook_id, *, kind, rule, day, checkpoint_day, condition="healthy", command=""):
    run = _run(runbook_id, tmp_path, rerun_command=command)
    run.results["job-log"] = _check("pipeline.job_log", "fail", given=True, kind=kind, rule=rule, day=day,
                                    observed=10, limit=5)
    run.results["checkpoint"] = _check("pipeline.checkpoint", "ok", given=True, day=checkpoint_day)
    run.results["serving"] = _check("manifest.status", "ok" if condition == "healthy" else "fail", condition=condition)
    return run


def test_a_transient_failure_is_rerun_with_the_given_command_only(tmp_path):
    run = _pipeline_run(tmp_path, "pipeline-failed", kind="dependency", rule="object_store", day="2026-01-03",
                        checkpoint_day="2026-01-02")
    found = pipelines.diagnose_pipeline_failed(run)
    assert found.data["cause"] == "dependency:object_store" and found.data["lever"] is None
    run = _pipeline_run(tmp_path, "pipeline-failed", kind="dependency", rule="object_store", day="2026-01-03",
                        checkpoint_day="2026-01-02", command="rerun --day {day}")
    found = pipelines.diagnose_pipeline_failed(run)
    assert found.data["lever"] == "command" and found.data["lever_args"]["values"]["day"] == "2026-01-03"


def test_a_failure_already_published_since_is_healthy(tmp_path):
    run = _pipeline_run(tmp_path, "pipeline-failed", kind="dependency", rule="object_store", day="2026-01-03",
                        checkpoint_day="2026-01-03")
    assert pipelines.diagnose_pipeline_failed(run).data["problem"] is False


def test_pipeline_failed_sends_limits_and_validation_to_their_runbooks(tmp_path):
    run = _pipeline_run(tmp_path, "pipeline-failed", kind="limit_exceeded", rule="max_events_per_run",
                        day="2026-01-03", checkpoint_day="2026-01-02", command="rerun")
    found = pipelines.diagnose_pipeline_failed(run)
    assert found.data["runbook"] == "limit-exceeded" and found.data["lever"] is None
    assert found.data["cause"] == "limit_exceeded:max_events_per_run"


def test_a_broken_manifest_comes_before_the_failed_run(tmp_path):
    run = _pipeline_run(tmp_path, "validation-failed", kind="validation_failed", rule="item_id", day="2026-01-03",
                        checkpoint_day="2026-01-02", condition="invalid")
    found = pipelines.diagnose_validation_failed(run)
    assert found.data["cause"] == "serving_broken" and found.data["lever"] == "manifest-rollback"


def test_limit_exceeded_says_what_to_decide_without_a_command(tmp_path):
    run = _pipeline_run(tmp_path, "limit-exceeded", kind="limit_exceeded", rule="max_events_per_run",
                        day="2026-01-03", checkpoint_day="2026-01-02")
    run.results["job-log"].data["key"] = "max_events_per_run"
    found = pipelines.diagnose_limit_exceeded(run)
    assert found.data["cause"] == "limit_exceeded:max_events_per_run"
    assert "raise max_events_per_run" in found.data["no_lever"] and "10" in found.data["no_lever"]


# --- the command lever ---------------------------------------------------------------------------------------------


def test_command_templates_are_split_without_a_shell_and_filled():
    assert fix.command_argv("publish --tenant {tenant} --day {day} 'a b'", {"tenant": "demo", "day": "2026-01-02"}) == [
        "publish", "--tenant", "demo", "--day", "2026-01-02", "a b"]
    with pytest.raises(Exception, match="unknown placeholder"):
        fix.command_argv("publish {nope}", {})


@pytest.mark.subprocess
def test_a_command_runs_only_with_execute_and_reports_its_exit(tmp_path):
    marker = tmp_path / "ran"
    run = _run("stale-manifest", tmp_path, rerun_command=f"touch {marker}")
    run.results["diagnose"] = fix.diagnosis(run, "stale", cause="pipeline_not_published")
    assert run.results["diagnose"].data["lever"] == "command"  # the row's lever, with the parameter's command
    remedy = fix.apply_fix(run)
    assert remedy.status == "planned" and not marker.exists()
    run = _run("stale-manifest", tmp_path, execute=True, rerun_command=f"touch {marker}")
    run.results["diagnose"] = fix.diagnosis(run, "stale", cause="pipeline_not_published")
    remedy = fix.apply_fix(run)
    assert remedy.status == "applied" and marker.exists() and remedy.commands[0].exit_code == 0
    run.results["diagnose"].data["lever_args"] = {"command": "false"}
    assert fix.apply_fix(run).status == "failed"


@pytest.mark.subprocess
def test_a_command_that_hangs_is_stopped_at_its_timeout(tmp_path):
    run = _run("stale-manifest", tmp_path, execute=True, rerun_command="sleep 30")
    run.results["diagnose"] = fix.diagnosis(run, "stale", cause="pipeline_not_published")
    run.results["diagnose"].data["lever_args"]["timeout"] = 0.5
    remedy = fix.apply_fix(run)
    assert remedy.status == "failed" and "timed out" in remedy.summary


def test_an_unclassified_failure_is_never_healthy(tmp_path):
    """A `run failed:` line no family explains is action-required with the line quoted, in every pipeline runbook."""
    for runbook_id, diagnose in (("pipeline-failed", pipelines.diagnose_pipeline_failed),
                                 ("limit-exceeded", pipelines.diagnose_limit_exceeded),
                                 ("validation-failed", pipelines.diagnose_validation_failed)):
        run = _pipeline_run(tmp_path, runbook_id, kind="unclassified", rule="unclassified", day="2026-01-03",
                            checkpoint_day="2026-01-02", command="rerun")
        run.results["job-log"].data["line"] = "run failed: the moon"
        found = diagnose(run)
        assert found.data["problem"] and found.data["cause"] == "unclassified" and found.data["lever"] is None
        assert found.data["evidence"][0]["problem"] == "run failed: the moon"


def test_the_job_log_step_reads_a_suite_log_and_quotes_the_detail(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("2026/12/02 13:41:15 INFO validate: start tenant=demo surface=home start=2026-12-01T00:00:00Z "
                   "end=2026-12-02T00:00:00Z\nrun failed: validation_failed: distinct item count exceeds max: "
                   "validation_failed\nitems=6 max=5\n")
    run = _run("limit-exceeded", tmp_path, job_log=str(log))
    result = pipelines.classify_job_log(run)
    assert result.status == "fail" and result.data["day"] == "2026-12-01"
    assert result.data["key"] == "max_distinct_items_per_run" and (result.data["observed"], result.data["limit"]) == (6, 5)
    assert "items=6 max=5" in result.summary
    empty = tmp_path / "empty.log"
    empty.write_text("")
    result = pipelines.classify_job_log(_run("pipeline-failed", tmp_path, job_log=str(empty)))
    assert result.status == "fail" and result.unread  # an empty log cannot tell


# --- evaluation ----------------------------------------------------------------------------------------------------

from recsys_checks.runbooks.steps import evaluation  # noqa: E402


def _quality(**data) -> CheckResult:
    base = {"given": True, "trusted": False, "bad_lines": [], "srm": {"global": {"detected": False}},
            "outcome_join_rate": 1.0, "assignment_join_rate": 1.0, "impossible": [],
            "thresholds": {"min_join_rate": 0.95}, "trust_problems": ["x"]}
    return _check("eval.quality", "fail" if not data.get("trusted", False) else "ok", **{**base, **data})


@pytest.mark.parametrize(("data", "cause"), [
    ({"bad_lines": [{"line": 4}], "outcome_join_rate": 0.4}, "schema_break"),
    ({"srm": {"global": {"detected": True}}, "outcome_join_rate": 0.5}, "srm"),
    ({"outcome_join_rate": 0.69}, "low_join_rate"),
    ({"assignment_join_rate": 0.75}, "low_join_rate"),
    ({"impossible": ["ctr +230%"]}, "impossible_lift"),
    ({"trusted": True, "trust_problems": []}, None),
])
def test_untrusted_data_names_the_most_fundamental_problem_and_holds(tmp_path, data, cause):
    run = _run("eval-report-suspect", tmp_path)
    run.results["quality"] = _quality(**data)
    run.results["report"] = _check("eval.report", "ok", given=False)
    run.results["hold"] = _check("hold.status", "ok", held=False)
    found = evaluation.diagnose_eval_data(run)
    assert found.data["cause"] == cause
    assert found.data["lever"] == ("hold" if cause else None)


@pytest.mark.parametrize(("action", "held", "trusted", "cause", "want"), [
    ("auto", False, False, "hold_needed", True),
    ("auto", True, False, None, None),
    ("auto", True, True, None, None),     # trusted data alone never lifts a hold
    ("set", False, True, "hold_needed", True),
    ("clear", True, True, "release_needed", False),
    ("clear", False, True, None, None),
])
def test_the_hold_runbook_moves_the_hold_only_where_needed(tmp_path, action, held, trusted, cause, want):
    run = _run("hold-changes", tmp_path, action=action)
    run.results["hold"] = _check("hold.status", "fail" if held else "ok", held=held)
    run.results["quality"] = _quality(trusted=trusted, **({"outcome_join_rate": 0.5} if not trusted else {}))
    found = evaluation.diagnose_hold(run)
    assert found.data["cause"] == cause
    if want is not None:
        assert found.data["lever"] == "hold" and found.data["lever_args"]["held"] is want


def test_a_base_url_that_is_not_the_service_is_named_as_such(tmp_path):
    run = _run("service-not-ready", tmp_path)
    run.results["health"] = _check("health", "fail", live={"status_code": 404}, ready={"status_code": 404})
    run.results["probe"] = _probe("bad_answer")
    found = serving.diagnose_not_ready(run)
    assert found.data["cause"] == "not_the_service" and "RECSYS_BASE_URL" in found.data["no_lever"]
