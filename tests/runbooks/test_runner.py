"""`recsys-checks runbook run`: parameters checked before anything starts, failures named by cell, secrets never
written. Runs real notebooks with papermill against a service that does not answer (no stack needed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import specskit
from notebookkit import replace_cell

from recsys_checks.core.errors import BadInput, OutputRefused
from recsys_checks.runbooks.runner import run_runbook
from recsys_checks.runbooks.spec import notebooks_dir, runbooks_dir

SECRET = "not-a-real-key-5f2b9c"


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the runbooks and notebooks, and an environment whose service and store do not answer."""
    shutil.copytree(runbooks_dir(), tmp_path / "runbooks")
    shutil.copytree(notebooks_dir(), tmp_path / "notebooks")
    monkeypatch.setenv("RECSYS_RUNBOOKS_DIR", str(tmp_path / "runbooks"))
    monkeypatch.setenv("RECSYS_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("RECSYS_ARTIFACT_MANIFEST_TEMPLATE",
                       f"file://{tmp_path}/store/registry/current/{{tenant}}/{{surface}}/manifest.json")
    monkeypatch.setenv("RECSYS_API_KEY", SECRET)
    monkeypatch.chdir(tmp_path)
    return tmp_path




@pytest.mark.slow
def test_a_runbook_against_a_dead_service_says_so(offline):
    """Every step runs; the probe names the unreachable service; the verdict is inconclusive (the runbook could not
    see the deployment), not healthy and not a crash."""
    record, out = run_runbook("empty-recs", {}, directory=offline / "runbooks", out_dir=offline / "out")
    assert record["verdict"] == "inconclusive", record
    assert record["cause"] == "unreachable" and record["unread"][0]["step"] == "probe"
    assert [s["step"] for s in record["steps"]] == ["probe", "clients", "manifest-status", "config-rules",
                                                     "diagnose", "fix", "verify", "verify-clients"]
    assert (out / "empty-recs.ipynb").is_file() and (out / "empty-recs.result.json").is_file()
    assert SECRET not in (out / "empty-recs.ipynb").read_text() + (out / "empty-recs.result.json").read_text()


@pytest.mark.slow
def test_a_failing_cell_is_verdict_failed_with_the_cell_named(offline):
    replace_cell(offline, "empty-recs", "step:config-rules", "raise RuntimeError('the cell broke')")
    record, out = run_runbook("empty-recs", {}, directory=offline / "runbooks", out_dir=offline / "out")
    assert record["verdict"] == "failed"
    assert record["failure"]["cell"] == "step:config-rules"
    assert record["failure"]["error"] == "RuntimeError: the cell broke"
    assert [s["step"] for s in record["steps"]] == ["probe", "clients", "manifest-status"]  # what ran before is kept
    assert json.loads((out / "empty-recs.result.json").read_text())["verdict"] == "failed"


@pytest.mark.slow
def test_a_step_that_runs_past_the_timeout_is_failed(offline):
    replace_cell(offline, "empty-recs", "step:probe", "import time\ntime.sleep(60)")
    record, _ = run_runbook("empty-recs", {}, directory=offline / "runbooks", out_dir=offline / "out", timeout=3)
    assert record["verdict"] == "failed"
    assert record["failure"]["cell"] == "step:probe" and "timeout" in record["failure"]["error"]


@pytest.mark.slow
def test_outputs_carrying_a_secret_are_never_written(offline):
    """A cell that prints the API key: nothing reaches the output folder, and the run fails closed."""
    replace_cell(offline, "empty-recs", "step:probe", "import os\nprint(os.environ['RECSYS_API_KEY'])")
    with pytest.raises(OutputRefused, match="RECSYS_API_KEY"):
        run_runbook("empty-recs", {}, directory=offline / "runbooks", out_dir=offline / "out")
    assert not list((offline / "out").iterdir())


def test_a_parameter_carrying_a_secret_value_is_refused(offline):
    with pytest.raises(BadInput, match="contains the value of RECSYS_API_KEY"):
        run_runbook("empty-recs", {"reason": f"key is {SECRET}"}, directory=offline / "runbooks",
                    out_dir=offline / "out")
    assert not (offline / "out" / "empty-recs.result.json").exists()


def test_a_second_run_into_the_same_folder_is_refused(offline):
    (offline / "out").mkdir()
    (offline / "out" / "empty-recs.result.json").write_text("{}")
    with pytest.raises(BadInput, match="already holds a run"):
        run_runbook("empty-recs", {}, directory=offline / "runbooks", out_dir=offline / "out")


@pytest.mark.parametrize(("args", "message"), [
    (["-p", "tenant=../other"], "unsafe tenant"),
    (["-p", "api_key=abc"], "looks like a credential"),
    (["-p", "colour=red"], "has no parameter 'colour'"),
    (["-p", "execute=perhaps"], "not true or false"),
    (["-p", "tenant"], "is not NAME=VALUE"),
])
@pytest.mark.subprocess
def test_bad_parameters_exit_2_before_anything_starts(offline, args, message):
    proc = subprocess.run([sys.executable, "-m", "recsys_checks.cli", "runbook", "run", "empty-recs", *args,
                           "--out", str(offline / "out")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2
    assert not (offline / "out").exists()


@pytest.mark.subprocess
def test_list_and_show_describe_the_runbooks(offline):
    proc = subprocess.run([sys.executable, "-m", "recsys_checks.cli", "runbook", "list", "--json"],
                          capture_output=True, text=True, timeout=60)
    ids = [r["id"] for r in json.loads(proc.stdout)["runbooks"]]
    assert proc.returncode == 0 and "empty-recs" in ids and "rollback-manifest" in ids
    proc = subprocess.run([sys.executable, "-m", "recsys_checks.cli", "runbook", "show", "empty-recs"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "recsys-checks recs probe --tenant {tenant} --surface {surface}" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "recsys_checks.cli", "runbook", "show", "nope"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unknown runbook 'nope'" in proc.stderr


@pytest.mark.slow
def test_a_kernel_that_dies_is_verdict_failed_with_the_cell_named(offline):
    replace_cell(offline, "empty-recs", "step:manifest-status", "import os\nos._exit(9)")
    record, _ = run_runbook("empty-recs", {}, directory=offline / "runbooks", out_dir=offline / "out")
    assert record["verdict"] == "failed"
    assert record["failure"]["cell"] == "step:manifest-status" and "kernel died" in record["failure"]["error"]


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["ran to its end", "a cell failed"])
def test_a_finished_notebooks_kernel_is_stopped_at_once_and_any_other_asked_to_shut_down(offline, ending):
    """The runner starts the kernel itself (it boots while papermill is imported) and stops it: at once (SIGKILL:
    its exit handlers never run) when the notebook ran to its end and the record is written, by a shutdown request
    (its exit handlers run) when a cell failed. Either way no kernel is left behind."""
    pid_file, said_goodbye = offline / "kernel.pid", offline / "kernel-exit-handlers-ran"
    code = (f"import atexit, os\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
            f"atexit.register(lambda: open({str(said_goodbye)!r}, 'w').write('bye'))")
    if ending == "a cell failed":
        code += "\nraise RuntimeError('the cell broke')"
    replace_cell(offline, "empty-recs", "step:verify-clients", code)
    record, _ = run_runbook("empty-recs", {}, directory=offline / "runbooks", out_dir=offline / "out")
    assert (record["verdict"] == "failed") == (ending == "a cell failed"), record
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert said_goodbye.exists() == (ending == "a cell failed")


@pytest.mark.slow
def test_the_notebook_run_as_jupyter_runs_it_gives_the_same_verdict(offline):
    """Executed cell by cell outside the runner (as Jupyter does), the notebook writes the same run record."""
    from nbclient import NotebookClient

    nb = nbformat.read(offline / "notebooks" / "empty-recs.ipynb", as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(offline)}}).execute()
    records = list((offline / "incidents").glob("*-empty-recs/empty-recs.result.json"))
    assert len(records) == 1, "the notebook wrote no run record under incidents/"
    direct = json.loads(records[0].read_text())
    via_runner, _ = run_runbook("empty-recs", {}, directory=offline / "runbooks", out_dir=offline / "out")
    assert (direct["verdict"], direct["cause"]) == (via_runner["verdict"], via_runner["cause"]) == (
        "inconclusive", "unreachable")
    assert [s["step"] for s in direct["steps"]] == [s["step"] for s in via_runner["steps"]]


@pytest.mark.subprocess
def test_execute_on_a_protected_deployment_needs_its_name_confirmed(offline, monkeypatch):
    """Without --confirm (or with another name) nothing starts: exit 2; a dry run needs no confirmation."""
    env = {**__import__("os").environ, "RECSYS_DEPLOYMENT": "prod-eu", "RECSYS_DEPLOYMENT_PROTECTED": "true"}
    base = [sys.executable, "-m", "recsys_checks.cli", "runbook", "run", "empty-recs"]
    for extra in (["--execute"], ["--execute", "--confirm", "staging"]):
        proc = subprocess.run([*base, *extra, "--out", str(offline / "out")], capture_output=True, text=True,
                              timeout=60, env=env)
        assert proc.returncode == 2 and "prod-eu' is protected" in proc.stderr, proc.stderr
        assert not (offline / "out").exists()
    monkeypatch.setenv("RECSYS_DEPLOYMENT", "prod-eu")
    monkeypatch.setenv("RECSYS_DEPLOYMENT_PROTECTED", "true")
    from recsys_checks.runbooks.runner import check_parameters

    params = check_parameters(specskit.spec("empty-recs"), {"confirm": "prod-eu"}, execute=True)
    assert params["execute"] is True and params["confirm"] == "prod-eu"
    assert check_parameters(specskit.spec("empty-recs"), {}, execute=False)["execute"] is False
