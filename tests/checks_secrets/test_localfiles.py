"""Path parameters name regular files only: a FIFO, a device or a directory is refused at once, never waited on."""

from __future__ import annotations

import os
import threading

import pytest

from recsys_checks.core.errors import BadInput
from recsys_checks.reach.localfiles import open_regular


def test_a_regular_file_opens(tmp_path):
    path = tmp_path / "log.txt"
    path.write_bytes(b"run failed: segment must be set\n")
    with open_regular(path, "the job log") as fh:
        assert fh.read() == b"run failed: segment must be set\n"


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    outcome: list[str] = []

    def attempt() -> None:
        try:
            open_regular(fifo, "the job log")
        except BadInput as exc:
            outcome.append(str(exc))

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "opening a FIFO blocked"
    assert outcome and "a FIFO" in outcome[0]


@pytest.mark.parametrize(("path", "word"), [("/dev/zero", "character device"), ("/", "directory")])
def test_devices_and_directories_are_refused(path, word):
    with pytest.raises(BadInput, match=word):
        open_regular(path, "the report")


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        open_regular(tmp_path / "nope", "the checkpoint")


def test_a_runbook_given_a_fifo_as_its_job_log_or_checkpoint_says_so_at_once(tmp_path):
    """Through the pipeline runbook's own steps: a FIFO job log is refused before the run; one that a log became
    after the run started, and a FIFO checkpoint, are unread, not waited on until the cell timeout."""
    from recsys_checks.reach.settings import Target
    from recsys_checks.runbooks.run import RunbookRun
    from recsys_checks.runbooks.steps import pipelines

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    target = Target.from_env({"RECSYS_ARTIFACT_MANIFEST_TEMPLATE": f"file://{tmp_path}/c/{{tenant}}/{{surface}}/m.json"})
    with pytest.raises(BadInput, match="FIFO"):
        RunbookRun("pipeline-failed", target=target, record_path=tmp_path / "r.json", job_log=str(fifo))
    log_path = tmp_path / "run.log"
    log_path.write_text("run failed: segment must be set\n")
    run = RunbookRun("pipeline-failed", target=target, record_path=tmp_path / "r.json", job_log=str(log_path),
                     checkpoint=str(fifo))
    log_path.unlink()
    os.mkfifo(log_path)
    log = pipelines.classify_job_log(run)
    assert log.status == "fail" and log.unread and "FIFO" in log.summary
    checkpoint = pipelines.read_checkpoint(run)
    assert checkpoint.status == "fail" and checkpoint.unread and "FIFO" in checkpoint.summary


def test_a_fifo_as_a_report_or_an_exposure_log_is_refused(tmp_path):
    from recsys_checks.judge.evaluation.logs import read_log
    from recsys_checks.judge.evaluation.report import check_eval_report

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(BadInput, match="FIFO|not a regular file"):
        check_eval_report(fifo)
    with pytest.raises(BadInput, match="FIFO|not a regular file"):
        list(read_log(fifo, "exposure"))
