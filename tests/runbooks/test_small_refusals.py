"""The smaller holes of a hostile run: each a one-line exit 2 before anything is created, or the right diagnosis.

Non-UTF-8 parameter values and overlong runbook ids are refused before a folder is made; float parameters are
finite, ASCII and within their spec's range; a report that cannot be read is not read (inconclusive), never a
data-quality cause; an unknown tenant is diagnosed as such, not as nothing to roll back.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import specskit
from stackfixture import StackHandle

from recsys_checks.core.errors import BadInput
from recsys_checks.core.results import CheckResult
from recsys_checks.reach.settings import Target
from recsys_checks.runbooks.run import RunbookRun
from recsys_checks.runbooks.spec import load_spec, parse_spec, resolve_function
from recsys_checks.runbooks.steps import evaluation, serving


def _cli(args: list, tmp_path: Path) -> subprocess.CompletedProcess:
    """`recsys-checks ARGS` with its own empty temporary folder, against a service that does not answer."""
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(scratch), "RECSYS_BASE_URL": "http://127.0.0.1:9"}
    return subprocess.run([sys.executable, "-m", "recsys_checks.cli", *args], capture_output=True, timeout=60,
                          env=env, cwd=tmp_path)


def _refused_before_anything(proc: subprocess.CompletedProcess, tmp_path: Path, needle: str) -> None:
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 2, err
    assert needle in err and len(err.strip().splitlines()) == 1 and len(err) < 400, err
    assert not (tmp_path / "out").exists()
    assert list((tmp_path / "tmp").iterdir()) == []  # no temporary work folder either


@pytest.mark.parametrize("args", [
    ["-p", b"reason=caf\xe9 \xff"],
    ["--reason", b"\xff\xfe"],
    ["-p", b"plan_id=\xc3"],
])
@pytest.mark.subprocess
def test_a_parameter_that_is_not_utf8_is_refused_before_anything_is_created(tmp_path, args):
    proc = _cli(["runbook", "run", "empty-recs", *args, "--out", str(tmp_path / "out")], tmp_path)
    _refused_before_anything(proc, tmp_path, "is not UTF-8 text")


@pytest.mark.subprocess
def test_a_runbook_id_of_10000_characters_is_refused_in_one_line(tmp_path):
    proc = _cli(["runbook", "run", "a" * 10_000, "--out", str(tmp_path / "out")], tmp_path)
    _refused_before_anything(proc, tmp_path, "at most 100 characters")
    assert "(10,000 characters)" in proc.stderr.decode()
    shown = _cli(["runbook", "show", "b" * 10_000], tmp_path)
    assert shown.returncode == 2 and len(shown.stderr) < 400


@pytest.mark.parametrize("runbook_id", ["eval-report-suspect", "hold-changes"])
@pytest.mark.parametrize("name", ["min_join_rate", "max_relative_lift"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-3", "٠.٩", "١", "1e999"])
def test_thresholds_are_finite_ascii_numbers_within_their_range(runbook_id, name, value):
    spec = specskit.spec(runbook_id)
    with pytest.raises(BadInput, match=f"parameter {name}: .*(finite|digits 0-9|out of its range)"):
        spec.parse_parameters({name: value})


@pytest.mark.subprocess
def test_thresholds_in_range_are_taken_and_the_command_line_refuses_the_rest(tmp_path):
    spec = load_spec("eval-report-suspect")
    assert spec.parse_parameters({"min_join_rate": " 0.9", "max_relative_lift": "0"})["min_join_rate"] == 0.9
    with pytest.raises(BadInput, match=r"1\.5 is out of its range \(float, 0\.01 to 1\)"):
        spec.parse_parameters({"min_join_rate": "1.5"})
    proc = _cli(["runbook", "run", "eval-report-suspect", "-p", "min_join_rate=nan", "--out", str(tmp_path / "out")],
                tmp_path)
    _refused_before_anything(proc, tmp_path, "is not a finite number")


def _spec_with(parameter: dict) -> dict:
    doc = {"id": "t", "title": "t", "layer": "serving", "summary": "s", "symptoms": ["x"],
           "decision": [{"cause": "c", "when": "w", "decided_by": "runbooks.steps.fix.diagnosis", "follow_up": "f"}],
           "verification": "v", "drills": [{"fault": "f", "stores": ["file"], "dry_run": {"verdict": "healthy"},
                                            "execute": {"verdict": "healthy"}}],
           "healthy": [{"invariant": "i", "step": "d"}], "parameters": {"threshold": parameter},
           "steps": [{"id": "d", "title": "d", "why": "w", "function": "serving.diagnose_empty_recs",
                      "role": "diagnose"}]}
    return doc


@pytest.mark.parametrize(("parameter", "message"), [
    ({"type": "str", "default": "", "min": 0}, "only an int or float parameter has a range"),
    ({"type": "float", "default": 0.5, "min": "zero"}, "expected a finite number"),
    ({"type": "float", "default": 0.5, "max": float("nan")}, "expected a finite number"),
    ({"type": "float", "default": 0.5, "min": 1, "max": 0}, "min is above max"),
    ({"type": "float", "default": 2.0, "max": 1}, "default: parameter threshold: 2.0 is out of its range"),
    ({"type": "float", "default": float("inf")}, "is not a finite number"),
])
def test_a_spec_range_is_checked_when_the_spec_is_loaded(parameter, message):
    with pytest.raises(BadInput, match=message):
        parse_spec(_spec_with(parameter), Path("runbooks/t.yaml"))


def test_an_int_parameter_takes_ascii_digits_only():
    spec = parse_spec(_spec_with({"type": "int", "default": 3, "min": 1}), Path("runbooks/t.yaml"))
    assert spec.parameters["threshold"].parse("12") == 12
    for value in ("٣", "0", "x"):
        with pytest.raises(BadInput):
            spec.parameters["threshold"].parse(value)


# --- an evaluation file that cannot be read ---------------------------------------------------------------------


def _run(runbook_id: str, tmp_path: Path, **params) -> RunbookRun:
    target = Target.from_env({"RECSYS_BASE_URL": "http://127.0.0.1:9",
                              "RECSYS_ARTIFACT_MANIFEST_TEMPLATE": f"file://{tmp_path}/current/{{tenant}}/{{surface}}/manifest.json"})
    return RunbookRun(runbook_id, spec=specskit.spec(runbook_id), target=target,
                      record_path=tmp_path / "out" / "record.json", **params)


def _unreadable_reports(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    (tmp_path / "folder.json").mkdir()
    return {"missing": tmp_path / "missing.json", "fifo": fifo, "folder": tmp_path / "folder.json",
            "name too long": tmp_path / ("r" * 5000)}


@pytest.mark.parametrize("kind", ["missing", "fifo", "folder", "name too long"])
def test_a_report_that_cannot_be_read_is_not_read_never_a_schema_break(tmp_path, kind):
    report = _unreadable_reports(tmp_path)[kind]
    run = _run("eval-report-suspect", tmp_path, report=str(report))
    run.step("quality", evaluation.data_quality, show=False)
    run.step("report", evaluation.report_triage, show=False)
    run.results["hold"] = CheckResult("hold.status", "ok", "not held", {"held": False})
    run.step("diagnose", evaluation.diagnose_eval_data, show=False)
    run.step("fix", resolve_function("fix.apply_fix"), show=False)
    diagnosed, record = run.result("diagnose"), run.run_record()
    assert run.result("report").unread and evaluation.untrusted_cause(run.result("report")) is None
    assert diagnosed.data.get("cause") is None and not diagnosed.data.get("lever"), diagnosed.summary
    assert "cannot be judged" in diagnosed.summary and "could not be read" in diagnosed.summary
    assert record["verdict"] == "inconclusive" and record["unread"][0]["step"] == "report"
    assert record["changed"] == [] and record["steps"][-1]["status"] != "planned"


def test_a_report_that_is_read_but_breaks_its_contract_is_still_a_schema_break(tmp_path):
    (tmp_path / "report.json").write_text("{not json")
    run = _run("eval-report-suspect", tmp_path, report=str(tmp_path / "report.json"))
    run.step("quality", evaluation.data_quality, show=False)
    run.step("report", evaluation.report_triage, show=False)
    run.results["hold"] = CheckResult("hold.status", "ok", "not held", {"held": False})
    assert evaluation.diagnose_eval_data(run).data["cause"] == "schema_break"


def test_the_hold_runbook_leaves_the_hold_alone_when_the_logs_cannot_be_read(tmp_path):
    run = _run("hold-changes", tmp_path, exposures=str(tmp_path / "missing.jsonl"),
               outcomes=str(tmp_path / "missing-too.jsonl"))
    run.results["hold"] = CheckResult("hold.status", "ok", "not held", {"held": False})
    run.step("quality", evaluation.data_quality, show=False)
    diagnosed = evaluation.diagnose_hold(run)
    assert diagnosed.data.get("cause") is None and not diagnosed.data.get("lever")
    assert "cannot be judged" in diagnosed.summary and "hold is left as it is" in diagnosed.summary


# --- an unknown tenant ------------------------------------------------------------------------------------------


def test_an_unknown_tenant_is_diagnosed_as_unknown_not_as_nothing_to_roll_back(tmp_path):
    run = _run("rollback-manifest", tmp_path, tenant="nobody")
    run.results["manifest-status"] = CheckResult("manifest.status", "fail", "no manifest", {"condition": "missing"})
    run.results["history"] = CheckResult("manifest.history", "fail", "no version records", {"versions": []})
    run.results["probe"] = CheckResult("recs.probe", "fail", "service does not know tenant 'nobody' "
                                       "(RECSYS_TENANT_NOT_FOUND): check the tenant id or create the tenant",
                                       {"cause": "unknown_tenant", "runbook": None})
    found = serving.diagnose_rollback_manifest(run)
    assert found.data["cause"] == "unknown_tenant" and not found.data.get("lever")
    assert "does not know tenant 'nobody'" in found.summary
    assert "check the tenant id" in found.data["no_lever"]  # the row's follow-up; the summary names the tenant
    requested = _run("rollback-manifest", tmp_path, tenant="nobody", to_version="ab" * 4)
    requested.results.update(run.results)
    asked = serving.diagnose_rollback_manifest(requested).data  # asked for: still tried, what was found beside it
    assert asked["cause"] == "unknown_tenant" and asked["lever"] == "manifest-rollback"
    assert asked["requested"] == "ab" * 4


@pytest.mark.stack
def test_rollback_manifest_for_a_tenant_the_service_does_not_know(stack_file: StackHandle, tmp_path: Path):
    spec = load_spec("rollback-manifest")
    run = RunbookRun("rollback-manifest", tenant="nobody", surface="home", spec=spec,
                     target=Target.from_env(stack_file.env), record_path=tmp_path / "rollback-manifest.result.json")
    for step in spec.steps:
        run.step(step.id, resolve_function(step.function), show=False)
    record = run.run_record()
    assert (record["verdict"], record["cause"]) == ("action-required", "unknown_tenant"), record["next_action"]
    assert "nothing to roll back" not in record["next_action"]
    assert "does not know" in record["next_action"] and record["changed"] == []
