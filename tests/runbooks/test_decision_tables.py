"""The decision table is the one place a runbook's causes live: the spec parser refuses a malformed row (naming the
file, the row and the field), the diagnosis refuses a cause no row declares, every cause the code can name is
declared (the kind, tested with generated step results), and the fix pulls the lever of the row.

No network: results are built by hand; the service URL is a closed port.
"""

from __future__ import annotations

import ast
import copy
import fnmatch
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys_checks.core.errors import BadInput, UndeclaredCause
from recsys_checks.core.results import CheckResult
from recsys_checks.judge.evaluation.trust import CAUSES as TRUST_CAUSES
from recsys_checks.judge.invariants import SHAPE_CAUSES
from recsys_checks.judge.pipelinelog import KINDS as PIPELINE_KINDS
from recsys_checks.judge.serving.clients import CAUSES as CLIENT_CAUSES
from recsys_checks.judge.serving.probe import CAUSES as PROBE_CAUSES
from recsys_checks.reach.settings import Target
from recsys_checks.runbooks import decision
from recsys_checks.runbooks.run import RunbookRun
from recsys_checks.runbooks.spec import load_all, load_spec, parse_spec
from recsys_checks.runbooks.steps import fix

ROOT = Path(__file__).resolve().parents[2]
STEPS = ROOT / "recsys_checks" / "runbooks" / "steps"
SPECS = {s.id: s for s in load_all(ROOT / "runbooks")}


def _target(tmp_path: Path) -> Target:
    return Target.from_env({"RECSYS_BASE_URL": "http://127.0.0.1:9",
                            "RECSYS_ARTIFACT_MANIFEST_TEMPLATE":
                                f"file://{tmp_path}/current/{{tenant}}/{{surface}}/manifest.json"})


def _run(tmp_path: Path, runbook_id: str, **params) -> RunbookRun:
    return RunbookRun(runbook_id, spec=SPECS[runbook_id], target=_target(tmp_path),
                      record_path=tmp_path / "out" / "r.json", **params)


# --------------------------------------------------------------------------------------------------- the parser


def _doc(runbook_id: str = "stale-manifest") -> dict:
    return yaml.safe_load((ROOT / "runbooks" / f"{runbook_id}.yaml").read_text())


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda rows: rows[0].update(lever={"kind": "reboot"}), r"decision\[0\]\.lever\.kind 'reboot' must be one of"),
    (lambda rows: rows[0].update(colour="red"), r"decision\[0\]: unknown key 'colour'"),
    (lambda rows: rows[0].pop("decided_by"), r"decision\[0\]: missing key 'decided_by'"),
    (lambda rows: rows[0].update(decided_by="judge.nothing.here"), r"decision\[0\]\.decided_by: .*no module"),
    (lambda rows: rows[0].update(decided_by="judge.registry.manifest.no_such"), r"decision\[0\]\.decided_by"),
    (lambda rows: rows[0].update(lever={"kind": "cache-invalidate", "takes": ["to"]}),
     r"decision\[0\]\.lever: a cache-invalidate lever takes no argument 'to'"),
    (lambda rows: rows[0].update(lever={"kind": "cache-invalidate", "args": {"targets": ["everything"]}}),
     r"decision\[0\]\.lever\.args\.targets must list"),
    (lambda rows: rows[4].pop("follow_up"), r"decision\[4\]\.follow_up: a command lever runs only when"),
    (lambda rows: rows[4]["lever"].update(param="recovery_command"), r"decision\[4\]\.lever\.param: 'recovery_command'"),
    (lambda rows: [rows[3].pop(k) for k in ("follow_up",)] and None, r"decision\[3\]: a row needs a lever"),
    (lambda rows: rows.append(dict(rows[0])), r"cause 'manifest_unreadable' is declared twice"),
    (lambda rows: rows[0].update(cause="unexplained"), r"'unexplained' is built in"),
    (lambda rows: rows[0].update(cause="Bad Cause"), r"decision\[0\]\.cause 'Bad Cause' must be"),
    (lambda rows: rows.clear(), r"decision must be a non-empty list"),
], ids=["lever-kind", "unknown-key", "no-decider", "decider-module", "decider-function", "arg-not-taken",
        "bad-target", "command-without-follow-up", "command-param-missing", "row-with-nothing", "twice", "builtin",
        "cause-id", "empty"])
def test_a_malformed_row_is_refused_naming_the_file_the_row_and_the_field(tmp_path, mutate, message):
    doc = _doc()
    mutate(doc["decision"])
    with pytest.raises(BadInput, match=message) as caught:
        parse_spec(doc, tmp_path / "stale-manifest.yaml")
    assert str(tmp_path / "stale-manifest.yaml") in str(caught.value)


def test_a_drill_must_expect_a_declared_cause_and_the_act_step_has_no_command(tmp_path):
    doc = _doc()
    doc["drills"][0]["dry_run"]["cause"] = "cache_gone_stale"
    with pytest.raises(BadInput, match=r"drills\[0\]\.dry_run\.cause 'cache_gone_stale' is not a cause"):
        parse_spec(doc, tmp_path / "s.yaml")
    doc = _doc()
    next(s for s in doc["steps"] if s["role"] == "act")["command"] = "recsys-checks cache invalidate --execute"
    with pytest.raises(BadInput, match=r"\.command: the act step has no command of its own"):
        parse_spec(doc, tmp_path / "s.yaml")


def test_a_hand_off_to_a_runbook_that_does_not_exist_is_refused(tmp_path):
    folder = tmp_path / "runbooks"
    folder.mkdir()
    doc = _doc()
    doc["decision"][0]["hand_off"]["runbook"] = "rollback-manifests"
    (folder / "stale-manifest.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(BadInput, match=r"hand_off\.runbook 'rollback-manifests' is not a runbook"):
        load_spec("stale-manifest", folder)


def test_every_lever_kind_a_row_may_name_has_a_function_that_pulls_it():
    assert set(fix.LEVERS) == set(decision.LEVER_KINDS)


# --------------------------------------------------------------------------------------------------- the code


@pytest.mark.parametrize("runbook_id", sorted(SPECS))
def test_the_diagnosis_refuses_a_cause_its_table_does_not_declare(tmp_path, runbook_id):
    run = _run(tmp_path, runbook_id)
    with pytest.raises(UndeclaredCause, match=rf"runbook {runbook_id} named the cause 'not_a_row'"):
        fix.diagnosis(run, "something", cause="not_a_row")
    declared = SPECS[runbook_id].decision.declared()[0]
    assert fix.diagnosis(run, "x", cause=declared.cause).data["row"] == declared.cause


def _literals(node: ast.AST) -> list[str]:
    """The causes an argument expression can be, as fnmatch patterns: a string, either branch of ``a if c else b``,
    an f-string with ``*`` for each field. Anything else is dynamic (a probe's cause passed on): the generated
    tests below cover those."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _literals(node.body) + _literals(node.orelse)
    if isinstance(node, ast.JoinedStr):
        return ["".join(v.value if isinstance(v, ast.Constant) else "*" for v in node.values)]
    return []


def _diagnosis_calls() -> list[tuple[str, str]]:
    """(file, pattern) for every cause a steps module passes to ``diagnosis(...)`` as a literal."""
    found = []
    for path in sorted(STEPS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "diagnosis":
                found += [(path.name, c) for kw in node.keywords if kw.arg == "cause" for c in _literals(kw.value)]
    return found


def test_every_literal_cause_in_the_steps_is_a_row_of_some_table():
    rows = {row.cause for spec in SPECS.values() for row in spec.decision}
    literal = _diagnosis_calls()
    assert len(literal) > 20, "the scan found too few diagnosis calls: it no longer reads the steps"
    missing = sorted({(f, c) for f, c in literal
                      if not any(fnmatch.fnmatchcase(r, c.split(":")[0]) for r in rows)})
    assert not missing, f"causes the code names that no table declares: {missing}"


def test_every_declared_row_is_a_cause_the_code_can_name():
    """A row no code path can reach is a page promising a diagnosis that never comes. What the code can name: the
    strings of the steps modules, and the vocabularies of the probe, the trust checks and the pipeline log."""
    strings = {n.value for path in STEPS.glob("*.py") for n in ast.walk(ast.parse(path.read_text()))
               if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    named = strings | set(PROBE_CAUSES) | set(TRUST_CAUSES) | set(PIPELINE_KINDS) | {"untrusted"}
    named |= set(CLIENT_CAUSES) | set(SHAPE_CAUSES)
    named |= {f"{kind}_missing" for kind in ("config", "rules")} | {decision.UNEXPLAINED, decision.STEP_NOT_RUN}
    dead = sorted({(spec.id, row.cause) for spec in SPECS.values() for row in spec.decision if row.cause not in named})
    assert not dead, f"rows no code names: {dead}"


# Generated step results: the kind, not the examples. The oracle is the table itself, read apart from the code: a
# diagnosis must name a declared row, and its lever must be that row's (or none for a command lever without its
# parameter, or a row without a lever).
_HEALTH = st.sampled_from([
    {"live": {"status_code": 200}, "ready": {"status_code": 200}},
    {"live": {"status_code": 200}, "ready": {"status_code": 503}},
    {"live": {"status_code": 500}, "ready": {"status_code": 503}},
    {"live": {"status_code": 404}},
    {"error": "connection refused"},
    {"live": {"status_code": 200}, "ready": {"status_code": 200},
     "detail": {"checks": [{"name": "database", "status": "down"}]}},
])
_MANIFEST = st.sampled_from([
    ("ok", {"condition": "healthy"}), ("fail", {"condition": "missing"}),
    ("fail", {"condition": "invalid", "artifacts": [{"kind": "popularity", "status": "fail"}]}),
    ("fail", {"condition": "stale", "stale": "manifest"}), ("fail", {"condition": "stale", "stale": "data"}),
    ("fail", {"condition": "stale", "stale": "future"}),
    ("fail", {"condition": "shrunk", "artifacts": [{"kind": "cooc", "status": "fail"}]}), ("fail", {}),
])
_SERVED = st.sampled_from([("ok", {"verdict": "consistent"}), ("fail", {"verdict": "cache_stale"}),
                           ("fail", {"verdict": "pipeline_stale"}), ("fail", {"verdict": "empty"})])
_DOCS = st.builds(
    lambda base, shapes: {**base, "shape_findings": [{"cause": c, "field": "f", "summary": c} for c in shapes]},
    st.sampled_from([{"documents": [], "missing": [], "findings": []},
                     {"documents": [], "missing": ["rules"], "findings": []},
                     {"documents": [], "missing": ["config"], "findings": []}]),
    st.lists(st.sampled_from(SHAPE_CAUSES), max_size=3, unique=True))
# What the clients step found: any set of its causes, on either request shape, with the evidence each carries.
_CLIENTS = st.lists(st.tuples(st.sampled_from(CLIENT_CAUSES), st.sampled_from(["plain", "anchors", "anchors@vip"]),
                              st.sampled_from(["popularity", "cooc"])), max_size=4)


@pytest.mark.parametrize("runbook_id", ["empty-recs", "rollback-config-rules", "rollback-manifest",
                                        "service-not-ready", "stale-manifest"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(probe=st.one_of(st.none(), st.sampled_from(PROBE_CAUSES)), health=_HEALTH, manifest=_MANIFEST,
       served=_SERVED, docs=_DOCS, to=st.sampled_from(["", "ab12cd34"]),
       kind=st.sampled_from(["", "popularity", "config", "rules"]), command=st.sampled_from(["", "restart it"]),
       clients=_CLIENTS)
def test_every_serving_diagnosis_names_a_declared_row_and_pulls_its_lever(tmp_path, runbook_id, probe, health,
                                                                          manifest, served, docs, to, kind, command,
                                                                          clients, monkeypatch):
    """Every cause found (all of them, not the first) names a declared row, and carries that row's lever."""
    monkeypatch.setattr("recsys_checks.runbooks.steps.serving.find_offending_change", lambda *a, **k: None)
    spec = SPECS[runbook_id]
    params = {k: v for k, v in (("to_version", to), ("kind", kind), ("recovery_command", command),
                                ("rerun_command", command)) if k in spec.parameters}
    if "kind" in params and spec.parameters["kind"].choices and kind not in spec.parameters["kind"].choices:
        params.pop("kind")
    run = _run(tmp_path, runbook_id, **params)
    for step in spec.steps:
        fn = step.function
        if fn.endswith("probe_recommendations"):
            run.results[step.id] = CheckResult("recs.probe", "fail" if probe else "ok", f"probe {probe}",
                                               {"cause": probe, "stale_documents": ["rules"]})
        elif fn.endswith("service_health"):
            run.results[step.id] = CheckResult("health", "ok", "health", health)
        elif fn.endswith("manifest_status"):
            run.results[step.id] = CheckResult("manifest.status", manifest[0], "manifest", manifest[1], '"e"')
        elif fn.endswith("served_vs_published_check"):
            run.results[step.id] = CheckResult("recs.served_vs_published", served[0], "served", served[1])
        elif fn.endswith("config_and_rules"):
            run.results[step.id] = CheckResult("config_rules.show", "fail" if docs["shape_findings"] else "ok",
                                               "docs", docs)
        elif fn.endswith("client_answers"):
            findings = [{"cause": c, "shape": shape, "summary": f"{c} on {shape}",
                         "evidence": {"kind": k, "pinned_by_rules": ["sku-x"]}} for c, shape, k in clients]
            run.results[step.id] = CheckResult("recs.clients", "fail" if findings else "ok", "clients",
                                               {"findings": findings})
    result = next(s for s in spec.steps if s.role == "diagnose").resolve()(run)
    if not result.data["problem"]:
        return
    entries = fix.detected_of(result)
    assert entries and entries[0]["cause"] == result.data["cause"]
    assert len({e["cause"] for e in entries}) == len(entries), "a cause is listed twice"
    for entry in entries:
        row = spec.cause(entry["cause"])
        assert row is not None and not row.builtin or row.cause == decision.STEP_NOT_RUN
        acting = spec.cause(entry["lever_from"])
        expected = acting.lever.kind if acting.lever else None
        if acting.lever is not None and acting.lever.kind == "command" and not command:
            expected = None
        assert entry["lever"] == expected
        assert (entry["no_lever"] is None) == (expected is not None)
        assert all(c["dry_run"].startswith("recsys-checks ") for c in entry["commands"])
    order = [spec.cause(e["cause"]).order for e in entries]
    assert order == sorted(order), "the causes are not in the table's order"


@pytest.mark.parametrize("runbook_id", ["pipeline-failed", "validation-failed", "limit-exceeded"])
@pytest.mark.parametrize("kind", PIPELINE_KINDS)
def test_every_failure_kind_is_a_row_of_every_pipeline_runbook(tmp_path, runbook_id, kind):
    run = _run(tmp_path, runbook_id)
    run.results["job-log"] = CheckResult("pipeline.job_log", "fail", f"{kind} failure",
                                         {"kind": kind, "rule": "r", "day": "2026-01-03", "given": True})
    run.results["serving"] = CheckResult("manifest.status", "ok", "fresh", {"condition": "healthy"})
    found = next(s for s in run.spec.steps if s.role == "diagnose").resolve()(run)
    assert run.spec.cause(found.data["cause"]).cause == kind
    own = runbook_id.replace("-", "_") if runbook_id != "pipeline-failed" else "dependency"
    assert (found.data["runbook"] is None) == (kind in (own, "invalid_argument", "configuration", "unclassified")), found.data


# --------------------------------------------------------------------------------------------------- the fix


def test_the_fix_pulls_the_lever_the_row_names_not_one_the_code_chose(tmp_path, monkeypatch):
    """Swap the row's lever in a copy of the table: the same diagnosis now pulls the new one."""
    spec = SPECS["stale-manifest"]
    pulled = []
    monkeypatch.setitem(fix.LEVERS, "cache-invalidate", lambda run, args: pulled.append(("cache", args)) or "c")
    monkeypatch.setitem(fix.LEVERS, "hold", lambda run, args: pulled.append(("hold", args)) or "h")
    run = _run(tmp_path, "stale-manifest")
    run.results["diagnose"] = fix.diagnosis(run, "stale cache", cause="service_cache_stale")
    assert fix.apply_fix(run) == "c" and pulled == [("cache", {"targets": ["popularity"]})]
    rows = tuple(replace(r, lever=decision.Lever("hold", {"held": True})) if r.cause == "service_cache_stale" else r
                 for r in spec.decision)
    changed = replace(spec, decision=decision.DecisionTable(rows))
    run = RunbookRun("stale-manifest", spec=changed, target=_target(tmp_path), record_path=tmp_path / "r2.json")
    run.results["diagnose"] = fix.diagnosis(run, "stale cache", cause="service_cache_stale")
    assert fix.apply_fix(run) == "h" and pulled[-1] == ("hold", {"held": True})
    assert run.results["diagnose"].data["commands"][0]["dry_run"].startswith("recsys-checks hold set")


def test_a_diagnosis_from_another_table_is_not_acted_on(tmp_path):
    run = _run(tmp_path, "stale-manifest")
    run.results["diagnose"] = fix.diagnosis(run, "stale cache", cause="service_cache_stale")
    forged = copy.deepcopy(run.results["diagnose"])
    forged.data["lever"] = "manifest-rollback"
    run.results["diagnose"] = forged
    remedy = fix.apply_fix(run)
    assert remedy.status == "failed" and "cache-invalidate lever" in remedy.summary


def test_the_record_carries_the_rows_commands_filled_in_and_they_parse(tmp_path):
    from recsys_checks.cli.commands import build_parser

    run = _run(tmp_path, "rollback-manifest")
    run.results["manifest-status"] = CheckResult("manifest.status", "fail", "bad", {
        "condition": "invalid", "artifacts": [{"kind": "popularity", "status": "fail"},
                                              {"kind": "cooc", "status": "fail"}]})
    found = run.spec.step("diagnose").resolve()(run)
    commands = found.data["commands"]
    assert [c["dry_run"] for c in commands] == [
        f"recsys-checks manifest rollback --tenant demo --surface home --kind {k} --previous --invalidate-cache"
        for k in ("cooc", "popularity")]
    parser = build_parser()
    for c in commands:
        parser.parse_args(c["apply"].replace("{plan}", "0123456789ab").split()[1:])
