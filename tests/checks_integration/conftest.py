"""`recsys-checks` against a running local stack, once per store (file and s3).

Every test module gets its own stack per store (the tests break it on purpose), started in a temporary root and
stopped at the end of the module, so the session stacks other modules share are never touched.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from checks_integration.checkskit import Checks
from stackfixture import StackHandle, running_stack


@pytest.fixture(scope="module", params=["file", "s3"])
def checks_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    """A stack of this module alone, on each store in turn; the tests may break it."""
    with running_stack(request.param, tmp_path_factory.mktemp(f"checks-{request.param}")) as handle:
        yield handle


@pytest.fixture(scope="module")
def checks(checks_stack: StackHandle) -> Checks:
    """`recsys-checks` bound to the module's stack, recording every run."""
    return Checks(checks_stack)
