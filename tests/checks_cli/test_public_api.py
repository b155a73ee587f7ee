"""The public API of recsys_checks: ``__all__`` is what the package exposes, no more and no less."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import recsys_checks

LAYERS_WITH_API = ("recsys_checks.judge", "recsys_checks.levers")


def _public_functions(prefixes: tuple[str, ...]) -> dict[str, str]:
    """Every public check_/plan_/apply_ function defined in the judging and lever layers -> its module."""
    found: dict[str, str] = {}
    for info in pkgutil.walk_packages(recsys_checks.__path__, "recsys_checks."):
        if not info.name.startswith(LAYERS_WITH_API):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if inspect.isfunction(value) and value.__module__ == info.name and name.startswith(prefixes):
                found[name] = info.name
    return found


def test_all_is_a_plain_list_of_names():
    """``__all__`` is a literal list in the source (tools and readers see it without importing)."""
    tree = ast.parse(Path(recsys_checks.__file__).read_text())
    assigned = [n.value for n in tree.body if isinstance(n, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets)]
    assert len(assigned) == 1 and isinstance(assigned[0], ast.List)
    assert all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in assigned[0].elts)
    assert len(set(recsys_checks.__all__)) == len(recsys_checks.__all__)


def test_the_exported_members_are_exactly_all():
    """What ``dir(recsys_checks)`` offers once every name is loaded is ``__all__``, and each resolves to the thing of
    that name; a name outside it is an AttributeError."""
    for name in recsys_checks.__all__:
        value = getattr(recsys_checks, name)
        assert getattr(value, "__name__", name) == name
        assert value.__module__.startswith("recsys_checks.")
    exposed = {n for n in dir(recsys_checks) if not n.startswith("_")} - {"annotations", "importlib", "Any"}
    subpackages = {info.name for info in pkgutil.iter_modules(recsys_checks.__path__)}
    assert exposed - subpackages == set(recsys_checks.__all__)
    with pytest.raises(AttributeError):
        recsys_checks.plan_hold_everything  # noqa: B018


def test_every_check_and_every_lever_is_exported():
    """Each read-only check (check_<what>) and each lever (plan_<lever>, apply_<lever>) of the judging and lever
    layers is public, the hold lever included; a new one that is not exported fails here."""
    functions = _public_functions(("check_", "plan_", "apply_"))
    assert {"plan_hold", "apply_hold", "check_hold", "plan_rollback", "apply_rollback"} <= set(functions)
    missing = sorted(set(functions) - set(recsys_checks.__all__))
    assert missing == []
    for name, module in functions.items():
        assert getattr(recsys_checks, name) is getattr(importlib.import_module(module), name)


def test_every_plan_has_its_apply():
    """A lever is a pair: each plan_<lever> in ``__all__`` has its apply_<lever>."""
    plans = {n.removeprefix("plan_") for n in recsys_checks.__all__ if n.startswith("plan_")}
    applies = {n.removeprefix("apply_") for n in recsys_checks.__all__ if n.startswith("apply_")}
    assert plans == applies and plans
