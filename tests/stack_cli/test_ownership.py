"""The stack owns only what it started: `down` and `reset` signal a recorded PID only when the process is proven to
be the one `up` started for this root (start time, command line, the root's stack id), and a `cp -a` copy of a
running root owns nothing. Real processes throughout."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from stackfixture import pid_alive, run_cli

from recsys_stack import processes

SLEEP = [sys.executable, "-c", "import time; time.sleep(120)"]


def _stack_root(root: Path) -> dict:
    """A stack root as `up` writes it, with no process yet."""
    root.mkdir(parents=True)
    (root / "logs").mkdir()
    info = {"root": str(root.resolve()), "stack_id": "ab" * 16, "root_identity": processes.root_identity(root),
            "processes": {}, "status": "running", "store": "file", "base_url": "http://127.0.0.1:9"}
    processes.write_stack(root, info)
    return info


@pytest.fixture
def strangers() -> Iterator[list[subprocess.Popen]]:
    """Processes the stack did not start (the test's own), ended when the test ends."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _stranger(strangers: list[subprocess.Popen], env: dict[str, str] | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(SLEEP, env=env, start_new_session=True)
    strangers.append(proc)
    return proc


def _edit(root: Path, change) -> None:
    info = json.loads((root / "stack.json").read_text())
    change(info)
    (root / "stack.json").write_text(json.dumps(info))


@pytest.mark.subprocess
def test_down_stops_the_process_up_started_for_this_root(tmp_path):
    """The quiet case proven: a process spawned for the stack, recorded as it started, is stopped by `down`."""
    root = tmp_path / "stack"
    info = _stack_root(root)
    proc = processes.spawn(SLEEP, root / "logs" / "sleep.log", {}, stack_id=info["stack_id"])
    try:
        info["processes"]["service"] = proc.pid
        processes.write_stack(root, info)
        assert processes.running_processes(info, root) == {"service": proc.pid}
        assert processes.down(root, log=lambda _: None) == [f"service {proc.pid}"]
        assert proc.wait(5) is not None
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.mark.subprocess
@pytest.mark.parametrize("disguise", ["unknown-name", "reused-pid", "other-start-time", "other-command-line",
                                      "other-stack-id", "no-identity"])
def test_down_never_signals_a_process_it_cannot_prove_it_started(tmp_path, strangers, disguise):
    """A recorded PID held by an unrelated process (an unknown name, a PID reused since `up`, another start time or
    command line, another stack's id, no identity recorded): never signalled, whatever stack.json says."""
    root = tmp_path / "stack"
    info = _stack_root(root)
    own = processes.spawn(SLEEP, root / "logs" / "sleep.log", {}, stack_id=info["stack_id"])
    strangers.append(own)
    other = _stranger(strangers)
    info["processes"]["service"] = own.pid
    processes.write_stack(root, info)
    recorded = json.loads((root / "stack.json").read_text())["identities"]["service"]

    def disguised(doc: dict) -> None:
        if disguise == "unknown-name":
            doc["processes"] = {"mystery": other.pid}
        elif disguise == "reused-pid":  # the service died and its PID now names another process
            doc["processes"] = {"service": other.pid}
            doc["identities"] = {"service": {**recorded, "pid": other.pid}}
        elif disguise == "other-start-time":
            doc["identities"]["service"]["start"] = recorded["start"] - 1
        elif disguise == "other-command-line":
            doc["identities"]["service"]["cmdline"] = [*recorded["cmdline"], "--other"]
        elif disguise == "other-stack-id":
            doc["stack_id"] = "cd" * 16
        else:
            doc.pop("identities")

    _edit(root, disguised)
    stopped = processes.down(root, log=lambda _: None)
    assert stopped == []
    assert own.poll() is None and other.poll() is None


@pytest.mark.subprocess
def test_a_copy_of_a_running_root_owns_nothing(tmp_path, strangers):
    """`cp -a` of a running root: `down` and `reset` on the copy stop nothing and say why; the original still owns
    its process and `down` there stops it."""
    root = tmp_path / "stack"
    info = _stack_root(root)
    own = processes.spawn(SLEEP, root / "logs" / "sleep.log", {}, stack_id=info["stack_id"])
    strangers.append(own)
    info["processes"]["service"] = own.pid
    processes.write_stack(root, info)
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(root), str(copy)], check=True)

    said: list[str] = []
    assert processes.down(copy, log=said.append) == []
    assert own.poll() is None and "copy of a stack root owns no process" in said[0]
    from recsys_stack.reset import reset

    with pytest.raises(processes.StackError, match="nothing was reset: .*owns no process"):
        reset(copy, log=lambda _: None)
    assert own.poll() is None
    assert processes.down(root, log=lambda _: None) == [f"service {own.pid}"]


@pytest.mark.stack
def test_down_and_reset_on_a_copy_leave_the_running_original_alone(tmp_path):
    """The real stack: a `cp -a` copy of a running root stops nothing and starts nothing (no service on the
    original's port for the copy's data); `status` of the copy says it owns nothing; the original serves on."""
    root, copy = tmp_path / "stack", tmp_path / "copy"
    run_cli("up", "--detach", "--root", str(root), timeout=180)
    try:
        info = json.loads((root / "stack.json").read_text())
        pid = info["processes"]["service"]
        subprocess.run(["cp", "-a", str(root), str(copy)], check=True)
        down = run_cli("down", "--root", str(copy))
        assert "owns no process" in down.stdout and pid_alive(pid)
        reset = run_cli("reset", "--root", str(copy), check=False)
        assert reset.returncode == 2 and "nothing was reset" in reset.stderr
        status = json.loads(run_cli("status", "--json", "--root", str(copy)).stdout)
        assert status["status"] == "not owned" and "owns no process" in status["ownership"]
        assert httpx.get(f"{info['base_url']}/healthz", timeout=5).status_code == 200 and pid_alive(pid)
        assert json.loads((root / "stack.json").read_text())["processes"]["service"] == pid
    finally:
        run_cli("down", "--root", str(root))
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(pid)


@pytest.mark.stack
def test_down_leaves_an_unrelated_process_holding_a_recorded_pid(tmp_path, strangers):
    """The real stack: stack.json naming an unrelated process's PID (under a known and an unknown name) after the
    service died: `down` signals neither."""
    root = tmp_path / "stack"
    run_cli("up", "--detach", "--root", str(root), timeout=180)
    info = json.loads((root / "stack.json").read_text())
    service = info["processes"]["service"]
    try:
        processes.stop_pid(service)
        other = _stranger(strangers)
        _edit(root, lambda doc: doc["processes"].update(service=other.pid, sleeper=other.pid))
        run_cli("down", "--root", str(root))
        assert other.poll() is None
        other.send_signal(signal.SIGTERM)
    finally:
        run_cli("down", "--root", str(root))
