"""The design rules of the package, checked on every file of it:

- recsys_checks reaches the stack as it reaches production: no file imports recsys_stack, by an import statement
  anywhere (inside functions too) or by ``importlib.import_module`` / ``__import__`` with a literal name;
- the layers import one way only (core < reach < judge < levers < runbooks < cli), with no import circle;
- no import of the package's own modules is hidden inside a function, except in the two front ends (the CLI and the
  alert receiver), which import a command's module when that command runs (``recsys-checks health`` never loads
  papermill); a lazy import still counts for circles, so none can hide one;
- a name imported from the package face (``from recsys_checks import plan_rollback``, or ``recsys_checks.plan_rollback``
  after ``import recsys_checks``) counts as an import of the module that defines it (the face's ``_HOMES``), for
  the layers and for circles: the face loads that module on first use, so it is no side door;
- modules talk through public names: no module imports another's private name (``from recsys_checks.x import _y``,
  ``from .x import _y``), reads one off a module it imported (``x._y``) or imports a private module (``x._m``).

The rules are read from the tree given as ``root`` (a copy of the package in a temporary folder is judged by its own
files, not by the real tree's).
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


def face_homes(root: Path = ROOT) -> dict[str, str]:
    """Where each name the package face re-exports lives: ``_HOMES`` of ``recsys_checks/__init__.py`` under ``root``,
    as full module names."""
    tree = ast.parse((root / "recsys_checks" / "__init__.py").read_text())
    for node in tree.body:
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        names = [t.id for t in (node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)])
                 if isinstance(t, ast.Name)]
        if "_HOMES" in names and isinstance(value, ast.Dict):
            return {ast.literal_eval(k): f"recsys_checks.{ast.literal_eval(v)}"
                    for k, v in zip(value.keys, value.values, strict=True) if k is not None}
    return {}


_READ = (ast.Import, ast.ImportFrom, ast.Attribute, ast.Call)


@functools.cache
def _nodes(text: str) -> tuple[tuple[ast.AST, bool, bool], ...]:
    """(node, inside a function?, under ``if TYPE_CHECKING``?) for every import, attribute and call of a file, in
    source order: one walk of its syntax tree, parsed once per text (the copies of the package share most of their
    files' texts), for both readers below."""
    found: list[tuple[ast.AST, bool, bool]] = []
    stack: list[tuple[ast.AST, bool, bool]] = [(ast.parse(text), False, False)]
    while stack:
        node, in_function, type_only = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            in_function = True
        if isinstance(node, ast.If) and _names_type_checking(node.test):
            type_only = True
        if isinstance(node, _READ):
            found.append((node, in_function, type_only))
        stack.extend((child, in_function, type_only) for child in reversed(list(ast.iter_child_nodes(node))))
    return tuple(found)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_module(target: str, root: Path) -> bool:
    path = root / Path(*target.split("."))
    return path.is_dir() or path.with_suffix(".py").exists()


def _from_target(node: ast.ImportFrom, package: str) -> str:
    """The module a ``from ... import`` names, a relative one resolved against ``package``."""
    if not node.level:
        return node.module or ""
    base = package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _names_type_checking(test: ast.expr) -> bool:
    """``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``, or within a larger condition)."""
    return any(isinstance(n, ast.Name) and n.id == "TYPE_CHECKING" or isinstance(n, ast.Attribute)
               and n.attr == "TYPE_CHECKING" for n in ast.walk(test))


def _is_import_call(fn: ast.expr) -> bool:
    """``importlib.import_module``, ``import_module`` or ``__import__`` (read without unparsing every call)."""
    if isinstance(fn, ast.Name):
        return fn.id in ("import_module", "__import__")
    return isinstance(fn, ast.Attribute) and fn.attr == "import_module" and isinstance(fn.value, ast.Name) \
        and fn.value.id == "importlib"


def imports_of(path: Path, root: Path = ROOT, homes: dict[str, str] | None = None) -> list[tuple[str, bool, int]]:
    """(module imported, inside a function?, line) for every import in the file: statements at any depth (relative
    ones resolved), importlib.import_module / __import__ calls with a literal name, and for each name taken from the
    package face (imported, or read off an imported ``recsys_checks``) the module that defines it."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    homes = face_homes(root) if homes is None else homes
    found: list[tuple[str, bool, int]] = []
    for node, in_function, type_only in _nodes(path.read_text()):
        if type_only:
            continue
        if isinstance(node, ast.Import):
            found.extend((a.name, in_function, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _from_target(node, package)
            found.append((target, in_function, node.lineno))
            found.extend((f"{target}.{a.name}", in_function, node.lineno) for a in node.names
                         if _is_module(f"{target}.{a.name}", root))
            if target == "recsys_checks":  # the face: each name counts as an import of its home
                found.extend((homes[a.name], in_function, node.lineno) for a in node.names if a.name in homes)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "recsys_checks" and node.attr in homes:
            found.append((homes[node.attr], in_function, node.lineno))
        elif isinstance(node, ast.Call) and _is_import_call(node.func):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.append((node.args[0].value, in_function, node.lineno))
    return found


def private_uses(path: Path, root: Path = ROOT) -> list[tuple[str, int]]:
    """(``module._name``, line) for each private name of another module of the package the file uses: imported by
    name (absolute or relative), read off an imported module, or a private module imported."""
    nodes = [node for node, _, _ in _nodes(path.read_text())]
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    bound: dict[str, str] = {}  # local name -> the package's module it names
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "recsys_checks":
                    found.extend((a.name, node.lineno) for part in a.name.split(".") if _is_private(part))
                    bound[a.asname or a.name.split(".")[0]] = a.name if a.asname else "recsys_checks"
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            target = _from_target(node, package)
            if target.split(".")[0] != "recsys_checks":
                continue
            found.extend((target, node.lineno) for part in target.split(".") if _is_private(part))
            for a in node.names:
                if _is_private(a.name):
                    found.append((f"{target}.{a.name}", node.lineno))
                elif _is_module(f"{target}.{a.name}", root):
                    bound[a.asname or a.name] = f"{target}.{a.name}"
    for node in nodes:
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            chain, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in bound:
                found.append((".".join([bound[value.id], *reversed(chain)]), node.lineno))
    return [(name, line) for name, line in found if name.rpartition(".")[0] != me]


_FINDINGS: dict[tuple, object] = {}


def _cached(fn, key: tuple, *args):  # noqa: ANN001, ANN202 - a memo over this file's two readers
    """``fn(*args)`` once per (reader, file text, module, face, modules present)."""
    full = (fn.__name__, *key)
    if full not in _FINDINGS:
        _FINDINGS[full] = fn(*args)
    return _FINDINGS[full]


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "recsys_checks" and parts[1] in RANK else None


def problems(package: Path = PACKAGE, root: Path = ROOT) -> list[str]:
    """Every breach of the rules above, one line each."""
    found: list[str] = []
    graph: dict[str, set[str]] = {}
    files = sorted(package.rglob("*.py"))
    modules = {module_name(p, root) for p in files}
    homes = face_homes(root)
    # What a file's findings depend on besides its text: the face's names and which modules exist. The breach tests
    # judge copies that differ from the package in one file, so every other file's findings are reused.
    face_key = tuple(sorted(homes.items()))
    dirs_key = frozenset(modules) | {str(d.relative_to(root)) for d in package.rglob("*") if d.is_dir()}
    for path in files:
        me = module_name(path, root)
        where = path.relative_to(root)
        mine = layer_of(me)
        text = path.read_text()
        key = (text, me, path.name == "__init__.py", face_key, dirs_key)
        found.extend(f"{where}:{line} uses the private name {name} of another module" for name, line
                     in _cached(private_uses, key, path, root))
        for target, in_function, line in _cached(imports_of, key, path, root, homes):
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


# The rules must be able to fail: each breach below, written into a copy of the package, is caught. A breach is the
# text appended to one or more files of the copy (a file that does not exist is created), and what a problem says.
BREACHES: dict[str, tuple[dict[str, str], str]] = {
    "a stack import deep in a step": ({"runbooks/steps/fix.py": "import recsys_stack.faults\n"},
                                      "imports recsys_stack"),
    "a lazy stack import": ({"runbooks/steps/fix.py": "def _x():\n    import recsys_stack.faults\n"},
                            "imports recsys_stack"),
    "importlib of the stack": ({"judge/registry/manifest.py":
                                "import importlib\n_s = importlib.import_module('recsys_stack.faults')\n"},
                               "imports recsys_stack"),
    "a layer reaching up": ({"core/results.py": "from recsys_checks.levers import guard\n"}, "a layer above"),
    "an import dodged into a function": ({"judge/registry/freshness.py":
                                          "def _x():\n    from recsys_checks.judge.registry import manifest\n"},
                                         "inside a function"),
    "a circle inside a layer": ({"judge/invariants.py": "from recsys_checks.judge.registry import manifest\n"},
                                "import circle"),
    # Private names across modules, in each spelling.
    "a private name imported from another module": (
        {"levers/hold.py": "from recsys_checks.judge.registry.hold import _describe\n"},
        "uses the private name recsys_checks.judge.registry.hold._describe"),
    "a private name imported relatively": ({"reach/store/router.py": "from .files import _read_regular\n"},
                                           "uses the private name recsys_checks.reach.store.files._read_regular"),
    "a private name read off an imported module": (
        {"levers/rollback.py": "from recsys_checks.judge.registry import manifest as _m\n_p = _m._parse_for\n"},
        "uses the private name recsys_checks.judge.registry.manifest._parse_for"),
    "a private name read off a dotted import": (
        {"levers/cache.py": "import recsys_checks.judge.registry.manifest\n"
                            "_p = recsys_checks.judge.registry.manifest._parse_for\n"},
        "uses the private name recsys_checks.judge.registry.manifest._parse_for"),
    # The package face re-exports everything lazily: a lower layer reaching a lever through it is still caught.
    "a lever through the package face, in core": ({"core/results.py": "from recsys_checks import plan_rollback\n"},
                                                  "imports recsys_checks.levers.rollback (levers), a layer above"),
    "a lever through the face as an attribute": (
        {"judge/timeline.py": "import recsys_checks\n_r = recsys_checks.apply_rollback\n"},
        "imports recsys_checks.levers.rollback (levers), a layer above"),
    "a circle through the package face": ({"judge/registry/artifact.py": "from recsys_checks import check_manifest\n"},
                                          "import circle"),
    # Only judged right when the copy's own files are read: the module exists in the copy, not in the real tree.
    "a circle through a module only the copy has": (
        {"judge/registry/newmod.py": "from recsys_checks.judge.registry import manifest\n",
         "judge/registry/manifest.py": "from recsys_checks.judge.registry import newmod\n"},
        "import circle"),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """One copy of the package, checked clean once; each breach is written into a copy of it."""
    import shutil

    root = tmp_path_factory.mktemp("pristine")
    shutil.copytree(PACKAGE, root / "recsys_checks", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_the_unmutated_copy_is_clean(pristine):
    assert problems(pristine / "recsys_checks", pristine) == []


@pytest.mark.parametrize("breach", sorted(BREACHES))
def test_each_rule_fails_when_broken(breach, pristine, tmp_path):
    import shutil

    edits, expected = BREACHES[breach]
    copy = tmp_path / "recsys_checks"
    shutil.copytree(pristine / "recsys_checks", copy)
    for relative, text in edits.items():
        target = copy / relative
        target.write_text((target.read_text() + "\n" if target.exists() else "") + text)
    found = problems(copy, tmp_path)
    assert any(expected in p for p in found), found

