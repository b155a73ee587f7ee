"""`make demo` (scripts/demo.py): a real recommendation from a stack that is stopped afterwards."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from stackfixture import _cli_env, pid_alive

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"


@pytest.mark.stack
def test_demo_prints_a_recommendation_and_leaves_no_process() -> None:
    """The demo prints ranked items with 64-hex config/rules versions, stops the stack and exits 0."""
    proc = subprocess.run(
        [sys.executable, str(DEMO)], capture_output=True, text=True, timeout=180, env=_cli_env()
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert re.search(r"^\s+1\s+sku-\d{4}\s+\d", out, re.MULTILINE), out
    assert re.search(r"^config_version: [0-9a-f]{64}$", out, re.MULTILINE), out
    assert re.search(r"^rules_version:\s+[0-9a-f]{64}$", out, re.MULTILINE), out
    pids = [int(p) for p in re.findall(r"started \w[\w ()]* pid (\d+)", out)]
    assert pids and not [pid for pid in pids if pid_alive(pid)]
    assert "stopped service" in out
