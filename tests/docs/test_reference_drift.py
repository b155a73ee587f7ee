"""The reference pages written by hand against the code, both ways (in the style of sqlite-utils' ``test_docs.py``):
every check, action, command, format and term the code has is documented, and every one documented exists.

What "the code has" is read from the code itself: the CLI parser (``recsys_checks.cli.commands.build_parser()``), the public
API (``recsys_checks.__all__``), the checks the CLI renders (``recsys_checks.core.render.VIEWS``), the artifact kinds, the
pipeline error kinds, the verdicts, and the run record a run writes. The hand-written pages are
``docs/reference/checks.md`` (with ``evaluation.md``, which its tables link for the evaluation checks),
``formats.md``, ``glossary.md`` and the run record table of ``runbook-spec.md``.
"""

from __future__ import annotations

import argparse
import importlib
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

import recsys_checks
from recsys_checks.cli.commands import build_parser

DOCS = Path(__file__).resolve().parents[2] / "docs"
REFERENCE = DOCS / "reference"
CHECKS_PAGES = ("checks.md", "evaluation.md")


def _text(*names: str) -> str:
    return "\n".join((REFERENCE / name).read_text() for name in names)


def _leaf_commands() -> set[str]:
    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield " ".join(path)
            return
        for name, child in subs[0].choices.items():
            yield from walk(child, (*path, name))

    return set(walk(build_parser(), ()))


def _glance_rows() -> list[list[str]]:
    """The rows of checks.md's "At a glance" tables (header and separator rows left out), as cells."""
    section = (REFERENCE / "checks.md").read_text().split("## At a glance", 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()
            if line.startswith("|")]
    return [r for r in rows if r[0] not in ("Check", "Action") and not set(r[0]) <= {"-"}]


def _commands_in(cell: str) -> set[str]:
    """`recsys-checks config show`, `rules show` -> {"config show", "rules show"}; notes in brackets dropped."""
    return {span.removeprefix("recsys-checks ").strip() for span in re.findall(r"`([^`]+)`", cell)}


def _functions_in(cell: str) -> set[str]:
    return set(re.findall(r"`(recsys_checks\.[\w.]+)`", cell))


def _resolve(dotted: str):
    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


# ---------------------------------------------------------------------------------------------------- checks.md

# The command groups that are neither checks nor actions, and the pages that document them instead: the runbooks
# (with the spec format and the run record) and the alert receiver. Every other command is a check or an action.
OTHER_HOMES = {"runbook": ("reference/runbook-spec.md", "how-to/run-a-runbook.md"),
               "alerts": ("reference/alert-receiver.md",)}
OTHER_COMMANDS = {c for c in _leaf_commands() if c.split()[0] in OTHER_HOMES}


@pytest.mark.parametrize("command", sorted(_leaf_commands() - OTHER_COMMANDS))
def test_every_check_and_action_command_is_in_the_checks_tables(command):
    documented = set().union(*(_commands_in(row[1]) for row in _glance_rows()))
    assert command in documented, f"`recsys-checks {command}` is not in the tables of docs/reference/checks.md"


@pytest.mark.parametrize("command", sorted(OTHER_COMMANDS))
def test_every_other_command_is_documented_on_its_own_page(command):
    pages = OTHER_HOMES[command.split()[0]]
    text = "\n".join((DOCS / page).read_text() for page in pages)
    assert f"recsys-checks {command}" in text, f"`recsys-checks {command}` is not documented in {pages}"


def test_every_command_in_the_checks_tables_exists():
    leaves = _leaf_commands()
    named = set().union(*(_commands_in(row[1]) for row in _glance_rows()))
    named = {c.split(" (")[0] for c in named}
    assert named and not named - leaves, f"checks.md names commands the parser does not have: {named - leaves}"


PUBLIC_CHECKS_AND_ACTIONS = sorted(n for n in recsys_checks.__all__ if n.startswith(("check_", "plan_", "apply_")))


@pytest.mark.parametrize("name", PUBLIC_CHECKS_AND_ACTIONS)
def test_every_public_check_and_action_function_is_in_the_checks_tables(name):
    """Each check, plan and apply function of the public API is the function a row of the tables names."""
    function = getattr(recsys_checks, name)
    named = set().union(*(_functions_in(row[2]) for row in _glance_rows()))
    assert any(dotted.endswith(f".{name}") and _resolve(dotted) is function for dotted in named), \
        f"recsys_checks.{name} is not named (by a path that leads to it) in the tables of checks.md"


def test_every_function_in_the_checks_tables_exists():
    named = set().union(*(_functions_in(row[2]) for row in _glance_rows()))
    missing = []
    for dotted in sorted(named):
        try:
            assert callable(_resolve(dotted))
        except (ImportError, AttributeError, AssertionError):
            missing.append(dotted)
    assert named and not missing, f"checks.md names functions that do not exist: {missing}"


@pytest.mark.parametrize("check", sorted(importlib.import_module("recsys_checks.core.render").VIEWS))
def test_every_check_the_cli_renders_is_documented_by_name(check):
    """The checks the CLI knows how to print (recsys_checks.core.render.VIEWS) each appear by name, `manifest.status`."""
    assert f"`{check}`" in _text(*CHECKS_PAGES), f"check {check} is not named in {', '.join(CHECKS_PAGES)}"


def test_checks_md_links_the_generated_exit_code_table_instead_of_restating_it():
    text = (REFERENCE / "checks.md").read_text()
    assert "(exit-codes.md)" in text and '{% include "exit-codes.md" %}' in text
    assert "| Code |" not in text, "checks.md has an exit-code table of its own"


# --------------------------------------------------------------------------------------------------- formats.md

def _codes_in_row(page: str, first_cell: str) -> set[str]:
    row = next((line for line in (REFERENCE / page).read_text().splitlines() if line.startswith(f"| {first_cell} |")),
               None)
    assert row is not None, f"{page} has no row for {first_cell}"
    return set(re.findall(r"`([^`]+)`", row.split("|", 2)[2]))


def test_the_artifact_kinds_in_formats_md_are_the_codes():
    from recsys_checks.judge.registry.artifact import KINDS

    documented = _codes_in_row("formats.md", "`artifact_type`")
    assert documented == set(KINDS), f"undocumented: {set(KINDS) - documented}; not in the code: {documented - set(KINDS)}"
    payloads = {line.split("|")[1].strip().strip("`") for line in (REFERENCE / "formats.md").read_text().splitlines()
                if line.startswith("| `") and line.count("|") == 5}
    assert set(KINDS) <= payloads, f"kinds without a payload row: {set(KINDS) - payloads}"


@pytest.mark.parametrize("kind", importlib.import_module("recsys_checks.judge.pipelinelog").KINDS)
def test_every_pipeline_error_kind_is_documented(kind):
    assert f"`{kind}`" in _text("formats.md", "exit-codes.md"), f"pipeline error kind {kind} is not documented"


def _run_record_keys() -> set[str]:
    """The top-level keys of the run records the code writes: a run's own record, and the runner's failed one."""
    from recsys_checks.runbooks.run import RunbookRun
    from recsys_checks.runbooks.runner import _failed_run_record
    from recsys_checks.runbooks.spec import load_spec

    spec = load_spec("empty-recs")
    written = RunbookRun(spec.id, tenant="demo", surface="home").run_record()
    failed = _failed_run_record(spec, None, {}, datetime.now(UTC), None)
    return set(written) | set(failed)


def _documented_run_record_keys() -> set[str]:
    section = _text("runbook-spec.md").split("## Run record", 1)[1].split("\n## ", 1)[0]
    keys = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            keys |= set(re.findall(r"`(\w+)`", line.split("|")[1]))
    return keys


def test_every_run_record_field_the_code_writes_is_documented_and_the_reverse():
    code, documented = _run_record_keys(), _documented_run_record_keys()
    assert not code - documented, f"run record fields not in runbook-spec.md: {sorted(code - documented)}"
    assert not documented - code, f"documented run record fields the code never writes: {sorted(documented - code)}"


# -------------------------------------------------------------------------------------------------- glossary.md

def test_the_glossary_names_exactly_the_verdicts_of_the_code():
    from recsys_checks.runbooks.verdict import VERDICTS

    documented = _codes_in_row("glossary.md", "verdict")
    assert documented == set(VERDICTS), \
        f"verdicts missing from the glossary: {set(VERDICTS) - documented}; not in the code: {documented - set(VERDICTS)}"


def test_the_glossary_names_exactly_the_artifact_kinds_of_the_code():
    from recsys_checks.judge.registry.artifact import KINDS

    documented = _codes_in_row("glossary.md", "artifact kind")
    assert documented == set(KINDS), f"missing: {set(KINDS) - documented}; not in the code: {documented - set(KINDS)}"


def test_every_command_in_the_glossary_exists():
    leaves = _leaf_commands()
    named = {m.strip() for m in re.findall(r"`recsys-checks ([a-z ]+)`", _text("glossary.md"))}
    assert named and not named - leaves, f"the glossary names commands that do not exist: {named - leaves}"
