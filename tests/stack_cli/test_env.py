"""`recsys-stack env`: the export lines that point a shell (and recsys-checks) at a running stack."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from stackfixture import StackHandle, _cli_env, run_cli


def _exports(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        assert line.startswith("export "), line
        name, _, value = line.removeprefix("export ").partition("=")
        out[name] = shlex.split(value)[0] if value else ""
    return out


@pytest.mark.stack
def test_env_exports_what_a_client_needs_and_a_shell_can_eval(stack: StackHandle) -> None:
    """Every variable of the stack's client environment, quoted for a shell; recsys-checks works from it."""
    proc = stack.cli("env")
    assert _exports(proc.stdout) == stack.env
    shell = f'eval "$({sys.executable} -m recsys_stack.cli env --root {shlex.quote(str(stack.root))})" && ' \
            f"{sys.executable} -m recsys_checks.cli manifest status --tenant demo --surface home"
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=120, env=_cli_env())
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.subprocess
def test_env_without_a_stack_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_cli("env", "--root", str(tmp_path / "none"), check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "recsys-stack up" in proc.stderr
