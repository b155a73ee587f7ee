"""The fast tier's guard: a test that starts a process fails (pictures are drawn without starting anything)."""

from __future__ import annotations

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


def test_drawing_every_picture_starts_no_process(fast_tier):
    """The guard no longer lets any process through: drawing each kind of picture runs under it."""
    from recsys_checks.judge import figures
    from recsys_checks.runbooks import pictures

    drawn = pictures.svg(figures.freshness_figure([{"tenant": "t", "surface": "s", "age_seconds": 7200}],
                                                  max_age_seconds=3600))
    assert 'id="recsys-picture-freshness"' in drawn
