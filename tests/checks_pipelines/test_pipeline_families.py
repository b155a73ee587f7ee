"""The failure classifier against the families of the suite's failure lines, not against their examples.

Each family is generated (other paths, numbers, setting names, hosts, days) and checked against an oracle written
here from RECSYS-INTERFACES §1.5, apart from the classifier: what kind a line of that family is, which `limits` key the
suite reads for it, what the numbers mean, which day failed and what a runbook must never say about it.
"""

from __future__ import annotations

import os
from datetime import date, timedelta

import pytest
import specskit
from hypothesis import given, settings
from hypothesis import strategies as st
from suite_lines import suite_family

from recsys_checks.core.errors import BadInput
from recsys_checks.core.results import CheckResult
from recsys_checks.judge.pipelinelog import classify
from recsys_checks.reach.localfiles import check_log_source
from recsys_checks.reach.settings import Target
from recsys_checks.runbooks.run import RunbookRun
from recsys_checks.runbooks.steps import pipelines
from recsys_checks.runbooks.verdict import decide

# The oracle: §1.5's words for each compute limit → the suite's `limits` key, and whether the number printed is where
# counting stopped (`A >= B`) or the whole figure (`A > B`).
SUITE_KEYS = {"distinct user": "max_users_per_run", "items per user": "max_items_per_user",
              "catalog item": "max_items_per_artifact", "items per session": "max_items_per_session",
              "session": "max_sessions_per_run"}
VALIDATOR_COUNTS = {"canonical event count": ("events", "max_events_per_run"),
                    "distinct item count": ("items", "max_distinct_items_per_run"),
                    "distinct session count": ("sessions", "max_sessions_per_run")}
SOURCES = ("config", "object store", "raw source", "signal store", "catalog")

words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=10)
paths = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=8),
                 min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts))
counts = st.integers(min_value=1, max_value=10**9)
days = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 1))
hosts = st.tuples(st.integers(1, 254), st.integers(1, 65535)).map(lambda t: f"10.0.0.{t[0]}:{t[1]}")


def stages(day: date, n: int = 1) -> str:
    """The stage lines of ``n`` days from ``day``, as the suite's logger prints them."""
    out = []
    for i in range(n):
        d = day + timedelta(days=i)
        window = f"start={d}T00:00:00Z end={d + timedelta(days=1)}T00:00:00Z"
        out += [f"2026/12/02 13:41:15 INFO ingest: start tenant=demo surface=home {window}",
                f"2026/12/02 13:41:15 INFO validate: start tenant=demo surface=home {window}",
                "2026/12/02 13:41:15 INFO publish: done tenant=demo surface=home"]
    return "\n".join(out) + "\n"


def _run(tmp_path, runbook_id="pipeline-failed", **params) -> RunbookRun:
    target = Target.from_env({"RECSYS_ARTIFACT_MANIFEST_TEMPLATE":
                              f"file://{tmp_path}/current/{{tenant}}/{{surface}}/manifest.json"})
    return RunbookRun(runbook_id, spec=specskit.spec(runbook_id), target=target,
                      record_path=tmp_path / "out" / "record.json", **params)


def _diagnose(tmp_path, text: str, runbook_id="pipeline-failed", checkpoint_day: date | None = None, between=None):
    run = _run(tmp_path, runbook_id, job_log=text)
    if between is not None:
        between()
    run.results["job-log"] = pipelines.classify_job_log(run)
    if checkpoint_day is not None:
        behind = (date.today() - timedelta(days=1) - checkpoint_day).days
        run.results["checkpoint"] = CheckResult("pipeline.checkpoint", "ok" if behind <= 1 else "fail", "cp",
                                                {"given": True, "day": checkpoint_day.isoformat(),
                                                 "days_behind": max(behind, 0)})
    run.results["serving"] = CheckResult("manifest.status", "ok", "fresh", {"condition": "healthy"})
    step = next(s for s in run.spec.steps if s.role == "diagnose")
    run.results[step.id] = step.resolve()(run)
    return run, run.results[step.id]


# --------------------------------------------------------------------------------------------------- setup (exit 2)


@settings(max_examples=60, deadline=None)
@given(source=st.sampled_from(SOURCES), setting=st.lists(words, min_size=1, max_size=3).map(" ".join),
       value=words)
def test_a_setup_error_naming_an_unsupported_setting_is_configuration(source, setting, value):
    """`<source> error: unsupported <setting>: <value>` stops the run before any day: configuration, the setting."""
    line = f"{source} error: unsupported {setting}: {value}"
    assert suite_family(line) == "setup"
    failure = classify(line + "\n")
    assert (failure.kind, failure.exit_code, failure.day) == ("configuration", 2, None)
    assert setting in failure.setting and value in failure.setting


@settings(max_examples=40, deadline=None)
@given(path=paths, reason=st.sampled_from(["no such file or directory", "permission denied", "is a directory"]))
def test_a_setup_error_on_a_file_names_the_file(path, reason):
    failure = classify(f"config error: open {path}: {reason}\n")
    assert failure.kind == "configuration" and path in failure.setting


@settings(max_examples=40, deadline=None)
@given(flag=st.sampled_from(["start", "end"]), day=days)
def test_an_invalid_day_flag_is_configuration_naming_the_flag(flag, day):
    bad = f"{day.year}-{day.month}-{day.day}"
    failure = classify(f'invalid {flag}: parsing time "{bad}" as "2006-01-02": cannot parse "{day.day}" as "02"\n')
    assert (failure.kind, failure.setting, failure.exit_code) == ("configuration", f"--{flag}", 2)


@pytest.mark.parametrize("line", ["missing required flags", "unknown command: publsh",
                                  "config error: parse config: invalid character '}' looking for beginning of object "
                                  "key string"])
def test_other_setup_lines_are_configuration(line):
    assert classify(line).kind == "configuration"


@settings(max_examples=25, deadline=None)
@given(source=st.sampled_from(SOURCES), setting=words, value=words)
def test_a_setup_failure_is_never_healthy_and_never_offers_a_rerun(tmp_path_factory, source, setting, value):
    """With a fresh manifest, the runbook still reports the configuration; its advice says a re-run fails the same way."""
    tmp_path = tmp_path_factory.mktemp("setup")
    run, found = _diagnose(tmp_path, f"{source} error: unsupported {setting}: {value}")
    assert found.data["problem"] and found.data["cause"].startswith("configuration:")
    assert found.data["lever"] is None and "a re-run fails the same way" in found.data["no_lever"]
    assert decide(run.spec, run.results, None).verdict != "healthy"


# --------------------------------------------------------------------------------------------------- limits


@settings(max_examples=80, deadline=None)
@given(what=st.sampled_from(sorted(SUITE_KEYS)), limit=counts, day=days)
def test_a_compute_limit_maps_to_the_suites_key_with_its_numbers_as_meant(what, limit, day):
    op = ">" if what == "catalog item" else ">="
    observed = limit + 2 if op == ">" else limit
    line = f"run failed: limit_exceeded: {what} limit exceeded: {observed} {op} {limit}: limit_exceeded"
    failure = classify(stages(day) + line + "\n")
    assert (failure.kind, failure.key, failure.observed, failure.limit) == (
        "limit_exceeded", SUITE_KEYS[what], observed, limit)
    assert failure.at_least == (op == ">=")  # `>=`: counting stopped there; the day may hold more
    assert failure.day == day.isoformat()


@settings(max_examples=40, deadline=None)
@given(what=words.filter(lambda w: w not in SUITE_KEYS and w not in ("session",)), limit=counts)
def test_a_limit_of_unknown_words_gets_no_made_up_key(what, limit):
    failure = classify(f"run failed: limit_exceeded: {what} limit exceeded: {limit} >= {limit}: limit_exceeded")
    assert failure.kind == "limit_exceeded" and failure.key is None and failure.observed == limit


@settings(max_examples=40, deadline=None)
@given(what=st.sampled_from(sorted(VALIDATOR_COUNTS)), limit=counts)
def test_a_validator_count_is_where_counting_stopped(what, limit):
    name, key = VALIDATOR_COUNTS[what]
    failure = classify(f"run failed: validation_failed: {what} exceeds max: validation_failed\n"
                       f"{name}={limit + 1} max={limit}\n")
    assert (failure.key, failure.observed, failure.limit, failure.at_least) == (key, limit + 1, limit, True)


@settings(max_examples=25, deadline=None)
@given(what=st.sampled_from(["distinct user", "items per user", "session"]), limit=st.integers(2, 10**6))
def test_limit_advice_never_says_raise_it_above_the_stopped_count(tmp_path_factory, what, limit):
    """The advice states the figure as a floor and says how to learn the day's real volume first."""
    tmp_path = tmp_path_factory.mktemp("limit")
    line = f"run failed: limit_exceeded: {what} limit exceeded: {limit} >= {limit}: limit_exceeded"
    _, found = _diagnose(tmp_path, stages(date(2026, 12, 1)) + line, "limit-exceeded")
    advice = found.data["no_lever"]
    assert f"counting stopped at {limit} against {limit}: the day holds at least {limit}" in advice
    assert SUITE_KEYS[what] in advice and "raw file" in advice and "canonical events" in advice
    assert f"above {limit}" not in advice


# --------------------------------------------------------------------------------------------------- backfill


@settings(max_examples=40, deadline=None)
@given(first=days, done=st.integers(1, 30), extra=st.integers(1, 30))
def test_the_failed_day_after_a_backfill_limit_is_the_day_after_the_last_published(tmp_path_factory, first, done,
                                                                                   extra):
    tmp_path = tmp_path_factory.mktemp("backfill")
    text = stages(first, done) + f"run failed: backfill exceeds max days: {done + extra} > {done}\n"
    expected = (first + timedelta(days=done)).isoformat()
    assert classify(text).day == expected
    _, found = _diagnose(tmp_path, text, "limit-exceeded", checkpoint_day=first + timedelta(days=done - 1))
    assert found.data["problem"] and found.data["cause"] == "limit_exceeded:max_days_backfill"
    assert "superseded" not in found.summary and expected in found.data["no_lever"]


# --------------------------------------------------------------------------------------------------- dependencies


@settings(max_examples=40, deadline=None)
@given(verb=st.sampled_from(["Get", "Put", "Head"]), host=hosts, bucket=words)
def test_an_object_store_that_refused_is_a_dependency_of_the_object_store(verb, host, bucket):
    line = (f'run failed: {verb} "http://{host}/{bucket}/?location=": dial tcp {host}: connect: connection '
            "refused")
    assert suite_family(line) == "object store refused"
    failure = classify(line)
    assert (failure.kind, failure.rule) == ("dependency", "object_store") and host in failure.target


@settings(max_examples=40, deadline=None)
@given(user=words, database=words, host=hosts)
def test_a_signal_database_that_refused_is_a_dependency_of_the_database(user, database, host):
    ip = host.split(":")[0]
    line = (f"run failed: failed to connect to `user={user} database={database}`: {host} ({ip}): dial error: "
            f"dial tcp {host}: connect: connection refused")
    assert suite_family(line) == "signal database refused"
    failure = classify(line)
    assert (failure.kind, failure.rule) == ("dependency", "signal_database") and database in failure.target


@settings(max_examples=25, deadline=None)
@given(path=paths)
def test_a_store_that_cannot_be_written_says_fix_permissions_first(tmp_path_factory, path):
    tmp_path = tmp_path_factory.mktemp("perm")
    line = f"run failed: open {path}/.v1.json.tmp-123: permission denied"
    failure = classify(line)
    assert (failure.kind, failure.rule, failure.target) == ("dependency", "store_permissions", f"{path}/.v1.json.tmp-123")
    _, found = _diagnose(tmp_path, stages(date(2026, 12, 1)) + line)
    assert found.data["cause"].startswith("store_not_writable:") and found.data["lever"] is None
    assert "fix the permissions" in found.data["no_lever"]


@settings(max_examples=40, deadline=None)
@given(stream=st.sampled_from(["exposure", "outcome"]), error=st.sampled_from(
    ["unexpected end of JSON input", "invalid character 'x' looking for beginning of value"]), day=days)
def test_a_raw_line_the_decoder_cannot_read_is_bad_data_of_that_day(stream, error, day):
    failure = classify(stages(day) + f"run failed: decode {stream} jsonl: {error}\n")
    assert failure.kind == "validation_failed" and failure.day == day.isoformat() and stream in failure.file


# --------------------------------------------------------------------------------------------------- unknown


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet="abcdefghijklmnopqrstuvwxyz ._", min_size=1, max_size=40).filter(str.strip))
def test_a_last_line_no_family_knows_is_unclassified_never_none(text):
    for log in (stages(date(2026, 12, 1)) + text, stages(date(2026, 12, 1)) + "run failed: zz " + text):
        failure = classify(log + "\n")
        assert failure is not None and failure.kind == "unclassified"


def test_end_before_start_on_an_up_to_date_checkpoint_is_nothing_to_do(tmp_path):
    run, found = _diagnose(tmp_path, "run failed: endDay must be >= startDay",
                           checkpoint_day=date.today() - timedelta(days=1))
    assert not found.data["problem"] and "up to date" in found.summary
    assert decide(run.spec, run.results, None).verdict == "healthy"


def test_end_before_start_on_a_checkpoint_behind_is_still_reported(tmp_path):
    _, found = _diagnose(tmp_path, "run failed: endDay must be >= startDay",
                         checkpoint_day=date.today() - timedelta(days=9))
    assert found.data["cause"] == "invalid_argument:day_range"


# --------------------------------------------------------------------------------------------------- the job log path


@pytest.fixture
def odd_logs(tmp_path):
    """A FIFO, an empty folder and a path that does not exist, each named as a job log."""
    fifo = tmp_path / "job.fifo"
    os.mkfifo(fifo)
    empty = tmp_path / "no-logs"
    empty.mkdir()
    return {"fifo": fifo, "empty folder": empty, "missing": tmp_path / "gone" / "run.log"}


@pytest.mark.parametrize("which", ["fifo", "empty folder", "missing"])
def test_a_job_log_that_is_no_regular_readable_file_is_refused_before_the_run(odd_logs, which):
    from recsys_checks.runbooks.runner import check_parameters

    with pytest.raises(BadInput, match="job log"):
        check_parameters(specskit.spec("pipeline-failed"), {"job_log": str(odd_logs[which])}, False)


def test_a_job_log_folder_with_a_log_and_log_text_are_accepted(tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / "a.log").write_text(stages(date(2026, 12, 1)))
    check_log_source(str(folder))
    check_log_source("run failed: segment must be set")


@pytest.mark.parametrize("runbook_id", ["pipeline-failed", "limit-exceeded", "validation-failed", "stale-artifacts"])
def test_a_job_log_that_becomes_unreadable_mid_run_is_inconclusive_naming_it(tmp_path, runbook_id):
    log = tmp_path / "run.log"
    log.write_text(stages(date(2026, 12, 1)))

    def replace_by_a_fifo():  # after the run started: its parameters were checked
        log.unlink()
        os.mkfifo(log)

    run, _ = _diagnose(tmp_path, str(log), runbook_id, between=replace_by_a_fifo)
    verdict = decide(run.spec, run.results, None)
    assert verdict.verdict == "inconclusive" and str(log) in verdict.next_action
