"""The handbook's library is an importable package (``handbook_site``); ``scripts/`` keeps only commands."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_the_docs_build_loads_the_macros_from_the_package():
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
    plugins = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)["plugins"]
    macros = next(p["macros"] for p in plugins if isinstance(p, dict) and "macros" in p)
    assert macros["module_name"] == "handbook_site"


def test_nothing_reaches_the_library_through_sys_path():
    offenders = [str(p.relative_to(ROOT)) for folder in ("tests", "scripts", "bench", "handbook_site")
                 for p in (ROOT / folder).rglob("*.py")
                 if re.search(r"sys\.path\.(insert|append)\([^)]*scripts", p.read_text())]
    assert not offenders, f"import handbook_site instead of putting scripts/ on sys.path: {offenders}"


def test_scripts_holds_only_commands():
    for script in (ROOT / "scripts").glob("*.py"):
        assert 'if __name__ == "__main__":' in script.read_text(), f"{script.name} is not a command"
