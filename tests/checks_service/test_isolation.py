"""No test depends on the folder pytest was started from nor on the home folder of whoever runs it: the autouse
guard of tests/conftest.py (isolation.py) gives every test its own empty ones. Proven here with the test that used to
fail in a checkout where a command was once run: a stray ``recsys-audit/`` (where earlier versions wrote) or records
in the per-user state folder made ``timeline`` find a readable source, so "nothing readable" was a warn."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
import pytest
from isolation import STARTED_HOME, STARTED_IN, XDG_FOLDERS, isolate

from recsys_checks.judge import auditlog

from . import test_timeline

REPO = Path(__file__).resolve().parents[2]
STRAY = "20260112T110000.000000Z-abcdefabcdef.json"
RECORD = '{"action": "config.revert", "who": "someone", "when": "2026-01-12T11:00:00Z", "state": "applied"}'


def plant(folder: Path) -> None:
    """A record of ours under ``folder``'s audit/demo/_tenant/, as a revert made without a registry leaves it."""
    (folder / "audit" / "demo" / "_tenant").mkdir(parents=True)
    (folder / "audit" / "demo" / "_tenant" / STRAY).write_text(RECORD)


def test_every_test_runs_away_from_the_checkout_and_the_home_folder(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    assert Path.cwd().is_relative_to(base) and not Path.cwd().is_relative_to(REPO)
    assert list(Path.cwd().iterdir()) == []
    assert os.environ["HOME"] != STARTED_HOME and Path(os.environ["HOME"]).is_relative_to(base)
    for variable in XDG_FOLDERS:
        assert Path(os.environ[variable]).is_relative_to(os.environ["HOME"])
    assert platformdirs.user_state_path("recsys-checks").is_relative_to(base)
    assert auditlog.default_audit_dir().is_relative_to(base)
    assert Path.cwd() != STARTED_IN


def test_a_stray_audit_folder_in_the_checkout_or_the_home_folder_does_not_reach_a_test(
        service, target, client, tmp_path, monkeypatch):
    """Without the guard the strays decide the timeline test's outcome; with it, they do not."""
    checkout, home = tmp_path / "checkout", tmp_path / "home"
    plant(checkout / "recsys-audit")
    plant(home / ".local" / "state" / "recsys-checks")
    # what a test saw before the guard: the checkout as working directory, the real home and no XDG variables
    monkeypatch.chdir(checkout)
    monkeypatch.setenv("HOME", str(home))
    for variable in XDG_FOLDERS:
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(AssertionError, match="warn"):
        test_timeline.test_nothing_readable_fails(service, target, client)
    # the guard, as every test gets it
    isolate(monkeypatch, tmp_path)
    test_timeline.test_nothing_readable_fails(service, target, client)
    assert Path.cwd() != checkout and os.environ["HOME"] != str(home)
    assert (checkout / "recsys-audit" / "audit" / "demo" / "_tenant" / STRAY).is_file()  # still there, not read
