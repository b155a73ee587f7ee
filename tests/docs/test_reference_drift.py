"""The reference pages written by hand against the code, both ways (in the style of sqlite-utils' ``test_docs.py``):
every check, action, command, format and term the code has is documented, and every one documented exists.

What "the code has" is read from the code itself: the CLI parser (``recsys_checks.cli.commands.build_parser()``), the public
API (``recsys_checks.__all__``), the checks the CLI renders (``recsys_checks.core.render.VIEWS``), the artifact kinds, the
pipeline error kinds, the verdicts, and the run record a run writes. The hand-written pages are
``docs/reference/checks.md`` (with ``evaluation.md``, which its tables link for the evaluation checks),
``formats.md``, ``glossary.md`` and the run record table of ``runbook-spec.md``.

Tables that restate values of the code are checked with their values, both ways: the settings of ``alerts serve``
with their defaults and its metrics (``alert-receiver.md``), and the variables the checks read with their defaults
(``environment.md``). Each of those checks is also run on mutated copies of its page, and against a changed
default in the code, to show that it fails.
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


# ------------------------------------------------------------------------------------ tables that restate values
# Each check below is a function from a page's text to its problems, so that a test can show it failing on a mutated
# copy: a row the code does not have, a setting the page lacks and a changed default each give a problem.

def _table_rows(text: str, heading: str) -> list[list[str]]:
    """The body rows of the first table under ``heading``, as cells."""
    section = text.split(f"\n{heading}\n", 1)[1].splitlines()
    start = next(i for i, line in enumerate(section) if line.startswith("|"))
    end = next((i for i, line in enumerate(section[start:], start) if not line.startswith("|")), len(section))
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in section[start + 2:end]]


def _first_code(cell: str) -> str | None:
    """The literal a default cell starts with (`900`, `127.0.0.1:9097`), None when it starts with words."""
    found = re.match(r"`([^`]+)`", cell)
    return found.group(1) if found else None


def _shown(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _default_problems(what: str, cell: str, required: bool, default: object) -> list[str]:
    """A default cell against the code: `required` when required; the code's literal, first, when the code has a
    value; words (none, unset, the ... of ...) when it has none."""
    if required:
        return [] if cell.startswith("required") else [f"{what} is required in the code; the page says {cell!r}"]
    if default in (None, "", [], (), False):
        literal = _first_code(cell)
        return [f"{what} has no default in the code; the page gives `{literal}`"] if literal is not None else []
    if _first_code(cell) != _shown(default):
        return [f"{what}: the code's default is `{_shown(default)}`, the page says {cell!r}"]
    return []


def _serve_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    for name in ("alerts", "serve"):
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def _alert_receiver_environment() -> set[str]:
    """The variables the receiver reads itself (its token and notify URL)."""
    source = "\n".join(p.read_text() for p in (Path(recsys_checks.__file__).parent / "alerts").glob("*.py"))
    return set(re.findall(r"^\w+_ENV = \"(RECSYS_\w+)\"", source, re.MULTILINE))


def alert_receiver_settings_problems(text: str) -> list[str]:
    """The Settings table of alert-receiver.md against `alerts serve`'s parser and the variables the receiver reads,
    both ways, with each flag's default."""
    rows = _table_rows(text, "## Settings")
    actions = [a for a in _serve_parser()._actions if not isinstance(a, argparse._HelpAction)]
    problems = []
    flags_on_page = {}
    variables_on_page = set()
    for row in rows:
        if "(environment)" in row[0]:
            variables_on_page |= set(re.findall(r"`(RECSYS_\w+)`", row[0]))
            continue
        for flag in re.findall(r"`(--?[\w-]+)", row[0]):
            flags_on_page[flag] = row[1]
    known = {s for a in actions for s in a.option_strings}
    problems += [f"the page has {flag}, `alerts serve` does not" for flag in sorted(set(flags_on_page) - known)]
    for action in actions:
        named = [s for s in action.option_strings if s in flags_on_page]
        if not named:
            problems.append(f"{'/'.join(action.option_strings)} of `alerts serve` has no row on the page")
            continue
        problems += _default_problems(named[0], flags_on_page[named[0]], action.required, action.default)
    code_variables = _alert_receiver_environment()
    problems += [f"the receiver reads {v}; the page has no row for it" for v in sorted(code_variables - variables_on_page)]
    problems += [f"the page has {v}; the receiver does not read it" for v in sorted(variables_on_page - code_variables)]
    return problems


def _receiver_metrics() -> dict[str, tuple[str, set[str]]]:
    """The receiver's metrics as Prometheus exposes them: name (counters with `_total`) -> (type, labels)."""
    from types import SimpleNamespace

    from recsys_checks.alerts.server import Metrics

    receiver = SimpleNamespace(settings=SimpleNamespace(queue_size=1), queue=None, runs_in_progress=0)
    metrics = {}
    for collector in Metrics(receiver).registry._collector_to_names:
        name = collector._name + ("_total" if collector._type == "counter" else "")
        metrics[name] = (collector._type, set(collector._labelnames))
    return metrics


def alert_receiver_metrics_problems(text: str) -> list[str]:
    """The Metrics table of alert-receiver.md against the metrics the receiver registers, both ways: names, types and
    labels."""
    documented = {}
    for row in _table_rows(text, "## Metrics"):
        found = re.fullmatch(r"`(\w+)(?:\{([\w, ]+)\})?`", row[0])
        if not found:
            return [f"a metrics row that is not `name{{labels}}`: {row[0]}"]
        labels = {label.strip() for label in (found.group(2) or "").split(",") if label.strip()}
        documented[found.group(1)] = (row[1], labels)
    code = _receiver_metrics()
    problems = [f"the receiver exposes {n}; the page does not list it" for n in sorted(set(code) - set(documented))]
    problems += [f"the page lists {n}; the receiver does not expose it" for n in sorted(set(documented) - set(code))]
    for name in sorted(set(code) & set(documented)):
        if code[name] != documented[name]:
            problems.append(f"{name}: the code has {code[name][0]} {sorted(code[name][1])}, the page "
                            f"{documented[name][0]} {sorted(documented[name][1])}")
    return problems


def _variables_the_checks_read() -> set[str]:
    """The RECSYS_* variables recsys_checks reads: by name (`.get("X")`, `environ["X"]`) or through a constant
    (`..._ENV = "X"`, `..._VARIABLE = "X"`)."""
    source = "\n".join(p.read_text() for p in Path(recsys_checks.__file__).parent.rglob("*.py"))
    read = set(re.findall(r"(?:\.get\(|environ\[)\"(RECSYS_\w+)\"", source))
    return read | set(re.findall(r"^\w+_(?:ENV|VARIABLE) = \"(RECSYS_\w+)\"", source, re.MULTILINE))


# The variables whose default is a value in the code, and where: the field of Target.from_env({}) that holds it.
TARGET_FIELDS = {"RECSYS_BASE_URL": "base_url", "RECSYS_ARTIFACT_MANIFEST_TEMPLATE": "manifest_template",
                 "RECSYS_ARTIFACT_RECORDS_TEMPLATE": "records_template", "RECSYS_ARTIFACT_S3_ENDPOINT": "s3_endpoint",
                 "RECSYS_ARTIFACT_S3_REGION": "s3_region", "RECSYS_DEPLOYMENT": "deployment",
                 "RECSYS_DEPLOYMENT_PROTECTED": "protected", "RECSYS_ARTIFACT_MAX_BYTES": "max_bytes",
                 "RECSYS_AUDIT_DIR": "audit_dir", "RECSYS_API_KEY": "api_key",
                 "RECSYS_ARTIFACT_S3_ACCESS_KEY": "s3_access_key", "RECSYS_ARTIFACT_S3_SECRET_KEY": "s3_secret_key"}
# Default cells that start with a name rather than a value: another variable to fall back to, a path pattern.
DESCRIBED_DEFAULTS = {"RECSYS_ACTOR": "USER", "RECSYS_RUNBOOK_RECORD": "incidents/<UTC time>-ID/ID.result.json"}


def environment_problems(text: str) -> list[str]:
    """The variables tables of environment.md (the checks' variables and their secrets) against the code, both
    ways, with each default the code holds."""
    from recsys_checks.reach.settings import Target

    rows = _table_rows(text, "## Where the deployment is") + _table_rows(text, "## Secrets")
    documented = {}
    for row in rows:
        names = re.findall(r"`(RECSYS_\w+)`", row[0])
        if len(names) != 1:
            return [f"a row that does not name one variable: {row[0]}"]
        documented[names[0]] = row[2]
    code = _variables_the_checks_read()
    problems = [f"recsys_checks reads {v}; environment.md has no row for it" for v in sorted(code - set(documented))]
    problems += [f"environment.md has a row for {v}; recsys_checks does not read it"
                 for v in sorted(set(documented) - code)]
    defaults = Target.from_env({})
    for variable, cell in sorted(documented.items()):
        literal = _first_code(cell)
        if variable in TARGET_FIELDS and literal and re.fullmatch(r"[A-Z][A-Z0-9_]+", literal):
            # a fallback variable (the secrets table): the field must take its value
            probe = "fallback-probe-value-1234"
            if getattr(Target.from_env({literal: probe}), TARGET_FIELDS[variable]) != probe:
                problems.append(f"{variable}: the page names the fallback {literal}, which the code does not read")
        elif variable in TARGET_FIELDS:
            problems += _default_problems(variable, cell, False, getattr(defaults, TARGET_FIELDS[variable]))
        elif _first_code(cell) not in (None, DESCRIBED_DEFAULTS.get(variable)):
            problems.append(f"{variable}: the page gives the default `{_first_code(cell)}`, which no test reads from "
                            "the code (add the variable to TARGET_FIELDS)")
    return problems


def test_the_alert_receivers_settings_are_its_parsers_both_ways_with_their_defaults():
    assert alert_receiver_settings_problems(_text("alert-receiver.md")) == []


def test_the_alert_receivers_metrics_are_the_ones_it_registers_both_ways():
    assert alert_receiver_metrics_problems(_text("alert-receiver.md")) == []


def test_the_environment_variables_are_the_ones_the_checks_read_both_ways_with_their_defaults():
    assert environment_problems(_text("environment.md")) == []


def _mutated(text: str, old: str, new: str) -> str:
    assert old in text, f"the page no longer has {old!r}: update the mutation"
    return text.replace(old, new, 1)


RECEIVER_SETTING = "| `--run-timeout SECONDS` | `900` |"
RECEIVER_METRIC = "| `recsys_alerts_runs_total{verdict}` | counter |"


@pytest.mark.parametrize("old,new,problem", [
    (RECEIVER_SETTING, "| `--run-timeout SECONDS` | `600` |", "--run-timeout: the code's default is `900`"),
    ("| `--listen HOST:PORT` | `127.0.0.1:9097` |", "| `--listen HOST:PORT` | `0.0.0.0:9097` |",
     "--listen: the code's default is `127.0.0.1:9097`"),
    ("| `--triage-ttl SECONDS` | `30` |", "| `--triage-ttl SECONDS` | `60` |", "--triage-ttl"),
    ("| `--out DIR` | required |", "| `--out DIR` | `incidents` |", "--out is required"),
    ("| `--tenant-label`, `--surface-label` | none |", "| `--tenant-label`, `--surface-label` | `tenant` |",
     "--tenant-label has no default in the code"),
    (RECEIVER_SETTING, RECEIVER_SETTING + " longest |\n| `--run-retries N` | `3` |", "--run-retries"),
    (RECEIVER_SETTING, "| `--run-timeout-s` | `900` |", "--run-timeout of `alerts serve` has no row"),
    ("| `RECSYS_ALERTS_NOTIFY_URL` (environment) |", "| `RECSYS_ALERTS_WEBHOOK` (environment) |",
     "the receiver reads RECSYS_ALERTS_NOTIFY_URL"),
])
def test_the_receiver_settings_check_fails_on_a_page_that_drifted(old, new, problem):
    problems = alert_receiver_settings_problems(_mutated(_text("alert-receiver.md"), old, new))
    assert any(problem in p for p in problems), problems


def test_the_receiver_settings_check_fails_when_a_default_changes_in_the_code(monkeypatch):
    """`--run-timeout` is 900 in the code and on the page; a parser whose default is 901 no longer matches it."""
    changed = _serve_parser()
    next(a for a in changed._actions if "--run-timeout" in a.option_strings).default = 901
    monkeypatch.setitem(globals(), "_serve_parser", lambda: changed)
    problems = alert_receiver_settings_problems(_text("alert-receiver.md"))
    assert any("--run-timeout: the code's default is `901`" in p for p in problems), problems


@pytest.mark.parametrize("old,new,problem", [
    (RECEIVER_METRIC, "| `recsys_alerts_run_total{verdict}` | counter |", "exposes recsys_alerts_runs_total"),
    (RECEIVER_METRIC, RECEIVER_METRIC + " x |\n| `recsys_alerts_retries_total` | counter |",
     "lists recsys_alerts_retries_total"),
    (RECEIVER_METRIC, "| `recsys_alerts_runs_total{status}` | counter |", "recsys_alerts_runs_total: the code has"),
    (RECEIVER_METRIC, "| `recsys_alerts_runs_total{verdict}` | gauge |", "recsys_alerts_runs_total: the code has"),
])
def test_the_receiver_metrics_check_fails_on_a_page_that_drifted(old, new, problem):
    problems = alert_receiver_metrics_problems(_mutated(_text("alert-receiver.md"), old, new))
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize("old,new,problem", [
    ("| `us-east-1` |", "| `eu-west-1` |", "RECSYS_ARTIFACT_S3_REGION: the code's default is `us-east-1`"),
    ("| `10000000`, as in the suite |", "| `1000000`, as in the suite |", "RECSYS_ARTIFACT_MAX_BYTES"),
    ("| `RECSYS_DEPLOYMENT` |", "| `RECSYS_DEPLOYMENT_NAME` |", "has a row for RECSYS_DEPLOYMENT_NAME"),
    ("| `RECSYS_CHECKS_DEBUG` |", "| `RECSYS_CHECKS_VERBOSE` |", "reads RECSYS_CHECKS_DEBUG"),
    ("| unset (not protected) |", "| `true` |", "RECSYS_DEPLOYMENT_PROTECTED has no default in the code"),
    ("| `AWS_SECRET_ACCESS_KEY` |", "| `AWS_SECRET_KEY` |", "names the fallback AWS_SECRET_KEY"),
    ("| `RECSYS_CHECKS_DEBUG` | when set, an internal error of `recsys-checks` shows its Python traceback instead of "
     "one line | unset |", "| `RECSYS_CHECKS_DEBUG` | when set, an internal error of `recsys-checks` shows its "
     "Python traceback instead of one line | `1` |", "which no test reads from the code"),
])
def test_the_environment_check_fails_on_a_page_that_drifted(old, new, problem):
    problems = environment_problems(_mutated(_text("environment.md"), old, new))
    assert any(problem in p for p in problems), problems


def test_the_environment_check_fails_when_a_default_changes_in_the_code(monkeypatch):
    """The region defaults to us-east-1 in the code and on the page; a code whose default is another fails."""
    from recsys_checks.reach import settings

    real = settings.Target.from_env.__func__

    def from_env(cls, env=None, **overrides):
        return real(cls, {"AWS_DEFAULT_REGION": "eu-central-1", **(env or {})}, **overrides)

    monkeypatch.setattr(settings.Target, "from_env", classmethod(from_env))
    problems = environment_problems(_text("environment.md"))
    assert any("RECSYS_ARTIFACT_S3_REGION: the code's default is `eu-central-1`" in p for p in problems), problems
