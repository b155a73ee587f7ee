"""The receiver reaches the rest of recsys_checks through its command line; its few in-process imports are listed
in one module (recsys_checks/alerts/checks.py), so that moving the package's modules touches one place."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "recsys_checks" / "alerts"


def _outside_imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.split(".")[0] in ("recsys_checks", "recsys_stack")]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.split(".")[0] in ("recsys_checks", "recsys_stack"):
                names.append(node.module)
            elif node.level >= 2:
                names.append("." * node.level + (node.module or ""))
    return names


def test_only_checks_py_imports_the_rest_of_recsys_checks_and_nothing_imports_the_stack():
    found = {p.name: _outside_imports(p) for p in PACKAGE.glob("*.py")}
    assert {k: v for k, v in found.items() if v and k != "checks.py"} == {}
    assert found["checks.py"] and all(n.startswith("recsys_checks.") for n in found["checks.py"])


def test_the_receiver_never_passes_execute():
    for path in PACKAGE.glob("*.py"):
        source = path.read_text()
        assert '"--execute"' not in source.replace('assert "--execute" not in args', ""), path.name
        assert "execute=True" not in source, path.name  # the command it shows to apply a plan is built from one
