"""The docs are checked against the code: commands, faults and variables they name exist, and the reverse."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from recsys_checks.cli.commands import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))


def _leaf_commands() -> set[tuple[str, ...]]:
    import argparse

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield path
            return
        for name, child in subs[0].choices.items():
            yield from walk(child, (*path, name))

    return set(walk(build_parser(), ()))


def _code(markdown: str) -> str:
    """The code in a page: fenced blocks and inline code spans, where commands are written."""
    fenced = re.findall(r"```[^\n]*\n(.*?)```", markdown, flags=re.S)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", markdown, flags=re.S))
    return "\n".join(fenced + inline)


@pytest.mark.subprocess
def test_cli_reference_is_generated_from_the_parser():
    """docs/reference/cli.md equals what scripts/gen_cli_reference.py makes of the current parser."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_cli_reference.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_every_recsys_checks_command_has_a_reference_section():
    """Each leaf command of the parser has its own heading in the CLI reference."""
    text = (DOCS / "reference" / "cli.md").read_text()
    for path in _leaf_commands():
        assert f"## `recsys-checks {' '.join(path)}`" in text


def test_every_recsys_checks_command_named_in_the_docs_exists():
    """A `recsys-checks ...` command line anywhere in the docs names a real command."""
    leaves = _leaf_commands()
    prefixes = {p[:i] for p in leaves for i in range(1, len(p) + 1)}
    bad = []
    for page in PAGES:
        for match in re.finditer(r"recsys-checks((?: [a-z][a-z-]*)+)", _code(page.read_text())):
            words = tuple(match.group(1).split())
            path = tuple(w for w in words[:2])
            if path[:1] and path[:1] not in prefixes:
                bad.append((page.name, match.group(0)))
            elif len(path) == 2 and path not in prefixes and path[:1] not in leaves:
                bad.append((page.name, match.group(0)))
    assert not bad, f"docs name commands that do not exist: {bad}"


def test_every_recsys_stack_command_named_in_the_docs_exists():
    """A `recsys-stack SUBCOMMAND` in the docs is one the stack's CLI has."""
    import argparse

    from recsys_stack.cli import build_parser as stack_parser

    parser = stack_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    known = set(subs.choices)
    bad = []
    for page in PAGES:
        for match in re.finditer(r"recsys-stack ([a-z][a-z-]*)", _code(page.read_text())):
            if match.group(1) not in known and match.group(1) not in ("up", "down"):
                bad.append((page.name, match.group(0)))
    assert not bad, f"docs name recsys-stack commands that do not exist: {bad}"


def test_every_fault_is_in_the_local_stack_reference_with_its_runbook():
    """The faults table of the local stack page lists every fault the stack can inject, with its runbook id."""
    from recsys_stack.faults import FAULTS

    text = (DOCS / "reference" / "local-stack.md").read_text()
    for name, fault in FAULTS.items():
        row = next((line for line in text.splitlines() if line.startswith("|") and f"`{name}`" in line), None)
        assert row is not None, f"fault {name} missing from docs/reference/local-stack.md"
        assert fault.runbook in row, f"fault {name}: runbook {fault.runbook} not named in its row"


def test_every_environment_variable_the_checks_read_is_documented():
    """Each RECSYS_* / AWS_* variable read by recsys_checks appears in the environment reference."""
    source = "\n".join(p.read_text() for p in (ROOT / "recsys_checks").rglob("*.py"))
    names = set(re.findall(r"(?:\.get\(|environ\[)\"((?:RECSYS|AWS)_[A-Z0-9_]+)\"", source))
    text = (DOCS / "reference" / "environment.md").read_text()
    missing = sorted(n for n in names if n not in text)
    assert names and not missing, f"undocumented variables: {missing}"


def test_readme_quick_start_is_exactly_make_demo_and_make_test():
    """The README's quick start has the two commands, and the docs home includes it rather than copying it."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in block.splitlines()[1:] if line.strip()]
    assert commands == ["make demo", "make test"]
    assert "README.md:quickstart" in (DOCS / "index.md").read_text()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_pages_speak_of_the_project_only(page):
    """No page refers to the shared design notes outside the project."""
    assert "../shared" not in page.read_text()


@pytest.mark.docs
def test_the_built_site_loads_nothing_from_the_internet(tmp_path):
    """On-call reads the site during outages: no page pulls a script, style sheet or font from another host."""
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ,
                                                                          "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr
    remote = re.compile(r"""<(?:script|link|img)\b[^>]*\b(?:src|href)=["'](?:https?:)?//""", re.I)
    offenders = {}
    for page in site.rglob("*.html"):
        found = remote.findall(page.read_text())
        if found:
            offenders[str(page.relative_to(site))] = found[:3]
    assert not offenders, f"pages load remote resources: {offenders}"
    mermaid_pages = [p for p in site.rglob("*.html") if 'class="mermaid"' in p.read_text()]
    assert mermaid_pages, "no page renders a diagram, so the local Mermaid copy is untested"
    assert all("mermaid-11.12.0.min.js" in p.read_text() for p in mermaid_pages)
