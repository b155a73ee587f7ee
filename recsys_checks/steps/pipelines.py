"""Steps of the pipeline runbooks: what a failed publish left behind (its error line, the checkpoint, the blob it
wrote) and the decisions built on it.

The suite's pipelines end a failed run with ``run failed: <kind>: <message>`` (kinds ``invalid_argument``,
``limit_exceeded``, ``validation_failed``, ``dependency``) and write ``<checkpoints>/<tenant>/<surface>.json`` =
``{"day": "YYYY-MM-DD"}`` after each successful day.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..artifact import validate_artifact
from ..errors import ChecksError
from ..results import CheckResult
from ..store import TargetStores
from .fix import diagnosis, rerun_lever
from .serving import manifest_status

if TYPE_CHECKING:
    from ..runrecord import RunbookRun

ERROR_KINDS = ("invalid_argument", "limit_exceeded", "validation_failed", "dependency")
MAX_LOG_BYTES = 1_000_000
_FAILED = re.compile(r"run failed: (invalid_argument|limit_exceeded|validation_failed|dependency|held): ([^\"\n]*)")
_DAY = re.compile(r"\"day\": \"(\d{4}-\d{2}-\d{2})\"|\bday (\d{4}-\d{2}-\d{2})\b|\bon (\d{4}-\d{2}-\d{2})\b")
_STEP = re.compile(r"\"step\": \"(\w+)\", \"kind\": (?:\"(\w+)\"|null), \"status\": \"failed\"")
_URI = re.compile(r"((?:file|s3)://\S+?\.json)")
_LIMIT = re.compile(r"(\d+) (events|distinct items) .*? exceed (max_\w+)=(\d+)")

# Which validation rule a message names, most specific first.
_VALIDATION_RULES = (
    ("hashes to", "version_hash"), ("build.version", "version_hash"), ("window", "window"),
    ("artifact_type", "artifact_type"), ("expected '", "tenant_surface"), ("item_id", "item_id"),
    ("count", "counts"), ("above the limit", "max_items"), ("neighbours", "max_neighbours"),
    ("not valid JSON", "json"), ("is not an exposure", "event_schema"),
)
_DEPENDENCY_RULES = (
    ("changed during the publish", "concurrent_publish"), ("unreadable", "manifest_unreadable"),
    ("object store", "object_store"), ("injected failure", "injected"),
)


@dataclass
class Failure:
    kind: str
    message: str
    rule: str
    day: str | None
    step: str | None
    blob: str | None
    observed: int | None = None
    limit: int | None = None


def classify(text: str) -> Failure | None:
    """The last ``run failed:`` line of a job's log, classified down to the rule or limit that tripped."""
    found = list(_FAILED.finditer(text))
    if not found:
        return None
    kind, message = found[-1].group(1), found[-1].group(2).strip()
    day_match = _DAY.search(text)
    day = next((g for g in day_match.groups() if g), None) if day_match else None
    step_match = _STEP.search(text)
    step = step_match.group(1) if step_match else None
    uri = _URI.search(message)
    observed = limit = None
    rule = "other"
    if kind == "limit_exceeded":
        m = _LIMIT.search(message)
        if m:
            observed, rule, limit = int(m.group(1)), m.group(3), int(m.group(4))
    elif kind == "validation_failed":
        rule = next((name for needle, name in _VALIDATION_RULES if needle in message), "other")
    elif kind == "held":
        rule = "hold"
    elif kind == "dependency":
        rule = next((name for needle, name in _DEPENDENCY_RULES if needle in message), "other")
        at = re.search(r"injected failure at (\w+)", message)
        step = step or (at.group(1) if at else None)
    else:
        rule = "arguments"
    return Failure(kind, message, rule, day, step, uri.group(1) if uri else None, observed, limit)


def _fill(run: RunbookRun, value: str) -> str:
    return value.replace("{tenant}", run.tenant).replace("{surface}", run.surface)


def _read_log(source: str) -> tuple[str, str]:
    """(text, where): ``source`` is a file, a directory of run logs (the newest is read) or the log text itself."""
    path = Path(source)
    try:
        is_dir, is_file = path.is_dir(), path.is_file()
    except (OSError, ValueError):
        is_dir = is_file = False
    if is_dir:
        logs = sorted((p for p in path.iterdir() if p.is_file()), key=lambda p: (p.stat().st_mtime, p.name))
        if not logs:
            return "", f"{path} (no logs in it)"
        path, is_file = logs[-1], True
    if is_file:
        with path.open("rb") as fh:
            return fh.read(MAX_LOG_BYTES).decode("utf-8", "replace"), str(path)
    return source[:MAX_LOG_BYTES], "the job_log parameter"


# --------------------------------------------------------------------------------------------------- checks


def classify_job_log(run: RunbookRun) -> CheckResult:
    """Read the failed job's log (a file, a folder of logs, or its error line) and classify the failure."""
    source = _fill(run, str(run.params.get("job_log") or "").strip())
    if not source:
        return CheckResult("pipeline.job_log", "ok", "no job log given: judging from the checkpoint and the "
                           "manifest only", {"given": False}, None, f"{run.tenant}/{run.surface}")
    text, where = _read_log(source)
    failure = classify(text)
    day = str(run.params.get("day") or "").strip() or (failure.day if failure else None)
    if failure is None:
        return CheckResult("pipeline.job_log", "ok", f"no `run failed:` line in {where}: the last run did not fail",
                           {"given": True, "source": where, "day": day}, None, f"{run.tenant}/{run.surface}")
    data = {"given": True, "source": where, "kind": failure.kind, "rule": failure.rule, "day": day,
            "step": failure.step, "blob": failure.blob, "observed": failure.observed, "limit": failure.limit,
            "message": run.redact(failure.message)}
    detail = f"{failure.kind} ({failure.rule})" + (f" on day {day}" if day else "")
    return CheckResult("pipeline.job_log", "fail", f"the run failed: {detail}: {run.redact(failure.message)}", data,
                       None, f"{run.tenant}/{run.surface}")


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
        with path.open("rb") as fh:
            return fh.read(64_000)
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


def _superseded(log: CheckResult, checkpoint: CheckResult | None) -> bool:
    """Has a later successful run published the failed day (the checkpoint is at or past it)?"""
    day, done = log.data.get("day"), checkpoint.data.get("day") if checkpoint is not None else None
    return bool(day and done and done >= day)


def _serving_broken(serving: CheckResult | None) -> bool:
    return serving is not None and serving.data.get("condition") in ("missing", "invalid")


def _pipeline_diagnosis(run: RunbookRun, expected: str | None) -> CheckResult:
    """Shared flow: serving safe first, then the failure (superseded or not), then the lever for its kind."""
    log, checkpoint, serving = _context(run)
    if _serving_broken(serving):
        return diagnosis(run, f"serving is NOT on a good version: {serving.summary}", cause="serving_broken",  # type: ignore[union-attr]
                         lever="manifest-rollback", runbook="rollback-manifest")
    if log is None or log.status != "fail":
        if serving is not None and serving.data.get("condition") == "stale":
            return rerun_lever(run, f"no failure in the job log, but {serving.summary}", cause="pipeline_behind",
                                  runbook="stale-artifacts")
        return diagnosis(run, "no failed run to answer: serving is on a valid, fresh version"
                         + ("" if log is not None and log.data.get("given") else " (no job log given)"))
    kind, rule, day = log.data["kind"], log.data["rule"], log.data.get("day")
    if _superseded(log, checkpoint):
        return diagnosis(run, f"the {kind} failure of day {day} is already superseded: the checkpoint is at "
                         f"{checkpoint.data['day']}")  # type: ignore[union-attr]
    values = {"day": day or ""}
    if kind == "held":
        return diagnosis(run, f"publishing is held on purpose: {log.summary}", cause="held", runbook="hold-changes",
                         no_lever="the surface is held (stop shipping); clear the hold with the hold-changes runbook "
                                  "once the reason is resolved, then re-run the day")
    if expected is not None and kind != expected:
        other = kind.replace("_", "-")
        runbook = other if kind in ("limit_exceeded", "validation_failed") else "pipeline-failed"
        return diagnosis(run, log.summary, cause=kind, runbook=runbook,
                         no_lever=f"this is a {kind} failure: follow the {runbook} runbook")
    if kind == "dependency":
        return rerun_lever(run, f"a dependency failed ({rule}); serving is still on the last good version. "
                              f"{log.summary}", cause=f"dependency:{rule}", values=values)
    if kind == "validation_failed":
        found = rerun_lever(run, f"validation rule {rule} tripped; serving is still on the last good version. "
                               f"{log.summary}", cause=f"validation_failed:{rule}", values=values)
        if found.data["lever"] is None:
            found.data["no_lever"] = ("the input data is bad: fix it upstream (or the builder), then re-run the day "
                                      "(give the re-run as the rerun_command parameter to let this runbook run it)")
        return found
    if kind == "limit_exceeded":
        observed, limit = log.data.get("observed"), log.data.get("limit")
        found = rerun_lever(run, f"{rule} tripped ({observed} > {limit}); serving is still on the last good "
                               f"version. {log.summary}", cause=f"limit_exceeded:{rule}", values=values)
        if found.data["lever"] is None:
            found.data["no_lever"] = (f"decide first: if {observed} is genuine volume, raise {rule} above it and "
                                      "re-run; if not, find the duplicate or runaway producer. Give the re-run as "
                                      "rerun_command to let this runbook run it")
        return found
    return diagnosis(run, log.summary, cause=f"invalid_argument:{rule}",
                     no_lever="the job was started with bad arguments or configuration: fix them and re-run")


def diagnose_pipeline_failed(run: RunbookRun) -> CheckResult:
    """Serving safe? Which kind of failure? Transient dependency failures are re-run; others have their runbook."""
    return _pipeline_diagnosis(run, "dependency")


def diagnose_validation_failed(run: RunbookRun) -> CheckResult:
    """Which validation rule tripped, on which blob; re-run only once the input is fixed."""
    return _pipeline_diagnosis(run, "validation_failed")


def diagnose_limit_exceeded(run: RunbookRun) -> CheckResult:
    """Which limit tripped and by how much; re-run with the limit the operator decided on."""
    return _pipeline_diagnosis(run, "limit_exceeded")


def diagnose_stale_artifacts(run: RunbookRun) -> CheckResult:
    """The manifest or the checkpoint is behind the schedule: publish the missing day(s)."""
    log, checkpoint, serving = _context(run)
    if _serving_broken(serving):
        return diagnosis(run, f"the manifest is unusable, not only old: {serving.summary}", cause="serving_broken",  # type: ignore[union-attr]
                         lever="manifest-rollback", runbook="rollback-manifest")
    stale = serving is not None and serving.data.get("condition") == "stale"
    behind = checkpoint is not None and checkpoint.status == "fail" and checkpoint.data.get("days_behind")
    if not stale and not behind:
        return diagnosis(run, "artifacts are fresh: " + (serving.summary if serving else "no manifest read"))
    why = serving.summary if stale and serving is not None else checkpoint.summary  # type: ignore[union-attr]
    if log is not None and log.status == "fail":
        why += f"; the last run failed: {log.summary}"
    values = {}
    if checkpoint is not None and checkpoint.data.get("day"):  # the scheduler's next day: the one after the last
        values["day"] = (date.fromisoformat(checkpoint.data["day"]) + timedelta(days=1)).isoformat()
    return rerun_lever(run, why, cause="pipeline_behind", values=values,
                       runbook="pipeline-failed" if log is not None and log.status == "fail" else None)


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
