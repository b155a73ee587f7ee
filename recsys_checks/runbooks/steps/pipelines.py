"""Steps of the pipeline runbooks: what a failed publish left behind (its log, the checkpoint, the blob it wrote)
and the decisions built on it.

The log is classified by :mod:`recsys_checks.judge.pipelinelog` from its whole tail (the suite's failure lines often carry
no kind word); the suite writes ``<checkpoints>/<tenant>/<surface>.json`` = ``{"day": "YYYY-MM-DD"}`` after each
successful day.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys_checks.core.errors import BadInput, ChecksError
from recsys_checks.core.results import CheckResult
from recsys_checks.judge.pipelinelog import Failure, classify, day_after
from recsys_checks.judge.registry.artifact import validate_artifact
from recsys_checks.reach.localfiles import as_path, log_file, open_regular
from recsys_checks.reach.store import TargetStores
from recsys_checks.runbooks.steps.fix import diagnosis
from recsys_checks.runbooks.steps.serving import manifest_status

if TYPE_CHECKING:
    from recsys_checks.runbooks.run import RunbookRun

MAX_LOG_BYTES = 1_000_000
# The row of a store the run cannot write: a dependency failure that a re-run does not cure.
STORE_NOT_WRITABLE = "store_not_writable"
# Read from the end: a long log's failure is in its last lines.
def _fill(run: RunbookRun, value: str) -> str:
    return value.replace("{tenant}", run.tenant).replace("{surface}", run.surface)


def _read_log(source: str) -> tuple[str, str]:
    """(text, where): ``source`` is a file, a directory of run logs (the newest is read) or the log text itself.
    At most the last :data:`MAX_LOG_BYTES` of a file are read; a path that cannot be read is BadInput."""
    path = as_path(source)
    if path is None:
        return source[-MAX_LOG_BYTES:], "the job_log parameter"
    path = log_file(path, "the job log", BadInput)
    try:
        with open_regular(path, "the job log") as fh:  # a FIFO or a device is refused, never waited on
            size = fh.seek(0, 2)
            fh.seek(max(0, size - MAX_LOG_BYTES))
            return fh.read(MAX_LOG_BYTES).decode("utf-8", "replace"), str(path)
    except OSError as exc:
        raise BadInput(f"cannot read the job log {path}: {exc.strerror or exc}") from None


def _numbers(failure: Failure) -> str:
    """A limit's numbers as the suite means them: where counting stopped, or the whole figure."""
    if failure.observed is None:
        return "its numbers are not in the log"
    if failure.at_least:
        return (f"counting stopped at {failure.observed} against {failure.limit}: the day holds at least "
                f"{failure.observed}")
    return f"{failure.observed} against the limit {failure.limit}"


_REFUSED = {"object_store": "the object store", "signal_database": "the signal database",
            "store_permissions": "the store's permissions", "unreachable": "a network peer",
            "registry_document": "a registry document (torn JSON)"}


def _describe(failure: Failure) -> str:
    """The failure in one line: kind and rule, the limit's key and numbers, the bad field, the setting, what refused."""
    what = f"{failure.kind} ({failure.rule})"
    if failure.kind == "limit_exceeded":
        key = failure.key or f"a limit the suite names '{failure.field}' (no `limits` key of the suite is known for it)"
        what += f": {key} tripped, {_numbers(failure)}"
    elif failure.kind == "configuration":
        what += f": {failure.setting}; the run stopped before any day: a re-run fails the same way"
    elif failure.field:
        what += f": field {failure.field}"
    elif failure.kind == "dependency" and failure.rule in _REFUSED:
        what += f": {_REFUSED[failure.rule]} refused" + (f" ({failure.target})" if failure.target else "")
    return what


# --------------------------------------------------------------------------------------------------- checks


def classify_job_log(run: RunbookRun) -> CheckResult:
    """Read the failed job's log (a file, a folder of logs, or its last lines) and classify the failure."""
    source = _fill(run, str(run.params.get("job_log") or "").strip())
    where_ = f"{run.tenant}/{run.surface}"
    if not source:
        return CheckResult("pipeline.job_log", "ok", "no job log given: judging from the checkpoint and the "
                           "manifest only", {"given": False}, None, where_)
    try:
        text, where = _read_log(source)
    except BadInput as exc:
        message = f"the job log cannot be read: {exc}"
        return CheckResult("pipeline.job_log", "fail", message, {"given": True, "source": source}, None, where_,
                           unread=message)
    failure = classify(text)
    day = str(run.params.get("day") or "").strip() or (failure.day if failure else None)
    if failure is None:
        if not text.strip():
            message = f"the job log {where} is empty: whether the last run failed cannot be told"
            return CheckResult("pipeline.job_log", "fail", message, {"given": True, "source": where}, None, where_,
                               unread=message)
        return CheckResult("pipeline.job_log", "ok", f"no failure line in {where}: it ends on a stage line of the "
                           "suite's logger", {"given": True, "source": where, "day": day}, None, where_)
    data = {"given": True, "source": where, **failure.to_dict(), "day": day,
            "message": run.redact(failure.message), "line": run.redact(failure.line),
            "detail": [run.redact(d) for d in failure.detail]}
    return CheckResult("pipeline.job_log", "warn" if failure.rule == "day_range" else "fail",
                       _log_summary(run, failure, day), data, None, where_)


def _log_summary(run: RunbookRun, failure: Failure, day: str | None) -> str:
    quoted = run.redact(failure.text).replace("\n", " / ")
    if failure.rule == "day_range":
        return (f"the run found no day to run: {quoted} (an incremental run whose checkpoint is already at --end is "
                "up to date; a backfill was given an end before its start)")
    if failure.kind == "configuration":
        return f"the run stopped on its setup (exit 2), before any day: {_describe(failure)}: {quoted}"
    on_day = f" on day {day}" if day else " (the failed day is not in the log: no ingest/validate start= line)"
    if failure.kind == "unclassified":
        return f"the run failed{on_day} with a message no known failure explains: {quoted}"
    return f"the run failed{on_day}: {_describe(failure)}: {quoted}"


def read_checkpoint(run: RunbookRun) -> CheckResult:
    """The last day the pipeline published successfully, from its checkpoint ``{"day": "YYYY-MM-DD"}``."""
    source = _fill(run, str(run.params.get("checkpoint") or "").strip())
    where = f"{run.tenant}/{run.surface}"
    if not source:
        return CheckResult("pipeline.checkpoint", "warn", "no checkpoint given: the last published day is taken "
                           "from the manifest's artifacts", {"given": False}, None, where)
    try:
        raw = _read_bytes(run, source)
        day = date.fromisoformat(json.loads(raw)["day"])
    except ChecksError as exc:
        message = f"cannot read the checkpoint {source}: {run.redact(str(exc))}"
        return CheckResult("pipeline.checkpoint", "fail", message, {"given": True, "source": source}, None, where,
                           unread=message)
    except (ValueError, KeyError, TypeError) as exc:
        return CheckResult("pipeline.checkpoint", "fail", f"checkpoint {source} is not {{\"day\": \"YYYY-MM-DD\"}} "
                           f"({type(exc).__name__})", {"given": True, "source": source}, None, where)
    expected = datetime.now(UTC).date() - timedelta(days=1)
    behind = (expected - day).days
    data = {"given": True, "source": source, "day": day.isoformat(), "expected": expected.isoformat(),
            "days_behind": max(behind, 0)}
    if behind > 1:
        return CheckResult("pipeline.checkpoint", "fail", f"the last published day is {day} ({behind} days behind "
                           f"{expected})", data, None, where)
    return CheckResult("pipeline.checkpoint", "ok", f"the last published day is {day}", data, None, where)


def _read_bytes(run: RunbookRun, source: str) -> bytes:
    if "://" in source:
        with TargetStores(run.target) as st:
            raw, _ = st.get(source)
        return raw
    path = Path(source)
    try:
        with open_regular(path, "the checkpoint") as fh:
            return fh.read(64_000)
    except BadInput as exc:
        raise ChecksError(str(exc)) from None
    except OSError as exc:
        raise ChecksError(exc.strerror or str(exc)) from None


def serving_state(run: RunbookRun) -> CheckResult:
    """Serving still points at the last good version: the manifest is valid (a failed run never swaps it)."""
    return manifest_status(run)


def inspect_failed_blob(run: RunbookRun) -> CheckResult:
    """Validate the blob the failed run wrote (named in its error line) to see exactly what the validator saw."""
    log = run.result("job-log")
    blob = log.data.get("blob") if isinstance(log, CheckResult) else None
    where = f"{run.tenant}/{run.surface}"
    if not blob:
        return CheckResult("pipeline.failed_blob", "ok", "the error line names no blob", {"blob": None}, None, where)
    kind = next((k for k in ("popularity", "cooc", "implicit", "content_sim", "session_seq") if f"/{k}/" in blob),
                "popularity")
    try:
        result = validate_artifact(run.target, blob, tenant=run.tenant, surface=run.surface, kind=kind)
    except ChecksError as exc:
        message = f"cannot read {blob}: {run.redact(str(exc))}"
        return CheckResult("pipeline.failed_blob", "warn", message, {"blob": blob}, None, where, unread=message)
    data = {"blob": blob, "kind": kind, "problems": result.data.get("problems") or [result.summary],
            "serving": "no: a failed run never swaps the manifest"}
    if result.status == "fail":
        return CheckResult("pipeline.failed_blob", "fail", f"the orphan blob {blob} is invalid: {result.summary}",
                           data, None, where)
    return CheckResult("pipeline.failed_blob", "ok", f"the blob {blob} validates now: {result.summary}", data, None,
                       where)


# --------------------------------------------------------------------------------------------------- diagnoses


def _context(run: RunbookRun) -> tuple[CheckResult | None, CheckResult | None, CheckResult | None]:
    log, checkpoint, serving = run.result("job-log"), run.result("checkpoint"), run.result("serving")
    return (log if isinstance(log, CheckResult) else None, checkpoint if isinstance(checkpoint, CheckResult) else None,
            serving if isinstance(serving, CheckResult) else None)


def _superseded(day: str | None, checkpoint: CheckResult | None) -> bool:
    """Has a later successful run published the failed day (the checkpoint is at or past it)?"""
    done = checkpoint.data.get("day") if checkpoint is not None else None
    return bool(day and done and done >= day)


def _serving_broken(serving: CheckResult | None) -> bool:
    return serving is not None and serving.data.get("condition") in ("missing", "invalid")


def _failed_day(log: CheckResult, checkpoint: CheckResult | None) -> str | None:
    """The day that did not complete: after a backfill over its limit, the day after the checkpoint (every logged
    day of that run succeeded); else the log's (or the ``day`` parameter's)."""
    done = checkpoint.data.get("day") if checkpoint is not None else None
    if log.data.get("rule") == "max_days_backfill" and done:
        return day_after(done)
    return log.data.get("day")


def _pipeline_diagnosis(run: RunbookRun) -> CheckResult:
    """Shared flow: serving safe first, then the failure (superseded or not), then the row of its kind (the
    runbook's own kind has the re-run lever; the others hand off to their runbook)."""
    log, checkpoint, serving = _context(run)
    if _serving_broken(serving):
        return diagnosis(run, f"serving is NOT on a good version: {serving.summary}", cause="serving_broken")  # type: ignore[union-attr]
    if log is not None and log.unread:  # no cause: the verdict is inconclusive and names the job log
        return diagnosis(run, f"the failure cannot be judged: {log.unread}")
    if log is None or not log.data.get("kind"):
        if serving is not None and serving.data.get("condition") == "stale":
            return diagnosis(run, f"no failure in the job log, but {serving.summary}", cause="pipeline_behind")
        return diagnosis(run, "no failed run to answer: serving is on a valid, fresh version"
                         + ("" if log is not None and log.data.get("given") else " (no job log given)"))
    if log.data.get("rule") == "day_range":
        return _nothing_to_do(run, log, checkpoint)
    day = _failed_day(log, checkpoint)
    if _superseded(day, checkpoint):
        return diagnosis(run, f"the {log.data['kind']} failure of day {day} is already superseded: the checkpoint "
                         f"is at {checkpoint.data['day']}")  # type: ignore[union-attr]
    return _by_kind(run, log, day)


def _nothing_to_do(run: RunbookRun, log: CheckResult, checkpoint: CheckResult | None) -> CheckResult:
    """``endDay must be >= startDay``: up to date when the checkpoint is at the schedule's day, else a bad range."""
    if checkpoint is not None and checkpoint.status == "ok" and checkpoint.data.get("days_behind") == 0:
        return diagnosis(run, f"nothing to do: the checkpoint is at {checkpoint.data['day']}, so the incremental run "
                         "had no day left (`endDay must be >= startDay`); the deployment is up to date")
    where = (f"the checkpoint is at {checkpoint.data['day']}" if checkpoint is not None and checkpoint.data.get("day")
             else "no checkpoint was read")
    return diagnosis(run, f"the run was given an end day before its start day ({where}): {log.summary}",
                     cause="invalid_argument:day_range", values={"rule": "day_range"})


def _by_kind(run: RunbookRun, log: CheckResult, day: str | None) -> CheckResult:
    """The row of the failure's kind, with the values its follow-up names."""
    data = log.data
    kind, rule = data["kind"], data["rule"]
    values: dict[str, Any] = {"day": day or "", "rule": rule}
    safe = "serving is still on the last good version"
    if kind == "unclassified":
        return diagnosis(run, log.summary, cause="unclassified", evidence=[{"source": "job-log", "problem": data.get("line")}])
    if kind == "configuration":
        return diagnosis(run, f"the deployment's configuration stops every run ({data.get('setting')}); {safe}. "
                         f"{log.summary}", cause=f"configuration:{rule}", values={**values, "setting": data.get("setting")})
    if kind == "dependency" and rule == "store_permissions":
        return diagnosis(run, f"the store cannot be written ({data.get('target')}); {safe}. {log.summary}",
                         cause=f"{STORE_NOT_WRITABLE}:{rule}", values={**values, "target": data.get("target")})
    if kind == "dependency":
        return diagnosis(run, f"a dependency failed ({_REFUSED.get(rule, rule)}); {safe}. {log.summary}",
                         cause=f"dependency:{rule}", values={**values, "dependency": _REFUSED.get(rule, rule)})
    if kind == "validation_failed":
        bad = f" (field {data['field']})" if data.get("field") else ""
        bad += f" in {data['file']}" if data.get("file") else ""
        return diagnosis(run, f"validation rule {rule} tripped{bad}; {safe}. {log.summary}",
                         cause=f"validation_failed:{rule}", values={**values, "field": bad})
    if kind == "limit_exceeded":
        return _limit(run, log, values)
    return diagnosis(run, log.summary, cause=f"invalid_argument:{rule}", values=values)


def _limit(run: RunbookRun, log: CheckResult, values: dict[str, Any]) -> CheckResult:
    failure = Failure(**{k: log.data.get(k) for k in ("kind", "rule", "message", "observed", "limit", "field",
                                                       "key")}, at_least=bool(log.data.get("at_least")))
    key = failure.key or f"the limit the suite names '{failure.field}'"
    learn = ("count the day's raw file or its canonical events: the log says only where counting stopped"
             if failure.at_least else "the log's figure is the whole figure")
    return diagnosis(run, f"the limit {key} tripped ({_numbers(failure)}); serving is still on the last good "
                     f"version. {log.summary}", cause=f"limit_exceeded:{failure.rule}",
                     values={**values, "key": key, "numbers": _numbers(failure), "learn": learn})


def diagnose_pipeline_failed(run: RunbookRun) -> CheckResult:
    """Serving safe? Which kind of failure? Transient dependency failures are re-run; others have their runbook."""
    return _pipeline_diagnosis(run)


def diagnose_validation_failed(run: RunbookRun) -> CheckResult:
    """Which validation rule tripped, on which blob; re-run only once the input is fixed."""
    return _pipeline_diagnosis(run)


def diagnose_limit_exceeded(run: RunbookRun) -> CheckResult:
    """Which limit tripped and by how much; re-run with the limit the operator decided on."""
    return _pipeline_diagnosis(run)


def diagnose_stale_artifacts(run: RunbookRun) -> CheckResult:
    """The manifest or the checkpoint is behind the schedule: publish the missing day(s)."""
    log, checkpoint, serving = _context(run)
    if _serving_broken(serving):
        return diagnosis(run, f"the manifest is unusable, not only old: {serving.summary}", cause="serving_broken")  # type: ignore[union-attr]
    stale = serving is not None and serving.data.get("condition") == "stale"
    behind = checkpoint is not None and checkpoint.status == "fail" and checkpoint.data.get("days_behind")
    if not stale and not behind:
        return diagnosis(run, "artifacts are fresh: " + (serving.summary if serving else "no manifest read"))
    why = serving.summary if stale and serving is not None else checkpoint.summary  # type: ignore[union-attr]
    failed = log is not None and log.status == "fail"
    if failed:
        why += f"; the last run failed: {log.summary}"  # type: ignore[union-attr]
    values = {}
    if checkpoint is not None and checkpoint.data.get("day"):  # the scheduler's next day: the one after the last
        values["day"] = (date.fromisoformat(checkpoint.data["day"]) + timedelta(days=1)).isoformat()
    blocker = _blocker(log) if failed else None
    if blocker:  # a re-run fails the same way until the configuration or the store's permissions are fixed
        return diagnosis(run, why, cause="pipeline_behind_blocked", values={**values, "blocker": blocker})
    return diagnosis(run, why, cause="pipeline_behind_failed" if failed else "pipeline_behind", values=values)


def _blocker(log: CheckResult | None) -> str | None:
    """What makes every scheduled run fail the same way: the deployment's configuration, the store's permissions."""
    data = log.data if log is not None else {}
    if data.get("kind") == "configuration":
        return f"the deployment's configuration: {data.get('setting')}"
    if data.get("rule") == "store_permissions":
        return f"the store's permissions: {data.get('target')} cannot be written"
    return None


# --------------------------------------------------------------------------------------------------- verification


def verify_published(run: RunbookRun) -> CheckResult:
    """After the re-run: the checkpoint reached the failed day and the manifest is valid and fresh."""
    manifest = manifest_status(run)
    checkpoint = read_checkpoint(run)
    log = run.result("job-log")
    day = log.data.get("day") if isinstance(log, CheckResult) else None
    data: dict[str, Any] = {"manifest": manifest.data.get("condition"), "checkpoint": checkpoint.data.get("day"),
                            "failed_day": day}
    problems = []
    if manifest.status == "fail":
        problems.append(manifest.summary)
    if day and checkpoint.data.get("day") and checkpoint.data["day"] < day:
        problems.append(f"the checkpoint is at {checkpoint.data['day']}, before the failed day {day}")
    if checkpoint.status == "fail":
        problems.append(checkpoint.summary)
    where = f"{run.tenant}/{run.surface}"
    unread = "; ".join(r.unread for r in (manifest, checkpoint) if r.unread) or None
    if problems:
        return CheckResult("pipeline.verify", "fail", "; ".join(problems), data, None, where, unread=unread)
    return CheckResult("pipeline.verify", "ok", f"published: {manifest.summary}"
                       + (f"; checkpoint at {checkpoint.data['day']}" if checkpoint.data.get("day") else ""),
                       data, None, where)
