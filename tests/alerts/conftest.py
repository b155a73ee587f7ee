"""Fixtures of the receiver tests (the helpers are in alertkit.py, importable from every test here)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alertkit import TWO_SURFACES, Running, start_receiver  # noqa: E402


@pytest.fixture(scope="session")
def specs_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real CLI's `runbook show ID --json` of every runbook, saved once for the fake."""
    cli = [sys.executable, "-m", "recsys_checks.cli"]
    listing = json.loads(subprocess.run([*cli, "runbook", "list", "--json"], capture_output=True, check=True,
                                        timeout=60).stdout)
    specs = {r["id"]: json.loads(subprocess.run([*cli, "runbook", "show", r["id"], "--json"], capture_output=True,
                                                check=True, timeout=60).stdout)
             for r in listing["runbooks"]}
    path = tmp_path_factory.mktemp("specs") / "specs.json"
    path.write_text(json.dumps(specs))
    return path


@pytest.fixture
def receiver(tmp_path: Path, specs_file: Path) -> Iterator[Callable[..., Any]]:
    started: list[Running] = []

    @contextmanager
    def make(*args: str, out: Path | None = None, env: dict | None = None, **state: Any) -> Iterator[Running]:
        work = tmp_path / "work"
        work.mkdir(exist_ok=True)
        state_path = work / "state.json"
        if not state_path.exists() or state:
            state_path.write_text(json.dumps({"fleet": TWO_SURFACES, **state}))
        r = start_receiver(work, out or tmp_path / "incidents", specs_file, args, env)
        started.append(r)
        try:
            yield r
        finally:
            r.stop()

    yield make
    for r in started:
        if r.proc.poll() is None:
            r.proc.kill()
