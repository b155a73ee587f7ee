"""recsys_checks reaches the stack as it reaches production: it never imports recsys_stack."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "recsys_checks"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_recsys_checks_never_imports_recsys_stack():
    """No module of recsys_checks imports recsys_stack, directly or lazily inside a function."""
    offenders = {p.name: sorted(n for n in _imports(p) if n.split(".")[0] == "recsys_stack")
                 for p in PACKAGE.glob("*.py")}
    assert not {k: v for k, v in offenders.items() if v}
