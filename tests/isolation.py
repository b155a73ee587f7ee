"""What no test may depend on: the folder pytest was started from (a checkout where commands were once run, with a
stray ``recsys-audit/`` or ``incidents/``) and the home folder of whoever runs it (``~/.local/state/recsys-checks``,
``~/.aws``, ``~/.config``). The autouse fixtures of ``tests/conftest.py`` give the session, then every test, an empty
home folder, the XDG folders in it, and an empty working directory; tests that need the checkout use absolute paths
derived from ``__file__``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# The variables that point at per-user folders, each set to a folder of the temporary home.
XDG_FOLDERS = {
    "XDG_STATE_HOME": (".local", "state"),
    "XDG_CONFIG_HOME": (".config",),
    "XDG_CACHE_HOME": (".cache",),
    "XDG_DATA_HOME": (".local", "share"),
}
# Where the suite was started, before any test moved away from it.
STARTED_IN = Path.cwd()
STARTED_HOME = os.environ.get("HOME")


def isolate(patch: pytest.MonkeyPatch, parent: Path) -> Path:
    """Point HOME and the XDG folders at a new empty folder under ``parent``, and change to another new empty
    folder; ``patch`` undoes both. Returns the new home folder."""
    base = Path(tempfile.mkdtemp(prefix="env-", dir=parent))
    home, work = base / "home", base / "work"
    work.mkdir()
    patch.setenv("HOME", str(home))
    for variable, parts in XDG_FOLDERS.items():
        folder = home.joinpath(*parts)
        folder.mkdir(parents=True)
        patch.setenv(variable, str(folder))
    patch.chdir(work)
    return home


# What the fast tier (`make test-fast`) leaves out; a marker expression that deselects every one of them is that tier.
HEAVY_MARKERS = ("stack", "slow", "docs", "subprocess")


def is_fast_tier(config: pytest.Config) -> bool:
    expr = config.getoption("markexpr", "") or ""
    if not expr.strip():
        return False
    from _pytest.mark.expression import Expression

    compiled = Expression.compile(expr)
    return not any(compiled.evaluate(lambda name, heavy=heavy, **_kw: name == heavy) for heavy in HEAVY_MARKERS)
