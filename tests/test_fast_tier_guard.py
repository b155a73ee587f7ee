"""The fast tier's guard: a test that starts a process fails, except matplotlib's font scan (fc-list), which the first
picture of a test process needs."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from isolation import is_fast_tier


@pytest.fixture
def fast_tier(request: pytest.FixtureRequest) -> None:
    if not is_fast_tier(request.config):
        pytest.skip("the guard is on only in the fast tier (make test-fast)")


def test_starting_a_process_fails_the_test(fast_tier):
    with pytest.raises(pytest.fail.Exception, match="must be marked subprocess"):
        subprocess.run(["true"], check=False)


@pytest.mark.skipif(shutil.which("fc-list") is None, reason="no fontconfig on this machine")
def test_the_font_scan_may_start(fast_tier):
    assert subprocess.run(["fc-list", "--version"], capture_output=True, check=False).returncode == 0
