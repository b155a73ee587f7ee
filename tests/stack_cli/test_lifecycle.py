"""`recsys-stack up`/`down`/`status`: processes, stack.json, secrets, refusals."""

from __future__ import annotations

import json
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from stackfixture import _cli_env, pid_alive, read_secrets, run_cli

pytestmark = pytest.mark.stack


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.mark.parametrize("store", ["file", "s3"])
def test_up_detach_then_down_leaves_no_process(store: str, tmp_path: Path) -> None:
    """up --detach starts the stack with a secret-free stack.json and 0600 secrets; down stops every process."""
    root = tmp_path / "stack"
    run_cli("up", "--detach", "--root", str(root), "--store", store, timeout=180)
    info = json.loads((root / "stack.json").read_text())
    pids = info["processes"]
    try:
        assert set(pids) == ({"service", "s3"} if store == "s3" else {"service"})
        assert all(pid_alive(pid) for pid in pids.values())
        assert info["base_url"].startswith("http://127.0.0.1:")
        assert info["manifest_template"].endswith("/registry/current/{tenant}/{surface}/manifest.json")
        assert info["tenants"] == {"demo": ["home", "search"], "acme": ["home", "search"]}
        if store == "s3":
            assert info["s3_endpoint"].startswith("http://127.0.0.1:") and info["bucket"] == "recsys-artifacts"
            assert info["manifest_template"].startswith("s3://recsys-artifacts/")
        else:
            assert info["manifest_template"] == (root / "store").resolve().as_uri() + (
                "/registry/current/{tenant}/{surface}/manifest.json"
            )

        secrets = read_secrets(root)
        assert len(secrets["RECSYS_API_KEY"]) >= 32
        if store == "s3":
            assert secrets["RECSYS_ARTIFACT_S3_ACCESS_KEY"] and secrets["RECSYS_ARTIFACT_S3_SECRET_KEY"]
        text = (root / "stack.json").read_text()
        assert not [name for name, value in secrets.items() if value in text]
        assert stat.S_IMODE((root / "secrets.env").stat().st_mode) == 0o600

        status = json.loads(run_cli("status", "--json", "--root", str(root)).stdout)
        assert status["status"] == "running" and all(p["alive"] for p in status["processes"].values())
        assert len(status["surfaces"]) == 4
        for row in status["surfaces"]:
            assert 0 <= row["age_seconds"] < 600 and row["last_run_status"] == "ok"
        human = run_cli("status", "--root", str(root)).stdout
        assert info["base_url"] in human and "demo/home" in human

        again = run_cli("up", "--detach", "--root", str(root), check=False)
        assert again.returncode == 2 and "already running" in again.stderr
    finally:
        run_cli("down", "--root", str(root))
    assert not [pid for pid in pids.values() if pid_alive(pid)]
    after = json.loads((root / "stack.json").read_text())
    assert after["processes"] == {} and after["status"] == "stopped"
    assert "was running" in run_cli("down", "--root", str(root)).stdout  # idempotent


def test_up_refuses_a_port_in_use(tmp_path: Path) -> None:
    """A taken --port is a clear error with exit 2, and nothing is started."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = run_cli("up", "--detach", "--root", str(tmp_path / "s"), "--port", str(port), check=False)
    assert proc.returncode == 2
    assert f"port {port}" in proc.stderr and "in use" in proc.stderr
    assert not (tmp_path / "s" / "stack.json").exists()


def test_up_refuses_a_directory_that_is_not_a_stack_root(tmp_path: Path) -> None:
    """up never clears a non-empty directory without stack.json (exit 2, files untouched)."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "notes.txt").write_text("keep me")
    proc = run_cli("up", "--detach", "--root", str(tmp_path), check=False)
    assert proc.returncode == 2 and "not empty" in proc.stderr
    assert (tmp_path / "notes.txt").read_text() == "keep me" and (tmp_path / "logs").is_dir()


def test_foreground_up_stops_everything_on_sigterm(tmp_path: Path) -> None:
    """Without --detach, up serves (with RECSYS_API_KEY as its key) until SIGTERM, then stops everything."""
    root = tmp_path / "fg"
    proc = subprocess.Popen(
        [sys.executable, "-m", "recsys_stack.cli", "up", "--root", str(root)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**_cli_env(), "RECSYS_API_KEY": "k" * 40},
    )
    pids: dict[str, int] = {}
    try:
        def running() -> bool:
            try:
                return json.loads((root / "stack.json").read_text()).get("status") == "running"
            except (FileNotFoundError, ValueError):
                return False

        _wait_for(running, 120, "the foreground stack to be ready")
        pids = json.loads((root / "stack.json").read_text())["processes"]
        assert read_secrets(root)["RECSYS_API_KEY"] == "k" * 40
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if (root / "stack.json").exists():
            run_cli("down", "--root", str(root), check=False)
    assert proc.returncode == 0, out
    assert "stopped service" in out
    assert pids and not [pid for pid in pids.values() if pid_alive(pid)]
