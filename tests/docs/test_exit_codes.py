"""An unreachable service or store is exit 2 ("could not look") for the commands the reference says so of, as the
rule of `recsys_checks.core.results.EXIT_CODES` (from which the reference table is generated) states."""

from __future__ import annotations

import os
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


# command -> (the exit code against a closed port, a phrase its row of the generated table must hold)
EXPECTED = {
    "health": (2, "service unreachable"), "recs probe": (2, "service unreachable"),
    "manifest status": (2, "store unreachable"), "manifest history": (2, "store unreachable"),
    "freshness": (2, "store unreachable"), "config show": (2, "service unreachable"),
    "hold status": (2, None), "timeline": (1, "no source of changes could be read"),
}


def _rows() -> list[tuple[str, int]]:
    return [(command, code) for command, (code, _) in EXPECTED.items()]


def test_the_generated_table_says_what_the_commands_do():
    table = PAGE.read_text().split("### Per command", 1)[1]
    for command, (_, phrase) in EXPECTED.items():
        if phrase is None:
            continue
        key = command.split()[0] if command.startswith("config") else command
        row = next((line for line in table.splitlines() if line.startswith(f"| `{key}") or
                    (command.startswith("config") and line.startswith("| `config`/`rules show`"))), None)
        assert row is not None and phrase in row, f"{command}: {row}"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.subprocess
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
