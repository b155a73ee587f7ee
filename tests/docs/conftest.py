"""The built site, once per session, for the tests that look at pages as a reader gets them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """``mkdocs build --strict`` of the working tree into a temporary folder; its path."""
    site = tmp_path_factory.mktemp("built") / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                          cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr
    return site


def pytest_collection_modifyitems(items: list) -> None:
    """A test that looks at the built site (through ``built_site``, directly or through another fixture) is a docs
    test: it needs the site build, so it is not in the fast tier."""
    for item in items:
        if "built_site" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docs)
