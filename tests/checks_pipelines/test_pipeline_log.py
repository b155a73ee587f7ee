"""The failure classifier against every line the suite's `recsys-pipelines` prints when a run fails, verbatim.

Each case is the tail of a real log: the stage lines the run printed, then its last line(s) exactly as the suite
prints them, and what the classifier must read from it (kind, rule, the suite's configuration key, the numbers, the
failed day, the exit code).
"""

from __future__ import annotations

import pytest
import specskit

from recsys_checks.judge.pipelinelog import classify, failed_day

STAGES = (
    "2026/12/02 13:41:15 INFO ingest: start tenant=demo surface=home start=2026-12-01T00:00:00Z "
    "end=2026-12-02T00:00:00Z\n"
    "2026/12/02 13:41:15 INFO validate: start tenant=demo surface=home start=2026-12-01T00:00:00Z "
    "end=2026-12-02T00:00:00Z\n"
    "2026/12/02 13:41:15 INFO popularity: start tenant=demo surface=home\n"
    "2026/12/02 13:41:15 INFO popularity: done items=19 duration_ms=0\n"
)

# (last lines exactly as printed, kind, rule, key, observed, limit, exit code)
CASES = [
    ("run failed: event limit exceeded: 51 > 50",
     "limit_exceeded", "max_events_per_run", "max_events_per_run", 51, 50, 1),
    ("run failed: validation_failed: canonical event count exceeds max: validation_failed\nevents=120 max=100",
     "limit_exceeded", "max_events_per_run", "max_events_per_run", 120, 100, 1),
    ("run failed: validation_failed: distinct item count exceeds max: validation_failed\nitems=6 max=5",
     "limit_exceeded", "max_distinct_items_per_run", "max_distinct_items_per_run", 6, 5, 1),
    ("run failed: validation_failed: distinct session count exceeds max: validation_failed\nsessions=9 max=8",
     "limit_exceeded", "max_sessions_per_run", "max_sessions_per_run", 9, 8, 1),
    ("run failed: limit_exceeded: items per session limit exceeded: 2 >= 2: limit_exceeded",
     "limit_exceeded", "max_items_per_session", "max_items_per_session", 2, 2, 1),
    ("run failed: limit_exceeded: session limit exceeded: 7 >= 7: limit_exceeded",
     "limit_exceeded", "max_sessions_per_run", "max_sessions_per_run", 7, 7, 1),
    ("run failed: limit_exceeded: distinct item limit exceeded: 11 >= 10: limit_exceeded",
     "limit_exceeded", "max_items_per_artifact or max_distinct_items_per_run",
     "max_items_per_artifact or max_distinct_items_per_run", 11, 10, 1),
    ("run failed: validation_failed: popularity items exceeds max: validation_failed\nitems=1001 max=1000",
     "limit_exceeded", "max_items_per_artifact", "max_items_per_artifact", 1001, 1000, 1),
    ("run failed: validation_failed: cooc rows exceeds max: validation_failed\nrows=1200 max=1000",
     "limit_exceeded", "max_items_per_artifact", "max_items_per_artifact", 1200, 1000, 1),
    ("run failed: validation_failed: cooc neighbors exceeds max: validation_failed\nitem=sku-1 neighbors=51 max=50",
     "limit_exceeded", "max_neighbors_per_item", "max_neighbors_per_item", 51, 50, 1),
    ("run failed: validation_failed: cooc version hash mismatch: validation_failed\ncomputed=" + "a" * 64
     + " payload=" + "b" * 64, "validation_failed", "version_hash", None, None, None, 1),
    ("run failed: validation_failed: artifact version mismatch: validation_failed\nref=abc payload=def",
     "validation_failed", "artifact_version", None, None, None, 1),
    ("run failed: validation_failed: popularity artifact_type mismatch: validation_failed\ntype=cooc",
     "validation_failed", "artifact_type", None, None, None, 1),
    ("run failed: dependency: read canonical events: dependency\nopen /data/canonical/demo/home/2026-12-01.jsonl: "
     "no such file or directory", "dependency", "read_canonical_events", None, None, None, 1),
    ("run failed: validation_failed: canonical event count below min: validation_failed\nevents=3 min=10",
     "validation_failed", "min_events", None, 3, 10, 1),
    ("run failed: invalid exposure event: item_id must be set", "validation_failed", "bad_exposure_event", None,
     None, None, 1),
    ("run failed: invalid exposure event: ts must be set", "validation_failed", "bad_exposure_event", None, None,
     None, 1),
    ("run failed: invalid exposure event: rank must be >= 0", "validation_failed", "bad_exposure_event", None,
     None, None, 1),
    ("run failed: invalid exposure event: unsupported version: 2", "validation_failed", "event_version", None, None,
     None, 1),
    ("run failed: segment must be set", "invalid_argument", "segment", "--segment", None, None, 1),
    ("run failed: mkdir /data/out/popularity: not a directory", "dependency", "io", None, None, None, 1),
    ("run failed: backfill exceeds max days: 400 > 365", "limit_exceeded", "max_days_backfill", "max_days_backfill",
     400, 365, 1),
    ("run failed: endDay must be >= startDay", "invalid_argument", "day_range", None, None, None, 1),
    ("checkpoint missing; provide --start for first run", "invalid_argument", "checkpoint_missing", "--start", None,
     None, 2),
    ("checkpoint error: unexpected end of JSON input", "invalid_argument", "checkpoint_unreadable", None, None, None,
     2),
    ("flag provided but not defined: -surfce\nUsage of recsys-pipelines run:\n  -surface string\n    \tsurface id",
     "invalid_argument", "flags", None, None, None, 2),
]


@pytest.mark.parametrize(("tail", "kind", "rule", "key", "observed", "limit", "exit_code"), CASES,
                         ids=[c[0].splitlines()[0][:60] for c in CASES])
def test_every_failure_the_suite_prints_is_classified(tail, kind, rule, key, observed, limit, exit_code):
    failure = classify(STAGES + tail + "\n")
    assert failure is not None
    assert (failure.kind, failure.rule, failure.key, failure.observed, failure.limit, failure.exit_code) == (
        kind, rule, key, observed, limit, exit_code), failure
    # the start= of the last ingest:/validate: line; after a backfill over its limit, every logged day succeeded
    assert failure.day == ("2026-12-02" if rule == "max_days_backfill" else "2026-12-01")
    assert failure.line == tail.splitlines()[0]


def test_detail_lines_are_kept_with_the_failure():
    failure = classify(STAGES + "run failed: validation_failed: distinct item count exceeds max: validation_failed\n"
                       "items=6 max=5\n")
    assert failure.detail == ["items=6 max=5"]
    assert failure.text.endswith("exceeds max: validation_failed\nitems=6 max=5")


def test_a_field_of_a_bad_event_is_named():
    assert classify("run failed: invalid exposure event: session_id must be set").field == "session_id"


@pytest.mark.parametrize("line", ["run failed: the moon is in the wrong phase", "run failed: panic: nil map",
                                  "run failed: "])
def test_a_failure_no_family_matches_is_unclassified_and_quoted(line):
    failure = classify(STAGES + line)
    assert failure is not None and failure.kind == "unclassified" and failure.line == line.rstrip()


@pytest.mark.parametrize("text", [STAGES, "", STAGES + "2026/12/02 13:41:16 INFO publish: done\n"])
def test_a_log_without_a_failure_is_none(text):
    assert classify(text) is None


def test_the_failed_day_is_the_last_ingest_or_validate_start():
    text = STAGES + STAGES.replace("2026-12-01", "2026-12-02") + "2026/12/02 13:41:17 INFO cooc: start\n"
    assert failed_day(text) == "2026-12-02"
    assert failed_day("2026/12/02 13:41:15 INFO popularity: start tenant=demo\n") is None


def test_only_the_last_failure_counts():
    text = "run failed: event limit exceeded: 51 > 50\n" + STAGES + "run failed: segment must be set\n"
    assert classify(text).rule == "segment"


@pytest.mark.parametrize("tail", [c[0] for c in CASES if not c[0].startswith("flag provided")],
                         ids=[c[0].splitlines()[0][:60] for c in CASES if not c[0].startswith("flag provided")])
def test_the_cases_are_lines_of_the_suites_families(tail):
    """The classifier's cases and the stand-in's checks share one list of the suite's shapes."""
    from suite_lines import suite_family

    assert suite_family(STAGES + tail + "\n") is not None


RUNBOOKS = {"pipeline-failed": "dependency", "limit-exceeded": "limit_exceeded", "validation-failed": "validation_failed"}


@pytest.mark.parametrize("runbook_id", sorted(RUNBOOKS))
@pytest.mark.parametrize(("tail", "kind", "rule"), [c[:3] for c in CASES], ids=[c[0].splitlines()[0][:60] for c in CASES])
def test_every_suite_line_is_diagnosed_by_each_pipeline_runbook(tmp_path, runbook_id, tail, kind, rule):
    """Through the runbook's own steps: the job log read from a file, the diagnosis named by kind and rule (or a
    hand-off to the runbook of that kind); never "nothing failed"."""
    from recsys_checks.core.results import CheckResult
    from recsys_checks.reach.settings import Target
    from recsys_checks.runbooks.run import RunbookRun
    from recsys_checks.runbooks.steps import pipelines

    log = tmp_path / "run.log"
    log.write_text(STAGES + tail + "\n")
    target = Target.from_env({"RECSYS_ARTIFACT_MANIFEST_TEMPLATE":
                              f"file://{tmp_path}/current/{{tenant}}/{{surface}}/manifest.json"})
    run = RunbookRun(runbook_id, spec=specskit.spec(runbook_id), target=target,
                     record_path=tmp_path / "out" / "record.json", job_log=str(log))
    run.results["job-log"] = pipelines.classify_job_log(run)
    assert run.results["job-log"].status == ("warn" if rule == "day_range" else "fail")
    assert run.results["job-log"].data["day"] == ("2026-12-02" if rule == "max_days_backfill" else "2026-12-01")
    run.results["serving"] = CheckResult("manifest.status", "ok", "fresh", {"condition": "healthy"})
    found = {"pipeline-failed": pipelines.diagnose_pipeline_failed, "limit-exceeded": pipelines.diagnose_limit_exceeded,
             "validation-failed": pipelines.diagnose_validation_failed}[runbook_id](run)
    assert found.data["problem"] and found.data["cause"] == f"{kind}:{rule}"
    if RUNBOOKS[runbook_id] != kind and kind != "invalid_argument":
        assert found.data["runbook"] == kind.replace("_", "-") or kind == "dependency"
