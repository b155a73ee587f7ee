"""The exit codes the reference gives for an unreachable service or store are the ones the commands return."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "reference" / "exit-codes.md"
ARGS = {"recs probe": "--tenant demo --surface home", "timeline": "--tenant demo --since 1d",
        "manifest status": "--tenant demo --surface home", "manifest history": "--tenant demo --surface home",
        "hold status": "--tenant demo --surface home", "config show": "--tenant demo"}


def _rows() -> list[tuple[str, int]]:
    section = PAGE.read_text().split("### When the target cannot be reached", 1)[1].split("\n#", 1)[0]
    return [(m.group(1), int(m.group(2)))
            for m in re.finditer(r"^\| `recsys-checks ([a-z ]+)` \| `(\d)` \|", section, flags=re.M)]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_table_lists_commands():
    assert len(_rows()) >= 6


@pytest.mark.parametrize(("command", "code"), _rows(), ids=lambda v: str(v))
def test_unreachable_target_exit_code(command: str, code: int):
    port = _closed_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "AWS_"))}
    env.update({
        "RECSYS_BASE_URL": f"http://127.0.0.1:{port}",
        "RECSYS_API_KEY": "key",
        "RECSYS_ARTIFACT_MANIFEST_TEMPLATE": "s3://recsys-artifacts/registry/current/{tenant}/{surface}/manifest.json",
        "RECSYS_ARTIFACT_S3_ENDPOINT": f"http://127.0.0.1:{port}",
        "RECSYS_ARTIFACT_S3_ACCESS_KEY": "testing",
        "RECSYS_ARTIFACT_S3_SECRET_KEY": "testing",
    })
    argv = [sys.executable, "-m", "recsys_checks.cli", *command.split(), *shlex.split(ARGS.get(command, ""))]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == code, f"{command}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
