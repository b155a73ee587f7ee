"""The receiver's incident as a typed record: it reads every incident.json written before (keys missing or unknown
included) and writes back the same JSON, and only recsys_checks/alerts/incident.py changes an incident."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from recsys_checks.alerts.incident import FINISHED, INTERRUPTED, NOT_RUN, QUEUE_FULL, RUNNING, Incident, Row

PACKAGE = Path(__file__).resolve().parents[2] / "recsys_checks" / "alerts"

# An incident.json as the receiver wrote it before the record was typed: a finished run with a plan, a row over
# --max-surfaces, a notification outcome; keys in the order they were written.
WRITTEN = {
    "format": 1, "id": "20261203T100000Z-0123456789ab", "alert": "RecsysManifestStale", "fingerprint": "f00d",
    "starts_at": "2026-12-03T10:00:00Z", "starts_at_normal": "2026-12-03T10:00:00.000000000Z",
    "labels": {"alertname": "RecsysManifestStale", "severity": "page"}, "summary": "stale",
    "received_at": "2026-12-03T10:00:01Z", "notified": 2, "last_notified_at": "2026-12-03T10:05:01Z",
    "resolved_at": None, "status": "finished", "phase": "done", "reason": None, "runbooks": ["stale-manifest"],
    "triage": {"kind": "staleness", "summary": "1 stale", "suspects": []},
    "rows": [
        {"run": 1, "status": "finished", "runbook": "stale-manifest", "tenant": "acme", "surface": "home",
         "verdict": "action-required", "cause": "stale", "plan_id": "0888603291b3",
         "apply_command": "recsys-checks runbook run stale-manifest --execute --plan-id 0888603291b3",
         "dry_run_command": "recsys-checks runbook run stale-manifest -p tenant=acme -p surface=home",
         "next_action": "dry run: would roll back (plan 0888603291b3: re-run with --execute)", "reason": None,
         "started_at": "2026-12-03T10:00:02Z", "finished_at": "2026-12-03T10:00:09Z", "seconds": 6.5,
         "waited_seconds": 0.0, "folder": "20261203T100000Z-0123456789ab/runs/01-stale-manifest",
         "record": "20261203T100000Z-0123456789ab/runs/01-stale-manifest/stale-manifest.result.json",
         "notebook": None, "notebook_html": None},
        {"run": 2, "status": "not-run", "runbook": "stale-manifest", "tenant": "acme", "surface": "cart",
         "verdict": None, "cause": None, "plan_id": None, "apply_command": None,
         "dry_run_command": "recsys-checks runbook run stale-manifest -p tenant=acme -p surface=cart",
         "next_action": None, "reason": "over --max-surfaces (1): run it by hand", "started_at": None,
         "finished_at": None, "seconds": None, "waited_seconds": None, "folder": None, "record": None,
         "notebook": None, "notebook_html": None},
    ],
    "notify": {"status": "sent", "attempts": 1, "error": None},
    "triage_started_at": "2026-12-03T10:00:01Z", "finished_at": "2026-12-03T10:00:10Z",
}


def test_an_incident_written_before_reads_and_writes_back_the_same_json():
    incident = Incident.from_dict(json.loads(json.dumps(WRITTEN)))
    assert isinstance(incident.rows[0], Row) and incident.rows[0].plan_id == "0888603291b3"
    assert json.dumps(incident.to_dict(), indent=2) == json.dumps(WRITTEN, indent=2)  # keys in the same order


def test_an_old_or_partial_incident_still_loads_and_keeps_what_it_does_not_know():
    doc = {"id": "20261203T100000Z-0123456789ab", "status": "running", "phase": "run", "someday": [1],
           "rows": [{"status": "finished", "verdict": "healthy"}, {"status": "running", "comment": "x"}]}
    incident = Incident.from_dict(doc)
    assert incident.left_running and incident.rows[1].extra == {"comment": "x"}
    incident.interrupt("stopped")
    out = incident.to_dict()
    assert out["someday"] == [1] and out["rows"][1]["comment"] == "x"
    assert [r["status"] for r in out["rows"]] == [FINISHED, INTERRUPTED] and out["status"] == INTERRUPTED
    for bad in ([], {"rows": []}, {"id": "x", "rows": {}}, {"id": "x", "rows": [1]}):
        try:
            Incident.from_dict(bad)  # type: ignore[arg-type]
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was read as an incident")


def test_a_new_incident_writes_the_keys_a_new_one_always_had():
    incident = Incident.new(fingerprint="f", starts_at="2026-12-03T10:00:00Z",
                            starts_at_normal="2026-12-03T10:00:00.000000000Z", alert="A", labels={"x": "1"},
                            summary="", runbooks=["rb"])
    assert list(incident.to_dict()) == ["format", "id", "alert", "fingerprint", "starts_at", "starts_at_normal",
                                        "labels", "summary", "received_at", "notified", "last_notified_at",
                                        "resolved_at", "status", "phase", "reason", "runbooks", "triage", "rows",
                                        "notify"]
    incident.queue_full()
    assert incident.refused_for_a_full_queue and [r.reason for r in incident.rows] == [QUEUE_FULL]
    incident.requeue()
    assert incident.status == RUNNING and incident.rows == []
    rows = incident.plan_runs([("t", "a")], [("t", "b")], 1, lambda rb, t, s: f"run {rb} {t}/{s}")
    assert [(r.run, r.status, r.dry_run_command) for r in rows] == [(1, RUNNING, "run rb t/a"),
                                                                    (2, NOT_RUN, "run rb t/b")]
    incident.failed_inside("boom")
    assert [r.status for r in incident.rows] == [NOT_RUN, NOT_RUN] and incident.reason == "boom"


def _changes_outside(path: Path) -> list[str]:
    """Assignments (plain, augmented, or deleting) to an attribute or item of an incident or a row."""
    names = {"incident", "found", "row", "r", "doc"}
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for target in targets:
            for t in target.elts if isinstance(target, ast.Tuple) else [target]:
                base = t
                while isinstance(base, (ast.Attribute, ast.Subscript)):
                    base = base.value
                if base is not t and isinstance(base, ast.Name) and base.id in names:
                    out.append(f"{path.name}:{t.lineno} {ast.unparse(t)}")
    return out


def test_only_the_incident_module_changes_an_incident():
    found = [c for p in sorted(PACKAGE.glob("*.py")) if p.name != "incident.py" for c in _changes_outside(p)]
    assert found == []


def test_the_change_finder_can_fail(tmp_path):
    sample = tmp_path / "server.py"
    sample.write_text("def f(incident, row):\n    incident.status = 'x'\n    row['reason'] = 'y'\n"
                      "    incident.rows[0].verdict += 'z'\n    other.status = 1\n")
    assert _changes_outside(sample) == ["server.py:2 incident.status", "server.py:3 row['reason']",
                                        "server.py:4 incident.rows[0].verdict"]
