"""Shared test setup: make ``tests/`` importable (for ``stackfixture``) and register the stack fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from stackfixture import stack, stack_file, stack_s3  # noqa: E402,F401


def pytest_collection_modifyitems(items: list) -> None:
    """Run the S3 server's conformance tests (conditional writes, races) before any test that relies on them."""
    items.sort(key=lambda item: 0 if "store_conformance" in item.nodeid else 1)
