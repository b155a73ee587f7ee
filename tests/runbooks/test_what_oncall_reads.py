"""What on-call reads must not mislead (issue 20): no ERROR line from a kernel shutting down, a kept notebook that
names where its record is, verify steps of a dry run shown as not run, a repoint to a later version called
forward with the found cause beside the request, a typo'd tenant or surface read as a typo, and a rules plan that
says which rules change."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from stackfixture import StackHandle, running_stack

from recsys_checks.core.render import render_plan
from recsys_checks.core.results import Plan
from recsys_checks.judge.registry.manifest import WINDOW_LAG
from recsys_checks.judge.serving.docdiff import readable_change
from recsys_checks.levers.rollback import describe_moves, moves_direction
from recsys_checks.runbooks.run import OUT_ENV, RECORD_ENV, RunbookRun
from recsys_checks.runbooks.runner import quiet_kernel_manager

# --- without a stack --------------------------------------------------------------------------------------------


def test_the_runners_kernel_manager_does_not_interrupt_a_kernel_it_shuts_down(monkeypatch):
    """jupyter_client interrupts (SIGINT) before every shutdown; a kernel then logs "ERROR | KeyboardInterrupt
    caught in kernel." The runner's manager skips that interrupt, and only that one."""
    manager = quiet_kernel_manager()(kernel_name="python3")
    sent: list[int] = []

    async def signal_kernel(signum: int) -> None:
        sent.append(signum)

    monkeypatch.setattr(type(manager), "has_kernel", property(lambda self: True))
    monkeypatch.setattr(manager, "_async_signal_kernel", signal_kernel)
    manager.shutting_down = True
    asyncio.run(manager._async_interrupt_kernel())
    assert sent == []
    manager.shutting_down = False
    asyncio.run(manager._async_interrupt_kernel())  # an interrupt asked for while running still goes out
    assert len(sent) == 1


def test_the_record_path_a_notebook_prints_is_the_one_in_out(tmp_path, monkeypatch):
    monkeypatch.setenv(RECORD_ENV, str(tmp_path / "work" / "empty-recs.result.json"))
    monkeypatch.setenv(OUT_ENV, str(tmp_path / "out"))
    run = RunbookRun("empty-recs")
    assert run.kept_record_path == tmp_path / "out" / "empty-recs.result.json"
    monkeypatch.delenv(OUT_ENV)
    monkeypatch.delenv(RECORD_ENV)
    alone = RunbookRun("empty-recs", record_path=tmp_path / "mine.json")
    assert alone.kept_record_path == tmp_path / "mine.json"


def test_a_repoint_to_a_later_version_reads_forward():
    forward = [{"kind": "popularity", "before_version": "a" * 64, "after_version": "b" * 64, "direction": "forward"}]
    back = [{**forward[0], "direction": "back"}]
    assert moves_direction(forward) == "forward" and moves_direction(back) == "back"
    assert moves_direction(forward + [{**back[0], "kind": "cooc"}]) == "mixed"
    assert describe_moves("demo", "search", forward).startswith("repoint demo/search forward (popularity aaaa")
    assert describe_moves("demo", "search", back).startswith("roll demo/search back (popularity aaaa")


RULES_BEFORE = [{"action": "block", "target_type": "category", "target_key": k, "priority": 100, "enabled": True}
                for k in ("books", "games", "toys")] + [
    {"action": "boost", "target_type": "tag", "target_key": "summer", "boost_value": 1.5, "priority": 5}]
RULES_AFTER = [{"action": "boost", "target_type": "tag", "target_key": "summer", "boost_value": 3, "priority": 5},
               {"action": "pin", "target_type": "item", "item_ids": ["sku-1"], "surface": "home", "max_pins": 1}]


def test_a_rules_change_reads_as_rules_added_removed_and_changed():
    change = readable_change("rules", RULES_BEFORE, RULES_AFTER)
    assert change["removed"] == ["block category books", "block category games", "block category toys"]
    assert change["added"] == ["pin item sku-1 (surface home)"]
    assert change["changed"] == [{"rule": "boost tag summer", "field": "boost_value", "before": 1.5, "after": 3}]
    assert "rule boost tag summer: boost_value 1.5 → 3" in change["lines"]
    assert "rule added: pin item sku-1 (surface home) (max_pins 1)" in change["lines"]
    assert change["summary"] == "3 rule(s) removed, 1 rule(s) added, 1 rule(s) changed"
    config = readable_change("config", {"weights": {"pop": 0, "cooc": 0.8}}, {"weights": {"pop": 1, "cooc": 0.8}})
    assert config["lines"] == ["weights.pop: 0 → 1"] and config["summary"] == "1 field(s) change"


def test_a_rules_plan_shows_the_readable_change_compact_and_every_field_behind_the_flag():
    many = [{"action": "block", "target_type": "item", "target_key": f"sku-{i:02d}"} for i in range(20)]
    details = {"change": readable_change("rules", many, []), "diff": [{"path": "[0].action", "before": "block",
                                                                       "after": None}]}
    plan = Plan("rules.revert", "demo/rules", "v1", [{"what": "rules version of demo", "before": "v1",
                                                      "after": "v2"}], "", details)
    compact = render_plan(plan)
    assert "rule removed: block item sku-00" in compact and "sku-11" in compact and "sku-12" not in compact
    assert "… and 8 more (--full-diff lists every one)" in compact and "[0].action" not in compact
    full = render_plan(plan, full_diff=True)
    assert "sku-19" in full and "more (--full-diff" not in full and "[0].action: block → -" in full


# --- on a running stack -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> StackHandle:
    with running_stack("file", tmp_path_factory.mktemp("oncall-stack")) as handle:
        yield handle


def _checks(stack: StackHandle, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "AWS_"))}, **stack.env}
    return subprocess.run([sys.executable, "-m", "recsys_checks.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd)


@pytest.mark.stack
def test_a_dry_run_says_no_error_keeps_its_record_path_and_shows_verify_as_not_run(stack, tmp_path):
    stack.cli("inject", "bad-publish")
    try:
        proc = _checks(stack, tmp_path, "runbook", "run", "rollback-manifest", "-p", "tenant=demo", "-p",
                       "surface=home", "--out", str(tmp_path / "out"))
    finally:
        stack.cli("publish", "--tenant", "demo", "--surface", "home")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert not [line for line in proc.stderr.splitlines() if "ERROR" in line], proc.stderr
    # The table: verify steps are not run (dry run), not a failed verification.
    rows = {line.split()[0]: line.split()[2] for line in proc.stdout.splitlines()
            if line.strip().startswith("verify-")}
    assert rows == {"verify-manifest": "not-run", "verify-recommendations": "not-run", "verify-clients": "not-run"}, \
        proc.stdout
    assert "not run (dry run" in proc.stdout
    record = json.loads((tmp_path / "out" / "rollback-manifest.result.json").read_text())
    verify = [s for s in record["steps"] if s["role"] == "verify"]
    assert {s["status"] for s in verify} == {"not-run"} and {s["result"]["not_run"] for s in verify} == {"dry-run"}
    assert record["verdict"] == "action-required" and record["next_action"].startswith("dry run:")
    # The kept notebook: the verify cells say not run, and the path it prints is where the record is.
    notebook = (tmp_path / "out" / "rollback-manifest.ipynb").read_text()
    assert "[NOT RUN] dry run" in notebook
    printed = re.findall(r"run record: ([^\"\\]+)", notebook)
    assert printed and Path(printed[-1]).is_file(), printed
    assert Path(printed[-1]).resolve() == (tmp_path / "out" / "rollback-manifest.result.json").resolve()


@pytest.mark.stack
def test_a_repoint_to_a_later_version_says_forward_and_keeps_the_found_cause(stack, tmp_path):
    history = json.loads(_checks(stack, tmp_path, "manifest", "history", "--tenant", "demo", "--surface", "search",
                                 "--json").stdout)["data"]["versions"]
    newest, older = [r["version"] for r in history if r["kind"] == "popularity"][:2]
    back = _checks(stack, tmp_path, "manifest", "rollback", "--tenant", "demo", "--surface", "search", "--to",
                   older[:12], "--execute")
    assert back.returncode == 0, back.stdout + back.stderr
    planned = _checks(stack, tmp_path, "manifest", "rollback", "--tenant", "demo", "--surface", "search", "--to",
                      newest[:12])
    assert f"would repoint demo/search forward: popularity {older[:12]} -> {newest[:12]}" in planned.stdout
    # The older version's window ended a day before the newest's (which ended at midnight): over 24 h old at any time
    # of day. A window is stale past max_age plus the publish lag (WINDOW_LAG), so a max_age of a day less that lag
    # makes "older data" what the checks find whatever the hour (the default, 26 h, calls it fresh until 08:00 UTC).
    max_age = int((timedelta(days=1) - WINDOW_LAG).total_seconds() // 3600)
    proc = _checks(stack, tmp_path, "runbook", "run", "rollback-manifest", "-p", "tenant=demo", "-p",
                   "surface=search", "-p", f"to_version={newest[:12]}", "-p", f"max_age={max_age}h",
                   "--out", str(tmp_path / "out"))
    record = json.loads((tmp_path / "out" / "rollback-manifest.result.json").read_text())
    assert "would repoint demo/search forward (popularity" in record["next_action"], record["next_action"]
    assert "roll demo/search back" not in proc.stdout + record["next_action"]
    assert record["requested"] == {"to_version": newest[:12], "direction": "forward"}
    assert record["cause"] == "stale"  # what the checks found (older data), beside the request
    assert "requested: repoint forward to" in proc.stdout


@pytest.mark.stack
@pytest.mark.parametrize(("tenant", "surface", "cause", "said"), [
    ("dmeo", "home", "unknown_tenant", "does not know tenant 'dmeo' (404 RECSYS_TENANT_NOT_FOUND)"),
    ("demo", "hme", "unknown_surface", "the registry has no surface 'hme' for tenant demo"),
])
def test_a_typod_tenant_or_surface_reads_as_a_typo(stack, tmp_path, tenant, surface, cause, said):
    match = "demo" if cause == "unknown_tenant" else "home"
    rollback = _checks(stack, tmp_path, "manifest", "rollback", "--tenant", tenant, "--surface", surface,
                       "--previous")
    assert rollback.returncode == 2, rollback.stderr
    assert said in rollback.stderr and f"did you mean {match}?" in rollback.stderr
    assert "nothing to roll back" not in rollback.stderr
    for command in (["manifest", "status"], ["manifest", "history"], ["recs", "probe"]):
        proc = _checks(stack, tmp_path, *command, "--tenant", tenant, "--surface", surface)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        assert f"did you mean {match}?" in proc.stdout, (command, proc.stdout)
        assert "never published or its manifest is gone" not in proc.stdout
    run = _checks(stack, tmp_path, "runbook", "run", "rollback-manifest", "-p", f"tenant={tenant}", "-p",
                  f"surface={surface}", "--out", str(tmp_path / "out"))
    record = json.loads((tmp_path / "out" / "rollback-manifest.result.json").read_text())
    assert run.returncode == 1 and (record["verdict"], record["cause"]) == ("action-required", cause)
    assert f"did you mean {match}?" in record["next_action"] and record["changed"] == []
    assert "nothing to roll back" not in record["next_action"] and "manifest is gone" not in record["next_action"]
