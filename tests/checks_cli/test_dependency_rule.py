"""The design rules of the package, checked on every file of it:

- recsys_checks reaches the stack as it reaches production: no file imports recsys_stack, by an import statement
  anywhere (inside functions too) or by ``importlib.import_module`` / ``__import__`` with a literal name;
- the layers import one way only (core < reach < judge < levers < runbooks < cli), with no import circle;
- no import of the package's own modules is hidden inside a function, except in the two front ends (the CLI and the
  alert receiver), which import a command's module when that command runs (``recsys-checks health`` never loads
  papermill); a lazy import still counts for circles, so none can hide one.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "recsys_checks"
LAYERS = ("core", "reach", "judge", "levers", "runbooks", "cli", "alerts")
RANK = {name: i for i, name in enumerate(LAYERS)}
RANK["cli"] = RANK["alerts"] = len(LAYERS)  # the two front ends, side by side at the top
LAZY_OK = {"cli", "alerts"}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path = ROOT) -> list[tuple[str, bool, int]]:
    """(module imported, inside a function?, line) for every import in the file: statements at any depth (relative
    ones resolved), and importlib.import_module / __import__ calls with a literal name."""
    return list(_imports_in(path.read_text(), module_name(path, root), path.name == "__init__.py"))


@functools.cache
def _imports_in(text: str, me: str, is_package: bool) -> tuple[tuple[str, bool, int], ...]:
    """:func:`imports_of` of a file's text, parsed once per text: the breach tests below check copies of the package
    that are the package itself but for one file."""
    tree = ast.parse(text)
    package = me if is_package else me.rpartition(".")[0]
    found: list[tuple[str, bool, int]] = []
    # Import statements are statements; only a call (import_module, __import__) is inside an expression, so the
    # expressions of a file that names neither need not be walked.
    expressions = "import_module" in text or "__import__" in text

    def visit(node: ast.AST, in_function: bool, type_only: bool) -> None:
        if not expressions and isinstance(node, ast.expr):
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            in_function = True
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only = True
        if not type_only:
            if isinstance(node, ast.Import):
                found.extend((a.name, in_function, node.lineno) for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                found.append((target, in_function, node.lineno))
                found.extend((f"{target}.{a.name}", in_function, node.lineno) for a in node.names
                             if (ROOT / Path(*f"{target}.{a.name}".split("."))).exists()
                             or (ROOT / Path(*f"{target}.{a.name}".split("."))).with_suffix(".py").exists())
            elif isinstance(node, ast.Call):
                fn = ast.unparse(node.func)
                if fn in ("importlib.import_module", "import_module", "__import__") and node.args \
                        and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                    found.append((node.args[0].value, in_function, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child, in_function, type_only)

    visit(tree, False, False)
    return tuple(found)


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "recsys_checks" and parts[1] in RANK else None


def problems(package: Path = PACKAGE, root: Path = ROOT) -> list[str]:
    """Every breach of the rules above, one line each."""
    found: list[str] = []
    graph: dict[str, set[str]] = {}
    files = sorted(package.rglob("*.py"))
    modules = {module_name(p, root) for p in files}
    for path in files:
        me = module_name(path, root)
        where = path.relative_to(root)
        mine = layer_of(me)
        for target, in_function, line in imports_of(path, root):
            if target.split(".")[0] == "recsys_stack":
                found.append(f"{where}:{line} imports {target}")
            if not target.startswith("recsys_checks.") or target not in modules:
                continue
            theirs = layer_of(target)
            if mine and theirs and RANK[theirs] > RANK[mine]:
                found.append(f"{where}:{line} ({mine}) imports {target} ({theirs}), a layer above")
            if in_function and not (mine in LAZY_OK and theirs and RANK[theirs] <= RANK[mine]):
                found.append(f"{where}:{line} imports {target} inside a function")
            if me != "recsys_checks":  # a lazy import counts too: one inside a function cannot hide a circle
                graph.setdefault(me, set()).add(target)
    found.extend(f"import circle: {' -> '.join(c)}" for c in _circles(graph))
    return found


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle per strongly connected group of modules (Tarjan), ignoring a package importing its own members."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def edges(v: str) -> set[str]:
        return {w for w in graph.get(v, ()) if not w.startswith(v + ".")}

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges(v):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in list(graph):
        if v not in index:
            strong(v)
    return out


def test_the_package_keeps_its_design_rules():
    assert problems() == []


def test_every_file_is_in_a_layer():
    """Each module sits in one of the layers (the package's own __init__ aside), so the rules above cover it."""
    strays = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")
              if module_name(p) != "recsys_checks" and layer_of(module_name(p)) is None]
    assert strays == []


# The rules must be able to fail: each breach below, written into a copy of the package, is caught.
BREACHES = {
    "a stack import deep in a step": ("runbooks/steps/fix.py", "import recsys_stack.faults\n", "imports recsys_stack"),
    "a lazy stack import": ("runbooks/steps/fix.py", "def _x():\n    import recsys_stack.faults\n",
                            "imports recsys_stack"),
    "importlib of the stack": ("judge/registry/manifest.py",
                               "import importlib\n_s = importlib.import_module('recsys_stack.faults')\n",
                               "imports recsys_stack"),
    "a layer reaching up": ("core/results.py", "from recsys_checks.levers import guard\n", "a layer above"),
    "an import dodged into a function": ("judge/registry/freshness.py",
                                         "def _x():\n    from recsys_checks.judge.registry import manifest\n",
                                         "inside a function"),
    "a circle inside a layer": ("judge/invariants.py", "from recsys_checks.judge.registry import manifest\n",
                                "import circle"),
}


@pytest.mark.parametrize("breach", sorted(BREACHES))
def test_each_rule_fails_when_broken(breach, tmp_path):
    import shutil

    relative, text, expected = BREACHES[breach]
    copy = tmp_path / "recsys_checks"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert problems(copy, tmp_path) == []
    target = copy / relative
    target.write_text(target.read_text() + "\n" + text)
    assert any(expected in p for p in problems(copy, tmp_path))
