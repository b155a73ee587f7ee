"""The run record is written whole or not at all: a full disk after a change says what was changed (exit 1), never
leaves a cut record, and a run in progress leaves a pointer in --out to where its record is being written."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from notebookkit import replace_cell

from recsys_checks.cli.commands import main
from recsys_checks.core.errors import RecordNotWritten
from recsys_checks.core.files import write_atomic
from recsys_checks.core.results import ActionResult, CheckResult, Plan
from recsys_checks.reach.settings import Target
from recsys_checks.runbooks import runner as execute
from recsys_checks.runbooks.remedy import Remedy
from recsys_checks.runbooks.run import RECORD_MAX_ROWS, RunbookRun
from recsys_checks.runbooks.spec import notebooks_dir, runbooks_dir
from recsys_checks.runbooks.steps import fix

BEFORE = "file:///store/objectstore/demo/home/popularity/" + "a" * 64 + ".json"
AFTER = "file:///store/objectstore/demo/home/popularity/" + "b" * 64 + ".json"
AUDIT = "file:///store/registry/audit/demo/home/20260101T000000.000000Z-0123456789ab.json"


def _run(tmp_path: Path) -> RunbookRun:
    target = Target.from_env({"RECSYS_BASE_URL": "http://127.0.0.1:9",
                              "RECSYS_ARTIFACT_MANIFEST_TEMPLATE": f"file://{tmp_path}/current/{{tenant}}/{{surface}}/manifest.json"})
    return RunbookRun("rollback-manifest", target=target, record_path=tmp_path / "out" / "rollback-manifest.result.json")


def _applied_rollback(run: RunbookRun) -> Remedy:
    plan = Plan("manifest.rollback", "demo/home", '"etag-1"', [
        {"what": "current.popularity", "kind": "popularity", "before": BEFORE, "after": AFTER}])
    return Remedy("applied", "manifest-rollback", "rolled popularity back: done",
                  [ActionResult("applied", "rolled back", plan, audit=AUDIT)])


def _full_disk_after(monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    """os.write as on a disk with ``limit`` bytes left: the write that crosses it writes part, then ENOSPC."""
    real = os.write
    left = [limit]

    def write(fd: int, data) -> int:
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real(fd, bytes(data[: left[0]]))
        left[0] -= n
        return n

    monkeypatch.setattr(os, "write", write)


def test_a_full_disk_after_a_change_says_what_was_changed_and_leaves_the_previous_record_whole(tmp_path, monkeypatch):
    run = _run(tmp_path)
    run.step("manifest-status", lambda r: CheckResult("manifest.status", "fail", "popularity is empty"), show=False)
    run.step("diagnose", lambda r: fix.diagnosis(r, "popularity is empty", cause="empty_artifact"), show=False)
    before = run.record_path.read_text()
    _full_disk_after(monkeypatch, 2048)  # less than the record: it is cut mid-write
    with pytest.raises(RecordNotWritten) as caught:
        run.step("fix", _applied_rollback, show=False)
    message = str(caught.value)
    assert caught.value.exit_code == 1
    assert "No space left on device" in message and "applied 1 change(s)" in message
    assert f"manifest.rollback current.popularity: {BEFORE} -> {AFTER} (audit record {AUDIT})" in message
    # the previous complete record is there, whole; no temporary or cut file is left beside it
    assert run.record_path.read_text() == before and json.loads(before)["steps"][-1]["step"] == "diagnose"
    assert sorted(p.name for p in run.record_path.parent.iterdir()) == [run.record_path.name]


def test_a_full_disk_before_any_change_says_nothing_was_changed_and_leaves_no_record(tmp_path, monkeypatch):
    run = _run(tmp_path)
    _full_disk_after(monkeypatch, 100)
    with pytest.raises(RecordNotWritten, match="no record was left.*this run changed nothing"):
        run.step("manifest-status", lambda r: CheckResult("manifest.status", "ok", "valid"), show=False)
    assert list(run.record_path.parent.iterdir()) == []


def test_write_atomic_keeps_the_old_file_when_the_rename_fails(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    path.write_text("old\n")

    def refuse(*args):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        write_atomic(path, b"new\n")
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_a_long_list_is_recorded_cut_and_counted_while_the_step_keeps_it_whole(tmp_path):
    run = _run(tmp_path)
    versions = [{"version": f"{n:064x}", "current": n == 0} for n in range(RECORD_MAX_ROWS * 30)]
    run.step("history", lambda r: CheckResult("manifest.history", "ok", "3000 versions", {"versions": versions}),
             show=False)
    assert len(run.result("history").data["versions"]) == RECORD_MAX_ROWS * 30  # later steps see every row
    kept = json.loads(run.record_path.read_text())["steps"][0]["result"]["data"]
    assert kept["versions"] == versions[:RECORD_MAX_ROWS] and kept["versions_not_recorded"] == RECORD_MAX_ROWS * 29


# --- the runner: moving the outputs into --out -----------------------------------------------------------------


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(runbooks_dir(), tmp_path / "runbooks")
    shutil.copytree(notebooks_dir(), tmp_path / "notebooks")
    monkeypatch.setenv("RECSYS_RUNBOOKS_DIR", str(tmp_path / "runbooks"))
    monkeypatch.setenv("RECSYS_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("RECSYS_ARTIFACT_MANIFEST_TEMPLATE",
                       f"file://{tmp_path}/store/registry/current/{{tenant}}/{{surface}}/manifest.json")
    monkeypatch.chdir(tmp_path)
    return tmp_path




def test_move_whole_into_a_missing_folder_leaves_the_source_and_nothing_else(tmp_path):
    source = tmp_path / "work" / "r.json"
    source.parent.mkdir()
    source.write_text("{}\n")
    with pytest.raises(OSError):
        execute.move_whole(source, tmp_path / "gone" / "r.json")
    assert source.read_text() == "{}\n" and not (tmp_path / "gone").exists()


@pytest.mark.slow
def test_an_out_folder_gone_during_the_run_is_exit_1_with_the_outputs_kept_and_no_cut_record(offline, capsys):
    """The --out folder removed while the notebook runs (as a disk that went away): exit 1 from the CLI, the
    message says where the outputs are kept, and --out holds no record, whole or cut."""
    replace_cell(offline, "empty-recs", "step:config-rules",
                  "import os, shutil\nshutil.rmtree(os.environ['RECSYS_RUNBOOK_OUT'])\n"
                  "run.step('config-rules', serving.config_and_rules)")
    code = main(["runbook", "run", "empty-recs", "--out", str(offline / "out")])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "could not be written to" in err and "no partial file was left" in err and "this run changed nothing" in err
    kept = err.split("kept in ", 1)[1].split(",")[0].split(" ")[0]
    assert json.loads(Path(kept).read_text())["runbook"] == "empty-recs"  # whole, where the message says
    assert not (offline / "out").exists()
    shutil.rmtree(Path(kept).parent)


FULL_DISK_FIX = """
import errno, os
from recsys_checks.core.results import ActionResult, Plan
from recsys_checks.runbooks.run import Remedy

def applied(r):
    plan = Plan("manifest.rollback", "demo/home", '"e"', [{"what": "current.popularity", "kind": "popularity",
                                                           "before": "file:///a.json", "after": "file:///b.json"}])
    return Remedy("applied", "manifest-rollback", "rolled back: done",
                  [ActionResult("applied", "rolled back", plan, audit="file:///audit/x.json")])

def full(fd, data):  # the kernel's disk fills up as the fix lands
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

os.write = full
run.step('fix', applied)
"""


@pytest.mark.slow
def test_a_kernel_that_cannot_write_its_record_after_a_change_exits_1_listing_it(offline, capsys):
    """The kernel's record write fails with ENOSPC right after the fix applied a change: exit 1, stderr names the
    change and its audit record, and --out holds a whole record saying failed at that step, never a cut one."""
    replace_cell(offline, "empty-recs", "step:fix", FULL_DISK_FIX)
    code = main(["runbook", "run", "empty-recs", "--out", str(offline / "out")])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "No space left on device" in err and "applied 1 change(s)" in err
    assert "manifest.rollback current.popularity: file:///a.json -> file:///b.json (audit record file:///audit/x.json)" in err
    record = json.loads((offline / "out" / "empty-recs.result.json").read_text())
    assert record["verdict"] == "failed" and record["failure"]["cell"] == "step:fix"
    assert "file:///audit/x.json" in record["failure"]["error"]
    assert sorted(p.name for p in (offline / "out").iterdir()) == ["empty-recs.ipynb", "empty-recs.result.json"]


@pytest.mark.slow
def test_while_a_run_is_in_progress_out_says_where_its_record_is_being_written(offline):
    """The marker names the work folder and the runner's pid while the kernel runs; it is gone once the record is
    in --out. A runner killed mid-run leaves it (the kernel's record is in that folder)."""
    replace_cell(offline, "empty-recs", "step:probe",
                  "import json, os, pathlib\n"
                  "marker = pathlib.Path(os.environ['RECSYS_RUNBOOK_OUT']) / 'empty-recs.incomplete'\n"
                  "seen = json.loads(marker.read_text())\n"
                  "assert pathlib.Path(seen['work']).is_dir() and seen['record'].startswith(seen['work'])\n"
                  "assert seen['pid'] == os.getppid()\n"
                  "run.step('probe', serving.probe_recommendations)")
    record, out = execute.run_runbook("empty-recs", {}, directory=offline / "runbooks", out_dir=offline / "out")
    assert record["verdict"] != "failed", record
    assert sorted(p.name for p in out.iterdir()) == ["empty-recs.ipynb", "empty-recs.result.json"]


@pytest.mark.slow
def test_a_killed_runner_leaves_the_marker_pointing_at_the_kernels_folder(offline):
    replace_cell(offline, "empty-recs", "step:probe", "import time\ntime.sleep(30)")
    proc = subprocess.Popen([sys.executable, "-m", "recsys_checks.cli", "runbook", "run", "empty-recs", "--out",
                             str(offline / "out")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = offline / "out" / "empty-recs.incomplete"
    try:
        for _ in range(600):
            if marker.exists():
                break
            subprocess.run(["sleep", "0.05"])
        seen = json.loads(marker.read_text())
    finally:
        proc.kill()
        proc.wait()
    assert seen["pid"] == proc.pid and Path(seen["work"]).is_dir()
    assert marker.exists() and not (offline / "out" / "empty-recs.result.json").exists()
    again = subprocess.run([sys.executable, "-m", "recsys_checks.cli", "runbook", "run", "empty-recs", "--out",
                            str(offline / "out")], capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "did not finish" in again.stderr
    shutil.rmtree(seen["work"], ignore_errors=True)


@pytest.mark.subprocess
def test_an_out_folder_that_cannot_be_written_is_refused_before_anything_runs(offline):
    """--out names a path under a regular file: exit 2, no temporary folder left behind."""
    (offline / "file").write_text("")
    proc = subprocess.run([sys.executable, "-m", "recsys_checks.cli", "runbook", "run", "empty-recs", "--out",
                           str(offline / "file" / "out")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "output folder" in proc.stderr
