"""`make demo` (scripts/demo.py): the game day over every fault, ending with a table and a stopped stack."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from picturekit import pictures_in_notebook
from specskit import spec
from stackfixture import _cli_env

from recsys_checks.runbooks.pictures import DRAWN_BY, KINDS
from recsys_stack.faults import FAULTS

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.timeout(660)  # the game day's own deadline (600 s) decides, not the suite's default
def test_game_day_recovers_every_fault_and_leaves_no_process(tmp_path: Path) -> None:
    """Every fault is injected and answered by its runbook with --execute; each run record says mitigated."""
    out = tmp_path / "incidents"
    proc = subprocess.run([sys.executable, str(DEMO), "--out", str(out)], capture_output=True, text=True,
                          timeout=600, env=_cli_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    text = proc.stdout
    assert re.search(r"the stack serves demo/home: sku-\d{4} \(", text), text
    names = ("stale-manifest", "stale-cache", "bad-publish", "missing-blob", "corrupt-manifest", "partial-publish",
             "validation-failed", "limit-exceeded", "bad-rules", "bad-config", "store-down", "not-ready",
             "foreign-artifact", "rules-hide-most", "weights-overflow", "stale-data", "shrunk-publish")
    for name in names:
        row = next((line for line in text.splitlines() if line.startswith(f"{name} ")), None)
        assert row is not None and FAULTS[name].runbook in row and "mitigated" in row, f"{name}: {row}"
    assert re.search(r"(\d+) of \1 scenarios ended as expected", text), text
    records = sorted(out.glob("*/*.result.json"))
    assert len(records) >= len(names)
    # Each as its drill expects (checked above: N of N as expected): mitigated, or action-required where the fix is
    # out of a runbook's reach (a deployment's configuration to fix).
    assert {json.loads(p.read_text())["verdict"] for p in records} <= {"mitigated", "action-required"}
    assert all(json.loads(p.read_text())["execute"] is True for p in records)
    root = Path(re.search(r"\$ recsys-stack down --root (\S+)", text).group(1))
    assert not root.exists(), "a successful game day removes its stack root"
    assert_each_picture_in_its_runbooks_notebooks(records)


def assert_each_picture_in_its_runbooks_notebooks(records: list[Path]) -> None:
    """Every kind of picture is in an executed notebook of the game day; a picture appears only under a step whose
    function draws that kind, titled; and every runbook played shows, in one of its notebooks at least, every kind
    its steps draw (which is every kind: each runbook that draws is played)."""
    shown: dict[str, set[str]] = {}
    for path in records:
        runbook = json.loads(path.read_text())["runbook"]
        draws = {step.id: DRAWN_BY.get(step.function) for step in spec(runbook).steps}
        for step, kind, title in pictures_in_notebook(path.with_name(f"{runbook}.ipynb")):
            assert draws.get(step) == kind, f"{path.parent.name}: a {kind} picture under step {step}"
            assert title, f"{path.parent.name}: an untitled {kind} picture"
            shown.setdefault(runbook, set()).add(kind)
    played = {json.loads(p.read_text())["runbook"] for p in records}
    wanted = {r: {k for s in spec(r).steps if (k := DRAWN_BY.get(s.function))} for r in played}
    assert {r: shown.get(r, set()) for r in played if wanted[r]} == {r: k for r, k in wanted.items() if k}
    assert set().union(*shown.values()) == set(KINDS)


@pytest.mark.subprocess
def test_a_game_day_that_cannot_start_exits_non_zero(tmp_path: Path) -> None:
    """A bad argument stops the demo before any stack starts."""
    proc = subprocess.run([sys.executable, str(DEMO), "--store", "tape"], capture_output=True, text=True,
                          timeout=60, env=_cli_env())
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
