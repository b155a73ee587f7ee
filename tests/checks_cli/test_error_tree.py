"""One error tree: every exception class of the package is defined in recsys_checks/core/errors.py, and each one
carries the exit code of the CLI contract (0 ok, 1 check failed, 2 bad input or configuration, 3 conflict)."""

from __future__ import annotations

import ast
import builtins
import inspect
from pathlib import Path

import pytest

from recsys_checks.core import errors

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "recsys_checks"
HOME = PACKAGE / "core" / "errors.py"
# Names of the exception bases a class may derive from: the builtins and whatever errors.py defines.
BUILTIN = {name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)}
# Allowed outside errors.py, by name: none (the fix step's moved state is a returned remedy, not an exception).
ALLOWED: set[tuple[str, str]] = set()


def exception_classes(package: Path = PACKAGE) -> list[tuple[str, str, int]]:
    """(file relative to the package, class name, line) of every class deriving, directly or through another class
    of the package, from an exception: any base named like a builtin exception or like an exception class found."""
    classes: list[tuple[str, str, int, list[str]]] = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b).rpartition(".")[2] for b in node.bases]
                classes.append((str(path.relative_to(package)), node.name, node.lineno, bases))
    exceptional = set(BUILTIN)
    changed = True
    while changed:  # a class deriving from an exception class of the package is one too
        changed = False
        for _, name, _, bases in classes:
            if name not in exceptional and any(b in exceptional for b in bases):
                exceptional.add(name)
                changed = True
    return [(where, name, line) for where, name, line, bases in classes if any(b in exceptional for b in bases)]


def test_every_exception_class_is_defined_in_core_errors():
    strays = [f"{where}:{line} {name}" for where, name, line in exception_classes()
              if where != "core/errors.py" and (where, name) not in ALLOWED]
    assert strays == []


def test_the_walk_finds_a_stray_and_the_home_classes(tmp_path):
    """The walk can fail: a class deriving from ValueError, or from a class of errors.py, written elsewhere, is
    found; and it sees the classes of errors.py themselves."""
    copy = tmp_path / "recsys_checks"
    (copy / "core").mkdir(parents=True)
    (copy / "core" / "errors.py").write_text(HOME.read_text())
    (copy / "judge.py").write_text("from x import y\n\nclass Stray(ValueError):\n    pass\n\n"
                                   "class Deeper(errors.Conflict):\n    pass\n\nclass Plain:\n    pass\n")
    found = exception_classes(copy)
    assert ("judge.py", "Stray", 3) in found and ("judge.py", "Deeper", 6) in found
    assert not any(name == "Plain" for _, name, _ in found)
    assert {name for where, name, _ in found if where == "core/errors.py"} == set(_home_classes())


def _home_classes() -> dict[str, type[BaseException]]:
    return {name: value for name, value in vars(errors).items()
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == errors.__name__}


@pytest.mark.parametrize("name", sorted(_home_classes()))
def test_every_error_has_its_exit_code(name):
    """Each class says its own exit code (a class attribute in its body, not only an inherited one), one of the
    contract's codes that end a command with an error."""
    cls = _home_classes()[name]
    assert "exit_code" in vars(cls), f"{name} does not say its exit code"
    assert vars(cls)["exit_code"] in (1, 2, 3)


def test_the_docstring_tree_names_every_class():
    tree = errors.__doc__ or ""
    missing = [name for name in _home_classes() if f" {name} (" not in tree]
    assert missing == []
    for name, cls in _home_classes().items():  # and says each one's code
        assert f" {name} ({cls.exit_code})" in tree


def test_a_service_problem_takes_its_code_from_the_status():
    assert errors.ServiceProblem(409, None, "", None).exit_code == 3
    assert errors.ServiceProblem(403, "RECSYS_AUTH_INVALID", "", None).exit_code == 2
    assert errors.ServiceProblem(422, "RECSYS_ARTIFACT_INCOMPATIBLE", "", None).exit_code == 1
    assert errors.ServiceProblem(503, None, "", None).exit_code == errors.ServiceProblem.exit_code == 1
